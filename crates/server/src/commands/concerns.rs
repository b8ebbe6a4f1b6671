//! `readConcern`, `writeConcern`, `$readPreference` and `maxTimeMS` arguments: checked the way
//! mongod parses them, with its error codes and messages, including the
//! rules for statements of a multi-document transaction. A one-node replica
//! set satisfies every valid concern, so beyond the checks they change
//! nothing.
use crate::error::{CmdResult, CommandError};
use bson::{Bson, Document};

/// Read concern levels (`repl::ReadConcernLevel`).
const READ_LEVELS: &[&str] = &["local", "majority", "linearizable", "available", "snapshot"];
/// Levels a transaction may run at.
const TRANSACTION_READ_LEVELS: &[&str] = &["local", "majority", "snapshot"];
/// `repl::ReplSetConfig::kMaxMembers`.
const MAX_MEMBERS: i64 = 50;

fn invalid_options(message: impl Into<String>) -> CommandError {
    CommandError::new(72, "InvalidOptions", message)
}

fn type_name(v: &Bson) -> &'static str {
    djongo_engine::types::type_name(v)
}

/// The command's `readConcern`, checked; `None` when absent or empty.
pub fn read_concern(body: &Document) -> CmdResult<Option<&Document>> {
    let rc = match body.get("readConcern") {
        None => return Ok(None),
        Some(Bson::Document(d)) => d,
        Some(_) => return Err(CommandError::failed_to_parse("readConcern field should be an object")),
    };
    for (field, value) in rc {
        match field.as_str() {
            "level" => {
                let Bson::String(level) = value else {
                    return Err(CommandError::type_mismatch(format!(
                        "\"level\" had the wrong type. Expected string, found {}",
                        type_name(value)
                    )));
                };
                if !READ_LEVELS.contains(&level.as_str()) {
                    return Err(CommandError::failed_to_parse(
                        "readConcern.level must be either 'local', 'majority', 'linearizable', 'available', or 'snapshot'",
                    ));
                }
            }
            "afterClusterTime" | "atClusterTime" => {
                if !matches!(value, Bson::Timestamp(_)) {
                    return Err(CommandError::type_mismatch(format!(
                        "\"{field}\" had the wrong type. Expected timestamp, found {}",
                        type_name(value)
                    )));
                }
            }
            "afterOpTime" | "provenance" | "$_allowTransactionTableSnapshot" => {}
            other => return Err(invalid_options(format!("Unrecognized option in readConcern: {other}"))),
        }
    }
    Ok((!rc.is_empty()).then_some(rc))
}

/// Checks the `readConcern` of the command that starts a transaction.
pub fn check_transaction_read_concern(rc: &Document) -> CmdResult<()> {
    if let Some(Bson::String(level)) = rc.get("level") {
        if !TRANSACTION_READ_LEVELS.contains(&level.as_str()) {
            return Err(invalid_options(
                "The readConcern level must be either 'local' (default), 'majority' or 'snapshot' in order to run in a transaction",
            ));
        }
    }
    if rc.contains_key("afterOpTime") {
        return Err(invalid_options("The readConcern cannot specify 'afterOpTime' in a transaction"));
    }
    Ok(())
}

