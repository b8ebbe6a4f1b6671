//! Whether a sparse or partial index holds every document a filter can
//! match, so that scanning it misses none.
use super::predicates::{Atom, CmpOp, Predicates};
use crate::catalog::IndexSpec;
use bson::{Bson, Document};
use djongo_engine::compare::cmp_bson;
use djongo_engine::{types, Filter};
use std::cmp::Ordering;

/// An index may serve `preds` when it is ordered (no text/hashed fields)
/// and, if sparse or partial, the filter implies its entry condition.
pub fn index_serves(ix: &IndexSpec, preds: &Predicates) -> bool {
    if ix.is_hidden() {
        return false;
    }
    if !ix.is_ordered() && !ix.is_hashed() && ix.wildcard.is_none() {
        return false;
    }
    if ix.sparse && !ix.fields().any(|f| requires_value(preds.atoms(f))) {
        return false;
    }
    match &ix.partial {
        Some(partial) => implies(preds, partial),
        None => true,
    }
}

/// Whether some condition fails for a missing field (or null), so that a
/// matching document has the field: a sparse index then holds it.
fn requires_value(atoms: &[Atom]) -> bool {
    atoms.iter().any(|a| match a {
        Atom::Eq(v) => !matches!(v, Bson::Null | Bson::Undefined),
        Atom::In(values) => !values.iter().any(|v| matches!(v, Bson::Null | Bson::Undefined)),
        Atom::Cmp(op, v) => !matches!((op, v), (CmpOp::Gte | CmpOp::Lte, Bson::Null) | (_, Bson::MinKey | Bson::MaxKey)),
        Atom::Other => false,
    })
}

/// Whether every document matching `preds` satisfies the partial filter
/// expression `partial`. Only the forms MongoDB accepts in a partial filter
/// are understood (equality, `$exists: true`, comparisons, `$type`, `$and`);
/// anything else answers no, and the index is not used.
pub fn implies(preds: &Predicates, partial: &Document) -> bool {
    partial.iter().all(|(field, condition)| match field.as_str() {
        "$and" => match condition {
            Bson::Array(items) => items.iter().all(|i| matches!(i, Bson::Document(d) if implies(preds, d))),
            _ => false,
        },
        f if f.starts_with('$') => false,
        f => field_implies(preds.atoms(f), condition),
    })
}

/// Whether one of `atoms` (all of which a match satisfies) guarantees
/// `condition` on the same field.
fn field_implies(atoms: &[Atom], condition: &Bson) -> bool {
    let ops: Vec<(&str, &Bson)> = match condition {
        Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => d.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        other => vec![("$eq", other)],
    };
    ops.iter().all(|(op, arg)| atoms.iter().any(|atom| atom_implies(atom, op, arg)))
}

/// The values a match of `atom` may take on its field, when they are a few
/// listed ones; comparisons are handled apart.
fn listed_values(atom: &Atom) -> Option<&[Bson]> {
    match atom {
        Atom::Eq(v) => Some(std::slice::from_ref(v)),
        Atom::In(values) => Some(values),
        _ => None,
    }
}

