//! Write commands: insert, update, delete, findAndModify.
//!
//! Per-document failures (duplicate keys, bad update operators) are reported
//! in `writeErrors` with `ok: 1`, exactly as MongoDB does, so drivers raise
//! DuplicateKeyError / BulkWriteError. Ordered writes stop at the first
//! failure; the statements before it stay applied.
use super::let_vars::{self, bind_filter};
use super::{collection_arg, doc_array, opt_bool, opt_doc, transactional_write, Ctx};
use crate::catalog::CollectionMeta;
use crate::changes::{images_enabled, PendingChange};
use crate::error::{CmdResult, CommandError};
use crate::plan;
use crate::storage::Tables;
use crate::validation::{bypass_requested, Rules};
use bson::{doc, oid::ObjectId, Bson, Document, RawDocumentBuf};
use djongo_engine::expr::Vars;
use djongo_engine::update::{apply_update_at, uses_match_position, ArrayFilters, Positions};
use djongo_engine::{projection::FindProjection, sort::sort_documents, Filter};

/// Gives the document an ObjectId `_id` if it has none and moves `_id` to
/// the front, as MongoDB stores it.
pub fn ensure_id(doc: &mut Document) {
    if doc.keys().next().is_some_and(|k| k == "_id") {
        return;
    }
    let id = doc.remove("_id").unwrap_or_else(|| Bson::ObjectId(ObjectId::new()));
    let mut out = Document::new();
    out.insert("_id", id);
    for (k, v) in std::mem::take(doc) {
        out.insert(k, v);
    }
    *doc = out;
}

/// MongoDB's storage rule for `_id` (storage_validation::storageValidIdField):
/// a document `_id` may hold no `$`-prefixed field at any depth, except a
/// DBRef's `$ref`, `$id` and `$db` in that order.
pub(super) fn check_id_storable(doc: &Document) -> CmdResult<()> {
    let Some(Bson::Document(id)) = doc.get("_id") else { return Ok(()) };
    // Explicit stack: an `_id` may be nested up to the document limit.
    let mut pending: Vec<&Document> = vec![id];
    while let Some(d) = pending.pop() {
        let keys: Vec<&String> = d.keys().collect();
        let dbref = keys.len() >= 2 && keys[0] == "$ref" && keys[1] == "$id" && (keys.len() == 2 || keys[2] == "$db");
        for (i, (k, v)) in d.iter().enumerate() {
            if k.starts_with('$') && !(dbref && i < 3) {
                return Err(CommandError::new(
                    52,
                    "DollarPrefixedFieldName",
                    format!("_id fields may not contain '$'-prefixed fields: {k} is not valid for storage."),
                ));
            }
            push_documents(v, &mut pending);
        }
    }
    Ok(())
}

/// The documents in `v`: itself, or those inside an array (at any depth).
fn push_documents<'a>(v: &'a Bson, out: &mut Vec<&'a Document>) {
    let mut arrays: Vec<&'a [Bson]> = Vec::new();
    match v {
        Bson::Document(d) => out.push(d),
        Bson::Array(items) => arrays.push(items),
        _ => {}
    }
    while let Some(items) = arrays.pop() {
        for item in items {
            match item {
                Bson::Document(d) => out.push(d),
                Bson::Array(inner) => arrays.push(inner),
                _ => {}
            }
        }
    }
}

fn write_error(index: usize, e: &CommandError) -> Bson {
    let mut d = doc! {"index": index as i32, "code": e.code, "errmsg": e.message.clone()};
    for (k, v) in e.extra.iter() {
        d.insert(k.clone(), v.clone());
    }
    Bson::Document(d)
}

fn ordered(body: &Document) -> bool {
    body.get("ordered").map(|v| crate::catalog::truthy(Some(v))).unwrap_or(true)
}

