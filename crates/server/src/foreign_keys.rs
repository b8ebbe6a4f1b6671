//! Foreign key constraints: a collection option (`foreignKeys`, an engine
//! extension, like a validator kept in the catalog) that the engine
//! enforces for every writer, the way SQL databases enforce a
//! `REFERENCES` constraint declared `DEFERRABLE INITIALLY DEFERRED`:
//!
//! ```text
//! foreignKeys: [{name: "book_author_id_fk", field: "author_id",
//!                references: "author", referencedField: "id"}]
//! ```
//!
//! - A referencing document whose `field` is neither null nor missing needs
//!   a document of `references` (same database) whose `referencedField`
//!   equals it; a referenced document may not go (be deleted, or change that
//!   field) while a document refers to it.
//! - Checks are deferred: writes record what they touched (`Pending`), and
//!   the check runs on the final state at the end of each autocommit
//!   command and when a transaction commits; a failure is
//!   `DocumentValidationFailure` (121) with `errInfo.foreignKey`, and nothing
//!   of the command (or transaction) is applied.
//! - Concurrency: a referencing write claims the referenced document (as a
//!   write would), so a transaction deleting it and one inserting a reference
//!   to it cannot both commit (snapshot isolation alone allows that write
//!   skew); the second gets WriteConflict.
//! - Lookups in both directions go through an index whose only key is the
//!   column (`_id` directly); without one the check reads the collection.
//! - The referenced collection carries the reverse list (`referencedBy` in
//!   its catalog entry, maintained here), so writes of collections that no
//!   constraint involves pay one empty-list test.
use crate::catalog::{CollectionMeta, IndexSpec};
use crate::error::{CmdResult, CommandError};
use crate::index::keys_for;
use crate::keyenc::{encode_one, prefix_end};
use crate::storage::Tables;
use bson::{doc, Bson, Document};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Bound;

/// The collection option holding the constraints.
pub const OPTION: &str = "foreignKeys";

/// One constraint of a referencing collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub name: String,
    pub field: String,
    /// The referenced collection, in the same database.
    pub references: String,
    pub referenced_field: String,
}

/// One entry of a referenced collection's reverse list: a collection that
/// refers to it, and the field it refers to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Referrer {
    pub collection: String,
    pub field: String,
}

fn invalid(message: impl Into<String>) -> CommandError {
    CommandError::new(72, "InvalidOptions", message)
}

fn field_name(spec: &Document, key: &str) -> CmdResult<String> {
    match spec.get(key) {
        Some(Bson::String(s)) if !s.is_empty() && !s.starts_with('$') && !s.contains('.') => Ok(s.clone()),
        Some(_) => Err(invalid(format!("foreignKeys.{key} must be a top-level field name"))),
        None => Err(invalid(format!("foreignKeys entries need '{key}'"))),
    }
}

/// The constraints in `options`, checked.
pub fn parse(options: &Document) -> CmdResult<Vec<ForeignKey>> {
    let list = match options.get(OPTION) {
        None => return Ok(Vec::new()),
        Some(Bson::Array(list)) => list,
        Some(_) => return Err(CommandError::type_mismatch("'foreignKeys' must be an array")),
    };
    let mut out: Vec<ForeignKey> = Vec::with_capacity(list.len());
    for entry in list {
        let Bson::Document(spec) = entry else { return Err(CommandError::type_mismatch("'foreignKeys' entries must be documents")) };
        if let Some(unknown) = spec.keys().find(|k| !matches!(k.as_str(), "name" | "field" | "references" | "referencedField")) {
            return Err(CommandError::new(40415, "IDLUnknownField", format!("BSON field 'foreignKeys.{unknown}' is an unknown field.")));
        }
        let fk = ForeignKey {
            name: match spec.get("name") {
                Some(Bson::String(n)) if !n.is_empty() => n.clone(),
                _ => return Err(invalid("foreignKeys.name must be a non-empty string")),
            },
            field: field_name(spec, "field")?,
            references: field_name(spec, "references")?,
            referenced_field: field_name(spec, "referencedField")?,
        };
        crate::catalog::validate_collection_name(&fk.references)?;
        if out.iter().any(|f| f.name == fk.name) {
            return Err(invalid(format!("two foreign keys named '{}'", fk.name)));
        }
        out.push(fk);
    }
    Ok(out)
}

