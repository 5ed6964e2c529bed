//! The committed seed corpus, built here so it stays in step with the input formats.
//!
//! `cargo test --lib` checks that every seed file under `corpus/` matches what is built here;
//! `LANNER_WRITE_SEEDS=1 cargo test --lib` (re)writes them. Inputs the fuzzer found (crash
//! reproducers, named `crash-*`) also live in `corpus/` and are left alone.

use std::path::PathBuf;

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use lanner_journal::Record;

use crate::Rng;
use crate::journal_model::{encode_record, header};
use crate::response::{AnyResponse, Input};

/// (target, file name, bytes).
type Seed = (&'static str, String, Vec<u8>);

fn proto_seeds() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("set", b"set jobs 0 0 5\r\nhello\r\n"),
        ("set-flags-exptime", b"SET jobs -1 -30 3\r\nabc\r\n"),
        ("set-empty", b"set q 0 0 0\r\n\r\n"),
        ("set-binary", b"set q 7 1700000000 6\r\n\r\n\0\xff\r\n\r\n"),
        ("set-incomplete", b"set q 0 0 10\r\nabc"),
        ("set-bad-chunk", b"set q 0 0 3\r\nabcd\r\n"),
        ("set-bad-length", b"set q 0 0 -1\r\n"),
        ("set-bad-name", b"set a.b 0 0 1\r\nx\r\n"),
        ("set-short-line", b"set q 0 0\r\n"),
        ("add", b"add q 0 0 1\r\nx\r\n"),
        ("cas", b"cas q 0 0 1 99\r\nx\r\n"),
        ("get", b"get jobs\r\n"),
        ("gets", b"gets jobs other\r\n"),
        ("get-options", b"get jobs/t=500/open\r\n"),
        ("get-close-open", b"get jobs/close/open/t=10\r\n"),
        ("get-peek", b"get jobs/peek\r\n"),
        ("get-abort", b"get jobs/abort\r\n"),
        ("get-conflict", b"get jobs/peek/open\r\n"),
        ("get-empty-name", b"get /open\r\n"),
        ("get-bad-timeout", b"get q/t=abc\r\n"),
        ("get-unicode", "get caf\u{e9}\n".as_bytes()),
        ("get-fanout", b"get a+b\r\n"),
        ("monitor", b"monitor jobs 10 5\r\n"),
        ("monitor-negative", b"monitor jobs -1\r\n"),
        ("confirm", b"confirm jobs 2\r\n"),
        ("confirm-negative", b"confirm jobs -2\r\n"),
        ("delete", b"delete jobs\r\n"),
        ("flush", b"flush jobs\r\n"),
        ("flush-all", b"flush_all\r\n"),
        ("flush-expired", b"flush_expired jobs\r\n"),
        ("flush-all-expired", b"flush_all_expired\r\n"),
        ("stats", b"stats\r\n"),
        ("dump-stats", b"dump_stats jobs a+b\r\n"),
        ("dump-config", b"dump_config\r\n"),
        ("version", b"version\r\n"),
        ("reload", b"reload\r\n"),
        ("shutdown", b"shutdown\r\n"),
        ("quit", b"quit\r\n"),
        ("status", b"status\r\n"),
        ("status-set", b"status ReadOnly\r\n"),
        ("status-latin1", b"status \xc9T\xc9\r\n"),
        ("unknown", b"incr q 1\r\n"),
        ("bare-lf", b"\n"),
        ("cr-only", b"get q\r\r\n"),
        ("no-lf", b"get q"),
        (
            "pipeline",
            b"set q 0 0 2\r\nhi\r\nget q/open\r\nget q/close\r\nbogus\r\nget a.b\r\nstats\r\nquit\r\n",
        ),
        (
            "pipeline-bad-then-more",
            b"delete\r\nconfirm q x\r\nset q 0 0 1\r\nx\r\nget q/t=1/peek\r\n",
        ),
    ]
}

/// A journal_replay input (format in journal_model's docs).
fn journal_input(options: u8, first: u8, segments: &[(u8, Vec<u8>)], ops: &[u8]) -> Vec<u8> {
    let mut input = vec![options, first, segments.len() as u8];
    for (control, body) in segments {
        input.push(*control);
        input.extend_from_slice(&(body.len() as u16).to_le_bytes());
        input.extend_from_slice(body);
    }
    input.extend_from_slice(ops);
    input
}

fn records(records: &[Record]) -> Vec<u8> {
    records.iter().flat_map(encode_record).collect()
}

