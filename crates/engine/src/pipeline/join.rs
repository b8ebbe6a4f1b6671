//! `$lookup` and `$unwind`, and the two together.
//!
//! A `$lookup` whose result is unwound right away (`$lookup` then `$unwind`
//! of its `as` field, what a SQL join becomes) produces the unwound
//! documents directly, as MongoDB does: it never builds the array of matches
//! only to copy the document once per element with that array inside.
use super::group::{accumulate, initial, Grouper, State};
use super::{stage_list, CollectionSource, JoinExecution};
use crate::compare::canonical_key;
use crate::expr::raw::{owned, RawExpr, RawFields};
use crate::expr::{self, Value, Vars};
use crate::{path, EngineError, Result};
use bson::{Bson, Document, RawBsonRef, RawDocument};
use std::collections::{HashMap, HashSet};

/// A parsed `$unwind`.
pub(super) struct Unwind {
    /// The path without its `$`.
    pub field: String,
    parts: Vec<String>,
    preserve: bool,
    pub index_field: Option<Vec<String>>,
}

impl Unwind {
    pub fn parse(spec: &Bson) -> Result<Unwind> {
        let (field, preserve, index_field) = match spec {
            Bson::String(s) => (s.clone(), false, None),
            Bson::Document(d) => {
                let Some(Bson::String(p)) = d.get("path") else {
                    return Err(EngineError::location(28812, "no path specified to $unwind stage"));
                };
                let preserve = d.get("preserveNullAndEmptyArrays").is_some_and(expr::truthy);
                let index = match d.get("includeArrayIndex") {
                    Some(Bson::String(s)) if !s.is_empty() && !s.starts_with('$') => Some(path::split(s)),
                    Some(_) => return Err(EngineError::location(28810, "includeArrayIndex must be a non-empty string not starting with '$'")),
                    None => None,
                };
                (p.clone(), preserve, index)
            }
            _ => return Err(EngineError::location(15981, "expected either a string or an object as specification for $unwind stage")),
        };
        let Some(stripped) = field.strip_prefix('$') else {
            return Err(EngineError::location(28818, format!("path option to $unwind stage should be prefixed with a '$': {field}")));
        };
        Ok(Unwind { field: stripped.to_string(), parts: path::split(stripped), preserve, index_field })
    }

    pub fn apply(&self, docs: Vec<Document>) -> Result<Vec<Document>> {
        let mut out = Vec::with_capacity(docs.len());
        for doc in docs {
            self.unwind_one(doc, &mut out)?;
        }
        Ok(out)
    }

    fn unwind_one(&self, mut doc: Document, out: &mut Vec<Document>) -> Result<()> {
        // Take the array out (null keeps its place), so copies of the
        // document for each element do not copy the array too.
        let taken = path::get_mut(&mut doc, &self.parts).map(|slot| match slot {
            Bson::Array(items) if !items.is_empty() => Some(std::mem::take(items)),
            _ => None,
        });
        match taken {
            Some(Some(items)) => {
                let n = items.len();
                for (i, item) in items.into_iter().enumerate() {
                    let mut d = if i + 1 == n { std::mem::take(&mut doc) } else { doc.clone() };
                    path::set(&mut d, &self.parts, item)?;
                    if let Some(ix) = &self.index_field {
                        path::set(&mut d, ix, Bson::Int64(i as i64))?;
                    }
                    out.push(d);
                }
            }
            _ => {
                let value = path::get(&doc, &self.parts);
                match value {
                    Some(Bson::Array(_)) | Some(Bson::Null) | Some(Bson::Undefined) | None => {
                        if self.preserve {
                            if matches!(value, Some(Bson::Array(_))) {
                                path::unset(&mut doc, &self.parts);
                            }
                            if let Some(ix) = &self.index_field {
                                path::set(&mut doc, ix, Bson::Null)?;
                            }
                            out.push(doc);
                        }
                    }
                    Some(_) => {
                        // A non-array value unwinds as a one-element array.
                        if let Some(ix) = &self.index_field {
                            path::set(&mut doc, ix, Bson::Null)?;
                        }
                        out.push(doc);
                    }
                }
            }
        }
        Ok(())
    }

