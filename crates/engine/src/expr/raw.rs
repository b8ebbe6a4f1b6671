//! A few expressions compiled to run on a document's stored bytes.
//!
//! A `$group` over a join (Django's `annotate(Count('entry'), Avg('entry__n'))`)
//! evaluates its accumulators' arguments once per joined document. Decoding
//! each joined document into a `bson::Document` only to read one or two of
//! its fields costs more than the rest of the group. The expressions Django
//! emits there (field paths, `$ifNull`, `$cond`, comparisons, literals) are
//! compiled once into a [`RawExpr`] that reads the fields it needs straight
//! from a `RawDocument`; anything else is left to the general evaluator
//! ([`RawExpr::compile`] answers `None`).
//!
//! Each compiled operator answers exactly what the general evaluator answers
//! (`logic.rs` supplies the comparison and the notions of null and truth); the
//! tests check the two against each other on generated documents.
use super::logic::compared;
use super::{arg_list, truthy, Value};
use crate::{EngineError, Result};
use bson::{Bson, RawBsonRef, RawDocument};

/// The top-level fields that compiled expressions read, found in one pass
/// over a document's bytes (rather than one pass per field path).
#[derive(Debug, Default, Clone)]
pub struct RawFields {
    names: Vec<Name>,
}

/// A field name, with its first eight bytes packed into an integer: each
/// key of each document read is compared with every name, and comparing
/// two integers costs less than a call to `memcmp` per key.
#[derive(Debug, Clone)]
struct Name {
    text: String,
    head: u64,
}

/// The first eight bytes of `name` (zero-padded) as one integer.
fn head(name: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    for (b, n) in bytes.iter_mut().zip(name) {
        *b = *n;
    }
    u64::from_le_bytes(bytes)
}

impl Name {
    fn is(&self, key: &[u8], key_head: u64) -> bool {
        self.head == key_head && self.text.len() == key.len() && (key.len() <= 8 || self.text.as_bytes()[8..] == key[8..])
    }
}

/// The length of the C string key at `at` of `bytes` and its [`head`]:
/// where eight bytes are there, both from one word (its first zero byte
/// ends a short key), so that no copy is made per key.
fn key_at_word(bytes: &[u8], at: usize) -> Option<(usize, u64)> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let Some(word) = bytes.get(at..at.checked_add(8)?) else {
        let len = bytes.get(at..)?.iter().position(|b| *b == 0)?;
        return Some((len, head(bytes.get(at..at + len)?)));
    };
    let word = u64::from_le_bytes(word.try_into().ok()?);
    // The lowest byte flagged here is the word's first zero byte (a flag
    // above a zero byte can be wrong, never one below it).
    let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
    if zeros != 0 {
        let len = (zeros.trailing_zeros() / 8) as usize;
        let mask = if len == 0 { 0 } else { u64::MAX >> (64 - 8 * len) };
        return Some((len, word & mask));
    }
    let len = bytes.get(at + 8..)?.iter().position(|b| *b == 0)? + 8;
    Some((len, word))
}

/// The length of the value of BSON type `kind` that starts at `at` of
/// `bytes` (`None`: an unknown type or a length that is not there). The
/// lengths are not checked against the bytes there.
pub fn value_len(kind: u8, bytes: &[u8], at: usize) -> Option<usize> {
    let length_at = |at: usize| -> Option<usize> {
        let four: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(i32::from_le_bytes(four)).ok()
    };
    let cstring_at = |at: usize| -> Option<usize> { Some(bytes.get(at..)?.iter().position(|b| *b == 0)? + 1) };
    Some(match kind {
        // undefined, null, max key, min key
        0x06 | 0x0A | 0x7F | 0xFF => 0,
        0x08 => 1,
        0x10 => 4,
        // double, datetime, timestamp, int64
        0x01 | 0x09 | 0x11 | 0x12 => 8,
        0x07 => 12,
        0x13 => 16,
        // string, JavaScript code, symbol: a length, then that many bytes
        0x02 | 0x0D | 0x0E => length_at(at)?.checked_add(4)?,
        // document, array, code with scope: a length that counts itself
        0x03 | 0x04 | 0x0F => length_at(at)?,
        // binary: a length, a subtype byte, the bytes
        0x05 => length_at(at)?.checked_add(5)?,
        // DBPointer: a string, then an ObjectId
        0x0C => length_at(at)?.checked_add(16)?,
        // regular expression: pattern and options, two C strings
        0x0B => {
            let pattern = cstring_at(at)?;
            pattern.checked_add(cstring_at(at.checked_add(pattern)?)?)?
        }
        _ => return None,
    })
}

