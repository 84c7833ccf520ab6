//! Sets of addresses as sorted ranges: who a door may grant (its `from`, less its
//! `not_from`), narrowed as rules compare the source address. An evaluation splits it where a
//! rule treats addresses differently, so the answer can say "dropped, except from 10.0.0.0/8".

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Ranges kept at most; past that a domain is not split further (the rule is "cannot tell").
pub const MAX_RANGES: usize = 256;

/// A set of IPv4 or IPv6 addresses, as sorted, disjoint, inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Domain {
    /// 4 or 16: the bytes of an address.
    pub bytes: u8,
    ranges: Vec<(u128, u128)>,
}

impl Domain {
    /// Every address of the family with `bytes` (4 or 16) bytes.
    pub fn all(bytes: u8) -> Domain {
        Domain { bytes, ranges: vec![(0, Self::max_of(bytes))] }
    }

    /// No address.
    pub fn none(bytes: u8) -> Domain {
        Domain { bytes, ranges: Vec::new() }
    }

    /// One address.
    pub fn one(addr: IpAddr) -> Domain {
        let (bytes, n) = number(addr);
        Domain { bytes, ranges: vec![(n, n)] }
    }

    /// The addresses of the prefixes of this family among `nets`.
    pub fn of_nets(bytes: u8, nets: &[IpNet]) -> Domain {
        let mut d = Domain::none(bytes);
        for net in nets.iter().filter(|n| family_bytes(n.addr()) == bytes) {
            let (_, lo) = number(net.network());
            let (_, hi) = number(net.broadcast());
            d = d.union(&Domain { bytes, ranges: vec![(lo, hi)] });
        }
        d
    }

    /// One inclusive range.
    pub fn range(bytes: u8, lo: u128, hi: u128) -> Domain {
        if lo > hi { Domain::none(bytes) } else { Domain { bytes, ranges: vec![(lo, hi)] } }
    }

    fn max_of(bytes: u8) -> u128 {
        if bytes >= 16 { u128::MAX } else { (1u128 << (8 * u32::from(bytes))) - 1 }
    }

    /// The largest address.
    pub fn max(&self) -> u128 {
        Self::max_of(self.bytes)
    }

    /// Whether it holds no address.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether it holds every address of its family.
    pub fn is_all(&self) -> bool {
        self.ranges == [(0, self.max())]
    }

    /// Its ranges.
    pub fn ranges(&self) -> &[(u128, u128)] {
        &self.ranges
    }

    /// The addresses in both.
    pub fn intersect(&self, other: &Domain) -> Domain {
        let mut out = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a, b) = (self.ranges[i], other.ranges[j]);
            let (lo, hi) = (a.0.max(b.0), a.1.min(b.1));
            if lo <= hi {
                out.push((lo, hi));
            }
            if a.1 < b.1 { i += 1 } else { j += 1 }
        }
        Domain { bytes: self.bytes, ranges: out }
    }

    /// The addresses of its family that it does not hold.
    pub fn complement(&self) -> Domain {
        let mut out = Vec::new();
        let mut next = Some(0u128);
        for &(lo, hi) in &self.ranges {
            if let Some(n) = next.filter(|n| *n < lo) {
                out.push((n, lo - 1));
            }
            next = hi.checked_add(1);
        }
        if let Some(n) = next.filter(|n| *n <= self.max()) {
            out.push((n, self.max()));
        }
        Domain { bytes: self.bytes, ranges: out }
    }

    /// The addresses in either.
    pub fn union(&self, other: &Domain) -> Domain {
        Domain::from_ranges(self.bytes, self.ranges.iter().chain(&other.ranges).copied().collect())
    }

    /// The addresses in any of these inclusive ranges (in any order, overlapping or not): one
    /// sort, so a set of many elements costs `n log n`, not `n` unions.
    pub fn from_ranges(bytes: u8, mut all: Vec<(u128, u128)>) -> Domain {
        all.retain(|(lo, hi)| lo <= hi);
        all.sort_unstable();
        let mut out: Vec<(u128, u128)> = Vec::with_capacity(all.len());
        for (lo, hi) in all {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        Domain { bytes, ranges: out }
    }

    /// The addresses in this one and not in `other`.
    pub fn minus(&self, other: &Domain) -> Domain {
        self.intersect(&other.complement())
    }

    /// Whether it holds `addr`.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let (bytes, n) = number(addr);
        bytes == self.bytes && self.ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&n))
    }

    /// Whether it is too fragmented to split further.
    pub fn is_too_fragmented(&self) -> bool {
        self.ranges.len() > MAX_RANGES
    }

    /// An address from it (the lowest), if any.
    pub fn first(&self) -> Option<IpAddr> {
        self.ranges.first().map(|(lo, _)| address(self.bytes, *lo))
    }
}

