//! knockd's objects as the kernel holds them, wherever they live (a table of knockd's own, or
//! inside fw4): read back after an install to tell a change from outside (`drift`), and read
//! before one to know what it must remove (`plan`): sets and chains no door needs now, jumps
//! to be replaced, an earlier placement's objects.

use super::install::Plan;
use super::netlink::NetlinkFirewall;
use super::nlmsg::{F_ACK, F_DUMP, Message, Request};
use super::ruleset::{Place, Ruleset};
use crate::config::TableFamily;
use crate::grant::FirewallError;

// NFT_MSG_GET* and attribute numbers (linux/netfilter/nf_tables.h).
const GETCHAIN: u16 = 4;
const GETRULE: u16 = 7;
const TABLE_ATTR: u16 = 1;
const CHAIN_NAME: u16 = 3;
const CHAIN_HOOK: u16 = 4;
const CHAIN_POLICY: u16 = 5;
const RULE_CHAIN: u16 = 2;
const RULE_HANDLE: u16 = 3;
const RULE_EXPRESSIONS: u16 = 4;
const RULE_USERDATA: u16 = 7;
/// `NFT_TABLE_F_DORMANT`.
const TABLE_F_DORMANT: u32 = 1;

/// What one of knockd's chains holds: each rule's expressions, and the chain's hook, priority
/// and policy (a `policy drop` put on it would drop every packet no door is about).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ChainState {
    rules: Vec<Vec<u8>>,
    base: Vec<u8>,
}

/// One rule, as a dump reports it.
struct RuleInfo {
    chain: String,
    handle: u64,
    exprs: Vec<u8>,
    comment: Option<String>,
}

fn text(m: &Message<'_>, kind: u16) -> Option<String> {
    m.attrs().get(kind).map(|a| String::from_utf8_lossy(a.str()).into_owned())
}

