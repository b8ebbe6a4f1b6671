//! Date operators over BSON dates (milliseconds since the Unix epoch).
//!
//! Calendar arithmetic is done on the proleptic Gregorian calendar with the
//! days-from-civil conversion, so it works for any i64 millisecond value.
//! Timezones: "UTC", fixed offsets ("+05:30", "-0800") and Olson names
//! ("Europe/Paris", from the tz database bundled in `jiff`, so no system
//! files are read).
use super::{arg_list, nullish, type_name, Ctx, Value};
use crate::num::Num;
use crate::{EngineError, Result};
use bson::{Bson, DateTime, Document};

const MS_PER_DAY: i64 = 86_400_000;

pub(super) fn dispatch(cx: &Ctx, op: &str, arg: &Bson) -> Option<Result<Value>> {
    Some(match op {
        "$year" | "$month" | "$dayOfMonth" | "$hour" | "$minute" | "$second" | "$millisecond" | "$dayOfWeek"
        | "$dayOfYear" | "$week" | "$isoWeek" | "$isoWeekYear" | "$isoDayOfWeek" => part(cx, op, arg),
        "$dateToString" => date_to_string(cx, arg),
        "$dateFromParts" => date_from_parts(cx, arg),
        "$dateFromString" => date_from_string(cx, arg),
        "$dateToParts" => date_to_parts(cx, arg),
        "$dateTrunc" => date_trunc(cx, arg),
        "$dateAdd" => date_add(cx, arg, 1),
        "$dateSubtract" => date_add(cx, arg, -1),
        "$dateDiff" => date_diff(cx, arg),
        _ => return None,
    })
}

/// Days since 1970-01-01 of a civil date (month and day may be out of range
/// only as far as the caller normalised them).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// The broken-down fields of a local time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
    pub millis: i64,
    /// 0 = Sunday.
    pub weekday: i64,
    /// 1-based.
    pub yday: i64,
    pub days: i64,
}

pub(crate) fn parts(ms: i64) -> Parts {
    let days = ms.div_euclid(MS_PER_DAY);
    let rem = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    Parts {
        year,
        month,
        day,
        hour: rem / 3_600_000,
        minute: rem / 60_000 % 60,
        second: rem / 1000 % 60,
        millis: rem % 1000,
        weekday: (days + 4).rem_euclid(7),
        yday: days - days_from_civil(year, 1, 1) + 1,
        days,
    }
}

/// ISO 8601 week-numbering year and week of a local date.
fn iso_week(p: &Parts) -> (i64, i64) {
    let iso_dow = if p.weekday == 0 { 7 } else { p.weekday };
    // The Thursday of this week decides the year.
    let thursday = p.days - iso_dow + 4;
    let (ty, _, _) = civil_from_days(thursday);
    let week = (thursday - days_from_civil(ty, 1, 1)) / 7 + 1;
    (ty, week)
}

pub(crate) fn format_iso(ms: i64) -> String {
    let p = parts(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        p.year, p.month, p.day, p.hour, p.minute, p.second, p.millis
    )
}

/// A `timezone` argument.
#[derive(Debug, Clone)]
pub(crate) enum Tz {
    /// A fixed offset from UTC in milliseconds.
    Fixed(i64),
    Named(jiff::tz::TimeZone),
}

impl Tz {
    const UTC: Tz = Tz::Fixed(0);

    /// The zone's offset from UTC at an instant.
    fn offset_at(&self, utc_ms: i64) -> i64 {
        match self {
            Tz::Fixed(o) => *o,
            Tz::Named(tz) => jiff::Timestamp::from_millisecond(utc_ms)
                .map(|t| i64::from(tz.to_offset(t).seconds()) * 1000)
                .unwrap_or(0),
        }
    }

    fn to_local(&self, utc_ms: i64) -> i64 {
        utc_ms.saturating_add(self.offset_at(utc_ms))
    }

