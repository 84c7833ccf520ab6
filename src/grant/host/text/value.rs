//! What a selector (`tcp dport`, `ip saddr`, `ct state`...) loads, and how its values are
//! written.

use std::net::IpAddr;

use super::super::model::{CmpOp, Expr, PayloadBase, Verdict, nfproto};
use super::Indexes;
use super::lex::Tokens;

/// Where a selector's bytes come from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// A header, at an offset.
    Payload(PayloadBase, u32),
    /// `NFT_META_*`.
    Meta(u32),
    /// `NFT_CT_*`.
    Ct(u32),
}

/// How a selector's values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A port (big-endian; service names).
    Port,
    /// An IP protocol by name or number.
    Proto,
    /// `ipv4` / `ipv6`.
    Nfproto,
    /// An address of 4 or 16 bytes (prefixes, ranges).
    Addr,
    /// Bits tested as flags (`ct state`, `ct status`, `tcp flags`): a bare value means any.
    Flags,
    /// An interface name.
    Ifname,
    /// An interface by name, as its index.
    Ifindex,
    /// `meta iiftype`.
    Iftype,
    /// `meta pkttype`.
    Pkttype,
    /// An ICMP or ICMPv6 type.
    Icmp(bool),
    /// A plain number in host order (`meta mark`).
    Number,
}

/// A thing a rule matches on.
#[derive(Debug, Clone)]
pub struct Selector {
    /// Where its bytes come from.
    pub source: Source,
    /// How many bytes.
    pub len: u32,
    /// How its values read.
    pub kind: Kind,
    /// What flag values a `Flags` selector knows.
    pub flags: &'static [(&'static str, u32)],
    /// Expressions nft puts first (`meta l4proto tcp` before `tcp dport`).
    pub depends: Vec<[Expr; 2]>,
}

const CT_STATES: &[(&str, u32)] = &[("invalid", 1), ("established", 2), ("related", 4), ("new", 8), ("untracked", 64)];
const CT_STATUS: &[(&str, u32)] = &[
    ("expected", 1),
    ("seen-reply", 2),
    ("assured", 4),
    ("confirmed", 8),
    ("snat", 0x10),
    ("dnat", 0x20),
    ("dying", 0x200),
];
const TCP_FLAGS: &[(&str, u32)] =
    &[("fin", 1), ("syn", 2), ("rst", 4), ("psh", 8), ("ack", 0x10), ("urg", 0x20), ("ecn", 0x40), ("cwr", 0x80)];

fn dep(key: u32, value: u8) -> [Expr; 2] {
    [Expr::Meta { key, dreg: 8 }, Expr::Cmp { sreg: 8, op: CmpOp::Eq, data: vec![value] }]
}

