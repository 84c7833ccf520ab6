//! From packets to grants: parse, match, log, and hand completed knocks to the firewall.
//!
//! No syscalls here beyond what the [`Firewall`] does, so the whole path from bytes to set
//! elements is tested with [`crate::firewall::MemoryFirewall`].

use std::net::IpAddr;
use std::time::Duration;

use log::{debug, error, info, trace};

use crate::config::{Config, Door};
use crate::firewall::{Element, Firewall, FirewallError};
use crate::matcher::{Event, Matcher, MatcherStats};
use crate::nft::{Family, Ruleset, set_name};
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
    pub matcher: MatcherStats,
}

/// A completed knock waiting for the next firewall commit.
#[derive(Debug, Clone, Copy)]
struct Pending {
    door: usize,
    src: IpAddr,
}

/// The packet path of the daemon, generic over its firewall.
pub struct Engine<F: Firewall> {
    config: Config,
    matcher: Matcher,
    firewall: F,
    events: Vec<Event>,
    pending: Vec<Pending>,
    stats: Stats,
}

impl<F: Firewall> Engine<F> {
    /// Installs the config's ruleset, then starts matching.
    pub fn start(config: Config, mut firewall: F) -> Result<Self, FirewallError> {
        firewall.install(&Ruleset::for_config(&config))?;
        Ok(Engine {
            matcher: Matcher::new(&config.doors, config.max_attempts),
            config,
            firewall,
            events: Vec::new(),
            pending: Vec::new(),
            stats: Stats::default(),
        })
    }

    /// Switches to `config`: the new ruleset replaces the old one in one transaction; if the
    /// firewall refuses it, the old config stays in force.
    pub fn reconfigure(&mut self, config: Config) -> Result<(), FirewallError> {
        self.flush();
        self.firewall.install(&Ruleset::for_config(&config))?;
        self.matcher = Matcher::new(&config.doors, config.max_attempts);
        self.config = config;
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
        let mut events = std::mem::take(&mut self.events);
        self.matcher.knock(&knock, now, &mut events);
        for event in events.drain(..) {
            self.on_event(event);
        }
        self.events = events;
    }

    fn on_event(&mut self, event: Event) {
        let name = |door: usize| self.config.doors[door].name.as_str();
        match event {
            Event::Stage {
                door,
                src,
                stage,
                of,
            } => info!("{}: {src}: stage {stage} of {of}", name(door)),
            Event::Restart { door, src } => {
                self.stats.restarts += 1;
                debug!(
                    "{}: {src}: knock out of order, sequence restarted",
                    name(door)
                );
            }
            Event::TimedOut { door, src } => {
                self.stats.timeouts += 1;
                info!("{}: {src}: sequence timed out", name(door));
            }
            Event::Open { door, src } => {
                self.stats.opens += 1;
                info!("{}: {src}: OPEN", name(door));
                self.pending.push(Pending { door, src });
            }
        }
    }

    /// Commits every grant since the last flush in one firewall transaction.
    /// Returns how many were granted.
    pub fn flush(&mut self) -> usize {
        if self.pending.is_empty() {
            return 0;
        }
        let elements: Vec<Element> = self.pending.iter().map(|p| self.element(p)).collect();
        let granted = match self.firewall.add_elements(&elements) {
            Ok(()) => {
                for p in &self.pending {
                    let door = &self.config.doors[p.door];
                    info!(
                        "{}: {}: granted {} for {}",
                        door.name,
                        p.src,
                        ports_text(door),
                        humantime::format_duration(door.open.timeout)
                    );
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

    fn element(&self, p: &Pending) -> Element {
        let door = &self.config.doors[p.door];
        Element {
            table: self.config.table.clone(),
            set: set_name(&door.name, Family::of(&p.src)),
            addr: p.src,
            timeout: door.open.timeout,
        }
    }

    /// Periodic housekeeping: forget attempts that can no longer complete.
    pub fn tick(&mut self, now: Duration) {
        self.matcher.expire(now);
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

    /// Attempts in progress.
    pub fn attempts(&self) -> usize {
        self.matcher.len()
    }

    pub fn stats(&self) -> Stats {
        Stats {
            matcher: self.matcher.stats(),
            ..self.stats
        }
    }
}

fn ports_text(door: &Door) -> String {
    door.open
        .ports
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
