//! What both protocols' connections do with their socket: read with the idle limit, wait for an item while watching the socket, and write replies only after the journal
//! records they depend on are committed.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use lanner_queue::{Queue, TakeMode, TakeOutcome};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{debug, warn};

use crate::output::{CommitFailure, Output, Reply};
use crate::request_memory::Charge;
use crate::request_metrics::ErrorKind;
use crate::shared::Shared;
use crate::stats::add;

/// The read buffer of a connection whose reads filled a smaller one.
const READ_BUFFER_CAPACITY: usize = 16 * 1024;
/// The read buffer a connection starts with, kept until a read fills it: requests that fit
/// are read into a small allocation.
const INITIAL_READ_BUFFER_CAPACITY: usize = 512;
/// How long the refusal of a connection over `max_buffered_request_bytes` may take to send.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether the connection goes on after a step.
pub enum Flow {
    Continue,
    Stop,
}

/// What a connection reads requests from and writes replies to: a TCP stream, or a TLS
/// stream over one.
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> ClientStream for S {}

/// How long a closing connection may take to say goodbye (a TLS close_notify).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// A client's stream and the bytes read from it that no request has consumed yet.
pub struct ClientSocket<S> {
    stream: S,
    /// Bytes received and not yet consumed by a request.
    pub buf: BytesMut,
    shared: Arc<Shared>,
    /// What `buf` holds counts against `max_buffered_request_bytes`.
    charge: Charge,
    /// How much spare room each read gets: grows to [`READ_BUFFER_CAPACITY`] once a read
    /// fills what it had, so pipelining clients read in few syscalls.
    read_room: usize,
}

impl<S: ClientStream> ClientSocket<S> {
    /// Wraps an accepted stream.
    pub fn new(stream: S, shared: Arc<Shared>) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
            charge: Charge::new(Arc::clone(&shared.request_memory)),
            shared,
            read_room: INITIAL_READ_BUFFER_CAPACITY,
        }
    }

    /// Reads more bytes; false when the client closed, stayed idle longer than
    /// `client_timeout`, the server is shutting down, or the bytes would take the server over
    /// `max_buffered_request_bytes` (answered with `R`'s refusal).
    pub async fn read_more<R: Reply>(&mut self) -> io::Result<bool> {
        if self.shared.shutdown.is_cancelled() || !self.charged::<R>().await {
            return Ok(false);
        }
        let idle_limit = self.shared.server.client_timeout;
        let read = tokio::select! {
            read = read_some(&mut self.stream, &mut self.buf, &mut self.read_room) => read?,
            () = self.shared.shutdown.cancelled() => return Ok(false),
            () = idle(idle_limit) => {
                debug!("closing a connection idle for longer than client_timeout");
                return Ok(false);
            }
        };
        // Charged before counted: a client that sees `bytes_read` cover its bytes finds them
        // held against `max_buffered_request_bytes`.
        let charged = read > 0 && self.charged::<R>().await;
        add(&self.shared.stats.bytes_read, read as u64);
        Ok(charged)
    }

    /// Charges what `buf` holds against `max_buffered_request_bytes` (giving back what
    /// requests consumed); false, after telling the client, when that would exceed it.
    async fn charged<R: Reply>(&mut self) -> bool {
        if self.charge.track(self.buf.len()).is_ok() {
            return true;
        }
        warn!(
            buffered = self.buf.len(),
            "closing a connection: max_buffered_request_bytes reached"
        );
        self.buf.clear();
        // Nothing is buffered any more, so this gives the whole charge back and cannot fail.
        let _ = self.charge.track(0);
        let mut refusal = BytesMut::new();
        R::out_of_request_memory().encode(&mut refusal);
        // The connection closes either way; a client that does not read misses the line.
        let refuse = async {
            self.stream.write_all(&refusal).await?;
            self.stream.flush().await
        };
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, refuse).await;
        false
    }

    /// Gives back the charge for bytes that requests consumed. Before a reply goes out: a
    /// client that got its answer may send the next large request at once, on another
    /// connection, and must find the memory free.
    fn give_back_consumed(&mut self) {
        // Bytes read during a blocking wait may have grown `buf` instead: a refused charge
        // changes nothing, and the next read charges them (or refuses the connection).
        let _ = self.charge.track(self.buf.len());
    }

    /// Waits up to `timeout` for an item while watching the socket, so a client that leaves
    /// stops the wait at once (taking nothing). The outcome is an item, or none when the time
    /// ran out or the queue was deleted; `None` when the connection must stop: the client left,
    /// or the server is shutting down, and then the wait is answered `on_shutdown` in `out`.
    /// Requests pipelined behind the wait stay buffered, up to one line's worth.
    pub async fn await_take<R: Reply>(
        &mut self,
        queue: &Queue,
        mode: TakeMode,
        timeout: Duration,
        out: &mut Output<R>,
        on_shutdown: &R,
    ) -> io::Result<Option<TakeOutcome>> {
        let take = tokio::time::timeout(timeout, queue.take_blocking(mode));
        tokio::pin!(take);
        loop {
            let room = self.buf.len() < self.shared.limits.max_line_len;
            tokio::select! {
                taken = &mut take => {
                    return Ok(Some(taken.unwrap_or(TakeOutcome { item: None, seq: 0 })));
                }
                read = read_some(&mut self.stream, &mut self.buf, &mut self.read_room), if room => {
                    let read = read?;
                    add(&self.shared.stats.bytes_read, read as u64);
                    if read == 0 {
                        return Ok(None);
                    }
                }
                () = self.shared.shutdown.cancelled() => {
                    out.push(on_shutdown);
                    return Ok(None);
                }
            }
        }
    }

    /// Commits the journal records the pending replies depend on, then writes the replies.
    pub async fn send<R: Reply>(&mut self, out: &mut Output<R>) -> io::Result<()> {
        self.give_back_consumed();
        if out.is_empty() {
            return Ok(());
        }
        let failed = commit(out).await;
        for _ in failed.iter().flatten() {
            self.shared.stats.requests.count_error(ErrorKind::Journal);
        }
        let bytes = out.finish(&failed);
        let written = bytes.len() as u64;
        // Flushing is free on TCP; TLS needs it to send the last record.
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        let result = match self.shared.server.client_timeout {
            // A client that reads none of its replies for that long is treated as gone.
            Some(limit) => tokio::time::timeout(limit, write)
                .await
                .unwrap_or_else(|_| {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client stopped reading replies",
                    ))
                }),
            None => write.await,
        };
        out.clear();
        add(&self.shared.stats.bytes_written, written);
        result
    }

    /// Ends the stream cleanly (for TLS: sends close_notify), giving up after a short while
    /// on a client that does not read.
    pub async fn close(&mut self) {
        // The client may be gone already; the connection ends either way.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.stream.shutdown()).await;
    }
}

