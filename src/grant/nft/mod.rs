//! What the daemon puts in nftables, as plain data, and how it gets there.
//!
//! [`Ruleset`] is computed from the config without touching the system; [`NetlinkFirewall`]
//! turns it into one batch (`install.rs`), adds set elements with their own timeouts
//! and with who opened them as their comment (`elements.rs`, `comment.rs`) and reads sets back
//! (`query.rs`). The ruleset's `Display` is the same ruleset
//! in nft syntax (for `knockd check`, the templates and the tests).

mod comment;
pub mod concat;
mod dump;
mod elements;
mod install;
mod monitor;
mod netlink;
mod nlmsg;
mod placement;
mod query;
mod ruleset;

pub use monitor::{Changes, Monitor};
pub use netlink::NetlinkFirewall;
pub use ruleset::*;
