//! File names in the data directory, directory listing and directory fsync.
//!
//! A segment is `<queue>.<number, 20 digits>.journal`; a rewrite in progress writes
//! `<queue>.<number, 20 digits>.journal.tmp`. Queue names never contain `.`, so a name splits
//! at its first `.`. Every other file in the directory is ignored.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, JournalError};
use crate::storage::Storage;

const SEGMENT_SUFFIX: &str = ".journal";
const TEMP_SUFFIX: &str = ".journal.tmp";
const NUMBER_DIGITS: usize = 20;

/// Path of segment `number` of `queue`.
pub(crate) fn segment_path(dir: &Path, queue: &str, number: u64) -> PathBuf {
    dir.join(format!("{queue}.{number:020}{SEGMENT_SUFFIX}"))
}

/// Path of the temporary file a rewrite into segment `number` writes before renaming it.
pub(crate) fn temp_path(dir: &Path, queue: &str, number: u64) -> PathBuf {
    dir.join(format!("{queue}.{number:020}{TEMP_SUFFIX}"))
}

/// True for names lanner can use as a file-name prefix: non-empty, without `.`, `/`, `~`,
/// spaces or control characters.
pub(crate) fn is_valid_queue_name(queue: &str) -> bool {
    !queue.is_empty()
        && !queue
            .chars()
            .any(|c| matches!(c, '.' | '/' | '~' | ' ') || c.is_control())
}

/// What a file name lanner created denotes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A journal segment.
    Segment,
    /// A leftover (or in-progress) rewrite.
    Temp,
}

/// A parsed lanner file name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FileName<'a> {
    pub queue: &'a str,
    pub number: u64,
    pub kind: FileKind,
}

/// Parses a file name created by lanner; `None` for anything else.
pub(crate) fn parse_file_name(name: &str) -> Option<FileName<'_>> {
    let (queue, rest) = name.split_once('.')?;
    let (digits, kind) = match rest.strip_suffix(TEMP_SUFFIX) {
        Some(digits) => (digits, FileKind::Temp),
        None => (rest.strip_suffix(SEGMENT_SUFFIX)?, FileKind::Segment),
    };
    if !is_valid_queue_name(queue)
        || digits.len() != NUMBER_DIGITS
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some(FileName {
        queue,
        number: digits.parse().ok()?,
        kind,
    })
}

/// The files of one queue.
#[derive(Debug, Default)]
pub(crate) struct QueueFiles {
    /// Segments, sorted by number.
    pub segments: Vec<(u64, PathBuf)>,
    /// Temporary files of interrupted rewrites.
    pub temps: Vec<PathBuf>,
}

/// Lists the files of `queue` in `dir` (none if `dir` does not exist).
pub(crate) fn queue_files(
    storage: &dyn Storage,
    dir: &Path,
    queue: &str,
) -> Result<QueueFiles, JournalError> {
    let mut files = QueueFiles::default();
    for name in file_names(storage, dir)? {
        match parse_file_name(&name) {
            Some(parsed) if parsed.queue == queue => {
                let path = dir.join(&name);
                match parsed.kind {
                    FileKind::Segment => files.segments.push((parsed.number, path)),
                    FileKind::Temp => files.temps.push(path),
                }
            }
            _ => {}
        }
    }
    files.segments.sort_unstable();
    Ok(files)
}

/// Names of the queues that have journal segments in `dir`, sorted. Only file names lanner
/// itself creates count; anything else (including leftover rewrite temp files, which
/// [`Journal::open`](crate::Journal::open) deletes) is ignored. A missing `dir` has no queues.
pub fn list_queues(storage: &dyn Storage, dir: &Path) -> Result<Vec<String>, JournalError> {
    let queues: BTreeSet<String> = file_names(storage, dir)?
        .iter()
        .filter_map(|name| parse_file_name(name))
        .filter(|parsed| parsed.kind == FileKind::Segment)
        .map(|parsed| parsed.queue.to_owned())
        .collect();
    Ok(queues.into_iter().collect())
}

/// UTF-8 names of the regular files in `dir` (none if it does not exist).
fn file_names(storage: &dyn Storage, dir: &Path) -> Result<Vec<String>, JournalError> {
    match storage.file_names(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        names => names.at(dir),
    }
}

/// Makes creations, renames and deletions in `dir` durable.
pub(crate) fn sync_dir(storage: &dyn Storage, dir: &Path) -> Result<(), JournalError> {
    storage.sync_dir(dir).at(dir)
}

/// Removes `path`; an already missing file is fine.
pub(crate) fn remove_file(storage: &dyn Storage, path: &Path) -> Result<(), JournalError> {
    match storage.remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).at(path),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let dir = Path::new("/d");
        let seg = segment_path(dir, "jobs", 42);
        assert_eq!(seg, Path::new("/d/jobs.00000000000000000042.journal"));
        let name = seg.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(
            parse_file_name(name),
            Some(FileName {
                queue: "jobs",
                number: 42,
                kind: FileKind::Segment
            })
        );
        let tmp = temp_path(dir, "a+b", u64::MAX);
        let name = tmp.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(
            parse_file_name(name),
            Some(FileName {
                queue: "a+b",
                number: u64::MAX,
                kind: FileKind::Temp
            })
        );
    }

    #[test]
    fn foreign_names_are_ignored() {
        for name in [
            "LOCK",
            "jobs",
            "jobs.journal",
            "jobs.1.journal",
            "jobs.000000000000000000001.journal",
            "jobs.0000000000000000000x.journal",
            "jobs.00000000000000000001.journal.bak",
            ".00000000000000000001.journal",
            "jo bs.00000000000000000001.journal",
            "jobs.99999999999999999999.journal",
            "jobs.1700000000000",
            "jobs~~1700000000000",
        ] {
            assert_eq!(parse_file_name(name), None, "{name}");
        }
    }

    #[test]
    fn queue_name_rules() {
        assert!(is_valid_queue_name("a+b_c-1"));
        for bad in ["", "a.b", "a/b", "a~b", "a b", "a\nb", "a\0b"] {
            assert!(!is_valid_queue_name(bad), "{bad:?}");
        }
    }
}
