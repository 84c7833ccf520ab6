//! The knock matcher: a pure state machine, one attempt per (source address, slot).
//!
//! A slot is one sequence a door accepts: one per door, or three per secret for a rotating door
//! (the previous, the current and the next step's sequences).
//!
//! Rules, in the classic knockd's spirit and fixing its concurrency bug:
//! - Only knocks to a port in a door's sequence concern that door; anything else never touches
//!   its attempts.
//! - A TCP knock whose flags do not satisfy the door's `tcp_flags` is ignored for that door (the
//!   classic behaviour), so retransmissions or stray ACKs cannot reset progress.
//! - A knock that is not the next expected one ends the attempt; if it is the door's first port,
//!   it starts a new attempt at once, so a client that restarts its sequence is never penalised.
//! - Except a repeat of the port that just matched, when the next port is another one: browsers
//!   and phone apps knock with two connections (two SYNs from two source ports), and the second
//!   neither advances nor ends the attempt (jvinet/knock PR #90's rule). A sequence that
//!   repeats a port on purpose (`7000, 7000, 8000`) still advances on the repeat.
//! - The whole sequence must arrive within the door's `seq_timeout` of its first knock.
//! - Attempts live in a table with a hard cap (see `attempts.rs`): when it is full, the oldest
//!   attempt with a single knock is evicted first, so a flood of spoofed first knocks costs a
//!   bounded amount of memory and cannot push out a client that is part-way through.
//!
//! Time is given, never read: `now` is any monotonic duration chosen by the caller.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use super::attempts::{Attempt, Attempts};
use super::{Rotating, SequenceDoor};
use crate::config::{self, Door, PortProto, Proto, TcpFlags};
use crate::doors::DoorId;
use crate::packet::Knock;

/// Index of a slot: a sequence one of the doors accepts.
pub type SlotId = usize;

/// What a knock did, for logging, counters and the firewall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs, reason = "each variant's doc names its fields")]
pub enum Event {
    /// `src` has `stage` of the door's `of` knocks in order.
    Stage { door: DoorId, src: IpAddr, stage: usize, of: usize },
    /// `src` completed the sequence of the door's `slot`.
    Open { door: DoorId, src: IpAddr, slot: SlotId },
    /// An out-of-order knock ended `src`'s attempt.
    Restart { door: DoorId, src: IpAddr },
    /// `src`'s attempt ran past the door's `seq_timeout`, with `stage` of `of` knocks.
    TimedOut { door: DoorId, src: IpAddr, stage: usize, of: usize },
    /// A knock to one of the door's ports that did not count, and why.
    Ignored { door: DoorId, src: IpAddr, why: &'static str },
}

/// Running totals kept by the matcher.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatcherStats {
    /// Attempts pushed out of a full table.
    pub evictions: u64,
    /// Attempts forgotten because their sequence timed out.
    pub expired: u64,
}

/// What a slot matches; equal specs mean an attempt can carry over a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SlotSpec {
    name: String,
    /// Empty while the slot is disabled (a one-time door that ran out, a rotating sequence
    /// already used, or not loaded yet).
    sequence: Vec<PortProto>,
    seq_timeout: Duration,
    tcp_flags: TcpFlags,
    target: Option<IpAddr>,
    /// Sources allowed to knock (empty: any) and sources never allowed.
    from: Vec<IpNet>,
    not_from: Vec<IpNet>,
}

impl SlotSpec {
    /// Why `knock` does not concern this slot at all, if it does not: such knocks neither
    /// advance nor end an attempt.
    fn refuses(&self, knock: &Knock) -> Option<&'static str> {
        if knock.port.proto == Proto::Tcp && !self.tcp_flags.matches(knock.tcp_flags) {
            Some("its TCP flags are not the door's tcp_flags")
        } else if self.target.is_some_and(|t| t != knock.dst) {
            Some("it was sent to another address than the door's target")
        } else if !config::admits(&self.from, &self.not_from, &knock.src) {
            Some("the source is not allowed by the door's from/not_from")
        } else {
            None
        }
    }
}

#[derive(Debug, Clone)]
struct Slot {
    door: DoorId,
    spec: SlotSpec,
}

