//! Who may do what: the users of `[users.<name>]`, their password check (memcached's text
//! authentication, `-Y` mode: a first `set <any key> 0 0 <n>` whose data is `<user> <password>`),
//! and the per-user access rules applied to every memcache request.
//!
//! Queue rules are lists of patterns: an exact queue name, or a prefix ending in `*` (`"logs*"`
//! matches `logs`, `logs_eu` and the fanout child `logs+audit`; `"*"` matches every queue). A
//! rule applies to the name as the client wrote it: producing to an alias or a fanout master
//! needs the right on that name only, reading a fanout child needs the right on the child's
//! full name.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use lanner_proto::Request;
use tokio::sync::Semaphore;
use tracing::warn;

use crate::config::{Config, LoginConfig, UserConfig};
use crate::login_limit::{LoginFigures, LoginLimiter};

/// The reply to a request the user's rules do not allow.
pub const ACCESS_DENIED: &str = "access denied";

/// A PHC string of a password no one knows, verified when the user name is unknown, so that a
/// failed login takes as long whether or not the user exists.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$RJ9Gn2EsJVP4H791ld3mLw$790neP0bJ+oCEX1BbHFS/M6E3pVtPrLHPzUm8Z2uR3k";

/// Which queues a rule list covers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum QueuePattern {
    /// Exactly this queue.
    Exact(String),
    /// Every queue whose name starts with this (possibly empty) prefix.
    Prefix(String),
}

impl QueuePattern {
    /// Parses `name` or `prefix*`; the name or prefix must be made of valid queue-name bytes.
    fn parse(text: &str) -> Result<QueuePattern, String> {
        let (pattern, fixed) = match text.strip_suffix('*') {
            Some(prefix) => (QueuePattern::Prefix(prefix.to_owned()), prefix),
            None => (QueuePattern::Exact(text.to_owned()), text),
        };
        let valid = !fixed.contains('*')
            && match &pattern {
                QueuePattern::Prefix(prefix) if prefix.is_empty() => true,
                _ => lanner_proto::validate_queue_name(fixed),
            };
        if valid {
            Ok(pattern)
        } else {
            Err(format!(
                "invalid queue pattern {text:?}: write a queue name, or a prefix followed by '*' \
                 (\"*\" alone matches every queue; '*' may appear only at the end)"
            ))
        }
    }

    fn matches(&self, queue: &str) -> bool {
        match self {
            QueuePattern::Exact(name) => name == queue,
            QueuePattern::Prefix(prefix) => queue.starts_with(prefix.as_str()),
        }
    }
}

/// What a user may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    produce: Vec<QueuePattern>,
    consume: Vec<QueuePattern>,
    admin: bool,
}

impl Permissions {
    fn from_config(user: &UserConfig) -> Result<Permissions, String> {
        let patterns = |list: &[String]| -> Result<Vec<QueuePattern>, String> {
            list.iter().map(|text| QueuePattern::parse(text)).collect()
        };
        Ok(Permissions {
            produce: patterns(&user.produce)?,
            consume: patterns(&user.consume)?,
            admin: user.admin,
        })
    }

    fn may_produce(&self, queue: &str) -> bool {
        self.produce.iter().any(|pattern| pattern.matches(queue))
    }

    fn may_consume(&self, queue: &str) -> bool {
        self.consume.iter().any(|pattern| pattern.matches(queue))
    }

    /// True when these permissions allow `request`.
    pub fn allow(&self, request: &Request) -> bool {
        match request {
            Request::Set { queue, .. } => self.may_produce(queue),
            Request::Get { queue, .. }
            | Request::Monitor { queue, .. }
            | Request::Confirm { queue, .. } => self.may_consume(queue),
            Request::Delete { .. }
            | Request::Flush { .. }
            | Request::FlushAll
            | Request::FlushExpired { .. }
            | Request::FlushAllExpired
            | Request::DumpConfig
            | Request::Reload
            | Request::Shutdown
            | Request::Status {
                new_status: Some(_),
            } => self.admin,
            Request::Stats
            | Request::DumpStats { .. }
            | Request::Version
            | Request::Status { new_status: None }
            | Request::Quit => true,
        }
    }
}

