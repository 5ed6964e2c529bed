//! Durability across process death: SIGKILL, SIGTERM, damaged journals, and the guards around
//! the data directory and the configuration.

mod support;

use std::process::Command;

use support::{Client, Server};

const ITEMS: usize = 10_000;

fn payload(index: usize) -> Vec<u8> {
    format!("item-{index:05}").into_bytes()
}

/// Sets `count` items pipelined in batches, checking every `STORED`.
fn set_many(client: &mut Client, queue: &str, count: usize) {
    for batch_start in (0..count).step_by(100) {
        let batch_end = (batch_start + 100).min(count);
        let mut request = Vec::new();
        for index in batch_start..batch_end {
            let data = payload(index);
            request.extend_from_slice(format!("set {queue} 0 0 {}\r\n", data.len()).as_bytes());
            request.extend_from_slice(&data);
            request.extend_from_slice(b"\r\n");
        }
        client.send(&request);
        for _ in batch_start..batch_end {
            assert_eq!(client.read_line(), "STORED\r\n");
        }
    }
}

fn journal_bytes(server: &Server) -> u64 {
    std::fs::read_dir(server.data_dir())
        .expect("read data dir")
        .map(|entry| entry.expect("entry"))
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".journal"))
        .map(|entry| entry.metadata().expect("metadata").len())
        .sum()
}

fn journal_files(server: &Server) -> usize {
    std::fs::read_dir(server.data_dir())
        .expect("read data dir")
        .filter(|entry| {
            entry
                .as_ref()
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .ends_with(".journal")
        })
        .count()
}

#[test]
fn acknowledged_sets_and_open_reads_survive_sigkill() {
    let server = Server::start();
    let mut client = server.connect();
    set_many(&mut client, "jobs", ITEMS);
    assert_eq!(
        client.get("jobs/open"),
        Some(payload(0)),
        "read left open at the kill"
    );

    let server = server.restart_after_kill();
    let mut client = server.connect();
    assert_eq!(client.stat("queue_jobs_items").as_deref(), Some("10000"));
    for index in 0..ITEMS {
        assert_eq!(
            client.get("jobs"),
            Some(payload(index)),
            "item {index} after restart"
        );
    }
    assert_eq!(client.get("jobs"), None);
}

#[test]
fn sigkill_loses_nothing_under_sync_always_and_never() {
    for sync in ["always", "never"] {
        let server = Server::start_with_config(&format!("[default]\nsync = \"{sync}\"\n"));
        let mut client = server.connect();
        set_many(&mut client, "q", 500);
        for index in 0..100 {
            assert_eq!(client.get("q"), Some(payload(index)));
        }
        let server = server.restart_after_kill();
        let mut client = server.connect();
        for index in 100..500 {
            assert_eq!(
                client.get("q"),
                Some(payload(index)),
                "sync = {sync}, item {index}"
            );
        }
        assert_eq!(client.get("q"), None);
    }
}

#[test]
fn confirmed_reads_stay_gone_and_aborted_reads_come_back_after_sigkill() {
    let server = Server::start();
    let mut client = server.connect();
    set_many(&mut client, "q", 4);
    assert_eq!(client.get("q/open"), Some(payload(0)));
    assert_eq!(client.get("q/close/open"), Some(payload(1)));
    assert_eq!(client.get("q/abort"), None);
    assert_eq!(client.get("q/open"), Some(payload(1)));

    let server = server.restart_after_kill();
    let mut client = server.connect();
    let remaining: Vec<_> = (0..3).map(|_| client.get("q")).collect();
    assert_eq!(
        remaining,
        vec![Some(payload(1)), Some(payload(2)), Some(payload(3))]
    );
}

#[test]
fn sigterm_returns_open_reads_and_exits_zero() {
    let mut server = Server::start();
    let mut reader = server.connect();
    let mut writer = server.connect();
    writer.set("q", b"one");
    writer.set("q", b"two");
    assert_eq!(reader.get("q/open"), Some(b"one".to_vec()));
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");

    let server = Server::start_in(server.data_dir(), None);
    let mut client = server.connect();
    assert_eq!(client.get("q"), Some(b"one".to_vec()));
    assert_eq!(client.get("q"), Some(b"two".to_vec()));
}

#[test]
fn torn_journal_tail_is_truncated_and_logged() {
    let mut server = Server::start();
    let mut client = server.connect();
    set_many(&mut client, "q", 10);
    server.kill();
    let journal = std::fs::read_dir(server.data_dir())
        .expect("read dir")
        .map(|entry| entry.expect("entry").path())
        .find(|path| path.to_string_lossy().ends_with(".journal"))
        .expect("journal file");
    let mut bytes = std::fs::read(&journal).expect("read journal");
    let intact = bytes.len();
    bytes.extend_from_slice(&[0x2a, 0x00, 0x00, 0x00, 0x13, 0x37]);
    std::fs::write(&journal, &bytes).expect("tear the tail");

    let server = Server::start_in(server.data_dir(), None);
    let warning = server.wait_for_log("journal truncated");
    assert!(warning.contains("dropped_bytes=6"), "{warning}");
    assert_eq!(
        std::fs::metadata(&journal).expect("metadata").len() as usize,
        intact
    );
    let mut client = server.connect();
    for index in 0..10 {
        assert_eq!(client.get("q"), Some(payload(index)));
    }
}

#[test]
fn second_server_on_the_same_data_dir_is_refused() {
    let server = Server::start();
    let error = Server::try_start_in(server.data_dir())
        .err()
        .expect("second server must not start");
    assert!(error.contains("locked"), "{error}");
}

#[test]
fn unknown_config_key_is_rejected_naming_key_and_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("typo.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_open_transactionz = 3\n",
    )
    .expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_lanner"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("run lanner");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max_open_transactionz"), "{stderr}");
    assert!(stderr.contains("typo.toml"), "{stderr}");
}

#[test]
fn draining_a_queue_releases_its_journal() {
    let server = Server::start_with_config("[default]\njournal_segment_size = \"256KiB\"\n");
    let mut client = server.connect();
    set_many(&mut client, "q", 20_000);
    let full = journal_bytes(&server);
    assert!(full > 512 * 1024, "journal holds the items: {full} bytes");
    for index in 0..20_000 {
        assert_eq!(client.get("q"), Some(payload(index)));
    }
    // The drain's last reply was sent after its records were written, rewrites included: the
    // old segments are gone and what is left is less than one segment.
    let drained = journal_bytes(&server);
    assert!(
        drained < 256 * 1024,
        "drained journal still holds {drained} bytes"
    );
    assert_eq!(journal_files(&server), 1);
    assert!(
        client
            .stat("queue_q_journal_rewrites")
            .is_some_and(|count| count != "0")
    );
}
