//! The nftables backend: libnftnl batches over a netfilter netlink socket (nftnl + mnl).
//!
//! Every change is one batch, so the kernel applies all of it or none of it. All nftnl/mnl code
//! lives under this module; raw errno values are turned into [`FirewallError`] variants here
//! and nowhere else.
#![allow(unsafe_code)]

use std::os::fd::AsRawFd;
use std::time::Duration;

use nftnl::nftnl_sys::libc;
use nftnl::{Batch, FinalizedBatch};

use super::ruleset::Ruleset;
use crate::config::TableFamily;
use crate::grant::{Element, Firewall, FirewallError, SetInfo};

/// How long to wait for the kernel's answer before calling the socket broken.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Programs nftables through netlink.
pub struct NetlinkFirewall {
    /// Reopened after any failure, so stale replies of a failed batch cannot be misread.
    socket: Option<mnl::Socket>,
    buffer: Vec<u8>,
}

/// The typed error for a kernel answer of `errno` to `operation`.
pub(super) fn error(operation: String, source: std::io::Error) -> FirewallError {
    match source.raw_os_error() {
        Some(libc::ENOENT) => FirewallError::NotFound { operation },
        Some(libc::ENOBUFS | libc::ENOMEM) => FirewallError::NoBuffer { operation },
        _ => FirewallError::Refused { operation, source },
    }
}

impl NetlinkFirewall {
    /// Opens the netlink socket now, so a missing capability is reported at start-up.
    pub fn open() -> Result<Self, FirewallError> {
        let mut fw = NetlinkFirewall { socket: None, buffer: vec![0; nftnl::nft_nlmsg_maxsize() as usize] };
        fw.socket()?;
        Ok(fw)
    }

    pub(super) fn socket(&mut self) -> Result<&mnl::Socket, FirewallError> {
        if self.socket.is_none() {
            let socket = mnl::Socket::new(mnl::Bus::Netfilter).map_err(FirewallError::Socket)?;
            let fd = socket.as_raw_fd();
            // SAFETY: `fd` is the open netlink socket owned by `socket`, which outlives this borrow.
            let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            socket2::SockRef::from(&borrowed).set_read_timeout(Some(REPLY_TIMEOUT)).map_err(FirewallError::Socket)?;
            self.socket = Some(socket);
        }
        Ok(self.socket.as_ref().expect("socket was just opened"))
    }

    /// Drops the socket after a failure, so stale replies cannot be misread; reopened on use.
    pub(super) fn reset(&mut self) {
        self.socket = None;
    }

    /// Sends a batch and checks every acknowledgement; any failure resets the socket.
    pub(super) fn commit(&mut self, batch: Batch, operation: impl FnOnce() -> String) -> Result<(), FirewallError> {
        let batch = batch.finalize();
        self.socket()?;
        let socket = self.socket.as_ref().expect("opened above");
        let result = exchange(socket, &batch, &mut self.buffer).map_err(|source| error(operation(), source));
        if result.is_err() {
            self.reset();
        }
        result
    }
}

/// Sends a batch and reads one acknowledgement per message; the first error wins.
fn exchange(socket: &mnl::Socket, batch: &FinalizedBatch, buffer: &mut [u8]) -> std::io::Result<()> {
    socket.send_all(batch)?;
    let portid = socket.portid();
    let mut expected = batch.sequence_numbers();
    while !expected.is_empty() {
        for message in socket.recv(buffer)? {
            let message = message?;
            let seq = expected.next().ok_or_else(|| std::io::Error::other("unexpected netlink reply"))?;
            mnl::cb_run(message, seq, portid)?;
        }
    }
    Ok(())
}

impl Firewall for NetlinkFirewall {
    fn install(&mut self, ruleset: &Ruleset) -> Result<(), FirewallError> {
        let batch = super::install::batch(ruleset);
        self.commit(batch, || format!("install table inet {}", ruleset.table))
    }

    fn add_elements(&mut self, elements: &[Element]) -> Result<(), FirewallError> {
        let Some(first) = elements.first() else { return Ok(()) };
        let batch = super::elements::batch(elements);
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

    fn chain_exists(&mut self, family: TableFamily, table: &str, chain: &str) -> Result<bool, FirewallError> {
        NetlinkFirewall::chain_exists(self, family, table, chain)
    }
}
