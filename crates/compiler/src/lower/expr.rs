//! Plan expressions → MongoDB aggregation expressions.
//!
//! SQL's NULL propagation is kept explicitly: MongoDB string operators turn
//! null into "", aggregation comparisons treat null as a value, and a
//! missing field is not even equal to null. Every literal is wrapped in
//! `$literal` and every parameter slot too, so no value is ever read as a
//! field path or an operator.
use bson::{doc, Bson, Document};

use super::{client, date, json, like, literal, text, param_slot, read, Ctx, Env, Fields, Outer, Vars, RESERVED_PREFIX};
use crate::error::{CompileError, Result};
use crate::plan::{is_plain_key, AggFunc, ArithOp, CastType, CmpOp, ColumnRef, Expr, FieldPath, Func, JsonMode, Literal, MatchKind, Query, SubqueryRef};

pub(crate) fn lit(b: impl Into<Bson>) -> Bson {
    Bson::Document(doc! { "$literal": b.into() })
}

pub(crate) fn op1(name: &str, arg: Bson) -> Bson {
    let mut d = Document::new();
    d.insert(name, arg);
    Bson::Document(d)
}

pub(crate) fn opn(name: &str, args: Vec<Bson>) -> Bson {
    op1(name, Bson::Array(args))
}

/// TRUE when `x` is SQL NULL (null or missing).
pub(crate) fn is_null(x: Bson) -> Bson {
    opn("$eq", vec![opn("$ifNull", vec![x, Bson::Null]), Bson::Null])
}

pub(crate) fn not_null(x: Bson) -> Bson {
    opn("$ne", vec![opn("$ifNull", vec![x, Bson::Null]), Bson::Null])
}

fn and(mut parts: Vec<Bson>) -> Bson {
    parts.retain(|p| *p != Bson::Boolean(true));
    if parts.iter().any(|p| *p == Bson::Boolean(false)) {
        return Bson::Boolean(false);
    }
    match parts.len() {
        0 => Bson::Boolean(true),
        1 => parts.pop().unwrap_or(Bson::Boolean(true)),
        _ => opn("$and", parts),
    }
}

fn or(mut parts: Vec<Bson>) -> Bson {
    parts.retain(|p| *p != Bson::Boolean(false));
    if parts.iter().any(|p| *p == Bson::Boolean(true)) {
        return Bson::Boolean(true);
    }
    match parts.len() {
        0 => Bson::Boolean(false),
        1 => parts.pop().unwrap_or(Bson::Boolean(false)),
        _ => opn("$or", parts),
    }
}

/// A decimal rounded to `scale` places, halves away from zero as SQL's
/// numeric(p, s) does. Unlike `round_half_away` (SQL ROUND over any number),
/// the half unit is a decimal, so the sum stays exact.
fn round_decimal_half_away(x: Bson, scale: u32) -> Bson {
    let half = format!("0.{}5", "0".repeat(scale as usize));
    let signed_half = opn(
        "$cond",
        vec![opn("$gte", vec![x.clone(), Bson::Int32(0)]), op1("$toDecimal", Bson::String(half.clone())), op1("$toDecimal", Bson::String(format!("-{half}")))],
    );
    opn("$trunc", vec![opn("$add", vec![x, signed_half]), Bson::Int64(i64::from(scale))])
}

/// SQL NULL → NULL, otherwise `f(x)`: for MongoDB operators that would turn
/// null into a value ("" for `$toUpper`) or fail on it (`$strLenCP`).
fn null_safe(x: Bson, f: impl FnOnce(Bson) -> Bson) -> Bson {
    opn("$cond", vec![is_null(x.clone()), Bson::Null, f(x)])
}

/// The MongoDB operator of a comparison (the same name in filters and expressions).
pub(super) fn cmp_name(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "$eq",
        CmpOp::Ne => "$ne",
        CmpOp::Lt => "$lt",
        CmpOp::Le => "$lte",
        CmpOp::Gt => "$gt",
        CmpOp::Ge => "$gte",
    }
}

/// A literal or a parameter: a value fixed before any document is read.
fn is_constant(e: &Expr) -> bool {
    matches!(e, Expr::Literal(_) | Expr::Param(_) | Expr::SubqueryColumn { .. })
}

/// TRUE when `v` (the lowered `e`) is not NULL. A parameter slot is bound to
/// a value (never missing), so it needs no `$ifNull`.
fn not_null_operand(e: &Expr, v: Bson) -> Bson {
    if matches!(e, Expr::Param(_)) {
        opn("$ne", vec![v, Bson::Null])
    } else {
        not_null(v)
    }
}

/// Operands known not to be NULL at compile time: non-null literals. A
/// parameter may be bound to None (raw SQL, `WHERE x = %s` with None), which
/// SQL compares as UNKNOWN, so it gets the same NULL guard as a column.
fn known_not_null(e: &Expr) -> bool {
    matches!(e, Expr::Literal(l) if *l != Literal::Null)
}

