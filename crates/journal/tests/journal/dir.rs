//! The data directory: which files count as journals, and the exclusive lock.

use std::fs;

use lanner_journal::{FsStorage, JournalError, JournalOptions, list_queues, lock_dir};

use crate::common::*;

#[test]
fn list_queues_sees_only_lanner_segment_files() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        list_queues(&FsStorage, &dir.path().join("missing"))
            .unwrap()
            .is_empty()
    );
    for name in [
        "jobs.00000000000000000003.journal",
        "a+b.00000000000000000001.journal",
        "orphan.00000000000000000002.journal.tmp",
        "jobs",
        "jobs.1700000000000",
        "notes.txt",
        "x.1.journal",
        "LOCK",
    ] {
        fs::write(dir.path().join(name), b"").unwrap();
    }
    fs::create_dir(dir.path().join("sub.00000000000000000001.journal")).unwrap();
    assert_eq!(
        list_queues(&FsStorage, dir.path()).unwrap(),
        ["a+b", "jobs"]
    );
}

#[test]
fn open_removes_leftover_temp_files_but_not_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), JournalOptions::default());
    write_all(&journal, &[add(1)]);
    drop(journal);
    fs::write(
        dir.path().join("q.00000000000000000002.journal.tmp"),
        b"half a snapshot",
    )
    .unwrap();
    fs::write(dir.path().join("q.backup"), b"mine").unwrap();
    let (_, replay) = open(dir.path(), JournalOptions::default());
    assert_eq!(replay.records, [add(1)]);
    assert_eq!(
        names(dir.path()),
        ["q.00000000000000000001.journal", "q.backup"]
    );
}

#[test]
fn the_directory_lock_is_exclusive() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let lock = lock_dir(&dir).unwrap();
    assert!(dir.join("LOCK").exists());
    match lock_dir(&dir) {
        Err(JournalError::Locked { path }) => assert_eq!(path, dir),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(lock);
    let _again = lock_dir(&dir).unwrap();
}
