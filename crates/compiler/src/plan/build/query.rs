//! SELECT / set operations → `Query`.
use sqlparser::ast::{self, GroupByExpr, JoinConstraint, JoinOperator, LimitClause, OrderByKind, SelectItem, SetExpr, TableFactor};

use super::{kind_name, object_name, Builder};
use crate::error::{CompileError, Result};
use crate::plan::scope::SourceName;
use crate::plan::{ColumnRef, Expr, FieldPath, Join, JoinKind, Literal, OrderItem, ProjectItem, Query, Select, SetOp, SetOpKind, SortKey, Source};

impl Builder {
    /// Builds a query in the current (already pushed) scope.
    pub(crate) fn query(&mut self, q: &ast::Query) -> Result<Query> {
        if q.with.is_some() {
            return Err(CompileError::unsupported("WITH (common table expression)", q));
        }
        if q.fetch.is_some() || !q.pipe_operators.is_empty() || q.for_clause.is_some() {
            return Err(CompileError::unsupported("FETCH / FOR / pipe clause", q));
        }
        // `FOR UPDATE` locks are ignored: the executor runs inside a MongoDB
        // transaction, which already isolates the rows it reads.
        let order_by: &[ast::OrderByExpr] = match &q.order_by {
            None => &[],
            Some(o) => match &o.kind {
                OrderByKind::Expressions(v) => v,
                OrderByKind::All(_) => return Err(CompileError::unsupported("ORDER BY ALL", q)),
            },
        };
        let (limit, offset) = self.limit(&q.limit_clause)?;
        match q.body.as_ref() {
            SetExpr::Select(s) => Ok(Query::Select(Box::new(self.select(s, order_by, limit, offset)?))),
            SetExpr::Query(inner) if order_by.is_empty() && limit.is_none() && offset.is_none() => self.query(inner),
            SetExpr::SetOperation { .. } => self.set_operation(q.body.as_ref(), order_by, limit, offset),
            other => Err(CompileError::unsupported(format!("query body {}", kind_name(other)), other)),
        }
    }

    /// `a UNION b UNION c ...`: sqlparser nests a chain as `((a UNION b)
    /// UNION c)`; a chain of one operator and quantifier is one n-ary
    /// operation, built in a loop however long it is (Django writes
    /// `qs.union(*many)` as one flat chain). Mixed operators nest.
    fn set_operation(&mut self, body: &SetExpr, order_by: &[ast::OrderByExpr], limit: Option<Expr>, offset: Option<Expr>) -> Result<Query> {
        let SetExpr::SetOperation { op, set_quantifier, left, right } = body else {
            return Err(CompileError::unsupported("set operation", "UNION/INTERSECT/EXCEPT"));
        };
        let (kind, all) = set_kind(op, set_quantifier)?;
        let mut operands = vec![right.as_ref()];
        let mut first = left.as_ref();
        while let SetExpr::SetOperation { op, set_quantifier, left, right } = first {
            if set_kind(op, set_quantifier)? != (kind, all) {
                break;
            }
            operands.push(right.as_ref());
            first = left.as_ref();
        }
        operands.push(first);
        operands.reverse();
        if operands.len() > crate::limits::MAX_SET_OPERANDS {
            return Err(CompileError::unsupported(
                format!("a set operation of {} queries (at most {} are supported)", operands.len(), crate::limits::MAX_SET_OPERANDS),
                "UNION/INTERSECT/EXCEPT",
            ));
        }
        let mut inputs = Vec::with_capacity(operands.len());
        for e in operands {
            inputs.push(self.set_operand(e)?);
        }
        let labels = inputs[0].columns();
        let mut items = Vec::new();
        for o in order_by {
            check_position(&o.expr, &labels, "ORDER BY")?;
            let i = output_index(&o.expr, &labels).ok_or_else(|| {
                CompileError::unsupported("ORDER BY of a set operation on something other than an output column", &o.expr)
            })?;
            items.push(OrderItem { key: SortKey::Output(i), descending: matches!(o.options.sort, Some(ast::OrderBySort::Desc)), nulls_first: o.options.nulls_first });
        }
        Ok(Query::SetOp(Box::new(SetOp { kind, all, inputs, order_by: items, limit, offset })))
    }

    /// Each operand of a set operation is its own query level with its own FROM.
    fn set_operand(&mut self, e: &SetExpr) -> Result<Query> {
        self.enter()?;
        self.scopes.push();
        let r = match e {
            SetExpr::Select(s) => self.select(s, &[], None, None).map(|s| Query::Select(Box::new(s))),
            SetExpr::Query(q) => self.query(q),
            SetExpr::SetOperation { .. } => self.set_operation(e, &[], None, None),
            other => Err(CompileError::unsupported(format!("set operand {}", kind_name(other)), "UNION/INTERSECT/EXCEPT")),
        };
        let scope = self.scopes.pop();
        self.leave();
        let mut r = r?;
        if scope.correlated {
            // Operands run inlined in the set operation's pipeline, so their
            // references to enclosing queries count from its level.
            crate::plan::outer::inline_derived(&mut r)?;
        }
        Ok(r)
    }

