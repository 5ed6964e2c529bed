//! A worker using reliable reads: each job is confirmed only after it was processed, so a
//! worker that crashes (or a connection that breaks) never loses one; the server hands it out
//! again.
//!
//!     cargo run -p lanner-client --example worker -- [SERVERS] [QUEUE] [IDLE_SECONDS]
//!
//! SERVERS is a comma-separated list of host:port (default 127.0.0.1:22133), QUEUE defaults to
//! `jobs`. The worker stops once the queue has stayed empty for IDLE_SECONDS (default 5).

use std::time::{Duration, Instant};

use lanner_client::{Client, ReliableItem};

/// Stands for real work; a job it cannot handle is aborted, to be retried later.
fn process(job: &ReliableItem) -> bool {
    !job.data().is_empty()
}

#[tokio::main]
async fn main() -> Result<(), lanner_client::Error> {
    let mut args = std::env::args().skip(1);
    let servers = args.next().unwrap_or_else(|| "127.0.0.1:22133".to_owned());
    let queue = args.next().unwrap_or_else(|| "jobs".to_owned());
    let idle_limit = Duration::from_secs(args.next().and_then(|s| s.parse().ok()).unwrap_or(5));

    let client = Client::new(servers.split(','))?;
    let mut done = 0u64;
    let mut idle_since = Instant::now();
    while idle_since.elapsed() < idle_limit {
        // Blocks up to a second, on every server at once.
        let mut job = match client.open(&queue, Duration::from_secs(1)).await {
            Ok(Some(job)) => job,
            Ok(None) => continue,
            Err(error) => {
                eprintln!("read failed: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        idle_since = Instant::now();
        loop {
            if !process(&job) {
                job.abort().await?;
                break;
            }
            done += 1;
            // Confirm this job and take the next from the same server in one round trip.
            match job.confirm_and_open(Duration::ZERO).await {
                Ok(Some(next)) => job = next,
                Ok(None) => break,
                Err(error) => {
                    // The job may be delivered again: processing must be idempotent.
                    eprintln!("confirm failed: {error}");
                    break;
                }
            }
        }
    }
    println!("processed {done} jobs from {queue:?}; idle for {idle_limit:?}, stopping");
    Ok(())
}
