//! `/metrics`: every figure in Prometheus' (OpenMetrics) text format, built at scrape time
//! from the live queues, so a deleted queue's series disappear with it.

use std::fmt;

use lanner_journal::{LatencySnapshot, fsync_latency};
use lanner_queue::QueueStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::request_metrics::{CommandKind, ErrorKind};
use crate::shared::Shared;
use crate::stats::read;

/// The media type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The exposition text of every metric now.
pub fn encode(shared: &Shared) -> Result<String, fmt::Error> {
    let snapshot = Snapshot::take(shared);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

/// The figures of one scrape, read once so every family sees the same moment.
#[derive(Debug)]
struct Snapshot {
    queues: Vec<(String, QueueStats)>,
    server: Vec<Figure>,
    commands: Vec<(&'static str, LatencySnapshot)>,
    errors: Vec<(&'static str, u64)>,
    fsync: LatencySnapshot,
    status: String,
}

/// One unlabelled server-wide metric.
#[derive(Debug)]
struct Figure {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    value: f64,
}

impl Snapshot {
    fn take(shared: &Shared) -> Snapshot {
        let queues = shared
            .queues
            .queues()
            .iter()
            .map(|queue| (queue.name().to_owned(), queue.stats()))
            .collect();
        let requests = &shared.stats.requests;
        Snapshot {
            queues,
            server: server_figures(shared),
            commands: CommandKind::ALL
                .iter()
                .map(|&kind| (kind.name(), requests.latency(kind)))
                .collect(),
            errors: ErrorKind::ALL
                .iter()
                .map(|&kind| (kind.name(), requests.errors(kind)))
                .collect(),
            fsync: fsync_latency(),
            status: shared.status.current().reply_name().to_ascii_lowercase(),
        }
    }
}

fn server_figures(shared: &Shared) -> Vec<Figure> {
    let stats = &shared.stats;
    let logins = shared.users.login_figures();
    let figure = |name, help, kind, value: u64| Figure {
        name,
        help,
        kind,
        value: value as f64,
    };
    use MetricType::{Counter, Gauge};
    vec![
        Figure {
            name: "lanner_uptime_seconds",
            help: "Seconds since the server started.",
            kind: Gauge,
            value: stats.uptime().as_secs_f64(),
        },
        figure(
            "lanner_connections_open",
            "Client connections open now (both protocols).",
            Gauge,
            read(&stats.curr_connections),
        ),
        figure(
            "lanner_connections",
            "Client connections accepted since start.",
            Counter,
            read(&stats.total_connections),
        ),
        figure(
            "lanner_get_hits",
            "Reads that returned an item.",
            Counter,
            read(&stats.get_hits),
        ),
        figure(
            "lanner_get_misses",
            "Reads that found no item.",
            Counter,
            read(&stats.get_misses),
        ),
        figure(
            "lanner_read_bytes",
            "Bytes received from clients.",
            Counter,
            read(&stats.bytes_read),
        ),
        figure(
            "lanner_written_bytes",
            "Bytes sent to clients.",
            Counter,
            read(&stats.bytes_written),
        ),
        figure(
            "lanner_queues",
            "Queues that exist now.",
            Gauge,
            shared.queues.queues().len() as u64,
        ),
        figure(
            "lanner_queue_creates",
            "Queues created since start.",
            Counter,
            shared.queues.creates(),
        ),
        figure(
            "lanner_queue_deletes",
            "Queues deleted since start.",
            Counter,
            shared.queues.deletes(),
        ),
        figure(
            "lanner_queue_expires",
            "Queues deleted for being older than max_queue_age.",
            Counter,
            shared.queues.expires(),
        ),
        figure(
            "lanner_login_failures",
            "Failed logins: a wrong password or an unknown user.",
            Counter,
            logins.failures,
        ),
        figure(
            "lanner_login_refusals",
            "Logins refused without a password check: their address was locked out.",
            Counter,
            logins.refusals,
        ),
        figure(
            "lanner_login_lockouts",
            "Lockouts of an address after too many failed logins.",
            Counter,
            logins.lockouts,
        ),
    ]
}

/// A per-queue metric: its name, help, type and how to read it from a queue's figures.
struct QueueMetric {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    value: fn(&QueueStats) -> f64,
}

const QUEUE_METRICS: &[QueueMetric] = &[
    QueueMetric {
        name: "lanner_queue_items",
        help: "Items waiting in the queue (open reads excluded).",
        kind: MetricType::Gauge,
        value: |stats| stats.items as f64,
    },
    QueueMetric {
        name: "lanner_queue_bytes",
        help: "Payload bytes of the items waiting in the queue.",
        kind: MetricType::Gauge,
        value: |stats| stats.bytes as f64,
    },
    QueueMetric {
        name: "lanner_queue_memory_items",
        help: "Waiting items held in memory (the rest are spilled to disk).",
        kind: MetricType::Gauge,
        value: |stats| stats.mem_items as f64,
    },
    QueueMetric {
        name: "lanner_queue_memory_bytes",
        help: "Payload bytes of the waiting items held in memory.",
        kind: MetricType::Gauge,
        value: |stats| stats.mem_bytes as f64,
    },
    QueueMetric {
        name: "lanner_queue_enqueued",
        help: "Items added to the queue since start (Kestrel's total_items).",
        kind: MetricType::Counter,
        value: |stats| stats.counters.total_items as f64,
    },
    QueueMetric {
        name: "lanner_queue_dequeued",
        help: "Items readers removed for good: plain gets and confirmed open reads.",
        kind: MetricType::Counter,
        value: |stats| stats.counters.dequeued as f64,
    },
    QueueMetric {
        name: "lanner_queue_expired",
        help: "Items dropped because they expired.",
        kind: MetricType::Counter,
        value: |stats| stats.counters.expired_items as f64,
    },
    QueueMetric {
        name: "lanner_queue_discarded",
        help: "Items discarded because the queue was full.",
        kind: MetricType::Counter,
        value: |stats| stats.counters.discarded as f64,
    },
    QueueMetric {
        name: "lanner_queue_transactions",
        help: "Open reads started.",
        kind: MetricType::Counter,
        value: |stats| stats.counters.transactions as f64,
    },
    QueueMetric {
        name: "lanner_queue_canceled_transactions",
        help: "Open reads aborted or timed out (their items went back).",
        kind: MetricType::Counter,
        value: |stats| stats.counters.canceled_transactions as f64,
    },
    QueueMetric {
        name: "lanner_queue_flushes",
        help: "Times the queue was flushed.",
        kind: MetricType::Counter,
        value: |stats| stats.counters.total_flushes as f64,
    },
    QueueMetric {
        name: "lanner_queue_open_reads",
        help: "Open (unconfirmed) reads now (Kestrel's open_transactions).",
        kind: MetricType::Gauge,
        value: |stats| stats.open_transactions as f64,
    },
    QueueMetric {
        name: "lanner_queue_waiters",
        help: "Clients blocked in a get waiting for an item.",
        kind: MetricType::Gauge,
        value: |stats| stats.waiters as f64,
    },
    QueueMetric {
        name: "lanner_queue_age_seconds",
        help: "How long the last item read had waited in the queue; 0 when the queue is empty.",
        kind: MetricType::Gauge,
        value: |stats| stats.age_ms as f64 / 1000.0,
    },
    QueueMetric {
        name: "lanner_queue_journal_bytes",
        help: "Bytes of the queue's journal segments.",
        kind: MetricType::Gauge,
        value: |stats| stats.journal.total_bytes as f64,
    },
    QueueMetric {
        name: "lanner_queue_journal_segments",
        help: "Journal segment files of the queue.",
        kind: MetricType::Gauge,
        value: |stats| stats.journal.segments as f64,
    },
    QueueMetric {
        name: "lanner_queue_journal_rotations",
        help: "Journal rotations to a new segment since start.",
        kind: MetricType::Counter,
        value: |stats| stats.journal.rotations as f64,
    },
    QueueMetric {
        name: "lanner_queue_journal_rewrites",
        help: "Journal rewrites (compactions) since start.",
        kind: MetricType::Counter,
        value: |stats| stats.journal.rewrites as f64,
    },
    QueueMetric {
        name: "lanner_queue_journal_fsyncs",
        help: "fsyncs of the queue's journal since start.",
        kind: MetricType::Counter,
        value: |stats| stats.journal.fsyncs as f64,
    },
    QueueMetric {
        name: "lanner_queue_journal_poisoned",
        help: "1 when a journal write or fsync failed: the queue refuses writes until a restart.",
        kind: MetricType::Gauge,
        value: |stats| f64::from(u8::from(stats.journal.poisoned)),
    },
];

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        for figure in &self.server {
            let mut metric =
                encoder.encode_descriptor(figure.name, figure.help, None, figure.kind)?;
            encode_value(&mut metric, figure.kind, figure.value)?;
        }
        let mut status = encoder.encode_descriptor(
            "lanner_server_status",
            "The server status (up, writeavoid, readonly, quiescent) as a label; always 1.",
            None,
            MetricType::Gauge,
        )?;
        status
            .encode_family(&[("status", self.status.as_str())])?
            .encode_gauge(&1u64)?;
        self.encode_requests(&mut encoder)?;
        let mut fsync = encoder.encode_descriptor(
            "lanner_journal_fsync_duration_seconds",
            "Duration of journal fsyncs (group commits, rotations, rewrites).",
            None,
            MetricType::Histogram,
        )?;
        encode_histogram(&mut fsync, &self.fsync)?;
        for queue_metric in QUEUE_METRICS {
            let mut metric = encoder.encode_descriptor(
                queue_metric.name,
                queue_metric.help,
                None,
                queue_metric.kind,
            )?;
            for (name, stats) in &self.queues {
                let labels = [("queue", name.as_str())];
                let mut series = metric.encode_family(&labels)?;
                encode_value(&mut series, queue_metric.kind, (queue_metric.value)(stats))?;
            }
        }
        Ok(())
    }
}

impl Snapshot {
    fn encode_requests(&self, encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
        let mut commands = encoder.encode_descriptor(
            "lanner_commands",
            "Memcache requests answered, by command.",
            None,
            MetricType::Counter,
        )?;
        for (command, latency) in &self.commands {
            commands
                .encode_family(&[("command", *command)])?
                .encode_counter::<NoLabelSet, _, f64>(&latency.count, None)?;
        }
        let mut durations = encoder.encode_descriptor(
            "lanner_request_duration_seconds",
            "Time from parsing a memcache request to writing its reply (journal commit included; \
             a blocking get's wait excluded), by command.",
            None,
            MetricType::Histogram,
        )?;
        for (command, latency) in &self.commands {
            let labels = [("command", *command)];
            let mut series = durations.encode_family(&labels)?;
            encode_histogram(&mut series, latency)?;
        }
        let mut errors = encoder.encode_descriptor(
            "lanner_errors",
            "Errors by kind: protocol (rejected requests), queue (failed queue operations), \
             journal (failed commits).",
            None,
            MetricType::Counter,
        )?;
        for (kind, count) in &self.errors {
            errors
                .encode_family(&[("kind", *kind)])?
                .encode_counter::<NoLabelSet, _, f64>(count, None)?;
        }
        Ok(())
    }
}

fn encode_value(
    metric: &mut MetricEncoder,
    kind: MetricType,
    value: f64,
) -> Result<(), fmt::Error> {
    match kind {
        MetricType::Counter => metric.encode_counter::<NoLabelSet, _, f64>(&value, None),
        _ => metric.encode_gauge(&value),
    }
}

/// Writes a histogram; prometheus-client takes per-bucket (not cumulative) counts, the last
/// bucket at `f64::MAX` standing for `+Inf`.
fn encode_histogram(
    metric: &mut MetricEncoder,
    latency: &LatencySnapshot,
) -> Result<(), fmt::Error> {
    let mut below = 0;
    let mut buckets: Vec<(f64, u64)> = latency
        .cumulative
        .iter()
        .map(|&(bound, cumulative)| {
            let in_bucket = cumulative - below;
            below = cumulative;
            (bound, in_bucket)
        })
        .collect();
    buckets.push((f64::MAX, latency.count - below));
    metric.encode_histogram::<NoLabelSet>(latency.sum_seconds, latency.count, &buckets, None)
}
