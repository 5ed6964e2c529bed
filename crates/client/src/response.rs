//! Sans-I/O parser for the server's replies: bytes in, one complete [`Reply`] and the number of
//! bytes it used out. No I/O, no allocation for item data (it is returned as a range of the
//! input), so the connection can hand the payload on without copying.
//!
//! Every reply this client can receive is self-delimiting from its first line, so the parser
//! needs no knowledge of the request:
//!
//! | first line | reply |
//! | --- | --- |
//! | `STORED`, `NOT_STORED`, `DELETED`, `END` | that word |
//! | `VALUE <key> <flags> <bytes>` | the line, `<bytes>` of data, `\r\n`, then `END` (the client only sends single-key `get`s, and each `monitor` item carries its own `END`) |
//! | `STAT <name> <value>` | more `STAT` lines up to `END` |
//! | `ERROR`, `CLIENT_ERROR [msg]`, `SERVER_ERROR [msg]` | the error |

use std::ops::Range;

/// Longest reply line accepted without its line end; a longer one means the stream is not a
/// memcache reply stream.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// Largest item accepted in a `VALUE` reply (1 GiB); a larger length means a corrupt stream.
pub(crate) const MAX_VALUE: usize = 1 << 30;

/// One complete reply.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `STORED`
    Stored,
    /// `NOT_STORED`
    NotStored,
    /// `DELETED`
    Deleted,
    /// `END`: a miss, or the success of `flush`, `confirm` and `get q/close`.
    End,
    /// `VALUE <key> <flags> <bytes>\r\n<data>\r\nEND\r\n`; the ranges index the parsed buffer.
    Value {
        /// Where the echoed key is.
        key: Range<usize>,
        /// Where the item is.
        data: Range<usize>,
    },
    /// `STAT <name> <value>` lines, in order, up to `END`.
    Stats(Vec<(String, String)>),
    /// A bare `ERROR`.
    Error,
    /// `CLIENT_ERROR` and the text after it.
    ClientError(String),
    /// `SERVER_ERROR` and the text after it.
    ServerError(String),
}

/// The bytes are not a valid reply; the stream cannot be trusted any more.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ParseError(pub(crate) String);

/// Parses one reply from the start of `buf`: `Ok(None)` if it is not complete yet (read more
/// and call again), otherwise the reply and how many bytes of `buf` it used.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ParseError> {
    let Some((first, mut pos)) = line(buf, 0)? else {
        return Ok(None);
    };
    let reply = match first {
        b"STORED" => Reply::Stored,
        b"NOT_STORED" => Reply::NotStored,
        b"DELETED" => Reply::Deleted,
        b"END" => Reply::End,
        b"ERROR" => Reply::Error,
        _ if first.starts_with(b"VALUE ") => {
            let (key, len) = value_header(first)?;
            let data = pos..pos + len;
            let Some(trailer) = buf.get(data.end..data.end + 2) else {
                return Ok(None);
            };
            if trailer != b"\r\n" {
                return Err(ParseError("item data not followed by \\r\\n".into()));
            }
            let Some((end, after)) = line(buf, data.end + 2)? else {
                return Ok(None);
            };
            if end != b"END" {
                return Err(ParseError(format!(
                    "expected END after an item, got {:?}",
                    printable(end)
                )));
            }
            pos = after;
            Reply::Value { key, data }
        }
        _ if first.starts_with(b"STAT ") => {
            let mut stats = vec![stat(first)?];
            loop {
                let Some((next, after)) = line(buf, pos)? else {
                    return Ok(None);
                };
                pos = after;
                if next == b"END" {
                    break;
                }
                stats.push(stat(next)?);
            }
            Reply::Stats(stats)
        }
        _ => match error_line(first) {
            Some(reply) => reply,
            None => {
                return Err(ParseError(format!(
                    "unexpected reply line {:?}",
                    printable(first)
                )));
            }
        },
    };
    Ok(Some((reply, pos)))
}

