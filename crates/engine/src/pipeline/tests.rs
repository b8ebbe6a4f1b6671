use super::*;
use bson::{bson, doc};
use std::collections::HashMap;

struct Source(HashMap<String, Vec<Document>>);

impl CollectionSource for Source {
    fn scan(&self, collection: &str) -> Result<Vec<Document>> {
        Ok(self.0.get(collection).cloned().unwrap_or_default())
    }
}

fn src() -> Source {
    let mut m = HashMap::new();
    m.insert(
        "authors".to_string(),
        vec![doc! {"_id": 1, "name": "ann"}, doc! {"_id": 2, "name": "bob"}, doc! {"_id": 3, "name": "cy", "tags": ["x"]}],
    );
    Source(m)
}

fn entries() -> Vec<Document> {
    vec![
        doc! {"_id": 10, "author_id": 1, "n": 5, "tags": ["a", "b"]},
        doc! {"_id": 11, "author_id": 2, "n": 7, "tags": []},
        doc! {"_id": 12, "author_id": 1, "n": 1.5},
        doc! {"_id": 13, "author_id": null, "n": null, "tags": "solo"},
    ]
}

fn run(stages: Vec<Document>, input: Vec<Document>) -> Vec<Document> {
    run_pipeline(&stages, input, &src()).unwrap()
}

#[test]
fn match_project_sort_skip_limit() {
    let out = run(
        vec![
            doc! {"$match": {"n": {"$gt": 1}}},
            doc! {"$project": {"_id": 0, "c0": "$_id", "c1": {"$multiply": ["$n", 2]}}},
            doc! {"$sort": {"c1": -1}},
            doc! {"$skip": 1},
            doc! {"$limit": 5},
        ],
        entries(),
    );
    assert_eq!(out, vec![doc! {"c0": 10, "c1": 10}, doc! {"c0": 12, "c1": 3.0}]);
}

#[test]
fn group_with_accumulators() {
    let out = run(
        vec![
            doc! {"$group": {
                "_id": "$author_id",
                "total": {"$sum": "$n"}, "count": {"$sum": 1}, "avg": {"$avg": "$n"},
                "mx": {"$max": "$n"}, "mn": {"$min": "$n"}, "ids": {"$push": "$_id"},
                "first": {"$first": "$n"}, "c": {"$count": {}}, "set": {"$addToSet": "$author_id"},
            }},
            doc! {"$sort": {"_id": 1}},
        ],
        entries(),
    );
    assert_eq!(out.len(), 3);
    assert_eq!(
        out[0],
        doc! {"_id": null, "total": 0, "count": 1, "avg": null, "mx": null, "mn": null, "ids": [13], "first": null, "c": 1, "set": [null]}
    );
    assert_eq!(
        out[1],
        doc! {"_id": 1, "total": 6.5, "count": 2, "avg": 3.25, "mx": 5, "mn": 1.5, "ids": [10, 12], "first": 5, "c": 2, "set": [1]}
    );
}

#[test]
fn group_null_id_and_numeric_keys() {
    let input = vec![doc! {"k": 1}, doc! {"k": 1.0}, doc! {"k": 1_i64}, doc! {}];
    let out = run(vec![doc! {"$group": {"_id": "$k", "n": {"$sum": 1}}}], input.clone());
    assert_eq!(out, vec![doc! {"_id": 1, "n": 3}, doc! {"_id": null, "n": 1}]);
    let out = run(vec![doc! {"$group": {"_id": null, "n": {"$sum": 1}}}], input);
    assert_eq!(out, vec![doc! {"_id": null, "n": 4}]);
    assert!(run(vec![doc! {"$group": {"_id": null}}], vec![]).is_empty());
}

#[test]
fn lookup_equality_and_pipeline() {
    let out = run(
        vec![
            doc! {"$lookup": {"from": "authors", "localField": "author_id", "foreignField": "_id", "as": "a"}},
            doc! {"$unwind": {"path": "$a", "preserveNullAndEmptyArrays": true}},
            doc! {"$project": {"_id": 1, "name": "$a.name"}},
        ],
        entries(),
    );
    assert_eq!(
        out,
        vec![doc! {"_id": 10, "name": "ann"}, doc! {"_id": 11, "name": "bob"}, doc! {"_id": 12, "name": "ann"}, doc! {"_id": 13}]
    );
    let out = run(
        vec![
            doc! {"$lookup": {"from": "authors", "let": {"aid": "$author_id"}, "pipeline": [
                {"$match": {"$expr": {"$eq": ["$_id", "$$aid"]}}},
                {"$project": {"_id": 0, "name": 1}},
            ], "as": "a"}},
            doc! {"$project": {"a": 1}},
        ],
        entries(),
    );
    assert_eq!(out[0], doc! {"_id": 10, "a": [{"name": "ann"}]});
    assert_eq!(out[3], doc! {"_id": 13, "a": []});
}

#[test]
fn lookup_combined_equality_and_pipeline() {
    let out = run(
        vec![doc! {"$lookup": {"from": "authors", "localField": "author_id", "foreignField": "_id",
            "let": {"n": "$n"}, "pipeline": [{"$project": {"_id": 0, "name": 1, "n": "$$n"}}], "as": "a"}}],
        entries(),
    );
    assert_eq!(out[0].get_array("a").unwrap(), &vec![Bson::Document(doc! {"name": "ann", "n": 5})]);
    assert_eq!(out[2].get_array("a").unwrap(), &vec![Bson::Document(doc! {"name": "ann", "n": 1.5})]);
}

