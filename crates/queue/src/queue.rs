//! One named queue: its in-memory state, its journal, and the waiters of blocking reads.
//!
//! Every mutation happens under the queue's mutex together with the journal `append` that
//! records it (a memcpy, no syscall), so the journal's order is the state's order. Writing and
//! fsyncing happen later, in [`Queue::commit`], with the mutex released: no request waits on
//! another request's I/O just to read or change the queue.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use lanner_journal::{Journal, JournalOptions, JournalStats, Record, Replay, Seq};
use tokio::sync::Notify;

use crate::backlog::Backlog;
use crate::clock::Clock;
use crate::error::QueueError;
use crate::group_commit::GroupCommit;
use crate::item::{Item, expiry_from_exptime};
use crate::limits::QueueLimits;
use crate::state::{Counters, QueueState};
use tracing::warn;

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

/// Settings of one queue. `sync` and `journal` are fixed when the queue opens; `limits` may
/// change while it runs ([`Queue::set_limits`]).
#[derive(Debug, Clone)]
pub struct QueueOptions {
    pub sync: SyncPolicy,
    /// The journal's tunables (its `zero_fill_ahead` is set from the field below).
    pub journal: JournalOptions,
    /// Zeros written ahead of the journal's records under `sync = always` (0: none), so the
    /// fdatasync after every write need not commit a file-size change. Ignored under interval
    /// sync, where the zeros would only double the bytes written.
    pub zero_fill_ahead: u64,
    pub limits: QueueLimits,
    /// The queue that receives expired items (created with this one).
    pub expire_to_queue: Option<String>,
    /// Payload bytes kept in memory; newer items wait in a spill file (read-behind).
    pub max_memory_size: u64,
    /// False for a memory-only queue: nothing is journaled, and a restart starts it empty.
    pub keep_journal: bool,
}

/// Kestrel's default memory budget of a queue.
const DEFAULT_MAX_MEMORY_SIZE: u64 = 128 << 20;

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            sync: SyncPolicy::Interval(Duration::from_millis(100)),
            journal: JournalOptions::default(),
            zero_fill_ahead: DEFAULT_ZERO_FILL_AHEAD,
            limits: QueueLimits::default(),
            expire_to_queue: None,
            max_memory_size: DEFAULT_MAX_MEMORY_SIZE,
            keep_journal: true,
        }
    }
}

/// Whether a put was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// Stored (or, for a fanout-only master, accepted and dropped); commit `Seq` before replying.
    Stored(Seq),
    /// Refused: the queue is full or the item too large (`NOT_STORED`).
    NotStored,
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

/// One queue.
pub struct Queue {
    name: String,
    options: QueueOptions,
    clock: Arc<dyn Clock>,
    /// Epoch ms when the queue was created or loaded (for `max_queue_age`).
    created_ms: i64,
    state: Mutex<Locked>,
    /// Where expired items go (`expire_to_queue`), set once when the queue is registered.
    expire_to: OnceLock<Arc<Queue>>,
    journal: Arc<Journal>,
    /// The fsync thread that writers wait on under `sync = always`.
    group_commit: Option<GroupCommit>,
    item_arrived: Notify,
    waiters: AtomicUsize,
    deleted: AtomicBool,
}

/// Zeros written ahead of a `sync = always` journal's records by default.
const DEFAULT_ZERO_FILL_AHEAD: u64 = 1 << 20;

/// The journal's options for a queue: zero fill ahead only where every write is fsynced.
fn journal_options(options: &QueueOptions) -> JournalOptions {
    let mut journal = options.journal.clone();
    journal.zero_fill_ahead = match options.sync {
        SyncPolicy::Always => options.zero_fill_ahead,
        _ => 0,
    };
    journal
}

