//! From a door's grant to set elements and commands, and the retry policy around them; the
//! ruleset they go into is kept in place by [`upkeep`].

mod upkeep;

use upkeep::clear;

use std::net::IpAddr;
use std::time::Duration;

use log::{debug, error, info};

use super::ledger::{Entry, Key, Ledger};
use super::legacy_command::{Scheduler, Spawner, Vars};
use super::nft::Ruleset;
use super::refill::Refill;
use super::sets::{SetRef, by_set, door_sets, elements, opens};
use super::{Element, Firewall, FirewallError};
use crate::config::{Config, TableFamily};
use crate::doors::Grant;
use crate::log_lines;

/// A grant that was made: what the log line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// The grant.
    pub grant: Grant,
    /// What the firewall opened: `22/tcp, 443/tcp`, or the attached set; `None` for a door
    /// that only runs commands.
    pub opens: Option<String>,
    /// For how long.
    pub timeout: Duration,
}

/// What a grant's commands' placeholders stand for.
fn vars(grant: &Grant) -> Vars {
    Vars {
        ip: grant.addr,
        pkt_src: Some(grant.src),
        dst: Some(grant.dst),
        port: grant.ports.first().copied(),
        timeout: grant.timeout,
        sent_at: grant.sent_at,
    }
}

/// Commits grants: set elements through the firewall, commands through the spawner.
pub struct Granter<F: Firewall, S: Spawner> {
    firewall: F,
    spawner: S,
    /// Pending stop commands; outlives reloads.
    scheduler: Scheduler,
    /// What the daemon installed last, if anything (so a reload to a config without nftables
    /// doors still removes it, and a rename or a move into fw4 removes the old objects).
    installed: Option<Ruleset>,
    /// fw4's table was found missing (fw4 stopped or restarting): said once.
    absent: bool,
    /// Grants waiting for the next firewall commit.
    pending: Vec<Grant>,
    /// The attached set last reported missing, so the report is not repeated every check.
    missing_attached: Option<(String, String)>,
    /// Grants the firewall refused.
    errors: u64,
    /// Live grants, to log when they end and to say who opened them.
    ledger: Ledger,
    /// Puts grants back into sets that someone else's reload emptied.
    refill: Refill,
    /// Grants whose commands run once their OPEN lines are logged.
    commands_due: Vec<Grant>,
    /// Sets found full, said once each until they take elements again.
    full: std::collections::HashSet<SetRef>,
    /// The owner of an attached table reloaded it since the last refill.
    owner_reloaded: bool,
}

impl<F: Firewall, S: Spawner> Granter<F, S> {
    /// Installs the config's ruleset, or, when no door guards a port in knockd's own table,
    /// removes a table an earlier run left: a guard no door accounts for would keep a port shut.
    pub fn start(config: &Config, mut firewall: F, spawner: S) -> Result<Self, FirewallError> {
        let ruleset = Ruleset::for_config(config);
        // An earlier run may have lived in the other place (a table of its own, or inside fw4):
        // what it left there goes in the same transaction.
        let other = ruleset.elsewhere();
        let installed = if ruleset.is_empty() {
            clear(&mut firewall, &ruleset, "an earlier run")?;
            clear(&mut firewall, &other, "an earlier run")?;
            None
        } else {
            firewall.install(&ruleset, Some(&other))?;
            info!("{}", log_lines::installed(&ruleset.describe()));
            Some(ruleset)
        };
        let mut granter = Granter {
            firewall,
            spawner,
            scheduler: Scheduler::default(),
            installed,
            absent: false,
            pending: Vec::new(),
            missing_attached: None,
            errors: 0,
            ledger: Ledger::default(),
            refill: Refill::default(),
            full: Default::default(),
            commands_due: Vec::new(),
            owner_reloaded: false,
        };
        granter.adopt(config, Duration::ZERO);
        Ok(granter)
    }

    /// Enters the grants already in the kernel (a restart keeps the sets) in the ledger at
    /// `now`, so that their end is logged too and status counts them.
    fn adopt(&mut self, config: &Config, now: Duration) {
        for door in &config.doors {
            for (family, table, set) in door_sets(config, door) {
                let found = match self.firewall.list_elements(family, &table, &set) {
                    Ok(found) => found,
                    Err(e) => {
                        debug!("{}", log_lines::cannot_read_grants(&set, &e));
                        continue;
                    }
                };
                // Elements without a timeout are an admin's own (attach mode): they never end.
                for e in found {
                    if let (Some(timeout), Some(left)) = (e.timeout, e.expires) {
                        let key = Key { door: door.name.clone(), addr: e.addr, port: e.port };
                        self.ledger.adopt(key, e.comment, timeout, left, now);
                    }
                }
            }
        }
    }

