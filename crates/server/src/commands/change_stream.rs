//! Change streams: `aggregate` with a first `$changeStream` stage opens a
//! tailable cursor on the change log (`crate::changes`); each getMore
//! returns the events committed since, waiting up to its `maxTimeMS` (one
//! second by default, as mongod) for one to arrive.
//!
//! A stream watches a collection (`{aggregate: "c"}`), a database
//! (`{aggregate: 1}`) or, on `admin` with `allChangesForCluster`, every
//! database. Options: `fullDocument` (`default`, `updateLookup`,
//! `whenAvailable`, `required`), `fullDocumentBeforeChange` (`off`,
//! `whenAvailable`, `required`; images are kept for collections created
//! with `changeStreamPreAndPostImages: {enabled: true}`), `resumeAfter`,
//! `startAfter`, `startAtOperationTime`, `showExpandedEvents`. The stages
//! after it (`$match`, `$project`, `$addFields`/`$set`, `$unset`,
//! `$replaceRoot`/`$replaceWith`, `$redact`) shape each event.
use super::{num_i64, opt_doc, opt_i64, Ctx};
use crate::changes::{pack, BeforeChange, Entry, FullDocument, Position, Stream, Watch};
use crate::cursor::{Live, LiveKind};
use crate::error::{CmdResult, CommandError};
use bson::{doc, Bson, Document};
use djongo_engine::pipeline::NoCollections;
use std::time::{Duration, Instant};

/// mongod's default wait of a getMore on an awaitData cursor.
const DEFAULT_AWAIT: Duration = Duration::from_millis(1000);
/// Stages allowed after `$changeStream`.
const ALLOWED_STAGES: &[&str] = &["$match", "$project", "$addFields", "$set", "$unset", "$replaceRoot", "$replaceWith", "$redact"];

/// The other stages MongoDB knows (refused after `$changeStream` as not
/// permitted there rather than unknown).
const KNOWN_STAGES: &[&str] = &[
    "$bucket", "$bucketAuto", "$changeStream", "$collStats", "$count", "$currentOp", "$densify", "$documents", "$facet", "$fill", "$geoNear",
    "$graphLookup", "$group", "$indexStats", "$limit", "$listLocalSessions", "$listSessions", "$lookup", "$merge", "$out", "$sample", "$search",
    "$searchMeta", "$setWindowFields", "$skip", "$sort", "$sortByCount", "$unionWith", "$unwind", "$vectorSearch",
];

fn stage_name(stage: &Document) -> &str {
    stage.keys().next().map(String::as_str).unwrap_or("")
}

/// Whether `body` is an aggregate opening a change stream.
pub fn opens_stream(name: &str, body: &Document) -> bool {
    name == "aggregate"
        && matches!(body.get("pipeline"), Some(Bson::Array(stages)) if stages.first().is_some_and(|s| matches!(s, Bson::Document(d) if stage_name(d) == "$changeStream")))
}

fn unknown_field(field: &str) -> CommandError {
    CommandError::new(40415, "IDLUnknownField", format!("BSON field '$changeStream.{field}' is an unknown field."))
}

fn string_option<'a>(spec: &'a Document, key: &str) -> CmdResult<Option<&'a str>> {
    match spec.get(key) {
        None => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s)),
        Some(_) => Err(CommandError::type_mismatch(format!("BSON field '$changeStream.{key}' is the wrong type, expected type 'string'"))),
    }
}

