//! Scalar expressions and predicates of the relational plan, with every
//! column already resolved to a source and a field path.

/// A constant written in the SQL text.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `CAST('2024-01-05' AS date)` / `CAST('2024-01-05T10:00:00' AS timestamp)`
    /// of a literal: folded at compile time into the BSON date it stands for,
    /// so that a filter (a partial index's condition, a CHECK) compares dates
    /// with dates.
    Date(bson::DateTime),
}

/// A column: `scope` 0 is the query it appears in, 1 the enclosing query (a
/// correlated reference), and so on. `source` indexes that query's FROM list
/// (0 = the first table, `k` = the k-th joined table). `path` is the field
/// inside the source's documents (`["blog", "name"]` for an embedded field).
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnRef {
    pub scope: usize,
    pub source: usize,
    pub path: FieldPath,
}

/// Where a column lives in a document: the column, then the keys of
/// embedded documents (an EmbeddedField's fields, a JSONField's keys).
///
/// Each component is one literal key, whatever it holds: a `.` never splits
/// it and a leading `$` never makes it an operator. Components that MongoDB's
/// dotted paths can spell (see [`is_plain_key`]) are read as `a.b.c`; the
/// others are read one key at a time with `$getField`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath(Vec<String>);

/// True when `key` can be one component of a dotted field path: not empty,
/// no `.` (a separator), no leading `$` (an operator or a variable), no NUL
/// (BSON keys are C strings).
pub fn is_plain_key(key: &str) -> bool {
    !key.is_empty() && !key.starts_with('$') && !key.contains(['.', '\0'])
}

impl FieldPath {
    /// A single key: a column, or a field the compiler itself names (`c0`).
    pub fn key(name: impl Into<String>) -> FieldPath {
        FieldPath(vec![name.into()])
    }

    pub fn new(components: Vec<String>) -> FieldPath {
        FieldPath(components)
    }

    pub fn components(&self) -> &[String] {
        &self.0
    }

    /// The dotted path (`blog.name`), when every component can be spelled
    /// in one; `None` when a component must be read as a literal key.
    pub fn dotted(&self) -> Option<String> {
        if self.0.iter().all(|k| is_plain_key(k)) {
            Some(self.0.join("."))
        } else {
            None
        }
    }
}

impl std::fmt::Display for FieldPath {
    /// The path as SQL names it (`"blog"."name"`), for error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, k) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "\"{}\"", k.replace('"', "\"\""))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// `a op b` ⇔ `b op.flip() a`.
    pub fn flip(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }
    /// The comparison that is TRUE exactly when this one is FALSE (both sides non-NULL).
    pub fn negate(self) -> CmpOp {
        match self {
            CmpOp::Eq => CmpOp::Ne,
            CmpOp::Ne => CmpOp::Eq,
            CmpOp::Lt => CmpOp::Ge,
            CmpOp::Le => CmpOp::Gt,
            CmpOp::Gt => CmpOp::Le,
            CmpOp::Ge => CmpOp::Lt,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// What a pattern-matching predicate means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// SQL LIKE with `\` as the escape character.
    Like,
    /// POSIX regex (`~`, `~*`, `REGEXP`).
    Regex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    CountStar,
    Count,
    Sum,
    Avg,
    Min,
    Max,
    StdDevPop,
    StdDevSamp,
    VarPop,
    VarSamp,
}

/// Scalar functions we translate; the names follow SQL, not MongoDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `MONGO_TEXT_SEARCH(search [, 'option', value]...)`: MongoDB's `$text`
    /// (djongo.models.TextSearch); only as a top-level condition of WHERE.
    TextSearch,
    /// `MONGO_TEXT_SCORE()`: the `$text` score of the document.
    TextScore,
    Upper,
    Lower,
    Length,
    Abs,
    Round,
    Ceil,
    Floor,
    Sqrt,
    Power,
    Mod,
    Trim,
    LTrim,
    RTrim,
    Substr,
    Replace,
    /// SQL CONCAT(): NULL arguments count as ''.
    Concat,
    Coalesce,
    NullIf,
    Greatest,
    Least,
    Now,
    Exp,
    Ln,
    Log10,
    Sign,
    StrIndex,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Atan2,
    Cot,
    Degrees,
    Radians,
    Pi,
    /// `LOG(x)` is base 10, `LOG(b, x)` base `b` (PostgreSQL).
    Log,
    Random,
    Left,
    Right,
    Reverse,
    Repeat,
    LPad,
    RPad,
    BitAnd,
    BitOr,
    BitXor,
    ShiftLeft,
    ShiftRight,
    /// `EXTRACT(part FROM x)`, with PostgreSQL's meaning of each part.
    Extract(DatePart),
    /// `DATE_TRUNC('unit', x)`.
    DateTrunc(TruncUnit),
    /// `x AT TIME ZONE tz`: the wall-clock time in zone `tz` of the instant
    /// `x` (stored dates are UTC), as a zone-less date.
    AtTimeZone,
    /// `CONVERT_TZ(x, from, to)` (MySQL): the wall-clock time `x` in zone
    /// `from`, as the wall-clock time in zone `to`.
    ConvertTz,
    /// `JSON_CONTAINS(container, candidate)` (MySQL's containment: objects
    /// by key, arrays by element, a non-array candidate in some element of
    /// an array).
    JsonContains,
    /// djongo's geospatial functions (`GEO_WITHIN(col, shape)`, ...): see
    /// `crate::lower::geo`.
    Geo(GeoFunc),
    /// `JSON_OBJECT(key, value, ...)`.
    JsonObject,
    /// `JSON_ARRAY(value, ...)`.
    JsonArray,
    /// A row value `(a, b)` as one array of its values, unconverted (a row
    /// IN a subquery; never written in SQL).
    Row,
    /// `MD5(x)`, `SHA1(x)`, ...: MongoDB has no hash operator; see
    /// `crate::lower::client` for where they can run.
    Hash(HashAlgo),
    /// `CHR(n)`: the character of a code point.
    Chr,
    /// `ASCII(x)` / `ORD(x)` / `UNICODE(x)`: the code point of the first character.
    Ord,
    /// Not SQL: the string whose first character has a given code point
    /// (CHR, and '' for 0), for comparisons of ORD() (`crate::lower::client`).
    CodePrefix,
}

/// A hash function, by the name SQL gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgo {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlgo {
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Md5 => "md5",
            HashAlgo::Sha1 => "sha1",
            HashAlgo::Sha224 => "sha224",
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha384 => "sha384",
            HashAlgo::Sha512 => "sha512",
        }
    }
}

