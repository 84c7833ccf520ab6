//! A checked view of an IPv6 header (the fixed 40 bytes; extension headers are not walked).

use std::net::Ipv6Addr;

use super::{Drop, Field, be_u16};

const VERSION: usize = 0;
const PAYLOAD_LEN: Field = 4..6;
const NEXT_HEADER: usize = 6;
#[cfg(any(test, feature = "testing"))]
const HOP_LIMIT: usize = 7;
const SRC: Field = 8..24;
const DST: Field = 24..40;
/// The fixed header.
pub const HEADER: usize = 40;

super::views! {
    /// An IPv6 packet whose fixed header is known to be complete.
    Ipv6, Ipv6Mut, HEADER, "an IPv6 header"
}

impl<'a> Ipv6<'a> {
    /// Checks the version and that the fixed header was captured.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, Drop> {
        if bytes.len() < HEADER {
            return Err(Drop::Truncated);
        }
        if bytes[VERSION] >> 4 != 6 {
            return Err(Drop::BadVersion);
        }
        Ok(Ipv6 { bytes })
    }

    fn addr(&self, field: Field) -> Ipv6Addr {
        let octets: [u8; 16] = self.bytes[field].try_into().expect("a 16-byte field of a checked header");
        Ipv6Addr::from(octets)
    }

    /// The next header (6 TCP, 17 UDP; anything else is an extension header or other).
    pub fn next_header(&self) -> u8 {
        self.bytes[NEXT_HEADER]
    }

    /// The source address.
    pub fn src(&self) -> Ipv6Addr {
        self.addr(SRC)
    }

    /// The destination address.
    pub fn dst(&self) -> Ipv6Addr {
        self.addr(DST)
    }

    /// What follows the fixed header, up to the payload length, as far as it was captured.
    pub fn payload(&self) -> &'a [u8] {
        let claimed = usize::from(be_u16(self.bytes, PAYLOAD_LEN));
        let end = (HEADER + claimed).min(self.bytes.len());
        &self.bytes[HEADER..end]
    }
}

#[cfg(any(test, feature = "testing"))]
impl<'a> Ipv6Mut<'a> {
    /// Version 6, with traffic class and flow label 0.
    pub fn set_version(&mut self) {
        self.bytes[VERSION..VERSION + 4].copy_from_slice(&[0x60, 0, 0, 0]);
    }

    /// The length of what follows the fixed header.
    pub fn set_payload_len(&mut self, len: u16) {
        super::build::set_be_u16(self.bytes, PAYLOAD_LEN, len);
    }

    /// The next header (6 TCP, 17 UDP, 0 hop-by-hop options...).
    pub fn set_next_header(&mut self, next: u8) {
        self.bytes[NEXT_HEADER] = next;
    }

    /// The hop limit.
    pub fn set_hop_limit(&mut self, hops: u8) {
        self.bytes[HOP_LIMIT] = hops;
    }

    /// The source address.
    pub fn set_src(&mut self, addr: Ipv6Addr) {
        self.bytes[SRC].copy_from_slice(&addr.octets());
    }

    /// The destination address.
    pub fn set_dst(&mut self, addr: Ipv6Addr) {
        self.bytes[DST].copy_from_slice(&addr.octets());
    }

    /// What follows the fixed header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[HEADER..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2001:db8::2 -> 2001:db8::1, UDP, payload length 12, then 2 bytes of padding.
    const PACKET: [u8; 54] = [
        0x60, 0, 0, 0, 0x00, 0x0c, 17, 64, //
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, //
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, //
        0x14, 0xe9, 0x23, 0x28, 0x00, 0x0c, 0x00, 0x00, b'k', b'n', b'o', b'k', 0xee, 0xee,
    ];

    #[test]
    fn deconstruct() {
        let ip = Ipv6::new_checked(&PACKET).unwrap();
        assert_eq!(ip.next_header(), 17);
        assert_eq!(ip.src(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ip.dst(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ip.payload().len(), 12);
    }

    #[test]
    fn construct() {
        let mut bytes = [0; 54];
        let mut ip = Ipv6Mut::new(&mut bytes);
        ip.set_version();
        ip.set_payload_len(12);
        ip.set_next_header(17);
        ip.set_hop_limit(64);
        ip.set_src("2001:db8::2".parse().unwrap());
        ip.set_dst("2001:db8::1".parse().unwrap());
        ip.payload_mut()[..12].copy_from_slice(&PACKET[40..52]);
        bytes[52..].fill(0xee); // link padding
        assert_eq!(bytes, PACKET);
    }

    #[test]
    fn truncated_and_bad() {
        for len in 0..HEADER {
            assert_eq!(Ipv6::new_checked(&PACKET[..len]).unwrap_err(), Drop::Truncated);
        }
        let mut p = PACKET;
        p[0] = 0x40;
        assert_eq!(Ipv6::new_checked(&p).unwrap_err(), Drop::BadVersion);
    }
}
