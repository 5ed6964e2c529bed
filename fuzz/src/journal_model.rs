//! The journal_replay input format and a reference model of journal recovery.
//!
//! Everything here is written from docs/journal-format.md alone, so the target compares two
//! independent readings of the format: lanner-journal's code and this model.
//!
//! # Input format
//!
//! ```text
//! byte 0      options: bits 0-1 max_record_size (default, 64, 300, 40)
//!                      bits 2-3 segment_size (default, 0, 64, 256)
//!                      bit 4    segment numbers end at u64::MAX (exhaustion)
//!                      bit 5    leave a stale `.journal.tmp` (open must delete it)
//!                      bit 6    add foreign files (open must not touch them)
//!                      bit 7    start every segment's records with a valid 70 000-byte Add,
//!                               larger than replay's old 64 KiB read buffer
//! byte 1      first segment number (low byte)
//! byte 2      number of segment files, mod 4 (0: an empty directory)
//! per segment: control byte, u16 LE body length, body (cut short if the input ends)
//!   control bits 0-1 header: 0 valid header (snapshot flag = bit 2)
//!                            1 none: the body is the whole file, verbatim
//!                            2 the body's first 14 bytes with a correct header CRC appended
//!                            3 18 zero bytes (a torn header)
//!           bit 3    rewrite the CRC of every record the length fields delimit, so
//!                    mutations reach record decoding instead of dying on checksums
//!           bits 4-7 k: then break the CRC of the k-th such record (0: none)
//! the rest    operations on the reopened journal, at most MAX_OPS:
//!   tag % 4 == 0  append a record (see `record_from`)
//!   tag % 4 == 1  write_through the last seq
//!   tag % 4 == 2  sync_through the last seq
//!   tag % 4 == 3  rewrite with (next byte % 4) records
//!   tag == 0xff   delete the journal (instead of a rewrite)
//! ```

use bytes::Bytes;
use lanner_journal::Record;

/// The queue every scenario uses.
pub const QUEUE: &str = "q";
/// Bytes of a segment header.
pub const HEADER_LEN: usize = 18;
/// Bytes of a record's framing (`len` and `crc`).
pub const FRAME_LEN: usize = 8;
/// The most operations one input runs (each may touch the disk).
pub const MAX_OPS: usize = 24;
/// The default `max_record_size` (JournalOptions::default).
const DEFAULT_MAX_RECORD: u64 = (256 << 20) + 64;
/// The default `segment_size`.
const DEFAULT_SEGMENT_SIZE: u64 = 16 << 20;

/// One segment file to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    /// The number in its file name.
    pub number: u64,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// One operation on the reopened journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `Journal::append`.
    Append(Record),
    /// `Journal::write_through(last seq)`.
    Write,
    /// `Journal::sync_through(last seq)`.
    Sync,
    /// `Journal::rewrite(live)`.
    Rewrite(Vec<Record>),
    /// `Journal::delete`.
    Delete,
}

/// A decoded journal_replay input.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// `JournalOptions::max_record_size`.
    pub max_record_size: u64,
    /// `JournalOptions::segment_size`.
    pub segment_size: u64,
    /// The segment files, in increasing number order.
    pub segments: Vec<SegmentFile>,
    /// A leftover rewrite temp file to create (its number and content).
    pub temp: Option<SegmentFile>,
    /// Add files that are not this queue's segments.
    pub foreign: bool,
    /// What to do with the journal after recovery.
    pub ops: Vec<Op>,
}

