//! `EXCLUDE CURRENT ROW | GROUP | TIES | NO OTHERS` at the end of a window
//! frame (SQL:2011, written by Django's `WindowFrame(exclusion=...)`).
//!
//! sqlparser does not parse frame exclusions, so they are taken out of the
//! token stream before parsing: `OVER (... ROWS ... EXCLUDE CURRENT ROW)`
//! becomes `OVER (<marker> ... ROWS ...)`, where the marker is a window name
//! (the one place of a window spec that carries a word through the parser)
//! that `plan::build` reads back with `from_window_name`. `EXCLUDE NO OTHERS`
//! is the default and is just dropped. Anything else is left for the parser,
//! which reports it.
use sqlparser::tokenizer::{Token, TokenWithSpan, Whitespace};

use crate::plan::Exclusion;

const MARKER: &str = "__djongo_frame_exclude_";

fn marker(e: Exclusion) -> String {
    let what = match e {
        Exclusion::CurrentRow => "current_row",
        Exclusion::Group => "group",
        Exclusion::Ties => "ties",
    };
    format!("{MARKER}{what}")
}

/// The exclusion a window name stands for, if it is a marker.
pub(crate) fn from_window_name(name: &str) -> Option<Exclusion> {
    match name.strip_prefix(MARKER)? {
        "current_row" => Some(Exclusion::CurrentRow),
        "group" => Some(Exclusion::Group),
        "ties" => Some(Exclusion::Ties),
        _ => None,
    }
}

fn is_word(t: &TokenWithSpan, w: &str) -> bool {
    matches!(&t.token, Token::Word(word) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(w))
}

fn is_space(t: &TokenWithSpan) -> bool {
    matches!(t.token, Token::Whitespace(_))
}

/// Index of the next token from `i` that is not whitespace.
fn next_solid(tokens: &[TokenWithSpan], mut i: usize) -> Option<usize> {
    while i < tokens.len() {
        if !is_space(&tokens[i]) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The exclusion spelled from `tokens[i]` (the word after EXCLUDE), and the
/// index of its last token.
fn exclusion_at(tokens: &[TokenWithSpan], i: usize) -> Option<(Option<Exclusion>, usize)> {
    if is_word(&tokens[i], "group") {
        return Some((Some(Exclusion::Group), i));
    }
    if is_word(&tokens[i], "ties") {
        return Some((Some(Exclusion::Ties), i));
    }
    let second = next_solid(tokens, i + 1)?;
    if is_word(&tokens[i], "current") && is_word(&tokens[second], "row") {
        return Some((Some(Exclusion::CurrentRow), second));
    }
    if is_word(&tokens[i], "no") && is_word(&tokens[second], "others") {
        return Some((None, second));
    }
    None
}

/// The `(` that the `)` at `close` closes.
fn opening(tokens: &[TokenWithSpan], close: usize) -> Option<usize> {
    let mut depth = 0usize;
    for i in (0..close).rev() {
        match tokens[i].token {
            Token::RParen => depth += 1,
            Token::LParen if depth == 0 => return Some(i),
            Token::LParen => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Rewrites every `EXCLUDE ...` that ends the spec of an `OVER (...)`.
pub(crate) fn mark(tokens: &mut Vec<TokenWithSpan>) {
    let mut i = 0;
    while i < tokens.len() {
        if !is_word(&tokens[i], "exclude") {
            i += 1;
            continue;
        }
        let found = next_solid(tokens, i + 1).and_then(|j| exclusion_at(tokens, j)).and_then(|(exclusion, last)| {
            let close = next_solid(tokens, last + 1).filter(|&c| tokens[c].token == Token::RParen)?;
            let open = opening(tokens, close)?;
            let over = (0..open).rev().find(|&k| !is_space(&tokens[k]))?;
            is_word(&tokens[over], "over").then_some((exclusion, last, open))
        });
        let Some((exclusion, last, open)) = found else {
            i += 1;
            continue;
        };
        let span = tokens[i].span;
        tokens.drain(i..=last);
        if let Some(e) = exclusion {
            let name = TokenWithSpan { token: Token::make_word(&marker(e), None), span };
            let space = TokenWithSpan { token: Token::Whitespace(Whitespace::Space), span };
            tokens.splice(open + 1..open + 1, [name, space]);
            i += 2;
        }
    }
}
