//! The memcache text protocol byte for byte (spec a.1-a.4, b.1-b.2, e.1-e.2, f.2, g; Part 0):
//! every command's reply, framing, pipelining, stats, and every error line with what happens to
//! the connection after it.

mod support;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use support::{Client, Server, set_request, value_reply};

const GLOBAL_STATS: [&str; 19] = [
    "uptime",
    "time",
    "version",
    "curr_items",
    "total_items",
    "bytes",
    "reserved_memory_ratio",
    "curr_connections",
    "total_connections",
    "cmd_get",
    "cmd_set",
    "cmd_peek",
    "get_hits",
    "get_misses",
    "bytes_read",
    "bytes_written",
    "queue_creates",
    "queue_deletes",
    "queue_expires",
];

const QUEUE_STATS: [&str; 17] = [
    "items",
    "bytes",
    "total_items",
    "logsize",
    "expired_items",
    "mem_items",
    "mem_bytes",
    "age",
    "discarded",
    "waiters",
    "open_transactions",
    "transactions",
    "canceled_transactions",
    "total_flushes",
    "journal_rewrites",
    "journal_rotations",
    "journal_poisoned",
];

fn version_reply() -> Vec<u8> {
    format!("VERSION {}\r\n", env!("CARGO_PKG_VERSION")).into_bytes()
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A server whose request lines may be at most 1 KiB long.
fn server_with_short_lines() -> Server {
    Server::start_with_config("[server]\nmax_line_length = \"1KiB\"\n")
}

// ---- set and get ----

#[test]
fn set_replies_stored_and_get_returns_value_with_bare_name_flags_zero_and_end() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"set jobs 0 0 5\r\nhello\r\n", b"STORED\r\n");
    client.expect(b"get jobs\r\n", b"VALUE jobs 0 5\r\nhello\r\nEND\r\n");
}

#[test]
fn get_on_empty_queue_replies_end() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"get nothing\r\n", b"END\r\n");
    client.set("q", b"x");
    client.expect(b"get q\r\n", &value_reply("q", b"x"));
    client.expect(b"get q\r\n", b"END\r\n");
}

#[test]
fn flags_are_never_returned() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"set q 12345 0 1\r\na\r\n", b"STORED\r\n");
    client.expect(b"get q\r\n", b"VALUE q 0 1\r\na\r\nEND\r\n");
}

#[test]
fn gets_is_accepted_as_get_without_cas_value() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("q", b"abc");
    client.expect(b"gets q\r\n", b"VALUE q 0 3\r\nabc\r\nEND\r\n");
    client.expect(b"gets q\r\n", b"END\r\n");
}

#[test]
fn items_come_out_in_fifo_order() {
    let server = Server::start();
    let mut client = server.connect();
    for index in 0..20 {
        client.set("fifo", format!("item-{index}").as_bytes());
    }
    for index in 0..20 {
        client.expect(
            b"get fifo\r\n",
            &value_reply("fifo", format!("item-{index}").as_bytes()),
        );
    }
    client.expect(b"get fifo\r\n", b"END\r\n");
}

#[test]
fn zero_length_item_is_stored_and_returned() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"set q 0 0 0\r\n\r\n", b"STORED\r\n");
    client.expect(b"get q\r\n", b"VALUE q 0 0\r\n\r\nEND\r\n");
    client.expect(b"get q\r\n", b"END\r\n");
}

#[test]
fn binary_payload_with_crlf_and_nul_bytes_round_trips() {
    let server = Server::start();
    let mut client = server.connect();
    let payload: Vec<u8> = b"a\r\nb\0c\r\nEND\r\n\xff\x00".to_vec();
    client.expect(&set_request("bin", &payload), b"STORED\r\n");
    client.expect(b"get bin\r\n", &value_reply("bin", &payload));
    let every_byte: Vec<u8> = (0..=255u8).collect();
    client.set("bin", &every_byte);
    client.expect(b"get bin\r\n", &value_reply("bin", &every_byte));
}

#[test]
fn large_items_spanning_many_reads_round_trip() {
    let server = Server::start();
    let mut client = server.connect();
    let items: Vec<Vec<u8>> = [1023, 1024, 1025, 70_000, 1 << 20]
        .iter()
        .enumerate()
        .map(|(index, &len)| (0..len).map(|byte| (byte * 7 + index) as u8).collect())
        .collect();
    let mut request = Vec::new();
    for data in &items {
        request.extend_from_slice(&set_request("big", data));
    }
    let mut expected = b"STORED\r\n".repeat(items.len());
    for data in &items {
        request.extend_from_slice(b"get big\r\n");
        expected.extend_from_slice(&value_reply("big", data));
    }
    client.expect(&request, &expected);
    assert_eq!(client.stat("queue_big_items").as_deref(), Some("0"));
}

#[test]
fn utf8_queue_name_is_echoed_byte_for_byte() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"set caf\xc3\xa9 0 0 2\r\nok\r\n", b"STORED\r\n");
    client.expect(
        b"get caf\xc3\xa9/open\r\n",
        b"VALUE caf\xc3\xa9 0 2\r\nok\r\nEND\r\n",
    );
    client.expect(b"get caf\xc3\xa9/close\r\n", b"END\r\n");
}

