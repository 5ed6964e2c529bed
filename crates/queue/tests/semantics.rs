//! Queue semantics through the public API, on a real journal in a temporary directory.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lanner_queue::{
    Clock, ManualClock, QueueCollection, QueueError, QueueOptions, SyncPolicy, TakeMode, Taken,
};
use proptest::prelude::*;

fn open_with(dir: &Path, clock: Arc<dyn Clock>) -> QueueCollection {
    let options = |_: &str| QueueOptions {
        sync: SyncPolicy::Never,
        ..QueueOptions::default()
    };
    QueueCollection::open(dir, Box::new(options), clock)
        .expect("open collection")
        .0
}

/// Tiny segments, so that rotation and compaction rewrites happen every few operations.
fn open_compacting(dir: &Path) -> QueueCollection {
    open_tiny(dir, u64::MAX)
}

/// Tiny segments, and a tiny memory budget so that most items are spilled (read-behind).
fn open_spilling(dir: &Path) -> QueueCollection {
    open_tiny(dir, 4)
}

fn open_tiny(dir: &Path, max_memory_size: u64) -> QueueCollection {
    let options = move |_: &str| {
        let mut options = QueueOptions {
            sync: SyncPolicy::Never,
            max_memory_size,
            ..QueueOptions::default()
        };
        options.journal.segment_size = 256;
        options
    };
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    QueueCollection::open(dir, Box::new(options), clock)
        .expect("open collection")
        .0
}

fn open(dir: &Path) -> QueueCollection {
    open_with(dir, Arc::new(ManualClock::new(1_700_000_000_000)))
}

fn data(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn take(queues: &QueueCollection, name: &str, mode: TakeMode) -> Option<Taken> {
    queues.get(name).expect("queue").take(mode).item
}

/// Queue options that keep only 1 KiB of items in memory, the rest in the spill file.
fn one_kib_of_memory(_: &str) -> QueueOptions {
    QueueOptions {
        sync: SyncPolicy::Never,
        max_memory_size: 1024,
        ..QueueOptions::default()
    }
}

/// `count` distinct 100-byte items, in order.
fn numbered_items(count: u32) -> Vec<Bytes> {
    (0..count)
        .map(|i| Bytes::from(format!("{i:0100}")))
        .collect()
}

fn drain(queues: &QueueCollection, name: &str) -> Vec<Bytes> {
    std::iter::from_fn(|| take(queues, name, TakeMode::Remove).map(|taken| taken.data)).collect()
}

#[test]
fn items_come_out_in_order_and_peek_leaves_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queues = open(dir.path());
    let queue = queues.get_or_create("q").expect("create");
    for text in ["a", "b", "c"] {
        queue.put(data(text), 0).expect("put");
    }
    assert_eq!(
        take(&queues, "q", TakeMode::Peek).map(|t| t.data),
        Some(data("a"))
    );
    assert_eq!(drain(&queues, "q"), [data("a"), data("b"), data("c")]);
}

#[test]
fn dequeued_counts_removes_and_confirms_but_not_peeks_or_aborts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queues = open(dir.path());
    let queue = queues.get_or_create("q").expect("create");
    for text in ["a", "b", "c", "d"] {
        queue.put(data(text), 0).expect("put");
    }
    take(&queues, "q", TakeMode::Peek);
    take(&queues, "q", TakeMode::Remove);
    let confirmed = take(&queues, "q", TakeMode::Open).and_then(|t| t.xid);
    queue.confirm(confirmed.expect("xid"));
    let aborted = take(&queues, "q", TakeMode::Open).and_then(|t| t.xid);
    queue.abort(&[aborted.expect("xid")]);
    let stats = queue.stats();
    assert_eq!(stats.counters.dequeued, 2);
    assert_eq!(stats.items, 2);
    assert!(!stats.journal.poisoned);
}

#[test]
fn aborted_reads_return_to_the_head_in_their_original_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queues = open(dir.path());
    let queue = queues.get_or_create("q").expect("create");
    for text in ["a", "b", "c", "d"] {
        queue.put(data(text), 0).expect("put");
    }
    let first = take(&queues, "q", TakeMode::Open)
        .and_then(|t| t.xid)
        .expect("xid");
    let second = take(&queues, "q", TakeMode::Open)
        .and_then(|t| t.xid)
        .expect("xid");
    queue.abort(&[first, second]);
    assert_eq!(queue.stats().counters.canceled_transactions, 2);
    assert_eq!(
        drain(&queues, "q"),
        [data("a"), data("b"), data("c"), data("d")]
    );
}

