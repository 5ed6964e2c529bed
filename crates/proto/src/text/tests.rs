//! Example-based tests of the text decoder: every command, every error and what follows it.

use super::*;

fn limits() -> Limits {
    Limits::default()
}

/// The request the whole of `input` holds.
fn whole(input: &[u8]) -> TextRequest {
    match parse_text(input, &limits()) {
        Ok(Some(TextParsed { request, consumed })) => {
            assert_eq!(
                consumed,
                input.len(),
                "{:?}",
                String::from_utf8_lossy(input)
            );
            request
        }
        other => panic!("{:?} gave {other:?}", String::from_utf8_lossy(input)),
    }
}

/// The error `input` is refused with.
fn refused(input: &[u8]) -> (String, AfterError) {
    match parse_text(input, &limits()) {
        Err(TextParseError {
            reply: TextReply::Error(message),
            after,
        }) => (message, after),
        other => panic!("{:?} gave {other:?}", String::from_utf8_lossy(input)),
    }
}

/// `input` is refused with `message` and skipped whole; the connection goes on.
fn skipped(input: &[u8], message: &str) {
    assert_eq!(
        refused(input),
        (message.to_owned(), AfterError::Skip(input.len()))
    );
}

fn queue(name: &str) -> String {
    name.to_owned()
}

#[test]
fn one_line_commands() {
    assert_eq!(
        whole(b"get q\n"),
        TextRequest::Get {
            queue: queue("q"),
            timeout_ms: None
        }
    );
    assert_eq!(
        whole(b"GET q 250\r\n"),
        TextRequest::Get {
            queue: queue("q"),
            timeout_ms: Some(250)
        }
    );
    assert_eq!(
        whole(b"peek q 7\n"),
        TextRequest::Peek {
            queue: queue("q"),
            timeout_ms: Some(7)
        }
    );
    assert_eq!(
        whole(b"monitor q 1000\n"),
        TextRequest::Monitor {
            queue: queue("q"),
            timeout_ms: 1000
        }
    );
    assert_eq!(
        whole(b"confirm q 3\n"),
        TextRequest::Confirm {
            queue: queue("q"),
            count: 3
        }
    );
    assert_eq!(
        whole(b"flush q\n"),
        TextRequest::Flush { queue: queue("q") }
    );
    assert_eq!(
        whole(b"Delete q\n"),
        TextRequest::Delete { queue: queue("q") }
    );
    assert_eq!(whole(b"status\n"), TextRequest::Status { new_status: None });
    assert_eq!(
        whole(b"status ReadOnly\n"),
        TextRequest::Status {
            new_status: Some("readonly".to_owned())
        }
    );
    assert_eq!(whole(b"version\n"), TextRequest::Version);
    assert_eq!(whole(b"SHUTDOWN\n"), TextRequest::Shutdown);
    assert_eq!(whole(b"quit\r\n"), TextRequest::Quit);
}

#[test]
fn zero_and_negative_timeouts_do_not_wait() {
    for input in [&b"get q 0\n"[..], b"get q -5\n"] {
        assert_eq!(
            whole(input),
            TextRequest::Get {
                queue: queue("q"),
                timeout_ms: None
            }
        );
    }
    assert_eq!(
        whole(b"monitor q -1\n"),
        TextRequest::Monitor {
            queue: queue("q"),
            timeout_ms: 0
        }
    );
}

#[test]
fn extra_arguments_are_ignored_as_in_kestrel() {
    assert_eq!(
        whole(b"get q 5 extra\n"),
        TextRequest::Get {
            queue: queue("q"),
            timeout_ms: Some(5)
        }
    );
    assert_eq!(whole(b"version now\n"), TextRequest::Version);
}

#[test]
fn put_block_items_are_byte_ranges_of_their_lines() {
    let input = b"put q:\nfirst\n\x00\x80\xff\rx\r\nlast\n\n";
    let TextRequest::Put {
        queue: name,
        expiry_ms,
        items,
    } = whole(input)
    else {
        panic!("not a put");
    };
    assert_eq!((name.as_str(), expiry_ms), ("q", None));
    let items: Vec<&[u8]> = items.into_iter().map(|range| &input[range]).collect();
    assert_eq!(items, [&b"first"[..], b"\x00\x80\xff\rx", b"last"]);
}

#[test]
fn put_with_expiry_and_crlf_lines() {
    assert_eq!(
        whole(b"Put q 1500:\r\na\r\n\r\n"),
        TextRequest::Put {
            queue: queue("q"),
            expiry_ms: Some(1500),
            items: vec![Range { start: 13, end: 14 }]
        }
    );
    assert_eq!(
        whole(b"put q -1:\n\n"),
        TextRequest::Put {
            queue: queue("q"),
            expiry_ms: Some(-1),
            items: vec![]
        }
    );
}

#[test]
fn put_without_colon_has_no_items() {
    assert_eq!(
        whole(b"put q\n"),
        TextRequest::Put {
            queue: queue("q"),
            expiry_ms: None,
            items: vec![]
        }
    );
}

#[test]
fn blocks_of_other_commands_are_consumed_and_their_items_ignored() {
    assert_eq!(
        whole(b"get q:\nignored\n\n"),
        TextRequest::Get {
            queue: queue("q"),
            timeout_ms: None
        }
    );
}

