//! Predicates → MongoDB query-language filters.
//!
//! Plain `{field: {$op: value}}` filters can use indexes, `$expr` cannot, so
//! a predicate goes to `$expr` only when it compares computed values or two
//! columns. SQL three-valued logic is kept by lowering "p is TRUE" and "p is
//! FALSE" separately: NOT is pushed down, and every negative form excludes
//! NULL (a missing field reads as NULL).
use bson::{doc, Bson, Document};

use super::{literal, Ctx, Env};
use crate::error::{CompileError, Result};
use crate::plan::{CmpOp, Expr, Func, Literal, MatchKind, SubqueryRef};

/// A slot whose NULL makes the condition around it UNKNOWN (see `operand`).
fn unknown_if_null(mut slot: Document) -> Bson {
    slot.insert("null_unknown", true);
    Bson::Document(slot)
}

/// A filter that matches nothing (a predicate that can never be TRUE).
fn never() -> Document {
    doc! { "$expr": false }
}

fn field(path: String, cond: Bson) -> Document {
    let mut d = Document::new();
    d.insert(path, cond);
    d
}

/// Combines filters with AND, merging them into one document when their
/// keys do not collide (the common, readable `{a: 1, b: {$gt: 2}}` form).
pub(crate) fn and_all(parts: Vec<Document>) -> Document {
    let parts: Vec<Document> = parts.into_iter().filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == never()) {
        return never();
    }
    let mut merged = Document::new();
    let mut mergeable = true;
    for p in &parts {
        for k in p.keys() {
            if k.starts_with('$') || merged.contains_key(k) {
                mergeable = false;
            }
            merged.insert(k.clone(), Bson::Null);
        }
    }
    if parts.len() == 1 {
        return parts.into_iter().next().unwrap_or_default();
    }
    if mergeable {
        let mut out = Document::new();
        for p in parts {
            out.extend(p);
        }
        return out;
    }
    doc! { "$and": parts.into_iter().map(Bson::Document).collect::<Vec<_>>() }
}

fn or_all(parts: Vec<Document>) -> Document {
    let parts: Vec<Document> = parts.into_iter().filter(|p| *p != never()).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Document::new();
    }
    match parts.len() {
        0 => never(),
        1 => parts.into_iter().next().unwrap_or_default(),
        _ => doc! { "$or": parts.into_iter().map(Bson::Document).collect::<Vec<_>>() },
    }
}

impl Ctx {
    /// A filter matching the documents for which `pred` is TRUE.
    pub(crate) fn filter(&self, env: Env, pred: &Expr) -> Result<Document> {
        self.filter_want(env, pred, true)
    }

    fn filter_want(&self, env: Env, pred: &Expr, want: bool) -> Result<Document> {
        match pred {
            Expr::And(v) | Expr::Or(v) => {
                let parts = v.iter().map(|p| self.filter_want(env, p, want)).collect::<Result<Vec<_>>>()?;
                Ok(if matches!(pred, Expr::And(_)) == want { and_all(parts) } else { or_all(parts) })
            }
            Expr::Not(p) => self.filter_want(env, p, !want),
            _ => match self.simple(env, pred, want)? {
                Some(d) => Ok(d),
                None => Ok(doc! { "$expr": self.truth(env, pred, want)? }),
            },
        }
    }

    /// A constant operand the query language can compare against. A slot
    /// (parameter, scalar subquery) is only known at bind time; if it is
    /// NULL there, the comparison is UNKNOWN in SQL, never TRUE, which the
    /// query language cannot say with a value (`{$eq: null}` matches null
    /// and missing fields). So the slot is marked `null_unknown`: bound to
    /// NULL, it makes its condition select nothing (docs/plan-format.md).
    fn operand(&self, e: &Expr) -> Option<Bson> {
        match e {
            Expr::Literal(l) if *l != Literal::Null => Some(literal(l)),
            Expr::Param(i) => Some(unknown_if_null(doc! { "$param": *i as i64 })),
            Expr::ScalarSubquery(SubqueryRef::Uncorrelated(k)) => Some(unknown_if_null(doc! { "$subquery": *k as i64, "scalar": true })),
            Expr::SubqueryColumn { index, column } => {
                Some(unknown_if_null(doc! { "$subquery": *index as i64, "scalar": true, "column": *column as i64 }))
            }
            _ => None,
        }
    }

