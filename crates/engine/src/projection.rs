//! `find` projections and the `$project` stage: inclusion, exclusion and
//! computed fields.
//!
//! A projection is either an inclusion (named fields plus computed ones are
//! kept) or an exclusion (named fields are dropped); `_id` is kept unless
//! excluded and is the only field that may be excluded in an inclusion.
use crate::expr::{Ctx, Vars};
use crate::query::Filter;
use crate::{EngineError, Result};
use bson::{Bson, Document};

#[derive(Debug, Clone)]
enum Node {
    Include,
    Exclude,
    Expr(Bson),
    Nested(Vec<(String, Node)>),
    /// `find`'s `{f: {$slice: n | [skip, limit]}}`.
    Slice(i64, Option<i64>),
    /// `find`'s `{f: {$elemMatch: {...}}}`: the first matching element.
    ElemMatch(Box<crate::query::Filter>),
}

/// A parsed projection.
#[derive(Debug, Clone)]
pub struct Projection {
    tree: Vec<(String, Node)>,
    exclusion: bool,
}

fn find<'a>(nodes: &'a mut [(String, Node)], key: &str) -> Option<&'a mut Node> {
    nodes.iter_mut().find(|(k, _)| k == key).map(|(_, n)| n)
}

fn collision(path: &str) -> EngineError {
    EngineError::location(31250, format!("Path collision at {path}"))
}

fn insert(nodes: &mut Vec<(String, Node)>, parts: &[&str], node: Node, full: &str) -> Result<()> {
    let Some((head, tail)) = parts.split_first() else {
        return Err(EngineError::bad_value("empty projection path"));
    };
    if tail.is_empty() {
        if find(nodes, head).is_some() {
            return Err(collision(full));
        }
        nodes.push((head.to_string(), node));
        return Ok(());
    }
    if find(nodes, head).is_none() {
        nodes.push((head.to_string(), Node::Nested(Vec::new())));
    }
    match find(nodes, head) {
        Some(Node::Nested(children)) => insert(children, tail, node, full),
        _ => Err(collision(full)),
    }
}

fn find_operator(value: &Bson) -> Result<Option<Node>> {
    let Bson::Document(d) = value else { return Ok(None) };
    if d.len() != 1 {
        return Ok(None);
    }
    let int = |b: &Bson| crate::num::Num::from_bson(b).and_then(|n| n.to_i64_exact());
    Ok(match d.iter().next() {
        Some((k, arg)) if k == "$slice" => match arg {
            Bson::Array(a) if a.len() == 2 => match (int(&a[0]), int(&a[1])) {
                (Some(skip), Some(limit)) if limit > 0 => Some(Node::Slice(skip, Some(limit))),
                (Some(_), Some(_)) => return Err(EngineError::location(28724, "$slice limit must be positive")),
                _ => None,
            },
            other => int(other).map(|n| Node::Slice(n, None)),
        },
        Some((k, Bson::Document(cond))) if k == "$elemMatch" => {
            let filter = crate::query::Filter::parse(cond)?;
            Some(Node::ElemMatch(Box::new(filter)))
        }
        _ => None,
    })
}

fn classify(value: &Bson, find: bool) -> Result<Option<Node>> {
    if find {
        if let Some(node) = find_operator(value)? {
            return Ok(Some(node));
        }
    }
    Ok(Some(match value {
        Bson::Boolean(b) => {
            if *b {
                Node::Include
            } else {
                Node::Exclude
            }
        }
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => {
            if crate::expr::truthy(value) {
                Node::Include
            } else {
                Node::Exclude
            }
        }
        Bson::Document(d) if crate::query::is_operator_doc(d) => Node::Expr(value.clone()),
        Bson::Document(_) => return Ok(None),
        other => Node::Expr(other.clone()),
    }))
}

