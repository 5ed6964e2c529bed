//! Checked-in journals of every format version must keep loading.

use std::fs;
use std::path::Path;

use bytes::Bytes;
use lanner_journal::{Journal, JournalOptions, Record};

fn copy_fixtures(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1");
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn add(add_time_ms: i64, expiry_ms: i64, data: &'static [u8]) -> Record {
    Record::Add {
        add_time_ms,
        expiry_ms,
        data: Bytes::from_static(data),
    }
}

#[test]
fn version_1_fixture_replays() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    assert_eq!(
        lanner_journal::list_queues(&lanner_journal::FsStorage, dir.path()).unwrap(),
        ["plain", "snap"]
    );

    let (_, plain) = Journal::open(dir.path(), "plain", JournalOptions::default()).unwrap();
    assert_eq!(
        plain.records,
        vec![
            add(1_700_000_000_000, 0, b"one"),
            add(1_700_000_000_001, 1_700_000_060_000, b"two"),
            add(1_700_000_000_002, 0, b""),
            Record::RemoveTentative { xid: 1 },
            Record::RemoveTentative { xid: 2 },
            Record::Unremove { xid: 1 },
            Record::ConfirmRemove { xid: 2 },
            Record::Remove,
        ]
    );
    assert!(plain.truncations.is_empty());

    // Segment 2 of `snap` is a snapshot: segment 1 is superseded and removed.
    let (_, snap) = Journal::open(dir.path(), "snap", JournalOptions::default()).unwrap();
    assert_eq!(
        snap.records,
        vec![
            add(1_700_000_000_002, 0, b""),
            add(1_700_000_000_003, 0, b"three")
        ]
    );
    assert_eq!(snap.segments, 1);
    assert!(
        !dir.path()
            .join("snap.00000000000000000001.journal")
            .exists()
    );
}

#[test]
fn this_build_writes_the_fixture_bytes() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    let (_, plain) = Journal::open(dir.path(), "plain", JournalOptions::default()).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(fresh.path(), "plain", JournalOptions::default()).unwrap();
    for record in &plain.records {
        journal.append(record);
    }
    journal.sync_all().unwrap();
    let name = "plain.00000000000000000001.journal";
    assert_eq!(
        fs::read(fresh.path().join(name)).unwrap(),
        fs::read(dir.path().join(name)).unwrap()
    );
}
