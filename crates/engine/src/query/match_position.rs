//! Which array element made a document match: the position MongoDB's
//! positional `$` (in updates and `find` projections) stands for.
//!
//! MongoDB records, while matching, the index within the first array a
//! queried path runs through at which the predicate held. We answer the same
//! question after the fact, for a document already known to match, by trying
//! the predicate against one element at a time. Negations (`$ne`, `$nin`,
//! `$not`, `$nor`) and whole-array matches (`{tags: ["a", "b"]}`) record no
//! position, as in MongoDB.
use super::{eval_node, field_matches, Filter, Node, Pred};
use crate::expr::Vars;
use crate::{path, Result};
use bson::{Bson, Document};

impl Filter {
    /// The array index the positional `$` refers to for `doc`, or `None` when
    /// no array on a queried path produced the match. With conditions on
    /// several arrays MongoDB leaves the choice unspecified; like mongod's
    /// matcher, the last condition that records a position wins.
    pub fn match_position(&self, doc: &Document) -> Result<Option<usize>> {
        node_position(&self.root, doc, &Vars::new())
    }
}

fn node_position(node: &Node, doc: &Document, vars: &Vars) -> Result<Option<usize>> {
    match node {
        Node::And(subs) => {
            let mut found = None;
            for s in subs {
                if let Some(p) = node_position(s, doc, vars)? {
                    found = Some(p);
                }
            }
            Ok(found)
        }
        // The branch that made the document match is the one that counts.
        Node::Or(subs) => {
            for s in subs {
                if eval_node(s, doc, vars)? {
                    return node_position(s, doc, vars);
                }
            }
            Ok(None)
        }
        Node::Field { path, pred } => field_position(doc, path, pred, vars),
        Node::True | Node::False | Node::Nor(_) | Node::Expr(_) | Node::Schema(_) => Ok(None),
    }
}

fn records_position(pred: &Pred) -> bool {
    match pred {
        Pred::Not(_) | Pred::Exists(_) | Pred::Size(_) => false,
        Pred::Both(ps) => ps.iter().any(records_position),
        _ => true,
    }
}

/// Walks `path` to the first array on it, then finds the first element for
/// which the rest of the path satisfies `pred`.
fn field_position(doc: &Document, path: &[String], pred: &Pred, vars: &Vars) -> Result<Option<usize>> {
    if !records_position(pred) {
        return Ok(None);
    }
    let mut current: &Document = doc;
    let mut depth = 0;
    while depth < path.len() {
        let value = match current.get(&path[depth]) {
            Some(v) => v,
            None => return Ok(None),
        };
        let rest = &path[depth + 1..];
        match value {
            Bson::Document(d) => current = d,
            Bson::Array(items) => return first_matching_element(items, rest, pred, vars),
            _ => return Ok(None),
        }
        depth += 1;
    }
    Ok(None)
}

fn first_matching_element(items: &[Bson], rest: &[String], pred: &Pred, vars: &Vars) -> Result<Option<usize>> {
    // `a.1.b`: an explicit index names the element; nothing is recorded for it.
    if rest.first().is_some_and(|p| path::as_index(p).is_some()) {
        return Ok(None);
    }
    for (i, item) in items.iter().enumerate() {
        let hit = if rest.is_empty() {
            element_matches(item, pred, vars)?
        } else {
            match item {
                Bson::Document(d) => field_matches(pred, &path::query_values(d, rest), vars)?,
                _ => false,
            }
        };
        if hit {
            return Ok(Some(i));
        }
    }
    // `{a: {$gt: 1, $lt: 5}}` may hold through different elements; mongod then
    // records each condition's element in turn, so the last one's stands.
    if let Pred::Both(ps) = pred {
        let mut found = None;
        for p in ps.iter().filter(|p| records_position(p)) {
            if let Some(i) = first_matching_element(items, rest, p, vars)? {
                found = Some(i);
            }
        }
        return Ok(found);
    }
    Ok(None)
}

