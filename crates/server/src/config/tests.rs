use std::io::Write;

use super::*;

/// The shipped, fully commented configuration file.
const SHIPPED: &str = include_str!("../../../../config/lanner.toml");

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, "test.toml")
}

fn interval(millis: u64) -> SyncPolicy {
    SyncPolicy::Interval(Duration::from_millis(millis))
}

/// The `[default]` table as loading fills it: every required key present.
fn filled_default(sync: SyncPolicy, journal_segment_size: u64) -> QueueOverrides {
    QueueOverrides {
        sync: Some(sync),
        journal_segment_size: Some(journal_segment_size),
        ..QueueSettings::default().into()
    }
}

fn overrides(sync: Option<SyncPolicy>, journal_segment_size: Option<u64>) -> QueueOverrides {
    QueueOverrides {
        sync,
        journal_segment_size,
        ..QueueOverrides::default()
    }
}

/// The error message of `text`, asserting that it is a parse error.
fn parse_error(text: &str) -> String {
    match parse(text) {
        Err(error @ ConfigError::Parse { .. }) => error.to_string(),
        other => panic!("expected a parse error for {text:?}, got {other:?}"),
    }
}

/// The error message of `text`, asserting that it is a validation error.
fn invalid_error(text: &str) -> String {
    match parse(text) {
        Err(error @ ConfigError::Invalid { .. }) => error.to_string(),
        other => panic!("expected a validation error for {text:?}, got {other:?}"),
    }
}

#[test]
fn defaults_are_the_documented_values() {
    let config = Config::default();
    let server = &config.server;
    assert_eq!(server.listen, "127.0.0.1:22133".parse().unwrap());
    assert_eq!(server.data_dir, PathBuf::from("./data"));
    assert_eq!(server.max_open_transactions, 100);
    assert_eq!(server.max_line_length, 64 * 1024);
    assert_eq!(server.max_request_size, 64 * 1024 * 1024);
    assert_eq!(server.max_buffered_request_bytes, 256 * 1024 * 1024);
    assert_eq!(server.shutdown_timeout, Duration::from_secs(5));
    assert!(!server.salvage);
    assert_eq!(
        config.default,
        filled_default(interval(100), 16 * 1024 * 1024)
    );
    assert!(config.queues.is_empty() && config.aliases.is_empty());
    assert_eq!(
        QueueSettings::default(),
        QueueSettings {
            sync: interval(100),
            journal_segment_size: 16 * 1024 * 1024,
            ..QueueSettings::default()
        }
    );
}

#[test]
fn shipped_file_equals_the_defaults() {
    assert_eq!(
        Config::from_toml_str(SHIPPED, "config/lanner.toml").unwrap(),
        Config::default()
    );
}

#[test]
fn empty_file_and_partial_default_table_fill_in_built_in_defaults() {
    assert_eq!(parse("").unwrap(), Config::default());
    let config = parse("[default]\nsync = \"never\"\n").unwrap();
    assert_eq!(config.default, filled_default(SyncPolicy::Never, 16 << 20));
}

#[test]
fn every_key_parses() {
    let config = parse(
        r#"
        [server]
        listen = "0.0.0.0:2000"
        text_listen = "0.0.0.0:2001"
        admin_listen = "0.0.0.0:2003"
        data_dir = "/var/spool/lanner"
        max_open_transactions = 7
        max_connections = 3
        max_line_length = "1KiB"
        max_request_size = 1048576
        max_buffered_request_bytes = "8MiB"
        shutdown_timeout = "1m 30s"
        salvage = true
        echo_full_key = true
        client_timeout = "30s"
        expiration_timer_frequency = "250ms"
        status_file = "/var/lib/lanner/status"
        default_status = "readonly"
        status_change_grace_period = "2s"

        [server.login]
        max_attempts = 5
        failure_delay = "250ms"
        max_failures_per_address = 20
        failure_window = "1h"
        lockout = "30m"
        max_tracked_addresses = 100

        [default]
        sync = "never"
        journal_segment_size = "1GiB"

        [queues.jobs]
        sync = "always"
        journal_segment_size = "64MB"

        [aliases.all_jobs]
        destination_queues = ["jobs", "jobs_backup"]
        "#,
    )
    .unwrap();
    let expected_server = ServerConfig {
        listen: "0.0.0.0:2000".parse().unwrap(),
        text_listen: "0.0.0.0:2001".to_owned(),
        admin_listen: "0.0.0.0:2003".to_owned(),
        data_dir: PathBuf::from("/var/spool/lanner"),
        max_connections: 3,
        max_open_transactions: 7,
        max_line_length: 1024,
        max_request_size: 1 << 20,
        max_buffered_request_bytes: 8 << 20,
        shutdown_timeout: Duration::from_secs(90),
        salvage: true,
        echo_full_key: true,
        client_timeout: Some(Duration::from_secs(30)),
        expiration_timer_frequency: Duration::from_millis(250),
        status_file: Some(PathBuf::from("/var/lib/lanner/status")),
        default_status: "readonly".to_owned(),
        status_change_grace_period: Duration::from_secs(2),
        tls: None,
        login: LoginConfig {
            max_attempts: 5,
            failure_delay: Duration::from_millis(250),
            max_failures_per_address: 20,
            failure_window: Duration::from_secs(3600),
            lockout: Duration::from_secs(1800),
            max_tracked_addresses: 100,
        },
    };
    assert_eq!(config.server, expected_server);
    assert_eq!(config.default, filled_default(SyncPolicy::Never, 1 << 30));
    assert_eq!(
        config.queues["jobs"],
        overrides(Some(SyncPolicy::Always), Some(64_000_000))
    );
    assert_eq!(
        config.aliases["all_jobs"].destination_queues,
        ["jobs", "jobs_backup"]
    );
}

