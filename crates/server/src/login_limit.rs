//! Password guessing across connections (`[server.login]`): failed logins are counted per
//! client address, and an address with too many within a window is locked out for a while, its
//! logins refused before any Argon2 check. The table of addresses has a fixed maximum size, so
//! it cannot be grown into a memory problem by attackers with many addresses.
//!
//! Only failures create entries: a server whose clients log in correctly keeps an empty table,
//! and a successful login costs one lookup.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tracing::warn;

use crate::config::LoginConfig;

/// Counters of logins that went wrong, for `/metrics`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoginFigures {
    /// Logins whose password was checked and was wrong (or named no user).
    pub failures: u64,
    /// Logins refused without a check because their address was locked out.
    pub refusals: u64,
    /// Lockouts started.
    pub lockouts: u64,
}

/// The failed logins of one address (or, when the table is full, of all the others).
#[derive(Debug, Clone, Copy)]
struct Failures {
    /// When the counting window began: at the first failure it counts.
    since: Instant,
    count: u32,
    /// Logins are refused until then.
    locked_until: Option<Instant>,
}

impl Failures {
    fn new(now: Instant) -> Failures {
        Failures {
            since: now,
            count: 0,
            locked_until: None,
        }
    }

    fn is_locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }

    /// True once the entry no longer affects anything: its lockout ended, or (never locked)
    /// its window passed.
    fn is_stale(&self, now: Instant, window: Duration) -> bool {
        match self.locked_until {
            Some(until) => now >= until,
            None => now.saturating_duration_since(self.since) >= window,
        }
    }

    /// Counts one failure; true when it starts a lockout. A failure while locked out (a check
    /// that began before the lockout) changes nothing: a lockout is never extended, so a
    /// client retrying during it is let in again once it ends.
    fn record(&mut self, now: Instant, limits: &LoginConfig) -> bool {
        if self.is_locked(now) {
            return false;
        }
        if self.is_stale(now, limits.failure_window) {
            *self = Failures::new(now);
        }
        self.count += 1;
        if self.count < limits.max_failures_per_address {
            return false;
        }
        *self = Failures {
            locked_until: Some(now + limits.lockout),
            ..Failures::new(now)
        };
        true
    }
}

/// The addresses with recent failures, at most `max_tracked_addresses` of them.
#[derive(Debug)]
struct Table {
    sources: HashMap<IpAddr, Failures>,
    /// The shared count of the addresses that found the table full.
    others: Failures,
    /// True from the first failure that found the table full until one fits again (so that
    /// it is logged once).
    full: bool,
    /// When stale entries were last dropped from a full table.
    last_sweep: Option<Instant>,
}

impl Table {
    /// The count a failure of `source` goes to, and whether it is the source's own: its entry,
    /// a new one (stale entries dropped to make room when the table is full), else the shared
    /// count of the addresses that found the table full.
    fn count_for(
        &mut self,
        source: IpAddr,
        now: Instant,
        limits: &LoginConfig,
    ) -> (&mut Failures, bool) {
        let capacity = limits.max_tracked_addresses as usize;
        if self.sources.contains_key(&source) || self.has_room(now, limits) {
            if self.sources.len() < capacity {
                self.full = false;
            }
            let failures = self
                .sources
                .entry(source)
                .or_insert_with(|| Failures::new(now));
            return (failures, true);
        }
        if !self.full {
            self.full = true;
            warn!(
                "the failed-login table is full ({capacity} addresses with recent failures): \
                 the failures of every other address now share one count and one lockout \
                 (max_tracked_addresses in [server.login])"
            );
        }
        (&mut self.others, false)
    }

    /// True when a new address would get an entry of its own: the table has room, or has it
    /// once the entries that no longer affect anything are dropped. That sweep walks the whole
    /// table, so it runs at most once per [`SWEEP_INTERVAL`] (a login refused by the shared
    /// lockout costs no Argon2 check that would otherwise bound how often it can be asked).
    fn has_room(&mut self, now: Instant, limits: &LoginConfig) -> bool {
        let capacity = limits.max_tracked_addresses as usize;
        let may_sweep = self
            .last_sweep
            .is_none_or(|at| now.saturating_duration_since(at) >= SWEEP_INTERVAL);
        if self.sources.len() >= capacity && may_sweep {
            self.last_sweep = Some(now);
            let window = limits.failure_window;
            self.sources
                .retain(|_, failures| !failures.is_stale(now, window));
        }
        self.sources.len() < capacity
    }
}

/// Least time between two sweeps of stale entries out of a full table.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Failed logins per client address, and the lockouts they lead to.
#[derive(Debug)]
pub struct LoginLimiter {
    limits: LoginConfig,
    table: Mutex<Table>,
    failures: AtomicU64,
    refusals: AtomicU64,
    lockouts: AtomicU64,
}

