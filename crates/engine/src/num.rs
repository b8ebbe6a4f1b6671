//! MongoDB's numeric tower: int32 < int64 < double < decimal128.
//!
//! Arithmetic follows the server's promotion rules: an int32 result that
//! overflows widens to int64, an int64 overflow widens to double, a double
//! operand makes the result double, and any decimal operand makes it decimal.
//! Decimal128 values are handled through `rust_decimal` (28 significant
//! digits); values it cannot represent (NaN, infinities, huge exponents) fall
//! back to `f64` so no input can make arithmetic fail.
use bson::{Bson, Decimal128};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;
use std::cmp::Ordering;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i32),
    Long(i64),
    Double(f64),
    Dec(Decimal),
}

/// Parses a BSON Decimal128 into a `Decimal`, or gives the nearest `f64`
/// when the value is outside what `Decimal` can hold.
pub fn decimal_from_bson(d: &Decimal128) -> std::result::Result<Decimal, f64> {
    let s = d.to_string();
    let parsed = if s.contains(['E', 'e']) {
        Decimal::from_scientific(&s.replace('+', ""))
    } else {
        Decimal::from_str(&s)
    };
    parsed.map_err(|_| match s.as_str() {
        "NaN" | "-NaN" => f64::NAN,
        "Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        _ => s.parse::<f64>().unwrap_or(f64::NAN),
    })
}

pub fn decimal_to_bson(d: Decimal) -> Bson {
    match Decimal128::from_str(&d.to_string()) {
        Ok(v) => Bson::Decimal128(v),
        Err(_) => Bson::Double(d.to_f64().unwrap_or(f64::NAN)),
    }
}

/// Converts a double to decimal128 the way `$toDecimal` does, keeping NaN and
/// infinities (which `Decimal` cannot hold) as Decimal128 specials.
pub fn f64_to_decimal_bson(f: f64) -> Bson {
    if f.is_nan() {
        return Bson::Decimal128(Decimal128::from_str("NaN").unwrap_or_else(|_| Decimal128::from_bytes([0; 16])));
    }
    if f.is_infinite() {
        let s = if f > 0.0 { "Infinity" } else { "-Infinity" };
        return Bson::Decimal128(Decimal128::from_str(s).unwrap_or_else(|_| Decimal128::from_bytes([0; 16])));
    }
    match Decimal::from_f64(f) {
        Some(d) => decimal_to_bson(d.normalize()),
        None => Bson::Double(f),
    }
}

impl Num {
    pub fn from_bson(b: &Bson) -> Option<Num> {
        match b {
            Bson::Int32(i) => Some(Num::Int(*i)),
            Bson::Int64(i) => Some(Num::Long(*i)),
            Bson::Double(f) => Some(Num::Double(*f)),
            Bson::Decimal128(d) => Some(match decimal_from_bson(d) {
                Ok(v) => Num::Dec(v),
                Err(f) => Num::Double(f),
            }),
            _ => None,
        }
    }

    pub fn to_bson(self) -> Bson {
        match self {
            Num::Int(i) => Bson::Int32(i),
            Num::Long(i) => Bson::Int64(i),
            Num::Double(f) => Bson::Double(f),
            Num::Dec(d) => decimal_to_bson(d),
        }
    }

    pub fn to_f64(self) -> f64 {
        match self {
            Num::Int(i) => f64::from(i),
            Num::Long(i) => i as f64,
            Num::Double(f) => f,
            Num::Dec(d) => d.to_f64().unwrap_or(f64::NAN),
        }
    }

    pub fn to_dec(self) -> Option<Decimal> {
        match self {
            Num::Int(i) => Some(Decimal::from(i)),
            Num::Long(i) => Some(Decimal::from(i)),
            Num::Double(f) => Decimal::from_f64(f),
            Num::Dec(d) => Some(d),
        }
    }

    /// The value as an integer if it has no fractional part and fits in i64.
    pub fn to_i64_exact(self) -> Option<i64> {
        match self {
            Num::Int(i) => Some(i64::from(i)),
            Num::Long(i) => Some(i),
            Num::Double(f) => {
                if f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
                    Some(f as i64)
                } else {
                    None
                }
            }
            Num::Dec(d) => {
                if d.fract().is_zero() {
                    d.to_i64()
                } else {
                    None
                }
            }
        }
    }

    pub fn is_zero(self) -> bool {
        match self {
            Num::Int(i) => i == 0,
            Num::Long(i) => i == 0,
            Num::Double(f) => f == 0.0,
            Num::Dec(d) => d.is_zero(),
        }
    }

    pub fn is_nan(self) -> bool {
        matches!(self, Num::Double(f) if f.is_nan())
    }

    fn rank(self) -> u8 {
        match self {
            Num::Int(_) => 0,
            Num::Long(_) => 1,
            Num::Double(_) => 2,
            Num::Dec(_) => 3,
        }
    }
}

