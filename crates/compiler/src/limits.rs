//! How big and how deep a statement may be, checked before anything is
//! built that could recurse with it.
//!
//! The compiler runs on whatever thread calls it (a Django request thread
//! may have a small stack), and both sqlparser's syntax tree and our own
//! passes are recursive. Three guards keep every recursion bounded:
//! - sqlparser's recursion limit bounds nesting it parses recursively
//!   (parentheses, subqueries, prefix operators): `MAX_PARSE_RECURSION`;
//! - chains it builds in a loop (`a OR b OR ...`, `a + b + ...`,
//!   `q UNION q UNION ...`) become left-leaning trees as deep as they are
//!   long; `check_depth` bounds them on the tokens, before parsing;
//! - the plan builder counts nested queries (`MAX_QUERY_NESTING`) and
//!   expression depth, and flattens AND/OR and set-operation chains.
//!
//! `crate::compile` then runs with at least `STACK_NEEDED` bytes of stack,
//! switching to a stack of its own when the caller's has less left.
//! docs/engine-robustness.md lists each limit with the error it gives.
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::{CompileError, Result};

/// Nesting sqlparser may recurse to (parentheses, subqueries, `NOT NOT ...`).
pub const MAX_PARSE_RECURSION: usize = 64;

/// Queries nested in one another: subqueries, derived tables and the
/// operands of mixed set operations.
pub const MAX_QUERY_NESTING: usize = 32;

/// Queries joined by one chain of UNION / INTERSECT / EXCEPT. MongoDB allows
/// 1000 stages in a pipeline; each query after the first is a `$unionWith`.
pub const MAX_SET_OPERANDS: usize = 900;

/// The bound `check_depth` computes for the syntax tree's depth. A chain of
/// `n` operators counts about `n` (an OR chain of `a = %s` terms about 2 per
/// term), so this admits OR chains of thousands of terms; SQLite stops at
/// an expression depth of 1000.
pub const MAX_DEPTH: usize = 10_000;

/// Stack the compiler may use for a statement within the limits above
/// (measured at about a third of this for the deepest ones, in debug builds).
pub const STACK_NEEDED: usize = 4 << 20;

/// Size of the stack `compile` switches to when the caller has less than
/// `STACK_NEEDED` left.
pub const STACK_ALLOCATED: usize = 16 << 20;

/// What opened a nesting level in the token stream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Opener {
    Root,
    Paren,
    Bracket,
    Case,
}

struct Level {
    opener: Opener,
    /// UNION / INTERSECT / EXCEPT at this level: one left-leaning chain.
    set_operators: usize,
    /// Tokens since the last point where a new, sibling expression starts
    /// (a comma, a clause keyword, a CASE branch).
    run: usize,
}

impl Level {
    fn new(opener: Opener) -> Level {
        Level { opener, set_operators: 0, run: 0 }
    }
}

/// A token that can only be an operand, never an operator: a quoted name,
/// a number, a string, a placeholder, the `.` inside a qualified name.
fn is_leaf(token: &Token) -> bool {
    match token {
        Token::Word(w) => w.quote_style.is_some(),
        Token::Number(..)
        | Token::Placeholder(_)
        | Token::Period
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::TripleSingleQuotedString(_)
        | Token::TripleDoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::SingleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedByteStringLiteral(_)
        | Token::TripleSingleQuotedByteStringLiteral(_)
        | Token::TripleDoubleQuotedByteStringLiteral(_)
        | Token::SingleQuotedRawStringLiteral(_)
        | Token::DoubleQuotedRawStringLiteral(_)
        | Token::TripleSingleQuotedRawStringLiteral(_)
        | Token::TripleDoubleQuotedRawStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::QuoteDelimitedStringLiteral(_)
        | Token::NationalQuoteDelimitedStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_) => true,
        _ => false,
    }
}

