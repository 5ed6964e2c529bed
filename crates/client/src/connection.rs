//! One TCP connection to one server: sends requests, reads and checks their replies, and
//! keeps track of whether it can be reused.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::command::{self, GetOptions};
use crate::config::{Credentials, Settings};
use crate::error::{Error, Result};
use crate::health::Health;
use crate::response::{self, AdminReply, Reply};

/// The key of the authentication `set`; servers that ask for credentials ignore it.
const AUTHENTICATION_KEY: &str = "auth";

/// How much longer than the response timeout a login may take: the server answers a wrong
/// password only after its `failure_delay` (1 s by default), and a password check may wait
/// for a free Argon2 slot first. A wrong password must come back as a refused login, not as
/// a timeout that would mark the server down.
const LOGIN_ALLOWANCE: Duration = Duration::from_secs(10);

/// What a server that wants credentials answers a connection that has not logged in: to a
/// `set` (which it takes for a login attempt) and to every other command.
const NOT_LOGGED_IN: [&str; 4] = [
    "unauthenticated",
    "bad authentication token format",
    "authentication failure",
    "authentication request too long",
];

/// Pipelined `set`s are written in pieces of about this size while replies are read.
const WRITE_CHUNK: usize = 64 * 1024;

/// A connection and its place in the request/reply sequence.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: TcpStream,
    read_buf: BytesMut,
    write_buf: Vec<u8>,
    server: Arc<str>,
    health: Arc<Health>,
    response_timeout: Duration,
    /// The server's health generation when this connection was made.
    generation: u64,
    /// Reads opened here and not yet confirmed or aborted (they die with the connection).
    open_reads: usize,
    /// False while a request is in flight, and for good once one failed or its future was
    /// dropped half-way: then the position in the reply stream is unknown.
    clean: bool,
}