/// The command's `writeConcern`, checked; `None` when absent or empty (the
/// default).
pub fn write_concern(body: &Document) -> CmdResult<Option<&Document>> {
    let wc = match body.get("writeConcern") {
        None => return Ok(None),
        Some(Bson::Document(d)) => d,
        Some(other) => {
            return Err(CommandError::type_mismatch(format!(
                "\"writeConcern\" had the wrong type. Expected object, found {}",
                type_name(other)
            )))
        }
    };
    let safe_bool = |field: &str, v: &Bson| -> CmdResult<bool> {
        match v {
            Bson::Boolean(b) => Ok(*b),
            Bson::Int32(n) => Ok(*n != 0),
            Bson::Int64(n) => Ok(*n != 0),
            Bson::Double(n) => Ok(*n != 0.0),
            Bson::Decimal128(_) => Ok(true),
            other => Err(CommandError::type_mismatch(format!(
                "BSON field 'writeConcern.{field}' is the wrong type '{}', expected types '[bool, long, int, decimal, double]'",
                type_name(other)
            ))),
        }
    };
    let (mut j, mut fsync) = (false, false);
    for (field, value) in wc {
        match field.as_str() {
            "w" => check_w(value)?,
            "j" => j = safe_bool("j", value)?,
            "fsync" => fsync = safe_bool("fsync", value)?,
            "wtimeout" => {
                let too_big = match value {
                    Bson::Int64(n) => *n > i64::from(i32::MAX),
                    Bson::Double(f) => *f > f64::from(i32::MAX),
                    _ => false,
                };
                if too_big {
                    return Err(CommandError::failed_to_parse("wtimeout must be a 32-bit integer"));
                }
            }
            "wElectionId" | "wOpTime" | "getLastError" | "provenance" => {}
            other => {
                return Err(CommandError::new(40415, "Location40415", format!("BSON field 'writeConcern.{other}' is an unknown field.")))
            }
        }
    }
    if j && fsync {
        return Err(CommandError::failed_to_parse("fsync and j options cannot be used together"));
    }
    Ok((!wc.is_empty()).then_some(wc))
}

/// Whether an autocommit write waits for the disk before it is
/// acknowledged: unless its `writeConcern` says `j: false` (and no `fsync`),
/// as MongoDB acknowledges such a write once applied in memory. Call after
/// `write_concern` accepted the command's concern.
pub fn journaled(body: &Document) -> bool {
    let Ok(wc) = body.get_document("writeConcern") else { return true };
    let falsy = |key: &str| match wc.get(key) {
        Some(Bson::Boolean(b)) => !b,
        Some(Bson::Int32(n)) => *n == 0,
        Some(Bson::Int64(n)) => *n == 0,
        Some(Bson::Double(n)) => *n == 0.0,
        _ => false,
    };
    let truthy = |key: &str| wc.get(key).is_some() && !falsy(key);
    !falsy("j") || truthy("fsync")
}

fn check_w(w: &Bson) -> CmdResult<()> {
    let number = match w {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(f) if f.is_nan() => return Err(CommandError::failed_to_parse("w cannot be NaN")),
        Bson::Double(f) => Some(*f as i64),
        Bson::Decimal128(_) => None,
        Bson::String(s) if s.contains('\0') => {
            return Err(CommandError::failed_to_parse(format!("w has illegal embedded NUL byte, w: {s}")))
        }
        Bson::String(_) | Bson::Null | Bson::Undefined => None,
        Bson::Document(tags) => {
            if tags.is_empty() {
                return Err(CommandError::failed_to_parse("tagged write concern requires tags"));
            }
            if let Some((k, v)) = tags.iter().find(|(_, v)| !matches!(v, Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_))) {
                return Err(CommandError::failed_to_parse(format!(
                    "tags must be a single level document with only number values; found: {k}: {v}"
                )));
            }
            None
        }
        other => {
            return Err(CommandError::failed_to_parse(format!(
                "w has to be a number, string, or object; found: {}",
                type_name(other)
            )))
        }
    };
    match number {
        Some(n) if !(0..=MAX_MEMBERS).contains(&n) => Err(CommandError::failed_to_parse(format!(
            "w has to be a non-negative number and not greater than {MAX_MEMBERS}; found: {n}"
        ))),
        _ => Ok(()),
    }
}

/// Read preference modes (`ReadPreference_serializer`).
const READ_PREFERENCE_MODES: &[&str] = &["primary", "primaryPreferred", "secondary", "secondaryPreferred", "nearest"];
/// `ReadPreferenceSetting::kMinimalMaxStalenessValue`, in seconds.
const MIN_MAX_STALENESS_SECONDS: i64 = 90;

