//! The blocking wrapper against a real server, from plain threads.

mod support;

use std::time::Duration;

use lanner_client::blocking::Client;
use support::{Lanner, PATIENCE, POLL};

const NO_WAIT: Duration = Duration::ZERO;

fn client(server: &Lanner) -> Client {
    Client::from_builder(support::quick_client(&[server])).unwrap()
}

/// Waits until `queue` on `server` has `wanted` open reads.
fn wait_for_open(client: &Client, queue: &str, wanted: u64) {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let stats = client.stats().pop().unwrap().stats.unwrap();
        if stats.queue(queue, "open_transactions") == Some(wanted) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "open reads never became {wanted}"
        );
        std::thread::sleep(POLL);
    }
}

#[test]
fn put_get_and_peek() {
    let server = Lanner::start();
    let client = client(&server);
    client.put("jobs", "one").unwrap();
    client.put_many("jobs", ["two", "three"]).unwrap();
    assert_eq!(client.peek("jobs", NO_WAIT).unwrap().unwrap(), "one");
    for expected in ["one", "two", "three"] {
        assert_eq!(client.get("jobs", NO_WAIT).unwrap().unwrap(), expected);
    }
    assert_eq!(client.get("jobs", Duration::from_millis(50)).unwrap(), None);
    assert!(client.servers()[0].available);
}

#[test]
fn a_blocked_read_on_one_thread_gets_an_item_put_on_another() {
    let server = Lanner::start();
    let client = client(&server);
    let reader = client.clone();
    let waiting = std::thread::spawn(move || reader.get("jobs", Duration::from_secs(30)));
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let stats = client.stats().pop().unwrap().stats.unwrap();
        if stats.queue("jobs", "waiters") == Some(1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the reader never waited"
        );
        std::thread::sleep(POLL);
    }
    client.put("jobs", "wake up").unwrap();
    assert_eq!(waiting.join().unwrap().unwrap().unwrap(), "wake up");
}

#[test]
fn reliable_reads_confirm_abort_and_abort_on_drop() {
    let server = Lanner::start();
    let client = client(&server);
    client.put_many("jobs", ["a", "b", "c"]).unwrap();

    let item = client.open("jobs", NO_WAIT).unwrap().unwrap();
    assert_eq!((item.data().as_ref(), item.queue()), (&b"a"[..], "jobs"));
    assert_eq!(item.server(), server.address());
    item.abort().unwrap();

    let item = client.open("jobs", NO_WAIT).unwrap().unwrap();
    assert_eq!(item.data(), "a");
    let next = item.confirm_and_open(NO_WAIT).unwrap().unwrap();
    assert_eq!(next.data(), "b");
    drop(next);
    wait_for_open(&client, "jobs", 0);

    let item = client.open("jobs", NO_WAIT).unwrap().unwrap();
    assert_eq!(item.data(), "b", "the dropped read was aborted");
    item.confirm().unwrap();
    assert_eq!(client.get("jobs", NO_WAIT).unwrap().unwrap(), "c");
}

#[test]
fn monitor_batches_and_admin_calls() {
    let server = Lanner::start();
    let client = client(&server);
    client.put_many("feed", ["1", "2", "3"]).unwrap();
    let batch = client.monitor("feed", Duration::from_secs(1), 2).unwrap();
    assert_eq!(batch.items(), ["1", "2"]);
    assert_eq!((batch.len(), batch.is_empty()), (2, false));
    batch.abort();
    wait_for_open(&client, "feed", 0);
    let batch = client.monitor("feed", Duration::from_secs(1), 3).unwrap();
    assert_eq!(batch.len(), 3);
    batch.confirm().unwrap();

    client.put("feed", "x").unwrap();
    client.flush("feed").unwrap();
    assert_eq!(client.get("feed", NO_WAIT).unwrap(), None);
    client.delete("feed").unwrap();
    let stats = client.stats().pop().unwrap().stats.unwrap();
    assert_eq!(stats.queue("feed", "items"), None);
}

#[test]
fn an_item_outliving_its_client_is_aborted() {
    let server = Lanner::start();
    let client = client(&server);
    client.put("jobs", "orphan").unwrap();
    let item = client.open("jobs", NO_WAIT).unwrap().unwrap();
    drop(client);
    drop(item);
    let fresh = self::client(&server);
    wait_for_open(&fresh, "jobs", 0);
    assert_eq!(fresh.get("jobs", NO_WAIT).unwrap().unwrap(), "orphan");
}
