//! Startup recovery: pick the live segments, read their records, repair a torn tail.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use bytes::Bytes;

use crate::JournalOptions;
use crate::error::{IoContext, JournalError};
use crate::files::{self, QueueFiles};
use crate::record::{self, DecodeError, FRAME_HEADER_LEN, Frame, Record};
use crate::scan::{End, Spares, scan};
use crate::segment::{self, HEADER_LEN, Header, HeaderCheck};
use crate::storage::{Reader, Storage, StorageFile};

/// Bytes of a segment read at a time during replay (more for a larger record).
const CHUNK: usize = 1 << 20;

/// Chunks read ahead of the records being replayed.
const CHUNKS_AHEAD: usize = 2;

/// What replay found.
#[derive(Debug, Default)]
pub struct Replay {
    /// Every record of the live segments in order (segments before the newest snapshot segment
    /// are skipped and deleted), as [`crate::Journal::open`] collects them; empty after
    /// [`crate::Journal::open_with`], which hands each record to its visitor instead.
    pub records: Vec<Record>,
    /// Number of segment files replayed.
    pub segments: usize,
    /// Bytes of the replayed segment files (after any truncation).
    pub bytes: u64,
    /// Set when a torn/corrupt tail (or, with salvage, a damaged middle) was truncated.
    pub truncations: Vec<Truncation>,
}

/// One file that replay cut short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The segment file.
    pub file: PathBuf,
    /// Its new length: the offset of the first damaged record (0 when the file was removed).
    pub offset: u64,
    /// Bytes discarded from that offset to the old end of the file.
    pub dropped_bytes: u64,
}

/// The newest segment after replay; the journal appends to it.
#[derive(Debug)]
pub(crate) struct Tail {
    pub number: u64,
    pub path: PathBuf,
    pub len: u64,
}

/// Replays the journal of `queue`, repairing what the rules allow (see docs/journal-format.md).
pub(crate) fn recover(
    dir: &Path,
    queue: &str,
    opts: &JournalOptions,
    visit: &mut dyn FnMut(Record),
) -> Result<(Replay, Option<Tail>), JournalError> {
    let storage = &*opts.storage;
    let QueueFiles { segments, temps } = files::queue_files(storage, dir, queue)?;
    let mut replay = Replay::default();
    let mut dir_changed = !temps.is_empty();
    for temp in &temps {
        tracing::info!(file = %temp.display(), "journal: removing leftover temp file of an interrupted rewrite");
        files::remove_file(storage, temp)?;
    }
    let live = live_segments(&segments, opts, &mut replay, &mut dir_changed)?;
    let mut tail = None;
    let spares = Spares::default();
    for (i, (number, path)) in live.iter().enumerate() {
        let newest = i + 1 == live.len();
        let len = replay_segment(path, newest, opts, &spares, &mut replay, visit)?;
        replay.segments += 1;
        replay.bytes += len;
        if newest {
            tail = Some(Tail {
                number: *number,
                path: path.clone(),
                len,
            });
        }
    }
    if dir_changed {
        files::sync_dir(storage, dir)?;
    }
    Ok((replay, tail))
}

