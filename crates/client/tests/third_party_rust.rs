//! The `memcache` crate (rust-memcache, ASCII protocol), unchanged, against a real lanner
//! server. See docs/clients.md for what it can and cannot express.

mod support;

use std::time::{Duration, Instant};

use lanner_client::blocking::Client as LannerClient;
use support::Lanner;

fn memcache(server: &Lanner) -> memcache::Client {
    // One pooled connection, so that `/open` and `/close` travel on the same connection.
    let url = format!("memcache://{}?protocol=ascii", server.address());
    memcache::Client::with_pool_size(url.as_str(), 1).expect("memcache client")
}

fn lanner(server: &Lanner) -> LannerClient {
    LannerClient::from_builder(support::quick_client(&[server])).unwrap()
}

fn queue_stat(client: &LannerClient, queue: &str, key: &str) -> Option<u64> {
    client.stats().pop()?.stats.ok()?.queue(queue, key)
}

#[test]
fn set_and_get_plain_keys() {
    let server = Lanner::start();
    let mc = memcache(&server);
    mc.set("work", &b"hello"[..], 0).unwrap();
    mc.set("work", "second", 0).unwrap();
    assert_eq!(mc.get::<Vec<u8>>("work").unwrap(), Some(b"hello".to_vec()));
    assert_eq!(mc.get::<String>("work").unwrap(), Some("second".to_owned()));
    assert_eq!(mc.get::<Vec<u8>>("work").unwrap(), None);
    // Items it stores are ordinary items for other clients.
    mc.set("work", "for lanner-client", 0).unwrap();
    assert_eq!(
        lanner(&server)
            .get("work", Duration::ZERO)
            .unwrap()
            .unwrap(),
        "for lanner-client"
    );
    // `delete` answers DELETED, which it maps to true.
    assert!(mc.delete("work").unwrap());
}

#[test]
fn keys_with_options_fail_its_key_check_unless_the_server_echoes_them() {
    let server = Lanner::start();
    let mc = memcache(&server);
    mc.set("work", "lost", 0).unwrap();
    // Kestrel answers `VALUE work ...` to `get work/t=100`; the crate insists on the key it
    // sent. The server has already handed the item out, so it is gone.
    let error = mc.get::<Vec<u8>>("work/t=100").unwrap_err();
    assert!(error.to_string().contains("key doesn't match"), "{error}");
    assert_eq!(queue_stat(&lanner(&server), "work", "items"), Some(0));
}

#[test]
fn blocking_and_reliable_reads_with_echo_full_key() {
    let server = Lanner::start_with_config("[server]\necho_full_key = true\n");
    let mc = memcache(&server);
    let inspect = lanner(&server);
    mc.set("work", "a", 0).unwrap();
    assert_eq!(
        mc.get::<String>("work/t=100").unwrap(),
        Some("a".to_owned())
    );

    let started = Instant::now();
    assert_eq!(mc.get::<String>("work/t=200").unwrap(), None);
    assert!(started.elapsed() >= Duration::from_millis(200));

    mc.set("work", "b", 0).unwrap();
    assert_eq!(mc.get::<String>("work/open").unwrap(), Some("b".to_owned()));
    assert_eq!(queue_stat(&inspect, "work", "open_transactions"), Some(1));
    assert_eq!(mc.get::<String>("work/close").unwrap(), None);
    assert_eq!(queue_stat(&inspect, "work", "open_transactions"), Some(0));

    mc.set("work", "c", 0).unwrap();
    assert_eq!(mc.get::<String>("work/open").unwrap(), Some("c".to_owned()));
    assert_eq!(mc.get::<String>("work/abort").unwrap(), None);
    assert_eq!(mc.get::<String>("work/peek").unwrap(), Some("c".to_owned()));
    assert_eq!(queue_stat(&inspect, "work", "items"), Some(1));
}
