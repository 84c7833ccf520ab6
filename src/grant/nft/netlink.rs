//! The nftables backend: libnftnl batches over a netfilter netlink socket.
//!
//! Every change is one batch, sent with one `sendmsg` however large it is, so the kernel applies
//! all of it or none of it; every acknowledgement is read before the next request. All netlink
//! code lives under this module; raw errno values are turned into [`FirewallError`] variants here
//! and nowhere else.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use nftnl::{Batch, FinalizedBatch};
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, sendmsg, setsockopt, socket,
    sockopt,
};
use nix::sys::time::TimeVal;

use super::elements::Layout;
use super::nlmsg;
use super::ruleset::Ruleset;
use crate::config::TableFamily;
use crate::grant::{Element, ElementInfo, Firewall, FirewallError, SetInfo};

/// How long to wait for the kernel's answer before calling the socket broken.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Receive buffer room per acknowledgement: each is queued as its own small socket buffer,
/// which costs the receive budget well over its size.
const ACK_TRUESIZE: usize = 1024;
/// Room for the answers of small requests, and the least either buffer is given.
const BASE_BUFFER: usize = 1 << 20;

/// A netfilter netlink socket, close-on-exec, bound to a port of its own.
pub(super) struct NlSocket {
    fd: OwnedFd,
    /// Buffer sizes set so far; they only ever grow.
    sized: (usize, usize),
}

impl NlSocket {
    /// Opens a socket that also receives the multicast `groups` (a bit mask).
    pub fn open(groups: u32) -> std::io::Result<Self> {
        let fd = socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkNetFilter)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))?;
        setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(REPLY_TIMEOUT.as_secs() as i64, 0))?;
        let mut socket = NlSocket { fd, sized: (0, 0) };
        // Events of a large install arrive all at once: room for them on a monitor socket.
        let room = if groups == 0 { BASE_BUFFER } else { 16 * BASE_BUFFER };
        socket.reserve(BASE_BUFFER, room)?;
        Ok(socket)
    }

    /// Makes the kernel buffers large enough for a request of `send` bytes and `recv` bytes of
    /// answers. The forced options ignore the system-wide caps (CAP_NET_ADMIN).
    fn reserve(&mut self, send: usize, recv: usize) -> std::io::Result<()> {
        if send > self.sized.0 {
            setsockopt(&self.fd, sockopt::SndBufForce, &send)?;
            self.sized.0 = send;
        }
        if recv > self.sized.1 {
            setsockopt(&self.fd, sockopt::RcvBufForce, &recv)?;
            self.sized.1 = recv;
        }
        Ok(())
    }

    /// Sends one request (or a whole batch, its pages as one message vector).
    pub fn send(&self, pages: &[&[u8]]) -> std::io::Result<()> {
        let iov: Vec<IoSlice> = pages.iter().map(|p| IoSlice::new(p)).collect();
        let total: usize = pages.iter().map(|p| p.len()).sum();
        let sent = sendmsg::<NetlinkAddr>(self.fd.as_raw_fd(), &iov, &[], MsgFlags::empty(), None)?;
        if sent != total {
            return Err(std::io::Error::other(format!("netlink sent {sent} of {total} bytes")));
        }
        Ok(())
    }

    /// Receives what the kernel queued, blocking up to the reply timeout.
    pub fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match recv(self.fd.as_raw_fd(), buf, MsgFlags::empty()) {
                Err(Errno::EINTR) => continue,
                other => return Ok(other?),
            }
        }
    }

    /// Sends a finalized batch whole and reads an acknowledgement for every message that
    /// asked for one; the first error wins.
    pub fn exchange(&mut self, batch: &FinalizedBatch) -> std::io::Result<()> {
        let pages: Vec<&[u8]> = batch.iter().collect();
        let total: usize = pages.iter().map(|p| p.len()).sum();
        let expected = batch.sequence_numbers();
        let acks = expected.len();
        self.reserve(total + BASE_BUFFER, acks * ACK_TRUESIZE + BASE_BUFFER)?;
        self.send(&pages)?;
        let mut buf = vec![0u8; 1 << 17];
        let mut acked = 0;
        while acked < acks {
            let n = self.recv(&mut buf)?;
            for message in nlmsg::messages(&buf[..n]) {
                let message = message.map_err(std::io::Error::other)?;
                match message.errno() {
                    Some(0) if expected.contains(&message.seq) => acked += 1,
                    Some(0) => {}
                    Some(errno) => return Err(std::io::Error::from_raw_os_error(errno)),
                    None => {}
                }
            }
        }
        Ok(())
    }
}

impl AsFd for NlSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The typed error for a kernel answer to `operation`.
pub(super) fn error(operation: String, source: std::io::Error) -> FirewallError {
    match source.raw_os_error() {
        Some(libc::ENOENT) => FirewallError::NotFound { operation },
        Some(libc::ENOBUFS | libc::ENOMEM) => FirewallError::NoBuffer { operation },
        // A set at its `size` answers ENFILE.
        Some(libc::ENFILE) => FirewallError::Full { operation },
        _ => FirewallError::Refused { operation, source },
    }
}

/// A set, as (family, table, name), with how it holds an address.
type SetLayout = (TableFamily, String, String, Layout);

fn layout_in(layouts: &[SetLayout], e: &Element) -> Layout {
    let found = layouts.iter().find(|(f, t, s, _)| (*f, t, s) == (e.family, &e.table, &e.set));
    found.map_or(Layout::Plain, |l| l.3)
}

