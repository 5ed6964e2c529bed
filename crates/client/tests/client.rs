//! The async client against one real lanner server: every operation, reliable-read ownership
//! of connections, and each kind of error.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use lanner_client::Error;
use support::{Lanner, eventually, queue_stat, wait_for_stat};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};

const NO_WAIT: Duration = Duration::ZERO;

#[tokio::test]
async fn put_then_get_round_trips_binary_items() {
    let server = Lanner::start();
    let client = server.client();
    let items: [&[u8]; 4] = [
        b"hello",
        b"",
        b"line\r\nEND\r\nbreaks",
        &[0, 255, 13, 10, 0],
    ];
    for item in items {
        client
            .put("work", Bytes::copy_from_slice(item))
            .await
            .unwrap();
    }
    for item in items {
        let got = client.get("work", NO_WAIT).await.unwrap();
        assert_eq!(got.as_deref(), Some(item));
    }
    assert_eq!(client.get("work", NO_WAIT).await.unwrap(), None);
}

#[tokio::test]
async fn get_waits_for_an_item_and_times_out_empty() {
    let server = Lanner::start();
    let client = server.client();
    let started = Instant::now();
    assert_eq!(
        client
            .get("work", Duration::from_millis(150))
            .await
            .unwrap(),
        None
    );
    assert!(started.elapsed() >= Duration::from_millis(150));

    let reader = client.clone();
    let waiting = tokio::spawn(async move { reader.get("work", Duration::from_secs(30)).await });
    wait_for_stat(&server, "work", "waiters", 1).await;
    client.put("work", "late").await.unwrap();
    let got = waiting.await.unwrap().unwrap();
    assert_eq!(got.as_deref(), Some(&b"late"[..]));
}

#[tokio::test]
async fn put_many_pipelines_a_large_batch_in_order() {
    let server = Lanner::start();
    let client = server.client();
    let items: Vec<String> = (0..20_000).map(|i| format!("item-{i}")).collect();
    client.put_many("batch", items.clone()).await.unwrap();
    assert_eq!(queue_stat(&server, "batch", "items").await, Some(20_000));
    for item in items.iter().take(100) {
        let got = client.get("batch", NO_WAIT).await.unwrap().unwrap();
        assert_eq!(got, item.as_bytes());
    }
    let empty: [&str; 0] = [];
    client.put_many("batch", empty).await.unwrap();
}

#[tokio::test]
async fn a_batch_cut_short_by_an_error_line_reports_that_line() {
    let server = Lanner::start_with_config("[server]\nmax_request_size = \"1KiB\"\n");
    let client = server.client();
    for _ in 0..5 {
        let batch = [
            Bytes::from_static(b"small"),
            Bytes::from(vec![b'x'; 64 * 1024]),
            Bytes::from_static(b"never sent or never read"),
        ];
        match client.put_many("q", batch).await {
            Err(Error::ClientError { message, .. }) => assert_eq!(message, "item too large"),
            other => panic!("expected CLIENT_ERROR, got {other:?}"),
        }
    }
    assert_eq!(queue_stat(&server, "q", "items").await, Some(5));
}

#[tokio::test]
async fn confirm_removes_and_abort_requeues_at_the_head() {
    let server = Lanner::start();
    let client = server.client();
    client.put_many("jobs", ["first", "second"]).await.unwrap();

    let item = client.open("jobs", NO_WAIT).await.unwrap().unwrap();
    assert_eq!(item.data(), "first");
    assert_eq!(item.queue(), "jobs");
    assert_eq!(item.server(), server.address());
    assert_eq!(
        queue_stat(&server, "jobs", "open_transactions").await,
        Some(1)
    );
    item.abort().await.unwrap();
    assert_eq!(
        queue_stat(&server, "jobs", "open_transactions").await,
        Some(0)
    );

    let item = client.open("jobs", NO_WAIT).await.unwrap().unwrap();
    assert_eq!(
        item.data(),
        "first",
        "an aborted item comes back at the head"
    );
    item.confirm().await.unwrap();
    let rest = client.get("jobs", NO_WAIT).await.unwrap();
    assert_eq!(rest.as_deref(), Some(&b"second"[..]));
    assert_eq!(client.get("jobs", NO_WAIT).await.unwrap(), None);
}

