//! From a door's grant to set elements and commands, and the retry policy around them.

use std::net::IpAddr;
use std::time::Duration;

use log::{debug, error, info, warn};

use super::attach::{AttachError, check_attached_sets};
use super::legacy_command::{Scheduler, Spawner};
use super::nft::{Family, Ruleset, set_name};
use super::{Element, Firewall, FirewallError};
use crate::config::{Config, Door, TableFamily};
use crate::doors::{DoorId, Grant};

/// A completed proof waiting for the next firewall commit.
#[derive(Debug, Clone)]
struct Pending {
    door: DoorId,
    addr: IpAddr,
    by: Option<String>,
}

/// Commits grants: set elements through the firewall, commands through the spawner.
pub struct Granter<F: Firewall, S: Spawner> {
    firewall: F,
    spawner: S,
    /// Pending stop commands; outlives reloads.
    scheduler: Scheduler,
    /// The table the daemon installed, if any (so a reload to a config without nftables doors
    /// still replaces it, and a rename removes the old one).
    table: Option<String>,
    pending: Vec<Pending>,
    /// The attached set last reported missing, so the report is not repeated every check.
    missing_attached: Option<(String, String)>,
    /// Grants the firewall refused.
    errors: u64,
}

impl<F: Firewall, S: Spawner> Granter<F, S> {
    /// Installs the config's ruleset (if it has nftables doors).
    pub fn start(config: &Config, mut firewall: F, spawner: S) -> Result<Self, FirewallError> {
        let ruleset = Ruleset::for_config(config);
        let table = (!ruleset.is_empty()).then(|| ruleset.table.clone());
        if table.is_some() {
            firewall.install(&ruleset, None)?;
        }
        Ok(Granter {
            firewall,
            spawner,
            scheduler: Scheduler::default(),
            table,
            pending: Vec::new(),
            missing_attached: None,
            errors: 0,
        })
    }

    /// Checks the sets attach-mode doors of `config` name; reads only.
    pub fn check_attached(&mut self, config: &Config) -> Result<(), AttachError> {
        check_attached_sets(config, &mut self.firewall)
    }

    /// Replaces the ruleset with `config`'s in one transaction (removing the old table if it was
    /// renamed, and the sets of doors that are gone); on error the old one stays.
    pub fn reconfigure(&mut self, config: &Config) -> Result<(), FirewallError> {
        let ruleset = Ruleset::for_config(config);
        if self.table.is_some() || !ruleset.is_empty() {
            self.firewall.install(&ruleset, self.table.as_deref())?;
            self.table = Some(ruleset.table.clone());
        }
        Ok(())
    }

    /// Opens `door` for the grant: queues its set element, runs its start command.
    pub fn open(&mut self, door: &Door, grant: &Grant, now: Duration) {
        if door.open.is_some() {
            self.pending.push(Pending { door: grant.door, addr: grant.addr, by: grant.by.clone() });
        }
        self.scheduler.open(door, grant.addr, now, &mut self.spawner);
    }

    /// Commits every grant since the last flush: one transaction per set, each element once,
    /// so one set's failure never costs another set's grants. A set that has gone with the
    /// daemon's own table is put back and tried once more. Returns how many were granted.
    pub fn flush(&mut self, config: &Config) -> usize {
        if self.pending.is_empty() {
            return 0;
        }
        let pending = std::mem::take(&mut self.pending);
        let mut granted = 0;
        for group in by_set(config, pending) {
            let elements: Vec<Element> = group.iter().map(|(_, e)| e.clone()).collect();
            let mut result = self.firewall.add_elements(&elements);
            if matches!(result, Err(FirewallError::NotFound { .. }))
                && self.table.as_deref() == Some(&elements[0].table)
            {
                // Someone removed our table or a set: put it back and try once more.
                self.verify(config);
                result = self.firewall.add_elements(&elements);
            }
            match result {
                Ok(()) => {
                    for (p, element) in &group {
                        log_grant(&config.doors[p.door], p, element);
                    }
                    granted += elements.len();
                }
                Err(e) => {
                    self.errors += elements.len() as u64;
                    error!("cannot grant access to {} source(s): {e}", elements.len());
                }
            }
        }
        granted
    }

    /// Checks that the kernel still holds exactly what the daemon installed, and puts it back
    /// if not (`nft flush ruleset`, a rule deleted or added by hand): the daemon's ports are
    /// never left unguarded. Grants held by sets that were removed are gone with them. Attached
    /// sets of the admin's are only reported: they are not ours to create.
    pub fn verify(&mut self, config: &Config) {
        if self.table.is_some() {
            let ruleset = Ruleset::for_config(config);
            match self.firewall.drift(&ruleset) {
                Ok(None) => {}
                Ok(Some(what)) => {
                    warn!("{what} from outside: putting it back");
                    match self.firewall.install(&ruleset, None) {
                        Ok(()) => info!("table inet {} restored", ruleset.table),
                        Err(e) => error!("cannot restore table inet {}: {e}", ruleset.table),
                    }
                }
                Err(e) => debug!("cannot check table inet {}: {e}", ruleset.table),
            }
        }
        self.report_attached(config);
    }

