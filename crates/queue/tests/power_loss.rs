//! Power loss through the queue and its journal on a simulated disk: random operations, the
//! power cut at a random disk call (in the middle of a write, an fsync, a rotation or a
//! compaction rewrite), then a reopen from what survived.
//!
//! Under `sync = always` nothing acknowledged may be lost or come back: the recovered queue is
//! the acknowledged state, or that state plus the one operation the cut interrupted. Under
//! `sync = never` (`interval` between its syncs is the same) only a consistent earlier state
//! is promised: the journal opens without a corruption error and the queue is a state the
//! model passed through.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use lanner_journal::SimStorage;
use lanner_queue::{
    ManualClock, PutOutcome, Queue, QueueCollection, QueueOptions, Seq, SyncPolicy, TakeMode,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Put,
    Take,
    Open,
    Confirm(usize),
    Abort(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => Just(Op::Put),
        2 => Just(Op::Take),
        2 => Just(Op::Open),
        1 => any::<usize>().prop_map(Op::Confirm),
        1 => any::<usize>().prop_map(Op::Abort),
    ]
}

/// One run until the power goes: the operations, where the power is cut (a count of disk
/// calls; past the end means after the last operation) and how writes tear.
#[derive(Debug, Clone)]
struct Round {
    ops: Vec<Op>,
    cut: u64,
    torn: Option<u64>,
}

fn round() -> impl Strategy<Value = Round> {
    (
        proptest::collection::vec(op(), 0..40),
        0..200u64,
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(ops, cut, torn)| Round { ops, cut, torn })
}

/// The queue as the test believes it: items in order and open reads by xid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Model {
    items: VecDeque<Bytes>,
    open: BTreeMap<u32, Bytes>,
}

impl Model {
    /// What a reopen shows: reads left open go back to the head, oldest first.
    fn reopened(&self) -> Vec<Bytes> {
        self.open
            .values()
            .chain(self.items.iter())
            .cloned()
            .collect()
    }
}

fn open(sim: &SimStorage, dir: &Path, sync: SyncPolicy) -> QueueCollection {
    let options = move |_: &str| {
        let mut options = QueueOptions {
            sync,
            ..QueueOptions::default()
        };
        options.journal.segment_size = 200;
        // Small, so writes keep crossing into fresh zeros (and a 1 MiB fill per segment would
        // make each fsync of the simulated disk copy a MiB).
        options.zero_fill_ahead = 64;
        options
    };
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    QueueCollection::open_on(Arc::new(sim.clone()), dir, Box::new(options), clock)
        .expect("reopen after a power loss")
        .0
}

/// Every item of `queue` in order, read as open reads and then aborted, so the queue is left
/// as it was.
fn contents(queue: &Queue) -> Vec<Bytes> {
    let mut items = Vec::new();
    let mut xids = Vec::new();
    while let Some(taken) = queue.take(TakeMode::Open).item {
        items.push(taken.data);
        xids.extend(taken.xid);
    }
    let seq = queue.abort(&xids);
    queue.commit(seq).expect("commit the aborts");
    items
}

/// Runs `op` against the queue and the model. Returns the model after `op` and whether the
/// queue acknowledged it; `None` when `op` changed nothing.
fn apply(queue: &Queue, model: &Model, op: &Op, serial: &mut u32) -> Option<(Model, bool)> {
    let mut next = model.clone();
    let nth_open = |i: usize| model.open.keys().nth(i % model.open.len().max(1)).copied();
    let seq: Seq = match op {
        Op::Put => {
            *serial += 1;
            let data = Bytes::from(format!("item {serial}"));
            match queue.put(data.clone(), 0) {
                Ok(PutOutcome::Stored(seq)) => {
                    next.items.push_back(data);
                    seq
                }
                Ok(PutOutcome::NotStored) => return None,
                Err(_) => return Some((next, false)),
            }
        }
        Op::Take => {
            let outcome = queue.take(TakeMode::Remove);
            let taken = outcome.item?;
            assert_eq!(next.items.pop_front(), Some(taken.data));
            outcome.seq
        }
        Op::Open => {
            let outcome = queue.take(TakeMode::Open);
            let taken = outcome.item?;
            let xid = taken.xid.expect("an open read has an xid");
            assert_eq!(next.items.pop_front().as_ref(), Some(&taken.data));
            next.open.insert(xid, taken.data);
            outcome.seq
        }
        Op::Confirm(i) => {
            let xid = nth_open(*i)?;
            next.open.remove(&xid);
            queue.confirm(xid)
        }
        Op::Abort(i) => {
            let xid = nth_open(*i)?;
            let data = next.open.remove(&xid).expect("open read");
            next.items.push_front(data);
            queue.abort(&[xid])
        }
    };
    Some((next, queue.commit(seq).is_ok()))
}

