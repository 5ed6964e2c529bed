//! Delivery verification: which (producer, sequence) pairs arrived, and how often.
//!
//! Each consumer thread appends what it received to its own [`Receipts`] (a push, no lock); after
//! the run [`verify`] merges them into one bitset per producer and compares that with what was
//! expected: either exactly known per-producer counts (a run that produced in-process, or a
//! `--producers` layout, or an `--acked-file`), or only a total count, in which case every
//! producer seen is expected to have sent an unbroken sequence from 0.

use crate::payload::{Corrupt, Stamp};

/// What one consumer received.
#[derive(Debug, Default)]
pub struct Receipts {
    seen: Vec<(u32, u64)>,
    corrupt: u64,
}

impl Receipts {
    pub fn record(&mut self, stamp: Stamp) {
        self.seen.push((stamp.producer, stamp.seq));
    }

    pub fn record_corrupt(&mut self, _why: Corrupt) {
        self.corrupt += 1;
    }
}

/// What a run expects to receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// Producer `p` may have sent `capacities[p]` messages (sequence numbers from 0), and the
    /// first `required[p]` of them were acknowledged, so they must all arrive.
    Exactly {
        capacities: Vec<u64>,
        required: Vec<u64>,
    },
    /// This many messages, from producers unknown in advance.
    Count(u64),
}

impl Expected {
    /// Every producer's share of `total`, all required.
    pub fn shares(total: u64, producers: u64) -> Self {
        let shares = shares(total, producers);
        Expected::Exactly {
            capacities: shares.clone(),
            required: shares,
        }
    }

    /// How many messages must arrive.
    pub fn required_total(&self) -> u64 {
        match self {
            Expected::Exactly { required, .. } => required.iter().sum(),
            Expected::Count(count) => *count,
        }
    }
}

/// The verdict of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    /// Distinct messages received.
    pub received: u64,
    /// Required messages (sent and acknowledged) never received.
    pub lost: u64,
    /// Deliveries beyond the first of the same message.
    pub duplicated: u64,
    /// Messages naming a producer or sequence number that was never sent.
    pub unexpected: u64,
    /// Payloads that failed their integrity check.
    pub corrupt: u64,
    /// Messages sent but not acknowledged (a crash cut them off) that were nevertheless kept.
    pub unacked_delivered: u64,
}

impl Delivery {
    /// True when nothing required is missing and nothing arrived twice, damaged or unknown.
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.unexpected == 0 && self.corrupt == 0
    }
}

/// A bitset that grows to the largest index set.
#[derive(Default)]
struct Bits {
    words: Vec<u64>,
}

impl Bits {
    /// Sets bit `index`; false if it was already set.
    fn insert(&mut self, index: u64) -> bool {
        let word = (index / 64) as usize;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let mask = 1u64 << (index % 64);
        let fresh = self.words[word] & mask == 0;
        self.words[word] |= mask;
        fresh
    }

    /// Set bits among the first `limit`.
    fn count_below(&self, limit: u64) -> u64 {
        let full = ((limit / 64) as usize).min(self.words.len());
        let mut count: u64 = self.words[..full]
            .iter()
            .map(|word| u64::from(word.count_ones()))
            .sum();
        let rest = limit % 64;
        if rest > 0
            && let Some(word) = self.words.get(full)
        {
            count += u64::from((word & ((1u64 << rest) - 1)).count_ones());
        }
        count
    }

    fn count(&self) -> u64 {
        self.words
            .iter()
            .map(|word| u64::from(word.count_ones()))
            .sum()
    }

    /// One past the highest bit set.
    fn end(&self) -> u64 {
        self.words
            .iter()
            .rposition(|&word| word != 0)
            .map_or(0, |at| {
                at as u64 * 64 + 64 - u64::from(self.words[at].leading_zeros())
            })
    }
}

