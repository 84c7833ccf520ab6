//! The host's whole nftables ruleset as the kernel holds it: tables, chains, rules as their
//! expressions, and sets. Read over netlink (`grant::nft::dump`), or compiled from nft text
//! (`text`, for tests and fixtures). Expressions are kept at the kernel's level (registers,
//! loads, compares), so what the evaluator decides is what the kernel would do, not what a
//! pretty-printer made of it.

use std::fmt;

/// `NFPROTO_INET`, `NFPROTO_IPV4`, `NFPROTO_ARP`, `NFPROTO_NETDEV`, `NFPROTO_BRIDGE`,
/// `NFPROTO_IPV6`: the family of a table.
pub mod nfproto {
    /// `inet`: both IP versions.
    pub const INET: u8 = 1;
    /// `ip`.
    pub const IPV4: u8 = 2;
    /// `arp`.
    pub const ARP: u8 = 3;
    /// `netdev`.
    pub const NETDEV: u8 = 5;
    /// `bridge`.
    pub const BRIDGE: u8 = 7;
    /// `ip6`.
    pub const IPV6: u8 = 10;

    /// The family's name, as nft writes it.
    pub fn name(family: u8) -> &'static str {
        match family {
            INET => "inet",
            IPV4 => "ip",
            ARP => "arp",
            NETDEV => "netdev",
            BRIDGE => "bridge",
            IPV6 => "ip6",
            _ => "unknown",
        }
    }
}

/// The netfilter hooks a base chain can sit on (`NF_INET_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// Before routing.
    Prerouting,
    /// To this host.
    Input,
    /// Through this host.
    Forward,
    /// From this host.
    Output,
    /// After routing.
    Postrouting,
    /// Any other (ingress, egress).
    Other(u32),
}

impl Hook {
    /// From the kernel's hook number.
    pub fn from_number(n: u32) -> Hook {
        match n {
            0 => Hook::Prerouting,
            1 => Hook::Input,
            2 => Hook::Forward,
            3 => Hook::Output,
            4 => Hook::Postrouting,
            n => Hook::Other(n),
        }
    }
}

/// Every table of the host, in the order the kernel listed them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostRuleset {
    /// The tables.
    pub tables: Vec<Table>,
}

/// One table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// `NFPROTO_*` (see [`nfproto`]).
    pub family: u8,
    /// Its name.
    pub name: String,
    /// Its chains.
    pub chains: Vec<Chain>,
    /// Its sets and maps, named and anonymous.
    pub sets: Vec<Set>,
    /// `flags dormant`: its base chains are not registered and decide nothing.
    pub dormant: bool,
    /// The netlink port of the process that owns the table (`flags owner`, firewalld 2 by
    /// default): nobody else may change it, not even its sets' elements.
    pub owner: Option<u32>,
}

impl Table {
    /// `table inet firewalld`.
    pub fn title(&self) -> String {
        format!("table {} {}", nfproto::name(self.family), self.name)
    }

    /// The chain named `name`.
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// The set named `name` (anonymous sets too: `__set0`).
    pub fn set(&self, name: &str) -> Option<&Set> {
        self.sets.iter().find(|s| s.name == name)
    }
}

/// A chain: a base chain has a hook, a regular chain is only jumped to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    /// Its name.
    pub name: String,
    /// For a base chain: where it sits and what it does when no rule decides.
    pub base: Option<Base>,
    /// Its rules, in order.
    pub rules: Vec<Rule>,
}

/// What makes a chain a base chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    /// The hook.
    pub hook: Hook,
    /// Lower runs first.
    pub priority: i32,
    /// The verdict when no rule gave one.
    pub policy: Policy,
    /// `filter`, `nat` or `route`.
    pub kind: String,
}

/// A base chain's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// `policy accept`.
    Accept,
    /// `policy drop`.
    Drop,
}

/// One rule: its handle (how `nft` names it) and its expressions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    /// The rule's handle in its table.
    pub handle: u64,
    /// Its expressions, in order.
    pub exprs: Vec<Expr>,
    /// Its comment, if any (fw4's rules carry `!fw4: ...`).
    pub comment: Option<String>,
}

/// A verdict, as an immediate expression or a verdict map's element carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `accept`.
    Accept,
    /// `drop`.
    Drop,
    /// `continue`.
    Continue,
    /// The rule does not match (`NFT_BREAK`).
    Break,
    /// `return`.
    Return,
    /// `jump CHAIN`.
    Jump(String),
    /// `goto CHAIN`.
    Goto(String),
    /// `queue`, `stolen` or a code knockd does not know.
    Other(i32),
}

impl Verdict {
    /// From the kernel's verdict code and chain name.
    pub fn from_code(code: i32, chain: Option<String>) -> Verdict {
        match (code, chain) {
            (1, _) => Verdict::Accept,
            (0, _) => Verdict::Drop,
            (-1, _) => Verdict::Continue,
            (-2, _) => Verdict::Break,
            (-5, _) => Verdict::Return,
            (-3, Some(chain)) => Verdict::Jump(chain),
            (-4, Some(chain)) => Verdict::Goto(chain),
            (code, _) => Verdict::Other(code),
        }
    }
}

/// Compare operations (`NFT_CMP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Neq,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `>`
    Gt,
    /// `>=`
    Gte,
}

