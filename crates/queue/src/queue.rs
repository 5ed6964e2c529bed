//! One named queue: its in-memory state, its journal, and the waiters of blocking reads.
//!
//! Every mutation happens under the queue's mutex together with the journal `append` that
//! records it (a memcpy, no syscall), so the journal's order is the state's order. Writing and
//! fsyncing happen later, in [`Queue::commit`], with the mutex released: no request waits on
//! another request's I/O just to read or change the queue.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use lanner_journal::{Journal, JournalOptions, JournalStats, Record, Replay, Seq};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::error::QueueError;
use crate::item::{Item, expiry_from_exptime};
use crate::state::{Counters, QueueState};

/// When a journal is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Before every reply (group commit: concurrent writers share one fsync).
    Always,
    /// In the background, at most this long after a write.
    Interval(Duration),
    /// Never by lanner; the operating system writes back when it likes.
    Never,
}

/// Settings of one queue.
#[derive(Debug, Clone)]
pub struct QueueOptions {
    pub sync: SyncPolicy,
    pub journal: JournalOptions,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            sync: SyncPolicy::Interval(Duration::from_millis(100)),
            journal: JournalOptions::default(),
        }
    }
}

/// How a read takes the head item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeMode {
    /// Remove it for good.
    Remove,
    /// Remove it into an open read that must be confirmed or aborted.
    Open,
    /// Return it and leave it queued.
    Peek,
}

/// An item handed to a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub data: Bytes,
    /// The open read's id when taken with [`TakeMode::Open`].
    pub xid: Option<u32>,
}

/// Result of a read: the item, if any, and the journal position to commit before replying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakeOutcome {
    pub item: Option<Taken>,
    pub seq: Seq,
}

/// Compaction rewrites the journal once it exceeds this multiple of the live data plus one
/// segment (Part 0 #10: bounded disk).
const COMPACTION_FACTOR: u64 = 2;

/// A drained queue rewrites its journal to an empty snapshot once it holds more than this, so
/// a queue that empties releases its disk without paying a file rewrite on every tiny drain.
const DRAINED_REWRITE_THRESHOLD: u64 = 1 << 20;

/// One queue.
pub struct Queue {
    name: String,
    options: QueueOptions,
    clock: Arc<dyn Clock>,
    state: Mutex<QueueState>,
    journal: Journal,
    item_arrived: Notify,
    waiters: AtomicUsize,
    deleted: AtomicBool,
}

impl Queue {
    /// Opens the queue `name` in `dir`, replaying its journal. Reads left open by the previous
    /// run go back to the head of the queue in their original order (spec d.4).
    pub(crate) fn open(
        dir: &Path,
        name: &str,
        options: QueueOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, Replay), QueueError> {
        let (journal, mut replay) = Journal::open(dir, name, options.journal.clone())?;
        let mut state = QueueState::default();
        for record in std::mem::take(&mut replay.records) {
            state.apply(record);
        }
        let queue = Self {
            name: name.to_owned(),
            options,
            clock,
            state: Mutex::new(state),
            journal,
            item_arrived: Notify::new(),
            waiters: AtomicUsize::new(0),
            deleted: AtomicBool::new(false),
        };
        queue.abort_reads_left_open()?;
        Ok((queue, replay))
    }

