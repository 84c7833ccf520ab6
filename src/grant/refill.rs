//! Putting live grants back after someone else's reload. A firewall that owns the table a door
//! attaches to (firewalld's `--reload`, fw4's reload and restart, `systemctl restart
//! nftables`), or whoever deletes knockd's own table, takes the grants' set elements with it.
//! The ledger knows every live grant and when it ends: each goes back with the time it has
//! left, not a fresh timeout.

use std::collections::HashMap;
use std::time::Duration;

use log::{info, warn};

use super::ledger::{Entry, Key, Ledger};
use super::sets::{SetRef, door_sets, elements};
use super::{Element, Firewall};
use crate::config::Config;
use crate::doors::Grant;
use crate::log_lines;

/// The shortest remaining time a grant is put back with (the kernel's timeouts are in ms;
/// a grant about to end is not worth a round trip less).
const LEAST: Duration = Duration::from_secs(1);

/// What the refiller remembers between calls: each set's handle when it last looked, so a set
/// made again is told from one an admin changed by hand.
#[derive(Debug, Default)]
pub struct Refill {
    handles: HashMap<SetRef, u64>,
}

/// The set element a live ledger entry stands for, with the time it has left at `now`.
fn element(config: &Config, key: &Key, entry: &Entry, now: Duration) -> Option<Element> {
    let door = config.doors.iter().position(|d| d.name == key.door)?;
    let left = entry.until.checked_sub(now)?.max(LEAST);
    let mut grant = Grant::new(door, key.addr, key.addr, key.addr);
    grant.ports = key.port.into_iter().collect();
    grant.timeout = Some(left);
    grant.by.clone_from(&entry.by);
    elements(config, &grant).into_iter().next()
}

impl Refill {
    /// Forgets what it knew of the sets (after a start or reload: they are read afresh).
    pub fn reset(&mut self) {
        self.handles.clear();
    }

    /// For every set of `config`'s doors: if it was made again (a new handle), or its owner
    /// `reloaded` its table and it holds none of the live grants the ledger has for it, puts
    /// them back with their time left. A grant missing otherwise was ended from outside (`nft
    /// delete element`, `nft flush set`: an admin's eviction), and is forgotten. `force` puts
    /// back everything missing (the daemon's own table was just restored). Returns how many
    /// went back.
    pub fn run<F: Firewall>(
        &mut self,
        config: &Config,
        firewall: &mut F,
        ledger: &mut Ledger,
        now: Duration,
        force: bool,
        reloaded: bool,
    ) -> usize {
        let mut restored = 0;
        for door in config.doors.iter().filter(|d| d.open.is_some()) {
            for set in door_sets(config, door) {
                restored += self.one_set(config, firewall, ledger, &set, now, (force, reloaded));
            }
        }
        restored
    }

    fn one_set<F: Firewall>(
        &mut self,
        config: &Config,
        firewall: &mut F,
        ledger: &mut Ledger,
        set: &SetRef,
        now: Duration,
        (force, reloaded): (bool, bool),
    ) -> usize {
        let (family, table, name) = set;
        let Ok(Some(info)) = firewall.set_info(*family, table, name) else { return 0 };
        let remade = self.handles.insert(set.clone(), info.handle).is_some_and(|h| h != info.handle);
        let live: Vec<Element> = ledger
            .iter()
            .filter_map(|(k, e)| element(config, k, e, now))
            .filter(|e| (e.family, &e.table, &e.set) == (*family, table, name))
            .collect();
        if live.is_empty() {
            return 0;
        }
        let Ok(present) = firewall.list_elements(*family, table, name) else { return 0 };
        let there = |e: &Element| present.iter().any(|p| (p.addr, p.port) == (e.addr, e.port));
        let missing: Vec<Element> = live.iter().filter(|e| !there(e)).cloned().collect();
        if missing.is_empty() {
            return 0;
        }
        let emptied = reloaded && missing.len() == live.len();
        if !(force || remade || emptied) {
            for e in &missing {
                ledger.remove(&Key { door: door_of(config, e), addr: e.addr, port: e.port });
                let set = format!("{family} {table} {name}");
                info!("{}", log_lines::removed_from_outside(&door_of(config, e), e.addr, &set));
            }
            return 0;
        }
        match firewall.add_elements(&missing) {
            Ok(()) => {
                let why = if remade { "was made again" } else { "lost them" };
                info!("{}", log_lines::put_back(&format!("{family} {table} {name}"), why, missing.len()));
                missing.len()
            }
            Err(e) => {
                warn!("{}", log_lines::cannot_put_back(&format!("{family} {table} {name}"), missing.len(), &e));
                0
            }
        }
    }
}

fn door_of(config: &Config, e: &Element) -> String {
    config
        .doors
        .iter()
        .find(|d| door_sets(config, d).iter().any(|(f, t, s)| (*f, t, s) == (e.family, &e.table, &e.set)))
        .map(|d| d.name.clone())
        .unwrap_or_default()
}