    /// `$text` for `MONGO_TEXT_SEARCH(search, 'option', value, ...)`: the
    /// search and the values are operands (bound parameters stay data), the
    /// option names literals among `$language`, `$caseSensitive`,
    /// `$diacriticSensitive`. A negated search is refused: MongoDB has no
    /// `$not` of `$text`.
    fn text_search(&self, args: &[Expr], want: bool) -> Result<Document> {
        let refuse = |what: &str| CompileError::unsupported(what.to_string(), "MONGO_TEXT_SEARCH");
        if !want {
            return Err(refuse("NOT MONGO_TEXT_SEARCH() (MongoDB cannot negate $text)"));
        }
        let [search, options @ ..] = args else { return Err(refuse("MONGO_TEXT_SEARCH() without a search string")) };
        let mut text = doc! { "$search": self.operand(search).ok_or_else(|| refuse("MONGO_TEXT_SEARCH() of a column"))? };
        for pair in options.chunks(2) {
            let [Expr::Literal(Literal::Str(name)), value] = pair else { return Err(refuse("MONGO_TEXT_SEARCH() option not a string literal")) };
            if !matches!(name.as_str(), "$language" | "$caseSensitive" | "$diacriticSensitive") {
                return Err(refuse("MONGO_TEXT_SEARCH() option other than $language, $caseSensitive, $diacriticSensitive"));
            }
            text.insert(name.clone(), self.operand(value).ok_or_else(|| refuse("MONGO_TEXT_SEARCH() option value of a column"))?);
        }
        Ok(doc! { "$text": text })
    }

