//! What a user does and sees, from the client namespace: knocks, connections that work or are
//! dropped, and bounded waits for what the server does.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use knockd::client::{self, Origin};
use knockd::config::{PortProto, Proto};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::lab::{Lab, Netns, SERVER_V4, SERVER_V6};

/// How long a connection attempt waits for an answer before the port counts as dropped.
pub const DROP_WAIT: Duration = Duration::from_millis(700);

fn bound_socket(src: IpAddr, kind: Type, proto: Protocol) -> io::Result<Socket> {
    let domain = if src.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let socket = Socket::new(domain, kind, Some(proto))?;
    socket.bind(&SockAddr::from(SocketAddr::new(src, 0)))?;
    Ok(socket)
}

/// A TCP connection from `src` to `dst`, as a user's ssh would make it.
pub fn connect(client: &Netns, src: &str, dst: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let src: IpAddr = src.parse().unwrap();
    client.run(|| {
        let socket = bound_socket(src, Type::STREAM, Protocol::TCP)?;
        socket.connect_timeout(&SockAddr::from(dst), timeout)?;
        Ok(socket.into())
    })
}

/// Tries to connect until it works or `within` passes; bounded in count and time.
pub fn connects_within(client: &Netns, src: &str, dst: SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    for _ in 0..50 {
        if connect(client, src, dst, Duration::from_millis(300)).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    false
}

/// Whether a connection attempt is dropped: no answer at all within `wait`.
pub fn is_dropped(client: &Netns, src: &str, dst: SocketAddr, wait: Duration) -> bool {
    match connect(client, src, dst, wait) {
        Ok(_) => false,
        Err(e) => e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock,
    }
}

/// One knock: a single SYN (non-blocking connect, then close) or one small datagram.
pub fn knock(client: &Netns, src: &str, dst: &str, port: u16, proto: Proto) {
    let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    client
        .run(|| send_knock(src, SocketAddr::new(dst, port), proto))
        .unwrap_or_else(|e| panic!("knock {dst}:{port}: {e}"));
}

/// Knocks on `ports`, in order, from `src` on the client to `dst`.
pub fn knock_all(lab: &Lab, src: &str, dst: &str, ports: &[PortProto]) {
    for p in ports {
        knock(&lab.client, src, dst, p.port, p.proto);
    }
}

/// Knocks on the TCP `ports`, in order, from `src` on the client to `dst`.
pub fn knock_tcp(lab: &Lab, src: &str, dst: &str, ports: &[u16]) {
    for &port in ports {
        knock(&lab.client, src, dst, port, Proto::Tcp);
    }
}

/// Sends one knock from inside the current namespace, as the `knock` client does.
pub fn send_knock(src: IpAddr, dst: SocketAddr, proto: Proto) -> io::Result<()> {
    let origin = Origin { source: Some(src), interface: None };
    client::send_hit(dst.ip(), PortProto::new(dst.port(), proto), &origin).map_err(io::Error::other)
}

/// Sends one UDP datagram carrying `payload` from `src` on the client to `dst:port`, as the
/// `knock` client sends an SPA packet.
pub fn send_datagram(lab: &Lab, src: &str, dst: &str, port: u16, payload: &[u8]) {
    let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let origin = Origin { source: Some(src), interface: None };
    lab.client.run(|| client::send_datagram(dst, port, payload, &origin)).unwrap();
}

/// `port` at the address `addr`.
pub fn at(addr: &str, port: u16) -> SocketAddr {
    SocketAddr::new(addr.parse().unwrap(), port)
}

/// The SSH port at `addr`: what most doors open.
pub fn ssh(addr: &str) -> SocketAddr {
    at(addr, 22)
}

/// The server's SSH port over IPv4.
pub fn ssh_v4() -> SocketAddr {
    ssh(SERVER_V4)
}

/// The server's SSH port over IPv6.
pub fn ssh_v6() -> SocketAddr {
    ssh(SERVER_V6)
}

/// Whether a new connection from `src` on the client to `dst` works at once (refused,
/// rejected, and dropped within [`DROP_WAIT`] all count as no).
pub fn gets_in(lab: &Lab, src: &str, dst: SocketAddr) -> bool {
    connect(&lab.client, src, dst, DROP_WAIT).is_ok()
}

/// Bounded wait for a condition, checked every 20 ms; whether it held in time.
pub fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) until the file at `path` contains `needle`.
pub fn file_contains(path: &Path, needle: &str, within: Duration) -> bool {
    eventually(within, || std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle)))
}
