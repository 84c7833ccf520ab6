//! Raw frames from the client side: spoofed knocks and malformed packets, sent straight to the
//! server's MAC address with an AF_PACKET socket. The packets are built with
//! `knockd::packet::Knock` (`Knock::tcp_syn(src, dst, 7000).emit()`), as the unit tests build
//! theirs. Every sending loop is bounded in count.

use std::net::Ipv4Addr;

use socket2::{Domain, SockAddr, Socket, Type};

use super::lab::Lab;

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

/// How many distinct spoofed sources there are: 198.18.32.0 to 198.19.255.255, clear of the
/// lab's own addresses in 198.18.0.0/19.
pub const SPOOFED: u32 = 0x1_e000;

/// The `n`th spoofed source (they repeat after [`SPOOFED`]).
pub fn spoofed(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(0xc612_2000 + n % SPOOFED)
}
