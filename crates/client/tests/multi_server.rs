//! Four producers and four consumers move a fixed set of messages through the client, over
//! one server and over three; in the third run one of the three servers is SIGKILLed in the
//! middle and restarted on its data directory.
//!
//! Checked: every acknowledged message is delivered at least once, and only messages whose
//! reply was lost (a `put` that failed with an unknown outcome, or a confirm that failed) are
//! delivered more than once. Printed: messages per second through the client (no timed
//! assertion). Run with `-- --nocapture` to see the report; with `--release` for speed.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lanner_client::Client;
use support::{Lanner, POLL, quick_client};

const QUEUE: &str = "load";
const PRODUCERS: u64 = 4;
const CONSUMERS: usize = 4;
/// Messages of each throughput run and of the crash run.
const MESSAGES: u64 = 10_000;
/// Bound on one whole run.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// The two tests measure throughput; they run one after the other, not side by side.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What producers and consumers saw.
#[derive(Default)]
struct Tally {
    acknowledged: HashSet<u64>,
    /// `put`s that failed with an unknown outcome (and were retried).
    unknown_puts: HashSet<u64>,
    /// Messages whose confirm failed: the server may deliver them again.
    lost_confirms: HashSet<u64>,
    deliveries: HashMap<u64, u32>,
}

struct Shared {
    tally: Mutex<Tally>,
    acknowledged: AtomicUsize,
    distinct_delivered: AtomicUsize,
    deadline: Instant,
}

