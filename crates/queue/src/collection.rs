//! The set of named queues in one data directory: recovery at startup, creation on first
//! reference, fanout (`master+child` queues get a copy of every item added to `master`),
//! `expire_to_queue` wiring, and deletion.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use foldhash::fast::RandomState;
use lanner_journal::{DirLock, FsStorage, Replay, Seq, Storage, list_queues, lock_dir};
use smallvec::SmallVec;
use tracing::info;

use crate::clock::Clock;
use crate::error::QueueError;
use crate::queue::{PutOutcome, Queue, QueueOptions};

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

/// How far startup recovery has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryProgress {
    /// Queues replayed completely, of `queues_total`.
    pub queues_done: usize,
    pub queues_total: usize,
    /// Items in the queues replayed completely.
    pub items: u64,
    /// Journal records replayed so far.
    pub records: u64,
    /// Journal bytes replayed so far, of about `bytes_total` (the segment files' sizes at the
    /// start; superseded segments are counted but skipped, so the end may come early).
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// Bytes of the journal segment files of `queues`.
fn journal_bytes(dir: &Path, queues: &[String]) -> Result<u64, QueueError> {
    let mut total = 0;
    for queue in queues {
        total += lanner_journal::inspect::segment_files(dir, queue)?
            .iter()
            .map(|file| file.len)
            .sum::<u64>();
    }
    Ok(total)
}

/// Queues with the journal position each must commit. Inline for one queue, so a put to a
/// queue without fanout children allocates nothing for it.
pub type Commits = SmallVec<[(Arc<Queue>, Seq); 1]>;

/// The result of a put through the collection: the master queue's answer, and every queue
/// (master and fanout children) with the journal position to commit before replying.
pub struct FanoutPut {
    pub outcome: PutOutcome,
    pub commits: Commits,
}

/// A map keyed by queue name. Names come from the network, and foldhash is only minimally
/// HashDoS-resistant (a random seed per map, which an attacker timing lookups could learn).
/// That is acceptable here: a name enters a map only when its queue is created, which costs a
/// journal file, so the entries anyone could make collide are bounded by the disk and the
/// file limit long before their collisions would slow lookups; SipHash cost 4 % of the
/// instructions of a set+get for three lookups.
type NameMap<V> = HashMap<String, V, RandomState>;

/// The queues by name, and each fanout master's children.
#[derive(Default)]
struct Registry {
    queues: NameMap<Arc<Queue>>,
    /// Master name to children, in creation order. An entry outlives its last child (Kestrel
    /// keeps reporting an empty `children` stat).
    fanouts: NameMap<Vec<Arc<Queue>>>,
}

impl Registry {
    fn insert(&mut self, queue: Arc<Queue>) {
        if let Some(master) = fanout_master(queue.name()) {
            self.fanouts
                .entry(master.to_owned())
                .or_default()
                .push(Arc::clone(&queue));
        }
        self.queues.insert(queue.name().to_owned(), queue);
    }

    fn remove(&mut self, name: &str) -> Option<Arc<Queue>> {
        if let Some(master) = fanout_master(name) {
            let children = self.fanouts.entry(master.to_owned()).or_default();
            children.retain(|child| child.name() != name);
        }
        self.queues.remove(name)
    }
}

/// `options` with the journal on `storage`.
fn options_on(storage: &Arc<dyn Storage>, mut options: QueueOptions) -> QueueOptions {
    options.journal.storage = Arc::clone(storage);
    options
}

/// All queues of a data directory, which it holds locked for its lifetime.
pub struct QueueCollection {
    dir: PathBuf,
    /// Where the journals live; it overrides the storage of the resolved options.
    storage: Arc<dyn Storage>,
    _lock: DirLock,
    clock: Arc<dyn Clock>,
    resolve_options: OptionsResolver,
    registry: RwLock<Registry>,
    creates: AtomicU64,
    deletes: AtomicU64,
    expires: AtomicU64,
}

impl QueueCollection {
    /// Locks `dir` (creating it if needed) and replays the journal of every queue found there.
    pub fn open(
        dir: &Path,
        resolve_options: OptionsResolver,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, Vec<RecoveredQueue>), QueueError> {
        Self::open_with_progress(dir, resolve_options, clock, &mut |_| {})
    }

    /// [`QueueCollection::open`] with the journals on `storage` (a simulated disk in tests).
    /// The directory lock and spill files stay on the real file system.
    pub fn open_on(
        storage: Arc<dyn Storage>,
        dir: &Path,
        resolve_options: OptionsResolver,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, Vec<RecoveredQueue>), QueueError> {
        Self::recover(storage, dir, resolve_options, clock, &mut |_| {})
    }

