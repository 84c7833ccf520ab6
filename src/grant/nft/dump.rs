//! Reads the host's whole ruleset over netlink, as `nft list ruleset` would, into
//! [`HostRuleset`]: every table, chain and rule (its expressions decoded), every set, and the
//! elements of the anonymous sets and maps that rules carry. Named sets' elements are not
//! read: who is in them changes at any time, and the evaluation never assumes it.

use super::netlink::NetlinkFirewall;
use super::nlmsg::{Attr, F_ACK, F_DUMP, Message, Request};
use crate::grant::FirewallError;
use crate::grant::host::model::{
    Base, Chain, CmpOp, Data, Element, Expr, Hook, HostRuleset, PayloadBase, Policy, Rule, Set, Table, Verdict,
    set_flags,
};

// NFT_MSG_GET* and attribute numbers (linux/netfilter/nf_tables.h).
const GETTABLE: u16 = 1;
const GETCHAIN: u16 = 4;
const GETRULE: u16 = 7;
const GETSET: u16 = 10;
const GETSETELEM: u16 = 13;
const NFPROTO_UNSPEC: u8 = 0;
/// `NFT_TABLE_F_DORMANT`, `NFT_TABLE_F_OWNER`.
const TABLE_F_DORMANT: u32 = 1;
const TABLE_F_OWNER: u32 = 2;
/// `NFT_DATA_VERDICT`: a map's data type when it maps to verdicts.
const DATA_VERDICT: u32 = 0xffff_ff00;

fn be32(a: Option<Attr<'_>>) -> Option<u32> {
    Some(u32::from_be_bytes(a?.data.get(..4)?.try_into().ok()?))
}

fn be64(a: Option<Attr<'_>>) -> Option<u64> {
    Some(u64::from_be_bytes(a?.data.get(..8)?.try_into().ok()?))
}

fn text(a: Option<Attr<'_>>) -> Option<String> {
    Some(String::from_utf8_lossy(a?.str()).into_owned())
}

/// `NFTA_DATA_VALUE` inside a data attribute.
fn value(a: Option<Attr<'_>>) -> Vec<u8> {
    a.and_then(|a| a.nested().get(1)).map(|v| v.data.to_vec()).unwrap_or_default()
}

/// `NFTA_DATA_VERDICT` inside a data attribute.
fn verdict(a: Option<Attr<'_>>) -> Option<Verdict> {
    let v = a?.nested().get(2)?;
    let code = be32(v.nested().get(1))? as i32;
    Some(Verdict::from_code(code, text(v.nested().get(2))))
}

impl NetlinkFirewall {
    /// Every table, chain, rule and set of the host (network namespace), read now.
    pub fn host_ruleset(&mut self) -> Result<HostRuleset, FirewallError> {
        let mut ruleset = HostRuleset { tables: self.tables()? };
        let chains = self.dump(GETCHAIN, "list the chains", chain)?;
        let rules = self.dump(GETRULE, "list the rules", rule)?;
        let sets = self.dump(GETSET, "list the sets", set)?;
        let find = |tables: &mut Vec<Table>, (family, name): &(u8, String)| -> Option<usize> {
            tables.iter().position(|t| t.family == *family && t.name == *name)
        };
        for (at, c) in chains {
            if let Some(t) = find(&mut ruleset.tables, &at) {
                ruleset.tables[t].chains.push(c);
            }
        }
        for ((at, chain_name), r) in rules {
            let table = find(&mut ruleset.tables, &at).map(|t| &mut ruleset.tables[t]);
            if let Some(c) = table.and_then(|t| t.chains.iter_mut().find(|c| c.name == chain_name)) {
                c.rules.push(r);
            }
        }
        for (at, mut s) in sets {
            let anonymous = s.flags & set_flags::ANONYMOUS != 0;
            if anonymous || s.verdict_map {
                s.elements = Some(self.elements(at.0, &at.1, &s.name)?);
            }
            if let Some(t) = find(&mut ruleset.tables, &at) {
                ruleset.tables[t].sets.push(s);
            }
        }
        Ok(ruleset)
    }

