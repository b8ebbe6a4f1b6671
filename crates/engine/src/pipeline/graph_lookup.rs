//! `$graphLookup`: a breadth-first walk over another collection of the same
//! database, from the values of `startWith` along `connectFromField` →
//! `connectToField` edges, collecting every document reached into `as`.
//!
//! Each step looks up the frontier's values the way MongoDB does, as
//! `{connectToField: {$in: frontier}}` (arrays match by element, null matches
//! a missing field), restricted by `restrictSearchWithMatch`. A document is
//! collected once, at the depth it is first reached, and a value is looked up
//! once, so cycles end the walk instead of looping.
use super::{join_values, CollectionSource};
use crate::compare::canonical_key;
use crate::expr::{self, Vars};
use crate::query::Filter;
use crate::{path, EngineError, Result};
use bson::{Bson, Document};
use std::collections::{HashMap, HashSet};

/// A parsed `$graphLookup` specification.
struct GraphSpec {
    from: String,
    as_field: String,
    start_with: Bson,
    connect_from: Vec<String>,
    connect_to: Vec<String>,
    depth_field: Option<String>,
    max_depth: Option<i64>,
    restrict: Option<Filter>,
}

fn string_argument(name: &str, value: &Bson) -> Result<String> {
    match value {
        Bson::String(s) => {
            if name != "from" && s.starts_with('$') {
                return Err(EngineError::location(16410, format!("FieldPath field names may not start with '$'. Given: {s}")));
            }
            Ok(s.clone())
        }
        other => Err(EngineError::location(40103, format!("expected string as argument for {name}, found: {other}"))),
    }
}

fn parse_max_depth(value: &Bson) -> Result<i64> {
    let number = crate::num::Num::from_bson(value).ok_or_else(|| {
            EngineError::location(40100, format!("maxDepth must be numeric, found type: {}", crate::types::type_name(value)))
        })?;
    let as_float = number.to_f64();
    if as_float < 0.0 {
        return Err(EngineError::location(40101, format!("maxDepth requires a nonnegative argument, found: {}", as_float.trunc())));
    }
    number
        .to_i64_exact()
        .ok_or_else(|| EngineError::location(40102, format!("maxDepth could not be represented as a long long: {value}")))
}

impl GraphSpec {
    fn parse(spec: &Bson) -> Result<GraphSpec> {
        let Bson::Document(spec) = spec else {
            return Err(EngineError::new(
                9,
                "FailedToParse",
                format!("the $graphLookup stage specification must be an object, but found {}", crate::types::type_name(spec)),
            ));
        };
        let (mut from, mut as_field, mut start_with, mut connect_from, mut connect_to) = (None, None, None, None, None);
        let (mut depth_field, mut max_depth, mut restrict) = (None, None, None);
        for (name, value) in spec {
            match name.as_str() {
                "startWith" => start_with = Some(value.clone()),
                "maxDepth" => max_depth = Some(parse_max_depth(value)?),
                "restrictSearchWithMatch" => {
                    let Bson::Document(filter) = value else {
                        return Err(EngineError::location(
                            40185,
                            format!("restrictSearchWithMatch must be an object, found {}", crate::types::type_name(value)),
                        ));
                    };
                    restrict = Some(Filter::parse(filter)?);
                }
                "from" => from = Some(string_argument(name, value)?),
                "as" => as_field = Some(string_argument(name, value)?),
                "connectFromField" => connect_from = Some(string_argument(name, value)?),
                "connectToField" => connect_to = Some(string_argument(name, value)?),
                "depthField" => depth_field = Some(string_argument(name, value)?),
                _ => return Err(EngineError::location(40104, format!("Unknown argument to $graphLookup: {name}"))),
            }
        }
        let (Some(from), Some(as_field), Some(start_with), Some(connect_from), Some(connect_to)) =
            (from, as_field, start_with, connect_from, connect_to)
        else {
            return Err(EngineError::location(
                40105,
                "$graphLookup requires 'from', 'as', 'startWith', 'connectFromField', and 'connectToField' to be specified.",
            ));
        };
        Ok(GraphSpec {
            from,
            as_field,
            start_with,
            connect_from: path::split(&connect_from),
            connect_to: path::split(&connect_to),
            depth_field,
            max_depth,
            restrict,
        })
    }
}

