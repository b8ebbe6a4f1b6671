//! `$setField` and `$unsetField`: add, replace or remove one field of a
//! document by its literal name, which may contain `.` or start with `$`
//! (names a field path cannot reach).
use super::{nullish, type_name, Ctx, Value};
use crate::{EngineError, Result};
use bson::Bson;

pub(super) fn dispatch(cx: &Ctx, op: &str, arg: &Bson) -> Option<Result<Value>> {
    Some(match op {
        "$setField" => set_field(cx, op, arg, true),
        "$unsetField" => set_field(cx, op, arg, false),
        _ => return None,
    })
}

/// The field name: a constant string (`$literal` for one that starts with `$`).
fn field_name(cx: &Ctx, op: &str, spec: &Bson) -> Result<String> {
    if let Bson::String(s) = spec {
        if s.starts_with('$') {
            return Err(EngineError::location(
                4161108,
                format!("{op}: a field path reference which is not allowed in this context. Did you mean {{$literal: '{s}'}}?"),
            ));
        }
    }
    match cx.eval(spec)? {
        Some(Bson::String(s)) => Ok(s),
        other => Err(EngineError::location(
            4161107,
            format!("{op} requires 'field' to evaluate to type String, but got {}", type_name(&other)),
        )),
    }
}

fn set_field(cx: &Ctx, op: &str, arg: &Bson, has_value: bool) -> Result<Value> {
    let Bson::Document(spec) = arg else {
        return Err(EngineError::location(4161100, format!("{op} only supports an object as its argument")));
    };
    let (mut field, mut input, mut value) = (None, None, None);
    for (k, v) in spec {
        match k.as_str() {
            "field" => field = Some(v),
            "input" => input = Some(v),
            "value" if has_value => value = Some(v),
            other => return Err(EngineError::location(4161101, format!("{op} found an unknown argument: {other}"))),
        }
    }
    let field = field.ok_or_else(|| EngineError::location(4161102, format!("{op} requires 'field' to be specified")))?;
    let input = input.ok_or_else(|| EngineError::location(4161103, format!("{op} requires 'input' to be specified")))?;
    if has_value && value.is_none() {
        return Err(EngineError::location(4161104, format!("{op} requires 'value' to be specified")));
    }
    let name = field_name(cx, op, field)?;
    let input = cx.eval(input)?;
    if nullish(&input) {
        return Ok(Some(Bson::Null));
    }
    let Some(Bson::Document(mut doc)) = input else {
        return Err(EngineError::location(
            4161105,
            format!("{op} requires 'input' to evaluate to type Object, but got {}", type_name(&input)),
        ));
    };
    // A missing value ($$REMOVE) removes the field, as $unsetField does.
    match value.map(|v| cx.eval(v)).transpose()?.flatten() {
        Some(v) => {
            doc.insert(name, v);
        }
        None => {
            doc.remove(&name);
        }
    }
    Ok(Some(Bson::Document(doc)))
}
