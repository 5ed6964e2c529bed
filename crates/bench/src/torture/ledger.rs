//! What the torture knows about every item it ever sent, across all crash cycles, and the
//! invariants it checks against what a restarted server holds.
//!
//! Items are named by (producer, sequence number), as the payload stamps them. After each cycle
//! the workers' events are [`Ledger::apply`]d, then the restarted server's whole queue is
//! compared with the ledger by [`Ledger::check_queue`]:
//!
//! * an acknowledged set (`STORED` received) is queued until a delivery of it is confirmed;
//! * a confirmed delivery (a plain get's reply, or an acknowledged `/close`) never comes back;
//! * a set whose reply the kill cut off may or may not be there; a reliable read whose close was
//!   in flight may come back (both counted, never violations);
//! * a plain get whose reply the kill cut off may have taken one item that nobody received: each
//!   such get excuses one missing item of that cycle, and no more.

use std::collections::{HashMap, HashSet};

/// An item: the producer that sent it and its sequence number within that producer.
pub type Id = (u32, u64);

/// How a `set` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    /// `STORED` arrived.
    Acked,
    /// Sent (perhaps only partly); the connection died before the reply.
    InDoubt,
    /// Answered with an error (`NOT_STORED`, `SERVER_ERROR ...`).
    Refused,
}

/// How one delivery of an item ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// A plain `get` answered with the item.
    Plain,
    /// A reliable read whose close (`/close` or `/close/open`) was answered.
    Closed,
    /// A reliable read whose close was sent but not answered before the kill.
    CloseInDoubt,
    /// A reliable read given back: `/abort`, or its connection closed.
    Aborted,
    /// A reliable read still open when the server died.
    HeldAtKill,
}

/// What one cycle's workers saw.
#[derive(Debug, Default)]
pub struct CycleEvents {
    /// Per producer: its id, the sequence number of its first set this cycle, and each set's
    /// outcome in order.
    pub sets: Vec<(u32, u64, Vec<SetOutcome>)>,
    /// Every delivery of an item.
    pub taken: Vec<(Id, Taken)>,
    /// Plain gets sent whose reply never arrived.
    pub plain_in_doubt: u64,
    /// Replies that are wrong in themselves: damaged payloads, garbled or unexpected replies.
    pub problems: Vec<String>,
}

impl CycleEvents {
    /// Adds another worker's events.
    pub fn merge(&mut self, other: CycleEvents) {
        self.sets.extend(other.sets);
        self.taken.extend(other.taken);
        self.plain_in_doubt += other.plain_in_doubt;
        self.problems.extend(other.problems);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Sent; no reply arrived before the kill.
    SetInDoubt,
    /// Must be in the queue: acknowledged (or seen there after a restart), not confirmed.
    Queued,
    /// Delivered to a reliable reader whose close was in flight at the kill.
    CloseInDoubt,
    /// Delivered and confirmed: must never come back.
    Confirmed,
    /// Missing after a restart, excused by a plain get whose reply the kill cut off.
    TakenInDoubt,
    /// Sent, never acknowledged, and absent after the restart: it was never stored.
    NeverStored,
    /// Answered with an error instead of `STORED`.
    Refused,
}

/// The torture's figures, cumulative over all cycles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub sets_sent: u64,
    pub sets_acked: u64,
    /// Sets whose reply the kill cut off.
    pub sets_in_doubt: u64,
    /// ... of which the restarted server held the item (or a consumer received it).
    pub sets_in_doubt_kept: u64,
    /// ... of which the item was gone after the restart.
    pub sets_in_doubt_dropped: u64,
    pub sets_refused: u64,
    /// Items received by plain gets (each one a confirmed delivery).
    pub delivered_plain: u64,
    /// Reliable reads whose close was acknowledged.
    pub delivered_reliable: u64,
    /// Plain gets whose reply the kill cut off.
    pub plain_gets_in_doubt: u64,
    /// Acknowledged items missing after a restart and excused by those gets.
    pub taken_by_gets_in_doubt: u64,
    /// Reliable reads whose close was in flight at the kill.
    pub closes_in_doubt: u64,
    /// ... of which the item came back (an allowed duplicate).
    pub closes_in_doubt_returned: u64,
    /// Reliable reads given back with `/abort` or by closing the connection.
    pub aborted: u64,
    /// Reliable reads open when the server died (each must come back).
    pub held_at_kill: u64,
    /// Items taken by the final drain.
    pub drained_at_end: u64,
    pub violations: u64,
}

/// How many violation messages are kept for the report.
const KEPT_VIOLATIONS: usize = 20;

