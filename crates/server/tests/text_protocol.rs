//! The text protocol (spec a.5) against the real binary: every command and reply, open-read
//! semantics (get confirms the previous read, disconnect returns open reads), blocking reads,
//! monitor, binary-safe items, the interplay with the memcache port, server status, and bad
//! input.
//!
//! Every wait on the server is a condition (a reply, or the `waiters` stat polled through a
//! memcache connection), never a sleep.

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use support::{PATIENCE, POLL_INTERVAL, Server, put_request, value_reply};

const VERSION_REPLY: &str = concat!(":", env!("CARGO_PKG_VERSION"), "\n");

/// Every byte value but LF, with CR and NUL inside: what a text item may hold.
fn binary_item() -> Vec<u8> {
    let mut item: Vec<u8> = (0u8..=255).filter(|&byte| byte != b'\n').collect();
    item.push(b'!');
    item
}

#[test]
fn multi_item_put_then_gets_in_order() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    assert_eq!(client.put("q", &[b"one", b"two", b"three"]), 3);
    assert_eq!(client.read("get q").as_deref(), Some(&b"one"[..]));
    assert_eq!(client.read("get q").as_deref(), Some(&b"two"[..]));
    assert_eq!(client.read("get q").as_deref(), Some(&b"three"[..]));
    assert_eq!(client.read("get q"), None);
}

#[test]
fn pipelined_requests_are_answered_in_order_with_crlf_or_lf() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    client.expect(
        b"put q:\r\na\r\nb\r\n\r\nget q\r\npeek q\nconfirm q 0\nget q\n",
        b"+2\n:a\n:b\n+0\n:b\n",
    );
}

#[test]
fn put_without_items_stores_nothing_and_creates_no_queue() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    client.expect(b"put q\n", b"+0\n");
    client.expect(b"put q:\n\n", b"+0\n");
    assert!(!server.connect().has_queue("q"));
}

#[test]
fn get_confirms_the_previous_open_read_on_that_queue() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    let mut observer = server.connect();
    client.put("q", &[b"first", b"second", b"third"]);
    assert_eq!(client.read("get q").as_deref(), Some(&b"first"[..]));
    assert_eq!(
        observer.stat("queue_q_open_transactions").as_deref(),
        Some("1")
    );
    assert_eq!(client.read("get q").as_deref(), Some(&b"second"[..]));
    assert_eq!(
        observer.stat("queue_q_open_transactions").as_deref(),
        Some("1")
    );
    client.close();
    // "first" was confirmed by the second get; "second" was still open and comes back.
    observer.wait_for_stat("queue_q_open_transactions", "0");
    assert_eq!(observer.get("q"), Some(b"second".to_vec()));
    assert_eq!(observer.get("q"), Some(b"third".to_vec()));
    assert_eq!(observer.get("q"), None);
}

#[test]
fn open_reads_on_other_queues_are_left_alone() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    client.put("a", &[b"a1"]);
    client.put("b", &[b"b1", b"b2"]);
    assert_eq!(client.read("get a").as_deref(), Some(&b"a1"[..]));
    assert_eq!(client.read("get b").as_deref(), Some(&b"b1"[..]));
    let mut observer = server.connect();
    assert_eq!(
        observer.stat("queue_a_open_transactions").as_deref(),
        Some("1")
    );
    client.close();
    observer.wait_for_stat("queue_a_open_transactions", "0");
    assert_eq!(observer.get("a"), Some(b"a1".to_vec()));
}

#[test]
fn peek_confirms_open_reads_and_leaves_the_item() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    client.put("q", &[b"x", b"y"]);
    assert_eq!(client.read("get q").as_deref(), Some(&b"x"[..]));
    assert_eq!(client.read("peek q").as_deref(), Some(&b"y"[..]));
    assert_eq!(client.read("peek q").as_deref(), Some(&b"y"[..]));
    let mut observer = server.connect();
    assert_eq!(
        observer.stat("queue_q_open_transactions").as_deref(),
        Some("0")
    );
    assert_eq!(observer.stat("queue_q_items").as_deref(), Some("1"));
    client.expect(b"confirm q 1\n", b"-Not that many transactions open.\n");
    assert_eq!(client.read("peek empty"), None);
}

