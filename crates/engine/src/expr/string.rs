//! String operators. Positions in `...CP` operators count Unicode code
//! points; the `...Bytes` variants count UTF-8 bytes.
use super::{arg_list, arity, arity_range, nullish, type_name, Ctx, Value};
use crate::num::Num;
use crate::{regex_util, EngineError, Result};
use bson::{Bson, Document};

pub(super) fn dispatch(cx: &Ctx, op: &str, arg: &Bson) -> Option<Result<Value>> {
    Some(match op {
        "$concat" => concat(cx, arg),
        "$substr" | "$substrBytes" => substr(cx, op, arg, false),
        "$substrCP" => substr(cx, op, arg, true),
        "$toLower" => case(cx, op, arg, false),
        "$toUpper" => case(cx, op, arg, true),
        "$strLenCP" => str_len(cx, op, arg, true),
        "$strLenBytes" => str_len(cx, op, arg, false),
        "$trim" => trim(cx, op, arg, true, true),
        "$ltrim" => trim(cx, op, arg, true, false),
        "$rtrim" => trim(cx, op, arg, false, true),
        "$indexOfCP" => index_of(cx, op, arg, true),
        "$indexOfBytes" => index_of(cx, op, arg, false),
        "$split" => split(cx, arg),
        "$regexMatch" | "$regexFind" | "$regexFindAll" => regex_op(cx, op, arg),
        "$replaceAll" => replace(cx, op, arg, true),
        "$replaceOne" => replace(cx, op, arg, false),
        "$strcasecmp" => strcasecmp(cx, arg),
        _ => return None,
    })
}

/// Coerces a value to text the way `$toLower`/`$substr` accept non-strings.
fn coerce_text(op: &str, v: &Value) -> Result<String> {
    Ok(match v {
        None | Some(Bson::Null) | Some(Bson::Undefined) => String::new(),
        Some(Bson::String(s)) | Some(Bson::Symbol(s)) => s.clone(),
        Some(b) if crate::types::is_number(b) || matches!(b, Bson::DateTime(_)) => {
            super::convert::to_string_value(b).unwrap_or_default()
        }
        _ => {
            return Err(EngineError::location(16007, format!("can't convert from BSON type {} to String in {op}", type_name(v))));
        }
    })
}

fn string_arg(op: &str, v: &Value, what: &str) -> Result<String> {
    match v {
        Some(Bson::String(s)) | Some(Bson::Symbol(s)) => Ok(s.clone()),
        _ => Err(EngineError::location(40085, format!("{op} requires that '{what}' be a string, found: {}", type_name(v)))),
    }
}

fn concat(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let mut out = String::new();
    let mut null = false;
    for a in arg_list(arg) {
        let v = cx.eval(a)?;
        match &v {
            Some(Bson::String(s)) => out.push_str(s),
            _ if nullish(&v) => null = true,
            _ => {
                return Err(EngineError::location(
                    16702,
                    format!("$concat only supports strings, not {}", type_name(&v)),
                ))
            }
        }
    }
    Ok(Some(if null { Bson::Null } else { Bson::String(out) }))
}

fn int_arg(op: &str, v: &Value) -> Result<i64> {
    v.as_ref()
        .and_then(Num::from_bson)
        .and_then(|n| n.to_i64_exact().or_else(|| Some(n.to_f64().trunc() as i64)))
        .ok_or_else(|| EngineError::location(34450, format!("{op}: expected a numeric value, got {}", type_name(v))))
}

fn substr(cx: &Ctx, op: &str, arg: &Bson, code_points: bool) -> Result<Value> {
    let args = arg_list(arg);
    arity(op, args, 3)?;
    let s = coerce_text(op, &cx.eval(&args[0])?)?;
    let start = int_arg(op, &cx.eval(&args[1])?)?;
    let len = int_arg(op, &cx.eval(&args[2])?)?;
    if code_points {
        if start < 0 {
            return Err(EngineError::location(34455, "$substrCP: the starting index must be nonnegative integer."));
        }
        if len < 0 {
            return Err(EngineError::location(34456, "$substrCP: length must be a nonnegative integer."));
        }
        let out: String = s.chars().skip(start as usize).take(len as usize).collect();
        return Ok(Some(Bson::String(out)));
    }
    let bytes = s.as_bytes();
    let start = usize::try_from(start).unwrap_or(usize::MAX).min(bytes.len());
    let end = if len < 0 { bytes.len() } else { start.saturating_add(len as usize).min(bytes.len()) };
    match std::str::from_utf8(&bytes[start..end]) {
        Ok(s) => Ok(Some(Bson::String(s.to_string()))),
        Err(_) => Err(EngineError::location(28656, format!("{op}: Invalid range, starting index is a UTF-8 continuation byte."))),
    }
}

