//! From packets to actions: parse, match, log, then grant through the firewall, run legacy
//! commands, and move one-time doors on to their next sequence.
//!
//! The firewall and the command runner are traits, so the whole path from bytes to set
//! elements and commands is tested with in-memory stand-ins, without root.

use std::net::IpAddr;
use std::time::Duration;

use log::{debug, error, info, trace, warn};

use crate::config::{Config, PortProto, Proto, Sequence, TableFamily};
use crate::firewall::{Element, Firewall, FirewallError, KEY_IPV4, KEY_IPV6};
use crate::legacy_command::{Scheduler, Spawner};
use crate::matcher::{DoorId, Event, Matcher, MatcherStats};
use crate::names::Names;
use crate::rate_limit::{LogBudget, Verdict};
use crate::rotating;
use crate::spa::{SpaError, Verifier};

/// Stage, restart and timeout log lines per second; the rest are counted and summarized.
const STAGE_LINES_PER_SECOND: u32 = 200;
use crate::nft::{Family, Ruleset, set_name};
use crate::one_time::{self, OneTimeError};
use crate::wire::{self, Drop};

/// Counters an admin can read to see what the daemon sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets that passed the kernel filter.
    pub packets: u64,
    /// Packets dropped before matching, by [`Drop::index`].
    pub dropped: [u64; Drop::ALL.len()],
    pub opens: u64,
    pub restarts: u64,
    pub timeouts: u64,
    /// Grants the firewall refused.
    pub grant_errors: u64,
    /// Single-packet authorizations accepted, and datagrams to SPA ports rejected.
    pub spa_accepted: u64,
    pub spa_rejected: u64,
    pub matcher: MatcherStats,
}

/// Why the engine could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error("door {door}: {message}")]
    AttachSet { door: String, message: String },
    #[error("door {door}: {message}")]
    Key { door: String, message: String },
    #[error("door {door}: {source}")]
    OneTime {
        door: String,
        #[source]
        source: OneTimeError,
    },
}

/// A completed knock waiting for the next firewall commit.
#[derive(Debug, Clone, Copy)]
struct Pending {
    door: DoorId,
    src: IpAddr,
}

/// The packet path of the daemon, generic over its firewall and its command runner.
pub struct Engine<F: Firewall, S: Spawner> {
    config: Config,
    matcher: Matcher,
    firewall: F,
    spawner: S,
    /// Pending stop commands; outlives reloads.
    scheduler: Scheduler,
    /// Whether this engine has put a ruleset in place (so a reload to a config without
    /// nftables doors still replaces it).
    installed: bool,
    events: Vec<Event>,
    pending: Vec<Pending>,
    stats: Stats,
    filter_changed: bool,
    /// Host names for log lines (`--lookup`); `None` logs addresses only.
    names: Option<Names>,
    /// The attached set last reported missing, so the report is not repeated every check.
    missing_attached: Option<(String, String)>,
    log_budget: LogBudget,
    /// Per door: its SPA verifier, if it has `spa:`.
    spa: Vec<Option<Verifier>>,
    /// Per door: the secret of its rotating sequence, and the step its slots were set for.
    rotating: Vec<Option<(Vec<u8>, Option<u64>)>>,
    /// Seconds since the Unix epoch, as last told by [`Engine::set_wall_clock`].
    unix_now: Duration,
}

impl<F: Firewall, S: Spawner> Engine<F, S> {
    /// Installs the config's ruleset, loads one-time sequences, then starts matching.
    pub fn start(config: Config, mut firewall: F, spawner: S) -> Result<Self, EngineError> {
        // Everything that reads a file or asks the kernel comes first: a start that fails
        // leaves no table behind.
        check_attached_sets(&config, &mut firewall)?;
        let matcher = matcher_for(&config)?;
        let (spa, rotating) = secrets_for(&config)?;
        let ruleset = Ruleset::for_config(&config);
        if !ruleset.is_empty() {
            firewall.install(&ruleset)?;
        }
        warn_inactive(&config);
        Ok(Engine {
            matcher,
            config,
            firewall,
            spawner,
            scheduler: Scheduler::default(),
            installed: !ruleset.is_empty(),
            events: Vec::new(),
            pending: Vec::new(),
            stats: Stats::default(),
            filter_changed: false,
            names: None,
            missing_attached: None,
            log_budget: LogBudget::new(STAGE_LINES_PER_SECOND),
            spa,
            rotating,
            unix_now: Duration::ZERO,
        })
    }