    /// The instant of a local wall-clock time. Around a DST change this is
    /// the "compatible" reading mongod's time library makes: an ambiguous
    /// time (clocks turned back) is its earlier instant, and a time that
    /// does not exist (clocks turned forward) moves forward by the gap, so
    /// America/Sao_Paulo's 2016-10-16T00:00, skipped at the start of DST, is
    /// 01:00 -02:00.
    fn to_utc(&self, local_ms: i64) -> i64 {
        match self {
            Tz::Fixed(o) => local_ms.saturating_sub(*o),
            Tz::Named(tz) => {
                let civil = jiff::Timestamp::from_millisecond(local_ms).map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).datetime());
                match civil.and_then(|dt| tz.to_ambiguous_timestamp(dt).compatible()) {
                    Ok(ts) => ts.as_millisecond(),
                    // Outside jiff's range: the offset at that instant.
                    Err(_) => local_ms.saturating_sub(self.offset_at(local_ms)),
                }
            }
        }
    }
}

fn parse_tz(tz: &str) -> Result<Tz> {
    parse_offset(tz).map(Tz::Fixed).or_else(|e| match jiff::tz::TimeZone::get(tz) {
        Ok(named) => Ok(Tz::Named(named)),
        Err(_) => Err(e),
    })
}

/// A timezone as a fixed offset in milliseconds.
fn parse_offset(tz: &str) -> Result<i64> {
    match tz {
        "UTC" | "GMT" | "Z" | "Etc/UTC" | "Etc/GMT" | "UCT" | "Zulu" => return Ok(0),
        _ => {}
    }
    let unsupported = || EngineError::location(40485, format!("unrecognized time zone identifier: \"{tz}\" "));
    let (sign, rest) = match tz.as_bytes().first() {
        Some(b'+') => (1, &tz[1..]),
        Some(b'-') => (-1, &tz[1..]),
        _ => return Err(unsupported()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(unsupported());
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i64>().unwrap_or(0), 0),
        4 => (digits[..2].parse::<i64>().unwrap_or(0), digits[2..].parse::<i64>().unwrap_or(0)),
        _ => return Err(unsupported()),
    };
    Ok(sign * (h * 3_600_000 + m * 60_000))
}

fn eval_tz(cx: &Ctx, spec: Option<&Bson>) -> Result<Option<Tz>> {
    let Some(e) = spec else { return Ok(Some(Tz::UTC)) };
    match cx.eval(e)? {
        Some(Bson::String(s)) => parse_tz(&s).map(Some),
        v if nullish(&v) => Ok(None),
        v => Err(EngineError::location(40517, format!("timezone must evaluate to a string, found {}", type_name(&v)))),
    }
}

/// Milliseconds of a date-like value (date, timestamp, ObjectId).
fn date_millis(op: &str, v: &Value) -> Result<Option<i64>> {
    match v {
        Some(Bson::DateTime(d)) => Ok(Some(d.timestamp_millis())),
        Some(Bson::Timestamp(t)) => Ok(Some(i64::from(t.time) * 1000)),
        Some(Bson::ObjectId(o)) => Ok(Some(o.timestamp().timestamp_millis())),
        _ if nullish(v) => Ok(None),
        _ => Err(EngineError::location(16006, format!("can't convert from BSON type {} to Date in {op}", type_name(v)))),
    }
}

