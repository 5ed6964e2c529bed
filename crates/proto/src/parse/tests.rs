//! Example-based tests of `parse`: every command, every error reply and what follows it.

use super::*;
use crate::GetOptions;
use smol_str::SmolStr;

fn parse_default(input: &[u8]) -> Result<Option<Parsed>, ParseError> {
    parse(input, &Limits::default())
}

/// The request parsed from `input` and the bytes it consumed; panics when there is none.
fn parsed(input: &[u8]) -> (Request, usize) {
    match parse_default(input) {
        Ok(Some(Parsed { request, consumed })) => (request, consumed),
        other => panic!("{:?} gave {other:?}", String::from_utf8_lossy(input)),
    }
}

/// The request that the whole of `input` holds.
fn whole(input: &[u8]) -> Request {
    let (request, consumed) = parsed(input);
    assert_eq!(
        consumed,
        input.len(),
        "{:?}",
        String::from_utf8_lossy(input)
    );
    request
}

/// The error `input` is refused with, as (reason, what follows).
fn refused(input: &[u8]) -> (String, AfterError) {
    match parse_default(input) {
        Err(ParseError {
            reply: Response::ClientError(reason),
            after,
        }) => (reason, after),
        other => panic!("{:?} gave {other:?}", String::from_utf8_lossy(input)),
    }
}

fn closes(input: &[u8], reason: &str) {
    assert_eq!(refused(input), (reason.to_owned(), AfterError::Close));
}

/// `input` is refused with `reason` and only its first `skipped` bytes are dropped.
fn skips(input: &[u8], reason: &str, skipped: usize) {
    assert_eq!(
        refused(input),
        (reason.to_owned(), AfterError::Skip(skipped))
    );
}

fn queue(name: &str) -> SmolStr {
    name.into()
}

fn get(name: &str, options: GetOptions) -> Request {
    Request::Get {
        queue: queue(name),
        options,
    }
}

const TERMINATORS: [&str; 2] = ["\n", "\r\n"];

#[test]
fn set_with_either_line_terminator() {
    for end in TERMINATORS {
        let input = format!("set jobs 0 0 5{end}hello\r\n");
        let data_start = input.len() - 7;
        let expected = Request::Set {
            queue: queue("jobs"),
            flags: 0,
            exptime: 0,
            data: data_start..data_start + 5,
        };
        assert_eq!(whole(input.as_bytes()), expected);
    }
}

#[test]
fn set_keeps_flags_and_exptime_and_ignores_noreply() {
    let expected = Request::Set {
        queue: queue("q"),
        flags: 12,
        exptime: 1_000_000,
        data: 28..30,
    };
    assert_eq!(whole(b"set q 12 1000000 2 noreply\r\nab\r\n"), expected);
}

#[test]
fn zero_length_item() {
    assert_eq!(
        whole(b"set q 0 0 0\r\n\r\n"),
        Request::Set {
            queue: queue("q"),
            flags: 0,
            exptime: 0,
            data: 13..13
        }
    );
}

#[test]
fn payload_may_contain_crlf_and_any_byte() {
    let input = b"set q 0 0 12\r\nEND\r\n\r\n\0\xff\n\rx\r\n";
    let Request::Set { data, .. } = whole(input) else {
        panic!("not a set")
    };
    assert_eq!(&input[data], b"END\r\n\r\n\0\xff\n\rx");
}

#[test]
fn get_and_gets_with_options() {
    for end in TERMINATORS {
        let open = GetOptions {
            open: true,
            timeout_ms: Some(250),
            ..GetOptions::default()
        };
        assert_eq!(
            whole(format!("get q{end}").as_bytes()),
            get("q", GetOptions::default())
        );
        assert_eq!(
            whole(format!("gets q/t=250/open{end}").as_bytes()),
            get("q", open)
        );
        assert_eq!(
            whole(format!("get a b c{end}").as_bytes()),
            get("a", GetOptions::default())
        );
    }
}

#[test]
fn command_word_is_case_insensitive_but_arguments_are_not() {
    assert_eq!(
        whole(b"GET Jobs/OPEN\r\n"),
        get("Jobs", GetOptions::default())
    );
    assert_eq!(
        whole(b"GeTs q/peek\r\n"),
        get(
            "q",
            GetOptions {
                peek: true,
                ..GetOptions::default()
            }
        )
    );
    assert!(matches!(
        whole(b"SET q 0 0 1\r\nx\r\n"),
        Request::Set { .. }
    ));
    assert_eq!(whole(b"FLUSH_ALL\n"), Request::FlushAll);
}

