//! Typed access to the four redb tables within one transaction: catalog
//! reads and writes, document storage and index maintenance.
use super::undo::{UndoEntry, UndoLog};
use super::{WriteTxn, CATALOG, DOCS, INDEX, META};
use crate::catalog::{CollectionMeta, IndexSpec};
use crate::error::{CmdResult, CommandError};
use crate::index::{duplicate_key_error, is_multikey_document, keys_for};
use crate::keyenc::{self, prefix_end};
use bson::{spec::BinarySubtype, Binary, Bson, Document};
use parking_lot::Mutex;
use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, Table};
use std::ops::Bound;

type Bytes = &'static [u8];

/// Largest document MongoDB accepts.
pub const MAX_DOCUMENT_SIZE: usize = 16 * 1024 * 1024;
/// Deepest nesting of a stored document (MongoDB's
/// `BSONDepth::getMaxDepthForUserStorage()`).
pub const MAX_STORED_DEPTH: usize = 100;

#[derive(Clone, Copy)]
enum WriteKind {
    Insert,
    Update,
}

/// The tables of one transaction: read-only snapshot or writable. Both
/// variants are large and short-lived (one per command, on the stack), so the
/// size difference does not matter.
///
/// Every write goes through the `put_*`/`del_*` functions below, which log
/// what they overwrite in the transaction's undo log (savepoints depend on
/// it): code outside this file never touches the tables of `Write`.
#[allow(clippy::large_enum_variant)]
pub enum Tables<'t> {
    Read {
        catalog: ReadOnlyTable<&'static str, Bytes>,
        docs: ReadOnlyTable<Bytes, Bytes>,
        index: ReadOnlyTable<Bytes, Bytes>,
    },
    Write {
        catalog: Table<'t, &'static str, Bytes>,
        docs: Table<'t, Bytes, Bytes>,
        index: Table<'t, Bytes, Bytes>,
        meta: Table<'t, &'static str, u64>,
        undo: &'t Mutex<UndoLog>,
    },
}

// ---- the logged writes: the only calls that change redb tables ---------------

#[derive(Clone, Copy)]
enum BytesTable {
    Docs,
    Index,
}

impl BytesTable {
    fn entry(self, key: &[u8], prev: Option<Vec<u8>>) -> UndoEntry {
        match self {
            BytesTable::Docs => UndoEntry::Docs { key: key.to_vec(), prev },
            BytesTable::Index => UndoEntry::Index { key: key.to_vec(), prev },
        }
    }
}

fn put_bytes(t: &mut Table<'_, Bytes, Bytes>, undo: &Mutex<UndoLog>, which: BytesTable, key: &[u8], value: &[u8]) -> CmdResult<()> {
    let mut log = undo.lock();
    let prev = t.insert(key, value)?;
    if log.recording() {
        let prev = prev.map(|g| g.value().to_vec());
        log.record(which.entry(key, prev));
    }
    Ok(())
}

fn del_bytes(t: &mut Table<'_, Bytes, Bytes>, undo: &Mutex<UndoLog>, which: BytesTable, key: &[u8]) -> CmdResult<()> {
    let mut log = undo.lock();
    let prev = t.remove(key)?;
    if log.recording() {
        if let Some(prev) = prev {
            let prev = Some(prev.value().to_vec());
            log.record(which.entry(key, prev));
        }
    }
    Ok(())
}

fn put_catalog(t: &mut Table<'_, &'static str, Bytes>, undo: &Mutex<UndoLog>, key: &str, value: &[u8]) -> CmdResult<()> {
    let mut log = undo.lock();
    let prev = t.insert(key, value)?;
    if log.recording() {
        let prev = prev.map(|g| g.value().to_vec());
        log.record(UndoEntry::Catalog { key: key.to_string(), prev });
    }
    Ok(())
}

fn del_catalog(t: &mut Table<'_, &'static str, Bytes>, undo: &Mutex<UndoLog>, key: &str) -> CmdResult<()> {
    let mut log = undo.lock();
    let prev = t.remove(key)?;
    if log.recording() {
        if let Some(prev) = prev {
            let prev = Some(prev.value().to_vec());
            log.record(UndoEntry::Catalog { key: key.to_string(), prev });
        }
    }
    Ok(())
}

