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
    assert_eq!(code(&r), 5626500, "{r}");
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

/// Where mongod takes `$near`/`$nearSphere` and where it refuses them, with
/// its codes: matcher/expression_parser.cpp (5626500 where the query is
/// parsed without proximity), query/canonical_query.cpp (2 for a second one
/// or one not at the top level), matcher/expression_geo.cpp (the distances).
#[test]
fn where_near_is_allowed_and_where_refused() {
    let server = TestServer::start();
    let mut c = server.client();
    places(&mut c);
    let near = doc! {"$near": {"$geometry": {"type": "Point", "coordinates": [-73.9928, 40.7193]}, "$maxDistance": 7000}};
    let refused = |c: &mut Client, cmd: Document, expected: i32, message: &str| {
        let r = c.cmd("db", cmd.clone());
        assert_eq!(code(&r), expected, "{cmd}: {r}");
        assert_eq!(r.get_str("errmsg").unwrap_or_default(), message, "{cmd}");
    };
    let not_allowed = "$geoNear, $near, and $nearSphere are not allowed in this context";
    // Aggregation parses $match without proximity: anywhere in it, at any
    // stage, in a $lookup's pipeline, and in $geoNear's own query.
    for pipeline in [
        vec![doc! {"$match": {"location": near.clone()}}],
        vec![doc! {"$match": {"$or": [{"location": near.clone()}, {"name": "x"}]}}],
        vec![doc! {"$project": {"name": 1}}, doc! {"$match": {"location": near.clone()}}],
        vec![doc! {"$lookup": {"from": "places", "pipeline": [{"$match": {"location": near.clone()}}], "as": "x"}}],
        vec![doc! {"$facet": {"x": [{"$match": {"location": near.clone()}}]}}],
        vec![doc! {"$geoNear": {"near": [-73.99, 40.71], "distanceField": "d", "query": {"location": near.clone()}}}],
    ] {
        refused(&mut c, doc! {"aggregate": "places", "pipeline": pipeline, "cursor": {}}, 5626500, not_allowed);
    }
    // A validator is parsed without it too.
    let r = c.cmd("db", doc! {"create": "v", "validator": {"loc": {"$nearSphere": [0, 0]}}});
    assert_eq!(code(&r), 5626500, "{r}");
    // Not at the top level of a find: BadValue.
    let top = "geoNear must be top-level expr";
    for filter in [
        doc! {"$or": [{"location": near.clone()}, {"name": "x"}]},
        doc! {"$nor": [{"location": near.clone()}]},
        doc! {"location": {"$not": near.clone()}},
        doc! {"spots": {"$elemMatch": {"location": near.clone()}}},
    ] {
        refused(&mut c, doc! {"find": "places", "filter": filter}, 2, top);
    }
    refused(
        &mut c,
        doc! {"find": "places", "filter": {"$and": [{"location": near.clone()}, {"location": {"$nearSphere": [0, 0]}}]}},
        2,
        "Too many geoNear expressions",
    );
    refused(&mut c, doc! {"find": "places", "filter": {"location": near.clone()}, "sort": {"$natural": 1}}, 2, "geoNear expression not allowed with $natural sort order");
    refused(&mut c, doc! {"find": "places", "filter": {"location": near.clone()}, "hint": {"$natural": 1}}, 2, "geoNear expression not allowed with $natural hint");
    c.ok("db", doc! {"createIndexes": "places", "indexes": [{"key": {"name": "text"}, "name": "name_text"}]});
    refused(
        &mut c,
        doc! {"find": "places", "filter": {"$text": {"$search": "park"}, "location": near.clone()}},
        2,
        "text and geoNear not allowed in same query",
    );
    // Under a top-level $and, or a one-clause $or (mongod unwraps it), it is top level.
    for filter in [doc! {"$and": [{"location": near.clone()}, {"category": "Parks"}]}, doc! {"$or": [{"location": near.clone()}]}] {
        let r = c.ok("db", doc! {"find": "places", "filter": filter});
        assert_eq!(names(&batch(&r))[0], "Sara D. Roosevelt Park");
    }
    // count, update, delete and findAndModify take it (mongod parses their
    // filters with every feature): count counts the band, the single-document
    // writes act on the nearest document.
    let r = c.ok("db", doc! {"count": "places", "query": {"location": near.clone()}});
    assert_eq!(r.get_i32("n").or_else(|_| r.get_i64("n").map(|n| n as i32)).unwrap(), 2, "{r}");
    let r = c.ok("db", doc! {"findAndModify": "places", "query": {"location": {"$nearSphere": [-73.9375, 40.8303]}}, "update": {"$set": {"seen": true}}});
    assert_eq!(r.get_document("value").unwrap().get_str("name").unwrap(), "Polo Grounds", "{r}");
    c.ok("db", doc! {"update": "places", "updates": [{"q": {"location": {"$nearSphere": [-73.97, 40.77]}}, "u": {"$set": {"first": true}}}]});
    let r = c.ok("db", doc! {"find": "places", "filter": {"first": true}});
    assert_eq!(names(&batch(&r)), ["Central Park"]);
    c.ok("db", doc! {"delete": "places", "deletes": [{"q": {"location": {"$nearSphere": [-73.9928, 40.7193]}}, "limit": 1}]});
    let r = c.ok("db", doc! {"find": "places", "filter": {}, "sort": {"_id": 1}});
    assert_eq!(names(&batch(&r)), ["Central Park", "Polo Grounds"]);
    // Without an index, each of them fails as the find does (291).
    c.ok("db", doc! {"insert": "plain", "documents": [{"loc": [1, 1]}]});
    for cmd in [
        doc! {"count": "plain", "query": {"loc": {"$near": [0, 0]}}},
        doc! {"delete": "plain", "deletes": [{"q": {"loc": {"$near": [0, 0]}}, "limit": 1}]},
    ] {
        let r = c.cmd("db", cmd.clone());
        let code = code(&r).max(r.get_array("writeErrors").ok().and_then(|e| e[0].as_document()?.get_i32("code").ok()).unwrap_or(0));
        assert_eq!(code, 291, "{cmd}: {r}");
    }
    // The distances, as mongod's GeoNearExpression parses them.
    for (filter, expected) in [
        (doc! {"location": {"$near": [0, 0], "$maxDistance": "far"}}, 16895),
        (doc! {"location": {"$near": [0, 0], "$maxDistance": -1}}, 16896),
        (doc! {"location": {"$near": [0, 0], "$minDistance": "near"}}, 16893),
        (doc! {"location": {"$near": [0, 0], "$minDistance": -1}}, 16894),
        (doc! {"location": {"$near": [0, 0], "$exists": true}}, 34413),
        (doc! {"location": {"$near": {"$geometry": {"type": "Point", "coordinates": [0, 0]}, "$maxDistance": -1}}}, 2),
        (doc! {"location": {"$near": {"$geometry": {"type": "Point", "coordinates": [0, 0]}}, "$maxDistance": 5}}, 2),
        (doc! {"location": {"$near": {"$maxDistance": 5}}}, 2),
    ] {
        let r = c.cmd("db", doc! {"find": "places", "filter": filter.clone()});
        assert_eq!(code(&r), expected, "{filter}: {r}");
    }
}

