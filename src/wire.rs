//! Turns a captured packet into a [`Knock`], or says why it is not one.
//!
//! Packets arrive from a `SOCK_DGRAM` packet socket, so they start at the IP header whatever the
//! link type (Ethernet, VLAN offload, tun, WireGuard). The kernel filter may have cut the packet
//! short after the transport header, so nothing here relies on the IP length fields covering the
//! buffer: only the headers we read must be present.

use std::net::IpAddr;

use pnet_packet::Packet;
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::tcp::TcpPacket;
use pnet_packet::udp::UdpPacket;

use crate::config::{PortProto, Proto};

/// One knock as the matcher sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knock {
    pub src: IpAddr,
    /// Where the knock was sent; doors with a `target` only count knocks to it.
    pub dst: IpAddr,
    pub port: PortProto,
    /// TCP flags byte; 0 for UDP.
    pub tcp_flags: u8,
}

/// Why a packet was dropped before matching; each reason has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Drop {
    #[error("truncated packet")]
    Truncated,
    #[error("IP version is neither 4 nor 6")]
    BadVersion,
    #[error("IPv4 header length is invalid")]
    BadHeaderLength,
    #[error("non-first IPv4 fragment")]
    Fragment,
    #[error("not TCP or UDP (or behind IPv6 extension headers)")]
    NotTcpOrUdp,
}

impl Drop {
    /// Every reason, for counters indexed by [`Drop::index`].
    pub const ALL: [Drop; 5] =
        [Drop::Truncated, Drop::BadVersion, Drop::BadHeaderLength, Drop::Fragment, Drop::NotTcpOrUdp];

    pub fn index(self) -> usize {
        self as usize
    }

    /// A short name for counters.
    pub fn key(self) -> &'static str {
        match self {
            Drop::Truncated => "truncated",
            Drop::BadVersion => "bad_version",
            Drop::BadHeaderLength => "bad_header_length",
            Drop::Fragment => "fragment",
            Drop::NotTcpOrUdp => "not_tcp_or_udp",
        }
    }
}

/// Parses a packet starting at its IP header.
pub fn parse(packet: &[u8]) -> Result<Knock, Drop> {
    match packet.first().map(|b| b >> 4) {
        None => Err(Drop::Truncated),
        Some(4) => parse_v4(packet),
        Some(6) => parse_v6(packet),
        Some(_) => Err(Drop::BadVersion),
    }
}

fn parse_v4(packet: &[u8]) -> Result<Knock, Drop> {
    let ip = Ipv4Packet::new(packet).ok_or(Drop::Truncated)?;
    let header_len = usize::from(ip.get_header_length()) * 4;
    if header_len < Ipv4Packet::minimum_packet_size() {
        return Err(Drop::BadHeaderLength);
    }
    if ip.get_fragment_offset() != 0 {
        return Err(Drop::Fragment);
    }
    let transport = packet.get(header_len..).ok_or(Drop::Truncated)?;
    let (src, dst) = (IpAddr::V4(ip.get_source()), IpAddr::V4(ip.get_destination()));
    transport_knock(src, dst, ip.get_next_level_protocol().0, transport)
}

fn parse_v6(packet: &[u8]) -> Result<Knock, Drop> {
    let ip = Ipv6Packet::new(packet).ok_or(Drop::Truncated)?;
    let transport = &packet[Ipv6Packet::minimum_packet_size()..];
    let (src, dst) = (IpAddr::V6(ip.get_source()), IpAddr::V6(ip.get_destination()));
    transport_knock(src, dst, ip.get_next_header().0, transport)
}

/// The payload of a UDP packet, as far as it was captured; `None` if it is not UDP.
pub fn udp_payload(packet: &[u8]) -> Option<&[u8]> {
    let (protocol, transport) = match packet.first()? >> 4 {
        4 => {
            let ip = Ipv4Packet::new(packet)?;
            (ip.get_next_level_protocol().0, packet.get(usize::from(ip.get_header_length()) * 4..)?)
        }
        6 => (Ipv6Packet::new(packet)?.get_next_header().0, &packet[Ipv6Packet::minimum_packet_size()..]),
        _ => return None,
    };
    if protocol != IpNextHeaderProtocols::Udp.0 {
        return None;
    }
    transport.get(UdpPacket::minimum_packet_size()..)
}

