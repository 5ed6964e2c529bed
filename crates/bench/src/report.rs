//! What a run reports: one JSON line on stdout (machine-readable) and one table row on stderr.

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::process::Memory;
use crate::proto::Proto;
use crate::tracker::Delivery;

/// A latency histogram in nanoseconds, 3 significant digits, up to 10 minutes.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid histogram bounds")
}

/// Percentiles of a histogram of nanoseconds, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Latency {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let us = |ns: u64| (ns as f64 / 100.0).round() / 10.0;
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            p50_us: us(histogram.value_at_quantile(0.5)),
            p99_us: us(histogram.value_at_quantile(0.99)),
            p999_us: us(histogram.value_at_quantile(0.999)),
            max_us: us(histogram.max()),
        }
    }
}

/// One run's result.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// Free-form tag given with `--label` (the script names the target it measures).
    pub label: String,
    /// Which server this was (`--server-name`), e.g. lanner, redis, memcached.
    pub server: String,
    pub proto: Proto,
    pub scenario: &'static str,
    pub size: usize,
    pub connections: u64,
    pub pipeline: u64,
    /// Messages counted in the rate.
    pub messages: u64,
    pub seconds: f64,
    pub msgs_per_s: f64,
    pub mb_per_s: f64,
    /// Request-to-reply latency of the measured operations.
    #[serde(flatten)]
    pub latency: Latency,
    /// Error replies and failed connections.
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Delivery verification, where the run consumed what was produced.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_pid: Option<u32>,
    /// The server's memory after the run (`VmHWM` is the peak since it started).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// Scenario-specific figures.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// Delivery verified (or nothing to verify) and no errors.
    pub ok: bool,
}

impl Run {
    /// Sets throughput from a message count and seconds.
    pub fn rate(&mut self, messages: u64, seconds: f64) {
        self.messages = messages;
        self.seconds = (seconds * 1000.0).round() / 1000.0;
        let rate = if seconds > 0.0 {
            messages as f64 / seconds
        } else {
            0.0
        };
        self.msgs_per_s = rate.round();
        self.mb_per_s = (rate * self.size as f64 / 1e5).round() / 10.0;
    }

    /// Adds a scenario-specific figure.
    pub fn put(&mut self, key: &str, value: impl Into<Value>) {
        self.extra.insert(key.to_owned(), value.into());
    }

    /// Decides `ok` from the errors and the delivery check.
    pub fn settle(&mut self) {
        self.ok = self.errors == 0 && self.delivery.is_none_or(|delivery| delivery.ok());
        if let Some(d) = self.delivery.filter(|d| !d.ok())
            && self.first_error.is_none()
        {
            self.first_error = Some(format!(
                "delivery check failed: {} lost, {} duplicated, {} unexpected, {} corrupt",
                d.lost, d.duplicated, d.unexpected, d.corrupt
            ));
        }
    }

    /// Adds the CPU the server and the client used, in total and per message counted.
    pub fn cpu(&mut self, cpu: crate::process::CpuUse) {
        let messages = self.messages;
        let per_message = |seconds: f64| {
            if messages > 0 {
                (seconds * 1e7 / messages as f64).round() / 10.0
            } else {
                0.0
            }
        };
        if let Some(server) = cpu.server {
            self.put("server_cpu_s", (server * 100.0).round() / 100.0);
            self.put("server_cpu_us_per_msg", per_message(server));
        }
        if let Some(client) = cpu.client {
            self.put("client_cpu_s", (client * 100.0).round() / 100.0);
            self.put("client_cpu_us_per_msg", per_message(client));
        }
    }

    /// Prints the JSON line on stdout and a table row on stderr.
    pub fn print(&self) {
        println!("{}", serde_json::to_string(self).expect("a run serializes"));
        eprintln!("{}", self.row());
    }

    fn row(&self) -> String {
        let delivery = self.delivery.map_or_else(
            || "-".to_owned(),
            |d| format!("lost {} dup {}", d.lost, d.duplicated),
        );
        let rss = self.memory.map_or_else(
            || "-".to_owned(),
            |m| format!("{:.1} MiB", m.peak_rss_kib as f64 / 1024.0),
        );
        format!(
            "{:<10} {:<9} {:<14} {:>4}B {:>5}c x{:<3} {:>10} msg/s {:>8.1} MB/s  p50 {:>8.1}us  p99 {:>8.1}us  p99.9 {:>8.1}us  {:<18} peak {:<10} {}",
            self.server,
            self.scenario,
            self.label,
            self.size,
            self.connections,
            self.pipeline,
            self.msgs_per_s,
            self.mb_per_s,
            self.latency.p50_us,
            self.latency.p99_us,
            self.latency.p999_us,
            delivery,
            rss,
            if self.ok { "ok" } else { "FAILED" },
        )
    }
}

/// The table's header line.
pub fn header() -> String {
    format!(
        "{:<10} {:<9} {:<14} {:>5} {:>6} {:<4} {:>16} {:>13}  {:<14} {:<14} {:<16}  {:<18} {}",
        "server",
        "scenario",
        "label",
        "size",
        "conns",
        "pipe",
        "rate",
        "MB/s",
        "p50",
        "p99",
        "p99.9",
        "delivery",
        "server RSS"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_is_flat() {
        let mut run = Run {
            label: "t".into(),
            server: "lanner".into(),
            proto: Proto::Kestrel,
            scenario: "produce",
            size: 64,
            connections: 8,
            pipeline: 16,
            messages: 0,
            seconds: 0.0,
            msgs_per_s: 0.0,
            mb_per_s: 0.0,
            latency: Latency::default(),
            errors: 0,
            first_error: None,
            delivery: Some(Delivery::default()),
            server_pid: Some(7),
            memory: Some(Memory {
                peak_rss_kib: 10,
                rss_kib: 5,
            }),
            extra: Map::new(),
            ok: false,
        };
        run.rate(1000, 0.5);
        run.put("ready_ms", 12.5);
        run.settle();
        let json: Value = serde_json::from_str(&serde_json::to_string(&run).unwrap()).unwrap();
        assert_eq!(json["msgs_per_s"], 2000.0);
        assert_eq!(json["mb_per_s"], 0.1);
        assert_eq!(json["proto"], "kestrel");
        assert_eq!(json["lost"], 0);
        assert_eq!(json["peak_rss_kib"], 10);
        assert_eq!(json["ready_ms"], 12.5);
        assert_eq!(json["ok"], true);
    }

    #[test]
    fn latency_in_microseconds() {
        let mut histogram = histogram();
        for ns in [10_000u64, 20_000, 30_000] {
            histogram.record(ns).unwrap();
        }
        let latency = Latency::of(&histogram);
        assert!((latency.p50_us - 20.0).abs() < 0.1, "{latency:?}");
        assert!((latency.max_us - 30.0).abs() < 0.1, "{latency:?}");
    }
}
