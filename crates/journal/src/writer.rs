//! The file side of the journal: the current segment, rotation, rewrite and delete.
//! Only ever used under the journal's writer mutex, never under the pending-buffer mutex.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use crate::error::{IoContext, JournalError, io_error};
use crate::files;
use crate::latency::timed_fsync;
use crate::record::Record;
use crate::replay::Tail;
use crate::segment::{self, CreateFailure, HEADER_LEN, Header};
use crate::stats::Counters;
use crate::storage::{Storage, StorageFile};

/// A rewrite streams its snapshot to disk in writes of about this size.
const SNAPSHOT_CHUNK: usize = 1 << 20;
/// A write buffer that grew beyond this (one huge batch) is freed rather than kept for reuse.
const MAX_SPARE: usize = 4 << 20;

/// Why a write to the files failed.
#[derive(Debug)]
pub(crate) enum WriteFailure {
    /// Nothing of the failed write is left in the files (a partial write was cut off again):
    /// the journal is consistent and the same bytes may be written again later (ENOSPC, EIO).
    Retry(JournalError),
    /// The files may not hold what the journal believes (a failed fsync, rename or cleanup):
    /// the journal must be poisoned.
    Fatal(JournalError),
}

impl WriteFailure {
    fn retry(cause: JournalError) -> Self {
        WriteFailure::Retry(cause)
    }

    fn fatal(cause: JournalError) -> Self {
        WriteFailure::Fatal(cause)
    }
}

/// Owner of the current segment file.
pub(crate) struct Writer {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    queue: String,
    /// The current segment; `None` once the journal is deleted. Shared so a syncing thread
    /// can fsync it without holding the writer mutex.
    file: Option<Arc<dyn StorageFile>>,
    number: u64,
    path: PathBuf,
    /// Bytes of records (and header) in the current segment: where the next write goes.
    len: u64,
    /// The current segment's file length: `len` plus any zeros written ahead of it.
    zeroed: u64,
    zero_fill_ahead: u64,
    /// An empty buffer handed to the pending side in exchange for the one being written.
    spare: Vec<u8>,
}