fn build(nodes: &mut Vec<(String, Node)>, spec: &Document, prefix: &str, find: bool) -> Result<()> {
    for (k, v) in spec {
        let full = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        if k.starts_with('$') {
            return Err(EngineError::location(16410, format!("FieldPath field names may not start with '$'. Given: {full}")));
        }
        match classify(v, find)? {
            Some(node) => {
                let parts: Vec<&str> = k.split('.').collect();
                insert(nodes, &parts, node, &full)?;
            }
            None => {
                let Bson::Document(sub) = v else { continue };
                if sub.is_empty() {
                    return Err(EngineError::location(51270, format!("An empty sub-projection is not a valid value. Found empty object at path {full}")));
                }
                let parts: Vec<&str> = k.split('.').collect();
                let mut inner = Vec::new();
                build(&mut inner, sub, &full, find)?;
                for (ck, cn) in inner {
                    let mut p = parts.clone();
                    p.extend(ck.split('.'));
                    insert_node(nodes, &p, cn, &full)?;
                }
            }
        }
    }
    Ok(())
}

/// Inserts an already-built subtree, merging nested levels.
fn insert_node(nodes: &mut Vec<(String, Node)>, parts: &[&str], node: Node, full: &str) -> Result<()> {
    match node {
        Node::Nested(children) => {
            for (k, n) in children {
                let mut p = parts.to_vec();
                p.push(&k);
                insert_node(nodes, &p, n, full)?;
            }
            Ok(())
        }
        other => insert(nodes, parts, other, full),
    }
}

/// Finds the mode: (has inclusion-like nodes, first excluded path that is not the top-level _id).
fn scan(nodes: &[(String, Node)], top: bool, prefix: &str, incl: &mut Option<String>, excl: &mut Option<String>) {
    for (k, n) in nodes {
        let full = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match n {
            Node::Slice(..) => {}
            Node::Include | Node::Expr(_) | Node::ElemMatch(..) => {
                if !(top && k == "_id" && matches!(n, Node::Include)) && incl.is_none() {
                    *incl = Some(full);
                }
            }
            Node::Exclude => {
                if !(top && k == "_id") && excl.is_none() {
                    *excl = Some(full);
                }
            }
            Node::Nested(c) => scan(c, false, &full, incl, excl),
        }
    }
}

impl Projection {
    /// A `$project` stage's specification.
    pub fn parse(spec: &Document) -> Result<Projection> {
        Self::parse_with(spec, false)
    }

    /// A `find` projection, which also accepts `$slice` and `$elemMatch`.
    pub fn parse_find(spec: &Document) -> Result<Projection> {
        Self::parse_with(spec, true)
    }