#[test]
fn bad_values_are_parse_errors_that_name_the_origin() {
    let cases = [
        ("[server]\nmax_line_length = \"64XB\"", "\"64XB\""),
        ("[server]\nmax_request_size = 0", "greater than zero"),
        ("[server]\nmax_request_size = -5", "-5"),
        ("[server]\nshutdown_timeout = \"5\"", "\"5\""),
        ("[server]\nshutdown_timeout = 5", "string"),
        ("[server]\nmax_open_transactions = 0", "at least 1"),
        ("[server]\nlisten = \"localhost\"", "listen"),
        ("[default]\nsync = \"0ms\"", "\"always\""),
        ("[default]\nsync = true", "sync"),
        (
            "[queues.jobs]\njournal_segment_size = \"0B\"",
            "greater than zero",
        ),
        (
            "[aliases.a]\ndestination_queues = \"jobs\"",
            "destination_queues",
        ),
        ("[aliases.a]", "destination_queues"),
    ];
    for (text, expected) in cases {
        let message = parse_error(text);
        assert!(message.starts_with("test.toml: "), "{message}");
        assert!(message.contains(expected), "{text}: {message}");
    }
}

#[test]
fn unknown_keys_are_rejected_in_every_table() {
    let cases = [
        ("bogus_top = 1", "bogus_top"),
        ("[server]\nlisten_port = 22133", "listen_port"),
        ("[default]\nmax_itemz = 5", "max_itemz"),
        ("[queues.jobs]\nsync_journal = \"1s\"", "sync_journal"),
        ("[queues.\"jobs+audit\"]\nfanout_onli = true", "fanout_onli"),
        (
            "[aliases.all]\ndestination_queues = [\"a\"]\ndestinations = [\"b\"]",
            "destinations",
        ),
        ("[server]\nmax-line-length = \"1KiB\"", "max-line-length"),
        ("[server.login]\nmax_retries = 3", "max_retries"),
    ];
    for (text, key) in cases {
        let message = parse_error(text);
        assert!(message.contains("test.toml"), "{message}");
        assert!(message.contains(&format!("`{key}`")), "{text}: {message}");
    }
}

#[test]
fn load_names_the_file_in_errors() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"[server]\nlisten_addr = \"127.0.0.1:1\"\n")
        .unwrap();
    let message = Config::load(file.path()).unwrap_err().to_string();
    assert!(
        message.contains(&file.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("listen_addr"), "{message}");

    let missing = file.path().with_extension("missing");
    let error = Config::load(&missing).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&missing.display().to_string()),
        "{error}"
    );
}

#[test]
fn load_reads_a_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"[queues.jobs]\nsync = \"always\"\n")
        .unwrap();
    let config = Config::load(file.path()).unwrap();
    assert_eq!(config.queue_settings("jobs").sync, SyncPolicy::Always);
}

#[test]
fn queues_inherit_default_then_their_own_table() {
    let config = parse(
        "[default]\nsync = \"250ms\"\njournal_segment_size = \"1MiB\"\n\
         [queues.jobs]\nsync = \"always\"\n",
    )
    .unwrap();
    let jobs = config.queue_settings("jobs");
    assert_eq!(
        jobs,
        QueueSettings {
            sync: SyncPolicy::Always,
            journal_segment_size: 1 << 20,
            ..QueueSettings::default()
        }
    );
    let other = config.queue_settings("other");
    assert_eq!(
        other,
        QueueSettings {
            sync: interval(250),
            journal_segment_size: 1 << 20,
            ..QueueSettings::default()
        }
    );
}

