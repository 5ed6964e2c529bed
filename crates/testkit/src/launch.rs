//! How to start a `lanner` process.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::process::Lanner;

/// How to start `lanner`: binary, listening address, data directory, configuration, extra
/// flags and environment. By default: [`crate::lanner_binary`] on a free loopback port, with
/// a fresh temporary data directory, no configuration file, and the text protocol and the
/// admin port off (many servers run at once: their fixed default ports would collide).
#[derive(Debug)]
pub struct Launch {
    binary: Option<PathBuf>,
    pub(crate) listen: String,
    data_dir: Option<PathBuf>,
    /// TOML to write into a file of the temporary directory at start.
    config_text: Option<String>,
    config_file: Option<PathBuf>,
    args: Vec<String>,
    env: Vec<(String, OsString)>,
    pub(crate) text_listener: bool,
    pub(crate) admin_listener: bool,
}

impl Default for Launch {
    fn default() -> Launch {
        Launch {
            binary: None,
            listen: "127.0.0.1:0".to_owned(),
            data_dir: None,
            config_text: None,
            config_file: None,
            args: Vec::new(),
            env: Vec::new(),
            text_listener: false,
            admin_listener: false,
        }
    }
}

impl Launch {
    /// Runs this binary (a test of the server's own package has it as `CARGO_BIN_EXE_lanner`).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Launch {
        self.binary = Some(path.into());
        self
    }

    /// Listens for memcache clients on `address` instead of a free loopback port.
    pub fn listen(mut self, address: &str) -> Launch {
        address.clone_into(&mut self.listen);
        self
    }

    /// Uses `dir` as the data directory instead of a fresh temporary one.
    pub fn data_dir(mut self, dir: &Path) -> Launch {
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// Starts with a configuration file holding `toml`, written into a temporary directory.
    pub fn config(mut self, toml: &str) -> Launch {
        self.config_text = Some(toml.to_owned());
        self.config_file = None;
        self
    }

    /// Starts with the configuration file at `path`.
    pub fn config_file(mut self, path: &Path) -> Launch {
        self.config_file = Some(path.to_owned());
        self.config_text = None;
        self
    }

    /// Adds command-line flags. A `--text-listen` or `--admin-listen` among them replaces the
    /// default that turns the listener off.
    pub fn args(mut self, args: &[&str]) -> Launch {
        self.args.extend(args.iter().map(|&arg| arg.to_owned()));
        self
    }

    /// Sets an environment variable of the process.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Launch {
        self.env.push((key.to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Turns the text protocol on, on a free loopback port, and waits at start until it
    /// listens too ([`Lanner::text_addr`]).
    pub fn text_listener(mut self) -> Launch {
        self.text_listener = true;
        self.args(&["--text-listen", "127.0.0.1:0"])
    }

    /// Turns the admin HTTP port on, on a free loopback port, and waits at start until it
    /// listens too ([`Lanner::admin_addr`]).
    pub fn admin_listener(mut self) -> Launch {
        self.admin_listener = true;
        self.args(&["--admin-listen", "127.0.0.1:0"])
    }

    /// Starts the server and waits until it listens (recovery done); panics with its log if
    /// it exits or stays silent instead.
    pub fn start(self) -> Lanner {
        self.try_start()
            .unwrap_or_else(|log| panic!("lanner did not start:\n{log}"))
    }

    /// Starts the server and waits until it listens; the error is its log if it exits or
    /// stays silent instead.
    pub fn try_start(mut self) -> Result<Lanner, String> {
        let temp = TempDir::new().expect("temp dir");
        self.settle(temp.path());
        Lanner::spawn(self, temp)
    }

    /// Fixes every choice left to the start: the binary, and the data directory and config
    /// file inside `temp`. A restart then reuses them.
    fn settle(&mut self, temp: &Path) {
        let binary = self.binary.take();
        self.binary = Some(binary.unwrap_or_else(|| crate::lanner_binary().to_owned()));
        self.data_dir.get_or_insert_with(|| temp.join("data"));
        if let Some(toml) = self.config_text.take() {
            let path = temp.join("lanner.toml");
            std::fs::write(&path, toml).expect("write config");
            self.config_file = Some(path);
        }
    }

    /// The data directory (once settled).
    pub(crate) fn settled_data_dir(&self) -> &Path {
        self.data_dir.as_deref().expect("a settled launch")
    }

    /// The configuration file (once settled).
    pub(crate) fn config_path(&self) -> Option<&Path> {
        self.config_file.as_deref()
    }

    /// The command of a settled launch, listening on `listen`, its log piped.
    pub(crate) fn command(&self, listen: &str) -> Command {
        let mut command = Command::new(self.binary.as_deref().expect("a settled launch"));
        command
            .args(["--listen", listen, "--data-dir"])
            .arg(self.settled_data_dir())
            .args(&self.args);
        for listener in ["--text-listen", "--admin-listen"] {
            if !self.args.iter().any(|arg| arg == listener) {
                command.args([listener, ""]);
            }
        }
        if let Some(config) = self.config_path() {
            command.arg("--config").arg(config);
        }
        command
            // The listening lines are logged at info.
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }
}
