//! Property tests of the text decoder: it never panics and never claims more bytes than it was
//! given, feeding the input in pieces gives the same answer as feeding it whole, and every
//! valid request written by a small test-only encoder parses back to itself.

use proptest::prelude::*;

use super::*;

/// Checks the invariants that must hold for any input, and returns the outcome.
fn decode_checked(
    decoder: &mut TextDecoder,
    input: &[u8],
) -> Result<Option<TextParsed>, TextParseError> {
    let outcome = decoder.decode(input);
    match &outcome {
        Ok(Some(parsed)) => {
            assert!(parsed.consumed > 0 && parsed.consumed <= input.len());
            if let TextRequest::Put { items, .. } = &parsed.request {
                assert!(items.len() <= MAX_PUT_ITEMS);
                for item in items {
                    assert!(item.start < item.end && item.end < parsed.consumed);
                    assert!(!input[item.clone()].contains(&b'\n'));
                }
            }
        }
        Err(TextParseError {
            after: AfterError::Skip(skipped),
            ..
        }) => assert!(*skipped > 0 && *skipped <= input.len()),
        Ok(None)
        | Err(TextParseError {
            after: AfterError::Close,
            ..
        }) => {}
    }
    outcome
}

fn parse_checked(input: &[u8], limits: &Limits) -> Result<Option<TextParsed>, TextParseError> {
    decode_checked(&mut TextDecoder::new(limits), input)
}

fn small_limits() -> impl Strategy<Value = Limits> {
    (0usize..48).prop_map(|max_line_len| Limits {
        max_line_len,
        ..Limits::default()
    })
}

/// Lines made of words the decoder knows, mixed with noise, to reach into every command.
fn near_miss_input() -> impl Strategy<Value = Vec<u8>> {
    let word = prop_oneof![
        Just("put"),
        Just("PUT"),
        Just("get"),
        Just("peek"),
        Just("monitor"),
        Just("confirm"),
        Just("flush"),
        Just("delete"),
        Just("status"),
        Just("q"),
        Just("q:"),
        Just(":"),
        Just("0"),
        Just("-1"),
        Just("2147483648"),
        Just("x"),
        Just(""),
        Just("\n"),
        Just("\r\n"),
        Just("\n\n"),
        Just("a.b"),
        Just("\u{e9}"),
    ];
    (
        prop::collection::vec(word, 0..16),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(words, noise)| {
            let mut input = words.join(" ").into_bytes();
            input.extend_from_slice(&noise);
            input
        })
}

fn queue_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_\u{e9}-][a-zA-Z0-9_+\u{e9}-]{0,30}"
}

/// An item a put can carry: non-empty, no LF, not ending in CR.
fn item() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(any::<u8>().prop_filter("no LF", |&b| b != b'\n'), 0..24),
        any::<u8>().prop_filter("no line end", |&b| b != b'\n' && b != b'\r'),
    )
        .prop_map(|(mut body, last)| {
            body.push(last);
            body
        })
}

fn positive_ms() -> impl Strategy<Value = u32> {
    1..=i32::MAX.cast_unsigned()
}

/// A valid request with the items of a put, which [`encode`] places in the input.
fn valid_request() -> impl Strategy<Value = (TextRequest, Vec<Vec<u8>>)> {
    let no_items = |request: TextRequest| (request, Vec::new());
    prop_oneof![
        (
            queue_name(),
            prop::option::of(any::<i32>()),
            prop::collection::vec(item(), 0..6)
        )
            .prop_map(|(queue, expiry_ms, items)| {
                let put = TextRequest::Put {
                    queue,
                    expiry_ms,
                    items: Vec::new(),
                };
                (put, items)
            }),
        (queue_name(), prop::option::of(positive_ms()))
            .prop_map(|(queue, timeout_ms)| TextRequest::Get { queue, timeout_ms })
            .prop_map(no_items),
        (queue_name(), prop::option::of(positive_ms()))
            .prop_map(|(queue, timeout_ms)| TextRequest::Peek { queue, timeout_ms })
            .prop_map(no_items),
        (queue_name(), 0..=i32::MAX.cast_unsigned())
            .prop_map(|(queue, timeout_ms)| TextRequest::Monitor { queue, timeout_ms })
            .prop_map(no_items),
        (queue_name(), 0..=i32::MAX.cast_unsigned())
            .prop_map(|(queue, count)| TextRequest::Confirm { queue, count })
            .prop_map(no_items),
        queue_name()
            .prop_map(|queue| TextRequest::Flush { queue })
            .prop_map(no_items),
        queue_name()
            .prop_map(|queue| TextRequest::Delete { queue })
            .prop_map(no_items),
        prop::option::of("[a-z]{1,12}")
            .prop_map(|new_status| TextRequest::Status { new_status })
            .prop_map(no_items),
        prop_oneof![
            Just(TextRequest::Version),
            Just(TextRequest::Shutdown),
            Just(TextRequest::Quit),
        ]
        .prop_map(no_items),
    ]
}

