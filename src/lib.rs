//! knockd: a port-knocking daemon that opens doors with nftables set elements over netlink.
//!
//! The pipeline, one folder per stage:
//!
//! [`capture`] (AF_PACKET socket, BPF filter in the kernel) -> [`packet`] (checked views of
//! the headers) -> [`doors`] (the proofs: knock sequences, single-packet authorization) ->
//! [`grant`] (nftables over netlink, classic commands).
//!
//! [`engine`] routes packets to door kinds and commits their grants; [`config`] turns YAML or a
//! classic knockd.conf into one validated model before anything runs; [`daemon`] is the event
//! loop and everything a long-running process needs (signals, pid file, privileges, logging);
//! [`cli`] and [`client`] are the command lines of `knockd` and `knock`.
//!
//! Only the modules that talk to the kernel may use `unsafe`, each block with a `SAFETY:`
//! comment saying why it holds.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod capture;
pub mod cli;
pub mod client;
pub mod config;
pub mod control;
pub mod daemon;
pub mod doors;
pub mod engine;
pub mod grant;
pub mod log_lines;
pub mod packet;
pub mod rate_limit;
pub mod store;
#[cfg(test)]
mod test_dir;