    /// Queues the grant for the next [`flush`](Granter::flush), which commits its set
    /// elements and runs its commands.
    pub fn open(&mut self, grant: &Grant) {
        self.pending.push(grant.clone());
    }

    /// Commits every grant since the last flush at `now`, each once: the same source opening
    /// the same door twice in a round is one grant (the later one), so one log line and one
    /// command. Set elements go in one transaction per set, each element once, so one set's
    /// failure never costs another set's grants; a set that has gone with the daemon's own
    /// table is put back and tried once more. Then the doors' commands run. Returns the grants
    /// that were made.
    pub fn flush(&mut self, config: &Config, now: Duration) -> Vec<Granted> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let mut seen = std::collections::HashSet::new();
        let mut pending: Vec<Grant> = std::mem::take(&mut self.pending)
            .into_iter()
            .rev()
            .filter(|g| seen.insert((g.door, g.addr, g.ports.clone())))
            .collect();
        pending.reverse();
        let mut granted = self.commit(config, &pending, now);
        for grant in pending {
            let door = &config.doors[grant.door];
            if !door.commands.is_empty() {
                self.commands_due.push(grant.clone());
            }
            if door.open.is_none() {
                let timeout = door.commands.cmd_timeout;
                granted.push(Granted { grant, opens: None, timeout });
            }
        }
        granted
    }

    /// Runs the commands of the grants the last [`flush`](Granter::flush) made: after their
    /// OPEN lines, as the classic knockd logged them.
    pub fn run_commands(&mut self, config: &Config, now: Duration) {
        for grant in std::mem::take(&mut self.commands_due) {
            self.scheduler.open(&config.doors[grant.door], vars(&grant), now, &mut self.spawner);
        }
    }

    /// The firewall's half of [`flush`](Granter::flush): the set elements of `pending`.
    fn commit(&mut self, config: &Config, pending: &[Grant], now: Duration) -> Vec<Granted> {
        let wanted: Vec<Vec<Element>> = pending.iter().map(|g| elements(config, g)).collect();
        let mut failed: Vec<(TableFamily, String, String)> = Vec::new();
        // A live grant that lasts longer (an admin's `grant --for 1h`) is never cut short.
        let longer = |e: &Element| self.outlasts(config, e, now);
        let shorter: Vec<&Element> = wanted.iter().flatten().filter(|e| !longer(e)).collect();
        for set in by_set(shorter.into_iter()) {
            let mut result = self.firewall.add_elements(&set);
            let ours = self.installed.as_ref().is_some_and(|r| r.table == set[0].table);
            if matches!(result, Err(FirewallError::NotFound { .. })) && ours {
                // Someone removed our table or a set: put it back and try once more.
                self.verify(config, now, false);
                result = self.firewall.add_elements(&set);
            }
            let set_ref = (set[0].family, set[0].table.clone(), set[0].set.clone());
            match result {
                Err(FirewallError::Full { .. }) if !self.full.insert(set_ref.clone()) => failed.push(set_ref),
                Err(e) => {
                    error!("{}", log_lines::cannot_grant(set.len(), &e));
                    failed.push(set_ref);
                }
                Ok(()) if self.full.remove(&set_ref) => {
                    info!("{}", log_lines::set_has_room(&set_ref.0, &set_ref.1, &set_ref.2))
                }
                Ok(()) => {}
            }
        }
        let mut granted = Vec::new();
        for (grant, elements) in pending.iter().zip(&wanted) {
            let ok = !elements.is_empty()
                && elements.iter().all(|e| !failed.contains(&(e.family, e.table.clone(), e.set.clone())));
            if ok {
                granted.push(self.record(config, grant.clone(), elements, now));
            } else if !elements.is_empty() {
                self.errors += 1;
            }
        }
        granted
    }

    /// Whether the ledger holds a live grant for `e` that ends after `e` would.
    fn outlasts(&self, config: &Config, e: &Element, now: Duration) -> bool {
        let door =
            config.doors.iter().find(|d| door_sets(config, d).contains(&(e.family, e.table.clone(), e.set.clone())));
        let key = |d: &crate::config::Door| Key { door: d.name.clone(), addr: e.addr, port: e.port };
        door.and_then(|d| self.ledger.get(&key(d))).is_some_and(|entry| entry.until > now + e.timeout)
    }

    /// Enters a grant the firewall took in the ledger; a longer one that is live stays, and
    /// the line says how long the grant has in fact.
    fn record(&mut self, config: &Config, grant: Grant, elements: &[Element], now: Duration) -> Granted {
        let door = config.doors[grant.door].name.clone();
        let keys: Vec<Key> = elements.iter().map(|e| Key { door: door.clone(), addr: e.addr, port: e.port }).collect();
        let mut timeout = elements[0].timeout;
        for key in &keys {
            match self.ledger.get(key).map(|entry| entry.until.saturating_sub(now)) {
                Some(left) if left > elements[0].timeout => timeout = timeout.max(left),
                _ => self.ledger.record(key.clone(), grant.by.clone(), elements[0].timeout, now),
            }
        }
        let opens = match keys.as_slice() {
            [one] => opens(config, one),
            many => many.iter().map(|k| opens(config, k)).collect::<Vec<_>>().join(", "),
        };
        Granted { grant, opens: Some(opens), timeout }
    }

    /// Removes `addr`'s grants from the doors `door` names (all when `None`) at `now`, and runs
    /// their stop commands now. Returns what was removed.
    pub fn revoke(
        &mut self,
        config: &Config,
        addr: IpAddr,
        door: Option<&str>,
        now: Duration,
    ) -> Result<Vec<Key>, FirewallError> {
        let mut revoked = Vec::new();
        for d in config.doors.iter().filter(|d| door.is_none_or(|name| name == d.name)) {
            let mut gone = Vec::new();
            for (family, table, set) in door_sets(config, d) {
                let listed = match self.firewall.list_elements(family, &table, &set) {
                    Ok(listed) => listed,
                    // The set is not there (its owner is restarting): nothing to delete.
                    Err(FirewallError::NotFound { .. }) => Vec::new(),
                    Err(e) => return Err(e),
                };
                for e in listed.into_iter().filter(|e| e.addr == addr) {
                    let timeout = e.timeout.unwrap_or_default();
                    let (table, set) = (table.clone(), set.clone());
                    gone.push(Element { family, table, set, addr, port: e.port, timeout, comment: None });
                }
            }
            if !gone.is_empty() {
                self.firewall.delete_elements(&gone)?;
            }
            // The ledger's live grants go too, also those the kernel had lost already (an
            // owner's reload not yet refilled): the refill puts back what the ledger holds.
            let mut keys: Vec<Key> = gone.iter().map(|e| Key { door: d.name.clone(), addr, port: e.port }).collect();
            keys.extend(self.ledger.iter().map(|(k, _)| k).filter(|k| k.door == d.name && k.addr == addr).cloned());
            keys.sort();
            keys.dedup();
            for key in keys {
                self.ledger.remove(&key);
                revoked.push(key);
            }
            let stops = self.scheduler.run_now(&d.name, addr, now, &mut self.spawner);
            if stops > 0 && !revoked.iter().any(|k| k.door == d.name) {
                revoked.push(Key { door: d.name.clone(), addr, port: None });
            }
        }
        Ok(revoked)
    }

    /// Runs stop commands that are due at `now`; returns the grants that have ended.
    pub fn tick(&mut self, now: Duration) -> Vec<(Key, Entry)> {
        self.commands(now);
        self.ledger.ended(now)
    }

    /// Takes note of commands that have ended at `now`, and runs what is due or waiting.
    pub fn commands(&mut self, now: Duration) {
        self.scheduler.run(now, &mut self.spawner);
    }

    /// When the next stop command is due, or the next grant ends.
    pub fn next_due(&self) -> Option<Duration> {
        self.scheduler.next_due().into_iter().chain(self.ledger.next_due()).min()
    }

    /// Live grants, as the daemon made them.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Hands every pending stop command to the runner (pending grants are flushed first by the
    /// caller, which knows the config).
    pub fn shutdown(&mut self) {
        let stops = self.scheduler.pending();
        if stops > 0 {
            info!("{}", log_lines::stops_before_exit(stops));
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

    /// The command scheduler, for its counters.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
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