fn transport_knock(src: IpAddr, dst: IpAddr, protocol: u8, transport: &[u8]) -> Result<Knock, Drop> {
    if protocol == IpNextHeaderProtocols::Tcp.0 {
        let tcp = TcpPacket::new(transport).ok_or(Drop::Truncated)?;
        Ok(Knock { src, dst, port: PortProto::new(tcp.get_destination(), Proto::Tcp), tcp_flags: tcp.get_flags() })
    } else if protocol == IpNextHeaderProtocols::Udp.0 {
        let udp = UdpPacket::new(transport).ok_or(Drop::Truncated)?;
        debug_assert!(udp.payload().len() <= transport.len());
        Ok(Knock { src, dst, port: PortProto::new(udp.get_destination(), Proto::Udp), tcp_flags: 0 })
    } else {
        Err(Drop::NotTcpOrUdp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// 198.18.0.2:40000 -> 198.18.0.1:7000, TCP SYN, no options.
    const TCP_SYN_V4: [u8; 40] = [
        0x45, 0x00, 0x00, 0x28, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, // ver/ihl .. proto, csum
        198, 18, 0, 2, 198, 18, 0, 1, // src, dst
        0x9c, 0x40, 0x1b, 0x58, 0, 0, 0, 1, 0, 0, 0, 0, // sport 40000, dport 7000, seq, ack
        0x50, 0x02, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, // offset 5, SYN, window, csum, urg
    ];

    /// 2001:db8::2:5353 -> 2001:db8::1:9000, UDP, 4 payload bytes.
    const UDP_V6: [u8; 52] = [
        0x60, 0, 0, 0, 0x00, 0x0c, 17, 64, // version, payload length 12, next header UDP, hop limit
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // src
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // dst
        0x14, 0xe9, 0x23, 0x28, 0x00, 0x0c, 0x00, 0x00, b'k', b'n', b'o', b'k',
    ];

    #[test]
    fn tcp_syn_v4() {
        let k = parse(&TCP_SYN_V4).unwrap();
        assert_eq!(k.src, IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)));
        assert_eq!(k.port, PortProto::tcp(7000));
        assert_eq!(k.tcp_flags, 0x02);
    }

    #[test]
    fn udp_v6() {
        let k = parse(&UDP_V6).unwrap();
        assert_eq!(k.src, IpAddr::V6("2001:db8::2".parse::<Ipv6Addr>().unwrap()));
        assert_eq!(k.port, PortProto::udp(9000));
    }

    #[test]
    fn every_truncation_is_dropped_not_panicked() {
        for len in 0..TCP_SYN_V4.len() {
            assert_eq!(parse(&TCP_SYN_V4[..len]), Err(Drop::Truncated), "len {len}");
        }
        for len in 0..48 {
            assert_eq!(parse(&UDP_V6[..len]), Err(Drop::Truncated), "len {len}");
        }
    }

    #[test]
    fn bad_headers() {
        let mut p = TCP_SYN_V4;
        p[0] = 0x44; // IHL 4 words < 20 bytes
        assert_eq!(parse(&p), Err(Drop::BadHeaderLength));
        p[0] = 0x4f; // IHL 60 bytes > packet
        assert_eq!(parse(&p), Err(Drop::Truncated));
        p[0] = 0x55;
        assert_eq!(parse(&p), Err(Drop::BadVersion));
        let mut frag = TCP_SYN_V4;
        frag[7] = 0x10; // fragment offset 16
        assert_eq!(parse(&frag), Err(Drop::Fragment));
        let mut icmp = TCP_SYN_V4;
        icmp[9] = 1;
        assert_eq!(parse(&icmp), Err(Drop::NotTcpOrUdp));
        let mut hop_by_hop = UDP_V6;
        hop_by_hop[6] = 0;
        assert_eq!(parse(&hop_by_hop), Err(Drop::NotTcpOrUdp));
    }
}
