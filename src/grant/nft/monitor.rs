//! Watches nftables for changes to the daemon's own table, as `nft monitor` does: netlink's
//! `NFNLGRP_NFTABLES` events. A change to the table, its chain, its rules or its sets (not its
//! elements: those are grants coming and going) means the guard may be down; the daemon then
//! reads its chain back and repairs it at once, instead of polling.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, recv};

use super::netlink::NlSocket;
use super::nlmsg;
use crate::config::TableFamily;
use crate::grant::FirewallError;

/// `NFT_MSG_NEWSETELEM`, `NFT_MSG_DELSETELEM`, `NFT_MSG_NEWGEN`: events that change no rule.
const ELEMENT_OR_GENERATION: [u16; 3] = [12, 14, 15];
/// The table name: the first attribute of every table, chain, rule and set message.
const TABLE_ATTR: u16 = 1;

/// A subscription to nftables change events.
pub struct Monitor {
    socket: NlSocket,
    table: String,
    buf: Vec<u8>,
}

impl Monitor {
    /// Subscribes to nftables events; `table` is the daemon's `inet` table.
    pub fn open(table: &str) -> Result<Self, FirewallError> {
        let group = 1u32 << (libc::NFNLGRP_NFTABLES - 1);
        let socket = NlSocket::open(group).map_err(FirewallError::Socket)?;
        Ok(Monitor { socket, table: table.to_owned(), buf: vec![0u8; 1 << 16] })
    }

    /// Follows a reload that renamed the table.
    pub fn set_table(&mut self, table: &str) {
        table.clone_into(&mut self.table);
    }

    /// Reads every event waiting, without blocking. Returns whether any changed the daemon's
    /// table from outside its grants, or events were lost (then nobody knows: check).
    pub fn changed(&mut self) -> bool {
        let mut changed = false;
        loop {
            match recv(self.socket.as_fd().as_raw_fd(), &mut self.buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) | Err(Errno::EAGAIN) => return changed,
                Ok(n) => changed |= self.concerns_us(n),
                Err(Errno::EINTR) => {}
                // ENOBUFS: the kernel dropped events for want of room.
                Err(_) => changed = true,
            }
        }
    }

    fn concerns_us(&self, n: usize) -> bool {
        nlmsg::messages(&self.buf[..n]).any(|message| {
            let Ok(m) = message else { return true };
            let Some(kind) = m.nft_type() else { return false };
            m.family() == Some(TableFamily::Inet.nfproto())
                && !ELEMENT_OR_GENERATION.contains(&kind)
                && m.attrs().get(TABLE_ATTR).is_some_and(|t| t.str() == self.table.as_bytes())
        })
    }
}

impl AsFd for Monitor {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}
