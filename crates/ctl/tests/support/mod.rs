//! Test harness: runs the real `lanner` server binary and the real `lannerctl` binary.
//!
//! Cargo only hands a test the paths of its own package's binaries (`CARGO_BIN_EXE_lannerctl`),
//! and never builds another package's binary for it. So the harness runs
//! `cargo build -p lanner-server --bin lanner` once per test process, into the same target
//! directory and profile as `lannerctl` (found next to it): that is a no-op when `lanner` is up
//! to date, and it can never run a stale server.

#![allow(dead_code)] // each test file uses its own subset of the harness

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long any single expected event may take before a test fails (a bound, never a sleep).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Pause between two polls of a condition (never a wait for the condition itself).
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The `lanner` binary, built on first use.
pub fn lanner_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let ctl = Path::new(env!("CARGO_BIN_EXE_lannerctl"));
        let profile_dir = ctl.parent().expect("lannerctl has a directory");
        let target_dir = profile_dir.parent().expect("a target directory");
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "-p", "lanner-server", "--bin", "lanner"])
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(target_dir);
        if profile_dir
            .file_name()
            .is_some_and(|name| name == "release")
        {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build for lanner");
        assert!(status.success(), "building lanner failed");
        profile_dir.join("lanner")
    })
}

/// A running `lanner` process on a free loopback port.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    data_dir: PathBuf,
    _temp: Option<TempDir>,
    log: mpsc::Receiver<String>,
}

impl Server {
    /// Starts a server with a fresh temporary data directory.
    pub fn start() -> Server {
        let temp = TempDir::new().expect("temp dir");
        let mut server = Server::start_in(&temp.path().join("data"), &[]);
        server._temp = Some(temp);
        server
    }

    /// Starts a server on `data_dir` with extra flags; waits until it listens.
    pub fn start_in(data_dir: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(lanner_binary())
            .args([
                "--listen",
                "127.0.0.1:0",
                "--text-listen",
                "",
                "--admin-listen",
                "",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lanner");
        let stderr = child.stderr.take().expect("stderr");
        let (lines_tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut seen = Vec::new();
        loop {
            let Ok(line) = log.recv_timeout(PATIENCE) else {
                drop(child.kill());
                drop(child.wait());
                panic!("lanner did not start:\n{}", seen.join("\n"));
            };
            if let Some(addr) = address_after(&line, "lanner listening on ") {
                return Server {
                    child,
                    addr,
                    data_dir: data_dir.to_owned(),
                    _temp: None,
                    log,
                };
            }
            seen.push(line);
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Runs `lannerctl --server <this server> args...`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        ctl_with_input(
            &[&["--server", &self.addr.to_string()], args].concat(),
            None,
        )
    }

    /// Runs lannerctl against this server with `input` on its standard input.
    pub fn ctl_input(&self, args: &[&str], input: &[u8]) -> Output {
        ctl_with_input(
            &[&["--server", &self.addr.to_string()], args].concat(),
            Some(input),
        )
    }

    /// SIGTERM, then waits for a clean exit (journals fsynced).
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "lanner exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "lanner did not stop");
            // Draining the log keeps the server from blocking on a full pipe.
            let _ = self.log.recv_timeout(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `lannerctl args...` (no server flag added).
pub fn ctl(args: &[&str]) -> Output {
    ctl_with_input(args, None)
}

fn ctl_with_input(args: &[&str], input: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lannerctl"))
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lannerctl");
    if let Some(input) = input {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).expect("write stdin");
    }
    child.wait_with_output().expect("lannerctl output")
}

/// Standard output of a run that must have succeeded.
pub fn success(output: &Output) -> String {
    assert!(
        output.status.success(),
        "lannerctl failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

/// Parses standard output of a successful run as one JSON value.
pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_str(&success(output)).expect("JSON output")
}

fn address_after(line: &str, prefix: &str) -> Option<SocketAddr> {
    let rest = line.split(prefix).nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}
