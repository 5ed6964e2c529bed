//! Property tests of `parse`: it never panics and never claims more bytes than it was given, and
//! every valid request written by a small test-only encoder parses back to itself.

use proptest::prelude::*;

use super::*;
use crate::GetOptions;
use smol_str::SmolStr;

/// Checks the invariants that must hold for any input, and returns the outcome.
fn parse_checked(input: &[u8], limits: &Limits) -> Result<Option<Parsed>, ParseError> {
    let outcome = parse(input, limits);
    match &outcome {
        Ok(Some(parsed)) => {
            assert!(parsed.consumed > 0 && parsed.consumed <= input.len());
            if let Request::Set { data, .. } = &parsed.request {
                assert!(data.start <= data.end && data.end + 2 == parsed.consumed);
            }
        }
        Err(ParseError {
            after: AfterError::Skip(skipped),
            ..
        }) => {
            assert!(*skipped > 0 && *skipped <= input.len());
        }
        Ok(None)
        | Err(ParseError {
            after: AfterError::Close,
            ..
        }) => {}
    }
    outcome
}

fn small_limits() -> impl Strategy<Value = Limits> {
    (0usize..64, 0usize..32).prop_map(|(max_line_len, max_item_size)| Limits {
        max_line_len,
        max_item_size,
    })
}

/// Lines made of words the parser knows, mixed with noise, to reach deep into every command.
fn near_miss_input() -> impl Strategy<Value = Vec<u8>> {
    let word = prop_oneof![
        Just("set"),
        Just("get"),
        Just("gets"),
        Just("ADD"),
        Just("monitor"),
        Just("confirm"),
        Just("delete"),
        Just("flush"),
        Just("dump_stats"),
        Just("status"),
        Just("q"),
        Just("q/open"),
        Just("q/t=5/peek"),
        Just("/abort"),
        Just("0"),
        Just("-1"),
        Just("3"),
        Just("x"),
        Just(""),
        Just("\r\n"),
        Just("\n"),
        Just("abc"),
        Just("a.b"),
        Just("+q"),
    ];
    (
        prop::collection::vec(word, 0..12),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(words, noise)| {
            let mut input = words.join(" ").into_bytes();
            input.extend_from_slice(&noise);
            input
        })
}

/// Names short enough to be held inline and long enough to be on the heap.
fn queue_name() -> impl Strategy<Value = SmolStr> {
    "[a-zA-Z0-9_\u{e9}-][a-zA-Z0-9_+\u{e9}-]{0,30}".prop_map(SmolStr::from)
}

fn java_int_value() -> impl Strategy<Value = u32> {
    0..=i32::MAX.cast_unsigned()
}

fn get_options() -> impl Strategy<Value = GetOptions> {
    let flags = prop_oneof![
        Just((false, false, false, false)),
        Just((true, false, false, false)),
        Just((false, true, false, false)),
        Just((true, true, false, false)),
        Just((false, false, true, false)),
        Just((false, false, false, true)),
    ];
    (flags, prop::option::of(1..=i32::MAX.cast_unsigned())).prop_map(
        |((open, close, abort, peek), timeout_ms)| GetOptions {
            timeout_ms,
            open,
            close,
            abort,
            peek,
        },
    )
}

/// A valid request; a `set`'s `data` holds `0..len` and is placed by [`encode_request`].
fn valid_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (queue_name(), any::<u32>(), any::<i32>(), 0usize..64).prop_map(
            |(queue, flags, exptime, len)| {
                Request::Set {
                    queue,
                    flags,
                    exptime: exptime.into(),
                    data: 0..len,
                }
            }
        ),
        (queue_name(), get_options()).prop_map(|(queue, options)| Request::Get { queue, options }),
        (
            queue_name(),
            java_int_value(),
            prop::option::of(java_int_value())
        )
            .prop_map(|(queue, seconds, max_items)| Request::Monitor {
                queue,
                seconds,
                max_items
            }),
        (queue_name(), java_int_value())
            .prop_map(|(queue, count)| Request::Confirm { queue, count }),
        queue_name().prop_map(|queue| Request::Delete { queue }),
        queue_name().prop_map(|queue| Request::Flush { queue }),
        queue_name().prop_map(|queue| Request::FlushExpired { queue }),
        prop::collection::vec(queue_name(), 0..4).prop_map(|queues| Request::DumpStats { queues }),
        prop::option::of("[a-z]{1,12}").prop_map(|new_status| Request::Status { new_status }),
        prop_oneof![
            Just(Request::FlushAll),
            Just(Request::FlushAllExpired),
            Just(Request::Stats),
            Just(Request::DumpConfig),
            Just(Request::Version),
            Just(Request::Reload),
            Just(Request::Shutdown),
            Just(Request::Quit),
        ],
    ]
}

