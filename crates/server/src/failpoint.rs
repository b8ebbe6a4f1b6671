//! Fail points: faults a test asks the server to produce on purpose, so
//! that drivers' retry and transaction logic can be checked (`configureFailPoint`,
//! served only with `--enable-test-commands`, as mongod serves it only with
//! `enableTestCommands`).
//!
//! The two fail points drivers' specification tests use:
//!
//! - `failCommand`: chosen commands (`failCommands`, optionally only for one
//!   `appName` or `namespace`) stall (`blockConnection`, `blockTimeMS`),
//!   have their connection closed without a reply (`closeConnection`), fail
//!   with `errorCode` (and exactly the `errorLabels` given, when given), or
//!   run and then report `writeConcernError`.
//! - `onPrimaryTransactionalWrite`: a retryable write (one with a session
//!   and a `txnNumber`, outside a transaction) has its connection closed
//!   after it commits and before the reply (`closeConnection`, default
//!   true), or fails before committing (`failBeforeCommitExceptionCode`).
//!   It is consulted once per insert command and once per update or delete
//!   statement that writes, as mongod does; here a command's statements
//!   commit together, so failing one discards the whole command.
//!
//! - `failGetMoreAfterCursorCheckout`: a getMore (optionally only for one
//!   `appName` or `namespace`) fails with `errorCode` (InternalError by
//!   default) once it has found its cursor, which is then gone.
//!
//! Each fail point has a mode: `"off"`, `"alwaysOn"`, `{times: n}` (the next
//! n activations, then off), `{skip: n}` (pass the next n, then always on) or
//! `{activationProbability: p}`. Only an activation whose conditions hold
//! counts.
use crate::error::{CmdResult, CommandError};
use bson::{Bson, Document};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;

pub const FAIL_COMMAND: &str = "failCommand";
pub const ON_PRIMARY_TRANSACTIONAL_WRITE: &str = "onPrimaryTransactionalWrite";
pub const FAIL_GET_MORE: &str = "failGetMoreAfterCursorCheckout";
const KNOWN: &[&str] = &[FAIL_COMMAND, ON_PRIMARY_TRANSACTIONAL_WRITE, FAIL_GET_MORE];

/// mongod's message for a command failed by `failCommand`.
pub const FAIL_COMMAND_MESSAGE: &str = "Failing command via 'failCommand' failpoint";

#[derive(Debug, Clone, PartialEq)]
enum Mode {
    Off,
    AlwaysOn,
    Times(i64),
    Skip(i64),
    Probability(f64),
}

impl Mode {
    fn parse(mode: &Bson) -> CmdResult<Mode> {
        let bad = || CommandError::bad_value("'mode' must be one of 'off', 'alwaysOn', 'times', 'skip' or 'activationProbability'");
        match mode {
            Bson::String(s) if s == "off" => Ok(Mode::Off),
            Bson::String(s) if s == "alwaysOn" => Ok(Mode::AlwaysOn),
            Bson::Document(d) if d.len() == 1 => {
                let (key, value) = d.iter().next().ok_or_else(bad)?;
                let number = match value {
                    Bson::Int32(n) => f64::from(*n),
                    Bson::Int64(n) => *n as f64,
                    Bson::Double(f) => *f,
                    _ => return Err(CommandError::type_mismatch(format!("'{key}' must be a number"))),
                };
                match key.as_str() {
                    "times" | "skip" if number < 0.0 || number.fract() != 0.0 => {
                        Err(CommandError::bad_value(format!("'{key}' must be a non-negative integer")))
                    }
                    "times" => Ok(Mode::Times(number as i64)),
                    "skip" => Ok(Mode::Skip(number as i64)),
                    "activationProbability" if (0.0..=1.0).contains(&number) => Ok(Mode::Probability(number)),
                    "activationProbability" => Err(CommandError::bad_value("activationProbability must be between 0.0 and 1.0")),
                    _ => Err(bad()),
                }
            }
            _ => Err(bad()),
        }
    }
}

