//! A multi-row INSERT whose rows are all one list of markers, as Django's
//! `bulk_create()` writes it (`INSERT INTO t (a, b) VALUES (%s, %s), (%s, %s), ...`),
//! compiled from its first row.
//!
//! Parsing such a statement costs about 40 µs per row (34–52 ms for 1,000
//! rows of 6 columns), as much again as the insert itself, and Django sends
//! one SQL text per distinct number of objects, so every new size was
//! parsed in full. The rows differ only in which parameters they take:
//! row `r` of `k` markers takes parameters `r·k .. r·k + k`. So the
//! statement is compiled with its first row alone, and the plan's `rows`
//! repeat that row with its slots moved along; the plan is the one the whole
//! text compiles to. Anything else (a row holding a literal, `DEFAULT` or an
//! expression, a marker after the rows, quotes in doubt) is compiled as
//! written, and so is a text whose shortened form fails to compile (its
//! error then names positions of the caller's text).
use bson::{Bson, Document};

/// The text cut to its first row, the number of rows and of markers per row,
/// when `sql` is such an INSERT of at least two rows.
fn shorten(sql: &str) -> Option<(String, usize, usize)> {
    if !sql.get(..12).is_some_and(|head| head.eq_ignore_ascii_case("INSERT INTO ")) {
        return None;
    }
    let at = sql.find(" VALUES (")?;
    let prefix = &sql[..at + " VALUES ".len()];
    // Not inside a quoted identifier, and no literal or marker before the rows.
    if !prefix.matches('"').count().is_multiple_of(2) || prefix.contains(['\'', '`', '%', '?', '$']) {
        return None;
    }
    let rest = &sql[prefix.len()..];
    let close = rest.find(')')?;
    let row = &rest[..=close];
    let markers = row[1..close].split(", ").count();
    if row[1..close].split(", ").any(|m| m != "%s") {
        return None;
    }
    let mut rows = 1;
    let mut tail = &rest[row.len()..];
    while let Some(next) = tail.strip_prefix(", ").and_then(|t| t.strip_prefix(row)) {
        rows += 1;
        tail = next;
    }
    // What follows the rows (RETURNING, ON CONFLICT) may take no parameter.
    if rows < 2 || tail.starts_with(',') || tail.contains(['%', '?', '$']) {
        return None;
    }
    Some((format!("{prefix}{row}{tail}"), rows, markers))
}

/// `compile_one` of the first row, its `rows` repeated; None when the
/// statement is not of that form or the first row's plan is not one row
/// of plain slots (the caller compiles the whole text).
pub(crate) fn compile(sql: &str, compile_one: impl FnOnce(&str) -> Option<Document>) -> Option<Document> {
    let (short, rows, markers) = shorten(sql)?;
    let mut plan = compile_one(&short)?;
    let Some(Bson::Array(first)) = plan.get("rows") else { return None };
    let [Bson::Array(template)] = first.as_slice() else { return None };
    let slots: Vec<usize> = template.iter().map(slot).collect::<Option<_>>()?;
    if slots.len() != markers || plan.get("subqueries").is_some() {
        return None;
    }
    let all: Vec<Bson> = (0..rows)
        .map(|r| Bson::Array(slots.iter().map(|&i| Bson::Document(bson::doc! {"$param": (r * markers + i) as i64})).collect()))
        .collect();
    plan.insert("rows", all);
    plan.insert("params", (rows * markers) as i64);
    Some(plan)
}

/// The parameter a plain slot `{$param: i}` takes.
fn slot(cell: &Bson) -> Option<usize> {
    let Bson::Document(d) = cell else { return None };
    match (d.len(), d.get("$param")) {
        (1, Some(Bson::Int64(i))) => usize::try_from(*i).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(n: usize, row: &str) -> String {
        vec![row; n].join(", ")
    }

    #[test]
    fn only_rows_of_markers_alone_are_shortened() {
        let sql = format!("INSERT INTO \"t\" (\"a\", \"b\") VALUES {} RETURNING \"t\".\"id\"", rows_of(3, "(%s, %s)"));
        assert_eq!(shorten(&sql), Some(("INSERT INTO \"t\" (\"a\", \"b\") VALUES (%s, %s) RETURNING \"t\".\"id\"".to_string(), 3, 2)));
        for sql in [
            "INSERT INTO \"t\" (\"a\") VALUES (%s)".to_string(),
            format!("INSERT INTO \"t\" (\"a\") VALUES {}, (DEFAULT)", rows_of(2, "(%s)")),
            format!("INSERT INTO \"t\" (\"a\", \"b\") VALUES {}", rows_of(2, "(%s, 1)")),
            format!("INSERT INTO \"t\" (\"a\") VALUES {} ON CONFLICT DO UPDATE SET \"a\" = %s", rows_of(2, "(%s)")),
            format!("INSERT INTO \"t VALUES (\" (\"a\") VALUES {}", rows_of(2, "(%s)")),
            format!("SELECT 1 VALUES {}", rows_of(2, "(%s)")),
        ] {
            assert_eq!(shorten(&sql), None, "{sql}");
        }
    }

    #[test]
    fn the_plan_is_the_one_the_whole_text_compiles_to() {
        for (n, on_conflict) in [(2, ""), (7, " ON CONFLICT DO NOTHING"), (300, " RETURNING \"t\".\"id\"")] {
            let sql = format!("INSERT INTO \"t\" (\"a\", \"b\", \"c\") VALUES {}{on_conflict}", rows_of(n, "(%s, %s, %s)"));
            let whole = crate::compile_written(&sql).unwrap();
            let shortened = compile(&sql, |short| crate::compile_written(short).ok()).expect("shortened");
            assert_eq!(shortened, whole, "{sql}");
        }
    }
}