fn put_meta(t: &mut Table<'_, &'static str, u64>, undo: &Mutex<UndoLog>, key: &str, value: u64) -> CmdResult<()> {
    let mut log = undo.lock();
    let prev = t.insert(key, value)?;
    if log.recording() {
        let prev = prev.map(|g| g.value());
        log.record(UndoEntry::Meta { key: key.to_string(), prev });
    }
    Ok(())
}

/// Dispatches a read over either variant (the table types differ but both
/// implement `ReadableTable`).
macro_rules! with_table {
    ($self:expr, $field:ident, |$t:ident| $body:expr) => {
        match $self {
            Tables::Read { $field: $t, .. } => $body,
            Tables::Write { $field: $t, .. } => $body,
        }
    };
}

/// The two ordered key spaces queries read: documents (collection id +
/// encoded `_id` → BSON) and index entries (collection id + index id +
/// encoded key [+ `_id` key] → `_id` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpace {
    Documents,
    IndexEntries,
}

/// Key-value pairs of a key space between two bounds, in key order or
/// reversed, copied out of the store. Every planned read goes through one of
/// these (see `Tables::key_range`).
pub struct KeyRange<'a> {
    inner: redb::Range<'a, Bytes, Bytes>,
    reverse: bool,
}

impl Iterator for KeyRange<'_> {
    type Item = CmdResult<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = if self.reverse { self.inner.next_back() } else { self.inner.next() };
        item.map(|r| r.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())).map_err(Into::into))
    }
}

fn range_values<T: ReadableTable<Bytes, Bytes>>(t: &T, prefix: &[u8]) -> CmdResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    let iter = match prefix_end(prefix) {
        Some(end) => t.range::<&[u8]>(prefix..end.as_slice())?,
        None => t.range::<&[u8]>(prefix..)?,
    };
    for item in iter {
        let (k, v) = item?;
        out.push((k.value().to_vec(), v.value().to_vec()));
    }
    Ok(out)
}

fn count_range<T: ReadableTable<Bytes, Bytes>>(t: &T, prefix: &[u8]) -> CmdResult<u64> {
    let iter = match prefix_end(prefix) {
        Some(end) => t.range::<&[u8]>(prefix..end.as_slice())?,
        None => t.range::<&[u8]>(prefix..)?,
    };
    let mut n = 0;
    for item in iter {
        item?;
        n += 1;
    }
    Ok(n)
}

fn catalog_range<T: ReadableTable<&'static str, Bytes>>(t: &T, db: Option<&str>) -> CmdResult<Vec<CollectionMeta>> {
    let mut out = Vec::new();
    let (start, end) = match db {
        // Database names cannot contain '.', and '/' follows '.', so this
        // range is exactly the namespaces "db.*".
        Some(db) => (format!("{db}."), Some(format!("{db}/"))),
        None => (String::new(), None),
    };
    let iter = match &end {
        Some(end) => t.range::<&str>(start.as_str()..end.as_str())?,
        None => t.range::<&str>(start.as_str()..)?,
    };
    for item in iter {
        let (_, v) = item?;
        out.push(CollectionMeta::from_document(&decode(v.value())?)?);
    }
    Ok(out)
}

pub fn decode(bytes: &[u8]) -> CmdResult<Document> {
    Document::from_reader(bytes).map_err(|e| CommandError::internal(format!("corrupt stored document: {e}")))
}

pub(super) fn doc_prefix(meta: &CollectionMeta) -> [u8; 8] {
    meta.id.to_be_bytes()
}

fn doc_key(meta: &CollectionMeta, id_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + id_key.len());
    k.extend_from_slice(&meta.id.to_be_bytes());
    k.extend_from_slice(id_key);
    k
}

pub(super) fn index_prefix(meta: &CollectionMeta, ix: &IndexSpec) -> Vec<u8> {
    let mut k = Vec::with_capacity(12);
    k.extend_from_slice(&meta.id.to_be_bytes());
    k.extend_from_slice(&ix.id.to_be_bytes());
    k
}

