//! `errInfo.details` for `$jsonSchema`, as mongod writes them:
//! `{operatorName: "$jsonSchema", schemaRulesNotSatisfied: [...]}` with one
//! entry per failed keyword (`properties` → `propertiesNotSatisfied`,
//! `required` → `missingProperties`, `bsonType` → `consideredType`...), in
//! the order mongod checks keywords: string and number keywords, array
//! keywords, object keywords, logic (`allOf`, `anyOf`, `oneOf`, `not`,
//! `enum`), and the type last. A keyword only reports about a value of the
//! kind it concerns; a wrong kind is the type keyword's error.
use super::explain::append_considered;
use crate::num::Num;
use crate::query::json_schema::{dependency_holds, first_duplicate, is_multiple, unordered_eq, within, Additional, Dependency, Items, JsonSchema, Kind, Schema};
use std::cmp::Ordering;
use crate::types;
use bson::{doc, Bson, Document};

pub(super) fn explain(schema: &JsonSchema, spec: &Bson, doc: &Document, inverted: bool) -> Document {
    if inverted {
        return doc! {"operatorName": "$jsonSchema", "reason": "schema matched"};
    }
    let root = &schema.root;
    if root.types.as_ref().is_some_and(|t| !t.value.allows_object()) {
        // Only objects are stored: such a schema matches nothing.
        return doc! {
            "operatorName": "$jsonSchema",
            "specifiedAs": {"$jsonSchema": spec.clone()},
            "reason": "expression always evaluates to false",
        };
    }
    let mut out = doc! {"operatorName": "$jsonSchema"};
    out.extend(root.annotations.clone());
    out.insert("schemaRulesNotSatisfied", top_errors(root, doc));
    out
}

fn top_errors(s: &Schema, doc: &Document) -> Vec<Bson> {
    let mut out = Vec::new();
    object_errors(s, doc, true, &mut out);
    logic_errors(s, &Val::Top(doc), &mut out);
    out
}

/// The value a (sub)schema is applied to: the root document, whose scalar,
/// array and type keywords mongod ignores, or a field's value.
enum Val<'a> {
    Top(&'a Document),
    Value(&'a Bson),
}

impl Val<'_> {
    fn matches(&self, s: &Schema) -> bool {
        match self {
            Val::Top(d) => s.matches_document(d, true),
            Val::Value(v) => s.matches_value(v),
        }
    }

    fn errors(&self, s: &Schema) -> Vec<Bson> {
        match self {
            Val::Top(d) => top_errors(s, d),
            Val::Value(v) => errors(s, v),
        }
    }
}

/// The errors of a non-root subschema for a present value.
fn errors(s: &Schema, v: &Bson) -> Vec<Bson> {
    let mut out = Vec::new();
    scalar_errors(s, v, &mut out);
    array_errors(s, v, &mut out);
    if let Bson::Document(d) = v {
        if s.restricts(Kind::Object) {
            object_errors(s, d, false, &mut out);
        }
    }
    logic_errors(s, &Val::Value(v), &mut out);
    if let Some(t) = &s.types {
        if !t.value.allows(v) {
            let keyword = t.spec.keys().next().map(String::as_str).unwrap_or("bsonType");
            out.push(Bson::Document(doc! {
                "operatorName": keyword,
                "specifiedAs": t.spec.clone(),
                "reason": "type did not match",
                "consideredValue": v.clone(),
                "consideredType": types::type_name(v),
            }));
        }
    }
    out
}

fn keyword(spec: &Document) -> &str {
    spec.keys().next().map(String::as_str).unwrap_or_default()
}

fn value_error(spec: &Document, reason: &str, v: &Bson) -> Bson {
    Bson::Document(doc! {"operatorName": keyword(spec), "specifiedAs": spec.clone(), "reason": reason, "consideredValue": v.clone()})
}

fn scalar_errors(s: &Schema, v: &Bson, out: &mut Vec<Bson>) {
    if s.scalar_keywords_hold(v) {
        return;
    }
    if let Bson::String(text) = v {
        let len = text.chars().count() as i64;
        if let Some(p) = s.pattern.as_ref().filter(|p| !p.value.is_match(text)) {
            out.push(value_error(&p.spec, "regular expression did not match", v));
        }
        for m in [s.max_length.as_ref().filter(|m| len > m.value), s.min_length.as_ref().filter(|m| len < m.value)].into_iter().flatten() {
            out.push(value_error(&m.spec, "specified string length was not satisfied", v));
        }
        return;
    }
    let Some(n) = Num::from_bson(v) else { return };
    if let Some(m) = s.multiple_of.as_ref().filter(|m| !is_multiple(n, m.value)) {
        out.push(value_error(&m.spec, "considered value is not a multiple of the specified value", v));
    }
    for (bound, want) in [(&s.maximum, Ordering::Less), (&s.minimum, Ordering::Greater)] {
        if let Some(m) = bound.as_ref().filter(|m| !within(v, &m.value.0, m.value.1, want)) {
            let name = if want == Ordering::Less { "maximum" } else { "minimum" };
            out.push(Bson::Document(doc! {"operatorName": name, "specifiedAs": m.spec.clone(), "reason": "comparison failed", "consideredValue": v.clone()}));
        }
    }
}

