//! Replay of damaged journals: torn tails are truncated, damage in the middle is refused
//! unless salvaging, headers are checked, and nothing panics.

use std::fs;
use std::path::Path;
use std::process::Command;

use lanner_journal::{Journal, JournalError, JournalOptions, Record, Truncation};

use crate::common::*;

/// A one-segment journal holding `mixed_records()`; returns its bytes.
fn reference_journal() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), JournalOptions::default());
    write_all(&journal, &mixed_records());
    fs::read(segment(dir.path(), 1)).unwrap()
}

/// Writes `bytes` as segment 1 of a fresh directory.
fn dir_with(bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(segment(dir.path(), 1), bytes).unwrap();
    dir
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

#[test]
fn a_cut_at_every_offset_keeps_exactly_the_whole_records_before_it() {
    let bytes = reference_journal();
    let records = mixed_records();
    let bounds = boundaries(&records);
    assert_eq!(*bounds.last().unwrap(), bytes.len() as u64);
    for cut in 0..=bytes.len() as u64 {
        let dir = dir_with(&bytes[..cut as usize]);
        let path = segment(dir.path(), 1);
        let (journal, replay) = open(dir.path(), JournalOptions::default());
        let whole = bounds
            .iter()
            .filter(|&&b| b <= cut)
            .count()
            .saturating_sub(1);
        assert_eq!(replay.records, records[..whole], "cut {cut}");
        let expected = if cut < HEADER_LEN {
            // A torn header: the file is replaced by a fresh segment.
            vec![Truncation {
                file: path.clone(),
                offset: 0,
                dropped_bytes: cut,
            }]
        } else if bounds.contains(&cut) {
            vec![]
        } else {
            vec![Truncation {
                file: path.clone(),
                offset: bounds[whole],
                dropped_bytes: cut - bounds[whole],
            }]
        };
        assert_eq!(replay.truncations, expected, "cut {cut}");
        assert_eq!(file_len(&path), bounds[whole], "cut {cut}");

        // The repaired journal takes new records and replays cleanly.
        write_all(&journal, &[add(99)]);
        drop(journal);
        let (_, replay) = open(dir.path(), JournalOptions::default());
        assert_eq!(
            replay.records,
            [&records[..whole], &[add(99)]].concat(),
            "cut {cut}"
        );
        assert!(replay.truncations.is_empty());
    }
}

#[test]
fn a_bit_flip_in_any_record_is_a_torn_tail_or_corruption() {
    let bytes = reference_journal();
    let records = mixed_records();
    let bounds = boundaries(&records);
    for pos in HEADER_LEN as usize..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[pos] ^= 1 << (pos % 8);
        let hit = bounds.iter().rposition(|&b| b <= pos as u64).unwrap();
        let offset = bounds[hit];

        let dir = dir_with(&damaged);
        let result = Journal::open(dir.path(), "q", JournalOptions::default());
        if hit + 1 == records.len() {
            let (_, replay) = result.unwrap();
            assert_eq!(replay.records, records[..hit], "byte {pos}");
            assert_eq!(replay.truncations[0].offset, offset);
        } else {
            match result {
                Err(JournalError::Corrupt {
                    path, offset: at, ..
                }) => {
                    assert_eq!((path, at), (segment(dir.path(), 1), offset), "byte {pos}");
                }
                other => panic!("byte {pos}: expected Corrupt, got {other:?}"),
            }
            assert_eq!(
                fs::read(segment(dir.path(), 1)).unwrap(),
                damaged,
                "refusing changes nothing"
            );
        }

        let dir = dir_with(&damaged);
        let (_, replay) = open(dir.path(), salvage());
        assert_eq!(replay.records, records[..hit], "salvage, byte {pos}");
        assert_eq!(replay.truncations.len(), 1);
        assert_eq!(file_len(&segment(dir.path(), 1)), offset);
    }
}