    fn report_attached(&mut self, config: &Config) {
        match check_attached_sets(config, &mut self.firewall) {
            Ok(()) => {
                if self.missing_attached.take().is_some() {
                    info!("the attached sets are all back");
                }
            }
            Err(AttachError::Set { door, message }) => {
                let problem = Some((door, message));
                if self.missing_attached != problem {
                    if let Some((door, message)) = &problem {
                        error!("door {door}: {message}; its grants fail until that is fixed");
                    }
                    self.missing_attached = problem;
                }
            }
            Err(e) => debug!("cannot check the attached sets: {e}"),
        }
    }

    /// Runs stop commands that are due at `now`.
    pub fn tick(&mut self, now: Duration) {
        self.scheduler.run_due(now, &mut self.spawner);
    }

    /// When the next stop command is due.
    pub fn next_due(&self) -> Option<Duration> {
        self.scheduler.next_due()
    }

    /// Hands every pending stop command to the runner (pending grants are flushed first by the
    /// caller, which knows the config).
    pub fn shutdown(&mut self) {
        let stops = self.scheduler.pending();
        if stops > 0 {
            info!("running {stops} pending stop command(s) before exiting");
        }
        self.scheduler.drain(&mut self.spawner);
    }

    /// Stop commands waiting for their time.
    pub fn pending_stops(&self) -> usize {
        self.scheduler.pending()
    }

    /// Grants the firewall refused so far.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// The firewall backend.
    pub fn firewall(&self) -> &F {
        &self.firewall
    }

    /// The firewall backend, to change (tests break it on purpose).
    pub fn firewall_mut(&mut self) -> &mut F {
        &mut self.firewall
    }

    /// The command runner.
    pub fn spawner(&self) -> &S {
        &self.spawner
    }

    /// The command runner, to wait for at exit.
    pub fn into_spawner(self) -> S {
        self.spawner
    }
}

/// The pending grants as elements, grouped by set, each (set, address) once with the longest
/// timeout asked for. Grants with no set for their address's family are logged and dropped.
fn by_set(config: &Config, pending: Vec<Pending>) -> Vec<Vec<(Pending, Element)>> {
    let mut groups: Vec<Vec<(Pending, Element)>> = Vec::new();
    for p in pending {
        let Some(element) = element(config, &p) else {
            warn!(
                "{}: {}: the door has no set for this address family; not granted",
                config.doors[p.door].name, p.addr
            );
            continue;
        };
        let same_set = |g: &&mut Vec<(Pending, Element)>| {
            let e = &g[0].1;
            (e.family, &e.table, &e.set) == (element.family, &element.table, &element.set)
        };
        match groups.iter_mut().find(same_set) {
            Some(group) => match group.iter_mut().find(|(_, e)| e.addr == element.addr) {
                Some((_, e)) => e.timeout = e.timeout.max(element.timeout),
                None => group.push((p, element)),
            },
            None => groups.push(vec![(p, element)]),
        }
    }
    groups
}

fn log_grant(door: &Door, p: &Pending, element: &Element) {
    let timeout = humantime::format_duration(element.timeout);
    let by = p.by.as_ref().map_or_else(String::new, |key| format!(" (key {key})"));
    match door.open.as_ref().filter(|o| o.attach.is_none()) {
        Some(open) => {
            let ports = open.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
            info!("{}: {}: granted {ports} for {timeout}{by}", door.name, p.addr);
        }
        None => info!(
            "{}: {}: added to set {} {} {} for {timeout}{by}",
            door.name, p.addr, element.family, element.table, element.set
        ),
    }
}

/// The set element that grants `p`; `None` for an attach door without a set for the address's
/// family.
fn element(config: &Config, p: &Pending) -> Option<Element> {
    let door = &config.doors[p.door];
    let open = door.open.as_ref()?;
    let (family, table, set) = match &open.attach {
        None => (TableFamily::Inet, config.table.clone(), set_name(&door.name, Family::of(&p.addr))),
        Some(a) => {
            let set = if p.addr.is_ipv4() { a.ipv4.as_ref() } else { a.ipv6.as_ref() }?;
            (a.family, a.table.clone(), set.clone())
        }
    };
    Some(Element { family, table, set, addr: p.addr, timeout: open.timeout })
}
