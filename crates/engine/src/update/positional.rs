//! Array positions in update paths: the positional `$` (the element the query
//! matched), `$[]` (every element) and `$[<identifier>]` (the elements an
//! `arrayFilters` entry selects). Each is resolved against the document being
//! updated into the concrete paths the update operators then act on.
use crate::query::{is_operator_doc, Filter};
use crate::{path, EngineError, Result};
use bson::{Bson, Document};

/// An update command's `arrayFilters`, one filter per identifier.
#[derive(Debug, Clone, Default)]
pub struct ArrayFilters {
    by_identifier: Vec<(String, Filter)>,
}

/// What the positional parts of an update path need to be resolved: the
/// query's match position (for `$`) and the array filters (for `$[<id>]`);
/// and the command's `let` variables, which a pipeline-style update sees.
#[derive(Debug, Clone, Copy, Default)]
pub struct Positions<'a> {
    pub matched: Option<usize>,
    pub array_filters: Option<&'a ArrayFilters>,
    pub vars: Option<&'a crate::expr::Vars>,
}

/// The kinds of path component that stand for array positions.
enum Part<'a> {
    Matched,
    All,
    Filtered(&'a str),
}

fn positional_part(component: &str) -> Option<Part<'_>> {
    match component {
        "$" => Some(Part::Matched),
        "$[]" => Some(Part::All),
        _ => component.strip_prefix("$[").and_then(|s| s.strip_suffix(']')).map(Part::Filtered),
    }
}

fn valid_identifier(id: &str) -> bool {
    id.chars().next().is_some_and(|c| c.is_ascii_lowercase()) && id.chars().all(|c| c.is_ascii_alphanumeric())
}

impl ArrayFilters {
    /// Parses `arrayFilters` and checks them against the update that uses
    /// them: every `$[<id>]` needs a filter and every filter must be used,
    /// as MongoDB requires.
    pub fn parse(specs: &[Bson], update: &Bson) -> Result<ArrayFilters> {
        let mut by_identifier: Vec<(String, Filter)> = Vec::with_capacity(specs.len());
        for spec in specs {
            let Bson::Document(d) = spec else {
                return Err(EngineError::type_mismatch(format!("Each array filter must be an object, found {}", crate::types::type_name(spec))));
            };
            let id = filter_identifier(d)?;
            if by_identifier.iter().any(|(known, _)| *known == id) {
                return Err(EngineError::new(9, "FailedToParse", format!("Found multiple array filters with the same top-level field name {id}")));
            }
            by_identifier.push((id, Filter::parse(d)?));
        }
        if !by_identifier.is_empty() && matches!(update, Bson::Array(_)) {
            return Err(EngineError::new(72, "InvalidOptions", "arrayFilters may not be specified for pipeline-style updates"));
        }
        let used = identifiers_in(update);
        for (id, path) in &used {
            if !by_identifier.iter().any(|(known, _)| known == id) {
                return Err(EngineError::bad_value(format!("No array filter found for identifier '{id}' in path '{path}'")));
            }
        }
        for (id, _) in &by_identifier {
            if !used.iter().any(|(u, _)| u == id) {
                return Err(EngineError::new(9, "FailedToParse", format!("The array filter for identifier '{id}' was not used in the update {update}")));
            }
        }
        Ok(ArrayFilters { by_identifier })
    }

    /// Whether `element` is selected by the filter named `id`. The filter is
    /// written over `{id: element}`, so `{"x.grade": {$gte: 85}}` reads the
    /// element's `grade` and `{x: {$gt: 2}}` the element itself.
    fn selects(&self, id: &str, element: &Bson) -> Result<bool> {
        match self.by_identifier.iter().find(|(known, _)| known == id) {
            Some((_, filter)) => {
                let mut wrapped = Document::new();
                wrapped.insert(id, element.clone());
                filter.matches(&wrapped)
            }
            None => Ok(false),
        }
    }
}

