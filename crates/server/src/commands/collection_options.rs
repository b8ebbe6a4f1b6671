//! Collection options of `create` and `collMod`: checked, normalized as
//! mongod stores them, and refused when this engine does not implement
//! them (never stored and ignored).
//!
//! - `clusteredIndex` (`{key: {_id: 1}, unique: true, name?}`): documents
//!   here are always stored by `_id`, so every collection is what MongoDB
//!   calls clustered; the option only changes how the `_id` index is
//!   listed.
//! - `changeStreamPreAndPostImages` (`{enabled: bool}`): change events keep
//!   the document before and after each change (`changes`).
//! - Refused (115): time-series collections (`timeseries`), TTL
//!   (`expireAfterSeconds`) and queryable encryption (`encryptedFields`).
use super::Ctx;
use crate::catalog::CollectionMeta;
use crate::changes::PendingChange;
use crate::error::{CmdResult, CommandError};
use bson::{doc, Bson, Document};

fn not_supported(what: &str) -> CommandError {
    CommandError::new(115, "CommandNotSupported", format!("not supported by the embedded engine: {what}"))
}

fn invalid(message: impl Into<String>) -> CommandError {
    CommandError::new(72, "InvalidOptions", message)
}

/// Checks `create`'s options and puts them in the form they are stored
/// and listed in.
pub fn check_create(options: &mut Document) -> CmdResult<()> {
    if options.contains_key("timeseries") {
        return Err(not_supported("time-series collections (the 'timeseries' option)"));
    }
    if options.contains_key("expireAfterSeconds") {
        return Err(not_supported("expiring documents (the 'expireAfterSeconds' option)"));
    }
    if options.contains_key("encryptedFields") {
        return Err(not_supported("queryable encryption (the 'encryptedFields' option)"));
    }
    if let Some(spec) = options.get("clusteredIndex") {
        let normalized = clustered_index(spec)?;
        options.insert("clusteredIndex", normalized);
    }
    if let Some(spec) = options.get("changeStreamPreAndPostImages") {
        check_images(spec)?;
    }
    crate::foreign_keys::parse(options)?;
    Ok(())
}

/// `clusteredIndex` as mongod stores it: `{v: 2, key: {_id: 1}, name, unique: true}`.
fn clustered_index(spec: &Bson) -> CmdResult<Document> {
    let Bson::Document(spec) = spec else {
        return Err(CommandError::type_mismatch("'clusteredIndex' must be an object"));
    };
    for key in spec.keys() {
        if !matches!(key.as_str(), "key" | "unique" | "name" | "v") {
            return Err(CommandError::new(40415, "IDLUnknownField", format!("BSON field 'clusteredIndex.{key}' is an unknown field.")));
        }
    }
    if spec.get("key") != Some(&Bson::Document(doc! {"_id": 1})) {
        return Err(invalid("The clusteredIndex option is only supported for key: {_id: 1}"));
    }
    if !matches!(spec.get("unique"), Some(Bson::Boolean(true))) {
        return Err(invalid("The clusteredIndex option requires unique: true"));
    }
    let name = match spec.get("name") {
        None => crate::catalog::ID_INDEX_NAME.to_string(),
        Some(Bson::String(n)) if !n.is_empty() => n.clone(),
        Some(_) => return Err(CommandError::type_mismatch("clusteredIndex.name must be a non-empty string")),
    };
    match spec.get("v") {
        None | Some(Bson::Int32(2)) | Some(Bson::Int64(2)) => {}
        Some(_) => return Err(invalid("clusteredIndex.v must be 2")),
    }
    Ok(doc! {"v": 2, "key": {"_id": 1}, "name": name, "unique": true})
}

fn check_images(spec: &Bson) -> CmdResult<()> {
    let Bson::Document(spec) = spec else {
        return Err(CommandError::type_mismatch("'changeStreamPreAndPostImages' must be an object"));
    };
    for (key, value) in spec {
        match (key.as_str(), value) {
            ("enabled", Bson::Boolean(_)) => {}
            ("enabled", _) => return Err(CommandError::type_mismatch("changeStreamPreAndPostImages.enabled must be a boolean")),
            _ => {
                return Err(CommandError::new(40415, "IDLUnknownField", format!("BSON field 'changeStreamPreAndPostImages.{key}' is an unknown field.")));
            }
        }
    }
    if !spec.contains_key("enabled") {
        return Err(CommandError::new(40414, "IDLFailedToParse", "BSON field 'changeStreamPreAndPostImages.enabled' is missing but a required field"));
    }
    Ok(())
}

