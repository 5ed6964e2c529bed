//! The one-line commands (spec a.3): arguments and their errors (Part 0 #3, #4, #6).
//!
//! Missing or malformed arguments are refused and the connection kept, as Kestrel HEAD does for
//! `delete`, `flush` and `confirm`. Extra arguments are ignored.

use super::Rejection;
use super::args::{int_arg_negative_as_zero, latin1_lowercase, non_negative_int_arg, queue_arg};
use super::get::parse_get;
use super::verb::LineCommand;
use crate::Request;

/// Parses the arguments of a one-line command.
pub(super) fn parse_line_command<'a>(
    command: LineCommand,
    mut args: impl Iterator<Item = &'a [u8]>,
) -> Result<Request, Rejection> {
    let request = match command {
        LineCommand::Get => parse_get(args)?,
        LineCommand::Monitor => parse_monitor(args)?,
        LineCommand::Confirm => parse_confirm(args)?,
        LineCommand::Delete => Request::Delete {
            queue: queue_arg(args.next())?,
        },
        LineCommand::Flush => Request::Flush {
            queue: queue_arg(args.next())?,
        },
        LineCommand::FlushExpired => Request::FlushExpired {
            queue: queue_arg(args.next())?,
        },
        LineCommand::DumpStats => parse_dump_stats(args)?,
        LineCommand::Status => Request::Status {
            new_status: args.next().map(latin1_lowercase),
        },
        LineCommand::FlushAll => Request::FlushAll,
        LineCommand::FlushAllExpired => Request::FlushAllExpired,
        LineCommand::Stats => Request::Stats,
        LineCommand::DumpConfig => Request::DumpConfig,
        LineCommand::Version => Request::Version,
        LineCommand::Reload => Request::Reload,
        LineCommand::Shutdown => Request::Shutdown,
        LineCommand::Quit => Request::Quit,
    };
    Ok(request)
}

/// `monitor <q> <seconds> [<max_items>]`.
fn parse_monitor<'a>(mut args: impl Iterator<Item = &'a [u8]>) -> Result<Request, Rejection> {
    let queue = queue_arg(args.next())?;
    let seconds = int_arg_negative_as_zero(args.next(), "bad seconds")?;
    let max_items = args
        .next()
        .map(|max_items| int_arg_negative_as_zero(Some(max_items), "bad max items"))
        .transpose()?;
    Ok(Request::Monitor {
        queue,
        seconds,
        max_items,
    })
}

/// `confirm <q> <count>`: a negative count is refused (Kestrel would corrupt its open-read list).
fn parse_confirm<'a>(mut args: impl Iterator<Item = &'a [u8]>) -> Result<Request, Rejection> {
    let queue = queue_arg(args.next())?;
    let count = non_negative_int_arg(args.next(), "bad count")?;
    Ok(Request::Confirm { queue, count })
}

/// `dump_stats [<q> ...]`: every name must be a valid queue name, so the reply never echoes
/// bytes that could not name a queue.
fn parse_dump_stats<'a>(args: impl Iterator<Item = &'a [u8]>) -> Result<Request, Rejection> {
    let queues = args
        .map(|name| queue_arg(Some(name)))
        .collect::<Result<_, _>>()?;
    Ok(Request::DumpStats { queues })
}
