//! Aggregation expressions (`$add`, `$cond`, `$concat`, field paths, `$$vars`).
//!
//! Evaluation works on `Value = Option<Bson>`, where `None` is "missing": a
//! field path that leads nowhere, or `$$REMOVE`. Keeping it apart from null
//! is what lets `$project`/`$addFields` omit a field instead of writing null,
//! and lets `$ifNull` and friends treat both alike. The public [`eval`]
//! collapses missing to null; [`eval_value`] keeps the distinction.
use crate::{EngineError, Result};
use bson::{Bson, Document};
use std::collections::HashMap;

mod arith;
mod array;
mod array_order;
mod bson_value;
mod convert;
mod date;
mod fields;
pub(crate) mod logic;
mod quantile;
pub(crate) mod raw;
/// Stepping over a stored document's elements without decoding them.
pub use raw::value_len as stored_value_len;
mod string;

/// Variables visible to an expression (`$$ROOT`, `let` variables of `$lookup`).
pub type Vars = HashMap<String, Bson>;

/// An evaluated expression: `None` when the result is missing.
pub type Value = Option<Bson>;

/// Evaluates `expr` against `doc`; a missing result is returned as null.
pub fn eval(expr: &Bson, doc: &Document, vars: &Vars) -> Result<Bson> {
    Ok(eval_value(expr, doc, vars)?.unwrap_or(Bson::Null))
}

/// Evaluates `expr` against `doc`, returning `None` when the result is missing.
pub fn eval_value(expr: &Bson, doc: &Document, vars: &Vars) -> Result<Value> {
    Ctx { doc, vars }.eval(expr)
}

/// MongoDB's truthiness: false, null, undefined, missing and numeric zero are false.
pub fn truthy(v: &Bson) -> bool {
    match v {
        Bson::Boolean(b) => *b,
        Bson::Null | Bson::Undefined => false,
        Bson::Int32(i) => *i != 0,
        Bson::Int64(i) => *i != 0,
        Bson::Double(f) => *f != 0.0,
        Bson::Decimal128(_) => crate::num::Num::from_bson(v).is_some_and(|n| !n.is_zero()),
        _ => true,
    }
}

pub fn truthy_value(v: &Value) -> bool {
    v.as_ref().is_some_and(truthy)
}

/// An operator family: answers `None` for operators it does not own.
type Handler = fn(&Ctx, &str, &Bson) -> Option<Result<Value>>;

#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub doc: &'a Document,
    pub vars: &'a Vars,
}

/// The arguments of an operator: an array is the argument list, anything
/// else is a single argument.
pub(crate) fn arg_list(arg: &Bson) -> &[Bson] {
    match arg {
        Bson::Array(a) => a,
        other => std::slice::from_ref(other),
    }
}

pub(crate) fn arity(op: &str, args: &[Bson], n: usize) -> Result<()> {
    if args.len() != n {
        return Err(EngineError::location(
            16020,
            format!("Expression {op} takes exactly {n} arguments. {} were passed in.", args.len()),
        ));
    }
    Ok(())
}

pub(crate) fn arity_range(op: &str, args: &[Bson], min: usize, max: usize) -> Result<()> {
    if args.len() < min || args.len() > max {
        return Err(EngineError::location(
            16020,
            format!("Expression {op} takes at least {min} arguments, and at most {max}. {} were passed in.", args.len()),
        ));
    }
    Ok(())
}

/// Whether the value is null, undefined or missing (most operators return
/// null for such inputs).
pub(crate) fn nullish(v: &Value) -> bool {
    matches!(v, None | Some(Bson::Null) | Some(Bson::Undefined))
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        None => "missing",
        Some(b) => crate::types::type_name(b),
    }
}

