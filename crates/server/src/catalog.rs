//! The catalog: which databases and collections exist, their options and
//! index specifications. Stored as one BSON document per collection in the
//! `catalog` table, keyed by namespace (`db.collection`).
use crate::error::{CmdResult, CommandError};
use bson::{doc, Binary, Bson, Document};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// One collection's catalog entry.
#[derive(Debug, Clone)]
pub struct CollectionMeta {
    pub db: String,
    pub name: String,
    /// Internal id; document and index keys are prefixed with it, so a
    /// rename only rewrites the catalog entry.
    pub id: u64,
    pub uuid: Binary,
    pub options: Document,
    /// Shared between copies: a command copies its collection's entry, and
    /// only index DDL changes the list (`Arc::make_mut`).
    pub indexes: Arc<Vec<IndexSpec>>,
    pub next_index_id: u32,
    /// The collections whose foreign keys refer to this one
    /// (`foreign_keys`), kept by the engine, not listed as an option.
    pub referenced_by: Arc<Vec<crate::foreign_keys::Referrer>>,
    /// Its own foreign keys (the `foreignKeys` option), decoded once.
    pub foreign_keys: Arc<Vec<crate::foreign_keys::ForeignKey>>,
}

/// A secondary index (the `_id` index is implicit: documents are keyed by `_id`).
#[derive(Debug, Clone)]
pub struct IndexSpec {
    pub id: u32,
    pub name: String,
    pub key: Document,
    pub unique: bool,
    pub sparse: bool,
    pub partial: Option<Document>,
    /// `partial`, parsed once for the documents every write indexes (`None`
    /// when there is none, or when it does not parse: then `keys_for`
    /// parses it again to report why).
    pub partial_filter: Option<Arc<djongo_engine::Filter>>,
    /// The spec as the client gave it, returned by listIndexes.
    pub spec: Document,
    /// A text index's definition (its key is `{_fts: "text", _ftsx: 1}`).
    pub text: Option<Arc<crate::text::TextSpec>>,
    /// A wildcard index's covered paths (its key is `{"$**": 1}` or `{"a.$**": 1}`).
    pub wildcard: Option<Arc<crate::wildcard::Wildcard>>,
    /// The index's collation (`None`: simple): its keys hold the strings'
    /// collation keys, so values the collation calls equal are one key.
    pub collation: Option<Arc<djongo_engine::collation::Collation>>,
}

pub const ID_INDEX_NAME: &str = "_id_";

impl CollectionMeta {
    pub fn ns(&self) -> String {
        format!("{}.{}", self.db, self.name)
    }

    pub fn to_document(&self) -> Document {
        let indexes: Vec<Bson> = self
            .indexes
            .iter()
            .map(|ix| {
                Bson::Document(doc! {
                    "id": i64::from(ix.id),
                    "spec": ix.spec.clone(),
                })
            })
            .collect();
        let mut d = doc! {
            "db": &self.db,
            "name": &self.name,
            "id": self.id as i64,
            "uuid": self.uuid.clone(),
            "options": self.options.clone(),
            "indexes": indexes,
            "nextIndexId": i64::from(self.next_index_id),
        };
        if !self.referenced_by.is_empty() {
            let referrers: Vec<Bson> =
                self.referenced_by.iter().map(|r| Bson::Document(doc! {"collection": &r.collection, "field": &r.field})).collect();
            d.insert("referencedBy", referrers);
        }
        d
    }

