//! What a kind of door is to the rest of the program (ripgrep's `Flag`): one description per
//! kind ([`Kind`], with [`ReadYaml`] for its keys of knockd.yaml and the config half in its
//! settings' [`crate::config::ProofSettings`]), one line per kind in the list (`kinds!` in
//! `doors/mod.rs`), and loops everywhere else. A built kind runs as a [`DoorKind`].

use std::any::Any;
use std::time::Duration;

use serde::de::MapAccess;

use super::{Clock, DoorError, Outcomes};
use crate::capture::Lane;
use crate::config::{Config, FormatReader, PortProto, Proof};
use crate::packet::Packet;
use crate::store::Store;

/// One kind of door, as the rest of the program sees it.
pub trait Kind: Sync {
    /// Its name: `sequence`, `spa`.
    fn name(&self) -> &'static str;

    /// Every counter its doors keep, with its type and what it counts.
    fn counters(&self) -> &'static [&'static Counter] {
        &[]
    }

    /// Its doors for `config`, with every file they need read from `store`: `None` when no
    /// door has this kind's proof.
    fn build(&self, config: &Config, store: &mut dyn Store) -> Result<Option<Box<dyn DoorKind>>, DoorError>;

    /// What `knockd check` warns about across the config's doors (two with the same sequence).
    fn warnings(&self, _config: &Config) -> Vec<String> {
        Vec::new()
    }

    /// The config file language it brings besides knockd.yaml, if any.
    fn format(&self) -> Option<&'static dyn FormatReader> {
        None
    }
}

/// How a kind reads its keys of a door in knockd.yaml. Generic over the YAML reader, so the
/// kind reads its settings with serde like any other value and errors keep their key path and
/// line; the kinds list hands it to the config reader.
pub trait ReadYaml {
    /// The door keys it reads: a door has at most one of them.
    const KEYS: &'static [&'static str];

    /// Reads the value of door `door`'s key `key` (one of [`KEYS`](ReadYaml::KEYS)).
    fn read<'de, A: MapAccess<'de>>(key: &str, door: &str, map: &mut A) -> Result<Proof, A::Error>;
}

/// Whether a counter only grows (and is summed across reloads) or goes up and down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// A running total: Prometheus' counter, `_total`.
    Total,
    /// A value now: Prometheus' gauge.
    Gauge,
}

/// A counter: its name in `knockd status` and the metrics, its type, and what it counts.
#[derive(Debug, PartialEq, Eq)]
pub struct Counter {
    /// `spa_verified`.
    pub name: &'static str,
    /// Total or gauge.
    pub measure: Measure,
    /// One sentence: the metrics' `# HELP` line (doc/status.md says the same).
    pub help: &'static str,
    /// Shown (as zero) even when no door keeps it: a counter several kinds share.
    pub always: bool,
}

impl Counter {
    /// A counter of one kind's doors: shown when a door keeps it.
    pub const fn new(name: &'static str, measure: Measure, help: &'static str) -> Counter {
        Counter { name, measure, help, always: false }
    }

    /// The same counter, shown (as zero) even when no door keeps it: one several kinds share,
    /// or the engine's and the daemon's own.
    pub const fn always(self) -> Counter {
        Counter { always: true, ..self }
    }
}

/// A counter's value now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Which counter.
    pub counter: &'static Counter,
    /// Its value.
    pub value: u64,
}

/// A built kind of door. See the module documentation of [`crate::doors`] for the contract.
pub trait DoorKind: CarryOver {
    /// Appends the ports this kind needs captured now.
    fn ports(&self, out: &mut Vec<PortProto>);

    /// The capture socket the kind's packets arrive on.
    fn lane(&self) -> Lane {
        Lane::Knocks
    }

