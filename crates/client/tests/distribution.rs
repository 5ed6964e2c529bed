//! Several real lanner servers behind one client: round-robin spreading and the blocking
//! fan-out, ketama placement, and failover while a server is down.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use lanner_client::{Client, Distribution, Error};
use support::{Lanner, eventually, queue_stat, quick_client, wait_for_stat};

const NO_WAIT: Duration = Duration::ZERO;

fn three() -> [Lanner; 3] {
    [Lanner::start(), Lanner::start(), Lanner::start()]
}

fn round_robin(servers: &[Lanner]) -> Client {
    let servers: Vec<&Lanner> = servers.iter().collect();
    quick_client(&servers).build().unwrap()
}

/// A client that leaves a failed server alone for a second: long enough for a test to see it
/// marked down, short enough to see it used again soon after it is back.
fn patient(servers: &[Lanner], distribution: Distribution) -> Client {
    let servers: Vec<&Lanner> = servers.iter().collect();
    quick_client(&servers)
        .distribution(distribution)
        .retry_backoff(Duration::from_secs(1), Duration::from_secs(1))
        .build()
        .unwrap()
}

async fn items_on(server: &Lanner, queue: &str) -> u64 {
    queue_stat(server, queue, "items").await.unwrap_or(0)
}

#[tokio::test]
async fn round_robin_spreads_writes_and_reads_drain_every_server() {
    let servers = three();
    let client = round_robin(&servers);
    for i in 0..30 {
        client.put("spread", format!("{i}")).await.unwrap();
    }
    for server in &servers {
        assert_eq!(items_on(server, "spread").await, 10, "{}", server.address());
    }
    let mut seen = BTreeSet::new();
    while let Some(item) = client.get("spread", NO_WAIT).await.unwrap() {
        assert!(seen.insert(item), "delivered twice");
    }
    assert_eq!(seen.len(), 30);
    // A batch stays together on one server.
    client.put_many("batch", ["a", "b", "c"]).await.unwrap();
    let mut holding = 0;
    for server in &servers {
        match items_on(server, "batch").await {
            0 => {}
            3 => holding += 1,
            other => panic!("a batch was split: {other} items on one server"),
        }
    }
    assert_eq!(holding, 1);
}

