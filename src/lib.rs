//! knockd: a port-knocking daemon that opens doors with nftables set elements over netlink.
//!
//! The pipeline, one module per stage: [`capture`] (AF_PACKET + [`bpf`] filter) -> [`wire`]
//! (parse) -> [`matcher`] (pure state machine) -> [`engine`] -> [`firewall`] ([`nft`] over
//! netlink). [`config`] turns a file into one validated model before anything else runs.

pub mod bpf;
pub mod capture;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod firewall;
pub mod matcher;
pub mod nft;
pub mod wire;