    fn parse_with(spec: &Document, find: bool) -> Result<Projection> {
        let mut tree = Vec::new();
        build(&mut tree, spec, "", find)?;
        let (mut incl, mut excl) = (None, None);
        scan(&tree, true, "", &mut incl, &mut excl);
        if let (Some(_), Some(e)) = (&incl, &excl) {
            return Err(EngineError::location(31254, format!("Cannot do exclusion on field {e} in inclusion projection")));
        }
        // `{_id: 1}` alone is an inclusion; `{_id: 0}` alone an exclusion.
        let id_included = tree.iter().any(|(k, n)| k == "_id" && matches!(n, Node::Include));
        let exclusion = excl.is_some() || (incl.is_none() && !id_included && !tree.is_empty());
        Ok(Projection { tree, exclusion })
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    pub fn apply(&self, doc: &Document, vars: &Vars) -> Result<Document> {
        if self.tree.is_empty() {
            return Ok(doc.clone());
        }
        if self.exclusion {
            let mut out = doc.clone();
            exclude(&mut out, &self.tree);
            return Ok(out);
        }
        let cx = Ctx { doc, vars };
        let mut out = Document::new();
        let id_node = self.tree.iter().find(|(k, _)| k == "_id").map(|(_, n)| n);
        if id_node.is_none() {
            if let Some(id) = doc.get("_id") {
                out.insert("_id", id.clone());
            }
        }
        include_into(&mut out, doc, &self.tree, &cx)?;
        Ok(out)
    }
}

fn exclude(doc: &mut Document, nodes: &[(String, Node)]) {
    for (k, n) in nodes {
        match n {
            Node::Exclude => {
                doc.remove(k);
            }
            Node::Slice(skip, limit) => {
                if let Some(Bson::Array(a)) = doc.get_mut(k) {
                    *a = slice(std::mem::take(a), *skip, *limit);
                }
            }
            Node::Nested(children) => {
                if let Some(v) = doc.get_mut(k) {
                    exclude_value(v, children);
                }
            }
            _ => {}
        }
    }
}

fn exclude_value(v: &mut Bson, nodes: &[(String, Node)]) {
    match v {
        Bson::Document(d) => exclude(d, nodes),
        Bson::Array(a) => a.iter_mut().for_each(|e| exclude_value(e, nodes)),
        _ => {}
    }
}

fn has_exprs(nodes: &[(String, Node)]) -> bool {
    nodes.iter().any(|(_, n)| match n {
        Node::Expr(_) => true,
        Node::Nested(c) => has_exprs(c),
        _ => false,
    })
}

/// Copies included fields of `src` (in the document's order) and computed
/// fields (in the projection's order) into `out`.
fn include_into(out: &mut Document, src: &Document, nodes: &[(String, Node)], cx: &Ctx) -> Result<()> {
    for (k, v) in src {
        let Some((_, node)) = nodes.iter().find(|(nk, _)| nk == k) else { continue };
        match node {
            Node::Include => {
                out.insert(k.clone(), v.clone());
            }
            Node::Slice(skip, limit) => {
                let sliced = match v {
                    Bson::Array(a) => Bson::Array(slice(a.clone(), *skip, *limit)),
                    other => other.clone(),
                };
                out.insert(k.clone(), sliced);
            }
            Node::ElemMatch(filter) => {
                if let Bson::Array(a) = v {
                    for e in a {
                        if let Bson::Document(ed) = e {
                            if filter.matches(ed)? {
                                out.insert(k.clone(), Bson::Array(vec![e.clone()]));
                                break;
                            }
                        }
                    }
                }
            }
            Node::Nested(children) => {
                if let Some(projected) = include_value(v, children, cx)? {
                    out.insert(k.clone(), projected);
                }
            }
            _ => {}
        }
    }
    for (k, node) in nodes {
        match node {
            Node::Expr(e) => {
                if let Some(val) = cx.eval(e)? {
                    out.insert(k.clone(), val);
                }
            }
            Node::Nested(children) if !src.contains_key(k) && has_exprs(children) => {
                let mut sub = Document::new();
                include_into(&mut sub, &Document::new(), children, cx)?;
                out.insert(k.clone(), sub);
            }
            _ => {}
        }
    }
    Ok(())
}

fn include_value(v: &Bson, nodes: &[(String, Node)], cx: &Ctx) -> Result<Option<Bson>> {
    Ok(match v {
        Bson::Document(d) => {
            let mut sub = Document::new();
            include_into(&mut sub, d, nodes, cx)?;
            Some(Bson::Document(sub))
        }
        Bson::Array(items) => {
            let mut out = Vec::new();
            for e in items {
                if let Some(p) = include_value(e, nodes, cx)? {
                    out.push(p);
                }
            }
            Some(Bson::Array(out))
        }
        _ if has_exprs(nodes) => {
            let mut sub = Document::new();
            include_into(&mut sub, &Document::new(), nodes, cx)?;
            Some(Bson::Document(sub))
        }
        _ => None,
    })
}

/// `$slice` in a find projection: a count from the start (or the end when
/// negative), or a skip (negative from the end) and a limit.
fn slice(items: Vec<Bson>, skip: i64, limit: Option<i64>) -> Vec<Bson> {
    let len = items.len() as i64;
    let (start, count) = match limit {
        None if skip >= 0 => (0, skip),
        None => ((len + skip).max(0), len),
        Some(l) => (if skip < 0 { (len + skip).max(0) } else { skip.min(len) }, l),
    };
    items.into_iter().skip(start as usize).take(count.max(0) as usize).collect()
}

/// Applies a `find` projection (with `$slice` and `$elemMatch` support).
pub fn apply_projection(doc: &Document, projection: &Document) -> Result<Document> {
    Projection::parse_find(projection)?.apply(doc, &Vars::new())
}

/// A `find` (or `findAndModify`) projection, parsed once for all documents.
/// A positional part (`{"grades.$": 1}`) keeps only the array element the
/// command's filter matched, so it holds on to that filter.
#[derive(Debug, Clone)]
pub struct FindProjection {
    projection: Projection,
    positional: Option<(Vec<String>, Filter)>,
    /// `{_id: 0, a: "$x", b: "$y"}`, which only renames top-level fields (the
    /// shape of every SQL read's projection): the new and old names.
    renames: Option<Vec<(String, String)>>,
}

/// The new and old names of a projection that excludes `_id` and otherwise
/// only renames top-level fields (`{_id: 0, c0: "$id", c1: "$name"}`).
fn renames(spec: &Document) -> Option<Vec<(String, String)>> {
    let plain_name = |s: &str| !s.is_empty() && !s.starts_with('$') && !s.contains('.');
    let mut out = Vec::with_capacity(spec.len());
    let mut id_excluded = false;
    for (key, value) in spec {
        if key == "_id" {
            id_excluded = matches!(value, Bson::Int32(0) | Bson::Int64(0) | Bson::Boolean(false)) || matches!(value, Bson::Double(f) if *f == 0.0);
            if !id_excluded {
                return None;
            }
            continue;
        }
        let source = match value {
            Bson::String(s) => s.strip_prefix('$').filter(|name| plain_name(name))?,
            _ => return None,
        };
        if !plain_name(key) {
            return None;
        }
        out.push((key.clone(), source.to_string()));
    }
    // `{_id: 0}` alone excludes `_id` and keeps everything else.
    (id_excluded && !out.is_empty()).then_some(out)
}

impl FindProjection {
    pub fn parse(spec: &Document, filter: &Document) -> Result<FindProjection> {
        let mut plain = Document::new();
        let mut positional_path: Option<Vec<String>> = None;
        for (k, v) in spec {
            if k.contains(".$.") {
                return Err(EngineError::location(
                    31394,
                    "As of 4.4, it's illegal to specify positional operator in the middle of a path.Positional projection may only be used at the end, for example: a.b.$. If the query previously used a form like a.b.$.d, remove the parts following the '$' and the results will be equivalent.",
                ));
            }
            let Some(prefix) = k.strip_suffix(".$").filter(|p| !p.starts_with('$') && !p.is_empty()) else {
                plain.insert(k.clone(), v.clone());
                continue;
            };
            if !matches!(classify(v, true)?, Some(Node::Include)) {
                return Err(EngineError::location(31395, "positional projection cannot be used with exclusion"));
            }
            if positional_path.is_some() {
                return Err(EngineError::location(31276, "Cannot specify more than one positional projection per query."));
            }
            positional_path = Some(crate::path::split(prefix));
            plain.insert(prefix.to_string(), true);
        }
        let projection = Projection::parse_find(&plain)?;
        let positional = match positional_path {
            Some(p) => Some((p, Filter::parse(filter)?)),
            None => None,
        };
        let renames = if positional.is_none() { renames(spec) } else { None };
        Ok(FindProjection { projection, positional, renames })
    }

