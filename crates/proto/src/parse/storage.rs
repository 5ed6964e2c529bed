//! Storage commands: `set <q> <flags> <exptime> <bytes>\r\n<data>\r\n` (spec a.1 items 4-5,
//! a.4; Part 0 #2, #3).
//!
//! Framing comes first, as in Kestrel's codec: the line's `<bytes>` says how long the data
//! block is, and the block must be complete before the other arguments are looked at. Framing
//! errors close the connection because the server can no longer tell where the next request
//! starts; argument errors found after framing skip the whole request.

use std::ops::Range;

use super::args::{java_int, queue_arg};
use super::{Limits, Rejection};
use crate::Request;

/// Where a storage command's data block lies in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DataBlock {
    /// The payload's byte range.
    pub payload: Range<usize>,
    /// Where the request ends: just after the `\r\n` that follows the payload.
    pub end: usize,
}

/// Locates the data block that follows a storage command line of `line_len` bytes; `args` are
/// the line's tokens after the command word. `Ok(None)` until the whole block has arrived.
pub(super) fn locate_data_block<'a>(
    mut args: impl Iterator<Item = &'a [u8]>,
    line_len: usize,
    input: &[u8],
    limits: &Limits,
) -> Result<Option<DataBlock>, Rejection> {
    let length_token = args
        .nth(3)
        .ok_or(Rejection::close("bad command line format"))?;
    let length = java_int(length_token)
        .and_then(|length| usize::try_from(length).ok())
        .ok_or(Rejection::close("bad data length"))?;
    // Close rather than skip: skipping would mean reading and discarding up to 2 GiB that was
    // never buffered, which `AfterError::Skip` (bytes already in the input) cannot express.
    if length > limits.max_item_size {
        return Err(item_too_large());
    }
    let payload_end = line_len.checked_add(length).ok_or_else(item_too_large)?;
    let end = payload_end.checked_add(2).ok_or_else(item_too_large)?;
    // Checking each terminator byte as it arrives answers a client that ends the block with a
    // bare LF at once, instead of leaving it waiting for a byte it will never send.
    let terminator = input
        .get(payload_end..end.min(input.len()))
        .unwrap_or_default();
    if !b"\r\n".starts_with(terminator) {
        return Err(Rejection::close("bad data chunk"));
    }
    if terminator.len() < 2 {
        return Ok(None);
    }
    Ok(Some(DataBlock {
        payload: line_len..payload_end,
        end,
    }))
}

fn item_too_large() -> Rejection {
    Rejection::close("item too large")
}

/// Parses `set`'s arguments once its data block (`payload`) is known to be complete.
///
/// `<flags>` and `<exptime>` are read as Java `Int`s, as Kestrel does. Flags are never used or
/// returned, so a negative value is simply kept as its 32-bit pattern.
pub(super) fn parse_set<'a>(
    mut args: impl Iterator<Item = &'a [u8]>,
    payload: Range<usize>,
) -> Result<Request, Rejection> {
    let queue = queue_arg(args.next())?;
    let flags = args
        .next()
        .and_then(java_int)
        .ok_or(Rejection::skip("bad flags"))?;
    let exptime = args
        .next()
        .and_then(java_int)
        .ok_or(Rejection::skip("bad exptime"))?;
    Ok(Request::Set {
        queue,
        flags: flags.cast_unsigned(),
        exptime: exptime.into(),
        data: payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> impl Iterator<Item = &[u8]> {
        line.split(' ').map(str::as_bytes)
    }

    fn locate(line: &str, input: &[u8]) -> Result<Option<DataBlock>, Rejection> {
        let limits = Limits {
            max_line_len: 100,
            max_item_size: 10,
        };
        locate_data_block(args(line), 4, input, &limits)
    }

    #[test]
    fn data_block_follows_the_line() {
        let block = DataBlock {
            payload: 4..7,
            end: 9,
        };
        assert_eq!(locate("q 0 0 3", b"....abc\r\n"), Ok(Some(block.clone())));
        assert_eq!(locate("q 0 0 3", b"....abc\r\nget q\r\n"), Ok(Some(block)));
    }

    #[test]
    fn data_block_waits_until_complete() {
        for input in [&b"...."[..], b"....abc", b"....abc\r"] {
            assert_eq!(locate("q 0 0 3", input), Ok(None));
        }
    }

    #[test]
    fn data_block_must_end_with_crlf() {
        let bad_chunk = Err(Rejection::close("bad data chunk"));
        assert_eq!(locate("q 0 0 3", b"....abc\n"), bad_chunk);
        assert_eq!(locate("q 0 0 3", b"....abc\r\r"), bad_chunk);
        assert_eq!(locate("q 0 0 3", b"....abcd\r\n"), bad_chunk);
    }

    #[test]
    fn length_must_be_a_non_negative_int_within_the_limit() {
        let format = Err(Rejection::close("bad command line format"));
        assert_eq!(locate("q 0 0", b"...."), format);
        for length in ["x", "-1", "2147483648", ""] {
            let line = format!("q 0 0 {length}");
            assert_eq!(
                locate(&line, b"...."),
                Err(Rejection::close("bad data length"))
            );
        }
        assert_eq!(locate("q 0 0 11", b"...."), Err(item_too_large()));
        assert_eq!(
            locate("q 0 0 10", b"....0123456789\r\n").map(|b| b.map(|b| b.end)),
            Ok(Some(16))
        );
    }

    #[test]
    fn set_arguments() {
        let set = parse_set(args("q 7 -3 0"), 4..4);
        let expected = Request::Set {
            queue: "q".into(),
            flags: 7,
            exptime: -3,
            data: 4..4,
        };
        assert_eq!(set, Ok(expected));
        let negative_flags = parse_set(args("q -1 0 0"), 4..4);
        assert!(matches!(
            negative_flags,
            Ok(Request::Set {
                flags: u32::MAX,
                ..
            })
        ));
    }

    #[test]
    fn bad_set_arguments_skip_the_request() {
        assert_eq!(
            parse_set(args("q x 0 0"), 0..0),
            Err(Rejection::skip("bad flags"))
        );
        assert_eq!(
            parse_set(args("q 4294967295 0 0"), 0..0),
            Err(Rejection::skip("bad flags"))
        );
        assert_eq!(
            parse_set(args("q 0 soon 0"), 0..0),
            Err(Rejection::skip("bad exptime"))
        );
        assert_eq!(
            parse_set(args("a/b 0 0 0"), 0..0),
            Err(Rejection::skip("bad queue name"))
        );
    }
}
