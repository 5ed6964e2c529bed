//! The journal handle: the in-memory pending buffer, group write and group commit.
//!
//! Three locks, always taken in this order and never held across each other's I/O:
//! - `pending`: appenders serialise records into a buffer (a memcpy, no syscall);
//! - `writer`: one writer swaps the whole pending buffer out and writes it with one
//!   `write_all`, so appenders never wait for I/O;
//! - `sync_turn`: one syncer fsyncs everything written so far; syncers queued behind it whose
//!   record is then covered return without an fsync.
//!
//! `written` and `synced` publish progress, so a caller whose record is already covered
//! returns after one atomic load.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::{IoContext, JournalError};
use crate::files;
use crate::latency::timed_fsync;
use crate::record::{FRAME_HEADER_LEN, Record, add_content_len, encode_add_into};
use crate::replay::{self, Replay};
use crate::segment::HEADER_LEN;
use crate::stats::{Counters, JournalStats};
use crate::writer::{WriteFailure, Writer};
use crate::{JournalOptions, Seq};

/// A queue's journal. Send + Sync; shared as `Arc<Journal>` between the queue (which appends
/// under its own lock) and the connection tasks (which call [`Journal::write_through`] or
/// [`Journal::sync_through`] after releasing that lock). Dropping it writes nothing: call
/// [`Journal::sync_all`] first at shutdown.
pub struct Journal {
    queue: String,
    dir: PathBuf,
    opts: JournalOptions,
    pending: Mutex<Pending>,
    writer: Mutex<Writer>,
    sync_turn: Mutex<()>,
    /// Highest seq handed to the OS (or superseded by a written snapshot).
    written: AtomicU64,
    /// Highest seq known to be on stable storage.
    synced: AtomicU64,
    poisoned: AtomicBool,
    /// The last write failed and was undone; its records wait in `pending` for a retry.
    write_failed: AtomicBool,
    deleted: AtomicBool,
    counters: Counters,
}

/// Appended records not yet handed to the writer.
#[derive(Default)]
struct Pending {
    /// Seq of the last append or rewrite.
    last_seq: Seq,
    /// Encoded records appended after `snapshot` (if any).
    buf: Vec<u8>,
    /// A scheduled rewrite; it supersedes everything appended before it.
    snapshot: Option<Snapshot>,
}

struct Snapshot {
    live: Vec<Record>,
    seq: Seq,
}

/// What one writer takes out of `Pending` in one go.
struct Batch {
    snapshot: Option<Snapshot>,
    buf: Vec<u8>,
    last_seq: Seq,
}

impl Journal {
    /// Opens (replaying existing segments, truncating a torn tail) or creates the journal of
    /// `queue` in `dir` (created if missing). Creating the first segment fsyncs the directory.
    pub fn open(
        dir: &Path,
        queue: &str,
        opts: JournalOptions,
    ) -> Result<(Journal, Replay), JournalError> {
        let mut records = Vec::new();
        let (journal, mut replay) =
            Self::open_with(dir, queue, opts, &mut |record| records.push(record))?;
        replay.records = records;
        Ok((journal, replay))
    }

    /// Like [`Journal::open`], but hands each replayed record to `visit` as it is read instead
    /// of collecting them, so recovery needs no more memory than the caller keeps. A record may
    /// be visited before damage later in the journal fails the open. An `Add`'s data shares
    /// its read buffer (about 1 MiB) with the records around it: a caller keeping a few of them
    /// for long should copy their data, lest they pin the whole buffer.
    pub fn open_with(
        dir: &Path,
        queue: &str,
        opts: JournalOptions,
        visit: &mut dyn FnMut(Record),
    ) -> Result<(Journal, Replay), JournalError> {
        if !files::is_valid_queue_name(queue) {
            let source = io::Error::new(io::ErrorKind::InvalidInput, "invalid queue name");
            return Err(JournalError::Io {
                path: dir.join(queue),
                source,
            });
        }
        opts.storage.create_dir_all(dir).at(dir)?;
        let (replay, tail) = replay::recover(dir, queue, &opts, visit)?;
        let created = tail.is_none();
        let writer = Writer::open(
            Arc::clone(&opts.storage),
            dir,
            queue,
            tail,
            opts.zero_fill_ahead,
        )?;
        let counters = Counters::default();
        let total = if created { writer.len() } else { replay.bytes };
        counters.total_bytes.store(total, Relaxed);
        counters.current_segment_bytes.store(writer.len(), Relaxed);
        counters
            .segments
            .store(replay.segments.max(1) as u64, Relaxed);
        let journal = Journal {
            queue: queue.to_owned(),
            dir: dir.to_path_buf(),
            opts,
            pending: Mutex::default(),
            writer: Mutex::new(writer),
            sync_turn: Mutex::new(()),
            written: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            poisoned: AtomicBool::new(false),
            write_failed: AtomicBool::new(false),
            deleted: AtomicBool::new(false),
            counters,
        };
        Ok((journal, replay))
    }

