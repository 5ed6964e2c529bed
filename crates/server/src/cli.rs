//! Command-line flags; they override the configuration file.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::config::Config;

/// lanner: a durable message-queue server speaking Kestrel's memcache protocol.
#[derive(Debug, Parser)]
#[command(name = "lanner", version, about)]
pub struct Args {
    /// Address for the memcache protocol [default: 127.0.0.1:22133]
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Address for the text protocol, or "" to disable it [default: from the config file]
    #[arg(long, value_name = "ADDR:PORT")]
    pub text_listen: Option<String>,
    /// Address for the admin HTTP port, or "" to disable it [default: from the config file]
    #[arg(long, value_name = "ADDR:PORT")]
    pub admin_listen: Option<String>,
    /// Directory holding the journals [default: ./data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file (see config/lanner.toml); flags override it
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log line format on stderr
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Truncate a journal damaged in the middle at the bad record instead of refusing to start
    #[arg(long)]
    pub salvage: bool,
    /// Read a password from stdin (its first line), print its Argon2 hash for a
    /// `[users.<name>] password_hash`, and exit
    #[arg(long)]
    pub hash_password: bool,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Args {
    /// The configuration: the file's (or the embedded defaults), then the flags on top.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(listen) = self.listen {
            config.server.listen = listen;
        }
        if let Some(text_listen) = &self.text_listen {
            config.server.text_listen.clone_from(text_listen);
        }
        if let Some(admin_listen) = &self.admin_listen {
            config.server.admin_listen.clone_from(admin_listen);
        }
        if let Some(data_dir) = &self.data_dir {
            config.server.data_dir.clone_from(data_dir);
        }
        config.server.salvage |= self.salvage;
        // The flags are checked as the file is: `--admin-listen port` must not silently disable.
        config
            .validate()
            .map_err(|message| anyhow::anyhow!("command-line flags: {message}"))?;
        Ok(config)
    }
}

/// `--hash-password`: hashes the first line of stdin (without its line ending) and prints the
/// PHC string.
pub fn print_password_hash() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        anyhow::bail!("--hash-password: no password on stdin");
    }
    if password.contains(' ') {
        anyhow::bail!(
            "--hash-password: the password contains a space; memcache authentication sends \
             `<user> <password>` separated by a space, so it could never be typed"
        );
    }
    let hash = crate::access::hash_password(password.as_bytes()).map_err(anyhow::Error::msg)?;
    println!("{hash}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_of(flags: &[&str]) -> anyhow::Result<Config> {
        let args = std::iter::once("lanner").chain(flags.iter().copied());
        Args::try_parse_from(args).expect("flags parse").config()
    }

    #[test]
    fn flags_are_validated_like_the_file() {
        let error = config_of(&["--admin-listen", "port 2223"]).unwrap_err();
        assert!(error.to_string().contains("admin_listen"), "{error}");
        let config = config_of(&["--admin-listen", ""]).expect("disabled");
        assert_eq!(config.server.admin_listen_addr(), None);
    }
}