impl Ctx {
    pub(crate) fn column(&self, env: Env, c: &ColumnRef) -> Result<Bson> {
        if c.scope > 0 {
            let mut level = env.outer;
            for _ in 1..c.scope {
                level = level.and_then(|o| o.parent);
            }
            let Some(level) = level else {
                return Err(CompileError::unsupported("column of an enclosing query out of reach", &c.path));
            };
            let outer = ColumnRef { scope: 0, ..c.clone() };
            return Ok(Bson::String(format!("$${}", var(level.vars, outer, &level.prefix()))));
        }
        if let Some(g) = env.group {
            return g
                .lookup(&Expr::Column(c.clone()))
                .ok_or_else(|| CompileError::unsupported("column neither grouped nor aggregated", &c.path));
        }
        match env.fields {
            Fields::Prefixed(prefixes) => {
                let prefix = prefixes.get(c.source).map(String::as_str).unwrap_or("");
                Ok(read_field(prefix, &c.path))
            }
            Fields::JoinPipeline { local, vars } => {
                if c.source == local {
                    Ok(read_field("", &c.path))
                } else {
                    Ok(Bson::String(format!("$${}", var(vars, c.clone(), "v"))))
                }
            }
        }
    }

    /// The plain document field an expression reads, if it is one: the
    /// query language can only test fields.
    pub(crate) fn field_path(&self, env: Env, e: &Expr) -> Option<String> {
        if let Some(g) = env.group {
            return g.plain_path(e);
        }
        match (e, env.fields) {
            (Expr::Column(c), Fields::Prefixed(prefixes)) if c.scope == 0 => {
                Some(format!("{}{}", prefixes.get(c.source).map(String::as_str).unwrap_or(""), c.path.dotted()?))
            }
            (Expr::Column(c), Fields::JoinPipeline { local, .. }) if c.scope == 0 && c.source == local => c.path.dotted(),
            _ => None,
        }
    }

    pub(crate) fn value(&self, env: Env, e: &Expr) -> Result<Bson> {
        if let Some(g) = env.group {
            if let Some(v) = g.lookup(e) {
                return Ok(v);
            }
        }
        Ok(match e {
            Expr::Column(c) => self.column(env, c)?,
            Expr::Literal(l) => lit(literal(l)),
            Expr::Param(i) => lit(param_slot(*i)),
            Expr::Neg(x) => opn("$subtract", vec![Bson::Int32(0), self.value(env, x)?]),
            Expr::Arith { op, left, right } => {
                let (l, r) = (self.value(env, left)?, self.value(env, right)?);
                match op {
                    ArithOp::Add => opn("$add", vec![l, r]),
                    ArithOp::Sub => opn("$subtract", vec![l, r]),
                    ArithOp::Mul => opn("$multiply", vec![l, r]),
                    ArithOp::Mod => opn("$mod", vec![l, r]),
                    ArithOp::Div => divide(l, r),
                }
            }
            Expr::Concat(parts) => opn("$concat", parts.iter().map(|p| self.value(env, p)).collect::<Result<_>>()?),
            Expr::Function { func: Func::JsonContains, args } => self.json_contains(env, args)?,
            Expr::Function { func: Func::Geo(crate::plan::GeoFunc::Distance), args } => match args.as_slice() {
                [point, query] => super::geo::distance(self.value(env, point)?, self.value(env, query)?),
                _ => return Err(CompileError::unsupported("GEO_DISTANCE() with other than 2 arguments", format!("{args:?}"))),
            },
            Expr::Function { func: Func::Geo(g), .. } => {
                return Err(CompileError::unsupported(format!("{g:?} geo predicate outside WHERE"), format!("{e:?}")));
            }
            Expr::Function { func: Func::JsonObject, args } => {
                let mut pairs = Vec::with_capacity(args.len() / 2);
                for pair in args.chunks(2) {
                    if let [k, v] = pair {
                        pairs.push((self.value(env, k)?, self.value(env, v)?));
                    }
                }
                json::object(pairs)
            }
            Expr::Function { func: Func::JsonArray, args } => json::array(args.iter().map(|a| self.value(env, a)).collect::<Result<_>>()?),
            Expr::Function { func: Func::Row, args } => Bson::Array(args.iter().map(|a| self.value(env, a)).collect::<Result<_>>()?),
            Expr::Function { func: f @ (Func::Hash(_) | Func::Chr | Func::Ord | Func::CodePrefix), args } => {
                if let Some(first) = (*f == Func::Chr).then(|| client::chr_of_ord(args)).flatten() {
                    return self.value(env, &first);
                }
                match args.first().and_then(|a| client::constant(*f, a)) {
                    Some(slot) => slot,
                    None => return Err(client::refused(*f)),
                }
            }
            Expr::Function { func, args } => self.function(env, *func, args)?,
            Expr::JsonExtract { expr, path, mode } => json::extract(self.json_input(env, expr)?, path, *mode),
            // A statement's COLLATEs become its operation's collation
            // (plan::collation); MongoDB has none for a stored or indexed value.
            Expr::Collate { .. } => {
                return Err(CompileError::unsupported("COLLATE in an index expression, a generated column, a CHECK or a DEFAULT", format!("{e:?}")))
            }
            Expr::Aggregate { .. } => return Err(CompileError::unsupported("aggregate function outside SELECT/HAVING/ORDER BY of a grouped query", format!("{e:?}"))),
            Expr::Case { whens, otherwise } => {
                if let Some(lookup) = self.case_as_lookup(env, whens, otherwise.as_deref())? {
                    return Ok(lookup);
                }
                let mut branches = Vec::new();
                for (c, v) in whens {
                    branches.push(Bson::Document(doc! { "case": self.truth(env, c, true)?, "then": self.value(env, v)? }));
                }
                let default = match otherwise {
                    Some(o) => self.value(env, o)?,
                    None => Bson::Null,
                };
                Bson::Document(doc! { "$switch": { "branches": branches, "default": default } })
            }
            Expr::Cast { expr, to: CastType::Json } => self.json_input(env, expr)?,
            Expr::Cast { expr, to } => {
                let v = self.value(env, expr)?;
                let name = match to {
                    CastType::Integer => "$toLong",
                    CastType::Float => "$toDouble",
                    CastType::Decimal(None) => "$toDecimal",
                    CastType::Decimal(Some(scale)) => return Ok(null_safe(v, |x| round_decimal_half_away(op1("$toDecimal", x), *scale))),
                    CastType::Text(None) => "$toString",
                    CastType::Text(Some(n)) => {
                        let n = Bson::Int64(i64::from(*n));
                        return Ok(null_safe(v, |x| opn("$substrCP", vec![op1("$toString", x), Bson::Int32(0), n])));
                    }
                    CastType::Bool => "$toBool",
                    CastType::DateTime => "$toDate",
                    CastType::Date => return Ok(date::trunc_date(op1("$toDate", v), "day")),
                    CastType::Time => return Ok(date::cast_time(v)),
                    CastType::Json => return Ok(v),
                };
                op1(name, v)
            }
            Expr::ScalarSubquery(SubqueryRef::Uncorrelated(k)) => lit(doc! { "$subquery": *k as i64, "scalar": true }),
            Expr::SubqueryColumn { index, column } => lit(doc! { "$subquery": *index as i64, "scalar": true, "column": *column as i64 }),
            Expr::ScalarSubquery(SubqueryRef::Correlated(q)) => {
                let (field, default) = self.correlated_lookup(env, q, true)?;
                let first = opn("$arrayElemAt", vec![Bson::String(format!("${field}.c0")), Bson::Int32(0)]);
                match default {
                    Some(d) if d != Bson::Null => opn("$ifNull", vec![first, lit(d)]),
                    _ => first,
                }
            }
            Expr::Window(w) => self.window_field(w)?,
            // A predicate used as a value is three-valued: TRUE, FALSE or NULL.
            _ => {
                let t = self.truth(env, e, true)?;
                let f = self.truth(env, e, false)?;
                opn("$cond", vec![t, Bson::Boolean(true), opn("$cond", vec![f, Bson::Boolean(false), Bson::Null])])
            }
        })
    }