#[test]
fn only_the_first_request_is_parsed() {
    let input = b"put q:\na\n\nget q\n";
    assert_eq!(
        parse_text(input, &limits()),
        Ok(Some(TextParsed {
            request: TextRequest::Put {
                queue: queue("q"),
                expiry_ms: None,
                items: vec![Range { start: 7, end: 8 }]
            },
            consumed: 10
        }))
    );
}

#[test]
fn incomplete_requests_wait() {
    for input in [
        &b""[..],
        b"get q",
        b"get q\r",
        b"put q:\n",
        b"put q:\na\n",
        b"put q:\na",
        b"put q:\na\n\r",
    ] {
        assert_eq!(parse_text(input, &limits()), Ok(None), "{input:?}");
    }
}

#[test]
fn unknown_commands_echo_the_lower_cased_word() {
    skipped(b"FOO bar\n", "Unknown command: foo");
    skipped(b"\n", "Unknown command: ");
    skipped(b" get q\n", "Unknown command: ");
    skipped(b"set q 0 0 1\n", "Unknown command: set");
    skipped(b"x:\nitem\n\n", "Unknown command: x");
}

#[test]
fn missing_arguments() {
    for input in [
        &b"get\n"[..],
        b"peek\n",
        b"put\n",
        b"put:\n\n",
        b"flush\n",
        b"delete \n",
    ] {
        skipped(input, "Queue name required.");
    }
    skipped(b"monitor q\n", "Queue name & timeout required.");
    skipped(b"confirm q\n", "Queue name & count required.");
}

#[test]
fn bad_queue_names() {
    for input in [
        &b"get a.b\n"[..],
        b"get  q\n",
        b"peek a/b\n",
        b"put +q:\nitem\n\n",
        b"flush caf\xe9\n",
        b"monitor ~q 5\n",
        b"confirm a.b 1\n",
        b"delete a\x00b\n",
    ] {
        skipped(input, "Bad queue name.");
    }
}

#[test]
fn bad_numbers() {
    skipped(b"put q soon:\nitem\n\n", "Error parsing expiration time.");
    skipped(b"put q 2147483648\n", "Error parsing expiration time.");
    skipped(b"get q 1s\n", "Error parsing timeout.");
    skipped(b"peek q x\n", "Error parsing timeout.");
    skipped(b"monitor q forever\n", "Error parsing timeout.");
    skipped(b"confirm q -1\n", "Error parsing count.");
    skipped(b"confirm q two\n", "Error parsing count.");
}

#[test]
fn too_long_lines_close_the_connection() {
    let limits = Limits {
        max_line_len: 8,
        ..Limits::default()
    };
    let too_long = Err(TextParseError {
        reply: TextReply::Error("Line too long; limit=8.".to_owned()),
        after: AfterError::Close,
    });
    assert_eq!(parse_text(b"get queue1\n", &limits), too_long);
    assert_eq!(parse_text(b"get queue1", &limits), too_long);
    assert_eq!(parse_text(b"put q:\n123456789\n\n", &limits), too_long);
    assert!(matches!(parse_text(b"get 1234\n", &limits), Ok(Some(_))));
}

#[test]
fn a_block_of_the_item_limit_is_accepted() {
    let mut input = b"put q:\n".to_vec();
    input.extend(b"x\n".repeat(MAX_PUT_ITEMS));
    input.extend(b"\n");
    let TextRequest::Put { items, .. } = whole(&input) else {
        panic!("not a put");
    };
    assert_eq!(items.len(), MAX_PUT_ITEMS);
}

#[test]
fn a_block_over_the_item_limit_closes_the_connection_instead_of_dropping_a_line() {
    let mut input = b"put q:\n".to_vec();
    input.extend(b"x\n".repeat(MAX_PUT_ITEMS + 1));
    assert_eq!(
        refused(&input),
        (
            "Too many items in one put; limit=1024.".to_owned(),
            AfterError::Close
        )
    );
}

#[test]
fn the_decoder_resumes_a_block_where_it_stopped() {
    let input = b"put q 5:\none\ntwo\n\nversion\n";
    let mut decoder = TextDecoder::new(&limits());
    for end in [3, 9, 13, 16, 17] {
        assert_eq!(decoder.decode(&input[..end]), Ok(None), "{end}");
    }
    let parsed = decoder
        .decode(&input[..18])
        .expect("valid")
        .expect("complete");
    assert_eq!(parsed.consumed, 18);
    assert_eq!(
        parsed.request,
        TextRequest::Put {
            queue: queue("q"),
            expiry_ms: Some(5),
            items: vec![9..12, 13..16]
        }
    );
    assert_eq!(
        decoder.decode(&input[18..]),
        Ok(Some(TextParsed {
            request: TextRequest::Version,
            consumed: 8
        }))
    );
}

#[test]
fn the_decoder_starts_over_when_given_a_shorter_input() {
    let mut decoder = TextDecoder::new(&limits());
    assert_eq!(decoder.decode(b"put q:\nabc\n"), Ok(None));
    assert_eq!(
        decoder.decode(b"quit\n"),
        Ok(Some(TextParsed {
            request: TextRequest::Quit,
            consumed: 5
        }))
    );
}
