//! Journal records and their framing: `len: u32 | crc: u32 | opcode: u8 | payload`.
//!
//! `len` counts the opcode and payload; `crc` is CRC32C over the four `len` bytes followed by
//! the opcode and payload, so a damaged length field is caught like damaged content.

use bytes::Bytes;

/// Bytes of framing in front of every record's content (`len` and `crc`).
pub(crate) const FRAME_HEADER_LEN: usize = 8;

const OP_ADD: u8 = 1;
const OP_REMOVE: u8 = 2;
const OP_REMOVE_TENTATIVE: u8 = 3;
const OP_UNREMOVE: u8 = 4;
const OP_CONFIRM_REMOVE: u8 = 5;

/// Bytes of an `Add` payload before its data: `add_time_ms` and `expiry_ms`.
const ADD_FIXED_LEN: usize = 16;
const XID_LEN: usize = 4;

/// One change to a queue's state, as journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// An item added to the tail. `expiry_ms`: absolute epoch ms, 0 = never.
    Add {
        /// When the item was added, epoch ms.
        add_time_ms: i64,
        /// When the item expires, epoch ms; 0 = never.
        expiry_ms: i64,
        /// The item's payload.
        data: Bytes,
    },
    /// The head item was removed (plain get, flush, expiry, discard).
    Remove,
    /// The head item was removed into open read `xid`.
    RemoveTentative {
        /// The open read's id.
        xid: u32,
    },
    /// Open read `xid` was aborted: its item goes back to the head.
    Unremove {
        /// The open read's id.
        xid: u32,
    },
    /// Open read `xid` was confirmed: its item is gone.
    ConfirmRemove {
        /// The open read's id.
        xid: u32,
    },
}

impl Record {
    /// Bytes this record takes on disk, framing included.
    pub fn encoded_len(&self) -> u64 {
        FRAME_HEADER_LEN as u64 + self.content_len()
    }

    /// Bytes an `Add` of a `payload_len`-byte item takes on disk, framing included.
    pub fn add_encoded_len(payload_len: usize) -> u64 {
        FRAME_HEADER_LEN as u64 + add_content_len(payload_len)
    }

    /// Bytes of opcode plus payload (the value of the `len` field).
    pub(crate) fn content_len(&self) -> u64 {
        if let Record::Add { data, .. } = self {
            return add_content_len(data.len());
        }
        1 + match self {
            Record::Add { .. } | Record::Remove => 0,
            Record::RemoveTentative { .. }
            | Record::Unremove { .. }
            | Record::ConfirmRemove { .. } => XID_LEN as u64,
        }
    }

    /// Appends the framed record to `buf`. The caller guarantees `content_len() <= u32::MAX`.
    pub(crate) fn encode_into(&self, buf: &mut Vec<u8>) {
        framed(buf, self.content_len(), |buf| match self {
            Record::Add {
                add_time_ms,
                expiry_ms,
                data,
            } => push_add(buf, *add_time_ms, *expiry_ms, data),
            Record::Remove => buf.push(OP_REMOVE),
            Record::RemoveTentative { xid } => push_xid(buf, OP_REMOVE_TENTATIVE, *xid),
            Record::Unremove { xid } => push_xid(buf, OP_UNREMOVE, *xid),
            Record::ConfirmRemove { xid } => push_xid(buf, OP_CONFIRM_REMOVE, *xid),
        });
    }
}

/// Bytes of opcode plus payload of an `Add` of a `payload_len`-byte item.
pub(crate) fn add_content_len(payload_len: usize) -> u64 {
    (1 + ADD_FIXED_LEN + payload_len) as u64
}

/// Appends a framed `Add` of `data` to `buf`, as [`Record::encode_into`] would, without a
/// `Record` and so without a second handle on the payload. The caller guarantees
/// `add_content_len(data.len()) <= u32::MAX`.
pub(crate) fn encode_add_into(buf: &mut Vec<u8>, add_time_ms: i64, expiry_ms: i64, data: &[u8]) {
    framed(buf, add_content_len(data.len()), |buf| {
        push_add(buf, add_time_ms, expiry_ms, data);
    });
}