/// The index table key of one entry: unique entries are keyed by value alone
/// (so a lookup finds the owner), others also by `_id`.
fn entry_key(meta: &CollectionMeta, ix: &IndexSpec, encoded: &[u8], id_key: &[u8]) -> Vec<u8> {
    let mut k = index_prefix(meta, ix);
    k.extend_from_slice(encoded);
    if !ix.unique {
        k.extend_from_slice(id_key);
    }
    k
}

/// The key under which an index records that some document met an array on
/// one of its paths (MongoDB's "multikey" flag). Entries start with a type
/// class (complemented for a descending field), which is never 0x00, so the
/// marker sorts before every entry; dropping the index removes it. It is
/// written once, by the first multikey document, and never cleared: as in
/// MongoDB, an index stays multikey until it is rebuilt.
pub(super) fn multikey_marker(meta: &CollectionMeta, ix: &IndexSpec) -> Vec<u8> {
    let mut k = index_prefix(meta, ix);
    k.push(0x00);
    k
}

fn mark_multikey(index: &mut Table<'_, Bytes, Bytes>, undo: &Mutex<UndoLog>, marker: &[u8]) -> CmdResult<()> {
    if index.get(marker)?.is_none() {
        put_bytes(index, undo, BytesTable::Index, marker, &[])?;
    }
    Ok(())
}

/// The encoded `_id` of a document; arrays are not valid ids.
pub fn id_key(doc: &Document) -> CmdResult<Vec<u8>> {
    match doc.get("_id") {
        Some(Bson::Array(_)) => Err(CommandError::new(53, "InvalidIdField", "The '_id' value cannot be of type array")),
        Some(Bson::RegularExpression(_)) => Err(CommandError::new(53, "InvalidIdField", "can't use a regex for _id")),
        Some(Bson::Undefined) => Err(CommandError::new(53, "InvalidIdField", "can't use an undefined for _id")),
        Some(v) => Ok(keyenc::encode_one(v)),
        None => Err(CommandError::internal("document has no _id")),
    }
}

