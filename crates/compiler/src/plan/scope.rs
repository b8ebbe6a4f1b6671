//! Name resolution: which FROM entry (of which query level) a column
//! reference means, and the field path it denotes inside that entry's
//! documents. The compiler knows no schema, so resolution is purely by the
//! table names and aliases in FROM.
use super::expr::{ColumnRef, FieldPath};
use crate::error::{CompileError, Result};

/// One FROM entry as seen by name resolution.
#[derive(Debug, Clone)]
pub struct SourceName {
    /// The alias if there is one, else the table name.
    pub name: String,
    /// For a derived table, its output column labels (stored as `c0`, `c1`...);
    /// `None` for a table and for a derived `SELECT *` (fields by name).
    pub derived_columns: Option<Vec<String>>,
}

/// The FROM entries of one query level.
#[derive(Debug, Default)]
pub struct Scope {
    pub sources: Vec<SourceName>,
    /// Set when something inside this level referenced an enclosing level.
    pub correlated: bool,
}

/// The stack of query levels, innermost last.
#[derive(Debug, Default)]
pub struct Scopes {
    stack: Vec<Scope>,
}

fn same_name(a: &str, b: &str) -> bool {
    a == b || a.eq_ignore_ascii_case(b)
}

impl Scopes {
    pub fn push(&mut self) {
        self.stack.push(Scope::default());
    }

    pub fn pop(&mut self) -> Scope {
        self.stack.pop().unwrap_or_default()
    }

    pub fn add_source(&mut self, source: SourceName) -> usize {
        if self.stack.is_empty() {
            self.push();
        }
        let top = self.stack.len() - 1;
        self.stack[top].sources.push(source);
        self.stack[top].sources.len() - 1
    }

    /// The output columns of this level's FROM when it is one derived table
    /// whose columns are known: what `SELECT *` means there.
    pub fn only_derived_columns(&self) -> Option<Vec<String>> {
        match self.stack.last()?.sources.as_slice() {
            [only] => only.derived_columns.clone(),
            _ => None,
        }
    }

    /// Resolves `parts` (the dotted pieces of an identifier) to a column.
    pub fn resolve(&mut self, parts: &[String], fragment: &str) -> Result<ColumnRef> {
        let Some(first) = parts.first() else {
            return Err(CompileError::unsupported("empty identifier", fragment));
        };
        if parts.len() == 1 {
            // Unqualified: the first FROM entry of the innermost level. Django
            // always qualifies columns; hand-written SQL with joins should too.
            let Some(top) = self.stack.last() else {
                return Err(CompileError::unsupported("column reference without FROM", fragment));
            };
            let Some(src) = top.sources.first() else {
                return Err(CompileError::unsupported("column reference without FROM", fragment));
            };
            let path = field_path(src, parts, fragment)?;
            return Ok(ColumnRef {
                scope: 0,
                source: 0,
                path,
            });
        }
        let depth_count = self.stack.len();
        for depth in 0..depth_count {
            let level = &self.stack[depth_count - 1 - depth];
            let found = level
                .sources
                .iter()
                .position(|s| s.name == *first)
                .or_else(|| level.sources.iter().position(|s| same_name(&s.name, first)));
            if let Some(source) = found {
                let path = field_path(&level.sources[source], &parts[1..], fragment)?;
                // Every level between the reference and its source is correlated.
                for lvl in &mut self.stack[depth_count - depth..] {
                    lvl.correlated = true;
                }
                return Ok(ColumnRef {
                    scope: depth,
                    source,
                    path,
                });
            }
        }
        Err(CompileError::unsupported(
            format!("reference to unknown table or alias \"{first}\""),
            fragment,
        ))
    }
}

/// The field path of `rest` (column, then embedded sub-fields) in `src`.
/// Each identifier stays one component, whatever characters it holds.
fn field_path(src: &SourceName, rest: &[String], fragment: &str) -> Result<FieldPath> {
    let Some(column) = rest.first() else {
        return Err(CompileError::unsupported("table name used as a value", fragment));
    };
    let head = match &src.derived_columns {
        None => column.clone(),
        Some(cols) => {
            let i = cols
                .iter()
                .position(|c| c == column)
                .or_else(|| cols.iter().position(|c| same_name(c, column)))
                .ok_or_else(|| {
                    CompileError::unsupported(
                        format!("unknown column \"{column}\" of derived table \"{}\"", src.name),
                        fragment,
                    )
                })?;
            format!("c{i}")
        }
    };
    let mut components = Vec::with_capacity(rest.len());
    components.push(head);
    components.extend(rest[1..].iter().cloned());
    Ok(FieldPath::new(components))
}