    /// An aggregation expression that is true exactly when the SQL predicate
    /// `e` is `want` (TRUE or FALSE); NULL ("unknown") gives false either way.
    pub(crate) fn truth(&self, env: Env, e: &Expr, want: bool) -> Result<Bson> {
        Ok(match e {
            Expr::And(v) | Expr::Or(v) => {
                let parts = v.iter().map(|x| self.truth(env, x, want)).collect::<Result<Vec<_>>>()?;
                if matches!(e, Expr::And(_)) == want { and(parts) } else { or(parts) }
            }
            Expr::Not(x) => self.truth(env, x, !want)?,
            Expr::Literal(Literal::Bool(b)) => Bson::Boolean(*b == want),
            Expr::Literal(Literal::Null) => Bson::Boolean(false),
            Expr::Compare { op, left, right } => {
                if let Some(rewritten) = client::ord_comparison(*op, left, right) {
                    return self.truth(env, &rewritten, want);
                }
                let op = if want { *op } else { op.negate() };
                let mut parts = Vec::new();
                let (l, r) = (self.value(env, left)?, self.value(env, right)?);
                // `a = v` with a non-NULL `v` is already false for a NULL
                // `a`: against a literal or a parameter, only the parameter
                // itself needs the NULL guard.
                let eq_one_side = op == CmpOp::Eq && (is_constant(left) || is_constant(right));
                for (e, v) in [(left, &l), (right, &r)] {
                    if known_not_null(e) || (eq_one_side && !is_constant(e)) {
                        continue;
                    }
                    parts.push(not_null_operand(e, v.clone()));
                }
                parts.push(opn(cmp_name(op), vec![l, r]));
                and(parts)
            }
            Expr::IsNull { expr, negated } => {
                if let Expr::JsonExtract { expr: input, path, mode: JsonMode::Type } = &**expr {
                    return Ok(json::presence(self.json_input(env, input)?, path, want == *negated));
                }
                let v = self.value(env, expr)?;
                if want != *negated { is_null(v) } else { not_null(v) }
            }
            Expr::InList { expr, list, negated } => {
                let want = want != *negated;
                let has_null = list.iter().any(|x| matches!(x, Expr::Literal(Literal::Null)));
                if !want && has_null {
                    return Ok(Bson::Boolean(false));
                }
                let v = self.value(env, expr)?;
                let mut parts = vec![not_null(v.clone())];
                let mut items = Vec::new();
                for x in list.iter().filter(|x| !matches!(x, Expr::Literal(Literal::Null))) {
                    let item = self.value(env, x)?;
                    // `x NOT IN (..., NULL)` is never TRUE, NULL bound late included.
                    if !want && !known_not_null(x) {
                        parts.push(not_null_operand(x, item.clone()));
                    }
                    items.push(item);
                }
                let inn = opn("$in", vec![v, Bson::Array(items)]);
                parts.push(if want { inn } else { opn("$not", vec![inn]) });
                and(parts)
            }
            Expr::InSubquery { expr, subquery, negated } => {
                let want = want != *negated;
                let v = self.value(env, expr)?;
                // `values` skips the subquery rows whose c0 is missing; `with_nulls`
                // keeps them as NULL, which only NOT IN needs to see.
                let (values, with_nulls) = match subquery {
                    SubqueryRef::Uncorrelated(k) => {
                        let list = lit(doc! { "$subquery": *k as i64 });
                        (list.clone(), list)
                    }
                    SubqueryRef::Correlated(q) => {
                        let (field, _) = self.correlated_lookup(env, q, false)?;
                        let with_nulls = doc! { "$map": {
                            "input": format!("${field}"),
                            "as": "row",
                            "in": { "$ifNull": ["$$row.c0", Bson::Null] },
                        } };
                        (Bson::String(format!("${field}.c0")), with_nulls.into())
                    }
                };
                let inn = opn("$in", vec![v.clone(), values]);
                if want {
                    and(vec![not_null(v), inn])
                } else {
                    // A NULL among the subquery's values makes NOT IN never TRUE.
                    let has_null = opn("$in", vec![Bson::Null, with_nulls]);
                    and(vec![not_null(v), opn("$not", vec![has_null]), opn("$not", vec![inn])])
                }
            }
            Expr::Exists { subquery, negated } => {
                let want = want != *negated;
                let exists = match subquery {
                    SubqueryRef::Uncorrelated(k) => lit(doc! { "$subquery": *k as i64, "exists": true }),
                    SubqueryRef::Correlated(q) => {
                        let (field, _) = self.correlated_lookup(env, q, true)?;
                        opn("$gt", vec![op1("$size", Bson::String(format!("${field}"))), Bson::Int32(0)])
                    }
                };
                if want { exists } else { opn("$not", vec![exists]) }
            }
            Expr::Between { expr, low, high, negated } => {
                let want = want != *negated;
                let (v, lo, hi) = (self.value(env, expr)?, self.value(env, low)?, self.value(env, high)?);
                let mut parts = vec![not_null(v.clone()), not_null(lo.clone()), not_null(hi.clone())];
                if want {
                    parts.push(opn("$gte", vec![v.clone(), lo]));
                    parts.push(opn("$lte", vec![v, hi]));
                    and(parts)
                } else {
                    parts.push(or(vec![opn("$lt", vec![v.clone(), lo]), opn("$gt", vec![v, hi])]));
                    and(parts)
                }
            }
            Expr::Match { kind, expr, pattern, case_insensitive, negated } => {
                let want = want != *negated;
                let v = self.value(env, expr)?;
                let ci = *case_insensitive;
                let regex = match (kind, pattern.as_ref()) {
                    (MatchKind::Like, Expr::Literal(Literal::Str(s))) => lit(super::like_to_regex(s)),
                    (MatchKind::Regex, Expr::Literal(Literal::Str(s))) => lit(s.clone()),
                    (MatchKind::Like, Expr::Param(i)) => lit(doc! { "$param": *i as i64, "like": true }),
                    (MatchKind::Regex, Expr::Param(i)) => lit(param_slot(*i)),
                    (MatchKind::Like, other) => {
                        // A computed pattern: Django's contains/startswith/endswith
                        // with an expression become substring tests; any other
                        // pattern is turned into a regex at run time.
                        if let Some((shape, inner)) = like::affix_shape(other) {
                            let x = self.value(env, inner)?;
                            let m = like::affix_match(shape, v.clone(), x.clone(), ci);
                            return Ok(and(vec![not_null(v), not_null(x), if want { m } else { opn("$not", vec![m]) }]));
                        }
                        let p = self.value(env, other)?;
                        let m = regex_match(v.clone(), like::runtime_like_regex(p.clone()), true, ci);
                        return Ok(and(vec![not_null(v), not_null(p), if want { m } else { opn("$not", vec![m]) }]));
                    }
                    (MatchKind::Regex, other) => {
                        let p = self.value(env, other)?;
                        let m = regex_match(v.clone(), p.clone(), false, ci);
                        return Ok(and(vec![not_null(v), not_null(p), if want { m } else { opn("$not", vec![m]) }]));
                    }
                };
                let m = regex_match(v.clone(), regex.clone(), *kind == MatchKind::Like, ci);
                let mut parts = vec![not_null(v)];
                if matches!(pattern.as_ref(), Expr::Param(_)) {
                    // `x LIKE NULL` is UNKNOWN (the slot binds NULL to null).
                    parts.push(opn("$ne", vec![regex, Bson::Null]));
                }
                parts.push(if want { m } else { opn("$not", vec![m]) });
                and(parts)
            }
            // Any other value used as a condition (a boolean column, CASE,
            // a function): TRUE/FALSE are the booleans themselves.
            other => opn("$eq", vec![self.value(env, other)?, Bson::Boolean(want)]),
        })
    }

