//! Doors: the proofs a client gives, checked. One folder per kind of proof.
//!
//! Contract: a door kind ([`DoorKind`]) owns its state and its secrets. It says which ports it
//! needs captured, takes parsed packets to those ports, and returns what happened as data
//! ([`Outcomes`]): grants, and notes for the log and the counters. Time and storage are
//! arguments of every call (smoltcp's `poll(timestamp, ...)`): a [`Clock`] read once by the
//! caller, and the [`Store`] its files are read and written through. On reload it takes over
//! what carries over from the kind it replaces. It never touches the firewall, the clock, a
//! file or the network: the engine routes packets to kinds by port and commits their grants.
//!
//! A kind of door is one folder here: its settings and how knockd.yaml writes them (the config
//! half, [`crate::config::ProofSettings`] and [`ReadYaml`]), its description ([`Kind`]: its
//! counters, how to build it, what `knockd check` warns about across doors, a config file
//! language of its own), and its doors at run time ([`DoorKind`]). The rest of the program
//! loops over [`KINDS`] and never names one. A new kind is one folder and one line in
//! `kinds!` below (with its `mod` line); DEVELOPERS.md, "Adding a door kind", says how.
//!
//! Kinds: [`sequence`] (knock sequences: fixed, one-time files, rotating secrets; one attempt
//! table with a cap for all of them), [`spa`] (single-packet authorization), [`fwknop`]
//! (fwknop's clients' single packets), [`datagram`] (the example: one datagram with a fixed
//! payload). Shared by kinds: [`budget`] (fair verification budget),
//! [`replay`] (replay caches and their journals), [`key_file`], [`single_packet`] (the run
//! time of SPA and fwknop: screen, budget, check, verdicts).

pub mod budget;
pub mod datagram;
pub mod fwknop;
pub mod key_file;
mod kind;
pub mod replay;
pub mod sequence;
pub mod single_packet;
pub mod spa;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::time::Duration;

pub use kind::{CarryOver, Counter, DoorKind, Kind, Measure, ReadYaml, Reading};
use kind::{ReadFn, kinds};

use crate::config::{Config, PortProto};
use crate::store::Store;

kinds! {
    sequence::SequenceKind,
    spa::SpaKind,
    fwknop::FwknopKind,
    datagram::DatagramKind,
}

/// The time of one call, read once by the caller: kinds are given it, never read it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    /// Monotonic time, from any origin the caller keeps: attempts, budgets, due times.
    pub mono: Duration,
    /// The time of day, since the Unix epoch: timestamps in proofs, rotating steps.
    pub unix: Duration,
    /// When this host booted, as Unix time (zero: unknown): proofs timestamped before it are
    /// refused, since a crash of the host may have lost what was written of them without a
    /// sync.
    pub boot: Duration,
}

impl Clock {
    /// A clock at monotonic `mono` and Unix time `unix`, the boot time unknown.
    pub fn new(mono: Duration, unix: Duration) -> Self {
        Clock { mono, unix, boot: Duration::ZERO }
    }
}

/// Monotonic time alone, the time of day at the epoch: for callers whose doors never read the
/// time of day (knock sequences in tests and benchmarks).
impl From<Duration> for Clock {
    fn from(mono: Duration) -> Self {
        Clock { mono, ..Clock::default() }
    }
}

/// Index of a door in the configuration's door list.
pub type DoorId = usize;

/// A client proved itself to a door: the engine opens it for `addr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The door to open.
    pub door: DoorId,
    /// Who gets in: the packet's source, or the address an SPA packet names.
    pub addr: IpAddr,
    /// Where the proof came from.
    pub src: IpAddr,
    /// Where the proof was sent.
    pub dst: IpAddr,
    /// Who vouched for it, as log lines and `knockd status` say it (`key alice`, `admin uid 0`);
    /// `None` for knock sequences.
    pub by: Option<String>,
    /// The ports the client asked for (fwknop); empty: what the door opens.
    pub ports: Vec<PortProto>,
    /// How long, when the proof says (a client's timeout); `None`: the door's `open.timeout`.
    pub timeout: Option<Duration>,
    /// When the client sent it, in seconds since the Unix epoch, when the proof says.
    pub sent_at: Option<u64>,
}