impl LoginLimiter {
    /// An empty table with these limits.
    pub fn new(limits: LoginConfig, now: Instant) -> LoginLimiter {
        LoginLimiter {
            limits,
            table: Mutex::new(Table {
                sources: HashMap::new(),
                others: Failures::new(now),
                full: false,
                last_sweep: None,
            }),
            failures: AtomicU64::new(0),
            refusals: AtomicU64::new(0),
            lockouts: AtomicU64::new(0),
        }
    }

    /// True when a login from `peer` may be checked; false (counted as a refusal) while its
    /// address is locked out.
    pub fn admit(&self, peer: IpAddr, now: Instant) -> bool {
        let source = source_of(peer);
        let mut table = self.table();
        let locked = match table.sources.get(&source) {
            Some(failures) => failures.is_locked(now),
            // The shared lockout is for the addresses a full table could not track: once there
            // is room again, a new address gets a count of its own instead.
            None => table.others.is_locked(now) && !table.has_room(now, &self.limits),
        };
        if locked {
            self.refusals.fetch_add(1, Relaxed);
        }
        !locked
    }

    /// Counts a failed login from `peer`, locking its address out when that was one too many.
    pub fn failed(&self, peer: IpAddr, now: Instant) {
        self.failures.fetch_add(1, Relaxed);
        let source = source_of(peer);
        let mut table = self.table();
        let (failures, tracked) = table.count_for(source, now, &self.limits);
        if !failures.record(now, &self.limits) {
            return;
        }
        self.lockouts.fetch_add(1, Relaxed);
        let who = if tracked {
            source.to_string()
        } else {
            "every address not in the full failed-login table".to_owned()
        };
        warn!(
            "locking out {who} for {}: {} failed logins within {}; logins are refused without \
             a password check until then",
            humantime::format_duration(self.limits.lockout),
            self.limits.max_failures_per_address,
            humantime::format_duration(self.limits.failure_window),
        );
    }

