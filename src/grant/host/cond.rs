//! Whether a compare or a set lookup holds for the probe: yes, no, "cannot tell", or yes for
//! some of the grantees' (or destinations') addresses and no for the others.

use std::cmp::Ordering;

use super::domain::Domain;
use super::model::{CmpOp, Element, Set};
use super::probe::{Byte, Field};

/// The source and destination addresses a path of the evaluation is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doms {
    /// Source addresses.
    pub src: Domain,
    /// Destination addresses.
    pub dst: Domain,
}

impl Doms {
    /// The domain of `field`.
    pub fn of(&self, field: Field) -> &Domain {
        match field {
            Field::Src => &self.src,
            Field::Dst => &self.dst,
        }
    }

    /// A copy with `field` narrowed to `to`.
    pub fn with(&self, field: Field, to: Domain) -> Doms {
        let mut d = self.clone();
        match field {
            Field::Src => d.src = to,
            Field::Dst => d.dst = to,
        }
        d
    }
}

/// The answer for one condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Truth {
    /// Holds for every address in play.
    Yes,
    /// Holds for none.
    No,
    /// knockd cannot know.
    Unknown,
    /// Holds for the addresses of `field` in `yes`, and not for the others.
    #[allow(missing_docs, reason = "the variant doc names them")]
    Split { field: Field, yes: Domain },
}

fn concrete(bytes: &[Byte]) -> Option<Vec<u8>> {
    bytes.iter().map(|b| if let Byte::Known { value, known: 0xff } = b { Some(*value) } else { None }).collect()
}

/// A run of address bytes from the first: the field, how many bytes, and their masks.
fn addr_prefix(bytes: &[Byte]) -> Option<(Field, Vec<u8>)> {
    let mut field = None;
    let mut masks = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        let Byte::Addr { field: f, index, mask } = *b else { return None };
        if usize::from(index) != i || field.is_some_and(|g| g != f) {
            return None;
        }
        field = Some(f);
        masks.push(mask);
    }
    Some((field?, masks))
}

fn to_number(bytes: &[u8]) -> u128 {
    bytes.iter().fold(0u128, |n, b| (n << 8) | u128::from(*b))
}

/// The addresses (of `total` bytes) whose first bytes, under `masks`, compare with `value`
/// by `op`; `None` when that is not a set of ranges knockd works with.
fn prefix_domain(total: u8, masks: &[u8], value: &[u8], op: CmpOp) -> Option<Domain> {
    let k = masks.len();
    if k > usize::from(total) || value.len() < k {
        return None;
    }
    let value = &value[..k];
    let rest_bits = 8 * (u32::from(total) - k as u32);
    let shift = |n: u128| if rest_bits >= 128 { 0 } else { n << rest_bits };
    let below = if rest_bits >= 128 { u128::MAX } else { (1u128 << rest_bits) - 1 };
    let mask_bits: Vec<bool> = masks.iter().flat_map(|m| (0..8).rev().map(move |i| m >> i & 1 == 1)).collect();
    let prefix = mask_bits.iter().take_while(|b| **b).count();
    let all = Domain::all(total);
    match op {
        CmpOp::Eq | CmpOp::Neq => {
            if mask_bits[prefix..].iter().any(|b| *b) {
                return None; // not a prefix mask
            }
            let v = to_number(value);
            let m = to_number(masks);
            let eq = if v & !m != 0 {
                Domain::none(total)
            } else {
                let lo = shift(v);
                let span_bits = 8 * k as u32 - prefix as u32 + rest_bits;
                let span = if span_bits >= 128 { u128::MAX } else { (1u128 << span_bits) - 1 };
                Domain::range(total, lo, lo | span)
            };
            Some(if op == CmpOp::Eq { eq } else { all.minus(&eq) })
        }
        _ if prefix < 8 * k => None,
        op => {
            let lo = shift(to_number(value));
            let hi = lo | below;
            Some(match op {
                CmpOp::Lt => lo.checked_sub(1).map_or(Domain::none(total), |h| Domain::range(total, 0, h)),
                CmpOp::Lte => Domain::range(total, 0, hi),
                CmpOp::Gt => hi.checked_add(1).map_or(Domain::none(total), |l| Domain::range(total, l, all.max())),
                _ => Domain::range(total, lo, all.max()),
            })
        }
    }
}