#[test]
fn recovery_returns_reads_left_open_and_keeps_confirmed_ones_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let queues = open(dir.path());
        let queue = queues.get_or_create("q").expect("create");
        for text in ["one", "two", "three", "four", "five"] {
            queue.put(data(text), 0).expect("put");
        }
        let xids: Vec<u32> = (0..4)
            .map(|_| {
                take(&queues, "q", TakeMode::Open)
                    .and_then(|t| t.xid)
                    .expect("xid")
            })
            .collect();
        queue.confirm(xids[1]);
        queue.confirm(xids[3]);
        queues.sync_all().expect("sync");
    }
    let queues = open(dir.path());
    assert_eq!(
        drain(&queues, "q"),
        [data("one"), data("three"), data("five")]
    );
}

#[test]
fn expired_items_are_dropped_at_the_head_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let queues = open_with(dir.path(), clock.clone());
    let queue = queues.get_or_create("q").expect("create");
    queue.put(data("short"), 10).expect("put");
    queue.put(data("forever"), 0).expect("put");
    clock.advance(10_000);
    assert_eq!(
        queue.stats().items,
        2,
        "expiry is strict: not yet expired at its deadline"
    );
    clock.advance(1);
    assert_eq!(
        take(&queues, "q", TakeMode::Remove).map(|t| t.data),
        Some(data("forever"))
    );
    assert_eq!(queue.stats().counters.expired_items, 1);
}

#[test]
fn flush_empties_the_queue_but_keeps_open_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queues = open(dir.path());
    let queue = queues.get_or_create("q").expect("create");
    for text in ["a", "b", "c"] {
        queue.put(data(text), 0).expect("put");
    }
    let xid = take(&queues, "q", TakeMode::Open)
        .and_then(|t| t.xid)
        .expect("xid");
    queue.flush();
    assert_eq!(queue.stats().items, 0);
    queue.abort(&[xid]);
    assert_eq!(drain(&queues, "q"), [data("a")]);
}

#[test]
fn a_deleted_queue_refuses_puts_and_loses_its_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queues = open(dir.path());
    let queue = queues.get_or_create("q").expect("create");
    queue.put(data("a"), 0).expect("put");
    assert!(queues.delete("q").expect("delete"));
    assert!(matches!(queue.put(data("b"), 0), Err(QueueError::Deleted)));
    assert!(queues.get("q").is_none());
    drop(queues);
    assert!(
        open(dir.path()).get("q").is_none(),
        "no journal left to recover"
    );
}

/// Default options with `segment_size` segments.
fn open_with_segments(dir: &Path, segment_size: u64) -> QueueCollection {
    let options = move |_: &str| {
        let mut options = QueueOptions::default();
        options.journal.segment_size = segment_size;
        options
    };
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    QueueCollection::open(dir, Box::new(options), clock)
        .expect("open collection")
        .0
}

/// Puts `count` items of 1000 bytes, then takes them all; the queue's journal figures after.
fn fill_and_drain(queues: &QueueCollection, count: usize) -> lanner_journal::JournalStats {
    let queue = queues.get_or_create("q").expect("create");
    let payload = Bytes::from(vec![7u8; 1000]);
    for _ in 0..count {
        queue.put(payload.clone(), 0).expect("put");
    }
    queue.write_pending().expect("write");
    let mut last = 0;
    for _ in 0..count {
        last = queue.take(TakeMode::Remove).seq;
    }
    queue.commit(last).expect("commit");
    queue.stats().journal
}

#[test]
fn draining_a_journal_larger_than_a_segment_leaves_at_most_one_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = fill_and_drain(&open_with_segments(dir.path(), 1 << 20), 3000);
    assert!(journal.rewrites >= 1, "{journal:?}");
    assert!(journal.total_bytes <= 1 << 20, "{journal:?}");
    assert_eq!(journal.segments, 1, "{journal:?}");
}

#[test]
fn a_drained_journal_within_one_segment_is_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let journal = fill_and_drain(&open_with_segments(dir.path(), 16 << 20), 3000);
    assert_eq!(journal.rewrites, 0, "{journal:?}");
    assert!(journal.total_bytes > 3_000_000, "{journal:?}");
}

