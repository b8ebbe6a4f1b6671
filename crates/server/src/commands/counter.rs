//! `insert`'s `djongoCounter` extension: ids from a counter document, taken
//! in the insert's own write.
//!
//! ```text
//! {insert: "app_entry", documents: [...],
//!  djongoCounter: {collection: "__schema__", filter: {name: "app_entry", ...},
//!                  path: "auto.seq", field: "id"}}
//! ```
//!
//! The counter is the one document of `collection` that `filter` matches. In
//! the same storage write as the documents, its number at `path` is raised to
//! the largest integer `field` the documents give, then each document without
//! `field` (or with null there) gets the next numbers, in order, and the
//! counter keeps the last. The reply says where they began:
//! `djongoCounter: {first: <id or null>, count: <n>}`.
//!
//! `digest` (optional) is the counter document as the caller last saw it:
//! a SHA-256 of the document's BSON with the number at `path` left out.
//! Given as BinData, the document must still have it (else
//! `NoMatchingDocument`, as for a filter that matches nothing); given as
//! null, it is only asked for. Either way the reply carries the document's
//! digest (`djongoCounter.digest`). The server computes it from what is
//! stored, whoever wrote it (Djongo, an older djongo-rs, a shell), so no
//! writer of the collection has to keep it up to date: a caller matches
//! its large assumptions once with `filter`, keeps the digest the reply
//! gives, and later sends only `filter: {name: ...}` and that digest.
//!
//! This is how the Django backend numbers an AutoField (Djongo's
//! `__schema__` counters) with one command and one durable commit instead of
//! a counter update and an insert. The filter also carries what the backend
//! assumed about the table (its auto field, its columns): when no document
//! matches, nothing is written and the command fails with
//! `NoMatchingDocument` (47), and the backend reads the table's record again.
//! A retried insert is answered from its record, ids included
//! (`retryable`). Only outside a transaction: ids are taken outside
//! transactions, as SQL sequences are, and a transaction would make every
//! concurrent insert into the table conflict on the counter.
use super::{opt_doc, Ctx};
use crate::changes::{images_enabled, PendingChange};
use crate::error::{CmdResult, CommandError};
use crate::plan;
use crate::storage::Tables;
use bson::{doc, Bson, Document};

pub struct Counter {
    collection: String,
    filter: Document,
    path: String,
    field: String,
    digest: Digest,
}

/// What the caller says about the counter document's digest.
enum Digest {
    /// Nothing: the reply carries none.
    Unasked,
    /// Null: the reply carries it.
    Asked,
    /// The document must still have this one.
    Expected(Vec<u8>),
}

fn string(spec: &Document, key: &str) -> CmdResult<String> {
    match spec.get(key) {
        Some(Bson::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(CommandError::type_mismatch(format!("djongoCounter.{key} must be a non-empty string"))),
    }
}

/// The insert's `djongoCounter`, if it has one.
pub fn parse(ctx: &Ctx<'_>, body: &Document) -> CmdResult<Option<Counter>> {
    let Some(spec) = opt_doc(body, "djongoCounter")? else { return Ok(None) };
    if ctx.scope.in_transaction() {
        return Err(CommandError::new(263, "OperationNotSupportedInTransaction", "djongoCounter cannot be used in a transaction: ids are taken outside transactions"));
    }
    let filter = opt_doc(&spec, "filter")?.ok_or_else(|| CommandError::type_mismatch("djongoCounter.filter must be a document"))?;
    let digest = match spec.get("digest") {
        None => Digest::Unasked,
        Some(Bson::Null) => Digest::Asked,
        Some(Bson::Binary(b)) => Digest::Expected(b.bytes.clone()),
        Some(_) => return Err(CommandError::type_mismatch("djongoCounter.digest must be binary data or null")),
    };
    Ok(Some(Counter { collection: string(&spec, "collection")?, filter, path: string(&spec, "path")?, field: string(&spec, "field")?, digest }))
}

/// An integer, as an id or a counter holds it.
fn integer(value: Option<&Bson>) -> Option<i64> {
    match value {
        Some(Bson::Int32(n)) => Some(i64::from(*n)),
        Some(Bson::Int64(n)) => Some(*n),
        _ => None,
    }
}

/// An integer as MongoDB's `$inc` leaves it: 32 bits while it fits.
fn number(n: i64) -> Bson {
    i32::try_from(n).map_or(Bson::Int64(n), Bson::Int32)
}

fn get_path<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    match path.split_once('.') {
        None => doc.get(path),
        Some((head, rest)) => match doc.get(head) {
            Some(Bson::Document(inner)) => get_path(inner, rest),
            _ => None,
        },
    }
}

