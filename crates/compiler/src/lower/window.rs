//! Window functions → `$setWindowFields`.
//!
//! The windows of one SELECT are computed after its filters and joins (after
//! its grouping and HAVING when it is grouped), before its projection, into
//! hidden fields `__djongo_w<n>` that the projection and
//! ORDER BY then read (`Ctx::windows` maps each window to its field).
//! Windows sharing PARTITION BY and ORDER BY share one `$setWindowFields`.
//!
//! SQL's peers (rows equal on the ORDER BY keys) have no counterpart in
//! MongoDB's `documents` windows, and its `range` windows need one numeric
//! sort key (a RANGE frame with an offset uses them, and so has one ORDER BY
//! key). So a RANGE frame ending at the current row (SQL's default frame
//! with ORDER BY) is computed over `documents: ["unbounded", "current"]`, and
//! a second `$setWindowFields` over each peer group gives every peer the value
//! of the group's last row (first row for a frame starting at the current
//! row), which is what SQL returns.
//!
//! A frame with `EXCLUDE` (no MongoDB counterpart) pushes each row of the
//! frame as `{i: row number, k: sort keys, v: value}`; the rows the
//! exclusion leaves out (the current one by its number, its peers by their
//! keys) are filtered out of that array, and the aggregate is taken over
//! what is left. The row numbers come from a `$setWindowFields` before.
use bson::{doc, Bson, Document};

use super::expr::{is_null, op1, opn};
use super::{param_slot, Ctx, Env, RESERVED_PREFIX};
use crate::error::{CompileError, Result};
use crate::plan::{AggFunc, Exclusion, Expr, Frame, FrameBound, Literal, Select, SortKey, Window, WindowFunc};

/// Every window function of the SELECT list and ORDER BY, once each.
fn collect(s: &Select) -> Vec<Window> {
    let mut found: Vec<Window> = Vec::new();
    let exprs = s.projection.iter().map(|p| &p.expr).chain(s.order_by.iter().filter_map(|o| match &o.key {
        SortKey::Expr(e) => Some(e),
        SortKey::Output(_) => None,
    }));
    for e in exprs {
        e.walk(&mut |x| {
            if let Expr::Window(w) = x {
                if !found.contains(w) {
                    found.push((**w).clone());
                }
            }
        });
    }
    found
}

pub(crate) fn has_windows(s: &Select) -> bool {
    s.projection.iter().any(|p| p.expr.has_window())
        || s.order_by.iter().any(|o| matches!(&o.key, SortKey::Expr(e) if e.has_window()))
}

/// Windows sharing PARTITION BY and ORDER BY: (partition keys, sort keys, members).
type WindowGroup<'a> = (&'a [Expr], &'a [(Expr, bool)], Vec<&'a Window>);

/// Which row of a peer group gives its value to the whole group.
#[derive(Clone, Copy, PartialEq)]
enum PeerFix {
    None,
    Last,
    First,
}

/// A window operator's outputs: raw fields of the first `$setWindowFields`
/// (name, operator, which peer's value the field takes), and the expression
/// that makes the SQL value from them.
struct Outputs {
    raw: Vec<(String, Bson, PeerFix)>,
    finish: Bson,
}

fn field(name: &str) -> Bson {
    Bson::String(format!("${name}"))
}

fn documents(start: FrameBound, end: FrameBound) -> Document {
    doc! { "documents": [bound(start), bound(end)] }
}

/// The whole partition, written out so nothing hangs on a server's default.
fn whole_partition() -> Document {
    documents(FrameBound::Unbounded, FrameBound::Unbounded)
}

/// Rows from the partition's first up to the current one, counted: the row
/// number (`$documentNumber` allows a single sort key only).
fn running_count() -> Bson {
    Bson::Document(doc! { "$sum": 1, "window": documents(FrameBound::Unbounded, FrameBound::Current) })
}

fn bound(b: FrameBound) -> Bson {
    match b {
        FrameBound::Unbounded => Bson::String("unbounded".into()),
        FrameBound::Current => Bson::String("current".into()),
        FrameBound::Offset(n) => Bson::Int64(n),
    }
}

