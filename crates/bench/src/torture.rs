//! `lanner-bench torture`: crash torture of a real `lanner` binary.
//!
//! Each cycle runs producers, reliable readers (`get q/open` ... `/close/open`, `/close`,
//! `/abort`) and plain readers (`get q`, `get q/t=..`) against the server, SIGKILLs it after a
//! random delay, starts it again on the same data directory, and reads its whole queue (every
//! item opened on one connection, then given back by closing it) to check the ledger's
//! invariants (see [`ledger`]). After the last cycle the queue is drained, the server killed and
//! restarted once more (nothing confirmed may come back), and finally stopped with SIGTERM.
//!
//! The server runs on 127.0.0.1 with a port it picks, in a temporary data directory. Delays and
//! client choices come from one seeded RNG; the seed is printed first so a failing run can be
//! repeated (thread scheduling still varies).

mod clients;
mod ledger;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, Parser};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use crate::conn::Conn;
use crate::payload::{self, HEADER_LEN};
use crate::process;
use crate::proto::{Proto, Reply};
pub use ledger::Counts;
use ledger::{CycleEvents, Id, Ledger};

/// Longest a restart may take until the server listens again.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a SIGTERM'd server may take to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Gets per batch when the whole queue is read.
const READ_BATCH: usize = 100;

/// Options of a torture run.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// The lanner binary
    #[arg(long, default_value = "target/debug/lanner")]
    pub server: PathBuf,
    /// Crash cycles (load, SIGKILL, restart, check)
    #[arg(long, default_value_t = 20)]
    pub cycles: u32,
    /// Shortest load before the kill, in milliseconds
    #[arg(long, default_value_t = 100)]
    pub min_run_ms: u64,
    /// Longest load before the kill, in milliseconds
    #[arg(long, default_value_t = 500)]
    pub max_run_ms: u64,
    /// Seed of the RNG choosing kill delays and client actions [default: from the clock]
    #[arg(long)]
    pub seed: Option<u64>,
    /// The queues' `sync` setting: "always", "never" or an interval such as "100ms"
    #[arg(long, default_value = "100ms")]
    pub sync: String,
    /// Producer connections
    #[arg(long, default_value_t = 3)]
    pub producers: u32,
    /// Reliable-reader connections (`/open`, `/close/open`, `/close`, `/abort`)
    #[arg(long, default_value_t = 2)]
    pub reliable: u32,
    /// Plain-reader connections (`get q`, `get q/t=20`)
    #[arg(long, default_value_t = 2)]
    pub plain: u32,
    /// Most requests a producer or plain reader writes as one batch
    #[arg(long, default_value_t = 8)]
    pub pipeline: usize,
    /// Largest payload in bytes (each payload's size is random, from 24)
    #[arg(long, default_value_t = 1024)]
    pub max_size: usize,
    /// Producers pause while this many items are queued
    #[arg(long, default_value_t = 2000)]
    pub backlog: u32,
    /// The queues' journal_segment_size (small: frequent segment switches and compactions)
    #[arg(long, default_value = "256KiB")]
    pub journal_segment_size: String,
    /// The queues' max_memory_size (small: items spill to disk and are read back)
    #[arg(long, default_value = "256KiB")]
    pub max_memory_size: String,
    /// Longest one cycle (load, kill, restart, queue check) may take, in seconds
    #[arg(long, default_value_t = 60)]
    pub cycle_timeout: u64,
    /// Queue name
    #[arg(long, default_value = "torture")]
    pub queue: String,
    /// Self-check of the tool: make the queue memory-only (`keep_journal = false`), so every
    /// restart loses it and the run must report violations
    #[arg(long)]
    pub memory_only: bool,
}