    fn function(&self, env: Env, func: Func, args: &[Expr]) -> Result<Bson> {
        let mut a = args.iter().map(|x| self.value(env, x)).collect::<Result<Vec<_>>>()?;
        let argc = a.len();
        let mut arg = |i: usize| a.get_mut(i).map(std::mem::take).unwrap_or(Bson::Null);
        Ok(match func {
            Func::TextScore => Bson::Document(doc! { "$meta": "textScore" }),
            Func::TextSearch => {
                return Err(CompileError::unsupported(
                    "MONGO_TEXT_SEARCH() other than as a condition of the WHERE clause's top-level AND (MongoDB's $text)",
                    "MONGO_TEXT_SEARCH",
                ))
            }
            Func::Upper => null_safe(arg(0), |x| op1("$toUpper", x)),
            Func::Lower => null_safe(arg(0), |x| op1("$toLower", x)),
            Func::Length => null_safe(arg(0), |x| op1("$strLenCP", x)),
            Func::Trim | Func::LTrim | Func::RTrim => {
                let name = match func {
                    Func::LTrim => "$ltrim",
                    Func::RTrim => "$rtrim",
                    _ => "$trim",
                };
                let x = arg(0);
                if argc > 1 {
                    // TRIM(x, chars): NULL if either is NULL, as in SQL.
                    let chars = arg(1);
                    let trim = op1(name, Bson::Document(doc! { "input": "$$x", "chars": "$$c" }));
                    let body = opn("$cond", vec![or(vec![is_null(Bson::String("$$x".into())), is_null(Bson::String("$$c".into()))]), Bson::Null, trim]);
                    Bson::Document(doc! { "$let": { "vars": { "x": x, "c": chars }, "in": body } })
                } else {
                    null_safe(x, |x| op1(name, Bson::Document(doc! { "input": x })))
                }
            }
            Func::Abs => op1("$abs", arg(0)),
            Func::Round => {
                let x = arg(0);
                let places = if args.len() > 1 { arg(1) } else { Bson::Int32(0) };
                round_half_away(x, places)
            }
            Func::Ceil => op1("$ceil", arg(0)),
            Func::Floor => op1("$floor", arg(0)),
            Func::Sqrt => op1("$sqrt", arg(0)),
            Func::Exp => op1("$exp", arg(0)),
            Func::Ln => op1("$ln", arg(0)),
            Func::Log10 => op1("$log10", arg(0)),
            Func::Sign => {
                let x = arg(0);
                null_safe(x, |x| opn("$cmp", vec![x, Bson::Int32(0)]))
            }
            Func::Power => opn("$pow", vec![arg(0), arg(1)]),
            Func::Mod => opn("$mod", vec![arg(0), arg(1)]),
            Func::Substr => {
                // SQL positions are 1-based; a missing length means "to the end".
                let (s, from) = (arg(0), arg(1));
                let len = if args.len() > 2 { arg(2) } else { Bson::Int32(i32::MAX) };
                let start = opn("$max", vec![opn("$subtract", vec![from, Bson::Int32(1)]), Bson::Int32(0)]);
                null_safe(s, |s| opn("$substrCP", vec![s, start, len]))
            }
            Func::Replace => {
                let (s, find, repl) = (arg(0), arg(1), arg(2));
                Bson::Document(doc! { "$replaceAll": { "input": s, "find": find, "replacement": repl } })
            }
            Func::Concat => opn(
                "$concat",
                a.into_iter().map(|x| opn("$ifNull", vec![op1("$toString", x), lit("")])).collect(),
            ),
            Func::Coalesce => {
                if argc == 1 {
                    arg(0)
                } else {
                    a.push(Bson::Null);
                    opn("$ifNull", a)
                }
            }
            Func::NullIf => {
                let (x, y) = (arg(0), arg(1));
                opn("$cond", vec![opn("$eq", vec![x.clone(), y]), Bson::Null, x])
            }
            Func::Greatest => opn("$max", a),
            Func::Least => opn("$min", a),
            Func::Now => Bson::String("$$NOW".into()),
            Func::Sin => op1("$sin", arg(0)),
            Func::Cos => op1("$cos", arg(0)),
            Func::Tan => op1("$tan", arg(0)),
            Func::Asin => op1("$asin", arg(0)),
            Func::Acos => op1("$acos", arg(0)),
            Func::Atan => op1("$atan", arg(0)),
            Func::Atan2 => opn("$atan2", vec![arg(0), arg(1)]),
            Func::Cot => opn("$divide", vec![Bson::Int32(1), op1("$tan", arg(0))]),
            Func::Degrees => op1("$radiansToDegrees", arg(0)),
            Func::Radians => op1("$degreesToRadians", arg(0)),
            Func::Pi => lit(std::f64::consts::PI),
            Func::Log if argc == 1 => op1("$log10", arg(0)),
            Func::Log => {
                let (base, x) = (arg(0), arg(1));
                opn("$log", vec![x, base])
            }
            Func::Random => Bson::Document(doc! { "$rand": {} }),
            Func::Left => text::left(arg(0), arg(1)),
            Func::Right => text::right(arg(0), arg(1)),
            Func::Reverse => text::reverse(arg(0)),
            Func::Repeat => text::repeat(arg(0), arg(1)),
            Func::LPad | Func::RPad => {
                let (s, n) = (arg(0), arg(1));
                let fill = if argc > 2 { arg(2) } else { lit(" ") };
                text::pad(s, n, fill, func == Func::LPad)
            }
            Func::BitAnd => opn("$bitAnd", vec![arg(0), arg(1)]),
            Func::BitOr => opn("$bitOr", vec![arg(0), arg(1)]),
            Func::BitXor => opn("$bitXor", vec![arg(0), arg(1)]),
            Func::ShiftLeft | Func::ShiftRight => {
                let (x, n) = (arg(0), arg(1));
                text::shift(x, n, func == Func::ShiftLeft)
            }
            Func::Extract(part) => date::extract(part, arg(0)),
            Func::DateTrunc(unit) => date::trunc(unit, arg(0)),
            Func::ConvertTz => {
                let (x, from, to) = (arg(0), arg(1), arg(2));
                date::at_time_zone(date::from_wall_clock(x, from), to)
            }
            Func::AtTimeZone => {
                let (x, tz) = (arg(0), arg(1));
                date::at_time_zone(x, tz)
            }
            Func::JsonContains | Func::JsonObject | Func::JsonArray | Func::Row | Func::Hash(_) | Func::Chr | Func::Ord | Func::CodePrefix | Func::Geo(_) => {
                return Err(CompileError::unsupported("JSON function in this position", format!("{func:?}")));
            }
            Func::StrIndex => {
                // 1-based position, 0 when absent (SQL INSTR/STRPOS).
                let (s, sub) = (arg(0), arg(1));
                null_safe(s, |s| opn("$add", vec![opn("$indexOfCP", vec![s, sub]), Bson::Int32(1)]))
            }
        })
    }