#[test]
fn value_line_never_echoes_get_options() {
    let server = Server::start();
    let mut client = server.connect();
    for _ in 0..4 {
        client.set("q", b"v");
    }
    client.expect(b"get q/peek\r\n", b"VALUE q 0 1\r\nv\r\nEND\r\n");
    client.expect(b"get q/t=100\r\n", b"VALUE q 0 1\r\nv\r\nEND\r\n");
    client.expect(b"get q/open\r\n", b"VALUE q 0 1\r\nv\r\nEND\r\n");
    client.expect(b"get q/close/open/t=10\r\n", b"VALUE q 0 1\r\nv\r\nEND\r\n");
    client.expect(b"get q/close\r\n", b"END\r\n");
    client.expect(b"gets q/unknown/\r\n", b"VALUE q 0 1\r\nv\r\nEND\r\n");
}

#[test]
fn lf_only_line_endings_are_accepted_and_replies_use_crlf() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"set q 0 0 2\nab\r\n", b"STORED\r\n");
    client.expect(b"get q\n", b"VALUE q 0 2\r\nab\r\nEND\r\n");
    client.expect(b"get q\n", b"END\r\n");
    client.expect(b"version\n", &version_reply());
}

#[test]
fn command_word_is_case_insensitive() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"SET q 0 0 1\r\na\r\n", b"STORED\r\n");
    client.expect(b"Set q 0 0 1\r\nb\r\n", b"STORED\r\n");
    client.expect(b"GeT q\r\n", b"VALUE q 0 1\r\na\r\nEND\r\n");
    client.expect(b"GETS q\r\n", b"VALUE q 0 1\r\nb\r\nEND\r\n");
    client.expect(b"VERSION\r\n", &version_reply());
    client.expect(b"DELETE q\r\n", b"DELETED\r\n");
}

#[test]
fn queue_names_and_options_are_case_sensitive() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("Q", b"upper");
    client.expect(b"get q\r\n", b"END\r\n");
    // `/OPEN` is not `open`: an unknown option, so this is a plain get.
    client.expect(b"get Q/OPEN\r\n", b"VALUE Q 0 5\r\nupper\r\nEND\r\n");
    assert_eq!(
        client.stat("queue_Q_open_transactions").as_deref(),
        Some("0")
    );
    assert_eq!(client.stat("queue_Q_items").as_deref(), Some("0"));
}

#[test]
fn set_with_extra_tokens_like_noreply_still_replies() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"set q 0 0 1 noreply\r\na\r\n", b"STORED\r\n");
    client.expect(b"set q 0 0 1 noreply extra tokens\r\nb\r\n", b"STORED\r\n");
    client.expect(b"get q\r\n", b"VALUE q 0 1\r\na\r\nEND\r\n");
    client.expect(b"get q\r\n", b"VALUE q 0 1\r\nb\r\nEND\r\n");
}

#[test]
fn get_with_several_keys_looks_only_at_the_first() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("b", b"in b");
    client.expect(b"get a b\r\n", b"END\r\n");
    client.set("a", b"in a");
    client.expect(b"get a b\r\n", &value_reply("a", b"in a"));
    assert_eq!(client.stat("queue_b_items").as_deref(), Some("1"));
    client.expect(b"get b\r\n", &value_reply("b", b"in b"));
}

#[test]
fn get_with_trailing_slash_is_a_plain_get() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("q", b"one");
    client.set("q", b"two");
    client.expect(b"get q/\r\n", &value_reply("q", b"one"));
    client.expect(b"get q//\r\n", &value_reply("q", b"two"));
    client.expect(b"get q/\r\n", b"END\r\n");
    assert_eq!(
        client.stat("queue_q_open_transactions").as_deref(),
        Some("0")
    );
}

#[test]
fn unknown_get_options_are_ignored() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("q", b"x");
    client.expect(b"get q/bogus/x=1/opened/Peek\r\n", &value_reply("q", b"x"));
    client.expect(b"get q/bogus\r\n", b"END\r\n");
    assert_eq!(
        client.stat("queue_q_open_transactions").as_deref(),
        Some("0")
    );
}

#[test]
fn queue_name_of_200_bytes_is_accepted() {
    let server = Server::start();
    let mut client = server.connect();
    let name = "n".repeat(200);
    client.expect(&set_request(&name, b"long"), b"STORED\r\n");
    client.expect(
        format!("get {name}\r\n").as_bytes(),
        &value_reply(&name, b"long"),
    );
}

// ---- delete, flush, flush_all, version, quit, shutdown ----

#[test]
fn delete_replies_deleted_and_removes_the_queue_and_its_items() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("q", b"a");
    client.set("q", b"b");
    client.expect(b"delete q\r\n", b"DELETED\r\n");
    assert!(!client.has_queue("q"), "deleted queue still in stats");
    assert_eq!(client.stat("queue_deletes").as_deref(), Some("1"));
    client.expect(b"get q\r\n", b"END\r\n");
    assert_eq!(client.stat("queue_q_items").as_deref(), Some("0"));
}

#[test]
fn delete_of_missing_queue_replies_deleted_without_creating_it() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"delete never_seen\r\n", b"DELETED\r\n");
    assert!(!client.has_queue("never_seen"));
}

