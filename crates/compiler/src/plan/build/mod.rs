//! sqlparser AST → relational plan. Each statement kind has its own module;
//! they share the `Builder`, which carries name scopes and collects the
//! uncorrelated subqueries to hoist.
mod ddl;
mod dml;
mod expr;
pub(crate) mod json;
mod query;

use sqlparser::ast;

use super::scope::Scopes;
use super::{Query, SavepointOp, Statement, StatementKind};
use crate::error::{CompileError, Result};

pub(crate) struct Builder {
    scopes: Scopes,
    subqueries: Vec<Query>,
    /// How many queries (subqueries, derived tables, set operands) enclose
    /// the one being built.
    nesting: usize,
}

impl Builder {
    /// Enters a nested query; past `MAX_QUERY_NESTING` the statement is
    /// refused before anything recurses deeper.
    pub(crate) fn enter(&mut self) -> Result<()> {
        if self.nesting >= crate::limits::MAX_QUERY_NESTING {
            return Err(CompileError::unsupported(
                format!("queries nested more than {} levels deep", crate::limits::MAX_QUERY_NESTING),
                "(SELECT ...)",
            ));
        }
        self.nesting += 1;
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.nesting = self.nesting.saturating_sub(1);
    }
}

pub fn build(stmt: &ast::Statement) -> Result<Statement> {
    let mut b = Builder {
        scopes: Scopes::default(),
        subqueries: Vec::new(),
        nesting: 0,
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
        ast::Statement::Explain { statement, analyze, verbose, query_plan, estimate, format, options, .. } => {
            if *analyze || *verbose || *query_plan || *estimate || options.is_some() {
                return Err(CompileError::unsupported("EXPLAIN with options other than FORMAT", stmt));
            }
            let json = match format {
                None | Some(ast::AnalyzeFormatKind::Keyword(ast::AnalyzeFormat::TEXT)) => false,
                Some(ast::AnalyzeFormatKind::Keyword(ast::AnalyzeFormat::JSON)) => true,
                Some(other) => return Err(CompileError::unsupported(format!("EXPLAIN {other}"), stmt)),
            };
            StatementKind::Explain { statement: Box::new(build(statement)?), json }
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
/// Only the head of the node's `Debug` text is written: formatting stops
/// there, so a huge or deeply nested node costs nothing.
pub(crate) fn kind_name(node: &impl std::fmt::Debug) -> String {
    let mut head = crate::error::Bounded::new(64);
    let _ = std::fmt::Write::write_fmt(&mut head, format_args!("{node:?}"));
    let dbg = head.into_string();
    dbg.split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("expression")
        .to_string()
}
