//! A checked view of an IPv6 header (the fixed 40 bytes; extension headers are not walked).

use std::net::Ipv6Addr;

use super::{Drop, Field, be_u16};

const PAYLOAD_LEN: Field = 4..6;
const NEXT_HEADER: usize = 6;
const SRC: Field = 8..24;
const DST: Field = 24..40;
/// The fixed header.
pub const HEADER: usize = 40;

/// An IPv6 packet whose fixed header is known to be complete.
#[derive(Debug, Clone, Copy)]
pub struct Ipv6<'a> {
    bytes: &'a [u8],
}

impl<'a> Ipv6<'a> {
    /// Checks the version and that the fixed header was captured.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, Drop> {
        if bytes.len() < HEADER {
            return Err(Drop::Truncated);
        }
        if bytes[0] >> 4 != 6 {
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
    fn truncated_and_bad() {
        for len in 0..HEADER {
            assert_eq!(Ipv6::new_checked(&PACKET[..len]).unwrap_err(), Drop::Truncated);
        }
        let mut p = PACKET;
        p[0] = 0x40;
        assert_eq!(Ipv6::new_checked(&p).unwrap_err(), Drop::BadVersion);
    }
}
