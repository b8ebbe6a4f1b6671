//! Fuzz targets that run on stable Rust, driven by proptest.
//!
//! - `wire_decoder_*`: arbitrary bytes, structured-but-wrong messages and
//!   mutations of valid messages go through framing and OP_MSG/OP_QUERY
//!   decoding; nothing may panic, and every rejection the server answers
//!   must make a well-formed error reply.
//! - `command_dispatcher`: random command documents (known command names
//!   and arguments, query-shaped values) run against a real store; no
//!   panic, every reply is `{ok: 1}` or a complete `{ok: 0, errmsg, code,
//!   codeName}`, and documents stored beforehand in another database are
//!   intact afterwards.
//! - `socket_streams`: mutated byte streams sent to a running server over
//!   TCP; afterwards it still answers and the stored data is unchanged.
//!
//! `cargo test` runs a bounded number of cases. For a longer run set
//! `DJONGO_FUZZ_CASES` (cases per target), best in release mode:
//! `DJONGO_FUZZ_CASES=20000 cargo test --release -p djongo-server --test fuzz`.
mod common;

use bson::{doc, oid::ObjectId, spec::BinarySubtype, Binary, Bson, Document};
use common::TestServer;
use djongo_server::auth::{ConnAuth, Users};
use djongo_server::commands::run_command;
use djongo_server::state::{ConnInfo, ServerState};
use djongo_server::storage::Storage;
use djongo_server::wire::{self, WireError};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Cases per target: `default` under plain `cargo test`, or `DJONGO_FUZZ_CASES`.
fn cases(default: u32) -> u32 {
    std::env::var("DJONGO_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn config(default: u32) -> ProptestConfig {
    ProptestConfig { cases: cases(default), max_shrink_iters: 2000, ..ProptestConfig::default() }
}

// ---- reply checks --------------------------------------------------------------

fn check_reply(reply: &Document) -> Result<(), TestCaseError> {
    let ok = match reply.get("ok") {
        Some(Bson::Double(f)) => *f,
        Some(Bson::Int32(i)) => f64::from(*i),
        other => return Err(TestCaseError::fail(format!("reply without a numeric ok ({other:?}): {reply}"))),
    };
    if ok == 0.0 {
        prop_assert!(matches!(reply.get("errmsg"), Some(Bson::String(_))), "error reply without errmsg: {}", reply);
        prop_assert!(matches!(reply.get("code"), Some(Bson::Int32(c)) if *c != 0), "error reply without code: {}", reply);
        prop_assert!(matches!(reply.get("codeName"), Some(Bson::String(s)) if !s.is_empty()), "error reply without codeName: {}", reply);
    } else {
        prop_assert_eq!(ok, 1.0, "ok is neither 0 nor 1: {}", reply);
    }
    // The reply must be sendable.
    prop_assert!(wire::encode_msg(1, 1, 0, reply).is_ok(), "reply cannot be encoded: {}", reply);
    Ok(())
}

// ---- wire decoder ----------------------------------------------------------------

/// Decodes `bytes` as the server does and checks what a client would get.
fn decode(bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut r = bytes;
    let (header, payload) = match wire::read_message(&mut r) {
        Ok(Some(m)) => m,
        Ok(None) | Err(WireError::Io(_)) | Err(WireError::BadLength(_)) => return Ok(()),
        Err(e) => return Err(TestCaseError::fail(format!("framing gave an unexpected error: {e}"))),
    };
    prop_assert_eq!(payload.len() + 16, header.length as usize);
    match wire::parse_request(&header, &payload) {
        Ok(_) => {}
        Err(e) => {
            if let Some(reply) = e.reply() {
                check_reply(&reply)?;
                prop_assert_eq!(reply.get_f64("ok").ok(), Some(0.0));
            } else {
                prop_assert!(e.closes_connection(), "{} has no reply but keeps the connection", e);
            }
        }
    }
    // Replies are decoded by the same code in the test client.
    let _ = wire::parse_reply(&header, &payload);
    Ok(())
}

fn frame(op_code: i32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&((payload.len() + 16) as i32).to_le_bytes());
    out.extend_from_slice(&7i32.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&op_code.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A message with a valid checksum, so mutations past the checksum test
/// reach the section parser too.
fn with_checksum(mut msg: Vec<u8>) -> Vec<u8> {
    const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    msg[16] |= 1;
    let len = (msg.len() + 4) as i32;
    msg[..4].copy_from_slice(&len.to_le_bytes());
    let sum = CRC32C.checksum(&msg);
    msg.extend_from_slice(&sum.to_le_bytes());
    msg
}

fn regex(pattern: &str, options: &str) -> bson::Regex {
    let c = |s: &str| bson::raw::CString::try_from(s).expect("no NUL in a literal");
    bson::Regex { pattern: c(pattern), options: c(options) }
}

/// Valid messages of every shape the server reads, to be mutated.
fn seed_messages() -> Vec<Vec<u8>> {
    let body = doc! {"insert": "c", "$db": "d", "ordered": false, "x": [1, "two", {"three": 3.0}], "lsid": {"id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![7; 16] }}};
    let docs = [doc! {"_id": 1, "a": {"b": [1, 2, {"c": null}]}}, doc! {"s": "é\u{1F600}", "r": regex("^a", "i")}];
    let msg = wire::encode_msg_with_sequence(1, &body, "documents", &docs).unwrap_or_default();
    vec![
        msg.clone(),
        with_checksum(msg),
        wire::encode_msg(2, 0, 0, &doc! {"find": "c", "filter": {"a": {"$gt": 1}}, "$db": "d"}).unwrap_or_default(),
        wire::encode_query(3, "admin.$cmd", &doc! {"$query": {"isMaster": 1}, "$readPreference": {"mode": "primary"}}).unwrap_or_default(),
        wire::encode_reply(4, 3, &doc! {"ok": 1.0, "cursor": {"id": 0i64, "firstBatch": []}}).unwrap_or_default(),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    /// Overwrites four bytes with an interesting length value.
    Length(usize, i32),
}

fn edit() -> impl Strategy<Value = Edit> {
    let lengths = prop_oneof![Just(0), Just(4), Just(5), Just(16), Just(-1), Just(i32::MIN), Just(i32::MAX), Just(48_000_001), 0..64i32];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8)).prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 1..16usize).prop_map(|(i, n)| Edit::Remove(i, n)),
        (any::<usize>(), lengths).prop_map(|(i, v)| Edit::Length(i, v)),
    ]
}

fn apply(msg: &mut Vec<u8>, e: &Edit) {
    if msg.is_empty() {
        return;
    }
    match e {
        Edit::Set(i, b) => {
            let i = i % msg.len();
            msg[i] = *b;
        }
        Edit::Insert(i, bytes) => {
            let i = i % (msg.len() + 1);
            msg.splice(i..i, bytes.iter().copied());
        }
        Edit::Remove(i, n) => {
            let i = i % msg.len();
            let end = (i + n).min(msg.len());
            msg.drain(i..end);
        }
        Edit::Length(i, v) => {
            let i = i % msg.len();
            for (k, b) in v.to_le_bytes().iter().enumerate() {
                if let Some(slot) = msg.get_mut(i + k) {
                    *slot = *b;
                }
            }
        }
    }
}

/// Keeps the header's length honest after edits, half of the time, so
/// mutations reach the payload decoder instead of only the framing check.
fn refit(msg: &mut [u8]) {
    if msg.len() >= 4 {
        let len = msg.len() as i32;
        msg[..4].copy_from_slice(&len.to_le_bytes());
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn wire_decoder_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode(&bytes)?;
    }

    #[test]
    fn wire_decoder_arbitrary_payloads(op in prop_oneof![Just(2013), Just(2004), Just(1), Just(2012), any::<i32>()],
                                       payload in proptest::collection::vec(any::<u8>(), 0..400)) {
        decode(&frame(op, &payload))?;
    }

    #[test]
    fn wire_decoder_mutated_messages(seed in 0usize..5, edits in proptest::collection::vec(edit(), 1..6), fit in any::<bool>()) {
        let seeds = seed_messages();
        let mut msg = seeds[seed % seeds.len()].clone();
        for e in &edits {
            apply(&mut msg, e);
        }
        if fit {
            refit(&mut msg);
        }
        decode(&msg)?;
    }

    #[test]
    fn wire_decoder_random_documents(body in document(3), op in prop_oneof![Just(2013), Just(2004)]) {
        let bytes = match op {
            2013 => wire::encode_msg(1, 0, 0, &body),
            _ => wire::encode_query(1, "db.$cmd", &body),
        };
        if let Ok(bytes) = bytes {
            let mut r = bytes.as_slice();
            if let Ok(Some((h, p))) = wire::read_message(&mut r) {
                let parsed = wire::parse_request(&h, &p);
                // Anything we can encode within the limits decodes back.
                prop_assert!(parsed.is_ok(), "{:?}", parsed.err());
            }
        }
    }
}

#[test]
fn wire_decoder_rejects_deep_nesting_without_recursing() {
    // Built by hand, outside in: the bson crate itself would recurse.
    let depth = 100_000usize;
    let mut inner = Vec::with_capacity(depth * 9 + 5);
    for level in (0..depth).rev() {
        inner.extend_from_slice(&((level * 8 + 13) as i32).to_le_bytes());
        inner.extend_from_slice(&[3, b'a', 0]);
    }
    inner.extend_from_slice(&[5, 0, 0, 0, 0]);
    inner.extend(std::iter::repeat_n(0u8, depth));
    let mut payload = 0u32.to_le_bytes().to_vec();
    payload.push(0);
    payload.extend_from_slice(&inner);
    let msg = frame(2013, &payload);
    let mut r = msg.as_slice();
    let (h, p) = wire::read_message(&mut r).unwrap().unwrap();
    let err = wire::parse_request(&h, &p).unwrap_err();
    assert_eq!(err.reply().unwrap().get_i32("code").ok(), Some(15), "{err}");
}

// ---- random command documents -------------------------------------------------

const COMMANDS: &[&str] = &[
    "insert", "find", "update", "delete", "findAndModify", "aggregate", "count", "distinct", "getMore", "killCursors",
    "create", "drop", "dropDatabase", "renameCollection", "createIndexes", "dropIndexes", "listCollections", "listIndexes",
    "listDatabases", "collStats", "dbStats", "hello", "isMaster", "ping", "buildInfo", "endSessions", "killSessions",
    "startSession", "commitTransaction", "abortTransaction", "savepoint", "rollbackToSavepoint", "releaseSavepoint",
    "saslStart", "saslContinue", "getParameter", "serverStatus", "connectionStatus", "whatsmyuri", "noSuchCommand", "",
];

const ARGUMENTS: &[&str] = &[
    "filter", "documents", "updates", "deletes", "q", "u", "pipeline", "sort", "projection", "limit", "skip", "batchSize",
    "upsert", "multi", "new", "remove", "update", "query", "fields", "indexes", "key", "name", "unique", "partialFilterExpression",
    "to", "dropTarget", "cursor", "ordered", "lsid", "txnNumber", "autocommit", "startTransaction", "collection", "cursors",
    "index", "let", "hint", "collation", "arrayFilters", "writeConcern", "readConcern", "single", "nameOnly", "comment",
    "bypassDocumentValidation", "$readPreference", "maxTimeMS", "mechanism", "payload", "conversationId", "$db",
];

const KEYS: &[&str] = &[
    "_id", "a", "b", "a.b", "a.0", "c.d.e", "x", "", "$gt", "$gte", "$lt", "$in", "$nin", "$ne", "$eq", "$exists", "$type",
    "$and", "$or", "$nor", "$not", "$elemMatch", "$size", "$all", "$regex", "$options", "$mod", "$expr", "$set", "$unset",
    "$inc", "$mul", "$min", "$max", "$push", "$addToSet", "$pull", "$pop", "$rename", "$each", "$position", "$slice",
    "$setOnInsert", "$currentDate", "$match", "$group", "$project", "$sort", "$limit", "$skip", "$unwind", "$lookup",
    "$addFields", "$count", "$facet", "$out", "$merge", "$replaceRoot", "$sum", "$avg", "$first", "$push", "$cond",
    "$ifNull", "$concat", "$substr", "$add", "$subtract", "$multiply", "$divide", "$toString", "$dateToString",
    "$arrayElemAt", "$map", "$filter", "$reduce", "$let", "$literal", "$range", "$split", "$strLenCP", "from",
    "localField", "foreignField", "as", "path", "preserveNullAndEmptyArrays", "newRoot", "input", "in", "vars", "$db",
    "$[]", "$[x]", "a.$", "$$ROOT", "key", "unique", "name", "id", "coll", "db", "lsid", "txnNumber",
];

const STRINGS: &[&str] = &[
    "c", "d", "a", "$a", "$b.c", "$$ROOT", "$$CURRENT", "$$x", "fuzz.c", "fuzz.d", "fuzz", "admin", "", "$", ".", "a..b",
    "system.views", "^a.*", "(a+)+$", "[", "%Y-%m-%d", "SCRAM-SHA-256", "n,,n=u,r=abc", "1", "-1", "text", "2dsphere",
    "é", "\u{0}", "majority", "local", "snapshot", "x\u{1F600}",
];

/// A scalar BSON value drawn to hit type-specific paths.
fn scalar() -> impl Strategy<Value = Bson> {
    prop_oneof![
        any::<i32>().prop_map(Bson::Int32),
        prop_oneof![Just(0i32), Just(1), Just(-1), Just(2), Just(100), Just(i32::MAX), Just(i32::MIN)].prop_map(Bson::Int32),
        any::<i64>().prop_map(Bson::Int64),
        prop_oneof![Just(0i64), Just(i64::MAX), Just(i64::MIN), Just(1 << 53)].prop_map(Bson::Int64),
        any::<f64>().prop_map(Bson::Double),
        prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-0.0), Just(0.5), Just(1e308)].prop_map(Bson::Double),
        proptest::sample::select(STRINGS).prop_map(|s| Bson::String(s.to_string())),
        "[a-z$.]{0,6}".prop_map(|s| Bson::String(s.replace("keep", "kept"))),
        any::<bool>().prop_map(Bson::Boolean),
        Just(Bson::Null),
        Just(Bson::Undefined),
        Just(Bson::MinKey),
        Just(Bson::MaxKey),
        any::<[u8; 12]>().prop_map(|b| Bson::ObjectId(ObjectId::from_bytes(b))),
        any::<i64>().prop_map(|ms| Bson::DateTime(bson::DateTime::from_millis(ms))),
        any::<[u8; 16]>().prop_map(|b| Bson::Decimal128(bson::Decimal128::from_bytes(b))),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(|bytes| Bson::Binary(Binary { subtype: BinarySubtype::Uuid, bytes })),
        Just(Bson::RegularExpression(regex("a|", "ix"))),
        (any::<u32>(), any::<u32>()).prop_map(|(time, increment)| Bson::Timestamp(bson::Timestamp { time, increment })),
        Just(Bson::JavaScriptCode("function() { return 1 }".into())),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_string),
        1 => "[a-z$.]{0,4}".prop_map(|s| s.replace("keep", "kept")),
    ]
}

