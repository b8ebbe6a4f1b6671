//! Running a pipeline over documents as they come, reading no more input
//! than it needs: per-document stages before a `$limit` work through the
//! input in growing batches until the limit is met, and a `$group` takes
//! its input one batch at a time instead of all at once.
use super::group::Grouper;
use super::join::{Lookup, Unwind};
use super::{non_negative, run_before, run_with_vars, single_stage, spec_doc, CollectionSource};
use crate::expr::Vars;
use crate::Result;
use bson::{doc, Bson, Document};

/// Stages that turn each input document into zero or more output documents
/// on their own, in input order.
const PER_DOCUMENT: &[&str] = &["$match", "$project", "$addFields", "$set", "$unset", "$replaceRoot", "$replaceWith", "$unwind", "$lookup", "$redact"];

/// Stages that read another collection each time they run: batching them
/// would read it once per batch.
const READS_COLLECTIONS: &[&str] = &["$lookup"];

const FIRST_BATCH: usize = 16;
const MAX_BATCH: usize = 65_536;
const GROUP_BATCH: usize = 1024;

/// Runs `stages` over the documents `input` yields.
pub fn run_pipeline_from(stages: &[Document], input: &mut dyn Iterator<Item = Result<Document>>, source: &dyn CollectionSource) -> Result<Vec<Document>> {
    run_pipeline_from_with_vars(stages, input, source, &Vars::new())
}

/// Runs `stages` over the documents `input` yields, with variables in scope
/// (a command's `let`).
pub fn run_pipeline_from_with_vars(
    stages: &[Document],
    input: &mut dyn Iterator<Item = Result<Document>>,
    source: &dyn CollectionSource,
    vars: &Vars,
) -> Result<Vec<Document>> {
    let mut names = Vec::with_capacity(stages.len());
    for s in stages {
        names.push(single_stage(s)?.0);
    }
    let prefix = names.iter().take_while(|n| PER_DOCUMENT.contains(n)).count();
    let (head, rest) = stages.split_at(prefix);
    let reads_collections = names[..prefix].iter().any(|n| READS_COLLECTIONS.contains(n));
    match needed(rest) {
        Some(needed) => {
            let mut out = Vec::new();
            let mut batch = needed.clamp(FIRST_BATCH, MAX_BATCH);
            while out.len() < needed {
                let chunk = take(input, batch)?;
                if chunk.is_empty() {
                    break;
                }
                out.extend(run_before(head, rest, chunk, source, vars)?);
                batch = (batch * 2).min(MAX_BATCH);
            }
            run_with_vars(rest, out, source, vars)
        }
        None => match rest.first().map(single_stage).transpose()? {
            // After a `$lookup` and the `$unwind` of its result (Django's
            // count over a join), `$count` is what MongoDB defines it as, a
            // `$group` by null summing 1 then a `$project` dropping `_id`:
            // so it takes the join's streamed group below, where the joined
            // documents are read for their join key alone, not decoded.
            Some(("$count", Bson::String(field))) if valid_count_field(field) && unwound_lookup(head)?.is_some() => {
                let mut counted: Vec<Document> = head.to_vec();
                let mut sum = Document::new();
                sum.insert("_id", Bson::Null);
                sum.insert(field.as_str(), doc! {"$sum": 1});
                counted.push(doc! {"$group": sum});
                counted.push(doc! {"$project": {"_id": 0}});
                counted.extend(rest[1..].iter().cloned());
                run_pipeline_from_with_vars(&counted, input, source, vars)
            }
            Some(("$group", spec)) => {
                let mut grouper = Grouper::new(spec_doc("$group", spec)?)?;
                let batch = if reads_collections { usize::MAX } else { GROUP_BATCH };
                // A $lookup unwound right before the $group (a join then an
                // aggregate, Django's annotate() over a relation) hands each
                // joined document to the group as it is made: they are never
                // all held at once.
                let joined = unwound_lookup(head)?;
                let before = if joined.is_some() { prefix - 2 } else { prefix };
                let split = match &joined {
                    Some((lookup, unwind)) if unwind.index_field.is_none() => grouper.split_at(&lookup.as_field),
                    _ => None,
                };
                loop {
                    let chunk = take(input, batch)?;
                    if chunk.is_empty() {
                        break;
                    }
                    let docs = run_before(&head[..before], &stages[before..], chunk, source, vars)?;
                    match &joined {
                        Some((lookup, unwind)) if split.is_some() => {
                            let sides = split.as_deref().unwrap_or_default();
                            lookup.group_unwound(unwind, docs, source, vars, rest, &mut grouper, sides)?
                        }
                        Some((lookup, unwind)) => lookup.apply_unwound_into(unwind, docs, source, vars, rest, |doc| grouper.add(&doc, vars))?,
                        None => {
                            for doc in docs {
                                grouper.add(&doc, vars)?;
                            }
                        }
                    }
                }
                run_with_vars(&rest[1..], grouper.finish(), source, vars)
            }
            _ => {
                let all = take(input, usize::MAX)?;
                run_with_vars(stages, all, source, vars)
            }
        },
    }
}