/// Reads input bytes front to back; missing bytes read as zero, so every input decodes.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&first, rest)) => {
                self.bytes = rest;
                first
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.bytes.len());
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        taken.to_vec()
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl Scenario {
    /// Decodes an input (see the module docs). Never fails.
    pub fn decode(input: &[u8]) -> Scenario {
        let mut r = Reader { bytes: input };
        let options = r.byte();
        let max_record_size = [DEFAULT_MAX_RECORD, 64, 300, 40][usize::from(options & 3)];
        let segment_size = [DEFAULT_SEGMENT_SIZE, 0, 64, 256][usize::from((options >> 2) & 3)];
        let first = u64::from(r.byte());
        let count = usize::from(r.byte() % 4);
        let first = if options & 0x10 != 0 {
            // The last segment is u64::MAX or one below it.
            u64::MAX - (count.max(1) as u64 - 1) - (first % 2)
        } else {
            first
        };
        let mut segments = Vec::new();
        for i in 0..count {
            let control = r.byte();
            let len = usize::from(u16::from_le_bytes([r.byte(), r.byte()]));
            let body = r.take(len);
            let number = first + i as u64;
            let big = if options & 0x80 != 0 {
                big_record(number)
            } else {
                Vec::new()
            };
            segments.push(SegmentFile {
                number,
                bytes: build_segment(control, number, &body, &big),
            });
        }
        let temp = (options & 0x20 != 0).then(|| {
            let number = segments.last().map_or(1, |s| s.number.saturating_add(1));
            SegmentFile {
                number,
                bytes: header(number, true).to_vec(),
            }
        });
        let mut ops = Vec::new();
        while !r.is_empty() && ops.len() < MAX_OPS {
            let tag = r.byte();
            ops.push(match tag % 4 {
                _ if tag == 0xff => Op::Delete,
                0 => Op::Append(record_from(&mut r)),
                1 => Op::Write,
                2 => Op::Sync,
                _ => {
                    let n = r.byte() % 4;
                    Op::Rewrite((0..n).map(|_| record_from(&mut r)).collect())
                }
            });
        }
        Scenario {
            max_record_size,
            segment_size,
            segments,
            temp,
            foreign: options & 0x40 != 0,
            ops,
        }
    }
}

/// A record from the input: kind byte % 5 (Add, Remove, RemoveTentative, Unremove,
/// ConfirmRemove); an Add takes a time byte, an expiry byte and a data length byte (% 64, the
/// data follows); the xid records take one byte.
fn record_from(r: &mut Reader<'_>) -> Record {
    match r.byte() % 5 {
        0 => {
            let add_time_ms = i64::from(r.byte()) * 1_000_003 - 7;
            let expiry_ms = i64::from(r.byte().cast_signed()) << 40;
            let len = usize::from(r.byte() % 64);
            Record::Add {
                add_time_ms,
                expiry_ms,
                data: Bytes::from(r.take(len)),
            }
        }
        1 => Record::Remove,
        2 => Record::RemoveTentative {
            xid: u32::from(r.byte()),
        },
        3 => Record::Unremove {
            xid: u32::from(r.byte()) << 24 | 1,
        },
        _ => Record::ConfirmRemove {
            xid: u32::from(r.byte()),
        },
    }
}

/// A valid `Add` of 70 000 bytes (over the 64 KiB read buffer replay had before its 1 MiB chunks).
fn big_record(number: u64) -> Vec<u8> {
    encode_record(&Record::Add {
        add_time_ms: number as i64,
        expiry_ms: 0,
        data: Bytes::from(vec![number as u8; 70_000]),
    })
}

/// A segment file's bytes from its control byte and body (see the module docs), with `first`
/// (whole records) inserted where the records start.
fn build_segment(control: u8, number: u64, body: &[u8], first: &[u8]) -> Vec<u8> {
    let (mut bytes, records_at) = match control & 3 {
        0 => {
            let mut bytes = header(number, control & 4 != 0).to_vec();
            bytes.extend_from_slice(body);
            (bytes, HEADER_LEN)
        }
        1 => (body.to_vec(), HEADER_LEN),
        2 => {
            let fields = &body[..body.len().min(14)];
            let mut bytes = fields.to_vec();
            if fields.len() == 14 {
                bytes.extend_from_slice(&crc32c::crc32c(fields).to_le_bytes());
            }
            bytes.extend_from_slice(&body[fields.len()..]);
            (bytes, HEADER_LEN)
        }
        _ => {
            let mut bytes = vec![0; HEADER_LEN];
            bytes.extend_from_slice(body);
            (bytes, HEADER_LEN)
        }
    };
    let at = records_at.min(bytes.len());
    bytes.splice(at..at, first.iter().copied());
    if control & 8 != 0 && bytes.len() > records_at {
        fix_checksums(&mut bytes[records_at..], usize::from(control >> 4));
    }
    bytes
}