    /// One predicate on one field in the query language, or `None`.
    fn simple(&self, env: Env, pred: &Expr, want: bool) -> Result<Option<Document>> {
        Ok(match pred {
            Expr::Function { func: Func::TextSearch, args } => Some(self.text_search(args, want)?),
            Expr::Compare { op: CmpOp::Eq, left, right } if matches!(**left, Expr::Function { func: Func::TextSearch, .. }) && matches!(**right, Expr::Literal(Literal::Bool(_))) => {
                let (Expr::Function { args, .. }, Expr::Literal(Literal::Bool(b))) = (&**left, &**right) else { return Ok(None) };
                Some(self.text_search(args, want == *b)?)
            }
            Expr::Literal(Literal::Bool(b)) => Some(if *b == want { Document::new() } else { never() }),
            Expr::Literal(Literal::Null) => Some(never()),
            Expr::Column(_) => self.field_path(env, pred).map(|f| field(f, Bson::Document(doc! { "$eq": want }))),
            Expr::Compare { op, left, right } => {
                if matches!(**left, Expr::Literal(Literal::Null)) || matches!(**right, Expr::Literal(Literal::Null)) {
                    return Ok(Some(never()));
                }
                let (path, op, value) = match (self.field_path(env, left), self.operand(right), self.field_path(env, right), self.operand(left)) {
                    (Some(f), Some(v), _, _) => (f, *op, v),
                    (_, _, Some(f), Some(v)) => (f, op.flip(), v),
                    _ => return Ok(None),
                };
                let op = if want { op } else { op.negate() };
                Some(match op {
                    // `<>` is not TRUE for NULL: exclude null and missing.
                    CmpOp::Ne => field(path, Bson::Document(doc! { "$nin": [value, Bson::Null] })),
                    // `$eq`, never a bare value: a bound document must not be
                    // read as operators.
                    other => field(path, Bson::Document(doc! { super::expr::cmp_name(other): value })),
                })
            }
            Expr::IsNull { expr, negated } => self.field_path(env, expr).map(|f| {
                let is_null = want != *negated;
                field(f, Bson::Document(if is_null { doc! { "$eq": Bson::Null } } else { doc! { "$ne": Bson::Null } }))
            }),
            Expr::InList { expr, list, negated } => {
                let Some(f) = self.field_path(env, expr) else { return Ok(None) };
                let want = want != *negated;
                let has_null = list.iter().any(|x| matches!(x, Expr::Literal(Literal::Null)));
                let mut values = Vec::new();
                for x in list.iter().filter(|x| !matches!(x, Expr::Literal(Literal::Null))) {
                    match self.operand(x) {
                        Some(v) => values.push(v),
                        None => return Ok(None),
                    }
                }
                if want {
                    Some(if values.is_empty() { never() } else { field(f, Bson::Document(doc! { "$in": values })) })
                } else if has_null {
                    // `x NOT IN (..., NULL)` is never TRUE.
                    Some(never())
                } else {
                    values.push(Bson::Null);
                    Some(field(f, Bson::Document(doc! { "$nin": values })))
                }
            }
            Expr::InSubquery { expr, subquery: SubqueryRef::Uncorrelated(k), negated } => {
                let Some(f) = self.field_path(env, expr) else { return Ok(None) };
                // A NULL among the subquery's values never equals anything
                // (`IN` skips it) and makes `NOT IN` never TRUE.
                Some(if want != *negated {
                    let slot = Bson::Document(doc! { "$subquery": *k as i64, "nulls": "skip" });
                    field(f, Bson::Document(doc! { "$in": slot }))
                } else {
                    let slot = Bson::Document(doc! { "$subquery": *k as i64, "nulls": "unknown" });
                    field(f, Bson::Document(doc! { "$nin": slot, "$ne": Bson::Null }))
                })
            }
            Expr::Exists { subquery: SubqueryRef::Uncorrelated(k), negated } => {
                let slot = Bson::Document(doc! { "$subquery": *k as i64, "exists": true });
                Some(if want != *negated { doc! { "$expr": slot } } else { doc! { "$expr": { "$not": [slot] } } })
            }
            Expr::Exists { subquery: SubqueryRef::Correlated(q), negated } if env.pre.is_some() => {
                let (f, _) = self.correlated_lookup(env, q, true)?;
                let cond = if want != *negated { doc! { "$ne": [] } } else { doc! { "$eq": [] } };
                Some(field(f, Bson::Document(cond)))
            }
            Expr::Between { expr, low, high, negated } => {
                let (Some(f), Some(lo), Some(hi)) = (self.field_path(env, expr), self.operand(low), self.operand(high)) else {
                    return Ok(None);
                };
                Some(if want != *negated {
                    field(f, Bson::Document(doc! { "$gte": lo, "$lte": hi }))
                } else {
                    doc! { "$or": [ { f.clone(): { "$lt": lo } }, { f: { "$gt": hi } } ] }
                })
            }
            Expr::Function { func: crate::plan::Func::Geo(g), args } if *g != crate::plan::GeoFunc::Distance => self.geo_filter(env, *g, args, want)?,
            Expr::Match { kind, expr, pattern, case_insensitive, negated } => {
                let Some(f) = self.field_path(env, expr) else { return Ok(None) };
                let regex = match (kind, pattern.as_ref()) {
                    (MatchKind::Like, Expr::Literal(Literal::Str(s))) => Bson::String(super::like_to_regex(s)),
                    (MatchKind::Regex, Expr::Literal(Literal::Str(s))) => Bson::String(s.clone()),
                    (MatchKind::Like, Expr::Param(i)) => unknown_if_null(doc! { "$param": *i as i64, "like": true }),
                    (MatchKind::Regex, Expr::Param(i)) => unknown_if_null(doc! { "$param": *i as i64 }),
                    _ => return Ok(None),
                };
                let mut m = doc! { "$regex": regex };
                // LIKE's `%` matches across newlines (`s`).
                match (kind, *case_insensitive) {
                    (MatchKind::Like, true) => m.insert("$options", "is"),
                    (MatchKind::Like, false) => m.insert("$options", "s"),
                    (MatchKind::Regex, true) => m.insert("$options", "i"),
                    (MatchKind::Regex, false) => None,
                };
                Some(if want != *negated {
                    field(f, Bson::Document(m))
                } else {
                    // `$not` alone would also match NULL/missing fields.
                    field(f, Bson::Document(doc! { "$not": m, "$ne": Bson::Null }))
                })
            }
            _ => None,
        })
    }
}
