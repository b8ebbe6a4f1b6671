//! Dotted field paths, in the three flavours MongoDB gives them: query paths
//! (which fan out over arrays and can index them), expression paths (`$a.b`,
//! which map over arrays), and update paths (which create what is missing).
use crate::{EngineError, Result};
use bson::{Bson, Document};

/// How far `$set` on `a.<n>` may grow an array with nulls, so a client
/// cannot make the server allocate without bound.
const MAX_PADDING: usize = 1_500_000;

pub fn split(path: &str) -> Vec<String> {
    path.split('.').map(str::to_string).collect()
}

pub(crate) fn as_index(part: &str) -> Option<usize> {
    if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
        part.parse().ok()
    } else {
        None
    }
}

/// Every value a query path reaches; `None` stands for a branch where the
/// path is missing (which `{f: null}` matches).
pub fn query_values<'a>(doc: &'a Document, path: &[String]) -> Vec<Option<&'a Bson>> {
    let mut out = Vec::new();
    if let Some((head, tail)) = path.split_first() {
        walk(doc.get(head), tail, &mut out);
    }
    out
}

fn walk<'a>(v: Option<&'a Bson>, rest: &[String], out: &mut Vec<Option<&'a Bson>>) {
    let Some((head, tail)) = rest.split_first() else {
        out.push(v);
        return;
    };
    match v {
        Some(Bson::Document(d)) => walk(d.get(head), tail, out),
        Some(Bson::Array(arr)) => {
            let before = out.len();
            if let Some(i) = as_index(head) {
                if let Some(e) = arr.get(i) {
                    walk(Some(e), tail, out);
                }
                // A numeric component may also name a field of element documents.
                for e in arr {
                    if let Bson::Document(d) = e {
                        if let Some(x) = d.get(head) {
                            walk(Some(x), tail, out);
                        }
                    }
                }
            } else {
                for e in arr {
                    if let Bson::Document(d) = e {
                        walk(d.get(head), tail, out);
                    }
                }
            }
            if out.len() == before {
                out.push(None);
            }
        }
        _ => out.push(None),
    }
}

/// `$a.b` in an expression: arrays along the way map to arrays of the values
/// their documents hold; `None` when the path is missing.
pub fn expr_value(doc: &Document, path: &[&str]) -> Option<Bson> {
    let (head, tail) = path.split_first()?;
    expr_walk(doc.get(*head)?, tail)
}

pub(crate) fn expr_walk(v: &Bson, rest: &[&str]) -> Option<Bson> {
    let Some((head, tail)) = rest.split_first() else {
        return Some(v.clone());
    };
    match v {
        Bson::Document(d) => expr_walk(d.get(*head)?, tail),
        Bson::Array(arr) => Some(Bson::Array(
            arr.iter()
                .filter_map(|e| match e {
                    Bson::Document(_) | Bson::Array(_) => expr_walk(e, rest),
                    _ => None,
                })
                .collect(),
        )),
        _ => None,
    }
}