#[tokio::test]
async fn dropping_an_open_item_aborts_it() {
    let server = Lanner::start();
    let client = server.client();
    client.put("jobs", "fragile").await.unwrap();
    let item = client.open("jobs", NO_WAIT).await.unwrap().unwrap();
    drop(item);
    wait_for_stat(&server, "jobs", "open_transactions", 0).await;
    let again = client.get("jobs", NO_WAIT).await.unwrap();
    assert_eq!(again.as_deref(), Some(&b"fragile"[..]));
}

#[tokio::test]
async fn confirm_and_open_walks_the_queue_in_one_round_trip_each() {
    let server = Lanner::start();
    let client = server.client();
    client.put_many("jobs", ["a", "b", "c"]).await.unwrap();
    let mut seen = Vec::new();
    let mut item = client.open("jobs", NO_WAIT).await.unwrap();
    while let Some(current) = item {
        seen.push(current.data().clone());
        item = current.confirm_and_open(NO_WAIT).await.unwrap();
    }
    assert_eq!(seen, ["a", "b", "c"]);
    assert_eq!(queue_stat(&server, "jobs", "items").await, Some(0));
    assert_eq!(
        queue_stat(&server, "jobs", "open_transactions").await,
        Some(0)
    );
}

#[tokio::test]
async fn open_reads_never_share_a_connection() {
    let server = Lanner::start();
    let client = server.client();
    client
        .put_many("jobs", ["one", "two", "three"])
        .await
        .unwrap();
    // Two owners hold open reads at once; each has its own connection.
    let first = client.open("jobs", NO_WAIT).await.unwrap().unwrap();
    let second = client.open("jobs", NO_WAIT).await.unwrap().unwrap();
    assert_eq!(
        queue_stat(&server, "jobs", "open_transactions").await,
        Some(2)
    );
    // A plain get on the same queue meanwhile would be answered ERROR (and the connection
    // closed, aborting its reads) if it reused one of their connections.
    let third = client.get("jobs", NO_WAIT).await.unwrap();
    assert_eq!(third.as_deref(), Some(&b"three"[..]));
    // Aborting one does not touch the other, and each confirm/abort lands on its own read.
    first.abort().await.unwrap();
    second.confirm().await.unwrap();
    let back = client.get("jobs", NO_WAIT).await.unwrap();
    assert_eq!(back.as_deref(), Some(&b"one"[..]));
    assert_eq!(
        queue_stat(&server, "jobs", "open_transactions").await,
        Some(0)
    );
}

#[tokio::test]
async fn peek_leaves_the_item_in_place() {
    let server = Lanner::start();
    let client = server.client();
    assert_eq!(client.peek("jobs", NO_WAIT).await.unwrap(), None);
    client.put("jobs", "look").await.unwrap();
    for _ in 0..2 {
        let seen = client.peek("jobs", NO_WAIT).await.unwrap();
        assert_eq!(seen.as_deref(), Some(&b"look"[..]));
    }
    assert_eq!(queue_stat(&server, "jobs", "items").await, Some(1));
}

#[tokio::test]
async fn monitor_batches_are_confirmed_or_aborted_together() {
    let server = Lanner::start();
    let client = server.client();
    client
        .put_many("feed", ["1", "2", "3", "4", "5"])
        .await
        .unwrap();

    let batch = client
        .monitor("feed", Duration::from_secs(1), 3)
        .await
        .unwrap();
    assert_eq!(batch.items(), ["1", "2", "3"]);
    assert_eq!((batch.len(), batch.is_empty()), (3, false));
    assert_eq!(
        (batch.queue(), batch.server()),
        ("feed", server.address().as_str())
    );
    assert_eq!(
        queue_stat(&server, "feed", "open_transactions").await,
        Some(3)
    );
    batch.abort();
    wait_for_stat(&server, "feed", "open_transactions", 0).await;
    assert_eq!(queue_stat(&server, "feed", "items").await, Some(5));

    let batch = client
        .monitor("feed", Duration::from_secs(1), 2)
        .await
        .unwrap();
    assert_eq!(
        batch.items(),
        ["1", "2"],
        "aborted items came back in their order"
    );
    batch.confirm().await.unwrap();
    let dropped = client
        .monitor("feed", Duration::from_secs(1), 2)
        .await
        .unwrap();
    assert_eq!(dropped.items(), ["3", "4"]);
    drop(dropped);
    wait_for_stat(&server, "feed", "open_transactions", 0).await;
    assert_eq!(queue_stat(&server, "feed", "items").await, Some(3));

    client.flush("feed").await.unwrap();
    let empty = client.monitor("feed", Duration::ZERO, 10).await.unwrap();
    assert!(empty.is_empty());
    empty.confirm().await.unwrap();
}

