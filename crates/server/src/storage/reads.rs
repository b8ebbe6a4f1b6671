//! The ordered reads the query planner uses: documents by `_id` range and
//! index entries by key range, in either direction.
//!
//! Everything here is built on two primitives of `Tables`, `key_range` and
//! `key_get`, so a different layer under `Tables` (a transaction's snapshot
//! plus its own writes, say) only has to provide those.
use super::tables::{decode, doc_prefix, index_prefix, multikey_marker, KeyRange, KeySpace, Tables};
use crate::catalog::{CollectionMeta, IndexSpec};
use crate::error::{CmdResult, CommandError};
use crate::keyenc::prefix_end;
use bson::{Bson, Document, RawDocument};
use std::collections::HashSet;
use std::ops::Bound;

/// One index entry: the encoded key (the indexed values, descending fields
/// complemented) and the `_id` key of its document.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub key: Vec<u8>,
    pub id: Vec<u8>,
}

/// Stored documents (BSON bytes) in `_id` order (or reversed), with their
/// `_id` keys; [`decode_fields`] reads them.
pub struct DocumentRange<'a> {
    rows: KeyRange<'a>,
    prefix_len: usize,
}

impl DocumentRange<'_> {
    /// The next document's `_id` key and the document, decoded (see
    /// [`decode_fields`]) straight from the stored bytes.
    pub fn next_document(&mut self, fields: Option<&HashSet<String>>) -> Option<CmdResult<(Vec<u8>, Document)>> {
        let prefix_len = self.prefix_len;
        self.rows.next_with(|key, value| Ok((key.get(prefix_len..).unwrap_or_default().to_vec(), decode_fields(value, fields)?)))
    }
}

impl DocumentRange<'_> {
    /// [`DocumentRange::next_document`] for documents `keep` accepts: it sees
    /// the stored bytes first, and a document it refuses (`None`) is never
    /// decoded.
    pub fn next_document_where(&mut self, fields: Option<&HashSet<String>>, keep: impl FnOnce(&[u8]) -> CmdResult<bool>) -> Option<CmdResult<(Vec<u8>, Option<Document>)>> {
        let prefix_len = self.prefix_len;
        self.rows.next_with(|key, value| {
            let doc = if keep(value)? { Some(decode_fields(value, fields)?) } else { None };
            Ok((key.get(prefix_len..).unwrap_or_default().to_vec(), doc))
        })
    }

    /// Hands the next document's stored bytes to `f`, where the store holds
    /// them (no copy, nothing decoded).
    pub fn visit_next<T>(&mut self, f: impl FnOnce(&RawDocument) -> CmdResult<T>) -> Option<CmdResult<T>> {
        self.rows.next_with(|_, value| f(RawDocument::from_bytes(value).map_err(|e| CommandError::internal(format!("corrupt stored document: {e}")))?))
    }
}

impl Iterator for DocumentRange<'_> {
    type Item = CmdResult<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let prefix_len = self.prefix_len;
        self.rows.next_with(|key, value| Ok((key.get(prefix_len..).unwrap_or_default().to_vec(), value.to_vec())))
    }
}

/// A stored document, with only `fields` (top-level names) and `_id`
/// decoded when a set is given: the others are skipped over, unread.
pub fn decode_fields(bytes: &[u8], fields: Option<&HashSet<String>>) -> CmdResult<Document> {
    let Some(fields) = fields else { return decode(bytes) };
    let corrupt = |e: bson::error::Error| CommandError::internal(format!("corrupt stored document: {e}"));
    let raw = RawDocument::from_bytes(bytes).map_err(corrupt)?;
    let mut doc = Document::new();
    // A few names are found sooner by comparing them (mostly their lengths)
    // than by hashing every field name of every document read.
    let few = fields.len() <= 8;
    let wanted = |key: &str| if few { fields.iter().any(|f| f == key) } else { fields.contains(key) };
    for element in raw.iter() {
        let (key, value) = element.map_err(corrupt)?;
        let key = key.as_str();
        if key == "_id" || wanted(key) {
            doc.insert(key, Bson::try_from(value).map_err(corrupt)?);
        }
    }
    Ok(doc)
}

