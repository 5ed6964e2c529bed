//! The async client: picks servers for each operation and runs it there.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinSet;

use crate::command::{GetOptions, validate_admin, validate_queue};
use crate::config::{ClientBuilder, Distribution, Settings};
use crate::error::{Error, Result};
use crate::ketama::Continuum;
use crate::pool::{Pooled, Server};
use crate::reliable::{MonitorBatch, ReliableItem};
use crate::response::AdminReply;
use crate::stats::{ServerReply, ServerStats, Stats};

/// A client for one or more Kestrel-compatible servers.
///
/// Cheap to clone (clones share connections and server health) and safe to use from many
/// tasks at once. Each operation checks a connection out of the chosen server's pool, so
/// concurrent operations never share one. How servers are chosen is set by
/// [`Distribution`].
///
/// ```no_run
/// use std::time::Duration;
/// use lanner_client::Client;
///
/// # async fn example() -> lanner_client::Result<()> {
/// let client = Client::new(["127.0.0.1:22133"])?;
/// client.put("jobs", "resize photo 17").await?;
/// if let Some(job) = client.get("jobs", Duration::from_secs(1)).await? {
///     println!("{}", String::from_utf8_lossy(&job));
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    servers: Vec<Arc<Server>>,
    /// `Some` with [`Distribution::Ketama`].
    continuum: Option<Continuum>,
    /// Round-robin positions for writes and for reads.
    next_write: AtomicUsize,
    next_read: AtomicUsize,
}

/// A server and whether the client currently uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerStatus {
    /// The address, as configured.
    pub address: String,
    /// False while the server is marked down after a failure and not yet due for a retry.
    pub available: bool,
}

/// What a read does with the item it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadKind {
    Remove,
    Open,
    Peek,
}

