//! SQL expressions → plan expressions (names resolved, operators typed).
use sqlparser::ast::{
    self, BinaryOperator, CastKind, DataType, DuplicateTreatment, FunctionArg, FunctionArgExpr,
    FunctionArguments, UnaryOperator, Value,
};

use super::{json, kind_name, Builder};
use crate::error::{CompileError, Result};
use crate::plan::{AggFunc, ArithOp, CastType, CmpOp, DatePart, Expr, Frame, FrameBound, Func, GeoFunc, HashAlgo, JsonMode, JsonStep, Literal, MatchKind, ProjectItem, Query, SortKey, SubqueryRef, TruncUnit, Window, WindowFunc};

/// Our own recursion guard: sqlparser limits nesting of parentheses, but a
/// long chain such as `a + b + c + ...` is a deep left-leaning tree.
const MAX_DEPTH: usize = 64;

impl Builder {
    pub(crate) fn expr(&mut self, e: &ast::Expr) -> Result<Expr> {
        self.expr_at(e, 0)
    }

    fn expr_at(&mut self, e: &ast::Expr, depth: usize) -> Result<Expr> {
        if depth > MAX_DEPTH {
            // Displaying `e` would recurse as deeply as the tree; quote the head only.
            return Err(CompileError::unsupported("expression nested too deeply", "..."));
        }
        let d = depth + 1;
        use ast::Expr as A;
        Ok(match e {
            A::Identifier(i) => Expr::Column(self.scopes.resolve(std::slice::from_ref(&i.value), &e.to_string())?),
            A::CompoundIdentifier(parts) => {
                let parts: Vec<String> = parts.iter().map(|i| i.value.clone()).collect();
                Expr::Column(self.scopes.resolve(&parts, &e.to_string())?)
            }
            A::Value(v) => value(&v.value, e)?,
            A::Nested(inner) => self.expr_at(inner, d)?,
            A::Collate { expr, collation } => match collation.0.as_slice() {
                [part] => match part.as_ident() {
                    Some(name) => Expr::Collate { expr: Box::new(self.expr_at(expr, d)?), collation: name.value.clone() },
                    None => return Err(CompileError::unsupported("COLLATE with a computed name", e)),
                },
                _ => return Err(CompileError::unsupported("COLLATE with a qualified collation name", e)),
            },
            A::BinaryOp { left, op, right } => self.binary(e, left, op, right, d)?,
            A::UnaryOp { op, expr } => match op {
                UnaryOperator::Not => Expr::Not(Box::new(self.expr_at(expr, d)?)),
                UnaryOperator::Plus => self.expr_at(expr, d)?,
                UnaryOperator::Minus => match self.expr_at(expr, d)? {
                    Expr::Literal(Literal::Int(i)) => Expr::Literal(Literal::Int(i.wrapping_neg())),
                    Expr::Literal(Literal::Float(f)) => Expr::Literal(Literal::Float(-f)),
                    other => Expr::Neg(Box::new(other)),
                },
                other => return Err(CompileError::unsupported(format!("unary operator {other}"), e)),
            },
            A::IsNull(x) => Expr::IsNull { expr: Box::new(self.expr_at(x, d)?), negated: false },
            A::IsNotNull(x) => Expr::IsNull { expr: Box::new(self.expr_at(x, d)?), negated: true },
            // `p IS TRUE` is two-valued: TRUE exactly when p is TRUE.
            A::IsTrue(x) | A::IsNotTrue(x) | A::IsFalse(x) | A::IsNotFalse(x) => {
                let p = self.expr_at(x, d)?;
                let p = if matches!(e, A::IsFalse(_) | A::IsNotFalse(_)) { Expr::Not(Box::new(p)) } else { p };
                let yes = matches!(e, A::IsTrue(_) | A::IsFalse(_));
                Expr::Case {
                    whens: vec![(p, Expr::Literal(Literal::Bool(yes)))],
                    otherwise: Some(Box::new(Expr::Literal(Literal::Bool(!yes)))),
                }
            }
            A::InList { expr, list, negated } => Expr::InList {
                expr: Box::new(self.expr_at(expr, d)?),
                list: list.iter().map(|x| self.expr_at(x, d)).collect::<Result<_>>()?,
                negated: *negated,
            },
            A::InSubquery { expr, subquery, negated } => match strip_nested_tuple(expr) {
                ast::Expr::Tuple(items) => self.row_in_subquery(e, items, subquery, *negated, d)?,
                _ => Expr::InSubquery {
                    expr: Box::new(self.expr_at(expr, d)?),
                    subquery: self.subquery(subquery)?,
                    negated: *negated,
                },
            },
            A::Exists { subquery, negated } => Expr::Exists { subquery: self.subquery(subquery)?, negated: *negated },
            A::Subquery(q) => Expr::ScalarSubquery(self.subquery(q)?),
            A::Between { expr, negated, low, high } => Expr::Between {
                expr: Box::new(self.expr_at(expr, d)?),
                low: Box::new(self.expr_at(low, d)?),
                high: Box::new(self.expr_at(high, d)?),
                negated: *negated,
            },
            A::Like { negated, any, expr, pattern, escape_char } | A::ILike { negated, any, expr, pattern, escape_char } => {
                if *any {
                    return Err(CompileError::unsupported("LIKE ANY", e));
                }
                if let Some(esc) = escape_char {
                    let ok = matches!(esc.as_ref(), A::Value(v) if matches!(&v.value, Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) if s == "\\"));
                    if !ok {
                        return Err(CompileError::unsupported("LIKE with an ESCAPE character other than '\\'", e));
                    }
                }
                Expr::Match {
                    kind: MatchKind::Like,
                    expr: Box::new(self.expr_at(expr, d)?),
                    pattern: Box::new(self.expr_at(pattern, d)?),
                    case_insensitive: matches!(e, A::ILike { .. }),
                    negated: *negated,
                }
            }
            A::RLike { negated, expr, pattern, .. } => Expr::Match {
                kind: MatchKind::Regex,
                expr: Box::new(self.expr_at(expr, d)?),
                pattern: Box::new(self.expr_at(pattern, d)?),
                case_insensitive: false,
                negated: *negated,
            },
            A::Function(f) => self.function(f, e, d)?,
            A::Case { operand, conditions, else_result, .. } => {
                let operand = match operand {
                    Some(o) => Some(self.expr_at(o, d)?),
                    None => None,
                };
                let mut whens = Vec::with_capacity(conditions.len());
                for w in conditions {
                    let cond = self.expr_at(&w.condition, d)?;
                    let cond = match &operand {
                        Some(o) => Expr::Compare { op: CmpOp::Eq, left: Box::new(o.clone()), right: Box::new(cond) },
                        None => cond,
                    };
                    whens.push((cond, self.expr_at(&w.result, d)?));
                }
                let otherwise = match else_result {
                    Some(x) => Some(Box::new(self.expr_at(x, d)?)),
                    None => None,
                };
                Expr::Case { whens, otherwise }
            }
            A::Cast { kind, expr, data_type, format } => {
                if format.is_some() || matches!(kind, CastKind::TryCast | CastKind::SafeCast) {
                    return Err(CompileError::unsupported("CAST with FORMAT / TRY_CAST", e));
                }
                let to = cast_type(data_type, e)?;
                let inner = self.expr_at(expr, d)?;
                match (&inner, &to) {
                    (Expr::Literal(Literal::Str(text)), CastType::Date | CastType::DateTime) => {
                        match date_literal(text, matches!(to, CastType::Date)) {
                            Some(date) => Expr::Literal(Literal::Date(date)),
                            None => Expr::Cast { expr: Box::new(inner), to },
                        }
                    }
                    _ => Expr::Cast { expr: Box::new(inner), to },
                }
            }
            A::Ceil { expr, field } | A::Floor { expr, field } => {
                if !matches!(field, ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime)) {
                    return Err(CompileError::unsupported("CEIL/FLOOR with a scale or unit", e));
                }
                let func = if matches!(e, A::Ceil { .. }) { Func::Ceil } else { Func::Floor };
                Expr::Function { func, args: vec![self.expr_at(expr, d)?] }
            }
            A::Substring { expr, substring_from, substring_for, .. } => {
                let mut args = vec![self.expr_at(expr, d)?];
                args.push(match substring_from {
                    Some(f) => self.expr_at(f, d)?,
                    None => Expr::Literal(Literal::Int(1)),
                });
                if let Some(f) = substring_for {
                    args.push(self.expr_at(f, d)?);
                }
                Expr::Function { func: Func::Substr, args }
            }
            A::Trim { trim_where, trim_what, expr, trim_characters } => {
                let func = match trim_where {
                    None | Some(ast::TrimWhereField::Both) => Func::Trim,
                    Some(ast::TrimWhereField::Leading) => Func::LTrim,
                    Some(ast::TrimWhereField::Trailing) => Func::RTrim,
                };
                let mut args = vec![self.expr_at(expr, d)?];
                // `TRIM([side] chars FROM x)` and SQLite's `TRIM(x, chars)`.
                match (trim_what, trim_characters.as_deref()) {
                    (None, None) => {}
                    (Some(chars), None) => args.push(self.expr_at(chars, d)?),
                    (None, Some([chars])) => args.push(self.expr_at(chars, d)?),
                    _ => return Err(CompileError::unsupported("TRIM with several character lists", e)),
                }
                Expr::Function { func, args }
            }
            A::Extract { field, expr, .. } => Expr::Function {
                func: Func::Extract(date_part(field, e)?),
                args: vec![self.expr_at(expr, d)?],
            },
            A::AtTimeZone { timestamp, time_zone } => Expr::Function {
                func: Func::AtTimeZone,
                args: vec![self.expr_at(timestamp, d)?, self.expr_at(time_zone, d)?],
            },
            A::Position { expr, r#in } => Expr::Function {
                func: Func::StrIndex,
                args: vec![self.expr_at(r#in, d)?, self.expr_at(expr, d)?],
            },
            other => return Err(CompileError::unsupported(format!("expression {}", kind_name(other)), e)),
        })
    }