impl CmpOp {
    /// From the kernel's number.
    pub fn from_number(n: u32) -> Option<CmpOp> {
        Some(match n {
            0 => CmpOp::Eq,
            1 => CmpOp::Neq,
            2 => CmpOp::Lt,
            3 => CmpOp::Lte,
            4 => CmpOp::Gt,
            5 => CmpOp::Gte,
            _ => return None,
        })
    }
}

/// Where a payload load reads (`NFT_PAYLOAD_*_HEADER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadBase {
    /// The link-layer header.
    Link,
    /// The IP header.
    Network,
    /// The TCP or UDP header.
    Transport,
    /// Anything else (inner headers).
    Other,
}

/// One expression of a rule, at the kernel's level. Registers are numbered as the kernel
/// numbers them (0 the verdict, 1-4 the 16-byte ones, 8-23 the 4-byte ones).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs, reason = "fields are the kernel's attributes of the same names")]
pub enum Expr {
    /// A verdict, or data into a register.
    Immediate { dreg: u32, data: Data },
    /// Compares a register with data; the rule stops here when it does not hold.
    Cmp { sreg: u32, op: CmpOp, data: Vec<u8> },
    /// Looks a register up in a set (or map, with `dreg`); `invert` for `!=`.
    Lookup { sreg: u32, set: String, dreg: Option<u32>, invert: bool },
    /// Loads packet bytes.
    Payload { base: PayloadBase, offset: u32, len: u32, dreg: u32 },
    /// Loads packet metadata (`NFT_META_*`).
    Meta { key: u32, dreg: u32 },
    /// Loads connection tracking state (`NFT_CT_*`).
    Ct { key: u32, dreg: u32 },
    /// `dreg = (sreg & mask) ^ xor` over `len` bytes.
    Bitwise { sreg: u32, dreg: u32, len: u32, mask: Vec<u8>, xor: Vec<u8> },
    /// Holds when the register is (`eq`) or is not between `from` and `to`.
    Range { sreg: u32, eq: bool, from: Vec<u8>, to: Vec<u8> },
    /// `reject`: the packet is dropped (and answered).
    Reject,
    /// `dnat`, `snat`, `masquerade`, `redirect`: the packet is accepted (translated).
    Nat,
    /// A route lookup (`fib saddr . iif oif missing`, `fib daddr type local`): `result` and
    /// `flags` are the kernel's `NFT_FIB_RESULT_*` and `NFTA_FIB_F_*`.
    Fib { result: u32, flags: u32, dreg: u32 },
    /// Loads something knockd cannot know for a packet that has not arrived yet (a route, a
    /// socket, an extension header, a hash...): `what` names it.
    Unknown { what: String, dreg: u32 },
    /// A condition that may or may not hold (`limit`, `quota`, `connlimit`, an xtables
    /// match): `what` names it.
    Condition { what: String },
    /// A verdict knockd cannot follow (`queue`, an xtables target it does not know).
    Opaque { what: String },
    /// Side effects only (counter, log, setting a mark, adding to a set): no bearing on the
    /// verdict.
    Effect,
}

/// What an immediate expression puts in its register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// A verdict (register 0).
    Verdict(Verdict),
    /// Bytes.
    Value(Vec<u8>),
}

/// A set or map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Set {
    /// Its name (`__set0` for anonymous ones).
    pub name: String,
    /// `NFT_SET_*` flags.
    pub flags: u32,
    /// Bytes in a key.
    pub key_len: u32,
    /// For a concatenation: each field's length.
    pub fields: Vec<u32>,
    /// Whether its elements map to verdicts (a verdict map).
    pub verdict_map: bool,
    /// The elements, when knockd read them (anonymous sets and maps); `None` for a named set,
    /// whose members change at any time.
    pub elements: Option<Vec<Element>>,
}

/// `NFT_SET_ANONYMOUS`, `NFT_SET_INTERVAL`, `NFT_SET_MAP`, `NFT_SET_TIMEOUT`, `NFT_SET_CONCAT`.
pub mod set_flags {
    /// Anonymous (`{ ... }` in a rule).
    pub const ANONYMOUS: u32 = 0x1;
    /// Intervals (ranges, prefixes).
    pub const INTERVAL: u32 = 0x4;
    /// A map.
    pub const MAP: u32 = 0x8;
    /// Elements time out.
    pub const TIMEOUT: u32 = 0x10;
    /// A concatenation of fields.
    pub const CONCAT: u32 = 0x80;
}

impl Set {
    /// Whether its keys are ranges (`flags interval`).
    pub fn interval(&self) -> bool {
        self.flags & set_flags::INTERVAL != 0
    }
}

/// One element of a set or map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Its key (a range's start, in an interval set).
    pub key: Vec<u8>,
    /// The range's end, for a concatenation of ranges.
    pub key_end: Option<Vec<u8>>,
    /// In an interval set of one field: this element ends the range before it.
    pub interval_end: bool,
    /// In a verdict map: the verdict.
    pub verdict: Option<Verdict>,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Accept => f.write_str("accept"),
            Verdict::Drop => f.write_str("drop"),
            Verdict::Continue => f.write_str("continue"),
            Verdict::Break => f.write_str("break"),
            Verdict::Return => f.write_str("return"),
            Verdict::Jump(c) => write!(f, "jump {c}"),
            Verdict::Goto(c) => write!(f, "goto {c}"),
            Verdict::Other(code) => write!(f, "verdict {code}"),
        }
    }
}
