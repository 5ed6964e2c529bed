//! Per-command request latency and error counts for `/metrics`. Recording is lock-free (a few
//! relaxed atomic adds), so every memcache request can be measured.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use lanner_journal::{LatencyHistogram, LatencySnapshot};
use lanner_proto::Request;

/// The memcache commands, as the `command` label names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    Get,
    Peek,
    Set,
    Confirm,
    Monitor,
    Delete,
    Flush,
    FlushAll,
    FlushExpired,
    FlushAllExpired,
    Stats,
    DumpStats,
    DumpConfig,
    Version,
    Status,
    Reload,
    Shutdown,
    Quit,
}

impl CommandKind {
    /// Every kind, in label order.
    pub const ALL: [CommandKind; 18] = [
        CommandKind::Get,
        CommandKind::Peek,
        CommandKind::Set,
        CommandKind::Confirm,
        CommandKind::Monitor,
        CommandKind::Delete,
        CommandKind::Flush,
        CommandKind::FlushAll,
        CommandKind::FlushExpired,
        CommandKind::FlushAllExpired,
        CommandKind::Stats,
        CommandKind::DumpStats,
        CommandKind::DumpConfig,
        CommandKind::Version,
        CommandKind::Status,
        CommandKind::Reload,
        CommandKind::Shutdown,
        CommandKind::Quit,
    ];

    /// The kind of a parsed request (`get` with `/peek` is a peek).
    pub fn of(request: &Request) -> CommandKind {
        match request {
            Request::Get { options, .. } if options.peek => CommandKind::Peek,
            Request::Get { .. } => CommandKind::Get,
            Request::Set { .. } => CommandKind::Set,
            Request::Confirm { .. } => CommandKind::Confirm,
            Request::Monitor { .. } => CommandKind::Monitor,
            Request::Delete { .. } => CommandKind::Delete,
            Request::Flush { .. } => CommandKind::Flush,
            Request::FlushAll => CommandKind::FlushAll,
            Request::FlushExpired { .. } => CommandKind::FlushExpired,
            Request::FlushAllExpired => CommandKind::FlushAllExpired,
            Request::Stats => CommandKind::Stats,
            Request::DumpStats { .. } => CommandKind::DumpStats,
            Request::DumpConfig => CommandKind::DumpConfig,
            Request::Version => CommandKind::Version,
            Request::Status { .. } => CommandKind::Status,
            Request::Reload => CommandKind::Reload,
            Request::Shutdown => CommandKind::Shutdown,
            Request::Quit => CommandKind::Quit,
        }
    }

    /// The command's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            CommandKind::Get => "get",
            CommandKind::Peek => "peek",
            CommandKind::Set => "set",
            CommandKind::Confirm => "confirm",
            CommandKind::Monitor => "monitor",
            CommandKind::Delete => "delete",
            CommandKind::Flush => "flush",
            CommandKind::FlushAll => "flush_all",
            CommandKind::FlushExpired => "flush_expired",
            CommandKind::FlushAllExpired => "flush_all_expired",
            CommandKind::Stats => "stats",
            CommandKind::DumpStats => "dump_stats",
            CommandKind::DumpConfig => "dump_config",
            CommandKind::Version => "version",
            CommandKind::Status => "status",
            CommandKind::Reload => "reload",
            CommandKind::Shutdown => "shutdown",
            CommandKind::Quit => "quit",
        }
    }
}

/// What went wrong, as the `kind` label of the error counter names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A request the codec rejected (bad command line, oversized item, ...).
    Protocol,
    /// A queue operation that failed (`SERVER_ERROR` / `CLIENT_ERROR` from the queue store).
    Queue,
    /// A journal commit that failed: the reply became an error.
    Journal,
}

impl ErrorKind {
    /// Every kind, in label order.
    pub const ALL: [ErrorKind; 3] = [ErrorKind::Protocol, ErrorKind::Queue, ErrorKind::Journal];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Protocol => "protocol",
            ErrorKind::Queue => "queue",
            ErrorKind::Journal => "journal",
        }
    }
}

/// Latency per command kind and error counts per error kind.
#[derive(Debug, Default)]
pub struct RequestMetrics {
    latency: [LatencyHistogram; CommandKind::ALL.len()],
    errors: [AtomicU64; ErrorKind::ALL.len()],
}

impl RequestMetrics {
    /// Counts a request of `kind` that took `elapsed`.
    pub fn record(&self, kind: CommandKind, elapsed: Duration) {
        self.latency[kind as usize].record(elapsed);
    }

    /// Counts one error.
    pub fn count_error(&self, kind: ErrorKind) {
        self.errors[kind as usize].fetch_add(1, Relaxed);
    }

    /// The latency figures of one command kind.
    pub fn latency(&self, kind: CommandKind) -> LatencySnapshot {
        self.latency[kind as usize].snapshot()
    }

    /// Errors of one kind so far.
    pub fn errors(&self, kind: ErrorKind) -> u64 {
        self.errors[kind as usize].load(Relaxed)
    }
}

/// Requests of one connection executed but not answered yet: their latency runs until the
/// replies are written (journal commit included).
///
/// Room for up to [`KEEP_PENDING`] is kept between batches; a longer batch's is freed, so an
/// idle connection does not hold it.
#[derive(Debug, Default)]
pub struct PendingRequests(Vec<(CommandKind, Instant)>);

const KEEP_PENDING: usize = 64;

impl PendingRequests {
    /// Notes a request that starts now.
    pub fn start(&mut self, kind: CommandKind, started: Instant) {
        self.0.push((kind, started));
    }

    /// Records every pending request as answered now (one clock read for the whole batch).
    pub fn answered(&mut self, metrics: &RequestMetrics) {
        if self.0.is_empty() {
            return;
        }
        let now = Instant::now();
        for (kind, started) in self.0.drain(..) {
            metrics.record(kind, now.saturating_duration_since(started));
        }
        if self.0.capacity() > KEEP_PENDING {
            self.0 = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_index_their_own_slot() {
        for (index, kind) in CommandKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, index, "{}", kind.name());
        }
        for (index, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, index, "{}", kind.name());
        }
    }

    #[test]
    fn answered_requests_are_counted_once_per_kind() {
        let metrics = RequestMetrics::default();
        let mut pending = PendingRequests::default();
        pending.start(CommandKind::Set, Instant::now());
        pending.start(CommandKind::Set, Instant::now());
        pending.start(CommandKind::Get, Instant::now());
        pending.answered(&metrics);
        pending.answered(&metrics);
        assert_eq!(metrics.latency(CommandKind::Set).count, 2);
        assert_eq!(metrics.latency(CommandKind::Get).count, 1);
        assert_eq!(metrics.latency(CommandKind::Peek).count, 0);
        assert!(pending.0.capacity() > 0);
        for _ in 0..2 * KEEP_PENDING {
            pending.start(CommandKind::Get, Instant::now());
        }
        pending.answered(&metrics);
        assert_eq!(
            metrics.latency(CommandKind::Get).count,
            1 + 2 * KEEP_PENDING as u64
        );
        assert_eq!(pending.0.capacity(), 0);
        metrics.count_error(ErrorKind::Journal);
        assert_eq!(metrics.errors(ErrorKind::Journal), 1);
        assert_eq!(metrics.errors(ErrorKind::Protocol), 0);
    }
}
