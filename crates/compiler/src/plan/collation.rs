//! What decides the collation of a statement's string comparisons.
//!
//! SQL gives each column a collation and lets an expression name another
//! (`x COLLATE "name"`); MongoDB takes one collation per operation, for
//! every comparison of strings it makes. The compiler knows no schema, so it
//! lists what the executor needs to choose that collation, as the plan's
//! `collation` key (docs/plan-format.md):
//! - `names`: the collations the statement names with COLLATE;
//! - `columns`: the stored columns, `[collection, column]`, whose values it
//!   compares as they are: an operand of a comparison, IN, BETWEEN, NULLIF,
//!   GREATEST/LEAST, MIN/MAX or a DISTINCT aggregate, a key of ORDER BY,
//!   GROUP BY, PARTITION BY, a window's ORDER BY, and every output column of
//!   a DISTINCT or of UNION/INTERSECT/EXCEPT without ALL.
//!
//! A column under a COLLATE is not listed, nor one compared with an
//! operand under a COLLATE: as in SQL, the explicit collation decides.
//! Pattern matches (LIKE, regex) are left out: MongoDB's `$regex` compares
//! code points whatever the collation. The executor takes the columns'
//! collations from `__schema__` and refuses a statement whose string
//! comparisons would need two (python/djongo/collations.py).
//!
//! The COLLATE nodes are removed once read, so the comparison under one
//! lowers exactly as it would without it.
use super::{AggFunc, Delete, Expr, Func, OrderItem, Query, Select, SetOpKind, SortKey, Source, Statement, StatementKind, Update, WindowFunc};
use bson::{doc, Bson, Document};
use std::collections::BTreeSet;

#[derive(Default)]
struct Uses {
    names: BTreeSet<String>,
    columns: BTreeSet<(String, String)>,
    /// The tables of each query level being read, innermost last: column
    /// `source` of level `scope` is `levels[len - 1 - scope][source]`
    /// (`None`: a derived table, whose own columns are listed inside it).
    levels: Vec<Vec<Option<String>>>,
}

/// Reads the statement's collation uses and removes its COLLATE nodes; the
/// `collation` key of its plan, if it compares anything.
pub fn analyze(stmt: &mut Statement) -> Option<Document> {
    let mut uses = Uses::default();
    for q in &mut stmt.subqueries {
        uses.query(q);
    }
    match &mut stmt.kind {
        StatementKind::Query(q) => uses.query(q),
        StatementKind::Update(u) => uses.update(u),
        StatementKind::Delete(d) => uses.delete(d),
        // An INSERT compares nothing; DDL keeps its COLLATEs (refused where
        // MongoDB has no collation for them, recorded on columns).
        StatementKind::Insert(_) | StatementKind::Ddl(_) | StatementKind::Savepoint(_) | StatementKind::Explain { .. } => {}
    }
    if uses.names.is_empty() && uses.columns.is_empty() {
        return None;
    }
    let columns: Vec<Bson> = uses.columns.into_iter().map(|(t, c)| Bson::Array(vec![Bson::String(t), Bson::String(c)])).collect();
    Some(doc! { "names": uses.names.into_iter().collect::<Vec<_>>(), "columns": columns })
}

impl Uses {
    fn update(&mut self, u: &mut Update) {
        self.levels.push(vec![Some(u.collection.clone())]);
        if let Some(f) = &mut u.filter {
            self.expr(f);
        }
        for (_, e) in &mut u.assignments {
            self.expr(e);
        }
        self.levels.pop();
    }

    fn delete(&mut self, d: &mut Delete) {
        self.levels.push(vec![Some(d.collection.clone())]);
        if let Some(f) = &mut d.filter {
            self.expr(f);
        }
        self.levels.pop();
    }

    fn query(&mut self, q: &mut Query) {
        match q {
            Query::Select(s) => self.select(s),
            Query::SetOp(s) => {
                let dedups = !s.all || matches!(s.kind, SetOpKind::Intersect | SetOpKind::Except);
                for input in &mut s.inputs {
                    if let Query::Select(sel) = input {
                        if dedups {
                            self.with_level(sel, |uses, sel| sel.projection.iter().for_each(|p| uses.compared(&p.expr)));
                        }
                        for item in &s.order_by {
                            if let SortKey::Output(i) = item.key {
                                if let Some(p) = sel.projection.get(i) {
                                    self.with_level(sel, |uses, _| uses.compared(&p.expr));
                                }
                            }
                        }
                    }
                    self.query(input);
                }
            }
        }
    }