    /// The counters so far.
    pub fn figures(&self) -> LoginFigures {
        LoginFigures {
            failures: self.failures.load(Relaxed),
            refusals: self.refusals.load(Relaxed),
            lockouts: self.lockouts.load(Relaxed),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // The table stays consistent whatever panicked while holding it: every update is a
        // whole entry.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What failures are counted under: an IPv4 address (an IPv4-mapped IPv6 one too), or the /64
/// prefix of an IPv6 address, since one host or site usually holds a whole /64 and could
/// otherwise try from as many addresses as it likes.
fn source_of(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(address) => {
            let prefix = u128::from(address) & !u128::from(u64::MAX);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn limits(max_failures: u32, window_secs: u64, lockout_secs: u64) -> LoginConfig {
        LoginConfig {
            max_failures_per_address: max_failures,
            failure_window: Duration::from_secs(window_secs),
            lockout: Duration::from_secs(lockout_secs),
            ..LoginConfig::default()
        }
    }

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn v6(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// A limiter that tracks at most `capacity` addresses.
    fn small_table(capacity: u32, limits: LoginConfig, start: Instant) -> LoginLimiter {
        LoginLimiter::new(
            LoginConfig {
                max_tracked_addresses: capacity,
                ..limits
            },
            start,
        )
    }

    fn fail_times(limiter: &LoginLimiter, peer: IpAddr, times: u32, now: Instant) {
        for _ in 0..times {
            limiter.failed(peer, now);
        }
    }

    #[test]
    fn an_address_is_locked_out_after_its_failures_and_admitted_again_after_the_lockout() {
        let start = Instant::now();
        let limiter = LoginLimiter::new(limits(3, 60, 300), start);
        fail_times(&limiter, v4(1), 2, start);
        assert!(
            limiter.admit(v4(1), start + SECOND),
            "two failures of three"
        );
        limiter.failed(v4(1), start + SECOND);
        assert!(!limiter.admit(v4(1), start + SECOND));
        assert!(!limiter.admit(v4(1), start + 300 * SECOND));
        assert!(limiter.admit(v4(2), start + SECOND), "another address");
        assert!(
            limiter.admit(v4(1), start + 301 * SECOND),
            "the lockout ended"
        );
        assert_eq!(
            limiter.figures(),
            LoginFigures {
                failures: 3,
                refusals: 2,
                lockouts: 1
            }
        );
    }

    #[test]
    fn failures_outside_the_window_start_a_new_count() {
        let start = Instant::now();
        let limiter = LoginLimiter::new(limits(3, 60, 300), start);
        fail_times(&limiter, v4(1), 2, start);
        fail_times(&limiter, v4(1), 2, start + 60 * SECOND);
        assert!(limiter.admit(v4(1), start + 61 * SECOND));
        limiter.failed(v4(1), start + 61 * SECOND);
        assert!(!limiter.admit(v4(1), start + 61 * SECOND));
    }

    #[test]
    fn after_a_lockout_an_address_has_its_full_count_again() {
        let start = Instant::now();
        let limiter = LoginLimiter::new(limits(2, 600, 10), start);
        fail_times(&limiter, v4(1), 2, start);
        let after = start + 10 * SECOND;
        limiter.failed(v4(1), after);
        assert!(limiter.admit(v4(1), after), "one failure after the lockout");
        limiter.failed(v4(1), after);
        assert!(!limiter.admit(v4(1), after));
        assert_eq!(limiter.figures().lockouts, 2);
    }

    #[test]
    fn failures_during_a_lockout_do_not_extend_it() {
        let start = Instant::now();
        let limiter = LoginLimiter::new(limits(1, 60, 10), start);
        limiter.failed(v4(1), start);
        fail_times(&limiter, v4(1), 5, start + 9 * SECOND);
        assert!(limiter.admit(v4(1), start + 10 * SECOND));
        assert_eq!(limiter.figures().lockouts, 1);
    }

    #[test]
    fn ipv6_addresses_count_per_64_prefix_and_mapped_ipv4_as_ipv4() {
        let start = Instant::now();
        let limiter = LoginLimiter::new(limits(2, 60, 60), start);
        limiter.failed(v6("2001:db8:1:2::1"), start);
        limiter.failed(v6("2001:db8:1:2:ffff::9"), start);
        assert!(!limiter.admit(v6("2001:db8:1:2::77"), start));
        assert!(limiter.admit(v6("2001:db8:1:3::1"), start), "another /64");
        limiter.failed(v6("::ffff:192.0.2.1"), start);
        limiter.failed(v4(1), start);
        assert!(!limiter.admit(v4(1), start));
    }

    #[test]
    fn loopback_is_limited_like_any_address() {
        let start = Instant::now();
        let limiter = LoginLimiter::new(limits(1, 60, 60), start);
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        limiter.failed(loopback, start);
        assert!(!limiter.admit(loopback, start));
    }

    #[test]
    fn the_table_never_holds_more_than_its_capacity_and_the_rest_share_one_count() {
        let start = Instant::now();
        let limiter = small_table(4, limits(3, 60, 60), start);
        for last in 0..4 {
            limiter.failed(v4(last), start);
        }
        for last in 4..7 {
            assert!(limiter.admit(v4(last), start), "{last}");
            limiter.failed(v4(last), start);
        }
        assert_eq!(limiter.table().sources.len(), 4);
        assert!(
            !limiter.admit(v4(200), start),
            "untracked addresses share a lockout"
        );
        assert!(
            limiter.admit(v4(0), start),
            "a tracked address keeps its own count"
        );
    }

    #[test]
    fn stale_entries_make_room_for_new_addresses() {
        let start = Instant::now();
        let limiter = small_table(2, limits(2, 60, 60), start);
        limiter.failed(v4(1), start);
        fail_times(&limiter, v4(2), 2, start);
        let later = start + 60 * SECOND;
        fail_times(&limiter, v4(3), 2, later);
        assert!(
            !limiter.admit(v4(3), later),
            "v4(3) took a stale entry's room"
        );
        assert!(limiter.admit(v4(4), later), "the shared count was not used");
        assert_eq!(limiter.table().sources.len(), 1);
    }

    #[test]
    fn the_shared_lockout_stops_applying_once_the_table_has_room_again() {
        let start = Instant::now();
        let limiter = small_table(2, limits(2, 60, 600), start);
        limiter.failed(v4(1), start);
        limiter.failed(v4(2), start);
        fail_times(&limiter, v4(3), 2, start);
        assert!(!limiter.admit(v4(4), start), "the table is full and shared");
        let later = start + 61 * SECOND;
        assert!(
            limiter.admit(v4(4), later),
            "the tracked entries went stale, so there is room"
        );
        assert!(limiter.table().sources.is_empty());
        fail_times(&limiter, v4(4), 2, later);
        assert!(!limiter.admit(v4(4), later), "counted on its own");
        assert!(limiter.admit(v4(5), later));
    }

    #[test]
    fn admitting_never_creates_an_entry() {
        let start = Instant::now();
        let limiter = LoginLimiter::new(LoginConfig::default(), start);
        for last in 0..=255 {
            assert!(limiter.admit(v4(last), start));
        }
        assert!(limiter.table().sources.is_empty());
        assert_eq!(limiter.figures(), LoginFigures::default());
    }
}