    /// [`QueueCollection::open`], telling `progress` how far recovery is after every replayed
    /// record and after every queue (the caller decides how often to report it).
    pub fn open_with_progress(
        dir: &Path,
        resolve_options: OptionsResolver,
        clock: Arc<dyn Clock>,
        progress: &mut dyn FnMut(&RecoveryProgress),
    ) -> Result<(Self, Vec<RecoveredQueue>), QueueError> {
        Self::recover(Arc::new(FsStorage), dir, resolve_options, clock, progress)
    }

    fn recover(
        storage: Arc<dyn Storage>,
        dir: &Path,
        resolve_options: OptionsResolver,
        clock: Arc<dyn Clock>,
        progress: &mut dyn FnMut(&RecoveryProgress),
    ) -> Result<(Self, Vec<RecoveredQueue>), QueueError> {
        let lock = lock_dir(dir)?;
        let mut registry = Registry::default();
        let mut recovered = Vec::new();
        let names = list_queues(&*storage, dir)?;
        let mut done = RecoveryProgress {
            queues_total: names.len(),
            // Only a figure for the progress log: the journals' own replay reports real errors,
            // and a simulated disk has no files to measure.
            bytes_total: journal_bytes(dir, &names).unwrap_or(0),
            ..RecoveryProgress::default()
        };
        for name in names {
            let options = options_on(&storage, resolve_options(&name));
            let (queue, replay) =
                Queue::open(dir, &name, options, Arc::clone(&clock), &mut |bytes| {
                    done.records += 1;
                    done.bytes_done += bytes;
                    progress(&done);
                })?;
            let stats = queue.stats();
            done.queues_done += 1;
            done.items += stats.items;
            progress(&done);
            recovered.push(RecoveredQueue {
                name: name.clone(),
                items: stats.items,
                bytes: stats.bytes,
                replay,
            });
            registry.insert(Arc::new(queue));
        }
        let collection = Self {
            dir: dir.to_owned(),
            storage,
            _lock: lock,
            clock,
            resolve_options,
            registry: RwLock::new(registry),
            creates: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            expires: AtomicU64::new(0),
        };
        for queue in collection.queues() {
            collection.wire_expire_target(&queue)?;
        }
        Ok((collection, recovered))
    }

    /// The queue `name`, if it exists. Never creates one.
    pub fn get(&self, name: &str) -> Option<Arc<Queue>> {
        self.read().queues.get(name).cloned()
    }

