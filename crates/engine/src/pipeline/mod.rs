//! The aggregation pipeline: `$match`, `$project`, `$lookup`, `$group`, ...
//!
//! Stages run one after the other over a `Vec<Document>`; each is a small
//! function of the previous stage's output. Variables bound by a `$lookup`'s
//! `let` flow into its sub-pipeline through `vars`.
use crate::compare::canonical_key;
use crate::expr::{self, Vars};
use crate::projection::Projection;
use crate::query::Filter;
use crate::sort::SortSpec;
use crate::{path, EngineError, Result};
use bson::{Bson, Document};
use std::collections::{HashMap, HashSet};

mod bucket;
mod densify;
mod fill;
mod graph_lookup;
mod group;
mod nary;
pub(crate) mod quantile;
mod redact;
mod window;

/// Gives the pipeline read access to other collections of the same database
/// (for `$lookup`); the server implements it over its storage and the
/// caller's transaction.
pub trait CollectionSource {
    fn scan(&self, collection: &str) -> Result<Vec<Document>>;

    /// The documents of `collection` whose `field` equals one of `values`
    /// (as `{field: {$in: values}}` matches), in collection order, when the
    /// source can find them without reading the whole collection (an index
    /// on `field`). `None` tells the caller to scan instead.
    fn find_equal(&self, _collection: &str, _field: &str, _values: &[Bson]) -> Result<Option<Vec<Document>>> {
        Ok(None)
    }
}

/// A source with no collections, for pipelines that need none.
pub struct NoCollections;

impl CollectionSource for NoCollections {
    fn scan(&self, _collection: &str) -> Result<Vec<Document>> {
        Ok(Vec::new())
    }
}

/// Runs `stages` over `input` and returns the output documents.
pub fn run_pipeline(stages: &[Document], input: Vec<Document>, source: &dyn CollectionSource) -> Result<Vec<Document>> {
    run_with_vars(stages, input, source, &Vars::new())
}

/// Runs `stages` with variables in scope (a `$lookup` sub-pipeline's `let`).
pub fn run_with_vars(
    stages: &[Document],
    input: Vec<Document>,
    source: &dyn CollectionSource,
    vars: &Vars,
) -> Result<Vec<Document>> {
    let mut docs = input;
    for (i, stage) in stages.iter().enumerate() {
        let mut it = stage.iter();
        let (Some((name, spec)), None) = (it.next(), it.next()) else {
            return Err(EngineError::location(40323, "A pipeline stage specification object must contain exactly one field."));
        };
        docs = run_stage(name, spec, docs, source, vars, i == 0)?;
    }
    Ok(docs)
}

fn spec_doc<'a>(stage: &str, spec: &'a Bson) -> Result<&'a Document> {
    match spec {
        Bson::Document(d) => Ok(d),
        _ => Err(EngineError::location(15969, format!("{stage} specification must be an object"))),
    }
}

fn non_negative(stage: &str, spec: &Bson) -> Result<usize> {
    crate::num::Num::from_bson(spec)
        .and_then(|n| n.to_i64_exact())
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| EngineError::location(15956, format!("{stage} must be a non-negative integer, got {spec}")))
}