impl Shared {
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().expect("tally")
    }

    fn all_delivered(&self) -> bool {
        self.distinct_delivered.load(Ordering::SeqCst) as u64 == MESSAGES
    }

    fn check_deadline(&self, who: &str) {
        assert!(
            Instant::now() < self.deadline,
            "{who} still busy after {RUN_LIMIT:?}: {} acknowledged, {} delivered",
            self.acknowledged.load(Ordering::SeqCst),
            self.distinct_delivered.load(Ordering::SeqCst)
        );
    }

    fn delivered(&self, id: u64) {
        let mut tally = self.tally();
        let count = tally.deliveries.entry(id).or_insert(0);
        *count += 1;
        if *count == 1 {
            self.distinct_delivered.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn produce(client: Client, shared: Arc<Shared>, first: u64) {
    for id in (first..MESSAGES).step_by(PRODUCERS as usize) {
        loop {
            match client.put(QUEUE, id.to_string()).await {
                Ok(()) => {
                    shared.tally().acknowledged.insert(id);
                    shared.acknowledged.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                Err(error) => {
                    if error.outcome_unknown() {
                        shared.tally().unknown_puts.insert(id);
                    }
                    shared.check_deadline("a producer");
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }
}

fn message_id(data: &[u8]) -> u64 {
    let text = std::str::from_utf8(data).expect("UTF-8 message");
    text.parse()
        .unwrap_or_else(|_| panic!("unexpected message {text:?}"))
}

/// Reliable reads: open, record, confirm (chained with the next open on the same server
/// while that server has items).
async fn consume(client: Client, shared: Arc<Shared>) {
    while !shared.all_delivered() {
        shared.check_deadline("a consumer");
        let mut item = match client.open(QUEUE, Duration::from_millis(100)).await {
            Ok(Some(item)) => item,
            Ok(None) => continue,
            Err(_) => {
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        loop {
            let id = message_id(item.data());
            shared.delivered(id);
            if shared.all_delivered() {
                if item.confirm().await.is_err() {
                    shared.tally().lost_confirms.insert(id);
                }
                break;
            }
            match item.confirm_and_open(Duration::ZERO).await {
                Ok(Some(next)) => item = next,
                Ok(None) => break,
                Err(_) => {
                    shared.tally().lost_confirms.insert(id);
                    break;
                }
            }
        }
    }
}

/// Runs the producers and consumers; `meanwhile` runs alongside (the crash, or nothing).
/// Returns the tally and how long it took until every message was delivered.
async fn run(client: &Client, meanwhile: impl AsyncFnOnce(Arc<Shared>)) -> (Tally, Duration) {
    let shared = Arc::new(Shared {
        tally: Mutex::default(),
        acknowledged: AtomicUsize::new(0),
        distinct_delivered: AtomicUsize::new(0),
        deadline: Instant::now() + RUN_LIMIT,
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for first in 0..PRODUCERS {
        tasks.push(tokio::spawn(produce(
            client.clone(),
            Arc::clone(&shared),
            first,
        )));
    }
    for _ in 0..CONSUMERS {
        tasks.push(tokio::spawn(consume(client.clone(), Arc::clone(&shared))));
    }
    meanwhile(Arc::clone(&shared)).await;
    for task in tasks {
        task.await.expect("producer or consumer panicked");
    }
    let elapsed = started.elapsed();
    // What is still queued can only be second copies: count them as deliveries too.
    while let Some(item) = client.get(QUEUE, Duration::ZERO).await.expect("drain") {
        shared.delivered(message_id(&item));
    }
    let tally = std::mem::take(&mut *shared.tally());
    (tally, elapsed)
}

/// Asserts at-least-once delivery and that every duplicate had a lost reply; prints a report.
fn check(label: &str, tally: &Tally, elapsed: Duration) {
    assert_eq!(
        tally.acknowledged.len() as u64,
        MESSAGES,
        "{label}: every put succeeded in the end"
    );
    let missing: Vec<u64> = tally
        .acknowledged
        .iter()
        .filter(|id| !tally.deliveries.contains_key(id))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "{label}: acknowledged but never delivered: {missing:?}"
    );
    let duplicates: Vec<u64> = tally
        .deliveries
        .iter()
        .filter(|&(_, &count)| count > 1)
        .map(|(&id, _)| id)
        .collect();
    let unexplained: Vec<u64> = duplicates
        .iter()
        .filter(|id| !tally.unknown_puts.contains(id) && !tally.lost_confirms.contains(id))
        .copied()
        .collect();
    assert!(
        unexplained.is_empty(),
        "{label}: delivered twice although no reply was lost: {unexplained:?}"
    );
    let rate = MESSAGES as f64 / elapsed.as_secs_f64();
    println!(
        "{label}: {MESSAGES} messages, {PRODUCERS} producers, {CONSUMERS} consumers: \
         {elapsed:.2?}, {rate:.0} messages/s; {} duplicates, {} puts with unknown outcome, \
         {} lost confirms",
        duplicates.len(),
        tally.unknown_puts.len(),
        tally.lost_confirms.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_with_one_server_and_with_three() {
    let _serial = SERIAL.lock().await;
    let one = Lanner::start();
    let client = quick_client(&[&one]).build().unwrap();
    let (tally, elapsed) = run(&client, async |_| {}).await;
    check("one server", &tally, elapsed);

    let three = [Lanner::start(), Lanner::start(), Lanner::start()];
    let client = quick_client(&[&three[0], &three[1], &three[2]])
        .build()
        .unwrap();
    let (tally, elapsed) = run(&client, async |_| {}).await;
    check("three servers", &tally, elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_message_survives_a_server_crash() {
    let _serial = SERIAL.lock().await;
    let mut servers = [Lanner::start(), Lanner::start(), Lanner::start()];
    let client = quick_client(&[&servers[0], &servers[1], &servers[2]])
        .build()
        .unwrap();
    let victim = &mut servers[1];
    let (tally, elapsed) = run(&client, async |shared: Arc<Shared>| {
        let wait_for = |count: usize| {
            let shared = Arc::clone(&shared);
            async move {
                while shared.acknowledged.load(Ordering::SeqCst) < count {
                    shared.check_deadline("the crash");
                    tokio::time::sleep(POLL).await;
                }
            }
        };
        let half = MESSAGES as usize / 2;
        wait_for(half).await;
        victim.kill();
        // Writes carry on over the two other servers while it is down.
        wait_for(half + MESSAGES as usize / 10).await;
        victim.restart();
    })
    .await;
    check(
        "three servers, one SIGKILLed and restarted",
        &tally,
        elapsed,
    );
}