/// Zero fill ahead: zeros after the newest segment's last record are its clean end.
#[test]
fn zeros_after_the_newest_segments_last_record_are_cut_without_a_truncation() {
    let mut bytes = reference_journal();
    let end = bytes.len() as u64;
    bytes.extend_from_slice(&[0; 4096]);
    let dir = dir_with(&bytes);
    let (journal, replay) = open(dir.path(), JournalOptions::default());
    assert_eq!(replay.records, mixed_records());
    assert_eq!(replay.truncations, vec![]);
    assert_eq!(replay.bytes, end);
    assert_eq!(file_len(&segment(dir.path(), 1)), end);
    write_all(&journal, &[add(9)]);
    drop(journal);
    let (_, replay) = open(dir.path(), JournalOptions::default());
    assert_eq!(replay.records, [mixed_records(), vec![add(9)]].concat());
}

/// A torn record in the zero fill is still a torn tail, reported as such.
#[test]
fn a_torn_record_followed_by_zeros_is_a_torn_tail() {
    let mut bytes = reference_journal();
    let end = bytes.len() as u64;
    let mut next = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    write_all(&open(dir.path(), JournalOptions::default()).0, &[add(9)]);
    next.extend_from_slice(&fs::read(segment(dir.path(), 1)).unwrap()[HEADER_LEN as usize..]);
    bytes.extend_from_slice(&next[..next.len() / 2]);
    bytes.extend_from_slice(&[0; 4096]);
    let dir = dir_with(&bytes);
    let (_, replay) = open(dir.path(), JournalOptions::default());
    assert_eq!(replay.records, mixed_records());
    assert_eq!(
        replay.truncations,
        vec![Truncation {
            file: segment(dir.path(), 1),
            offset: end,
            dropped_bytes: (next.len() / 2 + 4096) as u64,
        }]
    );
}