impl Options {
    /// Options from command-line words (without the subcommand), defaults for the rest.
    pub fn parse_from<I, T>(words: I) -> Result<Self>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(Parser)]
        struct Line {
            #[command(flatten)]
            options: Options,
        }
        let words = std::iter::once(std::ffi::OsString::from("torture"))
            .chain(words.into_iter().map(Into::into));
        Ok(Line::try_parse_from(words)?.options)
    }

    fn validate(&self) -> Result<()> {
        ensure!(self.cycles > 0, "--cycles must be at least 1");
        ensure!(
            self.min_run_ms <= self.max_run_ms,
            "--min-run-ms must not exceed --max-run-ms"
        );
        ensure!(self.producers > 0, "--producers must be at least 1");
        ensure!(self.pipeline > 0, "--pipeline must be at least 1");
        ensure!(
            self.max_size >= HEADER_LEN,
            "--max-size must be at least {HEADER_LEN}"
        );
        Ok(())
    }

    /// The server's configuration file: the queue settings under test, and room for the
    /// inspection to hold every queued item open on one connection.
    fn config(&self) -> String {
        let quoted = |text: &str| format!("{text:?}");
        format!(
            "[server]\nmax_open_transactions = 1000000\n\n[default]\nsync = {}\n\
             journal_segment_size = {}\nmax_memory_size = {}\nkeep_journal = {}\n",
            quoted(&self.sync),
            quoted(&self.journal_segment_size),
            quoted(&self.max_memory_size),
            !self.memory_only
        )
    }
}

/// What a torture run found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub seed: u64,
    pub sync: String,
    pub cycles: u32,
    pub seconds: f64,
    #[serde(flatten)]
    pub counts: Counts,
    /// Restarts that truncated a torn journal tail (a record cut off by the kill).
    pub torn_tails_truncated: u64,
    /// Other warnings or errors logged during recovery.
    pub recovery_warnings: u64,
    pub first_violations: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.counts.violations == 0
    }

    /// One JSON line on stdout, a summary (and the first violations) on stderr.
    pub fn print(&self) {
        println!(
            "{}",
            serde_json::to_string(self).expect("a report serialises")
        );
        eprintln!("{}", self.summary());
    }

    pub fn summary(&self) -> String {
        let c = &self.counts;
        let mut text = format!(
            "torture: seed {} sync {} | {} cycles in {:.1} s | sets: {} sent, {} acknowledged, \
             {} in doubt ({} kept, {} dropped), {} refused | delivered: {} plain, {} reliable, \
             {} drained at the end | plain gets in doubt: {} ({} took an item) | closes in \
             doubt: {} ({} came back) | aborted: {}, held at kill: {} | torn tails truncated: \
             {}, other recovery warnings: {} | violations: {}",
            self.seed,
            self.sync,
            self.cycles,
            self.seconds,
            c.sets_sent,
            c.sets_acked,
            c.sets_in_doubt,
            c.sets_in_doubt_kept,
            c.sets_in_doubt_dropped,
            c.sets_refused,
            c.delivered_plain,
            c.delivered_reliable,
            c.drained_at_end,
            c.plain_gets_in_doubt,
            c.taken_by_gets_in_doubt,
            c.closes_in_doubt,
            c.closes_in_doubt_returned,
            c.aborted,
            c.held_at_kill,
            self.torn_tails_truncated,
            self.recovery_warnings,
            c.violations
        );
        for violation in &self.first_violations {
            write!(text, "\n  violation: {violation}").expect("string");
        }
        text
    }
}

/// Runs the torture. An `Err` means the run could not go on (a server that would not start or
/// answer); violations of the invariants are in the report.
pub fn run(options: &Options) -> Result<Report> {
    options.validate()?;
    let seed = options.seed.unwrap_or_else(clock_seed);
    eprintln!(
        "torture: seed {seed} (repeat with --seed {seed}), sync {}",
        options.sync
    );
    let dir = tempfile::Builder::new()
        .prefix("lanner-torture")
        .tempdir()?;
    let config = dir.path().join("lanner.toml");
    std::fs::write(&config, options.config())?;
    let mut torture = Torture {
        options,
        config,
        data_dir: dir.path().join("data"),
        rng: Xoshiro256PlusPlus::seed_from_u64(seed),
        ledger: Ledger::new(options.producers),
        torn_tails: 0,
        recovery_warnings: 0,
    };
    let started = Instant::now();
    let mut server = torture.start()?;
    for cycle in 0..options.cycles {
        let cycle_started = Instant::now();
        let events = torture.load_then_kill(&mut server, cycle)?;
        torture.ledger.apply(cycle, events);
        server = torture.start()?;
        torture.check_queue(server.addr, cycle)?;
        // The check held every item open; the next load starts from a settled queue.
        wait_until_given_back(server.addr, &options.queue)?;
        ensure!(
            cycle_started.elapsed() < Duration::from_secs(options.cycle_timeout),
            "cycle {cycle} took {:?}, over --cycle-timeout {} s",
            cycle_started.elapsed(),
            options.cycle_timeout
        );
        let counts = &torture.ledger.counts;
        eprintln!(
            "torture: cycle {cycle}: so far {} acknowledged, {} delivered; {} queued, {} \
             violation(s)",
            counts.sets_acked,
            counts.delivered_plain + counts.delivered_reliable,
            torture.ledger.queued(),
            counts.violations
        );
    }
    torture.finish(server)?;
    let ledger = torture.ledger;
    Ok(Report {
        seed,
        sync: options.sync.clone(),
        cycles: options.cycles,
        seconds: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        counts: ledger.counts,
        torn_tails_truncated: torture.torn_tails,
        recovery_warnings: torture.recovery_warnings,
        first_violations: ledger.first_violations().to_vec(),
    })
}

fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

/// A running server.
struct Server {
    child: Child,
    addr: SocketAddr,
}

struct Torture<'a> {
    options: &'a Options,
    config: PathBuf,
    data_dir: PathBuf,
    rng: Xoshiro256PlusPlus,
    ledger: Ledger,
    torn_tails: u64,
    recovery_warnings: u64,
}

impl Torture<'_> {
    /// Starts the server on the data directory (recovering what an earlier one left) and
    /// counts what its recovery logged.
    fn start(&mut self) -> Result<Server> {
        let mut command = Command::new(&self.options.server);
        command
            .args([
                "--listen",
                "127.0.0.1:0",
                "--text-listen",
                "",
                "--admin-listen",
                "",
            ])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--config")
            .arg(&self.config)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info");
        let started = process::start_listening(command, START_TIMEOUT)
            .with_context(|| format!("start {}", self.options.server.display()))?;
        let truncated = |line: &String| {
            line.contains("truncated a torn or corrupt tail")
                || line.contains("journal truncated at a damaged record")
        };
        if started.startup_log.iter().any(truncated) {
            self.torn_tails += 1;
        }
        for line in started.startup_log.iter().filter(|line| !truncated(line)) {
            if line.contains("WARN") || line.contains("ERROR") {
                self.recovery_warnings += 1;
                eprintln!("torture: the restart logged: {line}");
            }
        }
        Ok(Server {
            child: started.child,
            addr: started.addr,
        })
    }

    /// Runs every client against `server` and SIGKILLs it after a random delay; returns what
    /// the clients saw once they all noticed.
    fn load_then_kill(&mut self, server: &mut Server, cycle: u32) -> Result<CycleEvents> {
        let options = self.options;
        let backlog = AtomicI64::new(self.ledger.queued() as i64);
        let stop = AtomicBool::new(false);
        let shared = clients::Cycle {
            addr: server.addr,
            queue: &options.queue,
            cycle,
            pipeline: options.pipeline,
            max_size: options.max_size,
            backlog_cap: i64::from(options.backlog),
            backlog: &backlog,
            stop: &stop,
        };
        let delay = Duration::from_millis(
            self.rng
                .random_range(options.min_run_ms..=options.max_run_ms),
        );
        let first_seqs: Vec<u64> = (0..options.producers)
            .map(|producer| self.ledger.next_seq(producer))
            .collect();
        let rng = &mut self.rng;
        thread::scope(|scope| {
            let shared = &shared;
            let mut clients = Vec::new();
            for (producer, first) in (0..options.producers).zip(first_seqs) {
                let seed = rng.random();
                clients.push(scope.spawn(move || clients::produce(shared, producer, first, seed)));
            }
            for _ in 0..options.reliable {
                let seed = rng.random();
                clients.push(scope.spawn(move || clients::take_reliably(shared, seed)));
            }
            for _ in 0..options.plain {
                let seed = rng.random();
                clients.push(scope.spawn(move || clients::take_plain(shared, seed)));
            }
            // The random moment of the crash, not a wait for a condition.
            thread::sleep(delay);
            let killed = kill(server, cycle);
            stop.store(true, Relaxed);
            let mut events = CycleEvents::default();
            for client in clients {
                events.merge(client.join().expect("a torture client panicked"));
            }
            killed.map(|()| events)
        })
    }

    /// Reads the restarted server's whole queue and checks it against the ledger.
    fn check_queue(&mut self, addr: SocketAddr, cycle: u32) -> Result<()> {
        let (queued, problems) = read_all(addr, &self.options.queue, "open")?;
        for problem in problems {
            self.ledger
                .violation(format!("after cycle {cycle}: {problem}"));
        }
        self.ledger.check_queue(cycle, &queued);
        Ok(())
    }

    /// Drains the queue (every item must come out once), kills and restarts the server (nothing
    /// may come back), then stops it with SIGTERM (it must exit cleanly).
    fn finish(&mut self, mut server: Server) -> Result<()> {
        wait_until_given_back(server.addr, &self.options.queue)?;
        let (drained, problems) = read_all(server.addr, &self.options.queue, "")?;
        for problem in problems {
            self.ledger.violation(format!("final drain: {problem}"));
        }
        self.ledger.check_drain(&drained);
        let cycles = self.options.cycles;
        kill(&mut server, cycles)?;
        let mut server = self.start()?;
        self.check_queue(server.addr, cycles)?;
        process::signal(server.child.id(), "TERM")?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(status) = server.child.try_wait()? {
                break status;
            }
            ensure!(
                Instant::now() < deadline,
                "the server did not stop within {STOP_TIMEOUT:?} of SIGTERM"
            );
            thread::sleep(Duration::from_millis(5));
        };
        if !status.success() {
            self.ledger
                .violation(format!("the server exited with {status} after SIGTERM"));
        }
        Ok(())
    }
}

