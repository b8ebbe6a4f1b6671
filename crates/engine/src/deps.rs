//! Which fields of its input documents a filter, an expression, a projection
//! or the rest of a pipeline reads (MongoDB's dependency tracking), so that
//! a reader can decode only those fields of stored documents.
//!
//! The analysis over-approximates: anything it does not understand (a
//! `$$ROOT`, `$getField`, an unknown stage, a pipeline whose output keeps
//! whole documents) means every field.
use bson::{Bson, Document};
use std::collections::BTreeSet;

/// The fields something reads: dotted paths, or everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needs {
    All,
    Paths {
        /// Paths whose values are read.
        read: BTreeSet<String>,
        /// Paths only walked (an `$unwind`): their top-level field is
        /// needed, but not every field below it.
        walked: BTreeSet<String>,
    },
}

impl Default for Needs {
    fn default() -> Needs {
        Needs::Paths { read: BTreeSet::new(), walked: BTreeSet::new() }
    }
}

impl Needs {
    fn read(&mut self, path: &str) {
        if let Needs::Paths { read, .. } = self {
            read.insert(path.to_string());
        }
    }

    fn walk(&mut self, path: &str) {
        if let Needs::Paths { walked, .. } = self {
            walked.insert(path.to_string());
        }
    }

    /// The top-level fields needed, or `None` for every field.
    pub fn top_level(&self) -> Option<Vec<String>> {
        match self {
            Needs::All => None,
            Needs::Paths { read, walked } => {
                let mut out: BTreeSet<String> = BTreeSet::new();
                for p in read.iter().chain(walked) {
                    out.insert(first(p).to_string());
                }
                Some(out.into_iter().collect())
            }
        }
    }

    /// The top-level fields of the documents held in `field` that are
    /// needed (`None`: all of them, e.g. when `field` itself is read whole).
    pub fn below(&self, field: &str) -> Option<Vec<String>> {
        match self {
            Needs::All => None,
            Needs::Paths { read, walked } => {
                let mut out = BTreeSet::new();
                let prefix = format!("{field}.");
                for p in read {
                    if p == field || field.starts_with(&format!("{p}.")) {
                        return None;
                    }
                    if let Some(rest) = p.strip_prefix(&prefix) {
                        out.insert(first(rest).to_string());
                    }
                }
                // Unwinding `field.tags` reads `tags` (unwinding `field`
                // itself reads nothing inside it).
                for p in walked {
                    if let Some(rest) = p.strip_prefix(&prefix) {
                        out.insert(first(rest).to_string());
                    }
                }
                Some(out.into_iter().collect())
            }
        }
    }
}

fn first(path: &str) -> &str {
    path.split('.').next().unwrap_or(path)
}

/// The fields a query filter reads.
pub fn filter_needs(filter: &Document, needs: &mut Needs) {
    for (key, value) in filter {
        match key.as_str() {
            "$and" | "$or" | "$nor" => match value {
                Bson::Array(items) => {
                    for item in items {
                        match item {
                            Bson::Document(d) => filter_needs(d, needs),
                            _ => *needs = Needs::All,
                        }
                    }
                }
                _ => *needs = Needs::All,
            },
            "$expr" => expression_needs(value, needs),
            "$comment" | "$alwaysTrue" | "$alwaysFalse" => {}
            k if k.starts_with('$') => *needs = Needs::All,
            path => needs.read(path),
        }
    }
}

