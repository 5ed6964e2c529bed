//! Test harness: runs the real `lanner` server binary through the shared harness
//! (`lanner-testkit`, which also builds it when needed) and the real `lannerctl` binary.

#![allow(dead_code)] // each test file uses its own subset of the harness

use std::ops::Deref;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use lanner_testkit::{Lanner, Launch};

/// How long any single expected event may take before a test fails (the shared bound).
pub const PATIENCE: Duration = lanner_testkit::PATIENCE;

/// Pause between two polls of a condition: each poll here runs a `lannerctl` process.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A running `lanner` process (the shared harness's [`Lanner`]) to run `lannerctl` against.
pub struct Server(Lanner);

impl Deref for Server {
    type Target = Lanner;

    fn deref(&self) -> &Lanner {
        &self.0
    }
}

impl Server {
    /// Starts a server with a fresh temporary data directory.
    pub fn start() -> Server {
        Server(Launch::default().start())
    }

    /// Starts a server on `data_dir` with extra flags; waits until it listens.
    pub fn start_in(data_dir: &Path, args: &[&str]) -> Server {
        Server(Launch::default().data_dir(data_dir).args(args).start())
    }

    /// Starts a server whose configuration file holds `toml`.
    pub fn start_with_config(toml: &str) -> Server {
        Server(Launch::default().config(toml).start())
    }

    /// Runs `lannerctl --server <this server> args...`.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_env(args, &[])
    }

    /// Runs `lannerctl --server <this server> args...` with extra environment variables.
    pub fn ctl_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        ctl_with_input(
            &[&["--server", &self.addr.to_string()], args].concat(),
            None,
            env,
        )
    }

    /// Runs lannerctl against this server with `input` on its standard input.
    pub fn ctl_input(&self, args: &[&str], input: &[u8]) -> Output {
        ctl_with_input(
            &[&["--server", &self.addr.to_string()], args].concat(),
            Some(input),
            &[],
        )
    }

    /// SIGTERM, then waits for a clean exit (journals fsynced).
    pub fn stop(mut self) {
        let status = self.0.terminate();
        assert!(status.success(), "lanner exited with {status}");
    }
}

/// Runs `lannerctl args...` (no server flag added).
pub fn ctl(args: &[&str]) -> Output {
    ctl_with_input(args, None, &[])
}

/// Runs lannerctl with `env` on top of the test's environment, less any `LANNER_PASSWORD` the
/// test itself was started with.
fn ctl_with_input(args: &[&str], input: Option<&[u8]>, env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lannerctl"))
        .args(args)
        .env_remove("LANNER_PASSWORD")
        .envs(env.iter().copied())
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
