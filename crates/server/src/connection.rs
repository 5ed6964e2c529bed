//! One client connection: read bytes, parse pipelined requests, execute them, commit the
//! journal records their replies depend on, then write all replies with one write.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use lanner_proto::{AfterError, Response, parse};
use lanner_queue::{TakeMode, TakeOutcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use crate::output::Output;
use crate::session::{Monitor, Session, Step, Wait};
use crate::shared::Shared;
use crate::stats::{add, bump};

const READ_BUFFER_CAPACITY: usize = 16 * 1024;

/// Serves one client until it leaves, errs, or the server shuts down. Open reads left by the
/// client go back to their queues however the connection ends.
pub async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    bump(&shared.stats.total_connections);
    bump(&shared.stats.curr_connections);
    let mut connection = Connection {
        stream,
        read_buf: BytesMut::with_capacity(READ_BUFFER_CAPACITY),
        out: Output::default(),
        session: Session::new(Arc::clone(&shared)),
        shared: Arc::clone(&shared),
    };
    if let Err(error) = connection.run().await {
        debug!(%error, "connection ended with an error");
    }
    connection.abort_open_reads().await;
    shared
        .stats
        .curr_connections
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

struct Connection {
    stream: TcpStream,
    read_buf: BytesMut,
    out: Output,
    session: Session,
    shared: Arc<Shared>,
}

/// Whether the connection goes on after a step.
enum Flow {
    Continue,
    Stop,
}

impl Connection {
    async fn run(&mut self) -> io::Result<()> {
        loop {
            if let Flow::Stop = self.execute_buffered().await? {
                return self.flush().await;
            }
            self.flush().await?;
            if !self.read_more().await? {
                return Ok(());
            }
        }
    }

    /// Executes every complete request in the read buffer, in order.
    async fn execute_buffered(&mut self) -> io::Result<Flow> {
        loop {
            let parsed = match parse(&self.read_buf, &self.shared.limits) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => return Ok(Flow::Continue),
                Err(error) => {
                    self.out.push(&error.reply);
                    match error.after {
                        AfterError::Skip(length) => self.read_buf.advance(length),
                        AfterError::Close => return Ok(Flow::Stop),
                    }
                    continue;
                }
            };
            let frame = self.read_buf.split_to(parsed.consumed).freeze();
            match self.session.execute(parsed.request, &frame, &mut self.out) {
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
            }
        }
    }

    /// Reads more bytes; false when the client closed or the server is shutting down.
    async fn read_more(&mut self) -> io::Result<bool> {
        if self.shared.shutdown.is_cancelled() {
            return Ok(false);
        }
        self.read_buf.reserve(READ_BUFFER_CAPACITY);
        let idle_limit = self.shared.server.client_timeout;
        let read = tokio::select! {
            read = self.stream.read_buf(&mut self.read_buf) => read?,
            () = self.shared.shutdown.cancelled() => return Ok(false),
            () = idle(idle_limit) => {
                debug!("closing a connection idle for longer than client_timeout");
                return Ok(false);
            }
        };
        add(&self.shared.stats.bytes_read, read as u64);
        Ok(read > 0)
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
                key: monitor.queue.name().to_owned(),
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

    /// Waits for an item while watching the socket, so a client that leaves stops the wait at
    /// once (taking nothing); `None` when the connection must stop. Requests pipelined behind
    /// the wait stay buffered.
    async fn await_item(&mut self, wait: &Wait) -> io::Result<Option<TakeOutcome>> {
        let take = tokio::time::timeout(wait.timeout, wait.queue.take_blocking(wait.mode));
        tokio::pin!(take);
        loop {
            let room = self.read_buf.len() < self.shared.limits.max_line_len;
            self.read_buf.reserve(READ_BUFFER_CAPACITY);
            tokio::select! {
                taken = &mut take => return Ok(Some(taken.unwrap_or(TakeOutcome { item: None, seq: 0 }))),
                read = self.stream.read_buf(&mut self.read_buf), if room => {
                    let read = read?;
                    add(&self.shared.stats.bytes_read, read as u64);
                    if read == 0 {
                        return Ok(None);
                    }
                }
                () = self.shared.shutdown.cancelled() => {
                    self.out.push(&Response::End);
                    return Ok(None);
                }
            }
        }
    }

    /// Commits the journal records the pending replies depend on, then writes the replies.
    async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let failed = commit(&self.out).await;
        let bytes = self.out.finish(&failed);
        let written = bytes.len() as u64;
        let result = self.stream.write_all(bytes).await;
        self.out.clear();
        add(&self.shared.stats.bytes_written, written);
        result
    }

    async fn abort_open_reads(&mut self) {
        self.session.abort_all(&mut self.out);
        commit(&self.out).await;
        self.out.finish(&[]);
        self.out.clear();
    }
}

/// Resolves after `limit`, or never when there is none.
async fn idle(limit: Option<std::time::Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}

/// Commits each queue's records; returns which commits failed. Under `sync = always` the wait
/// for the fsync runs on a blocking thread so it never stalls other connections.
async fn commit(out: &Output) -> Vec<bool> {
    let mut failed = Vec::with_capacity(out.commits().len());
    for (queue, seq) in out.commits() {
        let result = if queue.commit_waits_for_fsync() {
            let (queue, seq) = (Arc::clone(queue), *seq);
            tokio::task::spawn_blocking(move || {
                queue.commit(seq).map_err(|error| error.to_string())
            })
            .await
            .unwrap_or_else(|join_error| Err(join_error.to_string()))
        } else {
            queue.commit(*seq).map_err(|error| error.to_string())
        };
        if let Err(error) = &result {
            tracing::error!(queue = queue.name(), %error, "journal commit failed");
        }
        failed.push(result.is_err());
    }
    failed
}
