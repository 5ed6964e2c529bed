//! Group commit for `sync = "always"`: one thread per journal fsyncs whatever has been written
//! and wakes every writer that fsync covered. Writers wait asynchronously, so many concurrent
//! writers cost one thread and share each fsync, instead of each holding a blocking thread.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use lanner_journal::{Journal, JournalError, Seq};
use tokio::sync::watch;

/// The sync thread of one journal.
pub struct GroupCommit {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    journal: Arc<Journal>,
    queue: String,
    wanted: Mutex<Wanted>,
    wake: Condvar,
    synced: watch::Sender<Synced>,
}

/// The highest position a writer waits for, and whether the thread should stop.
#[derive(Default)]
struct Wanted {
    seq: Seq,
    stop: bool,
}

/// What the thread has made durable; `failed` once an fsync failed (the journal is poisoned).
#[derive(Debug, Clone, Copy, Default)]
struct Synced {
    seq: Seq,
    failed: bool,
}

impl GroupCommit {
    /// Starts the sync thread of `journal`.
    pub fn start(journal: Arc<Journal>, queue: &str) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            journal,
            queue: queue.to_owned(),
            wanted: Mutex::default(),
            wake: Condvar::new(),
            synced: watch::Sender::new(Synced::default()),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("lanner-fsync-{queue}"))
            .spawn(move || thread_shared.run())?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Waits until every record up to `seq`, already written, is on stable storage.
    pub async fn synced(&self, seq: Seq) -> Result<(), JournalError> {
        let mut synced = self.shared.synced.subscribe();
        {
            let mut wanted = lock(&self.shared.wanted);
            wanted.seq = wanted.seq.max(seq);
        }
        self.shared.wake.notify_one();
        loop {
            let now = *synced.borrow_and_update();
            if now.failed {
                return Err(JournalError::Poisoned {
                    queue: self.shared.queue.clone(),
                });
            }
            if now.seq >= seq {
                return Ok(());
            }
            if synced.changed().await.is_err() {
                return Err(JournalError::Poisoned {
                    queue: self.shared.queue.clone(),
                });
            }
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        lock(&self.shared.wanted).stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            drop(thread.join());
        }
    }
}

impl Shared {
    fn run(&self) {
        while let Some(target) = self.next_target() {
            let synced = match self.journal.sync_through(target) {
                Ok(()) => Synced {
                    seq: target,
                    failed: false,
                },
                // The journal logged and poisoned itself; every waiter now gets the error.
                Err(_) => Synced {
                    seq: target,
                    failed: true,
                },
            };
            self.synced.send_replace(synced);
        }
    }

    /// Sleeps until a writer waits for more than is synced; `None` when told to stop.
    fn next_target(&self) -> Option<Seq> {
        let mut wanted = lock(&self.wanted);
        loop {
            if wanted.stop {
                return None;
            }
            if wanted.seq > self.synced.borrow().seq {
                return Some(wanted.seq);
            }
            wanted = self
                .wake
                .wait(wanted)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
