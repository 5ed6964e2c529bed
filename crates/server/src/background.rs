//! The background thread: it writes and fsyncs journals on their `sync` interval, hands records
//! nobody waited for (expiries, aborts of vanished clients) to the OS under `never`, and runs
//! the expiry sweep every `expiration_timer_frequency`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lanner_queue::{QueueCollection, SyncPolicy};
use tracing::debug;

use crate::shared::Shared;

/// How often the thread wakes when no queue asks for anything sooner.
const TICK: Duration = Duration::from_millis(100);

/// The running background thread.
pub struct Background {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Background {
    /// Starts the thread.
    pub fn start(shared: Arc<Shared>) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel();
        let sweep_every = shared.server.expiration_timer_frequency;
        let thread = std::thread::Builder::new()
            .name("lanner-background".to_owned())
            .spawn(move || run(&shared.queues, sweep_every, &stopped))?;
        Ok(Self { stop, thread })
    }

    /// Stops the thread and waits for it.
    pub fn stop(self) {
        self.stop.send(()).ok();
        drop(self.thread.join());
    }
}

fn run(queues: &QueueCollection, sweep_every: Duration, stopped: &mpsc::Receiver<()>) {
    let mut last_sync: HashMap<String, Instant> = HashMap::new();
    let mut last_sweep = Instant::now();
    loop {
        let tick = TICK.min(shortest_interval(queues)).min(sweep_every);
        match stopped.recv_timeout(tick) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        if last_sweep.elapsed() >= sweep_every {
            last_sweep = Instant::now();
            queues.sweep();
        }
        sync_due_journals(queues, &mut last_sync);
    }
}

/// Writes, and fsyncs where the policy asks for it, every journal whose time has come.
fn sync_due_journals(queues: &QueueCollection, last_sync: &mut HashMap<String, Instant>) {
    let now = Instant::now();
    for queue in queues.queues() {
        let result = match queue.options().sync {
            SyncPolicy::Interval(every) => {
                let last = last_sync.entry(queue.name().to_owned()).or_insert(now);
                if now.duration_since(*last) < every {
                    continue;
                }
                *last = now;
                queue.sync()
            }
            SyncPolicy::Never => queue.write_pending(),
            SyncPolicy::Always => queue.sync(),
        };
        if let Err(error) = result {
            // Every tick would repeat it: the journal logs a failure at error level once.
            debug!(queue = queue.name(), %error, "background journal sync failed");
        }
    }
    last_sync.retain(|name, _| queues.get(name).is_some());
}

fn shortest_interval(queues: &QueueCollection) -> Duration {
    queues
        .queues()
        .iter()
        .filter_map(|queue| match queue.options().sync {
            SyncPolicy::Interval(every) => Some(every),
            SyncPolicy::Always | SyncPolicy::Never => None,
        })
        .min()
        .unwrap_or(TICK)
}
