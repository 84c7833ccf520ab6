//! Attach mode: doors that add addresses to sets in the admin's own table. The sets are the
//! admin's: knockd checks them (exists, right key type, `flags timeout`, a table others may
//! change) and never creates them. Interval sets (firewalld's ipsets) are fine: an address is
//! added there as a range of one.

use super::{Firewall, FirewallError, KEY_IPV4, KEY_IPV4_PORT, KEY_IPV6, KEY_IPV6_PORT};
use crate::config::Config;

/// One set an attach-mode door adds to, and what is wrong with it, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedSet {
    /// The door that names the set.
    pub door: String,
    /// `set inet filter knock_ssh4`
    pub set: String,
    /// What is wrong with the set, and how to fix it; `None` when it is usable.
    pub problem: Option<String>,
}

/// Looks up every set the config's doors name (reading only) and reports on each.
pub fn attached_sets<F: Firewall>(config: &Config, firewall: &mut F) -> Result<Vec<AttachedSet>, FirewallError> {
    let mut reports = Vec::new();
    for door in &config.doors {
        let Some(open) = door.open.as_ref() else { continue };
        let Some(attach) = open.attach.as_ref() else { continue };
        // A door whose clients name ports (fwknop) adds address, protocol and port.
        let wanted = if open.per_port {
            [
                (attach.ipv4.as_ref(), KEY_IPV4_PORT, "ipv4_addr . inet_proto . inet_service"),
                (attach.ipv6.as_ref(), KEY_IPV6_PORT, "ipv6_addr . inet_proto . inet_service"),
            ]
        } else {
            [(attach.ipv4.as_ref(), KEY_IPV4, "ipv4_addr"), (attach.ipv6.as_ref(), KEY_IPV6, "ipv6_addr")]
        };
        for (name, key, key_name) in wanted.into_iter().filter_map(|(n, k, kn)| n.map(|n| (n, k, kn))) {
            let set = format!("set {} {} {name}", attach.family, attach.table);
            let problem = match firewall.set_info(attach.family, &attach.table, name)? {
                None => Some(format!("{set} does not exist: create it (see nft-templates/attach.nft)")),
                Some(info) if info.key_type != key => {
                    Some(format!("{set} does not hold {key_name} elements: give it `type {key_name}`"))
                }
                Some(info) if !info.timeout => {
                    Some(format!("{set} has no `flags timeout`: add it, so grants can expire"))
                }
                Some(info) if info.unusable => {
                    Some(format!("{set} is a map or `constant`: nothing can be added to it; attach to a plain set"))
                }
                Some(info) if info.owned => Some(format!(
                    "{set} is in a table another process owns (`flags owner`; firewalld 2 does this unless \
                     NftablesTableOwner=no in /etc/firewalld/firewalld.conf): nobody else may add to its sets. \
                     Set NftablesTableOwner=no, or let that firewall accept the port and keep the door in \
                     knockd's own table (`open.ports`)"
                )),
                Some(_) => None,
            };
            reports.push(AttachedSet { door: door.name.clone(), set, problem });
        }
    }
    Ok(reports)
}

/// Why the attached sets cannot be used.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's doc names its fields")]
pub enum AttachError {
    /// The sets could not be looked up.
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    /// A set is missing or unusable; the message says how to fix it.
    #[error("door {door}: {message}")]
    Set { door: String, message: String },
}

/// The first problem with an attached set, as an error: the start (or reload) fails before
/// anything is applied.
pub fn check_attached_sets<F: Firewall>(config: &Config, firewall: &mut F) -> Result<(), AttachError> {
    match attached_sets(config, firewall)?.into_iter().find_map(|r| r.problem.map(|m| (r.door, m))) {
        Some((door, message)) => Err(AttachError::Set { door, message }),
        None => Ok(()),
    }
}
