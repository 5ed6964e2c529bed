//! journal_replay: recovery of arbitrary segment files, checked against a reference model.
//!
//! The input (format in src/journal_model.rs) describes up to three segment files of queue `q`,
//! optional leftover and foreign files, and operations to run after recovery. For
//! `salvage` false and then true, in a fresh directory each time:
//!
//! 1. `Journal::open` never panics, and returns exactly what the model derived from
//!    docs/journal-format.md says: the same records, truncations and repaired file lengths, or
//!    the same `Version`/`Corrupt` error naming the same file and offset (and then leaves every
//!    remaining file untouched). Temp files are always gone; foreign files are never touched.
//! 2. After a successful open, a second open replays exactly the same records and repairs
//!    nothing: the first one left a clean journal.
//! 3. Appends, writes, syncs, rewrites and deletes on the reopened journal (with small segment sizes to
//!    force rotation) behave like the model (which calls fail, when the journal is poisoned),
//!    `Journal::stats` matches the directory after every step, and a final reopen replays
//!    exactly the records the model says are on disk.
#![no_main]

use std::fs;
use std::path::{Path, PathBuf};

use lanner_fuzz::journal_model::{
    Expected, ExpectedOpen, HEADER_LEN, Op, OpsModel, QUEUE, Scenario, SegmentFile, encoded_len,
    expected_open, header, record_limit,
};
use lanner_journal::{Journal, JournalError, JournalOptions, Replay, list_queues};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let scenario = Scenario::decode(input);
    let mut results = Vec::new();
    for salvage in [false, true] {
        results.push(run(&scenario, salvage));
    }
    // Salvage only changes what happens where a strict open fails.
    if let [Some(strict), Some(salvaged)] = &results[..] {
        assert_eq!(strict, salvaged, "salvage changed a successful recovery");
    }
});

/// One pass; returns the records of a successful open.
fn run(scenario: &Scenario, salvage: bool) -> Option<Vec<lanner_journal::Record>> {
    let dir = scratch_dir();
    let path = dir.path();
    for segment in &scenario.segments {
        fs::write(segment_path(path, segment.number), &segment.bytes).unwrap();
    }
    let temp = scenario.temp.as_ref().map(|temp| {
        let temp_path = path.join(format!("{QUEUE}.{:020}.journal.tmp", temp.number));
        fs::write(&temp_path, &temp.bytes).unwrap();
        temp_path
    });
    let foreign = if scenario.foreign {
        write_foreign_files(path)
    } else {
        Vec::new()
    };
    let opts = JournalOptions {
        segment_size: scenario.segment_size,
        max_record_size: scenario.max_record_size,
        salvage,
        ..JournalOptions::default()
    };
    let model = expected_open(&scenario.segments, scenario.max_record_size, salvage);
    let opened = Journal::open(path, QUEUE, opts.clone());

    if let Some(temp) = &temp {
        assert!(!temp.exists(), "a leftover rewrite temp file survived open");
    }
    for (file, content) in &foreign {
        assert_eq!(
            &fs::read(file).unwrap(),
            content,
            "open touched {}",
            file.display()
        );
    }

    let (journal, replay, expected) = match (opened, model.expected) {
        (Ok((journal, replay)), Expected::Open(expected)) => (journal, replay, expected),
        (Err(error), expected @ (Expected::Version { .. } | Expected::Corrupt { .. })) => {
            check_error(&error, &expected);
            check_untouched(path, &scenario.segments, &model.removed_before_failure);
            return None;
        }
        (Ok((_, replay)), expected) => panic!(
            "open succeeded with {} records and truncations {:?}; expected {expected:?}",
            replay.records.len(),
            truncations(&replay)
        ),
        (Err(error), expected) => panic!("open failed: {error}; expected {expected:?}"),
    };

    assert_eq!(replay.records, expected.records, "replayed records");
    assert_eq!(truncations(&replay), expected.truncations, "truncations");
    assert_eq!(replay.segments, expected.live.len(), "replayed segments");
    let live_bytes: u64 = expected.live.iter().map(|&(_, len)| len).sum();
    assert_eq!(replay.bytes, live_bytes, "replayed bytes");
    check_directory(path, &expected);
    let mut queues = vec![QUEUE.to_owned()];
    if scenario.foreign {
        queues.push("q2".to_owned());
    }
    assert_eq!(
        list_queues(&lanner_journal::FsStorage, path).unwrap(),
        queues
    );
    drop(journal);

    // The first open repaired everything: a second one sees a clean journal.
    let (journal, again) = Journal::open(path, QUEUE, opts.clone()).expect("second open");
    assert_eq!(
        again.records, expected.records,
        "second open replayed other records"
    );
    assert!(
        again.truncations.is_empty(),
        "second open repaired again: {:?}",
        again.truncations
    );

    run_ops(path, journal, scenario, &expected, &opts);
    for (file, content) in &foreign {
        assert_eq!(
            &fs::read(file).unwrap(),
            content,
            "writing touched {}",
            file.display()
        );
    }
    Some(expected.records)
}