#[test]
fn lookup_with_array_local_field() {
    let input = vec![doc! {"_id": 1, "refs": [1, 3]}];
    let out = run(vec![doc! {"$lookup": {"from": "authors", "localField": "refs", "foreignField": "_id", "as": "a"}}], input);
    let names: Vec<&str> = out[0].get_array("a").unwrap().iter().map(|d| d.as_document().unwrap().get_str("name").unwrap()).collect();
    assert_eq!(names, vec!["ann", "cy"]);
}

#[test]
fn unwind_forms() {
    let out = run(vec![doc! {"$unwind": "$tags"}], entries());
    let ids: Vec<i32> = out.iter().map(|d| d.get_i32("_id").unwrap()).collect();
    assert_eq!(ids, vec![10, 10, 13]);
    let out = run(
        vec![doc! {"$unwind": {"path": "$tags", "preserveNullAndEmptyArrays": true, "includeArrayIndex": "i"}}],
        entries(),
    );
    assert_eq!(out.len(), 5);
    assert_eq!(out[1].get_i64("i").unwrap(), 1);
    assert_eq!(out[2], doc! {"_id": 11, "author_id": 2, "n": 7, "i": null});
    assert_eq!(out[3].get("i"), Some(&Bson::Null));
}

#[test]
fn count_documents_facet_add_fields() {
    let out = run(vec![doc! {"$match": {"n": {"$gte": 5}}}, doc! {"$count": "__count"}], entries());
    assert_eq!(out, vec![doc! {"__count": 2}]);
    assert!(run(vec![doc! {"$match": {"n": 99}}, doc! {"$count": "c"}], entries()).is_empty());
    let out = run(vec![doc! {"$documents": [{"x": 1}]}, doc! {"$project": {"_id": 0, "c0": {"$add": ["$x", 1]}}}], vec![]);
    assert_eq!(out, vec![doc! {"c0": 2}]);
    assert!(run_pipeline(&[doc! {"$match": {}}, doc! {"$documents": []}], vec![], &src()).is_err());
    let out = run(
        vec![doc! {"$facet": {"a": [{"$count": "n"}], "b": [{"$limit": 1}, {"$project": {"_id": 1}}]}}],
        entries(),
    );
    assert_eq!(out, vec![doc! {"a": [{"n": 4}], "b": [{"_id": 10}]}]);
    let out = run(
        vec![doc! {"$addFields": {"m": {"$ifNull": ["$n", 0]}, "sub": {"k": 1}, "author_id": "$$REMOVE"}}, doc! {"$limit": 1}],
        vec![doc! {"_id": 1, "author_id": 4, "sub": {"j": 0}}],
    );
    assert_eq!(out, vec![doc! {"_id": 1, "sub": {"j": 0, "k": 1}, "m": 0}]);
    let out = run(vec![doc! {"$unset": ["n", "tags"]}, doc! {"$limit": 1}], entries());
    assert_eq!(out, vec![doc! {"_id": 10, "author_id": 1}]);
    let out = run(vec![doc! {"$replaceWith": {"a": "$_id"}}, doc! {"$limit": 1}], entries());
    assert_eq!(out, vec![doc! {"a": 10}]);
    let out = run(vec![doc! {"$unionWith": {"coll": "authors", "pipeline": [{"$match": {"_id": 2}}]}}], vec![]);
    assert_eq!(out, vec![doc! {"_id": 2, "name": "bob"}]);
    let out = run(vec![doc! {"$sortByCount": "$author_id"}], entries());
    assert_eq!(out[0], doc! {"_id": 1, "count": 2});
}

#[test]
fn stage_errors() {
    let e = run_pipeline(&[doc! {"$bogus": 1}], vec![], &src()).unwrap_err();
    assert_eq!(e.code, 40324);
    assert!(e.message.contains("$bogus"));
    assert!(run_pipeline(&[doc! {"$limit": 0}], vec![], &src()).is_err());
    assert!(run_pipeline(&[doc! {"$group": {"x": {"$sum": 1}}}], vec![], &src()).is_err());
    assert!(run_pipeline(&[doc! {"$replaceWith": "$nope"}], vec![doc! {}], &src()).is_err());
    let _ = bson!(1);
}

#[test]
fn an_unwound_lookup_gives_what_the_two_stages_give() {
    // "authors" has an author with tags; local docs name 0, 1 or 2 authors.
    let input = vec![
        doc! {"_id": 1, "refs": [1, 3], "a": "kept in place", "z": 0},
        doc! {"_id": 2, "refs": 2},
        doc! {"_id": 3, "refs": 9, "a": "no match"},
        doc! {"_id": 4},
    ];
    let lookup = doc! {"$lookup": {"from": "authors", "localField": "refs", "foreignField": "_id", "as": "a"}};
    for unwind in [
        doc! {"$unwind": "$a"},
        doc! {"$unwind": {"path": "$a", "preserveNullAndEmptyArrays": true}},
        doc! {"$unwind": {"path": "$a", "preserveNullAndEmptyArrays": true, "includeArrayIndex": "i"}},
        doc! {"$unwind": {"path": "$a", "includeArrayIndex": "i"}},
    ] {
        let together = run(vec![lookup.clone(), unwind.clone()], input.clone());
        // A stage in between keeps them apart.
        let apart = run(vec![lookup.clone(), doc! {"$set": {}}, unwind.clone()], input.clone());
        assert_eq!(together, apart, "{unwind}");
    }
    let together = run(vec![lookup, doc! {"$unwind": "$a"}], input);
    assert_eq!(together[0], doc! {"_id": 1, "refs": [1, 3], "a": {"_id": 1, "name": "ann"}, "z": 0});
    assert_eq!(together.len(), 3);
}