#[test]
fn disconnect_returns_open_reads_to_the_head_in_order() {
    let server = Server::start_with_text();
    let mut observer = server.connect();
    let mut client = server.text_connect();
    client.put("q", &[b"one", b"two", b"three"]);
    client.send(b"monitor q 60000\n");
    assert_eq!(client.read_item().as_deref(), Some(&b"one"[..]));
    assert_eq!(client.read_item().as_deref(), Some(&b"two"[..]));
    assert_eq!(client.read_item().as_deref(), Some(&b"three"[..]));
    observer.wait_for_stat("queue_q_open_transactions", "3");
    client.close();
    observer.wait_for_stat("queue_q_open_transactions", "0");
    assert_eq!(
        observer.stat("queue_q_canceled_transactions").as_deref(),
        Some("3")
    );
    for expected in [&b"one"[..], b"two", b"three"] {
        assert_eq!(observer.get("q").as_deref(), Some(expected));
    }
}

#[test]
fn monitor_streams_open_reads_until_the_timeout_then_star() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    client.put("q", &[b"a", b"b"]);
    let started = Instant::now();
    client.expect(b"monitor q 300\n", b":a\n:b\n*\n");
    assert!(started.elapsed() >= Duration::from_millis(250));
    client.expect(b"confirm q 2\n", b"+2\n");
    client.expect(b"confirm q 1\n", b"-Not that many transactions open.\n");
    client.expect(b"monitor q 0\n", b"*\n");
    assert_eq!(server.connect().stat("queue_q_items").as_deref(), Some("0"));
}

#[test]
fn monitor_delivers_items_put_while_it_streams() {
    let server = Server::start_with_text();
    let mut monitor = server.text_connect();
    let mut producer = server.text_connect();
    let mut observer = server.connect();
    monitor.send(b"monitor q 60000\n");
    observer.wait_for_stat("queue_q_waiters", "1");
    producer.put("q", &[b"late"]);
    assert_eq!(monitor.read_item().as_deref(), Some(&b"late"[..]));
}

#[test]
fn monitor_stops_at_max_open_transactions() {
    let server = Server::start_with_text_and_config("[server]\nmax_open_transactions = 2\n");
    let mut client = server.text_connect();
    client.put("q", &[b"1", b"2", b"3"]);
    client.expect(b"monitor q 60000\n", b":1\n:2\n*\n");
    // A get first confirms the two open reads.
    assert_eq!(client.read("get q").as_deref(), Some(&b"3"[..]));
    let mut observer = server.connect();
    assert_eq!(observer.stat("queue_q_items").as_deref(), Some("0"));
    assert_eq!(
        observer.stat("queue_q_open_transactions").as_deref(),
        Some("1")
    );
}

#[test]
fn confirm_confirms_the_oldest_open_reads() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    client.put("q", &[b"1", b"2", b"3"]);
    client.expect(b"monitor q 200\n", b":1\n:2\n:3\n*\n");
    client.expect(b"confirm q 2\n", b"+2\n");
    client.expect(b"confirm q 2\n", b"-Not that many transactions open.\n");
    client.expect(b"confirm q 0\n", b"+0\n");
    let mut observer = server.connect();
    assert_eq!(
        observer.stat("queue_q_open_transactions").as_deref(),
        Some("1")
    );
    client.close();
    // Only the youngest read was still open.
    observer.wait_for_stat("queue_q_open_transactions", "0");
    assert_eq!(observer.get("q"), Some(b"3".to_vec()));
    assert_eq!(observer.get("q"), None);
}

#[test]
fn confirm_refuses_more_than_are_open_and_confirms_nothing() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    client.put("q", &[b"only"]);
    assert_eq!(client.read("get q").as_deref(), Some(&b"only"[..]));
    client.expect(b"confirm q 2\n", b"-Not that many transactions open.\n");
    client.expect(b"confirm other 1\n", b"-Not that many transactions open.\n");
    client.expect(b"confirm q 1\n", b"+1\n");
    client.close();
    let mut observer = server.connect();
    observer.wait_for_stat("curr_connections", "1");
    assert_eq!(observer.get("q"), None);
}

#[test]
fn blocking_get_waits_for_a_put_from_another_connection() {
    let server = Server::start_with_text();
    let mut waiter = server.text_connect();
    let mut producer = server.text_connect();
    let mut observer = server.connect();
    waiter.send(b"get q 20000\n");
    observer.wait_for_stat("queue_q_waiters", "1");
    let put_at = Instant::now();
    assert_eq!(producer.put("q", &[b"hello"]), 1);
    assert_eq!(waiter.read_item().as_deref(), Some(&b"hello"[..]));
    assert!(put_at.elapsed() < Duration::from_secs(10));
    observer.wait_for_stat("queue_q_waiters", "0");
    assert_eq!(
        observer.stat("queue_q_open_transactions").as_deref(),
        Some("1")
    );
}