impl Queue {
    /// Opens the queue `name` in `dir`, replaying its journal. Reads left open by the previous
    /// run go back to the head of the queue in their original order (spec d.4).
    /// `on_record` is told the on-disk size of each replayed record (recovery progress).
    pub(crate) fn open(
        dir: &Path,
        name: &str,
        options: QueueOptions,
        clock: Arc<dyn Clock>,
        on_record: &mut dyn FnMut(u64),
    ) -> Result<(Self, Replay), QueueError> {
        let spill_path = dir.join(format!("{name}.spill"));
        let mut state = QueueState::new(Backlog::recovering(options.max_memory_size, spill_path));
        let keep_journal = options.keep_journal;
        let (journal, replay) =
            Journal::open_with(dir, name, journal_options(&options), &mut |record| {
                on_record(record.encoded_len());
                if keep_journal {
                    state.apply(record);
                }
            })?;
        state.finish_recovery();
        if !keep_journal {
            // A memory-only queue starts empty and its old journal files are erased (as Kestrel).
            journal.delete()?;
        }
        let journal = Arc::new(journal);
        let group_commit = start_group_commit(&options, &journal, name)?;
        let limits = options.limits.clone();
        let queue = Self {
            name: name.to_owned(),
            options,
            created_ms: clock.now_ms(),
            clock,
            state: Mutex::new(Locked { state, limits }),
            expire_to: OnceLock::new(),
            journal,
            group_commit,
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

    /// Adds an item at the tail with a memcache `exptime`, and wakes the oldest waiter. A full
    /// queue refuses it, or with `discard_old_when_full` drops its oldest items to make room.
    pub fn put(&self, data: Bytes, exptime: i64) -> Result<PutOutcome, QueueError> {
        if self.journal.is_poisoned() {
            return Err(QueueError::Poisoned {
                queue: self.name.clone(),
            });
        }
        if self.journal.has_failed_write() {
            // The disk refused the last write: accept nothing new until it takes the retry.
            self.journal.write_through(Seq::MAX)?;
        }
        let now = self.clock.now_ms();
        let mut state = self.lock();
        if self.is_deleted() {
            return Err(QueueError::Deleted);
        }
        if state.limits.refuses_item(data.len()) {
            return Ok(PutOutcome::NotStored);
        }
        let expired = self.expire_head(&mut state, now);
        if state.limits.fanout_only {
            let seq = expired.seq;
            return Ok(self.finish(state, expired, PutOutcome::Stored(seq)));
        }
        let Some(discard_seq) = self.make_room(&mut state) else {
            return Ok(self.finish(state, expired, PutOutcome::NotStored));
        };
        let item = Item {
            data,
            add_time_ms: now,
            expiry_ms: state
                .limits
                .capped_expiry(expiry_from_exptime(exptime, now), now),
        };
        let seq = self
            .journal
            .append_add(item.add_time_ms, item.expiry_ms, &item.data)
            .max(discard_seq);
        state.push_back(item);
        state.counters.total_items += 1;
        self.compact_if_needed(&mut state);
        let outcome = self.finish(state, expired, PutOutcome::Stored(seq));
        self.item_arrived.notify_one();
        Ok(outcome)
    }

    /// Frees room for one more item: `Some` with the journal position of any discards, or
    /// `None` when the queue is full and may not discard.
    fn make_room(&self, state: &mut Locked) -> Option<Seq> {
        let mut seq = 0;
        while state.limits.is_full(state.len() as u64, state.bytes()) {
            if !state.limits.discard_old_when_full || state.pop_front().is_none() {
                return None;
            }
            state.counters.discarded += 1;
            seq = self.append(&Record::Remove);
        }
        Some(seq)
    }

    /// Releases the lock, then hands expired items to the `expire_to_queue`.
    fn finish<T>(&self, state: MutexGuard<'_, Locked>, expired: Expired, result: T) -> T {
        drop(state);
        self.forward_expired(expired.items);
        result
    }

    /// Takes the head item (after dropping expired ones), if any, without waiting. A remove
    /// first returns the oldest open read whose `open_transaction_timeout` passed, so that read
    /// is the next one delivered (spec b.6).
    pub fn take(&self, mode: TakeMode) -> TakeOutcome {
        let mut state = self.lock();
        if self.is_deleted() {
            return TakeOutcome { item: None, seq: 0 };
        }
        let now = self.clock.now_ms();
        let reclaimed = match mode {
            TakeMode::Peek => 0,
            TakeMode::Remove | TakeMode::Open => self.reclaim_timed_out_read(&mut state, now),
        };
        let expired = self.expire_head(&mut state, now);
        let mut seq = expired.seq.max(reclaimed);
        if mode != TakeMode::Peek {
            state.note_head_taken(now);
        }
        let item = match mode {
            TakeMode::Peek => state.head().map(|item| Taken {
                data: item.data.clone(),
                xid: None,
            }),
            TakeMode::Remove => state.pop_front().map(|item| {
                state.counters.dequeued += 1;
                seq = self.append(&Record::Remove);
                Taken {
                    data: item.data,
                    xid: None,
                }
            }),
            TakeMode::Open => self.open_head(&mut state, now).map(|(taken, open_seq)| {
                seq = open_seq;
                taken
            }),
        };
        if item.is_some() && mode != TakeMode::Peek {
            self.compact_if_needed(&mut state);
        }
        self.finish(state, expired, TakeOutcome { item, seq })
    }

    /// Takes the head item, waiting for one to arrive. Waiters are woken oldest first. Resolves
    /// with no item only when the queue is deleted. Cancel-safe: dropping the future (a timeout,
    /// a disconnect) never takes an item, and a wake-up it had received passes to the next waiter.
    pub async fn take_blocking(&self, mode: TakeMode) -> TakeOutcome {
        let mut waiting = None;
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
            // Counted only once in line for a wake-up: a client that sees the count knows this
            // waiter is served before any that starts waiting later.
            waiting.get_or_insert_with(|| WaiterGuard::enter(&self.waiters));
            arrived.await;
        }
    }

    /// Confirms open read `xid`: the item is gone for good. A no-op (seq 0) when it is not open.
    pub fn confirm(&self, xid: u32) -> Seq {
        let mut state = self.lock();
        if self.is_deleted() || !state.confirm(xid) {
            return 0;
        }
        state.counters.dequeued += 1;
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
        let expired = self.expire_head(&mut state, self.clock.now_ms());
        let result = (expired.count, expired.seq);
        self.finish(state, expired, result)
    }

    /// Background sweep: expires head items and returns open reads past their timeout.
    pub fn sweep(&self) -> Seq {
        let mut state = self.lock();
        if self.is_deleted() {
            return 0;
        }
        let now = self.clock.now_ms();
        let mut reclaimed = 0;
        loop {
            match self.reclaim_timed_out_read(&mut state, now) {
                0 => break,
                seq => reclaimed = seq,
            }
        }
        let expired = self.expire_head(&mut state, now);
        let seq = expired.seq.max(reclaimed);
        self.finish(state, expired, seq)
    }

    /// True when the queue is empty, has `max_queue_age`, and was created longer ago than that.
    pub fn has_outlived_max_age(&self) -> bool {
        let state = self.lock();
        let Some(max_age) = state.limits.max_queue_age else {
            return false;
        };
        let age_ms = self.clock.now_ms() - self.created_ms;
        state.is_drained() && u128::try_from(age_ms).is_ok_and(|age| age > max_age.as_millis())
    }

    /// Applies new limits to the live queue (`reload`).
    pub fn set_limits(&self, limits: QueueLimits) {
        self.lock().limits = limits;
    }

    /// The limits in force.
    pub fn limits(&self) -> QueueLimits {
        self.lock().limits.clone()
    }

    /// Sends this queue's expired items to `target` from now on (`expire_to_queue`).
    pub(crate) fn set_expire_target(&self, target: Arc<Queue>) {
        // Set once, when the queue is registered; a reload does not re-plumb it (as Kestrel).
        let _ = self.expire_to.set(target);
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

    /// [`Queue::commit`] for an async caller: under `sync = always` the wait for the fsync is
    /// asynchronous, and concurrent callers share the fsyncs of one thread (group commit).
    pub async fn commit_async(&self, seq: Seq) -> Result<(), QueueError> {
        let Some(group_commit) = self.group_commit.as_ref().filter(|_| seq != 0) else {
            return self.commit(seq);
        };
        self.journal.write_through(seq)?;
        Ok(group_commit.synced(seq).await?)
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
            let mut state = self.lock();
            self.deleted.store(true, Ordering::Release);
            state.discard();
        }
        self.item_arrived.notify_waiters();
        Ok(self.journal.delete()?)
    }

    /// A consistent snapshot of the queue's figures.
    pub fn stats(&self) -> QueueStats {
        let state = self.lock();
        let journal = self.journal.stats();
        let (mem_items, mem_bytes) = state.in_memory();
        QueueStats {
            items: state.len() as u64,
            bytes: state.bytes(),
            mem_items,
            mem_bytes,
            open_transactions: state.open_count() as u64,
            age_ms: state.age_ms(),
            waiters: self.waiters.load(Ordering::Relaxed) as u64,
            counters: state.counters,
            journal,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Locked> {
        // A panic while holding the lock cannot leave the state half-changed in a way that loses
        // acknowledged data (the journal is the truth), so keep serving.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn append(&self, record: &Record) -> Seq {
        self.journal.append(record)
    }

    fn open_head(&self, state: &mut Locked, now_ms: i64) -> Option<(Taken, Seq)> {
        state.head()?;
        let xid = state.next_xid();
        let deadline = state
            .limits
            .open_read_timeout_ms()
            .map(|timeout| now_ms.saturating_add(timeout));
        let data = state.open_head(xid, deadline)?.data.clone();
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

    /// Drops expired items at the head, at most `max_expire_sweep` of them, journaling a remove
    /// for each (spec f.2). They are kept for the `expire_to_queue` if there is one.
    fn expire_head(&self, state: &mut Locked, now_ms: i64) -> Expired {
        let mut expired = Expired::default();
        let keep = self.expire_to.get().is_some();
        while expired.count < state.limits.expire_sweep()
            && state
                .head()
                .is_some_and(|head| state.limits.has_expired(head, now_ms))
        {
            let Some(item) = state.pop_front() else { break };
            state.counters.expired_items += 1;
            expired.seq = self.append(&Record::Remove);
            expired.count += 1;
            if keep {
                expired.items.push(item);
            }
        }
        expired
    }

    /// Puts expired items into the `expire_to_queue`, without expiry and bypassing its fanout,
    /// and writes them to its journal before the removes that dropped them here are committed,
    /// so a crash cannot lose them in between.
    fn forward_expired(&self, items: Vec<Item>) {
        let Some(target) = self.expire_to.get() else {
            return;
        };
        if items.is_empty() {
            return;
        }
        let mut last = 0;
        for item in items {
            match target.put(item.data, 0) {
                Ok(PutOutcome::Stored(seq)) => last = seq,
                Ok(PutOutcome::NotStored) => {
                    warn!(queue = %self.name, target = %target.name, "expire_to_queue is full; an expired item was dropped");
                }
                Err(error) => {
                    warn!(queue = %self.name, target = %target.name, %error, "cannot move an expired item");
                }
            }
        }
        // As durable as the target promises (an fsync under `sync = always`), before the
        // removes that dropped the items here are committed.
        if let Err(error) = target.commit(last) {
            warn!(queue = %self.name, target = %target.name, %error, "cannot write moved expired items");
        }
    }

    /// Returns the oldest open read to the head if its timeout passed; the journal position of
    /// that abort, or 0.
    fn reclaim_timed_out_read(&self, state: &mut Locked, now_ms: i64) -> Seq {
        let Some(xid) = state.oldest_timed_out_read(now_ms) else {
            return 0;
        };
        let Some(seq) = self.unremove(state, xid) else {
            return 0;
        };
        state.counters.canceled_transactions += 1;
        self.item_arrived.notify_one();
        seq
    }

    /// Schedules a journal rewrite when the journal has outgrown the live data (Part 0 #10).
    fn compact_if_needed(&self, state: &mut Locked) {
        let live = state.live_journal_bytes();
        let segment = self.options.journal.segment_size;
        let journal_bytes = self.journal.stats().total_bytes;
        let oversized = state
            .limits
            .max_journal_size
            .is_some_and(|max| journal_bytes > max);
        let outgrown = journal_bytes
            > live
                .saturating_mul(COMPACTION_FACTOR)
                .saturating_add(segment);
        if outgrown || oversized {
            // While items are spilled to disk the live state is not all in memory; compaction
            // waits until read-behind has caught up.
            if let Some(snapshot) = state.snapshot() {
                self.journal.rewrite(snapshot);
            }
        }
    }
}

/// The fsync thread of a queue under `sync = always`; none otherwise.
fn start_group_commit(
    options: &QueueOptions,
    journal: &Arc<Journal>,
    name: &str,
) -> Result<Option<GroupCommit>, QueueError> {
    if options.sync != SyncPolicy::Always {
        return Ok(None);
    }
    let group_commit = GroupCommit::start(Arc::clone(journal), name).map_err(|source| {
        QueueError::Journal(lanner_journal::JournalError::Io {
            path: name.into(),
            source,
        })
    })?;
    Ok(Some(group_commit))
}

/// Everything the queue's mutex protects: the state and the limits it is held to.
struct Locked {
    state: QueueState,
    limits: QueueLimits,
}

impl Deref for Locked {
    type Target = QueueState;

    fn deref(&self) -> &QueueState {
        &self.state
    }
}

impl DerefMut for Locked {
    fn deref_mut(&mut self) -> &mut QueueState {
        &mut self.state
    }
}

/// Items an expiry pass removed.
#[derive(Default)]
struct Expired {
    count: u64,
    /// Journal position of the last remove (0 if none).
    seq: Seq,
    /// The removed items, when they go to an `expire_to_queue`.
    items: Vec<Item>,
}

/// Figures of one queue, for `stats`.
#[derive(Debug, Clone, Copy)]
pub struct QueueStats {
    pub items: u64,
    pub bytes: u64,
    /// Items and payload bytes held in memory; the rest wait in the spill file.
    pub mem_items: u64,
    pub mem_bytes: u64,
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
