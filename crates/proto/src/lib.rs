//! Sans-I/O codec for Kestrel 2.4's memcache text protocol.
//!
//! [`parse()`] turns the bytes a client sent into one [`Request`] and tells how many bytes it
//! consumed; [`Response::encode`] appends reply bytes to a buffer. Nothing here touches a socket,
//! so every function can be unit-tested, property-tested and fuzzed on plain byte slices.

#![warn(missing_docs)]

mod name;
mod parse;
mod request;
mod response;
mod text;

pub use name::{MAX_QUEUE_NAME_LEN, validate_queue_name};
pub use parse::{AfterError, Limits, ParseError, Parsed, parse, requested_key};
pub use request::{GetOptions, Request};
pub use response::Response;
pub use text::{
    MAX_PUT_ITEMS, TextDecoder, TextParseError, TextParsed, TextReply, TextRequest, parse_text,
};
