//! The harness lanner's integration tests share: runs the real `lanner` binary on a free
//! loopback port with a temporary data directory, captures its log, and kills, terminates or
//! restarts it. Every wait is bounded by [`PATIENCE`] and polls a condition; none is a fixed
//! sleep.
//!
//! A test-only crate (`publish = false`): packages use it as a dev-dependency, never at run
//! time.

mod binary;
mod launch;
mod log;
mod password;
mod process;

use std::time::Duration;

pub use binary::lanner_binary;
pub use launch::Launch;
pub use password::{hash_password, hash_password_with};
pub use process::Lanner;

/// How long any single expected event may take before a test fails (a bound, never a sleep).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Pause between two polls of a condition (never a wait for the condition itself).
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);
