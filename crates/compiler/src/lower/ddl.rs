//! Schema statements → DDL plans (the executor maps them to `create`,
//! `createIndexes`, `drop`, `renameCollection`, `$set`/`$unset` updates and
//! the `__schema__` collection).
use bson::{doc, Bson, Document};

use super::{literal, param_slot, read, Ctx, Env, Fields};
use crate::error::{CompileError, Result};
use crate::plan::{Check, ColumnChange, ColumnDef, Constraint, Ddl, Expr, IndexKey, IndexKind, Literal};

/// A column DEFAULT: `("default", value)` for a constant, or
/// `("default_expr", aggregation expression)` for one the server evaluates
/// at insert time (`CURRENT_TIMESTAMP` → `$$NOW`).
fn default_value(ctx: &Ctx, e: &Expr) -> Result<(&'static str, Bson)> {
    let constant = match e {
        Expr::Literal(l) => Some(literal(l)),
        Expr::Param(i) => Some(param_slot(*i)),
        Expr::Neg(x) => match x.as_ref() {
            Expr::Literal(Literal::Int(i)) => Some(Bson::Int64(i.wrapping_neg())),
            Expr::Literal(Literal::Float(f)) => Some(Bson::Double(-f)),
            _ => None,
        },
        _ => None,
    };
    match constant {
        Some(v) => Ok(("default", v)),
        None => {
            let env = Env { fields: Fields::Prefixed(&SINGLE), outer: None, group: None, pre: None };
            Ok(("default_expr", ctx.value(env, e)?))
        }
    }
}

fn column(ctx: &Ctx, c: &ColumnDef) -> Result<Document> {
    let mut d = doc! {
        "name": &c.name,
        "type": &c.ty,
        "null": c.nullable,
        "primary_key": c.primary_key,
        "unique": c.unique,
        "auto": c.auto,
    };
    if let Some(v) = &c.default {
        let (key, value) = default_value(ctx, v)?;
        d.insert(key, value);
    }
    if let Some(collation) = &c.collation {
        d.insert("collation", collation);
    }
    if let Some(g) = &c.generated {
        // An aggregation expression over the row, which the executor
        // evaluates whenever the row is written.
        let env = Env { fields: Fields::Prefixed(&SINGLE), outer: None, group: None, pre: None };
        d.insert("generated", ctx.value(env, g)?);
    }
    if let Some((name, fk)) = &c.references {
        d.insert("references", foreign_key(name, fk));
    }
    Ok(d)
}

/// A FOREIGN KEY for the executor (`{name, columns, references: {table, columns}}`).
fn foreign_key(name: &Option<String>, fk: &crate::plan::ForeignKey) -> Document {
    doc! { "name": name.clone(), "columns": fk.columns.clone(), "references": { "table": fk.table.clone(), "columns": fk.referenced.clone() } }
}

const SINGLE: [String; 1] = [String::new()];

/// A CHECK constraint for the executor: its SQL text, the columns it reads,
/// and `expr`, an aggregation expression over the row that is true when the
/// row satisfies it. SQL passes a row whose condition is TRUE or NULL
/// (unknown), unlike WHERE, so only FALSE fails.
fn check(ctx: &Ctx, name: &Option<String>, c: &Check) -> Result<Document> {
    let env = Env { fields: Fields::Prefixed(&SINGLE), outer: None, group: None, pre: None };
    let condition = ctx.value(env, &c.condition)?;
    let passes = match not_false(&condition) {
        Some(is_false) => doc! {"$not": [is_false]},
        None => doc! {"$ne": [condition, false]},
    };
    let mut columns: Vec<String> = Vec::new();
    c.condition.walk(&mut |e| {
        if let Expr::Column(col) = e {
            if let Some(first) = col.path.components().first() {
                if !columns.contains(first) {
                    columns.push(first.clone());
                }
            }
        }
    });
    Ok(doc! {
        "name": name.clone(),
        "check": &c.sql,
        "columns": columns,
        "expr": passes,
    })
}