/// Opens a change stream.
pub fn open(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Document> {
    if ctx.scope.in_transaction() {
        return Err(CommandError::new(263, "OperationNotSupportedInTransaction", "Operation not permitted in transaction :: caused by :: $changeStream"));
    }
    let mut pipeline = super::doc_array(body, "pipeline")?;
    let first = pipeline.remove(0);
    let spec = match first.get("$changeStream") {
        Some(Bson::Document(d)) => d.clone(),
        _ => return Err(CommandError::failed_to_parse("the $changeStream stage specification must be an object")),
    };
    for stage in &pipeline {
        let name = stage_name(stage);
        if name == "$changeStream" {
            return Err(CommandError::new(40602, "Location40602", "$changeStream is only valid as the first stage in a pipeline"));
        }
        if !ALLOWED_STAGES.contains(&name) {
            if !KNOWN_STAGES.contains(&name) {
                return Err(CommandError::new(40324, "Location40324", format!("Unrecognized pipeline stage name: '{name}'")));
            }
            return Err(CommandError::new(20, "IllegalOperation", format!("{name} is not permitted in a $changeStream pipeline")));
        }
    }
    for key in spec.keys() {
        if !matches!(
            key.as_str(),
            "fullDocument" | "fullDocumentBeforeChange" | "resumeAfter" | "startAfter" | "startAtOperationTime" | "allChangesForCluster" | "showExpandedEvents"
        ) {
            return Err(unknown_field(key));
        }
    }
    let full_document = match string_option(&spec, "fullDocument")? {
        None | Some("default") => FullDocument::Default,
        Some("updateLookup") => FullDocument::UpdateLookup,
        Some("whenAvailable") => FullDocument::WhenAvailable,
        Some("required") => FullDocument::Required,
        Some(other) => return Err(CommandError::bad_value(format!("'{other}' is not a valid value for $changeStream.fullDocument"))),
    };
    let before_change = match string_option(&spec, "fullDocumentBeforeChange")? {
        None | Some("off") => BeforeChange::Off,
        Some("whenAvailable") => BeforeChange::WhenAvailable,
        Some("required") => BeforeChange::Required,
        Some(other) => return Err(CommandError::bad_value(format!("'{other}' is not a valid value for $changeStream.fullDocumentBeforeChange"))),
    };
    let flag = |key: &str| -> CmdResult<bool> {
        match spec.get(key) {
            None => Ok(false),
            Some(Bson::Boolean(b)) => Ok(*b),
            Some(_) => Err(CommandError::type_mismatch(format!("BSON field '$changeStream.{key}' is the wrong type, expected type 'bool'"))),
        }
    };
    let all_for_cluster = flag("allChangesForCluster")?;
    let show_expanded = flag("showExpandedEvents")?;
    let db = ctx.db.clone();
    let (watch, ns) = match body.get("aggregate") {
        Some(Bson::String(coll)) => {
            if matches!(db.as_str(), "admin" | "config" | "local") || coll.starts_with("system.") {
                return Err(CommandError::invalid_namespace(format!("$changeStream may not be opened on the internal {db}.{coll} namespace")));
            }
            (Watch::Collection { db: db.clone(), coll: coll.clone() }, format!("{db}.{coll}"))
        }
        Some(v) if num_i64(v) == Some(1) => {
            if all_for_cluster {
                if db != "admin" {
                    return Err(CommandError::invalid_namespace("$changeStream with allChangesForCluster must be run against the 'admin' database"));
                }
                (Watch::Cluster, "admin.$cmd.aggregate".to_string())
            } else {
                if matches!(db.as_str(), "admin" | "config" | "local") {
                    return Err(CommandError::invalid_namespace(format!("$changeStream may not be opened on the internal {db} database")));
                }
                (Watch::Database { db: db.clone() }, format!("{db}.$cmd.aggregate"))
            }
        }
        _ => return Err(CommandError::invalid_namespace("aggregate must name a collection or be 1")),
    };
    if all_for_cluster && !matches!(watch, Watch::Cluster) {
        return Err(CommandError::bad_value("allChangesForCluster is only valid on a database-level aggregate against admin"));
    }
    let resume_options = ["resumeAfter", "startAfter", "startAtOperationTime"].iter().filter(|k| spec.contains_key(**k)).count();
    if resume_options > 1 {
        return Err(CommandError::new(40674, "Location40674", "Only one type of resume option is allowed, but multiple were found."));
    }
    let log = &ctx.state.changes;
    let position = if let Some(token) = spec.get("resumeAfter").or_else(|| spec.get("startAfter")) {
        Position::from_token(token).ok_or_else(|| CommandError::new(260, "InvalidResumeToken", format!("Invalid resume token: {token}")))?
    } else if let Some(at) = spec.get("startAtOperationTime") {
        let Bson::Timestamp(t) = at else {
            return Err(CommandError::type_mismatch("BSON field '$changeStream.startAtOperationTime' is the wrong type, expected type 'timestamp'"));
        };
        Position::before(pack(*t))
    } else {
        log.high_water()
    };
    if log.lost(position) {
        return Err(CommandError::new(
            286,
            "ChangeStreamHistoryLost",
            "Resume of change stream was not possible, as the resume point may no longer be in the oplog (this server keeps the events since it started, up to a bound).",
        ));
    }
    let batch_size = match opt_doc(body, "cursor")?.and_then(|c| c.get("batchSize").and_then(num_i64)) {
        Some(n) if n < 0 => return Err(CommandError::bad_value("batchSize must be non-negative")),
        Some(n) => n as usize,
        None => crate::cursor::DEFAULT_FIRST_BATCH,
    };
    let mut stream = Stream { watch, position, pipeline, full_document, before_change, show_expanded };
    // The first batch never waits.
    let (batch, ended) = next_batch(ctx, &mut stream, batch_size, None)?;
    let token = stream.position.token();
    let id = if ended { 0 } else { ctx.state.cursors.register_live(ns.clone(), Live::Stream(Box::new(stream))) };
    Ok(doc! {"cursor": {"firstBatch": batch, "postBatchResumeToken": token, "id": id, "ns": ns}, "ok": 1.0})
}

/// Serves a getMore on a change stream; `None` if `body`'s cursor is not one.
pub fn get_more(ctx: &mut Ctx<'_>, body: &Document) -> CmdResult<Option<Document>> {
    let Some(id) = body.get("getMore").and_then(num_i64) else { return Ok(None) };
    let Some(Bson::String(coll)) = body.get("collection") else { return Ok(None) };
    let ns = format!("{}.{coll}", ctx.db);
    let Some(Live::Stream(mut stream)) = ctx.state.cursors.take_live(id, &ns, LiveKind::Stream)? else { return Ok(None) };
    let batch_size = opt_i64(body, "batchSize")?.filter(|n| *n > 0).map_or(usize::MAX, |n| n as usize);
    let wait = super::concerns::max_time_ms(body, "getMore")?.map_or(DEFAULT_AWAIT, Duration::from_millis);
    let result = next_batch(ctx, &mut stream, batch_size, Some(Instant::now() + wait));
    let (batch, ended) = match result {
        Ok(r) => r,
        Err(e) => {
            ctx.state.cursors.kill(&[id]);
            return Err(e);
        }
    };
    let token = stream.position.token();
    let id = if ended {
        ctx.state.cursors.kill(&[id]);
        0
    } else {
        ctx.state.cursors.return_live(id, Live::Stream(stream));
        id
    };
    Ok(Some(doc! {"cursor": {"nextBatch": batch, "postBatchResumeToken": token, "id": id, "ns": ns}, "ok": 1.0}))
}

/// The next events of `stream`, shaped; `true` when the stream has ended
/// (its collection or database went away: the batch ends with an
/// `invalidate` event).
fn next_batch(ctx: &mut Ctx<'_>, stream: &mut Stream, limit: usize, deadline: Option<Instant>) -> CmdResult<(Vec<Bson>, bool)> {
    let watch = stream.watch.clone();
    let expanded = stream.show_expanded;
    let (entries, reached) = ctx.state.changes.read(stream.position, limit, deadline, |e| watch.shows(&e.change, expanded));
    let mut batch = Vec::with_capacity(entries.len());
    stream.position = reached;
    for entry in entries {
        let ends = watch.ended_by(&entry.change);
        if let Some(event) = shape(ctx, stream, &entry)? {
            batch.push(Bson::Document(event));
        }
        if ends {
            // The invalidate event sorts right after the event that caused
            // it; `startAfter` its token opens a stream from there.
            let position = Position { time: entry.position.time, index: entry.position.index | INVALIDATE_BIT };
            stream.position = position;
            let invalidate = doc! {
                "_id": position.token(),
                "operationType": "invalidate",
                "clusterTime": entry.position.timestamp(),
                "wallTime": entry.wall_time,
            };
            if let Some(event) = through_pipeline(stream, invalidate)? {
                batch.push(Bson::Document(event));
            }
            return Ok((batch, true));
        }
    }
    Ok((batch, false))
}

/// Marks the position of an `invalidate` event (after its cause).
const INVALIDATE_BIT: u32 = 1 << 31;

/// An event as the stream shows it: with the documents its options ask
/// for, through the stream's own stages.
fn shape(ctx: &mut Ctx<'_>, stream: &Stream, entry: &Entry) -> CmdResult<Option<Document>> {
    let mut event = entry.event();
    let operation = event.get_str("operationType").unwrap_or("").to_string();
    let change = &entry.change;
    if stream.show_expanded {
        if let Some(uuid) = &change.collection_uuid {
            event.insert("collectionUUID", uuid.clone());
        }
        if let Some(fields) = &change.expanded_fields {
            for (k, v) in fields {
                event.insert(k.clone(), v.clone());
            }
        }
        if let (Some(paths), Ok(description)) = (&change.disambiguated, event.get_document_mut("updateDescription")) {
            if !paths.is_empty() {
                description.insert("disambiguatedPaths", paths.clone());
            }
        }
    }
    if operation == "update" {
        match stream.full_document {
            FullDocument::Default => {}
            FullDocument::UpdateLookup => {
                let current = look_up(ctx, &event)?;
                event.insert("fullDocument", current.map_or(Bson::Null, Bson::Document));
            }
            FullDocument::WhenAvailable => {
                event.insert("fullDocument", change.post_image.clone().map_or(Bson::Null, Bson::Document));
            }
            FullDocument::Required => match &change.post_image {
                Some(image) => {
                    event.insert("fullDocument", image.clone());
                }
                None => return Err(no_image("post-image")),
            },
        }
    }
    if matches!(operation.as_str(), "update" | "replace" | "delete") {
        match stream.before_change {
            BeforeChange::Off => {}
            BeforeChange::WhenAvailable => {
                event.insert("fullDocumentBeforeChange", change.pre_image.clone().map_or(Bson::Null, Bson::Document));
            }
            BeforeChange::Required => match &change.pre_image {
                Some(image) => {
                    event.insert("fullDocumentBeforeChange", image.clone());
                }
                None => return Err(no_image("pre-image")),
            },
        }
    }
    through_pipeline(stream, event)
}

fn no_image(which: &str) -> CommandError {
    CommandError::new(
        47,
        "NoMatchingDocument",
        format!("Change stream was configured to require a {which} for all update, delete and replace events, but the {which} was not available (the collection needs changeStreamPreAndPostImages: {{enabled: true}})"),
    )
}

/// The document an update event's key names, as it is now (`updateLookup`).
fn look_up(ctx: &mut Ctx<'_>, event: &Document) -> CmdResult<Option<Document>> {
    let (Ok(ns), Ok(key)) = (event.get_document("ns"), event.get_document("documentKey")) else { return Ok(None) };
    let (Ok(db), Ok(coll)) = (ns.get_str("db"), ns.get_str("coll")) else { return Ok(None) };
    let Some(id) = key.get("_id") else { return Ok(None) };
    let tables = ctx.scope.read()?;
    let Some(meta) = tables.collection(db, coll)? else { return Ok(None) };
    tables.get_by_id_key(&meta, &crate::keyenc::encode_one(id))
}

/// Runs an event through the stream's stages; `None` if they filter it
/// out. The resume token (`_id`) must survive them.
fn through_pipeline(stream: &Stream, event: Document) -> CmdResult<Option<Document>> {
    if stream.pipeline.is_empty() {
        return Ok(Some(event));
    }
    let token = event.get("_id").cloned();
    let mut out = djongo_engine::run_pipeline(&stream.pipeline, vec![event], &NoCollections)?;
    let Some(shaped) = out.pop() else { return Ok(None) };
    if shaped.get("_id") != token.as_ref() {
        return Err(CommandError::new(
            280,
            "ChangeStreamFatalError",
            "Encountered an event whose _id field, which contains the resume token, was modified by the pipeline. Modifying the _id field of an event makes it impossible to resume the stream from that point. Only transformations that retain the unmodified _id field are allowed.",
        ));
    }
    Ok(Some(shaped))
}
