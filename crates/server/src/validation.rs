//! Document validation: a collection's `validator`, `validationLevel` and
//! `validationAction` options, applied to writes as mongod applies them.
//!
//! - `create` and `collMod` check the options ([`check_options`]) and store
//!   them in the catalog; `listCollections` shows them.
//! - Each write path asks [`Rules::for_collection`] once per statement and
//!   checks every document it is about to store: [`Rules::check_insert`]
//!   for a new document (inserts, upserts, `$out`, `$merge`),
//!   [`Rules::check_update`] for a replaced one (updates, `findAndModify`,
//!   `$merge`).
//! - `validationLevel: "strict"` (the default) checks every write,
//!   `"moderate"` skips updates of documents that already failed the
//!   validator, `"off"` checks nothing. `validationAction: "error"` (the
//!   default) refuses a failing write with DocumentValidationFailure (121)
//!   and mongod's `errInfo`; `"warn"` lets it through and logs mongod's
//!   warning (id 20294) on the server's standard error.
//! - `bypassDocumentValidation: true` on a write command skips all of it.
//!
//! Validators hold inside transactions too: the same write paths run there.
//! What a validator means for one document is the engine's business
//! (`djongo_engine::validate`).
use crate::catalog::CollectionMeta;
use crate::error::{CmdResult, CommandError};
use bson::{doc, Bson, Document};
use djongo_engine::validate::Validator;

/// `validationLevel` values.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Level {
    Off,
    Strict,
    Moderate,
}

/// `validationAction` values.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Error,
    Warn,
}

/// Databases whose collections may not have validators (mongod's internal ones).
const INTERNAL_DATABASES: &[&str] = &["admin", "local", "config"];

fn level(options: &Document) -> CmdResult<Level> {
    match options.get("validationLevel") {
        None => Ok(Level::Strict),
        Some(Bson::String(s)) => match s.as_str() {
            "off" => Ok(Level::Off),
            "strict" => Ok(Level::Strict),
            "moderate" => Ok(Level::Moderate),
            other => Err(CommandError::bad_value(format!("Enumeration value '{other}' for field 'validationLevel' is not a valid value."))),
        },
        Some(_) => Err(CommandError::bad_value("'validationLevel' has to be a string.")),
    }
}

fn action(options: &Document) -> CmdResult<Action> {
    match options.get("validationAction") {
        None => Ok(Action::Error),
        Some(Bson::String(s)) => match s.as_str() {
            "error" => Ok(Action::Error),
            "warn" => Ok(Action::Warn),
            other => Err(CommandError::bad_value(format!("Enumeration value '{other}' for field 'validationAction' is not a valid value."))),
        },
        Some(_) => Err(CommandError::bad_value("'validationAction' has to be a string.")),
    }
}

fn validator_spec(options: &Document) -> CmdResult<Option<&Document>> {
    match options.get("validator") {
        None => Ok(None),
        Some(Bson::Document(d)) if d.is_empty() => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d)),
        Some(_) => Err(CommandError::bad_value("'validator' has to be a document.")),
    }
}

/// Checks the validation options of a `create` (or the options a `collMod`
/// leaves) for collection `db.coll`, and fills in the defaults mongod
/// reports once a validator is set (`validationLevel: "strict"`,
/// `validationAction: "error"`).
pub fn check_options(db: &str, coll: &str, options: &mut Document) -> CmdResult<()> {
    level(options)?;
    action(options)?;
    let Some(spec) = validator_spec(options)? else { return Ok(()) };
    if INTERNAL_DATABASES.contains(&db) {
        return Err(CommandError::new(
            72,
            "InvalidOptions",
            format!("Document validators are not allowed on collection {db}.{coll} in the {db} internal database"),
        ));
    }
    if coll.starts_with("system.") {
        return Err(CommandError::new(72, "InvalidOptions", format!("Document validators not allowed on system collection {db}.{coll}")));
    }
    Validator::parse(spec)?;
    if !options.contains_key("validationLevel") {
        options.insert("validationLevel", "strict");
    }
    if !options.contains_key("validationAction") {
        options.insert("validationAction", "error");
    }
    Ok(())
}

/// Whether a write command asked to skip validation.
pub fn bypass_requested(body: &Document) -> bool {
    crate::catalog::truthy(body.get("bypassDocumentValidation"))
}

/// What one write statement must check of the documents it stores into one
/// collection; nothing when the collection has no validator, its level is
/// `off`, or the command bypasses validation.
pub struct Rules {
    validator: Option<Validator>,
    ns: String,
    level: Level,
    action: Action,
}

impl Rules {
    pub fn for_collection(meta: &CollectionMeta, bypass: bool) -> CmdResult<Rules> {
        let level = level(&meta.options)?;
        let validator = match validator_spec(&meta.options)? {
            Some(spec) if !bypass && level != Level::Off => Some(Validator::parse(spec)?),
            _ => None,
        };
        Ok(Rules { validator, ns: meta.ns(), level, action: action(&meta.options)? })
    }

    /// Checks a document about to be inserted.
    pub fn check_insert(&self, doc: &Document) -> CmdResult<()> {
        match &self.validator {
            None => Ok(()),
            Some(v) => self.enforce(v, doc),
        }
    }

