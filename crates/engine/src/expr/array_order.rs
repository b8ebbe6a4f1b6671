//! Array operators that order or pick elements: `$sortArray`, and the array
//! forms of `$firstN` `$lastN` `$maxN` `$minN`.
use super::{nullish, type_name, Ctx, Value};
use crate::compare::cmp_bson;
use crate::num::Num;
use crate::sort::SortSpec;
use crate::{EngineError, Result};
use bson::{Bson, Document};

pub(super) fn dispatch(cx: &Ctx, op: &str, arg: &Bson) -> Option<Result<Value>> {
    Some(match op {
        "$sortArray" => sort_array(cx, arg),
        "$firstN" | "$lastN" | "$maxN" | "$minN" => pick_n(cx, op, arg),
        _ => return None,
    })
}

/// How `$sortArray` orders: whole values, or documents by fields.
enum SortBy {
    Values { descending: bool },
    Fields(SortSpec),
}

fn parse_sort_by(spec: &Bson) -> Result<SortBy> {
    match spec {
        Bson::Document(pattern) => Ok(SortBy::Fields(SortSpec::parse(pattern)?)),
        other => match Num::from_bson(other).and_then(Num::to_i64_exact) {
            Some(1) => Ok(SortBy::Values { descending: false }),
            Some(-1) => Ok(SortBy::Values { descending: true }),
            _ => Err(EngineError::location(
                2942503,
                format!("$sortArray sortBy must be 1, -1 or a sort pattern object, found {other}"),
            )),
        },
    }
}

fn sort_array(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let Bson::Document(spec) = arg else {
        return Err(EngineError::location(2942500, format!("$sortArray requires an object as an argument, found: {}", crate::types::type_name(arg))));
    };
    let (mut input, mut sort_by) = (None, None);
    for (k, v) in spec {
        match k.as_str() {
            "input" => input = Some(v),
            "sortBy" => sort_by = Some(parse_sort_by(v)?),
            other => return Err(EngineError::location(2942501, format!("$sortArray found an unknown argument: {other}"))),
        }
    }
    let input = input.ok_or_else(|| EngineError::location(2942502, "$sortArray requires 'input' to be specified"))?;
    let sort_by = sort_by.ok_or_else(|| EngineError::location(2942503, "$sortArray requires 'sortBy' to be specified"))?;
    let value = cx.eval(input)?;
    if nullish(&value) {
        return Ok(Some(Bson::Null));
    }
    let Some(Bson::Array(mut items)) = value else {
        return Err(EngineError::location(2942504, format!("The input argument to $sortArray must be an array, but was of type: {}", type_name(&value))));
    };
    match sort_by {
        SortBy::Values { descending } => items.sort_by(|a, b| {
            let o = cmp_bson(a, b);
            if descending { o.reverse() } else { o }
        }),
        SortBy::Fields(pattern) => {
            // Elements that are not documents have none of the fields.
            let empty = Document::new();
            let mut keyed: Vec<(Vec<Bson>, Bson)> = items
                .into_iter()
                .map(|item| (pattern.key_of(item.as_document().unwrap_or(&empty)), item))
                .collect();
            keyed.sort_by(|a, b| pattern.compare_keys(&a.0, &b.0));
            items = keyed.into_iter().map(|(_, item)| item).collect();
        }
    }
    Ok(Some(Bson::Array(items)))
}

/// `n` of the array forms: a positive whole number.
fn positive_n(v: &Value) -> Result<usize> {
    let Some(num) = v.as_ref().and_then(Num::from_bson) else {
        return Err(EngineError::location(5787902, format!("Value for 'n' must be of integral type, but found {}", v.clone().unwrap_or(Bson::Null))));
    };
    let Some(n) = num.to_i64_exact() else {
        return Err(EngineError::location(5787903, format!("Value for 'n' must be of integral type, but found {}", num.to_bson())));
    };
    if n <= 0 {
        return Err(EngineError::location(5787908, format!("'n' must be greater than 0, found {n}")));
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

fn pick_n(cx: &Ctx, op: &str, arg: &Bson) -> Result<Value> {
    let Bson::Document(spec) = arg else {
        return Err(EngineError::location(5787801, format!("{op} specification must be an object; found {arg}")));
    };
    let (mut n, mut input) = (None, None);
    for (k, v) in spec {
        match k.as_str() {
            "n" => n = Some(v),
            "input" => input = Some(v),
            other => return Err(EngineError::location(5787901, format!("Unknown argument for 'n' operator: {other}"))),
        }
    }
    let n = n.ok_or_else(|| EngineError::location(5787906, "Missing value for 'n'"))?;
    let input = input.ok_or_else(|| EngineError::location(5787907, "Missing value for 'input'"))?;
    let n = positive_n(&cx.eval(n)?)?;
    let value = cx.eval(input)?;
    let Some(Bson::Array(items)) = value else {
        return Err(EngineError::location(5788200, format!("Input must be an array, found {}", type_name(&value))));
    };
    let picked: Vec<Bson> = match op {
        "$firstN" => items.into_iter().take(n).collect(),
        "$lastN" => {
            let skip = items.len().saturating_sub(n);
            items.into_iter().skip(skip).collect()
        }
        _ => {
            // $maxN/$minN leave out null, largest first / smallest first.
            let mut values: Vec<Bson> = items.into_iter().filter(|v| !matches!(v, Bson::Null | Bson::Undefined)).collect();
            if op == "$maxN" {
                values.sort_by(|a, b| cmp_bson(b, a));
            } else {
                values.sort_by(cmp_bson);
            }
            values.truncate(n);
            values
        }
    };
    Ok(Some(Bson::Array(picked)))
}
