//! Sans-I/O codec for Kestrel's text protocol (spec a.5), the line protocol of port 2222.
//!
//! A request is one line; its first word (case-insensitive) is the command, and its arguments
//! follow, split on single spaces. A line ends at LF, and one CR right before the LF is dropped
//! with it. A line ending in `:` starts a block: each following line is one item, until an
//! empty line (as in Kestrel, any command may carry a block; only `put` uses the items).
//!
//! Where lanner differs from Kestrel:
//!
//! * Items are binary-safe: an item is exactly the bytes of its line, never re-encoded (Kestrel
//!   read lines as ISO-8859-1 and stored them as UTF-8, mangling every byte above 0x7F). By the
//!   protocol's nature an item cannot contain LF, cannot end with CR (that CR is part of the
//!   line end) and cannot be empty (an empty line ends the block).
//! * A line longer than [`Limits::max_line_len`] is answered `-Line too long; limit=<n>.` and the
//!   connection closes; nothing is buffered without bound.
//! * A block holds at most [`MAX_PUT_ITEMS`] items. Kestrel then cut the put short and silently
//!   dropped the next line; here a block with more items is answered
//!   `-Too many items in one put; limit=1024.`, none of it is stored, and the connection closes.
//! * Bad queue names get `-Bad queue name.`, malformed counts `-Error parsing count.`, and the
//!   connection goes on (Kestrel closed it without a reply).
//!
//! The [`TextDecoder`] remembers how far it has read into a block, so a large put arriving in
//! many small reads is scanned once, not once per read.

mod command;
mod reply;
mod request;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::ops::Range;

pub use reply::TextReply;
pub use request::TextRequest;

use crate::parse::line::{Line, first_line, split_like_java};
use crate::{AfterError, Limits};
use command::{Refusal, parse_command};

/// The most items one block (one `put`) may hold, as Kestrel's `MAX_PUT_BUFFER`.
pub const MAX_PUT_ITEMS: usize = 1024;

/// A complete, valid request found at the start of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextParsed {
    /// The request.
    pub request: TextRequest,
    /// How many input bytes the request occupies, its block and the block's empty line
    /// included. The next request starts right after them.
    pub consumed: usize,
}

/// A request that cannot be served: the error reply to send, then what to do with the
/// connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextParseError {
    /// The reply to send: a [`TextReply::Error`].
    pub reply: TextReply,
    /// Whether the connection survives the bad request.
    pub after: AfterError,
}

/// Parses the first request in `input`, like a fresh [`TextDecoder`].
///
/// `Ok(None)`: no complete request yet. Never panics, and never consumes or skips more than
/// `input.len()` bytes.
pub fn parse_text(input: &[u8], limits: &Limits) -> Result<Option<TextParsed>, TextParseError> {
    TextDecoder::new(limits).decode(input)
}

/// Finds requests in a connection's input, remembering its progress through an incomplete
/// block between calls.
///
/// Call [`TextDecoder::decode`] with the connection's whole unconsumed input each time more has
/// arrived. Once it returns a request or an error, drop the bytes it consumed or skipped (or
/// close the connection) before the next call; until then, only append to the input.
#[derive(Debug, Clone)]
pub struct TextDecoder {
    max_line_len: usize,
    block: Option<Block>,
}

/// A block read so far: its header line's outcome, its items, and where the next line starts.
#[derive(Debug, Clone)]
struct Block {
    header: Result<TextRequest, Refusal>,
    items: Vec<Range<usize>>,
    next: usize,
}

/// A request line: complete by itself, or the header of a block.
enum RequestLine {
    Single(Result<TextRequest, Refusal>),
    BlockStart(Result<TextRequest, Refusal>),
}

impl TextDecoder {
    /// A decoder at the start of a connection.
    pub fn new(limits: &Limits) -> Self {
        Self {
            max_line_len: limits.max_line_len,
            block: None,
        }
    }

    /// Parses the first request in `input`; `Ok(None)` while it is incomplete.
    ///
    /// Never panics, and never consumes or skips more than `input.len()` bytes. Given an input
    /// shorter than the one it last saw, it starts over from the beginning.
    pub fn decode(&mut self, input: &[u8]) -> Result<Option<TextParsed>, TextParseError> {
        let resumed = self.block.take().filter(|block| block.next <= input.len());
        let block = match resumed {
            Some(block) => block,
            None => {
                let Some(line) = self.line_at(input, 0)? else {
                    return Ok(None);
                };
                match request_line(line.text) {
                    RequestLine::Single(request) => return finish(request, line.len),
                    RequestLine::BlockStart(header) => Block {
                        header,
                        items: Vec::new(),
                        next: line.len,
                    },
                }
            }
        };
        self.read_block(block, input)
    }

    /// Reads item lines until the empty line that ends the block.
    fn read_block(
        &mut self,
        mut block: Block,
        input: &[u8],
    ) -> Result<Option<TextParsed>, TextParseError> {
        loop {
            let Some(line) = self.line_at(input, block.next)? else {
                self.block = Some(block);
                return Ok(None);
            };
            let end = block.next + line.len;
            if line.text.is_empty() {
                return finish(with_items(block.header, block.items), end);
            }
            if block.items.len() == MAX_PUT_ITEMS {
                return Err(close(format!(
                    "Too many items in one put; limit={MAX_PUT_ITEMS}."
                )));
            }
            block.items.push(block.next..block.next + line.text.len());
            block.next = end;
        }
    }

    /// The line starting at `offset`, if complete; a line over the limit closes the connection.
    fn line_at<'a>(
        &self,
        input: &'a [u8],
        offset: usize,
    ) -> Result<Option<Line<'a>>, TextParseError> {
        first_line(&input[offset..], self.max_line_len)
            .map_err(|_| close(format!("Line too long; limit={}.", self.max_line_len)))
    }
}

/// Parses a request line; a trailing `:` makes it a block header.
fn request_line(text: &[u8]) -> RequestLine {
    match text.strip_suffix(b":") {
        Some(header) => RequestLine::BlockStart(parse_command(split_like_java(header, b' '))),
        None => RequestLine::Single(parse_command(split_like_java(text, b' '))),
    }
}

/// A block's request with its items: a `put` takes them, other commands ignore them.
fn with_items(
    header: Result<TextRequest, Refusal>,
    block_items: Vec<Range<usize>>,
) -> Result<TextRequest, Refusal> {
    header.map(|request| match request {
        TextRequest::Put {
            queue, expiry_ms, ..
        } => TextRequest::Put {
            queue,
            expiry_ms,
            items: block_items,
        },
        other => other,
    })
}

/// The outcome of a request that occupies `consumed` input bytes: refused requests are skipped.
fn finish(
    request: Result<TextRequest, Refusal>,
    consumed: usize,
) -> Result<Option<TextParsed>, TextParseError> {
    match request {
        Ok(request) => Ok(Some(TextParsed { request, consumed })),
        Err(message) => Err(TextParseError {
            reply: TextReply::Error(message),
            after: AfterError::Skip(consumed),
        }),
    }
}

/// An error after which the connection closes.
fn close(message: String) -> TextParseError {
    TextParseError {
        reply: TextReply::Error(message),
        after: AfterError::Close,
    }
}