/// Checks headers from the newest segment back to the newest snapshot, and returns the segments
/// to replay, oldest first. Deletes what is superseded by that snapshot, a torn newest segment
/// (a crash right after creating it), and with salvage any segment with a damaged header.
fn live_segments(
    segments: &[(u64, PathBuf)],
    opts: &JournalOptions,
    replay: &mut Replay,
    dir_changed: &mut bool,
) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let storage = &*opts.storage;
    let mut live = Vec::new();
    let mut superseded: &[(u64, PathBuf)] = &[];
    for (i, (number, path)) in segments.iter().enumerate().rev() {
        let file = storage.open(path).at(path)?;
        let bytes = segment::read_header_bytes(&*file, path)?;
        match Header::check(&bytes, *number) {
            HeaderCheck::Valid(header) => {
                live.push((*number, path.clone()));
                if header.snapshot {
                    superseded = &segments[..i];
                    break;
                }
            }
            HeaderCheck::Version(version) => {
                return Err(JournalError::Version {
                    path: path.clone(),
                    version,
                });
            }
            HeaderCheck::Torn if live.is_empty() => {
                drop_file(storage, path, &*file, "torn segment header", replay)?;
                *dir_changed = true;
            }
            HeaderCheck::Torn if opts.salvage => {
                drop_file(storage, path, &*file, "truncated segment header", replay)?;
                *dir_changed = true;
            }
            HeaderCheck::Invalid(reason) if opts.salvage => {
                drop_file(storage, path, &*file, &reason, replay)?;
                *dir_changed = true;
            }
            HeaderCheck::Torn => return Err(corrupt(path, 0, "truncated segment header")),
            HeaderCheck::Invalid(reason) => return Err(corrupt(path, 0, &reason)),
        }
    }
    for (_, path) in superseded {
        tracing::info!(file = %path.display(), "journal: removing a segment superseded by a snapshot");
        files::remove_file(storage, path)?;
        *dir_changed = true;
    }
    live.reverse();
    Ok(live)
}

/// Removes a segment whose header cannot be used, recording it as a truncation at offset 0.
fn drop_file(
    storage: &dyn Storage,
    path: &Path,
    file: &dyn StorageFile,
    reason: &str,
    replay: &mut Replay,
) -> Result<(), JournalError> {
    let len = file.size().at(path)?;
    tracing::warn!(file = %path.display(), dropped_bytes = len, reason, "journal: removing a segment with an unusable header");
    files::remove_file(storage, path)?;
    replay.truncations.push(Truncation {
        file: path.to_path_buf(),
        offset: 0,
        dropped_bytes: len,
    });
    Ok(())
}

fn corrupt(path: &Path, offset: u64, reason: &str) -> JournalError {
    JournalError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.to_owned(),
    }
}

/// Hands the records of one segment (whose header is valid) to `visit`, in order; returns the
/// segment's length after any truncation.
fn replay_segment(
    path: &Path,
    newest: bool,
    opts: &JournalOptions,
    spares: &Spares,
    replay: &mut Replay,
    visit: &mut dyn FnMut(Record),
) -> Result<u64, JournalError> {
    let file = opts.storage.open(path).at(path)?;
    let file_len = file.size().at(path)?;
    let Some((offset, reason)) =
        replay_records(&*file, file_len, opts.max_record_size, spares, visit).at(path)?
    else {
        return Ok(file_len);
    };
    let damage = Damage {
        path,
        file: &*file,
        offset,
        file_len,
        reason,
    };
    damage.repair(newest, opts, replay)
}

/// Hands the records of `file` after its header to `visit`, while a thread of its own reads
/// and checksums the next ones ([`scan`]). Returns the offset and reason of the first damaged
/// record, if any; the reading thread has stopped when this returns.
fn replay_records(
    file: &dyn StorageFile,
    file_len: u64,
    max_record_size: u64,
    spares: &Spares,
    visit: &mut dyn FnMut(Record),
) -> io::Result<Option<(u64, DecodeError)>> {
    std::thread::scope(|threads| {
        let (sender, chunks) = sync_channel(CHUNKS_AHEAD);
        let read = move || {
            let max = max_record_size;
            scan(file, HEADER_LEN, file_len, max, CHUNK, &sender, spares);
        };
        // A segment that fits in one chunk is read in line (it is sent as a single chunk, so
        // the channel cannot fill up): a thread would cost more than the overlap saves (think
        // of many small queues).
        if file_len.saturating_sub(HEADER_LEN) <= CHUNK as u64 {
            read();
        } else {
            std::thread::Builder::new()
                .name("lanner-replay".to_owned())
                .spawn_scoped(threads, read)?;
        }
        let mut offset = HEADER_LEN;
        for chunk in chunks {
            let data = chunk.data.freeze();
            let mut at = 0;
            for len in chunk.lens {
                match record::decode_content(data.slice(at + FRAME_HEADER_LEN..at + len)) {
                    Ok(record) => visit(record),
                    Err(reason) => return Ok(Some((offset, reason))),
                }
                at += len;
                offset += len as u64;
            }
            // Unique unless the visitor kept a record's data.
            if let Ok(buffer) = data.try_into_mut() {
                spares.put(buffer);
            }
            match chunk.end {
                None => {}
                Some(End::Clean) => return Ok(None),
                Some(End::Failed(ReadError::Bad(reason))) => return Ok(Some((offset, reason))),
                Some(End::Failed(ReadError::Io(error))) => return Err(error),
            }
        }
        Err(io::Error::other("the journal reading thread stopped early"))
    })
}