fn array_errors(s: &Schema, v: &Bson, out: &mut Vec<Bson>) {
    let Bson::Array(items) = v else { return };
    if s.array_keywords_hold(v) {
        return;
    }
    let len = items.len() as i64;
    for m in [s.min_items.as_ref().filter(|m| len < m.value), s.max_items.as_ref().filter(|m| len > m.value)].into_iter().flatten() {
        out.push(Bson::Document(doc! {
            "operatorName": keyword(&m.spec),
            "specifiedAs": m.spec.clone(),
            "reason": "array did not match specified length",
            "consideredValue": v.clone(),
            "numberOfItems": items.len() as i32,
        }));
    }
    if let Some(u) = s.unique_items.as_ref().filter(|u| u.value) {
        if let Some(dup) = first_duplicate(items) {
            out.push(Bson::Document(doc! {
                "operatorName": "uniqueItems",
                "specifiedAs": u.spec.clone(),
                "reason": "found a duplicate item",
                "consideredValue": v.clone(),
                "duplicatedValue": dup.clone(),
            }));
        }
    }
    if let Some(spec) = &s.items {
        match &spec.value {
            Items::All(schema) => {
                if let Some(i) = s.first_item_failure(items) {
                    let mut e = doc! {"operatorName": "items"};
                    e.extend(schema.annotations.clone());
                    e.insert("reason", "At least one item did not match the sub-schema");
                    e.insert("itemIndex", i as i32);
                    e.insert("details", errors(schema, &items[i]));
                    out.push(Bson::Document(e));
                }
            }
            Items::Each(schemas) => {
                let failing: Vec<Bson> = items
                    .iter()
                    .zip(schemas)
                    .enumerate()
                    .filter(|(_, (e, schema))| !schema.matches_value(e))
                    .map(|(i, (e, schema))| Bson::Document(doc! {"itemIndex": i as i64, "details": errors(schema, e)}))
                    .collect();
                if !failing.is_empty() {
                    out.push(Bson::Document(doc! {"operatorName": "items", "details": failing}));
                }
            }
        }
    }
    if let (Some(start), Some(spec)) = (s.additional_items_start(), &s.additional_items) {
        if let Some(i) = s.first_additional_item_failure(items) {
            match &spec.value {
                Additional::Allowed(_) => out.push(Bson::Document(doc! {
                    "operatorName": "additionalItems",
                    "specifiedAs": spec.spec.clone(),
                    "reason": "found additional items",
                    "additionalItems": items[start.min(items.len())..].to_vec(),
                })),
                Additional::Schema(schema) => {
                    let mut e = doc! {"operatorName": "additionalItems"};
                    e.extend(schema.annotations.clone());
                    e.insert("reason", "At least one additional item did not match the sub-schema");
                    e.insert("itemIndex", i as i32);
                    e.insert("details", errors(schema, &items[i]));
                    out.push(Bson::Document(e));
                }
            }
        }
    }
}