/// The value at a plain path (numeric components index arrays), as update
/// operators read their target.
pub fn get<'a>(doc: &'a Document, path: &[String]) -> Option<&'a Bson> {
    let (head, tail) = path.split_first()?;
    let mut cur = doc.get(head)?;
    for part in tail {
        cur = match cur {
            Bson::Document(d) => d.get(part)?,
            Bson::Array(a) => a.get(as_index(part)?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn not_viable(part: &str, parent: &Bson) -> EngineError {
    EngineError::new(28, "PathNotViable", format!("Cannot create field '{part}' in element {{{parent}}}"))
}

/// Sets `path` to `value`, creating sub-documents on the way and padding
/// arrays with nulls, as `$set` does.
pub fn set(doc: &mut Document, path: &[String], value: Bson) -> Result<()> {
    let Some((head, tail)) = path.split_first() else {
        return Err(EngineError::bad_value("empty field path"));
    };
    if tail.is_empty() {
        doc.insert(head.clone(), value);
        return Ok(());
    }
    if !doc.contains_key(head) {
        doc.insert(head.clone(), Document::new());
    }
    match doc.get_mut(head) {
        Some(child) => set_in(child, tail, value),
        None => Err(EngineError::bad_value("path vanished while setting it")),
    }
}

fn set_in(target: &mut Bson, path: &[String], value: Bson) -> Result<()> {
    let Some((head, tail)) = path.split_first() else {
        *target = value;
        return Ok(());
    };
    match target {
        Bson::Document(d) => set(d, path, value),
        Bson::Array(arr) => {
            let Some(i) = as_index(head) else {
                return Err(not_viable(head, target));
            };
            if i > arr.len() + MAX_PADDING {
                return Err(EngineError::bad_value(format!(
                    "can't set array element {i}: it would pad the array with more than {MAX_PADDING} nulls"
                )));
            }
            while arr.len() <= i {
                arr.push(Bson::Null);
            }
            if !tail.is_empty() && matches!(arr[i], Bson::Null) {
                arr[i] = Bson::Document(Document::new());
            }
            set_in(&mut arr[i], tail, value)
        }
        other => Err(not_viable(head, other)),
    }
}

/// Removes `path` (an array element named by index becomes null, as
/// `$unset` leaves it). Returns whether something was there.
pub fn unset(doc: &mut Document, path: &[String]) -> bool {
    let Some((head, tail)) = path.split_first() else {
        return false;
    };
    if tail.is_empty() {
        return doc.remove(head).is_some();
    }
    match doc.get_mut(head) {
        Some(child) => unset_in(child, tail),
        None => false,
    }
}

fn unset_in(target: &mut Bson, path: &[String]) -> bool {
    let Some((head, tail)) = path.split_first() else {
        return false;
    };
    match target {
        Bson::Document(d) => unset(d, path),
        Bson::Array(arr) => match as_index(head) {
            Some(i) if i < arr.len() => {
                if tail.is_empty() {
                    arr[i] = Bson::Null;
                    true
                } else {
                    unset_in(&mut arr[i], tail)
                }
            }
            _ => false,
        },
        _ => false,
    }
}

/// Mutable access to the value at a plain path.
pub fn get_mut<'a>(doc: &'a mut Document, path: &[String]) -> Option<&'a mut Bson> {
    let (head, tail) = path.split_first()?;
    let mut cur = doc.get_mut(head)?;
    for part in tail {
        cur = match cur {
            Bson::Document(d) => d.get_mut(part)?,
            Bson::Array(a) => a.get_mut(as_index(part)?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// `$addFields`-style assignment: arrays on the way receive the field in
/// each element, scalars on the way are replaced by documents.
pub fn assign(doc: &mut Document, path: &[&str], value: Option<Bson>) {
    let Some((head, tail)) = path.split_first() else {
        return;
    };
    if tail.is_empty() {
        match value {
            Some(v) => {
                doc.insert(*head, v);
            }
            None => {
                doc.remove(*head);
            }
        }
        return;
    }
    match doc.get_mut(*head) {
        Some(child) => assign_in(child, tail, value),
        None => {
            if value.is_some() {
                let mut sub = Document::new();
                assign(&mut sub, tail, value);
                doc.insert(*head, sub);
            }
        }
    }
}

fn assign_in(target: &mut Bson, path: &[&str], value: Option<Bson>) {
    match target {
        Bson::Document(d) => assign(d, path, value),
        Bson::Array(arr) => {
            for e in arr.iter_mut() {
                assign_in(e, path, value.clone());
            }
        }
        other => {
            let mut sub = Document::new();
            assign(&mut sub, path, value);
            *other = Bson::Document(sub);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn query_paths_fan_out_over_arrays() {
        let d = doc! {"a": [{"b": 1}, {"c": 2}, 7]};
        let v = query_values(&d, &split("a.b"));
        assert_eq!(v, vec![Some(&Bson::Int32(1)), None]);
        let d = doc! {"a": [10, 20]};
        assert_eq!(query_values(&d, &split("a.1")), vec![Some(&Bson::Int32(20))]);
    }

    #[test]
    fn expression_paths_map_over_arrays() {
        let d = doc! {"a": [{"b": 1}, {"c": 2}, {"b": 3}]};
        assert_eq!(expr_value(&d, &["a", "b"]), Some(Bson::Array(vec![1.into(), 3.into()])));
        assert_eq!(expr_value(&d, &["x", "b"]), None);
    }

    #[test]
    fn set_creates_and_pads() {
        let mut d = doc! {"a": {"x": 1}, "l": [1]};
        set(&mut d, &split("a.b.c"), 5.into()).unwrap();
        set(&mut d, &split("l.3"), 9.into()).unwrap();
        assert_eq!(d, doc! {"a": {"x": 1, "b": {"c": 5}}, "l": [1, null, null, 9]});
        assert_eq!(set(&mut d, &split("a.x.y"), 1.into()).unwrap_err().code, 28);
    }
}