/// Programs nftables through netlink.
pub struct NetlinkFirewall {
    /// Reopened after any failure, so stale replies of a failed batch cannot be misread.
    socket: Option<NlSocket>,
    /// What each of the daemon's chains held right after the last install, to tell a change.
    pub(super) installed: Vec<(String, super::placement::ChainState)>,
    /// The sequence number of the last query.
    pub(super) next_seq: u32,
    /// The daemon's own `inet` table, once installed: its sets are plain, never looked up.
    own_table: Option<String>,
}

impl NetlinkFirewall {
    /// Opens the netlink socket now, so a missing capability is reported at start-up.
    pub fn open() -> Result<Self, FirewallError> {
        let mut fw = NetlinkFirewall { socket: None, installed: Vec::new(), next_seq: 0, own_table: None };
        fw.socket()?;
        Ok(fw)
    }

    pub(super) fn socket(&mut self) -> Result<&mut NlSocket, FirewallError> {
        if self.socket.is_none() {
            self.socket = Some(NlSocket::open(0).map_err(FirewallError::Socket)?);
        }
        Ok(self.socket.as_mut().expect("socket was just opened"))
    }

    /// How each set the elements go to holds an address. The daemon's own sets are plain; any
    /// other set is looked up right before every change, because its owner may have made it
    /// again with `flags interval` since (a plain element there would open every address
    /// above it).
    fn layouts(&mut self, elements: &[Element]) -> Result<Vec<SetLayout>, FirewallError> {
        let mut layouts: Vec<SetLayout> = Vec::new();
        for e in elements {
            if layouts.iter().any(|(f, t, s, _)| (*f, t, s) == (e.family, &e.table, &e.set)) {
                continue;
            }
            let own = e.family == TableFamily::Inet && self.own_table.as_deref() == Some(e.table.as_str());
            let layout = if own {
                Layout::Plain
            } else {
                match self.set_info(e.family, &e.table, &e.set)? {
                    Some(info) => Layout::of(info.interval, e.port.is_some()),
                    None => {
                        let operation = format!("add to set {} {} {}", e.family, e.table, e.set);
                        return Err(FirewallError::NotFound { operation });
                    }
                }
            };
            layouts.push((e.family, e.table.clone(), e.set.clone(), layout));
        }
        Ok(layouts)
    }

    /// Drops the socket after a failure, so stale replies cannot be misread; reopened on use.
    pub(super) fn reset(&mut self) {
        self.socket = None;
    }

    /// Sends a batch and checks every acknowledgement; any failure resets the socket.
    pub(super) fn commit(&mut self, batch: Batch, operation: impl FnOnce() -> String) -> Result<(), FirewallError> {
        let batch = batch.finalize();
        let result = self.socket()?.exchange(&batch).map_err(|source| error(operation(), source));
        if result.is_err() {
            self.reset();
        }
        result
    }
}

impl Firewall for NetlinkFirewall {
    fn install(&mut self, ruleset: &Ruleset, previous: Option<&Ruleset>) -> Result<(), FirewallError> {
        let plan = self.plan(ruleset, previous)?;
        let batch = super::install::batch(ruleset, &plan);
        let what = || match ruleset.owns_table() {
            true => format!("install table inet {}", ruleset.table),
            false => format!("install knockd's objects in table inet {}", ruleset.table),
        };
        self.commit(batch, what)?;
        self.own_table = Some(ruleset.table.clone());
        self.installed = self.snapshot(ruleset)?;
        Ok(())
    }

    fn add_elements(&mut self, elements: &[Element]) -> Result<(), FirewallError> {
        let Some(first) = elements.first() else { return Ok(()) };
        let layouts = self.layouts(elements)?;
        let batch = super::elements::batch(elements, |e| layout_in(&layouts, e));
        let what = || {
            format!(
                "add {} element(s) to set {} {} {} (first: {})",
                elements.len(),
                first.family,
                first.table,
                first.set,
                first.addr
            )
        };
        self.commit(batch, what)
    }

    fn set_info(&mut self, family: TableFamily, table: &str, set: &str) -> Result<Option<SetInfo>, FirewallError> {
        NetlinkFirewall::set_info(self, family, table, set)
    }

    fn list_elements(
        &mut self,
        family: TableFamily,
        table: &str,
        set: &str,
    ) -> Result<Vec<ElementInfo>, FirewallError> {
        NetlinkFirewall::list_elements(self, family, table, set)
    }

    fn delete_elements(&mut self, elements: &[Element]) -> Result<(), FirewallError> {
        let Some(first) = elements.first() else { return Ok(()) };
        let layouts = self.layouts(elements)?;
        let batch = super::elements::delete_batch(elements, |e| layout_in(&layouts, e));
        let what =
            || format!("remove {} element(s) from set {} {} {}", elements.len(), first.family, first.table, first.set);
        self.commit(batch, what)
    }

    fn drift(&mut self, ruleset: &Ruleset) -> Result<Option<String>, FirewallError> {
        NetlinkFirewall::drift(self, ruleset)
    }

    fn remove_table(&mut self, table: &str) -> Result<bool, FirewallError> {
        if !self.table_exists(table)? {
            return Ok(false);
        }
        let mut batch = nftnl::Batch::new();
        let name = super::install::cstring(table);
        batch.add(&nftnl::Table::new(&name, nftnl::ProtoFamily::Inet), nftnl::MsgType::Del);
        self.commit(batch, || format!("delete table inet {table}"))?;
        self.own_table = None;
        self.installed.clear();
        Ok(true)
    }

    fn host_ruleset(&mut self) -> Result<crate::grant::host::HostRuleset, FirewallError> {
        NetlinkFirewall::host_ruleset(self)
    }

    fn netlink_port(&self) -> Option<u32> {
        let fd = self.socket.as_ref()?.as_fd().as_raw_fd();
        let addr: NetlinkAddr = nix::sys::socket::getsockname(fd).ok()?;
        Some(addr.pid())
    }
}