/// Whether one element of the array the path ends at satisfies `pred` on its
/// own. `$elemMatch` tests the element itself; other predicates see it as a
/// plain value (an element that is itself an array is not opened further).
fn element_matches(item: &Bson, pred: &Pred, vars: &Vars) -> Result<bool> {
    match pred {
        Pred::ElemMatchDoc(node) => match item {
            Bson::Document(d) => eval_node(node, d, vars),
            _ => Ok(false),
        },
        Pred::ElemMatchValue(p) => field_matches(p, &[Some(item)], vars),
        Pred::Both(ps) => {
            for p in ps {
                if !element_matches(item, p, vars)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Pred::All(ps) => {
            for p in ps {
                if !element_matches(item, p, vars)? {
                    return Ok(false);
                }
            }
            Ok(!ps.is_empty())
        }
        _ if matches!(item, Bson::Array(_)) => Ok(false),
        _ => field_matches(pred, &[Some(item)], vars),
    }
}

#[cfg(test)]
mod tests {
    use crate::query::Filter;
    use bson::{doc, Document};

    fn pos(filter: Document, d: Document) -> Option<usize> {
        let f = Filter::parse(&filter).unwrap();
        assert!(f.matches(&d).unwrap(), "the filter must match the document first");
        f.match_position(&d).unwrap()
    }

    #[test]
    fn scalar_array_element() {
        assert_eq!(pos(doc! {"grades": 80}, doc! {"grades": [85, 80, 80]}), Some(1));
        assert_eq!(pos(doc! {"grades": {"$gte": 86}}, doc! {"grades": [85, 90]}), Some(1));
        assert_eq!(pos(doc! {"_id": 1, "grades": {"$in": [7, 9]}}, doc! {"_id": 1, "grades": [1, 9, 7]}), Some(1));
        assert_eq!(pos(doc! {"grades": {"$gte": 80, "$lt": 90}}, doc! {"grades": [95, 85]}), Some(1));
        assert_eq!(pos(doc! {"grades": {"$gt": 90, "$lt": 70}}, doc! {"grades": [60, 95]}), Some(0));
    }

    #[test]
    fn documents_in_arrays() {
        let d = doc! {"items": [{"n": 1, "k": "x"}, {"n": 5, "k": "y"}, {"n": 5, "k": "z"}]};
        assert_eq!(pos(doc! {"items.n": 5}, d.clone()), Some(1));
        assert_eq!(pos(doc! {"items": {"$elemMatch": {"n": 5, "k": "z"}}}, d.clone()), Some(2));
        assert_eq!(pos(doc! {"items.k": {"$regex": "^z"}}, d), Some(2));
        let nested = doc! {"a": {"b": [{"c": 1}, {"c": 2}]}};
        assert_eq!(pos(doc! {"a.b.c": 2}, nested), Some(1));
    }

    #[test]
    fn no_position_without_an_element_match() {
        assert_eq!(pos(doc! {"tags": ["a", "b"]}, doc! {"tags": ["a", "b"]}), None);
        assert_eq!(pos(doc! {"tags": {"$ne": "c"}}, doc! {"tags": ["a", "b"]}), None);
        assert_eq!(pos(doc! {"tags": {"$size": 2}}, doc! {"tags": ["a", "b"]}), None);
        assert_eq!(pos(doc! {"x": 1}, doc! {"x": 1, "tags": ["a"]}), None);
        assert_eq!(pos(doc! {"l.1": 5}, doc! {"l": [4, 5]}), None);
    }

    #[test]
    fn or_uses_the_branch_that_matched() {
        let d = doc! {"a": [1, 2, 3], "b": [7, 8]};
        assert_eq!(pos(doc! {"$or": [{"a": 9}, {"b": 8}]}, d.clone()), Some(1));
        assert_eq!(pos(doc! {"a": 3, "b": 7}, d), Some(0), "the last recorded position wins");
    }
}
