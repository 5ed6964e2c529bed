//! The bytes every benchmark message carries, so a consumer can tell which producer sent it, in
//! which order, when, and whether it arrived intact.
//!
//! Layout (little-endian), then filler up to the requested size:
//!
//! | bytes  | field                                                       |
//! |--------|-------------------------------------------------------------|
//! | 0..4   | magic `LNB1`                                                |
//! | 4..8   | producer id (u32)                                           |
//! | 8..16  | sequence number within that producer (u64), from 0          |
//! | 16..24 | send time in ns since the run's epoch (u64), for end-to-end latency |
//! | 24..   | filler: every byte `b'a' + seq % 26`, so truncation or mixing is visible |

/// Bytes taken by the header; the smallest payload the tool sends.
pub const HEADER_LEN: usize = 24;

const MAGIC: [u8; 4] = *b"LNB1";

/// Who sent a message, its place in that producer's sequence, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub producer: u32,
    pub seq: u64,
    pub sent_ns: u64,
}

/// Why a received payload is not one the tool sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corrupt {
    TooShort,
    BadMagic,
    BadFiller,
    WrongSize,
}

/// Appends a payload of exactly `size` bytes (at least [`HEADER_LEN`]) to `out`.
pub fn encode(stamp: Stamp, size: usize, out: &mut Vec<u8>) {
    debug_assert!(size >= HEADER_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&stamp.producer.to_le_bytes());
    out.extend_from_slice(&stamp.seq.to_le_bytes());
    out.extend_from_slice(&stamp.sent_ns.to_le_bytes());
    out.resize(out.len() + size - HEADER_LEN, filler(stamp.seq));
}

/// Reads and checks a payload; `expected_size` (if given) must match its length.
pub fn decode(payload: &[u8], expected_size: Option<usize>) -> Result<Stamp, Corrupt> {
    if payload.len() < HEADER_LEN {
        return Err(Corrupt::TooShort);
    }
    if payload[..4] != MAGIC {
        return Err(Corrupt::BadMagic);
    }
    let producer = u32::from_le_bytes(payload[4..8].try_into().expect("4 bytes"));
    let seq = u64::from_le_bytes(payload[8..16].try_into().expect("8 bytes"));
    let sent_ns = u64::from_le_bytes(payload[16..24].try_into().expect("8 bytes"));
    let fill = filler(seq);
    if !payload[HEADER_LEN..].iter().all(|&byte| byte == fill) {
        return Err(Corrupt::BadFiller);
    }
    if expected_size.is_some_and(|size| size != payload.len()) {
        return Err(Corrupt::WrongSize);
    }
    Ok(Stamp {
        producer,
        seq,
        sent_ns,
    })
}

fn filler(seq: u64) -> u8 {
    b'a' + (seq % 26) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_size() {
        for size in [HEADER_LEN, 25, 64, 1024] {
            let stamp = Stamp {
                producer: 7,
                seq: 123_456_789_012,
                sent_ns: 42,
            };
            let mut out = b"prefix".to_vec();
            encode(stamp, size, &mut out);
            assert_eq!(out.len(), 6 + size);
            assert_eq!(decode(&out[6..], Some(size)), Ok(stamp));
        }
    }

    #[test]
    fn detects_damage() {
        let stamp = Stamp {
            producer: 1,
            seq: 3,
            sent_ns: 0,
        };
        let mut out = Vec::new();
        encode(stamp, 64, &mut out);
        assert_eq!(decode(&out[..20], None), Err(Corrupt::TooShort));
        assert_eq!(decode(&out[..40], Some(64)), Err(Corrupt::WrongSize));
        let mut bad = out.clone();
        bad[0] = b'X';
        assert_eq!(decode(&bad, None), Err(Corrupt::BadMagic));
        let mut bad = out.clone();
        bad[63] ^= 1;
        assert_eq!(decode(&bad, None), Err(Corrupt::BadFiller));
        // A different sequence number expects a different filler byte.
        let mut bad = out;
        bad[8] = 4;
        assert_eq!(decode(&bad, None), Err(Corrupt::BadFiller));
    }
}
