//! Running a `$text` query: the filter is split into `$text` and the rest,
//! the text index yields the documents holding a search term, and each is
//! checked and scored.
use super::language::Language;
use super::query::{self, TextQuery};
use super::spec::TextSpec;
use crate::catalog::{CollectionMeta, IndexSpec};
use crate::error::{CmdResult, CommandError};
use crate::keyenc;
use crate::storage::Tables;
use bson::{Bson, Document};
use djongo_engine::Filter;
use std::collections::BTreeSet;
use std::ops::Bound;

/// How deep `split` looks for a misplaced `$text`.
const MAX_FILTER_DEPTH: usize = 200;

/// A filter with a `$text` clause, taken apart.
#[derive(Debug, Clone)]
pub struct TextFilter {
    pub query: TextQuery,
    /// The filter without `$text`.
    pub rest: Document,
}

fn misplaced() -> CommandError {
    CommandError::bad_value("$text is allowed only at the top level of a query, or in a top-level $and")
}

impl TextFilter {
    /// The `$text` clause of `filter` (top level, or a clause of a
    /// top-level `$and`), or `None` when it has none. A `$text` anywhere
    /// else, or more than one, is MongoDB's BadValue.
    pub fn split(filter: &Document) -> CmdResult<Option<TextFilter>> {
        if !mentions_text(filter, 0) {
            return Ok(None);
        }
        let mut found: Option<TextQuery> = None;
        let mut take = |arg: &Bson| -> CmdResult<()> {
            if found.is_some() {
                return Err(CommandError::bad_value("Too many text expressions"));
            }
            found = Some(TextQuery::parse(arg)?);
            Ok(())
        };
        let mut rest = Document::new();
        for (k, v) in filter {
            match (k.as_str(), v) {
                ("$text", arg) => take(arg)?,
                ("$and", Bson::Array(clauses)) => {
                    let mut kept = Vec::new();
                    for clause in clauses {
                        match clause {
                            Bson::Document(c) if c.contains_key("$text") => {
                                let mut c = c.clone();
                                if let Some(arg) = c.remove("$text") {
                                    take(&arg)?;
                                }
                                if mentions_text(&c, 0) {
                                    return Err(misplaced());
                                }
                                if !c.is_empty() {
                                    kept.push(Bson::Document(c));
                                }
                            }
                            Bson::Document(c) if mentions_text(c, 0) => return Err(misplaced()),
                            other => kept.push(other.clone()),
                        }
                    }
                    if !kept.is_empty() {
                        rest.insert("$and", kept);
                    }
                }
                (_, Bson::Document(d)) if mentions_text(d, 1) => return Err(misplaced()),
                (_, Bson::Array(items)) if items.iter().any(|i| matches!(i, Bson::Document(d) if mentions_text(d, 1))) => return Err(misplaced()),
                _ => {
                    rest.insert(k.clone(), v.clone());
                }
            }
        }
        Ok(found.map(|query| TextFilter { query, rest }))
    }
}

/// Whether `$text` appears anywhere in `d`.
fn mentions_text(d: &Document, depth: usize) -> bool {
    if depth > MAX_FILTER_DEPTH {
        return false;
    }
    d.iter().any(|(k, v)| {
        k == "$text"
            || match v {
                Bson::Document(sub) => mentions_text(sub, depth + 1),
                Bson::Array(items) => items.iter().any(|i| matches!(i, Bson::Document(sub) if mentions_text(sub, depth + 1))),
                _ => false,
            }
    })
}

/// The collection's text index, or MongoDB's IndexNotFound.
pub fn text_index(meta: &CollectionMeta) -> CmdResult<(&IndexSpec, &TextSpec)> {
    meta.indexes
        .iter()
        .filter(|ix| !ix.is_hidden())
        .find_map(|ix| ix.text.as_deref().map(|t| (ix, t)))
        .ok_or_else(|| CommandError::new(27, "IndexNotFound", "text index required for $text query"))
}

/// The values a compound text index's prefix fields must equal: the filter
/// has to fix each one.
fn prefix_values(spec: &TextSpec, rest: &Document) -> CmdResult<Vec<Bson>> {
    spec.prefix
        .iter()
        .map(|field| {
            let value = match rest.get(field) {
                Some(Bson::Document(d)) if d.len() == 1 && d.contains_key("$eq") => d.get("$eq").cloned(),
                Some(Bson::Document(d)) if d.keys().any(|k| k.starts_with('$')) => None,
                Some(Bson::Array(_)) | Some(Bson::RegularExpression(_)) => None,
                Some(v) => Some(v.clone()),
                None => None,
            };
            value.ok_or_else(|| {
                CommandError::bad_value(format!(
                    "error processing query: planner returned error :: caused by :: failed to use text index to satisfy $text query (if text index is compound, are equality predicates given for all prefix fields?): need an equality filter on: {field}"
                ))
            })
        })
        .collect()
}

/// One document a `$text` query selects, with its score.
pub struct Scored {
    pub doc: Document,
    pub score: f64,
}

/// What the text index and the checks select for `filter`, in `_id` order.
pub fn run(tables: &Tables<'_>, meta: &CollectionMeta, filter: &TextFilter) -> CmdResult<Vec<Scored>> {
    Ok(run_counted(tables, meta, filter)?.0)
}

