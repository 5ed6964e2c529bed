//! The three wire protocols the tool speaks, so the same work runs against every peer:
//!
//! * `kestrel`: Kestrel's memcache queue protocol (lanner). `set q 0 0 N` enqueues, `get q`
//!   dequeues, `get q/t=500` blocks, `get q/open` ... `get q/close/open` ... `get q/close` is a
//!   reliable read.
//! * `redis`: Redis lists over RESP2. `LPUSH q v` enqueues, `RPOP q` dequeues (FIFO),
//!   `BRPOP q 0.5` blocks, and a reliable read is `BLMOVE q q:proc:<c> RIGHT LEFT 0.5` followed
//!   by `LREM q:proc:<c> 1 v` once the item was processed.
//! * `memcached`: a cache, not a queue. "Produce" is a `set` of a distinct key per message
//!   (`<q>:<producer>:<seq>`) and "consume" a `get` of each of those keys; there are no blocking
//!   or reliable reads.
//!
//! Encoding appends to a `Vec<u8>`; parsing is sans-I/O: [`parse_reply`] looks at buffered bytes
//! and returns a reply and how many bytes it took, or `None` when the reply is incomplete.

use std::io::Write as _;
use std::ops::Range;

use clap::ValueEnum;

/// A wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Kestrel,
    Redis,
    Memcached,
}

/// One server reply, with any value as a range of the parsed buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `STORED` (memcache).
    Stored,
    /// An item: `VALUE ... END`, a RESP bulk string, or the last bulk of a RESP array (BRPOP).
    Value(Range<usize>),
    /// Nothing to take: `END`, `$-1`, `*-1`.
    Empty,
    /// A RESP integer (`LPUSH`, `LREM`).
    Integer(i64),
    /// Any other success line: `+OK`, `+PONG`, `VERSION x`.
    Simple,
    /// An error reply, as sent: `ERROR`, `CLIENT_ERROR ..`, `SERVER_ERROR ..`, `NOT_STORED`, `-ERR ..`.
    Error(String),
}

/// Bytes that are not a reply of the protocol: the stream cannot be trusted any more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected reply from the server: {0:?}")]
pub struct Garbled(pub String);

/// Parses one reply at the start of `buf`. `Ok(None)`: more bytes are needed.
pub fn parse_reply(proto: Proto, buf: &[u8]) -> Result<Option<(Reply, usize)>, Garbled> {
    match proto {
        Proto::Kestrel | Proto::Memcached => parse_memcache(buf),
        Proto::Redis => parse_resp(buf, 0),
    }
}

fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|pair| pair == b"\r\n")
        .map(|at| from + at)
}

fn garbled(bytes: &[u8]) -> Garbled {
    let shown = &bytes[..bytes.len().min(80)];
    Garbled(String::from_utf8_lossy(shown).into_owned())
}

fn parse_memcache(buf: &[u8]) -> Result<Option<(Reply, usize)>, Garbled> {
    let Some(end) = line_end(buf, 0) else {
        return Ok(None);
    };
    let line = &buf[..end];
    let after = end + 2;
    let reply = match line {
        b"STORED" => Reply::Stored,
        b"END" => Reply::Empty,
        _ if line.starts_with(b"VALUE ") => {
            let length = line
                .split(|&byte| byte == b' ')
                .nth(3)
                .and_then(|field| std::str::from_utf8(field).ok())
                .and_then(|field| field.parse::<usize>().ok())
                .ok_or_else(|| garbled(line))?;
            let data = after..after + length;
            let trailer = data.end..data.end + 7;
            let Some(tail) = buf.get(trailer.clone()) else {
                return Ok(None);
            };
            if tail != b"\r\nEND\r\n" {
                return Err(garbled(&buf[data.end..]));
            }
            return Ok(Some((Reply::Value(data), trailer.end)));
        }
        _ if line.starts_with(b"VERSION ") => Reply::Simple,
        _ if line == b"ERROR"
            || line == b"NOT_STORED"
            || line.starts_with(b"CLIENT_ERROR")
            || line.starts_with(b"SERVER_ERROR") =>
        {
            Reply::Error(String::from_utf8_lossy(line).into_owned())
        }
        _ => return Err(garbled(line)),
    };
    Ok(Some((reply, after)))
}

