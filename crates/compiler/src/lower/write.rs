//! INSERT / UPDATE / DELETE plans.
use bson::{doc, Bson, Document};

use super::{literal, param_slot, Ctx, Env, Fields};
use crate::error::{CompileError, Result};
use crate::plan::{Delete, Expr, Insert, Update};

/// A value of an inserted row: data, so no `$literal` wrapping is needed.
fn row_value(v: &Option<Expr>) -> Bson {
    match v {
        // DEFAULT: null; the executor fills the auto-increment column.
        None => Bson::Null,
        Some(Expr::Literal(l)) => literal(l),
        Some(Expr::Param(i)) => param_slot(*i),
        Some(_) => Bson::Null,
    }
}

pub(crate) fn insert(i: &Insert) -> Result<Document> {
    let rows: Vec<Bson> = i.rows.iter().map(|r| Bson::Array(r.iter().map(row_value).collect())).collect();
    let mut plan = doc! {
        "op": "insert",
        "collection": &i.collection,
        "columns": &i.columns,
        "rows": rows,
        "returning": &i.returning,
    };
    if i.ignore_conflicts {
        plan.insert("on_conflict", "ignore");
    }
    Ok(plan)
}

const SINGLE: [String; 1] = [String::new()];

/// UPDATE/DELETE filters run as `update`/`delete` commands: no pipeline
/// stages can precede them, so correlated subqueries are refused there.
fn write_filter(ctx: &Ctx, f: &Option<Expr>) -> Result<Document> {
    let env = Env { fields: Fields::Prefixed(&SINGLE), outer: None, group: None, pre: None };
    match f {
        Some(f) => ctx.filter(env, f),
        None => Ok(Document::new()),
    }
}

pub(crate) fn update(ctx: &Ctx, u: &Update) -> Result<Document> {
    let env = Env { fields: Fields::Prefixed(&SINGLE), outer: None, group: None, pre: None };
    let mut set = Document::new();
    for (column, value) in &u.assignments {
        if value.has_aggregate() {
            return Err(CompileError::unsupported("aggregate in UPDATE SET", column));
        }
        set.insert(column.clone(), ctx.value(env, value)?);
    }
    Ok(doc! {
        "op": "update",
        "collection": &u.collection,
        "filter": write_filter(ctx, &u.filter)?,
        "update": [ { "$set": set } ],
    })
}

pub(crate) fn delete(ctx: &Ctx, d: &Delete) -> Result<Document> {
    Ok(doc! {
        "op": "delete",
        "collection": &d.collection,
        "filter": write_filter(ctx, &d.filter)?,
    })
}