    /// Shows host names next to addresses in log lines, looked up in the background.
    pub fn with_lookup(mut self) -> Self {
        self.names = Some(Names::default());
        self
    }

    /// How a source appears in log lines.
    fn who(&mut self, src: IpAddr) -> String {
        match &mut self.names {
            Some(names) => names.describe(src),
            None => src.to_string(),
        }
    }

    /// Switches to `config`. The new ruleset replaces the old one in one transaction; if the
    /// firewall refuses it or a one-time file cannot be read, the old config stays in force.
    /// Attempts on doors that did not change survive, and pending stop commands always do.
    pub fn reconfigure(&mut self, config: Config) -> Result<(), EngineError> {
        self.flush();
        check_attached_sets(&config, &mut self.firewall)?;
        let mut matcher = matcher_for(&config)?;
        let (spa, rotating) = secrets_for(&config)?;
        let ruleset = Ruleset::for_config(&config);
        if self.installed || !ruleset.is_empty() {
            self.firewall.install(&ruleset)?;
            self.installed = true;
        }
        let old = std::mem::replace(&mut self.matcher, Matcher::new(&[], 1));
        matcher.carry_over(old);
        self.matcher = matcher;
        self.config = config;
        self.spa = spa;
        self.rotating = rotating;
        self.rotate();
        self.filter_changed = true;
        warn_inactive(&self.config);
        Ok(())
    }

    /// Handles one captured packet (starting at its IP header) seen at `now`.
    pub fn packet(&mut self, packet: &[u8], now: Duration) {
        self.stats.packets += 1;
        let knock = match wire::parse(packet) {
            Ok(knock) => knock,
            Err(reason) => {
                self.stats.dropped[reason.index()] += 1;
                trace!("dropped a packet: {reason}");
                return;
            }
        };
        trace!("{}: knock on {}", knock.src, knock.port);
        if knock.port.proto == Proto::Udp && self.spa_port(knock.port.port) {
            return self.spa_packet(packet, knock.src, knock.port.port, now);
        }
        let mut events = std::mem::take(&mut self.events);
        self.matcher.knock(&knock, now, &mut events);
        for event in events.drain(..) {
            self.on_event(event, now);
        }
        self.events = events;
    }

    fn on_event(&mut self, event: Event, now: Duration) {
        let (door, src) = match event {
            Event::Stage { door, src, .. }
            | Event::Restart { door, src }
            | Event::TimedOut { door, src }
            | Event::Open { door, src, .. } => (door, src),
        };
        match event {
            Event::Restart { .. } => self.stats.restarts += 1,
            Event::TimedOut { .. } => self.stats.timeouts += 1,
            _ => {}
        }
        // Stage lines are rate-limited (a flood of spoofed knocks would otherwise be a flood of
        // log lines); OPEN lines never are.
        if !matches!(event, Event::Open { .. }) {
            match self.log_budget.check(now) {
                Verdict::Suppress => return,
                Verdict::LogAfterSuppressed(n) => info!("{n} knock log lines left out in the last seconds (flood?)"),
                Verdict::Log => {}
            }
        }
        let who = self.who(src);
        let name = &self.config.doors[door].name;
        match event {
            Event::Stage { stage, of, .. } => info!("{name}: {who}: stage {stage} of {of}"),
            Event::Restart { .. } => debug!("{name}: {who}: knock out of order, sequence restarted"),
            Event::TimedOut { .. } => info!("{name}: {who}: sequence timed out"),
            Event::Open { slot, .. } => {
                info!("{name}: {who}: OPEN");
                if matches!(self.config.doors[door].sequence, Sequence::Rotating(_)) {
                    // Used once: not again while it is valid (the slot is reused two steps on).
                    self.matcher.set_sequence(slot, Vec::new());
                    self.filter_changed = true;
                }
                self.open(door, src, now);
            }
        }
    }

    fn open(&mut self, id: DoorId, src: IpAddr, now: Duration) {
        self.stats.opens += 1;
        let door = &self.config.doors[id];
        if door.open.is_some() {
            self.pending.push(Pending { door: id, src });
        }
        self.scheduler.open(door, src, now, &mut self.spawner);
        if let Sequence::OneTime(path) = &door.sequence {
            let path = path.clone();
            self.next_one_time_sequence(id, &path);
        }
    }