    pub fn from_document(d: &Document) -> CmdResult<CollectionMeta> {
        let corrupt = |what: &str| CommandError::internal(format!("corrupt catalog entry: {what}"));
        let mut indexes = Vec::new();
        for ix in d.get_array("indexes").map_err(|_| corrupt("indexes"))? {
            let Bson::Document(ix) = ix else { return Err(corrupt("index")) };
            let id = ix.get_i64("id").map_err(|_| corrupt("index id"))? as u32;
            let spec = ix.get_document("spec").map_err(|_| corrupt("index spec"))?;
            indexes.push(IndexSpec::from_spec(id, spec)?);
        }
        let mut referenced_by = Vec::new();
        if let Ok(list) = d.get_array("referencedBy") {
            for r in list {
                let Bson::Document(r) = r else { return Err(corrupt("referencedBy")) };
                referenced_by.push(crate::foreign_keys::Referrer {
                    collection: r.get_str("collection").map_err(|_| corrupt("referencedBy"))?.to_string(),
                    field: r.get_str("field").map_err(|_| corrupt("referencedBy"))?.to_string(),
                });
            }
        }
        let uuid = match d.get("uuid") {
            Some(Bson::Binary(b)) => b.clone(),
            _ => return Err(corrupt("uuid")),
        };
        Ok(CollectionMeta {
            db: d.get_str("db").map_err(|_| corrupt("db"))?.to_string(),
            name: d.get_str("name").map_err(|_| corrupt("name"))?.to_string(),
            id: d.get_i64("id").map_err(|_| corrupt("id"))? as u64,
            uuid,
            options: d.get_document("options").cloned().unwrap_or_default(),
            indexes: Arc::new(indexes),
            next_index_id: d.get_i64("nextIndexId").unwrap_or(1) as u32,
            referenced_by: Arc::new(referenced_by),
            foreign_keys: Arc::new(crate::foreign_keys::parse(d.get_document("options").unwrap_or(&Document::new()))?),
        })
    }

    /// The entry stored as `raw` (catalog bytes), decoded once per process:
    /// every command reads its collection's entry, and decoding it (with its
    /// index specifications) cost more than a point read. Keyed by the bytes
    /// themselves, so any snapshot, transaction or store gets what it stored.
    pub fn from_stored(raw: &[u8]) -> CmdResult<CollectionMeta> {
        const CAPACITY: usize = 4096;
        static DECODED: OnceLock<Mutex<HashMap<Box<[u8]>, CollectionMeta>>> = OnceLock::new();
        let cache = DECODED.get_or_init(|| Mutex::new(HashMap::new()));
        if let Some(meta) = cache.lock().get(raw) {
            return Ok(meta.clone());
        }
        let document = Document::from_reader(raw).map_err(|e| CommandError::internal(format!("corrupt catalog entry: {e}")))?;
        let meta = CollectionMeta::from_document(&document)?;
        let mut cache = cache.lock();
        if cache.len() >= CAPACITY {
            cache.clear();
        }
        cache.insert(raw.into(), meta.clone());
        Ok(meta)
    }

    pub fn index(&self, name: &str) -> Option<&IndexSpec> {
        self.indexes.iter().find(|ix| ix.name == name)
    }

    /// The `_id` index description as listIndexes reports it.
    pub fn id_index_spec() -> Document {
        doc! {"v": 2, "key": {"_id": 1}, "name": ID_INDEX_NAME}
    }
}

impl IndexSpec {
    /// A hidden index is kept up to date (and still enforces `unique`) but
    /// no query uses it, hinted or not, until `collMod` unhides it.
    pub fn is_hidden(&self) -> bool {
        truthy(self.spec.get("hidden"))
    }

