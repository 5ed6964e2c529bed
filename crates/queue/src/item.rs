//! A queued item and memcache's expiry-time conventions.

use bytes::Bytes;
use lanner_journal::Record;

/// Expiry value meaning "never expires".
pub const NEVER: i64 = 0;

/// Memcache `exptime` values at or above this are absolute epoch seconds, below it relative
/// seconds (spec f.2).
const ABSOLUTE_EXPTIME_THRESHOLD: i64 = 1_000_000;

/// One message: its payload, when it was added, and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub data: Bytes,
    /// Epoch milliseconds when the item was added.
    pub add_time_ms: i64,
    /// Absolute epoch milliseconds after which the item is dropped; [`NEVER`] for none.
    pub expiry_ms: i64,
}

impl Item {
    /// True when the item has an expiry and it lies strictly before `now_ms`.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expiry_ms != NEVER && self.expiry_ms < now_ms
    }

    /// The journal record that adds this item.
    pub fn add_record(&self) -> Record {
        Record::Add {
            add_time_ms: self.add_time_ms,
            expiry_ms: self.expiry_ms,
            data: self.data.clone(),
        }
    }

    /// Bytes the item's add record takes in the journal.
    pub fn journal_len(&self) -> u64 {
        Record::add_encoded_len(self.data.len())
    }
}

/// Converts a memcache `exptime` into an absolute expiry in epoch ms: 0 is never, 1..999_999
/// are seconds from now, larger values are absolute epoch seconds, negative values are already
/// in the past.
pub fn expiry_from_exptime(exptime: i64, now_ms: i64) -> i64 {
    match exptime {
        0 => NEVER,
        e if e < 0 => 1,
        e if e < ABSOLUTE_EXPTIME_THRESHOLD => now_ms.saturating_add(e * 1000),
        e => e.saturating_mul(1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exptime_conventions() {
        let now = 1_700_000_000_000;
        assert_eq!(expiry_from_exptime(0, now), NEVER);
        assert_eq!(expiry_from_exptime(5, now), now + 5_000);
        assert_eq!(expiry_from_exptime(999_999, now), now + 999_999_000);
        assert_eq!(expiry_from_exptime(1_800_000_000, now), 1_800_000_000_000);
        assert!(expiry_from_exptime(-1, now) < now);
    }

    #[test]
    fn expiry_is_strict() {
        let item = Item {
            data: Bytes::new(),
            add_time_ms: 0,
            expiry_ms: 100,
        };
        assert!(!item.is_expired(100));
        assert!(item.is_expired(101));
        let forever = Item {
            expiry_ms: NEVER,
            ..item
        };
        assert!(!forever.is_expired(i64::MAX));
    }
}