    fn spa_port(&self, port: u16) -> bool {
        self.config.doors.iter().any(|d| d.spa.as_ref().is_some_and(|s| s.port == port))
    }

    /// A datagram to an SPA port: every door listening there checks it; the first that
    /// accepts it grants. Rejections are counted and logged (rate-limited), never answered.
    fn spa_packet(&mut self, packet: &[u8], src: IpAddr, port: u16, now: Duration) {
        let Some(payload) = wire::udp_payload(packet) else { return };
        let mut reason = None;
        for id in 0..self.config.doors.len() {
            let door = &self.config.doors[id];
            if door.spa.as_ref().is_none_or(|s| s.port != port) {
                continue;
            }
            let Some(verifier) = self.spa[id].as_mut() else { continue };
            match verifier.verify(payload, &door.name, self.unix_now) {
                Ok(request) => {
                    let addr = request.address.unwrap_or(src);
                    if !door.admits(&src) || !door.admits(&addr) {
                        reason = Some(format!(
                            "{}: {src}: SPA packet for {addr} refused by the door's from/not_from",
                            door.name
                        ));
                        continue;
                    }
                    self.stats.spa_accepted += 1;
                    let who = self.who(addr);
                    info!("{}: {who}: OPEN (single-packet authorization from {src})", self.config.doors[id].name);
                    return self.open(id, addr, now);
                }
                Err(SpaError::OtherDoor) => {}
                Err(e) => reason = Some(format!("{}: {src}: SPA packet rejected: {e}", door.name)),
            }
        }
        self.stats.spa_rejected += 1;
        if let Some(reason) = reason {
            if self.log_budget.check(now) != Verdict::Suppress {
                info!("{reason}");
            }
        }
    }

    /// Told the time of day (seconds since the Unix epoch) by the caller, the engine moves
    /// rotating doors on to their current and previous steps' sequences.
    pub fn set_wall_clock(&mut self, unix_now: Duration) {
        self.unix_now = unix_now;
        self.rotate();
    }

    fn rotate(&mut self) {
        for id in 0..self.config.doors.len() {
            let Sequence::Rotating(r) = &self.config.doors[id].sequence else { continue };
            let Some((secret, set_for)) = self.rotating[id].as_mut() else { continue };
            let now = rotating::counter(self.unix_now, r.step);
            if *set_for == Some(now) {
                continue;
            }
            // Slot `counter % 2` holds that step's sequence. Moving on by one step only replaces
            // the slot of the step before last, so attempts on the previous step's sequence carry on.
            let slots = self.matcher.slots_of(id);
            let stale = set_for.is_none_or(|was| now != was + 1);
            for counter in [now, now.saturating_sub(1)] {
                if counter == now || stale {
                    let slot = slots.start + (counter % 2) as usize;
                    self.matcher
                        .set_sequence(slot, rotating::sequence(secret, &self.config.doors[id].name, counter, r));
                }
            }
            *set_for = Some(now);
            self.filter_changed = true;
        }
    }

    /// Every port the capture filter must pass: knock ports and SPA ports.
    pub fn capture_ports(&self) -> Vec<PortProto> {
        let mut ports = self.matcher.knock_ports();
        ports.extend(self.config.doors.iter().filter_map(|d| d.spa.as_ref()).map(|s| PortProto::udp(s.port)));
        ports.sort();
        ports.dedup();
        ports
    }

    /// Marks the sequence just used and switches the door to the next one, or disables it.
    fn next_one_time_sequence(&mut self, id: DoorId, path: &std::path::Path) {
        let name = self.config.doors[id].name.clone();
        let slot = self.matcher.slots_of(id).start;
        let used = self.matcher.sequence(slot).to_vec();
        let next = one_time::mark_used(path, &used).and_then(|marked| {
            if !marked {
                warn!("{name}: the used sequence is no longer in {}; nothing to mark", path.display());
            }
            one_time::current(path)
        });
        let sequence = match next {
            Ok(Some(sequence)) => {
                info!("{name}: next one-time sequence loaded");
                sequence
            }
            Ok(None) => {
                warn!("{name}: no more one-time sequences in {}: door disabled", path.display());
                Vec::new()
            }
            Err(e) => {
                error!("{name}: {e}: door disabled");
                Vec::new()
            }
        };
        self.matcher.set_sequence(slot, sequence);
        self.filter_changed = true;
    }

