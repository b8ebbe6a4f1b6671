//! `$group` with the n-ary accumulators and `$median`/`$percentile`.
use crate::pipeline::{run_pipeline, NoCollections};
use bson::{doc, Bson, Document};

fn run(stages: Vec<Document>, input: Vec<Document>) -> Vec<Document> {
    run_pipeline(&stages, input, &NoCollections).unwrap()
}

fn group_err(spec: Document, input: Vec<Document>) -> i32 {
    run_pipeline(&[doc! {"$group": spec}], input, &NoCollections).unwrap_err().code
}

/// MongoDB's manual example data: player scores per game.
fn games() -> Vec<Document> {
    vec![
        doc! {"playerId": "PlayerA", "gameId": "G1", "score": 31},
        doc! {"playerId": "PlayerB", "gameId": "G1", "score": 33},
        doc! {"playerId": "PlayerC", "gameId": "G1", "score": 99},
        doc! {"playerId": "PlayerD", "gameId": "G1", "score": 1},
        doc! {"playerId": "PlayerA", "gameId": "G2", "score": 10},
        doc! {"playerId": "PlayerB", "gameId": "G2", "score": 14},
        doc! {"playerId": "PlayerC", "gameId": "G2", "score": 66},
        doc! {"playerId": "PlayerD", "gameId": "G2", "score": 80},
    ]
}

fn strs(v: &[&str]) -> Bson {
    Bson::Array(v.iter().map(|s| Bson::String(s.to_string())).collect())
}

#[test]
fn top_and_bottom_pick_by_their_own_sort() {
    let out = run(
        vec![doc! {"$group": {
            "_id": "$gameId",
            "top3": {"$topN": {"n": 3, "sortBy": {"score": -1}, "output": "$playerId"}},
            "bottom2": {"$bottomN": {"n": 2, "sortBy": {"score": -1}, "output": ["$playerId", "$score"]}},
            "best": {"$top": {"sortBy": {"score": -1}, "output": "$playerId"}},
            "worst": {"$bottom": {"sortBy": {"score": -1}, "output": "$playerId"}},
        }}],
        games(),
    );
    assert_eq!(out[0].get("top3"), Some(&strs(&["PlayerC", "PlayerB", "PlayerA"])));
    assert_eq!(
        out[0].get("bottom2"),
        Some(&Bson::Array(vec![
            Bson::Array(vec!["PlayerA".into(), 31.into()]),
            Bson::Array(vec!["PlayerD".into(), 1.into()]),
        ]))
    );
    assert_eq!(out[1].get("best"), Some(&Bson::String("PlayerD".into())));
    assert_eq!(out[1].get("worst"), Some(&Bson::String("PlayerA".into())));
}

#[test]
fn top_and_bottom_ties_nulls_and_missing() {
    let input = vec![
        doc! {"_id": 1, "k": 2, "o": "a"},
        doc! {"_id": 2, "k": 1},
        doc! {"_id": 3, "k": 2, "o": "c"},
        doc! {"_id": 4, "o": "d"},
        doc! {"_id": 5, "k": 2, "o": null},
    ];
    let out = run(
        vec![doc! {"$group": {
            "_id": null,
            "top2": {"$topN": {"n": 2, "sortBy": {"k": -1}, "output": "$o"}},
            "bottom2": {"$bottomN": {"n": 2, "sortBy": {"k": 1}, "output": "$o"}},
            "low": {"$top": {"sortBy": {"k": 1}, "output": "$o"}},
            "many": {"$topN": {"n": 10, "sortBy": {"k": 1, "_id": -1}, "output": "$_id"}},
        }}],
        input,
    );
    // Tied keys: the earlier documents win, and come out in arrival order.
    assert_eq!(out[0].get("top2"), Some(&strs(&["a", "c"])));
    assert_eq!(out[0].get("bottom2"), Some(&strs(&["a", "c"])));
    // A missing sort key sorts as null, lowest; a missing output is null.
    assert_eq!(out[0].get("low"), Some(&Bson::String("d".into())));
    assert_eq!(out[0].get("many"), Some(&Bson::Array(vec![4.into(), 2.into(), 5.into(), 3.into(), 1.into()])));
}