    /// Serialises `record` into the in-memory pending buffer. No syscall; cheap (a memcpy).
    /// Called under the queue's lock so journal order == queue state order. Returns its Seq.
    ///
    /// After [`Journal::delete`] or poisoning the record is dropped (the Seq is still issued).
    /// A record larger than `max_record_size` would make the journal unreadable, so it poisons
    /// the journal instead of being written.
    pub fn append(&self, record: &Record) -> Seq {
        self.append_encoded(record.content_len(), |buf| record.encode_into(buf))
    }

    /// [`Journal::append`] of `Record::Add { add_time_ms, expiry_ms, data }`, borrowing the
    /// payload: a put needs no second `Bytes` handle on it (cloning a `Bytes` made from a
    /// `Vec` allocates a shared header).
    pub fn append_add(&self, add_time_ms: i64, expiry_ms: i64, data: &[u8]) -> Seq {
        self.append_encoded(add_content_len(data.len()), |buf| {
            encode_add_into(buf, add_time_ms, expiry_ms, data);
        })
    }

    fn append_encoded(&self, content_len: u64, encode: impl FnOnce(&mut Vec<u8>)) -> Seq {
        let mut pending = lock(&self.pending);
        pending.last_seq += 1;
        if self.accepts(content_len) {
            encode(&mut pending.buf);
            self.counters
                .total_bytes
                .fetch_add(FRAME_HEADER_LEN as u64 + content_len, Relaxed);
        }
        pending.last_seq
    }

    /// Compaction: schedules a rewrite. Must be called under the same lock as
    /// [`Journal::append`], with `live` the full state after every record appended so far: for
    /// each open read `Add` + `RemoveTentative{xid}`, then an `Add` per queued item.
    ///
    /// Records appended after this call go to a fresh snapshot segment that begins with
    /// `live`; replay ignores every older segment. The file work (write the snapshot, fsync it
    /// and the directory, delete older segments) happens in a later `write_through`. Records
    /// appended before this call and not yet written are never written: `live` supersedes them.
    /// Returns the Seq of the snapshot (`write_through` of it completes the rewrite).
    pub fn rewrite(&self, live: Vec<Record>) -> Seq {
        let snapshot_len = HEADER_LEN + live.iter().map(Record::encoded_len).sum::<u64>();
        let largest = live.iter().map(Record::content_len).max().unwrap_or(0);
        let mut pending = lock(&self.pending);
        pending.last_seq += 1;
        if self.accepts(largest) {
            pending.buf.clear();
            pending.snapshot = Some(Snapshot {
                live,
                seq: pending.last_seq,
            });
            self.counters.total_bytes.store(snapshot_len, Relaxed);
        }
        pending.last_seq
    }

