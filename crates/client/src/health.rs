//! Whether a server may be used: a server that fails is marked down and retried after an
//! exponentially growing delay; one success marks it up again.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Retry delays: `initial`, doubling after each further failure, never above `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
}

impl Backoff {
    /// The delay after the `failures`-th failure in a row (counted from 1).
    fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// The failure count and next retry time of one server (pure: time is passed in).
#[derive(Debug, Default)]
struct State {
    failures: u32,
    retry_at: Option<Instant>,
}

impl State {
    fn available(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|at| now >= at)
    }

    /// Records a failure seen at `now`; returns false if the server was already down (a
    /// failure of a request started before the server was marked down does not count again).
    fn fail(&mut self, now: Instant, backoff: &Backoff) -> bool {
        if !self.available(now) {
            return false;
        }
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now + backoff.delay(self.failures));
        true
    }
}

/// The shared health of one server, updated by every connection to it.
#[derive(Debug)]
pub(crate) struct Health {
    backoff: Backoff,
    /// Fast path: false while the server has no recorded failure.
    down: AtomicBool,
    state: Mutex<State>,
    /// Bumped on every failure, so connections made before it are not reused.
    generation: AtomicU64,
}

impl Health {
    pub(crate) fn new(backoff: Backoff) -> Health {
        Health {
            backoff,
            down: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            generation: AtomicU64::new(0),
        }
    }

    /// True unless the server is down and its retry time has not come yet.
    pub(crate) fn available(&self) -> bool {
        !self.down.load(Ordering::Acquire) || self.lock().available(Instant::now())
    }

    /// The server failed (connect, connection lost, timeout, garbage).
    pub(crate) fn failed(&self) {
        let mut state = self.lock();
        if state.fail(Instant::now(), &self.backoff) {
            self.down.store(true, Ordering::Release);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The server answered: it is up.
    pub(crate) fn succeeded(&self) {
        if self.down.load(Ordering::Acquire) {
            *self.lock() = State::default();
            self.down.store(false, Ordering::Release);
        }
    }

    /// Changes whenever the server fails; a connection of an older generation is stale.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is one assignment.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
    };

    #[test]
    fn delays_double_up_to_the_maximum() {
        let delays: Vec<u128> = (1..=6).map(|n| BACKOFF.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(BACKOFF.delay(u32::MAX), BACKOFF.max);
        let huge = Backoff {
            initial: Duration::MAX,
            max: Duration::from_secs(5),
        };
        assert_eq!(huge.delay(3), Duration::from_secs(5));
    }

    #[test]
    fn a_failed_server_is_unavailable_until_its_retry_time() {
        let start = Instant::now();
        let mut state = State::default();
        assert!(state.available(start));
        assert!(state.fail(start, &BACKOFF));
        assert!(!state.available(start + Duration::from_millis(99)));
        assert!(state.available(start + Duration::from_millis(100)));
    }

    #[test]
    fn failures_while_down_do_not_grow_the_delay_but_failed_retries_do() {
        let start = Instant::now();
        let mut state = State::default();
        assert!(state.fail(start, &BACKOFF));
        // Requests that were in flight when the server died fail too: no extra penalty.
        assert!(!state.fail(start + Duration::from_millis(10), &BACKOFF));
        assert_eq!(state.failures, 1);
        // The retry after 100 ms fails: now 200 ms.
        let retry = start + Duration::from_millis(100);
        assert!(state.fail(retry, &BACKOFF));
        assert_eq!(state.retry_at, Some(retry + Duration::from_millis(200)));
    }

    #[test]
    fn success_resets_and_failure_bumps_the_generation() {
        let health = Health::new(BACKOFF);
        let first = health.generation();
        assert!(health.available());
        health.failed();
        assert!(!health.available());
        assert_ne!(health.generation(), first);
        health.succeeded();
        assert!(health.available());
        assert_eq!(health.lock().failures, 0);
    }
}