/// The fields an aggregation expression reads.
pub fn expression_needs(expr: &Bson, needs: &mut Needs) {
    match expr {
        Bson::String(s) => {
            if let Some(var) = s.strip_prefix("$$") {
                let (name, rest) = var.split_once('.').unwrap_or((var, ""));
                if name == "ROOT" || name == "CURRENT" {
                    if rest.is_empty() {
                        *needs = Needs::All;
                    } else {
                        needs.read(rest);
                    }
                }
            } else if let Some(path) = s.strip_prefix('$') {
                if !path.is_empty() {
                    needs.read(path);
                }
            }
        }
        Bson::Array(items) => items.iter().for_each(|i| expression_needs(i, needs)),
        Bson::Document(d) => {
            for (k, v) in d {
                match k.as_str() {
                    "$literal" => {}
                    // Field names as data, or code: anything.
                    "$getField" | "$setField" | "$unsetField" | "$function" | "$accumulator" | "$where" => *needs = Needs::All,
                    // The accumulators that sort name their sort fields as
                    // keys of `sortBy`, not as `$` paths.
                    "$top" | "$bottom" | "$topN" | "$bottomN" => {
                        if let Bson::Document(spec) = v {
                            match spec.get("sortBy") {
                                Some(Bson::Document(sort)) => sort.keys().for_each(|k| needs.read(k)),
                                Some(_) => *needs = Needs::All,
                                None => {}
                            }
                        }
                        expression_needs(v, needs);
                    }
                    _ => expression_needs(v, needs),
                }
            }
        }
        _ => {}
    }
}

/// The fields a `$project` (or a find projection) reads; an exclusion
/// projection keeps every other field, so it needs all.
pub fn projection_needs(spec: &Document, needs: &mut Needs) {
    // `{_id: 0}` alone is an exclusion; with other fields it only drops `_id`.
    let only_id = spec.keys().all(|k| k == "_id");
    let excludes = spec.iter().any(|(k, v)| (k != "_id" || only_id) && excludes_something(v));
    if excludes {
        *needs = Needs::All;
        return;
    }
    let id_excluded = spec.get("_id").is_some_and(is_zero);
    if !id_excluded {
        needs.read("_id");
    }
    for (k, v) in spec {
        if k == "_id" && id_excluded {
            continue;
        }
        // The key may name an included field (or a computed one: reading it
        // too is harmless); the value may be an expression.
        needs.read(k);
        expression_needs(v, needs);
    }
}

fn is_zero(v: &Bson) -> bool {
    match v {
        Bson::Boolean(b) => !b,
        Bson::Int32(i) => *i == 0,
        Bson::Int64(i) => *i == 0,
        Bson::Double(f) => *f == 0.0,
        Bson::Decimal128(_) => crate::num::Num::from_bson(v).is_some_and(|n| n.is_zero()),
        _ => false,
    }
}

/// Whether a projection value excludes a field, here or in a nested
/// projection (`{a: {b: 0}}`).
fn excludes_something(v: &Bson) -> bool {
    match v {
        Bson::Document(d) if !d.keys().next().is_some_and(|k| k.starts_with('$')) => d.values().any(excludes_something),
        other => is_zero(other),
    }
}

