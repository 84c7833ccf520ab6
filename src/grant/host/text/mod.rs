//! nft's text, compiled to the kernel's expressions the way `nft -f` compiles it, for the
//! subset that firewalls which knockd lives with use (firewalld, fw4, iptables-nft, a typical
//! /etc/nftables.conf). The tests write their rulesets in it, and the end-to-end tests load
//! the same text with the real `nft` and check that the kernel's copy, read back, gets the
//! same answers. One rule per line; anything outside the subset is an error that names it.

use std::collections::HashMap;

use super::model::{
    Base, Chain, CmpOp, Data, Element, Expr, Hook, HostRuleset, Policy, Rule, Set, Table, Verdict, nfproto, set_flags,
};

mod lex;
mod value;

pub use value::next as next_key;

use lex::{Tokens, tokens};
use value::{Kind, Selector, selector};

/// Why a text does not compile: the line and what was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct TextError {
    /// 1-based.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Interface indexes for `iif NAME` (`lo` is always 1).
pub type Indexes = HashMap<String, u32>;

/// Compiles a ruleset written in nft syntax.
pub fn parse(text: &str, indexes: &Indexes) -> Result<HostRuleset, TextError> {
    let mut ruleset = HostRuleset::default();
    let mut table: Option<Table> = None;
    let mut block: Option<Block> = None;
    let mut handle = 0u64;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split_once(" #").map_or(raw, |(l, _)| l).trim();
        let err = |message: String| TextError { line: n + 1, message };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(t) = table.as_mut() else {
            match words.as_slice() {
                ["table", family, name, "{"] => {
                    let family = family_of(family).ok_or_else(|| err(format!("unknown family {family}")))?;
                    table = Some(Table { family, name: (*name).to_owned(), ..Table::default() });
                }
                ["flush", "ruleset"] => {}
                _ => return Err(err(format!("expected a table: {line}"))),
            }
            continue;
        };
        match (block.as_mut(), words.as_slice()) {
            (None, ["chain", name, "{"]) => {
                block = Some(Block::Chain(Chain { name: (*name).into(), ..Chain::default() }));
            }
            (None, [kind @ ("set" | "map"), name, "{"]) => {
                block = Some(Block::Set(Set { name: (*name).into(), verdict_map: *kind == "map", ..Set::default() }));
            }
            (None, ["flags", ..]) => {}
            (None, ["}"]) => ruleset.tables.extend(table.take()),
            (Some(_), ["}"]) => match block.take() {
                Some(Block::Chain(c)) => t.chains.push(c),
                Some(Block::Set(s)) => t.sets.push(s),
                None => {}
            },
            (Some(Block::Set(set)), _) => set_line(set, line).map_err(err)?,
            (Some(Block::Chain(chain)), ["type" | "policy", ..]) => chain_header(chain, line).map_err(err)?,
            (Some(Block::Chain(chain)), _) => {
                handle += 1;
                chain.rules.push(Compiler::new(t, indexes).rule(line, handle).map_err(err)?);
            }
            (None, _) => return Err(err(format!("unexpected in a table: {line}"))),
        }
    }
    match table {
        Some(_) => Err(TextError { line: text.lines().count(), message: "a table is not closed".into() }),
        None => Ok(ruleset),
    }
}

enum Block {
    Chain(Chain),
    Set(Set),
}

fn family_of(name: &str) -> Option<u8> {
    Some(match name {
        "inet" => nfproto::INET,
        "ip" => nfproto::IPV4,
        "ip6" => nfproto::IPV6,
        "netdev" => nfproto::NETDEV,
        "bridge" => nfproto::BRIDGE,
        "arp" => nfproto::ARP,
        _ => return None,
    })
}

/// `type filter hook input priority filter + 10; policy drop;`
fn chain_header(chain: &mut Chain, line: &str) -> Result<(), String> {
    for part in line.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let words: Vec<&str> = part.split_whitespace().collect();
        match words.as_slice() {
            ["type", kind, "hook", hook, "priority", priority @ ..] => {
                let hook = match *hook {
                    "prerouting" => Hook::Prerouting,
                    "input" => Hook::Input,
                    "forward" => Hook::Forward,
                    "output" => Hook::Output,
                    "postrouting" => Hook::Postrouting,
                    other => return Err(format!("unknown hook {other}")),
                };
                let priority = priority_of(priority)?;
                chain.base = Some(Base { hook, priority, policy: Policy::Accept, kind: (*kind).to_owned() });
            }
            ["policy", policy] => {
                let base = chain.base.as_mut().ok_or("a policy without a hook")?;
                base.policy = if *policy == "drop" { Policy::Drop } else { Policy::Accept };
            }
            ["comment", ..] => {}
            _ => return Err(format!("cannot read the chain's header: {part}")),
        }
    }
    Ok(())
}