/// The `_id` index as listIndexes shows it: the clustered index of a
/// collection created with `clusteredIndex`.
pub fn id_index(meta: &CollectionMeta) -> Document {
    match meta.options.get("clusteredIndex") {
        Some(Bson::Document(c)) => {
            let mut spec = c.clone();
            spec.insert("clustered", true);
            spec
        }
        _ => CollectionMeta::id_index_spec(),
    }
}

/// Whether listCollections shows an `idIndex` for the collection (a
/// clustered one has none).
pub fn has_id_index(meta: &CollectionMeta) -> bool {
    !meta.options.contains_key("clusteredIndex")
}

/// `collMod`: changes the validator (`validator`, `validationLevel`,
/// `validationAction`, checked by `validation`) and
/// `changeStreamPreAndPostImages`; other options are refused with a clear
/// error.
pub fn coll_mod(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let name = super::collection_arg(body, "collMod")?;
    let db = ctx.db.clone();
    crate::catalog::check_writable(&db, &name)?;
    let mut changed = Document::new();
    for (key, value) in body {
        match key.as_str() {
            "collMod" | "$db" | "lsid" | "txnNumber" | "autocommit" | "startTransaction" | "writeConcern" | "$clusterTime" | "$readPreference"
            | "comment" | "maxTimeMS" => {}
            "validator" if !matches!(value, Bson::Document(_)) => {
                return Err(CommandError::type_mismatch(format!(
                    "BSON field 'collMod.validator' is the wrong type '{}', expected type 'object'",
                    djongo_engine::types::type_name(value)
                )));
            }
            "validator" | "validationLevel" | "validationAction" => {
                changed.insert(key.clone(), value.clone());
            }
            "changeStreamPreAndPostImages" => {
                check_images(value)?;
                changed.insert(key.clone(), value.clone());
            }
            crate::foreign_keys::OPTION => {
                crate::foreign_keys::parse(&doc! {key: value.clone()})?;
                changed.insert(key.clone(), value.clone());
            }
            "index" => match value {
                Bson::Document(_) => {
                    changed.insert(key.clone(), value.clone());
                }
                _ => return Err(CommandError::type_mismatch("BSON field 'collMod.index' is the wrong type, expected type 'object'")),
            },
            // Options mongod knows but this engine does not change yet.
            "viewOn" | "pipeline" | "expireAfterSeconds" | "timeseries" | "recordPreImages" | "cappedSize" | "cappedMax"
            | "dryRun" => return Err(not_supported(&format!("collMod option '{key}'"))),
            other => {
                return Err(CommandError::new(40415, "IDLUnknownField", format!("BSON field 'collMod.{other}' is an unknown field.")));
            }
        }
    }
    let mut tables = ctx.scope.write()?;
    let Some(mut meta) = tables.collection(&db, &name)? else {
        return Err(CommandError::namespace_not_found(format!("ns does not exist: {db}.{name}")));
    };
    if super::views::is_view(&meta) {
        return Err(CommandError::new(166, "CommandNotSupportedOnView", format!("Namespace {db}.{name} is a view, not a collection")));
    }
    let old = meta.options.clone();
    let index_change = match changed.remove("index") {
        Some(Bson::Document(index)) => Some(modify_index(&mut meta, &index)?),
        _ => None,
    };
    for (k, v) in &changed {
        meta.options.insert(k.clone(), v.clone());
    }
    // An empty list removes the option.
    if matches!(meta.options.get(crate::foreign_keys::OPTION), Some(Bson::Array(list)) if list.is_empty()) {
        meta.options.remove(crate::foreign_keys::OPTION);
    }
    crate::validation::check_options(&db, &name, &mut meta.options)?;
    if meta.options != old || index_change.as_ref().is_some_and(|(_, changed)| *changed) {
        tables.put_collection(&meta)?;
    }
    let (old_fks, new_fks) = (crate::foreign_keys::parse(&old)?, crate::foreign_keys::parse(&meta.options)?);
    if old_fks != new_fks {
        crate::foreign_keys::constraints_changed(&mut tables, &meta, &old_fks, &new_fks)?;
    }
    // mongod reports every collMod, even one that changes nothing.
    let mut change = PendingChange::expanded(&db, &name, "modify", changed).in_collection(&meta.uuid);
    change.expanded_fields = Some(doc! {"stateBeforeChange": {"collectionOptions": old}});
    ctx.changes.push(change);
    let mut reply = index_change.map(|(reply, _)| reply).unwrap_or_default();
    reply.insert("ok", 1.0);
    Ok(reply)
}