    fn tables(&mut self) -> Result<Vec<Table>, FirewallError> {
        let request = Request::new(GETTABLE, NFPROTO_UNSPEC, F_DUMP, self.seq());
        let mut tables = Vec::new();
        let each = |m: &Message<'_>| {
            let flags = be32(m.attrs().get(2)).unwrap_or(0);
            tables.push(Table {
                family: m.family().unwrap_or(0),
                name: text(m.attrs().get(1)).unwrap_or_default(),
                dormant: flags & TABLE_F_DORMANT != 0,
                owner: (flags & TABLE_F_OWNER != 0).then(|| be32(m.attrs().get(7)).unwrap_or(0)),
                ..Table::default()
            });
        };
        self.query(request, each, || "list the tables".into())?;
        Ok(tables)
    }

    /// One dump over every family, each message turned into a `T` by `parse`.
    fn dump<T>(
        &mut self,
        kind: u16,
        what: &'static str,
        parse: fn(&Message<'_>) -> Option<T>,
    ) -> Result<Vec<T>, FirewallError> {
        let request = Request::new(kind, NFPROTO_UNSPEC, F_DUMP, self.seq());
        let mut out = Vec::new();
        self.query(request, |m| out.extend(parse(m)), || what.into())?;
        Ok(out)
    }

    fn elements(&mut self, family: u8, table: &str, set: &str) -> Result<Vec<Element>, FirewallError> {
        let request = Request::new(GETSETELEM, family, F_DUMP, self.seq()).str(1, table).str(2, set);
        let mut out = Vec::new();
        let each = |m: &Message<'_>| {
            let Some(list) = m.attrs().get(3) else { return };
            for e in list.nested().filter(|a| a.kind == 1).map(|a| a.nested()) {
                let key = |kind| e.clone().get(kind).and_then(|k| k.nested().get(1)).map(|v| v.data.to_vec());
                out.push(Element {
                    key: key(1).unwrap_or_default(),
                    key_end: key(10),
                    interval_end: be32(e.clone().get(3)).unwrap_or(0) & 1 != 0,
                    verdict: verdict(e.clone().get(2)),
                });
            }
        };
        self.query(request, each, || format!("list set {table} {set}"))?;
        Ok(out)
    }

    /// Whether the table still exists, checked without a dump (for `owner` reports).
    pub fn table_is_there(&mut self, family: u8, name: &str) -> Result<bool, FirewallError> {
        let request = Request::new(GETTABLE, family, F_ACK, self.seq()).str(1, name);
        match self.query(request, |_| {}, || format!("look up table {name}")) {
            Ok(()) => Ok(true),
            Err(FirewallError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

type TableKey = (u8, String);

fn table_key(m: &Message<'_>) -> Option<TableKey> {
    Some((m.family()?, text(m.attrs().get(1))?))
}

fn chain(m: &Message<'_>) -> Option<(TableKey, Chain)> {
    let a = m.attrs();
    let base = a.clone().get(4).map(|hook| {
        let h = hook.nested();
        let policy = if be32(a.clone().get(5)) == Some(0) { Policy::Drop } else { Policy::Accept };
        Base {
            hook: Hook::from_number(be32(h.clone().get(1)).unwrap_or(u32::MAX)),
            priority: be32(h.clone().get(2)).unwrap_or(0) as i32,
            policy,
            kind: text(a.clone().get(7)).unwrap_or_default(),
        }
    });
    Some((table_key(m)?, Chain { name: text(a.clone().get(3))?, base, rules: Vec::new() }))
}

fn rule(m: &Message<'_>) -> Option<((TableKey, String), Rule)> {
    let a = m.attrs();
    let exprs = a.clone().get(4).map(|list| list.nested().filter(|e| e.kind == 1).map(expr).collect());
    let comment = a.clone().get(7).and_then(|u| comment(u.data));
    let rule = Rule { handle: be64(a.clone().get(3)).unwrap_or(0), exprs: exprs.unwrap_or_default(), comment };
    Some(((table_key(m)?, text(a.clone().get(2))?), rule))
}

/// A rule's comment, from its user data (type 0, `NFTNL_UDATA_RULE_COMMENT`).
pub(super) fn comment(mut data: &[u8]) -> Option<String> {
    while let [kind, len, rest @ ..] = data {
        let value = rest.get(..usize::from(*len))?;
        if *kind == 0 {
            return Some(String::from_utf8_lossy(value.strip_suffix(&[0]).unwrap_or(value)).into_owned());
        }
        data = &rest[usize::from(*len)..];
    }
    None
}

fn set(m: &Message<'_>) -> Option<(TableKey, Set)> {
    let a = m.attrs();
    let fields = a
        .clone()
        .get(9)
        .and_then(|d| d.nested().get(2))
        .map(|concat| concat.nested().filter(|e| e.kind == 1).filter_map(|e| be32(e.nested().get(1))).collect());
    let set = Set {
        name: text(a.clone().get(2))?,
        flags: be32(a.clone().get(3)).unwrap_or(0),
        key_len: be32(a.clone().get(5)).unwrap_or(0),
        fields: fields.unwrap_or_default(),
        verdict_map: be32(a.clone().get(6)) == Some(DATA_VERDICT),
        elements: None,
    };
    Some((table_key(m)?, set))
}

/// One expression, decoded; one knockd does not know is a verdict it cannot follow.
fn expr(e: Attr<'_>) -> Expr {
    let name = text(e.nested().get(1)).unwrap_or_default();
    let d = e.nested().get(2).map(|d| d.nested());
    let get = |kind: u16| d.clone().and_then(|d| d.clone().get(kind));
    let reg = |kind: u16| be32(get(kind));
    let unknown = |what: &str, dreg: u16| match reg(dreg) {
        Some(dreg) => Expr::Unknown { what: what.to_owned(), dreg },
        None => Expr::Effect,
    };
    match name.as_str() {
        "immediate" => match (reg(1), verdict(get(2))) {
            (Some(0), Some(v)) => Expr::Immediate { dreg: 0, data: Data::Verdict(v) },
            (Some(dreg), _) => Expr::Immediate { dreg, data: Data::Value(value(get(2))) },
            _ => Expr::Opaque { what: "an immediate without a register".into() },
        },
        "cmp" => match (reg(1), reg(2).and_then(CmpOp::from_number)) {
            (Some(sreg), Some(op)) => Expr::Cmp { sreg, op, data: value(get(3)) },
            _ => Expr::Opaque { what: "a compare knockd cannot read".into() },
        },
        "lookup" => Expr::Lookup {
            sreg: reg(2).unwrap_or(1),
            set: text(get(1)).unwrap_or_default(),
            dreg: reg(3),
            invert: reg(5).unwrap_or(0) & 1 != 0,
        },
        "payload" if reg(5).is_some() => Expr::Effect,
        "payload" => Expr::Payload {
            base: payload_base(reg(2)),
            offset: reg(3).unwrap_or(0),
            len: reg(4).unwrap_or(0),
            dreg: reg(1).unwrap_or(1),
        },
        "meta" if reg(3).is_some() => Expr::Effect,
        "meta" => Expr::Meta { key: reg(2).unwrap_or(u32::MAX), dreg: reg(1).unwrap_or(1) },
        "ct" if reg(4).is_some() => Expr::Effect,
        "ct" => Expr::Ct { key: reg(2).unwrap_or(u32::MAX), dreg: reg(1).unwrap_or(1) },
        "bitwise" if reg(6).unwrap_or(0) != 0 => unknown("a shift", 2),
        "bitwise" => Expr::Bitwise {
            sreg: reg(1).unwrap_or(1),
            dreg: reg(2).unwrap_or(1),
            len: reg(3).unwrap_or(0),
            mask: value(get(4)),
            xor: value(get(5)),
        },
        "range" => {
            Expr::Range { sreg: reg(1).unwrap_or(1), eq: reg(2) == Some(0), from: value(get(3)), to: value(get(4)) }
        }
        "reject" => Expr::Reject,
        "nat" | "masq" | "redir" => Expr::Nat,
        // A meter: its element's expressions (a limit) decide (NFTA_DYNSET_EXPR, _EXPRESSIONS).
        "dynset" if get(7).is_some() || get(10).is_some() => Expr::Condition { what: "a meter".into() },
        "counter" | "log" | "notrack" | "dynset" | "last" | "flow_offload" | "dup" | "ct_helper" | "secmark" => {
            Expr::Effect
        }
        "limit" => Expr::Condition { what: limit(be64(get(1)), be64(get(2)), reg(4)) },
        "quota" | "connlimit" => Expr::Condition { what: name },
        "objref" => objref(reg(1)),
        "match" => Expr::Condition { what: format!("xtables match {}", text(get(1)).unwrap_or_default()) },
        "target" => xt_target(&text(get(1)).unwrap_or_default()),
        "fib" => match reg(1) {
            Some(dreg) => Expr::Fib { result: reg(2).unwrap_or(0), flags: reg(3).unwrap_or(0), dreg },
            None => Expr::Effect,
        },
        "rt" | "osf" | "xfrm" | "numgen" => unknown(&name, 1),
        "socket" | "hash" | "byteorder" | "tunnel" => unknown(&name, 2),
        "exthdr" if reg(7).is_some() => Expr::Effect,
        "exthdr" => unknown("an extension header or option", 1),
        other => Expr::Opaque { what: format!("the {other} expression") },
    }
}

/// NFTA_PAYLOAD_BASE: where a payload's offset counts from.
fn payload_base(base: Option<u32>) -> PayloadBase {
    match base {
        Some(0) => PayloadBase::Link,
        Some(1) => PayloadBase::Network,
        Some(2) => PayloadBase::Transport,
        _ => PayloadBase::Other,
    }
}

/// A named stateful object's reference (NFTA_OBJREF_IMM_TYPE): quotas and limits decide, a
/// named counter does not.
fn objref(kind: Option<u32>) -> Expr {
    match kind {
        Some(2) => Expr::Condition { what: "a named quota".into() },
        Some(4) => Expr::Condition { what: "a named limit".into() },
        _ => Expr::Effect,
    }
}

/// `limit rate 25/second`, as nft writes it (without the burst).
fn limit(rate: Option<u64>, unit: Option<u64>, kind: Option<u32>) -> String {
    let unit = match unit.unwrap_or(1) {
        1 => "second",
        60 => "minute",
        3600 => "hour",
        86400 => "day",
        604_800 => "week",
        _ => "period",
    };
    let bytes = if kind == Some(1) { " bytes" } else { "" };
    format!("limit rate {}{bytes}/{unit}", rate.unwrap_or(0))
}

/// An xtables target, as iptables-nft leaves it.
fn xt_target(name: &str) -> Expr {
    match name {
        "REJECT" | "DROP" => Expr::Reject,
        "ACCEPT" => Expr::Immediate { dreg: 0, data: Data::Verdict(Verdict::Accept) },
        "LOG" | "NFLOG" | "MARK" | "CONNMARK" | "CT" | "TCPMSS" => Expr::Effect,
        other => Expr::Opaque { what: format!("xtables target {other}") },
    }
}