    /// Unwinds `matches` as if they had been set as the array `field` of
    /// `doc` (a top-level field, which `doc` may already have).
    fn unwind_matches(&self, mut doc: Document, matches: Vec<Document>, out: &mut impl FnMut(Document) -> Result<()>) -> Result<()> {
        if matches.is_empty() {
            if self.preserve {
                doc.remove(&self.field);
                if let Some(ix) = &self.index_field {
                    path::set(&mut doc, ix, Bson::Null)?;
                }
                out(doc)?;
            }
            return Ok(());
        }
        // Where the array would have gone: the field's place, or the end.
        doc.insert(self.field.clone(), Bson::Null);
        let n = matches.len();
        for (i, m) in matches.into_iter().enumerate() {
            let mut d = if i + 1 == n { std::mem::take(&mut doc) } else { doc.clone() };
            d.insert(self.field.clone(), Bson::Document(m));
            if let Some(ix) = &self.index_field {
                path::set(&mut d, ix, Bson::Int64(i as i64))?;
            }
            out(d)?;
        }
        Ok(())
    }
}

/// The values an equality `$lookup` compares: arrays contribute their
/// elements, and a missing field counts as null.
pub(super) fn join_values(doc: &Document, field: &[String]) -> Vec<Bson> {
    let mut out = Vec::new();
    for v in path::query_values(doc, field) {
        match v {
            None => out.push(Bson::Null),
            Some(Bson::Array(items)) => {
                out.push(Bson::Array(items.clone()));
                out.extend(items.iter().cloned());
            }
            Some(other) => out.push(other.clone()),
        }
    }
    out
}

/// A join value as the hash join keys it: the value's [`canonical_key`],
/// or for a number equal to an integer (Django's keys) that integer, which
/// is the same key without formatting a string per joined document.
#[derive(PartialEq, Eq, Hash)]
enum JoinKey {
    Integer(i64),
    Canonical(String),
}

impl JoinKey {
    fn of(v: &Bson) -> JoinKey {
        match v {
            Bson::Int32(i) => JoinKey::Integer(i64::from(*i)),
            Bson::Int64(i) => JoinKey::Integer(*i),
            Bson::Double(_) | Bson::Decimal128(_) => match crate::num::Num::from_bson(v).filter(|n| !n.is_nan()).and_then(|n| n.to_i64_exact()) {
                Some(i) => JoinKey::Integer(i),
                None => JoinKey::Canonical(canonical_key(v)),
            },
            other => JoinKey::Canonical(canonical_key(other)),
        }
    }

    /// [`JoinKey::of`] a value read from stored bytes: integers (Django's
    /// keys) without decoding anything.
    fn of_raw(v: RawBsonRef<'_>) -> Result<JoinKey> {
        Ok(match v {
            RawBsonRef::Int32(i) => JoinKey::Integer(i64::from(i)),
            RawBsonRef::Int64(i) => JoinKey::Integer(i),
            other => JoinKey::of(&owned(other)?),
        })
    }
}

/// The keys of a stored document's join values at `field`, given the value
/// of its first name (as [`join_values`] gives them for the decoded
/// document).
fn join_keys(head: Option<RawBsonRef<'_>>, field: &[String]) -> Result<Vec<JoinKey>> {
    let Some(name) = field.first() else { return Ok(Vec::new()) };
    let value = head.map(owned).transpose()?;
    // The usual case: a top-level scalar (or nothing: null).
    if field.len() == 1 && !matches!(value, Some(Bson::Array(_))) {
        return Ok(vec![JoinKey::of(value.as_ref().unwrap_or(&Bson::Null))]);
    }
    let mut top = Document::new();
    if let Some(v) = value {
        top.insert(name.clone(), v);
    }
    Ok(join_values(&top, field).iter().map(JoinKey::of).collect())
}

/// At most this many distinct join keys are looked up one by one; past it a
/// scan of the foreign collection is as cheap.
const MAX_JOIN_LOOKUPS: usize = 1000;