fn widen_long(v: i64) -> Num {
    match i32::try_from(v) {
        Ok(i) => Num::Int(i),
        Err(_) => Num::Long(v),
    }
}

enum Pair {
    Ints(i64, i64, bool),
    Doubles(f64, f64),
    Decs(Decimal, Decimal),
}

/// Brings two operands to the wider of their types; the flag on integers says
/// whether both were int32 (so the result may narrow back to int32).
fn promote(a: Num, b: Num) -> Pair {
    let top = a.rank().max(b.rank());
    match top {
        0 | 1 => {
            let ai = a.to_i64_exact().unwrap_or(0);
            let bi = b.to_i64_exact().unwrap_or(0);
            Pair::Ints(ai, bi, top == 0)
        }
        2 => Pair::Doubles(a.to_f64(), b.to_f64()),
        _ => match (a.to_dec(), b.to_dec()) {
            (Some(x), Some(y)) => Pair::Decs(x, y),
            _ => Pair::Doubles(a.to_f64(), b.to_f64()),
        },
    }
}

fn int_result(v: Option<i64>, both_int32: bool, fallback: f64) -> Num {
    match v {
        Some(v) if both_int32 => widen_long(v),
        Some(v) => Num::Long(v),
        None => Num::Double(fallback),
    }
}

/// A count as MongoDB returns one: an int32 while it fits, an int64 beyond
/// (`$count`, `$documentNumber`, `$rank` behave as `$sum` of 1s does).
pub fn count_bson(n: usize) -> Bson {
    match i32::try_from(n) {
        Ok(i) => Bson::Int32(i),
        Err(_) => Bson::Int64(i64::try_from(n).unwrap_or(i64::MAX)),
    }
}

pub fn add(a: Num, b: Num) -> Num {
    match promote(a, b) {
        Pair::Ints(x, y, small) => int_result(x.checked_add(y), small, x as f64 + y as f64),
        Pair::Doubles(x, y) => Num::Double(x + y),
        Pair::Decs(x, y) => x.checked_add(y).map(Num::Dec).unwrap_or(Num::Double(a.to_f64() + b.to_f64())),
    }
}

pub fn sub(a: Num, b: Num) -> Num {
    match promote(a, b) {
        Pair::Ints(x, y, small) => int_result(x.checked_sub(y), small, x as f64 - y as f64),
        Pair::Doubles(x, y) => Num::Double(x - y),
        Pair::Decs(x, y) => x.checked_sub(y).map(Num::Dec).unwrap_or(Num::Double(a.to_f64() - b.to_f64())),
    }
}

pub fn mul(a: Num, b: Num) -> Num {
    match promote(a, b) {
        Pair::Ints(x, y, small) => int_result(x.checked_mul(y), small, x as f64 * y as f64),
        Pair::Doubles(x, y) => Num::Double(x * y),
        Pair::Decs(x, y) => x.checked_mul(y).map(Num::Dec).unwrap_or(Num::Double(a.to_f64() * b.to_f64())),
    }
}

/// `$divide`: always a double, unless a decimal is involved. `None` on division by zero.
pub fn div(a: Num, b: Num) -> Option<Num> {
    if b.is_zero() {
        return None;
    }
    if matches!(a, Num::Dec(_)) || matches!(b, Num::Dec(_)) {
        if let (Some(x), Some(y)) = (a.to_dec(), b.to_dec()) {
            if let Some(q) = x.checked_div(y) {
                return Some(Num::Dec(q));
            }
        }
    }
    Some(Num::Double(a.to_f64() / b.to_f64()))
}

/// `$mod`: keeps the operand type (truncated remainder). `None` on zero divisor.
pub fn rem(a: Num, b: Num) -> Option<Num> {
    if b.is_zero() {
        return None;
    }
    Some(match promote(a, b) {
        Pair::Ints(x, y, small) => int_result(x.checked_rem(y), small, 0.0),
        Pair::Doubles(x, y) => Num::Double(x % y),
        Pair::Decs(x, y) => x.checked_rem(y).map(Num::Dec).unwrap_or(Num::Double(a.to_f64() % b.to_f64())),
    })
}

