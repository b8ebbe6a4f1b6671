//! Accumulators that keep several values, or pick values by an order of
//! their own: `$firstN` `$lastN` `$maxN` `$minN` `$topN` `$bottomN` `$top`
//! `$bottom`. Both `$group` and `$setWindowFields` use them.
//!
//! A group (or window) hands over its documents in arrival order as
//! [`Item`]s; [`NarySpec::finish`] picks the answer from them. MongoDB's
//! rules, which the selection reproduces:
//! - `$firstN`/`$lastN` keep null and turn missing into null; `$maxN`/`$minN`
//!   skip null and missing and answer largest-first / smallest-first.
//! - `$top`/`$bottom` order documents by their own `sortBy` (as `$sort`
//!   would, missing sorting as null); `$topN` takes the first `n`, `$bottomN`
//!   the last `n`, both answered in `sortBy` order. Among documents tied on the
//!   sort key the earlier arrival wins a contested place, except in a window
//!   whose start moves (MongoDB's removable state keeps the later arrival).
//! - `n` must be a positive whole number (5787902/5787903/5787908).
use crate::compare::cmp_bson;
use crate::expr::{self, Vars};
use crate::num::Num;
use crate::sort::SortSpec;
use crate::{EngineError, Result};
use bson::{Bson, Document};
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum NaryOp {
    FirstN,
    LastN,
    MaxN,
    MinN,
    TopN,
    BottomN,
    Top,
    Bottom,
}

impl NaryOp {
    fn from_name(op: &str) -> Option<NaryOp> {
        Some(match op {
            "$firstN" => NaryOp::FirstN,
            "$lastN" => NaryOp::LastN,
            "$maxN" => NaryOp::MaxN,
            "$minN" => NaryOp::MinN,
            "$topN" => NaryOp::TopN,
            "$bottomN" => NaryOp::BottomN,
            "$top" => NaryOp::Top,
            "$bottom" => NaryOp::Bottom,
            _ => return None,
        })
    }

    fn sorted(self) -> bool {
        matches!(self, NaryOp::TopN | NaryOp::BottomN | NaryOp::Top | NaryOp::Bottom)
    }

    /// `$top` and `$bottom` answer one value, not an array.
    fn single(self) -> bool {
        matches!(self, NaryOp::Top | NaryOp::Bottom)
    }
}

/// A parsed n-ary accumulator.
#[derive(Debug, Clone)]
pub(super) struct NarySpec {
    op: NaryOp,
    /// The `n` expression (the constant 1 for `$top`/`$bottom`).
    n: Bson,
    /// `input` for the `N` family, `output` for top/bottom.
    value: Bson,
    sort: Option<SortSpec>,
}

/// One document's contribution: its value and, for top/bottom, its sort key.
#[derive(Debug, Clone)]
pub(super) struct Item {
    value: Option<Bson>,
    key: Vec<Bson>,
}

impl NarySpec {
    /// Parses `{op: arg}` when `op` is an n-ary accumulator; `None` otherwise.
    pub(super) fn parse(op: &str, arg: &Bson) -> Result<Option<NarySpec>> {
        let Some(kind) = NaryOp::from_name(op) else { return Ok(None) };
        Ok(Some(if kind.sorted() { parse_sorted(kind, op, arg)? } else { parse_n(kind, op, arg)? }))
    }

    /// What one document contributes.
    pub(super) fn item(&self, doc: &Document, vars: &Vars) -> Result<Item> {
        let value = expr::eval_value(&self.value, doc, vars)?;
        let key = self.sort.as_ref().map(|s| s.key_of(doc)).unwrap_or_default();
        Ok(Item { value, key })
    }

