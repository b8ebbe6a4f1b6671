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
use crate::catalog::CollectionMeta;
use bson::spec::ElementType;
use bson::{doc, Bson, Document, RawBsonRef, RawDocument, RawDocumentBuf};

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

/// Where the element at `path` lies in a stored document: found by
/// following `path`'s fields through embedded documents, as a `Document`
/// lookup does, without decoding anything else.
struct Spot<'a> {
    /// Offsets of the length prefixes of the documents holding it, the
    /// outermost (the whole document, at 0) first.
    lengths: Vec<usize>,
    /// Offset of its type byte.
    type_at: usize,
    /// Offsets of its value.
    value: std::ops::Range<usize>,
    found: RawBsonRef<'a>,
}

fn corrupt(e: bson::error::Error) -> CommandError {
    CommandError::internal(format!("corrupt stored counter document: {e}"))
}

fn locate<'a>(stored: &'a RawDocument, path: &str) -> CmdResult<Option<Spot<'a>>> {
    // Offsets from the slices' addresses: every `RawDocument` and key the
    // walk meets borrows from `stored`'s bytes.
    let base = stored.as_bytes().as_ptr() as usize;
    let mut doc = stored;
    let mut lengths = vec![0];
    let mut fields = path.split('.').peekable();
    while let Some(field) = fields.next() {
        let mut element = None;
        for e in doc.iter_elements() {
            let e = e.map_err(corrupt)?;
            if e.key().as_str() == field {
                element = Some(e);
                break;
            }
        }
        let Some(element) = element else { return Ok(None) };
        let value = element.value().map_err(corrupt)?;
        if fields.peek().is_none() {
            let key_at = element.key().as_str().as_ptr() as usize - base;
            let value_at = key_at + element.key().as_str().len() + 1;
            return Ok(Some(Spot { lengths, type_at: key_at - 1, value: value_at..value_at + element.size(), found: value }));
        }
        match value {
            RawBsonRef::Document(inner) => {
                lengths.push(inner.as_bytes().as_ptr() as usize - base);
                doc = inner;
            }
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// `stored` with the element at `spot` given type `element_type` and the
/// value `value`, the lengths of the documents holding it adjusted.
fn splice(stored: &[u8], spot: &Spot<'_>, element_type: ElementType, value: &[u8]) -> CmdResult<Vec<u8>> {
    let mut out = Vec::with_capacity(stored.len() + value.len());
    out.extend_from_slice(&stored[..spot.type_at]);
    out.push(element_type as u8);
    out.extend_from_slice(&stored[spot.type_at + 1..spot.value.start]);
    out.extend_from_slice(value);
    out.extend_from_slice(&stored[spot.value.end..]);
    let grown = i64::try_from(out.len()).unwrap_or(i64::MAX) - i64::try_from(stored.len()).unwrap_or(i64::MAX);
    for &at in &spot.lengths {
        let length = out.get(at..at + 4).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(i32::from_le_bytes).ok_or_else(|| CommandError::internal("corrupt stored counter document"))?;
        let length = i32::try_from(i64::from(length) + grown).map_err(|_| CommandError::bad_value("the counter document is too large"))?;
        out[at..at + 4].copy_from_slice(&length.to_le_bytes());
    }
    Ok(out)
}

/// SHA-256 of the stored document's BSON with null for the number at
/// `path`: what stays the same while only the counter moves. Computed on
/// the stored bytes: the same bytes as re-encoding the decoded document
/// with null there, as earlier versions did (`tests/counters.rs`).
fn digest_of(stored: &RawDocument, spot: Option<&Spot<'_>>) -> CmdResult<Vec<u8>> {
    use sha2::{Digest as _, Sha256};
    Ok(match spot {
        None => Sha256::digest(stored.as_bytes()).to_vec(),
        Some(spot) => Sha256::digest(splice(stored.as_bytes(), spot, ElementType::Null, &[])?).to_vec(),
    })
}

/// The bytes of `n` as [`number`] stores it, with their type.
fn number_bytes(n: i64) -> (ElementType, Vec<u8>) {
    match i32::try_from(n) {
        Ok(small) => (ElementType::Int32, small.to_le_bytes().to_vec()),
        Err(_) => (ElementType::Int64, n.to_le_bytes().to_vec()),
    }
}

/// A document holding only `_id` and `value` at `path`: an update of the
/// counter alone is described (its change event) as the same update of
/// this skeleton.
fn skeleton(id: &Bson, path: &str, value: Bson) -> Document {
    let mut value = value;
    for field in path.rsplit('.') {
        value = Bson::Document(doc! {field: value});
    }
    let mut out = doc! {"_id": id.clone()};
    if let Bson::Document(fields) = value {
        out.extend(fields);
    }
    out
}

fn no_counter(counter: &Counter) -> CommandError {
    CommandError::new(47, "NoMatchingDocument", format!("no counter document in {} matches {}", counter.collection, counter.filter))
}

/// Numbers the documents that lack `field` (see the module's documentation)
/// and returns the reply's `djongoCounter`. The counter's update is a change
/// like any other (`changes`: change streams see it).
pub fn take(tables: &mut Tables<'_>, db: &str, counter: &Counter, documents: &mut [Document], changes: &mut Vec<PendingChange>) -> CmdResult<Document> {
    let meta = tables.collection(db, &counter.collection)?.ok_or_else(|| no_counter(counter))?;
    let stored = find_stored(tables, &meta, counter)?.ok_or_else(|| no_counter(counter))?;
    let spot = locate(&stored, &counter.path)?;
    let digest = match &counter.digest {
        Digest::Unasked => None,
        Digest::Asked => Some(digest_of(&stored, spot.as_ref())?),
        Digest::Expected(expected) => {
            let found = digest_of(&stored, spot.as_ref())?;
            if &found != expected {
                return Err(CommandError::new(47, "NoMatchingDocument", format!("the counter document in {} is no longer the one the digest describes", counter.collection)));
            }
            Some(found)
        }
    };
    let current = match spot.as_ref().map(|s| s.found) {
        None | Some(RawBsonRef::Null) => 0,
        Some(RawBsonRef::Int32(n)) => i64::from(n),
        Some(RawBsonRef::Int64(n)) => n,
        Some(_) => return Err(CommandError::type_mismatch(format!("the counter at {} is not an integer", counter.path))),
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
        raise(tables, db, &meta, counter, &stored, spot.as_ref(), current, last, changes)?;
    }
    let mut reply = doc! {"first": if count > 0 { Bson::Int64(first) } else { Bson::Null }, "count": count};
    if let Some(digest) = digest {
        reply.insert("digest", bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: digest });
    }
    Ok(reply)
}

/// The stored bytes of the counter document `counter.filter` matches: read
/// where the store holds them when an index finds it, else as the general
/// plan returns it.
fn find_stored(tables: &Tables<'_>, meta: &CollectionMeta, counter: &Counter) -> CmdResult<Option<RawDocumentBuf>> {
    let query = plan::Query { filter: counter.filter.clone(), sort: None, skip: 0, limit: Some(1), hint: None, fields: None, any_order: true };
    let mut found = None;
    let indexed = plan::visit_indexed(tables, meta, &query, |raw| {
        if found.is_none() {
            found = Some(raw.to_owned());
        }
        Ok(())
    })?;
    if indexed.is_some() {
        return Ok(found);
    }
    let Some(doc) = plan::find(tables, meta, &query)?.into_iter().next() else { return Ok(None) };
    Ok(Some(RawDocumentBuf::try_from(&doc).map_err(|e| CommandError::bad_value(format!("the counter document cannot be encoded: {e}")))?))
}

/// Stores the counter document with `last` at `counter.path` (`current`
/// before), and notes the change. When no index, partial filter or
/// constraint reads that field and the collection keeps no pre- and
/// post-images, the number is written into the stored bytes and the change
/// event is the one the same update of a document holding only `_id` and
/// the counter gives (the diff of two documents that differ in one field
/// names that field alone); otherwise the document is decoded and replaced
/// as any update replaces one.
#[allow(clippy::too_many_arguments)]
fn raise(
    tables: &mut Tables<'_>,
    db: &str,
    meta: &CollectionMeta,
    counter: &Counter,
    stored: &RawDocument,
    spot: Option<&Spot<'_>>,
    current: i64,
    last: i64,
    changes: &mut Vec<PendingChange>,
) -> CmdResult<()> {
    let images = images_enabled(&meta.options);
    // (A counter in `_id` takes the long way, which refuses to change it.)
    let in_id = counter.path.split('.').next() == Some("_id");
    if let Some(spot) = spot.filter(|_| !images && !in_id && Tables::reads_no_index_or_constraint(meta, &counter.path)) {
        let id = stored.get("_id").map_err(corrupt)?.map(Bson::try_from).transpose().map_err(corrupt)?.unwrap_or(Bson::Null);
        let (element_type, value) = number_bytes(last);
        let bytes = splice(stored.as_bytes(), spot, element_type, &value)?;
        tables.replace_unindexed(meta, &id, &bytes)?;
        let before = match spot.found {
            RawBsonRef::Null => Bson::Null,
            _ => number(current),
        };
        let (old, new) = (skeleton(&id, &counter.path, before), skeleton(&id, &counter.path, number(last)));
        changes.push(PendingChange::update(db, &counter.collection, &old, &new, false).in_collection(&meta.uuid));
        return Ok(());
    }
    let old = Document::try_from(stored).map_err(corrupt)?;
    let mut new = old.clone();
    super::write::set_path(&mut new, &counter.path, number(last));
    tables.replace(meta, &old, &new)?;
    changes.push(PendingChange::update(db, &counter.collection, &old, &new, images).in_collection(&meta.uuid));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest as earlier versions computed it: the decoded document,
    /// null put at `path` (when a value is there), encoded again.
    fn decoded_digest(doc: &Document, path: &str) -> Vec<u8> {
        use sha2::{Digest as _, Sha256};
        fn get_mut<'a>(doc: &'a mut Document, path: &str) -> Option<&'a mut Bson> {
            match path.split_once('.') {
                None => doc.get_mut(path),
                Some((head, rest)) => match doc.get_mut(head) {
                    Some(Bson::Document(inner)) => get_mut(inner, rest),
                    _ => None,
                },
            }
        }
        let mut doc = doc.clone();
        if let Some(value) = get_mut(&mut doc, path) {
            *value = Bson::Null;
        }
        Sha256::digest(doc.to_vec().unwrap()).to_vec()
    }

    fn wide(seq: Bson) -> Document {
        let columns: Vec<Document> = (0..120).map(|i| doc! {"name": format!("field{i}"), "type": "varchar", "null": false, "default": null}).collect();
        doc! {"_id": bson::oid::ObjectId::new(), "name": "wide", "auto": {"field_names": ["id"], "seq": seq, "after": "x"}, "columns": columns, "last": 1}
    }

    fn examples() -> Vec<Document> {
        vec![
            wide(Bson::Int32(7)),
            wide(Bson::Int64(1 << 40)),
            wide(Bson::Null),
            wide(Bson::String("not a number".into())),
            doc! {"_id": 1, "name": "t", "auto": {"field_names": ["id"]}},
            doc! {"_id": 2, "name": "t", "auto": 5},
            doc! {"_id": 3, "name": "t"},
            doc! {"_id": 4, "auto": {"seq": 1}, "name": "t"},
        ]
    }

    #[test]
    fn the_digest_of_the_stored_bytes_is_the_decoded_documents() {
        for doc in examples() {
            let stored = RawDocumentBuf::try_from(&doc).unwrap();
            let spot = locate(&stored, "auto.seq").unwrap();
            assert_eq!(digest_of(&stored, spot.as_ref()).unwrap(), decoded_digest(&doc, "auto.seq"), "{doc}");
        }
        // A one-field path, and a path that is not there.
        let doc = doc! {"_id": 1, "seq": 3, "x": {"y": 1}};
        let stored = RawDocumentBuf::try_from(&doc).unwrap();
        for path in ["seq", "x.y", "x.z", "x.y.z", "none"] {
            let spot = locate(&stored, path).unwrap();
            assert_eq!(digest_of(&stored, spot.as_ref()).unwrap(), decoded_digest(&doc, path), "{path}");
        }
    }

    #[test]
    fn the_raised_counter_is_stored_as_an_update_of_the_document_would_store_it() {
        for doc in examples().into_iter().filter(|d| d.get_document("auto").is_ok_and(|a| a.contains_key("seq"))) {
            let stored = RawDocumentBuf::try_from(&doc).unwrap();
            let spot = locate(&stored, "auto.seq").unwrap().expect("the counter is there");
            // Narrowed, kept and widened: 32-bit while the number fits.
            for n in [1, i64::from(i32::MAX), i64::from(i32::MAX) + 1, 1 << 50] {
                let (element_type, value) = number_bytes(n);
                let patched = splice(stored.as_bytes(), &spot, element_type, &value).unwrap();
                let mut expected = doc.clone();
                crate::commands::write::set_path(&mut expected, "auto.seq", number(n));
                assert_eq!(patched, expected.to_vec().unwrap(), "{doc} to {n}");
            }
        }
    }

    #[test]
    fn the_change_event_of_a_patched_counter_is_the_full_documents() {
        let old = wide(Bson::Int32(7));
        let mut new = old.clone();
        crate::commands::write::set_path(&mut new, "auto.seq", number(1 << 40));
        let id = old.get("_id").unwrap();
        let full = crate::changes::update_description(&old, &new);
        let skeletons = crate::changes::update_description(&skeleton(id, "auto.seq", Bson::Int32(7)), &skeleton(id, "auto.seq", number(1 << 40)));
        assert_eq!(full, skeletons);
        assert_eq!(full.0.get_document("updatedFields").unwrap(), &doc! {"auto.seq": 1i64 << 40});
    }
}