/// The state of every item sent, the items that must or may still be queued, and what went wrong.
#[derive(Debug)]
pub struct Ledger {
    /// `states[producer][seq]`.
    states: Vec<Vec<State>>,
    /// Items in a state the next restart decides or checks: queued, or in doubt.
    live: HashSet<Id>,
    /// Plain gets in doubt since the last queue check: the missing items they may excuse.
    excusable: u64,
    pub counts: Counts,
    violations: Vec<String>,
}

impl Ledger {
    pub fn new(producers: u32) -> Self {
        Self {
            states: vec![Vec::new(); producers as usize],
            live: HashSet::new(),
            excusable: 0,
            counts: Counts::default(),
            violations: Vec::new(),
        }
    }

    /// The sequence number `producer` sends next.
    pub fn next_seq(&self, producer: u32) -> u64 {
        self.states[producer as usize].len() as u64
    }

    /// Items that must be queued now (acknowledged or seen queued, not confirmed).
    pub fn queued(&self) -> usize {
        self.live.len()
    }

    /// The first violations found (at most [`KEPT_VIOLATIONS`]).
    pub fn first_violations(&self) -> &[String] {
        &self.violations
    }

    /// Records what a cycle's workers saw, before the restarted server is inspected.
    pub fn apply(&mut self, cycle: u32, events: CycleEvents) {
        for problem in events.problems {
            self.violation(format!("cycle {cycle}: {problem}"));
        }
        for (producer, first, outcomes) in events.sets {
            self.record_sets(producer, first, &outcomes);
        }
        self.counts.plain_gets_in_doubt += events.plain_in_doubt;
        self.excusable += events.plain_in_doubt;
        let mut by_item: HashMap<Id, Vec<Taken>> = HashMap::new();
        for (id, taken) in events.taken {
            by_item.entry(id).or_default().push(taken);
        }
        for (id, takes) in by_item {
            self.record_deliveries(cycle, id, &takes);
        }
    }

    fn record_sets(&mut self, producer: u32, first: u64, outcomes: &[SetOutcome]) {
        let states = &mut self.states[producer as usize];
        assert_eq!(
            states.len() as u64,
            first,
            "producer {producer} resumed at the wrong sequence number"
        );
        for (offset, outcome) in outcomes.iter().enumerate() {
            let id = (producer, first + offset as u64);
            self.counts.sets_sent += 1;
            let state = match outcome {
                SetOutcome::Acked => {
                    self.counts.sets_acked += 1;
                    State::Queued
                }
                SetOutcome::InDoubt => {
                    self.counts.sets_in_doubt += 1;
                    State::SetInDoubt
                }
                SetOutcome::Refused => {
                    self.counts.sets_refused += 1;
                    State::Refused
                }
            };
            states.push(state);
            if state != State::Refused {
                self.live.insert(id);
            }
        }
    }

    /// One item's deliveries in one cycle. Deliveries within a cycle are not ordered across
    /// workers, but the server may hand an item out again only after it was given back, so at
    /// most one of them may end in anything but [`Taken::Aborted`].
    fn record_deliveries(&mut self, cycle: u32, id: Id, takes: &[Taken]) {
        let before = self.state(id);
        match before {
            Some(State::Queued) => {}
            Some(State::SetInDoubt) => {
                // A consumer received it, so the server stored it.
                self.counts.sets_in_doubt_kept += 1;
            }
            other => {
                self.violation(format!(
                    "cycle {cycle}: item {id:?} was delivered, but it was {}",
                    describe(other)
                ));
                return;
            }
        }
        for take in takes {
            let counter = match take {
                Taken::Plain => &mut self.counts.delivered_plain,
                Taken::Closed => &mut self.counts.delivered_reliable,
                Taken::CloseInDoubt => &mut self.counts.closes_in_doubt,
                Taken::Aborted => &mut self.counts.aborted,
                Taken::HeldAtKill => &mut self.counts.held_at_kill,
            };
            *counter += 1;
        }
        let holding: Vec<Taken> = takes
            .iter()
            .copied()
            .filter(|take| *take != Taken::Aborted)
            .collect();
        if holding.len() > 1 {
            self.violation(format!(
                "cycle {cycle}: item {id:?} was delivered {} times without being given back \
                 in between ({holding:?})",
                holding.len()
            ));
        }
        let after = match holding.first() {
            Some(Taken::Plain | Taken::Closed) => State::Confirmed,
            Some(Taken::CloseInDoubt) => State::CloseInDoubt,
            _ => State::Queued,
        };
        self.set_state(id, after);
    }