#[test]
fn flush_replies_end_and_removes_the_items() {
    let server = Server::start();
    let mut client = server.connect();
    for data in [&b"a"[..], b"b", b"c"] {
        client.set("q", data);
    }
    client.expect(b"flush q\r\n", b"END\r\n");
    assert_eq!(client.stat("queue_q_items").as_deref(), Some("0"));
    assert_eq!(client.stat("queue_q_total_flushes").as_deref(), Some("1"));
    client.expect(b"get q\r\n", b"END\r\n");
    client.set("q", b"after");
    client.expect(b"get q\r\n", &value_reply("q", b"after"));
}

#[test]
fn flush_of_missing_queue_replies_end() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"flush never_seen\r\n", b"END\r\n");
}

#[test]
fn flush_all_replies_flushed_all_queues_and_empties_every_queue() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("a", b"1");
    client.set("a", b"2");
    client.set("b", b"3");
    client.expect(b"flush_all\r\n", b"Flushed all queues.\r\n");
    client.expect(b"get a\r\n", b"END\r\n");
    client.expect(b"get b\r\n", b"END\r\n");
    assert_eq!(client.stat("curr_items").as_deref(), Some("0"));
    client.expect(b"flush_all\r\n", b"Flushed all queues.\r\n");
}

#[test]
fn version_replies_version_line() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"version\r\n", &version_reply());
    client.expect(b"version extra args\r\n", &version_reply());
}

#[test]
fn quit_closes_without_reply_and_ignores_what_follows() {
    let server = Server::start();
    let mut client = server.connect();
    client.send(b"quit\r\nversion\r\n");
    assert!(
        client.is_closed(),
        "quit did not close the connection without a reply"
    );
    let mut other = server.connect();
    other.wait_for_stat("curr_connections", "1");
}

#[test]
fn shutdown_closes_the_connection_and_the_server_exits_zero() {
    let mut server = Server::start();
    let mut client = server.connect();
    client.set("q", b"kept");
    client.send(b"shutdown\r\n");
    assert!(
        client.is_closed(),
        "shutdown did not close the connection without a reply"
    );
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
}

#[test]
fn status_replies_up() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"status\r\n", b"UP\r\n");
}

#[test]
fn dump_config_answers_effective_configuration_then_end() {
    let server = Server::start_with_config("[server]\nmax_open_transactions = 7\n");
    let mut client = server.connect();
    client.send(b"dump_config\r\n");
    let mut lines = Vec::new();
    loop {
        let line = client.read_line();
        assert!(line.ends_with("\r\n"), "{line:?}");
        if line == "END\r\n" {
            break;
        }
        lines.push(line);
    }
    assert!(
        lines.contains(&"max_open_transactions = 7\r\n".to_owned()),
        "{lines:?}"
    );
    assert!(lines.contains(&"[server]\r\n".to_owned()), "{lines:?}");
    client.expect(b"version\r\n", &version_reply());
}

// ---- stats ----

#[test]
fn stats_lists_global_names_in_kestrel_order_then_each_queue_in_kestrel_order() {
    let server = Server::start();
    let mut client = server.connect();
    let names: Vec<String> = client.stats().into_iter().map(|(name, _)| name).collect();
    assert_eq!(names, GLOBAL_STATS, "stats with no queues");

    client.set("alpha", b"x");
    client.expect(b"get beta\r\n", b"END\r\n");
    let names: Vec<String> = client.stats().into_iter().map(|(name, _)| name).collect();
    assert_eq!(names[..GLOBAL_STATS.len()], GLOBAL_STATS);
    assert_eq!(
        names.len(),
        GLOBAL_STATS.len() + 2 * QUEUE_STATS.len(),
        "{names:?}"
    );
    for queue in ["alpha", "beta"] {
        let expected: Vec<String> = QUEUE_STATS
            .iter()
            .map(|key| format!("queue_{queue}_{key}"))
            .collect();
        let start = names
            .iter()
            .position(|name| *name == expected[0])
            .unwrap_or_else(|| panic!("no stats for {queue}: {names:?}"));
        assert_eq!(
            names[start..start + QUEUE_STATS.len()],
            expected[..],
            "stats of {queue}"
        );
    }
}