/// The distinct local join values of `docs`, when an equality lookup on them
/// finds every foreign match: plain scalars only. A null or missing local
/// value also matches foreign documents lacking the field, and an array also
/// matches a foreign array equal to it, so those need a scan.
fn distinct_join_keys(docs: &[Document], local: &[String]) -> Option<Vec<Bson>> {
    let mut seen = HashSet::new();
    let mut keys = Vec::new();
    for doc in docs {
        for v in join_values(doc, local) {
            let plain = matches!(
                v,
                Bson::String(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::ObjectId(_) | Bson::Boolean(_) | Bson::DateTime(_)
            );
            if !plain {
                return None;
            }
            if seen.insert(canonical_key(&v)) {
                keys.push(v);
                if keys.len() > MAX_JOIN_LOOKUPS {
                    return None;
                }
            }
        }
    }
    Some(keys)
}

/// A parsed `$lookup`.
pub(super) struct Lookup {
    /// The `as` field.
    pub as_field: String,
    from: Option<String>,
    local: Option<Vec<String>>,
    foreign: Option<Vec<String>>,
    pipeline: Option<Vec<Document>>,
    let_spec: Document,
}

impl Lookup {
    pub fn parse(spec: &Document) -> Result<Lookup> {
        let as_field = match spec.get("as") {
            Some(Bson::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(EngineError::bad_value("$lookup requires an 'as' field")),
        };
        let from = match spec.get("from") {
            Some(Bson::String(s)) => Some(s.clone()),
            Some(Bson::Document(d)) => d.get_str("coll").ok().map(str::to_string),
            None => None,
            Some(other) => return Err(EngineError::location(40321, format!("$lookup 'from' must be a string, found {other}"))),
        };
        let local = spec.get_str("localField").ok().map(path::split);
        let foreign = spec.get_str("foreignField").ok().map(path::split);
        if local.is_some() != foreign.is_some() {
            return Err(EngineError::bad_value("$lookup requires both or neither of 'localField' and 'foreignField'"));
        }
        let pipeline = match spec.get("pipeline") {
            Some(p) => Some(stage_list("$lookup", p)?),
            None => None,
        };
        if pipeline.is_none() && local.is_none() {
            return Err(EngineError::location(4570, "$lookup requires either 'pipeline' or both 'localField' and 'foreignField'"));
        }
        let let_spec = match spec.get("let") {
            Some(Bson::Document(d)) => d.clone(),
            Some(_) => return Err(EngineError::bad_value("$lookup 'let' must be an object")),
            None => Document::new(),
        };
        Ok(Lookup { as_field, from, local, foreign, pipeline, let_spec })
    }

    /// Sets each document's `as` field to its matches; `rest` is the rest
    /// of the pipeline (what it reads of the matches need be read).
    pub fn apply<'r>(&self, docs: Vec<Document>, source: &dyn CollectionSource, vars: &Vars, rest: impl IntoIterator<Item = &'r Document>) -> Result<Vec<Document>> {
        let parts: Vec<&str> = self.as_field.split('.').collect();
        let mut out = Vec::with_capacity(docs.len());
        self.join(docs, source, vars, rest, |mut doc, matched| {
            path::assign(&mut doc, &parts, Some(Bson::Array(matched.into_iter().map(Bson::Document).collect())));
            out.push(doc);
            Ok(())
        })?;
        Ok(out)
    }

    /// Whether `unwind` unwinds exactly this lookup's results.
    pub fn unwound_by(&self, unwind: &Unwind) -> bool {
        !self.as_field.contains('.') && unwind.field == self.as_field
    }

    /// `$lookup` then `$unwind` of its `as` field, in one pass.
    pub fn apply_unwound<'r>(
        &self,
        unwind: &Unwind,
        docs: Vec<Document>,
        source: &dyn CollectionSource,
        vars: &Vars,
        rest: impl IntoIterator<Item = &'r Document>,
    ) -> Result<Vec<Document>> {
        let mut out = Vec::with_capacity(docs.len());
        self.apply_unwound_into(unwind, docs, source, vars, rest, |d| {
            out.push(d);
            Ok(())
        })?;
        Ok(out)
    }

    /// [`Lookup::apply_unwound`], handing each unwound document to `sink` as
    /// soon as it is made instead of collecting them.
    pub fn apply_unwound_into<'r>(
        &self,
        unwind: &Unwind,
        docs: Vec<Document>,
        source: &dyn CollectionSource,
        vars: &Vars,
        rest: impl IntoIterator<Item = &'r Document>,
        mut sink: impl FnMut(Document) -> Result<()>,
    ) -> Result<()> {
        self.join(docs, source, vars, rest, |doc, matched| unwind.unwind_matches(doc, matched, &mut sink))
    }

    /// `$lookup`, `$unwind` of its result, then `grouper` (a `$group`), for a
    /// group that splits at the `as` field (`sides`, from
    /// [`Grouper::split_at`]; Django's `annotate()` over a relation): the
    /// group key is computed once per local document, and each match reaches
    /// the accumulators that read it as `{as: match}`, without a copy of the
    /// local document per match.
    #[allow(clippy::too_many_arguments)]
    pub fn group_unwound<'r>(
        &self,
        unwind: &Unwind,
        docs: Vec<Document>,
        source: &dyn CollectionSource,
        vars: &Vars,
        rest: impl IntoIterator<Item = &'r Document>,
        grouper: &mut Grouper,
        sides: &[bool],
    ) -> Result<()> {
        if self.group_unwound_raw(unwind, &docs, source, vars, grouper, sides)? {
            return Ok(());
        }
        // One document `{as: match}`, its value replaced for each match (no
        // field name allocated per match).
        let mut joined = Document::new();
        joined.insert(self.as_field.as_str(), Bson::Null);
        let nothing = Document::new();
        self.join(docs, source, vars, rest, |doc, matched| {
            if matched.is_empty() {
                if unwind.preserve {
                    // The document comes through without the field.
                    let slot = grouper.slot(&doc, vars)?;
                    grouper.accumulate_split(slot, &doc, &nothing, sides, vars)?;
                }
                return Ok(());
            }
            let slot = grouper.slot(&doc, vars)?;
            for m in matched {
                if let Some(value) = joined.get_mut(&self.as_field) {
                    *value = Bson::Document(m);
                }
                grouper.accumulate_split(slot, &doc, &joined, sides, vars)?;
            }
            Ok(())
        })
    }

    /// [`Lookup::group_unwound`] on the stored bytes of the joined documents,
    /// when the arguments of the accumulators that read them compile
    /// ([`Grouper::compile_joined`]) and the source hands over stored bytes
    /// (of the matches found by an index, or of the whole collection): no
    /// joined document is decoded, each is read once for those arguments
    /// whatever number of local documents it joins. The groups see
    /// what the general path shows them, in the same order (local documents
    /// in input order, each one's matches in collection order). `false`,
    /// having done nothing, otherwise.
    fn group_unwound_raw(&self, unwind: &Unwind, docs: &[Document], source: &dyn CollectionSource, vars: &Vars, grouper: &mut Grouper, sides: &[bool]) -> Result<bool> {
        let (Some(from), Some(local), Some(foreign), None) = (&self.from, &self.local, &self.foreign, &self.pipeline) else {
            return Ok(false);
        };
        // A rebound `$$CURRENT` changes what a field path reads.
        if vars.contains_key("CURRENT") {
            return Ok(false);
        }
        let mut fields = RawFields::default();
        let Some(args) = grouper.compile_joined(sides, &self.as_field, &mut fields) else {
            return Ok(false);
        };
        let Some(key_slot) = foreign.first().map(|name| fields.slot(name)) else {
            return Ok(false);
        };
        if let Some(keyed) = PerKey::plan(grouper, docs, local, sides, vars) {
            let compiled: Vec<&RawExpr> = args.iter().flatten().collect();
            return keyed.run(self, unwind, docs, source, vars, grouper, sides, (&fields, key_slot, &compiled));
        }
        // The local documents each join key belongs to, in input order.
        let mut owners_of: HashMap<JoinKey, Vec<usize>> = HashMap::new();
        for (i, doc) in docs.iter().enumerate() {
            for v in join_values(doc, local) {
                let owners = owners_of.entry(JoinKey::of(&v)).or_default();
                if owners.last() != Some(&i) {
                    owners.push(i);
                }
            }
        }
        let compiled: Vec<&RawExpr> = args.iter().flatten().collect();
        // Per local document: its number of matches and their evaluated
        // arguments (`compiled.len()` per match), in collection order.
        let mut matches: Vec<(usize, Vec<Value>)> = vec![(0, Vec::new()); docs.len()];
        let mut owners: Vec<usize> = Vec::new();
        let mut visit = |raw: &RawDocument| {
            let values = fields.read(raw)?;
            owners.clear();
            for key in join_keys(values.get(key_slot).copied().flatten(), foreign)? {
                if let Some(o) = owners_of.get(&key) {
                    owners.extend(o);
                }
            }
            if owners.is_empty() {
                return Ok(());
            }
            owners.sort_unstable();
            owners.dedup();
            let values = compiled.iter().map(|e| e.eval(&values)).collect::<Result<Vec<Value>>>()?;
            for &o in &owners {
                if let Some((n, out)) = matches.get_mut(o) {
                    *n += 1;
                    out.extend(values.iter().cloned());
                }
            }
            Ok(())
        };
        // The join keys pick the matches, whichever documents are visited.
        if !self.visit_matches(docs, source, &mut visit)? {
            return Ok(false);
        }
        source.note_join(from, JoinExecution::GroupPerMatch);
        let per_match = compiled.len();
        let nothing = Document::new();
        for (doc, (n, values)) in docs.iter().zip(&matches) {
            if *n == 0 {
                if unwind.preserve {
                    // The document comes through without the field.
                    let slot = grouper.slot(doc, vars)?;
                    grouper.accumulate_split(slot, doc, &nothing, sides, vars)?;
                }
                continue;
            }
            let slot = grouper.slot(doc, vars)?;
            for m in 0..*n {
                grouper.accumulate_evaluated(slot, doc, &values[m * per_match..(m + 1) * per_match], sides, vars)?;
            }
        }
        Ok(true)
    }

    /// Finds the matches of the join as [`Lookup::group_unwound_raw`] does,
    /// handing each to `visit`: through an index when one finds them (at
    /// most MAX_JOIN_LOOKUPS plain values, as for the general path), else
    /// from every foreign document. `false` if the source can do neither.
    fn visit_matches(&self, docs: &[Document], source: &dyn CollectionSource, visit: &mut dyn FnMut(&RawDocument) -> Result<()>) -> Result<bool> {
        let (Some(from), Some(local), Some(foreign)) = (&self.from, &self.local, &self.foreign) else {
            return Ok(false);
        };
        let found = match distinct_join_keys(docs, local) {
            Some(keys) => source.visit_equal(from, &foreign.join("."), &keys, visit)?,
            None => false,
        };
        Ok(found || source.visit_all(from, visit)?)
    }

    /// The fields of the foreign documents the join and `rest` read (`None`:
    /// all of them).
    fn foreign_fields<'r>(&self, rest: impl IntoIterator<Item = &'r Document>) -> Option<Vec<String>> {
        if self.pipeline.is_some() {
            return None;
        }
        let mut fields = crate::deps::pipeline_needs(rest).below(&self.as_field)?;
        if let Some(f) = self.foreign.as_ref().and_then(|f| f.first()) {
            fields.push(f.clone());
        }
        Some(fields)
    }

    /// Finds each document's matches and hands both to `emit`.
    fn join<'r>(
        &self,
        docs: Vec<Document>,
        source: &dyn CollectionSource,
        vars: &Vars,
        rest: impl IntoIterator<Item = &'r Document>,
        mut emit: impl FnMut(Document, Vec<Document>) -> Result<()>,
    ) -> Result<()> {
        let fields = self.foreign_fields(rest);
        let fields = fields.as_deref();
        let foreign_docs = match (&self.from, &self.local, &self.foreign) {
            (Some(c), Some(l), Some(f)) => {
                // An equality join on an indexed foreign field reads only the
                // foreign documents that can match (Django's joins on primary
                // keys), not the whole collection.
                let found = match distinct_join_keys(&docs, l) {
                    Some(keys) => source.find_equal(c, &f.join("."), &keys, fields)?,
                    None => None,
                };
                match found {
                    Some(d) => d,
                    None => source.scan_fields(c, fields)?,
                }
            }
            (Some(c), _, _) => source.scan_fields(c, fields)?,
            (None, _, _) => Vec::new(),
        };
        // Index the foreign side by join key once, so each input document costs
        // a few hash lookups instead of a scan of the foreign collection.
        let mut foreign_index: HashMap<String, Vec<usize>> = HashMap::new();
        if let Some(f) = &self.foreign {
            for (i, d) in foreign_docs.iter().enumerate() {
                // The usual case, a top-level field holding a scalar (or
                // missing: null), is keyed without collecting its values.
                if let [name] = f.as_slice() {
                    match d.get(name) {
                        Some(Bson::Array(_)) => {}
                        value => {
                            foreign_index.entry(canonical_key(value.unwrap_or(&Bson::Null))).or_default().push(i);
                            continue;
                        }
                    }
                }
                match join_values(d, f).as_slice() {
                    // The usual case: one value, no set to dedupe it in.
                    [one] => foreign_index.entry(canonical_key(one)).or_default().push(i),
                    values => {
                        let keys: HashSet<String> = values.iter().map(canonical_key).collect();
                        for k in keys {
                            foreign_index.entry(k).or_default().push(i);
                        }
                    }
                }
            }
        }
        // Each document's matches, foreign documents once each in collection
        // order; a foreign document is moved to its last match, not copied.
        let hits: Vec<Vec<usize>> = match &self.local {
            Some(l) => docs
                .iter()
                .map(|doc| {
                    let mut hits: Vec<usize> =
                        join_values(doc, l).iter().filter_map(|v| foreign_index.get(&canonical_key(v))).flatten().copied().collect();
                    hits.sort_unstable();
                    hits.dedup();
                    hits
                })
                .collect(),
            None => Vec::new(),
        };
        let mut uses = vec![0usize; foreign_docs.len()];
        for i in hits.iter().flatten() {
            uses[*i] += 1;
        }
        let mut foreign_slots: Vec<Option<Document>> = Vec::new();
        let foreign_docs = if self.local.is_some() {
            foreign_slots = foreign_docs.into_iter().map(Some).collect();
            Vec::new()
        } else {
            foreign_docs
        };
        let mut hits = hits.into_iter();
        for doc in docs {
            let candidates: Vec<Document> = match hits.next() {
                Some(found) => found
                    .into_iter()
                    .filter_map(|i| {
                        uses[i] -= 1;
                        if uses[i] == 0 {
                            foreign_slots[i].take()
                        } else {
                            foreign_slots[i].clone()
                        }
                    })
                    .collect(),
                None => foreign_docs.clone(),
            };
            let matched = match &self.pipeline {
                Some(stages) => {
                    let mut inner = vars.clone();
                    for (k, e) in &self.let_spec {
                        inner.insert(k.clone(), expr::eval(e, &doc, vars)?);
                    }
                    super::run_with_vars(stages, candidates, source, &inner)?
                }
                None => candidates,
            };
            emit(doc, matched)?;
        }
        Ok(())
    }
}

