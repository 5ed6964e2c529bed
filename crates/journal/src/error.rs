//! The crate's error type.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong opening, writing or locking a journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An operating-system error on a file or directory.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory the failed call was about.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A damaged record that is not a torn tail (and salvage was not requested).
    #[error(
        "journal {path} is corrupt at offset {offset}: {reason} (start with --salvage to truncate it there)"
    )]
    Corrupt {
        /// The segment file holding the damage.
        path: PathBuf,
        /// Byte offset of the first damaged record (or 0 for a damaged header).
        offset: u64,
        /// What was wrong with it.
        reason: String,
    },
    /// An fsync (or a rename or cleanup) failed earlier; the journal refuses all further
    /// writes, since what reached the disk is unknown.
    #[error(
        "journal for queue {queue} is poisoned after a failed fsync or file operation; restart the server"
    )]
    Poisoned {
        /// The queue whose journal failed.
        queue: String,
    },
    /// Another process holds the data directory lock.
    #[error("data directory {path} is locked by another process")]
    Locked {
        /// The data directory.
        path: PathBuf,
    },
    /// A segment header names a format version this build cannot read.
    #[error("unsupported journal format version {version} in {path}")]
    Version {
        /// The segment file.
        path: PathBuf,
        /// The version byte found in its header.
        version: u8,
    },
}

/// Attaches the path an I/O call was about to its error.
pub(crate) trait IoContext<T> {
    /// Converts an `io::Result` into a `JournalError::Io` naming `path`.
    fn at(self, path: &Path) -> Result<T, JournalError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T, JournalError> {
        self.map_err(|source| io_error(path, source))
    }
}

/// `source`, as an error about `path`.
pub(crate) fn io_error(path: &Path, source: io::Error) -> JournalError {
    JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}
