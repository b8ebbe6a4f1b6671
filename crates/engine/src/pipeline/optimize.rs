//! Rewrites of a pipeline that leave its results unchanged but let work
//! happen earlier, as MongoDB's pipeline optimizer does: a `$match` that
//! only reads fields a `$lookup` or `$unwind` does not write moves before
//! it (so it filters fewer documents, and a leading `$match` can use an
//! index), and adjacent `$match` stages merge into one.
use bson::{Bson, Document};

/// Applies the rewrites in place.
pub fn optimize(stages: &mut Vec<Document>) {
    // Each move puts a $match strictly earlier, so this ends; the bound is
    // a guard, not a limit ever reached.
    let mut budget = stages.len() * stages.len() + 1;
    while budget > 0 {
        budget -= 1;
        if !step(stages) {
            break;
        }
    }
}

/// One rewrite, if any applies.
fn step(stages: &mut Vec<Document>) -> bool {
    for i in 1..stages.len() {
        let Some(filter) = match_filter(&stages[i]) else { continue };
        if let Some(previous) = match_filter(&stages[i - 1]) {
            let merged = Document::from_iter([("$and".to_string(), Bson::Array(vec![Bson::Document(previous.clone()), Bson::Document(filter.clone())]))]);
            stages[i - 1] = Document::from_iter([("$match".to_string(), Bson::Document(merged))]);
            stages.remove(i);
            return true;
        }
        let Some(read) = fields_read(filter) else { continue };
        let Some(written) = fields_written(&stages[i - 1]) else { continue };
        if read.iter().all(|r| !written.contains(r)) {
            stages.swap(i - 1, i);
            return true;
        }
    }
    false
}

fn match_filter(stage: &Document) -> Option<&Document> {
    match (stage.len(), stage.get("$match")) {
        (1, Some(Bson::Document(f))) => Some(f),
        _ => None,
    }
}

/// The top-level fields a filter reads; `None` when it may read anything.
fn fields_read(filter: &Document) -> Option<Vec<String>> {
    let mut needs = crate::deps::Needs::default();
    crate::deps::filter_needs(filter, &mut needs);
    needs.top_level()
}

fn first_component(path: &str) -> String {
    path.split('.').next().unwrap_or(path).to_string()
}

/// The top-level fields a `$lookup` or `$unwind` writes; `None` for other
/// stages (nothing moves past them).
fn fields_written(stage: &Document) -> Option<Vec<String>> {
    if stage.len() != 1 {
        return None;
    }
    let (name, spec) = stage.iter().next()?;
    match (name.as_str(), spec) {
        ("$lookup", Bson::Document(d)) => match d.get("as") {
            Some(Bson::String(a)) => Some(vec![first_component(a)]),
            _ => None,
        },
        ("$unwind", Bson::String(p)) => Some(vec![first_component(p.strip_prefix('$')?)]),
        ("$unwind", Bson::Document(d)) => {
            let Some(Bson::String(p)) = d.get("path") else { return None };
            let mut out = vec![first_component(p.strip_prefix('$')?)];
            match d.get("includeArrayIndex") {
                Some(Bson::String(ix)) => out.push(first_component(ix)),
                Some(_) => return None,
                None => {}
            }
            Some(out)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn optimized(mut stages: Vec<Document>) -> Vec<Document> {
        optimize(&mut stages);
        stages
    }

    #[test]
    fn a_match_on_local_fields_moves_before_lookup_and_unwind() {
        let lookup = doc! {"$lookup": {"from": "a", "localField": "author_id", "foreignField": "id", "as": "j"}};
        let unwind = doc! {"$unwind": {"path": "$j", "preserveNullAndEmptyArrays": true}};
        let out = optimized(vec![lookup.clone(), unwind.clone(), doc! {"$match": {"n": {"$gte": 3}}}]);
        assert_eq!(out, vec![doc! {"$match": {"n": {"$gte": 3}}}, lookup.clone(), unwind.clone()]);
        // Reading the joined field, or the whole document, keeps it in place.
        let stays = vec![lookup.clone(), unwind.clone(), doc! {"$match": {"j.name": "x"}}];
        assert_eq!(optimized(stays.clone()), stays);
        let stays = vec![lookup.clone(), doc! {"$match": {"$expr": {"$gt": [{"$size": "$j"}, 0]}}}];
        assert_eq!(optimized(stays.clone()), stays);
        let stays = vec![lookup.clone(), doc! {"$match": {"$expr": {"$eq": ["$$ROOT", {}]}}}];
        assert_eq!(optimized(stays.clone()), stays);
        let moves = vec![lookup.clone(), doc! {"$match": {"$expr": {"$eq": ["$n", 1]}}}];
        assert_eq!(optimized(moves), vec![doc! {"$match": {"$expr": {"$eq": ["$n", 1]}}}, lookup]);
    }

    #[test]
    fn adjacent_matches_merge() {
        let out = optimized(vec![doc! {"$match": {"a": 1}}, doc! {"$unwind": "$t"}, doc! {"$match": {"b": 2}}]);
        assert_eq!(out, vec![doc! {"$match": {"$and": [{"a": 1}, {"b": 2}]}}, doc! {"$unwind": "$t"}]);
    }
}
