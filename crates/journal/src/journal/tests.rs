//! Failure-path tests on the simulated disk, and group-commit accounting.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::*;
use crate::{SimFault, SimStorage, Storage};

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

/// A simulated disk and its data directory.
fn sim() -> (SimStorage, PathBuf) {
    (SimStorage::new(), PathBuf::from("/data"))
}

fn sim_options(sim: &SimStorage, segment_size: u64) -> JournalOptions {
    JournalOptions {
        storage: Arc::new(sim.clone()),
        segment_size,
        ..JournalOptions::default()
    }
}

fn open_sim(sim: &SimStorage, dir: &Path, segment_size: u64) -> (Journal, Replay) {
    Journal::open(dir, "q", sim_options(sim, segment_size)).unwrap()
}

fn names(sim: &SimStorage, dir: &Path) -> Vec<String> {
    let mut names = sim.file_names(dir).unwrap();
    names.sort();
    names
}

fn is_poisoned_error(result: Result<(), JournalError>) -> bool {
    matches!(result, Err(JournalError::Poisoned { queue }) if queue == "q")
}

fn is_io_error(result: Result<(), JournalError>) -> bool {
    matches!(result, Err(JournalError::Io { .. }))
}

#[test]
fn a_failed_write_is_undone_and_retried_once_the_disk_works() {
    let (sim, dir) = sim();
    let (journal, _) = open_sim(&sim, &dir, 1 << 20);
    let first = journal.append(&add(1));
    journal.write_through(first).unwrap();
    let second = journal.append(&add(2));
    sim.fail(SimFault::Write, true);
    assert!(is_io_error(journal.write_through(second)));
    assert!(journal.has_failed_write());
    assert!(!journal.is_poisoned());
    let third = journal.append(&add(3));
    assert!(is_io_error(journal.write_through(third)));
    journal.sync_through(first).unwrap();
    sim.fail(SimFault::Write, false);
    journal.sync_through(second).unwrap();
    assert!(!journal.has_failed_write());
    drop(journal);
    let (_, replay) = open_sim(&sim, &dir, 1 << 20);
    assert_eq!(replay.records, vec![add(1), add(2), add(3)]);
}

#[test]
fn a_partial_write_on_a_full_disk_is_cut_off_before_the_next_write() {
    let (sim, dir) = sim();
    let (journal, _) = open_sim(&sim, &dir, 1 << 20);
    journal.sync_through(journal.append(&add(1))).unwrap();
    let used = sim.used_bytes();
    sim.set_capacity(Some(used + add(2).encoded_len() / 2));
    let second = journal.append(&add(2));
    let error = journal.write_through(second).unwrap_err();
    assert!(error.to_string().contains("No space left"), "{error}");
    assert_eq!(sim.used_bytes(), used, "the half record was cut off");
    assert_eq!(journal.stats().current_segment_bytes, used);
    sim.set_capacity(None);
    journal.sync_through(journal.append(&add(3))).unwrap();
    sim.power_loss(None);
    let (_, replay) = open_sim(&sim, &dir, 1 << 20);
    assert_eq!(replay.records, vec![add(1), add(2), add(3)]);
    assert!(replay.truncations.is_empty());
}

#[test]
fn a_failed_fsync_poisons_for_good() {
    let (sim, dir) = sim();
    let (journal, _) = open_sim(&sim, &dir, 1 << 20);
    let seq = journal.append(&add(1));
    sim.fail(SimFault::Sync, true);
    assert!(is_poisoned_error(journal.sync_through(seq)));
    sim.fail(SimFault::Sync, false);
    // No retry, ever (after a failed fsync the page cache may have dropped the data).
    assert!(is_poisoned_error(journal.sync_through(seq)));
    assert!(is_poisoned_error(journal.write_through(seq + 1)));
    assert!(is_poisoned_error(journal.sync_all()));
    let before = journal.stats().total_bytes;
    journal.append(&add(2));
    assert_eq!(
        journal.stats().total_bytes,
        before,
        "appends after poisoning are dropped"
    );
    drop(journal);
    // The record was written before the fsync failed: a process restart finds it.
    assert_eq!(open_sim(&sim, &dir, 1 << 20).1.records, vec![add(1)]);
}

