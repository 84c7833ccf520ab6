//! Runs a base chain for the probe, as the kernel would, along every path that what knockd
//! cannot know leaves open: each ends in accept, drop or "cannot tell", for some of the
//! addresses in play.

use std::rc::Rc;

use super::cond::{self, Doms, Truth};
use super::model::{Base, Data, Expr, Policy, Rule, Table, Verdict};
use super::probe::{Byte, Probe, unknown};
use super::regs::{self, Loaded, Regs};

/// Paths explored at most per base chain; past that, the chain's answer is "cannot tell". Every
/// path carries the forks it took, so paths times forks is what this bounds: about 8 MB.
const MAX_PATHS: usize = 1024;
/// Rules run at most per base chain, over all paths.
const MAX_STEPS: usize = 200_000;
/// The kernel's jump stack (`NFT_JUMP_STACK_SIZE`).
const MAX_DEPTH: usize = 16;
/// What a path that met the budget says.
const TOO_MANY: &str = "the ruleset has too many paths to follow";

/// How a path ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Accepted by this chain (the next base chain still votes).
    Accept,
    /// Dropped, or rejected: final.
    Drop {
        /// With an answer (`reject`), not silently.
        reject: bool,
    },
    /// A verdict knockd cannot follow, or the evaluation gave up; the text says which.
    Unknown(String),
}

/// Where a path ended: a rule, or the base chain's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The chain of the rule (for the policy, the base chain).
    pub chain: String,
    /// The rule's handle; `None` for the policy.
    pub handle: Option<u64>,
    /// The rule's comment.
    pub comment: Option<String>,
}

/// One path's end, for the addresses it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What happened.
    pub end: End,
    /// Where.
    pub place: Place,
    /// For which source and destination addresses.
    pub doms: Doms,
    /// The first thing on the path knockd could not know, if any: the path is one guess.
    pub because: Option<String>,
    /// The forks the path took, in order: what a chain does for sure is what it does on
    /// both sides of every fork knockd cannot decide.
    pub trail: Vec<Fork>,
}

/// A fork a path took: which one (by number), which side, and whether it was a guess (knockd
/// could not know) or a split of the addresses (both sides are real, for different ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fork {
    /// The fork's number in this evaluation.
    pub id: u32,
    /// The side taken.
    pub side: u16,
    /// A guess rather than a split of the addresses.
    pub guess: bool,
}

#[derive(Clone)]
struct Frame {
    chain: usize,
    rule: usize,
}

#[derive(Clone)]
pub(super) struct State {
    frames: Vec<Frame>,
    /// The next expression of the current rule; [`SKIP_RULE`] when the rule does not match.
    pub(super) expr: usize,
    pub(super) regs: Regs,
    pub(super) doms: Doms,
    pub(super) because: Option<Rc<str>>,
    /// A verdict a map lookup gave on this path, to apply before anything else.
    pub(super) pending: Option<Verdict>,
    pub(super) trail: Vec<Fork>,
}

/// An expression index past any rule's end: a path queued with it does not match the rule it
/// is in (an inverted lookup's addresses that find an element).
pub(super) const SKIP_RULE: usize = usize::MAX;

/// The sets the grantee is known to be in (the door's own sets): asked with the table and
/// the set's name.
pub type Members<'a> = &'a dyn Fn(&Table, &str) -> bool;

/// Evaluation of one base chain of one table.
pub struct Run<'a> {
    pub(super) table: &'a Table,
    probe: &'a Probe,
    pub(super) members: Members<'a>,
    /// The base chain the packet entered: its policy decides when a chain reached by `goto`
    /// runs out of rules or returns.
    base: usize,
    pub(super) work: Vec<State>,
    outcomes: Vec<Outcome>,
    steps: usize,
    pub(super) forks: u32,
}

pub(super) enum RuleEnd {
    NoMatch,
    Verdict(Verdict),
    Ended(End),
}

