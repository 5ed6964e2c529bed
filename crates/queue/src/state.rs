//! The state of one queue: queued items (see [`Backlog`]) and open reads. The same
//! primitives serve live operations and journal replay, so both always agree.

use std::collections::HashMap;

use lanner_journal::Record;
use tracing::warn;

use crate::backlog::Backlog;
use crate::item::Item;

/// An item handed out by a reliable read and not yet confirmed or aborted.
#[derive(Debug, Clone)]
struct OpenRead {
    item: Item,
    /// Order in which reads were opened, so recovery can put them back in their original order
    /// even after the xid counter wrapped.
    opened: u64,
    /// When the read goes back to the queue unless confirmed (epoch ms), if it has a timeout.
    deadline_ms: Option<i64>,
}

/// Counters reported by `stats` that are not derived from the current contents.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub total_items: u64,
    /// Items readers removed for good: plain gets and confirmed open reads.
    pub dequeued: u64,
    pub expired_items: u64,
    pub discarded: u64,
    pub transactions: u64,
    pub canceled_transactions: u64,
    pub total_flushes: u64,
}

/// Items and open reads of one queue.
#[derive(Debug, Default)]
pub struct QueueState {
    items: Backlog,
    open: HashMap<u32, OpenRead>,
    last_xid: u32,
    opened_count: u64,
    bytes: u64,
    /// Journal bytes of the adds of the queued items (what a rewrite would take for them).
    items_journal_bytes: u64,
    /// Journal bytes a rewrite would take for the open reads (add + remove-tentative each).
    open_journal_bytes: u64,
    /// How long the last item a reader took had waited in the queue (the `age` stat).
    age_ms: u64,
    pub counters: Counters,
}

impl QueueState {
    /// An empty state whose items live in `items`.
    pub fn new(items: Backlog) -> Self {
        Self {
            items,
            ..Self::default()
        }
    }

    /// Ends the journal replay into a state made with [`Backlog::recovering`].
    pub fn finish_recovery(&mut self) {
        self.items.finish_recovery();
    }

    /// Number of queued items (open reads excluded).
    pub fn len(&self) -> usize {
        self.items.len() as usize
    }

    /// Payload bytes of the queued items.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Number of open reads.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// True when nothing is queued and nothing is open: the journal's history can be dropped.
    pub fn is_drained(&self) -> bool {
        self.items.len() == 0 && self.open.is_empty()
    }

    /// Journal bytes a rewrite of the live state would take.
    pub fn live_journal_bytes(&self) -> u64 {
        self.items_journal_bytes + self.open_journal_bytes
    }

    /// Items and payload bytes held in memory (the rest is spilled to disk).
    pub fn in_memory(&self) -> (u64, u64) {
        self.items.in_memory()
    }

    /// True while some queued items live only on disk; the live state then cannot be
    /// snapshotted from memory.
    pub fn is_spilling(&self) -> bool {
        self.items.is_spilling()
    }

    /// Removes the spill file of a deleted queue.
    pub fn discard(&mut self) {
        self.items.discard();
    }

    /// How long the last item a reader took had waited; 0 while the queue holds no bytes
    /// (Kestrel's `age` stat).
    pub fn age_ms(&self) -> u64 {
        if self.bytes > 0 { self.age_ms } else { 0 }
    }

    /// Records that a reader takes the head item now (for the `age` stat).
    pub fn note_head_taken(&mut self, now_ms: i64) {
        if let Some(head) = self.items.front() {
            self.age_ms = u64::try_from(now_ms - head.add_time_ms).unwrap_or(0);
        }
    }

    /// The head item, if any.
    pub fn head(&self) -> Option<&Item> {
        self.items.front()
    }

    /// Appends an item at the tail.
    pub fn push_back(&mut self, item: Item) {
        self.account_added(&item);
        self.items.push_back(item);
    }

    /// Removes the head item.
    pub fn pop_front(&mut self) -> Option<Item> {
        let item = self.items.pop_front()?;
        self.account_removed(&item);
        Some(item)
    }

    /// Removes every queued item (open reads stay), returning how many there were.
    pub fn clear(&mut self) -> usize {
        self.bytes = 0;
        self.items_journal_bytes = 0;
        self.items.clear() as usize
    }

    /// The next free transaction id: positive, skipping ids still open; wraps like Kestrel's.
    pub fn next_xid(&mut self) -> u32 {
        loop {
            self.last_xid = self
                .last_xid
                .checked_add(1)
                .filter(|&x| x <= i32::MAX as u32)
                .unwrap_or(1);
            if !self.open.contains_key(&self.last_xid) {
                return self.last_xid;
            }
        }
    }

    /// Moves the head item into open read `xid`.
    pub fn open_head(&mut self, xid: u32, deadline_ms: Option<i64>) -> Option<&Item> {
        let item = self.pop_front()?;
        self.open_journal_bytes +=
            Record::RemoveTentative { xid }.encoded_len() + item.journal_len();
        self.opened_count += 1;
        self.last_xid = xid;
        let read = OpenRead {
            item,
            opened: self.opened_count,
            deadline_ms,
        };
        Some(&self.open.entry(xid).insert_entry(read).into_mut().item)
    }

    /// The oldest open read with a deadline, if that deadline passed before `now_ms`.
    pub fn oldest_timed_out_read(&self, now_ms: i64) -> Option<u32> {
        let (xid, read) = self
            .open
            .iter()
            .filter(|(_, read)| read.deadline_ms.is_some())
            .min_by_key(|(_, read)| read.opened)?;
        read.deadline_ms
            .is_some_and(|deadline| deadline < now_ms)
            .then_some(*xid)
    }

