//! The daemon's ruleset as one netlink batch: table, sets, chain and rules.
#![allow(unsafe_code)]

use std::ffi::{CString, c_void};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nftnl::expr::InterfaceName;
use nftnl::expr::ct::{ConntrackStatus, States};
use nftnl::nftnl_sys::{self as sys, libc};
use nftnl::set::Set;
use nftnl::{Batch, Chain, ChainType, Hook, MsgType, NlMsg, Policy, ProtoFamily, Rule, Table, nft_expr};

use super::concat::{self, V4Port, V6Port};
use super::ruleset::{DSTNAT_PRIORITY, Family, Hookpoint, MARK, Match, PRIORITY, RuleSpec, Ruleset, Verdict};
use crate::config::Proto;

/// `ARPHRD_LOOPBACK`, the value of `meta iiftype` on `lo`.
const ARPHRD_LOOPBACK: u16 = 772;

/// An object name as libnftnl wants it.
pub(super) fn cstring(name: &str) -> CString {
    // Names are validated identifiers (config::check_identifier): they never contain NUL.
    CString::new(name).expect("nftables object names never contain NUL")
}

/// The daemon's sets, declared in the batch, for rules to look up.
struct Sets<'a> {
    v4: Vec<Set<'a, Ipv4Addr>>,
    v6: Vec<Set<'a, Ipv6Addr>>,
    v4_port: Vec<Set<'a, V4Port>>,
    v6_port: Vec<Set<'a, V6Port>>,
}

impl<'a> Sets<'a> {
    fn declare(table: &'a Table, ruleset: &Ruleset, batch: &mut Batch) -> Self {
        let mut sets = Sets { v4: Vec::new(), v6: Vec::new(), v4_port: Vec::new(), v6_port: Vec::new() };
        // Set ids only need to be unique within the batch.
        for (id, spec) in ruleset.sets.iter().enumerate() {
            let (name, id) = (cstring(&spec.name), id as u32);
            let size = spec.size;
            match (spec.family, spec.per_port) {
                (Family::V4, false) => sets.v4.push(timeout_set(&name, id, size, table)),
                (Family::V6, false) => sets.v6.push(timeout_set(&name, id, size, table)),
                (Family::V4, true) => sets.v4_port.push(timeout_set(&name, id, size, table)),
                (Family::V6, true) => sets.v6_port.push(timeout_set(&name, id, size, table)),
            }
        }
        sets.v4.iter().for_each(|s| batch.add(s, MsgType::Add));
        sets.v6.iter().for_each(|s| batch.add(s, MsgType::Add));
        sets.v4_port.iter().for_each(|s| batch.add(s, MsgType::Add));
        sets.v6_port.iter().for_each(|s| batch.add(s, MsgType::Add));
        sets
    }
}

fn timeout_set<'a, K: nftnl::set::SetKey>(name: &CString, id: u32, size: u32, table: &'a Table) -> Set<'a, K> {
    let set = Set::<K>::new_named(name, id, table, ProtoFamily::Inet);
    let ptr = set.as_ptr().as_ptr();
    // SAFETY: the pointer is the live nftnl_set owned by `set`.
    unsafe {
        sys::nftnl_set_set_u32(ptr, sys::NFTNL_SET_FLAGS as u16, libc::NFT_SET_TIMEOUT as u32);
        sys::nftnl_set_set_u32(ptr, sys::NFTNL_SET_DESC_SIZE as u16, size);
    }
    set
}

fn find<'s, 'a, K>(sets: &'s [Set<'a, K>], name: &str) -> &'s Set<'a, K> {
    sets.iter()
        .find(|s| s.get_name().to_bytes() == name.as_bytes())
        .expect("Ruleset::for_config declares every set a rule looks up")
}

/// What an install changes besides declaring the ruleset: objects of knockd's that the
/// kernel holds and the ruleset no longer declares, and an earlier placement's.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Sets of knockd's in the ruleset's table that it no longer declares.
    pub stale_sets: Vec<String>,
    /// Chains of knockd's in that table that it no longer declares.
    pub stale_chains: Vec<String>,
    /// knockd's jump rules in fw4's chains, as (chain, handle): replaced by this install.
    pub jumps: Vec<(String, u64)>,
    /// A table of knockd's own to delete (it was renamed, or the objects moved into fw4).
    pub old_table: Option<String>,
    /// knockd's objects in fw4 to delete (they moved out): chains, sets.
    pub old_fw4: Option<(Vec<String>, Vec<String>)>,
}

