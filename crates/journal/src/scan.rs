//! Reading a segment ahead of replay. A thread of its own reads the file in large chunks and
//! checks every record's frame and checksum, while the replaying thread decodes and applies
//! the records of the chunk before: on a restart with a long journal, reading and CRC32C are
//! about half the work, and the machine has a second core. A chunk holds whole records only
//! (a record cut by a chunk's end starts the next chunk), so the replaying thread slices the
//! records out of it without copying them, and hands the chunk's buffer back once no record
//! uses it any more: fresh 1 MiB buffers cost page faults and zeroing, about a fifth of the
//! reading thread's time.

use std::io;
use std::sync::mpsc::SyncSender;
use std::sync::{Mutex, PoisonError};

use bytes::BytesMut;

use crate::record::{DecodeError, FRAME_HEADER_LEN, Frame};
use crate::replay::ReadError;
use crate::storage::StorageFile;

/// Whole records read from a segment, their frames and checksums verified.
pub(crate) struct Chunk {
    /// The records' bytes, framing included, back to back.
    pub data: BytesMut,
    /// Each record's length with its framing, in order.
    pub lens: Vec<usize>,
    /// Why reading stopped after these records; `None` when more chunks follow.
    pub end: Option<End>,
}

/// Chunk buffers no record uses any more, kept for the next chunks of every segment.
#[derive(Debug, Default)]
pub(crate) struct Spares(Mutex<Vec<BytesMut>>);

impl Spares {
    /// Keeps `buffer` for a later chunk.
    pub(crate) fn put(&self, buffer: BytesMut) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(buffer);
    }

    /// A kept buffer, or a new empty one.
    fn take(&self) -> BytesMut {
        let kept = self.0.lock().unwrap_or_else(PoisonError::into_inner).pop();
        kept.unwrap_or_default()
    }
}

/// How a segment's records end.
pub(crate) enum End {
    /// At the end of the file.
    Clean,
    /// At a damaged record (or an I/O error) right after the chunk's records.
    Failed(ReadError),
}

/// Where a chunk's bytes stop.
enum Split {
    /// The segment's records end here.
    End(End),
    /// The record at offset `at` of the chunk needs `need` bytes, more than the chunk has.
    Partial { at: usize, need: usize },
}

