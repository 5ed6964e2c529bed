//! Test harness: runs the real `lanner` binary through the shared harness (`lanner-testkit`:
//! a free loopback port, a temporary data directory, its log), and speaks raw bytes to it.

#![allow(dead_code)] // each test file uses its own subset of the harness

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::time::{Duration, Instant};

use lanner_testkit::{Lanner, Launch};

/// How long any single expected event may take before a test fails (the shared bound).
pub const PATIENCE: Duration = lanner_testkit::PATIENCE;

/// Pause between two polls of a condition (never a wait for the condition itself).
pub const POLL_INTERVAL: Duration = lanner_testkit::POLL_INTERVAL;

/// A launch of this package's own `lanner` binary.
pub fn launch() -> Launch {
    Launch::default().binary(env!("CARGO_BIN_EXE_lanner"))
}

/// A running `lanner` process (the shared harness's [`Lanner`]) and the raw-bytes clients
/// to talk to it.
pub struct Server(Lanner);

impl Deref for Server {
    type Target = Lanner;

    fn deref(&self) -> &Lanner {
        &self.0
    }
}

impl DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Lanner {
        &mut self.0
    }
}

impl Server {
    /// Starts a server with a fresh temporary data directory.
    pub fn start() -> Server {
        Server(launch().start())
    }

    /// Starts a server with a fresh data directory and this configuration text.
    pub fn start_with_config(config: &str) -> Server {
        Server(launch().config(config).start())
    }

    /// Starts a server with a fresh temporary data directory and the text protocol on a free
    /// loopback port (`--text-listen 127.0.0.1:0`).
    pub fn start_with_text() -> Server {
        Server(launch().text_listener().start())
    }

    /// Starts a server with the text protocol, a fresh data directory and this configuration.
    pub fn start_with_text_and_config(config: &str) -> Server {
        Server(launch().text_listener().config(config).start())
    }

    /// Starts a server with a fresh data directory and the admin HTTP port on a free loopback
    /// port (`--admin-listen 127.0.0.1:0`).
    pub fn start_with_admin() -> Server {
        Server(launch().admin_listener().start())
    }

    /// Starts a server with the admin HTTP port, a fresh data directory and this
    /// configuration.
    pub fn start_with_admin_and_config(config: &str) -> Server {
        Server(launch().admin_listener().config(config).start())
    }

    /// `GET path` on the admin port: the status code and the body.
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        http_get(
            self.admin_addr.expect("server started with the admin port"),
            path,
        )
    }

    /// Starts a server on `data_dir`; waits until it listens (recovery done).
    pub fn start_in(data_dir: &Path, config: Option<&Path>) -> Server {
        Server::try_start_with(data_dir, config, &[])
            .unwrap_or_else(|output| panic!("lanner did not start:\n{output}"))
    }

    /// Tries to start a server on `data_dir` and returns its log if it exits instead.
    pub fn try_start_in(data_dir: &Path) -> Result<Server, String> {
        Server::try_start_with(data_dir, None, &[])
    }

    /// Tries to start a server on `data_dir` with `config` and extra command-line `args`, and
    /// returns its log if it exits instead.
    pub fn try_start_with(
        data_dir: &Path,
        config: Option<&Path>,
        args: &[&str],
    ) -> Result<Server, String> {
        let launch = launch().data_dir(data_dir).args(args);
        let launch = match config {
            Some(config) => launch.config_file(config),
            None => launch,
        };
        launch.try_start().map(Server)
    }

    /// A new client connection.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// A new text-protocol connection; the server must have been started with the text
    /// protocol.
    pub fn text_connect(&self) -> TextClient {
        TextClient::connect(
            self.text_addr
                .expect("server started with the text protocol"),
        )
    }

    /// Kills the process and starts it again on a free port, with the same data directory and
    /// config.
    pub fn restart_after_kill(mut self) -> Server {
        self.kill();
        self.restart_on_new_port();
        self
    }
}

/// A one-shot HTTP/1.1 `GET` (`Connection: close`): the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the admin port");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {response:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status code in {head:?}"));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