    /// Checks the new version of an updated document. Under `moderate`, an
    /// update of a document that already failed the validator is let through.
    pub fn check_update(&self, old: &Document, new: &Document) -> CmdResult<()> {
        let Some(v) = &self.validator else { return Ok(()) };
        if passes(v, new) {
            return Ok(());
        }
        if self.level == Level::Moderate && !passes(v, old) {
            return Ok(());
        }
        self.fail(v, new)
    }

    fn enforce(&self, v: &Validator, doc: &Document) -> CmdResult<()> {
        if passes(v, doc) {
            Ok(())
        } else {
            self.fail(v, doc)
        }
    }

    fn fail(&self, v: &Validator, doc: &Document) -> CmdResult<()> {
        let info = v.error_info(doc);
        match self.action {
            Action::Warn => {
                warn(&self.ns, doc, &info);
                Ok(())
            }
            Action::Error => {
                let mut e = CommandError::new(121, "DocumentValidationFailure", "Document failed validation");
                e.extra.insert("errInfo", info);
                Err(e)
            }
        }
    }
}

/// A validator that cannot be evaluated on a document (an `$expr` dividing
/// by zero) counts as failed, as in mongod.
fn passes(v: &Validator, doc: &Document) -> bool {
    v.matches(doc).unwrap_or(false)
}

/// mongod's "Document would fail validation" warning (log id 20294), as a
/// line of its structured log.
fn warn(ns: &str, doc: &Document, info: &Document) {
    let line = doc! {
        "t": bson::DateTime::now(),
        "s": "W",
        "c": "STORAGE",
        "id": 20294,
        "msg": "Document would fail validation",
        "attr": {"namespace": ns, "document": doc.clone(), "errInfo": info.clone()},
    };
    eprintln!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::spec::BinarySubtype;

    fn meta(options: Document) -> CollectionMeta {
        CollectionMeta {
            db: "d".into(),
            name: "c".into(),
            id: 1,
            uuid: bson::Binary { subtype: BinarySubtype::Uuid, bytes: vec![0; 16] },
            options,
            indexes: Default::default(),
            next_index_id: 1,
            referenced_by: Default::default(),
            foreign_keys: Default::default(),
        }
    }

    #[test]
    fn options_are_checked_and_completed() {
        let mut o = doc! {"validator": {"a": {"$exists": true}}};
        check_options("d", "c", &mut o).unwrap();
        assert_eq!(o, doc! {"validator": {"a": {"$exists": true}}, "validationLevel": "strict", "validationAction": "error"});
        let code = |mut o: Document, db: &str| check_options(db, "c", &mut o).unwrap_err().code;
        assert_eq!(code(doc! {"validator": 7}, "d"), 2);
        assert_eq!(code(doc! {"validationLevel": "sometimes"}, "d"), 2);
        assert_eq!(code(doc! {"validationAction": 1}, "d"), 2);
        assert_eq!(code(doc! {"validator": {"$where": "1"}}, "d"), 2);
        assert_eq!(code(doc! {"validator": {"a": 1}}, "admin"), 72);
        let mut empty = doc! {"validator": {}};
        check_options("admin", "c", &mut empty).unwrap();
    }

    #[test]
    fn levels_actions_and_bypass() {
        let failing = doc! {"_id": 1, "a": 2};
        let passing = doc! {"_id": 1, "a": 1};
        let strict = Rules::for_collection(&meta(doc! {"validator": {"a": 1}}), false).unwrap();
        let err = strict.check_insert(&failing).unwrap_err();
        assert_eq!((err.code, err.code_name.as_ref()), (121, "DocumentValidationFailure"));
        assert_eq!(err.extra.get_document("errInfo").unwrap().get_i32("failingDocumentId").ok(), Some(1));
        assert!(strict.check_update(&failing, &failing).is_err());
        assert!(strict.check_insert(&passing).is_ok());

        let moderate = Rules::for_collection(&meta(doc! {"validator": {"a": 1}, "validationLevel": "moderate"}), false).unwrap();
        assert!(moderate.check_update(&failing, &doc! {"_id": 1, "a": 3}).is_ok(), "bad to bad");
        assert!(moderate.check_update(&passing, &failing).is_err(), "good to bad");
        assert!(moderate.check_insert(&failing).is_err());

        let off = Rules::for_collection(&meta(doc! {"validator": {"a": 1}, "validationLevel": "off"}), false).unwrap();
        assert!(off.check_insert(&failing).is_ok());
        let warn = Rules::for_collection(&meta(doc! {"validator": {"a": 1}, "validationAction": "warn"}), false).unwrap();
        assert!(warn.check_insert(&failing).is_ok());
        let bypassed = Rules::for_collection(&meta(doc! {"validator": {"a": 1}}), true).unwrap();
        assert!(bypassed.check_insert(&failing).is_ok());
    }

    #[test]
    fn an_expr_that_cannot_be_evaluated_fails() {
        let rules = Rules::for_collection(&meta(doc! {"validator": {"$expr": {"$divide": [10, 0]}}}), false).unwrap();
        let err = rules.check_insert(&doc! {"_id": 1}).unwrap_err();
        let details = err.extra.get_document("errInfo").unwrap().get_document("details").unwrap().clone();
        assert_eq!(details.get_str("reason").ok(), Some("failed to evaluate aggregation expression"));
    }
}
