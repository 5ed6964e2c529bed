//! Reliable reads (spec b.1-b.4, b.7; Part 0 #5): `get q/open`, `/close`, `/abort`, `confirm`,
//! `monitor`, the per-connection-per-queue limit, and what a connection's end does to its open
//! reads.

mod support;

use support::{Client, Server, set_request, value_reply};

fn item(index: usize) -> Vec<u8> {
    format!("item-{index}").into_bytes()
}

/// Sets `items` on `queue`, in order.
fn set_all(client: &mut Client, queue: &str, items: &[&[u8]]) {
    for data in items {
        client.set(queue, data);
    }
}

/// Drains `queue` with plain gets and returns what it held, in order.
fn drain(client: &mut Client, queue: &str) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| client.get(queue)).collect()
}

#[test]
fn open_read_returns_the_item_and_hides_it_from_other_connections() {
    let server = Server::start();
    let mut reader = server.connect();
    let mut other = server.connect();
    set_all(&mut reader, "q", &[b"first", b"second"]);
    reader.expect(b"get q/open\r\n", &value_reply("q", b"first"));
    assert_eq!(other.stat("queue_q_items").as_deref(), Some("1"));
    assert_eq!(
        other.stat("queue_q_open_transactions").as_deref(),
        Some("1")
    );
    other.expect(b"get q/peek\r\n", &value_reply("q", b"second"));
    other.expect(b"get q\r\n", &value_reply("q", b"second"));
    other.expect(b"get q\r\n", b"END\r\n");
    other.expect(b"get q/open\r\n", b"END\r\n");
}

#[test]
fn close_confirms_the_open_read_for_good() {
    let server = Server::start();
    let mut reader = server.connect();
    reader.set("q", b"once");
    reader.expect(b"get q/open\r\n", &value_reply("q", b"once"));
    reader.expect(b"get q/close\r\n", b"END\r\n");
    reader.close();
    let mut fresh = server.connect();
    // The reader's connection has ended (and would have aborted anything still open).
    fresh.wait_for_stat("curr_connections", "1");
    assert_eq!(
        fresh.stat("queue_q_open_transactions").as_deref(),
        Some("0")
    );
    assert_eq!(
        fresh.stat("queue_q_canceled_transactions").as_deref(),
        Some("0")
    );
    fresh.expect(b"get q\r\n", b"END\r\n");
}

#[test]
fn abort_returns_the_open_read_to_the_head() {
    let server = Server::start();
    let mut client = server.connect();
    set_all(&mut client, "q", &[b"a", b"b"]);
    client.expect(b"get q/open\r\n", &value_reply("q", b"a"));
    client.expect(b"get q/abort\r\n", b"END\r\n");
    assert_eq!(
        client.stat("queue_q_open_transactions").as_deref(),
        Some("0")
    );
    assert_eq!(client.stat("queue_q_items").as_deref(), Some("2"));
    client.expect(b"get q\r\n", &value_reply("q", b"a"));
    client.expect(b"get q\r\n", &value_reply("q", b"b"));
}

#[test]
fn abort_ignores_a_timeout_option() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("q", b"a");
    client.expect(b"get q/open\r\n", &value_reply("q", b"a"));
    // 60 s is longer than the client's patience: the reply must not wait for the timeout.
    client.expect(b"get q/abort/t=60000\r\n", b"END\r\n");
    client.expect(b"get q/abort/t=60000\r\n", b"END\r\n");
    client.expect(b"get q\r\n", &value_reply("q", b"a"));
}