/// The command's `$readPreference`, checked as mongod parses it
/// (`ReadPreferenceSetting::fromInnerBSON`). The one node is the primary,
/// which serves every mode, so a valid preference changes nothing.
pub fn read_preference(body: &Document) -> CmdResult<()> {
    let pref = match body.get("$readPreference") {
        None => return Ok(()),
        Some(Bson::Document(d)) => d,
        Some(other) => {
            return Err(CommandError::type_mismatch(format!(
                "$readPreference has incorrect type: expected object but got {}",
                type_name(other)
            )))
        }
    };
    let mode = match pref.get("mode") {
        None => return Err(CommandError::new(4, "NoSuchKey", "Missing expected field \"mode\"")),
        Some(Bson::String(mode)) => mode.as_str(),
        Some(other) => {
            return Err(CommandError::type_mismatch(format!(
                "\"mode\" had the wrong type. Expected string, found {}",
                type_name(other)
            )))
        }
    };
    if !READ_PREFERENCE_MODES.contains(&mode) {
        return Err(CommandError::bad_value(format!(
            "Could not parse $readPreference mode '{mode}'. Only the modes 'primary', 'primaryPreferred', 'secondary', \
             'secondaryPreferred', and 'nearest' are supported. :: caused by :: Enumeration value '{mode}' for field 'mode' is not a valid value."
        )));
    }
    let primary = mode == "primary";
    if let Some(hedge) = pref.get("hedge") {
        let Bson::Document(hedge) = hedge else {
            return Err(CommandError::type_mismatch(format!("hedge field must be of type object if provided; found {}", type_name(hedge))));
        };
        let mut enabled = true;
        for (field, value) in hedge {
            match (field.as_str(), value) {
                ("enabled", Bson::Boolean(b)) => enabled = *b,
                ("enabled", other) => {
                    return Err(CommandError::type_mismatch(format!(
                        "BSON field 'hedge.enabled' is the wrong type '{}', expected type 'bool'",
                        type_name(other)
                    )))
                }
                (other, _) => return Err(CommandError::new(40415, "Location40415", format!("BSON field 'hedge.{other}' is an unknown field."))),
            }
        }
        if enabled && primary {
            return Err(invalid_options("cannot enable hedging for $readPreference mode \"primaryOnly\""));
        }
    }
    match pref.get("tags") {
        None => {}
        Some(Bson::Array(tags)) => {
            // `[]` and `[{}]` are the defaults; any other tag set needs a mode
            // that may read from a secondary.
            let default = tags.is_empty() || (tags.len() == 1 && matches!(&tags[0], Bson::Document(d) if d.is_empty()));
            if primary && !default {
                return Err(CommandError::bad_value("Only empty tags are allowed with primary read preference"));
            }
        }
        Some(other) => {
            return Err(CommandError::type_mismatch(format!("\"tags\" had the wrong type. Expected array, found {}", type_name(other))))
        }
    }
    let staleness = match pref.get("maxStalenessSeconds") {
        None => 0,
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Double(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => *f as i64,
        Some(Bson::Double(f)) => {
            return Err(CommandError::bad_value(format!(
                "Expected field \"maxStalenessSeconds\" to have a value exactly representable as a 64-bit integer, but found {f}"
            )))
        }
        Some(other) => {
            return Err(CommandError::type_mismatch(format!(
                "Expected field \"maxStalenessSeconds\" to have numeric type, but found {}",
                type_name(other)
            )))
        }
    };
    if staleness < 0 {
        return Err(CommandError::bad_value("maxStalenessSeconds must be a non-negative integer"));
    }
    if staleness > 0 && staleness < MIN_MAX_STALENESS_SECONDS {
        return Err(CommandError::new(160, "MaxStalenessOutOfRange", format!("maxStalenessSeconds value can not be less than {MIN_MAX_STALENESS_SECONDS}")));
    }
    if staleness > 0 && primary {
        return Err(CommandError::bad_value("maxStalenessSeconds can not be set for the primary mode"));
    }
    Ok(())
}

/// The command's `maxTimeMS` in milliseconds (0 or absent: no limit). On
/// `commitTransaction` it is how drivers send `maxCommitTimeMS`.
pub fn max_time_ms(body: &Document, command: &str) -> CmdResult<Option<u64>> {
    let value = match body.get("maxTimeMS") {
        None => return Ok(None),
        Some(v) => v,
    };
    let number = match value {
        Bson::Int32(n) => f64::from(*n),
        Bson::Int64(n) => *n as f64,
        Bson::Double(f) => *f,
        Bson::Decimal128(d) => d.to_string().parse::<f64>().unwrap_or(f64::NAN),
        Bson::Null | Bson::Undefined => return Err(CommandError::bad_value("maxTimeMS must be a number")),
        other => {
            return Err(CommandError::type_mismatch(format!(
                "BSON field '{command}.maxTimeMS' is the wrong type '{}', expected types '[long, int, decimal, double]'",
                type_name(other)
            )))
        }
    };
    if number.fract() != 0.0 || number.is_nan() {
        return Err(CommandError::bad_value("maxTimeMS has non-integral value"));
    }
    if !(0.0..=f64::from(i32::MAX)).contains(&number) {
        return Err(CommandError::bad_value(format!("{} value for maxTimeMS is out of range", number as i64)));
    }
    Ok((number > 0.0).then_some(number as u64))
}

/// The rules for a statement inside a transaction (not commit or abort):
/// only the first may carry a `readConcern`, and none a `writeConcern`.
pub fn check_statement(body: &Document, starts_transaction: bool) -> CmdResult<()> {
    if write_concern(body)?.is_some() {
        return Err(invalid_options("writeConcern is not allowed within a multi-statement transaction"));
    }
    match read_concern(body)? {
        Some(_) if !starts_transaction => Err(invalid_options("Only the first command in a transaction may specify a readConcern")),
        Some(rc) => check_transaction_read_concern(rc),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, Timestamp};

    fn code<T: std::fmt::Debug>(r: CmdResult<T>) -> i32 {
        r.unwrap_err().code
    }

    #[test]
    fn read_concern_errors_are_mongods() {
        assert_eq!(code(read_concern(&doc! {"readConcern": "local"})), 9);
        assert_eq!(code(read_concern(&doc! {"readConcern": {"level": 1}})), 14);
        assert_eq!(code(read_concern(&doc! {"readConcern": {"level": "strong"}})), 9);
        assert_eq!(code(read_concern(&doc! {"readConcern": {"level": "local", "x": 1}})), 72);
        assert_eq!(code(read_concern(&doc! {"readConcern": {"afterClusterTime": 5}})), 14);
        let ts = Timestamp { time: 1, increment: 1 };
        assert!(read_concern(&doc! {"readConcern": {"level": "majority", "afterClusterTime": ts}}).unwrap().is_some());
        assert!(read_concern(&doc! {"readConcern": {}}).unwrap().is_none());
        assert_eq!(code(check_transaction_read_concern(&doc! {"level": "linearizable"})), 72);
        check_transaction_read_concern(&doc! {"level": "snapshot"}).unwrap();
    }

    #[test]
    fn write_concern_errors_are_mongods() {
        assert_eq!(code(write_concern(&doc! {"writeConcern": 1})), 14);
        assert_eq!(code(write_concern(&doc! {"writeConcern": {"w": true}})), 9);
        assert_eq!(code(write_concern(&doc! {"writeConcern": {"w": -1}})), 9);
        assert_eq!(code(write_concern(&doc! {"writeConcern": {"w": 51}})), 9);
        assert_eq!(code(write_concern(&doc! {"writeConcern": {"w": 1, "bogus": 1}})), 40415);
        assert_eq!(code(write_concern(&doc! {"writeConcern": {"j": "yes"}})), 14);
        assert_eq!(code(write_concern(&doc! {"writeConcern": {"j": true, "fsync": true}})), 9);
        assert_eq!(code(write_concern(&doc! {"writeConcern": {"wtimeout": 3_000_000_000i64}})), 9);
        assert!(write_concern(&doc! {"writeConcern": {"w": "majority", "j": true, "wtimeout": 100}}).unwrap().is_some());
        assert!(write_concern(&doc! {"writeConcern": {}}).unwrap().is_none());
    }

    #[test]
    fn read_preference_errors_are_mongods() {
        let rp = |pref: Bson| read_preference(&doc! {"find": "c", "$readPreference": pref});
        assert_eq!(code(rp(Bson::String("primary".into()))), 14);
        assert_eq!(code(rp(Bson::Document(doc! {}))), 4);
        assert_eq!(code(rp(Bson::Document(doc! {"mode": 1}))), 14);
        assert_eq!(code(rp(Bson::Document(doc! {"mode": "secondaryOnly"}))), 2);
        assert_eq!(code(rp(Bson::Document(doc! {"mode": "primary", "tags": [{"dc": "ny"}]}))), 2);
        assert_eq!(code(rp(Bson::Document(doc! {"mode": "nearest", "tags": {"dc": "ny"}}))), 14);
        assert_eq!(code(rp(Bson::Document(doc! {"mode": "secondary", "maxStalenessSeconds": 10}))), 160);
        assert_eq!(code(rp(Bson::Document(doc! {"mode": "secondary", "maxStalenessSeconds": -1}))), 2);
        assert_eq!(code(rp(Bson::Document(doc! {"mode": "secondary", "maxStalenessSeconds": "90"}))), 14);
        assert_eq!(code(rp(Bson::Document(doc! {"mode": "primary", "maxStalenessSeconds": 90}))), 2);
        assert_eq!(code(rp(Bson::Document(doc! {"mode": "primary", "hedge": {}}))), 72);
        assert_eq!(code(rp(Bson::Document(doc! {"mode": "nearest", "hedge": {"x": 1}}))), 40415);
        for ok in [
            doc! {"mode": "primary"},
            doc! {"mode": "primary", "tags": [{}]},
            doc! {"mode": "primary", "hedge": {"enabled": false}},
            doc! {"mode": "secondaryPreferred", "tags": [{"dc": "ny"}, {}], "maxStalenessSeconds": 90},
            doc! {"mode": "nearest", "hedge": {"enabled": true}},
        ] {
            rp(Bson::Document(ok)).unwrap();
        }
        read_preference(&doc! {"find": "c"}).unwrap();
    }

    #[test]
    fn max_time_ms_errors_are_mongods() {
        assert_eq!(code(max_time_ms(&doc! {"maxTimeMS": "10"}, "commitTransaction")), 14);
        assert_eq!(code(max_time_ms(&doc! {"maxTimeMS": Bson::Null}, "commitTransaction")), 2);
        assert_eq!(code(max_time_ms(&doc! {"maxTimeMS": -1}, "commitTransaction")), 2);
        assert_eq!(code(max_time_ms(&doc! {"maxTimeMS": 1.5}, "commitTransaction")), 2);
        assert_eq!(code(max_time_ms(&doc! {"maxTimeMS": 2_147_483_648i64}, "commitTransaction")), 2);
        assert_eq!(max_time_ms(&doc! {"maxTimeMS": 250}, "commitTransaction").unwrap(), Some(250));
        assert_eq!(max_time_ms(&doc! {"maxTimeMS": 0}, "commitTransaction").unwrap(), None);
    }

    #[test]
    fn statements_inside_a_transaction() {
        assert_eq!(code(check_statement(&doc! {"insert": "c", "writeConcern": {"w": 1}}, false)), 72);
        assert_eq!(code(check_statement(&doc! {"find": "c", "readConcern": {"level": "local"}}, false)), 72);
        check_statement(&doc! {"find": "c", "readConcern": {"level": "snapshot"}}, true).unwrap();
        check_statement(&doc! {"find": "c", "readConcern": {}}, false).unwrap();
        assert_eq!(code(check_statement(&doc! {"find": "c", "readConcern": {"level": "available"}}, true)), 72);
    }

    #[test]
    fn only_an_explicit_j_false_skips_the_journal() {
        assert!(journaled(&doc! {"insert": "t"}));
        assert!(journaled(&doc! {"insert": "t", "writeConcern": {"w": 1}}));
        assert!(journaled(&doc! {"insert": "t", "writeConcern": {"j": true}}));
        assert!(!journaled(&doc! {"insert": "t", "writeConcern": {"j": false}}));
        assert!(!journaled(&doc! {"insert": "t", "writeConcern": {"w": 1, "j": 0}}));
        // fsync asks for the disk whatever j says.
        assert!(journaled(&doc! {"insert": "t", "writeConcern": {"j": false, "fsync": true}}));
    }
}
