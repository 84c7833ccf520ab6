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
    /// A sender for frames of `ethertype` (IPv4 is 0x0800) to the server. Must be created
    /// inside the client namespace.
    pub fn new(lab: &Lab, ethertype: u16) -> Sender {
        let (mac, ifname) = (lab.server_mac(), lab.client_if.clone());
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
}

/// An IPv4 TCP SYN from `src` to `dst:dport`.
pub fn tcp_syn(src: Ipv4Addr, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    p[20..22].copy_from_slice(&40000u16.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
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

/// The `n`th spoofed source in 198.19.0.0/16 (skipping .0 and .255 of each /24).
pub fn spoofed(n: u32) -> Ipv4Addr {
    let n = n % (256 * 254);
    Ipv4Addr::new(198, 19, (n / 254) as u8, (n % 254 + 1) as u8)
}
