//! The one seam between knock logic and the packet filter.
//!
//! The daemon only ever does two things to the firewall: install its ruleset, and add
//! addresses to sets with a timeout. Backends: [`crate::nft::NetlinkFirewall`] (the kernel,
//! over netlink) and [`MemoryFirewall`] (tests of everything above it, no root needed).

use std::net::IpAddr;
use std::time::Duration;

use crate::nft::Ruleset;

/// One address to add to one set, expiring after `timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub table: String,
    pub set: String,
    pub addr: IpAddr,
    pub timeout: Duration,
}

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
}

/// An in-memory firewall that records what it was asked to do.
#[derive(Debug, Default)]
pub struct MemoryFirewall {
    pub installed: Vec<Ruleset>,
    pub elements: Vec<Element>,
    /// When set, every operation fails with this errno.
    pub fail_with: Option<i32>,
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
        Ok(())
    }

    fn add_elements(&mut self, elements: &[Element]) -> Result<(), FirewallError> {
        self.check("add set elements")?;
        self.elements.extend_from_slice(elements);
        Ok(())
    }
}
