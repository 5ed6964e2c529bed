//! Request parsing: find the first request in a byte buffer, validate it, and say how many bytes
//! it used (spec a.1, a.4, b.1; Part 0 #1-#4, #6).
//!
//! The work is split by concern: [`mod@line`] frames and tokenises lines, [`verb`] recognises the
//! command word, [`storage`] frames and parses data-carrying commands, [`get`] handles the get key
//! options and [`commands`] the remaining one-line commands.

pub(crate) mod args;
mod commands;
mod get;

pub use get::requested_key;
pub(crate) mod line;
mod storage;
mod verb;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use crate::{Request, Response};
use verb::{StorageCommand, Verb};

/// Size limits that keep a client from making the server buffer without bound.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The longest accepted request line in bytes, not counting its `\n` or `\r\n` terminator.
    /// Default 64 KiB.
    pub max_line_len: usize,
    /// The largest accepted `set` payload in bytes. A `set` whose `<bytes>` exceeds it is refused
    /// before any of its data is buffered. Default 64 MiB.
    pub max_item_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line_len: 64 * 1024,
            max_item_size: 64 * 1024 * 1024,
        }
    }
}

/// A complete, valid request found at the start of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The request.
    pub request: Request,
    /// How many input bytes the request occupies, terminators and data block included. The
    /// next request (if pipelined) starts right after them.
    pub consumed: usize,
}

/// What the caller must do after sending the error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterError {
    /// Drop this many input bytes (the whole bad request, including any data block) and keep
    /// serving the connection. Never more than the input length.
    Skip(usize),
    /// Framing is lost or the spec says close: close the connection after the reply.
    Close,
}

/// A request that cannot be served: the reply to send, then what to do with the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The reply to send: a [`Response::ClientError`] with a short reason.
    pub reply: Response,
    /// Whether the connection survives the bad request.
    pub after: AfterError,
}

/// Parses the first request in `input`.
///
/// `Ok(None)`: the input holds no complete request yet (the caller reads more and calls again
/// with the grown buffer). Only the first request is parsed; [`Parsed::consumed`] tells where
/// the next one starts. Never panics, whatever the input.
pub fn parse(input: &[u8], limits: &Limits) -> Result<Option<Parsed>, ParseError> {
    let line = match line::first_line(input, limits.max_line_len) {
        Ok(Some(line)) => line,
        Ok(None) => return Ok(None),
        // A bad line always closes the connection, so no request length is needed.
        Err(rejection) => return Err(rejection.into_error(0)),
    };
    let mut tokens = line::split_like_java(line.text, b' ');
    let Some(verb) = tokens.next().and_then(Verb::from_word) else {
        return Err(Rejection::close("unknown command").into_error(line.len));
    };
    match verb {
        Verb::Line(command) => finish(commands::parse_line_command(command, tokens), line.len),
        Verb::Storage(command) => parse_storage(command, tokens, line.len, input, limits),
    }
}

/// Parses a data-carrying command once its whole data block is in `input`.
fn parse_storage<'a>(
    command: StorageCommand,
    args: impl Iterator<Item = &'a [u8]> + Clone,
    line_len: usize,
    input: &[u8],
    limits: &Limits,
) -> Result<Option<Parsed>, ParseError> {
    let block = match storage::locate_data_block(args.clone(), line_len, input, limits) {
        Ok(Some(block)) => block,
        Ok(None) => return Ok(None),
        // Framing errors always close the connection, so no request length is needed.
        Err(rejection) => return Err(rejection.into_error(0)),
    };
    let request = match command {
        StorageCommand::Set => storage::parse_set(args, block.payload),
        // Kestrel frames add/replace/append/prepend/cas like set, then does not know them.
        StorageCommand::Unimplemented => Err(Rejection::close("unknown command")),
    };
    finish(request, block.end)
}

/// Wraps the outcome of parsing a request that occupies `consumed` input bytes.
fn finish(
    request: Result<Request, Rejection>,
    consumed: usize,
) -> Result<Option<Parsed>, ParseError> {
    request
        .map(|request| Some(Parsed { request, consumed }))
        .map_err(|rejection| rejection.into_error(consumed))
}

/// Why a request is refused and whether the connection survives it; the internal form of
/// [`ParseError`], built before the request's length is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rejection {
    reason: &'static str,
    close: bool,
}

impl Rejection {
    /// Refuse the request and keep serving the connection.
    const fn skip(reason: &'static str) -> Self {
        Self {
            reason,
            close: false,
        }
    }

    /// Refuse the request and close the connection.
    const fn close(reason: &'static str) -> Self {
        Self {
            reason,
            close: true,
        }
    }

    /// The error for a refused request that occupies `request_len` input bytes.
    fn into_error(self, request_len: usize) -> ParseError {
        let after = if self.close {
            AfterError::Close
        } else {
            AfterError::Skip(request_len)
        };
        ParseError {
            reply: Response::ClientError(self.reason.to_owned()),
            after,
        }
    }
}