#[test]
fn monitor_confirm_and_queue_commands() {
    let monitor = |max_items| Request::Monitor {
        queue: queue("q"),
        seconds: 30,
        max_items,
    };
    assert_eq!(whole(b"monitor q 30\r\n"), monitor(None));
    assert_eq!(whole(b"monitor q 30 7\r\n"), monitor(Some(7)));
    assert_eq!(
        whole(b"monitor q -1 -2\r\n"),
        Request::Monitor {
            queue: queue("q"),
            seconds: 0,
            max_items: Some(0)
        }
    );
    assert_eq!(
        whole(b"confirm q 3\r\n"),
        Request::Confirm {
            queue: queue("q"),
            count: 3
        }
    );
    assert_eq!(
        whole(b"confirm q 0\r\n"),
        Request::Confirm {
            queue: queue("q"),
            count: 0
        }
    );
    assert_eq!(
        whole(b"delete q\r\n"),
        Request::Delete { queue: queue("q") }
    );
    assert_eq!(whole(b"flush q\n"), Request::Flush { queue: queue("q") });
    assert_eq!(
        whole(b"flush_expired q\r\n"),
        Request::FlushExpired { queue: queue("q") }
    );
}

#[test]
fn commands_without_arguments_ignore_extra_ones() {
    let cases: [(&[u8], Request); 9] = [
        (b"flush_all\r\n", Request::FlushAll),
        (b"flush_all_expired\r\n", Request::FlushAllExpired),
        (b"stats\r\n", Request::Stats),
        (b"stats detail dump\r\n", Request::Stats),
        (b"dump_config\r\n", Request::DumpConfig),
        (b"version\r\n", Request::Version),
        (b"reload now\r\n", Request::Reload),
        (b"shutdown\r\n", Request::Shutdown),
        (b"quit\n", Request::Quit),
    ];
    for (input, expected) in cases {
        assert_eq!(whole(input), expected);
    }
    assert_eq!(
        whole(b"delete q extra\r\n"),
        Request::Delete { queue: queue("q") }
    );
}

#[test]
fn dump_stats_with_and_without_names() {
    assert_eq!(
        whole(b"dump_stats\r\n"),
        Request::DumpStats { queues: vec![] }
    );
    assert_eq!(
        whole(b"dump_stats a b+c\r\n"),
        Request::DumpStats {
            queues: vec![queue("a"), queue("b+c")]
        }
    );
}

#[test]
fn status_name_is_lower_cased_and_not_validated() {
    assert_eq!(whole(b"status\r\n"), Request::Status { new_status: None });
    assert_eq!(
        whole(b"STATUS ReadOnly\r\n"),
        Request::Status {
            new_status: Some("readonly".into())
        }
    );
    assert_eq!(
        whole(b"status b.o/gus\r\n"),
        Request::Status {
            new_status: Some("b.o/gus".into())
        }
    );
}

#[test]
fn pipelined_requests_are_parsed_one_at_a_time() {
    let input = b"set q 0 0 3\r\nabc\r\nget q/open\r\nversion\n";
    let (first, consumed) = parsed(input);
    assert!(matches!(first, Request::Set { data, .. } if data == (13..16)));
    assert_eq!(consumed, 18);
    let (second, consumed_second) = parsed(&input[consumed..]);
    assert_eq!(
        second,
        get(
            "q",
            GetOptions {
                open: true,
                ..GetOptions::default()
            }
        )
    );
    let rest = &input[consumed + consumed_second..];
    assert_eq!(
        parse_default(rest),
        Ok(Some(Parsed {
            request: Request::Version,
            consumed: 8
        }))
    );
}

#[test]
fn every_strict_prefix_of_a_valid_request_is_incomplete() {
    let requests: [&[u8]; 6] = [
        b"set q 0 0 5\r\nhello\r\n",
        b"set q 0 0 0\n\r\n",
        b"set q 0 0 4\r\n\r\n\r\n\r\n",
        b"get q/t=100/open\r\n",
        b"monitor q 10 2\n",
        b"add q 0 0 1\r\nx\r\n",
    ];
    for request in requests {
        for end in 0..request.len() {
            assert_eq!(
                parse_default(&request[..end]),
                Ok(None),
                "{:?}",
                String::from_utf8_lossy(&request[..end])
            );
        }
    }
}

#[test]
fn unknown_commands_close() {
    for input in [
        &b"incr q 1\r\n"[..],
        b"\r\n",
        b"\n",
        b" get q\r\n",
        b"   \r\n",
        b"peek q\r\n",
        b"get\tq\r\n",
    ] {
        closes(input, "unknown command");
    }
}

#[test]
fn unimplemented_storage_commands_consume_their_data_then_close() {
    for verb in ["add", "replace", "append", "prepend", "cas", "ADD"] {
        let input = format!("{verb} q 0 0 2\r\nab\r\n");
        assert_eq!(
            parse_default(&input.as_bytes()[..input.len() - 1]),
            Ok(None)
        );
        closes(input.as_bytes(), "unknown command");
    }
}

