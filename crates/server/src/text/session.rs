//! The text protocol's commands (spec a.5) on top of the queue store: no sockets here. The
//! connection feeds decoded requests in; replies go to an [`Output`].
//!
//! Every read is an open read. `get`, `peek` and `monitor` first confirm all of this
//! connection's open reads on their queue; there is no abort, only disconnecting. A command
//! the server status refuses is answered `-Server not available for operation <op>` and the
//! connection goes on.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lanner_proto::{TextReply, TextRequest};
use lanner_queue::{PutOutcome, Queue, Seq, TakeMode, TakeOutcome};
use smol_str::SmolStr;

use crate::open_reads::OpenReads;
use crate::output::{Output, queue_error_reason};
use crate::session::{Monitor, Step, Wait};
use crate::shared::Shared;
use crate::stats::bump;
use crate::status::Status;

/// The replies of a text connection.
pub type TextOutput = Output<TextReply>;

/// The answer to a read whose item holds LF: sent as one `:` line it would read as several.
const MULTI_LINE_ITEM: &str = "Item contains a line feed; read it on the memcache port.";

/// An operation a server status may refuse, named as Kestrel names it in the error reply.
#[derive(Debug, Clone, Copy)]
enum Operation {
    SetItem,
    GetItem,
    MonitorUntil,
    Flush,
    Delete,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::SetItem => "setItem",
            Operation::GetItem => "getItem",
            Operation::MonitorUntil => "monitorUntil",
            Operation::Flush => "flush",
            Operation::Delete => "delete",
        }
    }

    fn refused_in(self, status: Status) -> bool {
        match self {
            Operation::SetItem | Operation::Flush | Operation::Delete => status.refuses_writes(),
            Operation::GetItem | Operation::MonitorUntil => status.refuses_reads(),
        }
    }
}

/// Per-connection state of a text connection: its open reads.
pub struct TextSession {
    shared: Arc<Shared>,
    open_reads: OpenReads,
}

