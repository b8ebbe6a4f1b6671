//! Index keys: which entries a document contributes to an index, and the
//! MongoDB-shaped duplicate-key error.
use crate::catalog::IndexSpec;
use crate::error::{CmdResult, CommandError};
use crate::keyenc;
use bson::{Bson, Document};
use djongo_engine::Filter;

/// Caps the fan-out of multikey compound indexes so one hostile document
/// cannot make a write explode.
const MAX_KEYS_PER_DOCUMENT: usize = 10_000;

/// One index entry a document produces: the field values and their encoding.
#[derive(Debug, Clone)]
pub struct IndexKey {
    pub values: Vec<Bson>,
    pub encoded: Vec<u8>,
}

/// All keys `doc` contributes to `index` (none when a sparse or partial index
/// excludes it). Arrays fan out to one key per element, like MongoDB's
/// multikey indexes; missing fields index as null.
pub fn keys_for(index: &IndexSpec, doc: &Document) -> CmdResult<Vec<IndexKey>> {
    if let Some(partial) = &index.partial {
        let parsed;
        let filter = match &index.partial_filter {
            Some(filter) => filter.as_ref(),
            None => {
                parsed = Filter::parse(partial)?;
                &parsed
            }
        };
        // The filter compares under the index's collation, not under the
        // collation of the operation that writes the document.
        if !djongo_engine::collation::scoped(index.collation.clone(), || filter.matches(doc))? {
            return Ok(Vec::new());
        }
    }
    if let Some(text) = &index.text {
        return Ok(crate::text::search::index_keys(text, doc)?
            .into_iter()
            .map(|values| {
                let encoded = keyenc::encode_key(&values);
                IndexKey { values, encoded }
            })
            .collect());
    }
    if let Some(wildcard) = &index.wildcard {
        return Ok(wildcard
            .keys(doc)
            .into_iter()
            .map(|values| {
                let encoded = keyenc::encode_key(&values);
                IndexKey { values: values.to_vec(), encoded }
            })
            .collect());
    }
    match plain_single_key(index, doc) {
        Some(keys) => Ok(keys),
        None => walked_keys(index, doc),
    }
}

/// The keys of an ordered, geo or hashed index: each field's values found
/// along its path, in every combination.
fn walked_keys(index: &IndexSpec, doc: &Document) -> CmdResult<Vec<IndexKey>> {
    let mut per_field: Vec<Vec<Bson>> = Vec::new();
    let mut all_missing = true;
    let mut geo_missing = true;
    for (field, direction) in index.key.iter() {
        if crate::geo_index::is_geo_direction(direction) {
            // A 2dsphere field: one key per shape, the document refused if
            // a value is not a valid shape.
            match crate::geo_index::field_keys(doc, field)? {
                Some(keys) => {
                    geo_missing = false;
                    per_field.push(keys);
                }
                None => per_field.push(vec![Bson::Null]),
            }
            continue;
        }
        let mut values = Vec::new();
        if crate::hashed::is_hashed_direction(direction) {
            let mut raw = Vec::new();
            collect_document_path(doc, &field.split('.').collect::<Vec<_>>(), EmptyArray::Undefined, &mut raw);
            if path_meets_array(doc, field) {
                raw.push(Bson::Array(Vec::new()));
            }
            all_missing &= raw.is_empty();
            per_field.push(vec![crate::hashed::key_value(field, &raw)?]);
            continue;
        }
        collect_document_path(doc, &field.split('.').collect::<Vec<_>>(), EmptyArray::Undefined, &mut values);
        if values.is_empty() {
            values.push(Bson::Null);
        } else {
            all_missing = false;
        }
        dedup(&mut values);
        per_field.push(values);
    }
    if index.sparse && all_missing {
        return Ok(Vec::new());
    }
    // 2dsphere indexes (version 2 and up) leave out documents without a shape.
    if crate::geo_index::is_geo_index(index) && geo_missing {
        return Ok(Vec::new());
    }
    let descending = index.descending();
    let encode = |values: Vec<Bson>| {
        let encoded = match &index.collation {
            Some(c) => keyenc::encode_directed(&values.iter().map(|v| collation_key(c, v)).collect::<Vec<_>>(), &descending),
            None => keyenc::encode_directed(&values, &descending),
        };
        IndexKey { values, encoded }
    };
    // One field (most indexes): a key per value, without building
    // combinations (too many values fail below, as combinations would).
    if let [values] = per_field.as_mut_slice() {
        if values.len() <= MAX_KEYS_PER_DOCUMENT {
            return Ok(std::mem::take(values).into_iter().map(|v| encode(vec![v])).collect());
        }
    }
    let mut combos: Vec<Vec<Bson>> = vec![Vec::new()];
    for values in per_field {
        let mut next = Vec::with_capacity(combos.len() * values.len());
        for combo in &combos {
            for v in &values {
                let mut c = combo.clone();
                c.push(v.clone());
                next.push(c);
            }
        }
        if next.len() > MAX_KEYS_PER_DOCUMENT {
            return Err(CommandError::new(
                10088,
                "CannotIndexParallelArrays",
                format!("document produces too many keys for index {}", index.name),
            ));
        }
        combos = next;
    }
    Ok(combos.into_iter().map(encode).collect())
}

