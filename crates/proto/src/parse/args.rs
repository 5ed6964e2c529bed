//! Argument conversions shared by the commands: queue names and numbers.

use smol_str::SmolStr;

use super::Rejection;
use crate::name::queue_name_from_wire;

/// The queue name argument. Missing or invalid (Part 0 #4): refused, connection kept.
pub(super) fn queue_arg(token: Option<&[u8]>) -> Result<SmolStr, Rejection> {
    let token = token.ok_or(Rejection::skip("missing queue name"))?;
    queue_name_from_wire(token).ok_or(Rejection::skip("bad queue name"))
}

/// Parses a number as Java's `Integer.parseInt` does, which is what Kestrel uses: an optional
/// `+` or `-`, then one or more ASCII digits, within `i32` range. (Java also accepts non-ASCII
/// digits, but none exists in ISO-8859-1, the encoding Kestrel reads lines in.) Read straight
/// from the bytes: a set carries three numbers, and a UTF-8 check of each cost more than this.
pub(crate) fn java_int(token: &[u8]) -> Option<i32> {
    let (negative, digits) = match token {
        [b'-', digits @ ..] => (true, digits),
        [b'+', digits @ ..] => (false, digits),
        digits => (false, digits),
    };
    if digits.is_empty() {
        return None;
    }
    // Summed as a negative number: `i32::MIN` has no positive counterpart.
    let mut value: i32 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i32::from(byte - b'0'))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

/// A numeric argument where Kestrel accepts any `Int` but only non-negative values make sense;
/// negative values are taken as 0, which is what they amount to (a deadline already passed,
/// no items). Missing or not a number: refused with `reason`, connection kept (Part 0 #3).
pub(super) fn int_arg_negative_as_zero(
    token: Option<&[u8]>,
    reason: &'static str,
) -> Result<u32, Rejection> {
    let value = token.and_then(java_int).ok_or(Rejection::skip(reason))?;
    Ok(value.max(0).cast_unsigned())
}

/// A numeric argument that must not be negative (Part 0 #6). Missing, not a number or
/// negative: refused with `reason`, connection kept.
pub(super) fn non_negative_int_arg(
    token: Option<&[u8]>,
    reason: &'static str,
) -> Result<u32, Rejection> {
    token
        .and_then(java_int)
        .and_then(|value| u32::try_from(value).ok())
        .ok_or(Rejection::skip(reason))
}

/// Lower-cases text that Kestrel reads as ISO-8859-1, where every byte is one character.
pub(crate) fn latin1_lowercase(token: &[u8]) -> String {
    token
        .iter()
        .flat_map(|&byte| char::from(byte).to_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_int_accepts_what_integer_parse_int_accepts() {
        assert_eq!(java_int(b"0"), Some(0));
        assert_eq!(java_int(b"007"), Some(7));
        assert_eq!(java_int(b"+5"), Some(5));
        assert_eq!(java_int(b"-5"), Some(-5));
        assert_eq!(java_int(b"2147483647"), Some(i32::MAX));
        assert_eq!(java_int(b"-2147483648"), Some(i32::MIN));
    }

    #[test]
    fn java_int_refuses_what_integer_parse_int_refuses() {
        for token in [
            "",
            "+",
            "-",
            " 5",
            "5 ",
            "5a",
            "0x10",
            "1.0",
            "2147483648",
            "\u{663}",
        ] {
            assert_eq!(java_int(token.as_bytes()), None, "{token:?}");
        }
        assert_eq!(java_int(b"\xb2"), None);
    }

    #[test]
    fn queue_arg_refuses_missing_and_invalid_names() {
        assert_eq!(queue_arg(Some(b"jobs")), Ok("jobs".into()));
        assert_eq!(queue_arg(None), Err(Rejection::skip("missing queue name")));
        assert_eq!(
            queue_arg(Some(b"a.b")),
            Err(Rejection::skip("bad queue name"))
        );
        assert_eq!(queue_arg(Some(b"")), Err(Rejection::skip("bad queue name")));
    }

    #[test]
    fn int_arg_negative_as_zero_clamps_negatives() {
        assert_eq!(int_arg_negative_as_zero(Some(b"7"), "r"), Ok(7));
        assert_eq!(int_arg_negative_as_zero(Some(b"-7"), "r"), Ok(0));
        assert_eq!(int_arg_negative_as_zero(Some(b"-2147483648"), "r"), Ok(0));
        assert_eq!(
            int_arg_negative_as_zero(Some(b"x"), "r"),
            Err(Rejection::skip("r"))
        );
        assert_eq!(
            int_arg_negative_as_zero(None, "r"),
            Err(Rejection::skip("r"))
        );
    }

    #[test]
    fn non_negative_int_arg_refuses_negatives() {
        assert_eq!(non_negative_int_arg(Some(b"0"), "r"), Ok(0));
        assert_eq!(
            non_negative_int_arg(Some(b"-1"), "r"),
            Err(Rejection::skip("r"))
        );
        assert_eq!(non_negative_int_arg(None, "r"), Err(Rejection::skip("r")));
    }

    #[test]
    fn latin1_lowercase_folds_every_byte_as_a_character() {
        assert_eq!(latin1_lowercase(b"ReadOnly"), "readonly");
        assert_eq!(latin1_lowercase(b"\xc9T\xc9"), "\u{e9}t\u{e9}");
    }
}
