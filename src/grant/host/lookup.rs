//! Set and map lookups in the evaluation. A lookup whose key is the grantee's address splits
//! the addresses: one path per verdict the elements give (not one per element: a blocklist of
//! 50,000 addresses is two paths, found and not found), and the addresses that find none go
//! on. An inverted lookup (`ip saddr != { ... }`) keeps both sides too: the addresses that
//! find an element do not match the rule, and still meet the rules after it.

use std::rc::Rc;

use super::cond::{self, Truth};
use super::domain::Domain;
use super::eval::{End, Fork, RuleEnd, Run, SKIP_RULE, State};
use super::model::{Element, Set, Verdict};
use super::probe::{Byte, Field, unknown};

/// What a lookup does for some addresses.
enum Side {
    /// They find an element: the rule goes on (a set), or takes its verdict (a verdict map).
    Found(Option<Verdict>),
    /// They find none (or, inverted, they find one): the rule does not match.
    NoMatch,
    /// Inverted, they find none: the rule goes on.
    Holds,
}

impl Run<'_> {
    /// `lookup` of register `sreg` in set `name`, into `dreg` for a map (0: a verdict map).
    pub(super) fn lookup(
        &mut self,
        s: &mut State,
        sreg: u32,
        name: &str,
        dreg: Option<u32>,
        invert: bool,
    ) -> Result<Option<RuleEnd>, ()> {
        let table = self.table;
        let Some(set) = table.set(name) else { return Err(()) };
        let bytes = s.regs.read(sreg, set.key_len as usize).ok_or(())?.to_vec();
        // What knockd could not know: what loaded the key (`meta mark`), else who is in the set.
        let loaded = s.regs.why(sreg, set.key_len as usize);
        let known_elements = set.elements.is_some() && loaded != "an expression";
        let why = if known_elements { loaded } else { format!("the membership of @{name}") };
        if set.elements.is_none() {
            let whole_source = bytes.iter().any(|b| matches!(b, Byte::Addr { field: Field::Src, .. }));
            let truth = if whole_source && (self.members)(table, name) { Truth::Yes } else { Truth::Unknown };
            if truth == Truth::Unknown && dreg == Some(0) {
                return self.unknown_verdict(s, set, why);
            }
            let truth = if invert { cond::negate(truth, &s.doms) } else { truth };
            self.decide(s, truth, || why)?;
            return Ok(None);
        }
        let key: Option<Vec<u8>> = bytes
            .iter()
            .map(|b| if let Byte::Known { value, known: 0xff } = b { Some(*value) } else { None })
            .collect();
        if let Some(key) = key {
            return match (cond::find(set, &key), invert) {
                (Some(_), true) | (None, false) => Err(()),
                (None, true) => Ok(None),
                (Some(e), false) => self.found(s, dreg, e.verdict.clone()),
            };
        }
        let split = cond::split_lookup(set, &bytes, &s.doms).and_then(|(field, parts)| {
            let sides = sides(s.doms.of(field), parts, dreg, invert)?;
            Some((field, sides))
        });
        match split {
            Some((field, sides)) => self.take_sides(s, field, sides, dreg),
            None if dreg == Some(0) => self.unknown_verdict(s, set, why),
            None => {
                self.decide(s, Truth::Unknown, || why)?;
                Ok(None)
            }
        }
    }

    /// Queues a path for every side but one, which `s` takes.
    fn take_sides(
        &mut self,
        s: &mut State,
        field: Field,
        mut sides: Vec<(Domain, Side)>,
        dreg: Option<u32>,
    ) -> Result<Option<RuleEnd>, ()> {
        let Some((mine, side)) = sides.pop() else { return Err(()) };
        if !sides.is_empty() {
            let id = self.forks;
            self.forks += 1;
            for (n, (dom, side)) in sides.into_iter().enumerate() {
                let mut path = s.clone();
                path.doms = s.doms.with(field, dom);
                path.trail.push(Fork { id, side: u16::try_from(n + 1).unwrap_or(u16::MAX), guess: false });
                match side {
                    Side::Found(Some(v)) if dreg == Some(0) => path.pending = Some(v),
                    Side::Found(_) if dreg.is_some_and(|d| d != 0) => {
                        let _ = path.regs.load(dreg.unwrap_or(1), unknown(16), "a map's value");
                    }
                    Side::Found(_) | Side::Holds => {}
                    Side::NoMatch => path.expr = SKIP_RULE,
                }
                self.work.push(path);
            }
            s.trail.push(Fork { id, side: 0, guess: false });
        }
        s.doms = s.doms.with(field, mine);
        match side {
            Side::NoMatch => Err(()),
            Side::Holds => Ok(None),
            Side::Found(verdict) => self.found(s, dreg, verdict),
        }
    }

    /// A verdict map whose key knockd cannot know: any of its verdicts may be the one (a
    /// guess each), or none.
    fn unknown_verdict(&mut self, s: &mut State, set: &Set, why: String) -> Result<Option<RuleEnd>, ()> {
        let why: Rc<str> = Rc::from(why);
        let Some(elements) = set.elements.as_deref() else {
            s.because.get_or_insert(why.clone());
            // Its elements were not read: the rule may give any verdict.
            let mut rest = s.clone();
            rest.expr = SKIP_RULE;
            self.fork(s, rest, true);
            return Ok(Some(RuleEnd::Ended(End::Unknown(why.to_string()))));
        };
        let mut verdicts: Vec<Verdict> = Vec::new();
        for v in elements.iter().filter_map(|e| e.verdict.clone()) {
            if !verdicts.contains(&v) {
                verdicts.push(v);
            }
        }
        if verdicts.is_empty() {
            return Err(());
        }
        s.because.get_or_insert(why);
        let id = self.forks;
        self.forks += 1;
        for (n, v) in verdicts.into_iter().enumerate() {
            let mut path = s.clone();
            path.pending = Some(v);
            path.trail.push(Fork { id, side: u16::try_from(n + 1).unwrap_or(u16::MAX), guess: true });
            self.work.push(path);
        }
        s.trail.push(Fork { id, side: 0, guess: true });
        Err(())
    }
}

