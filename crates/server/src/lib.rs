//! The lanner server: the network side (listener, connections, signals), configuration and
//! stats, around the queue store. Data flows socket -> codec (lanner-proto) -> session
//! (command semantics) -> queue (lanner-queue) -> journal (lanner-journal), and back.

mod access;
mod admin;
mod alias;
mod background;
pub mod cli;
pub mod config;
mod connection;
mod login_limit;
mod open_reads;
mod output;
mod recovery;
mod reload;
mod request_memory;
mod request_metrics;
pub mod server;
mod session;
mod shared;
mod socket;
mod stats;
mod status;
mod text;
mod tls;
