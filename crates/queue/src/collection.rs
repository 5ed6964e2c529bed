//! The set of named queues in one data directory: recovery at startup, creation on first
//! reference, deletion.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use lanner_journal::{DirLock, Replay, Seq, list_queues, lock_dir};
use tracing::info;

use crate::clock::Clock;
use crate::error::QueueError;
use crate::queue::{Queue, QueueOptions};

/// Resolves the settings of a queue from its name (the server's config inheritance).
pub type OptionsResolver = Box<dyn Fn(&str) -> QueueOptions + Send + Sync>;

/// What recovery found for one queue.
#[derive(Debug)]
pub struct RecoveredQueue {
    pub name: String,
    pub items: u64,
    pub bytes: u64,
    pub replay: Replay,
}

/// All queues of a data directory, which it holds locked for its lifetime.
pub struct QueueCollection {
    dir: PathBuf,
    _lock: DirLock,
    clock: Arc<dyn Clock>,
    resolve_options: OptionsResolver,
    queues: RwLock<HashMap<String, Arc<Queue>>>,
    creates: AtomicU64,
    deletes: AtomicU64,
}

impl QueueCollection {
    /// Locks `dir` (creating it if needed) and replays the journal of every queue found there.
    pub fn open(
        dir: &Path,
        resolve_options: OptionsResolver,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, Vec<RecoveredQueue>), QueueError> {
        let lock = lock_dir(dir)?;
        let mut queues = HashMap::new();
        let mut recovered = Vec::new();
        for name in list_queues(dir)? {
            let (queue, replay) =
                Queue::open(dir, &name, resolve_options(&name), Arc::clone(&clock))?;
            let stats = queue.stats();
            recovered.push(RecoveredQueue {
                name: name.clone(),
                items: stats.items,
                bytes: stats.bytes,
                replay,
            });
            queues.insert(name, Arc::new(queue));
        }
        let collection = Self {
            dir: dir.to_owned(),
            _lock: lock,
            clock,
            resolve_options,
            queues: RwLock::new(queues),
            creates: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
        };
        Ok((collection, recovered))
    }

    /// The queue `name`, if it exists. Never creates one.
    pub fn get(&self, name: &str) -> Option<Arc<Queue>> {
        self.read().get(name).cloned()
    }

    /// The queue `name`, created (with an empty journal) on first reference.
    ///
    /// The caller validates names against the protocol's rules; this only refuses names that
    /// could reach outside the data directory.
    pub fn get_or_create(&self, name: &str) -> Result<Arc<Queue>, QueueError> {
        if let Some(queue) = self.get(name) {
            return Ok(queue);
        }
        if !is_safe_file_stem(name) {
            return Err(QueueError::BadName);
        }
        let mut queues = self.write();
        if let Some(queue) = queues.get(name) {
            return Ok(Arc::clone(queue));
        }
        let options = (self.resolve_options)(name);
        let (queue, _) = Queue::open(&self.dir, name, options, Arc::clone(&self.clock))?;
        let queue = Arc::new(queue);
        queues.insert(name.to_owned(), Arc::clone(&queue));
        self.creates.fetch_add(1, Ordering::Relaxed);
        info!(queue = name, "created queue");
        Ok(queue)
    }

    /// Deletes the queue and its journal. Returns whether it existed.
    pub fn delete(&self, name: &str) -> Result<bool, QueueError> {
        let Some(queue) = self.write().remove(name) else {
            return Ok(false);
        };
        self.deletes.fetch_add(1, Ordering::Relaxed);
        queue.delete()?;
        info!(queue = name, "deleted queue");
        Ok(true)
    }

    /// Every queue, sorted by name.
    pub fn queues(&self) -> Vec<Arc<Queue>> {
        let mut queues: Vec<Arc<Queue>> = self.read().values().cloned().collect();
        queues.sort_by(|a, b| a.name().cmp(b.name()));
        queues
    }

    /// Flushes every queue; returns each queue with the journal position to commit.
    pub fn flush_all(&self) -> Vec<(Arc<Queue>, Seq)> {
        self.queues()
            .into_iter()
            .map(|queue| {
                let seq = queue.flush();
                (queue, seq)
            })
            .collect()
    }

    /// Writes and fsyncs every queue's journal; returns the first error after trying them all.
    pub fn sync_all(&self) -> Result<(), QueueError> {
        self.queues()
            .iter()
            .map(|queue| queue.sync())
            .fold(Ok(()), Result::and)
    }

    /// Queues created since startup.
    pub fn creates(&self) -> u64 {
        self.creates.load(Ordering::Relaxed)
    }

    /// Queues deleted since startup.
    pub fn deletes(&self) -> u64 {
        self.deletes.load(Ordering::Relaxed)
    }

    /// The clock the queues use.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Queue>>> {
        self.queues
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Queue>>> {
        self.queues
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A name that, used as the stem of a file name, stays inside the data directory.
fn is_safe_file_stem(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(['/', '\\', '.', '\0'])
        && !name.chars().any(char::is_control)
}
