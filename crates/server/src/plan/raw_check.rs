//! A filter's verdict read off a document's stored bytes, without decoding it.
//!
//! A fetch or a scan whose filter is left over after the index bounds (the
//! `n >= ...` of `filter(n__gte=...).order_by('-at')` read along the `at`
//! index) tests it on every document it reads, most of which it refuses.
//! When the filter is nothing but comparisons of top-level fields with
//! numbers (`$eq`, `$gt`, `$gte`, `$lt`, `$lte`, `$in`), each field's stored
//! element is compared in place: no `Document` is built for it. Only a
//! plain number or a value that cannot be a number (a string, a date, null,
//! a missing field...) is decided here; an array, a decimal or a NaN leaves
//! the verdict to the engine's `Filter` ([`RawCheck::test`] answers `None`),
//! so both always agree.
use super::predicates::{Atom, CmpOp, Predicates};
use bson::raw::RawBsonRef;
use bson::{Bson, RawDocument};
use djongo_engine::num::{cmp_num, Num};
use std::cmp::Ordering;

/// One field's conditions, all of which must hold.
struct FieldCheck {
    name: String,
    conditions: Vec<Condition>,
}

enum Condition {
    Cmp(CmpOp, Num),
    /// `$eq` (one value) or `$in` (any of them).
    AnyOf(Vec<Num>),
}

impl Condition {
    fn holds(&self, n: Num) -> bool {
        match self {
            Condition::Cmp(op, q) => {
                let o = cmp_num(n, *q);
                match op {
                    CmpOp::Gt => o == Ordering::Greater,
                    CmpOp::Gte => o != Ordering::Less,
                    CmpOp::Lt => o == Ordering::Less,
                    CmpOp::Lte => o != Ordering::Greater,
                }
            }
            Condition::AnyOf(values) => values.iter().any(|q| cmp_num(n, *q) == Ordering::Equal),
        }
    }
}

/// A filter that can be tested on stored bytes (see the module's comment).
pub struct RawCheck {
    fields: Vec<FieldCheck>,
}

/// A finite number of one of the types compared here exactly (no decimal).
fn plain_number(v: &Bson) -> Option<Num> {
    match v {
        Bson::Int32(i) => Some(Num::Int(*i)),
        Bson::Int64(i) => Some(Num::Long(*i)),
        Bson::Double(f) if !f.is_nan() => Some(Num::Double(*f)),
        _ => None,
    }
}

/// What a stored element says about a numeric condition.
enum Stored {
    Number(Num),
    /// Never a number, nor anything holding one: no numeric condition holds.
    NotANumber,
    /// An array, a decimal, a NaN: for the engine's filter to decide.
    Undecided,
}

fn stored(v: RawBsonRef<'_>) -> Stored {
    match v {
        RawBsonRef::Int32(i) => Stored::Number(Num::Int(i)),
        RawBsonRef::Int64(i) => Stored::Number(Num::Long(i)),
        RawBsonRef::Double(f) if !f.is_nan() => Stored::Number(Num::Double(f)),
        RawBsonRef::Double(_) | RawBsonRef::Decimal128(_) | RawBsonRef::Array(_) => Stored::Undecided,
        // (MinKey and MaxKey compare with everything; leave them too.)
        RawBsonRef::MinKey | RawBsonRef::MaxKey => Stored::Undecided,
        _ => Stored::NotANumber,
    }
}

impl RawCheck {
    /// The check for a filter of numeric comparisons on top-level fields,
    /// `None` for any other filter.
    pub fn compile(preds: &Predicates) -> Option<RawCheck> {
        if !preds.only_fields || preds.fields.is_empty() {
            return None;
        }
        let mut fields = Vec::with_capacity(preds.fields.len());
        for (path, atoms) in &preds.fields {
            if path.contains('.') || path.starts_with('$') || atoms.is_empty() {
                return None;
            }
            let mut conditions = Vec::with_capacity(atoms.len());
            for atom in atoms {
                conditions.push(match atom {
                    Atom::Cmp(op, v) => Condition::Cmp(*op, plain_number(v)?),
                    Atom::Eq(v) => Condition::AnyOf(vec![plain_number(v)?]),
                    Atom::In(values) if !values.is_empty() => Condition::AnyOf(values.iter().map(plain_number).collect::<Option<_>>()?),
                    _ => return None,
                });
            }
            fields.push(FieldCheck { name: path.clone(), conditions });
        }
        Some(RawCheck { fields })
    }

