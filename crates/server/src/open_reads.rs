//! One connection's open reads (spec b.3): per queue, the reads it took and has neither
//! confirmed nor aborted, oldest first. Both protocols keep them the same way.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use lanner_queue::{Queue, Seq};
use tracing::warn;

use crate::output::{Output, Reply};

/// This connection's open reads on one queue, oldest first.
struct QueueReads {
    queue: Arc<Queue>,
    xids: VecDeque<u32>,
}

/// A connection's open reads, by queue name.
#[derive(Default)]
pub struct OpenReads {
    by_queue: HashMap<String, QueueReads>,
}

impl OpenReads {
    /// How many reads are open on the queue `name`.
    pub fn count(&self, name: &str) -> usize {
        self.by_queue.get(name).map_or(0, |reads| reads.xids.len())
    }

    /// Records a read just opened on `queue`.
    pub fn add(&mut self, queue: &Arc<Queue>, xid: u32) {
        self.by_queue
            .entry(queue.name().to_owned())
            .or_insert_with(|| QueueReads {
                queue: Arc::clone(queue),
                xids: VecDeque::new(),
            })
            .xids
            .push_back(xid);
    }

    /// Confirms the `count` oldest reads open on `name` (all of them when fewer are open), and
    /// sends `reply` once the confirmations are committed (at once when nothing was open).
    pub fn confirm_oldest<R: Reply>(
        &mut self,
        name: &str,
        count: usize,
        reply: &R,
        out: &mut Output<R>,
    ) {
        match self.confirm(name, count) {
            Some((queue, seq)) => out.push_after_commit(reply, &queue, seq),
            None => out.push(reply),
        }
    }

    /// Confirms the `count` oldest reads open on `name` whose reply is the read that follows
    /// (`close/open`, or the text protocol's confirming `get`): that reply commits later records
    /// of the same queue, which cover these.
    pub fn confirm_before_read<R: Reply>(&mut self, name: &str, count: usize, out: &mut Output<R>) {
        if let Some((queue, seq)) = self.confirm(name, count) {
            out.commit_later(&queue, seq);
        }
    }

    /// Confirms the `count` oldest reads open on `name`; the queue and the journal position to
    /// commit, or `None` when none was open.
    fn confirm(&mut self, name: &str, count: usize) -> Option<(Arc<Queue>, Seq)> {
        let reads = self.by_queue.get_mut(name)?;
        let count = count.min(reads.xids.len());
        let seq = reads
            .xids
            .drain(..count)
            .map(|xid| reads.queue.confirm(xid))
            .max()
            .unwrap_or(0);
        let queue = Arc::clone(&reads.queue);
        if reads.xids.is_empty() {
            self.by_queue.remove(name);
        }
        Some((queue, seq))
    }

    /// Returns the oldest read open on `name` to the head of its queue.
    pub fn abort_oldest<R: Reply>(&mut self, name: &str, out: &mut Output<R>) {
        let Some(reads) = self.by_queue.get_mut(name) else {
            warn!(queue = name, "abort with no open read");
            return;
        };
        if let Some(xid) = reads.xids.pop_front() {
            let seq = reads.queue.abort(&[xid]);
            out.commit_later(&reads.queue, seq);
        }
        if reads.xids.is_empty() {
            self.by_queue.remove(name);
        }
    }

    /// Aborts every open read; the items go back to the head of their queues in their original
    /// order (Part 0 #5). Returns how many there were.
    pub fn abort_all<R: Reply>(&mut self, out: &mut Output<R>) -> usize {
        let mut returned = 0;
        for (_, reads) in self.by_queue.drain() {
            let xids: Vec<u32> = reads.xids.into_iter().collect();
            returned += xids.len();
            let seq = reads.queue.abort(&xids);
            out.commit_later(&reads.queue, seq);
        }
        returned
    }

    /// Forgets the reads open on `name` without touching the queue (it is being deleted).
    pub fn forget(&mut self, name: &str) {
        self.by_queue.remove(name);
    }

    /// Forgets the reads open on `name` if that queue was deleted (and maybe recreated) since
    /// they were opened.
    pub fn forget_deleted(&mut self, name: &str) {
        if self
            .by_queue
            .get(name)
            .is_some_and(|reads| reads.queue.is_deleted())
        {
            self.by_queue.remove(name);
        }
    }
}
