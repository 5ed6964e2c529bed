//! lannerctl's offline journal commands on journals written by a real server.

mod support;

use std::path::{Path, PathBuf};

use support::{Server, json, success};

/// A data directory whose queue `work` was written by a server and then stopped: 100 items
/// added, the first 60 taken with reliable reads, so 40 live items (`item-60`..`item-99`).
fn sample_journal() -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let server = Server::start_in(&data, &[]);
    let items: String = (0..100).map(|n| format!("item-{n}\n")).collect();
    success(&server.ctl_input(&["put", "work"], items.as_bytes()));
    success(&server.ctl(&["take", "work", "--count", "60"]));
    server.stop();
    (temp, data)
}

fn segments(data: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(".journal"))
        .collect();
    files.sort();
    files
}

fn journal(data: &Path, args: &[&str]) -> std::process::Output {
    let dir = data.to_str().unwrap();
    support::ctl(&[&["journal", "--data-dir", dir], args].concat())
}

fn journal_json(data: &Path, args: &[&str]) -> std::process::Output {
    let dir = data.to_str().unwrap();
    support::ctl(&[&["--json", "journal", "--data-dir", dir], args].concat())
}

#[test]
fn dump_lists_every_record_with_file_and_offset() {
    let (_temp, data) = sample_journal();
    let text = success(&journal(&data, &["dump", "work"]));
    let adds = text.lines().filter(|line| line.contains(" add ")).count();
    assert_eq!(adds, 100, "{text}");
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("remove_tentative"))
            .count(),
        60
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("confirm_remove"))
            .count(),
        60
    );
    let first = text.lines().nth(1).expect("a record line");
    assert!(
        first.starts_with("work.00000000000000000001.journal"),
        "{first}"
    );
    assert!(
        first.contains(" 18 ") && first.contains("\"item-0\""),
        "{first}"
    );

    let lines = success(&journal_json(&data, &["dump", "work"]));
    let records: Vec<serde_json::Value> = lines
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), 220);
    assert_eq!(records[0]["offset"], 18);
    assert_eq!(records[0]["kind"], "add");
    assert_eq!(records[0]["preview"], "item-0");
    let second = records[0]["offset"].as_u64().unwrap() + records[0]["length"].as_u64().unwrap();
    assert_eq!(records[1]["offset"], second);

    let missing = journal(&data, &["dump", "nothing"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no journal"));
}

#[test]
fn verify_summarises_and_names_a_flipped_byte() {
    let (_temp, data) = sample_journal();
    let report = success(&journal(&data, &["verify"]));
    assert!(
        report.contains("ok: 1 queue(s), 1 file(s), 220 record(s)"),
        "{report}"
    );
    assert!(report.contains("40 live item(s)"), "{report}");
    let value = json(&journal_json(&data, &["verify", "work"]));
    assert_eq!(value["ok"], true);
    assert_eq!(value["queues"][0]["items"], 40);

    let file = &segments(&data)[0];
    let mut bytes = std::fs::read(file).unwrap();
    // Inside the payload of the second record (the first starts at 18 and takes 8 + 17 + 6).
    let second = 18 + 8 + 17 + 6;
    bytes[second + 20] ^= 0x01;
    std::fs::write(file, &bytes).unwrap();

    let damaged = journal(&data, &["verify"]);
    assert!(!damaged.status.success());
    let message = String::from_utf8_lossy(&damaged.stderr);
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains(&format!("offset {second}")), "{message}");
    assert!(message.contains("checksum"), "{message}");
    assert!(String::from_utf8_lossy(&damaged.stdout).contains("DAMAGED"));
    let value: serde_json::Value =
        serde_json::from_slice(&journal_json(&data, &["verify"]).stdout).unwrap();
    assert_eq!(value["ok"], false);
    assert_eq!(value["queues"][0]["damage"][0]["offset"], second);
    assert_eq!(
        std::fs::read(file).unwrap(),
        bytes,
        "verify modifies nothing"
    );
}

#[test]
fn verify_calls_a_torn_tail_what_the_server_repairs() {
    let (_temp, data) = sample_journal();
    let file = &segments(&data)[0];
    let mut bytes = std::fs::read(file).unwrap();
    bytes.extend_from_slice(&[40, 0, 0, 0, 1, 2]);
    std::fs::write(file, &bytes).unwrap();
    let out = journal(&data, &["verify"]);
    assert!(out.status.success(), "a torn tail is not damage");
    assert!(String::from_utf8_lossy(&out.stderr).contains("torn tail"));
}

#[test]
fn a_zero_fill_after_the_newest_segments_records_is_no_damage() {
    let (_temp, data) = sample_journal();
    let file = &segments(&data)[0];
    let mut bytes = std::fs::read(file).unwrap();
    bytes.extend_from_slice(&[0; 4096]);
    std::fs::write(file, &bytes).unwrap();
    let out = journal(&data, &["verify"]);
    assert!(out.status.success(), "a zero fill is not damage");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("torn tail"));
    let dump = success(&journal(&data, &["dump", "work"]));
    assert!(!dump.contains("DAMAGE"), "{dump}");
}

#[test]
fn verify_runs_beside_a_server_and_compact_refuses() {
    let (_temp, data) = sample_journal();
    let server = Server::start_in(&data, &[]);
    success(&journal(&data, &["verify"]));
    let before = std::fs::read(&segments(&data)[0]).unwrap();
    let refused = journal(&data, &["compact", "work"]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("locked by a running server"), "{message}");
    assert_eq!(std::fs::read(&segments(&data)[0]).unwrap(), before);
    success(&server.ctl(&["put", "work", "still served"]));
    server.stop();
}

#[test]
fn compact_shrinks_the_journal_and_keeps_the_items_in_order() {
    let (_temp, data) = sample_journal();
    let size = |files: &[PathBuf]| -> u64 {
        files
            .iter()
            .map(|file| std::fs::metadata(file).unwrap().len())
            .sum()
    };
    let before = size(&segments(&data));
    let value = json(&journal_json(&data, &["compact", "work"]));
    assert_eq!(value["items"], 40);
    let after = size(&segments(&data));
    assert!(after < before / 2, "{before} -> {after}");
    assert_eq!(value["bytes_after"], after);
    let report = json(&journal_json(&data, &["verify"]));
    assert_eq!(report["queues"][0]["records"], 40);

    let server = Server::start_in(&data, &[]);
    let taken = success(&server.ctl(&["take", "work", "--count", "100"]));
    let expected: String = (60..100).map(|n| format!("item-{n}\n")).collect();
    assert_eq!(taken, expected);
    server.stop();
}