#[test]
fn first_last_max_min_n_and_their_null_rules() {
    let input = vec![
        doc! {"g": 1, "s": 1},
        doc! {"g": 1, "s": 2},
        doc! {"g": 1, "s": 3},
        doc! {"g": 1},
        doc! {"g": 1, "s": null},
    ];
    let out = run(
        vec![doc! {"$group": {
            "_id": "$g",
            "first5": {"$firstN": {"input": "$s", "n": 5}},
            "last2": {"$lastN": {"input": "$s", "n": 2}},
            "max2": {"$maxN": {"input": "$s", "n": 2}},
            "min9": {"$minN": {"input": "$s", "n": 9}},
        }}],
        input,
    );
    // $firstN/$lastN keep nulls (missing becomes null); $maxN/$minN skip them.
    assert_eq!(
        out[0].get("first5"),
        Some(&Bson::Array(vec![1.into(), 2.into(), 3.into(), Bson::Null, Bson::Null]))
    );
    assert_eq!(out[0].get("last2"), Some(&Bson::Array(vec![Bson::Null, Bson::Null])));
    assert_eq!(out[0].get("max2"), Some(&Bson::Array(vec![3.into(), 2.into()])));
    assert_eq!(out[0].get("min9"), Some(&Bson::Array(vec![1.into(), 2.into(), 3.into()])));
}

#[test]
fn n_is_computed_from_the_group_key() {
    // The manual's example: n depends on the _id document's gameId.
    let n = doc! {"$cond": {"if": {"$eq": ["$gameId", "G2"]}, "then": 1, "else": 3}};
    let out = run(
        vec![
            doc! {"$group": {"_id": {"gameId": "$gameId"}, "scores": {"$firstN": {"input": "$score", "n": n.clone()}}}},
            doc! {"$sort": {"_id.gameId": 1}},
        ],
        games(),
    );
    assert_eq!(out[0].get("scores"), Some(&Bson::Array(vec![31.into(), 33.into(), 99.into()])));
    assert_eq!(out[1].get("scores"), Some(&Bson::Array(vec![10.into()])));
    // With a scalar _id, n sees an empty document: "$gameId" is missing, so
    // the $cond takes its else branch, and a bare "$gameId" is no number.
    let out = run(vec![doc! {"$group": {"_id": "$gameId", "s": {"$firstN": {"input": "$score", "n": n}}}}], games());
    assert_eq!(out[1].get("s"), Some(&Bson::Array(vec![10.into(), 14.into(), 66.into()])));
    assert_eq!(group_err(doc! {"_id": "$gameId", "s": {"$firstN": {"input": "$score", "n": "$gameId"}}}, games()), 5787902);
}

#[test]
fn n_ary_bad_specs_carry_mongodb_codes() {
    let g = |acc: Document| group_err(doc! {"_id": null, "x": acc}, games());
    assert_eq!(g(doc! {"$firstN": [1]}), 5787801);
    assert_eq!(g(doc! {"$maxN": "$score"}), 5787900);
    assert_eq!(g(doc! {"$firstN": {"input": "$score", "n": 1, "k": 1}}), 5787901);
    assert_eq!(g(doc! {"$lastN": {"input": "$score"}}), 5787906);
    assert_eq!(g(doc! {"$minN": {"n": 2}}), 5787907);
    assert_eq!(g(doc! {"$firstN": {"input": "$score", "n": "two"}}), 5787902);
    assert_eq!(g(doc! {"$firstN": {"input": "$score", "n": 1.5}}), 5787903);
    assert_eq!(g(doc! {"$firstN": {"input": "$score", "n": 0}}), 5787908);
    assert_eq!(g(doc! {"$topN": 1}), 5788001);
    assert_eq!(g(doc! {"$top": {"n": 1, "sortBy": {"score": 1}, "output": "$score"}}), 5788002);
    assert_eq!(g(doc! {"$topN": {"sortBy": {"score": 1}, "output": "$score"}}), 5788003);
    assert_eq!(g(doc! {"$bottomN": {"n": 1, "sortBy": {"score": 1}}}), 5788004);
    assert_eq!(g(doc! {"$bottom": {"output": "$score"}}), 5788005);
    assert_eq!(g(doc! {"$top": {"sortBy": {"score": 2}, "output": "$score"}}), 15975);
    assert_eq!(g(doc! {"$accumulator": {}}), 15952);
}