fn case(cx: &Ctx, op: &str, arg: &Bson, upper: bool) -> Result<Value> {
    let args = arg_list(arg);
    arity(op, args, 1)?;
    let s = coerce_text(op, &cx.eval(&args[0])?)?;
    Ok(Some(Bson::String(if upper { s.to_uppercase() } else { s.to_lowercase() })))
}

fn str_len(cx: &Ctx, op: &str, arg: &Bson, code_points: bool) -> Result<Value> {
    let args = arg_list(arg);
    arity(op, args, 1)?;
    let v = cx.eval(&args[0])?;
    let Some(Bson::String(s)) = &v else {
        return Err(EngineError::location(34471, format!("{op} requires a string argument, found: {}", type_name(&v))));
    };
    let n = if code_points { s.chars().count() } else { s.len() };
    Ok(Some(Bson::Int32(i32::try_from(n).unwrap_or(i32::MAX))))
}

fn spec<'b>(op: &str, arg: &'b Bson) -> Result<&'b Document> {
    match arg {
        Bson::Document(d) => Ok(d),
        _ => Err(EngineError::location(50696, format!("{op} requires an object as an argument"))),
    }
}

fn trim(cx: &Ctx, op: &str, arg: &Bson, left: bool, right: bool) -> Result<Value> {
    let d = spec(op, arg)?;
    let input = cx.eval(d.get("input").unwrap_or(&Bson::Null))?;
    if nullish(&input) {
        return Ok(Some(Bson::Null));
    }
    let s = string_arg(op, &input, "input")?;
    let chars: Option<Vec<char>> = match d.get("chars") {
        None => None,
        Some(c) => {
            let cv = cx.eval(c)?;
            if nullish(&cv) {
                return Ok(Some(Bson::Null));
            }
            Some(string_arg(op, &cv, "chars")?.chars().collect())
        }
    };
    let is_trim = |c: char| match &chars {
        Some(set) => set.contains(&c),
        // MongoDB's default set: whitespace and the null character.
        None => c.is_whitespace() || c == '\0',
    };
    let mut out: &str = &s;
    if left {
        out = out.trim_start_matches(is_trim);
    }
    if right {
        out = out.trim_end_matches(is_trim);
    }
    Ok(Some(Bson::String(out.to_string())))
}

fn index_of(cx: &Ctx, op: &str, arg: &Bson, code_points: bool) -> Result<Value> {
    let args = arg_list(arg);
    arity_range(op, args, 2, 4)?;
    let s = cx.eval(&args[0])?;
    if nullish(&s) {
        return Ok(Some(Bson::Null));
    }
    let s = string_arg(op, &s, "string")?;
    let sub = string_arg(op, &cx.eval(&args[1])?, "substring")?;
    let start = match args.get(2) {
        Some(a) => int_arg(op, &cx.eval(a)?)?.max(0) as usize,
        None => 0,
    };
    let end = match args.get(3) {
        Some(a) => Some(int_arg(op, &cx.eval(a)?)?.max(0) as usize),
        None => None,
    };
    let found = if code_points {
        let chars: Vec<char> = s.chars().collect();
        let needle: Vec<char> = sub.chars().collect();
        let end = end.unwrap_or(chars.len()).min(chars.len());
        if start > end {
            None
        } else {
            (start..=end.saturating_sub(needle.len()).max(start))
                .find(|&i| i + needle.len() <= end && chars[i..i + needle.len()] == needle[..])
        }
    } else {
        let bytes = s.as_bytes();
        let end = end.unwrap_or(bytes.len()).min(bytes.len());
        if start > end {
            None
        } else {
            let needle = sub.as_bytes();
            (start..=end).find(|&i| i + needle.len() <= end && &bytes[i..i + needle.len()] == needle)
        }
    };
    Ok(Some(Bson::Int32(found.map(|i| i32::try_from(i).unwrap_or(i32::MAX)).unwrap_or(-1))))
}

