//! The JSON endpoints: `/stats.json` (the memcache `stats` figures), `/api/queues` (every
//! queue's figures, for the dashboard) and `/api/queues/{name}` (one queue's figures, resolved
//! configuration and journal files).

use std::path::Path;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lanner_queue::QueueStats;
use serde_json::{Map, Value, json};
use tracing::warn;

use crate::config::QueueOverrides;
use crate::shared::Shared;

/// `/stats.json`: the `stats` reply's lines, Kestrel's names, numbers as numbers.
pub fn stats(shared: &Shared) -> Response {
    let lines = shared.stats.report(&shared.queues, &shared.aliases.load());
    let object: Map<String, Value> = lines
        .into_iter()
        .map(|(key, value)| (key, number_or_string(value)))
        .collect();
    Json(Value::Object(object)).into_response()
}

/// `/api/queues`: server figures and one object per queue, sorted by name.
pub fn queues(shared: &Shared) -> Response {
    let mut queues: Vec<Value> = shared
        .queues
        .queues()
        .iter()
        .map(|queue| queue_figures(queue.name(), &queue.stats()))
        .collect();
    queues.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let stats = &shared.stats;
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": stats.uptime().as_secs(),
        "status": shared.status.current().reply_name().to_ascii_lowercase(),
        "connections": crate::stats::read(&stats.curr_connections),
        "queues": queues,
    }))
    .into_response()
}

/// `/api/queues/{name}`: the queue's figures, its resolved settings and its files; 404 for a
/// queue that does not exist.
pub fn queue(shared: &Shared, name: &str) -> Response {
    let Some(queue) = shared.queues.get(name) else {
        return (StatusCode::NOT_FOUND, format!("no queue {name:?}\n")).into_response();
    };
    let mut figures = queue_figures(name, &queue.stats());
    let settings = QueueOverrides::from(shared.config.load().queue_settings(name));
    figures["config"] = serde_json::to_value(settings).unwrap_or(Value::Null);
    figures["children"] = json!(shared.queues.children_names(name).unwrap_or_default());
    figures["files"] = json!(queue_files(&shared.server.data_dir, name));
    Json(figures).into_response()
}

/// One queue's figures, named for the dashboard.
fn queue_figures(name: &str, stats: &QueueStats) -> Value {
    json!({
        "name": name,
        "items": stats.items,
        "bytes": stats.bytes,
        "mem_items": stats.mem_items,
        "mem_bytes": stats.mem_bytes,
        "age_ms": stats.age_ms,
        "open_reads": stats.open_transactions,
        "waiters": stats.waiters,
        "enqueued": stats.counters.total_items,
        "dequeued": stats.counters.dequeued,
        "expired": stats.counters.expired_items,
        "discarded": stats.counters.discarded,
        "transactions": stats.counters.transactions,
        "canceled_transactions": stats.counters.canceled_transactions,
        "flushes": stats.counters.total_flushes,
        "journal_bytes": stats.journal.total_bytes,
        "journal_segments": stats.journal.segments,
        "journal_rotations": stats.journal.rotations,
        "journal_rewrites": stats.journal.rewrites,
        "journal_fsyncs": stats.journal.fsyncs,
        "journal_poisoned": stats.journal.poisoned,
    })
}

/// The files in `data_dir` that belong to queue `name` (journal segments, rewrites in
/// progress, spill files): names of the form `<name>.<anything>`, as queue names hold no `.`.
fn queue_files(data_dir: &Path, name: &str) -> Vec<Value> {
    let entries = match std::fs::read_dir(data_dir) {
        Ok(entries) => entries,
        Err(error) => {
            warn!(dir = %data_dir.display(), %error, "cannot list the data directory");
            return Vec::new();
        }
    };
    let mut files: Vec<(String, u64)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file_name = entry.file_name().into_string().ok()?;
            let (queue, _) = file_name.split_once('.')?;
            let size = entry.metadata().ok()?.len();
            (queue == name).then_some((file_name, size))
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|(file, bytes)| json!({ "name": file, "bytes": bytes }))
        .collect()
}

/// A figure as a JSON number when it reads as one, else as a string.
fn number_or_string(value: String) -> Value {
    if let Ok(integer) = value.parse::<u64>() {
        return Value::from(integer);
    }
    match value.parse::<f64>() {
        Ok(float) if float.is_finite() => Value::from(float),
        _ => Value::String(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_become_numbers_where_they_parse() {
        assert_eq!(number_or_string("42".to_owned()), json!(42));
        assert_eq!(number_or_string("0.000".to_owned()), json!(0.0));
        assert_eq!(number_or_string("0.1.0".to_owned()), json!("0.1.0"));
        assert_eq!(number_or_string("a,b".to_owned()), json!("a,b"));
        assert_eq!(number_or_string("NaN".to_owned()), json!("NaN"));
    }

    #[test]
    fn only_the_named_queues_files_are_listed() {
        let dir = tempfile::tempdir().expect("tempdir");
        for file in [
            "jobs.00000000000000000001.journal",
            "jobs_b.1.journal",
            "status",
        ] {
            std::fs::write(dir.path().join(file), b"xyz").expect("write");
        }
        let files = queue_files(dir.path(), "jobs");
        assert_eq!(
            files,
            [json!({ "name": "jobs.00000000000000000001.journal", "bytes": 3 })]
        );
    }
}