/// Narrows `field`'s domain to the addresses in `yes`.
fn split(doms: &Doms, field: Field, yes: Domain) -> Truth {
    let current = doms.of(field);
    let yes = current.intersect(&yes);
    if yes.is_empty() {
        Truth::No
    } else if yes == *current {
        Truth::Yes
    } else if yes.is_too_fragmented() || current.minus(&yes).is_too_fragmented() {
        // Either side: every path carries its domain, and a blocklist of single addresses,
        // rule after rule, would otherwise fragment it without end.
        Truth::Unknown
    } else {
        Truth::Split { field, yes }
    }
}

/// `cmp OP data` over `bytes`.
pub fn cmp(bytes: &[Byte], op: CmpOp, data: &[u8], doms: &Doms) -> Truth {
    if let Some(v) = concrete(bytes) {
        let order = v.as_slice().cmp(data);
        let holds = match op {
            CmpOp::Eq => order == Ordering::Equal,
            CmpOp::Neq => order != Ordering::Equal,
            CmpOp::Lt => order == Ordering::Less,
            CmpOp::Lte => order != Ordering::Greater,
            CmpOp::Gt => order == Ordering::Greater,
            CmpOp::Gte => order != Ordering::Less,
        };
        return if holds { Truth::Yes } else { Truth::No };
    }
    let Some((field, masks)) = addr_prefix(bytes) else { return Truth::Unknown };
    match prefix_domain(doms.of(field).bytes, &masks, data, op) {
        Some(yes) => split(doms, field, yes),
        None => Truth::Unknown,
    }
}

/// `range` from..to (or outside it) over `bytes`.
pub fn range(bytes: &[Byte], eq: bool, from: &[u8], to: &[u8], doms: &Doms) -> Truth {
    let inside = match (cmp(bytes, CmpOp::Gte, from, doms), cmp(bytes, CmpOp::Lte, to, doms)) {
        (Truth::No, _) | (_, Truth::No) => Truth::No,
        (Truth::Yes, Truth::Yes) => Truth::Yes,
        (Truth::Split { field, yes: a }, Truth::Split { yes: b, .. }) => split(doms, field, a.intersect(&b)),
        (Truth::Split { field, yes }, Truth::Yes) | (Truth::Yes, Truth::Split { field, yes }) => {
            split(doms, field, yes)
        }
        _ => Truth::Unknown,
    };
    if eq { inside } else { negate(inside, doms) }
}

/// The opposite answer.
pub fn negate(truth: Truth, doms: &Doms) -> Truth {
    match truth {
        Truth::Yes => Truth::No,
        Truth::No => Truth::Yes,
        Truth::Unknown => Truth::Unknown,
        Truth::Split { field, yes } => split(doms, field, doms.of(field).minus(&yes)),
    }
}

/// Field boundaries of a set's keys, each rounded up to a register word.
fn field_spans(set: &Set) -> Vec<(usize, usize)> {
    let lens: Vec<usize> = if set.fields.is_empty() {
        vec![set.key_len as usize]
    } else {
        set.fields.iter().map(|l| *l as usize).collect()
    };
    let mut at = 0;
    lens.into_iter()
        .map(|len| {
            let span = (at, len);
            at += len.next_multiple_of(4);
            span
        })
        .collect()
}

/// The element that a known key finds, if any.
pub fn find<'s>(set: &'s Set, key: &[u8]) -> Option<&'s Element> {
    let elements = set.elements.as_deref()?;
    if set.interval() && set.fields.len() > 1 || elements.iter().any(|e| e.key_end.is_some()) {
        let spans = field_spans(set);
        return elements.iter().find(|e| {
            let end = e.key_end.as_deref().unwrap_or(&e.key);
            spans.iter().all(|&(at, len)| {
                let part = |b: &[u8]| b.get(at..at + len).map(<[u8]>::to_vec);
                matches!((part(&e.key), part(end), part(key)), (Some(lo), Some(hi), Some(k)) if lo <= k && k <= hi)
            })
        });
    }
    if set.interval() {
        // The greatest element at or below the key decides: a range's start holds it.
        let below = elements.iter().filter(|e| e.key.as_slice() <= key);
        let best = below.max_by(|a, b| a.key.cmp(&b.key).then(b.interval_end.cmp(&a.interval_end)))?;
        return (!best.interval_end).then_some(best);
    }
    elements.iter().find(|e| e.key.as_slice() == key)
}

