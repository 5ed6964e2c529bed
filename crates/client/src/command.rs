//! Encoding of the requests this client sends (Kestrel's memcache dialect), and the check that
//! a queue name can be sent at all.

use std::io::Write;
use std::time::Duration;

use crate::error::{Error, Result};

/// Longest blocking wait Kestrel's `t=` (a Java `Int` of milliseconds) can express.
const MAX_WAIT_MS: u128 = i32::MAX as u128;

/// Rejects names that would break the request line: empty, or containing a space, a control
/// character or `/` (which starts the `get` options). The server checks its own stricter rules.
pub(crate) fn validate_queue(name: &str) -> Result<()> {
    let unsendable = |c: char| c == ' ' || c == '/' || c.is_control();
    if name.is_empty() || name.contains(unsendable) {
        return Err(Error::InvalidQueueName(name.to_owned()));
    }
    Ok(())
}

/// The options of one `get`, rendered as `<queue>/t=<ms>/open/...`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct GetOptions {
    /// Block up to this long for an item (zero: answer at once).
    pub(crate) wait: Duration,
    /// Open a reliable read.
    pub(crate) open: bool,
    /// Confirm the connection's oldest open read on the queue.
    pub(crate) close: bool,
    /// Abort the connection's oldest open read on the queue.
    pub(crate) abort: bool,
    /// Return the head item without removing it.
    pub(crate) peek: bool,
}

impl GetOptions {
    /// The key of the `get` line: the queue name followed by the options.
    pub(crate) fn key(&self, queue: &str) -> String {
        let mut key = queue.to_owned();
        if !self.wait.is_zero() {
            key.push_str(&format!("/t={}", wait_millis(self.wait)));
        }
        for (on, name) in [
            (self.close, "/close"),
            (self.open, "/open"),
            (self.abort, "/abort"),
            (self.peek, "/peek"),
        ] {
            if on {
                key.push_str(name);
            }
        }
        key
    }
}

/// A wait in whole milliseconds for `t=`: rounded up (so a non-zero wait never becomes "don't
/// wait") and capped at what the server accepts.
fn wait_millis(wait: Duration) -> u128 {
    wait.as_nanos().div_ceil(1_000_000).min(MAX_WAIT_MS)
}

/// `set <queue> 0 0 <len>\r\n<data>\r\n`
pub(crate) fn set(out: &mut Vec<u8>, queue: &str, data: &[u8]) {
    line(out, format_args!("set {queue} 0 0 {}", data.len()));
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// `get <key>\r\n`
pub(crate) fn get(out: &mut Vec<u8>, key: &str) {
    line(out, format_args!("get {key}"));
}

/// `monitor <queue> <seconds> <max>\r\n`; the wait is rounded up to whole seconds.
pub(crate) fn monitor(out: &mut Vec<u8>, queue: &str, wait: Duration, max_items: u32) {
    let seconds = wait.as_nanos().div_ceil(1_000_000_000).min(MAX_WAIT_MS);
    line(out, format_args!("monitor {queue} {seconds} {max_items}"));
}

/// `confirm <queue> <count>\r\n`
pub(crate) fn confirm(out: &mut Vec<u8>, queue: &str, count: usize) {
    line(out, format_args!("confirm {queue} {count}"));
}

/// `flush <queue>\r\n`
pub(crate) fn flush(out: &mut Vec<u8>, queue: &str) {
    line(out, format_args!("flush {queue}"));
}

/// `delete <queue>\r\n`
pub(crate) fn delete(out: &mut Vec<u8>, queue: &str) {
    line(out, format_args!("delete {queue}"));
}

/// Any command line the caller checked (see [`validate_admin`]), then `\r\n`.
pub(crate) fn raw(out: &mut Vec<u8>, command: &str) {
    line(out, format_args!("{command}"));
}

/// Rejects an admin command line that is empty or holds a control character (a line end
/// would smuggle in a second request).
pub(crate) fn validate_admin(command: &str) -> Result<()> {
    if command.trim().is_empty() || command.contains(char::is_control) {
        return Err(Error::InvalidConfig(format!(
            "not a single command line: {command:?}"
        )));
    }
    Ok(())
}

/// `stats\r\n`
pub(crate) fn stats(out: &mut Vec<u8>) {
    out.extend_from_slice(b"stats\r\n");
}

fn line(out: &mut Vec<u8>, text: std::fmt::Arguments<'_>) {
    // Writing into a Vec cannot fail.
    let _ = out.write_fmt(text);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).expect("ASCII")
    }

    #[test]
    fn queue_names_that_would_break_the_line_are_rejected() {
        for bad in ["", "a b", "a/b", "a\r\nset", "tab\there", "nul\0"] {
            assert!(
                matches!(validate_queue(bad), Err(Error::InvalidQueueName(_))),
                "{bad:?}"
            );
        }
        for good in ["work", "jobs+audit", "x".repeat(200).as_str(), "ünïcode"] {
            assert!(validate_queue(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn get_keys_carry_the_options() {
        let plain = GetOptions::default();
        assert_eq!(plain.key("q"), "q");
        let open = GetOptions {
            wait: Duration::from_millis(500),
            open: true,
            ..plain
        };
        assert_eq!(open.key("q"), "q/t=500/open");
        let next = GetOptions {
            close: true,
            ..open
        };
        assert_eq!(next.key("q"), "q/t=500/close/open");
        let abort = GetOptions {
            abort: true,
            ..plain
        };
        assert_eq!(abort.key("q"), "q/abort");
        let peek = GetOptions {
            peek: true,
            wait: Duration::from_micros(1),
            ..plain
        };
        assert_eq!(
            peek.key("q"),
            "q/t=1/peek",
            "a sub-millisecond wait rounds up"
        );
        let forever = GetOptions {
            wait: Duration::from_secs(u64::MAX),
            ..plain
        };
        assert_eq!(forever.key("q"), "q/t=2147483647");
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            encoded(|out| set(out, "q", b"a\r\nb")),
            "set q 0 0 4\r\na\r\nb\r\n"
        );
        assert_eq!(encoded(|out| get(out, "q/open")), "get q/open\r\n");
        assert_eq!(
            encoded(|out| monitor(out, "q", Duration::from_millis(1500), 10)),
            "monitor q 2 10\r\n"
        );
        assert_eq!(encoded(|out| confirm(out, "q", 3)), "confirm q 3\r\n");
        assert_eq!(encoded(|out| flush(out, "q")), "flush q\r\n");
        assert_eq!(encoded(|out| delete(out, "q")), "delete q\r\n");
        assert_eq!(encoded(stats), "stats\r\n");
        assert_eq!(
            encoded(|out| raw(out, "dump_stats a b")),
            "dump_stats a b\r\n"
        );
    }

    #[test]
    fn admin_lines_must_be_one_line() {
        assert!(validate_admin("status readonly").is_ok());
        for bad in ["", "  ", "status\r\nshutdown", "a\tb"] {
            assert!(validate_admin(bad).is_err(), "{bad:?}");
        }
    }
}