/// The MongoDB window of an accumulator, and the peer fix it needs.
fn frame_window(frame: &Option<Frame>, ordered: bool, whole: &Window) -> Result<(Document, PeerFix)> {
    use FrameBound::{Current, Unbounded};
    Ok(match frame {
        None if !ordered => (whole_partition(), PeerFix::None),
        None => (documents(Unbounded, Current), PeerFix::Last),
        Some(Frame { rows: true, start, end, .. }) => (documents(*start, *end), PeerFix::None),
        Some(Frame { rows: false, start, end, .. }) => match (start, end) {
            (Unbounded, Unbounded) => (whole_partition(), PeerFix::None),
            (Unbounded, Current) => (documents(Unbounded, Current), PeerFix::Last),
            (Current, Unbounded) => (documents(Current, Unbounded), PeerFix::First),
            // An offset counts sort-key units: MongoDB's `range` window, over
            // the one sort key it allows. CURRENT ROW is the current value
            // (offset 0), so peers are in the frame as SQL wants; MongoDB's
            // "current" would be the current document only.
            (start, end) if whole.order_by.len() == 1 => {
                let value_bound = |b: FrameBound| match b {
                    Current => Bson::Int64(0),
                    other => bound(other),
                };
                (doc! { "range": [value_bound(*start), value_bound(*end)] }, PeerFix::None)
            }
            _ => {
                return Err(CompileError::unsupported(
                    "RANGE window frame with an offset and other than one ORDER BY key",
                    format!("{:?}", whole.frame),
                ))
            }
        },
    })
}

fn with_window(mut op: Document, window: &Document) -> Bson {
    op.insert("window", window.clone());
    Bson::Document(op)
}

/// An integer argument that MongoDB needs as a constant (`$shift`'s `by`):
/// a literal, or a parameter slot (negated by the executor for LAG).
fn constant_int(e: &Expr, negate: bool) -> Result<Bson> {
    match e {
        Expr::Literal(Literal::Int(n)) => Ok(Bson::Int64(if negate { -n } else { *n })),
        Expr::Param(i) => {
            let mut slot = param_slot(*i);
            if let (true, Bson::Document(d)) = (negate, &mut slot) {
                d.insert("negate", true);
            }
            Ok(slot)
        }
        _ => Err(CompileError::unsupported("LAG/LEAD offset that is not a constant", format!("{e:?}"))),
    }
}

impl Ctx {
    /// The field holding a window function's value in the current SELECT.
    pub(crate) fn window_field(&self, w: &Window) -> Result<Bson> {
        self.windows
            .borrow()
            .iter()
            .rev()
            .find(|(known, _)| known == w)
            .map(|(_, name)| field(name))
            .ok_or_else(|| CompileError::unsupported("window function outside the SELECT list and ORDER BY", format!("{:?}", w.func)))
    }

    fn window_name(&self) -> String {
        let mut n = self.window_count.borrow_mut();
        *n += 1;
        format!("{RESERVED_PREFIX}w{}", *n - 1)
    }