/// Test-only encoder: the wire form of `request` (the command word in upper case when `shout`)
/// and the request as `parse` should return it, with a `set`'s data range placed in the input.
fn encode_request(
    request: &Request,
    payload_byte: u8,
    line_end: &str,
    shout: bool,
) -> (Vec<u8>, Request) {
    let mut expected = request.clone();
    let line = match request {
        Request::Set {
            queue,
            flags,
            exptime,
            data,
        } => {
            format!(
                "set {queue} {} {exptime} {}",
                flags.cast_signed(),
                data.len()
            )
        }
        Request::Get { queue, options } => format!("get {queue}{}", encode_options(options)),
        Request::Monitor {
            queue,
            seconds,
            max_items: Some(max),
        } => format!("monitor {queue} {seconds} {max}"),
        Request::Monitor {
            queue,
            seconds,
            max_items: None,
        } => format!("monitor {queue} {seconds}"),
        Request::Confirm { queue, count } => format!("confirm {queue} {count}"),
        Request::Delete { queue } => format!("delete {queue}"),
        Request::Flush { queue } => format!("flush {queue}"),
        Request::FlushExpired { queue } => format!("flush_expired {queue}"),
        Request::DumpStats { queues } => std::iter::once("dump_stats")
            .chain(queues.iter().map(SmolStr::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        Request::Status {
            new_status: Some(status),
        } => format!("status {status}"),
        Request::Status { new_status: None } => "status".to_owned(),
        Request::FlushAll => "flush_all".to_owned(),
        Request::FlushAllExpired => "flush_all_expired".to_owned(),
        Request::Stats => "stats".to_owned(),
        Request::DumpConfig => "dump_config".to_owned(),
        Request::Version => "version".to_owned(),
        Request::Reload => "reload".to_owned(),
        Request::Shutdown => "shutdown".to_owned(),
        Request::Quit => "quit".to_owned(),
    };
    let (word, args) = line.split_once(' ').unwrap_or((&line, ""));
    let word = if shout {
        word.to_ascii_uppercase()
    } else {
        word.to_owned()
    };
    let separator = if args.is_empty() { "" } else { " " };
    let mut wire = format!("{word}{separator}{args}{line_end}").into_bytes();
    if let Request::Set {
        data: expected_data,
        ..
    } = &mut expected
    {
        let start = wire.len();
        wire.resize(start + expected_data.len(), payload_byte);
        wire.extend_from_slice(b"\r\n");
        *expected_data = start..start + expected_data.len();
    }
    (wire, expected)
}

fn encode_options(options: &GetOptions) -> String {
    let mut key = String::new();
    let flags = [
        (options.open, "open"),
        (options.close, "close"),
        (options.abort, "abort"),
        (options.peek, "peek"),
    ];
    for (_, option) in flags.iter().filter(|(set, _)| *set) {
        key.push('/');
        key.push_str(option);
    }
    if let Some(millis) = options.timeout_ms {
        key.push_str(&format!("/t={millis}"));
    }
    key
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_break_the_invariants(input in prop::collection::vec(any::<u8>(), 0..512)) {
        parse_checked(&input, &Limits::default()).ok();
    }

    #[test]
    fn arbitrary_bytes_with_tiny_limits_never_break_the_invariants(
        input in prop::collection::vec(any::<u8>(), 0..128),
        limits in small_limits(),
    ) {
        parse_checked(&input, &limits).ok();
    }

    #[test]
    fn near_miss_lines_never_break_the_invariants(input in near_miss_input(), limits in small_limits()) {
        parse_checked(&input, &limits).ok();
        parse_checked(&input, &Limits::default()).ok();
    }

    #[test]
    fn valid_requests_round_trip(
        request in valid_request(),
        payload_byte in any::<u8>(),
        crlf in any::<bool>(),
        shout in any::<bool>(),
        next in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let line_end = if crlf { "\r\n" } else { "\n" };
        let (wire, expected) = encode_request(&request, payload_byte, line_end, shout);
        let consumed = wire.len();
        let input = [wire, next].concat();
        let outcome = parse_checked(&input, &Limits::default());
        prop_assert_eq!(outcome, Ok(Some(Parsed { request: expected, consumed })));
    }

    #[test]
    fn strict_prefixes_of_valid_requests_are_incomplete(request in valid_request(), crlf in any::<bool>()) {
        let line_end = if crlf { "\r\n" } else { "\n" };
        let (wire, _) = encode_request(&request, b'\n', line_end, false);
        for end in 0..wire.len() {
            prop_assert_eq!(parse_checked(&wire[..end], &Limits::default()), Ok(None));
        }
    }
}
