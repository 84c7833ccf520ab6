//! The knock matcher: pure state machine, one attempt per (source address, door).
//!
//! Rules, in the classic knockd's spirit and fixing its concurrency bug:
//! - Only knocks to a port in a door's sequence concern that door; anything else never touches
//!   its attempts.
//! - A TCP knock whose flags do not satisfy the door's `tcp_flags` is ignored for that door (the
//!   classic behaviour), so retransmissions or stray ACKs cannot reset progress.
//! - A knock that is not the next expected one ends the attempt; if it is the door's first port,
//!   it starts a new attempt at once, so a client that restarts its sequence is never penalised.
//! - The whole sequence must arrive within the door's `seq_timeout` of its first knock.
//! - Attempts live in a table with a hard cap (see [`attempts`]): when it is full, the oldest
//!   attempt with a single knock is evicted first, so a flood of spoofed first knocks costs a
//!   bounded amount of memory and cannot push out a client that is part-way through.
//!
//! Time is given, never read: `now` is any monotonic duration chosen by the caller.

mod attempts;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use attempts::{Attempt, Attempts};

use crate::config::{Door, PortProto, Proto, TcpFlags};
use crate::wire::Knock;

/// Index of a door in the configuration's door list.
pub type DoorId = usize;

/// What a knock did, for logging, counters and the firewall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `src` has `stage` of the door's `of` knocks in order.
    Stage { door: DoorId, src: IpAddr, stage: usize, of: usize },
    /// `src` completed the door's sequence.
    Open { door: DoorId, src: IpAddr },
    /// An out-of-order knock ended `src`'s attempt.
    Restart { door: DoorId, src: IpAddr },
    /// `src`'s attempt ran past the door's `seq_timeout`.
    TimedOut { door: DoorId, src: IpAddr },
}

/// Running totals kept by the matcher.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatcherStats {
    pub evictions: u64,
    pub expired: u64,
}

/// What the matcher needs of a door; equal specs mean an attempt can carry over a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DoorSpec {
    name: String,
    /// Empty while the door is disabled (a one-time door that ran out, or not loaded yet).
    sequence: Vec<PortProto>,
    seq_timeout: Duration,
    tcp_flags: TcpFlags,
    target: Option<IpAddr>,
}

/// Matches knocks against every door's sequence.
#[derive(Debug)]
pub struct Matcher {
    doors: Vec<DoorSpec>,
    /// For each knock port, the doors whose sequence contains it.
    by_port: HashMap<PortProto, Vec<DoorId>>,
    attempts: Attempts,
    cap: usize,
    stats: MatcherStats,
}

impl Matcher {
    /// A matcher for `doors` that keeps at most `cap` attempts in progress (at least one).
    /// Doors with one-time sequences start disabled until [`Matcher::set_sequence`].
    pub fn new(doors: &[Door], cap: usize) -> Self {
        let doors = doors
            .iter()
            .map(|d| DoorSpec {
                name: d.name.clone(),
                sequence: d.fixed_sequence().map(<[_]>::to_vec).unwrap_or_default(),
                seq_timeout: d.seq_timeout,
                tcp_flags: d.tcp_flags,
                target: d.target,
            })
            .collect();
        let mut m = Matcher {
            doors,
            by_port: HashMap::new(),
            attempts: Attempts::default(),
            cap: cap.max(1),
            stats: MatcherStats::default(),
        };
        m.index();
        m
    }

    fn index(&mut self) {
        self.by_port.clear();
        for (id, door) in self.doors.iter().enumerate() {
            for port in &door.sequence {
                let ids = self.by_port.entry(*port).or_default();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }

    /// Replaces a door's sequence (empty disables the door); its attempts are forgotten.
    pub fn set_sequence(&mut self, door: DoorId, sequence: Vec<PortProto>) {
        self.doors[door].sequence = sequence;
        self.attempts.retain(|(_, d), _| *d != door);
        self.index();
    }

    /// The door's current sequence; empty when it is disabled.
    pub fn sequence(&self, door: DoorId) -> &[PortProto] {
        &self.doors[door].sequence
    }

    /// Takes over the attempts of `old` for doors that did not change (same name, sequence,
    /// timeout, flags and target), so a reload does not cost anyone their progress.
    pub fn carry_over(&mut self, old: Matcher) {
        let mapping: Vec<Option<DoorId>> = old
            .doors
            .iter()
            .map(|spec| self.doors.iter().position(|new| new == spec && !new.sequence.is_empty()))
            .collect();
        for ((src, door), attempt) in old.attempts.into_entries() {
            if let Some(new_door) = mapping[door] {
                if self.attempts.len() >= self.cap {
                    self.attempts.evict();
                }
                self.attempts.insert_fresh((src, new_door), attempt);
                if attempt.next >= 2 {
                    self.attempts.promote(&(src, new_door));
                }
            }
        }
        self.stats = old.stats;
    }

    /// Every distinct knock port of every enabled door, sorted: what the capture filter passes.
    pub fn knock_ports(&self) -> Vec<PortProto> {
        let mut ports: Vec<PortProto> = self.by_port.keys().copied().collect();
        ports.sort();
        ports
    }

    /// Feeds one knock seen at `now`; what happened is appended to `events`.
    pub fn knock(&mut self, knock: &Knock, now: Duration, events: &mut Vec<Event>) {
        let Matcher { doors, by_port, attempts, cap, stats } = self;
        let Some(door_ids) = by_port.get(&knock.port) else {
            return;
        };
        for &door in door_ids {
            let spec = &doors[door];
            if knock.port.proto == Proto::Tcp && !spec.tcp_flags.matches(knock.tcp_flags) {
                continue;
            }
            if spec.target.is_some_and(|t| t != knock.dst) {
                continue;
            }
            let src = knock.src;
            let key = (src, door);
            if let Some(attempt) = attempts.get_mut(&key) {
                if now.saturating_sub(attempt.started) > spec.seq_timeout {
                    attempts.remove(&key);
                    stats.expired += 1;
                    events.push(Event::TimedOut { door, src });
                } else if spec.sequence[attempt.next] == knock.port {
                    attempt.next += 1;
                    let stage = attempt.next;
                    if stage == spec.sequence.len() {
                        attempts.remove(&key);
                        events.push(Event::Open { door, src });
                    } else {
                        if stage == 2 {
                            attempts.promote(&key);
                        }
                        events.push(Event::Stage { door, src, stage, of: spec.sequence.len() });
                    }
                    continue;
                } else {
                    attempts.remove(&key);
                    events.push(Event::Restart { door, src });
                }
            }
            if spec.sequence[0] != knock.port {
                continue;
            }
            let of = spec.sequence.len();
            if of == 1 {
                events.push(Event::Open { door, src });
                continue;
            }
            while attempts.len() >= *cap && attempts.evict() {
                stats.evictions += 1;
            }
            attempts.insert_fresh(key, Attempt { next: 1, started: now });
            events.push(Event::Stage { door, src, stage: 1, of });
        }
    }

    /// Forgets attempts that can no longer complete; call it now and then to return memory early.
    pub fn expire(&mut self, now: Duration) {
        let doors = &self.doors;
        let before = self.attempts.len();
        self.attempts.retain(|(_, door), a| now.saturating_sub(a.started) <= doors[*door].seq_timeout);
        self.stats.expired += (before - self.attempts.len()) as u64;
    }

    /// Attempts in progress.
    pub fn len(&self) -> usize {
        self.attempts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.attempts.len() == 0
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    pub fn stats(&self) -> MatcherStats {
        self.stats
    }
}
