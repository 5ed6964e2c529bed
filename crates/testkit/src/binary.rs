//! Finding the `lanner` binary for tests of packages other than the server's.
//!
//! Cargo only hands a test the paths of its own package's binaries, and never builds another
//! package's binary for it. So this harness looks for `lanner` in the target directory the test
//! runs from and, when it is missing or older than a source file it is built from (as after
//! `cargo test -p lanner-client` on a fresh or edited tree), builds it once per test process
//! with `cargo build -p lanner-server --bin lanner`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

/// Workspace crates no part of the `lanner` binary is built from: editing them must not make
/// every test process try to rebuild it.
const NOT_IN_THE_SERVER: [&str; 4] = ["bench", "client", "ctl", "testkit"];

/// The `lanner` binary: `$LANNER_BIN` if set, else `lanner` in the target directory and
/// profile of the running test, built first if it is missing or stale.
pub fn lanner_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("LANNER_BIN") {
            return PathBuf::from(path);
        }
        let profile_dir = profile_dir();
        let binary = profile_dir.join(format!("lanner{}", std::env::consts::EXE_SUFFIX));
        if is_stale(&binary)
            && let Some(cargo) = std::env::var_os("CARGO")
        {
            build(Command::new(cargo), &profile_dir);
        }
        assert!(
            binary.exists(),
            "no lanner binary at {} (set LANNER_BIN or run under cargo)",
            binary.display()
        );
        binary
    })
}

/// `<target dir>/<profile>`: a test runs as `<target dir>/<profile>/deps/<test>-<hash>`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable inside <target>/<profile>/deps")
        .to_owned()
}

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// True if `binary` is missing or older than a manifest or source it is built from.
fn is_stale(binary: &Path) -> bool {
    let built = std::fs::metadata(binary).and_then(|meta| meta.modified());
    built.map_or(true, |built| built < newest_server_source(&workspace_dir()))
}

/// Runs `cargo build -p lanner-server --bin lanner` into the target directory and profile of
/// `profile_dir`.
fn build(mut cargo: Command, profile_dir: &Path) {
    cargo
        .args(["build", "--quiet", "-p", "lanner-server", "--bin", "lanner"])
        .arg("--manifest-path")
        .arg(workspace_dir().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(profile_dir.parent().expect("target dir"));
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        cargo.arg("--release");
    }
    let status = cargo
        .status()
        .expect("run cargo build for the lanner binary");
    assert!(status.success(), "building the lanner binary failed");
}

/// The newest modification time among the manifests and sources the server is built from:
/// the workspace manifest and lock file, and every crate but [`NOT_IN_THE_SERVER`].
fn newest_server_source(workspace: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    walk(&workspace.join("Cargo.toml"), &mut newest);
    walk(&workspace.join("Cargo.lock"), &mut newest);
    let crates = std::fs::read_dir(workspace.join("crates"))
        .into_iter()
        .flatten()
        .flatten();
    for krate in crates.filter(|krate| {
        !NOT_IN_THE_SERVER
            .iter()
            .any(|name| krate.file_name() == *name)
    }) {
        walk(&krate.path().join("Cargo.toml"), &mut newest);
        walk(&krate.path().join("src"), &mut newest);
    }
    newest
}

/// Raises `newest` to the modification time of `path` or, for a directory, of any file in it.
fn walk(path: &Path, newest: &mut SystemTime) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            walk(&entry.path(), newest);
        }
    } else if let Ok(modified) = meta.modified() {
        *newest = (*newest).max(modified);
    }
}
