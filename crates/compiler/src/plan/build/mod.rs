//! sqlparser AST → relational plan. Each statement kind has its own module;
//! they share the `Builder`, which carries name scopes and collects the
//! uncorrelated subqueries to hoist.
mod ddl;
mod dml;
mod expr;
mod query;

use sqlparser::ast;

use super::scope::Scopes;
use super::{Query, SavepointOp, Statement, StatementKind};
use crate::error::{CompileError, Result};

pub(crate) struct Builder {
    scopes: Scopes,
    subqueries: Vec<Query>,
}

pub fn build(stmt: &ast::Statement) -> Result<Statement> {
    let mut b = Builder {
        scopes: Scopes::default(),
        subqueries: Vec::new(),
    };
    let kind = match stmt {
        ast::Statement::Query(q) => {
            b.scopes.push();
            let q = b.query(q)?;
            StatementKind::Query(q)
        }
        ast::Statement::Insert(i) => StatementKind::Insert(b.insert(i)?),
        ast::Statement::Update(u) => StatementKind::Update(b.update(u)?),
        ast::Statement::Delete(d) => StatementKind::Delete(b.delete(d)?),
        ast::Statement::Savepoint { name } => StatementKind::Savepoint(SavepointOp::Create(name.value.clone())),
        ast::Statement::ReleaseSavepoint { name } => StatementKind::Savepoint(SavepointOp::Release(name.value.clone())),
        ast::Statement::Rollback { chain: false, savepoint: Some(name) } => {
            StatementKind::Savepoint(SavepointOp::RollbackTo(name.value.clone()))
        }
        other => StatementKind::Ddl(b.ddl(other)?),
    };
    Ok(Statement {
        kind,
        subqueries: b.subqueries,
    })
}

/// The last part of a possibly schema-qualified name: MongoDB has one
/// namespace per database, so `"schema"."t"` is collection `t`.
pub(crate) fn object_name(name: &ast::ObjectName) -> Result<String> {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.clone())
        .ok_or_else(|| CompileError::unsupported("table name", name))
}

/// A short name for an AST node kind, for error messages (`Interval`, `Cube`...).
pub(crate) fn kind_name(node: &impl std::fmt::Debug) -> String {
    let dbg = format!("{node:?}");
    dbg.split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or("expression")
        .to_string()
}