/// Polygon and line edges are great-circle arcs, as MongoDB's S2 draws
/// them: cases where that and straight edges on a lng/lat map disagree,
/// each through the 2dsphere index (whose covering must follow the arcs
/// too) and without it.
#[test]
fn edges_are_great_circle_arcs() {
    let server = TestServer::start();
    let mut c = server.client();
    let docs = [
        doc! {"_id": "under the northern arc", "loc": {"type": "Point", "coordinates": [0, 70]}},
        doc! {"_id": "above the southern arc", "loc": {"type": "Point", "coordinates": [0, 55]}},
        doc! {"_id": "north pole cap", "loc": {"type": "Point", "coordinates": [45, 85]}},
        doc! {"_id": "antimeridian east", "loc": {"type": "Point", "coordinates": [179, 0]}},
        doc! {"_id": "antimeridian west", "loc": [-179, 5]},
        doc! {"_id": "origin", "loc": {"type": "Point", "coordinates": [0, 0]}},
        doc! {"_id": "far north of 180", "loc": {"type": "Point", "coordinates": [180, 86]}},
        doc! {"_id": "north of 180", "loc": {"type": "Point", "coordinates": [180, 79]}},
        doc! {"_id": "parallel 62 line", "loc": {"type": "LineString", "coordinates": [[-60, 62], [60, 62]]}},
    ];
    for coll in ["indexed", "plain"] {
        c.ok("db", doc! {"insert": coll, "documents": docs.to_vec()});
    }
    c.ok("db", doc! {"createIndexes": "indexed", "indexes": [{"key": {"loc": "2dsphere"}, "name": "loc_2dsphere"}]});
    let polygon = |ring: Vec<[f64; 2]>| doc! {"type": "Polygon", "coordinates": [ring.iter().map(|p| vec![p[0], p[1]]).collect::<Vec<_>>()]};
    let strict = |mut g: Document| {
        g.insert("crs", doc! {"type": "name", "properties": {"name": "urn:x-mongodb:crs:strictwinding:EPSG:4326"}});
        g
    };
    let ids = |c: &mut Client, coll: &str, filter: Document| -> Vec<String> {
        let r = c.ok("db", doc! {"find": coll, "filter": filter, "sort": {"_id": 1}});
        batch(&r).iter().map(|d| d.get_str("_id").unwrap().to_string()).collect()
    };
    // Along the parallels 50°N and 60°N from 60°W to 60°E: the arcs bulge
    // north (to 67.2°N and 73.9°N at 0°), so (0, 70) is inside and
    // (0, 55), inside on a flat map, is not.
    let band = polygon(vec![[-60.0, 50.0], [60.0, 50.0], [60.0, 60.0], [-60.0, 60.0], [-60.0, 50.0]]);
    // Across the antimeridian: the 20° square around 180°, not the rest of the world.
    let across = polygon(vec![[170.0, -10.0], [-170.0, -10.0], [-170.0, 10.0], [170.0, 10.0], [170.0, -10.0]]);
    // A ring at 80°N holds the pole.
    let cap = polygon((0..=12).map(|i| [-180.0 + 30.0 * f64::from(i % 12), 80.0]).collect());
    // The MongoDB manual's big polygon ($geoWithin page, "Big Polygon"):
    // strict winding makes it the region left of the ring, more than a
    // hemisphere: all but a band around 180° whose arcs reach 84.3°N.
    let big = strict(polygon(vec![[-100.0, 60.0], [-100.0, 0.0], [-100.0, -60.0], [100.0, -60.0], [100.0, 60.0], [-100.0, 60.0]]));
    for coll in ["indexed", "plain"] {
        assert_eq!(ids(&mut c, coll, doc! {"loc": {"$geoWithin": {"$geometry": band.clone()}}}), ["under the northern arc"], "{coll}");
        assert_eq!(ids(&mut c, coll, doc! {"loc": {"$geoWithin": {"$geometry": across.clone()}}}), ["antimeridian east", "antimeridian west"], "{coll}");
        assert_eq!(ids(&mut c, coll, doc! {"loc": {"$geoWithin": {"$geometry": cap.clone()}}}), ["far north of 180", "north pole cap"], "{coll}");
        assert_eq!(
            ids(&mut c, coll, doc! {"loc": {"$geoWithin": {"$geometry": big.clone()}}}),
            ["above the southern arc", "far north of 180", "north pole cap", "origin", "parallel 62 line", "under the northern arc"],
            "{coll}"
        );
        // The line between (±60°, 62°N) passes 75.1°N at 0°: it meets a
        // small box there, which a straight line along 62°N would not.
        let box_at_75 = polygon(vec![[-1.0, 74.5], [1.0, 74.5], [1.0, 75.5], [-1.0, 75.5], [-1.0, 74.5]]);
        assert_eq!(ids(&mut c, coll, doc! {"loc": {"$geoIntersects": {"$geometry": box_at_75}}}), ["parallel 62 line"], "{coll}");
        assert_eq!(
            ids(&mut c, coll, doc! {"loc": {"$geoIntersects": {"$geometry": across.clone()}}}),
            ["antimeridian east", "antimeridian west"],
            "{coll}"
        );
    }
    // Only a one-ring Polygon may use the strict-winding CRS, as in mongod.
    let multi = strict(doc! {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]});
    let r = c.cmd("db", doc! {"find": "plain", "filter": {"loc": {"$geoWithin": {"$geometry": multi}}}});
    assert_eq!((code(&r), r.get_str("errmsg").unwrap()), (2, "only polygon supported with strict winding order"));
    let holed = strict(doc! {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 0]], [[1, 1], [2, 1], [2, 2], [1, 1]]]});
    let r = c.cmd("db", doc! {"find": "plain", "filter": {"loc": {"$geoIntersects": {"$geometry": holed}}}});
    assert_eq!(code(&r), 2, "{r}");
    // A stored shape may not use it.
    let r = c.cmd("db", doc! {"insert": "indexed", "documents": [{"loc": strict(polygon(vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))}]});
    assert!(format!("{r}").contains("16755"), "{r}");
}