    /// Validates a createIndexes entry (`{key, name, unique, sparse, partialFilterExpression}`).
    pub fn from_spec(id: u32, spec: &Document) -> CmdResult<IndexSpec> {
        // A text index is stored as MongoDB stores it (`{_fts: "text",
        // _ftsx: 1}`, weights...); its default name comes from the key given.
        let (normalized, text_name) = match spec.get("key") {
            Some(Bson::Document(k)) if crate::text::is_text_key(k) => {
                let normalized = crate::text::TextSpec::normalize(spec)?;
                (Some(normalized), Some(default_index_name(k)))
            }
            _ => (None, None),
        };
        let spec = normalized.as_ref().unwrap_or(spec);
        let text = match &normalized {
            Some(n) => Some(Arc::new(crate::text::TextSpec::from_normalized(n)?)),
            None => None,
        };
        let key = match spec.get("key") {
            Some(Bson::Document(k)) if !k.is_empty() => k.clone(),
            _ => return Err(CommandError::new(67, "CannotCreateIndex", "index specification must have a non-empty 'key' document")),
        };
        let name = match spec.get("name") {
            Some(Bson::String(n)) if !n.is_empty() => n.clone(),
            None => text_name.unwrap_or_else(|| default_index_name(&key)),
            _ => return Err(CommandError::new(67, "CannotCreateIndex", "index 'name' must be a non-empty string")),
        };
        let wildcard = crate::wildcard::Wildcard::from_spec(spec, &key)?.map(Arc::new);
        if key.values().any(crate::hashed::is_hashed_direction) {
            crate::hashed::validate(spec, &key)?;
        }
        let collation = match spec.get("collation") {
            Some(c) => djongo_engine::collation::parse(c)?,
            None => None,
        };
        let special = text.is_some() || wildcard.is_some() || key.values().any(|d| crate::hashed::is_hashed_direction(d) || crate::geo_index::is_geo_direction(d));
        if collation.is_some() && special {
            return Err(CommandError::new(115, "CommandNotSupported", "a collation on a text, wildcard, hashed or 2dsphere index is not supported by the embedded engine"));
        }
        let unique = truthy(spec.get("unique"));
        let sparse = truthy(spec.get("sparse"));
        let partial = match spec.get("partialFilterExpression") {
            Some(Bson::Document(p)) => Some(p.clone()),
            None => None,
            Some(_) => return Err(CommandError::type_mismatch("partialFilterExpression must be a document")),
        };
        // listIndexes shows {v, key, name, options...} as MongoDB does.
        let mut stored = doc! {"v": spec.get("v").cloned().unwrap_or(Bson::Int32(2)), "key": key.clone(), "name": name.clone()};
        for (k, v) in spec {
            if !matches!(k.as_str(), "v" | "key" | "name") {
                stored.insert(k.clone(), v.clone());
            }
        }
        if key.values().any(crate::geo_index::is_geo_direction) && !stored.contains_key("2dsphereIndexVersion") {
            stored.insert("2dsphereIndexVersion", crate::geo_index::INDEX_VERSION);
        }
        let partial_filter = partial.as_ref().and_then(|p| djongo_engine::Filter::parse(p).ok()).map(Arc::new);
        Ok(IndexSpec { id, name, key, unique, sparse, partial, partial_filter, spec: stored, text, wildcard, collation })
    }

    /// Whether two specs describe the same index (createIndexes is idempotent for those).
    pub fn same_definition(&self, other: &IndexSpec) -> bool {
        self.key == other.key
            && self.unique == other.unique
            && self.sparse == other.sparse
            && self.partial == other.partial
            && self.text == other.text
            && self.wildcard == other.wildcard
            && self.collation == other.collation
    }

    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.key.keys().map(String::as_str)
    }

    /// Whether one field holds hashes of values (`"hashed"`).
    pub fn is_hashed(&self) -> bool {
        self.key.values().any(crate::hashed::is_hashed_direction)
    }

    /// Per field, whether its entries are stored in descending order (a
    /// negative direction in the key pattern).
    pub fn descending(&self) -> Vec<bool> {
        self.key.values().map(|dir| direction(dir).is_some_and(|d| d < 0.0)).collect()
    }

    /// Whether every field of the key pattern is an ordered direction (a
    /// non-zero number), so that entries are in value order and the planner
    /// may use the index; "text", "hashed", "2dsphere" and the like are not.
    pub fn is_ordered(&self) -> bool {
        self.key.values().all(|dir| direction(dir).is_some_and(|d| d != 0.0))
    }
}

/// A key pattern's direction for a field, if it is a number.
fn direction(v: &Bson) -> Option<f64> {
    djongo_engine::num::Num::from_bson(v).map(|n| n.to_f64())
}

