//! `$fill`: sets null or missing fields, from a constant or expression
//! (`value`) or from neighbouring documents (`method: "locf"` or
//! `"linear"`).
//!
//! `{sortBy?, partitionBy? | partitionByFields?, output: {field: {value} |
//! {method}}}`. As in MongoDB, the stage is a `$setWindowFields` running
//! `$locf`/`$linearFill` over the method fields (so the output comes sorted
//! by partition and `sortBy`, and a field still without a value becomes null),
//! followed by an `$addFields` of `{$ifNull: ["$field", value]}` for the value
//! fields. `linear` needs a `sortBy` on one field (605001).
use super::window;
use crate::expr::Vars;
use crate::{EngineError, Result};
use bson::{Bson, Document};

fn unknown_field(name: &str) -> EngineError {
    EngineError::location(40415, format!("BSON field '{name}' is an unknown field."))
}

fn wrong_type(name: &str, v: &Bson, expected: &str) -> EngineError {
    EngineError::type_mismatch(format!(
        "BSON field '{name}' is the wrong type '{}', expected type '{expected}'",
        crate::types::type_name(v)
    ))
}

/// The stages `$fill` stands for: a `$setWindowFields` spec (when a field
/// uses a method) and an `$addFields` spec (when a field uses a value).
struct Plan {
    window: Option<Document>,
    values: Document,
}

fn plan(spec: &Bson) -> Result<Plan> {
    let Bson::Document(d) = spec else {
        return Err(EngineError::new(
            9,
            "FailedToParse",
            format!("The $fill stage specification must be an object, found {}", crate::types::type_name(spec)),
        ));
    };
    let (mut sort_by, mut partition_by, mut partition_fields, mut output) = (None, None, None, None);
    for (k, v) in d {
        match k.as_str() {
            "sortBy" => match v {
                Bson::Document(s) => sort_by = Some(s.clone()),
                other => return Err(wrong_type("$fill.sortBy", other, "object")),
            },
            "partitionBy" => match v {
                Bson::String(_) | Bson::Document(_) => partition_by = Some(v.clone()),
                other => return Err(wrong_type("$fill.partitionBy", other, "[string, object]")),
            },
            "partitionByFields" => {
                let Bson::Array(items) = v else { return Err(wrong_type("$fill.partitionByFields", v, "array")) };
                let names = items
                    .iter()
                    .map(|i| match i {
                        Bson::String(s) => Ok(s.clone()),
                        other => Err(wrong_type("$fill.partitionByFields", other, "string")),
                    })
                    .collect::<Result<Vec<_>>>()?;
                partition_fields = Some(names);
            }
            "output" => match v {
                Bson::Document(o) => output = Some(o),
                other => return Err(wrong_type("$fill.output", other, "object")),
            },
            other => return Err(unknown_field(&format!("$fill.{other}"))),
        }
    }
    let output = output.ok_or_else(|| EngineError::location(40414, "BSON field '$fill.output' is missing but a required field"))?;
    if output.is_empty() {
        return Err(EngineError::location(6050203, "The output field in '$fill' must contain an object with at least one element"));
    }
    let mut window_output = Document::new();
    let mut values = Document::new();
    for (field, v) in output {
        let Bson::Document(f) = v else {
            return Err(EngineError::location(6050200, "Each fill output specification must be an object with exactly one field"));
        };
        let (mut method, mut value) = (None, None);
        for (k, x) in f {
            match k.as_str() {
                "method" => match x {
                    Bson::String(m) => method = Some(m.as_str()),
                    other => return Err(wrong_type("$fill.method", other, "string")),
                },
                "value" => value = Some(x),
                other => return Err(unknown_field(&format!("$fill.{other}"))),
            }
        }
        if let Some(m) = method {
            if value.is_some() {
                return Err(EngineError::location(
                    6050201,
                    "Each fill output specification must have exactly one of 'method' or 'value' fields, not both",
                ));
            }
            let function = match m {
                "locf" => "$locf",
                "linear" => "$linearFill",
                _ => return Err(EngineError::location(6050202, "Method must be either locf or linear")),
            };
            let mut call = Document::new();
            call.insert(function, format!("${field}"));
            window_output.insert(field.clone(), call);
        }
        if let Some(x) = value {
            values.insert(field.clone(), bson::doc! {"$ifNull": [format!("${field}"), x.clone()]});
        }
    }
    if partition_by.is_some() && partition_fields.is_some() {
        return Err(EngineError::location(6050204, "Maximum one of 'partitionBy' and 'partitionByFields can be specified in '$fill'"));
    }
    let window = (!window_output.is_empty()).then(|| {
        let mut w = Document::new();
        if let Some(s) = sort_by {
            w.insert("sortBy", s);
        }
        if let Some(p) = partition_by {
            w.insert("partitionBy", p);
        }
        if let Some(names) = partition_fields {
            // Keyed by position: dotted names cannot be expression keys, and
            // only the values decide the partition.
            let mut key = Document::new();
            for (i, name) in names.iter().enumerate() {
                key.insert(format!("p{i}"), format!("${name}"));
            }
            w.insert("partitionBy", key);
        }
        w.insert("output", window_output);
        w
    });
    Ok(Plan { window, values })
}

pub(super) fn fill(spec: &Bson, docs: Vec<Document>, vars: &Vars) -> Result<Vec<Document>> {
    let plan = plan(spec)?;
    let docs = match &plan.window {
        Some(w) => window::set_window_fields(&Bson::Document(w.clone()), docs, vars)?,
        None => docs,
    };
    if plan.values.is_empty() {
        return Ok(docs);
    }
    docs.into_iter().map(|d| super::add_fields(d, &plan.values, vars)).collect()
}

#[cfg(test)]
#[path = "fill_tests.rs"]
mod tests;