fn priority_of(words: &[&str]) -> Result<i32, String> {
    let named = |w: &str| -> Result<i32, String> {
        Ok(match w {
            "raw" => -300,
            "mangle" => -150,
            "dstnat" => -100,
            "filter" => 0,
            "security" => 50,
            "srcnat" => 100,
            n => n.parse().map_err(|_| format!("unknown priority {n}"))?,
        })
    };
    match words {
        [one] => named(one),
        [base, "+", n] => Ok(named(base)? + named(n)?),
        [base, "-", n] => Ok(named(base)? - named(n)?),
        _ => Err(format!("cannot read priority {}", words.join(" "))),
    }
}

/// A line of a named set's block: only its type and flags matter (its elements are its
/// owner's business: membership of a named set is never assumed).
fn set_line(set: &mut Set, line: &str) -> Result<(), String> {
    for part in line.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, rest) = part.split_once(' ').unwrap_or((part, ""));
        match key {
            "type" => {
                let (key_type, data) = rest.split_once(':').map_or((rest, None), |(k, d)| (k, Some(d.trim())));
                let lens: Vec<u32> = key_type
                    .split('.')
                    .map(|t| value::type_len(t.trim()))
                    .collect::<Option<_>>()
                    .ok_or(format!("unknown type {rest}"))?;
                set.key_len = if lens.len() == 1 { lens[0] } else { lens.iter().map(|l| l.next_multiple_of(4)).sum() };
                if lens.len() > 1 {
                    set.fields = lens;
                    set.flags |= set_flags::CONCAT;
                }
                if data == Some("verdict") {
                    set.verdict_map = true;
                    set.flags |= set_flags::MAP;
                }
            }
            "flags" => {
                for flag in rest.split(',').map(str::trim) {
                    set.flags |= match flag {
                        "interval" => set_flags::INTERVAL,
                        "timeout" => set_flags::TIMEOUT,
                        "constant" => 0x2,
                        "dynamic" => 0x20,
                        other => return Err(format!("unknown set flag {other}")),
                    };
                }
            }
            "timeout" | "size" | "elements" | "comment" | "counter" | "policy" | "gc-interval" | "auto-merge" => {}
            other => return Err(format!("unknown set attribute {other}")),
        }
    }
    Ok(())
}

/// Compiles one rule against its table (which receives the rule's anonymous sets).
struct Compiler<'t> {
    table: &'t mut Table,
    indexes: &'t Indexes,
    exprs: Vec<Expr>,
    comment: Option<String>,
}

impl<'t> Compiler<'t> {
    fn new(table: &'t mut Table, indexes: &'t Indexes) -> Self {
        Compiler { table, indexes, exprs: Vec::new(), comment: None }
    }

    fn rule(mut self, line: &str, handle: u64) -> Result<Rule, String> {
        let mut t = tokens(line)?;
        while let Some(word) = t.peek() {
            self.statement(&mut t, &word)?;
        }
        Ok(Rule { handle, exprs: self.exprs, comment: self.comment })
    }

    fn statement(&mut self, t: &mut Tokens, word: &str) -> Result<(), String> {
        let verdict = |v| Expr::Immediate { dreg: 0, data: Data::Verdict(v) };
        match word {
            "accept" | "drop" | "continue" | "return" => {
                t.next();
                self.exprs.push(verdict(match word {
                    "accept" => Verdict::Accept,
                    "drop" => Verdict::Drop,
                    "continue" => Verdict::Continue,
                    _ => Verdict::Return,
                }));
            }
            "jump" | "goto" => {
                t.next();
                let target = t.next().ok_or("a jump without a chain")?;
                self.exprs.push(verdict(if word == "jump" { Verdict::Jump(target) } else { Verdict::Goto(target) }));
            }
            "reject" => {
                t.skip_arguments();
                self.exprs.push(Expr::Reject);
            }
            "counter" | "log" | "notrack" | "add" | "update" => {
                t.skip_arguments();
                self.exprs.push(Expr::Effect);
            }
            "comment" => {
                t.next();
                self.comment = t.next();
            }
            "dnat" | "snat" | "masquerade" | "redirect" => {
                t.skip_arguments();
                self.exprs.push(Expr::Nat);
            }
            "queue" => {
                t.skip_arguments();
                self.exprs.push(Expr::Opaque { what: "queue".into() });
            }
            "fib" => self.fib(t)?,
            "limit" | "quota" => {
                let words = t.skip_arguments();
                // As the kernel's copy reads back: `limit rate 25/second`, without the burst.
                let keep = if word == "limit" { 3 } else { words.len() };
                self.exprs.push(Expr::Condition { what: words[..keep.min(words.len())].join(" ") });
            }
            "xt" => self.xtables(t)?,
            _ => self.matching(t)?,
        }
        Ok(())
    }