    fn limit(&mut self, l: &Option<LimitClause>) -> Result<(Option<Expr>, Option<Expr>)> {
        let (limit, offset) = match l {
            None => return Ok((None, None)),
            Some(LimitClause::LimitOffset { limit, offset, limit_by }) => {
                if !limit_by.is_empty() {
                    return Err(CompileError::unsupported("LIMIT BY", l.as_ref().map(|x| x.to_string()).unwrap_or_default()));
                }
                (limit.as_ref(), offset.as_ref().map(|o| &o.value))
            }
            Some(LimitClause::OffsetCommaLimit { offset, limit }) => (Some(limit), Some(offset)),
        };
        let mut one = |e: Option<&ast::Expr>, what: &str| -> Result<Option<Expr>> {
            let Some(e) = e else { return Ok(None) };
            match self.expr(e)? {
                // PostgreSQL's rule (SQLite would read a negative LIMIT as none).
                Expr::Literal(Literal::Int(n)) if n < 0 => Err(CompileError::InvalidValue { message: format!("{what} must not be negative") }),
                x @ (Expr::Param(_) | Expr::Literal(Literal::Int(_))) => Ok(Some(x)),
                Expr::Literal(Literal::Null) => Ok(None),
                _ => Err(CompileError::unsupported("LIMIT/OFFSET that is not an integer or parameter", e)),
            }
        };
        Ok((one(limit, "LIMIT")?, one(offset, "OFFSET")?))
    }

