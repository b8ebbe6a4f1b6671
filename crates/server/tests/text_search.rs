//! Text indexes and `$text`, checked against the examples of MongoDB's
//! manual (the `$text` operator page and "Text Search in the Aggregation
//! Pipeline"), whose expected results are quoted here.
mod common;

use bson::{doc, Bson, Document};
use common::{Client, TestServer};

fn articles(c: &mut Client) {
    c.ok("db", doc! {"createIndexes": "articles", "indexes": [{"key": {"subject": "text"}, "name": "subject_text"}]});
    c.ok(
        "db",
        doc! {"insert": "articles", "documents": [
            {"_id": 1, "subject": "coffee", "author": "xyz", "views": 50},
            {"_id": 2, "subject": "Coffee Shopping", "author": "efg", "views": 5},
            {"_id": 3, "subject": "Baking a cake", "author": "abc", "views": 90},
            {"_id": 4, "subject": "baking", "author": "xyz", "views": 100},
            {"_id": 5, "subject": "Café Con Leche", "author": "abc", "views": 200},
            {"_id": 6, "subject": "Сырники", "author": "jkl", "views": 80},
            {"_id": 7, "subject": "coffee and cream", "author": "efg", "views": 10},
            {"_id": 8, "subject": "Cafe con Leche", "author": "xyz", "views": 10},
        ]},
    );
}

fn batch(reply: &Document) -> Vec<Document> {
    let cursor = reply.get_document("cursor").unwrap();
    cursor.get_array("firstBatch").unwrap().iter().map(|d| d.as_document().unwrap().clone()).collect()
}

fn find(c: &mut Client, body: Document) -> Vec<Document> {
    let mut cmd = doc! {"find": "articles"};
    cmd.extend(body);
    batch(&c.ok("db", cmd))
}

/// The `_id`s a text search finds, in `_id` order.
fn ids(c: &mut Client, text: Document) -> Vec<i32> {
    let mut ids: Vec<i32> = find(c, doc! {"filter": {"$text": text}}).iter().map(|d| d.get_i32("_id").unwrap()).collect();
    ids.sort();
    ids
}

fn error(c: &mut Client, db: &str, body: Document) -> (i32, String) {
    let reply = c.cmd(db, body);
    assert_eq!(reply.get_f64("ok").ok(), Some(0.0), "expected an error: {reply}");
    (reply.get_i32("code").unwrap(), reply.get_str("errmsg").unwrap().to_string())
}

#[test]
fn manual_text_operator_examples() {
    let server = TestServer::start();
    let mut c = server.client();
    articles(&mut c);
    // Search for a single word; stemming finds "coffee" in all three.
    assert_eq!(ids(&mut c, doc! {"$search": "coffee"}), [1, 2, 7]);
    // Match any of the terms.
    assert_eq!(ids(&mut c, doc! {"$search": "bake coffee cake"}), [1, 2, 3, 4, 7]);
    // A phrase.
    assert_eq!(ids(&mut c, doc! {"$search": "\"coffee shop\""}), [2]);
    // A negated term.
    assert_eq!(ids(&mut c, doc! {"$search": "coffee -shop"}), [1, 7]);
    // Another language.
    assert_eq!(ids(&mut c, doc! {"$search": "leche", "$language": "es"}), [5, 8]);
    // The index holds the English terms of the documents: a Russian stem
    // of the query is not among them.
    assert_eq!(ids(&mut c, doc! {"$search": "сырники"}), [6]);
    assert_eq!(ids(&mut c, doc! {"$search": "сырники", "$language": "ru"}), Vec::<i32>::new());
    // Case and diacritic insensitivity (the default).
    assert_eq!(ids(&mut c, doc! {"$search": "сы́рники CAFÉS"}), [5, 6, 8]);
    // Case sensitivity: the case-sensitive stem of "Shopping" is "Shop",
    // so "-shop" negates nothing.
    assert_eq!(ids(&mut c, doc! {"$search": "Coffee", "$caseSensitive": true}), [2]);
    assert_eq!(ids(&mut c, doc! {"$search": "\"Café Con Leche\"", "$caseSensitive": true}), [5]);
    assert_eq!(ids(&mut c, doc! {"$search": "Coffee -shop", "$caseSensitive": true}), [2]);
    // Diacritic sensitivity.
    assert_eq!(ids(&mut c, doc! {"$search": "CAFÉ", "$diacriticSensitive": true}), [5]);
    assert_eq!(ids(&mut c, doc! {"$search": "leches -cafés", "$diacriticSensitive": true}), [8]);
    // Explain shows mongod's TEXT_MATCH over the text index.
    let explain = c.ok("db", doc! {"explain": {"find": "articles", "filter": {"$text": {"$search": "coffee -shop"}}}, "verbosity": "executionStats"});
    let plan = explain.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap();
    assert_eq!(plan.get_str("stage").unwrap(), "TEXT_MATCH");
    assert_eq!(plan.get_document("parsedTextQuery").unwrap().get_array("negatedTerms").unwrap(), &vec![Bson::String("shop".into())]);
    let stats = explain.get_document("executionStats").unwrap();
    assert_eq!(stats.get_i64("nReturned").unwrap(), 2);
    assert_eq!(stats.get_i64("totalDocsExamined").unwrap(), 3);
    // The rest of the filter applies too.
    assert_eq!(find(&mut c, doc! {"filter": {"$text": {"$search": "coffee"}, "views": {"$gt": 20}}}).len(), 1);
}