/// Whether `$count` accepts `field` (else the stage itself reports why).
fn valid_count_field(field: &str) -> bool {
    !field.is_empty() && !field.starts_with('$') && !field.contains('.')
}

/// The `$lookup` and `$unwind` that end `head`, when the `$unwind` unwinds
/// exactly the lookup's results (see `run_before`).
fn unwound_lookup(head: &[Document]) -> Result<Option<(Lookup, Unwind)>> {
    let [.., lookup, unwind] = head else { return Ok(None) };
    let (("$lookup", lookup), ("$unwind", unwind)) = (single_stage(lookup)?, single_stage(unwind)?) else {
        return Ok(None);
    };
    let (lookup, unwind) = (Lookup::parse(spec_doc("$lookup", lookup)?)?, Unwind::parse(unwind)?);
    Ok(lookup.unwound_by(&unwind).then_some((lookup, unwind)))
}

/// How many documents the per-document stages must produce for `rest`,
/// when it starts with `$limit` (or `$skip` then `$limit`).
fn needed(rest: &[Document]) -> Option<usize> {
    let mut skip = 0usize;
    for stage in rest.iter().take(2) {
        match single_stage(stage).ok()? {
            ("$skip", n) => skip = skip.checked_add(non_negative("$skip", n).ok()?)?,
            ("$limit", n) => {
                let n = non_negative("$limit", n).ok().filter(|n| *n > 0)?;
                return skip.checked_add(n);
            }
            _ => return None,
        }
    }
    None
}

