//! knockd: a port-knocking daemon that opens doors with nftables set elements over netlink.
//!
//! The pipeline, one module per stage: [`capture`] (AF_PACKET + [`bpf`] filter) -> [`wire`]
//! (parse) -> [`matcher`] (pure state machine) -> [`engine`] -> [`firewall`] ([`nft`] over
//! netlink) and [`legacy_command`] (knockd.conf commands). [`config`] turns a file into one
//! validated model before anything else runs.

pub mod background;
pub mod bpf;
pub mod capture;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod firewall;
pub mod inspect;
pub mod legacy_command;
pub mod logging;
pub mod matcher;
pub mod names;
pub mod nft;
pub mod one_time;
pub mod pidfile;
pub mod privileges;
pub mod rate_limit;
pub mod rotating;
pub mod spa;
pub mod wire;
