//! Logging in (`ClientBuilder::credentials`) against real lanner servers with and without
//! `[users.*]`: the async and the blocking client, refused logins, missing credentials, and
//! the login of connections made after a restart.

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use lanner_client::{ClientBuilder, Error, blocking};
use support::{Lanner, eventually, quick_client};

const NO_WAIT: Duration = Duration::ZERO;
const USER: &str = "app";
const PASSWORD: &str = "s3cret-pass";

/// A configuration with one user, `app`, who may do everything.
fn users_config() -> &'static str {
    static CONFIG: OnceLock<String> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let hash = lanner_testkit::hash_password(PASSWORD);
        format!(
            "[users.{USER}]\npassword_hash = \"{hash}\"\nproduce = [\"*\"]\nconsume = [\"*\"]\nadmin = true\n"
        )
    })
}

fn server_with_users() -> Lanner {
    Lanner::start_with_config(users_config())
}

/// The errors of a server that is down (or still marked down).
fn server_unreachable(error: &Error) -> bool {
    matches!(
        error,
        Error::Connect { .. } | Error::ConnectionLost { .. } | Error::NoServerAvailable
    )
}

fn logged_in(server: &Lanner, password: &str) -> ClientBuilder {
    quick_client(&[server]).credentials(USER, password)
}

#[tokio::test]
async fn the_right_credentials_allow_every_operation() {
    let server = server_with_users();
    let client = logged_in(&server, PASSWORD).build().unwrap();
    client.put("jobs", "one").await.unwrap();
    client.put_many("jobs", ["two", "three"]).await.unwrap();
    assert_eq!(
        client.get("jobs", NO_WAIT).await.unwrap().as_deref(),
        Some(&b"one"[..])
    );
    let item = client
        .open("jobs", NO_WAIT)
        .await
        .unwrap()
        .expect("an item");
    assert_eq!(item.data().as_ref(), b"two");
    item.confirm().await.unwrap();
    let stats = client.stats().await.pop().unwrap().stats.unwrap();
    assert_eq!(stats.queue("jobs", "items"), Some(1));
    assert_eq!(
        stats.queue("auth", "items"),
        None,
        "the login was stored as an item"
    );
}

#[test]
fn the_blocking_client_logs_in_too() {
    let server = server_with_users();
    let client = blocking::Client::from_builder(logged_in(&server, PASSWORD)).unwrap();
    client.put("jobs", "blocking").unwrap();
    assert_eq!(
        client.get("jobs", NO_WAIT).unwrap().as_deref(),
        Some(&b"blocking"[..])
    );
    let refused = blocking::Client::from_builder(logged_in(&server, "wrong")).unwrap();
    assert!(matches!(
        refused.put("jobs", "x"),
        Err(Error::AuthenticationFailed { .. })
    ));
}

#[tokio::test]
async fn a_wrong_password_is_a_typed_error_every_time_and_the_server_stays_up() {
    let server = server_with_users();
    let client = logged_in(&server, "wrong").build().unwrap();
    for _ in 0..2 {
        match client.put("jobs", "x").await {
            Err(Error::AuthenticationFailed {
                server: address,
                user,
                message,
            }) => {
                assert_eq!(address, server.address());
                assert_eq!(user, USER);
                assert_eq!(message, "authentication failure");
            }
            other => panic!("expected a refused login, got {other:?}"),
        }
    }
    let error = client.get("jobs", NO_WAIT).await.unwrap_err();
    assert!(
        matches!(error, Error::AuthenticationFailed { .. }),
        "{error:?}"
    );
    assert!(
        !error.to_string().contains("wrong"),
        "the password shows in {error}"
    );
    assert!(
        client.servers()[0].available,
        "a refused login marked the server down"
    );
    let stats = client.stats().await.pop().unwrap().stats;
    assert!(matches!(stats, Err(Error::AuthenticationFailed { .. })));
}

#[tokio::test]
async fn without_credentials_a_server_with_users_answers_unauthenticated() {
    let server = server_with_users();
    let client = server.client();
    let read = client.get("jobs", NO_WAIT).await;
    assert!(
        matches!(read, Err(Error::Unauthenticated { .. })),
        "{read:?}"
    );
    let write = client.put("jobs", "item").await;
    assert!(
        matches!(write, Err(Error::Unauthenticated { .. })),
        "{write:?}"
    );
    let stats = client.stats().await.pop().unwrap().stats;
    assert!(
        matches!(stats, Err(Error::Unauthenticated { .. })),
        "{stats:?}"
    );
    let admin = logged_in(&server, PASSWORD).build().unwrap();
    assert_eq!(admin.get("jobs", NO_WAIT).await.unwrap(), None);
}

#[tokio::test]
async fn connections_made_after_a_restart_log_in_again() {
    let mut server = server_with_users();
    let client = logged_in(&server, PASSWORD).build().unwrap();
    client.put("jobs", "before").await.unwrap();
    server.kill();
    let failed = client.put("jobs", "while down").await;
    assert!(failed.as_ref().is_err_and(server_unreachable), "{failed:?}");
    server.restart();
    eventually("a put on the restarted server", async || {
        match client.put("jobs", "after").await {
            Ok(()) => Some(()),
            Err(error) if server_unreachable(&error) => None,
            Err(error) => panic!("the new connection did not log in: {error:?}"),
        }
    })
    .await;
    let first = client.get("jobs", NO_WAIT).await.unwrap();
    assert_eq!(first.as_deref(), Some(&b"before"[..]));
    let second = client.get("jobs", NO_WAIT).await.unwrap();
    assert_eq!(second.as_deref(), Some(&b"after"[..]));
}

#[tokio::test]
async fn credentials_are_not_sent_to_a_server_without_users() {
    let server = Lanner::start();
    let client = logged_in(&server, PASSWORD).build().unwrap();
    client.put("jobs", "item").await.unwrap();
    let stats = client.stats().await.pop().unwrap().stats.unwrap();
    assert_eq!(stats.queue("jobs", "items"), Some(1));
    assert_eq!(
        stats.queue("auth", "items"),
        None,
        "the credentials were stored as an item"
    );
    assert_eq!(stats.get("curr_items"), Some("1"));
}