#[tokio::test]
async fn flush_delete_and_stats() {
    let server = Lanner::start();
    let client = server.client();
    client.put_many("old", ["x", "y"]).await.unwrap();
    let all = client.stats().await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].server, server.address());
    let stats = all[0].stats.as_ref().unwrap();
    assert_eq!(stats.queue("old", "items"), Some(2));
    assert!(stats.get("version").is_some());
    assert!(stats.get_u64("uptime").is_some());
    assert_eq!(stats.iter().next().map(|(name, _)| name), Some("uptime"));

    client.flush("old").await.unwrap();
    assert_eq!(queue_stat(&server, "old", "items").await, Some(0));
    client.delete("old").await.unwrap();
    assert_eq!(queue_stat(&server, "old", "items").await, None);
}

#[tokio::test]
async fn works_with_a_server_that_echoes_the_full_key() {
    let server = Lanner::start_with_config("[server]\necho_full_key = true\n");
    let client = server.client();
    client.put("work", "echoed").await.unwrap();
    let item = client
        .open("work", Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item.data(), "echoed");
    item.confirm().await.unwrap();
    client.put("work", "peeked").await.unwrap();
    assert!(client.peek("work", NO_WAIT).await.unwrap().is_some());
    let batch = client
        .monitor("work", Duration::from_secs(1), 1)
        .await
        .unwrap();
    assert_eq!(batch.items(), ["peeked"]);
    batch.confirm().await.unwrap();
}

#[tokio::test]
async fn error_lines_are_reported_as_such() {
    let server = Lanner::start();
    let client = server.client();
    let too_long = "q".repeat(201);
    match client.put(&too_long, "x").await {
        Err(Error::ClientError {
            server: from,
            message,
        }) => {
            assert_eq!(from, server.address());
            assert_eq!(message, "bad queue name");
        }
        other => panic!("expected CLIENT_ERROR, got {other:?}"),
    }
    // The server stays in use: an error line is not a server failure.
    assert!(client.servers()[0].available);
    client.put("fine", "x").await.unwrap();

    match client.put("bad name", "x").await {
        Err(Error::InvalidQueueName(name)) => assert_eq!(name, "bad name"),
        other => panic!("expected InvalidQueueName, got {other:?}"),
    }
    assert!(matches!(
        client.get("a/b", NO_WAIT).await,
        Err(Error::InvalidQueueName(_))
    ));
}

/// A fake server: accepts connections and treats each one with `behave`.
async fn fake_server<F, Fut>(behave: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(behave(stream));
        }
    });
    address
}

/// A fake server that answers every connection's first request with `reply`.
async fn answering(reply: &'static [u8]) -> String {
    fake_server(move |mut stream| async move {
        let mut request = [0u8; 256];
        drop(stream.read(&mut request).await);
        drop(stream.write_all(reply).await);
        let mut rest = Vec::new();
        drop(stream.read_to_end(&mut rest).await);
    })
    .await
}

fn client_for(address: &str, response_timeout: Duration) -> lanner_client::Client {
    lanner_client::ClientBuilder::new([address])
        .response_timeout(response_timeout)
        .retry_backoff(Duration::from_secs(60), Duration::from_secs(60))
        .build()
        .unwrap()
}