fn part(cx: &Ctx, op: &str, arg: &Bson) -> Result<Value> {
    let (date_expr, tz_expr) = match arg {
        Bson::Document(d) if d.contains_key("date") => (d.get("date").unwrap_or(&Bson::Null), d.get("timezone")),
        other => {
            let args = arg_list(other);
            super::arity(op, args, 1)?;
            (&args[0], None)
        }
    };
    let v = cx.eval(date_expr)?;
    let Some(ms) = date_millis(op, &v)? else { return Ok(Some(Bson::Null)) };
    let Some(tz) = eval_tz(cx, tz_expr)? else { return Ok(Some(Bson::Null)) };
    let p = parts(tz.to_local(ms));
    let value = match op {
        "$year" => p.year,
        "$month" => p.month,
        "$dayOfMonth" => p.day,
        "$hour" => p.hour,
        "$minute" => p.minute,
        "$second" => p.second,
        "$millisecond" => p.millis,
        "$dayOfWeek" => p.weekday + 1,
        "$dayOfYear" => p.yday,
        "$week" => (p.yday - 1 + 7 - p.weekday) / 7,
        "$isoWeek" => iso_week(&p).1,
        "$isoWeekYear" => iso_week(&p).0,
        _ => {
            if p.weekday == 0 {
                7
            } else {
                p.weekday
            }
        }
    };
    Ok(Some(Bson::Int32(i32::try_from(value).unwrap_or(i32::MAX))))
}

fn spec<'b>(op: &str, arg: &'b Bson) -> Result<&'b Document> {
    match arg {
        Bson::Document(d) => Ok(d),
        _ => Err(EngineError::location(18629, format!("{op} only supports an object as its argument"))),
    }
}

pub(crate) fn format_date(ms: i64, format: &str) -> Result<String> {
    let p = parts(ms);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = chars.next() else {
            return Err(EngineError::location(18535, "Unmatched '%' at end of format string"));
        };
        let piece = match spec {
            'Y' => format!("{:04}", p.year),
            'm' => format!("{:02}", p.month),
            'd' => format!("{:02}", p.day),
            'H' => format!("{:02}", p.hour),
            'M' => format!("{:02}", p.minute),
            'S' => format!("{:02}", p.second),
            'L' => format!("{:03}", p.millis),
            'j' => format!("{:03}", p.yday),
            'w' => format!("{}", p.weekday + 1),
            'u' => format!("{}", if p.weekday == 0 { 7 } else { p.weekday }),
            'U' => format!("{:02}", (p.yday - 1 + 7 - p.weekday) / 7),
            'V' => format!("{:02}", iso_week(&p).1),
            'G' => format!("{:04}", iso_week(&p).0),
            'Z' => "+0000".into(),
            'z' => "+0000".into(),
            '%' => "%".into(),
            'b' => MONTHS[(p.month - 1).clamp(0, 11) as usize][..3].to_string(),
            'B' => MONTHS[(p.month - 1).clamp(0, 11) as usize].to_string(),
            other => {
                return Err(EngineError::location(18536, format!("Invalid format character '%{other}' in format string")));
            }
        };
        out.push_str(&piece);
    }
    Ok(out)
}

const MONTHS: [&str; 12] = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
    "December",
];

fn date_to_string(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let d = spec("$dateToString", arg)?;
    let v = cx.eval(d.get("date").unwrap_or(&Bson::Null))?;
    let Some(ms) = date_millis("$dateToString", &v)? else {
        return match d.get("onNull") {
            Some(e) => cx.eval(e),
            None => Ok(Some(Bson::Null)),
        };
    };
    let Some(tz) = eval_tz(cx, d.get("timezone"))? else { return Ok(Some(Bson::Null)) };
    let offset = tz.offset_at(ms);
    let format = match d.get("format") {
        Some(f) => match cx.eval(f)? {
            Some(Bson::String(s)) => s,
            v if nullish(&v) => return Ok(Some(Bson::Null)),
            _ => return Err(EngineError::location(18533, "$dateToString requires that 'format' be a string")),
        },
        None => "%Y-%m-%dT%H:%M:%S.%LZ".to_string(),
    };
    let mut s = format_date(ms.saturating_add(offset), &format)?;
    if offset != 0 && (format.contains("%z") || format.contains("%Z")) {
        let sign = if offset < 0 { '-' } else { '+' };
        let a = offset.abs();
        s = s.replace("+0000", &format!("{sign}{:02}{:02}", a / 3_600_000, a / 60_000 % 60));
    }
    Ok(Some(Bson::String(s)))
}