#[test]
fn a_failed_fsync_at_rotation_poisons() {
    let (sim, dir) = sim();
    let (journal, _) = open_sim(&sim, &dir, 64);
    for n in 0..2 {
        journal.write_through(journal.append(&add(n))).unwrap();
    }
    assert_eq!(journal.stats().rotations, 0);
    let seq = journal.append(&add(9));
    sim.fail(SimFault::Sync, true);
    assert!(is_poisoned_error(journal.write_through(seq)));
    sim.fail(SimFault::Sync, false);
    drop(journal);
    assert_eq!(open_sim(&sim, &dir, 64).1.records, vec![add(0), add(1)]);
}

#[test]
fn a_failed_rotation_create_is_retried() {
    let (sim, dir) = sim();
    let (journal, _) = open_sim(&sim, &dir, 64);
    for n in 0..2 {
        journal.write_through(journal.append(&add(n))).unwrap();
    }
    let seq = journal.append(&add(2));
    sim.fail(SimFault::Create, true);
    assert!(is_io_error(journal.write_through(seq)));
    assert_eq!(names(&sim, &dir).len(), 1);
    sim.fail(SimFault::Create, false);
    journal.sync_through(seq).unwrap();
    assert_eq!(journal.stats().rotations, 1);
    sim.power_loss(None);
    assert_eq!(
        open_sim(&sim, &dir, 64).1.records,
        vec![add(0), add(1), add(2)]
    );
}

