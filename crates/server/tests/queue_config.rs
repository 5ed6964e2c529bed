//! Per-queue configuration over TCP: limits, fanout, expiry moves, open-read timeouts, queue
//! expiry and idle connections. Time-based cases use a fast background sweep and blocking
//! reads that wait for the effect, never sleeps.

mod support;

use support::Server;

#[test]
fn a_full_queue_answers_not_stored() {
    let server =
        Server::start_with_config("[queues.small]\nmax_items = 2\nmax_item_size = \"4B\"\n");
    let mut client = server.connect();
    client.set("small", b"a");
    client.set("small", b"b");
    client.expect(b"set small 0 0 1\r\nc\r\n", b"NOT_STORED\r\n");
    client.expect(b"set other 0 0 5\r\nlarge\r\n", b"STORED\r\n");
    assert_eq!(client.get("small"), Some(b"a".to_vec()));
    client.expect(b"set small 0 0 5\r\nlarge\r\n", b"NOT_STORED\r\n");
    client.expect(b"set small 0 0 4\r\nfour\r\n", b"STORED\r\n");
}

#[test]
fn discard_old_when_full_keeps_the_newest() {
    let server =
        Server::start_with_config("[default]\nmax_items = 2\ndiscard_old_when_full = true\n");
    let mut client = server.connect();
    for item in [b"1", b"2", b"3"] {
        client.set("q", item);
    }
    assert_eq!(client.stat("queue_q_discarded").as_deref(), Some("1"));
    assert_eq!(client.get("q"), Some(b"2".to_vec()));
    assert_eq!(client.get("q"), Some(b"3".to_vec()));
}

#[test]
fn fanout_children_in_the_config_exist_from_startup_and_get_copies() {
    let config = "[queues.\"jobs+audit\"]\nmax_items = 1\n";
    let server = Server::start_with_config(config);
    let mut client = server.connect();
    assert!(
        client.has_queue("jobs+audit"),
        "created at startup (Kestrel issue #127)"
    );
    client.set("jobs", b"one");
    client.set("jobs", b"two");
    assert_eq!(
        client.stat("queue_jobs_children").as_deref(),
        Some("jobs+audit")
    );
    assert_eq!(
        client.get("jobs+audit"),
        Some(b"one".to_vec()),
        "the child's own limit refused the second copy"
    );
    assert_eq!(client.get("jobs+audit"), None);
    assert_eq!(client.get("jobs"), Some(b"one".to_vec()));
    assert_eq!(client.get("jobs"), Some(b"two".to_vec()));
}

#[test]
fn fanout_children_survive_a_restart() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"get q+copy\r\n", b"END\r\n");
    let server = server.restart_after_kill();
    let mut client = server.connect();
    client.set("q", b"x");
    assert_eq!(client.get("q+copy"), Some(b"x".to_vec()));
}

#[test]
fn a_fanout_only_master_stores_nothing_itself() {
    let server = Server::start_with_config(
        "[queues.events]\nfanout_only = true\n[queues.\"events+a\"]\nfanout_only = false\n",
    );
    let mut client = server.connect();
    client.set("events", b"e");
    assert_eq!(client.get("events"), None);
    assert_eq!(client.get("events+a"), Some(b"e".to_vec()));
}

#[test]
fn items_past_max_age_move_to_the_expire_to_queue() {
    let config = "[server]\nexpiration_timer_frequency = \"10ms\"\n\
                  [queues.pending]\nmax_age = \"50ms\"\nexpire_to_queue = \"ready\"\n";
    let server = Server::start_with_config(config);
    let mut client = server.connect();
    client.set("pending", b"job");
    assert_eq!(
        client.get("ready/t=10000"),
        Some(b"job".to_vec()),
        "moved by the sweep"
    );
    assert_eq!(
        client.stat("queue_pending_expired_items").as_deref(),
        Some("1")
    );
    assert_eq!(client.get("pending"), None);
}

