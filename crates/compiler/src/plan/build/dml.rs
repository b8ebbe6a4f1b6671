//! INSERT / UPDATE / DELETE → plan.
use sqlparser::ast::{self, AssignmentTarget, FromTable, SelectItem, SetExpr, TableFactor, TableObject};

use super::{object_name, Builder};
use crate::error::{CompileError, Result};
use crate::plan::scope::SourceName;
use crate::plan::{is_plain_key, Delete, Expr, FieldPath, Insert, InsertValue, OnConflict, ProjectItem, Query, Select, Update};

impl Builder {
    pub(crate) fn insert(&mut self, i: &ast::Insert) -> Result<Insert> {
        if i.or.is_some() || i.ignore || i.replace_into || !i.assignments.is_empty() || i.overwrite || i.partitioned.is_some() {
            return Err(CompileError::unsupported("INSERT OR/IGNORE/REPLACE", i));
        }
        let on_conflict = match &i.on {
            None => None,
            Some(ast::OnInsert::OnConflict(ast::OnConflict { conflict_target: None, action: ast::OnConflictAction::DoNothing })) => Some(OnConflict::Ignore),
            Some(ast::OnInsert::OnConflict(ast::OnConflict {
                conflict_target: Some(ast::ConflictTarget::Columns(target)),
                action: ast::OnConflictAction::DoUpdate(update),
            })) => Some(on_conflict_update(target, update, i)?),
            Some(_) => {
                return Err(CompileError::unsupported(
                    "ON CONFLICT other than DO NOTHING or (columns) DO UPDATE SET col = EXCLUDED.col",
                    i,
                ))
            }
        };
        let collection = match &i.table {
            TableObject::TableName(n) => object_name(n)?,
            _ => return Err(CompileError::unsupported("INSERT into a table function", i)),
        };
        let columns = i
            .columns
            .iter()
            .map(object_name)
            .collect::<Result<Vec<_>>>()?;
        // Values are constants: there is no row to refer to yet.
        self.scopes.push();
        let mut computed = Vec::new();
        let rows = match i.source.as_deref() {
            None => vec![vec![]],
            Some(q) => match q.body.as_ref() {
                SetExpr::Values(v) if q.order_by.is_none() && q.limit_clause.is_none() => {
                    let mut rows = Vec::with_capacity(v.rows.len());
                    for row in &v.rows {
                        if row.content.len() != columns.len() {
                            return Err(CompileError::unsupported("INSERT row with a different number of values than columns", i));
                        }
                        let mut out = Vec::with_capacity(row.content.len());
                        for e in &row.content {
                            out.push(self.insert_value(e, &mut computed)?);
                        }
                        rows.push(out);
                    }
                    rows
                }
                _ => return Err(CompileError::unsupported("INSERT ... SELECT", i)),
            },
        };
        self.scopes.pop();
        let computed = (!computed.is_empty()).then(|| {
            self.subqueries.push(values_query(computed));
            self.subqueries.len() - 1
        });
        let returning = match &i.returning {
            None => Vec::new(),
            Some(items) => returning_columns(items)?,
        };
        Ok(Insert { collection, columns, rows, returning, on_conflict, computed })
    }