#[test]
fn close_open_loop_consumes_every_item_once() {
    let server = Server::start();
    let mut client = server.connect();
    const N: usize = 50;
    for index in 0..N {
        client.set("q", &item(index));
    }
    client.expect(b"get q/open\r\n", &value_reply("q", &item(0)));
    for index in 1..N {
        client.expect(b"get q/close/open\r\n", &value_reply("q", &item(index)));
        assert_eq!(
            client.stat("queue_q_open_transactions").as_deref(),
            Some("1")
        );
    }
    client.expect(b"get q/close/open\r\n", b"END\r\n");
    assert_eq!(
        client.stat("queue_q_open_transactions").as_deref(),
        Some("0")
    );
    assert_eq!(client.stat("queue_q_items").as_deref(), Some("0"));
    assert_eq!(client.stat("queue_q_transactions").as_deref(), Some("50"));
    client.expect(b"get q\r\n", b"END\r\n");
}

#[test]
fn close_with_nothing_open_replies_end() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("q", b"untouched");
    client.expect(b"get q/close\r\n", b"END\r\n");
    client.expect(b"get other/close\r\n", b"END\r\n");
    assert_eq!(client.stat("queue_q_items").as_deref(), Some("1"));
    client.expect(b"get q\r\n", &value_reply("q", b"untouched"));
}

#[test]
fn abort_with_nothing_open_replies_end() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("q", b"untouched");
    client.expect(b"get q/abort\r\n", b"END\r\n");
    client.expect(b"get other/abort\r\n", b"END\r\n");
    assert_eq!(client.stat("queue_q_items").as_deref(), Some("1"));
    client.expect(b"get q\r\n", &value_reply("q", b"untouched"));
}

#[test]
fn several_open_reads_on_one_queue_close_and_abort_the_oldest_first() {
    let server = Server::start();
    let mut client = server.connect();
    set_all(&mut client, "q", &[b"a", b"b", b"c", b"d"]);
    client.expect(b"get q/open\r\n", &value_reply("q", b"a"));
    client.expect(b"get q/open\r\n", &value_reply("q", b"b"));
    client.expect(b"get q/open\r\n", &value_reply("q", b"c"));
    assert_eq!(
        client.stat("queue_q_open_transactions").as_deref(),
        Some("3")
    );
    // close confirms `a`, the oldest.
    client.expect(b"get q/close\r\n", b"END\r\n");
    // abort returns `b`, now the oldest, to the head.
    client.expect(b"get q/abort\r\n", b"END\r\n");
    client.expect(b"get q/peek\r\n", &value_reply("q", b"b"));
    // close/open confirms `c` and opens `b` again.
    client.expect(b"get q/close/open\r\n", &value_reply("q", b"b"));
    client.expect(b"get q/close\r\n", b"END\r\n");
    assert_eq!(
        client.stat("queue_q_open_transactions").as_deref(),
        Some("0")
    );
    assert_eq!(drain(&mut client, "q"), [b"d".to_vec()]);
}

#[test]
fn open_reads_on_several_queues_at_once() {
    let server = Server::start_with_config("[server]\nmax_open_transactions = 1\n");
    let mut client = server.connect();
    client.set("a", b"from a");
    client.set("b", b"from b");
    client.set("c", b"from c");
    client.expect(b"get a/open\r\n", &value_reply("a", b"from a"));
    client.expect(b"get b/open\r\n", &value_reply("b", b"from b"));
    // A plain get on a third queue is fine while a and b hold open reads.
    client.expect(b"get c\r\n", &value_reply("c", b"from c"));
    assert_eq!(
        client.stat("queue_a_open_transactions").as_deref(),
        Some("1")
    );
    assert_eq!(
        client.stat("queue_b_open_transactions").as_deref(),
        Some("1")
    );
    client.expect(b"get a/close\r\n", b"END\r\n");
    client.expect(b"get b/abort\r\n", b"END\r\n");
    client.expect(b"get a\r\n", b"END\r\n");
    client.expect(b"get b\r\n", &value_reply("b", b"from b"));
}

