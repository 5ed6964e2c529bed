//! The replies of the text protocol (spec a.5): one line each, ended by LF.

use bytes::{Bytes, BytesMut};

/// One text-protocol reply. `encode` appends its exact wire bytes to a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextReply {
    /// `+<n>\n`: a count, or success.
    Count(u64),
    /// `-<message>\n`: an error.
    Error(String),
    /// `:<item>\n`: an item (or a value such as a status name), its bytes exactly as stored.
    Item(Bytes),
    /// `*\n`: no item.
    NoItem,
}

impl TextReply {
    /// Appends this reply's wire bytes to `buf`. An item's bytes are written unchanged; the
    /// caller must not send an item containing LF, which would read as several lines.
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            Self::Count(count) => {
                buf.extend_from_slice(b"+");
                buf.extend_from_slice(count.to_string().as_bytes());
            }
            Self::Error(message) => {
                buf.extend_from_slice(b"-");
                buf.extend_from_slice(message.as_bytes());
            }
            Self::Item(data) => {
                buf.reserve(data.len() + 2);
                buf.extend_from_slice(b":");
                buf.extend_from_slice(data);
            }
            Self::NoItem => buf.extend_from_slice(b"*"),
        }
        buf.extend_from_slice(b"\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(reply: &TextReply) -> Vec<u8> {
        let mut buf = BytesMut::new();
        reply.encode(&mut buf);
        buf.to_vec()
    }

    #[test]
    fn every_reply_is_one_lf_terminated_line() {
        assert_eq!(encoded(&TextReply::Count(0)), b"+0\n");
        assert_eq!(
            encoded(&TextReply::Count(u64::MAX)),
            b"+18446744073709551615\n"
        );
        assert_eq!(
            encoded(&TextReply::Error("Unknown command: x".to_owned())),
            b"-Unknown command: x\n"
        );
        assert_eq!(encoded(&TextReply::NoItem), b"*\n");
        assert_eq!(encoded(&TextReply::Item(Bytes::new())), b":\n");
    }

    #[test]
    fn item_bytes_pass_through_unchanged() {
        let data = Bytes::from_static(b"\x00\x80\xff\r\xe9");
        assert_eq!(encoded(&TextReply::Item(data)), b":\x00\x80\xff\r\xe9\n");
    }
}
