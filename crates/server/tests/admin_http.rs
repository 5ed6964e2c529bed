//! The admin HTTP port against the real binary: metrics, JSON figures, health and readiness.

mod support;

use std::time::Instant;

use serde_json::Value;
use support::{PATIENCE, POLL_INTERVAL, Server};

/// The value of the sample `series` (name with labels, as exposed) in a metrics text.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

fn scrape(server: &Server) -> String {
    let (status, body) = server.admin_get("/metrics");
    assert_eq!(status, 200, "{body}");
    body
}

fn json(server: &Server, path: &str) -> Value {
    let (status, body) = server.admin_get(path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|error| panic!("{path}: {error}: {body}"))
}

#[test]
fn metrics_follow_sets_gets_and_delete() {
    let server = Server::start_with_admin();
    let mut client = server.connect();
    client.set("jobs", b"one");
    let metrics = scrape(&server);
    assert_eq!(
        sample(&metrics, r#"lanner_queue_items{queue="jobs"}"#),
        Some(1.0)
    );
    for data in [&b"two"[..], b"three"] {
        client.set("jobs", data);
    }
    let metrics = scrape(&server);
    assert_eq!(
        sample(&metrics, r#"lanner_queue_items{queue="jobs"}"#),
        Some(3.0)
    );
    assert_eq!(
        sample(&metrics, r#"lanner_queue_bytes{queue="jobs"}"#),
        Some(11.0)
    );
    assert_eq!(client.get("jobs"), Some(b"one".to_vec()));
    assert_eq!(client.get("missing"), None);
    // A request's latency is recorded once its reply is written, just after the client may
    // have read it; one more round trip orders the recording before the scrape.
    let version = format!("VERSION {}\r\n", env!("CARGO_PKG_VERSION"));
    client.expect(b"version\r\n", version.as_bytes());
    let metrics = scrape(&server);
    let queue = |name: &str| sample(&metrics, &format!("{name}{{queue=\"jobs\"}}"));
    assert_eq!(queue("lanner_queue_items"), Some(2.0));
    assert_eq!(queue("lanner_queue_enqueued_total"), Some(3.0));
    assert_eq!(queue("lanner_queue_dequeued_total"), Some(1.0));
    assert_eq!(queue("lanner_queue_journal_poisoned"), Some(0.0));
    assert!(queue("lanner_queue_journal_bytes").is_some_and(|bytes| bytes > 0.0));
    assert_eq!(sample(&metrics, "lanner_get_hits_total"), Some(1.0));
    assert_eq!(sample(&metrics, "lanner_get_misses_total"), Some(1.0));
    assert_eq!(
        sample(&metrics, r#"lanner_commands_total{command="set"}"#),
        Some(3.0)
    );
    assert_eq!(
        sample(&metrics, r#"lanner_commands_total{command="get"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &metrics,
            r#"lanner_request_duration_seconds_count{command="set"}"#
        ),
        Some(3.0)
    );
    assert_eq!(sample(&metrics, "lanner_connections_open"), Some(1.0));
    assert!(sample(&metrics, "lanner_journal_fsync_duration_seconds_count").is_some());

    client.expect(b"delete jobs\r\n", b"DELETED\r\n");
    let metrics = scrape(&server);
    assert!(
        !metrics.contains(r#"queue="jobs""#),
        "a deleted queue's series remain:\n{metrics}"
    );
    assert_eq!(sample(&metrics, "lanner_queue_deletes_total"), Some(1.0));
}

#[test]
fn every_metric_has_help_and_counters_end_in_total() {
    let server = Server::start_with_admin();
    let mut client = server.connect();
    client.set("q", b"x");
    client.send(b"bogus command\r\n");
    client.read_line();
    let metrics = scrape(&server);
    let sample_names: Vec<&str> = metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .collect();
    let mut families = 0;
    for line in metrics.lines().filter(|line| line.starts_with("# TYPE ")) {
        let mut words = line.split_whitespace().skip(2);
        let (name, kind) = (words.next().unwrap(), words.next().unwrap());
        families += 1;
        assert!(
            metrics.contains(&format!("# HELP {name} ")),
            "no HELP for {name}"
        );
        if kind == "counter" {
            let total = format!("{name}_total");
            assert!(sample_names.contains(&total.as_str()), "no {total}");
            assert!(
                !sample_names.contains(&name),
                "counter sample {name} without _total"
            );
        }
    }
    assert!(families > 30, "only {families} metric families");
    assert!(metrics.ends_with("# EOF\n"));
    assert_eq!(
        sample(&metrics, r#"lanner_errors_total{kind="protocol"}"#),
        Some(1.0)
    );
}

#[test]
fn stats_json_matches_the_stats_command() {
    let server = Server::start_with_admin();
    let mut client = server.connect();
    for data in [&b"a"[..], b"b", b"c"] {
        client.set("work", data);
    }
    let stats = json(&server, "/stats.json");
    assert_eq!(stats["curr_items"], 3);
    assert_eq!(stats["total_items"], 3);
    assert_eq!(stats["queue_work_items"], 3);
    assert_eq!(stats["cmd_set"], 3);
    assert_eq!(stats["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        stats["total_connections"].as_u64(),
        Some(client.stat_u64("total_connections"))
    );
    client.get("work");
    let stats = json(&server, "/stats.json");
    assert_eq!(stats["curr_items"], 2);
    assert_eq!(stats["queue_work_items"], 2);
    assert_eq!(stats["get_hits"], 1);
}

#[test]
fn queue_api_shows_figures_config_and_journal_files() {
    let server = Server::start_with_admin();
    let mut client = server.connect();
    client.set("mail", b"hello");
    client.set("mail", b"world");
    let listing = json(&server, "/api/queues");
    let queues = listing["queues"].as_array().expect("queues array");
    assert_eq!(queues.len(), 1);
    assert_eq!(queues[0]["name"], "mail");
    assert_eq!(queues[0]["items"], 2);
    assert_eq!(queues[0]["enqueued"], 2);
    assert_eq!(listing["status"], "up");

    let detail = json(&server, "/api/queues/mail");
    assert_eq!(detail["items"], 2);
    let config = &detail["config"];
    assert!(config["sync"].is_string(), "{config}");
    assert!(config["journal_segment_size"].is_string(), "{config}");
    let files = detail["files"].as_array().expect("files array");
    assert!(!files.is_empty(), "{detail}");
    for file in files {
        let name = file["name"].as_str().expect("file name");
        assert!(
            name.starts_with("mail.") && name.ends_with(".journal"),
            "{name}"
        );
        let size = std::fs::metadata(server.data_dir().join(name))
            .expect("listed file exists")
            .len();
        assert_eq!(file["bytes"].as_u64(), Some(size));
    }
    assert_eq!(server.admin_get("/api/queues/nothing").0, 404);
}

#[test]
fn health_readiness_and_unknown_paths() {
    let server = Server::start_with_admin();
    assert_eq!(server.admin_get("/healthz"), (200, "ok\n".to_owned()));
    assert_eq!(
        server.admin_get("/readyz"),
        (200, "ready: status up\n".to_owned())
    );
    assert_eq!(server.admin_get("/nothing/here").0, 404);
    let (status, page) = server.admin_get("/");
    assert_eq!(status, 200);
    assert!(page.contains("<title>lanner"), "{page}");

    let mut client = server.connect();
    client.expect(b"status readonly\r\n", b"END\r\n");
    assert_eq!(
        server.admin_get("/readyz").0,
        200,
        "readonly still serves reads"
    );
    client.expect(b"status quiescent\r\n", b"END\r\n");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = server.admin_get("/readyz");
        if status == 503 {
            assert_eq!(body, "not ready: status quiescent\n");
            break;
        }
        assert!(Instant::now() < deadline, "/readyz stayed {status}: {body}");
        std::thread::sleep(POLL_INTERVAL);
    }
    assert_eq!(server.admin_get("/healthz").0, 200);
    client.expect(b"status up\r\n", b"END\r\n");
    assert_eq!(server.admin_get("/readyz").0, 200);
}

#[test]
fn the_data_port_does_not_speak_http() {
    let server = Server::start_with_admin();
    assert_ne!(server.admin_addr, Some(server.addr));
    let mut client = server.connect();
    client.send(b"GET /metrics HTTP/1.1\r\n");
    let reply = client.read_line();
    assert!(!reply.starts_with("HTTP/"), "{reply}");
}