#[test]
fn plain_get_with_an_open_read_on_the_queue_is_error_and_closes_returning_the_read() {
    let server = Server::start();
    let mut reader = server.connect();
    let mut other = server.connect();
    set_all(&mut reader, "q", &[b"a", b"b"]);
    reader.expect(b"get q/open\r\n", &value_reply("q", b"a"));
    reader.expect_then_closed(b"get q\r\n", b"ERROR\r\n");
    other.wait_for_stat("queue_q_open_transactions", "0");
    assert_eq!(
        other.stat("queue_q_canceled_transactions").as_deref(),
        Some("1")
    );
    assert_eq!(drain(&mut other, "q"), [b"a".to_vec(), b"b".to_vec()]);
}

#[test]
fn blocking_plain_get_with_an_open_read_on_the_queue_is_error_and_closes() {
    let server = Server::start();
    let mut reader = server.connect();
    reader.set("q", b"a");
    reader.expect(b"get q/open\r\n", &value_reply("q", b"a"));
    reader.expect_then_closed(b"get q/t=10000\r\n", b"ERROR\r\n");
}

#[test]
fn exceeding_max_open_transactions_is_error_and_closes_returning_the_reads() {
    let server = Server::start_with_config("[server]\nmax_open_transactions = 2\n");
    let mut reader = server.connect();
    let mut other = server.connect();
    set_all(&mut reader, "q", &[b"a", b"b", b"c"]);
    reader.expect(b"get q/open\r\n", &value_reply("q", b"a"));
    reader.expect(b"get q/open\r\n", &value_reply("q", b"b"));
    reader.expect_then_closed(b"get q/open\r\n", b"ERROR\r\n");
    other.wait_for_stat("queue_q_open_transactions", "0");
    assert_eq!(
        drain(&mut other, "q"),
        [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
}

#[test]
fn close_open_at_the_limit_is_allowed() {
    let server = Server::start_with_config("[server]\nmax_open_transactions = 2\n");
    let mut client = server.connect();
    set_all(&mut client, "q", &[b"a", b"b", b"c"]);
    client.expect(b"get q/open\r\n", &value_reply("q", b"a"));
    client.expect(b"get q/open\r\n", &value_reply("q", b"b"));
    client.expect(b"get q/close/open\r\n", &value_reply("q", b"c"));
    assert_eq!(
        client.stat("queue_q_open_transactions").as_deref(),
        Some("2")
    );
}

#[test]
fn peek_is_allowed_while_reads_are_open() {
    let server = Server::start();
    let mut client = server.connect();
    set_all(&mut client, "q", &[b"a", b"b"]);
    client.expect(b"get q/open\r\n", &value_reply("q", b"a"));
    client.expect(b"get q/peek\r\n", &value_reply("q", b"b"));
    client.expect(b"get q/peek\r\n", &value_reply("q", b"b"));
    client.expect(b"get q/close\r\n", b"END\r\n");
    client.expect(b"get q\r\n", &value_reply("q", b"b"));
}

#[test]
fn disconnect_returns_open_reads_to_the_head_in_original_order() {
    let server = Server::start();
    let mut reader = server.connect();
    let mut other = server.connect();
    set_all(&mut reader, "q", &[b"1", b"2", b"3", b"4", b"5"]);
    reader.expect(b"get q/open\r\n", &value_reply("q", b"1"));
    reader.expect(b"get q/open\r\n", &value_reply("q", b"2"));
    reader.expect(b"get q/open\r\n", &value_reply("q", b"3"));
    assert_eq!(other.stat("queue_q_items").as_deref(), Some("2"));
    reader.close();
    other.wait_for_stat("queue_q_open_transactions", "0");
    assert_eq!(
        other.stat("queue_q_canceled_transactions").as_deref(),
        Some("3")
    );
    let order: Vec<Vec<u8>> = drain(&mut other, "q");
    let expected: Vec<Vec<u8>> = ["1", "2", "3", "4", "5"]
        .map(|data| data.as_bytes().to_vec())
        .into();
    assert_eq!(order, expected, "Part 0 #5: original order");
}

#[test]
fn disconnect_returns_open_reads_on_every_queue() {
    let server = Server::start();
    let mut reader = server.connect();
    let mut other = server.connect();
    reader.set("a", b"x");
    reader.set("b", b"y");
    reader.expect(b"get a/open\r\n", &value_reply("a", b"x"));
    reader.expect(b"get b/open\r\n", &value_reply("b", b"y"));
    reader.send(b"quit\r\n");
    assert!(reader.is_closed());
    other.wait_for_stat("queue_a_open_transactions", "0");
    other.wait_for_stat("queue_b_open_transactions", "0");
    other.expect(b"get a\r\n", &value_reply("a", b"x"));
    other.expect(b"get b\r\n", &value_reply("b", b"y"));
}

#[test]
fn client_error_that_closes_returns_open_reads() {
    let server = Server::start();
    let mut reader = server.connect();
    let mut other = server.connect();
    reader.set("q", b"x");
    reader.expect(b"get q/open\r\n", &value_reply("q", b"x"));
    reader.expect_then_closed(
        b"get q/peek/open\r\n",
        b"CLIENT_ERROR conflicting get options\r\n",
    );
    other.wait_for_stat("queue_q_open_transactions", "0");
    other.expect(b"get q\r\n", &value_reply("q", b"x"));
}

#[test]
fn open_reads_of_one_connection_cannot_be_closed_by_another() {
    let server = Server::start();
    let mut reader = server.connect();
    let mut other = server.connect();
    reader.set("q", b"x");
    reader.expect(b"get q/open\r\n", &value_reply("q", b"x"));
    other.expect(b"get q/close\r\n", b"END\r\n");
    other.expect(b"confirm q 1\r\n", b"ERROR\r\n");
    assert_eq!(
        other.stat("queue_q_open_transactions").as_deref(),
        Some("1")
    );
    reader.close();
    other.wait_for_stat("queue_q_open_transactions", "0");
    other.expect(b"get q\r\n", &value_reply("q", b"x"));
}

#[test]
fn flush_keeps_open_reads_which_can_still_be_aborted() {
    let server = Server::start();
    let mut client = server.connect();
    set_all(&mut client, "q", &[b"open", b"queued"]);
    client.expect(b"get q/open\r\n", &value_reply("q", b"open"));
    client.expect(b"flush q\r\n", b"END\r\n");
    assert_eq!(client.stat("queue_q_items").as_deref(), Some("0"));
    assert_eq!(
        client.stat("queue_q_open_transactions").as_deref(),
        Some("1")
    );
    client.expect(b"get q/abort\r\n", b"END\r\n");
    client.expect(b"get q\r\n", &value_reply("q", b"open"));
    client.expect(b"get q\r\n", b"END\r\n");
}

#[test]
fn delete_with_open_reads_makes_their_close_and_abort_no_ops() {
    let server = Server::start();
    let mut reader = server.connect();
    let mut admin = server.connect();
    set_all(&mut reader, "q", &[b"a", b"b"]);
    reader.expect(b"get q/open\r\n", &value_reply("q", b"a"));
    admin.expect(b"delete q\r\n", b"DELETED\r\n");
    reader.expect(b"get q/abort\r\n", b"END\r\n");
    reader.expect(b"get q/close\r\n", b"END\r\n");
    // The queue comes back empty on next use; the deleted read does not reappear.
    reader.expect(b"get q\r\n", b"END\r\n");
    reader.close();
    admin.wait_for_stat("curr_connections", "1");
    assert_eq!(admin.stat("queue_q_items").as_deref(), Some("0"));
    assert_eq!(
        admin.stat("queue_q_open_transactions").as_deref(),
        Some("0")
    );
    admin.expect(b"get q\r\n", b"END\r\n");
}

#[test]
fn delete_with_open_reads_then_disconnect_returns_nothing_to_the_new_queue() {
    let server = Server::start();
    let mut reader = server.connect();
    let mut admin = server.connect();
    reader.set("q", b"old");
    reader.expect(b"get q/open\r\n", &value_reply("q", b"old"));
    admin.expect(b"delete q\r\n", b"DELETED\r\n");
    admin.set("q", b"new");
    reader.close();
    admin.wait_for_stat("curr_connections", "1");
    assert_eq!(drain(&mut admin, "q"), [b"new".to_vec()]);
}

#[test]
fn close_without_open_ignores_a_timeout_option() {
    let server = Server::start();
    let mut client = server.connect();
    // 60 s is longer than the client's patience: close alone never fetches, so never waits.
    client.expect(b"get q/close/t=60000\r\n", b"END\r\n");
    client.set("q", b"a");
    client.expect(b"get q/open\r\n", &value_reply("q", b"a"));
    client.expect(b"get q/close/t=60000\r\n", b"END\r\n");
    assert_eq!(client.stat("queue_q_items").as_deref(), Some("0"));
}

#[test]
fn stats_count_open_transactions_transactions_and_cancellations() {
    let server = Server::start();
    let mut client = server.connect();
    let mut observer = server.connect();
    set_all(&mut client, "q", &[b"a", b"b", b"c"]);
    let figures = |observer: &mut Client| {
        ["open_transactions", "transactions", "canceled_transactions"]
            .map(|key| observer.stat_u64(&format!("queue_q_{key}")))
    };
    assert_eq!(figures(&mut observer), [0, 0, 0]);
    client.expect(b"get q/open\r\n", &value_reply("q", b"a"));
    client.expect(b"get q/open\r\n", &value_reply("q", b"b"));
    assert_eq!(figures(&mut observer), [2, 2, 0]);
    client.expect(b"get q/abort\r\n", b"END\r\n");
    assert_eq!(figures(&mut observer), [1, 2, 1]);
    client.expect(b"get q/close\r\n", b"END\r\n");
    assert_eq!(figures(&mut observer), [0, 2, 1]);
    client.expect(b"get q/open\r\n", &value_reply("q", b"a"));
    assert_eq!(figures(&mut observer), [1, 3, 1]);
    client.close();
    observer.wait_for_stat("queue_q_open_transactions", "0");
    assert_eq!(figures(&mut observer), [0, 3, 2]);
    assert_eq!(observer.stat_u64("queue_q_items"), 2);
}

#[test]
fn confirm_after_two_opens_replies_end_and_removes_both() {
    let server = Server::start();
    let mut client = server.connect();
    set_all(&mut client, "q", &[b"a", b"b", b"c"]);
    client.expect(b"get q/open\r\n", &value_reply("q", b"a"));
    client.expect(b"get q/open\r\n", &value_reply("q", b"b"));
    client.expect(b"confirm q 2\r\n", b"END\r\n");
    assert_eq!(
        client.stat("queue_q_open_transactions").as_deref(),
        Some("0")
    );
    // Nothing open any more, so a plain get is allowed.
    client.expect(b"get q\r\n", &value_reply("q", b"c"));
    client.expect(b"get q\r\n", b"END\r\n");
}

#[test]
fn confirm_fewer_than_open_confirms_the_oldest() {
    let server = Server::start();
    let mut client = server.connect();
    set_all(&mut client, "q", &[b"a", b"b", b"c"]);
    client.expect(b"get q/open\r\n", &value_reply("q", b"a"));
    client.expect(b"get q/open\r\n", &value_reply("q", b"b"));
    client.expect(b"confirm q 1\r\n", b"END\r\n");
    client.expect(b"get q/abort\r\n", b"END\r\n");
    assert_eq!(drain(&mut client, "q"), [b"b".to_vec(), b"c".to_vec()]);
}

// ---- monitor (spec b.7) ----

#[test]
fn monitor_streams_at_most_max_items_as_open_reads_then_end() {
    let server = Server::start();
    let mut client = server.connect();
    set_all(&mut client, "q", &[b"a", b"b", b"c"]);
    let expected = [
        value_reply("q", b"a"),
        value_reply("q", b"b"),
        b"END\r\n".to_vec(),
    ]
    .concat();
    client.expect(b"monitor q 1 2\r\n", &expected);
    assert_eq!(
        client.stat("queue_q_open_transactions").as_deref(),
        Some("2")
    );
    assert_eq!(client.stat("queue_q_items").as_deref(), Some("1"));
    client.expect(b"confirm q 2\r\n", b"END\r\n");
    assert_eq!(
        client.stat("queue_q_open_transactions").as_deref(),
        Some("0")
    );
    client.expect(b"get q\r\n", &value_reply("q", b"c"));
}

#[test]
fn monitor_items_are_aborted_when_the_connection_ends_unconfirmed() {
    let server = Server::start();
    let mut client = server.connect();
    let mut other = server.connect();
    set_all(&mut client, "q", &[b"a", b"b"]);
    let expected = [
        value_reply("q", b"a"),
        value_reply("q", b"b"),
        b"END\r\n".to_vec(),
    ]
    .concat();
    client.expect(b"monitor q 1 2\r\n", &expected);
    client.close();
    other.wait_for_stat("queue_q_open_transactions", "0");
    assert_eq!(drain(&mut other, "q"), [b"a".to_vec(), b"b".to_vec()]);
}

#[test]
fn plain_get_after_monitor_before_confirm_is_error_and_closes() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("q", b"a");
    let expected = [value_reply("q", b"a"), b"END\r\n".to_vec()].concat();
    client.expect(b"monitor q 1 1\r\n", &expected);
    client.expect_then_closed(b"get q\r\n", b"ERROR\r\n");
}

#[test]
fn monitor_zero_seconds_replies_end_immediately() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"monitor q 0\r\n", b"END\r\n");
    client.set("q", b"a");
    client.expect(b"monitor q 0 5\r\n", b"END\r\n");
    assert_eq!(client.stat("queue_q_items").as_deref(), Some("1"));
}

