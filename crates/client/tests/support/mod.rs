//! Test harness: runs real `lanner` servers through the shared harness (`lanner-testkit`:
//! loopback ports, temporary data directories, the binary found or built), and waits on
//! conditions with bounded deadlines.

#![allow(dead_code)] // each test file uses its own subset of the harness

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lanner_client::{Client, ClientBuilder, Distribution};
use lanner_testkit::Launch;

/// The longest any expected event may take before a test fails (the shared bound).
pub const PATIENCE: Duration = lanner_testkit::PATIENCE;

/// Pause between two checks of a condition.
pub const POLL: Duration = lanner_testkit::POLL_INTERVAL;

/// A running `lanner` process (the shared harness's [`lanner_testkit::Lanner`]), addressed as
/// clients are configured.
pub struct Lanner(lanner_testkit::Lanner);

impl Deref for Lanner {
    type Target = lanner_testkit::Lanner;

    fn deref(&self) -> &lanner_testkit::Lanner {
        &self.0
    }
}

impl DerefMut for Lanner {
    fn deref_mut(&mut self) -> &mut lanner_testkit::Lanner {
        &mut self.0
    }
}

impl Lanner {
    /// A server on a free loopback port with an empty data directory.
    pub fn start() -> Lanner {
        Lanner(Launch::default().start())
    }

    /// A server whose configuration file holds `toml`.
    pub fn start_with_config(toml: &str) -> Lanner {
        Lanner(Launch::default().config(toml).start())
    }

    /// `127.0.0.1:<port>`, as clients are configured with it.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// A client for this server alone.
    pub fn client(&self) -> Client {
        quick_client(&[self]).build().expect("client")
    }
}

/// A builder for these servers with short timeouts and back-off, as tests want them.
pub fn quick_client(servers: &[&Lanner]) -> ClientBuilder {
    ClientBuilder::new(servers.iter().map(|server| server.address()))
        .distribution(Distribution::RoundRobin)
        .connect_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(10))
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
}

/// Polls `check` until it yields a value or [`PATIENCE`] runs out (then fails the test).
pub async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// A per-queue stat of one server, through a fresh single-server client.
pub async fn queue_stat(server: &Lanner, queue: &str, key: &str) -> Option<u64> {
    let client = server.client();
    let stats = client.stats().await.pop().expect("one server").stats.ok()?;
    stats.queue(queue, key)
}

/// Waits until one server's per-queue stat has the wanted value.
pub async fn wait_for_stat(server: &Lanner, queue: &str, key: &str, wanted: u64) {
    let what = format!("{key} of {queue} on {} to be {wanted}", server.address());
    eventually(&what, async || {
        (queue_stat(server, queue, key).await.unwrap_or(0) == wanted).then_some(())
    })
    .await;
}

/// Where `scripts/install-test-clients.sh` installs the third-party clients.
pub fn third_party_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let target_dir = exe
        .ancestors()
        .nth(3)
        .expect("test executable inside <target>/<profile>/deps");
    target_dir.join("third-party-clients")
}

/// A third-party client script shipped with these tests.
pub fn client_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// Runs `command` to completion (bounded by a minute), failing the test with its output if
/// it fails; returns its standard output.
pub fn run_to_success(mut command: Command) -> String {
    let description = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {description}: {error}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            drop(child.kill());
            break;
        }
        std::thread::sleep(POLL);
    }
    let output = child.wait_with_output().expect("collect output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{description} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}