    /// The stages computing every window of `s` (registered in `self.windows`).
    pub(crate) fn window_stages(&self, env: Env, s: &Select) -> Result<Vec<Document>> {
        let windows = collect(s);
        // Group the windows by (PARTITION BY, ORDER BY).
        let mut groups: Vec<WindowGroup> = Vec::new();
        for w in &windows {
            match groups.iter_mut().find(|(p, o, _)| *p == w.partition_by.as_slice() && *o == w.order_by.as_slice()) {
                Some(g) => g.2.push(w),
                None => groups.push((&w.partition_by, &w.order_by, vec![w])),
            }
        }
        let mut stages = Vec::new();
        for (partition_by, order_by, members) in groups {
            let base = self.window_name();
            // Partition and sort keys as fields: sortBy takes field paths only.
            let mut keys = Document::new();
            let partition = format!("{base}p");
            match partition_by {
                [] => {}
                [one] => {
                    keys.insert(partition.clone(), self.value(env, one)?);
                }
                many => {
                    let mut d = Document::new();
                    for (j, e) in many.iter().enumerate() {
                        d.insert(format!("k{j}"), self.value(env, e)?);
                    }
                    keys.insert(partition.clone(), d);
                }
            }
            let mut sort_by = Document::new();
            for (j, (e, descending)) in order_by.iter().enumerate() {
                let name = format!("{base}k{j}");
                keys.insert(name.clone(), self.value(env, e)?);
                sort_by.insert(name, if *descending { -1 } else { 1 });
            }
            if sort_by.is_empty() {
                // No ORDER BY: every row is a peer of every other. The ranking
                // operators still need a sort key; a constant one gives that.
                let name = format!("{base}k0");
                keys.insert(name.clone(), Bson::Null);
                sort_by.insert(name, 1);
            }
            let row_number = format!("{base}rn");
            let excluding = members.iter().any(|w| w.frame.as_ref().is_some_and(|f| f.exclusion.is_some()));
            let peers = Peers { id: format!("{base}x"), keys: sort_by.keys().cloned().collect() };
            let mut outputs = doc! { row_number.clone(): running_count() };
            let mut peer_fields: Vec<(String, PeerFix)> = Vec::new();
            let mut finish = Document::new();
            for (m, w) in members.iter().enumerate() {
                let name = format!("{base}_{m}");
                let out = self.window_outputs(env, w, &name, sort_by.len(), !order_by.is_empty(), &row_number, &peers)?;
                for (raw, op, fix) in out.raw {
                    if fix != PeerFix::None {
                        peer_fields.push((raw.clone(), fix));
                    }
                    outputs.insert(raw, op);
                }
                finish.insert(name.clone(), out.finish);
                self.windows.borrow_mut().push(((*w).clone(), name));
            }
            stages.push(doc! { "$set": keys });
            if excluding {
                // Each row's number, for EXCLUDE to tell the current row from
                // the others of its frame (a window cannot read its own output).
                let mut numbering = doc! { "sortBy": sort_by.clone(), "output": { peers.id.clone(): running_count() } };
                if !partition_by.is_empty() {
                    numbering.insert("partitionBy", field(&partition));
                }
                stages.push(doc! { "$setWindowFields": numbering });
            }
            let mut stage = doc! { "sortBy": sort_by.clone(), "output": outputs };
            if !partition_by.is_empty() {
                stage.insert("partitionBy", field(&partition));
            }
            stages.push(doc! { "$setWindowFields": stage });
            if !peer_fields.is_empty() {
                // Each peer group (same partition, same sort keys) takes the
                // value of its last (or first) row.
                let mut peer_key = Document::new();
                if !partition_by.is_empty() {
                    peer_key.insert("p", field(&partition));
                }
                for (j, k) in sort_by.keys().enumerate() {
                    peer_key.insert(format!("k{j}"), field(k));
                }
                let mut fixes = Document::new();
                for (raw, fix) in &peer_fields {
                    let op = if *fix == PeerFix::Last { "$last" } else { "$first" };
                    fixes.insert(raw.clone(), doc! { op: field(raw), "window": whole_partition() });
                }
                stages.push(doc! { "$setWindowFields": { "partitionBy": peer_key, "sortBy": { row_number.clone(): 1 }, "output": fixes } });
            }
            stages.push(doc! { "$set": finish });
        }
        Ok(stages)
    }

