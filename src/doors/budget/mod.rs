//! A budget for expensive checks (signature verifications), shared fairly between source
//! prefixes, so that a flood of forged packets costs a bounded amount of CPU and cannot crowd
//! out a legitimate client from another network.
//!
//! Work is offered with its source address. While the budget has room and nothing waits, it
//! runs at once. Otherwise it waits in a queue with one place per source prefix (a /24 for
//! IPv4, a /48 for IPv6; a newer packet from the same prefix replaces the waiting one and
//! keeps its place, so a client that sends again is not sent to the back), and places are
//! served in the order they were taken, as the budget refills. A flood from a few hundred
//! prefixes thus delays another prefix's packet by a few hundred turns at most, however fast
//! it is sent.
//!
//! A copy of a packet that is waiting (the same signature, from any prefix: [`tag`]) is dropped:
//! an attacker on the path cannot get a client's packet checked, and its grant given to the
//! copy's source, ahead of the original by sending it from a place taken earlier.
//!
//! The queue has a cap: past it, a place of the largest share is given up ([`shares`]: the
//! group of networks holding the most places, and in it the newest place), never the place
//! about to be served, so no number of flooding prefixes can push out a client from a network
//! the flood does not fill.
//!
//! Work that costs more than the budget ever holds (a version 1 SPA packet on a door with more
//! keys than the burst) runs when the budget is full and leaves it in debt: it is charged in
//! full, later, instead of waiting forever at the head of the queue. Time is given, never read.

mod shares;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use shares::{Group, Shares};

/// Running totals of a budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetStats {
    /// Pieces of work run.
    pub run: u64,
    /// Pieces replaced by a newer one from the same prefix, or given up from a full queue.
    pub dropped: u64,
}

