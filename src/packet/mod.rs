//! Packets as captured, turned into what the doors need: a [`Knock`] and, for UDP, its payload.
//!
//! Contract: [`parse`] takes the bytes of one captured packet, starting at the IP header (the
//! capture socket is `SOCK_DGRAM`, so any link type looks the same), and either returns a
//! [`Packet`] or says why it is not one ([`Drop`]). It never panics on any input. Each header is
//! read through a checked view ([`ipv4::Ipv4`], [`ipv6::Ipv6`], [`tcp::Tcp`], [`udp::Udp`]):
//! one length check in its constructor, after which its accessors cannot fail. The capture
//! filter may cut a packet short after the transport header, so only the headers read must be
//! present; lengths that the sender claims bound what is read, never the other way round.
//! Tests, benches and fuzz seeds build their packets with `build` (feature `testing`).

/// A header's two views, declared alike in every wire file: the checked view (its
/// `new_checked` checks the lengths once, after which its accessors cannot fail), and, for
/// tests, benches and fuzz seeds, the writer with setters over the same fields, over bytes the
/// caller sized for at least the header (else it panics: a test's mistake, never a packet's).
macro_rules! views {
    ($(#[$doc:meta])* $view:ident, $writer:ident, $min:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $view<'a> {
            bytes: &'a [u8],
        }

        #[doc = concat!("The same header, written: setters over the fields [`", stringify!($view), "`] reads.")]
        #[cfg(any(test, feature = "testing"))]
        pub struct $writer<'a> {
            bytes: &'a mut [u8],
        }

        #[cfg(any(test, feature = "testing"))]
        impl<'a> $writer<'a> {
            #[doc = concat!("A writer over `bytes`, sized for at least ", $what, " and what follows it.")]
            pub fn new(bytes: &'a mut [u8]) -> Self {
                assert!(bytes.len() >= $min, concat!($what, " needs {} bytes, not {}"), $min, bytes.len());
                $writer { bytes }
            }
        }
    };
}
use views;

#[cfg(any(test, feature = "testing"))]
pub mod build;
pub mod ipv4;
pub mod ipv6;
mod port;
pub mod tcp;
pub mod udp;

use std::net::IpAddr;

pub use port::{PortProto, Proto};

/// A header field: its byte range from the start of its header.
type Field = std::ops::Range<usize>;

/// The big-endian `u16` in the first two bytes of `field`; each view checked in its
/// constructor that its header holds the field.
fn be_u16(bytes: &[u8], field: Field) -> u16 {
    u16::from_be_bytes([bytes[field.start], bytes[field.start + 1]])
}

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// One knock as the doors see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knock {
    /// Where the knock came from.
    pub src: IpAddr,
    /// Where the knock was sent; doors with a `target` only count knocks to it.
    pub dst: IpAddr,
    /// The port knocked on.
    pub port: PortProto,
    /// TCP flags byte; 0 for UDP.
    pub tcp_flags: u8,
    /// What tells a repeat of this very packet (a retransmitted SYN, the copy a bridge or a
    /// VLAN interface shows again) from a new knock to the same port: the source port with the
    /// TCP sequence number, or with the UDP checksum, length and IPv4 identification. 0 when
    /// unknown: such knocks are never taken for repeats.
    pub fingerprint: u64,
}

impl Knock {
    /// A knock with no fingerprint, as tests and tools build them.
    pub fn new(src: IpAddr, dst: IpAddr, port: PortProto, tcp_flags: u8) -> Self {
        Knock { src, dst, port, tcp_flags, fingerprint: 0 }
    }
}

/// A parsed packet: the knock, and the UDP payload for single-packet authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The headers that make the knock.
    pub knock: Knock,
    /// The UDP payload as its length field bounds it; empty for TCP; `None` when the datagram
    /// was cut short.
    pub payload: Option<&'a [u8]>,
}

