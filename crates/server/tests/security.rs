//! Authentication (memcached's text-protocol `-Y` convention), per-user access rules, and the
//! startup checks around them, against the real binary.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{Client, Server, set_request};

/// Users of the tests: their password is their name reversed.
fn users_config() -> String {
    let users = [
        (
            "root",
            "toor",
            r#"admin = true
consume = ["*"]"#,
        ),
        (
            "producer",
            "recudorp",
            r#"produce = ["jobs", "logs*", "fan"]"#,
        ),
        (
            "consumer",
            "remusnoc",
            r#"consume = ["jobs", "logs*", "fan"]"#,
        ),
    ];
    let mut config = String::new();
    for (name, password, rules) in users {
        let hash = hash_password(password);
        config.push_str(&format!(
            "[users.{name}]\npassword_hash = \"{hash}\"\n{rules}\n\n"
        ));
    }
    config
}

fn hash_password(password: &str) -> String {
    lanner_testkit::hash_password_with(Path::new(env!("CARGO_BIN_EXE_lanner")), password)
}

fn auth_request(user: &str, password: &str) -> Vec<u8> {
    set_request("auth", format!("{user} {password}").as_bytes())
}

/// A connection authenticated as `user`.
fn login(server: &Server, user: &str, password: &str) -> Client {
    let mut client = server.connect();
    client.expect(&auth_request(user, password), b"STORED\r\n");
    client
}

fn root(server: &Server) -> Client {
    login(server, "root", "toor")
}

const DENIED: &[u8] = b"CLIENT_ERROR access denied\r\n";

#[test]
fn every_command_before_authentication_is_refused_and_has_no_effect() {
    let server = Server::start_with_config(&users_config());
    let mut client = server.connect();
    for request in [
        &b"get jobs\r\n"[..],
        b"get jobs/open\r\n",
        b"stats\r\n",
        b"version\r\n",
        b"delete jobs\r\n",
        b"flush_all\r\n",
        b"status readonly\r\n",
        b"dump_config\r\n",
        b"shutdown\r\n",
        b"monitor jobs 1\r\n",
    ] {
        client.expect(request, b"CLIENT_ERROR unauthenticated\r\n");
    }
    let mut admin = root(&server);
    assert!(
        !admin.has_queue("jobs"),
        "an unauthenticated get created the queue"
    );
    admin.expect(b"status\r\n", b"UP\r\n");
    client.expect(&auth_request("root", "toor"), b"STORED\r\n");
    client.expect_then_open(b"get jobs\r\n", b"END\r\n");
}

/// The users of [`users_config`] with these `[server.login]` keys.
fn users_config_with_login(login: &str) -> String {
    format!("{}[server.login]\n{login}\n", users_config())
}

const FAILURE: &[u8] = b"CLIENT_ERROR authentication failure\r\n";
const LOCKED_OUT: &[u8] =
    b"CLIENT_ERROR too many failed logins from this address, try again later\r\n";

/// Proves that an unauthenticated connection is still served.
fn expect_still_unauthenticated(client: &mut Client) {
    client.expect(b"version\r\n", b"CLIENT_ERROR unauthenticated\r\n");
}

#[test]
fn a_wrong_password_or_unknown_user_is_refused_and_the_connection_may_retry() {
    let server = Server::start_with_config(&users_config_with_login(
        "max_attempts = 4\nfailure_delay = \"0s\"",
    ));
    let mut client = server.connect();
    client.expect(&auth_request("root", "wrong"), FAILURE);
    client.expect(&auth_request("nobody", "toor"), FAILURE);
    client.expect(&auth_request("producer", "toor"), FAILURE);
    client.expect(b"get jobs\r\n", b"CLIENT_ERROR unauthenticated\r\n");
    client.expect(
        &set_request("auth", b"rootonly"),
        b"CLIENT_ERROR bad authentication token format\r\n",
    );
    client.expect(&auth_request("root", "toor"), b"STORED\r\n");
    assert!(
        client.stat("uptime").is_some(),
        "stats after authenticating"
    );
}

