//! What one client connection may do, and the memcache commands' semantics on top of the queue
//! store: no sockets here. The connection feeds parsed requests in; replies go to an [`Output`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lanner_proto::{GetOptions, Request, Response, requested_key};
use lanner_queue::{PutOutcome, Queue, QueueError, TakeMode, TakeOutcome};
use smol_str::SmolStr;
use tracing::{debug, info};

use crate::access::{ACCESS_DENIED, LoginOutcome, User, parse_credentials};
use crate::open_reads::OpenReads;
use crate::output::{Output, queue_error_reason};
use crate::reload::reload;
use crate::request_metrics::ErrorKind;
use crate::shared::Shared;
use crate::stats::bump;
use crate::status::Status;

/// The reply to a login from a locked-out address (`[server.login]`).
const LOCKED_OUT: &str = "too many failed logins from this address, try again later";

/// Payloads smaller than this are copied out of the read buffer instead of sharing it: a shared
/// slice keeps the whole read buffer allocation alive, so only a payload at least as large as
/// the buffer's read reserve may share it without wasting more memory than it holds.
const ZERO_COPY_MIN_PAYLOAD: usize = 16 * 1024;

/// What the connection does after a request.
pub enum Step {
    /// Go on with the next request.
    Continue,
    /// Send what is pending, then close the connection.
    Close,
    /// Send what is pending, then wait for an item (a blocking get).
    Wait(Wait),
    /// Send what is pending, then stream open reads until the monitor ends.
    Monitor(Monitor),
    /// Check the credentials (slow: off the runtime), then [`Session::finish_authentication`].
    Authenticate(Credentials),
}

/// The user name and password of an authentication `set`.
pub struct Credentials {
    pub user: String,
    pub password: Vec<u8>,
}

/// What a connection may do.
enum Access {
    /// No users are configured: everything.
    Open,
    /// Users are configured and this connection has not authenticated: only the
    /// authentication `set` (and `quit`).
    Unauthenticated,
    /// Authenticated: what the user's rules allow.
    User(Arc<User>),
}

/// A `monitor` stream in progress (spec b.7).
pub struct Monitor {
    pub queue: Arc<Queue>,
    pub deadline: Instant,
    pub remaining: u32,
}

impl Monitor {
    /// True while the monitor may deliver another item: items and time remain, and the
    /// connection holds fewer than `max_open` open reads (`open_now`) on the queue.
    pub fn may_continue(&self, open_now: usize, max_open: usize) -> bool {
        self.remaining > 0 && Instant::now() < self.deadline && open_now < max_open
    }
}

/// A blocking get waiting for an item.
pub struct Wait {
    pub queue: Arc<Queue>,
    /// The key a memcache `VALUE` line names (the text protocol has none).
    pub key: SmolStr,
    pub mode: TakeMode,
    pub timeout: Duration,
}

/// Per-connection state: who the client is, and its open reliable reads.
pub struct Session {
    shared: Arc<Shared>,
    access: Access,
    open_reads: OpenReads,
    /// Failed logins on this connection (`max_attempts` of `[server.login]`).
    failed_logins: u32,
}

impl Session {
    /// A session with nothing open; it must authenticate first when users are configured.
    pub fn new(shared: Arc<Shared>) -> Self {
        let access = if shared.users.is_empty() {
            Access::Open
        } else {
            Access::Unauthenticated
        };
        Self {
            shared,
            access,
            open_reads: OpenReads::default(),
            failed_logins: 0,
        }
    }