#[test]
fn stats_reply_is_stat_lines_then_end() {
    let server = Server::start();
    let mut client = server.connect();
    client.send(b"stats\r\n");
    for name in GLOBAL_STATS {
        let line = client.read_line();
        let prefix = format!("STAT {name} ");
        assert!(
            line.starts_with(&prefix) && line.ends_with("\r\n"),
            "{line:?} is not {prefix:?}..."
        );
    }
    assert_eq!(client.read_line(), "END\r\n");
    let values = client.stats();
    let value = |name: &str| {
        values
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    assert_eq!(value("version").as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(value("reserved_memory_ratio").as_deref(), Some("0.000"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let time: u64 = value("time")
        .expect("time")
        .parse()
        .expect("time is a number");
    assert!(time.abs_diff(now) < 60, "time {time} vs now {now}");
}

#[test]
fn stats_counters_move_with_sets_gets_hits_and_misses() {
    let server = Server::start();
    let mut client = server.connect();
    assert_eq!(client.stat_u64("cmd_set"), 0);
    assert_eq!(client.stat_u64("curr_connections"), 1);
    client.set("q", b"abc");
    client.set("q", b"de");
    assert_eq!(client.stat_u64("cmd_set"), 2);
    assert_eq!(client.stat_u64("curr_items"), 2);
    assert_eq!(client.stat_u64("total_items"), 2);
    assert_eq!(client.stat_u64("bytes"), 5);
    assert_eq!(client.stat_u64("queue_q_items"), 2);
    assert_eq!(client.stat_u64("queue_q_bytes"), 5);

    client.expect(b"get q/peek\r\n", &value_reply("q", b"abc"));
    assert_eq!(client.stat_u64("cmd_peek"), 1);
    assert_eq!(client.stat_u64("cmd_get"), 0);
    assert_eq!(client.stat_u64("get_hits"), 1);

    client.expect(b"get q\r\n", &value_reply("q", b"abc"));
    assert_eq!(client.stat_u64("cmd_get"), 1);
    assert_eq!(client.stat_u64("get_hits"), 2);
    assert_eq!(client.stat_u64("get_misses"), 0);
    assert_eq!(client.stat_u64("curr_items"), 1);
    assert_eq!(client.stat_u64("bytes"), 2);

    client.expect(b"get q\r\n", &value_reply("q", b"de"));
    client.expect(b"get q\r\n", b"END\r\n");
    client.expect(b"get other\r\n", b"END\r\n");
    assert_eq!(client.stat_u64("cmd_get"), 4);
    assert_eq!(client.stat_u64("get_hits"), 3);
    assert_eq!(client.stat_u64("get_misses"), 2);
    assert_eq!(client.stat_u64("curr_items"), 0);
    assert_eq!(client.stat_u64("total_items"), 2);
    assert_eq!(client.stat_u64("cmd_set"), 2);
    assert_eq!(client.stat_u64("queue_creates"), 2);
    assert!(client.stat_u64("bytes_read") > 0);
    assert!(client.stat_u64("bytes_written") > 0);

    let _second = server.connect();
    client.wait_for_stat("curr_connections", "2");
    assert_eq!(client.stat_u64("total_connections"), 2);
}

#[test]
fn stats_queue_age_is_zero_while_the_queue_is_empty() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("q", b"x");
    client.expect(b"get q\r\n", &value_reply("q", b"x"));
    assert_eq!(client.stat("queue_q_age").as_deref(), Some("0"));
    client.expect(b"set q 0 0 0\r\n\r\n", b"STORED\r\n");
    assert_eq!(
        client.stat("queue_q_age").as_deref(),
        Some("0"),
        "only zero-length items queued (g.7b)"
    );
}

#[test]
fn stats_queue_age_is_zero_before_any_item_was_removed() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("q", b"x");
    assert_eq!(client.stat("queue_q_age").as_deref(), Some("0"));
}

#[test]
fn stats_queue_age_is_how_long_the_last_removed_item_waited() {
    let server = Server::start();
    let mut client = server.connect();
    let started = Instant::now();
    client.set("q", b"x");
    client.set("q", b"y");
    client.expect(b"get q\r\n", &value_reply("q", b"x"));
    let waited_at_most = started.elapsed().as_millis() as u64;
    // Let at least 500 ms pass on the server's clock (a blocking get, not a sleep).
    client.expect(b"get elsewhere/t=500\r\n", b"END\r\n");
    let age = client.stat_u64("queue_q_age");
    assert!(
        age <= waited_at_most + 50,
        "age {age} ms, but the removed item waited at most {waited_at_most} ms"
    );
}

/// Names of the queues `stats` reports.
fn queues_in_stats(client: &mut Client) -> Vec<String> {
    client
        .stats()
        .into_iter()
        .filter_map(|(name, _)| {
            name.strip_prefix("queue_")
                .and_then(|rest| rest.strip_suffix("_mem_items"))
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn queues_are_created_by_get_and_set_but_not_by_other_commands() {
    let server = Server::start();
    let mut client = server.connect();
    client.send(b"stats no_stats_queue\r\n");
    while client.read_line() != "END\r\n" {}
    client.expect(b"flush no_flush_queue\r\n", b"END\r\n");
    client.expect(b"delete no_delete_queue\r\n", b"DELETED\r\n");
    client.expect(b"confirm no_confirm_queue 1\r\n", b"ERROR\r\n");
    client.expect(b"flush_expired no_expire_queue\r\n", b"0\r\n");
    client.expect(
        b"dump_stats no_dump_queue\r\n",
        b"queue 'no_dump_queue' {\r\n  \r\n}\r\nEND\r\n",
    );
    client.expect(b"get no_close_queue/close\r\n", b"END\r\n");
    client.expect(b"get no_abort_queue/abort\r\n", b"END\r\n");
    assert_eq!(queues_in_stats(&mut client), Vec::<String>::new());
    assert!(!client.has_queue("no_flush_queue"));
    assert_eq!(client.stat("queue_creates").as_deref(), Some("0"));

    client.expect(b"get made_by_get\r\n", b"END\r\n");
    client.set("made_by_set", b"x");
    let mut queues = queues_in_stats(&mut client);
    queues.sort();
    assert_eq!(queues, ["made_by_get", "made_by_set"]);
    assert_eq!(client.stat("queue_creates").as_deref(), Some("2"));
}

// ---- dump_stats (spec e.2) ----

/// The `dump_stats` block of `queue` built from its `stats` lines.
fn dump_block(client: &mut Client, queue: &str) -> String {
    let stats = client.stats();
    let lines: Vec<String> = QUEUE_STATS
        .iter()
        .map(|key| {
            let name = format!("queue_{queue}_{key}");
            let value = stats
                .iter()
                .find(|(stat, _)| *stat == name)
                .map(|(_, value)| value.clone())
                .unwrap_or_else(|| panic!("no stat {name}"));
            format!("  {key}={value}")
        })
        .collect();
    format!("queue '{queue}' {{\r\n{}\r\n}}", lines.join("\r\n"))
}

#[test]
fn dump_stats_with_no_queues_is_crlf_end() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"dump_stats\r\n", b"\r\nEND\r\n");
}

#[test]
fn dump_stats_of_unknown_queue_is_an_empty_block() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(
        b"dump_stats ghost\r\n",
        b"queue 'ghost' {\r\n  \r\n}\r\nEND\r\n",
    );
}

#[test]
fn dump_stats_shows_every_queue_stat_as_key_value_lines() {
    let server = Server::start();
    let mut client = server.connect();
    // Queues whose figures do not move by themselves (no bytes queued, so age is 0).
    client.set("a", b"x");
    client.expect(b"get a\r\n", &value_reply("a", b"x"));
    client.expect(b"get b\r\n", b"END\r\n");
    let block_a = dump_block(&mut client, "a");
    let block_b = dump_block(&mut client, "b");
    assert!(
        block_a.contains("\r\n  items=0\r\n  bytes=0\r\n  total_items=1\r\n"),
        "{block_a}"
    );

    client.expect(
        b"dump_stats a\r\n",
        format!("{block_a}\r\nEND\r\n").as_bytes(),
    );
    client.expect(
        b"dump_stats a ghost\r\n",
        format!("{block_a}\r\nqueue 'ghost' {{\r\n  \r\n}}\r\nEND\r\n").as_bytes(),
    );

    client.send(b"dump_stats\r\n");
    let both_orders = [
        format!("{block_a}\r\n{block_b}\r\nEND\r\n"),
        format!("{block_b}\r\n{block_a}\r\nEND\r\n"),
    ];
    let got = client.read_exact(both_orders[0].len());
    let got = String::from_utf8_lossy(&got);
    assert!(
        both_orders.iter().any(|expected| *expected == got),
        "dump_stats gave {got:?}"
    );
}

// ---- expiry (spec f.2) ----

#[test]
fn flush_expired_removes_an_already_expired_item_and_counts_it() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"set q 0 -1 4\r\ngone\r\n", b"STORED\r\n");
    client.expect(b"flush_expired q\r\n", b"1\r\n");
    assert_eq!(client.stat("queue_q_items").as_deref(), Some("0"));
    assert_eq!(client.stat("queue_q_expired_items").as_deref(), Some("1"));
    client.expect(b"flush_expired q\r\n", b"0\r\n");
    client.expect(b"get q\r\n", b"END\r\n");
}