/// One step of a JSON path (`$."key"[0]`): an object's key, or an array's
/// element (counted from the end when negative).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum JsonStep {
    Key(String),
    Index(i64),
}

/// What a JSON path expression yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonMode {
    /// `JSON_EXTRACT(x, path)`: the JSON value there; NULL when there is none.
    Value,
    /// `JSON_UNQUOTE(JSON_EXTRACT(x, path))` (`->>`): the same, with JSON
    /// null read as SQL NULL.
    Text,
    /// `JSON_TYPE(x, path)`: the JSON type's name (SQLite's: 'object',
    /// 'array', 'text', 'integer', 'real', 'true', 'false', 'null'); NULL
    /// when there is no value there.
    Type,
}

/// A field of a date/time value, as PostgreSQL's EXTRACT names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePart {
    Year,
    Quarter,
    Month,
    /// ISO 8601 week number.
    Week,
    Day,
    /// Day of the week, 0 = Sunday.
    Dow,
    /// ISO day of the week, 1 = Monday.
    IsoDow,
    DayOfYear,
    /// ISO 8601 week-numbering year.
    IsoYear,
    Hour,
    Minute,
    /// Seconds including the fractional part.
    Second,
    Millisecond,
    /// Seconds since 1970-01-01T00:00:00Z.
    Epoch,
}

/// A unit of DATE_TRUNC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TruncUnit {
    Year,
    Quarter,
    Month,
    /// Truncates to Monday (ISO weeks), as PostgreSQL does.
    Week,
    Day,
    Hour,
    Minute,
    Second,
}

/// Target of a CAST, by family: MongoDB converts by family, not by width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CastType {
    Integer,
    Float,
    /// `numeric(p, s)`: rounded to `s` decimal places when a scale is given.
    Decimal(Option<u32>),
    /// Text, cut to the given length (`varchar(n)`) when there is one.
    Text(Option<u32>),
    Bool,
    /// `date`: truncated to midnight.
    Date,
    /// `datetime`/`timestamp`.
    DateTime,
    /// `time`: TimeField values are ISO strings `HH:MM:SS[.ffffff]`.
    Time,
    /// `json`: a JSON value (a string parameter is read as JSON text).
    Json,
}

