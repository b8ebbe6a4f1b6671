//! The exact order of numbers across representations, and the key an index
//! orders them by.
//!
//! MongoDB compares int32, int64, double and decimal128 by their exact
//! values. Integers against doubles are easy; a `Decimal` (up to 28 digits,
//! scale up to 28) against a double needs more care, because a double's exact
//! decimal expansion can run to hundreds of digits: [`cmp_dec_f64`] compares
//! them exactly with 256-bit integer arithmetic instead.
//!
//! [`num_key`] places a number for an order-preserving byte encoding: first
//! the nearest double (correctly rounded, so the map is monotone), then, for
//! the few values that are not exactly a double (integers beyond 2^53,
//! decimals such as 0.1), their exact value below or above it. Two numbers get
//! the same key exactly when [`crate::num::cmp_num`] calls them equal.
use crate::num::Num;
use rust_decimal::Decimal;
use std::cmp::Ordering;

/// Where a number sits among all numbers; see [`num_key`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumKey {
    /// NaN sorts below every other number and equals itself.
    NaN,
    /// `nearest` is the double closest to the value (never -0.0), `offset`
    /// says whether the value is that double or lies just below or above it.
    Ordered { nearest: f64, offset: Offset },
}

/// A value's place relative to its nearest double.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    Below(ExactValue),
    Exact,
    Above(ExactValue),
}

/// An exact value as `floor + frac / 10^28` (`frac < 10^28`): every int64 and
/// every `Decimal` has exactly one such form, and the pairs order as the
/// values do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExactValue {
    pub floor: i128,
    pub frac: u128,
}

const FRAC_SCALE: u32 = 28;

/// The key of `n` (see the module documentation).
pub fn num_key(n: Num) -> NumKey {
    let (nearest, side, exact) = match n {
        Num::Int(i) => return ordered(f64::from(i), Offset::Exact),
        Num::Double(f) if f.is_nan() => return NumKey::NaN,
        Num::Double(f) => return ordered(f, Offset::Exact),
        Num::Long(i) => {
            let nearest = i as f64;
            (nearest, cmp_i64_f64(i, nearest), ExactValue { floor: i128::from(i), frac: 0 })
        }
        Num::Dec(d) => {
            let nearest = nearest_f64(d);
            (nearest, cmp_dec_f64(d, nearest), exact_value(d))
        }
    };
    let offset = match side {
        Ordering::Less => Offset::Below(exact),
        Ordering::Equal => Offset::Exact,
        Ordering::Greater => Offset::Above(exact),
    };
    ordered(nearest, offset)
}

fn ordered(nearest: f64, offset: Offset) -> NumKey {
    // -0.0 == 0.0: one key.
    NumKey::Ordered { nearest: if nearest == 0.0 { 0.0 } else { nearest }, offset }
}

/// `i` against the double `f` (not NaN), exactly.
pub fn cmp_i64_f64(i: i64, f: f64) -> Ordering {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f >= TWO_63 {
        return Ordering::Less;
    }
    if f < -TWO_63 {
        return Ordering::Greater;
    }
    let whole = f.trunc();
    // |whole| < 2^63, so the conversion is exact.
    match i.cmp(&(whole as i64)) {
        Ordering::Equal => 0.0_f64.partial_cmp(&(f - whole)).unwrap_or(Ordering::Equal),
        other => other,
    }
}

/// The double nearest to `d` (ties to even), as parsing its decimal text does.
pub fn nearest_f64(d: Decimal) -> f64 {
    let mantissa = d.mantissa().unsigned_abs();
    let scale = d.scale();
    let sign = if d.is_sign_negative() { -1.0 } else { 1.0 };
    // Both operands exact, so one correctly rounded operation.
    if mantissa < (1u128 << 53) && scale <= 22 {
        return sign * (mantissa as f64) / 10f64.powi(scale as i32);
    }
    d.to_string().parse::<f64>().unwrap_or(f64::NAN)
}

