//! The `knock` client: turn `host port[:proto]...` into one SYN or one datagram per hit.

pub mod cli;
pub mod keygen;
mod services;
mod wait_open;

pub use wait_open::wait_open;

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::config::{PortProto, Proto};

/// What went wrong, split by who is to blame: the command line (exit 2) or the network (exit 1).
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's doc names its fields")]
pub enum ClientError {
    /// The command line is wrong; nothing was sent.
    #[error("{0}")]
    Usage(String),
    /// The host name has no address of the family asked for.
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    /// `--wait-open`: the port did not accept a connection in time.
    #[error("{target} did not open within {}s", within.as_secs())]
    NotOpen { target: SocketAddr, within: Duration },
    /// A hit could not be sent.
    #[error("cannot send {what} to {target}: {source}")]
    Send {
        /// "a TCP knock", "a UDP knock", "the SPA packet".
        what: &'static str,
        /// Where it was going.
        target: SocketAddr,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
}

impl ClientError {
    /// The exit status: 2 for bad input (nothing was sent), 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// Which address family to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Whichever the host name resolves to first.
    Any,
    /// IPv4 only (`-4`).
    V4,
    /// IPv6 only (`-6`).
    V6,
}

/// Parses one hit: `7000`, `7000:udp`, `7000/udp` or a service name like `ssh` or `domain:udp`.
/// Without a protocol, a hit is UDP when `udp` (`-u`) is set, TCP otherwise.
pub fn parse_hit(text: &str, udp: bool) -> Result<PortProto, ClientError> {
    let usage = |m: String| ClientError::Usage(m);
    let (port, proto) = match text.find([':', '/']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let proto = match proto.map(str::to_ascii_lowercase).as_deref() {
        None => {
            if udp {
                Proto::Udp
            } else {
                Proto::Tcp
            }
        }
        Some("tcp") => Proto::Tcp,
        Some("udp") => Proto::Udp,
        Some(other) => return Err(usage(format!("`{text}`: unknown protocol `{other}`: use tcp or udp"))),
    };
    if port.is_empty() {
        return Err(usage(format!("`{text}`: no port: write a number 1-65535 or a service name")));
    }
    if port.bytes().all(|b| b.is_ascii_digit()) {
        let number: u64 = port.parse().unwrap_or(u64::MAX);
        return PortProto::checked(number, proto).map_err(|e| usage(format!("`{text}`: {e}")));
    }
    if port.starts_with('-') {
        return Err(usage(format!("`{text}`: ports are 1-65535")));
    }
    services::port(port, proto)
        .map(|p| PortProto::new(p, proto))
        .ok_or_else(|| usage(format!("`{text}`: unknown service `{port}` for {proto}")))
}

/// Resolves `host` once, to the first address of the wanted family.
pub fn resolve(host: &str, family: Family) -> Result<IpAddr, ClientError> {
    let error = |reason: String| ClientError::Resolve { host: host.to_owned(), reason };
    let addrs = (host, 0).to_socket_addrs().map_err(|e| error(e.to_string()))?;
    addrs
        .map(|a| a.ip())
        .find(|ip| match family {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        })
        .ok_or_else(|| error(format!("no {} address", if family == Family::V6 { "IPv6" } else { "IPv4" })))
}

/// Where hits leave from: a source address and/or an interface.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The local address hits are sent from (`--source`).
    pub source: Option<IpAddr>,
    /// The interface hits leave through (`--interface`).
    pub interface: Option<String>,
}

impl Origin {
    fn socket(&self, target: &SocketAddr, kind: Type, proto: Protocol) -> io::Result<Socket> {
        let socket = Socket::new(Domain::for_address(*target), kind, Some(proto))?;
        if let Some(name) = &self.interface {
            socket.bind_device(Some(name.as_bytes()))?;
        }
        if let Some(source) = self.source {
            socket.bind(&SockAddr::from(SocketAddr::new(source, 0)))?;
        }
        Ok(socket)
    }
}

/// Sends one hit: a TCP SYN (a non-blocking connect, then close) or one small UDP datagram.
pub fn send_hit(target: IpAddr, hit: PortProto, origin: &Origin) -> Result<(), ClientError> {
    let to = SocketAddr::new(target, hit.port);
    let fail = |what, source| ClientError::Send { what, target: to, source };
    match hit.proto {
        Proto::Udp => {
            let socket = origin.socket(&to, Type::DGRAM, Protocol::UDP).map_err(|e| fail("a UDP knock", e))?;
            socket.send_to(b"knock", &SockAddr::from(to)).map_err(|e| fail("a UDP knock", e))?;
        }
        Proto::Tcp => {
            let socket = origin.socket(&to, Type::STREAM, Protocol::TCP).map_err(|e| fail("a TCP knock", e))?;
            socket.set_nonblocking(true).map_err(|e| fail("a TCP knock", e))?;
            match socket.connect(&SockAddr::from(to)) {
                // The SYN is on its way; the connection itself is not wanted.
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(fail("a TCP knock", e)),
            }
        }
    }
    Ok(())
}

/// Sends one UDP datagram with `payload` (a single-packet authorization).
pub fn send_datagram(target: IpAddr, port: u16, payload: &[u8], origin: &Origin) -> Result<(), ClientError> {
    let to = SocketAddr::new(target, port);
    let fail = |source| ClientError::Send { what: "the SPA packet", target: to, source };
    let socket = origin.socket(&to, Type::DGRAM, Protocol::UDP).map_err(fail)?;
    socket.send_to(payload, &SockAddr::from(to)).map_err(fail)?;
    Ok(())
}

/// Parses `LOW-HIGH` for rotating sequences, with the daemon's rules.
pub fn parse_port_range(text: &str) -> Result<(u16, u16), ClientError> {
    let bad =
        || ClientError::Usage(format!("--port-range {text}: write two ports like 20000-40000, at least 16 apart"));
    let (low, high) = text.split_once('-').ok_or_else(bad)?;
    let (low, high): (u16, u16) = (low.trim().parse().map_err(|_| bad())?, high.trim().parse().map_err(|_| bad())?);
    if low == 0 || high < low.saturating_add(15) {
        return Err(bad());
    }
    Ok((low, high))
}
