//! The harness the end-to-end tests share, apart from the spec files that use it: test hosts in
//! network namespaces (`lab`), the real daemon run in them with its config files (`process`),
//! what a user does and sees from the client side (`user`: knocks, connections, bounded
//! waits), the log lines it waits for (`lines`), raw frames (`frames`) and SPA packets
//! (`spa_packets`). A spec file takes all of it with `use crate::support::*;` (the benchmark
//! with `use support::*;`).

pub mod frames;
pub mod lab;
pub mod lines;
pub mod process;
pub mod spa_packets;
#[path = "../../tests/util/temp_dir.rs"]
#[allow(dead_code, reason = "the unit tests use more of it")]
pub mod temp_dir;
pub mod user;

// What a spec file names without a path; the benchmark takes less of it.
#[allow(unused_imports)]
pub use {
    knockd::config::{PortProto, Proto},
    knockd::log_lines,
    knockd::packet::Knock,
    lab::*,
    lines::*,
    process::*,
    user::*,
};
