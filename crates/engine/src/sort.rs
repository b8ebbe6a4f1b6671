//! Sorting documents by a sort specification `{field: 1 | -1, ...}`.
//!
//! Like MongoDB, a field holding an array sorts by its smallest element in an
//! ascending sort and its largest in a descending one; missing sorts as null, and an
//! empty array below null.
use crate::compare::cmp_bson;
use crate::{path, EngineError, Result};
use bson::{Bson, Document};
use std::cmp::Ordering;

/// A parsed sort specification.
#[derive(Debug, Clone)]
pub struct SortSpec {
    keys: Vec<(Vec<String>, bool)>,
}

impl SortSpec {
    pub fn parse(spec: &Document) -> Result<SortSpec> {
        if spec.is_empty() {
            return Err(EngineError::location(15976, "$sort stage must have at least one sort key"));
        }
        let mut keys = Vec::with_capacity(spec.len());
        for (field, dir) in spec {
            let descending = match crate::num::Num::from_bson(dir).and_then(|n| n.to_i64_exact()) {
                Some(1) => false,
                Some(-1) => true,
                _ => match dir {
                    Bson::Document(d) if d.contains_key("$meta") => {
                        return Err(EngineError::unsupported(format!("sort by {dir}")));
                    }
                    _ => {
                        return Err(EngineError::location(15975, format!("$sort key ordering must be 1 (for ascending) or -1 (for descending), not {dir} for field {field}")));
                    }
                },
            };
            keys.push((path::split(field), descending));
        }
        Ok(SortSpec { keys })
    }

    /// The sort keys: (field path, descending).
    pub fn fields(&self) -> &[(Vec<String>, bool)] {
        &self.keys
    }

    /// The values a document sorts by, one per key.
    pub fn key_of(&self, doc: &Document) -> Vec<Bson> {
        self.keys
            .iter()
            .map(|(p, desc)| {
                let mut best: Option<Bson> = None;
                let mut consider = |v: &Bson| {
                    let better = match &best {
                        None => true,
                        Some(b) => {
                            let o = cmp_bson(v, b);
                            if *desc { o == Ordering::Greater } else { o == Ordering::Less }
                        }
                    };
                    if better {
                        best = Some(v.clone());
                    }
                };
                for v in path::query_values(doc, p) {
                    match v {
                        None => consider(&Bson::Null),
                        // MongoDB's sort order puts an empty array below null and missing:
                        // first in an ascending sort, last in a descending one. MinKey ranks
                        // just below null.
                        Some(Bson::Array(a)) if a.is_empty() => consider(&Bson::MinKey),
                        Some(Bson::Array(a)) => a.iter().for_each(&mut consider),
                        Some(other) => consider(other),
                    }
                }
                best.unwrap_or(Bson::Null)
            })
            .collect()
    }

    /// Orders two documents' sort keys (from [`SortSpec::key_of`]).
    pub fn compare_keys(&self, a: &[Bson], b: &[Bson]) -> Ordering {
        for ((x, y), (_, desc)) in a.iter().zip(b.iter()).zip(self.keys.iter()) {
            let o = cmp_bson(x, y);
            if o != Ordering::Equal {
                return if *desc { o.reverse() } else { o };
            }
        }
        Ordering::Equal
    }

    /// Stable sort of `docs`.
    pub fn sort(&self, docs: &mut [Document]) {
        let mut keyed: Vec<(Vec<Bson>, Document)> =
            docs.iter_mut().map(|d| (self.key_of(d), std::mem::take(d))).collect();
        keyed.sort_by(|a, b| self.compare_keys(&a.0, &b.0));
        for (slot, (_, d)) in docs.iter_mut().zip(keyed) {
            *slot = d;
        }
    }
}

