//! Fault injection for tests: a test arms one failure point on its own thread, and the next
//! I/O call at that point on that thread fails as if the disk had refused it.
//! Outside `cfg(test)` every check is an inlined `Ok(())`.

use std::io;

/// A point in the write path where a test can make I/O fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Writing records or a header.
    Write,
    /// fsync of a segment file.
    Sync,
    /// Renaming a finished rewrite into place.
    Rename,
    /// Deleting the segments a rewrite superseded.
    RemoveOld,
}

#[cfg(test)]
thread_local! {
    static ARMED: std::cell::Cell<Option<Fault>> = const { std::cell::Cell::new(None) };
}

/// Fails if a test armed `point` on this thread (the fault stays armed until disarmed).
#[cfg(test)]
pub(crate) fn inject(point: Fault) -> io::Result<()> {
    if ARMED.get() == Some(point) {
        return Err(io::Error::other(format!("injected {point:?} fault")));
    }
    Ok(())
}

/// Never fails outside tests.
#[cfg(not(test))]
#[inline]
pub(crate) fn inject(_point: Fault) -> io::Result<()> {
    Ok(())
}

/// Arms `point` (or disarms with `None`) for I/O on the calling thread.
#[cfg(test)]
pub(crate) fn arm(point: Option<Fault>) {
    ARMED.set(point);
}
