//! Relational plan → MongoDB plan document (docs/plan-format.md).
//!
//! `filter` writes predicates in the query language (index-friendly) and
//! falls back to `$expr` only when it must; `expr` writes aggregation
//! expressions; `read` chooses `find` or an `aggregate` pipeline; `write` and
//! `ddl` produce the other plan kinds.
mod client;
mod date;
mod ddl;
mod expr;
mod filter;
mod geo;
mod json;
mod like;
mod read;
mod text;
mod window;
mod write;

use std::cell::RefCell;

use bson::{doc, Bson, Document};

pub use like::like_to_regex;

use crate::error::Result;
use crate::plan::{ColumnRef, Literal, SavepointOp, Statement, StatementKind, Window};

/// Reserved field-name prefix for everything the compiler adds to documents
/// in a pipeline (joined rows, correlated lookups, hidden sort keys). Real
/// columns must not start with it.
pub const RESERVED_PREFIX: &str = "__djongo_";

pub fn join_field(k: usize) -> String {
    format!("{RESERVED_PREFIX}join{k}")
}

/// Shared state while lowering one statement.
pub(crate) struct Ctx {
    /// Counter for correlated-subquery lookup fields.
    lookups: RefCell<usize>,
    /// Window functions of the SELECTs being lowered, with the hidden field
    /// holding each one's value (innermost SELECT last).
    windows: RefCell<Vec<(Window, String)>>,
    /// Counter for window field names.
    window_count: RefCell<usize>,
}

/// Let-variables a nested pipeline needs from the document around it:
/// (column as seen from outside, variable name).
pub(crate) type Vars = RefCell<Vec<(ColumnRef, String)>>;

/// The enclosing queries of a correlated subquery: `vars` are the `let`
/// variables of the `$lookup` that runs it (columns of the query one level
/// out), `parent` the same for the level above. A `$lookup`'s variables are
/// visible in pipelines nested in it, so a column two levels out is a
/// variable of the outer `$lookup`, named by depth so inner ones never
/// shadow it.
pub(crate) struct Outer<'a> {
    pub vars: &'a Vars,
    pub parent: Option<&'a Outer<'a>>,
    pub depth: usize,
}

impl Outer<'_> {
    /// Prefix of this level's variable names: `o0`, `o1`... at the first
    /// level, `o1_0`... below it.
    pub fn prefix(&self) -> String {
        if self.depth == 0 {
            "o".to_string()
        } else {
            format!("o{}_", self.depth)
        }
    }
}

/// How column references of the current query level become field paths.
#[derive(Clone, Copy)]
pub(crate) enum Fields<'a> {
    /// Source `s` lives at `prefixes[s]` ("" for the first table,
    /// `__djongo_joinK.` for joins).
    Prefixed(&'a [String]),
    /// Inside a join's `$lookup` pipeline: the joined source is the root
    /// document, every other source is a `let` variable.
    JoinPipeline { local: usize, vars: &'a Vars },
}

/// Everything expression lowering needs to know about where it is.
#[derive(Clone, Copy)]
pub(crate) struct Env<'a> {
    pub fields: Fields<'a>,
    /// Set inside a correlated subquery: references to the enclosing queries.
    pub outer: Option<&'a Outer<'a>>,
    /// Set after `$group`: how to read group keys and aggregates.
    pub group: Option<&'a read::GroupMap>,
    /// Stages (correlated `$lookup`s) that must run before the stage using
    /// the expression being lowered; `None` where no stage can be added.
    pub pre: Option<&'a RefCell<Vec<Document>>>,
}

pub fn lower(mut stmt: Statement, params: usize) -> Result<Document> {
    let ctx = Ctx {
        lookups: RefCell::new(0),
        windows: RefCell::new(Vec::new()),
        window_count: RefCell::new(0),
    };
    // Read before lowering: it removes the COLLATE nodes it reads.
    let collation = crate::plan::collation::analyze(&mut stmt);
    let mut subplans = Vec::with_capacity(stmt.subqueries.len());
    for q in &stmt.subqueries {
        subplans.push(Bson::Document(read::lower_query(&ctx, q, None)?.into_document()));
    }
    let mut plan = match &mut stmt.kind {
        StatementKind::Query(q) => {
            let post_filter = client::split_filter(q);
            let post = client::split_post(q);
            let mut plan = read::lower_query(&ctx, q, None)?.into_document();
            if !post_filter.is_empty() {
                // Checked by the executor, which then drops the trailing
                // columns the checks read.
                plan.insert("post_filter", post_filter.iter().map(client::PostFilter::to_bson).collect::<Vec<_>>());
                plan.insert("hidden_columns", post_filter.len() as i64);
            }
            if !post.is_empty() {
                let post: Vec<Bson> = post.into_iter().map(|(i, f)| Bson::Array(vec![Bson::Int64(i as i64), f.into()])).collect();
                plan.insert("post", post);
            }
            plan
        }
        StatementKind::Insert(i) => write::insert(i)?,
        StatementKind::Update(u) => write::update(&ctx, u)?,
        StatementKind::Delete(d) => write::delete(&ctx, d)?,
        StatementKind::Ddl(d) => ddl::lower(&ctx, d)?,
        StatementKind::Savepoint(op) => savepoint(op),
        StatementKind::Explain { statement, json } => {
            let inner = lower((**statement).clone(), params)?;
            doc! { "op": "explain", "format": if *json { "json" } else { "text" }, "statement": inner }
        }
    };
    plan.insert("params", params as i64);
    if let Some(collation) = collation {
        plan.insert("collation", collation);
    }
    if !subplans.is_empty() {
        plan.insert("subqueries", subplans);
    }
    Ok(plan)
}

/// A savepoint statement: the executor runs it as a server command.
fn savepoint(op: &SavepointOp) -> bson::Document {
    let (kind, name) = match op {
        SavepointOp::Create(n) => ("savepoint", n),
        SavepointOp::RollbackTo(n) => ("rollback_to_savepoint", n),
        SavepointOp::Release(n) => ("release_savepoint", n),
    };
    bson::doc! { "op": kind, "name": name.as_str() }
}

/// A literal as a BSON value (for documents that are data, not expressions).
pub(crate) fn literal(l: &Literal) -> Bson {
    match l {
        Literal::Null => Bson::Null,
        Literal::Bool(b) => Bson::Boolean(*b),
        Literal::Int(i) => Bson::Int64(*i),
        Literal::Float(f) => Bson::Double(*f),
        Literal::Str(s) => Bson::String(s.clone()),
        Literal::Date(d) => Bson::DateTime(*d),
    }
}

pub(crate) fn param_slot(i: usize) -> Bson {
    Bson::Document(doc! { "$param": i as i64 })
}