    /// Executes one request. `frame` holds the bytes the request was parsed from.
    pub fn execute(&mut self, request: Request, frame: &Bytes, out: &mut Output) -> Step {
        match &self.access {
            Access::Open => {}
            Access::Unauthenticated => return authentication_step(request, frame, out),
            Access::User(user) if !user.permissions.allow(&request) => {
                out.push(&Response::ClientError(ACCESS_DENIED.to_owned()));
                return Step::Continue;
            }
            Access::User(_) => {}
        }
        if is_write(&request) && self.shared.status.current().refuses_writes() {
            out.push(&Response::ServerError(
                "server is not accepting writes".to_owned(),
            ));
            return Step::Close;
        }
        match request {
            Request::Set {
                queue,
                exptime,
                data,
                ..
            } => self.set(&queue, exptime, || payload(frame, data.clone()), out),
            Request::Get { queue, options } => {
                let key = self.reply_key(&queue, frame);
                return self.get(&queue, options, key, out);
            }
            Request::Confirm { queue, count } => return self.confirm(&queue, count, out),
            Request::Delete { queue } => self.delete(&queue, out),
            Request::Flush { queue } => self.flush(&queue, out),
            Request::FlushAll => self.flush_all(out),
            Request::FlushExpired { queue } => self.flush_expired(&queue, out),
            Request::FlushAllExpired => self.flush_all_expired(out),
            Request::Stats => out.push(&Response::Stats(
                self.shared
                    .stats
                    .report(&self.shared.queues, &self.shared.aliases.load()),
            )),
            Request::DumpStats { queues } => {
                out.push(&Response::Raw(self.shared.dump_stats(&queues)))
            }
            Request::DumpConfig => out.push(&Response::Raw(self.shared.dump_config())),
            Request::Version => out.push(&Response::Version(env!("CARGO_PKG_VERSION").to_owned())),
            Request::Status { new_status: None } => {
                let status = self.shared.status.current();
                out.push(&Response::Line(status.reply_name().to_owned()));
            }
            Request::Status {
                new_status: Some(name),
            } => return self.set_status(&name, out),
            Request::Monitor {
                queue,
                seconds,
                max_items,
            } => return self.monitor(&queue, seconds, max_items, out),
            Request::Reload => match reload(&self.shared) {
                Ok(()) => out.push(&Response::Reloaded),
                Err(error) => out.push(&Response::ServerError(format!("reload failed: {error}"))),
            },
            Request::Shutdown => {
                self.shared.shutdown.cancel();
                return Step::Close;
            }
            Request::Quit => return Step::Close,
        }
        Step::Continue
    }

    /// True until a connection that must authenticate has done so.
    pub fn awaits_authentication(&self) -> bool {
        matches!(self.access, Access::Unauthenticated)
    }

    /// Answers an authentication `set` of the client at `peer` once its credentials were
    /// checked: `STORED` and the user's rights when they are the user's; else `CLIENT_ERROR
    /// authentication failure`, and the connection may try again (as with memcached) until it
    /// has failed `max_attempts` times. A locked-out address is refused and closed.
    pub fn finish_authentication(
        &mut self,
        name: &str,
        peer: SocketAddr,
        outcome: LoginOutcome,
        out: &mut Output,
    ) -> Step {
        match outcome {
            LoginOutcome::Accepted(user) => {
                debug!(user = %user.name, "client authenticated");
                self.access = Access::User(user);
                out.push(&Response::Stored);
                Step::Continue
            }
            LoginOutcome::Rejected => self.login_failed(name, peer, out),
            LoginOutcome::LockedOut => {
                // Logged when the lockout began, not per refusal.
                debug!(%peer, "login refused: the address is locked out");
                out.push(&Response::ClientError(LOCKED_OUT.to_owned()));
                Step::Close
            }
        }
    }

    /// Answers a failed login; closes the connection at its `max_attempts`th.
    fn login_failed(&mut self, name: &str, peer: SocketAddr, out: &mut Output) -> Step {
        out.push(&Response::ClientError("authentication failure".to_owned()));
        self.failed_logins += 1;
        let max_attempts = self.shared.server.login.max_attempts;
        info!(user = %name, %peer, attempt = self.failed_logins, "authentication failed");
        if self.failed_logins < max_attempts {
            return Step::Continue;
        }
        info!(%peer, "closing the connection after {max_attempts} failed logins");
        Step::Close
    }

    /// Replies to a blocking get once its wait ended.
    pub fn finish_wait(&mut self, wait: &Wait, outcome: TakeOutcome, out: &mut Output) {
        self.deliver(&wait.queue, wait.key.clone(), outcome, out);
    }

    /// True while a monitor may deliver another item: items and time remain, and the connection
    /// holds fewer than `max_open_transactions` open reads on the queue.
    pub fn monitor_may_continue(&self, monitor: &Monitor) -> bool {
        monitor.may_continue(
            self.open_count(monitor.queue.name()),
            self.max_open_transactions(),
        )
    }

    /// Aborts every open read of this connection; their items go back to the head of their
    /// queues in their original order (Part 0 #5).
    pub fn abort_all(&mut self, out: &mut Output) {
        let returned = self.open_reads.abort_all(out);
        let shutting_down = self.shared.shutdown.is_cancelled();
        self.shared.stats.connection_ended(shutting_down, returned);
    }

    /// `set`: `STORED` once the item (for an alias: every destination's copy) is committed.
    fn set(&mut self, name: &str, exptime: i64, payload: impl Fn() -> Bytes, out: &mut Output) {
        bump(&self.shared.stats.cmd_set);
        let put = self.shared.put_item(name, payload, exptime);
        match put.outcome {
            Ok(outcome) => out.push_after_commits(&stored_reply(outcome), &put.commits),
            Err(error) => {
                for (queue, seq) in &put.commits {
                    out.commit_later(queue, *seq);
                }
                out.push(&self.queue_error(&error));
            }
        }
    }

