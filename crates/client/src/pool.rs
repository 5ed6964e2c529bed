//! One server as the client sees it: its address, its health, and a pool of idle connections.
//!
//! A connection is checked out for one operation, or for the whole life of a reliable read
//! (see [`crate::ReliableItem`]), and comes back to the pool only if it is clean: no request
//! half-done and **no open read**. So a connection that holds someone's open read is never
//! handed to anyone else; if its holder goes away without closing the read, the connection is
//! closed and the server re-queues the item.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use crate::config::Settings;
use crate::connection::Connection;
use crate::error::Result;
use crate::health::Health;

/// One configured server.
#[derive(Debug)]
pub(crate) struct Server {
    address: Arc<str>,
    health: Arc<Health>,
    settings: Arc<Settings>,
    idle: Mutex<Vec<Connection>>,
}

impl Server {
    pub(crate) fn new(address: String, settings: Arc<Settings>) -> Arc<Server> {
        Arc::new(Server {
            address: address.into(),
            health: Arc::new(Health::new(settings.backoff)),
            settings,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The address as configured (`host:port`).
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// False while the server is marked down and not yet due for a retry.
    pub(crate) fn is_available(&self) -> bool {
        self.health.available()
    }

    /// An idle connection that still works, or a new one.
    pub(crate) async fn checkout(self: &Arc<Self>) -> Result<Pooled> {
        while let Some(connection) = self.lock_idle().pop() {
            if connection.is_reusable() {
                return Ok(self.pooled(connection));
            }
        }
        let connection = Connection::connect(
            Arc::clone(&self.address),
            Arc::clone(&self.health),
            &self.settings,
        )
        .await?;
        Ok(self.pooled(connection))
    }

    fn pooled(self: &Arc<Self>, connection: Connection) -> Pooled {
        Pooled {
            server: Arc::clone(self),
            connection: Some(connection),
        }
    }

    fn checkin(&self, connection: Connection) {
        if !connection.is_reusable() {
            return;
        }
        let mut idle = self.lock_idle();
        if idle.len() < self.settings.max_idle_per_server {
            idle.push(connection);
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // A Vec stays valid whatever a panicking holder did.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A checked-out connection; it goes back to its server's pool when dropped, if reusable.
#[derive(Debug)]
pub(crate) struct Pooled {
    server: Arc<Server>,
    /// Always `Some` until dropped.
    connection: Option<Connection>,
}

impl Pooled {
    /// The server this connection belongs to.
    pub(crate) fn server(&self) -> &Arc<Server> {
        &self.server
    }
}

impl Deref for Pooled {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.connection.as_ref().expect("present until dropped")
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Connection {
        self.connection.as_mut().expect("present until dropped")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            self.server.checkin(connection);
        }
    }
}
