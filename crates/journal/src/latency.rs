//! A latency histogram of fixed buckets in atomics: recording costs two relaxed atomic adds and
//! never takes a lock, so it may sit on hot paths (fsyncs here, requests in the server).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Upper bounds of the buckets, in seconds (Prometheus' `le`); a last bucket takes the rest.
pub const LATENCY_BUCKETS_SECONDS: [f64; 18] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The bounds of [`LATENCY_BUCKETS_SECONDS`] in nanoseconds, for comparisons without floats.
const BUCKET_BOUNDS_NANOS: [u64; 18] = [
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Counts of durations per bucket and their sum.
#[derive(Debug)]
pub struct LatencyHistogram {
    /// One count per bound, then one for durations past the last bound.
    buckets: [AtomicU64; BUCKET_BOUNDS_NANOS.len() + 1],
    sum_nanos: AtomicU64,
}

/// A histogram's figures at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencySnapshot {
    /// Durations recorded.
    pub count: u64,
    /// Their sum in seconds.
    pub sum_seconds: f64,
    /// `(upper bound in seconds, durations at most that long)`, cumulative, one per bound of
    /// [`LATENCY_BUCKETS_SECONDS`] (the `+Inf` bucket is `count`).
    pub cumulative: Vec<(f64, u64)>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram (usable in a `static`).
    pub const fn new() -> Self {
        Self {
            buckets: [const { AtomicU64::new(0) }; BUCKET_BOUNDS_NANOS.len() + 1],
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Counts one duration.
    pub fn record(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKET_BOUNDS_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BUCKET_BOUNDS_NANOS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(nanos, Relaxed);
    }

    /// Counts the time `since` took until now.
    pub fn record_since(&self, since: Instant) {
        self.record(since.elapsed());
    }

    /// Durations recorded so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|bucket| bucket.load(Relaxed)).sum()
    }

    /// The figures now, with cumulative bucket counts.
    pub fn snapshot(&self) -> LatencySnapshot {
        let mut running = 0;
        let cumulative = LATENCY_BUCKETS_SECONDS
            .iter()
            .zip(&self.buckets)
            .map(|(&bound, bucket)| {
                running += bucket.load(Relaxed);
                (bound, running)
            })
            .collect();
        let count = running + self.buckets[BUCKET_BOUNDS_NANOS.len()].load(Relaxed);
        LatencySnapshot {
            count,
            sum_seconds: self.sum_nanos.load(Relaxed) as f64 / 1e9,
            cumulative,
        }
    }
}

/// Every journal's fsyncs (group-commit syncs, rotations, rewrites) in this process.
static FSYNC_LATENCY: LatencyHistogram = LatencyHistogram::new();

/// Runs one fsync and counts how long it took in the process-wide fsync histogram.
pub(crate) fn timed_fsync<T>(fsync: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = fsync();
    FSYNC_LATENCY.record_since(started);
    result
}

/// The latency of every journal fsync in this process so far.
pub fn fsync_latency() -> LatencySnapshot {
    FSYNC_LATENCY.snapshot()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fall_into_cumulative_buckets() {
        let histogram = LatencyHistogram::new();
        histogram.record(Duration::from_micros(10));
        histogram.record(Duration::from_micros(25));
        histogram.record(Duration::from_millis(3));
        histogram.record(Duration::from_secs(60));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 4);
        assert_eq!(
            snapshot.cumulative[0],
            (0.000_025, 2),
            "the bound is inclusive"
        );
        assert_eq!(snapshot.cumulative[6], (0.002_5, 2));
        assert_eq!(snapshot.cumulative[7], (0.005, 3));
        assert_eq!(
            snapshot.cumulative.last(),
            Some(&(10.0, 3)),
            "60 s is only in +Inf"
        );
        assert!((snapshot.sum_seconds - 60.003_035).abs() < 1e-9);
    }

    #[test]
    fn bounds_in_seconds_and_nanoseconds_agree() {
        for (seconds, nanos) in LATENCY_BUCKETS_SECONDS.iter().zip(BUCKET_BOUNDS_NANOS) {
            assert_eq!((seconds * 1e9).round() as u64, nanos);
        }
    }
}