    #[allow(clippy::too_many_arguments)]
    fn window_outputs(&self, env: Env, w: &Window, name: &str, sort_keys: usize, ordered: bool, row_number: &str, peers: &Peers) -> Result<Outputs> {
        let raw = |suffix: &str| format!("{name}{suffix}");
        if let Some(exclusion) = w.frame.as_ref().and_then(|f| f.exclusion) {
            return self.excluding_outputs(env, w, &raw("a"), ordered, exclusion, peers);
        }
        let count_all = || Bson::Document(doc! { "$count": {}, "window": whole_partition() });
        // RANK() over several sort keys: the row number of the first peer
        // (MongoDB's `$rank` takes a single sort key).
        let rank = || -> (Bson, PeerFix) {
            if sort_keys == 1 {
                (Bson::Document(doc! { "$rank": {} }), PeerFix::None)
            } else {
                (running_count(), PeerFix::First)
            }
        };
        let arg = |i: usize| -> Result<Bson> {
            match w.args.get(i) {
                Some(e) => self.value(env, e),
                None => Ok(Bson::Null),
            }
        };
        Ok(match &w.func {
            WindowFunc::RowNumber => Outputs { raw: vec![], finish: field(row_number) },
            WindowFunc::Rank => {
                let (op, fix) = rank();
                Outputs { raw: vec![(raw("r"), op, fix)], finish: field(&raw("r")) }
            }
            WindowFunc::DenseRank => {
                if sort_keys != 1 {
                    return Err(CompileError::unsupported("DENSE_RANK() over several ORDER BY keys", format!("{:?}", w.order_by)));
                }
                Outputs { raw: vec![(raw("r"), Bson::Document(doc! { "$denseRank": {} }), PeerFix::None)], finish: field(&raw("r")) }
            }
            WindowFunc::PercentRank => {
                let (op, fix) = rank();
                let (r, n) = (field(&raw("r")), field(&raw("n")));
                // (rank - 1) / (rows - 1), 0 for a partition of one row.
                let finish = opn(
                    "$cond",
                    vec![
                        opn("$lte", vec![n.clone(), Bson::Int32(1)]),
                        Bson::Double(0.0),
                        opn("$divide", vec![opn("$subtract", vec![r, Bson::Int32(1)]), opn("$subtract", vec![n, Bson::Int32(1)])]),
                    ],
                );
                Outputs { raw: vec![(raw("r"), op, fix), (raw("n"), count_all(), PeerFix::None)], finish }
            }
            WindowFunc::CumeDist => {
                // Rows up to the last peer of this row, over all rows; without
                // ORDER BY every row is a peer of every other.
                if !ordered {
                    return Ok(Outputs { raw: vec![], finish: Bson::Double(1.0) });
                }
                let finish = opn("$divide", vec![field(&raw("l")), field(&raw("n"))]);
                Outputs { raw: vec![(raw("l"), running_count(), PeerFix::Last), (raw("n"), count_all(), PeerFix::None)], finish }
            }
            WindowFunc::Ntile => {
                // SQL's NTILE(b): the first N mod b buckets hold one row more.
                let (r, n, b) = (field(row_number), field(&raw("n")), arg(0)?);
                let q = op1("$floor", opn("$divide", vec![n.clone(), b.clone()]));
                let rem = opn("$mod", vec![n, b]);
                let big = opn("$multiply", vec![rem.clone(), opn("$add", vec![q.clone(), Bson::Int32(1)])]);
                let finish = op1(
                    "$toLong",
                    opn(
                        "$cond",
                        vec![
                            opn("$lte", vec![r.clone(), big.clone()]),
                            op1("$ceil", opn("$divide", vec![r.clone(), opn("$add", vec![q.clone(), Bson::Int32(1)])])),
                            opn("$add", vec![rem, op1("$ceil", opn("$divide", vec![opn("$subtract", vec![r, big]), q]))]),
                        ],
                    ),
                );
                Outputs { raw: vec![(raw("n"), count_all(), PeerFix::None)], finish }
            }
            WindowFunc::Lag | WindowFunc::Lead => {
                let lag = w.func == WindowFunc::Lag;
                let by = match w.args.get(1) {
                    Some(e) => constant_int(e, lag)?,
                    None => Bson::Int64(if lag { -1 } else { 1 }),
                };
                let shift = doc! { "$shift": { "output": arg(0)?, "by": by, "default": arg(2)? } };
                Outputs { raw: vec![(raw("v"), Bson::Document(shift), PeerFix::None)], finish: field(&raw("v")) }
            }
            WindowFunc::FirstValue | WindowFunc::LastValue | WindowFunc::NthValue => {
                let (window, peer_fix) = frame_window(&w.frame, ordered, w)?;
                let x = arg(0)?;
                let (op, finish) = match w.func {
                    WindowFunc::FirstValue => (doc! { "$first": x }, field(&raw("v"))),
                    WindowFunc::LastValue => (doc! { "$last": x }, field(&raw("v"))),
                    _ => {
                        // Every value of the frame (NULLs kept), then the n-th.
                        let n = arg(1)?;
                        let nth = opn("$arrayElemAt", vec![field(&raw("v")), opn("$subtract", vec![n, Bson::Int32(1)])]);
                        (doc! { "$push": opn("$ifNull", vec![x, Bson::Null]) }, opn("$ifNull", vec![nth, Bson::Null]))
                    }
                };
                Outputs { raw: vec![(raw("v"), with_window(op, &window), peer_fix)], finish }
            }
            WindowFunc::Aggregate(func) => {
                let (window, peer_fix) = frame_window(&w.frame, ordered, w)?;
                let x = arg(0)?;
                let present = || opn("$cond", vec![is_null(x.clone()), Bson::Int32(0), Bson::Int32(1)]);
                match func {
                    // SUM over no non-NULL value is NULL in SQL, 0 in MongoDB.
                    AggFunc::Sum => Outputs {
                        raw: vec![
                            (raw("v"), with_window(doc! { "$sum": x.clone() }, &window), peer_fix),
                            (raw("c"), with_window(doc! { "$sum": present() }, &window), peer_fix),
                        ],
                        finish: opn("$cond", vec![opn("$eq", vec![field(&raw("c")), Bson::Int32(0)]), Bson::Null, field(&raw("v"))]),
                    },
                    AggFunc::Count => Outputs { raw: vec![(raw("v"), with_window(doc! { "$sum": present() }, &window), peer_fix)], finish: field(&raw("v")) },
                    AggFunc::CountStar => Outputs { raw: vec![(raw("v"), with_window(doc! { "$sum": 1 }, &window), peer_fix)], finish: field(&raw("v")) },
                    other => {
                        let op = match other {
                            AggFunc::Avg => "$avg",
                            AggFunc::Min => "$min",
                            AggFunc::Max => "$max",
                            AggFunc::StdDevPop => "$stdDevPop",
                            AggFunc::StdDevSamp => "$stdDevSamp",
                            _ => return Err(CompileError::unsupported("this aggregate as a window function", format!("{other:?}"))),
                        };
                        let mut d = Document::new();
                        d.insert(op, x);
                        Outputs { raw: vec![(raw("v"), with_window(d, &window), peer_fix)], finish: field(&raw("v")) }
                    }
                }
            }
        })
    }

