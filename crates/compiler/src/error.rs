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
    /// The statement refers to something that cannot exist, as PostgreSQL
    /// would refuse it (`ORDER BY 5` with two output columns).
    #[error("{message}")]
    Invalid { message: String },
    /// A constant in the statement is out of its range (`LIMIT -1`): what
    /// PostgreSQL reports as a data exception.
    #[error("{message}")]
    InvalidValue { message: String },
}

/// Longest SQL fragment quoted in an error message; enough to locate it.
const MAX_FRAGMENT: usize = 200;

impl CompileError {
    /// `fragment` is formatted only up to `MAX_FRAGMENT` bytes: formatting
    /// stops there, so quoting a huge statement costs nothing.
    pub fn unsupported(construct: impl Into<String>, fragment: impl std::fmt::Display) -> Self {
        let mut out = Bounded::new(MAX_FRAGMENT);
        let cut = std::fmt::Write::write_fmt(&mut out, format_args!("{fragment}")).is_err();
        let mut fragment = out.into_string();
        if cut {
            fragment.push_str("...");
        }
        CompileError::Unsupported {
            construct: construct.into(),
            fragment,
        }
    }
}

/// A `fmt::Write` that keeps the first `limit` bytes (whole characters)
/// and then fails, which stops the formatting that writes into it.
pub(crate) struct Bounded {
    text: String,
    limit: usize,
}

impl Bounded {
    pub(crate) fn new(limit: usize) -> Bounded {
        Bounded { text: String::new(), limit }
    }

    pub(crate) fn into_string(self) -> String {
        self.text
    }
}

impl std::fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.limit - self.text.len();
        if s.len() <= room {
            self.text.push_str(s);
            return Ok(());
        }
        let mut cut = room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.text.push_str(&s[..cut]);
        Err(std::fmt::Error)
    }
}

pub type Result<T> = std::result::Result<T, CompileError>;