    /// Ensures every record with seq <= `seq` has been handed to the OS (write(2)). Group
    /// write: one caller writes everything pending in one `write_all`; callers whose seq is
    /// already covered return without a syscall. A `seq` beyond the last append writes
    /// everything. Rotates to a new segment when the current one passed `segment_size`.
    ///
    /// A failed write (ENOSPC, EIO) is undone (a partial write is cut off) and returns `Io`;
    /// its records stay pending and the next call writes them again, so writing resumes by
    /// itself once the disk has room. A failure that leaves the files in doubt (an fsync, a
    /// step after a rewrite's rename, a partial write that cannot be cut off) poisons the
    /// journal: this and every later call returns `Poisoned`.
    pub fn write_through(&self, seq: Seq) -> Result<(), JournalError> {
        if let Some(done) = self.settled(seq, &self.written) {
            return done;
        }
        let mut writer = lock(&self.writer);
        if let Some(done) = self.settled(seq, &self.written) {
            return done;
        }
        let batch = self.take(&mut writer);
        self.write_batch(&mut writer, batch)
    }

    /// `write_through(seq)`, then fdatasync unless another caller's fsync already covered
    /// `seq` (group commit: concurrent callers share one fsync). A failed fsync poisons the
    /// journal.
    pub fn sync_through(&self, seq: Seq) -> Result<(), JournalError> {
        self.write_through(seq)?;
        // Records past `written` were appended after this call began (write_through took
        // everything there was), so a `seq` beyond it (e.g. Seq::MAX) need not wait for them.
        let seq = seq.min(self.written.load(Acquire));
        if let Some(done) = self.settled(seq, &self.synced) {
            return done;
        }
        let _turn = lock(&self.sync_turn);
        if let Some(done) = self.settled(seq, &self.synced) {
            return done;
        }
        // Older segments were fsynced when left behind, so the current one is all there is
        // to sync; the writer may go on writing while we fsync.
        let (current, upto) = {
            let writer = lock(&self.writer);
            (writer.file(), self.written.load(Acquire))
        };
        let Some((file, path)) = current else {
            return Ok(());
        };
        timed_fsync(|| file.sync_data())
            .at(&path)
            .map_err(|cause| self.poison(&cause))?;
        Counters::bump(&self.counters.fsyncs);
        self.synced.fetch_max(upto, Release);
        Ok(())
    }

    /// Writes and fsyncs everything appended so far (periodic sync thread, shutdown).
    pub fn sync_all(&self) -> Result<(), JournalError> {
        let last = lock(&self.pending).last_seq;
        self.sync_through(last)
    }

    /// Deletes every file of this journal (queue delete). Later appends are dropped silently;
    /// `write_through`/`sync_through` after delete return Ok.
    pub fn delete(&self) -> Result<(), JournalError> {
        let mut writer = lock(&self.writer);
        {
            let mut pending = lock(&self.pending);
            self.deleted.store(true, Release);
            *pending = Pending {
                last_seq: pending.last_seq,
                ..Pending::default()
            };
            self.counters.total_bytes.store(0, Relaxed);
        }
        writer.delete(&self.counters)
    }

    /// The journal's current figures (atomic loads only).
    pub fn stats(&self) -> JournalStats {
        JournalStats {
            poisoned: self.is_poisoned(),
            ..self.counters.snapshot()
        }
    }