impl TextSession {
    /// A session with nothing open.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            open_reads: OpenReads::default(),
        }
    }

    /// Counts a request the decoder rejected.
    pub fn count_protocol_error(&self) {
        self.shared
            .stats
            .requests
            .count_error(crate::request_metrics::ErrorKind::Protocol);
    }

    /// Executes one request. `frame` holds the bytes the request was decoded from.
    pub fn execute(&mut self, request: TextRequest, frame: &Bytes, out: &mut TextOutput) -> Step {
        match request {
            TextRequest::Put {
                queue,
                expiry_ms,
                items,
            } => self.put(&queue, expiry_ms, &items, frame, out),
            TextRequest::Get { queue, timeout_ms } => {
                return self.read(&queue, timeout_ms, TakeMode::Open, out);
            }
            TextRequest::Peek { queue, timeout_ms } => {
                return self.read(&queue, timeout_ms, TakeMode::Peek, out);
            }
            TextRequest::Monitor { queue, timeout_ms } => {
                return self.monitor(&queue, timeout_ms, out);
            }
            TextRequest::Confirm { queue, count } => self.confirm(&queue, count, out),
            TextRequest::Flush { queue } => self.flush(&queue, out),
            TextRequest::Delete { queue } => self.delete(&queue, out),
            TextRequest::Status { new_status: None } => {
                let name = self.shared.status.current().reply_name();
                out.push(&TextReply::Item(Bytes::from_static(name.as_bytes())));
            }
            TextRequest::Status {
                new_status: Some(name),
            } => self.set_status(&name, out),
            TextRequest::Version => out.push(&TextReply::Item(Bytes::from_static(
                env!("CARGO_PKG_VERSION").as_bytes(),
            ))),
            TextRequest::Shutdown => {
                out.push(&TextReply::Count(0));
                self.shared.shutdown.cancel();
                return Step::Close;
            }
            TextRequest::Quit => return Step::Close,
        }
        Step::Continue
    }

    /// Answers a read with its item, registering an open read, or with `*`. Returns true when
    /// an item was sent.
    pub fn deliver(
        &mut self,
        queue: &Arc<Queue>,
        outcome: TakeOutcome,
        out: &mut TextOutput,
    ) -> bool {
        let Some(taken) = outcome.item else {
            bump(&self.shared.stats.get_misses);
            out.commit_later(queue, outcome.seq);
            out.push(&TextReply::NoItem);
            return false;
        };
        if taken.data.contains(&b'\n') {
            refuse_multi_line(queue, taken.xid, outcome.seq, out);
            return false;
        }
        bump(&self.shared.stats.get_hits);
        if let Some(xid) = taken.xid {
            self.open_reads.add(queue, xid);
        }
        out.push_read_after_commit(&TextReply::Item(taken.data), queue, outcome.seq);
        true
    }

    /// True while a monitor may deliver another item (time remains, and the connection holds
    /// fewer than `max_open_transactions` open reads on the queue).
    pub fn monitor_may_continue(&self, monitor: &Monitor) -> bool {
        let max_open = self.shared.server.max_open_transactions as usize;
        monitor.may_continue(self.open_reads.count(monitor.queue.name()), max_open)
    }

    /// Aborts every open read of this connection (it is ending); their items go back to the
    /// head of their queues in their original order.
    pub fn abort_all(&mut self, out: &mut TextOutput) {
        let returned = self.open_reads.abort_all(out);
        let shutting_down = self.shared.shutdown.is_cancelled();
        self.shared.stats.connection_ended(shutting_down, returned);
    }

    /// `put`: adds the items in order and answers how many were stored, stopping at the first
    /// one refused.
    fn put(
        &mut self,
        name: &str,
        expiry_ms: Option<i32>,
        items: &[Range<usize>],
        frame: &Bytes,
        out: &mut TextOutput,
    ) {
        if self.refused(Operation::SetItem, out) {
            return;
        }
        let exptime = exptime(expiry_ms, self.shared.queues.clock().now_ms());
        let mut stored = 0;
        let mut commits = Vec::new();
        let mut failure = None;
        for range in items {
            bump(&self.shared.stats.cmd_set);
            let data = || Bytes::copy_from_slice(&frame[range.clone()]);
            let put = self.shared.put_item(name, data, exptime);
            commits.extend(put.commits);
            match put.outcome {
                Ok(PutOutcome::Stored(_)) => stored += 1,
                Ok(PutOutcome::NotStored) => break,
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        let reply = match failure {
            Some(error) if stored == 0 => TextReply::Error(queue_error_reason(&error)),
            _ => TextReply::Count(stored),
        };
        out.push_after_commits(&reply, &commits);
    }

    /// `get` (an open read) or `peek`, after confirming this connection's open reads on the
    /// queue; waits up to `timeout_ms` for an item.
    fn read(
        &mut self,
        name: &str,
        timeout_ms: Option<u32>,
        mode: TakeMode,
        out: &mut TextOutput,
    ) -> Step {
        let stats = &self.shared.stats;
        bump(if mode == TakeMode::Peek {
            &stats.cmd_peek
        } else {
            &stats.cmd_get
        });
        self.confirm_all(name, out);
        if self.refused(Operation::GetItem, out) {
            return Step::Continue;
        }
        let Some(queue) = self.readable_queue(name, out) else {
            return Step::Continue;
        };
        let outcome = queue.take(mode);
        match timeout_ms {
            Some(ms) if outcome.item.is_none() => {
                out.commit_later(&queue, outcome.seq);
                Step::Wait(Wait {
                    queue,
                    key: SmolStr::new(name),
                    mode,
                    timeout: Duration::from_millis(u64::from(ms)),
                })
            }
            _ => {
                self.deliver(&queue, outcome, out);
                Step::Continue
            }
        }
    }

    /// `monitor`: after confirming this connection's open reads on the queue, the connection
    /// streams open reads until the timeout.
    fn monitor(&mut self, name: &str, timeout_ms: u32, out: &mut TextOutput) -> Step {
        self.confirm_all(name, out);
        if self.refused(Operation::MonitorUntil, out) {
            return Step::Continue;
        }
        let Some(queue) = self.readable_queue(name, out) else {
            return Step::Continue;
        };
        Step::Monitor(Monitor {
            queue,
            deadline: Instant::now() + Duration::from_millis(u64::from(timeout_ms)),
            remaining: self.shared.server.max_open_transactions,
        })
    }

    /// `confirm <q> <n>`: confirms the `n` oldest open reads, or none if fewer are open.
    fn confirm(&mut self, name: &str, count: u32, out: &mut TextOutput) {
        self.open_reads.forget_deleted(name);
        let count_open = self.open_reads.count(name);
        if count_open < count as usize {
            out.push(&TextReply::Error(
                "Not that many transactions open.".to_owned(),
            ));
            return;
        }
        self.open_reads.confirm_oldest(
            name,
            count as usize,
            &TextReply::Count(u64::from(count)),
            out,
        );
    }

    fn flush(&self, name: &str, out: &mut TextOutput) {
        if self.refused(Operation::Flush, out) {
            return;
        }
        match self
            .shared
            .queues
            .get(name)
            .filter(|_| !self.is_alias(name))
        {
            Some(queue) => {
                let seq = queue.flush();
                out.push_after_commit(&TextReply::Count(0), &queue, seq);
            }
            None => out.push(&TextReply::Count(0)),
        }
    }

    fn delete(&mut self, name: &str, out: &mut TextOutput) {
        if self.refused(Operation::Delete, out) {
            return;
        }
        if self.is_alias(name) {
            return out.push(&TextReply::Count(0));
        }
        self.open_reads.forget(name);
        match self.shared.queues.delete(name) {
            Ok(_) => out.push(&TextReply::Count(0)),
            Err(error) => out.push(&TextReply::Error(queue_error_reason(&error))),
        }
    }

    /// `status <name>`: `+0`; `down` and unknown names are refused.
    fn set_status(&self, name: &str, out: &mut TextOutput) {
        let reply = match Status::parse(name) {
            Some(status) => {
                self.shared.status.request(status);
                TextReply::Count(0)
            }
            None if name == "down" => TextReply::Error("Status forbidden.".to_owned()),
            None => TextReply::Error("Unknown status.".to_owned()),
        };
        out.push(&reply);
    }

    /// Confirms every read this connection holds open on `name`.
    fn confirm_all(&mut self, name: &str, out: &mut TextOutput) {
        self.open_reads.forget_deleted(name);
        self.open_reads.confirm_before_read(name, usize::MAX, out);
    }

    /// The queue a read takes from; `None`, already answered, for an alias (it holds no
    /// items) or a queue that cannot be created.
    fn readable_queue(&self, name: &str, out: &mut TextOutput) -> Option<Arc<Queue>> {
        if self.is_alias(name) {
            bump(&self.shared.stats.get_misses);
            out.push(&TextReply::NoItem);
            return None;
        }
        match self.shared.queues.get_or_create(name) {
            Ok(queue) => Some(queue),
            Err(error) => {
                out.push(&TextReply::Error(queue_error_reason(&error)));
                None
            }
        }
    }

    fn is_alias(&self, name: &str) -> bool {
        self.shared.aliases.load().get(name).is_some()
    }

    /// Answers `-Server not available for operation <op>` when the server status refuses it.
    fn refused(&self, operation: Operation, out: &mut TextOutput) -> bool {
        let refused = operation.refused_in(self.shared.status.current());
        if refused {
            out.push(&TextReply::Error(format!(
                "Server not available for operation {}",
                operation.name()
            )));
        }
        refused
    }
}

/// Answers a read that met an item holding LF with an error; an open read of it is aborted, so
/// the item stays at the head of its queue.
fn refuse_multi_line(queue: &Arc<Queue>, xid: Option<u32>, seq: Seq, out: &mut TextOutput) {
    out.commit_later(queue, seq);
    if let Some(xid) = xid {
        out.commit_later(queue, queue.abort(&[xid]));
    }
    out.push(&TextReply::Error(MULTI_LINE_ITEM.to_owned()));
}

/// The memcache `exptime` (spec f.2) of a put's expiry in milliseconds from now: none when
/// absent or 0, already passed when negative, else the absolute epoch second at or after the
/// expiry (the queue keeps expiry in whole seconds of memcache `exptime`, so an item may live
/// up to a second longer than asked).
fn exptime(expiry_ms: Option<i32>, now_ms: i64) -> i64 {
    match expiry_ms {
        None | Some(0) => 0,
        Some(ms) if ms < 0 => -1,
        Some(ms) => (now_ms + i64::from(ms) + 999) / 1000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_milliseconds_become_memcache_exptime() {
        let now = 1_700_000_000_250;
        assert_eq!(exptime(None, now), 0);
        assert_eq!(exptime(Some(0), now), 0);
        assert_eq!(exptime(Some(-5), now), -1);
        assert_eq!(exptime(Some(1), now), 1_700_000_001);
        assert_eq!(exptime(Some(750), now), 1_700_000_001);
        assert_eq!(exptime(Some(751), now), 1_700_000_002);
        assert_eq!(
            lanner_queue::expiry_from_exptime(exptime(Some(i32::MAX), now), now),
            1_702_147_484_000
        );
    }
}
