//! Which door kinds see which packet: the routes by port and by capture lane, and what the
//! kinds report back (notes counted and logged within their budget, grants handed on).

use std::time::Duration;

use log::{debug, trace};

use super::{Engine, describe};
use crate::capture::{Lane, Ports};
use crate::doors::{Clock, Note, Outcomes};
use crate::grant::Firewall;
use crate::grant::legacy_command::Spawner;
use crate::log_lines;
use crate::packet::{self, Drop};

impl<F: Firewall, S: Spawner> Engine<F, S> {
    /// Which kinds listen on which port, from what each says it needs now.
    pub(super) fn route(&mut self) {
        self.routes.clear();
        let mut ports = Vec::new();
        for (i, kind) in self.kinds.iter().enumerate() {
            ports.clear();
            kind.ports(&mut ports);
            for port in &ports {
                let kinds = self.routes.entry(*port).or_default();
                if !kinds.contains(&i) {
                    kinds.push(i);
                }
            }
        }
        self.filter_changed = true;
    }

    /// Handles one captured packet (starting at its IP header) seen at `clock`, for every kind.
    pub fn packet(&mut self, bytes: &[u8], clock: impl Into<Clock>) {
        self.route_packet(None, bytes, clock.into());
    }

    /// Handles one packet captured on `lane`'s socket: only that lane's kinds see it (a port
    /// both lanes capture arrives once on each).
    pub fn packet_in(&mut self, lane: Lane, bytes: &[u8], clock: impl Into<Clock>) {
        self.route_packet(Some(lane), bytes, clock.into());
    }

    fn route_packet(&mut self, lane: Option<Lane>, bytes: &[u8], clock: Clock) {
        self.stats.packets += 1;
        let now = clock.mono;
        self.now = self.now.max(now);
        // Routed by the ports of the packet's own time: a rotating door's next step first.
        if self.next_wall_due().is_some_and(|due| due <= clock.unix) {
            self.tick_kinds(&clock);
        }
        let packet = match packet::parse(bytes) {
            Ok(packet) => packet,
            Err(reason) => {
                self.stats.dropped[reason.index()] += 1;
                return trace!("{}", log_lines::dropped_packet(&reason));
            }
        };
        trace!("{}", log_lines::knock_on(packet.knock.src, &packet.knock.port));
        if self.local.as_ref().is_some_and(|local| !local.contains(&packet.knock.dst)) {
            self.stats.dropped[Drop::NotForThisHost.index()] += 1;
            // Within the knock lines' budget, which says first what it left out.
            if self.log_budget.may_log(now) {
                debug!("{}", log_lines::not_to_this_host(packet.knock.src, packet.knock.dst));
            }
            return;
        }
        let Some(kinds) = self.routes.get(&packet.knock.port) else { return };
        let mut outcomes = std::mem::take(&mut self.outcomes);
        for &i in kinds {
            if lane.is_none_or(|l| self.kinds[i].lane() == l) {
                self.kinds[i].packet(&packet, &clock, &mut *self.store, &mut outcomes);
            }
        }
        self.take(&mut outcomes, now);
        self.outcomes = outcomes;
    }

    /// Logs and counts what the kinds reported, and hands their grants on.
    pub(super) fn take(&mut self, outcomes: &mut Outcomes, now: Duration) {
        for note in outcomes.notes.drain(..) {
            self.note(note, now);
        }
        // Committed, logged and run by `flush`, each once.
        for grant in outcomes.grants.drain(..) {
            self.granter.open(&grant);
        }
        if std::mem::take(&mut outcomes.ports_changed) {
            self.route();
        }
    }

    /// Counts a note and logs it, within the budget of knock lines a second.
    fn note(&mut self, note: Note, now: Duration) {
        match &note {
            Note::Restart { .. } => self.stats.restarts += 1,
            Note::TimedOut { .. } => self.stats.timeouts += 1,
            // Counted by its kind; the grant's line says it.
            Note::Accepted { .. } => return,
            _ => {}
        }
        // Per-packet lines are rate-limited: a flood of spoofed knocks would otherwise be a
        // flood of log lines. Changes to a door are never held back.
        if !matches!(note, Note::Changed { .. }) && !self.log_budget.may_log(now) {
            return;
        }
        let names = &mut self.names;
        log_lines::note(&note, &self.config.doors, &mut |src| describe(names, src));
    }

    /// Every port the capture filters must pass, by lane.
    pub fn capture_ports(&self) -> Ports {
        let mut ports = Ports::default();
        for (port, kinds) in &self.routes {
            for lane in Lane::ALL {
                if kinds.iter().any(|&i| self.kinds[i].lane() == lane) {
                    match lane {
                        Lane::Knocks => ports.knocks.push(*port),
                        Lane::Datagrams => ports.datagrams.push(*port),
                    }
                }
            }
        }
        ports.knocks.sort();
        ports.datagrams.sort();
        ports
    }

    /// The kinds' housekeeping at `clock`, and what they report.
    pub(super) fn tick_kinds(&mut self, clock: &Clock) {
        let mut outcomes = std::mem::take(&mut self.outcomes);
        for kind in &mut self.kinds {
            kind.tick(clock, &mut *self.store, &mut outcomes);
        }
        self.take(&mut outcomes, clock.mono);
        self.outcomes = outcomes;
    }
}
