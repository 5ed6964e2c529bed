//! One memcache client connection: read bytes, parse pipelined requests, execute them, commit
//! the journal records their replies depend on, then write all replies with one write.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Buf;
use lanner_proto::{AfterError, Response, parse};
use lanner_queue::{TakeMode, TakeOutcome};
use smol_str::SmolStr;
use tracing::debug;

use crate::access::LoginOutcome;
use crate::output::Output;
use crate::request_metrics::{CommandKind, ErrorKind, PendingRequests};
use crate::session::{Credentials, Monitor, Session, Step, Wait};
use crate::shared::Shared;
use crate::socket::{ClientSocket, ClientStream, Flow, commit_and_discard};

/// Most bytes an unauthenticated client may send before its first request is complete: an
/// authentication `set` is short, and nothing larger is buffered for a stranger.
const MAX_UNAUTHENTICATED_REQUEST: usize = 4096;

/// Serves the client at `peer` until it leaves, errs, or the server shuts down. Open reads
/// left by the client go back to their queues however the connection ends.
pub async fn serve<S: ClientStream>(stream: S, peer: SocketAddr, shared: Arc<Shared>) {
    let mut connection = Connection {
        socket: ClientSocket::new(stream, Arc::clone(&shared)),
        out: Output::default(),
        session: Session::new(Arc::clone(&shared)),
        shared: Arc::clone(&shared),
        pending: PendingRequests::default(),
        peer,
    };
    if let Err(error) = connection.run().await {
        debug!(%error, "connection ended with an error");
    }
    connection.abort_open_reads().await;
    connection.socket.close().await;
}

struct Connection<S> {
    socket: ClientSocket<S>,
    out: Output,
    session: Session,
    shared: Arc<Shared>,
    /// Requests executed whose replies are not written yet (for the latency histograms).
    pending: PendingRequests,
    /// The client's address: failed logins are counted under it.
    peer: SocketAddr,
}

impl<S: ClientStream> Connection<S> {
    async fn run(&mut self) -> io::Result<()> {
        loop {
            if let Flow::Stop = self.execute_buffered().await? {
                return self.flush().await;
            }
            self.flush().await?;
            if !self.socket.read_more::<Response>().await? {
                return Ok(());
            }
        }
    }

    /// Executes every complete request in the read buffer, in order.
    async fn execute_buffered(&mut self) -> io::Result<Flow> {
        loop {
            let parsed = match parse(&self.socket.buf, &self.shared.limits) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => return Ok(self.incomplete_request()),
                Err(error) => {
                    self.shared.stats.requests.count_error(ErrorKind::Protocol);
                    self.out.push(&error.reply);
                    match error.after {
                        AfterError::Skip(length) => self.socket.buf.advance(length),
                        AfterError::Close => return Ok(Flow::Stop),
                    }
                    continue;
                }
            };
            let frame = self.socket.buf.split_to(parsed.consumed).freeze();
            self.pending
                .start(CommandKind::of(&parsed.request), Instant::now());
            match self.session.execute(parsed.request, &frame, &mut self.out) {
                Step::Continue if self.out.is_full() => self.flush().await?,
                Step::Continue => {}
                Step::Close => return Ok(Flow::Stop),
                Step::Wait(wait) => {
                    self.flush().await?;
                    if let Flow::Stop = self.wait(wait).await? {
                        return Ok(Flow::Stop);
                    }
                }
                Step::Monitor(monitor) => {
                    self.flush().await?;
                    if let Flow::Stop = self.monitor(monitor).await? {
                        return Ok(Flow::Stop);
                    }
                }
                Step::Authenticate(credentials) => {
                    if let Flow::Stop = self.authenticate(credentials).await {
                        return Ok(Flow::Stop);
                    }
                }
            }
        }
    }

    /// Checks an authentication `set`'s credentials and answers it. A failure is answered only
    /// after `failure_delay` (cut short by shutdown), so that one connection cannot guess
    /// quickly; a success is answered at once.
    async fn authenticate(&mut self, Credentials { user, password }: Credentials) -> Flow {
        let users = Arc::clone(&self.shared.users);
        let outcome = users.check(user.clone(), password, self.peer.ip()).await;
        if let LoginOutcome::Rejected = outcome {
            tokio::select! {
                () = tokio::time::sleep(self.shared.server.login.failure_delay) => {}
                () = self.shared.shutdown.cancelled() => {}
            }
        }
        let step = self
            .session
            .finish_authentication(&user, self.peer, outcome, &mut self.out);
        match step {
            Step::Close => Flow::Stop,
            _ => Flow::Continue,
        }
    }

    /// Waits for more bytes of a request, unless an unauthenticated client sent too many.
    fn incomplete_request(&mut self) -> Flow {
        if self.socket.buf.len() > MAX_UNAUTHENTICATED_REQUEST
            && self.session.awaits_authentication()
        {
            let refusal = Response::ClientError("authentication request too long".to_owned());
            self.out.push(&refusal);
            return Flow::Stop;
        }
        Flow::Continue
    }

    /// Answers a blocking get once an item arrived or its time ran out.
    async fn wait(&mut self, wait: Wait) -> io::Result<Flow> {
        let Some(outcome) = self.await_item(&wait).await? else {
            return Ok(Flow::Stop);
        };
        self.session.finish_wait(&wait, outcome, &mut self.out);
        self.flush().await?;
        Ok(Flow::Continue)
    }

    /// Streams each item as it arrives, as an open read, until the monitor ends; then `END`.
    async fn monitor(&mut self, mut monitor: Monitor) -> io::Result<Flow> {
        while self.session.monitor_may_continue(&monitor) {
            let timeout = monitor.deadline.saturating_duration_since(Instant::now());
            let wait = Wait {
                queue: Arc::clone(&monitor.queue),
                key: SmolStr::new(monitor.queue.name()),
                mode: TakeMode::Open,
                timeout,
            };
            let Some(outcome) = self.await_item(&wait).await? else {
                return Ok(Flow::Stop);
            };
            if outcome.item.is_none() {
                break;
            }
            self.session.finish_wait(&wait, outcome, &mut self.out);
            self.flush().await?;
            monitor.remaining -= 1;
        }
        self.out.push(&Response::End);
        Ok(Flow::Continue)
    }

    /// Waits for an item while watching the socket; `None` when the connection must stop (a
    /// wait cut short by shutdown is answered `END`).
    async fn await_item(&mut self, wait: &Wait) -> io::Result<Option<TakeOutcome>> {
        let (queue, mode, timeout) = (&wait.queue, wait.mode, wait.timeout);
        self.socket
            .await_take(queue, mode, timeout, &mut self.out, &Response::End)
            .await
    }

    /// Commits the journal records the pending replies depend on, then writes the replies.
    async fn flush(&mut self) -> io::Result<()> {
        let sent = self.socket.send(&mut self.out).await;
        self.pending.answered(&self.shared.stats.requests);
        sent
    }

    async fn abort_open_reads(&mut self) {
        self.session.abort_all(&mut self.out);
        commit_and_discard(&mut self.out).await;
    }
}