/// A subquery inside an expression. Uncorrelated ones are compiled to a
/// separate read plan (`index` into the statement's subquery list) whose
/// result the executor binds into a slot; correlated ones stay in the tree
/// and become a `$lookup` with `let`/`pipeline`.
#[derive(Debug, Clone, PartialEq)]
pub enum SubqueryRef {
    Uncorrelated(usize),
    Correlated(Box<super::Query>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Column(ColumnRef),
    Literal(Literal),
    /// Statement parameter, 0-based.
    Param(usize),
    Neg(Box<Expr>),
    Arith {
        op: ArithOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// `a || b || ...`: NULL if any operand is NULL.
    Concat(Vec<Expr>),
    Compare {
        op: CmpOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    InSubquery {
        expr: Box<Expr>,
        subquery: SubqueryRef,
        negated: bool,
    },
    Exists {
        subquery: SubqueryRef,
        negated: bool,
    },
    ScalarSubquery(SubqueryRef),
    /// Column `column` of the only row of uncorrelated subquery `index`
    /// (a row value compared with a subquery: `(a, b) = (SELECT x, y ...)`).
    SubqueryColumn { index: usize, column: usize },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    Match {
        kind: MatchKind,
        expr: Box<Expr>,
        pattern: Box<Expr>,
        case_insensitive: bool,
        negated: bool,
    },
    Function {
        func: Func,
        args: Vec<Expr>,
    },
    Aggregate {
        func: AggFunc,
        arg: Option<Box<Expr>>,
        distinct: bool,
    },
    Case {
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Cast {
        expr: Box<Expr>,
        to: CastType,
    },
    /// `f(...) OVER (PARTITION BY ... ORDER BY ... frame)`.
    Window(Box<Window>),
    /// `expr COLLATE "name"`: `expr` compared under the named collation.
    /// MongoDB compares every string of one operation under one collation,
    /// so `plan::collation` reads these for the whole statement and removes
    /// them before lowering; one left elsewhere (an index expression, a
    /// generated column) is refused when lowered.
    Collate {
        expr: Box<Expr>,
        collation: String,
    },
    /// A value inside a JSON document (Django's JSONField key and index
    /// transforms). Each key is one literal key, never a field path.
    JsonExtract {
        expr: Box<Expr>,
        path: Vec<JsonStep>,
        mode: JsonMode,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum WindowFunc {
    RowNumber,
    Rank,
    DenseRank,
    PercentRank,
    CumeDist,
    Ntile,
    Lag,
    Lead,
    FirstValue,
    LastValue,
    NthValue,
    Aggregate(AggFunc),
}

/// One end of a window frame; offsets count rows (ROWS) or sort-key units
/// (RANGE), negative before the current row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameBound {
    Unbounded,
    Current,
    Offset(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// ROWS (true) or RANGE (false).
    pub rows: bool,
    pub start: FrameBound,
    pub end: FrameBound,
    /// `EXCLUDE ...` (None: `EXCLUDE NO OTHERS`, the default).
    pub exclusion: Option<Exclusion>,
}

/// The rows a frame's `EXCLUDE` leaves out: the current row, its peers with
/// it (GROUP), or its peers but not itself (TIES).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusion {
    CurrentRow,
    Group,
    Ties,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub func: WindowFunc,
    pub args: Vec<Expr>,
    pub partition_by: Vec<Expr>,
    /// (key, descending)
    pub order_by: Vec<(Expr, bool)>,
    /// `None`: SQL's default frame (the whole partition without ORDER BY,
    /// RANGE UNBOUNDED PRECEDING .. CURRENT ROW with it).
    pub frame: Option<Frame>,
}

impl Expr {
    /// Calls `f` on this expression and every sub-expression (not descending
    /// into subqueries, which are separate scopes).
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        self.for_each_child(&mut |child| child.walk(&mut *f));
    }

    /// Calls `f` on the direct sub-expressions of this expression (not
    /// descending into subqueries, which are separate scopes). The same
    /// children as [`Expr::for_each_child_mut`], read-only.
    pub fn for_each_child<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        match self {
            Expr::Column(_) | Expr::Literal(_) | Expr::Param(_) | Expr::Exists { .. } | Expr::ScalarSubquery(_) | Expr::SubqueryColumn { .. } => {}
            Expr::Neg(e) | Expr::Not(e) | Expr::Cast { expr: e, .. } | Expr::JsonExtract { expr: e, .. } | Expr::Collate { expr: e, .. } => f(e),
            Expr::IsNull { expr, .. } | Expr::InSubquery { expr, .. } => f(expr),
            Expr::Arith { left, right, .. } | Expr::Compare { left, right, .. } => {
                f(left);
                f(right);
            }
            Expr::Concat(v) | Expr::And(v) | Expr::Or(v) | Expr::Function { args: v, .. } => v.iter().for_each(f),
            Expr::InList { expr, list, .. } => {
                f(expr);
                list.iter().for_each(f);
            }
            Expr::Between { expr, low, high, .. } => {
                f(expr);
                f(low);
                f(high);
            }
            Expr::Match { expr, pattern, .. } => {
                f(expr);
                f(pattern);
            }
            Expr::Aggregate { arg, .. } => {
                if let Some(a) = arg {
                    f(a)
                }
            }
            Expr::Case { whens, otherwise } => {
                for (c, r) in whens {
                    f(c);
                    f(r);
                }
                if let Some(o) = otherwise {
                    f(o)
                }
            }
            Expr::Window(w) => {
                w.args.iter().chain(&w.partition_by).chain(w.order_by.iter().map(|(e, _)| e)).for_each(f);
            }
        }
    }

    /// Calls `f` on the direct sub-expressions of this expression (not
    /// descending into subqueries, which are separate scopes).
    pub fn for_each_child_mut(&mut self, f: &mut dyn FnMut(&mut Expr)) {
        match self {
            Expr::Column(_) | Expr::Literal(_) | Expr::Param(_) | Expr::Exists { .. } | Expr::ScalarSubquery(_) | Expr::SubqueryColumn { .. } => {}
            Expr::Neg(e) | Expr::Not(e) | Expr::Cast { expr: e, .. } | Expr::JsonExtract { expr: e, .. } | Expr::Collate { expr: e, .. } => f(e),
            Expr::IsNull { expr, .. } | Expr::InSubquery { expr, .. } => f(expr),
            Expr::Arith { left, right, .. } | Expr::Compare { left, right, .. } => {
                f(left);
                f(right);
            }
            Expr::Concat(v) | Expr::And(v) | Expr::Or(v) | Expr::Function { args: v, .. } => v.iter_mut().for_each(f),
            Expr::InList { expr, list, .. } => {
                f(expr);
                list.iter_mut().for_each(f);
            }
            Expr::Between { expr, low, high, .. } => {
                f(expr);
                f(low);
                f(high);
            }
            Expr::Match { expr, pattern, .. } => {
                f(expr);
                f(pattern);
            }
            Expr::Aggregate { arg, .. } => {
                if let Some(a) = arg {
                    f(a)
                }
            }
            Expr::Case { whens, otherwise } => {
                for (c, r) in whens {
                    f(c);
                    f(r);
                }
                if let Some(o) = otherwise {
                    f(o)
                }
            }
            Expr::Window(w) => {
                w.args.iter_mut().chain(w.partition_by.iter_mut()).chain(w.order_by.iter_mut().map(|(e, _)| e)).for_each(f);
            }
        }
    }

    /// The correlated subquery this expression is, if it is one.
    pub fn correlated_subquery_mut(&mut self) -> Option<&mut super::Query> {
        match self {
            Expr::InSubquery { subquery: SubqueryRef::Correlated(q), .. }
            | Expr::Exists { subquery: SubqueryRef::Correlated(q), .. }
            | Expr::ScalarSubquery(SubqueryRef::Correlated(q)) => Some(q),
            _ => None,
        }
    }

    pub fn has_window(&self) -> bool {
        self.any(&|e| matches!(e, Expr::Window(_)))
    }

    pub fn any(&self, pred: &dyn Fn(&Expr) -> bool) -> bool {
        let mut found = false;
        self.walk(&mut |e| found |= pred(e));
        found
    }

    pub fn has_aggregate(&self) -> bool {
        self.any(&|e| matches!(e, Expr::Aggregate { .. }))
    }

    pub fn has_correlated(&self) -> bool {
        self.any(&|e| {
            matches!(
                e,
                Expr::InSubquery { subquery: SubqueryRef::Correlated(_), .. }
                    | Expr::Exists { subquery: SubqueryRef::Correlated(_), .. }
                    | Expr::ScalarSubquery(SubqueryRef::Correlated(_))
            )
        })
    }

    /// True if every column reference of the current scope is in `source`.
    pub fn only_source(&self, source: usize) -> bool {
        !self.any(&|e| matches!(e, Expr::Column(c) if c.scope == 0 && c.source != source))
    }

    /// Splits a conjunction into its conjuncts.
    pub fn conjuncts(self) -> Vec<Expr> {
        match self {
            Expr::And(v) => v.into_iter().flat_map(Expr::conjuncts).collect(),
            other => vec![other],
        }
    }
}

/// The geospatial SQL functions djongo's `PointField` lookups and `Distance`
/// write. The shapes and points are parameters (BSON values), never SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeoFunc {
    /// `GEO_WITHIN(col, geojson)`: `$geoWithin` a Polygon/MultiPolygon.
    Within,
    /// `GEO_WITHIN_SPHERE(col, [lng, lat], radians)`: `$geoWithin $centerSphere`.
    WithinSphere,
    /// `GEO_INTERSECTS(col, geojson)`: `$geoIntersects`.
    Intersects,
    /// `GEO_DISTANCE(col, [lng, lat])`: great-circle meters to a stored point.
    Distance,
}

/// The geospatial function a SQL function name stands for.
pub fn geo_function(name: &str) -> Option<GeoFunc> {
    Some(match name {
        "geo_within" => GeoFunc::Within,
        "geo_within_sphere" => GeoFunc::WithinSphere,
        "geo_intersects" => GeoFunc::Intersects,
        "geo_distance" => GeoFunc::Distance,
        _ => return None,
    })
}