    /// Compares the restarted server's whole queue (`queued`, as read after `cycle`) with the
    /// ledger, and settles every in-doubt item by what is there.
    pub fn check_queue(&mut self, cycle: u32, queued: &[Id]) {
        let excusable = std::mem::take(&mut self.excusable);
        let mut seen = HashSet::with_capacity(queued.len());
        for &id in queued {
            if !seen.insert(id) {
                self.violation(format!("after cycle {cycle}: item {id:?} is queued twice"));
                continue;
            }
            match self.state(id) {
                Some(State::Queued) => {}
                Some(State::SetInDoubt) => {
                    self.counts.sets_in_doubt_kept += 1;
                    self.set_state(id, State::Queued);
                }
                Some(State::CloseInDoubt) => {
                    self.counts.closes_in_doubt_returned += 1;
                    self.set_state(id, State::Queued);
                }
                other => self.violation(format!(
                    "after cycle {cycle}: item {id:?} is queued, but it was {}",
                    describe(other)
                )),
            }
        }
        let mut missing: Vec<Id> = Vec::new();
        let absent: Vec<Id> = self
            .live
            .iter()
            .copied()
            .filter(|id| !seen.contains(id))
            .collect();
        for id in absent {
            match self.state(id) {
                Some(State::SetInDoubt) => {
                    self.counts.sets_in_doubt_dropped += 1;
                    self.set_state(id, State::NeverStored);
                }
                Some(State::CloseInDoubt) => self.set_state(id, State::Confirmed),
                _ => missing.push(id),
            }
        }
        let excused = (missing.len() as u64).min(excusable);
        self.counts.taken_by_gets_in_doubt += excused;
        if missing.len() as u64 > excusable {
            missing.sort_unstable();
            let shown: Vec<Id> = missing.iter().copied().take(5).collect();
            self.violations(
                missing.len() as u64 - excusable,
                format!(
                "after cycle {cycle}: {} acknowledged item(s) lost: missing {}, of which at most \
                 {excusable} are excused by plain gets in doubt; first missing: {shown:?}",
                    missing.len() as u64 - excusable,
                    missing.len()
                ),
            );
        }
        for id in missing {
            self.set_state(id, State::TakenInDoubt);
        }
    }

    /// Checks a final drain of the queue (no kill during it): exactly the queued items, each once.
    pub fn check_drain(&mut self, drained: &[Id]) {
        let mut seen = HashSet::with_capacity(drained.len());
        for &id in drained {
            if !seen.insert(id) {
                self.violation(format!("final drain: item {id:?} delivered twice"));
                continue;
            }
            if self.state(id) != Some(State::Queued) {
                self.violation(format!(
                    "final drain: item {id:?} delivered, but it was {}",
                    describe(self.state(id))
                ));
                continue;
            }
            self.counts.drained_at_end += 1;
            self.set_state(id, State::Confirmed);
        }
        let mut left: Vec<Id> = self.live.iter().copied().collect();
        if !left.is_empty() {
            left.sort_unstable();
            let shown: Vec<Id> = left.iter().copied().take(5).collect();
            self.violation(format!(
                "final drain: {} queued item(s) never delivered; first: {shown:?}",
                left.len()
            ));
        }
    }

    /// Records a violation found outside the ledger (a server that would not stop cleanly).
    pub fn violation(&mut self, message: String) {
        self.violations(1, message);
    }

    /// Records `count` violations described by one message.
    fn violations(&mut self, count: u64, message: String) {
        self.counts.violations += count;
        if self.violations.len() < KEPT_VIOLATIONS {
            self.violations.push(message);
        }
    }

    fn state(&self, (producer, seq): Id) -> Option<State> {
        self.states
            .get(producer as usize)?
            .get(usize::try_from(seq).ok()?)
            .copied()
    }

    fn set_state(&mut self, id: Id, state: State) {
        self.states[id.0 as usize][id.1 as usize] = state;
        if matches!(
            state,
            State::Queued | State::SetInDoubt | State::CloseInDoubt
        ) {
            self.live.insert(id);
        } else {
            self.live.remove(&id);
        }
    }
}