/// The whole ruleset as one batch. Existing set elements (live grants) are kept: the table and
/// sets are added (a no-op when they exist), and each chain is flushed and refilled. In the
/// same transaction, what `plan` names is removed: stale sets and chains, an old table, old
/// objects in fw4; and inside fw4 the jumps into knockd's chains are put first in fw4's chains.
pub(super) fn batch(ruleset: &Ruleset, plan: &Plan) -> Batch {
    let mut batch = Batch::new();
    let fw4_name = cstring("fw4");
    let fw4 = Table::new(&fw4_name, ProtoFamily::Inet);
    for (chain, handle) in &plan.jumps {
        let chain = Chain::new(cstring(chain), &fw4);
        let mut rule = Rule::new(&chain);
        rule.set_handle(*handle);
        batch.add(&rule, MsgType::Del);
    }
    if let Some((chains, sets)) = &plan.old_fw4 {
        delete_chains(&mut batch, &fw4, chains);
        delete_sets(&mut batch, &fw4, sets, 1 << 20);
    }
    if let Some(old) = &plan.old_table {
        let old_name = cstring(old);
        batch.add(&Table::new(&old_name, ProtoFamily::Inet), MsgType::Del);
    }
    let table_name = cstring(&ruleset.table);
    let table = Table::new(&table_name, ProtoFamily::Inet);
    if ruleset.owns_table() {
        batch.add(&table, MsgType::Add);
    }
    let sets = Sets::declare(&table, ruleset, &mut batch);
    let chains: Vec<(Hookpoint, Chain)> =
        ruleset.chains().map(|(hook, _)| (hook, chain(ruleset, hook, &table))).collect();
    for (hook, chain) in &chains {
        batch.add(chain, MsgType::Add);
        // A rule without a handle, deleted, flushes the chain: the new rules replace the old
        // ones in the same transaction, and the sets (with their grants) stay.
        batch.add(&Rule::new(chain), MsgType::Del);
        for spec in ruleset.chain_rules(*hook) {
            batch.add(&rule(chain, spec, &sets), MsgType::Add);
        }
    }
    delete_chains(&mut batch, &table, &plan.stale_chains);
    delete_sets(&mut batch, &table, &plan.stale_sets, ruleset.sets.len());
    for (hook, chain) in &chains {
        if let Some(entry) = ruleset.entry(*hook) {
            let from = Chain::new(cstring(&entry), &table);
            batch.add(&First(jump(&from, chain)), MsgType::Add);
        }
    }
    batch
}

fn delete_chains(batch: &mut Batch, table: &Table, names: &[String]) {
    for name in names {
        batch.add(&Chain::new(cstring(name), table), MsgType::Del);
    }
}

fn delete_sets(batch: &mut Batch, table: &Table, names: &[String], first_id: usize) {
    for (id, name) in names.iter().enumerate() {
        let name = cstring(name);
        batch.add(&Set::<Ipv4Addr>::new(&name, (first_id + id) as u32, table, ProtoFamily::Inet), MsgType::Del);
    }
}

/// One of knockd's chains: a base chain in its own table, a regular one inside fw4.
fn chain<'a>(ruleset: &Ruleset, hook: Hookpoint, table: &'a Table) -> Chain<'a> {
    let mut chain = Chain::new(cstring(&ruleset.chain_name(hook)), table);
    if ruleset.owns_table() {
        let (nf_hook, priority, kind) = match hook {
            Hookpoint::Input => (Hook::In, PRIORITY, ChainType::Filter),
            Hookpoint::Forward => (Hook::Forward, PRIORITY, ChainType::Filter),
            Hookpoint::Dstnat => (Hook::PreRouting, DSTNAT_PRIORITY, ChainType::Nat),
        };
        chain.set_hook(nf_hook, priority);
        chain.set_type(kind);
        chain.set_policy(Policy::Accept);
    }
    chain
}

/// `jump <chain>`, with knockd's mark as its comment, in `from`.
fn jump<'a>(from: &'a Chain, to: &Chain) -> Rule<'a> {
    let mut rule = Rule::new(from);
    rule.add_expr(&nft_expr!(verdict jump to.get_name().to_owned()));
    // MARK holds no NUL.
    let _ = rule.set_comment(cstring(MARK));
    rule
}

/// A rule added first in its chain rather than last: nftnl always asks to append.
struct First<'a>(Rule<'a>);

// SAFETY: writes the rule's message as nftnl does, then only clears a flag in the header
// nftnl just wrote at the start of `buf`.
unsafe impl NlMsg for First<'_> {
    unsafe fn write(&self, buf: *mut c_void, seq: u32, msg_type: MsgType) {
        // SAFETY: the batch hands a buffer large enough for one message; the netlink header
        // (length u32, type u16, flags u16, ...) starts at its first byte.
        unsafe {
            self.0.write(buf, seq, msg_type);
            let flags = buf.cast::<u8>().add(6).cast::<u16>();
            flags.write_unaligned(flags.read_unaligned() & !(libc::NLM_F_APPEND as u16));
        }
    }
}

