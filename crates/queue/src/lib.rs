//! Kestrel's queue semantics over lanner's journal: FIFO queues created on first reference,
//! reliable reads (open, confirm, abort), blocking-read waiters woken oldest first, memcache
//! expiry, and compaction that keeps each journal within a small multiple of its live data.
//!
//! Synchronous except for [`Queue::take_blocking`]; time comes from an injectable [`Clock`].

mod backlog;
mod clock;
mod collection;
mod error;
mod group_commit;
mod item;
mod limits;
mod queue;
mod spill;
mod state;

pub use clock::{Clock, ManualClock, SystemClock};
pub use collection::{
    Commits, FanoutPut, OptionsResolver, QueueCollection, RecoveredQueue, RecoveryProgress,
};
pub use error::QueueError;
pub use item::{Item, NEVER, expiry_from_exptime};
pub use lanner_journal::Seq;
pub use limits::QueueLimits;
pub use queue::{
    PutOutcome, Queue, QueueOptions, QueueStats, SyncPolicy, TakeMode, TakeOutcome, Taken,
};
pub use state::Counters;
