//! `lanner-bench`: drives a lanner (or any Kestrel-compatible) server over the memcache protocol
//! and reports throughput and latency. Every run is bounded by its message count.
//!
//! Scenarios: `produce` sets `--messages` items over `--connections` connections, each keeping
//! `--pipeline` requests in flight; `consume` drains them the same way and verifies that every
//! payload (producer id + sequence number) arrives exactly once.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;

#[derive(Debug, Parser)]
#[command(name = "lanner-bench", version, about)]
struct Args {
    /// What to run
    #[arg(value_enum)]
    scenario: Scenario,
    /// Server address (loopback only)
    #[arg(long, default_value = "127.0.0.1:22133")]
    addr: SocketAddr,
    /// Queue name
    #[arg(long, default_value = "bench")]
    queue: String,
    /// Messages in total
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Payload size in bytes (at least 16, to carry the producer id and sequence number)
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Connections, each on its own thread
    #[arg(long, default_value_t = 1)]
    connections: u64,
    /// Requests in flight per connection (1 = one round trip at a time)
    #[arg(long, default_value_t = 1)]
    pipeline: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Produce,
    Consume,
}

/// What one connection measured.
struct Report {
    latency_us: Histogram<u64>,
    payloads: Vec<Vec<u8>>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        args.addr.ip().is_loopback(),
        "lanner-bench only targets loopback addresses"
    );
    ensure!(args.size >= 16, "--size must be at least 16");
    ensure!(
        args.connections > 0 && args.pipeline > 0,
        "--connections and --pipeline must be positive"
    );
    let started = Instant::now();
    let reports = run_connections(&args)?;
    let elapsed = started.elapsed();
    print_summary(&args, &reports, elapsed)
}

fn run_connections(args: &Args) -> Result<Vec<Report>> {
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..args.connections)
            .map(|producer| {
                let share = args.messages / args.connections
                    + u64::from(producer < args.messages % args.connections);
                scope.spawn(move || run_connection(args, producer, share))
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("bench worker panicked"))
            .collect()
    })
}

fn run_connection(args: &Args, producer: u64, count: u64) -> Result<Report> {
    let stream = TcpStream::connect(args.addr).with_context(|| format!("connect {}", args.addr))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::with_capacity(256 * 1024, stream.try_clone()?);
    let mut writer = stream;
    let mut report = Report {
        latency_us: Histogram::new(3)?,
        payloads: Vec::new(),
    };
    let mut sent_at = std::collections::VecDeque::new();
    let mut request = Vec::new();
    let (mut sent, mut answered) = (0, 0);
    while answered < count {
        while sent < count && sent - answered < args.pipeline {
            encode_request(args, producer, sent, &mut request);
            sent_at.push_back(Instant::now());
            sent += 1;
        }
        writer.write_all(&request)?;
        request.clear();
        let in_flight = sent - answered;
        for _ in 0..in_flight {
            read_reply(args.scenario, &mut reader, &mut report.payloads)?;
            let started = sent_at.pop_front().expect("a request in flight");
            report
                .latency_us
                .record(started.elapsed().as_micros() as u64)?;
            answered += 1;
        }
    }
    Ok(report)
}

fn encode_request(args: &Args, producer: u64, sequence: u64, out: &mut Vec<u8>) {
    match args.scenario {
        Scenario::Produce => {
            out.extend_from_slice(format!("set {} 0 0 {}\r\n", args.queue, args.size).as_bytes());
            out.extend_from_slice(&producer.to_le_bytes());
            out.extend_from_slice(&sequence.to_le_bytes());
            out.resize(out.len() + args.size - 16, b'x');
            out.extend_from_slice(b"\r\n");
        }
        Scenario::Consume => out.extend_from_slice(format!("get {}\r\n", args.queue).as_bytes()),
    }
}

fn read_reply(
    scenario: Scenario,
    reader: &mut BufReader<TcpStream>,
    payloads: &mut Vec<Vec<u8>>,
) -> Result<()> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    match scenario {
        Scenario::Produce if line == "STORED\r\n" => Ok(()),
        Scenario::Consume if line == "END\r\n" => {
            bail!("queue ran dry before every message was consumed")
        }
        Scenario::Consume if line.starts_with("VALUE ") => {
            let len: usize = line
                .trim_end()
                .rsplit(' ')
                .next()
                .context("VALUE line")?
                .parse()?;
            let mut data = vec![0; len + 2];
            reader.read_exact(&mut data)?;
            data.truncate(len);
            payloads.push(data);
            line.clear();
            reader.read_line(&mut line)?;
            ensure!(
                line == "END\r\n",
                "expected END after a value, got {line:?}"
            );
            Ok(())
        }
        _ => bail!("unexpected reply {line:?}"),
    }
}

fn print_summary(args: &Args, reports: &[Report], elapsed: Duration) -> Result<()> {
    let mut latency = Histogram::<u64>::new(3)?;
    for report in reports {
        latency.add(&report.latency_us)?;
    }
    let (lost, duplicated) = verify(args, reports);
    let rate = args.messages as f64 / elapsed.as_secs_f64();
    let megabytes = rate * args.size as f64 / 1e6;
    println!(
        "{{\"scenario\":\"{:?}\",\"messages\":{},\"size\":{},\"connections\":{},\"pipeline\":{},\"seconds\":{:.3},\"msgs_per_s\":{:.0},\"mb_per_s\":{:.1},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"lost\":{},\"duplicated\":{}}}",
        args.scenario,
        args.messages,
        args.size,
        args.connections,
        args.pipeline,
        elapsed.as_secs_f64(),
        rate,
        megabytes,
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.99),
        latency.value_at_quantile(0.999),
        lost,
        duplicated,
    );
    ensure!(
        lost == 0 && duplicated == 0,
        "delivery check failed: {lost} lost, {duplicated} duplicated"
    );
    Ok(())
}

/// Lost and duplicated messages among the consumed payloads (zero for a produce run).
fn verify(args: &Args, reports: &[Report]) -> (u64, u64) {
    if args.scenario != Scenario::Consume {
        return (0, 0);
    }
    let mut seen = HashSet::new();
    let mut duplicated = 0;
    for payload in reports.iter().flat_map(|report| &report.payloads) {
        let id: [u8; 16] = payload[..16].try_into().unwrap_or([0; 16]);
        if !seen.insert(id) {
            duplicated += 1;
        }
    }
    (args.messages.saturating_sub(seen.len() as u64), duplicated)
}