#[test]
fn flush_all_expired_counts_expired_items_over_all_queues() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"set a 0 -1 1\r\n1\r\n", b"STORED\r\n");
    client.expect(b"set b 0 -5 1\r\n2\r\n", b"STORED\r\n");
    client.expect(b"set c 0 0 1\r\n3\r\n", b"STORED\r\n");
    client.expect(b"flush_all_expired\r\n", b"2\r\n");
    client.expect(b"flush_all_expired\r\n", b"0\r\n");
    client.expect(b"get c\r\n", &value_reply("c", b"3"));
}

#[test]
fn flush_expired_of_unknown_queue_is_zero() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"flush_expired never_seen\r\n", b"0\r\n");
    client.expect(b"flush_all_expired\r\n", b"0\r\n");
}

#[test]
fn item_with_exptime_in_the_past_is_not_returned() {
    let server = Server::start();
    let mut client = server.connect();
    // 1 000 000 and above are absolute epoch seconds: this one is in 1970.
    client.expect(b"set q 0 1000000 3\r\nold\r\n", b"STORED\r\n");
    client.expect(b"set r 0 -1 3\r\nold\r\n", b"STORED\r\n");
    client.expect(b"get q\r\n", b"END\r\n");
    client.expect(b"get r/peek\r\n", b"END\r\n");
    client.expect(b"get r\r\n", b"END\r\n");
    assert_eq!(client.stat("queue_q_expired_items").as_deref(), Some("1"));
    assert_eq!(client.stat("queue_r_expired_items").as_deref(), Some("1"));
}

#[test]
fn expired_head_is_skipped_and_live_items_behind_it_are_returned() {
    let server = Server::start();
    let mut client = server.connect();
    let future = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3600;
    client.expect(b"set q 0 -1 4\r\ndead\r\n", b"STORED\r\n");
    client.expect(b"set q 0 3600 5\r\nalive\r\n", b"STORED\r\n");
    client.expect(
        format!("set q 0 {future} 6\r\nlater!\r\n").as_bytes(),
        b"STORED\r\n",
    );
    client.expect(b"get q\r\n", &value_reply("q", b"alive"));
    client.expect(b"get q\r\n", &value_reply("q", b"later!"));
    client.expect(b"get q\r\n", b"END\r\n");
}