/// Rewrites the CRC of every record the length fields delimit, from the start of `records`
/// until a length runs past the end; then breaks the CRC of the `broken`-th one (1-based).
pub fn fix_checksums(records: &mut [u8], broken: usize) {
    let mut at = 0;
    let mut index = 0;
    while let Some(frame) = records.get(at..at + FRAME_LEN) {
        let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let end = at + FRAME_LEN + len as usize;
        if len == 0 || end > records.len() {
            break;
        }
        index += 1;
        let mut crc = checksum(&records[at..at + 4], &records[at + FRAME_LEN..end]);
        if index == broken {
            crc ^= 0x8000_0001;
        }
        records[at + 4..at + FRAME_LEN].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

/// CRC32C over the 4 length bytes followed by the content.
fn checksum(len_bytes: &[u8], content: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(len_bytes), content)
}

/// A segment header (docs: "Segment header").
pub fn header(number: u64, snapshot: bool) -> [u8; HEADER_LEN] {
    let mut bytes = [0; HEADER_LEN];
    bytes[..4].copy_from_slice(b"LNRJ");
    bytes[4] = 1;
    bytes[5] = u8::from(snapshot);
    bytes[6..14].copy_from_slice(&number.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..14]);
    bytes[14..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

/// A record's bytes (docs: "Records").
pub fn encode_record(record: &Record) -> Vec<u8> {
    let mut content = Vec::new();
    match record {
        Record::Add {
            add_time_ms,
            expiry_ms,
            data,
        } => {
            content.push(1);
            content.extend_from_slice(&add_time_ms.to_le_bytes());
            content.extend_from_slice(&expiry_ms.to_le_bytes());
            content.extend_from_slice(data);
        }
        Record::Remove => content.push(2),
        Record::RemoveTentative { xid } => {
            content.push(3);
            content.extend_from_slice(&xid.to_le_bytes());
        }
        Record::Unremove { xid } => {
            content.push(4);
            content.extend_from_slice(&xid.to_le_bytes());
        }
        Record::ConfirmRemove { xid } => {
            content.push(5);
            content.extend_from_slice(&xid.to_le_bytes());
        }
    }
    let len = (content.len() as u32).to_le_bytes();
    let mut out = len.to_vec();
    out.extend_from_slice(&checksum(&len, &content).to_le_bytes());
    out.extend_from_slice(&content);
    out
}

/// The `len` field of a record: opcode plus payload.
pub fn content_len(record: &Record) -> u64 {
    (encode_record(record).len() - FRAME_LEN) as u64
}

/// What a segment's first bytes are (docs: "Replay and repair", step 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    /// Usable; the snapshot flag.
    Valid(bool),
    /// The magic matches and the version is not 1.
    Version,
    /// Shorter than a header, or 18 zero bytes.
    Torn,
    /// Anything else.
    Invalid,
}

/// Classifies the first bytes of the file of segment `number`.
pub fn check_header(bytes: &[u8], number: u64) -> HeaderKind {
    if bytes.len() > 4 && &bytes[..4] == b"LNRJ" && bytes[4] != 1 {
        return HeaderKind::Version;
    }
    let Some(head) = bytes.get(..HEADER_LEN) else {
        return HeaderKind::Torn;
    };
    if head.iter().all(|&b| b == 0) {
        return HeaderKind::Torn;
    }
    let flags = head[5];
    let stored = u32::from_le_bytes([head[14], head[15], head[16], head[17]]);
    let named = u64::from_le_bytes(head[6..14].try_into().unwrap_or_default());
    if &head[..4] != b"LNRJ"
        || crc32c::crc32c(&head[..14]) != stored
        || flags & !1 != 0
        || named != number
    {
        return HeaderKind::Invalid;
    }
    HeaderKind::Valid(flags == 1)
}

/// Decodes the record at `bytes[at..]` with `len` at most `max`; `None` if it is damaged in
/// any way (docs: "A record is valid when ...").
pub fn decode_record(bytes: &[u8], at: usize, max: u64) -> Option<(Record, usize)> {
    let frame = bytes.get(at..at.checked_add(FRAME_LEN)?)?;
    let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
    let stored = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
    if len == 0 || u64::from(len) > max {
        return None;
    }
    let content = bytes.get(at + FRAME_LEN..(at + FRAME_LEN).checked_add(len as usize)?)?;
    if checksum(&frame[..4], content) != stored {
        return None;
    }
    let (&opcode, payload) = content.split_first()?;
    let xid = || payload.try_into().ok().map(u32::from_le_bytes);
    let record = match opcode {
        1 if payload.len() >= 16 => Record::Add {
            add_time_ms: i64::from_le_bytes(payload[..8].try_into().ok()?),
            expiry_ms: i64::from_le_bytes(payload[8..16].try_into().ok()?),
            data: Bytes::copy_from_slice(&payload[16..]),
        },
        2 if payload.is_empty() => Record::Remove,
        3 => Record::RemoveTentative { xid: xid()? },
        4 => Record::Unremove { xid: xid()? },
        5 => Record::ConfirmRemove { xid: xid()? },
        _ => return None,
    };
    Some((record, FRAME_LEN + len as usize))
}

/// What `Journal::open` must do, by the rules of docs/journal-format.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// It succeeds.
    Open(ExpectedOpen),
    /// It fails with `JournalError::Version` naming this segment.
    Version {
        /// The segment whose version byte is unknown.
        number: u64,
    },
    /// It fails with `JournalError::Corrupt` naming this segment and offset.
    Corrupt {
        /// The damaged segment.
        number: u64,
        /// Offset of the damage (0 for a header).
        offset: u64,
    },
}

