//! `$group` and its accumulators.
//!
//! Groups are keyed with [`canonical_key`], so `_id` values that MongoDB
//! considers equal (1, 1.0, NumberLong(1)) land in one group. Groups come out
//! in the order their first document arrived, which keeps results stable.
//! The n-ary accumulators (`$topN`, ...) live in `nary.rs`, `$median` and
//! `$percentile` in `quantile.rs`; a group collects their inputs and lets them
//! pick the answer when the group is complete.
use super::nary::{self, NarySpec};
use super::quantile::QuantileSpec;
use crate::compare::{canonical_key, cmp_bson};
use crate::deps::{expression_needs, Needs};
use crate::expr::raw::{RawExpr, RawFields};
use crate::expr::{self, Value, Vars};
use crate::num::{self, Num};
use crate::{EngineError, Result};
use bson::{Bson, Document};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    Sum,
    Avg,
    Min,
    Max,
    First,
    Last,
    Push,
    AddToSet,
    Count,
    StdDevPop,
    StdDevSamp,
    MergeObjects,
}

#[derive(Clone)]
struct AccSpec {
    field: String,
    op: AccOp,
}

/// What an output field of `$group` computes.
#[derive(Clone)]
enum AccOp {
    /// A single-argument accumulator (`$sum`, `$push`, ...).
    Simple(Kind, Bson),
    Nary(NarySpec),
    Quantile(QuantileSpec),
}

/// A group's running state for one output field.
enum AccState {
    Simple(State),
    /// The collected items and the group's `n`.
    Nary(Vec<nary::Item>, usize),
    Quantile(Vec<f64>),
}

