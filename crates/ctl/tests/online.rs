//! lannerctl's online commands against a real lanner server.

mod support;

use support::{Server, json, success};

#[test]
fn put_peek_take_in_order() {
    let server = Server::start();
    assert_eq!(
        success(&server.ctl(&["put", "jobs", "first"])),
        "stored 1 item(s) in jobs\n"
    );
    let out = server.ctl_input(&["put", "jobs"], b"second\nthird\r\nfourth\n");
    assert_eq!(success(&out), "stored 3 item(s) in jobs\n");
    assert_eq!(success(&server.ctl(&["peek", "jobs"])), "first\n");
    assert_eq!(
        json(&server.ctl(&["--json", "peek", "jobs"])),
        serde_json::json!({"queue": "jobs", "item": "first"})
    );
    assert_eq!(
        success(&server.ctl(&["take", "jobs", "--count", "2"])),
        "first\nsecond\n"
    );
    let taken = success(&server.ctl(&["--json", "take", "jobs", "--count", "5"]));
    let items: Vec<serde_json::Value> = taken
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["item"], "third");
    assert_eq!(items[1]["item"], "fourth");
    let empty = server.ctl(&["take", "jobs"]);
    assert_eq!(success(&empty), "");
    assert!(String::from_utf8_lossy(&empty.stderr).contains("jobs is empty"));
    assert_eq!(
        json(&server.ctl(&["--json", "peek", "jobs"]))["item"],
        serde_json::Value::Null
    );
}

#[test]
fn put_from_a_file_keeps_its_bytes() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("item");
    std::fs::write(&path, "line one\nline two\n").unwrap();
    let out = server.ctl(&["--json", "put", "files", "--file", path.to_str().unwrap()]);
    assert_eq!(
        json(&out),
        serde_json::json!({"queue": "files", "stored": 1})
    );
    assert_eq!(
        success(&server.ctl(&["take", "files"])),
        "line one\nline two\n\n"
    );
}

#[test]
fn take_with_abort_returns_the_items_in_order() {
    let server = Server::start();
    server.ctl_input(&["put", "work"], b"a\nb\nc\n");
    assert_eq!(
        success(&server.ctl(&["take", "work", "--count", "2", "--abort"])),
        "a\nb\n"
    );
    let stats = json(&server.ctl(&["--json", "dump-stats", "work"]));
    assert_eq!(stats["work"]["items"], 3);
    assert_eq!(stats["work"]["open_transactions"], 0);
    assert_eq!(
        success(&server.ctl(&["take", "work", "--count", "3"])),
        "a\nb\nc\n"
    );
}

#[test]
fn take_waits_for_an_item() {
    let server = Server::start();
    let addr = server.addr.to_string();
    let taker = std::thread::spawn(move || {
        support::ctl(&["--server", &addr, "take", "late", "--timeout", "20000"])
    });
    // The taker is counted as a waiter once its read is blocked on the server.
    let deadline = std::time::Instant::now() + support::PATIENCE;
    loop {
        let stats = json(&server.ctl(&["--json", "dump-stats", "late"]));
        if stats["late"]["waiters"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the take never waited"
        );
        std::thread::sleep(support::POLL_INTERVAL);
    }
    success(&server.ctl(&["put", "late", "finally"]));
    assert_eq!(success(&taker.join().unwrap()), "finally\n");
}

