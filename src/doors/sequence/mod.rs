//! Knock sequences: the door kind for fixed sequences, one-time sequence files and rotating
//! sequences. All of them share one [`matcher::Matcher`], so one table of attempts, with one
//! cap and one eviction rule, bounds the memory of every sequence door together.
//!
//! A door whose sequence is not fixed has a `Source` that decides its sequences: [`one_time`]
//! reads the next line of its file when one is used, [`rotating`] derives a new sequence every
//! step from its secret and disables one once it is used.

mod attempts;
pub mod matcher;
pub mod one_time;
pub mod rotating;

use std::any::Any;
use std::time::Duration;

use matcher::{Event, Matcher, SlotId};

use super::{DoorError, DoorId, DoorKind, Grant, Note, Outcomes};
use crate::config::{Config, PortProto, Proof};
use crate::packet::Packet;

/// Where a door's sequences come from when they are not fixed.
trait Source {
    /// The door this source feeds.
    fn door(&self) -> DoorId;

    /// The wall clock moved: update the door's slots. Returns whether a sequence changed.
    fn set_wall_clock(&mut self, _unix_now: Duration, _matcher: &mut Matcher) -> bool {
        false
    }

    /// When the source's sequences next change by the wall clock (Unix time), if they do.
    fn next_wall_due(&self) -> Option<Duration> {
        None
    }

    /// A slot of the door opened: replace its sequence as the source requires.
    fn opened(&mut self, slot: SlotId, matcher: &mut Matcher, out: &mut Outcomes);

    /// After a reload: take over what `old` knew (used sequences), if it is this source's
    /// predecessor; each source of the old kind is offered in turn.
    fn carry_over(&mut self, _old: &dyn Any) {}

    /// The source as `Any`, so its successor can take over from it.
    fn as_any(&self) -> &dyn Any;
}

/// The sequence door kind.
pub struct Sequences {
    matcher: Matcher,
    sources: Vec<Box<dyn Source>>,
    /// The wall clock as last told, so a reload can bring new sources to the same step.
    unix_now: Option<Duration>,
    events: Vec<Event>,
}

/// The kind for `config`, if any door has a knock sequence.
pub fn build(config: &Config) -> Result<Option<Box<dyn DoorKind>>, DoorError> {
    if !config.doors.iter().any(|d| d.sequence().is_some()) {
        return Ok(None);
    }
    let mut matcher = Matcher::new(&config.doors, config.max_attempts);
    let mut sources: Vec<Box<dyn Source>> = Vec::new();
    for (id, door) in config.doors.iter().enumerate() {
        let error = |message: String| DoorError { door: door.name.clone(), message };
        match door.sequence() {
            Some(Proof::OneTime(path)) => {
                let source =
                    one_time::OneTime::open(id, &door.name, path, &mut matcher).map_err(|e| error(e.to_string()))?;
                sources.push(Box::new(source));
            }
            Some(Proof::Rotating(r)) => {
                let source = rotating::RotatingSource::open(id, &door.name, r, &config.state_dir)?;
                sources.push(Box::new(source));
            }
            _ => {}
        }
    }
    Ok(Some(Box::new(Sequences { matcher, sources, unix_now: None, events: Vec::new() })))
}

impl Sequences {
    /// The matcher, for tests and reports.
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    fn on_event(&mut self, event: Event, dst: std::net::IpAddr, out: &mut Outcomes) {
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
                    source.opened(slot, &mut self.matcher, out);
                    out.ports_changed = true;
                }
            }
        }
    }
}

impl DoorKind for Sequences {
    fn kind(&self) -> &'static str {
        "sequence"
    }

    fn ports(&self, out: &mut Vec<PortProto>) {
        out.extend(self.matcher.knock_ports());
    }

    fn packet(&mut self, packet: &Packet<'_>, now: Duration, out: &mut Outcomes) {
        let mut events = std::mem::take(&mut self.events);
        self.matcher.knock(&packet.knock, now, &mut events);
        for event in events.drain(..) {
            self.on_event(event, packet.knock.dst, out);
        }
        self.events = events;
    }

    fn set_wall_clock(&mut self, unix_now: Duration, out: &mut Outcomes) {
        self.unix_now = Some(unix_now);
        for source in &mut self.sources {
            out.ports_changed |= source.set_wall_clock(unix_now, &mut self.matcher);
        }
    }

    fn next_wall_due(&self) -> Option<Duration> {
        self.sources.iter().filter_map(|s| s.next_wall_due()).min()
    }

    fn tick(&mut self, now: Duration, out: &mut Outcomes) {
        let mut events = std::mem::take(&mut self.events);
        self.matcher.expire(now, &mut events);
        for event in events.drain(..) {
            self.on_event(event, std::net::Ipv4Addr::UNSPECIFIED.into(), out);
        }
        self.events = events;
    }

    fn carry_over(&mut self, old: Box<dyn Any>) {
        let Ok(old) = old.downcast::<Sequences>() else { return };
        for source in &mut self.sources {
            for previous in &old.sources {
                source.carry_over(previous.as_any());
            }
        }
        // Bring rotating doors to the step the old ones were on, so their slots compare equal
        // and the attempts on them carry over like any other.
        if let Some(unix_now) = old.unix_now {
            self.set_wall_clock(unix_now, &mut Outcomes::default());
        }
        self.matcher.carry_over(old.matcher);
    }

    fn attempts(&self) -> usize {
        self.matcher.len()
    }

    fn counters(&self, out: &mut Vec<(&'static str, u64)>) {
        let stats = self.matcher.stats();
        out.extend([
            ("expired", stats.expired),
            ("evictions", stats.evictions),
            ("attempts_cap", self.matcher.cap() as u64),
        ]);
    }
}