/// How the reply to an admin command ([`crate::Client::admin`]) ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminReply {
    /// One line (`status`, `reload`, `version`, ...).
    Line,
    /// Lines up to `END`, which is not part of the reply (`dump_stats`, `dump_config`, `status
    /// <name>`, whose reply is a bare `END`).
    UntilEnd,
}

/// What an admin reply held: its lines, or the error line the server answered with.
pub(crate) type AdminLines = Result<Vec<String>, Reply>;

/// Parses an admin reply of the given shape from the start of `buf`, like [`parse`]: `Ok(None)`
/// while incomplete. A first line of `ERROR`, `CLIENT_ERROR` or `SERVER_ERROR` is the reply.
pub(crate) fn parse_admin(
    buf: &[u8],
    shape: AdminReply,
) -> Result<Option<(AdminLines, usize)>, ParseError> {
    let mut lines = Vec::new();
    let mut pos = 0;
    loop {
        let Some((text, after)) = line(buf, pos)? else {
            return Ok(None);
        };
        pos = after;
        if lines.is_empty() {
            if text == b"ERROR" {
                return Ok(Some((Err(Reply::Error), pos)));
            }
            if let Some(error) = error_line(text) {
                return Ok(Some((Err(error), pos)));
            }
        }
        if shape == AdminReply::UntilEnd && text == b"END" {
            return Ok(Some((Ok(lines), pos)));
        }
        lines.push(String::from_utf8_lossy(text).into_owned());
        if shape == AdminReply::Line {
            return Ok(Some((Ok(lines), pos)));
        }
    }
}

/// The line starting at `start` without its `\n` or `\r\n`, and where the next line starts.
fn line(buf: &[u8], start: usize) -> Result<Option<(&[u8], usize)>, ParseError> {
    let rest = buf.get(start..).unwrap_or_default();
    match memchr::memchr(b'\n', rest) {
        Some(newline) => {
            let text = &rest[..newline];
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            Ok(Some((text, start + newline + 1)))
        }
        None if rest.len() > MAX_LINE => Err(ParseError(format!(
            "reply line longer than {MAX_LINE} bytes"
        ))),
        None => Ok(None),
    }
}

/// The key's range (within `buf`) and the data length of a `VALUE` line.
fn value_header(line: &[u8]) -> Result<(Range<usize>, usize), ParseError> {
    let bad = || ParseError(format!("malformed VALUE line {:?}", printable(line)));
    let mut tokens = line.split(|&b| b == b' ');
    let (Some(_value), Some(key), Some(flags), Some(len)) =
        (tokens.next(), tokens.next(), tokens.next(), tokens.next())
    else {
        return Err(bad());
    };
    // An optional cas unique may follow (memcache's `gets`); nothing else may.
    if tokens.next().is_some_and(|cas| decimal(cas).is_none()) || tokens.next().is_some() {
        return Err(bad());
    }
    if key.is_empty() || decimal(flags).is_none() {
        return Err(bad());
    }
    let len = decimal(len).ok_or_else(bad)?;
    if len > MAX_VALUE {
        return Err(ParseError(format!(
            "item of {len} bytes exceeds {MAX_VALUE}"
        )));
    }
    // The line is the start of `buf`, and the key follows "VALUE ".
    let start = b"VALUE ".len();
    Ok((start..start + key.len(), len))
}

fn stat(line: &[u8]) -> Result<(String, String), ParseError> {
    let text = std::str::from_utf8(line)
        .map_err(|_| ParseError(format!("STAT line is not UTF-8: {:?}", printable(line))))?;
    let Some(rest) = text.strip_prefix("STAT ") else {
        return Err(ParseError(format!("expected STAT or END, got {text:?}")));
    };
    let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
    if name.is_empty() {
        return Err(ParseError(format!("STAT line without a name: {text:?}")));
    }
    Ok((name.to_owned(), value.to_owned()))
}