impl<'t> Tables<'t> {
    pub fn open_read(txn: &ReadTransaction) -> CmdResult<Tables<'static>> {
        Ok(Tables::Read { catalog: txn.open_table(CATALOG)?, docs: txn.open_table(DOCS)?, index: txn.open_table(INDEX)? })
    }

    pub fn open_write(wtxn: &'t WriteTxn) -> CmdResult<Tables<'t>> {
        let txn = wtxn.txn()?;
        Ok(Tables::Write {
            catalog: txn.open_table(CATALOG)?,
            docs: txn.open_table(DOCS)?,
            index: txn.open_table(INDEX)?,
            meta: txn.open_table(META)?,
            undo: wtxn.undo_log(),
        })
    }

    pub fn is_writable(&self) -> bool {
        matches!(self, Tables::Write { .. })
    }

    // ---- reads -----------------------------------------------------------

    pub fn collection(&self, db: &str, name: &str) -> CmdResult<Option<CollectionMeta>> {
        let ns = format!("{db}.{name}");
        let raw = with_table!(self, catalog, |t| t.get(ns.as_str())?.map(|v| v.value().to_vec()));
        raw.map(|b| CollectionMeta::from_document(&decode(&b)?)).transpose()
    }

    /// Collections of `db`, or of every database when `None`.
    pub fn collections(&self, db: Option<&str>) -> CmdResult<Vec<CollectionMeta>> {
        with_table!(self, catalog, |t| catalog_range(t, db))
    }

    /// Every document of the collection, in `_id` order.
    pub fn scan(&self, meta: &CollectionMeta) -> CmdResult<Vec<Document>> {
        let rows = with_table!(self, docs, |t| range_values(t, &doc_prefix(meta)))?;
        rows.iter().map(|(_, v)| decode(v)).collect()
    }

    pub fn count(&self, meta: &CollectionMeta) -> CmdResult<u64> {
        with_table!(self, docs, |t| count_range(t, &doc_prefix(meta)))
    }

    pub fn get_by_id_key(&self, meta: &CollectionMeta, id_key: &[u8]) -> CmdResult<Option<Document>> {
        let key = doc_key(meta, id_key);
        let raw = with_table!(self, docs, |t| t.get(key.as_slice())?.map(|v| v.value().to_vec()));
        raw.map(|b| decode(&b)).transpose()
    }

    /// The ordered read that the planner's reads (`storage/reads.rs`) are
    /// built on: the pairs of `space` whose keys lie between the bounds,
    /// forward or in reverse.
    pub fn key_range(&self, space: KeySpace, start: Bound<&[u8]>, end: Bound<&[u8]>, reverse: bool) -> CmdResult<KeyRange<'_>> {
        let inner = match space {
            KeySpace::Documents => with_table!(self, docs, |t| t.range::<&[u8]>((start, end))?),
            KeySpace::IndexEntries => with_table!(self, index, |t| t.range::<&[u8]>((start, end))?),
        };
        Ok(KeyRange { inner, reverse })
    }

    /// The value stored under `key` in `space`.
    pub fn key_get(&self, space: KeySpace, key: &[u8]) -> CmdResult<Option<Vec<u8>>> {
        Ok(match space {
            KeySpace::Documents => with_table!(self, docs, |t| t.get(key)?.map(|v| v.value().to_vec())),
            KeySpace::IndexEntries => with_table!(self, index, |t| t.get(key)?.map(|v| v.value().to_vec())),
        })
    }

    fn index_owner(&self, key: &[u8]) -> CmdResult<Option<Vec<u8>>> {
        Ok(with_table!(self, index, |t| t.get(key)?.map(|v| v.value().to_vec())))
    }

    // ---- writes ----------------------------------------------------------

    fn not_writable() -> CommandError {
        CommandError::internal("write attempted in a read-only transaction")
    }

    fn next_sequence(&mut self, name: &str) -> CmdResult<u64> {
        let Tables::Write { meta, undo, .. } = self else { return Err(Self::not_writable()) };
        let next = meta.get(name)?.map(|v| v.value()).unwrap_or(1);
        put_meta(meta, undo, name, next + 1)?;
        Ok(next)
    }

    pub fn put_collection(&mut self, meta_doc: &CollectionMeta) -> CmdResult<()> {
        let Tables::Write { catalog, undo, .. } = self else { return Err(Self::not_writable()) };
        let bytes = meta_doc.to_document().to_vec()?;
        put_catalog(catalog, undo, meta_doc.ns().as_str(), bytes.as_slice())?;
        Ok(())
    }

    /// Creates a collection; NamespaceExists (48) if it is already there.
    pub fn create_collection(&mut self, db: &str, name: &str, options: Document) -> CmdResult<CollectionMeta> {
        crate::catalog::validate_db_name(db)?;
        crate::catalog::validate_collection_name(name)?;
        if self.collection(db, name)?.is_some() {
            return Err(CommandError::new(48, "NamespaceExists", format!("Collection {db}.{name} already exists.")));
        }
        let id = self.next_sequence("collection_id")?;
        let uuid = Binary { subtype: BinarySubtype::Uuid, bytes: rand::random::<[u8; 16]>().to_vec() };
        let meta = CollectionMeta { db: db.to_string(), name: name.to_string(), id, uuid, options, indexes: Vec::new(), next_index_id: 1 };
        self.put_collection(&meta)?;
        Ok(meta)
    }

    /// The collection, created implicitly if missing (as inserts and
    /// createIndexes do in MongoDB).
    pub fn ensure_collection(&mut self, db: &str, name: &str) -> CmdResult<CollectionMeta> {
        match self.collection(db, name)? {
            Some(m) => Ok(m),
            None => self.create_collection(db, name, Document::new()),
        }
    }

    /// Fails with the MongoDB duplicate-key error if `doc` would collide in a
    /// unique index (or on `_id` when `check_id`).
    fn check_unique(&self, meta: &CollectionMeta, doc: &Document, id_key: &[u8], old: Option<&Document>) -> CmdResult<()> {
        for ix in meta.indexes.iter().filter(|ix| ix.unique) {
            let old_keys: Vec<Vec<u8>> = match old {
                Some(o) => keys_for(ix, o)?.into_iter().map(|k| k.encoded).collect(),
                None => Vec::new(),
            };
            for key in keys_for(ix, doc)? {
                if old_keys.contains(&key.encoded) {
                    continue;
                }
                let ek = entry_key(meta, ix, &key.encoded, id_key);
                if let Some(owner) = self.index_owner(&ek)? {
                    if owner != id_key {
                        return Err(duplicate_key_error(&meta.ns(), &ix.name, &ix.key, &key.values));
                    }
                }
            }
        }
        Ok(())
    }

    fn write_entries(&mut self, meta: &CollectionMeta, doc: &Document, id_key: &[u8], insert: bool) -> CmdResult<()> {
        let Tables::Write { index, undo, .. } = self else { return Err(Self::not_writable()) };
        for ix in &meta.indexes {
            if insert && is_multikey_document(ix, doc) {
                mark_multikey(index, undo, &multikey_marker(meta, ix))?;
            }
            for key in keys_for(ix, doc)? {
                let ek = entry_key(meta, ix, &key.encoded, id_key);
                if insert {
                    put_bytes(index, undo, BytesTable::Index, ek.as_slice(), id_key)?;
                } else {
                    del_bytes(index, undo, BytesTable::Index, ek.as_slice())?;
                }
            }
        }
        Ok(())
    }

    /// MongoDB's limits on a stored document, with the codes and messages
    /// mongod 7 uses for an insert and for the result of an update.
    fn check_storable(bytes: &[u8], write: WriteKind) -> CmdResult<()> {
        if bytes.len() > MAX_DOCUMENT_SIZE {
            return Err(match write {
                WriteKind::Insert => CommandError::bad_value(format!(
                    "object to insert too large. size in bytes: {}, max size: {MAX_DOCUMENT_SIZE}",
                    bytes.len()
                )),
                WriteKind::Update => CommandError::new(
                    17419,
                    "Location17419",
                    format!("Resulting document after update is larger than {MAX_DOCUMENT_SIZE}"),
                ),
            });
        }
        if crate::wire::exceeds_depth(bytes, MAX_STORED_DEPTH)? {
            return Err(CommandError::new(
                15,
                "Overflow",
                match write {
                    WriteKind::Insert => format!("cannot insert document because it exceeds {MAX_STORED_DEPTH} levels of nesting"),
                    WriteKind::Update => format!("Document exceeds maximum nesting depth of {MAX_STORED_DEPTH}"),
                },
            ));
        }
        Ok(())
    }

    /// Inserts a document that already has an `_id`.
    pub fn insert(&mut self, meta: &CollectionMeta, doc: &Document) -> CmdResult<()> {
        let id_key = id_key(doc)?;
        let key = doc_key(meta, &id_key);
        let exists = with_table!(self, docs, |t| t.get(key.as_slice())?.is_some());
        if exists {
            let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
            return Err(duplicate_key_error(&meta.ns(), crate::catalog::ID_INDEX_NAME, &bson::doc! {"_id": 1}, &[id]));
        }
        self.check_unique(meta, doc, &id_key, None)?;
        let bytes = doc.to_vec()?;
        Self::check_storable(&bytes, WriteKind::Insert)?;
        self.write_entries(meta, doc, &id_key, true)?;
        let Tables::Write { docs, undo, .. } = self else { return Err(Self::not_writable()) };
        put_bytes(docs, undo, BytesTable::Docs, key.as_slice(), bytes.as_slice())?;
        Ok(())
    }

    /// Replaces `old` with `new` (same `_id`), keeping indexes in step.
    pub fn replace(&mut self, meta: &CollectionMeta, old: &Document, new: &Document) -> CmdResult<()> {
        let id_key = id_key(old)?;
        if crate::keyenc::encode_one(new.get("_id").unwrap_or(&Bson::Null)) != id_key {
            return Err(CommandError::new(66, "ImmutableField", "Performing an update on the path '_id' would modify the immutable field '_id'"));
        }
        self.check_unique(meta, new, &id_key, Some(old))?;
        let bytes = new.to_vec()?;
        Self::check_storable(&bytes, WriteKind::Update)?;
        self.write_entries(meta, old, &id_key, false)?;
        self.write_entries(meta, new, &id_key, true)?;
        let Tables::Write { docs, undo, .. } = self else { return Err(Self::not_writable()) };
        put_bytes(docs, undo, BytesTable::Docs, doc_key(meta, &id_key).as_slice(), bytes.as_slice())?;
        Ok(())
    }

    pub fn delete(&mut self, meta: &CollectionMeta, doc: &Document) -> CmdResult<()> {
        let id_key = id_key(doc)?;
        self.write_entries(meta, doc, &id_key, false)?;
        let Tables::Write { docs, undo, .. } = self else { return Err(Self::not_writable()) };
        del_bytes(docs, undo, BytesTable::Docs, doc_key(meta, &id_key).as_slice())?;
        Ok(())
    }

    fn remove_range(table: &mut Table<'t, Bytes, Bytes>, undo: &Mutex<UndoLog>, which: BytesTable, prefix: &[u8]) -> CmdResult<()> {
        let keys: Vec<Vec<u8>> = range_values(table, prefix)?.into_iter().map(|(k, _)| k).collect();
        for k in keys {
            del_bytes(table, undo, which, k.as_slice())?;
        }
        Ok(())
    }

    pub fn drop_collection(&mut self, meta: &CollectionMeta) -> CmdResult<()> {
        let Tables::Write { catalog, docs, index, undo, .. } = self else { return Err(Self::not_writable()) };
        Self::remove_range(docs, undo, BytesTable::Docs, &doc_prefix(meta))?;
        Self::remove_range(index, undo, BytesTable::Index, &doc_prefix(meta))?;
        del_catalog(catalog, undo, meta.ns().as_str())?;
        Ok(())
    }

    /// Moves a collection to a new namespace: only the catalog key changes.
    pub fn rename_collection(&mut self, meta: &CollectionMeta, db: &str, name: &str) -> CmdResult<CollectionMeta> {
        crate::catalog::validate_db_name(db)?;
        crate::catalog::validate_collection_name(name)?;
        let Tables::Write { catalog, undo, .. } = self else { return Err(Self::not_writable()) };
        del_catalog(catalog, undo, meta.ns().as_str())?;
        let mut renamed = meta.clone();
        renamed.db = db.to_string();
        renamed.name = name.to_string();
        self.put_collection(&renamed)?;
        Ok(renamed)
    }

    /// Stored key format: 2 encodes Decimal128 by numeric value; 3 makes
    /// every encoding order-preserving (numbers by exact value across types,
    /// documents by type/name/value), stores descending index fields
    /// complemented and marks multikey indexes (see keyenc).
    pub const KEY_FORMAT: u64 = 3;

    pub fn key_format(&self) -> CmdResult<Option<u64>> {
        let Tables::Write { meta, .. } = self else { return Err(Self::not_writable()) };
        Ok(meta.get("key_format")?.map(|v| v.value()))
    }

    pub fn set_key_format(&mut self, format: u64) -> CmdResult<()> {
        let Tables::Write { meta, undo, .. } = self else { return Err(Self::not_writable()) };
        put_meta(meta, undo, "key_format", format)
    }

    /// Re-encodes every document key and index entry of `meta` with the
    /// current key encoding, for a store written by an older one. Returns the
    /// number of documents whose `_id` key, or one of whose index keys, now
    /// collides with another document's: they stay stored (nothing is
    /// dropped), but MongoDB would have refused them as duplicates.
    pub fn reencode_keys(&mut self, meta: &CollectionMeta) -> CmdResult<usize> {
        let rows = with_table!(self, docs, |t| range_values(t, &doc_prefix(meta)))?;
        let mut collisions = 0;
        let Tables::Write { docs, index, undo, .. } = self else { return Err(Self::not_writable()) };
        Self::remove_range(index, undo, BytesTable::Index, &doc_prefix(meta))?;
        let mut stored: Vec<(Vec<u8>, Document)> = Vec::with_capacity(rows.len());
        for (old_key, bytes) in &rows {
            let doc = decode(bytes)?;
            let new_key = doc_key(meta, &id_key(&doc)?);
            if new_key != *old_key {
                if docs.get(new_key.as_slice())?.is_some() {
                    // Another document already has this _id by value: keep
                    // this one where it is rather than lose it.
                    collisions += 1;
                    stored.push((old_key[8..].to_vec(), doc));
                    continue;
                }
                del_bytes(docs, undo, BytesTable::Docs, old_key)?;
                put_bytes(docs, undo, BytesTable::Docs, &new_key, bytes)?;
            }
            stored.push((new_key[8..].to_vec(), doc));
        }
        for ix in &meta.indexes {
            for (id, doc) in &stored {
                if is_multikey_document(ix, doc) {
                    mark_multikey(index, undo, &multikey_marker(meta, ix))?;
                }
                for key in keys_for(ix, doc)? {
                    let ek = entry_key(meta, ix, &key.encoded, id);
                    if ix.unique && index.get(ek.as_slice())?.is_some() {
                        collisions += 1;
                        continue;
                    }
                    put_bytes(index, undo, BytesTable::Index, ek.as_slice(), id)?;
                }
            }
        }
        Ok(collisions)
    }

    /// Adds an index and builds its entries; a unique index over existing
    /// duplicates fails with the duplicate-key error and changes nothing.
    pub fn create_index(&mut self, meta: &mut CollectionMeta, spec: &Document) -> CmdResult<bool> {
        let mut ix = IndexSpec::from_spec(meta.next_index_id, spec)?;
        if ix.name == crate::catalog::ID_INDEX_NAME || ix.key == bson::doc! {"_id": 1} {
            return Ok(false);
        }
        if let Some(existing) = meta.index(&ix.name) {
            if existing.same_definition(&ix) {
                return Ok(false);
            }
            return Err(CommandError::new(86, "IndexKeySpecsConflict", format!("An existing index has the same name as the requested index but different options: {}", ix.name)));
        }
        if let Some(existing) = meta.indexes.iter().find(|e| e.key == ix.key && e.same_definition(&ix)) {
            return Err(CommandError::new(85, "IndexOptionsConflict", format!("Index already exists with a different name: {}", existing.name)));
        }
        meta.next_index_id += 1;
        ix.id = meta.next_index_id - 1;
        let docs = self.scan(meta)?;
        let mut seen: std::collections::HashMap<Vec<u8>, Vec<u8>> = std::collections::HashMap::new();
        let mut entries = Vec::new();
        let mut multikey = false;
        for doc in &docs {
            let id = id_key(doc)?;
            multikey |= is_multikey_document(&ix, doc);
            for key in keys_for(&ix, doc)? {
                if ix.unique {
                    if let Some(owner) = seen.get(&key.encoded) {
                        if *owner != id {
                            return Err(duplicate_key_error(&meta.ns(), &ix.name, &ix.key, &key.values));
                        }
                    }
                    seen.insert(key.encoded.clone(), id.clone());
                }
                entries.push((entry_key(meta, &ix, &key.encoded, &id), id.clone()));
            }
        }
        let Tables::Write { index, undo, .. } = self else { return Err(Self::not_writable()) };
        for (k, v) in entries {
            put_bytes(index, undo, BytesTable::Index, k.as_slice(), v.as_slice())?;
        }
        if multikey {
            mark_multikey(index, undo, &multikey_marker(meta, &ix))?;
        }
        meta.indexes.push(ix);
        self.put_collection(meta)?;
        Ok(true)
    }

    pub fn drop_index(&mut self, meta: &mut CollectionMeta, name: &str) -> CmdResult<()> {
        let Some(pos) = meta.indexes.iter().position(|ix| ix.name == name) else {
            return Err(CommandError::new(27, "IndexNotFound", format!("index not found with name [{name}]")));
        };
        let ix = meta.indexes.remove(pos);
        let Tables::Write { index, undo, .. } = self else { return Err(Self::not_writable()) };
        Self::remove_range(index, undo, BytesTable::Index, &index_prefix(meta, &ix))?;
        self.put_collection(meta)?;
        Ok(())
    }
}

