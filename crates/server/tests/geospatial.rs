//! 2dsphere indexes and geo queries through the wire protocol, with the
//! MongoDB manual's examples (the `places` collection of the $near,
//! $geoNear and geospatial tutorial pages).
mod common;

use bson::{doc, Bson, Document};
use common::{Client, TestServer};

fn places(c: &mut Client) {
    c.ok("db", doc! {"createIndexes": "places", "indexes": [{"key": {"location": "2dsphere"}, "name": "location_2dsphere"}]});
    c.ok(
        "db",
        doc! {"insert": "places", "documents": [
            {"_id": 1, "name": "Central Park", "location": {"type": "Point", "coordinates": [-73.97, 40.77]}, "category": "Parks"},
            {"_id": 2, "name": "Sara D. Roosevelt Park", "location": {"type": "Point", "coordinates": [-73.9928, 40.7193]}, "category": "Parks"},
            {"_id": 3, "name": "Polo Grounds", "location": {"type": "Point", "coordinates": [-73.9375, 40.8303]}, "category": "Stadiums"},
        ]},
    );
}

fn batch(reply: &Document) -> Vec<Document> {
    reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .map(|a| a.iter().filter_map(|d| d.as_document().cloned()).collect())
        .unwrap_or_default()
}

fn names(docs: &[Document]) -> Vec<String> {
    docs.iter().filter_map(|d| d.get_str("name").ok().map(str::to_string)).collect()
}

fn code(reply: &Document) -> i32 {
    reply.get_i32("code").unwrap_or(0)
}

#[test]
fn near_returns_nearest_first_within_the_band() {
    let server = TestServer::start();
    let mut c = server.client();
    places(&mut c);
    // https://www.mongodb.com/docs/manual/reference/operator/query/near/
    let r = c.ok(
        "db",
        doc! {"find": "places", "filter": {"location": {"$near": {
            "$geometry": {"type": "Point", "coordinates": [-73.9667, 40.78]},
            "$minDistance": 1000, "$maxDistance": 5000}}}},
    );
    assert_eq!(names(&batch(&r)), ["Central Park"]);
    let r = c.ok("db", doc! {"find": "places", "filter": {"location": {"$nearSphere": {
        "$geometry": {"type": "Point", "coordinates": [-73.9928, 40.7193]}}}}});
    assert_eq!(names(&batch(&r)), ["Sara D. Roosevelt Park", "Central Park", "Polo Grounds"]);
    // Legacy pair: radians.
    let r = c.ok("db", doc! {"find": "places", "filter": {"location": {"$nearSphere": [-73.9928, 40.7193], "$maxDistance": 0.001}}});
    assert_eq!(names(&batch(&r)), ["Sara D. Roosevelt Park", "Central Park"]);
    let r = c.ok("db", doc! {"find": "places", "filter": {"location": {"$nearSphere": [-73.9928, 40.7193]}}, "limit": 1, "skip": 1});
    assert_eq!(names(&batch(&r)), ["Central Park"]);
}

#[test]
fn near_and_geo_near_need_a_geo_index() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"insert": "plain", "documents": [{"loc": [1, 1]}]});
    let r = c.cmd("db", doc! {"find": "plain", "filter": {"loc": {"$near": [0, 0]}}});
    assert_eq!(code(&r), 291, "{r}");
    assert!(r.get_str("errmsg").unwrap().contains("unable to find index for $geoNear query"));
    let r = c.cmd("db", doc! {"aggregate": "plain", "pipeline": [{"$geoNear": {"near": [0, 0], "distanceField": "d"}}], "cursor": {}});
    assert_eq!(code(&r), 27, "{r}");
    // A collection that does not exist has nothing near anything.
    let r = c.ok("db", doc! {"aggregate": "absent", "pipeline": [{"$geoNear": {"near": [0, 0], "distanceField": "d"}}], "cursor": {}});
    assert!(batch(&r).is_empty());
    // $geoWithin and $geoIntersects need none.
    let r = c.ok("db", doc! {"find": "plain", "filter": {"loc": {"$geoWithin": {"$box": [[0, 0], [2, 2]]}}}});
    assert_eq!(batch(&r).len(), 1);
    // Two geo indexes: $geoNear must be told which with `key`.
    c.ok("db", doc! {"createIndexes": "plain", "indexes": [{"key": {"loc": "2dsphere"}, "name": "a"}, {"key": {"other": "2dsphere"}, "name": "b"}]});
    let r = c.cmd("db", doc! {"aggregate": "plain", "pipeline": [{"$geoNear": {"near": [0, 0], "distanceField": "d"}}], "cursor": {}});
    assert_eq!(code(&r), 27, "{r}");
    assert!(r.get_str("errmsg").unwrap().contains("more than one 2dsphere index"));
    let r = c.ok("db", doc! {"aggregate": "plain", "pipeline": [{"$geoNear": {"near": [0, 0], "distanceField": "d", "key": "loc"}}], "cursor": {}});
    assert_eq!(batch(&r).len(), 1);
    // $near in an aggregate's $match: refused, as MongoDB does.
    let r = c.cmd("db", doc! {"aggregate": "plain", "pipeline": [{"$match": {"loc": {"$near": [0, 0]}}}], "cursor": {}});
    assert_eq!(code(&r), 224, "{r}");
    // Not first: refused.
    let r = c.cmd("db", doc! {"aggregate": "plain", "pipeline": [{"$match": {}}, {"$geoNear": {"near": [0, 0], "distanceField": "d", "key": "loc"}}], "cursor": {}});
    assert_eq!(code(&r), 40602, "{r}");
}