#[test]
fn blocking_peek_waits_too() {
    let server = Server::start_with_text();
    let mut waiter = server.text_connect();
    let mut observer = server.connect();
    waiter.send(b"peek q 20000\n");
    observer.wait_for_stat("queue_q_waiters", "1");
    observer.set("q", b"seen");
    assert_eq!(waiter.read_item().as_deref(), Some(&b"seen"[..]));
    assert_eq!(observer.get("q"), Some(b"seen".to_vec()));
}

#[test]
fn blocking_get_times_out_with_star() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    let started = Instant::now();
    assert_eq!(client.read("get q 300"), None);
    assert!(started.elapsed() >= Duration::from_millis(250));
    client.expect(b"get q 0\n", b"*\n");
    client.expect(b"get q -1\n", b"*\n");
}

#[test]
fn a_waiter_that_disconnects_stops_waiting() {
    let server = Server::start_with_text();
    let mut waiter = server.text_connect();
    let mut observer = server.connect();
    waiter.send(b"get q 60000\n");
    observer.wait_for_stat("queue_q_waiters", "1");
    waiter.close();
    observer.wait_for_stat("queue_q_waiters", "0");
    observer.set("q", b"kept");
    assert_eq!(observer.get("q"), Some(b"kept".to_vec()));
}

#[test]
fn binary_items_pass_through_unchanged() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    let item = binary_item();
    assert_eq!(client.put("q", &[&item, b"\x80\xff", b"\r\x00\rz"]), 3);
    assert_eq!(client.read("get q"), Some(item.clone()));
    let mut memcache = server.connect();
    assert_eq!(memcache.get("q"), Some(b"\x80\xff".to_vec()));
    memcache.set("q", &item);
    assert_eq!(client.read("get q").as_deref(), Some(&b"\r\x00\rz"[..]));
    assert_eq!(client.read("get q"), Some(item));
}

#[test]
fn text_and_memcache_share_queues() {
    let server = Server::start_with_text();
    let mut text = server.text_connect();
    let mut memcache = server.connect();
    text.put("shared", &[b"from text"]);
    memcache.expect(b"get shared\r\n", &value_reply("shared", b"from text"));
    memcache.set("shared", b"from memcache");
    assert_eq!(
        text.read("get shared").as_deref(),
        Some(&b"from memcache"[..])
    );
    text.expect(b"confirm shared 1\n", b"+1\n");
    assert_eq!(memcache.stat("queue_shared_items").as_deref(), Some("0"));
}

#[test]
fn an_item_holding_a_line_feed_is_refused_and_stays_queued() {
    let server = Server::start_with_text();
    let mut memcache = server.connect();
    let mut text = server.text_connect();
    memcache.set("q", b"two\nlines");
    let refusal = b"-Item contains a line feed; read it on the memcache port.\n";
    text.expect_then_open(b"get q\n", refusal);
    text.expect_then_open(b"peek q\n", refusal);
    text.expect(b"monitor q 60000\n", refusal);
    assert_eq!(
        memcache.stat("queue_q_open_transactions").as_deref(),
        Some("0")
    );
    assert_eq!(memcache.get("q"), Some(b"two\nlines".to_vec()));
}

#[test]
fn expiry_is_relative_milliseconds() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    client.expect(&put_request("put q -1:", &[b"gone"]), b"+1\n");
    assert_eq!(client.read("get q"), None);
    client.expect(&put_request("put q 600000:", &[b"kept"]), b"+1\n");
    assert_eq!(client.read("get q").as_deref(), Some(&b"kept"[..]));
    client.expect(&put_request("put q 0:", &[b"never expires"]), b"+1\n");
    client.expect(&put_request("put q 1:", &[b"brief"]), b"+1\n");
    assert_eq!(client.read("get q").as_deref(), Some(&b"never expires"[..]));
    let deadline = Instant::now() + PATIENCE;
    while client.read("peek q").is_some() {
        assert!(Instant::now() < deadline, "the item never expired");
        std::thread::sleep(POLL_INTERVAL);
    }
}

#[test]
fn put_stops_at_the_first_refused_item() {
    let server = Server::start_with_text_and_config("[queues.small]\nmax_items = 2\n");
    let mut client = server.text_connect();
    assert_eq!(client.put("small", &[b"1", b"2", b"3", b"4"]), 2);
    assert_eq!(client.put("small", &[b"5"]), 0);
}

