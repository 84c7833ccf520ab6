//! The engine's side of coexistence: it keeps what the host's other firewalls do with each
//! door's ports current (at start, on reload, when another table changes, when interfaces or
//! addresses change), says in the log when that changes, and lets the OPEN line say when a
//! grant will still be dropped.

use log::{info, warn};

use super::Engine;
use crate::grant::Firewall;
use crate::grant::coexist::{self, DoorAnswer, HostView};
use crate::grant::host::Answer;
use crate::grant::legacy_command::Spawner;
use crate::log_lines;

impl<F: Firewall, S: Spawner> Engine<F, S> {
    /// What the engine knows of the host besides its firewall; works the answers out again
    /// when it changed.
    pub fn set_host_view(&mut self, view: HostView) {
        if view != self.host_view {
            self.host_view = view;
            self.reassess();
        }
    }

    /// Reads the host's ruleset and works out again what it does with each door's ports;
    /// logs each answer that changed (a drop as a warning, "cannot tell" as a note).
    pub fn reassess(&mut self) {
        let ruleset = match self.granter.firewall_mut().host_ruleset() {
            Ok(r) => r,
            Err(e) => return warn!("{}", log_lines::cannot_read_host_ruleset(&e)),
        };
        let answers = coexist::assess(&self.config, &ruleset, &self.host_view);
        for a in &answers {
            if self.coexist.contains(a) {
                continue;
            }
            match &a.answer {
                Answer::Accepted => {
                    let was = self.coexist.iter().any(|b| same_subject(a, b) && b.answer.is_dropped());
                    if was {
                        info!("{}", log_lines::host_lets_in(&a.subject()));
                    }
                }
                Answer::Dropped(_) | Answer::DroppedFor(..) => {
                    warn!("{}", log_lines::host_drops(&a.subject(), &a.answer));
                }
                Answer::CannotTell { .. } => {
                    let was = self.coexist.iter().any(|b| same_subject(a, b) && b.answer.is_dropped());
                    info!("{}", log_lines::host_cannot_tell(&a.subject(), &a.answer, was));
                }
            }
        }
        self.coexist = answers;
    }

    /// The answers for every door's ports, as last worked out.
    pub fn coexistence(&self) -> &[DoorAnswer] {
        &self.coexist
    }

    /// The tables doors attach to (family, name): someone else's changes to their sets' elements
    /// matter.
    pub fn watched_tables(&self) -> Vec<(u8, String)> {
        let mut out: Vec<(u8, String)> = self
            .config
            .doors
            .iter()
            .filter_map(|d| d.open.as_ref()?.attach.as_ref())
            .map(|a| (a.family.nfproto(), a.table.clone()))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

fn same_subject(a: &DoorAnswer, b: &DoorAnswer) -> bool {
    (&a.door, a.port, a.family, &a.interface) == (&b.door, b.port, b.family, &b.interface)
}