    /// Whether the stored document passes the filter; `None` when one of its
    /// fields holds a value only the engine's filter decides.
    pub fn test(&self, bytes: &[u8]) -> Option<bool> {
        let doc = RawDocument::from_bytes(bytes).ok()?;
        // The last of a repeated name is the one a decoded document keeps.
        let mut found: Vec<Option<RawBsonRef<'_>>> = vec![None; self.fields.len()];
        for element in doc.iter() {
            let (name, value) = element.ok()?;
            if let Some(i) = self.fields.iter().position(|f| f.name == name.as_str()) {
                found[i] = Some(value);
            }
        }
        let mut passes = true;
        for (field, value) in self.fields.iter().zip(found) {
            // A missing field fails every comparison with a number.
            let Some(value) = value else {
                passes = false;
                continue;
            };
            match stored(value) {
                Stored::Number(n) => passes &= field.conditions.iter().all(|c| c.holds(n)),
                Stored::NotANumber => passes = false,
                Stored::Undecided => return None,
            }
        }
        Some(passes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, Document};
    use djongo_engine::Filter;
    use proptest::prelude::*;

    fn bytes(d: &Document) -> Vec<u8> {
        bson::RawDocumentBuf::try_from(d).expect("encodable").into_bytes()
    }

    fn value() -> impl Strategy<Value = Bson> {
        prop_oneof![
            (-5i32..5).prop_map(Bson::Int32),
            (-5i64..5).prop_map(Bson::Int64),
            prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-0.0), Just(2.5), (-5i32..5).prop_map(f64::from)].prop_map(Bson::Double),
            Just(Bson::Null),
            Just(Bson::String("3".into())),
            Just(Bson::Boolean(true)),
            Just(Bson::MinKey),
            (-5i32..5).prop_map(|i| Bson::Array(vec![Bson::Int32(i), Bson::String("x".into())])),
            (-5i32..5).prop_map(|i| Bson::Decimal128(i.to_string().parse().expect("a decimal"))),
            Just(Bson::Document(doc! {"n": 1})),
        ]
    }

    fn condition() -> impl Strategy<Value = Bson> {
        let number = prop_oneof![(-5i32..5).prop_map(Bson::Int32), (-5i64..5).prop_map(Bson::Int64), (-5i32..5).prop_map(|i| Bson::Double(f64::from(i) + 0.5))];
        prop_oneof![
            number.clone(),
            number.clone().prop_map(|v| Bson::Document(doc! {"$gte": v})),
            number.clone().prop_map(|v| Bson::Document(doc! {"$lt": v})),
            (number.clone(), number.clone()).prop_map(|(a, b)| Bson::Document(doc! {"$gt": a, "$lte": b})),
            proptest::collection::vec(number, 1..3).prop_map(|vs| Bson::Document(doc! {"$in": vs})),
        ]
    }

    proptest! {
        /// Whenever the raw check decides, it decides as the engine's filter.
        #[test]
        fn agrees_with_the_filter(
            a in proptest::option::of(value()),
            b in proptest::option::of(value()),
            on_a in condition(),
            on_b in proptest::option::of(condition()),
        ) {
            let mut d = doc! {"_id": 1};
            if let Some(a) = a { d.insert("a", a); }
            if let Some(b) = b { d.insert("b", b); }
            let mut filter = doc! {"a": on_a};
            if let Some(on_b) = on_b { filter.insert("b", on_b); }
            let check = RawCheck::compile(&Predicates::analyze(&filter)).expect("numeric comparisons compile");
            let expected = Filter::parse(&filter).expect("a valid filter").matches(&d).expect("no error");
            if let Some(verdict) = check.test(&bytes(&d)) {
                prop_assert_eq!(verdict, expected, "{} on {}", filter, d);
            }
        }
    }

    #[test]
    fn plain_numbers_are_decided_and_arrays_are_not() {
        let check = RawCheck::compile(&Predicates::analyze(&doc! {"n": {"$gte": 10}})).expect("compiles");
        assert_eq!(check.test(&bytes(&doc! {"_id": 1, "n": 12.5})), Some(true));
        assert_eq!(check.test(&bytes(&doc! {"_id": 1, "n": 9i64})), Some(false));
        assert_eq!(check.test(&bytes(&doc! {"_id": 1, "n": "12"})), Some(false));
        assert_eq!(check.test(&bytes(&doc! {"_id": 1})), Some(false));
        assert_eq!(check.test(&bytes(&doc! {"_id": 1, "n": [1, 12]})), None);
    }

    #[test]
    fn other_filters_are_left_to_the_engine() {
        for filter in [doc! {"n": "x"}, doc! {"a.b": 1}, doc! {"n": {"$ne": 1}}, doc! {"$or": [{"n": 1}]}, doc! {"n": null}, doc! {"n": f64::NAN}, doc! {}] {
            assert!(RawCheck::compile(&Predicates::analyze(&filter)).is_none(), "{filter}");
        }
    }
}