/// A successful open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedOpen {
    /// The replayed records, in order.
    pub records: Vec<Record>,
    /// (segment, offset, dropped bytes) of every truncation or removal, sorted.
    pub truncations: Vec<(u64, u64, u64)>,
    /// The live segments and their lengths after repair, oldest first.
    pub live: Vec<(u64, u64)>,
    /// Segments that must be gone afterwards (removed torn or bad headers, superseded ones).
    pub removed: Vec<u64>,
}

/// What `Journal::open` must return, and what it may already have deleted when it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What `open` returns.
    pub expected: Expected,
    /// Segments deleted even when `open` fails (they were handled before the failure).
    pub removed_before_failure: Vec<u64>,
}

/// The reference model of `Journal::open` over `segments` (sorted by number).
pub fn expected_open(segments: &[SegmentFile], max_record_size: u64, salvage: bool) -> Outcome {
    let mut live: Vec<&SegmentFile> = Vec::new();
    let mut removed = Vec::new();
    let mut truncations = Vec::new();
    let mut superseded: &[SegmentFile] = &[];
    let fail = |expected, removed: &Vec<u64>| Outcome {
        expected,
        removed_before_failure: removed.clone(),
    };
    for (i, segment) in segments.iter().enumerate().rev() {
        match check_header(&segment.bytes, segment.number) {
            HeaderKind::Valid(snapshot) => {
                live.push(segment);
                if snapshot {
                    superseded = &segments[..i];
                    break;
                }
            }
            HeaderKind::Version => {
                let number = segment.number;
                return fail(Expected::Version { number }, &removed);
            }
            // A torn newest segment (a crash right after creating it) is dropped in any mode,
            // any other bad header only with salvage.
            HeaderKind::Torn if live.is_empty() => {
                removed.push(segment.number);
                truncations.push((segment.number, 0, segment.bytes.len() as u64));
            }
            HeaderKind::Torn | HeaderKind::Invalid if salvage => {
                removed.push(segment.number);
                truncations.push((segment.number, 0, segment.bytes.len() as u64));
            }
            HeaderKind::Torn | HeaderKind::Invalid => {
                let number = segment.number;
                return fail(Expected::Corrupt { number, offset: 0 }, &removed);
            }
        }
    }
    removed.extend(superseded.iter().map(|segment| segment.number));
    live.reverse();

    let mut records = Vec::new();
    let mut lengths = Vec::new();
    for (i, segment) in live.iter().enumerate() {
        let newest = i + 1 == live.len();
        let bytes = &segment.bytes;
        let mut at = HEADER_LEN;
        while at < bytes.len() {
            match decode_record(bytes, at, max_record_size) {
                Some((record, len)) => {
                    records.push(record);
                    at += len;
                }
                None => break,
            }
        }
        if at < bytes.len() {
            let torn_tail =
                newest && !(at..bytes.len()).any(|p| decode_record(bytes, p, u64::MAX).is_some());
            if !torn_tail && !salvage {
                let (number, offset) = (segment.number, at as u64);
                return fail(Expected::Corrupt { number, offset }, &removed);
            }
            // Zeros ending the newest segment are the clean end of a zero fill ahead: cut, not
            // reported.
            let zero_fill = newest && bytes[at..].iter().all(|&b| b == 0);
            if !zero_fill {
                truncations.push((segment.number, at as u64, (bytes.len() - at) as u64));
            }
        }
        lengths.push((segment.number, at as u64));
    }
    truncations.sort_unstable();
    removed.sort_unstable();
    Outcome {
        expected: Expected::Open(ExpectedOpen {
            records,
            truncations,
            live: lengths,
            removed,
        }),
        removed_before_failure: Vec::new(),
    }
}

