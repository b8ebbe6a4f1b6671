//! Queries → `find` (plain single-collection reads) or `aggregate`.
//!
//! Pipeline order for a SELECT: base-table `$match` (pushed before joins so
//! it can use indexes and shrink the join) → `$lookup`/`$unwind` per join →
//! remaining `$match` → `$group` → HAVING `$match` → `$project` to `c0..cN`
//! → DISTINCT `$group` → `$sort` / `$skip` / `$limit`.
use std::cell::RefCell;

use bson::{doc, Bson, Document};

use super::expr::{aggregate_default, is_null, not_null};
use super::{join_field, literal, window, Ctx, Env, Fields, Outer, Vars, RESERVED_PREFIX};
use crate::error::{CompileError, Result};
use crate::plan::{AggFunc, CmpOp, Expr, JoinKind, OrderItem, Query, Select, SetOp, SetOpKind, SortKey, Source};

pub(crate) struct ReadPlan {
    collection: Option<String>,
    body: Body,
    columns: Vec<String>,
    /// `SELECT *`: rows are whole documents, columns come from the data.
    star: bool,
}

#[allow(clippy::large_enum_variant)] // built once per statement
enum Body {
    Find {
        filter: Document,
        projection: Document,
        sort: Option<Document>,
        skip: Option<Bson>,
        limit: Option<Bson>,
    },
    Aggregate {
        pipeline: Vec<Document>,
        default_row: Option<Vec<Bson>>,
    },
}

impl ReadPlan {
    pub(crate) fn into_document(self) -> Document {
        let mut d = Document::new();
        match self.body {
            Body::Find { filter, projection, sort, skip, limit } => {
                d.insert("op", "find");
                d.insert("collection", self.collection);
                d.insert("filter", filter);
                d.insert("projection", projection);
                if let Some(s) = sort {
                    d.insert("sort", s);
                }
                if let Some(s) = skip {
                    d.insert("skip", s);
                }
                if let Some(l) = limit {
                    d.insert("limit", l);
                }
            }
            Body::Aggregate { pipeline, default_row } => {
                d.insert("op", "aggregate");
                d.insert("collection", self.collection);
                d.insert("pipeline", pipeline);
                d.insert("default_row", default_row);
            }
        }
        d.insert("columns", self.columns);
        if self.star {
            d.insert("star", true);
        }
        d
    }

    /// First value of the default row (for scalar subqueries).
    pub(crate) fn default_first(&self) -> Option<Bson> {
        match &self.body {
            Body::Aggregate { default_row: Some(r), .. } => r.first().cloned(),
            _ => None,
        }
    }

    /// The plan as pipeline stages, to be inlined into another pipeline
    /// (derived tables, set operations, correlated lookups).
    pub(crate) fn into_stages(self) -> Result<(Option<String>, Vec<Document>)> {
        let n = self.columns.len();
        let stages = match self.body {
            Body::Find { filter, projection, sort, skip, limit } => {
                let mut st = Vec::new();
                if !filter.is_empty() {
                    st.push(doc! { "$match": filter });
                }
                if let Some(s) = sort {
                    st.push(doc! { "$sort": s });
                }
                if let Some(s) = skip {
                    st.push(doc! { "$skip": s });
                }
                if let Some(l) = limit {
                    st.push(doc! { "$limit": l });
                }
                // `SELECT *` (a derived table's whole documents) projects nothing.
                if !self.star {
                    st.push(doc! { "$project": projection });
                }
                st
            }
            Body::Aggregate { mut pipeline, default_row } => {
                if let Some(row) = default_row {
                    // One row even on empty input: append the default row and
                    // keep the first document.
                    let mut d = Document::new();
                    for (i, v) in row.into_iter().enumerate().take(n) {
                        d.insert(format!("c{i}"), v);
                    }
                    pipeline.push(doc! { "$unionWith": { "pipeline": [ { "$documents": [d] } ] } });
                    pipeline.push(doc! { "$limit": 1 });
                }
                pipeline
            }
        };
        Ok((self.collection, stages))
    }
}

/// How to read group keys and aggregates after `$group`.
pub(crate) struct GroupMap {
    /// (expression, value after $group, plain field path if it is one)
    entries: Vec<(Expr, Bson, Option<String>)>,
}

