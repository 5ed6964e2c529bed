//! `lannerctl`: administer a lanner server over its memcache port, and inspect or compact its
//! journals offline. See docs/lannerctl.md.

mod cli;
mod format;
mod offline;
mod online;
mod watch;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("lannerctl: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let json = cli.json;
    match cli.command {
        Command::Journal { data_dir, command } => offline::run(&data_dir, command, json),
        Command::Completions {
            shell,
            server_binary,
        } => {
            let (mut command, name) = if server_binary {
                (lanner_server::cli::Args::command(), "lanner")
            } else {
                (Cli::command(), "lannerctl")
            };
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut command, name, &mut out);
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Watch {
            iterations,
            interval,
        } => {
            let client = online::connect(&cli.server)?;
            watch::run(&client, iterations, interval)?;
            Ok(ExitCode::SUCCESS)
        }
        command => online::run(&cli.server, command, json),
    }
}
