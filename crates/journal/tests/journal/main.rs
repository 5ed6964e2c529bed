//! Integration tests of lanner-journal through its public API and the files it leaves.

mod common;
mod concurrency;
mod damage;
mod dir;
mod fixture;
mod lifecycle;
mod model;
