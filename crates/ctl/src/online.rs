//! The commands that talk to a running server over its memcache port.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use bytes::Bytes;
use lanner_client::blocking::Client;
use lanner_client::{AdminReply, ClientBuilder};
use serde_json::{Value, json};

use crate::cli::Command;
use crate::format::{self, QueueFigures};
use crate::login::Login;

/// Items sent to the server in one pipelined batch by `put` from standard input.
const PUT_BATCH: usize = 1024;

/// A client for the one server `lannerctl` talks to, logging in as `login` if given.
pub fn connect(server: &str, login: Option<Login>) -> anyhow::Result<Client> {
    let mut builder = ClientBuilder::new([server]);
    if let Some(Login { user, password }) = login {
        builder = builder.credentials(user, password);
    }
    Client::from_builder(builder).with_context(|| format!("cannot set up a client for {server}"))
}

/// Runs one online command; `json` selects JSON output.
pub fn run(
    server: &str,
    login: Option<Login>,
    command: Command,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let client = connect(server, login)?;
    let output = match command {
        Command::Stats => stats(&client, json)?,
        Command::DumpStats { queues } => dump_stats(&client, &queues, json)?,
        Command::Status { name } => status(&client, name.as_deref(), json)?,
        Command::Reload => reload(&client, json)?,
        Command::Flush { queue } => {
            client.flush(&queue)?;
            done(
                json,
                json!({"queue": queue, "flushed": true}),
                format!("flushed {queue}"),
            )
        }
        Command::Delete { queue } => {
            client.delete(&queue)?;
            done(
                json,
                json!({"queue": queue, "deleted": true}),
                format!("deleted {queue}"),
            )
        }
        Command::Peek { queue } => peek(&client, &queue, json)?,
        Command::Put { queue, data, file } => {
            let stored = put(&client, &queue, data, file.as_deref())?;
            done(
                json,
                json!({"queue": queue, "stored": stored}),
                format!("stored {stored} item(s) in {queue}"),
            )
        }
        Command::Take {
            queue,
            count,
            timeout,
            abort,
        } => {
            take(
                &client,
                &queue,
                count,
                Duration::from_millis(timeout),
                abort,
                json,
            )?;
            String::new()
        }
        Command::Watch { .. } | Command::Journal { .. } | Command::Completions { .. } => {
            unreachable!("dispatched in main")
        }
    };
    print!("{output}");
    std::io::stdout().flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The output of a command that only reports success.
fn done(json: bool, value: Value, text: String) -> String {
    if json {
        format!("{value}\n")
    } else {
        format!("{text}\n")
    }
}

/// The reply lines of an admin command from the one server.
pub fn admin(client: &Client, command: &str, shape: AdminReply) -> anyhow::Result<Vec<String>> {
    let reply = client
        .admin(command, shape)
        .pop()
        .ok_or_else(|| anyhow!("no server configured"))?;
    Ok(reply.lines?)
}

/// The `stats` entries of the one server, in its order.
pub fn server_stats(client: &Client) -> anyhow::Result<Vec<(String, String)>> {
    let stats = client
        .stats()
        .pop()
        .ok_or_else(|| anyhow!("no server configured"))?
        .stats?;
    Ok(stats
        .iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect())
}

/// Every queue's (and alias's) figures, from `dump_stats`.
pub fn queue_figures(client: &Client, names: &[String]) -> anyhow::Result<Vec<QueueFigures>> {
    let command = std::iter::once("dump_stats")
        .chain(names.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    format::parse_dump_stats(&admin(client, &command, AdminReply::UntilEnd)?)
}

fn stats(client: &Client, json: bool) -> anyhow::Result<String> {
    let global: Vec<_> = server_stats(client)?
        .into_iter()
        .filter(|(key, _)| !is_queue_stat(key))
        .collect();
    let queues = queue_figures(client, &[])?;
    if json {
        let value = json!({
            "server": format::json_object(&global),
            "queues": format::json_queues(&queues),
        });
        return Ok(format!("{value}\n"));
    }
    Ok(format!(
        "{}\n{}\n",
        format::key_value_table(&global),
        format::queue_table(&queues, None)
    ))
}

/// Per-queue `stats` lines (`queue_<name>_<key>`); the server-wide `queue_creates`,
/// `queue_deletes` and `queue_expires` are not.
fn is_queue_stat(key: &str) -> bool {
    key.starts_with("queue_") && !matches!(key, "queue_creates" | "queue_deletes" | "queue_expires")
}

fn dump_stats(client: &Client, names: &[String], json: bool) -> anyhow::Result<String> {
    let queues = queue_figures(client, names)?;
    if json {
        return Ok(format!("{}\n", format::json_queues(&queues)));
    }
    Ok(queues
        .iter()
        .map(|queue| {
            format!(
                "queue '{}'\n{}\n",
                queue.name,
                format::key_value_table(&queue.figures)
            )
        })
        .collect())
}

fn status(client: &Client, name: Option<&str>, json: bool) -> anyhow::Result<String> {
    match name {
        None => {
            let lines = admin(client, "status", AdminReply::Line)?;
            let status = lines.first().cloned().unwrap_or_default();
            Ok(done(json, json!({"status": status}), status))
        }
        Some(name) => {
            if name.is_empty() || name.contains(char::is_whitespace) {
                bail!("not a status name: {name:?}");
            }
            admin(client, &format!("status {name}"), AdminReply::UntilEnd)
                .with_context(|| format!("the server refused status {name}"))?;
            Ok(done(
                json,
                json!({"status": name, "set": true}),
                format!("status set to {name}"),
            ))
        }
    }
}

fn reload(client: &Client, json: bool) -> anyhow::Result<String> {
    let reply = admin(client, "reload", AdminReply::Line)?;
    let reply = reply.first().cloned().unwrap_or_default();
    if reply != "Reloaded config." {
        bail!("reload failed: {reply}");
    }
    Ok(done(json, json!({"reloaded": true}), reply))
}

fn peek(client: &Client, queue: &str, json: bool) -> anyhow::Result<String> {
    let item = client.peek(queue, Duration::ZERO)?;
    if json {
        let value = match item.as_deref() {
            Some(item) => item_json(queue, item),
            None => json!({"queue": queue, "item": null}),
        };
        return Ok(format!("{value}\n"));
    }
    match item {
        Some(item) => {
            std::io::stdout().write_all(&item)?;
            Ok("\n".to_owned())
        }
        None => {
            eprintln!("{queue} is empty");
            Ok(String::new())
        }
    }
}

/// Stores DATA, the file, or each line of standard input; returns how many items.
fn put(
    client: &Client,
    queue: &str,
    data: Option<String>,
    file: Option<&std::path::Path>,
) -> anyhow::Result<usize> {
    if let Some(data) = data {
        client.put(queue, data)?;
        return Ok(1);
    }
    if let Some(path) = file {
        let item =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        client.put(queue, item)?;
        return Ok(1);
    }
    let mut stored = 0;
    let mut batch = Vec::with_capacity(PUT_BATCH);
    for line in std::io::stdin().lock().split(b'\n') {
        let mut line = line.context("cannot read standard input")?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        batch.push(Bytes::from(line));
        if batch.len() == PUT_BATCH {
            stored += store_batch(client, queue, &mut batch)?;
        }
    }
    stored += store_batch(client, queue, &mut batch)?;
    Ok(stored)
}

fn store_batch(client: &Client, queue: &str, batch: &mut Vec<Bytes>) -> anyhow::Result<usize> {
    let count = batch.len();
    client
        .put_many(queue, std::mem::take(batch))
        .with_context(|| format!("storing a batch of {count} item(s) in {queue}"))?;
    Ok(count)
}

/// Opens up to `count` reads one at a time; each item is written out and flushed before it is
/// confirmed, so an item is never lost between the server and the output. With `abort` the
/// reads stay open until the end (so that each read finds the next item) and are then aborted.
fn take(
    client: &Client,
    queue: &str,
    count: u64,
    wait: Duration,
    abort: bool,
    json: bool,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut taken = 0;
    let mut held = Vec::new();
    while taken < count {
        let Some(item) = client.open(queue, wait)? else {
            break;
        };
        // If writing fails, dropping the open read returns the item to the queue.
        write_item(&mut out, queue, item.data(), json).context("cannot write the item out")?;
        if abort {
            held.push(item);
        } else {
            item.confirm()?;
        }
        taken += 1;
    }
    // Newest first, so that the items are back at the head in their old order.
    for item in held.into_iter().rev() {
        item.abort()?;
    }
    if taken == 0 && !json {
        eprintln!("{queue} is empty");
    }
    Ok(())
}

/// An item as JSON, byte for byte: `"item"` when it is UTF-8, else `"item_base64"` (a lossy
/// conversion would hand out an item that `take` then confirms, losing its bytes).
fn item_json(queue: &str, item: &[u8]) -> Value {
    match std::str::from_utf8(item) {
        Ok(text) => json!({"queue": queue, "item": text}),
        Err(_) => json!({"queue": queue, "item_base64": BASE64_STANDARD.encode(item)}),
    }
}

fn write_item(out: &mut impl Write, queue: &str, item: &[u8], json: bool) -> std::io::Result<()> {
    if json {
        writeln!(out, "{}", item_json(queue, item))?;
    } else {
        out.write_all(item)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_items_keep_every_byte() {
        assert_eq!(
            item_json("q", b"hello"),
            json!({"queue": "q", "item": "hello"})
        );
        let binary = [0xff, 0x00, b'a', 0xc3];
        let value = item_json("q", &binary);
        assert!(value.get("item").is_none(), "{value}");
        let encoded = value["item_base64"].as_str().expect("base64 text");
        assert_eq!(BASE64_STANDARD.decode(encoded).unwrap(), binary);
    }
}