fn error_line(line: &[u8]) -> Option<Reply> {
    // The keyword, then nothing or a space and a reason.
    let reason = |keyword: &[u8]| {
        let rest = line.strip_prefix(keyword)?;
        match rest {
            [] => Some(String::new()),
            [b' ', reason @ ..] => Some(String::from_utf8_lossy(reason).into_owned()),
            _ => None,
        }
    };
    reason(b"CLIENT_ERROR")
        .map(Reply::ClientError)
        .or_else(|| reason(b"SERVER_ERROR").map(Reply::ServerError))
}

/// A non-empty run of ASCII digits that fits in `usize`.
fn decimal(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0usize, |acc, &b| {
        let digit = (b as char).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(digit as usize)
    })
}

/// A reply line shortened and made printable for an error message.
fn printable(line: &[u8]) -> String {
    let shown = &line[..line.len().min(80)];
    String::from_utf8_lossy(shown).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(bytes: &[u8]) -> Reply {
        let (reply, used) = parse(bytes).expect("valid").expect("complete");
        assert_eq!(used, bytes.len(), "reply should use the whole input");
        reply
    }

    #[test]
    fn single_word_replies() {
        assert_eq!(whole(b"STORED\r\n"), Reply::Stored);
        assert_eq!(whole(b"NOT_STORED\r\n"), Reply::NotStored);
        assert_eq!(whole(b"DELETED\r\n"), Reply::Deleted);
        assert_eq!(whole(b"END\r\n"), Reply::End);
        assert_eq!(whole(b"ERROR\r\n"), Reply::Error);
        assert_eq!(whole(b"END\n"), Reply::End, "a bare LF ends a line too");
    }

    #[test]
    fn error_lines_with_and_without_reason() {
        assert_eq!(
            whole(b"CLIENT_ERROR\r\n"),
            Reply::ClientError(String::new())
        );
        assert_eq!(
            whole(b"CLIENT_ERROR bad queue name\r\n"),
            Reply::ClientError("bad queue name".into())
        );
        assert_eq!(
            whole(b"SERVER_ERROR\r\n"),
            Reply::ServerError(String::new())
        );
        assert_eq!(
            whole(b"SERVER_ERROR not supported by this version of lanner\r\n"),
            Reply::ServerError("not supported by this version of lanner".into())
        );
        assert!(parse(b"CLIENT_ERRORS\r\n").is_err());
    }

    #[test]
    fn value_with_binary_data_containing_line_ends() {
        let bytes = b"VALUE work 0 7\r\na\r\nEND\r\r\nEND\r\n";
        let Reply::Value { key, data } = whole(bytes) else {
            panic!("not a value");
        };
        assert_eq!(&bytes[key], b"work");
        assert_eq!(&bytes[data], b"a\r\nEND\r");
    }

    #[test]
    fn value_echoing_the_full_key_and_an_empty_item() {
        let bytes = b"VALUE work/t=500/open 0 0\r\n\r\nEND\r\n";
        let Reply::Value { key, data } = whole(bytes) else {
            panic!("not a value");
        };
        assert_eq!(&bytes[key], b"work/t=500/open");
        assert!(data.is_empty());
    }

    #[test]
    fn value_with_cas_unique_is_accepted() {
        let bytes = b"VALUE k 5 1 99\r\nx\r\nEND\r\n";
        assert!(matches!(whole(bytes), Reply::Value { .. }));
    }

    #[test]
    fn every_prefix_of_a_reply_is_incomplete() {
        let replies: [&[u8]; 4] = [
            b"VALUE q 0 5\r\nhello\r\nEND\r\n",
            b"STAT uptime 4\r\nSTAT version 0.1.0\r\nEND\r\n",
            b"CLIENT_ERROR bad data chunk\r\n",
            b"STORED\r\n",
        ];
        for reply in replies {
            for cut in 0..reply.len() {
                assert_eq!(parse(&reply[..cut]), Ok(None), "prefix {cut} of {reply:?}");
            }
            assert!(parse(reply).expect("valid").is_some());
        }
    }

    #[test]
    fn pipelined_replies_parse_one_at_a_time() {
        let stream = b"STORED\r\nVALUE q 0 1\r\nz\r\nEND\r\nEND\r\n";
        let (first, used) = parse(stream).unwrap().unwrap();
        assert_eq!(first, Reply::Stored);
        let rest = &stream[used..];
        let (second, used2) = parse(rest).unwrap().unwrap();
        assert!(matches!(second, Reply::Value { .. }));
        assert_eq!(parse(&rest[used2..]).unwrap().unwrap().0, Reply::End);
    }

    #[test]
    fn stats_until_end() {
        let reply = whole(
            b"STAT uptime 42\r\nSTAT version 2.4.1 lanner\r\nSTAT queue_q_items 3\r\nEND\r\n",
        );
        assert_eq!(
            reply,
            Reply::Stats(vec![
                ("uptime".into(), "42".into()),
                ("version".into(), "2.4.1 lanner".into()),
                ("queue_q_items".into(), "3".into()),
            ])
        );
    }

    #[test]
    fn malformed_values_are_errors() {
        let bad: [&[u8]; 8] = [
            b"VALUE q 0\r\n",
            b"VALUE q 0 x\r\n",
            b"VALUE q x 1\r\n",
            b"VALUE q 0 -1\r\n",
            b"VALUE  0 1\r\n",
            b"VALUE q 0 1 2 3\r\n",
            b"VALUE q 0 1\r\nab\r\nEND\r\n",
            b"VALUE q 0 1\r\na\r\nSTORED\r\n",
        ];
        for bytes in bad {
            assert!(
                parse(bytes).is_err(),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert!(parse(b"VALUE q 0 99999999999999999999999\r\n").is_err());
        assert!(parse(format!("VALUE q 0 {}\r\n", MAX_VALUE + 1).as_bytes()).is_err());
    }

    #[test]
    fn admin_replies() {
        let one = parse_admin(b"UP\r\nrest", AdminReply::Line)
            .unwrap()
            .unwrap();
        assert_eq!(one, (Ok(vec!["UP".to_owned()]), 4));
        let dump = b"queue 'q' {\r\n  items=1\r\n}\r\nEND\r\n";
        let (lines, used) = parse_admin(dump, AdminReply::UntilEnd).unwrap().unwrap();
        assert_eq!(
            lines,
            Ok(vec!["queue 'q' {".into(), "  items=1".into(), "}".into()])
        );
        assert_eq!(used, dump.len());
        assert_eq!(
            parse_admin(b"END\r\n", AdminReply::UntilEnd).unwrap(),
            Some((Ok(vec![]), 5))
        );
        assert_eq!(
            parse_admin(b"CLIENT_ERROR unknown status\r\n", AdminReply::UntilEnd).unwrap(),
            Some((Err(Reply::ClientError("unknown status".into())), 29))
        );
        assert_eq!(
            parse_admin(b"ERROR\r\n", AdminReply::Line)
                .unwrap()
                .unwrap()
                .0,
            Err(Reply::Error)
        );
        assert_eq!(
            parse_admin(b"queue 'q' {\r\n", AdminReply::UntilEnd),
            Ok(None)
        );
    }

    #[test]
    fn unknown_lines_and_endless_lines_are_errors() {
        assert!(parse(b"VERSION 1\r\n").is_err());
        assert!(parse(b"STAT uptime 1\r\nSTORED\r\n").is_err());
        assert!(parse(b"STAT  1\r\nEND\r\n").is_err());
        assert_eq!(parse(&[b'x'; MAX_LINE]), Ok(None));
        assert!(parse(&[b'x'; MAX_LINE + 1]).is_err());
    }
}
