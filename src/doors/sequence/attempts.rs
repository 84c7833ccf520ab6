//! The bounded table of knock attempts in progress.
//!
//! Two tiers, each in insertion order: `fresh` attempts have one knock so far, `advanced` ones
//! two or more. When the table is full, the oldest fresh attempt is evicted; an advanced one
//! only when no fresh one is left. A flood of spoofed first knocks (which is all a flood can
//! be without knowing the sequence) therefore only ever evicts other first knocks, and a
//! client that is part-way through its sequence keeps its place.

use std::hash::RandomState;
use std::net::IpAddr;

use hashlink::LinkedHashMap;

use super::matcher::SlotId;
use std::time::Duration;

pub(super) type Key = (IpAddr, SlotId);

/// One attempt: where it is in its sequence and when its first knock came.
#[derive(Debug, Clone, Copy)]
pub(super) struct Attempt {
    /// Index into the sequence of the next expected knock (>= 1).
    pub next: usize,
    /// When the first knock came.
    pub started: Duration,
    /// The fingerprint of the last knock counted, to tell its repeats from a new knock.
    pub last: u64,
}

/// Keys are attacker-chosen addresses, hence the randomly keyed SipHash.
type Tier = LinkedHashMap<Key, Attempt, RandomState>;

#[derive(Debug)]
pub(super) struct Attempts {
    fresh: Tier,
    advanced: Tier,
}

impl Default for Attempts {
    fn default() -> Self {
        Attempts { fresh: Tier::with_hasher(RandomState::new()), advanced: Tier::with_hasher(RandomState::new()) }
    }
}

impl Attempts {
    pub fn len(&self) -> usize {
        self.fresh.len() + self.advanced.len()
    }

    pub fn get_mut(&mut self, key: &Key) -> Option<&mut Attempt> {
        match self.advanced.get_mut(key) {
            Some(a) => Some(a),
            None => self.fresh.get_mut(key),
        }
    }

    pub fn remove(&mut self, key: &Key) -> Option<Attempt> {
        self.advanced.remove(key).or_else(|| self.fresh.remove(key))
    }

    /// Adds a new attempt; the caller makes room first.
    pub fn insert_fresh(&mut self, key: Key, attempt: Attempt) {
        self.fresh.insert(key, attempt);
    }

    /// Moves an attempt that has made progress into the protected tier.
    pub fn promote(&mut self, key: &Key) {
        if let Some(attempt) = self.fresh.remove(key) {
            self.advanced.insert(*key, attempt);
        }
    }

    /// Evicts one attempt: the oldest fresh one, else the oldest advanced one.
    pub fn evict(&mut self) -> bool {
        self.fresh.pop_front().or_else(|| self.advanced.pop_front()).is_some()
    }

    /// Keeps the attempts for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Key, &Attempt) -> bool) {
        self.fresh.retain(|k, a| keep(k, a));
        self.advanced.retain(|k, a| keep(k, a));
    }

    /// Every attempt, advanced ones last (so that re-inserting keeps the tiers' priority).
    pub fn into_entries(self) -> impl Iterator<Item = (Key, Attempt)> {
        self.fresh.into_iter().chain(self.advanced)
    }
}
