//! A server's log (its stderr), read line by line on a thread of its own so the server never
//! blocks on a full pipe.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::ChildStderr;
use std::sync::mpsc;
use std::time::Instant;

use crate::PATIENCE;

/// The line a server logs once its memcache port accepts connections.
const LISTENING: &str = "lanner listening on ";

/// The log of one server process.
pub(crate) struct Log {
    lines: mpsc::Receiver<String>,
    /// Lines logged up to and including the listening line (recovery): always searchable.
    startup: Vec<String>,
}

impl Log {
    /// Reads `stderr` until the server logs its listening address (bounded by [`PATIENCE`]).
    /// The error is everything it logged instead, if it exits or stays silent.
    pub(crate) fn until_listening(stderr: ChildStderr) -> Result<(Log, SocketAddr), String> {
        let mut log = Log {
            lines: capture(stderr),
            startup: Vec::new(),
        };
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = log.lines.recv_timeout(left) else {
                return Err(log.startup.join("\n"));
            };
            let address = address_after(&line, LISTENING);
            log.startup.push(line);
            if let Some(address) = address {
                return Ok((log, address));
            }
        }
    }

    /// The first startup line containing `needle`, else the next line logged since that
    /// contains it (lines read on the way are dropped); panics after [`PATIENCE`].
    pub(crate) fn wait_for(&self, needle: &str) -> String {
        if let Some(line) = self.startup.iter().find(|line| line.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line containing {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }
}

/// Sends each line of `stderr` to the returned channel until the stream ends.
fn capture(stderr: ChildStderr) -> mpsc::Receiver<String> {
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            // Once the receiver is gone the line is dropped, and reading goes on.
            drop(lines_tx.send(line));
        }
    });
    lines_rx
}

/// The address logged right after `prefix` in a log line.
pub(crate) fn address_after(line: &str, prefix: &str) -> Option<SocketAddr> {
    let rest = line.split(prefix).nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_after_its_prefix() {
        let line = "2026-12-01T20:00:00Z  INFO lanner_server::server: lanner listening on 127.0.0.1:4242 address=127.0.0.1:4242";
        assert_eq!(
            address_after(line, LISTENING),
            Some("127.0.0.1:4242".parse().unwrap())
        );
        assert_eq!(address_after(line, "lanner admin listening on "), None);
        assert_eq!(
            address_after("lanner listening on nowhere", LISTENING),
            None
        );
    }
}
