//! What `knockd check` says about the host's firewall: the sets attach doors add to, a table
//! an earlier run left, and what the other tables do with each door's ports. It reads only.

use std::fmt::Write;

use crate::config::Config;
use crate::grant::attach::attached_sets;
use crate::grant::coexist::{self, HostView};
use crate::grant::host::model::{Expr, HostRuleset, nfproto};
use crate::grant::host::{Answer, Table};
use crate::grant::nft::Ruleset;
use crate::grant::{Firewall, FirewallError};

/// What the check found, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Finding {
    /// Nothing in the way.
    Clear,
    /// Something knockd cannot tell; said, but the start would work as the log will say.
    Notes,
    /// A chain of another table drops what a door opens: grants would open nothing.
    Blocked,
    /// An attached set the start would refuse.
    Refused,
}

/// The report, and how bad it is.
pub struct Report {
    /// The text, one finding per line with what to do.
    pub text: String,
    /// The worst finding.
    pub finding: Finding,
}

/// Reads the host's firewall through `firewall` and reports on it for `config`.
pub fn report<F: Firewall>(config: &Config, firewall: &mut F, view: &HostView) -> Result<Report, FirewallError> {
    let mut text = String::new();
    let mut finding = Finding::Clear;
    for set in attached_sets(config, firewall)? {
        let _ = writeln!(text, "door {}: {}: {}", set.door, set.set, set.problem.as_deref().unwrap_or("ok"));
        if set.problem.is_some() {
            finding = Finding::Refused;
        }
    }
    let ruleset = firewall.host_ruleset()?;
    leftover(config, &ruleset, &mut text);
    if unused_sets(config, &ruleset, &mut text) | unchecked_ports(config, &ruleset, &mut text) {
        finding = finding.max(Finding::Notes);
    }
    for a in coexist::assess(config, &ruleset, view) {
        match &a.answer {
            Answer::Accepted => {
                let _ = writeln!(text, "{}: nothing in the host's firewall drops it", a.subject());
            }
            Answer::Dropped(_) | Answer::DroppedFor(..) => {
                let _ = writeln!(text, "{}: {}: a grant would not open it", a.subject(), a.answer);
                text.push_str(&coexist::advice(config, &a));
                finding = finding.max(Finding::Blocked);
            }
            Answer::CannotTell { .. } => {
                let _ = writeln!(text, "note: {}: {}", a.subject(), a.answer);
                text.push_str(&coexist::advice(config, &a));
                finding = finding.max(Finding::Notes);
            }
        }
    }
    if finding == Finding::Clear {
        text.push_str("host firewall: ok\n");
    }
    Ok(Report { text, finding })
}

/// A table of knockd's name the kernel holds now (an earlier run, the running daemon), and what
/// a start does with it.
fn leftover(config: &Config, ruleset: &HostRuleset, text: &mut String) {
    let ours = ruleset.tables.iter().find(|t| t.family == nfproto::INET && t.name == config.table);
    let Some(table) = ours else { return };
    let sets = table.sets.iter().filter(|s| !s.name.starts_with("__")).count();
    let what = if Ruleset::for_config(config).is_empty() {
        "a start removes it: no door guards a port in knockd's own table now"
    } else {
        "a start replaces its rules with the ones above; its sets and their grants stay"
    };
    let _ = writeln!(text, "the kernel holds table inet {} now ({sets} set(s)): {what}", config.table);
}

/// Attach doors whose set no rule of its table looks up: their grants would open nothing.
/// Returns whether there was one.
fn unused_sets(config: &Config, ruleset: &HostRuleset, text: &mut String) -> bool {
    let mut any = false;
    for door in &config.doors {
        let Some(a) = door.open.as_ref().and_then(|o| o.attach.as_ref()) else { continue };
        let table = ruleset.tables.iter().find(|t| t.family == a.family.nfproto() && t.name == a.table);
        let Some(table) = table else { continue };
        for set in [&a.ipv4, &a.ipv6].into_iter().flatten() {
            if !looked_up(table, set) {
                let _ = writeln!(
                    text,
                    "door {}: no rule of table {} {} uses set {set}: its grants open nothing until one \
                     accepts it (see nft-templates/attach.nft)",
                    door.name, a.family, a.table
                );
                any = true;
            }
        }
    }
    any
}

/// Attach doors whose sets are looked up, but by rules that name no port knockd reads (every
/// port, or ranges): what the other tables do with their grants was not checked. Returns
/// whether there was one.
fn unchecked_ports(config: &Config, ruleset: &HostRuleset, text: &mut String) -> bool {
    let mut any = false;
    for door in &config.doors {
        let Some(a) = door.open.as_ref().and_then(|o| o.attach.as_ref()) else { continue };
        let table = ruleset.tables.iter().find(|t| t.family == a.family.nfproto() && t.name == a.table);
        let used = table.is_some_and(|t| [&a.ipv4, &a.ipv6].into_iter().flatten().any(|s| looked_up(t, s)));
        if used && coexist::door_ports(door, ruleset).is_empty() {
            let _ = writeln!(
                text,
                "note: door {}: the rules of table {} {} that accept its sets name no single port: knockd \
                 did not check what the other tables do with its grants",
                door.name, a.family, a.table
            );
            any = true;
        }
    }
    any
}

fn looked_up(table: &Table, set: &str) -> bool {
    let rules = table.chains.iter().flat_map(|c| &c.rules);
    rules.flat_map(|r| &r.exprs).any(|e| matches!(e, Expr::Lookup { set: s, .. } if s == set))
}