    fn binary(&mut self, whole: &ast::Expr, left: &ast::Expr, op: &BinaryOperator, right: &ast::Expr, d: usize) -> Result<Expr> {
        // AND/OR chains are flattened iteratively: Django writes long OR lists.
        if matches!(op, BinaryOperator::And | BinaryOperator::Or) {
            let mut operands = Vec::new();
            let mut stack = vec![right, left];
            while let Some(x) = stack.pop() {
                let x = strip_nested(x);
                match x {
                    ast::Expr::BinaryOp { left: l, op: o, right: r } if o == op => {
                        stack.push(r);
                        stack.push(l);
                    }
                    other => operands.push(self.expr_at(other, d)?),
                }
            }
            return Ok(if *op == BinaryOperator::And { Expr::And(operands) } else { Expr::Or(operands) });
        }
        if let Some(row) = self.row_comparison(whole, left, op, right, d)? {
            return Ok(row);
        }
        let l = self.expr_at(left, d)?;
        let r = self.expr_at(right, d)?;
        let cmp = |op| Expr::Compare { op, left: Box::new(l.clone()), right: Box::new(r.clone()) };
        let arith = |op| Expr::Arith { op, left: Box::new(l.clone()), right: Box::new(r.clone()) };
        let bits = |func| Expr::Function { func, args: vec![l.clone(), r.clone()] };
        let regex = |ci, negated| Expr::Match { kind: MatchKind::Regex, expr: Box::new(l.clone()), pattern: Box::new(r.clone()), case_insensitive: ci, negated };
        Ok(match op {
            BinaryOperator::Eq => cmp(CmpOp::Eq),
            BinaryOperator::NotEq => cmp(CmpOp::Ne),
            BinaryOperator::Lt => cmp(CmpOp::Lt),
            BinaryOperator::LtEq => cmp(CmpOp::Le),
            BinaryOperator::Gt => cmp(CmpOp::Gt),
            BinaryOperator::GtEq => cmp(CmpOp::Ge),
            BinaryOperator::Plus => arith(ArithOp::Add),
            BinaryOperator::Minus => arith(ArithOp::Sub),
            BinaryOperator::Multiply => arith(ArithOp::Mul),
            BinaryOperator::Divide => arith(ArithOp::Div),
            BinaryOperator::Modulo => arith(ArithOp::Mod),
            BinaryOperator::StringConcat => {
                let mut parts = match l {
                    Expr::Concat(v) => v,
                    other => vec![other],
                };
                parts.push(r);
                Expr::Concat(parts)
            }
            BinaryOperator::BitwiseAnd => bits(Func::BitAnd),
            BinaryOperator::BitwiseOr => bits(Func::BitOr),
            BinaryOperator::PGBitwiseXor => bits(Func::BitXor),
            BinaryOperator::PGBitwiseShiftLeft => bits(Func::ShiftLeft),
            BinaryOperator::PGBitwiseShiftRight => bits(Func::ShiftRight),
            BinaryOperator::PGExp => Expr::Function { func: Func::Power, args: vec![l, r] },
            BinaryOperator::BitwiseXor => {
                return Err(CompileError::unsupported("operator ^ (XOR in MySQL, power in PostgreSQL): write POWER() or BITXOR()", whole))
            }
            BinaryOperator::PGRegexMatch => regex(false, false),
            BinaryOperator::PGRegexIMatch => regex(true, false),
            BinaryOperator::PGRegexNotMatch => regex(false, true),
            BinaryOperator::PGRegexNotIMatch => regex(true, true),
            other => return Err(CompileError::unsupported(format!("operator {other}"), whole)),
        })
    }