    /// `get` with its options, evaluated in Kestrel's order (spec b.2).
    fn get(&mut self, name: &str, options: GetOptions, key: SmolStr, out: &mut Output) -> Step {
        let stats = &self.shared.stats;
        bump(if options.peek {
            &stats.cmd_peek
        } else {
            &stats.cmd_get
        });
        self.open_reads.forget_deleted(name);
        if self.shared.aliases.load().get(name).is_some() {
            bump(&self.shared.stats.get_misses);
            out.push(&Response::End);
            return Step::Continue;
        }
        if options.abort {
            self.open_reads.abort_oldest(name, out);
            out.push(&Response::End);
            return Step::Continue;
        }
        if options.close && !options.open {
            self.open_reads.confirm_oldest(name, 1, &Response::End, out);
            return Step::Continue;
        }
        if options.close {
            self.open_reads.confirm_before_read(name, 1, out);
        }
        let open_now = self.open_count(name);
        let over_limit = options.open && open_now >= self.max_open_transactions();
        if open_now > 0 && !options.open && !options.peek {
            out.push(&Response::Error);
            return Step::Close;
        }
        if let Some(refused) = self.refuse_reads(out) {
            return refused;
        }
        if over_limit {
            out.push(&Response::Error);
            return Step::Close;
        }
        let queue = match self.shared.queues.get_or_create(name) {
            Ok(queue) => queue,
            Err(error) => {
                out.push(&self.queue_error(&error));
                return Step::Continue;
            }
        };
        let mode = take_mode(options);
        let outcome = queue.take(mode);
        match options.timeout_ms {
            Some(ms) if outcome.item.is_none() => {
                out.commit_later(&queue, outcome.seq);
                Step::Wait(Wait {
                    queue,
                    key,
                    mode,
                    timeout: Duration::from_millis(u64::from(ms)),
                })
            }
            _ => {
                self.deliver(&queue, key, outcome, out);
                Step::Continue
            }
        }
    }

    /// `status <name>`: `END`; an unknown name (or `down`) is refused and closes the connection.
    fn set_status(&self, name: &str, out: &mut Output) -> Step {
        match Status::parse(name) {
            Some(status) => {
                self.shared.status.request(status);
                out.push(&Response::End);
                Step::Continue
            }
            None => {
                out.push(&Response::ClientError("unknown status".to_owned()));
                Step::Close
            }
        }
    }

    /// `SERVER_ERROR` and close when the server status refuses reads.
    fn refuse_reads(&self, out: &mut Output) -> Option<Step> {
        if !self.shared.status.current().refuses_reads() {
            return None;
        }
        out.push(&Response::ServerError(
            "server is not accepting reads".to_owned(),
        ));
        Some(Step::Close)
    }

    /// `monitor <q> <seconds> [<max>]`: the connection streams open reads (spec b.7).
    fn monitor(
        &mut self,
        name: &str,
        seconds: u32,
        max_items: Option<u32>,
        out: &mut Output,
    ) -> Step {
        if let Some(refused) = self.refuse_reads(out) {
            return refused;
        }
        self.open_reads.forget_deleted(name);
        match self.shared.queues.get_or_create(name) {
            Ok(queue) => Step::Monitor(Monitor {
                queue,
                deadline: Instant::now() + Duration::from_secs(u64::from(seconds)),
                remaining: max_items.unwrap_or(self.shared.server.max_open_transactions),
            }),
            Err(error) => {
                out.push(&self.queue_error(&error));
                Step::Continue
            }
        }
    }

    /// The reply for a failed queue operation, counted as a queue error.
    fn queue_error(&self, error: &QueueError) -> Response {
        self.shared.stats.requests.count_error(ErrorKind::Queue);
        error_reply(error)
    }

    fn open_count(&self, name: &str) -> usize {
        self.open_reads.count(name)
    }

    fn max_open_transactions(&self) -> usize {
        self.shared.server.max_open_transactions as usize
    }

    /// The key a get's `VALUE` line names: the bare queue name, as Kestrel answers, or with
    /// `echo_full_key` the key exactly as requested. A requested key that is not printable
    /// UTF-8 (unknown options may hold any byte) is answered with the bare name instead, so the
    /// reply line never carries a control byte or a changed key.
    fn reply_key(&self, queue: &SmolStr, frame: &[u8]) -> SmolStr {
        let requested = self
            .shared
            .server
            .echo_full_key
            .then(|| requested_key(frame))
            .flatten()
            .and_then(|key| std::str::from_utf8(key).ok())
            .filter(|key| !key.chars().any(char::is_control));
        requested.map_or_else(|| queue.clone(), SmolStr::new)
    }