/// A configured user.
#[derive(Debug)]
pub struct User {
    pub name: String,
    password_hash: String,
    pub permissions: Permissions,
}

/// How a login went.
#[derive(Debug)]
pub enum LoginOutcome {
    /// The password is the user's.
    Accepted(Arc<User>),
    /// A wrong password or an unknown user.
    Rejected,
    /// Not checked: the client's address is locked out after too many failures.
    LockedOut,
}

/// The configured users; empty when authentication is off.
#[derive(Debug)]
pub struct Users {
    users: BTreeMap<String, Arc<User>>,
    /// One permit per password check allowed at once: each Argon2 check holds its memory cost
    /// (19 MiB by default), so strangers trying passwords on many connections must queue
    /// instead of exhausting memory and the blocking pool.
    checks: Semaphore,
    /// Failed logins per client address, and their lockouts.
    limiter: LoginLimiter,
}

impl Users {
    /// The users of `[users.*]`, their hashes and patterns checked, with the login limits of
    /// `[server.login]`.
    pub fn from_config(
        users: &BTreeMap<String, UserConfig>,
        login: &LoginConfig,
    ) -> Result<Users, String> {
        let mut checked = BTreeMap::new();
        for (name, user) in users {
            check_user(name, user)?;
            let permissions = Permissions::from_config(user)
                .map_err(|message| format!("[users.{name:?}]: {message}"))?;
            let user = User {
                name: name.clone(),
                password_hash: user.password_hash.clone(),
                permissions,
            };
            checked.insert(name.clone(), Arc::new(user));
        }
        let parallelism = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(Users {
            users: checked,
            checks: Semaphore::new(parallelism),
            limiter: LoginLimiter::new(login.clone(), Instant::now()),
        })
    }

    /// True when no user is configured: every connection may do everything.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Checks a login from `peer`: the user `name` if `password` is theirs. Argon2 is slow by
    /// design, so the check runs on the blocking pool, never on a runtime worker, and only a
    /// few run at once. A locked-out address is refused once its turn comes (not before, so
    /// that the checks already queued see a lockout that began while they waited).
    pub async fn check(
        self: Arc<Self>,
        name: String,
        password: Vec<u8>,
        peer: IpAddr,
    ) -> LoginOutcome {
        // The semaphore is never closed.
        let Ok(_permit) = self.checks.acquire().await else {
            return LoginOutcome::Rejected;
        };
        if !self.limiter.admit(peer, Instant::now()) {
            return LoginOutcome::LockedOut;
        }
        let users = Arc::clone(&self);
        let found = tokio::task::spawn_blocking(move || users.verify(&name, &password))
            .await
            .ok()
            .flatten();
        match found {
            Some(user) => LoginOutcome::Accepted(user),
            None => {
                self.limiter.failed(peer, Instant::now());
                LoginOutcome::Rejected
            }
        }
    }

    /// The failed and refused logins so far.
    pub fn login_figures(&self) -> LoginFigures {
        self.limiter.figures()
    }

    /// The user `name` if `password` is theirs (blocking: see [`Users::check`]).
    fn verify(&self, name: &str, password: &[u8]) -> Option<Arc<User>> {
        let Some(user) = self.users.get(name) else {
            // The outcome is known; the work is done so that it takes as long as a real check.
            verify_password(DUMMY_HASH, password);
            return None;
        };
        verify_password(&user.password_hash, password).then(|| Arc::clone(user))
    }
}

/// Refuses a configuration with users and the text protocol: that protocol has no way to
/// authenticate, so it would bypass every rule.
pub fn refuse_unprotected_text_protocol(config: &Config) -> anyhow::Result<()> {
    if config.users.is_empty() || config.server.text_listen.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "[users] is configured but the text protocol is enabled (text_listen = {:?}): it has no \
         authentication and would bypass the users' rules; set text_listen = \"\" in [server] \
         (or pass --text-listen \"\")",
        config.server.text_listen
    )
}