#[test]
fn put_to_an_alias_reaches_every_destination() {
    let server = Server::start_with_text_and_config(
        "[aliases.everyone]\ndestination_queues = [\"left\", \"right\"]\n",
    );
    let mut client = server.text_connect();
    assert_eq!(client.put("everyone", &[b"hi"]), 1);
    assert_eq!(client.read("get everyone"), None);
    assert_eq!(client.read("get left").as_deref(), Some(&b"hi"[..]));
    assert_eq!(client.read("get right").as_deref(), Some(&b"hi"[..]));
}

#[test]
fn flush_and_delete_answer_plus_zero() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    let mut observer = server.connect();
    client.put("q", &[b"1", b"2"]);
    client.expect(b"flush q\n", b"+0\n");
    assert_eq!(observer.stat("queue_q_items").as_deref(), Some("0"));
    client.expect(b"flush missing\n", b"+0\n");
    client.expect(b"delete q\n", b"+0\n");
    client.expect(b"delete missing\n", b"+0\n");
    assert!(!observer.has_queue("q"));
    assert!(!observer.has_queue("missing"));
}

#[test]
fn status_reports_and_changes_the_server_status() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    client.expect(b"status\n", b":UP\n");
    client.expect(b"status ReadOnly\n", b"+0\n");
    client.expect(b"status\n", b":READONLY\n");
    client.expect(b"status down\n", b"-Status forbidden.\n");
    client.expect(b"status sideways\n", b"-Unknown status.\n");
    client.expect(b"status up\n", b"+0\n");
    server.connect().expect(b"status\r\n", b"UP\r\n");
}

#[test]
fn readonly_refuses_writes_and_the_connection_stays_open() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    client.put("q", &[b"x"]);
    client.expect(b"status readonly\n", b"+0\n");
    for (request, operation) in [
        (put_request("put q:", &[b"y"]), "setItem"),
        (b"flush q\n".to_vec(), "flush"),
        (b"delete q\n".to_vec(), "delete"),
    ] {
        let refusal = format!("-Server not available for operation {operation}\n");
        client.expect_then_open(&request, refusal.as_bytes());
    }
    assert_eq!(client.read("get q").as_deref(), Some(&b"x"[..]));
    client.expect(b"confirm q 1\n", b"+1\n");
}

#[test]
fn quiescent_refuses_reads_too() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    client.put("q", &[b"x"]);
    client.expect(b"status quiescent\n", b"+0\n");
    for (request, operation) in [
        (&b"get q\n"[..], "getItem"),
        (b"peek q\n", "getItem"),
        (b"monitor q 1000\n", "monitorUntil"),
    ] {
        let refusal = format!("-Server not available for operation {operation}\n");
        client.expect_then_open(request, refusal.as_bytes());
    }
    client.expect(b"status up\n", b"+0\n");
    assert_eq!(client.read("get q").as_deref(), Some(&b"x"[..]));
}

#[test]
fn version_and_unknown_commands() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    client.expect(b"version\n", VERSION_REPLY.as_bytes());
    client.expect_then_open(b"FOO bar\n", b"-Unknown command: foo\n");
    client.expect_then_open(b"\n", b"-Unknown command: \n");
    client.expect_then_open(b"set q 0 0 1\n", b"-Unknown command: set\n");
}

#[test]
fn missing_arguments_and_bad_numbers_keep_the_connection() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    let cases: [(&[u8], &[u8]); 10] = [
        (b"get\n", b"-Queue name required.\n"),
        (b"peek\n", b"-Queue name required.\n"),
        (b"put:\n\n", b"-Queue name required.\n"),
        (b"flush\n", b"-Queue name required.\n"),
        (b"delete\n", b"-Queue name required.\n"),
        (b"monitor q\n", b"-Queue name & timeout required.\n"),
        (b"confirm q\n", b"-Queue name & count required.\n"),
        (
            b"put q soon:\nitem\n\n",
            b"-Error parsing expiration time.\n",
        ),
        (b"get q 1s\n", b"-Error parsing timeout.\n"),
        (b"confirm q -1\n", b"-Error parsing count.\n"),
    ];
    for (request, reply) in cases {
        client.expect_then_open(request, reply);
    }
    assert!(!server.connect().has_queue("q"));
}