impl NetlinkFirewall {
    /// The rules of `table` (of one chain when given), in order.
    fn rules_of(&mut self, table: &str, chain: Option<&str>) -> Result<Vec<RuleInfo>, FirewallError> {
        let mut request = Request::new(GETRULE, TableFamily::Inet.nfproto(), F_DUMP, self.seq()).str(TABLE_ATTR, table);
        if let Some(chain) = chain {
            request = request.str(RULE_CHAIN, chain);
        }
        let mut rules = Vec::new();
        let each = |m: &Message<'_>| {
            let attr = |kind| m.attrs().get(kind);
            rules.push(RuleInfo {
                chain: text(m, RULE_CHAIN).unwrap_or_default(),
                handle: attr(RULE_HANDLE).and_then(|a| Some(u64::from_be_bytes(a.data.try_into().ok()?))).unwrap_or(0),
                exprs: attr(RULE_EXPRESSIONS).map(|a| a.data.to_vec()).unwrap_or_default(),
                comment: attr(RULE_USERDATA).and_then(|a| super::dump::comment(a.data)),
            });
        };
        self.query(request, each, || format!("list the rules of table inet {table}"))?;
        // An older kernel may dump every table's rules: keep the ones asked for.
        Ok(rules.into_iter().filter(|r| chain.is_none_or(|c| r.chain == c)).collect())
    }

    /// The chains of the `inet` table `table`.
    fn chain_names(&mut self, table: &str) -> Result<Vec<String>, FirewallError> {
        let request = Request::new(GETCHAIN, TableFamily::Inet.nfproto(), F_DUMP, self.seq()).str(TABLE_ATTR, table);
        let mut names = Vec::new();
        let each = |m: &Message<'_>| {
            if text(m, TABLE_ATTR).as_deref() == Some(table) {
                names.extend(text(m, CHAIN_NAME));
            }
        };
        self.query(request, each, || format!("list the chains of table inet {table}"))?;
        Ok(names)
    }

    /// The rules and the hook, priority and policy of `chain` in `table`.
    pub(super) fn chain_state(&mut self, table: &str, chain: &str) -> Result<ChainState, FirewallError> {
        let rules = self.rules_of(table, Some(chain))?.into_iter().map(|r| r.exprs).collect();
        let request = Request::new(GETCHAIN, TableFamily::Inet.nfproto(), F_ACK, self.seq())
            .str(TABLE_ATTR, table)
            .str(CHAIN_NAME, chain);
        let mut base = Vec::new();
        let each = |m: &Message<'_>| {
            for kind in [CHAIN_HOOK, CHAIN_POLICY] {
                base.extend(m.attrs().get(kind).map(|a| a.data.to_vec()).unwrap_or_default());
            }
        };
        self.query(request, each, || format!("look up chain inet {table} {chain}"))?;
        Ok(ChainState { rules, base })
    }

    /// What each of knockd's chains holds now (right after an install: what it must stay).
    pub(super) fn snapshot(&mut self, ruleset: &Ruleset) -> Result<Vec<(String, ChainState)>, FirewallError> {
        let names: Vec<String> = ruleset.chains().map(|(hook, _)| ruleset.chain_name(hook)).collect();
        names.into_iter().map(|name| Ok((name.clone(), self.chain_state(&ruleset.table, &name)?))).collect()
    }

    /// knockd's jump rules in fw4's chains (their comment is knockd's table name).
    fn jumps(&mut self, own: &str) -> Result<Vec<(String, u64)>, FirewallError> {
        let rules = self.rules_of("fw4", None)?;
        Ok(rules.into_iter().filter(|r| r.comment.as_deref() == Some(own)).map(|r| (r.chain, r.handle)).collect())
    }

    /// Inside fw4: fw4's table, and the chains knockd's jump from, must be there.
    fn fw4_ready(&mut self, ruleset: &Ruleset) -> Result<(), FirewallError> {
        let chains = self.chain_names("fw4")?;
        for (hook, _) in ruleset.chains() {
            let entry = ruleset.entry(hook).unwrap_or_default();
            if !chains.contains(&entry) {
                let Place::Fw4 { zone } = &ruleset.place else { continue };
                let operation = format!(
                    "find chain {entry} in table inet fw4: is fw4 running, and does it have a zone `{zone}` \
                     (/etc/config/firewall)?"
                );
                return Err(FirewallError::NotFound { operation });
            }
        }
        Ok(())
    }

    /// What installing `ruleset` (after `previous`) must remove besides.
    pub(super) fn plan(&mut self, ruleset: &Ruleset, previous: Option<&Ruleset>) -> Result<Plan, FirewallError> {
        let mut plan = Plan::default();
        let declared_sets: Vec<&str> = ruleset.sets.iter().map(|s| s.name.as_str()).collect();
        let declared_chains: Vec<String> = ruleset.chains().map(|(h, _)| ruleset.chain_name(h)).collect();
        let prefix = format!("{}_", ruleset.own);
        let ours = |name: &str| ruleset.owns_table() || name.starts_with(&prefix);
        if !ruleset.owns_table() {
            self.fw4_ready(ruleset)?;
            plan.jumps = self.jumps(&ruleset.own)?;
        }
        let sets = self.set_names(&ruleset.table)?.unwrap_or_default();
        plan.stale_sets = sets.into_iter().filter(|s| ours(s) && !declared_sets.contains(&s.as_str())).collect();
        if ruleset.owns_table() && !self.table_exists(&ruleset.table)? {
            return self.plan_previous(plan, ruleset, previous);
        }
        let chains = self.chain_names(&ruleset.table)?;
        plan.stale_chains = chains.into_iter().filter(|c| ours(c) && !declared_chains.contains(c)).collect();
        self.plan_previous(plan, ruleset, previous)
    }

    /// An earlier placement's objects: a renamed table of knockd's own, or objects in fw4.
    fn plan_previous(
        &mut self,
        mut plan: Plan,
        ruleset: &Ruleset,
        previous: Option<&Ruleset>,
    ) -> Result<Plan, FirewallError> {
        let Some(prev) =
            previous.filter(|p| (&p.place, &p.table, &p.own) != (&ruleset.place, &ruleset.table, &ruleset.own))
        else {
            return Ok(plan);
        };
        if prev.owns_table() {
            if prev.table != ruleset.table && self.table_exists(&prev.table)? {
                plan.old_table = Some(prev.table.clone());
            }
        } else if self.table_exists("fw4")? && (ruleset.owns_table() || prev.own != ruleset.own) {
            let prefix = format!("{}_", prev.own);
            let chains = self.chain_names("fw4")?.into_iter().filter(|c| c.starts_with(&prefix)).collect();
            let sets =
                self.set_names("fw4")?.unwrap_or_default().into_iter().filter(|s| s.starts_with(&prefix)).collect();
            plan.jumps.extend(self.jumps(&prev.own)?);
            plan.old_fw4 = Some((chains, sets));
        }
        Ok(plan)
    }

    /// How the kernel differs from what the last install of `ruleset` left, if it does: a
    /// table, set or chain removed, a chain's rules or policy changed, a jump from fw4's
    /// chains gone. Inside fw4, fw4's table being gone is an error (`NotFound`): knockd waits.
    pub fn drift(&mut self, ruleset: &Ruleset) -> Result<Option<String>, FirewallError> {
        let table = &ruleset.table;
        let Some(sets) = self.set_names(table)? else {
            if !ruleset.owns_table() {
                return Err(FirewallError::NotFound {
                    operation: "find table inet fw4 (fw4 is stopped or restarting)".into(),
                });
            }
            return Ok(Some(format!("table inet {table} was removed")));
        };
        if let Some(missing) = ruleset.sets.iter().find(|s| !sets.contains(&s.name)) {
            return Ok(Some(format!("set {} of table inet {table} was removed", missing.name)));
        }
        // A dormant table's chains are unhooked: every guard is down, though all is in place.
        // The install's table message (flags 0) wakes it. (fw4's own table is fw4's business.)
        let dormant = self.table_flags(TableFamily::Inet, table)?.unwrap_or(0) & TABLE_F_DORMANT != 0;
        if ruleset.owns_table() && dormant {
            return Ok(Some(format!("table inet {table} was made dormant (its guards were down)")));
        }
        for (hook, rules) in ruleset.chains() {
            let name = ruleset.chain_name(hook);
            let now = match self.chain_state(table, &name) {
                Ok(state) => state,
                Err(FirewallError::NotFound { .. }) => {
                    return Ok(Some(format!("chain inet {table} {name} was removed")));
                }
                Err(e) => return Err(e),
            };
            let installed = self.installed.iter().find(|(n, _)| *n == name).map(|(_, s)| s);
            match installed {
                Some(was) if was.base != now.base => {
                    return Ok(Some(format!("the policy, hook or priority of chain inet {table} {name} was changed")));
                }
                Some(was) if *was != now || now.rules.len() != rules.len() => {
                    let (n, expected) = (now.rules.len(), rules.len());
                    return Ok(Some(format!(
                        "the rules of chain inet {table} {name} were changed ({n} rules, {expected} expected)"
                    )));
                }
                _ => {}
            }
            if let Some(entry) = ruleset.entry(hook) {
                let first = self.rules_of(table, Some(&entry))?.into_iter().next();
                if first.is_none_or(|r| r.comment.as_deref() != Some(ruleset.own.as_str())) {
                    return Ok(Some(format!(
                        "the jump to {name} is no longer the first rule of chain inet fw4 {entry}"
                    )));
                }
            }
        }
        Ok(None)
    }
}
