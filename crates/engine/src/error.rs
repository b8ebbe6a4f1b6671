use thiserror::Error;

/// An error the engine reports to a client, carrying MongoDB's numeric code
/// and code name so drivers map it the way they would a real server's.
#[derive(Debug, Clone, Error)]
#[error("{message}")]
pub struct EngineError {
    pub code: i32,
    pub code_name: &'static str,
    pub message: String,
}

impl EngineError {
    pub fn new(code: i32, code_name: &'static str, message: impl Into<String>) -> Self {
        Self { code, code_name, message: message.into() }
    }
    /// A malformed query, update or pipeline (MongoDB code 2).
    pub fn bad_value(message: impl Into<String>) -> Self {
        Self::new(2, "BadValue", message)
    }
    /// A stage, operator or expression the engine does not implement.
    pub fn unsupported(what: impl Into<String>) -> Self {
        Self::new(115, "CommandNotSupported", format!("not supported by the embedded engine: {}", what.into()))
    }
    pub fn type_mismatch(message: impl Into<String>) -> Self {
        Self::new(14, "TypeMismatch", message)
    }
}

pub type Result<T> = std::result::Result<T, EngineError>;