/// The keys of the commonest index and value, without the general walk:
/// one top-level field in ascending or descending order (no dotted path, no
/// collation, not geo or hashed) whose value is not an array, so it has one
/// entry, that value (null when missing). `None` sends every other case to
/// the general path, which gives the same keys here, at several times the
/// cost (a split path, a list per field, a deduplicating set).
fn plain_single_key(index: &IndexSpec, doc: &Document) -> Option<Vec<IndexKey>> {
    let mut fields = index.key.iter();
    let (field, direction) = fields.next()?;
    if fields.next().is_some() || field.contains('.') || index.collation.is_some() {
        return None;
    }
    if crate::geo_index::is_geo_direction(direction) || crate::hashed::is_hashed_direction(direction) {
        return None;
    }
    let value = match doc.get(field) {
        Some(Bson::Array(_)) => return None,
        Some(v) => v.clone(),
        None if index.sparse => return Some(Vec::new()),
        None => Bson::Null,
    };
    let values = vec![value];
    let encoded = keyenc::encode_directed(&values, &index.descending());
    Some(vec![IndexKey { values, encoded }])
}

/// A value as a collated index keys it (as mongod does): each string, at
/// any depth, by its collation key, in hex so that it stays a string whose
/// order is the key's byte order.
fn collation_key(collation: &djongo_engine::collation::Collation, value: &Bson) -> Bson {
    match value {
        Bson::String(s) | Bson::Symbol(s) => {
            let key = collation.sort_key(s);
            let mut hex = String::with_capacity(key.len() * 2);
            for byte in key {
                use std::fmt::Write;
                let _ = write!(hex, "{byte:02x}");
            }
            Bson::String(hex)
        }
        Bson::Array(items) => Bson::Array(items.iter().map(|v| collation_key(collation, v)).collect()),
        Bson::Document(d) => Bson::Document(d.iter().map(|(k, v)| (k.clone(), collation_key(collation, v))).collect()),
        other => other.clone(),
    }
}

/// Whether `doc` meets an array on one of `index`'s paths: then it may have
/// several entries, and an entry holds an element rather than the field's
/// value (a "multikey" document, as MongoDB calls it).
pub fn is_multikey_document(index: &IndexSpec, doc: &Document) -> bool {
    index.fields().any(|field| path_meets_array(doc, field))
}

/// Whether the dotted `field` of `doc` is or passes through an array.
pub fn path_meets_array(doc: &Document, field: &str) -> bool {
    // The path is walked as split, without collecting it: this runs for
    // every index of every written document.
    let mut path = field.split('.');
    let mut value = path.next().and_then(|head| doc.get(head));
    loop {
        match value {
            Some(Bson::Array(_)) => return true,
            Some(Bson::Document(d)) => match path.next() {
                Some(head) => value = d.get(head),
                None => return false,
            },
            _ => return false,
        }
    }
}

/// `collect_path` starting at a document (without wrapping it in a `Bson`).
pub fn collect_document_path(doc: &Document, path: &[&str], empty: EmptyArray, out: &mut Vec<Bson>) {
    if let Some((head, rest)) = path.split_first() {
        if let Some(v) = doc.get(*head) {
            collect_path(v, rest, empty, out);
        }
    }
}

