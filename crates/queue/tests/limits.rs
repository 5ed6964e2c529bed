//! Limits, expiry, fanout and open-read timeouts, driven by a manual clock (no sleeps).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lanner_queue::{
    ManualClock, PutOutcome, QueueCollection, QueueLimits, QueueOptions, SyncPolicy, TakeMode,
};

const START_MS: i64 = 1_700_000_000_000;

/// A collection whose queues all get `limits`, plus `expire_to` for queue "pending".
fn open(dir: &Path, clock: &Arc<ManualClock>, limits: QueueLimits) -> QueueCollection {
    let resolve = move |name: &str| QueueOptions {
        sync: SyncPolicy::Never,
        limits: if name == "ready" {
            QueueLimits::default()
        } else {
            limits.clone()
        },
        expire_to_queue: (name == "pending").then(|| "ready".to_owned()),
        ..QueueOptions::default()
    };
    let clock: Arc<dyn lanner_queue::Clock> = clock.clone();
    QueueCollection::open(dir, Box::new(resolve), clock)
        .expect("open")
        .0
}

fn put(queues: &QueueCollection, name: &str, text: &str) -> bool {
    let put = queues
        .put(name, Bytes::copy_from_slice(text.as_bytes()), 0)
        .expect("put");
    matches!(put.outcome, PutOutcome::Stored(_))
}

fn drain(queues: &QueueCollection, name: &str) -> Vec<String> {
    let queue = queues.get_or_create(name).expect("queue");
    std::iter::from_fn(|| queue.take(TakeMode::Remove).item)
        .map(|taken| String::from_utf8_lossy(&taken.data).into_owned())
        .collect()
}

fn setup(limits: QueueLimits) -> (tempfile::TempDir, Arc<ManualClock>, QueueCollection) {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(START_MS));
    let queues = open(dir.path(), &clock, limits);
    (dir, clock, queues)
}

#[test]
fn max_items_refuses_the_item_past_the_limit() {
    let (_dir, _clock, queues) = setup(QueueLimits {
        max_items: Some(3),
        ..QueueLimits::default()
    });
    assert!(["a", "b", "c"].iter().all(|text| put(&queues, "q", text)));
    assert!(!put(&queues, "q", "d"));
    assert_eq!(drain(&queues, "q"), ["a", "b", "c"]);
}

#[test]
fn max_size_is_checked_before_the_add_so_the_last_one_may_overshoot() {
    let (_dir, _clock, queues) = setup(QueueLimits {
        max_size: Some(510),
        ..QueueLimits::default()
    });
    let big = "x".repeat(256);
    assert!(put(&queues, "q", &big));
    assert!(put(&queues, "q", &big));
    assert!(!put(&queues, "q", &big));
    assert_eq!(queues.get("q").expect("q").stats().bytes, 512);
}

#[test]
fn max_item_size_refuses_larger_items_only() {
    let (_dir, _clock, queues) = setup(QueueLimits {
        max_item_size: Some(3),
        ..QueueLimits::default()
    });
    assert!(put(&queues, "q", "abc"));
    assert!(!put(&queues, "q", "abcd"));
}

#[test]
fn discard_old_when_full_drops_the_oldest_and_counts_them() {
    let limits = QueueLimits {
        max_items: Some(2),
        discard_old_when_full: true,
        ..QueueLimits::default()
    };
    let (_dir, _clock, queues) = setup(limits);
    assert!(
        ["a", "b", "c", "d"]
            .iter()
            .all(|text| put(&queues, "q", text))
    );
    assert_eq!(queues.get("q").expect("q").stats().counters.discarded, 2);
    assert_eq!(drain(&queues, "q"), ["c", "d"]);
}