#[test]
fn requests_pipelined_behind_the_authentication_run_as_the_user() {
    let server = Server::start_with_config(&users_config());
    let mut client = server.connect();
    let mut pipeline = auth_request("producer", "recudorp");
    pipeline.extend_from_slice(&set_request("jobs", b"one"));
    pipeline.extend_from_slice(b"get jobs\r\n");
    client.expect(
        &pipeline,
        b"STORED\r\nSTORED\r\nCLIENT_ERROR access denied\r\n",
    );
    let mut consumer = login(&server, "consumer", "remusnoc");
    assert_eq!(consumer.get("jobs"), Some(b"one".to_vec()));
}

#[test]
fn a_huge_unauthenticated_request_is_refused_and_closed() {
    let server = Server::start_with_config(&users_config());
    let mut client = server.connect();
    let mut request = b"set auth 0 0 1000000\r\n".to_vec();
    request.resize(4200, b'x');
    client.expect_then_closed(
        &request,
        b"CLIENT_ERROR authentication request too long\r\n",
    );
    let mut admin = root(&server);
    admin.expect_then_open(b"get auth\r\n", b"END\r\n");
}

#[test]
fn producers_may_only_set_and_only_to_their_queues() {
    let server = Server::start_with_config(&users_config());
    let mut producer = login(&server, "producer", "recudorp");
    producer.set("jobs", b"j");
    producer.set("logs", b"l");
    producer.set("logs_eu", b"e");
    producer.expect_then_open(&set_request("other", b"x"), DENIED);
    producer.expect_then_open(&set_request("job", b"x"), DENIED);
    producer.expect_then_open(b"get jobs\r\n", DENIED);
    producer.expect_then_open(b"get jobs/peek\r\n", DENIED);
    producer.expect_then_open(b"monitor jobs 1\r\n", DENIED);
    let mut admin = root(&server);
    assert!(!admin.has_queue("other") && !admin.has_queue("job"));
    assert_eq!(admin.stat_u64("queue_jobs_items"), 1);
    assert_eq!(admin.stat_u64("queue_logs_eu_items"), 1);
}

#[test]
fn consumers_may_only_read_their_queues_and_a_denied_get_creates_nothing() {
    let server = Server::start_with_config(&users_config());
    let mut admin = root(&server);
    let mut producer = login(&server, "producer", "recudorp");
    producer.set("jobs", b"one");
    producer.set("jobs", b"two");
    let mut consumer = login(&server, "consumer", "remusnoc");
    assert_eq!(consumer.get("jobs/open"), Some(b"one".to_vec()));
    consumer.expect_then_open(b"get secret\r\n", DENIED);
    consumer.expect_then_open(b"get secret/open\r\n", DENIED);
    consumer.expect_then_open(b"confirm secret 1\r\n", DENIED);
    consumer.expect_then_open(&set_request("jobs", b"x"), DENIED);
    consumer.expect_then_open(b"delete jobs\r\n", DENIED);
    consumer.expect_then_open(b"flush jobs\r\n", DENIED);
    assert!(!admin.has_queue("secret"), "a denied get created the queue");
    assert_eq!(admin.stat_u64("queue_jobs_open_transactions"), 1);
    assert_eq!(admin.stat_u64("queue_jobs_items"), 1);
    assert_eq!(consumer.get("jobs/close/open"), Some(b"two".to_vec()));
    consumer.expect(b"get jobs/close\r\n", b"END\r\n");
    admin.wait_for_stat("queue_jobs_items", "0");
}

#[test]
fn admin_commands_need_an_admin_and_leave_everything_as_it_was_when_denied() {
    let server = Server::start_with_config(&users_config());
    let mut producer = login(&server, "producer", "recudorp");
    producer.set("jobs", b"keep");
    for request in [
        &b"delete jobs\r\n"[..],
        b"flush jobs\r\n",
        b"flush_all\r\n",
        b"flush_expired jobs\r\n",
        b"flush_all_expired\r\n",
        b"status readonly\r\n",
        b"reload\r\n",
        b"dump_config\r\n",
        b"shutdown\r\n",
    ] {
        producer.expect_then_open(request, DENIED);
    }
    producer.expect(b"status\r\n", b"UP\r\n");
    let mut admin = root(&server);
    assert_eq!(admin.stat_u64("queue_jobs_items"), 1);
    admin.expect(b"status readonly\r\n", b"END\r\n");
    admin.expect(b"status up\r\n", b"END\r\n");
    admin.expect(b"flush_all\r\n", b"Flushed all queues.\r\n");
    admin.expect(b"delete jobs\r\n", b"DELETED\r\n");
    assert!(!admin.has_queue("jobs"));
}