/// The reference model of the journal after recovery, for the operations phase.
#[derive(Debug, Clone)]
pub struct OpsModel {
    /// Records on disk (what a reopen must replay).
    pub disk: Vec<Record>,
    /// Appended, not yet written.
    pub pending: Vec<Record>,
    /// A scheduled rewrite, not yet written.
    pub snapshot: Option<Vec<Record>>,
    /// A write failed or a record was too large: every later write fails.
    pub poisoned: bool,
    /// The current segment's number and length.
    pub segment: u64,
    /// Bytes in the current segment.
    pub segment_len: u64,
    /// Largest record content accepted.
    pub limit: u64,
    /// `segment_size`.
    pub segment_size: u64,
    /// Rotations done so far.
    pub rotations: u64,
    /// Rewrites done so far.
    pub rewrites: u64,
    /// The journal was deleted: its files are gone, appends are dropped, writes succeed.
    pub deleted: bool,
}

impl OpsModel {
    /// Appends a record (poisons the journal if it is too large to read back).
    pub fn append(&mut self, record: &Record) {
        if self.deleted || self.poisoned {
            return;
        }
        if content_len(record) > self.limit {
            self.poisoned = true;
        } else {
            self.pending.push(record.clone());
        }
    }

    /// Schedules a rewrite to `live`.
    pub fn rewrite(&mut self, live: &[Record]) {
        if self.deleted || self.poisoned {
            return;
        }
        if live.iter().any(|record| content_len(record) > self.limit) {
            self.poisoned = true;
        } else {
            self.pending.clear();
            self.snapshot = Some(live.to_vec());
        }
    }

    /// Writes everything pending; whether it must succeed.
    pub fn write(&mut self) -> bool {
        if self.deleted {
            return true;
        }
        if self.poisoned {
            return false;
        }
        if let Some(live) = self.snapshot.take() {
            let Some(next) = self.segment.checked_add(1) else {
                self.poisoned = true;
                return false;
            };
            self.segment = next;
            self.segment_len = HEADER_LEN as u64 + encoded_len(&live);
            self.disk = live;
            self.rewrites += 1;
        }
        if !self.pending.is_empty() {
            if self.segment_len > self.segment_size {
                let Some(next) = self.segment.checked_add(1) else {
                    self.poisoned = true;
                    return false;
                };
                self.segment = next;
                self.segment_len = HEADER_LEN as u64;
                self.rotations += 1;
            }
            self.segment_len += encoded_len(&self.pending);
            self.disk.append(&mut self.pending);
        }
        true
    }

