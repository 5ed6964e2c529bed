//! Blocking reads (spec b.5, a.1 item 6; Part 0 #12): `get q/t=<ms>` timeouts, hand-off to
//! waiters oldest first, waiters that leave, and requests pipelined behind a waiting get.
//!
//! Every wait on the server is a condition (the `waiters` stat, a reply), never a sleep.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::{PATIENCE, POLL_INTERVAL, Server, set_request, value_reply};

#[test]
fn blocking_get_on_empty_queue_times_out_with_end() {
    let server = Server::start();
    let mut client = server.connect();
    let started = Instant::now();
    client.expect(b"get q/t=300\r\n", b"END\r\n");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "returned after {waited:?}"
    );
    client.wait_for_stat("queue_q_waiters", "0");
    assert_eq!(client.stat("get_misses").as_deref(), Some("1"));
}

#[test]
fn blocking_get_returns_at_once_when_an_item_is_there() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("q", b"ready");
    client.expect(b"get q/t=60000\r\n", &value_reply("q", b"ready"));
    client.set("q", b"also ready");
    client.expect(b"get q/open/t=60000\r\n", &value_reply("q", b"also ready"));
    client.expect(b"get q/close\r\n", b"END\r\n");
}

#[test]
fn waiter_gets_an_item_set_by_another_connection() {
    let server = Server::start();
    let mut waiter = server.connect();
    let mut producer = server.connect();
    waiter.send(b"get q/t=10000\r\n");
    producer.wait_for_stat("queue_q_waiters", "1");
    let set_at = Instant::now();
    producer.expect(&set_request("q", b"hello"), b"STORED\r\n");
    waiter.expect(b"", &value_reply("q", b"hello"));
    // Delivered on the set, not at the 10 s timeout.
    assert!(
        set_at.elapsed() < Duration::from_secs(5),
        "delivered after {:?}",
        set_at.elapsed()
    );
    producer.wait_for_stat("queue_q_waiters", "0");
    assert_eq!(producer.stat("queue_q_items").as_deref(), Some("0"));
}

#[test]
fn oldest_waiter_is_served_first() {
    let server = Server::start();
    let mut first = server.connect();
    let mut second = server.connect();
    let mut producer = server.connect();
    first.send(b"get q/t=15000\r\n");
    producer.wait_for_stat("queue_q_waiters", "1");
    second.send(b"get q/t=15000\r\n");
    producer.wait_for_stat("queue_q_waiters", "2");
    producer.set("q", b"one");
    first.expect(b"", &value_reply("q", b"one"));
    // The second waiter is still waiting, and gets the next item.
    producer.wait_for_stat("queue_q_waiters", "1");
    assert_eq!(producer.stat("queue_q_items").as_deref(), Some("0"));
    producer.set("q", b"two");
    second.expect(b"", &value_reply("q", b"two"));
    producer.wait_for_stat("queue_q_waiters", "0");
}

#[test]
fn many_waiters_and_producers_deliver_every_item_exactly_once() {
    const WAITERS: usize = 16;
    const PRODUCERS: usize = 4;
    const ITEMS: usize = 500;
    let server = Server::start();
    let mut observer = server.connect();
    let received = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let count = Arc::new(AtomicUsize::new(0));

    let waiters: Vec<_> = (0..WAITERS)
        .map(|_| {
            let mut client = server.connect();
            let (received, count) = (Arc::clone(&received), Arc::clone(&count));
            thread::spawn(move || {
                loop {
                    match client.get("q/t=5000") {
                        Some(data) if data == b"stop" => return,
                        Some(data) => {
                            received.lock().expect("lock").push(data);
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        None => {}
                    }
                }
            })
        })
        .collect();
    observer.wait_for_stat("queue_q_waiters", &WAITERS.to_string());

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let mut client = server.connect();
            thread::spawn(move || {
                for index in (producer..ITEMS).step_by(PRODUCERS) {
                    client.set("q", format!("item-{index:03}").as_bytes());
                }
            })
        })
        .collect();
    for producer in producers {
        producer.join().expect("producer thread");
    }

    let deadline = Instant::now() + PATIENCE;
    while count.load(Ordering::SeqCst) < ITEMS {
        assert!(
            Instant::now() < deadline,
            "only {} of {ITEMS} items delivered; queue holds {:?}",
            count.load(Ordering::SeqCst),
            observer.stat("queue_q_items")
        );
        thread::sleep(POLL_INTERVAL);
    }
    for _ in 0..WAITERS {
        observer.set("q", b"stop");
    }
    for waiter in waiters {
        waiter.join().expect("waiter thread");
    }

    let received = received.lock().expect("lock");
    assert_eq!(
        received.len(),
        ITEMS,
        "items delivered (duplicates included)"
    );
    let distinct: BTreeSet<Vec<u8>> = received.iter().cloned().collect();
    let expected: BTreeSet<Vec<u8>> = (0..ITEMS)
        .map(|index| format!("item-{index:03}").into_bytes())
        .collect();
    assert_eq!(distinct, expected);
    assert_eq!(observer.stat("queue_q_items").as_deref(), Some("0"));
    assert_eq!(
        observer.stat("queue_q_total_items").as_deref(),
        Some(&*(ITEMS + WAITERS).to_string())
    );
}