#[test]
fn geo_near_stage_manual_example() {
    let server = TestServer::start();
    let mut c = server.client();
    places(&mut c);
    // https://www.mongodb.com/docs/manual/reference/operator/aggregation/geoNear/
    let r = c.ok(
        "db",
        doc! {"aggregate": "places", "cursor": {}, "pipeline": [
            {"$geoNear": {
                "near": {"type": "Point", "coordinates": [-73.99279, 40.719296]},
                "distanceField": "dist.calculated",
                "maxDistance": 2,
                "query": {"category": "Parks"},
                "includeLocs": "dist.location",
                "spherical": true
            }},
            {"$project": {"name": 1, "dist.location": 1}}
        ]},
    );
    let docs = batch(&r);
    assert_eq!(names(&docs), ["Sara D. Roosevelt Park"]);
    assert_eq!(
        docs[0].get_document("dist").unwrap(),
        &doc! {"location": {"type": "Point", "coordinates": [-73.9928, 40.7193]}}
    );
    let r = c.ok(
        "db",
        doc! {"aggregate": "places", "cursor": {}, "pipeline": [
            {"$geoNear": {"near": {"type": "Point", "coordinates": [-73.99279, 40.719296]}, "distanceField": "d", "minDistance": 2, "query": {"category": "Parks"}}}
        ]},
    );
    assert_eq!(names(&batch(&r)), ["Central Park"]);
}

#[test]
fn within_and_intersects() {
    let server = TestServer::start();
    let mut c = server.client();
    places(&mut c);
    let r = c.ok("db", doc! {"find": "places", "filter": {"location": {"$geoWithin": {"$centerSphere": [[-73.97, 40.77], 5.0 / 3963.2]}}}, "sort": {"_id": 1}});
    assert_eq!(names(&batch(&r)), ["Central Park", "Sara D. Roosevelt Park", "Polo Grounds"]);
    let r = c.ok("db", doc! {"find": "places", "filter": {"location": {"$geoWithin": {"$centerSphere": [[-73.97, 40.77], 2.0 / 3963.2]}}}});
    assert_eq!(names(&batch(&r)), ["Central Park"]);
    let square = doc! {"type": "Polygon", "coordinates": [[[-74.0, 40.7], [-73.95, 40.7], [-73.95, 40.8], [-74.0, 40.8], [-74.0, 40.7]]]};
    let r = c.ok("db", doc! {"find": "places", "filter": {"location": {"$geoWithin": {"$geometry": square.clone()}}}, "sort": {"_id": 1}});
    assert_eq!(names(&batch(&r)), ["Central Park", "Sara D. Roosevelt Park"]);
    let r = c.ok("db", doc! {"find": "places", "filter": {"location": {"$geoIntersects": {"$geometry": square}}}, "sort": {"_id": 1}});
    assert_eq!(names(&batch(&r)), ["Central Park", "Sara D. Roosevelt Park"]);
}

