//! Golden tests: each `tests/golden/*.test` file holds one SQL statement
//! (after a `-- sql` line) and its expected plan as canonical JSON (after a
//! `-- plan` line). `UPDATE_GOLDEN=1 cargo test -p djongo-sql --test golden`
//! rewrites the expected part from the current compiler output.
use std::fs;
use std::path::Path;

use bson::doc;
use djongo_sql::{compile, to_canonical_json, CompileError};

fn render(sql: &str) -> String {
    match compile(sql) {
        Ok(plan) => to_canonical_json(&plan),
        Err(e) => {
            let kind = match &e {
                CompileError::Parse { .. } => "parse",
                CompileError::Unsupported { .. } => "unsupported",
                CompileError::Invalid { .. } => "invalid",
                CompileError::InvalidValue { .. } => "invalid_value",
            };
            to_canonical_json(&doc! { "error": kind, "message": e.to_string() })
        }
    }
}

#[test]
fn golden() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut entries: Vec<_> = fs::read_dir(&dir).expect("golden dir").filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "test")).collect();
    entries.sort();
    assert!(!entries.is_empty(), "no golden files");
    let mut failures = Vec::new();
    for path in &entries {
        let text = fs::read_to_string(path).expect("read golden file");
        let (sql_part, expected) = match text.split_once("\n-- plan\n") {
            Some((a, b)) => (a, b.to_string()),
            None => (text.as_str(), String::new()),
        };
        let sql = sql_part.trim_start_matches("-- sql\n").trim_end();
        let actual = render(sql);
        if update {
            fs::write(path, format!("-- sql\n{sql}\n-- plan\n{actual}")).expect("write golden file");
        } else if actual != expected {
            failures.push(format!("{}:\n--- expected\n{expected}--- actual\n{actual}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{} golden mismatches:\n{}", failures.len(), failures.join("\n"));
}
