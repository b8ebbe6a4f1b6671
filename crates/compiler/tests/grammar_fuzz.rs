//! Grammar-based fuzzing of the compiler: statements generated from a SQL
//! grammar shaped like Django's output (qualified quoted names, `%s`
//! parameters, JOIN/GROUP BY/subqueries/set operations) mixed with hostile
//! parts (names holding quotes, dots, `$`, `%s` or control characters;
//! chains, nesting, IN lists and UNION chains of random length, some far past
//! the limits).
//!
//! Every case compiles on a thread with a 128 KiB stack, so a stack the
//! compiler cannot live with is found too. The properties: no panic and no
//! crash; a plan or a typed error; a plan's nesting stays within
//! `MAX_PLAN_DEPTH`; the parameter count is the number of markers outside
//! quoted text; statements within the limits compile or fail as Unsupported
//! or Parse, and those beyond them fail with an error naming the limit.
//!
//! `cargo test` runs a bounded number of cases (a few seconds). A long run:
//! `DJONGO_FUZZ_CASES=200000 cargo test --release -p djongo-sql --test grammar_fuzz`
//! (docs/engine-robustness.md has the numbers of the last one).
use bson::{Bson, Document};
use djongo_sql::{compile, limits, CompileError};
use proptest::prelude::*;

fn cases(default: u32) -> u32 {
    std::env::var("DJONGO_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn config(default: u32) -> ProptestConfig {
    ProptestConfig { cases: cases(default), max_shrink_iters: 500, ..ProptestConfig::default() }
}

/// A SQL quoted identifier for `name`, quotes doubled.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

// ---- names and values ---------------------------------------------------------

fn hostile_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["id", "name", "blog", "data", "n_comments", "pub_date", "headline"]).prop_map(String::from),
        1 => prop::sample::select(vec![
            "\"x\" IS NULL OR \"x\"", "owner.name", "$ne", "$where", "a\"b", "", ".", "..", "$", "%s", "%%", "?", "$1",
            "x' OR '1'='1", "\\", "--", "/*", "é", "日本", "\u{0}", "\u{7f}", "a\nb", "__djongo_join1", "_id", "c0",
            "\" DESC, \"secret\" ASC, \"x",
        ])
        .prop_map(String::from),
        1 => "\\PC{0,12}",
    ]
}

/// A column reference: Django's `"table"."column"`, sometimes reaching into
/// an embedded document (`"t"."blog"."name"`) by a hostile key.
fn column() -> impl Strategy<Value = String> {
    let table = prop_oneof![8 => Just("\"t\""), 1 => Just("T2"), 1 => Just("U0"), 1 => Just("t")];
    (table, hostile_name(), prop::collection::vec(hostile_name(), 0..3))
        .prop_map(|(table, col, keys)| {
            let mut s = format!("{table}.{}", quoted(&col));
            for k in keys {
                s.push('.');
                s.push_str(&quoted(&k));
            }
            s
        })
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("%s".to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
        1 => "\\PC{0,10}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        1 => prop::sample::select(vec!["NULL", "TRUE", "FALSE", "-1", "0", "''", "'%s'", "$1", "?"]).prop_map(String::from),
    ]
}

// ---- expressions ------------------------------------------------------------------

