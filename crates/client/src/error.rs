//! The one error type of the crate.

use std::io;
use std::time::Duration;

/// What can go wrong talking to a queue server.
///
/// The variants fall into three groups that callers usually treat differently:
///
/// * **The server answered with an error line**: [`Error::ClientError`], [`Error::ServerError`],
///   [`Error::Refused`], [`Error::NotStored`], and for servers with users
///   [`Error::AuthenticationFailed`] and [`Error::Unauthenticated`]. The server is healthy; retrying the same
///   request elsewhere rarely helps (except `SERVER_ERROR`, which Kestrel uses for "not
///   available right now").
/// * **Transport failures**: [`Error::Connect`], [`Error::ConnectionLost`], [`Error::Timeout`]
///   and [`Error::Protocol`]. The server is marked down and retried later with exponential
///   back-off. For `ConnectionLost` and `Timeout` the request may or may not have taken effect
///   (see [`Error::outcome_unknown`]): a `put` may have been stored, and a reliable read that
///   was open on that connection is re-queued by the server.
/// * **Local problems**: [`Error::NoServerAvailable`], [`Error::InvalidQueueName`],
///   [`Error::InvalidConfig`]. Nothing was sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered `CLIENT_ERROR <message>`: the request was malformed or named an
    /// invalid queue. The server closes the connection after most of these.
    #[error("{server}: CLIENT_ERROR {message}")]
    ClientError {
        /// The server's address, as configured.
        server: String,
        /// The text after the keyword (may be empty).
        message: String,
    },
    /// The server answered `SERVER_ERROR <message>`: it cannot serve the request now (for
    /// example reads or writes are blocked, or the command is not supported).
    #[error("{server}: SERVER_ERROR {message}")]
    ServerError {
        /// The server's address, as configured.
        server: String,
        /// The text after the keyword (may be empty).
        message: String,
    },
    /// The server answered a bare `ERROR`: for example `confirm` with more items than are
    /// open, or too many open reads on one connection.
    #[error("{server}: ERROR")]
    Refused {
        /// The server's address, as configured.
        server: String,
    },
    /// The server answered `NOT_STORED` to one or more `set`s (queue full, item too large, or
    /// the server shutting down).
    #[error("{server}: NOT_STORED for {} of the items", rejected.len())]
    NotStored {
        /// The server's address, as configured.
        server: String,
        /// Positions of the rejected items in the batch (`[0]` for a single `put`).
        rejected: Vec<usize>,
    },
    /// The server refused the client's credentials (`CLIENT_ERROR authentication failure`, or
    /// another `CLIENT_ERROR` in answer to the authentication `set`). Nothing else was sent on
    /// that connection, and the client does not retry by itself: each later operation that
    /// needs a new connection tries once more (one password check on the server each time).
    #[error("{server}: login as {user:?} refused: {message}")]
    AuthenticationFailed {
        /// The server's address, as configured.
        server: String,
        /// The user name the client logged in as.
        user: String,
        /// The server's reason (the text after `CLIENT_ERROR`).
        message: String,
    },
    /// The server requires authentication and the client has no credentials: it answered
    /// `CLIENT_ERROR unauthenticated`, or, to a `put` (which such a server takes for a login
    /// attempt), `CLIENT_ERROR bad authentication token format` or `authentication failure`.
    /// Set credentials with [`ClientBuilder::credentials`](crate::ClientBuilder::credentials).
    /// Nothing was stored or removed.
    #[error("{server}: the server requires authentication (no credentials configured)")]
    Unauthenticated {
        /// The server's address, as configured.
        server: String,
    },
    /// No connection could be made (refused, unreachable, or the connect timeout passed).
    /// Nothing was sent.
    #[error("{server}: cannot connect: {source}")]
    Connect {
        /// The server's address, as configured.
        server: String,
        /// The underlying error (`TimedOut` when the connect timeout passed).
        #[source]
        source: io::Error,
    },
    /// The connection broke while a request was in flight, or before a reliable read was
    /// confirmed. Whether the request took effect is unknown; the server aborts the
    /// connection's open reads, so their items are delivered again.
    #[error("{server}: connection lost: {source}")]
    ConnectionLost {
        /// The server's address, as configured.
        server: String,
        /// The underlying error (`UnexpectedEof` when the server closed the connection).
        #[source]
        source: io::Error,
    },
    /// The server did not answer within the response timeout (plus the requested blocking
    /// wait). The connection is closed; whether the request took effect is unknown.
    #[error("{server}: no reply within {after:?}")]
    Timeout {
        /// The server's address, as configured.
        server: String,
        /// How long the client waited for the reply.
        after: Duration,
    },
    /// The server sent bytes that are not a valid reply to the request.
    #[error("{server}: protocol error: {message}")]
    Protocol {
        /// The server's address, as configured.
        server: String,
        /// What was wrong.
        message: String,
    },
    /// Every server is marked down and none is due for a retry yet.
    #[error("no server available: all are marked down")]
    NoServerAvailable,
    /// The queue name cannot be sent: it is empty or contains a space, a control character
    /// or `/` (the server applies its own, stricter rules and answers `CLIENT_ERROR`).
    #[error("invalid queue name {0:?}")]
    InvalidQueueName(String),
    /// The client configuration is unusable (no servers, or an address without a port).
    #[error("invalid client configuration: {0}")]
    InvalidConfig(String),
}

impl Error {
    /// True when the request may or may not have taken effect on the server
    /// ([`Error::ConnectionLost`], [`Error::Timeout`]). Retrying a `put` after such an error
    /// gives at-least-once delivery: the item may then be stored twice.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, Error::ConnectionLost { .. } | Error::Timeout { .. })
    }

    /// True for failures of the server or the network rather than of the request: these mark
    /// the server down.
    pub(crate) fn is_transport(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::ConnectionLost { .. }
                | Error::Timeout { .. }
                | Error::Protocol { .. }
        )
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_unknown_only_for_lost_connections_and_timeouts() {
        let server = || "s:1".to_owned();
        let lost = Error::ConnectionLost {
            server: server(),
            source: io::ErrorKind::UnexpectedEof.into(),
        };
        let timeout = Error::Timeout {
            server: server(),
            after: Duration::from_secs(1),
        };
        let connect = Error::Connect {
            server: server(),
            source: io::ErrorKind::ConnectionRefused.into(),
        };
        let refused = Error::Refused { server: server() };
        assert!(lost.outcome_unknown() && timeout.outcome_unknown());
        assert!(!connect.outcome_unknown() && !refused.outcome_unknown());
        assert!(lost.is_transport() && timeout.is_transport() && connect.is_transport());
        assert!(!refused.is_transport());
        let refused_login = Error::AuthenticationFailed {
            server: server(),
            user: "app".to_owned(),
            message: "authentication failure".to_owned(),
        };
        let no_login = Error::Unauthenticated { server: server() };
        assert!(!refused_login.is_transport() && !no_login.is_transport());
        assert!(!refused_login.outcome_unknown() && !no_login.outcome_unknown());
    }

    #[test]
    fn messages_name_the_server_and_the_reply() {
        let error = Error::ClientError {
            server: "127.0.0.1:22133".to_owned(),
            message: "bad queue name".to_owned(),
        };
        assert_eq!(
            error.to_string(),
            "127.0.0.1:22133: CLIENT_ERROR bad queue name"
        );
        let error = Error::NotStored {
            server: "s:1".to_owned(),
            rejected: vec![2, 5],
        };
        assert_eq!(error.to_string(), "s:1: NOT_STORED for 2 of the items");
    }
}