impl GroupMap {
    pub(crate) fn lookup(&self, e: &Expr) -> Option<Bson> {
        self.entries.iter().find(|(k, _, _)| k == e).map(|(_, v, _)| v.clone())
    }
    pub(crate) fn plain_path(&self, e: &Expr) -> Option<String> {
        self.entries.iter().find(|(k, _, _)| k == e).and_then(|(_, _, p)| p.clone())
    }
}

/// A LIMIT or OFFSET (`clause`): a literal (checked when built), or a
/// parameter slot marked with its clause, checked at bind time.
fn limit_value(e: &Option<Expr>, clause: &str) -> Option<Bson> {
    match e {
        Some(Expr::Literal(l)) => Some(literal(l)),
        Some(Expr::Param(i)) => Some(Bson::Document(doc! { "$param": *i as i64, "count": clause })),
        _ => None,
    }
}

pub(crate) fn lower_query(ctx: &Ctx, q: &Query, outer: Option<&Outer>) -> Result<ReadPlan> {
    match q {
        Query::Select(s) => lower_select(ctx, s, outer),
        Query::SetOp(s) => lower_setop(ctx, s, outer),
    }
}

fn lower_setop(ctx: &Ctx, s: &SetOp, outer: Option<&Outer>) -> Result<ReadPlan> {
    let Some((first, rest)) = s.inputs.split_first() else {
        return Err(CompileError::unsupported("set operation without queries", "UNION/INTERSECT/EXCEPT"));
    };
    if s.inputs.iter().any(Query::is_star) {
        return Err(CompileError::unsupported("SELECT * in a set operation (the compiler knows no schema; list the columns)", "*"));
    }
    let columns = first.columns();
    let n = columns.len();
    if rest.iter().any(|q| q.columns().len() != n) {
        return Err(CompileError::unsupported("set operation with different column counts", "UNION/INTERSECT/EXCEPT"));
    }
    let tagged = s.kind != SetOpKind::Union;
    if tagged && s.all {
        return Err(CompileError::unsupported("INTERSECT ALL / EXCEPT ALL", "set operation"));
    }
    // INTERSECT and EXCEPT tag each row with the index of its input, then
    // group equal rows and keep them by the set of inputs they came from.
    let side = format!("{RESERVED_PREFIX}side");
    let (collection, mut pipeline) = pipeline_of(lower_query(ctx, first, outer)?)?;
    if tagged {
        pipeline.push(doc! { "$set": { side.clone(): 0 } });
    }
    for (i, q) in rest.iter().enumerate() {
        let (coll, mut stages) = lower_query(ctx, q, outer)?.into_stages()?;
        if tagged {
            stages.push(doc! { "$set": { side.clone(): (i + 1) as i32 } });
        }
        let mut union = Document::new();
        if let Some(c) = coll {
            union.insert("coll", c);
        }
        union.insert("pipeline", stages);
        pipeline.push(doc! { "$unionWith": union });
    }
    let row_key = || {
        let mut k = Document::new();
        for i in 0..n {
            k.insert(format!("c{i}"), Bson::Document(doc! { "$ifNull": [format!("$c{i}"), Bson::Null] }));
        }
        k
    };
    match (s.kind, s.all) {
        (SetOpKind::Union, true) => {}
        (SetOpKind::Union, false) => {
            pipeline.push(doc! { "$group": { "_id": row_key() } });
            pipeline.push(doc! { "$replaceRoot": { "newRoot": "$_id" } });
        }
        (kind, _) => {
            pipeline.push(doc! { "$group": { "_id": row_key(), "sides": { "$addToSet": format!("${side}") } } });
            let cond = if kind == SetOpKind::Intersect {
                let all: Vec<Bson> = (0..s.inputs.len()).map(|i| Bson::Int32(i as i32)).collect();
                doc! { "sides": { "$all": all } }
            } else {
                doc! { "sides": { "$eq": [0] } }
            };
            pipeline.push(doc! { "$match": cond });
            pipeline.push(doc! { "$replaceRoot": { "newRoot": "$_id" } });
        }
    }
    let mut null_flags = Document::new();
    if !s.order_by.is_empty() {
        let mut sort = Document::new();
        for (j, o) in s.order_by.iter().enumerate() {
            if let SortKey::Output(i) = o.key {
                let key = format!("c{i}");
                if needs_null_key(o) {
                    let name = format!("{RESERVED_PREFIX}n{j}");
                    null_flags.insert(name.clone(), null_flag(&key));
                    sort.insert(name, sort_dir(o));
                }
                sort.entry(key).or_insert(sort_dir(o));
            }
        }
        if !null_flags.is_empty() {
            pipeline.push(doc! { "$set": null_flags.clone() });
        }
        pipeline.push(doc! { "$sort": sort });
    }
    if let Some(v) = limit_value(&s.offset, "OFFSET") {
        pipeline.push(doc! { "$skip": v });
    }
    if let Some(v) = limit_value(&s.limit, "LIMIT") {
        pipeline.push(doc! { "$limit": v });
    }
    if !null_flags.is_empty() {
        pipeline.push(doc! { "$unset": null_flags.keys().cloned().collect::<Vec<_>>() });
    }
    Ok(ReadPlan { collection, body: Body::Aggregate { pipeline, default_row: None }, columns, star: false })
}

