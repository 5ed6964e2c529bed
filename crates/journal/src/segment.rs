//! Segment file header: `magic "LNRJ" | version: u8 | flags: u8 | segment: u64 | crc: u32`.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use crate::error::{IoContext, JournalError};
use crate::storage::{Reader, Storage, StorageFile};

/// Bytes of the header at the start of every segment file.
pub(crate) const HEADER_LEN: u64 = 18;
const MAGIC: [u8; 4] = *b"LNRJ";
/// The only format version this build reads and writes.
pub(crate) const VERSION: u8 = 1;
const FLAG_SNAPSHOT: u8 = 1;
/// Bytes of the header covered by its checksum.
const CHECKED_LEN: usize = 14;

/// The decoded header of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The segment supersedes every segment with a lower number.
    pub snapshot: bool,
    /// The segment's number; must match its file name.
    pub segment: u64,
}

/// The outcome of checking the first bytes of a segment file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderCheck {
    Valid(Header),
    /// Shorter than a header, or a zero-filled header: a creation interrupted by a crash.
    Torn,
    /// The magic matches but the version byte is not ours.
    Version(u8),
    /// Anything else wrong, with the reason.
    Invalid(String),
}

impl Header {
    /// The header's on-disk bytes.
    pub(crate) fn encode(self) -> [u8; HEADER_LEN as usize] {
        let mut bytes = [0; HEADER_LEN as usize];
        bytes[..4].copy_from_slice(&MAGIC);
        bytes[4] = VERSION;
        bytes[5] = if self.snapshot { FLAG_SNAPSHOT } else { 0 };
        bytes[6..CHECKED_LEN].copy_from_slice(&self.segment.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[..CHECKED_LEN]);
        bytes[CHECKED_LEN..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Checks `bytes` (the first up to `HEADER_LEN` bytes of the file of segment `expected`).
    pub(crate) fn check(bytes: &[u8], expected: u64) -> HeaderCheck {
        if bytes.len() > 4 && bytes[..4] == MAGIC && bytes[4] != VERSION {
            return HeaderCheck::Version(bytes[4]);
        }
        let Some(header) = bytes.first_chunk::<{ HEADER_LEN as usize }>() else {
            return HeaderCheck::Torn;
        };
        if header.iter().all(|&b| b == 0) {
            return HeaderCheck::Torn;
        }
        let [
            m0,
            m1,
            m2,
            m3,
            _version,
            flags,
            s0,
            s1,
            s2,
            s3,
            s4,
            s5,
            s6,
            s7,
            c0,
            c1,
            c2,
            c3,
        ] = *header;
        let segment = u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]);
        let stored = u32::from_le_bytes([c0, c1, c2, c3]);
        let reason = if [m0, m1, m2, m3] != MAGIC {
            "bad magic (not a lanner journal segment)".to_owned()
        } else if crc32c::crc32c(&header[..CHECKED_LEN]) != stored {
            "header checksum mismatch".to_owned()
        } else if flags & !FLAG_SNAPSHOT != 0 {
            format!("unknown header flags {flags:#04x}")
        } else if segment != expected {
            format!("header names segment {segment}, file name says {expected}")
        } else {
            return HeaderCheck::Valid(Header {
                snapshot: flags == FLAG_SNAPSHOT,
                segment,
            });
        };
        HeaderCheck::Invalid(reason)
    }
}

/// Reads up to `HEADER_LEN` bytes from the start of `file`.
pub(crate) fn read_header_bytes(
    file: &dyn StorageFile,
    path: &Path,
) -> Result<Vec<u8>, JournalError> {
    let mut bytes = Vec::with_capacity(HEADER_LEN as usize);
    Reader::new(file, 0)
        .take(HEADER_LEN)
        .read_to_end(&mut bytes)
        .at(path)?;
    Ok(bytes)
}

/// Why [`create`] failed.
#[derive(Debug)]
pub(crate) enum CreateFailure {
    /// Nothing is left behind: the same segment can be created again later.
    Clean(JournalError),
    /// The header could not be written and the file could not be removed again: a retry
    /// would find it in the way.
    LeftBehind(JournalError),
}

impl From<CreateFailure> for JournalError {
    fn from(failure: CreateFailure) -> Self {
        match failure {
            CreateFailure::Clean(error) | CreateFailure::LeftBehind(error) => error,
        }
    }
}

/// Creates `path` (which must not exist) and writes `header` at its start. If the header
/// cannot be written the file is removed again. The caller fsyncs the directory.
pub(crate) fn create(
    storage: &dyn Storage,
    path: &Path,
    header: Header,
) -> Result<Arc<dyn StorageFile>, CreateFailure> {
    let file = storage
        .create_new(path)
        .at(path)
        .map_err(CreateFailure::Clean)?;
    if let Err(e) = file.write_at(&header.encode(), 0) {
        drop(file);
        crate::files::remove_file(storage, path).map_err(CreateFailure::LeftBehind)?;
        return Err(e).at(path).map_err(CreateFailure::Clean);
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        for header in [
            Header {
                snapshot: false,
                segment: 1,
            },
            Header {
                snapshot: true,
                segment: u64::MAX,
            },
        ] {
            assert_eq!(
                Header::check(&header.encode(), header.segment),
                HeaderCheck::Valid(header)
            );
        }
    }

    #[test]
    fn header_layout_is_fixed() {
        let bytes = Header {
            snapshot: true,
            segment: 0x0102,
        }
        .encode();
        assert_eq!(&bytes[..14], b"LNRJ\x01\x01\x02\x01\0\0\0\0\0\0");
    }

    #[test]
    fn torn_headers() {
        let full = Header {
            snapshot: false,
            segment: 3,
        }
        .encode();
        for len in 0..full.len() {
            let check = Header::check(&full[..len], 3);
            // Five bytes or more carry the (valid) version; still too short to be a header.
            assert_eq!(check, HeaderCheck::Torn, "prefix of {len}");
        }
        assert_eq!(
            Header::check(&[0; HEADER_LEN as usize], 3),
            HeaderCheck::Torn
        );
    }

    #[test]
    fn damaged_headers() {
        let good = Header {
            snapshot: false,
            segment: 3,
        }
        .encode();
        let mut version = good;
        version[4] = 2;
        assert_eq!(Header::check(&version, 3), HeaderCheck::Version(2));
        assert!(
            matches!(Header::check(&good, 4), HeaderCheck::Invalid(r) if r.contains("names segment 3"))
        );
        for i in [0, 5, 6, 13, 14, 17] {
            let mut flipped = good;
            flipped[i] ^= 0x10;
            assert!(
                matches!(Header::check(&flipped, 3), HeaderCheck::Invalid(_)),
                "byte {i}"
            );
        }
    }
}
