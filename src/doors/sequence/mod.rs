//! Knock sequences: the door kind for fixed sequences, one-time sequence files and rotating
//! sequences. All of them share one [`matcher::Matcher`], so one table of attempts, with one
//! cap and one eviction rule, bounds the memory of every sequence door together.
//!
//! A door whose sequence is not fixed has a `Source` that decides its sequences: [`one_time`]
//! reads the next line of its file when one is used, [`rotating`] derives a new sequence every
//! step from its secret and the time of day it is given, and disables one once it is used.

mod attempts;
pub mod knockd_conf;
pub mod matcher;
pub mod one_time;
pub mod rotating;
mod settings;

use std::time::Duration;

use matcher::{Event, Matcher, SlotId};
use serde::de::MapAccess;
pub use settings::{
    FixedSequence, OneTimeFile, ROTATING_LENGTH, ROTATING_MAX_LENGTH, ROTATING_PORTS, ROTATING_STEP, Rotating,
    SequenceDoor,
};

use super::{Clock, Counter, DoorError, DoorId, DoorKind, Grant, Kind, Measure, Note, Outcomes, ReadYaml, Reading};
use crate::config::{Config, ConfigError, Format, FormatReader, LoadOptions, PortProto, Proof};
use crate::packet::Packet;
use crate::store::Store;

/// The sequence kind, as the kinds list names it.
pub struct SequenceKind;

static EXPIRED: Counter =
    Counter::new("expired", Measure::Total, "Knock attempts forgotten because they could no longer complete in time.");
static EVICTIONS: Counter = Counter::new(
    "evictions",
    Measure::Total,
    "Knock attempts evicted because the attempt table was full (limits.max_attempts).",
);
static ATTEMPTS_CAP: Counter =
    Counter::new("attempts_cap", Measure::Gauge, "The most knock attempts kept at once (limits.max_attempts).");

impl Kind for SequenceKind {
    fn name(&self) -> &'static str {
        "sequence"
    }

    fn counters(&self) -> &'static [&'static Counter] {
        static COUNTERS: [&Counter; 3] = [&EXPIRED, &EVICTIONS, &ATTEMPTS_CAP];
        &COUNTERS
    }

    fn build(&self, config: &Config, store: &mut dyn Store) -> Result<Option<Box<dyn DoorKind>>, DoorError> {
        build(config, store)
    }

    /// Doors one knock sequence opens together.
    fn warnings(&self, config: &Config) -> Vec<String> {
        let fixed: Vec<(&str, &[PortProto])> =
            config.doors.iter().filter_map(|d| Some((d.name.as_str(), d.fixed_sequence()?))).collect();
        let mut out = Vec::new();
        for (i, &(a, sa)) in fixed.iter().enumerate() {
            for &(b, sb) in &fixed[i + 1..] {
                let ((short, short_seq), (long, long_seq)) =
                    if sa.len() <= sb.len() { ((a, sa), (b, sb)) } else { ((b, sb), (a, sa)) };
                if sa == sb {
                    out.push(format!("doors {a} and {b} have the same sequence: knocking it opens both: change one"));
                } else if long_seq.starts_with(short_seq) {
                    out.push(format!(
                        "door {short}'s sequence is the start of door {long}'s: knocking {long} opens {short} too: \
                         change one"
                    ));
                }
            }
        }
        out
    }

    /// The classic knockd.conf: its doors are knock sequences.
    fn format(&self) -> Option<&'static dyn FormatReader> {
        Some(&KnockdConf)
    }
}

impl ReadYaml for SequenceKind {
    const KEYS: &'static [&'static str] = &["sequence", "one_time_sequences", "rotating"];

    fn read<'de, A: MapAccess<'de>>(key: &str, _door: &str, map: &mut A) -> Result<Proof, A::Error> {
        settings::read(key, map)
    }
}

/// The classic knockd.conf's reader.
struct KnockdConf;

impl FormatReader for KnockdConf {
    fn format(&self) -> Format {
        Format::KnockdConf
    }

    fn read(&self, file: &str, text: &str, _options: &LoadOptions) -> Result<Config, ConfigError> {
        knockd_conf::parse(file, text)
    }
}

/// Where a door's sequences come from when they are not fixed.
#[allow(clippy::large_enum_variant, reason = "one per door, made at load: its size costs nothing")]
enum Source {
    /// The next unused line of a file.
    OneTime(one_time::OneTime),
    /// Derived from secrets and the time of day.
    Rotating(rotating::RotatingSource),
}

impl Source {
    /// The door this source feeds.
    fn door(&self) -> DoorId {
        match self {
            Source::OneTime(s) => s.door(),
            Source::Rotating(s) => s.door(),
        }
    }

    /// Follows the time of day: updates the door's slots. Returns whether a sequence changed.
    fn follow(&mut self, clock: &Clock, matcher: &mut Matcher, store: &mut dyn Store) -> bool {
        match self {
            Source::OneTime(_) => false,
            Source::Rotating(s) => s.follow(clock, matcher, store),
        }
    }

    /// When the source's sequences next change by the time of day (Unix time), if they do.
    fn next_wall_due(&self) -> Option<Duration> {
        match self {
            Source::OneTime(_) => None,
            Source::Rotating(s) => s.next_wall_due(),
        }
    }