#[test]
fn max_age_expires_items_even_without_a_client_expiry() {
    let limits = QueueLimits {
        max_age: Some(Duration::from_secs(30)),
        ..QueueLimits::default()
    };
    let (_dir, clock, queues) = setup(limits);
    put(&queues, "q", "old");
    clock.advance(20_000);
    put(&queues, "q", "young");
    clock.advance(10_001);
    assert_eq!(drain(&queues, "q"), ["young"]);
    assert_eq!(
        queues.get("q").expect("q").stats().counters.expired_items,
        1
    );
}

#[test]
fn expired_items_move_to_the_expire_to_queue_without_expiry() {
    let limits = QueueLimits {
        max_age: Some(Duration::from_secs(30)),
        ..QueueLimits::default()
    };
    let (_dir, clock, queues) = setup(limits);
    put(&queues, "pending", "job-1");
    assert!(
        queues.get("ready").is_some(),
        "the target is created with its source"
    );
    put(&queues, "pending", "job-2");
    clock.advance(30_001);
    queues.sweep();
    assert_eq!(queues.get("pending").expect("pending").stats().items, 0);
    clock.advance(1_000_000_000);
    assert_eq!(drain(&queues, "ready"), ["job-1", "job-2"]);
}

#[test]
fn max_expire_sweep_bounds_one_pass() {
    let limits = QueueLimits {
        max_expire_sweep: Some(2),
        ..QueueLimits::default()
    };
    let (_dir, clock, queues) = setup(limits);
    let queue = queues.get_or_create("q").expect("q");
    for _ in 0..5 {
        queue.put(Bytes::from_static(b"x"), 10).expect("put");
    }
    clock.advance(10_001);
    assert_eq!(queue.flush_expired().0, 2);
    assert_eq!(queue.flush_expired().0, 2);
    assert_eq!(queue.flush_expired().0, 1);
}

#[test]
fn fanout_children_get_a_copy_and_apply_their_own_limits() {
    let (_dir, _clock, queues) = setup(QueueLimits::default());
    queues.get_or_create("jobs+audit").expect("child");
    put(&queues, "jobs", "one");
    put(&queues, "jobs", "two");
    assert_eq!(drain(&queues, "jobs+audit"), ["one", "two"]);
    assert_eq!(drain(&queues, "jobs"), ["one", "two"]);
    assert_eq!(
        queues.children_names("jobs"),
        Some(vec!["jobs+audit".to_owned()])
    );
    queues.delete("jobs+audit").expect("delete");
    assert_eq!(
        queues.children_names("jobs"),
        Some(Vec::new()),
        "entry stays, empty"
    );
    assert_eq!(queues.children_names("other"), None);
}

#[test]
fn a_put_makes_its_payload_once_and_commits_every_queue_it_wrote() {
    let (_dir, _clock, queues) = setup(QueueLimits::default());
    let made = std::cell::Cell::new(0);
    let payload = || {
        made.set(made.get() + 1);
        Bytes::from_static(b"x")
    };
    let put = queues.put_with("solo", 0, payload).expect("put");
    assert_eq!((made.get(), put.commits.len()), (1, 1));
    assert_eq!(put.commits[0].0.name(), "solo");
    queues.get_or_create("jobs+audit").expect("child");
    made.set(0);
    let put = queues.put_with("jobs", 0, payload).expect("put");
    let written: Vec<&str> = put.commits.iter().map(|(queue, _)| queue.name()).collect();
    assert_eq!((made.get(), written), (1, vec!["jobs+audit", "jobs"]));
    assert_eq!(drain(&queues, "jobs+audit"), ["x"]);
    assert_eq!(drain(&queues, "jobs"), ["x"]);
}

#[test]
fn a_fanout_only_master_keeps_nothing() {
    let limits = QueueLimits {
        fanout_only: true,
        ..QueueLimits::default()
    };
    let (_dir, _clock, queues) = setup(limits);
    queues.get_or_create("jobs+a").expect("child");
    queues
        .get("jobs+a")
        .expect("a")
        .set_limits(QueueLimits::default());
    assert!(put(&queues, "jobs", "x"));
    assert!(drain(&queues, "jobs").is_empty());
    assert_eq!(drain(&queues, "jobs+a"), ["x"]);
}