#[test]
fn an_open_read_past_its_timeout_goes_to_another_reader() {
    let config = "[server]\nexpiration_timer_frequency = \"10ms\"\n[default]\nopen_transaction_timeout = \"100ms\"\n";
    let server = Server::start_with_config(config);
    let mut slow = server.connect();
    let mut other = server.connect();
    slow.set("q", b"work");
    assert_eq!(slow.get("q/open"), Some(b"work".to_vec()));
    assert_eq!(
        other.get("q/t=10000/open"),
        Some(b"work".to_vec()),
        "reclaimed and redelivered"
    );
    slow.expect(b"get q/close\r\n", b"END\r\n");
    other.expect(b"get q/close\r\n", b"END\r\n");
    assert_eq!(
        other.stat("queue_q_canceled_transactions").as_deref(),
        Some("1")
    );
}

#[test]
fn empty_queues_past_max_queue_age_are_deleted() {
    let config = "[server]\nexpiration_timer_frequency = \"10ms\"\n[queues.temp]\nmax_queue_age = \"50ms\"\n";
    let server = Server::start_with_config(config);
    let mut client = server.connect();
    client.expect(b"get temp\r\n", b"END\r\n");
    client.wait_for_stat("queue_expires", "1");
    assert!(!client.has_queue("temp"));
}

#[test]
fn an_idle_connection_is_closed_and_its_open_reads_return() {
    let server = Server::start_with_config("[server]\nclient_timeout = \"200ms\"\n");
    let mut idle = server.connect();
    idle.set("q", b"held");
    assert_eq!(idle.get("q/open"), Some(b"held".to_vec()));
    assert!(idle.is_closed(), "closed after client_timeout");
    let mut other = server.connect();
    assert_eq!(other.get("q/t=10000"), Some(b"held".to_vec()));
}

#[test]
fn a_read_behind_queue_drains_in_order_after_a_restart() {
    let server = Server::start_with_config("[queues.big]\nmax_memory_size = \"1KiB\"\n");
    let mut client = server.connect();
    let items: Vec<Vec<u8>> = (0..10_000)
        .map(|i| format!("item-{i:05}").into_bytes())
        .collect();
    for chunk in items.chunks(500) {
        let requests: Vec<u8> = chunk
            .iter()
            .flat_map(|item| support::set_request("big", item))
            .collect();
        client.send(&requests);
        for _ in chunk {
            assert_eq!(client.read_line(), "STORED\r\n");
        }
    }
    let mem_bytes = client.stat_u64("queue_big_mem_bytes");
    assert!(
        mem_bytes <= 1024 + 10,
        "only the budget is in memory: {mem_bytes}"
    );
    assert_eq!(client.stat_u64("queue_big_items"), 10_000);
    let server = server.restart_after_kill();
    let mut client = server.connect();
    assert!(client.stat_u64("queue_big_mem_bytes") <= 1024 + 10);
    for item in &items {
        assert_eq!(client.get("big").as_ref(), Some(item));
    }
    assert_eq!(client.get("big"), None);
}

/// Two million 1 KiB items with a 64 MiB memory budget keep the server's resident memory under
/// 200 MiB. Takes a while and 2 GiB of disk: run with `cargo test -- --ignored`.
#[test]
#[ignore = "slow: 2 GiB of journal"]
fn two_million_items_of_a_kibibyte_keep_memory_bounded() {
    let server = Server::start_with_config("[queues.huge]\nmax_memory_size = \"64MiB\"\n");
    let mut client = server.connect();
    let item = vec![b'x'; 1024];
    let batch: Vec<u8> = (0..1000)
        .flat_map(|_| support::set_request("huge", &item))
        .collect();
    for _ in 0..2_000 {
        client.send(&batch);
        for _ in 0..1000 {
            assert_eq!(client.read_line(), "STORED\r\n");
        }
    }
    assert_eq!(client.stat_u64("queue_huge_items"), 2_000_000);
    let rss_kib = server.resident_kib();
    eprintln!("resident memory with 2,000,000 items of 1 KiB queued: {rss_kib} KiB");
    assert!(rss_kib < 200 * 1024, "resident memory {rss_kib} KiB");
}
