//! The ruleset in `nft -f` syntax: what `knockd check` shows will be made. Inside fw4, the
//! table is fw4's, the chains are regular, and comments say which of fw4's chains jump to them.

use std::fmt;
use std::net::SocketAddr;

use super::{Family, Hookpoint, MARK, Match, PRIORITY, RuleSpec, Ruleset, Verdict};

impl Family {
    fn saddr(self) -> &'static str {
        match self {
            Family::V4 => "ip saddr",
            Family::V6 => "ip6 saddr",
        }
    }

    fn daddr(self) -> &'static str {
        match self {
            Family::V4 => "ip daddr",
            Family::V6 => "ip6 daddr",
        }
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::Established => f.write_str("ct state established,related"),
            Match::Loopback => f.write_str("meta iiftype loopback"),
            Match::Dport(p) => write!(f, "{} dport {}", p.proto, p.port),
            Match::SaddrIn { family, set } => write!(f, "{} @{set}", family.saddr()),
            Match::SaddrPortIn { family, set } => write!(f, "{} . meta l4proto . th dport @{set}", family.saddr()),
            Match::Daddr(ip) => write!(f, "{} {ip}", Family::of(ip).daddr()),
            Match::CtDnat => f.write_str("ct status dnat"),
            Match::Iifname(name) => write!(f, "iifname \"{name}\""),
        }
    }
}

impl fmt::Display for RuleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.matches {
            write!(f, "{m} ")?;
        }
        match self.verdict {
            Verdict::Accept => f.write_str("accept"),
            Verdict::Drop => f.write_str("drop"),
            Verdict::Dnat(to @ SocketAddr::V4(_)) => write!(f, "dnat ip to {to}"),
            Verdict::Dnat(to) => write!(f, "dnat ip6 to {to}"),
        }
    }
}

/// The ruleset in `nft -f` syntax.
impl fmt::Display for Ruleset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "table inet {} {{", self.table)?;
        for set in &self.sets {
            let (name, key, size) = (&set.name, set.key_type(), set.size);
            writeln!(f, "\tset {name} {{\n\t\ttype {key}\n\t\tsize {size}\n\t\tflags timeout\n\t}}\n")?;
        }
        let mut first = true;
        for (hook, rules) in self.chains() {
            if !std::mem::take(&mut first) {
                writeln!(f)?;
            }
            writeln!(f, "\tchain {} {{", self.chain_name(hook))?;
            match (self.entry(hook), hook) {
                (Some(from), _) => {
                    writeln!(f, "\t\t# jumped to first thing from chain {from}, by a rule with comment \"{MARK}\"")?
                }
                (None, Hookpoint::Input) => {
                    writeln!(f, "\t\ttype filter hook input priority {PRIORITY}; policy accept;")?
                }
                (None, Hookpoint::Forward) => {
                    writeln!(f, "\t\ttype filter hook forward priority {PRIORITY}; policy accept;")?
                }
                (None, Hookpoint::Dstnat) => {
                    writeln!(f, "\t\ttype nat hook prerouting priority dstnat; policy accept;")?
                }
            }
            for rule in rules {
                writeln!(f, "\t\t{rule}")?;
            }
            writeln!(f, "\t}}")?;
        }
        writeln!(f, "}}")
    }
}