/// Appends `len | crc | content` to `buf`, with the content written by `content`.
fn framed(buf: &mut Vec<u8>, content_len: u64, content: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    let len = u32::try_from(content_len).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    content(buf);
    let crc = checksum(len, &buf[start + FRAME_HEADER_LEN..]);
    buf[start + 4..start + FRAME_HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
}

fn push_add(buf: &mut Vec<u8>, add_time_ms: i64, expiry_ms: i64, data: &[u8]) {
    buf.push(OP_ADD);
    buf.extend_from_slice(&add_time_ms.to_le_bytes());
    buf.extend_from_slice(&expiry_ms.to_le_bytes());
    buf.extend_from_slice(data);
}

fn push_xid(buf: &mut Vec<u8>, opcode: u8, xid: u32) {
    buf.push(opcode);
    buf.extend_from_slice(&xid.to_le_bytes());
}

fn checksum(len: u32, content: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len.to_le_bytes()), content)
}

/// Why a record could not be decoded. The `Display` text is the `reason` of a corruption report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("incomplete record frame ({0} bytes left)")]
    Incomplete(u64),
    #[error("record length 0")]
    EmptyRecord,
    #[error("record length {len} exceeds the maximum {max}")]
    TooLong { len: u32, max: u64 },
    #[error("record length {len} runs past the end of the file ({available} bytes left)")]
    PastEnd { len: u32, available: u64 },
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum { stored: u32, computed: u32 },
    #[error("unknown opcode {0}")]
    UnknownOpcode(u8),
    #[error("opcode {opcode} with a payload of {len} bytes")]
    BadPayload { opcode: u8, len: usize },
}

/// The two framing fields in front of a record's content.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    /// Content length (opcode plus payload).
    pub len: u32,
    crc: u32,
}

impl Frame {
    /// Parses and bounds-checks a frame header, before anything is allocated for the content:
    /// `len` must be non-zero, at most `max` and at most `available` (bytes after the frame header).
    pub(crate) fn parse(
        bytes: [u8; FRAME_HEADER_LEN],
        max: u64,
        available: u64,
    ) -> Result<Frame, DecodeError> {
        let [l0, l1, l2, l3, c0, c1, c2, c3] = bytes;
        let len = u32::from_le_bytes([l0, l1, l2, l3]);
        let crc = u32::from_le_bytes([c0, c1, c2, c3]);
        if len == 0 {
            return Err(DecodeError::EmptyRecord);
        }
        if u64::from(len) > max {
            return Err(DecodeError::TooLong { len, max });
        }
        if u64::from(len) > available {
            return Err(DecodeError::PastEnd { len, available });
        }
        Ok(Frame { len, crc })
    }

    /// Verifies the checksum of `content` (exactly `len` bytes) and decodes it.
    pub(crate) fn decode(self, content: Bytes) -> Result<Record, DecodeError> {
        self.verify(&content)?;
        decode_content(content)
    }

    pub(crate) fn verify(self, content: &[u8]) -> Result<(), DecodeError> {
        let computed = checksum(self.len, content);
        if computed != self.crc {
            return Err(DecodeError::Checksum {
                stored: self.crc,
                computed,
            });
        }
        Ok(())
    }
}

