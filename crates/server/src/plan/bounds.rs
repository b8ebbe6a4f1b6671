//! Index bounds: the ranges of encoded keys a scan must read to find every
//! document a filter can match.
//!
//! A field's conditions become a set of half-open intervals of encoded
//! values ([`Span`]); because the key encoding orders bytes as MongoDB
//! orders values (see `keyenc`), a comparison is one interval within its
//! type's class ("type bracketing": `$gt: 5` never reaches strings), an
//! equality one single-value interval and `$in` a union of them. A compound
//! index chains its leading fields: every combination of single values of the
//! first fields, then one interval set of the next field.
//!
//! Bounds are "exact" when the scan alone decides the condition: no document
//! inside them fails it and none outside matches. That needs care with
//! multikey indexes (an entry holds one element of an array, and two
//! conditions on one field may be met by different elements, so they cannot
//! be intersected) and with null (a missing field is indexed as null, and so
//! is an empty array).
use super::predicates::{Atom, CmpOp, Predicates};
use crate::catalog::IndexSpec;
use crate::index::shell_repr;
use crate::keyenc::{self, complement, encode_one, prefix_end, type_class};
use bson::{Bson, Document};
use std::sync::Arc;

/// At most this many key ranges per scan (combinations of `$in` values on
/// compound indexes); past it the last field's ranges are merged into one.
const MAX_SPANS: usize = 1000;

/// The encoded values `lo <= v < hi` of one field (`hi: None` is no upper
/// end), with the values explain shows for it.
#[derive(Debug, Clone)]
pub struct Span {
    pub lo: Vec<u8>,
    pub hi: Option<Vec<u8>>,
    /// Whether this is exactly one value (an equality).
    pub point: bool,
    label: Label,
}

#[derive(Debug, Clone)]
pub(crate) struct Label {
    lo: Edge,
    lo_inclusive: bool,
    hi: Edge,
    hi_inclusive: bool,
}

impl Label {
    fn describe(&self) -> String {
        let edge = |e: &Edge| match e {
            Edge::Value(v) => repr(v),
            Edge::Text(t) => (*t).to_string(),
        };
        format!(
            "{}{}, {}{}",
            if self.lo_inclusive { "[" } else { "(" },
            edge(&self.lo),
            edge(&self.hi),
            if self.hi_inclusive { "]" } else { ")" }
        )
    }

    /// The interval as a descending field shows it: high to low.
    fn flipped(&self) -> Label {
        Label { lo: self.hi.clone(), lo_inclusive: self.hi_inclusive, hi: self.lo.clone(), hi_inclusive: self.lo_inclusive }
    }
}

/// An interval end as explain prints it.
#[derive(Debug, Clone)]
enum Edge {
    Value(Bson),
    Text(&'static str),
}

impl Span {
    fn point(v: &Bson) -> Span {
        let lo = encode_one(v);
        let hi = prefix_end(&lo);
        Span { lo, hi, point: true, label: Label { lo: Edge::Value(v.clone()), lo_inclusive: true, hi: Edge::Value(v.clone()), hi_inclusive: true } }
    }

    /// Every value.
    pub fn all() -> Span {
        Span { lo: Vec::new(), hi: None, point: false, label: Label { lo: Edge::Text("MinKey"), lo_inclusive: true, hi: Edge::Text("MaxKey"), hi_inclusive: true } }
    }

    fn is_empty(&self) -> bool {
        self.hi.as_ref().is_some_and(|hi| *hi <= self.lo)
    }

    /// MongoDB's notation: `[5, inf.0]`, `("a", {})`, `[MinKey, MaxKey]`.
    pub fn describe(&self) -> String {
        self.label.describe()
    }