#[test]
fn journal_stays_within_twice_the_live_data_plus_a_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queues = open_compacting(dir.path());
    let queue = queues.get_or_create("q").expect("create");
    let mut model = VecDeque::new();
    for round in 0..200u32 {
        let item = Bytes::from(round.to_le_bytes().to_vec());
        queue.put(item.clone(), 0).expect("put");
        model.push_back(item);
        if round % 3 != 0 {
            assert_eq!(
                queue.take(TakeMode::Remove).item.map(|t| t.data),
                model.pop_front()
            );
        }
        queue.write_pending().expect("write");
        let stats = queue.stats();
        let live = model
            .iter()
            .map(|item| {
                lanner_queue::Item {
                    data: item.clone(),
                    add_time_ms: 0,
                    expiry_ms: 0,
                }
                .journal_len()
            })
            .sum::<u64>();
        assert!(
            stats.journal.total_bytes <= 2 * live + 256 + 64,
            "round {round}: {stats:?}"
        );
    }
    assert!(queue.stats().journal.rewrites > 0);
    drop(queues);
    let queues = open_compacting(dir.path());
    assert_eq!(drain(&queues, "q"), Vec::from(model));
}

#[tokio::test]
async fn a_waiter_is_woken_by_a_put() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queues = open(dir.path());
    let queue = queues.get_or_create("q").expect("create");
    let waiter = {
        let queue = Arc::clone(&queue);
        tokio::spawn(async move { queue.take_blocking(TakeMode::Remove).await })
    };
    wait_for_waiters(&queue, 1).await;
    queue.put(data("hello"), 0).expect("put");
    let outcome = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("woken")
        .expect("join");
    assert_eq!(outcome.item.map(|t| t.data), Some(data("hello")));
    assert_eq!(queue.stats().waiters, 0);
}

#[tokio::test]
async fn the_oldest_waiter_gets_the_first_item_and_a_dropped_waiter_takes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queues = open(dir.path());
    let queue = queues.get_or_create("q").expect("create");
    let abandoned = {
        let queue = Arc::clone(&queue);
        tokio::spawn(async move { queue.take_blocking(TakeMode::Remove).await })
    };
    wait_for_waiters(&queue, 1).await;
    let oldest = {
        let queue = Arc::clone(&queue);
        tokio::spawn(async move { queue.take_blocking(TakeMode::Remove).await })
    };
    wait_for_waiters(&queue, 2).await;
    let newest = {
        let queue = Arc::clone(&queue);
        tokio::spawn(async move { queue.take_blocking(TakeMode::Remove).await })
    };
    wait_for_waiters(&queue, 3).await;
    abandoned.abort();
    wait_for_waiters(&queue, 2).await;
    queue.put(data("first"), 0).expect("put");
    let got = tokio::time::timeout(Duration::from_secs(10), oldest)
        .await
        .expect("woken")
        .expect("join");
    assert_eq!(got.item.map(|t| t.data), Some(data("first")));
    queue.put(data("second"), 0).expect("put");
    let got = tokio::time::timeout(Duration::from_secs(10), newest)
        .await
        .expect("woken")
        .expect("join");
    assert_eq!(got.item.map(|t| t.data), Some(data("second")));
}

#[tokio::test]
async fn deleting_a_queue_releases_its_waiters_empty_handed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queues = Arc::new(open(dir.path()));
    let queue = queues.get_or_create("q").expect("create");
    let waiter = {
        let queue = Arc::clone(&queue);
        tokio::spawn(async move { queue.take_blocking(TakeMode::Open).await })
    };
    wait_for_waiters(&queue, 1).await;
    queues.delete("q").expect("delete");
    let outcome = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("released")
        .expect("join");
    assert_eq!(outcome.item, None);
}

async fn wait_for_waiters(queue: &lanner_queue::Queue, count: u64) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while queue.stats().waiters != count {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("waiter count reached");
}