impl Kind {
    /// The accumulator named `op` (`$sum`, ...), if it is one.
    pub(super) fn parse(op: &str) -> Option<Kind> {
        Some(match op {
            "$sum" => Kind::Sum,
            "$avg" => Kind::Avg,
            "$min" => Kind::Min,
            "$max" => Kind::Max,
            "$first" => Kind::First,
            "$last" => Kind::Last,
            "$push" => Kind::Push,
            "$addToSet" => Kind::AddToSet,
            "$count" => Kind::Count,
            "$stdDevPop" => Kind::StdDevPop,
            "$stdDevSamp" => Kind::StdDevSamp,
            "$mergeObjects" => Kind::MergeObjects,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub(super) enum State {
    Sum(Num),
    Avg(Num, i64),
    Extreme(Option<Bson>),
    First(Option<Bson>, bool),
    Last(Bson),
    Push(Vec<Bson>),
    Set(Vec<Bson>, HashSet<String>),
    Dev(Vec<f64>),
    Merge(Document),
}

fn parse_specs(spec: &Document) -> Result<(Bson, Vec<AccSpec>)> {
    let Some(id) = spec.get("_id") else {
        return Err(EngineError::location(15955, "a group specification must include an _id"));
    };
    let mut accs = Vec::new();
    for (field, v) in spec {
        if field == "_id" {
            continue;
        }
        if field.contains('.') {
            return Err(EngineError::location(40236, format!("The field name '{field}' cannot contain '.'")));
        }
        let Bson::Document(d) = v else {
            return Err(EngineError::location(40234, format!("The field '{field}' must be an accumulator object")));
        };
        if d.len() != 1 {
            return Err(EngineError::location(40238, format!("The field '{field}' must specify one accumulator")));
        }
        let Some((op, arg)) = d.iter().next() else { continue };
        let op = if let Some(kind) = Kind::parse(op) {
            AccOp::Simple(kind, arg.clone())
        } else if let Some(spec) = NarySpec::parse(op, arg)? {
            AccOp::Nary(spec)
        } else if let Some(spec) = QuantileSpec::parse(op, arg)? {
            AccOp::Quantile(spec)
        } else {
            return Err(EngineError::location(15952, format!("unknown group operator '{op}'")));
        };
        accs.push(AccSpec { field: field.clone(), op });
    }
    Ok((id.clone(), accs))
}

pub(super) fn initial(kind: Kind) -> State {
    match kind {
        Kind::Sum | Kind::Count => State::Sum(Num::Int(0)),
        Kind::Avg => State::Avg(Num::Int(0), 0),
        Kind::Min | Kind::Max => State::Extreme(None),
        Kind::First => State::First(None, false),
        Kind::Last => State::Last(Bson::Null),
        Kind::Push => State::Push(Vec::new()),
        Kind::AddToSet => State::Set(Vec::new(), HashSet::new()),
        Kind::StdDevPop | Kind::StdDevSamp => State::Dev(Vec::new()),
        Kind::MergeObjects => State::Merge(Document::new()),
    }
}

pub(super) fn accumulate(state: &mut State, kind: Kind, value: Option<Bson>) -> Result<()> {
    match state {
        State::Sum(total) => {
            let n = match kind {
                Kind::Count => Some(Num::Int(1)),
                _ => value.as_ref().and_then(Num::from_bson),
            };
            if let Some(n) = n {
                *total = num::add(*total, n);
            }
        }
        State::Avg(total, count) => {
            if let Some(n) = value.as_ref().and_then(Num::from_bson) {
                *total = num::add(*total, n);
                *count += 1;
            }
        }
        State::Extreme(best) => {
            if let Some(v) = value.filter(|v| !matches!(v, Bson::Null | Bson::Undefined)) {
                let want = if matches!(kind, Kind::Min) { std::cmp::Ordering::Less } else { std::cmp::Ordering::Greater };
                let replace = best.as_ref().is_none_or(|b| cmp_bson(&v, b) == want);
                if replace {
                    *best = Some(v);
                }
            }
        }
        State::First(first, seen) => {
            if !*seen {
                *first = value;
                *seen = true;
            }
        }
        State::Last(last) => *last = value.unwrap_or(Bson::Null),
        State::Push(items) => {
            if let Some(v) = value {
                items.push(v);
            }
        }
        State::Set(items, keys) => {
            if let Some(v) = value {
                if keys.insert(canonical_key(&v)) {
                    items.push(v);
                }
            }
        }
        State::Dev(values) => {
            if let Some(n) = value.as_ref().and_then(Num::from_bson) {
                values.push(n.to_f64());
            }
        }
        State::Merge(out) => crate::expr::logic::merge_into(out, value)?,
    }
    Ok(())
}

pub(super) fn finish(state: State, kind: Kind) -> Bson {
    match state {
        State::Sum(total) => total.to_bson(),
        State::Avg(total, count) => {
            if count == 0 {
                Bson::Null
            } else {
                num::div(total, Num::Long(count)).map(Num::to_bson).unwrap_or(Bson::Null)
            }
        }
        State::Extreme(best) => best.unwrap_or(Bson::Null),
        State::First(first, _) => first.unwrap_or(Bson::Null),
        State::Last(last) => last,
        State::Push(items) | State::Set(items, _) => Bson::Array(items),
        State::Dev(values) => {
            let n = values.len();
            let sample = matches!(kind, Kind::StdDevSamp);
            if n == 0 || (sample && n < 2) {
                return Bson::Null;
            }
            let mean = values.iter().sum::<f64>() / n as f64;
            let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
            let denom = if sample { n - 1 } else { n } as f64;
            Bson::Double((ss / denom).sqrt())
        }
        State::Merge(d) => Bson::Document(d),
    }
}

pub(super) fn group(spec: &Document, input: Vec<Document>, vars: &Vars) -> Result<Vec<Document>> {
    let mut grouper = Grouper::new(spec)?;
    for doc in &input {
        grouper.add(doc, vars)?;
    }
    Ok(grouper.finish())
}

/// A `$group` fed one document at a time, so its input need not be held in
/// memory: only the groups are.
pub(super) struct Grouper {
    id_expr: Bson,
    groups: Groups,
}

impl Grouper {
    pub fn new(spec: &Document) -> Result<Grouper> {
        let (id_expr, accs) = parse_specs(spec)?;
        Ok(Grouper { id_expr, groups: Groups::new(accs) })
    }

    pub fn add(&mut self, doc: &Document, vars: &Vars) -> Result<()> {
        let slot = self.slot(doc, vars)?;
        self.groups.accumulate(slot, doc, vars)
    }

    /// The group `doc` belongs to (started if new), without accumulating it
    /// (see [`Grouper::accumulate_split`]).
    pub fn slot(&mut self, doc: &Document, vars: &Vars) -> Result<usize> {
        let id = expr::eval_value(&self.id_expr, doc, vars)?.unwrap_or(Bson::Null);
        self.groups.slot(id, vars)
    }

    /// How the group splits at `field` (a join's `as` field): when the key
    /// reads no field at or below `field`, and each accumulator reads either
    /// only fields below it (`true`) or none of them (`false`), then the key
    /// of a document with `field` set is the key of that document without it,
    /// and each accumulator sees the same values in `{field: value}` or in
    /// the document without `field`. `None` otherwise. (Single-argument
    /// accumulators only: the dependency analysis does not follow the field
    /// names inside `$topN`'s `sortBy`.)
    pub fn split_at(&self, field: &str) -> Option<Vec<bool>> {
        let inside = |p: &String| p == field || p.strip_prefix(field).is_some_and(|rest| rest.starts_with('.'));
        let reads = |e: &Bson| {
            let mut needs = Needs::default();
            expression_needs(e, &mut needs);
            match needs {
                Needs::All => None,
                Needs::Paths { read, walked } => Some(read.into_iter().chain(walked).collect::<Vec<String>>()),
            }
        };
        if reads(&self.id_expr)?.iter().any(inside) {
            return None;
        }
        self.groups
            .accs
            .iter()
            .map(|acc| match &acc.op {
                AccOp::Simple(_, arg) => {
                    let paths = reads(arg)?;
                    if paths.iter().all(inside) {
                        Some(true)
                    } else if paths.iter().any(inside) {
                        None
                    } else {
                        Some(false)
                    }
                }
                AccOp::Nary(_) | AccOp::Quantile(_) => None,
            })
            .collect()
    }

    /// Accumulates into group `slot` a document split as [`Grouper::split_at`]
    /// says (`sides`): `joined` for the accumulators that read the field,
    /// `local` for the others.
    pub fn accumulate_split(&mut self, slot: usize, local: &Document, joined: &Document, sides: &[bool], vars: &Vars) -> Result<()> {
        self.groups.accumulate_with(slot, |i| if sides.get(i).copied().unwrap_or(false) { joined } else { local }, vars)
    }

    /// The arguments of the accumulators that read the join (`sides`, from
    /// [`Grouper::split_at`]) compiled for the joined document's stored bytes,
    /// in accumulator order (`None` for those that read only the local
    /// document), the fields they read noted in `fields`; `None` unless
    /// every one of them compiles and all are single-argument accumulators.
    pub fn compile_joined(&self, sides: &[bool], field: &str, fields: &mut RawFields) -> Option<Vec<Option<RawExpr>>> {
        self.groups
            .accs
            .iter()
            .enumerate()
            .map(|(i, acc)| match (&acc.op, sides.get(i).copied().unwrap_or(false)) {
                (AccOp::Simple(..), false) => Some(None),
                (AccOp::Simple(_, arg), true) => RawExpr::compile(arg, field, fields).map(Some),
                // [`Grouper::accumulate_evaluated`] takes single-argument
                // accumulators only.
                _ => None,
            })
            .collect()
    }

    /// Accumulates into group `slot` one joined document, split as
    /// [`Grouper::split_at`] says (`sides`), whose arguments for the
    /// accumulators that read it were evaluated already (`joined`: one value
    /// per such accumulator, in their order); the others read `local`.
    pub fn accumulate_evaluated(&mut self, slot: usize, local: &Document, joined: &[Value], sides: &[bool], vars: &Vars) -> Result<()> {
        let Some((_, states)) = self.groups.order.get_mut(slot) else {
            return Err(EngineError::new(1, "InternalError", "$group: no such group"));
        };
        let mut joined = joined.iter();
        for (i, (acc, state)) in self.groups.accs.iter().zip(states.iter_mut()).enumerate() {
            let (AccOp::Simple(kind, arg), AccState::Simple(st)) = (&acc.op, state) else {
                return Err(EngineError::new(1, "InternalError", "$group: an evaluated argument for an n-ary accumulator"));
            };
            let value = if sides.get(i).copied().unwrap_or(false) {
                joined.next().cloned().ok_or_else(|| EngineError::new(1, "InternalError", "$group: an argument missing"))?
            } else if matches!(kind, Kind::Count) {
                None
            } else {
                expr::eval_value(arg, local, vars)?
            };
            accumulate(st, *kind, value)?;
        }
        Ok(())
    }

    /// The kinds of the accumulators that read the join (`sides`, from
    /// [`Grouper::split_at`]), in their order, for [`accumulate`]; `None`
    /// unless all of them are single-argument accumulators.
    pub fn joined_kinds(&self, sides: &[bool]) -> Option<Vec<Kind>> {
        let joined = self.groups.accs.iter().enumerate().filter(|(i, _)| sides.get(*i).copied().unwrap_or(false));
        joined
            .map(|(_, acc)| match acc.op {
                AccOp::Simple(kind, _) => Some(kind),
                _ => None,
            })
            .collect()
    }

    /// The group key of `doc` and its canonical form, without starting the
    /// group (see [`Grouper::slot_keyed`]).
    pub fn key_of(&self, doc: &Document, vars: &Vars) -> Result<(Bson, String)> {
        let id = expr::eval_value(&self.id_expr, doc, vars)?.unwrap_or(Bson::Null);
        let key = canonical_key(&id);
        Ok((id, key))
    }

    /// Whether the group whose canonical key is `key` has started.
    pub fn has_group(&self, key: &str) -> bool {
        self.groups.index.contains_key(key)
    }

    /// [`Grouper::slot`] for a key [`Grouper::key_of`] computed.
    pub fn slot_keyed(&mut self, id: Bson, key: String, vars: &Vars) -> Result<usize> {
        self.groups.slot_keyed(id, key, vars)
    }

    /// Hands group `slot`, which has accumulated nothing yet, `n` joined
    /// documents at once: the accumulators that read the join (`sides`)
    /// take `joined`, their states after accumulating those documents in
    /// order from [`initial`] (so exactly what accumulating them one by one
    /// would leave); the others accumulate `local` `n` times, as they would
    /// once per joined document.
    pub fn take_joined(&mut self, slot: usize, local: &Document, n: usize, joined: Vec<State>, sides: &[bool], vars: &Vars) -> Result<()> {
        let Some((_, states)) = self.groups.order.get_mut(slot) else {
            return Err(EngineError::new(1, "InternalError", "$group: no such group"));
        };
        let mut joined = joined.into_iter();
        for (i, (acc, state)) in self.groups.accs.iter().zip(states.iter_mut()).enumerate() {
            let AccOp::Simple(kind, arg) = &acc.op else {
                return Err(EngineError::new(1, "InternalError", "$group: joined states for an n-ary accumulator"));
            };
            if sides.get(i).copied().unwrap_or(false) {
                let st = joined.next().ok_or_else(|| EngineError::new(1, "InternalError", "$group: a joined state missing"))?;
                *state = AccState::Simple(st);
                continue;
            }
            let AccState::Simple(st) = state else {
                return Err(EngineError::new(1, "InternalError", "$group: joined states for an n-ary accumulator"));
            };
            for _ in 0..n {
                let value = if matches!(kind, Kind::Count) { None } else { expr::eval_value(arg, local, vars)? };
                accumulate(st, *kind, value)?;
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Vec<Document> {
        self.groups.finish()
    }
}

/// Groups documents whose group keys were computed by the caller (`$bucket`,
/// `$bucketAuto`); `output` holds the accumulator fields, without `_id`.
pub(super) fn group_with_keys(output: &Document, ids: Vec<Bson>, input: &[Document], vars: &Vars) -> Result<Vec<Document>> {
    let mut spec = Document::new();
    spec.insert("_id", Bson::Null);
    for (k, v) in output {
        if k != "_id" {
            spec.insert(k.clone(), v.clone());
        }
    }
    let (_, accs) = parse_specs(&spec)?;
    group_by_ids(&accs, ids, input, vars)
}

fn group_by_ids(accs: &[AccSpec], ids: Vec<Bson>, input: &[Document], vars: &Vars) -> Result<Vec<Document>> {
    let mut groups = Groups::new(accs.to_vec());
    for (doc, id) in input.iter().zip(ids) {
        groups.add(id, doc, vars)?;
    }
    Ok(groups.finish())
}

/// Groups in first-arrival order, with their accumulators' running state.
struct Groups {
    accs: Vec<AccSpec>,
    order: Vec<(Bson, Vec<AccState>)>,
    index: HashMap<String, usize>,
}

impl Groups {
    fn new(accs: Vec<AccSpec>) -> Groups {
        Groups { accs, order: Vec::new(), index: HashMap::new() }
    }

    fn add(&mut self, id: Bson, doc: &Document, vars: &Vars) -> Result<()> {
        let slot = self.slot(id, vars)?;
        self.accumulate(slot, doc, vars)
    }

    /// The group keyed `id`, started if new.
    fn slot(&mut self, id: Bson, vars: &Vars) -> Result<usize> {
        let key = canonical_key(&id);
        self.slot_keyed(id, key, vars)
    }

    /// [`Groups::slot`] for `id` whose canonical key is `key`.
    fn slot_keyed(&mut self, id: Bson, key: String, vars: &Vars) -> Result<usize> {
        Ok(match self.index.get(&key) {
            Some(i) => *i,
            None => {
                let states = self.accs.iter().map(|a| start_group(&a.op, &id, vars)).collect::<Result<_>>()?;
                self.order.push((id, states));
                self.index.insert(key, self.order.len() - 1);
                self.order.len() - 1
            }
        })
    }

    fn accumulate(&mut self, slot: usize, doc: &Document, vars: &Vars) -> Result<()> {
        self.accumulate_with(slot, |_| doc, vars)
    }

    /// Accumulates into group `slot`, accumulator `i` reading `doc_for(i)`.
    fn accumulate_with<'d>(&mut self, slot: usize, doc_for: impl Fn(usize) -> &'d Document, vars: &Vars) -> Result<()> {
        let Some((_, states)) = self.order.get_mut(slot) else {
            return Err(EngineError::new(1, "InternalError", "$group: no such group"));
        };
        for (i, (acc, state)) in self.accs.iter().zip(states.iter_mut()).enumerate() {
            let doc = doc_for(i);
            match (&acc.op, state) {
                (AccOp::Simple(Kind::Count, _), AccState::Simple(st)) => accumulate(st, Kind::Count, None)?,
                (AccOp::Simple(kind, arg), AccState::Simple(st)) => accumulate(st, *kind, expr::eval_value(arg, doc, vars)?)?,
                (AccOp::Nary(spec), AccState::Nary(items, _)) => items.push(spec.item(doc, vars)?),
                (AccOp::Quantile(spec), AccState::Quantile(samples)) => samples.extend(spec.sample(doc, vars)?),
                _ => {}
            }
        }
        Ok(())
    }

    fn finish(self) -> Vec<Document> {
        let accs = self.accs;
        self.order
            .into_iter()
            .map(|(id, states)| {
                let mut out = Document::new();
                out.insert("_id", id);
                for (acc, state) in accs.iter().zip(states) {
                    let value = match (&acc.op, state) {
                        (AccOp::Simple(kind, _), AccState::Simple(st)) => finish(st, *kind),
                        (AccOp::Nary(spec), AccState::Nary(items, n)) => spec.finish(&items, n, false),
                        (AccOp::Quantile(spec), AccState::Quantile(samples)) => spec.finish(samples),
                        _ => Bson::Null,
                    };
                    out.insert(acc.field.clone(), value);
                }
                out
            })
            .collect()
    }
}

/// A new group's state for one field. An n-ary accumulator's `n` is
/// evaluated once per group, against the group key when it is a document
/// (so `n` may depend on it), else against an empty document.
fn start_group(op: &AccOp, id: &Bson, vars: &Vars) -> Result<AccState> {
    Ok(match op {
        AccOp::Simple(kind, _) => AccState::Simple(initial(*kind)),
        AccOp::Nary(spec) => {
            let root = match id {
                Bson::Document(d) => d.clone(),
                _ => Document::new(),
            };
            AccState::Nary(Vec::new(), spec.n_for(&root, vars)?)
        }
        AccOp::Quantile(_) => AccState::Quantile(Vec::new()),
    })
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
