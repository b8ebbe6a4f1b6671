//! `$out` and `$merge`: an aggregation's results written into a collection.
//!
//! The engine computes the documents; this module writes them through the
//! server's storage, so `_id` rules, unique indexes and the writer lock apply
//! as for any other write. Both stages run inside the aggregate command's
//! one storage write transaction: `$out` builds the new contents in a
//! temporary collection (with the target's indexes and options) and renames
//! it over the target, and a failure of either stage leaves the target as
//! it was. MongoDB refuses both inside a multi-document transaction.
use super::write::{check_id_storable, ensure_id};
use crate::catalog::{validate_collection_name, CollectionMeta};
use crate::error::{CmdResult, CommandError};
use crate::plan;
use crate::storage::Tables;
use crate::validation::Rules;
use bson::{doc, oid::ObjectId, Bson, Document};
use djongo_engine::expr::{self, Vars};
use djongo_engine::pipeline::{run_with_vars, NoCollections};

/// A collection in some database.
#[derive(Debug, Clone, PartialEq)]
pub struct Namespace {
    pub db: String,
    pub coll: String,
}

/// The final stage of a pipeline that writes its results.
#[derive(Debug)]
pub enum OutputStage {
    Out(Namespace),
    Merge(MergeSpec),
}

#[derive(Debug)]
pub struct MergeSpec {
    into: Namespace,
    /// The `on` fields, dotted; `["_id"]` unless given.
    on: Vec<String>,
    when_matched: WhenMatched,
    when_not_matched: WhenNotMatched,
    /// `let` variables for a pipeline `whenMatched`, evaluated against each result.
    let_vars: Document,
}

