//! Array and set operators, and the expression forms of `$sum`/`$avg`/`$min`/`$max`.
use super::{arg_list, arity, arity_range, nullish, truthy, type_name, Ctx, Value};
use crate::compare::{bson_eq, canonical_key, cmp_bson};
use crate::num::{self, Num};
use crate::{EngineError, Result};
use bson::{Bson, Document};
use std::collections::HashSet;

pub(super) fn dispatch(cx: &Ctx, op: &str, arg: &Bson) -> Option<Result<Value>> {
    Some(match op {
        "$in" => in_array(cx, arg),
        "$size" => size(cx, arg),
        "$arrayElemAt" => elem_at(cx, arg),
        "$first" => first_last(cx, op, arg, true),
        "$last" => first_last(cx, op, arg, false),
        "$filter" => filter(cx, arg),
        "$map" => map(cx, arg),
        "$reduce" => reduce(cx, arg),
        "$concatArrays" => concat_arrays(cx, arg),
        "$isArray" => {
            let args = arg_list(arg);
            arity(op, args, 1).and_then(|_| Ok(Some(Bson::Boolean(matches!(cx.eval(&args[0])?, Some(Bson::Array(_)))))))
        }
        "$slice" => slice(cx, arg),
        "$reverseArray" => unary_array(cx, op, arg, |mut a| {
            a.reverse();
            Ok(Bson::Array(a))
        }),
        "$indexOfArray" => index_of_array(cx, arg),
        "$range" => range(cx, arg),
        "$setUnion" | "$setIntersection" | "$setDifference" | "$setEquals" | "$setIsSubset" => sets(cx, op, arg),
        "$anyElementTrue" => unary_array(cx, op, arg, |a| Ok(Bson::Boolean(a.iter().any(truthy)))),
        "$allElementsTrue" => unary_array(cx, op, arg, |a| Ok(Bson::Boolean(a.iter().all(truthy)))),
        "$arrayToObject" => unary_array(cx, op, arg, array_to_object),
        "$objectToArray" => object_to_array(cx, arg),
        "$zip" => zip(cx, arg),
        "$sum" | "$avg" | "$min" | "$max" => numeric_summary(cx, op, arg),
        _ => return None,
    })
}

fn array_arg(op: &str, v: &Value) -> Result<Vec<Bson>> {
    match v {
        Some(Bson::Array(a)) => Ok(a.clone()),
        _ => Err(EngineError::location(28745, format!("{op}'s argument must be an array, but is {}", type_name(v)))),
    }
}

fn unary_array(cx: &Ctx, op: &str, arg: &Bson, f: impl Fn(Vec<Bson>) -> Result<Bson>) -> Result<Value> {
    let args = arg_list(arg);
    arity(op, args, 1)?;
    let v = cx.eval(&args[0])?;
    if nullish(&v) {
        return Ok(Some(Bson::Null));
    }
    f(array_arg(op, &v)?).map(Some)
}

fn in_array(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let args = arg_list(arg);
    arity("$in", args, 2)?;
    let needle = cx.eval(&args[0])?;
    let hay = cx.eval(&args[1])?;
    let Some(Bson::Array(items)) = &hay else {
        return Err(EngineError::location(40081, format!("$in requires an array as a second argument, found: {}", type_name(&hay))));
    };
    let needle = needle.unwrap_or(Bson::Null);
    Ok(Some(Bson::Boolean(items.iter().any(|i| bson_eq(i, &needle)))))
}

fn size(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let args = arg_list(arg);
    arity("$size", args, 1)?;
    let v = cx.eval(&args[0])?;
    match &v {
        Some(Bson::Array(a)) => Ok(Some(Bson::Int32(i32::try_from(a.len()).unwrap_or(i32::MAX)))),
        _ => Err(EngineError::location(17124, format!("The argument to $size must be an array. Type of argument: {}", type_name(&v)))),
    }
}