fn int_field(cx: &Ctx, d: &Document, key: &str, default: i64) -> Result<Option<i64>> {
    match d.get(key) {
        None => Ok(Some(default)),
        Some(e) => {
            let v = cx.eval(e)?;
            if nullish(&v) {
                return Ok(None);
            }
            v.as_ref()
                .and_then(Num::from_bson)
                .and_then(|n| n.to_i64_exact())
                .map(Some)
                .ok_or_else(|| EngineError::location(40515, format!("'{key}' must evaluate to an integer, found {}", type_name(&v))))
        }
    }
}

fn date_from_parts(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let d = spec("$dateFromParts", arg)?;
    let Some(tz) = eval_tz(cx, d.get("timezone"))? else { return Ok(Some(Bson::Null)) };
    let mut fields = Vec::new();
    let iso = d.contains_key("isoWeekYear");
    let names: [(&str, i64); 7] = if iso {
        [("isoWeekYear", 1970), ("isoWeek", 1), ("isoDayOfWeek", 1), ("hour", 0), ("minute", 0), ("second", 0), ("millisecond", 0)]
    } else {
        if !d.contains_key("year") {
            return Err(EngineError::location(40516, "$dateFromParts requires either 'year' or 'isoWeekYear' to be present"));
        }
        [("year", 1970), ("month", 1), ("day", 1), ("hour", 0), ("minute", 0), ("second", 0), ("millisecond", 0)]
    };
    for (name, default) in names {
        match int_field(cx, d, name, default)? {
            Some(v) if name == "year" || name == "isoWeekYear" => {
                if !(1..=9999).contains(&v) {
                    return Err(EngineError::location(40523, format!("'{name}' must evaluate to an integer in the range 1 to 9999, found {v}")));
                }
                fields.push(v);
            }
            Some(v) => {
                if (!(-32768..=32767).contains(&v) && name != "millisecond") || !(-(1 << 40)..=(1 << 40)).contains(&v) {
                    return Err(EngineError::location(31034, format!("'{name}' must evaluate to a value in the range [-32768, 32767], found {v}")));
                }
                fields.push(v);
            }
            None => return Ok(Some(Bson::Null)),
        }
    }
    let days = if iso {
        // ISO week 1 is the week holding January 4th.
        let jan4 = days_from_civil(fields[0], 1, 4);
        let jan4_dow = { let w = (jan4 + 4).rem_euclid(7); if w == 0 { 7 } else { w } };
        jan4 - (jan4_dow - 1) + (fields[1] - 1) * 7 + (fields[2] - 1)
    } else {
        let months = fields[0] * 12 + (fields[1] - 1);
        days_from_civil(months.div_euclid(12), months.rem_euclid(12) + 1, 1) + fields[2] - 1
    };
    let ms = days * MS_PER_DAY + fields[3] * 3_600_000 + fields[4] * 60_000 + fields[5] * 1000 + fields[6];
    Ok(Some(Bson::DateTime(DateTime::from_millis(tz.to_utc(ms)))))
}

fn date_to_parts(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let d = spec("$dateToParts", arg)?;
    let v = cx.eval(d.get("date").unwrap_or(&Bson::Null))?;
    let Some(ms) = date_millis("$dateToParts", &v)? else { return Ok(Some(Bson::Null)) };
    let Some(tz) = eval_tz(cx, d.get("timezone"))? else { return Ok(Some(Bson::Null)) };
    let p = parts(tz.to_local(ms));
    let iso8601 = matches!(d.get("iso8601"), Some(b) if super::truthy(b));
    let mut out = Document::new();
    let i = |v: i64| Bson::Int32(i32::try_from(v).unwrap_or(0));
    if iso8601 {
        let (y, w) = iso_week(&p);
        out.insert("isoWeekYear", i(y));
        out.insert("isoWeek", i(w));
        out.insert("isoDayOfWeek", i(if p.weekday == 0 { 7 } else { p.weekday }));
    } else {
        out.insert("year", i(p.year));
        out.insert("month", i(p.month));
        out.insert("day", i(p.day));
    }
    out.insert("hour", i(p.hour));
    out.insert("minute", i(p.minute));
    out.insert("second", i(p.second));
    out.insert("millisecond", i(p.millis));
    Ok(Some(Bson::Document(out)))
}