// ---- pipelining ----

#[test]
fn pipelined_requests_in_one_write_are_answered_in_order() {
    let server = Server::start();
    let mut client = server.connect();
    let mut request = Vec::new();
    let mut expected = Vec::new();
    for index in 0..100 {
        request.extend_from_slice(&set_request("pipe", format!("item-{index}").as_bytes()));
        expected.extend_from_slice(b"STORED\r\n");
    }
    for index in 0..100 {
        request.extend_from_slice(b"get pipe\r\n");
        expected.extend_from_slice(&value_reply("pipe", format!("item-{index}").as_bytes()));
    }
    request.extend_from_slice(b"get pipe\r\nversion\r\n");
    expected.extend_from_slice(b"END\r\n");
    expected.extend_from_slice(&version_reply());
    client.expect(&request, &expected);
}

#[test]
fn pipelined_requests_split_at_every_byte_are_answered_in_order() {
    let server = Server::start();
    let mut client = server.connect();
    let request = concat(&[
        b"set q 0 0 3\r\nabc\r\n",
        b"get q/peek\nget q\r\n",
        b"get q\r\ndelete q\r\n",
    ]);
    for byte in &request {
        client.send(std::slice::from_ref(byte));
    }
    let expected = concat(&[
        b"STORED\r\n",
        &value_reply("q", b"abc"),
        &value_reply("q", b"abc"),
        b"END\r\n",
        b"DELETED\r\n",
    ]);
    client.expect(b"", &expected);
}

// ---- errors that close the connection ----

#[test]
fn unknown_command_is_client_error_and_closes() {
    let server = Server::start();
    server
        .connect()
        .expect_then_closed(b"incr q 1\r\n", b"CLIENT_ERROR unknown command\r\n");
    server
        .connect()
        .expect_then_closed(b"bogus\r\n", b"CLIENT_ERROR unknown command\r\n");
}

#[test]
fn unimplemented_storage_command_is_client_error_and_closes() {
    let server = Server::start();
    server
        .connect()
        .expect_then_closed(b"add q 0 0 1\r\na\r\n", b"CLIENT_ERROR unknown command\r\n");
    server.connect().expect_then_closed(
        b"cas q 0 0 1 5\r\na\r\n",
        b"CLIENT_ERROR unknown command\r\n",
    );
    let mut client = server.connect();
    assert!(!client.has_queue("q"), "refused add created a queue");
}

#[test]
fn empty_line_is_client_error_and_closes() {
    let server = Server::start();
    server
        .connect()
        .expect_then_closed(b"\r\n", b"CLIENT_ERROR unknown command\r\n");
    server
        .connect()
        .expect_then_closed(b"\n", b"CLIENT_ERROR unknown command\r\n");
}

#[test]
fn leading_space_is_client_error_and_closes() {
    let server = Server::start();
    server
        .connect()
        .expect_then_closed(b" get q\r\n", b"CLIENT_ERROR unknown command\r\n");
}

#[test]
fn line_longer_than_max_line_length_is_client_error_and_closes() {
    let server = server_with_short_lines();
    let mut long_line = b"get q ".to_vec();
    long_line.resize(1025, b'x');
    long_line.extend_from_slice(b"\r\n");
    server
        .connect()
        .expect_then_closed(&long_line, b"CLIENT_ERROR line too long\r\n");
}

#[test]
fn line_of_exactly_max_line_length_is_accepted() {
    let server = server_with_short_lines();
    let mut client = server.connect();
    let mut line = b"get q ".to_vec();
    line.resize(1024, b'x');
    line.extend_from_slice(b"\r\n");
    client.expect(&line, b"END\r\n");
    line.truncate(1024);
    line.push(b'\n');
    client.expect(&line, b"END\r\n");
}

#[test]
fn line_without_lf_past_the_limit_is_refused_without_waiting_for_its_end() {
    let server = server_with_short_lines();
    let mut client = server.connect();
    client.expect_then_closed(&[b'a'; 1100], b"CLIENT_ERROR line too long\r\n");
}

#[test]
fn data_block_not_followed_by_crlf_is_bad_data_chunk_and_closes() {
    let server = Server::start();
    server.connect().expect_then_closed(
        b"set q 0 0 3\r\nabcd\r\n",
        b"CLIENT_ERROR bad data chunk\r\n",
    );
    server
        .connect()
        .expect_then_closed(b"set q 0 0 3\r\nabc\n", b"CLIENT_ERROR bad data chunk\r\n");
    server
        .connect()
        .expect_then_closed(b"set q 0 0 0\r\nxx", b"CLIENT_ERROR bad data chunk\r\n");
    let mut client = server.connect();
    assert_eq!(
        client.stat_u64("queue_q_items"),
        0,
        "a bad chunk was stored"
    );
}

#[test]
fn set_with_too_few_tokens_is_client_error_and_closes() {
    let server = Server::start();
    server.connect().expect_then_closed(
        b"set q 0 0\r\n",
        b"CLIENT_ERROR bad command line format\r\n",
    );
    server
        .connect()
        .expect_then_closed(b"set\r\n", b"CLIENT_ERROR bad command line format\r\n");
}