/// Plays `rounds`, each ending in a power loss; checks each reopen.
fn run(rounds: &[Round], sync: SyncPolicy) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimStorage::new();
    let mut model = Model::default();
    // Under `never`: every state the queue passed through since the last one known durable.
    let mut history = vec![model.reopened()];
    let mut serial = 0;
    for round in rounds {
        let queues = open(&sim, dir.path(), sync);
        let queue = queues.get_or_create("q").unwrap();
        sim.cut_power_after(round.cut);
        let mut in_doubt = None;
        for op in &round.ops {
            let Some((next, acknowledged)) = apply(&queue, &model, op, &mut serial) else {
                continue;
            };
            if !acknowledged {
                // The disk is gone; what this operation did may or may not have survived.
                in_doubt = Some(next);
                break;
            }
            model = next;
            history.push(model.reopened());
        }
        drop(queue);
        drop(queues);
        sim.power_loss(round.torn);

        let queues = open(&sim, dir.path(), sync);
        let queue = queues.get_or_create("q").unwrap();
        let recovered = contents(&queue);
        if sync == SyncPolicy::Always {
            let acknowledged = model.reopened();
            let interrupted = in_doubt.as_ref().map(Model::reopened);
            prop_assert!(
                recovered == acknowledged || Some(&recovered) == interrupted.as_ref(),
                "recovered {:?}, acknowledged {:?}, interrupted {:?}",
                recovered,
                acknowledged,
                interrupted
            );
        } else {
            if let Some(next) = in_doubt {
                history.push(next.reopened());
            }
            let at = history.iter().rposition(|state| *state == recovered);
            prop_assert!(
                at.is_some(),
                "recovered {:?} is no state the queue passed through",
                recovered
            );
            history.truncate(at.unwrap_or_default() + 1);
        }
        // Go on from what survived; the reopen put every open read back at the head.
        model = Model {
            items: recovered.into(),
            open: BTreeMap::new(),
        };
        if sync == SyncPolicy::Always {
            history = vec![model.reopened()];
        }
    }
    Ok(())
}

/// Under `sync = always` the journal writes zeros ahead of its records (so an fdatasync need
/// not commit a size change); otherwise it does not. The journal's byte count is the records'.
#[test]
fn only_a_sync_always_queue_fills_its_journal_ahead_with_zeros() {
    for (sync, zero_filled) in [(SyncPolicy::Always, true), (SyncPolicy::Never, false)] {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimStorage::new();
        let queues = open(&sim, dir.path(), sync);
        let queue = queues.get_or_create("q").unwrap();
        let Ok(PutOutcome::Stored(seq)) = queue.put(Bytes::from("item"), 0) else {
            panic!("put refused");
        };
        queue.commit(seq).unwrap();
        let records = queue.stats().journal.total_bytes;
        assert_eq!(sim.used_bytes() > records, zero_filled, "{sync:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn sync_always_loses_nothing_acknowledged_in_a_power_loss(
        rounds in proptest::collection::vec(round(), 1..4),
    ) {
        run(&rounds, SyncPolicy::Always)?;
    }

    #[test]
    fn sync_never_recovers_a_consistent_earlier_state_after_a_power_loss(
        rounds in proptest::collection::vec(round(), 1..4),
    ) {
        run(&rounds, SyncPolicy::Never)?;
    }
}