fn index(op: &str, v: &Value) -> Result<i64> {
    v.as_ref()
        .and_then(Num::from_bson)
        .and_then(Num::to_i64_exact)
        .ok_or_else(|| EngineError::location(28690, format!("{op}'s second argument must be a numeric value, found {}", type_name(v))))
}

fn elem_at(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let args = arg_list(arg);
    arity("$arrayElemAt", args, 2)?;
    let arr = cx.eval(&args[0])?;
    let idx = cx.eval(&args[1])?;
    if nullish(&arr) || nullish(&idx) {
        return Ok(Some(Bson::Null));
    }
    let a = array_arg("$arrayElemAt", &arr)?;
    let i = index("$arrayElemAt", &idx)?;
    let pos = if i < 0 { a.len() as i64 + i } else { i };
    // Out of range is missing, not null.
    Ok(usize::try_from(pos).ok().and_then(|p| a.get(p).cloned()))
}

fn first_last(cx: &Ctx, op: &str, arg: &Bson, first: bool) -> Result<Value> {
    let args = arg_list(arg);
    arity(op, args, 1)?;
    let v = cx.eval(&args[0])?;
    match &v {
        None => Ok(None),
        Some(Bson::Null) | Some(Bson::Undefined) => Ok(Some(Bson::Null)),
        Some(Bson::Array(a)) => Ok(if first { a.first().cloned() } else { a.last().cloned() }),
        _ => Err(EngineError::location(28689, format!("{op}'s argument must be an array, but is {}", type_name(&v)))),
    }
}

fn spec<'b>(op: &str, arg: &'b Bson) -> Result<&'b Document> {
    match arg {
        Bson::Document(d) => Ok(d),
        _ => Err(EngineError::location(28646, format!("{op} only supports an object as its argument"))),
    }
}

fn var_name(d: &Document, default: &str) -> Result<String> {
    match d.get("as") {
        None => Ok(default.to_string()),
        Some(Bson::String(s)) => Ok(s.clone()),
        Some(_) => Err(EngineError::bad_value("'as' must be a string")),
    }
}

fn filter(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let d = spec("$filter", arg)?;
    let (Some(input), Some(cond)) = (d.get("input"), d.get("cond")) else {
        return Err(EngineError::location(28648, "Missing 'input' or 'cond' parameter to $filter"));
    };
    let name = var_name(d, "this")?;
    let v = cx.eval(input)?;
    if nullish(&v) {
        return Ok(Some(Bson::Null));
    }
    let limit = match d.get("limit") {
        Some(l) => Some(index("$filter", &cx.eval(l)?)?.max(0) as usize),
        None => None,
    };
    let mut out = Vec::new();
    for item in array_arg("$filter", &v)? {
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        let keep = cx.with_vars(vec![(name.clone(), item.clone())], |c| c.eval(cond))?;
        if super::truthy_value(&keep) {
            out.push(item);
        }
    }
    Ok(Some(Bson::Array(out)))
}

fn map(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let d = spec("$map", arg)?;
    let (Some(input), Some(body)) = (d.get("input"), d.get("in")) else {
        return Err(EngineError::location(16882, "Missing 'input' or 'in' parameter to $map"));
    };
    let name = var_name(d, "this")?;
    let v = cx.eval(input)?;
    if nullish(&v) {
        return Ok(Some(Bson::Null));
    }
    let mut out = Vec::new();
    for item in array_arg("$map", &v)? {
        out.push(cx.with_vars(vec![(name.clone(), item)], |c| c.eval(body))?.unwrap_or(Bson::Null));
    }
    Ok(Some(Bson::Array(out)))
}

