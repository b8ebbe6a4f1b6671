//! Functions MongoDB has no operator for: MD5() and the SHA*() hashes,
//! CHR() and ORD() (ASCII/UNICODE). They run where they can run exactly:
//!
//! * of a constant (a parameter or a literal), the executor computes them
//!   when it binds the statement (an `$apply` slot, docs/plan-format.md);
//! * as a whole item of the outermost SELECT list, the server returns the
//!   argument and the executor applies the function to that column (the
//!   plan's `post`);
//! * `ORD(x)` compared with `ORD(y)` or with a constant compares first
//!   characters: code-point order is UTF-8 byte order, MongoDB's string
//!   order; `CHR(ORD(x))` is `x`'s first character;
//! * compared with a constant in the WHERE of the outermost SELECT (an AND of
//!   conditions, no grouping, DISTINCT, window, LIMIT or OFFSET, which would
//!   run after it), the server returns the argument as a hidden trailing
//!   column and the executor keeps the rows whose value compares as asked
//!   (the plan's `post_filter`); the other conditions still run on the
//!   server, so they choose the rows it sends;
//! * anywhere else the statement is refused, naming the function.
use bson::{doc, Bson};

use super::expr::lit;
use super::{literal, param_slot};
use crate::error::CompileError;
use crate::plan::{CmpOp, Expr, Func, Literal, OrderItem, ProjectItem, Query, Select, SortKey};

/// The executor's name for a function it computes.
pub(crate) fn name(func: Func) -> Option<&'static str> {
    match func {
        Func::Hash(algo) => Some(algo.name()),
        Func::Chr => Some("chr"),
        Func::Ord => Some("ord"),
        Func::CodePrefix => Some("code_prefix"),
        _ => None,
    }
}

/// The slot the executor replaces with `func(value)` when it binds the
/// statement; `None` when the argument is not a constant.
pub(crate) fn constant(func: Func, arg: &Expr) -> Option<Bson> {
    let name = name(func)?;
    let value = match arg {
        Expr::Param(i) => param_slot(*i),
        Expr::Literal(l) => literal(l),
        _ => return None,
    };
    Some(lit(doc! { "$apply": name, "arg": value }))
}

pub(crate) fn refused(func: Func) -> CompileError {
    let sql = name(func).unwrap_or("?").to_uppercase();
    let what = match func {
        Func::Hash(_) => format!("{sql}() of a column outside the SELECT list (MongoDB has no hash operator)"),
        _ => format!("{sql}() of a column outside the SELECT list or an ORD() comparison (MongoDB has no code-point operator)"),
    };
    CompileError::unsupported(what, format!("{sql}(...)"))
}

fn first_char(x: Expr) -> Expr {
    Expr::Function { func: Func::Substr, args: vec![x, Expr::Literal(Literal::Int(1)), Expr::Literal(Literal::Int(1))] }
}

fn is_ord(e: &Expr) -> bool {
    matches!(e, Expr::Function { func: Func::Ord, .. })
}

/// `CHR(ORD(x))`: `x`'s first character.
pub(crate) fn chr_of_ord(args: &[Expr]) -> Option<Expr> {
    match args {
        [Expr::Function { func: Func::Ord, args: inner }] if inner.len() == 1 => Some(first_char(inner[0].clone())),
        _ => None,
    }
}

/// `ORD(a) op ORD(b)` / `ORD(a) op k` as a comparison of first characters,
/// when one side is ORD() and the other ORD() or a constant.
pub(crate) fn ord_comparison(op: CmpOp, left: &Expr, right: &Expr) -> Option<Expr> {
    if !is_ord(left) && !is_ord(right) {
        return None;
    }
    let side = |e: &Expr| -> Option<Expr> {
        match e {
            Expr::Function { func: Func::Ord, args } if args.len() == 1 => Some(first_char(args[0].clone())),
            Expr::Param(_) | Expr::Literal(_) => Some(Expr::Function { func: Func::CodePrefix, args: vec![e.clone()] }),
            _ => None,
        }
    };
    Some(Expr::Compare { op, left: Box::new(side(left)?), right: Box::new(side(right)?) })
}

