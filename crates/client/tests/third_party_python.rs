//! pymemcache and python-memcached (PyPI), unchanged, against real lanner servers. They are
//! installed by `scripts/install-test-clients.sh`; without Python or the packages these tests
//! print why and pass. See docs/clients.md for each client's quirks.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::{Lanner, client_script, run_to_success, third_party_dir};

/// The venv made by the install script, else `python3` from the PATH.
fn python_with(module: &str) -> Option<PathBuf> {
    let venv = third_party_dir().join("venv/bin/python");
    let candidates = [venv, PathBuf::from("python3")];
    let found = candidates.into_iter().find(|python| {
        Command::new(python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|output| output.status.success())
    });
    if found.is_none() {
        println!(
            "SKIPPED: no Python with the {module} module \
             (run scripts/install-test-clients.sh to install it)"
        );
    }
    found
}

#[test]
fn pymemcache_sets_gets_blocks_and_reads_reliably() {
    let Some(python) = python_with("pymemcache") else {
        return;
    };
    let plain = Lanner::start();
    let echo = Lanner::start_with_config("[server]\necho_full_key = true\n");
    let mut command = Command::new(python);
    command
        .arg(client_script("pymemcache_check.py"))
        .arg(plain.address())
        .arg(echo.address());
    let output = run_to_success(command);
    assert!(output.contains("all checks passed"), "{output}");
}

#[test]
fn python_memcached_sets_gets_blocks_and_reads_reliably() {
    let Some(python) = python_with("memcache") else {
        return;
    };
    let server = Lanner::start();
    let mut command = Command::new(python);
    command
        .arg(client_script("python_memcached_check.py"))
        .arg(server.address());
    let output = run_to_success(command);
    assert!(output.contains("all checks passed"), "{output}");
}
