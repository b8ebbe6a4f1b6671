//! TTL indexes: the monitor deletes what has expired, and only that.
mod common;

use bson::{doc, Bson, DateTime, Document};
use common::TestServer;
use std::time::{Duration, Instant};

fn names(docs: &[Document]) -> Vec<String> {
    let mut names: Vec<String> = docs.iter().filter_map(|d| d.get_str("name").ok().map(str::to_string)).collect();
    names.sort();
    names
}

fn ago(seconds: i64) -> Bson {
    Bson::DateTime(DateTime::from_millis(DateTime::now().timestamp_millis() - seconds * 1000))
}

#[test]
fn the_monitor_deletes_expired_documents_and_keeps_the_rest() {
    let options = djongo_server::ServerOptions { ttl_monitor_interval: Some(Duration::from_millis(500)), ..Default::default() };
    let server = TestServer::start_with(options);
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "sessions", "indexes": [{"key": {"seen": 1}, "name": "seen_ttl", "expireAfterSeconds": 3600}]});
    c.ok(
        "db",
        doc! {"createIndexes": "events", "indexes": [{"key": {"at": 1}, "name": "at_ttl", "expireAfterSeconds": 0,
                  "partialFilterExpression": {"kind": "temporary"}}]},
    );
    c.ok("db", doc! {"createIndexes": "pairs", "indexes": [{"key": {"a": 1, "b": 1}, "name": "compound", "expireAfterSeconds": 0}]});
    c.ok(
        "db",
        doc! {"insert": "sessions", "documents": [
            {"name": "old", "seen": ago(7200)},
            {"name": "old-in-array", "seen": [ago(10), ago(7200)]},
            {"name": "fresh", "seen": ago(60)},
            {"name": "not-a-date", "seen": "2001-01-01"},
            {"name": "no-field"},
        ]},
    );
    c.ok(
        "db",
        doc! {"insert": "events", "documents": [
            {"name": "temporary", "kind": "temporary", "at": ago(5)},
            {"name": "kept", "kind": "audit", "at": ago(5)},
        ]},
    );
    c.ok("db", doc! {"insert": "pairs", "documents": [{"name": "compound", "a": ago(5), "b": 1}]});

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sessions = names(&c.find_all("db", "sessions"));
        let events = names(&c.find_all("db", "events"));
        if sessions == ["fresh", "no-field", "not-a-date"] && events == ["kept"] {
            break;
        }
        assert!(Instant::now() < deadline, "not expired after 60 s: sessions {sessions:?}, events {events:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Only single-field indexes expire documents, as on MongoDB.
    assert_eq!(names(&c.find_all("db", "pairs")), ["compound"]);
    // What getParameter reports.
    let params = c.ok("admin", doc! {"getParameter": 1, "ttlMonitorSleepSecs": 1});
    assert!(params.contains_key("ttlMonitorSleepSecs"));
}

#[test]
fn bad_expire_after_seconds_are_refused() {
    let server = TestServer::start();
    let mut c = server.client();
    for (spec, code) in [
        (doc! {"key": {"at": 1}, "name": "a", "expireAfterSeconds": "soon"}, 72),
        (doc! {"key": {"at": 1}, "name": "a", "expireAfterSeconds": -1}, 72),
        (doc! {"key": {"at": 1}, "name": "a", "expireAfterSeconds": 1e12}, 72),
        (doc! {"key": {"_id": 1}, "name": "a", "expireAfterSeconds": 5}, 67),
    ] {
        let reply = c.cmd("db", doc! {"createIndexes": "c", "indexes": [spec.clone()]});
        assert_eq!(reply.get_i32("code").ok(), Some(code), "{spec}: {reply}");
    }
}

#[test]
fn coll_mod_changes_a_ttl_index_expiry() {
    let options = djongo_server::ServerOptions { ttl_monitor_interval: Some(Duration::from_millis(200)), ..Default::default() };
    let server = TestServer::start_with(options);
    let mut c = server.client();
    c.ok("db", doc! {"createIndexes": "sessions", "indexes": [{"key": {"seen": 1}, "name": "seen_ttl", "expireAfterSeconds": 3600}]});
    c.ok("db", doc! {"insert": "sessions", "documents": [{"name": "ten-minutes-old", "seen": ago(600)}, {"name": "fresh", "seen": ago(0)}]});
    let reply = c.ok("db", doc! {"collMod": "sessions", "index": {"name": "seen_ttl", "expireAfterSeconds": 300}});
    assert_eq!(reply.get_i32("expireAfterSeconds_old").unwrap(), 3600);
    assert_eq!(reply.get_i32("expireAfterSeconds_new").unwrap(), 300);
    let listed = c.ok("db", doc! {"listIndexes": "sessions"});
    let batch = listed.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    assert_eq!(batch[1].as_document().unwrap().get_i32("expireAfterSeconds").unwrap(), 300);
    let deadline = Instant::now() + Duration::from_secs(60);
    while names(&c.find_all("db", "sessions")) != ["fresh"] {
        assert!(Instant::now() < deadline, "not expired after the change");
        std::thread::sleep(Duration::from_millis(100));
    }
    // By key pattern; errors as mongod gives them.
    c.ok("db", doc! {"collMod": "sessions", "index": {"keyPattern": {"seen": 1}, "expireAfterSeconds": 7200}});
    let reply = c.cmd("db", doc! {"collMod": "sessions", "index": {"name": "nope", "expireAfterSeconds": 1}});
    assert_eq!(reply.get_i32("code").unwrap(), 27);
    let reply = c.cmd("db", doc! {"collMod": "sessions", "index": {"name": "seen_ttl", "expireAfterSeconds": -1}});
    assert_eq!(reply.get_i32("code").unwrap(), 72);
}
