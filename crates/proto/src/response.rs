//! Replies, encoded byte for byte as Kestrel 2.4 sends them (spec a.2, a.3).

use bytes::{Bytes, BytesMut};
use smol_str::SmolStr;

/// One reply. `encode` appends its exact wire bytes to a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `STORED\r\n`
    Stored,
    /// `NOT_STORED\r\n`
    NotStored,
    /// `DELETED\r\n`
    Deleted,
    /// `END\r\n`
    End,
    /// `VALUE <key> 0 <len>\r\n<data>\r\nEND\r\n`
    Value {
        /// The bare queue name (or the full key, when the server echoes it); inline when short,
        /// so a reply needs no heap allocation for it.
        key: SmolStr,
        /// The item's payload.
        data: Bytes,
    },
    /// `VALUE <key> 0 <len>\r\n<data>\r\n` without the closing END (one item of a monitor
    /// stream is `MonitorItem` followed by `End`; the stream ends with a final `End`).
    MonitorItem {
        /// The bare queue name.
        key: SmolStr,
        /// The item's payload.
        data: Bytes,
    },
    /// `ERROR\r\n`
    Error,
    /// `CLIENT_ERROR\r\n` when the reason is empty, else `CLIENT_ERROR <reason>\r\n`.
    ClientError(String),
    /// `SERVER_ERROR\r\n` when the reason is empty, else `SERVER_ERROR <reason>\r\n`.
    ServerError(String),
    /// `VERSION <version>\r\n`
    Version(String),
    /// `Flushed all queues.\r\n`
    FlushedAll,
    /// `Reloaded config.\r\n`
    Reloaded,
    /// `<n>\r\n` (flush_expired, flush_all_expired).
    Count(u64),
    /// `STAT <name> <value>\r\n` for each pair, then `END\r\n`. An empty value keeps the space.
    Stats(Vec<(String, String)>),
    /// `<line>\r\n`: a single free-form line (status names such as `UP`).
    Line(String),
    /// Raw bytes written as they are (dump_stats, dump_config bodies).
    Raw(Bytes),
}

impl Response {
    /// Appends this reply's exact wire bytes to `buf`, growing the buffer at most once.
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            Self::Stored => buf.extend_from_slice(b"STORED\r\n"),
            Self::NotStored => buf.extend_from_slice(b"NOT_STORED\r\n"),
            Self::Deleted => buf.extend_from_slice(b"DELETED\r\n"),
            Self::End => buf.extend_from_slice(END),
            Self::Value { key, data } => {
                encode_item(key, data, END.len(), buf);
                buf.extend_from_slice(END);
            }
            Self::MonitorItem { key, data } => encode_item(key, data, 0, buf),
            Self::Error => buf.extend_from_slice(b"ERROR\r\n"),
            Self::ClientError(reason) => encode_error(b"CLIENT_ERROR", reason, buf),
            Self::ServerError(reason) => encode_error(b"SERVER_ERROR", reason, buf),
            Self::Version(version) => encode_line(&[b"VERSION ", version.as_bytes()], buf),
            Self::FlushedAll => buf.extend_from_slice(b"Flushed all queues.\r\n"),
            Self::Reloaded => buf.extend_from_slice(b"Reloaded config.\r\n"),
            Self::Count(count) => encode_line(&[Decimal::new(*count).as_bytes()], buf),
            Self::Stats(pairs) => encode_stats(pairs, buf),
            Self::Line(line) => encode_line(&[line.as_bytes()], buf),
            Self::Raw(bytes) => buf.extend_from_slice(bytes),
        }
    }
}

const CRLF: &[u8] = b"\r\n";
const END: &[u8] = b"END\r\n";

/// `VALUE <key> 0 <len>\r\n<data>\r\n`, reserving `trailer` more bytes for what follows.
fn encode_item(key: &str, data: &[u8], trailer: usize, buf: &mut BytesMut) {
    let len = Decimal::new(data.len() as u64);
    let header: [&[u8]; 4] = [b"VALUE ", key.as_bytes(), b" 0 ", len.as_bytes()];
    buf.reserve(line_len(&header) + data.len() + CRLF.len() + trailer);
    encode_line(&header, buf);
    buf.extend_from_slice(data);
    buf.extend_from_slice(CRLF);
}

/// `<keyword>\r\n`, or `<keyword> <reason>\r\n` when there is a reason. A reason spanning
/// several lines (an error message from elsewhere) is folded onto one, so it cannot break the
/// framing of the replies that follow.
fn encode_error(keyword: &[u8], reason: &str, buf: &mut BytesMut) {
    let folded: Vec<&str> = reason
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    if folded.is_empty() {
        encode_line(&[keyword], buf);
    } else {
        encode_line(&[keyword, b" ", folded.join(" ").as_bytes()], buf);
    }
}

/// `STAT <name> <value>\r\n` per pair (an empty value keeps the space), then `END\r\n`.
fn encode_stats(pairs: &[(String, String)], buf: &mut BytesMut) {
    let stats_len: usize = pairs.iter().map(|pair| line_len(&stat_line(pair))).sum();
    buf.reserve(stats_len + END.len());
    for pair in pairs {
        encode_line(&stat_line(pair), buf);
    }
    buf.extend_from_slice(END);
}

/// The parts of one `STAT <name> <value>` line.
fn stat_line((name, value): &(String, String)) -> [&[u8]; 4] {
    [b"STAT ", name.as_bytes(), b" ", value.as_bytes()]
}

