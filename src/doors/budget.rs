//! A budget for expensive checks (signature verifications), shared fairly between source
//! prefixes, so that a flood of forged packets costs a bounded amount of CPU and cannot crowd
//! out a legitimate client from another network.
//!
//! Work is offered with its source address. While the budget has room and nothing waits, it
//! runs at once. Otherwise it waits in a queue with one place per source prefix (a /24 for
//! IPv4, a /48 for IPv6; a newer packet from the same prefix replaces the waiting one), and the
//! budget serves the prefixes in turn as it refills. A flood from a few hundred prefixes thus
//! delays another prefix's packet by a few hundred turns at most, however fast it is sent. The
//! queue has a cap: past it, the longest-waiting prefix is dropped. Time is given, never read.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

/// A source prefix, as a number: the first 24 bits of IPv4, the first 48 of IPv6.
type Prefix = u128;

fn prefix(addr: IpAddr) -> Prefix {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a) >> 8),
        IpAddr::V6(a) => (1 << 64) | (u128::from(a) >> 80),
    }
}

/// Running totals of a budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetStats {
    /// Pieces of work run.
    pub run: u64,
    /// Pieces replaced by a newer one from the same prefix, or dropped from a full queue.
    pub dropped: u64,
}

/// Work waiting its turn, by prefix, with the cost it will take.
pub struct Budget<T> {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last: Duration,
    order: VecDeque<Prefix>,
    waiting: HashMap<Prefix, (T, u32)>,
    cap: usize,
    stats: BudgetStats,
}

impl<T> Budget<T> {
    /// A budget of `per_second` units, up to `burst` at once, with at most `cap` prefixes waiting.
    pub fn new(per_second: u32, burst: u32, cap: usize) -> Self {
        Budget {
            per_second: f64::from(per_second),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: Duration::ZERO,
            order: VecDeque::new(),
            waiting: HashMap::new(),
            cap: cap.max(1),
            stats: BudgetStats::default(),
        }
    }

    fn refill(&mut self, now: Duration) {
        let elapsed = now.saturating_sub(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.last = self.last.max(now);
    }

    /// Offers work from `src` costing `cost` units at `now`. Appends to `out` whatever may run
    /// now, in fair order (this work, or others', or both).
    pub fn offer(&mut self, src: IpAddr, work: T, cost: u32, now: Duration, out: &mut Vec<T>) {
        self.refill(now);
        if self.order.is_empty() && self.tokens >= f64::from(cost) {
            self.tokens -= f64::from(cost);
            self.stats.run += 1;
            return out.push(work);
        }
        let key = prefix(src);
        if self.waiting.insert(key, (work, cost)).is_some() {
            self.stats.dropped += 1;
        } else {
            self.order.push_back(key);
            if self.order.len() > self.cap {
                let oldest = self.order.pop_front().expect("over the cap, so not empty");
                self.waiting.remove(&oldest);
                self.stats.dropped += 1;
            }
        }
        self.serve(out);
    }

    /// Appends to `out` the waiting work the budget has room for at `now`.
    pub fn poll(&mut self, now: Duration, out: &mut Vec<T>) {
        self.refill(now);
        self.serve(out);
    }

    fn serve(&mut self, out: &mut Vec<T>) {
        while let Some(key) = self.order.front() {
            let cost = self.waiting.get(key).map_or(0, |(_, cost)| *cost);
            if self.tokens < f64::from(cost) {
                return;
            }
            let key = self.order.pop_front().expect("front exists");
            if let Some((work, cost)) = self.waiting.remove(&key) {
                self.tokens -= f64::from(cost);
                self.stats.run += 1;
                out.push(work);
            }
        }
    }

    /// Work waiting.
    pub fn waiting(&self) -> usize {
        self.order.len()
    }

    /// When waiting work can next run, if any waits.
    pub fn next_due(&self) -> Option<Duration> {
        let cost = self.order.front().and_then(|k| self.waiting.get(k)).map(|(_, c)| f64::from(*c))?;
        let short = (cost - self.tokens).max(0.0);
        Some(self.last + Duration::from_secs_f64(short / self.per_second))
    }

    /// Running totals.
    pub fn stats(&self) -> BudgetStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn runs_at_once_while_there_is_room() {
        let mut b = Budget::new(10, 3, 100);
        let mut out = Vec::new();
        for i in 0..3 {
            b.offer(v4(198, 18, 0, 2), i, 1, Duration::ZERO, &mut out);
        }
        assert_eq!(out, [0, 1, 2]);
        b.offer(v4(198, 18, 0, 2), 3, 1, Duration::ZERO, &mut out);
        assert_eq!(out.len(), 3, "the burst is spent: it waits");
        b.poll(Duration::from_millis(100), &mut out);
        assert_eq!(out, [0, 1, 2, 3], "after a tenth of a second at 10/s");
    }

    #[test]
    fn a_flood_from_many_prefixes_delays_another_prefix_by_one_turn_each() {
        // 10 units a second, nothing saved up; 200 flooding prefixes send 100 packets each,
        // and one legitimate packet arrives in the middle of it from a prefix of its own.
        let mut b = Budget::new(10, 1, 4096);
        let mut out = Vec::new();
        b.offer(v4(198, 18, 0, 1), "warm-up", 1, Duration::ZERO, &mut out);
        let mut now = Duration::ZERO;
        for round in 0..100u32 {
            for p in 0..200u32 {
                now += Duration::from_micros(1);
                b.offer(v4(198, 19, p as u8, (round % 250) as u8), "flood", 1, now, &mut out);
            }
            if round == 50 {
                b.offer(v4(203, 0, 113, 7), "legit", 1, now, &mut out);
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

    #[test]
    fn the_queue_has_a_cap() {
        let mut b = Budget::new(1, 1, 16);
        let mut out = Vec::new();
        for i in 0..=255u8 {
            b.offer(v4(10, 0, i, 1), i, 1, Duration::ZERO, &mut out);
        }
        assert_eq!(out, [0], "one ran at once");
        assert_eq!(b.waiting(), 16);
        assert!(b.next_due().is_some());
    }
}
