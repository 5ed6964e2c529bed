//! Password hashes for test configurations with `[users.*]`, made by the real binary.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The hash `lanner --hash-password` prints for `password` (an Argon2id PHC string, for a
/// `password_hash` key).
pub fn hash_password(password: &str) -> String {
    hash_password_with(crate::lanner_binary(), password)
}

/// [`hash_password`] by the lanner binary at `binary` (a test of the server's own package has
/// it as `CARGO_BIN_EXE_lanner`).
pub fn hash_password_with(binary: &Path, password: &str) -> String {
    let mut child = Command::new(binary)
        .arg("--hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lanner --hash-password");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{password}").expect("write the password");
    drop(stdin);
    let output = child.wait_with_output().expect("wait for lanner");
    assert!(
        output.status.success(),
        "--hash-password failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let hash = String::from_utf8(output.stdout).expect("UTF-8 hash");
    let hash = hash.trim_end().to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash:?}");
    hash
}