/// The concatenated `parts` followed by `\r\n`.
fn encode_line(parts: &[&[u8]], buf: &mut BytesMut) {
    for part in parts {
        buf.extend_from_slice(part);
    }
    buf.extend_from_slice(CRLF);
}

/// How many bytes [`encode_line`] writes for `parts`.
fn line_len(parts: &[&[u8]]) -> usize {
    parts.iter().map(|part| part.len()).sum::<usize>() + CRLF.len()
}

/// An unsigned integer formatted in decimal on the stack (`u64::MAX` has 20 digits).
struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    fn new(mut value: u64) -> Self {
        let mut digits = [b'0'; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            // `value % 10` is a single digit, so the narrowing cannot lose anything.
            digits[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                return Self { digits, start };
            }
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.digits[self.start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(response: Response) -> Vec<u8> {
        let mut buf = BytesMut::new();
        response.encode(&mut buf);
        buf.to_vec()
    }

    fn item(key: &str, data: &'static [u8]) -> (SmolStr, Bytes) {
        (key.into(), Bytes::from_static(data))
    }

    #[test]
    fn fixed_replies() {
        assert_eq!(encoded(Response::Stored), b"STORED\r\n");
        assert_eq!(encoded(Response::NotStored), b"NOT_STORED\r\n");
        assert_eq!(encoded(Response::Deleted), b"DELETED\r\n");
        assert_eq!(encoded(Response::End), b"END\r\n");
        assert_eq!(encoded(Response::Error), b"ERROR\r\n");
        assert_eq!(encoded(Response::FlushedAll), b"Flushed all queues.\r\n");
        assert_eq!(encoded(Response::Reloaded), b"Reloaded config.\r\n");
    }

    #[test]
    fn value_carries_its_own_end() {
        let (key, data) = item("jobs", b"hello");
        assert_eq!(
            encoded(Response::Value { key, data }),
            b"VALUE jobs 0 5\r\nhello\r\nEND\r\n"
        );
    }

    #[test]
    fn value_is_binary_safe_and_may_be_empty() {
        let (key, data) = item("q", b"a\r\nEND\r\n\0\xff");
        let expected = b"VALUE q 0 10\r\na\r\nEND\r\n\0\xff\r\nEND\r\n";
        assert_eq!(encoded(Response::Value { key, data }), expected);
        let (key, data) = item("q", b"");
        assert_eq!(
            encoded(Response::Value { key, data }),
            b"VALUE q 0 0\r\n\r\nEND\r\n"
        );
    }

    #[test]
    fn monitor_item_has_no_end() {
        let (key, data) = item("q", b"xyz");
        assert_eq!(
            encoded(Response::MonitorItem { key, data }),
            b"VALUE q 0 3\r\nxyz\r\n"
        );
    }

    #[test]
    fn errors_with_and_without_a_reason() {
        assert_eq!(
            encoded(Response::ClientError(String::new())),
            b"CLIENT_ERROR\r\n"
        );
        assert_eq!(
            encoded(Response::ClientError("bad flags".into())),
            b"CLIENT_ERROR bad flags\r\n"
        );
        assert_eq!(
            encoded(Response::ServerError(String::new())),
            b"SERVER_ERROR\r\n"
        );
        assert_eq!(
            encoded(Response::ServerError("disk".into())),
            b"SERVER_ERROR disk\r\n"
        );
        assert_eq!(
            encoded(Response::ServerError("parse error\r\n  at line 2\n".into())),
            b"SERVER_ERROR parse error at line 2\r\n"
        );
        assert_eq!(
            encoded(Response::ServerError("disk\rfull".into())),
            b"SERVER_ERROR disk full\r\n"
        );
    }

    #[test]
    fn version_count_and_line() {
        assert_eq!(
            encoded(Response::Version("2.4.1".into())),
            b"VERSION 2.4.1\r\n"
        );
        assert_eq!(encoded(Response::Count(0)), b"0\r\n");
        assert_eq!(encoded(Response::Count(1207)), b"1207\r\n");
        assert_eq!(
            encoded(Response::Count(u64::MAX)),
            b"18446744073709551615\r\n"
        );
        assert_eq!(encoded(Response::Line("UP".into())), b"UP\r\n");
    }

    #[test]
    fn stats_keep_the_space_before_an_empty_value() {
        let pairs = vec![
            ("uptime".to_owned(), "12".to_owned()),
            ("queue_a_children".to_owned(), String::new()),
        ];
        let expected = b"STAT uptime 12\r\nSTAT queue_a_children \r\nEND\r\n";
        assert_eq!(encoded(Response::Stats(pairs)), expected);
        assert_eq!(encoded(Response::Stats(Vec::new())), b"END\r\n");
    }

    #[test]
    fn raw_is_written_as_is() {
        let body = b"queue 'x' {\r\n  \r\n}\r\nEND\r\n";
        assert_eq!(encoded(Response::Raw(Bytes::from_static(body))), body);
    }

    #[test]
    fn encode_appends_to_what_is_already_buffered() {
        let mut buf = BytesMut::from(&b"STORED\r\n"[..]);
        Response::End.encode(&mut buf);
        assert_eq!(&buf[..], b"STORED\r\nEND\r\n");
    }

    #[test]
    fn item_encoding_grows_the_buffer_once() {
        let data = Bytes::from(vec![7u8; 10_000]);
        let mut buf = BytesMut::new();
        Response::Value {
            key: "q".into(),
            data,
        }
        .encode(&mut buf);
        assert_eq!(
            buf.len(),
            "VALUE q 0 10000\r\n".len() + 10_000 + "\r\nEND\r\n".len()
        );
        assert_eq!(buf.capacity(), buf.len());
    }
}