fn reduce(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let d = spec("$reduce", arg)?;
    let (Some(input), Some(init), Some(body)) = (d.get("input"), d.get("initialValue"), d.get("in")) else {
        return Err(EngineError::location(40075, "$reduce requires 'input', 'initialValue' and 'in'"));
    };
    let v = cx.eval(input)?;
    if nullish(&v) {
        return Ok(Some(Bson::Null));
    }
    let mut acc = cx.eval_null(init)?;
    for item in array_arg("$reduce", &v)? {
        acc = cx
            .with_vars(vec![("value".into(), acc), ("this".into(), item)], |c| c.eval(body))?
            .unwrap_or(Bson::Null);
    }
    Ok(Some(acc))
}

fn concat_arrays(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let mut out = Vec::new();
    for a in arg_list(arg) {
        let v = cx.eval(a)?;
        if nullish(&v) {
            return Ok(Some(Bson::Null));
        }
        out.extend(array_arg("$concatArrays", &v)?);
    }
    Ok(Some(Bson::Array(out)))
}

fn slice(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let args = arg_list(arg);
    arity_range("$slice", args, 2, 3)?;
    let vals = cx.eval_all(args)?;
    if vals.iter().any(nullish) {
        return Ok(Some(Bson::Null));
    }
    let a = array_arg("$slice", &vals[0])?;
    let len = a.len() as i64;
    let (start, count) = if vals.len() == 2 {
        let n = index("$slice", &vals[1])?;
        if n >= 0 { (0, n) } else { ((len + n).max(0), n.saturating_neg()) }
    } else {
        let p = index("$slice", &vals[1])?;
        let n = index("$slice", &vals[2])?;
        if n <= 0 {
            return Err(EngineError::location(28729, "Third argument to $slice must be positive"));
        }
        (if p < 0 { (len + p).max(0) } else { p.min(len) }, n)
    };
    let start = start.min(len) as usize;
    let end = (start as i64).saturating_add(count).min(len) as usize;
    Ok(Some(Bson::Array(a[start..end].to_vec())))
}

fn index_of_array(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let args = arg_list(arg);
    arity_range("$indexOfArray", args, 2, 4)?;
    let vals = cx.eval_all(args)?;
    if nullish(&vals[0]) {
        return Ok(Some(Bson::Null));
    }
    let a = array_arg("$indexOfArray", &vals[0])?;
    let needle = vals[1].clone().unwrap_or(Bson::Null);
    let start = match vals.get(2) {
        Some(v) => index("$indexOfArray", v)?.max(0) as usize,
        None => 0,
    };
    let end = match vals.get(3) {
        Some(v) => (index("$indexOfArray", v)?.max(0) as usize).min(a.len()),
        None => a.len(),
    };
    let found = (start..end).find(|&i| bson_eq(&a[i], &needle));
    Ok(Some(Bson::Int32(found.map(|i| i32::try_from(i).unwrap_or(i32::MAX)).unwrap_or(-1))))
}

fn range(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let args = arg_list(arg);
    arity_range("$range", args, 2, 3)?;
    let vals = cx.eval_all(args)?;
    let start = index("$range", &vals[0])?;
    let end = index("$range", &vals[1])?;
    let step = match vals.get(2) {
        Some(v) => index("$range", v)?,
        None => 1,
    };
    if step == 0 {
        return Err(EngineError::location(34449, "$range requires a non-zero step value"));
    }
    let mut out = Vec::new();
    let mut i = start;
    while (step > 0 && i < end) || (step < 0 && i > end) {
        out.push(Bson::Int32(i32::try_from(i).unwrap_or(i32::MAX)));
        if out.len() > 10_000_000 {
            return Err(EngineError::bad_value("$range would produce too many elements"));
        }
        match i.checked_add(step) {
            Some(next) => i = next,
            None => break,
        }
    }
    Ok(Some(Bson::Array(out)))
}

fn dedup(items: &[Bson]) -> Vec<Bson> {
    let mut seen = HashSet::new();
    items.iter().filter(|i| seen.insert(canonical_key(i))).cloned().collect()
}