    /// A value given to a JSON function: a parameter there is a JSON value,
    /// and a string parameter is JSON text (as SQL's JSON functions read
    /// text), which the executor parses when it binds it.
    fn json_input(&self, env: Env, e: &Expr) -> Result<Bson> {
        match e {
            Expr::Param(i) => Ok(lit(doc! { "$param": *i as i64, "json": true })),
            Expr::Literal(Literal::Str(text)) => Ok(lit(crate::plan::build::json::parse_text(text)?)),
            other => self.value(env, other),
        }
    }

    /// `JSON_CONTAINS(container, candidate)`. One side must be a constant
    /// (a parameter or JSON text): the executor expands the containment
    /// over that value's structure when it binds it (a `$jsonContains`
    /// slot, docs/plan-format.md), so it runs in the server, on MongoDB too.
    fn json_contains(&self, env: Env, args: &[Expr]) -> Result<Bson> {
        let [container, candidate] = args else {
            return Err(CompileError::unsupported("JSON_CONTAINS() with other than 2 arguments", format!("{args:?}")));
        };
        let constant = |e: &Expr| matches!(e, Expr::Param(_) | Expr::Literal(_));
        let (value, expr, value_is) = if constant(candidate) {
            (candidate, container, "contained")
        } else if constant(container) {
            (container, candidate, "container")
        } else {
            return Err(CompileError::unsupported("JSON_CONTAINS() of two computed values (one side must be a parameter or JSON text)", format!("{args:?}")));
        };
        let value = match value {
            Expr::Param(i) => Bson::Document(doc! { "$param": *i as i64, "json": true }),
            Expr::Literal(Literal::Str(text)) => lit(crate::plan::build::json::parse_text(text)?),
            Expr::Literal(Literal::Null) => return Ok(Bson::Null),
            Expr::Literal(l) => lit(literal(l)),
            _ => return Err(CompileError::unsupported("JSON_CONTAINS() operand", format!("{value:?}"))),
        };
        Ok(Bson::Document(doc! { "$jsonContains": { "value": value, "expr": self.value(env, expr)?, "value_is": value_is } }))
    }

