//! The scenarios: each starts its worker threads, supervises them, and turns what they measured
//! into one [`Run`].

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use hdrhistogram::Histogram;
use serde_json::Map;

use crate::cli::{Common, Expect, ProduceArgs};
use crate::process::{self, CpuMeter, Memory};
use crate::proto::{Proto, Requests};
use crate::report::{Latency, Run, histogram};
use crate::tracker::{Expected, share, shares, verify};
use crate::workers::{
    self, Consumed, ConsumerSpec, Errors, Produced, ProducerSpec, TakeKind, Target, Until,
};

/// How often a supervising thread looks at its workers.
const TICK: Duration = Duration::from_millis(1);

impl Common {
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.addr.ip().is_loopback(),
            "lanner-bench only targets loopback addresses"
        );
        ensure!(
            self.size >= crate::payload::HEADER_LEN,
            "--size must be at least {}",
            crate::payload::HEADER_LEN
        );
        ensure!(
            self.connections > 0 && self.pipeline > 0,
            "--connections and --pipeline must be positive"
        );
        ensure!(
            self.duration > 0.0 && self.duration <= 3600.0,
            "--duration must be in (0, 3600] seconds"
        );
        Ok(())
    }

    fn target(&self, queue: &str) -> Target {
        Target {
            addr: self.addr,
            requests: Requests {
                proto: self.proto,
                queue: queue.to_owned(),
            },
            size: self.size,
            epoch: Instant::now(),
        }
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration)
    }

    /// The server's pid: given, or the process listening on the port.
    fn server_pid(&self) -> Option<u32> {
        self.pid
            .or_else(|| process::pid_listening_on(self.addr).ok())
    }

    fn run(&self, scenario: &'static str, connections: u64) -> Run {
        let server = self.server_name.clone().unwrap_or_else(|| {
            match self.proto {
                Proto::Kestrel => "lanner",
                Proto::Redis => "redis",
                Proto::Memcached => "memcached",
            }
            .to_owned()
        });
        Run {
            label: self.label.clone(),
            server,
            proto: self.proto,
            scenario,
            size: self.size,
            connections,
            pipeline: self.pipeline,
            messages: 0,
            seconds: 0.0,
            msgs_per_s: 0.0,
            mb_per_s: 0.0,
            latency: Latency::default(),
            errors: 0,
            first_error: None,
            delivery: None,
            server_pid: None,
            memory: None,
            extra: Map::new(),
            ok: false,
        }
    }
}

fn note_memory(run: &mut Run, pid: Option<u32>) {
    run.server_pid = pid;
    run.memory = pid.and_then(|pid| process::memory(pid).ok());
}

fn merged<'a>(histograms: impl IntoIterator<Item = &'a Histogram<u64>>) -> Histogram<u64> {
    let mut all = histogram();
    for one in histograms {
        all.add(one).expect("histograms share bounds");
    }
    all
}

fn note_errors(run: &mut Run, errors: Errors) {
    run.errors += errors.count;
    if run.first_error.is_none() {
        run.first_error = errors.first;
    }
}

/// The outcome of a group of producers.
struct Production {
    results: Vec<Produced>,
    /// Messages acknowledged within the measured window, and its length.
    window_messages: u64,
    window: Duration,
}

/// Runs one producer per share; with `kill`, SIGKILLs that pid at the deadline while they are
/// still sending.
fn run_producers(
    target: &Target,
    shares: &[u64],
    spec: ProducerSpec,
    kill: Option<u32>,
) -> Result<Production> {
    let live: Vec<AtomicU64> = shares.iter().map(|_| AtomicU64::new(0)).collect();
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let mut window = None;
    let mut kill_error = None;
    let results = thread::scope(|scope| {
        let handles: Vec<_> = shares
            .iter()
            .enumerate()
            .map(|(producer, &share)| {
                let (live, stop) = (&live[producer], &stop);
                scope.spawn(move || {
                    workers::produce(target, spec, producer as u32, share, live, stop)
                })
            })
            .collect();
        let mut kill = kill;
        while !handles.iter().all(|handle| handle.is_finished()) {
            let now = Instant::now();
            if now >= spec.deadline
                && let Some(pid) = kill.take()
            {
                window = Some((live.iter().map(|n| n.load(Relaxed)).sum(), now - started));
                kill_error = process::kill_and_wait(pid).err();
            }
            if now >= spec.hard_deadline {
                stop.store(true, Relaxed);
            }
            thread::sleep(TICK);
        }
        let results: Vec<Produced> = handles
            .into_iter()
            .map(|handle| handle.join().expect("producer thread panicked"))
            .collect();
        if let Some(pid) = kill.take() {
            kill_error = process::kill_and_wait(pid).err();
        }
        results
    });
    if let Some(error) = kill_error {
        return Err(error.context("could not kill the server"));
    }
    let (window_messages, window) = window.unwrap_or_else(|| {
        let last = results.iter().map(|r| r.finished).max().unwrap_or(started);
        (results.iter().map(|r| r.acked).sum(), last - started)
    });
    Ok(Production {
        results,
        window_messages,
        window,
    })
}