fn every_kind() -> Vec<Record> {
    vec![
        Record::Add {
            add_time_ms: 1_700_000_000_000,
            expiry_ms: 0,
            data: Bytes::from_static(b"hello"),
        },
        Record::Add {
            add_time_ms: 1_700_000_000_001,
            expiry_ms: 1_700_000_060_000,
            data: Bytes::new(),
        },
        Record::RemoveTentative { xid: 1 },
        Record::Unremove { xid: 1 },
        Record::RemoveTentative { xid: 2 },
        Record::ConfirmRemove { xid: 2 },
        Record::Remove,
    ]
}

/// Content framed with a correct checksum, whatever it is.
fn framed(content: &[u8]) -> Vec<u8> {
    let len = (content.len() as u32).to_le_bytes();
    let mut out = len.to_vec();
    out.extend_from_slice(&crc32c::crc32c_append(crc32c::crc32c(&len), content).to_le_bytes());
    out.extend_from_slice(content);
    out
}

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/journal/tests/fixtures/v1")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn journal_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let all = records(&every_kind());
    let mut torn = all.clone();
    torn.extend_from_slice(&encode_record(&Record::Remove)[..5]);
    let header_fields = |version: u8, flags: u8, number: u64| {
        let mut fields = b"LNRJ".to_vec();
        fields.extend([version, flags]);
        fields.extend(number.to_le_bytes());
        fields
    };
    let with_fields = |fields: Vec<u8>| {
        let mut body = fields;
        body.extend_from_slice(&all);
        body
    };
    let big = records(&[Record::Add {
        add_time_ms: 1,
        expiry_ms: 0,
        data: Bytes::from(vec![b'x'; 30]),
    }]);
    let mut bad_structure = framed(b"\x02x");
    bad_structure.extend(framed(b"\x09"));
    bad_structure.extend(framed(b"\x03\x01\x02\x03"));
    bad_structure.extend(framed(b"\x01short"));
    let mut zero_len = all.clone();
    zero_len.extend([0; 12]);
    // Append, write, sync and rewrite: "tag, record" bytes (see journal_model::record_from).
    let ops = [
        0, 0, 5, 0, 4, b'a', b'b', b'c', b'd', // append Add "abcd"
        0, 1, // append Remove
        1, // write
        0, 2, 7, // append RemoveTentative 7
        0, 3, 7, // append Unremove 7
        2, // sync
        3, 2, 0, 9, 1, 2, b'h', b'i', 4, 3, // rewrite [Add "hi", ConfirmRemove 3]
        0, 1, 1, // append Remove, write
        0, 0, 1, 2, 10, b'0', b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'8', b'9', 2,
    ];
    vec![
        ("empty-dir", journal_input(0, 1, &[], &[])),
        ("empty-dir-ops", journal_input(0, 1, &[], &ops)),
        ("every-kind", journal_input(0, 1, &[(0, all.clone())], &[])),
        (
            "every-kind-ops",
            journal_input(0x08, 1, &[(0, all.clone())], &ops),
        ),
        ("torn-tail", journal_input(0, 1, &[(0, torn.clone())], &[])),
        (
            "crc-fixed-broken-2nd",
            journal_input(0, 1, &[(8 | 2 << 4, all.clone())], &[]),
        ),
        (
            "crc-fixed-broken-last",
            journal_input(0, 1, &[(8 | 7 << 4, all.clone())], &[]),
        ),
        ("header-only", journal_input(0, 1, &[(0, Vec::new())], &[])),
        (
            "snapshot-supersedes",
            journal_input(0, 3, &[(0, all.clone()), (4, all.clone())], &ops[..12]),
        ),
        (
            "torn-newest-header",
            journal_input(
                0,
                1,
                &[(0, all.clone()), (0, torn.clone()), (3, Vec::new())],
                &[],
            ),
        ),
        (
            "torn-older-header",
            journal_input(0, 1, &[(3, all.clone()), (0, all.clone())], &[]),
        ),
        (
            "damage-in-older-segment",
            journal_input(0, 1, &[(0, torn), (0, all.clone())], &[]),
        ),
        (
            "version-2",
            journal_input(0, 1, &[(2, with_fields(header_fields(2, 0, 1)))], &[]),
        ),
        (
            "wrong-number",
            journal_input(0, 1, &[(2, with_fields(header_fields(1, 0, 9)))], &[]),
        ),
        (
            "unknown-flags",
            journal_input(
                0,
                1,
                &[(0, all.clone()), (2, with_fields(header_fields(1, 6, 2)))],
                &[],
            ),
        ),
        (
            "bad-magic",
            journal_input(
                0,
                1,
                &[(2, with_fields(b"KSTR\x01\0\x01\0\0\0\0\0\0\0".to_vec()))],
                &[],
            ),
        ),
        (
            "short-file",
            journal_input(0, 1, &[(1, b"LNRJ\x01\0\x01".to_vec())], &[]),
        ),
        (
            "verbatim-garbage",
            journal_input(0, 1, &[(1, b"not a journal at all".to_vec())], &[]),
        ),
        (
            "record-over-max",
            journal_input(
                3,
                1,
                &[(0, [all.clone(), big.clone(), all.clone()].concat())],
                &[],
            ),
        ),
        (
            "record-over-max-tail",
            journal_input(3, 1, &[(0, big)], &[]),
        ),
        (
            "bad-structure",
            journal_input(0, 1, &[(0, bad_structure)], &[]),
        ),
        (
            "zero-length-record",
            journal_input(0, 1, &[(0, zero_len)], &[]),
        ),
        (
            "temp-and-foreign",
            journal_input(0x60, 1, &[(0, all.clone())], &ops[..12]),
        ),
        (
            "numbers-exhausted",
            journal_input(0x10 | 0x04, 0, &[(0, all.clone())], &ops),
        ),
        (
            "delete-then-write",
            journal_input(
                0x04,
                1,
                &[(0, all.clone())],
                &[&ops[..12], &[0xff, 0, 1, 1, 2][..]].concat(),
            ),
        ),
        (
            "big-records",
            journal_input(0x80, 1, &[(0, all.clone()), (8 | 3 << 4, all.clone())], &[]),
        ),
        (
            "rotation-small-segments",
            journal_input(0x08, 1, &[(0, all.clone())], &[&ops[..], &ops[..]].concat()),
        ),
        (
            "fixture-plain",
            journal_input(
                0,
                1,
                &[(1, fixture("plain.00000000000000000001.journal"))],
                &[],
            ),
        ),
        (
            "fixture-snap",
            journal_input(
                0,
                1,
                &[
                    (1, fixture("snap.00000000000000000001.journal")),
                    (1, fixture("snap.00000000000000000002.journal")),
                ],
                &[],
            ),
        ),
        (
            "real-header-then-bytes",
            journal_input(
                0,
                1,
                &[(
                    1,
                    [header(1, false).to_vec(), b"\x13\0\0\0junk".to_vec()].concat(),
                )],
                &[],
            ),
        ),
    ]
}

