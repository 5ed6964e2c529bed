//! A pool of workers sharing one client over three servers (Kestrel's model: jobs are spread
//! round-robin, and each worker reads from whichever server has work).
//!
//!     cargo run -p lanner-client --example worker_pool -- [SERVERS] [QUEUE] [WORKERS]
//!
//! SERVERS defaults to 127.0.0.1:22133,127.0.0.1:22134,127.0.0.1:22135, QUEUE to `jobs`,
//! WORKERS to 8. The pool stops once the queue has been empty everywhere for five seconds.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lanner_client::{Client, ClientBuilder, Distribution};

const IDLE_LIMIT: Duration = Duration::from_secs(5);

/// One worker: reliable reads until the queue stays empty; returns jobs done per server.
async fn work(client: Client, queue: String) -> BTreeMap<String, u64> {
    let mut done = BTreeMap::new();
    let mut idle_since = Instant::now();
    while idle_since.elapsed() < IDLE_LIMIT {
        match client.open(&queue, Duration::from_secs(1)).await {
            Ok(Some(job)) => {
                idle_since = Instant::now();
                let server = job.server().to_owned();
                if job.confirm().await.is_ok() {
                    *done.entry(server).or_insert(0) += 1;
                }
            }
            Ok(None) => {}
            Err(error) => {
                eprintln!("read failed: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    done
}

#[tokio::main]
async fn main() -> Result<(), lanner_client::Error> {
    let mut args = std::env::args().skip(1);
    let servers = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:22133,127.0.0.1:22134,127.0.0.1:22135".to_owned());
    let queue = args.next().unwrap_or_else(|| "jobs".to_owned());
    let workers: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(8);

    let client = ClientBuilder::new(servers.split(','))
        .distribution(Distribution::RoundRobin)
        .retry_backoff(Duration::from_millis(100), Duration::from_secs(5))
        .build()?;
    let pool: Vec<_> = (0..workers)
        .map(|_| tokio::spawn(work(client.clone(), queue.clone())))
        .collect();
    let mut total = BTreeMap::new();
    for (index, worker) in pool.into_iter().enumerate() {
        let done = worker.await.expect("worker panicked");
        println!("worker {index}: {} jobs", done.values().sum::<u64>());
        for (server, count) in done {
            *total.entry(server).or_insert(0) += count;
        }
    }
    for (server, count) in total {
        println!("from {server}: {count} jobs");
    }
    Ok(())
}