#[derive(Debug)]
struct FailPoint {
    mode: Mode,
    data: Document,
    /// How many times it has activated since it was last configured.
    entered: i64,
}

impl FailPoint {
    /// Whether this activation fires; consumes it when it does (or, for
    /// `skip`, when it is skipped).
    fn fire(&mut self) -> bool {
        let fires = match &mut self.mode {
            Mode::Off => false,
            Mode::AlwaysOn => true,
            Mode::Times(n) if *n <= 0 => {
                self.mode = Mode::Off;
                false
            }
            Mode::Times(n) => {
                *n -= 1;
                if *n == 0 {
                    self.mode = Mode::Off;
                }
                true
            }
            Mode::Skip(n) if *n > 0 => {
                *n -= 1;
                false
            }
            Mode::Skip(_) => true,
            Mode::Probability(p) => rand::random::<f64>() < *p,
        };
        if fires {
            self.entered += 1;
        }
        fires
    }
}

/// The server's fail points, all off until configured.
#[derive(Default)]
pub struct FailPoints {
    points: Mutex<HashMap<String, FailPoint>>,
}

impl FailPoints {
    /// `configureFailPoint`: sets `name`'s mode and data; returns how many
    /// times it had activated before.
    pub fn configure(&self, name: &str, mode: &Bson, data: Document) -> CmdResult<i64> {
        if !KNOWN.contains(&name) {
            return Err(CommandError::new(266, "FailPointSetFailed", format!("{name} not found")));
        }
        let mode = Mode::parse(mode)?;
        let mut points = self.points.lock();
        let before = points.get(name).map_or(0, |p| p.entered);
        points.insert(name.to_string(), FailPoint { mode, data, entered: 0 });
        Ok(before)
    }

    /// The data of `name` if it is on, its conditions (`applies`) hold for
    /// this activation, and its mode lets it fire.
    pub fn fire(&self, name: &str, applies: impl FnOnce(&Document) -> bool) -> Option<Document> {
        let mut points = self.points.lock();
        let point = points.get_mut(name)?;
        if point.mode == Mode::Off || !applies(&point.data) {
            return None;
        }
        point.fire().then(|| point.data.clone())
    }
}

/// What a `failCommand` activation is checked against.
pub struct CommandSite<'a> {
    /// The command's name as sent.
    pub name: &'a str,
    /// `db.collection`, or `db.$cmd` for a command without a collection.
    pub namespace: String,
    /// The `appName` the client gave in its handshake.
    pub app_name: Option<&'a str>,
    /// mongod's name for the connection's thread (`conn<id>`).
    pub thread_name: String,
}

/// Spellings of one command; a `failCommands` entry names any of them.
const ALIASES: &[&[&str]] = &[&["findAndModify", "findandmodify"], &["hello", "isMaster", "ismaster"], &["buildInfo", "buildinfo"], &["dropIndexes", "deleteIndexes"]];

fn same_command(listed: &str, name: &str) -> bool {
    listed == name || ALIASES.iter().any(|group| group.contains(&listed) && group.contains(&name))
}

/// mongod's `shouldActivateFailCommandFailPoint`.
fn applies_to(data: &Document, site: &CommandSite<'_>) -> bool {
    if site.name == "configureFailPoint" {
        return false;
    }
    let string = |key: &str| match data.get(key) {
        Some(Bson::String(s)) => Some(s.as_str()),
        _ => None,
    };
    if data.contains_key("threadName") && string("threadName") != Some(site.thread_name.as_str()) {
        return false;
    }
    if data.contains_key("appName") && string("appName") != Some(site.app_name.unwrap_or("")) {
        return false;
    }
    if data.contains_key("namespace") && string("namespace") != Some(site.namespace.as_str()) {
        return false;
    }
    if data.contains_key("failAllCommands") {
        return true;
    }
    match data.get("failCommands") {
        Some(Bson::Array(names)) => names.iter().any(|n| matches!(n, Bson::String(s) if same_command(s, site.name))),
        _ => false,
    }
}

fn flag(data: &Document, key: &str) -> bool {
    matches!(data.get(key), Some(Bson::Boolean(true)))
}