#[cfg(test)]
mod key_format_tests {
    use super::*;
    use crate::storage::Storage;
    use bson::{doc, Decimal128};
    use std::time::Duration;

    fn dec(s: &str) -> Bson {
        Bson::Decimal128(s.parse::<Decimal128>().unwrap())
    }

    /// How key format 1 encoded a Decimal128: its bytes.
    fn format1_key(d: &Bson) -> Vec<u8> {
        let Bson::Decimal128(d) = d else { panic!("not a decimal") };
        let mut k = vec![0x0A, 0x03];
        k.extend_from_slice(&d.bytes());
        k
    }

    #[test]
    fn a_format_1_store_is_re_keyed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = Storage::open(dir.path()).unwrap();
            let wtxn = storage.begin_write(Duration::from_secs(5)).unwrap().unwrap();
            let mut t = Tables::open_write(&wtxn).unwrap();
            let mut meta = t.create_collection("shop", "items", Document::new()).unwrap();
            t.create_index(&mut meta, &doc! {"key": {"price": 1}, "name": "price_1", "unique": true}).unwrap();
            t.insert(&meta, &doc! {"_id": 7, "price": 3}).unwrap();
            // What format 1 wrote for {_id: NumberDecimal("1.0"), price: NumberDecimal("2.50")}.
            let old = doc! {"_id": dec("1.0"), "price": dec("2.50")};
            let ix = meta.indexes[0].clone();
            let Tables::Write { docs, index, meta: m, undo, .. } = &mut t else { panic!() };
            let id = format1_key(&dec("1.0"));
            put_bytes(docs, undo, BytesTable::Docs, &doc_key(&meta, &id), &old.to_vec().unwrap()).unwrap();
            put_bytes(index, undo, BytesTable::Index, &entry_key(&meta, &ix, &format1_key(&dec("2.50")), &id), &id).unwrap();
            put_meta(m, undo, "key_format", 1).unwrap();
            drop(t);
            wtxn.commit().unwrap();
        }
        let storage = Storage::open(dir.path()).unwrap();
        let rtxn = storage.begin_read().unwrap();
        let t = Tables::open_read(&rtxn).unwrap();
        let meta = t.collection("shop", "items").unwrap().unwrap();
        // The _id is found by value, as 1 ...
        let found = t.get_by_id_key(&meta, &keyenc::encode_one(&Bson::Int32(1))).unwrap().unwrap();
        assert_eq!(found.get("price"), Some(&dec("2.50")));
        // ... and the index answers 2.5 (a double) for the decimal 2.50.
        let ix = &meta.indexes[0];
        let lookup = |v: &Bson| {
            let key = keyenc::encode_one(v);
            let end = prefix_end(&key).unwrap_or_default();
            t.index_entries(&meta, ix, Bound::Included(&key), Bound::Excluded(&end), false).unwrap().count()
        };
        assert_eq!(lookup(&Bson::Double(2.5)), 1);
        assert_eq!(lookup(&Bson::Int32(3)), 1);
        assert_eq!(t.count(&meta).unwrap(), 2);
        drop(t);
        drop(rtxn);
        // Marked: the next open has nothing to do, and new writes see duplicates by value.
        let wtxn = storage.begin_write(Duration::from_secs(5)).unwrap().unwrap();
        let mut t = Tables::open_write(&wtxn).unwrap();
        assert_eq!(t.key_format().unwrap(), Some(Tables::KEY_FORMAT));
        let err = t.insert(&meta, &doc! {"_id": 8, "price": dec("3.000")}).unwrap_err();
        assert_eq!(err.code, 11000);
        let err = t.insert(&meta, &doc! {"_id": 1.0, "price": 9}).unwrap_err();
        assert_eq!(err.code, 11000);
    }
}