#[derive(Debug)]
enum WhenMatched {
    Replace,
    KeepExisting,
    Merge,
    Fail,
    Pipeline(Vec<Document>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum WhenNotMatched {
    Insert,
    Discard,
    Fail,
}

fn location(code: i32, message: impl Into<String>) -> CommandError {
    CommandError::from(djongo_engine::EngineError::location(code, message))
}

/// Removes a final `$out`/`$merge` from `pipeline` and returns it parsed.
pub fn take_output_stage(pipeline: &mut Vec<Document>, db: &str) -> CmdResult<Option<OutputStage>> {
    let Some(last) = pipeline.last() else { return Ok(None) };
    let stage = match last.iter().next() {
        Some((name, spec)) if name == "$out" => OutputStage::Out(parse_out(spec, db)?),
        Some((name, spec)) if name == "$merge" => OutputStage::Merge(MergeSpec::parse(spec, db)?),
        _ => return Ok(None),
    };
    pipeline.pop();
    Ok(Some(stage))
}

fn parse_out(spec: &Bson, db: &str) -> CmdResult<Namespace> {
    match spec {
        Bson::String(coll) => Ok(Namespace { db: db.to_string(), coll: coll.clone() }),
        Bson::Document(d) => {
            if d.contains_key("timeseries") {
                return Err(CommandError::new(115, "CommandNotSupported", "not supported by the embedded engine: $out to a time series collection"));
            }
            for key in d.keys() {
                if !matches!(key.as_str(), "db" | "coll") {
                    return Err(CommandError::new(40415, "Location40415", format!("BSON field '$out.{key}' is an unknown field.")));
                }
            }
            let field = |name: &str| match d.get(name) {
                Some(Bson::String(s)) => Ok(s.clone()),
                Some(other) => Err(CommandError::type_mismatch(format!(
                    "BSON field '$out.{name}' is the wrong type '{}', expected type 'string'",
                    djongo_engine::types::type_name(other)
                ))),
                None => Err(CommandError::new(40414, "Location40414", format!("BSON field '$out.{name}' is missing but a required field"))),
            };
            Ok(Namespace { db: field("db")?, coll: field("coll")? })
        }
        other => Err(location(
            16990,
            format!("$out only supports a string or object argument, not {}", djongo_engine::types::type_name(other)),
        )),
    }
}

fn parse_namespace(spec: &Bson, db: &str) -> CmdResult<Namespace> {
    match spec {
        Bson::String(coll) => Ok(Namespace { db: db.to_string(), coll: coll.clone() }),
        Bson::Document(d) => {
            let coll = match d.get("coll") {
                Some(Bson::String(c)) => c.clone(),
                _ => return Err(CommandError::new(40414, "Location40414", "BSON field '$merge.into.coll' is missing but a required field")),
            };
            let db = match d.get("db") {
                Some(Bson::String(other)) => other.clone(),
                None => db.to_string(),
                Some(_) => return Err(CommandError::type_mismatch("BSON field '$merge.into.db' must be a string")),
            };
            Ok(Namespace { db, coll })
        }
        _ => Err(location(51178, "$merge 'into' field must be either a string or an object")),
    }
}

fn parse_on(spec: &Bson) -> CmdResult<Vec<String>> {
    let fields: Vec<String> = match spec {
        Bson::String(f) => vec![f.clone()],
        Bson::Array(items) => items
            .iter()
            .map(|i| match i {
                Bson::String(f) => Ok(f.clone()),
                _ => Err(location(51134, "Array elements for $merge 'on' must be strings")),
            })
            .collect::<CmdResult<_>>()?,
        _ => return Err(location(51186, "$merge 'on' field must be either a string or an array of strings")),
    };
    if fields.is_empty() {
        return Err(location(51187, "If explicitly specifying $merge 'on', must include at least one field"));
    }
    let mut seen = std::collections::HashSet::new();
    for f in &fields {
        if !seen.insert(f.as_str()) {
            return Err(location(31465, format!("Found a duplicate field '{f}'")));
        }
    }
    Ok(fields)
}

/// The stages an update pipeline (and so a `whenMatched` pipeline) may use.
const UPDATE_PIPELINE_STAGES: &[&str] = &["$addFields", "$set", "$project", "$unset", "$replaceRoot", "$replaceWith"];

fn parse_when_matched(spec: &Bson) -> CmdResult<WhenMatched> {
    match spec {
        Bson::String(mode) => Ok(match mode.as_str() {
            "replace" => WhenMatched::Replace,
            "keepExisting" => WhenMatched::KeepExisting,
            "merge" => WhenMatched::Merge,
            "fail" => WhenMatched::Fail,
            other => {
                return Err(CommandError::bad_value(format!(
                    "Enumeration value '{other}' for field '$merge.whenMatched' is not a valid value."
                )))
            }
        }),
        Bson::Array(items) => {
            let mut stages = Vec::with_capacity(items.len());
            for item in items {
                let Bson::Document(stage) = item else {
                    return Err(CommandError::type_mismatch("each stage of a $merge 'whenMatched' pipeline must be an object"));
                };
                let name = stage.keys().next().map(String::as_str).unwrap_or("");
                if !UPDATE_PIPELINE_STAGES.contains(&name) {
                    return Err(CommandError::new(72, "InvalidOptions", format!("{name} is not allowed to be used within an update")));
                }
                stages.push(stage.clone());
            }
            Ok(WhenMatched::Pipeline(stages))
        }
        _ => Err(CommandError::type_mismatch("$merge 'whenMatched' must be a string or an array")),
    }
}

fn parse_when_not_matched(spec: &Bson) -> CmdResult<WhenNotMatched> {
    match spec {
        Bson::String(mode) => match mode.as_str() {
            "insert" => Ok(WhenNotMatched::Insert),
            "discard" => Ok(WhenNotMatched::Discard),
            "fail" => Ok(WhenNotMatched::Fail),
            other => Err(CommandError::bad_value(format!(
                "Enumeration value '{other}' for field '$merge.whenNotMatched' is not a valid value."
            ))),
        },
        _ => Err(CommandError::type_mismatch("$merge 'whenNotMatched' must be a string")),
    }
}

impl MergeSpec {
    fn parse(spec: &Bson, db: &str) -> CmdResult<MergeSpec> {
        let mut merge = MergeSpec {
            into: Namespace { db: db.to_string(), coll: String::new() },
            on: vec!["_id".to_string()],
            when_matched: WhenMatched::Merge,
            when_not_matched: WhenNotMatched::Insert,
            let_vars: doc! {"new": "$$ROOT"},
        };
        let options = match spec {
            Bson::String(coll) => {
                merge.into.coll = coll.clone();
                return Ok(merge);
            }
            Bson::Document(d) => d,
            other => {
                return Err(location(
                    51182,
                    format!("$merge only supports a string or object argument, but found {}", djongo_engine::types::type_name(other)),
                ))
            }
        };
        let mut into = None;
        let mut user_let = None;
        for (key, value) in options {
            match key.as_str() {
                "into" => into = Some(parse_namespace(value, db)?),
                "on" => merge.on = parse_on(value)?,
                "whenMatched" => merge.when_matched = parse_when_matched(value)?,
                "whenNotMatched" => merge.when_not_matched = parse_when_not_matched(value)?,
                "let" => match value {
                    Bson::Document(vars) => user_let = Some(vars.clone()),
                    _ => return Err(CommandError::type_mismatch("$merge 'let' must be an object")),
                },
                _ => return Err(CommandError::new(40415, "Location40415", format!("BSON field '$merge.{key}' is an unknown field."))),
            }
        }
        merge.into = into.ok_or_else(|| CommandError::new(40414, "Location40414", "BSON field '$merge.into' is missing but a required field"))?;
        if let Some(vars) = user_let {
            if !matches!(merge.when_matched, WhenMatched::Pipeline(_)) {
                return Err(location(51199, "Cannot use 'let' variables with a 'whenMatched' mode other than a pipeline"));
            }
            merge.let_vars = vars;
        }
        // MongoDB implements only these pairings of the two modes.
        let supported = match merge.when_matched {
            WhenMatched::Replace | WhenMatched::Merge | WhenMatched::Pipeline(_) => true,
            WhenMatched::KeepExisting | WhenMatched::Fail => merge.when_not_matched == WhenNotMatched::Insert,
        };
        if !supported {
            return Err(location(
                51181,
                format!(
                    "Combination of $merge modes 'whenMatched: {}' and 'whenNotMatched: {}' is not supported",
                    merge.when_matched_name(),
                    merge.when_not_matched_name()
                ),
            ));
        }
        Ok(merge)
    }

    fn when_matched_name(&self) -> &'static str {
        match self.when_matched {
            WhenMatched::Replace => "replace",
            WhenMatched::KeepExisting => "keepExisting",
            WhenMatched::Merge => "merge",
            WhenMatched::Fail => "fail",
            WhenMatched::Pipeline(_) => "pipeline",
        }
    }

    fn when_not_matched_name(&self) -> &'static str {
        match self.when_not_matched {
            WhenNotMatched::Insert => "insert",
            WhenNotMatched::Discard => "discard",
            WhenNotMatched::Fail => "fail",
        }
    }

