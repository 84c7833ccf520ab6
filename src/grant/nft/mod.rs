//! What the daemon puts in nftables, as plain data, and how it gets there.
//!
//! [`Ruleset`] is computed from the config without touching the system; [`NetlinkFirewall`]
//! turns it into one batch (`install.rs`), adds set elements with their own timeouts
//! (`elements.rs`) and reads sets back (`query.rs`). The ruleset's `Display` is the same ruleset
//! in nft syntax (for `knockd check`, the templates and the tests).

mod elements;
mod install;
mod netlink;
mod query;
mod ruleset;

pub use netlink::NetlinkFirewall;
pub use query::ElementInfo;
pub use ruleset::*;
