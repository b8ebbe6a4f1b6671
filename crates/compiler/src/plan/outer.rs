//! Column references that leave a query for the ones around it.
//!
//! A derived table inside a correlated subquery (`SELECT COUNT(*) FROM
//! (SELECT ... WHERE u.x = outer.y) t`, django-mptt's counts) may refer to
//! the queries around the subquery, and so may the operands of a set
//! operation there. Their pipelines run inlined in the enclosing one, so
//! their level disappears: each such reference is one level closer.
use super::{ColumnRef, Expr, Query, Source};
use crate::error::{CompileError, Result};

/// Calls `f(column, depth)` on every column reference in `q` that points
/// outside it; `depth` is how deep inside `q` the reference sits (0: `q`
/// itself), so it points `column.scope - depth` levels above `q`.
pub fn for_each_outer_ref(q: &mut Query, depth: usize, f: &mut dyn FnMut(&mut ColumnRef, usize) -> Result<()>) -> Result<()> {
    match q {
        Query::SetOp(s) => {
            // Operands are inlined in the set operation's level
            // (plan::build::query), and refer to the levels around it.
            for input in &mut s.inputs {
                for_each_outer_ref(input, depth, f)?;
            }
            Ok(())
        }
        Query::Select(s) => {
            if let Some(Source::Derived(inner)) = &mut s.from {
                for_each_outer_ref(inner, depth + 1, f)?;
            }
            let mut exprs: Vec<&mut Expr> = Vec::new();
            exprs.extend(s.joins.iter_mut().map(|j| &mut j.on));
            exprs.extend(s.filter.iter_mut());
            exprs.extend(s.group_by.iter_mut());
            exprs.extend(s.having.iter_mut());
            exprs.extend(s.projection.iter_mut().map(|p| &mut p.expr));
            exprs.extend(s.order_by.iter_mut().filter_map(|o| match &mut o.key {
                super::SortKey::Expr(e) => Some(e),
                super::SortKey::Output(_) => None,
            }));
            let mut outcome = Ok(());
            for e in exprs {
                visit(e, depth, f, &mut outcome);
            }
            outcome
        }
    }
}

fn visit(e: &mut Expr, depth: usize, f: &mut dyn FnMut(&mut ColumnRef, usize) -> Result<()>, outcome: &mut Result<()>) {
    if outcome.is_err() {
        return;
    }
    if let Expr::Column(c) = e {
        if c.scope > depth {
            *outcome = f(c, depth);
        }
        return;
    }
    if let Some(q) = e.correlated_subquery_mut() {
        if let Err(err) = for_each_outer_ref(q, depth + 1, f) {
            *outcome = Err(err);
            return;
        }
    }
    e.for_each_child_mut(&mut |child| visit(child, depth, f, outcome));
}

/// Rewrites a correlated derived table's (or set operand's) references for
/// its inlining (see the module documentation). A reference to the level
/// that holds it (a sibling in FROM: LATERAL) is refused.
pub fn inline_derived(q: &mut Query) -> Result<()> {
    for_each_outer_ref(q, 0, &mut |c, depth| {
        if c.scope == depth + 1 {
            return Err(CompileError::unsupported("a derived table referring to the FROM it is in (LATERAL)", &c.path));
        }
        c.scope -= 1;
        Ok(())
    })
}
