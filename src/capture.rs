//! The capture socket: AF_PACKET, cooked (`SOCK_DGRAM`), with the knock filter in the kernel.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, SockAddr, SockFilter, Socket, Type};

use crate::bpf::{self, BpfError, Insn};
use crate::config::PortProto;

/// Kernel receive buffer: room for bursts of knocks while the daemon is busy with netlink.
const RECV_BUFFER_BYTES: usize = 4 << 20;

/// Why capture could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("interface {name}: {source}")]
    Interface {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Filter(#[from] BpfError),
    #[error("cannot open the capture socket (knockd needs CAP_NET_RAW): {0}")]
    Socket(#[source] io::Error),
}

/// The capture socket with what its filter is built from: interfaces and address families.
pub struct Capture {
    pub socket: PacketSocket,
    ifindexes: Vec<u32>,
    ipv6: bool,
}

/// What the kernel counted on the capture socket since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Packets that passed the filter.
    pub packets: u64,
    /// Of those, packets the kernel dropped because the socket's buffer was full.
    pub drops: u64,
}

impl Capture {
    /// Opens capture on `interfaces` (all if empty) for `ports`; IPv4 only unless `ipv6`.
    pub fn open(interfaces: &[String], ports: &[PortProto], ipv6: bool) -> Result<Capture, CaptureError> {
        let ifindexes = resolve(interfaces)?;
        let filter = bpf::build(ports, &ifindexes, ipv6)?;
        let socket = PacketSocket::open(&filter).map_err(CaptureError::Socket)?;
        Ok(Capture { socket, ifindexes, ipv6 })
    }

    /// Checks that every named interface exists, before a reload commits to them.
    pub fn check_interfaces(interfaces: &[String]) -> Result<(), CaptureError> {
        resolve(interfaces).map(drop)
    }

    /// Follows new knock ports and, on reload, new interfaces. On error nothing changes.
    pub fn refilter(&mut self, interfaces: Option<&[String]>, ports: &[PortProto]) -> Result<(), CaptureError> {
        let ifindexes = match interfaces {
            Some(names) => resolve(names)?,
            None => self.ifindexes.clone(),
        };
        let filter = bpf::build(ports, &ifindexes, self.ipv6)?;
        self.socket.set_filter(&filter).map_err(CaptureError::Socket)?;
        self.ifindexes = ifindexes;
        Ok(())
    }
}

fn resolve(interfaces: &[String]) -> Result<Vec<u32>, CaptureError> {
    interfaces
        .iter()
        .map(|name| interface_index(name).map_err(|source| CaptureError::Interface { name: name.clone(), source }))
        .collect()
}

/// Something the daemon can read knock packets from; the kernel socket, or a test's list.
pub trait PacketSource {
    /// Reads one packet (starting at its IP header) into `buf`; `None` when none is waiting.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>>;
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
        socket.set_recv_buffer_size(RECV_BUFFER_BYTES)?;
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