/// A read plan as a collection + pipeline; a `find` is converted.
fn pipeline_of(plan: ReadPlan) -> Result<(Option<String>, Vec<Document>)> {
    let (c, mut stages) = plan.into_stages()?;
    if c.is_none() && !stages.first().is_some_and(|s| s.contains_key("$documents")) {
        stages.insert(0, doc! { "$documents": [ {} ] });
    }
    Ok((c, stages))
}

fn sort_dir(o: &OrderItem) -> Bson {
    Bson::Int32(if o.descending { -1 } else { 1 })
}

/// `1` when the field `key` of the document is NULL or missing, else `0`.
fn null_flag(key: &str) -> Bson {
    Bson::Document(doc! { "$cond": [is_null(Bson::String(format!("${key}"))), 1, 0] })
}

/// NULLs sort first ascending and last descending in MongoDB; an explicit
/// NULLS FIRST/LAST that differs needs an extra key.
fn needs_null_key(o: &OrderItem) -> bool {
    matches!(o.nulls_first, Some(nf) if nf == o.descending)
}

fn lower_select(ctx: &Ctx, s: &Select, outer: Option<&Outer>) -> Result<ReadPlan> {
    let columns: Vec<String> = s.projection.iter().map(|p| p.label.clone()).collect();
    let mut prefixes = vec![String::new()];
    for k in 1..=s.joins.len() {
        prefixes.push(format!("{}.", join_field(k)));
    }
    let pre: RefCell<Vec<Document>> = RefCell::new(Vec::new());
    let env = Env { fields: Fields::Prefixed(&prefixes), outer, group: None, pre: Some(&pre) };

    let any_correlated = s.filter.as_ref().is_some_and(Expr::has_correlated)
        || s.projection.iter().any(|p| p.expr.has_correlated())
        || s.having.as_ref().is_some_and(Expr::has_correlated)
        || s.joins.iter().any(|j| j.on.has_correlated())
        || s.order_by.iter().any(|o| matches!(&o.key, SortKey::Expr(e) if e.has_correlated()));

    let windowed = window::has_windows(s);

    // --- find: one table, no joins, grouping, DISTINCT, windows or computed sort keys.
    let findable = s.joins.is_empty() && !s.aggregated && !s.distinct && !windowed && !any_correlated && outer.is_none();
    if s.star && !(findable && matches!(s.from, Some(Source::Table { .. }))) {
        return Err(CompileError::Unsupported {
            construct: "SELECT * over joins, groups, DISTINCT or subqueries (the compiler knows no schema; list the columns)".into(),
            fragment: "*".into(),
        });
    }
    if let (Some(Source::Table { collection }), true) = (&s.from, findable) {
        if let Some(sort) = find_sort(ctx, env, s) {
            let filter = match &s.filter {
                Some(f) => ctx.filter(env, f)?,
                None => Document::new(),
            };
            let projection = if s.star { Document::new() } else { project_doc(ctx, env, s)? };
            return Ok(ReadPlan {
                collection: Some(collection.clone()),
                body: Body::Find {
                    filter,
                    projection,
                    sort: if sort.is_empty() { None } else { Some(sort) },
                    skip: limit_value(&s.offset, "OFFSET"),
                    limit: limit_value(&s.limit, "LIMIT"),
                },
                columns,
                star: s.star,
            });
        }
    }
    if s.star {
        return Err(CompileError::Unsupported {
            construct: "SELECT * with an ORDER BY that needs a pipeline (list the columns)".into(),
            fragment: "*".into(),
        });
    }

    // --- aggregate
    let mut pipeline = Vec::new();
    let collection = match &s.from {
        None => {
            pipeline.push(doc! { "$documents": [ {} ] });
            None
        }
        Some(Source::Table { collection }) => Some(collection.clone()),
        Some(Source::Derived(q)) => {
            // Inlined here, it sees the same enclosing queries as this one.
            let (c, stages) = pipeline_of(lower_query(ctx, q, outer)?)?;
            pipeline.extend(stages);
            c
        }
    };
    let conjuncts = s.filter.clone().map(Expr::conjuncts).unwrap_or_default();
    let (early, late): (Vec<Expr>, Vec<Expr>) =
        conjuncts.into_iter().partition(|c| c.only_source(0) && !c.has_correlated());
    if !early.is_empty() {
        let f = ctx.filter(env, &Expr::And(early))?;
        pipeline.append(&mut pre.borrow_mut());
        if !f.is_empty() {
            pipeline.push(doc! { "$match": f });
        }
    }
    for (i, j) in s.joins.iter().enumerate() {
        let k = i + 1;
        pipeline.extend(join_stages(ctx, env, k, &j.on, &j.collection, j.kind)?);
    }
    if !late.is_empty() {
        let f = ctx.filter(env, &Expr::And(late))?;
        pipeline.append(&mut pre.borrow_mut());
        if !f.is_empty() {
            pipeline.push(doc! { "$match": f });
        }
    }

    let windows_before = ctx.windows.borrow().len();
    // Windows see the rows of the SELECT: the input rows, or the groups (after
    // HAVING) when it is grouped.
    if windowed && !s.aggregated {
        pipeline.extend(ctx.window_stages(env, s)?);
    }

    // COUNT(*) alone: `$count`, which engines can answer from metadata/indexes.
    if s.aggregated && s.group_by.is_empty() && s.having.is_none() && s.limit.is_none() && s.offset.is_none()
        && matches!(s.projection.as_slice(), [p] if matches!(p.expr, Expr::Aggregate { func: AggFunc::CountStar, .. }))
    {
        pipeline.push(doc! { "$count": "c0" });
        return Ok(ReadPlan { collection, body: Body::Aggregate { pipeline, default_row: Some(vec![Bson::Int64(0)]) }, columns, star: false });
    }

    let group_map;
    let mut env = env;
    let mut default_row = None;
    if s.aggregated {
        let (stage, map) = group_stage(ctx, env, s)?;
        pipeline.append(&mut pre.borrow_mut());
        // Without GROUP BY, SQL gives one row even on no input. When every
        // output is a bare aggregate, the executor supplies it (default_row);
        // otherwise (COALESCE(SUM(x), 0), SUM(x) + 1, a literal) the outputs
        // are computed from a stand-in group with the empty-input values.
        let bare = s.projection.iter().all(|p| matches!(p.expr, Expr::Aggregate { .. }));
        let stand_in = (s.group_by.is_empty() && s.having.is_none() && !bare).then(|| empty_group(&stage));
        pipeline.push(stage);
        if let Some(d) = stand_in {
            pipeline.push(doc! { "$unionWith": { "pipeline": [ { "$documents": [d] } ] } });
            pipeline.push(doc! { "$limit": 1 });
        }
        group_map = map;
        env.group = Some(&group_map);
        if let Some(h) = &s.having {
            let f = ctx.filter(env, h)?;
            pipeline.append(&mut pre.borrow_mut());
            pipeline.push(doc! { "$match": f });
        }
        if windowed {
            let stages = ctx.window_stages(env, s)?;
            pipeline.append(&mut pre.borrow_mut());
            pipeline.extend(stages);
        }
        if s.group_by.is_empty() && s.having.is_none() && bare {
            default_row = Some(
                s.projection
                    .iter()
                    .map(|p| match &p.expr {
                        Expr::Aggregate { func, .. } => aggregate_default(*func),
                        _ => Bson::Null,
                    })
                    .collect(),
            );
        }
    }

    // Projection, plus hidden sort keys for ORDER BY expressions not selected.
    // A NULLS FIRST/LAST flag reads the sort key from the projected
    // document, so it is computed in a stage after `$project` (a field of
    // the same `$project` would read the input document, where `c<i>` does
    // not exist yet).
    let mut project = project_doc(ctx, env, s)?;
    let mut sort = Document::new();
    let mut hidden = Vec::new();
    let mut null_flags = Document::new();
    for (j, o) in s.order_by.iter().enumerate() {
        let key = match &o.key {
            SortKey::Output(i) => format!("c{i}"),
            SortKey::Expr(e) => {
                let name = format!("{RESERVED_PREFIX}s{j}");
                project.insert(name.clone(), ctx.value(env, e)?);
                hidden.push(name.clone());
                name
            }
        };
        if needs_null_key(o) {
            let name = format!("{RESERVED_PREFIX}n{j}");
            null_flags.insert(name.clone(), null_flag(&key));
            sort.insert(name.clone(), sort_dir(o));
            hidden.push(name);
        }
        sort.entry(key).or_insert(sort_dir(o));
    }
    pipeline.append(&mut pre.borrow_mut());
    pipeline.push(doc! { "$project": project });
    if s.distinct {
        let mut key = Document::new();
        for i in 0..s.projection.len() {
            key.insert(format!("c{i}"), Bson::Document(doc! { "$ifNull": [format!("$c{i}"), Bson::Null] }));
        }
        for h in hidden.iter().filter(|h| !null_flags.contains_key(h.as_str())) {
            key.insert(h.clone(), Bson::Document(doc! { "$ifNull": [format!("${h}"), Bson::Null] }));
        }
        pipeline.push(doc! { "$group": { "_id": key } });
        pipeline.push(doc! { "$replaceRoot": { "newRoot": "$_id" } });
    }
    if !null_flags.is_empty() {
        pipeline.push(doc! { "$set": null_flags });
    }
    if !sort.is_empty() {
        pipeline.push(doc! { "$sort": sort });
    }
    if let Some(v) = limit_value(&s.offset, "OFFSET") {
        pipeline.push(doc! { "$skip": v });
    }
    if let Some(v) = limit_value(&s.limit, "LIMIT") {
        pipeline.push(doc! { "$limit": v });
    }
    if !hidden.is_empty() {
        pipeline.push(doc! { "$unset": hidden });
    }
    // This SELECT's windows are not visible to the queries around it.
    ctx.windows.borrow_mut().truncate(windows_before);
    Ok(ReadPlan { collection, body: Body::Aggregate { pipeline, default_row }, columns, star: false })
}