/// Parses the date strings MongoDB's `$dateFromString` accepts without a
/// format: `YYYY-MM-DD`, optionally followed by `T` or a space, a time with
/// optional fraction, and `Z` or an offset.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) { t.parse().ok() } else { None }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    let mut ms = days_from_civil(y, mo, d) * MS_PER_DAY;
    let mut rest = &s[10..];
    if rest.is_empty() {
        return Some(ms);
    }
    if !(rest.starts_with('T') || rest.starts_with(' ')) {
        return None;
    }
    rest = &rest[1..];
    let tb = rest.as_bytes();
    if tb.len() < 5 || tb[2] != b':' {
        return None;
    }
    let hh: i64 = rest.get(0..2)?.parse().ok()?;
    let mi: i64 = rest.get(3..5)?.parse().ok()?;
    let mut ss = 0;
    let mut idx = 5;
    if tb.len() >= 8 && tb[5] == b':' {
        ss = rest.get(6..8)?.parse().ok()?;
        idx = 8;
    }
    let mut frac = 0;
    if tb.get(idx) == Some(&b'.') {
        let digits: String = rest[idx + 1..].chars().take_while(char::is_ascii_digit).collect();
        idx += 1 + digits.len();
        let padded = format!("{:0<3}", &digits[..digits.len().min(3)]);
        frac = padded.parse().ok()?;
    }
    if hh > 23 || mi > 59 || ss > 60 {
        return None;
    }
    ms += hh * 3_600_000 + mi * 60_000 + ss * 1000 + frac;
    let tz = rest[idx..].trim();
    if !tz.is_empty() {
        ms -= parse_offset(tz).ok()?;
    }
    Some(ms)
}

fn date_from_string(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let d = spec("$dateFromString", arg)?;
    let v = cx.eval(d.get("dateString").unwrap_or(&Bson::Null))?;
    if nullish(&v) {
        return match d.get("onNull") {
            Some(e) => cx.eval(e),
            None => Ok(Some(Bson::Null)),
        };
    }
    let Some(tz) = eval_tz(cx, d.get("timezone"))? else { return Ok(Some(Bson::Null)) };
    let parsed = match &v {
        Some(Bson::String(s)) => parse_date(s).map(|ms| {
            // An explicit offset in the string wins over the timezone argument.
            let has_zone = s.ends_with('Z') || s.get(10..).is_some_and(|t| t.contains('+') || t.matches('-').count() > 0);
            if has_zone { ms } else { tz.to_utc(ms) }
        }),
        _ => None,
    };
    match parsed {
        Some(ms) => Ok(Some(Bson::DateTime(DateTime::from_millis(ms)))),
        None => match d.get("onError") {
            Some(e) => cx.eval(e),
            None => Err(EngineError::new(241, "ConversionFailure", format!("Error parsing date string '{}'", v.unwrap_or(Bson::Null)))),
        },
    }
}

fn unit_arg(cx: &Ctx, d: &Document, op: &str) -> Result<Option<String>> {
    match cx.eval(d.get("unit").unwrap_or(&Bson::Null))? {
        Some(Bson::String(s)) => match s.as_str() {
            "year" | "quarter" | "month" | "week" | "day" | "hour" | "minute" | "second" | "millisecond" => Ok(Some(s)),
            _ => Err(EngineError::bad_value(format!("{op}: unknown time unit value: {s}"))),
        },
        v if nullish(&v) => Ok(None),
        v => Err(EngineError::bad_value(format!("{op} requires 'unit' to be a string, but got {}", type_name(&v)))),
    }
}

fn fixed_unit_ms(unit: &str) -> Option<i64> {
    Some(match unit {
        "week" => 7 * MS_PER_DAY,
        "day" => MS_PER_DAY,
        "hour" => 3_600_000,
        "minute" => 60_000,
        "second" => 1000,
        "millisecond" => 1,
        _ => return None,
    })
}

