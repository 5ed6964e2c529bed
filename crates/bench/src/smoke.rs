//! `lanner-bench smoke`: a seconds-long run of every Kestrel scenario against a lanner binary
//! that the smoke starts itself, on a free loopback port with a temporary data directory. It
//! checks delivery, never speed, so CI can run it.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cli::{Common, Expect, ProduceArgs};
use crate::process;
use crate::proto::Proto;
use crate::report::{self, Run};
use crate::scenarios;

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the smoke; fails if any scenario failed.
pub fn run(server: &Path, seconds: f64) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("lanner-bench-smoke")
        .tempdir()?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let command = format!(
        "{} --listen {addr} --text-listen= --admin-listen= --data-dir {}",
        server.display(),
        dir.path().display()
    );
    let mut child = start(&command)?;
    let pid = std::cell::Cell::new(child.id());
    let common = |queue: &str, connections: u64, pipeline: u64, messages: u64| Common {
        proto: Proto::Kestrel,
        addr,
        queue: queue.to_owned(),
        size: 64,
        connections,
        pipeline,
        messages,
        duration: 60.0,
        pid: Some(pid.get()),
        label: "smoke".to_owned(),
        server_name: None,
    };
    let expect = Expect {
        producers: None,
        expect_acked: None,
    };
    let produce = ProduceArgs {
        rate: 0.0,
        kill_at_end: false,
        acked_file: None,
    };
    eprintln!("{}", report::header());
    let mut mixed = common("mixed", 1, 1, 1_000_000);
    mixed.duration = seconds;
    let mut runs: Vec<Result<Run>> = vec![
        scenarios::produce(&common("pipelined", 4, 8, 20_000), &produce),
        scenarios::consume(&common("pipelined", 4, 8, 20_000), &expect, false),
        scenarios::produce(&common("single", 1, 1, 2_000), &produce),
        scenarios::consume(&common("single", 1, 1, 2_000), &expect, false),
        scenarios::mixed(&mixed, 2, 2, 100, 0.0),
        scenarios::produce(&common("reliable", 4, 8, 5_000), &produce),
        scenarios::reliable(&common("reliable", 4, 1, 5_000), &expect, 100),
    ];
    runs.push(scenarios::fanin(&common("fanin", 2, 4, 5_000), 200));
    runs.push(scenarios::produce(
        &common("restart", 2, 8, 10_000),
        &produce,
    ));
    match scenarios::restart(&common("restart", 1, 1, 10_000), &command, None) {
        Ok((run, new_pid)) => {
            pid.set(new_pid);
            runs.push(Ok(run));
            runs.push(scenarios::consume(
                &common("restart", 2, 8, 10_000),
                &expect,
                false,
            ));
        }
        Err(error) => runs.push(Err(error)),
    }
    stop(&mut child, pid.get());
    let (mut passed, mut failed) = (0, 0);
    for run in runs {
        match run {
            Ok(run) => {
                run.print();
                if run.ok {
                    passed += 1;
                } else {
                    failed += 1;
                    eprintln!(
                        "smoke: {} failed: {}",
                        run.scenario,
                        run.first_error.as_deref().unwrap_or("delivery check")
                    );
                }
            }
            Err(error) => {
                failed += 1;
                eprintln!("smoke: a scenario could not run: {error:#}");
            }
        }
    }
    println!("smoke: {passed} passed, {failed} failed");
    if failed > 0 {
        bail!("{failed} smoke scenario(s) failed");
    }
    Ok(())
}

/// Starts the server and waits until it logs that it listens.
fn start(command: &str) -> Result<Child> {
    let mut words = command.split_whitespace();
    let program = words.next().context("empty command")?;
    let mut builder = Command::new(program);
    builder.args(words);
    Ok(process::start_listening(builder, READY_TIMEOUT)?.child)
}

/// Stops the server (the original child, or the one `restart` started) and reaps it.
fn stop(child: &mut Child, pid: u32) {
    if pid == child.id() {
        child.kill().ok();
    } else {
        process::signal(pid, "KILL").ok();
    }
    child.wait().ok();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while process::alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}