fn sets(cx: &Ctx, op: &str, arg: &Bson) -> Result<Value> {
    let args = arg_list(arg);
    let vals = cx.eval_all(args)?;
    let returns_null_on_null = matches!(op, "$setUnion" | "$setIntersection" | "$setDifference");
    if returns_null_on_null && vals.iter().any(nullish) {
        return Ok(Some(Bson::Null));
    }
    let mut arrays = Vec::with_capacity(vals.len());
    for v in &vals {
        arrays.push(array_arg(op, v)?);
    }
    let keys = |a: &[Bson]| -> HashSet<String> { a.iter().map(canonical_key).collect() };
    Ok(Some(match op {
        "$setUnion" => Bson::Array(dedup(&arrays.concat())),
        "$setIntersection" => {
            let Some((first, rest)) = arrays.split_first() else { return Ok(Some(Bson::Array(vec![]))) };
            let others: Vec<HashSet<String>> = rest.iter().map(|a| keys(a)).collect();
            Bson::Array(dedup(first).into_iter().filter(|i| others.iter().all(|o| o.contains(&canonical_key(i)))).collect())
        }
        "$setDifference" => {
            arity(op, args, 2)?;
            let other = keys(&arrays[1]);
            Bson::Array(dedup(&arrays[0]).into_iter().filter(|i| !other.contains(&canonical_key(i))).collect())
        }
        "$setEquals" => {
            if arrays.len() < 2 {
                return Err(EngineError::location(17045, "$setEquals needs at least two arguments"));
            }
            let first = keys(&arrays[0]);
            Bson::Boolean(arrays.iter().skip(1).all(|a| keys(a) == first))
        }
        _ => {
            arity(op, args, 2)?;
            let other = keys(&arrays[1]);
            Bson::Boolean(keys(&arrays[0]).is_subset(&other))
        }
    }))
}

fn array_to_object(items: Vec<Bson>) -> Result<Bson> {
    let mut out = Document::new();
    for item in items {
        match item {
            Bson::Array(pair) if pair.len() == 2 => match &pair[0] {
                Bson::String(k) => {
                    out.insert(k.clone(), pair[1].clone());
                }
                _ => return Err(EngineError::location(40395, "$arrayToObject requires an array of key-value pairs with string keys")),
            },
            Bson::Document(d) => match (d.get("k"), d.get("v")) {
                (Some(Bson::String(k)), Some(v)) if d.len() == 2 => {
                    out.insert(k.clone(), v.clone());
                }
                _ => return Err(EngineError::location(40392, "$arrayToObject requires documents of the form {k: <string>, v: <any>}")),
            },
            _ => return Err(EngineError::location(40398, "$arrayToObject requires an array of pairs or {k, v} documents")),
        }
    }
    Ok(Bson::Document(out))
}

fn object_to_array(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let args = arg_list(arg);
    arity("$objectToArray", args, 1)?;
    let v = cx.eval(&args[0])?;
    match v {
        ref n if nullish(n) => Ok(Some(Bson::Null)),
        Some(Bson::Document(d)) => Ok(Some(Bson::Array(
            d.into_iter()
                .map(|(k, v)| {
                    let mut e = Document::new();
                    e.insert("k", k);
                    e.insert("v", v);
                    Bson::Document(e)
                })
                .collect(),
        ))),
        other => Err(EngineError::location(40390, format!("$objectToArray requires a document input, found: {}", type_name(&other)))),
    }
}