/// The payload of a chunked HTTP body.
fn dechunk(mut body: &str) -> String {
    let mut payload = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").expect("chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if size == 0 {
            return payload;
        }
        payload.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

/// The bytes of `set <queue> 0 0 <len>\r\n<data>\r\n`.
pub fn set_request(queue: &str, data: &[u8]) -> Vec<u8> {
    let mut request = format!("set {queue} 0 0 {}\r\n", data.len()).into_bytes();
    request.extend_from_slice(data);
    request.extend_from_slice(b"\r\n");
    request
}

/// The bytes of a get hit: `VALUE <queue> 0 <len>\r\n<data>\r\nEND\r\n`.
pub fn value_reply(queue: &str, data: &[u8]) -> Vec<u8> {
    let mut reply = format!("VALUE {queue} 0 {}\r\n", data.len()).into_bytes();
    reply.extend_from_slice(data);
    reply.extend_from_slice(b"\r\nEND\r\n");
    reply
}

/// A raw-bytes client.
pub struct Client {
    stream: TcpStream,
    buffered: Vec<u8>,
}

impl Client {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(PATIENCE))
            .expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            buffered: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads exactly `len` bytes.
    pub fn read_exact(&mut self, len: usize) -> Vec<u8> {
        while self.buffered.len() < len {
            self.fill();
        }
        self.buffered.drain(..len).collect()
    }

    /// Reads one line including its `\r\n`.
    pub fn read_line(&mut self) -> String {
        String::from_utf8_lossy(&self.read_line_bytes()).into_owned()
    }

    /// Reads one line's exact bytes, up to and including its LF.
    pub fn read_line_bytes(&mut self) -> Vec<u8> {
        loop {
            if let Some(end) = self.buffered.iter().position(|&b| b == b'\n') {
                return self.buffered.drain(..=end).collect();
            }
            self.fill();
        }
    }

    /// Sends `request` and reads exactly the bytes of `expected` back, asserting they match.
    pub fn expect(&mut self, request: &[u8], expected: &[u8]) {
        self.send(request);
        let got = self.read_exact(expected.len());
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected),
            "reply to {:?}",
            String::from_utf8_lossy(request)
        );
    }

    /// `set` and expect `STORED`.
    pub fn set(&mut self, queue: &str, data: &[u8]) {
        self.expect(&set_request(queue, data), b"STORED\r\n");
    }

    /// Sends a get line and returns the item, or None for `END`.
    pub fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.send(format!("get {key}\r\n").as_bytes());
        self.read_item()
    }

    /// Reads a `VALUE ... END` reply or a bare `END`.
    pub fn read_item(&mut self) -> Option<Vec<u8>> {
        let line = self.read_line();
        if line == "END\r\n" {
            return None;
        }
        let len: usize = line
            .strip_prefix("VALUE ")
            .and_then(|rest| rest.trim_end().rsplit(' ').next())
            .and_then(|len| len.parse().ok())
            .unwrap_or_else(|| panic!("unexpected reply line {line:?}"));
        let data = self.read_exact(len + 2);
        assert_eq!(self.read_line(), "END\r\n");
        Some(data[..len].to_vec())
    }

    /// True once the server has closed this connection: one read (bounded by PATIENCE) sees EOF
    /// or a connection reset. False if reply bytes are still unread or arrive instead (they are
    /// kept for the next read), or if the read times out.
    pub fn is_closed(&mut self) -> bool {
        if !self.buffered.is_empty() {
            return false;
        }
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) => true,
            Ok(read) => {
                self.buffered.extend_from_slice(&chunk[..read]);
                false
            }
            Err(error) => error.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }

    /// Polls `stats` until the stat `name` reads `value` (a missing stat reads as `None`);
    /// panics after PATIENCE, naming the last value seen.
    pub fn wait_for_stat(&mut self, name: &str, value: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let seen = self.stat(name);
            if seen.as_deref() == Some(value) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "stat {name} never read {value:?}; last {seen:?}"
            );
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// The stat `name` parsed as a number, 0 if the stat is missing.
    pub fn stat_u64(&mut self, name: &str) -> u64 {
        self.stat(name).map_or(0, |value| {
            value
                .parse()
                .unwrap_or_else(|_| panic!("stat {name} = {value:?}"))
        })
    }

    /// Sends `request` (pipelined requests allowed) and asserts the server answers exactly
    /// `expected`, then closes the connection without sending anything more.
    pub fn expect_then_closed(&mut self, request: &[u8], expected: &[u8]) {
        self.expect(request, expected);
        assert!(
            self.is_closed(),
            "connection still open after reply to {:?}",
            String::from_utf8_lossy(request)
        );
    }

    /// Sends `request`, asserts the reply is exactly `expected`, then proves the connection
    /// still serves requests (a `version` round trip).
    pub fn expect_then_open(&mut self, request: &[u8], expected: &[u8]) {
        self.expect(request, expected);
        let version = format!("VERSION {}\r\n", env!("CARGO_PKG_VERSION"));
        self.expect(b"version\r\n", version.as_bytes());
    }

    /// Changes how long a read may wait before failing (PATIENCE by default).
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("read timeout");
    }

    /// Returns the `stats` reply as name/value pairs.
    pub fn stats(&mut self) -> Vec<(String, String)> {
        self.send(b"stats\r\n");
        let mut pairs = Vec::new();
        loop {
            let line = self.read_line();
            if line == "END\r\n" {
                return pairs;
            }
            let rest = line
                .strip_prefix("STAT ")
                .unwrap_or_else(|| panic!("bad stats line {line:?}"));
            let (name, value) = rest
                .trim_end_matches("\r\n")
                .split_once(' ')
                .expect("stat pair");
            pairs.push((name.to_owned(), value.to_owned()));
        }
    }

    /// One stat's value.
    pub fn stat(&mut self, name: &str) -> Option<String> {
        self.stats()
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// True if `stats` reports the queue `name` (a `queue_<name>_items` line).
    pub fn has_queue(&mut self, name: &str) -> bool {
        let wanted = format!("queue_{name}_items");
        self.stats().iter().any(|(key, _)| *key == wanted)
    }

    /// Shuts down the client's side of the connection.
    pub fn close(self) {
        drop(self.stream.shutdown(std::net::Shutdown::Both));
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 64 * 1024];
        let read = self.stream.read(&mut chunk).expect("read from lanner");
        assert!(
            read > 0,
            "connection closed by lanner; buffered {:?}",
            String::from_utf8_lossy(&self.buffered)
        );
        self.buffered.extend_from_slice(&chunk[..read]);
    }
}