/// For a key whose only unknown part is one whole address: which addresses find which element.
/// `None` when that cannot be worked out.
pub fn split_lookup<'s>(set: &'s Set, bytes: &[Byte], doms: &Doms) -> Option<(Field, Vec<(Domain, &'s Element)>)> {
    let elements = set.elements.as_deref()?;
    let start = bytes.iter().position(|b| matches!(b, Byte::Addr { .. }))?;
    let Byte::Addr { field, .. } = bytes[start] else { return None };
    let n = usize::from(doms.of(field).bytes);
    let (_, masks) = addr_prefix(bytes.get(start..start + n)?)?;
    if masks.len() != n || masks.iter().any(|m| *m != 0xff) {
        return None;
    }
    let mut other: Vec<Byte> = bytes.to_vec();
    other[start..start + n].fill(Byte::of(0));
    let other = concrete(&other)?;
    let same_elsewhere = |key: &[u8]| {
        key.len() == other.len() && (0..key.len()).all(|i| (start..start + n).contains(&i) || key[i] == other[i])
    };
    let total = n as u8;
    let mut out = Vec::new();
    let interval_one_field = set.interval() && set.fields.len() <= 1 && elements.iter().all(|e| e.key_end.is_none());
    if interval_one_field {
        if start != 0 || bytes.len() != n {
            return None;
        }
        let mut sorted: Vec<&Element> = elements.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key).then(b.interval_end.cmp(&a.interval_end)));
        for (i, e) in sorted.iter().enumerate().filter(|(_, e)| !e.interval_end) {
            let lo = to_number(&e.key);
            let hi = sorted.get(i + 1).map_or(Domain::all(total).max(), |next| to_number(&next.key).saturating_sub(1));
            out.push((Domain::range(total, lo, hi), *e));
        }
    } else {
        for e in elements {
            let end = e.key_end.as_deref().unwrap_or(&e.key);
            if !same_elsewhere(&e.key) && e.key_end.is_none() {
                continue;
            }
            if e.key_end.is_some() && !within_elsewhere(set, &e.key, end, &other, start, n) {
                continue;
            }
            let lo = to_number(e.key.get(start..start + n)?);
            let hi = to_number(end.get(start..start + n)?);
            out.push((Domain::range(total, lo, hi), e));
        }
    }
    let current = doms.of(field);
    let out = out.into_iter().map(|(d, e)| (d.intersect(current), e)).filter(|(d, _)| !d.is_empty()).collect();
    Some((field, out))
}

/// For a concatenation of ranges: whether every field but the address's holds the key's.
fn within_elsewhere(set: &Set, lo: &[u8], hi: &[u8], key: &[u8], start: usize, n: usize) -> bool {
    field_spans(set).into_iter().filter(|&(at, _)| !(start..start + n).contains(&at)).all(|(at, len)| {
        let part = |b: &[u8]| b.get(at..at + len).map(<[u8]>::to_vec);
        matches!((part(lo), part(hi), part(key)), (Some(l), Some(h), Some(k)) if l <= k && k <= h)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::host::probe::addr;

    fn doms() -> Doms {
        Doms { src: Domain::all(4), dst: Domain::all(4) }
    }

    #[test]
    fn a_prefix_compare_splits_the_sources() {
        // `ip saddr 10.0.0.0/8`, as nft compiles it: one byte, compared.
        let t = cmp(&addr(Field::Src, 4)[..1], CmpOp::Eq, &[10], &doms());
        let Truth::Split { field: Field::Src, yes } = t else { panic!("{t:?}") };
        assert_eq!(yes.to_string(), "10.0.0.0/8");
        // `ip saddr 192.168.1.0/24`: three bytes.
        let t = cmp(&addr(Field::Src, 4)[..3], CmpOp::Neq, &[192, 168, 1], &doms());
        let Truth::Split { yes, .. } = t else { panic!("{t:?}") };
        assert!(!yes.contains("192.168.1.9".parse().unwrap()) && yes.contains("192.168.2.9".parse().unwrap()));
    }

    #[test]
    fn an_interval_set_finds_the_range_start_below_the_key() {
        let el = |key: [u8; 4], end| Element { key: key.to_vec(), interval_end: end, ..Element::default() };
        let set = Set {
            name: "__set0".into(),
            flags: super::super::model::set_flags::INTERVAL,
            key_len: 4,
            elements: Some(vec![el([0, 0, 0, 0], true), el([10, 0, 0, 0], false), el([11, 0, 0, 0], true)]),
            ..Set::default()
        };
        assert!(find(&set, &[10, 9, 9, 9]).is_some());
        assert!(find(&set, &[11, 0, 0, 0]).is_none() && find(&set, &[9, 255, 255, 255]).is_none());
        let (field, parts) = split_lookup(&set, &addr(Field::Src, 4), &doms()).unwrap();
        assert_eq!(field, Field::Src);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].0.to_string(), "10.0.0.0/8");
    }
}
