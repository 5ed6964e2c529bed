//! Helpers shared by the integration tests.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use lanner_journal::{Journal, JournalOptions, Record, Replay};

/// Bytes of a segment header (docs/journal-format.md).
pub const HEADER_LEN: u64 = 18;

/// A distinct `Add` record.
pub fn add(n: u32) -> Record {
    Record::Add {
        add_time_ms: 1_000 + i64::from(n),
        expiry_ms: 0,
        data: Bytes::from(format!("item {n}")),
    }
}

/// A small journal with every record kind.
pub fn mixed_records() -> Vec<Record> {
    vec![
        add(1),
        add(2),
        Record::RemoveTentative { xid: 1 },
        add(3),
        Record::Unremove { xid: 1 },
        Record::Remove,
        Record::RemoveTentative { xid: 2 },
        Record::ConfirmRemove { xid: 2 },
    ]
}

pub fn opts(segment_size: u64) -> JournalOptions {
    JournalOptions {
        segment_size,
        ..JournalOptions::default()
    }
}

pub fn salvage() -> JournalOptions {
    JournalOptions {
        salvage: true,
        ..JournalOptions::default()
    }
}

pub fn open(dir: &Path, options: JournalOptions) -> (Journal, Replay) {
    Journal::open(dir, "q", options).unwrap()
}

/// Appends `records` and writes and fsyncs them.
pub fn write_all(journal: &Journal, records: &[Record]) {
    for record in records {
        journal.append(record);
    }
    journal.sync_all().unwrap();
}

/// Appends `records`, writing each through on its own (one write per record).
pub fn write_each(journal: &Journal, records: &[Record]) {
    for record in records {
        journal.write_through(journal.append(record)).unwrap();
    }
}

/// Path of segment `n` of queue `q`.
pub fn segment(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("q.{n:020}.journal"))
}

/// Sorted names of the files in `dir`.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Sum of the sizes of the journal files of `q` in `dir`.
pub fn disk_bytes(dir: &Path) -> u64 {
    names(dir)
        .iter()
        .filter(|n| n.starts_with("q.") && n.ends_with(".journal"))
        .map(|n| fs::metadata(dir.join(n)).unwrap().len())
        .sum()
}

/// Offsets at which the records of a single segment holding `records` start, plus its end.
pub fn boundaries(records: &[Record]) -> Vec<u64> {
    let mut offsets = vec![HEADER_LEN];
    for record in records {
        offsets.push(offsets.last().unwrap() + record.encoded_len());
    }
    offsets
}