/// Parses one RESP2 reply starting at `at`; consumed counts from the start of `buf`.
fn parse_resp(buf: &[u8], at: usize) -> Result<Option<(Reply, usize)>, Garbled> {
    let Some(end) = line_end(buf, at) else {
        return Ok(None);
    };
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let text = &buf[at + 1..end];
    let after = end + 2;
    let number = || {
        std::str::from_utf8(text)
            .ok()
            .and_then(|text| text.parse::<i64>().ok())
            .ok_or_else(|| garbled(&buf[at..end]))
    };
    let reply = match kind {
        b'+' => Reply::Simple,
        b'-' => Reply::Error(String::from_utf8_lossy(text).into_owned()),
        b':' => Reply::Integer(number()?),
        b'$' => {
            let Ok(length) = usize::try_from(number()?) else {
                return Ok(Some((Reply::Empty, after)));
            };
            let data = after..after + length;
            let Some(tail) = buf.get(data.end..data.end + 2) else {
                return Ok(None);
            };
            if tail != b"\r\n" {
                return Err(garbled(&buf[data.end..]));
            }
            return Ok(Some((Reply::Value(data.clone()), data.end + 2)));
        }
        b'*' => {
            let Ok(count) = usize::try_from(number()?) else {
                return Ok(Some((Reply::Empty, after)));
            };
            // Arrays here are BRPOP's [key, value]: keep the last element.
            let mut last = Reply::Empty;
            let mut next = after;
            for _ in 0..count {
                let Some((element, consumed)) = parse_resp(buf, next)? else {
                    return Ok(None);
                };
                last = element;
                next = consumed;
            }
            return Ok(Some((last, next)));
        }
        _ => return Err(garbled(&buf[at..end])),
    };
    Ok(Some((reply, after)))
}

/// Builds requests of one protocol for one queue (or, for memcached, key prefix).
#[derive(Debug, Clone)]
pub struct Requests {
    pub proto: Proto,
    pub queue: String,
}

impl Requests {
    /// Enqueue (memcached: store under the key of `producer`/`seq`): appends the header of a put
    /// whose `size`-byte payload the caller appends next, followed by [`Requests::put_end`], so
    /// a producer writes its payload straight into the request buffer.
    pub fn put_start(&self, producer: u32, seq: u64, size: usize, out: &mut Vec<u8>) {
        match self.proto {
            Proto::Kestrel => write!(out, "set {} 0 0 {size}\r\n", self.queue).expect("vec"),
            Proto::Memcached => {
                write!(out, "set {}:{producer}:{seq} 0 0 {size}\r\n", self.queue).expect("vec")
            }
            Proto::Redis => {
                out.extend_from_slice(b"*3\r\n$5\r\nLPUSH\r\n");
                bulk(out, self.queue.as_bytes());
                write!(out, "${size}\r\n").expect("vec");
            }
        }
    }

    /// Ends a put begun with [`Requests::put_start`].
    pub fn put_end(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\r\n");
    }

    /// Dequeue one item without waiting (memcached: get the key of `producer`/`seq`).
    pub fn take(&self, producer: u32, seq: u64, out: &mut Vec<u8>) {
        match self.proto {
            Proto::Kestrel => write!(out, "get {}\r\n", self.queue).expect("vec"),
            Proto::Memcached => {
                write!(out, "get {}:{producer}:{seq}\r\n", self.queue).expect("vec");
            }
            Proto::Redis => resp(out, &[b"RPOP", self.queue.as_bytes()]),
        }
    }

    /// Dequeue one item, waiting up to `timeout_ms` for one to arrive.
    pub fn take_blocking(&self, timeout_ms: u32, out: &mut Vec<u8>) {
        match self.proto {
            Proto::Kestrel | Proto::Memcached => {
                write!(out, "get {}/t={timeout_ms}\r\n", self.queue).expect("vec");
            }
            Proto::Redis => {
                let seconds = seconds(timeout_ms);
                resp(out, &[b"BRPOP", self.queue.as_bytes(), seconds.as_bytes()]);
            }
        }
    }

