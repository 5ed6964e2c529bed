//! State every connection shares: the queues, the counters, the configuration, the shutdown signal.

use bytes::{BufMut, Bytes, BytesMut};
use lanner_queue::{Commits, PutOutcome, QueueCollection, QueueError};
use smol_str::SmolStr;
use tokio_util::sync::CancellationToken;

use crate::access::Users;
use crate::alias::{Alias, Aliases};
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;

use crate::config::{Config, ServerConfig};
use crate::stats::{ServerStats, queue_figures};
use crate::status::ServerStatus;

/// Shared by all connections of one server.
pub struct Shared {
    pub queues: QueueCollection,
    pub stats: ServerStats,
    /// Server settings, fixed at startup (a reload does not change them).
    pub server: ServerConfig,
    /// The effective configuration; `reload` swaps in new queue and alias settings.
    pub config: Arc<ArcSwap<Config>>,
    /// The file `reload` reads, if the server was started with one.
    pub config_path: Option<PathBuf>,
    /// Cancelled to stop the server (signal or `shutdown` command).
    pub shutdown: CancellationToken,
    pub limits: lanner_proto::Limits,
    pub aliases: ArcSwap<Aliases>,
    pub status: ServerStatus,
    /// One permit per connection being served (`max_connections`).
    pub connection_slots: Arc<Semaphore>,
    /// The users memcache clients authenticate as; empty when authentication is off.
    pub users: Arc<Users>,
    /// Request bytes buffered by all connections (`max_buffered_request_bytes`).
    pub request_memory: Arc<crate::request_memory::RequestMemory>,
}

/// The result of adding one item to a queue or an alias.
pub struct ItemPut {
    /// The queue's answer (for an alias, `NotStored` when any destination refused the item), or
    /// the error that stopped the put.
    pub outcome: Result<PutOutcome, QueueError>,
    /// Every queue written, with the journal position to commit: before the reply when the
    /// item was stored, with the batch otherwise.
    pub commits: Commits,
}

impl Shared {
    /// Adds an item to the queue `name` and its fanout children, or, when `name` is an alias,
    /// to every destination of the alias. `exptime` follows memcache's conventions (spec f.2).
    /// `payload` makes the item's bytes, as for [`QueueCollection::put_with`].
    pub fn put_item(&self, name: &str, payload: impl Fn() -> Bytes, exptime: i64) -> ItemPut {
        if let Some(alias) = self.aliases.load().get(name) {
            return self.put_alias(alias, payload(), exptime);
        }
        match self.queues.put_with(name, exptime, payload) {
            Ok(put) => ItemPut {
                outcome: Ok(put.outcome),
                commits: put.commits,
            },
            Err(error) => ItemPut {
                outcome: Err(error),
                commits: Commits::new(),
            },
        }
    }

    /// Adds the item to every destination of the alias (their fanouts included); stored only
    /// if all of them accepted it.
    fn put_alias(&self, alias: &Alias, data: Bytes, exptime: i64) -> ItemPut {
        alias.count_put(data.len());
        let mut put = ItemPut {
            outcome: Ok(PutOutcome::Stored(0)),
            commits: Commits::new(),
        };
        for destination in &alias.destinations {
            match self.queues.put_with(destination, exptime, || data.clone()) {
                Ok(done) => {
                    put.commits.extend(done.commits);
                    if done.outcome == PutOutcome::NotStored {
                        put.outcome = Ok(PutOutcome::NotStored);
                    }
                }
                Err(error) => {
                    put.outcome = Err(error);
                    return put;
                }
            }
        }
        put
    }

    /// The `dump_stats` body (spec e.2): a block per queue, all queues when none is named.
    pub fn dump_stats(&self, names: &[SmolStr]) -> Bytes {
        let names: Vec<String> = if names.is_empty() {
            let queues = self.queues.queues();
            let queue_names = queues.iter().map(|queue| queue.name().to_owned());
            queue_names
                .chain(self.aliases.load().iter().map(|(name, _)| name.clone()))
                .collect()
        } else {
            names.iter().map(SmolStr::to_string).collect()
        };
        let blocks: Vec<String> = names.iter().map(|name| self.dump_block(name)).collect();
        let mut body = BytesMut::new();
        body.put_slice(blocks.join("\r\n").as_bytes());
        body.put_slice(b"\r\nEND\r\n");
        body.freeze()
    }

    /// `queue '<name>' {` + `  key=value` lines + `}` for one queue or alias (an unknown name's
    /// block holds one line of two spaces, as Kestrel's does).
    fn dump_block(&self, name: &str) -> String {
        let figures: Vec<(&str, String)> = if let Some(alias) = self.aliases.load().get(name) {
            alias.figures().into_iter().collect()
        } else if let Some(queue) = self.queues.get(name) {
            queue_figures(&queue.stats(), self.queues.children_names(name))
        } else {
            Vec::new()
        };
        let lines: Vec<String> = figures
            .iter()
            .map(|(key, value)| format!("  {key}={value}"))
            .collect();
        let body = if lines.is_empty() {
            "  ".to_owned()
        } else {
            lines.join("\r\n")
        };
        format!("queue '{name}' {{\r\n{body}\r\n}}")
    }

    /// The `dump_config` body: the effective configuration as TOML, then `END`.
    pub fn dump_config(&self) -> Bytes {
        let mut body = self.config.load().to_toml_string().replace('\n', "\r\n");
        if !body.ends_with("\r\n") {
            body.push_str("\r\n");
        }
        body.push_str("END\r\n");
        Bytes::from(body)
    }
}