    /// Emits a `$lookup` running correlated subquery `q` for each document,
    /// into a reserved field; returns the field and the subquery's default row
    /// value (for aggregates over no rows).
    pub(crate) fn correlated_lookup(&self, env: Env, q: &Query, limit_one: bool) -> Result<(String, Option<Bson>)> {
        let Some(pre) = env.pre else {
            return Err(CompileError::unsupported("correlated subquery in this position", "correlated subquery"));
        };
        let vars: Vars = Default::default();
        let outer = Outer { vars: &vars, parent: env.outer, depth: env.outer.map_or(0, |o| o.depth + 1) };
        let plan = read::lower_query(self, q, Some(&outer))?;
        let default = plan.default_first();
        let (collection, mut stages) = plan.into_stages()?;
        if limit_one && stages.last() != Some(&doc! { "$limit": 1 }) {
            stages.push(doc! { "$limit": 1 });
        }
        let mut let_doc = Document::new();
        for (c, name) in vars.borrow().iter() {
            let_doc.insert(name.clone(), self.column(env, c)?);
        }
        let n = {
            let mut k = self.lookups.borrow_mut();
            *k += 1;
            *k - 1
        };
        let field = format!("{RESERVED_PREFIX}sq{n}");
        let mut lookup = Document::new();
        if let Some(c) = collection {
            lookup.insert("from", c);
        }
        lookup.insert("let", let_doc);
        lookup.insert("pipeline", stages.into_iter().map(Bson::Document).collect::<Vec<_>>());
        lookup.insert("as", field.clone());
        pre.borrow_mut().push(doc! { "$lookup": lookup });
        Ok((field, default))
    }
}

