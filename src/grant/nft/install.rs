//! The daemon's ruleset as one netlink batch: table, sets, chain and rules.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::net::{Ipv4Addr, Ipv6Addr};

use nftnl::expr::ct::States;
use nftnl::nftnl_sys::{self as sys, libc};
use nftnl::set::Set;
use nftnl::{Batch, Chain, ChainType, Hook, MsgType, Policy, ProtoFamily, Rule, Table, nft_expr};

use super::concat::{self, V4Port, V6Port};
use super::ruleset::{CHAIN, Family, Match, PRIORITY, RuleSpec, Ruleset, Verdict};
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

/// The whole ruleset as one batch. Existing set elements (live grants) are kept: the table and
/// sets are added (a no-op when they exist), and the chain is flushed and refilled. In the same
/// transaction, `stale` sets (of doors that are gone) are deleted once no rule uses them, and
/// the table `old_table` (the daemon's before a rename) is deleted whole.
pub(super) fn batch(ruleset: &Ruleset, stale: &[String], old_table: Option<&str>) -> Batch {
    let mut batch = Batch::new();
    if let Some(old) = old_table {
        let old_name = cstring(old);
        batch.add(&Table::new(&old_name, ProtoFamily::Inet), MsgType::Del);
    }
    let table_name = cstring(&ruleset.table);
    let table = Table::new(&table_name, ProtoFamily::Inet);
    batch.add(&table, MsgType::Add);
    let sets = Sets::declare(&table, ruleset, &mut batch);
    let mut chain = Chain::new(cstring(CHAIN), &table);
    chain.set_hook(Hook::In, PRIORITY);
    chain.set_type(ChainType::Filter);
    chain.set_policy(Policy::Accept);
    batch.add(&chain, MsgType::Add);
    // A rule without a handle, deleted, flushes the chain: the new rules replace the old
    // ones in the same transaction, and the sets (with their grants) stay.
    batch.add(&Rule::new(&chain), MsgType::Del);
    for (id, name) in stale.iter().enumerate() {
        let name = cstring(name);
        let set = Set::<Ipv4Addr>::new(&name, (ruleset.sets.len() + id) as u32, &table, ProtoFamily::Inet);
        batch.add(&set, MsgType::Del);
    }
    for spec in &ruleset.rules {
        batch.add(&rule(&chain, spec, &sets), MsgType::Add);
    }
    batch
}

fn rule<'a>(chain: &'a Chain, spec: &RuleSpec, sets: &Sets) -> Rule<'a> {
    let mut rule = Rule::new(chain);
    for m in &spec.matches {
        add_match(&mut rule, m, sets);
    }
    match spec.verdict {
        Verdict::Accept => rule.add_expr(&nft_expr!(verdict accept)),
        Verdict::Drop => rule.add_expr(&nft_expr!(verdict drop)),
    }
    rule
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
    }
}
