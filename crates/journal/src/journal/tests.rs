//! Failure-path tests that need fault injection, and group-commit accounting.

use std::path::Path;

use bytes::Bytes;

use super::*;
use crate::fault::{Fault, arm};

fn add(n: u32) -> Record {
    Record::Add {
        add_time_ms: i64::from(n),
        expiry_ms: 0,
        data: Bytes::from(format!("item {n}")),
    }
}

fn open(dir: &Path) -> (Journal, Replay) {
    Journal::open(dir, "q", JournalOptions::default()).unwrap()
}

fn open_small(dir: &Path) -> (Journal, Replay) {
    let opts = JournalOptions {
        segment_size: 64,
        ..JournalOptions::default()
    };
    Journal::open(dir, "q", opts).unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Runs `f` with `fault` armed on this thread.
fn with_fault<T>(fault: Fault, f: impl FnOnce() -> T) -> T {
    arm(Some(fault));
    let result = f();
    arm(None);
    result
}

fn is_poisoned_error(result: Result<(), JournalError>) -> bool {
    matches!(result, Err(JournalError::Poisoned { queue }) if queue == "q")
}

#[test]
fn failed_write_poisons_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path());
    let first = journal.append(&add(1));
    journal.write_through(first).unwrap();
    let second = journal.append(&add(2));
    assert!(is_poisoned_error(
        with_fault(Fault::Write, || journal.write_through(second))
    ));
    assert!(journal.is_poisoned());
    // No retry, ever: the disk is healthy again, but the journal stays poisoned.
    assert!(is_poisoned_error(journal.write_through(second)));
    assert!(is_poisoned_error(journal.write_through(first)));
    assert!(is_poisoned_error(journal.sync_through(first)));
    assert!(is_poisoned_error(journal.sync_all()));
    let before = journal.stats().total_bytes;
    journal.append(&add(3));
    assert_eq!(
        journal.stats().total_bytes,
        before,
        "appends after poisoning are dropped"
    );
    drop(journal);
    assert_eq!(open(dir.path()).1.records, vec![add(1)]);
}

#[test]
fn failed_fsync_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path());
    let seq = journal.append(&add(1));
    assert!(is_poisoned_error(
        with_fault(Fault::Sync, || journal.sync_through(seq))
    ));
    assert!(is_poisoned_error(journal.write_through(seq + 1)));
    assert!(is_poisoned_error(journal.sync_through(seq)));
    drop(journal);
    // The record was written before the fsync failed; after this (simulated) crash it is there.
    assert_eq!(open(dir.path()).1.records, vec![add(1)]);
}

#[test]
fn failed_rotation_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open_small(dir.path());
    for n in 0..2 {
        let seq = journal.append(&add(n));
        journal.write_through(seq).unwrap();
    }
    assert_eq!(journal.stats().rotations, 0);
    let seq = journal.append(&add(9));
    assert!(is_poisoned_error(
        with_fault(Fault::Sync, || journal.write_through(seq))
    ));
    drop(journal);
    assert_eq!(open_small(dir.path()).1.records, vec![add(0), add(1)]);
}

#[test]
fn oversized_record_poisons_instead_of_writing_an_unreadable_journal() {
    let dir = tempfile::tempdir().unwrap();
    let opts = JournalOptions {
        max_record_size: 32,
        ..JournalOptions::default()
    };
    let (journal, _) = Journal::open(dir.path(), "q", opts).unwrap();
    let small = journal.append(&add(1));
    let big = Record::Add {
        add_time_ms: 0,
        expiry_ms: 0,
        data: Bytes::from(vec![7; 64]),
    };
    let seq = journal.append(&big);
    assert!(journal.is_poisoned());
    assert!(is_poisoned_error(journal.write_through(small)));
    assert!(is_poisoned_error(journal.write_through(seq)));
}

/// A crash before the snapshot is renamed leaves a temp file: replay deletes it and replays
/// the old segments.
#[test]
fn crash_before_rename_replays_old_segments() {
    for fault in [Fault::Write, Fault::Sync, Fault::Rename] {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = open_small(dir.path());
        let mut expected = Vec::new();
        for n in 0..6 {
            expected.push(add(n));
            journal.write_through(journal.append(&add(n))).unwrap();
        }
        let old = names(dir.path());
        let seq = journal.rewrite(vec![add(5)]);
        journal.append(&add(6));
        assert!(is_poisoned_error(
            with_fault(fault, || journal.write_through(seq + 1))
        ));
        drop(journal);
        if fault == Fault::Rename {
            assert!(
                names(dir.path())
                    .iter()
                    .any(|n| n.ends_with(".journal.tmp")),
                "{fault:?}"
            );
            assert_eq!(
                crate::list_queues(dir.path()).unwrap(),
                vec!["q".to_owned()]
            );
        }
        let (_, replay) = open_small(dir.path());
        assert_eq!(replay.records, expected, "{fault:?}");
        assert_eq!(
            names(dir.path()),
            old,
            "temp file removed, old segments kept ({fault:?})"
        );
    }
}

/// A crash after the rename, before the old segments are gone, leaves both: the snapshot
/// supersedes them.
#[test]
fn crash_after_rename_replays_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open_small(dir.path());
    for n in 0..6 {
        journal.write_through(journal.append(&add(n))).unwrap();
    }
    let old_count = names(dir.path()).len();
    let live = vec![add(4), Record::RemoveTentative { xid: 1 }, add(5)];
    let seq = journal.rewrite(live.clone());
    assert!(is_poisoned_error(
        with_fault(Fault::RemoveOld, || journal.write_through(seq))
    ));
    drop(journal);
    assert_eq!(names(dir.path()).len(), old_count + 1);
    let (journal, replay) = open_small(dir.path());
    assert_eq!(replay.records, live);
    assert_eq!(replay.segments, 1);
    assert_eq!(
        names(dir.path()),
        vec![format!("q.{:020}.journal", old_count + 1)]
    );
    assert_eq!(journal.stats().segments, 1);
}

#[test]
fn covered_callers_share_one_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path());
    let seqs: Vec<Seq> = (0..50).map(|n| journal.append(&add(n))).collect();
    journal.sync_through(seqs[49]).unwrap();
    assert_eq!(journal.stats().fsyncs, 1);
    for seq in seqs {
        journal.sync_through(seq).unwrap();
    }
    journal.sync_all().unwrap();
    journal.sync_through(Seq::MAX).unwrap();
    assert_eq!(journal.stats().fsyncs, 1);
    journal.append(&add(99));
    journal.sync_all().unwrap();
    assert_eq!(journal.stats().fsyncs, 2);
}

#[test]
fn invalid_queue_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["", "../etc", "a.b", "a b"] {
        assert!(
            Journal::open(dir.path(), name, JournalOptions::default()).is_err(),
            "{name:?}"
        );
    }
}

#[test]
fn journal_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Journal>();
}