/// The one identifier an array filter's field paths start with.
fn filter_identifier(filter: &Document) -> Result<String> {
    let mut heads = Vec::new();
    collect_heads(filter, &mut heads);
    let Some(first) = heads.first().cloned() else {
        return Err(EngineError::new(9, "FailedToParse", "Cannot use an expression without a top-level field name in arrayFilters"));
    };
    if let Some(other) = heads.iter().find(|h| **h != first) {
        return Err(EngineError::new(
            9,
            "FailedToParse",
            format!("Error parsing array filter :: caused by :: Expected a single top-level field name, found '{first}' and '{other}'"),
        ));
    }
    if !valid_identifier(&first) {
        return Err(EngineError::bad_value(format!(
            "Error parsing array filter :: caused by :: The top-level field name must be an alphanumeric string beginning with a lowercase letter, found '{first}'"
        )));
    }
    Ok(first)
}

fn collect_heads(filter: &Document, out: &mut Vec<String>) {
    for (k, v) in filter {
        if matches!(k.as_str(), "$and" | "$or" | "$nor") {
            if let Bson::Array(items) = v {
                for item in items {
                    if let Bson::Document(d) = item {
                        collect_heads(d, out);
                    }
                }
            }
        } else if !k.starts_with('$') {
            out.push(k.split('.').next().unwrap_or_default().to_string());
        }
    }
}

/// Every `$[<id>]` in an operator update, with the path it appears in.
fn identifiers_in(update: &Bson) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Bson::Document(ops) = update else { return out };
    if !is_operator_doc(ops) {
        return out;
    }
    for (op, fields) in ops {
        let Bson::Document(fields) = fields else { continue };
        for (field, arg) in fields {
            let mut paths = vec![field.as_str()];
            match arg {
                Bson::String(to) if op == "$rename" => paths.push(to.as_str()),
                _ => {}
            }
            for p in paths {
                for part in p.split('.') {
                    if let Some(Part::Filtered(id)) = positional_part(part) {
                        if !id.is_empty() {
                            out.push((id.to_string(), p.to_string()));
                        }
                    }
                }
            }
        }
    }
    out
}

/// Whether any path of `update` uses the positional `$`, so the caller knows
/// to find the query's match position.
pub fn uses_match_position(update: &Bson) -> bool {
    let Bson::Document(ops) = update else { return false };
    ops.values().any(|fields| match fields {
        Bson::Document(f) => f.keys().any(|k| k.split('.').any(|p| p == "$")),
        _ => false,
    })
}

/// Resolves the positional parts of `p` against `doc` into concrete paths.
pub(super) fn expand(doc: &Document, p: &[String], positions: &Positions<'_>) -> Result<Vec<Vec<String>>> {
    let matched_parts = p.iter().filter(|s| s.as_str() == "$").count();
    if matched_parts > 1 {
        return Err(EngineError::bad_value(format!("Too many positional (i.e. '$') elements found in path '{}'", p.join("."))));
    }
    let mut out = Vec::new();
    expand_into(doc, p.to_vec(), 0, positions, &mut out)?;
    Ok(out)
}