    fn on_is_id(&self) -> bool {
        self.on.len() == 1 && self.on[0] == "_id"
    }
}

impl OutputStage {
    pub fn name(&self) -> &'static str {
        match self {
            OutputStage::Out(_) => "$out",
            OutputStage::Merge(_) => "$merge",
        }
    }

    /// The error MongoDB gives for this stage inside a multi-document transaction.
    pub fn refused_in_transaction(&self) -> CommandError {
        CommandError::new(263, "OperationNotSupportedInTransaction", format!("{} cannot be used in a transaction", self.name()))
    }

    /// Writes `results` as the stage says, checking them against the
    /// target's validator unless `bypass` (`bypassDocumentValidation`).
    pub fn write(&self, tables: &mut Tables<'_>, results: Vec<Document>, bypass: bool) -> CmdResult<()> {
        match self {
            OutputStage::Out(target) => replace_collection(tables, target, results, bypass),
            OutputStage::Merge(spec) => merge_into(tables, spec, results, bypass),
        }
    }
}

/// `$out`: the target's new contents are built in a temporary collection
/// that carries the target's options and indexes (so unique indexes are
/// enforced on the new documents), then renamed over the target.
fn replace_collection(tables: &mut Tables<'_>, target: &Namespace, results: Vec<Document>, bypass: bool) -> CmdResult<()> {
    validate_collection_name(&target.coll)?;
    if target.coll.starts_with("system.") {
        return Err(location(17385, format!("Can't $out to special collection: {}", target.coll)));
    }
    let existing = tables.collection(&target.db, &target.coll)?;
    let temp_name = format!("tmp.agg_out.{:016x}", rand::random::<u64>());
    let options = existing.as_ref().map(|m| m.options.clone()).unwrap_or_default();
    let mut temp = tables.create_collection(&target.db, &temp_name, options)?;
    if let Some(old) = &existing {
        for index in old.indexes.iter() {
            tables.create_index(&mut temp, &index.spec)?;
        }
    }
    let rules = Rules::for_collection(&temp, bypass)?;
    for mut d in results {
        ensure_id(&mut d);
        check_id_storable(&d)?;
        rules.check_insert(&d)?;
        tables.insert(&temp, &d)?;
    }
    if let Some(old) = &existing {
        tables.drop_collection(old)?;
    }
    tables.rename_collection(&temp, &target.db, &target.coll)?;
    Ok(())
}

