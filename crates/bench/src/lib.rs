//! The library behind `lanner-bench`: the scenarios, the smoke run and the crash torture, so
//! the server's integration tests can drive the torture against their own `lanner` binary.

pub mod cli;
pub mod conn;
pub mod payload;
pub mod process;
pub mod proto;
pub mod report;
pub mod scenarios;
pub mod smoke;
pub mod torture;
pub mod tracker;
pub mod workers;
