//! `lannerctl`: administer a lanner server over its memcache port, and inspect or compact its
//! journals offline. See docs/lannerctl.md.

mod cli;
mod format;
mod login;
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
            if let Some(hint) = login_hint(&error) {
                eprintln!("lannerctl: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

/// What to do about an error of logging in, if it is one.
fn login_hint(error: &anyhow::Error) -> Option<String> {
    let env = login::PASSWORD_ENV;
    match error.downcast_ref::<lanner_client::Error>()? {
        lanner_client::Error::Unauthenticated { .. } => Some(format!(
            "the server requires a login: give --user NAME and the password in {env} or --password-file FILE"
        )),
        lanner_client::Error::AuthenticationFailed { .. } => Some(format!(
            "check the user name and the password (from --password-file, else {env})"
        )),
        _ => None,
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
            let login = login::from_flags(cli.user, cli.password_file.as_deref())?;
            let client = online::connect(&cli.server, login)?;
            watch::run(&client, iterations, interval)?;
            Ok(ExitCode::SUCCESS)
        }
        command => {
            let login = login::from_flags(cli.user, cli.password_file.as_deref())?;
            online::run(&cli.server, login, command, json)
        }
    }
}