/// Whether a unique index of `meta` guarantees at most one document per
/// combination of the `on` fields: MongoDB requires one on exactly those
/// fields, not partial.
fn has_unique_index_on(meta: &CollectionMeta, on: &[String]) -> bool {
    meta.indexes.iter().any(|ix| {
        ix.unique
            && ix.partial.is_none()
            && ix.key.len() == on.len()
            && ix.key.iter().all(|(field, direction)| {
                on.iter().any(|f| f == field) && matches!(direction, Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_))
            })
    })
}

/// The value of one `on` field of a result document, as MongoDB requires it:
/// present, not null, and not reached through or ending in an array.
fn on_value(doc: &Document, field: &str) -> CmdResult<Bson> {
    let mut current = Some(Bson::Document(doc.clone()));
    for part in field.split('.') {
        current = match current {
            Some(Bson::Document(d)) => d.get(part).cloned(),
            _ => None,
        };
        if matches!(current, Some(Bson::Array(_))) {
            return Err(location(51185, format!("$merge write error: 'on' field '{field}' is an array")));
        }
    }
    match current {
        None | Some(Bson::Null) | Some(Bson::Undefined) => {
            Err(location(51132, "$merge write error: 'on' field cannot be missing, null, undefined or an array"))
        }
        Some(v) => Ok(v),
    }
}

/// `doc` with `_id` taken from `existing` when it has none (a replacement
/// keeps the matched document's identity).
fn with_existing_id(mut doc: Document, existing: &Document) -> Document {
    if !doc.contains_key("_id") {
        if let Some(id) = existing.get("_id") {
            doc.insert("_id", id.clone());
        }
    }
    ensure_id(&mut doc);
    doc
}

