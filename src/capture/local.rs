//! The host's own addresses, kept current: only packets addressed to this host are knocks. A
//! router sees other hosts' traffic to knock ports go through; none of it may count.
//!
//! The list is read with `getifaddrs` and read again whenever rtnetlink reports an address
//! added or removed, so an address that appears later (`ip addr add`) counts at once.

use std::collections::HashSet;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, socket};

/// `RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR`: address events of both families.
const ADDRESS_GROUPS: u32 = 0x10 | 0x100;

/// The addresses of this host's interfaces, with a subscription that says when they change.
pub struct LocalAddresses {
    events: OwnedFd,
    addresses: HashSet<IpAddr>,
}

impl LocalAddresses {
    /// Subscribes to address events, then reads the addresses (in that order, so no change
    /// falls between the two).
    pub fn open() -> std::io::Result<Self> {
        let events = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkRoute,
        )?;
        bind(events.as_raw_fd(), &NetlinkAddr::new(0, ADDRESS_GROUPS))?;
        let mut local = LocalAddresses { events, addresses: HashSet::new() };
        local.read()?;
        Ok(local)
    }

    fn read(&mut self) -> std::io::Result<()> {
        self.addresses = nix::ifaddrs::getifaddrs()?
            .filter_map(|a| a.address)
            .filter_map(|a| {
                a.as_sockaddr_in()
                    .map(|v4| IpAddr::V4(v4.ip()))
                    .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
            })
            .collect();
        Ok(())
    }

    /// Reads the addresses again if rtnetlink reported a change (or lost reports). Returns
    /// whether it did.
    pub fn refresh(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        let mut changed = false;
        loop {
            match recv(self.events.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) | Err(Errno::EAGAIN) => break,
                Ok(_) | Err(Errno::ENOBUFS) => changed = true,
                Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        if changed {
            if let Err(e) = self.read() {
                log::error!("{}", crate::log_lines::cannot_read_addresses(&e));
            }
        }
        changed
    }

    /// The addresses as of the last read.
    pub fn addresses(&self) -> &HashSet<IpAddr> {
        &self.addresses
    }
}

impl AsFd for LocalAddresses {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.events.as_fd()
    }
}

/// The interfaces knocks are heard on, as the host's firewall rules can name them (name, index,
/// type): the named ones that exist now, or every interface but loopback when none is named.
pub fn interfaces(named: &[String]) -> Vec<crate::grant::host::Interface> {
    use crate::grant::host::Interface;
    let kind = |name: &str| {
        let path = format!("/sys/class/net/{name}/type");
        std::fs::read_to_string(path).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(1)
    };
    let all: Vec<Interface> = match nix::net::if_::if_nameindex() {
        Ok(list) => list
            .iter()
            .map(|i| {
                let name = i.name().to_string_lossy().into_owned();
                Interface { index: i.index(), kind: kind(&name), name }
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    if named.is_empty() {
        all.into_iter().filter(|i| i.kind != crate::grant::host::probe::ARPHRD_LOOPBACK).collect()
    } else {
        all.into_iter().filter(|i| named.contains(&i.name)).collect()
    }
}

/// The networks of this host's interfaces (from their addresses and netmasks).
fn networks(all: &[crate::grant::host::Interface]) -> Vec<(ipnet::IpNet, crate::grant::host::Interface)> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else { return Vec::new() };
    let mut out = Vec::new();
    for a in addrs {
        let Some(iface) = all.iter().find(|i| i.name == a.interface_name) else { continue };
        let (Some(addr), Some(mask)) = (a.address, a.netmask) else { continue };
        let net = match (addr.as_sockaddr_in(), mask.as_sockaddr_in(), addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
            (Some(v4), Some(m), _, _) => ipnet::Ipv4Net::with_netmask(v4.ip(), m.ip()).ok().map(ipnet::IpNet::V4),
            (_, _, Some(v6), Some(m)) => ipnet::Ipv6Net::with_netmask(v6.ip(), m.ip()).ok().map(ipnet::IpNet::V6),
            _ => None,
        };
        out.extend(net.map(|n| (n.trunc(), iface.clone())));
    }
    out
}

/// What the host's firewall answers are asked about: the interfaces knocks are heard on, this
/// host's addresses, and the networks its interfaces are on (where a forward leaves).
pub fn host_view(named: &[String], addresses: Vec<IpAddr>) -> crate::grant::coexist::HostView {
    let every = interfaces(&[]);
    crate::grant::coexist::HostView { interfaces: interfaces(named), addresses, networks: networks(&every) }
}
