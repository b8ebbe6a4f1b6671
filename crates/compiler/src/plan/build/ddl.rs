//! CREATE / ALTER / DROP → plan. Types stay SQL text: the executor and the
//! schema editor decide what they mean for MongoDB.
use sqlparser::ast::{self, AlterColumnOperation, AlterTableOperation, ColumnOption, ObjectType, TableConstraint};

use super::{kind_name, object_name, Builder};
use crate::error::{CompileError, Result};
use crate::plan::scope::SourceName;
use crate::plan::{Check, ColumnChange, ColumnDef, Constraint, Ddl, Expr, Func, IndexKey, IndexKind, Literal};

/// CHECK constraints as written: (name, condition).
type Checks = Vec<(Option<String>, ast::Expr)>;

impl Builder {
    pub(crate) fn ddl(&mut self, stmt: &ast::Statement) -> Result<Ddl> {
        use ast::Statement as S;
        match stmt {
            S::CreateTable(c) => self.create_table(c),
            S::CreateIndex(c) => self.create_index(c),
            S::Drop { object_type, if_exists, names, table, .. } => {
                let [name] = names.as_slice() else {
                    return Err(CompileError::unsupported("DROP of several objects", stmt));
                };
                let name = object_name(name)?;
                match object_type {
                    ObjectType::Table => Ok(Ddl::DropTable { collection: name, if_exists: *if_exists }),
                    ObjectType::View => Ok(Ddl::DropView { name, if_exists: *if_exists }),
                    ObjectType::Index => Ok(Ddl::DropIndex {
                        collection: table.as_ref().map(object_name).transpose()?,
                        name,
                        if_exists: *if_exists,
                    }),
                    other => Err(CompileError::unsupported(format!("DROP {other}"), stmt)),
                }
            }
            S::AlterTable(a) => self.alter_table(a),
            S::CreateView(v) => self.create_view(v),
            other => Err(CompileError::unsupported(format!("statement {}", kind_name(other)), other)),
        }
    }

    fn create_view(&mut self, v: &ast::CreateView) -> Result<Ddl> {
        if v.materialized || v.or_replace || v.or_alter || v.temporary || v.if_not_exists || !v.columns.is_empty() || v.to.is_some() {
            return Err(CompileError::unsupported("CREATE VIEW other than CREATE VIEW name AS SELECT", v));
        }
        let name = object_name(&v.name)?;
        self.scopes.push();
        let query = self.query(&v.query);
        self.scopes.pop();
        let query = query?;
        // An uncorrelated subquery runs before its statement and is bound as
        // values: a view would keep the values of the day it was created.
        if !self.subqueries.is_empty() {
            return Err(CompileError::unsupported("CREATE VIEW with an uncorrelated subquery", v));
        }
        Ok(Ddl::CreateView { name, query })
    }

    fn create_table(&mut self, c: &ast::CreateTable) -> Result<Ddl> {
        if c.query.is_some() || c.like.is_some() || c.clone.is_some() || c.or_replace || c.temporary {
            return Err(CompileError::unsupported("CREATE TABLE AS/LIKE/CLONE/TEMPORARY/OR REPLACE", c));
        }
        let collection = object_name(&c.name)?;
        self.scopes.push();
        // Generated columns and CHECK conditions read the row being written.
        self.scopes.add_source(SourceName { name: collection.clone(), derived_columns: None });
        let mut columns = Vec::new();
        let mut checks = Vec::new();
        for col in &c.columns {
            let (def, col_checks) = self.column_def(col)?;
            columns.push(def);
            for (name, e) in col_checks {
                checks.push((name, self.check(&e)?));
            }
        }
        let mut unique = Vec::new();
        let mut primary_key = Vec::new();
        let mut foreign_keys = Vec::new();
        for tc in &c.constraints {
            match self.constraint(tc)? {
                (name, Constraint::Unique(cols)) => unique.push((name, cols)),
                (_, Constraint::PrimaryKey(cols)) if cols.len() == 1 => {
                    for col in columns.iter_mut().filter(|c| c.name == cols[0]) {
                        col.primary_key = true;
                        col.nullable = false;
                    }
                }
                (_, Constraint::PrimaryKey(cols)) => {
                    for col in columns.iter_mut().filter(|c| cols.contains(&c.name)) {
                        col.nullable = false;
                    }
                    primary_key = cols;
                }
                (name, Constraint::ForeignKey(fk)) => foreign_keys.push((name, fk)),
                (name, Constraint::Check(sql)) => checks.push((name, sql)),
            }
        }
        self.scopes.pop();
        Ok(Ddl::CreateTable { collection, if_not_exists: c.if_not_exists, columns, unique, primary_key, checks, foreign_keys })
    }