    /// Puts open read `xid` back at the head. Returns false when no such read is open.
    pub fn unremove(&mut self, xid: u32) -> bool {
        let Some(read) = self.close_open(xid) else {
            return false;
        };
        self.account_added(&read.item);
        self.items.push_front(read.item);
        true
    }

    /// Drops open read `xid` for good. Returns false when no such read is open.
    pub fn confirm(&mut self, xid: u32) -> bool {
        self.close_open(xid).is_some()
    }

    /// Ids of the open reads, newest first (the order in which aborting them one by one with
    /// push-to-head restores their original order).
    pub fn open_xids_newest_first(&self) -> Vec<u32> {
        let mut reads: Vec<(u64, u32)> = self
            .open
            .iter()
            .map(|(&xid, read)| (read.opened, xid))
            .collect();
        reads.sort_unstable_by(|a, b| b.cmp(a));
        reads.into_iter().map(|(_, xid)| xid).collect()
    }

    /// The records that rebuild the live state: each open read as add + remove-tentative (oldest
    /// first), then an add per queued item. `None` while items are spilled to disk: the
    /// snapshot is built from memory only.
    pub fn snapshot(&self) -> Option<Vec<Record>> {
        if self.is_spilling() {
            return None;
        }
        let mut open: Vec<(&u32, &OpenRead)> = self.open.iter().collect();
        open.sort_unstable_by_key(|(_, read)| read.opened);
        let mut records = Vec::with_capacity(open.len() * 2 + self.len());
        for (&xid, read) in open {
            records.push(read.item.add_record());
            records.push(Record::RemoveTentative { xid });
        }
        records.extend(self.items.iter_memory().map(Item::add_record));
        Some(records)
    }

    /// Applies one replayed journal record.
    pub fn apply(&mut self, record: Record) {
        let applied = match record {
            Record::Add {
                add_time_ms,
                expiry_ms,
                data,
            } => {
                self.push_back(Item {
                    data,
                    add_time_ms,
                    expiry_ms,
                });
                true
            }
            Record::Remove => self.pop_front().is_some(),
            Record::RemoveTentative { xid } => self.open_head(xid, None).is_some(),
            Record::Unremove { xid } => self.unremove(xid),
            Record::ConfirmRemove { xid } => self.confirm(xid),
        };
        if !applied {
            warn!("journal record does not match the queue's state; skipped");
        }
    }

    fn close_open(&mut self, xid: u32) -> Option<OpenRead> {
        let read = self.open.remove(&xid)?;
        self.open_journal_bytes -=
            Record::RemoveTentative { xid }.encoded_len() + read.item.journal_len();
        Some(read)
    }

    fn account_added(&mut self, item: &Item) {
        self.bytes += item.data.len() as u64;
        self.items_journal_bytes += item.journal_len();
    }

    fn account_removed(&mut self, item: &Item) {
        self.bytes -= item.data.len() as u64;
        self.items_journal_bytes -= item.journal_len();
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn item(text: &'static str) -> Item {
        Item {
            data: Bytes::from_static(text.as_bytes()),
            add_time_ms: 1,
            expiry_ms: 0,
        }
    }

    fn contents(state: &QueueState) -> Vec<Bytes> {
        state
            .items
            .iter_memory()
            .map(|item| item.data.clone())
            .collect()
    }

    #[test]
    fn recovering_open_reads_restores_original_order() {
        let mut state = QueueState::default();
        for text in ["one", "two", "three", "four", "five"] {
            state.push_back(item(text));
        }
        for _ in 0..4 {
            let xid = state.next_xid();
            state.open_head(xid, None);
        }
        state.confirm(2);
        state.confirm(4);
        for xid in state.open_xids_newest_first() {
            state.unremove(xid);
        }
        assert_eq!(contents(&state), ["one", "three", "five"]);
    }

    #[test]
    fn snapshot_replays_to_the_same_state() {
        let mut state = QueueState::default();
        for text in ["a", "b", "c"] {
            state.push_back(item(text));
        }
        let xid = state.next_xid();
        state.open_head(xid, None);
        let mut replayed = QueueState::default();
        for record in state.snapshot().expect("nothing spilled") {
            replayed.apply(record);
        }
        assert_eq!(contents(&replayed), contents(&state));
        assert_eq!(replayed.open_count(), 1);
        assert_eq!(replayed.live_journal_bytes(), state.live_journal_bytes());
        assert!(replayed.unremove(xid));
        assert_eq!(contents(&replayed), ["a", "b", "c"]);
    }

    #[test]
    fn xids_skip_zero_and_open_ids_when_wrapping() {
        let mut state = QueueState::default();
        state.push_back(item("x"));
        state.last_xid = i32::MAX as u32 - 1;
        let xid = state.next_xid();
        state.open_head(xid, None);
        assert_eq!(xid, i32::MAX as u32);
        assert_eq!(state.next_xid(), 1);
        state.last_xid = i32::MAX as u32 - 1;
        assert_eq!(state.next_xid(), 1, "open xid is skipped");
    }

    #[test]
    fn accounting_returns_to_zero_when_drained() {
        let mut state = QueueState::default();
        state.push_back(item("hello"));
        state.push_back(item("world"));
        let xid = state.next_xid();
        state.open_head(xid, None);
        state.unremove(xid);
        state.clear();
        assert!(state.is_drained());
        assert_eq!(state.bytes(), 0);
        assert_eq!(state.live_journal_bytes(), 0);
    }
}