#[test]
fn overlong_lines_close() {
    let limits = Limits {
        max_line_len: 8,
        ..Limits::default()
    };
    let too_long = Err(ParseError {
        reply: Response::ClientError("line too long".into()),
        after: AfterError::Close,
    });
    assert_eq!(parse(b"get abcde\r\n", &limits), too_long);
    assert_eq!(parse(b"get abcdefghij", &limits), too_long);
    assert!(matches!(parse(b"get abcd\r\n", &limits), Ok(Some(_))));
    assert_eq!(parse(b"get abcd\r", &limits), Ok(None));
}

#[test]
fn set_framing_errors_close() {
    closes(b"set q 0 0\r\n", "bad command line format");
    closes(b"set q\r\n", "bad command line format");
    closes(b"set q 0 0 five\r\nhello\r\n", "bad data length");
    closes(b"set q 0 0 -1\r\n", "bad data length");
    closes(b"set q 0 0 5\r\nhelloXY", "bad data chunk");
    closes(b"set q 0 0 5\r\nhello\n", "bad data chunk");
}

#[test]
fn oversized_items_close_before_any_data_arrives() {
    let limits = Limits {
        max_item_size: 4,
        ..Limits::default()
    };
    let too_large = Err(ParseError {
        reply: Response::ClientError("item too large".into()),
        after: AfterError::Close,
    });
    assert_eq!(parse(b"set q 0 0 5\r\n", &limits), too_large);
    assert!(matches!(
        parse(b"set q 0 0 4\r\nabcd\r\n", &limits),
        Ok(Some(_))
    ));
    closes(b"set q 0 0 2147483647\r\n", "item too large");
}

#[test]
fn bad_set_arguments_skip_the_whole_request_after_its_data() {
    let next = b"get q\r\n";
    for (line, reason) in [
        ("set q zero 0 3", "bad flags"),
        ("set q 4294967295 0 3", "bad flags"),
        ("set q 0 later 3", "bad exptime"),
        ("set q 0 99999999999 3", "bad exptime"),
        ("set a.b 0 0 3", "bad queue name"),
        ("set  0 0 3", "bad queue name"),
        ("set +q 0 0 3", "bad queue name"),
    ] {
        let request = format!("{line}\r\nabc\r\n");
        assert_eq!(
            parse_default(&request.as_bytes()[..request.len() - 1]),
            Ok(None),
            "{line}"
        );
        let input = [request.as_bytes(), next].concat();
        skips(&input, reason, request.len());
    }
}

#[test]
fn non_utf8_queue_names_are_bad_queue_names() {
    skips(b"get caf\xe9\r\n", "bad queue name", 10);
    assert_eq!(
        whole("get caf\u{e9}\r\n".as_bytes()),
        get("caf\u{e9}", GetOptions::default())
    );
}

#[test]
fn get_errors() {
    skips(b"get\r\n", "missing queue name", 5);
    skips(b"gets \r\n", "missing queue name", 7);
    skips(b"get q/t=soon\r\nget q\r\n", "bad timeout", 14);
    skips(b"get a~b/open\n", "bad queue name", 13);
    closes(b"get /open\r\n", "empty queue name");
    closes(b"get  q\r\n", "empty queue name");
    closes(b"get q/peek/open\r\n", "conflicting get options");
    closes(b"get q/abort/close\r\n", "conflicting get options");
    closes(b"get q/peek/abort\r\n", "conflicting get options");
}

#[test]
fn monitor_errors() {
    skips(b"monitor\r\n", "missing queue name", 9);
    skips(b"monitor q\r\n", "bad seconds", 11);
    skips(b"monitor q ten\r\n", "bad seconds", 15);
    skips(b"monitor q 10 many\r\n", "bad max items", 19);
    skips(b"monitor q.x 10\r\n", "bad queue name", 16);
}

#[test]
fn confirm_errors() {
    skips(b"confirm\r\n", "missing queue name", 9);
    skips(b"confirm q\r\n", "bad count", 11);
    skips(b"confirm q x\r\n", "bad count", 13);
    skips(b"confirm q -1\r\n", "bad count", 14);
}

#[test]
fn queue_commands_need_a_valid_queue() {
    for verb in ["delete", "flush", "flush_expired"] {
        let missing = format!("{verb}\r\n");
        skips(missing.as_bytes(), "missing queue name", missing.len());
        let bad = format!("{verb} ../etc\r\n");
        skips(bad.as_bytes(), "bad queue name", bad.len());
    }
    skips(b"dump_stats a b/c\r\n", "bad queue name", 18);
}