/// Logs a warning when a listener accepts clients from other hosts while anyone may do
/// anything on it.
pub fn warn_if_exposed(listener: &str, address: SocketAddr, users: &Users) {
    if users.is_empty() && !address.ip().to_canonical().is_loopback() {
        warn!(
            %address,
            "the {listener} listener is bound to the non-loopback address {address} without \
             authentication: anyone who can reach it can read, write and delete every queue and \
             shut the server down (configure [users.*], see docs/security.md)"
        );
    }
}

/// Checks one `[users.<name>]` table: a name usable in the `set` credential line, a PHC hash
/// that Argon2 can verify, and valid queue patterns.
pub fn check_user(name: &str, user: &UserConfig) -> Result<(), String> {
    let table = format!("[users.{name:?}]");
    if name.is_empty()
        || name
            .bytes()
            .any(|byte| byte.is_ascii_whitespace() || byte.is_ascii_control())
    {
        return Err(format!(
            "{table}: a user name must be non-empty, without spaces or control characters"
        ));
    }
    let hash = PasswordHash::new(&user.password_hash).map_err(|error| {
        format!("{table}: password_hash is not a PHC string ({error}); make one with `lanner --hash-password`")
    })?;
    if !hash.algorithm.as_str().starts_with("argon2") {
        return Err(format!(
            "{table}: password_hash uses {}, not Argon2; make one with `lanner --hash-password`",
            hash.algorithm
        ));
    }
    Permissions::from_config(user)
        .map(drop)
        .map_err(|message| format!("{table}: {message}"))
}

/// An Argon2id PHC string of `password` with a fresh random salt and Argon2's default costs.
pub fn hash_password(password: &[u8]) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password, &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| format!("cannot hash the password: {error}"))
}

fn verify_password(phc: &str, password: &[u8]) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|hash| Argon2::default().verify_password(password, &hash).is_ok())
}