/// `{_id: 0, c0: <expr>, ...}`.
fn project_doc(ctx: &Ctx, env: Env, s: &Select) -> Result<Document> {
    let mut p = doc! { "_id": 0 };
    for (i, item) in s.projection.iter().enumerate() {
        p.insert(format!("c{i}"), ctx.value(env, &item.expr)?);
    }
    Ok(p)
}

/// The `find` sort document, or `None` if ORDER BY needs a pipeline.
fn find_sort(ctx: &Ctx, env: Env, s: &Select) -> Option<Document> {
    let mut sort = Document::new();
    for o in &s.order_by {
        if needs_null_key(o) {
            return None;
        }
        let e = match &o.key {
            SortKey::Output(i) => &s.projection.get(*i)?.expr,
            SortKey::Expr(e) => e,
        };
        let path = ctx.field_path(env, e)?;
        sort.entry(path).or_insert(sort_dir(o));
    }
    Some(sort)
}

/// `$lookup` (+ `$unwind`) for join `k`. A plain equi-join uses
/// localField/foreignField (index-friendly); other conditions go into the
/// lookup's pipeline, in the query language where possible.
fn join_stages(ctx: &Ctx, env: Env, k: usize, on: &Expr, collection: &str, kind: JoinKind) -> Result<Vec<Document>> {
    let as_field = join_field(k);
    let mut conjuncts = on.clone().conjuncts();
    let mut lookup = doc! { "from": collection };
    // Find `local = foreign` among the conjuncts.
    let equi = conjuncts.iter().position(|c| match c {
        Expr::Compare { op: CmpOp::Eq, left, right } => equi_sides(ctx, env, k, left, right).is_some(),
        _ => false,
    });
    if let Some(pos) = equi {
        let c = conjuncts.remove(pos);
        if let Expr::Compare { left, right, .. } = &c {
            if let Some((local, foreign)) = equi_sides(ctx, env, k, left, right) {
                lookup.insert("localField", local);
                lookup.insert("foreignField", foreign);
            }
        }
    }
    if !conjuncts.is_empty() || equi.is_none() {
        let vars: Vars = Default::default();
        let inner = Env { fields: Fields::JoinPipeline { local: k, vars: &vars }, outer: env.outer, group: None, pre: None };
        let f = ctx.filter(inner, &Expr::And(conjuncts))?;
        let mut let_doc = Document::new();
        for (c, name) in vars.borrow().iter() {
            let_doc.insert(name.clone(), ctx.column(env, c)?);
        }
        if !let_doc.is_empty() {
            lookup.insert("let", let_doc);
        }
        let pipeline: Vec<Document> = if f.is_empty() { vec![] } else { vec![doc! { "$match": f }] };
        lookup.insert("pipeline", pipeline);
    }
    lookup.insert("as", as_field.clone());
    Ok(vec![
        doc! { "$lookup": lookup },
        doc! { "$unwind": { "path": format!("${as_field}"), "preserveNullAndEmptyArrays": kind == JoinKind::LeftOuter } },
    ])
}