#[test]
fn rules_apply_to_the_name_as_requested_for_fanout_children() {
    let config = format!("{}[queues.\"fan+copy\"]\n", users_config());
    let server = Server::start_with_config(&config);
    let mut producer = login(&server, "producer", "recudorp");
    producer.set("fan", b"item");
    producer.expect_then_open(&set_request("fan+copy", b"x"), DENIED);
    let mut consumer = login(&server, "consumer", "remusnoc");
    consumer.expect_then_open(b"get fan+copy\r\n", DENIED);
    assert_eq!(consumer.get("fan"), Some(b"item".to_vec()));
    let mut admin = root(&server);
    assert_eq!(admin.get("fan+copy"), Some(b"item".to_vec()));
}

#[test]
fn users_and_an_enabled_text_protocol_refuse_to_start() {
    let temp = tempfile::TempDir::new().expect("temp dir");
    let path = temp.path().join("lanner.toml");
    std::fs::write(&path, users_config()).expect("write config");
    let log = Server::try_start_with(
        &temp.path().join("data"),
        Some(&path),
        &["--text-listen", "127.0.0.1:0"],
    )
    .err()
    .expect("lanner started with users and the text protocol");
    assert!(
        log.contains("text protocol") && log.contains("text_listen"),
        "{log}"
    );
}

#[test]
fn a_non_loopback_listener_without_users_is_warned_about() {
    let temp = tempfile::TempDir::new().expect("temp dir");
    let server = Server::try_start_with(
        &temp.path().join("data"),
        None,
        &["--text-listen", "0.0.0.0:0"],
    )
    .unwrap_or_else(|log| panic!("lanner did not start:\n{log}"));
    let line = server.wait_for_log("without authentication");
    assert!(
        line.contains("WARN") && line.contains("text protocol"),
        "{line}"
    );
}

#[test]
fn a_non_loopback_admin_port_is_warned_about() {
    let temp = tempfile::TempDir::new().expect("temp dir");
    let server = Server::try_start_with(
        &temp.path().join("data"),
        None,
        &["--admin-listen", "0.0.0.0:0"],
    )
    .unwrap_or_else(|log| panic!("lanner did not start:\n{log}"));
    let line = server.wait_for_log("admin HTTP port is bound to the non-loopback address");
    assert!(
        line.contains("WARN") && line.contains("no authentication"),
        "{line}"
    );
}

#[test]
fn a_non_loopback_memcache_listener_without_users_is_warned_about() {
    // Nothing connects to this server.
    let server = support::launch().listen("0.0.0.0:0").start();
    let line = server.wait_for_log("without authentication");
    assert!(line.contains("WARN") && line.contains("memcache"), "{line}");
}

#[test]
fn without_users_everything_is_allowed_as_before() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("auth", b"root toor");
    assert_eq!(client.get("auth"), Some(b"root toor".to_vec()));
    client.expect(b"delete auth\r\n", b"DELETED\r\n");
}

#[test]
fn a_bad_password_hash_stops_startup_with_a_clear_message() {
    let temp = tempfile::TempDir::new().expect("temp dir");
    let path = temp.path().join("lanner.toml");
    std::fs::write(&path, "[users.alice]\npassword_hash = \"plaintext\"\n").expect("config");
    let log = Server::try_start_with(&temp.path().join("data"), Some(&path), &[])
        .err()
        .expect("lanner started with a plaintext password");
    assert!(
        log.contains("alice") && log.contains("--hash-password"),
        "{log}"
    );
}

#[test]
fn reload_keeps_the_users_the_server_started_with() {
    let server = Server::start_with_config(&users_config());
    let changed = users_config().replace("[users.producer]", "[users.renamed]");
    server.rewrite_config(&changed);
    let mut admin = root(&server);
    admin.expect(b"reload\r\n", b"Reloaded config.\r\n");
    server.wait_for_log("[users] changed");
    login(&server, "producer", "recudorp");
    server.connect().expect(
        &auth_request("renamed", "recudorp"),
        b"CLIENT_ERROR authentication failure\r\n",
    );
}