    /// The new and old names when the projection only renames top-level
    /// fields and excludes `_id` (`{_id: 0, c0: "$id", c1: "$name"}`): the
    /// output holds, in this order, each new name whose old field the
    /// document has, with that field's value (the last one, should a
    /// document hold a name twice).
    pub fn renames(&self) -> Option<&[(String, String)]> {
        self.renames.as_deref()
    }

    /// `apply`, on a document the caller gives up: a renaming projection
    /// moves the values instead of copying them.
    pub fn apply_owned(&self, doc: Document) -> Result<Document> {
        let Some(renames) = &self.renames else { return self.apply(&doc) };
        let mut values: Vec<Option<Bson>> = vec![None; renames.len()];
        for (name, value) in doc {
            let mut readers = renames.iter().enumerate().filter(|(_, (_, old))| *old == name).map(|(i, _)| i);
            let Some(first) = readers.next() else { continue };
            // A field read twice is copied for the others.
            for other in readers {
                values[other] = Some(value.clone());
            }
            values[first] = Some(value);
        }
        let mut out = Document::new();
        for ((new, _), value) in renames.iter().zip(values) {
            if let Some(value) = value {
                out.insert(new.clone(), value);
            }
        }
        Ok(out)
    }

    pub fn apply(&self, doc: &Document) -> Result<Document> {
        let mut out = self.projection.apply(doc, &Vars::new())?;
        if let Some((path, filter)) = &self.positional {
            keep_matched_element(&mut out, path, filter.match_position(doc)?)?;
        }
        Ok(out)
    }
}

/// Replaces the first array on `path` in the projected document by the one
/// element the query matched, as mongod does; a path that meets no array is
/// left as projected.
fn keep_matched_element(out: &mut Document, path: &[String], matched: Option<usize>) -> Result<()> {
    let mut current = out;
    for part in path {
        let Some(value) = current.get_mut(part) else { return Ok(()) };
        match value {
            Bson::Array(items) => {
                let Some(i) = matched else {
                    return Err(EngineError::location(
                        51246,
                        "Executor error during find command :: caused by :: positional operator '.$' couldn't find a matching element in the array",
                    ));
                };
                let Some(element) = items.get(i).cloned() else {
                    return Err(EngineError::location(51247, "Executor error during find command :: caused by :: positional operator '.$' element mismatch"));
                };
                *items = vec![element];
                return Ok(());
            }
            Bson::Document(d) => current = d,
            _ => return Ok(()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn inclusion_keeps_id_by_default() {
        let d = doc! {"_id": 1, "a": 1, "b": {"c": 2, "d": 3}, "e": 4};
        assert_eq!(apply_projection(&d, &doc! {"a": 1, "b.c": 1}).unwrap(), doc! {"_id": 1, "a": 1, "b": {"c": 2}});
        assert_eq!(apply_projection(&d, &doc! {"_id": 0, "a": true}).unwrap(), doc! {"a": 1});
        assert_eq!(apply_projection(&d, &doc! {"_id": 1}).unwrap(), doc! {"_id": 1});
    }

    #[test]
    fn exclusion() {
        let d = doc! {"_id": 1, "a": 1, "b": {"c": 2, "d": 3}};
        assert_eq!(apply_projection(&d, &doc! {"b.c": 0}).unwrap(), doc! {"_id": 1, "a": 1, "b": {"d": 3}});
        assert_eq!(apply_projection(&d, &doc! {"_id": 0}).unwrap(), doc! {"a": 1, "b": {"c": 2, "d": 3}});
    }

    #[test]
    fn computed_fields_and_missing() {
        let d = doc! {"_id": 7, "headline": "hi", "n": 2};
        let p = doc! {"_id": 0, "c0": "$headline", "c1": {"$add": ["$n", 1]}, "c2": "$nope"};
        assert_eq!(apply_projection(&d, &p).unwrap(), doc! {"c0": "hi", "c1": 3});
    }

    #[test]
    fn arrays_of_subdocuments() {
        let d = doc! {"_id": 1, "a": [{"b": 1, "c": 2}, {"b": 3}, 5]};
        assert_eq!(apply_projection(&d, &doc! {"a.b": 1}).unwrap(), doc! {"_id": 1, "a": [{"b": 1}, {"b": 3}]});
    }

    #[test]
    fn find_slice_and_elem_match() {
        let d = doc! {"_id": 1, "a": [1, 2, 3, 4], "b": [{"x": 1}, {"x": 2}], "c": 0};
        assert_eq!(apply_projection(&d, &doc! {"a": {"$slice": 2}}).unwrap(), doc! {"_id": 1, "a": [1, 2], "b": [{"x": 1}, {"x": 2}], "c": 0});
        assert_eq!(apply_projection(&d, &doc! {"a": {"$slice": -1}, "c": 1}).unwrap(), doc! {"_id": 1, "a": [4], "c": 0});
        assert_eq!(apply_projection(&d, &doc! {"_id": 0, "a": {"$slice": [1, 2]}, "c": 1}).unwrap(), doc! {"a": [2, 3], "c": 0});
        assert_eq!(apply_projection(&d, &doc! {"b": {"$elemMatch": {"x": {"$gt": 1}}}}).unwrap(), doc! {"_id": 1, "b": [{"x": 2}]});
    }

    fn positional(d: Document, filter: Document, spec: Document) -> Result<Document> {
        FindProjection::parse(&spec, &filter)?.apply(&d)
    }

    #[test]
    fn positional_projection_keeps_the_matched_element() {
        let d = doc! {"_id": 1, "grades": [70, 85, 90], "name": "x"};
        assert_eq!(positional(d.clone(), doc! {"grades": {"$gte": 80}}, doc! {"grades.$": 1}).unwrap(), doc! {"_id": 1, "grades": [85]});
        let d = doc! {"_id": 1, "items": [{"k": "a", "n": 1}, {"k": "b", "n": 2}], "other": 1};
        assert_eq!(
            positional(d.clone(), doc! {"items.k": "b"}, doc! {"items.$": 1, "other": 1}).unwrap(),
            doc! {"_id": 1, "items": [{"k": "b", "n": 2}], "other": 1}
        );
        // The query matched a scalar, not an array: the field comes out as it is.
        assert_eq!(positional(doc! {"_id": 1, "v": 42}, doc! {"v": 42}, doc! {"v.$": 1}).unwrap(), doc! {"_id": 1, "v": 42});
    }

    #[test]
    fn positional_projection_errors() {
        let d = doc! {"_id": 1, "v": [1, 2]};
        assert_eq!(positional(d.clone(), doc! {}, doc! {"v.$": 1}).unwrap_err().code, 51246);
        assert_eq!(positional(d.clone(), doc! {"v": 2}, doc! {"v.$.foo": 1}).unwrap_err().code, 31394);
        assert_eq!(positional(d.clone(), doc! {"v": 2}, doc! {"v.$": 0}).unwrap_err().code, 31395);
        assert_eq!(positional(d.clone(), doc! {"v": 2}, doc! {"v.$": 1, "w.$": 1}).unwrap_err().code, 31276);
        assert_eq!(positional(d.clone(), doc! {"v": 2}, doc! {"$.foo.$": 1}).unwrap_err().code, 16410);
        // The element the query matched is gone from the projected array.
        assert_eq!(positional(doc! {"_id": 1, "v": [{"foo": 1}, 42]}, doc! {"v": 42}, doc! {"v.foo.$": 1}).unwrap_err().code, 51247);
    }

    #[test]
    fn mixing_is_an_error() {
        let e = apply_projection(&doc! {}, &doc! {"a": 1, "b": 0}).unwrap_err();
        assert_eq!(e.code, 31254);
        assert!(apply_projection(&doc! {}, &doc! {"a": 1, "a.b": 1}).is_err());
    }
}

#[cfg(test)]
mod rename_tests {
    use super::*;
    use bson::doc;

    #[test]
    fn a_renaming_projection_moves_what_apply_copies() {
        let doc = doc! {"_id": 1, "a": [1, {"b": 2}], "n": Bson::Null, "s": "x"};
        let specs = [
            doc! {"_id": 0, "c0": "$a", "c1": "$missing", "c2": "$n", "c3": "$s"},
            doc! {"_id": 0, "c0": "$s", "c1": "$s", "c2": "$a"},
            doc! {"_id": false, "c0": "$_id"},
            // Not renames: handled by `apply` itself.
            doc! {"c0": "$a"},
            doc! {"_id": 0, "c0": "$a.b"},
            doc! {"_id": 0, "c0": {"$add": [1, 2]}},
            doc! {"_id": 0, "a": 1},
            doc! {"_id": 0},
        ];
        for spec in specs {
            let projection = FindProjection::parse(&spec, &Document::new()).unwrap();
            assert_eq!(projection.apply_owned(doc.clone()).unwrap(), projection.apply(&doc).unwrap(), "{spec}");
        }
        assert!(renames(&doc! {"_id": 0, "c0": "$a"}).is_some());
        assert!(renames(&doc! {"_id": 0, "c0": "$a.b"}).is_none());
        assert!(renames(&doc! {"c0": "$a"}).is_none());
        assert!(renames(&doc! {"_id": 0}).is_none());
    }
}
