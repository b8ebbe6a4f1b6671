//! INSERT / UPDATE / DELETE plans.
use bson::{doc, Bson, Document};

use super::{literal, param_slot, Ctx, Env, Fields};
use crate::error::{CompileError, Result};
use crate::plan::{Delete, Expr, Insert, InsertValue, OnConflict, Update};

/// A value of an inserted row: data, so no `$literal` wrapping is needed.
fn row_value(v: &InsertValue, computed: Option<usize>) -> Result<Bson> {
    Ok(match v {
        // DEFAULT: null; the executor fills in the column's default.
        InsertValue::Default => Bson::Null,
        InsertValue::Data(Expr::Literal(l)) => literal(l),
        InsertValue::Data(Expr::Param(i)) => param_slot(*i),
        InsertValue::Data(other) => {
            return Err(CompileError::unsupported("computed value in INSERT", format!("{other:?}")));
        }
        InsertValue::Computed(column) => {
            let k = computed.ok_or_else(|| CompileError::unsupported("computed value in INSERT", "(no values query)"))?;
            Bson::Document(doc! { "$subquery": k as i64, "scalar": true, "column": *column as i64 })
        }
    })
}

pub(crate) fn insert(i: &Insert) -> Result<Document> {
    let rows = i
        .rows
        .iter()
        .map(|r| r.iter().map(|v| row_value(v, i.computed)).collect::<Result<Vec<_>>>().map(Bson::Array))
        .collect::<Result<Vec<_>>>()?;
    let mut plan = doc! {
        "op": "insert",
        "collection": &i.collection,
        "columns": &i.columns,
        "rows": rows,
        "returning": &i.returning,
    };
    match &i.on_conflict {
        None => {}
        Some(OnConflict::Ignore) => {
            plan.insert("on_conflict", "ignore");
        }
        Some(OnConflict::Update { target, set }) => {
            let set: Vec<Bson> = set.iter().map(|(c, s)| Bson::Array(vec![c.as_str().into(), s.as_str().into()])).collect();
            plan.insert("on_conflict", doc! { "target": target, "update": set });
        }
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