fn expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![3 => column(), 2 => literal()];
    leaf.prop_recursive(6, 48, 4, |inner| {
        let binop = prop::sample::select(vec![
            "=", "<>", "!=", "<", "<=", ">", ">=", "AND", "OR", "+", "-", "*", "/", "%", "||", "LIKE", "ILIKE", "~", "~*",
        ]);
        prop_oneof![
            (inner.clone(), binop, inner.clone()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.clone().prop_map(|a| format!("NOT ({a})")),
            inner.clone().prop_map(|a| format!("{a} IS NULL")),
            inner.clone().prop_map(|a| format!("{a} IS NOT NULL")),
            (inner.clone(), prop::collection::vec(inner.clone(), 1..5), any::<bool>())
                .prop_map(|(a, l, neg)| format!("{a} {}IN ({})", if neg { "NOT " } else { "" }, l.join(", "))),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(a, b, c)| format!("{a} BETWEEN {b} AND {c}")),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(c, a, b)| format!("CASE WHEN {c} THEN {a} ELSE {b} END")),
            (prop::sample::select(vec!["COUNT", "SUM", "AVG", "MIN", "MAX", "COALESCE", "UPPER", "LOWER", "LENGTH", "ABS", "ROUND", "NOW"]), prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
            inner.clone().prop_map(|a| format!("CAST({a} AS integer)")),
            inner.clone().prop_map(|a| format!("EXTRACT(YEAR FROM {a})")),
            (column(), inner.clone()).prop_map(|(c, w)| format!("EXISTS(SELECT 1 AS \"a\" FROM \"u\" U0 WHERE U0.\"t_id\" = ({c}) AND {w} LIMIT 1)")),
            (column(), inner.clone()).prop_map(|(c, w)| format!("{c} IN (SELECT U0.\"id\" FROM \"u\" U0 WHERE {w})")),
            inner.clone().prop_map(|w| format!("(SELECT COUNT(*) FROM \"u\" U0 WHERE {w})")),
        ]
    })
}

/// A chain of one operator, of a length drawn across the limits.
fn chain() -> impl Strategy<Value = String> {
    let len = prop_oneof![4 => 1usize..200, 1 => 200usize..6000, 1 => 6000usize..30000];
    (len, prop::sample::select(vec![" OR ", " AND ", " + ", " || ", ", "]), expr()).prop_map(|(n, op, e)| {
        let term = if op == ", " { e } else { format!("({e})") };
        vec![term; n].join(op)
    })
}

// ---- statements ------------------------------------------------------------------

fn select() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((expr(), prop::option::of(hostile_name())), 1..4),
        any::<bool>(),
        prop::option::of(expr()),
        prop::option::of(prop::collection::vec(expr(), 1..3)),
        prop::option::of(expr()),
        prop::option::of(prop::collection::vec((prop_oneof![expr(), (0u32..6).prop_map(|n| n.to_string())], any::<bool>()), 1..3)),
        prop::option::of((prop_oneof![Just("%s".to_string()), (-3i64..30).prop_map(|n| n.to_string())], prop::option::of(0i64..5))),
        any::<bool>(),
    )
        .prop_map(|(items, join, filter, group, having, order, limit, distinct)| {
            let items: Vec<String> = items
                .into_iter()
                .map(|(e, alias)| match alias {
                    Some(a) => format!("{e} AS {}", quoted(&a)),
                    None => e,
                })
                .collect();
            let mut s = format!("SELECT {}{} FROM \"t\"", if distinct { "DISTINCT " } else { "" }, items.join(", "));
            if join {
                s.push_str(" LEFT OUTER JOIN \"u\" T2 ON (\"t\".\"id\" = T2.\"t_id\")");
            }
            if let Some(f) = filter {
                s.push_str(&format!(" WHERE {f}"));
            }
            if let Some(g) = group {
                s.push_str(&format!(" GROUP BY {}", g.join(", ")));
                if let Some(h) = having {
                    s.push_str(&format!(" HAVING {h}"));
                }
            }
            if let Some(o) = order {
                let keys: Vec<String> = o.into_iter().map(|(e, d)| format!("{e}{}", if d { " DESC" } else { " ASC" })).collect();
                s.push_str(&format!(" ORDER BY {}", keys.join(", ")));
            }
            if let Some((l, off)) = limit {
                s.push_str(&format!(" LIMIT {l}"));
                if let Some(o) = off {
                    s.push_str(&format!(" OFFSET {o}"));
                }
            }
            s
        })
}

