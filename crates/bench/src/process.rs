//! The server process as seen from outside: find it by its listening port, read its memory from
//! `/proc/<pid>/status`, kill it, start it.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

/// Memory figures of a process, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Memory {
    /// `VmHWM`: the peak resident set size since the process started.
    pub peak_rss_kib: u64,
    /// `VmRSS`: the resident set size now.
    pub rss_kib: u64,
}

/// Reads `VmHWM` and `VmRSS` of `pid`.
pub fn memory(pid: u32) -> Result<Memory> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    Ok(parse_status(&status))
}

fn parse_status(status: &str) -> Memory {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Memory {
        peak_rss_kib: field("VmHWM:"),
        rss_kib: field("VmRSS:"),
    }
}

/// CPU time (user + system) a process has used so far, in seconds, from `/proc/<pid>/stat`
/// (clock ticks of 1/100 s, Linux's USER_HZ).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu(&stat)
}

fn parse_cpu(stat: &str) -> Option<f64> {
    // Fields after the parenthesised command name (which may contain spaces): state is field 3,
    // utime field 14 and stime field 15 of the whole line.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// CPU used by the server and by this tool between [`CpuMeter::start`] and [`CpuMeter::stop`].
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    server: Option<(u32, f64)>,
    client: Option<f64>,
}

/// What a [`CpuMeter`] measured, in seconds of CPU.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    pub server: Option<f64>,
    pub client: Option<f64>,
}

impl CpuMeter {
    pub fn start(server: Option<u32>) -> Self {
        Self {
            server: server.and_then(|pid| Some((pid, cpu_seconds(pid)?))),
            client: cpu_seconds(std::process::id()),
        }
    }

    pub fn stop(&self) -> CpuUse {
        CpuUse {
            server: self
                .server
                .and_then(|(pid, before)| Some(cpu_seconds(pid)? - before)),
            client: self
                .client
                .and_then(|before| Some(cpu_seconds(std::process::id())? - before)),
        }
    }
}

/// The pid of the process listening on `addr`'s TCP port: the socket's inode from
/// `/proc/net/tcp{,6}`, then the process holding `socket:[inode]` among `/proc/*/fd`.
pub fn pid_listening_on(addr: SocketAddr) -> Result<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = fs::read_to_string(table) {
            inodes.extend(listening_inodes(&text, addr.port()));
        }
    }
    ensure!(
        !inodes.is_empty(),
        "nothing listens on port {}",
        addr.port()
    );
    let targets: Vec<String> = inodes
        .iter()
        .map(|inode| format!("socket:[{inode}]"))
        .collect();
    for entry in fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = fs::read_link(fd.path())
                && targets
                    .iter()
                    .any(|target| link.as_os_str() == target.as_str())
            {
                return Ok(pid);
            }
        }
    }
    bail!(
        "no process holds the socket listening on port {}",
        addr.port()
    )
}

/// Inodes of sockets in state LISTEN (0A) on `port` in a `/proc/net/tcp` table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let local_port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            (local_port == port && *fields.get(3)? == "0A")
                .then(|| fields.get(9)?.parse().ok())
                .flatten()
        })
        .collect()
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
        !status
            .lines()
            .any(|line| line.starts_with("State:") && line.contains('Z'))
    })
}

/// Sends `signal` (e.g. "KILL", "TERM") to `pid` with kill(1): the workspace forbids `unsafe`,
/// and this is off every measured path.
pub fn signal(pid: u32, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .context("run kill")?;
    ensure!(status.success(), "kill -{signal} {pid} failed");
    Ok(())
}

