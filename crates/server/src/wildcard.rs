//! Wildcard indexes (`{"$**": 1}`, `{"a.$**": 1}`, with a
//! `wildcardProjection`): one entry per leaf value of every covered path,
//! keyed by (path, value) as MongoDB keys them (`$_path`), so a condition on
//! any covered field can be answered from the one index.
use crate::error::{CmdResult, CommandError};
use bson::{Bson, Document};

/// How deep a document is walked for its paths.
const MAX_DEPTH: usize = 100;

/// Which paths a wildcard index covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Wildcard {
    /// `a.$**` covers `a` and what is under it; `$**` everything.
    pub root: Option<String>,
    /// `wildcardProjection`: included (true) or excluded (false) paths.
    pub projection: Vec<(String, bool)>,
}

/// Whether a key pattern field is a wildcard (`$**` or `path.$**`).
pub fn is_wildcard_field(field: &str) -> bool {
    field == "$**" || field.ends_with(".$**")
}

fn failed(message: impl Into<String>) -> CommandError {
    CommandError::new(67, "CannotCreateIndex", message)
}

fn under(path: &str, root: &str) -> bool {
    path == root || (path.len() > root.len() && path.starts_with(root) && path.as_bytes()[root.len()] == b'.')
}

impl Wildcard {
    /// The wildcard definition of a createIndexes entry, if it is one.
    pub fn from_spec(spec: &Document, key: &Document) -> CmdResult<Option<Wildcard>> {
        let Some((field, _)) = key.iter().find(|(f, _)| is_wildcard_field(f)) else {
            if spec.contains_key("wildcardProjection") {
                return Err(failed("The field 'wildcardProjection' is only allowed in an 'wildcard' index"));
            }
            return Ok(None);
        };
        if key.len() != 1 {
            return Err(failed("wildcard indexes may only have one field: compound wildcard indexes are not supported"));
        }
        if crate::catalog::truthy(spec.get("unique")) || crate::catalog::truthy(spec.get("sparse")) || spec.contains_key("expireAfterSeconds") {
            return Err(failed("Index type 'wildcard' does not support the unique, sparse or expireAfterSeconds options"));
        }
        let root = field.strip_suffix(".$**").map(str::to_string);
        let mut projection = Vec::new();
        match spec.get("wildcardProjection") {
            None => {}
            Some(_) if root.is_some() => return Err(failed("Failed to parse: wildcardProjection is only allowed on '$**'")),
            Some(Bson::Document(p)) => {
                for (path, v) in p {
                    let include = crate::catalog::truthy(Some(v));
                    if path != "_id" && projection.iter().any(|(_, i)| *i != include) {
                        return Err(failed("Cannot do inclusion and exclusion in a wildcardProjection"));
                    }
                    projection.push((path.clone(), include));
                }
            }
            Some(_) => return Err(CommandError::type_mismatch("wildcardProjection must be a document")),
        }
        Ok(Some(Wildcard { root, projection }))
    }

    /// Whether the index holds the values at `path`.
    pub fn covers(&self, path: &str) -> bool {
        if let Some(root) = &self.root {
            return under(path, root);
        }
        let id_included = self.projection.iter().any(|(p, inc)| p == "_id" && *inc);
        if under(path, "_id") {
            return id_included;
        }
        let others: Vec<&(String, bool)> = self.projection.iter().filter(|(p, _)| p != "_id").collect();
        match others.first() {
            None => true,
            Some((_, true)) => others.iter().any(|(p, _)| under(path, p)),
            Some((_, false)) => !others.iter().any(|(p, _)| under(path, p)),
        }
    }

    /// Whether some included path lies below `path`, so a walk goes on.
    fn leads_somewhere(&self, path: &str) -> bool {
        if let Some(root) = &self.root {
            return under(path, root) || under(root, path);
        }
        match self.projection.iter().filter(|(p, _)| p != "_id").find(|(_, inc)| *inc) {
            Some(_) => self.projection.iter().any(|(p, inc)| *inc && (under(path, p) || under(p, path))),
            None => true,
        }
    }

    /// The (path, value) keys of `doc`: every leaf value of a covered path;
    /// an array's elements are each a value of the array's path.
    pub fn keys(&self, doc: &Document) -> Vec<[Bson; 2]> {
        let mut out = Keys::default();
        for (name, value) in doc {
            self.visit(name, value, 0, &mut out);
        }
        out.keys
    }

    fn visit(&self, path: &str, value: &Bson, depth: usize, out: &mut Keys) {
        if depth > MAX_DEPTH || !self.leads_somewhere(path) {
            return;
        }
        match value {
            Bson::Document(d) if !d.is_empty() => {
                for (name, v) in d {
                    self.visit(&format!("{path}.{name}"), v, depth + 1, out);
                }
            }
            Bson::Array(items) if !items.is_empty() => {
                for item in items {
                    match item {
                        // Nested arrays are values, not walked (as in MongoDB).
                        Bson::Array(_) => self.push(path, item, out),
                        _ => self.visit(path, item, depth + 1, out),
                    }
                }
            }
            leaf => self.push(path, leaf, out),
        }
    }

    fn push(&self, path: &str, value: &Bson, out: &mut Keys) {
        if self.covers(path) {
            let key = [Bson::String(path.to_string()), value.clone()];
            // Equal values (1 and 1.0) make one entry, as they encode alike.
            if out.seen.insert(crate::keyenc::encode_key(&key)) {
                out.keys.push(key);
            }
        }
    }
}

/// A document's keys, each once.
#[derive(Default)]
struct Keys {
    keys: Vec<[Bson; 2]>,
    seen: std::collections::HashSet<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn wc(spec: Document) -> Wildcard {
        let key = spec.get_document("key").unwrap().clone();
        Wildcard::from_spec(&spec, &key).unwrap().unwrap()
    }

    #[test]
    fn keys_are_paths_and_leaf_values() {
        let all = wc(doc! {"key": {"$**": 1}});
        let keys = all.keys(&doc! {"_id": 1, "a": {"b": 1, "c": [2, {"d": 3}]}, "e": "x"});
        let shown: Vec<(String, Bson)> = keys.into_iter().map(|[p, v]| (p.as_str().unwrap().to_string(), v)).collect();
        assert_eq!(
            shown,
            vec![("a.b".into(), Bson::Int32(1)), ("a.c".into(), Bson::Int32(2)), ("a.c.d".into(), Bson::Int32(3)), ("e".into(), Bson::String("x".into()))]
        );
    }

    #[test]
    fn roots_and_projections_limit_the_paths() {
        let sub = wc(doc! {"key": {"a.$**": 1}});
        assert!(sub.covers("a") && sub.covers("a.b") && !sub.covers("ab") && !sub.covers("c"));
        let inc = wc(doc! {"key": {"$**": 1}, "wildcardProjection": {"a": 1, "b.c": 1}});
        assert!(inc.covers("a.x") && inc.covers("b.c") && !inc.covers("b.d") && !inc.covers("_id"));
        let exc = wc(doc! {"key": {"$**": 1}, "wildcardProjection": {"a": 0}});
        assert!(!exc.covers("a.x") && exc.covers("b"));
        let bad = doc! {"key": {"a.$**": 1}, "wildcardProjection": {"a": 1}};
        assert_eq!(Wildcard::from_spec(&bad, bad.get_document("key").unwrap()).unwrap_err().code, 67);
    }
}