/// The aggregation expression reading `path` in the document, under
/// `prefix` (`""` for the root, `__djongo_joinK.` for a joined row).
///
/// The components MongoDB's dotted paths can spell are read as one `$a.b`
/// path (arrays along it are traversed, as in the query language); from the
/// first one they cannot (a key holding `.` or starting with `$`), each key is
/// read literally with `$getField`, from documents only: anything else
/// there (an array, a number) reads as NULL, as a missing key does.
pub(crate) fn read_field(prefix: &str, path: &FieldPath) -> Bson {
    let keys = path.components();
    let plain = keys.iter().take_while(|k| is_plain_key(k)).count();
    let mut value = if plain > 0 {
        Bson::String(format!("${prefix}{}", keys[..plain].join(".")))
    } else if prefix.is_empty() {
        Bson::String("$$CURRENT".into())
    } else {
        Bson::String(format!("${}", prefix.trim_end_matches('.')))
    };
    for (i, key) in keys[plain..].iter().enumerate() {
        let field = Bson::Document(doc! { "field": lit(key.as_str()), "input": "$$d" });
        let get = op1("$getField", field);
        value = if i == 0 && plain == 0 && prefix.is_empty() {
            // The root is always a document.
            op1("$getField", Bson::Document(doc! { "field": lit(key.as_str()), "input": "$$CURRENT" }))
        } else {
            Bson::Document(doc! { "$let": {
                "vars": { "d": value },
                "in": { "$cond": [ { "$eq": [ { "$type": "$$d" }, "object" ] }, get, Bson::Null ] },
            } })
        };
    }
    value
}

/// Registers (or reuses) a let-variable for `c`.
pub(crate) fn var(vars: &Vars, c: ColumnRef, prefix: &str) -> String {
    let mut v = vars.borrow_mut();
    if let Some((_, name)) = v.iter().find(|(k, _)| *k == c) {
        return name.clone();
    }
    let name = format!("{prefix}{}", v.len());
    v.push((c, name.clone()));
    name
}

/// SQL ROUND: halves away from zero (MongoDB's `$round` rounds them to
/// even): add half a unit of the last place, toward the sign, and truncate.
/// An integer rounded to a non-negative place is itself.
fn round_half_away(x: Bson, places: Bson) -> Bson {
    let (xv, pv) = (Bson::String("$$x".into()), Bson::String("$$p".into()));
    let half = opn(
        "$multiply",
        vec![
            opn("$cond", vec![opn("$lt", vec![xv.clone(), Bson::Int32(0)]), Bson::Double(-0.5), Bson::Double(0.5)]),
            opn("$pow", vec![Bson::Int32(10), opn("$subtract", vec![Bson::Int32(0), pv.clone()])]),
        ],
    );
    let ints = Bson::Array(vec![Bson::String("int".into()), Bson::String("long".into())]);
    let body = opn(
        "$cond",
        vec![
            or(vec![is_null(xv.clone()), is_null(pv.clone())]),
            Bson::Null,
            opn(
                "$cond",
                vec![
                    opn("$and", vec![opn("$in", vec![op1("$type", xv.clone()), ints]), opn("$gte", vec![pv.clone(), Bson::Int32(0)])]),
                    xv.clone(),
                    opn("$trunc", vec![opn("$add", vec![xv, half]), pv]),
                ],
            ),
        ],
    );
    Bson::Document(doc! { "$let": { "vars": { "x": x, "p": places }, "in": body } })
}

