//! Parsing of `dump_stats` replies, and the tables and JSON shapes lannerctl prints.

use std::collections::HashMap;

use anyhow::bail;
use comfy_table::{CellAlignment, Table, presets};
use serde_json::{Map, Value};

/// One `queue '<name>' { key=value ... }` block of `dump_stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueFigures {
    pub name: String,
    pub figures: Vec<(String, String)>,
}

impl QueueFigures {
    /// A numeric figure.
    pub fn number(&self, key: &str) -> Option<u64> {
        self.figures
            .iter()
            .find(|(name, _)| name == key)
            .and_then(|(_, value)| value.parse().ok())
    }

    /// True for a queue (an alias has no `items`).
    pub fn is_queue(&self) -> bool {
        self.number("items").is_some()
    }
}

/// Parses the lines of a `dump_stats` reply (without `END`).
pub fn parse_dump_stats(lines: &[String]) -> anyhow::Result<Vec<QueueFigures>> {
    let mut blocks = Vec::new();
    let mut current: Option<QueueFigures> = None;
    for line in lines {
        if let Some(name) = line
            .strip_prefix("queue '")
            .and_then(|rest| rest.strip_suffix("' {"))
        {
            current = Some(QueueFigures {
                name: name.to_owned(),
                figures: Vec::new(),
            });
        } else if line == "}" {
            match current.take() {
                Some(block) => blocks.push(block),
                None => bail!("unexpected '}}' in the dump_stats reply"),
            }
        } else if let Some(block) = current.as_mut() {
            if let Some((key, value)) = line.trim().split_once('=') {
                block.figures.push((key.to_owned(), value.to_owned()));
            }
        } else if !line.trim().is_empty() {
            bail!("unexpected line in the dump_stats reply: {line:?}");
        }
    }
    if let Some(block) = current {
        bail!("the dump_stats block of {} is not closed", block.name);
    }
    Ok(blocks)
}

/// A JSON value for a stat: a number when it is one, otherwise the text.
fn json_value(value: &str) -> Value {
    value
        .parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(value))
}

/// `{key: value, ...}` in the given order.
pub fn json_object(entries: &[(String, String)]) -> Value {
    let map: Map<String, Value> = entries
        .iter()
        .map(|(key, value)| (key.clone(), json_value(value)))
        .collect();
    Value::Object(map)
}

/// `{queue: {key: value, ...}, ...}`.
pub fn json_queues(queues: &[QueueFigures]) -> Value {
    let map: Map<String, Value> = queues
        .iter()
        .map(|queue| (queue.name.clone(), json_object(&queue.figures)))
        .collect();
    Value::Object(map)
}

fn table() -> Table {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table
}

/// A two-column table of names and values.
pub fn key_value_table(entries: &[(String, String)]) -> Table {
    let mut table = table();
    table.set_header(["stat", "value"]);
    for (key, value) in entries {
        table.add_row([key.as_str(), value.as_str()]);
    }
    table
}

/// Enqueue and dequeue rates of one queue, per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub enqueued: f64,
    pub dequeued: f64,
}

/// One row per queue (aliases left out); `rates` adds the rate columns (`-` for a queue
/// without an earlier sample).
pub fn queue_table(queues: &[QueueFigures], rates: Option<&HashMap<String, Rates>>) -> Table {
    let mut table = table();
    let mut header = vec!["queue", "items", "bytes", "age", "open", "waiters", "total"];
    if rates.is_some() {
        header.extend(["enq/s", "deq/s"]);
    }
    table.set_header(header);
    for queue in queues.iter().filter(|queue| queue.is_queue()) {
        let number = |key| queue.number(key).unwrap_or(0);
        let mut row = vec![
            queue.name.clone(),
            number("items").to_string(),
            human_bytes(number("bytes")),
            human_millis(number("age")),
            number("open_transactions").to_string(),
            number("waiters").to_string(),
            number("total_items").to_string(),
        ];
        if let Some(rates) = rates {
            match rates.get(&queue.name) {
                Some(rates) => {
                    row.push(format!("{:.1}", rates.enqueued));
                    row.push(format!("{:.1}", rates.dequeued));
                }
                None => row.extend(["-".to_owned(), "-".to_owned()]),
            }
        }
        table.add_row(row);
    }
    for column in table.column_iter_mut().skip(1) {
        column.set_cell_alignment(CellAlignment::Right);
    }
    table
}

/// `1.5 MiB`-style sizes.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `850ms`, `12.3s`, `4m05s`, `3h02m`.
pub fn human_millis(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// The first bytes of a payload, printable: control and non-ASCII bytes escaped.
pub fn preview(data: &[u8], max: usize) -> String {
    let shown: String = data[..data.len().min(max)]
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    if data.len() > max {
        format!("{shown}...")
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn dump_stats_blocks() {
        let parsed = parse_dump_stats(&lines(
            "queue 'a' {\n  items=2\n  bytes=10\n}\nqueue 'none' {\n  \n}",
        ))
        .unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].name, "a");
        assert_eq!(parsed[0].number("items"), Some(2));
        assert!(parsed[0].is_queue());
        assert!(!parsed[1].is_queue());
        assert!(parse_dump_stats(&lines("queue 'a' {\n  items=1")).is_err());
        assert!(parse_dump_stats(&lines("}")).is_err());
        assert!(parse_dump_stats(&lines("garbage")).is_err());
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
        assert_eq!(human_millis(999), "999ms");
        assert_eq!(human_millis(12_345), "12.3s");
        assert_eq!(human_millis(245_000), "4m05s");
        assert_eq!(human_millis(3 * 3_600_000 + 120_000), "3h02m");
    }

    #[test]
    fn previews_escape_and_cut() {
        assert_eq!(preview(b"hi\r\n\xff", 10), "hi\\r\\n\\xff");
        assert_eq!(preview(b"abcdef", 3), "abc...");
    }

    #[test]
    fn json_numbers_stay_numbers() {
        let value = json_object(&[("items".into(), "3".into()), ("v".into(), "0.1.0".into())]);
        assert_eq!(value["items"], 3);
        assert_eq!(value["v"], "0.1.0");
    }
}