/// `_id` keys of documents in `_id` order, without reading the documents.
pub struct IdRange<'a> {
    rows: KeyRange<'a>,
    prefix_len: usize,
}

impl IdRange<'_> {
    /// How many documents are left in the range, copying none of them.
    pub fn count(self) -> CmdResult<u64> {
        self.rows.count_remaining()
    }
}

impl Iterator for IdRange<'_> {
    type Item = CmdResult<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        let prefix_len = self.prefix_len;
        self.rows.next_with(|key, _| Ok(key.get(prefix_len..).unwrap_or_default().to_vec()))
    }
}

/// Entries of one index in key order (or reversed).
pub struct EntryRange<'a> {
    rows: KeyRange<'a>,
    prefix_len: usize,
    unique: bool,
}

impl EntryRange<'_> {
    /// The `_id` key of the next entry's document (its value), without
    /// copying the entry's key.
    pub fn next_id(&mut self) -> Option<CmdResult<Vec<u8>>> {
        self.rows.next_with(|_, id| Ok(id.to_vec()))
    }

    /// How many entries are left, counting no further than `cap`.
    pub fn count_up_to(mut self, cap: u64) -> CmdResult<u64> {
        let mut n = 0u64;
        while n < cap {
            match self.rows.next_with(|_, _| Ok(())) {
                Some(step) => step?,
                None => break,
            }
            n += 1;
        }
        Ok(n)
    }

    /// How many documents the rest of the range holds entries of. Every
    /// entry counts, unless `seen` is given (a multikey index, where a
    /// document may have several entries): then only documents not in it
    /// yet, and they are added.
    pub fn count_documents(mut self, seen: Option<&mut HashSet<Vec<u8>>>) -> CmdResult<u64> {
        let mut n = 0u64;
        if let Some(seen) = seen {
            while let Some(id) = self.next_id() {
                if seen.insert(id?) {
                    n += 1;
                }
            }
        } else {
            n = self.rows.count_remaining()?;
        }
        Ok(n)
    }
}

impl Iterator for EntryRange<'_> {
    type Item = CmdResult<IndexEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        let (prefix_len, unique) = (self.prefix_len, self.unique);
        self.rows.next_with(|key, id| {
            // Non-unique entries end with the `_id` key (also their value).
            let end = if unique { key.len() } else { key.len().saturating_sub(id.len()) };
            Ok(IndexEntry { key: key.get(prefix_len..end).unwrap_or_default().to_vec(), id: id.to_vec() })
        })
    }
}

/// A bound relative to `prefix` made absolute; an unbounded side becomes the
/// first key at or after `floor`, or the end of the prefix.
fn absolute_start(prefix: &[u8], floor: &[u8], bound: Bound<&[u8]>) -> Bound<Vec<u8>> {
    let join = |rel: &[u8]| [prefix, rel].concat();
    match bound {
        Bound::Included(rel) => Bound::Included(join(rel)),
        Bound::Excluded(rel) => Bound::Excluded(join(rel)),
        Bound::Unbounded => Bound::Included(join(floor)),
    }
}

fn absolute_end(prefix: &[u8], bound: Bound<&[u8]>) -> Bound<Vec<u8>> {
    let join = |rel: &[u8]| [prefix, rel].concat();
    match bound {
        Bound::Included(rel) => Bound::Included(join(rel)),
        Bound::Excluded(rel) => Bound::Excluded(join(rel)),
        Bound::Unbounded => match prefix_end(prefix) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        },
    }
}