#[test]
fn median_and_percentile_answer_input_values() {
    let input: Vec<Document> = [4, 1, 3, 2].iter().map(|v| doc! {"g": "even", "v": v}).chain(
        [5, 1, 4, 2, 3].iter().map(|v| doc! {"g": "odd", "v": v}),
    ).chain([doc! {"g": "even", "v": "x"}, doc! {"g": "even"}, doc! {"g": "none", "v": "x"}]).collect();
    let out = run(
        vec![
            doc! {"$group": {
                "_id": "$g",
                "med": {"$median": {"input": "$v", "method": "approximate"}},
                "pct": {"$percentile": {"input": "$v", "p": [0, 0.25, 0.5, 0.9, 1], "method": "approximate"}},
            }},
            doc! {"$sort": {"_id": 1}},
        ],
        input,
    );
    let doubles = |v: &[f64]| Bson::Array(v.iter().map(|f| Bson::Double(*f)).collect());
    // Rank ceil(p * n) - 1 of the sorted numbers: the median of 1..4 is 2.
    assert_eq!(out[0].get("med"), Some(&Bson::Double(2.0)));
    assert_eq!(out[0].get("pct"), Some(&doubles(&[1.0, 1.0, 2.0, 4.0, 4.0])));
    // No numbers at all: null, and one null per requested percentile.
    assert_eq!(out[1].get("med"), Some(&Bson::Null));
    assert_eq!(out[1].get("pct"), Some(&Bson::Array(vec![Bson::Null; 5])));
    assert_eq!(out[2].get("med"), Some(&Bson::Double(3.0)));
    assert_eq!(out[2].get("pct"), Some(&doubles(&[1.0, 2.0, 3.0, 5.0, 5.0])));
}

#[test]
fn percentile_bad_specs_carry_mongodb_codes() {
    let g = |acc: Document| group_err(doc! {"_id": null, "x": acc}, games());
    assert_eq!(g(doc! {"$median": "$score"}), 7436100);
    assert_eq!(g(doc! {"$percentile": "$score"}), 7429703);
    assert_eq!(g(doc! {"$median": {"input": "$score"}}), 40414);
    assert_eq!(g(doc! {"$percentile": {"input": "$score", "method": "approximate"}}), 40414);
    assert_eq!(g(doc! {"$median": {"input": "$score", "p": [0.5], "method": "approximate"}}), 40415);
    assert_eq!(g(doc! {"$median": {"input": "$score", "method": "exact"}}), 2);
    assert_eq!(g(doc! {"$median": {"input": "$score", "method": 1}}), 14);
    let p = |p: Bson| g(doc! {"$percentile": {"input": "$score", "p": p, "method": "approximate"}});
    assert_eq!(p(Bson::String("$score".into())), 7750300);
    assert_eq!(p(Bson::Array(vec![])), 7750301);
    assert_eq!(p(Bson::Double(0.5)), 7750301);
    assert_eq!(p(Bson::Array(vec!["a".into()])), 7750302);
    assert_eq!(p(Bson::Array(vec![1.5.into()])), 7750303);
}