/// Numeric comparison across representations. NaN sorts below every other
/// number and equals itself, as in MongoDB.
pub fn cmp_num(a: Num, b: Num) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    // By exact value, as MongoDB compares: a double meets a decimal at its
    // exact binary value (9.99 is 9.9900000000000002131..., not
    // NumberDecimal("9.99")).
    use crate::num_order::{cmp_dec_f64, cmp_i64_f64};
    match (a, b) {
        (Num::Int(_) | Num::Long(_), Num::Int(_) | Num::Long(_)) => {
            a.to_i64_exact().unwrap_or(0).cmp(&b.to_i64_exact().unwrap_or(0))
        }
        (Num::Dec(x), Num::Dec(y)) => x.cmp(&y),
        (Num::Double(x), Num::Double(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Num::Dec(x), Num::Double(f)) => cmp_dec_f64(x, f),
        (Num::Double(f), Num::Dec(x)) => cmp_dec_f64(x, f).reverse(),
        (Num::Int(_) | Num::Long(_), Num::Double(f)) => cmp_i64_f64(a.to_i64_exact().unwrap_or(0), f),
        (Num::Double(f), Num::Int(_) | Num::Long(_)) => cmp_i64_f64(b.to_i64_exact().unwrap_or(0), f).reverse(),
        (Num::Int(_) | Num::Long(_), Num::Dec(y)) => Decimal::from(a.to_i64_exact().unwrap_or(0)).cmp(&y),
        (Num::Dec(x), Num::Int(_) | Num::Long(_)) => x.cmp(&Decimal::from(b.to_i64_exact().unwrap_or(0))),
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_past_int32_are_int64() {
        assert_eq!(count_bson(7), Bson::Int32(7));
        assert_eq!(count_bson(i32::MAX as usize), Bson::Int32(i32::MAX));
        assert_eq!(count_bson(i32::MAX as usize + 1), Bson::Int64(i64::from(i32::MAX) + 1));
    }

    #[test]
    fn int32_overflow_promotes_to_int64() {
        assert_eq!(add(Num::Int(i32::MAX), Num::Int(1)), Num::Long(i64::from(i32::MAX) + 1));
        assert_eq!(add(Num::Int(1), Num::Int(2)), Num::Int(3));
    }

    #[test]
    fn int64_overflow_promotes_to_double() {
        assert!(matches!(add(Num::Long(i64::MAX), Num::Long(1)), Num::Double(_)));
    }

    #[test]
    fn decimal_wins() {
        let d = Num::from_bson(&Bson::Decimal128("1.5".parse().unwrap())).unwrap();
        let r = add(d, Num::Int(1));
        assert_eq!(r.to_bson(), Bson::Decimal128("2.5".parse().unwrap()));
    }

    #[test]
    fn division_is_double() {
        assert_eq!(div(Num::Int(6), Num::Int(3)), Some(Num::Double(2.0)));
        assert_eq!(div(Num::Int(6), Num::Int(0)), None);
    }

    #[test]
    fn cross_type_comparison() {
        assert_eq!(cmp_num(Num::Int(1), Num::Double(1.0)), Ordering::Equal);
        assert_eq!(cmp_num(Num::Long(2), Num::Double(1.5)), Ordering::Greater);
        assert_eq!(cmp_num(Num::Double(f64::NAN), Num::Long(i64::MIN)), Ordering::Less);
        let d = Num::from_bson(&Bson::Decimal128("1.0".parse().unwrap())).unwrap();
        assert_eq!(cmp_num(d, Num::Int(1)), Ordering::Equal);
    }

    #[test]
    fn doubles_meet_decimals_at_their_exact_value() {
        let dec = |s: &str| Num::from_bson(&Bson::Decimal128(s.parse().unwrap())).unwrap();
        assert_ne!(cmp_num(Num::Double(9.99), dec("9.99")), Ordering::Equal);
        assert_eq!(cmp_num(Num::Double(9.99), dec("9.99")), Ordering::Greater, "9.99 is 9.99000000000000021...");
        assert_eq!(cmp_num(Num::Double(0.5), dec("0.50")), Ordering::Equal);
        assert_eq!(cmp_num(Num::Double(2.0), dec("2")), Ordering::Equal);
    }
}
