//! Queue name rules (spec Part 0 #4).
//!
//! A queue name becomes a journal file name, so the rules are strict: nothing a client sends may
//! name a file outside the data directory, hide a file (`.`), or look like a temporary or
//! rewritten journal (`~`). Names starting with `+` are refused because `+` separates a fanout
//! master from its child (`master+child`), so such a name would be a child without a master.

use smol_str::SmolStr;

/// The longest accepted queue name, in bytes.
pub const MAX_QUEUE_NAME_LEN: usize = 200;

/// Whether `name` may be used as a queue name.
///
/// A name is invalid when it is empty, longer than [`MAX_QUEUE_NAME_LEN`] bytes, starts with `+`,
/// or contains `/`, `~`, `.`, NUL, a control character or whitespace. Whitespace means any
/// Unicode whitespace, not only the ASCII space: such names are unreadable in file listings.
pub fn validate_queue_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_QUEUE_NAME_LEN
        && !name.starts_with('+')
        && if name.is_ascii() {
            name.bytes().all(is_allowed_in_ascii_name)
        } else {
            name.chars().all(is_allowed_in_name)
        }
}

/// [`is_allowed_in_name`] for an ASCII byte, without decoding characters (the common case).
fn is_allowed_in_ascii_name(byte: u8) -> bool {
    byte.is_ascii_graphic() && !matches!(byte, b'/' | b'~' | b'.')
}

fn is_allowed_in_name(c: char) -> bool {
    !matches!(c, '/' | '~' | '.') && !c.is_control() && !c.is_whitespace()
}

/// Turns a queue name as it came off the wire into a validated name, held inline (no heap
/// allocation) when it is short, as nearly all are.
///
/// Kestrel decodes request lines as ISO-8859-1, but the name is later echoed in `VALUE` lines and
/// used as a file name. Accepting only UTF-8 keeps both byte-exact: the echoed key and the file
/// name are exactly the bytes the client sent. Names that are not valid UTF-8 are refused
/// (`None`), like any other invalid name.
pub(crate) fn queue_name_from_wire(bytes: &[u8]) -> Option<SmolStr> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|name| validate_queue_name(name))
        .map(SmolStr::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in [
            "q",
            "jobs_ready",
            "a+b",
            "a+b+c",
            "Q-1",
            "caf\u{e9}",
            "x".repeat(200).as_str(),
        ] {
            assert!(validate_queue_name(name), "{name:?}");
        }
    }

    #[test]
    fn refuses_names_that_could_escape_or_hide_files() {
        let too_long = "x".repeat(MAX_QUEUE_NAME_LEN + 1);
        for name in [
            "",
            "a/b",
            "/",
            "..",
            ".hidden",
            "a.b",
            "q~~123",
            "~",
            "a\0b",
            "a b",
            "a\tb",
            "a\rb",
            "a\nb",
            "a\u{7f}b",
            "a\u{85}b",
            "a\u{a0}b",
            "a\u{2028}b",
            "+child",
            too_long.as_str(),
        ] {
            assert!(!validate_queue_name(name), "{name:?}");
        }
    }

    #[test]
    fn length_limit_counts_bytes_not_characters() {
        // 101 two-byte characters are 202 bytes.
        assert!(!validate_queue_name(&"\u{e9}".repeat(101)));
        assert!(validate_queue_name(&"\u{e9}".repeat(100)));
    }

    #[test]
    fn ascii_fast_path_agrees_with_the_character_rules() {
        for byte in 0..=0x7f_u8 {
            assert_eq!(
                is_allowed_in_ascii_name(byte),
                is_allowed_in_name(char::from(byte)),
                "{byte:#04x}"
            );
        }
    }

    #[test]
    fn wire_names_must_be_valid_utf8() {
        assert_eq!(queue_name_from_wire(b"jobs"), Some("jobs".into()));
        assert_eq!(
            queue_name_from_wire("caf\u{e9}".as_bytes()),
            Some("caf\u{e9}".into())
        );
        assert_eq!(queue_name_from_wire(b"caf\xe9"), None);
        assert_eq!(queue_name_from_wire(b"a.b"), None);
    }
}
