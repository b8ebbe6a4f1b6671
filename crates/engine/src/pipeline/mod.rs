//! The aggregation pipeline: `$match`, `$project`, `$lookup`, `$group`, ...
//!
//! Stages run one after the other over a `Vec<Document>`; each is a small
//! function of the previous stage's output. Variables bound by a `$lookup`'s
//! `let` flow into its sub-pipeline through `vars`.
use crate::expr::{self, Vars};
use crate::projection::Projection;
use crate::query::Filter;
use crate::sort::SortSpec;
use crate::{path, EngineError, Result};
use bson::{Bson, Document, RawDocument};

mod bucket;
mod densify;
mod fill;
mod graph_lookup;
mod group;
mod join;
mod nary;
mod optimize;
pub(crate) mod quantile;
mod redact;
mod stream;
mod window;

pub use optimize::optimize;
pub use stream::{run_pipeline_from, run_pipeline_from_with_vars};

use join::{join_values, Lookup, Unwind};

/// Gives the pipeline read access to other collections of the same database
/// (for `$lookup`); the server implements it over its storage and the
/// caller's transaction.
pub trait CollectionSource {
    fn scan(&self, collection: &str) -> Result<Vec<Document>>;

    /// Like [`CollectionSource::scan`], for a caller that reads only
    /// `fields` (top-level names) of each document, and `_id`: a source may
    /// leave the other fields out. `None` means every field.
    fn scan_fields(&self, collection: &str, fields: Option<&[String]>) -> Result<Vec<Document>> {
        let _ = fields;
        self.scan(collection)
    }

    /// The documents of `collection` whose `field` equals one of `values`
    /// (as `{field: {$in: values}}` matches), in collection order, when the
    /// source can find them without reading the whole collection (an index
    /// on `field`); `fields` as for `scan_fields`. `None` tells the caller
    /// to scan instead.
    fn find_equal(&self, _collection: &str, _field: &str, _values: &[Bson], _fields: Option<&[String]>) -> Result<Option<Vec<Document>>> {
        Ok(None)
    }

    /// The documents [`CollectionSource::find_equal`] would find, each
    /// handed to `visit` as its stored bytes instead of being decoded, in
    /// the same order. `false` (before visiting any) when the source cannot
    /// find them without reading the whole collection.
    fn visit_equal(&self, _collection: &str, _field: &str, _values: &[Bson], _visit: &mut dyn FnMut(&RawDocument) -> Result<()>) -> Result<bool> {
        Ok(false)
    }

    /// Every document of `collection`, handed to `visit` as its stored
    /// bytes, in the order [`CollectionSource::scan`] gives them. `false`
    /// (before visiting any) when the source cannot.
    fn visit_all(&self, _collection: &str, _visit: &mut dyn FnMut(&RawDocument) -> Result<()>) -> Result<bool> {
        Ok(false)
    }

    /// Told how a `$lookup` of `collection` unwound into a `$group` ran on
    /// the joined documents' stored bytes (for explain).
    fn note_join(&self, _collection: &str, _execution: JoinExecution) {}
}

/// How a `$group` right after a `$lookup` and the `$unwind` of its result
/// ran, when it ran on the joined documents' stored bytes (explain's
/// `groupedJoin`); the general path decodes each joined document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinExecution {
    /// Each joined document accumulated into its join key's running states
    /// as it was read (a hash aggregate over the join's keys); each group
    /// took one key's states.
    GroupPerKey,
    /// Each joined document's arguments evaluated as it was read, kept per
    /// local document, and accumulated group by group after the read.
    GroupPerMatch,
}

impl JoinExecution {
    /// The name explain shows.
    pub fn name(self) -> &'static str {
        match self {
            JoinExecution::GroupPerKey => "perJoinKey",
            JoinExecution::GroupPerMatch => "perMatch",
        }
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
    run_before(stages, &[], input, source, vars)
}

/// Runs `stages`, which `following` will continue (only read to know what
/// later stages need of the documents).
pub(crate) fn run_before(
    stages: &[Document],
    following: &[Document],
    input: Vec<Document>,
    source: &dyn CollectionSource,
    vars: &Vars,
) -> Result<Vec<Document>> {
    let mut docs = input;
    let mut i = 0;
    while i < stages.len() {
        let (name, spec) = single_stage(&stages[i])?;
        let next = stages.get(i + 1).map(single_stage).transpose()?;
        match (name, next) {
            ("$lookup", next) => {
                let lookup = Lookup::parse(spec_doc(name, spec)?)?;
                // A $lookup unwound right away: the unwound documents directly.
                if let Some(("$unwind", unwind_spec)) = next {
                    let unwind = Unwind::parse(unwind_spec)?;
                    if lookup.unwound_by(&unwind) {
                        docs = lookup.apply_unwound(&unwind, docs, source, vars, stages[i + 2..].iter().chain(following))?;
                        i += 2;
                        continue;
                    }
                }
                docs = lookup.apply(docs, source, vars, stages[i + 1..].iter().chain(following))?;
            }
            // A $sort before a $limit only has to find the first few.
            ("$sort", Some(("$limit", limit))) => {
                let sort = SortSpec::parse(spec_doc(name, spec)?)?;
                match non_negative("$limit", limit) {
                    Ok(n) if n > 0 => sort.sort_top(&mut docs, n),
                    _ => sort.sort(&mut docs),
                }
            }
            _ => docs = run_stage(name, spec, docs, source, vars, i == 0)?,
        }
        i += 1;
    }
    Ok(docs)
}

/// A stage's name and argument.
fn single_stage(stage: &Document) -> Result<(&str, &Bson)> {
    let mut it = stage.iter();
    match (it.next(), it.next()) {
        (Some((name, spec)), None) => Ok((name.as_str(), spec)),
        _ => Err(EngineError::location(40323, "A pipeline stage specification object must contain exactly one field.")),
    }
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
            crate::geo::refuse_near(spec_doc(name, spec)?)?;
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
            out.insert(field.clone(), crate::num::count_bson(docs.len()));
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
        "$unwind" => Unwind::parse(spec)?.apply(docs),
        "$lookup" => Lookup::parse(spec_doc(name, spec)?)?.apply(docs, source, vars, []),
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
        // The server runs a leading $geoNear against the collection's geo index.
        "$geoNear" => Err(EngineError::location(40602, "$geoNear is only valid as the first stage in a pipeline")),
        "$collStats" | "$indexStats" | "$currentOp" => {
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

#[cfg(test)]
mod tests;
#[cfg(test)]
mod bucket_tests;
#[cfg(test)]
mod window_tests;
