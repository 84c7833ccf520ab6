//! Raw frames from the client side: spoofed knocks and malformed packets, sent straight to the
//! server's MAC address with an AF_PACKET socket. Every sending loop is bounded in count.

use std::net::Ipv4Addr;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::lab::Lab;

/// An AF_PACKET socket on the client's veth end.
pub struct Sender {
    socket: Socket,
    to: SockAddr,
}

impl Sender {
    /// A sender for frames of `ethertype` (IPv4 is 0x0800) to the server.
    pub fn new(lab: &Lab, ethertype: u16) -> Sender {
        Sender::to_mac(lab, ethertype, lab.server_mac())
    }

    /// A sender for frames of `ethertype` to the link address `mac`, through the client's end
    /// of the veth pair (the server sees every one of them).
    pub fn to_mac(lab: &Lab, ethertype: u16, mac: [u8; 6]) -> Sender {
        let ifname = lab.client_if.clone();
        lab.client.run(move || {
            let socket = Socket::new(Domain::PACKET, Type::DGRAM, None).unwrap();
            let ifindex = knockd::capture::interface_index(&ifname).unwrap();
            // SAFETY: a complete sockaddr_ll written into zeroed storage.
            let ((), to) = unsafe {
                SockAddr::try_init(|storage, len| {
                    let ll = storage.cast::<libc::sockaddr_ll>();
                    (*ll).sll_family = libc::AF_PACKET as u16;
                    (*ll).sll_protocol = ethertype.to_be();
                    (*ll).sll_ifindex = ifindex as i32;
                    (*ll).sll_halen = 6;
                    let addr = &mut (*ll).sll_addr;
                    addr[..6].copy_from_slice(&mac);
                    *len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                    Ok(())
                })
            }
            .unwrap();
            Sender { socket, to }
        })
    }

    /// Sends one packet (the link header is added by the kernel).
    pub fn send(&self, packet: &[u8]) {
        // A full queue (ENOBUFS) under a flood only means this packet is lost: like the wire.
        let _ = self.socket.send_to(packet, &self.to);
    }

    /// Sends up to 64 packets with one `sendmmsg` call; returns how many the kernel took.
    pub fn send_many(&self, packets: &[Vec<u8>]) -> usize {
        use std::os::fd::AsRawFd;
        let packets = &packets[..packets.len().min(64)];
        let mut iovecs: Vec<libc::iovec> =
            packets.iter().map(|p| libc::iovec { iov_base: p.as_ptr() as *mut _, iov_len: p.len() }).collect();
        let mut headers: Vec<libc::mmsghdr> = iovecs
            .iter_mut()
            .map(|iov| {
                // SAFETY: all zeroes is a valid mmsghdr; the pointers set below outlive the call.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_name = self.to.as_ptr() as *mut _;
                h.msg_hdr.msg_namelen = self.to.len();
                h.msg_hdr.msg_iov = iov;
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        // SAFETY: every header points at a live iovec, packet and address.
        let n = unsafe { libc::sendmmsg(self.socket.as_raw_fd(), headers.as_mut_ptr(), headers.len() as u32, 0) };
        n.max(0) as usize
    }
}

/// An IPv4 TCP SYN from `src` to `dst:dport`.
pub fn tcp_syn(src: Ipv4Addr, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    tcp_syn_from(src, 40000, 0, dst, dport)
}

/// An IPv4 TCP SYN from `src:sport` with sequence number `seq` to `dst:dport`: the same
/// arguments make the same packet, as a retransmission does.
pub fn tcp_syn_from(src: Ipv4Addr, sport: u16, seq: u32, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p[24..28].copy_from_slice(&seq.to_be_bytes());
    p[32] = 0x50;
    p[33] = 0x02;
    p[34..36].copy_from_slice(&1024u16.to_be_bytes());
    let sum = checksum(&p[..20]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p
}

/// The Internet checksum of an IPv4 header.
fn checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// How many distinct spoofed sources there are: 198.18.32.0 to 198.19.255.255, clear of the
/// lab's own addresses in 198.18.0.0/19.
pub const SPOOFED: u32 = 0x1_e000;

/// The `n`th spoofed source (they repeat after [`SPOOFED`]).
pub fn spoofed(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(0xc612_2000 + n % SPOOFED)
}

/// An IPv4 UDP datagram from `src:sport` to `dst:dport` carrying `payload` (no UDP checksum,
/// which IPv4 allows).
pub fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = 28 + payload.len();
    let mut p = vec![0u8; 28];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(&p[..20]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 UDP datagram from `src:sport` to `dst:dport` carrying `payload`, with its checksum
/// (IPv6 requires one).
pub fn udp6(src: std::net::Ipv6Addr, sport: u16, dst: std::net::Ipv6Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    let mut p = vec![0u8; 48];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&len.to_be_bytes());
    p[6] = 17;
    p[7] = 64;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p[40..42].copy_from_slice(&sport.to_be_bytes());
    p[42..44].copy_from_slice(&dport.to_be_bytes());
    p[44..46].copy_from_slice(&len.to_be_bytes());
    p.extend_from_slice(payload);
    // The pseudo-header: both addresses, the length, the protocol; then the datagram.
    let mut sum: u32 = 17 + u32::from(len);
    let words = p[8..40].chunks(2).chain(p[40..].chunks(2));
    sum += words.map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]))).sum::<u32>();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let sum = match !(sum as u16) {
        0 => 0xffff,
        s => s,
    };
    p[46..48].copy_from_slice(&sum.to_be_bytes());
    p
}