/// SIGKILLs `pid` and every descendant (as a crash of the whole service would: Redis's AOF
/// rewrite child, for one, inherits the listening socket), then waits (bounded) until all are
/// gone or zombies, so the port and the files are released.
pub fn kill_and_wait(pid: u32) -> Result<()> {
    let mut victims = vec![pid];
    victims.extend(descendants(pid));
    for &victim in &victims {
        // A descendant may have exited meanwhile; only the server itself must be killable.
        let killed = signal(victim, "KILL");
        if victim == pid {
            killed?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for victim in victims {
        while alive(victim) {
            ensure!(Instant::now() < deadline, "pid {victim} survived SIGKILL");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(())
}

/// Every process below `pid`, from the parent links in `/proc/*/stat`.
fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| {
                    let child: u32 = entry.file_name().to_str()?.parse().ok()?;
                    let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
                    Some((child, parent_of(&stat)?))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for &(child, of) in &parents {
            if of == parent && !found.contains(&child) {
                found.push(child);
                frontier.push(child);
            }
        }
    }
    found
}

/// The parent pid in a `/proc/<pid>/stat` line (field 4, after the parenthesised name).
fn parent_of(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Waits (bounded) until nothing listens on `addr`, by binding it ourselves.
pub fn wait_port_free(addr: SocketAddr, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if std::net::TcpListener::bind(addr).is_ok() {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{addr} is still in use {within:?} after the server was killed"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A server this tool started, once it listens.
pub struct Listening {
    pub child: Child,
    /// The address from its `lanner listening on <addr>` line.
    pub addr: SocketAddr,
    /// Lines it logged until then (recovery).
    pub startup_log: Vec<String>,
}

/// Starts `command` with stderr piped and waits (bounded by `within`) until it logs
/// `lanner listening on <addr>`. Its later output is read and dropped, so it never blocks on a
/// full pipe.
pub fn start_listening(mut command: Command, within: Duration) -> Result<Listening> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("start {command:?}"))?;
    let stderr = child.stderr.take().context("stderr")?;
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // Once the caller stopped listening the line is dropped; reading goes on.
            lines.send(line).ok();
        }
    });
    let deadline = Instant::now() + within;
    let mut startup_log = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = received.recv_timeout(left) else {
            child.kill().ok();
            child.wait().ok();
            bail!(
                "{command:?} did not log `lanner listening on` within {within:?}; it logged:\n{}",
                startup_log.join("\n")
            );
        };
        let addr = line
            .split("lanner listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok());
        startup_log.push(line);
        if let Some(addr) = addr {
            return Ok(Listening {
                child,
                addr,
                startup_log,
            });
        }
    }
}

/// Starts `command` (split on whitespace; no shell) with its output appended to `log`.
pub fn spawn(command: &str, log: Option<&str>) -> Result<Child> {
    let mut words = command.split_whitespace();
    let program = words.next().context("empty server command")?;
    let mut builder = Command::new(program);
    builder.args(words).stdin(Stdio::null());
    match log {
        Some(path) => {
            let file = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("open {path}"))?;
            builder.stdout(file.try_clone()?).stderr(file);
        }
        None => {
            builder.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    builder
        .spawn()
        .with_context(|| format!("start {command:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_fields() {
        let status = "Name:\tlanner\nVmPeak:\t  900 kB\nVmHWM:\t   12345 kB\nVmRSS:\t    2345 kB\n";
        assert_eq!(
            parse_status(status),
            Memory {
                peak_rss_kib: 12345,
                rss_kib: 2345
            }
        );
    }

    #[test]
    fn finds_parents_and_descendants() {
        assert_eq!(parent_of("77 (a) b) S 42 77 77 0"), Some(42));
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        assert!(descendants(std::process::id()).contains(&child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn reads_cpu_ticks() {
        let stat = "4242 (lanner (x) y) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 3 0";
        assert_eq!(parse_cpu(stat), Some(3.0));
        assert_eq!(parse_cpu("garbage"), None);
        assert!(cpu_seconds(std::process::id()).is_some());
    }

    #[test]
    fn finds_listening_sockets() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:5695 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:5695 0100007F:D2C4 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1\n\
   2: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(listening_inodes(table, 0x5695), vec![4242]);
        assert_eq!(listening_inodes(table, 0x1F90), vec![4444]);
        assert!(listening_inodes(table, 1).is_empty());
    }

    #[test]
    fn finds_a_listener_of_this_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let pid = pid_listening_on(listener.local_addr().unwrap()).unwrap();
        assert_eq!(pid, std::process::id());
        let memory = memory(pid).unwrap();
        assert!(memory.peak_rss_kib >= memory.rss_kib && memory.rss_kib > 0);
    }
}