    /// The same values in a descending field, whose bytes are complemented:
    /// `v` is in `[lo, hi)` exactly when `!v` is in
    /// `[prefix_end(!hi), prefix_end(!lo))` (no encoding is a prefix of
    /// another, nor of the bounds made from them).
    fn complemented(&self) -> Span {
        let flip = |b: &[u8]| {
            let mut c = b.to_vec();
            complement(&mut c);
            c
        };
        let lo = match &self.hi {
            Some(hi) => prefix_end(&flip(hi)).unwrap_or_default(),
            None => Vec::new(),
        };
        let hi = if self.lo.is_empty() { None } else { prefix_end(&flip(&self.lo)) };
        Span { lo, hi, point: self.point, label: self.label.clone() }
    }
}

fn repr(v: &Bson) -> String {
    match v {
        Bson::Double(f) if f.is_nan() => "nan.0".to_string(),
        Bson::Double(f) if f.is_infinite() => if *f > 0.0 { "inf.0" } else { "-inf.0" }.to_string(),
        Bson::Double(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.1}"),
        Bson::MinKey => "MinKey".to_string(),
        Bson::MaxKey => "MaxKey".to_string(),
        Bson::Undefined => "undefined".to_string(),
        other => shell_repr(other),
    }
}

/// The class of values `$gt`/`$lt` compare with `v` (its type bracket), as
/// byte bounds and explain's ends.
fn bracket(v: &Bson) -> (Vec<u8>, Vec<u8>, Edge, Edge) {
    let class = type_class(v);
    let (lo, hi) = match class {
        // NaN sorts below every number in this engine (and matches $lt).
        keyenc::NUMBER => (Edge::Value(Bson::Double(f64::NAN)), Edge::Value(Bson::Double(f64::INFINITY))),
        keyenc::STRING => (Edge::Value(Bson::String(String::new())), Edge::Text("{}")),
        keyenc::OBJECT => (Edge::Text("{}"), Edge::Text("[]")),
        keyenc::ARRAY => (Edge::Text("[]"), Edge::Text("BinData(0, )")),
        keyenc::DATE => (Edge::Text("new Date(-9223372036854775808)"), Edge::Text("new Date(9223372036854775807)")),
        _ => (Edge::Text("MinKey"), Edge::Text("MaxKey")),
    };
    (vec![class], vec![class + 1], lo, hi)
}

/// The values satisfying one comparison, within the operand's bracket.
fn comparison(op: CmpOp, v: &Bson) -> Span {
    let (class_lo, class_hi, edge_lo, edge_hi) = bracket(v);
    let enc = encode_one(v);
    let value = Edge::Value(v.clone());
    // Numbers end at +infinity, which is a number: that end is inclusive.
    let top_inclusive = type_class(v) == keyenc::NUMBER;
    let (lo, lo_label, lo_inclusive, hi, hi_label, hi_inclusive) = match op {
        CmpOp::Gt => (prefix_end(&enc).unwrap_or_default(), value, false, Some(class_hi), edge_hi, top_inclusive),
        CmpOp::Gte => (enc, value, true, Some(class_hi), edge_hi, top_inclusive),
        CmpOp::Lt => (class_lo, edge_lo, true, Some(enc), value, false),
        CmpOp::Lte => (class_lo, edge_lo, true, prefix_end(&enc), value, true),
    };
    Span { lo, hi, point: false, label: Label { lo: lo_label, lo_inclusive, hi: hi_label, hi_inclusive } }
}

/// The set of values of one field an index scan must read, and whether
/// reading exactly those decides the field's conditions.
#[derive(Debug, Clone)]
pub struct FieldBounds {
    /// Ascending, disjoint, non-empty spans (none: nothing can match).
    pub spans: Vec<Span>,
    pub exact: bool,
}

impl FieldBounds {
    /// Whether every span is a single value.
    pub fn all_points(&self) -> bool {
        self.spans.iter().all(|s| s.point)
    }
}

/// The spans of one atom and whether they are exact for it; `None` when the
/// atom gives no bounds (the scan must read every value).
fn atom_spans(atom: &Atom, multikey: bool) -> Option<(Vec<Span>, bool)> {
    match atom {
        Atom::Eq(v) => value_spans(v, multikey),
        Atom::In(values) => {
            let mut spans = Vec::with_capacity(values.len());
            let mut exact = true;
            for v in values {
                let (s, e) = value_spans(v, multikey)?;
                spans.extend(s);
                exact &= e;
            }
            Some((union(spans), exact))
        }
        Atom::Cmp(op, v) => match v {
            // Arrays compare as whole arrays, which no entry holds.
            Bson::Array(_) | Bson::MinKey | Bson::MaxKey => None,
            // Only $gte/$lte null match null (and missing).
            Bson::Null | Bson::Undefined => match op {
                CmpOp::Gte | CmpOp::Lte => Some((vec![Span::point(&Bson::Null)], matches!(v, Bson::Null) && !multikey)),
                CmpOp::Gt | CmpOp::Lt => Some((Vec::new(), true)),
            },
            _ => Some((vec![comparison(*op, v)], true)),
        },
        Atom::Other => None,
    }
}

/// An equality with `v`: its one value. `{f: null}` also matches a missing
/// field, which is indexed as null; `{f: undefined}` does not, nor does an
/// empty array, which a multikey index also indexes as null.
fn value_spans(v: &Bson, multikey: bool) -> Option<(Vec<Span>, bool)> {
    match v {
        // Equality with an array matches the whole array or an element equal
        // to it; entries hold elements, so no bounds.
        Bson::Array(_) => None,
        Bson::Null => Some((vec![Span::point(v)], !multikey)),
        Bson::Undefined => Some((vec![Span::point(&Bson::Null)], false)),
        other => Some((vec![Span::point(other)], true)),
    }
}

/// Sorted, merged spans.
fn union(mut spans: Vec<Span>) -> Vec<Span> {
    spans.retain(|s| !s.is_empty());
    spans.sort_by(|a, b| a.lo.cmp(&b.lo));
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        if let Some(last) = out.last_mut() {
            let overlaps = last.hi.as_ref().is_none_or(|hi| s.lo <= *hi);
            if overlaps {
                let extends = match (&last.hi, &s.hi) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(a), Some(b)) => b > a,
                };
                if extends {
                    last.hi = s.hi.clone();
                    last.label.hi = s.label.hi.clone();
                    last.label.hi_inclusive = s.label.hi_inclusive;
                }
                last.point = last.point && s.point && last.lo == s.lo;
                continue;
            }
        }
        out.push(s);
    }
    out
}

