//! Client configuration: the servers, how operations are spread over them, and timeouts.

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
}
