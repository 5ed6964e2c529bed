//! The per-queue rules that `reload` may change on a live queue: size limits, item age, expiry
//! sweeps, fanout-only masters and open-read timeouts (spec c.1).

use std::time::Duration;

use crate::item::{Item, NEVER};

/// Reloadable settings of one queue. `None` means no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most items held; an add while `items >= max_items` is refused (or discards the oldest).
    pub max_items: Option<u64>,
    /// Most payload bytes held, checked before an add, so the last accepted add may overshoot.
    pub max_size: Option<u64>,
    /// Items longer than this are refused; an item of exactly this length is accepted.
    pub max_item_size: Option<u64>,
    /// When full, drop the oldest items to make room instead of refusing.
    pub discard_old_when_full: bool,
    /// Items expire at the latest this long after they were added.
    pub max_age: Option<Duration>,
    /// Most items one expiry pass removes from the head.
    pub max_expire_sweep: Option<u64>,
    /// The queue keeps nothing itself; only its fanout children receive items.
    pub fanout_only: bool,
    /// An open read not confirmed within this time goes back to the head of the queue.
    pub open_transaction_timeout: Option<Duration>,
    /// An empty queue this old is deleted by the background sweep.
    pub max_queue_age: Option<Duration>,
    /// The journal is compacted once it grows past this, whatever the live data.
    pub max_journal_size: Option<u64>,
}

impl QueueLimits {
    /// True when an item of `len` bytes is too large for the queue.
    pub fn refuses_item(&self, len: usize) -> bool {
        self.max_item_size.is_some_and(|max| len as u64 > max)
    }

    /// True when a queue holding `items` items of `bytes` payload bytes takes no more.
    pub fn is_full(&self, items: u64, bytes: u64) -> bool {
        self.max_items.is_some_and(|max| items >= max)
            || self.max_size.is_some_and(|max| bytes >= max)
    }

    /// The expiry of an item added at `now_ms` with the client's `expiry_ms`, capped by `max_age`.
    pub fn capped_expiry(&self, expiry_ms: i64, now_ms: i64) -> i64 {
        match self.max_age_ms().map(|age| now_ms.saturating_add(age)) {
            Some(cap) if expiry_ms == NEVER || cap < expiry_ms => cap,
            _ => expiry_ms,
        }
    }

    /// True when `item` has expired at `now_ms`, by its own expiry or by the current `max_age`.
    pub fn has_expired(&self, item: &Item, now_ms: i64) -> bool {
        item.is_expired(now_ms)
            || self
                .max_age_ms()
                .is_some_and(|age| item.add_time_ms.saturating_add(age) < now_ms)
    }

    /// How many expired items one pass may remove.
    pub fn expire_sweep(&self) -> u64 {
        self.max_expire_sweep.unwrap_or(u64::MAX)
    }

    /// The open-read timeout in milliseconds, if any.
    pub fn open_read_timeout_ms(&self) -> Option<i64> {
        self.open_transaction_timeout.map(duration_ms)
    }

    fn max_age_ms(&self) -> Option<i64> {
        self.max_age.map(duration_ms)
    }
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn full_is_checked_before_the_add() {
        let limits = QueueLimits {
            max_items: Some(3),
            max_size: Some(510),
            ..QueueLimits::default()
        };
        assert!(!limits.is_full(2, 0));
        assert!(limits.is_full(3, 0));
        assert!(
            !limits.is_full(0, 509),
            "the add that reaches 512 bytes is still accepted"
        );
        assert!(limits.is_full(0, 512));
    }

    #[test]
    fn item_of_exactly_the_max_size_is_accepted() {
        let limits = QueueLimits {
            max_item_size: Some(10),
            ..QueueLimits::default()
        };
        assert!(!limits.refuses_item(10));
        assert!(limits.refuses_item(11));
    }

    #[test]
    fn max_age_caps_the_client_expiry() {
        let limits = QueueLimits {
            max_age: Some(Duration::from_secs(30)),
            ..QueueLimits::default()
        };
        assert_eq!(limits.capped_expiry(NEVER, 1_000), 31_000);
        assert_eq!(limits.capped_expiry(5_000, 1_000), 5_000);
        assert_eq!(limits.capped_expiry(90_000, 1_000), 31_000);
        assert_eq!(QueueLimits::default().capped_expiry(NEVER, 1_000), NEVER);
    }

    #[test]
    fn a_shorter_max_age_applies_to_items_already_queued() {
        let item = Item {
            data: Bytes::new(),
            add_time_ms: 1_000,
            expiry_ms: NEVER,
        };
        let limits = QueueLimits {
            max_age: Some(Duration::from_secs(1)),
            ..QueueLimits::default()
        };
        assert!(!limits.has_expired(&item, 2_000));
        assert!(limits.has_expired(&item, 2_001));
    }
}