/// Matches knocks against every door's sequences.
#[derive(Debug)]
pub struct Matcher {
    slots: Vec<Slot>,
    /// For each knock port, the slots whose sequence contains it.
    by_port: HashMap<PortProto, Vec<SlotId>>,
    table: Table,
}

/// The attempts in progress, with their cap and running totals.
#[derive(Debug)]
struct Table {
    attempts: Attempts,
    cap: usize,
    stats: MatcherStats,
}

impl Matcher {
    /// A matcher for `doors` that keeps at most `cap` attempts in progress (at least one).
    /// One-time and rotating doors start disabled until [`Matcher::set_sequence`].
    pub fn new(doors: &[Door], cap: usize) -> Self {
        let mut slots = Vec::new();
        for (id, d) in doors.iter().enumerate() {
            let spec = SlotSpec {
                name: d.name.clone(),
                sequence: d.fixed_sequence().map(<[_]>::to_vec).unwrap_or_default(),
                seq_timeout: d.seq_timeout,
                tcp_flags: d.tcp_flags,
                target: d.target,
                from: d.from.clone(),
                not_from: d.not_from.clone(),
            };
            let count = match (d.sequence(), d.proof::<Rotating>()) {
                (_, Some(r)) => super::rotating::SLOTS_PER_SECRET * r.secret_files.len(),
                (Some(_), None) => 1,
                (None, None) => 0,
            };
            slots.extend(std::iter::repeat_n(Slot { door: id, spec }, count));
        }
        let table = Table { attempts: Attempts::default(), cap: cap.max(1), stats: MatcherStats::default() };
        let mut m = Matcher { slots, by_port: HashMap::new(), table };
        m.index();
        m
    }

