//! The daemon's nftables objects, derived from the config as plain data.

use std::fmt;
use std::net::IpAddr;

use crate::config::{Config, PortProto};

/// The base chain the daemon owns in its table.
pub const CHAIN: &str = "input";
/// Chain priority: `filter`, the same as a typical admin's input chain.
pub const PRIORITY: i32 = 0;

/// Address family of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// Both families, IPv4 first.
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];

    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Family::V4 => "v4",
            Family::V6 => "v6",
        }
    }

    /// The nft keyword for the set's key type.
    pub fn key_type(self) -> &'static str {
        match self {
            Family::V4 => "ipv4_addr",
            Family::V6 => "ipv6_addr",
        }
    }

    fn saddr(self) -> &'static str {
        match self {
            Family::V4 => "ip saddr",
            Family::V6 => "ip6 saddr",
        }
    }
}

/// Name of a door's set for one family: `ssh_v4`, `ssh_v6`; a door whose name is not an nft
/// identifier (a classic `[Open rtorrent]`) gets its derived name (`config::nft_name`).
pub fn set_name(door: &str, family: Family) -> String {
    format!("{}_{}", crate::config::nft_name(door), family.suffix())
}

/// A named set of addresses whose elements time out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetSpec {
    /// The set's name in the table.
    pub name: String,
    /// Which addresses it holds.
    pub family: Family,
    /// Elements are address, protocol and port (`ipv4_addr . inet_proto . inet_service`), for
    /// doors whose clients ask for ports (fwknop).
    pub per_port: bool,
}

impl SetSpec {
    /// The set's key type, in nft syntax.
    pub fn key_type(&self) -> String {
        if self.per_port {
            format!("{} . inet_proto . inet_service", self.family.key_type())
        } else {
            self.family.key_type().to_owned()
        }
    }
}

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs, reason = "each variant's doc names its fields")]
pub enum Match {
    /// `ct state established,related`
    Established,
    /// `meta iiftype loopback`: the host talking to itself is never knocked out.
    Loopback,
    /// `tcp dport 22` / `udp dport 53`
    Dport(PortProto),
    /// `ip saddr @set` / `ip6 saddr @set`
    /// `ip saddr @set` / `ip6 saddr @set`.
    SaddrIn { family: Family, set: String },
    /// `ip saddr . meta l4proto . th dport @set`: the source, with the port it knocks on.
    SaddrPortIn { family: Family, set: String },
}

/// What a rule does with a packet that matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through (this chain).
    Accept,
    /// Drop it.
    Drop,
}

/// A rule: all matches, then the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    /// Conditions, all of which must hold.
    pub matches: Vec<Match>,
    /// What happens then.
    pub verdict: Verdict,
}

/// Everything the daemon creates: one `inet` table, its sets and one input chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    /// The `inet` table's name.
    pub table: String,
    /// Every door's sets.
    pub sets: Vec<SetSpec>,
    /// The input chain's rules, in order.
    pub rules: Vec<RuleSpec>,
}

impl Ruleset {
    /// Whether the config asks nothing of nftables (only legacy command doors).
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// The table's name, if the daemon has a table for this config at all.
    pub fn table_if_any(&self) -> Option<String> {
        (!self.is_empty()).then(|| self.table.clone())
    }

    /// The ports the chain drops unless a grant lets the packet in.
    pub fn guarded_ports(&self) -> Vec<PortProto> {
        let ports = self.rules.iter().filter(|r| r.verdict == Verdict::Drop);
        ports.flat_map(|r| &r.matches).filter_map(|m| if let Match::Dport(p) = m { Some(*p) } else { None }).collect()
    }

    /// The ruleset for `config`: each door's ports are dropped unless the packet belongs to an
    /// established connection, comes from loopback, or its source is in one of the door's sets.
    /// The chain's policy is accept, so the daemon never touches other traffic.
    pub fn for_config(config: &Config) -> Ruleset {
        let mut sets = Vec::new();
        let mut rules = vec![
            RuleSpec { matches: vec![Match::Established], verdict: Verdict::Accept },
            RuleSpec { matches: vec![Match::Loopback], verdict: Verdict::Accept },
        ];
        let mut guarded: Vec<PortProto> = Vec::new();
        for door in &config.doors {
            let Some(open) = door.open.as_ref().filter(|o| o.attach.is_none()) else { continue };
            for family in Family::BOTH {
                let set = set_name(&door.name, family);
                sets.push(SetSpec { name: set.clone(), family, per_port: open.per_port });
                rules.extend(accepts(open, family, &set));
            }
            guarded.extend(&open.ports);
        }
        guarded.sort();
        guarded.dedup();
        // Drops come after every door's accepts: two doors may open the same port.
        rules.extend(
            guarded.into_iter().map(|port| RuleSpec { matches: vec![Match::Dport(port)], verdict: Verdict::Drop }),
        );
        Ruleset { table: config.table.clone(), sets, rules }
    }
}

/// The rules that let a door's grants in: per port for a plain door, one rule for a per-port
/// door (its set names the ports).
fn accepts(open: &crate::config::OpenAction, family: Family, set: &str) -> Vec<RuleSpec> {
    if open.per_port {
        let matches = vec![Match::SaddrPortIn { family, set: set.to_owned() }];
        return vec![RuleSpec { matches, verdict: Verdict::Accept }];
    }
    open.ports
        .iter()
        .map(|port| RuleSpec {
            matches: vec![Match::Dport(*port), Match::SaddrIn { family, set: set.to_owned() }],
            verdict: Verdict::Accept,
        })
        .collect()
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::Established => f.write_str("ct state established,related"),
            Match::Loopback => f.write_str("meta iiftype loopback"),
            Match::Dport(p) => write!(f, "{} dport {}", p.proto, p.port),
            Match::SaddrIn { family, set } => write!(f, "{} @{set}", family.saddr()),
            Match::SaddrPortIn { family, set } => write!(f, "{} . meta l4proto . th dport @{set}", family.saddr()),
        }
    }
}

impl fmt::Display for RuleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.matches {
            write!(f, "{m} ")?;
        }
        f.write_str(match self.verdict {
            Verdict::Accept => "accept",
            Verdict::Drop => "drop",
        })
    }
}

/// The ruleset in `nft -f` syntax.
impl fmt::Display for Ruleset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "table inet {} {{", self.table)?;
        for set in &self.sets {
            writeln!(f, "\tset {} {{\n\t\ttype {}\n\t\tflags timeout\n\t}}\n", set.name, set.key_type())?;
        }
        writeln!(f, "\tchain {CHAIN} {{")?;
        writeln!(f, "\t\ttype filter hook input priority {PRIORITY}; policy accept;")?;
        for rule in &self.rules {
            writeln!(f, "\t\t{rule}")?;
        }
        writeln!(f, "\t}}\n}}")
    }
}