/// `d` against the double `f` (not NaN), exactly.
pub fn cmp_dec_f64(d: Decimal, f: f64) -> Ordering {
    if f.is_infinite() {
        return if f > 0.0 { Ordering::Less } else { Ordering::Greater };
    }
    let sd = if d.is_zero() { 0 } else if d.is_sign_negative() { -1 } else { 1 };
    let sf = if f == 0.0 { 0 } else if f < 0.0 { -1 } else { 1 };
    if sd != sf || sd == 0 {
        return sd.cmp(&sf);
    }
    let magnitude = cmp_abs(d.mantissa().unsigned_abs(), d.scale(), f.abs());
    if sd < 0 {
        magnitude.reverse()
    } else {
        magnitude
    }
}

/// `n / 10^s` against the positive finite double `x`.
fn cmp_abs(n: u128, s: u32, x: f64) -> Ordering {
    let (m, e) = decompose(x);
    let pow = 10u128.pow(s);
    let (di, df) = (n / pow, n % pow);
    if e >= 0 {
        // x = m * 2^e is an integer; n < 2^96, so past that x is larger.
        let bits = 128 - m.leading_zeros() as i32;
        if bits + e > 96 {
            return Ordering::Less;
        }
        let xi = u128::from(m) << e;
        return di.cmp(&xi).then(if df > 0 { Ordering::Greater } else { Ordering::Equal });
    }
    let k = (-e) as u32;
    let xi = if k >= 64 { 0 } else { u128::from(m >> k) };
    let xf = if k >= 64 { u128::from(m) } else { u128::from(m) - (xi << k) };
    match di.cmp(&xi) {
        Ordering::Equal => {}
        other => return other,
    }
    // Fractions: df / 10^s against xf / 2^k, i.e. df * 2^k against xf * 10^s.
    match (df, xf) {
        (0, 0) => return Ordering::Equal,
        (0, _) => return Ordering::Less,
        (_, 0) => return Ordering::Greater,
        _ => {}
    }
    // xf < 2^53 and 10^s < 2^94, so the right side is below 2^147.
    let df_bits = 128 - df.leading_zeros();
    if df_bits - 1 + k >= 147 {
        return Ordering::Greater;
    }
    wide_shl(df, k).cmp(&wide_mul(xf, pow))
}

/// `x = m * 2^e` with `m` an integer (below 2^53).
fn decompose(x: f64) -> (u64, i32) {
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7FF) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    if exp == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), exp - 1075)
    }
}

/// `a << k` as (high, low) 128-bit halves; `a << k` must be below 2^256.
fn wide_shl(a: u128, k: u32) -> (u128, u128) {
    match k {
        0 => (0, a),
        1..=127 => (a >> (128 - k), a << k),
        _ => (a << (k - 128), 0),
    }
}

/// `a * b` as (high, low) halves, for `a < 2^64` and `b < 2^128`.
fn wide_mul(a: u128, b: u128) -> (u128, u128) {
    const LOW64: u128 = u64::MAX as u128;
    let lo = a * (b & LOW64);
    let mid = a * (b >> 64);
    let (low, carry) = lo.overflowing_add((mid & LOW64) << 64);
    ((mid >> 64) + u128::from(carry), low)
}