/// `produce`.
pub fn produce(common: &Common, args: &ProduceArgs) -> Result<Run> {
    let target = common.target(&common.queue);
    let pid = common.server_pid();
    let kill = if args.kill_at_end {
        Some(pid.context("--kill-at-end needs the server's pid")?)
    } else {
        None
    };
    let deadline = Instant::now() + common.duration();
    let spec = ProducerSpec {
        pipeline: common.pipeline,
        deadline,
        hard_deadline: deadline + Duration::from_secs(if kill.is_some() { 15 } else { 0 }),
        until_error: kill.is_some(),
        rate: args.rate / common.connections as f64,
    };
    let mut run = common.run("produce", common.connections);
    let cpu = CpuMeter::start(pid);
    let production = run_producers(
        &target,
        &shares(common.messages, common.connections),
        spec,
        kill,
    )?;
    let cpu = cpu.stop();
    if kill.is_none() {
        note_memory(&mut run, pid);
    } else {
        run.server_pid = pid;
        run.put("killed", true);
    }
    run.rate(production.window_messages, production.window.as_secs_f64());
    if kill.is_none() {
        run.cpu(cpu);
    }
    run.latency = Latency::of(&merged(production.results.iter().map(|r| &r.latency)));
    let (sent, acked): (u64, u64) = production
        .results
        .iter()
        .fold((0, 0), |(s, a), r| (s + r.sent, a + r.acked));
    run.put("sent", sent);
    run.put("acked", acked);
    let mut disconnected = 0;
    for result in production.results.iter() {
        if let Some(why) = &result.disconnected {
            disconnected += 1;
            if kill.is_none() {
                note_errors(
                    &mut run,
                    Errors {
                        count: 1,
                        first: Some(why.clone()),
                    },
                );
            }
        }
    }
    if kill.is_some() {
        run.put("disconnected_by_kill", disconnected);
    }
    if let Some(path) = &args.acked_file {
        write_acked(path, &production.results)?;
    }
    for result in production.results {
        note_errors(&mut run, result.errors);
    }
    if kill.is_none() && acked < common.messages && run.errors == 0 {
        run.first_error = Some(format!(
            "--duration ended the run after {acked} of {} messages",
            common.messages
        ));
    }
    run.settle();
    Ok(run)
}

/// Each producer's `sent acked_prefix`, one line per producer.
fn write_acked(path: &Path, results: &[Produced]) -> Result<()> {
    let mut file =
        std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    for result in results {
        writeln!(file, "{} {}", result.sent, result.acked_prefix)?;
    }
    Ok(())
}

/// Reads a `--acked-file`: each producer's (sent, acked) counts.
fn read_acked(path: &Path) -> Result<(Vec<u64>, Vec<u64>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut sent = Vec::new();
    let mut acked = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let fields: Vec<u64> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("bad line {line:?} in {}", path.display()))?;
        ensure!(fields.len() == 2, "bad line {line:?} in {}", path.display());
        sent.push(fields[0]);
        acked.push(fields[1]);
    }
    Ok((sent, acked))
}