/// The fields of its input documents `stages` read before a stage that
/// builds new documents from them (`$project`, `$group`, ...); a pipeline
/// that passes whole documents to its output needs every field.
pub fn pipeline_needs<'a>(stages: impl IntoIterator<Item = &'a Document>) -> Needs {
    let mut needs = Needs::default();
    for stage in stages {
        let mut it = stage.iter();
        let (Some((name, spec)), None) = (it.next(), it.next()) else { return Needs::All };
        match (name.as_str(), spec) {
            ("$match", Bson::Document(f)) => filter_needs(f, &mut needs),
            ("$sort", Bson::Document(s)) => s.keys().for_each(|k| needs.read(k)),
            ("$skip" | "$limit", _) => {}
            ("$count", _) => return needs,
            ("$project", Bson::Document(p)) => {
                projection_needs(p, &mut needs);
                return needs;
            }
            ("$group", Bson::Document(g)) => {
                for v in g.values() {
                    expression_needs(v, &mut needs);
                }
                return needs;
            }
            ("$replaceRoot", Bson::Document(r)) => {
                match r.get("newRoot") {
                    Some(e) => expression_needs(e, &mut needs),
                    None => return Needs::All,
                }
                return needs;
            }
            ("$replaceWith", e) => {
                expression_needs(e, &mut needs);
                return needs;
            }
            ("$addFields" | "$set", Bson::Document(f)) => f.values().for_each(|v| expression_needs(v, &mut needs)),
            ("$unset", _) => {}
            ("$unwind", spec) => {
                let path = match spec {
                    Bson::String(s) => s.as_str(),
                    Bson::Document(d) => d.get_str("path").unwrap_or(""),
                    _ => return Needs::All,
                };
                match path.strip_prefix('$') {
                    Some(p) if !p.is_empty() => needs.walk(p),
                    _ => return Needs::All,
                }
            }
            ("$lookup", Bson::Document(l)) => {
                if let Ok(local) = l.get_str("localField") {
                    needs.read(local);
                }
                if let Some(Bson::Document(lets)) = l.get("let") {
                    lets.values().for_each(|v| expression_needs(v, &mut needs));
                }
            }
            _ => return Needs::All,
        }
        if needs == Needs::All {
            return needs;
        }
    }
    // Whole documents reach the output.
    Needs::All
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn fields(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn a_django_join_reads_few_fields() {
        let rest = vec![
            doc! {"$unwind": {"path": "$j", "preserveNullAndEmptyArrays": true}},
            doc! {"$group": {"_id": {"g0": {"$ifNull": ["$id", null]}}, "a0": {"$sum": {"$cond": [{"$ne": ["$j.id", null]}, 1, 0]}}, "a1": {"$avg": "$j.n"}}},
            doc! {"$project": {"_id": 0, "c0": "$_id.g0"}},
        ];
        let needs = pipeline_needs(&rest);
        assert_eq!(needs.top_level(), fields(&["id", "j"]));
        assert_eq!(needs.below("j"), fields(&["id", "n"]));
    }

    #[test]
    fn whole_documents_or_unknowns_need_everything() {
        assert_eq!(pipeline_needs([&doc! {"$match": {"a": 1}}]), Needs::All);
        assert_eq!(pipeline_needs([&doc! {"$project": {"a": 0}}]), Needs::All);
        assert_eq!(pipeline_needs([&doc! {"$project": {"_id": 0}}]), Needs::All);
        assert_eq!(pipeline_needs([&doc! {"$project": {"a": {"b": 0}}}]), Needs::All);
        assert_eq!(pipeline_needs([&doc! {"$project": {"_id": 0, "a": 1}}]).top_level(), fields(&["a"]));
        assert_eq!(pipeline_needs([&doc! {"$project": {"x": "$$ROOT"}}]), Needs::All);
        assert_eq!(pipeline_needs([&doc! {"$project": {"x": "$$CURRENT.a"}}]).top_level(), fields(&["_id", "a", "x"]));
        let unwinds_inside = pipeline_needs(&[doc! {"$unwind": "$j.tags"}, doc! {"$count": "n"}]);
        assert_eq!(unwinds_inside.below("j"), fields(&["tags"]));
        let unwinds_itself = pipeline_needs(&[doc! {"$unwind": "$j"}, doc! {"$count": "n"}]);
        assert_eq!(unwinds_itself.below("j"), fields(&[]));
        let reads_whole = pipeline_needs([&doc! {"$project": {"x": "$j"}}]);
        assert_eq!(reads_whole.below("j"), None);
        assert_eq!(pipeline_needs(&[doc! {"$match": {"$where": "1"}}, doc! {"$count": "n"}]), Needs::All);
        assert_eq!(pipeline_needs([&doc! {"$count": "n"}]).top_level(), fields(&[]));
    }

    #[test]
    fn sorting_accumulators_read_their_sort_fields() {
        let rest = vec![
            doc! {"$unwind": "$j"},
            doc! {"$group": {"_id": "$id", "t": {"$topN": {"n": 2, "sortBy": {"j.at": -1}, "output": "$j.n"}}}},
        ];
        assert_eq!(pipeline_needs(&rest).below("j"), fields(&["at", "n"]));
        let bottom = [doc! {"$group": {"_id": null, "b": {"$bottom": {"sortBy": {"k": 1}, "output": "$v"}}}}];
        assert_eq!(pipeline_needs(&bottom).top_level(), fields(&["k", "v"]));
    }
}
