//! Capture: where packets come from.
//!
//! Contract: one AF_PACKET socket, cooked (`SOCK_DGRAM`, so every packet starts at its IP
//! header whatever the link type), with a classic BPF program in the kernel ([`bpf`]) that
//! passes only packets that could be knocks: received by this host, on the configured
//! interfaces, to a port some door listens on. [`Capture`] keeps that filter in step with the
//! doors' ports and with interfaces that come and go; [`socket`] reads packets in batches.

pub mod bpf;
pub mod local;
pub mod socket;

use std::io;

use bpf::BpfError;
pub use socket::{BATCH, KernelStats, PacketSocket, PacketSource, RecvBatch, interface_index};

use crate::config::PortProto;

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

/// The capture socket with what its filter is built from: knock ports, interfaces, families.
///
/// Named interfaces that do not exist (yet) are not an error: the filter passes nothing from
/// them until they appear, and [`Capture::follow_interfaces`] notices when they come, go, or
/// come back with a new index (the classic knockd exited when its interface went away).
pub struct Capture {
    /// The packet socket, for the event loop to poll and read.
    pub socket: PacketSocket,
    /// Interfaces named in the config; empty means all.
    names: Vec<String>,
    /// Indexes of the named interfaces that exist now.
    ifindexes: Vec<u32>,
    ports: Vec<PortProto>,
    ipv6: bool,
}

impl Capture {
    /// Opens capture on `interfaces` (all if empty) for `ports`; IPv4 only unless `ipv6`.
    pub fn open(interfaces: &[String], ports: &[PortProto], ipv6: bool) -> Result<Capture, CaptureError> {
        let (ifindexes, _) = resolve(interfaces);
        let mut capture = Capture {
            socket: PacketSocket::open(&bpf::build(&[], Some(&[]), ipv6)?).map_err(CaptureError::Socket)?,
            names: interfaces.to_vec(),
            ifindexes,
            ports: ports.to_vec(),
            ipv6,
        };
        capture.apply()?;
        Ok(capture)
    }

    fn apply(&mut self) -> Result<(), CaptureError> {
        let only = (!self.names.is_empty()).then_some(self.ifindexes.as_slice());
        let filter = bpf::build(&self.ports, only, self.ipv6)?;
        self.socket.set_filter(&filter).map_err(CaptureError::Socket)
    }

    /// Named interfaces that do not exist right now.
    pub fn missing(&self) -> Vec<String> {
        resolve(&self.names).1
    }

    /// Follows new knock ports. On error the old filter stays.
    pub fn set_ports(&mut self, ports: &[PortProto]) -> Result<(), CaptureError> {
        let old = std::mem::replace(&mut self.ports, ports.to_vec());
        self.apply().inspect_err(|_| self.ports = old)
    }

    /// Follows a reload: new interfaces and new knock ports at once. On error nothing changes.
    pub fn reconfigure(&mut self, interfaces: &[String], ports: &[PortProto]) -> Result<(), CaptureError> {
        let old = (self.names.clone(), self.ifindexes.clone(), self.ports.clone());
        self.names = interfaces.to_vec();
        self.ifindexes = resolve(interfaces).0;
        self.ports = ports.to_vec();
        self.apply().inspect_err(|_| (self.names, self.ifindexes, self.ports) = old)
    }

    /// Looks the named interfaces up again and rebuilds the filter if any appeared, went away
    /// or came back under a new index. Returns whether the filter changed.
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