#[test]
fn invalid_shapes_in_an_indexed_field_are_refused() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "shapes", "indexes": [{"key": {"loc": "2dsphere"}, "name": "loc_2dsphere"}]});
    let r = c.cmd("db", doc! {"insert": "shapes", "documents": [{"_id": 1, "loc": {"type": "Point", "coordinates": [200, 0]}}]});
    let err = r.get_array("writeErrors").unwrap()[0].as_document().unwrap().clone();
    assert_eq!(err.get_i32("code").unwrap(), 16755);
    let msg = err.get_str("errmsg").unwrap();
    assert!(msg.starts_with("Can't extract geo keys"), "{msg}");
    assert!(msg.contains("longitude/latitude is out of bounds"), "{msg}");
    let r = c.cmd("db", doc! {"insert": "shapes", "documents": [{"_id": 2, "loc": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0]]]}}]});
    assert!(r.get_array("writeErrors").is_ok(), "{r}");
    // Missing and null locations are left out of the index, not refused.
    c.ok("db", doc! {"insert": "shapes", "documents": [{"_id": 3}, {"_id": 4, "loc": Bson::Null}, {"_id": 5, "loc": [10, 20]}]});
    assert_eq!(c.find_all("db", "shapes").len(), 3);
    // An index build over bad data fails the same way.
    c.ok("db", doc! {"insert": "later", "documents": [{"loc": "not a place"}]});
    let r = c.cmd("db", doc! {"createIndexes": "later", "indexes": [{"key": {"loc": "2dsphere"}, "name": "loc_2dsphere"}]});
    assert_eq!(code(&r), 16755, "{r}");
    let listed = c.ok("db", doc! {"listIndexes": "shapes"});
    let spec = batch(&listed).into_iter().find(|i| i.get_str("name").ok() == Some("loc_2dsphere")).unwrap();
    assert_eq!(spec.get_i32("2dsphereIndexVersion").unwrap(), 3);
}

#[test]
fn the_index_narrows_geo_queries_and_explain_shows_it() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "grid", "indexes": [{"key": {"loc": "2dsphere"}, "name": "loc_2dsphere"}]});
    // One point per 10 degrees over the world, and a polygon over Europe.
    let mut docs = Vec::new();
    let mut id = 0;
    for x in (-170..=170).step_by(10) {
        for y in (-80..=80).step_by(10) {
            id += 1;
            docs.push(doc! {"_id": id, "loc": {"type": "Point", "coordinates": [x, y]}});
        }
    }
    docs.push(doc! {"_id": 0, "loc": {"type": "Polygon", "coordinates": [[[-10, 35], [30, 35], [30, 60], [-10, 60], [-10, 35]]]}});
    let total = docs.len();
    c.ok("db", doc! {"insert": "grid", "documents": docs});
    let filter = doc! {"loc": {"$geoWithin": {"$box": [[5, 5], [25, 25]]}}};
    let r = c.ok("db", doc! {"find": "grid", "filter": filter.clone(), "sort": {"_id": 1}});
    let found: Vec<i32> = batch(&r).iter().map(|d| d.get_i32("_id").unwrap()).collect();
    assert_eq!(found.len(), 4, "{found:?}"); // (10|20, 10|20)
    let explain = c.ok("db", doc! {"explain": {"find": "grid", "filter": filter}, "verbosity": "executionStats"});
    let plan = explain.get_document("queryPlanner").unwrap().get_document("winningPlan").unwrap().to_string();
    assert!(plan.contains("loc_2dsphere") && plan.contains("quadtree cell ranges"), "{plan}");
    let examined = explain.get_document("executionStats").unwrap().get_i64("totalDocsExamined").unwrap();
    assert!(examined < (total / 10) as i64, "examined {examined} of {total}");
    // The large polygon is stored at a coarse cell and still found.
    let r = c.ok("db", doc! {"find": "grid", "filter": {"loc": {"$geoIntersects": {"$geometry": {"type": "Point", "coordinates": [12, 48]}}}}});
    assert_eq!(batch(&r).iter().map(|d| d.get_i32("_id").unwrap()).collect::<Vec<_>>(), [0]);
    // $near with a bound scans the covering too, nearest first.
    let r = c.ok("db", doc! {"find": "grid", "filter": {"loc": {"$near": {"$geometry": {"type": "Point", "coordinates": [21, 19]}, "$maxDistance": 300_000}}}});
    let near: Vec<Document> = batch(&r).iter().map(|d| d.get_document("loc").unwrap().clone()).collect();
    assert_eq!(near, [doc! {"type": "Point", "coordinates": [20, 20]}]);
}