/// Reads a selector's words.
pub fn selector(t: &mut Tokens, family: u8) -> Result<Selector, String> {
    let first = t.next().ok_or("a match without a selector")?;
    let second = if ["ct", "meta", "tcp", "udp", "th", "ip", "ip6", "icmp", "icmpv6"].contains(&first.as_str()) {
        t.next().ok_or_else(|| format!("{first} what?"))?
    } else {
        String::new()
    };
    let mk = |source, len, kind| Selector { source, len, kind, flags: &[], depends: Vec::new() };
    let ip_dep = |v6: bool| if family == nfproto::INET { vec![dep(15, if v6 { 10 } else { 2 })] } else { Vec::new() };
    let mut s = match (first.as_str(), second.as_str()) {
        ("ct", "state") => Selector { flags: CT_STATES, ..mk(Source::Ct(0), 4, Kind::Flags) },
        ("ct", "status") => Selector { flags: CT_STATUS, ..mk(Source::Ct(2), 4, Kind::Flags) },
        ("ct", "mark") => mk(Source::Ct(3), 4, Kind::Number),
        ("meta", "iifname") | ("iifname", "") => mk(Source::Meta(6), 16, Kind::Ifname),
        ("meta", "oifname") | ("oifname", "") => mk(Source::Meta(7), 16, Kind::Ifname),
        ("meta", "iif") | ("iif", "") => mk(Source::Meta(4), 4, Kind::Ifindex),
        ("meta", "oif") | ("oif", "") => mk(Source::Meta(5), 4, Kind::Ifindex),
        ("meta", "iiftype") | ("iiftype", "") => mk(Source::Meta(8), 2, Kind::Iftype),
        ("meta", "l4proto") => mk(Source::Meta(16), 1, Kind::Proto),
        ("meta", "nfproto") => mk(Source::Meta(15), 1, Kind::Nfproto),
        ("meta", "pkttype") | ("pkttype", "") => mk(Source::Meta(19), 1, Kind::Pkttype),
        ("meta", "mark") | ("mark", "") => mk(Source::Meta(3), 4, Kind::Number),
        (p @ ("tcp" | "udp" | "th"), f @ ("dport" | "sport")) => {
            let offset = if f == "dport" { 2 } else { 0 };
            let mut s = mk(Source::Payload(PayloadBase::Transport, offset), 2, Kind::Port);
            if p != "th" {
                s.depends.push(dep(16, if p == "tcp" { 6 } else { 17 }));
            }
            s
        }
        ("tcp", "flags") => {
            let mut s =
                Selector { flags: TCP_FLAGS, ..mk(Source::Payload(PayloadBase::Transport, 13), 1, Kind::Flags) };
            s.depends.push(dep(16, 6));
            s
        }
        ("ip", f @ ("saddr" | "daddr")) => {
            let off = if f == "saddr" { 12 } else { 16 };
            Selector { depends: ip_dep(false), ..mk(Source::Payload(PayloadBase::Network, off), 4, Kind::Addr) }
        }
        ("ip", "protocol") => {
            Selector { depends: ip_dep(false), ..mk(Source::Payload(PayloadBase::Network, 9), 1, Kind::Proto) }
        }
        ("ip6", f @ ("saddr" | "daddr")) => {
            let off = if f == "saddr" { 8 } else { 24 };
            Selector { depends: ip_dep(true), ..mk(Source::Payload(PayloadBase::Network, off), 16, Kind::Addr) }
        }
        ("ip6", "nexthdr") => {
            Selector { depends: ip_dep(true), ..mk(Source::Payload(PayloadBase::Network, 6), 1, Kind::Proto) }
        }
        (p @ ("icmp" | "icmpv6"), "type") => {
            let v6 = p == "icmpv6";
            let mut s = mk(Source::Payload(PayloadBase::Transport, 0), 1, Kind::Icmp(v6));
            s.depends.push(dep(16, if v6 { 58 } else { 1 }));
            s
        }
        (a, b) => return Err(format!("unsupported selector: {a} {b}")),
    };
    if s.kind == Kind::Addr && family != nfproto::INET {
        s.depends.clear();
    }
    Ok(s)
}

/// A value as bytes: one, a prefix (value and mask), or a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// One value.
    Bytes(Vec<u8>),
    /// An address prefix: the masked address and the mask.
    Prefix(Vec<u8>, Vec<u8>),
    /// From, to (inclusive).
    Range(Vec<u8>, Vec<u8>),
}

impl Value {
    /// The first and last key the value covers.
    pub fn bounds(self) -> (Vec<u8>, Vec<u8>) {
        match self {
            Value::Bytes(b) => (b.clone(), b),
            Value::Prefix(b, m) => {
                let hi = b.iter().zip(&m).map(|(b, m)| b | !m).collect();
                (b, hi)
            }
            Value::Range(lo, hi) => (lo, hi),
        }
    }
}

fn number(word: &str) -> Option<u64> {
    match word.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => word.parse().ok(),
    }
}

fn proto(word: &str) -> Option<u8> {
    Some(match word {
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmpv6" | "ipv6-icmp" => 58,
        "sctp" => 132,
        "udplite" => 136,
        n => return number(n).and_then(|n| u8::try_from(n).ok()),
    })
}

fn port(word: &str) -> Option<u16> {
    Some(match word {
        "ssh" => 22,
        "domain" => 53,
        "http" => 80,
        "https" => 443,
        "dhcpv6-client" => 546,
        "mdns" => 5353,
        n => return number(n).and_then(|n| u16::try_from(n).ok()),
    })
}

fn icmp(word: &str, v6: bool) -> Option<u8> {
    let names: &[(&str, u8)] = if v6 {
        &[
            ("destination-unreachable", 1),
            ("packet-too-big", 2),
            ("time-exceeded", 3),
            ("parameter-problem", 4),
            ("echo-request", 128),
            ("echo-reply", 129),
            ("mld-listener-query", 130),
            ("nd-router-solicit", 133),
            ("nd-router-advert", 134),
            ("nd-neighbor-solicit", 135),
            ("nd-neighbor-advert", 136),
            ("nd-redirect", 137),
        ]
    } else {
        &[("echo-reply", 0), ("destination-unreachable", 3), ("echo-request", 8), ("time-exceeded", 11)]
    };
    names.iter().find(|(n, _)| *n == word).map(|(_, v)| *v).or_else(|| number(word).and_then(|n| u8::try_from(n).ok()))
}

fn addr_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