/// `{$sum: [..]}` etc.: with one array argument the operator summarises its
/// elements, otherwise it summarises its arguments. Non-numbers are ignored
/// by `$sum`/`$avg`; `$min`/`$max` ignore null and missing.
fn numeric_summary(cx: &Ctx, op: &str, arg: &Bson) -> Result<Value> {
    let args = arg_list(arg);
    let values: Vec<Bson> = if args.len() == 1 {
        match cx.eval(&args[0])? {
            Some(Bson::Array(a)) => a,
            Some(v) => vec![v],
            None => vec![],
        }
    } else {
        cx.eval_all(args)?.into_iter().flatten().collect()
    };
    Ok(Some(match op {
        "$sum" => values.iter().filter_map(Num::from_bson).fold(Num::Int(0), num::add).to_bson(),
        "$avg" => {
            let nums: Vec<Num> = values.iter().filter_map(Num::from_bson).collect();
            if nums.is_empty() {
                Bson::Null
            } else {
                let total = nums.iter().copied().fold(Num::Int(0), num::add);
                num::div(total, Num::Long(nums.len() as i64)).map(Num::to_bson).unwrap_or(Bson::Null)
            }
        }
        _ => {
            let want = if op == "$min" { std::cmp::Ordering::Less } else { std::cmp::Ordering::Greater };
            let mut best: Option<Bson> = None;
            for v in values.into_iter().filter(|v| !matches!(v, Bson::Null | Bson::Undefined)) {
                best = match best {
                    Some(b) if cmp_bson(&v, &b) != want => Some(b),
                    _ => Some(v),
                };
            }
            best.unwrap_or(Bson::Null)
        }
    }))
}

/// `$zip`: transposes `inputs`, stopping at the shortest array unless
/// `useLongestLength`, which pads with `defaults` (or null).
fn zip(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let Bson::Document(spec) = arg else {
        return Err(EngineError::location(34460, format!("$zip only supports an object as an argument, found {}", crate::types::type_name(arg))));
    };
    let (mut inputs, mut defaults, mut longest) = (None, None, false);
    for (k, v) in spec {
        match k.as_str() {
            "inputs" => match v {
                Bson::Array(items) => inputs = Some(items),
                other => {
                    return Err(EngineError::location(34461, format!("inputs must be an array of expressions, found {}", crate::types::type_name(other))))
                }
            },
            "defaults" => match v {
                Bson::Array(items) => defaults = Some(items),
                other => {
                    return Err(EngineError::location(34462, format!("defaults must be an array of expressions, found {}", crate::types::type_name(other))))
                }
            },
            "useLongestLength" => match v {
                Bson::Boolean(b) => longest = *b,
                other => {
                    return Err(EngineError::location(34463, format!("useLongestLength must be a bool, found {}", crate::types::type_name(other))))
                }
            },
            other => return Err(EngineError::location(34464, format!("$zip found an unknown argument: {other}"))),
        }
    }
    let inputs = inputs.filter(|i| !i.is_empty()).ok_or_else(|| EngineError::location(34465, "$zip requires at least one input array"))?;
    if defaults.is_some() && !longest {
        return Err(EngineError::location(34466, "cannot specify defaults unless useLongestLength is true"));
    }
    if defaults.is_some_and(|d| d.len() != inputs.len()) {
        return Err(EngineError::location(34467, "inputs and defaults must be the same length"));
    }
    let mut arrays = Vec::with_capacity(inputs.len());
    for input in inputs {
        let v = cx.eval(input)?;
        if nullish(&v) {
            return Ok(Some(Bson::Null));
        }
        match v {
            Some(Bson::Array(items)) => arrays.push(items),
            other => {
                return Err(EngineError::location(
                    34468,
                    format!("$zip found a non-array expression in input: {}", other.unwrap_or(Bson::Null)),
                ))
            }
        }
    }
    let fill: Vec<Bson> = match defaults {
        Some(d) => d.iter().map(|e| cx.eval_null(e)).collect::<Result<_>>()?,
        None => vec![Bson::Null; arrays.len()],
    };
    let lengths = arrays.iter().map(Vec::len);
    let len = if longest { lengths.max() } else { lengths.min() }.unwrap_or(0);
    let rows = (0..len)
        .map(|i| Bson::Array(arrays.iter().zip(&fill).map(|(a, d)| a.get(i).cloned().unwrap_or_else(|| d.clone())).collect()))
        .collect();
    Ok(Some(Bson::Array(rows)))
}