fn describe(state: Option<State>) -> String {
    match state {
        None => "never sent".to_owned(),
        Some(State::Confirmed) => "already delivered and confirmed".to_owned(),
        Some(State::TakenInDoubt) => {
            "missing after an earlier restart (taken by a get in doubt)".to_owned()
        }
        Some(State::NeverStored) => "an unacknowledged set absent after a restart".to_owned(),
        Some(State::Refused) => "refused by the server".to_owned(),
        Some(other) => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(producer: u32, first: u64, outcomes: &[SetOutcome]) -> CycleEvents {
        CycleEvents {
            sets: vec![(producer, first, outcomes.to_vec())],
            ..CycleEvents::default()
        }
    }

    fn ledger_with(outcomes: &[SetOutcome]) -> Ledger {
        let mut ledger = Ledger::new(1);
        ledger.apply(0, sets(0, 0, outcomes));
        ledger
    }

    use SetOutcome::{Acked, InDoubt};

    #[test]
    fn acknowledged_items_must_stay_queued() {
        let mut ledger = ledger_with(&[Acked, Acked, Acked]);
        ledger.check_queue(0, &[(0, 0), (0, 2)]);
        assert_eq!(ledger.counts.violations, 1);
        assert!(
            ledger.first_violations()[0].contains("lost"),
            "{:?}",
            ledger.first_violations()
        );
    }

    #[test]
    fn a_get_in_doubt_excuses_exactly_one_missing_item_in_its_cycle() {
        let mut ledger = ledger_with(&[Acked, Acked, Acked]);
        ledger.apply(
            1,
            CycleEvents {
                plain_in_doubt: 1,
                ..CycleEvents::default()
            },
        );
        ledger.check_queue(1, &[(0, 0), (0, 2)]);
        assert_eq!(ledger.counts.violations, 0);
        assert_eq!(ledger.counts.taken_by_gets_in_doubt, 1);
        // The excuse is used up: the next cycle's loss is a violation, and the excused item
        // must not come back.
        ledger.check_queue(2, &[(0, 0), (0, 1)]);
        assert_eq!(
            ledger.counts.violations,
            2,
            "{:?}",
            ledger.first_violations()
        );
    }

    #[test]
    fn confirmed_deliveries_never_come_back() {
        let mut ledger = ledger_with(&[Acked, Acked]);
        ledger.apply(
            1,
            CycleEvents {
                taken: vec![((0, 0), Taken::Plain), ((0, 1), Taken::Closed)],
                ..CycleEvents::default()
            },
        );
        ledger.check_queue(1, &[(0, 1)]);
        assert_eq!(ledger.counts.violations, 1);
        assert!(ledger.first_violations()[0].contains("(0, 1) is queued"));
    }

    #[test]
    fn closes_and_sets_in_doubt_may_go_either_way() {
        let mut ledger = ledger_with(&[Acked, Acked, InDoubt, InDoubt]);
        ledger.apply(
            1,
            CycleEvents {
                taken: vec![((0, 0), Taken::CloseInDoubt), ((0, 1), Taken::CloseInDoubt)],
                ..CycleEvents::default()
            },
        );
        ledger.check_queue(1, &[(0, 0), (0, 2)]);
        assert_eq!(
            ledger.counts.violations,
            0,
            "{:?}",
            ledger.first_violations()
        );
        assert_eq!(ledger.counts.closes_in_doubt_returned, 1);
        assert_eq!(ledger.counts.sets_in_doubt_kept, 1);
        assert_eq!(ledger.counts.sets_in_doubt_dropped, 1);
        // Settled: (0, 0) and (0, 2) must now stay; (0, 1) and (0, 3) must not return.
        ledger.check_queue(2, &[(0, 0), (0, 2), (0, 3)]);
        assert_eq!(ledger.counts.violations, 1);
        ledger.check_drain(&[(0, 0), (0, 2)]);
        assert_eq!(ledger.counts.violations, 1);
        assert_eq!(ledger.counts.drained_at_end, 2);
    }

    #[test]
    fn reads_held_or_aborted_at_the_kill_must_come_back() {
        let mut ledger = ledger_with(&[Acked, Acked]);
        ledger.apply(
            1,
            CycleEvents {
                taken: vec![((0, 0), Taken::HeldAtKill), ((0, 1), Taken::Aborted)],
                ..CycleEvents::default()
            },
        );
        ledger.check_queue(1, &[(0, 1)]);
        assert_eq!(ledger.counts.violations, 1);
    }

    #[test]
    fn redelivery_needs_an_abort_in_between() {
        let mut ledger = ledger_with(&[Acked, Acked]);
        ledger.apply(
            1,
            CycleEvents {
                taken: vec![
                    ((0, 0), Taken::Aborted),
                    ((0, 0), Taken::Plain),
                    ((0, 1), Taken::Plain),
                    ((0, 1), Taken::HeldAtKill),
                ],
                ..CycleEvents::default()
            },
        );
        assert_eq!(
            ledger.counts.violations,
            1,
            "{:?}",
            ledger.first_violations()
        );
        assert!(ledger.first_violations()[0].contains("(0, 1)"));
    }

    #[test]
    fn unknown_or_repeated_items_are_violations() {
        let mut ledger = ledger_with(&[Acked]);
        ledger.check_queue(0, &[(0, 0), (0, 0), (0, 7), (3, 0)]);
        assert_eq!(ledger.counts.violations, 3);
        ledger.check_drain(&[(0, 0), (0, 0)]);
        assert_eq!(ledger.counts.violations, 4);
        assert_eq!(ledger.queued(), 0);
    }
}
