//! The typed relational plan: what a statement means, independent of both
//! SQL syntax and MongoDB. `build` produces it from the sqlparser AST (and
//! resolves every name); `crate::lower` turns it into MongoDB commands.
pub mod build;
pub mod collation;
pub mod expr;
mod outer;
mod scope;

pub use expr::*;

/// One statement. Uncorrelated subqueries are hoisted into `subqueries`
/// (numbered in the order they must run: a subquery only refers to ones with
/// a smaller index).
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub kind: StatementKind,
    pub subqueries: Vec<Query>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StatementKind {
    Query(Query),
    Insert(Insert),
    Update(Update),
    Delete(Delete),
    Ddl(Ddl),
    Savepoint(SavepointOp),
    /// `EXPLAIN [FORMAT JSON|TEXT] statement`: what the statement becomes,
    /// without running it.
    Explain { statement: Box<Statement>, json: bool },
}

/// Savepoint control inside a transaction: `SAVEPOINT s`, `ROLLBACK TO
/// [SAVEPOINT] s`, `RELEASE [SAVEPOINT] s`. Django emits these for nested
/// `atomic()` blocks; the executor runs them as the embedded server's
/// savepoint commands.
#[derive(Debug, Clone, PartialEq)]
pub enum SavepointOp {
    Create(String),
    RollbackTo(String),
    Release(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    Select(Box<Select>),
    SetOp(Box<SetOp>),
}

impl Query {
    pub fn columns(&self) -> Vec<String> {
        match self {
            Query::Select(s) => s.projection.iter().map(|p| p.label.clone()).collect(),
            Query::SetOp(s) => s.inputs.first().map(Query::columns).unwrap_or_default(),
        }
    }