fn expand_into(doc: &Document, p: Vec<String>, from: usize, positions: &Positions<'_>, out: &mut Vec<Vec<String>>) -> Result<()> {
    let Some(pos) = p.iter().skip(from).position(|s| positional_part(s).is_some()).map(|i| i + from) else {
        out.push(p);
        return Ok(());
    };
    if pos == 0 {
        return Err(EngineError::bad_value(format!("Cannot have array filter identifier (i.e. '$[<id>]') or positional operator element at the top level of path '{}'", p.join("."))));
    }
    let part = positional_part(&p[pos]).ok_or_else(|| EngineError::bad_value("positional path component vanished"))?;
    if let Part::Matched = part {
        let Some(i) = positions.matched else {
            return Err(EngineError::bad_value("The positional operator did not find the match needed from the query."));
        };
        let mut concrete = p;
        concrete[pos] = i.to_string();
        return expand_into(doc, concrete, pos + 1, positions, out);
    }
    let prefix = &p[..pos];
    let items = match path::get(doc, prefix) {
        Some(Bson::Array(items)) => items,
        None => {
            return Err(EngineError::bad_value(format!("The path '{}' must exist in the document in order to apply array updates.", prefix.join("."))));
        }
        Some(other) => {
            return Err(EngineError::bad_value(format!("Cannot apply array updates to non-array element {}: {other}", prefix.join("."))));
        }
    };
    for (i, item) in items.iter().enumerate() {
        let selected = match part {
            Part::Filtered(id) if !id.is_empty() => match positions.array_filters {
                Some(filters) => filters.selects(id, item)?,
                None => {
                    return Err(EngineError::bad_value(format!("No array filter found for identifier '{id}' in path '{}'", p.join("."))));
                }
            },
            Part::Filtered(_) => {
                return Err(EngineError::bad_value(format!("An empty array filter identifier is not valid in path '{}'", p.join("."))));
            }
            _ => true,
        };
        if selected {
            let mut concrete = p.clone();
            concrete[pos] = i.to_string();
            expand_into(doc, concrete, pos + 1, positions, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::apply_update_at;
    use bson::{bson, doc};

    /// Runs an update the way the server does: the query picks the position
    /// for `$`, `arrayFilters` are parsed against the update.
    fn run(query: Document, mut d: Document, update: Bson, filters: Bson) -> Result<Document> {
        let query = Filter::parse(&query)?;
        assert!(query.matches(&d)?, "the query must match the document");
        let Bson::Array(specs) = filters else { panic!("arrayFilters must be an array") };
        let filters = ArrayFilters::parse(&specs, &update)?;
        let positions = Positions { matched: query.match_position(&d)?, array_filters: Some(&filters), vars: None };
        apply_update_at(&mut d, &update, false, &positions)?;
        Ok(d)
    }

    #[test]
    fn positional_dollar_updates_the_matched_element() {
        let d = run(doc! {"grades": 80}, doc! {"_id": 1, "grades": [85, 80, 80]}, bson!({"$set": {"grades.$": 82}}), bson!([])).unwrap();
        assert_eq!(d, doc! {"_id": 1, "grades": [85, 82, 80]});
        let d = run(
            doc! {"items.k": "y"},
            doc! {"_id": 1, "items": [{"k": "x", "n": 1}, {"k": "y", "n": 1}]},
            bson!({"$inc": {"items.$.n": 5}, "$set": {"items.$.seen": true}}),
            bson!([]),
        )
        .unwrap();
        assert_eq!(d, doc! {"_id": 1, "items": [{"k": "x", "n": 1}, {"k": "y", "n": 6, "seen": true}]});
        let d = run(
            doc! {"items": {"$elemMatch": {"k": "x", "n": 1}}},
            doc! {"_id": 1, "items": [{"k": "y", "n": 1}, {"k": "x", "n": 1}]},
            bson!({"$unset": {"items.$.n": ""}}),
            bson!([]),
        )
        .unwrap();
        assert_eq!(d, doc! {"_id": 1, "items": [{"k": "y", "n": 1}, {"k": "x"}]});
    }

    #[test]
    fn positional_dollar_without_a_match_is_bad_value() {
        let e = run(doc! {"_id": 1}, doc! {"_id": 1, "grades": [1]}, bson!({"$set": {"grades.$": 2}}), bson!([])).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.message.contains("did not find the match needed from the query"), "{}", e.message);
        let e = run(doc! {"a": 1}, doc! {"_id": 1, "a": [1]}, bson!({"$set": {"a.$.b.$": 2}}), bson!([])).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.message.contains("Too many positional"));
    }

    #[test]
    fn all_positional_and_filtered_positional() {
        let doc = doc! {"_id": 1, "grades": [{"g": 80, "m": 75}, {"g": 85, "m": 90}, {"g": 95, "m": 85}]};
        let d = run(doc! {}, doc.clone(), bson!({"$set": {"grades.$[e].m": 100}}), bson!([{"e.g": {"$gte": 85}}])).unwrap();
        assert_eq!(d, doc! {"_id": 1, "grades": [{"g": 80, "m": 75}, {"g": 85, "m": 100}, {"g": 95, "m": 100}]});
        let d = run(doc! {}, doc! {"_id": 1, "l": [1, 5, 9]}, bson!({"$inc": {"l.$[big]": 100}}), bson!([{"big": {"$gt": 4}}])).unwrap();
        assert_eq!(d, doc! {"_id": 1, "l": [1, 105, 109]});
        // Nested: every element's inner array, filtered by a second identifier.
        let d = run(
            doc! {},
            doc! {"_id": 1, "a": [{"b": [1, 2, 3]}, {"b": [3, 4]}]},
            bson!({"$set": {"a.$[].b.$[x]": 0}}),
            bson!([{"x": {"$gte": 3}}]),
        )
        .unwrap();
        assert_eq!(d, doc! {"_id": 1, "a": [{"b": [1, 2, 0]}, {"b": [0, 0]}]});
        // No element selected: nothing changes, and that is not an error.
        let d = run(doc! {}, doc! {"_id": 1, "l": [1]}, bson!({"$set": {"l.$[x]": 0}}), bson!([{"x": 7}])).unwrap();
        assert_eq!(d, doc! {"_id": 1, "l": [1]});
    }

    #[test]
    fn array_updates_need_an_array() {
        let e = run(doc! {}, doc! {"_id": 1}, bson!({"$set": {"l.$[]": 0}}), bson!([])).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.message.contains("must exist in the document"));
        let e = run(doc! {}, doc! {"_id": 1, "l": 3}, bson!({"$set": {"l.$[]": 0}}), bson!([])).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.message.contains("non-array"));
    }

    #[test]
    fn concrete_paths_that_overlap_conflict() {
        let e = run(doc! {}, doc! {"_id": 1, "l": [1, 2]}, bson!({"$set": {"l.$[]": 0}, "$inc": {"l.1": 1}}), bson!([])).unwrap_err();
        assert_eq!(e.code, 40);
        // Disjoint filters touch different elements, so they may be combined.
        let d = run(
            doc! {},
            doc! {"_id": 1, "l": [1, 2]},
            bson!({"$set": {"l.$[one]": "one", "l.$[two]": "two"}}),
            bson!([{"one": 1}, {"two": 2}]),
        )
        .unwrap();
        assert_eq!(d, doc! {"_id": 1, "l": ["one", "two"]});
    }

    #[test]
    fn array_filters_are_checked_against_the_update() {
        let code = |update: Bson, filters: Bson| {
            let Bson::Array(specs) = filters else { panic!() };
            ArrayFilters::parse(&specs, &update).unwrap_err().code
        };
        assert_eq!(code(bson!({"$set": {"l.$[x]": 1}}), bson!([])), 2, "identifier without a filter");
        assert_eq!(code(bson!({"$set": {"l.$[x]": 1}}), bson!([{"x": 1}, {"y": 1}])), 9, "unused filter");
        assert_eq!(code(bson!({"$set": {"l.$[x]": 1}}), bson!([{"x": 1}, {"x": 2}])), 9, "duplicate identifier");
        assert_eq!(code(bson!({"$set": {"l.$[x]": 1}}), bson!([{"x.a": 1, "y.b": 2}])), 9, "two identifiers in one filter");
        assert_eq!(code(bson!({"$set": {"l.$[X]": 1}}), bson!([{"X": 1}])), 2, "identifier must start lowercase");
        assert_eq!(code(bson!([{"$set": {"a": 1}}]), bson!([{"x": 1}])), 72, "pipeline updates take no arrayFilters");
        assert_eq!(code(bson!({"$set": {"l.$[x]": 1}}), bson!([5])), 14);
        // `$or` inside a filter is fine while it names one identifier.
        let Bson::Array(specs) = bson!([{"$or": [{"x.a": 1}, {"x.b": 2}]}]) else { panic!() };
        assert!(ArrayFilters::parse(&specs, &bson!({"$set": {"l.$[x].c": 1}})).is_ok());
    }

    #[test]
    fn rename_paths_may_not_be_positional() {
        let e = run(doc! {"l": 1}, doc! {"_id": 1, "l": [1]}, bson!({"$rename": {"l.$": "m"}}), bson!([])).unwrap_err();
        assert_eq!(e.code, 2);
    }
}