/// `{$regexMatch}`; LIKE patterns match across newlines (`s`), as `%` does in SQL.
fn regex_match(input: Bson, regex: Bson, like: bool, case_insensitive: bool) -> Bson {
    let mut rm = doc! { "input": input, "regex": regex };
    let options = match (like, case_insensitive) {
        (true, true) => "is",
        (true, false) => "s",
        (false, true) => "i",
        (false, false) => "",
    };
    if !options.is_empty() {
        rm.insert("options", options);
    }
    Bson::Document(doc! { "$regexMatch": rm })
}

/// SQL division. Column types are unknown at compile time, so the rule is
/// decided at run time on the operands' BSON types: two integers (int/long)
/// divide with truncation toward zero, giving a long, like SQL integer
/// division; anything else is MongoDB's `$divide` (double or decimal).
fn divide(l: Bson, r: Bson) -> Bson {
    let ints = Bson::Array(vec![Bson::String("int".into()), Bson::String("long".into())]);
    let is_int = |v: &str| opn("$in", vec![op1("$type", Bson::String(v.into())), ints.clone()]);
    let quotient = opn("$divide", vec![Bson::String("$$n".into()), Bson::String("$$d".into())]);
    Bson::Document(doc! {
        "$let": {
            "vars": { "n": l, "d": r },
            "in": { "$cond": [
                { "$and": [is_int("$$n"), is_int("$$d")] },
                { "$toLong": { "$trunc": quotient.clone() } },
                quotient,
            ] },
        }
    })
}

pub(crate) fn aggregate_default(func: AggFunc) -> Bson {
    match func {
        AggFunc::CountStar | AggFunc::Count => Bson::Int64(0),
        _ => Bson::Null,
    }
}

/// The fewest WHEN arms for which a CASE on one column becomes a lookup.
/// Below it, `$switch` is as fast and reads more plainly in a plan.
const CASE_LOOKUP_MIN_ARMS: usize = 8;

/// `col = constant` (either way round): the column and the constant.
fn column_equals_constant(cond: &Expr) -> Option<(&Expr, &Expr)> {
    match cond {
        Expr::Compare { op: CmpOp::Eq, left, right } => match (&**left, &**right) {
            (c @ Expr::Column(_), k) | (k, c @ Expr::Column(_)) if matches!(k, Expr::Literal(_) | Expr::Param(_)) => Some((c, k)),
            _ => None,
        },
        _ => None,
    }
}

/// A literal or a parameter slot as a raw value inside a `$literal`.
fn constant_value(e: &Expr) -> Option<Bson> {
    match e {
        Expr::Literal(l) => Some(literal(l)),
        Expr::Param(i) => Some(param_slot(*i)),
        _ => None,
    }
}

impl Ctx {
    /// `CASE WHEN col = k1 THEN v1 WHEN col = k2 THEN v2 ... ELSE e END` with
    /// constant keys and values (Django's `bulk_update()` writes one arm per
    /// object) as a lookup: the position of `col` among the keys picks the
    /// value. A `$switch` would test every arm for every document, which is
    /// quadratic in a bulk update's batch. The first matching arm wins, as
    /// `$indexOfArray` returns the first position; a NULL column matches no
    /// arm, and neither does a NULL key (a NULL column never reaches the
    /// lookup, and no other value equals NULL).
    fn case_as_lookup(&self, env: Env, whens: &[(Expr, Expr)], otherwise: Option<&Expr>) -> Result<Option<Bson>> {
        if whens.len() < CASE_LOOKUP_MIN_ARMS {
            return Ok(None);
        }
        let Some((column, _)) = whens.first().and_then(|(c, _)| column_equals_constant(c)) else { return Ok(None) };
        let mut keys = Vec::with_capacity(whens.len());
        let mut values = Vec::with_capacity(whens.len());
        for (cond, then) in whens {
            let Some((c, key)) = column_equals_constant(cond) else { return Ok(None) };
            let (Some(key), Some(value)) = (constant_value(key), constant_value(then)) else { return Ok(None) };
            if c != column {
                return Ok(None);
            }
            keys.push(key);
            values.push(value);
        }
        let otherwise = match otherwise {
            None => Bson::Null,
            Some(e) if is_constant(e) => self.value(env, e)?,
            Some(_) => return Ok(None),
        };
        let column = self.value(env, column)?;
        let position = opn("$indexOfArray", vec![lit(Bson::Array(keys)), column.clone()]);
        let picked = doc! { "$let": {
            "vars": { "arm": position },
            "in": opn("$cond", vec![
                opn("$eq", vec![Bson::String("$$arm".into()), Bson::Int32(-1)]),
                otherwise.clone(),
                opn("$arrayElemAt", vec![lit(Bson::Array(values)), Bson::String("$$arm".into())]),
            ]),
        } };
        Ok(Some(opn("$cond", vec![is_null(column), otherwise, picked.into()])))
    }
}