fn run_stage(
    name: &str,
    spec: &Bson,
    docs: Vec<Document>,
    source: &dyn CollectionSource,
    vars: &Vars,
    first: bool,
) -> Result<Vec<Document>> {
    match name {
        "$match" => {
            let filter = Filter::parse(spec_doc(name, spec)?)?;
            let mut out = Vec::with_capacity(docs.len());
            for d in docs {
                if filter.matches_with_vars(&d, vars)? {
                    out.push(d);
                }
            }
            Ok(out)
        }
        "$project" => {
            let p = Projection::parse(spec_doc(name, spec)?)?;
            if p.is_empty() {
                return Err(EngineError::location(51272, "$project specification must have at least one field"));
            }
            docs.iter().map(|d| p.apply(d, vars)).collect()
        }
        "$addFields" | "$set" => {
            let fields = spec_doc(name, spec)?;
            docs.into_iter().map(|d| add_fields(d, fields, vars)).collect()
        }
        "$unset" => {
            let fields: Vec<&str> = match spec {
                Bson::String(s) => vec![s.as_str()],
                Bson::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().ok_or_else(|| EngineError::location(31120, "$unset specification must be a string or an array of strings")))
                    .collect::<Result<_>>()?,
                _ => return Err(EngineError::location(31002, "$unset specification must be a string or an array")),
            };
            let mut exclusion = Document::new();
            for f in fields {
                exclusion.insert(f, 0);
            }
            let p = Projection::parse(&exclusion)?;
            docs.iter().map(|d| p.apply(d, vars)).collect()
        }
        "$replaceRoot" | "$replaceWith" => {
            let new_root = if name == "$replaceRoot" {
                spec_doc(name, spec)?
                    .get("newRoot")
                    .ok_or_else(|| EngineError::location(40231, "no newRoot specified for the $replaceRoot stage"))?
            } else {
                spec
            };
            docs.iter()
                .map(|d| match expr::eval_value(new_root, d, vars)? {
                    Some(Bson::Document(nd)) => Ok(nd),
                    other => Err(EngineError::location(
                        40228,
                        format!(
                            "'newRoot' expression must evaluate to an object, but resulting value was: {}. Type of resulting value: '{}'.",
                            other.clone().unwrap_or(Bson::Null),
                            expr_type(&other)
                        ),
                    )),
                })
                .collect()
        }
        "$sort" => {
            let mut docs = docs;
            SortSpec::parse(spec_doc(name, spec)?)?.sort(&mut docs);
            Ok(docs)
        }
        "$skip" => {
            let n = non_negative(name, spec)?;
            Ok(docs.into_iter().skip(n).collect())
        }
        "$limit" => {
            let n = non_negative(name, spec)?;
            if n == 0 {
                return Err(EngineError::location(15958, "the limit must be positive"));
            }
            Ok(docs.into_iter().take(n).collect())
        }
        "$count" => {
            let Bson::String(field) = spec else {
                return Err(EngineError::location(40156, "the count field must be a non-empty string"));
            };
            if field.is_empty() || field.starts_with('$') || field.contains('.') {
                return Err(EngineError::location(40158, "the count field must be a non-empty string, not start with '$' and not contain '.'"));
            }
            if docs.is_empty() {
                return Ok(docs);
            }
            let mut out = Document::new();
            out.insert(field.clone(), Bson::Int32(i32::try_from(docs.len()).unwrap_or(i32::MAX)));
            Ok(vec![out])
        }
        "$group" => group::group(spec_doc(name, spec)?, docs, vars),
        "$sortByCount" => {
            let mut g = Document::new();
            g.insert("_id", spec.clone());
            g.insert("count", bson::doc! {"$sum": 1});
            let mut out = group::group(&g, docs, vars)?;
            SortSpec::parse(&bson::doc! {"count": -1})?.sort(&mut out);
            Ok(out)
        }
        "$unwind" => unwind(spec, docs),
        "$lookup" => lookup(spec_doc(name, spec)?, docs, source, vars),
        "$facet" => {
            let mut out = Document::new();
            for (field, sub) in spec_doc(name, spec)? {
                let stages = stage_list(name, sub)?;
                let result = run_with_vars(&stages, docs.clone(), source, vars)?;
                out.insert(field.clone(), result.into_iter().map(Bson::Document).collect::<Vec<_>>());
            }
            Ok(vec![out])
        }
        "$documents" => {
            if !first {
                return Err(EngineError::location(40602, "$documents is only valid as the first stage in a pipeline"));
            }
            match expr::eval_value(spec, &Document::new(), vars)? {
                Some(Bson::Array(items)) => items
                    .into_iter()
                    .map(|i| match i {
                        Bson::Document(d) => Ok(d),
                        other => Err(EngineError::type_mismatch(format!("$documents requires an array of objects, found {other}"))),
                    })
                    .collect(),
                _ => Err(EngineError::location(5858203, "$documents requires an array of objects")),
            }
        }
        "$unionWith" => {
            let (coll, stages) = match spec {
                Bson::String(s) => (Some(s.clone()), Vec::new()),
                Bson::Document(d) => (
                    d.get_str("coll").ok().map(str::to_string),
                    match d.get("pipeline") {
                        Some(p) => stage_list(name, p)?,
                        None => Vec::new(),
                    },
                ),
                _ => return Err(EngineError::bad_value("$unionWith requires a collection name or an object")),
            };
            let other = match &coll {
                Some(c) => source.scan(c)?,
                None => Vec::new(),
            };
            let mut docs = docs;
            docs.extend(run_with_vars(&stages, other, source, vars)?);
            Ok(docs)
        }
        "$setWindowFields" => window::set_window_fields(spec, docs, vars),
        "$densify" => densify::densify(spec, docs),
        "$fill" => fill::fill(spec, docs, vars),
        "$bucket" => bucket::bucket(spec, docs, vars),
        "$bucketAuto" => bucket::bucket_auto(spec, docs, vars),
        "$sample" => bucket::sample(spec, docs),
        "$graphLookup" => graph_lookup::graph_lookup(spec, docs, source, vars),
        "$redact" => redact::redact(spec, docs, vars),
        // The server runs a final $out/$merge itself (they write through its
        // storage); one that reaches the engine is not the final stage.
        "$out" | "$merge" => Err(EngineError::location(40601, format!("{name} can only be the final stage in the pipeline"))),
        "$geoNear" | "$collStats" | "$indexStats" | "$currentOp" => {
            Err(EngineError::unsupported(format!("aggregation stage {name}")))
        }
        _ => Err(EngineError::location(40324, format!("Unrecognized pipeline stage name: '{name}'"))),
    }
}