/// MongoDB's default index name: `a_1_b_-1`.
pub fn default_index_name(key: &Document) -> String {
    key.iter()
        .map(|(k, v)| {
            let dir = match v {
                Bson::Int32(i) => i.to_string(),
                Bson::Int64(i) => i.to_string(),
                Bson::Double(f) if f.fract() == 0.0 => format!("{}", *f as i64),
                Bson::Double(f) => f.to_string(),
                Bson::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{k}_{dir}")
        })
        .collect::<Vec<_>>()
        .join("_")
}

pub fn truthy(v: Option<&Bson>) -> bool {
    match v {
        Some(Bson::Boolean(b)) => *b,
        Some(Bson::Int32(i)) => *i != 0,
        Some(Bson::Int64(i)) => *i != 0,
        Some(Bson::Double(f)) => *f != 0.0,
        Some(Bson::Null) | None => false,
        Some(_) => true,
    }
}

/// Checks a database name the way MongoDB does (no `/\. "$` and not empty).
pub fn validate_db_name(db: &str) -> CmdResult<()> {
    if db.is_empty() || db.len() > 63 || db.contains(['/', '\\', '.', ' ', '"', '$', '\0']) {
        return Err(CommandError::invalid_namespace(format!("Invalid database name: '{db}'")));
    }
    Ok(())
}

pub fn validate_collection_name(name: &str) -> CmdResult<()> {
    if name.is_empty() || name.contains('\0') || name.starts_with('.') || name.contains('$') {
        return Err(CommandError::invalid_namespace(format!("Invalid collection name: '{name}'")));
    }
    Ok(())
}

/// Refuses writes MongoDB refuses by namespace (`userAllowedWriteNS`):
/// `system.profile` and `system.views` ("cannot write to"), every other
/// `system.*` collection ("Invalid system namespace", InvalidNamespace 73)
/// and a `.system.` inside a name ("Invalid namespace", BadValue 2).
///
/// mongod lets a client write the few system collections it manages itself
/// (`system.users`, `system.js`, `admin.system.roles`...). This engine keeps
/// none of them (users come from `--user`), so it refuses those too, with
/// the error mongod gives for the others.
pub fn check_writable(db: &str, coll: &str) -> CmdResult<()> {
    if coll == "system.profile" || coll == "system.views" {
        return Err(CommandError::invalid_namespace(format!("cannot write to {db}.{coll}")));
    }
    if coll.starts_with("system.") {
        return Err(CommandError::invalid_namespace(format!("Invalid system namespace: {db}.{coll}")));
    }
    if coll.contains(".system.") {
        return Err(CommandError::bad_value(format!("Invalid namespace: {db}.{coll}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_namespaces_are_not_writable() {
        let code = |db, coll| check_writable(db, coll).err().map(|e| (e.code, e.message));
        assert_eq!(code("admin", "system.users"), Some((73, "Invalid system namespace: admin.system.users".into())));
        assert_eq!(code("blog", "system.indexes"), Some((73, "Invalid system namespace: blog.system.indexes".into())));
        assert_eq!(code("blog", "system.views"), Some((73, "cannot write to blog.system.views".into())));
        assert_eq!(code("blog", "a.system.b"), Some((2, "Invalid namespace: blog.a.system.b".into())));
        assert_eq!(code("blog", "systems"), None);
        assert_eq!(code("blog", "fs.files"), None);
    }

    #[test]
    fn default_names() {
        assert_eq!(default_index_name(&doc! {"a": 1, "b": -1}), "a_1_b_-1");
        assert_eq!(default_index_name(&doc! {"t": "text"}), "t_text");
    }

    #[test]
    fn meta_round_trip() {
        let spec = IndexSpec::from_spec(3, &doc! {"key": {"email": 1}, "unique": true, "partialFilterExpression": {"email": {"$type": "string"}}}).unwrap();
        let meta = CollectionMeta {
            db: "d".into(),
            name: "c.x".into(),
            id: 7,
            uuid: Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![1; 16] },
            options: doc! {},
            indexes: Arc::new(vec![spec]),
            next_index_id: 4,
            referenced_by: Default::default(),
            foreign_keys: Default::default(),
        };
        let back = CollectionMeta::from_document(&meta.to_document()).unwrap();
        assert_eq!(back.ns(), "d.c.x");
        assert_eq!(back.indexes[0].name, "email_1");
        assert!(back.indexes[0].unique);
        assert!(back.indexes[0].partial.is_some());
        assert_eq!(back.next_index_id, 4);
    }
}
