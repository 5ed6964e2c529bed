//! Client for lanner and other Kestrel-compatible queue servers (Kestrel 2.4's memcache text
//! protocol: `set` enqueues, `get` dequeues).
//!
//! * [`Client`]: async, on tokio. [`blocking::Client`] wraps it for synchronous code.
//! * Plain operations: [`Client::put`], [`Client::put_many`] (pipelined), [`Client::get`]
//!   (optionally blocking), [`Client::peek`], [`Client::flush`], [`Client::delete`],
//!   [`Client::stats`], and any admin command with [`Client::admin`].
//! * Reliable reads: [`Client::open`] returns a [`ReliableItem`] that must be confirmed or
//!   aborted on the connection that opened it (dropping it aborts it); [`Client::monitor`]
//!   returns a [`MonitorBatch`] of them.
//! * Several servers, spread by [`Distribution::RoundRobin`] (Kestrel's model: any item on any
//!   server) or [`Distribution::Ketama`] (each queue on one server, FIFO). A failing server is
//!   marked down and retried with exponential back-off while the others carry on.
//! * Servers with users (memcached's `-Y` login, which lanner follows):
//!   [`ClientBuilder::credentials`] logs every new connection in; a refused login is
//!   [`Error::AuthenticationFailed`]. The password is only sent to a server that asks for it.
//! * One [`Error`] enum in which server error lines, timeouts and lost connections are
//!   separate variants.
//!
//! Runnable programs are in `crates/client/examples/` (`producer`, `worker`, `worker_pool`);
//! run them with `cargo run -p lanner-client --example worker -- 127.0.0.1:22133 jobs`.
//!
//! # A worker with reliable reads
//!
//! ```no_run
//! use std::time::Duration;
//! use lanner_client::{ClientBuilder, Distribution};
//!
//! # async fn example() -> lanner_client::Result<()> {
//! let client = ClientBuilder::new(["127.0.0.1:22133", "127.0.0.1:22134", "127.0.0.1:22135"])
//!     .distribution(Distribution::RoundRobin)
//!     .build()?;
//! client.put_many("jobs", ["a", "b", "c"]).await?;
//! while let Some(job) = client.open("jobs", Duration::from_secs(2)).await? {
//!     println!("working on {:?} from {}", job.data(), job.server());
//!     job.confirm().await?; // or job.abort(), or drop it: the server re-queues it
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Connections
//!
//! Each server has a pool of idle connections. An operation borrows one and returns it when
//! done; a reliable read keeps its connection until it is confirmed or aborted, and a
//! connection that still holds an open read is never lent to anyone else (if its owner
//! vanishes, the connection is closed and the server re-queues the item). Connections are made
//! on demand; only idle ones are limited ([`ClientBuilder::max_idle_connections`]).

pub mod blocking;
mod client;
mod command;
mod config;
mod connection;
mod error;
mod health;
mod ketama;
mod pool;
mod reliable;
mod response;
mod stats;

pub use client::{Client, ServerStatus};
pub use config::{ClientBuilder, Distribution};
pub use error::{Error, Result};
pub use reliable::{MonitorBatch, ReliableItem};
pub use response::AdminReply;
pub use stats::{ServerReply, ServerStats, Stats};
