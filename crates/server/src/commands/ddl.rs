//! Catalog commands: databases, collections and indexes.
use super::{collection_arg, doc_array, opt_bool, opt_doc, Ctx};
use crate::catalog::{CollectionMeta, IndexSpec};
use crate::changes::PendingChange;
use crate::error::{CmdResult, CommandError};
use bson::{doc, Bson, Document};
use djongo_engine::Filter;
use std::collections::BTreeMap;

/// Applies a listCollections/listDatabases filter. A plain `{name: "x"}`
/// is handled here so catalog lookups never depend on the query engine.
fn filter_entries(entries: Vec<Document>, filter: Option<Document>) -> CmdResult<Vec<Document>> {
    let Some(filter) = filter.filter(|f| !f.is_empty()) else { return Ok(entries) };
    if filter.len() == 1 {
        if let Some(Bson::String(name)) = filter.get("name") {
            return Ok(entries.into_iter().filter(|e| e.get_str("name").ok() == Some(name.as_str())).collect());
        }
    }
    let f = Filter::parse(&filter)?;
    let mut out = Vec::new();
    for e in entries {
        if f.matches(&e)? {
            out.push(e);
        }
    }
    Ok(out)
}

pub fn list_databases(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let tables = ctx.scope.read()?;
    let mut sizes: BTreeMap<String, i64> = BTreeMap::new();
    for meta in tables.collections(None)? {
        *sizes.entry(meta.db.clone()).or_default() += tables.count(&meta)? as i64;
    }
    let entries: Vec<Document> = sizes
        .iter()
        .map(|(name, n)| doc! {"name": name, "sizeOnDisk": *n * 100, "empty": *n == 0})
        .collect();
    let entries = filter_entries(entries, opt_doc(body, "filter")?)?;
    let total: i64 = entries.iter().filter_map(|e| e.get_i64("sizeOnDisk").ok()).sum();
    let list: Vec<Bson> = if opt_bool(body, "nameOnly") {
        entries.into_iter().map(|e| Bson::Document(doc! {"name": e.get_str("name").unwrap_or_default()})).collect()
    } else {
        entries.into_iter().map(Bson::Document).collect()
    };
    Ok(doc! {"databases": list, "totalSize": total, "ok": 1.0})
}

fn collection_entry(meta: &CollectionMeta) -> Document {
    if super::views::is_view(meta) {
        return doc! {"name": &meta.name, "type": "view", "options": meta.options.clone(), "info": {"readOnly": true}};
    }
    let mut entry = doc! {
        "name": &meta.name,
        "type": "collection",
        "options": meta.options.clone(),
        "info": {"readOnly": false, "uuid": meta.uuid.clone()},
    };
    if super::collection_options::has_id_index(meta) {
        entry.insert("idIndex", CollectionMeta::id_index_spec());
    }
    entry
}

pub fn list_collections(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let db = ctx.db.clone();
    let tables = ctx.scope.read()?;
    let entries: Vec<Document> = tables.collections(Some(&db))?.iter().filter(|m| !super::capped::is_companion(&m.name)).map(collection_entry).collect();
    let mut entries = filter_entries(entries, opt_doc(body, "filter")?)?;
    if opt_bool(body, "nameOnly") {
        entries = entries.into_iter().map(|e| doc! {"name": e.get_str("name").unwrap_or_default(), "type": e.get_str("type").unwrap_or("collection")}).collect();
    }
    let batch: Vec<Bson> = entries.into_iter().map(Bson::Document).collect();
    Ok(doc! {"cursor": {"id": 0i64, "ns": format!("{db}.$cmd.listCollections"), "firstBatch": batch}, "ok": 1.0})
}

pub fn list_indexes(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let name = collection_arg(body, "listIndexes")?;
    let db = ctx.db.clone();
    let tables = ctx.scope.read()?;
    let Some(meta) = tables.collection(&db, &name)? else {
        return Err(CommandError::namespace_not_found(format!("ns does not exist: {db}.{name}")));
    };
    let mut batch = vec![Bson::Document(super::collection_options::id_index(&meta))];
    batch.extend(meta.indexes.iter().map(|ix| Bson::Document(ix.spec.clone())));
    Ok(doc! {"cursor": {"id": 0i64, "ns": format!("{db}.{name}"), "firstBatch": batch}, "ok": 1.0})
}