/// What an empty array at the end of a path contributes to `collect_path`.
#[derive(Clone, Copy)]
pub enum EmptyArray {
    /// Nothing (`distinct`).
    Skip,
    /// An `undefined` key, so the document still has an index entry.
    Undefined,
}

/// Walks a dotted path, descending into arrays the way MongoDB's indexing and
/// `distinct` do: a leaf array contributes its elements.
pub fn collect_path(value: &Bson, path: &[&str], empty: EmptyArray, out: &mut Vec<Bson>) {
    let Some((head, rest)) = path.split_first() else {
        match value {
            Bson::Array(items) if items.is_empty() => {
                if let EmptyArray::Undefined = empty {
                    out.push(Bson::Undefined)
                }
            }
            Bson::Array(items) => out.extend(items.iter().cloned()),
            other => out.push(other.clone()),
        }
        return;
    };
    match value {
        Bson::Document(d) => {
            if let Some(v) = d.get(*head) {
                collect_path(v, rest, empty, out);
            }
        }
        Bson::Array(items) => {
            if let Ok(i) = head.parse::<usize>() {
                if let Some(v) = items.get(i) {
                    collect_path(v, rest, empty, out);
                }
            } else {
                for item in items {
                    if let Bson::Document(_) = item {
                        collect_path(item, path, empty, out);
                    }
                }
            }
        }
        _ => {}
    }
}

