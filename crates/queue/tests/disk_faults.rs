//! Disk faults through the queue on a simulated disk: a full disk or a failed write refuses
//! the request that hit it and resumes by itself once the disk works; a failed fsync poisons
//! that queue's journal for good, while reads and other queues go on.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use lanner_journal::{SimFault, SimStorage};
use lanner_queue::{
    ManualClock, PutOutcome, Queue, QueueCollection, QueueError, QueueOptions, SyncPolicy, TakeMode,
};

fn open(sim: &SimStorage, dir: &Path) -> QueueCollection {
    let options = |_: &str| {
        let mut options = QueueOptions {
            sync: SyncPolicy::Always,
            ..QueueOptions::default()
        };
        options.journal.segment_size = 512;
        options
    };
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    QueueCollection::open_on(Arc::new(sim.clone()), dir, Box::new(options), clock)
        .expect("open collection")
        .0
}

/// Puts `data` and commits it; `Err` when either failed.
fn put(queue: &Queue, data: &str) -> Result<(), QueueError> {
    match queue.put(Bytes::copy_from_slice(data.as_bytes()), 0)? {
        PutOutcome::Stored(seq) => queue.commit(seq),
        PutOutcome::NotStored => panic!("{data} not stored"),
    }
}

fn take(queue: &Queue) -> Option<String> {
    let outcome = queue.take(TakeMode::Remove);
    queue.commit(outcome.seq).ok()?;
    outcome
        .item
        .map(|taken| String::from_utf8(taken.data.to_vec()).unwrap())
}

fn peek(queue: &Queue) -> Option<Bytes> {
    queue.take(TakeMode::Peek).item.map(|taken| taken.data)
}

#[test]
fn a_full_disk_refuses_puts_until_it_has_room_again() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimStorage::new();
    let queues = open(&sim, dir.path());
    let (jobs, other) = (
        queues.get_or_create("jobs").unwrap(),
        queues.get_or_create("other").unwrap(),
    );
    put(&other, "other 1").unwrap();
    sim.set_capacity(Some(sim.used_bytes() + 200));
    let mut acknowledged = Vec::new();
    let error = loop {
        let data = format!("job {}", acknowledged.len());
        match put(&jobs, &data) {
            Ok(()) => acknowledged.push(data),
            Err(error) => break error,
        }
    };
    assert!(error.to_string().contains("No space left"), "{error}");
    let in_doubt = jobs.stats().items - acknowledged.len() as u64;
    assert_eq!(
        in_doubt, 1,
        "the put that hit the full disk is queued, not acknowledged"
    );
    let refused = put(&jobs, "refused").unwrap_err();
    assert!(refused.to_string().contains("No space left"), "{refused}");
    assert_eq!(jobs.stats().items, acknowledged.len() as u64 + in_doubt);
    assert!(!jobs.stats().journal.poisoned);
    // Reads of either queue are still served.
    assert_eq!(peek(&jobs).as_deref(), Some(&b"job 0"[..]));
    assert_eq!(peek(&other).as_deref(), Some(&b"other 1"[..]));

    sim.set_capacity(None);
    put(&jobs, "after").unwrap();
    drop((jobs, other));
    drop(queues);
    sim.power_loss(None);
    let queues = open(&sim, dir.path());
    let jobs = queues.get_or_create("jobs").unwrap();
    let mut expected = acknowledged.clone();
    expected.push(format!("job {}", acknowledged.len()));
    expected.push("after".to_owned());
    let recovered: Vec<String> = std::iter::from_fn(|| take(&jobs)).collect();
    assert_eq!(
        recovered, expected,
        "the failed put was written on the retry"
    );
}

#[test]
fn a_failed_write_leaves_no_garbage_and_resumes_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimStorage::new();
    let queues = open(&sim, dir.path());
    let jobs = queues.get_or_create("jobs").unwrap();
    put(&jobs, "a").unwrap();
    sim.fail(SimFault::Write, true);
    assert!(put(&jobs, "b").is_err());
    assert!(put(&jobs, "c").is_err());
    sim.fail(SimFault::Write, false);
    put(&jobs, "d").unwrap();
    drop(jobs);
    drop(queues);
    sim.power_loss(None);
    let (queues, recovered) = QueueCollection::open_on(
        Arc::new(sim.clone()),
        dir.path(),
        Box::new(|_: &str| QueueOptions::default()),
        Arc::new(ManualClock::new(0)),
    )
    .unwrap();
    assert!(
        recovered
            .iter()
            .all(|queue| queue.replay.truncations.is_empty())
    );
    let jobs = queues.get_or_create("jobs").unwrap();
    let items: Vec<String> = std::iter::from_fn(|| take(&jobs)).collect();
    assert_eq!(items, ["a", "b", "d"]);
}

#[test]
fn a_failed_fsync_poisons_only_that_queue() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimStorage::new();
    let queues = open(&sim, dir.path());
    let jobs = queues.get_or_create("jobs").unwrap();
    put(&jobs, "a").unwrap();
    put(&jobs, "b").unwrap();
    sim.fail(SimFault::Sync, true);
    let error = put(&jobs, "c").unwrap_err();
    assert!(error.to_string().contains("poisoned"), "{error}");
    sim.fail(SimFault::Sync, false);
    assert!(jobs.stats().journal.poisoned);
    let refused = put(&jobs, "d").unwrap_err();
    assert!(matches!(refused, QueueError::Poisoned { .. }), "{refused}");
    // Items in memory are still served; their removes are not journaled, so a restart
    // brings them back rather than losing them.
    assert_eq!(peek(&jobs).as_deref(), Some(&b"a"[..]));
    let other = queues.get_or_create("other").unwrap();
    put(&other, "x").unwrap();
    assert!(!other.stats().journal.poisoned);
    drop((jobs, other));
    drop(queues);
    sim.power_loss(None);
    let queues = open(&sim, dir.path());
    let jobs = queues.get_or_create("jobs").unwrap();
    assert!(
        !jobs.stats().journal.poisoned,
        "a restart clears the poison"
    );
    let items: Vec<String> = std::iter::from_fn(|| take(&jobs)).collect();
    assert_eq!(items, ["a", "b"]);
}

#[test]
fn a_set_whose_fanout_copy_cannot_be_journaled_is_not_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimStorage::new();
    let queues = open(&sim, dir.path());
    let child = queues.get_or_create("jobs+audit").unwrap();
    put(&child, "a").unwrap();
    sim.fail(SimFault::Sync, true);
    put(&child, "b").unwrap_err();
    sim.fail(SimFault::Sync, false);
    assert!(child.stats().journal.poisoned);
    let refused = queues
        .put("jobs", Bytes::from_static(b"c"), 0)
        .err()
        .expect("the child's refusal reaches the set");
    assert!(matches!(refused, QueueError::Poisoned { .. }), "{refused}");
    assert!(
        queues
            .get("jobs")
            .is_none_or(|jobs| jobs.stats().items == 0),
        "nothing stored in the master either"
    );
}