    /// Row values: `(a, b) = (x, y)`, `(a, b) <> (x, y)` and `(a, b) =
    /// (SELECT x, y ...)` (an uncorrelated subquery of one row), compared
    /// column by column as SQL does (equal when every pair is, unequal when
    /// some pair is, UNKNOWN otherwise with a NULL). `None` for other operands.
    fn row_comparison(&mut self, whole: &ast::Expr, left: &ast::Expr, op: &BinaryOperator, right: &ast::Expr, d: usize) -> Result<Option<Expr>> {
        let ast::Expr::Tuple(items) = strip_nested_tuple(left) else { return Ok(None) };
        let cmp = match op {
            BinaryOperator::Eq => CmpOp::Eq,
            BinaryOperator::NotEq => CmpOp::Ne,
            _ => return Err(CompileError::unsupported(format!("row value compared with {op}"), whole)),
        };
        let lefts = items.iter().map(|e| self.expr_at(e, d)).collect::<Result<Vec<_>>>()?;
        let rights: Vec<Expr> = match strip_nested_tuple(right) {
            ast::Expr::Tuple(r) if r.len() == lefts.len() => r.iter().map(|e| self.expr_at(e, d)).collect::<Result<_>>()?,
            ast::Expr::Subquery(q) => {
                let width = lefts.len();
                match self.subquery(q)? {
                    SubqueryRef::Uncorrelated(index) if self.subqueries[index].columns().len() == width => {
                        (0..width).map(|column| Expr::SubqueryColumn { index, column }).collect()
                    }
                    SubqueryRef::Uncorrelated(_) => return Err(CompileError::unsupported("row value compared with a subquery of another width", whole)),
                    SubqueryRef::Correlated(_) => return Err(CompileError::unsupported("row value compared with a correlated subquery", whole)),
                }
            }
            _ => return Err(CompileError::unsupported("row value compared with something other than a row of the same width or a subquery", whole)),
        };
        let pairs: Vec<Expr> = lefts.into_iter().zip(rights).map(|(l, r)| Expr::Compare { op: cmp, left: Box::new(l), right: Box::new(r) }).collect();
        Ok(Some(if cmp == CmpOp::Eq { Expr::And(pairs) } else { Expr::Or(pairs) }))
    }