/// Takes the client functions out of the outermost SELECT list: each such
/// item reads its argument, and `(position, name)` says what the executor
/// applies. Items sorted, grouped or made distinct on stay (and are refused
/// when lowered): the server would order or group the argument, not the
/// function's value.
pub(crate) fn split_post(q: &mut Query) -> Vec<(usize, &'static str)> {
    let Query::Select(s) = q else { return Vec::new() };
    if s.distinct {
        return Vec::new();
    }
    let mut post = Vec::new();
    for i in 0..s.projection.len() {
        let Expr::Function { func, args } = &s.projection[i].expr else { continue };
        let (Some(name), [arg]) = (name(*func), args.as_slice()) else { continue };
        if constant(*func, arg).is_some() || chr_of_ord(args).is_some() || used_elsewhere(s, i) {
            continue;
        }
        let arg = arg.clone();
        s.projection[i].expr = arg;
        post.push((i, name));
    }
    post
}

fn used_elsewhere(s: &Select, i: usize) -> bool {
    let item = &s.projection[i].expr;
    let sorted = s.order_by.iter().any(|OrderItem { key, .. }| match key {
        SortKey::Output(k) => *k == i,
        SortKey::Expr(e) => e == item,
    });
    sorted || s.group_by.iter().any(|g| g == item) || s.having.as_ref().is_some_and(|h| h.any(&|e| e == item))
}

/// A condition of the outermost WHERE that the executor checks on the rows
/// it receives: `name(column) op value`, SQL's NULL failing every comparison.
pub(crate) struct PostFilter {
    pub column: usize,
    pub name: &'static str,
    pub op: CmpOp,
    pub value: Bson,
}

fn op_name(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "eq",
        CmpOp::Ne => "ne",
        CmpOp::Lt => "lt",
        CmpOp::Le => "le",
        CmpOp::Gt => "gt",
        CmpOp::Ge => "ge",
    }
}

impl PostFilter {
    pub(crate) fn to_bson(&self) -> Bson {
        Bson::Document(doc! { "column": self.column as i64, "apply": self.name, "op": op_name(self.op), "value": self.value.clone() })
    }
}

/// `f(x) op constant` (either way round) with `f` a client function of a
/// non-constant argument: (function, argument, op as `f(x) op constant`, constant).
fn client_comparison(e: &Expr) -> Option<(&'static str, &Expr, CmpOp, Bson)> {
    let Expr::Compare { op, left, right } = e else { return None };
    let constant = |e: &Expr| match e {
        Expr::Param(i) => Some(param_slot(*i)),
        Expr::Literal(l) if !matches!(l, Literal::Null) => Some(literal(l)),
        _ => None,
    };
    fn call(e: &Expr) -> Option<(&'static str, &Expr)> {
        match e {
            // ORD(x) compared with a constant runs on the server (ord_comparison).
            Expr::Function { func, args } if *func != Func::Ord && args.len() == 1 && !matches!(args[0], Expr::Param(_) | Expr::Literal(_)) && chr_of_ord(args).is_none() => {
                name(*func).map(|n| (n, &args[0]))
            }
            _ => None,
        }
    }
    if let (Some((n, arg)), Some(v)) = (call(left), constant(right)) {
        return Some((n, arg, *op, v));
    }
    if let (Some((n, arg)), Some(v)) = (call(right), constant(left)) {
        return Some((n, arg, op.flip(), v));
    }
    None
}

/// Takes the client-function comparisons out of the outermost WHERE when
/// nothing the server does after the WHERE depends on it (see the module
/// comment); each reads its argument as a column appended to the SELECT
/// list. Returns the filters and how many columns were appended.
pub(crate) fn split_filter(q: &mut Query) -> Vec<PostFilter> {
    let Query::Select(s) = q else { return Vec::new() };
    let Some(filter) = &s.filter else { return Vec::new() };
    let after_where = s.aggregated || !s.group_by.is_empty() || s.having.is_some() || s.distinct || s.star || s.limit.is_some() || s.offset.is_some();
    if after_where || s.projection.iter().any(|p| p.expr.has_window() || p.expr.has_aggregate()) {
        return Vec::new();
    }
    let conjuncts: Vec<Expr> = match filter {
        Expr::And(v) => v.clone(),
        other => vec![other.clone()],
    };
    if !conjuncts.iter().any(|c| client_comparison(c).is_some()) {
        return Vec::new();
    }
    let mut kept = Vec::new();
    let mut filters = Vec::new();
    for c in conjuncts {
        match client_comparison(&c) {
            Some((name, arg, op, value)) => {
                filters.push(PostFilter { column: s.projection.len(), name, op, value });
                let label = format!("{}cf{}", super::RESERVED_PREFIX, filters.len() - 1);
                s.projection.push(ProjectItem { expr: arg.clone(), label });
            }
            None => kept.push(c),
        }
    }
    s.filter = match kept.len() {
        0 => None,
        1 => kept.pop(),
        _ => Some(Expr::And(kept)),
    };
    filters
}