/// Rotation cuts the zero fill, so zeros ending an older segment are damage.
#[test]
fn zeros_after_an_older_segments_last_record_are_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), opts(64));
    write_each(&journal, &mixed_records());
    drop(journal);
    let older = segment(dir.path(), 1);
    let end = file_len(&older);
    let mut bytes = fs::read(&older).unwrap();
    bytes.extend_from_slice(&[0; 100]);
    fs::write(&older, &bytes).unwrap();
    match Journal::open(dir.path(), "q", opts(64)) {
        Err(JournalError::Corrupt { path, offset, .. }) => {
            assert_eq!((path, offset), (older, end));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_huge_length_field_is_rejected_without_allocating() {
    let mut bytes = reference_journal();
    let bounds = boundaries(&mixed_records());
    // Tail: a frame claiming ~4 GiB, then a few bytes.
    let mut tail = bytes.clone();
    tail.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    tail.extend_from_slice(&[0xAB; 12]);
    let dir = dir_with(&tail);
    let (_, replay) = open(dir.path(), JournalOptions::default());
    assert_eq!(replay.records, mixed_records());
    assert_eq!(replay.truncations[0].dropped_bytes, 16);

    // Middle: the length field of the second record.
    let at = bounds[1] as usize;
    bytes[at..at + 4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let dir = dir_with(&bytes);
    match Journal::open(dir.path(), "q", JournalOptions::default()) {
        Err(JournalError::Corrupt { offset, reason, .. }) => {
            assert_eq!(offset, bounds[1]);
            assert!(reason.contains("exceeds the maximum"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// Set in the child process the allocation test re-runs itself in.
const UNDER_LIMIT: &str = "LANNER_TEST_UNDER_MEMORY_LIMIT";

/// A length field just under `max_record_size` (here almost 4 GiB) in a short file is refused
/// from the file's length, before anything is allocated for it. Proved by running the test
/// again in a process whose address space is capped at 1 GiB: an allocation of the claimed
/// length would abort it.
#[test]
fn a_length_field_just_under_the_maximum_allocates_nothing_for_it() {
    if std::env::var_os(UNDER_LIMIT).is_none() {
        let status = Command::new("sh")
            .arg("-c")
            .arg("ulimit -v 1048576 && exec \"$0\" --exact \"$1\" --test-threads=1")
            .arg(std::env::current_exe().unwrap())
            .arg("damage::a_length_field_just_under_the_maximum_allocates_nothing_for_it")
            .env(UNDER_LIMIT, "1")
            .status()
            .unwrap();
        assert!(status.success(), "under a 1 GiB address space: {status}");
        return;
    }
    let max = u64::from(u32::MAX);
    let options = || JournalOptions {
        max_record_size: max,
        ..JournalOptions::default()
    };
    let huge = (max - 1) as u32;
    let mut bytes = reference_journal();
    let bounds = boundaries(&mixed_records());
    let mut tail = bytes.clone();
    tail.extend_from_slice(&huge.to_le_bytes());
    tail.extend_from_slice(&[0xAB; 40]);
    let dir = dir_with(&tail);
    let (_, replay) = Journal::open(dir.path(), "q", options()).unwrap();
    assert_eq!(replay.records, mixed_records());
    assert_eq!(replay.truncations[0].dropped_bytes, 44);

    let at = bounds[2] as usize;
    bytes[at..at + 4].copy_from_slice(&huge.to_le_bytes());
    let dir = dir_with(&bytes);
    match Journal::open(dir.path(), "q", options()) {
        Err(JournalError::Corrupt { offset, reason, .. }) => {
            assert_eq!(offset, bounds[2]);
            assert!(reason.contains("runs past the end of the file"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_record_over_max_record_size_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), JournalOptions::default());
    write_all(&journal, &[add(1), add(2)]);
    drop(journal);
    let small = JournalOptions {
        max_record_size: 8,
        ..JournalOptions::default()
    };
    let err = Journal::open(dir.path(), "q", small).err().unwrap();
    assert!(err.to_string().contains("exceeds the maximum 8"), "{err}");
}

/// Three segments of two records each.
fn three_segments(dir: &Path) -> Vec<Record> {
    let (journal, _) = open(dir, opts(HEADER_LEN + 1));
    let records: Vec<Record> = (0..6).map(add).collect();
    for pair in records.chunks(2) {
        write_all(&journal, pair);
    }
    assert_eq!(names(dir).len(), 3);
    records
}

#[test]
fn damage_in_an_older_segment_is_corruption_even_at_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let records = three_segments(dir.path());
    let first = segment(dir.path(), 1);
    let len = file_len(&first);
    fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let cut_at = len - add(1).encoded_len();
    match Journal::open(dir.path(), "q", opts(HEADER_LEN + 1)) {
        Err(JournalError::Corrupt { path, offset, .. }) => {
            assert_eq!((path, offset), (first.clone(), cut_at))
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let (_, replay) = Journal::open(
        dir.path(),
        "q",
        JournalOptions {
            salvage: true,
            ..opts(HEADER_LEN + 1)
        },
    )
    .unwrap();
    assert_eq!(replay.records, [&records[..1], &records[2..]].concat());
    assert_eq!(
        replay.truncations,
        [Truncation {
            file: first.clone(),
            offset: cut_at,
            dropped_bytes: len - 3 - cut_at
        }]
    );
    assert_eq!(file_len(&first), cut_at);
}

#[test]
fn a_torn_newest_header_does_not_prevent_startup() {
    for torn in [&b""[..], b"LNR", &[0; HEADER_LEN as usize], &[0; 64]] {
        let dir = tempfile::tempdir().unwrap();
        let records = three_segments(dir.path());
        fs::write(segment(dir.path(), 4), torn).unwrap();
        let (journal, replay) = open(dir.path(), JournalOptions::default());
        assert_eq!(replay.records, records);
        assert_eq!(replay.truncations.len(), 1);
        assert!(!segment(dir.path(), 4).exists());
        // Appends go on in segment 3.
        write_all(&journal, &[add(9)]);
        assert_eq!(names(dir.path()).len(), 3);
    }
}

#[test]
fn a_damaged_older_header_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let records = three_segments(dir.path());
    let second = segment(dir.path(), 2);
    let mut bytes = fs::read(&second).unwrap();
    bytes[0] = b'X';
    fs::write(&second, &bytes).unwrap();
    match Journal::open(dir.path(), "q", JournalOptions::default()) {
        Err(JournalError::Corrupt {
            path,
            offset: 0,
            reason,
        }) => {
            assert_eq!(path, second);
            assert!(reason.contains("magic"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let (_, replay) = open(dir.path(), salvage());
    assert_eq!(replay.records, [&records[..2], &records[4..]].concat());
    assert!(!second.exists());
}

#[test]
fn a_header_naming_another_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    three_segments(dir.path());
    fs::rename(segment(dir.path(), 2), segment(dir.path(), 7)).unwrap();
    let err = Journal::open(dir.path(), "q", JournalOptions::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("names segment 2"), "{err}");
}

#[test]
fn an_unknown_version_is_refused_even_when_salvaging() {
    let mut bytes = reference_journal();
    bytes[4] = 2;
    for options in [JournalOptions::default(), salvage()] {
        let dir = dir_with(&bytes);
        match Journal::open(dir.path(), "q", options) {
            Err(JournalError::Version { path, version: 2 }) => {
                assert_eq!(path, segment(dir.path(), 1))
            }
            other => panic!("expected Version, got {other:?}"),
        }
        assert_eq!(fs::read(segment(dir.path(), 1)).unwrap(), bytes);
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let header = &reference_journal()[..HEADER_LEN as usize];
    for _ in 0..200 {
        let len = (next() % 300) as usize;
        let mut bytes = header.to_vec();
        bytes.extend((0..len).map(|_| (next() % 4) as u8));
        for options in [JournalOptions::default(), salvage()] {
            let dir = dir_with(&bytes);
            if let Ok((_, replay)) = Journal::open(dir.path(), "q", options) {
                assert_eq!(file_len(&segment(dir.path(), 1)), replay.bytes);
            }
        }
    }
}

/// The scan for an intact record after the damage must stay linear in the bytes left: random
/// data yields many plausible length fields, and checksumming each would take hours.
#[test]
fn a_torn_huge_record_of_random_bytes_is_truncated_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), JournalOptions::default());
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let data: Vec<u8> = (0..8 << 20)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let big = Record::Add {
        add_time_ms: 0,
        expiry_ms: 0,
        data: data.into(),
    };
    write_all(&journal, &[add(1), big]);
    drop(journal);
    let path = segment(dir.path(), 1);
    let torn_at = file_len(&path) - (4 << 20);
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(torn_at)
        .unwrap();
    let (_, replay) = open(dir.path(), JournalOptions::default());
    assert_eq!(replay.records, [add(1)]);
}

/// About 3 MiB of records of varied sizes: a segment replay reads in several chunks.
fn records_of_several_chunks() -> Vec<Record> {
    (0..3_000u32)
        .map(|n| match n % 100 {
            50 => Record::Remove,
            _ => Record::Add {
                add_time_ms: i64::from(n),
                expiry_ms: 0,
                data: bytes::Bytes::from(vec![n as u8; 1_000 + n as usize % 37]),
            },
        })
        .collect()
}

#[test]
fn a_segment_of_several_read_chunks_replays_whole_and_damage_past_the_first_is_found_at_its_offset()
{
    let records = records_of_several_chunks();
    let bounds = boundaries(&records);
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), JournalOptions::default());
    write_all(&journal, &records);
    drop(journal);
    let (_, replay) = open(dir.path(), JournalOptions::default());
    assert_eq!(replay.records, records);

    let path = segment(dir.path(), 1);
    let mut bytes = fs::read(&path).unwrap();
    assert_eq!(bytes.len() as u64, *bounds.last().unwrap());
    let damaged = 2_345;
    assert!(bounds[damaged] > 2 << 20, "past the second chunk's start");
    bytes[bounds[damaged] as usize + 20] ^= 1;
    fs::write(&path, &bytes).unwrap();
    match Journal::open(dir.path(), "q", JournalOptions::default()) {
        Err(JournalError::Corrupt {
            path: at, offset, ..
        }) => {
            assert_eq!((at, offset), (path.clone(), bounds[damaged]))
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let (_, replay) = open(dir.path(), salvage());
    assert_eq!(replay.records, records[..damaged]);
    assert_eq!(file_len(&path), bounds[damaged]);
}

/// A journal of `records` in one segment, written and closed; returns the directory and the
/// segment's path.
fn one_segment_of(records: &[Record]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), JournalOptions::default());
    write_all(&journal, records);
    drop(journal);
    let path = segment(dir.path(), 1);
    (dir, path)
}

/// A framed record whose checksum is right but whose content is no record (opcode 99).
fn well_framed_garbage(encoded_len: usize) -> Vec<u8> {
    let mut content = vec![0; encoded_len - 8];
    content[0] = 99;
    let len = u32::try_from(content.len()).unwrap().to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), &content);
    [&len[..], &crc.to_le_bytes(), &content].concat()
}

fn assert_corrupt_at(dir: &Path, path: &Path, expected: u64) {
    match Journal::open(dir, "q", JournalOptions::default()) {
        Err(JournalError::Corrupt {
            path: at, offset, ..
        }) => assert_eq!((at.as_path(), offset), (path, expected)),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_torn_tail_of_a_segment_of_several_read_chunks_is_truncated() {
    let records = records_of_several_chunks();
    let (dir, path) = one_segment_of(&records);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let (_, replay) = open(dir.path(), JournalOptions::default());
    assert_eq!(replay.records, records[..records.len() - 1]);
    assert_eq!(replay.truncations.len(), 1);
}

#[test]
fn a_well_framed_unknown_record_in_a_long_segment_is_corruption_at_its_offset() {
    let records = records_of_several_chunks();
    let bounds = boundaries(&records);
    let (dir, path) = one_segment_of(&records);
    let mut bytes = fs::read(&path).unwrap();
    let damaged = 10;
    let (start, end) = (bounds[damaged] as usize, bounds[damaged + 1] as usize);
    bytes[start..end].copy_from_slice(&well_framed_garbage(end - start));
    fs::write(&path, &bytes).unwrap();
    assert_corrupt_at(dir.path(), &path, bounds[damaged]);
    let (_, replay) = open(dir.path(), salvage());
    assert_eq!(replay.records, records[..damaged]);
}

#[test]
fn a_huge_length_past_the_first_read_chunk_is_corruption_without_allocating() {
    let records = records_of_several_chunks();
    let bounds = boundaries(&records);
    let (dir, path) = one_segment_of(&records);
    let mut bytes = fs::read(&path).unwrap();
    let damaged = 2_500;
    let start = bounds[damaged] as usize;
    bytes[start..start + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    assert_corrupt_at(dir.path(), &path, bounds[damaged]);
}

#[test]
fn a_visitor_that_panics_stops_the_reading_thread() {
    let records = records_of_several_chunks();
    let (dir, _) = one_segment_of(&records);
    let replayed = std::panic::catch_unwind(|| {
        let mut seen = 0;
        let _ = Journal::open_with(dir.path(), "q", JournalOptions::default(), &mut |_| {
            seen += 1;
            assert!(seen < 5, "the visitor gives up");
        });
    });
    assert!(replayed.is_err(), "the panic reaches the caller");
    let (_, replay) = open(dir.path(), JournalOptions::default());
    assert_eq!(replay.records, records);
}
