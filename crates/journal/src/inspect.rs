//! Read-only inspection of a queue's journal files, for offline tools (`lannerctl journal`):
//! every segment file with its header, every record with its offset, the first damaged record
//! of each file, and the live state the records add up to. Never writes, truncates or deletes
//! anything, and takes no lock, so it can run beside a server (whose newest segment may then
//! end in a record still being written).

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::{IoContext, JournalError};
use crate::files;
use crate::record::{self, Record};
use crate::replay::{ReadError, read_record};
use crate::segment::{self, HEADER_LEN, Header, HeaderCheck};
use crate::storage::FsStorage;

/// Read buffer for a scan.
const READ_BUFFER: usize = 64 * 1024;

/// One segment file of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    /// The segment number from the file name.
    pub number: u64,
    /// The file.
    pub path: PathBuf,
    /// Its length in bytes.
    pub len: u64,
}

/// The segment files of `queue` in `dir`, oldest first (none if `dir` does not exist).
/// Leftover rewrite temp files are not listed.
pub fn segment_files(dir: &Path, queue: &str) -> Result<Vec<SegmentFile>, JournalError> {
    files::queue_files(&FsStorage, dir, queue)?
        .segments
        .into_iter()
        .map(|(number, path)| {
            let len = std::fs::metadata(&path).at(&path)?.len();
            Ok(SegmentFile { number, path, len })
        })
        .collect()
}

/// The first damaged spot of a segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset of the damaged header (0) or record.
    pub offset: u64,
    /// What is wrong there.
    pub reason: String,
    /// Whether the server repairs this damage when it is in the newest segment: a torn record
    /// with nothing intact after it (truncated), or a torn header (the file is dropped). Any
    /// other damage, and an invalid header anywhere, makes it refuse to start (unless
    /// `--salvage`).
    pub torn_tail: bool,
    /// Whether every byte from `offset` to the end of the file is zero: in the newest segment
    /// that is the clean end of a zero fill ahead (cut off on start without a word), in an
    /// older one damage like any other.
    pub zero_fill: bool,
}

/// What a scan of one segment file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    /// The header's snapshot flag; `None` when the header is damaged.
    pub snapshot: Option<bool>,
    /// Intact records read before the end or the damage.
    pub records: u64,
    /// Bytes up to the end of the last intact record.
    pub valid_bytes: u64,
    /// The first damage, if any; nothing after it is read.
    pub damage: Option<Damage>,
}

/// Reads the segment file `file` and hands each intact record, with its byte offset and its
/// length on disk, to `visit`, in order. Stops at the first damage, which the scan reports
/// rather than fails with; an I/O error or a header of an unknown version fails.
pub fn scan_segment(
    file: &SegmentFile,
    max_record_size: u64,
    visit: &mut dyn FnMut(u64, u64, &Record),
) -> Result<SegmentScan, JournalError> {
    let path = &file.path;
    let handle = File::open(path).at(path)?;
    let header = segment::read_header_bytes(&handle, path)?;
    let snapshot = match Header::check(&header, file.number) {
        HeaderCheck::Valid(header) => header.snapshot,
        HeaderCheck::Version(version) => {
            return Err(JournalError::Version {
                path: path.clone(),
                version,
            });
        }
        HeaderCheck::Torn => return Ok(damaged_header("truncated segment header", true)),
        HeaderCheck::Invalid(reason) => return Ok(damaged_header(&reason, false)),
    };
    let file_len = handle.metadata().at(path)?.len();
    let mut reader = BufReader::with_capacity(READ_BUFFER, &handle);
    reader.seek(SeekFrom::Start(HEADER_LEN)).at(path)?;
    let mut scan = SegmentScan {
        snapshot: Some(snapshot),
        records: 0,
        valid_bytes: HEADER_LEN,
        damage: None,
    };
    loop {
        let offset = scan.valid_bytes;
        match read_record(&mut reader, file_len - offset, max_record_size) {
            Ok(None) => return Ok(scan),
            Ok(Some((record, len))) => {
                visit(offset, len, &record);
                scan.records += 1;
                scan.valid_bytes += len;
            }
            Err(ReadError::Io(error)) => return Err(error).at(path),
            Err(ReadError::Bad(reason)) => {
                let rest = read_from(&handle, path, offset)?;
                scan.damage = Some(Damage {
                    offset,
                    reason: reason.to_string(),
                    torn_tail: !(0..rest.len()).any(|at| record::intact_record_at(&rest, at)),
                    zero_fill: rest.iter().all(|&b| b == 0),
                });
                return Ok(scan);
            }
        }
    }
}