/// The values a found document leads to: every value at `connectFromField`
/// (through arrays of subdocuments), arrays contributing their elements. A
/// missing field leads nowhere.
fn next_values(doc: &Document, connect_from: &[String], out: &mut Vec<Bson>) {
    for value in path::query_values(doc, connect_from).into_iter().flatten() {
        match value {
            Bson::Array(items) => out.extend(items.iter().cloned()),
            other => out.push(other.clone()),
        }
    }
}

/// The foreign collection indexed by every key its `connectToField` answers
/// an `$in` lookup with.
struct ForeignIndex {
    docs: Vec<Document>,
    by_key: HashMap<String, Vec<usize>>,
}

impl ForeignIndex {
    fn build(docs: Vec<Document>, connect_to: &[String]) -> ForeignIndex {
        let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, d) in docs.iter().enumerate() {
            let keys: HashSet<String> = join_values(d, connect_to).iter().map(canonical_key).collect();
            for k in keys {
                by_key.entry(k).or_default().push(i);
            }
        }
        ForeignIndex { docs, by_key }
    }

    /// Positions of the documents matching any of `keys`, in collection order.
    fn lookup(&self, keys: &[String]) -> Vec<usize> {
        let mut hits: Vec<usize> = keys.iter().filter_map(|k| self.by_key.get(k)).flatten().copied().collect();
        hits.sort_unstable();
        hits.dedup();
        hits
    }
}