    fn select(&mut self, s: &ast::Select, order_by: &[ast::OrderByExpr], limit: Option<Expr>, offset: Option<Expr>) -> Result<Select> {
        if s.top.is_some() || s.into.is_some() || !s.lateral_views.is_empty() || s.prewhere.is_some() || !s.connect_by.is_empty()
            || !s.cluster_by.is_empty() || !s.distribute_by.is_empty() || !s.sort_by.is_empty() || !s.named_window.is_empty()
            || s.qualify.is_some() || s.value_table_mode.is_some() || s.exclude.is_some()
        {
            return Err(CompileError::unsupported("non-standard SELECT clause (TOP/INTO/QUALIFY/WINDOW/...)", s));
        }
        // FROM: sources are registered one by one so that each ON clause sees
        // exactly the tables to its left.
        let mut from = None;
        let mut joins = Vec::new();
        match s.from.as_slice() {
            [] => {}
            [twj] => {
                from = Some(self.source(&twj.relation)?);
                for j in &twj.joins {
                    let (kind, constraint) = match &j.join_operator {
                        JoinOperator::Join(c) | JoinOperator::Inner(c) => (JoinKind::Inner, c),
                        JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (JoinKind::LeftOuter, c),
                        JoinOperator::Right(_) | JoinOperator::RightOuter(_) => return Err(CompileError::unsupported("RIGHT OUTER JOIN", j)),
                        JoinOperator::FullOuter(_) => return Err(CompileError::unsupported("FULL OUTER JOIN", j)),
                        JoinOperator::CrossJoin(_) => return Err(CompileError::unsupported("CROSS JOIN", j)),
                        other => return Err(CompileError::unsupported(format!("join {}", kind_name(other)), j)),
                    };
                    let collection = match self.source(&j.relation)? {
                        Source::Table { collection } => collection,
                        Source::Derived(_) => return Err(CompileError::unsupported("JOIN with a derived table", j)),
                    };
                    let on = match constraint {
                        JoinConstraint::On(e) => self.expr(e)?,
                        _ => return Err(CompileError::unsupported("JOIN without ON (USING/NATURAL)", j)),
                    };
                    joins.push(Join { kind, collection, on });
                }
            }
            [first, rest @ ..] => {
                // `FROM a, b` (Django's extra(tables=...)): a cross join, each
                // further table joined with no condition; WHERE relates them.
                if !first.joins.is_empty() || rest.iter().any(|t| !t.joins.is_empty()) {
                    return Err(CompileError::unsupported("several tables in FROM mixed with JOIN", s));
                }
                from = Some(self.source(&first.relation)?);
                for t in rest {
                    let collection = match self.source(&t.relation)? {
                        Source::Table { collection } => collection,
                        Source::Derived(_) => return Err(CompileError::unsupported("a derived table after a comma in FROM", t)),
                    };
                    joins.push(Join { kind: JoinKind::Inner, collection, on: Expr::Literal(Literal::Bool(true)) });
                }
            }
        }
        let mut filter = s.selection.as_ref().map(|e| self.expr(e)).transpose()?;
        if s.from.len() > 1 {
            filter = push_into_cross_joins(filter, &mut joins);
        }
        let mut projection = Vec::new();
        let wildcard = matches!(s.projection.as_slice(), [SelectItem::Wildcard(_)]);
        let mut star = wildcard;
        if star {
            // `SELECT * FROM (SELECT ...) sq` (Django's filter on a window
            // function): the derived table's columns are known, so `*` is them.
            if let Some(columns) = self.scopes.only_derived_columns() {
                for (i, label) in columns.into_iter().enumerate() {
                    projection.push(ProjectItem { expr: Expr::Column(ColumnRef { scope: 0, source: 0, path: FieldPath::key(format!("c{i}")) }), label });
                }
                star = false;
            }
        }
        for item in s.projection.iter().filter(|_| !wildcard) {
            let (expr, label) = match item {
                SelectItem::UnnamedExpr(e) => {
                    let label = match e {
                        ast::Expr::Identifier(i) => i.value.clone(),
                        ast::Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.clone()).unwrap_or_default(),
                        other => other.to_string(),
                    };
                    (self.expr(e)?, label)
                }
                SelectItem::ExprWithAlias { expr, alias } => (self.expr(expr)?, alias.value.clone()),
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                    return Err(CompileError::unsupported("* beside other select items (the compiler knows no schema; list the columns)", item))
                }
                other => return Err(CompileError::unsupported("select item", other)),
            };
            projection.push(ProjectItem { expr, label });
        }
        let labels: Vec<String> = projection.iter().map(|p| p.label.clone()).collect();
        let group_by = match &s.group_by {
            GroupByExpr::Expressions(v, mods) if mods.is_empty() => {
                let mut out = Vec::new();
                for e in v {
                    check_position(e, &labels, "GROUP BY")?;
                    out.push(match output_index(e, &labels) {
                        Some(i) if !is_resolvable_column(e) || matches!(e, ast::Expr::Value(_)) => projection[i].expr.clone(),
                        _ => self.expr(e)?,
                    });
                }
                out
            }
            other => return Err(CompileError::unsupported("GROUP BY ALL / ROLLUP / CUBE", other)),
        };
        let having = s.having.as_ref().map(|e| self.expr(e)).transpose()?;
        let distinct = match &s.distinct {
            None | Some(ast::Distinct::All) => false,
            Some(ast::Distinct::Distinct) => true,
            Some(ast::Distinct::On(_)) => return Err(CompileError::unsupported("DISTINCT ON", s)),
        };
        let mut order = Vec::new();
        for o in order_by {
            check_position(&o.expr, &labels, "ORDER BY")?;
            let key = match output_index(&o.expr, &labels) {
                Some(i) if !is_resolvable_column(&o.expr) || matches!(o.expr, ast::Expr::Value(_)) => SortKey::Output(i),
                _ => {
                    let e = self.expr(&o.expr)?;
                    match projection.iter().position(|p| p.expr == e) {
                        Some(i) => SortKey::Output(i),
                        None => SortKey::Expr(e),
                    }
                }
            };
            order.push(OrderItem { key, descending: matches!(o.options.sort, Some(ast::OrderBySort::Desc)), nulls_first: o.options.nulls_first });
        }
        let aggregated = !group_by.is_empty()
            || projection.iter().any(|p| p.expr.has_aggregate())
            || having.as_ref().is_some_and(Expr::has_aggregate)
            || order.iter().any(|o| matches!(&o.key, SortKey::Expr(e) if e.has_aggregate()));
        if having.is_some() && !aggregated {
            return Err(CompileError::unsupported("HAVING without GROUP BY or aggregates", s));
        }
        if filter.as_ref().is_some_and(Expr::has_aggregate) {
            return Err(CompileError::unsupported("aggregate function in WHERE", s));
        }
        Ok(Select { from, joins, filter, group_by, aggregated, having, projection, star, distinct, order_by: order, limit, offset })
    }

    fn source(&mut self, t: &TableFactor) -> Result<Source> {
        match t {
            TableFactor::Table { name, alias, args, .. } => {
                if args.is_some() {
                    return Err(CompileError::unsupported("table function in FROM", t));
                }
                let collection = object_name(name)?;
                let alias = alias_name(alias, t)?;
                self.scopes.add_source(SourceName { name: alias.unwrap_or_else(|| collection.clone()), derived_columns: None });
                Ok(Source::Table { collection })
            }
            TableFactor::Derived { lateral, subquery, alias, .. } => {
                if *lateral {
                    return Err(CompileError::unsupported("LATERAL derived table", t));
                }
                self.enter()?;
                self.scopes.push();
                let inner = self.query(subquery);
                let scope = self.scopes.pop();
                self.leave();
                let mut inner = inner?;
                if scope.correlated {
                    // Its pipeline runs inlined in this query's: its outer
                    // references move one level closer.
                    crate::plan::outer::inline_derived(&mut inner)?;
                }
                let name = alias_name(alias, t)?.unwrap_or_else(|| "subquery".to_string());
                // `(SELECT * FROM t ...) sq`: its rows are t's documents, so
                // `sq.c` is the field `c`, as for the table itself.
                let derived_columns = if inner.is_star() { None } else { Some(inner.columns()) };
                self.scopes.add_source(SourceName { name, derived_columns });
                Ok(Source::Derived(Box::new(inner)))
            }
            other => Err(CompileError::unsupported(format!("FROM item {}", kind_name(other)), other)),
        }
    }
}