impl SortSpec {
    /// Puts the first `k` documents in sort order at the front, as a stable
    /// sort would, and drops the rest (a top-k sort: O(n log k)).
    pub fn sort_top(&self, docs: &mut Vec<Document>, k: usize) {
        if k >= docs.len() {
            self.sort(docs);
            return;
        }
        let mut keyed: Vec<(Vec<Bson>, usize, Document)> =
            docs.drain(..).enumerate().map(|(i, d)| (self.key_of(&d), i, d)).collect();
        let order = |a: &(Vec<Bson>, usize, Document), b: &(Vec<Bson>, usize, Document)| self.compare_keys(&a.0, &b.0).then(a.1.cmp(&b.1));
        if k > 0 {
            keyed.select_nth_unstable_by(k - 1, order);
        }
        keyed.truncate(k);
        keyed.sort_by(order);
        docs.extend(keyed.into_iter().map(|(_, _, d)| d));
    }
}

pub fn sort_documents(docs: &mut [Document], spec: &Document) -> Result<()> {
    SortSpec::parse(spec)?.sort(docs);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn sorts_across_types_with_missing_as_null() {
        let mut docs = vec![
            doc! {"_id": 1, "a": "x"},
            doc! {"_id": 2, "a": 5},
            doc! {"_id": 3},
            doc! {"_id": 4, "a": null},
            doc! {"_id": 5, "a": 2.5},
        ];
        sort_documents(&mut docs, &doc! {"a": 1}).unwrap();
        let ids: Vec<i32> = docs.iter().map(|d| d.get_i32("_id").unwrap()).collect();
        assert_eq!(ids, vec![3, 4, 5, 2, 1]);
    }

    #[test]
    fn arrays_sort_by_min_or_max() {
        let mut docs = vec![doc! {"_id": 1, "a": [1, 10]}, doc! {"_id": 2, "a": [5]}];
        sort_documents(&mut docs, &doc! {"a": 1}).unwrap();
        assert_eq!(docs[0].get_i32("_id").unwrap(), 1);
        sort_documents(&mut docs, &doc! {"a": -1}).unwrap();
        assert_eq!(docs[0].get_i32("_id").unwrap(), 1);
    }

    #[test]
    fn empty_array_sorts_below_null_and_missing() {
        let mut docs = vec![
            doc! {"_id": 1, "a": 1},
            doc! {"_id": 2, "a": []},
            doc! {"_id": 3},
            doc! {"_id": 4, "a": null},
            doc! {"_id": 5, "a": [0, 1]},
        ];
        let ids = |docs: &[Document]| docs.iter().map(|d| d.get_i32("_id").unwrap()).collect::<Vec<_>>();
        sort_documents(&mut docs, &doc! {"a": 1, "_id": 1}).unwrap();
        assert_eq!(ids(&docs), vec![2, 3, 4, 5, 1]);
        sort_documents(&mut docs, &doc! {"a": -1, "_id": 1}).unwrap();
        assert_eq!(ids(&docs), vec![1, 5, 3, 4, 2]);
    }

    #[test]
    fn top_k_is_the_head_of_a_stable_sort() {
        let docs: Vec<Document> = (0..50).map(|i| doc! {"_id": i, "a": (i * 7) % 5}).collect();
        let spec = SortSpec::parse(&doc! {"a": -1}).unwrap();
        for k in [0, 1, 3, 10, 49, 50, 60] {
            let mut full = docs.clone();
            spec.sort(&mut full);
            full.truncate(k);
            let mut top = docs.clone();
            spec.sort_top(&mut top, k);
            assert_eq!(top, full, "k = {k}");
        }
    }

    #[test]
    fn stable_and_compound() {
        let mut docs = vec![
            doc! {"_id": 1, "a": 1, "b": 2},
            doc! {"_id": 2, "a": 1, "b": 1},
            doc! {"_id": 3, "a": 0, "b": 1},
            doc! {"_id": 4, "a": 1, "b": 1},
        ];
        sort_documents(&mut docs, &doc! {"a": -1, "b": 1}).unwrap();
        let ids: Vec<i32> = docs.iter().map(|d| d.get_i32("_id").unwrap()).collect();
        assert_eq!(ids, vec![2, 4, 1, 3]);
        assert!(sort_documents(&mut docs, &doc! {"a": 2}).is_err());
    }
}