/// For `a = b` where one side is a column of join `k` and the other a
/// column of an earlier source: (local path, foreign path).
fn equi_sides(ctx: &Ctx, env: Env, k: usize, left: &Expr, right: &Expr) -> Option<(String, String)> {
    fn side(e: &Expr) -> Option<&crate::plan::ColumnRef> {
        match e {
            Expr::Column(c) if c.scope == 0 => Some(c),
            _ => None,
        }
    }
    let (l, r) = (side(left)?, side(right)?);
    let (local, foreign) = if r.source == k && l.source < k {
        (left, r)
    } else if l.source == k && r.source < k {
        (right, l)
    } else {
        return None;
    };
    Some((ctx.field_path(env, local)?, foreign.path.dotted()?))
}

/// The document a `$group` without GROUP BY would give on no input:
/// sums 0, sets empty, every other accumulator NULL.
fn empty_group(stage: &Document) -> Document {
    let mut out = Document::new();
    if let Ok(group) = stage.get_document("$group") {
        for (name, acc) in group.iter().filter(|(k, _)| k.as_str() != "_id") {
            let op = match acc {
                Bson::Document(d) => d.keys().next().map(String::as_str).unwrap_or(""),
                _ => "",
            };
            let value = match op {
                "$sum" => Bson::Int32(0),
                "$addToSet" | "$push" => Bson::Array(Vec::new()),
                _ => Bson::Null,
            };
            out.insert(name.clone(), value);
        }
    }
    out
}

