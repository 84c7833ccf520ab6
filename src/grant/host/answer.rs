//! What the host's firewall as a whole does with a door's packet: every base chain on the
//! hook votes, in priority order, and a drop anywhere is final.

use std::fmt;

use super::domain::Domain;
use super::eval::{End, Members, Outcome, Run};
use super::model::{Hook, HostRuleset, Table, nfproto};
use super::probe::Probe;

/// Where a packet is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    /// `table inet firewalld`.
    pub table: String,
    /// The chain whose rule (or policy) drops it.
    pub chain: String,
    /// The base chain the packet entered (the chain above, or one that jumped there).
    pub base: String,
    /// The rule's handle; `None` when it is the base chain's policy.
    pub handle: Option<u64>,
    /// `reject` rather than `drop`.
    pub reject: bool,
    /// The rule's comment (fw4's say what they are for).
    pub comment: Option<String>,
}

/// The host's answer for one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Every base chain lets it through.
    Accepted,
    /// A chain drops it, whoever the grantee is.
    Dropped(Blocker),
    /// A chain drops it for the grantees in the first domain, and spares those in the second.
    DroppedFor(Blocker, Domain, Domain),
    /// It depends on something knockd cannot know, named in `what`.
    CannotTell {
        /// Where the question arose.
        table: String,
        /// The chain.
        chain: String,
        /// What knockd could not know: `the membership of @f2b-sshd`, `xtables match limit`.
        what: String,
    },
}

impl Answer {
    /// Whether the packet gets through (as far as knockd can tell).
    pub fn is_accepted(&self) -> bool {
        matches!(self, Answer::Accepted)
    }

    /// Whether a chain drops it, for some or all grantees.
    pub fn is_dropped(&self) -> bool {
        matches!(self, Answer::Dropped(_) | Answer::DroppedFor(..))
    }
}

/// Runs the packet through every base chain on `hook` of every table that sees it, but the
/// one `skip` names (knockd's own: what it does is known); before them, the prerouting chains
/// it passes first (a packet to this host, or forwarded untranslated: a DNAT'd one looked
/// different there).
pub fn answer(
    ruleset: &HostRuleset,
    hook: Hook,
    probe: &Probe,
    skip: Option<(u8, &str)>,
    members: Members<'_>,
) -> Answer {
    let translated = probe.ct_status & super::probe::CT_STATUS_DNAT != 0;
    let order = |h: Hook| match h {
        Hook::Prerouting if !translated && matches!(hook, Hook::Input | Hook::Forward) => Some(0),
        h if h == hook => Some(1),
        _ => None,
    };
    let mut chains: Vec<((u8, i32), &Table, usize)> = Vec::new();
    for table in &ruleset.tables {
        let family_sees = table.family == nfproto::INET || table.family == probe.nfproto();
        if table.dormant || !family_sees || skip == Some((table.family, table.name.as_str())) {
            continue;
        }
        for (i, chain) in table.chains.iter().enumerate() {
            if let Some((base, at)) = chain.base.as_ref().and_then(|b| Some((b, order(b.hook)?))) {
                chains.push(((at, base.priority), table, i));
            }
        }
    }
    chains.sort_by_key(|(at, _, _)| *at);
    let mut partial: Option<Answer> = None;
    let mut unknown: Option<Answer> = None;
    for (_, table, i) in chains {
        let outcomes = Run::chain(table, i, probe, members);
        match classify(table, &table.chains[i].name, &outcomes, &probe.saddr) {
            a @ Answer::Dropped(_) => return a,
            a @ Answer::DroppedFor(..) => _ = partial.get_or_insert(a),
            a @ Answer::CannotTell { .. } => _ = unknown.get_or_insert(a),
            Answer::Accepted => {}
        }
    }
    partial.or(unknown).unwrap_or(Answer::Accepted)
}

/// The source addresses every world drops: at a guess, what both sides drop; at a split of
/// the addresses, what either side drops. `outcomes` share their trail up to `depth`.
fn surely_dropped(outcomes: &[&Outcome], depth: usize, bytes: u8) -> Domain {
    let Some(fork) = outcomes.first().and_then(|o| o.trail.get(depth)).copied() else {
        return match outcomes.first() {
            Some(o) if matches!(o.end, End::Drop { .. }) => o.doms.src.clone(),
            _ => Domain::none(bytes),
        };
    };
    let mut sides: Vec<u16> = outcomes.iter().filter_map(|o| o.trail.get(depth).map(|f| f.side)).collect();
    sides.sort_unstable();
    sides.dedup();
    let mut total: Option<Domain> = None;
    for side in sides {
        let group: Vec<&Outcome> =
            outcomes.iter().filter(|o| o.trail.get(depth).is_some_and(|f| f.side == side)).copied().collect();
        let dropped = surely_dropped(&group, depth + 1, bytes);
        total = Some(match total {
            None => dropped,
            Some(t) if fork.guess => t.intersect(&dropped),
            Some(t) => t.union(&dropped),
        });
    }
    total.unwrap_or_else(|| Domain::none(bytes))
}

/// One base chain's answer from the ends of its paths.
fn classify(table: &Table, base: &str, outcomes: &[Outcome], grantees: &Domain) -> Answer {
    let blocker = |o: &Outcome| Blocker {
        table: table.title(),
        chain: o.place.chain.clone(),
        base: base.to_owned(),
        handle: o.place.handle,
        reject: matches!(o.end, End::Drop { reject: true }),
        comment: o.place.comment.clone(),
    };
    let all: Vec<&Outcome> = outcomes.iter().collect();
    let sure = surely_dropped(&all, 0, grantees.bytes);
    if !sure.is_empty() {
        let drops =
            outcomes.iter().filter(|o| matches!(o.end, End::Drop { .. }) && !o.doms.src.intersect(&sure).is_empty());
        let mut drops: Vec<&Outcome> = drops.collect();
        drops.sort_by_key(|o| o.because.is_some());
        if let Some(first) = drops.first() {
            let spared = grantees.minus(&sure);
            return if spared.is_empty() {
                Answer::Dropped(blocker(first))
            } else {
                Answer::DroppedFor(blocker(first), sure, spared)
            };
        }
    }
    let unsure = outcomes.iter().find_map(|o| match (&o.end, &o.because) {
        (End::Unknown(what), _) => Some((o, what.clone())),
        (End::Drop { .. }, Some(why)) => Some((o, why.clone())),
        _ => None,
    });
    match unsure {
        Some((o, what)) => Answer::CannotTell { table: table.title(), chain: o.place.chain.clone(), what },
        None => Answer::Accepted,
    }
}

impl fmt::Display for Blocker {
    /// `table inet firewalld chain filter_INPUT rejects it (handle 12)`, or `... drops it
    /// (its policy)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.reject { "rejects" } else { "drops" };
        write!(f, "{} chain {} {verb} it", self.table, self.chain)?;
        match self.handle {
            Some(h) => write!(f, " (handle {h})"),
            None => f.write_str(" (its policy)"),
        }
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Accepted => f.write_str("accepted"),
            Answer::Dropped(b) => write!(f, "{b}"),
            Answer::DroppedFor(b, who, spared) if spared.ranges().len() < who.ranges().len() => {
                write!(f, "{b} for every grantee but those from {spared}")
            }
            Answer::DroppedFor(b, who, _) => write!(f, "{b} for grantees from {who}"),
            Answer::CannotTell { table, chain, what } => {
                write!(f, "{table} chain {chain} may drop it: knockd cannot tell ({what})")
            }
        }
    }
}
