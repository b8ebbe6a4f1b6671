//! Bounds of the indexes whose entries are not the field values in order:
//! hashed indexes (a point per hashed equality value) and wildcard indexes
//! (one covered field's bounds under its `$_path`). Neither is ever exact,
//! so the filter checks every document they fetch.
use super::bounds::{scan_bounds, KeySpan, ScanBounds};
use super::predicates::{Atom, Predicates};
use crate::catalog::IndexSpec;
use crate::hashed::{hash, is_hashed_direction};
use crate::keyenc::{encode_one, prefix_end};
use crate::wildcard::Wildcard;
use bson::{doc, Bson, Document};

fn hashable(v: &Bson) -> bool {
    !matches!(v, Bson::Array(_) | Bson::RegularExpression(_))
}

/// The bounds of a scan of hashed index `ix`: its hashed field's equalities
/// become their hashes; nothing else bounds that field.
pub fn hashed_bounds(ix: &IndexSpec, preds: &Predicates, multikey: bool) -> ScanBounds {
    let mut hashed = preds.clone();
    for (path, atoms) in hashed.fields.iter_mut() {
        if !ix.key.get(path.as_str()).is_some_and(is_hashed_direction) {
            continue;
        }
        *atoms = atoms
            .iter()
            .map(|atom| match atom {
                Atom::Eq(v) if hashable(v) => Atom::Eq(hash(v)),
                Atom::In(values) if values.iter().all(hashable) => Atom::In(values.iter().map(hash).collect()),
                _ => Atom::Other,
            })
            .collect();
    }
    let mut bounds = scan_bounds(ix, &hashed, multikey);
    bounds.exact = false;
    bounds
}

/// Whether a wildcard index's entries hold every document meeting `atom`:
/// it has no entry for a missing field (so not for null), nor for a
/// subdocument or an array as a whole.
fn wildcard_usable(atom: &Atom) -> bool {
    let plain = |v: &Bson| !matches!(v, Bson::Null | Bson::Undefined | Bson::Document(_) | Bson::Array(_) | Bson::MinKey | Bson::MaxKey);
    match atom {
        Atom::Eq(v) | Atom::Cmp(_, v) => plain(v),
        Atom::In(values) => !values.is_empty() && values.iter().all(plain),
        Atom::Other => false,
    }
}

/// The bounds of a scan of wildcard index `ix` for the first covered field
/// the filter bounds (a positional path like `a.0` is never one).
pub fn wildcard_bounds(ix: &IndexSpec, wildcard: &Wildcard, preds: &Predicates) -> ScanBounds {
    for (path, atoms) in &preds.fields {
        if !wildcard.covers(path) || path.split('.').any(|part| part.parse::<usize>().is_ok()) {
            continue;
        }
        let usable: Vec<Atom> = atoms.iter().filter(|a| wildcard_usable(a)).cloned().collect();
        if usable.is_empty() {
            continue;
        }
        let Ok(single) = IndexSpec::from_spec(ix.id, &doc! {"key": {path.as_str(): 1}}) else { continue };
        let field = Predicates { fields: vec![(path.clone(), usable)], only_fields: false };
        let inner = scan_bounds(&single, &field, true);
        if inner.used_fields == 0 {
            continue;
        }
        let prefix = encode_one(&Bson::String(path.clone()));
        let spans = inner
            .spans
            .into_iter()
            .map(|s| KeySpan {
                lo: [prefix.as_slice(), &s.lo].concat(),
                hi: match s.hi {
                    Some(hi) => Some([prefix.as_slice(), &hi].concat()),
                    None => prefix_end(&prefix),
                },
            })
            .collect();
        let mut labels = Document::new();
        labels.insert("$_path", vec![Bson::String(format!("[\"{path}\", \"{path}\"]"))]);
        if let Some(v) = inner.labels.document(single.fields()).remove(path.as_str()) {
            labels.insert(path.clone(), v);
        }
        // One value's entries are in `_id` order, one per document.
        return ScanBounds { spans, single_value_fields: inner.single_value_fields, used_fields: 1, exact: false, whole_keys: false, labels: labels.into() };
    }
    ScanBounds::unbounded()
}

/// The key pattern explain shows for a wildcard scan of `bounds`.
pub fn wildcard_key_pattern(labels: &Document) -> Option<Document> {
    let field = labels.keys().find(|k| *k != "$_path")?;
    Some(doc! {"$_path": 1, field.as_str(): 1})
}