/// Sends the records of `file` from `offset` (a record boundary) up to `file_len` to `chunks`,
/// in chunks of about `chunk_size` bytes, ending with a chunk that says why they end. Chunk
/// buffers put back into `spares` are used again. Stops early when the receiver is gone.
pub(crate) fn scan(
    file: &dyn StorageFile,
    mut offset: u64,
    file_len: u64,
    max_record_size: u64,
    chunk_size: usize,
    chunks: &SyncSender<Chunk>,
    spares: &Spares,
) {
    let mut carry = Vec::new();
    let mut need = 0;
    loop {
        let buffer = spares.take();
        let size = chunk_size.max(need);
        let mut data = match read_chunk(file, offset, file_len, &carry, size, buffer) {
            Ok(data) => data,
            Err(error) => {
                let failed = Chunk {
                    data: BytesMut::new(),
                    lens: Vec::new(),
                    end: Some(End::Failed(ReadError::Io(error))),
                };
                let _ = chunks.send(failed);
                return;
            }
        };
        let mut lens = Vec::new();
        let available = file_len.saturating_sub(offset);
        match split_records(&data, available, max_record_size, &mut lens) {
            Split::End(end) => {
                data.truncate(lens.iter().sum());
                let _ = chunks.send(Chunk {
                    data,
                    lens,
                    end: Some(end),
                });
                return;
            }
            Split::Partial { at, need: needed } => {
                carry = data[at..].to_vec();
                data.truncate(at);
                need = needed;
                offset += at as u64;
                if chunks
                    .send(Chunk {
                        data,
                        lens,
                        end: None,
                    })
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// `carry` (the bytes at `offset`) followed by the file's next bytes, up to `size` bytes in all
/// but never past `file_len`, in `buffer` (whose old bytes are overwritten, not zeroed first).
fn read_chunk(
    file: &dyn StorageFile,
    offset: u64,
    file_len: u64,
    carry: &[u8],
    size: usize,
    mut data: BytesMut,
) -> io::Result<BytesMut> {
    let left = file_len.saturating_sub(offset);
    let len = usize::try_from(left).map_or(size, |left| left.min(size));
    data.resize(len.max(carry.len()), 0);
    data[..carry.len()].copy_from_slice(carry);
    let mut filled = carry.len();
    while filled < data.len() {
        match file.read_at(&mut data[filled..], offset + filled as u64) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(data)
}

/// Verifies the whole records at the start of `data` (which is followed by `available - len`
/// more bytes of the file) and appends their lengths to `lens`.
fn split_records(data: &[u8], available: u64, max: u64, lens: &mut Vec<usize>) -> Split {
    let mut at = 0;
    loop {
        let left = available - at as u64;
        if left == 0 {
            return Split::End(End::Clean);
        }
        if left < FRAME_HEADER_LEN as u64 {
            return bad(DecodeError::Incomplete(left));
        }
        let Some(header) = data[at..].first_chunk::<FRAME_HEADER_LEN>() else {
            let need = FRAME_HEADER_LEN;
            return Split::Partial { at, need };
        };
        let frame = match Frame::parse(*header, max, left - FRAME_HEADER_LEN as u64) {
            Ok(frame) => frame,
            Err(reason) => return bad(reason),
        };
        let need = FRAME_HEADER_LEN + frame.len as usize;
        let Some(content) = data.get(at + FRAME_HEADER_LEN..at + need) else {
            return Split::Partial { at, need };
        };
        if let Err(reason) = frame.verify(content) {
            return bad(reason);
        }
        lens.push(need);
        at += need;
    }
}

fn bad(reason: DecodeError) -> Split {
    Split::End(End::Failed(ReadError::Bad(reason)))
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::sync_channel;

    use bytes::Bytes;

    use super::*;
    use crate::Record;

    fn add(index: usize, len: usize) -> Record {
        let mut data = format!("{index:08}").into_bytes();
        data.resize(len.max(8), b'.');
        Record::Add {
            add_time_ms: index as i64,
            expiry_ms: 0,
            data: Bytes::from(data),
        }
    }

    fn encode(records: &[Record]) -> Vec<u8> {
        let mut buf = Vec::new();
        for record in records {
            record.encode_into(&mut buf);
        }
        buf
    }

    /// Every chunk `scan` sends for `bytes` read in chunks of `chunk_size`.
    fn scan_all(bytes: &[u8], chunk_size: usize) -> Vec<Chunk> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("segment");
        std::fs::write(&path, bytes).expect("write");
        let file = std::fs::File::open(&path).expect("open");
        let (sender, receiver) = sync_channel(1);
        let spares = Spares::default();
        let (file, sender, spares) = (&file, &sender, &spares);
        std::thread::scope(|s| {
            s.spawn(move || {
                let len = bytes.len() as u64;
                scan(file, 0, len, 1 << 20, chunk_size, sender, spares);
            });
            let mut chunks = Vec::new();
            while chunks
                .last()
                .is_none_or(|chunk: &Chunk| chunk.end.is_none())
            {
                chunks.push(receiver.recv().expect("a chunk"));
            }
            chunks
        })
    }

    /// The records of `chunks`, decoded, and how they end.
    fn records_of(chunks: Vec<Chunk>) -> (Vec<Record>, Option<End>) {
        let mut records = Vec::new();
        let mut end = None;
        for chunk in chunks {
            let data = chunk.data.freeze();
            let mut at = 0;
            for len in chunk.lens {
                let content = data.slice(at + FRAME_HEADER_LEN..at + len);
                records.push(crate::record::decode_content(content).expect("decodes"));
                at += len;
            }
            assert_eq!(at, data.len(), "a chunk holds whole records only");
            end = chunk.end;
        }
        (records, end)
    }

    fn records() -> Vec<Record> {
        (0..300)
            .map(|i| match i % 50 {
                0 => add(i, 5_000),
                7 => Record::Remove,
                _ => add(i, i % 13 * 31),
            })
            .collect()
    }

    #[test]
    fn records_come_back_whole_whatever_the_chunk_size() {
        let records = records();
        let bytes = encode(&records);
        for chunk_size in [1, 7, 100, 4096, 1 << 20] {
            let (back, end) = records_of(scan_all(&bytes, chunk_size));
            assert_eq!(back, records, "chunk size {chunk_size}");
            assert!(matches!(end, Some(End::Clean)), "chunk size {chunk_size}");
        }
    }

    #[test]
    fn damage_stops_after_the_last_intact_record() {
        let records = records();
        let bytes = encode(&records);
        let damaged_index = 211;
        let offset = encode(&records[..damaged_index]).len();
        let mut damaged = bytes.clone();
        damaged[offset + FRAME_HEADER_LEN + 3] ^= 0x40;
        for chunk_size in [100, 1 << 20] {
            let (back, end) = records_of(scan_all(&damaged, chunk_size));
            assert_eq!(back, records[..damaged_index]);
            assert!(
                matches!(
                    end,
                    Some(End::Failed(ReadError::Bad(DecodeError::Checksum { .. })))
                ),
                "chunk size {chunk_size}"
            );
        }
    }

    #[test]
    fn a_torn_tail_is_reported_as_incomplete() {
        let records = records();
        let bytes = encode(&records);
        let (back, end) = records_of(scan_all(&bytes[..bytes.len() - 3], 100));
        assert_eq!(back, records[..records.len() - 1]);
        assert!(matches!(
            end,
            Some(End::Failed(ReadError::Bad(DecodeError::PastEnd { .. })))
        ));
    }

    /// `bytes` as a file in a temporary directory (kept alive by the returned guard).
    fn segment_file(bytes: &[u8]) -> (tempfile::TempDir, std::fs::File) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("segment");
        std::fs::write(&path, bytes).expect("write");
        let file = std::fs::File::open(&path).expect("open");
        (dir, file)
    }

    #[test]
    fn a_buffer_handed_back_is_used_again() {
        let bytes = encode(&records());
        let (_dir, file) = segment_file(&bytes);
        let (sender, receiver) = sync_channel(64);
        let spares = Spares::default();
        let buffer = BytesMut::with_capacity(1 << 16);
        let reused = buffer.as_ptr();
        spares.put(buffer);
        scan(
            &file,
            0,
            bytes.len() as u64,
            1 << 20,
            4096,
            &sender,
            &spares,
        );
        drop(sender);
        let first = receiver.recv().expect("a chunk");
        assert_eq!(first.data.as_ptr(), reused);
    }

    #[test]
    fn a_file_shorter_than_its_length_fails_with_an_io_error() {
        let bytes = encode(&records());
        let (_dir, file) = segment_file(&bytes);
        let (sender, receiver) = sync_channel(64);
        let spares = Spares::default();
        let len = bytes.len() as u64 + 100;
        scan(&file, 0, len, 1 << 20, 4096, &sender, &spares);
        drop(sender);
        let ends: Vec<Option<End>> = receiver.iter().map(|chunk| chunk.end).collect();
        assert!(matches!(
            ends.last(),
            Some(Some(End::Failed(ReadError::Io(e)))) if e.kind() == io::ErrorKind::UnexpectedEof
        ));
    }
}