    /// True after a failed fsync (or another failure that leaves the files in doubt); every
    /// later write or sync returns `Poisoned`.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Acquire)
    }

    /// True while the last write failed (and was undone): records wait for a retry, which
    /// the next [`Journal::write_through`] makes.
    pub fn has_failed_write(&self) -> bool {
        self.write_failed.load(Acquire)
    }

    /// Whether records may still be buffered: not deleted, not poisoned, and the largest
    /// record (`content_len`) small enough to be read back (otherwise the journal is poisoned).
    fn accepts(&self, content_len: u64) -> bool {
        if self.deleted.load(Acquire) || self.is_poisoned() {
            return false;
        }
        let limit = self.opts.max_record_size.min(u64::from(u32::MAX));
        if content_len <= limit {
            return true;
        }
        let message = format!("record of {content_len} bytes exceeds max_record_size {limit}");
        let source = io::Error::new(io::ErrorKind::InvalidInput, message);
        self.poison(&JournalError::Io {
            path: self.dir.join(&self.queue),
            source,
        });
        false
    }

    /// `Some` when no I/O is needed: deleted (Ok), poisoned (Err) or `mark` covers `seq`.
    fn settled(&self, seq: Seq, mark: &AtomicU64) -> Option<Result<(), JournalError>> {
        if self.deleted.load(Acquire) {
            Some(Ok(()))
        } else if self.is_poisoned() {
            Some(Err(self.poisoned_error()))
        } else if mark.load(Acquire) >= seq {
            Some(Ok(()))
        } else {
            None
        }
    }

    fn take(&self, writer: &mut Writer) -> Batch {
        let spare = writer.take_spare();
        let mut pending = lock(&self.pending);
        Batch {
            snapshot: pending.snapshot.take(),
            buf: std::mem::replace(&mut pending.buf, spare),
            last_seq: pending.last_seq,
        }
    }

    fn write_batch(&self, writer: &mut Writer, batch: Batch) -> Result<(), JournalError> {
        let Batch {
            mut snapshot,
            buf,
            last_seq,
        } = batch;
        match self.write_parts(writer, &mut snapshot, &buf) {
            Ok(()) => {
                self.written.store(last_seq, Release);
                if self.write_failed.swap(false, AcqRel) {
                    tracing::info!(queue = %self.queue, "journal: writes resumed");
                }
                writer.recycle(buf);
                Ok(())
            }
            Err(WriteFailure::Retry(cause)) => {
                self.put_back(snapshot, buf);
                if !self.write_failed.swap(true, AcqRel) {
                    tracing::error!(queue = %self.queue, error = %cause,
                        "journal: write failed; it was undone and will be retried");
                }
                Err(cause)
            }
            Err(WriteFailure::Fatal(cause)) => Err(self.poison(&cause)),
        }
    }

    /// Writes a batch; `snapshot` is taken once it is written, so a failure after it leaves
    /// only what is still unwritten.
    fn write_parts(
        &self,
        writer: &mut Writer,
        snapshot: &mut Option<Snapshot>,
        buf: &[u8],
    ) -> Result<(), WriteFailure> {
        if let Some(Snapshot { live, seq }) = snapshot.as_ref() {
            writer.rewrite(live, &self.counters)?;
            self.written.store(*seq, Release);
            self.synced.fetch_max(*seq, Release);
            *snapshot = None;
        }
        if !buf.is_empty() {
            if writer.is_full(self.opts.segment_size) {
                writer.rotate(&self.counters)?;
                self.synced.fetch_max(self.written.load(Acquire), Release);
                let _pending = lock(&self.pending);
                self.counters.total_bytes.fetch_add(HEADER_LEN, Relaxed);
            }
            writer.write(buf, &self.counters)?;
        }
        Ok(())
    }

    /// Returns the unwritten part of a failed batch to the front of the pending buffer, unless
    /// a rewrite scheduled meanwhile supersedes it.
    fn put_back(&self, snapshot: Option<Snapshot>, buf: Vec<u8>) {
        let mut pending = lock(&self.pending);
        if pending.snapshot.is_some() {
            return;
        }
        pending.snapshot = snapshot;
        let newer = std::mem::replace(&mut pending.buf, buf);
        pending.buf.extend_from_slice(&newer);
    }

    /// Marks the journal poisoned (logging `cause` the first time) and returns `Poisoned`.
    fn poison(&self, cause: &JournalError) -> JournalError {
        if !self.poisoned.swap(true, AcqRel) {
            tracing::error!(queue = %self.queue, error = %cause,
                "journal: fsync or file operation failed; refusing further writes until restart");
        }
        self.poisoned_error()
    }

    fn poisoned_error(&self) -> JournalError {
        JournalError::Poisoned {
            queue: self.queue.clone(),
        }
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("queue", &self.queue)
            .field("dir", &self.dir)
            .field("written", &self.written.load(Relaxed))
            .field("synced", &self.synced.load(Relaxed))
            .field("poisoned", &self.is_poisoned())
            .field("deleted", &self.deleted.load(Relaxed))
            .finish_non_exhaustive()
    }
}

/// Locks `mutex`, ignoring std's panic poisoning: every critical section here leaves its data
/// consistent (I/O failures are handled by the journal's own poisoning).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
