//! A blocking client for code without an async runtime: the same operations as
//! [`crate::Client`], run on a small runtime of its own.
//!
//! Do not call these methods from inside an async runtime (they would block one of its
//! threads; tokio panics when asked to); use [`crate::Client`] there.
//!
//! ```no_run
//! use std::time::Duration;
//! use lanner_client::blocking::Client;
//!
//! let client = Client::new(["127.0.0.1:22133"])?;
//! client.put("jobs", "send welcome mail")?;
//! while let Some(job) = client.open("jobs", Duration::from_secs(1))? {
//!     println!("{}", String::from_utf8_lossy(job.data()));
//!     job.confirm()?;
//! }
//! # Ok::<(), lanner_client::Error>(())
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::runtime::Runtime;

use crate::client::ServerStatus;
use crate::config::ClientBuilder;
use crate::error::{Error, Result};
use crate::response::AdminReply;
use crate::stats::{ServerReply, ServerStats};

/// The blocking twin of [`crate::Client`]; cheap to clone and usable from many threads.
#[derive(Clone, Debug)]
pub struct Client {
    inner: crate::Client,
    runtime: Arc<Runtime>,
}

impl Client {
    /// A client for these `host:port` servers with default settings.
    pub fn new<I, S>(servers: I) -> Result<Client>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Client::from_builder(ClientBuilder::new(servers))
    }

    /// A client with the builder's settings.
    pub fn from_builder(builder: ClientBuilder) -> Result<Client> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("lanner-client")
            .enable_all()
            .build()
            .map_err(|error| Error::InvalidConfig(format!("cannot start a runtime: {error}")))?;
        Ok(Client {
            inner: builder.build()?,
            runtime: Arc::new(runtime),
        })
    }

    fn run<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// See [`crate::Client::put`].
    pub fn put(&self, queue: &str, item: impl Into<Bytes>) -> Result<()> {
        self.run(self.inner.put(queue, item))
    }

    /// See [`crate::Client::put_many`].
    pub fn put_many<I>(&self, queue: &str, items: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Into<Bytes>,
    {
        self.run(self.inner.put_many(queue, items))
    }

    /// See [`crate::Client::get`].
    pub fn get(&self, queue: &str, wait: Duration) -> Result<Option<Bytes>> {
        self.run(self.inner.get(queue, wait))
    }

    /// See [`crate::Client::open`].
    pub fn open(&self, queue: &str, wait: Duration) -> Result<Option<ReliableItem>> {
        let item = self.run(self.inner.open(queue, wait))?;
        Ok(item.map(|inner| ReliableItem {
            inner,
            runtime: Arc::clone(&self.runtime),
        }))
    }

    /// See [`crate::Client::peek`].
    pub fn peek(&self, queue: &str, wait: Duration) -> Result<Option<Bytes>> {
        self.run(self.inner.peek(queue, wait))
    }

    /// See [`crate::Client::monitor`].
    pub fn monitor(&self, queue: &str, wait: Duration, max_items: u32) -> Result<MonitorBatch> {
        let inner = self.run(self.inner.monitor(queue, wait, max_items))?;
        Ok(MonitorBatch {
            inner,
            runtime: Arc::clone(&self.runtime),
        })
    }

    /// See [`crate::Client::flush`].
    pub fn flush(&self, queue: &str) -> Result<()> {
        self.run(self.inner.flush(queue))
    }

    /// See [`crate::Client::delete`].
    pub fn delete(&self, queue: &str) -> Result<()> {
        self.run(self.inner.delete(queue))
    }

    /// See [`crate::Client::stats`].
    pub fn stats(&self) -> Vec<ServerStats> {
        self.run(self.inner.stats())
    }

    /// See [`crate::Client::admin`].
    pub fn admin(&self, command: &str, reply: AdminReply) -> Vec<ServerReply> {
        self.run(self.inner.admin(command, reply))
    }

    /// See [`crate::Client::servers`].
    pub fn servers(&self) -> Vec<ServerStatus> {
        self.inner.servers()
    }
}

/// The blocking twin of [`crate::ReliableItem`]; dropping it unconfirmed aborts it.
#[derive(Debug)]
pub struct ReliableItem {
    inner: crate::ReliableItem,
    runtime: Arc<Runtime>,
}

impl ReliableItem {
    /// The item.
    pub fn data(&self) -> &Bytes {
        self.inner.data()
    }

    /// The queue it came from.
    pub fn queue(&self) -> &str {
        self.inner.queue()
    }

    /// The server it came from.
    pub fn server(&self) -> &str {
        self.inner.server()
    }

    /// See [`crate::ReliableItem::confirm`].
    pub fn confirm(self) -> Result<()> {
        self.runtime.block_on(self.inner.confirm())
    }

    /// See [`crate::ReliableItem::abort`].
    pub fn abort(self) -> Result<()> {
        self.runtime.block_on(self.inner.abort())
    }

    /// See [`crate::ReliableItem::confirm_and_open`].
    pub fn confirm_and_open(self, wait: Duration) -> Result<Option<ReliableItem>> {
        let runtime = self.runtime;
        let next = runtime.block_on(self.inner.confirm_and_open(wait))?;
        Ok(next.map(|inner| ReliableItem { inner, runtime }))
    }
}

/// The blocking twin of [`crate::MonitorBatch`]; dropping it unconfirmed aborts its items.
#[derive(Debug)]
pub struct MonitorBatch {
    inner: crate::MonitorBatch,
    runtime: Arc<Runtime>,
}

impl MonitorBatch {
    /// The items, oldest first.
    pub fn items(&self) -> &[Bytes] {
        self.inner.items()
    }

    /// How many items the batch holds.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// True if the monitor delivered nothing.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// See [`crate::MonitorBatch::confirm`].
    pub fn confirm(self) -> Result<()> {
        self.runtime.block_on(self.inner.confirm())
    }

    /// See [`crate::MonitorBatch::abort`].
    pub fn abort(self) {
        self.inner.abort();
    }
}
