//! The requests a client can send, fully parsed and validated.

use std::ops::Range;

use smol_str::SmolStr;

/// One parsed request. Queue names have already passed [`crate::validate_queue_name`]; they are
/// [`SmolStr`]s, so the short names of the hot path are held inline instead of on the heap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `set <q> <flags> <exptime> <bytes>\r\n<data>\r\n`. `data` is the payload's byte range
    /// inside the input given to [`crate::parse()`], so the caller can slice it without a copy.
    Set {
        /// The queue to add to.
        queue: SmolStr,
        /// The memcache flags: a Java `Int` on the wire, kept as its 32-bit pattern; Kestrel
        /// ignores them.
        flags: u32,
        /// The memcache expiry (spec f.2): 0 never, up to 999 999 relative seconds, above that
        /// absolute epoch seconds, negative already expired. A Java `Int` on the wire.
        exptime: i64,
        /// The payload's byte range in the parsed input.
        data: Range<usize>,
    },
    /// `get <q>[/opt]*` or `gets ...` (gets is accepted as get). Extra keys are ignored.
    Get {
        /// The queue name, without the `/options`.
        queue: SmolStr,
        /// The options that followed the name.
        options: GetOptions,
    },
    /// `monitor <q> <seconds> [<max_items>]`.
    Monitor {
        /// The queue to read from.
        queue: SmolStr,
        /// How long to stream items; a negative value on the wire is 0.
        seconds: u32,
        /// At most this many items (`None`: the server's open-read limit); a negative value on
        /// the wire is 0.
        max_items: Option<u32>,
    },
    /// `confirm <q> <count>`; count 0 is parsed (the server answers `ERROR`), negative is rejected.
    Confirm {
        /// The queue whose open reads to confirm.
        queue: SmolStr,
        /// How many of this connection's oldest open reads to confirm.
        count: u32,
    },
    /// `delete <q>`.
    Delete {
        /// The queue to delete.
        queue: SmolStr,
    },
    /// `flush <q>`.
    Flush {
        /// The queue to empty.
        queue: SmolStr,
    },
    /// `flush_all`.
    FlushAll,
    /// `flush_expired <q>`.
    FlushExpired {
        /// The queue to remove expired items from.
        queue: SmolStr,
    },
    /// `flush_all_expired`.
    FlushAllExpired,
    /// `stats` (arguments ignored).
    Stats,
    /// `dump_stats [<q> ...]`.
    DumpStats {
        /// The queues to report; empty means all queues and aliases.
        queues: Vec<SmolStr>,
    },
    /// `dump_config`.
    DumpConfig,
    /// `version`.
    Version,
    /// `reload`.
    Reload,
    /// `shutdown`.
    Shutdown,
    /// `quit`.
    Quit,
    /// `status` (None) or `status <name>` (the name, lower-cased, not yet validated).
    Status {
        /// The status to switch to, or `None` to ask for the current one.
        new_status: Option<String>,
    },
}

/// The `/`-separated options of a get key (spec b.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GetOptions {
    /// `t=<ms>`; `None` when absent, or when zero or negative (no wait).
    pub timeout_ms: Option<u32>,
    /// `open`: a reliable read, kept open until confirmed or aborted.
    pub open: bool,
    /// `close`: confirm this connection's oldest open read on the queue.
    pub close: bool,
    /// `abort`: return this connection's oldest open read on the queue to its head.
    pub abort: bool,
    /// `peek`: return the head item without removing it.
    pub peek: bool,
}
