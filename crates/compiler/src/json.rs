//! Canonical JSON text of a plan: keys in plan order (order matters for
//! `$sort`), two-space indentation. Used by golden tests and for debugging.
use bson::{Bson, Document};

pub fn to_canonical_json(doc: &Document) -> String {
    let mut out = String::new();
    write_doc(&mut out, doc, 0);
    out.push('\n');
    out
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push_str("  ");
    }
}

fn write_doc(out: &mut String, d: &Document, level: usize) {
    if d.is_empty() {
        out.push_str("{}");
        return;
    }
    if level > 0 {
        let mut line = String::new();
        compact(&Bson::Document(d.clone()), &mut line);
        if line.len() + level * 2 <= COMPACT_WIDTH {
            out.push_str(&line);
            return;
        }
    }
    out.push_str("{\n");
    let n = d.len();
    for (i, (k, v)) in d.iter().enumerate() {
        indent(out, level + 1);
        write_str(out, k);
        out.push_str(": ");
        write_value(out, v, level + 1);
        if i + 1 < n {
            out.push(',');
        }
        out.push('\n');
    }
    indent(out, level);
    out.push('}');
}

/// Single-line rendering, used when it is short enough to stay readable.
fn compact(v: &Bson, out: &mut String) {
    match v {
        Bson::Document(d) => {
            out.push('{');
            for (i, (k, x)) in d.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, k);
                out.push_str(": ");
                compact(x, out);
            }
            out.push('}');
        }
        Bson::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                compact(x, out);
            }
            out.push(']');
        }
        other => write_value(out, other, 0),
    }
}

const COMPACT_WIDTH: usize = 72;

fn write_value(out: &mut String, v: &Bson, level: usize) {
    if matches!(v, Bson::Document(_) | Bson::Array(_)) {
        let mut line = String::new();
        compact(v, &mut line);
        if line.len() + level * 2 <= COMPACT_WIDTH {
            out.push_str(&line);
            return;
        }
    }
    match v {
        Bson::Document(d) => write_doc(out, d, level),
        Bson::Array(a) => {
            out.push_str("[\n");
            for (i, x) in a.iter().enumerate() {
                indent(out, level + 1);
                write_value(out, x, level + 1);
                if i + 1 < a.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            indent(out, level);
            out.push(']');
        }
        Bson::String(s) => write_str(out, s),
        Bson::Int32(i) => out.push_str(&i.to_string()),
        Bson::Int64(i) => out.push_str(&i.to_string()),
        Bson::Double(f) => {
            if f.is_finite() {
                let s = format!("{f:?}");
                out.push_str(&s);
            } else {
                write_str(out, &f.to_string());
            }
        }
        Bson::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Bson::Null => out.push_str("null"),
        other => write_str(out, &other.to_string()),
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}