/// The values in both span sets.
fn intersect(a: &[Span], b: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            let (lo, lo_label, lo_inclusive) = if x.lo >= y.lo { (&x.lo, &x.label.lo, x.label.lo_inclusive) } else { (&y.lo, &y.label.lo, y.label.lo_inclusive) };
            let x_hi_first = match (&x.hi, &y.hi) {
                (Some(p), Some(q)) => p <= q,
                (Some(_), None) => true,
                (None, _) => false,
            };
            let hi_src = if x_hi_first { x } else { y };
            let span = Span {
                lo: lo.clone(),
                hi: hi_src.hi.clone(),
                point: x.point || y.point,
                label: Label { lo: lo_label.clone(), lo_inclusive, hi: hi_src.label.hi.clone(), hi_inclusive: hi_src.label.hi_inclusive },
            };
            if !span.is_empty() {
                out.push(span);
            }
        }
    }
    union(out)
}

/// The bounds `atoms` put on a field, `None` when none of them gives any.
/// Several conditions intersect, except in a multikey index (different
/// elements may meet them): there one is used, an equality if any.
pub fn field_bounds(atoms: &[Atom], multikey: bool) -> Option<FieldBounds> {
    let translated: Vec<Option<(Vec<Span>, bool)>> = atoms.iter().map(|a| atom_spans(a, multikey)).collect();
    let all_translated = translated.iter().all(Option::is_some);
    let usable: Vec<(Vec<Span>, bool)> = translated.into_iter().flatten().collect();
    if usable.is_empty() {
        return None;
    }
    if multikey {
        let pick = usable.iter().position(|(spans, _)| spans.iter().all(|s| s.point)).unwrap_or(0);
        let (spans, exact) = usable.into_iter().nth(pick)?;
        return Some(FieldBounds { spans, exact: exact && atoms.len() == 1 });
    }
    let mut exact = all_translated;
    let mut iter = usable.into_iter();
    let (mut spans, first_exact) = iter.next()?;
    exact &= first_exact;
    for (next, e) in iter {
        spans = intersect(&spans, &next);
        exact &= e;
    }
    Some(FieldBounds { spans, exact })
}

/// A range of index keys (relative to the index), `[lo, hi)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpan {
    pub lo: Vec<u8>,
    pub hi: Option<Vec<u8>>,
}

impl KeySpan {
    pub fn all() -> KeySpan {
        KeySpan { lo: Vec::new(), hi: None }
    }
}

/// What an index scan reads for a filter.
#[derive(Debug, Clone)]
pub struct ScanBounds {
    /// Ascending, disjoint key ranges.
    pub spans: Vec<KeySpan>,
    /// Leading fields fixed to a single value each.
    pub single_value_fields: usize,
    /// Leading fields whose conditions the scan applies.
    pub used_fields: usize,
    /// Whether every used field's bounds are exact.
    pub exact: bool,
    /// Whether each span is one whole key: every field of the index fixed to
    /// one of a few values (equality, `$in`). On a unique index each span then
    /// holds at most one entry.
    pub whole_keys: bool,
    /// Per index field, the intervals explain shows (`indexBounds`).
    pub labels: Labels,
}

/// The intervals explain shows for each field of an index (`indexBounds`),
/// written out only when explain asks: a query that is not explained never
/// formats them (that took a tenth of a point read's planning).
#[derive(Debug, Clone, Default)]
pub struct Labels(LabelsKind);