#[test]
fn queues_without_any_table_get_the_built_in_defaults() {
    assert_eq!(
        Config::default().queue_settings("anything"),
        QueueSettings::default()
    );
}

#[test]
fn fanout_children_inherit_their_master_then_their_own_table() {
    let config = parse(
        "[default]\njournal_segment_size = \"1MiB\"\n\
         [queues.jobs]\nsync = \"always\"\njournal_segment_size = \"2MiB\"\n\
         [queues.\"jobs+audit\"]\njournal_segment_size = \"3MiB\"\n",
    )
    .unwrap();
    let audit = config.queue_settings("jobs+audit");
    assert_eq!(
        audit,
        QueueSettings {
            sync: SyncPolicy::Always,
            journal_segment_size: 3 << 20,
            ..QueueSettings::default()
        }
    );
    let plain = config.queue_settings("jobs+plain");
    assert_eq!(
        plain,
        QueueSettings {
            sync: SyncPolicy::Always,
            journal_segment_size: 2 << 20,
            ..QueueSettings::default()
        }
    );
    // The master is the text before the first '+'.
    let nested = config.queue_settings("jobs+x+y");
    assert_eq!(nested, plain);
    // A child of a master without a table inherits [default] only.
    let orphan = config.queue_settings("other+child");
    assert_eq!(
        orphan,
        QueueSettings {
            sync: interval(100),
            journal_segment_size: 1 << 20,
            ..QueueSettings::default()
        }
    );
}

#[test]
fn a_child_table_does_not_leak_into_its_master() {
    let config = parse("[queues.\"jobs+audit\"]\nsync = \"never\"\n").unwrap();
    assert_eq!(config.queue_settings("jobs"), QueueSettings::default());
    assert_eq!(config.queue_settings("jobs+audit").sync, SyncPolicy::Never);
}

#[test]
fn buffered_request_memory_must_hold_the_largest_request() {
    let message = invalid_error(
        "[server]\nmax_request_size = \"2MiB\"\nmax_buffered_request_bytes = \"1MiB\"\n",
    );
    assert!(
        message.contains(
            "max_buffered_request_bytes (1048576) is smaller than max_request_size (2097152)"
        ),
        "{message}"
    );
    let equal =
        parse("[server]\nmax_request_size = \"1MiB\"\nmax_buffered_request_bytes = \"1MiB\"\n");
    assert!(equal.is_ok(), "{equal:?}");
}

#[test]
fn invalid_queue_table_names_are_rejected() {
    for name in ["a/b", "a.b", "a~b", "a b", "+child", ""] {
        let message = invalid_error(&format!("[queues.{name:?}]\nsync = \"never\"\n"));
        assert!(message.starts_with("test.toml: "), "{message}");
        assert!(message.contains(&format!("{name:?}")), "{name}: {message}");
    }
    let long = "q".repeat(201);
    invalid_error(&format!("[queues.{long}]\n"));
}

#[test]
fn aliases_must_name_valid_queues_that_are_not_aliases() {
    let cases = [
        (
            "[aliases.\"bad/name\"]\ndestination_queues = [\"jobs\"]",
            "\"bad/name\"",
        ),
        ("[aliases.all]\ndestination_queues = []", "empty"),
        ("[aliases.all]\ndestination_queues = [\"a.b\"]", "\"a.b\""),
        (
            "[aliases.all]\ndestination_queues = [\"jobs\", \"all\"]",
            "itself",
        ),
        (
            "[aliases.all]\ndestination_queues = [\"other\"]\n\
             [aliases.other]\ndestination_queues = [\"jobs\"]",
            "is an alias",
        ),
    ];
    for (text, expected) in cases {
        let message = invalid_error(text);
        assert!(message.starts_with("test.toml: "), "{message}");
        assert!(message.contains(expected), "{text}: {message}");
    }
}

#[test]
fn aliases_may_name_fanout_children() {
    let config = parse("[aliases.all]\ndestination_queues = [\"jobs\", \"jobs+audit\"]").unwrap();
    assert_eq!(
        config.aliases["all"].destination_queues,
        ["jobs", "jobs+audit"]
    );
}