fn atom_implies(atom: &Atom, op: &str, arg: &Bson) -> bool {
    // The positive conditions only: each holds for an array whenever it
    // holds for one of its elements, so a value the query fixes decides it
    // (`$ne: 5` fails for [3, 5], which matches `{f: 3}`).
    if !matches!(op, "$eq" | "$gt" | "$gte" | "$lt" | "$lte" | "$type" | "$exists") {
        return false;
    }
    // Array operands compare as whole arrays: keep out of them.
    if matches!(arg, Bson::Array(_)) && op != "$type" {
        return false;
    }
    if let Some(values) = listed_values(atom) {
        if values.is_empty() || values.iter().any(|v| matches!(v, Bson::Array(_))) {
            return false;
        }
        return values.iter().all(|v| value_satisfies(v, op, arg));
    }
    let Atom::Cmp(qop, q) = atom else { return false };
    if matches!(q, Bson::Null | Bson::Undefined | Bson::MinKey | Bson::MaxKey | Bson::Array(_)) {
        return false;
    }
    match op {
        // A comparison matches only values of its operand's type bracket.
        "$exists" => matches!(arg, Bson::Boolean(true)),
        "$type" => type_set_covers_bracket(arg, q),
        "$gt" | "$gte" | "$lt" | "$lte" => {
            if djongo_engine::compare::type_rank(q) != djongo_engine::compare::type_rank(arg) {
                return false;
            }
            let o = cmp_bson(q, arg);
            // The query's range must lie inside the partial filter's.
            match (op, qop) {
                ("$gt", CmpOp::Gt) | ("$gte", CmpOp::Gt | CmpOp::Gte) => o != Ordering::Less,
                ("$gt", CmpOp::Gte) => o == Ordering::Greater,
                ("$lt", CmpOp::Lt) | ("$lte", CmpOp::Lt | CmpOp::Lte) => o != Ordering::Greater,
                ("$lt", CmpOp::Lte) => o == Ordering::Less,
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether the value `v` satisfies `{op: arg}`.
fn value_satisfies(v: &Bson, op: &str, arg: &Bson) -> bool {
    match op {
        "$exists" => matches!(arg, Bson::Boolean(true)) && !matches!(v, Bson::Null | Bson::Undefined),
        "$type" => type_set_covers_value(arg, v),
        _ => {
            let mut condition = Document::new();
            condition.insert(op, arg.clone());
            let mut probe = Document::new();
            probe.insert("f", condition);
            let mut sample = Document::new();
            sample.insert("f", v.clone());
            Filter::parse(&probe).and_then(|f| f.matches(&sample)).unwrap_or(false)
        }
    }
}

/// The type codes a `$type` operand lists (`None`: not understood).
fn type_codes(arg: &Bson) -> Option<Vec<Option<i32>>> {
    let one = |b: &Bson| -> Option<Option<i32>> {
        match b {
            Bson::String(s) => types::code_for_name(s),
            other => djongo_engine::num::Num::from_bson(other).and_then(|n| n.to_i64_exact()).map(|c| Some(c as i32)),
        }
    };
    match arg {
        Bson::Array(items) => items.iter().map(one).collect(),
        other => Some(vec![one(other)?]),
    }
}

const NUMBER_CODES: [i32; 4] = [1, 16, 18, 19];

fn has_code(codes: &[Option<i32>], code: i32) -> bool {
    codes.iter().any(|c| *c == Some(code) || (c.is_none() && NUMBER_CODES.contains(&code)))
}

/// Whether values equal to `v` all have a listed type. Numbers equal across
/// types (a document holding 5.0 matches `{f: 5}`), so a number needs every
/// numeric type; strings are taken to be strings (symbols, deprecated, equal
/// them too, which MongoDB's own planner also disregards).
fn type_set_covers_value(arg: &Bson, v: &Bson) -> bool {
    let Some(codes) = type_codes(arg) else { return false };
    if djongo_engine::compare::type_rank(v) == 3 {
        return NUMBER_CODES.iter().all(|c| has_code(&codes, *c));
    }
    has_code(&codes, types::type_code(v))
}

/// Whether every value a comparison with `q` can match has a listed type.
fn type_set_covers_bracket(arg: &Bson, q: &Bson) -> bool {
    type_set_covers_value(arg, q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn serves(spec: Document, filter: Document) -> bool {
        index_serves(&IndexSpec::from_spec(1, &spec).unwrap(), &Predicates::analyze(&filter))
    }

    const NON_NULL: [&str; 13] =
        ["double", "string", "object", "array", "binData", "objectId", "bool", "date", "int", "timestamp", "long", "decimal", "regex"];

    #[test]
    fn djangos_unique_constraints_serve_equalities_and_ranges_of_listed_types() {
        let pk = doc! {"key": {"id": 1}, "name": "pk", "unique": true, "partialFilterExpression": {"id": {"$type": NON_NULL.to_vec()}}};
        assert!(serves(pk.clone(), doc! {"id": 5}));
        assert!(serves(pk.clone(), doc! {"id": {"$in": [5, "x"]}}));
        assert!(serves(pk.clone(), doc! {"id": {"$gte": 5}}));
        assert!(!serves(pk.clone(), doc! {"id": null}));
        assert!(!serves(pk.clone(), doc! {"id": {"$in": [5, null]}}));
        assert!(!serves(pk, doc! {"other": 5}));
        let ints_only = doc! {"key": {"a": 1}, "partialFilterExpression": {"a": {"$type": "int"}}};
        assert!(!serves(ints_only, doc! {"a": 5}), "a 5.0 matches too");
    }

    #[test]
    fn comparisons_must_lie_inside_the_partial_range() {
        let above = doc! {"key": {"a": 1}, "partialFilterExpression": {"a": {"$gt": 10}}};
        assert!(serves(above.clone(), doc! {"a": 11}));
        assert!(serves(above.clone(), doc! {"a": {"$gte": 10.5}}));
        assert!(serves(above.clone(), doc! {"a": {"$gt": 10}}));
        assert!(!serves(above.clone(), doc! {"a": {"$gte": 10}}));
        assert!(!serves(above.clone(), doc! {"a": {"$in": [11, 3]}}));
        assert!(!serves(above, doc! {"a": {"$lt": 20}}));
        let other = doc! {"key": {"a": 1}, "partialFilterExpression": {"b": {"$exists": true}}};
        assert!(serves(other.clone(), doc! {"a": 1, "b": 1}));
        assert!(!serves(other, doc! {"a": 1, "b": null}));
        let negated = doc! {"key": {"a": 1}, "partialFilterExpression": {"a": {"$ne": 5}}};
        assert!(!serves(negated, doc! {"a": 3}));
    }

    #[test]
    fn sparse_indexes_need_a_condition_that_fails_on_missing() {
        let sparse = doc! {"key": {"a": 1, "b": 1}, "sparse": true};
        assert!(serves(sparse.clone(), doc! {"b": 3}));
        assert!(!serves(sparse.clone(), doc! {"a": null}));
        assert!(!serves(sparse.clone(), doc! {"a": {"$ne": 3}}));
        assert!(!serves(doc! {"key": {"t": "text"}}, doc! {"t": "x"}));
    }
}