/// Runs the scenario's operations against the journal and the model, then reopens.
fn run_ops(
    path: &Path,
    journal: Journal,
    scenario: &Scenario,
    expected: &ExpectedOpen,
    opts: &JournalOptions,
) {
    let (segment, segment_len) = expected
        .live
        .last()
        .copied()
        .unwrap_or((1, HEADER_LEN as u64));
    let mut model = OpsModel {
        disk: expected.records.clone(),
        pending: Vec::new(),
        snapshot: None,
        poisoned: false,
        segment,
        segment_len,
        limit: record_limit(opts.max_record_size),
        segment_size: opts.segment_size,
        rotations: 0,
        rewrites: 0,
        deleted: false,
    };
    check_stats(path, &journal, &model);
    let mut last = 0;
    for op in &scenario.ops {
        match op {
            Op::Append(record) => {
                last = journal.append(record);
                model.append(record);
            }
            Op::Rewrite(live) => {
                last = journal.rewrite(live.clone());
                model.rewrite(live);
            }
            Op::Write => check_write(journal.write_through(last), model.write(), op),
            Op::Sync => check_write(journal.sync_through(last), model.write(), op),
            Op::Delete => {
                journal.delete().expect("delete");
                model.delete();
            }
        }
        assert_eq!(
            journal.is_poisoned(),
            model.poisoned,
            "poisoned after {op:?}"
        );
    }
    check_write(journal.sync_all(), model.write(), &Op::Sync);
    drop(journal);

    let reopen = JournalOptions {
        salvage: false,
        ..opts.clone()
    };
    let (_journal, replay) = Journal::open(path, QUEUE, reopen).expect("reopen after writing");
    assert_eq!(
        replay.records, model.disk,
        "records after writing and reopening"
    );
    assert!(
        replay.truncations.is_empty(),
        "reopen repaired: {:?}",
        replay.truncations
    );
}

/// `Journal::stats` describes the directory, as its docs say: total bytes are the segment files
/// plus what is appended but not yet written, and the segment count and current segment size
/// are those on disk. (Skipped once poisoned, and while a rewrite is scheduled: then the total
/// is the size the rewrite will produce.)
fn check_stats(path: &Path, journal: &Journal, model: &OpsModel) {
    if model.poisoned || model.snapshot.is_some() {
        return;
    }
    let mut segments: Vec<(u64, u64)> = fs::read_dir(path)
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().ok()?;
            let digits = name.strip_prefix("q.")?.strip_suffix(".journal")?;
            let number = digits.parse().ok().filter(|_| digits.len() == 20)?;
            Some((number, fs::metadata(path.join(&name)).unwrap().len()))
        })
        .collect();
    segments.sort_unstable();
    let on_disk: u64 = segments.iter().map(|&(_, len)| len).sum();
    let stats = journal.stats();
    let expected = (
        on_disk + encoded_len(&model.pending),
        segments.last().map_or(0, |&(_, len)| len),
        segments.len() as u64,
        model.rotations,
        model.rewrites,
    );
    let found = (
        stats.total_bytes,
        stats.current_segment_bytes,
        stats.segments,
        stats.rotations,
        stats.rewrites,
    );
    assert_eq!(
        found, expected,
        "stats (total, current, segments, rotations, rewrites) vs the directory {segments:?}"
    );
    let newest = segments.last().map(|&(number, _)| number);
    assert_eq!(
        newest,
        (!model.deleted).then_some(model.segment),
        "newest segment"
    );
}

