//! What the single-packet kinds (SPA, fwknop) share at run time, in one place: a datagram is
//! screened by the checks that cost nothing, waits its turn for its expensive check (a
//! signature, HMACs) in a budget shared fairly between source prefixes ([`super::budget`]),
//! and is then checked by its kind, which writes what must survive a restart (its replay
//! entry) before it grants; every verdict is counted ([`super::SPA_ACCEPTED`], [`super::SPA_REJECTED`]).
//! A kind brings its screen, its check and its replay cache ([`Checks`]); [`Doors`] runs them.

use std::net::IpAddr;
use std::time::Duration;

use super::budget::Budget;
use super::{Clock, Counter, DoorId, DoorKind, Grant, Note, Outcomes, Reading, Verdicts};
use crate::capture::Lane;
use crate::config::{PortProto, Proto};
use crate::packet::{Knock, Packet};
use crate::store::Store;

/// A kind's reason to refuse a packet.
pub trait Reason: std::fmt::Display {
    /// Authentic, but what must survive a restart could not be written: said as an error, never
    /// held back by the log's rate limit, as the admin must fix the directory.
    fn unrecorded(&self) -> bool;
}

/// A packet that passed the screen, waiting for its expensive check.
pub struct Waiting<T> {
    /// Where it came from.
    pub src: IpAddr,
    /// Where it was sent.
    pub dst: IpAddr,
    /// What the kind keeps of it for its check.
    pub packet: T,
}

/// A screened packet, as the budget takes it.
pub struct Screened<T> {
    /// What the kind keeps of it for its check.
    pub packet: T,
    /// What tells copies of it apart ([`super::budget::tag`]).
    pub tag: u64,
    /// What its check costs; 0: about what the screen did, so it need not wait.
    pub cost: u32,
}

/// What a single-packet kind brings: its doors, their screen and check, and their replay cache.
pub trait Checks: Sized + 'static {
    /// What the kind keeps of a packet for its check.
    type Packet;
    /// Why it refuses a packet.
    type Error: Reason;
    /// How log lines name its packets: `SPA`, `fwknop`.
    const NAME: &'static str;
    /// Its counter of expensive checks run.
    const CHECKED: &'static Counter;
    /// Its counter of packets left unchecked because their source network's share was spent.
    const DROPPED: &'static Counter;

    /// Appends the UDP ports its doors take packets on.
    fn ports(&self, out: &mut Vec<PortProto>);

    /// The checks that cost nothing, for a datagram with `payload`: what waits for the check,
    /// or the refusal to report.
    fn screen(&self, knock: &Knock, payload: &[u8], clock: &Clock) -> Result<Screened<Self::Packet>, Note>;

    /// The expensive check of a packet whose turn it is: the grant, once what must survive a
    /// restart is in `store`; or which door refused it (if one did) and why.
    fn check(
        &mut self,
        waiting: &Waiting<Self::Packet>,
        clock: &Clock,
        store: &mut dyn Store,
    ) -> Result<Grant, (Option<DoorId>, Self::Error)>;

    /// Housekeeping at `clock`: the replay cache forgets what is too old to be replayed.
    fn expire(&mut self, clock: &Clock, store: &mut dyn Store, out: &mut Outcomes);

    /// After a reload: takes over the replay cache of `old`, so a packet accepted before stays
    /// refused after.
    fn carry_over(&mut self, old: Self);
}

/// A single-packet kind's doors at run time: the kind's checks, the packets waiting for them,
/// and the verdicts counted.
pub struct Doors<K: Checks> {
    checks: K,
    budget: Budget<Waiting<K::Packet>>,
    ready: Vec<Waiting<K::Packet>>,
    verdicts: Verdicts,
}

impl<K: Checks> Doors<K> {
    /// `checks` within `budget`.
    pub fn new(checks: K, budget: Budget<Waiting<K::Packet>>) -> Self {
        Doors { checks, budget, ready: Vec::new(), verdicts: Verdicts::default() }
    }

    /// Screens the packet, then hands it to the budget; the budget says what may be checked
    /// now (this packet, or others that waited). Refusals are reported, never answered.
    fn screen_and_check(&mut self, packet: &Packet<'_>, clock: &Clock, store: &mut dyn Store, out: &mut Outcomes) {
        let knock = &packet.knock;
        if knock.port.proto != Proto::Udp {
            return;
        }
        let src = knock.src;
        let Some(payload) = packet.payload else {
            let reason = format!("{} packet cut short", K::NAME);
            return out.notes.push(Note::Rejected { door: None, src, reason });
        };
        match self.checks.screen(knock, payload, clock) {
            Ok(Screened { packet, tag, cost }) => {
                let waiting = Waiting { src, dst: knock.dst, packet };
                if cost == 0 {
                    self.ready.push(waiting);
                } else {
                    self.budget.offer(src, waiting, tag, cost, clock.mono, &mut self.ready);
                }
                self.run_ready(clock, store, out);
            }
            Err(note) => out.notes.push(note),
        }
    }

    /// Checks the packets whose turn it is.
    fn run_ready(&mut self, clock: &Clock, store: &mut dyn Store, out: &mut Outcomes) {
        for w in std::mem::take(&mut self.ready) {
            match self.checks.check(&w, clock, store) {
                Ok(grant) => {
                    out.notes.push(Note::Accepted { door: grant.door, src: w.src });
                    out.grants.push(grant);
                }
                Err((Some(door), e)) if e.unrecorded() => {
                    let message = format!("{}: {} packet {e}", w.src, K::NAME);
                    out.notes.push(Note::Changed { door, level: log::Level::Error, message });
                }
                Err((door, e)) => {
                    let reason = format!("{} packet rejected: {e}", K::NAME);
                    out.notes.push(Note::Rejected { door, src: w.src, reason });
                }
            }
        }
    }
}

impl<K: Checks> DoorKind for Doors<K> {
    fn ports(&self, out: &mut Vec<PortProto>) {
        self.checks.ports(out);
    }

    /// A socket of its own: a flood of forged datagrams never crowds out knocks.
    fn lane(&self) -> Lane {
        Lane::Datagrams
    }

    /// Screens and checks the packet, and counts what was accepted and refused.
    fn packet(&mut self, packet: &Packet<'_>, clock: &Clock, store: &mut dyn Store, out: &mut Outcomes) {
        let before = out.notes.len();
        self.screen_and_check(packet, clock, store, out);
        self.verdicts.count(&out.notes[before..]);
    }

    fn tick(&mut self, clock: &Clock, store: &mut dyn Store, out: &mut Outcomes) {
        let before = out.notes.len();
        self.budget.poll(clock.mono, &mut self.ready);
        self.run_ready(clock, store, out);
        self.verdicts.count(&out.notes[before..]);
        self.checks.expire(clock, store, out);
    }

    fn next_due(&self) -> Option<Duration> {
        self.budget.next_due()
    }

    fn carry_over(&mut self, old: Self) {
        self.checks.carry_over(old.checks);
    }

    fn counters(&self, out: &mut Vec<Reading>) {
        let stats = self.budget.stats();
        out.extend(self.verdicts.readings());
        out.extend([
            Reading { counter: K::CHECKED, value: stats.run },
            Reading { counter: K::DROPPED, value: stats.dropped },
        ]);
    }
}
