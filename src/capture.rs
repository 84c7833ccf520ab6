//! The capture socket: AF_PACKET, cooked (`SOCK_DGRAM`), with the knock filter in the kernel.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, SockAddr, SockFilter, Socket, Type};

use crate::bpf::Insn;

/// Kernel receive buffer: room for bursts of knocks while the daemon is busy with netlink.
const RECV_BUFFER_BYTES: usize = 4 << 20;

/// Something the daemon can read knock packets from; the kernel socket, or a test's list.
pub trait PacketSource {
    /// Reads one packet (starting at its IP header) into `buf`; `None` when none is waiting.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>>;
}

/// An AF_PACKET socket on every interface, filtered in the kernel.
pub struct PacketSocket {
    socket: Socket,
}

impl PacketSocket {
    /// Opens the socket with `filter` attached before it receives anything.
    pub fn open(filter: &[Insn]) -> io::Result<Self> {
        // Protocol 0: the socket receives nothing until `bind` names a protocol, so no packet
        // can slip in before the filter is attached.
        let socket = Socket::new(Domain::PACKET, Type::DGRAM, None)?;
        socket.set_recv_buffer_size(RECV_BUFFER_BYTES)?;
        let capture = PacketSocket { socket };
        capture.set_filter(filter)?;
        capture.socket.bind(&all_protocols_address()?)?;
        capture.socket.set_nonblocking(true)?;
        Ok(capture)
    }

    /// Replaces the kernel filter; the kernel swaps it atomically.
    pub fn set_filter(&self, filter: &[Insn]) -> io::Result<()> {
        let program: Vec<SockFilter> = filter
            .iter()
            .map(|i| SockFilter::new(i.code, i.jt, i.jf, i.k))
            .collect();
        self.socket.attach_filter(&program)
    }
}

impl PacketSource for PacketSocket {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            return match (&self.socket).read(buf) {
                Ok(n) => Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The interface a queued packet came from went away; the next one is fine.
                Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => continue,
                Err(e) => Err(e),
            };
        }
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
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