/// Decodes a record's content (opcode and payload) whose checksum was verified.
pub(crate) fn decode_content(content: Bytes) -> Result<Record, DecodeError> {
    let Some((&opcode, payload)) = content.split_first() else {
        return Err(DecodeError::EmptyRecord);
    };
    let bad_payload = || DecodeError::BadPayload {
        opcode,
        len: payload.len(),
    };
    match opcode {
        OP_ADD => {
            let (add_time, rest) = payload.split_first_chunk::<8>().ok_or_else(bad_payload)?;
            let (expiry, _) = rest.split_first_chunk::<8>().ok_or_else(bad_payload)?;
            Ok(Record::Add {
                add_time_ms: i64::from_le_bytes(*add_time),
                expiry_ms: i64::from_le_bytes(*expiry),
                data: content.slice(1 + ADD_FIXED_LEN..),
            })
        }
        OP_REMOVE if payload.is_empty() => Ok(Record::Remove),
        OP_REMOVE => Err(bad_payload()),
        OP_REMOVE_TENTATIVE => Ok(Record::RemoveTentative {
            xid: xid(payload).ok_or_else(bad_payload)?,
        }),
        OP_UNREMOVE => Ok(Record::Unremove {
            xid: xid(payload).ok_or_else(bad_payload)?,
        }),
        OP_CONFIRM_REMOVE => Ok(Record::ConfirmRemove {
            xid: xid(payload).ok_or_else(bad_payload)?,
        }),
        other => Err(DecodeError::UnknownOpcode(other)),
    }
}

/// The xid of a payload that is exactly one `u32`.
fn xid(payload: &[u8]) -> Option<u32> {
    <[u8; XID_LEN]>::try_from(payload)
        .ok()
        .map(u32::from_le_bytes)
}