fn to_bson(fks: &[ForeignKey]) -> Bson {
    Bson::Array(
        fks.iter()
            .map(|f| Bson::Document(doc! {"name": &f.name, "field": &f.field, "references": &f.references, "referencedField": &f.referenced_field}))
            .collect(),
    )
}

fn set_constraints(meta: &mut CollectionMeta, fks: &[ForeignKey]) {
    meta.foreign_keys = std::sync::Arc::new(fks.to_vec());
    if fks.is_empty() {
        meta.options.remove(OPTION);
    } else {
        meta.options.insert(OPTION, to_bson(fks));
    }
}

// ---- what writes record ------------------------------------------------

#[derive(Debug, Clone)]
enum Pending {
    /// A referencing document was written: its references are checked.
    Referrer { db: String, collection: String, id_key: Vec<u8> },
    /// A referenced document was deleted or its referenced fields changed:
    /// nothing may refer to the values it had.
    Referenced { db: String, collection: String, old: Document },
}

/// The checks a writer (an autocommit command, a transaction) owes before
/// it commits. Entries are checked against the final state, so one whose
/// write was undone (a savepoint rolled back) checks nothing wrong.
#[derive(Debug, Default)]
pub struct PendingChecks {
    entries: RefCell<Vec<Pending>>,
}

