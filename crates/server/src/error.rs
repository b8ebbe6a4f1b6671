//! Errors: `ServerError` for the embedding API (startup and I/O), and
//! `CommandError` for what a client sees in a `{ok: 0}` reply.
use bson::{doc, Bson, Document};
use djongo_engine::EngineError;
use std::borrow::Cow;
use std::path::PathBuf;
use thiserror::Error;

/// Failures of starting or running the server as a whole.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error("cannot open data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("the database file {path} is already in use by another process")]
    InUse { path: PathBuf },
    #[error("cannot open database file {path}: {source}")]
    Open { path: PathBuf, source: redb::DatabaseError },
    #[error("cannot initialise database file {path}: {message}")]
    Init { path: PathBuf, message: String },
    #[error("cannot listen on {address}: {source}")]
    Bind { address: String, source: std::io::Error },
    #[error("cannot start server thread: {0}")]
    Thread(std::io::Error),
}

/// A MongoDB error reply: code, code name, message and error labels
/// (`TransientTransactionError` makes drivers retry a transaction).
#[derive(Debug, Clone, Error)]
#[error("{code_name} ({code}): {message}")]
pub struct CommandError {
    pub code: i32,
    pub code_name: Cow<'static, str>,
    pub message: String,
    pub labels: Vec<Cow<'static, str>>,
    /// Extra fields copied into the error reply (e.g. keyPattern/keyValue);
    /// boxed to keep `Result<_, CommandError>` small.
    pub extra: Box<Document>,
    /// Ends the whole command even where a statement's error would only be
    /// reported in `writeErrors` (a fail point failing a write before it
    /// commits).
    pub aborts: bool,
}

pub type CmdResult<T> = std::result::Result<T, CommandError>;

impl CommandError {
    pub const WRITE_CONFLICT: i32 = 112;

    pub fn new(code: i32, code_name: &'static str, message: impl Into<String>) -> Self {
        CommandError { code, code_name: Cow::Borrowed(code_name), message: message.into(), labels: Vec::new(), extra: Box::default(), aborts: false }
    }
    /// An error with any code, named as MongoDB names it (`code_name`).
    pub fn with_code(code: i32, message: impl Into<String>) -> Self {
        CommandError { code, code_name: code_name(code), message: message.into(), labels: Vec::new(), extra: Box::default(), aborts: false }
    }
    pub fn bad_value(message: impl Into<String>) -> Self {
        Self::new(2, "BadValue", message)
    }
    pub fn type_mismatch(message: impl Into<String>) -> Self {
        Self::new(14, "TypeMismatch", message)
    }
    pub fn failed_to_parse(message: impl Into<String>) -> Self {
        Self::new(9, "FailedToParse", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(1, "InternalError", message)
    }
    pub fn namespace_not_found(message: impl Into<String>) -> Self {
        Self::new(26, "NamespaceNotFound", message)
    }
    pub fn invalid_namespace(message: impl Into<String>) -> Self {
        Self::new(73, "InvalidNamespace", message)
    }
    pub fn no_such_transaction(message: impl Into<String>) -> Self {
        Self::new(251, "NoSuchTransaction", message).with_label("TransientTransactionError")
    }
    pub fn write_conflict(message: impl Into<String>) -> Self {
        Self::new(Self::WRITE_CONFLICT, "WriteConflict", message)
    }

    /// Whether the error ends the whole command rather than being reported
    /// for one statement in `writeErrors`: storage failures, and write
    /// conflicts (which abort a transaction, or make an autocommit write
    /// wait and run again).
    pub fn aborts_command(&self) -> bool {
        self.aborts || self.code == 1 || self.code == Self::WRITE_CONFLICT
    }
    pub fn with_label(mut self, label: &'static str) -> Self {
        if !self.labels.iter().any(|l| l == label) {
            self.labels.push(Cow::Borrowed(label));
        }
        self
    }

    /// The `{ok: 0, ...}` reply document drivers turn into exceptions.
    pub fn to_reply(&self) -> Document {
        let mut reply = doc! {
            "ok": 0.0,
            "errmsg": self.message.clone(),
            "code": self.code,
            "codeName": self.code_name.as_ref(),
        };
        for (k, v) in self.extra.iter() {
            reply.insert(k.clone(), v.clone());
        }
        if !self.labels.is_empty() {
            let labels: Vec<Bson> = self.labels.iter().map(|l| Bson::String(l.to_string())).collect();
            reply.insert("errorLabels", labels);
        }
        reply
    }
}

impl From<EngineError> for CommandError {
    fn from(e: EngineError) -> Self {
        CommandError::new(e.code, e.code_name, e.message)
    }
}

/// MongoDB's name for an error code (`error_codes.yml`), for errors made
/// from a bare code (a fail point's `errorCode`): the codes drivers act on
/// and those this server raises; any other is `Location<code>`, as mongod
/// names codes it does not know.
pub fn code_name(code: i32) -> Cow<'static, str> {
    Cow::Borrowed(match code {
        1 => "InternalError",
        2 => "BadValue",
        6 => "HostUnreachable",
        7 => "HostNotFound",
        8 => "UnknownError",
        9 => "FailedToParse",
        11 => "UserNotFound",
        13 => "Unauthorized",
        14 => "TypeMismatch",
        18 => "AuthenticationFailed",
        20 => "IllegalOperation",
        24 => "LockTimeout",
        26 => "NamespaceNotFound",
        27 => "IndexNotFound",
        43 => "CursorNotFound",
        48 => "NamespaceExists",
        50 => "MaxTimeMSExpired",
        51 => "ManualInterventionRequired",
        59 => "CommandNotFound",
        64 => "WriteConcernFailed",
        67 => "CannotCreateIndex",
        72 => "InvalidOptions",
        73 => "InvalidNamespace",
        79 => "UnknownReplWriteConcern",
        85 => "IndexOptionsConflict",
        86 => "IndexKeySpecsConflict",
        89 => "NetworkTimeout",
        91 => "ShutdownInProgress",
        100 => "UnsatisfiableWriteConcern",
        112 => "WriteConflict",
        115 => "CommandNotSupported",
        121 => "DocumentValidationFailure",
        133 => "FailedToSatisfyReadPreference",
        134 => "ReadConcernMajorityNotAvailableYet",
        166 => "CommandNotSupportedOnView",
        189 => "PrimarySteppedDown",
        225 => "TransactionTooOld",
        239 => "SnapshotTooOld",
        246 => "SnapshotUnavailable",
        251 => "NoSuchTransaction",
        256 => "TransactionCommitted",
        262 => "ExceededTimeLimit",
        263 => "OperationNotSupportedInTransaction",
        267 => "PreparedTransactionInProgress",
        9001 => "SocketException",
        10107 => "NotWritablePrimary",
        11000 => "DuplicateKey",
        11600 => "InterruptedAtShutdown",
        11601 => "Interrupted",
        11602 => "InterruptedDueToReplStateChange",
        13435 => "NotPrimaryNoSecondaryOk",
        13436 => "NotPrimaryOrSecondary",
        50915 => "BackupCursorOpenConflictWithCheckpoint",
        _ => return Cow::Owned(format!("Location{code}")),
    })
}

/// Storage failures are not the client's fault; they surface as
/// InternalError with the underlying message so they can be diagnosed.
macro_rules! storage_error {
    ($($t:ty),*) => {$(
        impl From<$t> for CommandError {
            fn from(e: $t) -> Self {
                CommandError::internal(format!("storage error: {e}"))
            }
        }
    )*};
}
storage_error!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    bson::error::Error
);
