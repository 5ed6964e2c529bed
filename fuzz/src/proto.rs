//! Protocol helpers: a canonical request encoder and the invariants of `parse` outcomes.

use bytes::BytesMut;
use lanner_proto::{
    AfterError, Limits, ParseError, Parsed, Request, Response, parse, requested_key,
    validate_queue_name,
};

/// What `parse` returned.
pub type Outcome = Result<Option<Parsed>, ParseError>;

/// Limits small enough that the fuzzer hits every limit check, chosen by two bytes.
pub fn small_limits(line: u8, item: u8) -> Limits {
    Limits {
        max_line_len: usize::from(line % 64),
        max_item_size: usize::from(item % 32),
    }
}

/// Encodes `request` the way a well-behaved client would send it: single spaces, `\r\n`
/// terminators, numbers in plain decimal. For `Set`, `data` is the payload (the request itself
/// holds only a range of the original input).
///
/// `parse` must give back the same request from these bytes (with `Set`'s range pointing into
/// them).
pub fn encode_request(request: &Request, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match request {
        Request::Set {
            queue,
            flags,
            exptime,
            ..
        } => {
            // Flags travel as a Java Int; the request keeps the 32-bit pattern.
            let flags = flags.cast_signed();
            let line = format!("set {queue} {flags} {exptime} {}\r\n", data.len());
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(data);
        }
        Request::Get { queue, options } => {
            out.extend_from_slice(format!("get {queue}").as_bytes());
            if let Some(millis) = options.timeout_ms {
                out.extend_from_slice(format!("/t={millis}").as_bytes());
            }
            for (set, word) in [
                (options.open, "/open"),
                (options.close, "/close"),
                (options.abort, "/abort"),
                (options.peek, "/peek"),
            ] {
                if set {
                    out.extend_from_slice(word.as_bytes());
                }
            }
        }
        Request::Monitor {
            queue,
            seconds,
            max_items,
        } => {
            out.extend_from_slice(format!("monitor {queue} {seconds}").as_bytes());
            if let Some(max_items) = max_items {
                out.extend_from_slice(format!(" {max_items}").as_bytes());
            }
        }
        Request::Confirm { queue, count } => {
            out.extend_from_slice(format!("confirm {queue} {count}").as_bytes());
        }
        Request::Delete { queue } => out.extend_from_slice(format!("delete {queue}").as_bytes()),
        Request::Flush { queue } => out.extend_from_slice(format!("flush {queue}").as_bytes()),
        Request::FlushExpired { queue } => {
            out.extend_from_slice(format!("flush_expired {queue}").as_bytes());
        }
        Request::DumpStats { queues } => {
            out.extend_from_slice(b"dump_stats");
            for queue in queues {
                out.extend_from_slice(format!(" {queue}").as_bytes());
            }
        }
        Request::Status { new_status } => {
            out.extend_from_slice(b"status");
            match new_status.as_deref() {
                None => {}
                // Java-style splitting keeps an empty token between two spaces, and a later
                // token keeps it from being a dropped trailing one.
                Some("") => out.extend_from_slice(b"  x"),
                Some(status) => {
                    out.push(b' ');
                    // The parser reads the argument as ISO-8859-1 and lower-cases it, so every
                    // char is one Latin-1 byte.
                    for c in status.chars() {
                        let byte = u8::try_from(u32::from(c))
                            .unwrap_or_else(|_| panic!("status {status:?} is not Latin-1"));
                        out.push(byte);
                    }
                }
            }
        }
        Request::FlushAll => out.extend_from_slice(b"flush_all"),
        Request::FlushAllExpired => out.extend_from_slice(b"flush_all_expired"),
        Request::Stats => out.extend_from_slice(b"stats"),
        Request::DumpConfig => out.extend_from_slice(b"dump_config"),
        Request::Version => out.extend_from_slice(b"version"),
        Request::Reload => out.extend_from_slice(b"reload"),
        Request::Shutdown => out.extend_from_slice(b"shutdown"),
        Request::Quit => out.extend_from_slice(b"quit"),
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Every queue name a request carries.
pub fn queue_names(request: &Request) -> Vec<&str> {
    match request {
        Request::Set { queue, .. }
        | Request::Get { queue, .. }
        | Request::Monitor { queue, .. }
        | Request::Confirm { queue, .. }
        | Request::Delete { queue }
        | Request::Flush { queue }
        | Request::FlushExpired { queue } => vec![queue.as_str()],
        Request::DumpStats { queues } => queues.iter().map(|queue| queue.as_str()).collect(),
        Request::FlushAll
        | Request::FlushAllExpired
        | Request::Stats
        | Request::DumpConfig
        | Request::Version
        | Request::Reload
        | Request::Shutdown
        | Request::Quit
        | Request::Status { .. } => Vec::new(),
    }
}

/// The invariants every outcome must meet on its own (no re-parsing): sizes within the input,
/// valid queue names, a well-formed `Set` frame, a one-line `CLIENT_ERROR` reply. Cheap enough
/// to run on every step of a pipeline.
pub fn check_shape(input: &[u8], limits: &Limits, outcome: &Outcome) {
    match outcome {
        Ok(None) => {}
        Ok(Some(Parsed { request, consumed })) => {
            let consumed = *consumed;
            assert!(consumed > 0, "consumed 0 bytes: {request:?}");
            assert!(
                consumed <= input.len(),
                "consumed {consumed} of {}",
                input.len()
            );
            let line_len = memchr_lf(input).expect("a request without a line feed") + 1;
            assert!(line_len <= consumed, "{line_len} > {consumed}");
            assert!(
                line_len <= limits.max_line_len.saturating_add(2),
                "a line of {line_len} bytes passed max_line_len {}",
                limits.max_line_len
            );
            for name in queue_names(request) {
                assert!(
                    validate_queue_name(name),
                    "invalid queue name {name:?} accepted"
                );
            }
            match request {
                Request::Set { data, .. } => {
                    assert_eq!(
                        data.start, line_len,
                        "Set data does not start after the line"
                    );
                    assert!(data.start <= data.end, "{data:?}");
                    assert_eq!(
                        data.end + 2,
                        consumed,
                        "Set data {data:?} vs consumed {consumed}"
                    );
                    assert_eq!(&input[data.end..consumed], b"\r\n");
                    assert!(
                        data.len() <= limits.max_item_size,
                        "{} bytes accepted with max_item_size {}",
                        data.len(),
                        limits.max_item_size
                    );
                }
                _ => assert_eq!(consumed, line_len, "a one-line command consumed more"),
            }
            if let Request::Get { options, .. } = request {
                let transactional = options.open || options.close;
                assert!(!(options.peek && transactional), "{options:?}");
                assert!(!(options.abort && transactional), "{options:?}");
                assert!(!(options.peek && options.abort), "{options:?}");
                assert_ne!(options.timeout_ms, Some(0), "t=0 must mean no wait");
            }
        }
        Err(ParseError { reply, after }) => {
            match reply {
                Response::ClientError(reason) => {
                    assert!(!reason.is_empty(), "CLIENT_ERROR without a reason");
                }
                other => panic!("parse error reply is not CLIENT_ERROR: {other:?}"),
            }
            let mut wire = BytesMut::new();
            reply.encode(&mut wire);
            assert_one_line(&wire);
            if let AfterError::Skip(skipped) = after {
                assert!(*skipped > 0, "Skip(0) would loop forever");
                assert!(
                    *skipped <= input.len(),
                    "Skip({skipped}) of {}",
                    input.len()
                );
            }
        }
    }
}

/// Every invariant of one `parse(input, limits)` call, including those that parse other
/// inputs derived from it: the consumed prefix alone, prefixes cut short, the input with more
/// bytes after it, and the canonical re-encoding of what was parsed.
pub fn check_parse(input: &[u8], limits: &Limits) -> Outcome {
    let outcome = parse(input, limits);
    check_shape(input, limits, &outcome);

    // The request (or the refused request) alone parses the same: parse looks no further.
    let frame_len = match &outcome {
        Ok(Some(parsed)) => Some(parsed.consumed),
        Err(ParseError {
            after: AfterError::Skip(n),
            ..
        }) => Some(*n),
        _ => None,
    };
    if let Some(frame_len) = frame_len {
        assert_eq!(
            parse(&input[..frame_len], limits),
            outcome,
            "the first {frame_len} bytes alone parse differently"
        );
    }

    // A shorter input is either still incomplete or already gives the same answer (the
    // server calls parse again with a grown buffer and must not change its mind).
    for cut in cut_points(input) {
        let prefix = parse(&input[..cut], limits);
        assert!(
            prefix == Ok(None) || prefix == outcome,
            "prefix of {cut} bytes gave {prefix:?}, the whole input {outcome:?}"
        );
    }

    // More bytes after a decided outcome change nothing.
    if outcome != Ok(None) {
        let mut longer = input.to_vec();
        longer.extend_from_slice(b"get more\r\n");
        longer.extend_from_slice(input);
        assert_eq!(
            parse(&longer, limits),
            outcome,
            "appending bytes changed the outcome"
        );
    }

    if let Ok(Some(parsed)) = &outcome {
        check_requested_key(&input[..parsed.consumed], &parsed.request);
        check_round_trip(input, parsed, limits);
    }
    outcome
}

/// `requested_key` finds a get's full key, whose first `/`-piece is the queue name.
fn check_requested_key(frame: &[u8], request: &Request) {
    let key = requested_key(frame);
    match request {
        Request::Get { queue, .. } => {
            let key = key.expect("requested_key of a get frame is None");
            let name = key.split(|&b| b == b'/').next().unwrap_or_default();
            assert_eq!(
                name,
                queue.as_bytes(),
                "requested_key {key:?} vs queue {queue:?}"
            );
        }
        _ => assert_eq!(key, None, "requested_key of a non-get frame"),
    }
}

/// The canonical encoding of a parsed request parses back to the same request.
fn check_round_trip(input: &[u8], parsed: &Parsed, limits: &Limits) {
    let data = match &parsed.request {
        Request::Set { data, .. } => &input[data.clone()],
        _ => &[][..],
    };
    let encoded = encode_request(&parsed.request, data);
    let expected = |line_len: usize| {
        let mut request = parsed.request.clone();
        if let Request::Set { data: range, .. } = &mut request {
            *range = line_len..line_len + data.len();
        }
        Ok(Some(Parsed {
            request,
            consumed: encoded.len(),
        }))
    };
    let line_len = memchr_lf(&encoded).expect("encoded request without a line") + 1;
    let reparsed = parse(&encoded, &Limits::default());
    assert_eq!(
        reparsed,
        expected(line_len),
        "re-encoded as {:?}",
        String::from_utf8_lossy(&encoded)
    );
    // When the canonical form fits the limits the input was parsed with, they accept it too.
    if line_len - 2 <= limits.max_line_len && data.len() <= limits.max_item_size {
        assert_eq!(parse(&encoded, limits), expected(line_len));
    }
}

/// Where to cut the input for the prefix check: every point of a short input, a spread of
/// points of a long one (quadratic work would slow the fuzzer down for nothing).
fn cut_points(input: &[u8]) -> Vec<usize> {
    if input.len() <= 512 {
        (0..input.len()).collect()
    } else {
        let mut rng = crate::Rng::from_bytes(input);
        let mut cuts: Vec<usize> = (0..48).map(|_| rng.below(input.len())).collect();
        cuts.extend([0, 1, input.len() - 2, input.len() - 1]);
        if let Some(lf) = memchr_lf(input) {
            cuts.extend([lf, lf + 1].into_iter().filter(|&cut| cut < input.len()));
        }
        cuts
    }
}

/// The offset of the first `\n`.
pub fn memchr_lf(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// A reply that must be exactly one line: it ends with `\r\n` and holds no other `\n`.
pub fn assert_one_line(wire: &[u8]) {
    assert!(
        wire.ends_with(b"\r\n"),
        "reply does not end with CRLF: {wire:?}"
    );
    let line_feeds = wire.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(
        line_feeds,
        1,
        "reply is not one line: {:?}",
        String::from_utf8_lossy(wire)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_round_trips() {
        let inputs: [&[u8]; 14] = [
            b"set q 7 -3 3\r\nabc\r\n",
            b"set q -1 0 0\r\n\r\n",
            b"get q/t=5/open/close\r\n",
            b"GETS q/peek extra\r\n",
            b"monitor q 10 3\r\n",
            b"monitor q -1\r\n",
            b"confirm q 2\r\n",
            b"delete q\r\nflush q\r\n",
            b"dump_stats a b\r\n",
            b"dump_stats\r\n",
            b"status  up\r\n",
            b"status \xc9T\xc9\r\n",
            b"STATUS\r\n",
            b"flush_all_expired\r\n",
        ];
        for input in inputs {
            let outcome = check_parse(input, &Limits::default());
            assert!(matches!(outcome, Ok(Some(_))), "{input:?}: {outcome:?}");
            let _ = check_parse(input, &small_limits(63, 31));
        }
    }

    #[test]
    fn errors_and_incomplete_inputs_pass_the_checks() {
        for input in [
            &b"get a.b\r\n"[..],
            b"bogus\r\n",
            b"set q 0 0 3\r\nabcd",
            b"set q 0 0 3\r\nab",
            b"get q",
            b"",
            b"\n",
        ] {
            let _ = check_parse(input, &Limits::default());
            let _ = check_parse(input, &small_limits(4, 1));
        }
    }
}
