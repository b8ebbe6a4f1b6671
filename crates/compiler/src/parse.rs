//! SQL text → sqlparser AST, for exactly one statement.
//!
//! `GenericDialect` is the one that accepts everything Django writes through
//! our backend: double-quoted identifiers, `ILIKE`, Postgres regex operators
//! (`~`, `~*`), `||`, `$N` placeholders and SQLite's `AUTOINCREMENT`.
use sqlparser::ast::Statement;
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Tokenizer;

use crate::error::{CompileError, Result};
use crate::limits;
use crate::placeholders::Rewritten;

pub fn parse(original: &str, rewritten: &Rewritten) -> Result<Statement> {
    let dialect = GenericDialect {};
    // Tokenized once: the tokens are checked for depth (crate::limits)
    // before the parser builds a tree from them.
    let mut tokens = Tokenizer::new(&dialect, &rewritten.sql)
        .tokenize_with_location()
        .map_err(|e| parse_error(original, rewritten, e.into()))?;
    limits::check_depth(&tokens)?;
    crate::frame_exclusion::mark(&mut tokens);
    // Deeper recursive nesting is a parse error, not a stack overflow.
    let statements = Parser::new(&dialect)
        .with_recursion_limit(limits::MAX_PARSE_RECURSION)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(|e| parse_error(original, rewritten, e))?;
    let mut it = statements.into_iter();
    match (it.next(), it.next()) {
        (Some(stmt), None) => Ok(stmt),
        (None, _) => Err(CompileError::Parse {
            message: "empty statement".into(),
            line: 1,
            column: 1,
        }),
        (Some(_), Some(second)) => Err(CompileError::unsupported(
            "multiple statements in one call",
            second,
        )),
    }
}

fn parse_error(original: &str, rewritten: &Rewritten, e: ParserError) -> CompileError {
    let raw = match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => "expression nesting is too deep".to_string(),
    };
    // sqlparser appends " at Line: L, Column: C" to its messages.
    let (message, line, column) = match raw.rfind(" at Line: ") {
        Some(pos) => {
            let tail = &raw[pos + " at Line: ".len()..];
            let mut nums = tail
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .filter_map(|s| s.parse::<u64>().ok());
            let line = nums.next().unwrap_or(1);
            let column = nums.next().unwrap_or(1);
            (raw[..pos].to_string(), line, column)
        }
        None => (raw, 1, 1),
    };
    let (line, column) = rewritten.original_position(original, line, column);
    let message = message
        .trim_start_matches("sql parser error: ")
        .to_string();
    CompileError::Parse {
        message,
        line,
        column,
    }
}