    /// `fib saddr . mark . iif oif missing`, `fib daddr type local` (or `!=`, `exists`).
    fn fib(&mut self, t: &mut Tokens) -> Result<(), String> {
        t.next();
        let mut flags = 0u32;
        loop {
            flags |= match t.next().ok_or("fib what?")?.as_str() {
                "saddr" => 1,
                "daddr" => 2,
                "mark" => 4,
                "iif" => 8,
                "oif" => 16,
                other => return Err(format!("fib {other}?")),
            };
            if t.peek().as_deref() != Some(".") {
                break;
            }
            t.next();
        }
        let (result, op, data) = match t.next().as_deref() {
            Some("oif") => {
                let op = match t.next().as_deref() {
                    Some("missing") => CmpOp::Eq,
                    Some("exists") => CmpOp::Neq,
                    other => return Err(format!("fib ... oif {other:?}?")),
                };
                flags |= 32;
                (1, op, 0u32)
            }
            Some("type") => {
                let op = t.op().unwrap_or(CmpOp::Eq);
                let names = ["unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole"];
                let name = t.next().ok_or("fib ... type what?")?;
                let kind = names.iter().position(|n| *n == name).ok_or(format!("fib type {name}?"))?;
                (3, op, kind as u32)
            }
            other => return Err(format!("fib ... {other:?}?")),
        };
        self.exprs.push(Expr::Fib { result, flags, dreg: 8 });
        self.exprs.push(Expr::Cmp { sreg: 8, op, data: data.to_ne_bytes().to_vec() });
        Ok(())
    }

    /// `xt match "conntrack"`, `xt target "REJECT"`, as nft prints iptables-nft's rules.
    fn xtables(&mut self, t: &mut Tokens) -> Result<(), String> {
        t.next();
        let kind = t.next().ok_or("xt needs match or target")?;
        let name = t.next().ok_or("xt needs a name")?;
        self.exprs.push(match (kind.as_str(), name.as_str()) {
            ("match", _) => Expr::Condition { what: format!("xtables match {name}") },
            ("target", "REJECT" | "DROP") => Expr::Reject,
            ("target", "ACCEPT") => Expr::Immediate { dreg: 0, data: Data::Verdict(Verdict::Accept) },
            ("target", "LOG" | "NFLOG" | "MARK" | "CONNMARK") => Expr::Effect,
            ("target", _) => Expr::Opaque { what: format!("xtables target {name}") },
            _ => return Err(format!("xt {kind}?")),
        });
        Ok(())
    }

    /// `SELECTOR [. SELECTOR...] [OP] VALUE` or `SELECTOR vmap { ... }`.
    fn matching(&mut self, t: &mut Tokens) -> Result<(), String> {
        let mut fields = vec![selector(t, self.table.family)?];
        while t.peek().as_deref() == Some(".") {
            t.next();
            fields.push(selector(t, self.table.family)?);
        }
        for dep in fields.iter().flat_map(|f| f.depends.clone()) {
            if !self.exprs.contains(&dep[0]) || !self.exprs.contains(&dep[1]) {
                self.exprs.extend(dep);
            }
        }
        let mut word = 8u32;
        for f in &fields {
            self.exprs.push(f.load(word));
            word += f.len.div_ceil(4);
        }
        let single = fields.len() == 1;
        let op = t.op();
        match t.peek().as_deref() {
            Some("vmap") => {
                t.next();
                let name = self.anonymous_set(&fields, t, true)?;
                self.exprs.push(Expr::Lookup { sreg: 8, set: name, dreg: Some(0), invert: false });
            }
            Some("{") => {
                let name = self.anonymous_set(&fields, t, false)?;
                self.exprs.push(Expr::Lookup { sreg: 8, set: name, dreg: None, invert: op == Some(CmpOp::Neq) });
            }
            Some(v) if v.starts_with('@') => {
                t.next();
                self.exprs.push(Expr::Lookup {
                    sreg: 8,
                    set: v[1..].to_owned(),
                    dreg: None,
                    invert: op == Some(CmpOp::Neq),
                });
            }
            Some(_) if single => self.compare(&fields[0], op, t)?,
            _ => return Err("a concatenation needs a set".into()),
        }
        Ok(())
    }

