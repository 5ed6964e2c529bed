//! Client configuration: the servers, how operations are spread over them, timeouts, and the
//! credentials to log in with.

use std::fmt;
use std::time::Duration;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::health::Backoff;

/// How operations are spread over several servers. With one server both behave the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Distribution {
    /// Kestrel's model. Each write goes to the next available server in turn; reads rotate
    /// over the servers, and a blocking read that finds nothing anywhere waits on all of them
    /// at once and returns the first item. Every queue is spread over every server, so
    /// ordering is per server only ("loosely ordered").
    #[default]
    RoundRobin,
    /// Consistent hashing of the queue name (ketama, with libmemcached's continuum layout):
    /// all operations on a queue go to one server, which keeps the queue FIFO, and a queue
    /// lives on the server an existing ketama memcache client would pick for that key. If the
    /// server is down, the queue moves to the next server on the continuum until it is back.
    Ketama,
}

/// Settings shared by every server of one client.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) max_idle_per_server: usize,
    pub(crate) credentials: Option<Credentials>,
}

/// A user name and password for servers that require authentication (memcached's `-Y`
/// convention). `Debug` shows the user, never the password.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl Credentials {
    /// The data of the authentication `set`: `<user> <password>`.
    pub(crate) fn token(&self) -> Vec<u8> {
        format!("{} {}", self.user, self.password).into_bytes()
    }

    /// The server splits the token at spaces, so neither part may be empty or hold one.
    fn check(&self) -> Result<()> {
        let unsendable =
            |text: &str| text.is_empty() || text.contains(|c: char| c == ' ' || c.is_control());
        if unsendable(&self.user) {
            return Err(Error::InvalidConfig(format!(
                "user name {:?} is empty or contains a space or control character",
                self.user
            )));
        }
        if unsendable(&self.password) {
            return Err(Error::InvalidConfig(
                "the password is empty or contains a space or control character".into(),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Builds a [`Client`]; every setting has a default.
///
/// ```
/// use std::time::Duration;
/// use lanner_client::{ClientBuilder, Distribution};
///
/// let client = ClientBuilder::new(["127.0.0.1:22133", "127.0.0.1:22134"])
///     .distribution(Distribution::Ketama)
///     .connect_timeout(Duration::from_millis(500))
///     .retry_backoff(Duration::from_millis(50), Duration::from_secs(5))
///     .build()?;
/// # Ok::<(), lanner_client::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    servers: Vec<String>,
    distribution: Distribution,
    settings: Settings,
}

impl ClientBuilder {
    /// Starts from a list of `host:port` addresses (for example `127.0.0.1:22133` or
    /// `[::1]:22133`). Connections are made lazily, on first use.
    pub fn new<I, S>(servers: I) -> ClientBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ClientBuilder {
            servers: servers.into_iter().map(Into::into).collect(),
            distribution: Distribution::default(),
            settings: Settings {
                connect_timeout: Duration::from_secs(1),
                response_timeout: Duration::from_secs(5),
                backoff: Backoff {
                    initial: Duration::from_millis(100),
                    max: Duration::from_secs(10),
                },
                max_idle_per_server: 16,
                credentials: None,
            },
        }
    }

    /// How operations are spread over the servers (default: [`Distribution::RoundRobin`]).
    pub fn distribution(mut self, distribution: Distribution) -> ClientBuilder {
        self.distribution = distribution;
        self
    }

    /// How long to wait for a TCP connection (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.settings.connect_timeout = timeout;
        self
    }

    /// How long to wait for a reply, on top of any blocking wait the request asks for
    /// (default 5 s). When it passes the connection is closed and the server marked down.
    pub fn response_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.settings.response_timeout = timeout;
        self
    }

    /// After a failure a server is left alone for `initial`, then twice as long after each
    /// failed retry, up to `max` (defaults 100 ms and 10 s).
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> ClientBuilder {
        self.settings.backoff = Backoff { initial, max };
        self
    }

    /// How many idle connections to keep per server (default 16). Busy connections are not
    /// limited: every concurrent operation and every open reliable read has its own.
    pub fn max_idle_connections(mut self, count: usize) -> ClientBuilder {
        self.settings.max_idle_per_server = count;
        self
    }

    /// Logs every connection in as `user` (memcached's `-Y` text-protocol convention, which
    /// lanner follows when `[users.*]` are configured): each new connection, reconnects
    /// included, authenticates before its first request. A refused login is
    /// [`Error::AuthenticationFailed`].
    ///
    /// The credentials are only sent to a server that asks for them: a new connection first
    /// sends `version`, and only an answer of `CLIENT_ERROR unauthenticated` is followed by
    /// the authentication `set` (a server without users would store that `set` as an item,
    /// password included). A server that answers `version` needs no login; the connection is
    /// used as it is. Neither the user name nor the password may be empty or contain a space.
    pub fn credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> ClientBuilder {
        self.settings.credentials = Some(Credentials {
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// Checks the addresses and builds the client. No connection is made yet.
    pub fn build(self) -> Result<Client> {
        if self.servers.is_empty() {
            return Err(Error::InvalidConfig("no servers given".into()));
        }
        for server in &self.servers {
            check_address(server)?;
        }
        if self.settings.backoff.initial.is_zero()
            || self.settings.backoff.max < self.settings.backoff.initial
        {
            return Err(Error::InvalidConfig(
                "retry back-off needs 0 < initial <= max".into(),
            ));
        }
        if let Some(credentials) = &self.settings.credentials {
            credentials.check()?;
        }
        Ok(Client::from_parts(
            self.servers,
            self.distribution,
            self.settings,
        ))
    }
}

/// `host:port` with a non-empty host and a numeric port.
fn check_address(address: &str) -> Result<()> {
    let valid = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "server address {address:?} is not host:port"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_need_a_host_and_a_port() {
        for good in ["127.0.0.1:22133", "localhost:1", "[::1]:22133"] {
            assert!(check_address(good).is_ok(), "{good}");
        }
        for bad in ["127.0.0.1", ":22133", "host:", "host:port", "host:70000"] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn build_rejects_an_empty_list_and_a_bad_backoff() {
        let none: [&str; 0] = [];
        assert!(matches!(
            ClientBuilder::new(none).build(),
            Err(Error::InvalidConfig(_))
        ));
        let backwards = ClientBuilder::new(["a:1"])
            .retry_backoff(Duration::from_secs(2), Duration::from_secs(1))
            .build();
        assert!(matches!(backwards, Err(Error::InvalidConfig(_))));
        assert!(ClientBuilder::new(["a:1"]).build().is_ok());
    }

    #[test]
    fn credentials_need_a_user_and_a_password_without_spaces() {
        let build = |user: &str, password: &str| {
            ClientBuilder::new(["a:1"])
                .credentials(user, password)
                .build()
        };
        assert!(build("app", "s3cret").is_ok());
        for (user, password) in [
            ("", "s3cret"),
            ("a pp", "s3cret"),
            ("app", ""),
            ("app", "s3 cret"),
            ("app", "s3\ncret"),
        ] {
            assert!(
                matches!(build(user, password), Err(Error::InvalidConfig(_))),
                "{user:?}"
            );
        }
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let builder = ClientBuilder::new(["a:1"]).credentials("app", "hunter2secret");
        let shown = format!("{builder:?} {:?}", builder.clone().build().unwrap());
        assert!(shown.contains("app"), "{shown}");
        assert!(!shown.contains("hunter2secret"), "{shown}");
    }

    #[test]
    fn the_token_is_user_space_password() {
        let credentials = Credentials {
            user: "app".into(),
            password: "s3cret".into(),
        };
        assert_eq!(credentials.token(), b"app s3cret");
    }
}