pub fn insert(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let coll = collection_arg(body, "insert")?;
    crate::catalog::check_writable(&ctx.db, &coll)?;
    let mut docs = doc_array(body, "documents")?;
    let ordered = ordered(body);
    let counter = super::counter::parse(ctx, body)?;
    let db = ctx.db.clone();
    let in_txn = ctx.scope.in_transaction();
    let mut tables = ctx.scope.write()?;
    let counted = match &counter {
        Some(counter) => Some(super::counter::take(&mut tables, &db, counter, &mut docs, &mut ctx.changes)?),
        None => None,
    };
    let meta = tables.ensure_collection(&db, &coll)?;
    let rules = Rules::for_collection(&meta, bypass_requested(body))?;
    let mut n = 0i32;
    let mut errors = Vec::new();
    let images = images_enabled(&meta.options);
    let capped = super::capped::is_capped(&meta);
    let mut inserted = Vec::new();
    ctx.changes.reserve(docs.len());
    for (i, mut d) in docs.into_iter().enumerate() {
        ensure_id(&mut d);
        match check_id_storable(&d).and_then(|()| rules.check_insert(&d)).and_then(|()| tables.insert_stored(&meta, &d)) {
            Ok(stored) => {
                n += 1;
                ctx.changes.push(PendingChange::insert(&db, &coll, &d, stored, images).in_collection(&meta.uuid));
                if capped {
                    inserted.push(d);
                }
            }
            Err(e) if e.aborts_command() => return Err(e),
            Err(e) => {
                errors.push(write_error(i, &e));
                if ordered {
                    break;
                }
            }
        }
    }
    super::capped::inserted(&mut tables, &meta, &inserted, in_txn)?;
    if n > 0 {
        transactional_write(ctx.state, ctx.conn, ctx.retryable)?;
    }
    let mut reply = doc! {"n": n};
    if !errors.is_empty() {
        reply.insert("writeErrors", errors);
    }
    if let Some(counted) = counted {
        reply.insert("djongoCounter", counted);
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

/// Sets `value` at a dotted `path`, creating intermediate documents.
pub(super) fn set_path(doc: &mut Document, path: &str, value: Bson) {
    match path.split_once('.') {
        None => {
            doc.insert(path, value);
        }
        Some((head, rest)) => {
            if !matches!(doc.get(head), Some(Bson::Document(_))) {
                doc.insert(head, Document::new());
            }
            if let Some(Bson::Document(inner)) = doc.get_mut(head) {
                set_path(inner, rest, value);
            }
        }
    }
}

/// The document an upsert starts from: the query's equality predicates
/// (`{a: 1}`, `{a: {$eq: 1}}`, inside `$and`), as MongoDB seeds it.
fn seed_from_query(q: &Document, out: &mut Document) {
    for (k, v) in q {
        if k == "$and" {
            if let Bson::Array(items) = v {
                for item in items {
                    if let Bson::Document(d) = item {
                        seed_from_query(d, out);
                    }
                }
            }
        } else if k.starts_with('$') {
            continue;
        } else {
            match v {
                Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
                    if let Some(eq) = d.get("$eq") {
                        set_path(out, k, eq.clone());
                    }
                }
                Bson::RegularExpression(_) => {}
                other => set_path(out, k, other.clone()),
            }
        }
    }
}

fn is_replacement(u: &Bson) -> bool {
    matches!(u, Bson::Document(d) if d.keys().next().is_some_and(|k| !k.starts_with('$')))
}

/// An update statement's `u` with what its array positions need: the
/// statement's `arrayFilters`, and its query when a path uses the positional
/// `$` (the element the query matched).
struct PreparedUpdate<'v> {
    u: Bson,
    array_filters: ArrayFilters,
    query: Option<Filter>,
    /// The command's `let`, for a pipeline-style update.
    vars: Option<&'v Vars>,
}