    /// One value: a compare, a prefix (mask then compare), a range, or a flag test.
    fn compare(&mut self, f: &Selector, op: Option<CmpOp>, t: &mut Tokens) -> Result<(), String> {
        let v = f.value(t.next().ok_or("a match without a value")?.as_str(), self.indexes)?;
        let len = f.len;
        match (v, f.kind) {
            (value::Value::Bytes(bytes), Kind::Flags) if op.is_none() || op == Some(CmpOp::Neq) => {
                self.exprs.push(Expr::Bitwise { sreg: 8, dreg: 8, len, mask: bytes, xor: vec![0; len as usize] });
                let zero = vec![0; len as usize];
                let op = if op == Some(CmpOp::Neq) { CmpOp::Eq } else { CmpOp::Neq };
                self.exprs.push(Expr::Cmp { sreg: 8, op, data: zero });
            }
            (value::Value::Bytes(bytes), _) => {
                self.exprs.push(Expr::Cmp { sreg: 8, op: op.unwrap_or(CmpOp::Eq), data: bytes })
            }
            (value::Value::Prefix(bytes, mask), _) => {
                self.exprs.push(Expr::Bitwise { sreg: 8, dreg: 8, len, mask, xor: vec![0; len as usize] });
                self.exprs.push(Expr::Cmp { sreg: 8, op: op.unwrap_or(CmpOp::Eq), data: bytes });
            }
            (value::Value::Range(from, to), _) => {
                self.exprs.push(Expr::Range { sreg: 8, eq: op != Some(CmpOp::Neq), from, to });
            }
        }
        Ok(())
    }

    /// `{ a, b-c, d/8 }` or `{ a : accept, b : jump x }`: an anonymous set (or map) of the table.
    fn anonymous_set(&mut self, fields: &[Selector], t: &mut Tokens, map: bool) -> Result<String, String> {
        let items = t.braced()?;
        let name = format!("__set{}", self.table.sets.len());
        let key_len: u32 = fields.iter().map(|f| f.len.next_multiple_of(4)).sum();
        let mut set = Set {
            name: name.clone(),
            flags: set_flags::ANONYMOUS | if map { set_flags::MAP } else { 0 },
            key_len: if fields.len() == 1 { fields[0].len } else { key_len },
            fields: if fields.len() > 1 { fields.iter().map(|f| f.len).collect() } else { Vec::new() },
            verdict_map: map,
            elements: Some(Vec::new()),
        };
        let mut ranges: Vec<(Vec<u8>, Vec<u8>, Option<Verdict>)> = Vec::new();
        for item in items {
            let (key, verdict) = match (map, item.split_once(" : ")) {
                (true, Some((k, v))) => (k.trim().to_owned(), Some(value::verdict(v.trim())?)),
                (true, None) => return Err(format!("a map element without a verdict: {item}")),
                (false, _) => (item, None),
            };
            if fields.len() != 1 {
                return Err("anonymous sets of concatenations are not supported here".into());
            }
            let (lo, hi) = fields[0].value(&key, self.indexes)?.bounds();
            ranges.push((lo, hi, verdict));
        }
        let interval = ranges.iter().any(|(lo, hi, _)| lo != hi);
        let elements = set.elements.as_mut().expect("just made");
        for (lo, hi, verdict) in ranges {
            elements.push(Element { key: lo, verdict: verdict.clone(), ..Element::default() });
            if interval {
                if let Some(end) = value::next(&hi) {
                    elements.push(Element { key: end, interval_end: true, ..Element::default() });
                }
            }
        }
        if interval {
            set.flags |= set_flags::INTERVAL;
        }
        self.table.sets.push(set);
        Ok(name)
    }
}

/// The expressions that load one field into the 4-byte register `word`.
impl Selector {
    fn load(&self, word: u32) -> Expr {
        match self.source {
            value::Source::Payload(base, offset) => Expr::Payload { base, offset, len: self.len, dreg: word },
            value::Source::Meta(key) => Expr::Meta { key, dreg: word },
            value::Source::Ct(key) => Expr::Ct { key, dreg: word },
        }
    }
}

#[cfg(test)]
mod tests;