impl Writer {
    /// Appends to the replayed newest segment, or creates segment 1 (and fsyncs the directory).
    pub(crate) fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        queue: &str,
        tail: Option<Tail>,
        zero_fill_ahead: u64,
    ) -> Result<Writer, JournalError> {
        let (file, number, path, len) = match tail {
            Some(Tail { number, path, len }) => {
                let file = storage.open(&path).at(&path)?;
                (file, number, path, len)
            }
            None => {
                let path = files::segment_path(dir, queue, 1);
                let file = segment::create(
                    &*storage,
                    &path,
                    Header {
                        snapshot: false,
                        segment: 1,
                    },
                )?;
                files::sync_dir(&*storage, dir)?;
                (file, 1, path, HEADER_LEN)
            }
        };
        Ok(Writer {
            storage,
            dir: dir.to_path_buf(),
            queue: queue.to_owned(),
            file: Some(file),
            number,
            path,
            len,
            zeroed: len,
            zero_fill_ahead,
            spare: Vec::new(),
        })
    }

    /// Bytes in the current segment.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The current segment and its path, for an fsync outside the writer mutex.
    pub(crate) fn file(&self) -> Option<(Arc<dyn StorageFile>, PathBuf)> {
        self.file
            .as_ref()
            .map(|file| (Arc::clone(file), self.path.clone()))
    }

    /// An empty buffer to swap with the pending one.
    pub(crate) fn take_spare(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.spare)
    }

    /// Keeps a written buffer for reuse, unless it is unusually large.
    pub(crate) fn recycle(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() <= MAX_SPARE {
            buf.clear();
            self.spare = buf;
        }
    }

    /// Whether the current segment has grown past `segment_size`.
    pub(crate) fn is_full(&self, segment_size: u64) -> bool {
        self.len > segment_size
    }

    /// Writes whole records to the current segment with one `write_all` at its end of records
    /// (after zero-filling ahead of it first, if due). If that fails, the segment is cut back
    /// to its old length, so no partial record stays in front of the next write.
    pub(crate) fn write(&mut self, buf: &[u8], counters: &Counters) -> Result<(), WriteFailure> {
        let Some(file) = self.file.clone() else {
            return Ok(());
        };
        let end = self.len + buf.len() as u64;
        if self.zero_fill_ahead > 0 && end > self.zeroed {
            self.zero_fill(&*file, end.saturating_add(self.zero_fill_ahead))?;
        }
        if let Err(e) = file.write_at(buf, self.len) {
            return Err(self.undo(&*file, io_error(&self.path, e)));
        }
        self.len = end;
        self.zeroed = self.zeroed.max(end);
        counters.current_segment_bytes.store(self.len, Relaxed);
        Ok(())
    }

    /// Writes zeros from the end of the zeros so far up to `to`. The zeros only save work: if
    /// they do not fit (a nearly full disk), they are cut off again and the records are
    /// written without them.
    fn zero_fill(&mut self, file: &dyn StorageFile, to: u64) -> Result<(), WriteFailure> {
        match file.write_at(&zeros(to - self.zeroed), self.zeroed) {
            Ok(()) => self.zeroed = to,
            Err(e) => {
                tracing::debug!(file = %self.path.display(), error = %e, "journal: no zero fill ahead");
                let cause = io_error(&self.path, e);
                if let WriteFailure::Fatal(cause) = self.undo(file, cause) {
                    return Err(WriteFailure::Fatal(cause));
                }
            }
        }
        Ok(())
    }

    /// Cuts the segment back to its records after a failed write of `cause`: `Retry` when
    /// that worked, `Fatal` when a partial write may be left in front of the next one.
    fn undo(&mut self, file: &dyn StorageFile, cause: JournalError) -> WriteFailure {
        self.zeroed = self.len;
        match file.set_len(self.len).at(&self.path) {
            Ok(()) => WriteFailure::Retry(cause),
            Err(_) => WriteFailure::Fatal(cause),
        }
    }

    /// Closes the current segment and starts the next one. The old segment loses its zero
    /// tail and is fsynced first, so only the current segment ever holds unsynced data or
    /// ends in zeros; the new file's directory entry is fsynced before it is used.
    pub(crate) fn rotate(&mut self, counters: &Counters) -> Result<(), WriteFailure> {
        let Some(old) = &self.file else { return Ok(()) };
        let cut_zeros = self.zeroed > self.len;
        if cut_zeros {
            old.set_len(self.len)
                .at(&self.path)
                .map_err(WriteFailure::fatal)?;
            self.zeroed = self.len;
        }
        // A full fsync when the file shrank: its new size must be on disk before a newer
        // segment exists, or replay would find zeros ending an older segment (corruption).
        timed_fsync(|| {
            if cut_zeros {
                old.sync_all()
            } else {
                old.sync_data()
            }
        })
        .at(&self.path)
        .map_err(WriteFailure::fatal)?;
        Counters::bump(&counters.fsyncs);
        let number = self.next_number().map_err(WriteFailure::fatal)?;
        let path = files::segment_path(&self.dir, &self.queue, number);
        let file = segment::create(
            &*self.storage,
            &path,
            Header {
                snapshot: false,
                segment: number,
            },
        )
        .map_err(|failure| match failure {
            CreateFailure::Clean(error) => WriteFailure::retry(error),
            CreateFailure::LeftBehind(error) => WriteFailure::fatal(error),
        })?;
        files::sync_dir(&*self.storage, &self.dir).map_err(WriteFailure::fatal)?;
        tracing::debug!(queue = %self.queue, segment = number, "journal: rotated");
        self.install(file, number, path, HEADER_LEN, counters);
        Counters::bump(&counters.segments);
        Counters::bump(&counters.rotations);
        Ok(())
    }

    /// Replaces every segment with a snapshot segment holding `live`: temp file, fsync,
    /// rename, directory fsync, delete older segments, directory fsync. A crash at any step
    /// replays either the old segments or the snapshot, which supersedes them. A failure
    /// before the rename removes the temp file and leaves the old segments in use.
    pub(crate) fn rewrite(
        &mut self,
        live: &[Record],
        counters: &Counters,
    ) -> Result<(), WriteFailure> {
        let number = self.next_number().map_err(WriteFailure::fatal)?;
        let temp = files::temp_path(&self.dir, &self.queue, number);
        let (file, len) = self.write_snapshot(&temp, number, live)?;
        Counters::bump(&counters.fsyncs);
        let path = files::segment_path(&self.dir, &self.queue, number);
        if let Err(e) = self.storage.rename(&temp, &path) {
            self.discard_temp(&temp)?;
            return Err(WriteFailure::Retry(io_error(&temp, e)));
        }
        let fatal = WriteFailure::fatal;
        files::sync_dir(&*self.storage, &self.dir).map_err(fatal)?;
        let old_segments = files::queue_files(&*self.storage, &self.dir, &self.queue)
            .map_err(fatal)?
            .segments;
        for (old, old_path) in old_segments {
            if old < number {
                files::remove_file(&*self.storage, &old_path).map_err(fatal)?;
            }
        }
        files::sync_dir(&*self.storage, &self.dir).map_err(fatal)?;
        tracing::debug!(queue = %self.queue, segment = number, records = live.len(), bytes = len, "journal: rewritten");
        self.install(file, number, path, len, counters);
        counters.segments.store(1, Relaxed);
        Counters::bump(&counters.rewrites);
        Ok(())
    }

    /// Removes every file of the journal; later writes are dropped.
    pub(crate) fn delete(&mut self, counters: &Counters) -> Result<(), JournalError> {
        self.file = None;
        let storage = &*self.storage;
        let queue_files = files::queue_files(storage, &self.dir, &self.queue)?;
        for path in queue_files
            .segments
            .iter()
            .map(|(_, path)| path)
            .chain(&queue_files.temps)
        {
            files::remove_file(storage, path)?;
        }
        files::sync_dir(storage, &self.dir)?;
        self.len = 0;
        self.zeroed = 0;
        counters.segments.store(0, Relaxed);
        counters.current_segment_bytes.store(0, Relaxed);
        Ok(())
    }

    /// The number after the current segment's (which, coming from a file name, may be
    /// `u64::MAX`).
    fn next_number(&self) -> Result<u64, JournalError> {
        self.number.checked_add(1).ok_or_else(|| JournalError::Io {
            path: self.path.clone(),
            source: std::io::Error::other("segment numbers exhausted"),
        })
    }

    fn install(
        &mut self,
        file: Arc<dyn StorageFile>,
        number: u64,
        path: PathBuf,
        len: u64,
        counters: &Counters,
    ) {
        self.file = Some(file);
        self.number = number;
        self.path = path;
        self.len = len;
        self.zeroed = len;
        counters.current_segment_bytes.store(len, Relaxed);
    }

    /// Writes a snapshot segment to `temp` and fsyncs it; returns the open file and its
    /// length. A failed write removes `temp` again, so a full disk gets its space back.
    fn write_snapshot(
        &self,
        temp: &Path,
        number: u64,
        live: &[Record],
    ) -> Result<(Arc<dyn StorageFile>, u64), WriteFailure> {
        let file = self
            .storage
            .create_truncate(temp)
            .at(temp)
            .map_err(WriteFailure::retry)?;
        let mut buf = Vec::with_capacity(SNAPSHOT_CHUNK);
        buf.extend_from_slice(
            &Header {
                snapshot: true,
                segment: number,
            }
            .encode(),
        );
        let mut len = 0;
        for record in live {
            record.encode_into(&mut buf);
            if buf.len() >= SNAPSHOT_CHUNK {
                len += self.write_chunk(&*file, temp, &mut buf, len)?;
            }
        }
        len += self.write_chunk(&*file, temp, &mut buf, len)?;
        timed_fsync(|| file.sync_all())
            .at(temp)
            .map_err(WriteFailure::fatal)?;
        Ok((file, len))
    }

    /// Writes `buf` at `offset` and empties it; returns how many bytes it held.
    fn write_chunk(
        &self,
        file: &dyn StorageFile,
        temp: &Path,
        buf: &mut Vec<u8>,
        offset: u64,
    ) -> Result<u64, WriteFailure> {
        if let Err(e) = file.write_at(buf, offset) {
            self.discard_temp(temp)?;
            return Err(WriteFailure::Retry(io_error(temp, e)));
        }
        let written = buf.len() as u64;
        buf.clear();
        Ok(written)
    }

    /// Removes the temp file of a rewrite that failed before its rename.
    fn discard_temp(&self, temp: &Path) -> Result<(), WriteFailure> {
        files::remove_file(&*self.storage, temp).map_err(WriteFailure::fatal)
    }
}

/// `len` zero bytes, to write ahead of the records.
fn zeros(len: u64) -> Vec<u8> {
    vec![0; usize::try_from(len).unwrap_or(usize::MAX)]
}
