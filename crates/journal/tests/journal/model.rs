//! Property test: random queue operations against a model, then a crash that cuts the newest
//! segment anywhere after the acknowledged (written-through) prefix. Replay must give a state
//! the model passed through, no earlier than the acknowledged one. Runs with and without zero
//! fill ahead (whose zeros the cut may keep in part).

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::path::Path;

use bytes::Bytes;
use lanner_journal::{Journal, JournalOptions, Record, Seq};
use proptest::prelude::*;

use crate::common::HEADER_LEN;

#[derive(Debug, Clone)]
enum Op {
    Add(Vec<u8>),
    Remove,
    Open,
    Abort(usize),
    Confirm(usize),
    Rewrite,
    WriteThrough,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Add),
        2 => Just(Op::Remove),
        2 => Just(Op::Open),
        1 => any::<usize>().prop_map(Op::Abort),
        1 => any::<usize>().prop_map(Op::Confirm),
        1 => Just(Op::Rewrite),
        3 => Just(Op::WriteThrough),
    ]
}

/// Queue state as replay rebuilds it: items in order, and open reads by xid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Model {
    items: VecDeque<Record>,
    open: BTreeMap<u32, Record>,
}

impl Model {
    fn apply(&mut self, record: &Record) {
        match record {
            Record::Add { .. } => self.items.push_back(record.clone()),
            Record::Remove => {
                self.items.pop_front().expect("remove from an empty queue");
            }
            Record::RemoveTentative { xid } => {
                let item = self.items.pop_front().expect("open read of an empty queue");
                self.open.insert(*xid, item);
            }
            Record::Unremove { xid } => {
                let item = self.open.remove(xid).expect("abort of an unknown xid");
                self.items.push_front(item);
            }
            Record::ConfirmRemove { xid } => {
                self.open.remove(xid).expect("confirm of an unknown xid");
            }
        }
    }

    /// The record `op` produces in this state, if it is valid here.
    fn record_for(&self, op: &Op, next_xid: &mut u32, clock: i64) -> Option<Record> {
        let nth_open = |i: &usize| self.open.keys().nth(i % self.open.len().max(1)).copied();
        match op {
            Op::Add(data) => Some(Record::Add {
                add_time_ms: clock,
                expiry_ms: clock % 3 * 1000,
                data: Bytes::from(data.clone()),
            }),
            Op::Remove => (!self.items.is_empty()).then_some(Record::Remove),
            Op::Open => (!self.items.is_empty()).then(|| {
                *next_xid += 1;
                Record::RemoveTentative { xid: *next_xid }
            }),
            Op::Abort(i) => nth_open(i).map(|xid| Record::Unremove { xid }),
            Op::Confirm(i) => nth_open(i).map(|xid| Record::ConfirmRemove { xid }),
            Op::Rewrite | Op::WriteThrough => None,
        }
    }

    /// The rewrite of this state: each open read as Add + RemoveTentative, then the items.
    fn live(&self) -> Vec<Record> {
        let open = self
            .open
            .iter()
            .flat_map(|(xid, item)| [item.clone(), Record::RemoveTentative { xid: *xid }]);
        open.chain(self.items.iter().cloned()).collect()
    }

    fn replayed(records: &[Record]) -> Model {
        let mut model = Model::default();
        records.iter().for_each(|r| model.apply(r));
        model
    }
}

/// The newest segment: its number, file length (zero fill included), and whether it is a
/// snapshot.
fn newest_segment(dir: &Path) -> (u64, u64, bool) {
    let (number, path) = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let number = name
                .strip_prefix("q.")?
                .strip_suffix(".journal")?
                .parse::<u64>()
                .ok()?;
            Some((number, p))
        })
        .max()
        .unwrap();
    let bytes = fs::read(&path).unwrap();
    (number, bytes.len() as u64, bytes[5] == 1)
}

/// What the last write-through acknowledged.
struct Ack {
    state: usize,
    segment: u64,
    len: u64,
}

fn run(ops: &[Op], segment_size: u64, zero_fill_ahead: u64, cut: u64) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions {
        segment_size,
        zero_fill_ahead,
        ..JournalOptions::default()
    };
    let (journal, _) = Journal::open(dir.path(), "q", options.clone()).unwrap();
    let mut model = Model::default();
    let mut states = vec![model.clone()];
    let (mut next_xid, mut last_seq): (u32, Seq) = (0, 0);
    let mut ack = Ack {
        state: 0,
        segment: 1,
        len: HEADER_LEN,
    };
    let (mut pending_snapshot, mut written_snapshot) = (None, HEADER_LEN);
    for (clock, op) in ops.iter().enumerate() {
        match op {
            Op::Rewrite => {
                let live = model.live();
                pending_snapshot =
                    Some(HEADER_LEN + live.iter().map(Record::encoded_len).sum::<u64>());
                last_seq = journal.rewrite(live);
            }
            Op::WriteThrough => {
                journal.write_through(last_seq).unwrap();
                written_snapshot = pending_snapshot.take().unwrap_or(written_snapshot);
                let (segment, file_len, _) = newest_segment(dir.path());
                let len = journal.stats().current_segment_bytes;
                prop_assert!(len == file_len || zero_fill_ahead > 0 && len < file_len);
                ack = Ack {
                    state: states.len() - 1,
                    segment,
                    len,
                };
            }
            op => {
                if let Some(record) = model.record_for(op, &mut next_xid, clock as i64) {
                    model.apply(&record);
                    last_seq = journal.append(&record);
                    states.push(model.clone());
                }
            }
        }
    }
    // Everything reaches the OS, but only `ack` was acknowledged.
    journal.write_through(Seq::MAX).unwrap();
    written_snapshot = pending_snapshot.unwrap_or(written_snapshot);
    drop(journal);

    let (_, replay) = Journal::open(dir.path(), "q", options.clone()).unwrap();
    prop_assert_eq!(&Model::replayed(&replay.records), &model);

    // The crash: cut the newest segment anywhere after what must survive it. Only the
    // acknowledged prefix of the acknowledged segment, or the fsynced snapshot part of a newer
    // snapshot segment, must survive; a segment rotated in after the ack may lose everything.
    let (segment, len, snapshot) = newest_segment(dir.path());
    let keep = if segment == ack.segment {
        ack.len
    } else if snapshot {
        written_snapshot
    } else {
        0
    };
    prop_assert!(keep <= len);
    let at = keep + cut % (len - keep + 1);
    let path = dir.path().join(format!("q.{segment:020}.journal"));
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(at)
        .unwrap();

    let (_, replay) = Journal::open(dir.path(), "q", options).unwrap();
    let recovered = Model::replayed(&replay.records);
    let position = states.iter().rposition(|s| *s == recovered);
    prop_assert!(
        position.is_some_and(|p| p >= ack.state),
        "recovered {:?} is not a state at or after the acknowledged one ({}), cut at {} of {}",
        recovered,
        ack.state,
        at,
        len
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn replay_after_a_crash_gives_an_acknowledged_state(
        ops in proptest::collection::vec(op(), 0..80),
        small_segments in any::<bool>(),
        zero_fill_ahead in prop_oneof![Just(0), Just(50), Just(4096)],
        cut in any::<u64>(),
    ) {
        run(&ops, if small_segments { 160 } else { 1 << 20 }, zero_fill_ahead, cut)?;
    }
}