/// [`Lookup::group_unwound_raw`] per join key: when every local document
/// has one join value and a group of its own that has not started (Django's
/// `annotate()` groups by the local primary key), a group's joined
/// accumulators see exactly the matches of one key, in collection order. So
/// each foreign document is accumulated straight into its key's states as it
/// is visited (the accumulators' own arithmetic, in the same order), and each
/// group takes its key's states at the end: nothing is kept per match.
struct PerKey {
    /// Per local document: its group's key (value and canonical form) and
    /// the index of its join key.
    locals: Vec<(Bson, String, usize)>,
    /// The distinct local join keys, numbered.
    keys: HashMap<JoinKey, usize>,
}

/// The compiled side of the group: the fields read from each joined
/// document, the slot of the join key's first name among them, and the
/// arguments of the accumulators that read the join, in their order.
type Compiled<'a> = (&'a RawFields, usize, &'a [&'a RawExpr]);

impl PerKey {
    /// The plan, or `None` when the case does not hold: a local document
    /// whose join value is an array (a missing one is null, which joins
    /// foreign nulls and missing fields, one key like any other), two local
    /// documents in one group, a group an earlier batch started, or a group
    /// key that fails to evaluate (the general path reports the error where
    /// it would).
    fn plan(grouper: &Grouper, docs: &[Document], local: &[String], sides: &[bool], vars: &Vars) -> Option<PerKey> {
        grouper.joined_kinds(sides)?;
        let mut keys: HashMap<JoinKey, usize> = HashMap::new();
        let mut groups: HashSet<String> = HashSet::with_capacity(docs.len());
        let mut locals = Vec::with_capacity(docs.len());
        for doc in docs {
            let [value] = join_values(doc, local).try_into().ok()?;
            if matches!(value, Bson::Array(_)) {
                return None;
            }
            let (id, group) = grouper.key_of(doc, vars).ok()?;
            if grouper.has_group(&group) || !groups.insert(group.clone()) {
                return None;
            }
            let next = keys.len();
            let k = *keys.entry(JoinKey::of(&value)).or_insert(next);
            locals.push((id, group, k));
        }
        Some(PerKey { locals, keys })
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        self,
        lookup: &Lookup,
        unwind: &Unwind,
        docs: &[Document],
        source: &dyn CollectionSource,
        vars: &Vars,
        grouper: &mut Grouper,
        sides: &[bool],
        (fields, key_slot, compiled): Compiled<'_>,
    ) -> Result<bool> {
        let (Some(from), Some(foreign)) = (&lookup.from, &lookup.foreign) else {
            return Ok(false);
        };
        let Some(kinds) = grouper.joined_kinds(sides) else {
            return Ok(false);
        };
        if kinds.len() != compiled.len() {
            return Ok(false);
        }
        let PerKey { locals, keys } = self;
        // Per join key: its matches so far, and the joined accumulators'
        // states after them.
        let mut per_key: Vec<(usize, Vec<State>)> = vec![(0, kinds.iter().map(|k| initial(*k)).collect()); keys.len()];
        let mut hits: Vec<usize> = Vec::new();
        let null_key = JoinKey::of(&Bson::Null);
        let mut visit = |raw: &RawDocument| {
            fields.read_with(raw, |values| {
                let head = values.get(key_slot).copied().flatten();
                hits.clear();
                if foreign.len() == 1 && !matches!(head, Some(RawBsonRef::Array(_))) {
                    // The usual case: a top-level scalar (or nothing: null).
                    let found = match head {
                        Some(v) => keys.get(&JoinKey::of_raw(v)?),
                        None => keys.get(&null_key),
                    };
                    hits.extend(found);
                } else {
                    for key in join_keys(head, foreign)? {
                        if let Some(k) = keys.get(&key) {
                            if !hits.contains(k) {
                                hits.push(*k);
                            }
                        }
                    }
                }
                for &k in &hits {
                    let Some((n, states)) = per_key.get_mut(k) else { continue };
                    *n += 1;
                    for ((state, kind), arg) in states.iter_mut().zip(&kinds).zip(compiled) {
                        accumulate(state, *kind, arg.eval(values)?)?;
                    }
                }
                Ok(())
            })
        };
        if !lookup.visit_matches(docs, source, &mut visit)? {
            return Ok(false);
        }
        source.note_join(from, JoinExecution::GroupPerKey);
        // A key's states go to its last local document, copies to the others.
        let mut uses = vec![0usize; per_key.len()];
        for (_, _, k) in &locals {
            uses[*k] += 1;
        }
        let nothing = Document::new();
        for (doc, (id, group, k)) in docs.iter().zip(locals) {
            let Some((n, states)) = per_key.get_mut(k) else { continue };
            uses[k] -= 1;
            if *n == 0 {
                if unwind.preserve {
                    // The document comes through without the field.
                    let slot = grouper.slot_keyed(id, group, vars)?;
                    grouper.accumulate_split(slot, doc, &nothing, sides, vars)?;
                }
                continue;
            }
            let joined = if uses[k] == 0 { std::mem::take(states) } else { states.clone() };
            let slot = grouper.slot_keyed(id, group, vars)?;
            grouper.take_joined(slot, doc, *n, joined, sides, vars)?;
        }
        Ok(true)
    }
}

#[cfg(test)]
#[path = "join_tests.rs"]
mod tests;