#[test]
fn rendering_round_trips_with_human_units() {
    let text = r#"
        [server]
        listen = "[::1]:2000"
        data_dir = "/srv/lanner data"
        max_open_transactions = 3
        max_line_length = 1001
        max_request_size = "64MB"
        shutdown_timeout = "1m 30s"
        salvage = true

        [default]
        sync = "always"

        [queues.jobs]
        journal_segment_size = "1GiB"

        [queues."jobs+audit"]
        sync = "250ms"

        [queues.empty]

        [aliases.all_jobs]
        destination_queues = ["jobs", "jobs+audit"]
        "#;
    let config = parse(text).unwrap();
    let rendered = config.to_toml_string();
    for expected in [
        "\"1001B\"",
        "\"64MB\"",
        "\"1m 30s\"",
        "\"16MiB\"",
        "\"1GiB\"",
        "\"250ms\"",
    ] {
        assert!(
            rendered.contains(expected),
            "{expected} missing from:\n{rendered}"
        );
    }
    assert_eq!(parse(&rendered).unwrap(), config, "rendered:\n{rendered}");
}

#[test]
fn defaults_render_completely_and_round_trip() {
    let rendered = Config::default().to_toml_string();
    for key in [
        "listen",
        "data_dir",
        "max_open_transactions",
        "salvage",
        "sync",
        "journal_segment",
    ] {
        assert!(rendered.contains(key), "{key} missing from:\n{rendered}");
    }
    assert_eq!(parse(&rendered).unwrap(), Config::default());
}

#[test]
fn expire_to_queue_must_be_a_valid_queue_name() {
    let message = invalid_error("[queues.pending]\nexpire_to_queue = \"bad/name\"\n");
    assert!(message.contains("[queues.\"pending\"]"), "{message}");
    assert!(message.contains("bad/name"), "{message}");
    invalid_error("[default]\nexpire_to_queue = \"\"\n");
}

#[test]
fn limit_keys_parse_in_human_units_and_inherit() {
    let config = parse(
        "[default]\nmax_items = 10\nmax_age = \"30s\"\n\
         [queues.jobs]\nmax_size = \"1MiB\"\nmax_item_size = \"4KiB\"\ndiscard_old_when_full = true\n\
         expire_to_queue = \"ready\"\nmax_expire_sweep = 5\nfanout_only = true\n\
         max_queue_age = \"1h\"\nopen_transaction_timeout = \"2m\"\n",
    )
    .unwrap();
    let jobs = config.queue_settings("jobs");
    assert_eq!(jobs.max_items, Some(10));
    assert_eq!(jobs.max_age, Some(Duration::from_secs(30)));
    assert_eq!(jobs.max_size, Some(1 << 20));
    assert_eq!(jobs.max_item_size, Some(4 << 10));
    assert!(jobs.discard_old_when_full && jobs.fanout_only);
    assert_eq!(jobs.expire_to_queue.as_deref(), Some("ready"));
    assert_eq!(jobs.max_expire_sweep, Some(5));
    assert_eq!(jobs.max_queue_age, Some(Duration::from_secs(3600)));
    assert_eq!(
        jobs.open_transaction_timeout,
        Some(Duration::from_secs(120))
    );
    let child = config.queue_settings("jobs+audit");
    assert_eq!(child, jobs, "a fanout child inherits its master's table");
    let other = config.queue_settings("other");
    assert_eq!(
        (other.max_items, other.max_size, other.fanout_only),
        (Some(10), None, false)
    );
    let reparsed = parse(&config.to_toml_string()).unwrap();
    assert_eq!(reparsed, config);
}

#[test]
fn text_listen_must_be_an_address_or_empty() {
    assert_eq!(
        Config::default().server.text_listen_addr(),
        Some("127.0.0.1:2222".parse().unwrap())
    );
    let message = invalid_error("[server]\ntext_listen = \"port 2222\"\n");
    assert!(message.contains("text_listen"), "{message}");
}

/// A valid Argon2 PHC string (of the password "x").
const SECRET_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$B/h37Eg2wK2/cTlNlhG0uA$DsfhVZ7tHyHOTNR7CM+5XyKY+YmMadXuy7eyUhCJwnQ";