    /// `SELECT *`: its documents are the stored documents, under their own
    /// field names (the compiler does not know which).
    pub fn is_star(&self) -> bool {
        matches!(self, Query::Select(s) if s.star)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOpKind {
    Union,
    Intersect,
    Except,
}

/// `q0 UNION [ALL] q1 UNION [ALL] q2 ... ORDER BY ... LIMIT ...`: one
/// operator applied left to right over two or more inputs (`INTERSECT`: rows
/// in every input, `EXCEPT`: rows of the first input in no other). ORDER BY
/// refers to output columns by position.
#[derive(Debug, Clone, PartialEq)]
pub struct SetOp {
    pub kind: SetOpKind,
    pub all: bool,
    pub inputs: Vec<Query>,
    pub order_by: Vec<OrderItem>,
    pub limit: Option<Expr>,
    pub offset: Option<Expr>,
}

/// Where rows come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Table { collection: String },
    /// A derived table `(SELECT ...) alias`; its columns are the inner
    /// query's output columns (`c0`, `c1`, ... in its documents).
    Derived(Box<Query>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    LeftOuter,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    pub kind: JoinKind,
    pub collection: String,
    /// Condition; columns of this join are `source == index of this join`.
    pub on: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProjectItem {
    pub expr: Expr,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    pub key: SortKey,
    pub descending: bool,
    /// `Some(true)` for NULLS FIRST, `Some(false)` for NULLS LAST.
    pub nulls_first: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    /// The i-th output column (by position or alias).
    Output(usize),
    Expr(Expr),
}

/// `SELECT`: scan (+ joins) → filter → group → having → project → distinct →
/// sort → offset/limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    /// `None` for a SELECT without FROM.
    pub from: Option<Source>,
    /// Join `k` (0-based here) is source `k + 1` in column references.
    pub joins: Vec<Join>,
    pub filter: Option<Expr>,
    pub group_by: Vec<Expr>,
    /// True when the query aggregates (GROUP BY or an aggregate function).
    pub aggregated: bool,
    pub having: Option<Expr>,
    pub projection: Vec<ProjectItem>,
    /// `SELECT *`: every stored field. The compiler knows no schema, so the
    /// executor takes the columns from the documents (single table only).
    pub star: bool,
    pub distinct: bool,
    pub order_by: Vec<OrderItem>,
    pub limit: Option<Expr>,
    pub offset: Option<Expr>,
}

impl Select {
    /// `SELECT <projection> [FROM from] [WHERE filter]`: no join, grouping,
    /// ordering or limit (the reads the compiler makes up for itself).
    pub fn plain(from: Option<Source>, filter: Option<Expr>, projection: Vec<ProjectItem>) -> Select {
        Select {
            from,
            joins: Vec::new(),
            filter,
            group_by: Vec::new(),
            aggregated: false,
            having: None,
            projection,
            star: false,
            distinct: false,
            order_by: Vec::new(),
            limit: None,
            offset: None,
        }
    }
}

/// One value of an inserted row.
#[derive(Debug, Clone, PartialEq)]
pub enum InsertValue {
    /// `DEFAULT`: the column's default, filled in by the executor.
    Default,
    /// A literal or a parameter: data, stored as is.
    Data(Expr),
    /// A computed value (`LOWER(%s)`, `CURRENT_TIMESTAMP`, a scalar
    /// subquery): column `i` of the row of `Insert::computed`.
    Computed(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Insert {
    pub collection: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<InsertValue>>,
    /// The index in the statement's subqueries of a `SELECT` without FROM
    /// that evaluates every computed value of the statement at once, so a
    /// bulk INSERT costs one extra round trip, not one per value.
    pub computed: Option<usize>,
    pub returning: Vec<String>,
    pub on_conflict: Option<OnConflict>,
}

/// What an INSERT does with a row that collides with a stored one.
#[derive(Debug, Clone, PartialEq)]
pub enum OnConflict {
    /// `ON CONFLICT DO NOTHING` (no target): a row that would violate any
    /// unique index is skipped.
    Ignore,
    /// `ON CONFLICT (target) DO UPDATE SET col = EXCLUDED.source, ...`: a
    /// row whose target columns equal a stored row's updates that row.
    Update { target: Vec<String>, set: Vec<(String, String)> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub collection: String,
    pub assignments: Vec<(String, Expr)>,
    pub filter: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delete {
    pub collection: String,
    pub filter: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    /// Lower-case SQL type text as written (`varchar(100)`).
    pub ty: String,
    pub nullable: bool,
    pub primary_key: bool,
    pub unique: bool,
    pub auto: bool,
    pub default: Option<Expr>,
    /// `GENERATED ALWAYS AS (expr) STORED|VIRTUAL`: computed from the row's
    /// other columns whenever it is written (both kinds are stored).
    pub generated: Option<Expr>,
    /// `COLLATE "name"`: the collation its values are compared under
    /// (recorded in `__schema__`; docs/collations.md).
    pub collation: Option<String>,
    /// `[CONSTRAINT name] REFERENCES table (column)`.
    pub references: Option<(Option<String>, ForeignKey)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ColumnChange {
    Type(String),
    Nullable(bool),
    Default(Expr),
    DropDefault,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    Unique(Vec<String>),
    PrimaryKey(Vec<String>),
    ForeignKey(ForeignKey),
    Check(Check),
}

/// `FOREIGN KEY (columns) REFERENCES table (referenced)`: enforced by the
/// embedded engine (its `foreignKeys` collection option).
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignKey {
    pub columns: Vec<String>,
    pub table: String,
    /// Empty when the SQL names no column (the referenced table's key).
    pub referenced: Vec<String>,
}

/// A CHECK constraint: its condition over one row's columns, enforced by
/// the server as (part of) the collection's validator.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The condition as SQL text, for introspection.
    pub sql: String,
    pub condition: Expr,
}

/// One key of CREATE INDEX: a field, or an expression of the row's columns
/// (`Index(Lower("name"))`), which MongoDB cannot index itself: the executor
/// keeps its value in a hidden field of each document and indexes that.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexKey {
    Field(String),
    Expr(Expr),
}

/// A MongoDB index kind, which MongoDB writes into the key pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    Text,
    Hashed,
    TwoDSphere,
    Wildcard,
}

impl IndexKind {
    /// The kind a `kind = '<word>'` names.
    pub fn parse(word: &str) -> Option<IndexKind> {
        Some(match word {
            "text" => IndexKind::Text,
            "hashed" => IndexKind::Hashed,
            "2dsphere" => IndexKind::TwoDSphere,
            "wildcard" => IndexKind::Wildcard,
            _ => return None,
        })
    }

    pub fn word(self) -> &'static str {
        match self {
            IndexKind::Text => "text",
            IndexKind::Hashed => "hashed",
            IndexKind::TwoDSphere => "2dsphere",
            IndexKind::Wildcard => "wildcard",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ddl {
    CreateTable {
        collection: String,
        if_not_exists: bool,
        columns: Vec<ColumnDef>,
        /// Table-level UNIQUE constraints: name, columns.
        unique: Vec<(Option<String>, Vec<String>)>,
        /// A composite PRIMARY KEY's columns (a one-column key is marked on
        /// its column).
        primary_key: Vec<String>,
        /// Table and column CHECK constraints: name (if given), check.
        checks: Vec<(Option<String>, Check)>,
        /// Table-level FOREIGN KEY constraints: name (if given), constraint.
        foreign_keys: Vec<(Option<String>, ForeignKey)>,
    },
    DropTable {
        collection: String,
        if_exists: bool,
    },
    RenameTable {
        from: String,
        to: String,
    },
    AddColumn {
        collection: String,
        column: ColumnDef,
        /// The column's CHECK constraints.
        checks: Vec<(Option<String>, Check)>,
    },
    DropColumn {
        collection: String,
        column: String,
    },
    RenameColumn {
        collection: String,
        from: String,
        to: String,
    },
    AlterColumn {
        collection: String,
        column: String,
        change: ColumnChange,
    },
    CreateIndex {
        collection: String,
        name: String,
        /// Each key, ascending (true) or descending.
        keys: Vec<(IndexKey, bool)>,
        unique: bool,
        if_not_exists: bool,
        filter: Option<Expr>,
        /// MongoDB index options from `WITH (...)`, by name (`index_option`).
        options: Vec<(String, Literal)>,
        /// The MongoDB index kind, from `WITH (kind = '<kind>')` (or the
        /// older `USING "2dsphere"`): `text`, `hashed`, `2dsphere` give every
        /// key that word instead of a direction, `wildcard` makes each key
        /// `<field>.$**`.
        kind: Option<IndexKind>,
        /// The collation every key is under (`("title" COLLATE "sv")`).
        collation: Option<String>,
    },
    DropIndex {
        collection: Option<String>,
        name: String,
        if_exists: bool,
    },
    AddConstraint {
        collection: String,
        name: Option<String>,
        constraint: Constraint,
    },
    DropConstraint {
        collection: String,
        name: String,
    },
    /// `CREATE VIEW v AS SELECT ...`: a MongoDB view, the SELECT's pipeline
    /// over its one collection.
    CreateView {
        name: String,
        query: Query,
    },
    DropView {
        name: String,
        if_exists: bool,
    },
    /// `ALTER TABLE t AUTO_INCREMENT = n` (MySQL's form, which Django's MySQL
    /// backend writes to reset a sequence): the next id is `n`, or the one
    /// after the largest id present if that is larger.
    SetAutoIncrement {
        collection: String,
        next: i64,
    },
}