    /// A value of a VALUES row. Anything but a literal or a parameter is
    /// added to `computed` (evaluated by the server before the insert).
    fn insert_value(&mut self, e: &ast::Expr, computed: &mut Vec<Expr>) -> Result<InsertValue> {
        if let ast::Expr::Identifier(id) = e {
            if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default") {
                return Ok(InsertValue::Default);
            }
        }
        let v = self.expr(e)?;
        if v.has_aggregate() {
            return Err(CompileError::unsupported("aggregate function in INSERT VALUES", e));
        }
        Ok(match v {
            Expr::Literal(_) | Expr::Param(_) => InsertValue::Data(v),
            _ => {
                computed.push(v);
                InsertValue::Computed(computed.len() - 1)
            }
        })
    }

    /// The single table of an UPDATE/DELETE, registered as the only source.
    fn target_table(&mut self, t: &ast::TableWithJoins) -> Result<String> {
        if !t.joins.is_empty() {
            return Err(CompileError::unsupported("UPDATE/DELETE with JOIN", t));
        }
        match &t.relation {
            TableFactor::Table { name, alias, .. } => {
                let collection = object_name(name)?;
                let alias = alias.as_ref().map(|a| a.name.value.clone());
                self.scopes.push();
                self.scopes.add_source(SourceName { name: alias.unwrap_or_else(|| collection.clone()), derived_columns: None });
                Ok(collection)
            }
            other => Err(CompileError::unsupported("UPDATE/DELETE of a derived table", other)),
        }
    }

    pub(crate) fn update(&mut self, u: &ast::Update) -> Result<Update> {
        if u.from.is_some() || u.returning.is_some() || u.or.is_some() || u.limit.is_some() || !u.order_by.is_empty() || u.output.is_some() {
            return Err(CompileError::unsupported("UPDATE with FROM/RETURNING/LIMIT/ORDER BY", u));
        }
        let collection = self.target_table(&u.table)?;
        let mut assignments = Vec::new();
        for a in &u.assignments {
            let name = match &a.target {
                AssignmentTarget::ColumnName(n) => n,
                AssignmentTarget::Tuple(_) => return Err(CompileError::unsupported("tuple assignment in UPDATE", a)),
            };
            let parts: Vec<String> = name.0.iter().filter_map(|p| p.as_ident()).map(|i| i.value.clone()).collect();
            // `SET "t"."c" = ...` names the column with its table; drop it.
            let column = self.scopes.resolve(&parts, &a.to_string())?;
            // `$set` reads its keys as dotted paths: a column whose name
            // holds `.` or starts with `$` would land somewhere else.
            let Some(path) = column.path.dotted() else {
                return Err(CompileError::unsupported(
                    format!("UPDATE of column {} (a name that contains '.', starts with '$' or is empty)", column.path),
                    name,
                ));
            };
            let value = self.expr(&a.value)?;
            assignments.push((path, value));
        }
        let filter = u.selection.as_ref().map(|e| self.expr(e)).transpose()?;
        Ok(Update { collection, assignments, filter })
    }

    pub(crate) fn delete(&mut self, d: &ast::Delete) -> Result<Delete> {
        if !d.tables.is_empty() || d.using.is_some() || d.returning.is_some() || d.limit.is_some() || !d.order_by.is_empty() || d.output.is_some() {
            return Err(CompileError::unsupported("DELETE with USING/RETURNING/LIMIT/ORDER BY or several tables", d));
        }
        let tables = match &d.from {
            FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
        };
        let [table] = tables.as_slice() else {
            return Err(CompileError::unsupported("DELETE from several tables", d));
        };
        let collection = self.target_table(table)?;
        let filter = d.selection.as_ref().map(|e| self.expr(e)).transpose()?;
        Ok(Delete { collection, filter })
    }
}

/// `ON CONFLICT (a, b) DO UPDATE SET c = EXCLUDED.c, ...`: each column set
/// to the value the row brought (what Django's bulk_create writes); any
/// other expression, or a WHERE, is refused.
fn on_conflict_update(target: &[ast::Ident], update: &ast::DoUpdate, whole: &ast::Insert) -> Result<OnConflict> {
    if update.selection.is_some() {
        return Err(CompileError::unsupported("ON CONFLICT DO UPDATE ... WHERE", whole));
    }
    if target.is_empty() || update.assignments.is_empty() {
        return Err(CompileError::unsupported("ON CONFLICT DO UPDATE without a target or assignments", whole));
    }
    let mut set = Vec::with_capacity(update.assignments.len());
    for a in &update.assignments {
        let column = match &a.target {
            AssignmentTarget::ColumnName(n) => n.0.last().and_then(|p| p.as_ident()).map(|i| i.value.clone()),
            AssignmentTarget::Tuple(_) => None,
        };
        let source = match &a.value {
            ast::Expr::CompoundIdentifier(parts) if parts.len() == 2 && parts[0].value.eq_ignore_ascii_case("excluded") => Some(parts[1].value.clone()),
            _ => None,
        };
        let (Some(column), Some(source)) = (column, source) else {
            return Err(CompileError::unsupported("ON CONFLICT DO UPDATE SET other than col = EXCLUDED.col", a));
        };
        if !is_plain_key(&column) {
            return Err(CompileError::unsupported(format!("ON CONFLICT DO UPDATE of column {}", FieldPath::key(column)), a));
        }
        set.push((column, source));
    }
    Ok(OnConflict::Update { target: target.iter().map(|i| i.value.clone()).collect(), set })
}

fn returning_columns(items: &[SelectItem]) -> Result<Vec<String>> {
    items
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(ast::Expr::Identifier(i)) => Ok(i.value.clone()),
            SelectItem::UnnamedExpr(ast::Expr::CompoundIdentifier(p)) => {
                p.last().map(|i| i.value.clone()).ok_or_else(|| CompileError::unsupported("RETURNING item", item))
            }
            other => Err(CompileError::unsupported("RETURNING something other than a column", other)),
        })
        .collect()
}

/// `SELECT e0, e1, ...` without FROM: the computed values of an INSERT.
fn values_query(exprs: Vec<Expr>) -> Query {
    let projection = exprs
        .into_iter()
        .enumerate()
        .map(|(i, expr)| ProjectItem { expr, label: format!("v{i}") })
        .collect();
    Query::Select(Box::new(Select::plain(None, None, projection)))
}