/// Merges every consumer's receipts and judges them against `expected`.
pub fn verify<'a>(
    receipts: impl IntoIterator<Item = &'a Receipts>,
    expected: &Expected,
) -> Delivery {
    let mut delivery = Delivery::default();
    let mut producers: Vec<Bits> = Vec::new();
    for receipt in receipts {
        delivery.corrupt += receipt.corrupt;
        for &(producer, seq) in &receipt.seen {
            if let Expected::Exactly { capacities, .. } = expected
                && capacities
                    .get(producer as usize)
                    .is_none_or(|&cap| seq >= cap)
            {
                delivery.unexpected += 1;
                continue;
            }
            let index = producer as usize;
            if index >= producers.len() {
                producers.resize_with(index + 1, Bits::default);
            }
            if !producers[index].insert(seq) {
                delivery.duplicated += 1;
            }
        }
    }
    match expected {
        Expected::Exactly { required, .. } => {
            for (producer, &required) in required.iter().enumerate() {
                let below = producers
                    .get(producer)
                    .map_or(0, |bits| bits.count_below(required));
                delivery.lost += required - below;
            }
            for (producer, bits) in producers.iter().enumerate() {
                let total = bits.count();
                let required = required.get(producer).copied().unwrap_or(0);
                delivery.received += total;
                delivery.unacked_delivered += total - bits.count_below(required);
            }
        }
        Expected::Count(count) => {
            // Each producer seen sent 0..end without holes; holes are lost messages, and so is
            // any shortfall against the total (a producer whose tail is missing entirely).
            let mut holes = 0;
            for bits in &producers {
                let total = bits.count();
                delivery.received += total;
                holes += bits.end() - total;
            }
            delivery.lost = holes.max(count.saturating_sub(delivery.received));
            delivery.unexpected = delivery.received.saturating_sub(*count);
        }
    }
    delivery
}

/// `total` split over `parts` as evenly as possible; part `index` gets this many.
pub fn share(total: u64, parts: u64, index: u64) -> u64 {
    total / parts + u64::from(index < total % parts)
}

/// Every part's share of `total`.
pub fn shares(total: u64, parts: u64) -> Vec<u64> {
    (0..parts).map(|index| share(total, parts, index)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipts(pairs: &[(u32, u64)]) -> Receipts {
        let mut receipts = Receipts::default();
        for &(producer, seq) in pairs {
            receipts.record(Stamp {
                producer,
                seq,
                sent_ns: 0,
            });
        }
        receipts
    }

    #[test]
    fn counts_lost_duplicated_and_unexpected() {
        let first: Vec<_> = (0..100)
            .filter(|&seq| seq != 64)
            .map(|seq| (0, seq))
            .collect();
        let second = receipts(&[(0, 5), (1, 0), (1, 3), (2, 0)]);
        let mut corrupt = Receipts::default();
        corrupt.record_corrupt(Corrupt::BadMagic);
        let expected = Expected::Exactly {
            capacities: vec![100, 3],
            required: vec![100, 3],
        };
        let delivery = verify([&receipts(&first), &second, &corrupt], &expected);
        assert_eq!(
            delivery,
            Delivery {
                received: 100,
                lost: 1 + 2,
                duplicated: 1,
                unexpected: 2,
                corrupt: 1,
                unacked_delivered: 0,
            }
        );
        assert!(!delivery.ok());
    }

    #[test]
    fn unacknowledged_messages_may_be_missing() {
        // Producer 0 sent 10 and saw 6 acknowledged before the server was killed.
        let got = receipts(&(0..8).map(|seq| (0, seq)).collect::<Vec<_>>());
        let expected = |required| Expected::Exactly {
            capacities: vec![10],
            required: vec![required],
        };
        let delivery = verify([&got], &expected(6));
        assert!(delivery.ok());
        assert_eq!(delivery.received, 8);
        assert_eq!(delivery.unacked_delivered, 2);
        assert_eq!(verify([&got], &expected(9)).lost, 1);
    }

    #[test]
    fn a_total_count_infers_the_producers() {
        // One producer sent 0..130 over a layout the consumer did not know.
        let all: Vec<_> = (0..130).map(|seq| (3, seq)).collect();
        assert!(verify([&receipts(&all)], &Expected::Count(130)).ok());
        // A hole in the middle, a missing tail, and an extra message.
        let holed: Vec<_> = (0..130)
            .filter(|&seq| seq != 70)
            .map(|seq| (3, seq))
            .collect();
        assert_eq!(verify([&receipts(&holed)], &Expected::Count(130)).lost, 1);
        assert_eq!(
            verify([&receipts(&all[..100])], &Expected::Count(130)).lost,
            30
        );
        assert_eq!(
            verify([&receipts(&all)], &Expected::Count(129)).unexpected,
            1
        );
    }

    #[test]
    fn bits_count_and_end() {
        let mut bits = Bits::default();
        assert_eq!(bits.end(), 0);
        for index in [0, 63, 64, 200] {
            assert!(bits.insert(index));
        }
        assert!(!bits.insert(64));
        assert_eq!(bits.count(), 4);
        assert_eq!(bits.count_below(64), 2);
        assert_eq!(bits.count_below(65), 3);
        assert_eq!(bits.count_below(1000), 4);
        assert_eq!(bits.end(), 201);
    }

    #[test]
    fn shares_add_up() {
        assert_eq!(shares(10, 3), vec![4, 3, 3]);
        assert_eq!(shares(2, 4), vec![1, 1, 0, 0]);
        assert_eq!(shares(1_000_000, 8).iter().sum::<u64>(), 1_000_000);
    }
}
