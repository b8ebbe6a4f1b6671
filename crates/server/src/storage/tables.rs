//! Typed access to the four redb tables within one command: catalog reads
//! and writes, document storage and index maintenance.
//!
//! The same `Tables` serves a read snapshot, an autocommit write and a
//! multi-document transaction: each table is a `View`, which reads through a
//! transaction's pending writes, so every reader below works unchanged in
//! all three. Writes go through the functions at the end of this file; in a
//! write they first claim the document (or unique key, or catalog entry) in
//! the conflict table, which is how concurrent writers of one document meet.
use super::view::View;
use super::{next_collection_id, Claims, ConflictKey, Transaction, WriteTxn, CATALOG, COLLECTION_ID, COUNTS, DOCS, INDEX, META};
use super::overlay::TableId;
use crate::catalog::{CollectionMeta, IndexSpec};
use crate::error::{CmdResult, CommandError};
use crate::foreign_keys::PendingChecks;
use crate::index::{duplicate_key_error, is_multikey_document, keys_for, IndexKey};
use crate::keyenc::{self, prefix_end};
use bson::{spec::BinarySubtype, Binary, Bson, Document, RawDocumentBuf};
use redb::ReadTransaction;
use std::ops::Bound;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

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

/// The tables as one command sees them, and, when it may write, the
/// writer's claims.
pub struct Tables<'t> {
    catalog: View<'t, &'static str, Bytes>,
    docs: View<'t, Bytes, Bytes>,
    index: View<'t, Bytes, Bytes>,
    meta: View<'t, &'static str, u64>,
    /// Documents per collection (`storage::COUNTS`). A transaction reads
    /// its snapshot's counts and adds what its pending writes change; its
    /// commit moves the stored counts.
    counts: View<'t, u64, u64>,
    writer: Option<Writer<'t>>,
    /// The shared snapshot's remembered answers (`latest`), when these are
    /// its tables.
    memo: Option<&'t parking_lot::Mutex<super::latest::SnapshotMemo>>,
}

struct Writer<'t> {
    claims: &'t Claims,
    collection_ids: &'t AtomicU64,
    /// The foreign key checks this writer owes at its commit.
    pending: &'t PendingChecks,
    /// An autocommit write's moves of document counts (a transaction's are
    /// counted from its writes when it commits).
    counts: Option<&'t CountDeltas>,
}

/// How an autocommit write moved each collection's document count (by
/// collection id), stored in `COUNTS` when it commits: one write per
/// collection however many documents it inserts or deletes.
#[derive(Default)]
pub struct CountDeltas {
    deltas: std::cell::RefCell<std::collections::BTreeMap<u64, i64>>,
}

impl CountDeltas {
    fn add(&self, collection: u64, delta: i64) {
        *self.deltas.borrow_mut().entry(collection).or_default() += delta;
    }

    fn of(&self, collection: u64) -> i64 {
        self.deltas.borrow().get(&collection).copied().unwrap_or(0)
    }

    fn forget(&self, collection: u64) {
        self.deltas.borrow_mut().remove(&collection);
    }

    /// Moves the stored counts, in the write's own redb transaction.
    pub(super) fn store(&self, txn: &redb::WriteTransaction) -> CmdResult<()> {
        use redb::ReadableTable;
        let deltas = std::mem::take(&mut *self.deltas.borrow_mut());
        if deltas.values().all(|d| *d == 0) {
            return Ok(());
        }
        let mut counts = txn.open_table(COUNTS)?;
        for (collection, delta) in deltas {
            let stored = counts.get(collection)?.map(|v| v.value()).unwrap_or(0);
            store_count(&mut counts, collection, stored.saturating_add_signed(delta))?;
        }
        Ok(())
    }
}

/// Gives each reader below `t`, the named table's `View`.
macro_rules! with_table {
    ($self:expr, $field:ident, |$t:ident| $body:expr) => {{
        let $t = &$self.$field;
        $body
    }};
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
    inner: super::view::Range<'a, Bytes, Bytes>,
    reverse: bool,
}

impl KeyRange<'_> {
    /// The next pair, lent to `f` where it lies in the store: a caller that
    /// only counts, decodes or keeps part of it copies nothing else.
    pub fn next_with<T>(&mut self, f: impl FnOnce(&[u8], &[u8]) -> CmdResult<T>) -> Option<CmdResult<T>> {
        self.inner.next_with(!self.reverse, f)
    }
}

impl KeyRange<'_> {
    /// How many pairs are left (the direction does not change it).
    pub fn count_remaining(self) -> CmdResult<u64> {
        self.inner.count_remaining()
    }
}

impl Iterator for KeyRange<'_> {
    type Item = CmdResult<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_with(|k, v| Ok((k.to_vec(), v.to_vec())))
    }
}