impl<'a> Run<'a> {
    /// Every path through the base chain `chain` (an index into the table's chains).
    pub fn chain(table: &'a Table, chain: usize, probe: &'a Probe, members: Members<'a>) -> Vec<Outcome> {
        let doms = Doms { src: probe.saddr.clone(), dst: probe.daddr.clone() };
        let frames = vec![Frame { chain, rule: 0 }];
        let start =
            State { frames, expr: 0, regs: Regs::default(), doms, because: None, pending: None, trail: Vec::new() };
        let mut run =
            Run { table, probe, members, base: chain, work: vec![start], outcomes: Vec::new(), steps: 0, forks: 0 };
        while let Some(state) = run.work.pop() {
            if run.exhausted() {
                run.give_up(state, TOO_MANY);
                break;
            }
            run.follow(state);
        }
        run.outcomes
    }

    /// Whether the budget is spent: checked at every step, since one path can fork at every
    /// rule of a long chain.
    fn exhausted(&self) -> bool {
        self.outcomes.len() + self.work.len() > MAX_PATHS || self.steps > MAX_STEPS
    }

    fn give_up(&mut self, state: State, why: &str) {
        let place = self.place(&state, None);
        self.end(state, End::Unknown(why.to_owned()), place);
    }

    fn place(&self, state: &State, rule: Option<&Rule>) -> Place {
        let frame = state.frames.last().map_or(0, |f| f.chain);
        let chain = self.table.chains.get(frame).map_or_else(String::new, |c| c.name.clone());
        Place { chain, handle: rule.map(|r| r.handle), comment: rule.and_then(|r| r.comment.clone()) }
    }

    fn end(&mut self, state: State, end: End, place: Place) {
        let because = state.because.map(|b| b.to_string());
        self.outcomes.push(Outcome { end, place, doms: state.doms, because, trail: state.trail });
    }

    /// Follows one path until it ends, queueing the paths it forks.
    fn follow(&mut self, mut s: State) {
        loop {
            self.steps += 1;
            if self.exhausted() {
                return self.give_up(s, TOO_MANY);
            }
            let Some(frame) = s.frames.last().cloned() else { return };
            let chain = &self.table.chains[frame.chain];
            let rule = chain.rules.get(frame.rule);
            let verdict = match (s.pending.take(), rule) {
                (Some(v), _) => v,
                (None, None) if s.frames.len() == 1 => return self.policy(s),
                (None, None) => {
                    s.frames.pop();
                    continue;
                }
                (None, Some(rule)) => match self.rule(&mut s, rule) {
                    RuleEnd::NoMatch => Verdict::Continue,
                    RuleEnd::Verdict(v) => v,
                    RuleEnd::Ended(end) => {
                        let place = self.place(&s, Some(rule));
                        return self.end(s, end, place);
                    }
                },
            };
            s.expr = 0;
            if let Some(f) = s.frames.last_mut() {
                f.rule += 1;
            }
            match self.apply(&mut s, verdict, rule) {
                Some(()) => {}
                None => return,
            }
        }
    }

    /// Applies a verdict; `None` when the path has ended.
    fn apply(&mut self, s: &mut State, verdict: Verdict, rule: Option<&Rule>) -> Option<()> {
        let place_of = |run: &Self, s: &State| {
            // The rule that gave the verdict sits one before the (advanced) position.
            let mut at = s.clone();
            if let Some(f) = at.frames.last_mut() {
                f.rule = f.rule.saturating_sub(1);
            }
            run.place(&at, rule)
        };
        match verdict {
            Verdict::Continue | Verdict::Break => Some(()),
            Verdict::Accept | Verdict::Drop | Verdict::Other(_) => {
                let place = place_of(self, s);
                let end = match verdict {
                    Verdict::Accept => End::Accept,
                    Verdict::Drop => End::Drop { reject: false },
                    other => End::Unknown(format!("{other}")),
                };
                self.end(s.clone(), end, place);
                None
            }
            Verdict::Return if s.frames.len() == 1 => {
                self.policy(s.clone());
                None
            }
            Verdict::Return => {
                s.frames.pop();
                Some(())
            }
            Verdict::Jump(name) | Verdict::Goto(name) if s.frames.len() >= MAX_DEPTH => {
                let _ = name;
                self.give_up(s.clone(), "jumps nest deeper than the kernel allows");
                None
            }
            Verdict::Jump(name) => self.enter(s, &name, false),
            Verdict::Goto(name) => self.enter(s, &name, true),
        }
    }