/// The "is FALSE" test of a three-valued condition lowered as
/// `{$cond: [<is TRUE>, true, {$cond: [<is FALSE>, false, null]}]}`.
fn not_false(condition: &Bson) -> Option<Bson> {
    let Bson::Array(outer) = condition.as_document()?.get("$cond")? else { return None };
    let [_, Bson::Boolean(true), inner] = outer.as_slice() else { return None };
    let Bson::Array(inner) = inner.as_document()?.get("$cond")? else { return None };
    match inner.as_slice() {
        [is_false, Bson::Boolean(false), Bson::Null] => Some(is_false.clone()),
        _ => None,
    }
}

pub(crate) fn lower(ctx: &Ctx, ddl: &Ddl) -> Result<Document> {
    Ok(match ddl {
        Ddl::CreateTable { collection, if_not_exists, columns, unique, primary_key, checks, foreign_keys } => {
            let mut d = doc! {
                "op": "create_table",
                "collection": collection,
                "if_not_exists": if_not_exists,
                "columns": columns.iter().map(|c| column(ctx, c)).collect::<Result<Vec<_>>>()?,
                "unique": unique.iter().map(|(_, cols)| cols.clone()).collect::<Vec<_>>(),
            };
            if unique.iter().any(|(name, _)| name.is_some()) {
                // Parallel to "unique": each constraint's name, or null.
                d.insert("unique_names", unique.iter().map(|(name, _)| name.clone()).collect::<Vec<_>>());
            }
            if !primary_key.is_empty() {
                d.insert("primary_key", primary_key);
            }
            if !checks.is_empty() {
                let checks = checks.iter().map(|(n, c)| check(ctx, n, c)).collect::<Result<Vec<_>>>()?;
                d.insert("checks", checks);
            }
            if !foreign_keys.is_empty() {
                d.insert("foreign_keys", foreign_keys.iter().map(|(n, fk)| foreign_key(n, fk)).collect::<Vec<_>>());
            }
            d
        }
        Ddl::DropTable { collection, if_exists } => doc! { "op": "drop_table", "collection": collection, "if_exists": if_exists },
        Ddl::RenameTable { from, to } => doc! { "op": "rename_table", "collection": from, "to": to },
        Ddl::AddColumn { collection, column: c, checks } => {
            let mut d = doc! { "op": "add_column", "collection": collection, "column": column(ctx, c)? };
            if !checks.is_empty() {
                let checks = checks.iter().map(|(n, c)| check(ctx, n, c)).collect::<Result<Vec<_>>>()?;
                d.insert("checks", checks);
            }
            d
        }
        Ddl::DropColumn { collection, column } => doc! { "op": "drop_column", "collection": collection, "column": column },
        Ddl::RenameColumn { collection, from, to } => doc! { "op": "rename_column", "collection": collection, "from": from, "to": to },
        Ddl::AlterColumn { collection, column, change } => {
            let set = match change {
                ColumnChange::Type(t) => doc! { "type": t },
                ColumnChange::Nullable(n) => doc! { "null": n },
                ColumnChange::Default(v) => {
                    let (key, value) = default_value(ctx, v)?;
                    doc! { key: value }
                }
                ColumnChange::DropDefault => doc! { "drop_default": true },
            };
            doc! { "op": "alter_column", "collection": collection, "column": column, "set": set }
        }
        Ddl::CreateIndex { collection, name, keys, unique, if_not_exists, filter, options, kind, collation } => {
            let env = Env { fields: Fields::Prefixed(&SINGLE), outer: None, group: None, pre: None };
            // The index kind goes into the key pattern, as MongoDB writes it:
            // {f: "text" | "hashed" | "2dsphere"}, {"f.$**": 1}.
            let direction = |asc: bool| match kind {
                Some(k @ (IndexKind::Text | IndexKind::Hashed | IndexKind::TwoDSphere)) => Bson::String(k.word().to_string()),
                Some(IndexKind::Wildcard) => Bson::Int32(1),
                None => Bson::Int32(if asc { 1 } else { -1 }),
            };
            let field = |f: &String| match kind {
                Some(IndexKind::Wildcard) if f != "$**" && !f.ends_with(".$**") => format!("{f}.$**"),
                _ => f.clone(),
            };
            // [field, direction], or [null, direction, expression] for an
            // expression the executor keeps in a hidden field.
            let keys = keys
                .iter()
                .map(|(k, asc)| {
                    let direction = direction(*asc);
                    Ok(Bson::Array(match k {
                        IndexKey::Field(f) => vec![Bson::String(field(f)), direction],
                        IndexKey::Expr(e) => vec![Bson::Null, direction, ctx.value(env, e)?],
                    }))
                })
                .collect::<Result<Vec<Bson>>>()?;
            let filter = match filter {
                Some(f) => Bson::Document(ctx.filter(env, f)?),
                None => Bson::Null,
            };
            let mut plan = doc! { "op": "create_index", "collection": collection, "name": name, "keys": keys, "unique": unique, "if_not_exists": if_not_exists, "where": filter };
            if !options.is_empty() {
                plan.insert("options", options.iter().map(|(k, v)| (k.clone(), literal(v))).collect::<Document>());
            }
            if let Some(collation) = collation {
                plan.insert("collate", collation);
            }
            plan
        }
        Ddl::DropIndex { collection, name, if_exists } => doc! { "op": "drop_index", "collection": collection.clone(), "name": name, "if_exists": if_exists },
        Ddl::AddConstraint { collection, name, constraint } => {
            let mut d = doc! { "op": "add_constraint", "collection": collection, "name": name.clone() };
            match constraint {
                Constraint::Unique(cols) => {
                    d.insert("kind", "unique");
                    d.insert("columns", cols.clone());
                }
                Constraint::PrimaryKey(cols) => {
                    d.insert("kind", "primary_key");
                    d.insert("columns", cols.clone());
                }
                Constraint::ForeignKey(fk) => {
                    d.insert("kind", "foreign_key");
                    d.extend(foreign_key(name, fk));
                }
                Constraint::Check(c) => {
                    d.insert("kind", "check");
                    d.extend(check(ctx, name, c)?);
                }
            }
            d
        }
        Ddl::DropConstraint { collection, name } => doc! { "op": "drop_constraint", "collection": collection, "name": name },
        Ddl::CreateView { name, query } => {
            // MD5()/CHR() of a column, which only the executor computes (on
            // the rows of a SELECT), is refused here as anywhere but there.
            let columns = query.columns();
            let (collection, mut pipeline) = read::lower_query(ctx, query, None)?.into_stages()?;
            let Some(collection) = collection else {
                return Err(CompileError::unsupported("CREATE VIEW over a SELECT without FROM", name));
            };
            if !query.is_star() {
                // The view's fields are its column names.
                let mut rename = doc! { "_id": 0 };
                for (i, label) in columns.iter().enumerate() {
                    if !is_plain_name(label) {
                        return Err(CompileError::unsupported("view column name with '.', '$' or NUL (give it an alias)", label));
                    }
                    rename.insert(label.clone(), format!("$c{i}"));
                }
                pipeline.push(doc! { "$project": rename });
            }
            doc! { "op": "create_view", "view": name, "collection": collection, "pipeline": pipeline }
        }
        Ddl::DropView { name, if_exists } => doc! { "op": "drop_view", "view": name, "if_exists": if_exists },
        Ddl::SetAutoIncrement { collection, next } => doc! { "op": "set_auto_increment", "collection": collection, "next": next },
    })
}

/// A column name MongoDB stores as one field name: not empty, no '.', no
/// leading '$', no NUL.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('$') && !name.contains(['.', '\0'])
}
