//! response_encode: arbitrary `Response` values encode to what the protocol promises.
//!
//! - `encode` appends: whatever the buffer held stays in front;
//! - every reply but `Raw` ends with `\r\n`; fixed replies are byte-exact;
//! - `ERROR`, `CLIENT_ERROR` and `SERVER_ERROR` are exactly one line whatever their reason: the
//!   keyword, then (if the reason has any) one space and the reason's words in order, single
//!   line, no leading or trailing whitespace;
//! - `VALUE` items, `STAT` lists, `VERSION`, counts and lines have their documented layout, and
//!   when keys and names are plain tokens a memcache client reads the items and stats back
//!   exactly (so binary data can never break the framing).
#![no_main]

use bytes::BytesMut;
use lanner_fuzz::proto::assert_one_line;
use lanner_fuzz::response::Input;
use lanner_proto::Response;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: Input| {
    let response = Response::from(input.response);
    let mut buf = BytesMut::from(&input.already[..]);
    response.encode(&mut buf);
    assert_eq!(
        &buf[..input.already.len()],
        &input.already[..],
        "encode overwrote the buffer"
    );
    let wire = &buf[input.already.len()..];
    check(&response, wire);
});

fn check(response: &Response, wire: &[u8]) {
    if !matches!(response, Response::Raw(_)) {
        assert!(
            wire.ends_with(b"\r\n"),
            "{response:?} encoded without CRLF: {wire:?}"
        );
    }
    let fixed: &[u8] = match response {
        Response::Stored => b"STORED\r\n",
        Response::NotStored => b"NOT_STORED\r\n",
        Response::Deleted => b"DELETED\r\n",
        Response::End => b"END\r\n",
        Response::Error => b"ERROR\r\n",
        Response::FlushedAll => b"Flushed all queues.\r\n",
        Response::Reloaded => b"Reloaded config.\r\n",
        Response::ClientError(reason) => return check_error(b"CLIENT_ERROR", reason, wire),
        Response::ServerError(reason) => return check_error(b"SERVER_ERROR", reason, wire),
        Response::Version(version) => {
            return assert_eq!(wire, format!("VERSION {version}\r\n").as_bytes());
        }
        Response::Count(count) => return assert_eq!(wire, format!("{count}\r\n").as_bytes()),
        Response::Line(line) => return assert_eq!(wire, format!("{line}\r\n").as_bytes()),
        Response::Raw(bytes) => return assert_eq!(wire, &bytes[..]),
        Response::Value { key, data } => {
            let rest = check_item(key, data, wire);
            return assert_eq!(rest, b"END\r\n", "VALUE not closed by END");
        }
        Response::MonitorItem { key, data } => {
            let rest = check_item(key, data, wire);
            return assert!(rest.is_empty(), "monitor item followed by {rest:?}");
        }
        Response::Stats(pairs) => return check_stats(pairs, wire),
    };
    assert_eq!(wire, fixed, "{response:?}");
}

/// One line: the keyword, then one space and the reason's words when it has any.
fn check_error(keyword: &[u8], reason: &str, wire: &[u8]) {
    assert_one_line(wire);
    let line = &wire[..wire.len() - 2];
    let rest = line
        .strip_prefix(keyword)
        .expect("reply starts with its keyword");
    let rest = std::str::from_utf8(rest).expect("reply stays UTF-8");
    if reason.split_whitespace().next().is_none() {
        assert_eq!(rest, "", "a blank reason must give the bare keyword");
        return;
    }
    let words = rest.strip_prefix(' ').expect("one space after the keyword");
    assert_eq!(words, words.trim(), "reason not trimmed: {words:?}");
    assert!(
        words.split_whitespace().eq(reason.split_whitespace()),
        "reason {reason:?} encoded as {words:?}"
    );
}

/// Checks `VALUE <key> 0 <len>\r\n<data>\r\n` at the start of `wire`; returns what follows.
fn check_item<'w>(key: &str, data: &[u8], wire: &'w [u8]) -> &'w [u8] {
    let head = format!("VALUE {key} 0 {}\r\n", data.len());
    let rest = wire.strip_prefix(head.as_bytes()).expect("VALUE line");
    let (body, rest) = rest.split_at(data.len());
    assert_eq!(body, data);
    let rest = rest.strip_prefix(b"\r\n").expect("CRLF after the data");
    if is_token(key) {
        // A client reads the header line up to the first CRLF, then exactly <len> bytes.
        let (line, after) = split_crlf(wire);
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        assert_eq!(fields.len(), 4, "{line:?}");
        assert_eq!(fields[1], key.as_bytes());
        let len: usize = std::str::from_utf8(fields[3]).unwrap().parse().unwrap();
        assert_eq!(&after[..len], data);
        assert_eq!(&after[len..len + 2], b"\r\n");
    }
    rest
}

/// `STAT <name> <value>\r\n` per pair, then `END\r\n`; read back when names are tokens.
fn check_stats(pairs: &[(String, String)], wire: &[u8]) {
    let mut expected = Vec::new();
    for (name, value) in pairs {
        expected.extend_from_slice(format!("STAT {name} {value}\r\n").as_bytes());
    }
    expected.extend_from_slice(b"END\r\n");
    assert_eq!(wire, &expected[..]);
    let readable = pairs
        .iter()
        .all(|(name, value)| is_token(name) && !value.contains('\n') && !value.contains('\r'));
    if readable {
        let mut rest = wire;
        for (name, value) in pairs {
            let (line, after) = split_crlf(rest);
            let line = std::str::from_utf8(line).unwrap();
            let (stat_name, stat_value) = line
                .strip_prefix("STAT ")
                .and_then(|stat| stat.split_once(' '))
                .expect("STAT line");
            assert_eq!((stat_name, stat_value), (name.as_str(), value.as_str()));
            rest = after;
        }
        assert_eq!(rest, b"END\r\n");
    }
}

/// A key or stat name a memcache client can read back: non-empty, no spaces or controls.
fn is_token(text: &str) -> bool {
    !text.is_empty() && !text.bytes().any(|b| b == b' ' || b.is_ascii_control())
}

fn split_crlf(bytes: &[u8]) -> (&[u8], &[u8]) {
    let at = bytes
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a CRLF-terminated line");
    (&bytes[..at], &bytes[at + 2..])
}
