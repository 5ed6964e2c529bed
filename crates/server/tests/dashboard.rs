//! The dashboard page in a real headless browser (Debian's chromium): it loads, lists the
//! queues the test creates, and shows their depth as it changes. Writes a screenshot to
//! `target/dashboard.png`. Without chromium the test fails under CI and is skipped elsewhere.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::{Client, Server};

/// Virtual time the page may run (timers, one refresh a second) before the DOM is taken.
const DOM_TIME_BUDGET_MS: u32 = 5_000;

/// Virtual time before the screenshot: enough refreshes for the charts to show a history.
const SCREENSHOT_TIME_BUDGET_MS: u32 = 30_000;

/// Bound on the rounds of background traffic during the screenshot.
const TRAFFIC_ROUNDS: u32 = 20_000;

/// Longest a chromium run may take in real time.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

/// Chromium's binary: `$CHROMIUM`, else Debian's.
fn chromium() -> Option<PathBuf> {
    let candidate = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    candidate.is_file().then_some(candidate)
}

/// Runs headless chromium on `url` with `mode` (`--dump-dom`, or `--screenshot=...`), letting
/// the page run `budget_ms` of virtual time.
fn browse(chromium: &Path, url: &str, budget_ms: u32, mode: &[&str]) -> Output {
    let profile = tempfile::tempdir().expect("browser profile dir");
    let output_dir = tempfile::tempdir().expect("browser output dir");
    let (stdout_path, stderr_path) = (
        output_dir.path().join("stdout"),
        output_dir.path().join("stderr"),
    );
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .args(mode)
        .arg(url)
        .stdin(Stdio::null())
        // Files, not pipes: a pipe nobody reads while we wait would stall a large DOM dump.
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    while child.try_wait().expect("poll chromium").is_none() {
        if Instant::now() > deadline {
            drop(child.kill());
            panic!("chromium did not finish within {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = Output {
        status: child.wait().expect("chromium status"),
        stdout: std::fs::read(&stdout_path).expect("chromium stdout"),
        stderr: std::fs::read(&stderr_path).expect("chromium stderr"),
    };
    assert!(
        output.status.success(),
        "chromium failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The DOM of the dashboard page `path` (e.g. `/?queue=q`) after its scripts ran.
fn dashboard_dom(chromium: &Path, server: &Server, path: &str) -> String {
    let url = format!("http://{}{path}", server.admin_addr.expect("admin port"));
    let dom = browse(chromium, &url, DOM_TIME_BUDGET_MS, &["--dump-dom"]).stdout;
    String::from_utf8(dom).expect("UTF-8 DOM")
}

/// The depth the dashboard's row for `queue` shows, if it has one.
fn shown_depth(dom: &str, queue: &str) -> Option<u64> {
    let row_start = dom.find(&format!("<tr data-queue=\"{queue}\""))?;
    let row = &dom[row_start..];
    let row = &row[..row.find("</tr>")?];
    let cell = row.split("class=\"items\" data-value=\"").nth(1)?;
    cell.split('"').next()?.parse().ok()
}

/// Sets and gets on the test's queues until `stop` (or a bound), so that the screenshot shows
/// rates that move; the assertions are made before it starts.
fn background_traffic(mut client: Client, stop: &AtomicBool) {
    for round in 0..TRAFFIC_ROUNDS {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        client.set("dash", b"more");
        client.set("other", b"x");
        if round % 3 != 0 {
            client.get("dash");
        }
        client.get("other");
    }
}

/// The workspace's `target/` directory.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

#[test]
fn the_dashboard_shows_queues_and_their_changing_depth() {
    let Some(chromium) = chromium() else {
        let message = "chromium is not installed (apt-get install -y chromium; .ci/run does it)";
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("skipped: {message}");
        return;
    };
    let server = Server::start_with_admin();
    let mut client = server.connect();
    client.set("dash", b"first");
    client.set("dash", b"second");
    client.set("other", b"x");

    let dom = dashboard_dom(&chromium, &server, "/");
    assert!(dom.contains("<title>lanner dashboard</title>"), "{dom}");
    assert_eq!(shown_depth(&dom, "dash"), Some(2), "{dom}");
    assert_eq!(shown_depth(&dom, "other"), Some(1), "{dom}");

    for data in [&b"third"[..], b"fourth", b"fifth"] {
        client.set("dash", data);
    }
    assert_eq!(client.get("other"), Some(b"x".to_vec()));
    let dom = dashboard_dom(&chromium, &server, "/?queue=dash");
    assert_eq!(shown_depth(&dom, "dash"), Some(5), "{dom}");
    assert_eq!(shown_depth(&dom, "other"), Some(0), "{dom}");
    let detail = &dom[dom.find("<section id=\"detail\"").expect("detail section")..];
    assert!(
        !detail.starts_with("<section id=\"detail\" hidden"),
        "{detail}"
    );
    assert!(
        detail.contains("dash.00000000000000000001.journal"),
        "{detail}"
    );
    assert!(detail.contains("<tr data-key=\"sync\">"), "{detail}");

    let screenshot = target_dir().join("dashboard.png");
    std::fs::create_dir_all(target_dir()).expect("target dir");
    drop(std::fs::remove_file(&screenshot));
    let url = format!(
        "http://{}/?queue=dash",
        server.admin_addr.expect("admin port")
    );
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let traffic = server.connect();
        scope.spawn(|| background_traffic(traffic, &stop));
        browse(
            &chromium,
            &url,
            SCREENSHOT_TIME_BUDGET_MS,
            &[
                &format!("--screenshot={}", screenshot.display()),
                "--window-size=1280,900",
            ],
        );
        stop.store(true, Ordering::Relaxed);
    });
    let written = std::fs::metadata(&screenshot).map(|meta| meta.len());
    assert!(
        written.is_ok_and(|bytes| bytes > 0),
        "no screenshot at {}",
        screenshot.display()
    );
}