/// `collMod`'s `index: {name | keyPattern, expireAfterSeconds, hidden}`:
/// changes those options of one index in the catalog entry. Returns the
/// reply's `<option>_old`/`<option>_new` fields and whether anything changed.
fn modify_index(meta: &mut crate::catalog::CollectionMeta, index: &Document) -> CmdResult<(Document, bool)> {
    let position = match (index.get("name"), index.get("keyPattern")) {
        (Some(Bson::String(name)), None) => meta.indexes.iter().position(|ix| ix.name == *name),
        (None, Some(Bson::Document(key))) => meta.indexes.iter().position(|ix| ix.key == *key),
        _ => return Err(CommandError::bad_value("collMod 'index' must name the index by exactly one of 'name' or 'keyPattern'")),
    };
    let Some(position) = position else {
        return Err(CommandError::new(27, "IndexNotFound", format!("cannot find index {index} for ns {}", meta.ns())));
    };
    let mut spec = meta.indexes[position].spec.clone();
    let mut reply = Document::new();
    for (option, value) in index {
        match option.as_str() {
            "name" | "keyPattern" => {}
            "expireAfterSeconds" => {
                let mut probe = spec.clone();
                probe.insert("expireAfterSeconds", value.clone());
                crate::ttl::check_spec(&probe)?;
                if meta.indexes[position].key.len() != 1 || meta.indexes[position].text.is_some() || meta.indexes[position].wildcard.is_some() {
                    return Err(CommandError::new(72, "InvalidOptions", "TTL indexes are single-field indexes, compound indexes do not support TTL"));
                }
                if let Some(old) = spec.get("expireAfterSeconds") {
                    reply.insert("expireAfterSeconds_old", old.clone());
                }
                reply.insert("expireAfterSeconds_new", value.clone());
                spec.insert("expireAfterSeconds", value.clone());
            }
            "hidden" => {
                let Bson::Boolean(hidden) = value else { return Err(CommandError::type_mismatch("collMod 'index.hidden' must be a boolean")) };
                reply.insert("hidden_old", crate::catalog::truthy(spec.get("hidden")));
                reply.insert("hidden_new", *hidden);
                spec.insert("hidden", *hidden);
            }
            other => return Err(not_supported(&format!("collMod index option '{other}'"))),
        }
    }
    if reply.is_empty() {
        return Err(CommandError::bad_value("no expireAfterSeconds or hidden field to change in collMod 'index'"));
    }
    let changed = spec != meta.indexes[position].spec;
    let id = meta.indexes[position].id;
    std::sync::Arc::make_mut(&mut meta.indexes)[position] = crate::catalog::IndexSpec::from_spec(id, &spec)?;
    Ok((reply, changed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_options_are_checked_and_normalized() {
        let mut options = doc! {"clusteredIndex": {"key": {"_id": 1}, "unique": true, "name": "by id"}};
        check_create(&mut options).unwrap();
        assert_eq!(options.get_document("clusteredIndex").unwrap(), &doc! {"v": 2, "key": {"_id": 1}, "name": "by id", "unique": true});
        let code = |o: Document| check_create(&mut o.clone()).unwrap_err().code;
        assert_eq!(code(doc! {"clusteredIndex": {"key": {"a": 1}, "unique": true}}), 72);
        assert_eq!(code(doc! {"clusteredIndex": {"key": {"_id": 1}}}), 72);
        assert_eq!(code(doc! {"timeseries": {"timeField": "t"}}), 115);
        assert_eq!(code(doc! {"expireAfterSeconds": 5}), 115);
        assert_eq!(code(doc! {"changeStreamPreAndPostImages": {"enabled": 1}}), 14);
        check_create(&mut doc! {"changeStreamPreAndPostImages": {"enabled": true}}).unwrap();
    }
}