/// Commits what `out` recorded without writing anything (the open reads a closing connection
/// returned), and forgets it.
pub async fn commit_and_discard<R: Reply>(out: &mut Output<R>) {
    // A failed commit is logged by `commit`; there is no reply left to turn into an error.
    commit(out).await;
    out.finish(&[]);
    out.clear();
}

/// Reads once into `buf`'s spare room, making `room` spare first; returns the bytes read (0:
/// the client closed). A read that fills the room raises it to [`READ_BUFFER_CAPACITY`].
/// While the read waits with nothing buffered, `buf` holds no allocation: an idle connection
/// keeps no read buffer, and the next read allocates one again (cheaper than the syscall).
async fn read_some<S: ClientStream>(
    stream: &mut S,
    buf: &mut BytesMut,
    room: &mut usize,
) -> io::Result<usize> {
    std::future::poll_fn(|cx| {
        buf.reserve(*room);
        let spare = buf.capacity() - buf.len();
        let polled = pin!(stream.read_buf(&mut *buf)).poll(cx);
        match polled {
            Poll::Pending => {
                if buf.is_empty() {
                    *buf = BytesMut::new();
                }
                Poll::Pending
            }
            Poll::Ready(read) => {
                if read.as_ref().is_ok_and(|&read| read == spare) {
                    *room = READ_BUFFER_CAPACITY;
                }
                Poll::Ready(read)
            }
        }
    })
    .await
}

/// Resolves after `limit`, or never when there is none.
async fn idle(limit: Option<Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}

/// Commits each queue's records; returns which commits failed. Under `sync = always` the wait
/// for the fsync is asynchronous (group commit), so it never stalls other connections.
async fn commit<R: Reply>(out: &Output<R>) -> Vec<Option<CommitFailure>> {
    let mut failed = Vec::with_capacity(out.commits().len());
    for (queue, seq) in out.commits() {
        let result = queue.commit_async(*seq).await;
        if let Err(error) = &result {
            // The journal logged the failure at error level when it first happened.
            debug!(queue = queue.name(), %error, "journal commit failed");
        }
        failed.push(result.as_ref().err().map(CommitFailure::of));
    }
    failed
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn a_waiting_read_holds_no_buffer_unless_a_request_is_partial() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let mut buf = BytesMut::new();
        let mut room = READ_BUFFER_CAPACITY;
        assert!(
            read_some(&mut server, &mut buf, &mut room)
                .now_or_never()
                .is_none()
        );
        assert_eq!(buf.capacity(), 0);

        client.write_all(b"get q").await.unwrap();
        assert_eq!(
            read_some(&mut server, &mut buf, &mut room).await.unwrap(),
            5
        );
        assert!(
            read_some(&mut server, &mut buf, &mut room)
                .now_or_never()
                .is_none()
        );
        assert_eq!(&buf[..], b"get q");
        assert!(buf.capacity() >= READ_BUFFER_CAPACITY);

        client.write_all(b"\r\n").await.unwrap();
        assert_eq!(
            read_some(&mut server, &mut buf, &mut room).await.unwrap(),
            2
        );
        assert_eq!(&buf[..], b"get q\r\n");
    }

    #[tokio::test]
    async fn reads_start_small_and_grow_once_a_read_fills_the_buffer() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let mut buf = BytesMut::new();
        let mut room = INITIAL_READ_BUFFER_CAPACITY;
        client.write_all(b"version\r\n").await.unwrap();
        assert_eq!(
            read_some(&mut server, &mut buf, &mut room).await.unwrap(),
            9
        );
        assert_eq!(room, INITIAL_READ_BUFFER_CAPACITY);
        assert!(buf.capacity() < READ_BUFFER_CAPACITY);
        buf.clear();

        let burst = vec![b'x'; 4 * INITIAL_READ_BUFFER_CAPACITY];
        client.write_all(&burst).await.unwrap();
        let first = read_some(&mut server, &mut buf, &mut room).await.unwrap();
        assert_eq!(first, buf.capacity());
        assert_eq!(room, READ_BUFFER_CAPACITY);
        let rest = read_some(&mut server, &mut buf, &mut room).await.unwrap();
        assert_eq!(first + rest, burst.len());
        assert_eq!(&buf[..], &burst[..]);
    }
}
