//! The engine's counters: its own, and its door kinds', whose running totals are kept across
//! reloads (a reload builds new kinds).

use std::collections::HashMap;

use super::Engine;
use crate::doors::DoorKind;
use crate::grant::Firewall;
use crate::grant::legacy_command::Spawner;
use crate::packet::Drop;

/// Counters an admin can read to see what the daemon sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets that passed the kernel filter.
    pub packets: u64,
    /// Packets dropped before matching, by [`Drop::index`].
    pub dropped: [u64; Drop::ALL.len()],
    /// Doors opened.
    pub opens: u64,
    /// Attempts ended by an out-of-order knock.
    pub restarts: u64,
    /// Attempts that ran past their door's `seq_timeout`.
    pub timeouts: u64,
    /// Grants the firewall refused.
    pub grant_errors: u64,
    /// Single-packet authorizations accepted.
    pub spa_accepted: u64,
    /// Datagrams to SPA ports rejected.
    pub spa_rejected: u64,
}

impl<F: Firewall, S: Spawner> Engine<F, S> {
    /// The engine's counters.
    pub fn stats(&self) -> Stats {
        Stats { grant_errors: self.granter.errors(), ..self.stats }
    }

    /// Every counter by name, the kinds' own included, in a stable order.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let s = self.stats();
        let mut out = vec![
            ("packets", s.packets),
            ("opens", s.opens),
            ("restarts", s.restarts),
            ("timeouts", s.timeouts),
            ("attempts", self.attempts() as u64),
            ("grant_errors", s.grant_errors),
            ("pending_stops", self.pending_stops() as u64),
            ("commands_refused", self.granter.scheduler().refused()),
            ("commands_merged", self.granter.scheduler().merged()),
            ("spa_accepted", s.spa_accepted),
            ("spa_rejected", s.spa_rejected),
        ];
        let start = out.len();
        for kind in &self.kinds {
            kind.counters(&mut out);
        }
        for (name, value) in &mut out[start..] {
            *value += self.carried.get(name).copied().unwrap_or(0);
        }
        out
    }
}

/// The kinds' running totals by name (gauges left out: they are not summed across reloads).
pub(super) fn totals(kinds: &[Box<dyn DoorKind>]) -> HashMap<&'static str, u64> {
    let mut counters = Vec::new();
    for kind in kinds {
        kind.counters(&mut counters);
    }
    let mut totals = HashMap::new();
    for (name, value) in counters.into_iter().filter(|(name, _)| !crate::control::prometheus::GAUGES.contains(name)) {
        *totals.entry(name).or_default() += value;
    }
    totals
}