fn split(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let args = arg_list(arg);
    arity("$split", args, 2)?;
    let s = cx.eval(&args[0])?;
    if nullish(&s) {
        return Ok(Some(Bson::Null));
    }
    let s = string_arg("$split", &s, "string")?;
    let d = string_arg("$split", &cx.eval(&args[1])?, "delimiter")?;
    if d.is_empty() {
        return Err(EngineError::location(40087, "$split requires a non-empty separator"));
    }
    Ok(Some(Bson::Array(s.split(d.as_str()).map(|p| Bson::String(p.to_string())).collect())))
}

fn regex_op(cx: &Ctx, op: &str, arg: &Bson) -> Result<Value> {
    let d = spec(op, arg)?;
    let input = cx.eval(d.get("input").unwrap_or(&Bson::Null))?;
    let regex = cx.eval(d.get("regex").unwrap_or(&Bson::Null))?;
    let options = match d.get("options") {
        Some(o) => cx.eval(o)?,
        None => None,
    };
    let (pattern, mut opts) = match &regex {
        Some(Bson::String(s)) => (s.clone(), String::new()),
        Some(Bson::RegularExpression(r)) => (r.pattern.as_str().to_string(), r.options.as_str().to_string()),
        v if nullish(v) => {
            return Ok(Some(no_match(op)));
        }
        _ => return Err(EngineError::location(51105, format!("{op} needs 'regex' to be of type string or regex"))),
    };
    match &options {
        Some(Bson::String(o)) => opts.push_str(o),
        v if nullish(v) => {}
        _ => return Err(EngineError::location(51106, format!("{op} needs 'options' to be of type string"))),
    }
    let re = regex_util::compile(&pattern, &opts)?;
    let text = match &input {
        Some(Bson::String(s)) => s.clone(),
        v if nullish(v) => return Ok(Some(no_match(op))),
        _ => return Err(EngineError::location(51104, format!("{op} needs 'input' to be of type string"))),
    };
    let describe = |caps: &crate::regex_util::Captures| -> Bson {
        let whole = caps.whole();
        let idx = text[..whole.start].chars().count();
        let groups: Vec<Bson> = caps
            .groups
            .iter()
            .skip(1)
            .map(|g| g.clone().map(|r| Bson::String(text[r].to_string())).unwrap_or(Bson::Null))
            .collect();
        let mut out = Document::new();
        out.insert("match", &text[whole]);
        out.insert("idx", i32::try_from(idx).unwrap_or(i32::MAX));
        out.insert("captures", groups);
        Bson::Document(out)
    };
    Ok(Some(match op {
        "$regexMatch" => Bson::Boolean(re.is_match(&text)?),
        "$regexFind" => re.captures(&text)?.as_ref().map(describe).unwrap_or(Bson::Null),
        _ => Bson::Array(re.captures_all(&text, false)?.iter().map(describe).collect()),
    }))
}

fn no_match(op: &str) -> Bson {
    match op {
        "$regexMatch" => Bson::Boolean(false),
        "$regexFind" => Bson::Null,
        _ => Bson::Array(vec![]),
    }
}

fn replace(cx: &Ctx, op: &str, arg: &Bson, all: bool) -> Result<Value> {
    let d = spec(op, arg)?;
    let mut parts = Vec::new();
    for key in ["input", "find", "replacement"] {
        let v = cx.eval(d.get(key).unwrap_or(&Bson::Null))?;
        if nullish(&v) {
            return Ok(Some(Bson::Null));
        }
        parts.push(string_arg(op, &v, key)?);
    }
    let (input, find, repl) = (&parts[0], &parts[1], &parts[2]);
    Ok(Some(Bson::String(if all {
        if find.is_empty() {
            input.clone()
        } else {
            input.replace(find.as_str(), repl)
        }
    } else {
        input.replacen(find.as_str(), repl, 1)
    })))
}

fn strcasecmp(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let args = arg_list(arg);
    arity("$strcasecmp", args, 2)?;
    let a = coerce_text("$strcasecmp", &cx.eval(&args[0])?)?.to_uppercase();
    let b = coerce_text("$strcasecmp", &cx.eval(&args[1])?)?.to_uppercase();
    Ok(Some(Bson::Int32(match a.cmp(&b) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    })))
}