/// What a consuming run expects, and whether it takes until the queue is empty.
fn expectation(common: &Common, expect: &Expect, drain: bool) -> Result<(Expected, bool)> {
    if let Some(path) = &expect.expect_acked {
        let (capacities, required) = read_acked(path)?;
        return Ok((
            Expected::Exactly {
                capacities,
                required,
            },
            true,
        ));
    }
    // memcached needs the layout to name the keys; queues can infer it from the payloads.
    let producers = match (expect.producers, common.proto) {
        (Some(producers), _) => Some(producers),
        (None, Proto::Memcached) => Some(common.connections),
        (None, _) => None,
    };
    let expected = match producers {
        Some(producers) => Expected::shares(common.messages, producers.max(1)),
        None => Expected::Count(common.messages),
    };
    Ok((expected, drain))
}

/// Runs `consumers` consumers of `kind` over the expected messages; returns their results and
/// the time until the last one finished.
fn run_consumers(
    target: &Target,
    consumers: u64,
    pipeline: u64,
    kind: TakeKind,
    expected: &Expected,
    drain: bool,
    hard_deadline: Instant,
) -> (Vec<Consumed>, Duration) {
    let total = expected.required_total();
    let layout = match expected {
        Expected::Exactly { capacities, .. } => capacities.clone(),
        Expected::Count(count) => vec![*count],
    };
    let claims = AtomicU64::new(total);
    let started = Instant::now();
    let results: Vec<Consumed> = thread::scope(|scope| {
        let handles: Vec<_> = (0..consumers)
            .map(|consumer| {
                let (claims, layout) = (&claims, &layout);
                scope.spawn(move || {
                    if target.proto() == Proto::Memcached {
                        let first: u64 = (0..consumer).map(|c| share(total, consumers, c)).sum();
                        let count = share(total, consumers, consumer);
                        return workers::consume_keys(target, pipeline, layout, first, count);
                    }
                    let until = if drain {
                        Until::Empty
                    } else {
                        Until::Claims(claims)
                    };
                    workers::consume(
                        target,
                        ConsumerSpec {
                            consumer: consumer as u32,
                            pipeline,
                            kind,
                            until,
                            hard_deadline,
                        },
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("consumer thread panicked"))
            .collect()
    });
    let last = results.iter().map(|r| r.finished).max().unwrap_or(started);
    (results, last - started)
}

fn consuming_run(
    common: &Common,
    expect: &Expect,
    drain: bool,
    scenario: &'static str,
    kind: TakeKind,
) -> Result<Run> {
    let (expected, drain) = expectation(common, expect, drain)?;
    let target = common.target(&common.queue);
    let pid = common.server_pid();
    let hard_deadline = Instant::now() + common.duration();
    let cpu = CpuMeter::start(pid);
    let (results, elapsed) = run_consumers(
        &target,
        common.connections,
        common.pipeline,
        kind,
        &expected,
        drain,
        hard_deadline,
    );
    let mut run = common.run(scenario, common.connections);
    note_memory(&mut run, pid);
    let received: u64 = results.iter().map(|r| r.received).sum();
    run.rate(received, elapsed.as_secs_f64());
    run.cpu(cpu.stop());
    run.latency = Latency::of(&merged(results.iter().map(|r| &r.latency)));
    run.put(
        "empty_replies",
        results.iter().map(|r| r.empties).sum::<u64>(),
    );
    run.delivery = Some(verify(results.iter().map(|r| &r.receipts), &expected));
    for result in results {
        note_errors(&mut run, result.errors);
    }
    run.settle();
    Ok(run)
}

/// `consume`.
pub fn consume(common: &Common, expect: &Expect, drain: bool) -> Result<Run> {
    consuming_run(common, expect, drain, "consume", TakeKind::Plain)
}

/// `reliable`.
pub fn reliable(common: &Common, expect: &Expect, timeout_ms: u32) -> Result<Run> {
    if common.proto == Proto::Memcached {
        bail!("memcached has no reliable reads");
    }
    consuming_run(
        common,
        expect,
        false,
        "reliable",
        TakeKind::Reliable(timeout_ms),
    )
}

/// `mixed`.
pub fn mixed(
    common: &Common,
    producers: u64,
    consumers: u64,
    timeout_ms: u32,
    rate: f64,
) -> Result<Run> {
    if common.proto == Proto::Memcached {
        bail!("memcached has no blocking reads");
    }
    ensure!(
        producers > 0 && consumers > 0,
        "--producers and --consumers must be positive"
    );
    let target = common.target(&common.queue);
    let pid = common.server_pid();
    let capacities = shares(common.messages, producers);
    let started = Instant::now();
    let deadline = started + common.duration();
    let spec = ProducerSpec {
        pipeline: common.pipeline,
        deadline,
        hard_deadline: deadline,
        until_error: false,
        rate: rate / producers as f64,
    };
    let consumer_deadline = deadline + Duration::from_secs(60);
    let live: Vec<AtomicU64> = capacities.iter().map(|_| AtomicU64::new(0)).collect();
    let stop = AtomicBool::new(false);
    let producers_done = AtomicBool::new(false);
    let produced = AtomicU64::new(0);
    let consumed = AtomicU64::new(0);
    let mut window = None;
    let mut cpu_use = None;
    let cpu = CpuMeter::start(pid);
    let (made, taken) = thread::scope(|scope| {
        let consumer_handles: Vec<_> = (0..consumers)
            .map(|consumer| {
                let until = Until::Drained {
                    producers_done: &producers_done,
                    produced: &produced,
                    consumed: &consumed,
                };
                let target = &target;
                scope.spawn(move || {
                    workers::consume(
                        target,
                        ConsumerSpec {
                            consumer: consumer as u32,
                            pipeline: 1,
                            kind: TakeKind::Blocking(timeout_ms),
                            until,
                            hard_deadline: consumer_deadline,
                        },
                    )
                })
            })
            .collect();
        let producer_handles: Vec<_> = capacities
            .iter()
            .enumerate()
            .map(|(producer, &share)| {
                let (target, live, stop) = (&target, &live[producer], &stop);
                scope.spawn(move || {
                    workers::produce(target, spec, producer as u32, share, live, stop)
                })
            })
            .collect();
        while !producer_handles.iter().all(|handle| handle.is_finished()) {
            let now = Instant::now();
            if now >= deadline && window.is_none() {
                let put: u64 = live.iter().map(|n| n.load(Relaxed)).sum();
                window = Some((put, consumed.load(SeqCst), now - started));
                cpu_use = Some(cpu.stop());
            }
            thread::sleep(TICK);
        }
        let made: Vec<Produced> = producer_handles
            .into_iter()
            .map(|handle| handle.join().expect("producer thread panicked"))
            .collect();
        let finished = Instant::now();
        if window.is_none() {
            window = Some((
                made.iter().map(|r| r.acked).sum(),
                consumed.load(SeqCst),
                finished - started,
            ));
        }
        produced.store(made.iter().map(|r| r.acked).sum(), SeqCst);
        producers_done.store(true, SeqCst);
        let taken: Vec<Consumed> = consumer_handles
            .into_iter()
            .map(|handle| handle.join().expect("consumer thread panicked"))
            .collect();
        (made, taken)
    });
    let (put_in_window, taken_in_window, window) = window.expect("window measured");
    let mut run = common.run("mixed", producers + consumers);
    note_memory(&mut run, pid);
    let seconds = window.as_secs_f64();
    run.rate(taken_in_window, seconds);
    run.cpu(cpu_use.unwrap_or_else(|| cpu.stop()));
    run.latency = Latency::of(&merged(taken.iter().map(|r| &r.end_to_end)));
    let put_latency = Latency::of(&merged(made.iter().map(|r| &r.latency)));
    run.put("producers", producers);
    run.put("consumers", consumers);
    run.put("latency_is", "end_to_end");
    run.put("produced_per_s", (put_in_window as f64 / seconds).round());
    run.put("put_p50_us", put_latency.p50_us);
    run.put("put_p99_us", put_latency.p99_us);
    run.put(
        "backlog_at_end",
        put_in_window.saturating_sub(taken_in_window),
    );
    run.put(
        "consumed_total",
        taken.iter().map(|r| r.received).sum::<u64>(),
    );
    let required: Vec<u64> = made.iter().map(|r| r.acked_prefix).collect();
    for result in made {
        if let Some(why) = result.disconnected {
            note_errors(
                &mut run,
                Errors {
                    count: 1,
                    first: Some(why),
                },
            );
        }
        note_errors(&mut run, result.errors);
    }
    let expected = Expected::Exactly {
        capacities,
        required,
    };
    run.delivery = Some(verify(taken.iter().map(|r| &r.receipts), &expected));
    for result in taken {
        note_errors(&mut run, result.errors);
    }
    run.settle();
    Ok(run)
}

/// Throughput of one produce-then-consume pass on its own queue.
struct Pass {
    produce_rate: f64,
    consume_rate: f64,
    produce_latency: Latency,
    ok: bool,
    errors: Errors,
}

fn pass(common: &Common, queue: &str) -> Pass {
    let target = common.target(queue);
    let shares = shares(common.messages, common.connections);
    let deadline = Instant::now() + common.duration();
    let spec = ProducerSpec {
        pipeline: common.pipeline,
        deadline,
        hard_deadline: deadline,
        until_error: false,
        rate: 0.0,
    };
    let mut errors = Errors::default();
    let production = match run_producers(&target, &shares, spec, None) {
        Ok(production) => production,
        Err(error) => {
            errors.note(format!("{error:#}"));
            return Pass {
                produce_rate: 0.0,
                consume_rate: 0.0,
                produce_latency: Latency::default(),
                ok: false,
                errors,
            };
        }
    };
    let produce_latency = Latency::of(&merged(production.results.iter().map(|r| &r.latency)));
    let required: Vec<u64> = production.results.iter().map(|r| r.acked_prefix).collect();
    for result in production.results {
        if let Some(why) = result.disconnected {
            errors.note(why);
        }
        errors.merge(result.errors);
    }
    let acked: u64 = required.iter().sum();
    let expected = Expected::Exactly {
        capacities: shares,
        required,
    };
    let (results, elapsed) = run_consumers(
        &target,
        common.connections,
        common.pipeline,
        TakeKind::Plain,
        &expected,
        false,
        deadline + common.duration(),
    );
    let received: u64 = results.iter().map(|r| r.received).sum();
    let delivery = verify(results.iter().map(|r| &r.receipts), &expected);
    for result in results {
        errors.merge(result.errors);
    }
    Pass {
        produce_rate: production.window_messages as f64 / production.window.as_secs_f64(),
        consume_rate: received as f64 / elapsed.as_secs_f64(),
        produce_latency,
        ok: delivery.ok() && errors.count == 0 && acked == common.messages,
        errors,
    }
}

/// Opens `count` connections, has each answer one harmless request (so the server has set it
/// up completely), and returns them non-blocking, to be held open and never used.
fn open_idle(common: &Common, count: u64) -> Result<Vec<std::net::TcpStream>> {
    use std::io::Read as _;
    let requests = Requests {
        proto: common.proto,
        queue: common.queue.clone(),
    };
    let mut hello = Vec::new();
    requests.hello(&mut hello);
    let mut idle = Vec::with_capacity(count as usize);
    let mut pending = Vec::new();
    let mut opened = 0;
    while opened < count {
        let chunk = (count - opened).min(200);
        for _ in 0..chunk {
            let stream =
                std::net::TcpStream::connect_timeout(&common.addr, Duration::from_secs(10))
                    .with_context(|| format!("idle connection {opened} of {count}"))?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            (&stream).write_all(&hello)?;
            pending.push(stream);
            opened += 1;
        }
        for stream in pending.drain(..) {
            let mut reply = [0u8; 128];
            let mut have = 0;
            while !reply[..have].ends_with(b"\r\n") {
                let read = (&stream).read(&mut reply[have..])?;
                ensure!(read > 0, "server closed an idle connection");
                have += read;
            }
            stream.set_nonblocking(true)?;
            idle.push(stream);
        }
    }
    Ok(idle)
}

/// `fanin`.
pub fn fanin(common: &Common, idle: u64) -> Result<Run> {
    let pid = common.server_pid();
    let memory = || {
        pid.and_then(|pid| process::memory(pid).ok())
            .unwrap_or_default()
    };
    // The first load on a fresh server and client runs slower (memcached, which keeps nothing,
    // ran its second load 15-28 % faster); without a warm-up the idle connections get the credit.
    let warm_up = pass(common, &format!("{}_warmup", common.queue));
    let alone = pass(common, &format!("{}_alone", common.queue));
    let before: Memory = memory();
    let opened_at = Instant::now();
    let held = open_idle(common, idle)?;
    let open_seconds = opened_at.elapsed().as_secs_f64();
    let with_idle_memory = memory();
    let crowded = pass(common, &format!("{}_crowded", common.queue));
    let mut run = common.run("fanin", common.connections);
    note_memory(&mut run, pid);
    drop(held);
    run.rate(
        common.messages,
        common.messages as f64 / crowded.produce_rate.max(1e-9),
    );
    run.latency = crowded.produce_latency;
    run.put("idle_connections", idle);
    run.put(
        "idle_open_seconds",
        (open_seconds * 1000.0).round() / 1000.0,
    );
    run.put("baseline_msgs_per_s", alone.produce_rate.round());
    run.put("consume_per_s", crowded.consume_rate.round());
    run.put("baseline_consume_per_s", alone.consume_rate.round());
    run.put("baseline_p99_us", alone.produce_latency.p99_us);
    run.put(
        "produce_ratio",
        ratio(crowded.produce_rate, alone.produce_rate),
    );
    run.put(
        "consume_ratio",
        ratio(crowded.consume_rate, alone.consume_rate),
    );
    run.put("rss_before_idle_kib", before.rss_kib);
    run.put("rss_with_idle_kib", with_idle_memory.rss_kib);
    run.put(
        "rss_growth_kib",
        with_idle_memory.rss_kib.saturating_sub(before.rss_kib),
    );
    let ok = warm_up.ok && alone.ok && crowded.ok;
    note_errors(&mut run, warm_up.errors);
    note_errors(&mut run, alone.errors);
    note_errors(&mut run, crowded.errors);
    if !ok && run.errors == 0 {
        run.errors = 1;
        run.first_error = Some("a pass lost or duplicated messages".into());
    }
    run.settle();
    Ok(run)
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        (a / b * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

/// `restart`: returns the run and the new server's pid.
pub fn restart(common: &Common, spawn: &str, log: Option<&str>) -> Result<(Run, u32)> {
    if common.proto == Proto::Memcached {
        bail!("memcached keeps nothing across a restart");
    }
    let pid = common
        .server_pid()
        .context("restart needs the server's pid")?;
    process::kill_and_wait(pid)?;
    process::wait_port_free(common.addr, Duration::from_secs(30))?;
    let spawned_at = Instant::now();
    let mut child = process::spawn(spawn, log)?;
    let new_pid = child.id();
    let deadline = spawned_at + common.duration();
    let target = common.target(&common.queue);
    let mut attempts = 0u64;
    let mut last_error = String::new();
    let head = loop {
        ensure!(
            Instant::now() < deadline,
            "the restarted server did not serve the head item within {:?} ({attempts} attempts; last: {last_error})",
            common.duration()
        );
        attempts += 1;
        if let Some(status) = child.try_wait()? {
            bail!("the restarted server exited ({status}) before serving; last: {last_error}");
        }
        match peek(&target) {
            Ok(Some(stamp)) => break stamp,
            Ok(None) => bail!("the restarted server's queue is empty"),
            Err(error) => {
                last_error = format!("{error:#}");
                thread::sleep(TICK);
            }
        }
    };
    let ready = spawned_at.elapsed();
    let mut run = common.run("restart", 1);
    note_memory(&mut run, Some(new_pid));
    run.put("ready_ms", (ready.as_secs_f64() * 1e4).round() / 10.0);
    run.put("new_pid", new_pid);
    run.put("attempts", attempts);
    run.put("head_producer", head.producer);
    run.put("head_seq", head.seq);
    run.settle();
    drop(child);
    Ok((run, new_pid))
}

/// Connects and peeks at the head item: `Ok(None)` if the queue is empty, an error while the
/// server is not serving yet (refused, `-LOADING`).
fn peek(target: &Target) -> Result<Option<crate::payload::Stamp>> {
    let mut conn = crate::conn::Conn::connect_within(
        target.addr,
        target.proto(),
        Duration::from_millis(100),
        Duration::from_secs(2),
    )?;
    let mut request = Vec::new();
    target.requests.peek(&mut request);
    conn.send(&request)?;
    match conn.reply()? {
        crate::proto::Reply::Value(range) => {
            let stamp = crate::payload::decode(conn.data(range), Some(target.size))
                .map_err(|why| anyhow::anyhow!("head item is corrupt: {why:?}"))?;
            Ok(Some(stamp))
        }
        crate::proto::Reply::Empty => Ok(None),
        other => bail!("peek answered {other:?}"),
    }
}