#[test]
fn waiter_that_disconnects_takes_nothing() {
    let server = Server::start();
    let mut waiter = server.connect();
    let mut producer = server.connect();
    waiter.send(b"get q/t=10000\r\n");
    producer.wait_for_stat("queue_q_waiters", "1");
    waiter.close();
    producer.wait_for_stat("queue_q_waiters", "0");
    producer.set("q", b"for the living");
    assert_eq!(producer.stat("queue_q_items").as_deref(), Some("1"));
    let mut fresh = server.connect();
    fresh.expect(b"get q\r\n", &value_reply("q", b"for the living"));
}

#[test]
fn reliable_waiter_that_disconnects_takes_nothing() {
    let server = Server::start();
    let mut waiter = server.connect();
    let mut producer = server.connect();
    waiter.send(b"get q/open/t=10000\r\n");
    producer.wait_for_stat("queue_q_waiters", "1");
    waiter.close();
    producer.wait_for_stat("queue_q_waiters", "0");
    producer.set("q", b"x");
    assert_eq!(
        producer.stat("queue_q_open_transactions").as_deref(),
        Some("0")
    );
    assert_eq!(producer.stat("queue_q_transactions").as_deref(), Some("0"));
    producer.expect(b"get q\r\n", &value_reply("q", b"x"));
}

#[test]
fn waiters_stat_counts_waiters_and_drops_when_they_leave() {
    let server = Server::start();
    let mut observer = server.connect();
    let mut timing_out = server.connect();
    let mut leaving = server.connect();
    assert_eq!(observer.stat("queue_q_waiters"), None);
    leaving.send(b"get q/t=15000\r\n");
    observer.wait_for_stat("queue_q_waiters", "1");
    timing_out.send(b"get q/t=300\r\n");
    observer.wait_for_stat("queue_q_waiters", "2");
    timing_out.expect(b"", b"END\r\n");
    observer.wait_for_stat("queue_q_waiters", "1");
    leaving.close();
    observer.wait_for_stat("queue_q_waiters", "0");
}

#[test]
fn blocking_open_read_delivers_and_can_be_closed() {
    let server = Server::start();
    let mut reader = server.connect();
    let mut producer = server.connect();
    reader.send(b"get q/open/t=10000\r\n");
    producer.wait_for_stat("queue_q_waiters", "1");
    producer.set("q", b"job");
    reader.expect(b"", &value_reply("q", b"job"));
    assert_eq!(
        producer.stat("queue_q_open_transactions").as_deref(),
        Some("1")
    );
    assert_eq!(producer.stat("queue_q_items").as_deref(), Some("0"));
    reader.expect(b"get q/close\r\n", b"END\r\n");
    assert_eq!(
        producer.stat("queue_q_open_transactions").as_deref(),
        Some("0")
    );
    reader.close();
    producer.wait_for_stat("curr_connections", "1");
    producer.expect(b"get q\r\n", b"END\r\n");
}

#[test]
fn blocking_close_open_confirms_then_waits_for_the_next() {
    let server = Server::start();
    let mut reader = server.connect();
    let mut producer = server.connect();
    producer.set("q", b"first");
    reader.expect(b"get q/open\r\n", &value_reply("q", b"first"));
    reader.send(b"get q/close/open/t=10000\r\n");
    producer.wait_for_stat("queue_q_waiters", "1");
    assert_eq!(
        producer.stat("queue_q_open_transactions").as_deref(),
        Some("0"),
        "close ran before the wait"
    );
    producer.set("q", b"second");
    reader.expect(b"", &value_reply("q", b"second"));
    reader.expect(b"get q/close\r\n", b"END\r\n");
    assert_eq!(producer.stat("queue_q_items").as_deref(), Some("0"));
}

#[test]
fn blocking_peek_waits_and_leaves_the_item() {
    let server = Server::start();
    let mut peeker = server.connect();
    let mut producer = server.connect();
    peeker.send(b"get q/peek/t=10000\r\n");
    producer.wait_for_stat("queue_q_waiters", "1");
    producer.set("q", b"look");
    peeker.expect(b"", &value_reply("q", b"look"));
    assert_eq!(producer.stat("queue_q_items").as_deref(), Some("1"));
    producer.expect(b"get q\r\n", &value_reply("q", b"look"));
}