impl<'v> PreparedUpdate<'v> {
    fn new(u: Bson, q: &Document, array_filters: Option<&Bson>, vars: Option<&'v Vars>) -> CmdResult<PreparedUpdate<'v>> {
        let specs: &[Bson] = match array_filters {
            None => &[],
            Some(Bson::Array(items)) => items,
            Some(other) => {
                return Err(CommandError::new(14, "TypeMismatch", format!("arrayFilters must be an array, not {}", djongo_engine::types::type_name(other))));
            }
        };
        let array_filters = ArrayFilters::parse(specs, &u)?;
        let query = if uses_match_position(&u) { Some(Filter::parse(q)?) } else { None };
        Ok(PreparedUpdate { u, array_filters, query, vars })
    }

    /// Applies the update to `doc`; `is_insert` for an upsert's new document,
    /// which no query element matched.
    fn apply(&self, doc: &mut Document, is_insert: bool) -> CmdResult<()> {
        let matched = match &self.query {
            Some(q) if !is_insert => q.match_position(doc)?,
            _ => None,
        };
        let positions = Positions { matched, array_filters: Some(&self.array_filters), vars: self.vars };
        apply_update_at(doc, &self.u, is_insert, &positions)?;
        Ok(())
    }
}

/// The new version of `old` after `u`; `_id` is carried over when a
/// replacement omits it.
fn updated(old: &Document, u: &PreparedUpdate) -> CmdResult<Document> {
    let mut new = old.clone();
    u.apply(&mut new, false)?;
    if !new.contains_key("_id") {
        if let Some(id) = old.get("_id") {
            new.insert("_id", id.clone());
        }
    }
    ensure_id(&mut new);
    Ok(new)
}

/// Builds and inserts the document of an upsert; returns it, and as stored.
fn upsert_document(tables: &mut Tables<'_>, meta: &CollectionMeta, rules: &Rules, q: &Document, u: &PreparedUpdate) -> CmdResult<(Document, RawDocumentBuf)> {
    let mut seed = Document::new();
    seed_from_query(q, &mut seed);
    let mut new = if is_replacement(&u.u) {
        let Bson::Document(rep) = &u.u else { return Err(CommandError::internal("replacement is not a document")) };
        let mut rep = rep.clone();
        if !rep.contains_key("_id") {
            if let Some(id) = seed.get("_id") {
                rep.insert("_id", id.clone());
            }
        }
        rep
    } else {
        u.apply(&mut seed, true)?;
        seed
    };
    ensure_id(&mut new);
    check_id_storable(&new)?;
    rules.check_insert(&new)?;
    let stored = tables.insert_stored(meta, &new)?;
    Ok((new, stored))
}

/// The change event of an update: `replace` for a replacement document,
/// `update` (with what changed) for operators or a pipeline.
fn change_of_update(db: &str, coll: &str, u: &PreparedUpdate<'_>, old: &Document, new: &Document, images: bool) -> PendingChange {
    if is_replacement(&u.u) {
        PendingChange::replace(db, coll, old, new, images)
    } else {
        PendingChange::update(db, coll, old, new, images)
    }
}

fn update_arg(stmt: &Document, key: &str) -> CmdResult<Bson> {
    match stmt.get(key) {
        Some(u @ (Bson::Document(_) | Bson::Array(_))) => Ok(u.clone()),
        _ => Err(CommandError::failed_to_parse(format!("'{key}' must be an update document or pipeline"))),
    }
}

struct UpdateOutcome {
    matched: i64,
    modified: i64,
    upserted: Option<Bson>,
}

fn update_statement(
    tables: &mut Tables<'_>,
    (db, coll, in_txn): (&str, &str, bool),
    stmt: &Document,
    (vars, bypass): (Option<&Vars>, bool),
    changes: &mut Vec<PendingChange>,
) -> CmdResult<UpdateOutcome> {
    let q = bind_filter(opt_doc(stmt, "q")?.unwrap_or_default(), vars);
    let u = PreparedUpdate::new(update_arg(stmt, "u")?, &q, stmt.get("arrayFilters"), vars)?;
    let multi = opt_bool(stmt, "multi");
    let upsert = opt_bool(stmt, "upsert");
    if multi && is_replacement(&u.u) {
        return Err(CommandError::failed_to_parse("multi update is not supported for replacement-style update"));
    }
    let meta = match tables.collection(db, coll)? {
        Some(m) => m,
        None if upsert => tables.ensure_collection(db, coll)?,
        None => return Ok(UpdateOutcome { matched: 0, modified: 0, upserted: None }),
    };
    let rules = Rules::for_collection(&meta, bypass)?;
    let images = images_enabled(&meta.options);
    let targets = plan::matching(tables, &meta, &q, if multi { None } else { Some(1) })?;
    if targets.is_empty() {
        if upsert {
            let (new, stored) = upsert_document(tables, &meta, &rules, &q, &u)?;
            super::capped::inserted(tables, &meta, std::slice::from_ref(&new), in_txn)?;
            changes.push(PendingChange::insert(db, coll, &new, stored, images).in_collection(&meta.uuid));
            return Ok(UpdateOutcome { matched: 0, modified: 0, upserted: new.get("_id").cloned() });
        }
        return Ok(UpdateOutcome { matched: 0, modified: 0, upserted: None });
    }
    let mut outcome = UpdateOutcome { matched: 0, modified: 0, upserted: None };
    for old in targets {
        let new = updated(&old, &u)?;
        outcome.matched += 1;
        if new != old {
            rules.check_update(&old, &new)?;
            tables.replace(&meta, &old, &new)?;
            super::capped::replaced(tables, &meta, &new, in_txn)?;
            changes.push(change_of_update(db, coll, &u, &old, &new, images).in_collection(&meta.uuid));
            outcome.modified += 1;
        }
    }
    Ok(outcome)
}

/// The collation of one update or delete statement (`None`: simple).
fn statement_collation(stmt: &Document) -> CmdResult<Option<std::sync::Arc<djongo_engine::collation::Collation>>> {
    match stmt.get("collation") {
        Some(c) => Ok(djongo_engine::collation::parse(c)?),
        None => Ok(None),
    }
}

pub fn update(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let coll = collection_arg(body, "update")?;
    crate::catalog::check_writable(&ctx.db, &coll)?;
    let statements = doc_array(body, "updates")?;
    let in_txn = ctx.scope.in_transaction();
    if statements.iter().any(|s| s.contains_key("sort")) {
        // MongoDB 8.0 added `sort` to updateOne/replaceOne; 7.0, which this
        // server reports itself as, refuses the command for an unknown field.
        return Err(CommandError::new(40415, "IDLUnknownField", "BSON field 'update.updates.sort' is an unknown field."));
    }
    let ordered = ordered(body);
    let vars = let_vars::parse(body)?;
    let bypass = bypass_requested(body);
    let db = ctx.db.clone();
    let mut tables = ctx.scope.write()?;
    let (mut n, mut modified) = (0i64, 0i64);
    let mut upserted = Vec::new();
    let mut errors = Vec::new();
    for (i, stmt) in statements.iter().enumerate() {
        let outcome = statement_collation(stmt)
            .and_then(|collation| {
                djongo_engine::collation::scoped(collation, || {
                    update_statement(&mut tables, (&db, &coll, in_txn), stmt, (vars.as_ref(), bypass), &mut ctx.changes)
                })
            })
            .and_then(|o| {
            if o.modified > 0 || o.upserted.is_some() {
                transactional_write(ctx.state, ctx.conn, ctx.retryable)?;
            }
            Ok(o)
        });
        match outcome {
            Ok(o) => {
                n += o.matched;
                modified += o.modified;
                if let Some(id) = o.upserted {
                    n += 1;
                    upserted.push(Bson::Document(doc! {"index": i as i32, "_id": id}));
                }
            }
            Err(e) if e.aborts_command() => return Err(e),
            Err(e) => {
                errors.push(write_error(i, &e));
                if ordered {
                    break;
                }
            }
        }
    }
    let mut reply = doc! {"n": n as i32, "nModified": modified as i32};
    if !upserted.is_empty() {
        reply.insert("upserted", upserted);
    }
    if !errors.is_empty() {
        reply.insert("writeErrors", errors);
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

pub fn delete(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let coll = collection_arg(body, "delete")?;
    crate::catalog::check_writable(&ctx.db, &coll)?;
    let statements = doc_array(body, "deletes")?;
    let in_txn = ctx.scope.in_transaction();
    let ordered = ordered(body);
    let vars = let_vars::parse(body)?;
    let db = ctx.db.clone();
    let mut tables = ctx.scope.write()?;
    let meta = tables.collection(&db, &coll)?;
    let mut n = 0i64;
    let mut errors = Vec::new();
    for (i, stmt) in statements.iter().enumerate() {
        let Some(meta) = &meta else { break };
        // Checked for every statement before any runs (commands/mod.rs).
        let collation = statement_collation(stmt)?;
        let result = djongo_engine::collation::scoped(collation, || -> CmdResult<i64> {
            let q = bind_filter(opt_doc(stmt, "q")?.unwrap_or_default(), vars.as_ref());
            let limit = super::opt_i64(stmt, "limit")?.unwrap_or(0);
            let targets = plan::matching(&tables, meta, &q, (limit == 1).then_some(1))?;
            for d in &targets {
                tables.delete(meta, d)?;
                super::capped::removed(&mut tables, meta, d, in_txn)?;
                ctx.changes.push(PendingChange::delete(&db, &coll, d, images_enabled(&meta.options)).in_collection(&meta.uuid));
            }
            if !targets.is_empty() {
                transactional_write(ctx.state, ctx.conn, ctx.retryable)?;
            }
            Ok(targets.len() as i64)
        });
        match result {
            Ok(k) => n += k,
            Err(e) if e.aborts_command() => return Err(e),
            Err(e) => {
                errors.push(write_error(i, &e));
                if ordered {
                    break;
                }
            }
        }
    }
    let mut reply = doc! {"n": n as i32};
    if !errors.is_empty() {
        reply.insert("writeErrors", errors);
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

pub fn find_and_modify(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    let cmd = if body.contains_key("findAndModify") { "findAndModify" } else { "findandmodify" };
    let coll = collection_arg(body, cmd)?;
    crate::catalog::check_writable(&ctx.db, &coll)?;
    let vars = let_vars::parse(body)?;
    let q = bind_filter(opt_doc(body, "query")?.unwrap_or_default(), vars.as_ref());
    let sort = opt_doc(body, "sort")?.filter(|s| !s.is_empty());
    let fields = match opt_doc(body, "fields")?.filter(|f| !f.is_empty()) {
        Some(f) => Some(FindProjection::parse(&f, &q)?),
        None => None,
    };
    let remove = opt_bool(body, "remove");
    let return_new = opt_bool(body, "new");
    let upsert = opt_bool(body, "upsert");
    let u = match body.get("update") {
        None | Some(Bson::Null) => None,
        Some(_) => Some(PreparedUpdate::new(update_arg(body, "update")?, &q, body.get("arrayFilters"), vars.as_ref())?),
    };
    if remove == u.is_some() {
        return Err(CommandError::failed_to_parse("Either an update or remove=true must be specified"));
    }
    if remove && (upsert || return_new) {
        return Err(CommandError::failed_to_parse("Cannot specify both remove=true and upsert=true / new=true"));
    }
    let db = ctx.db.clone();
    let in_txn = ctx.scope.in_transaction();
    let mut tables = ctx.scope.write()?;
    let meta = match tables.collection(&db, &coll)? {
        Some(m) => Some(m),
        None if upsert => Some(tables.ensure_collection(&db, &coll)?),
        None => None,
    };
    let rules = meta.as_ref().map(|m| Rules::for_collection(m, bypass_requested(body))).transpose()?;
    let target = match &meta {
        None => None,
        Some(meta) => {
            let mut docs = plan::matching(&tables, meta, &q, if sort.is_some() { None } else { Some(1) })?;
            if let Some(s) = &sort {
                sort_documents(&mut docs, s)?;
            }
            docs.into_iter().next()
        }
    };
    let project = |d: Document| -> CmdResult<Bson> {
        Ok(Bson::Document(match &fields {
            Some(f) => f.apply(&d)?,
            None => d,
        }))
    };
    let (value, last_error) = match (meta.zip(rules), target, u) {
        (Some((meta, _)), Some(old), None) => {
            tables.delete(&meta, &old)?;
            super::capped::removed(&mut tables, &meta, &old, in_txn)?;
            ctx.changes.push(PendingChange::delete(&db, &coll, &old, images_enabled(&meta.options)).in_collection(&meta.uuid));
            (project(old)?, doc! {"n": 1})
        }
        (Some((meta, rules)), Some(old), Some(u)) => {
            let new = updated(&old, &u)?;
            if new != old {
                rules.check_update(&old, &new)?;
                tables.replace(&meta, &old, &new)?;
                super::capped::replaced(&mut tables, &meta, &new, in_txn)?;
                ctx.changes.push(change_of_update(&db, &coll, &u, &old, &new, images_enabled(&meta.options)).in_collection(&meta.uuid));
            }
            (project(if return_new { new } else { old })?, doc! {"n": 1, "updatedExisting": true})
        }
        (Some((meta, rules)), None, Some(u)) if upsert => {
            let (new, stored) = upsert_document(&mut tables, &meta, &rules, &q, &u)?;
            super::capped::inserted(&mut tables, &meta, std::slice::from_ref(&new), in_txn)?;
            ctx.changes.push(PendingChange::insert(&db, &coll, &new, stored, images_enabled(&meta.options)).in_collection(&meta.uuid));
            let id = new.get("_id").cloned().unwrap_or(Bson::Null);
            let value = if return_new { project(new)? } else { Bson::Null };
            (value, doc! {"n": 1, "updatedExisting": false, "upserted": id})
        }
        (_, _, u) => {
            let mut le = doc! {"n": 0};
            if u.is_some() {
                le.insert("updatedExisting", false);
            }
            (Bson::Null, le)
        }
    };
    if last_error.get_i32("n").is_ok_and(|n| n == 1) {
        transactional_write(ctx.state, ctx.conn, ctx.retryable)?;
    }
    Ok(doc! {"lastErrorObject": last_error, "value": value, "ok": 1.0})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_seed_takes_equalities() {
        let mut out = Document::new();
        seed_from_query(&doc! {"a": 1, "b.c": "x", "d": {"$gt": 3}, "e": {"$eq": 5}, "$and": [{"f": true}]}, &mut out);
        assert_eq!(out, doc! {"a": 1, "b": {"c": "x"}, "e": 5, "f": true});
    }

    #[test]
    fn ensure_id_moves_id_first() {
        let mut d = doc! {"a": 1, "_id": 5};
        ensure_id(&mut d);
        assert_eq!(d.keys().next().map(String::as_str), Some("_id"));
        let mut d = doc! {"a": 1};
        ensure_id(&mut d);
        assert!(matches!(d.get("_id"), Some(Bson::ObjectId(_))));
    }
}
