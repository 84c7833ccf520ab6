//! The AF_PACKET socket itself: opened with its filter attached before anything arrives, read
//! with `recvmmsg` in batches into buffers allocated once.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, SockAddr, SockFilter, Socket, Type};

use super::bpf::{self, Insn};

/// Kernel receive buffer: room for bursts of knocks while the daemon is busy with netlink
/// (each queued packet costs about 1 KiB of buffer, whatever its size).
const RECV_BUFFER_BYTES: usize = 32 << 20;

/// What the kernel counted on the capture socket since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Packets that passed the filter.
    pub packets: u64,
    /// Of those, packets the kernel dropped because the socket's buffer was full.
    pub drops: u64,
}

/// Packets per `recvmmsg` call.
pub const BATCH: usize = 64;

/// Buffers for one batch of packets, allocated once and reused for every call.
pub struct RecvBatch {
    buffers: Vec<[u8; bpf::SNAPLEN as usize]>,
    lengths: Vec<usize>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    count: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            buffers: vec![[0; bpf::SNAPLEN as usize]; BATCH],
            lengths: vec![0; BATCH],
            iovecs: Vec::with_capacity(BATCH),
            // SAFETY: mmsghdr is a plain C struct for which all zeroes is a valid value.
            headers: vec![unsafe { std::mem::zeroed() }; BATCH],
            count: 0,
        }
    }
}

impl RecvBatch {
    /// The packets received by the last call, each starting at its IP header.
    pub fn packets(&self) -> impl Iterator<Item = &[u8]> {
        self.buffers[..self.count].iter().zip(&self.lengths).map(|(b, len)| &b[..(*len).min(b.len())])
    }
}

/// Something the daemon can read knock packets from; the kernel socket, or a test's list.
pub trait PacketSource {
    /// Reads the packets waiting, up to a batch; returns how many (0 when none is waiting).
    fn recv_batch(&mut self, batch: &mut RecvBatch) -> io::Result<usize>;
}

/// An AF_PACKET socket on every interface, filtered in the kernel.
pub struct PacketSocket {
    socket: Socket,
    /// The kernel resets its counters on every read; these are the running totals.
    totals: std::cell::Cell<KernelStats>,
}

impl PacketSocket {
    /// Opens the socket with `filter` attached before it receives anything.
    pub fn open(filter: &[Insn]) -> io::Result<Self> {
        // Protocol 0: the socket receives nothing until `bind` names a protocol, so no packet
        // can slip in before the filter is attached.
        let socket = Socket::new(Domain::PACKET, Type::DGRAM, None)?;
        set_recv_buffer(&socket)?;
        let capture = PacketSocket { socket, totals: Default::default() };
        capture.set_filter(filter)?;
        capture.socket.bind(&all_protocols_address()?)?;
        capture.socket.set_nonblocking(true)?;
        Ok(capture)
    }

    /// The kernel's counters for this socket, as running totals.
    pub fn kernel_stats(&self) -> io::Result<KernelStats> {
        let mut stats = libc::tpacket_stats { tp_packets: 0, tp_drops: 0 };
        let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `stats`.
        let rc = unsafe {
            libc::getsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut stats).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut totals = self.totals.get();
        totals.packets += u64::from(stats.tp_packets);
        totals.drops += u64::from(stats.tp_drops);
        self.totals.set(totals);
        Ok(totals)
    }

    /// Replaces the kernel filter; the kernel swaps it atomically.
    pub fn set_filter(&self, filter: &[Insn]) -> io::Result<()> {
        let program: Vec<SockFilter> = filter.iter().map(|i| SockFilter::new(i.code, i.jt, i.jf, i.k)).collect();
        self.socket.attach_filter(&program)
    }
}

impl PacketSource for PacketSocket {
    fn recv_batch(&mut self, batch: &mut RecvBatch) -> io::Result<usize> {
        // The pointers are rebuilt on every call: the batch may have moved since the last one.
        batch.iovecs.clear();
        for buffer in &mut batch.buffers {
            batch.iovecs.push(libc::iovec { iov_base: buffer.as_mut_ptr().cast(), iov_len: buffer.len() });
        }
        for (header, iovec) in batch.headers.iter_mut().zip(&mut batch.iovecs) {
            // SAFETY: as in `Default`, all zeroes is a valid msghdr.
            *header = unsafe { std::mem::zeroed() };
            header.msg_hdr.msg_iov = iovec;
            header.msg_hdr.msg_iovlen = 1;
        }
        loop {
            // SAFETY: every header points at one live iovec of a live buffer, for BATCH entries.
            let n = unsafe {
                libc::recvmmsg(
                    self.socket.as_raw_fd(),
                    batch.headers.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n >= 0 {
                let n = n as usize;
                for (len, header) in batch.lengths.iter_mut().zip(&batch.headers[..n]) {
                    *len = header.msg_len as usize;
                }
                batch.count = n;
                return Ok(n);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => {
                    batch.count = 0;
                    return Ok(0);
                }
                io::ErrorKind::Interrupted => continue,
                // The interface a queued packet came from went away; the next one is fine.
                _ if e.raw_os_error() == Some(libc::ENETDOWN) => continue,
                _ => return Err(e),
            }
        }
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl std::os::fd::AsFd for PacketSocket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// SO_RCVBUF is capped by net.core.rmem_max (about 208 KiB by default), which a burst of knocks
/// fills in a millisecond; SO_RCVBUFFORCE, allowed with CAP_NET_ADMIN, is not.
fn set_recv_buffer(socket: &Socket) -> io::Result<()> {
    let size = RECV_BUFFER_BYTES as libc::c_int;
    // SAFETY: setsockopt reads one c_int from `size`.
    let forced = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&raw const size).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if forced == 0 { Ok(()) } else { socket.set_recv_buffer_size(RECV_BUFFER_BYTES) }
}

/// `sockaddr_ll` for every protocol on every interface (ifindex 0).
fn all_protocols_address() -> io::Result<SockAddr> {
    // SAFETY: we write a complete sockaddr_ll into zeroed storage large enough for any address.
    let ((), addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            let ll = storage.cast::<libc::sockaddr_ll>();
            (*ll).sll_family = libc::AF_PACKET as u16;
            (*ll).sll_protocol = (libc::ETH_P_ALL as u16).to_be();
            (*ll).sll_ifindex = 0;
            *len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            Ok(())
        })
    }?;
    Ok(addr)
}

/// The kernel's index of interface `name`.
pub fn interface_index(name: &str) -> io::Result<u32> {
    let c_name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c_name` is a valid NUL-terminated string.
    match unsafe { libc::if_nametoindex(c_name.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        index => Ok(index),
    }
}