#[test]
fn bad_queue_names_are_refused() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    for request in [
        &b"get a.b\n"[..],
        b"peek ../etc\n",
        b"put +child:\nitem\n\n",
        b"monitor a~b 10\n",
        b"get caf\xe9\n",
    ] {
        client.expect_then_open(request, b"-Bad queue name.\n");
    }
    let mut observer = server.connect();
    assert_eq!(observer.stat("queue_creates").as_deref(), Some("0"));
}

#[test]
fn a_line_too_long_is_refused_and_closes() {
    let server = Server::start_with_text_and_config("[server]\nmax_line_length = 1024\n");
    let mut client = server.text_connect();
    client.expect_then_closed(&[b'x'; 2000], b"-Line too long; limit=1024.\n");
    let mut client = server.text_connect();
    let long_item = vec![b'y'; 1025];
    client.expect_then_closed(
        &put_request("put q:", &[&long_item]),
        b"-Line too long; limit=1024.\n",
    );
    assert_eq!(server.connect().stat("queue_q_items"), None);
}

#[test]
fn a_put_over_the_item_limit_is_refused_whole_and_closes() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    let items: Vec<&[u8]> = vec![b"x"; 1024];
    assert_eq!(client.put("q", &items), 1024);
    let too_many: Vec<&[u8]> = vec![b"z"; 1025];
    client.expect_then_closed(
        &put_request("put q:", &too_many),
        b"-Too many items in one put; limit=1024.\n",
    );
    assert_eq!(
        server.connect().stat("queue_q_items").as_deref(),
        Some("1024")
    );
}

#[test]
fn quit_closes_the_connection_and_returns_its_open_reads() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    client.put("q", &[b"x"]);
    assert_eq!(client.read("get q").as_deref(), Some(&b"x"[..]));
    client.expect_then_closed(b"quit\n", b"");
    let mut observer = server.connect();
    observer.wait_for_stat("queue_q_open_transactions", "0");
    assert_eq!(observer.get("q"), Some(b"x".to_vec()));
}

#[test]
fn connections_and_commands_are_counted() {
    let server = Server::start_with_text();
    let mut client = server.text_connect();
    client.put("q", &[b"a", b"b"]);
    client.read("get q");
    client.read("peek q");
    client.read("get none");
    let mut observer = server.connect();
    let stats: std::collections::HashMap<String, String> = observer.stats().into_iter().collect();
    for (name, value) in [
        ("curr_connections", "2"),
        ("total_connections", "2"),
        ("cmd_set", "2"),
        ("cmd_get", "2"),
        ("cmd_peek", "1"),
        ("get_hits", "2"),
        ("get_misses", "1"),
    ] {
        assert_eq!(stats.get(name).map(String::as_str), Some(value), "{name}");
    }
    let bytes_read: u64 = stats["bytes_read"].parse().expect("number");
    assert!(bytes_read >= 34, "bytes_read {bytes_read}");
    client.close();
    observer.wait_for_stat("curr_connections", "1");
}

#[test]
fn shutdown_answers_then_stops_the_server() {
    let mut server = Server::start_with_text();
    let mut client = server.text_connect();
    client.expect(b"shutdown\n", b"+0\n");
    assert!(server.wait_exit().success());
}

#[test]
fn graceful_shutdown_drains_text_connections() {
    let mut server = Server::start_with_text();
    let mut waiter = server.text_connect();
    waiter.send(b"get q 60000\n");
    server.connect().wait_for_stat("queue_q_waiters", "1");
    let status = server.terminate();
    assert!(status.success(), "{status}");
    assert_eq!(waiter.read_item(), None);
    assert!(waiter.is_closed());
}

#[test]
fn an_invalid_text_listen_address_stops_startup() {
    let temp = tempfile::TempDir::new().expect("temp dir");
    let data_dir = temp.path().join("data");
    let log = Server::try_start_with(&data_dir, None, &["--text-listen", "port 2222"])
        .err()
        .expect("startup must fail");
    assert!(log.contains("invalid text_listen \"port 2222\""), "{log}");
}

#[test]
fn a_text_listen_address_in_use_stops_startup() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let temp = tempfile::TempDir::new().expect("temp dir");
    let log = Server::try_start_with(
        &temp.path().join("data"),
        None,
        &["--text-listen", &address],
    )
    .err()
    .expect("startup must fail");
    assert!(
        log.contains(&format!("cannot listen for the text protocol on {address}")),
        "{log}"
    );
}
