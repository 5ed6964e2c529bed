//! One text-protocol connection (spec a.5; Kestrel's port 2222): read bytes, decode pipelined
//! requests, execute them, commit the journal records their replies depend on, then write the
//! replies. The same durability rule as memcache's holds: a reply that depends on journal
//! records leaves only once they are committed.

mod session;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Buf;
use lanner_proto::{AfterError, TextDecoder, TextReply};
use lanner_queue::{Queue, TakeMode, TakeOutcome};
use tracing::debug;

use crate::session::{Monitor, Step, Wait};
use crate::shared::Shared;
use crate::socket::{ClientSocket, ClientStream, Flow, commit_and_discard};
use session::{TextOutput, TextSession};

/// Serves one text-protocol client until it leaves, errs, or the server shuts down. Open reads
/// left by the client go back to their queues however the connection ends (there is no abort
/// command in this protocol).
pub async fn serve<S: ClientStream>(stream: S, shared: Arc<Shared>) {
    let mut connection = TextConnection {
        socket: ClientSocket::new(stream, Arc::clone(&shared)),
        decoder: TextDecoder::new(&shared.limits),
        session: TextSession::new(Arc::clone(&shared)),
        out: TextOutput::default(),
    };
    if let Err(error) = connection.run().await {
        debug!(%error, "text connection ended with an error");
    }
    connection.abort_open_reads().await;
    connection.socket.close().await;
}

struct TextConnection<S> {
    socket: ClientSocket<S>,
    decoder: TextDecoder,
    session: TextSession,
    out: TextOutput,
}

impl<S: ClientStream> TextConnection<S> {
    async fn run(&mut self) -> io::Result<()> {
        loop {
            if let Flow::Stop = self.execute_buffered().await? {
                return self.send().await;
            }
            self.send().await?;
            if !self.socket.read_more::<TextReply>().await? {
                return Ok(());
            }
        }
    }

    /// Executes every complete request in the read buffer, in order.
    async fn execute_buffered(&mut self) -> io::Result<Flow> {
        loop {
            let parsed = match self.decoder.decode(&self.socket.buf) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => return Ok(Flow::Continue),
                Err(error) => {
                    self.session.count_protocol_error();
                    self.out.push(&error.reply);
                    match error.after {
                        AfterError::Skip(length) => self.socket.buf.advance(length),
                        AfterError::Close => return Ok(Flow::Stop),
                    }
                    continue;
                }
            };
            let frame = self.socket.buf.split_to(parsed.consumed).freeze();
            let flow = match self.session.execute(parsed.request, &frame, &mut self.out) {
                Step::Continue if self.out.is_full() => {
                    self.send().await?;
                    Flow::Continue
                }
                Step::Continue => Flow::Continue,
                Step::Close => Flow::Stop,
                Step::Wait(wait) => self.wait(wait).await?,
                Step::Monitor(monitor) => self.monitor(monitor).await?,
                // Only memcache sessions authenticate (the server refuses to start with both
                // users and a text listener).
                Step::Authenticate(_) => Flow::Continue,
            };
            if let Flow::Stop = flow {
                return Ok(Flow::Stop);
            }
        }
    }

    /// Answers a blocking `get` or `peek` once an item arrived or its time ran out.
    async fn wait(&mut self, wait: Wait) -> io::Result<Flow> {
        self.send().await?;
        let Some(outcome) = self
            .await_take(&wait.queue, wait.mode, wait.timeout)
            .await?
        else {
            return Ok(Flow::Stop);
        };
        self.session.deliver(&wait.queue, outcome, &mut self.out);
        self.send().await?;
        Ok(Flow::Continue)
    }

    /// Streams each item as it arrives, as an open read, until the monitor ends; then `*`. An
    /// item that cannot be sent ends the stream with its error line instead.
    async fn monitor(&mut self, mut monitor: Monitor) -> io::Result<Flow> {
        self.send().await?;
        while self.session.monitor_may_continue(&monitor) {
            let timeout = monitor.deadline.saturating_duration_since(Instant::now());
            let queue = Arc::clone(&monitor.queue);
            let Some(outcome) = self.await_take(&queue, TakeMode::Open, timeout).await? else {
                return Ok(Flow::Stop);
            };
            if outcome.item.is_none() {
                self.out.commit_later(&queue, outcome.seq);
                break;
            }
            if !self.session.deliver(&queue, outcome, &mut self.out) {
                return Ok(Flow::Continue);
            }
            self.send().await?;
            monitor.remaining -= 1;
        }
        self.out.push(&TextReply::NoItem);
        Ok(Flow::Continue)
    }

    /// Waits for an item while watching the socket; `None` when the connection must stop (a
    /// wait cut short by shutdown is answered `*`).
    async fn await_take(
        &mut self,
        queue: &Queue,
        mode: TakeMode,
        timeout: Duration,
    ) -> io::Result<Option<TakeOutcome>> {
        let no_item = TextReply::NoItem;
        self.socket
            .await_take(queue, mode, timeout, &mut self.out, &no_item)
            .await
    }

    /// Commits the journal records the pending replies depend on, then writes the replies.
    async fn send(&mut self) -> io::Result<()> {
        self.socket.send(&mut self.out).await
    }

    async fn abort_open_reads(&mut self) {
        self.session.abort_all(&mut self.out);
        commit_and_discard(&mut self.out).await;
    }
}