#[test]
fn tls_and_users_are_read_and_dumped_back() {
    let text = format!(
        "[server.tls]\nlisten = \"127.0.0.1:22134\"\ncert_file = \"/etc/lanner/cert.pem\"\n\
         key_file = \"/etc/lanner/key.pem\"\n\
         [users.alice]\npassword_hash = \"{SECRET_HASH}\"\nproduce = [\"jobs\", \"logs*\"]\n\
         consume = [\"*\"]\nadmin = true\n\
         [users.bob]\npassword_hash = \"{SECRET_HASH}\"\n"
    );
    let config = parse(&text).unwrap();
    let tls = config.server.tls.as_ref().expect("a [server.tls] table");
    assert_eq!(tls.listen, "127.0.0.1:22134".parse().unwrap());
    assert_eq!(tls.cert_file, PathBuf::from("/etc/lanner/cert.pem"));
    assert_eq!(tls.key_file, PathBuf::from("/etc/lanner/key.pem"));
    assert_eq!(tls.handshake_timeout, Duration::from_secs(10));
    let alice = &config.users["alice"];
    assert_eq!(alice.produce, ["jobs", "logs*"]);
    assert_eq!(alice.consume, ["*"]);
    assert!(alice.admin);
    let bob = &config.users["bob"];
    assert!(bob.produce.is_empty() && bob.consume.is_empty() && !bob.admin);
    assert_eq!(parse(&config.to_toml_string()).unwrap(), config);
}

#[test]
fn a_tls_table_needs_its_files_and_address() {
    let message = parse_error("[server.tls]\nlisten = \"127.0.0.1:22134\"\n");
    assert!(message.contains("cert_file"), "{message}");
    let message = parse_error(
        "[server.tls]\nlisten = \"127.0.0.1:22134\"\ncert_file = \"c\"\nkey_file = \"k\"\nport = 1\n",
    );
    assert!(message.contains("port"), "{message}");
}

#[test]
fn users_need_a_phc_hash_and_valid_patterns() {
    let message = invalid_error("[users.alice]\npassword_hash = \"secret\"\n");
    assert!(
        message.contains("alice") && message.contains("--hash-password"),
        "{message}"
    );
    let message = invalid_error(&format!(
        "[users.alice]\npassword_hash = \"{SECRET_HASH}\"\nconsume = [\"jobs.eu\"]\n"
    ));
    assert!(message.contains("jobs.eu"), "{message}");
    let message = parse_error(&format!(
        "[users.alice]\npassword_hash = \"{SECRET_HASH}\"\nwrite = [\"q\"]\n"
    ));
    assert!(message.contains("write"), "{message}");
}

#[test]
fn admin_listen_must_be_an_address_or_empty_and_not_the_data_port() {
    assert_eq!(
        Config::default().server.admin_listen_addr(),
        Some("127.0.0.1:2223".parse().unwrap())
    );
    assert_eq!(
        parse("[server]\nadmin_listen = \"\"\n")
            .unwrap()
            .server
            .admin_listen_addr(),
        None
    );
    let message = invalid_error("[server]\nadmin_listen = \"port 2223\"\n");
    assert!(message.contains("admin_listen"), "{message}");
    let message = invalid_error(
        "[server]\nlisten = \"127.0.0.1:22133\"\nadmin_listen = \"127.0.0.1:22133\"\n",
    );
    assert!(message.contains("memcache listen address"), "{message}");
}

#[test]
fn login_limits_default_to_the_documented_values_and_counts_must_be_positive() {
    let login = Config::default().server.login;
    assert_eq!(login.max_attempts, 3);
    assert_eq!(login.failure_delay, Duration::from_secs(1));
    assert_eq!(login.max_failures_per_address, 10);
    assert_eq!(login.failure_window, Duration::from_secs(600));
    assert_eq!(login.lockout, Duration::from_secs(600));
    assert_eq!(login.max_tracked_addresses, 65536);
    let partial = parse("[server.login]\nlockout = \"1h\"\n").unwrap();
    assert_eq!(partial.server.login.lockout, Duration::from_secs(3600));
    assert_eq!(partial.server.login.max_attempts, 3);
    for key in [
        "max_attempts",
        "max_failures_per_address",
        "max_tracked_addresses",
    ] {
        let message = parse_error(&format!("[server.login]\n{key} = 0\n"));
        assert!(message.contains("at least 1"), "{key}: {message}");
    }
    let message = parse_error("[server.login]\nfailure_delay = 5\n");
    assert!(message.contains("failure_delay"), "{message}");
    let message = invalid_error("[server.login]\nlockout = \"400days\"\n");
    assert!(message.contains("lockout"), "{message}");
    for key in ["failure_window", "lockout"] {
        let message = invalid_error(&format!("[server.login]\n{key} = \"0s\"\n"));
        assert!(
            message.contains(&format!("{key} must be longer than 0")),
            "{message}"
        );
    }
    parse("[server.login]\nfailure_delay = \"0s\"\n").expect("no delay is a valid choice");
}