    fn index(&mut self) {
        self.by_port.clear();
        for (id, slot) in self.slots.iter().enumerate() {
            for port in &slot.spec.sequence {
                let ids = self.by_port.entry(*port).or_default();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }

    /// The slots of a door: one, or two per secret for a rotating door.
    pub fn slots_of(&self, door: DoorId) -> std::ops::Range<SlotId> {
        let first = self.slots.iter().position(|s| s.door == door).unwrap_or(self.slots.len());
        let count = self.slots[first..].iter().take_while(|s| s.door == door).count();
        first..first + count
    }

    /// Replaces a slot's sequence (empty disables it); its attempts are forgotten.
    pub fn set_sequence(&mut self, slot: SlotId, sequence: Vec<PortProto>) {
        self.slots[slot].spec.sequence = sequence;
        self.table.attempts.retain(|(_, s), _| *s != slot);
        self.index();
    }

    /// The slot's current sequence; empty when it is disabled.
    pub fn sequence(&self, slot: SlotId) -> &[PortProto] {
        &self.slots[slot].spec.sequence
    }

    /// Takes over the attempts of `old` for slots that did not change (same door name,
    /// sequence, timeout, flags, target and source lists), so a reload costs nobody progress.
    pub fn carry_over(&mut self, old: Matcher) {
        let mapping: Vec<Option<SlotId>> = old
            .slots
            .iter()
            .map(|slot| self.slots.iter().position(|new| new.spec == slot.spec && !new.spec.sequence.is_empty()))
            .collect();
        let table = &mut self.table;
        for ((src, slot), attempt) in old.table.attempts.into_entries() {
            if let Some(new_slot) = mapping[slot] {
                if table.attempts.len() >= table.cap {
                    table.attempts.evict();
                }
                table.attempts.insert_fresh((src, new_slot), attempt);
                if attempt.next >= 2 {
                    table.attempts.promote(&(src, new_slot));
                }
            }
        }
        table.stats = old.table.stats;
    }

    /// Every distinct knock port of every enabled slot, sorted: what the capture filter passes.
    pub fn knock_ports(&self) -> Vec<PortProto> {
        let mut ports: Vec<PortProto> = self.by_port.keys().copied().collect();
        ports.sort();
        ports
    }

    /// Feeds one knock seen at `now`; what happened is appended to `events`.
    pub fn knock(&mut self, knock: &Knock, now: Duration, events: &mut Vec<Event>) {
        let Some(slot_ids) = self.by_port.get(&knock.port) else {
            return;
        };
        for &slot in slot_ids {
            let Slot { door, spec } = &self.slots[slot];
            match spec.refuses(knock) {
                Some(why) => events.push(Event::Ignored { door: *door, src: knock.src, why }),
                None => self.table.step(slot, *door, spec, knock, now, events),
            }
        }
    }

    /// Ends attempts that ran past their door's `seq_timeout` at `now`, each with a
    /// [`Event::TimedOut`]; call it now and then, so the log says so on time.
    pub fn expire(&mut self, now: Duration, events: &mut Vec<Event>) {
        let slots = &self.slots;
        let table = &mut self.table;
        let before = table.attempts.len();
        table.attempts.retain(|(src, slot), a| {
            let spec = &slots[*slot].spec;
            let live = now.saturating_sub(a.started) <= spec.seq_timeout;
            if !live {
                let (door, of) = (slots[*slot].door, spec.sequence.len());
                events.push(Event::TimedOut { door, src: *src, stage: a.next, of });
            }
            live
        });
        table.stats.expired += (before - table.attempts.len()) as u64;
    }

    /// Attempts in progress.
    pub fn len(&self) -> usize {
        self.table.attempts.len()
    }

    /// Whether no attempt is in progress.
    pub fn is_empty(&self) -> bool {
        self.table.attempts.len() == 0
    }

    /// The most attempts kept at once.
    pub fn cap(&self) -> usize {
        self.table.cap
    }

    /// Running totals.
    pub fn stats(&self) -> MatcherStats {
        self.table.stats
    }
}

impl Table {
    /// One knock that concerns slot `slot` (of door `door`): advance, open, time out, restart,
    /// or start an attempt.
    fn step(
        &mut self,
        slot: SlotId,
        door: DoorId,
        spec: &SlotSpec,
        knock: &Knock,
        now: Duration,
        events: &mut Vec<Event>,
    ) {
        let src = knock.src;
        let key = (src, slot);
        if let Some(attempt) = self.attempts.get_mut(&key) {
            let last = spec.sequence[attempt.next - 1];
            if now.saturating_sub(attempt.started) > spec.seq_timeout {
                let stage = attempt.next;
                self.attempts.remove(&key);
                self.stats.expired += 1;
                events.push(Event::TimedOut { door, src, stage, of: spec.sequence.len() });
            } else if knock.fingerprint != 0 && knock.port == last && knock.fingerprint == attempt.last {
                // The same packet again: a retransmitted SYN, or the copy a bridge shows.
                return events.push(Event::Ignored { door, src, why: "it repeats the last knock (same packet)" });
            } else if spec.sequence[attempt.next] == knock.port {
                attempt.next += 1;
                attempt.last = knock.fingerprint;
                let stage = attempt.next;
                if stage == spec.sequence.len() {
                    self.attempts.remove(&key);
                    events.push(Event::Open { door, src, slot });
                } else {
                    if stage == 2 {
                        self.attempts.promote(&key);
                    }
                    events.push(Event::Stage { door, src, stage, of: spec.sequence.len() });
                }
                return;
            } else if knock.port == last {
                // A second connection for the knock that just matched: browsers and phone apps
                // open two per knock. It neither advances the attempt nor restarts it.
                let why = "it repeats the knock that just matched (another connection)";
                return events.push(Event::Ignored { door, src, why });
            } else {
                self.attempts.remove(&key);
                events.push(Event::Restart { door, src });
            }
        }
        if spec.sequence[0] != knock.port {
            let why = "not the first knock, and no attempt is in progress (it may have timed out)";
            return events.push(Event::Ignored { door, src, why });
        }
        let of = spec.sequence.len();
        if of == 1 {
            return events.push(Event::Open { door, src, slot });
        }
        while self.attempts.len() >= self.cap && self.attempts.evict() {
            self.stats.evictions += 1;
        }
        self.attempts.insert_fresh(key, Attempt { next: 1, started: now, last: knock.fingerprint });
        events.push(Event::Stage { door, src, stage: 1, of });
    }
}
