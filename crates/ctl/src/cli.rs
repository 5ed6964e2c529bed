//! Command-line grammar of `lannerctl`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use clap_complete::Shell;

/// lannerctl: administer a lanner server, and inspect its journals offline.
#[derive(Debug, Parser)]
#[command(name = "lannerctl", version, about)]
pub struct Cli {
    /// The server to talk to (memcache protocol)
    #[arg(
        long,
        global = true,
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:22133"
    )]
    pub server: String,
    /// Log in as this user (servers with [users.*]); the password comes from --password-file
    /// or the LANNER_PASSWORD environment variable
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// Read the password for --user from the first line of this file
    #[arg(long, global = true, value_name = "FILE", requires = "user")]
    pub password_file: Option<PathBuf>,
    /// Print JSON instead of tables (for scripts)
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Server-wide figures and one row per queue
    Stats,
    /// Every figure of some queues (all queues and aliases when none is named)
    DumpStats {
        /// Queues or aliases to show
        queues: Vec<String>,
    },
    /// Show the server status, or set it (up, readonly, writeavoid, quiescent)
    Status {
        /// The new status
        name: Option<String>,
    },
    /// Read the queue and alias settings from the configuration file again
    Reload,
    /// Remove every item of a queue
    Flush { queue: String },
    /// Delete a queue and its journal
    Delete { queue: String },
    /// Show the head item of a queue without taking it
    Peek { queue: String },
    /// Add items to a queue: DATA, or one item per line of standard input, or a whole file
    Put {
        queue: String,
        /// The item; without it (and without --file) items are read from standard input,
        /// one per line
        #[arg(conflicts_with = "file")]
        data: Option<String>,
        /// Put the whole content of this file as one item
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Take items with reliable reads: each is confirmed only after it was written out
    Take {
        queue: String,
        /// Take up to this many items
        #[arg(long, default_value_t = 1)]
        count: u64,
        /// Wait up to this many milliseconds for each item
        #[arg(long, value_name = "MS", default_value_t = 0)]
        timeout: u64,
        /// Show the items, then return them to the queue instead of confirming them
        #[arg(long)]
        abort: bool,
    },
    /// A live view of every queue, refreshed every second (q or Ctrl-C stops it)
    Watch {
        /// Stop by itself after this many refreshes
        #[arg(long, value_name = "N")]
        iterations: Option<u64>,
        /// Milliseconds between refreshes
        #[arg(long, value_name = "MS", default_value_t = 1000)]
        interval: u64,
    },
    /// Offline work on a data directory (the server's journals)
    Journal {
        /// The data directory
        #[arg(long, value_name = "DIR", default_value = "./data")]
        data_dir: PathBuf,
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Print a shell completion script for lannerctl (or, with --server-binary, for lanner)
    Completions {
        shell: Shell,
        /// Complete the server binary `lanner` instead
        #[arg(long)]
        server_binary: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Every record of a queue's journal: file, offset, kind, length, payload preview
    Dump { queue: String },
    /// Check the checksums and structure of every segment (all queues when none is named)
    Verify { queue: Option<String> },
    /// Rewrite a queue's journal to hold only its live items (the server must be stopped)
    Compact { queue: String },
}