    /// One packet to one of those ports, seen at `clock`; what must survive a restart is
    /// written to `store` before a grant is reported (a kind refuses what it cannot write).
    fn packet(&mut self, packet: &Packet<'_>, clock: &Clock, store: &mut dyn Store, out: &mut Outcomes);

    /// Housekeeping at `clock`: forget what can no longer complete, run deferred work, follow
    /// the time of day.
    fn tick(&mut self, _clock: &Clock, _store: &mut dyn Store, _out: &mut Outcomes) {}

    /// When the kind's proofs next change by the time of day (Unix time): the caller then
    /// ticks at once, so the capture filter follows on time (a rotating door's next step).
    fn next_wall_due(&self) -> Option<Duration> {
        None
    }

    /// When [`tick`](DoorKind::tick) next has deferred work to run, if it has any.
    fn next_due(&self) -> Option<Duration> {
        None
    }

    /// Attempts in progress.
    fn attempts(&self) -> usize {
        0
    }

    /// The kind's counters now (its [`Kind::counters`]).
    fn counters(&self, _out: &mut Vec<Reading>) {}

    /// After a reload: takes over what carries over from `old`, the same kind's doors before
    /// (replay caches, attempts, a rotating step). Typed: the list pairs kinds by type.
    fn carry_over(&mut self, _old: Self)
    where
        Self: Sized,
    {
    }
}

/// What lets a reload pair a built kind with its predecessor and hand it over, for every
/// [`DoorKind`]: by type, never by name.
pub trait CarryOver: Any {
    /// Whether `other` is the same kind.
    fn same_kind(&self, other: &dyn DoorKind) -> bool;

    /// Takes over from `old` ([`DoorKind::carry_over`]) if it is the same kind.
    fn carry_from(&mut self, old: Box<dyn DoorKind>);

    /// The kind as `Any`, to tell it by type.
    fn as_any(&self) -> &dyn Any;

    /// The kind as `Any`, to hand it over.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<K: DoorKind> CarryOver for K {
    fn same_kind(&self, other: &dyn DoorKind) -> bool {
        other.as_any().is::<K>()
    }

    fn carry_from(&mut self, old: Box<dyn DoorKind>) {
        if let Ok(old) = old.into_any().downcast::<K>() {
            self.carry_over(*old);
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// The list of kinds: [`KINDS`](super::KINDS) for everything that loops over them, and
/// [`Kinds`](super::Kinds) for the config readers. One line per kind.
macro_rules! kinds {
    ($($kind:path),+ $(,)?) => {
        /// Every kind of door, in the order packets are offered to them (and a door's proofs
        /// are listed in).
        pub static KINDS: &[&dyn Kind] = &[$(&$kind),+];

        /// The kinds, as the config readers are handed them ([`crate::config::Kinds`]).
        #[derive(Debug, Default, Clone, Copy)]
        pub struct Kinds;

        impl crate::config::Kinds for Kinds {
            fn keys(&self) -> Vec<&'static str> {
                let mut keys = Vec::new();
                $(keys.extend_from_slice(<$kind as ReadYaml>::KEYS);)+
                keys
            }

            fn keys_of(&self, kind: usize) -> &'static [&'static str] {
                [$(<$kind as ReadYaml>::KEYS),+][kind]
            }

            fn read<'de, A: serde::de::MapAccess<'de>>(
                &self,
                key: &str,
                door: &str,
                map: &mut A,
            ) -> Option<Result<(usize, crate::config::Proof), A::Error>> {
                let readers = [$((<$kind as ReadYaml>::KEYS, <$kind as ReadYaml>::read::<A> as ReadFn<'de, A>)),+];
                let (index, (_, read)) = readers.iter().enumerate().find(|(_, (keys, _))| keys.contains(&key))?;
                Some(read(key, door, map).map(|proof| (index, proof)))
            }

            fn format(&self, format: crate::config::Format) -> Option<&'static dyn crate::config::FormatReader> {
                KINDS.iter().filter_map(|k| k.format()).find(|f| f.format() == format)
            }
        }
    };
}
pub(super) use kinds;

/// A kind's [`ReadYaml::read`] for one YAML reader.
pub(super) type ReadFn<'de, A> = fn(&str, &str, &mut A) -> Result<Proof, <A as MapAccess<'de>>::Error>;