#[tokio::test]
async fn a_blocking_read_waits_on_every_server_and_takes_the_first_item() {
    let servers = three();
    let client = round_robin(&servers);
    for kind in ["get", "open", "peek"] {
        let reader = client.clone();
        let waiting = tokio::spawn(async move {
            let wait = Duration::from_secs(30);
            match kind {
                "get" => reader.get("fan", wait).await,
                "peek" => reader.peek("fan", wait).await,
                _ => {
                    let item = reader.open("fan", wait).await?;
                    match item {
                        Some(item) => {
                            let data = item.data().clone();
                            item.confirm().await?;
                            Ok(Some(data))
                        }
                        None => Ok(None),
                    }
                }
            }
        });
        for server in &servers {
            wait_for_stat(server, "fan", "waiters", 1).await;
        }
        // The item arrives on the last server only; the reader must get it from there.
        servers[2].client().put("fan", kind).await.unwrap();
        let got = waiting.await.unwrap().unwrap();
        assert_eq!(got.as_deref(), Some(kind.as_bytes()), "{kind}");
        // The other waits were cancelled, and nothing is left open anywhere.
        for server in &servers {
            wait_for_stat(server, "fan", "waiters", 0).await;
            wait_for_stat(server, "fan", "open_transactions", 0).await;
        }
        let left = if kind == "peek" { 1 } else { 0 };
        assert_eq!(items_on(&servers[2], "fan").await, left, "{kind}");
        client.flush("fan").await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_that_arrive_on_several_servers_at_once_are_not_lost() {
    let servers = three();
    let client = round_robin(&servers);
    let direct: Vec<Client> = servers.iter().map(Lanner::client).collect();
    for round in 0..10 {
        let reader = client.clone();
        let waiting =
            tokio::spawn(async move { reader.get("race", Duration::from_secs(30)).await });
        for server in &servers {
            wait_for_stat(server, "race", "waiters", 1).await;
        }
        // One item on every server at the same moment: one is taken, two must remain.
        let puts: Vec<_> = direct
            .iter()
            .map(|one| {
                let one = one.clone();
                tokio::spawn(async move { one.put("race", format!("{round}")).await })
            })
            .collect();
        for put in puts {
            put.await.unwrap().unwrap();
        }
        assert!(waiting.await.unwrap().unwrap().is_some());
        eventually("the two other items to be back", async || {
            let mut total = 0;
            for server in &servers {
                if queue_stat(server, "race", "open_transactions").await != Some(0) {
                    return None;
                }
                total += items_on(server, "race").await;
            }
            (total == 2).then_some(())
        })
        .await;
        client.flush("race").await.unwrap();
    }
}

#[tokio::test]
async fn ketama_keeps_each_queue_on_its_server_in_fifo_order() {
    let servers = three();
    let client = patient(&servers, Distribution::Ketama);
    let queues: Vec<String> = (0..12).map(|i| format!("queue{i}")).collect();
    for queue in &queues {
        let items: Vec<String> = (0..5).map(|i| format!("{queue}-{i}")).collect();
        client.put_many(queue, items.clone()).await.unwrap();
        client.put(queue, format!("{queue}-5")).await.unwrap();
    }
    let mut used = BTreeSet::new();
    for queue in &queues {
        let home = client.server_for(queue).unwrap().to_owned();
        used.insert(home.clone());
        for server in &servers {
            let expected = if server.address() == home { 6 } else { 0 };
            assert_eq!(
                items_on(server, queue).await,
                expected,
                "{queue} on {}",
                server.address()
            );
        }
        for i in 0..6 {
            let item = client.get(queue, Duration::from_millis(100)).await.unwrap();
            assert_eq!(item, Some(Bytes::from(format!("{queue}-{i}"))));
        }
    }
    assert!(
        used.len() > 1,
        "twelve queues should not all hash to one server"
    );
}

#[tokio::test]
async fn ketama_moves_a_queue_to_another_server_while_its_own_is_down() {
    let mut servers = three();
    let client = patient(&servers, Distribution::Ketama);
    let home = client.server_for("moving").unwrap().to_owned();
    let home_index = servers.iter().position(|s| s.address() == home).unwrap();
    servers[home_index].kill();

    client.put("moving", "during the outage").await.unwrap();
    assert!(!client.servers()[home_index].available);
    let got = client
        .get("moving", Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(got.as_deref(), Some(&b"during the outage"[..]));

    servers[home_index].restart();
    eventually("the queue to return to its own server", async || {
        client.put("moving", "home again").await.ok()?;
        (items_on(&servers[home_index], "moving").await > 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn round_robin_carries_on_while_a_server_is_down() {
    let mut servers = three();
    let client = patient(&servers, Distribution::RoundRobin);
    servers[1].kill();
    for i in 0..20 {
        client.put("steady", format!("{i}")).await.unwrap();
    }
    let status = client.servers();
    assert!(status[0].available && !status[1].available && status[2].available);
    assert_eq!(
        items_on(&servers[0], "steady").await + items_on(&servers[2], "steady").await,
        20
    );

    servers[1].restart();
    eventually("writes to reach the restarted server", async || {
        client.put("steady", "more").await.ok()?;
        (items_on(&servers[1], "steady").await > 0).then_some(())
    })
    .await;
    assert!(client.servers().iter().all(|server| server.available));
}

#[tokio::test]
async fn an_open_read_on_a_server_that_dies_is_lost_to_the_caller_and_requeued() {
    let mut servers = [Lanner::start(), Lanner::start()];
    let client = round_robin(&servers);
    servers[0].client().put("jobs", "precious").await.unwrap();
    let item = client.open("jobs", NO_WAIT).await.unwrap().unwrap();
    assert_eq!(item.server(), servers[0].address());
    servers[0].kill();
    match item.confirm().await {
        Err(error @ Error::ConnectionLost { .. }) => assert!(error.outcome_unknown()),
        other => panic!("expected ConnectionLost, got {other:?}"),
    }
    servers[0].restart();
    let again = eventually("the re-queued item", async || {
        client
            .get("jobs", Duration::from_millis(50))
            .await
            .ok()
            .flatten()
    })
    .await;
    assert_eq!(again, "precious");
}
