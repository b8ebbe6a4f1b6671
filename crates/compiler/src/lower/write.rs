//! INSERT / UPDATE / DELETE plans.
use bson::{doc, Bson, Document};

use super::{literal, param_slot, read, Ctx, Env, Fields};
use crate::error::{CompileError, Result};
use crate::plan::{ColumnRef, Delete, Expr, FieldPath, Insert, InsertValue, OnConflict, ProjectItem, Query, Select, Source, Update};

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
/// stages can precede them (correlated ones go through `selection`).
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
    let mut computed = Vec::new();
    for (column, value) in &u.assignments {
        if value.has_aggregate() {
            return Err(CompileError::unsupported("aggregate in UPDATE SET", column));
        }
        if value.has_correlated() {
            computed.push((column.clone(), value.clone()));
        } else {
            set.insert(column.clone(), ctx.value(env, value)?);
        }
    }
    let update = if set.is_empty() { Vec::new() } else { vec![doc! { "$set": set }] };
    if computed.is_empty() && !u.filter.as_ref().is_some_and(Expr::has_correlated) {
        return Ok(doc! {
            "op": "update",
            "collection": &u.collection,
            "filter": write_filter(ctx, &u.filter)?,
            "update": update,
        });
    }
    // An update command takes no `$lookup`: a read picks the documents and
    // computes the correlated values, then each document is updated by _id.
    let names: Vec<String> = computed.iter().map(|(c, _)| c.clone()).collect();
    let select = selection(ctx, &u.collection, &u.filter, computed.into_iter().map(|(_, v)| v).collect())?;
    Ok(doc! {
        "op": "update",
        "collection": &u.collection,
        "select": select,
        "set": names,
        "update": update,
    })
}

pub(crate) fn delete(ctx: &Ctx, d: &Delete) -> Result<Document> {
    if d.filter.as_ref().is_some_and(Expr::has_correlated) {
        // A delete command takes no `$lookup`: a read picks the _ids.
        return Ok(doc! {
            "op": "delete",
            "collection": &d.collection,
            "select": selection(ctx, &d.collection, &d.filter, Vec::new())?,
        });
    }
    Ok(doc! {
        "op": "delete",
        "collection": &d.collection,
        "filter": write_filter(ctx, &d.filter)?,
    })
}

/// `SELECT _id, values... FROM collection WHERE filter`: the documents a
/// correlated UPDATE/DELETE writes, read as any SELECT is (correlated
/// subqueries become `$lookup`s), with the values to set.
fn selection(ctx: &Ctx, collection: &str, filter: &Option<Expr>, values: Vec<Expr>) -> Result<Document> {
    let id = Expr::Column(ColumnRef { scope: 0, source: 0, path: FieldPath::key("_id") });
    let mut projection = vec![ProjectItem { expr: id, label: "_id".into() }];
    projection.extend(values.into_iter().enumerate().map(|(i, expr)| ProjectItem { expr, label: format!("v{i}") }));
    let select = Select::plain(Some(Source::Table { collection: collection.to_string() }), filter.clone(), projection);
    Ok(read::lower_query(ctx, &Query::Select(Box::new(select)), None)?.into_document())
}