impl Client {
    /// A client for these `host:port` servers with default settings
    /// ([`Distribution::RoundRobin`]); see [`ClientBuilder`] for the others.
    pub fn new<I, S>(servers: I) -> Result<Client>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ClientBuilder::new(servers).build()
    }

    pub(crate) fn from_parts(
        addresses: Vec<String>,
        distribution: Distribution,
        settings: Settings,
    ) -> Client {
        let continuum = match distribution {
            Distribution::Ketama => Some(Continuum::new(&addresses)),
            Distribution::RoundRobin => None,
        };
        let settings = Arc::new(settings);
        let servers: Vec<_> = addresses
            .into_iter()
            .map(|address| Server::new(address, Arc::clone(&settings)))
            .collect();
        // Start the rotations at a random server, so that many clients do not all begin with
        // the first one.
        let start = std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), 0u8) as usize;
        Client {
            inner: Arc::new(Inner {
                servers,
                continuum,
                next_write: AtomicUsize::new(start),
                next_read: AtomicUsize::new(start),
            }),
        }
    }

    /// Adds an item to the end of `queue` (`set`). Goes to the next available server in turn,
    /// or to the queue's server with [`Distribution::Ketama`]; a server that refuses the
    /// connection is skipped. After [`Error::ConnectionLost`] or [`Error::Timeout`] the item
    /// may or may not have been stored.
    pub async fn put(&self, queue: &str, item: impl Into<Bytes>) -> Result<()> {
        validate_queue(queue)?;
        let item = item.into();
        let mut connection = self.connect_for_write(queue).await?;
        connection.set(queue, &item).await
    }

    /// Adds several items to the end of `queue`, in order, on one server, pipelined: all the
    /// `set`s are written without waiting for replies, so the batch costs about one round
    /// trip. If some items are refused the error is [`Error::NotStored`] with their positions;
    /// the others are stored.
    pub async fn put_many<I>(&self, queue: &str, items: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Into<Bytes>,
    {
        validate_queue(queue)?;
        let items: Vec<Bytes> = items.into_iter().map(Into::into).collect();
        if items.is_empty() {
            return Ok(());
        }
        let mut connection = self.connect_for_write(queue).await?;
        connection.set_many(queue, &items).await
    }

    /// Removes and returns the head item of `queue`, waiting up to `wait` for one
    /// (`Duration::ZERO`: answer at once). `None` if none came.
    ///
    /// With [`Distribution::RoundRobin`] and several servers, the servers are asked in turn
    /// (each read starts at the next one); if all are empty and `wait` is not zero, the client
    /// waits on every server at once and takes the first item that arrives. That wait uses
    /// reliable reads, so an item that reaches a second server in the same instant is not
    /// lost but put back. A plain `get` is at-most-once: if the connection breaks while the
    /// item is on its way, the item is gone. Use [`Client::open`] when every item matters.
    pub async fn get(&self, queue: &str, wait: Duration) -> Result<Option<Bytes>> {
        validate_queue(queue)?;
        let found = self.read(queue, wait, ReadKind::Remove).await?;
        Ok(found.map(|(item, _)| item))
    }

    /// Opens a reliable read (`get <queue>/open`): the head item leaves the queue but comes
    /// back if it is not confirmed — when the [`ReliableItem`] is aborted or dropped, or its
    /// connection dies. Waits like [`Client::get`].
    pub async fn open(&self, queue: &str, wait: Duration) -> Result<Option<ReliableItem>> {
        validate_queue(queue)?;
        let found = self.read(queue, wait, ReadKind::Open).await?;
        Ok(found.map(|(item, connection)| ReliableItem::new(queue.to_owned(), item, connection)))
    }

    /// Returns the head item of `queue` without removing it (`get <queue>/peek`), waiting up
    /// to `wait` for one. With round-robin and several servers this is the head item of one
    /// of them.
    pub async fn peek(&self, queue: &str, wait: Duration) -> Result<Option<Bytes>> {
        validate_queue(queue)?;
        let found = self.read(queue, wait, ReadKind::Peek).await?;
        Ok(found.map(|(item, _)| item))
    }

    /// Collects up to `max_items` items of `queue` from one server (`monitor`), for up to
    /// `wait` (rounded up to whole seconds): the server answers when it has sent `max_items`
    /// or when the time is over. Each item is a reliable read; confirm the batch when done.
    /// With round-robin, successive calls rotate over the servers.
    pub async fn monitor(
        &self,
        queue: &str,
        wait: Duration,
        max_items: u32,
    ) -> Result<MonitorBatch> {
        validate_queue(queue)?;
        let order = self.route(queue, &self.inner.next_read)?;
        let mut connection = connect_first(order).await?;
        let items = connection.monitor(queue, wait, max_items).await?;
        Ok(MonitorBatch::new(queue.to_owned(), items, connection))
    }

    /// Removes every item of `queue` on every server (`flush`). All servers are tried, also
    /// those marked down; the first error is returned.
    pub async fn flush(&self, queue: &str) -> Result<()> {
        validate_queue(queue)?;
        self.on_every_server(async |connection: &mut Pooled| connection.flush(queue).await)
            .await
    }

    /// Deletes `queue` and its journal on every server (`delete`). All servers are tried,
    /// also those marked down; the first error is returned.
    pub async fn delete(&self, queue: &str) -> Result<()> {
        validate_queue(queue)?;
        self.on_every_server(async |connection: &mut Pooled| connection.delete(queue).await)
            .await
    }

    /// The `stats` of every server, in configuration order (also of those marked down, which
    /// are asked anyway).
    pub async fn stats(&self) -> Vec<ServerStats> {
        let mut all = Vec::with_capacity(self.inner.servers.len());
        for server in &self.inner.servers {
            let stats = match server.checkout().await {
                Ok(mut connection) => connection.stats().await.map(Stats::new),
                Err(error) => Err(error),
            };
            all.push(ServerStats {
                server: server.address().to_owned(),
                stats,
            });
        }
        all
    }

    /// Sends an admin command line (such as `dump_stats q`, `status readonly`, `reload`) to
    /// every server, in configuration order, and returns each one's reply lines; `reply` says
    /// how the reply ends. An error line from the server is an error of that server.
    pub async fn admin(&self, command: &str, reply: AdminReply) -> Vec<ServerReply> {
        let mut all = Vec::with_capacity(self.inner.servers.len());
        for server in &self.inner.servers {
            let lines = match validate_admin(command) {
                Ok(()) => match server.checkout().await {
                    Ok(mut connection) => connection.admin(command, reply).await,
                    Err(error) => Err(error),
                },
                Err(error) => Err(error),
            };
            all.push(ServerReply {
                server: server.address().to_owned(),
                lines,
            });
        }
        all
    }

    /// Every configured server and whether it is currently in use.
    pub fn servers(&self) -> Vec<ServerStatus> {
        self.inner
            .servers
            .iter()
            .map(|server| ServerStatus {
                address: server.address().to_owned(),
                available: server.is_available(),
            })
            .collect()
    }

    /// With [`Distribution::Ketama`], the server that consistent hashing assigns `queue` to
    /// (whatever its health); `None` with round-robin.
    pub fn server_for(&self, queue: &str) -> Option<&str> {
        let continuum = self.inner.continuum.as_ref()?;
        let first = *continuum.servers_for(queue).first()?;
        Some(self.inner.servers[first].address())
    }

    /// The available servers for an operation on `queue`, in the order to try them.
    fn route(&self, queue: &str, rotation: &AtomicUsize) -> Result<Vec<Arc<Server>>> {
        let servers = &self.inner.servers;
        let order: Vec<usize> = match &self.inner.continuum {
            Some(continuum) => continuum.servers_for(queue),
            None => {
                let start = rotation.fetch_add(1, Ordering::Relaxed);
                (0..servers.len())
                    .map(|offset| start.wrapping_add(offset) % servers.len())
                    .collect()
            }
        };
        let available: Vec<_> = order
            .into_iter()
            .map(|index| Arc::clone(&servers[index]))
            .filter(|server| server.is_available())
            .collect();
        if available.is_empty() {
            return Err(Error::NoServerAvailable);
        }
        Ok(available)
    }

    async fn connect_for_write(&self, queue: &str) -> Result<Pooled> {
        connect_first(self.route(queue, &self.inner.next_write)?).await
    }

    /// A read of one item; returns it with the connection it came on (which holds it open
    /// for [`ReadKind::Open`]).
    async fn read(
        &self,
        queue: &str,
        wait: Duration,
        kind: ReadKind,
    ) -> Result<Option<(Bytes, Pooled)>> {
        let order = self.route(queue, &self.inner.next_read)?;
        let options = GetOptions {
            open: kind == ReadKind::Open,
            peek: kind == ReadKind::Peek,
            ..GetOptions::default()
        };
        if self.inner.continuum.is_some() || order.len() == 1 {
            // One server holds the queue: a plain blocking read there.
            let mut connection = connect_first(order).await?;
            let item = connection
                .get(queue, GetOptions { wait, ..options })
                .await?;
            return Ok(item.map(|item| (item, connection)));
        }
        // Round-robin: first ask each server in turn without waiting.
        let mut answered = Vec::new();
        let mut failure = None;
        for server in order {
            let mut connection = match server.checkout().await {
                Ok(connection) => connection,
                Err(error) if error.is_transport() => {
                    failure = Some(error);
                    continue;
                }
                Err(error) => return Err(error),
            };
            match connection.get(queue, options).await {
                Ok(Some(item)) => return Ok(Some((item, connection))),
                Ok(None) => answered.push(server),
                Err(error) if error.is_transport() => failure = Some(error),
                Err(error) => return Err(error),
            }
        }
        if answered.is_empty() {
            return Err(failure.unwrap_or(Error::NoServerAvailable));
        }
        if wait.is_zero() {
            return Ok(None);
        }
        // Every server was empty: wait on all of them at once.
        let found = wait_on_all(answered, queue, wait, kind).await?;
        let Some((item, mut connection)) = found else {
            return Ok(None);
        };
        if kind == ReadKind::Remove {
            // The wait opened the item; take it for good. If the confirm is lost the server
            // puts the item back, and it may be delivered again (at least once).
            let close = GetOptions {
                close: true,
                ..GetOptions::default()
            };
            let _ = connection.get(queue, close).await;
        }
        Ok(Some((item, connection)))
    }

    /// Runs `operation` on every server (available or not) and returns the first error.
    async fn on_every_server(
        &self,
        mut operation: impl AsyncFnMut(&mut Pooled) -> Result<()>,
    ) -> Result<()> {
        let mut first_error = None;
        for server in &self.inner.servers {
            let outcome = match server.checkout().await {
                Ok(mut connection) => operation(&mut connection).await,
                Err(error) => Err(error),
            };
            if let Err(error) = outcome {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// A connection to the first of `servers` that accepts one; skipping a server that fails is
/// safe because no request was sent to it. A refused login ends the search: the credentials
/// are the client's, so the error is the caller's to see, not hidden behind another server's.
async fn connect_first(servers: Vec<Arc<Server>>) -> Result<Pooled> {
    let mut failure = Error::NoServerAvailable;
    for server in servers {
        match server.checkout().await {
            Ok(connection) => return Ok(connection),
            Err(error) if error.is_transport() => failure = error,
            Err(error) => return Err(error),
        }
    }
    Err(failure)
}

/// Blocks on every server at once (`get <queue>/t=<wait>/open`, or `/peek`) and returns the
/// first item. The other waits are cancelled by closing their connections; an item that one
/// of them opened in the meantime is re-queued by its server when the connection closes.
async fn wait_on_all(
    servers: Vec<Arc<Server>>,
    queue: &str,
    wait: Duration,
    kind: ReadKind,
) -> Result<Option<(Bytes, Pooled)>> {
    let options = GetOptions {
        wait,
        open: kind != ReadKind::Peek,
        peek: kind == ReadKind::Peek,
        ..GetOptions::default()
    };
    let mut waits = JoinSet::new();
    for server in servers {
        let queue = queue.to_owned();
        waits.spawn(async move {
            let mut connection = server.checkout().await?;
            let item = connection.get(&queue, options).await?;
            Ok::<_, Error>(item.map(|item| (item, connection)))
        });
    }
    let mut answered = false;
    let mut failure = None;
    while let Some(joined) = waits.join_next().await {
        match joined {
            // Returning drops `waits`, which cancels the others.
            Ok(Ok(Some(found))) => return Ok(Some(found)),
            Ok(Ok(None)) => answered = true,
            Ok(Err(error)) if error.is_transport() => failure = Some(error),
            Ok(Err(error)) => return Err(error),
            Err(join_error) => {
                if join_error.is_panic() {
                    std::panic::resume_unwind(join_error.into_panic());
                }
            }
        }
    }
    match failure {
        Some(error) if !answered => Err(error),
        _ => Ok(None),
    }
}