    /// Kestrel reliable read step: confirm the previous open read (if `close`) and open the next.
    /// Redis: `BLMOVE` the next item into this consumer's processing list.
    pub fn take_open(&self, consumer: u32, close: bool, timeout_ms: u32, out: &mut Vec<u8>) {
        match self.proto {
            Proto::Kestrel | Proto::Memcached => {
                let close = if close { "/close" } else { "" };
                write!(out, "get {}{close}/open\r\n", self.queue).expect("vec");
            }
            Proto::Redis => {
                let processing = self.processing_list(consumer);
                let seconds = seconds(timeout_ms);
                resp(
                    out,
                    &[
                        b"BLMOVE",
                        self.queue.as_bytes(),
                        processing.as_bytes(),
                        b"RIGHT",
                        b"LEFT",
                        seconds.as_bytes(),
                    ],
                );
            }
        }
    }

    /// Confirms a processed item. Kestrel: `get q/close` (confirms the oldest open read; used
    /// once at the end, since `/close/open` confirms as it goes). Redis: `LREM` of that value
    /// from the consumer's processing list.
    pub fn confirm(&self, consumer: u32, value: &[u8], out: &mut Vec<u8>) {
        match self.proto {
            Proto::Kestrel | Proto::Memcached => {
                write!(out, "get {}/close\r\n", self.queue).expect("vec");
            }
            Proto::Redis => {
                let processing = self.processing_list(consumer);
                resp(out, &[b"LREM", processing.as_bytes(), b"1", value]);
            }
        }
    }

    /// Looks at the head item without taking it (restart readiness).
    pub fn peek(&self, out: &mut Vec<u8>) {
        match self.proto {
            Proto::Kestrel | Proto::Memcached => {
                write!(out, "get {}/peek\r\n", self.queue).expect("vec");
            }
            Proto::Redis => resp(out, &[b"LINDEX", self.queue.as_bytes(), b"-1"]),
        }
    }

    /// A harmless request that every server answers (`version` / `PING`).
    pub fn hello(&self, out: &mut Vec<u8>) {
        match self.proto {
            Proto::Kestrel | Proto::Memcached => out.extend_from_slice(b"version\r\n"),
            Proto::Redis => resp(out, &[b"PING"]),
        }
    }

    fn processing_list(&self, consumer: u32) -> String {
        format!("{}:proc:{consumer}", self.queue)
    }
}

fn seconds(timeout_ms: u32) -> String {
    format!("{}.{:03}", timeout_ms / 1000, timeout_ms % 1000)
}

/// Appends a RESP2 command (an array of bulk strings).
fn resp(out: &mut Vec<u8>, args: &[&[u8]]) {
    write!(out, "*{}\r\n", args.len()).expect("vec");
    for arg in args {
        bulk(out, arg);
    }
}