fn integer(v: Option<&Bson>) -> Option<i64> {
    match v? {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(f) if f.fract() == 0.0 => Some(*f as i64),
        _ => None,
    }
}

/// `errorLabels` of a fail point's data: they replace the labels the server
/// would have given.
pub fn error_labels(data: &Document) -> Option<Vec<String>> {
    match data.get("errorLabels") {
        Some(Bson::Array(items)) => Some(items.iter().filter_map(|l| l.as_str().map(str::to_string)).collect()),
        _ => None,
    }
}

/// What `failCommand` does to a command before it runs.
#[derive(Debug, Default, PartialEq)]
pub struct CommandFault {
    /// Stall this long first.
    pub block: Option<Duration>,
    /// Close the connection without replying.
    pub close_connection: bool,
    /// Fail with this code (after blocking, unless the connection closes).
    pub error_code: Option<i32>,
    /// The error's labels, replacing the server's own.
    pub error_labels: Option<Vec<String>>,
}

impl FailPoints {
    /// Consults `failCommand` for a command about to run.
    pub fn command_fault(&self, site: &CommandSite<'_>) -> CmdResult<Option<CommandFault>> {
        let Some(data) = self.fire(FAIL_COMMAND, |data| {
            applies_to(data, site) && (flag(data, "closeConnection") || flag(data, "blockConnection") || integer(data.get("errorCode")).is_some())
        }) else {
            return Ok(None);
        };
        let block = if flag(&data, "blockConnection") {
            let ms = integer(data.get("blockTimeMS"))
                .ok_or_else(|| CommandError::new(72, "InvalidOptions", "must specify 'blockTimeMS' when 'blockConnection' is true"))?;
            if ms < 0 {
                return Err(CommandError::new(72, "InvalidOptions", "'blockTimeMS' must be non-negative"));
            }
            Some(Duration::from_millis(ms as u64))
        } else {
            None
        };
        Ok(Some(CommandFault {
            block,
            close_connection: flag(&data, "closeConnection"),
            error_code: integer(data.get("errorCode")).and_then(|c| i32::try_from(c).ok()),
            error_labels: error_labels(&data),
        }))
    }

    /// Consults `failCommand` for a command that has run and takes a write
    /// concern: the `writeConcernError` to report, and the labels replacing
    /// the server's own if any were given.
    pub fn write_concern_fault(&self, site: &CommandSite<'_>) -> Option<(Document, Option<Vec<String>>)> {
        let data = self.fire(FAIL_COMMAND, |data| applies_to(data, site) && matches!(data.get("writeConcernError"), Some(Bson::Document(_))))?;
        match data.get("writeConcernError") {
            Some(Bson::Document(wce)) => Some((wce.clone(), error_labels(&data))),
            _ => None,
        }
    }

    /// Consults `failGetMoreAfterCursorCheckout` for a getMore that has found
    /// its cursor: the code to fail it with.
    pub fn get_more_fault(&self, site: &CommandSite<'_>) -> Option<i32> {
        let data = self.fire(FAIL_GET_MORE, |data| {
            let mut as_fail_command = data.clone();
            as_fail_command.insert("failCommands", vec![Bson::String("getMore".into())]);
            applies_to(&as_fail_command, site)
        })?;
        Some(integer(data.get("errorCode")).and_then(|c| i32::try_from(c).ok()).unwrap_or(1))
    }

    /// Consults `onPrimaryTransactionalWrite` for a retryable write about to
    /// commit.
    pub fn transactional_write_fault(&self) -> Option<TransactionalWriteFault> {
        let data = self.fire(ON_PRIMARY_TRANSACTIONAL_WRITE, |_| true)?;
        Some(TransactionalWriteFault {
            close_connection: !matches!(data.get("closeConnection"), Some(Bson::Boolean(false))),
            fail_before_commit: integer(data.get("failBeforeCommitExceptionCode")).and_then(|c| i32::try_from(c).ok()),
        })
    }
}

