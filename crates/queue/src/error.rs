//! Errors of queue operations.

use lanner_journal::JournalError;

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The journal refused or failed the write; nothing was acknowledged.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The journal failed earlier and accepts no more writes until a restart.
    #[error("journal for queue {queue} is poisoned after a failed fsync; restart the server")]
    Poisoned { queue: String },
    /// The queue was deleted while the operation was on its way; retry on the new queue.
    #[error("queue was deleted")]
    Deleted,
    /// The name cannot be a queue (Part 0 #4).
    #[error("bad queue name")]
    BadName,
}
