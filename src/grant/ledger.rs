//! What the daemon has granted, and until when. The kernel removes an element when its timeout
//! ends, silently; the ledger is how the daemon logs that moment, and says in `knockd status`
//! who opened what (the key, the stanza, the admin). Bounded: past the cap, the grant that ends
//! first is forgotten (it still ends in the kernel, only unlogged).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use crate::config::PortProto;

/// Grants remembered at most.
pub const CAPACITY: usize = 65_536;

/// What a grant is: a door's set element (an address, and a port for per-port doors).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The door's name.
    pub door: String,
    /// The address let in.
    pub addr: IpAddr,
    /// The port, for a door whose clients name ports.
    pub port: Option<PortProto>,
}

/// One live grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Who opened it, as the log says it: `key alice`, `admin uid 0`; `None` for a knock.
    pub by: Option<String>,
    /// When it ends, on the daemon's monotonic clock.
    pub until: Duration,
    /// How long it was given for.
    pub timeout: Duration,
}

/// Live grants, by key and by end time.
#[derive(Debug, Default)]
pub struct Ledger {
    entries: HashMap<Key, Entry>,
    by_end: BTreeSet<(Duration, Key)>,
}

impl Ledger {
    /// Records a grant made (or renewed) at `now` for `timeout`.
    pub fn record(&mut self, key: Key, by: Option<String>, timeout: Duration, now: Duration) {
        self.insert(key, Entry { by, until: now + timeout, timeout });
    }

    /// Records a grant found in the kernel at `now` with `left` of its `timeout` to go (the sets
    /// outlive a restart); `by` is the element's comment, who opened it.
    pub fn adopt(&mut self, key: Key, by: Option<String>, timeout: Duration, left: Duration, now: Duration) {
        self.insert(key, Entry { by, until: now + left, timeout });
    }

    fn insert(&mut self, key: Key, entry: Entry) {
        self.remove(&key);
        if self.entries.len() >= CAPACITY {
            if let Some((_, first)) = self.by_end.pop_first() {
                self.entries.remove(&first);
            }
        }
        self.by_end.insert((entry.until, key.clone()));
        self.entries.insert(key, entry);
    }

    /// Forgets a grant (revoked), returning it if it was live.
    pub fn remove(&mut self, key: &Key) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.by_end.remove(&(entry.until, key.clone()));
        Some(entry)
    }

    /// Takes out every grant that has ended at `now`, soonest first.
    pub fn ended(&mut self, now: Duration) -> Vec<(Key, Entry)> {
        let mut out = Vec::new();
        while self.by_end.first().is_some_and(|(until, _)| *until <= now) {
            let (_, key) = self.by_end.pop_first().expect("checked");
            if let Some(entry) = self.entries.remove(&key) {
                out.push((key, entry));
            }
        }
        out
    }

    /// When the next grant ends.
    pub fn next_due(&self) -> Option<Duration> {
        self.by_end.first().map(|(until, _)| *until)
    }

    /// The live grant of `key`, if there is one.
    pub fn get(&self, key: &Key) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Forgets the grants of doors that are gone (a reload removed them, with their sets).
    pub fn retain_doors(&mut self, doors: &[&str]) {
        let gone: Vec<Key> = self.entries.keys().filter(|k| !doors.contains(&k.door.as_str())).cloned().collect();
        for key in gone {
            self.remove(&key);
        }
    }

    /// Every live grant, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        self.entries.iter()
    }

    /// Live grants.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        Key { door: "ssh".into(), addr: IpAddr::from([198, 18, 0, n]), port: None }
    }

    #[test]
    fn ends_in_order_and_a_renewal_moves_the_end() {
        let mut l = Ledger::default();
        let s = Duration::from_secs;
        l.record(key(1), None, s(30), s(0));
        l.record(key(2), Some("key alice".into()), s(10), s(0));
        l.record(key(1), None, s(30), s(20)); // renewed: ends at 50
        assert_eq!(l.next_due(), Some(s(10)));
        assert_eq!(l.ended(s(10)).into_iter().map(|(k, _)| k).collect::<Vec<_>>(), [key(2)]);
        assert!(l.ended(s(49)).is_empty());
        assert_eq!(l.ended(s(50)).len(), 1);
        assert!(l.is_empty() && l.next_due().is_none());
    }

    #[test]
    fn bounded_by_forgetting_what_ends_first() {
        let mut l = Ledger::default();
        for i in 0..CAPACITY + 5 {
            let addr = IpAddr::from((0x0a00_0000u32 + i as u32).to_be_bytes());
            let k = Key { door: "d".into(), addr, port: None };
            l.record(k, None, Duration::from_secs(1000 + i as u64), Duration::ZERO);
        }
        assert_eq!(l.len(), CAPACITY);
        assert_eq!(l.next_due(), Some(Duration::from_secs(1005)));
    }
}