#[tokio::test]
async fn refusals_and_server_errors_keep_their_identity() {
    let client = client_for(&answering(b"ERROR\r\n").await, Duration::from_secs(10));
    assert!(matches!(
        client.put("q", "x").await,
        Err(Error::Refused { .. })
    ));
    let client = client_for(
        &answering(b"SERVER_ERROR read only\r\n").await,
        Duration::from_secs(10),
    );
    match client.get("q", NO_WAIT).await {
        Err(Error::ServerError { message, .. }) => assert_eq!(message, "read only"),
        other => panic!("expected SERVER_ERROR, got {other:?}"),
    }
    let client = client_for(&answering(b"NOT_STORED\r\n").await, Duration::from_secs(10));
    match client.put("q", "x").await {
        Err(Error::NotStored { rejected, .. }) => assert_eq!(rejected, [0]),
        other => panic!("expected NOT_STORED, got {other:?}"),
    }
    let client = client_for(
        &answering(b"STORED\r\nNOT_STORED\r\nSTORED\r\nNOT_STORED\r\n").await,
        Duration::from_secs(10),
    );
    match client.put_many("q", ["a", "b", "c", "d"]).await {
        Err(Error::NotStored { rejected, .. }) => assert_eq!(rejected, [1, 3]),
        other => panic!("expected NOT_STORED, got {other:?}"),
    }
    // None of these marks the server down.
    assert!(client.servers()[0].available);
}

#[tokio::test]
async fn a_silent_server_is_a_timeout_and_is_marked_down() {
    let address = fake_server(|mut stream| async move {
        let mut sink = Vec::new();
        drop(stream.read_to_end(&mut sink).await);
    })
    .await;
    let client = client_for(&address, Duration::from_millis(200));
    match client.put("q", "x").await {
        Err(error @ Error::Timeout { .. }) => assert!(error.outcome_unknown()),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(!client.servers()[0].available);
    assert!(matches!(
        client.put("q", "x").await,
        Err(Error::NoServerAvailable)
    ));
}

#[tokio::test]
async fn a_dropped_connection_is_connection_lost() {
    let address = fake_server(|mut stream| async move {
        let mut line = [0u8; 8];
        drop(stream.read(&mut line).await);
        // Closes without answering.
    })
    .await;
    let client = client_for(&address, Duration::from_secs(10));
    match client.get("q", NO_WAIT).await {
        Err(error @ Error::ConnectionLost { .. }) => assert!(error.outcome_unknown()),
        other => panic!("expected ConnectionLost, got {other:?}"),
    }
}

#[tokio::test]
async fn garbage_is_a_protocol_error() {
    let address = fake_server(|mut stream| async move {
        let mut line = [0u8; 64];
        drop(stream.read(&mut line).await);
        drop(stream.write_all(b"HELLO THERE\r\n").await);
    })
    .await;
    let client = client_for(&address, Duration::from_secs(10));
    assert!(matches!(
        client.put("q", "x").await,
        Err(Error::Protocol { .. })
    ));
}

#[tokio::test]
async fn a_value_for_another_key_is_a_protocol_error() {
    let address = fake_server(|mut stream| async move {
        let mut line = [0u8; 64];
        drop(stream.read(&mut line).await);
        drop(stream.write_all(b"VALUE other 0 1\r\nx\r\nEND\r\n").await);
    })
    .await;
    let client = client_for(&address, Duration::from_secs(10));
    assert!(matches!(
        client.get("q", NO_WAIT).await,
        Err(Error::Protocol { .. })
    ));
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error_then_no_server_available() {
    // Bound but never listening: connections are refused, and the port stays taken. A dropped
    // listener may still accept for a moment: a child that another test is spawning holds a
    // copy of every descriptor until its exec.
    let closed = TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let address = closed.local_addr().unwrap().to_string();
    let client = client_for(&address, Duration::from_secs(1));
    match client.put("q", "x").await {
        Err(error @ Error::Connect { .. }) => assert!(!error.outcome_unknown()),
        other => panic!("expected Connect, got {other:?}"),
    }
    assert!(matches!(
        client.get("q", NO_WAIT).await,
        Err(Error::NoServerAvailable)
    ));
    // Administrative calls try every server anyway and report each failure.
    let stats = client.stats().await;
    assert!(matches!(stats[0].stats, Err(Error::Connect { .. })));
    drop(closed);
}

#[tokio::test]
async fn a_restarted_server_is_used_again_after_its_back_off() {
    let mut server = Lanner::start();
    let client = server.client();
    client.put("q", "before").await.unwrap();
    server.kill();
    let failed = client.put("q", "while down").await;
    assert!(failed.is_err(), "{failed:?}");
    server.restart();
    eventually("the client to use the restarted server", async || {
        client.put("q", "after").await.ok()
    })
    .await;
    assert!(client.servers()[0].available);
    let first = client.get("q", NO_WAIT).await.unwrap();
    assert_eq!(first.as_deref(), Some(&b"before"[..]));
}