    /// Replies to a read with its item (registering an open read) or `END`.
    fn deliver(
        &mut self,
        queue: &Arc<Queue>,
        key: SmolStr,
        outcome: TakeOutcome,
        out: &mut Output,
    ) {
        let Some(taken) = outcome.item else {
            bump(&self.shared.stats.get_misses);
            out.commit_later(queue, outcome.seq);
            out.push(&Response::End);
            return;
        };
        bump(&self.shared.stats.get_hits);
        if let Some(xid) = taken.xid {
            self.open_reads.add(queue, xid);
        }
        let reply = Response::Value {
            key,
            data: taken.data,
        };
        out.push_read_after_commit(&reply, queue, outcome.seq);
    }

    /// `confirm <q> <count>`: confirms the `count` oldest open reads, or none if fewer are open.
    fn confirm(&mut self, name: &str, count: u32, out: &mut Output) -> Step {
        self.open_reads.forget_deleted(name);
        let open_now = self.open_count(name);
        if count == 0 || open_now < count as usize {
            out.push(&Response::Error);
            return Step::Continue;
        }
        self.open_reads
            .confirm_oldest(name, count as usize, &Response::End, out);
        Step::Continue
    }

    fn delete(&mut self, name: &str, out: &mut Output) {
        if self.shared.aliases.load().get(name).is_some() {
            return out.push(&Response::Deleted);
        }
        self.open_reads.forget(name);
        match self.shared.queues.delete(name) {
            Ok(_) => out.push(&Response::Deleted),
            Err(error) => out.push(&self.queue_error(&error)),
        }
    }

    fn flush(&self, name: &str, out: &mut Output) {
        if self.shared.aliases.load().get(name).is_some() {
            return out.push(&Response::End);
        }
        match self.shared.queues.get(name) {
            Some(queue) => {
                let seq = queue.flush();
                out.push_after_commit(&Response::End, &queue, seq);
            }
            None => out.push(&Response::End),
        }
    }

    fn flush_all(&self, out: &mut Output) {
        let flushed = self.shared.queues.flush_all();
        out.push_after_commits(&Response::FlushedAll, &flushed);
    }

    fn flush_expired(&self, name: &str, out: &mut Output) {
        let removed = match self.shared.queues.get(name) {
            Some(queue) => {
                let (removed, seq) = queue.flush_expired();
                out.commit_later(&queue, seq);
                removed
            }
            None => 0,
        };
        out.push(&Response::Count(removed));
    }

    fn flush_all_expired(&self, out: &mut Output) {
        let mut total = 0;
        for queue in self.shared.queues.queues() {
            let (removed, seq) = queue.flush_expired();
            out.commit_later(&queue, seq);
            total += removed;
        }
        out.push(&Response::Count(total));
    }
}

/// What an unauthenticated connection's request leads to, as memcached answers in `-Y` mode: a
/// `set` carries the credentials (its key, flags and expiry are ignored), anything else is
/// refused.
fn authentication_step(request: Request, frame: &Bytes, out: &mut Output) -> Step {
    match request {
        Request::Set { data, .. } => match parse_credentials(&frame[data]) {
            Some((user, password)) => Step::Authenticate(Credentials { user, password }),
            None => {
                out.push(&Response::ClientError(
                    "bad authentication token format".to_owned(),
                ));
                Step::Continue
            }
        },
        Request::Quit => Step::Close,
        _ => {
            out.push(&Response::ClientError("unauthenticated".to_owned()));
            Step::Continue
        }
    }
}

/// The payload of a `set`: shared with the read buffer when large, copied when small.
fn payload(frame: &Bytes, range: std::ops::Range<usize>) -> Bytes {
    if range.len() < ZERO_COPY_MIN_PAYLOAD {
        Bytes::copy_from_slice(&frame[range])
    } else {
        frame.slice(range)
    }
}

fn take_mode(options: GetOptions) -> TakeMode {
    if options.peek {
        TakeMode::Peek
    } else if options.open {
        TakeMode::Open
    } else {
        TakeMode::Remove
    }
}

/// True for the commands a `readonly` server refuses.
fn is_write(request: &Request) -> bool {
    matches!(
        request,
        Request::Set { .. }
            | Request::Delete { .. }
            | Request::Flush { .. }
            | Request::FlushAll
            | Request::FlushExpired { .. }
    )
}

/// `STORED` or `NOT_STORED`.
fn stored_reply(outcome: PutOutcome) -> Response {
    match outcome {
        PutOutcome::Stored(_) => Response::Stored,
        PutOutcome::NotStored => Response::NotStored,
    }
}

/// The protocol reply for a failed queue operation.
fn error_reply(error: &QueueError) -> Response {
    match error {
        QueueError::BadName => Response::ClientError("bad queue name".to_owned()),
        other => Response::ServerError(queue_error_reason(other)),
    }
}