pub(super) fn graph_lookup(spec: &Bson, docs: Vec<Document>, source: &dyn CollectionSource, vars: &Vars) -> Result<Vec<Document>> {
    let spec = GraphSpec::parse(spec)?;
    let foreign = ForeignIndex::build(source.scan(&spec.from)?, &spec.connect_to);
    let as_parts: Vec<&str> = spec.as_field.split('.').collect();
    let depth_parts: Option<Vec<&str>> = spec.depth_field.as_ref().map(|d| d.split('.').collect());
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let mut frontier = match expr::eval_value(&spec.start_with, &doc, vars)? {
            Some(Bson::Array(items)) => items,
            Some(value) => vec![value],
            None => Vec::new(),
        };
        let mut looked_up: HashSet<String> = HashSet::new();
        let mut collected: HashSet<String> = HashSet::new();
        let mut found = Vec::new();
        let mut depth: i64 = 0;
        loop {
            let keys: Vec<String> =
                frontier.iter().map(canonical_key).filter(|k| looked_up.insert(k.clone())).collect();
            if keys.is_empty() {
                break;
            }
            let mut next = Vec::new();
            for i in foreign.lookup(&keys) {
                let Some(candidate) = foreign.docs.get(i) else { continue };
                if let Some(filter) = &spec.restrict {
                    if !filter.matches_with_vars(candidate, vars)? {
                        continue;
                    }
                }
                let identity = canonical_key(candidate.get("_id").unwrap_or(&Bson::Null));
                if !collected.insert(identity) {
                    continue;
                }
                next_values(candidate, &spec.connect_from, &mut next);
                let mut reached = candidate.clone();
                if let Some(parts) = &depth_parts {
                    path::assign(&mut reached, parts, Some(Bson::Int64(depth)));
                }
                found.push(Bson::Document(reached));
            }
            if spec.max_depth.is_some_and(|max| depth >= max) {
                break;
            }
            depth += 1;
            frontier = next;
        }
        let mut d = doc;
        path::assign(&mut d, &as_parts, Some(Bson::Array(found)));
        out.push(d);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    struct Employees(Vec<Document>);

    impl CollectionSource for Employees {
        fn scan(&self, collection: &str) -> Result<Vec<Document>> {
            Ok(if collection == "employees" { self.0.clone() } else { Vec::new() })
        }
    }

    fn employees() -> Employees {
        Employees(vec![
            doc! {"_id": 1, "name": "Dev"},
            doc! {"_id": 2, "name": "Eliot", "reportsTo": "Dev"},
            doc! {"_id": 3, "name": "Ron", "reportsTo": "Eliot"},
            doc! {"_id": 4, "name": "Andrew", "reportsTo": "Eliot"},
            doc! {"_id": 5, "name": "Asya", "reportsTo": "Ron"},
            doc! {"_id": 6, "name": "Dan", "reportsTo": "Andrew", "team": ["Ron", "Asya"]},
        ])
    }

    fn run(spec: Document, input: Vec<Document>) -> Result<Vec<Document>> {
        graph_lookup(&Bson::Document(spec), input, &employees(), &Vars::new())
    }

    fn names_and_depths(doc: &Document, field: &str) -> Vec<(String, i64)> {
        let mut out: Vec<(String, i64)> = doc
            .get_array(field)
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_document())
                    .map(|d| (d.get_str("name").unwrap_or("").to_string(), d.get_i64("depth").unwrap_or(-1)))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    fn chain_spec() -> Document {
        doc! {"from": "employees", "startWith": "$reportsTo", "connectFromField": "reportsTo",
              "connectToField": "name", "as": "chain", "depthField": "depth"}
    }

    #[test]
    fn walks_the_reporting_chain_with_depths() {
        let out = run(chain_spec(), vec![doc! {"_id": 5, "name": "Asya", "reportsTo": "Ron"}]).unwrap();
        assert_eq!(
            names_and_depths(&out[0], "chain"),
            vec![("Dev".to_string(), 2), ("Eliot".to_string(), 1), ("Ron".to_string(), 0)]
        );
    }

    #[test]
    fn max_depth_stops_the_walk_and_missing_start_finds_nothing() {
        let mut spec = chain_spec();
        spec.insert("maxDepth", 1);
        let out = run(spec, vec![doc! {"name": "Asya", "reportsTo": "Ron"}, doc! {"name": "Dev"}]).unwrap();
        assert_eq!(names_and_depths(&out[0], "chain"), vec![("Eliot".to_string(), 1), ("Ron".to_string(), 0)]);
        assert_eq!(out[1].get_array("chain").map(Vec::len).ok(), Some(0));
    }

    #[test]
    fn arrays_fan_out_restrictions_apply_and_cycles_end() {
        // Downwards from Eliot: who reports (transitively) to him, but not Andrew's branch.
        let spec = doc! {"from": "employees", "startWith": "$name", "connectFromField": "name",
                         "connectToField": "reportsTo", "as": "reports", "depthField": "depth",
                         "restrictSearchWithMatch": {"name": {"$ne": "Andrew"}}};
        let out = run(spec, vec![doc! {"name": "Eliot"}]).unwrap();
        assert_eq!(names_and_depths(&out[0], "reports"), vec![("Asya".to_string(), 1), ("Ron".to_string(), 0)]);
        // An array start value looks up each element; a cycle (Dan's team
        // leads back to Ron and Asya) collects each document once.
        let spec = doc! {"from": "employees", "startWith": ["Ron", "Dan"], "connectFromField": "team",
                         "connectToField": "name", "as": "seen", "depthField": "depth"};
        let out = run(spec, vec![doc! {}]).unwrap();
        assert_eq!(
            names_and_depths(&out[0], "seen"),
            vec![("Asya".to_string(), 1), ("Dan".to_string(), 0), ("Ron".to_string(), 0)]
        );
    }

    #[test]
    fn bad_specifications_carry_mongodb_codes() {
        let code = |spec: Document| run(spec, vec![doc! {}]).unwrap_err().code;
        let mut missing_as = chain_spec();
        missing_as.remove("as");
        assert_eq!(code(missing_as), 40105);
        let mut unknown = chain_spec();
        unknown.insert("zz", 1);
        assert_eq!(code(unknown), 40104);
        let mut negative = chain_spec();
        negative.insert("maxDepth", -1);
        assert_eq!(code(negative), 40101);
        let mut fractional = chain_spec();
        fractional.insert("maxDepth", 1.5);
        assert_eq!(code(fractional), 40102);
        let mut text = chain_spec();
        text.insert("maxDepth", "x");
        assert_eq!(code(text), 40100);
        let mut not_string = chain_spec();
        not_string.insert("as", 3);
        assert_eq!(code(not_string), 40103);
        let mut bad_match = chain_spec();
        bad_match.insert("restrictSearchWithMatch", 3);
        assert_eq!(code(bad_match), 40185);
        assert_eq!(graph_lookup(&Bson::Int32(5), vec![], &employees(), &Vars::new()).unwrap_err().code, 9);
    }
}
