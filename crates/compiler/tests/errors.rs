//! Error reporting: parse errors carry positions in the caller's SQL;
//! unsupported constructs are named and quoted.
use djongo_sql::{compile, CompileError};

fn unsupported(sql: &str) -> (String, String) {
    match compile(sql) {
        Err(CompileError::Unsupported { construct, fragment }) => (construct, fragment),
        other => panic!("expected Unsupported for {sql}, got {other:?}"),
    }
}

#[test]
fn parse_error_has_line_and_column() {
    match compile("SELECT \"a\"\nFROM \"t\"\nWHERE \"a\" = = %s") {
        Err(CompileError::Parse { line, column, message }) => {
            assert_eq!(line, 3, "{message}");
            assert_eq!(column, 13, "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn parse_error_position_accounts_for_placeholders() {
    // Eleven `%s` become `$1`..`$11`: the rewritten text is longer; the
    // reported column must still point into the original.
    let sql = "SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM \"t\" WHERE )";
    match compile(sql) {
        Err(CompileError::Parse { line, column, .. }) => {
            assert_eq!(line, 1);
            assert_eq!(column as usize, sql.find(')').map(|p| p + 1).unwrap_or(0));
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn empty_statement_is_a_parse_error() {
    assert!(matches!(compile("  "), Err(CompileError::Parse { .. })));
}

#[test]
fn unsupported_names_the_construct_and_quotes_sql() {
    let (c, f) = unsupported("SELECT SUM(\"t\".\"a\") OVER (ORDER BY \"t\".\"id\", \"t\".\"b\" RANGE BETWEEN 2 PRECEDING AND CURRENT ROW) FROM \"t\"");
    assert!(c.contains("RANGE window frame"), "{c}");
    assert!(f.contains("Offset"), "{f}");
    let (c, _) = unsupported("SELECT \"a\".\"id\" FROM \"a\" RIGHT OUTER JOIN \"b\" ON (\"a\".\"id\" = \"b\".\"a_id\")");
    assert_eq!(c, "RIGHT OUTER JOIN");
    let (c, _) = unsupported("WITH x AS (SELECT 1) SELECT 1");
    assert!(c.contains("WITH"), "{c}");
    let (c, _) = unsupported("SELECT 1; SELECT 2");
    assert!(c.contains("multiple statements"), "{c}");
    let (c, _) = unsupported("SELECT * FROM \"t\" INNER JOIN \"u\" ON (\"t\".\"u_id\" = \"u\".\"id\")");
    assert!(c.contains("SELECT *"), "{c}");
    let (c, _) = unsupported("SELECT \"t\".\"a\" FROM \"t\" WHERE \"t\".\"a\" SIMILAR TO 'x'");
    assert!(c.contains("SimilarTo"), "{c}");
}

#[test]
fn error_messages_are_readable() {
    let e = compile("SELECT \"a\" FROM \"t\" FULL OUTER JOIN \"u\" ON (\"t\".\"a\" = \"u\".\"a\")").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.starts_with("unsupported SQL construct: FULL OUTER JOIN in `"), "{e}");
}

#[test]
fn index_on_a_non_deterministic_expression_is_refused() {
    let (c, _) = unsupported("CREATE INDEX \"r\" ON \"t\" ((RANDOM()))");
    assert!(c.contains("non-deterministic"), "{c}");
    let (c, _) = unsupported("CREATE INDEX \"s\" ON \"t\" ((\"a\" + (SELECT MAX(\"b\") FROM \"u\")))");
    assert!(c.contains("subquery"), "{c}");
}

#[test]
fn a_named_window_is_still_refused_beside_frame_exclusions() {
    let (c, _) = unsupported("SELECT SUM(\"a\") OVER (w ORDER BY \"a\" ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM \"t\"");
    assert!(c.contains("named window"), "{c}");
    let (c, _) = unsupported("SELECT SUM(\"a\") OVER (__djongo_frame_exclude_current_row) FROM \"t\"");
    assert!(c.contains("named window"), "{c}");
    let (c, _) = unsupported("SELECT RANK() OVER (ORDER BY \"a\" ROWS BETWEEN 1 PRECEDING AND CURRENT ROW EXCLUDE TIES) FROM \"t\"");
    assert!(c.contains("EXCLUDE"), "{c}");
}