/// The value of a scalar BSON type that Django's columns hold, from its
/// bytes (`None`: another type, or bytes that do not read as one).
fn scalar(kind: u8, bytes: &[u8]) -> Option<RawBsonRef<'_>> {
    let eight = || -> Option<[u8; 8]> { bytes.try_into().ok() };
    Some(match kind {
        0x01 => RawBsonRef::Double(f64::from_le_bytes(eight()?)),
        0x02 => {
            let (zero, text) = bytes.get(4..)?.split_last()?;
            if *zero != 0 || usize::try_from(i32::from_le_bytes(bytes.get(..4)?.try_into().ok()?)).ok()? != text.len() + 1 {
                return None;
            }
            RawBsonRef::String(std::str::from_utf8(text).ok()?)
        }
        0x03 => RawBsonRef::Document(RawDocument::from_bytes(bytes).ok()?),
        0x07 => RawBsonRef::ObjectId(bson::oid::ObjectId::from_bytes(bytes.try_into().ok()?)),
        0x08 => match bytes {
            [0] => RawBsonRef::Boolean(false),
            [1] => RawBsonRef::Boolean(true),
            _ => return None,
        },
        0x09 => RawBsonRef::DateTime(bson::DateTime::from_millis(i64::from_le_bytes(eight()?))),
        0x0A => RawBsonRef::Null,
        0x10 => RawBsonRef::Int32(i32::from_le_bytes(bytes.try_into().ok()?)),
        0x12 => RawBsonRef::Int64(i64::from_le_bytes(eight()?)),
        _ => return None,
    })
}

/// The values of a [`RawFields`]' fields in one document (`None`: missing).
pub type FieldValues<'a> = Vec<Option<RawBsonRef<'a>>>;

/// Up to this many fields are read into an array on the stack.
const ON_STACK: usize = 8;

impl RawFields {
    /// Where `name`'s value will be among the values [`RawFields::read`] finds.
    pub fn slot(&mut self, name: &str) -> usize {
        match self.names.iter().position(|n| n.text == name) {
            Some(i) => i,
            None => {
                self.names.push(Name { text: name.to_string(), head: head(name.as_bytes()) });
                self.names.len() - 1
            }
        }
    }