    /// `(a, b) IN (SELECT x, y ...)` (an uncorrelated subquery of as many
    /// columns): the row's values as one array, found among the subquery's
    /// rows made arrays (`Func::Row`: BSON compares arrays element by
    /// element). A row with a NULL is in no set, as in SQL; `NOT IN` (which
    /// a NULL in the subquery makes UNKNOWN) is not compiled.
    fn row_in_subquery(&mut self, whole: &ast::Expr, items: &[ast::Expr], subquery: &ast::Query, negated: bool, d: usize) -> Result<Expr> {
        if negated {
            return Err(CompileError::unsupported("row value NOT IN a subquery", whole));
        }
        let lefts = items.iter().map(|e| self.expr_at(e, d)).collect::<Result<Vec<_>>>()?;
        let index = match self.subquery(subquery)? {
            SubqueryRef::Uncorrelated(index) => index,
            SubqueryRef::Correlated(_) => return Err(CompileError::unsupported("row value IN a correlated subquery", whole)),
        };
        let Query::Select(inner) = &mut self.subqueries[index] else {
            return Err(CompileError::unsupported("row value IN a UNION / INTERSECT / EXCEPT", whole));
        };
        // ORDER BY 2 would name a column the one-array projection no longer has.
        if inner.projection.len() != lefts.len() || inner.star || inner.order_by.iter().any(|o| matches!(o.key, SortKey::Output(_))) {
            return Err(CompileError::unsupported("row value IN a subquery of another width", whole));
        }
        let values = inner.projection.drain(..).map(|p| p.expr).collect();
        inner.projection.push(ProjectItem { expr: Expr::Function { func: Func::Row, args: values }, label: "row".into() });
        let mut all = lefts.iter().map(|l| Expr::IsNull { expr: Box::new(l.clone()), negated: true }).collect::<Vec<_>>();
        all.push(Expr::InSubquery {
            expr: Box::new(Expr::Function { func: Func::Row, args: lefts }),
            subquery: SubqueryRef::Uncorrelated(index),
            negated: false,
        });
        Ok(Expr::And(all))
    }

    /// `name(args) OVER (...)`.
    fn window(&mut self, name: &str, args: Vec<Expr>, star: bool, over: &ast::WindowType, whole: &ast::Expr, d: usize) -> Result<Expr> {
        // A window name here is a frame's EXCLUDE (crate::frame_exclusion).
        let (spec, exclusion) = match over {
            ast::WindowType::WindowSpec(spec) => match &spec.window_name {
                None => (spec, None),
                Some(name) => match crate::frame_exclusion::from_window_name(&name.value) {
                    Some(e) if spec.window_frame.is_some() => (spec, Some(e)),
                    _ => return Err(CompileError::unsupported("named window (WINDOW clause)", whole)),
                },
            },
            _ => return Err(CompileError::unsupported("named window (WINDOW clause)", whole)),
        };
        let func = match name {
            "row_number" => WindowFunc::RowNumber,
            "rank" => WindowFunc::Rank,
            "dense_rank" => WindowFunc::DenseRank,
            "percent_rank" => WindowFunc::PercentRank,
            "cume_dist" => WindowFunc::CumeDist,
            "ntile" => WindowFunc::Ntile,
            "lag" => WindowFunc::Lag,
            "lead" => WindowFunc::Lead,
            "first_value" => WindowFunc::FirstValue,
            "last_value" => WindowFunc::LastValue,
            "nth_value" => WindowFunc::NthValue,
            "count" if star => WindowFunc::Aggregate(AggFunc::CountStar),
            "count" => WindowFunc::Aggregate(AggFunc::Count),
            "sum" => WindowFunc::Aggregate(AggFunc::Sum),
            "avg" => WindowFunc::Aggregate(AggFunc::Avg),
            "min" => WindowFunc::Aggregate(AggFunc::Min),
            "max" => WindowFunc::Aggregate(AggFunc::Max),
            "stddev_pop" => WindowFunc::Aggregate(AggFunc::StdDevPop),
            "stddev_samp" | "stddev" => WindowFunc::Aggregate(AggFunc::StdDevSamp),
            other => return Err(CompileError::unsupported(format!("window function {}()", other.to_uppercase()), whole)),
        };
        let arity_ok = match func {
            WindowFunc::RowNumber | WindowFunc::Rank | WindowFunc::DenseRank | WindowFunc::PercentRank | WindowFunc::CumeDist => args.is_empty(),
            WindowFunc::Aggregate(AggFunc::CountStar) => args.is_empty(),
            WindowFunc::Ntile | WindowFunc::FirstValue | WindowFunc::LastValue | WindowFunc::Aggregate(_) => args.len() == 1,
            WindowFunc::Lag | WindowFunc::Lead => (1..=3).contains(&args.len()),
            WindowFunc::NthValue => args.len() == 2,
        };
        if !arity_ok {
            return Err(CompileError::unsupported(format!("{}() with {} arguments", name.to_uppercase(), args.len()), whole));
        }
        // An aggregate argument (SUM(SUM(x)) OVER ()) makes the query grouped:
        // the window then runs over the groups.
        if args.iter().any(Expr::has_window) {
            return Err(CompileError::unsupported("window function over another window function", whole));
        }
        let partition_by = spec.partition_by.iter().map(|e| self.expr_at(e, d)).collect::<Result<Vec<_>>>()?;
        let mut order_by = Vec::with_capacity(spec.order_by.len());
        for o in &spec.order_by {
            let descending = matches!(o.options.sort, Some(ast::OrderBySort::Desc));
            // MongoDB sorts NULL lowest: first ascending, last descending.
            if o.options.nulls_first.is_some_and(|first| first == descending) {
                return Err(CompileError::unsupported("NULLS FIRST/LAST against MongoDB's order in a window", whole));
            }
            order_by.push((self.expr_at(&o.expr, d)?, descending));
        }
        let mut frame = spec.window_frame.as_ref().map(|f| window_frame(f, whole)).transpose()?;
        if let Some(f) = frame.as_mut() {
            f.exclusion = exclusion;
        }
        Ok(Expr::Window(Box::new(Window { func, args, partition_by, order_by, frame })))
    }