#[test]
fn stats_and_dump_stats_tables_and_json() {
    let server = Server::start();
    server.ctl_input(&["put", "alpha"], b"1\n2\n3\n");
    server.ctl(&["put", "beta", "x"]);
    let table = success(&server.ctl(&["stats"]));
    assert!(table.contains("curr_items"), "{table}");
    let alpha_row = table
        .lines()
        .find(|line| line.contains("alpha"))
        .expect("alpha row");
    assert!(alpha_row.contains(" 3 "), "{alpha_row}");
    let value = json(&server.ctl(&["--json", "stats"]));
    assert_eq!(value["server"]["curr_items"], 4);
    assert_eq!(value["queues"]["alpha"]["items"], 3);
    assert_eq!(value["queues"]["beta"]["items"], 1);
    assert!(value["server"].get("queue_alpha_items").is_none());

    let dump = success(&server.ctl(&["dump-stats", "beta"]));
    assert!(dump.starts_with("queue 'beta'"), "{dump}");
    assert!(!dump.contains("alpha"));
    let value = json(&server.ctl(&["--json", "dump-stats"]));
    assert_eq!(value["alpha"]["total_items"], 3);
    assert_eq!(value["beta"]["bytes"], 1);
}

#[test]
fn status_show_set_and_refuse() {
    let server = Server::start();
    assert_eq!(success(&server.ctl(&["status"])), "UP\n");
    assert_eq!(
        success(&server.ctl(&["status", "readonly"])),
        "status set to readonly\n"
    );
    assert_eq!(
        json(&server.ctl(&["--json", "status"]))["status"],
        "READONLY"
    );
    let refused = server.ctl(&["put", "q", "x"]);
    assert!(
        !refused.status.success(),
        "a read-only server stores nothing"
    );
    let bogus = server.ctl(&["status", "bogus"]);
    assert!(!bogus.status.success());
    assert!(String::from_utf8_lossy(&bogus.stderr).contains("unknown status"));
    assert_eq!(
        json(&server.ctl(&["--json", "status", "up"])),
        serde_json::json!({"status": "up", "set": true})
    );
    assert_eq!(success(&server.ctl(&["status"])), "UP\n");
}

#[test]
fn reload_flush_and_delete() {
    let server = Server::start();
    assert_eq!(success(&server.ctl(&["reload"])), "Reloaded config.\n");
    assert_eq!(
        json(&server.ctl(&["--json", "reload"])),
        serde_json::json!({"reloaded": true})
    );
    server.ctl_input(&["put", "gone"], b"1\n2\n");
    assert_eq!(success(&server.ctl(&["flush", "gone"])), "flushed gone\n");
    assert_eq!(
        json(&server.ctl(&["--json", "flush", "gone"])),
        serde_json::json!({"queue": "gone", "flushed": true})
    );
    assert_eq!(
        json(&server.ctl(&["--json", "dump-stats", "gone"]))["gone"]["items"],
        0
    );
    assert_eq!(
        json(&server.ctl(&["--json", "delete", "gone"])),
        serde_json::json!({"queue": "gone", "deleted": true})
    );
    let stats = json(&server.ctl(&["--json", "stats"]));
    assert!(stats["queues"].get("gone").is_none(), "{stats}");
    assert_eq!(stats["server"]["queue_deletes"], 1);
}

#[test]
fn watch_prints_a_frame_and_stops() {
    let server = Server::start();
    server.ctl_input(&["put", "live"], b"a\nb\n");
    let frame = success(&server.ctl(&["watch", "--iterations", "1"]));
    assert!(frame.starts_with("lanner "), "{frame}");
    assert!(frame.contains("enq/s"), "{frame}");
    let row = frame
        .lines()
        .find(|line| line.contains("live"))
        .expect("row of the queue");
    assert!(row.contains(" 2 "), "{row}");
    let frames = success(&server.ctl(&["watch", "--iterations", "2", "--interval", "50"]));
    assert_eq!(frames.matches("(q to quit)").count(), 2, "{frames}");
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let server = Server::start();
    let addr = server.addr.to_string();
    server.stop();
    let out = support::ctl(&["--server", &addr, "stats"]);
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains(&addr), "{message}");
}

#[test]
fn completions_for_both_binaries() {
    let ctl = success(&support::ctl(&["completions", "bash"]));
    assert!(ctl.contains("lannerctl") && ctl.contains("dump-stats"));
    let server = success(&support::ctl(&["completions", "zsh", "--server-binary"]));
    assert!(server.contains("lanner") && server.contains("--data-dir"));
}