fn rule<'a>(chain: &'a Chain, spec: &RuleSpec, sets: &Sets) -> Rule<'a> {
    let mut rule = Rule::new(chain);
    for m in &spec.matches {
        add_match(&mut rule, m, sets);
    }
    match spec.verdict {
        Verdict::Accept => rule.add_expr(&nft_expr!(verdict accept)),
        Verdict::Drop => rule.add_expr(&nft_expr!(verdict drop)),
        Verdict::Dnat(to) => add_dnat(&mut rule, to),
    }
    rule
}

/// `dnat to ADDR:PORT`: the address into register 1, the port into register 2.
fn add_dnat(rule: &mut Rule, to: std::net::SocketAddr) {
    let family = match to {
        std::net::SocketAddr::V4(a) => {
            rule.add_expr(&nftnl::expr::Immediate::new(a.ip().octets(), nftnl::expr::Register::Reg1));
            ProtoFamily::Ipv4
        }
        std::net::SocketAddr::V6(a) => {
            rule.add_expr(&nftnl::expr::Immediate::new(a.ip().octets(), nftnl::expr::Register::Reg1));
            ProtoFamily::Ipv6
        }
    };
    rule.add_expr(&nftnl::expr::Immediate::new(to.port().to_be(), nftnl::expr::Register::Reg2));
    rule.add_expr(&nftnl::expr::Nat {
        nat_type: nftnl::expr::NatType::DNat,
        family,
        ip_register: nftnl::expr::Register::Reg1,
        port_register: Some(nftnl::expr::Register::Reg2),
    });
}

fn add_match(rule: &mut Rule, m: &Match, sets: &Sets) {
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
                Proto::Tcp => rule.add_expr(&nft_expr!(payload tcp dport)),
                Proto::Udp => rule.add_expr(&nft_expr!(payload udp dport)),
            }
            rule.add_expr(&nft_expr!(cmp == port.port.to_be()));
        }
        Match::SaddrIn { family: Family::V4, set } => {
            rule.add_expr(&nft_expr!(meta nfproto));
            rule.add_expr(&nft_expr!(cmp == libc::NFPROTO_IPV4 as u8));
            rule.add_expr(&nft_expr!(payload ipv4 saddr));
            rule.add_expr(&nft_expr!(lookup find(&sets.v4, set)));
        }
        Match::SaddrIn { family: Family::V6, set } => {
            rule.add_expr(&nft_expr!(meta nfproto));
            rule.add_expr(&nft_expr!(cmp == libc::NFPROTO_IPV6 as u8));
            rule.add_expr(&nft_expr!(payload ipv6 saddr));
            rule.add_expr(&nft_expr!(lookup find(&sets.v6, set)));
        }
        Match::SaddrPortIn { family: Family::V4, set } => {
            rule.add_expr(&nft_expr!(meta nfproto));
            rule.add_expr(&nft_expr!(cmp == libc::NFPROTO_IPV4 as u8));
            concat::add_lookup(rule, Family::V4, find(&sets.v4_port, set));
        }
        Match::SaddrPortIn { family: Family::V6, set } => {
            rule.add_expr(&nft_expr!(meta nfproto));
            rule.add_expr(&nft_expr!(cmp == libc::NFPROTO_IPV6 as u8));
            concat::add_lookup(rule, Family::V6, find(&sets.v6_port, set));
        }
        Match::Daddr(IpAddr::V4(a)) => {
            rule.add_expr(&nft_expr!(meta nfproto));
            rule.add_expr(&nft_expr!(cmp == libc::NFPROTO_IPV4 as u8));
            rule.add_expr(&nft_expr!(payload ipv4 daddr));
            rule.add_expr(&nft_expr!(cmp == *a));
        }
        Match::Daddr(IpAddr::V6(a)) => {
            rule.add_expr(&nft_expr!(meta nfproto));
            rule.add_expr(&nft_expr!(cmp == libc::NFPROTO_IPV6 as u8));
            rule.add_expr(&nft_expr!(payload ipv6 daddr));
            rule.add_expr(&nft_expr!(cmp == *a));
        }
        Match::CtDnat => {
            rule.add_expr(&nft_expr!(ct status));
            let dnat = ConntrackStatus::DST_NAT.bits();
            rule.add_expr(&nft_expr!(bitwise mask dnat, xor 0u32));
            rule.add_expr(&nft_expr!(cmp != 0u32));
        }
        Match::Iifname(name) => {
            rule.add_expr(&nft_expr!(meta iifname));
            rule.add_expr(&nft_expr!(cmp == InterfaceName::Exact(cstring(name))));
        }
    }
}
