//! A checked view of a TCP header: the fields a knock is made of.

use super::{Drop, Field, be_u16};

const SRC_PORT: Field = 0..2;
const DST_PORT: Field = 2..4;
const SEQ_NUM: Field = 4..8;
#[cfg(any(test, feature = "testing"))]
const DATA_OFF: usize = 12;
const FLAGS: usize = 13;
#[cfg(any(test, feature = "testing"))]
const WINDOW: Field = 14..16;
/// The smallest header: no options.
pub const MIN_HEADER: usize = 20;

super::views! {
    /// A TCP segment whose fixed header is known to be complete.
    Tcp, TcpMut, MIN_HEADER, "a TCP header"
}

impl<'a> Tcp<'a> {
    /// Checks that the fixed header was captured.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, Drop> {
        if bytes.len() < MIN_HEADER {
            return Err(Drop::Truncated);
        }
        Ok(Tcp { bytes })
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        be_u16(self.bytes, SRC_PORT)
    }

    /// The destination port: the knock port.
    pub fn dst_port(&self) -> u16 {
        be_u16(self.bytes, DST_PORT)
    }

    /// The sequence number: a retransmitted SYN repeats it, a new connection does not.
    pub fn seq_number(&self) -> u32 {
        let b = &self.bytes[SEQ_NUM];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The flags byte (FIN 0x01 ... URG 0x20).
    pub fn flags(&self) -> u8 {
        self.bytes[FLAGS]
    }
}

#[cfg(any(test, feature = "testing"))]
impl<'a> TcpMut<'a> {
    /// The source port.
    pub fn set_src_port(&mut self, port: u16) {
        super::build::set_be_u16(self.bytes, SRC_PORT, port);
    }

    /// The destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        super::build::set_be_u16(self.bytes, DST_PORT, port);
    }

    /// The sequence number.
    pub fn set_seq_number(&mut self, seq: u32) {
        self.bytes[SEQ_NUM].copy_from_slice(&seq.to_be_bytes());
    }

    /// The header length in bytes (20 without options), as the data offset's four bits.
    pub fn set_header_len(&mut self, len: usize) {
        self.bytes[DATA_OFF] = ((len / 4) as u8) << 4;
    }

    /// The flags byte (SYN is 0x02).
    pub fn set_flags(&mut self, flags: u8) {
        self.bytes[FLAGS] = flags;
    }

    /// The receive window.
    pub fn set_window(&mut self, window: u16) {
        super::build::set_be_u16(self.bytes, WINDOW, window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 40000 -> 7000, seq 1, SYN.
    const SEGMENT: [u8; 20] = [0x9c, 0x40, 0x1b, 0x58, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0];

    #[test]
    fn deconstruct() {
        let tcp = Tcp::new_checked(&SEGMENT).unwrap();
        assert_eq!((tcp.src_port(), tcp.dst_port(), tcp.seq_number(), tcp.flags()), (40000, 7000, 1, 0x02));
    }

    #[test]
    fn construct() {
        let mut bytes = [0; 20];
        let mut tcp = TcpMut::new(&mut bytes);
        tcp.set_src_port(40000);
        tcp.set_dst_port(7000);
        tcp.set_seq_number(1);
        tcp.set_header_len(20);
        tcp.set_flags(0x02);
        tcp.set_window(0xffff);
        assert_eq!(bytes, SEGMENT);
    }

    #[test]
    fn truncated() {
        for len in 0..MIN_HEADER {
            assert_eq!(Tcp::new_checked(&SEGMENT[..len]).unwrap_err(), Drop::Truncated);
        }
    }
}
