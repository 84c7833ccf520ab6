//! A checked view of a UDP datagram: header, and a payload bounded by the length field.

use super::{Drop, Field, be_u16};

const SRC_PORT: Field = 0..2;
const DST_PORT: Field = 2..4;
const LENGTH: Field = 4..6;
const CHECKSUM: Field = 6..8;
/// The header's length.
pub const HEADER: usize = 8;

super::views! {
    /// A UDP datagram whose header is complete and whose length field is sane.
    Udp, UdpMut, HEADER, "a UDP header"
}

impl<'a> Udp<'a> {
    /// Checks that the header was captured and that the length field covers at least it.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, Drop> {
        if bytes.len() < HEADER {
            return Err(Drop::Truncated);
        }
        let view = Udp { bytes };
        if usize::from(be_u16(view.bytes, LENGTH)) < HEADER {
            return Err(Drop::BadHeaderLength);
        }
        Ok(view)
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        be_u16(self.bytes, SRC_PORT)
    }

    /// The destination port: the knock port.
    pub fn dst_port(&self) -> u16 {
        be_u16(self.bytes, DST_PORT)
    }

    /// The checksum: with the source port, tells a duplicated datagram from a new one.
    pub fn checksum(&self) -> u16 {
        be_u16(self.bytes, CHECKSUM)
    }

    /// The length the sender claims for header and payload.
    pub fn length(&self) -> usize {
        usize::from(be_u16(self.bytes, LENGTH))
    }

    /// The payload as the length field bounds it, or `None` when the capture holds less than
    /// that (the datagram was cut short on the way or by the capture filter).
    pub fn payload(&self) -> Option<&'a [u8]> {
        self.bytes.get(HEADER..self.length())
    }
}

#[cfg(any(test, feature = "testing"))]
impl<'a> UdpMut<'a> {
    /// The source port.
    pub fn set_src_port(&mut self, port: u16) {
        super::build::set_be_u16(self.bytes, SRC_PORT, port);
    }

    /// The destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        super::build::set_be_u16(self.bytes, DST_PORT, port);
    }

    /// The length of header and payload.
    pub fn set_length(&mut self, len: u16) {
        super::build::set_be_u16(self.bytes, LENGTH, len);
    }

    /// The checksum field as given (0 is "none", which only IPv4 allows).
    pub fn set_checksum(&mut self, sum: u16) {
        super::build::set_be_u16(self.bytes, CHECKSUM, sum);
    }

    /// Computes the checksum over the pseudo-header of `src` and `dst` and the datagram up to
    /// its length field (IPv6 requires one: the kernel drops a datagram without).
    pub fn fill_checksum(&mut self, src: std::net::IpAddr, dst: std::net::IpAddr) {
        self.set_checksum(0);
        let len = usize::from(be_u16(self.bytes, LENGTH));
        let octets = |a: std::net::IpAddr| match a {
            std::net::IpAddr::V4(a) => a.octets().to_vec(),
            std::net::IpAddr::V6(a) => a.octets().to_vec(),
        };
        let pseudo =
            [octets(src), octets(dst), vec![0, super::PROTO_UDP], (len as u16).to_be_bytes().to_vec()].concat();
        let sum = super::build::checksum(super::build::sum(&pseudo), &self.bytes[..len]);
        // A computed 0 is sent as all ones: 0 means "no checksum".
        self.set_checksum(if sum == 0 { 0xffff } else { sum });
    }

    /// What follows the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[HEADER..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 5353 -> 9000, length 12, "knok", then 2 bytes that are not part of the datagram.
    const DATAGRAM: [u8; 14] = [0x14, 0xe9, 0x23, 0x28, 0x00, 0x0c, 0xab, 0xcd, b'k', b'n', b'o', b'k', 0xee, 0xee];

    #[test]
    fn deconstruct() {
        let udp = Udp::new_checked(&DATAGRAM).unwrap();
        assert_eq!((udp.src_port(), udp.dst_port(), udp.length(), udp.checksum()), (5353, 9000, 12, 0xabcd));
        assert_eq!(udp.payload(), Some(&b"knok"[..]), "bytes past the length field are not payload");
    }

    #[test]
    fn construct() {
        let mut bytes = [0; 14];
        let mut udp = UdpMut::new(&mut bytes);
        udp.set_src_port(5353);
        udp.set_dst_port(9000);
        udp.set_length(12);
        udp.set_checksum(0xabcd);
        udp.payload_mut()[..4].copy_from_slice(b"knok");
        bytes[12..].fill(0xee); // not part of the datagram
        assert_eq!(bytes, DATAGRAM);
    }

    /// [`DATAGRAM`]'s checksum from 2001:db8::2 to 2001:db8::1, computed independently (Python,
    /// over RFC 8200's pseudo-header).
    const CHECKSUM_V6: u16 = 0x9176;

    #[test]
    fn checksum() {
        let mut bytes = DATAGRAM;
        let (src, dst) = ("2001:db8::2".parse().unwrap(), "2001:db8::1".parse().unwrap());
        UdpMut::new(&mut bytes).fill_checksum(src, dst);
        assert_eq!(Udp::new_checked(&bytes).unwrap().checksum(), CHECKSUM_V6);
        assert_eq!(bytes[12..], [0xee, 0xee], "bytes past the length are not summed, nor written");
    }

    #[test]
    fn truncated_and_bad() {
        for len in 0..HEADER {
            assert_eq!(Udp::new_checked(&DATAGRAM[..len]).unwrap_err(), Drop::Truncated);
        }
        assert_eq!(Udp::new_checked(&DATAGRAM[..10]).unwrap().payload(), None, "cut short");
        let mut short = DATAGRAM;
        short[5] = 7;
        assert_eq!(Udp::new_checked(&short).unwrap_err(), Drop::BadHeaderLength);
    }
}