fn merge_into(tables: &mut Tables<'_>, spec: &MergeSpec, results: Vec<Document>, bypass: bool) -> CmdResult<()> {
    validate_collection_name(&spec.into.coll)?;
    crate::catalog::check_writable(&spec.into.db, &spec.into.coll)?;
    let mut target = tables.collection(&spec.into.db, &spec.into.coll)?;
    // A target created here has no validator.
    let rules = target.as_ref().map(|m| Rules::for_collection(m, bypass)).transpose()?;
    let check_insert = |d: &Document| rules.as_ref().map_or(Ok(()), |r| r.check_insert(d));
    if !spec.on_is_id() && !target.as_ref().is_some_and(|m| has_unique_index_on(m, &spec.on)) {
        return Err(location(51183, "Cannot find index to verify that join fields will be unique"));
    }
    for mut result in results {
        if spec.on.iter().any(|f| f == "_id") && !result.contains_key("_id") {
            result.insert("_id", ObjectId::new());
        }
        // whenMatched "fail" is a plain insert: a match is a duplicate key
        // on `_id` or on the unique index that backs `on`, reported as such.
        if let WhenMatched::Fail = spec.when_matched {
            let meta = match &target {
                Some(m) => m.clone(),
                None => target.insert(tables.ensure_collection(&spec.into.db, &spec.into.coll)?).clone(),
            };
            ensure_id(&mut result);
            check_id_storable(&result)?;
            check_insert(&result)?;
            tables.insert(&meta, &result)?;
            continue;
        }
        let mut key = Document::new();
        for field in &spec.on {
            key.insert(field.clone(), doc! {"$eq": on_value(&result, field)?});
        }
        let existing = match &target {
            Some(meta) => plan::matching(tables, meta, &key, Some(1))?.into_iter().next(),
            None => None,
        };
        match existing {
            Some(old) => {
                let Some(meta) = &target else { continue };
                let new = match &spec.when_matched {
                    WhenMatched::KeepExisting | WhenMatched::Fail => continue,
                    WhenMatched::Replace => with_existing_id(result, &old),
                    WhenMatched::Merge => {
                        let mut merged = old.clone();
                        for (k, v) in result {
                            merged.insert(k, v);
                        }
                        merged
                    }
                    WhenMatched::Pipeline(stages) => {
                        let mut vars = Vars::new();
                        for (name, e) in &spec.let_vars {
                            vars.insert(name.clone(), expr::eval(e, &result, &Vars::new())?);
                        }
                        let mut out = run_with_vars(stages, vec![old.clone()], &NoCollections, &vars)?;
                        match (out.pop(), out.is_empty()) {
                            (Some(updated), true) => with_existing_id(updated, &old),
                            _ => return Err(CommandError::bad_value("a $merge 'whenMatched' pipeline must produce exactly one document")),
                        }
                    }
                };
                if new != old {
                    if let Some(r) = &rules {
                        r.check_update(&old, &new)?;
                    }
                    tables.replace(meta, &old, &new)?;
                }
            }
            None => match spec.when_not_matched {
                WhenNotMatched::Discard => {}
                WhenNotMatched::Fail => {
                    return Err(CommandError::new(
                        13113,
                        "MergeStageNoMatchingDocument",
                        "$merge could not find a matching document in the target collection for at least one document in the source collection",
                    ))
                }
                WhenNotMatched::Insert => {
                    let meta = match &target {
                        Some(m) => m.clone(),
                        None => target.insert(tables.ensure_collection(&spec.into.db, &spec.into.coll)?).clone(),
                    };
                    ensure_id(&mut result);
                    check_id_storable(&result)?;
                    check_insert(&result)?;
                    tables.insert(&meta, &result)?;
                }
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge(spec: Bson) -> CmdResult<MergeSpec> {
        MergeSpec::parse(&spec, "db")
    }

    #[test]
    fn merge_specifications() {
        let m = merge(Bson::String("t".into())).unwrap();
        assert_eq!(m.into, Namespace { db: "db".into(), coll: "t".into() });
        assert!(m.on_is_id());
        let m = merge(Bson::Document(doc! {"into": {"db": "other", "coll": "t"}, "on": ["a", "b"], "whenNotMatched": "discard"})).unwrap();
        assert_eq!(m.into.db, "other");
        assert_eq!(m.on, vec!["a".to_string(), "b".to_string()]);
        let code = |spec: Document| merge(Bson::Document(spec)).unwrap_err().code;
        assert_eq!(code(doc! {"on": "a"}), 40414);
        assert_eq!(code(doc! {"into": "t", "zz": 1}), 40415);
        assert_eq!(code(doc! {"into": "t", "on": []}), 51187);
        assert_eq!(code(doc! {"into": "t", "on": ["a", "a"]}), 31465);
        assert_eq!(code(doc! {"into": "t", "whenMatched": "fail", "whenNotMatched": "discard"}), 51181);
        assert_eq!(code(doc! {"into": "t", "whenMatched": "keepExisting", "whenNotMatched": "fail"}), 51181);
        assert_eq!(code(doc! {"into": "t", "whenMatched": "merge", "let": {"x": 1}}), 51199);
        assert_eq!(code(doc! {"into": "t", "whenMatched": [{"$group": {"_id": 1}}]}), 72);
        assert_eq!(code(doc! {"into": "t", "whenMatched": "upsert"}), 2);
        assert_eq!(merge(Bson::Int32(1)).unwrap_err().code, 51182);
    }

    #[test]
    fn on_values_must_be_present_scalars() {
        assert_eq!(on_value(&doc! {"a": {"b": 2}}, "a.b").unwrap(), Bson::Int32(2));
        assert_eq!(on_value(&doc! {"a": null}, "a").unwrap_err().code, 51132);
        assert_eq!(on_value(&doc! {}, "a.b").unwrap_err().code, 51132);
        assert_eq!(on_value(&doc! {"a": [1]}, "a").unwrap_err().code, 51185);
        assert_eq!(on_value(&doc! {"a": [{"b": 1}]}, "a.b").unwrap_err().code, 51185);
    }

    #[test]
    fn out_specifications() {
        assert_eq!(parse_out(&Bson::String("t".into()), "db").unwrap(), Namespace { db: "db".into(), coll: "t".into() });
        assert_eq!(parse_out(&Bson::Document(doc! {"db": "x", "coll": "t"}), "db").unwrap().db, "x");
        assert_eq!(parse_out(&Bson::Document(doc! {"db": "x"}), "db").unwrap_err().code, 40414);
        assert_eq!(parse_out(&Bson::Int32(3), "db").unwrap_err().code, 16990);
    }
}