    /// Builds a subquery in a new scope; hoists it when uncorrelated.
    pub(crate) fn subquery(&mut self, q: &ast::Query) -> Result<SubqueryRef> {
        self.enter()?;
        self.scopes.push();
        let built = self.query(q);
        let scope = self.scopes.pop();
        self.leave();
        let built = built?;
        if scope.correlated {
            Ok(SubqueryRef::Correlated(Box::new(built)))
        } else {
            self.subqueries.push(built);
            Ok(SubqueryRef::Uncorrelated(self.subqueries.len() - 1))
        }
    }

    fn function(&mut self, f: &ast::Function, whole: &ast::Expr, d: usize) -> Result<Expr> {
        let name = f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.to_ascii_lowercase())
            .unwrap_or_default();
        if !f.within_group.is_empty() {
            return Err(CompileError::unsupported("WITHIN GROUP", whole));
        }
        let (args, distinct, star) = match &f.args {
            FunctionArguments::None => (Vec::new(), false, false),
            FunctionArguments::Subquery(_) => return Err(CompileError::unsupported("function with a subquery argument", whole)),
            FunctionArguments::List(list) => {
                if !list.clauses.is_empty() {
                    return Err(CompileError::unsupported(format!("{}() with ORDER BY/LIMIT clauses", name.to_uppercase()), whole));
                }
                let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
                let mut args = Vec::new();
                let mut star = false;
                for a in &list.args {
                    match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => args.push(self.expr_at(x, d)?),
                        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => star = true,
                        _ => return Err(CompileError::unsupported("named or qualified-wildcard function argument", whole)),
                    }
                }
                (args, distinct, star)
            }
        };
        if let Some(over) = &f.over {
            if distinct || star && name != "count" || f.filter.is_some() {
                return Err(CompileError::unsupported(format!("DISTINCT/*/FILTER in window function {}()", name.to_uppercase()), whole));
            }
            return self.window(&name, args, star, over, whole, d);
        }
        let agg = match name.as_str() {
            "count" => Some(if star { AggFunc::CountStar } else { AggFunc::Count }),
            "sum" => Some(AggFunc::Sum),
            "avg" => Some(AggFunc::Avg),
            "min" if args.len() == 1 => Some(AggFunc::Min),
            "max" if args.len() == 1 => Some(AggFunc::Max),
            "stddev_pop" => Some(AggFunc::StdDevPop),
            "stddev_samp" | "stddev" => Some(AggFunc::StdDevSamp),
            "var_pop" => Some(AggFunc::VarPop),
            "var_samp" | "variance" => Some(AggFunc::VarSamp),
            _ => None,
        };
        if let Some(func) = agg {
            let mut arg = match (func, args.len()) {
                (AggFunc::CountStar, 0) => None,
                (AggFunc::CountStar, _) => return Err(CompileError::unsupported("COUNT(*) with arguments", whole)),
                (_, 1) => args.into_iter().next().map(Box::new),
                _ => return Err(CompileError::unsupported(format!("{}() with {} arguments", name.to_uppercase(), args.len()), whole)),
            };
            let mut func = func;
            // `agg(x) FILTER (WHERE p)` ≡ `agg(CASE WHEN p THEN x END)`.
            if let Some(filter) = &f.filter {
                let cond = self.expr_at(filter, d)?;
                let value = match arg.take() {
                    Some(a) => *a,
                    None => {
                        func = AggFunc::Count;
                        Expr::Literal(Literal::Int(1))
                    }
                };
                arg = Some(Box::new(Expr::Case { whens: vec![(cond, value)], otherwise: None }));
            }
            if distinct && func == AggFunc::CountStar {
                return Err(CompileError::unsupported("COUNT(DISTINCT *)", whole));
            }
            return Ok(Expr::Aggregate { func, arg, distinct });
        }
        if distinct || star || f.filter.is_some() {
            return Err(CompileError::unsupported(format!("DISTINCT/*/FILTER in {}()", name.to_uppercase()), whole));
        }
        if let Some(json) = self.json_function(&name, &args, whole)? {
            return Ok(json);
        }
        if let Some(geo) = crate::plan::expr::geo_function(&name) {
            let arity = if matches!(geo, GeoFunc::WithinSphere) { 3 } else { 2 };
            if args.len() != arity {
                return Err(CompileError::unsupported(format!("{}() with {} arguments", name.to_uppercase(), args.len()), whole));
            }
            return Ok(Expr::Function { func: Func::Geo(geo), args });
        }
        if name == "date_trunc" {
            // The unit must be a literal: it decides the translation.
            let unit = match args.first() {
                Some(Expr::Literal(Literal::Str(u))) => trunc_unit(u, whole)?,
                _ => return Err(CompileError::unsupported("DATE_TRUNC() with a unit that is not a string literal", whole)),
            };
            if args.len() != 2 {
                return Err(CompileError::unsupported(format!("DATE_TRUNC() with {} arguments", args.len()), whole));
            }
            return Ok(Expr::Function { func: Func::DateTrunc(unit), args: args.into_iter().skip(1).collect() });
        }
        let (func, arity): (Func, &[usize]) = match name.as_str() {
            "upper" | "ucase" => (Func::Upper, &[1]),
            "lower" | "lcase" => (Func::Lower, &[1]),
            "length" | "char_length" | "character_length" => (Func::Length, &[1]),
            "abs" => (Func::Abs, &[1]),
            "round" => (Func::Round, &[1, 2]),
            "ceil" | "ceiling" => (Func::Ceil, &[1]),
            "floor" => (Func::Floor, &[1]),
            "sqrt" => (Func::Sqrt, &[1]),
            "power" | "pow" => (Func::Power, &[2]),
            "mod" => (Func::Mod, &[2]),
            "trim" => (Func::Trim, &[1, 2]),
            "ltrim" => (Func::LTrim, &[1, 2]),
            "rtrim" => (Func::RTrim, &[1, 2]),
            "substr" | "substring" => (Func::Substr, &[2, 3]),
            "replace" => (Func::Replace, &[3]),
            "concat" => (Func::Concat, &[]),
            "coalesce" | "ifnull" => (Func::Coalesce, &[]),
            "nullif" => (Func::NullIf, &[2]),
            "greatest" | "max" => (Func::Greatest, &[]),
            "least" | "min" => (Func::Least, &[]),
            "now" | "current_timestamp" => (Func::Now, &[0]),
            "exp" => (Func::Exp, &[1]),
            "ln" => (Func::Ln, &[1]),
            "log10" => (Func::Log10, &[1]),
            "sign" => (Func::Sign, &[1]),
            "instr" | "strpos" => (Func::StrIndex, &[2]),
            "convert_tz" => (Func::ConvertTz, &[3]),
            "sin" => (Func::Sin, &[1]),
            "cos" => (Func::Cos, &[1]),
            "tan" => (Func::Tan, &[1]),
            "asin" => (Func::Asin, &[1]),
            "acos" => (Func::Acos, &[1]),
            "atan" => (Func::Atan, &[1]),
            "atan2" => (Func::Atan2, &[2]),
            "cot" => (Func::Cot, &[1]),
            "degrees" => (Func::Degrees, &[1]),
            "radians" => (Func::Radians, &[1]),
            "pi" => (Func::Pi, &[0]),
            "log" => (Func::Log, &[1, 2]),
            "random" | "rand" => (Func::Random, &[0]),
            "left" => (Func::Left, &[2]),
            "right" => (Func::Right, &[2]),
            "reverse" => (Func::Reverse, &[1]),
            "repeat" => (Func::Repeat, &[2]),
            "lpad" => (Func::LPad, &[2, 3]),
            "rpad" => (Func::RPad, &[2, 3]),
            "bitand" => (Func::BitAnd, &[2]),
            "bitor" => (Func::BitOr, &[2]),
            "bitxor" => (Func::BitXor, &[2]),
            "md5" => (Func::Hash(HashAlgo::Md5), &[1]),
            "sha1" => (Func::Hash(HashAlgo::Sha1), &[1]),
            "sha224" => (Func::Hash(HashAlgo::Sha224), &[1]),
            "sha256" => (Func::Hash(HashAlgo::Sha256), &[1]),
            "sha384" => (Func::Hash(HashAlgo::Sha384), &[1]),
            "sha512" => (Func::Hash(HashAlgo::Sha512), &[1]),
            "chr" => (Func::Chr, &[1]),
            "ascii" | "ord" | "unicode" => (Func::Ord, &[1]),
            "mongo_text_search" => (Func::TextSearch, &[1, 3, 5, 7]),
            "mongo_text_score" => (Func::TextScore, &[0]),
            _ => return Err(CompileError::unsupported(format!("function {}()", name.to_uppercase()), whole)),
        };
        if (!arity.is_empty() && !arity.contains(&args.len())) || (arity.is_empty() && args.is_empty()) {
            return Err(CompileError::unsupported(format!("{}() with {} arguments", name.to_uppercase(), args.len()), whole));
        }
        Ok(Expr::Function { func, args })
    }
}

