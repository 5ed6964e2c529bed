//! lanner's per-queue journal: segmented, checksummed, append-only files with group commit.
//!
//! Each queue has its own [`Journal`]: records are appended to an in-memory buffer under the
//! queue's lock ([`Journal::append`]), handed to the OS in batches
//! ([`Journal::write_through`]) and fsynced in shared batches ([`Journal::sync_through`]).
//! [`Journal::open`] replays the segments, truncating a torn tail. The byte layout is
//! specified in `docs/journal-format.md`. Std only: no async runtime.
//!
//! All file access goes through [`Storage`]: [`FsStorage`] in production, [`SimStorage`] (a
//! simulated disk that can lose power and fail on demand) in tests.

#![deny(clippy::host_endian_bytes, clippy::big_endian_bytes)]

use std::sync::Arc;

mod error;
mod files;
pub mod inspect;
mod journal;
mod latency;
mod lock;
mod record;
mod replay;
mod scan;
mod segment;
mod sim;
mod stats;
mod storage;
mod writer;

pub use error::JournalError;
pub use files::list_queues;
pub use journal::Journal;
pub use latency::{LATENCY_BUCKETS_SECONDS, LatencyHistogram, LatencySnapshot, fsync_latency};
pub use lock::{DirLock, lock_dir};
pub use record::Record;
pub use replay::{Replay, Truncation};
pub use sim::{SimFault, SimStorage};
pub use stats::JournalStats;
pub use storage::{FsStorage, Storage, StorageFile};

/// 1-based sequence number of an appended record (or rewrite); 0 = "nothing".
pub type Seq = u64;

/// Tunables of a journal.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// Where the files live: the real file system ([`FsStorage`]) or a simulated disk.
    pub storage: Arc<dyn Storage>,
    /// A segment that has grown past this is closed and a new one started (default 16 MiB).
    pub segment_size: u64,
    /// Records whose length field exceeds this are treated as corrupt (never allocated).
    /// Default 256 MiB + 64.
    pub max_record_size: u64,
    /// Corruption in the middle of a file: false -> `open()` fails with `JournalError::Corrupt`
    /// naming file and offset; true -> truncate that file at the bad record, log, and keep
    /// going (salvage).
    pub salvage: bool,
    /// Bytes written as zeros ahead of the write position (0: none), so that an fdatasync
    /// after each write need not also commit a change of the file's size. Worth it when every
    /// write is fsynced; otherwise it only doubles the bytes written. Replay reads a zero tail
    /// of the newest segment as its clean end.
    pub zero_fill_ahead: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            storage: Arc::new(FsStorage),
            segment_size: 16 << 20,
            max_record_size: (256 << 20) + 64,
            salvage: false,
            zero_fill_ahead: 0,
        }
    }
}