#[derive(Debug, Clone, Default)]
enum LabelsKind {
    /// Every field reads all values.
    #[default]
    All,
    /// Per leading field the scan applies, its intervals and whether the
    /// field is descending; the index's other fields read all values.
    Intervals(Arc<Vec<(Vec<Label>, bool)>>),
    /// Written by a scan's own planner (wildcard and 2dsphere scans).
    Written(Arc<Document>),
}

impl Labels {
    /// `indexBounds` for an index whose key pattern has `fields`.
    pub fn document<'f>(&self, fields: impl IntoIterator<Item = &'f str>) -> Document {
        let used: &[(Vec<Label>, bool)] = match &self.0 {
            LabelsKind::Written(d) => return (**d).clone(),
            LabelsKind::Intervals(used) => used,
            LabelsKind::All => &[],
        };
        let mut out = Document::new();
        for (i, f) in fields.into_iter().enumerate() {
            let shown = match used.get(i) {
                Some((labels, descending)) => describe(labels, *descending),
                None => Bson::Array(vec![Bson::String(Span::all().describe())]),
            };
            out.insert(f, shown);
        }
        out
    }
}

impl From<Document> for Labels {
    fn from(d: Document) -> Labels {
        Labels(LabelsKind::Written(Arc::new(d)))
    }
}

impl ScanBounds {
    /// A scan of the whole index, applying no condition.
    pub fn unbounded() -> ScanBounds {
        ScanBounds { spans: vec![KeySpan::all()], single_value_fields: 0, used_fields: 0, exact: true, whole_keys: false, labels: Labels::default() }
    }

