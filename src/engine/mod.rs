//! The engine: routes each captured packet to the door kinds that listen on its port, logs what
//! they report, and commits their grants. It knows no kind by name.
//!
//! The firewall and the command runner are traits, so the whole path from bytes to set
//! elements and commands is tested with in-memory stand-ins, without root.

mod admin;
mod coexist;
mod counters;
mod routes;

pub use admin::door_status;
use counters::totals;
pub use counters::{PACKETS, Stats, descriptions as counter_descriptions};

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use log::info;

use crate::config::{Config, PortProto};
use crate::doors::{self, Clock, DoorError, DoorKind, Outcomes};
use crate::grant::attach::AttachError;
use crate::grant::legacy_command::Spawner;
use crate::grant::{Firewall, FirewallError, Granter};
use crate::log_lines::{self, Flood};
use crate::rate_limit::LogBudget;
use crate::store::{FileStore, Store};

/// Stage, restart and timeout log lines per second; the rest are counted and summarized.
const STAGE_LINES_PER_SECOND: u32 = 200;
/// Grant lines (OPEN, closed again) per second: a flood of spoofed completions would
/// otherwise be a flood of them; the rest are counted and summarized.
const GRANT_LINES_PER_SECOND: u32 = 100;

/// Why the engine could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The firewall refused the ruleset.
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    /// An attached set is missing or unusable.
    #[error(transparent)]
    Attach(#[from] AttachError),
    /// A door's file or key cannot be used.
    #[error(transparent)]
    Door(#[from] DoorError),
}

/// The packet path of the daemon, generic over its firewall and its command runner.
pub struct Engine<F: Firewall, S: Spawner> {
    config: Config,
    kinds: Vec<Box<dyn DoorKind>>,
    /// For each captured port, the kinds that listen on it.
    routes: HashMap<PortProto, Vec<usize>>,
    granter: Granter<F, S>,
    stats: Stats,
    outcomes: Outcomes,
    filter_changed: bool,
    /// How addresses read in log lines (`--lookup` adds host names); `None`: addresses only.
    names: Option<Naming>,
    log_budget: LogBudget,
    grant_log: LogBudget,
    /// Totals of the kinds' counters from before reloads (a reload builds new kinds).
    carried: HashMap<&'static str, u64>,
    /// This host's addresses: packets to any other are not knocks. `None` until told.
    local: Option<HashSet<IpAddr>>,
    /// The latest time the engine was given (monotonic), for grants committed between calls.
    now: Duration,
    /// What the host's other firewalls do with each door's ports (`coexist.rs`).
    coexist: Vec<crate::grant::coexist::DoorAnswer>,
    /// The interfaces and addresses those answers are for.
    host_view: crate::grant::coexist::HostView,
    /// Where the kinds read their files and keep what must survive a restart.
    store: Box<dyn Store>,
}

impl<F: Firewall, S: Spawner> Engine<F, S> {
    /// Reads every file the doors need and checks attached sets, then installs the ruleset:
    /// a start that fails leaves no table behind. The kinds keep their state in the files the
    /// config names, read with the running user's trust ([`Engine::start_with_store`] says
    /// otherwise).
    pub fn start(config: Config, firewall: F, spawner: S) -> Result<Self, EngineError> {
        Engine::start_with_store(config, firewall, spawner, Box::new(FileStore::default()))
    }

    /// [`Engine::start`], with the kinds' files read and written through `store`.
    pub fn start_with_store(
        config: Config,
        firewall: F,
        spawner: S,
        mut store: Box<dyn Store>,
    ) -> Result<Self, EngineError> {
        let mut firewall = firewall;
        crate::grant::attach::check_attached_sets(&config, &mut firewall)?;
        let kinds = doors::build(&config, &mut *store)?;
        let granter = Granter::start(&config, firewall, spawner)?;
        warn_inactive(&config);
        let mut engine = Engine {
            config,
            kinds,
            routes: HashMap::new(),
            granter,
            stats: Stats::default(),
            outcomes: Outcomes::default(),
            filter_changed: false,
            names: None,
            log_budget: LogBudget::new(STAGE_LINES_PER_SECOND, Flood::Knocks),
            grant_log: LogBudget::new(GRANT_LINES_PER_SECOND, Flood::Grants),
            carried: HashMap::new(),
            local: None,
            now: Duration::ZERO,
            coexist: Vec::new(),
            host_view: Default::default(),
            store,
        };
        engine.route();
        engine.reassess();
        Ok(engine)
    }

    /// Writes addresses in log lines with `naming` (the daemon's `--lookup` adds host names,
    /// looked up in the background): the engine never waits for, nor knows of, DNS.
    pub fn with_names(mut self, naming: Naming) -> Self {
        self.names = Some(naming);
        self
    }

    /// Switches to `config`. The new ruleset replaces the old one in one transaction; if the
    /// firewall refuses it or a door's file cannot be read, the old config stays in force.
    /// Attempts on doors that did not change survive, and pending stop commands always do.
    pub fn reconfigure(&mut self, config: Config) -> Result<(), EngineError> {
        self.flush();
        self.granter.check_attached(&config)?;
        let mut kinds = doors::build(&config, &mut *self.store)?;
        self.granter.reconfigure(&config)?;
        let before = totals(&self.kinds);
        for kind in &mut kinds {
            if let Some(i) = self.kinds.iter().position(|old| kind.same_kind(&**old)) {
                kind.carry_from(self.kinds.swap_remove(i));
            }
        }
        // Totals survive a reload: what the new kinds did not take over is carried here.
        let after = totals(&kinds);
        for (name, value) in before {
            *self.carried.entry(name).or_default() += value.saturating_sub(after.get(name).copied().unwrap_or(0));
        }
        self.kinds = kinds;
        self.config = config;
        self.route();
        warn_inactive(&self.config);
        self.reassess();
        Ok(())
    }

    /// This host's own addresses, as they are now: only packets to one of them are knocks.
    pub fn set_local_addresses(&mut self, addresses: &HashSet<IpAddr>) {
        self.local = Some(addresses.clone());
    }

    /// Commits every grant since the last flush, each once (in one firewall transaction per
    /// set), runs their commands, and logs each (within the budget of lines a second).
    /// Returns how many the firewall took.
    pub fn flush(&mut self) -> usize {
        let granted = self.granter.flush(&self.config, self.now);
        self.stats.opens += granted.len() as u64;
        for g in &granted {
            if !self.grant_log.may_log(self.now) {
                continue;
            }
            let (door, who) = (&self.config.doors[g.grant.door].name, describe(&mut self.names, g.grant.addr));
            let door = door.as_str();
            let provenance = log_lines::provenance(&g.grant);
            let line = match &g.opens {
                Some(opens) => {
                    let caveat = crate::grant::coexist::caveat(&self.coexist, door, g.grant.addr).unwrap_or_default();
                    log_lines::open(door, &who, opens, g.timeout, &caveat, &provenance)
                }
                None => log_lines::open_command(door, &who, &provenance),
            };
            info!(event = log_lines::event::OPEN, door, src = who; "{line}");
        }
        self.granter.run_commands(&self.config, self.now);
        granted.iter().filter(|g| g.opens.is_some()).count()
    }

    /// A table doors attach to was reloaded by its owner (its rules or sets changed): sets it
    /// emptied get their live grants back at the next [`verify`](Engine::verify).
    pub fn note_owner_reload(&mut self) {
        self.granter.note_owner_reload();
    }

    /// Checks that the daemon's nftables objects are still there, and puts them back if not.
    ///
    /// `others`: another table changed (a firewall reloaded); live grants go back into sets
    /// its reload emptied (see [`note_owner_reload`](Engine::note_owner_reload)) or made
    /// again, and what the host's firewalls do with the doors' ports is worked out again.
    pub fn verify(&mut self, others: bool) {
        self.granter.verify(&self.config, self.now, others);
        if others {
            self.reassess();
        }
    }

    /// Housekeeping at `clock`: runs due stop commands, forgets attempts that can no longer
    /// complete, and brings the kinds to the time of day (a rotating door's next step).
    pub fn tick(&mut self, clock: impl Into<Clock>) {
        let clock = clock.into();
        let now = clock.mono;
        self.now = self.now.max(now);
        for (key, entry) in self.granter.tick(now) {
            if !self.grant_log.may_log(now) {
                continue;
            }
            let who = describe(&mut self.names, key.addr);
            let opens = crate::grant::sets::opens(&self.config, &key);
            info!("{}", log_lines::closed_again(&key.door, &who, &opens, entry.timeout));
        }
        // A flood that has stopped still gets its summary, of knock lines as of grant lines.
        self.log_budget.say_left_out(now);
        self.grant_log.say_left_out(now);
        self.tick_kinds(&clock);
        self.flush();
    }

    /// A command has ended (the runner's descriptor woke the caller): its stop command is due
    /// `cmd_timeout` from `now`, and a waiting command may start.
    pub fn commands(&mut self, now: Duration) {
        self.now = self.now.max(now);
        self.granter.commands(now);
    }

    /// When the next stop command or deferred door work is due, so the caller can wake up in time.
    pub fn next_due(&self) -> Option<Duration> {
        self.kinds.iter().filter_map(|k| k.next_due()).chain(self.granter.next_due()).min()
    }

    /// When a kind's proofs next change by the time of day (Unix time): tick then.
    pub fn next_wall_due(&self) -> Option<Duration> {
        self.kinds.iter().filter_map(|k| k.next_wall_due()).min()
    }

    /// Commits pending grants and hands every pending stop command to the runner.
    pub fn shutdown(&mut self) {
        self.flush();
        self.granter.shutdown();
    }

    /// Whether the captured ports changed since the last call (the capture filter must follow).
    pub fn take_filter_changed(&mut self) -> bool {
        std::mem::take(&mut self.filter_changed)
    }

    /// The running config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The firewall backend.
    pub fn firewall(&self) -> &F {
        self.granter.firewall()
    }

    /// The firewall backend, to change (tests break it on purpose).
    pub fn firewall_mut(&mut self) -> &mut F {
        self.granter.firewall_mut()
    }

    /// The command runner.
    pub fn spawner(&self) -> &S {
        self.granter.spawner()
    }

    /// The command runner, to wait for at exit.
    pub fn into_spawner(self) -> S {
        self.granter.into_spawner()
    }

    /// Stop commands waiting for their time.
    pub fn pending_stops(&self) -> usize {
        self.granter.pending_stops()
    }

    /// Attempts in progress, across every kind.
    pub fn attempts(&self) -> usize {
        self.kinds.iter().map(|k| k.attempts()).sum()
    }
}

/// How an address reads in log lines: `198.18.0.2`, or with its host name (`--lookup`).
pub type Naming = Box<dyn FnMut(IpAddr) -> String>;

/// How a source appears in log lines: with its host name once known (`--lookup`).
fn describe(names: &mut Option<Naming>, src: IpAddr) -> String {
    match names {
        Some(name) => name(src),
        None => src.to_string(),
    }
}

fn warn_inactive(config: &Config) {
    for notice in &config.notices {
        log::log!(notice.level, "{}", notice.message);
    }
    for warning in config.doors.iter().flat_map(crate::config::Door::warnings) {
        log::warn!("{warning}");
    }
    for door in &config.doors {
        if door.open.is_none() && door.commands.is_empty() {
            log::warn!("{}", log_lines::does_nothing(&door.name));
        }
    }
}