    fn enter(&mut self, s: &mut State, name: &str, goto: bool) -> Option<()> {
        let Some(chain) = self.table.chains.iter().position(|c| c.name == name) else {
            self.give_up(s.clone(), &format!("a jump to chain {name}, which does not exist"));
            return None;
        };
        if goto {
            s.frames.pop();
        }
        s.frames.push(Frame { chain, rule: 0 });
        Some(())
    }

    /// The base chain's policy: also after a `goto` (which leaves no frame to return to) ran
    /// out of rules or returned, as the kernel does.
    fn policy(&mut self, s: State) {
        let base = self.table.chains[self.base].base.as_ref();
        let end = match base.map(|b: &Base| b.policy) {
            Some(Policy::Drop) => End::Drop { reject: false },
            _ => End::Accept,
        };
        let place = Place { chain: self.table.chains[self.base].name.clone(), handle: None, comment: None };
        self.end(s, end, place);
    }

    /// Runs a rule's expressions from `s.expr`.
    fn rule(&mut self, s: &mut State, rule: &Rule) -> RuleEnd {
        while let Some(expr) = rule.exprs.get(s.expr) {
            s.expr += 1;
            match self.expr(s, expr) {
                Ok(None) => {}
                Ok(Some(end)) => return end,
                Err(()) => return RuleEnd::NoMatch,
            }
        }
        RuleEnd::NoMatch
    }

    /// One expression: `Ok(None)` to go on, `Ok(Some)` when the rule ends, `Err` when it
    /// does not match.
    fn expr(&mut self, s: &mut State, expr: &Expr) -> Result<Option<RuleEnd>, ()> {
        let probe = self.probe;
        match expr {
            Expr::Immediate { dreg: 0, data: Data::Verdict(v) } => return Ok(Some(RuleEnd::Verdict(v.clone()))),
            Expr::Immediate { dreg, data: Data::Value(v) } => self.load(s, *dreg, super::probe::known(v), "a value")?,
            Expr::Immediate { .. } => return Err(()),
            Expr::Payload { base, offset, len, dreg } => {
                let name = regs::payload_name(*base, *offset, *len);
                self.load(s, *dreg, regs::payload(probe, *base, *offset, *len), &name)?;
            }
            Expr::Meta { key, dreg } => match regs::meta(probe, *key) {
                Some(Loaded::Bytes(b)) => self.load(s, *dreg, b, &regs::meta_name(*key))?,
                Some(Loaded::Break) => return Err(()),
                None => self.load(s, *dreg, unknown(16), &regs::meta_name(*key))?,
            },
            Expr::Ct { key, dreg } => {
                let bytes = regs::ct(probe, *key).unwrap_or_else(|| unknown(16));
                self.load(s, *dreg, bytes, &regs::ct_name(*key))?;
            }
            Expr::Unknown { what, dreg } => self.load(s, *dreg, unknown(16), what)?,
            Expr::Fib { result, flags, dreg } => {
                let bytes = regs::fib(probe, *result, *flags).unwrap_or_else(|| unknown(16));
                self.load(s, *dreg, bytes, "fib")?;
            }
            Expr::Bitwise { sreg, dreg, len, mask, xor } => self.bitwise(s, *sreg, *dreg, *len, mask, xor)?,
            Expr::Cmp { sreg, op, data } => {
                let bytes = s.regs.read(*sreg, data.len()).ok_or(())?.to_vec();
                let truth = cond::cmp(&bytes, *op, data, &s.doms);
                let why = why_if_unknown(s, &truth, *sreg, data.len());
                self.decide(s, truth, || why)?;
            }
            Expr::Range { sreg, eq, from, to } => {
                let bytes = s.regs.read(*sreg, from.len()).ok_or(())?.to_vec();
                let truth = cond::range(&bytes, *eq, from, to, &s.doms);
                let why = why_if_unknown(s, &truth, *sreg, from.len());
                self.decide(s, truth, || why)?;
            }
            Expr::Lookup { sreg, set, dreg, invert } => return self.lookup(s, *sreg, set, *dreg, *invert),
            Expr::Reject => return Ok(Some(RuleEnd::Ended(End::Drop { reject: true }))),
            Expr::Nat => return Ok(Some(RuleEnd::Verdict(Verdict::Accept))),
            Expr::Condition { what } => self.decide(s, Truth::Unknown, || what.clone())?,
            Expr::Opaque { what } => return Ok(Some(RuleEnd::Ended(End::Unknown(what.clone())))),
            Expr::Effect => {}
        }
        Ok(None)
    }