/// What `onPrimaryTransactionalWrite` does to a retryable write.
#[derive(Debug, PartialEq)]
pub struct TransactionalWriteFault {
    pub close_connection: bool,
    pub fail_before_commit: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn site<'a>(name: &'a str, app: Option<&'a str>) -> CommandSite<'a> {
        CommandSite { name, namespace: "db.coll".into(), app_name: app, thread_name: "conn1".into() }
    }

    #[test]
    fn times_then_off_and_skip_then_on() {
        let points = FailPoints::default();
        let data = doc! {"failCommands": ["insert"], "errorCode": 91};
        points.configure(FAIL_COMMAND, &Bson::Document(doc! {"times": 2}), data.clone()).unwrap();
        let fault = |name| points.command_fault(&site(name, None)).unwrap().map(|f| f.error_code);
        assert_eq!(fault("find"), None, "another command neither fires nor counts");
        assert_eq!(fault("insert"), Some(Some(91)));
        assert_eq!(fault("insert"), Some(Some(91)));
        assert_eq!(fault("insert"), None);
        assert_eq!(points.configure(FAIL_COMMAND, &Bson::Document(doc! {"skip": 1}), data).unwrap(), 2);
        assert_eq!(fault("insert"), None);
        assert_eq!(fault("insert"), Some(Some(91)));
        assert_eq!(fault("insert"), Some(Some(91)));
        points.configure(FAIL_COMMAND, &Bson::String("off".into()), doc! {}).unwrap();
        assert_eq!(fault("insert"), None);
    }

    #[test]
    fn conditions_and_aliases() {
        let points = FailPoints::default();
        let data = doc! {"failCommands": ["findAndModify", "configureFailPoint"], "closeConnection": true, "appName": "a", "errorLabels": ["X"]};
        points.configure(FAIL_COMMAND, &Bson::String("alwaysOn".into()), data).unwrap();
        assert_eq!(points.command_fault(&site("findandmodify", None)).unwrap(), None, "another app");
        let fault = points.command_fault(&site("findandmodify", Some("a"))).unwrap().unwrap();
        assert!(fault.close_connection);
        assert_eq!(fault.error_labels, Some(vec!["X".to_string()]));
        assert_eq!(points.command_fault(&site("configureFailPoint", Some("a"))).unwrap(), None, "never fails itself");
    }

    #[test]
    fn write_concern_errors_and_transactional_writes() {
        let points = FailPoints::default();
        let data = doc! {"failCommands": ["insert"], "writeConcernError": {"code": 91, "errmsg": "x"}};
        points.configure(FAIL_COMMAND, &Bson::Document(doc! {"times": 1}), data).unwrap();
        assert_eq!(points.command_fault(&site("insert", None)).unwrap(), None, "only after the command ran");
        assert_eq!(points.write_concern_fault(&site("insert", None)).map(|(w, _)| w), Some(doc! {"code": 91, "errmsg": "x"}));
        assert!(points.write_concern_fault(&site("insert", None)).is_none());
        points.configure(ON_PRIMARY_TRANSACTIONAL_WRITE, &Bson::String("alwaysOn".into()), doc! {"failBeforeCommitExceptionCode": 1}).unwrap();
        assert_eq!(points.transactional_write_fault(), Some(TransactionalWriteFault { close_connection: true, fail_before_commit: Some(1) }));
    }

    #[test]
    fn bad_configurations() {
        let points = FailPoints::default();
        assert_eq!(points.configure("nope", &Bson::String("off".into()), doc! {}).unwrap_err().code, 266);
        assert_eq!(points.configure(FAIL_COMMAND, &Bson::String("sometimes".into()), doc! {}).unwrap_err().code, 2);
        assert_eq!(points.configure(FAIL_COMMAND, &Bson::Document(doc! {"times": -1}), doc! {}).unwrap_err().code, 2);
        points.configure(FAIL_COMMAND, &Bson::String("alwaysOn".into()), doc! {"failCommands": ["ping"], "blockConnection": true}).unwrap();
        assert_eq!(points.command_fault(&site("ping", None)).unwrap_err().code, 72);
    }
}