/// Nested values up to `depth` levels, shaped like queries, updates and
/// pipelines (operator keys, field paths, small arrays).
fn value(depth: u32) -> impl Strategy<Value = Bson> {
    scalar().prop_recursive(depth, 48, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Bson::Array),
            proptest::collection::vec((key(), inner), 0..5).prop_map(|pairs| Bson::Document(pairs.into_iter().collect())),
        ]
    })
}

fn document(depth: u32) -> impl Strategy<Value = Document> {
    proptest::collection::vec((key(), value(depth)), 0..6).prop_map(|pairs| pairs.into_iter().collect())
}

const FIELDS: &[&str] = &[
    "_id", "a", "b", "a.b", "a.0", "c.d", "x", "tags", "n", "tags.$", "tags.$[]", "tags.$[t]", "a.$[x].b", "a.$.b",
    "a.$[].b.$[t]", "$[t]",
];
const QUERY_OPS: &[&str] = &[
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$type", "$size", "$all", "$regex", "$mod",
    "$elemMatch", "$not",
];
const UPDATE_OPS: &[&str] = &["$set", "$unset", "$inc", "$mul", "$min", "$max", "$push", "$addToSet", "$pull", "$pop", "$rename", "$setOnInsert", "$currentDate"];
const EXPR_OPS: &[&str] = &[
    "$add", "$subtract", "$multiply", "$divide", "$mod", "$concat", "$substr", "$toString", "$toLower", "$cond", "$ifNull",
    "$eq", "$lt", "$and", "$or", "$not", "$size", "$arrayElemAt", "$in", "$split", "$strLenCP", "$abs", "$floor", "$round",
    "$dateToString", "$year", "$literal", "$range", "$reverseArray", "$concatArrays", "$max", "$sum", "$avg", "$type",
];
const ACCUMULATORS: &[&str] = &["$sum", "$avg", "$min", "$max", "$first", "$last", "$push", "$addToSet", "$count"];

