//! The engine's counters: its own, and its door kinds', whose running totals are kept across
//! reloads (a reload builds new kinds). Every counter is typed ([`Counter`]): a total or a
//! gauge, with the sentence that says what it counts.

use std::collections::HashMap;

use super::Engine;
use crate::doors::{self, Counter, DoorKind, Measure, Reading};
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
}

/// A counter of the engine's own.
const fn own(name: &'static str, measure: Measure, help: &'static str) -> Counter {
    Counter::new(name, measure, help).always()
}

/// Packets the capture handed over; the first of every list.
pub static PACKETS: Counter =
    own("packets", Measure::Total, "Packets the capture handed to the daemon (knocks and single packets).");
static OPENS: Counter =
    own("opens", Measure::Total, "Grants made: completed knocks, accepted single packets and admins' grants.");
static RESTARTS: Counter = own("restarts", Measure::Total, "Knock attempts restarted by a knock out of order.");
static TIMEOUTS: Counter = own("timeouts", Measure::Total, "Knock attempts that ran past their door's seq_timeout.");
static ATTEMPTS: Counter = own("attempts", Measure::Gauge, "Knock attempts in progress now.");
static GRANT_ERRORS: Counter =
    own("grant_errors", Measure::Total, "Grants the firewall refused; each is logged with the kernel's reason.");
static PENDING_STOPS: Counter =
    own("pending_stops", Measure::Gauge, "Stop commands of classic doors waiting for their cmd_timeout.");
static COMMANDS_REFUSED: Counter = own(
    "commands_refused",
    Measure::Total,
    "Completions whose start command was not run because 256 were already waiting (a flood, say).",
);
static COMMANDS_MERGED: Counter = own(
    "commands_merged",
    Measure::Total,
    "Completions whose start command was already waiting or running for the same source: run once.",
);

/// The engine's own counters, in the order they are listed.
const OWN: [&Counter; 9] = [
    &PACKETS,
    &OPENS,
    &RESTARTS,
    &TIMEOUTS,
    &ATTEMPTS,
    &GRANT_ERRORS,
    &PENDING_STOPS,
    &COMMANDS_REFUSED,
    &COMMANDS_MERGED,
];

/// Every counter the engine can report, its own and every kind's, each once.
pub fn descriptions() -> Vec<&'static Counter> {
    let mut all: Vec<&'static Counter> = OWN.to_vec();
    for counter in doors::KINDS.iter().flat_map(|k| k.counters()) {
        if !all.iter().any(|c| c.name == counter.name) {
            all.push(counter);
        }
    }
    all
}

impl<F: Firewall, S: Spawner> Engine<F, S> {
    /// The engine's counters.
    pub fn stats(&self) -> Stats {
        Stats { grant_errors: self.granter.errors(), ..self.stats }
    }

    /// Every counter, the kinds' own included (summed over kinds that share one, running totals
    /// kept across reloads), in a stable order: [`PACKETS`] first.
    pub fn counters(&self) -> Vec<Reading> {
        let s = self.stats();
        let values = [
            s.packets,
            s.opens,
            s.restarts,
            s.timeouts,
            self.attempts() as u64,
            s.grant_errors,
            self.pending_stops() as u64,
            self.granter.scheduler().refused(),
            self.granter.scheduler().merged(),
        ];
        let mut out: Vec<Reading> =
            OWN.iter().zip(values).map(|(&counter, value)| Reading { counter, value }).collect();
        let shown = doors::KINDS.iter().flat_map(|k| k.counters()).filter(|c| c.always);
        let kinds = readings(&self.kinds).into_iter().chain(shown.map(|&counter| Reading { counter, value: 0 }));
        for reading in kinds {
            let carried = match reading.counter.measure {
                Measure::Total => self.carried.get(reading.counter.name).copied().unwrap_or(0),
                Measure::Gauge => 0,
            };
            match out.iter_mut().find(|r| r.counter.name == reading.counter.name) {
                Some(r) => r.value += reading.value,
                None => out.push(Reading { value: reading.value + carried, ..reading }),
            }
        }
        out
    }

    /// The value of the counter named `name` (zero if the engine has none by that name).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters().iter().find(|r| r.counter.name == name).map_or(0, |r| r.value)
    }
}

/// Every reading of `kinds`.
fn readings(kinds: &[Box<dyn DoorKind>]) -> Vec<Reading> {
    let mut out = Vec::new();
    for kind in kinds {
        kind.counters(&mut out);
    }
    out
}

/// The kinds' running totals by name (gauges left out: they are not summed across reloads).
pub(super) fn totals(kinds: &[Box<dyn DoorKind>]) -> HashMap<&'static str, u64> {
    let mut totals = HashMap::new();
    for r in readings(kinds).into_iter().filter(|r| r.counter.measure == Measure::Total) {
        *totals.entry(r.counter.name).or_default() += r.value;
    }
    totals
}