/// Test-only encoder: the wire form of `request` with `items` (a put always as a block), and
/// the request as the decoder should return it, the items' ranges placed in the input.
fn encode(request: &TextRequest, items: &[Vec<u8>], line_end: &str) -> (Vec<u8>, TextRequest) {
    let line = match request {
        TextRequest::Put {
            queue, expiry_ms, ..
        } => match expiry_ms {
            Some(ms) => format!("put {queue} {ms}:"),
            None => format!("put {queue}:"),
        },
        TextRequest::Get { queue, timeout_ms } => with_number("get", queue, *timeout_ms),
        TextRequest::Peek { queue, timeout_ms } => with_number("peek", queue, *timeout_ms),
        TextRequest::Monitor { queue, timeout_ms } => format!("monitor {queue} {timeout_ms}"),
        TextRequest::Confirm { queue, count } => format!("confirm {queue} {count}"),
        TextRequest::Flush { queue } => format!("flush {queue}"),
        TextRequest::Delete { queue } => format!("delete {queue}"),
        TextRequest::Status {
            new_status: Some(name),
        } => format!("status {name}"),
        TextRequest::Status { new_status: None } => "status".to_owned(),
        TextRequest::Version => "version".to_owned(),
        TextRequest::Shutdown => "shutdown".to_owned(),
        TextRequest::Quit => "quit".to_owned(),
    };
    let mut wire = format!("{line}{line_end}").into_bytes();
    let mut expected = request.clone();
    if let TextRequest::Put {
        items: expected_items,
        ..
    } = &mut expected
    {
        for item in items {
            expected_items.push(wire.len()..wire.len() + item.len());
            wire.extend_from_slice(item);
            wire.extend_from_slice(line_end.as_bytes());
        }
        wire.extend_from_slice(line_end.as_bytes());
    }
    (wire, expected)
}

fn with_number(command: &str, queue: &str, number: Option<u32>) -> String {
    match number {
        Some(number) => format!("{command} {queue} {number}"),
        None => format!("{command} {queue}"),
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_break_the_invariants(input in prop::collection::vec(any::<u8>(), 0..512)) {
        parse_checked(&input, &Limits::default()).ok();
    }

    #[test]
    fn near_miss_lines_never_break_the_invariants(input in near_miss_input(), limits in small_limits()) {
        parse_checked(&input, &limits).ok();
        parse_checked(&input, &Limits::default()).ok();
    }

    #[test]
    fn feeding_the_input_in_pieces_gives_the_answer_of_feeding_it_whole(
        input in near_miss_input(),
        limits in small_limits(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let whole = parse_checked(&input, &limits);
        let mut ends: Vec<usize> = cuts.iter().map(|cut| cut.index(input.len() + 1)).collect();
        ends.push(input.len());
        ends.sort_unstable();
        let mut decoder = TextDecoder::new(&limits);
        let mut answer = Ok(None);
        for end in ends {
            answer = decode_checked(&mut decoder, &input[..end]);
            if answer != Ok(None) {
                break;
            }
        }
        prop_assert_eq!(answer, whole);
    }

    #[test]
    fn valid_requests_round_trip(
        (request, items) in valid_request(),
        crlf in any::<bool>(),
        next in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let line_end = if crlf { "\r\n" } else { "\n" };
        let (wire, expected) = encode(&request, &items, line_end);
        let consumed = wire.len();
        let input = [wire, next].concat();
        let outcome = parse_checked(&input, &Limits::default());
        prop_assert_eq!(outcome, Ok(Some(TextParsed { request: expected, consumed })));
    }

    #[test]
    fn strict_prefixes_of_valid_requests_are_incomplete((request, items) in valid_request()) {
        let (wire, _) = encode(&request, &items, "\n");
        for end in 0..wire.len() {
            prop_assert_eq!(parse_checked(&wire[..end], &Limits::default()), Ok(None));
        }
    }
}
