//! Helpers shared by lanner's fuzz targets (see docs/fuzzing.md).
//!
//! - [`proto`]: a canonical request encoder and the invariants every `parse` outcome must meet;
//! - [`journal_model`]: the journal_replay input format, an independent encoder and decoder of
//!   the on-disk format (written from docs/journal-format.md, not from lanner-journal's code)
//!   and a reference model of what `Journal::open` must do with a directory of segments;
//! - [`response`]: a `Response` mirror that `arbitrary` can build.
//!
//! The unit tests at the bottom of each module check the helpers themselves; `seeds` rebuilds
//! the committed seed corpus (`LANNER_WRITE_SEEDS=1 cargo test --lib`, see docs/fuzzing.md).

#![forbid(unsafe_code)]

pub mod journal_model;
pub mod proto;
pub mod response;

#[cfg(test)]
mod seeds;

/// A small deterministic generator (xorshift64*), so every target stays a pure function of its
/// input: the same bytes always take the same path, which libFuzzer needs to minimise crashes.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `bytes` (FNV-1a), never stuck at zero.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for &byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Rng(hash | 1)
    }

    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }
}
