//! Grants: what happens when a door opens. The one seam between doors and the packet filter.
//!
//! Contract: the daemon only ever does a few things to the firewall, all through the
//! [`Firewall`] trait: install its ruleset (one atomic transaction), add addresses to sets with
//! a timeout, and look sets and chains up. Backends: [`nft::NetlinkFirewall`] (the kernel, over
//! netlink; every raw errno is turned into a [`FirewallError`] variant there) and
//! [`memory::MemoryFirewall`] (tests of everything above it, no root needed). Classic
//! knockd.conf doors run shell commands instead, through [`legacy_command`]. [`Granter`] turns a
//! door's grant into both, and retries a grant once when the daemon's own table has gone.

pub mod attach;
pub mod coexist;
mod granter;
pub mod host;
pub mod ledger;
pub mod legacy_command;
pub mod memory;
pub mod nft;
pub mod refill;
pub mod sets;

use std::net::IpAddr;
use std::time::Duration;

pub use granter::Granter;
pub use memory::MemoryFirewall;

use crate::config::{PortProto, TableFamily};
use nft::Ruleset;

/// One address to add to one set, expiring after `timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The family of the set's table.
    pub family: TableFamily,
    /// The set's table.
    pub table: String,
    /// The set.
    pub set: String,
    /// The address to add.
    pub addr: IpAddr,
    /// For a per-port set: the protocol and port that address may reach.
    pub port: Option<PortProto>,
    /// When the kernel removes it again.
    pub timeout: Duration,
    /// Who opened it (a key's or secret's name), kept with the element as its comment.
    pub comment: Option<String>,
}

/// One element of a set, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementInfo {
    /// The element's address.
    pub addr: IpAddr,
    /// For a per-port set: the protocol and port.
    pub port: Option<PortProto>,
    /// The element's own timeout, if it has one.
    pub timeout: Option<Duration>,
    /// Time left before the kernel removes it.
    pub expires: Option<Duration>,
    /// Its comment: who opened it, when knockd did.
    pub comment: Option<String>,
}

/// What attach mode needs to know about an admin's set before it uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetInfo {
    /// Whether the set has `flags timeout` (elements with a timeout need it).
    pub timeout: bool,
    /// Whether the set has `flags interval` (firewalld's ipsets do): an address is then a
    /// range of one, its start plus an end element at the next address. Added as a plain
    /// element, it would open every address above it.
    pub interval: bool,
    /// Whether the set is `constant` or a map: elements cannot be added to it as a grant.
    pub unusable: bool,
    /// Whether its table is owned by another process (`flags owner`: firewalld 2 by default),
    /// which alone may change it, elements included.
    pub owned: bool,
    /// The set's handle: a set deleted and made again (a firewall's reload) has a new one.
    pub handle: u64,
    /// The nftables data type of the key: 7 is `ipv4_addr`, 8 is `ipv6_addr`.
    pub key_type: u32,
}

impl SetInfo {
    /// A plain set with `flags timeout` holding `key_type` keys (knockd's own sets).
    pub fn timeout_set(key_type: u32) -> Self {
        SetInfo { timeout: true, key_type, ..SetInfo::default() }
    }
}

/// nftables' data type number for `ipv4_addr` set keys.
pub const KEY_IPV4: u32 = 7;
/// nftables' data type number for `ipv6_addr` set keys.
pub const KEY_IPV6: u32 = 8;
/// nftables' data type numbers for `ipv4_addr . inet_proto . inet_service` and its IPv6 twin.
pub const KEY_IPV4_PORT: u32 = nft::concat::key_type(nft::Family::V4);
/// See [`KEY_IPV4_PORT`].
pub const KEY_IPV6_PORT: u32 = nft::concat::key_type(nft::Family::V6);

/// A firewall operation that failed, with what was being done and what the kernel said.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's doc names its fields")]
pub enum FirewallError {
    /// No netlink socket (no CAP_NET_ADMIN, say).
    #[error("cannot open a netlink socket to nftables: {0}")]
    Socket(#[source] std::io::Error),
    /// A table, chain or set the operation names does not exist (any more).
    #[error("nftables cannot {operation}: a table, chain or set it needs does not exist")]
    NotFound { operation: String },
    /// The kernel ran out of buffer space for the request or its answers.
    #[error("nftables cannot {operation}: no buffer space for the request or its answers")]
    NoBuffer { operation: String },
    /// A set holds as many elements as its `size` allows.
    #[error("nftables cannot {operation}: the set is full (its `size`; knockd's own sets: nftables.set_size)")]
    Full { operation: String },
    /// Any other refusal, with the kernel's reason.
    #[error("nftables refused to {operation}: {source}")]
    Refused {
        /// What was being done: "install table inet knockd".
        operation: String,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
}

/// A packet filter the daemon can program.
pub trait Firewall {
    /// Creates or updates the daemon's table (or its objects inside fw4), sets and chains in one
    /// atomic transaction, keeping the elements (live grants) of sets that stay. In the same
    /// transaction, sets and chains of the daemon's that `ruleset` no longer declares are
    /// deleted, and so is what `previous` (the last install) left elsewhere: a renamed table,
    /// objects inside fw4. If the kernel refuses any of it, nothing changes.
    fn install(&mut self, ruleset: &Ruleset, previous: Option<&Ruleset>) -> Result<(), FirewallError>;

    /// Adds each element, or restarts its timeout if it is already there, in one transaction.
    /// The granter calls it once per set, so one set's failure never costs another's grants.
    fn add_elements(&mut self, elements: &[Element]) -> Result<(), FirewallError>;

    /// Describes an existing set; `None` when it (or its table) does not exist.
    fn set_info(&mut self, family: TableFamily, table: &str, set: &str) -> Result<Option<SetInfo>, FirewallError>;

    /// Every element of a set, with the time it has left.
    fn list_elements(&mut self, family: TableFamily, table: &str, set: &str)
    -> Result<Vec<ElementInfo>, FirewallError>;

    /// Removes these elements now (`knockd revoke`), in one transaction.
    fn delete_elements(&mut self, elements: &[Element]) -> Result<(), FirewallError>;

    /// How the kernel differs from what the last [`install`](Firewall::install) of `ruleset`
    /// left: the table, a set or the chain removed, or the chain's rules changed. `None` when
    /// everything is as installed.
    fn drift(&mut self, ruleset: &Ruleset) -> Result<Option<String>, FirewallError>;

    /// Deletes the daemon's `inet` table `table` if the kernel has it (a config with no door
    /// that guards a port there: an old guard must not stay). Returns whether it was there.
    fn remove_table(&mut self, table: &str) -> Result<bool, FirewallError>;

    /// Every table, chain, rule and set of the host, to work out what the other firewalls do
    /// with what the doors open.
    fn host_ruleset(&mut self) -> Result<host::HostRuleset, FirewallError>;

    /// The netlink port of the socket the changes go through, so that change events the
    /// daemon caused itself are told from others'; `None` for a backend without one.
    fn netlink_port(&self) -> Option<u32> {
        None
    }
}
