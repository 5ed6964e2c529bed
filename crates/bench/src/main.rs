//! `lanner-bench`: drives lanner (Kestrel's memcache queue protocol), Redis lists or memcached
//! with the same work, verifies that every message arrives exactly once, and reports throughput,
//! latency percentiles and the server's memory. Every run is bounded by a message count and a
//! duration, and only targets loopback addresses. See `docs/benchmarks.md`.
//!
//! Threads, not async: each connection is one blocking thread that writes a batch of
//! `--pipeline` requests and reads their replies, which keeps the client cheap and predictable on
//! a small machine the client shares with the server.

use anyhow::{Result, bail};
use clap::Parser;

use lanner_bench::cli::{Cli, Command};
use lanner_bench::{scenarios, smoke, torture};

fn main() -> Result<()> {
    let cli = Cli::parse();
    let run = match &cli.command {
        Command::Smoke { server, seconds } => return smoke::run(server, *seconds),
        Command::Torture { options } => return run_torture(options),
        Command::Produce { common, produce } => {
            common.validate()?;
            scenarios::produce(common, produce)?
        }
        Command::Consume {
            common,
            expect,
            drain,
        } => {
            common.validate()?;
            scenarios::consume(common, expect, *drain)?
        }
        Command::Mixed {
            common,
            producers,
            consumers,
            timeout_ms,
            rate,
        } => {
            common.validate()?;
            scenarios::mixed(common, *producers, *consumers, *timeout_ms, *rate)?
        }
        Command::Reliable {
            common,
            expect,
            timeout_ms,
        } => {
            common.validate()?;
            scenarios::reliable(common, expect, *timeout_ms)?
        }
        Command::Fanin { common, idle } => {
            common.validate()?;
            scenarios::fanin(common, *idle)?
        }
        Command::Restart {
            common,
            spawn,
            spawn_log,
        } => {
            common.validate()?;
            scenarios::restart(common, spawn, spawn_log.as_deref())?.0
        }
    };
    run.print();
    if !run.ok {
        bail!(
            "run failed: {}",
            run.first_error
                .as_deref()
                .unwrap_or("delivery check failed")
        );
    }
    Ok(())
}

fn run_torture(options: &torture::Options) -> Result<()> {
    let report = torture::run(options)?;
    report.print();
    if !report.ok() {
        bail!(
            "{} invariant violation(s); repeat with --seed {}",
            report.counts.violations,
            report.seed
        );
    }
    Ok(())
}
