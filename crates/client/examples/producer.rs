//! Puts numbered jobs on a queue, in pipelined batches.
//!
//!     cargo run -p lanner-client --example producer -- [SERVERS] [QUEUE] [COUNT]
//!
//! SERVERS is a comma-separated list of host:port (default 127.0.0.1:22133); with several,
//! the batches are spread round-robin. QUEUE defaults to `jobs`, COUNT to 1000.

use std::time::Instant;

use lanner_client::Client;

const BATCH: u64 = 100;

#[tokio::main]
async fn main() -> Result<(), lanner_client::Error> {
    let mut args = std::env::args().skip(1);
    let servers = args.next().unwrap_or_else(|| "127.0.0.1:22133".to_owned());
    let queue = args.next().unwrap_or_else(|| "jobs".to_owned());
    let count: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);

    let client = Client::new(servers.split(','))?;
    let started = Instant::now();
    let mut next = 0;
    while next < count {
        let end = (next + BATCH).min(count);
        let batch: Vec<String> = (next..end).map(|n| format!("job {n}")).collect();
        client.put_many(&queue, batch).await?;
        next = end;
    }
    let elapsed = started.elapsed();
    println!(
        "put {count} jobs on {queue:?} in {elapsed:.2?} ({:.0}/s)",
        count as f64 / elapsed.as_secs_f64()
    );
    for server in client.stats().await {
        match server.stats {
            Ok(stats) => println!(
                "  {}: {} waiting",
                server.server,
                stats.queue(&queue, "items").unwrap_or(0)
            ),
            Err(error) => println!("  {}: {error}", server.server),
        }
    }
    Ok(())
}
