//! From a door's grant to set elements and commands, and the retry policy around them.

use std::time::Duration;

use log::{debug, error, info, warn};

use super::attach::{AttachError, check_attached_sets};
use super::legacy_command::{Scheduler, Spawner, Vars};
use super::nft::{Family, Ruleset, set_name};
use super::{Element, Firewall, FirewallError};
use crate::config::{Config, Door, PortProto, TableFamily};
use crate::doors::Grant;

/// Commits grants: set elements through the firewall, commands through the spawner.
pub struct Granter<F: Firewall, S: Spawner> {
    firewall: F,
    spawner: S,
    /// Pending stop commands; outlives reloads.
    scheduler: Scheduler,
    /// The table the daemon installed, if any (so a reload to a config without nftables doors
    /// still replaces it, and a rename removes the old one).
    table: Option<String>,
    /// Grants waiting for the next firewall commit.
    pending: Vec<Grant>,
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

    /// Opens `door` for the grant: queues its set elements, runs its start command.
    pub fn open(&mut self, door: &Door, grant: &Grant, now: Duration) {
        if door.open.is_some() {
            self.pending.push(grant.clone());
        }
        let vars = Vars {
            ip: grant.addr,
            pkt_src: Some(grant.src),
            dst: Some(grant.dst),
            port: grant.ports.first().copied(),
            timeout: grant.timeout,
            sent_at: grant.sent_at,
        };
        self.scheduler.open(door, vars, now, &mut self.spawner);
    }

    /// Commits every grant since the last flush: one transaction per set, each element once,
    /// so one set's failure never costs another set's grants. A set that has gone with the
    /// daemon's own table is put back and tried once more. Returns how many grants went in.
    pub fn flush(&mut self, config: &Config) -> usize {
        if self.pending.is_empty() {
            return 0;
        }
        // The same source opening the same door twice in a round is one grant: the later one.
        let mut seen = std::collections::HashSet::new();
        let mut pending: Vec<Grant> = std::mem::take(&mut self.pending)
            .into_iter()
            .rev()
            .filter(|g| seen.insert((g.door, g.addr, g.ports.clone())))
            .collect();
        pending.reverse();
        let wanted: Vec<Vec<Element>> = pending.iter().map(|g| elements(config, g)).collect();
        let mut failed: Vec<(TableFamily, String, String)> = Vec::new();
        for set in by_set(wanted.iter().flatten()) {
            let mut result = self.firewall.add_elements(&set);
            if matches!(result, Err(FirewallError::NotFound { .. })) && self.table.as_deref() == Some(&set[0].table) {
                // Someone removed our table or a set: put it back and try once more.
                self.verify(config);
                result = self.firewall.add_elements(&set);
            }
            if let Err(e) = result {
                error!("cannot grant access to {} source(s): {e}", set.len());
                failed.push((set[0].family, set[0].table.clone(), set[0].set.clone()));
            }
        }
        let mut granted = 0;
        for (grant, elements) in pending.iter().zip(&wanted) {
            let ok = !elements.is_empty()
                && elements.iter().all(|e| !failed.contains(&(e.family, e.table.clone(), e.set.clone())));
            if ok {
                log_grant(&config.doors[grant.door], grant, elements);
                granted += 1;
            } else if !elements.is_empty() {
                self.errors += 1;
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

/// Elements grouped by set, each (set, address, port) once with the longest timeout asked for.
fn by_set<'a>(elements: impl Iterator<Item = &'a Element>) -> Vec<Vec<Element>> {
    let mut groups: Vec<Vec<Element>> = Vec::new();
    for element in elements {
        let same_set = |g: &&mut Vec<Element>| {
            let e = &g[0];
            (e.family, &e.table, &e.set) == (element.family, &element.table, &element.set)
        };
        match groups.iter_mut().find(same_set) {
            Some(group) => match group.iter_mut().find(|e| (e.addr, e.port) == (element.addr, element.port)) {
                Some(e) => e.timeout = e.timeout.max(element.timeout),
                None => group.push(element.clone()),
            },
            None => groups.push(vec![element.clone()]),
        }
    }
    groups
}

fn log_grant(door: &Door, grant: &Grant, elements: &[Element]) {
    let timeout = humantime::format_duration(elements[0].timeout);
    let by = grant.by.as_ref().map_or_else(String::new, |key| format!(" (key {key})"));
    let Some(open) = door.open.as_ref() else { return };
    let list = |ports: &mut dyn Iterator<Item = PortProto>| ports.map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
    match &open.attach {
        None if open.per_port => {
            info!(
                "{}: {}: granted {} for {timeout}{by}",
                door.name,
                grant.addr,
                list(&mut elements.iter().filter_map(|e| e.port))
            )
        }
        None => {
            info!("{}: {}: granted {} for {timeout}{by}", door.name, grant.addr, list(&mut open.ports.iter().copied()))
        }
        Some(_) => {
            let e = &elements[0];
            info!("{}: {}: added to set {} {} {} for {timeout}{by}", door.name, grant.addr, e.family, e.table, e.set)
        }
    }
}

/// The set elements that grant `grant`: one for the address, or (a per-port door) one per
/// port asked for. None for an attach door without a set for the address's family, or a
/// per-port grant that asked for no port.
fn elements(config: &Config, grant: &Grant) -> Vec<Element> {
    let door = &config.doors[grant.door];
    let Some(open) = door.open.as_ref() else { return Vec::new() };
    let (family, table, set) = match &open.attach {
        None => (TableFamily::Inet, config.table.clone(), set_name(&door.name, Family::of(&grant.addr))),
        Some(a) => match if grant.addr.is_ipv4() { a.ipv4.as_ref() } else { a.ipv6.as_ref() } {
            Some(set) => (a.family, a.table.clone(), set.clone()),
            None => {
                warn!("{}: {}: the door has no set for this address family; not granted", door.name, grant.addr);
                return Vec::new();
            }
        },
    };
    let timeout = grant.timeout.unwrap_or(open.timeout);
    let element = |port| Element { family, table: table.clone(), set: set.clone(), addr: grant.addr, port, timeout };
    if open.per_port { grant.ports.iter().map(|p| element(Some(*p))).collect() } else { vec![element(None)] }
}