fn statement() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(),
        // Set operations: Django's flat chains, of a length across the limit.
        2 => (prop_oneof![3 => 2usize..20, 1 => 20usize..1200], prop::sample::select(vec![" UNION ", " UNION ALL ", " INTERSECT ", " EXCEPT "]), any::<bool>(), expr())
            .prop_map(|(n, op, parens, e)| {
                let one = format!("SELECT {e} AS \"x\" FROM \"t\"");
                let one = if parens { format!("({one})") } else { one };
                vec![one; n].join(op)
            }),
        // Mixed set operators nest.
        1 => prop::collection::vec(prop::sample::select(vec![" UNION ", " EXCEPT ", " INTERSECT ", " UNION ALL "]), 1..80)
            .prop_map(|ops| ops.iter().fold("SELECT 1".to_string(), |acc, op| format!("{acc}{op}SELECT 1"))),
        // Nesting: parentheses and subqueries, across the parser's limit.
        1 => (0usize..300, expr()).prop_map(|(n, e)| format!("SELECT {}{e}{} FROM \"t\"", "(".repeat(n), ")".repeat(n))),
        1 => (1usize..70).prop_map(|n| (0..n).fold("SELECT \"u\".\"id\" FROM \"u\"".to_string(), |acc, _| format!("SELECT \"t\".\"id\" FROM \"t\" WHERE \"t\".\"id\" IN ({acc})"))),
        1 => (1usize..70).prop_map(|n| (0..n).fold("SELECT 1 AS \"a\"".to_string(), |acc, _| format!("SELECT \"s\".\"a\" FROM ({acc}) \"s\""))),
        // Chains: WHERE and SELECT list.
        2 => chain().prop_map(|c| format!("SELECT \"t\".\"id\" FROM \"t\" WHERE {c}")),
        1 => chain().prop_map(|c| format!("SELECT {c} FROM \"t\"")),
        1 => (0usize..20000).prop_map(|n| format!("SELECT \"t\".\"id\" FROM \"t\" WHERE \"t\".\"id\" IN ({})", vec!["%s"; n.max(1)].join(", "))),
        1 => (1usize..300).prop_map(|n| format!("SELECT {}1 FROM \"t\"", "NOT ".repeat(n))),
        // Writes and DDL with hostile names.
        1 => (hostile_name(), prop::collection::vec(hostile_name(), 1..4)).prop_map(|(t, cols)| {
            let marks = vec!["%s"; cols.len()].join(", ");
            let cols: Vec<String> = cols.iter().map(|c| quoted(c)).collect();
            format!("INSERT INTO {} ({}) VALUES ({marks}) RETURNING {}.\"id\"", quoted(&t), cols.join(", "), quoted(&t))
        }),
        1 => (column(), expr(), expr()).prop_map(|(c, v, w)| format!("UPDATE \"t\" SET {c} = {v} WHERE {w}")),
        1 => expr().prop_map(|w| format!("DELETE FROM \"t\" WHERE {w}")),
        1 => (hostile_name(), hostile_name()).prop_map(|(t, c)| format!("CREATE TABLE {} ({} integer NOT NULL PRIMARY KEY AUTOINCREMENT, \"v\" varchar(10) NULL)", quoted(&t), quoted(&c))),
        // Noise around valid statements.
        1 => (select(), prop::sample::select(vec![";", "; SELECT 1", " --", " /*", "'", "\"", ")", "(", "\u{0}"])).prop_map(|(s, tail)| format!("{s}{tail}")),
    ]
}

// ---- properties -------------------------------------------------------------------

/// Parameter markers outside quoted text, as the compiler counts them.
fn markers(sql: &str) -> usize {
    djongo_sql::placeholders::rewrite(sql).params
}

fn plan_depth(doc: &Document) -> usize {
    let mut max = 0;
    let mut stack: Vec<(&Bson, usize)> = doc.values().map(|v| (v, 1)).collect();
    while let Some((v, d)) = stack.pop() {
        max = max.max(d);
        match v {
            Bson::Document(x) => stack.extend(x.values().map(|v| (v, d + 1))),
            Bson::Array(x) => stack.extend(x.iter().map(|v| (v, d + 1))),
            _ => {}
        }
    }
    max
}

/// Compiles on a thread with a small stack; a stack overflow aborts the
/// test process, which fails the run.
fn compile_on_small_stack(sql: String) -> Result<Document, CompileError> {
    std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || compile(&sql))
        .expect("spawn a compiler thread")
        .join()
        .unwrap_or_else(|_| panic!("the compiler panicked"))
}