fn expr_type(v: &Option<Bson>) -> &'static str {
    match v {
        None => "missing",
        Some(b) => crate::types::type_name(b),
    }
}

fn stage_list(stage: &str, v: &Bson) -> Result<Vec<Document>> {
    let Bson::Array(items) = v else {
        return Err(EngineError::bad_value(format!("{stage} requires a pipeline (an array of stages)")));
    };
    items
        .iter()
        .map(|s| match s {
            Bson::Document(d) => Ok(d.clone()),
            _ => Err(EngineError::bad_value(format!("each stage of a {stage} pipeline must be an object"))),
        })
        .collect()
}

/// Collects (dotted path, expression) pairs; a nested plain document is a
/// set of sub-fields to add, not a literal that replaces the whole field.
fn flatten_fields(spec: &Document, prefix: &str, out: &mut Vec<(String, Bson)>) {
    for (k, v) in spec {
        let full = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            Bson::Document(d) if !d.is_empty() && !crate::query::is_operator_doc(d) => flatten_fields(d, &full, out),
            other => out.push((full, other.clone())),
        }
    }
}

/// `$addFields`: every expression sees the input document, then all
/// results are written (a `$$REMOVE` result removes the field).
pub(crate) fn add_fields(doc: Document, spec: &Document, vars: &Vars) -> Result<Document> {
    let mut fields = Vec::new();
    flatten_fields(spec, "", &mut fields);
    let mut values = Vec::with_capacity(fields.len());
    for (path, e) in &fields {
        if path.starts_with('$') {
            return Err(EngineError::location(16410, format!("FieldPath field names may not start with '$'. Given: {path}")));
        }
        values.push(expr::eval_value(e, &doc, vars)?);
    }
    let mut out = doc;
    for ((path, _), value) in fields.iter().zip(values) {
        let parts: Vec<&str> = path.split('.').collect();
        path::assign(&mut out, &parts, value);
    }
    Ok(out)
}