    /// A slot of the door opened: replace its sequence as the source requires.
    fn opened(&mut self, slot: SlotId, matcher: &mut Matcher, store: &mut dyn Store, out: &mut Outcomes) {
        match self {
            Source::OneTime(s) => s.opened(slot, matcher, store, out),
            Source::Rotating(s) => s.opened(slot, matcher, store, out),
        }
    }

    /// After a reload: takes over what its predecessor among `old` knew (the rotating step it
    /// was on, so the slots compare equal and their attempts carry over).
    fn carry_over(&mut self, old: &[Source], matcher: &mut Matcher) {
        let Source::Rotating(new) = self else { return };
        for old in old {
            if let Source::Rotating(old) = old {
                new.carry_over(old, matcher);
            }
        }
    }
}

/// The sequence door kind.
pub struct Sequences {
    matcher: Matcher,
    sources: Vec<Source>,
    events: Vec<Event>,
}

/// The kind for `config`, if any door has a knock sequence.
fn build(config: &Config, store: &mut dyn Store) -> Result<Option<Box<dyn DoorKind>>, DoorError> {
    if !config.doors.iter().any(|d| d.sequence().is_some()) {
        return Ok(None);
    }
    let mut matcher = Matcher::new(&config.doors, config.max_attempts);
    let mut sources = Vec::new();
    for (id, door) in config.doors.iter().enumerate() {
        let error = |message: String| DoorError { door: door.name.clone(), message };
        if let Some(OneTimeFile(path)) = door.proof::<OneTimeFile>() {
            let source =
                one_time::OneTime::open(id, &door.name, path, &mut matcher, store).map_err(|e| error(e.to_string()))?;
            sources.push(Source::OneTime(source));
        } else if let Some(r) = door.proof::<Rotating>() {
            let source = rotating::RotatingSource::open(id, &door.name, r, &config.state_dir, store)?;
            sources.push(Source::Rotating(source));
        }
    }
    Ok(Some(Box::new(Sequences { matcher, sources, events: Vec::new() })))
}

impl Sequences {
    /// The matcher, for tests and reports.
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// Brings the sources to the time of day; a sequence that changed moves the ports.
    fn follow(&mut self, clock: &Clock, store: &mut dyn Store, out: &mut Outcomes) {
        for source in &mut self.sources {
            out.ports_changed |= source.follow(clock, &mut self.matcher, store);
        }
    }

    fn on_event(&mut self, event: Event, dst: std::net::IpAddr, store: &mut dyn Store, out: &mut Outcomes) {
        match event {
            Event::Stage { door, src, stage, of } => out.notes.push(Note::Stage { door, src, stage, of }),
            Event::Restart { door, src } => out.notes.push(Note::Restart { door, src }),
            Event::TimedOut { door, src, stage, of } => out.notes.push(Note::TimedOut { door, src, stage, of }),
            Event::Ignored { door, src, why } => out.notes.push(Note::Ignored { door, src, why }),
            Event::Open { door, src, slot } => {
                // The last knock is a stage too (the classic format logs it), before the grant.
                let of = self.matcher.sequence(slot).len();
                out.notes.push(Note::Stage { door, src, stage: of, of });
                out.grants.push(Grant::new(door, src, src, dst));
                if let Some(source) = self.sources.iter_mut().find(|s| s.door() == door) {
                    source.opened(slot, &mut self.matcher, store, out);
                    out.ports_changed = true;
                }
            }
        }
    }
}

impl DoorKind for Sequences {
    fn ports(&self, out: &mut Vec<PortProto>) {
        out.extend(self.matcher.knock_ports());
    }

    fn packet(&mut self, packet: &Packet<'_>, clock: &Clock, store: &mut dyn Store, out: &mut Outcomes) {
        // A knock is matched against the sequences of its own time (a rotating step).
        self.follow(clock, store, out);
        let mut events = std::mem::take(&mut self.events);
        self.matcher.knock(&packet.knock, clock.mono, &mut events);
        for event in events.drain(..) {
            self.on_event(event, packet.knock.dst, store, out);
        }
        self.events = events;
    }

    fn next_wall_due(&self) -> Option<Duration> {
        self.sources.iter().filter_map(Source::next_wall_due).min()
    }

    fn tick(&mut self, clock: &Clock, store: &mut dyn Store, out: &mut Outcomes) {
        self.follow(clock, store, out);
        let mut events = std::mem::take(&mut self.events);
        self.matcher.expire(clock.mono, &mut events);
        for event in events.drain(..) {
            self.on_event(event, std::net::Ipv4Addr::UNSPECIFIED.into(), store, out);
        }
        self.events = events;
    }

    fn carry_over(&mut self, old: Sequences) {
        // Rotating doors take the step the old ones were on, so their slots compare equal and
        // the attempts on them carry over like any other.
        for source in &mut self.sources {
            source.carry_over(&old.sources, &mut self.matcher);
        }
        self.matcher.carry_over(old.matcher);
    }

    fn attempts(&self) -> usize {
        self.matcher.len()
    }

    fn counters(&self, out: &mut Vec<Reading>) {
        let stats = self.matcher.stats();
        out.extend([
            Reading { counter: &EXPIRED, value: stats.expired },
            Reading { counter: &EVICTIONS, value: stats.evictions },
            Reading { counter: &ATTEMPTS_CAP, value: self.matcher.cap() as u64 },
        ]);
    }
}
