//! State every connection shares: the queues, the counters, the configuration, the shutdown signal.

use bytes::{BufMut, Bytes, BytesMut};
use lanner_queue::{QueueCollection, QueueStats};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::stats::{ServerStats, queue_figures};

/// Shared by all connections of one server.
pub struct Shared {
    pub queues: QueueCollection,
    pub stats: ServerStats,
    pub config: Config,
    /// Cancelled to stop the server (signal or `shutdown` command).
    pub shutdown: CancellationToken,
    pub limits: lanner_proto::Limits,
}

impl Shared {
    /// The `dump_stats` body (spec e.2): a block per queue, all queues when none is named.
    pub fn dump_stats(&self, names: &[String]) -> Bytes {
        let blocks: Vec<String> = if names.is_empty() {
            self.queues
                .queues()
                .iter()
                .map(|queue| dump_block(queue.name(), Some(queue.stats())))
                .collect()
        } else {
            names
                .iter()
                .map(|name| dump_block(name, self.queues.get(name).map(|queue| queue.stats())))
                .collect()
        };
        let mut body = BytesMut::new();
        body.put_slice(blocks.join("\r\n").as_bytes());
        body.put_slice(b"\r\nEND\r\n");
        body.freeze()
    }

    /// The `dump_config` body: the effective configuration as TOML, then `END`.
    pub fn dump_config(&self) -> Bytes {
        let mut body = self.config.to_toml_string().replace('\n', "\r\n");
        if !body.ends_with("\r\n") {
            body.push_str("\r\n");
        }
        body.push_str("END\r\n");
        Bytes::from(body)
    }
}

/// `queue '<name>' {` + `  key=value` lines + `}` for one queue (an unknown queue's block
/// holds one line of two spaces, as Kestrel's does).
fn dump_block(name: &str, stats: Option<QueueStats>) -> String {
    let body = match stats {
        Some(stats) => {
            let lines: Vec<String> = queue_figures(&stats)
                .iter()
                .map(|(key, value)| format!("  {key}={value}"))
                .collect();
            lines.join("\r\n")
        }
        None => "  ".to_owned(),
    };
    format!("queue '{name}' {{\r\n{body}\r\n}}")
}