fn check_write(result: Result<(), JournalError>, should_succeed: bool, op: &Op) {
    match result {
        Ok(()) => assert!(
            should_succeed,
            "{op:?} succeeded on a journal that must be poisoned"
        ),
        Err(JournalError::Poisoned { .. }) if !should_succeed => {}
        Err(error) => panic!("{op:?} failed: {error} (model: succeed = {should_succeed})"),
    }
}

/// The error names the file and offset the model expects.
fn check_error(error: &JournalError, expected: &Expected) {
    match (error, expected) {
        (JournalError::Version { path, .. }, Expected::Version { number }) => {
            assert_eq!(segment_number(path), *number, "{error}");
        }
        (JournalError::Corrupt { path, offset, .. }, Expected::Corrupt { number, offset: at }) => {
            assert_eq!((segment_number(path), *offset), (*number, *at), "{error}");
        }
        _ => panic!("open failed with {error}; expected {expected:?}"),
    }
}

/// After a failed open: the segments handled before the failure are gone, every other one is
/// exactly as it was.
fn check_untouched(path: &Path, segments: &[SegmentFile], removed: &[u64]) {
    for segment in segments {
        let file = segment_path(path, segment.number);
        if removed.contains(&segment.number) {
            assert!(
                !file.exists(),
                "{} should have been removed",
                file.display()
            );
        } else {
            let content = fs::read(&file).unwrap_or_default();
            assert!(
                content == segment.bytes,
                "failed open changed {}",
                file.display()
            );
        }
    }
}

/// After a successful open: live segments have their repaired lengths, removed ones are gone,
/// and an empty journal got a fresh segment 1 holding only its header.
fn check_directory(path: &Path, expected: &ExpectedOpen) {
    for &(number, len) in &expected.live {
        let file = segment_path(path, number);
        assert_eq!(
            fs::metadata(&file).unwrap().len(),
            len,
            "{}",
            file.display()
        );
    }
    for &number in &expected.removed {
        if !(expected.live.is_empty() && number == 1) {
            assert!(
                !segment_path(path, number).exists(),
                "segment {number} not removed"
            );
        }
    }
    if expected.live.is_empty() {
        // The header the real writer produced must be the one the format doc describes.
        let created = fs::read(segment_path(path, 1)).expect("a new segment 1");
        assert_eq!(created, header(1, false), "new segment 1");
    }
}

fn truncations(replay: &Replay) -> Vec<(u64, u64, u64)> {
    let mut found: Vec<_> = replay
        .truncations
        .iter()
        .map(|t| (segment_number(&t.file), t.offset, t.dropped_bytes))
        .collect();
    found.sort_unstable();
    found
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{QUEUE}.{number:020}.journal"))
}

/// The number in a segment file name `q.<20 digits>.journal`.
fn segment_number(path: &Path) -> u64 {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let digits = name
        .strip_prefix("q.")
        .and_then(|rest| rest.strip_suffix(".journal"))
        .unwrap_or_else(|| panic!("not a segment of q: {}", path.display()));
    digits.parse().unwrap()
}

/// Files of another queue and look-alikes that open must leave alone.
fn write_foreign_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let files = [
        ("q2.00000000000000000001.journal", header(1, false).to_vec()),
        ("q.1700000000000", b"a Kestrel journal".to_vec()),
        ("q.00000000000000000001.journal.bak", vec![0; 30]),
        ("q.1.journal", header(1, true).to_vec()),
    ];
    files
        .into_iter()
        .map(|(name, content)| {
            let file = dir.join(name);
            fs::write(&file, &content).unwrap();
            (file, content)
        })
        .collect()
}

/// A fresh directory under `$LANNER_FUZZ_TMPDIR` (scripts/fuzz.sh sets it and removes it at the
/// end, since a crash aborts before the directory is cleaned up), else in RAM when /dev/shm
/// exists: every input creates, fsyncs and deletes several files, and a disk would make that
/// the bottleneck.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let base = match std::env::var_os("LANNER_FUZZ_TMPDIR") {
        Some(dir) => PathBuf::from(dir),
        None if shm.is_dir() => shm.to_path_buf(),
        None => std::env::temp_dir(),
    };
    tempfile::Builder::new()
        .prefix("lanner-fuzz-")
        .tempdir_in(base)
        .unwrap()
}