    /// The values of the fields in `doc`, by slot. (Stored documents have
    /// distinct field names; the first of equal names would be taken.)
    pub fn read<'a>(&self, doc: &'a RawDocument) -> Result<FieldValues<'a>> {
        let mut values: FieldValues<'a> = vec![None; self.names.len()];
        self.fill(doc, &mut values)?;
        Ok(values)
    }

    /// `f` of the values [`RawFields::read`] gives, without allocating them
    /// when there are only a few.
    pub fn read_with<R>(&self, doc: &RawDocument, f: impl FnOnce(&[Option<RawBsonRef<'_>>]) -> Result<R>) -> Result<R> {
        let n = self.names.len();
        if n <= ON_STACK {
            let mut values = [None; ON_STACK];
            self.fill(doc, &mut values[..n])?;
            f(&values[..n])
        } else {
            f(&self.read(doc)?)
        }
    }

    fn fill<'a>(&self, doc: &'a RawDocument, values: &mut [Option<RawBsonRef<'a>>]) -> Result<()> {
        if self.step(doc, values).is_some() {
            return Ok(());
        }
        // Bytes the step did not expect: bson's own walk reads them, or
        // says what is wrong with them.
        values.fill(None);
        self.fill_checked(doc, values)
    }

    /// [`RawFields::fill`] by stepping over the elements' bytes: each key is
    /// compared as bytes where it lies (the names are UTF-8, so a key equal
    /// to one is too) and only the wanted values are decoded. bson's element
    /// iterator checks every key's UTF-8 and builds an element per field,
    /// which was a third of a join's group over stored documents. `None`
    /// when the bytes are not what the step expects.
    fn step<'a>(&self, doc: &'a RawDocument, values: &mut [Option<RawBsonRef<'a>>]) -> Option<()> {
        let bytes = doc.as_bytes();
        // The document's terminating zero (`RawDocument` checked it is there).
        let end = bytes.len().checked_sub(1)?;
        let mut at = 4;
        let mut left = self.names.len();
        while left > 0 && at < end {
            let kind = *bytes.get(at)?;
            let key_at = at + 1;
            let (key_len, key_head) = key_at_word(bytes, key_at)?;
            if key_at + key_len >= end {
                return None;
            }
            let key = bytes.get(key_at..key_at + key_len)?;
            let value_at = key_at + key_len + 1;
            let value_end = value_at.checked_add(value_len(kind, bytes, value_at)?)?;
            if value_end > end {
                return None;
            }
            if let Some(i) = self.names.iter().position(|n| n.is(key, key_head)) {
                if let Some(slot @ None) = values.get_mut(i) {
                    let value = match scalar(kind, bytes.get(value_at..value_end)?) {
                        Some(v) => v,
                        // The other types: as bson reads them.
                        None => doc.get(&self.names[i].text).ok()??,
                    };
                    *slot = Some(value);
                    left -= 1;
                }
            }
            at = value_end;
        }
        Some(())
    }

    fn fill_checked<'a>(&self, doc: &'a RawDocument, values: &mut [Option<RawBsonRef<'a>>]) -> Result<()> {
        let mut left = self.names.len();
        for element in doc.iter_elements() {
            if left == 0 {
                break;
            }
            let element = element.map_err(corrupt)?;
            let key = element.key().as_str().as_bytes();
            let key_head = head(key);
            if let Some(i) = self.names.iter().position(|n| n.is(key, key_head)) {
                if let Some(slot @ None) = values.get_mut(i) {
                    *slot = Some(element.value().map_err(corrupt)?);
                    left -= 1;
                }
            }
        }
        Ok(())
    }
}

/// An expression over the document a path prefix names (a join's `as`
/// field), evaluated on the values [`RawFields::read`] found in that
/// document's stored bytes.
#[derive(Debug, Clone)]
pub enum RawExpr {
    /// A field path below the prefix: the slot of its first name, and the
    /// names after it.
    Path(usize, Vec<String>),
    Literal(Bson),
    IfNull(Vec<RawExpr>),
    Cond(Box<[RawExpr; 3]>),
    /// `$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte` or `$cmp`.
    Compare(&'static str, Box<[RawExpr; 2]>),
    /// Whether the value is null, missing or undefined (`true`), or the
    /// opposite (`false`): what `{$eq|$ne: [{$ifNull: [x, null]}, null]}`
    /// answers (Django's `COUNT(column)`), decided on the stored value's
    /// type without decoding it.
    Nullish(Box<RawExpr>, bool),
}

const COMPARISONS: [&str; 7] = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$cmp"];

impl RawExpr {
    /// `expr` compiled for documents found at `prefix` (so `"$<prefix>.n"`
    /// reads field `n` of the raw document, noted in `fields`), when it only
    /// reads below `prefix` and uses nothing but the operators above with
    /// valid arguments. `None` sends the caller to the general evaluator,
    /// which also reports any error the expression has.
    pub fn compile(expr: &Bson, prefix: &str, fields: &mut RawFields) -> Option<RawExpr> {
        Some(match expr {
            Bson::String(s) if s.starts_with("$$") => return None,
            Bson::String(s) if s.starts_with('$') => {
                let below = s[1..].strip_prefix(prefix)?.strip_prefix('.')?;
                let parts: Vec<String> = below.split('.').map(str::to_string).collect();
                if parts.iter().any(|p| p.is_empty() || p.starts_with('$')) {
                    return None;
                }
                let (head, rest) = parts.split_first()?;
                RawExpr::Path(fields.slot(head), rest.to_vec())
            }
            Bson::Document(d) => {
                let mut entries = d.iter();
                let (Some((op, arg)), None) = (entries.next(), entries.next()) else { return None };
                let args = arg_list(arg);
                let mut compile = |e: &Bson| RawExpr::compile(e, prefix, fields);
                match op.as_str() {
                    "$literal" => RawExpr::Literal(arg.clone()),
                    "$ifNull" if args.len() >= 2 => RawExpr::IfNull(args.iter().map(compile).collect::<Option<Vec<_>>>()?),
                    "$cond" if matches!(arg, Bson::Array(_)) && args.len() == 3 => {
                        RawExpr::Cond(Box::new([compile(&args[0])?, compile(&args[1])?, compile(&args[2])?]))
                    }
                    "$cond" => {
                        let Bson::Document(spec) = arg else { return None };
                        if spec.len() != 3 {
                            return None;
                        }
                        let (i, t, e) = (spec.get("if")?, spec.get("then")?, spec.get("else")?);
                        RawExpr::Cond(Box::new([compile(i)?, compile(t)?, compile(e)?]))
                    }
                    op if args.len() == 2 => {
                        let op = COMPARISONS.iter().find(|c| **c == op)?;
                        let [a, b] = [compile(&args[0])?, compile(&args[1])?];
                        match (*op, null_checked(&a, &b).or_else(|| null_checked(&b, &a))) {
                            ("$eq", Some(x)) => RawExpr::Nullish(Box::new(x.clone()), true),
                            ("$ne", Some(x)) => RawExpr::Nullish(Box::new(x.clone()), false),
                            _ => RawExpr::Compare(op, Box::new([a, b])),
                        }
                    }
                    _ => return None,
                }
            }
            // An array or object literal builds a value: the general
            // evaluator's business.
            Bson::Array(_) => return None,
            other => RawExpr::Literal(other.clone()),
        })
    }

    /// The value of the expression for the document whose fields are
    /// `values` (`None`: missing).
    pub fn eval(&self, values: &[Option<RawBsonRef<'_>>]) -> Result<Value> {
        self.met(values)?.into_value()
    }

    /// The value, borrowed where it is a stored field or a literal: the
    /// steps in between (`$ifNull`'s and `$cond`'s choices, null checks)
    /// move a reference rather than a decoded value.
    fn met<'v>(&'v self, values: &[Option<RawBsonRef<'v>>]) -> Result<Met<'v>> {
        Ok(match self {
            RawExpr::Path(slot, rest) => match values.get(*slot).copied().flatten() {
                Some(value) if rest.is_empty() => Met::Stored(value),
                Some(value) => match walk(value, rest)? {
                    Some(v) => Met::Owned(Box::new(v)),
                    None => Met::Missing,
                },
                None => Met::Missing,
            },
            RawExpr::Literal(v) => Met::Literal(v),
            RawExpr::IfNull(args) => {
                let Some((last, init)) = args.split_last() else { return Ok(Met::Missing) };
                for a in init {
                    let v = a.met(values)?;
                    if !v.is_nullish() {
                        return Ok(v);
                    }
                }
                last.met(values)?
            }
            RawExpr::Cond(parts) => {
                let [i, t, e] = &**parts;
                if i.met(values)?.is_truthy()? {
                    t.met(values)?
                } else {
                    e.met(values)?
                }
            }
            RawExpr::Compare(op, sides) => {
                let [a, b] = &**sides;
                match compared(op, &a.eval(values)?, &b.eval(values)?) {
                    Bson::Boolean(answer) => Met::Boolean(answer),
                    other => Met::Owned(Box::new(other)),
                }
            }
            RawExpr::Nullish(x, when) => Met::Boolean(x.met(values)?.is_nullish() == *when),
        })
    }
}

/// A value met while evaluating a [`RawExpr`] (see [`RawExpr::met`]).
enum Met<'v> {
    Missing,
    Stored(RawBsonRef<'v>),
    Literal(&'v Bson),
    Boolean(bool),
    Owned(Box<Bson>),
}

impl Met<'_> {
    /// Whether the value is null, missing or undefined, without decoding it.
    fn is_nullish(&self) -> bool {
        match self {
            Met::Missing | Met::Stored(RawBsonRef::Null | RawBsonRef::Undefined) => true,
            Met::Stored(_) | Met::Boolean(_) => false,
            Met::Literal(v) => matches!(v, Bson::Null | Bson::Undefined),
            Met::Owned(v) => matches!(**v, Bson::Null | Bson::Undefined),
        }
    }

    /// The value's truth, as the general evaluator's `$cond` takes it.
    fn is_truthy(&self) -> Result<bool> {
        Ok(match self {
            Met::Missing => false,
            Met::Boolean(b) => *b,
            Met::Literal(v) => truthy(v),
            Met::Owned(v) => truthy(v),
            Met::Stored(v) => truthy(&owned(*v)?),
        })
    }

    fn into_value(self) -> Result<Value> {
        Ok(match self {
            Met::Missing => None,
            Met::Stored(v) => Some(owned(v)?),
            Met::Literal(v) => Some(v.clone()),
            Met::Boolean(b) => Some(Bson::Boolean(b)),
            Met::Owned(v) => Some(*v),
        })
    }
}

/// `x` when `a` is `{$ifNull: [x, null]}` and `b` is null: comparing the
/// two for equality asks whether `x` is nullish, as `$ifNull` turns a
/// nullish `x` into null and any other value compares unequal to null.
fn null_checked<'e>(a: &'e RawExpr, b: &RawExpr) -> Option<&'e RawExpr> {
    match (a, b) {
        (RawExpr::IfNull(args), RawExpr::Literal(Bson::Null)) => match args.as_slice() {
            [x, RawExpr::Literal(Bson::Null)] => Some(x),
            _ => None,
        },
        _ => None,
    }
}

/// A stored document that does not parse.
pub(crate) fn corrupt(e: bson::error::Error) -> EngineError {
    EngineError::new(1, "InternalError", format!("corrupt stored document: {e}"))
}

/// A value read from stored bytes, decoded.
pub(crate) fn owned(value: RawBsonRef<'_>) -> Result<Bson> {
    // The scalars directly; bson's conversion goes through an owned raw
    // value first.
    Ok(match value {
        RawBsonRef::Int32(i) => Bson::Int32(i),
        RawBsonRef::Int64(i) => Bson::Int64(i),
        RawBsonRef::Double(d) => Bson::Double(d),
        RawBsonRef::Boolean(b) => Bson::Boolean(b),
        RawBsonRef::Null => Bson::Null,
        RawBsonRef::DateTime(d) => Bson::DateTime(d),
        RawBsonRef::ObjectId(o) => Bson::ObjectId(o),
        RawBsonRef::String(s) => Bson::String(s.to_string()),
        other => Bson::try_from(other).map_err(corrupt)?,
    })
}

/// The rest of a field path from `value`, as the general evaluator walks
/// the decoded document: nested documents are walked on the bytes; an array
/// on the way (whose elements the path maps over) is decoded and walked as
/// decoded.
fn walk(value: RawBsonRef<'_>, rest: &[String]) -> Result<Value> {
    let Some((head, tail)) = rest.split_first() else { return Ok(Some(owned(value)?)) };
    match value {
        RawBsonRef::Document(inner) => match inner.get(head).map_err(corrupt)? {
            Some(next) => walk(next, tail),
            None => Ok(None),
        },
        RawBsonRef::Array(_) => {
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            Ok(crate::path::expr_walk(&owned(value)?, &rest))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
#[path = "raw_tests.rs"]
mod tests;