fn take(input: &mut dyn Iterator<Item = Result<Document>>, n: usize) -> Result<Vec<Document>> {
    let mut out = Vec::new();
    while out.len() < n {
        match input.next() {
            Some(item) => out.push(item?),
            None => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{run_pipeline, NoCollections};
    use crate::EngineError;
    use bson::{doc, Bson};

    /// Input that fails past `ok` documents, to show it is not read.
    fn input(ok: i32) -> impl Iterator<Item = Result<Document>> {
        (0..1000).map(move |i| if i < ok { Ok(doc! {"i": i, "t": [i, i + 1]}) } else { Err(EngineError::bad_value("read too far")) })
    }

    #[test]
    fn a_limit_reads_only_what_it_needs() {
        let stages = vec![doc! {"$unwind": "$t"}, doc! {"$match": {"t": {"$gte": 2}}}, doc! {"$skip": 1}, doc! {"$limit": 3}];
        let streamed = run_pipeline_from(&stages, &mut input(40), &NoCollections).unwrap();
        let all: Vec<Document> = input(40).take(40).map(|d| d.unwrap()).collect();
        assert_eq!(streamed, run_pipeline(&stages, all, &NoCollections).unwrap());
    }

    struct Entries;

    impl crate::pipeline::CollectionSource for Entries {
        fn scan(&self, collection: &str) -> Result<Vec<Document>> {
            Ok(match collection {
                "entry" => (0..30).map(|i| doc! {"_id": i, "author": i % 4, "n": i}).collect(),
                _ => Vec::new(),
            })
        }
    }

    #[test]
    fn a_group_after_a_join_gets_each_joined_document() {
        // Django's annotate(Count('entry'), Avg('entry__n')): author 3 has no
        // entries (kept by preserveNullAndEmptyArrays), author 0 has eight.
        let stages = vec![
            doc! {"$lookup": {"from": "entry", "localField": "id", "foreignField": "author", "as": "e"}},
            doc! {"$unwind": {"path": "$e", "preserveNullAndEmptyArrays": true}},
            doc! {"$group": {"_id": "$id", "c": {"$sum": {"$cond": [{"$ne": [{"$ifNull": ["$e._id", null]}, null]}, 1, 0]}}, "a": {"$avg": "$e.n"}}},
        ];
        let authors: Vec<Document> = [0, 1, 2, 5].iter().map(|i| doc! {"_id": i, "id": i}).collect();
        let streamed = run_pipeline_from(&stages, &mut authors.clone().into_iter().map(Ok), &Entries).unwrap();
        assert_eq!(streamed, run_pipeline(&stages, authors, &Entries).unwrap());
        assert_eq!(
            streamed,
            vec![
                doc! {"_id": 0, "c": 8, "a": 14.0},
                doc! {"_id": 1, "c": 8, "a": 15.0},
                doc! {"_id": 2, "c": 7, "a": 14.0},
                doc! {"_id": 5, "c": 0, "a": null},
            ]
        );
    }

    #[test]
    fn a_group_after_a_join_gives_what_the_stages_one_by_one_give() {
        // Keys and accumulators on either side of the join, with and without
        // unmatched authors kept: the key computed once per author (when it
        // reads only the author) must not change any result.
        let groups = [
            doc! {"_id": {"a": "$id", "k": "$kind"}, "c": {"$sum": 1}, "s": {"$sum": "$e.n"}, "f": {"$first": "$e._id"}, "p": {"$push": "$e"}},
            doc! {"_id": "$kind", "c": {"$sum": 1}, "m": {"$max": "$e.n"}, "ids": {"$addToSet": "$e.author"}},
            doc! {"_id": "$e.author", "c": {"$sum": 1}},
            doc! {"_id": "$id", "x": {"$sum": "$id"}, "n": {"$avg": "$e.n"}},
            doc! {"_id": "$id", "name": {"$first": "$kind"}, "e": {"$last": "$e"}, "mixed": {"$sum": {"$add": ["$id", "$e.n"]}}},
            doc! {"_id": "$id", "name": {"$first": "$kind"}, "c": {"$sum": {"$cond": [{"$ifNull": ["$e.n", false]}, 1, 0]}}},
            doc! {"_id": null, "e": {"$push": "$e"}, "r": {"$first": "$$ROOT"}},
            doc! {"_id": "$id", "t": {"$topN": {"n": 2, "sortBy": {"id": 1}, "output": "$e.n"}}},
        ];
        // Which of them take the split path, and which side each accumulator reads.
        let split: Vec<Option<Vec<bool>>> = groups.iter().map(|g| Grouper::new(g).unwrap().split_at("e")).collect();
        let (local, joined) = (Some(false), Some(true));
        assert_eq!(
            split.iter().map(|s| s.as_ref().map(|sides| sides.iter().map(|j| if *j { joined } else { local }).collect::<Vec<_>>())).collect::<Vec<_>>(),
            vec![Some(vec![joined; 4]), Some(vec![joined; 3]), None, Some(vec![local, joined]), None, Some(vec![local, joined]), None, None]
        );
        let authors: Vec<Document> = [0, 1, 2, 5, 3].iter().map(|i| doc! {"_id": i, "id": i, "kind": i % 2, "e": "mine"}).collect();
        for preserve in [true, false] {
            for group in &groups {
                let stages = vec![
                    doc! {"$lookup": {"from": "entry", "localField": "id", "foreignField": "author", "as": "e"}},
                    doc! {"$unwind": {"path": "$e", "preserveNullAndEmptyArrays": preserve}},
                    doc! {"$group": group.clone()},
                ];
                let streamed = run_pipeline_from(&stages, &mut authors.clone().into_iter().map(Ok), &Entries).unwrap();
                assert_eq!(streamed, run_pipeline(&stages, authors.clone(), &Entries).unwrap(), "{group} preserve={preserve}");
            }
        }
    }

    /// Entries with awkward values (numbers of three types, null, missing,
    /// strings, an array of authors), found by "index" too: `visit_equal`
    /// hands over their stored bytes, and counts how often it ran.
    struct IndexedEntries {
        /// Whether `visit_equal` finds matches (an index on the field).
        indexed: bool,
        visits: std::cell::Cell<usize>,
        raw_scans: std::cell::Cell<usize>,
        scans: std::cell::Cell<usize>,
    }

    impl IndexedEntries {
        fn new() -> IndexedEntries {
            IndexedEntries { indexed: true, visits: 0.into(), raw_scans: 0.into(), scans: 0.into() }
        }

        fn unindexed() -> IndexedEntries {
            IndexedEntries { indexed: false, ..IndexedEntries::new() }
        }

        fn entries() -> Vec<Document> {
            (0..40)
                .map(|i| {
                    let author = match i % 5 {
                        0 => Bson::Int32(i % 4),
                        1 => Bson::Int64(i64::from(i % 4)),
                        2 => Bson::Double(f64::from(i % 4)),
                        3 => Bson::Array(vec![Bson::Int32(i % 4), Bson::Int32((i + 1) % 4), Bson::Int32(i % 4)]),
                        _ => Bson::Int32(i % 4),
                    };
                    let mut d = doc! {"_id": i, "author": author};
                    match i % 7 {
                        0 => {}
                        1 => {
                            d.insert("n", Bson::Null);
                        }
                        2 => {
                            d.insert("n", "text");
                        }
                        3 => {
                            d.insert("n", f64::from(i) / 4.0);
                        }
                        4 => {
                            d.insert("n", i64::from(i) * 1_000_000_000_000);
                        }
                        _ => {
                            d.insert("n", i);
                        }
                    }
                    d.insert("sub", doc! {"v": i % 3});
                    d
                })
                .collect()
        }
    }

    impl crate::pipeline::CollectionSource for IndexedEntries {
        fn scan(&self, collection: &str) -> Result<Vec<Document>> {
            self.scans.set(self.scans.get() + 1);
            Ok(if collection == "entry" { IndexedEntries::entries() } else { Vec::new() })
        }

        fn visit_all(&self, collection: &str, visit: &mut dyn FnMut(&bson::RawDocument) -> Result<()>) -> Result<bool> {
            self.raw_scans.set(self.raw_scans.get() + 1);
            if collection == "entry" {
                for d in IndexedEntries::entries() {
                    visit(&bson::RawDocumentBuf::try_from(&d).map_err(crate::expr::raw::corrupt)?)?;
                }
            }
            Ok(true)
        }

        fn visit_equal(&self, collection: &str, field: &str, values: &[Bson], visit: &mut dyn FnMut(&bson::RawDocument) -> Result<()>) -> Result<bool> {
            if !self.indexed {
                return Ok(false);
            }
            self.visits.set(self.visits.get() + 1);
            let filter = crate::query::Filter::parse(&doc! {field: {"$in": values.to_vec()}})?;
            if collection == "entry" {
                for d in IndexedEntries::entries() {
                    if filter.matches(&d)? {
                        visit(&bson::RawDocumentBuf::try_from(&d).map_err(crate::expr::raw::corrupt)?)?;
                    }
                }
            }
            Ok(true)
        }
    }

    #[test]
    fn a_group_over_a_join_on_stored_bytes_gives_what_the_stages_one_by_one_give() {
        let groups = [
            // Django's annotate(Count('entry'), Avg('entry__n')).
            doc! {"_id": {"g0": {"$ifNull": ["$id", null]}}, "a0": {"$sum": {"$cond": [{"$ne": [{"$ifNull": ["$e._id", null]}, null]}, 1, 0]}}, "a1": {"$avg": "$e.n"}},
            doc! {"_id": "$kind", "c": {"$sum": 1}, "s": {"$sum": "$e.n"}, "mx": {"$max": "$e.n"}, "mn": {"$min": "$e.sub.v"}, "p": {"$push": "$e.n"}},
            doc! {"_id": "$id", "f": {"$first": "$e.n"}, "l": {"$last": "$e.none"}, "set": {"$addToSet": "$e.sub.v"}, "k": {"$first": "$kind"}},
            doc! {"_id": "$id", "d": {"$stdDevPop": "$e.n"}, "c": {"$sum": {"$cond": {"if": {"$gt": ["$e.n", 3]}, "then": 1, "else": 0}}}},
            doc! {"_id": null, "n": {"$sum": 1}, "lit": {"$sum": {"$literal": 2}}},
        ];
        // Authors 0-3 and 9 (no entries), ids of three numeric types, two
        // authors with equal ids (each gets every match).
        let authors: Vec<Document> = vec![
            doc! {"_id": 0, "id": 0, "kind": 0},
            doc! {"_id": 1, "id": 1_i64, "kind": 1},
            doc! {"_id": 2, "id": 2.0, "kind": 0},
            doc! {"_id": 3, "id": 3, "kind": 1},
            doc! {"_id": 4, "id": 3.0, "kind": 0},
            doc! {"_id": 9, "id": 9, "kind": 1},
        ];
        for (preserve, foreign) in [(true, "author"), (false, "author"), (true, "sub.v")] {
            for group in &groups {
                let stages = vec![
                    doc! {"$lookup": {"from": "entry", "localField": "id", "foreignField": foreign, "as": "e"}},
                    doc! {"$unwind": {"path": "$e", "preserveNullAndEmptyArrays": preserve}},
                    doc! {"$group": group.clone()},
                ];
                let one_by_one = run_pipeline(&stages, authors.clone(), &IndexedEntries::new()).unwrap();
                let source = IndexedEntries::new();
                let streamed = run_pipeline_from(&stages, &mut authors.clone().into_iter().map(Ok), &source).unwrap();
                assert_eq!((source.visits.get(), source.raw_scans.get(), source.scans.get()), (1, 0, 0), "through the index: {group}");
                assert_eq!(streamed, one_by_one, "{group} preserve={preserve} foreign={foreign}");
                // Without the index, the whole collection's stored bytes.
                let source = IndexedEntries::unindexed();
                let streamed = run_pipeline_from(&stages, &mut authors.clone().into_iter().map(Ok), &source).unwrap();
                assert_eq!((source.raw_scans.get(), source.scans.get()), (1, 0), "scanned: {group}");
                assert_eq!(streamed, one_by_one, "unindexed: {group} preserve={preserve} foreign={foreign}");
            }
        }
    }

    #[test]
    fn local_values_an_index_cannot_find_join_on_the_scanned_bytes() {
        // Null, missing and array local values (which also match entries
        // lacking the field, or equal arrays): the raw scan, not the index.
        let authors: Vec<Document> = vec![
            doc! {"_id": 0, "id": Bson::Null},
            doc! {"_id": 1},
            doc! {"_id": 2, "id": [1, 3]},
            doc! {"_id": 3, "id": [[1, 3]]},
            doc! {"_id": 4, "id": 2},
        ];
        for foreign in ["author", "nope", "sub.v"] {
            for preserve in [true, false] {
                let stages = vec![
                    doc! {"$lookup": {"from": "entry", "localField": "id", "foreignField": foreign, "as": "e"}},
                    doc! {"$unwind": {"path": "$e", "preserveNullAndEmptyArrays": preserve}},
                    doc! {"$group": {"_id": "$_id", "c": {"$sum": 1}, "s": {"$sum": "$e.n"}, "ids": {"$push": "$e._id"}}},
                ];
                let source = IndexedEntries::new();
                let streamed = run_pipeline_from(&stages, &mut authors.clone().into_iter().map(Ok), &source).unwrap();
                assert_eq!((source.visits.get(), source.raw_scans.get(), source.scans.get()), (0, 1, 0), "{foreign}");
                assert_eq!(streamed, run_pipeline(&stages, authors.clone(), &IndexedEntries::new()).unwrap(), "{foreign} preserve={preserve}");
            }
        }
    }

    #[test]
    fn a_group_over_a_join_it_cannot_compile_reads_documents() {
        let stages = vec![
            doc! {"$lookup": {"from": "entry", "localField": "id", "foreignField": "author", "as": "e"}},
            doc! {"$unwind": "$e"},
            doc! {"$group": {"_id": "$id", "s": {"$sum": {"$add": ["$e.n", 1]}}}},
        ];
        let authors: Vec<Document> = (0..3).map(|i| doc! {"_id": i, "id": i}).collect();
        let source = IndexedEntries::new();
        let streamed = run_pipeline_from(&stages, &mut authors.clone().into_iter().map(Ok), &source);
        assert_eq!((source.visits.get(), source.raw_scans.get()), (0, 0));
        assert_eq!(streamed.map_err(|e| e.code), run_pipeline(&stages, authors, &IndexedEntries::new()).map_err(|e| e.code));
    }

    #[test]
    fn a_count_over_a_join_reads_the_stored_bytes_and_counts_what_the_stages_count() {
        let authors: Vec<Document> = vec![
            doc! {"_id": 0, "id": 0},
            doc! {"_id": 1, "id": 1_i64},
            doc! {"_id": 2, "id": 9},
            doc! {"_id": 3, "id": 3.0},
        ];
        for preserve in [true, false] {
            let stages = vec![
                doc! {"$lookup": {"from": "entry", "localField": "id", "foreignField": "author", "as": "e"}},
                doc! {"$unwind": {"path": "$e", "preserveNullAndEmptyArrays": preserve}},
                doc! {"$count": "n"},
            ];
            let one_by_one = run_pipeline(&stages, authors.clone(), &IndexedEntries::new()).unwrap();
            assert_eq!(one_by_one.len(), 1);
            let source = IndexedEntries::unindexed();
            let streamed = run_pipeline_from(&stages, &mut authors.clone().into_iter().map(Ok), &source).unwrap();
            assert_eq!((source.raw_scans.get(), source.scans.get()), (1, 0), "preserve={preserve}");
            assert_eq!(streamed, one_by_one, "preserve={preserve}");
        }
        // Nothing joined: no document, as `$count` of nothing gives.
        let stages = vec![
            doc! {"$lookup": {"from": "entry", "localField": "id", "foreignField": "author", "as": "e"}},
            doc! {"$unwind": "$e"},
            doc! {"$count": "n"},
        ];
        let nobody = vec![doc! {"_id": 0, "id": 9}];
        assert!(run_pipeline_from(&stages, &mut nobody.into_iter().map(Ok), &IndexedEntries::new()).unwrap().is_empty());
        // A field `$count` refuses is refused the same way.
        let mut bad = stages.clone();
        bad[2] = doc! {"$count": "$n"};
        let streamed = run_pipeline_from(&bad, &mut authors.clone().into_iter().map(Ok), &IndexedEntries::new());
        assert_eq!(streamed.map_err(|e| e.code), run_pipeline(&bad, authors, &IndexedEntries::new()).map_err(|e| e.code));
    }

    #[test]
    fn a_group_takes_its_input_as_it_comes() {
        let stages = vec![doc! {"$group": {"_id": {"$mod": ["$i", 3]}, "n": {"$sum": 1}}}, doc! {"$sort": {"_id": 1}}];
        let out = run_pipeline_from(&stages, &mut (0..3000).map(|i| Ok(doc! {"i": i})), &NoCollections).unwrap();
        assert_eq!(out, vec![doc! {"_id": 0, "n": 1000}, doc! {"_id": 1, "n": 1000}, doc! {"_id": 2, "n": 1000}]);
        // A failing read fails the pipeline.
        assert!(run_pipeline_from(&stages, &mut input(10), &NoCollections).is_err());
    }
}