/// SHA-256 of `doc`'s BSON with null for the number at `path`: what stays
/// the same while only the counter moves. (The number is put back after.)
fn digest_of(doc: &mut Document, path: &str) -> CmdResult<Vec<u8>> {
    use sha2::{Digest as _, Sha256};
    let number = get_path_mut(doc, path).map(|value| std::mem::replace(value, Bson::Null));
    let bytes = doc.to_vec();
    if let (Some(number), Some(value)) = (number, get_path_mut(doc, path)) {
        *value = number;
    }
    let bytes = bytes.map_err(|e| CommandError::bad_value(format!("the counter document cannot be encoded: {e}")))?;
    Ok(Sha256::digest(&bytes).to_vec())
}

fn get_path_mut<'a>(doc: &'a mut Document, path: &str) -> Option<&'a mut Bson> {
    match path.split_once('.') {
        None => doc.get_mut(path),
        Some((head, rest)) => match doc.get_mut(head) {
            Some(Bson::Document(inner)) => get_path_mut(inner, rest),
            _ => None,
        },
    }
}

fn no_counter(counter: &Counter) -> CommandError {
    CommandError::new(47, "NoMatchingDocument", format!("no counter document in {} matches {}", counter.collection, counter.filter))
}

/// Numbers the documents that lack `field` (see the module's documentation)
/// and returns the reply's `djongoCounter`. The counter's update is a change
/// like any other (`changes`: change streams see it).
pub fn take(tables: &mut Tables<'_>, db: &str, counter: &Counter, documents: &mut [Document], changes: &mut Vec<PendingChange>) -> CmdResult<Document> {
    let meta = tables.collection(db, &counter.collection)?.ok_or_else(|| no_counter(counter))?;
    let query = plan::Query { filter: counter.filter.clone(), sort: None, skip: 0, limit: Some(1), hint: None, fields: None, any_order: true };
    let mut old = plan::find(tables, &meta, &query)?.into_iter().next().ok_or_else(|| no_counter(counter))?;
    let digest = match &counter.digest {
        Digest::Unasked => None,
        Digest::Asked => Some(digest_of(&mut old, &counter.path)?),
        Digest::Expected(expected) => {
            let found = digest_of(&mut old, &counter.path)?;
            if &found != expected {
                return Err(CommandError::new(47, "NoMatchingDocument", format!("the counter document in {} is no longer the one the digest describes", counter.collection)));
            }
            Some(found)
        }
    };
    let current = match get_path(&old, &counter.path) {
        None | Some(Bson::Null) => 0,
        value => integer(value).ok_or_else(|| CommandError::type_mismatch(format!("the counter at {} is not an integer", counter.path)))?,
    };
    // Explicit ids first: the counter never hands out an id a document of
    // this very statement takes.
    let explicit = documents.iter().filter_map(|d| integer(d.get(&counter.field))).max();
    let mut last = explicit.map_or(current, |e| e.max(current));
    let first = last.checked_add(1).ok_or_else(|| CommandError::bad_value("the counter is at its largest value"))?;
    let mut count = 0i64;
    for document in documents.iter_mut() {
        if matches!(document.get(&counter.field), None | Some(Bson::Null)) {
            last = last.checked_add(1).ok_or_else(|| CommandError::bad_value("the counter is at its largest value"))?;
            document.insert(counter.field.clone(), number(last));
            count += 1;
        }
    }
    if last != current {
        let mut new = old.clone();
        super::write::set_path(&mut new, &counter.path, number(last));
        tables.replace(&meta, &old, &new)?;
        changes.push(PendingChange::update(db, &counter.collection, &old, &new, images_enabled(&meta.options)).in_collection(&meta.uuid));
    }
    let mut reply = doc! {"first": if count > 0 { Bson::Int64(first) } else { Bson::Null }, "count": count};
    if let Some(digest) = digest {
        reply.insert("digest", bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: digest });
    }
    Ok(reply)
}