/// `$group` for a grouped query and the map to read its results.
fn group_stage(ctx: &Ctx, env: Env, s: &Select) -> Result<(Document, GroupMap)> {
    let mut id = Document::new();
    let mut entries = Vec::new();
    for (i, g) in s.group_by.iter().enumerate() {
        let name = format!("g{i}");
        id.insert(name.clone(), Bson::Document(doc! { "$ifNull": [ctx.value(env, g)?, Bson::Null] }));
        entries.push((g.clone(), Bson::String(format!("$_id.{name}")), Some(format!("_id.{name}"))));
    }
    let mut group = doc! { "_id": if s.group_by.is_empty() { Bson::Null } else { Bson::Document(id) } };
    // Every aggregate (and every bare column outside the GROUP BY list,
    // functionally dependent on it) gets an accumulator.
    let mut exprs: Vec<&Expr> = s.projection.iter().map(|p| &p.expr).collect();
    exprs.extend(s.having.iter());
    exprs.extend(s.order_by.iter().filter_map(|o| match &o.key {
        SortKey::Expr(e) => Some(e),
        _ => None,
    }));
    let mut n = 0;
    for e in exprs {
        collect_accumulators(ctx, env, e, &mut entries, &mut group, &mut n)?;
    }
    Ok((doc! { "$group": group }, GroupMap { entries }))
}

