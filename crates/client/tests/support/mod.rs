//! Test harness: runs real `lanner` servers on loopback ports with temporary data
//! directories, and waits on conditions with bounded deadlines.
//!
//! The server binary is `$LANNER_BIN` if set, else `lanner` in the target directory these tests
//! run from. `cargo test --workspace` builds it before running any test (the server package's
//! own integration tests need it). When it is missing or older than a source file of the
//! server's crates, as after `cargo test -p lanner-client` on a fresh or edited tree, the
//! harness builds it once with `cargo build -p lanner-server --bin lanner`.

#![allow(dead_code)] // each test file uses its own subset of the harness

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use lanner_client::{Client, ClientBuilder, Distribution};
use tempfile::TempDir;

/// The longest any expected event may take before a test fails (a bound, never a sleep).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Pause between two checks of a condition.
pub const POLL: Duration = Duration::from_millis(5);

/// The `lanner` binary, built first if it is missing or stale.
pub fn lanner_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("LANNER_BIN") {
            return PathBuf::from(path);
        }
        // This test runs as <target dir>/<profile>/deps/<test>-<hash>.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable inside <target>/<profile>/deps");
        let binary = profile_dir.join(format!("lanner{}", std::env::consts::EXE_SUFFIX));
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let built = std::fs::metadata(&binary)
            .and_then(|meta| meta.modified())
            .ok();
        let stale = built.is_none_or(|built| built < newest_server_source(&workspace));
        if let (true, Some(cargo)) = (stale, std::env::var_os("CARGO")) {
            let mut build = Command::new(cargo);
            build
                .args(["build", "--quiet", "-p", "lanner-server", "--bin", "lanner"])
                .arg("--manifest-path")
                .arg(workspace.join("Cargo.toml"))
                .arg("--target-dir")
                .arg(profile_dir.parent().expect("target dir"));
            if profile_dir
                .file_name()
                .is_some_and(|name| name == "release")
            {
                build.arg("--release");
            }
            let status = build
                .status()
                .expect("run cargo build for the lanner binary");
            assert!(status.success(), "building the lanner binary failed");
        }
        assert!(
            binary.exists(),
            "no lanner binary at {} (set LANNER_BIN or run under cargo)",
            binary.display()
        );
        binary
    })
}

/// The newest modification time among the manifests and sources the server is built from:
/// the workspace manifest and lock file, and every crate but this one.
fn newest_server_source(workspace: &Path) -> SystemTime {
    fn walk(path: &Path, newest: &mut SystemTime) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                walk(&entry.path(), newest);
            }
        } else if let Ok(modified) = meta.modified() {
            *newest = (*newest).max(modified);
        }
    }
    let mut newest = SystemTime::UNIX_EPOCH;
    walk(&workspace.join("Cargo.toml"), &mut newest);
    walk(&workspace.join("Cargo.lock"), &mut newest);
    let crates = std::fs::read_dir(workspace.join("crates"))
        .into_iter()
        .flatten()
        .flatten();
    for krate in crates.filter(|krate| krate.file_name() != "client") {
        walk(&krate.path().join("Cargo.toml"), &mut newest);
        walk(&krate.path().join("src"), &mut newest);
    }
    newest
}

/// A running `lanner` process with its own data directory.
pub struct Lanner {
    child: Child,
    address: SocketAddr,
    data_dir: PathBuf,
    config: Option<PathBuf>,
    _temp: TempDir,
}

impl Lanner {
    /// A server on a free loopback port with an empty data directory.
    pub fn start() -> Lanner {
        Lanner::start_configured(None)
    }

    /// A server whose configuration file holds `toml`.
    pub fn start_with_config(toml: &str) -> Lanner {
        Lanner::start_configured(Some(toml))
    }

    fn start_configured(toml: Option<&str>) -> Lanner {
        let temp = TempDir::new().expect("temp dir");
        let config = toml.map(|toml| {
            let path = temp.path().join("lanner.toml");
            std::fs::write(&path, toml).expect("write config");
            path
        });
        let data_dir = temp.path().join("data");
        let (child, address) = spawn("127.0.0.1:0", &data_dir, config.as_deref())
            .unwrap_or_else(|log| panic!("lanner did not start:\n{log}"));
        Lanner {
            child,
            address,
            data_dir,
            config,
            _temp: temp,
        }
    }

    /// `127.0.0.1:<port>`, as clients are configured with it.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// A client for this server alone.
    pub fn client(&self) -> Client {
        quick_client(&[self]).build().expect("client")
    }

    /// Kills the process with SIGKILL (no shutdown work at all) and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL lanner");
        self.child.wait().expect("reap lanner");
    }

    /// Starts the server again on the same port and data directory (after [`Lanner::kill`]).
    pub fn restart(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        let listen = self.address.to_string();
        loop {
            match spawn(&listen, &self.data_dir, self.config.as_deref()) {
                Ok((child, _)) => {
                    self.child = child;
                    return;
                }
                // The port may still be held for a moment by the killed process's sockets.
                Err(log) if Instant::now() < deadline => drop(log),
                Err(log) => panic!("lanner did not restart on {listen}:\n{log}"),
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Lanner {
    fn drop(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
    }
}

/// Starts `lanner` and waits until it logs its listening address; the log of a failed start
/// is the error.
fn spawn(
    listen: &str,
    data_dir: &Path,
    config: Option<&Path>,
) -> Result<(Child, SocketAddr), String> {
    let mut command = Command::new(lanner_binary());
    command
        // Several servers run at once: the text protocol's fixed default port would collide.
        .args([
            "--text-listen",
            "",
            "--admin-listen",
            "",
            "--listen",
            listen,
            "--data-dir",
        ])
        .arg(data_dir)
        .env("RUST_LOG", "warn,lanner_server::server=info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let mut child = command.spawn().expect("spawn lanner");
    let stderr = child.stderr.take().expect("piped stderr");
    let (lines_tx, lines_rx) = mpsc::channel();
    // Keeps draining the log for the life of the process, so the server never blocks on it.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            drop(lines_tx.send(line));
        }
    });
    let mut log = Vec::new();
    loop {
        let Ok(line) = lines_rx.recv_timeout(PATIENCE) else {
            drop(child.kill());
            drop(child.wait());
            return Err(log.join("\n"));
        };
        if let Some(address) = listening_address(&line) {
            return Ok((child, address));
        }
        log.push(line);
    }
}

fn listening_address(line: &str) -> Option<SocketAddr> {
    let rest = line.split("lanner listening on ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
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
