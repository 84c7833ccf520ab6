//! The one seam between knock logic and the packet filter.
//!
//! The daemon only ever does two things to the firewall: install its ruleset, and add
//! addresses to sets with a timeout. Backends: [`crate::nft::NetlinkFirewall`] (the kernel,
//! over netlink) and [`MemoryFirewall`] (tests of everything above it, no root needed).

use std::net::IpAddr;
use std::time::Duration;

use crate::config::TableFamily;
use crate::nft::Ruleset;

/// One address to add to one set, expiring after `timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub family: TableFamily,
    pub table: String,
    pub set: String,
    pub addr: IpAddr,
    pub timeout: Duration,
}

/// What attach mode needs to know about an admin's set before it uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetInfo {
    /// Whether the set has `flags timeout` (elements with a timeout need it).
    pub timeout: bool,
    /// The nftables data type of the key: 7 is `ipv4_addr`, 8 is `ipv6_addr`.
    pub key_type: u32,
}

/// `ipv4_addr`, `ipv6_addr`: nftables' data type numbers for set keys.
pub const KEY_IPV4: u32 = 7;
pub const KEY_IPV6: u32 = 8;

/// A firewall operation that failed, with what was being done and the kernel's answer.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("cannot open a netlink socket to nftables: {0}")]
    Socket(#[source] std::io::Error),
    #[error("nftables refused to {operation}: {source}")]
    Netlink {
        operation: String,
        #[source]
        source: std::io::Error,
    },
}

/// A packet filter the daemon can program.
pub trait Firewall {
    /// Creates or updates the daemon's table, sets and chain in one atomic transaction.
    /// Existing set elements (grants that have not expired) are kept.
    fn install(&mut self, ruleset: &Ruleset) -> Result<(), FirewallError>;

    /// Adds each element, or refreshes its timeout if it is already there, in one transaction.
    fn add_elements(&mut self, elements: &[Element]) -> Result<(), FirewallError>;

    /// Describes an existing set; `None` when it (or its table) does not exist.
    fn set_info(&mut self, family: TableFamily, table: &str, set: &str) -> Result<Option<SetInfo>, FirewallError>;

    /// Whether a chain exists.
    fn chain_exists(&mut self, family: TableFamily, table: &str, chain: &str) -> Result<bool, FirewallError>;
}

/// An in-memory firewall that records what it was asked to do.
#[derive(Debug, Default)]
pub struct MemoryFirewall {
    pub installed: Vec<Ruleset>,
    pub elements: Vec<Element>,
    /// Sets that exist outside the daemon's own table (attach mode).
    pub foreign_sets: Vec<(TableFamily, String, String, SetInfo)>,
    /// When set, every operation fails with this errno.
    pub fail_with: Option<i32>,
    /// Someone deleted the installed table (`nft flush ruleset`); `install` puts it back.
    pub deleted: bool,
}

impl MemoryFirewall {
    fn check(&self, operation: &str) -> Result<(), FirewallError> {
        match self.fail_with {
            Some(errno) => Err(FirewallError::Netlink {
                operation: operation.to_owned(),
                source: std::io::Error::from_raw_os_error(errno),
            }),
            None => Ok(()),
        }
    }
}

impl Firewall for MemoryFirewall {
    fn install(&mut self, ruleset: &Ruleset) -> Result<(), FirewallError> {
        self.check("install the ruleset")?;
        self.installed.push(ruleset.clone());
        self.deleted = false;
        Ok(())
    }

    fn add_elements(&mut self, elements: &[Element]) -> Result<(), FirewallError> {
        self.check("add set elements")?;
        if self.deleted {
            return Err(FirewallError::Netlink {
                operation: "add set elements".into(),
                source: std::io::Error::from_raw_os_error(libc::ENOENT),
            });
        }
        self.elements.extend_from_slice(elements);
        Ok(())
    }

    fn set_info(&mut self, family: TableFamily, table: &str, set: &str) -> Result<Option<SetInfo>, FirewallError> {
        self.check("look up a set")?;
        let own = self.installed.last().filter(|r| !self.deleted && family == TableFamily::Inet && r.table == table);
        if let Some(spec) = own.and_then(|r| r.sets.iter().find(|s| s.name == set)) {
            let key_type = if spec.family == crate::nft::Family::V4 { KEY_IPV4 } else { KEY_IPV6 };
            return Ok(Some(SetInfo { timeout: true, key_type }));
        }
        Ok(self.foreign_sets.iter().find(|(f, t, s, _)| *f == family && t == table && s == set).map(|e| e.3))
    }

    fn chain_exists(&mut self, family: TableFamily, table: &str, chain: &str) -> Result<bool, FirewallError> {
        self.check("look up a chain")?;
        let own = self.installed.last().filter(|r| !self.deleted && family == TableFamily::Inet && r.table == table);
        Ok(own.is_some() && chain == crate::nft::CHAIN)
    }
}