fn unwind(spec: &Bson, docs: Vec<Document>) -> Result<Vec<Document>> {
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
    let parts = path::split(stripped);
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let value = path::get(&doc, &parts).cloned();
        match value {
            Some(Bson::Array(items)) if !items.is_empty() => {
                for (i, item) in items.into_iter().enumerate() {
                    let mut d = doc.clone();
                    path::set(&mut d, &parts, item)?;
                    if let Some(ix) = &index_field {
                        path::set(&mut d, ix, Bson::Int64(i as i64))?;
                    }
                    out.push(d);
                }
            }
            Some(Bson::Array(_)) | Some(Bson::Null) | Some(Bson::Undefined) | None => {
                if preserve {
                    let mut d = doc;
                    if matches!(value, Some(Bson::Array(_))) {
                        path::unset(&mut d, &parts);
                    }
                    if let Some(ix) = &index_field {
                        path::set(&mut d, ix, Bson::Null)?;
                    }
                    out.push(d);
                }
            }
            Some(_) => {
                // A non-array value unwinds as a one-element array.
                let mut d = doc;
                if let Some(ix) = &index_field {
                    path::set(&mut d, ix, Bson::Null)?;
                }
                out.push(d);
            }
        }
    }
    Ok(out)
}

/// The values an equality `$lookup` compares: arrays contribute their
/// elements, and a missing field counts as null.
fn join_values(doc: &Document, field: &[String]) -> Vec<Bson> {
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

fn lookup(spec: &Document, docs: Vec<Document>, source: &dyn CollectionSource, vars: &Vars) -> Result<Vec<Document>> {
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
    let foreign_docs = match (&from, &local, &foreign) {
        (Some(c), Some(l), Some(f)) => {
            // An equality join on an indexed foreign field reads only the
            // foreign documents that can match (Django's joins on primary
            // keys), not the whole collection.
            let found = match distinct_join_keys(&docs, l) {
                Some(keys) => source.find_equal(c, &f.join("."), &keys)?,
                None => None,
            };
            match found {
                Some(d) => d,
                None => source.scan(c)?,
            }
        }
        (Some(c), _, _) => source.scan(c)?,
        (None, _, _) => Vec::new(),
    };
    // Index the foreign side by join key once, so each input document costs
    // a few hash lookups instead of a scan of the foreign collection.
    let mut foreign_index: HashMap<String, Vec<usize>> = HashMap::new();
    if let Some(f) = &foreign {
        for (i, d) in foreign_docs.iter().enumerate() {
            let keys: HashSet<String> = join_values(d, f).iter().map(canonical_key).collect();
            for k in keys {
                foreign_index.entry(k).or_default().push(i);
            }
        }
    }
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let candidates: Vec<Document> = match &local {
            Some(l) => {
                let mut hits: Vec<usize> = join_values(&doc, l)
                    .iter()
                    .filter_map(|v| foreign_index.get(&canonical_key(v)))
                    .flatten()
                    .copied()
                    .collect();
                // Foreign documents come out once each, in collection order.
                hits.sort_unstable();
                hits.dedup();
                hits.into_iter().filter_map(|i| foreign_docs.get(i).cloned()).collect()
            }
            None => foreign_docs.clone(),
        };
        let matched = match &pipeline {
            Some(stages) => {
                let mut inner = vars.clone();
                for (k, e) in &let_spec {
                    inner.insert(k.clone(), expr::eval(e, &doc, vars)?);
                }
                run_with_vars(stages, candidates, source, &inner)?
            }
            None => candidates,
        };
        let mut d = doc;
        let parts: Vec<&str> = as_field.split('.').collect();
        path::assign(&mut d, &parts, Some(Bson::Array(matched.into_iter().map(Bson::Document).collect())));
        out.push(d);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod bucket_tests;
#[cfg(test)]
mod window_tests;