#[test]
fn a_timed_out_open_read_is_the_next_item_delivered() {
    let limits = QueueLimits {
        open_transaction_timeout: Some(Duration::from_secs(5)),
        ..QueueLimits::default()
    };
    let (_dir, clock, queues) = setup(limits);
    put(&queues, "q", "first");
    put(&queues, "q", "second");
    let queue = queues.get("q").expect("q");
    let xid = queue
        .take(TakeMode::Open)
        .item
        .and_then(|taken| taken.xid)
        .expect("xid");
    clock.advance(5_001);
    let next = queue.take(TakeMode::Remove).item.expect("item");
    assert_eq!(&next.data[..], b"first");
    assert_eq!(queue.confirm(xid), 0, "the late confirm is a no-op");
    assert_eq!(queue.stats().counters.canceled_transactions, 1);
}

#[test]
fn the_sweep_returns_timed_out_reads_and_deletes_old_empty_queues() {
    let limits = QueueLimits {
        open_transaction_timeout: Some(Duration::from_secs(5)),
        max_queue_age: Some(Duration::from_secs(60)),
        ..QueueLimits::default()
    };
    let (_dir, clock, queues) = setup(limits);
    put(&queues, "busy", "x");
    queues.get_or_create("idle").expect("idle");
    queues.get("busy").expect("busy").take(TakeMode::Open);
    clock.advance(5_001);
    queues.sweep();
    assert_eq!(
        queues.get("busy").expect("busy").stats().items,
        1,
        "open read returned"
    );
    clock.advance(60_000);
    queues.sweep();
    assert!(
        queues.get("idle").is_none(),
        "empty and older than max_queue_age"
    );
    assert!(queues.get("busy").is_some(), "not empty");
    assert_eq!(queues.expires(), 1);
}

#[test]
fn new_limits_apply_to_a_live_queue() {
    let (_dir, _clock, queues) = setup(QueueLimits::default());
    put(&queues, "q", "a");
    queues.get("q").expect("q").set_limits(QueueLimits {
        max_items: Some(1),
        ..QueueLimits::default()
    });
    assert!(!put(&queues, "q", "b"));
}

#[test]
fn max_journal_size_compacts_a_journal_that_the_live_data_alone_would_not() {
    let limits = QueueLimits {
        max_journal_size: Some(4096),
        ..QueueLimits::default()
    };
    let (_dir, _clock, queues) = setup(limits);
    let queue = queues.get_or_create("q").expect("q");
    for round in 0..200 {
        put(&queues, "q", &format!("item-{round}"));
        if round % 2 == 1 {
            queue.take(TakeMode::Remove);
        }
    }
    queue.write_pending().expect("write");
    let journal = queue.stats().journal;
    assert!(journal.rewrites > 0);
    assert!(journal.total_bytes <= 4096 + 64, "{journal:?}");
    assert_eq!(queue.stats().items, 100);
}

#[test]
fn a_memory_only_queue_journals_nothing_and_starts_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock: Arc<dyn lanner_queue::Clock> = Arc::new(ManualClock::new(START_MS));
    let memory_only = |_: &str| QueueOptions {
        keep_journal: false,
        ..QueueOptions::default()
    };
    {
        let queues = QueueCollection::open(dir.path(), Box::new(memory_only), Arc::clone(&clock))
            .expect("open")
            .0;
        put(&queues, "q", "fleeting");
        assert_eq!(queues.get("q").expect("q").stats().journal.total_bytes, 0);
    }
    let journals = std::fs::read_dir(dir.path()).expect("dir").filter(|entry| {
        entry
            .as_ref()
            .is_ok_and(|entry| entry.file_name().to_string_lossy().ends_with(".journal"))
    });
    assert_eq!(journals.count(), 0);
    let queues = QueueCollection::open(dir.path(), Box::new(memory_only), clock)
        .expect("reopen")
        .0;
    assert!(queues.get("q").is_none());
}