#[test]
fn set_with_non_numeric_or_negative_bytes_is_client_error_and_closes() {
    let server = Server::start();
    server
        .connect()
        .expect_then_closed(b"set q 0 0 x\r\n", b"CLIENT_ERROR bad data length\r\n");
    server
        .connect()
        .expect_then_closed(b"set q 0 0 -1\r\n", b"CLIENT_ERROR bad data length\r\n");
    server
        .connect()
        .expect_then_closed(b"set q 0 0 1.5\r\n", b"CLIENT_ERROR bad data length\r\n");
}

#[test]
fn set_larger_than_max_request_size_is_client_error_and_closes() {
    let server = Server::start_with_config("[server]\nmax_request_size = \"1KiB\"\n");
    server
        .connect()
        .expect_then_closed(b"set q 0 0 1025\r\n", b"CLIENT_ERROR item too large\r\n");
    let mut client = server.connect();
    client.set("q", &[b'x'; 1024]);
}

#[test]
fn get_with_empty_queue_name_is_client_error_and_closes() {
    let server = Server::start();
    server
        .connect()
        .expect_then_closed(b"get /open\r\n", b"CLIENT_ERROR empty queue name\r\n");
    server
        .connect()
        .expect_then_closed(b"get /\r\n", b"CLIENT_ERROR empty queue name\r\n");
    server
        .connect()
        .expect_then_closed(b"get  q\r\n", b"CLIENT_ERROR empty queue name\r\n");
}

#[test]
fn get_with_conflicting_options_is_client_error_and_closes() {
    let server = Server::start();
    for key in [
        "q/peek/open",
        "q/peek/close",
        "q/abort/open",
        "q/abort/close",
        "q/peek/abort",
        "q/open/peek",
        "q/close/open/abort",
    ] {
        let request = format!("get {key}\r\n");
        server.connect().expect_then_closed(
            request.as_bytes(),
            b"CLIENT_ERROR conflicting get options\r\n",
        );
    }
}

#[test]
fn get_with_conflicting_options_takes_nothing() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("q", b"stay");
    server.connect().expect_then_closed(
        b"get q/peek/open\r\n",
        b"CLIENT_ERROR conflicting get options\r\n",
    );
    assert_eq!(
        client.stat("queue_q_open_transactions").as_deref(),
        Some("0")
    );
    client.expect(b"get q\r\n", &value_reply("q", b"stay"));
}

// ---- errors that keep the connection ----

#[test]
fn set_with_non_numeric_flags_is_client_error_and_keeps_the_connection() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect_then_open(b"set q x 0 1\r\na\r\n", b"CLIENT_ERROR bad flags\r\n");
    client.expect_then_open(
        b"set q 4294967296 0 1\r\na\r\n",
        b"CLIENT_ERROR bad flags\r\n",
    );
    client.expect(b"get q\r\n", b"END\r\n");
    client.set("q", b"ok");
    client.expect(b"get q\r\n", &value_reply("q", b"ok"));
}

#[test]
fn set_with_bad_exptime_is_client_error_and_keeps_the_connection() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect_then_open(b"set q 0 soon 1\r\na\r\n", b"CLIENT_ERROR bad exptime\r\n");
    client.expect_then_open(b"set q 0 1.5 1\r\na\r\n", b"CLIENT_ERROR bad exptime\r\n");
    client.expect_then_open(
        b"set q 0 99999999999 1\r\na\r\n",
        b"CLIENT_ERROR bad exptime\r\n",
    );
    client.expect(b"get q\r\n", b"END\r\n");
}

#[test]
fn bad_request_followed_by_a_pipelined_request_is_skipped_exactly() {
    let server = Server::start();
    let mut client = server.connect();
    let request = concat(&[
        b"set q x 0 5\r\nget q\r\n",
        b"set q 0 0 2\r\nok\r\n",
        b"get q\r\n",
    ]);
    let expected = concat(&[
        b"CLIENT_ERROR bad flags\r\n",
        b"STORED\r\n",
        &value_reply("q", b"ok"),
    ]);
    client.expect(&request, &expected);
}

/// Names refused by every command that takes a queue name, one per forbidden class.
fn bad_names() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("tilde", b"a~b".to_vec()),
        ("dot", b"a.b".to_vec()),
        ("dot-dot", b"..".to_vec()),
        ("leading dot", b".hidden".to_vec()),
        ("NUL", b"a\0b".to_vec()),
        ("control", b"a\x01b".to_vec()),
        ("tab", b"a\tb".to_vec()),
        ("CR inside", b"a\rb".to_vec()),
        ("DEL", b"a\x7fb".to_vec()),
        ("unicode whitespace", "a\u{a0}b".as_bytes().to_vec()),
        ("unicode control", "a\u{85}b".as_bytes().to_vec()),
        ("leading plus", b"+child".to_vec()),
        ("201 bytes", vec![b'n'; 201]),
        ("not UTF-8", b"caf\xe9".to_vec()),
    ]
}