    fn abort_reads_left_open(&self) -> Result<(), QueueError> {
        let seq = {
            let mut state = self.lock();
            let xids = state.open_xids_newest_first();
            xids.into_iter()
                .filter_map(|xid| self.unremove(&mut state, xid))
                .last()
                .unwrap_or(0)
        };
        self.commit(seq)
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The queue's settings.
    pub fn options(&self) -> &QueueOptions {
        &self.options
    }

    /// True once the queue has been deleted; every later operation is a no-op.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// Adds an item at the tail with a memcache `exptime`, and wakes the oldest waiter.
    pub fn put(&self, data: Bytes, exptime: i64) -> Result<Seq, QueueError> {
        if self.journal.is_poisoned() {
            return Err(QueueError::Poisoned {
                queue: self.name.clone(),
            });
        }
        let now = self.clock.now_ms();
        let item = Item {
            data,
            add_time_ms: now,
            expiry_ms: expiry_from_exptime(exptime, now),
        };
        let seq = {
            let mut state = self.lock();
            if self.is_deleted() {
                return Err(QueueError::Deleted);
            }
            self.expire_head(&mut state, now);
            let seq = self.append(&item.add_record());
            state.push_back(item);
            state.counters.total_items += 1;
            self.compact_if_needed(&mut state);
            seq
        };
        self.item_arrived.notify_one();
        Ok(seq)
    }

    /// Takes the head item (after dropping expired ones), if any, without waiting.
    pub fn take(&self, mode: TakeMode) -> TakeOutcome {
        let mut state = self.lock();
        if self.is_deleted() {
            return TakeOutcome { item: None, seq: 0 };
        }
        let now = self.clock.now_ms();
        let mut seq = self.expire_head(&mut state, now);
        if mode != TakeMode::Peek {
            state.note_head_taken(now);
        }
        let item = match mode {
            TakeMode::Peek => state.head().map(|item| Taken {
                data: item.data.clone(),
                xid: None,
            }),
            TakeMode::Remove => state.pop_front().map(|item| {
                seq = self.append(&Record::Remove);
                Taken {
                    data: item.data,
                    xid: None,
                }
            }),
            TakeMode::Open => self.open_head(&mut state).map(|(taken, open_seq)| {
                seq = open_seq;
                taken
            }),
        };
        if item.is_some() && mode != TakeMode::Peek {
            self.compact_if_needed(&mut state);
        }
        TakeOutcome { item, seq }
    }

    /// Takes the head item, waiting for one to arrive. Waiters are woken oldest first. Resolves
    /// with no item only when the queue is deleted. Cancel-safe: dropping the future (a timeout,
    /// a disconnect) never takes an item, and a wake-up it had received passes to the next waiter.
    pub async fn take_blocking(&self, mode: TakeMode) -> TakeOutcome {
        let _waiting = WaiterGuard::enter(&self.waiters);
        loop {
            let arrived = self.item_arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let outcome = self.take(mode);
            if outcome.item.is_some() || self.is_deleted() {
                if mode == TakeMode::Peek {
                    // A peek leaves the item queued: pass the wake-up on to a reader that removes.
                    self.item_arrived.notify_one();
                }
                return outcome;
            }
            arrived.await;
        }
    }

    /// Confirms open read `xid`: the item is gone for good. A no-op (seq 0) when it is not open.
    pub fn confirm(&self, xid: u32) -> Seq {
        let mut state = self.lock();
        if self.is_deleted() || !state.confirm(xid) {
            return 0;
        }
        let seq = self.append(&Record::ConfirmRemove { xid });
        self.compact_if_needed(&mut state);
        seq
    }

    /// Aborts open reads, given oldest first: their items go back to the head in that order.
    pub fn abort(&self, xids_oldest_first: &[u32]) -> Seq {
        let seq = {
            let mut state = self.lock();
            if self.is_deleted() {
                return 0;
            }
            let mut seq = 0;
            for &xid in xids_oldest_first.iter().rev() {
                if let Some(unremove_seq) = self.unremove(&mut state, xid) {
                    state.counters.canceled_transactions += 1;
                    seq = unremove_seq;
                }
            }
            seq
        };
        for _ in xids_oldest_first {
            self.item_arrived.notify_one();
        }
        seq
    }

    /// Removes every queued item; open reads survive (spec g.9).
    pub fn flush(&self) -> Seq {
        let mut state = self.lock();
        if self.is_deleted() {
            return 0;
        }
        let removed = state.clear();
        let seq = (0..removed).fold(0, |_, _| self.append(&Record::Remove));
        state.counters.total_flushes += 1;
        self.compact_if_needed(&mut state);
        seq
    }

    /// Drops the expired items at the head; returns how many, and the journal position to commit.
    pub fn flush_expired(&self) -> (u64, Seq) {
        let mut state = self.lock();
        if self.is_deleted() {
            return (0, 0);
        }
        let before = state.counters.expired_items;
        let seq = self.expire_head(&mut state, self.clock.now_ms());
        (state.counters.expired_items - before, seq)
    }

    /// Makes the records up to `seq` as durable as the queue's sync policy promises before a
    /// reply: written to the operating system always, and fsynced too under `sync = always`.
    /// Blocks on I/O; under `always` it may wait for an fsync (see [`Queue::commit_waits_for_fsync`]).
    pub fn commit(&self, seq: Seq) -> Result<(), QueueError> {
        if seq == 0 {
            return Ok(());
        }
        match self.options.sync {
            SyncPolicy::Always => self.journal.sync_through(seq)?,
            SyncPolicy::Interval(_) | SyncPolicy::Never => self.journal.write_through(seq)?,
        }
        Ok(())
    }

    /// True when [`Queue::commit`] waits for an fsync, so callers on an async runtime should run
    /// it on a blocking thread.
    pub fn commit_waits_for_fsync(&self) -> bool {
        self.options.sync == SyncPolicy::Always
    }

    /// Hands everything appended so far to the operating system, without an fsync.
    pub fn write_pending(&self) -> Result<(), QueueError> {
        Ok(self.journal.write_through(Seq::MAX)?)
    }

    /// Writes and fsyncs everything appended so far (periodic sync, shutdown).
    pub fn sync(&self) -> Result<(), QueueError> {
        Ok(self.journal.sync_all()?)
    }

    /// Marks the queue deleted, wakes its waiters, and removes its journal files.
    pub(crate) fn delete(&self) -> Result<(), QueueError> {
        {
            let _guarded = self.lock();
            self.deleted.store(true, Ordering::Release);
        }
        self.item_arrived.notify_waiters();
        Ok(self.journal.delete()?)
    }

    /// A consistent snapshot of the queue's figures.
    pub fn stats(&self) -> QueueStats {
        let state = self.lock();
        let journal = self.journal.stats();
        QueueStats {
            items: state.len() as u64,
            bytes: state.bytes(),
            open_transactions: state.open_count() as u64,
            age_ms: state.age_ms(),
            waiters: self.waiters.load(Ordering::Relaxed) as u64,
            counters: state.counters,
            journal,
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic while holding the lock cannot leave the state half-changed in a way that loses
        // acknowledged data (the journal is the truth), so keep serving.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn append(&self, record: &Record) -> Seq {
        self.journal.append(record)
    }

    fn open_head(&self, state: &mut QueueState) -> Option<(Taken, Seq)> {
        state.head()?;
        let xid = state.next_xid();
        let data = state.open_head(xid)?.data.clone();
        state.counters.transactions += 1;
        let seq = self.append(&Record::RemoveTentative { xid });
        Some((
            Taken {
                data,
                xid: Some(xid),
            },
            seq,
        ))
    }

    fn unremove(&self, state: &mut QueueState, xid: u32) -> Option<Seq> {
        state
            .unremove(xid)
            .then(|| self.append(&Record::Unremove { xid }))
    }

    /// Drops expired items at the head, journaling a remove for each (spec f.2).
    fn expire_head(&self, state: &mut QueueState, now_ms: i64) -> Seq {
        let mut seq = 0;
        while state.head().is_some_and(|head| head.is_expired(now_ms)) {
            state.pop_front();
            state.counters.expired_items += 1;
            seq = self.append(&Record::Remove);
        }
        seq
    }

    /// Schedules a journal rewrite when the journal has outgrown the live data (Part 0 #10).
    fn compact_if_needed(&self, state: &mut QueueState) {
        let live = state.live_journal_bytes();
        let segment = self.options.journal.segment_size;
        let journal_bytes = self.journal.stats().total_bytes;
        let drained = state.is_drained() && journal_bytes > DRAINED_REWRITE_THRESHOLD;
        let outgrown = journal_bytes
            > live
                .saturating_mul(COMPACTION_FACTOR)
                .saturating_add(segment);
        if drained || outgrown {
            self.journal.rewrite(state.snapshot());
        }
    }
}

/// Figures of one queue, for `stats`.
#[derive(Debug, Clone, Copy)]
pub struct QueueStats {
    pub items: u64,
    pub bytes: u64,
    pub open_transactions: u64,
    /// Milliseconds since the last removed item was added; 0 when the queue holds no bytes.
    pub age_ms: u64,
    pub waiters: u64,
    pub counters: Counters,
    pub journal: JournalStats,
}

/// Counts a blocking reader as a waiter for as long as it waits, however it stops.
struct WaiterGuard<'a>(&'a AtomicUsize);

impl<'a> WaiterGuard<'a> {
    fn enter(waiters: &'a AtomicUsize) -> Self {
        waiters.fetch_add(1, Ordering::Relaxed);
        Self(waiters)
    }
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