/// A rotation whose new segment can neither take its header nor be removed again would find
/// that file in the way on every retry: it poisons instead of retrying for ever.
#[test]
fn a_rotation_that_cannot_clean_up_its_new_segment_poisons() {
    let (sim, dir) = sim();
    let (journal, _) = open_sim(&sim, &dir, 64);
    for n in 0..2 {
        journal.write_through(journal.append(&add(n))).unwrap();
    }
    let seq = journal.append(&add(2));
    sim.fail(SimFault::Write, true);
    sim.fail(SimFault::Remove, true);
    assert!(journal.write_through(seq).is_err());
    assert!(journal.is_poisoned());
    sim.fail(SimFault::Write, false);
    sim.fail(SimFault::Remove, false);
    assert!(is_poisoned_error(journal.write_through(seq)));
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

/// Six records in segments of 64 bytes, all fsynced.
fn six_records(sim: &SimStorage, dir: &Path) -> (Journal, Vec<Record>) {
    let (journal, _) = open_sim(sim, dir, 64);
    let records: Vec<Record> = (0..6).map(add).collect();
    for record in &records {
        journal.sync_through(journal.append(record)).unwrap();
    }
    (journal, records)
}

/// A rewrite that fails before its rename removes its temp file, keeps the old segments in
/// use, and is written again by the next write once the disk works.
#[test]
fn a_rewrite_failing_before_its_rename_is_retried() {
    for fault in [SimFault::Create, SimFault::Write, SimFault::Rename] {
        let (sim, dir) = sim();
        let (journal, _) = six_records(&sim, &dir);
        let old = names(&sim, &dir);
        let seq = journal.rewrite(vec![add(5)]);
        journal.append(&add(6));
        sim.fail(fault, true);
        assert!(is_io_error(journal.write_through(seq + 1)), "{fault:?}");
        assert_eq!(names(&sim, &dir), old, "{fault:?}");
        sim.fail(fault, false);
        journal.sync_through(seq + 1).unwrap();
        assert_eq!(journal.stats().rewrites, 1);
        sim.power_loss(None);
        let (_, replay) = open_sim(&sim, &dir, 64);
        assert_eq!(replay.records, vec![add(5), add(6)], "{fault:?}");
        assert_eq!(replay.segments, 1);
    }
}

/// A failed fsync of the snapshot poisons; the temp file is left for replay to delete, and
/// replay uses the old segments.
#[test]
fn a_rewrite_whose_fsync_fails_poisons_and_replays_the_old_segments() {
    let (sim, dir) = sim();
    let (journal, expected) = six_records(&sim, &dir);
    let old = names(&sim, &dir);
    let seq = journal.rewrite(vec![add(5)]);
    sim.fail(SimFault::Sync, true);
    assert!(is_poisoned_error(journal.write_through(seq)));
    sim.fail(SimFault::Sync, false);
    drop(journal);
    assert!(
        names(&sim, &dir)
            .iter()
            .any(|n| n.ends_with(".journal.tmp"))
    );
    assert_eq!(
        crate::list_queues(&sim, &dir).unwrap(),
        vec!["q".to_owned()]
    );
    let (_, replay) = open_sim(&sim, &dir, 64);
    assert_eq!(replay.records, expected);
    assert_eq!(
        names(&sim, &dir),
        old,
        "temp file removed, old segments kept"
    );
}

/// A failure after the rename, before the old segments are gone, leaves both: the snapshot
/// supersedes them.
#[test]
fn a_failure_after_the_rename_replays_the_snapshot() {
    let (sim, dir) = sim();
    let (journal, _) = six_records(&sim, &dir);
    let old_count = names(&sim, &dir).len();
    let live = vec![add(4), Record::RemoveTentative { xid: 1 }, add(5)];
    let seq = journal.rewrite(live.clone());
    sim.fail(SimFault::Remove, true);
    assert!(is_poisoned_error(journal.write_through(seq)));
    sim.fail(SimFault::Remove, false);
    drop(journal);
    assert_eq!(names(&sim, &dir).len(), old_count + 1);
    sim.power_loss(None);
    let (journal, replay) = open_sim(&sim, &dir, 64);
    assert_eq!(replay.records, live);
    assert_eq!(replay.segments, 1);
    assert_eq!(
        names(&sim, &dir),
        vec![format!("q.{:020}.journal", old_count + 1)]
    );
    assert_eq!(journal.stats().segments, 1);
}

/// A rewrite scheduled while a failed write waits for its retry supersedes it.
#[test]
fn a_newer_rewrite_supersedes_a_failed_write() {
    let (sim, dir) = sim();
    let (journal, _) = open_sim(&sim, &dir, 1 << 20);
    journal.sync_through(journal.append(&add(1))).unwrap();
    let seq = journal.append(&add(2));
    sim.fail(SimFault::Write, true);
    assert!(is_io_error(journal.write_through(seq)));
    sim.fail(SimFault::Write, false);
    let seq = journal.rewrite(vec![add(2)]);
    journal.sync_through(seq).unwrap();
    sim.power_loss(None);
    assert_eq!(open_sim(&sim, &dir, 1 << 20).1.records, vec![add(2)]);
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

fn zero_fill_options(sim: &SimStorage, segment_size: u64, zero_fill_ahead: u64) -> JournalOptions {
    JournalOptions {
        zero_fill_ahead,
        ..sim_options(sim, segment_size)
    }
}

fn segment_contents(sim: &SimStorage, dir: &Path, number: u64) -> Vec<u8> {
    sim.contents(&dir.join(format!("q.{number:020}.journal")))
        .unwrap()
}

/// Writes records 0..count one write each into segments of 200 bytes; returns the segments'
/// contents, oldest first, and the journal's current segment bytes.
fn segments_written(zero_fill_ahead: u64, count: u32) -> (Vec<Vec<u8>>, u64) {
    let (sim, dir) = sim();
    let (journal, _) =
        Journal::open(&dir, "q", zero_fill_options(&sim, 200, zero_fill_ahead)).unwrap();
    for n in 0..count {
        journal.sync_through(journal.append(&add(n))).unwrap();
    }
    let segments = (1..=names(&sim, &dir).len() as u64)
        .map(|number| segment_contents(&sim, &dir, number))
        .collect();
    (segments, journal.stats().current_segment_bytes)
}

#[test]
fn zero_fill_ahead_pads_only_the_current_segment_with_zeros() {
    let (plain, plain_current) = segments_written(0, 20);
    let (filled, filled_current) = segments_written(100, 20);
    assert!(plain.len() > 2, "several rotations");
    assert_eq!(filled.len(), plain.len());
    let (older, [current]) = filled.split_at(filled.len() - 1) else {
        unreachable!()
    };
    assert_eq!(older, &plain[..plain.len() - 1], "rotation cut the zeros");
    let records = plain.last().unwrap();
    assert!(current.len() > records.len(), "zeros ahead of the records");
    assert_eq!(&current[..records.len()], &records[..]);
    assert!(current[records.len()..].iter().all(|&b| b == 0));
    assert_eq!(filled_current, plain_current);
    assert_eq!(filled_current, records.len() as u64);
}

#[test]
fn a_zero_filled_segment_replays_cleanly_and_is_appended_to_after_its_records() {
    let (sim, dir) = sim();
    let options = || zero_fill_options(&sim, 1 << 20, 4096);
    let (journal, _) = Journal::open(&dir, "q", options()).unwrap();
    for n in 0..3 {
        journal.sync_through(journal.append(&add(n))).unwrap();
    }
    drop(journal);
    sim.power_loss(None);
    let (journal, replay) = Journal::open(&dir, "q", options()).unwrap();
    assert_eq!(replay.records, vec![add(0), add(1), add(2)]);
    assert!(replay.truncations.is_empty(), "{:?}", replay.truncations);
    assert_eq!(replay.bytes, journal.stats().current_segment_bytes);
    journal.sync_through(journal.append(&add(3))).unwrap();
    drop(journal);
    sim.power_loss(None);
    let (_, replay) = Journal::open(&dir, "q", options()).unwrap();
    assert_eq!(replay.records, (0..4).map(add).collect::<Vec<_>>());
    assert!(replay.truncations.is_empty());
}

/// Power fails with writes torn anywhere in the zero fill: replay gives a prefix of what was
/// written that holds everything fsynced.
#[test]
fn a_torn_write_into_the_zero_fill_keeps_every_synced_record() {
    let mut torn = 0;
    for seed in 1..200u64 {
        let (sim, dir) = sim();
        let options = || zero_fill_options(&sim, 300, 40);
        let (journal, _) = Journal::open(&dir, "q", options()).unwrap();
        let mut synced = 0;
        let mut random = seed;
        for n in 0..(seed % 23) as u32 {
            let seq = journal.append(&add(n));
            random = random
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            if random >> 62 == 0 {
                journal.sync_through(seq).unwrap();
                synced = n as usize + 1;
            } else {
                journal.write_through(seq).unwrap();
            }
        }
        let written: Vec<Record> = (0..(seed % 23) as u32).map(add).collect();
        drop(journal);
        sim.power_loss(Some(seed));
        let (_, replay) = Journal::open(&dir, "q", options()).unwrap();
        let kept = replay.records.len();
        assert!(kept >= synced, "seed {seed}: {kept} of {synced} synced");
        assert_eq!(replay.records, written[..kept], "seed {seed}");
        torn += usize::from(!replay.truncations.is_empty());
    }
    assert!(torn > 10, "torn records seen: {torn}");
}

/// A failed write cuts the zeros off with the partial records; the retry fills ahead again.
#[test]
fn a_failed_write_with_zero_fill_is_retried_with_zeros_ahead_again() {
    let (sim, dir) = sim();
    let options = || zero_fill_options(&sim, 1 << 20, 100);
    let (journal, _) = Journal::open(&dir, "q", options()).unwrap();
    journal.sync_through(journal.append(&add(1))).unwrap();
    let records = journal.stats().current_segment_bytes as usize;
    let seq = journal.append(&add(2));
    sim.fail(SimFault::Write, true);
    assert!(is_io_error(journal.write_through(seq)));
    assert_eq!(
        segment_contents(&sim, &dir, 1).len(),
        records,
        "zeros cut off"
    );
    sim.fail(SimFault::Write, false);
    journal.sync_through(seq).unwrap();
    let records = journal.stats().current_segment_bytes as usize;
    let contents = segment_contents(&sim, &dir, 1);
    assert_eq!(contents.len(), records + 100);
    assert!(contents[records..].iter().all(|&b| b == 0));
    drop(journal);
    sim.power_loss(None);
    let (_, replay) = Journal::open(&dir, "q", options()).unwrap();
    assert_eq!(replay.records, vec![add(1), add(2)]);
    assert!(replay.truncations.is_empty());
}

/// On a disk without room for the zeros the records are still written, without them.
#[test]
fn a_disk_too_full_for_the_zero_fill_still_takes_the_records() {
    let (sim, dir) = sim();
    let options = || zero_fill_options(&sim, 1 << 20, 1 << 20);
    let (journal, _) = Journal::open(&dir, "q", options()).unwrap();
    sim.set_capacity(Some(sim.used_bytes() + 200));
    for n in 0..3 {
        journal.sync_through(journal.append(&add(n))).unwrap();
    }
    let records = journal.stats().current_segment_bytes;
    assert_eq!(sim.used_bytes(), records);
    drop(journal);
    sim.power_loss(None);
    let (_, replay) = Journal::open(&dir, "q", options()).unwrap();
    assert_eq!(replay.records, (0..3).map(add).collect::<Vec<_>>());
}