/// SIGKILLs the server and reaps it. A server that already exited by itself crashed: an error.
fn kill(server: &mut Server, cycle: u32) -> Result<()> {
    if let Some(status) = server.child.try_wait()? {
        bail!("cycle {cycle}: the server exited by itself ({status}) before the kill");
    }
    server.child.kill().context("SIGKILL the server")?;
    server.child.wait().context("reap the server")?;
    Ok(())
}

/// Takes every item of the queue with `get <queue>/<options>` in batches until it answers
/// empty: with `open`, every item is held open and given back when the connection closes; with
/// no options, the queue is drained. Returns the items and any damaged payloads.
fn read_all(addr: SocketAddr, queue: &str, options: &str) -> Result<(Vec<Id>, Vec<String>)> {
    let mut conn = Conn::connect_within(addr, Proto::Kestrel, CONNECT_TIMEOUT, REPLY_TIMEOUT)?;
    let key = if options.is_empty() {
        queue.to_owned()
    } else {
        format!("{queue}/{options}")
    };
    let batch = format!("get {key}\r\n").repeat(READ_BATCH);
    let mut items = Vec::new();
    let mut problems = Vec::new();
    loop {
        conn.send(batch.as_bytes())?;
        let mut empty = false;
        for _ in 0..READ_BATCH {
            match conn.reply()? {
                Reply::Value(range) => match payload::decode(conn.data(range), None) {
                    Ok(stamp) => items.push((stamp.producer, stamp.seq)),
                    Err(why) => problems.push(format!("a queued payload is damaged ({why:?})")),
                },
                Reply::Empty => empty = true,
                other => bail!("`get {key}` was answered {other:?}"),
            }
        }
        if empty {
            return Ok((items, problems));
        }
    }
}

/// Waits (bounded) until the server has given back the reads the queue check held open: it
/// returns them when it notices that connection closed, which a drain must not race.
fn wait_until_given_back(addr: SocketAddr, queue: &str) -> Result<()> {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    let stat = format!("STAT queue_{queue}_open_transactions ");
    loop {
        let open = stats(addr)?
            .lines()
            .find_map(|line| line.strip_prefix(stat.as_str())?.trim().parse::<u64>().ok());
        if open.is_none_or(|open| open == 0) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{open:?} reads still open {REPLY_TIMEOUT:?} after their connection closed"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// The `stats` reply, up to its `END` line.
fn stats(addr: SocketAddr) -> Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
    stream.write_all(b"stats\r\n")?;
    let mut reply = String::new();
    let mut reader = BufReader::new(stream);
    while !reply.ends_with("END\r\n") {
        ensure!(
            reader.read_line(&mut reply)? > 0,
            "the server closed the connection during `stats`"
        );
    }
    Ok(reply)
}
