use super::*;
use bson::{doc, Bson};

fn run(stage: Document, input: Vec<Document>) -> Result<Vec<Document>> {
    run_pipeline(&[stage], input, &NoCollections)
}

fn prices() -> Vec<Document> {
    vec![
        doc! {"_id": 1, "p": 5, "t": "a"},
        doc! {"_id": 2, "p": 15.5, "t": "b"},
        doc! {"_id": 3, "p": 10, "t": "c"},
        doc! {"_id": 4, "p": "n/a", "t": "d"},
        doc! {"_id": 5, "t": "e"},
        doc! {"_id": 6, "p": 250, "t": "f"},
    ]
}

#[test]
fn bucket_groups_by_boundaries_with_default() {
    let out = run(doc! {"$bucket": {"groupBy": "$p", "boundaries": [0, 10, 100], "default": "other"}}, prices()).unwrap();
    assert_eq!(out, vec![doc! {"_id": 0, "count": 1}, doc! {"_id": 10, "count": 2}, doc! {"_id": "other", "count": 3}]);
    let out = run(
        doc! {"$bucket": {"groupBy": "$p", "boundaries": [0, 10, 300], "default": -1,
            "output": {"titles": {"$push": "$t"}, "avg": {"$avg": "$p"}}}},
        prices(),
    )
    .unwrap();
    // With `output`, only the listed fields (no count); the default sorts by value.
    assert_eq!(out[0], doc! {"_id": -1, "titles": ["d", "e"], "avg": null});
    assert_eq!(out[2], doc! {"_id": 10, "titles": ["b", "c", "f"], "avg": 91.83333333333333});
}

#[test]
fn bucket_errors() {
    let code = |s: Document| run(doc! {"$bucket": s}, prices()).unwrap_err().code;
    assert_eq!(code(doc! {"groupBy": "$p", "boundaries": [0, 10, 300]}), 40066);
    assert_eq!(code(doc! {"groupBy": "$p"}), 40198);
    assert_eq!(code(doc! {"groupBy": "p", "boundaries": [0, 1]}), 40202);
    assert_eq!(code(doc! {"groupBy": "$p", "boundaries": [0]}), 40192);
    assert_eq!(code(doc! {"groupBy": "$p", "boundaries": [0, "a"]}), 40193);
    assert_eq!(code(doc! {"groupBy": "$p", "boundaries": [5, 1]}), 40194);
    assert_eq!(code(doc! {"groupBy": "$p", "boundaries": [0, 10], "default": 5}), 40199);
    assert_eq!(code(doc! {"groupBy": "$p", "boundaries": [0, 10], "output": 1}), 40196);
    assert_eq!(code(doc! {"groupBy": "$p", "boundaries": [0, 10], "x": 1}), 40197);
    assert_eq!(run(doc! {"$bucket": 1}, vec![]).unwrap_err().code, 40201);
}

#[test]
fn bucket_auto_splits_evenly_without_splitting_equal_values() {
    let input: Vec<Document> = [1, 2, 2, 2, 3, 4, 5, 6].iter().enumerate().map(|(i, v)| doc! {"_id": i as i32, "v": v}).collect();
    let out = run(doc! {"$bucketAuto": {"groupBy": "$v", "buckets": 3}}, input.clone()).unwrap();
    assert_eq!(
        out,
        vec![
            // round(8 / 3) = 3 per bucket; the 2s stay together.
            doc! {"_id": {"min": 1, "max": 3}, "count": 4},
            doc! {"_id": {"min": 3, "max": 6}, "count": 3},
            doc! {"_id": {"min": 6, "max": 6}, "count": 1},
        ]
    );
    // Fewer documents than buckets: one bucket per document.
    let out = run(doc! {"$bucketAuto": {"groupBy": "$v", "buckets": 20, "output": {"s": {"$sum": "$v"}}}}, input[..2].to_vec()).unwrap();
    assert_eq!(out, vec![doc! {"_id": {"min": 1, "max": 2}, "s": 1}, doc! {"_id": {"min": 2, "max": 2}, "s": 2}]);
    let code = |s: Document| run(doc! {"$bucketAuto": s}, vec![]).unwrap_err().code;
    assert_eq!(code(doc! {"groupBy": "$v", "buckets": 0}), 40243);
    assert_eq!(code(doc! {"groupBy": "$v", "buckets": "x"}), 40241);
    assert_eq!(code(doc! {"groupBy": "$v"}), 40246);
    assert_eq!(code(doc! {"groupBy": "$v", "buckets": 2, "y": 1}), 40245);
}

#[test]
fn sample_picks_distinct_documents() {
    let input: Vec<Document> = (0..50).map(|i| doc! {"_id": i}).collect();
    let out = run(doc! {"$sample": {"size": 10}}, input.clone()).unwrap();
    let mut ids: Vec<i32> = out.iter().map(|d| d.get_i32("_id").unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 10);
    assert_eq!(run(doc! {"$sample": {"size": 500}}, input.clone()).unwrap().len(), 50);
    assert!(run(doc! {"$sample": {"size": 0}}, input.clone()).unwrap().is_empty());
    let code = |s: Bson| run(doc! {"$sample": s}, vec![]).unwrap_err().code;
    assert_eq!(code(Bson::Int32(3)), 28745);
    assert_eq!(code(Bson::Document(doc! {})), 28749);
    assert_eq!(code(Bson::Document(doc! {"size": "a"})), 28746);
    assert_eq!(code(Bson::Document(doc! {"size": -1})), 28747);
    assert_eq!(code(Bson::Document(doc! {"size": 1, "x": 1})), 28748);
}
