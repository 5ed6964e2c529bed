//! Server-wide counters and the `stats` reply (Kestrel's names and order, spec e.1).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use lanner_queue::{QueueCollection, QueueStats};

use crate::alias::Aliases;
use crate::request_metrics::RequestMetrics;

/// Counters shared by every connection. Relaxed atomics: they are figures, not synchronisation.
#[derive(Debug)]
pub struct ServerStats {
    started: Instant,
    pub curr_connections: AtomicU64,
    pub total_connections: AtomicU64,
    pub cmd_get: AtomicU64,
    pub cmd_set: AtomicU64,
    pub cmd_peek: AtomicU64,
    pub get_hits: AtomicU64,
    pub get_misses: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
    /// Latency per command and errors per kind, for `/metrics`.
    pub requests: RequestMetrics,
    /// Connections that ended, and the reads they returned, once shutdown had begun.
    pub closed_at_shutdown: AtomicU64,
    pub returned_at_shutdown: AtomicU64,
}

impl Default for ServerStats {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            curr_connections: AtomicU64::new(0),
            total_connections: AtomicU64::new(0),
            cmd_get: AtomicU64::new(0),
            cmd_set: AtomicU64::new(0),
            cmd_peek: AtomicU64::new(0),
            get_hits: AtomicU64::new(0),
            get_misses: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            requests: RequestMetrics::default(),
            closed_at_shutdown: AtomicU64::new(0),
            returned_at_shutdown: AtomicU64::new(0),
        }
    }
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Adds `amount` to a counter.
pub fn add(counter: &AtomicU64, amount: u64) {
    counter.fetch_add(amount, Ordering::Relaxed);
}

/// A counter's value.
pub fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl ServerStats {
    /// Time since the server started.
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// A connection ended after returning `returned` open reads; tallied for the shutdown log
    /// when the server is shutting down.
    pub fn connection_ended(&self, shutting_down: bool, returned: usize) {
        if shutting_down {
            bump(&self.closed_at_shutdown);
            add(&self.returned_at_shutdown, returned as u64);
        }
    }

    /// The lines of a `stats` reply: the global figures, then each queue's and each alias's.
    pub fn report(&self, queues: &QueueCollection, aliases: &Aliases) -> Vec<(String, String)> {
        let per_queue: Vec<(String, QueueStats)> = queues
            .queues()
            .iter()
            .map(|queue| (queue.name().to_owned(), queue.stats()))
            .collect();
        let mut lines = self.global_lines(queues, &per_queue);
        for (name, stats) in &per_queue {
            let figures = queue_figures(stats, queues.children_names(name));
            lines.extend(
                figures
                    .into_iter()
                    .map(|(key, value)| (format!("queue_{name}_{key}"), value)),
            );
        }
        for (name, alias) in aliases.iter() {
            let figures = alias.figures().into_iter();
            lines.extend(figures.map(|(key, value)| (format!("queue_{name}_{key}"), value)));
        }
        lines
    }

    fn global_lines(
        &self,
        queues: &QueueCollection,
        per_queue: &[(String, QueueStats)],
    ) -> Vec<(String, String)> {
        let sum = |field: fn(&QueueStats) -> u64| {
            per_queue.iter().map(|(_, stats)| field(stats)).sum::<u64>()
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let figures: [(&str, String); 19] = [
            ("uptime", self.started.elapsed().as_secs().to_string()),
            ("time", now.to_string()),
            ("version", env!("CARGO_PKG_VERSION").to_owned()),
            ("curr_items", sum(|stats| stats.items).to_string()),
            (
                "total_items",
                sum(|stats| stats.counters.total_items).to_string(),
            ),
            ("bytes", sum(|stats| stats.bytes).to_string()),
            // Kestrel's ratio of configured queue memory to the JVM heap; lanner has no heap.
            ("reserved_memory_ratio", "0.000".to_owned()),
            ("curr_connections", read(&self.curr_connections).to_string()),
            (
                "total_connections",
                read(&self.total_connections).to_string(),
            ),
            ("cmd_get", read(&self.cmd_get).to_string()),
            ("cmd_set", read(&self.cmd_set).to_string()),
            ("cmd_peek", read(&self.cmd_peek).to_string()),
            ("get_hits", read(&self.get_hits).to_string()),
            ("get_misses", read(&self.get_misses).to_string()),
            ("bytes_read", read(&self.bytes_read).to_string()),
            ("bytes_written", read(&self.bytes_written).to_string()),
            ("queue_creates", queues.creates().to_string()),
            ("queue_deletes", queues.deletes().to_string()),
            ("queue_expires", queues.expires().to_string()),
        ];
        figures
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect()
    }
}

/// One queue's figures, named and ordered as Kestrel's per-queue stats; `children` (the
/// comma-separated fanout children) only for a queue that has a fanout entry; then lanner's
/// `journal_poisoned`.
pub fn queue_figures(
    stats: &QueueStats,
    children: Option<Vec<String>>,
) -> Vec<(&'static str, String)> {
    let counts = [
        ("items", stats.items),
        ("bytes", stats.bytes),
        ("total_items", stats.counters.total_items),
        ("logsize", stats.journal.current_segment_bytes),
        ("expired_items", stats.counters.expired_items),
        ("mem_items", stats.mem_items),
        ("mem_bytes", stats.mem_bytes),
        ("age", stats.age_ms),
        ("discarded", stats.counters.discarded),
        ("waiters", stats.waiters),
        ("open_transactions", stats.open_transactions),
        ("transactions", stats.counters.transactions),
        (
            "canceled_transactions",
            stats.counters.canceled_transactions,
        ),
        ("total_flushes", stats.counters.total_flushes),
        ("journal_rewrites", stats.journal.rewrites),
        ("journal_rotations", stats.journal.rotations),
    ];
    let mut figures: Vec<(&str, String)> = counts
        .into_iter()
        .map(|(key, value)| (key, value.to_string()))
        .collect();
    if let Some(children) = children {
        figures.push(("children", children.join(",")));
    }
    // lanner's own figure, after Kestrel's: 1 once a failed fsync made the journal refuse writes.
    figures.push((
        "journal_poisoned",
        u8::from(stats.journal.poisoned).to_string(),
    ));
    figures
}