/// `run`, with how many index entries and documents it examined.
pub fn run_counted(tables: &Tables<'_>, meta: &CollectionMeta, filter: &TextFilter) -> CmdResult<(Vec<Scored>, (u64, u64))> {
    let (ix, spec) = text_index(meta)?;
    let language: Language = filter.query.language.unwrap_or(spec.default_language);
    let parsed = filter.query.parse_search(language);
    let prefix = prefix_values(spec, &filter.rest)?;
    let rest = Filter::parse(&filter.rest)?;
    let mut ids: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut keys_examined = 0u64;
    for term in &parsed.terms_for_bounds {
        let mut values = prefix.clone();
        values.push(Bson::String(term.clone()));
        let start = keyenc::encode_key(&values);
        let end = keyenc::prefix_end(&start);
        let end_bound = match &end {
            Some(e) => Bound::Excluded(e.as_slice()),
            None => Bound::Unbounded,
        };
        let mut entries = tables.index_entries(meta, ix, Bound::Included(start.as_slice()), end_bound, false)?;
        while let Some(id) = entries.next_id() {
            keys_examined += 1;
            ids.insert(id?);
        }
    }
    let docs_examined = ids.len() as u64;
    let mut out = Vec::new();
    for id in ids {
        let Some(doc) = tables.fetch_document(meta, &id, None)? else { continue };
        if !rest.matches(&doc)? || !query::matches(spec, &filter.query, &parsed, &doc)? {
            continue;
        }
        let score = query::score(spec, &parsed, &doc)?;
        out.push(Scored { doc, score });
    }
    Ok((out, (keys_examined, docs_examined)))
}

/// What a query with `$text` returns, sorted (a `{$meta: "textScore"}` sort
/// key reads the score), skipped and limited. With `keep_score`, each
/// document carries its score in `meta::SCORE_FIELD` for the stages that
/// read it; without, documents are as stored (for counts, updates, deletes).
pub fn select(
    tables: &Tables<'_>,
    meta: &CollectionMeta,
    filter: &TextFilter,
    sort: Option<&Document>,
    skip: usize,
    limit: Option<usize>,
    keep_score: bool,
) -> CmdResult<Vec<Document>> {
    let mut docs: Vec<Document> = run(tables, meta, filter)?
        .into_iter()
        .map(|scored| {
            let mut doc = scored.doc;
            doc.insert(super::meta::SCORE_FIELD, Bson::Double(scored.score));
            doc
        })
        .collect();
    if let Some(sort) = sort {
        let (sort, _) = super::meta::rewrite_sort(sort)?;
        djongo_engine::sort::SortSpec::parse(&sort)?.sort(&mut docs);
    }
    let mut docs: Vec<Document> = docs.into_iter().skip(skip).collect();
    if let Some(limit) = limit {
        docs.truncate(limit);
    }
    if !keep_score {
        docs.iter_mut().for_each(super::meta::strip);
    }
    Ok(docs)
}

/// The index keys of `doc` in text index `spec`: one per distinct term,
/// after the values of the prefix fields.
pub fn index_keys(spec: &TextSpec, doc: &Document) -> CmdResult<Vec<Vec<Bson>>> {
    let mut prefix = Vec::with_capacity(spec.prefix.len());
    for field in &spec.prefix {
        let mut values = Vec::new();
        crate::index::collect_document_path(doc, &field.split('.').collect::<Vec<_>>(), crate::index::EmptyArray::Undefined, &mut values);
        match values.len() {
            0 => prefix.push(Bson::Null),
            1 => prefix.extend(values),
            _ => {
                return Err(CommandError::with_code(16675, format!("cannot have a multi-key as a prefix to a text index: field {field}")));
            }
        }
    }
    Ok(spec
        .term_scores(doc)?
        .into_keys()
        .map(|term| {
            let mut key = prefix.clone();
            key.push(Bson::String(term));
            key
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn splits_text_from_the_rest() {
        let f = TextFilter::split(&doc! {"$text": {"$search": "coffee"}, "views": {"$gt": 1}}).unwrap().unwrap();
        assert_eq!(f.query.search, "coffee");
        assert_eq!(f.rest, doc! {"views": {"$gt": 1}});
        let f = TextFilter::split(&doc! {"$and": [{"$text": {"$search": "x"}}, {"a": 1}]}).unwrap().unwrap();
        assert_eq!(f.rest, doc! {"$and": [{"a": 1}]});
        assert!(TextFilter::split(&doc! {"a": 1}).unwrap().is_none());
    }

    #[test]
    fn misplaced_text_is_refused() {
        let err = |d: Document| TextFilter::split(&d).unwrap_err().message;
        assert!(err(doc! {"$or": [{"$text": {"$search": "x"}}, {"a": 1}]}).contains("top level"));
        assert!(err(doc! {"a": {"$elemMatch": {"$text": {"$search": "x"}}}}).contains("top level"));
        assert_eq!(err(doc! {"$text": {"$search": "x"}, "$and": [{"$text": {"$search": "y"}}]}), "Too many text expressions");
    }
}
