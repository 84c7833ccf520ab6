//! The packet a door's grant lets in, as the host's rules would see it: a new TCP SYN or UDP
//! datagram from a grantee, to one of the door's ports, on an interface knockd listens on.
//! What is known of it is known bit by bit; the source and destination addresses are sets
//! ([`Domain`]s) that rules split.

use super::domain::Domain;
use crate::config::Proto;

/// ARPHRD_ETHER and ARPHRD_LOOPBACK: `meta iiftype`.
pub const ARPHRD_ETHER: u16 = 1;
/// See [`ARPHRD_ETHER`].
pub const ARPHRD_LOOPBACK: u16 = 772;
/// `ct state new`, as the kernel's bit mask holds it.
pub const CT_STATE_NEW: u32 = 8;
/// `ct status dnat` (`IPS_DST_NAT`).
pub const CT_STATUS_DNAT: u32 = 0x20;

/// An interface, as rules can name it: by name, by index, by type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Interface {
    /// `eth0`.
    pub name: String,
    /// Its index (`iif`).
    pub index: u32,
    /// Its `ARPHRD_*` type (`meta iiftype`).
    pub kind: u16,
}

impl Interface {
    /// An Ethernet interface.
    pub fn ether(name: &str, index: u32) -> Interface {
        Interface { name: name.to_owned(), index, kind: ARPHRD_ETHER }
    }
}

/// The packet whose fate is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// TCP (a SYN) or UDP.
    pub proto: Proto,
    /// The destination port.
    pub dport: u16,
    /// Who may send it (the door's grantees of one family).
    pub saddr: Domain,
    /// Where it may be sent (this host's addresses of that family, or a forward's target).
    pub daddr: Domain,
    /// The interface it arrives on.
    pub iif: Interface,
    /// For a forwarded packet: the interface it leaves on.
    pub oif: Option<Interface>,
    /// `ct status` bits: 0 for a new connection to this host; [`CT_STATUS_DNAT`] for one a
    /// DNAT rule sent on.
    pub ct_status: u32,
}

impl Probe {
    /// Bytes of one address: 4 (IPv4) or 16.
    pub fn addr_bytes(&self) -> u8 {
        self.saddr.bytes
    }

    /// `NFPROTO_IPV4` or `NFPROTO_IPV6`.
    pub fn nfproto(&self) -> u8 {
        if self.addr_bytes() == 4 { super::model::nfproto::IPV4 } else { super::model::nfproto::IPV6 }
    }
}

/// Which address a symbolic byte belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The source address.
    Src,
    /// The destination address.
    Dst,
}

/// One byte of a register: known bits, or a byte of an address (under a mask).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs, reason = "each variant's doc names its fields")]
pub enum Byte {
    /// `value`'s bits where `known` is set are known; the others are not.
    Known { value: u8, known: u8 },
    /// Byte `index` of an address, with the bits of `mask` kept (the rest are zero).
    Addr { field: Field, index: u8, mask: u8 },
}

impl Byte {
    /// A byte knockd knows.
    pub const fn of(value: u8) -> Byte {
        Byte::Known { value, known: 0xff }
    }

    /// A byte knockd does not know.
    pub const UNKNOWN: Byte = Byte::Known { value: 0, known: 0 };
}

/// Bytes knockd knows.
pub fn known(bytes: &[u8]) -> Vec<Byte> {
    bytes.iter().map(|b| Byte::of(*b)).collect()
}

/// The bytes of an address field.
pub fn addr(field: Field, bytes: u8) -> Vec<Byte> {
    (0..bytes).map(|index| Byte::Addr { field, index, mask: 0xff }).collect()
}

/// `n` unknown bytes.
pub fn unknown(n: usize) -> Vec<Byte> {
    vec![Byte::UNKNOWN; n]
}

impl Probe {
    /// The IP header: version, protocol and addresses known; lengths, TTL and the like not.
    pub fn network_header(&self) -> Vec<Byte> {
        let proto = self.proto.number();
        if self.addr_bytes() == 4 {
            let mut h = vec![Byte::of(0x45)];
            h.extend(unknown(8));
            h.push(Byte::of(proto));
            h.extend(unknown(2));
            h.extend(addr(Field::Src, 4));
            h.extend(addr(Field::Dst, 4));
            h
        } else {
            let mut h = vec![Byte::Known { value: 0x60, known: 0xf0 }];
            h.extend(unknown(5));
            h.push(Byte::of(proto));
            h.push(Byte::UNKNOWN);
            h.extend(addr(Field::Src, 16));
            h.extend(addr(Field::Dst, 16));
            h
        }
    }

    /// The TCP or UDP header: the destination port (and a SYN's flags) known.
    pub fn transport_header(&self) -> Vec<Byte> {
        let mut h = unknown(2);
        h.extend(known(&self.dport.to_be_bytes()));
        match self.proto {
            Proto::Tcp => {
                h.extend(unknown(9));
                h.push(Byte::of(0x02)); // SYN
                h.extend(unknown(6));
            }
            Proto::Udp => h.extend(unknown(4)),
        }
        h
    }
}
