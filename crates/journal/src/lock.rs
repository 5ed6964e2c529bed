//! The data-directory lock that keeps two servers from sharing a directory.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::Path;

use crate::error::{IoContext, JournalError};

/// Exclusive lock on the data directory (`<dir>/LOCK`), held until dropped; keep it for the
/// process lifetime.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Takes the lock on `dir` (creating `dir` if missing) with `File::try_lock`, or fails with
/// `Locked` if another process (or another `DirLock` in this one) holds it.
pub fn lock_dir(dir: &Path) -> Result<DirLock, JournalError> {
    fs::create_dir_all(dir).at(dir)?;
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .at(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(DirLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(JournalError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(TryLockError::Error(e)) => Err(e).at(&path),
    }
}