    fn load(&mut self, s: &mut State, dreg: u32, bytes: Vec<Byte>, why: &str) -> Result<(), ()> {
        s.regs.load(dreg, bytes, why).ok_or(())
    }

    fn bitwise(&mut self, s: &mut State, sreg: u32, dreg: u32, len: u32, mask: &[u8], xor: &[u8]) -> Result<(), ()> {
        let src = s.regs.read(sreg, len as usize).ok_or(())?.to_vec();
        let why = s.regs.why(sreg, len as usize);
        let out = src
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let (m, x) = (mask.get(i).copied().unwrap_or(0xff), xor.get(i).copied().unwrap_or(0));
                match *b {
                    Byte::Known { value, known } => {
                        let known = (known & m) | !m;
                        Byte::Known { value: ((value & m) ^ x) & known, known }
                    }
                    Byte::Addr { field, index, mask } if x == 0 => Byte::Addr { field, index, mask: mask & m },
                    Byte::Addr { .. } if m == 0 => Byte::of(x),
                    Byte::Addr { .. } => Byte::UNKNOWN,
                }
            })
            .collect();
        self.load(s, dreg, out, &why)
    }

    /// Goes on where a condition holds; forks a path where it may or may not.
    pub(super) fn decide(&mut self, s: &mut State, truth: Truth, why: impl FnOnce() -> String) -> Result<(), ()> {
        match truth {
            Truth::Yes => Ok(()),
            Truth::No => Err(()),
            Truth::Unknown => {
                let why: Rc<str> = Rc::from(why());
                let mut yes = s.clone();
                yes.because.get_or_insert(why.clone());
                s.because.get_or_insert(why);
                self.fork(s, yes, true);
                Err(())
            }
            Truth::Split { field, yes } => {
                let mut holds = s.clone();
                let no = s.doms.of(field).minus(&yes);
                holds.doms = s.doms.with(field, yes);
                s.doms = s.doms.with(field, no);
                self.fork(s, holds, false);
                Err(())
            }
        }
    }

    /// Queues `other` as side 1 of a new fork; `s` goes on as side 0.
    pub(super) fn fork(&mut self, s: &mut State, mut other: State, guess: bool) {
        let id = self.forks;
        self.forks += 1;
        other.trail.push(Fork { id, side: 1, guess });
        s.trail.push(Fork { id, side: 0, guess });
        self.work.push(other);
    }

    pub(super) fn found(
        &mut self,
        s: &mut State,
        dreg: Option<u32>,
        verdict: Option<Verdict>,
    ) -> Result<Option<RuleEnd>, ()> {
        match dreg {
            None => Ok(None),
            Some(0) => verdict.map(|v| Some(RuleEnd::Verdict(v))).ok_or(()),
            Some(d) => {
                self.load(s, d, unknown(16), "a map's value")?;
                Ok(None)
            }
        }
    }
}

/// What loaded the bits a condition could not decide on (only worked out when it could not).
fn why_if_unknown(s: &State, truth: &Truth, reg: u32, len: usize) -> String {
    if *truth == Truth::Unknown { s.regs.why(reg, len) } else { String::new() }
}
