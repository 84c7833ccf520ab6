//! Packets built, not parsed: what tests, benches and fuzz seeds send (compiled for tests and
//! with the `testing` feature only). They are written through the setters over the same fields
//! the parser reads ([`Ipv4Mut`], [`Ipv6Mut`], [`TcpMut`], [`UdpMut`]), so no test pokes a
//! byte offset by hand: `Knock::tcp_syn(src, dst, 7000).emit()` is the bytes of one SYN,
//! starting at the IP header as the capture socket sees a packet.

use std::net::IpAddr;

use super::ipv4::{self, Ipv4Mut};
use super::ipv6::{self, Ipv6Mut};
use super::tcp::{self, TcpMut};
use super::udp::{self, UdpMut};
use super::{Field, Knock, PROTO_TCP, PROTO_UDP};
use super::{PortProto, Proto};

/// One knock as it goes on the wire: the values of its headers, with the defaults of a client
/// stack (source port 40000, TTL 64, window 1024), changed with the methods below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnockPacket {
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    transport: Transport,
    ttl: u8,
    ident: u16,
    ipv4_header_len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Transport {
    Tcp { seq: u32, flags: u8 },
    Udp { payload: Vec<u8> },
}

/// The SYN flag, the one a knock carries.
const SYN: u8 = 0x02;

impl Knock {
    /// A TCP SYN from `src` to `dst`, port `port`: what a `connect` sends first.
    pub fn tcp_syn(src: impl Into<IpAddr>, dst: impl Into<IpAddr>, port: u16) -> KnockPacket {
        KnockPacket::new(src.into(), dst.into(), port, Transport::Tcp { seq: 0, flags: SYN })
    }

    /// A UDP datagram from `src` to `dst`, port `port`, carrying `payload`.
    pub fn udp(src: impl Into<IpAddr>, dst: impl Into<IpAddr>, port: u16, payload: &[u8]) -> KnockPacket {
        KnockPacket::new(src.into(), dst.into(), port, Transport::Udp { payload: payload.to_vec() })
    }

    /// A knock on `port`: a SYN for TCP, an empty datagram for UDP.
    pub fn on(src: impl Into<IpAddr>, dst: impl Into<IpAddr>, port: PortProto) -> KnockPacket {
        match port.proto {
            Proto::Tcp => Knock::tcp_syn(src, dst, port.port),
            Proto::Udp => Knock::udp(src, dst, port.port, &[]),
        }
    }
}

impl KnockPacket {
    fn new(src: IpAddr, dst: IpAddr, dst_port: u16, transport: Transport) -> Self {
        assert_eq!(src.is_ipv4(), dst.is_ipv4(), "{src} and {dst} are not of one IP version");
        let ipv4_header_len = ipv4::MIN_HEADER;
        KnockPacket { src, dst, src_port: 40000, dst_port, transport, ttl: 64, ident: 0, ipv4_header_len }
    }

    /// The source port: with the sequence number (TCP) or the checksum (UDP), what tells a
    /// repeated packet from a new knock.
    pub fn src_port(mut self, port: u16) -> Self {
        self.src_port = port;
        self
    }

    /// The TCP sequence number (0 unless set); a retransmitted SYN repeats it.
    pub fn seq(mut self, seq: u32) -> Self {
        if let Transport::Tcp { seq: s, .. } = &mut self.transport {
            *s = seq;
        }
        self
    }

    /// The TCP flags (SYN unless set).
    pub fn tcp_flags(mut self, flags: u8) -> Self {
        if let Transport::Tcp { flags: f, .. } = &mut self.transport {
            *f = flags;
        }
        self
    }

    /// The IPv4 identification (0 unless set).
    pub fn ident(mut self, ident: u16) -> Self {
        self.ident = ident;
        self
    }

    /// The IPv4 TTL or IPv6 hop limit (64 unless set).
    pub fn ttl(mut self, ttl: u8) -> Self {
        self.ttl = ttl;
        self
    }

    /// An IPv4 header of `len` bytes (a multiple of 4, 20 to 60): options of zeros (end of
    /// list) move the transport header.
    pub fn ipv4_header_len(mut self, len: usize) -> Self {
        assert!(len % 4 == 0 && (ipv4::MIN_HEADER..=60).contains(&len), "an IPv4 header of {len} bytes");
        self.ipv4_header_len = len;
        self
    }

