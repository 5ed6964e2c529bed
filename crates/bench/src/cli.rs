//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::proto::Proto;

/// Load generator for lanner (Kestrel's memcache queue protocol), with Redis-list and memcached
/// modes so the same work runs against every peer. Prints one JSON line per run on stdout and a
/// table row on stderr; exits non-zero when a delivery check fails.
#[derive(Debug, Parser)]
#[command(name = "lanner-bench", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Put `--messages` items over `--connections` connections, `--pipeline` in flight each.
    Produce {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        produce: ProduceArgs,
    },
    /// Take the items a `produce` run put, and verify each arrived exactly once.
    Consume {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        expect: Expect,
        /// Take until the queue answers empty instead of exactly `--messages` items
        #[arg(long)]
        drain: bool,
    },
    /// `--producers` producers and `--consumers` blocking consumers at once for `--duration`
    /// seconds; reports the consumed rate and end-to-end latency, then drains and verifies.
    Mixed {
        #[command(flatten)]
        common: Common,
        /// Producer connections
        #[arg(long, default_value_t = 4)]
        producers: u64,
        /// Consumer connections, each with blocking reads
        #[arg(long, default_value_t = 4)]
        consumers: u64,
        /// Blocking read timeout in milliseconds (`get q/t=ms`, `BRPOP q s`)
        #[arg(long, default_value_t = 500)]
        timeout_ms: u32,
        /// Total produce rate in messages per second (0: as fast as possible)
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
    },
    /// Reliable reads of the items a `produce` run put: Kestrel `get q/open`, `get q/close/open`
    /// ... `get q/close`; Redis `BLMOVE` into a per-consumer list, then `LREM` once processed.
    Reliable {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        expect: Expect,
        /// Blocking timeout of each read in milliseconds
        #[arg(long, default_value_t = 500)]
        timeout_ms: u32,
    },
    /// Throughput of an active produce+consume load before and while `--idle` further
    /// connections are held open (after one warm-up load), and the server's memory growth
    /// for them.
    Fanin {
        #[command(flatten)]
        common: Common,
        /// Idle connections to hold open (raise `ulimit -n` first)
        #[arg(long, default_value_t = 10_000)]
        idle: u64,
    },
    /// SIGKILL the server, start it again with `--spawn`, and time from the spawn until it
    /// serves the head item (Kestrel `get q/peek`, Redis `LINDEX q -1`).
    Restart {
        #[command(flatten)]
        common: Common,
        /// The server command line (split on whitespace, no shell)
        #[arg(long)]
        spawn: String,
        /// Append the restarted server's output to this file
        #[arg(long)]
        spawn_log: Option<String>,
    },
    /// Crash torture: run producers and readers against a lanner binary it starts (loopback,
    /// temporary data directory), SIGKILL it at random moments, restart it on the same data,
    /// and check after every cycle that nothing acknowledged was lost and nothing confirmed
    /// came back. Exits non-zero on any violation. See docs/reliability.md (Crash torture).
    Torture {
        #[command(flatten)]
        options: crate::torture::Options,
    },
    /// Start a lanner binary on a free loopback port with a temporary data directory, run
    /// every Kestrel scenario briefly with delivery checks, and stop it. For CI.
    Smoke {
        /// The lanner binary
        #[arg(long, default_value = "target/debug/lanner")]
        server: PathBuf,
        /// Seconds for the mixed scenario
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
    },
}

/// Options every scenario shares.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Wire protocol of the server
    #[arg(long, value_enum, default_value_t = Proto::Kestrel)]
    pub proto: Proto,
    /// Server address (loopback only)
    #[arg(long, default_value = "127.0.0.1:22133")]
    pub addr: SocketAddr,
    /// Queue name (Redis list name; memcached key prefix)
    #[arg(long, default_value = "bench")]
    pub queue: String,
    /// Payload size in bytes (at least 24: producer id, sequence number, send time)
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Connections (for mixed: see --producers/--consumers)
    #[arg(long, default_value_t = 1)]
    pub connections: u64,
    /// Requests in flight per connection (1: one round trip at a time)
    #[arg(long, default_value_t = 1)]
    pub pipeline: u64,
    /// Messages in total (an upper bound for duration-bound runs)
    #[arg(long, default_value_t = 100_000)]
    pub messages: u64,
    /// Seconds: the length of mixed runs and of `--kill-at-end` produce runs; an upper bound
    /// for the others
    #[arg(long, default_value_t = 120.0)]
    pub duration: f64,
    /// The server's pid for memory figures (default: the process listening on --addr's port)
    #[arg(long)]
    pub pid: Option<u32>,
    /// Tag copied into the JSON line
    #[arg(long, default_value = "")]
    pub label: String,
    /// Server name copied into the JSON line (default: lanner, redis or memcached by --proto)
    #[arg(long)]
    pub server_name: Option<String>,
}

/// Produce options.
#[derive(Debug, Clone, Args)]
pub struct ProduceArgs {
    /// Total messages per second (0: as fast as possible)
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Run for --duration seconds, then SIGKILL the server while the producers are still
    /// sending; record what was acknowledged (see --acked-file)
    #[arg(long)]
    pub kill_at_end: bool,
    /// Write each producer's sent and acknowledged counts here, for `consume --expect-acked`
    #[arg(long)]
    pub acked_file: Option<PathBuf>,
}

/// What a consuming run expects to find.
#[derive(Debug, Clone, Args)]
pub struct Expect {
    /// How many producer connections put the messages (default: --connections)
    #[arg(long)]
    pub producers: Option<u64>,
    /// Expect exactly what this `produce --acked-file` recorded: every acknowledged message
    /// must arrive; unacknowledged ones may. Implies draining until empty.
    #[arg(long)]
    pub expect_acked: Option<PathBuf>,
}
