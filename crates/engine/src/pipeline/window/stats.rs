//! `$expMovingAvg` and `$covariancePop`/`$covarianceSamp`.
use crate::num::{self, Num};
use bson::Bson;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;

/// The smoothing factor of `$expMovingAvg`: `alpha`, or 2 / (N + 1).
#[derive(Debug, Clone, Copy)]
pub(super) enum Smoothing {
    N(i64),
    Alpha(f64),
}

impl Smoothing {
    fn alpha(self) -> Option<Decimal> {
        match self {
            Smoothing::N(n) => Decimal::from(2).checked_div(Decimal::from(n).checked_add(Decimal::ONE)?),
            Smoothing::Alpha(a) => Decimal::from_f64(a),
        }
    }

    fn alpha_f64(self) -> f64 {
        match self {
            Smoothing::N(n) => 2.0 / (n as f64 + 1.0),
            Smoothing::Alpha(a) => a,
        }
    }
}

/// The running average, kept in decimal as MongoDB does, falling back to
/// double for values a decimal cannot hold (NaN, infinities, overflow).
#[derive(Clone, Copy)]
enum Running {
    Dec(Decimal),
    Double(f64),
}

/// `$expMovingAvg`: the first numeric value starts the average; each later
/// one moves it to value * alpha + previous * (1 - alpha). Non-numeric values
/// (null, missing, strings, ...) leave it unchanged; before the first number
/// it is null. The answer is a double unless a decimal was seen.
pub(super) fn exp_moving_avg(values: &[Option<Bson>], smoothing: Smoothing) -> Vec<Bson> {
    let alpha = smoothing.alpha();
    let mut current: Option<Running> = None;
    let mut saw_decimal = false;
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        if let Some(n) = v.as_ref().and_then(Num::from_bson) {
            saw_decimal |= matches!(n, Num::Dec(_));
            current = Some(match current {
                None => n.to_dec().map_or(Running::Double(n.to_f64()), Running::Dec),
                Some(prev) => step(prev, n, alpha, smoothing.alpha_f64()),
            });
        }
        out.push(match current {
            None => Bson::Null,
            Some(Running::Dec(d)) if saw_decimal => num::decimal_to_bson(d),
            Some(Running::Dec(d)) => Bson::Double(d.to_f64().unwrap_or(f64::NAN)),
            Some(Running::Double(f)) if saw_decimal => num::f64_to_decimal_bson(f),
            Some(Running::Double(f)) => Bson::Double(f),
        });
    }
    out
}

fn step(prev: Running, value: Num, alpha: Option<Decimal>, alpha_f64: f64) -> Running {
    if let (Running::Dec(p), Some(v), Some(a)) = (prev, value.to_dec(), alpha) {
        let next = v
            .checked_mul(a)
            .and_then(|x| Decimal::ONE.checked_sub(a).and_then(|rest| p.checked_mul(rest)).and_then(|y| x.checked_add(y)));
        if let Some(n) = next {
            return Running::Dec(n);
        }
    }
    let p = match prev {
        Running::Dec(d) => d.to_f64().unwrap_or(f64::NAN),
        Running::Double(f) => f,
    };
    Running::Double(value.to_f64() * alpha_f64 + p * (1.0 - alpha_f64))
}

/// An (x, y) pair of `$covariancePop`/`$covarianceSamp`.
type Pair = (f64, f64);

/// `$covariancePop` / `$covarianceSamp` over each window. The argument
/// evaluates to `[x, y]`; documents where it is not two numbers are ignored.
/// No pairs: null; one pair: 0 for the population, null for the sample.
/// Infinite or NaN inputs make the answer infinite or NaN as MongoDB's do.
pub(super) fn covariance(args: &[Option<Bson>], frames: &[(usize, usize)], sample: bool) -> Vec<Bson> {
    let pairs: Vec<Option<Pair>> = args
        .iter()
        .map(|v| match v {
            Some(Bson::Array(a)) if a.len() == 2 => match (Num::from_bson(&a[0]), Num::from_bson(&a[1])) {
                (Some(x), Some(y)) => Some((x.to_f64(), y.to_f64())),
                _ => None,
            },
            _ => None,
        })
        .collect();
    frames
        .iter()
        .map(|&(a, b)| {
            let window: Vec<Pair> = pairs[a..b.max(a)].iter().flatten().copied().collect();
            let (finite, special): (Vec<Pair>, Vec<Pair>) =
                window.into_iter().partition(|(x, y)| x.is_finite() && y.is_finite());
            let count = finite.len();
            if count == 1 && !sample {
                return Bson::Double(0.0);
            }
            let divisor = if sample { count.saturating_sub(1) } else { count };
            if divisor == 0 {
                return Bson::Null;
            }
            let n = count as f64;
            let mean_x = finite.iter().map(|p| p.0).sum::<f64>() / n;
            let mean_y = finite.iter().map(|p| p.1).sum::<f64>() / n;
            let mut co_moment: f64 = finite.iter().map(|(x, y)| (x - mean_x) * (y - mean_y)).sum();
            // A pair with an infinity adds ±infinity (NaN when the signs
            // disagree or a NaN is involved), as MongoDB sums them.
            for (x, y) in special {
                co_moment += if x.is_nan() || y.is_nan() {
                    f64::NAN
                } else {
                    let signs = [x, y].iter().filter(|v| v.is_infinite()).map(|v| v.signum()).collect::<Vec<_>>();
                    if signs.windows(2).any(|w| w[0] != w[1]) {
                        f64::NAN
                    } else {
                        signs.first().copied().unwrap_or(1.0) * f64::INFINITY
                    }
                };
            }
            Bson::Double(co_moment / divisor as f64)
        })
        .collect()
}
