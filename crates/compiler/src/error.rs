//! The two ways a statement can fail to compile. Both carry enough context for
//! the Python side to raise a useful `ProgrammingError` / `NotSupportedError`.
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CompileError {
    /// The text is not SQL we can parse. `line`/`column` are 1-based and refer
    /// to the statement as the caller wrote it (before placeholder rewriting).
    #[error("SQL parse error at line {line}, column {column}: {message}")]
    Parse {
        message: String,
        line: u64,
        column: u64,
    },
    /// Valid SQL using a construct the compiler does not translate. We refuse
    /// rather than emit a plan with different semantics.
    #[error("unsupported SQL construct: {construct} in `{fragment}`")]
    Unsupported { construct: String, fragment: String },
}

/// Longest SQL fragment quoted in an error message; enough to locate it.
const MAX_FRAGMENT: usize = 200;

impl CompileError {
    pub fn unsupported(construct: impl Into<String>, fragment: impl std::fmt::Display) -> Self {
        let mut fragment = fragment.to_string();
        if fragment.len() > MAX_FRAGMENT {
            let mut cut = MAX_FRAGMENT;
            while !fragment.is_char_boundary(cut) {
                cut -= 1;
            }
            fragment.truncate(cut);
            fragment.push_str("...");
        }
        CompileError::Unsupported {
            construct: construct.into(),
            fragment,
        }
    }
}

pub type Result<T> = std::result::Result<T, CompileError>;