#[test]
fn scores_in_projection_sort_and_limit() {
    let server = TestServer::start();
    let mut c = server.client();
    articles(&mut c);
    // "Return the relevance score": {_id: 3, subject: "Baking a cake", ..., score: 0.75}.
    let docs = find(&mut c, doc! {"filter": {"$text": {"$search": "cake"}}, "projection": {"score": {"$meta": "textScore"}}});
    assert_eq!(docs, [doc! {"_id": 3, "subject": "Baking a cake", "author": "abc", "views": 90, "score": 0.75}]);
    // "Sort by text search score", then "return top 2 matching documents".
    let docs = find(
        &mut c,
        doc! {"filter": {"$text": {"$search": "coffee"}}, "projection": {"subject": 1, "score": {"$meta": "textScore"}},
              "sort": {"score": {"$meta": "textScore"}}, "limit": 2},
    );
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0], doc! {"_id": 1, "subject": "coffee", "score": 1.0});
    assert_eq!(docs[1].get_f64("score").unwrap(), 0.75);
    // The sort by score may be followed by other keys.
    let docs = find(&mut c, doc! {"filter": {"$text": {"$search": "coffee"}}, "sort": {"score": {"$meta": "textScore"}, "views": -1}});
    let order: Vec<i32> = docs.iter().map(|d| d.get_i32("_id").unwrap()).collect();
    assert_eq!(order, [1, 7, 2]);
    assert!(docs.iter().all(|d| !d.keys().any(|k| k.contains("score"))), "the score is only shown when asked for");
}

#[test]
fn manual_aggregation_examples() {
    let server = TestServer::start();
    let mut c = server.client();
    articles(&mut c);
    // "Count the number of documents that contain a term".
    let docs = batch(&c.ok(
        "db",
        doc! {"aggregate": "articles", "cursor": {}, "pipeline": [
            {"$match": {"$text": {"$search": "cake"}}},
            {"$group": {"_id": {"$meta": "textScore"}, "count": {"$sum": 1}}},
        ]},
    ));
    assert_eq!(docs, [doc! {"_id": 0.75, "count": 1}]);
    // "Return results sorted by text search score" with $project.
    let docs = batch(&c.ok(
        "db",
        doc! {"aggregate": "articles", "cursor": {}, "pipeline": [
            {"$match": {"$text": {"$search": "coffee shop"}}},
            {"$sort": {"score": {"$meta": "textScore"}}},
            {"$project": {"subject": 1, "_id": 0, "score": {"$meta": "textScore"}}},
            {"$match": {"score": {"$gt": 1.0}}},
        ]},
    ));
    assert_eq!(docs, [doc! {"subject": "Coffee Shopping", "score": 1.5}]);
    // $addFields keeps the document and adds the score.
    let docs = batch(&c.ok(
        "db",
        doc! {"aggregate": "articles", "cursor": {}, "pipeline": [
            {"$match": {"$text": {"$search": "baking"}}},
            {"$addFields": {"s": {"$meta": "textScore"}}},
            {"$sort": {"_id": 1}},
        ]},
    ));
    assert_eq!(docs.iter().map(|d| d.get_f64("s").unwrap()).collect::<Vec<_>>(), [0.75, 1.0]);
    assert!(docs.iter().all(|d| d.len() == 5), "only the asked-for score is added: {docs:?}");
}