    /// Commits every grant since the last flush in one firewall transaction.
    /// Returns how many were granted.
    pub fn flush(&mut self) -> usize {
        if self.pending.is_empty() {
            return 0;
        }
        let mut granted_to = Vec::with_capacity(self.pending.len());
        let mut elements = Vec::with_capacity(self.pending.len());
        for p in &self.pending {
            match self.element(p) {
                Some(element) => {
                    granted_to.push(*p);
                    elements.push(element);
                }
                None => warn!(
                    "{}: {}: the door has no set for this address family; not granted",
                    self.config.doors[p.door].name, p.src
                ),
            }
        }
        let mut result = self.firewall.add_elements(&elements);
        if matches!(&result, Err(FirewallError::Netlink { source, .. }) if source.raw_os_error() == Some(libc::ENOENT))
        {
            // Someone removed our table or a set: put it back and try once more.
            self.verify();
            result = self.firewall.add_elements(&elements);
        }
        let granted = match result {
            Ok(()) => {
                for (p, element) in granted_to.iter().zip(&elements) {
                    let door = &self.config.doors[p.door];
                    let timeout = humantime::format_duration(element.timeout);
                    match door.open.as_ref().filter(|o| o.attach.is_none()) {
                        Some(open) => {
                            let ports = open.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
                            info!("{}: {}: granted {ports} for {timeout}", door.name, p.src);
                        }
                        None => info!(
                            "{}: {}: added to set {} {} {} for {timeout}",
                            door.name, p.src, element.family, element.table, element.set
                        ),
                    }
                }
                elements.len()
            }
            Err(e) => {
                self.stats.grant_errors += elements.len() as u64;
                error!("cannot grant access to {} source(s): {e}", elements.len());
                0
            }
        };
        self.pending.clear();
        granted
    }

    /// The set element that grants `p`; `None` for an attach door without a set for the
    /// source's address family.
    fn element(&self, p: &Pending) -> Option<Element> {
        let door = &self.config.doors[p.door];
        let open = door.open.as_ref()?;
        let (family, table, set) = match &open.attach {
            None => (TableFamily::Inet, self.config.table.clone(), set_name(&door.name, Family::of(&p.src))),
            Some(a) => {
                let set = if p.src.is_ipv4() { a.ipv4.as_ref() } else { a.ipv6.as_ref() }?;
                (a.family, a.table.clone(), set.clone())
            }
        };
        Some(Element { family, table, set, addr: p.src, timeout: open.timeout })
    }