impl Builder {
    /// The JSON functions (Django's JSONField lookups, MySQL's and SQLite's
    /// spelling); `None` for any other function.
    fn json_function(&mut self, name: &str, args: &[Expr], whole: &ast::Expr) -> Result<Option<Expr>> {
        let path = |e: &Expr| -> Result<Vec<JsonStep>> {
            match e {
                Expr::Literal(Literal::Str(p)) => json::parse_path(p),
                _ => Err(CompileError::unsupported(format!("{}() with a path that is not a string literal", name.to_uppercase()), whole)),
            }
        };
        let arity = |ok: bool| -> Result<()> {
            if ok {
                Ok(())
            } else {
                Err(CompileError::unsupported(format!("{}() with {} arguments", name.to_uppercase(), args.len()), whole))
            }
        };
        Ok(Some(match name {
            "json_extract" => {
                arity(args.len() == 2)?;
                json_extract(args[0].clone(), path(&args[1])?, JsonMode::Value)
            }
            "json_type" => {
                arity(matches!(args.len(), 1 | 2))?;
                let steps = if args.len() == 2 { path(&args[1])? } else { Vec::new() };
                json_extract(args[0].clone(), steps, JsonMode::Type)
            }
            "json_unquote" => {
                arity(args.len() == 1)?;
                match args[0].clone() {
                    Expr::JsonExtract { expr, path, mode: JsonMode::Value } => Expr::JsonExtract { expr, path, mode: JsonMode::Text },
                    other => json_extract(other, Vec::new(), JsonMode::Text),
                }
            }
            "json_contains" => {
                arity(args.len() == 2)?;
                Expr::Function { func: Func::JsonContains, args: args.to_vec() }
            }
            "json_object" => {
                arity(args.len().is_multiple_of(2))?;
                Expr::Function { func: Func::JsonObject, args: args.to_vec() }
            }
            "json_array" => Expr::Function { func: Func::JsonArray, args: args.to_vec() },
            _ => return Ok(None),
        }))
    }
}