fn collect_accumulators(ctx: &Ctx, env: Env, e: &Expr, entries: &mut Vec<(Expr, Bson, Option<String>)>, group: &mut Document, n: &mut usize) -> Result<()> {
    if entries.iter().any(|(k, _, _)| k == e) {
        return Ok(());
    }
    let mut add = |group: &mut Document, acc: Document| -> String {
        let name = format!("a{n}");
        *n += 1;
        group.insert(name.clone(), acc);
        name
    };
    match e {
        Expr::Aggregate { func, arg, distinct } => {
            let arg_v = match arg {
                Some(a) => Some(ctx.value(env, a)?),
                None => None,
            };
            let (value, plain) = match (func, arg_v, distinct) {
                (AggFunc::CountStar, _, _) => {
                    let a = add(group, doc! { "$sum": 1 });
                    (Bson::String(format!("${a}")), Some(a))
                }
                (func, Some(v), true) => {
                    // Aggregate over the set of distinct non-NULL values.
                    let a = add(group, doc! { "$addToSet": v });
                    let set = Bson::Document(doc! { "$filter": { "input": format!("${a}"), "cond": not_null(Bson::String("$$this".into())) } });
                    let value = match func {
                        AggFunc::Count => Bson::Document(doc! { "$size": set }),
                        AggFunc::Sum => Bson::Document(doc! { "$cond": [ { "$eq": [ { "$size": set.clone() }, 0 ] }, Bson::Null, { "$sum": set } ] }),
                        AggFunc::Avg => Bson::Document(doc! { "$avg": set }),
                        AggFunc::Min => Bson::Document(doc! { "$min": set }),
                        AggFunc::Max => Bson::Document(doc! { "$max": set }),
                        _ => return Err(CompileError::unsupported("DISTINCT in this aggregate", format!("{e:?}"))),
                    };
                    (value, None)
                }
                (AggFunc::Count, Some(v), false) => {
                    let a = add(group, doc! { "$sum": { "$cond": [not_null(v), 1, 0] } });
                    (Bson::String(format!("${a}")), Some(a))
                }
                (AggFunc::Sum, Some(v), false) => {
                    // SUM over no non-NULL value is NULL, not 0.
                    let s = add(group, doc! { "$sum": v.clone() });
                    let c = add(group, doc! { "$sum": { "$cond": [not_null(v), 1, 0] } });
                    (Bson::Document(doc! { "$cond": [ { "$eq": [format!("${c}"), 0] }, Bson::Null, format!("${s}") ] }), None)
                }
                (AggFunc::VarPop | AggFunc::VarSamp, Some(v), false) => {
                    // Variance is the square of the standard deviation.
                    let op = if *func == AggFunc::VarPop { "$stdDevPop" } else { "$stdDevSamp" };
                    let mut acc = Document::new();
                    acc.insert(op, v);
                    let a = add(group, acc);
                    (Bson::Document(doc! { "$pow": [format!("${a}"), 2] }), None)
                }
                (func, Some(v), false) => {
                    let op = match func {
                        AggFunc::Avg => "$avg",
                        AggFunc::Min => "$min",
                        AggFunc::Max => "$max",
                        AggFunc::StdDevPop => "$stdDevPop",
                        AggFunc::StdDevSamp => "$stdDevSamp",
                        _ => "$max",
                    };
                    let mut acc = Document::new();
                    acc.insert(op, v);
                    let a = add(group, acc);
                    (Bson::String(format!("${a}")), Some(a))
                }
                (_, None, _) => return Err(CompileError::unsupported("aggregate without an argument", format!("{e:?}"))),
            };
            entries.push((e.clone(), value, plain));
        }
        Expr::Column(c) if c.scope == 0 => {
            let a = add(group, doc! { "$first": ctx.value(env, e)? });
            let _ = c;
            entries.push((e.clone(), Bson::String(format!("${a}")), Some(a)));
        }
        // A window runs over the groups: its arguments and keys are values
        // of each group (SUM(SUM(x)) OVER (ORDER BY MAX(y))).
        Expr::Window(w) => {
            for child in w.args.iter().chain(&w.partition_by).chain(w.order_by.iter().map(|(k, _)| k)) {
                collect_accumulators(ctx, env, child, entries, group, n)?;
            }
        }
        other => {
            let mut children = Vec::new();
            other.for_each_child(&mut |c| children.push(c));
            for child in children {
                collect_accumulators(ctx, env, child, entries, group, n)?;
            }
        }
    }
    Ok(())
}


