//! A checked view of an IPv4 header.

use std::net::Ipv4Addr;

use super::{Drop, Field, be_u16};

const VER_IHL: usize = 0;
const TOTAL_LEN: Field = 2..4;
const IDENT: Field = 4..6;
const FLG_OFF: Field = 6..8;
#[cfg(any(test, feature = "testing"))]
const TTL: usize = 8;
const PROTOCOL: usize = 9;
#[cfg(any(test, feature = "testing"))]
const CHECKSUM: Field = 10..12;
const SRC: Field = 12..16;
const DST: Field = 16..20;
/// The smallest header: no options.
pub const MIN_HEADER: usize = 20;

super::views! {
    /// An IPv4 packet whose header is known to be complete: every accessor is infallible.
    Ipv4, Ipv4Mut, MIN_HEADER, "an IPv4 header"
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

    fn addr(&self, field: Field) -> Ipv4Addr {
        let b = &self.bytes[field];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The source address.
    pub fn src(&self) -> Ipv4Addr {
        self.addr(SRC)
    }

    /// The destination address.
    pub fn dst(&self) -> Ipv4Addr {
        self.addr(DST)
    }

    /// What follows the header, up to the total length (link padding is not payload), as far as
    /// it was captured.
    pub fn payload(&self) -> &'a [u8] {
        let end = self.total_len().min(self.bytes.len());
        &self.bytes[self.header_len()..end]
    }
}

#[cfg(any(test, feature = "testing"))]
impl<'a> Ipv4Mut<'a> {
    /// Version 4 and a header of `len` bytes (20, or more with options: a multiple of 4).
    pub fn set_header_len(&mut self, len: usize) {
        self.bytes[VER_IHL] = 0x40 | (len / 4) as u8;
    }

    /// Another version number, keeping the header length: a packet the parser drops.
    pub fn set_version(&mut self, version: u8) {
        self.bytes[VER_IHL] = version << 4 | (self.bytes[VER_IHL] & 0x0f);
    }

    /// The total length: header and payload.
    pub fn set_total_len(&mut self, len: u16) {
        super::build::set_be_u16(self.bytes, TOTAL_LEN, len);
    }

    /// The identification field.
    pub fn set_ident(&mut self, ident: u16) {
        super::build::set_be_u16(self.bytes, IDENT, ident);
    }

    /// The flags and fragment offset together: `0x4000` is "don't fragment", `0x2000` "more
    /// fragments", the low 13 bits the offset in 8-byte units.
    pub fn set_flags_and_offset(&mut self, value: u16) {
        super::build::set_be_u16(self.bytes, FLG_OFF, value);
    }

    /// The time to live.
    pub fn set_ttl(&mut self, ttl: u8) {
        self.bytes[TTL] = ttl;
    }

    /// The transport protocol number.
    pub fn set_protocol(&mut self, protocol: u8) {
        self.bytes[PROTOCOL] = protocol;
    }

    /// The source address.
    pub fn set_src(&mut self, addr: Ipv4Addr) {
        self.bytes[SRC].copy_from_slice(&addr.octets());
    }

    /// The destination address.
    pub fn set_dst(&mut self, addr: Ipv4Addr) {
        self.bytes[DST].copy_from_slice(&addr.octets());
    }

    /// Computes the header checksum over the header as it is now (the kernel drops an IPv4
    /// packet whose checksum is wrong, so frames sent from the client side need it).
    pub fn fill_checksum(&mut self) {
        super::build::set_be_u16(self.bytes, CHECKSUM, 0);
        let len = usize::from(self.bytes[VER_IHL] & 0x0f) * 4;
        let sum = super::build::checksum(0, &self.bytes[..len]);
        super::build::set_be_u16(self.bytes, CHECKSUM, sum);
    }

    /// What follows the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.bytes[VER_IHL] & 0x0f) * 4;
        &mut self.bytes[len..]
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
    fn construct() {
        let mut bytes = [0; 44];
        let mut ip = Ipv4Mut::new(&mut bytes);
        ip.set_header_len(20);
        ip.set_total_len(40);
        ip.set_ident(0x1234);
        ip.set_flags_and_offset(0x4000);
        ip.set_ttl(64);
        ip.set_protocol(6);
        ip.set_src(Ipv4Addr::new(198, 18, 0, 2));
        ip.set_dst(Ipv4Addr::new(198, 18, 0, 1));
        ip.payload_mut()[..20].copy_from_slice(&PACKET[20..40]);
        bytes[40..].fill(0xee); // link padding
        assert_eq!(bytes, PACKET);
    }

    /// The checksum of the example header in RFC 1071's terms, computed independently (Python:
    /// the ones' complement of the ones' complement sum of its 16-bit words).
    #[test]
    fn checksum() {
        let mut bytes = PACKET;
        Ipv4Mut::new(&mut bytes).fill_checksum();
        assert_eq!(bytes[10..12], [0x9c, 0x74]);
        assert_eq!(super::super::build::checksum(0, &bytes[..20]), 0, "a filled header sums to zero");
    }

    #[test]
    fn truncated_and_bad() {
        for len in 0..MIN_HEADER {
            assert_eq!(Ipv4::new_checked(&PACKET[..len]).unwrap_err(), Drop::Truncated, "len {len}");
        }
        let mut p = PACKET;
        p[0] = 0x44;
        assert_eq!(Ipv4::new_checked(&p).unwrap_err(), Drop::BadHeaderLength);
        Ipv4Mut::new(&mut p).set_version(6);
        assert_eq!(p[0], 0x64, "the version changes, the header length stays");
        assert_eq!(Ipv4::new_checked(&p).unwrap_err(), Drop::BadVersion);
        let mut short_total = PACKET;
        short_total[2..4].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(Ipv4::new_checked(&short_total).unwrap_err(), Drop::BadHeaderLength);
        let mut options = PACKET;
        options[0] = 0x4f; // 60-byte header in a 44-byte capture
        assert_eq!(Ipv4::new_checked(&options).unwrap_err(), Drop::Truncated);
    }
}