    /// The queue `name`, created (with an empty journal) on first reference, together with its
    /// `expire_to_queue`.
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
        let queue = {
            let mut registry = self.write();
            if let Some(queue) = registry.queues.get(name) {
                return Ok(Arc::clone(queue));
            }
            let options = options_on(&self.storage, (self.resolve_options)(name));
            let (queue, _) = Queue::open(
                &self.dir,
                name,
                options,
                Arc::clone(&self.clock),
                &mut |_| {},
            )?;
            let queue = Arc::new(queue);
            registry.insert(Arc::clone(&queue));
            queue
        };
        self.creates.fetch_add(1, Ordering::Relaxed);
        info!(queue = name, "created queue");
        self.wire_expire_target(&queue)?;
        Ok(queue)
    }

    /// Adds an item to `name`: first a copy to each of its fanout children (each applies its
    /// own limits; their refusals are ignored, as Kestrel's, but a child's journal error fails
    /// the put before the queue itself is written), then to the queue itself, whose answer is
    /// the result. Retries once if the queue is deleted meanwhile.
    pub fn put(&self, name: &str, data: Bytes, exptime: i64) -> Result<FanoutPut, QueueError> {
        self.put_with(name, exptime, || data.clone())
    }

    /// [`QueueCollection::put`] of the bytes `payload` makes. It is called once, and once more
    /// only for the retry after the queue was deleted meanwhile (the first bytes went with the
    /// deleted queue), so a put needs no second handle on them: cloning a `Bytes` made from a
    /// `Vec` allocates a shared header.
    pub fn put_with(
        &self,
        name: &str,
        exptime: i64,
        payload: impl Fn() -> Bytes,
    ) -> Result<FanoutPut, QueueError> {
        // One registry lock for both lookups: it is the only lock every put shares.
        let (children, known) = {
            let registry = self.read();
            // The fanout children (queues named `name+...`), in creation order.
            let children = registry.fanouts.get(name).cloned().unwrap_or_default();
            (children, registry.queues.get(name).cloned())
        };
        let data = payload();
        let mut commits = Commits::new();
        for child in children {
            match child.put(data.clone(), exptime) {
                Ok(PutOutcome::Stored(seq)) => commits.push((child, seq)),
                // A full child refuses its copy, as in Kestrel; one deleted meanwhile needs none.
                Ok(PutOutcome::NotStored) | Err(QueueError::Deleted) => {}
                // A copy the child cannot journal must not be acknowledged as stored.
                Err(error) => return Err(error),
            }
        }
        let first = match known {
            Some(queue) => put_into(queue, data, exptime),
            None => self.put_in(name, data, exptime),
        };
        let (queue, outcome) = match first {
            // Only the queue itself is retried: its children already hold their copies.
            Err(QueueError::Deleted) => self.put_in(name, payload(), exptime)?,
            result => result?,
        };
        if let PutOutcome::Stored(seq) = outcome {
            commits.push((queue, seq));
        }
        Ok(FanoutPut { outcome, commits })
    }

    fn put_in(
        &self,
        name: &str,
        data: Bytes,
        exptime: i64,
    ) -> Result<(Arc<Queue>, PutOutcome), QueueError> {
        put_into(self.get_or_create(name)?, data, exptime)
    }

    /// Names of `master`'s fanout children, or `None` when it never had any (Kestrel reports
    /// the `children` stat only for masters with a fanout entry).
    pub fn children_names(&self, master: &str) -> Option<Vec<String>> {
        let registry = self.read();
        let children = registry.fanouts.get(master)?;
        Some(
            children
                .iter()
                .map(|child| child.name().to_owned())
                .collect(),
        )
    }

    /// Deletes the queue and its journal. Returns whether it existed.
    pub fn delete(&self, name: &str) -> Result<bool, QueueError> {
        // The registry stays locked until the files are gone: a queue of the same name created
        // meanwhile would otherwise replay the old journal, or append to files about to vanish.
        let mut registry = self.write();
        let Some(queue) = registry.remove(name) else {
            return Ok(false);
        };
        self.deletes.fetch_add(1, Ordering::Relaxed);
        queue.delete()?;
        drop(registry);
        info!(queue = name, "deleted queue");
        Ok(true)
    }

    /// Background sweep: expires head items and timed-out open reads of every queue, then
    /// deletes the empty queues older than their `max_queue_age`. Returns each queue with the
    /// journal position to commit.
    pub fn sweep(&self) -> Vec<(Arc<Queue>, Seq)> {
        let swept = self.queues().into_iter().map(|queue| {
            let seq = queue.sweep();
            (queue, seq)
        });
        let swept: Vec<_> = swept.collect();
        for (queue, _) in &swept {
            if queue.has_outlived_max_age() && matches!(self.delete(queue.name()), Ok(true)) {
                self.expires.fetch_add(1, Ordering::Relaxed);
                info!(queue = queue.name(), "deleted queue past its max_queue_age");
            }
        }
        swept
    }

    /// Every queue, sorted by name.
    pub fn queues(&self) -> Vec<Arc<Queue>> {
        let mut queues: Vec<Arc<Queue>> = self.read().queues.values().cloned().collect();
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

    /// Queues deleted since startup, by command or by expiry.
    pub fn deletes(&self) -> u64 {
        self.deletes.load(Ordering::Relaxed)
    }

    /// Queues deleted by the sweep for outliving their `max_queue_age`.
    pub fn expires(&self) -> u64 {
        self.expires.load(Ordering::Relaxed)
    }

    /// The clock the queues use.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Creates the `expire_to_queue` of `queue`, if it has one, and points `queue` at it.
    fn wire_expire_target(&self, queue: &Queue) -> Result<(), QueueError> {
        if let Some(target) = &queue.options().expire_to_queue {
            queue.set_expire_target(self.get_or_create(target)?);
        }
        Ok(())
    }

    fn read(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Registry> {
        self.registry
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn put_into(
    queue: Arc<Queue>,
    data: Bytes,
    exptime: i64,
) -> Result<(Arc<Queue>, PutOutcome), QueueError> {
    let outcome = queue.put(data, exptime)?;
    Ok((queue, outcome))
}

/// The master of a fanout child: the text before the first `+` (`a+b+c` -> `a`).
fn fanout_master(name: &str) -> Option<&str> {
    name.split_once('+').map(|(master, _)| master)
}

/// A name that, used as the stem of a file name, stays inside the data directory.
fn is_safe_file_stem(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(['/', '\\', '.', '\0'])
        && !name.chars().any(char::is_control)
}