pub fn create(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let name = collection_arg(body, "create")?;
    let db = ctx.db.clone();
    crate::catalog::check_writable(&db, &name)?;
    let mut options = Document::new();
    for (k, v) in body {
        if !matches!(k.as_str(), "create" | "$db" | "lsid" | "txnNumber" | "autocommit" | "startTransaction" | "writeConcern" | "$clusterTime" | "$readPreference" | "comment") {
            options.insert(k.clone(), v.clone());
        }
    }
    let view = super::views::definition(&options)?;
    if view.is_some() {
        if ctx.scope.in_transaction() {
            return Err(CommandError::new(263, "OperationNotSupportedInTransaction", "Cannot create a view in a multi-document transaction."));
        }
        // Before the view exists: commands look for views from now on.
        ctx.state.views_exist.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    if view.is_none() {
        super::collection_options::check_create(&mut options)?;
        super::capped::check_options(&mut options)?;
    }
    crate::validation::check_options(&db, &name, &mut options)?;
    let mut tables = ctx.scope.write()?;
    if let Some((source, _)) = &view {
        super::views::check_new_view(&tables, &db, &name, source)?;
    }
    let meta = tables.create_collection(&db, &name, options)?;
    let fks = crate::foreign_keys::parse(&meta.options)?;
    if !fks.is_empty() {
        crate::foreign_keys::constraints_changed(&mut tables, &meta, &[], &fks)?;
    }
    if super::capped::is_capped(&meta) {
        super::capped::create(&mut tables, &meta)?;
    }
    let kind = if view.is_some() { "view" } else { "collection" };
    let uuid = meta.uuid.clone();
    ctx.changes.push(PendingChange::expanded(&db, &name, "create", doc! {"idIndex": CollectionMeta::id_index_spec(), "type": kind, "options": meta.options}).in_collection(&uuid));
    Ok(doc! {"ok": 1.0})
}

pub fn drop(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let name = collection_arg(body, "drop")?;
    let db = ctx.db.clone();
    let mut tables = ctx.scope.write()?;
    // MongoDB 7 treats dropping a missing collection as success.
    let Some(meta) = tables.collection(&db, &name)? else {
        return Ok(doc! {"ns": format!("{db}.{name}"), "ok": 1.0});
    };
    let n_indexes = meta.indexes.len() as i32 + 1;
    let referred = crate::foreign_keys::dropping(&mut tables, &meta)?;
    tables.drop_collection(&meta)?;
    crate::foreign_keys::dropped(&mut tables, &db, &referred)?;
    super::capped::dropped(&mut tables, &meta)?;
    ctx.changes.push(PendingChange::drop(&db, &name).in_collection(&meta.uuid));
    Ok(doc! {"ns": format!("{db}.{name}"), "nIndexesWas": n_indexes, "ok": 1.0})
}

pub fn drop_database(ctx: &mut Ctx<'_>, _body: &Document) -> CmdResult<Document> {
    let db = ctx.db.clone();
    let mut tables = ctx.scope.write()?;
    for meta in tables.collections(Some(&db))? {
        tables.drop_collection(&meta)?;
        if !super::capped::is_companion(&meta.name) {
            ctx.changes.push(PendingChange::drop(&db, &meta.name).in_collection(&meta.uuid));
        }
    }
    ctx.changes.push(PendingChange::drop_database(&db));
    Ok(doc! {"dropped": db, "ok": 1.0})
}

fn split_ns(ns: &str) -> CmdResult<(String, String)> {
    match ns.split_once('.') {
        Some((db, coll)) if !db.is_empty() && !coll.is_empty() => Ok((db.to_string(), coll.to_string())),
        _ => Err(CommandError::invalid_namespace(format!("Invalid namespace specified '{ns}'"))),
    }
}

pub fn rename_collection(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let (Some(Bson::String(from)), Some(Bson::String(to))) = (body.get("renameCollection"), body.get("to")) else {
        return Err(CommandError::type_mismatch("renameCollection and to must be namespace strings"));
    };
    if ctx.db != "admin" {
        return Err(CommandError::new(13, "Unauthorized", "renameCollection may only be run against the admin database."));
    }
    let (from_db, from_coll) = split_ns(from)?;
    let (to_db, to_coll) = split_ns(to)?;
    crate::catalog::check_writable(&to_db, &to_coll)?;
    let drop_target = opt_bool(body, "dropTarget");
    let mut tables = ctx.scope.write()?;
    let Some(meta) = tables.collection(&from_db, &from_coll)? else {
        return Err(CommandError::namespace_not_found(format!("Source collection {from} does not exist")));
    };
    if from == to {
        return Err(CommandError::new(20, "IllegalOperation", "Can't rename a collection to itself"));
    }
    if super::views::is_view(&meta) {
        return Err(CommandError::new(166, "CommandNotSupportedOnView", format!("cannot rename view {from}")));
    }
    let mut dropped = None;
    if let Some(target) = tables.collection(&to_db, &to_coll)? {
        if !drop_target {
            return Err(CommandError::new(48, "NamespaceExists", "target namespace exists"));
        }
        let referred = crate::foreign_keys::dropping(&mut tables, &target)?;
        tables.drop_collection(&target)?;
        crate::foreign_keys::dropped(&mut tables, &to_db, &referred)?;
        super::capped::dropped(&mut tables, &target)?;
        ctx.changes.push(PendingChange::drop(&to_db, &to_coll).in_collection(&target.uuid));
        dropped = Some(target.uuid);
    }
    let moved = tables.rename_collection(&meta, &to_db, &to_coll)?;
    crate::foreign_keys::renamed(&mut tables, &meta, &moved)?;
    super::capped::renamed(&mut tables, &meta, &to_db, &to_coll)?;
    ctx.changes.push(PendingChange::rename(&from_db, &from_coll, &to_db, &to_coll, dropped.as_ref()).in_collection(&meta.uuid));
    Ok(doc! {"ok": 1.0})
}

pub fn create_indexes(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let name = collection_arg(body, "createIndexes")?;
    crate::catalog::check_writable(&ctx.db, &name)?;
    let specs = doc_array(body, "indexes")?;
    if specs.is_empty() {
        return Err(CommandError::bad_value("Must specify at least one index to create"));
    }
    let db = ctx.db.clone();
    let mut tables = ctx.scope.write()?;
    let existed = tables.collection(&db, &name)?;
    let created_collection = existed.is_none();
    let mut meta = match existed {
        Some(m) => m,
        None => tables.create_collection(&db, &name, Document::new())?,
    };
    let before = meta.indexes.len() as i32 + 1;
    let mut created_any = false;
    for spec in &specs {
        // Validate every spec before building any of them.
        IndexSpec::from_spec(0, spec)?;
        crate::ttl::check_spec(spec)?;
    }
    for spec in &specs {
        let created = tables.create_index(&mut meta, spec)?;
        if created {
            let description = doc! {"indexes": [IndexSpec::from_spec(0, spec)?.spec]};
            ctx.changes.push(PendingChange::expanded(&db, &name, "createIndexes", description).in_collection(&meta.uuid));
        }
        created_any |= created;
    }
    let mut reply = doc! {
        "numIndexesBefore": before,
        "numIndexesAfter": meta.indexes.len() as i32 + 1,
        "createdCollectionAutomatically": created_collection,
    };
    if !created_any {
        reply.insert("note", "all indexes already exist");
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

pub fn drop_indexes(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let cmd = if body.contains_key("dropIndexes") { "dropIndexes" } else { "deleteIndexes" };
    let name = collection_arg(body, cmd)?;
    let db = ctx.db.clone();
    let mut tables = ctx.scope.write()?;
    let Some(mut meta) = tables.collection(&db, &name)? else {
        return Err(CommandError::namespace_not_found(format!("ns not found {db}.{name}")));
    };
    let before = meta.indexes.len() as i32 + 1;
    let names: Vec<String> = match body.get("index") {
        Some(Bson::String(s)) if s == "*" => meta.indexes.iter().map(|ix| ix.name.clone()).collect(),
        Some(Bson::String(s)) => vec![s.clone()],
        Some(Bson::Array(items)) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
        Some(Bson::Document(key)) => match meta.indexes.iter().find(|ix| &ix.key == key) {
            Some(ix) => vec![ix.name.clone()],
            None => return Err(CommandError::new(27, "IndexNotFound", format!("can't find index with key: {key}"))),
        },
        _ => return Err(CommandError::type_mismatch("'index' must be a name, a key pattern or '*'")),
    };
    for n in names {
        if n == crate::catalog::ID_INDEX_NAME {
            return Err(CommandError::new(72, "InvalidOptions", "cannot drop _id index"));
        }
        let spec = meta.index(&n).map(|ix| ix.spec.clone());
        tables.drop_index(&mut meta, &n)?;
        if let Some(spec) = spec {
            ctx.changes.push(PendingChange::expanded(&db, &name, "dropIndexes", doc! {"indexes": [spec]}).in_collection(&meta.uuid));
        }
    }
    Ok(doc! {"nIndexesWas": before, "ok": 1.0})
}

pub fn db_stats(ctx: &mut Ctx<'_>, _body: &Document) -> CmdResult<Document> {
    let db = ctx.db.clone();
    let tables = ctx.scope.read()?;
    let mut metas = tables.collections(Some(&db))?;
    metas.retain(|m| !super::capped::is_companion(&m.name));
    let views = metas.iter().filter(|m| super::views::is_view(m)).count() as i64;
    let mut objects = 0i64;
    let mut indexes = 0i64;
    for m in metas.iter().filter(|m| !super::views::is_view(m)) {
        objects += tables.count(m)? as i64;
        indexes += m.indexes.len() as i64 + 1;
    }
    Ok(doc! {"db": db, "collections": metas.len() as i64 - views, "views": views, "objects": objects, "indexes": indexes, "ok": 1.0})
}

pub fn coll_stats(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let name = collection_arg(body, "collStats")?;
    let db = ctx.db.clone();
    let tables = ctx.scope.read()?;
    let Some(meta) = tables.collection(&db, &name)? else {
        return Err(CommandError::namespace_not_found(format!("Collection [{db}.{name}] not found.")));
    };
    let count = tables.count(&meta)? as i64;
    Ok(doc! {"ns": meta.ns(), "count": count, "nindexes": meta.indexes.len() as i64 + 1, "ok": 1.0})
}

/// Atlas Search index commands: refused as mongod refuses them without an
/// Atlas deployment (SearchNotEnabled).
pub fn search_indexes(_ctx: &mut Ctx<'_>, _body: &Document) -> CmdResult<Document> {
    Err(super::search_not_enabled())
}