/// The `<user> <password>` of a memcache authentication `set`, as memcached reads it: the
/// first two space-separated words. `None` when there are fewer, or the user is not UTF-8.
pub fn parse_credentials(data: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut words = data
        .split(|&byte| byte == b' ')
        .filter(|word| !word.is_empty());
    let user = std::str::from_utf8(words.next()?).ok()?.to_owned();
    let password = words.next()?.to_vec();
    Some((user, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(produce: &[&str], consume: &[&str], admin: bool) -> UserConfig {
        let owned = |list: &[&str]| list.iter().map(|text| (*text).to_owned()).collect();
        UserConfig {
            password_hash: hash_password(b"secret").unwrap(),
            produce: owned(produce),
            consume: owned(consume),
            admin,
        }
    }

    fn permissions(produce: &[&str], consume: &[&str], admin: bool) -> Permissions {
        Permissions::from_config(&user(produce, consume, admin)).unwrap()
    }

    fn get(queue: &str) -> Request {
        Request::Get {
            queue: queue.into(),
            options: lanner_proto::GetOptions::default(),
        }
    }

    fn set(queue: &str) -> Request {
        Request::Set {
            queue: queue.into(),
            flags: 0,
            exptime: 0,
            data: 0..0,
        }
    }

    #[test]
    fn exact_patterns_match_only_their_name() {
        let rules = permissions(&["jobs"], &[], false);
        assert!(rules.may_produce("jobs"));
        assert!(!rules.may_produce("jobs2"));
        assert!(!rules.may_produce("jobs+audit"));
        assert!(!rules.may_produce("job"));
    }

    #[test]
    fn prefix_patterns_match_names_that_start_with_them() {
        let rules = permissions(&[], &["logs*"], false);
        for name in ["logs", "logs_eu", "logs+audit"] {
            assert!(rules.may_consume(name), "{name}");
        }
        assert!(!rules.may_consume("log"));
        assert!(!rules.may_consume("jobs"));
        assert!(permissions(&["*"], &[], false).may_produce("anything"));
    }

    #[test]
    fn no_rules_allow_no_queue() {
        let rules = permissions(&[], &[], false);
        assert!(!rules.allow(&set("q")));
        assert!(!rules.allow(&get("q")));
        assert!(rules.allow(&Request::Stats));
        assert!(rules.allow(&Request::Status { new_status: None }));
    }

    #[test]
    fn admin_commands_need_admin() {
        let admin = [
            Request::Delete { queue: "q".into() },
            Request::Flush { queue: "q".into() },
            Request::FlushAll,
            Request::FlushExpired { queue: "q".into() },
            Request::FlushAllExpired,
            Request::DumpConfig,
            Request::Reload,
            Request::Shutdown,
            Request::Status {
                new_status: Some("readonly".into()),
            },
        ];
        let user = permissions(&["*"], &["*"], false);
        let root = permissions(&[], &[], true);
        for request in &admin {
            assert!(!user.allow(request), "{request:?}");
            assert!(root.allow(request), "{request:?}");
        }
        assert!(!root.allow(&get("q")), "admin does not imply consume");
    }

    #[test]
    fn produce_and_consume_are_separate_rights() {
        let producer = permissions(&["jobs"], &[], false);
        assert!(producer.allow(&set("jobs")));
        assert!(!producer.allow(&get("jobs")));
        let consume_requests = [
            get("jobs"),
            Request::Monitor {
                queue: "jobs".into(),
                seconds: 1,
                max_items: None,
            },
            Request::Confirm {
                queue: "jobs".into(),
                count: 1,
            },
        ];
        let consumer = permissions(&[], &["jobs"], false);
        for request in &consume_requests {
            assert!(consumer.allow(request), "{request:?}");
            assert!(!producer.allow(request), "{request:?}");
        }
        assert!(!consumer.allow(&set("jobs")));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["a*b*", "a.b", "a/b", "*x", "", "with space"] {
            assert!(QueuePattern::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            QueuePattern::parse("a*").unwrap(),
            QueuePattern::Prefix("a".into())
        );
    }

    #[test]
    fn a_password_verifies_only_against_its_own_hash() {
        let users = Users::from_config(
            &BTreeMap::from([("alice".to_owned(), user(&[], &[], false))]),
            &LoginConfig::default(),
        )
        .unwrap();
        assert!(users.verify("alice", b"secret").is_some());
        assert!(users.verify("alice", b"Secret").is_none());
        assert!(users.verify("bob", b"secret").is_none());
    }

    #[test]
    fn the_dummy_hash_is_a_valid_argon2_hash() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify_password(DUMMY_HASH, b"secret"));
    }

    #[test]
    fn users_need_a_valid_name_and_hash() {
        let good = user(&["q"], &[], false);
        assert!(check_user("alice", &good).is_ok());
        assert!(
            check_user("al ice", &good)
                .unwrap_err()
                .contains("user name")
        );
        let plain = UserConfig {
            password_hash: "secret".into(),
            ..good.clone()
        };
        assert!(check_user("alice", &plain).unwrap_err().contains("PHC"));
        let bad_rule = UserConfig {
            consume: vec!["a.b".into()],
            ..good
        };
        assert!(check_user("alice", &bad_rule).unwrap_err().contains("a.b"));
    }

    #[test]
    fn credentials_are_the_first_two_words() {
        assert_eq!(
            parse_credentials(b"alice secret"),
            Some(("alice".to_owned(), b"secret".to_vec()))
        );
        assert_eq!(
            parse_credentials(b"alice  secret extra"),
            Some(("alice".to_owned(), b"secret".to_vec()))
        );
        assert_eq!(parse_credentials(b"alice"), None);
        assert_eq!(parse_credentials(b""), None);
    }
}