/// The tag of a packet whose last bytes are its signature or MAC, for [`Budget::offer`]: its
/// last 8 bytes. Copies have equal tags. A sender can choose the tag of a forged packet, but not
/// match that of a client's packet before it is sent (its signature is not known before), so
/// the packets a tag drops are copies of packets already waiting: never the first of a kind.
pub fn tag(bytes: &[u8]) -> u64 {
    let mut last = [0u8; 8];
    let n = bytes.len().min(8);
    last[8 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    u64::from_be_bytes(last)
}

/// Work waiting in its place: what it costs, where it came from, when its place was taken (a
/// sequence number), and the tag that tells copies of it.
struct Entry<T> {
    work: T,
    cost: u32,
    src: IpAddr,
    seq: u64,
    tag: u64,
}

/// Work waiting its turn, by prefix, with the cost it will take.
pub struct Budget<T> {
    per_second: f64,
    burst: f64,
    /// May fall below zero: the debt of work that cost more than the burst.
    tokens: f64,
    last: Duration,
    /// The places in the order they are served: by when they were taken.
    order: BTreeMap<u64, Group>,
    waiting: HashMap<Group, Entry<T>>,
    /// The tag of every waiting piece of work ([`tag`]), and its place.
    tags: HashMap<u64, Group>,
    shares: Shares,
    seq: u64,
    cap: usize,
    stats: BudgetStats,
}

impl<T> Budget<T> {
    /// A budget of `per_second` units, up to `burst` at once, with at most `cap` prefixes waiting.
    pub fn new(per_second: u32, burst: u32, cap: usize) -> Self {
        Budget {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: Duration::ZERO,
            order: BTreeMap::new(),
            waiting: HashMap::new(),
            tags: HashMap::new(),
            shares: Shares::default(),
            seq: 0,
            cap: cap.max(1),
            stats: BudgetStats::default(),
        }
    }

    fn refill(&mut self, now: Duration) {
        let elapsed = now.saturating_sub(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.last = self.last.max(now);
    }

    /// What must be in the budget before work of `cost` runs: its cost, or a full budget.
    fn needs(&self, cost: u32) -> f64 {
        f64::from(cost).min(self.burst)
    }

    /// Offers work from `src` costing `cost` units at `now`, tagged with `tag` ([`tag`]: equal
    /// tags are copies). Appends to `out` whatever may run now, in fair order
    /// (this work, or others', or both).
    pub fn offer(&mut self, src: IpAddr, work: T, tag: u64, cost: u32, now: Duration, out: &mut Vec<T>) {
        // Every piece costs at least a unit (see `serve`).
        let cost = cost.max(1);
        self.refill(now);
        if self.order.is_empty() && self.tokens >= self.needs(cost) {
            self.tokens -= f64::from(cost);
            self.stats.run += 1;
            return out.push(work);
        }
        let place = shares::place(src);
        match self.tags.entry(tag) {
            std::collections::hash_map::Entry::Vacant(new) => new.insert(place),
            std::collections::hash_map::Entry::Occupied(_) => {
                // A copy of a waiting packet: the original goes first, and the copy is its replay.
                self.stats.dropped += 1;
                return self.serve(out);
            }
        };
        if let Some(entry) = self.waiting.get_mut(&place) {
            // The same prefix again: its newest packet waits, in the place it already has.
            self.tags.remove(&entry.tag);
            *entry = Entry { work, cost, src, tag, ..*entry };
            self.stats.dropped += 1;
        } else {
            self.seq += 1;
            self.waiting.insert(place, Entry { work, cost, src, seq: self.seq, tag });
            self.order.insert(self.seq, place);
            self.shares.add(&shares::path(src), self.seq);
            if self.waiting.len() > self.cap {
                let given_up = self.shares.largest().expect("over the cap, so not empty");
                self.give_up(given_up);
                self.stats.dropped += 1;
            }
        }
        self.serve(out);
    }

    /// Removes a place from the queue, and returns its work.
    fn give_up(&mut self, place: Group) -> Option<Entry<T>> {
        let entry = self.waiting.remove(&place)?;
        self.order.remove(&entry.seq);
        self.tags.remove(&entry.tag);
        self.shares.remove(&shares::path(entry.src));
        Some(entry)
    }

    /// Appends to `out` the waiting work the budget has room for at `now`.
    pub fn poll(&mut self, now: Duration, out: &mut Vec<T>) {
        self.refill(now);
        self.serve(out);
    }

    fn serve(&mut self, out: &mut Vec<T>) {
        // Nothing costs less than one unit: under a flood the budget is mostly empty, and this
        // is checked for every packet before any look-up.
        while self.tokens >= 1.0 {
            let Some((_, &place)) = self.order.first_key_value() else { return };
            let cost = self.waiting.get(&place).map_or(0, |e| e.cost);
            if self.tokens < self.needs(cost) {
                return;
            }
            if let Some(entry) = self.give_up(place) {
                self.tokens -= f64::from(entry.cost);
                self.stats.run += 1;
                out.push(entry.work);
            }
        }
    }

    /// Work waiting.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// When waiting work can next run, if any waits (never before the budget last refilled).
    pub fn next_due(&self) -> Option<Duration> {
        let place = self.order.first_key_value()?.1;
        let cost = self.waiting.get(place)?.cost;
        let short = self.needs(cost) - self.tokens;
        if short <= 0.0 {
            return Some(self.last);
        }
        // At least a microsecond on: a shortfall rounded to nothing would be due again at once.
        Some(self.last + Duration::from_secs_f64(short / self.per_second).max(Duration::from_micros(1)))
    }

    /// Running totals.
    pub fn stats(&self) -> BudgetStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tag no other packet has.
    fn tag() -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d))
    }

    /// A budget of 10 a second with nothing saved up (and `cap` places), spent at time zero
    /// by a `warm-up` packet: what comes next waits its turn.
    fn spent(cap: usize) -> (Budget<&'static str>, Vec<&'static str>) {
        let mut b = Budget::new(10, 1, cap);
        let mut out = Vec::new();
        b.offer(v4(198, 18, 0, 1), "warm-up", tag(), 1, Duration::ZERO, &mut out);
        (b, out)
    }

    #[test]
    fn runs_at_once_while_there_is_room() {
        let mut b = Budget::new(10, 3, 100);
        let mut out = Vec::new();
        for i in 0..3 {
            b.offer(v4(198, 18, 0, 2), i, tag(), 1, Duration::ZERO, &mut out);
        }
        assert_eq!(out, [0, 1, 2]);
        b.offer(v4(198, 18, 0, 2), 3, tag(), 1, Duration::ZERO, &mut out);
        assert_eq!(out.len(), 3, "the burst is spent: it waits");
        b.poll(Duration::from_millis(100), &mut out);
        assert_eq!(out, [0, 1, 2, 3], "after a tenth of a second at 10/s");
    }

    #[test]
    fn a_flood_from_many_prefixes_delays_another_prefix_by_one_turn_each() {
        // 10 units a second, nothing saved up; 200 flooding prefixes send 100 packets each,
        // and one legitimate packet arrives in the middle of it from a prefix of its own.
        let (mut b, mut out) = spent(4096);
        let mut now = Duration::ZERO;
        for round in 0..100u32 {
            for p in 0..200u32 {
                now += Duration::from_micros(1);
                b.offer(v4(198, 19, p as u8, (round % 250) as u8), "flood", tag(), 1, now, &mut out);
            }
            if round == 50 {
                b.offer(v4(203, 0, 113, 7), "legit", tag(), 1, now, &mut out);
            }
        }
        assert!(b.waiting() <= 201, "one place per prefix: {}", b.waiting());
        // The legitimate packet waits behind at most one packet of each flooding prefix.
        let mut t = now;
        for _ in 0..202 {
            t += Duration::from_millis(100);
            b.poll(t, &mut out);
            if out.contains(&"legit") {
                break;
            }
        }
        assert!(out.contains(&"legit"), "served");
        assert!(t - now <= Duration::from_secs(21), "within one turn of every prefix: {:?}", t - now);
        assert!(b.stats().dropped > 10_000, "the flood's own repeats were dropped, not queued");
    }

    fn v6(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn work_that_costs_more_than_the_burst_runs_once_the_budget_is_full_and_leaves_a_debt() {
        // A version 1 packet on a door with 65 keys: 65 verifications, a burst of 64.
        let mut b = Budget::new(2000, 64, 4096);
        let mut out = Vec::new();
        b.offer(v4(198, 18, 0, 2), "cheap", tag(), 10, Duration::ZERO, &mut out);
        b.offer(v4(198, 18, 1, 2), "costly", tag(), 65, Duration::ZERO, &mut out);
        b.offer(v4(198, 18, 2, 2), "behind", tag(), 1, Duration::ZERO, &mut out);
        assert_eq!(out, ["cheap"], "54 left: the costly one waits for a full budget");
        let due = b.next_due().unwrap();
        assert_eq!(due, Duration::from_micros(5_000), "10 units at 2,000/s");
        b.poll(due, &mut out);
        assert_eq!(out, ["cheap", "costly"], "it ran, charged in full: the budget is one unit in debt");
        let due = b.next_due().unwrap();
        assert!(due > Duration::from_micros(5_000) && due <= Duration::from_micros(6_000), "{due:?}");
        b.poll(due, &mut out);
        assert_eq!(out, ["cheap", "costly", "behind"], "and the queue moved on");
        assert_eq!(b.next_due(), None);
    }

    #[test]
    fn a_due_time_is_never_before_the_last_refill() {
        let mut b = Budget::new(2000, 64, 16);
        let mut out = Vec::new();
        for i in 0..80u8 {
            b.offer(v4(198, 18, i, 1), i, tag(), 1, Duration::from_millis(3), &mut out);
        }
        let mut now = Duration::from_millis(3);
        for _ in 0..100 {
            let Some(due) = b.next_due() else { break };
            assert!(due >= now, "due {due:?} before {now:?}: a loop would spin");
            now = due;
            b.poll(now, &mut out);
        }
        assert_eq!(b.waiting(), 0, "every place was served, one due time at a time");
    }

    #[test]
    fn a_flood_from_60000_prefixes_gives_up_its_own_places_not_a_waiting_client() {
        // 100,000 forged packets a second for 3 s, each round from 60,000 /48s of other /40s.
        let mut b = Budget::new(2000, 64, 4096);
        let mut out = Vec::new();
        let mut now = Duration::ZERO;
        let mut served_after = None;
        for n in 0..300_000u32 {
            now += Duration::from_micros(10);
            let p = 0x1000 + n % 60_000;
            b.offer(v6(&format!("2001:db8:{p:x}::7")), "flood", tag(), 1, now, &mut out);
            if n == 50_000 {
                b.offer(v6("2001:db8::2"), "client", tag(), 1, now, &mut out);
            }
            if served_after.is_none() && out.last() == Some(&"client") {
                served_after = Some(now);
            }
            out.clear();
        }
        assert!(b.waiting() <= 4096, "{}", b.waiting());
        let took = served_after.expect("the client was served") - Duration::from_micros(500_010);
        eprintln!("took {took:?} dropped {}", b.stats().dropped);
        assert!(took <= Duration::from_millis(2100), "within one turn of the queue: {took:?}");
    }

    #[test]
    fn a_copy_of_a_waiting_packet_from_a_place_taken_earlier_is_dropped() {
        let (mut b, mut out) = spent(100);
        // The attacker's prefix has a packet waiting before the victim sends.
        b.offer(v4(198, 19, 9, 9), "attacker", tag(), 1, Duration::from_millis(1), &mut out);
        let original = tag();
        b.offer(v4(198, 18, 7, 7), "original", original, 1, Duration::from_millis(2), &mut out);
        // It sees the victim's packet and sends a copy from its own, older place.
        b.offer(v4(198, 19, 9, 9), "copy", original, 1, Duration::from_millis(3), &mut out);
        b.poll(Duration::from_secs(1), &mut out);
        b.poll(Duration::from_secs(2), &mut out);
        assert_eq!(out, ["warm-up", "attacker", "original"], "the copy was never checked ahead of it");
        assert_eq!(b.stats().dropped, 1);
    }

    #[test]
    fn a_tag_is_the_last_eight_bytes_of_any_input() {
        assert_eq!(super::tag(&[9, 1, 2, 3, 4, 5, 6, 7, 8]), 0x0102_0304_0506_0708);
        assert_eq!(super::tag(&[1, 2]), 0x0102);
        assert_eq!(super::tag(&[]), 0);
    }

    #[test]
    fn a_client_that_sends_again_keeps_its_place() {
        let (mut b, mut out) = spent(100);
        b.offer(v4(198, 18, 7, 7), "first", tag(), 1, Duration::from_millis(1), &mut out);
        b.offer(v4(198, 19, 9, 9), "other", tag(), 1, Duration::from_millis(2), &mut out);
        b.offer(v4(198, 18, 7, 8), "again", tag(), 1, Duration::from_millis(3), &mut out);
        b.poll(Duration::from_secs(1), &mut out);
        assert_eq!(out, ["warm-up", "again"], "its newest packet, in the place its first one took");
    }

    #[test]
    fn the_queue_has_a_cap() {
        let mut b = Budget::new(1, 1, 16);
        let mut out = Vec::new();
        for i in 0..=255u8 {
            b.offer(v4(10, 0, i, 1), i, tag(), 1, Duration::ZERO, &mut out);
        }
        assert_eq!(out, [0], "one ran at once");
        assert_eq!(b.waiting(), 16);
        assert!(b.next_due().is_some());
    }
}
