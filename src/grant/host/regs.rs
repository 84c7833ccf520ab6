//! The registers of one evaluation, and the loads that fill them from the probe.

use std::rc::Rc;

use super::model::PayloadBase;
use super::probe::{Byte, CT_STATE_NEW, Probe, known, unknown};

/// 16 registers of 4 bytes; the four 16-byte registers overlay them.
pub const BYTES: usize = 64;

/// Where register `reg` starts, in bytes; `None` for the verdict register or a bad number.
pub fn offset(reg: u32) -> Option<usize> {
    match reg {
        1..=4 => Some((reg as usize - 1) * 16),
        8..=23 => Some((reg as usize - 8) * 4),
        _ => None,
    }
}

/// The registers, with what loaded each 4-byte word when it holds bits knockd does not know.
#[derive(Debug, Clone)]
pub struct Regs {
    bytes: [Byte; BYTES],
    why: [Option<Rc<str>>; BYTES / 4],
}

impl Default for Regs {
    fn default() -> Self {
        Regs { bytes: [Byte::of(0); BYTES], why: Default::default() }
    }
}

impl Regs {
    /// Loads `data` into `reg`. As in the kernel, the rest of a partly filled word is zeroed.
    /// `why` names the expression, for an answer that says what it could not know.
    pub fn load(&mut self, reg: u32, mut data: Vec<Byte>, why: &str) -> Option<()> {
        let at = offset(reg)?;
        data.resize(data.len().next_multiple_of(4), Byte::of(0));
        let words = self.bytes.get_mut(at..at + data.len())?;
        words.copy_from_slice(&data);
        let unknown = data.iter().any(|b| matches!(b, Byte::Known { known, .. } if *known != 0xff));
        let why: Option<Rc<str>> = unknown.then(|| Rc::from(why));
        for w in at / 4..(at + data.len()) / 4 {
            self.why[w].clone_from(&why);
        }
        Some(())
    }

    /// `len` bytes from `reg`.
    pub fn read(&self, reg: u32, len: usize) -> Option<&[Byte]> {
        let at = offset(reg)?;
        self.bytes.get(at..at + len)
    }

    /// What loaded bits knockd does not know into these bytes of `reg`.
    pub fn why(&self, reg: u32, len: usize) -> String {
        let at = offset(reg).unwrap_or(0);
        let found = (at / 4..(at + len).div_ceil(4).min(BYTES / 4)).find_map(|w| self.why[w].clone());
        found.map_or_else(|| "an expression".to_owned(), |w| w.to_string())
    }
}

/// What a load gives: bytes, or nothing at all (the kernel then ends the rule, as `meta oif`
/// does for a packet to this host).
pub enum Loaded {
    /// The bytes.
    Bytes(Vec<Byte>),
    /// No value: the rule does not match.
    Break,
}

const META_NAMES: [&str; 36] = [
    "len",
    "protocol",
    "priority",
    "mark",
    "iif",
    "oif",
    "iifname",
    "oifname",
    "iiftype",
    "oiftype",
    "skuid",
    "skgid",
    "nftrace",
    "rtclassid",
    "secmark",
    "nfproto",
    "l4proto",
    "ibrname",
    "obrname",
    "pkttype",
    "cpu",
    "iifgroup",
    "oifgroup",
    "cgroup",
    "random",
    "ipsec",
    "iifkind",
    "oifkind",
    "ibrpvid",
    "ibrvproto",
    "time",
    "day",
    "hour",
    "sdif",
    "sdifname",
    "broute",
];

const CT_NAMES: [&str; 24] = [
    "state",
    "direction",
    "status",
    "mark",
    "secmark",
    "expiration",
    "helper",
    "l3proto",
    "saddr",
    "daddr",
    "protocol",
    "proto-src",
    "proto-dst",
    "label",
    "packets",
    "bytes",
    "avgpkt",
    "zone",
    "event",
    "ip saddr",
    "ip daddr",
    "ip6 saddr",
    "ip6 daddr",
    "id",
];

/// `meta KEY`, for naming what knockd cannot know.
pub fn meta_name(key: u32) -> String {
    format!("meta {}", META_NAMES.get(key as usize).copied().unwrap_or("?"))
}

/// `ct KEY`.
pub fn ct_name(key: u32) -> String {
    format!("ct {}", CT_NAMES.get(key as usize).copied().unwrap_or("?"))
}

fn ifname(name: &str) -> Vec<Byte> {
    let mut bytes = name.as_bytes().to_vec();
    bytes.resize(16, 0);
    known(&bytes)
}