impl Connection {
    /// Connects to `server`, reporting the outcome to its health, and logs in when the
    /// settings hold credentials and the server asks for them.
    pub(crate) async fn connect(
        server: Arc<str>,
        health: Arc<Health>,
        settings: &Settings,
    ) -> Result<Connection> {
        let generation = health.generation();
        let attempt = tokio::time::timeout(settings.connect_timeout, TcpStream::connect(&*server));
        let stream = match attempt.await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => return Err(connect_failed(&server, &health, source)),
            Err(_) => {
                let source = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
                return Err(connect_failed(&server, &health, source));
            }
        };
        // Requests are small and latency-bound; failing to set the option only costs speed.
        let _ = stream.set_nodelay(true);
        let mut connection = Connection {
            stream,
            read_buf: BytesMut::with_capacity(16 * 1024),
            write_buf: Vec::with_capacity(1024),
            server,
            health,
            response_timeout: settings.response_timeout,
            generation,
            open_reads: 0,
            clean: true,
        };
        if let Some(credentials) = &settings.credentials {
            connection.log_in(credentials).await?;
        }
        Ok(connection)
    }

    /// Authenticates if the server asks for it. A `version` probe comes first because a
    /// server without users would take the authentication `set` for an item and store the
    /// password in a queue: only `CLIENT_ERROR unauthenticated` is answered with the
    /// credentials, and a version line means no login is needed.
    async fn log_in(&mut self, credentials: &Credentials) -> Result<()> {
        match self.admin("version", AdminReply::Line).await {
            Ok(_) => return Ok(()),
            Err(Error::Unauthenticated { .. }) => {}
            Err(error) => return Err(error),
        }
        self.write_buf.clear();
        command::set(
            &mut self.write_buf,
            AUTHENTICATION_KEY,
            &credentials.token(),
        );
        let reply = self.exchange(LOGIN_ALLOWANCE).await;
        // The buffer is part of the connection's `Debug` output: the password must not stay.
        self.write_buf.clear();
        match reply? {
            (Reply::Stored, _) => self.done(()),
            (Reply::ClientError(message), _) => {
                self.health.succeeded();
                Err(Error::AuthenticationFailed {
                    server: self.server.to_string(),
                    user: credentials.user.clone(),
                    message,
                })
            }
            (other, _) => Err(self.unexpected(other, "the authentication set")),
        }
    }

    /// Whether the pool may hand this connection to someone else: no request half-done, no
    /// open read that belongs to the current holder, and no failure of the server since it
    /// was made. An idle connection the server has closed is not reusable either.
    pub(crate) fn is_reusable(&self) -> bool {
        self.clean
            && self.open_reads == 0
            && self.generation == self.health.generation()
            && !self.closed_by_peer()
    }

    /// Reads opened on this connection and not yet closed.
    pub(crate) fn open_reads(&self) -> usize {
        self.open_reads
    }

    /// `set`: stores one item.
    pub(crate) async fn set(&mut self, queue: &str, data: &[u8]) -> Result<()> {
        self.write_buf.clear();
        command::set(&mut self.write_buf, queue, data);
        match self.exchange(Duration::ZERO).await? {
            (Reply::Stored, _) => self.done(()),
            (Reply::NotStored, _) => self.not_stored(vec![0]),
            (other, _) => Err(self.unexpected(other, "set")),
        }
    }

    /// Pipelined `set`s: writes every item while reading the replies as they come, so a
    /// batch costs about one round trip.
    pub(crate) async fn set_many(&mut self, queue: &str, items: &[Bytes]) -> Result<()> {
        self.clean = false;
        let wait = self.response_timeout;
        let server = Arc::clone(&self.server);
        let (mut reader, mut writer) = self.stream.split();
        let read_buf = &mut self.read_buf;
        let write = async {
            let mut chunk = Vec::with_capacity(WRITE_CHUNK);
            for (index, item) in items.iter().enumerate() {
                command::set(&mut chunk, queue, item);
                if chunk.len() >= WRITE_CHUNK || index + 1 == items.len() {
                    // A failed write also ends the reads (end of stream or their timeout),
                    // which then report what the server said before it closed.
                    if !matches!(
                        timed(wait, &server, writer.write_all(&chunk)).await,
                        Ok(Ok(()))
                    ) {
                        return;
                    }
                    chunk.clear();
                }
            }
        };
        let read = async {
            let mut rejected = Vec::new();
            for index in 0..items.len() {
                let reply = read_reply(&mut reader, read_buf, wait, &server).await;
                match reply.map_err(Stop::Transport)? {
                    (Reply::Stored, _) => {}
                    (Reply::NotStored, _) => rejected.push(index),
                    // The server has usually closed the connection; the writer is dropped.
                    (other, _) => return Err(Stop::Reply(other)),
                }
            }
            Ok(rejected)
        };
        // The replies decide the outcome; the writer runs alongside until they are in.
        let outcome = {
            tokio::pin!(write, read);
            let mut writing = true;
            loop {
                tokio::select! {
                    () = &mut write, if writing => writing = false,
                    outcome = &mut read => break outcome,
                }
            }
        };
        match outcome {
            Ok(rejected) if rejected.is_empty() => self.done(()),
            Ok(rejected) => self.not_stored(rejected),
            Err(Stop::Reply(reply)) => Err(self.unexpected(reply, "set")),
            Err(Stop::Transport(error)) => Err(self.failed(error)),
        }
    }

    /// `get` with options; `None` on a miss (or after `close`/`abort`, which never return an
    /// item). Keeps the count of open reads.
    pub(crate) async fn get(&mut self, queue: &str, options: GetOptions) -> Result<Option<Bytes>> {
        let key = options.key(queue);
        self.write_buf.clear();
        command::get(&mut self.write_buf, &key);
        let reply = self.exchange(options.wait).await?;
        if options.close || options.abort {
            self.open_reads = self.open_reads.saturating_sub(1);
        }
        match reply {
            (Reply::End, _) => self.done(None),
            (Reply::Value { key: echoed, data }, frame) => {
                let echoed = &frame[echoed];
                if echoed != queue.as_bytes() && echoed != key.as_bytes() {
                    let message = format!(
                        "asked for {key:?}, got the item of {:?}",
                        String::from_utf8_lossy(echoed)
                    );
                    return Err(self.failed(Error::Protocol {
                        server: self.server.to_string(),
                        message,
                    }));
                }
                if options.open {
                    self.open_reads += 1;
                }
                self.done(Some(frame.slice(data)))
            }
            (other, _) => Err(self.unexpected(other, "get")),
        }
    }

    /// `monitor`: up to `max_items` items, each an open read of this connection, collected
    /// until the wait (whole seconds) is over or the count reached.
    pub(crate) async fn monitor(
        &mut self,
        queue: &str,
        wait: Duration,
        max_items: u32,
    ) -> Result<Vec<Bytes>> {
        self.write_buf.clear();
        command::monitor(&mut self.write_buf, queue, wait, max_items);
        let mut items = Vec::new();
        let mut reply = self.exchange(wait).await?;
        loop {
            match reply {
                (Reply::End, _) => return self.done(items),
                (Reply::Value { key, data }, frame) if frame[key.clone()] == *queue.as_bytes() => {
                    self.open_reads += 1;
                    items.push(frame.slice(data));
                }
                (other, _) => return Err(self.unexpected(other, "monitor")),
            }
            let server = Arc::clone(&self.server);
            let patience = self.response_timeout.saturating_add(wait);
            let next = read_reply(&mut self.stream, &mut self.read_buf, patience, &server).await;
            reply = next.map_err(|error| self.failed(error))?;
        }
    }

    /// `confirm <queue> <count>`: confirms the connection's `count` oldest open reads.
    pub(crate) async fn confirm(&mut self, queue: &str, count: usize) -> Result<()> {
        self.write_buf.clear();
        command::confirm(&mut self.write_buf, queue, count);
        match self.exchange(Duration::ZERO).await? {
            (Reply::End, _) => {
                self.open_reads = self.open_reads.saturating_sub(count);
                self.done(())
            }
            (other, _) => Err(self.unexpected(other, "confirm")),
        }
    }

    /// `flush <queue>`: removes every item.
    pub(crate) async fn flush(&mut self, queue: &str) -> Result<()> {
        self.write_buf.clear();
        command::flush(&mut self.write_buf, queue);
        match self.exchange(Duration::ZERO).await? {
            (Reply::End, _) => self.done(()),
            (other, _) => Err(self.unexpected(other, "flush")),
        }
    }

    /// `delete <queue>`: removes the queue and its journal.
    pub(crate) async fn delete(&mut self, queue: &str) -> Result<()> {
        self.write_buf.clear();
        command::delete(&mut self.write_buf, queue);
        match self.exchange(Duration::ZERO).await? {
            (Reply::Deleted, _) => self.done(()),
            (other, _) => Err(self.unexpected(other, "delete")),
        }
    }

    /// `stats`: the server's `STAT` lines in order.
    pub(crate) async fn stats(&mut self) -> Result<Vec<(String, String)>> {
        self.write_buf.clear();
        command::stats(&mut self.write_buf);
        match self.exchange(Duration::ZERO).await? {
            (Reply::Stats(stats), _) => self.done(stats),
            (Reply::End, _) => self.done(Vec::new()),
            (other, _) => Err(self.unexpected(other, "stats")),
        }
    }

    /// A raw admin command line (without its line end) and its reply lines.
    pub(crate) async fn admin(&mut self, command: &str, shape: AdminReply) -> Result<Vec<String>> {
        self.write_buf.clear();
        command::raw(&mut self.write_buf, command);
        self.clean = false;
        let server = self.send_write_buf().await?;
        loop {
            match response::parse_admin(&self.read_buf, shape) {
                Ok(Some((lines, used))) => {
                    let _ = self.read_buf.split_to(used);
                    return match lines {
                        Ok(lines) => self.done(lines),
                        Err(reply) => Err(self.unexpected(reply, command)),
                    };
                }
                Ok(None) => {}
                Err(error) => {
                    let error = Error::Protocol {
                        server: server.to_string(),
                        message: error.0,
                    };
                    return Err(self.failed(error));
                }
            }
            if let Err(error) = self.read_more(&server).await {
                return Err(self.failed(error));
            }
        }
    }

    /// Writes `write_buf` within the response timeout; returns the server's name for the
    /// reply that follows.
    async fn send_write_buf(&mut self) -> Result<Arc<str>> {
        let server = Arc::clone(&self.server);
        let written = timed(
            self.response_timeout,
            &server,
            self.stream.write_all(&self.write_buf),
        )
        .await
        .and_then(|result| result.map_err(|source| lost(&server, source)));
        match written {
            Ok(()) => Ok(server),
            Err(error) => Err(self.failed(error)),
        }
    }

    /// Reads whatever the server sends next into `read_buf`, within the response timeout.
    async fn read_more(&mut self, server: &Arc<str>) -> Result<()> {
        if self.read_buf.capacity() - self.read_buf.len() < 4096 {
            self.read_buf.reserve(16 * 1024);
        }
        match timed(
            self.response_timeout,
            server,
            self.stream.read_buf(&mut self.read_buf),
        )
        .await?
        {
            Ok(0) => Err(lost(
                server,
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ),
            )),
            Ok(_) => Ok(()),
            Err(source) => Err(lost(server, source)),
        }
    }

    /// Sends `write_buf` and reads one reply. The reply may take `extra_wait` (a blocking
    /// read's own wait) on top of the response timeout.
    async fn exchange(&mut self, extra_wait: Duration) -> Result<(Reply, Bytes)> {
        self.clean = false;
        let server = self.send_write_buf().await?;
        let wait = self.response_timeout.saturating_add(extra_wait);
        read_reply(&mut self.stream, &mut self.read_buf, wait, &server)
            .await
            .map_err(|error| self.failed(error))
    }

    /// A request completed normally: the connection is reusable again and the server is up.
    fn done<T>(&mut self, value: T) -> Result<T> {
        self.clean = true;
        self.health.succeeded();
        Ok(value)
    }

    /// Some `set`s were answered `NOT_STORED`: the server is fine, the request is complete.
    fn not_stored(&mut self, rejected: Vec<usize>) -> Result<()> {
        self.done(())?;
        Err(Error::NotStored {
            server: self.server.to_string(),
            rejected,
        })
    }

    /// A transport failure: the connection is finished and the server marked down.
    fn failed(&mut self, error: Error) -> Error {
        self.clean = false;
        self.health.failed();
        error
    }

    /// The reply is an error line, or does not fit the request. An error line shows the
    /// server is up, but Kestrel closes the connection after most of them, so it is not reused.
    fn unexpected(&mut self, reply: Reply, request: &str) -> Error {
        self.clean = false;
        let server = self.server.to_string();
        let answered = |error| {
            self.health.succeeded();
            error
        };
        match reply {
            Reply::ClientError(message) if NOT_LOGGED_IN.contains(&message.as_str()) => {
                answered(Error::Unauthenticated { server })
            }
            Reply::ClientError(message) => answered(Error::ClientError { server, message }),
            Reply::ServerError(message) => answered(Error::ServerError { server, message }),
            Reply::Error => answered(Error::Refused { server }),
            other => self.failed(Error::Protocol {
                server,
                message: format!("unexpected reply to {request}: {other:?}"),
            }),
        }
    }

    /// True if an idle connection has already seen the server close it (or unexpected bytes).
    fn closed_by_peer(&self) -> bool {
        let mut probe = [0u8; 1];
        match self.stream.try_read(&mut probe) {
            Err(error) => error.kind() != io::ErrorKind::WouldBlock,
            Ok(_) => true,
        }
    }
}

