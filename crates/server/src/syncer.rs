//! The background thread that writes and fsyncs journals on their `sync` interval, and hands
//! records nobody waited for (expiries, aborts of vanished clients) to the OS under `never`.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lanner_queue::{QueueCollection, SyncPolicy};
use tracing::error;

use crate::shared::Shared;

/// How often the thread looks for work when no queue asks for anything sooner.
const TICK: Duration = Duration::from_millis(100);

/// Runs the sync thread until the returned handle is stopped.
pub struct Syncer {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Syncer {
    /// Starts the thread.
    pub fn start(shared: Arc<Shared>) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("lanner-sync".to_owned())
            .spawn(move || run(&shared.queues, &stopped))?;
        Ok(Self { stop, thread })
    }

    /// Stops the thread and waits for it.
    pub fn stop(self) {
        self.stop.send(()).ok();
        drop(self.thread.join());
    }
}

fn run(queues: &QueueCollection, stopped: &mpsc::Receiver<()>) {
    let mut last_sync: std::collections::HashMap<String, Instant> =
        std::collections::HashMap::new();
    loop {
        match stopped.recv_timeout(TICK.min(shortest_interval(queues))) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
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
                error!(queue = queue.name(), %error, "background journal sync failed");
            }
        }
        last_sync.retain(|name, _| queues.get(name).is_some());
    }
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