fn check(sql: &str) -> Result<(), TestCaseError> {
    match compile_on_small_stack(sql.to_string()) {
        Ok(plan) => {
            prop_assert!(plan_depth(&plan) <= limits::MAX_PLAN_DEPTH, "plan nested {} levels", plan_depth(&plan));
            let params = plan.get_i64("params").unwrap_or(-1);
            prop_assert_eq!(params, markers(sql) as i64);
        }
        Err(CompileError::Parse { message, line, column }) => {
            prop_assert!(!message.is_empty() && line >= 1 && column >= 1);
        }
        Err(CompileError::Unsupported { construct, fragment }) => {
            prop_assert!(!construct.is_empty());
            prop_assert!(fragment.len() <= 260, "fragment of {} bytes", fragment.len());
        }
        Err(CompileError::Invalid { message } | CompileError::InvalidValue { message }) => {
            prop_assert!(!message.is_empty());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn generated_statements_compile_or_fail_cleanly(sql in statement()) {
        check(&sql)?;
    }

    #[test]
    fn generated_expressions_in_where(e in expr()) {
        check(&format!("SELECT \"t\".\"id\" FROM \"t\" WHERE {e} ORDER BY \"t\".\"id\" LIMIT 21"))?;
    }
}

/// Any name between quotes is one name: the plan reads it as one key,
/// never as a path, an operator or more SQL.
mod identifiers {
    use super::*;

    /// Field names a plan refers to: `$`-paths in expressions, keys of
    /// query-language filters, and `$getField` keys.
    fn references(plan: &Document) -> (Vec<String>, Vec<String>) {
        let mut paths = Vec::new();
        let mut literal_keys = Vec::new();
        // Output column labels ("columns") are names for the rows, not references.
        let mut stack: Vec<&Bson> = plan.iter().filter(|(k, _)| k.as_str() != "columns").map(|(_, v)| v).collect();
        while let Some(v) = stack.pop() {
            match v {
                Bson::String(s) if s.starts_with('$') && !s.starts_with("$$") => paths.push(s[1..].to_string()),
                // A literal is data, whatever it looks like.
                Bson::Document(d) if d.contains_key("$literal") => {}
                Bson::Document(d) => {
                    if let Some(Bson::Document(g)) = d.get("$getField") {
                        if let Some(Bson::Document(f)) = g.get("field") {
                            if let Some(Bson::String(k)) = f.get("$literal") {
                                literal_keys.push(k.clone());
                            }
                        }
                    }
                    stack.extend(d.values());
                }
                Bson::Array(a) => stack.extend(a.iter()),
                _ => {}
            }
        }
        (paths, literal_keys)
    }

    proptest! {
        #![proptest_config(config(500))]

        #[test]
        fn a_quoted_key_is_one_literal_key(key in "\\PC{0,16}|[\".$%s?\\\\' ]{0,8}") {
            let sql = format!("SELECT \"t\".\"data\".{} FROM \"t\"", quoted(&key));
            let plan = compile(&sql).map_err(|e| TestCaseError::fail(format!("{sql}: {e}")))?;
            let (paths, literal_keys) = references(&plan);
            if djongo_sql::plan::is_plain_key(&key) {
                prop_assert_eq!(paths, vec![format!("data.{key}")]);
                prop_assert!(literal_keys.is_empty());
            } else {
                prop_assert_eq!(paths, vec!["data".to_string()]);
                prop_assert_eq!(literal_keys, vec![key.clone()]);
            }
            prop_assert_eq!(plan.get_i64("params").ok(), Some(0));
        }

        #[test]
        fn a_quoted_key_in_where_and_order_by_stays_one_key(key in "\\PC{0,16}|[\".$%s?\\\\' ]{0,8}") {
            let sql = format!(
                "SELECT \"t\".\"id\" FROM \"t\" WHERE \"t\".\"data\".{k} = %s ORDER BY \"t\".\"data\".{k} ASC",
                k = quoted(&key)
            );
            let plan = compile(&sql).map_err(|e| TestCaseError::fail(format!("{sql}: {e}")))?;
            prop_assert_eq!(plan.get_i64("params").ok(), Some(1));
            let (paths, literal_keys) = references(&plan);
            if djongo_sql::plan::is_plain_key(&key) {
                // `find`: the filter and sort name the path as a key.
                let dotted = format!("data.{key}");
                let filter = plan.get_document("filter").map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(filter.keys().collect::<Vec<_>>(), vec![&dotted]);
                let sort = plan.get_document("sort").map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(sort.keys().collect::<Vec<_>>(), vec![&dotted]);
            } else {
                prop_assert!(paths.iter().all(|p| p == "data" || p == "id" || p.starts_with("__djongo_") || p.starts_with('c')), "{paths:?}");
                prop_assert!(!literal_keys.is_empty() && literal_keys.iter().all(|k| *k == key), "{literal_keys:?}");
            }
        }
    }
}

/// The deepest statements within the limits fit in `STACK_NEEDED`: each is
/// compiled without the stack switch on a thread of exactly that size.
#[test]
fn statements_at_the_limits_fit_in_the_stack_the_compiler_reserves() {
    let or_terms = vec!["\"t\".\"a\" = %s"; 4900].join(" OR ");
    let statements = vec![
        format!("SELECT \"t\".\"a\" FROM \"t\" WHERE {or_terms}"),
        format!("SELECT {} FROM \"t\"", vec!["1"; 9900].join(" + ")),
        format!("SELECT ~({}) FROM \"t\"", vec!["1"; 9900].join(" + ")),
        vec!["SELECT 1"; limits::MAX_SET_OPERANDS].join(" UNION "),
        format!("SELECT {}1{} FROM \"t\"", "(".repeat(60), ")".repeat(60)),
        (0..30).fold("SELECT 1".to_string(), |acc, _| format!("SELECT \"t\".\"a\" FROM \"t\" WHERE \"t\".\"a\" IN ({acc})")),
        format!("WITH x AS (SELECT 1) SELECT 1 FROM \"t\" WHERE {or_terms}"),
        format!("SELECT CASE {} END FROM \"t\"", vec!["WHEN \"t\".\"a\" = %s THEN %s"; 3000].join(" ")),
    ];
    for sql in statements {
        std::thread::Builder::new()
            .stack_size(limits::STACK_NEEDED)
            .spawn(move || {
                let _ = djongo_sql::compile_here(&sql);
            })
            .expect("spawn")
            .join()
            .expect("compiled without a panic");
    }
}

/// Past the limits: a clear error naming the limit, on any stack.
#[test]
fn statements_past_the_limits_name_the_limit() {
    let cases = [
        (vec!["SELECT 1"; 450].join(" UNION "), None),
        (vec!["SELECT 1"; limits::MAX_SET_OPERANDS + 1].join(" UNION "), Some("UNION")),
        (format!("SELECT \"t\".\"a\" FROM \"t\" WHERE {}", vec!["\"t\".\"a\" = 1"; 20000].join(" OR ")), Some("10000 levels")),
        (format!("SELECT {} FROM \"t\"", vec!["1"; 200000].join(" + ")), Some("10000 levels")),
        ((0..40).fold("SELECT 1".to_string(), |acc, _| format!("SELECT 1 UNION ({acc}) EXCEPT SELECT 2")), Some("nested")),
        (format!("SELECT {}1{} FROM \"t\"", "(".repeat(5000), ")".repeat(5000)), Some("10000 levels")),
        (format!("SELECT {}1{} FROM \"t\"", "(".repeat(100), ")".repeat(100)), Some("nesting is too deep")),
    ];
    for (sql, expected) in cases {
        let head: String = sql.chars().take(60).collect();
        let result = compile_on_small_stack(sql);
        match expected {
            None => assert!(result.is_ok(), "{head}: {result:?}"),
            Some(text) => {
                let message = result.err().map(|e| e.to_string()).unwrap_or_default();
                assert!(message.contains(text), "{head}: {message}");
            }
        }
    }
}