/// Inclusive ranges of addresses, as numbers.
type Ranges = Vec<(u128, u128)>;

/// Verdict-map sides at most; past that, the lookup is "cannot tell".
const MAX_SIDES: usize = 64;

/// The addresses of `current` that each side of the lookup is about, none empty; `None` when
/// they are too many or too fragmented to follow.
fn sides(
    current: &Domain,
    parts: Vec<(Domain, &Element)>,
    dreg: Option<u32>,
    invert: bool,
) -> Option<Vec<(Domain, Side)>> {
    let mut groups: Vec<(Option<Verdict>, Ranges)> = Vec::new();
    for (dom, e) in parts {
        let verdict = if dreg == Some(0) { e.verdict.clone() } else { None };
        if dreg == Some(0) && verdict.is_none() {
            continue; // an element without a verdict: as if not found
        }
        match groups.iter_mut().find(|(v, _)| *v == verdict) {
            Some((_, ranges)) => ranges.extend_from_slice(dom.ranges()),
            None => groups.push((verdict, dom.ranges().to_vec())),
        }
    }
    if groups.len() > MAX_SIDES {
        return None;
    }
    let mut claimed = Domain::none(current.bytes);
    let mut out = Vec::new();
    for (verdict, ranges) in groups {
        // Disjoint, as the kernel's elements are; the first one claims an address.
        let dom = Domain::from_ranges(current.bytes, ranges).intersect(current).minus(&claimed);
        claimed = claimed.union(&dom);
        if !dom.is_empty() {
            out.push((dom, Side::Found(verdict)));
        }
    }
    let rest = current.minus(&claimed);
    if invert {
        out = if claimed.is_empty() { Vec::new() } else { vec![(claimed, Side::NoMatch)] };
        if !rest.is_empty() {
            out.push((rest, Side::Holds));
        }
    } else if !rest.is_empty() {
        out.push((rest, Side::NoMatch));
    }
    if out.iter().any(|(d, _)| d.is_too_fragmented()) {
        return None;
    }
    Some(out)
}
