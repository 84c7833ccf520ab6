//! A checked view of a UDP datagram: header, and a payload bounded by the length field.

use super::{Drop, Field, be_u16};

const SRC_PORT: Field = 0..2;
const DST_PORT: Field = 2..4;
const LENGTH: Field = 4..6;
const CHECKSUM: Field = 6..8;
/// The header's length.
pub const HEADER: usize = 8;

/// A UDP datagram whose header is complete and whose length field is sane.
#[derive(Debug, Clone, Copy)]
pub struct Udp<'a> {
    bytes: &'a [u8],
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
