//! Watches nftables for changes, as `nft monitor` does: netlink's `NFNLGRP_NFTABLES` events.
//! A change to the daemon's own table, its chain, its rules or its sets (not its elements:
//! those are grants coming and going) means the guard may be down; the daemon then reads its
//! chain back and repairs it at once, instead of polling. A change anywhere else (a firewall
//! started or reloaded, an attached set emptied by someone else) means the host's answer for
//! the doors' ports may have changed, and grants may need putting back.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, recv};

use super::netlink::NlSocket;
use super::nlmsg;
use crate::config::TableFamily;
use crate::grant::FirewallError;

/// `NFT_MSG_NEWSETELEM`, `NFT_MSG_DELSETELEM`, `NFT_MSG_NEWGEN`: events that change no rule.
const ELEMENT_OR_GENERATION: [u16; 3] = [12, 14, 15];
/// `NFT_MSG_NEWGEN`: the end of a transaction.
const GENERATION: u16 = 15;
/// The table name: the first attribute of every table, chain, rule and set message.
const TABLE_ATTR: u16 = 1;

/// A subscription to nftables change events.
pub struct Monitor {
    socket: NlSocket,
    table: String,
    /// Tables (family, name) whose set elements matter: those doors attach to.
    watched: Vec<(u8, String)>,
    buf: Vec<u8>,
}

/// What a round of events touched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// The daemon's own table (or events were lost: nobody knows).
    pub ours: bool,
    /// Some other table: a chain, a rule, a set, or the elements of a set in a watched table
    /// that someone else changed.
    pub others: bool,
    /// A watched table's chains, rules or sets changed (its owner reloaded it), not only its
    /// elements: a set emptied then was the reload's doing, not an admin's `nft delete
    /// element` or `nft flush set`, which a refill must not undo.
    pub reloaded: bool,
}

impl Monitor {
    /// Subscribes to nftables events; `table` is the daemon's `inet` table.
    pub fn open(table: &str) -> Result<Self, FirewallError> {
        let group = 1u32 << (libc::NFNLGRP_NFTABLES - 1);
        let socket = NlSocket::open(group).map_err(FirewallError::Socket)?;
        Ok(Monitor { socket, table: table.to_owned(), watched: Vec::new(), buf: vec![0u8; 1 << 16] })
    }

    /// Follows a reload that renamed the table.
    pub fn set_table(&mut self, table: &str) {
        table.clone_into(&mut self.table);
    }

    /// Watches the set elements of these tables (family, name): the ones doors attach to.
    pub fn watch(&mut self, tables: Vec<(u8, String)>) {
        self.watched = tables;
    }

    /// Reads every event waiting, without blocking, and says what they touched. Element
    /// events that `own_port` (the daemon's own netlink socket) caused are its grants.
    pub fn changed(&mut self, own_port: Option<u32>) -> Changes {
        let mut changes = Changes::default();
        loop {
            match recv(self.socket.as_fd().as_raw_fd(), &mut self.buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) | Err(Errno::EAGAIN) => return changes,
                Ok(n) => self.classify(n, own_port, &mut changes),
                Err(Errno::EINTR) => {}
                // ENOBUFS: the kernel dropped events for want of room.
                Err(_) => changes = Changes { ours: true, others: true, reloaded: true },
            }
        }
    }

    fn classify(&self, n: usize, own_port: Option<u32>, changes: &mut Changes) {
        for message in nlmsg::messages(&self.buf[..n]) {
            let Ok(m) = message else {
                *changes = Changes { ours: true, others: true, reloaded: true };
                return;
            };
            let Some(kind) = m.nft_type() else { continue };
            if kind == GENERATION {
                continue;
            }
            let table = m.attrs().get(TABLE_ATTR).map(|t| t.str()).unwrap_or_default();
            let family = m.family().unwrap_or(0);
            let ours = family == TableFamily::Inet.nfproto() && table == self.table.as_bytes();
            let element = ELEMENT_OR_GENERATION.contains(&kind);
            let watched = self.watched.iter().any(|(f, t)| *f == family && t.as_bytes() == table);
            if ours && !element {
                changes.ours = true;
            } else if !ours && !element {
                changes.others = true;
                changes.reloaded |= watched;
            } else if element && Some(m.portid) != own_port {
                changes.others |= watched;
            }
        }
    }
}

impl AsFd for Monitor {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}