fn field() -> impl Strategy<Value = String> {
    prop_oneof![5 => proptest::sample::select(FIELDS).prop_map(str::to_string), 1 => key()]
}

fn field_path() -> impl Strategy<Value = Bson> {
    field().prop_map(|f| Bson::String(format!("${f}")))
}

/// Aggregation expressions: operators over field paths and scalars.
fn expression() -> BoxedStrategy<Bson> {
    prop_oneof![scalar(), field_path()]
        .prop_recursive(3, 24, 3, |inner| {
            (proptest::sample::select(EXPR_OPS), proptest::collection::vec(inner, 0..4))
                .prop_map(|(op, args)| Bson::Document(doc! {op: args}))
        })
        .boxed()
}

fn query() -> BoxedStrategy<Bson> {
    let condition = prop_oneof![
        2 => scalar(),
        2 => proptest::collection::vec((proptest::sample::select(QUERY_OPS), value(2)), 1..3)
            .prop_map(|ops| Bson::Document(ops.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
    ];
    let simple = proptest::collection::vec((field(), condition), 0..3)
        .prop_map(|pairs| Bson::Document(pairs.into_iter().collect()))
        .boxed();
    prop_oneof![
        4 => simple.clone(),
        1 => (proptest::sample::select(&["$and", "$or", "$nor"][..]), proptest::collection::vec(simple, 0..3))
            .prop_map(|(op, items)| Bson::Document(doc! {op: items})),
        1 => expression().prop_map(|e| Bson::Document(doc! {"$expr": e})),
        1 => value(3),
    ]
    .boxed()
}

fn update_document() -> BoxedStrategy<Bson> {
    let fields = proptest::collection::vec((field(), value(2)), 1..3).prop_map(|p| Bson::Document(p.into_iter().collect()));
    prop_oneof![
        4 => proptest::collection::vec((proptest::sample::select(UPDATE_OPS), fields), 1..3)
            .prop_map(|ops| Bson::Document(ops.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        1 => document(2).prop_map(Bson::Document),
        1 => proptest::collection::vec(stage(), 0..3).prop_map(Bson::Array),
    ]
    .boxed()
}

/// `arrayFilters`: filters over the identifiers the update paths use (`t`,
/// `x`), sometimes unused, duplicated, or not filters at all.
fn array_filters() -> BoxedStrategy<Bson> {
    let identifier = proptest::sample::select(&["t", "x", "x.b", "T", "", "$t"][..]);
    let filter = (identifier, prop_oneof![scalar(), query()]).prop_map(|(id, cond)| Bson::Document(doc! {id: cond}));
    proptest::collection::vec(prop_oneof![4 => filter, 1 => scalar()], 0..3).prop_map(Bson::Array).boxed()
}

fn sort_spec() -> impl Strategy<Value = Bson> {
    let direction = prop_oneof![Just(Bson::Int32(1)), Just(Bson::Int32(-1)), Just(Bson::Int32(0)), Just(Bson::Boolean(true)), scalar()];
    proptest::collection::vec((field(), direction), 0..3).prop_map(|p| Bson::Document(p.into_iter().collect()))
}

fn stage() -> BoxedStrategy<Bson> {
    let accumulator = (proptest::sample::select(ACCUMULATORS), expression()).prop_map(|(op, e)| Bson::Document(doc! {op: e}));
    let collection = || proptest::sample::select(&["c", "d", "e"][..]);
    prop_oneof![
        query().prop_map(|q| doc! {"$match": q}),
        (expression(), field(), accumulator).prop_map(|(id, f, acc)| doc! {"$group": {"_id": id, f: acc}}),
        proptest::collection::vec((field(), prop_oneof![Just(Bson::Int32(1)), Just(Bson::Int32(0)), expression()]), 0..3)
            .prop_map(|p| doc! {"$project": p.into_iter().collect::<Document>()}),
        (field(), expression()).prop_map(|(f, e)| doc! {"$addFields": {f: e}}),
        sort_spec().prop_map(|s| doc! {"$sort": s}),
        scalar().prop_map(|n| doc! {"$limit": n}),
        scalar().prop_map(|n| doc! {"$skip": n}),
        (field_path(), any::<bool>()).prop_map(|(p, keep)| doc! {"$unwind": {"path": p, "preserveNullAndEmptyArrays": keep}}),
        (collection(), field(), field()).prop_map(|(from, l, f)| doc! {"$lookup": {"from": from, "localField": l, "foreignField": f, "as": "j"}}),
        field().prop_map(|f| doc! {"$count": f}),
        expression().prop_map(|e| doc! {"$replaceRoot": {"newRoot": e}}),
        collection().prop_map(|c| doc! {"$out": c}),
        value(3).prop_map(|v| doc! {"$unknownStage": v}),
    ]
    .prop_map(Bson::Document)
    .boxed()
}

/// A plausible value for a named command argument (sometimes any value).
fn argument(name: &'static str) -> BoxedStrategy<Bson> {
    let shaped: BoxedStrategy<Bson> = match name {
        "documents" => proptest::collection::vec(document(3).prop_map(Bson::Document), 0..4).prop_map(Bson::Array).boxed(),
        "filter" | "q" | "query" | "partialFilterExpression" => query(),
        "arrayFilters" => array_filters(),
        "update" | "u" => update_document(),
        "updates" => proptest::collection::vec(
            (query(), update_document(), any::<bool>(), any::<bool>(), proptest::option::of(array_filters())).prop_map(
                |(q, u, upsert, multi, filters)| {
                    let mut stmt = doc! {"q": q, "u": u, "upsert": upsert, "multi": multi};
                    if let Some(f) = filters {
                        stmt.insert("arrayFilters", f);
                    }
                    Bson::Document(stmt)
                },
            ),
            0..3,
        )
        .prop_map(Bson::Array)
        .boxed(),
        "deletes" => proptest::collection::vec((query(), 0..2i32).prop_map(|(q, limit)| Bson::Document(doc! {"q": q, "limit": limit})), 0..3)
            .prop_map(Bson::Array)
            .boxed(),
        "pipeline" => proptest::collection::vec(stage(), 0..4).prop_map(Bson::Array).boxed(),
        "sort" | "key" | "projection" | "fields" => sort_spec().boxed(),
        "indexes" => proptest::collection::vec(
            (sort_spec(), "[a-z_]{0,5}", any::<bool>(), proptest::option::of(query())).prop_map(|(key, name, unique, partial)| {
                let mut spec = doc! {"key": key, "name": name, "unique": unique};
                if let Some(p) = partial {
                    spec.insert("partialFilterExpression", p);
                }
                Bson::Document(spec)
            }),
            0..3,
        )
        .prop_map(Bson::Array)
        .boxed(),
        "limit" | "skip" | "batchSize" | "txnNumber" => prop_oneof![(-2..50i64).prop_map(Bson::Int64), scalar()].boxed(),
        _ => value(3).boxed(),
    };
    prop_oneof![4 => shaped, 1 => value(3)].boxed()
}

/// A command: a name (usually a real one) with a collection-ish value,
/// then arguments by name with plausible values.
fn command() -> impl Strategy<Value = Document> {
    let name = prop_oneof![9 => proptest::sample::select(COMMANDS).prop_map(str::to_string), 1 => "[a-zA-Z]{1,8}"];
    let first = prop_oneof![
        4 => proptest::sample::select(&["c", "d", "e"][..]).prop_map(|s| Bson::String(s.to_string())),
        1 => value(2),
    ];
    let args = proptest::collection::vec(proptest::sample::select(ARGUMENTS).prop_flat_map(|name| (Just(name), argument(name))), 0..6);
    (name, first, args).prop_map(|(name, first, args)| {
        let mut body = Document::new();
        body.insert(name, first);
        for (k, v) in args {
            body.insert(k, v);
        }
        // Commands run in the `fuzz` database; the guard data lives in `keep`.
        body.insert("$db", "fuzz");
        body
    })
}

// ---- the dispatcher target ------------------------------------------------------

struct Store {
    _dir: tempfile::TempDir,
    state: ServerState,
}

fn guard_docs() -> Vec<Document> {
    (0..20).map(|i| doc! {"_id": i, "k": format!("k{i}"), "v": {"n": i, "tags": ["x", i]}}).collect()
}

fn conn() -> ConnInfo {
    ConnInfo::new(1, "127.0.0.1:1".into(), "127.0.0.1:2".into(), ConnAuth::default())
}

impl Store {
    fn open() -> Store {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(dir.path()).expect("open store");
        // A short lock timeout: a fuzz case may leave a transaction open.
        let state = ServerState::new(storage, Users::default(), Duration::from_millis(20), Duration::from_secs(60));
        let store = Store { _dir: dir, state };
        let mut c = conn();
        let r = run_command(&store.state, &mut c, &doc! {"createIndexes": "guard", "indexes": [{"key": {"k": 1}, "name": "k_1", "unique": true}], "$db": "keep"});
        assert_eq!(r.get_f64("ok").ok(), Some(1.0), "{r}");
        let r = run_command(&store.state, &mut c, &doc! {"insert": "guard", "documents": guard_docs(), "$db": "keep"});
        assert_eq!(r.get_i32("n").ok(), Some(20), "{r}");
        store
    }

    fn guard_intact(&self) -> Result<(), TestCaseError> {
        let mut c = conn();
        let r = run_command(&self.state, &mut c, &doc! {"find": "guard", "filter": {}, "sort": {"_id": 1}, "batchSize": 100, "$db": "keep"});
        let docs: Vec<Document> = r
            .get_document("cursor")
            .and_then(|cur| cur.get_array("firstBatch"))
            .map(|b| b.iter().filter_map(|d| d.as_document().cloned()).collect())
            .unwrap_or_default();
        prop_assert_eq!(docs, guard_docs(), "guard collection changed: {}", r);
        let r = run_command(&self.state, &mut c, &doc! {"insert": "guard", "documents": [{"k": "k3"}], "$db": "keep"});
        let code = r.get_array("writeErrors").ok().and_then(|e| e.first()).and_then(|e| e.as_document()).and_then(|e| e.get_i32("code").ok());
        prop_assert_eq!(code, Some(11000), "unique index on the guard collection no longer enforced: {}", r);
        Ok(())
    }
}

#[test]
fn command_dispatcher() {
    let store = Store::open();
    let mut runner = proptest::test_runner::TestRunner::new(config(300));
    let result = runner.run(&proptest::collection::vec(command(), 1..4), |cmds| {
        let mut c = conn();
        for body in &cmds {
            let reply = run_command(&store.state, &mut c, body);
            check_reply(&reply)?;
        }
        // Whatever a case left open must not hold the writer lock for the next.
        store.state.sessions.abort_all();
        store.guard_intact()
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ---- the socket target ----------------------------------------------------------

fn read_reply(s: &mut TcpStream) -> Option<Document> {
    let (h, p) = wire::read_message(s).ok()??;
    wire::parse_reply(&h, &p).ok()
}

#[test]
fn socket_streams() {
    let server = TestServer::start();
    let addr = server.handle.as_ref().map(|h| h.address()).unwrap_or_default();
    {
        let mut c = server.client();
        c.ok("keep", doc! {"createIndexes": "guard", "indexes": [{"key": {"k": 1}, "name": "k_1", "unique": true}]});
        c.ok("keep", doc! {"insert": "guard", "documents": guard_docs()});
    }
    let strategy = (0usize..5, proptest::collection::vec(edit(), 0..5), any::<bool>(), 1usize..4);
    let mut runner = proptest::test_runner::TestRunner::new(config(120));
    let result = runner.run(&strategy, |(seed, edits, fit, repeat)| {
        let seeds = seed_messages();
        let mut msg = seeds[seed % seeds.len()].clone();
        for e in &edits {
            apply(&mut msg, e);
        }
        if fit {
            refit(&mut msg);
        }
        let mut s = TcpStream::connect(&addr).map_err(|e| TestCaseError::fail(e.to_string()))?;
        s.set_read_timeout(Some(Duration::from_millis(500))).ok();
        for _ in 0..repeat {
            if s.write_all(&msg).is_err() {
                break;
            }
        }
        // Ending our side makes the server see end of stream once it has
        // answered; the read timeout covers a server that waits anyway.
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = [0u8; 4096];
        while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
        drop(s);
        let mut probe = TcpStream::connect(&addr).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let ping = wire::encode_msg(1, 0, 0, &doc! {"ping": 1, "$db": "admin"}).map_err(|e| TestCaseError::fail(e.to_string()))?;
        probe.write_all(&ping).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let reply = read_reply(&mut probe);
        prop_assert_eq!(reply.and_then(|r| r.get_f64("ok").ok()), Some(1.0));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let mut c = server.client();
    let mut found = c.find_all("keep", "guard");
    found.sort_by_key(|d| d.get_i32("_id").unwrap_or(-1));
    assert_eq!(found, guard_docs());
}