/// Why a pipelined batch stopped early.
enum Stop {
    Transport(Error),
    Reply(Reply),
}

/// Reads until `buf` holds one whole reply; returns it and the bytes of its frame.
async fn read_reply<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    wait: Duration,
    server: &Arc<str>,
) -> Result<(Reply, Bytes)> {
    loop {
        match response::parse(buf) {
            Ok(Some((reply, used))) => return Ok((reply, buf.split_to(used).freeze())),
            Ok(None) => {}
            Err(error) => {
                return Err(Error::Protocol {
                    server: server.to_string(),
                    message: error.0,
                });
            }
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        let read = timed(wait, server, reader.read_buf(buf)).await?;
        match read {
            Ok(0) => {
                let source = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                );
                return Err(lost(server, source));
            }
            Ok(_) => {}
            Err(source) => return Err(lost(server, source)),
        }
    }
}

/// Runs one I/O step with a time limit.
async fn timed<F: Future>(wait: Duration, server: &Arc<str>, step: F) -> Result<F::Output> {
    tokio::time::timeout(wait, step)
        .await
        .map_err(|_| Error::Timeout {
            server: server.to_string(),
            after: wait,
        })
}

fn lost(server: &Arc<str>, source: io::Error) -> Error {
    Error::ConnectionLost {
        server: server.to_string(),
        source,
    }
}

fn connect_failed(server: &Arc<str>, health: &Health, source: io::Error) -> Error {
    health.failed();
    Error::Connect {
        server: server.to_string(),
        source,
    }
}
