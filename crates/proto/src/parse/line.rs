//! Line framing and tokenising (spec a.1 items 1-2; Part 0 #1).

use memchr::memchr;

use super::Rejection;

/// The first line of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    /// The line without its `\n` or `\r\n` terminator.
    pub text: &'a [u8],
    /// How many input bytes the line occupies, terminator included.
    pub len: usize,
}

/// Finds the first line of `input`: it ends at the first LF, and one CR right before the LF is
/// stripped too.
///
/// `Ok(None)` while no LF has arrived and the line may still fit in `max_len` bytes; a longer
/// line is refused (connection closed) without waiting for its end, so at most `max_len + 2`
/// bytes are ever examined or need buffering.
pub(crate) fn first_line(input: &[u8], max_len: usize) -> Result<Option<Line<'_>>, Rejection> {
    // The longest acceptable line is `max_len` bytes plus `\r\n`, so its LF lies in this window.
    let longest = max_len.saturating_add(2);
    let window = &input[..longest.min(input.len())];
    let Some(lf) = memchr(b'\n', window) else {
        return if window.len() == longest {
            Err(line_too_long())
        } else {
            Ok(None)
        };
    };
    let text = strip_cr(&input[..lf]);
    if text.len() > max_len {
        return Err(line_too_long());
    }
    Ok(Some(Line { text, len: lf + 1 }))
}

fn line_too_long() -> Rejection {
    Rejection::close("line too long")
}

fn strip_cr(text: &[u8]) -> &[u8] {
    text.strip_suffix(b"\r").unwrap_or(text)
}

/// Splits `text` like Java's `String.split` with a one-character pattern: every separator
/// splits, so consecutive separators give empty pieces and a leading separator gives an empty
/// first piece, while trailing empty pieces are dropped.
///
/// One corner differs and does not matter to callers: text made only of separators gives one
/// empty piece here and none in Java; both end up refused as an empty command or queue name.
pub(crate) fn split_like_java(text: &[u8], separator: u8) -> impl Iterator<Item = &[u8]> + Clone {
    let trailing = text
        .iter()
        .rev()
        .take_while(|&&byte| byte == separator)
        .count();
    let kept = &text[..text.len() - trailing];
    kept.split(move |&byte| byte == separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(input: &[u8], max_len: usize) -> Result<Option<(&[u8], usize)>, Rejection> {
        first_line(input, max_len).map(|found| found.map(|line| (line.text, line.len)))
    }

    fn pieces(text: &str, separator: u8) -> Vec<&str> {
        split_like_java(text.as_bytes(), separator)
            .map(|piece| std::str::from_utf8(piece).unwrap())
            .collect()
    }

    #[test]
    fn line_ends_at_lf_with_an_optional_cr() {
        assert_eq!(line(b"get q\r\nrest", 100), Ok(Some((&b"get q"[..], 7))));
        assert_eq!(line(b"get q\nrest", 100), Ok(Some((&b"get q"[..], 6))));
        assert_eq!(line(b"\n", 100), Ok(Some((&b""[..], 1))));
    }

    #[test]
    fn only_one_cr_is_stripped_and_a_lone_cr_does_not_end_a_line() {
        assert_eq!(line(b"a\r\r\n", 100), Ok(Some((&b"a\r"[..], 4))));
        assert_eq!(line(b"a\rb", 100), Ok(None));
    }

    #[test]
    fn incomplete_line_waits() {
        assert_eq!(line(b"", 100), Ok(None));
        assert_eq!(line(b"get q\r", 100), Ok(None));
    }

    #[test]
    fn line_of_exactly_the_limit_is_accepted_with_either_terminator() {
        assert_eq!(line(b"abcd\r\n", 4), Ok(Some((&b"abcd"[..], 6))));
        assert_eq!(line(b"abcd\n", 4), Ok(Some((&b"abcd"[..], 5))));
        assert_eq!(line(b"abcd\r", 4), Ok(None));
    }

    #[test]
    fn longer_line_is_refused_with_or_without_lf() {
        let too_long = Err(line_too_long());
        assert_eq!(line(b"abcde\n", 4), too_long);
        assert_eq!(line(b"abcde\r\n", 4), too_long);
        assert_eq!(line(b"abcd\r\r\n", 4), too_long);
        assert_eq!(line(b"abcdef", 4), too_long);
        assert_eq!(line(b"abcdefghijkl\n", 4), too_long);
        assert_eq!(line(b"x", 0), Ok(None));
        assert_eq!(line(b"xy", 0), too_long);
    }

    #[test]
    fn huge_limit_does_not_overflow() {
        assert_eq!(line(b"get q\n", usize::MAX), Ok(Some((&b"get q"[..], 6))));
        assert_eq!(line(b"get q", usize::MAX), Ok(None));
    }

    #[test]
    fn splits_like_java_string_split() {
        assert_eq!(pieces("set q 0 0 5", b' '), ["set", "q", "0", "0", "5"]);
        assert_eq!(pieces("get  q", b' '), ["get", "", "q"]);
        assert_eq!(pieces(" get q", b' '), ["", "get", "q"]);
        assert_eq!(pieces("get q   ", b' '), ["get", "q"]);
        assert_eq!(pieces("", b' '), [""]);
        assert_eq!(pieces("q//open/", b'/'), ["q", "", "open"]);
        assert_eq!(pieces("a\tb", b' '), ["a\tb"]);
    }
}