fn alias_name(alias: &Option<ast::TableAlias>, t: &TableFactor) -> Result<Option<String>> {
    match alias {
        None => Ok(None),
        Some(a) if a.columns.is_empty() => Ok(Some(a.name.value.clone())),
        Some(_) => Err(CompileError::unsupported("table alias with a column list", t)),
    }
}

fn set_kind(op: &ast::SetOperator, quantifier: &ast::SetQuantifier) -> Result<(SetOpKind, bool)> {
    let kind = match op {
        ast::SetOperator::Union => SetOpKind::Union,
        ast::SetOperator::Intersect => SetOpKind::Intersect,
        ast::SetOperator::Except | ast::SetOperator::Minus => SetOpKind::Except,
    };
    let all = match quantifier {
        ast::SetQuantifier::All => true,
        ast::SetQuantifier::Distinct | ast::SetQuantifier::None => false,
        other => return Err(CompileError::unsupported(format!("set quantifier {other}"), op)),
    };
    Ok((kind, all))
}

/// `ORDER BY 5` / `GROUP BY 5` with fewer output columns: an error, as in
/// PostgreSQL (a constant sort key would be silently ignored).
fn check_position(e: &ast::Expr, labels: &[String], clause: &str) -> Result<()> {
    if let ast::Expr::Value(v) = e {
        if let ast::Value::Number(n, _) = &v.value {
            let in_range = n.parse::<usize>().is_ok_and(|i| i >= 1 && i <= labels.len());
            if n.chars().all(|c| c.is_ascii_digit()) && !in_range {
                let shown: String = n.chars().take(40).collect();
                return Err(CompileError::Invalid { message: format!("{clause} position {shown} is not in select list") });
            }
        }
    }
    Ok(())
}

/// `ORDER BY 2` / `GROUP BY 1` / `ORDER BY "alias"`: the output column meant.
fn output_index(e: &ast::Expr, labels: &[String]) -> Option<usize> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.parse::<usize>().ok().filter(|i| *i >= 1 && *i <= labels.len()).map(|i| i - 1),
            _ => None,
        },
        ast::Expr::Identifier(i) => labels.iter().position(|l| *l == i.value),
        _ => None,
    }
}

/// A qualified column (`"t"."c"`) always means the input column, even if an
/// output column has the same label.
fn is_resolvable_column(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::CompoundIdentifier(_))
}

/// `FROM a, b WHERE a.x = b.y`: each WHERE conjunct whose last table is a
/// comma-joined one becomes that join's condition, so the join is a keyed
/// `$lookup` rather than a cross product filtered afterwards. Exact for
/// inner joins (every join here is one); conjuncts with subqueries or outer
/// references stay in WHERE.
fn push_into_cross_joins(filter: Option<Expr>, joins: &mut [Join]) -> Option<Expr> {
    let mut kept = Vec::new();
    for c in filter?.conjuncts() {
        let mut last = 0;
        let mut movable = true;
        c.walk(&mut |e| match e {
            Expr::Column(ColumnRef { scope: 0, source, .. }) => last = last.max(*source),
            Expr::Column(_) | Expr::Exists { .. } | Expr::ScalarSubquery(_) | Expr::SubqueryColumn { .. } | Expr::InSubquery { .. } => movable = false,
            _ => {}
        });
        match last.checked_sub(1).and_then(|k| joins.get_mut(k)) {
            Some(j) if movable => {
                j.on = match std::mem::replace(&mut j.on, Expr::Literal(Literal::Bool(true))) {
                    Expr::Literal(Literal::Bool(true)) => c,
                    Expr::And(mut v) => {
                        v.push(c);
                        Expr::And(v)
                    }
                    other => Expr::And(vec![other, c]),
                };
            }
            _ => kept.push(c),
        }
    }
    match kept.len() {
        0 => None,
        1 => kept.pop(),
        _ => Some(Expr::And(kept)),
    }
}