#[test]
fn the_index_follows_writes_and_is_listed_as_mongodb_lists_it() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"insert": "posts", "documents": [{"_id": 1, "title": "Espresso", "body": "dark roast"}]});
    c.ok(
        "db",
        doc! {"createIndexes": "posts", "indexes": [{"key": {"title": "text", "body": "text"}, "weights": {"title": 10}, "default_language": "english"}]},
    );
    let listed = batch(&c.ok("db", doc! {"listIndexes": "posts"}));
    assert_eq!(
        listed[1],
        doc! {"v": 2, "key": {"_fts": "text", "_ftsx": 1}, "name": "title_text_body_text", "weights": {"body": 1, "title": 10},
              "default_language": "english", "language_override": "language", "textIndexVersion": 3}
    );
    let search = |c: &mut Client, s: &str| -> Vec<(i32, f64)> {
        let docs = batch(&c.ok("db", doc! {"find": "posts", "filter": {"$text": {"$search": s}}, "projection": {"score": {"$meta": "textScore"}}}));
        docs.iter().map(|d| (d.get_i32("_id").unwrap(), d.get_f64("score").unwrap())).collect()
    };
    // Built from the existing document; the title weighs 10, and a term
    // that is its whole field gets MongoDB's 10% boost: 10 × 1 × 1 × 1.1.
    assert_eq!(search(&mut c, "espresso"), [(1, 11.0)]);
    assert_eq!(search(&mut c, "roasted"), [(1, 0.75)]);
    c.ok("db", doc! {"insert": "posts", "documents": [{"_id": 2, "title": "Tea", "body": "green tea, and espresso"}]});
    // One of three terms ("and" is a stop word): 0.5 × 1/3 + 0.5.
    let third = 0.5 / 3.0 + 0.5;
    assert_eq!(search(&mut c, "espresso"), [(1, 11.0), (2, third)]);
    c.ok("db", doc! {"update": "posts", "updates": [{"q": {"_id": 1}, "u": {"$set": {"title": "Mocha"}}}]});
    assert_eq!(search(&mut c, "espresso"), [(2, third)]);
    assert_eq!(search(&mut c, "mocha"), [(1, 11.0)]);
    c.ok("db", doc! {"delete": "posts", "deletes": [{"q": {"_id": 2}, "limit": 1}]});
    assert!(search(&mut c, "espresso").is_empty());
    // A document's own language.
    c.ok("db", doc! {"insert": "posts", "documents": [{"_id": 3, "title": "Los gatos", "language": "spanish"}]});
    assert_eq!(search(&mut c, "gato").len(), 0, "the query's language is English");
    let found = batch(&c.ok("db", doc! {"find": "posts", "filter": {"$text": {"$search": "gato", "$language": "spanish"}}}));
    assert_eq!(found.len(), 1);
}

#[test]
fn errors_are_mongodbs() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"insert": "plain", "documents": [{"_id": 1, "a": "x"}]});
    let (code, msg) = error(&mut c, "db", doc! {"find": "plain", "filter": {"$text": {"$search": "x"}}});
    assert_eq!((code, msg.as_str()), (27, "text index required for $text query"));
    let (code, _) = error(&mut c, "db", doc! {"aggregate": "plain", "cursor": {}, "pipeline": [{"$match": {"$text": {"$search": "x"}}}]});
    assert_eq!(code, 27);
    articles(&mut c);
    let (code, msg) = error(&mut c, "db", doc! {"createIndexes": "articles", "indexes": [{"key": {"author": "text"}, "name": "other"}]});
    assert_eq!((code, msg.as_str()), (67, "only one text index per collection allowed, found existing text index \"subject_text\""));
    // Creating the same index again is a no-op.
    c.ok("db", doc! {"createIndexes": "articles", "indexes": [{"key": {"subject": "text"}, "name": "subject_text"}]});
    let (code, _) = error(&mut c, "db", doc! {"find": "articles", "filter": {"$or": [{"$text": {"$search": "x"}}, {"views": 1}]}});
    assert_eq!(code, 2);
    let (code, _) = error(&mut c, "db", doc! {"find": "articles", "filter": {"$text": {"$search": 5}}});
    assert_eq!(code, 14);
    let (code, _) = error(&mut c, "db", doc! {"find": "articles", "filter": {}, "projection": {"s": {"$meta": "textScore"}}});
    assert_eq!(code, 40218);
    let (code, _) = error(&mut c, "db", doc! {"find": "articles", "filter": {}, "sort": {"s": {"$meta": "textScore"}}});
    assert_eq!(code, 40218);
    let (code, _) = error(&mut c, "db", doc! {"find": "articles", "filter": {"views": 5}, "hint": "subject_text"});
    assert_eq!(code, 2);
    // Dropping the index: $text has no index again.
    c.ok("db", doc! {"dropIndexes": "articles", "index": "subject_text"});
    let (code, _) = error(&mut c, "db", doc! {"find": "articles", "filter": {"$text": {"$search": "coffee"}}});
    assert_eq!(code, 27);
    // A value the user typed is data: a search string of operators finds nothing.
    c.ok("db", doc! {"createIndexes": "articles", "indexes": [{"key": {"subject": "text"}, "name": "subject_text"}]});
    assert!(ids(&mut c, doc! {"$search": "{\"$gt\": \"\"}"}).is_empty());
    let _ = Bson::Null;
}

