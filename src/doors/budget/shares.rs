//! Who holds the waiting places of a budget, counted by nested source prefixes: the family,
//! then a /8 and a /16 of IPv4 or a /16, a /32 and a /40 of IPv6, then the place itself (a /24,
//! or a /48). When the queue is over its cap, the place to give up is found by going down from
//! the top, each time into the group that holds the most places (on a tie, the one that began
//! waiting last). A flood from any number of prefixes in some networks therefore only ever
//! pushes out its own places, never a client waiting from a network it does not fill.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

/// A group of sources: its depth (1 for the address family, the deepest for a place) and the
/// prefix's bits, shifted down.
pub(super) type Group = (u8, u128);

const ROOT: Group = (0, 0);

/// The groups an address belongs to, outermost first; the last one is its place in the queue.
/// On the stack: it is made for every packet that takes a place.
pub(super) struct Path {
    groups: [Group; 5],
    len: usize,
}

impl std::ops::Deref for Path {
    type Target = [Group];

    fn deref(&self) -> &[Group] {
        &self.groups[..self.len]
    }
}

/// The groups `addr` belongs to.
pub(super) fn path(addr: IpAddr) -> Path {
    match addr {
        IpAddr::V4(a) => {
            let bits = u128::from(u32::from(a));
            Path { groups: [(1, 4), (2, bits >> 24), (3, bits >> 16), (4, bits >> 8), ROOT], len: 4 }
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            Path { groups: [(1, 6), (2, bits >> 112), (3, bits >> 96), (4, bits >> 88), (5, bits >> 80)], len: 5 }
        }
    }
}

/// The place of `addr` in the queue: the last of its [`path`].
pub(super) fn place(addr: IpAddr) -> Group {
    match addr {
        IpAddr::V4(a) => (4, u128::from(u32::from(a)) >> 8),
        IpAddr::V6(a) => (5, u128::from(a) >> 80),
    }
}

/// One group: the places it holds, when it began waiting (the budget's sequence number), and
/// its groups one level down ranked by (places, began, group).
#[derive(Debug)]
struct Node {
    count: u32,
    began: u64,
    children: BTreeSet<(u32, u64, Group)>,
}

/// The waiting places, counted by group. Keys are attacker-chosen, hence the random hasher
/// (`HashMap`'s default).
#[derive(Debug)]
pub(super) struct Shares {
    nodes: HashMap<Group, Node>,
}

impl Default for Shares {
    fn default() -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node { count: 0, began: 0, children: BTreeSet::new() });
        Shares { nodes }
    }
}

impl Shares {
    /// Counts a new place, on `path`, that began waiting at `seq`.
    pub fn add(&mut self, path: &[Group], seq: u64) {
        let mut parent = ROOT;
        self.nodes.get_mut(&ROOT).expect("the root is never removed").count += 1;
        for &group in path {
            let node = self.nodes.entry(group).or_insert(Node { count: 0, began: seq, children: BTreeSet::new() });
            let (was, began) = (node.count, node.began);
            node.count += 1;
            let up = &mut self.nodes.get_mut(&parent).expect("parents are added first").children;
            up.remove(&(was, began, group));
            up.insert((was + 1, began, group));
            parent = group;
        }
    }

    /// Forgets a place on `path` (served, or given up).
    pub fn remove(&mut self, path: &[Group]) {
        let mut parent = ROOT;
        if let Some(root) = self.nodes.get_mut(&ROOT) {
            root.count = root.count.saturating_sub(1);
        }
        for &group in path {
            let Some(node) = self.nodes.get_mut(&group) else { return };
            let (was, began) = (node.count, node.began);
            node.count -= 1;
            if node.count == 0 {
                self.nodes.remove(&group);
            }
            // A parent that just emptied is gone, and its ranking with it.
            if let Some(up) = self.nodes.get_mut(&parent) {
                up.children.remove(&(was, began, group));
                if was > 1 {
                    up.children.insert((was - 1, began, group));
                }
            }
            parent = group;
        }
    }

    /// The place to give up: down from the top, always into the largest group (on a tie, the
    /// newest). `None` when nothing waits.
    pub fn largest(&self) -> Option<Group> {
        let mut at = ROOT;
        while let Some(&(_, _, child)) = self.nodes.get(&at)?.children.last() {
            at = child;
        }
        (at != ROOT).then_some(at)
    }

    /// Groups counted, the top one included (bounded by the places times the depth).
    #[cfg(test)]
    pub fn groups(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(addr: &str) -> Vec<Group> {
        let addr = addr.parse().unwrap();
        assert_eq!(path(addr).last(), Some(&place(addr)));
        path(addr).to_vec()
    }

    #[test]
    fn gives_up_a_place_of_the_largest_group_and_forgets_emptied_groups() {
        let mut s = Shares::default();
        s.add(&at("2001:db8:1000::1"), 1);
        s.add(&at("2001:db8:1001::1"), 2);
        s.add(&at("2001:db8:ff00::1"), 3);
        s.add(&at("198.18.0.1"), 4);
        // The /40 2001:db8:10xx holds two places: the newer of them goes.
        assert_eq!(s.largest(), at("2001:db8:1001::1").last().copied());
        s.remove(&at("2001:db8:1001::1"));
        // Now every /40 holds one: the newest of them goes.
        assert_eq!(s.largest(), at("2001:db8:ff00::1").last().copied());
        s.remove(&at("2001:db8:ff00::1"));
        s.remove(&at("2001:db8:1000::1"));
        assert_eq!(s.largest(), at("198.18.0.1").last().copied());
        s.remove(&at("198.18.0.1"));
        assert_eq!(s.largest(), None);
        assert_eq!(s.groups(), 1, "only the top is left");
    }
}