impl<'a> Ctx<'a> {
    pub fn eval(&self, expr: &Bson) -> Result<Value> {
        match expr {
            Bson::String(s) if s.starts_with("$$") => self.variable(&s[2..]),
            Bson::String(s) if s.starts_with('$') => self.field_path(&s[1..]),
            Bson::Document(d) => self.eval_document(d),
            Bson::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.eval(item)?.unwrap_or(Bson::Null));
                }
                Ok(Some(Bson::Array(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    /// Evaluates with missing collapsed to null.
    pub fn eval_null(&self, expr: &Bson) -> Result<Bson> {
        Ok(self.eval(expr)?.unwrap_or(Bson::Null))
    }

    pub fn eval_all(&self, args: &[Bson]) -> Result<Vec<Value>> {
        args.iter().map(|a| self.eval(a)).collect()
    }

    fn field_path(&self, path: &str) -> Result<Value> {
        if path.is_empty() {
            return Err(EngineError::location(16872, "'$' by itself is not a valid FieldPath"));
        }
        let parts: Vec<&str> = path.split('.').collect();
        let current = match self.vars.get("CURRENT") {
            Some(Bson::Document(d)) => d,
            _ => self.doc,
        };
        Ok(crate::path::expr_value(current, &parts))
    }

    fn variable(&self, spec: &str) -> Result<Value> {
        let (name, rest) = match spec.split_once('.') {
            Some((n, r)) => (n, Some(r)),
            None => (spec, None),
        };
        let base: Bson = match name {
            "REMOVE" => return Ok(None),
            "ROOT" => self.vars.get("ROOT").cloned().unwrap_or_else(|| Bson::Document(self.doc.clone())),
            "CURRENT" => self.vars.get("CURRENT").cloned().unwrap_or_else(|| Bson::Document(self.doc.clone())),
            "NOW" => self.vars.get("NOW").cloned().unwrap_or_else(|| Bson::DateTime(bson::DateTime::now())),
            _ => match self.vars.get(name) {
                Some(v) => v.clone(),
                None => {
                    return Err(EngineError::location(17276, format!("Use of undefined variable: {name}")));
                }
            },
        };
        match rest {
            None => Ok(Some(base)),
            Some(r) => {
                let parts: Vec<&str> = r.split('.').collect();
                match &base {
                    Bson::Document(d) => Ok(crate::path::expr_value(d, &parts)),
                    Bson::Array(_) => {
                        let mut wrapper = Document::new();
                        wrapper.insert("v", base.clone());
                        let mut full = vec!["v"];
                        full.extend(parts);
                        Ok(crate::path::expr_value(&wrapper, &full))
                    }
                    _ => Ok(None),
                }
            }
        }
    }

    /// Runs `f` with extra variables bound.
    pub fn with_vars<T>(&self, extra: Vec<(String, Bson)>, f: impl FnOnce(&Ctx) -> Result<T>) -> Result<T> {
        let mut vars = self.vars.clone();
        for (k, v) in extra {
            vars.insert(k, v);
        }
        f(&Ctx { doc: self.doc, vars: &vars })
    }

    fn eval_document(&self, d: &Document) -> Result<Value> {
        let mut iter = d.iter();
        let Some((first, arg)) = iter.next() else {
            return Ok(Some(Bson::Document(Document::new())));
        };
        if first.starts_with('$') {
            if d.len() != 1 {
                return Err(EngineError::location(
                    15983,
                    format!("an expression specification must contain exactly one field, the name of the expression. Found {} fields in {d}", d.len()),
                ));
            }
            return self.operator(first, arg);
        }
        let mut out = Document::new();
        for (k, v) in d {
            if k.starts_with('$') {
                return Err(EngineError::location(16410, format!("FieldPath field names may not start with '$'. Given: {k}")));
            }
            if let Some(val) = self.eval(v)? {
                out.insert(k.clone(), val);
            }
        }
        Ok(Some(Bson::Document(out)))
    }

    fn operator(&self, op: &str, arg: &Bson) -> Result<Value> {
        if op == "$literal" {
            return Ok(Some(arg.clone()));
        }
        if op == "$let" {
            return self.let_expr(arg);
        }
        let handlers: [Handler; 10] = [
            logic::dispatch,
            arith::dispatch,
            string::dispatch,
            array::dispatch,
            array_order::dispatch,
            fields::dispatch,
            convert::dispatch,
            bson_value::dispatch,
            date::dispatch,
            quantile::dispatch,
        ];
        for h in handlers {
            if let Some(r) = h(self, op, arg) {
                return r;
            }
        }
        Err(EngineError::invalid_operator(format!("Unrecognized expression '{op}'")))
    }

    fn let_expr(&self, arg: &Bson) -> Result<Value> {
        let Bson::Document(spec) = arg else {
            return Err(EngineError::location(16874, "$let only supports an object as its argument"));
        };
        let (Some(Bson::Document(vars)), Some(body)) = (spec.get("vars"), spec.get("in")) else {
            return Err(EngineError::location(16876, "Missing 'vars' or 'in' parameter to $let"));
        };
        let mut bound = Vec::new();
        for (k, v) in vars {
            bound.push((k.clone(), self.eval_null(v)?));
        }
        self.with_vars(bound, |cx| cx.eval(body))
    }
}

#[cfg(test)]
mod tests;