fn start_of_week(cx: &Ctx, d: &Document) -> Result<i64> {
    match d.get("startOfWeek") {
        None => Ok(0),
        Some(e) => match cx.eval(e)? {
            Some(Bson::String(s)) => {
                let l = s.to_ascii_lowercase();
                ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
                    .iter()
                    .position(|p| l.starts_with(p))
                    .map(|p| p as i64)
                    .ok_or_else(|| EngineError::bad_value(format!("unknown startOfWeek: {s}")))
            }
            _ => Ok(0),
        },
    }
}

fn date_trunc(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let d = spec("$dateTrunc", arg)?;
    let v = cx.eval(d.get("date").unwrap_or(&Bson::Null))?;
    let Some(ms) = date_millis("$dateTrunc", &v)? else { return Ok(Some(Bson::Null)) };
    let Some(unit) = unit_arg(cx, d, "$dateTrunc")? else { return Ok(Some(Bson::Null)) };
    let Some(tz) = eval_tz(cx, d.get("timezone"))? else { return Ok(Some(Bson::Null)) };
    let Some(bin) = int_field(cx, d, "binSize", 1)? else { return Ok(Some(Bson::Null)) };
    if bin <= 0 {
        return Err(EngineError::bad_value("$dateTrunc requires 'binSize' to be greater than 0"));
    }
    let local = tz.to_local(ms);
    // Bins are counted from 2000-01-01, MongoDB's reference point.
    let reference = days_from_civil(2000, 1, 1) * MS_PER_DAY;
    let truncated = match unit.as_str() {
        "year" | "quarter" | "month" => {
            let p = parts(local);
            let per = bin.saturating_mul(match unit.as_str() { "year" => 12, "quarter" => 3, _ => 1 });
            let months = (p.year - 2000) * 12 + (p.month - 1);
            let start = months.div_euclid(per) * per;
            days_from_civil(2000 + start.div_euclid(12), start.rem_euclid(12) + 1, 1) * MS_PER_DAY
        }
        "week" => {
            let sow = start_of_week(cx, d)?;
            let ref_days = days_from_civil(2000, 1, 1);
            let ref_start = ref_days + (sow - (ref_days + 4).rem_euclid(7)).rem_euclid(7);
            let days = local.div_euclid(MS_PER_DAY);
            let span = bin.saturating_mul(7);
            (ref_start + (days - ref_start).div_euclid(span) * span) * MS_PER_DAY
        }
        other => {
            let size = fixed_unit_ms(other).unwrap_or(1).saturating_mul(bin);
            reference.saturating_add(local.saturating_sub(reference).div_euclid(size).saturating_mul(size))
        }
    };
    Ok(Some(Bson::DateTime(DateTime::from_millis(tz.to_utc(truncated)))))
}

fn add_months(local: i64, months: i64) -> i64 {
    let p = parts(local);
    let total = p.year * 12 + (p.month - 1) + months;
    let (y, m) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    let day = p.day.min(days_in_month(y, m));
    days_from_civil(y, m, day).saturating_mul(MS_PER_DAY).saturating_add(local.rem_euclid(MS_PER_DAY))
}