fn family_bytes(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 4 } else { 16 }
}

/// An address as a number, with its size in bytes.
pub fn number(addr: IpAddr) -> (u8, u128) {
    match addr {
        IpAddr::V4(a) => (4, u128::from(u32::from(a))),
        IpAddr::V6(a) => (16, u128::from(a)),
    }
}

/// The address of a number.
pub fn address(bytes: u8, n: u128) -> IpAddr {
    if bytes == 4 { IpAddr::V4(Ipv4Addr::from(n as u32)) } else { IpAddr::V6(Ipv6Addr::from(n)) }
}

/// The largest prefix that starts at `lo` and ends at or before `hi`.
fn prefix_at(bytes: u8, lo: u128, hi: u128) -> (u128, u32) {
    let bits = 8 * u32::from(bytes);
    let mut len = bits;
    while len > 0 {
        let size_bits = bits - (len - 1);
        let mask = if size_bits >= 128 { u128::MAX } else { (1u128 << size_bits) - 1 };
        if lo & mask != 0 || lo.checked_add(mask).is_none_or(|end| end > hi) {
            break;
        }
        len -= 1;
    }
    let size_bits = bits - len;
    let end = if size_bits >= 128 { u128::MAX } else { lo + ((1u128 << size_bits) - 1) };
    (end, len)
}

/// As prefixes: `10.0.0.0/8, 192.168.1.0/24`; `any` when it is every address, and only the
/// first few prefixes of a fragmented set.
impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str(if self.bytes == 4 { "any IPv4 address" } else { "any IPv6 address" });
        }
        let mut nets = Vec::new();
        'ranges: for &(lo, hi) in &self.ranges {
            let mut at = lo;
            loop {
                let (end, len) = prefix_at(self.bytes, at, hi);
                let addr = address(self.bytes, at);
                let full = 8 * u32::from(self.bytes);
                nets.push(if len == full { addr.to_string() } else { format!("{addr}/{len}") });
                if nets.len() > 8 {
                    break 'ranges;
                }
                match end.checked_add(1) {
                    Some(next) if next <= hi => at = next,
                    _ => break,
                }
            }
        }
        if nets.len() > 8 {
            nets.truncate(8);
            nets.push("...".into());
        }
        f.write_str(&nets.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn set_operations_and_prefix_display() {
        let lan = Domain::of_nets(4, &[net("10.0.0.0/8"), net("192.168.1.0/24")]);
        assert_eq!(lan.to_string(), "10.0.0.0/8, 192.168.1.0/24");
        let rest = Domain::all(4).minus(&lan);
        assert!(rest.contains("198.18.0.2".parse().unwrap()) && !rest.contains("10.1.2.3".parse().unwrap()));
        assert_eq!(rest.union(&lan), Domain::all(4));
        assert!(rest.intersect(&lan).is_empty());
        assert_eq!(lan.complement().complement(), lan);
        assert_eq!(Domain::all(16).to_string(), "any IPv6 address");
        assert_eq!(Domain::one("2001:db8::2".parse().unwrap()).to_string(), "2001:db8::2");
        let odd = Domain::range(4, 0x0a00_0001, 0x0a00_0006);
        assert_eq!(odd.to_string(), "10.0.0.1, 10.0.0.2/31, 10.0.0.4/31, 10.0.0.6");
    }

    #[test]
    fn a_v6_family_of_all_and_none() {
        let all = Domain::all(16);
        assert!(all.is_all() && all.complement().is_empty());
        assert_eq!(Domain::none(16).complement(), all);
        assert_eq!(Domain::of_nets(16, &[net("::/0")]), all);
    }
}