fn damaged_header(reason: &str, torn_tail: bool) -> SegmentScan {
    SegmentScan {
        snapshot: None,
        records: 0,
        valid_bytes: 0,
        damage: Some(Damage {
            offset: 0,
            reason: reason.to_owned(),
            torn_tail,
            zero_fill: false,
        }),
    }
}

/// The file from `offset` to its end (for the server's torn-tail and zero-fill tests).
fn read_from(mut handle: &File, path: &Path, offset: u64) -> Result<Bytes, JournalError> {
    let mut rest = Vec::new();
    handle
        .seek(SeekFrom::Start(offset))
        .and_then(|_| handle.read_to_end(&mut rest))
        .at(path)?;
    Ok(Bytes::from(rest))
}

/// The queue state that a sequence of records adds up to, applied as replay does
/// (docs/journal-format.md, "Meaning").
#[derive(Debug, Default)]
pub struct LiveState {
    queued: VecDeque<Record>,
    /// Open reads by the order they were opened in (value: xid and the item's `Add`).
    open: BTreeMap<u64, (u32, Record)>,
    opened: u64,
}

impl LiveState {
    /// Applies one record. Records that do not fit the state (a remove from an empty queue,
    /// an unknown xid) change nothing, as in replay.
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::Add {
                add_time_ms,
                expiry_ms,
                data,
            } => self.queued.push_back(Record::Add {
                add_time_ms: *add_time_ms,
                expiry_ms: *expiry_ms,
                // Replayed data is a slice of a 1 MiB read chunk: a copy keeps only the item.
                data: Bytes::copy_from_slice(data),
            }),
            Record::Remove => {
                self.queued.pop_front();
            }
            Record::RemoveTentative { xid } => {
                if let Some(item) = self.queued.pop_front() {
                    self.opened += 1;
                    self.open.insert(self.opened, (*xid, item));
                }
            }
            Record::Unremove { xid } => {
                if let Some(item) = self.take_open(*xid) {
                    self.queued.push_front(item);
                }
            }
            Record::ConfirmRemove { xid } => {
                self.take_open(*xid);
            }
        }
    }

    fn take_open(&mut self, xid: u32) -> Option<Record> {
        let key = *self.open.iter().find(|(_, (open, _))| *open == xid)?.0;
        self.open.remove(&key).map(|(_, item)| item)
    }

    /// Items waiting in the queue.
    pub fn items(&self) -> usize {
        self.queued.len()
    }

    /// Reads that are open.
    pub fn open_reads(&self) -> usize {
        self.open.len()
    }

    /// The records of a snapshot of this state, as a rewrite writes it: for each open read
    /// (oldest first) its `Add` and `RemoveTentative`, then one `Add` per queued item in order.
    pub fn into_records(self) -> Vec<Record> {
        let mut records = Vec::with_capacity(self.open.len() * 2 + self.queued.len());
        for (xid, item) in self.open.into_values() {
            records.push(item);
            records.push(Record::RemoveTentative { xid });
        }
        records.extend(self.queued);
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Journal, JournalOptions};

    fn add(data: &'static str) -> Record {
        Record::Add {
            add_time_ms: 1,
            expiry_ms: 0,
            data: Bytes::from_static(data.as_bytes()),
        }
    }

    #[test]
    fn live_state_follows_replay_rules() {
        let mut state = LiveState::default();
        for record in [
            add("a"),
            add("b"),
            add("c"),
            add("d"),
            Record::RemoveTentative { xid: 7 },
            Record::RemoveTentative { xid: 8 },
            Record::Unremove { xid: 7 },
            Record::Remove,
            Record::RemoveTentative { xid: 9 },
            Record::ConfirmRemove { xid: 9 },
            Record::Unremove { xid: 99 },
        ] {
            state.apply(&record);
        }
        assert_eq!((state.items(), state.open_reads()), (1, 1));
        assert_eq!(
            state.into_records(),
            vec![add("b"), Record::RemoveTentative { xid: 8 }, add("d")]
        );
    }

    #[test]
    fn scan_reports_offsets_and_the_first_damage() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path(), "q", JournalOptions::default()).unwrap();
        let mut seq = 0;
        for data in ["one", "two", "three"] {
            seq = journal.append(&add(data));
        }
        journal.write_through(seq).unwrap();
        journal.sync_all().unwrap();
        drop(journal);
        let files = segment_files(dir.path(), "q").unwrap();
        assert_eq!(files.len(), 1);
        let mut offsets = Vec::new();
        let scan = scan_segment(&files[0], u64::MAX, &mut |offset, len, _| {
            offsets.push((offset, len));
        })
        .unwrap();
        assert_eq!(scan.records, 3);
        assert_eq!(scan.damage, None);
        assert_eq!(offsets[0], (HEADER_LEN, 8 + 17 + 3));
        assert_eq!(offsets[1].0, offsets[0].0 + offsets[0].1);
        assert_eq!(scan.valid_bytes, files[0].len);

        let mut bytes = std::fs::read(&files[0].path).unwrap();
        let second = offsets[1].0 as usize;
        bytes[second + 10] ^= 0xff;
        std::fs::write(&files[0].path, &bytes).unwrap();
        let scan = scan_segment(&files[0], u64::MAX, &mut |_, _, _| {}).unwrap();
        let damage = scan.damage.expect("damage found");
        assert_eq!(damage.offset, offsets[1].0);
        assert!(damage.reason.contains("checksum"), "{}", damage.reason);
        assert!(!damage.torn_tail, "an intact record follows the damage");
        assert_eq!(scan.records, 1);
        assert_eq!(
            std::fs::read(&files[0].path).unwrap(),
            bytes,
            "nothing written"
        );
    }

    #[test]
    fn scan_tells_a_zero_fill_from_a_torn_record_before_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let opts = JournalOptions {
            zero_fill_ahead: 4096,
            ..JournalOptions::default()
        };
        let (journal, _) = Journal::open(dir.path(), "q", opts).unwrap();
        journal.sync_through(journal.append(&add("one"))).unwrap();
        drop(journal);
        let file = &segment_files(dir.path(), "q").unwrap()[0];
        let scan = scan_segment(file, u64::MAX, &mut |_, _, _| {}).unwrap();
        let damage = scan.damage.expect("zeros after the record");
        assert_eq!(scan.records, 1);
        assert_eq!(damage.offset, scan.valid_bytes);
        assert!(damage.zero_fill && damage.torn_tail, "{damage:?}");
        assert!(file.len > scan.valid_bytes + 4000);

        let mut bytes = std::fs::read(&file.path).unwrap();
        bytes[scan.valid_bytes as usize] = 1;
        std::fs::write(&file.path, &bytes).unwrap();
        let damage = scan_segment(file, u64::MAX, &mut |_, _, _| {})
            .unwrap()
            .damage
            .expect("a torn record");
        assert!(!damage.zero_fill && damage.torn_tail, "{damage:?}");
    }

    /// The server drops a newest segment whose header is cut short, but refuses to start on an
    /// invalid header, wherever it is.
    #[test]
    fn only_a_torn_header_counts_as_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path(), "q", JournalOptions::default()).unwrap();
        journal.sync_all().unwrap();
        drop(journal);
        let file = &segment_files(dir.path(), "q").unwrap()[0];
        let header = std::fs::read(&file.path).unwrap();

        let mut invalid = header.clone();
        invalid[0] ^= 0xff;
        std::fs::write(&file.path, &invalid).unwrap();
        let damage = scan_segment(file, u64::MAX, &mut |_, _, _| {})
            .unwrap()
            .damage
            .expect("an invalid header");
        assert_eq!(damage.offset, 0);
        assert!(!damage.torn_tail, "{damage:?}");

        std::fs::write(&file.path, &header[..header.len() / 2]).unwrap();
        let damage = scan_segment(file, u64::MAX, &mut |_, _, _| {})
            .unwrap()
            .damage
            .expect("a torn header");
        assert!(damage.torn_tail, "{damage:?}");
    }
}
