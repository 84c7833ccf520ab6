//! The nftables backend: libnftnl batches over a netfilter netlink socket (nftnl + mnl).
//!
//! Every operation is one batch, so the kernel applies all of it or none of it. nftnl's safe
//! API has no per-element timeout, so set elements are built here through nftnl-sys.

use std::ffi::{CString, c_void};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::os::raw::c_char;
use std::ptr::NonNull;
use std::time::Duration;

use nftnl::expr::ct::States;
use nftnl::nftnl_sys::{self as sys, libc};
use nftnl::set::Set;
use nftnl::{
    Batch, Chain, ChainType, FinalizedBatch, Hook, MsgType, NlMsg, Policy, ProtoFamily, Rule, Table, nft_expr,
};

use super::ruleset::{CHAIN, Family, Match, PRIORITY, Ruleset, Verdict};
use crate::config::TableFamily;
use crate::firewall::{Element, Firewall, FirewallError, SetInfo};

/// How long to wait for the kernel's answer before calling the socket broken.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Elements per netlink message; keeps each message far below the netlink size limit.
const ELEMENTS_PER_MESSAGE: usize = 256;
/// `ARPHRD_LOOPBACK`, the value of `meta iiftype` on `lo`.
const ARPHRD_LOOPBACK: u16 = 772;

/// Programs nftables through netlink.
pub struct NetlinkFirewall {
    /// Reopened after any failure, so stale replies of a failed batch cannot be misread.
    socket: Option<mnl::Socket>,
    buffer: Vec<u8>,
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

    fn commit(&mut self, batch: Batch, operation: impl FnOnce() -> String) -> Result<(), FirewallError> {
        let batch = batch.finalize();
        self.socket()?;
        let socket = self.socket.as_ref().expect("opened above");
        let result = exchange(socket, &batch, &mut self.buffer)
            .map_err(|source| FirewallError::Netlink { operation: operation(), source });
        if result.is_err() {
            self.socket = None;
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
    fn set_info(&mut self, family: TableFamily, table: &str, set: &str) -> Result<Option<SetInfo>, FirewallError> {
        NetlinkFirewall::set_info(self, family, table, set)
    }

    fn chain_exists(&mut self, family: TableFamily, table: &str, chain: &str) -> Result<bool, FirewallError> {
        NetlinkFirewall::chain_exists(self, family, table, chain)
    }

    fn install(&mut self, ruleset: &Ruleset) -> Result<(), FirewallError> {
        let table_name = cstring(&ruleset.table);
        let table = Table::new(&table_name, ProtoFamily::Inet);
        let mut batch = Batch::new();
        batch.add(&table, MsgType::Add);

        // Set ids only need to be unique within the batch.
        let mut v4_sets = Vec::new();
        let mut v6_sets = Vec::new();
        for (id, spec) in ruleset.sets.iter().enumerate() {
            let name = cstring(&spec.name);
            match spec.family {
                Family::V4 => v4_sets.push(timeout_set::<Ipv4Addr>(&name, id as u32, &table)),
                Family::V6 => v6_sets.push(timeout_set::<Ipv6Addr>(&name, id as u32, &table)),
            }
        }
        v4_sets.iter().for_each(|s| batch.add(s, MsgType::Add));
        v6_sets.iter().for_each(|s| batch.add(s, MsgType::Add));

        let mut chain = Chain::new(cstring(CHAIN), &table);
        chain.set_hook(Hook::In, PRIORITY);
        chain.set_type(ChainType::Filter);
        chain.set_policy(Policy::Accept);
        batch.add(&chain, MsgType::Add);
        // A rule without a handle, deleted, flushes the chain: the new rules replace the old
        // ones in the same transaction, and the sets (with their grants) stay.
        batch.add(&Rule::new(&chain), MsgType::Del);

        for spec in &ruleset.rules {
            let mut rule = Rule::new(&chain);
            for m in &spec.matches {
                match m {
                    Match::Established => {
                        rule.add_expr(&nft_expr!(ct state));
                        let states = (States::ESTABLISHED | States::RELATED).bits();
                        rule.add_expr(&nft_expr!(bitwise mask states, xor 0u32));
                        rule.add_expr(&nft_expr!(cmp != 0u32));
                    }
                    Match::Loopback => {
                        rule.add_expr(&nft_expr!(meta iiftype));
                        rule.add_expr(&nft_expr!(cmp == ARPHRD_LOOPBACK));
                    }
                    Match::Dport(port) => {
                        rule.add_expr(&nft_expr!(meta l4proto));
                        rule.add_expr(&nft_expr!(cmp == port.proto.number()));
                        match port.proto {
                            crate::config::Proto::Tcp => rule.add_expr(&nft_expr!(payload tcp dport)),
                            crate::config::Proto::Udp => rule.add_expr(&nft_expr!(payload udp dport)),
                        }
                        rule.add_expr(&nft_expr!(cmp == port.port.to_be()));
                    }
                    Match::SaddrIn { family, set } => {
                        rule.add_expr(&nft_expr!(meta nfproto));
                        match family {
                            Family::V4 => {
                                rule.add_expr(&nft_expr!(cmp == libc::NFPROTO_IPV4 as u8));
                                rule.add_expr(&nft_expr!(payload ipv4 saddr));
                                let set = find(&v4_sets, set);
                                rule.add_expr(&nft_expr!(lookup set));
                            }
                            Family::V6 => {
                                rule.add_expr(&nft_expr!(cmp == libc::NFPROTO_IPV6 as u8));
                                rule.add_expr(&nft_expr!(payload ipv6 saddr));
                                let set = find(&v6_sets, set);
                                rule.add_expr(&nft_expr!(lookup set));
                            }
                        }
                    }
                }
            }
            match spec.verdict {
                Verdict::Accept => rule.add_expr(&nft_expr!(verdict accept)),
                Verdict::Drop => rule.add_expr(&nft_expr!(verdict drop)),
            }
            batch.add(&rule, MsgType::Add);
        }
        self.commit(batch, || format!("install table inet {}", ruleset.table))
    }

    fn add_elements(&mut self, elements: &[Element]) -> Result<(), FirewallError> {
        if elements.is_empty() {
            return Ok(());
        }
        // Per set, in one transaction: add (no-op if present), delete, add again. That creates
        // the element or restarts its timeout, without a lookup first and on every kernel.
        let mut messages = Vec::new();
        let mut sorted: Vec<&Element> = elements.iter().collect();
        sorted.sort_by(|a, b| (a.family.nfproto(), &a.table, &a.set).cmp(&(b.family.nfproto(), &b.table, &b.set)));
        for group in sorted.chunk_by(|a, b| a.family == b.family && a.table == b.table && a.set == b.set) {
            for chunk in group.chunks(ELEMENTS_PER_MESSAGE) {
                let mut with_timeout = ElementsMsg::new(chunk[0].family, &chunk[0].table, &chunk[0].set);
                let mut keys_only = ElementsMsg::new(chunk[0].family, &chunk[0].table, &chunk[0].set);
                for e in chunk {
                    with_timeout.push(&e.addr, Some(e.timeout));
                    keys_only.push(&e.addr, None);
                }
                messages.push((with_timeout, keys_only));
            }
        }
        let mut batch = Batch::new();
        for (with_timeout, keys_only) in &messages {
            batch.add(with_timeout, MsgType::Add);
            batch.add(keys_only, MsgType::Del);
            batch.add(with_timeout, MsgType::Add);
        }
        let what = || {
            let first = &elements[0];
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
}

fn cstring(name: &str) -> CString {
    // Names are validated identifiers (config::check_identifier): they never contain NUL.
    CString::new(name).expect("nftables object names never contain NUL")
}

fn timeout_set<'a, K: nftnl::set::SetKey>(name: &CString, id: u32, table: &'a Table) -> Set<'a, K> {
    let set = Set::<K>::new_named(name, id, table, ProtoFamily::Inet);
    // SAFETY: the pointer is the live nftnl_set owned by `set`.
    unsafe { sys::nftnl_set_set_u32(set.as_ptr().as_ptr(), sys::NFTNL_SET_FLAGS as u16, libc::NFT_SET_TIMEOUT as u32) };
    set
}

fn find<'s, 'a, K>(sets: &'s [Set<'a, K>], name: &str) -> &'s Set<'a, K> {
    sets.iter()
        .find(|s| s.get_name().to_bytes() == name.as_bytes())
        .expect("Ruleset::for_config declares every set a rule looks up")
}

/// A NEWSETELEM/DELSETELEM message for one set, with optional per-element timeouts.
struct ElementsMsg {
    set: NonNull<sys::nftnl_set>,
    family: u16,
}

impl ElementsMsg {
    fn new(family: TableFamily, table: &str, set_name: &str) -> Self {
        // SAFETY: plain libnftnl allocation; strings are copied by libnftnl.
        unsafe {
            let set = NonNull::new(sys::nftnl_set_alloc()).unwrap_or_else(|| std::process::abort());
            sys::nftnl_set_set_str(set.as_ptr(), sys::NFTNL_SET_TABLE as u16, cstring(table).as_ptr());
            sys::nftnl_set_set_str(set.as_ptr(), sys::NFTNL_SET_NAME as u16, cstring(set_name).as_ptr());
            sys::nftnl_set_set_u32(set.as_ptr(), sys::NFTNL_SET_FAMILY as u16, u32::from(family.nfproto()));
            ElementsMsg { set, family: u16::from(family.nfproto()) }
        }
    }

