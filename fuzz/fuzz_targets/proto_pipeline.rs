//! proto_pipeline: a byte stream parsed the way a connection does it (advance by `consumed` or
//! `Skip(n)`, stop at `Close`, wait for more bytes on `Ok(None)`).
//!
//! - every step makes progress (`consumed > 0`, `Skip(n > 0)`), so the loop always ends, and
//!   every outcome passes `check_shape` (sizes, queue names, one-line error replies);
//! - the requests and errors seen do not depend on how the stream is cut into reads: the whole
//!   stream at once, single bytes, and reads of pseudo-random sizes (seeded from the input) give
//!   the same sequence, and consume the same bytes.
//!
//! Limits: the default ones, and small ones chosen by the input's first byte.
#![no_main]

use bytes::{Buf, BytesMut};
use lanner_fuzz::Rng;
use lanner_fuzz::proto::{Outcome, check_shape, small_limits};
use lanner_proto::{AfterError, Limits, ParseError, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let mut limit_sets = vec![Limits::default()];
    if let [first, second, ..] = input {
        limit_sets.push(small_limits(*first, *second));
    }
    for limits in &limit_sets {
        let whole = serve(input, &[input.len()], limits);
        if input.len() <= 1024 {
            let single = vec![1; input.len()];
            assert_eq!(serve(input, &single, limits), whole, "one byte per read");
        }
        let mut rng = Rng::from_bytes(input);
        let mut reads = Vec::new();
        let mut left = input.len();
        while left > 0 {
            let n = 1 + rng.below(left.min(64));
            reads.push(n);
            left -= n;
        }
        assert_eq!(serve(input, &reads, limits), whole, "reads of {reads:?}");
    }
});

/// What a connection saw: every outcome, how many bytes it consumed, whether it closed.
#[derive(Debug, PartialEq, Eq)]
struct Served {
    outcomes: Vec<Outcome>,
    consumed: usize,
    closed: bool,
}

/// Feeds `input` to a read buffer in reads of the given sizes, parsing after each read.
fn serve(input: &[u8], reads: &[usize], limits: &Limits) -> Served {
    let mut buf = BytesMut::new();
    let mut served = Served {
        outcomes: Vec::new(),
        consumed: 0,
        closed: false,
    };
    let mut at = 0;
    for &read in reads {
        buf.extend_from_slice(&input[at..at + read]);
        at += read;
        loop {
            let outcome = parse(&buf, limits);
            check_shape(&buf, limits, &outcome);
            let step = match &outcome {
                Ok(None) => break,
                Ok(Some(parsed)) => parsed.consumed,
                Err(ParseError {
                    after: AfterError::Skip(n),
                    ..
                }) => *n,
                Err(ParseError {
                    after: AfterError::Close,
                    ..
                }) => {
                    served.outcomes.push(outcome);
                    served.closed = true;
                    return served;
                }
            };
            // check_shape asserted 0 < step <= buf.len(): the loop cannot spin. The buffer
            // starts at the request, so a `Set`'s data range compares across read patterns.
            served.outcomes.push(outcome);
            buf.advance(step);
            served.consumed += step;
        }
    }
    assert!(served.consumed + buf.len() == input.len());
    served
}