#[test]
fn a_connection_is_closed_at_its_max_attempts_th_failed_login_each_answered_after_the_delay() {
    let delay = Duration::from_millis(200);
    let server = Server::start_with_config(&users_config_with_login(
        "max_attempts = 3\nfailure_delay = \"200ms\"\nmax_failures_per_address = 100",
    ));
    let mut client = server.connect();
    for _ in 0..2 {
        let started = Instant::now();
        client.expect(&auth_request("root", "wrong"), FAILURE);
        assert!(
            started.elapsed() >= delay,
            "answered after {:?}",
            started.elapsed()
        );
        expect_still_unauthenticated(&mut client);
    }
    client.expect_then_closed(&auth_request("nobody", "toor"), FAILURE);
    server.wait_for_log("closing the connection after 3 failed logins");
    root(&server).expect(b"status\r\n", b"UP\r\n");
}

#[test]
fn a_locked_out_address_is_refused_even_with_the_right_password_and_logged_in_clients_go_on() {
    let server = Server::start_with_admin_and_config(&users_config_with_login(
        "max_attempts = 3\nfailure_delay = \"0s\"\nmax_failures_per_address = 2\n\
         failure_window = \"1h\"\nlockout = \"1h\"",
    ));
    let mut admin = root(&server);
    let mut guesser = server.connect();
    guesser.expect(&auth_request("root", "guess1"), FAILURE);
    guesser.expect(&auth_request("root", "guess2"), FAILURE);
    let line = server.wait_for_log("locking out 127.0.0.1");
    assert!(
        line.contains("WARN") && line.contains("2 failed logins"),
        "{line}"
    );
    guesser.expect_then_closed(&auth_request("root", "toor"), LOCKED_OUT);
    for _ in 0..3 {
        server
            .connect()
            .expect_then_closed(&auth_request("root", "toor"), LOCKED_OUT);
    }
    admin.expect(b"status\r\n", b"UP\r\n");
    let metrics = scrape(&server);
    assert_eq!(sample(&metrics, "lanner_login_failures_total"), Some(2.0));
    assert_eq!(sample(&metrics, "lanner_login_refusals_total"), Some(4.0));
    assert_eq!(sample(&metrics, "lanner_login_lockouts_total"), Some(1.0));
}

#[test]
fn a_lockout_ends_after_its_duration() {
    let server = Server::start_with_config(&users_config_with_login(
        "failure_delay = \"0s\"\nmax_failures_per_address = 1\nlockout = \"300ms\"",
    ));
    let mut guesser = server.connect();
    guesser.expect(&auth_request("root", "guess"), FAILURE);
    guesser.expect_then_closed(&auth_request("root", "toor"), LOCKED_OUT);
    let deadline = Instant::now() + support::PATIENCE;
    loop {
        let mut client = server.connect();
        client.send(&auth_request("root", "toor"));
        let reply = client.read_line_bytes();
        if reply == b"STORED\r\n" {
            break;
        }
        assert_eq!(reply, LOCKED_OUT, "{}", String::from_utf8_lossy(&reply));
        assert!(Instant::now() < deadline, "the lockout never ended");
        std::thread::sleep(support::POLL_INTERVAL);
    }
}

#[test]
fn successful_logins_are_neither_limited_nor_delayed() {
    let server = Server::start_with_admin_and_config(&users_config_with_login(
        "max_attempts = 1\nfailure_delay = \"1h\"\nmax_failures_per_address = 1",
    ));
    // A login counted as a failure would lock the address out; a delayed one would outlast
    // the client's read timeout.
    for _ in 0..5 {
        root(&server).expect(b"status\r\n", b"UP\r\n");
    }
    let metrics = scrape(&server);
    assert_eq!(sample(&metrics, "lanner_login_failures_total"), Some(0.0));
    assert_eq!(sample(&metrics, "lanner_login_refusals_total"), Some(0.0));
}

fn scrape(server: &Server) -> String {
    let (status, body) = server.admin_get("/metrics");
    assert_eq!(status, 200, "{body}");
    body
}

fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}