fn dedup(values: &mut Vec<Bson>) {
    // Nearly every field holds one value: nothing to compare it with.
    if values.len() < 2 {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    values.retain(|v| seen.insert(keyenc::encode_one(v)));
}

/// The error MongoDB returns for a unique violation; pymongo keys
/// DuplicateKeyError on code 11000, Django on the message.
pub fn duplicate_key_error(ns: &str, index_name: &str, key_pattern: &Document, values: &[Bson]) -> CommandError {
    let mut key_value = Document::new();
    let mut shown = Vec::new();
    for (field, value) in key_pattern.keys().zip(values) {
        key_value.insert(field.clone(), value.clone());
        shown.push(format!("{field}: {}", shell_repr(value)));
    }
    let mut err = CommandError::new(
        11000,
        "DuplicateKey",
        format!("E11000 duplicate key error collection: {ns} index: {index_name} dup key: {{ {} }}", shown.join(", ")),
    );
    err.extra.insert("keyPattern", key_pattern.clone());
    err.extra.insert("keyValue", key_value);
    err
}

/// Formats a value roughly as the mongo shell does in error messages.
pub fn shell_repr(v: &Bson) -> String {
    match v {
        Bson::String(s) => format!("{s:?}"),
        Bson::ObjectId(o) => format!("ObjectId('{}')", o.to_hex()),
        Bson::Null | Bson::Undefined => "null".to_string(),
        Bson::Int32(i) => i.to_string(),
        Bson::Int64(i) => i.to_string(),
        Bson::Double(f) => f.to_string(),
        Bson::Boolean(b) => b.to_string(),
        Bson::Document(d) => {
            let parts: Vec<String> = d.iter().map(|(k, v)| format!("{k}: {}", shell_repr(v))).collect();
            format!("{{ {} }}", parts.join(", "))
        }
        Bson::Array(items) => format!("[ {} ]", items.iter().map(shell_repr).collect::<Vec<_>>().join(", ")),
        Bson::DateTime(dt) => format!("new Date({})", dt.timestamp_millis()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn spec(d: Document) -> IndexSpec {
        IndexSpec::from_spec(1, &d).unwrap()
    }

    #[test]
    fn missing_fields_index_as_null() {
        let keys = keys_for(&spec(doc! {"key": {"a": 1}}), &doc! {"b": 1}).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].values, vec![Bson::Null]);
    }

    #[test]
    fn sparse_skips_missing() {
        let keys = keys_for(&spec(doc! {"key": {"a": 1}, "sparse": true}), &doc! {"b": 1}).unwrap();
        assert!(keys.is_empty());
    }

    #[test]
    fn arrays_fan_out_and_paths_descend() {
        let keys = keys_for(&spec(doc! {"key": {"t": 1}}), &doc! {"t": [1, 2, 2]}).unwrap();
        assert_eq!(keys.len(), 2);
        let keys = keys_for(&spec(doc! {"key": {"a.b": 1}}), &doc! {"a": [{"b": 1}, {"b": 3}]}).unwrap();
        assert_eq!(keys.len(), 2);
        let keys = keys_for(&spec(doc! {"key": {"a": 1, "b": 1}}), &doc! {"a": 1, "b": "x"}).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].values, vec![Bson::Int32(1), Bson::String("x".into())]);
    }

    #[test]
    fn multikey_documents_meet_an_array_on_an_indexed_path() {
        let ix = spec(doc! {"key": {"a.b": 1, "c": -1}});
        assert!(!is_multikey_document(&ix, &doc! {"a": {"b": 1}, "c": 2}));
        assert!(!is_multikey_document(&ix, &doc! {"a": 5}));
        assert!(is_multikey_document(&ix, &doc! {"a": [{"b": 1}]}));
        assert!(is_multikey_document(&ix, &doc! {"a": {"b": []}}));
        assert!(is_multikey_document(&ix, &doc! {"c": [1]}));
        assert!(!is_multikey_document(&ix, &doc! {"d": [1]}));
    }

    #[test]
    fn descending_fields_reverse_their_order() {
        let ix = spec(doc! {"key": {"a": 1, "b": -1}});
        let k = |a: i32, b: i32| keys_for(&ix, &doc! {"a": a, "b": b}).unwrap().remove(0).encoded;
        assert!(k(1, 5) < k(1, 3));
        assert!(k(1, 3) < k(2, 9));
    }

    proptest::proptest! {
        /// The shortcut for one plain field gives exactly the keys the
        /// general walk gives, whenever it answers.
        #[test]
        fn the_single_field_shortcut_agrees_with_the_walk(
            value in proptest::option::of(crate::test_support::arb_value()),
            descending in proptest::bool::ANY,
            sparse in proptest::bool::ANY,
        ) {
            let ix = spec(doc! {"key": {"a": if descending { -1 } else { 1 }}, "sparse": sparse});
            let mut d = doc! {"b": 1};
            if let Some(v) = value {
                d.insert("a", v);
            }
            if let Some(short) = plain_single_key(&ix, &d) {
                let walked = walked_keys(&ix, &d).unwrap();
                proptest::prop_assert_eq!(short.len(), walked.len());
                for (s, w) in short.iter().zip(&walked) {
                    proptest::prop_assert_eq!(&s.encoded, &w.encoded);
                    // Compared as printed: NaN is not equal to itself, but
                    // the two must carry the same value of the same type.
                    proptest::prop_assert_eq!(format!("{:?}", s.values), format!("{:?}", w.values));
                }
            }
        }
    }

    #[test]
    fn the_single_field_shortcut_leaves_arrays_paths_and_collations_to_the_walk() {
        assert!(plain_single_key(&spec(doc! {"key": {"a": 1}}), &doc! {"a": [1]}).is_none());
        assert!(plain_single_key(&spec(doc! {"key": {"a.b": 1}}), &doc! {"a": {"b": 1}}).is_none());
        assert!(plain_single_key(&spec(doc! {"key": {"a": 1, "b": 1}}), &doc! {"a": 1}).is_none());
        assert!(plain_single_key(&spec(doc! {"key": {"a": "hashed"}}), &doc! {"a": 1}).is_none());
        assert!(plain_single_key(&spec(doc! {"key": {"a": 1}, "collation": {"locale": "en"}}), &doc! {"a": "x"}).is_none());
        assert!(plain_single_key(&spec(doc! {"key": {"a": 1}}), &doc! {"a": {"b": [1]}}).is_some());
    }

    #[test]
    fn dup_message_shape() {
        let e = duplicate_key_error("db.users", "email_1", &doc! {"email": 1}, &[Bson::String("a@b".into())]);
        assert_eq!(e.code, 11000);
        assert_eq!(e.message, "E11000 duplicate key error collection: db.users index: email_1 dup key: { email: \"a@b\" }");
        assert_eq!(e.extra.get_document("keyValue").unwrap(), &doc! {"email": "a@b"});
    }
}
