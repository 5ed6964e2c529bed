//! The words of one request line: the command and its arguments (spec a.5).
//!
//! As in Kestrel, arguments beyond those a command uses are ignored. Every refusal is an error
//! reply after which the connection goes on.

use super::TextRequest;
use crate::name::queue_name_from_wire;
use crate::parse::args::{java_int, latin1_lowercase};

/// Why a request line is refused: the message of its `-<message>` reply.
pub(super) type Refusal = String;

const QUEUE_NAME_REQUIRED: &str = "Queue name required.";
const BAD_QUEUE_NAME: &str = "Bad queue name.";
const BAD_EXPIRY: &str = "Error parsing expiration time.";
const BAD_TIMEOUT: &str = "Error parsing timeout.";
const BAD_COUNT: &str = "Error parsing count.";
const MONITOR_ARGS_REQUIRED: &str = "Queue name & timeout required.";
const CONFIRM_ARGS_REQUIRED: &str = "Queue name & count required.";

/// Parses the words of a request line (the command word first). A `put` gets no items here;
/// the decoder adds them.
pub(super) fn parse_command<'a>(
    mut words: impl Iterator<Item = &'a [u8]>,
) -> Result<TextRequest, Refusal> {
    let command = latin1_lowercase(words.next().unwrap_or_default());
    let args: Vec<&[u8]> = words.collect();
    match command.as_str() {
        "put" => parse_put(&args),
        "get" => {
            let (queue, timeout_ms) = queue_and_timeout(&args)?;
            Ok(TextRequest::Get { queue, timeout_ms })
        }
        "peek" => {
            let (queue, timeout_ms) = queue_and_timeout(&args)?;
            Ok(TextRequest::Peek { queue, timeout_ms })
        }
        "monitor" => parse_monitor(&args),
        "confirm" => parse_confirm(&args),
        "flush" => Ok(TextRequest::Flush {
            queue: queue_arg(&args)?,
        }),
        "delete" => Ok(TextRequest::Delete {
            queue: queue_arg(&args)?,
        }),
        "status" => Ok(TextRequest::Status {
            new_status: args.first().map(|name| latin1_lowercase(name)),
        }),
        "version" => Ok(TextRequest::Version),
        "shutdown" => Ok(TextRequest::Shutdown),
        "quit" => Ok(TextRequest::Quit),
        _ => Err(format!("Unknown command: {command}")),
    }
}

/// `put <q> [<expiry-ms>]`.
fn parse_put(args: &[&[u8]]) -> Result<TextRequest, Refusal> {
    let queue = queue_arg(args)?;
    let expiry_ms = args
        .get(1)
        .map(|token| java_int(token).ok_or_else(|| BAD_EXPIRY.to_owned()))
        .transpose()?;
    Ok(TextRequest::Put {
        queue,
        expiry_ms,
        items: Vec::new(),
    })
}

/// `<q> [<timeout-ms>]` of `get` and `peek`.
fn queue_and_timeout(args: &[&[u8]]) -> Result<(String, Option<u32>), Refusal> {
    let queue = queue_arg(args)?;
    let timeout = args.get(1).map(|token| timeout_arg(token)).transpose()?;
    Ok((queue, timeout.filter(|&ms| ms > 0)))
}

/// `monitor <q> <timeout-ms>`.
fn parse_monitor(args: &[&[u8]]) -> Result<TextRequest, Refusal> {
    let [name, timeout, ..] = args else {
        return Err(MONITOR_ARGS_REQUIRED.to_owned());
    };
    Ok(TextRequest::Monitor {
        queue: queue_name(name)?,
        timeout_ms: timeout_arg(timeout)?,
    })
}

/// `confirm <q> <count>`: the count must be a non-negative number.
fn parse_confirm(args: &[&[u8]]) -> Result<TextRequest, Refusal> {
    let [name, count, ..] = args else {
        return Err(CONFIRM_ARGS_REQUIRED.to_owned());
    };
    let count = java_int(count)
        .and_then(|count| u32::try_from(count).ok())
        .ok_or_else(|| BAD_COUNT.to_owned())?;
    Ok(TextRequest::Confirm {
        queue: queue_name(name)?,
        count,
    })
}

/// The first argument as a queue name.
fn queue_arg(args: &[&[u8]]) -> Result<String, Refusal> {
    let name = args.first().ok_or_else(|| QUEUE_NAME_REQUIRED.to_owned())?;
    queue_name(name)
}

/// A valid queue name: the same rules, and the same UTF-8 reading, as on the memcache port, so
/// both protocols name the same queues.
fn queue_name(token: &[u8]) -> Result<String, Refusal> {
    queue_name_from_wire(token)
        .map(String::from)
        .ok_or_else(|| BAD_QUEUE_NAME.to_owned())
}

/// A timeout in milliseconds (a Java `Int`); negative values are 0, a deadline already passed.
fn timeout_arg(token: &[u8]) -> Result<u32, Refusal> {
    let value = java_int(token).ok_or_else(|| BAD_TIMEOUT.to_owned())?;
    Ok(value.max(0).cast_unsigned())
}