impl Grant {
    /// A grant for `addr` that asks for nothing but what the door opens.
    pub fn new(door: DoorId, addr: IpAddr, src: IpAddr, dst: IpAddr) -> Self {
        Grant { door, addr, src, dst, by: None, ports: Vec::new(), timeout: None, sent_at: None }
    }
}

/// What happened to an attempt, for the log (rate-limited) and the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs, reason = "each variant's doc names its fields")]
pub enum Note {
    /// `src` has `stage` of the door's `of` knocks in order.
    Stage { door: DoorId, src: IpAddr, stage: usize, of: usize },
    /// An out-of-order knock ended `src`'s attempt.
    Restart { door: DoorId, src: IpAddr },
    /// `src`'s attempt ran past the door's `seq_timeout`, with `stage` of `of` knocks.
    TimedOut { door: DoorId, src: IpAddr, stage: usize, of: usize },
    /// A packet from `src` to one of the door's ports did not count, and why (logged at debug).
    Ignored { door: DoorId, src: IpAddr, why: &'static str },
    /// A single-packet authorization from `src` was accepted (the grant follows); its kind
    /// counts it, the log leaves it to the grant's line.
    Accepted { door: DoorId, src: IpAddr },
    /// A packet from `src` to a kind's port was refused, and why.
    Rejected { door: Option<DoorId>, src: IpAddr, reason: String },
    /// A door changed while running (a one-time sequence used up, say), said at `level`.
    Changed { door: DoorId, level: log::Level, message: String },
}

/// Everything a kind reports from one call.
#[derive(Debug, Default)]
pub struct Outcomes {
    /// Doors to open.
    pub grants: Vec<Grant>,
    /// What happened on the way, for the log and the counters.
    pub notes: Vec<Note>,
    /// The kind's ports changed: the capture filter must follow.
    pub ports_changed: bool,
}

/// Why the doors could not be set up: a file that cannot be read, a key that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("door {door}: {message}")]
pub struct DoorError {
    /// The door's name.
    pub door: String,
    /// What is wrong, and how to fix it.
    pub message: String,
}

/// The kinds the config uses, with every file they need read from `store`: all or nothing.
pub fn build(config: &Config, store: &mut dyn Store) -> Result<Vec<Box<dyn DoorKind>>, DoorError> {
    let mut kinds = Vec::new();
    for kind in KINDS {
        kinds.extend(kind.build(config, store)?);
    }
    Ok(kinds)
}

/// The counters single-packet kinds share (SPA and fwknop): packets accepted and refused.
pub static SPA_ACCEPTED: Counter =
    Counter::new("spa_accepted", Measure::Total, "Single packets (SPA and fwknop) that passed every check.").always();

/// See [`SPA_ACCEPTED`].
pub static SPA_REJECTED: Counter = Counter::new(
    "spa_rejected",
    Measure::Total,
    "Single packets (SPA and fwknop) refused by a check; the log says which.",
)
.always();

/// Single packets accepted and refused, counted from the notes a kind reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct Verdicts {
    accepted: u64,
    rejected: u64,
}

impl Verdicts {
    /// Counts the accepted and rejected packets among `notes`.
    pub fn count(&mut self, notes: &[Note]) {
        for note in notes {
            match note {
                Note::Accepted { .. } => self.accepted += 1,
                Note::Rejected { .. } => self.rejected += 1,
                _ => {}
            }
        }
    }

    /// The two readings ([`SPA_ACCEPTED`], [`SPA_REJECTED`]).
    pub fn readings(&self) -> [Reading; 2] {
        [
            Reading { counter: &SPA_ACCEPTED, value: self.accepted },
            Reading { counter: &SPA_REJECTED, value: self.rejected },
        ]
    }
}