fn date_add(cx: &Ctx, arg: &Bson, sign: i64) -> Result<Value> {
    let op = if sign > 0 { "$dateAdd" } else { "$dateSubtract" };
    let d = spec(op, arg)?;
    let v = cx.eval(d.get("startDate").unwrap_or(&Bson::Null))?;
    let Some(ms) = date_millis(op, &v)? else { return Ok(Some(Bson::Null)) };
    let Some(unit) = unit_arg(cx, d, op)? else { return Ok(Some(Bson::Null)) };
    let Some(amount) = int_field(cx, d, "amount", 0)? else { return Ok(Some(Bson::Null)) };
    let Some(tz) = eval_tz(cx, d.get("timezone"))? else { return Ok(Some(Bson::Null)) };
    if amount.unsigned_abs() > 1 << 40 {
        return Err(EngineError::location(5976500, format!("invalid {op} 'amount' parameter value: {amount}")));
    }
    let amount = amount * sign;
    let result = match unit.as_str() {
        // Calendar units move the local wall clock, so DST changes are absorbed.
        "year" => tz.to_utc(add_months(tz.to_local(ms), amount * 12)),
        "quarter" => tz.to_utc(add_months(tz.to_local(ms), amount * 3)),
        "month" => tz.to_utc(add_months(tz.to_local(ms), amount)),
        "week" | "day" if matches!(tz, Tz::Named(_)) => {
            let step = fixed_unit_ms(&unit).unwrap_or(MS_PER_DAY);
            tz.to_utc(tz.to_local(ms).saturating_add(amount.saturating_mul(step)))
        }
        other => ms.saturating_add(amount.saturating_mul(fixed_unit_ms(other).unwrap_or(1))),
    };
    Ok(Some(Bson::DateTime(DateTime::from_millis(result))))
}

fn date_diff(cx: &Ctx, arg: &Bson) -> Result<Value> {
    let d = spec("$dateDiff", arg)?;
    let a = cx.eval(d.get("startDate").unwrap_or(&Bson::Null))?;
    let b = cx.eval(d.get("endDate").unwrap_or(&Bson::Null))?;
    let (Some(start), Some(end)) = (date_millis("$dateDiff", &a)?, date_millis("$dateDiff", &b)?) else {
        return Ok(Some(Bson::Null));
    };
    let Some(unit) = unit_arg(cx, d, "$dateDiff")? else { return Ok(Some(Bson::Null)) };
    let Some(tz) = eval_tz(cx, d.get("timezone"))? else { return Ok(Some(Bson::Null)) };
    let (ls, le) = (tz.to_local(start), tz.to_local(end));
    let (ps, pe) = (parts(ls), parts(le));
    // Counts unit boundaries crossed, not elapsed whole units, as MongoDB does.
    let diff = match unit.as_str() {
        "year" => pe.year - ps.year,
        "quarter" => (pe.year * 4 + (pe.month - 1) / 3) - (ps.year * 4 + (ps.month - 1) / 3),
        "month" => (pe.year * 12 + pe.month) - (ps.year * 12 + ps.month),
        "week" => {
            let sow = start_of_week(cx, d)?;
            let week_start = |days: i64| days - ((days + 4).rem_euclid(7) - sow).rem_euclid(7);
            (week_start(pe.days) - week_start(ps.days)) / 7
        }
        "day" => pe.days - ps.days,
        other => {
            let size = fixed_unit_ms(other).unwrap_or(1);
            le.div_euclid(size) - ls.div_euclid(size)
        }
    };
    Ok(Some(Bson::Int64(diff)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 1, 10_957, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn named_timezones() {
        let paris = parse_tz("Europe/Paris").unwrap();
        let winter = parse_date("2021-01-15T12:00:00Z").unwrap();
        let summer = parse_date("2021-07-15T12:00:00Z").unwrap();
        assert_eq!(paris.offset_at(winter), 3_600_000);
        assert_eq!(paris.offset_at(summer), 7_200_000);
        assert_eq!(paris.to_utc(paris.to_local(summer)), summer);
        assert!(parse_tz("Mars/Olympus").is_err());
        assert_eq!(parse_offset("-08:00").unwrap(), -8 * 3_600_000);
    }

    #[test]
    fn iso_parse_and_format() {
        let ms = parse_date("2021-03-04T05:06:07.089Z").unwrap();
        assert_eq!(format_iso(ms), "2021-03-04T05:06:07.089Z");
        assert_eq!(parse_date("2021-03-04T05:06:07+01:00").map(format_iso).unwrap(), "2021-03-04T04:06:07.000Z");
        assert!(parse_date("2021-02-30").is_none());
    }
}