/// An upper bound on how deep the syntax tree of `tokens` can be, checked
/// against `MAX_DEPTH` and `MAX_SET_OPERANDS`.
///
/// Every operator-like token counts (each adds at most one level to a
/// chain), every unquoted word too (it may be a keyword operator: AND, IS,
/// COLLATE...), operands do not; the count restarts where a sibling
/// expression begins, and a parenthesis, bracket or CASE opens a level whose
/// depth adds to the enclosing ones.
pub fn check_depth(tokens: &[TokenWithSpan]) -> Result<()> {
    let mut levels = vec![Level::new(Opener::Root)];
    // Sum over the open levels of (set_operators + run + 1), kept up to date.
    let mut depth = 1usize;
    for t in tokens {
        let top = levels.len() - 1;
        match &t.token {
            Token::Whitespace(_) | Token::EOF => continue,
            Token::LParen | Token::LBracket => {
                levels[top].run += 1;
                levels.push(Level::new(if t.token == Token::LParen { Opener::Paren } else { Opener::Bracket }));
                depth += 2;
            }
            Token::RParen | Token::RBracket => {
                let opener = if t.token == Token::RParen { Opener::Paren } else { Opener::Bracket };
                if levels[top].opener == opener {
                    if let Some(l) = levels.pop() {
                        depth -= l.set_operators + l.run + 1;
                    }
                }
            }
            Token::Comma => {
                depth -= levels[top].run;
                levels[top].run = 0;
            }
            Token::Word(w) if w.quote_style.is_none() => match w.keyword {
                Keyword::CASE => {
                    levels[top].run += 1;
                    levels.push(Level::new(Opener::Case));
                    depth += 2;
                }
                Keyword::END if levels[top].opener == Opener::Case => {
                    if let Some(l) = levels.pop() {
                        depth -= l.set_operators + l.run + 1;
                    }
                }
                Keyword::WHEN | Keyword::THEN | Keyword::ELSE if levels[top].opener == Opener::Case => {
                    depth -= levels[top].run;
                    levels[top].run = 0;
                }
                Keyword::SELECT
                | Keyword::FROM
                | Keyword::WHERE
                | Keyword::GROUP
                | Keyword::HAVING
                | Keyword::ORDER
                | Keyword::LIMIT
                | Keyword::OFFSET
                | Keyword::SET
                | Keyword::VALUES
                | Keyword::RETURNING => {
                    depth -= levels[top].run;
                    levels[top].run = 0;
                }
                Keyword::UNION | Keyword::INTERSECT | Keyword::EXCEPT | Keyword::MINUS => {
                    levels[top].set_operators += 1;
                    depth += 1;
                    if levels[top].set_operators >= MAX_SET_OPERANDS {
                        return Err(CompileError::unsupported(
                            format!("more than {MAX_SET_OPERANDS} queries joined by UNION / INTERSECT / EXCEPT"),
                            "UNION/INTERSECT/EXCEPT",
                        ));
                    }
                }
                _ => {
                    levels[top].run += 1;
                    depth += 1;
                }
            },
            token if is_leaf(token) => {}
            _ => {
                levels[top].run += 1;
                depth += 1;
            }
        }
        if depth > MAX_DEPTH {
            return Err(CompileError::unsupported(
                format!("an expression or query nested or chained more than {MAX_DEPTH} levels deep"),
                "...",
            ));
        }
    }
    Ok(())
}

/// Nesting of a plan document. The MongoDB command around it adds a few
/// levels, and MongoDB refuses commands nested more than 200 deep.
pub const MAX_PLAN_DEPTH: usize = 180;

/// Refuses a plan nested deeper than `MAX_PLAN_DEPTH` (counted without
/// recursion), which no MongoDB server would accept as a command.
pub fn check_plan_depth(plan: &bson::Document) -> Result<()> {
    use bson::Bson;
    let mut stack: Vec<Box<dyn Iterator<Item = &Bson>>> = vec![Box::new(plan.values())];
    while let Some(top) = stack.last_mut() {
        match top.next() {
            None => {
                stack.pop();
            }
            Some(Bson::Document(d)) => {
                stack.push(Box::new(d.values()));
            }
            Some(Bson::Array(a)) => {
                stack.push(Box::new(a.iter()));
            }
            Some(_) => {}
        }
        if stack.len() > MAX_PLAN_DEPTH {
            return Err(CompileError::unsupported(
                format!("a statement whose MongoDB command would nest more than {MAX_PLAN_DEPTH} levels deep (MongoDB accepts 200)"),
                "...",
            ));
        }
    }
    Ok(())
}
