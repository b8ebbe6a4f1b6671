//! Errors: `ServerError` for the embedding API (startup and I/O), and
//! `CommandError` for what a client sees in a `{ok: 0}` reply.
use bson::{doc, Bson, Document};
use djongo_engine::EngineError;
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
    pub code_name: &'static str,
    pub message: String,
    pub labels: Vec<&'static str>,
    /// Extra fields copied into the error reply (e.g. keyPattern/keyValue);
    /// boxed to keep `Result<_, CommandError>` small.
    pub extra: Box<Document>,
}

pub type CmdResult<T> = std::result::Result<T, CommandError>;

impl CommandError {
    pub const WRITE_CONFLICT: i32 = 112;

    pub fn new(code: i32, code_name: &'static str, message: impl Into<String>) -> Self {
        CommandError { code, code_name, message: message.into(), labels: Vec::new(), extra: Box::default() }
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
        self.code == 1 || self.code == Self::WRITE_CONFLICT
    }
    pub fn with_label(mut self, label: &'static str) -> Self {
        if !self.labels.contains(&label) {
            self.labels.push(label);
        }
        self
    }

    /// The `{ok: 0, ...}` reply document drivers turn into exceptions.
    pub fn to_reply(&self) -> Document {
        let mut reply = doc! {
            "ok": 0.0,
            "errmsg": self.message.clone(),
            "code": self.code,
            "codeName": self.code_name,
        };
        for (k, v) in self.extra.iter() {
            reply.insert(k.clone(), v.clone());
        }
        if !self.labels.is_empty() {
            let labels: Vec<Bson> = self.labels.iter().map(|l| Bson::String((*l).to_string())).collect();
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
