//! What the daemon puts in nftables, as plain data, and how it gets there.
//!
//! [`Ruleset`] is computed from the config without touching the system; the netlink backend
//! turns it into one batch, and its `Display` is the same ruleset in nft syntax (for
//! `knockd check`, the templates and the tests).

mod netlink;
mod query;
mod ruleset;

pub use netlink::NetlinkFirewall;
pub use query::ElementInfo;
pub use ruleset::*;