#[test]
fn monitor_stops_at_max_open_transactions() {
    let server = Server::start_with_config("[server]\nmax_open_transactions = 2\n");
    let mut client = server.connect();
    set_all(&mut client, "q", &[b"a", b"b", b"c"]);
    // 30 s is longer than the client's patience: the stream must end at the limit, not the deadline.
    let expected = [
        value_reply("q", b"a"),
        value_reply("q", b"b"),
        b"END\r\n".to_vec(),
    ]
    .concat();
    client.expect(b"monitor q 30 5\r\n", &expected);
    assert_eq!(client.stat("queue_q_items").as_deref(), Some("1"));
}

#[test]
fn monitor_streams_what_is_there_then_ends_at_its_deadline() {
    let server = Server::start();
    let mut client = server.connect();
    set_all(&mut client, "q", &[b"a", b"b"]);
    let started = std::time::Instant::now();
    let expected = [
        value_reply("q", b"a"),
        value_reply("q", b"b"),
        b"END\r\n".to_vec(),
    ]
    .concat();
    client.expect(b"monitor q 1 5\r\n", &expected);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "monitor ended before its deadline"
    );
    client.expect(b"confirm q 2\r\n", b"END\r\n");
}

#[test]
fn monitor_waits_for_an_item_set_during_its_window() {
    let server = Server::start();
    let mut monitor = server.connect();
    let mut producer = server.connect();
    monitor.send(b"monitor q 10 1\r\n");
    producer.wait_for_stat("queue_q_waiters", "1");
    producer.expect(&set_request("q", b"late"), b"STORED\r\n");
    let expected = [value_reply("q", b"late"), b"END\r\n".to_vec()].concat();
    monitor.expect(b"", &expected);
    producer.wait_for_stat("queue_q_waiters", "0");
    assert_eq!(
        producer.stat("queue_q_open_transactions").as_deref(),
        Some("1")
    );
    monitor.expect(b"confirm q 1\r\n", b"END\r\n");
    assert_eq!(
        producer.stat("queue_q_open_transactions").as_deref(),
        Some("0")
    );
    assert_eq!(producer.stat("queue_q_items").as_deref(), Some("0"));
}
