//! The `lanner` binary: parse flags, set up logging, run the server.

use std::io::IsTerminal;

use clap::Parser;
use lanner_server::cli::{Args, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.hash_password {
        return lanner_server::cli::print_password_hash();
    }
    init_logging(args.log_format);
    let config = args.config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(lanner_server::server::run(config, args.config.clone()));
    if let Err(error) = &result {
        tracing::error!("{error:#}");
    }
    result
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colours = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
