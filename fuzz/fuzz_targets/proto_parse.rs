//! proto_parse: `lanner_proto::parse` on arbitrary bytes, with the invariants of
//! `lanner_fuzz::proto::check_parse`:
//!
//! - sizes: `0 < consumed <= input.len()`, `Skip(n)` has `0 < n <= input.len()`, a `Set`'s data
//!   lies inside the request right after its line, ends with `\r\n` and is at most
//!   `max_item_size`, a line is at most `max_line_len` (+ its terminator);
//! - every queue name passes `validate_queue_name`, get options never conflict;
//! - an error reply is a one-line `CLIENT_ERROR <reason>`;
//! - the consumed (or skipped) bytes alone parse the same; every shorter prefix of the input
//!   parses to `Ok(None)` or the same outcome; more bytes after a decided outcome change
//!   nothing;
//! - `requested_key` finds a get's key (and nothing in any other request);
//! - the canonical re-encoding of a parsed request parses back to the same request.
//!
//! Each input is parsed with the default limits and with small limits taken from its last two
//! bytes, so the corpus stays plain protocol text.
#![no_main]

use lanner_fuzz::proto::{check_parse, small_limits};
use lanner_proto::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let _ = check_parse(input, &Limits::default());
    if let [.., item, line] = input {
        let _ = check_parse(input, &small_limits(*line, *item));
    }
});