/// Whether an intact record of any length starts at `buf[at..]`. Used to tell a torn tail
/// from damage in the middle, so an intact record over `max_record_size` is never mistaken
/// for a torn tail. Copies nothing; the structure check rules out almost every false
/// candidate before the checksum is computed.
pub(crate) fn intact_record_at(buf: &Bytes, at: usize) -> bool {
    let Some((header, rest)) = buf[at..].split_first_chunk::<FRAME_HEADER_LEN>() else {
        return false;
    };
    let Ok(frame) = Frame::parse(*header, u64::MAX, rest.len() as u64) else {
        return false;
    };
    let start = at + FRAME_HEADER_LEN;
    let content = buf.slice(start..start + frame.len as usize);
    decode_content(content.clone()).is_ok() && frame.verify(&content).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 1 << 20;

    #[test]
    fn an_add_encoded_from_borrowed_data_is_the_records_encoding() {
        for record in samples() {
            let Record::Add {
                add_time_ms,
                expiry_ms,
                data,
            } = &record
            else {
                continue;
            };
            let (mut borrowed, mut owned) = (Vec::new(), Vec::new());
            encode_add_into(&mut borrowed, *add_time_ms, *expiry_ms, data);
            record.encode_into(&mut owned);
            assert_eq!(borrowed, owned);
            assert_eq!(Record::add_encoded_len(data.len()), record.encoded_len());
        }
    }

    fn samples() -> Vec<Record> {
        vec![
            Record::Add {
                add_time_ms: 1_700_000_000_123,
                expiry_ms: 0,
                data: Bytes::from_static(b"hello kitty"),
            },
            Record::Add {
                add_time_ms: -1,
                expiry_ms: i64::MAX,
                data: Bytes::new(),
            },
            Record::Remove,
            Record::RemoveTentative { xid: 7 },
            Record::Unremove { xid: u32::MAX },
            Record::ConfirmRemove { xid: 0 },
        ]
    }

    fn encode(record: &Record) -> Vec<u8> {
        let mut buf = Vec::new();
        record.encode_into(&mut buf);
        buf
    }

    fn decode(buf: &[u8]) -> Result<(Record, usize), DecodeError> {
        let (header, rest) = buf
            .split_first_chunk::<FRAME_HEADER_LEN>()
            .ok_or(DecodeError::Incomplete(buf.len() as u64))?;
        let frame = Frame::parse(*header, MAX, rest.len() as u64)?;
        let len = frame.len as usize;
        Ok((
            frame.decode(Bytes::copy_from_slice(&rest[..len]))?,
            FRAME_HEADER_LEN + len,
        ))
    }

    #[test]
    fn every_record_round_trips() {
        for record in samples() {
            let buf = encode(&record);
            assert_eq!(buf.len() as u64, record.encoded_len(), "{record:?}");
            assert_eq!(decode(&buf), Ok((record.clone(), buf.len())));
            assert!(intact_record_at(&Bytes::from(buf.clone()), 0));
        }
    }

    #[test]
    fn checksum_is_crc32c() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn byte_layout_is_fixed() {
        let add = Record::Add {
            add_time_ms: 0x0102,
            expiry_ms: 3,
            data: Bytes::from_static(b"hi"),
        };
        let buf = encode(&add);
        assert_eq!(&buf[..4], &19u32.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&buf[..4]), &buf[8..]);
        assert_eq!(&buf[4..8], &crc.to_le_bytes());
        assert_eq!(&buf[8..], b"\x01\x02\x01\0\0\0\0\0\0\x03\0\0\0\0\0\0\0hi");
        assert_eq!(&encode(&Record::Remove)[8..], b"\x02");
        assert_eq!(
            &encode(&Record::RemoveTentative { xid: 0x0a0b })[8..],
            b"\x03\x0b\x0a\0\0"
        );
        assert_eq!(
            &encode(&Record::Unremove { xid: 1 })[8..],
            b"\x04\x01\0\0\0"
        );
        assert_eq!(
            &encode(&Record::ConfirmRemove { xid: 1 })[8..],
            b"\x05\x01\0\0\0"
        );
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let buf = encode(&samples()[0]);
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut]).is_err(), "cut {cut}");
            assert!(!intact_record_at(&Bytes::copy_from_slice(&buf[..cut]), 0));
        }
    }

    #[test]
    fn every_bit_flip_is_detected() {
        for record in samples() {
            let buf = encode(&record);
            for bit in 0..buf.len() * 8 {
                let mut flipped = buf.clone();
                flipped[bit / 8] ^= 1 << (bit % 8);
                assert!(decode(&flipped).is_err(), "{record:?} bit {bit}");
            }
        }
    }

    /// Frames with a valid checksum but content that is not a record.
    fn framed(content: &[u8]) -> Vec<u8> {
        let len = content.len() as u32;
        let mut buf = len.to_le_bytes().to_vec();
        buf.extend_from_slice(&checksum(len, content).to_le_bytes());
        buf.extend_from_slice(content);
        buf
    }

    #[test]
    fn bad_structure_is_rejected() {
        let cases: [(&[u8], DecodeError); 5] = [
            (b"\x00", DecodeError::UnknownOpcode(0)),
            (b"\x09", DecodeError::UnknownOpcode(9)),
            (b"\x01short", DecodeError::BadPayload { opcode: 1, len: 5 }),
            (b"\x02x", DecodeError::BadPayload { opcode: 2, len: 1 }),
            (
                b"\x03\x01\x02\x03",
                DecodeError::BadPayload { opcode: 3, len: 3 },
            ),
        ];
        for (content, expected) in cases {
            assert_eq!(decode(&framed(content)), Err(expected));
            assert!(!intact_record_at(&Bytes::from(framed(content)), 0));
        }
    }

    #[test]
    fn length_is_checked_before_allocation() {
        let header = |len: u32| {
            let mut bytes = [0; FRAME_HEADER_LEN];
            bytes[..4].copy_from_slice(&len.to_le_bytes());
            bytes
        };
        assert_eq!(
            Frame::parse(header(0), MAX, 100).err(),
            Some(DecodeError::EmptyRecord)
        );
        assert_eq!(
            Frame::parse(header(u32::MAX), MAX, u64::MAX).err(),
            Some(DecodeError::TooLong {
                len: u32::MAX,
                max: MAX
            })
        );
        assert_eq!(
            Frame::parse(header(101), MAX, 100).err(),
            Some(DecodeError::PastEnd {
                len: 101,
                available: 100
            })
        );
        assert!(Frame::parse(header(100), MAX, 100).is_ok());
    }
}
