//! A checked view of an IPv4 header.

use std::net::Ipv4Addr;

use super::{Drop, Field, be_u16};

const VER_IHL: usize = 0;
const TOTAL_LEN: Field = 2..4;
const IDENT: Field = 4..6;
const FLG_OFF: Field = 6..8;
const PROTOCOL: usize = 9;
const SRC: Field = 12..16;
const DST: Field = 16..20;
/// The smallest header: no options.
pub const MIN_HEADER: usize = 20;

/// An IPv4 packet whose header is known to be complete: every accessor is infallible.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4<'a> {
    bytes: &'a [u8],
}

impl<'a> Ipv4<'a> {
    /// Checks the version, the header length and that the whole header was captured.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, Drop> {
        if bytes.len() < MIN_HEADER {
            return Err(Drop::Truncated);
        }
        let view = Ipv4 { bytes };
        if bytes[VER_IHL] >> 4 != 4 {
            return Err(Drop::BadVersion);
        }
        if view.header_len() < MIN_HEADER {
            return Err(Drop::BadHeaderLength);
        }
        if bytes.len() < view.header_len() {
            return Err(Drop::Truncated);
        }
        if view.total_len() < view.header_len() {
            return Err(Drop::BadHeaderLength);
        }
        Ok(view)
    }

    /// Header length in bytes (IHL words times four).
    pub fn header_len(&self) -> usize {
        usize::from(self.bytes[VER_IHL] & 0x0f) * 4
    }

    /// The total length the sender claims; the capture may hold less (the filter cuts packets).
    pub fn total_len(&self) -> usize {
        usize::from(be_u16(self.bytes, TOTAL_LEN))
    }

    /// The identification field: tells a duplicated datagram from a new one.
    pub fn ident(&self) -> u16 {
        be_u16(self.bytes, IDENT)
    }

    /// Whether this is a fragment other than the first: it carries no transport header.
    pub fn is_later_fragment(&self) -> bool {
        be_u16(self.bytes, FLG_OFF) & 0x1fff != 0
    }

    /// The transport protocol number (6 TCP, 17 UDP).
    pub fn protocol(&self) -> u8 {
        self.bytes[PROTOCOL]
    }

    /// The source address.
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::new(
            self.bytes[SRC.start],
            self.bytes[SRC.start + 1],
            self.bytes[SRC.start + 2],
            self.bytes[SRC.end - 1],
        )
    }

    /// The destination address.
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::new(
            self.bytes[DST.start],
            self.bytes[DST.start + 1],
            self.bytes[DST.start + 2],
            self.bytes[DST.end - 1],
        )
    }

    /// What follows the header, up to the total length (link padding is not payload), as far as
    /// it was captured.
    pub fn payload(&self) -> &'a [u8] {
        let end = self.total_len().min(self.bytes.len());
        &self.bytes[self.header_len()..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 198.18.0.2 -> 198.18.0.1, TCP, total length 40, ident 0x1234, 4 bytes of link padding.
    const PACKET: [u8; 44] = [
        0x45, 0x00, 0x00, 0x28, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 198, 18, 0, 2, 198, 18, 0, 1, //
        0x9c, 0x40, 0x1b, 0x58, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0, //
        0xee, 0xee, 0xee, 0xee,
    ];

    #[test]
    fn deconstruct() {
        let ip = Ipv4::new_checked(&PACKET).unwrap();
        assert_eq!((ip.header_len(), ip.total_len(), ip.ident(), ip.protocol()), (20, 40, 0x1234, 6));
        assert_eq!((ip.src(), ip.dst()), (Ipv4Addr::new(198, 18, 0, 2), Ipv4Addr::new(198, 18, 0, 1)));
        assert_eq!(ip.payload().len(), 20, "the padding past the total length is not payload");
        assert!(!ip.is_later_fragment());
    }

    #[test]
    fn truncated_and_bad() {
        for len in 0..MIN_HEADER {
            assert_eq!(Ipv4::new_checked(&PACKET[..len]).unwrap_err(), Drop::Truncated, "len {len}");
        }
        let mut p = PACKET;
        p[0] = 0x44;
        assert_eq!(Ipv4::new_checked(&p).unwrap_err(), Drop::BadHeaderLength);
        p[0] = 0x65;
        assert_eq!(Ipv4::new_checked(&p).unwrap_err(), Drop::BadVersion);
        let mut short_total = PACKET;
        short_total[2..4].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(Ipv4::new_checked(&short_total).unwrap_err(), Drop::BadHeaderLength);
        let mut options = PACKET;
        options[0] = 0x4f; // 60-byte header in a 44-byte capture
        assert_eq!(Ipv4::new_checked(&options).unwrap_err(), Drop::Truncated);
    }
}
