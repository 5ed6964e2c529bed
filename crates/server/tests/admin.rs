//! Server status (readonly, quiescent, writeavoid) and `reload`.

mod support;

use support::Server;

#[test]
fn readonly_refuses_writes_but_serves_reads_and_open_reads() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("q", b"one");
    client.set("q", b"two");
    assert_eq!(client.get("q/open"), Some(b"one".to_vec()));
    client.expect(b"status readonly\r\n", b"END\r\n");
    client.expect(b"status\r\n", b"READONLY\r\n");
    client.expect(b"get q/close\r\n", b"END\r\n");
    assert_eq!(client.get("q"), Some(b"two".to_vec()));
    for write in [
        &b"set q 0 0 1\r\nx\r\n"[..],
        b"delete q\r\n",
        b"flush q\r\n",
        b"flush_all\r\n",
        b"flush_expired q\r\n",
    ] {
        let mut writer = server.connect();
        writer.expect_then_closed(write, b"SERVER_ERROR server is not accepting writes\r\n");
    }
}

#[test]
fn quiescent_refuses_reads_too() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("q", b"x");
    client.expect(b"status quiescent\r\n", b"END\r\n");
    let mut reader = server.connect();
    reader.expect_then_closed(
        b"get q\r\n",
        b"SERVER_ERROR server is not accepting reads\r\n",
    );
    let mut monitor = server.connect();
    monitor.expect_then_closed(
        b"monitor q 1\r\n",
        b"SERVER_ERROR server is not accepting reads\r\n",
    );
    client.expect(b"status up\r\n", b"END\r\n");
    assert_eq!(client.get("q"), Some(b"x".to_vec()));
}

#[test]
fn writeavoid_refuses_nothing() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"status writeavoid\r\n", b"END\r\n");
    client.expect(b"status\r\n", b"WRITEAVOID\r\n");
    client.set("q", b"x");
    assert_eq!(client.get("q"), Some(b"x".to_vec()));
}

#[test]
fn unknown_or_down_status_is_refused_and_closes() {
    let server = Server::start();
    for name in ["down", "sideways"] {
        let mut client = server.connect();
        client.expect_then_closed(
            format!("status {name}\r\n").as_bytes(),
            b"CLIENT_ERROR unknown status\r\n",
        );
    }
    let mut client = server.connect();
    client.expect(b"status\r\n", b"UP\r\n");
}

#[test]
fn the_status_survives_a_restart() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"status readonly\r\n", b"END\r\n");
    let server = server.restart_after_kill();
    let mut client = server.connect();
    client.expect(b"status\r\n", b"READONLY\r\n");
}

#[test]
fn default_status_applies_without_a_status_file() {
    let server = Server::start_with_config("[server]\ndefault_status = \"quiescent\"\n");
    let mut client = server.connect();
    client.expect(b"status\r\n", b"QUIESCENT\r\n");
}

#[test]
fn a_stricter_status_waits_for_the_grace_period() {
    let server = Server::start_with_config("[server]\nstatus_change_grace_period = \"1h\"\n");
    let mut client = server.connect();
    client.expect(b"status readonly\r\n", b"END\r\n");
    client.expect(b"status\r\n", b"UP\r\n");
    client.set("q", b"still accepted");
}

#[test]
fn reload_applies_new_limits_to_live_queues() {
    let server = Server::start_with_config("[queues.q]\nmax_items = 1\n");
    let mut client = server.connect();
    client.set("q", b"a");
    client.expect(b"set q 0 0 1\r\nb\r\n", b"NOT_STORED\r\n");
    server.rewrite_config(
        "[queues.q]\nmax_items = 3\n[aliases.both]\ndestination_queues = [\"q\", \"r\"]\n",
    );
    client.expect(b"reload\r\n", b"Reloaded config.\r\n");
    client.set("q", b"b");
    client.set("both", b"c");
    assert_eq!(client.get("r"), Some(b"c".to_vec()));
    client.expect(b"set q 0 0 1\r\nd\r\n", b"NOT_STORED\r\n");
}

#[test]
fn a_bad_file_leaves_the_configuration_unchanged() {
    let server = Server::start_with_config("[queues.q]\nmax_items = 1\n");
    let mut client = server.connect();
    server.rewrite_config("[queues.q]\nmax_itemz = 3\n");
    client.send(b"reload\r\n");
    let reply = client.read_line();
    assert!(
        reply.starts_with("SERVER_ERROR reload failed: ") && reply.contains("max_itemz"),
        "{reply}"
    );
    client.set("q", b"a");
    client.expect(b"set q 0 0 1\r\nb\r\n", b"NOT_STORED\r\n");
}

#[test]
fn sighup_reloads() {
    let server = Server::start_with_config("[queues.q]\nmax_items = 1\n");
    let mut client = server.connect();
    client.set("q", b"a");
    server.rewrite_config("[queues.q]\nmax_items = 2\n");
    server.signal("HUP");
    server.wait_for_log("configuration reloaded");
    client.set("q", b"b");
}