#[test]
fn peek_waiter_passes_the_wakeup_on_to_a_remove_waiter() {
    let server = Server::start();
    let mut peeker = server.connect();
    let mut remover = server.connect();
    let mut producer = server.connect();
    peeker.send(b"get q/peek/t=15000\r\n");
    producer.wait_for_stat("queue_q_waiters", "1");
    remover.send(b"get q/t=15000\r\n");
    producer.wait_for_stat("queue_q_waiters", "2");
    producer.set("q", b"shared");
    peeker.expect(b"", &value_reply("q", b"shared"));
    remover.expect(b"", &value_reply("q", b"shared"));
    producer.wait_for_stat("queue_q_waiters", "0");
    assert_eq!(producer.stat("queue_q_items").as_deref(), Some("0"));
}

#[test]
fn requests_pipelined_behind_a_blocking_get_are_answered_after_it_in_order() {
    let server = Server::start();
    let mut client = server.connect();
    let mut producer = server.connect();
    let mut pipeline = b"get q/t=10000\r\n".to_vec();
    pipeline.extend_from_slice(&set_request("q", b"behind"));
    pipeline.extend_from_slice(b"get q\r\nget q/t=10\r\nversion\r\n");
    client.send(&pipeline);
    producer.wait_for_stat("queue_q_waiters", "1");
    // The set pipelined behind the waiting get has not run.
    assert_eq!(producer.stat("queue_q_items").as_deref(), Some("0"));
    assert_eq!(producer.stat("cmd_set").as_deref(), Some("0"));
    producer.set("q", b"first");
    let expected = [
        value_reply("q", b"first"),
        b"STORED\r\n".to_vec(),
        value_reply("q", b"behind"),
        b"END\r\n".to_vec(),
        format!("VERSION {}\r\n", env!("CARGO_PKG_VERSION")).into_bytes(),
    ]
    .concat();
    client.expect(b"", &expected);
}

#[test]
fn replies_before_a_blocking_get_are_sent_before_it_waits() {
    let server = Server::start();
    let mut client = server.connect();
    let mut producer = server.connect();
    let mut pipeline = set_request("other", b"x");
    pipeline.extend_from_slice(b"get other\r\nget q/t=15000\r\n");
    client.send(&pipeline);
    client.expect(
        b"",
        &[b"STORED\r\n".to_vec(), value_reply("other", b"x")].concat(),
    );
    producer.wait_for_stat("queue_q_waiters", "1");
    producer.set("q", b"y");
    client.expect(b"", &value_reply("q", b"y"));
}

#[test]
fn requests_sent_while_a_get_blocks_are_answered_after_it() {
    let server = Server::start();
    let mut client = server.connect();
    let mut producer = server.connect();
    client.send(b"get q/t=10000\r\n");
    producer.wait_for_stat("queue_q_waiters", "1");
    client.send(b"version\r\nget q/peek\r\n");
    producer.set("q", b"x");
    let expected = [
        value_reply("q", b"x"),
        format!("VERSION {}\r\n", env!("CARGO_PKG_VERSION")).into_bytes(),
        b"END\r\n".to_vec(),
    ]
    .concat();
    client.expect(b"", &expected);
}

#[test]
fn delete_wakes_waiters_with_end() {
    let server = Server::start();
    let mut waiter = server.connect();
    let mut admin = server.connect();
    waiter.send(b"get q/t=15000\r\n");
    admin.wait_for_stat("queue_q_waiters", "1");
    admin.expect(b"delete q\r\n", b"DELETED\r\n");
    waiter.expect(b"", b"END\r\n");
    waiter.set("q", b"new");
    waiter.expect(b"get q\r\n", &value_reply("q", b"new"));
}

#[test]
fn abort_wakes_a_waiter() {
    let server = Server::start();
    let mut reader = server.connect();
    let mut waiter = server.connect();
    reader.set("q", b"bounced");
    reader.expect(b"get q/open\r\n", &value_reply("q", b"bounced"));
    waiter.send(b"get q/t=10000\r\n");
    reader.wait_for_stat("queue_q_waiters", "1");
    reader.expect(b"get q/abort\r\n", b"END\r\n");
    waiter.expect(b"", &value_reply("q", b"bounced"));
}

#[test]
fn shutdown_answers_waiting_gets_with_end_and_exits_zero() {
    let mut server = Server::start();
    let mut waiter = server.connect();
    let mut admin = server.connect();
    waiter.send(b"get q/t=15000\r\n");
    admin.wait_for_stat("queue_q_waiters", "1");
    admin.send(b"shutdown\r\n");
    waiter.expect(b"", b"END\r\n");
    assert!(waiter.is_closed());
    assert_eq!(server.wait_exit().code(), Some(0));
}
