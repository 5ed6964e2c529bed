//! Open, append, reopen, rotation, rewrite, delete, and the byte accounting.

use lanner_journal::{JournalOptions, Record, Seq};

use crate::common::*;

#[test]
fn records_survive_reopen_and_later_appends_continue_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, replay) = open(dir.path(), JournalOptions::default());
    assert!(replay.records.is_empty());
    assert_eq!(names(dir.path()), ["q.00000000000000000001.journal"]);
    let records = mixed_records();
    write_all(&journal, &records[..4]);
    drop(journal);

    let (journal, replay) = open(dir.path(), JournalOptions::default());
    assert_eq!(replay.records, records[..4]);
    assert_eq!(replay.segments, 1);
    assert_eq!(replay.bytes, boundaries(&records[..4])[4]);
    write_all(&journal, &records[4..]);
    drop(journal);

    let (journal, replay) = open(dir.path(), JournalOptions::default());
    assert_eq!(replay.records, records);
    assert_eq!(names(dir.path()).len(), 1);
    assert_eq!(journal.stats().total_bytes, disk_bytes(dir.path()));
}

#[test]
fn write_through_hands_records_to_the_os_without_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), JournalOptions::default());
    let first = journal.append(&add(1));
    let second = journal.append(&add(2));
    assert_eq!((first, second), (1, 2));
    assert_eq!(disk_bytes(dir.path()), HEADER_LEN, "append does no I/O");
    assert_eq!(
        journal.stats().total_bytes,
        HEADER_LEN + add(1).encoded_len() + add(2).encoded_len()
    );
    journal.write_through(first).unwrap();
    assert_eq!(
        disk_bytes(dir.path()),
        journal.stats().total_bytes,
        "one write takes the whole buffer"
    );
    journal.write_through(Seq::MAX).unwrap();
    assert_eq!(journal.stats().fsyncs, 0);
    drop(journal);
    assert_eq!(
        open(dir.path(), JournalOptions::default()).1.records,
        [add(1), add(2)]
    );
}

#[test]
fn rotation_starts_new_segments_at_record_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let size = 100;
    let (journal, _) = open(dir.path(), opts(size));
    let records: Vec<Record> = (0..40).map(add).collect();
    write_each(&journal, &records);
    let stats = journal.stats();
    assert!(stats.rotations >= 10, "{stats:?}");
    assert_eq!(stats.segments, stats.rotations + 1);
    assert_eq!(stats.segments as usize, names(dir.path()).len());
    assert_eq!(stats.total_bytes, disk_bytes(dir.path()));
    for name in names(dir.path()) {
        // At most one batch (here one record) past the limit.
        assert!(
            std::fs::metadata(dir.path().join(name)).unwrap().len() <= size + add(0).encoded_len()
        );
    }
    drop(journal);
    let (journal, replay) = open(dir.path(), opts(size));
    assert_eq!(replay.records, records);
    assert_eq!(replay.segments as u64, stats.segments);
    assert_eq!(journal.stats().segments, stats.segments);
}

#[test]
fn rewrite_replaces_all_segments_with_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), opts(100));
    write_each(&journal, &(0..20).map(add).collect::<Vec<_>>());
    let old_segments = names(dir.path()).len() as u64;
    assert!(old_segments > 3);
    let live = vec![add(18), Record::RemoveTentative { xid: 4 }, add(19)];
    let snapshot_seq = journal.rewrite(live.clone());
    assert_eq!(snapshot_seq, 21);
    let expected_total: u64 = HEADER_LEN + live.iter().map(Record::encoded_len).sum::<u64>();
    assert_eq!(
        journal.stats().total_bytes,
        expected_total,
        "old segments no longer count"
    );
    journal.append(&add(20));
    journal.write_through(snapshot_seq).unwrap();

    let stats = journal.stats();
    assert_eq!(stats.rewrites, 1);
    assert_eq!(stats.segments, 1);
    assert_eq!(
        names(dir.path()),
        [format!("q.{:020}.journal", old_segments + 1)]
    );
    assert_eq!(stats.total_bytes, disk_bytes(dir.path()));
    drop(journal);
    let (_, replay) = open(dir.path(), opts(100));
    assert_eq!(replay.records, [live, vec![add(20)]].concat());
}

#[test]
fn a_rewrite_supersedes_unwritten_appends_and_earlier_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), JournalOptions::default());
    write_all(&journal, &[add(1)]);
    journal.append(&add(2));
    journal.rewrite(vec![add(1), add(2)]);
    journal.append(&Record::Remove);
    journal.rewrite(vec![add(2)]);
    journal.append(&add(3));
    journal.sync_all().unwrap();
    assert_eq!(journal.stats().rewrites, 1);
    drop(journal);
    assert_eq!(
        open(dir.path(), JournalOptions::default()).1.records,
        [add(2), add(3)]
    );
}

#[test]
fn an_empty_rewrite_leaves_just_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), JournalOptions::default());
    write_all(&journal, &[add(1), Record::Remove]);
    let seq = journal.rewrite(Vec::new());
    journal.sync_through(seq).unwrap();
    assert_eq!(journal.stats().total_bytes, HEADER_LEN);
    assert_eq!(disk_bytes(dir.path()), HEADER_LEN);
    drop(journal);
    assert!(
        open(dir.path(), JournalOptions::default())
            .1
            .records
            .is_empty()
    );
}

#[test]
fn delete_removes_every_file_and_drops_later_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), opts(60));
    write_each(&journal, &(0..5).map(add).collect::<Vec<_>>());
    journal.append(&add(6));
    journal.delete().unwrap();
    assert!(names(dir.path()).is_empty());
    let seq = journal.append(&add(7));
    journal.write_through(seq).unwrap();
    journal.sync_through(seq).unwrap();
    journal.sync_all().unwrap();
    assert!(names(dir.path()).is_empty());
    let stats = journal.stats();
    assert_eq!((stats.total_bytes, stats.segments), (0, 0));
    assert!(
        lanner_journal::list_queues(&lanner_journal::FsStorage, dir.path())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_huge_rewrite_streams_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), JournalOptions::default());
    let big = |n: u8| Record::Add {
        add_time_ms: 0,
        expiry_ms: 0,
        data: vec![n; 300_000].into(),
    };
    let live: Vec<Record> = (0..10).map(big).collect();
    let seq = journal.rewrite(live.clone());
    journal.sync_through(seq).unwrap();
    assert_eq!(journal.stats().total_bytes, disk_bytes(dir.path()));
    drop(journal);
    assert_eq!(open(dir.path(), JournalOptions::default()).1.records, live);
}
