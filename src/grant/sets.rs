//! Which set elements a grant is, which sets a door's grants live in, and how a grant reads in
//! a log line.

use log::warn;

use super::Element;
use super::ledger::Key;
use super::nft::{Family, door_set};
use crate::config::{Config, Door, PortProto, TableFamily};
use crate::doors::Grant;

/// A set, as (family, table, name).
pub type SetRef = (TableFamily, String, String);

/// Elements grouped by set, each (set, address, port) once with the longest timeout asked for.
pub fn by_set<'a>(elements: impl Iterator<Item = &'a Element>) -> Vec<Vec<Element>> {
    let mut groups: Vec<Vec<Element>> = Vec::new();
    for element in elements {
        let same_set = |g: &&mut Vec<Element>| {
            let e = &g[0];
            (e.family, &e.table, &e.set) == (element.family, &element.table, &element.set)
        };
        match groups.iter_mut().find(same_set) {
            Some(group) => match group.iter_mut().find(|e| (e.addr, e.port) == (element.addr, element.port)) {
                // The later grant names who opened it, as in the ledger.
                Some(e) => {
                    e.timeout = e.timeout.max(element.timeout);
                    e.comment.clone_from(&element.comment);
                }
                None => group.push(element.clone()),
            },
            None => groups.push(vec![element.clone()]),
        }
    }
    groups
}

/// The set elements that grant `grant`: one for the address, or (a per-port door) one per
/// port asked for. None for an attach door without a set for the address's family, or a
/// per-port grant that asked for no port.
pub fn elements(config: &Config, grant: &Grant) -> Vec<Element> {
    let door = &config.doors[grant.door];
    let Some(open) = door.open.as_ref() else { return Vec::new() };
    let (family, table, set) = match &open.attach {
        None => {
            let (table, set) = door_set(config, &door.name, Family::of(&grant.addr));
            (TableFamily::Inet, table, set)
        }
        Some(a) => match if grant.addr.is_ipv4() { a.ipv4.as_ref() } else { a.ipv6.as_ref() } {
            Some(set) => (a.family, a.table.clone(), set.clone()),
            None => {
                warn!("{}", crate::log_lines::no_set_for_family(&door.name, grant.addr));
                return Vec::new();
            }
        },
    };
    let timeout = grant.timeout.unwrap_or(open.timeout);
    let element = |port| Element {
        family,
        table: table.clone(),
        set: set.clone(),
        addr: grant.addr,
        port,
        timeout,
        comment: grant.by.clone(),
    };
    if open.per_port { grant.ports.iter().map(|p| element(Some(*p))).collect() } else { vec![element(None)] }
}

/// The sets a door's grants live in (its own two, or the admin's it is attached to).
pub fn door_sets(config: &Config, door: &Door) -> Vec<SetRef> {
    let Some(open) = &door.open else { return Vec::new() };
    match &open.attach {
        None => Family::BOTH
            .iter()
            .map(|f| {
                let (table, set) = door_set(config, &door.name, *f);
                (TableFamily::Inet, table, set)
            })
            .collect(),
        Some(a) => [&a.ipv4, &a.ipv6].into_iter().flatten().map(|s| (a.family, a.table.clone(), s.clone())).collect(),
    }
}

/// What a grant opens, as log lines and `knockd status` say it: `22/tcp, 443/tcp`, or the
/// attached set.
pub fn opens(config: &Config, key: &Key) -> String {
    let door = config.doors.iter().find(|d| d.name == key.door);
    match (key.port, door.and_then(|d| d.open.as_ref())) {
        (Some(port), _) => port.to_string(),
        (None, Some(open)) => match &open.attach {
            None => {
                let ports = open.ports.iter().map(PortProto::to_string);
                let forwards =
                    open.forward.iter().filter(|f| f.to.is_ipv4() == key.addr.is_ipv4()).map(|f| f.to_string());
                ports.chain(forwards).collect::<Vec<_>>().join(", ")
            }
            Some(a) => {
                let set = if key.addr.is_ipv4() { &a.ipv4 } else { &a.ipv6 };
                format!("set {} {} {}", a.family, a.table, set.as_deref().unwrap_or("-"))
            }
        },
        (None, None) => "-".into(),
    }
}