/// One step of the model test.
#[derive(Debug, Clone)]
enum Op {
    Put(u8),
    Take,
    Open,
    ConfirmOldest,
    AbortOldest,
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u8>().prop_map(Op::Put),
        2 => Just(Op::Take),
        2 => Just(Op::Open),
        1 => Just(Op::ConfirmOldest),
        1 => Just(Op::AbortOldest),
        1 => Just(Op::Flush),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any sequence of operations, then a restart: the recovered queue holds exactly the model's
    /// items, with the reads left open back at the head in their original order. Tiny journal
    /// segments and memory budgets make rotations, compaction rewrites and read-behind part of
    /// nearly every sequence.
    #[test]
    fn restart_recovers_the_model(ops in proptest::collection::vec(op(), 0..200), mode in 0..3u8) {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = |dir: &Path| match mode {
            0 => open(dir),
            1 => open_compacting(dir),
            _ => open_spilling(dir),
        };
        let mut model: VecDeque<u8> = VecDeque::new();
        let mut open_reads: VecDeque<(u32, u8)> = VecDeque::new();
        {
            let queues = open(dir.path());
            let queue = queues.get_or_create("q").expect("create");
            for op in ops {
                match op {
                    Op::Put(value) => {
                        queue.put(Bytes::from(vec![value]), 0).expect("put");
                        model.push_back(value);
                    }
                    Op::Take => {
                        let taken = queue.take(TakeMode::Remove).item.map(|t| t.data[0]);
                        prop_assert_eq!(taken, model.pop_front());
                    }
                    Op::Open => {
                        let taken = queue.take(TakeMode::Open).item;
                        let expected = model.pop_front();
                        prop_assert_eq!(taken.as_ref().map(|t| t.data[0]), expected);
                        if let (Some(taken), Some(value)) = (taken, expected) {
                            open_reads.push_back((taken.xid.expect("xid"), value));
                        }
                    }
                    Op::ConfirmOldest => {
                        if let Some((xid, _)) = open_reads.pop_front() {
                            queue.confirm(xid);
                        }
                    }
                    Op::AbortOldest => {
                        if let Some((xid, value)) = open_reads.pop_front() {
                            queue.abort(&[xid]);
                            model.push_front(value);
                        }
                    }
                    Op::Flush => {
                        queue.flush();
                        model.clear();
                    }
                }
            }
            queue.write_pending().expect("write");
        }
        for (_, value) in open_reads.iter().rev() {
            model.push_front(*value);
        }
        let queues = open(dir.path());
        let recovered: Vec<u8> = drain(&queues, "q").iter().map(|data| data[0]).collect();
        prop_assert_eq!(recovered, Vec::from(model));
    }
}

#[test]
fn a_queue_larger_than_its_memory_budget_keeps_order_and_bounded_memory_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(1_700_000_000_000));
    let expected = numbered_items(10_000);
    {
        let queues =
            QueueCollection::open(dir.path(), Box::new(one_kib_of_memory), Arc::clone(&clock))
                .expect("open")
                .0;
        let queue = queues.get_or_create("big").expect("create");
        for item in &expected[..5_000] {
            queue.put(item.clone(), 0).expect("put");
        }
        let stats = queue.stats();
        assert_eq!(stats.items, 5_000);
        assert!(
            stats.mem_bytes <= 1024 + 100,
            "memory holds the budget: {stats:?}"
        );
        let first = queue.take(TakeMode::Open).item.expect("open read");
        assert_eq!(first.data, expected[0]);
        for item in &expected[5_000..] {
            queue.put(item.clone(), 0).expect("put");
        }
        queue.write_pending().expect("write");
    }
    let queues = QueueCollection::open(dir.path(), Box::new(one_kib_of_memory), clock)
        .expect("reopen")
        .0;
    let queue = queues.get("big").expect("recovered");
    let stats = queue.stats();
    assert_eq!(stats.items, 10_000, "the open read came back");
    assert!(
        stats.mem_bytes <= 1024 + 100,
        "recovery keeps memory bounded: {stats:?}"
    );
    assert_eq!(drain(&queues, "big"), expected);
    let spill = std::fs::metadata(dir.path().join("big.spill")).map_or(0, |meta| meta.len());
    assert_eq!(spill, 0, "the spill file gives its space back once drained");
}