    fn column_def(&mut self, col: &ast::ColumnDef) -> Result<(ColumnDef, Checks)> {
        let ty = col.data_type.to_string().to_ascii_lowercase();
        let mut def = ColumnDef {
            name: col.name.value.clone(),
            auto: matches!(ty.as_str(), "serial" | "bigserial" | "smallserial"),
            ty,
            nullable: true,
            primary_key: false,
            unique: false,
            default: None,
            generated: None,
            collation: None,
            references: None,
        };
        let mut checks = Vec::new();
        for opt in &col.options {
            match &opt.option {
                ColumnOption::Null => def.nullable = true,
                ColumnOption::NotNull => def.nullable = false,
                ColumnOption::PrimaryKey(_) => {
                    def.primary_key = true;
                    def.nullable = false;
                }
                ColumnOption::Unique(_) => def.unique = true,
                ColumnOption::Default(e) => def.default = Some(self.column_default(e)?),
                ColumnOption::DialectSpecific(tokens) => {
                    let text = tokens.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" ");
                    if text.eq_ignore_ascii_case("autoincrement") || text.eq_ignore_ascii_case("auto_increment") {
                        def.auto = true;
                    } else {
                        return Err(CompileError::unsupported(format!("column option {text}"), col));
                    }
                }
                ColumnOption::Check(c) => checks.push((c.name.as_ref().map(|n| n.value.clone()), (*c.expr).clone())),
                ColumnOption::Generated { generation_expr: Some(e), .. } => def.generated = Some(self.generated_expr(e)?),
                ColumnOption::Collation(name) => match name.0.as_slice() {
                    [part] if part.as_ident().is_some() => def.collation = part.as_ident().map(|i| i.value.clone()),
                    _ => return Err(CompileError::unsupported("COLLATE with a qualified collation name", col)),
                },
                ColumnOption::ForeignKey(f) => {
                    let mut f = f.clone();
                    f.columns = vec![col.name.clone()];
                    def.references = Some((opt.name.as_ref().map(|n| n.value.clone()), foreign_key(&f, col)?));
                }
                ColumnOption::Comment(_) | ColumnOption::CharacterSet(_) => {}
                other => return Err(CompileError::unsupported(format!("column option {other}"), col)),
            }
        }
        Ok((def, checks))
    }

    /// A generated column's expression: it reads the row's other columns,
    /// and nothing else (no subquery, aggregate or window), as in SQL.
    fn generated_expr(&mut self, e: &ast::Expr) -> Result<Expr> {
        let v = self.expr(e)?;
        let reads_more = v.any(&|x| {
            matches!(x, Expr::ScalarSubquery(_) | Expr::SubqueryColumn { .. } | Expr::InSubquery { .. } | Expr::Exists { .. } | Expr::Window(_))
                || matches!(x, Expr::Column(c) if c.scope > 0)
        });
        if reads_more || v.has_aggregate() {
            return Err(CompileError::unsupported("generated column that reads a subquery, an aggregate or a window", e));
        }
        Ok(v)
    }

    /// A column DEFAULT: a constant, or an expression of no column
    /// (`CURRENT_TIMESTAMP`, `LOWER('x')`) that the executor evaluates on the
    /// server for every insert that leaves the column out.
    fn column_default(&mut self, e: &ast::Expr) -> Result<Expr> {
        let v = self.expr(e)?;
        let refers_to_data = v.any(&|x| {
            matches!(x, Expr::Column(_) | Expr::ScalarSubquery(_) | Expr::SubqueryColumn { .. } | Expr::InSubquery { .. } | Expr::Exists { .. })
        });
        if refers_to_data || v.has_aggregate() {
            return Err(CompileError::unsupported("column DEFAULT that reads a column, a subquery or an aggregate", e));
        }
        Ok(v)
    }

    /// A CHECK condition, over the columns of the one row it checks: no
    /// subquery, aggregate, window function or parameter.
    fn check(&mut self, e: &ast::Expr) -> Result<Check> {
        let condition = self.expr(e)?;
        let elsewhere = condition.any(&|x| {
            matches!(x, Expr::ScalarSubquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } | Expr::Param(_) | Expr::Window(_))
        });
        if elsewhere || condition.has_aggregate() {
            return Err(CompileError::unsupported("CHECK constraint with a subquery, an aggregate, a window function or a parameter", e));
        }
        Ok(Check { sql: e.to_string(), condition })
    }

    /// A table constraint; a CHECK's columns resolve to the table in scope.
    fn constraint(&mut self, tc: &TableConstraint) -> Result<(Option<String>, Constraint)> {
        let cols = |v: &[ast::IndexColumn]| -> Result<Vec<String>> {
            v.iter()
                .map(|c| match &c.column.expr {
                    ast::Expr::Identifier(i) => Ok(i.value.clone()),
                    other => Err(CompileError::unsupported("constraint on an expression", other)),
                })
                .collect()
        };
        Ok(match tc {
            TableConstraint::Unique(u) => (u.name.as_ref().map(|n| n.value.clone()), Constraint::Unique(cols(&u.columns)?)),
            TableConstraint::PrimaryKey(p) => (p.name.as_ref().map(|n| n.value.clone()), Constraint::PrimaryKey(cols(&p.columns)?)),
            TableConstraint::ForeignKey(f) => (f.name.as_ref().map(|n| n.value.clone()), Constraint::ForeignKey(foreign_key(f, tc)?)),
            TableConstraint::Check(c) => (c.name.as_ref().map(|n| n.value.clone()), Constraint::Check(self.check(&c.expr)?)),
            other => return Err(CompileError::unsupported("table constraint", other)),
        })
    }

    fn create_index(&mut self, c: &ast::CreateIndex) -> Result<Ddl> {
        // CONCURRENTLY and USING change nothing for MongoDB, but INCLUDE would be lost.
        if !c.include.is_empty() {
            return Err(CompileError::unsupported("CREATE INDEX with INCLUDE", c));
        }
        let mut options = c.with.iter().map(index_option).collect::<Result<Vec<_>>>()?;
        // The kind is written `WITH (kind = '2dsphere')`, as every other
        // kind; `USING "2dsphere"`, which djongo wrote before, is still read
        // (a user's RunSQL or sqlmigrate output may hold it).
        let with_kind = match options.iter().position(|(k, _)| k == "kind") {
            Some(i) => match options.remove(i).1 {
                Literal::Str(word) => IndexKind::parse(&word),
                _ => None,
            },
            None => None,
        };
        let using_kind = match &c.using {
            Some(ast::IndexType::Custom(t)) if t.value == "2dsphere" => Some(IndexKind::TwoDSphere),
            _ => None,
        };
        let kind = match (with_kind, using_kind) {
            (Some(a), Some(b)) if a != b => return Err(CompileError::unsupported("CREATE INDEX with two index kinds (USING and WITH kind)", c)),
            (a, b) => a.or(b),
        };
        let name = c.name.as_ref().ok_or_else(|| CompileError::unsupported("CREATE INDEX without a name", c))?;
        let name = object_name(name)?;
        let collection = object_name(&c.table_name)?;
        self.scopes.push();
        self.scopes.add_source(SourceName { name: collection.clone(), derived_columns: None });
        let built = self.index_keys(&c.columns).and_then(|(keys, collation)| {
            let filter = c.predicate.as_ref().map(|p| self.expr(p)).transpose()?;
            Ok((keys, collation, filter))
        });
        self.scopes.pop();
        let (keys, collation, filter) = built?;
        if kind == Some(IndexKind::Wildcard) && keys.iter().any(|(k, _)| matches!(k, IndexKey::Expr(_))) {
            return Err(CompileError::unsupported("wildcard index on an expression", c));
        }
        Ok(Ddl::CreateIndex { collection, name, keys, unique: c.unique, if_not_exists: c.if_not_exists, filter, options, kind, collation })
    }

    /// The keys of CREATE INDEX: a column (`"name"`, or `("name")` as Django
    /// writes `F("name")`), or an expression over the row's columns; and the
    /// index's collation when its keys are columns under one COLLATE
    /// (`Index(Collate("title", "sv"))`: a MongoDB index on `title` with that
    /// collation; an index has one, so every key must name it).
    fn index_keys(&mut self, columns: &[ast::IndexColumn]) -> Result<IndexKeys> {
        let mut keys = Vec::with_capacity(columns.len());
        let mut collations = Vec::new();
        for col in columns {
            let mut e = &col.column.expr;
            while let ast::Expr::Nested(inner) = e {
                e = inner;
            }
            if let ast::Expr::Collate { expr, collation } = e {
                let name = match collation.0.as_slice() {
                    [part] => part.as_ident().map(|i| i.value.clone()),
                    _ => None,
                };
                collations.push(name.ok_or_else(|| CompileError::unsupported("COLLATE with a qualified collation name", e))?);
                e = expr;
                while let ast::Expr::Nested(inner) = e {
                    e = inner;
                }
            }
            let key = match e {
                ast::Expr::Identifier(i) => IndexKey::Field(i.value.clone()),
                ast::Expr::CompoundIdentifier(p) => IndexKey::Field(p.iter().map(|i| i.value.clone()).collect::<Vec<_>>().join(".")),
                other => IndexKey::Expr(self.index_expr(other)?),
            };
            keys.push((key, !matches!(col.column.options.sort, Some(ast::OrderBySort::Desc))));
        }
        let collation = collations.first().cloned();
        let one = collations.iter().all(|c| Some(c) == collation.as_ref());
        let all_columns = keys.iter().all(|(k, _)| matches!(k, IndexKey::Field(_)));
        if collation.is_some() && (collations.len() != keys.len() || !one || !all_columns) {
            return Err(CompileError::unsupported("an index whose keys are not all columns under one COLLATE (a MongoDB index has one collation)", "CREATE INDEX"));
        }
        Ok((keys, collation))
    }

    /// An index expression: like a generated column's, and deterministic, as
    /// in SQL (an index on RANDOM() or NOW() would not find its rows again).
    fn index_expr(&mut self, e: &ast::Expr) -> Result<Expr> {
        let v = self.generated_expr(e)?;
        let volatile = v.any(&|x| matches!(x, Expr::Function { func: Func::Random | Func::Now, .. } | Expr::Param(_)));
        if volatile {
            return Err(CompileError::unsupported("index on a non-deterministic expression (RANDOM(), NOW() or a parameter)", e));
        }
        Ok(v)
    }

    fn alter_table(&mut self, a: &ast::AlterTable) -> Result<Ddl> {
        let collection = object_name(&a.name)?;
        let [op] = a.operations.as_slice() else {
            return Err(CompileError::unsupported("ALTER TABLE with several operations", a));
        };
        self.scopes.push();
        self.scopes.add_source(SourceName { name: collection.clone(), derived_columns: None });
        let r = self.alter_op(collection, op);
        self.scopes.pop();
        r
    }

    fn alter_op(&mut self, collection: String, op: &AlterTableOperation) -> Result<Ddl> {
        Ok(match op {
            AlterTableOperation::AddColumn { column_def, column_position: None, .. } => {
                let (column, raw) = self.column_def(column_def)?;
                let mut checks = Vec::with_capacity(raw.len());
                for (name, e) in raw {
                    checks.push((name, self.check(&e)?));
                }
                Ddl::AddColumn { collection, column, checks }
            }
            AlterTableOperation::DropColumn { column_names, .. } => match column_names.as_slice() {
                [c] => Ddl::DropColumn { collection, column: c.value.clone() },
                _ => return Err(CompileError::unsupported("DROP of several columns", op)),
            },
            AlterTableOperation::RenameColumn { old_column_name, new_column_name } => Ddl::RenameColumn {
                collection,
                from: old_column_name.value.clone(),
                to: new_column_name.value.clone(),
            },
            AlterTableOperation::RenameTable { table_name } => {
                let to = match table_name {
                    ast::RenameTableNameKind::To(n) | ast::RenameTableNameKind::As(n) => object_name(n)?,
                };
                Ddl::RenameTable { from: collection, to }
            }
            AlterTableOperation::AlterColumn { column_name, op: col_op } => {
                let change = match col_op {
                    AlterColumnOperation::SetNotNull => ColumnChange::Nullable(false),
                    AlterColumnOperation::DropNotNull => ColumnChange::Nullable(true),
                    AlterColumnOperation::DropDefault => ColumnChange::DropDefault,
                    AlterColumnOperation::SetDefault { value } => ColumnChange::Default(self.column_default(value)?),
                    AlterColumnOperation::SetDataType { data_type, using: None, .. } => {
                        ColumnChange::Type(data_type.to_string().to_ascii_lowercase())
                    }
                    other => return Err(CompileError::unsupported(format!("ALTER COLUMN {other}"), op)),
                };
                Ddl::AlterColumn { collection, column: column_name.value.clone(), change }
            }
            AlterTableOperation::AddConstraint { constraint, .. } => {
                let (name, constraint) = self.constraint(constraint)?;
                Ddl::AddConstraint { collection, name, constraint }
            }
            AlterTableOperation::DropConstraint { name, .. } => Ddl::DropConstraint { collection, name: name.value.clone() },
            AlterTableOperation::AutoIncrement { value, .. } => {
                let next = match &value.value {
                    ast::Value::Number(n, _) => n.parse::<i64>().ok().filter(|n| *n >= 1),
                    _ => None,
                };
                let Some(next) = next else {
                    return Err(CompileError::unsupported("AUTO_INCREMENT other than a positive integer", op));
                };
                Ddl::SetAutoIncrement { collection, next }
            }
            other => return Err(CompileError::unsupported(format!("ALTER TABLE {}", kind_name(other)), op)),
        })
    }
}