#[test]
fn compound_text_index_needs_its_prefix() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "inv", "indexes": [{"key": {"dept": 1, "description": "text"}, "name": "dept_text"}]});
    c.ok(
        "db",
        doc! {"insert": "inv", "documents": [
            {"_id": 1, "dept": "tech", "description": "lime green computer"},
            {"_id": 2, "dept": "tech", "description": "wireless red mouse"},
            {"_id": 3, "dept": "kitchen", "description": "green placemat"},
        ]},
    );
    let found = batch(&c.ok("db", doc! {"find": "inv", "filter": {"dept": "kitchen", "$text": {"$search": "green"}}}));
    assert_eq!(found.iter().map(|d| d.get_i32("_id").unwrap()).collect::<Vec<_>>(), [3]);
    let (code, msg) = error(&mut c, "db", doc! {"find": "inv", "filter": {"$text": {"$search": "green"}}});
    assert_eq!(code, 2);
    assert!(msg.contains("dept"), "{msg}");
}

#[test]
fn text_in_count_distinct_update_and_delete() {
    let server = TestServer::start();
    let mut c = server.client();
    articles(&mut c);
    let reply = c.ok("db", doc! {"count": "articles", "query": {"$text": {"$search": "coffee"}}});
    assert_eq!(reply.get_i32("n").or_else(|_| reply.get_i64("n").map(|n| n as i32)).unwrap(), 3);
    let reply = c.ok("db", doc! {"distinct": "articles", "key": "author", "query": {"$text": {"$search": "coffee"}}});
    let mut authors: Vec<&str> = reply.get_array("values").unwrap().iter().filter_map(Bson::as_str).collect();
    authors.sort();
    assert_eq!(authors, ["efg", "xyz"]);
    let reply = c.ok("db", doc! {"update": "articles", "updates": [{"q": {"$text": {"$search": "leche"}}, "u": {"$inc": {"views": 1}}, "multi": true}]});
    assert_eq!(reply.get_i32("nModified").unwrap(), 2);
    let views: Vec<i32> = find(&mut c, doc! {"filter": {"_id": {"$in": [5, 8]}}}).iter().map(|d| d.get_i32("views").unwrap()).collect();
    assert_eq!(views, [201, 11]);
    assert!(find(&mut c, doc! {"filter": {"_id": 5}})[0].keys().all(|k| !k.contains("score")), "no score is stored");
    c.ok("db", doc! {"delete": "articles", "deletes": [{"q": {"$text": {"$search": "bake"}}, "limit": 0}]});
    assert_eq!(ids(&mut c, doc! {"$search": "cake baking coffee"}), [1, 2, 7]);
}

/// Stop words in each language (the `stop-words` crate's NLTK lists): a
/// document's stop words are not indexed, so a search for one finds nothing,
/// in the index's default language and in a document's `language` override.
#[test]
fn stop_words_in_other_languages_are_not_indexed() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "notes", "indexes": [{"key": {"body": "text"}, "name": "body_text", "default_language": "swedish"}]});
    c.ok(
        "db",
        doc! {"insert": "notes", "documents": [
            {"_id": 1, "body": "katten och hunden"},
            {"_id": 2, "body": "кошка и собака", "language": "russian"},
            {"_id": 3, "body": "kedi ve köpek", "language": "turkish"},
        ]},
    );
    let found = |c: &mut Client, text: Document| -> Vec<i32> {
        let r = c.ok("db", doc! {"find": "notes", "filter": {"$text": text}});
        let mut ids: Vec<i32> = batch(&r).iter().map(|d| d.get_i32("_id").unwrap()).collect();
        ids.sort();
        ids
    };
    assert_eq!(found(&mut c, doc! {"$search": "och"}), Vec::<i32>::new());
    assert_eq!(found(&mut c, doc! {"$search": "katten"}), [1]);
    assert_eq!(found(&mut c, doc! {"$search": "и", "$language": "russian"}), Vec::<i32>::new());
    assert_eq!(found(&mut c, doc! {"$search": "собака", "$language": "russian"}), [2]);
    assert_eq!(found(&mut c, doc! {"$search": "ve", "$language": "turkish"}), Vec::<i32>::new());
    assert_eq!(found(&mut c, doc! {"$search": "kedi", "$language": "turkish"}), [3]);
}