    /// A frame with `EXCLUDE`: the frame's rows are pushed (see the module
    /// comment), the excluded ones filtered out, the function taken over the rest.
    fn excluding_outputs(&self, env: Env, w: &Window, raw: &str, ordered: bool, exclusion: Exclusion, peers: &Peers) -> Result<Outputs> {
        let (window, peer_fix) = frame_window(&w.frame, ordered, w)?;
        let x = match w.args.first() {
            Some(e) => self.value(env, e)?,
            None => Bson::Null,
        };
        let keys = |prefix: &str| Bson::Array(peers.keys.iter().map(|k| Bson::String(format!("{prefix}{k}"))).collect());
        let element = doc! { "i": field(&peers.id), "k": keys("$"), "v": x };
        let me = field(&peers.id);
        let peer = opn("$eq", vec![Bson::String("$$e.k".into()), keys("$")]);
        let is_me = opn("$eq", vec![Bson::String("$$e.i".into()), me]);
        let keep = match exclusion {
            Exclusion::CurrentRow => op1("$not", Bson::Array(vec![is_me])),
            Exclusion::Group => op1("$not", Bson::Array(vec![peer])),
            Exclusion::Ties => opn("$or", vec![is_me, op1("$not", Bson::Array(vec![peer]))]),
        };
        let kept = Bson::Document(doc! { "$filter": { "input": field(raw), "as": "e", "cond": keep } });
        let values = Bson::Document(doc! { "$map": { "input": kept.clone(), "as": "e", "in": "$$e.v" } });
        let non_null = Bson::Document(doc! { "$filter": { "input": values.clone(), "as": "v", "cond": { "$ne": ["$$v", Bson::Null] } } });
        let nth = |i: Bson| opn("$ifNull", vec![opn("$arrayElemAt", vec![values.clone(), i]), Bson::Null]);
        let finish = match &w.func {
            WindowFunc::Aggregate(AggFunc::Sum) => opn(
                "$cond",
                vec![opn("$eq", vec![op1("$size", non_null), Bson::Int32(0)]), Bson::Null, op1("$sum", values)],
            ),
            WindowFunc::Aggregate(AggFunc::Count) => op1("$size", non_null),
            WindowFunc::Aggregate(AggFunc::CountStar) => op1("$size", kept),
            WindowFunc::Aggregate(AggFunc::Avg) => op1("$avg", values),
            WindowFunc::Aggregate(AggFunc::Min) => op1("$min", values),
            WindowFunc::Aggregate(AggFunc::Max) => op1("$max", values),
            WindowFunc::Aggregate(AggFunc::StdDevPop) => op1("$stdDevPop", values),
            WindowFunc::Aggregate(AggFunc::StdDevSamp) => op1("$stdDevSamp", values),
            WindowFunc::FirstValue => nth(Bson::Int32(0)),
            WindowFunc::LastValue => nth(Bson::Int32(-1)),
            WindowFunc::NthValue => {
                let n = match w.args.get(1) {
                    Some(e) => self.value(env, e)?,
                    None => Bson::Null,
                };
                nth(opn("$subtract", vec![n, Bson::Int32(1)]))
            }
            other => return Err(CompileError::unsupported("EXCLUDE in the frame of this window function (it has no frame)", format!("{other:?}"))),
        };
        Ok(Outputs { raw: vec![(raw.to_string(), with_window(doc! { "$push": element }, &window), peer_fix)], finish })
    }
}

/// What a frame's EXCLUDE compares rows by: the field of each row's number
/// in its partition, and the fields of its sort keys (peers share them).
struct Peers {
    id: String,
    keys: Vec<String>,
}
