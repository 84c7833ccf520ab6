//! An in-memory firewall that records what it was asked to do, for tests without root.

use super::{Element, ElementInfo, Firewall, FirewallError, KEY_IPV4, KEY_IPV4_PORT, KEY_IPV6, KEY_IPV6_PORT, SetInfo};
use crate::config::TableFamily;
use crate::grant::nft::{CHAIN, Family, Ruleset};

/// How [`MemoryFirewall`] fails when told to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// As if a table, chain or set were missing.
    NotFound,
    /// As if the kernel had no buffer space.
    NoBuffer,
    /// Refused with this errno.
    Refused(i32),
}

/// An in-memory firewall that records what it was asked to do.
#[derive(Debug, Default)]
pub struct MemoryFirewall {
    /// Every ruleset installed, oldest first.
    pub installed: Vec<Ruleset>,
    /// Every element added and not deleted since, oldest first.
    pub elements: Vec<Element>,
    /// Every element deleted (`knockd revoke`), oldest first.
    pub deleted_elements: Vec<Element>,
    /// Sets that exist outside the daemon's own table (attach mode).
    pub foreign_sets: Vec<(TableFamily, String, String, SetInfo)>,
    /// When set, every operation fails this way.
    pub fail_with: Option<Failure>,
    /// Someone deleted the installed table (`nft flush ruleset`); `install` puts it back.
    pub deleted: bool,
    /// Someone changed the chain's rules (`nft flush chain`); `install` puts them back.
    pub tampered: bool,
    /// Sets that refuse elements as missing, as if deleted from outside.
    pub missing_sets: Vec<String>,
    /// Tables `install` was asked to delete (renamed away).
    pub removed_tables: Vec<String>,
    /// Calls to `add_elements`, one per transaction.
    pub transactions: usize,
    /// `install` fails (refused), though everything else works.
    pub fail_install: bool,
    /// The host's other tables, as `host_ruleset` reports them (with the daemon's own).
    pub host: crate::grant::host::HostRuleset,
}

impl MemoryFirewall {
    fn check(&self, operation: &str) -> Result<(), FirewallError> {
        let operation = operation.to_owned();
        match self.fail_with {
            None => Ok(()),
            Some(Failure::NotFound) => Err(FirewallError::NotFound { operation }),
            Some(Failure::NoBuffer) => Err(FirewallError::NoBuffer { operation }),
            Some(Failure::Refused(errno)) => {
                Err(FirewallError::Refused { operation, source: std::io::Error::from_raw_os_error(errno) })
            }
        }
    }

    fn own(&self, family: TableFamily, table: &str) -> Option<&Ruleset> {
        self.installed.last().filter(|r| !self.deleted && family == TableFamily::Inet && r.table == table)
    }
}

impl Firewall for MemoryFirewall {
    fn install(&mut self, ruleset: &Ruleset, previous: Option<&Ruleset>) -> Result<(), FirewallError> {
        self.check("install the ruleset")?;
        if self.fail_install {
            let source = std::io::Error::from_raw_os_error(libc::EINVAL);
            return Err(FirewallError::Refused { operation: "install the ruleset".into(), source });
        }
        if ruleset.is_empty() && !ruleset.owns_table() {
            // Clearing knockd's objects out of fw4's table: nothing of them is left to record.
            return Ok(());
        }
        self.installed.push(ruleset.clone());
        let renamed = previous.filter(|p| {
            p.owns_table() && p.table != ruleset.table && self.installed.iter().any(|i| i.table == p.table)
        });
        self.removed_tables.extend(renamed.map(|p| p.table.clone()));
        self.deleted = false;
        self.tampered = false;
        self.missing_sets.retain(|s| !ruleset.sets.iter().any(|r| &r.name == s));
        Ok(())
    }

    fn add_elements(&mut self, elements: &[Element]) -> Result<(), FirewallError> {
        self.check("add set elements")?;
        self.transactions += 1;
        let ours =
            |e: &Element| e.family == TableFamily::Inet && self.installed.last().is_some_and(|r| r.table == e.table);
        let gone = |e: &Element| (self.deleted && ours(e)) || self.missing_sets.contains(&e.set);
        if elements.iter().any(gone) {
            return Err(FirewallError::NotFound { operation: "add set elements".into() });
        }
        self.elements.extend_from_slice(elements);
        Ok(())
    }

    fn set_info(&mut self, family: TableFamily, table: &str, set: &str) -> Result<Option<SetInfo>, FirewallError> {
        self.check("look up a set")?;
        if let Some(spec) = self.own(family, table).and_then(|r| r.sets.iter().find(|s| s.name == set)) {
            let key_type = match (spec.family, spec.per_port) {
                (Family::V4, false) => KEY_IPV4,
                (Family::V6, false) => KEY_IPV6,
                (Family::V4, true) => KEY_IPV4_PORT,
                (Family::V6, true) => KEY_IPV6_PORT,
            };
            return Ok(Some(SetInfo::timeout_set(key_type)));
        }
        Ok(self.foreign_sets.iter().find(|(f, t, s, _)| *f == family && t == table && s == set).map(|e| e.3))
    }

    /// The elements added to the set and not deleted since, each once; `expires` is the
    /// timeout (no time passes here).
    fn list_elements(
        &mut self,
        family: TableFamily,
        table: &str,
        set: &str,
    ) -> Result<Vec<ElementInfo>, FirewallError> {
        self.check("list set elements")?;
        let mut out: Vec<ElementInfo> = Vec::new();
        for e in self.elements.iter().filter(|e| e.family == family && e.table == table && e.set == set) {
            out.retain(|o| (o.addr, o.port) != (e.addr, e.port));
            let (timeout, comment) = (Some(e.timeout), e.comment.clone());
            out.push(ElementInfo { addr: e.addr, port: e.port, timeout, expires: timeout, comment });
        }
        Ok(out)
    }

    fn delete_elements(&mut self, elements: &[Element]) -> Result<(), FirewallError> {
        self.check("delete set elements")?;
        let same = |a: &Element, b: &Element| {
            (a.family, &a.table, &a.set, a.addr, a.port) == (b.family, &b.table, &b.set, b.addr, b.port)
        };
        self.elements.retain(|e| !elements.iter().any(|d| same(e, d)));
        self.deleted_elements.extend_from_slice(elements);
        Ok(())
    }

    fn remove_table(&mut self, table: &str) -> Result<bool, FirewallError> {
        self.check("delete the table")?;
        let there = self.installed.last().is_some_and(|r| r.table == table) && !self.deleted;
        if there {
            self.removed_tables.push(table.to_owned());
            self.deleted = true;
        }
        Ok(there)
    }

    fn host_ruleset(&mut self) -> Result<crate::grant::host::HostRuleset, FirewallError> {
        self.check("read the ruleset")?;
        Ok(self.host.clone())
    }

    fn drift(&mut self, ruleset: &Ruleset) -> Result<Option<String>, FirewallError> {
        self.check("read the chain back")?;
        Ok(if self.deleted {
            Some(format!("table inet {} was removed", ruleset.table))
        } else if self.tampered {
            Some(format!("the rules of chain inet {} {CHAIN} were changed", ruleset.table))
        } else {
            self.missing_sets.first().map(|s| format!("set {s} of table inet {} was removed", ruleset.table))
        })
    }
}