/// One input per `Response` variant, found by decoding pseudo-random bytes with `arbitrary`
/// (the bytes of a structured input cannot be written by hand).
fn response_seeds() -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng::from_bytes(b"response seeds");
    let mut found: Vec<(String, Vec<u8>)> = Vec::new();
    for _ in 0..200_000 {
        let len = 6 + rng.below(60);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let Ok(input) = Input::arbitrary(&mut Unstructured::new(&bytes)) else {
            continue;
        };
        let variant = variant_name(&input.response);
        let has_payload = match &input.response {
            AnyResponse::Value { key, data } | AnyResponse::MonitorItem { key, data } => {
                !key.is_empty() && !data.is_empty()
            }
            AnyResponse::ClientError(text)
            | AnyResponse::ServerError(text)
            | AnyResponse::Version(text)
            | AnyResponse::Line(text) => !text.is_empty(),
            AnyResponse::Stats(pairs) => !pairs.is_empty(),
            AnyResponse::Raw(raw) => !raw.is_empty(),
            _ => true,
        };
        if has_payload && !found.iter().any(|(name, _)| *name == variant) {
            found.push((variant, bytes));
        }
    }
    found.sort();
    found
}

fn variant_name(response: &AnyResponse) -> String {
    let debug = format!("{response:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn all_seeds() -> Vec<Seed> {
    let mut seeds: Vec<Seed> = Vec::new();
    for (name, bytes) in proto_seeds() {
        seeds.push(("proto_parse", format!("seed-{name}"), bytes.to_vec()));
        seeds.push(("proto_pipeline", format!("seed-{name}"), bytes.to_vec()));
    }
    for (name, bytes) in journal_seeds() {
        seeds.push(("journal_replay", format!("seed-{name}"), bytes));
    }
    for (name, bytes) in response_seeds() {
        seeds.push((
            "response_encode",
            format!("seed-{}", name.to_lowercase()),
            bytes,
        ));
    }
    seeds
}

#[test]
fn committed_seeds_match_their_builders() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let write = std::env::var_os("LANNER_WRITE_SEEDS").is_some();
    for (target, name, bytes) in all_seeds() {
        let path = corpus.join(target).join(&name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else {
            let committed = std::fs::read(&path).unwrap_or_default();
            assert!(
                committed == bytes,
                "{} is stale: rerun with LANNER_WRITE_SEEDS=1",
                path.display()
            );
        }
    }
}

#[test]
fn there_is_a_response_seed_per_variant() {
    assert_eq!(response_seeds().len(), 16);
}