/// `JSON_EXTRACT(JSON_EXTRACT(x, p), q)` reads `x` at `p` then `q`.
fn json_extract(input: Expr, mut path: Vec<JsonStep>, mode: JsonMode) -> Expr {
    match input {
        Expr::JsonExtract { expr, path: mut outer, mode: JsonMode::Value } if mode != JsonMode::Value || !path.is_empty() => {
            outer.append(&mut path);
            Expr::JsonExtract { expr, path: outer, mode }
        }
        other => Expr::JsonExtract { expr: Box::new(other), path, mode },
    }
}

fn strip_nested_tuple(e: &ast::Expr) -> &ast::Expr {
    match e {
        ast::Expr::Nested(inner) if matches!(**inner, ast::Expr::Tuple(_) | ast::Expr::Subquery(_)) => inner,
        other => other,
    }
}

fn strip_nested(mut e: &ast::Expr) -> &ast::Expr {
    // Only parentheses around AND/OR operands of the same operator are
    // transparent; `a AND (b OR c)` keeps its structure via the operator check.
    while let ast::Expr::Nested(inner) = e {
        e = inner;
    }
    e
}

/// A SQL literal or placeholder.
pub(crate) fn value(v: &Value, whole: &ast::Expr) -> Result<Expr> {
    Ok(match v {
        Value::Number(n, _) => Expr::Literal(number(n).ok_or_else(|| CompileError::unsupported("numeric literal", whole))?),
        Value::SingleQuotedString(s)
        | Value::EscapedStringLiteral(s)
        | Value::UnicodeStringLiteral(s)
        | Value::NationalStringLiteral(s)
        | Value::TripleSingleQuotedString(s) => Expr::Literal(Literal::Str(s.clone())),
        Value::DollarQuotedString(s) => Expr::Literal(Literal::Str(s.value.clone())),
        Value::Boolean(b) => Expr::Literal(Literal::Bool(*b)),
        Value::Null => Expr::Literal(Literal::Null),
        Value::Placeholder(p) => {
            let n = p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()).filter(|n| *n >= 1);
            match n {
                Some(n) => Expr::Param(n - 1),
                None => return Err(CompileError::unsupported(format!("placeholder {p}"), whole)),
            }
        }
        other => return Err(CompileError::unsupported(format!("literal {}", kind_name(other)), whole)),
    })
}

fn number(n: &str) -> Option<Literal> {
    if let Ok(i) = n.parse::<i64>() {
        return Some(Literal::Int(i));
    }
    n.parse::<f64>().ok().map(Literal::Float)
}

/// The BSON date an ISO 8601 text names: `YYYY-MM-DD`, or a date and time
/// (`T` or a space between them) with an optional fraction and offset; no
/// offset means UTC, as djongo stores datetimes. `date_only`: the day's
/// midnight (SQL's CAST to date drops the time). None for any other text,
/// which is then cast when the statement runs, as before.
fn date_literal(text: &str, date_only: bool) -> Option<bson::DateTime> {
    let text = text.trim();
    let iso = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        let mut iso = text.replacen(' ', "T", 1);
        let time = iso.get(11..)?;
        if !(time.ends_with('Z') || time.contains('+') || time.contains('-')) {
            iso.push('Z');
        }
        iso
    };
    let parsed = bson::DateTime::parse_rfc3339_str(&iso).ok()?;
    if !date_only {
        return Some(parsed);
    }
    const DAY_MS: i64 = 86_400_000;
    Some(bson::DateTime::from_millis(parsed.timestamp_millis().div_euclid(DAY_MS) * DAY_MS))
}

