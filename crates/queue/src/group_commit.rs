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

/// The highest position a writer waits for, whether the thread should stop, and whether it
/// sleeps: a writer wakes it only then (a busy thread looks for more work when its fsync is
/// done), which saves a `futex` call per write.
#[derive(Default)]
struct Wanted {
    seq: Seq,
    stop: bool,
    sleeping: bool,
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
        if self.want(seq) {
            self.shared.wake.notify_one();
        }
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

    /// Records that a writer waits for `seq`; true if the sync thread sleeps and must be woken.
    fn want(&self, seq: Seq) -> bool {
        let mut wanted = lock(&self.shared.wanted);
        wanted.seq = wanted.seq.max(seq);
        wanted.sleeping
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
            wanted.sleeping = true;
            wanted = self
                .wake
                .wait(wanted)
                .unwrap_or_else(PoisonError::into_inner);
            wanted.sleeping = false;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lanner_journal::JournalOptions;

    use super::*;

    /// Writers on several threads, each waiting for its own record before writing the next:
    /// a writer that found the sync thread busy and did not wake it must still be synced by
    /// the thread's next round, so no wait may hang.
    #[test]
    fn every_waiting_writer_is_synced_whether_or_not_it_woke_the_thread() {
        const WRITERS: usize = 8;
        const ROUNDS: usize = 150;
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path(), "q", JournalOptions::default()).unwrap();
        let journal = Arc::new(journal);
        let group_commit = Arc::new(GroupCommit::start(Arc::clone(&journal), "q").unwrap());
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let journal = Arc::clone(&journal);
                let group_commit = Arc::clone(&group_commit);
                std::thread::spawn(move || write_and_wait(&journal, &group_commit, ROUNDS))
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let fsyncs = journal.stats().fsyncs;
        assert!(
            (1..=(WRITERS * ROUNDS) as u64).contains(&fsyncs),
            "{fsyncs} fsyncs"
        );
    }

    fn write_and_wait(journal: &Journal, group_commit: &GroupCommit, rounds: usize) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        for _ in 0..rounds {
            let seq = journal.append_add(0, 0, b"payload");
            journal.write_through(seq).unwrap();
            let synced = runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(20), group_commit.synced(seq)).await
            });
            assert!(matches!(synced, Ok(Ok(()))), "wait for {seq:?}: {synced:?}");
        }
    }
}