/// A text-protocol client (spec a.5): LF-terminated lines, `+n`, `-error`, `:item`, `*`.
pub struct TextClient {
    client: Client,
}

impl TextClient {
    /// Connects to a text-protocol listener at `addr`.
    pub fn connect(addr: SocketAddr) -> TextClient {
        TextClient {
            client: Client::connect(addr),
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.client.send(bytes);
    }

    /// Reads one reply line's exact bytes, its LF included.
    pub fn read_line(&mut self) -> Vec<u8> {
        self.client.read_line_bytes()
    }

    /// Sends `request` and asserts the server answers exactly `expected`.
    pub fn expect(&mut self, request: &[u8], expected: &[u8]) {
        self.client.expect(request, expected);
    }

    /// Sends `request`, asserts the reply is exactly `expected`, then proves the connection
    /// still serves requests (a `version` round trip).
    pub fn expect_then_open(&mut self, request: &[u8], expected: &[u8]) {
        self.expect(request, expected);
        let version = format!(":{}\n", env!("CARGO_PKG_VERSION"));
        self.expect(b"version\n", version.as_bytes());
    }

    /// Sends `request`, asserts the reply is exactly `expected`, then that the server closed
    /// the connection.
    pub fn expect_then_closed(&mut self, request: &[u8], expected: &[u8]) {
        self.expect(request, expected);
        assert!(
            self.client.is_closed(),
            "connection still open after reply to {:?}",
            String::from_utf8_lossy(request)
        );
    }

    /// True once the server has closed this connection (see [`Client::is_closed`]).
    pub fn is_closed(&mut self) -> bool {
        self.client.is_closed()
    }

    /// `put <queue>:` with one line per item; returns the count the server answered.
    pub fn put(&mut self, queue: &str, items: &[&[u8]]) -> u64 {
        self.send(&put_request(&format!("put {queue}:"), items));
        let line = self.read_line();
        let count = line
            .strip_prefix(b"+")
            .and_then(|rest| rest.strip_suffix(b"\n"))
            .and_then(|digits| std::str::from_utf8(digits).ok()?.parse().ok());
        count.unwrap_or_else(|| panic!("put answered {:?}", String::from_utf8_lossy(&line)))
    }

    /// Sends a read request line (`get q`, `peek q 100`, ...) and returns the item, or `None`
    /// for `*`.
    pub fn read(&mut self, request: &str) -> Option<Vec<u8>> {
        self.send(format!("{request}\n").as_bytes());
        self.read_item()
    }

    /// Reads one `:<item>` or `*` reply.
    pub fn read_item(&mut self) -> Option<Vec<u8>> {
        let line = self.read_line();
        if line == b"*\n" {
            return None;
        }
        match line
            .strip_prefix(b":")
            .and_then(|rest| rest.strip_suffix(b"\n"))
        {
            Some(item) => Some(item.to_vec()),
            None => panic!("unexpected reply line {:?}", String::from_utf8_lossy(&line)),
        }
    }

    /// Shuts down the client's side of the connection.
    pub fn close(self) {
        self.client.close();
    }
}

/// The bytes of a block request: `header` (ending in `:`), one line per item, an empty line.
pub fn put_request(header: &str, items: &[&[u8]]) -> Vec<u8> {
    let mut request = format!("{header}\n").into_bytes();
    for item in items {
        request.extend_from_slice(item);
        request.push(b'\n');
    }
    request.push(b'\n');
    request
}