fn cast_type(t: &DataType, whole: &ast::Expr) -> Result<CastType> {
    let text = t.to_string().to_ascii_lowercase();
    let base = text.split('(').next().unwrap_or("").trim();
    Ok(match base {
        "int" | "integer" | "bigint" | "smallint" | "tinyint" | "int4" | "int8" | "int2" | "signed" | "signed integer" => CastType::Integer,
        "real" | "float" | "double" | "double precision" | "float4" | "float8" => CastType::Float,
        "decimal" | "numeric" => {
            // numeric(precision, scale): only the scale changes the value.
            let scale = text.split_once(',').and_then(|(_, rest)| rest.trim_end_matches(')').trim().parse::<u32>().ok());
            CastType::Decimal(scale)
        }
        "text" | "varchar" | "char" | "character varying" | "character" | "string" => {
            let len = text.split_once('(').and_then(|(_, rest)| rest.trim_end_matches(')').trim().parse::<u32>().ok());
            CastType::Text(len)
        }
        "bool" | "boolean" => CastType::Bool,
        "date" => CastType::Date,
        "datetime" | "timestamp" | "timestamptz" | "timestamp with time zone" | "timestamp without time zone" => CastType::DateTime,
        "time" | "time without time zone" => CastType::Time,
        "json" | "jsonb" => CastType::Json,
        _ => return Err(CompileError::unsupported(format!("CAST to {text}"), whole)),
    })
}

fn date_part(f: &ast::DateTimeField, whole: &ast::Expr) -> Result<DatePart> {
    use ast::DateTimeField as F;
    Ok(match f {
        F::Year | F::Years => DatePart::Year,
        F::Quarter => DatePart::Quarter,
        F::Month | F::Months => DatePart::Month,
        F::Week(None) | F::Weeks | F::IsoWeek => DatePart::Week,
        F::Day | F::Days => DatePart::Day,
        F::Dow => DatePart::Dow,
        F::Isodow => DatePart::IsoDow,
        F::Doy | F::DayOfYear => DatePart::DayOfYear,
        F::Isoyear => DatePart::IsoYear,
        F::Hour | F::Hours => DatePart::Hour,
        F::Minute | F::Minutes => DatePart::Minute,
        F::Second | F::Seconds => DatePart::Second,
        F::Millisecond | F::Milliseconds => DatePart::Millisecond,
        F::Epoch => DatePart::Epoch,
        other => return Err(CompileError::unsupported(format!("EXTRACT({other})"), whole)),
    })
}

fn trunc_unit(u: &str, whole: &ast::Expr) -> Result<TruncUnit> {
    Ok(match u.to_ascii_lowercase().as_str() {
        "year" => TruncUnit::Year,
        "quarter" => TruncUnit::Quarter,
        "month" => TruncUnit::Month,
        "week" => TruncUnit::Week,
        "day" => TruncUnit::Day,
        "hour" => TruncUnit::Hour,
        "minute" => TruncUnit::Minute,
        "second" => TruncUnit::Second,
        other => return Err(CompileError::unsupported(format!("DATE_TRUNC unit '{other}'"), whole)),
    })
}

/// `ROWS|RANGE BETWEEN start AND end`; offsets must be integer literals.
fn window_frame(f: &ast::WindowFrame, whole: &ast::Expr) -> Result<Frame> {
    let rows = match f.units {
        ast::WindowFrameUnits::Rows => true,
        ast::WindowFrameUnits::Range => false,
        ast::WindowFrameUnits::Groups => return Err(CompileError::unsupported("GROUPS window frame", whole)),
    };
    let offset = |e: &Option<Box<ast::Expr>>, sign: i64| -> Result<FrameBound> {
        match e.as_deref() {
            None => Ok(FrameBound::Unbounded),
            Some(ast::Expr::Value(v)) => match &v.value {
                ast::Value::Number(n, _) => n
                    .parse::<i64>()
                    .map(|n| if n == 0 { FrameBound::Current } else { FrameBound::Offset(sign * n) })
                    .map_err(|_| CompileError::unsupported("window frame offset that is not an integer", whole)),
                _ => Err(CompileError::unsupported("window frame offset that is not an integer", whole)),
            },
            Some(_) => Err(CompileError::unsupported("window frame offset that is not an integer literal", whole)),
        }
    };
    let bound = |b: &ast::WindowFrameBound| -> Result<FrameBound> {
        match b {
            ast::WindowFrameBound::CurrentRow => Ok(FrameBound::Current),
            ast::WindowFrameBound::Preceding(e) => offset(e, -1),
            ast::WindowFrameBound::Following(e) => offset(e, 1),
        }
    };
    let start = bound(&f.start_bound)?;
    let end = match &f.end_bound {
        Some(b) => bound(b)?,
        None => FrameBound::Current,
    };
    Ok(Frame { rows, start, end, exclusion: None })
}