    /// The packet's bytes from its IP header on. The IPv4 header checksum is filled (the
    /// kernel drops a packet without), the TCP checksum is left 0 (the server's stack then
    /// drops the SYN, and a spoofed source gets no reset back: only the capture sees it), the
    /// UDP checksum is 0 over IPv4 (no checksum, which IPv4 allows) and filled over IPv6
    /// (which requires it).
    pub fn emit(&self) -> Vec<u8> {
        let transport = self.transport();
        match (self.src, self.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let mut bytes = vec![0; self.ipv4_header_len + transport.len()];
                let mut ip = Ipv4Mut::new(&mut bytes);
                ip.set_header_len(self.ipv4_header_len);
                ip.set_total_len((self.ipv4_header_len + transport.len()) as u16);
                ip.set_ident(self.ident);
                ip.set_ttl(self.ttl);
                ip.set_protocol(self.protocol());
                ip.set_src(src);
                ip.set_dst(dst);
                ip.fill_checksum();
                ip.payload_mut().copy_from_slice(&transport);
                bytes
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let mut bytes = vec![0; ipv6::HEADER + transport.len()];
                let mut ip = Ipv6Mut::new(&mut bytes);
                ip.set_version();
                ip.set_payload_len(transport.len() as u16);
                ip.set_next_header(self.protocol());
                ip.set_hop_limit(self.ttl);
                ip.set_src(src);
                ip.set_dst(dst);
                ip.payload_mut().copy_from_slice(&transport);
                bytes
            }
            _ => unreachable!("KnockPacket::new checked the versions"),
        }
    }

    fn protocol(&self) -> u8 {
        match self.transport {
            Transport::Tcp { .. } => PROTO_TCP,
            Transport::Udp { .. } => PROTO_UDP,
        }
    }

    /// The transport header and payload.
    fn transport(&self) -> Vec<u8> {
        match &self.transport {
            Transport::Tcp { seq, flags } => {
                let mut bytes = vec![0; tcp::MIN_HEADER];
                let mut tcp = TcpMut::new(&mut bytes);
                tcp.set_src_port(self.src_port);
                tcp.set_dst_port(self.dst_port);
                tcp.set_seq_number(*seq);
                tcp.set_header_len(tcp::MIN_HEADER);
                tcp.set_flags(*flags);
                tcp.set_window(1024);
                bytes
            }
            Transport::Udp { payload } => {
                let mut bytes = vec![0; udp::HEADER + payload.len()];
                let mut udp = UdpMut::new(&mut bytes);
                udp.set_src_port(self.src_port);
                udp.set_dst_port(self.dst_port);
                udp.set_length((udp::HEADER + payload.len()) as u16);
                udp.payload_mut().copy_from_slice(payload);
                if self.src.is_ipv6() {
                    udp.fill_checksum(self.src, self.dst);
                }
                bytes
            }
        }
    }
}

/// Writes `value` big-endian into the first two bytes of `field`.
pub(super) fn set_be_u16(bytes: &mut [u8], field: Field, value: u16) {
    bytes[field.start..field.start + 2].copy_from_slice(&value.to_be_bytes());
}

/// The ones' complement sum of `bytes` as 16-bit big-endian words (an odd last byte padded
/// with zero), not yet folded: the start of a checksum over more than one piece.
pub(super) fn sum(bytes: &[u8]) -> u64 {
    bytes.chunks(2).map(|w| u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]))).sum()
}

/// The Internet checksum (RFC 1071) of `bytes`, after `initial` (a pseudo-header's [`sum`]).
pub(super) fn checksum(initial: u64, bytes: &[u8]) -> u16 {
    let mut total = initial + sum(bytes);
    while total > 0xffff {
        total = (total & 0xffff) + (total >> 16);
    }
    !(total as u16)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::packet::{Drop, parse};

    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

    /// 198.18.0.2:40000 -> 198.18.0.1:7000, SYN, TTL 64, window 1024: the bytes the
    /// integration tests' frame builder sent before this one replaced it (checksum by Python).
    const SYN_V4: [u8; 40] = [
        0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x00, 0x40, 0x06, 0xee, 0xa8, 198, 18, 0, 2, 198, 18, 0, 1, //
        0x9c, 0x40, 0x1b, 0x58, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0x04, 0x00, 0, 0, 0, 0,
    ];

    /// 2001:db8::2:40000 -> 2001:db8::1:62201, UDP, "knok", hop limit 64, with its checksum
    /// (by Python).
    const UDP_V6: [u8; 52] = [
        0x60, 0, 0, 0, 0x00, 0x0c, 17, 64, //
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, //
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, //
        0x9c, 0x40, 0xf2, 0xf9, 0x00, 0x0c, 0x3a, 0x4d, b'k', b'n', b'o', b'k',
    ];

    #[test]
    fn a_syn_is_the_bytes_a_client_stack_sends() {
        assert_eq!(Knock::tcp_syn(CLIENT, SERVER, 7000).emit(), SYN_V4);
    }

    #[test]
    fn an_ipv6_datagram_carries_its_checksum() {
        assert_eq!(Knock::udp(CLIENT_V6, SERVER_V6, 62201, b"knok").emit(), UDP_V6);
    }

    /// Whatever is built parses back to what it was built from: both versions, both protocols.
    #[test]
    fn the_parser_reads_back_what_was_built() {
        let v6 = |a: Ipv4Addr| -> IpAddr { if a == CLIENT { CLIENT_V6.into() } else { SERVER_V6.into() } };
        for (src, dst) in [(IpAddr::from(CLIENT), IpAddr::from(SERVER)), (v6(CLIENT), v6(SERVER))] {
            let syn = Knock::tcp_syn(src, dst, 7000).src_port(41000).seq(99).tcp_flags(0x12).emit();
            let knock = parse(&syn).unwrap().knock;
            assert_eq!((knock.src, knock.dst, knock.port, knock.tcp_flags), (src, dst, PortProto::tcp(7000), 0x12));
            assert_eq!(knock.fingerprint, 41000 << 32 | 99);
            let datagram = Knock::udp(src, dst, 9000, b"payload").emit();
            let packet = parse(&datagram).unwrap();
            assert_eq!((packet.knock.port, packet.payload), (PortProto::udp(9000), Some(&b"payload"[..])));
            assert_eq!(parse(&Knock::on(src, dst, PortProto::udp(9000)).emit()).unwrap().payload, Some(&[][..]));
        }
    }

    #[test]
    fn ipv4_options_move_the_transport_header() {
        let syn = Knock::tcp_syn(CLIENT, SERVER, 7000).ipv4_header_len(24).ident(7).ttl(3).emit();
        assert_eq!(syn.len(), 44);
        assert_eq!(parse(&syn).unwrap().knock.port, PortProto::tcp(7000));
        assert_eq!(checksum(0, &syn[..24]), 0, "the header checksum covers the options");
        assert_eq!(parse(&syn[..43]), Err(Drop::Truncated));
    }
}