/// One `WITH (name = value)` option of CREATE INDEX: the MongoDB index
/// options djongo's index classes set, with a value of the type MongoDB
/// takes. Anything else is refused rather than dropped.
fn index_option(e: &ast::Expr) -> Result<(String, Literal)> {
    let ast::Expr::BinaryOp { left, op: ast::BinaryOperator::Eq, right } = e else {
        return Err(CompileError::unsupported("CREATE INDEX WITH option other than name = value", e));
    };
    let ast::Expr::Identifier(name) = left.as_ref() else {
        return Err(CompileError::unsupported("CREATE INDEX WITH option name", e));
    };
    let value = match right.as_ref() {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => match n.parse::<i64>() {
                Ok(i) => Literal::Int(i),
                Err(_) => return Err(CompileError::unsupported("CREATE INDEX WITH option value", e)),
            },
            ast::Value::Boolean(b) => Literal::Bool(*b),
            ast::Value::SingleQuotedString(s) => Literal::Str(s.clone()),
            _ => return Err(CompileError::unsupported("CREATE INDEX WITH option value", e)),
        },
        _ => return Err(CompileError::unsupported("CREATE INDEX WITH option value", e)),
    };
    let valid = match (name.value.as_str(), &value) {
        ("expireAfterSeconds", Literal::Int(_)) | ("sparse" | "hidden", Literal::Bool(_)) => true,
        // The index kind puts its word in the key pattern: {f: "text"},
        // {f: "hashed"}, {f: "2dsphere"}, {"f.$**": 1}.
        ("kind", Literal::Str(k)) => IndexKind::parse(k).is_some(),
        ("default_language" | "language_override", Literal::Str(_)) => true,
        // Documents travel as JSON text, checked here.
        ("weights" | "wildcardProjection" | "collation", Literal::Str(json)) => {
            matches!(serde_json::from_str::<serde_json::Value>(json), Ok(serde_json::Value::Object(_)))
        }
        _ => false,
    };
    if !valid {
        return Err(CompileError::unsupported(
            format!(
                "CREATE INDEX option {} (known: expireAfterSeconds = <integer>, sparse = <boolean>, hidden = <boolean>, \
                 kind = 'text' | 'hashed' | '2dsphere' | 'wildcard', default_language = '<language>', language_override = '<field>', \
                 weights | wildcardProjection | collation = '<JSON object>')",
                name.value
            ),
            e,
        ));
    }
    Ok((name.value.clone(), value))
}

/// The keys of CREATE INDEX (each with its direction: ascending when true),
/// and the collation they are all under, if any.
type IndexKeys = (Vec<(IndexKey, bool)>, Option<String>);

/// A `FOREIGN KEY ... REFERENCES` clause (of a table or, with its column
/// filled in, of a column). Django applies `on_delete` itself; an action the
/// server would have to take is not implemented, and refused.
fn foreign_key(f: &ast::ForeignKeyConstraint, place: &dyn std::fmt::Display) -> Result<crate::plan::ForeignKey> {
    if f.on_delete.is_some() || f.on_update.is_some() {
        return Err(CompileError::unsupported("FOREIGN KEY with ON DELETE / ON UPDATE", place));
    }
    let table = f.foreign_table.0.last().and_then(|p| p.as_ident()).map(|i| i.value.clone());
    let Some(table) = table else { return Err(CompileError::unsupported("FOREIGN KEY's referenced table", place)) };
    Ok(crate::plan::ForeignKey {
        columns: f.columns.iter().map(|i| i.value.clone()).collect(),
        table,
        referenced: f.referred_columns.iter().map(|i| i.value.clone()).collect(),
    })
}
