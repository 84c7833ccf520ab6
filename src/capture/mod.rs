//! Capture: where packets come from.
//!
//! Contract: AF_PACKET sockets, cooked (`SOCK_DGRAM`, so every packet starts at its IP header
//! whatever the link type), each with a classic BPF program in the kernel ([`bpf`]) that passes
//! only packets that could be knocks: received by this host, on the configured interfaces, to a
//! port some door listens on. Knocks and single-packet authorization datagrams arrive on two
//! sockets ([`Lane`]), so a flood of one cannot crowd out the other. [`Capture`] keeps the
//! filters in step with the doors' ports and with interfaces that come and go; [`socket`] reads
//! packets in batches; [`local`] knows this host's own addresses.

pub mod bpf;
pub mod local;
pub mod socket;

use std::io;

use bpf::BpfError;
pub use socket::{BATCH, KernelStats, PacketSocket, PacketSource, RecvBatch, interface_index};

use crate::packet::PortProto;

/// Why capture could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The knock ports do not fit in a kernel filter.
    #[error(transparent)]
    Filter(#[from] BpfError),
    /// The kernel refused the socket or the filter.
    #[error("cannot open the capture socket (knockd needs CAP_NET_RAW): {0}")]
    Socket(#[source] io::Error),
}

/// Which capture socket a door kind's packets arrive on. Datagram kinds (single-packet
/// authorization) have a socket of their own: a flood of forged datagrams fills only that
/// socket's kernel buffer, never the one knocks arrive in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Knock sequences.
    Knocks,
    /// Single-packet authorization.
    Datagrams,
}

impl Lane {
    /// Both lanes, knocks first (the event loop reads them first).
    pub const ALL: [Lane; 2] = [Lane::Knocks, Lane::Datagrams];
}

/// The ports each lane's filter passes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ports {
    /// Ports of knock sequences.
    pub knocks: Vec<PortProto>,
    /// Ports of datagram doors.
    pub datagrams: Vec<PortProto>,
}

impl Ports {
    /// The ports of `lane`.
    pub fn of(&self, lane: Lane) -> &[PortProto] {
        match lane {
            Lane::Knocks => &self.knocks,
            Lane::Datagrams => &self.datagrams,
        }
    }
}

/// The capture sockets with what their filters are built from: ports, interfaces, families.
///
/// Named interfaces that do not exist (yet) are not an error: the filters pass nothing from
/// them until they appear, and [`Capture::follow_interfaces`] notices when they come, go, or
/// come back with a new index (the classic knockd exited when its interface went away).
pub struct Capture {
    /// One packet socket per [`Lane`], for the event loop to poll and read.
    sockets: [PacketSocket; 2],
    /// Interfaces named in the config; empty means all.
    names: Vec<String>,
    /// Indexes of the named interfaces that exist now.
    ifindexes: Vec<u32>,
    ports: Ports,
    ipv6: bool,
}

impl Capture {
    /// Opens capture on `interfaces` (all if empty), passing nothing yet; IPv4 only unless `ipv6`.
    pub fn open(interfaces: &[String], ipv6: bool) -> Result<Capture, CaptureError> {
        let (ifindexes, _) = resolve(interfaces);
        let nothing = bpf::build(&[], Some(&[]), ipv6)?;
        let open = || PacketSocket::open(&nothing).map_err(CaptureError::Socket);
        let mut capture = Capture {
            sockets: [open()?, open()?],
            names: interfaces.to_vec(),
            ifindexes,
            ports: Ports::default(),
            ipv6,
        };
        capture.apply()?;
        Ok(capture)
    }

    /// The socket of `lane`.
    pub fn socket(&self, lane: Lane) -> &PacketSocket {
        &self.sockets[lane as usize]
    }

    /// The socket of `lane`, to read from.
    pub fn socket_mut(&mut self, lane: Lane) -> &mut PacketSocket {
        &mut self.sockets[lane as usize]
    }

    /// What the kernel counted on both sockets.
    pub fn kernel_stats(&self) -> KernelStats {
        self.sockets.iter().map(|s| s.kernel_stats().unwrap_or_default()).fold(KernelStats::default(), |a, b| {
            KernelStats { packets: a.packets + b.packets, drops: a.drops + b.drops }
        })
    }

    fn apply(&mut self) -> Result<(), CaptureError> {
        let only = (!self.names.is_empty()).then_some(self.ifindexes.as_slice());
        for lane in Lane::ALL {
            let filter = bpf::build(self.ports.of(lane), only, self.ipv6)?;
            self.sockets[lane as usize].set_filter(&filter).map_err(CaptureError::Socket)?;
        }
        Ok(())
    }

    /// Named interfaces that do not exist right now.
    pub fn missing(&self) -> Vec<String> {
        resolve(&self.names).1
    }

    /// Follows new ports. On error the old filters stay.
    pub fn set_ports(&mut self, ports: &Ports) -> Result<(), CaptureError> {
        let old = std::mem::replace(&mut self.ports, ports.clone());
        self.apply().inspect_err(|_| self.ports = old)
    }

    /// Follows a reload: new interfaces and new ports at once. On error nothing changes.
    pub fn reconfigure(&mut self, interfaces: &[String], ports: &Ports) -> Result<(), CaptureError> {
        let old = (self.names.clone(), self.ifindexes.clone(), self.ports.clone());
        self.names = interfaces.to_vec();
        self.ifindexes = resolve(interfaces).0;
        self.ports = ports.clone();
        self.apply().inspect_err(|_| (self.names, self.ifindexes, self.ports) = old)
    }

    /// Looks the named interfaces up again and rebuilds the filters if any appeared, went away
    /// or came back under a new index. Returns whether the filters changed.
    pub fn follow_interfaces(&mut self) -> Result<bool, CaptureError> {
        if self.names.is_empty() {
            return Ok(false);
        }
        let (now, _) = resolve(&self.names);
        if now == self.ifindexes {
            return Ok(false);
        }
        self.ifindexes = now;
        self.apply()?;
        Ok(true)
    }
}

/// The indexes of the interfaces that exist, and the names of those that do not.
fn resolve(interfaces: &[String]) -> (Vec<u32>, Vec<String>) {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in interfaces {
        match interface_index(name) {
            Ok(index) => found.push(index),
            Err(_) => missing.push(name.clone()),
        }
    }
    (found, missing)
}
