//! The answer to `stats`.

use crate::error::Error;

/// One server's `STAT` lines, in the order the server sent them.
///
/// ```
/// # fn show(stats: &lanner_client::Stats) {
/// let items = stats.queue("work", "items").unwrap_or(0);
/// let version = stats.get("version").unwrap_or("?");
/// println!("{items} items waiting (server {version})");
/// # }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    entries: Vec<(String, String)>,
}

impl Stats {
    pub(crate) fn new(entries: Vec<(String, String)>) -> Stats {
        Stats { entries }
    }

    /// The value of a global stat, such as `curr_items` or `version`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// A numeric stat.
    pub fn get_u64(&self, name: &str) -> Option<u64> {
        self.get(name)?.parse().ok()
    }

    /// A numeric per-queue stat (`queue_<queue>_<key>`), such as `items`, `waiters` or
    /// `open_transactions`. `None` if the server does not know the queue.
    pub fn queue(&self, queue: &str, key: &str) -> Option<u64> {
        self.get_u64(&format!("queue_{queue}_{key}"))
    }

    /// Every `(name, value)` pair, in the server's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }
}

/// The `stats` of one server, or why they could not be had.
#[derive(Debug)]
pub struct ServerStats {
    /// The server's address, as configured.
    pub server: String,
    /// Its stats.
    pub stats: Result<Stats, Error>,
}

/// One server's reply to an admin command, or why it could not be had.
#[derive(Debug)]
pub struct ServerReply {
    /// The server's address, as configured.
    pub server: String,
    /// The reply's lines (without the final `END`).
    pub lines: Result<Vec<String>, Error>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let stats = Stats::new(vec![
            ("uptime".into(), "7".into()),
            ("version".into(), "0.1.0".into()),
            ("queue_work_items".into(), "3".into()),
        ]);
        assert_eq!(stats.get("version"), Some("0.1.0"));
        assert_eq!(stats.get_u64("uptime"), Some(7));
        assert_eq!(stats.get_u64("version"), None);
        assert_eq!(stats.queue("work", "items"), Some(3));
        assert_eq!(stats.queue("other", "items"), None);
        assert_eq!(stats.iter().count(), 3);
    }
}
