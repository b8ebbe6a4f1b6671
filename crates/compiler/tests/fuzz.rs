//! `compile` must never panic, whatever the input: random text, and valid
//! Django SQL with random mutations.
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    r#"SELECT "app_entry"."id", "app_entry"."headline" FROM "app_entry" WHERE ("app_entry"."headline" LIKE %s ESCAPE '\' AND "app_entry"."n_comments" >= %s) ORDER BY "app_entry"."id" DESC LIMIT 21 OFFSET 5"#,
    r#"SELECT "a"."id", T3."name" FROM "a" INNER JOIN "b" ON ("a"."b_id" = "b"."id") LEFT OUTER JOIN "b" T3 ON ("a"."c_id" = T3."id") WHERE NOT ("b"."x" IN (%s, %s) OR T3."y" IS NULL)"#,
    r#"SELECT "t"."a", COUNT(DISTINCT "t"."b") AS "n" FROM "t" GROUP BY "t"."a" HAVING SUM("t"."c") > %s ORDER BY 2 DESC"#,
    r#"SELECT "t"."id", (SELECT COUNT(*) FROM "u" U0 WHERE U0."t_id" = ("t"."id")) AS "n" FROM "t" WHERE EXISTS(SELECT 1 FROM "v" V0 WHERE V0."t_id" = "t"."id")"#,
    r#"UPDATE "t" SET "a" = %s, "b" = ("t"."b" + %s) WHERE "t"."id" IN (SELECT U0."id" FROM "t" U0)"#,
    r#"INSERT INTO "t" ("a", "b") VALUES (%s, %s), (NULL, DEFAULT) RETURNING "t"."id""#,
    r#"CREATE TABLE "t" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "n" varchar(10) NULL UNIQUE, CONSTRAINT "c" CHECK ("n" >= 0))"#,
    r#"SELECT CASE WHEN "t"."a" > 1 THEN COALESCE("t"."a", 0) / 2 ELSE -"t"."a" END FROM (SELECT "x"."a" AS "a" FROM "x" UNION SELECT "y"."a" FROM "y") "t""#,
];

fn mutate(seed: &str, ops: &[(usize, u8, char)]) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for &(pos, kind, c) in ops {
        if chars.is_empty() {
            chars.push(c);
            continue;
        }
        let p = pos % chars.len();
        match kind % 4 {
            0 => {
                chars.remove(p);
            }
            1 => chars.insert(p, c),
            2 => chars[p] = c,
            _ => {
                // Duplicate a slice: nests parentheses and repeats clauses.
                let end = (p + 1 + (pos % 17)).min(chars.len());
                let slice: Vec<char> = chars[p..end].to_vec();
                for (i, ch) in slice.into_iter().enumerate() {
                    chars.insert(end + i, ch);
                }
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(s in "\\PC{0,200}") {
        let _ = djongo_sql::compile(&s);
    }

    #[test]
    fn sqlish_text_never_panics(s in "(SELECT|FROM|WHERE|\"t\"\\.\"a\"|%s|\\?|\\$1|\\(|\\)|,|=|<>|NOT|AND|OR|IN|LIKE|'x'|1|NULL|JOIN|ON|GROUP BY|ORDER BY|COUNT\\(\\*\\)| ){0,40}") {
        let _ = djongo_sql::compile(&s);
    }

    #[test]
    fn mutated_django_sql_never_panics(seed in 0..SEEDS.len(), ops in prop::collection::vec((any::<usize>(), any::<u8>(), prop::sample::select(vec!['(', ')', '"', '\'', ',', ' ', '%', 's', '.', '1', '-', '*', 'x', 'U', ';', '\\'])), 0..8)) {
        let sql = mutate(SEEDS[seed], &ops);
        let _ = djongo_sql::compile(&sql);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("SELECT {}1{} FROM \"t\"", "(".repeat(5000), ")".repeat(5000));
    assert!(djongo_sql::compile(&deep).is_err());
    let long = format!("SELECT \"t\".\"a\" FROM \"t\" WHERE {}", vec!["\"t\".\"a\" = 1"; 3000].join(" OR "));
    assert!(djongo_sql::compile(&long).is_ok());
    let chain = format!("SELECT {} FROM \"t\"", vec!["1"; 3000].join(" + "));
    assert!(djongo_sql::compile(&chain).is_err());
}

#[test]
fn seeds_compile() {
    for s in SEEDS {
        assert!(djongo_sql::compile(s).is_ok(), "{s}: {:?}", djongo_sql::compile(s));
    }
}