    fn push(&mut self, addr: &IpAddr, timeout: Option<Duration>) {
        let key: Vec<u8> = match addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        // SAFETY: the element is handed to the set, which owns and frees it.
        unsafe {
            let elem = sys::nftnl_set_elem_alloc();
            if elem.is_null() {
                std::process::abort();
            }
            sys::nftnl_set_elem_set(
                elem,
                sys::NFTNL_SET_ELEM_KEY as u16,
                key.as_ptr().cast::<c_void>(),
                key.len() as u32,
            );
            if let Some(t) = timeout {
                let ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX);
                sys::nftnl_set_elem_set_u64(elem, sys::NFTNL_SET_ELEM_TIMEOUT as u16, ms);
            }
            sys::nftnl_set_elem_add(self.set.as_ptr(), elem);
        }
    }
}

// SAFETY: `write` only writes one message into the buffer the batch hands it.
unsafe impl NlMsg for ElementsMsg {
    unsafe fn write(&self, buf: *mut c_void, seq: u32, msg_type: MsgType) {
        let (kind, flags) = match msg_type {
            MsgType::Add => (libc::NFT_MSG_NEWSETELEM, libc::NLM_F_CREATE | libc::NLM_F_ACK),
            MsgType::Del => (libc::NFT_MSG_DELSETELEM, libc::NLM_F_ACK),
        };
        unsafe {
            let header = sys::nftnl_nlmsg_build_hdr(buf.cast::<c_char>(), kind as u16, self.family, flags as u16, seq);
            sys::nftnl_set_elems_nlmsg_build_payload(header, self.set.as_ptr());
        }
    }
}

impl Drop for ElementsMsg {
    fn drop(&mut self) {
        // SAFETY: allocated in `new`; frees the elements too.
        unsafe { sys::nftnl_set_free(self.set.as_ptr()) };
    }
}