pub(crate) enum ReadError {
    Io(io::Error),
    Bad(DecodeError),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

impl From<DecodeError> for ReadError {
    fn from(e: DecodeError) -> Self {
        ReadError::Bad(e)
    }
}

/// Reads the next record, given the bytes left in the file; `None` at a clean end.
/// The length field is checked against `max` and `available` before the content is allocated.
pub(crate) fn read_record(
    reader: &mut impl Read,
    available: u64,
    max: u64,
) -> Result<Option<(Record, u64)>, ReadError> {
    if available == 0 {
        return Ok(None);
    }
    let header_len = FRAME_HEADER_LEN as u64;
    if available < header_len {
        return Err(DecodeError::Incomplete(available).into());
    }
    let mut header = [0; FRAME_HEADER_LEN];
    reader.read_exact(&mut header)?;
    let frame = Frame::parse(header, max, available - header_len)?;
    let mut content = vec![0; frame.len as usize];
    reader.read_exact(&mut content)?;
    let record = frame.decode(Bytes::from(content))?;
    Ok(Some((record, header_len + u64::from(frame.len))))
}

/// A damaged record found during replay.
struct Damage<'a> {
    path: &'a Path,
    file: &'a dyn StorageFile,
    offset: u64,
    file_len: u64,
    reason: DecodeError,
}

impl Damage<'_> {
    /// Truncates a torn tail (damage in the newest segment with no intact record from it on), or
    /// with salvage any damage; otherwise fails with `Corrupt`. Returns the new file length.
    /// Zeros from the damaged offset to the end of the newest segment are its clean end (zero
    /// fill ahead): they are cut off without a warning or a [`Truncation`].
    fn repair(
        self,
        newest: bool,
        opts: &JournalOptions,
        replay: &mut Replay,
    ) -> Result<u64, JournalError> {
        let rest = self.rest()?;
        let zero_tail = newest && rest.iter().all(|&b| b == 0);
        let tail = newest && !intact_record_in(&rest);
        if !tail && !opts.salvage {
            return Err(corrupt(self.path, self.offset, &self.reason.to_string()));
        }
        self.file
            .set_len(self.offset)
            .and_then(|()| self.file.sync_all())
            .at(self.path)?;
        let dropped_bytes = self.file_len - self.offset;
        let (file, offset, reason) = (self.path.display(), self.offset, &self.reason);
        if zero_tail {
            tracing::debug!(%file, offset, dropped_bytes, "journal: cut the zero fill after the last record");
            return Ok(self.offset);
        }
        if tail {
            tracing::warn!(%file, offset, dropped_bytes, %reason, "journal: truncated a torn or corrupt tail");
        } else {
            tracing::warn!(%file, offset, dropped_bytes, %reason, "journal: salvage truncated a corrupt segment; DATA MAY HAVE BEEN LOST");
        }
        replay.truncations.push(Truncation {
            file: self.path.to_path_buf(),
            offset,
            dropped_bytes,
        });
        Ok(self.offset)
    }

    /// The file from the damaged offset to its end. This only runs on damage, which is rare
    /// and usually at the very end (or a zero fill of about a MiB).
    fn rest(&self) -> Result<Bytes, JournalError> {
        let mut rest = Vec::new();
        Reader::new(self.file, self.offset)
            .read_to_end(&mut rest)
            .at(self.path)?;
        Ok(Bytes::from(rest))
    }
}

/// Whether an intact record starts anywhere in `rest` (one at its start is intact but over
/// `max_record_size`).
fn intact_record_in(rest: &Bytes) -> bool {
    (0..rest.len()).any(|at| record::intact_record_at(rest, at))
}