/// `d` as floor and scaled fraction.
fn exact_value(d: Decimal) -> ExactValue {
    let n = d.mantissa().unsigned_abs();
    let s = d.scale();
    let pow = 10u128.pow(s);
    let (whole, rem) = (n / pow, n % pow);
    let scale_up = 10u128.pow(FRAC_SCALE - s);
    if d.is_sign_negative() && rem != 0 {
        ExactValue { floor: -(whole as i128) - 1, frac: (pow - rem) * scale_up }
    } else if d.is_sign_negative() {
        ExactValue { floor: -(whole as i128), frac: 0 }
    } else {
        ExactValue { floor: whole as i128, frac: rem * scale_up }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn decimals_meet_doubles_exactly() {
        assert_eq!(cmp_dec_f64(dec("0.1"), 0.1), Ordering::Less, "0.1 is 0.1000000000000000055...");
        assert_eq!(cmp_dec_f64(dec("0.5"), 0.5), Ordering::Equal);
        assert_eq!(cmp_dec_f64(dec("9.99"), 9.99), Ordering::Less);
        assert_eq!(cmp_dec_f64(dec("-9.99"), -9.99), Ordering::Greater);
        assert_eq!(cmp_dec_f64(dec("0.1000000000000000055511151231"), 0.1), Ordering::Less);
        assert_eq!(cmp_dec_f64(dec("0.1000000000000000055511151232"), 0.1), Ordering::Greater);
        assert_eq!(cmp_dec_f64(dec("1e-28"), 5e-324), Ordering::Greater);
        assert_eq!(cmp_dec_f64(dec("79228162514264337593543950335"), 1e30), Ordering::Less);
        assert_eq!(cmp_dec_f64(dec("0"), -0.0), Ordering::Equal);
        assert_eq!(cmp_dec_f64(dec("3"), f64::INFINITY), Ordering::Less);
    }

    #[test]
    fn keys_of_equal_numbers_agree() {
        assert_eq!(num_key(Num::Int(1)), num_key(Num::Double(1.0)));
        assert_eq!(num_key(Num::Dec(dec("1.000"))), num_key(Num::Long(1)));
        assert_eq!(num_key(Num::Double(-0.0)), num_key(Num::Int(0)));
        assert_eq!(num_key(Num::Dec(dec("0.5"))), num_key(Num::Double(0.5)));
        assert_ne!(num_key(Num::Dec(dec("0.1"))), num_key(Num::Double(0.1)));
        assert_ne!(num_key(Num::Long((1 << 53) + 1)), num_key(Num::Double((1u64 << 53) as f64)));
    }

    fn arb_num() -> impl Strategy<Value = Num> {
        prop_oneof![
            any::<i32>().prop_map(Num::Int),
            any::<i64>().prop_map(Num::Long),
            ((1i64 << 53) - 5..(1i64 << 53) + 5).prop_map(Num::Long),
            any::<f64>().prop_filter("not NaN", |f| !f.is_nan()).prop_map(Num::Double),
            (-1000i64..1000).prop_map(|i| Num::Double(i as f64 / 8.0)),
            (any::<i64>(), 0u32..=28).prop_map(|(m, s)| Num::Dec(Decimal::new(m, s))),
            (-1000i64..1000, 0u32..4).prop_map(|(m, s)| Num::Dec(Decimal::new(m, s))),
        ]
    }

    fn key_cmp(a: NumKey, b: NumKey) -> Ordering {
        match (a, b) {
            (NumKey::NaN, NumKey::NaN) => Ordering::Equal,
            (NumKey::NaN, _) => Ordering::Less,
            (_, NumKey::NaN) => Ordering::Greater,
            (NumKey::Ordered { nearest: x, offset: o }, NumKey::Ordered { nearest: y, offset: p }) => {
                let rank = |o: Offset| match o {
                    Offset::Below(v) => (0, Some(v)),
                    Offset::Exact => (1, None),
                    Offset::Above(v) => (2, Some(v)),
                };
                x.partial_cmp(&y).unwrap_or(Ordering::Equal).then(rank(o).cmp(&rank(p)))
            }
        }
    }

    proptest! {
        #[test]
        fn keys_order_as_values_compare(a in arb_num(), b in arb_num()) {
            prop_assert_eq!(key_cmp(num_key(a), num_key(b)), crate::num::cmp_num(a, b), "{:?} vs {:?}", a, b);
        }

        #[test]
        fn nearest_is_correctly_rounded(m in any::<i64>(), s in 0u32..=28) {
            let d = Decimal::new(m, s);
            prop_assert_eq!(nearest_f64(d), d.to_string().parse::<f64>().unwrap());
        }
    }
}
