//! A few expressions compiled to run on a document's stored bytes.
//!
//! A `$group` over a join (Django's `annotate(Count('entry'), Avg('entry__n'))`)
//! evaluates its accumulators' arguments once per joined document. Decoding
//! each joined document into a `bson::Document` only to read one or two of
//! its fields costs more than the rest of the group. The expressions Django
//! emits there (field paths, `$ifNull`, `$cond`, comparisons, literals) are
//! compiled once into a [`RawExpr`] that reads the fields it needs straight
//! from a `RawDocument`; anything else is left to the general evaluator
//! ([`RawExpr::compile`] answers `None`).
//!
//! Each compiled operator answers exactly what the general evaluator answers
//! (`logic.rs` supplies the comparison and the notions of null and truth); the
//! tests check the two against each other on generated documents.
use super::logic::compared;
use super::{arg_list, nullish, truthy_value, Value};
use crate::{EngineError, Result};
use bson::{Bson, RawBsonRef, RawDocument};

/// An expression over the document a path prefix names (a join's `as`
/// field), evaluated on that document's stored bytes.
#[derive(Debug, Clone)]
pub enum RawExpr {
    /// A field path below the prefix, split at its dots.
    Path(Vec<String>),
    Literal(Bson),
    IfNull(Vec<RawExpr>),
    Cond(Box<[RawExpr; 3]>),
    /// `$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte` or `$cmp`.
    Compare(&'static str, Box<[RawExpr; 2]>),
}

const COMPARISONS: [&str; 7] = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$cmp"];

impl RawExpr {
    /// `expr` compiled for documents found at `prefix` (so `"$<prefix>.n"`
    /// reads field `n` of the raw document), when it only reads below
    /// `prefix` and uses nothing but the operators above with valid
    /// arguments. `None` sends the caller to the general evaluator, which
    /// also reports any error the expression has.
    pub fn compile(expr: &Bson, prefix: &str) -> Option<RawExpr> {
        Some(match expr {
            Bson::String(s) if s.starts_with("$$") => return None,
            Bson::String(s) if s.starts_with('$') => {
                let below = s[1..].strip_prefix(prefix)?.strip_prefix('.')?;
                let parts: Vec<String> = below.split('.').map(str::to_string).collect();
                if parts.iter().any(|p| p.is_empty() || p.starts_with('$')) {
                    return None;
                }
                RawExpr::Path(parts)
            }
            Bson::Document(d) => {
                let mut fields = d.iter();
                let (Some((op, arg)), None) = (fields.next(), fields.next()) else { return None };
                let args = arg_list(arg);
                let compile_all = |args: &[Bson]| args.iter().map(|a| RawExpr::compile(a, prefix)).collect::<Option<Vec<_>>>();
                match op.as_str() {
                    "$literal" => RawExpr::Literal(arg.clone()),
                    "$ifNull" if args.len() >= 2 => RawExpr::IfNull(compile_all(args)?),
                    "$cond" if matches!(arg, Bson::Array(_)) && args.len() == 3 => {
                        let [i, t, e] = <[RawExpr; 3]>::try_from(compile_all(args)?).ok()?;
                        RawExpr::Cond(Box::new([i, t, e]))
                    }
                    "$cond" => {
                        let Bson::Document(spec) = arg else { return None };
                        if spec.len() != 3 {
                            return None;
                        }
                        let part = |name: &str| spec.get(name).and_then(|e| RawExpr::compile(e, prefix));
                        RawExpr::Cond(Box::new([part("if")?, part("then")?, part("else")?]))
                    }
                    op if args.len() == 2 => {
                        let op = COMPARISONS.iter().find(|c| **c == op)?;
                        let [a, b] = <[RawExpr; 2]>::try_from(compile_all(args)?).ok()?;
                        RawExpr::Compare(op, Box::new([a, b]))
                    }
                    _ => return None,
                }
            }
            // An array or object literal builds a value: the general
            // evaluator's business.
            Bson::Array(_) => return None,
            other => RawExpr::Literal(other.clone()),
        })
    }

    /// The value of the expression for `doc` (`None`: missing).
    pub fn eval(&self, doc: &RawDocument) -> Result<Value> {
        Ok(match self {
            RawExpr::Path(parts) => path_value(doc, parts)?,
            RawExpr::Literal(v) => Some(v.clone()),
            RawExpr::IfNull(args) => {
                let Some((last, init)) = args.split_last() else { return Ok(None) };
                for a in init {
                    let v = a.eval(doc)?;
                    if !nullish(&v) {
                        return Ok(v);
                    }
                }
                last.eval(doc)?
            }
            RawExpr::Cond(parts) => {
                let [i, t, e] = &**parts;
                if truthy_value(&i.eval(doc)?) {
                    t.eval(doc)?
                } else {
                    e.eval(doc)?
                }
            }
            RawExpr::Compare(op, sides) => {
                let [a, b] = &**sides;
                Some(compared(op, &a.eval(doc)?, &b.eval(doc)?))
            }
        })
    }
}

/// A stored document that does not parse.
pub(crate) fn corrupt(e: bson::error::Error) -> EngineError {
    EngineError::new(1, "InternalError", format!("corrupt stored document: {e}"))
}

/// A value read from stored bytes, decoded.
pub(crate) fn owned(value: RawBsonRef<'_>) -> Result<Bson> {
    Bson::try_from(value).map_err(corrupt)
}

/// A field path's value as the general evaluator finds it in the decoded
/// document: nested documents are walked on the bytes; an array on the way
/// (whose elements the path maps over) is decoded and walked as decoded.
fn path_value(doc: &RawDocument, parts: &[String]) -> Result<Value> {
    let Some((head, rest)) = parts.split_first() else { return Ok(None) };
    let Some(value) = doc.get(head).map_err(corrupt)? else { return Ok(None) };
    if rest.is_empty() {
        return Ok(Some(owned(value)?));
    }
    match value {
        RawBsonRef::Document(inner) => path_value(inner, rest),
        RawBsonRef::Array(_) => {
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            Ok(crate::path::expr_walk(&owned(value)?, &rest))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
#[path = "raw_tests.rs"]
mod tests;