fn object_errors(s: &Schema, d: &Document, top: bool, out: &mut Vec<Bson>) {
    let mut properties = Vec::new();
    for (name, schema) in &s.properties {
        let Some(v) = d.get(name) else { continue };
        if schema.matches_value(v) {
            continue;
        }
        let details = errors(schema, v);
        if details.is_empty() {
            continue;
        }
        let mut e = doc! {"propertyName": name.as_str()};
        e.extend(schema.annotations.clone());
        e.insert("details", details);
        properties.push(Bson::Document(e));
    }
    if !properties.is_empty() {
        out.push(Bson::Document(doc! {"operatorName": "properties", "propertiesNotSatisfied": properties}));
    }
    if let Some(additional) = &s.additional_properties {
        let names: Vec<&String> = d.keys().filter(|k| s.is_additional(k)).collect();
        match &additional.value {
            Additional::Allowed(false) if !names.is_empty() => out.push(Bson::Document(doc! {
                "operatorName": "additionalProperties",
                "specifiedAs": additional.spec.clone(),
                "additionalProperties": names.iter().map(|n| Bson::String((*n).clone())).collect::<Vec<_>>(),
            })),
            Additional::Schema(schema) => {
                if let Some((name, v)) = names.iter().filter_map(|n| d.get(n.as_str()).map(|v| (*n, v))).find(|(_, v)| !schema.matches_value(v)) {
                    let mut e = doc! {"operatorName": "additionalProperties"};
                    e.extend(schema.annotations.clone());
                    e.insert("reason", "at least one additional property did not match the subschema");
                    e.insert("failingProperty", name.as_str());
                    e.insert("details", errors(schema, v));
                    out.push(Bson::Document(e));
                }
            }
            Additional::Allowed(_) => {}
        }
    }
    let mut patterns = Vec::new();
    for p in &s.pattern_properties {
        if let Some((name, v)) = d.iter().find(|(k, v)| p.regex.is_match(k) && !p.schema.matches_value(v)) {
            let mut e = doc! {"propertyName": name.as_str()};
            e.extend(p.schema.annotations.clone());
            e.insert("regexMatched", p.source.as_str());
            e.insert("details", errors(&p.schema, v));
            patterns.push(Bson::Document(e));
        }
    }
    if !patterns.is_empty() {
        out.push(Bson::Document(doc! {"operatorName": "patternProperties", "details": patterns}));
    }
    if let Some(required) = &s.required {
        let mut missing: Vec<&String> = required.value.iter().filter(|n| !d.contains_key(n.as_str())).collect();
        missing.sort();
        if !missing.is_empty() {
            out.push(Bson::Document(doc! {
                "operatorName": "required",
                "specifiedAs": required.spec.clone(),
                "missingProperties": missing.iter().map(|n| Bson::String((*n).clone())).collect::<Vec<_>>(),
            }));
        }
    }
    let n = d.len() as i64;
    for m in [s.min_properties.as_ref().filter(|m| n < m.value), s.max_properties.as_ref().filter(|m| n > m.value)].into_iter().flatten() {
        out.push(Bson::Document(doc! {
            "operatorName": keyword(&m.spec),
            "specifiedAs": m.spec.clone(),
            "reason": "specified number of properties was not satisfied",
            "numberOfProperties": d.len() as i32,
        }));
    }
    let mut failing = Vec::new();
    for (name, dependency) in &s.dependencies {
        if !d.contains_key(name) || dependency_holds(dependency, d) {
            continue;
        }
        let mut e = doc! {"conditionalProperty": name.as_str()};
        match dependency {
            Dependency::Properties(names) => {
                let missing: Vec<Bson> = names.iter().filter(|n| !d.contains_key(n.as_str())).map(|n| Bson::String(n.clone())).collect();
                e.insert("missingProperties", missing);
            }
            Dependency::Schema(schema) => {
                let details = if top { top_errors(schema, d) } else { errors(schema, &Bson::Document(d.clone())) };
                e.insert("details", details);
            }
        }
        failing.push(Bson::Document(e));
    }
    if !failing.is_empty() {
        out.push(Bson::Document(doc! {"operatorName": "dependencies", "failingDependencies": failing}));
    }
}

fn indexed(schemas: &[Schema], v: &Val, which: impl Fn(usize, bool) -> bool) -> Vec<Bson> {
    schemas
        .iter()
        .enumerate()
        .filter(|(i, s)| which(*i, v.matches(s)))
        .map(|(i, s)| {
            let mut e = doc! {"index": i as i32};
            e.extend(s.annotations.clone());
            e.insert("details", v.errors(s));
            Bson::Document(e)
        })
        .collect()
}

fn logic_errors(s: &Schema, v: &Val, out: &mut Vec<Bson>) {
    if !s.all_of.is_empty() {
        let failing = indexed(&s.all_of, v, |_, matched| !matched);
        if !failing.is_empty() {
            out.push(Bson::Document(doc! {"operatorName": "allOf", "schemasNotSatisfied": failing}));
        }
    }
    if !s.any_of.is_empty() && !s.any_of.iter().any(|c| v.matches(c)) {
        out.push(Bson::Document(doc! {"operatorName": "anyOf", "schemasNotSatisfied": indexed(&s.any_of, v, |_, _| true)}));
    }
    if !s.one_of.is_empty() {
        let matching: Vec<i32> = s.one_of.iter().enumerate().filter(|(_, c)| v.matches(c)).map(|(i, _)| i as i32).collect();
        if matching.is_empty() {
            out.push(Bson::Document(doc! {"operatorName": "oneOf", "schemasNotSatisfied": indexed(&s.one_of, v, |_, _| true)}));
        } else if matching.len() > 1 {
            out.push(Bson::Document(doc! {"operatorName": "oneOf", "reason": "more than one subschema matched", "matchingSchemaIndexes": matching}));
        }
    }
    if s.not.as_ref().is_some_and(|n| v.matches(n)) {
        out.push(Bson::Document(doc! {"operatorName": "not", "reason": "child expression matched"}));
    }
    if let Some(e) = &s.enumeration {
        match v {
            Val::Value(value) => {
                if !e.value.iter().any(|x| unordered_eq(x, value)) {
                    out.push(value_error(&e.spec, "value was not found in enum", value));
                }
            }
            Val::Top(d) => {
                let objects = e.value.iter().any(|x| matches!(x, Bson::Document(_)));
                let mut err = doc! {"operatorName": "enum", "specifiedAs": e.spec.clone()};
                if !objects {
                    err.insert("reason", "expression always evaluates to false");
                    out.push(Bson::Document(err));
                } else if !s.matches_document(d, true) && !e.value.iter().any(|x| unordered_eq(x, &Bson::Document((*d).clone()))) {
                    err.insert("reason", "value was not found in enum");
                    let values = vec![Bson::Document((*d).clone())];
                    append_considered(&mut err, &values);
                    out.push(Bson::Document(err));
                }
            }
        }
    }
}
