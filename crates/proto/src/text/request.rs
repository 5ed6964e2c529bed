//! The requests of the text protocol, fully parsed and validated.

use std::ops::Range;

/// One text-protocol request (spec a.5). Queue names have already passed
/// [`crate::validate_queue_name`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextRequest {
    /// `put <q> [<expiry-ms>]:` followed by one item per line and an empty line. `put <q>`
    /// without the colon is a put of no items.
    Put {
        /// The queue to add to.
        queue: String,
        /// Expiry in milliseconds from now, as sent (a Java `Int`): `None` when absent. The
        /// server decides what 0 and negative values mean.
        expiry_ms: Option<i32>,
        /// Each item's byte range inside the input given to the decoder, without its line end;
        /// the caller slices them out of the request's bytes.
        items: Vec<Range<usize>>,
    },
    /// `get <q> [<timeout-ms>]`: confirm this connection's open reads on `q`, then an open read.
    Get {
        /// The queue to read from.
        queue: String,
        /// How long to wait for an item; `None` when absent, zero or negative (no wait).
        timeout_ms: Option<u32>,
    },
    /// `peek <q> [<timeout-ms>]`: confirm this connection's open reads on `q`, then return the
    /// head item without removing it.
    Peek {
        /// The queue to read from.
        queue: String,
        /// How long to wait for an item; `None` when absent, zero or negative (no wait).
        timeout_ms: Option<u32>,
    },
    /// `monitor <q> <timeout-ms>`: stream open reads until the timeout.
    Monitor {
        /// The queue to read from.
        queue: String,
        /// How long to stream items; a negative value on the wire is 0.
        timeout_ms: u32,
    },
    /// `confirm <q> <count>`.
    Confirm {
        /// The queue whose open reads to confirm.
        queue: String,
        /// How many of this connection's oldest open reads to confirm.
        count: u32,
    },
    /// `flush <q>`.
    Flush {
        /// The queue to empty.
        queue: String,
    },
    /// `delete <q>`.
    Delete {
        /// The queue to delete.
        queue: String,
    },
    /// `status` (None) or `status <name>` (the name, lower-cased, not yet validated).
    Status {
        /// The status to switch to, or `None` to ask for the current one.
        new_status: Option<String>,
    },
    /// `version`.
    Version,
    /// `shutdown`.
    Shutdown,
    /// `quit`.
    Quit,
}
