//! `get <q>[/<opt>]*` and `gets` (spec b.1; Part 0 #3, #4).

use super::Rejection;
use super::args::java_int;
use super::line::split_like_java;
use crate::name::queue_name_from_wire;
use crate::{GetOptions, Request};

/// Parses a get's arguments: only the first key is used, further keys are ignored.
///
/// The checks run in Kestrel's order: options (a bad `t=` is refused, connection kept), then
/// the empty name and forbidden option combinations (refused and the connection closed, as
/// Kestrel does), then the remaining queue name rules (refused, connection kept).
pub(super) fn parse_get<'a>(
    mut args: impl Iterator<Item = &'a [u8]>,
) -> Result<Request, Rejection> {
    let key = args.next().ok_or(Rejection::skip("missing queue name"))?;
    let mut pieces = split_like_java(key, b'/');
    let name = pieces.next().unwrap_or_default();
    let options = parse_options(pieces)?;
    if name.is_empty() {
        return Err(Rejection::close("empty queue name"));
    }
    if conflicting(&options) {
        return Err(Rejection::close("conflicting get options"));
    }
    let queue = queue_name_from_wire(name).ok_or(Rejection::skip("bad queue name"))?;
    Ok(Request::Get { queue, options })
}

/// The key of a get request exactly as the client sent it, options included (`q/t=10/open`),
/// for servers that echo the full key (Part 0 #12). `frame` is the request's bytes as consumed
/// by [`crate::parse`]; `None` when it is not a get.
pub fn requested_key(frame: &[u8]) -> Option<&[u8]> {
    let line_end = frame.iter().position(|&byte| byte == b'\n')?;
    let line = frame[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&frame[..line_end]);
    let mut tokens = split_like_java(line, b' ');
    let verb = tokens.next()?;
    let is_get = verb.eq_ignore_ascii_case(b"get") || verb.eq_ignore_ascii_case(b"gets");
    if is_get { tokens.next() } else { None }
}

/// Reads the options after the queue name. They are case-sensitive; unknown options and empty
/// pieces are ignored, and a later `t=` overrides an earlier one.
fn parse_options<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> Result<GetOptions, Rejection> {
    let mut options = GetOptions::default();
    for piece in pieces {
        match piece {
            b"open" => options.open = true,
            b"close" => options.close = true,
            b"abort" => options.abort = true,
            b"peek" => options.peek = true,
            _ => {
                if let Some(millis) = piece.strip_prefix(b"t=") {
                    options.timeout_ms = parse_timeout(millis)?;
                }
            }
        }
    }
    Ok(options)
}

/// `t=<ms>`: a Java `Int`; zero or negative means no wait.
fn parse_timeout(millis: &[u8]) -> Result<Option<u32>, Rejection> {
    let millis = java_int(millis).ok_or(Rejection::skip("bad timeout"))?;
    Ok(u32::try_from(millis).ok().filter(|&millis| millis > 0))
}

/// The combinations Kestrel forbids: `peek` or `abort` with `open` or `close`, and `peek` with
/// `abort`.
fn conflicting(options: &GetOptions) -> bool {
    let reads_without_removing = options.peek || options.abort;
    let transactional = options.open || options.close;
    (reads_without_removing && transactional) || (options.peek && options.abort)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(args: &str) -> Result<Request, Rejection> {
        parse_get(
            args.split(' ')
                .filter(|arg| !arg.is_empty())
                .map(str::as_bytes),
        )
    }

    fn options_of(args: &str) -> GetOptions {
        match get(args) {
            Ok(Request::Get { options, .. }) => options,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn requested_key_keeps_the_options() {
        assert_eq!(
            requested_key(b"get q/t=10/open\r\n"),
            Some(&b"q/t=10/open"[..])
        );
        assert_eq!(requested_key(b"GETS q other\n"), Some(&b"q"[..]));
        assert_eq!(requested_key(b"set q 0 0 1\r\nx\r\n"), None);
        assert_eq!(requested_key(b"get q"), None);
    }

    #[test]
    fn plain_get_uses_the_bare_queue_name() {
        let expected = Request::Get {
            queue: "q".into(),
            options: GetOptions::default(),
        };
        assert_eq!(get("q"), Ok(expected.clone()));
        assert_eq!(get("q/"), Ok(expected.clone()));
        assert_eq!(get("q other keys"), Ok(expected));
    }

    #[test]
    fn every_option() {
        let all_flags = |open, close, abort, peek| GetOptions {
            open,
            close,
            abort,
            peek,
            timeout_ms: None,
        };
        assert_eq!(options_of("q/open"), all_flags(true, false, false, false));
        assert_eq!(options_of("q/close"), all_flags(false, true, false, false));
        assert_eq!(
            options_of("q/close/open"),
            all_flags(true, true, false, false)
        );
        assert_eq!(options_of("q/abort"), all_flags(false, false, true, false));
        assert_eq!(options_of("q/peek"), all_flags(false, false, false, true));
        assert_eq!(options_of("q/t=500").timeout_ms, Some(500));
    }

    #[test]
    fn timeout_rules() {
        assert_eq!(options_of("q/t=0").timeout_ms, None);
        assert_eq!(options_of("q/t=-5").timeout_ms, None);
        assert_eq!(options_of("q/t=100/t=200").timeout_ms, Some(200));
        assert_eq!(options_of("q/t=100/t=0").timeout_ms, None);
        assert_eq!(options_of("q/t=2147483647").timeout_ms, Some(2_147_483_647));
        for bad in ["q/t=", "q/t=abc", "q/t=1.5", "q/t=2147483648", "q/open/t=x"] {
            assert_eq!(get(bad), Err(Rejection::skip("bad timeout")), "{bad}");
        }
    }

    #[test]
    fn unknown_and_empty_options_are_ignored_and_options_are_case_sensitive() {
        assert_eq!(
            options_of("q//open//"),
            GetOptions {
                open: true,
                ..GetOptions::default()
            }
        );
        assert_eq!(
            options_of("q/OPEN/Peek/T=5/x=1/opened"),
            GetOptions::default()
        );
    }

    #[test]
    fn empty_name_and_conflicts_close_the_connection() {
        assert_eq!(get("/open"), Err(Rejection::close("empty queue name")));
        assert_eq!(get("/"), Err(Rejection::close("empty queue name")));
        for bad in [
            "q/peek/open",
            "q/peek/close",
            "q/abort/open",
            "q/abort/close",
            "q/peek/abort",
        ] {
            assert_eq!(
                get(bad),
                Err(Rejection::close("conflicting get options")),
                "{bad}"
            );
        }
    }

    #[test]
    fn allowed_combinations() {
        for good in [
            "q/t=5/open",
            "q/close/open/t=5",
            "q/peek/t=5",
            "q/abort/t=5",
        ] {
            assert!(get(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn bad_timeout_is_reported_before_an_empty_name() {
        assert_eq!(get("/t=x"), Err(Rejection::skip("bad timeout")));
    }

    #[test]
    fn other_bad_names_keep_the_connection() {
        assert_eq!(get("+q/open"), Err(Rejection::skip("bad queue name")));
        assert_eq!(get("a.b"), Err(Rejection::skip("bad queue name")));
        assert_eq!(get(""), Err(Rejection::skip("missing queue name")));
    }
}
