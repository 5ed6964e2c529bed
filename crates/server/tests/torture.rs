//! Crash torture (lanner-bench's `torture`) against this package's binary: producers, reliable
//! and plain readers, SIGKILL at random moments, restart on the same data directory, and the
//! ledger's invariants checked after every cycle. The long run is documented in
//! docs/reliability.md (Crash torture).

use lanner_bench::torture::{self, Options, Report};

fn torture(words: &[&str]) -> Report {
    let mut options = Options::parse_from(words).expect("torture options");
    options.server = env!("CARGO_BIN_EXE_lanner").into();
    let report = torture::run(&options).expect("the torture ran to the end");
    eprintln!("{}", report.summary());
    report
}

/// Each run is at least 20 cycles of 100-300 ms, so every reply kind gets cut off by kills.
fn assert_nothing_acknowledged_is_lost(sync: &str) {
    let report = torture(&[
        "--sync",
        sync,
        "--cycles",
        "20",
        "--min-run-ms",
        "100",
        "--max-run-ms",
        "300",
    ]);
    assert!(report.ok(), "{}", report.summary());
    let counts = report.counts;
    assert!(
        counts.sets_acked > 1000,
        "too little load: {}",
        report.summary()
    );
    assert!(
        counts.delivered_plain > 0 && counts.delivered_reliable > 0 && counts.aborted > 0,
        "every kind of read ran: {}",
        report.summary()
    );
    assert_eq!(
        counts.sets_acked + counts.sets_in_doubt_kept,
        counts.delivered_plain
            + counts.delivered_reliable
            + counts.drained_at_end
            + counts.taken_by_gets_in_doubt
            + (counts.closes_in_doubt - counts.closes_in_doubt_returned),
        "every stored item was delivered exactly once, or excused: {}",
        report.summary()
    );
}

#[test]
fn sigkill_loses_nothing_acknowledged_with_sync_always() {
    assert_nothing_acknowledged_is_lost("always");
}

#[test]
fn sigkill_loses_nothing_acknowledged_with_sync_every_100ms() {
    assert_nothing_acknowledged_is_lost("100ms");
}

#[test]
fn the_torture_reports_a_server_that_loses_its_queue() {
    let report = torture(&[
        "--memory-only",
        "--cycles",
        "2",
        "--min-run-ms",
        "100",
        "--max-run-ms",
        "200",
    ]);
    assert!(
        !report.ok(),
        "a memory-only queue must fail: {}",
        report.summary()
    );
    assert!(
        report
            .first_violations
            .iter()
            .any(|violation| violation.contains("lost")),
        "{:?}",
        report.first_violations
    );
}
