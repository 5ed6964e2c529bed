//! Journal figures, kept in atomics so reading them never waits for I/O.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of a journal's figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct JournalStats {
    /// Bytes of all segment files on disk plus bytes appended but not yet written.
    pub total_bytes: u64,
    /// Bytes in the current (newest) segment file.
    pub current_segment_bytes: u64,
    /// Segment files on disk.
    pub segments: u64,
    /// Rewrites (compactions) completed since open.
    pub rewrites: u64,
    /// Rotations to a new segment since open.
    pub rotations: u64,
    /// fsyncs of segment files since open: by `sync_through` (concurrent callers share one),
    /// by rotation, and by rewrite.
    pub fsyncs: u64,
    /// True once a failed fsync (or rename, or cleanup) poisoned the journal.
    pub poisoned: bool,
}

/// The live counters behind [`JournalStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Changed only under the pending-buffer lock, so a rewrite's reset and concurrent
    /// additions cannot interleave.
    pub total_bytes: AtomicU64,
    pub current_segment_bytes: AtomicU64,
    pub segments: AtomicU64,
    pub rewrites: AtomicU64,
    pub rotations: AtomicU64,
    pub fsyncs: AtomicU64,
}

impl Counters {
    /// Reads every counter.
    pub(crate) fn snapshot(&self) -> JournalStats {
        JournalStats {
            total_bytes: self.total_bytes.load(Relaxed),
            current_segment_bytes: self.current_segment_bytes.load(Relaxed),
            segments: self.segments.load(Relaxed),
            rewrites: self.rewrites.load(Relaxed),
            rotations: self.rotations.load(Relaxed),
            fsyncs: self.fsyncs.load(Relaxed),
            poisoned: false, // the journal fills it in
        }
    }

    /// Adds one to `counter`.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}