fn range_values(t: &View<'_, Bytes, Bytes>, prefix: &[u8]) -> CmdResult<Vec<(Vec<u8>, Vec<u8>)>> {
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

/// The collection id a `DOCS` key starts with.
pub(super) fn collection_of(key: &[u8]) -> CmdResult<u64> {
    key.get(..DOC_PREFIX_LEN)
        .and_then(|p| <[u8; 8]>::try_from(p).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| CommandError::internal("a stored document key without its collection id"))
}

/// Stores a collection's document count; none is kept for an empty one.
pub(super) fn store_count(counts: &mut redb::Table<u64, u64>, collection: u64, n: u64) -> CmdResult<()> {
    if n == 0 {
        counts.remove(collection)?;
    } else {
        counts.insert(collection, n)?;
    }
    Ok(())
}

fn catalog_range(t: &View<'_, &'static str, Bytes>, db: Option<&str>) -> CmdResult<Vec<CollectionMeta>> {
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
        out.push(CollectionMeta::from_stored(v.value())?);
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
    let mut k = Vec::with_capacity(DOC_PREFIX_LEN + id_key.len());
    k.extend_from_slice(&meta.id.to_be_bytes());
    k.extend_from_slice(id_key);
    k
}

/// How many leading bytes of a stored document's key name its collection,
/// and of an index entry's key its collection and index.
pub(super) const DOC_PREFIX_LEN: usize = 8;
pub(super) const INDEX_PREFIX_LEN: usize = 16;

pub(super) fn index_prefix(meta: &CollectionMeta, ix: &IndexSpec) -> Vec<u8> {
    index_prefix_with_room(meta, ix, 0)
}

/// [`index_prefix`] in a buffer sized for `room` more bytes: an entry's key
/// is built per index per written document, and is allocated once.
fn index_prefix_with_room(meta: &CollectionMeta, ix: &IndexSpec, room: usize) -> Vec<u8> {
    let mut k = Vec::with_capacity(INDEX_PREFIX_LEN + room);
    k.extend_from_slice(&meta.id.to_be_bytes());
    k.extend_from_slice(&ix.id.to_be_bytes());
    k
}

/// The index table key of one entry: unique entries are keyed by value alone
/// (so a lookup finds the owner), others also by `_id`.
fn entry_key(meta: &CollectionMeta, ix: &IndexSpec, encoded: &[u8], id_key: &[u8]) -> Vec<u8> {
    let mut k = index_prefix_with_room(meta, ix, encoded.len() + id_key.len());
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
        Ok(Tables {
            catalog: View::snapshot(txn.open_table(CATALOG)?),
            docs: View::snapshot(txn.open_table(DOCS)?),
            index: View::snapshot(txn.open_table(INDEX)?),
            meta: View::snapshot(txn.open_table(META)?),
            counts: View::snapshot(txn.open_table(COUNTS)?),
            writer: None,
            memo: None,
        })
    }

    /// The latest data's tables, shared with other reads (`latest`).
    pub fn shared(tables: &'t super::SnapshotTables) -> Tables<'t> {
        Tables {
            catalog: View::shared(&tables.catalog),
            docs: View::shared(&tables.docs),
            index: View::shared(&tables.index),
            meta: View::shared(&tables.meta),
            counts: View::shared(&tables.counts),
            writer: None,
            memo: Some(&tables.memo),
        }
    }

    /// The tables of an autocommit write.
    pub fn open_write(wtxn: &'t WriteTxn) -> CmdResult<Tables<'t>> {
        let txn = wtxn.txn()?;
        Ok(Tables {
            catalog: View::live(txn.open_table(CATALOG)?),
            docs: View::live(txn.open_table(DOCS)?),
            index: View::live(txn.open_table(INDEX)?),
            meta: View::live(txn.open_table(META)?),
            // Read only: the write's own moves are kept aside
            // (`CountDeltas`) and stored at its commit.
            counts: View::live(txn.open_table(COUNTS)?),
            writer: Some(Writer {
                claims: wtxn.claims(),
                collection_ids: wtxn.collection_ids(),
                pending: wtxn.pending_checks(),
                counts: Some(wtxn.count_deltas()),
            }),
            memo: None,
        })
    }

    /// The tables of a multi-document transaction: its snapshot with its
    /// own writes over it.
    pub fn open_transaction(txn: &'t Transaction) -> CmdResult<Tables<'t>> {
        let snapshot = txn.snapshot();
        let overlay = txn.overlay();
        Ok(Tables {
            catalog: View::overlaid(snapshot.open_table(CATALOG)?, overlay, TableId::Catalog),
            docs: View::overlaid(snapshot.open_table(DOCS)?, overlay, TableId::Docs),
            index: View::overlaid(snapshot.open_table(INDEX)?, overlay, TableId::Index),
            meta: View::overlaid(snapshot.open_table(META)?, overlay, TableId::Meta),
            counts: View::snapshot(snapshot.open_table(COUNTS)?),
            writer: Some(Writer { claims: txn.claims(), collection_ids: txn.collection_ids(), pending: txn.pending_checks(), counts: None }),
            memo: None,
        })
    }

    /// The shared snapshot's remembered answers, when these are its tables.
    pub(super) fn memo(&self) -> Option<&'t parking_lot::Mutex<super::latest::SnapshotMemo>> {
        self.memo
    }

    pub fn is_writable(&self) -> bool {
        self.writer.is_some()
    }

    // ---- reads -----------------------------------------------------------

    pub fn collection(&self, db: &str, name: &str) -> CmdResult<Option<CollectionMeta>> {
        let ns = format!("{db}.{name}");
        if let Some(found) = self.memo.and_then(|m| m.lock().collections.get(&ns).cloned()) {
            return Ok(found);
        }
        // Decoded (or found decoded) where the store holds the bytes: no copy.
        let found = with_table!(self, catalog, |t| t.get(ns.as_str())?.map(|v| CollectionMeta::from_stored(v.value())).transpose())?;
        if let Some(memo) = self.memo {
            memo.lock().collections.insert(ns, found.clone());
        }
        Ok(found)
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

    /// How many documents the collection holds, as this command sees it:
    /// its stored count (one B-tree lookup), plus what a transaction's own
    /// pending writes change.
    pub fn count(&self, meta: &CollectionMeta) -> CmdResult<u64> {
        let stored = self.counts.get(meta.id)?.map(|v| v.value()).unwrap_or(0);
        let prefix = doc_prefix(meta);
        let end = prefix_end(&prefix);
        let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let pending = self.docs.pending_delta(Bound::Included(&prefix), upper)?;
        let written = self.writer.as_ref().and_then(|w| w.counts).map_or(0, |c| c.of(meta.id));
        Ok(stored.saturating_add_signed(pending + written))
    }

    /// Notes a document added (`added`) or removed when `changed` says the
    /// write did so; a transaction's writes (`None`) are counted at its
    /// commit.
    fn count_change(&self, meta: &CollectionMeta, changed: Option<bool>, added: bool) -> CmdResult<()> {
        if changed == Some(true) {
            if let Some(counts) = self.writer()?.counts {
                counts.add(meta.id, if added { 1 } else { -1 });
            }
        }
        Ok(())
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
        self.key_get_with(space, key, |v| Ok(v.to_vec()))
    }

    /// The value stored under `key` in `space`, lent to `f` where it lies.
    pub fn key_get_with<T>(&self, space: KeySpace, key: &[u8], f: impl FnOnce(&[u8]) -> CmdResult<T>) -> CmdResult<Option<T>> {
        let guard = match space {
            KeySpace::Documents => with_table!(self, docs, |t| t.get(key)?),
            KeySpace::IndexEntries => with_table!(self, index, |t| t.get(key)?),
        };
        guard.map(|g| f(g.value())).transpose()
    }

    fn index_owner(&self, key: &[u8]) -> CmdResult<Option<Vec<u8>>> {
        with_table!(self, index, |t| Ok(t.get(key)?.map(|v| v.value().to_vec())))
    }

    // ---- writes ----------------------------------------------------------

    fn writer(&self) -> CmdResult<&Writer<'t>> {
        self.writer.as_ref().ok_or_else(|| CommandError::internal("write attempted in a read-only transaction"))
    }

    fn claim(&self, key: ConflictKey) -> CmdResult<()> {
        self.writer()?.claims.claim(key)
    }

    pub fn put_collection(&mut self, meta_doc: &CollectionMeta) -> CmdResult<()> {
        let ns = meta_doc.ns();
        self.writer()?.claims.change_definition(meta_doc.id, &ns)?;
        let bytes = meta_doc.to_document().to_vec()?;
        self.catalog.insert(ns.as_str(), bytes.as_slice())
    }

    fn remove_catalog_entry(&mut self, meta: &CollectionMeta) -> CmdResult<()> {
        let ns = meta.ns();
        self.writer()?.claims.change_definition(meta.id, &ns)?;
        self.catalog.remove(ns.as_str())
    }

    /// Creates a collection; NamespaceExists (48) if it is already there.
    pub fn create_collection(&mut self, db: &str, name: &str, options: Document) -> CmdResult<CollectionMeta> {
        crate::catalog::validate_db_name(db)?;
        crate::catalog::validate_collection_name(name)?;
        // Claimed before looking, so that two writers creating one
        // collection meet here rather than both creating it.
        self.claim(ConflictKey::Namespace(format!("{db}.{name}")))?;
        if self.collection(db, name)?.is_some() {
            return Err(CommandError::new(48, "NamespaceExists", format!("Collection {db}.{name} already exists.")));
        }
        let id = next_collection_id(self.writer()?.collection_ids);
        // Only ever raised (see transaction::apply), so that a restart never
        // hands out an id twice.
        let stored = with_table!(self, meta, |t| t.get(COLLECTION_ID)?.map(|v| v.value())).unwrap_or(0);
        if id + 1 > stored {
            self.meta.insert(COLLECTION_ID, id + 1)?;
        }
        let uuid = Binary { subtype: BinarySubtype::Uuid, bytes: rand::random::<[u8; 16]>().to_vec() };
        let meta = CollectionMeta { db: db.to_string(), name: name.to_string(), id, uuid, options, indexes: Default::default(), next_index_id: 1, referenced_by: Default::default(), foreign_keys: Default::default() };
        self.put_collection(&meta)?;
        crate::foreign_keys::created(self, &meta)?;
        // Re-read: the reverse list of foreign keys may have been filled in.
        Ok(self.collection(db, name)?.unwrap_or(meta))
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
    /// unique index. The keys `doc` adds are claimed first, so a concurrent
    /// writer adding the same key is a write conflict, never a lost check.
    fn check_unique(&self, meta: &CollectionMeta, doc: &Document, id_key: &[u8], old: Option<&Document>) -> CmdResult<()> {
        for ix in meta.indexes.iter().filter(|ix| ix.unique) {
            let old_keys: Vec<Vec<u8>> = match old {
                Some(o) => keys_for(ix, o)?.into_iter().map(|k| k.encoded).collect(),
                None => Vec::new(),
            };
            self.claim_unique_keys(meta, ix, doc, id_key, &old_keys)?;
        }
        Ok(())
    }

    /// The keys `doc` has in the unique index `ix`; those not in `old_keys`
    /// are claimed and must not belong to another document. Returns them all.
    fn claim_unique_keys(&self, meta: &CollectionMeta, ix: &IndexSpec, doc: &Document, id_key: &[u8], old_keys: &[Vec<u8>]) -> CmdResult<Vec<IndexKey>> {
        let keys = keys_for(ix, doc)?;
        for key in &keys {
            if old_keys.contains(&key.encoded) {
                continue;
            }
            let ek = entry_key(meta, ix, &key.encoded, id_key);
            self.claim(ConflictKey::Unique(ek.clone()))?;
            if let Some(owner) = self.index_owner(&ek)? {
                if owner != id_key {
                    return Err(duplicate_key_error(&meta.ns(), &ix.name, &ix.key, &key.values));
                }
            }
        }
        Ok(keys)
    }

    /// Records that an index holds an array (see `multikey_marker`). Not
    /// claimed: every writer writes the same empty value, so two
    /// transactions marking one index never conflict.
    fn mark_multikey(&mut self, marker: &[u8]) -> CmdResult<()> {
        if self.index.get(marker)?.is_none() {
            self.index.insert(marker, b"".as_slice())?;
        }
        Ok(())
    }

    /// Removes `doc`'s index entries (its unique ones claimed).
    fn remove_entries(&mut self, meta: &CollectionMeta, doc: &Document, id_key: &[u8]) -> CmdResult<()> {
        for ix in meta.indexes.iter() {
            for key in keys_for(ix, doc)? {
                let ek = entry_key(meta, ix, &key.encoded, id_key);
                if ix.unique {
                    self.claim(ConflictKey::Unique(ek.clone()))?;
                }
                self.index.remove(ek.as_slice())?;
            }
        }
        Ok(())
    }

    /// Claims a document this writer's foreign keys refer to, as a write
    /// would: a concurrent writer deleting it (or changing it) conflicts.
    pub fn claim_referenced(&self, meta: &CollectionMeta, id_key: &[u8]) -> CmdResult<()> {
        self.claim(ConflictKey::Doc(doc_key(meta, id_key)))
    }

    /// The foreign key checks this writer owes (`foreign_keys::verify`).
    pub fn pending_checks(&self) -> CmdResult<&PendingChecks> {
        Ok(self.writer()?.pending)
    }

    /// Claims document `key` of `meta` for this writer.
    fn claim_document(&self, meta: &CollectionMeta, key: &[u8]) -> CmdResult<()> {
        let claims = self.writer()?.claims;
        claims.write_contents(meta.id)?;
        claims.claim(ConflictKey::Doc(key.to_vec()))
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
        // Each level of nesting past the first takes at least 7 bytes (a
        // type byte, a key's terminating NUL, a length and a terminator), so
        // a shorter document cannot be too deep; most are, and skip the walk.
        if bytes.len() >= 5 + 7 * MAX_STORED_DEPTH && crate::wire::exceeds_depth(bytes, MAX_STORED_DEPTH)? {
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
        self.insert_stored(meta, doc).map(drop)
    }

    /// [`Tables::insert`], handing back the document as it was stored (for
    /// the change log, which keeps those bytes rather than a copy of `doc`).
    pub fn insert_stored(&mut self, meta: &CollectionMeta, doc: &Document) -> CmdResult<RawDocumentBuf> {
        let id_key = id_key(doc)?;
        let key = doc_key(meta, &id_key);
        self.claim_document(meta, &key)?;
        let exists = with_table!(self, docs, |t| t.get(key.as_slice())?.is_some());
        if exists {
            let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
            return Err(duplicate_key_error(&meta.ns(), crate::catalog::ID_INDEX_NAME, &bson::doc! {"_id": 1}, &[id]));
        }
        // The unique indexes' keys first (claimed and checked), then the
        // size, then the other indexes' keys: each index's keys are built
        // once, and a unique entry is claimed once.
        let mut keys: Vec<Option<Vec<IndexKey>>> = Vec::with_capacity(meta.indexes.len());
        for ix in meta.indexes.iter() {
            keys.push(if ix.unique { Some(self.claim_unique_keys(meta, ix, doc, &id_key, &[])?) } else { None });
        }
        let bytes = doc.to_vec()?;
        Self::check_storable(&bytes, WriteKind::Insert)?;
        for (ix, keys) in meta.indexes.iter().zip(keys) {
            if is_multikey_document(ix, doc) {
                self.mark_multikey(&multikey_marker(meta, ix))?;
            }
            let keys = match keys {
                Some(keys) => keys,
                None => keys_for(ix, doc)?,
            };
            for key in keys {
                self.index.insert(entry_key(meta, ix, &key.encoded, &id_key).as_slice(), id_key.as_slice())?;
            }
        }
        let added = self.docs.insert_counted(key.as_slice(), bytes.as_slice())?;
        self.count_change(meta, added, true)?;
        self.writer()?.pending.record(meta, None, Some(doc), &id_key);
        Ok(RawDocumentBuf::from_bytes(bytes)?)
    }

    /// Replaces `old` with `new` (same `_id`), keeping indexes in step.
    pub fn replace(&mut self, meta: &CollectionMeta, old: &Document, new: &Document) -> CmdResult<()> {
        let id_key = id_key(old)?;
        if crate::keyenc::encode_one(new.get("_id").unwrap_or(&Bson::Null)) != id_key {
            return Err(CommandError::new(66, "ImmutableField", "Performing an update on the path '_id' would modify the immutable field '_id'"));
        }
        let key = doc_key(meta, &id_key);
        self.claim_document(meta, &key)?;
        self.check_unique(meta, new, &id_key, Some(old))?;
        let bytes = new.to_vec()?;
        Self::check_storable(&bytes, WriteKind::Update)?;
        self.rewrite_entries(meta, old, new, &id_key)?;
        self.docs.insert(key.as_slice(), bytes.as_slice())?;
        self.writer()?.pending.record(meta, Some(old), Some(new), &id_key);
        Ok(())
    }

    /// Whether a change to the field at `path` (dotted), and nothing else,
    /// leaves every index entry, partial index membership and foreign-key
    /// check of `meta` as it was: no index, partial filter or constraint
    /// reads that field, a field within it or one holding it. Text and
    /// wildcard indexes read fields they do not name, so they count as
    /// reading it.
    pub fn reads_no_index_or_constraint(meta: &CollectionMeta, path: &str) -> bool {
        let overlaps = |field: &str| field == path || field.strip_prefix(path).is_some_and(|rest| rest.starts_with('.')) || path.strip_prefix(field).is_some_and(|rest| rest.starts_with('.'));
        meta.foreign_keys.is_empty()
            && meta.referenced_by.is_empty()
            && meta.indexes.iter().all(|ix| ix.partial.is_none() && ix.text.is_none() && ix.wildcard.is_none() && !ix.key.keys().any(|k| overlaps(k)))
    }

    /// [`replace`](Self::replace) for stored bytes that differ from the
    /// document's only in a field for which
    /// [`reads_no_index_or_constraint`](Self::reads_no_index_or_constraint)
    /// holds: its index entries stay as they are, so neither document is
    /// decoded. `id` is the document's `_id`, unchanged.
    pub fn replace_unindexed(&mut self, meta: &CollectionMeta, id: &Bson, bytes: &[u8]) -> CmdResult<()> {
        let id_key = keyenc::encode_one(id);
        let key = doc_key(meta, &id_key);
        self.claim_document(meta, &key)?;
        Self::check_storable(bytes, WriteKind::Update)?;
        self.docs.insert(key.as_slice(), bytes)?;
        Ok(())
    }

    /// Moves a replaced document's index entries from `old` to `new`,
    /// touching only the entries that differ: an update that leaves an
    /// index's keys alone (a counter raised in a `__schema__` record, a
    /// `save()` of unchanged indexed fields) writes nothing to that index.
    /// An unchanged unique entry needs no claim: the document's own claim
    /// already orders every writer that could remove it, and a writer adding
    /// the same key finds it (`check_unique`).
    fn rewrite_entries(&mut self, meta: &CollectionMeta, old: &Document, new: &Document, id_key: &[u8]) -> CmdResult<()> {
        for ix in meta.indexes.iter() {
            if is_multikey_document(ix, new) {
                self.mark_multikey(&multikey_marker(meta, ix))?;
            }
            let old_keys: Vec<Vec<u8>> = keys_for(ix, old)?.into_iter().map(|k| k.encoded).collect();
            let new_keys: Vec<Vec<u8>> = keys_for(ix, new)?.into_iter().map(|k| k.encoded).collect();
            let old_set: std::collections::HashSet<&[u8]> = old_keys.iter().map(Vec::as_slice).collect();
            let new_set: std::collections::HashSet<&[u8]> = new_keys.iter().map(Vec::as_slice).collect();
            for key in old_keys.iter().filter(|k| !new_set.contains(k.as_slice())) {
                let ek = entry_key(meta, ix, key, id_key);
                if ix.unique {
                    self.claim(ConflictKey::Unique(ek.clone()))?;
                }
                self.index.remove(ek.as_slice())?;
            }
            for key in new_keys.iter().filter(|k| !old_set.contains(k.as_slice())) {
                let ek = entry_key(meta, ix, key, id_key);
                if ix.unique {
                    self.claim(ConflictKey::Unique(ek.clone()))?;
                }
                self.index.insert(ek.as_slice(), id_key)?;
            }
        }
        Ok(())
    }

    pub fn delete(&mut self, meta: &CollectionMeta, doc: &Document) -> CmdResult<()> {
        let id_key = id_key(doc)?;
        let key = doc_key(meta, &id_key);
        self.claim_document(meta, &key)?;
        self.remove_entries(meta, doc, &id_key)?;
        let removed = self.docs.remove_counted(key.as_slice())?;
        self.count_change(meta, removed, false)?;
        self.writer()?.pending.record(meta, Some(doc), None, &id_key);
        Ok(())
    }

    /// Removes every key starting with `prefix`. Used with the collection's
    /// definition claimed: no other writer is writing its documents.
    fn remove_range(table: &mut View<'t, Bytes, Bytes>, prefix: &[u8]) -> CmdResult<()> {
        let keys: Vec<Vec<u8>> = range_values(table, prefix)?.into_iter().map(|(k, _)| k).collect();
        for k in keys {
            table.remove(k.as_slice())?;
        }
        Ok(())
    }

    pub fn drop_collection(&mut self, meta: &CollectionMeta) -> CmdResult<()> {
        // Its cached plans go with it (harmless if the drop is rolled back:
        // the cache only ever saves planning).
        crate::plan::cache::PlanCache::global().clear(&meta.uuid.bytes);
        self.remove_catalog_entry(meta)?;
        Self::remove_range(&mut self.docs, &doc_prefix(meta))?;
        Self::remove_range(&mut self.index, &doc_prefix(meta))?;
        // (In a transaction the commit counts the removals instead.)
        if let Some(counts) = self.writer()?.counts {
            let stored = self.counts.get(meta.id)?.map(|v| v.value()).unwrap_or(0);
            counts.forget(meta.id);
            counts.add(meta.id, -i64::try_from(stored).unwrap_or(i64::MAX));
        }
        Ok(())
    }

    /// Moves a collection to a new namespace: only the catalog key changes.
    pub fn rename_collection(&mut self, meta: &CollectionMeta, db: &str, name: &str) -> CmdResult<CollectionMeta> {
        crate::catalog::validate_db_name(db)?;
        crate::catalog::validate_collection_name(name)?;
        self.remove_catalog_entry(meta)?;
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
        with_table!(self, meta, |t| Ok(t.get("key_format")?.map(|v| v.value())))
    }

    pub fn set_key_format(&mut self, format: u64) -> CmdResult<()> {
        self.writer()?;
        self.meta.insert("key_format", format)
    }

    /// Re-encodes every document key and index entry of `meta` with the
    /// current key encoding, for a store written by an older one. Returns the
    /// number of documents whose `_id` key, or one of whose index keys, now
    /// collides with another document's: they stay stored (nothing is
    /// dropped), but MongoDB would have refused them as duplicates.
    ///
    /// Runs at open, before any other writer exists, so it claims nothing.
    pub fn reencode_keys(&mut self, meta: &CollectionMeta) -> CmdResult<usize> {
        self.writer()?;
        let rows = with_table!(self, docs, |t| range_values(t, &doc_prefix(meta)))?;
        let mut collisions = 0;
        Self::remove_range(&mut self.index, &doc_prefix(meta))?;
        let mut stored: Vec<(Vec<u8>, Document)> = Vec::with_capacity(rows.len());
        for (old_key, bytes) in &rows {
            let doc = decode(bytes)?;
            let new_key = doc_key(meta, &id_key(&doc)?);
            if new_key != *old_key {
                if self.docs.get(new_key.as_slice())?.is_some() {
                    // Another document already has this _id by value: keep
                    // this one where it is rather than lose it.
                    collisions += 1;
                    stored.push((old_key[8..].to_vec(), doc));
                    continue;
                }
                self.docs.remove(old_key.as_slice())?;
                self.docs.insert(new_key.as_slice(), bytes.as_slice())?;
            }
            stored.push((new_key[8..].to_vec(), doc));
        }
        for ix in meta.indexes.iter() {
            for (id, doc) in &stored {
                if is_multikey_document(ix, doc) {
                    self.mark_multikey(&multikey_marker(meta, ix))?;
                }
                for key in keys_for(ix, doc)? {
                    let ek = entry_key(meta, ix, &key.encoded, id);
                    if ix.unique && self.index.get(ek.as_slice())?.is_some() {
                        collisions += 1;
                        continue;
                    }
                    self.index.insert(ek.as_slice(), id.as_slice())?;
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
        if ix.text.is_some() {
            if let Some(existing) = meta.indexes.iter().find(|e| e.text.is_some()) {
                return Err(CommandError::new(
                    67,
                    "CannotCreateIndex",
                    format!("only one text index per collection allowed, found existing text index \"{}\"", existing.name),
                ));
            }
        }
        // Claimed before reading the documents to index: no writer adds one
        // behind the build's back.
        self.writer()?.claims.change_definition(meta.id, &meta.ns())?;
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
        for (k, v) in entries {
            self.index.insert(k.as_slice(), v.as_slice())?;
        }
        if multikey {
            self.mark_multikey(&multikey_marker(meta, &ix))?;
        }
        Arc::make_mut(&mut meta.indexes).push(ix);
        self.put_collection(meta)?;
        Ok(true)
    }

    pub fn drop_index(&mut self, meta: &mut CollectionMeta, name: &str) -> CmdResult<()> {
        let Some(pos) = meta.indexes.iter().position(|ix| ix.name == name) else {
            return Err(CommandError::new(27, "IndexNotFound", format!("index not found with name [{name}]")));
        };
        self.writer()?.claims.change_definition(meta.id, &meta.ns())?;
        let ix = Arc::make_mut(&mut meta.indexes).remove(pos);
        Self::remove_range(&mut self.index, &index_prefix(meta, &ix))?;
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
            let id = format1_key(&dec("1.0"));
            t.docs.insert(doc_key(&meta, &id).as_slice(), old.to_vec().unwrap().as_slice()).unwrap();
            t.index.insert(entry_key(&meta, &ix, &format1_key(&dec("2.50")), &id).as_slice(), id.as_slice()).unwrap();
            t.meta.insert("key_format", 1).unwrap();
            // A store that old kept no document counts either.
            t.meta.remove(crate::storage::COUNTS_READY).unwrap();
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

#[cfg(test)]
mod transaction_tests {
    use super::*;
    use crate::storage::Storage;
    use bson::doc;
    use std::time::Duration;

    /// Every reader sees a transaction's own writes merged over its
    /// snapshot, and nothing of them outside it until commit.
    #[test]
    fn readers_see_the_transactions_own_writes_and_only_it_does() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let wtxn = storage.begin_write(Duration::from_secs(5)).unwrap().unwrap();
        let mut t = Tables::open_write(&wtxn).unwrap();
        let mut meta = t.create_collection("db", "c", Document::new()).unwrap();
        t.create_index(&mut meta, &doc! {"key": {"k": 1}, "name": "k_1", "unique": true}).unwrap();
        for i in 1..=3 {
            t.insert(&meta, &doc! {"_id": i, "k": i}).unwrap();
        }
        drop(t);
        wtxn.commit().unwrap();

        let txn = storage.begin_transaction().unwrap();
        let mut t = Tables::open_transaction(&txn).unwrap();
        t.insert(&meta, &doc! {"_id": 4, "k": 4}).unwrap();
        t.delete(&meta, &doc! {"_id": 1, "k": 1}).unwrap();
        t.replace(&meta, &doc! {"_id": 2, "k": 2}, &doc! {"_id": 2, "k": 20}).unwrap();
        let ix = &meta.indexes[0];
        // The `_id`s the unique index holds for the value `k`.
        let holders = |t: &Tables<'_>, k: i32| -> usize {
            let key = keyenc::encode_one(&Bson::Int32(k));
            t.index_entries(&meta, ix, Bound::Included(key.as_slice()), Bound::Included(key.as_slice()), false).unwrap().count()
        };
        let ids = |t: &Tables<'_>| -> Vec<Bson> { t.scan(&meta).unwrap().into_iter().map(|d| d.get("_id").unwrap().clone()).collect() };
        assert_eq!(ids(&t), vec![Bson::Int32(2), Bson::Int32(3), Bson::Int32(4)]);
        assert_eq!(t.count(&meta).unwrap(), 3);
        assert_eq!(holders(&t, 2), 0);
        assert_eq!(holders(&t, 20), 1);
        assert!(t.get_by_id_key(&meta, &keyenc::encode_one(&Bson::Int32(1))).unwrap().is_none());
        // A unique value freed and taken again inside the transaction.
        t.insert(&meta, &doc! {"_id": 5, "k": 2}).unwrap();
        assert_eq!(t.insert(&meta, &doc! {"_id": 6, "k": 20}).unwrap_err().code, 11000);
        drop(t);

        let outside = storage.begin_read().unwrap();
        let r = Tables::open_read(&outside).unwrap();
        assert_eq!(ids(&r), vec![Bson::Int32(1), Bson::Int32(2), Bson::Int32(3)]);
        drop(r);
        drop(outside);
        txn.commit(&storage, Duration::from_secs(5), |_| Ok(()), |_| {}).unwrap();
        let after = storage.begin_read().unwrap();
        let r = Tables::open_read(&after).unwrap();
        assert_eq!(ids(&r), vec![Bson::Int32(2), Bson::Int32(3), Bson::Int32(4), Bson::Int32(5)]);
        assert_eq!(holders(&r, 2), 1);
    }
}

#[cfg(test)]
mod depth_tests {
    use super::*;
    use crate::storage::Storage;
    use bson::doc;
    use std::time::Duration;

    /// `{"": {"": ... {"": null}}}`: `levels` documents in about the
    /// fewest bytes that nesting can take (7 a level).
    fn nested(levels: usize) -> Document {
        let mut d = doc! {"": null};
        for _ in 1..levels {
            d = doc! {"": d};
        }
        d
    }

    #[test]
    fn a_stored_document_may_nest_100_levels_and_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let wtxn = storage.begin_write(Duration::from_secs(5)).unwrap().unwrap();
        let mut t = Tables::open_write(&wtxn).unwrap();
        let meta = t.create_collection("db", "c", Document::new()).unwrap();
        // The top level counts as one, so `x` holds 99 more.
        t.insert(&meta, &doc! {"_id": 1, "x": nested(MAX_STORED_DEPTH - 1)}).unwrap();
        let err = t.insert(&meta, &doc! {"_id": 2, "x": nested(MAX_STORED_DEPTH)}).unwrap_err();
        assert_eq!(err.code, 15, "{}", err.message);
    }
}

#[cfg(test)]
mod count_tests {
    use super::*;
    use crate::storage::{Storage, COUNTS_READY};
    use bson::doc;
    use proptest::prelude::*;
    use std::time::Duration;

    /// One write of the model: insert or delete `_id` in collection `c`.
    #[derive(Debug, Clone)]
    enum Write {
        Insert(usize, i32),
        Delete(usize, i32),
    }

    fn write_strategy() -> impl Strategy<Value = Write> {
        prop_oneof![(0usize..2, 0i32..12).prop_map(|(c, i)| Write::Insert(c, i)), (0usize..2, 0i32..12).prop_map(|(c, i)| Write::Delete(c, i))]
    }

    /// A step: autocommit writes, or a transaction (with an optional
    /// savepoint rolled back after its first writes) that commits or aborts,
    /// possibly with a second transaction committing in between.
    #[derive(Debug, Clone)]
    enum Step {
        Autocommit(Vec<Write>),
        Transaction { before: Vec<Write>, rolled_back: Vec<Write>, after: Vec<Write>, commit: bool, concurrent: Vec<Write> },
        Drop(usize),
    }

    fn step_strategy() -> impl Strategy<Value = Step> {
        let writes = || proptest::collection::vec(write_strategy(), 0..6);
        prop_oneof![
            4 => writes().prop_map(Step::Autocommit),
            4 => (writes(), writes(), writes(), any::<bool>(), writes())
                .prop_map(|(before, rolled_back, after, commit, concurrent)| Step::Transaction { before, rolled_back, after, commit, concurrent }),
            1 => (0usize..2).prop_map(Step::Drop),
        ]
    }

    fn apply(t: &mut Tables<'_>, metas: &[CollectionMeta], w: &Write) {
        match *w {
            // A duplicate `_id` is refused and changes nothing.
            Write::Insert(c, i) => drop(t.insert(&metas[c], &doc! {"_id": i})),
            // Deleting a missing document removes nothing.
            Write::Delete(c, i) => t.delete(&metas[c], &doc! {"_id": i}).unwrap(),
        }
    }

    /// The counts `t` reports and the documents it holds, per collection.
    fn check(t: &Tables<'_>, metas: &[CollectionMeta]) -> Result<(), TestCaseError> {
        for meta in metas {
            prop_assert_eq!(t.count(meta).unwrap(), t.scan(meta).unwrap().len() as u64);
        }
        Ok(())
    }

    fn collections(storage: &Storage) -> Vec<CollectionMeta> {
        let wtxn = storage.begin_write(Duration::from_secs(5)).unwrap().unwrap();
        let mut t = Tables::open_write(&wtxn).unwrap();
        let metas = ["a", "b"].iter().map(|n| t.ensure_collection("db", n).unwrap()).collect();
        drop(t);
        wtxn.commit().unwrap();
        metas
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        /// The stored count of every collection equals the number of its
        /// documents, in autocommit writes, inside a transaction (its own
        /// pending writes, a rolled-back savepoint) and after it commits
        /// over another transaction's commit, or aborts, and after a drop.
        #[test]
        fn counts_match_the_documents(steps in proptest::collection::vec(step_strategy(), 1..8)) {
            let dir = tempfile::tempdir().unwrap();
            let storage = Storage::open(dir.path()).unwrap();
            let mut metas = collections(&storage);
            for step in &steps {
                match step {
                    Step::Autocommit(writes) => {
                        for w in writes {
                            let wtxn = storage.begin_write(Duration::from_secs(5)).unwrap().unwrap();
                            let mut t = Tables::open_write(&wtxn).unwrap();
                            apply(&mut t, &metas, w);
                            check(&t, &metas)?;
                            drop(t);
                            wtxn.commit().unwrap();
                        }
                    }
                    Step::Transaction { before, rolled_back, after, commit, concurrent } => {
                        let txn = storage.begin_transaction().unwrap();
                        let mut t = Tables::open_transaction(&txn).unwrap();
                        for w in before { apply(&mut t, &metas, w); }
                        txn.savepoint("s").unwrap();
                        for w in rolled_back { apply(&mut t, &metas, w); }
                        check(&t, &metas)?;
                        drop(t);
                        txn.rollback_to_savepoint("s").unwrap();
                        let mut t = Tables::open_transaction(&txn).unwrap();
                        for w in after { apply(&mut t, &metas, w); }
                        check(&t, &metas)?;
                        drop(t);
                        // Another transaction, on its own snapshot, commits
                        // first (when their documents do not collide).
                        let other = storage.begin_transaction().unwrap();
                        let mut o = Tables::open_transaction(&other).unwrap();
                        let mut collided = false;
                        for w in concurrent {
                            let (Write::Insert(c, i) | Write::Delete(c, i)) = *w;
                            let r = match w {
                                Write::Insert(..) => o.insert(&metas[c], &doc! {"_id": i}),
                                Write::Delete(..) => o.delete(&metas[c], &doc! {"_id": i}),
                            };
                            collided |= r.as_ref().is_err_and(|e| e.code != 11000);
                        }
                        drop(o);
                        if !collided {
                            other.commit(&storage, Duration::from_secs(5), |_| Ok(()), |_| {}).unwrap();
                        }
                        if *commit {
                            // A write conflict with `other` fails the commit: nothing applied.
                            let _ = txn.commit(&storage, Duration::from_secs(5), |_| Ok(()), |_| {});
                        }
                    }
                    Step::Drop(c) => {
                        let wtxn = storage.begin_write(Duration::from_secs(5)).unwrap().unwrap();
                        let mut t = Tables::open_write(&wtxn).unwrap();
                        t.drop_collection(&metas[*c]).unwrap();
                        drop(t);
                        wtxn.commit().unwrap();
                        metas = collections(&storage);
                    }
                }
                let read = storage.begin_read().unwrap();
                check(&Tables::open_read(&read).unwrap(), &metas)?;
            }
        }
    }

    /// A store written before counts were kept gets them counted at open.
    #[test]
    fn a_store_without_counts_is_counted_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = Storage::open(dir.path()).unwrap();
            let metas = collections(&storage);
            let wtxn = storage.begin_write(Duration::from_secs(5)).unwrap().unwrap();
            let mut t = Tables::open_write(&wtxn).unwrap();
            for i in 0..5 {
                t.insert(&metas[0], &doc! {"_id": i}).unwrap();
            }
            t.insert(&metas[1], &doc! {"_id": 1}).unwrap();
            drop(t);
            // What an older version left: no counts, no marker.
            let txn = wtxn.txn().unwrap();
            txn.delete_table(COUNTS).unwrap();
            txn.open_table(META).unwrap().remove(COUNTS_READY).unwrap();
            wtxn.commit().unwrap();
        }
        let storage = Storage::open(dir.path()).unwrap();
        let read = storage.begin_read().unwrap();
        let t = Tables::open_read(&read).unwrap();
        let metas: Vec<_> = ["a", "b"].iter().map(|n| t.collection("db", n).unwrap().unwrap()).collect();
        assert_eq!(t.count(&metas[0]).unwrap(), 5);
        assert_eq!(t.count(&metas[1]).unwrap(), 1);
    }

    /// A build that does not keep counts wrote the store after this one (a
    /// downgrade, then an upgrade): its documents are counted at open.
    #[test]
    fn counts_left_stale_by_an_older_build_are_redone_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let storage = Storage::open(dir.path()).unwrap();
            let metas = collections(&storage);
            let wtxn = storage.begin_write(Duration::from_secs(5)).unwrap().unwrap();
            let mut t = Tables::open_write(&wtxn).unwrap();
            for i in 0..5 {
                t.insert(&metas[0], &doc! {"_id": i}).unwrap();
            }
            drop(t);
            wtxn.commit().unwrap();
            // The older build's writes: documents, with the marker it never
            // knew about left in place and no count moved.
            let wtxn = storage.begin_write(Duration::from_secs(5)).unwrap().unwrap();
            let mut t = Tables::open_write(&wtxn).unwrap();
            t.insert(&metas[1], &doc! {"_id": 1}).unwrap();
            t.insert(&metas[0], &doc! {"_id": 5}).unwrap();
            drop(t);
            wtxn.count_deltas().deltas.borrow_mut().clear();
            wtxn.commit().unwrap();
        }
        let storage = Storage::open(dir.path()).unwrap();
        let read = storage.begin_read().unwrap();
        let t = Tables::open_read(&read).unwrap();
        let metas: Vec<_> = ["a", "b"].iter().map(|n| t.collection("db", n).unwrap().unwrap()).collect();
        assert_eq!(t.count(&metas[0]).unwrap(), 6);
        assert_eq!(t.count(&metas[1]).unwrap(), 1);
    }
}

#[cfg(test)]
mod journal_tests {
    use super::Tables;
    use crate::storage::Storage;
    use bson::doc;
    use std::time::Duration;

    /// A `j: false` commit leaves the journal to the next durable commit:
    /// a transaction's commit is one, so no extra commit is made after it
    /// (before, the housekeeping made one, an fsync, after every
    /// `bulk_create`, whose id counter update is sent with `j: false`).
    #[test]
    fn a_transaction_commit_makes_earlier_unjournaled_commits_durable() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let wtxn = storage.begin_write(Duration::from_secs(5)).unwrap().unwrap();
        let mut t = Tables::open_write(&wtxn).unwrap();
        let meta = t.create_collection("db", "c", doc! {}).unwrap();
        drop(t);
        wtxn.commit().unwrap();

        let mut wtxn = storage.begin_write(Duration::from_secs(5)).unwrap().unwrap();
        Tables::open_write(&wtxn).unwrap().insert(&meta, &doc! {"_id": 1}).unwrap();
        wtxn.skip_journal();
        wtxn.commit().unwrap();

        let txn = storage.begin_transaction().unwrap();
        Tables::open_transaction(&txn).unwrap().insert(&meta, &doc! {"_id": 2}).unwrap();
        txn.commit(&storage, Duration::from_secs(5), |_| Ok(()), |_| {}).unwrap();
        assert!(!storage.flush_journal(Duration::ZERO).unwrap(), "nothing left to make durable");

        let mut wtxn = storage.begin_write(Duration::from_secs(5)).unwrap().unwrap();
        Tables::open_write(&wtxn).unwrap().insert(&meta, &doc! {"_id": 3}).unwrap();
        wtxn.skip_journal();
        wtxn.commit().unwrap();
        assert!(storage.flush_journal(Duration::ZERO).unwrap(), "an unjournaled commit is flushed");
        assert!(!storage.flush_journal(Duration::ZERO).unwrap());
    }
}