#[tokio::test]
async fn sync_always_writers_share_fsyncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let always = |_: &str| QueueOptions {
        sync: SyncPolicy::Always,
        ..QueueOptions::default()
    };
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(1_700_000_000_000));
    let queues = QueueCollection::open(dir.path(), Box::new(always), clock)
        .expect("open")
        .0;
    let queue = queues.get_or_create("q").expect("create");
    let writers: Vec<_> = (0..200u32)
        .map(|i| {
            let queue = Arc::clone(&queue);
            tokio::spawn(async move {
                let seq = match queue
                    .put(Bytes::from(i.to_le_bytes().to_vec()), 0)
                    .expect("put")
                {
                    lanner_queue::PutOutcome::Stored(seq) => seq,
                    lanner_queue::PutOutcome::NotStored => panic!("refused"),
                };
                queue.commit_async(seq).await.expect("durable");
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let fsyncs = queue.stats().journal.fsyncs;
    assert!(
        (1..200).contains(&fsyncs),
        "200 durable writes took {fsyncs} fsyncs"
    );
    drop(queues);
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(1_700_000_000_000));
    let queues = QueueCollection::open(dir.path(), Box::new(always), clock)
        .expect("reopen")
        .0;
    assert_eq!(queues.get("q").expect("q").stats().items, 200);
}

/// The spill file is rebuilt from the journal at startup, over a leftover file in place: the
/// leftover's bytes (here garbage, longer than the rebuilt spill) are never read as items.
#[test]
fn a_restart_rebuilds_the_spill_over_a_longer_leftover_file_without_reading_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(1_700_000_000_000));
    let expected = numbered_items(4_000);
    {
        let queues =
            QueueCollection::open(dir.path(), Box::new(one_kib_of_memory), Arc::clone(&clock))
                .expect("open")
                .0;
        let queue = queues.get_or_create("big").expect("create");
        for item in &expected {
            queue.put(item.clone(), 0).expect("put");
        }
        for item in &expected[..1_500] {
            assert_eq!(queue.take(TakeMode::Remove).item.expect("item").data, item);
        }
        queue.write_pending().expect("write");
    }
    let spill = std::fs::read_dir(dir.path())
        .expect("data dir")
        .map(|entry| entry.expect("entry").path())
        .find(|path| path.extension().is_some_and(|ext| ext == "spill"))
        .expect("a leftover spill file");
    let leftover = std::fs::metadata(&spill).expect("spill").len();
    assert!(leftover > 100_000, "a spill was written: {leftover}");
    std::fs::write(&spill, vec![0x5A; 2 * leftover as usize]).expect("garbage");

    let queues = QueueCollection::open(dir.path(), Box::new(one_kib_of_memory), Arc::clone(&clock))
        .expect("reopen")
        .0;
    assert_eq!(queues.get("big").expect("recovered").stats().items, 2_500);
    assert_eq!(drain(&queues, "big"), expected[1_500..]);
    queues
        .get("big")
        .expect("queue")
        .write_pending()
        .expect("write");
    drop(queues);
    let queues = QueueCollection::open(dir.path(), Box::new(one_kib_of_memory), clock)
        .expect("reopen drained")
        .0;
    assert_eq!(drain(&queues, "big"), Vec::<Bytes>::new());
}

/// A journal read in several chunks, with removes among its adds, replays into a spilling
/// queue in order and within its memory budget (the journal is read and checksummed, and the
/// spill file written, on threads of their own meanwhile).
#[test]
fn a_long_journal_with_removes_replays_into_a_spilling_queue_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(1_700_000_000_000));
    let expected: Vec<Bytes> = (0..6_000u32)
        .map(|i| Bytes::from(format!("{i:01000}")))
        .collect();
    {
        let queues =
            QueueCollection::open(dir.path(), Box::new(one_kib_of_memory), Arc::clone(&clock))
                .expect("open")
                .0;
        let queue = queues.get_or_create("big").expect("create");
        for (i, item) in expected.iter().enumerate() {
            queue.put(item.clone(), 0).expect("put");
            if i % 3 == 2 {
                let taken = queue.take(TakeMode::Remove).item.expect("item");
                assert_eq!(taken.data, expected[i / 3]);
            }
        }
        queue.write_pending().expect("write");
    }
    let queues = QueueCollection::open(dir.path(), Box::new(one_kib_of_memory), clock)
        .expect("reopen")
        .0;
    let stats = queues.get("big").expect("recovered").stats();
    assert_eq!(stats.items, 4_000);
    assert!(stats.mem_bytes <= 1024 + 1000, "{stats:?}");
    assert_eq!(drain(&queues, "big"), expected[2_000..]);
}