fn as_slices(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Index entries start with a type class byte, never 0x00 (the multikey
/// marker's byte); an unbounded scan starts after it.
const FIRST_ENTRY: &[u8] = &[0x01];

impl Tables<'_> {
    fn collection_rows(&self, meta: &CollectionMeta, start: Bound<&[u8]>, end: Bound<&[u8]>, reverse: bool) -> CmdResult<KeyRange<'_>> {
        let prefix = doc_prefix(meta);
        let (start, end) = (absolute_start(&prefix, &[], start), absolute_end(&prefix, end));
        self.key_range(KeySpace::Documents, as_slices(&start), as_slices(&end), reverse)
    }

    /// Stored documents of `meta` whose encoded `_id` lies between the bounds.
    pub fn documents_between(&self, meta: &CollectionMeta, start: Bound<&[u8]>, end: Bound<&[u8]>, reverse: bool) -> CmdResult<DocumentRange<'_>> {
        Ok(DocumentRange { rows: self.collection_rows(meta, start, end, reverse)?, prefix_len: doc_prefix(meta).len() })
    }

    /// The `_id` keys of the documents whose encoded `_id` lies between the
    /// bounds, without decoding them.
    pub fn ids_between(&self, meta: &CollectionMeta, start: Bound<&[u8]>, end: Bound<&[u8]>) -> CmdResult<IdRange<'_>> {
        Ok(IdRange { rows: self.collection_rows(meta, start, end, false)?, prefix_len: doc_prefix(meta).len() })
    }

    /// Entries of `ix` whose encoded key lies between the bounds.
    pub fn index_entries(&self, meta: &CollectionMeta, ix: &IndexSpec, start: Bound<&[u8]>, end: Bound<&[u8]>, reverse: bool) -> CmdResult<EntryRange<'_>> {
        let prefix = index_prefix(meta, ix);
        let (start, end) = (absolute_start(&prefix, FIRST_ENTRY, start), absolute_end(&prefix, end));
        let rows = self.key_range(KeySpace::IndexEntries, as_slices(&start), as_slices(&end), reverse)?;
        Ok(EntryRange { rows, prefix_len: prefix.len(), unique: ix.unique })
    }

    /// The stored bytes of the document whose `_id` key is `id`.
    pub fn stored_document(&self, meta: &CollectionMeta, id: &[u8]) -> CmdResult<Option<Vec<u8>>> {
        self.key_get(KeySpace::Documents, &[&doc_prefix(meta)[..], id].concat())
    }

    /// The document whose `_id` key is `id`, decoded (see [`decode_fields`])
    /// straight from the stored bytes.
    pub fn fetch_document(&self, meta: &CollectionMeta, id: &[u8], fields: Option<&HashSet<String>>) -> CmdResult<Option<Document>> {
        self.key_get_with(KeySpace::Documents, &[&doc_prefix(meta)[..], id].concat(), |bytes| decode_fields(bytes, fields))
    }

    /// [`Tables::fetch_document`] for a document `keep` accepts (it sees the
    /// stored bytes first): `Some(None)` when it refuses it, which is then
    /// not decoded.
    pub fn fetch_document_where(
        &self,
        meta: &CollectionMeta,
        id: &[u8],
        fields: Option<&HashSet<String>>,
        keep: impl FnOnce(&[u8]) -> CmdResult<bool>,
    ) -> CmdResult<Option<Option<Document>>> {
        self.key_get_with(KeySpace::Documents, &[&doc_prefix(meta)[..], id].concat(), |bytes| if keep(bytes)? { Ok(Some(decode_fields(bytes, fields)?)) } else { Ok(None) })
    }

    /// Hands the stored bytes of the document keyed `id` to `f`, where the
    /// store holds them (no copy); `None` if there is no such document.
    pub fn visit_document<T>(&self, meta: &CollectionMeta, id: &[u8], f: impl FnOnce(&RawDocument) -> CmdResult<T>) -> CmdResult<Option<T>> {
        self.key_get_with(KeySpace::Documents, &[&doc_prefix(meta)[..], id].concat(), |bytes| {
            let raw = RawDocument::from_bytes(bytes).map_err(|e| CommandError::internal(format!("corrupt stored document: {e}")))?;
            f(raw)
        })
    }

    /// Whether some document ever met an array on a path of `ix`, so that
    /// it may have several entries, each holding an element.
    pub fn is_multikey(&self, meta: &CollectionMeta, ix: &IndexSpec) -> CmdResult<bool> {
        let marker = multikey_marker(meta, ix);
        if let Some(known) = self.memo().and_then(|m| m.lock().multikey.get(&marker).copied()) {
            return Ok(known);
        }
        let multikey = self.key_get_with(KeySpace::IndexEntries, &marker, |_| Ok(()))?.is_some();
        if let Some(memo) = self.memo() {
            memo.lock().multikey.insert(marker, multikey);
        }
        Ok(multikey)
    }
}