    /// Whether the scan can find nothing.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// The bounds of a scan of `ix` for the conditions in `preds`.
pub fn scan_bounds(ix: &IndexSpec, preds: &Predicates, multikey: bool) -> ScanBounds {
    let fields: Vec<&str> = ix.fields().collect();
    let descending = ix.descending();
    let mut prefixes: Vec<Vec<u8>> = vec![Vec::new()];
    let mut labels: Vec<(Vec<Label>, bool)> = Vec::new();
    let mut single_value_fields = 0;
    let mut used_fields = 0;
    let mut exact = true;
    let mut tail: Option<Vec<Span>> = None;
    let mut tail_desc = false;
    for (i, field) in fields.iter().enumerate() {
        let Some(fb) = field_bounds(preds.atoms(field), multikey) else { break };
        let desc = descending.get(i).copied().unwrap_or(false);
        labels.push((fb.spans.iter().map(|s| s.label.clone()).collect(), desc));
        used_fields += 1;
        exact &= fb.exact;
        if fb.spans.is_empty() {
            return ScanBounds { spans: Vec::new(), single_value_fields, used_fields, exact, whole_keys: false, labels: Labels(LabelsKind::Intervals(Arc::new(labels))) };
        }
        if fb.all_points() && prefixes.len() * fb.spans.len() <= MAX_SPANS {
            if fb.spans.len() == 1 && single_value_fields == i {
                single_value_fields += 1;
            }
            let points: Vec<Vec<u8>> = fb
                .spans
                .iter()
                .map(|s| {
                    let mut p = s.lo.clone();
                    if desc {
                        complement(&mut p);
                    }
                    p
                })
                .collect();
            prefixes = prefixes.iter().flat_map(|pre| points.iter().map(move |p| [pre.as_slice(), p].concat())).collect();
            continue;
        }
        tail = Some(fb.spans);
        tail_desc = desc;
        break;
    }
    let whole_keys = tail.is_none() && used_fields == fields.len();
    let mut spans = Vec::new();
    match tail {
        None => {
            for p in prefixes {
                if p.is_empty() {
                    spans.push(KeySpan::all());
                } else {
                    let hi = prefix_end(&p);
                    spans.push(KeySpan { lo: p, hi });
                }
            }
        }
        Some(field_spans) => {
            let mut directed: Vec<Span> = if tail_desc { field_spans.iter().map(Span::complemented).collect() } else { field_spans };
            directed.sort_by(|a, b| a.lo.cmp(&b.lo));
            if prefixes.len() * directed.len() > MAX_SPANS {
                // One covering range; the filter sorts out the rest.
                let lo = directed.first().map(|s| s.lo.clone()).unwrap_or_default();
                let hi = directed.last().and_then(|s| s.hi.clone());
                directed = vec![Span { lo, hi, point: false, label: Span::all().label }];
                exact = false;
            }
            for p in &prefixes {
                for s in &directed {
                    let lo = [p.as_slice(), &s.lo].concat();
                    let hi = match &s.hi {
                        Some(h) => Some([p.as_slice(), h].concat()),
                        None => prefix_end(p),
                    };
                    spans.push(KeySpan { lo, hi });
                }
            }
        }
    }
    spans.sort_by(|a, b| a.lo.cmp(&b.lo));
    ScanBounds { spans, single_value_fields, used_fields, exact, whole_keys, labels: Labels(LabelsKind::Intervals(Arc::new(labels))) }
}

/// The intervals of a field in scan order (reversed for a descending field,
/// with each interval written high to low, as MongoDB shows them).
fn describe(labels: &[Label], descending: bool) -> Bson {
    let mut items: Vec<Bson> = labels.iter().map(|l| Bson::String(if descending { l.flipped().describe() } else { l.describe() })).collect();
    if descending {
        items.reverse();
    }
    Bson::Array(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn ix(spec: Document) -> IndexSpec {
        IndexSpec::from_spec(1, &spec).unwrap()
    }

    fn bounds(index: Document, filter: Document) -> ScanBounds {
        scan_bounds(&ix(doc! {"key": index}), &Predicates::analyze(&filter), false)
    }

    #[test]
    fn a_range_stays_within_its_type() {
        let b = bounds(doc! {"n": 1}, doc! {"n": {"$gte": 100}});
        assert_eq!(b.labels.document(["n"]), doc! {"n": ["[100, inf.0]"]});
        assert_eq!(b.spans.len(), 1);
        let span = &b.spans[0];
        assert!(span.lo <= encode_one(&Bson::Int32(100)) && encode_one(&Bson::Int32(100)) >= span.lo);
        let inside = |v: &Bson| {
            let e = encode_one(v);
            e >= span.lo && span.hi.as_ref().is_none_or(|h| e < *h)
        };
        assert!(inside(&Bson::Double(1e300)));
        assert!(inside(&Bson::Int64(100)));
        assert!(!inside(&Bson::Double(99.5)));
        assert!(!inside(&Bson::String("zzz".into())));
        assert!(b.exact);
    }

    #[test]
    fn ranges_intersect_and_equalities_chain() {
        let b = bounds(doc! {"a": 1, "b": 1}, doc! {"a": {"$in": [2, 1]}, "b": {"$gt": 5, "$lt": 9}});
        assert_eq!(b.labels.document(["a", "b"]), doc! {"a": ["[1, 1]", "[2, 2]"], "b": ["(5, 9)"]});
        assert_eq!((b.spans.len(), b.single_value_fields, b.used_fields), (2, 0, 2));
        let b = bounds(doc! {"a": 1, "b": 1}, doc! {"a": "x", "c": 1});
        assert_eq!(b.labels.document(["a", "b"]), doc! {"a": ["[\"x\", \"x\"]"], "b": ["[MinKey, MaxKey]"]});
        assert_eq!((b.single_value_fields, b.used_fields), (1, 1));
        assert!(bounds(doc! {"a": 1}, doc! {"a": {"$gt": 5, "$lt": 2}}).is_empty());
    }

    #[test]
    fn multikey_bounds_do_not_intersect() {
        let preds = Predicates::analyze(&doc! {"a": {"$gt": 5, "$lt": 2}});
        let b = scan_bounds(&ix(doc! {"key": {"a": 1}}), &preds, true);
        assert_eq!(b.labels.document(["a"]), doc! {"a": ["(5, inf.0]"]});
        assert!(!b.exact);
    }

    #[test]
    fn descending_fields_are_complemented() {
        let b = bounds(doc! {"a": -1}, doc! {"a": {"$gte": 3, "$lte": 7}});
        assert_eq!(b.labels.document(["a"]), doc! {"a": ["[7, 3]"]});
        let ixs = ix(doc! {"key": {"a": -1}});
        let key = |v: i32| crate::index::keys_for(&ixs, &doc! {"a": v}).unwrap().remove(0).encoded;
        let span = &b.spans[0];
        let inside = |k: Vec<u8>| k >= span.lo && span.hi.as_ref().is_none_or(|h| k < *h);
        assert!(inside(key(3)) && inside(key(5)) && inside(key(7)));
        assert!(!inside(key(2)) && !inside(key(8)));
    }

    #[test]
    fn null_is_exact_only_without_arrays() {
        let preds = Predicates::analyze(&doc! {"a": null});
        assert!(scan_bounds(&ix(doc! {"key": {"a": 1}}), &preds, false).exact);
        assert!(!scan_bounds(&ix(doc! {"key": {"a": 1}}), &preds, true).exact);
    }
}