fn bulk(out: &mut Vec<u8>, arg: &[u8]) {
    write!(out, "${}\r\n", arg.len()).expect("vec");
    out.extend_from_slice(arg);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(requests: &Requests, producer: u32, seq: u64, payload: &[u8], out: &mut Vec<u8>) {
        requests.put_start(producer, seq, payload.len(), out);
        out.extend_from_slice(payload);
        requests.put_end(out);
    }

    fn all(proto: Proto, mut buf: &[u8]) -> Vec<(Reply, Vec<u8>)> {
        let mut replies = Vec::new();
        while let Some((reply, consumed)) = parse_reply(proto, buf).expect("valid") {
            let data = match &reply {
                Reply::Value(range) => buf[range.clone()].to_vec(),
                _ => Vec::new(),
            };
            replies.push((reply, data));
            buf = &buf[consumed..];
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        replies
    }

    #[test]
    fn parses_memcache_replies() {
        let wire = b"STORED\r\nVALUE q 0 5\r\nab\r\nc\r\nEND\r\nEND\r\nVERSION 1.0\r\nSERVER_ERROR full\r\nNOT_STORED\r\n";
        let kinds: Vec<_> = all(Proto::Kestrel, wire)
            .into_iter()
            .map(|(reply, data)| match reply {
                Reply::Value(_) => format!("value {}", String::from_utf8_lossy(&data)),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "Stored",
                "value ab\r\nc",
                "Empty",
                "Simple",
                "Error(\"SERVER_ERROR full\")",
                "Error(\"NOT_STORED\")"
            ]
        );
    }

    #[test]
    fn memcached_value_with_cas_field() {
        let wire = b"VALUE k:1:2 0 3 99\r\nxyz\r\nEND\r\n";
        let replies = all(Proto::Memcached, wire);
        assert_eq!(replies[0].1, b"xyz");
    }

    #[test]
    fn incomplete_memcache_replies_wait_for_more() {
        let wire = b"VALUE q 0 5\r\nhello\r\nEND\r\n";
        for cut in 0..wire.len() {
            assert_eq!(
                parse_reply(Proto::Kestrel, &wire[..cut]),
                Ok(None),
                "cut {cut}"
            );
        }
        assert!(parse_reply(Proto::Kestrel, b"VALUE q 0 2\r\nhello\r\nEND\r\n").is_err());
        assert!(parse_reply(Proto::Kestrel, b"WHAT\r\n").is_err());
    }

    #[test]
    fn parses_resp_replies() {
        let wire = b":17\r\n$3\r\nabc\r\n$-1\r\n*-1\r\n*2\r\n$1\r\nq\r\n$2\r\nhi\r\n+PONG\r\n-LOADING busy\r\n";
        let replies = all(Proto::Redis, wire);
        assert_eq!(replies[0].0, Reply::Integer(17));
        assert_eq!(replies[1].1, b"abc");
        assert_eq!(replies[2].0, Reply::Empty);
        assert_eq!(replies[3].0, Reply::Empty);
        assert_eq!(replies[4].1, b"hi");
        assert_eq!(replies[5].0, Reply::Simple);
        assert_eq!(replies[6].0, Reply::Error("LOADING busy".into()));
    }

    #[test]
    fn incomplete_resp_replies_wait_for_more() {
        let wire = b"*2\r\n$1\r\nq\r\n$4\r\n\r\n\r\n\r\n";
        for cut in 0..wire.len() {
            assert_eq!(
                parse_reply(Proto::Redis, &wire[..cut]),
                Ok(None),
                "cut {cut}"
            );
        }
        let (reply, consumed) = parse_reply(Proto::Redis, wire).unwrap().unwrap();
        assert_eq!(consumed, wire.len());
        assert_eq!(
            &wire[match reply {
                Reply::Value(range) => range,
                other => panic!("{other:?}"),
            }],
            b"\r\n\r\n"
        );
        assert!(parse_reply(Proto::Redis, b"?\r\n").is_err());
    }

    #[test]
    fn encodes_requests() {
        let kestrel = Requests {
            proto: Proto::Kestrel,
            queue: "q".into(),
        };
        let redis = Requests {
            proto: Proto::Redis,
            queue: "q".into(),
        };
        let memcached = Requests {
            proto: Proto::Memcached,
            queue: "q".into(),
        };
        let mut out = Vec::new();
        put(&kestrel, 0, 0, b"ab", &mut out);
        kestrel.take(0, 0, &mut out);
        kestrel.take_blocking(500, &mut out);
        kestrel.take_open(0, false, 500, &mut out);
        kestrel.take_open(0, true, 500, &mut out);
        kestrel.confirm(0, b"", &mut out);
        kestrel.peek(&mut out);
        assert_eq!(
            out,
            b"set q 0 0 2\r\nab\r\nget q\r\nget q/t=500\r\nget q/open\r\nget q/close/open\r\nget q/close\r\nget q/peek\r\n"
        );
        out.clear();
        put(&redis, 0, 0, b"ab", &mut out);
        redis.take_blocking(1500, &mut out);
        redis.take_open(3, true, 500, &mut out);
        redis.confirm(3, b"ab", &mut out);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "*3\r\n$5\r\nLPUSH\r\n$1\r\nq\r\n$2\r\nab\r\n\
             *3\r\n$5\r\nBRPOP\r\n$1\r\nq\r\n$5\r\n1.500\r\n\
             *6\r\n$6\r\nBLMOVE\r\n$1\r\nq\r\n$8\r\nq:proc:3\r\n$5\r\nRIGHT\r\n$4\r\nLEFT\r\n$5\r\n0.500\r\n\
             *4\r\n$4\r\nLREM\r\n$8\r\nq:proc:3\r\n$1\r\n1\r\n$2\r\nab\r\n"
        );
        out.clear();
        put(&memcached, 2, 9, b"ab", &mut out);
        memcached.take(2, 9, &mut out);
        assert_eq!(out, b"set q:2:9 0 0 2\r\nab\r\nget q:2:9\r\n");
    }
}
