//! What a filter says about single fields: the conditions an index can
//! serve, read off the filter document before any planning.
//!
//! Only the top-level conjunction is analysed (the filter's own fields and
//! `$and`); every condition found there must hold for a matching document,
//! so bounds derived from any of them select a superset of the matches. The
//! engine's `Filter` still checks every fetched document, unless a plan
//! proves it need not (counts answered from an index).
use bson::{Bson, Document};

/// A comparison operator with index bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// One condition on one field.
#[derive(Debug, Clone)]
pub enum Atom {
    /// `{f: v}` or `{f: {$eq: v}}`.
    Eq(Bson),
    Cmp(CmpOp, Bson),
    /// `{f: {$in: [...]}}` without regular expressions.
    In(Vec<Bson>),
    /// Anything else (`$ne`, `$exists`, `$regex`, `$elemMatch`, ...): it
    /// restricts the field, but not in a way an index scan can use.
    Other,
}

/// The conditions of a filter, per field path.
#[derive(Debug, Clone, Default)]
pub struct Predicates {
    /// Field paths in the order the filter first mentions them.
    pub fields: Vec<(String, Vec<Atom>)>,
    /// Whether the filter holds nothing but field conditions (no `$or`,
    /// `$nor`, `$expr`, ...): then the atoms say everything it says.
    pub only_fields: bool,
}

impl Predicates {
    pub fn analyze(filter: &Document) -> Predicates {
        let mut p = Predicates { fields: Vec::new(), only_fields: true };
        p.add_conjunction(filter, 0);
        p
    }

    /// The atoms on `path` (empty when the filter does not mention it).
    pub fn atoms(&self, path: &str) -> &[Atom] {
        self.fields.iter().find(|(p, _)| p == path).map(|(_, a)| a.as_slice()).unwrap_or(&[])
    }

    fn push(&mut self, path: &str, atom: Atom) {
        if matches!(atom, Atom::Other) {
            self.only_fields = false;
        }
        match self.fields.iter_mut().find(|(p, _)| p == path) {
            Some((_, atoms)) => atoms.push(atom),
            None => self.fields.push((path.to_string(), vec![atom])),
        }
    }

    fn add_conjunction(&mut self, filter: &Document, depth: usize) {
        // Deeper nestings of $and are legal but rare; past this they count
        // as conditions the planner does not read (the filter still applies).
        const MAX_DEPTH: usize = 32;
        for (key, value) in filter {
            match key.as_str() {
                "$and" if depth < MAX_DEPTH => match value {
                    Bson::Array(items) => {
                        for item in items {
                            match item {
                                Bson::Document(d) => self.add_conjunction(d, depth + 1),
                                _ => self.only_fields = false,
                            }
                        }
                    }
                    _ => self.only_fields = false,
                },
                "$comment" => {}
                k if k.starts_with('$') => self.only_fields = false,
                path => self.add_field(path, value),
            }
        }
    }

    fn add_field(&mut self, path: &str, value: &Bson) {
        match value {
            Bson::Document(ops) if ops.keys().next().is_some_and(|k| k.starts_with('$')) => {
                for (op, arg) in ops {
                    let atom = match op.as_str() {
                        // A regex operand of $eq is a value to compare with
                        // (unlike a bare regex), so it is an equality too.
                        "$eq" => Atom::Eq(arg.clone()),
                        "$gt" => Atom::Cmp(CmpOp::Gt, arg.clone()),
                        "$gte" => Atom::Cmp(CmpOp::Gte, arg.clone()),
                        "$lt" => Atom::Cmp(CmpOp::Lt, arg.clone()),
                        "$lte" => Atom::Cmp(CmpOp::Lte, arg.clone()),
                        "$in" => match arg {
                            Bson::Array(items) if !items.iter().any(|i| matches!(i, Bson::RegularExpression(_))) => {
                                Atom::In(items.clone())
                            }
                            _ => Atom::Other,
                        },
                        "$comment" => continue,
                        _ => Atom::Other,
                    };
                    self.push(path, atom);
                }
            }
            // A bare regex matches strings; it is no equality.
            Bson::RegularExpression(_) => self.push(path, Atom::Other),
            other => self.push(path, Atom::Eq(other.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn regex(pattern: &str) -> bson::Regex {
        let pattern = pattern.to_string().try_into().unwrap_or_else(|_| panic!("bad test regex"));
        bson::Regex { pattern, options: String::new().try_into().unwrap_or_else(|_| panic!("bad options")) }
    }

    #[test]
    fn conjunctions_are_flattened_per_field() {
        let p = Predicates::analyze(&doc! {"a": 1, "$and": [{"b": {"$gt": 2, "$lt": 5}}, {"a": {"$in": [1, 2]}}]});
        assert!(p.only_fields);
        assert_eq!(p.atoms("a").len(), 2);
        assert!(matches!(p.atoms("b"), [Atom::Cmp(CmpOp::Gt, _), Atom::Cmp(CmpOp::Lt, _)]));
        assert!(p.atoms("c").is_empty());
    }

    #[test]
    fn other_conditions_are_noted() {
        assert!(!Predicates::analyze(&doc! {"a": 1, "$or": [{"b": 1}]}).only_fields);
        assert!(!Predicates::analyze(&doc! {"a": {"$ne": 1}}).only_fields);
        let p = Predicates::analyze(&doc! {"a": {"$in": [1, Bson::RegularExpression(regex("x"))]}});
        assert!(matches!(p.atoms("a"), [Atom::Other]));
    }
}
