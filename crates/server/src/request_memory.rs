//! The server-wide cap on request bytes held in read buffers (`max_buffered_request_bytes`):
//! without it, every connection may buffer a partly received `set` of up to
//! `max_request_size`, and enough of them exhaust memory.
//!
//! Only a connection holding more than [`FREE_PER_CONNECTION`] unconsumed bytes takes part, so
//! the usual small requests never touch the shared counter; a large one updates it once per
//! read while it arrives.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes any connection may hold without being charged: one read's worth.
pub const FREE_PER_CONNECTION: u64 = 16 * 1024;

/// The bytes charged to all connections together, and the cap.
#[derive(Debug)]
pub struct RequestMemory {
    used: AtomicU64,
    cap: u64,
}

/// The charge would take the server over `max_buffered_request_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverCap;

impl RequestMemory {
    pub fn new(cap: u64) -> Arc<Self> {
        Arc::new(Self {
            used: AtomicU64::new(0),
            cap,
        })
    }

    /// Bytes charged right now.
    #[cfg(test)]
    fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

/// One connection's charge; given back when dropped.
#[derive(Debug)]
pub struct Charge {
    memory: Arc<RequestMemory>,
    charged: u64,
}

impl Charge {
    pub fn new(memory: Arc<RequestMemory>) -> Self {
        Self { memory, charged: 0 }
    }

    /// Charges the connection for holding `buffered` bytes; `OverCap` (charging nothing more)
    /// when that would take the server-wide total over the cap.
    pub fn track(&mut self, buffered: usize) -> Result<(), OverCap> {
        let wanted = (buffered as u64).saturating_sub(FREE_PER_CONNECTION);
        if wanted > self.charged {
            let growth = wanted - self.charged;
            let cap = self.memory.cap;
            self.memory
                .used
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                    used.checked_add(growth).filter(|&total| total <= cap)
                })
                .map_err(|_| OverCap)?;
        } else if wanted < self.charged {
            self.memory
                .used
                .fetch_sub(self.charged - wanted, Ordering::Relaxed);
        }
        self.charged = wanted;
        Ok(())
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.memory.used.fetch_sub(self.charged, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FREE: usize = FREE_PER_CONNECTION as usize;

    #[test]
    fn small_buffers_are_free_and_large_ones_share_the_cap() {
        let memory = RequestMemory::new(1000);
        let mut first = Charge::new(Arc::clone(&memory));
        let mut second = Charge::new(Arc::clone(&memory));
        first.track(FREE).unwrap();
        assert_eq!(memory.used(), 0);
        first.track(FREE + 600).unwrap();
        assert_eq!(memory.used(), 600);
        assert_eq!(second.track(FREE + 401), Err(OverCap));
        assert_eq!(memory.used(), 600, "a refused charge takes nothing");
        second.track(FREE + 400).unwrap();
        assert_eq!(memory.used(), 1000);
        first.track(10).unwrap();
        assert_eq!(memory.used(), 400, "consumed bytes are given back");
        drop(second);
        assert_eq!(
            memory.used(),
            0,
            "a closed connection gives back its charge"
        );
        drop(first);
    }

    #[test]
    fn concurrent_charges_never_exceed_the_cap() {
        let memory = RequestMemory::new(10_000);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let memory = Arc::clone(&memory);
                std::thread::spawn(move || {
                    let mut charge = Charge::new(Arc::clone(&memory));
                    for size in (0..5_000).step_by(7) {
                        charge.track(FREE + size).ok();
                        assert!(memory.used() <= 10_000);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(memory.used(), 0);
    }
}