/// Why a packet was dropped before it reached a door; each reason has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Drop {
    /// A header is cut short.
    #[error("truncated packet")]
    Truncated,
    /// Neither IPv4 nor IPv6.
    #[error("IP version is neither 4 nor 6")]
    BadVersion,
    /// A length field is smaller than its header.
    #[error("a header length is invalid")]
    BadHeaderLength,
    /// A later fragment: it has no transport header.
    #[error("non-first IPv4 fragment")]
    Fragment,
    /// Not TCP or UDP (or behind IPv6 extension headers).
    #[error("not TCP or UDP (or behind IPv6 extension headers)")]
    NotTcpOrUdp,
    /// Addressed to another host (a router forwards it): not a knock on this one.
    #[error("not addressed to this host")]
    NotForThisHost,
}

impl Drop {
    /// Every reason, for counters indexed by [`Drop::index`].
    pub const ALL: [Drop; 6] = [
        Drop::Truncated,
        Drop::BadVersion,
        Drop::BadHeaderLength,
        Drop::Fragment,
        Drop::NotTcpOrUdp,
        Drop::NotForThisHost,
    ];

    /// The reason's position in [`Drop::ALL`].
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
            Drop::NotForThisHost => "not_for_this_host",
        }
    }
}

/// Parses a packet starting at its IP header.
pub fn parse(bytes: &[u8]) -> Result<Packet<'_>, Drop> {
    match bytes.first().map(|b| b >> 4) {
        None => Err(Drop::Truncated),
        Some(4) => {
            let ip = ipv4::Ipv4::new_checked(bytes)?;
            if ip.is_later_fragment() {
                return Err(Drop::Fragment);
            }
            let addrs = (IpAddr::V4(ip.src()), IpAddr::V4(ip.dst()));
            transport(addrs, ip.protocol(), ip.payload(), ip.ident())
        }
        Some(6) => {
            let ip = ipv6::Ipv6::new_checked(bytes)?;
            transport((IpAddr::V6(ip.src()), IpAddr::V6(ip.dst())), ip.next_header(), ip.payload(), 0)
        }
        Some(_) => Err(Drop::BadVersion),
    }
}

fn transport((src, dst): (IpAddr, IpAddr), protocol: u8, bytes: &[u8], ident: u16) -> Result<Packet<'_>, Drop> {
    match protocol {
        PROTO_TCP => {
            let tcp = tcp::Tcp::new_checked(bytes)?;
            let fingerprint = u64::from(tcp.src_port()) << 32 | u64::from(tcp.seq_number());
            let port = PortProto::new(tcp.dst_port(), Proto::Tcp);
            Ok(Packet { knock: Knock { src, dst, port, tcp_flags: tcp.flags(), fingerprint }, payload: Some(&[]) })
        }
        PROTO_UDP => {
            let udp = udp::Udp::new_checked(bytes)?;
            let fingerprint = u64::from(udp.src_port()) << 48
                | u64::from(udp.checksum()) << 32
                | (udp.length() as u64) << 16
                | u64::from(ident);
            let port = PortProto::new(udp.dst_port(), Proto::Udp);
            Ok(Packet { knock: Knock { src, dst, port, tcp_flags: 0, fingerprint }, payload: udp.payload() })
        }
        _ => Err(Drop::NotTcpOrUdp),
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
        let k = parse(&TCP_SYN_V4).unwrap().knock;
        assert_eq!(k.src, IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)));
        assert_eq!(k.port, PortProto::tcp(7000));
        assert_eq!(k.tcp_flags, 0x02);
        assert_eq!(k.fingerprint, 40000 << 32 | 1);
    }

    #[test]
    fn udp_v6() {
        let p = parse(&UDP_V6).unwrap();
        assert_eq!(p.knock.src, IpAddr::V6("2001:db8::2".parse::<Ipv6Addr>().unwrap()));
        assert_eq!(p.knock.port, PortProto::udp(9000));
        assert_eq!(p.payload, Some(&b"knok"[..]));
    }

    #[test]
    fn every_truncation_is_dropped_not_panicked() {
        for len in 0..TCP_SYN_V4.len() {
            assert_eq!(parse(&TCP_SYN_V4[..len]), Err(Drop::Truncated), "len {len}");
        }
        for len in 0..48 {
            assert_eq!(parse(&UDP_V6[..len]), Err(Drop::Truncated), "len {len}");
        }
        // The UDP header is there, the payload is not: a knock, but no payload.
        assert_eq!(parse(&UDP_V6[..50]).unwrap().payload, None);
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