impl PendingChecks {
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets the entries recorded after the first `len` (a command that
    /// asked to bypass validation).
    pub fn truncate(&self, len: usize) {
        self.entries.borrow_mut().truncate(len);
    }

    fn take(&self) -> Vec<Pending> {
        std::mem::take(&mut *self.entries.borrow_mut())
    }

    /// After a write of `meta`'s document (`old` before, `new` after; `None`
    /// for an insert or a delete): records what must be checked. Costs one
    /// test when the collection takes part in no constraint.
    pub fn record(&self, meta: &CollectionMeta, old: Option<&Document>, new: Option<&Document>, id_key: &[u8]) {
        let changed = |field: &str| old.and_then(|o| o.get(field)) != new.and_then(|n| n.get(field));
        if let Some(new) = new {
            if !meta.foreign_keys.is_empty() {
                let refers = meta.foreign_keys.iter().any(|fk| !is_null(new.get(&fk.field)) && changed(&fk.field));
                if refers {
                    self.entries.borrow_mut().push(Pending::Referrer { db: meta.db.clone(), collection: meta.name.clone(), id_key: id_key.to_vec() });
                }
            }
        }
        if let Some(old) = old {
            if meta.referenced_by.iter().any(|r| !is_null(old.get(&r.field)) && changed(&r.field)) {
                self.entries.borrow_mut().push(Pending::Referenced { db: meta.db.clone(), collection: meta.name.clone(), old: old.clone() });
            }
        }
    }
}

fn is_null(v: Option<&Bson>) -> bool {
    matches!(v, None | Some(Bson::Null) | Some(Bson::Undefined))
}

fn violation(fk: &ForeignKey, child: &str, value: &Bson, message: String) -> CommandError {
    let mut e = CommandError::new(121, "DocumentValidationFailure", message);
    e.extra.insert(
        "errInfo",
        doc! {"foreignKey": &fk.name, "collection": child, "field": &fk.field, "references": &fk.references, "referencedField": &fk.referenced_field, "value": value.clone()},
    );
    e
}

/// Runs the checks `pending` owes on `tables` (the writer's final state),
/// claiming each referenced document found, so no concurrent writer can
/// take it away before this one commits. The checks are done with.
pub fn verify(tables: &Tables<'_>, pending: &PendingChecks) -> CmdResult<()> {
    verify_entries(tables, pending.take())
}

/// The same checks now, in the middle of a transaction (Django's
/// `check_constraints`, PostgreSQL's `SET CONSTRAINTS ALL IMMEDIATE`); they
/// run again at commit, on the state then.
pub fn check_now(tables: &Tables<'_>, pending: &PendingChecks) -> CmdResult<()> {
    let entries = pending.entries.borrow().clone();
    verify_entries(tables, entries)
}

/// Collection entries read once per check, not once per document.
struct Metas<'a, 'b> {
    tables: &'a Tables<'b>,
    known: HashMap<(String, String), Option<CollectionMeta>>,
}

impl Metas<'_, '_> {
    fn get(&mut self, db: &str, name: &str) -> CmdResult<Option<CollectionMeta>> {
        let key = (db.to_string(), name.to_string());
        if let Some(meta) = self.known.get(&key) {
            return Ok(meta.clone());
        }
        let meta = self.tables.collection(db, name)?;
        self.known.insert(key, meta.clone());
        Ok(meta)
    }
}

fn verify_entries(tables: &Tables<'_>, entries: Vec<Pending>) -> CmdResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut metas = Metas { tables, known: HashMap::new() };
    let mut seen: HashSet<(String, String, Vec<u8>)> = HashSet::new();
    let mut found = Found::new();
    for entry in entries {
        match entry {
            Pending::Referrer { db, collection, id_key } => {
                let Some(meta) = metas.get(&db, &collection)? else { continue };
                if !seen.insert((db, collection, id_key.clone())) {
                    continue;
                }
                let fields: HashSet<String> = meta.foreign_keys.iter().map(|f| f.field.clone()).collect();
                let Some(doc) = tables.fetch_document(&meta, &id_key, Some(&fields))? else { continue };
                for fk in meta.foreign_keys.iter() {
                    let parent = metas.get(&meta.db, &fk.references)?;
                    check_reference(tables, &meta, parent.as_ref(), fk, &doc, &mut found)?;
                }
            }
            Pending::Referenced { db, collection, old } => {
                let Some(meta) = metas.get(&db, &collection)? else { continue };
                for referrer in meta.referenced_by.iter() {
                    let Some(child) = metas.get(&db, &referrer.collection)? else { continue };
                    for fk in child.foreign_keys.iter().filter(|fk| fk.references == collection && fk.referenced_field == referrer.field) {
                        let Some(value) = old.get(&fk.referenced_field).filter(|v| !is_null(Some(v))) else { continue };
                        if find_one(tables, &meta, &fk.referenced_field, value)?.is_some() {
                            continue;
                        }
                        if find_one(tables, &child, &fk.field, value)?.is_some() {
                            return Err(violation(
                                fk,
                                &child.name,
                                value,
                                format!(
                                    "FOREIGN KEY constraint failed: {} ({}.{} still refers to {}.{} = {value})",
                                    fk.name, child.name, fk.field, collection, fk.referenced_field
                                ),
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// The referenced values found (and claimed) so far in one check: the
/// referenced collection, its field and the encoded value. Many rows refer
/// to few: each is looked up once.
type Found = HashSet<(String, String, Vec<u8>)>;

/// Checks one referencing document against one constraint, claiming the
/// referenced document.
fn check_reference(tables: &Tables<'_>, meta: &CollectionMeta, parent: Option<&CollectionMeta>, fk: &ForeignKey, doc: &Document, found: &mut Found) -> CmdResult<()> {
    let Some(value) = doc.get(&fk.field).filter(|v| !is_null(Some(v))) else { return Ok(()) };
    let key = (fk.references.clone(), fk.referenced_field.clone(), encode_one(value));
    if found.contains(&key) {
        return Ok(());
    }
    let hit = match parent {
        Some(parent) => find_one(tables, parent, &fk.referenced_field, value)?,
        None => None,
    };
    match (parent, hit) {
        (Some(parent), Some(id_key)) => {
            tables.claim_referenced(parent, &id_key)?;
            found.insert(key);
            Ok(())
        }
        _ => Err(violation(
            fk,
            &meta.name,
            value,
            format!(
                "FOREIGN KEY constraint failed: {} ({}.{} = {value} has no row in {}.{}; document _id={})",
                fk.name,
                meta.name,
                fk.field,
                fk.references,
                fk.referenced_field,
                doc.get("_id").cloned().unwrap_or(Bson::Null)
            ),
        )),
    }
}

/// An index that finds every document whose `field` equals a non-null
/// value: its only key is `field`, and it leaves out no such document (no
/// partial filter reading another field, not a text, wildcard or hashed
/// index).
fn lookup_index<'m>(meta: &'m CollectionMeta, field: &str) -> Option<&'m IndexSpec> {
    meta.indexes.iter().find(|ix| {
        ix.key.len() == 1
            && ix.key.keys().next().map(String::as_str) == Some(field)
            && ix.text.is_none()
            && ix.wildcard.is_none()
            && !ix.is_hashed()
            && ix.partial.as_ref().is_none_or(|p| p.keys().all(|k| k == field))
    })
}

/// The `_id` key of a document of `meta` whose `field` equals `value`.
pub fn find_one(tables: &Tables<'_>, meta: &CollectionMeta, field: &str, value: &Bson) -> CmdResult<Option<Vec<u8>>> {
    let wanted = encode_one(value);
    if field == "_id" {
        return Ok(tables.stored_document(meta, &wanted)?.map(|_| wanted));
    }
    let fields: HashSet<String> = HashSet::from([field.to_string()]);
    let holds = |doc: &Document| doc.get(field).is_some_and(|v| encode_one(v) == wanted);
    if let Some(ix) = lookup_index(meta, field) {
        let probe = doc! {field: value.clone()};
        // A partial filter the probe fails leaves the value out of the index.
        if let Some(key) = keys_for(ix, &probe)?.into_iter().next() {
            let end = prefix_end(&key.encoded);
            let end = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let mut entries = tables.index_entries(meta, ix, Bound::Included(&key.encoded), end, false)?;
            if ix.unique {
                // A unique entry's key is the encoded value itself, and
                // encodings are equal exactly when values are.
                return Ok(match entries.next().transpose()? {
                    Some(entry) if entry.key == key.encoded => Some(entry.id),
                    _ => None,
                });
            }
            while let Some(id) = entries.next_id() {
                let id = id?;
                if tables.fetch_document(meta, &id, Some(&fields))?.is_some_and(|d| holds(&d)) {
                    return Ok(Some(id));
                }
            }
            return Ok(None);
        }
    }
    let mut rows = tables.documents_between(meta, Bound::Unbounded, Bound::Unbounded, false)?;
    while let Some(row) = rows.next_document(Some(&fields)) {
        let (id, doc) = row?;
        if holds(&doc) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// Checks every document of `meta` against `fks` (a constraint being
/// added, which SQL checks against the rows present).
pub fn verify_existing(tables: &Tables<'_>, meta: &CollectionMeta, fks: &[ForeignKey]) -> CmdResult<()> {
    if fks.is_empty() {
        return Ok(());
    }
    let fields: HashSet<String> = fks.iter().map(|f| f.field.clone()).collect();
    let parents = fks.iter().map(|f| tables.collection(&meta.db, &f.references)).collect::<CmdResult<Vec<_>>>()?;
    let mut found = Found::new();
    let mut rows = tables.documents_between(meta, Bound::Unbounded, Bound::Unbounded, false)?;
    while let Some(row) = rows.next_document(Some(&fields)) {
        let (_, doc) = row?;
        for (fk, parent) in fks.iter().zip(&parents) {
            check_reference(tables, meta, parent.as_ref(), fk, &doc, &mut found)?;
        }
    }
    Ok(())
}

// ---- keeping the reverse lists in step ---------------------------------

/// Rewrites the reverse list of each collection of `db` named in
/// `targets` from the constraints stored now.
fn refresh_referrers(tables: &mut Tables<'_>, db: &str, targets: &BTreeSet<String>) -> CmdResult<()> {
    if targets.is_empty() {
        return Ok(());
    }
    let all = tables.collections(Some(db))?;
    for target in targets {
        let Some(mut meta) = tables.collection(db, target)? else { continue };
        let mut referrers: Vec<Referrer> = Vec::new();
        for child in &all {
            for fk in parse(&child.options)?.into_iter().filter(|fk| &fk.references == target) {
                let r = Referrer { collection: child.name.clone(), field: fk.referenced_field };
                if !referrers.contains(&r) {
                    referrers.push(r);
                }
            }
        }
        referrers.sort();
        if *meta.referenced_by != referrers {
            meta.referenced_by = std::sync::Arc::new(referrers);
            tables.put_collection(&meta)?;
        }
    }
    Ok(())
}

/// After a collection was created (explicitly or by a first insert): the
/// constraints that named it before it existed now refer to it.
pub fn created(tables: &mut Tables<'_>, meta: &CollectionMeta) -> CmdResult<()> {
    refresh_referrers(tables, &meta.db, &BTreeSet::from([meta.name.clone()]))
}

/// After `collMod` or `create` stored `meta` with constraints `new` (it had
/// `old`): checks the documents present against the added ones and updates
/// the reverse lists of the collections involved.
pub fn constraints_changed(tables: &mut Tables<'_>, meta: &CollectionMeta, old: &[ForeignKey], new: &[ForeignKey]) -> CmdResult<()> {
    let added: Vec<ForeignKey> = new.iter().filter(|f| !old.contains(f)).cloned().collect();
    verify_existing(tables, meta, &added)?;
    let targets: BTreeSet<String> = old.iter().chain(new).map(|f| f.references.clone()).collect();
    refresh_referrers(tables, &meta.db, &targets)
}

/// Before `meta` is dropped: the constraints referring to it go too (as
/// `DROP TABLE ... CASCADE` drops them), and the collections it referred to
/// forget it.
pub fn dropping(tables: &mut Tables<'_>, meta: &CollectionMeta) -> CmdResult<BTreeSet<String>> {
    for referrer in meta.referenced_by.iter().filter(|r| r.collection != meta.name) {
        let Some(mut child) = tables.collection(&meta.db, &referrer.collection)? else { continue };
        let kept: Vec<ForeignKey> = parse(&child.options)?.into_iter().filter(|f| f.references != meta.name).collect();
        set_constraints(&mut child, &kept);
        tables.put_collection(&child)?;
    }
    Ok(parse(&meta.options)?.into_iter().map(|f| f.references).filter(|t| *t != meta.name).collect())
}

/// After `dropping` and the drop itself.
pub fn dropped(tables: &mut Tables<'_>, db: &str, targets: &BTreeSet<String>) -> CmdResult<()> {
    refresh_referrers(tables, db, targets)
}

/// After `from` was renamed to `to` (same database): constraints follow
/// the collection, as in SQL. A move to another database drops them.
pub fn renamed(tables: &mut Tables<'_>, from: &CollectionMeta, to: &CollectionMeta) -> CmdResult<()> {
    if from.referenced_by.is_empty() && !from.options.contains_key(OPTION) {
        // Constraints declared before their collection existed now have it.
        return refresh_referrers(tables, &to.db, &BTreeSet::from([to.name.clone()]));
    }
    let same_db = from.db == to.db;
    let mut targets: BTreeSet<String> = BTreeSet::new();
    // Collections referring to it now name the new name.
    for referrer in from.referenced_by.iter().filter(|r| r.collection != from.name) {
        let Some(mut child) = tables.collection(&from.db, &referrer.collection)? else { continue };
        let fks: Vec<ForeignKey> = parse(&child.options)?
            .into_iter()
            .filter_map(|mut f| match (f.references == from.name, same_db) {
                (true, true) => {
                    f.references = to.name.clone();
                    Some(f)
                }
                (true, false) => None,
                _ => Some(f),
            })
            .collect();
        set_constraints(&mut child, &fks);
        tables.put_collection(&child)?;
    }
    // Its own constraints (a reference to itself follows the rename).
    let Some(mut moved) = tables.collection(&to.db, &to.name)? else { return Ok(()) };
    let own: Vec<ForeignKey> = parse(&moved.options)?
        .into_iter()
        .filter_map(|mut f| {
            targets.insert(f.references.clone());
            if f.references == from.name {
                f.references = to.name.clone();
            }
            same_db.then_some(f)
        })
        .collect();
    set_constraints(&mut moved, &own);
    tables.put_collection(&moved)?;
    targets.insert(to.name.clone());
    if same_db {
        refresh_referrers(tables, &to.db, &targets)
    } else {
        let mut dropped_target = BTreeSet::new();
        dropped_target.insert(to.name.clone());
        refresh_referrers(tables, &to.db, &dropped_target)?;
        refresh_referrers(tables, &from.db, &targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let ok = doc! {OPTION: [{"name": "fk", "field": "a_id", "references": "a", "referencedField": "id"}]};
        assert_eq!(parse(&ok).unwrap()[0].references, "a");
        let code = |o: Document| parse(&o).unwrap_err().code;
        assert_eq!(code(doc! {OPTION: 1}), 14);
        assert_eq!(code(doc! {OPTION: [{"name": "fk", "field": "a.b", "references": "a", "referencedField": "id"}]}), 72);
        assert_eq!(code(doc! {OPTION: [{"name": "fk", "field": "x", "references": "a"}]}), 72);
        assert_eq!(code(doc! {OPTION: [{"name": "fk", "field": "x", "references": "a", "referencedField": "id", "on": 1}]}), 40415);
        let twice = doc! {OPTION: [{"name": "fk", "field": "x", "references": "a", "referencedField": "id"},
                                   {"name": "fk", "field": "y", "references": "a", "referencedField": "id"}]};
        assert_eq!(code(twice), 72);
    }

    #[test]
    fn lookups_use_the_indexes_django_makes() {
        let spec = |key: Document, extra: Document| {
            let mut d = doc! {"key": key};
            d.extend(extra);
            d
        };
        let ix = |id: u32, d: Document| IndexSpec::from_spec(id, &d).unwrap();
        let meta = CollectionMeta {
            db: "d".into(),
            name: "c".into(),
            id: 1,
            uuid: bson::Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![0; 16] },
            options: doc! {},
            indexes: std::sync::Arc::new(vec![
                // The primary key: unique, partial on its own type.
                ix(1, spec(doc! {"id": 1}, doc! {"unique": true, "partialFilterExpression": {"id": {"$type": ["int", "long"]}}})),
                // A ForeignKey's db_index.
                ix(2, spec(doc! {"author_id": 1}, doc! {})),
                // Not usable: compound, hashed, partial on another field.
                ix(3, spec(doc! {"a": 1, "b": 1}, doc! {})),
                ix(4, spec(doc! {"h": "hashed"}, doc! {})),
                ix(5, spec(doc! {"p": 1}, doc! {"partialFilterExpression": {"other": 1}})),
            ]),
            next_index_id: 6,
            referenced_by: Default::default(),
            foreign_keys: Default::default(),
        };
        assert_eq!(lookup_index(&meta, "id").map(|i| i.id), Some(1));
        assert_eq!(lookup_index(&meta, "author_id").map(|i| i.id), Some(2));
        for field in ["a", "h", "p", "missing"] {
            assert!(lookup_index(&meta, field).is_none(), "{field}");
        }
    }
}