/// `meta KEY` for the probe; `None` for a key knockd cannot know.
pub fn meta(probe: &Probe, key: u32) -> Option<Loaded> {
    let ethertype: u16 = if probe.addr_bytes() == 4 { 0x0800 } else { 0x86dd };
    let oif = probe.oif.as_ref();
    Some(Loaded::Bytes(match key {
        1 => known(&ethertype.to_be_bytes()),
        4 => known(&probe.iif.index.to_ne_bytes()),
        6 => ifname(&probe.iif.name),
        8 => known(&probe.iif.kind.to_ne_bytes()),
        5 | 7 | 9 if oif.is_none() => return Some(Loaded::Break),
        5 => known(&oif?.index.to_ne_bytes()),
        7 => ifname(&oif?.name),
        9 => known(&oif?.kind.to_ne_bytes()),
        15 => known(&[probe.nfproto()]),
        16 => known(&[probe.proto.number()]),
        19 => known(&[0]), // PACKET_HOST
        _ => return None,
    }))
}

/// `ct KEY` for the probe (a new connection, original direction); `None` for a key knockd
/// cannot know.
pub fn ct(probe: &Probe, key: u32) -> Option<Vec<Byte>> {
    use super::probe::{Field, addr};
    let bytes = probe.addr_bytes();
    Some(match key {
        0 => known(&CT_STATE_NEW.to_ne_bytes()),
        1 => known(&[0]),
        2 => known(&probe.ct_status.to_ne_bytes()),
        7 => known(&[probe.nfproto()]),
        8 => addr(Field::Src, bytes),
        9 => addr(Field::Dst, bytes),
        10 => known(&[probe.proto.number()]),
        12 => known(&probe.dport.to_be_bytes()),
        19 if bytes == 4 => addr(Field::Src, 4),
        20 if bytes == 4 => addr(Field::Dst, 4),
        21 if bytes == 16 => addr(Field::Src, 16),
        22 if bytes == 16 => addr(Field::Dst, 16),
        _ => return None,
    })
}

/// `len` bytes at `offset` of a header of the probe; bytes past the header are unknown.
pub fn payload(probe: &Probe, base: PayloadBase, offset: u32, len: u32) -> Vec<Byte> {
    let header = match base {
        PayloadBase::Network => probe.network_header(),
        PayloadBase::Transport => probe.transport_header(),
        PayloadBase::Link | PayloadBase::Other => Vec::new(),
    };
    let (offset, len) = (offset as usize, len as usize);
    let mut out: Vec<Byte> = header.iter().skip(offset).take(len).copied().collect();
    out.extend(unknown(len - out.len()));
    out
}

/// Names a payload load for an answer: `the IP header's bytes 8-8`.
pub fn payload_name(base: PayloadBase, offset: u32, len: u32) -> String {
    let header = match base {
        PayloadBase::Link => "link-layer header",
        PayloadBase::Network => "IP header",
        PayloadBase::Transport => "transport header",
        PayloadBase::Other => "inner header",
    };
    format!("the {header}'s bytes {offset}-{}", offset + len.max(1) - 1)
}

/// `NFT_FIB_RESULT_OIF`, `_OIFNAME`, `_ADDRTYPE`.
const FIB_OIF: u32 = 1;
const FIB_OIFNAME: u32 = 2;
const FIB_ADDRTYPE: u32 = 3;
/// `NFTA_FIB_F_SADDR`, `_DADDR`, `_PRESENT`.
const FIB_F_SADDR: u32 = 1;
const FIB_F_DADDR: u32 = 2;
const FIB_F_PRESENT: u32 = 32;
/// `RTN_UNICAST`, `RTN_LOCAL`.
const RTN_UNICAST: u32 = 1;
const RTN_LOCAL: u32 = 2;

/// A route lookup for the probe, under one assumption said in doc/coexistence: a grantee's
/// address routes back through the interface its packet came in on (reverse-path filters
/// such as firewalld's `fib saddr . mark . iif oif missing drop` pass it). A packet to this host
/// is sent to a local address; a forwarded one to a unicast one. `None`: knockd cannot know.
pub fn fib(probe: &Probe, result: u32, flags: u32) -> Option<Vec<Byte>> {
    let forwarded = probe.oif.is_some();
    Some(match (result, flags & (FIB_F_SADDR | FIB_F_DADDR)) {
        (FIB_OIF, FIB_F_SADDR) if flags & FIB_F_PRESENT != 0 => known(&1u32.to_ne_bytes()),
        (FIB_OIF, FIB_F_SADDR) => known(&probe.iif.index.to_ne_bytes()),
        (FIB_OIFNAME, FIB_F_SADDR) => ifname(&probe.iif.name),
        (FIB_ADDRTYPE, FIB_F_SADDR) => known(&RTN_UNICAST.to_ne_bytes()),
        (FIB_ADDRTYPE, FIB_F_DADDR) if forwarded => known(&RTN_UNICAST.to_ne_bytes()),
        (FIB_ADDRTYPE, FIB_F_DADDR) => known(&RTN_LOCAL.to_ne_bytes()),
        _ => return None,
    })
}