impl Selector {
    /// One value of this selector, as written in a rule.
    pub fn value(&self, word: &str, indexes: &Indexes) -> Result<Value, String> {
        let bad = || format!("cannot read {word:?} here");
        if let Some((lo, hi)) = word.split_once('-').filter(|_| matches!(self.kind, Kind::Port | Kind::Addr)) {
            if let (Ok(Value::Bytes(lo)), Ok(Value::Bytes(hi))) = (self.value(lo, indexes), self.value(hi, indexes)) {
                return Ok(Value::Range(lo, hi));
            }
        }
        let ne32 = |n: u32| n.to_ne_bytes().to_vec();
        Ok(Value::Bytes(match self.kind {
            Kind::Port => port(word).ok_or_else(bad)?.to_be_bytes().to_vec(),
            Kind::Proto => vec![proto(word).ok_or_else(bad)?],
            Kind::Nfproto => vec![match word {
                "ipv4" => 2,
                "ipv6" => 10,
                _ => return Err(bad()),
            }],
            Kind::Pkttype => vec![match word {
                "host" => 0,
                "broadcast" => 1,
                "multicast" => 2,
                "other" => 3,
                _ => return Err(bad()),
            }],
            Kind::Iftype => match word {
                "loopback" => 772u16,
                "ether" => 1,
                _ => return Err(bad()),
            }
            .to_ne_bytes()
            .to_vec(),
            Kind::Icmp(v6) => vec![icmp(word, v6).ok_or_else(bad)?],
            Kind::Number => ne32(number(word).and_then(|n| u32::try_from(n).ok()).ok_or_else(bad)?),
            Kind::Flags => {
                let mut bits = 0u32;
                for part in word.split(',') {
                    bits |= self.flags.iter().find(|(n, _)| *n == part).map(|(_, b)| *b).ok_or_else(bad)?;
                }
                if self.len == 1 { vec![bits as u8] } else { ne32(bits) }
            }
            Kind::Ifname => ifname(word),
            Kind::Ifindex => {
                let name = word.trim_matches('"');
                let index = if name == "lo" { Some(1) } else { indexes.get(name).copied() };
                ne32(index.ok_or_else(|| format!("no index for interface {name}"))?)
            }
            Kind::Addr => match word.split_once('/') {
                Some((addr, len)) => return prefix(addr, len).ok_or_else(bad),
                None => addr_bytes(word.parse().map_err(|_| bad())?),
            },
        }))
    }
}

/// An interface name as `iifname` compares it: NUL-padded to IFNAMSIZ, or, with a trailing
/// `*`, the prefix alone.
fn ifname(word: &str) -> Vec<u8> {
    let name = word.trim_matches('"');
    match name.strip_suffix('*') {
        Some(prefix) => prefix.as_bytes().to_vec(),
        None => {
            let mut b = name.as_bytes().to_vec();
            b.resize(16, 0);
            b
        }
    }
}

/// `198.18.0.0/15`: the masked address and its mask.
fn prefix(addr: &str, len: &str) -> Option<Value> {
    let addr: IpAddr = addr.parse().ok()?;
    let len: u32 = len.parse().ok()?;
    let bytes = addr_bytes(addr);
    let mask: Vec<u8> = (0..bytes.len() as u32)
        .map(|i| {
            let bits = len.saturating_sub(8 * i).min(8);
            if bits == 0 { 0 } else { 0xffu8 << (8 - bits) }
        })
        .collect();
    let masked = bytes.iter().zip(&mask).map(|(b, m)| b & m).collect();
    Some(Value::Prefix(masked, mask))
}

/// The bytes after `bytes`, as a big-endian number plus one; `None` past the last.
pub fn next(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = bytes.to_vec();
    for b in out.iter_mut().rev() {
        let (v, carry) = b.overflowing_add(1);
        *b = v;
        if !carry {
            return Some(out);
        }
    }
    None
}

/// A map element's verdict.
pub fn verdict(text: &str) -> Result<Verdict, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    Ok(match words.as_slice() {
        ["accept"] => Verdict::Accept,
        ["drop"] => Verdict::Drop,
        ["continue"] => Verdict::Continue,
        ["return"] => Verdict::Return,
        ["jump", chain] => Verdict::Jump((*chain).to_owned()),
        ["goto", chain] => Verdict::Goto((*chain).to_owned()),
        _ => return Err(format!("not a verdict: {text}")),
    })
}

/// Bytes of a key of this nft type (`ipv4_addr`...); `None` for a type knockd does not know.
pub fn type_len(name: &str) -> Option<u32> {
    Some(match name {
        "ipv4_addr" => 4,
        "ipv6_addr" => 16,
        "inet_service" => 2,
        "inet_proto" => 1,
        "ifname" => 16,
        "mark" => 4,
        "ether_addr" => 6,
        "ct_state" => 4,
        _ => return None,
    })
}