    /// Checks that the table, sets and chain the daemon installed are still there, and puts
    /// them back if someone removed them (`nft flush ruleset`); grants they held are gone with
    /// them. Attached sets of the admin's are only reported: they are not ours to create.
    pub fn verify(&mut self) {
        if self.installed {
            let ruleset = Ruleset::for_config(&self.config);
            match ruleset_present(&mut self.firewall, &ruleset) {
                Ok(true) => {}
                Ok(false) => {
                    warn!("table inet {} (or part of it) was removed from outside: putting it back", ruleset.table);
                    match self.firewall.install(&ruleset) {
                        Ok(()) => info!("table inet {} restored", ruleset.table),
                        Err(e) => error!("cannot restore table inet {}: {e}", ruleset.table),
                    }
                }
                Err(e) => debug!("cannot check table inet {}: {e}", ruleset.table),
            }
        }
        match check_attached_sets(&self.config, &mut self.firewall) {
            Ok(()) => {
                if self.missing_attached.take().is_some() {
                    info!("the attached sets are all back");
                }
            }
            Err(EngineError::AttachSet { door, message }) => {
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

    /// Housekeeping at `now`: runs due stop commands, forgets attempts that can no longer complete.
    pub fn tick(&mut self, now: Duration) {
        self.scheduler.run_due(now, &mut self.spawner);
        self.matcher.expire(now);
    }

    /// When the next stop command is due, so the caller can wake up in time.
    pub fn next_due(&self) -> Option<Duration> {
        self.scheduler.next_due()
    }

    /// Commits pending grants and hands every pending stop command to the runner.
    pub fn shutdown(&mut self) {
        self.flush();
        let stops = self.scheduler.pending();
        if stops > 0 {
            info!("running {stops} pending stop command(s) before exiting");
        }
        self.scheduler.drain(&mut self.spawner);
    }

    /// Whether the knock ports changed since the last call (the capture filter must follow).
    pub fn take_filter_changed(&mut self) -> bool {
        std::mem::take(&mut self.filter_changed)
    }

    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn firewall(&self) -> &F {
        &self.firewall
    }

    pub fn firewall_mut(&mut self) -> &mut F {
        &mut self.firewall
    }

    pub fn spawner(&self) -> &S {
        &self.spawner
    }

    pub fn into_spawner(self) -> S {
        self.spawner
    }

    /// Stop commands waiting for their time.
    pub fn pending_stops(&self) -> usize {
        self.scheduler.pending()
    }

    /// Attempts in progress.
    pub fn attempts(&self) -> usize {
        self.matcher.len()
    }

    pub fn stats(&self) -> Stats {
        Stats { matcher: self.matcher.stats(), ..self.stats }
    }
}

/// A matcher for `config`, with each one-time door on its first unused sequence.
fn matcher_for(config: &Config) -> Result<Matcher, EngineError> {
    let mut matcher = Matcher::new(&config.doors, config.max_attempts);
    for (id, door) in config.doors.iter().enumerate() {
        if let Sequence::OneTime(path) = &door.sequence {
            let current =
                one_time::current(path).map_err(|source| EngineError::OneTime { door: door.name.clone(), source })?;
            if current.is_none() {
                warn!("{}: no unused sequence left in {}: door disabled", door.name, path.display());
            }
            let slot = matcher.slots_of(id).start;
            matcher.set_sequence(slot, current.unwrap_or_default());
        }
    }
    Ok(matcher)
}

/// Per door: the SPA verifier and the rotating secret, read from their files.
type Secrets = (Vec<Option<Verifier>>, Vec<Option<(Vec<u8>, Option<u64>)>>);

fn secrets_for(config: &Config) -> Result<Secrets, EngineError> {
    let mut spa = Vec::new();
    let mut rotating = Vec::new();
    for door in &config.doors {
        let key_error = |message: String| EngineError::Key { door: door.name.clone(), message };
        spa.push(door.spa.as_ref().map(Verifier::from_config).transpose().map_err(|e| key_error(e.to_string()))?);
        rotating.push(match &door.sequence {
            Sequence::Rotating(r) => {
                Some((rotating::read_secret(&r.secret_file).map_err(|e| key_error(e.to_string()))?, None))
            }
            _ => None,
        });
    }
    Ok((spa, rotating))
}

/// Whether every set and the chain of `ruleset` exist.
fn ruleset_present<F: Firewall>(firewall: &mut F, ruleset: &Ruleset) -> Result<bool, FirewallError> {
    for set in &ruleset.sets {
        if firewall.set_info(TableFamily::Inet, &ruleset.table, &set.name)?.is_none() {
            return Ok(false);
        }
    }
    firewall.chain_exists(TableFamily::Inet, &ruleset.table, crate::nft::CHAIN)
}

/// One set an attach-mode door adds to, and what is wrong with it, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedSet {
    pub door: String,
    /// `set inet filter knock_ssh4`
    pub set: String,
    pub problem: Option<String>,
}

/// Attach mode: every set a door names must exist, hold addresses of the right family, and
/// have `flags timeout`. Looks every one up (reading only) and reports on each.
pub fn attached_sets<F: Firewall>(config: &Config, firewall: &mut F) -> Result<Vec<AttachedSet>, FirewallError> {
    let mut reports = Vec::new();
    for door in &config.doors {
        let Some(attach) = door.open.as_ref().and_then(|o| o.attach.as_ref()) else { continue };
        let wanted = [(attach.ipv4.as_ref(), KEY_IPV4, "ipv4_addr"), (attach.ipv6.as_ref(), KEY_IPV6, "ipv6_addr")];
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
                Some(_) => None,
            };
            reports.push(AttachedSet { door: door.name.clone(), set, problem });
        }
    }
    Ok(reports)
}

/// The first problem with an attached set, as an error: the start (or reload) fails before
/// anything is applied.
fn check_attached_sets<F: Firewall>(config: &Config, firewall: &mut F) -> Result<(), EngineError> {
    match attached_sets(config, firewall)?.into_iter().find_map(|r| r.problem.map(|m| (r.door, m))) {
        Some((door, message)) => Err(EngineError::AttachSet { door, message }),
        None => Ok(()),
    }
}

fn warn_inactive(config: &Config) {
    for door in &config.doors {
        if door.open.is_none() && door.commands.is_empty() {
            warn!("{}: has neither `open` nor a command: completed knocks are only logged", door.name);
        }
    }
}
