//! A running `lanner` process.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::Instant;

use tempfile::TempDir;

use crate::launch::Launch;
use crate::log::{Log, address_after};
use crate::{PATIENCE, POLL_INTERVAL};

const TEXT_LISTENING: &str = "lanner text protocol listening on ";
const ADMIN_LISTENING: &str = "lanner admin listening on ";
/// What the log says when the listening port is taken (the OS error's text).
const ADDRESS_IN_USE: &str = "Address already in use";

/// A running `lanner` process, started by a [`Launch`]; killed when dropped.
pub struct Lanner {
    child: Child,
    /// The memcache listener's address.
    pub addr: SocketAddr,
    /// The text protocol's address, for a server launched with [`Launch::text_listener`].
    pub text_addr: Option<SocketAddr>,
    /// The admin HTTP port's address, for a server launched with [`Launch::admin_listener`].
    pub admin_addr: Option<SocketAddr>,
    log: Log,
    launch: Launch,
    /// Holds the default data directory and the written configuration file.
    _temp: TempDir,
}

impl Lanner {
    /// Starts a settled `launch` on its listening address.
    pub(crate) fn spawn(launch: Launch, temp: TempDir) -> Result<Lanner, String> {
        let (child, log, addr) = start_process(&launch, &launch.listen)?;
        let mut lanner = Lanner {
            child,
            addr,
            text_addr: None,
            admin_addr: None,
            log,
            launch,
            _temp: temp,
        };
        lanner.find_listeners();
        Ok(lanner)
    }

    /// Waits for the listening lines of the text protocol and the admin port, if launched.
    fn find_listeners(&mut self) {
        self.text_addr = self
            .launch
            .text_listener
            .then(|| self.logged_address(TEXT_LISTENING));
        self.admin_addr = self
            .launch
            .admin_listener
            .then(|| self.logged_address(ADMIN_LISTENING));
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.launch.settled_data_dir()
    }

    /// Waits for a log line containing `needle`: one logged before the server listened, else
    /// the next one since the last wait (lines passed over are dropped). Panics after
    /// [`PATIENCE`].
    pub fn wait_for_log(&self, needle: &str) -> String {
        self.log.wait_for(needle)
    }

    /// The address in the log line `<prefix><address>` (e.g. `"lanner TLS listening on "`),
    /// waiting for it as [`Lanner::wait_for_log`] does.
    pub fn logged_address(&self, prefix: &str) -> SocketAddr {
        let line = self.wait_for_log(prefix);
        address_after(&line, prefix).unwrap_or_else(|| panic!("no address in {line:?}"))
    }

    /// Kills the process with SIGKILL (no shutdown work at all) and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL lanner");
        self.child.wait().expect("reap lanner");
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit()
    }

    /// Sends the signal `name` (e.g. `"HUP"`) to the process, with kill(1): the workspace
    /// forbids `unsafe`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits (bounded by [`PATIENCE`]) for the process to exit by itself.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "lanner did not exit");
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Starts the server again, once it has exited (after [`Lanner::kill`] or
    /// [`Lanner::terminate`]): on the same address, data directory, configuration and flags,
    /// for clients that must find it where it was. Retries (bounded by [`PATIENCE`]) only while
    /// the port is still held by the old sockets; any other failure to start fails at once.
    pub fn restart(&mut self) {
        let listen = self.addr.to_string();
        let deadline = Instant::now() + PATIENCE;
        loop {
            match start_process(&self.launch, &listen) {
                Ok(started) => return self.replace_process(started),
                Err(log) if log.contains(ADDRESS_IN_USE) && Instant::now() < deadline => {}
                Err(log) => panic!("lanner did not restart on {listen}:\n{log}"),
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Starts the server again, once it has exited, on a free loopback port (updating
    /// [`Lanner::addr`]) with the same data directory, configuration and flags. Unlike
    /// [`Lanner::restart`] it cannot collide with another test that was given the old port.
    pub fn restart_on_new_port(&mut self) {
        match start_process(&self.launch, "127.0.0.1:0") {
            Ok(started) => self.replace_process(started),
            Err(log) => panic!("lanner did not restart:\n{log}"),
        }
    }

    fn replace_process(&mut self, (child, log, addr): (Child, Log, SocketAddr)) {
        self.child = child;
        self.log = log;
        self.addr = addr;
        self.find_listeners();
    }

    /// Replaces the contents of the configuration file the server was started with.
    pub fn rewrite_config(&self, toml: &str) {
        let path = self
            .launch
            .config_path()
            .expect("server started with a config file");
        std::fs::write(path, toml).expect("rewrite config");
    }

    /// The process's resident memory in KiB (`VmRSS` from `/proc`).
    pub fn resident_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line")
    }
}

impl Drop for Lanner {
    fn drop(&mut self) {
        drop(self.child.kill());
        drop(self.child.wait());
    }
}

/// Starts the process of a settled `launch` on `listen` and waits until it listens; the
/// error is its log (the process is then reaped).
fn start_process(launch: &Launch, listen: &str) -> Result<(Child, Log, SocketAddr), String> {
    let mut child = launch.command(listen).spawn().expect("spawn lanner");
    let stderr = child.stderr.take().expect("piped stderr");
    match Log::until_listening(stderr) {
        Ok((log, addr)) => Ok((child, log, addr)),
        Err(log) => {
            drop(child.kill());
            drop(child.wait());
            Err(log)
        }
    }
}
