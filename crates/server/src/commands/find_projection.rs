//! A find's projection, parsed once per distinct projection: Django sends
//! the same few projections (one per model and column list) with every
//! `find`, and parsing one (its tree, its renames, the fields it reads) cost
//! about a tenth of a `get(pk)` in the engine.
use super::stored_projection::StoredRenames;
use crate::error::CmdResult;
use bson::Document;
use djongo_engine::projection::FindProjection;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Distinct projections kept; past this the cache starts over.
const MAX_PROJECTIONS: usize = 1024;

/// What a find needs of its projection.
pub struct Parsed {
    /// `None` when only `{$meta: "textScore"}` fields were asked for.
    pub projection: Option<FindProjection>,
    /// The names that receive the text score.
    pub score_fields: Vec<String>,
    /// The top-level fields the projection reads (`None`: every field).
    pub fields: Option<Vec<String>>,
    /// The projection for stored bytes, when it only renames top-level
    /// fields (and asks for no text score).
    pub stored: Option<StoredRenames>,
}

fn parse(spec: &Document, filter: &Document, has_text: bool) -> CmdResult<Parsed> {
    let (rest, score_fields) = super::text_search::split_projection(spec, has_text)?;
    let projection = if rest.is_empty() { None } else { Some(FindProjection::parse(&rest, filter)?) };
    let mut needs = djongo_engine::deps::Needs::default();
    djongo_engine::deps::projection_needs(spec, &mut needs);
    let stored = match &projection {
        Some(p) if score_fields.is_empty() => p.renames().and_then(StoredRenames::new),
        _ => None,
    };
    Ok(Parsed { projection, score_fields, fields: needs.top_level(), stored })
}

/// `spec` parsed, from the cache when it was seen before. A positional
/// projection (`"a.$"`) depends on the filter and is parsed every time.
pub fn parsed(spec: &Document, filter: &Document, has_text: bool) -> CmdResult<Arc<Parsed>> {
    if spec.keys().any(|k| k.ends_with(".$")) {
        return Ok(Arc::new(parse(spec, filter, has_text)?));
    }
    static CACHE: OnceLock<Mutex<HashMap<Vec<u8>, Arc<Parsed>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let mut key = Vec::with_capacity(128);
    key.push(u8::from(has_text));
    if spec.to_writer(&mut key).is_err() {
        return Ok(Arc::new(parse(spec, filter, has_text)?));
    }
    if let Some(hit) = cache.lock().get(&key) {
        return Ok(hit.clone());
    }
    // Errors are not cached: a bad projection is refused each time.
    let parsed = Arc::new(parse(spec, filter, has_text)?);
    let mut map = cache.lock();
    if map.len() >= MAX_PROJECTIONS {
        map.clear();
    }
    map.insert(key, parsed.clone());
    Ok(parsed)
}