    /// Runs `f` with the tables of `s` as the innermost level.
    fn with_level(&mut self, s: &Select, f: impl FnOnce(&mut Uses, &Select)) {
        self.levels.push(tables_of(s));
        f(self, s);
        self.levels.pop();
    }

    fn select(&mut self, s: &mut Select) {
        if let Some(Source::Derived(inner)) = &mut s.from {
            self.query(inner);
        }
        self.levels.push(tables_of(s));
        for key in &s.group_by {
            self.compared(key);
        }
        if s.distinct {
            for p in &s.projection {
                self.compared(&p.expr);
            }
        }
        for OrderItem { key, .. } in &s.order_by {
            match key {
                SortKey::Expr(e) => self.compared(e),
                SortKey::Output(i) => {
                    if let Some(p) = s.projection.get(*i) {
                        self.compared(&p.expr);
                    }
                }
            }
        }
        for j in &mut s.joins {
            self.expr(&mut j.on);
        }
        for e in s.filter.iter_mut().chain(s.group_by.iter_mut()).chain(s.having.iter_mut()) {
            self.expr(e);
        }
        for p in &mut s.projection {
            self.expr(&mut p.expr);
        }
        for item in &mut s.order_by {
            if let SortKey::Expr(e) = &mut item.key {
                self.expr(e);
            }
        }
        self.levels.pop();
    }

    /// Reads the comparisons in `e` and below, then removes its COLLATEs.
    fn expr(&mut self, e: &mut Expr) {
        match &*e {
            Expr::Compare { left, right, .. } => self.compared_together(&[left, right]),
            Expr::InList { expr, list, .. } => self.compared_together(&std::iter::once(&**expr).chain(list).collect::<Vec<_>>()),
            Expr::Between { expr, low, high, .. } => self.compared_together(&[expr, low, high]),
            Expr::InSubquery { expr, .. } => self.compared(expr),
            Expr::Function { func: Func::NullIf | Func::Greatest | Func::Least, args } => self.compared_together(&args.iter().collect::<Vec<_>>()),
            Expr::Aggregate { func, arg: Some(arg), distinct } if *distinct || matches!(func, AggFunc::Min | AggFunc::Max) => self.compared(arg),
            Expr::Window(w) => {
                w.partition_by.iter().chain(w.order_by.iter().map(|(k, _)| k)).for_each(|x| self.compared(x));
                if matches!(w.func, WindowFunc::Aggregate(AggFunc::Min | AggFunc::Max)) {
                    w.args.iter().for_each(|x| self.compared(x));
                }
            }
            _ => {}
        }
        if let Some(q) = e.correlated_subquery_mut() {
            self.query(q);
        }
        e.for_each_child_mut(&mut |child| self.expr(child));
        if let Expr::Collate { expr, .. } = e {
            let inner = std::mem::replace(&mut **expr, Expr::Literal(super::Literal::Null));
            *e = inner;
        }
    }

    /// Operands compared with each other: as in SQL, a COLLATE on one of
    /// them decides for all (an explicit collation wins over a column's).
    fn compared_together(&mut self, operands: &[&Expr]) {
        let explicit: Vec<&String> = operands
            .iter()
            .filter_map(|e| match e {
                Expr::Collate { collation, .. } => Some(collation),
                _ => None,
            })
            .collect();
        if explicit.is_empty() {
            operands.iter().for_each(|e| self.compared(e));
        } else {
            self.names.extend(explicit.into_iter().cloned());
        }
    }

    /// Notes what decides the collation of `e`'s value when it is compared:
    /// the COLLATE it is under, else the columns it reads.
    fn compared(&mut self, e: &Expr) {
        match e {
            Expr::Collate { collation, .. } => {
                self.names.insert(collation.clone());
            }
            Expr::Column(c) => {
                let level = self.levels.len().checked_sub(1 + c.scope).and_then(|l| self.levels.get(l));
                if let (Some(Some(table)), Some(column)) = (level.and_then(|l| l.get(c.source)), c.path.components().first()) {
                    self.columns.insert((table.clone(), column.clone()));
                }
            }
            // A pattern match compares code points, whatever the collation.
            Expr::Match { .. } => {}
            other => other.for_each_child(&mut |child| self.compared(child)),
        }
    }
}

fn tables_of(s: &Select) -> Vec<Option<String>> {
    let first = match &s.from {
        Some(Source::Table { collection }) => Some(collection.clone()),
        Some(Source::Derived(_)) | None => None,
    };
    std::iter::once(first).chain(s.joins.iter().map(|j| Some(j.collection.clone()))).collect()
}