    /// Evaluates `n` against `root`: the group key in `$group` (when it is a
    /// document), an empty document in a window, where `n` must be constant.
    pub(super) fn n_for(&self, root: &Document, vars: &Vars) -> Result<usize> {
        let v = expr::eval_value(&self.n, root, vars)?;
        let Some(num) = v.as_ref().and_then(Num::from_bson) else {
            return Err(EngineError::location(
                5787902,
                format!("Value for 'n' must be of integral type, but found {}", v.unwrap_or(Bson::Null)),
            ));
        };
        let Some(n) = num.to_i64_exact() else {
            return Err(EngineError::location(5787903, format!("Value for 'n' must be of integral type, but found {}", num.to_bson())));
        };
        if n <= 0 {
            return Err(EngineError::location(5787908, format!("'n' must be greater than 0, found {n}")));
        }
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// The accumulator's answer over `items` (in arrival order). With
    /// `sliding`, ties at the edge of `$bottomN` go to the later arrival, as in
    /// MongoDB's windows whose lower bound moves.
    pub(super) fn finish(&self, items: &[Item], n: usize, sliding: bool) -> Bson {
        let picked: Vec<Bson> = match self.op {
            NaryOp::FirstN => items.iter().take(n).map(|i| i.value.clone().unwrap_or(Bson::Null)).collect(),
            NaryOp::LastN => {
                let skip = items.len().saturating_sub(n);
                items.iter().skip(skip).map(|i| i.value.clone().unwrap_or(Bson::Null)).collect()
            }
            NaryOp::MaxN | NaryOp::MinN => {
                let mut values: Vec<&Bson> = items
                    .iter()
                    .filter_map(|i| i.value.as_ref())
                    .filter(|v| !matches!(v, Bson::Null | Bson::Undefined))
                    .collect();
                // A stable sort keeps equal values in arrival order.
                if self.op == NaryOp::MaxN {
                    values.sort_by(|a, b| cmp_bson(b, a));
                } else {
                    values.sort_by(|a, b| cmp_bson(a, b));
                }
                values.into_iter().take(n).cloned().collect()
            }
            NaryOp::TopN | NaryOp::Top => {
                let mut order: Vec<usize> = (0..items.len()).collect();
                order.sort_by(|a, b| self.compare(&items[*a], &items[*b]));
                order.into_iter().take(n).map(|i| output(&items[i])).collect()
            }
            NaryOp::BottomN | NaryOp::Bottom => {
                // Choose the n largest keys (ties: earlier arrival unless
                // sliding), then answer them in ascending key order.
                let mut order: Vec<usize> = (0..items.len()).collect();
                if sliding {
                    order.sort_by(|a, b| self.compare(&items[*a], &items[*b]));
                    let skip = order.len().saturating_sub(n);
                    order.drain(..skip);
                } else {
                    order.sort_by(|a, b| self.compare(&items[*b], &items[*a]));
                    order.truncate(n);
                    order.sort_unstable();
                    order.sort_by(|a, b| self.compare(&items[*a], &items[*b]));
                }
                order.into_iter().map(|i| output(&items[i])).collect()
            }
        };
        if self.op.single() {
            picked.into_iter().next().unwrap_or(Bson::Null)
        } else {
            Bson::Array(picked)
        }
    }

    fn compare(&self, a: &Item, b: &Item) -> Ordering {
        match &self.sort {
            Some(s) => s.compare_keys(&a.key, &b.key),
            None => Ordering::Equal,
        }
    }
}

/// Top/bottom answer `output` as is, missing upgraded to null.
fn output(item: &Item) -> Bson {
    item.value.clone().unwrap_or(Bson::Null)
}

/// `{input, n}` for `$firstN` `$lastN` `$maxN` `$minN`.
fn parse_n(kind: NaryOp, op: &str, arg: &Bson) -> Result<NarySpec> {
    let Bson::Document(d) = arg else {
        let code = if matches!(kind, NaryOp::MaxN | NaryOp::MinN) { 5787900 } else { 5787801 };
        return Err(EngineError::location(code, format!("{op} specification must be an object; found {arg}")));
    };
    let (mut n, mut input) = (None, None);
    for (k, v) in d {
        match k.as_str() {
            "n" => n = Some(v.clone()),
            "input" => input = Some(v.clone()),
            other => return Err(EngineError::location(5787901, format!("Unknown argument for 'n' operator: {other}"))),
        }
    }
    let n = n.ok_or_else(|| EngineError::location(5787906, "Missing value for 'n'"))?;
    let value = input.ok_or_else(|| EngineError::location(5787907, "Missing value for 'input'"))?;
    Ok(NarySpec { op: kind, n, value, sort: None })
}

/// `{n, sortBy, output}` for `$topN`/`$bottomN`, `{sortBy, output}` for
/// `$top`/`$bottom`.
fn parse_sorted(kind: NaryOp, op: &str, arg: &Bson) -> Result<NarySpec> {
    let Bson::Document(d) = arg else {
        return Err(EngineError::location(5788001, format!("{op} specification must be an object; found {arg}")));
    };
    let (mut n, mut output, mut sort) = (None, None, None);
    for (k, v) in d {
        match k.as_str() {
            "n" if !kind.single() => n = Some(v.clone()),
            "output" => output = Some(v.clone()),
            "sortBy" => match v {
                Bson::Document(s) => sort = Some(SortSpec::parse(s)?),
                other => {
                    return Err(EngineError::location(10065, format!("{op} 'sortBy' must be an object, found {other}")));
                }
            },
            other => return Err(EngineError::location(5788002, format!("Unknown argument to {op} '{other}'"))),
        }
    }
    let n = match n {
        Some(n) => n,
        None if kind.single() => Bson::Int32(1),
        None => return Err(EngineError::location(5788003, "Missing value for 'n'")),
    };
    let value = output.ok_or_else(|| EngineError::location(5788004, "Missing value for 'output'"))?;
    let sort = sort.ok_or_else(|| EngineError::location(5788005, "Missing value for 'sortBy'"))?;
    Ok(NarySpec { op: kind, n, value, sort: Some(sort) })
}
