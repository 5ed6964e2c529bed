//! lannerctl's `--user` login (password from `LANNER_PASSWORD` or `--password-file`) against a
//! real lanner server with `[users.*]`.

mod support;

use std::process::Output;

use support::{Server, json, success};

const PASSWORD: &str = "s3cret-pass";

/// A server with one user, `ops`, who may do everything.
fn server_with_users() -> Server {
    let hash = lanner_testkit::hash_password(PASSWORD);
    Server::start_with_config(&format!(
        "[users.ops]\npassword_hash = \"{hash}\"\nproduce = [\"*\"]\nconsume = [\"*\"]\nadmin = true\n"
    ))
}

/// Standard error of a run that must have failed with exit code 1.
fn failure(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn every_online_command_logs_in_with_the_password_from_the_environment() {
    let server = server_with_users();
    let env = [("LANNER_PASSWORD", PASSWORD)];
    let login = |args: &[&str]| server.ctl_env(&[&["--user", "ops"], args].concat(), &env);
    assert_eq!(
        success(&login(&["put", "jobs", "first"])),
        "stored 1 item(s) in jobs\n"
    );
    let stats = json(&login(&["--json", "stats"]));
    assert_eq!(stats["queues"]["jobs"]["items"], 1, "{stats}");
    assert_eq!(success(&login(&["peek", "jobs"])), "first\n");
    assert_eq!(success(&login(&["take", "jobs"])), "first\n");
    assert_eq!(success(&login(&["status"])), "UP\n");
    let frame = success(&login(&["watch", "--iterations", "1"]));
    assert!(frame.contains("jobs"), "{frame}");
}

#[test]
fn the_password_may_come_from_a_file() {
    let server = server_with_users();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let file = file.to_str().unwrap();
    let out = server.ctl(&["--user", "ops", "--password-file", file, "stats"]);
    assert!(success(&out).contains("uptime"));
    // The file wins over the environment.
    let env = [("LANNER_PASSWORD", "wrong")];
    let out = server.ctl_env(&["--user", "ops", "--password-file", file, "stats"], &env);
    assert!(success(&out).contains("uptime"));
}

#[test]
fn a_wrong_password_fails_clearly() {
    let server = server_with_users();
    let env = [("LANNER_PASSWORD", "not-the-password")];
    let stderr = failure(&server.ctl_env(&["--user", "ops", "stats"], &env));
    assert!(
        stderr.contains(r#"login as "ops" refused: authentication failure"#),
        "{stderr}"
    );
    assert!(
        stderr.contains("check the user name and the password"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password"), "{stderr}");
}

#[test]
fn without_a_login_the_error_says_how_to_give_one() {
    let server = server_with_users();
    let stderr = failure(&server.ctl(&["stats"]));
    assert!(stderr.contains("requires authentication"), "{stderr}");
    assert!(stderr.contains("--user NAME"), "{stderr}");
    let stderr = failure(&server.ctl(&["--user", "ops", "stats"]));
    assert!(
        stderr.contains(
            "--user ops needs a password: give --password-file FILE or set LANNER_PASSWORD"
        ),
        "{stderr}"
    );
}
