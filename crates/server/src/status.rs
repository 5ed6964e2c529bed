//! Server status (spec g.1): `up`, `writeavoid`, `readonly`, `quiescent`, persisted across
//! restarts. `readonly` refuses writes, `quiescent` refuses reads too; `writeavoid` refuses
//! nothing (it only tells clients that can see it to prefer other servers). A change to a
//! stricter status takes effect after the grace period.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::atomic::{AtomicBool, AtomicU8};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tracing::{info, warn};

/// A server status, ordered from least to most strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Up,
    WriteAvoid,
    ReadOnly,
    Quiescent,
}

impl Status {
    /// Every status, indexed by `status as u8`.
    const ALL: [Status; 4] = [
        Status::Up,
        Status::WriteAvoid,
        Status::ReadOnly,
        Status::Quiescent,
    ];

    /// Parses a status name, case-insensitively (`down` is not a status a client may set).
    pub fn parse(name: &str) -> Option<Status> {
        match name.to_ascii_lowercase().as_str() {
            "up" => Some(Status::Up),
            "writeavoid" => Some(Status::WriteAvoid),
            "readonly" => Some(Status::ReadOnly),
            "quiescent" => Some(Status::Quiescent),
            _ => None,
        }
    }

    /// The name as the `status` command answers it.
    pub fn reply_name(self) -> &'static str {
        match self {
            Status::Up => "UP",
            Status::WriteAvoid => "WRITEAVOID",
            Status::ReadOnly => "READONLY",
            Status::Quiescent => "QUIESCENT",
        }
    }

    /// True when writes (set, delete, flush, flush_all, flush_expired) are refused.
    pub fn refuses_writes(self) -> bool {
        self >= Status::ReadOnly
    }

    /// True when reads (get, peek, monitor) are refused.
    pub fn refuses_reads(self) -> bool {
        self >= Status::Quiescent
    }
}

/// The current status, a pending stricter one, and the file that keeps it.
///
/// Every `set` and `get` asks for the status, on every worker: it is an atomic read, and the
/// lock is taken only while a stricter status waits for its grace period.
pub struct ServerStatus {
    file: PathBuf,
    grace: Duration,
    /// The status in force, as `Status as u8` (an index into [`Status::ALL`]).
    current: AtomicU8,
    /// True while `pending` holds a status.
    has_pending: AtomicBool,
    /// A stricter status and when it takes effect.
    pending: Mutex<Option<(Status, Instant)>>,
}

impl ServerStatus {
    /// The status saved in `file`, or `default` when there is none (or it cannot be read).
    pub fn load(file: &Path, default: Status, grace: Duration) -> ServerStatus {
        let saved = std::fs::read_to_string(file)
            .ok()
            .and_then(|text| Status::parse(text.trim()));
        let current = saved.unwrap_or(default);
        info!(status = current.reply_name(), "server status");
        ServerStatus {
            file: file.to_owned(),
            grace,
            current: AtomicU8::new(current as u8),
            has_pending: AtomicBool::new(false),
            pending: Mutex::new(None),
        }
    }

    /// The status in force now.
    pub fn current(&self) -> Status {
        if self.has_pending.load(Acquire) {
            self.apply_pending_if_due();
        }
        // Only `set_current` stores, and only valid indices.
        Status::ALL[usize::from(self.current.load(Acquire))]
    }

    fn apply_pending_if_due(&self) {
        let mut pending = self.lock();
        if let Some((status, due)) = *pending
            && Instant::now() >= due
        {
            self.set_current(status, &mut pending);
            info!(
                status = status.reply_name(),
                "server status changed after the grace period"
            );
        }
    }

    /// Puts `status` in force and drops any pending one (under the lock).
    fn set_current(&self, status: Status, pending: &mut Option<(Status, Instant)>) {
        self.current.store(status as u8, Release);
        *pending = None;
        self.has_pending.store(false, Release);
    }

    /// Requests `status`: a less strict one applies at once; a stricter one after the grace
    /// period, and is ignored while another stricter change is pending (as Kestrel). The
    /// requested status is saved so that a restart comes back in it.
    pub fn request(&self, status: Status) {
        let current = self.current();
        let mut pending = self.lock();
        if status <= current || self.grace.is_zero() {
            self.set_current(status, &mut pending);
        } else if pending.is_none() {
            *pending = Some((status, Instant::now() + self.grace));
            self.has_pending.store(true, Release);
        } else {
            return;
        }
        drop(pending);
        info!(status = status.reply_name(), "server status requested");
        self.save(status);
    }

    fn save(&self, status: Status) {
        let temporary = self.file.with_extension("tmp");
        let written = std::fs::write(
            &temporary,
            format!("{}\n", status.reply_name().to_ascii_lowercase()),
        )
        .and_then(|()| std::fs::rename(&temporary, &self.file));
        if let Err(error) = written {
            warn!(file = %self.file.display(), %error, "cannot save the server status");
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<(Status, Instant)>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictness_decides_what_is_refused() {
        assert!(!Status::WriteAvoid.refuses_writes());
        assert!(Status::ReadOnly.refuses_writes() && !Status::ReadOnly.refuses_reads());
        assert!(Status::Quiescent.refuses_reads());
        assert_eq!(Status::parse("ReadOnly"), Some(Status::ReadOnly));
        assert_eq!(Status::parse("down"), None);
    }

    #[test]
    fn the_status_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("status");
        ServerStatus::load(&file, Status::Up, Duration::ZERO).request(Status::ReadOnly);
        assert_eq!(
            ServerStatus::load(&file, Status::Up, Duration::ZERO).current(),
            Status::ReadOnly
        );
    }

    #[test]
    fn every_status_is_stored_as_its_index() {
        for status in Status::ALL {
            assert_eq!(Status::ALL[usize::from(status as u8)], status);
        }
    }

    #[test]
    fn a_stricter_status_takes_effect_once_its_grace_period_is_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = ServerStatus::load(
            &dir.path().join("status"),
            Status::Up,
            Duration::from_millis(20),
        );
        status.request(Status::ReadOnly);
        let deadline = Instant::now() + Duration::from_secs(10);
        while status.current() != Status::ReadOnly {
            assert!(Instant::now() < deadline, "still {:?}", status.current());
            std::thread::yield_now();
        }
        status.request(Status::Up);
        assert_eq!(
            status.current(),
            Status::Up,
            "a looser status applies at once"
        );
    }

    #[test]
    fn a_stricter_status_waits_for_the_grace_period() {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = ServerStatus::load(
            &dir.path().join("status"),
            Status::Up,
            Duration::from_secs(3600),
        );
        status.request(Status::Quiescent);
        assert_eq!(status.current(), Status::Up);
        status.request(Status::WriteAvoid);
        assert_eq!(
            status.current(),
            Status::Up,
            "a stricter change while one is pending is ignored"
        );
        status.request(Status::Up);
        assert_eq!(status.current(), Status::Up);
    }
}
