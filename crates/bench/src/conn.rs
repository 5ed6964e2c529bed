//! One blocking client connection: writes whole batches, parses replies out of a read buffer
//! without copying values.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Range;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::proto::{Proto, Reply, parse_reply};

/// No single read waits longer than this: every run stays bounded even if a server hangs.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const BUFFER: usize = 256 * 1024;

/// A client connection speaking one protocol.
pub struct Conn {
    stream: TcpStream,
    proto: Proto,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Conn {
    /// Connects with `TCP_NODELAY` and bounded timeouts.
    pub fn connect(addr: SocketAddr, proto: Proto) -> Result<Self> {
        Self::connect_within(addr, proto, CONNECT_TIMEOUT, READ_TIMEOUT)
    }

    /// Connects with the given connect and read/write timeouts.
    pub fn connect_within(
        addr: SocketAddr,
        proto: Proto,
        connect: Duration,
        read: Duration,
    ) -> Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, connect)
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(read))?;
        stream.set_write_timeout(Some(read))?;
        Ok(Self {
            stream,
            proto,
            buf: vec![0; BUFFER],
            start: 0,
            end: 0,
        })
    }

    /// Sends bytes (a whole batch of requests) with one `write_all`.
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).context("write to server")
    }

    /// The next reply. A `Reply::Value` range stays valid for [`Conn::data`] until the next call.
    pub fn reply(&mut self) -> Result<Reply> {
        loop {
            if let Some((reply, consumed)) =
                parse_reply(self.proto, &self.buf[self.start..self.end])?
            {
                let base = self.start;
                self.start += consumed;
                return Ok(match reply {
                    Reply::Value(range) => Reply::Value(base + range.start..base + range.end),
                    other => other,
                });
            }
            self.fill()?;
        }
    }

    /// The bytes of a value returned by the last [`Conn::reply`].
    pub fn data(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Reads more bytes, first moving the unparsed tail to the front (or growing the buffer
    /// when one reply is larger than it).
    fn fill(&mut self) -> Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let read = self
            .stream
            .read(&mut self.buf[self.end..])
            .context("read from server")?;
        if read == 0 {
            bail!("server closed the connection");
        }
        self.end += read;
        Ok(())
    }
}