    /// Deletes the journal: nothing is left on disk or pending.
    pub fn delete(&mut self) {
        self.deleted = true;
        self.disk.clear();
        self.pending.clear();
        self.snapshot = None;
    }
}

/// Bytes `records` take on disk.
pub fn encoded_len(records: &[Record]) -> u64 {
    records.iter().map(|r| encode_record(r).len() as u64).sum()
}

/// `limit` as `Journal` applies it: `max_record_size`, but never more than a `u32` length.
pub fn record_limit(max_record_size: u64) -> u64 {
    max_record_size.min(u64::from(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_from_the_format_doc() {
        let add = Record::Add {
            add_time_ms: 0x0102,
            expiry_ms: 3,
            data: Bytes::from_static(b"hi"),
        };
        let bytes = encode_record(&add);
        assert_eq!(bytes.len(), 27);
        assert_eq!(&bytes[..4], &[0x13, 0, 0, 0]);
        assert_eq!(&bytes[8..], b"\x01\x02\x01\0\0\0\0\0\0\x03\0\0\0\0\0\0\0hi");
        assert_eq!(decode_record(&bytes, 0, u64::MAX), Some((add, 27)));
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn headers() {
        assert_eq!(check_header(&header(7, true), 7), HeaderKind::Valid(true));
        assert_eq!(check_header(&header(7, false), 8), HeaderKind::Invalid);
        assert_eq!(check_header(&[0; 18], 1), HeaderKind::Torn);
        assert_eq!(check_header(b"LNRJ\x01", 1), HeaderKind::Torn);
        assert_eq!(check_header(b"LNRJ\x02", 1), HeaderKind::Version);
    }

    #[test]
    fn torn_tail_versus_damage_in_the_middle() {
        let mut bytes = header(1, false).to_vec();
        bytes.extend(encode_record(&Record::Remove));
        let good = bytes.len();
        bytes.extend(encode_record(&Record::Unremove { xid: 9 }));
        bytes[good + 4] ^= 1;
        let segment = SegmentFile {
            number: 1,
            bytes: bytes.clone(),
        };
        let outcome = expected_open(std::slice::from_ref(&segment), u64::MAX, false);
        let Expected::Open(open) = outcome.expected else {
            panic!("{outcome:?}")
        };
        assert_eq!(open.records, [Record::Remove]);
        assert_eq!(open.truncations, [(1, good as u64, 13)]);

        bytes.extend(encode_record(&Record::Remove));
        let segment = SegmentFile { number: 1, bytes };
        let outcome = expected_open(std::slice::from_ref(&segment), u64::MAX, false);
        assert_eq!(
            outcome.expected,
            Expected::Corrupt {
                number: 1,
                offset: good as u64
            }
        );
        let outcome = expected_open(&[segment], u64::MAX, true);
        let Expected::Open(open) = outcome.expected else {
            panic!("{outcome:?}")
        };
        assert_eq!(open.records, [Record::Remove]);
    }

    /// Segment `number` holding one `Remove` and then 40 zero bytes; also the records' end.
    fn segment_ending_in_zeros(number: u64) -> (SegmentFile, u64) {
        let mut bytes = header(number, false).to_vec();
        bytes.extend(encode_record(&Record::Remove));
        let records_end = bytes.len() as u64;
        bytes.extend([0; 40]);
        (SegmentFile { number, bytes }, records_end)
    }

    #[test]
    fn zeros_ending_the_newest_segment_are_cut_without_a_truncation() {
        let (older, older_end) = segment_ending_in_zeros(1);
        let (newest, newest_end) = segment_ending_in_zeros(2);
        let outcome = expected_open(std::slice::from_ref(&newest), u64::MAX, false);
        let Expected::Open(open) = outcome.expected else {
            panic!("{outcome:?}")
        };
        assert!(open.truncations.is_empty(), "{:?}", open.truncations);
        assert_eq!(open.live, [(2, newest_end)]);

        let outcome = expected_open(&[older, newest], u64::MAX, false);
        assert_eq!(
            outcome.expected,
            Expected::Corrupt {
                number: 1,
                offset: older_end
            }
        );
    }
}