#[test]
fn set_with_bad_queue_name_is_client_error_and_keeps_the_connection() {
    let server = Server::start();
    let mut client = server.connect();
    let mut names = bad_names();
    names.push(("slash", b"a/b".to_vec()));
    names.push(("empty", Vec::new()));
    for (class, name) in names {
        let request = concat(&[b"set ", &name, b" 0 0 1\r\nx\r\n"]);
        client.send(&request);
        let got = client.read_line();
        assert_eq!(
            got, "CLIENT_ERROR bad queue name\r\n",
            "set with a name containing {class}"
        );
        client.expect(b"version\r\n", &version_reply());
    }
    assert_eq!(client.stat("queue_creates").as_deref(), Some("0"));
    assert_eq!(client.stat("cmd_set").as_deref(), Some("0"));
}

#[test]
fn get_with_bad_queue_name_is_client_error_and_keeps_the_connection() {
    let server = Server::start();
    let mut client = server.connect();
    for (class, name) in bad_names() {
        let request = concat(&[b"get ", &name, b"\r\n"]);
        client.send(&request);
        assert_eq!(
            client.read_line(),
            "CLIENT_ERROR bad queue name\r\n",
            "get with a name containing {class}"
        );
        client.expect(b"version\r\n", &version_reply());
    }
    assert_eq!(client.stat("queue_creates").as_deref(), Some("0"));
}

#[test]
fn other_commands_with_bad_queue_name_are_client_error_and_keep_the_connection() {
    let server = Server::start();
    let mut client = server.connect();
    for request in [
        &b"delete a.b\r\n"[..],
        b"flush a~b\r\n",
        b"flush_expired +q\r\n",
        b"confirm a/b 1\r\n",
        b"monitor a.b 1\r\n",
        b"dump_stats ok a.b\r\n",
    ] {
        client.expect_then_open(request, b"CLIENT_ERROR bad queue name\r\n");
    }
}

#[test]
fn commands_missing_their_queue_name_are_client_error_and_keep_the_connection() {
    let server = Server::start();
    let mut client = server.connect();
    for request in [
        &b"get\r\n"[..],
        b"gets\r\n",
        b"delete\r\n",
        b"flush\r\n",
        b"flush_expired\r\n",
        b"confirm\r\n",
        b"monitor\r\n",
    ] {
        client.expect_then_open(request, b"CLIENT_ERROR missing queue name\r\n");
    }
}

#[test]
fn get_with_bad_timeout_is_client_error_and_keeps_the_connection() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("q", b"x");
    for key in ["q/t=abc", "q/t=", "q/t=1.5", "q/open/t=x", "q/t=2147483648"] {
        let request = format!("get {key}\r\n");
        client.expect_then_open(request.as_bytes(), b"CLIENT_ERROR bad timeout\r\n");
    }
    assert_eq!(
        client.stat("queue_q_open_transactions").as_deref(),
        Some("0")
    );
    client.expect(b"get q\r\n", &value_reply("q", b"x"));
}

#[test]
fn get_with_zero_or_negative_timeout_does_not_wait() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect(b"get q/t=0\r\n", b"END\r\n");
    client.expect(b"get q/t=-5\r\n", b"END\r\n");
    client.expect(b"get q/t=100000/t=0\r\n", b"END\r\n");
}

#[test]
fn monitor_with_bad_numbers_is_client_error_and_keeps_the_connection() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect_then_open(b"monitor q\r\n", b"CLIENT_ERROR bad seconds\r\n");
    client.expect_then_open(b"monitor q x\r\n", b"CLIENT_ERROR bad seconds\r\n");
    client.expect_then_open(b"monitor q 1 x\r\n", b"CLIENT_ERROR bad max items\r\n");
}

#[test]
fn confirm_zero_is_error_and_keeps_the_connection() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("q", b"x");
    client.expect(b"get q/open\r\n", &value_reply("q", b"x"));
    client.expect_then_open(b"confirm q 0\r\n", b"ERROR\r\n");
    assert_eq!(
        client.stat("queue_q_open_transactions").as_deref(),
        Some("1")
    );
}

#[test]
fn confirm_negative_is_client_error_and_keeps_the_connection() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("q", b"x");
    client.expect(b"get q/open\r\n", &value_reply("q", b"x"));
    client.expect_then_open(b"confirm q -1\r\n", b"CLIENT_ERROR bad count\r\n");
    client.expect_then_open(b"confirm q x\r\n", b"CLIENT_ERROR bad count\r\n");
    client.expect_then_open(b"confirm q\r\n", b"CLIENT_ERROR bad count\r\n");
    assert_eq!(
        client.stat("queue_q_open_transactions").as_deref(),
        Some("1")
    );
    client.expect(b"confirm q 1\r\n", b"END\r\n");
}

#[test]
fn confirm_more_than_open_is_error_confirms_nothing_and_keeps_the_connection() {
    let server = Server::start();
    let mut client = server.connect();
    client.expect_then_open(b"confirm q 1\r\n", b"ERROR\r\n");
    client.set("q", b"a");
    client.set("q", b"b");
    client.expect(b"get q/open\r\n", &value_reply("q", b"a"));
    client.expect_then_open(b"confirm q 2\r\n", b"ERROR\r\n");
    assert_eq!(
        client.stat("queue_q_open_transactions").as_deref(),
        Some("1")
    );
    // Nothing was confirmed: aborting puts `a` back at the head.
    client.expect(b"get q/abort\r\n", b"END\r\n");
    client.expect(b"get q\r\n", &value_reply("q", b"a"));
}
