//! `$jsonSchema`: MongoDB's dialect of JSON Schema draft 4, as a query
//! operator and as (part of) a collection validator.
//!
//! The keywords and their meaning follow mongod's `json_schema_parser.cpp`:
//! a keyword about one kind of value (`maxLength` for strings, `minItems`
//! for arrays, `properties` for objects...) holds for values of any other
//! kind, a property that is absent satisfies its subschema (only `required`
//! asks for presence), `bsonType` takes BSON type aliases and `type` JSON
//! Schema's (without `integer`), and the keywords mongod refuses (`$ref`,
//! `format`, `default`...) are refused with its errors. Property names are
//! plain field names here; mongod would read a dotted one as a path.
//!
//! The parsed schema keeps every keyword's specification, so that
//! `validate::schema_details` can explain a failure the way mongod does.
use crate::compare::{cmp_bson, type_rank};
use crate::num::{self, Num};
use crate::{regex_util, types, EngineError, Result};
use bson::{Bson, Document};
use regex::Regex;
use std::cmp::Ordering;

/// Deepest nesting of subschemas accepted; deeper specifications are
/// refused rather than risk the stack.
pub const MAX_SCHEMA_DEPTH: usize = 100;

/// Keywords mongod knows but does not implement.
const UNSUPPORTED: &[&str] = &["$ref", "$schema", "default", "definitions", "format", "id"];

const KEYWORDS: &[&str] = &[
    "additionalItems",
    "additionalProperties",
    "allOf",
    "anyOf",
    "bsonType",
    "dependencies",
    "description",
    "encrypt",
    "encryptMetadata",
    "enum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "items",
    "maxItems",
    "maxLength",
    "maxProperties",
    "maximum",
    "minItems",
    "minLength",
    "minProperties",
    "minimum",
    "multipleOf",
    "not",
    "oneOf",
    "pattern",
    "patternProperties",
    "properties",
    "required",
    "title",
    "type",
    "uniqueItems",
];

/// A parsed `$jsonSchema` operand.
#[derive(Debug, Clone)]
pub struct JsonSchema {
    pub(crate) root: Schema,
}

/// The types a `type`/`bsonType` keyword allows.
#[derive(Debug, Clone)]
pub(crate) struct TypeSet {
    pub all_numbers: bool,
    pub codes: Vec<i32>,
}

impl TypeSet {
    pub fn allows(&self, v: &Bson) -> bool {
        (self.all_numbers && types::is_number(v)) || self.codes.contains(&types::type_code(v))
    }

    pub fn allows_object(&self) -> bool {
        self.codes.contains(&3)
    }

    /// The one type allowed, if exactly one (the "number" alias counts as one).
    fn single(&self) -> Option<Single> {
        match (self.all_numbers, self.codes.as_slice()) {
            (true, []) => Some(Single::Number),
            (false, [code]) => Some(Single::Code(*code)),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Single {
    Number,
    Code(i32),
}

/// A keyword together with its specification (`{keyword: value}`, the
/// `specifiedAs` of an error).
#[derive(Debug, Clone)]
pub(crate) struct Spec<T> {
    pub value: T,
    pub spec: Document,
}

#[derive(Debug, Clone)]
pub(crate) enum Items {
    /// `items: {schema}`: every element.
    All(Box<Schema>),
    /// `items: [schemas]`: element i against schema i.
    Each(Vec<Schema>),
}

#[derive(Debug, Clone)]
pub(crate) enum Additional {
    Allowed(bool),
    Schema(Box<Schema>),
}

#[derive(Debug, Clone)]
pub(crate) enum Dependency {
    Properties(Vec<String>),
    Schema(Box<Schema>),
}

#[derive(Debug, Clone)]
pub(crate) struct PatternProperty {
    pub source: String,
    pub regex: Regex,
    pub schema: Schema,
}

/// One (sub)schema. A keyword that cannot apply to the value's kind (a
/// string keyword given a number) is satisfied, as in JSON Schema.
#[derive(Debug, Clone, Default)]
pub(crate) struct Schema {
    /// `title` and `description`, reported beside errors.
    pub annotations: Document,
    /// The `type` or `bsonType` keyword.
    pub types: Option<Spec<TypeSet>>,
    // Strings.
    pub pattern: Option<Spec<Regex>>,
    pub max_length: Option<Spec<i64>>,
    pub min_length: Option<Spec<i64>>,
    // Numbers.
    pub multiple_of: Option<Spec<Num>>,
    /// `maximum` (with `exclusiveMaximum` in the spec when given).
    pub maximum: Option<Spec<(Bson, bool)>>,
    pub minimum: Option<Spec<(Bson, bool)>>,
    // Arrays.
    pub min_items: Option<Spec<i64>>,
    pub max_items: Option<Spec<i64>>,
    pub unique_items: Option<Spec<bool>>,
    pub items: Option<Spec<Items>>,
    pub additional_items: Option<Spec<Additional>>,
    // Objects.
    pub properties: Vec<(String, Schema)>,
    pub pattern_properties: Vec<PatternProperty>,
    pub additional_properties: Option<Spec<Additional>>,
    pub required: Option<Spec<Vec<String>>>,
    pub min_properties: Option<Spec<i64>>,
    pub max_properties: Option<Spec<i64>>,
    pub dependencies: Vec<(String, Dependency)>,
    // Logic.
    pub all_of: Vec<Schema>,
    pub any_of: Vec<Schema>,
    pub one_of: Vec<Schema>,
    pub not: Option<Box<Schema>>,
    pub enumeration: Option<Spec<Vec<Bson>>>,
}

impl JsonSchema {
    pub fn parse(spec: &Bson) -> Result<JsonSchema> {
        let Bson::Document(d) = spec else {
            return Err(EngineError::type_mismatch("$jsonSchema must be an object"));
        };
        Ok(JsonSchema { root: Schema::parse(d, 0)? })
    }

    /// Whether a document satisfies the schema.
    pub fn matches(&self, doc: &Document) -> bool {
        self.root.matches_document(doc, true)
    }
}

fn keyword_error(code: i32, name: &'static str, keyword: &str, what: &str) -> EngineError {
    EngineError::new(code, name, format!("$jsonSchema keyword '{keyword}' {what}"))
}

fn failed_to_parse(message: impl Into<String>) -> EngineError {
    EngineError::new(9, "FailedToParse", message)
}

fn single(keyword: &str, value: &Bson) -> Document {
    let mut d = Document::new();
    d.insert(keyword, value.clone());
    d
}

/// A non-negative whole number (`maxLength: 3`), as mongod reads one.
fn non_negative(keyword: &str, value: &Bson) -> Result<i64> {
    let Some(n) = Num::from_bson(value) else {
        return Err(EngineError::type_mismatch(format!("Expected a number in: {keyword}: {value}")));
    };
    let Some(i) = n.to_i64_exact() else {
        return Err(failed_to_parse(format!("Expected an integer: {keyword}: {value}")));
    };
    if i < 0 {
        return Err(failed_to_parse(format!("Expected a positive number in: {keyword}: {value}")));
    }
    Ok(i)
}

fn length(d: &Document, keyword: &str) -> Result<Option<Spec<i64>>> {
    match d.get(keyword) {
        None => Ok(None),
        Some(v) => Ok(Some(Spec { value: non_negative(keyword, v)?, spec: single(keyword, v) })),
    }
}

fn dependency_names(name: &str, list: &[Bson]) -> Result<Vec<String>> {
    if list.is_empty() {
        return Err(failed_to_parse(format!("property '{name}' in $jsonSchema keyword 'dependencies' cannot be an empty array")));
    }
    let mut names: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        let Bson::String(p) = item else {
            return Err(EngineError::type_mismatch(format!(
                "array '{name}' in $jsonSchema keyword 'dependencies' can only contain strings, but found element of type: {}",
                types::type_name(item)
            )));
        };
        if names.contains(p) {
            return Err(failed_to_parse(format!("array '{name}' in $jsonSchema keyword 'dependencies' contains duplicate element: {p}")));
        }
        names.push(p.clone());
    }
    Ok(names)
}

fn type_set(keyword: &str, value: &Bson) -> Result<TypeSet> {
    let names: Vec<&str> = match value {
        Bson::String(s) => vec![s.as_str()],
        Bson::Array(items) => {
            let mut names = Vec::with_capacity(items.len());
            for item in items {
                let Bson::String(s) = item else {
                    return Err(keyword_error(14, "TypeMismatch", keyword, "array elements must be strings"));
                };
                if names.contains(&s.as_str()) {
                    return Err(failed_to_parse(format!("$jsonSchema keyword '{keyword}' has duplicate value: {s}")));
                }
                names.push(s.as_str());
            }
            names
        }
        _ => return Err(keyword_error(14, "TypeMismatch", keyword, "must be either a string or an array of strings")),
    };
    let mut set = TypeSet { all_numbers: false, codes: Vec::new() };
    for name in names {
        if name == "integer" {
            return Err(failed_to_parse("$jsonSchema type 'integer' is not currently supported."));
        }
        let code = if keyword == "type" {
            match name {
                "array" => Some(4),
                "boolean" => Some(8),
                "null" => Some(10),
                "number" => None,
                "object" => Some(3),
                "string" => Some(2),
                _ => return Err(EngineError::bad_value(format!("Unknown type name alias: {name}"))),
            }
        } else {
            types::code_for_name(name).ok_or_else(|| EngineError::bad_value(format!("Unknown type name alias: {name}")))?
        };
        match code {
            Some(c) => set.codes.push(c),
            None => set.all_numbers = true,
        }
    }
    if set.codes.is_empty() && !set.all_numbers {
        return Err(failed_to_parse(format!("$jsonSchema keyword '{keyword}' must name at least one type")));
    }
    Ok(set)
}

fn subschemas(keyword: &str, value: &Bson, depth: usize) -> Result<Vec<Schema>> {
    let Bson::Array(items) = value else {
        return Err(keyword_error(14, "TypeMismatch", keyword, "must be an array"));
    };
    if items.is_empty() {
        return Err(keyword_error(2, "BadValue", keyword, "must be a non-empty array"));
    }
    items
        .iter()
        .map(|item| match item {
            Bson::Document(d) => Schema::parse(d, depth + 1),
            other => Err(keyword_error(
                14,
                "TypeMismatch",
                keyword,
                &format!("must be an array of objects, but found an element of type {}", types::type_name(other)),
            )),
        })
        .collect()
}

fn additional(keyword: &str, value: &Bson, depth: usize) -> Result<Additional> {
    match value {
        Bson::Boolean(b) => Ok(Additional::Allowed(*b)),
        Bson::Document(d) => Ok(Additional::Schema(Box::new(Schema::parse(d, depth + 1)?))),
        other => Err(keyword_error(
            14,
            "TypeMismatch",
            keyword,
            &format!("must be either an object or a boolean, but got a {}", types::type_name(other)),
        )),
    }
}

fn names_array(keyword: &str, value: &Bson) -> Result<Vec<String>> {
    let Bson::Array(items) = value else {
        return Err(keyword_error(14, "TypeMismatch", keyword, &format!("must be an array, but found an element of type {}", types::type_name(value))));
    };
    let mut names: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Bson::String(s) = item else {
            return Err(keyword_error(
                14,
                "TypeMismatch",
                keyword,
                &format!("must be an array of strings, but found an element of type: {}", types::type_name(item)),
            ));
        };
        if names.contains(s) {
            return Err(keyword_error(9, "FailedToParse", keyword, "array cannot contain duplicate values"));
        }
        names.push(s.clone());
    }
    if names.is_empty() {
        return Err(keyword_error(9, "FailedToParse", keyword, "cannot be an empty array"));
    }
    Ok(names)
}

impl Schema {
    /// Parses one (sub)schema. Each keyword family is parsed by a function
    /// of its own, which keeps the frames of this recursion small.
    pub(crate) fn parse(d: &Document, depth: usize) -> Result<Schema> {
        if depth > MAX_SCHEMA_DEPTH {
            return Err(EngineError::new(15, "Overflow", format!("$jsonSchema is nested more than {MAX_SCHEMA_DEPTH} levels deep")));
        }
        let mut s = Schema::default();
        s.parse_general(d)?;
        s.parse_scalar(d)?;
        s.parse_array(d, depth)?;
        s.parse_object(d, depth)?;
        s.parse_logic(d, depth)?;
        Ok(s)
    }

    fn parse_general(&mut self, d: &Document) -> Result<()> {
        for (k, _) in d {
            if !KEYWORDS.contains(&k.as_str()) {
                if UNSUPPORTED.contains(&k.as_str()) {
                    return Err(failed_to_parse(format!("$jsonSchema keyword '{k}' is not currently supported")));
                }
                return Err(failed_to_parse(format!("Unknown $jsonSchema keyword: {k}")));
            }
        }
        for k in ["description", "title"] {
            if let Some(v) = d.get(k) {
                let Bson::String(_) = v else {
                    return Err(keyword_error(14, "TypeMismatch", k, "must be of type string"));
                };
                self.annotations.insert(k, v.clone());
            }
        }
        if d.contains_key("encrypt") || d.contains_key("encryptMetadata") {
            return Err(EngineError::unsupported("$jsonSchema keywords 'encrypt' and 'encryptMetadata' (client-side field level encryption)"));
        }
        match (d.get("type"), d.get("bsonType")) {
            (Some(_), Some(_)) => return Err(failed_to_parse("Cannot specify both $jsonSchema keywords 'type' and 'bsonType'")),
            (Some(v), None) => self.types = Some(Spec { value: type_set("type", v)?, spec: single("type", v) }),
            (None, Some(v)) => self.types = Some(Spec { value: type_set("bsonType", v)?, spec: single("bsonType", v) }),
            (None, None) => {}
        }
        Ok(())
    }

    fn parse_scalar(&mut self, d: &Document) -> Result<()> {
        if let Some(v) = d.get("pattern") {
            let Bson::String(p) = v else {
                return Err(keyword_error(14, "TypeMismatch", "pattern", "must be a string"));
            };
            self.pattern = Some(Spec { value: linear_pattern("pattern", p)?, spec: single("pattern", v) });
        }
        self.max_length = length(d, "maxLength")?;
        self.min_length = length(d, "minLength")?;
        if let Some(v) = d.get("multipleOf") {
            let Some(n) = Num::from_bson(v) else {
                return Err(keyword_error(14, "TypeMismatch", "multipleOf", "must be a number"));
            };
            if n.is_nan() || num::cmp_num(n, Num::Int(0)) != Ordering::Greater {
                return Err(keyword_error(9, "FailedToParse", "multipleOf", "must have a positive value"));
            }
            self.multiple_of = Some(Spec { value: n, spec: single("multipleOf", v) });
        }
        self.maximum = bound(d, "maximum", "exclusiveMaximum")?;
        self.minimum = bound(d, "minimum", "exclusiveMinimum")?;
        Ok(())
    }

    fn parse_array(&mut self, d: &Document, depth: usize) -> Result<()> {
        self.min_items = length(d, "minItems")?;
        self.max_items = length(d, "maxItems")?;
        if let Some(v) = d.get("uniqueItems") {
            let Bson::Boolean(b) = v else {
                return Err(keyword_error(14, "TypeMismatch", "uniqueItems", "must be a boolean"));
            };
            self.unique_items = Some(Spec { value: *b, spec: single("uniqueItems", v) });
        }
        if let Some(v) = d.get("items") {
            let items = match v {
                Bson::Document(sub) => Items::All(Box::new(Schema::parse(sub, depth + 1)?)),
                Bson::Array(list) => {
                    let mut each = Vec::with_capacity(list.len());
                    for item in list {
                        let Bson::Document(sub) = item else {
                            return Err(keyword_error(
                                14,
                                "TypeMismatch",
                                "items",
                                &format!("requires that each element of the array is an object, but found a {}", types::type_name(item)),
                            ));
                        };
                        each.push(Schema::parse(sub, depth + 1)?);
                    }
                    Items::Each(each)
                }
                other => {
                    return Err(keyword_error(14, "TypeMismatch", "items", &format!("must be an array or an object, not {}", types::type_name(other))));
                }
            };
            self.items = Some(Spec { value: items, spec: single("items", v) });
        }
        if let Some(v) = d.get("additionalItems") {
            self.additional_items = Some(Spec { value: additional("additionalItems", v, depth)?, spec: single("additionalItems", v) });
        }
        Ok(())
    }

    fn parse_object(&mut self, d: &Document, depth: usize) -> Result<()> {
        if let Some(v) = d.get("required") {
            self.required = Some(Spec { value: names_array("required", v)?, spec: single("required", v) });
        }
        if let Some(v) = d.get("properties") {
            let Bson::Document(props) = v else {
                return Err(keyword_error(14, "TypeMismatch", "properties", "must be an object"));
            };
            for (name, sub) in props {
                let Bson::Document(sub) = sub else {
                    return Err(EngineError::type_mismatch(format!("Nested schema for $jsonSchema property '{name}' must be an object")));
                };
                self.properties.push((name.clone(), Schema::parse(sub, depth + 1)?));
            }
        }
        if let Some(v) = d.get("patternProperties") {
            let Bson::Document(patterns) = v else {
                return Err(keyword_error(14, "TypeMismatch", "patternProperties", "must be an object"));
            };
            for (source, sub) in patterns {
                let Bson::Document(sub) = sub else {
                    return Err(EngineError::type_mismatch(format!(
                        "$jsonSchema keyword 'patternProperties' has property '{source}' which is not an object"
                    )));
                };
                self.pattern_properties.push(PatternProperty {
                    source: source.clone(),
                    regex: linear_pattern("patternProperties", source)?,
                    schema: Schema::parse(sub, depth + 1)?,
                });
            }
        }
        if let Some(v) = d.get("additionalProperties") {
            let value = match v {
                Bson::Boolean(_) | Bson::Document(_) => additional("additionalProperties", v, depth)?,
                _ => return Err(keyword_error(14, "TypeMismatch", "additionalProperties", "must be an object or a boolean")),
            };
            self.additional_properties = Some(Spec { value, spec: single("additionalProperties", v) });
        }
        self.min_properties = length(d, "minProperties")?;
        self.max_properties = length(d, "maxProperties")?;
        if let Some(v) = d.get("dependencies") {
            let Bson::Document(deps) = v else {
                return Err(keyword_error(14, "TypeMismatch", "dependencies", "must be an object"));
            };
            for (name, dep) in deps {
                let dependency = match dep {
                    Bson::Document(sub) => Dependency::Schema(Box::new(Schema::parse(sub, depth + 1)?)),
                    Bson::Array(list) => Dependency::Properties(dependency_names(name, list)?),
                    // JSON Schema annotations are allowed among the dependencies.
                    Bson::String(_) if name == "title" || name == "description" => continue,
                    _ => {
                        return Err(EngineError::type_mismatch(format!(
                            "property '{name}' in $jsonSchema keyword 'dependencies' must be either an object or an array"
                        )));
                    }
                };
                self.dependencies.push((name.clone(), dependency));
            }
        }
        Ok(())
    }

    fn parse_logic(&mut self, d: &Document, depth: usize) -> Result<()> {
        if let Some(v) = d.get("allOf") {
            self.all_of = subschemas("allOf", v, depth)?;
        }
        if let Some(v) = d.get("anyOf") {
            self.any_of = subschemas("anyOf", v, depth)?;
        }
        if let Some(v) = d.get("oneOf") {
            self.one_of = subschemas("oneOf", v, depth)?;
        }
        if let Some(v) = d.get("not") {
            let Bson::Document(sub) = v else {
                return Err(keyword_error(14, "TypeMismatch", "not", &format!("must be an object, but found an element of type {}", types::type_name(v))));
            };
            self.not = Some(Box::new(Schema::parse(sub, depth + 1)?));
        }
        if let Some(v) = d.get("enum") {
            let Bson::Array(values) = v else {
                return Err(keyword_error(14, "TypeMismatch", "enum", &format!("must be an array, but found an element of type {}", types::type_name(v))));
            };
            if values.is_empty() {
                return Err(keyword_error(9, "FailedToParse", "enum", "cannot be an empty array"));
            }
            for (i, a) in values.iter().enumerate() {
                if values[..i].iter().any(|b| unordered_eq(a, b)) {
                    return Err(keyword_error(9, "FailedToParse", "enum", "array cannot contain duplicate values."));
                }
            }
            self.enumeration = Some(Spec { value: values.clone(), spec: single("enum", v) });
        }
        Ok(())
    }

    /// Whether a restriction keyword about values of `kind` takes effect:
    /// not when `type` names a single other type (mongod drops it then).
    pub(crate) fn restricts(&self, kind: Kind) -> bool {
        match self.types.as_ref().and_then(|t| t.value.single()) {
            None => true,
            Some(Single::Number) => kind == Kind::Number,
            Some(Single::Code(code)) => kind.has_code(code),
        }
    }

    /// The root of a `$jsonSchema`: the document itself. A schema whose
    /// type excludes objects matches nothing, since only objects are stored.
    pub(crate) fn matches_document(&self, doc: &Document, top: bool) -> bool {
        if let Some(t) = &self.types {
            if !t.value.allows_object() {
                return false;
            }
        }
        if top {
            // Scalar and array keywords cannot apply to a document.
            return self.object_keywords_hold(doc)
                && self.logic_holds(|s| s.matches_document(doc, true))
                && self.enumeration.as_ref().is_none_or(|e| {
                    let objects: Vec<&Bson> = e.value.iter().filter(|v| matches!(v, Bson::Document(_))).collect();
                    objects.iter().any(|v| matches!(v, Bson::Document(o) if unordered_doc_eq(o, doc)))
                });
        }
        self.matches_value(&Bson::Document(doc.clone()))
    }

    /// Whether a present value satisfies the (non-root) schema.
    pub(crate) fn matches_value(&self, v: &Bson) -> bool {
        if let Some(t) = &self.types {
            if !t.value.allows(v) {
                return false;
            }
        }
        self.scalar_keywords_hold(v)
            && self.array_keywords_hold(v)
            && match v {
                Bson::Document(d) if self.restricts(Kind::Object) => self.object_keywords_hold(d),
                _ => true,
            }
            && self.logic_holds(|s| s.matches_value(v))
            && self.enumeration.as_ref().is_none_or(|e| e.value.iter().any(|x| unordered_eq(x, v)))
    }

    fn logic_holds(&self, test: impl Fn(&Schema) -> bool) -> bool {
        self.all_of.iter().all(&test)
            && (self.any_of.is_empty() || self.any_of.iter().any(&test))
            && (self.one_of.is_empty() || self.one_of.iter().filter(|s| test(s)).count() == 1)
            && self.not.as_ref().is_none_or(|s| !test(s))
    }

    pub(crate) fn scalar_keywords_hold(&self, v: &Bson) -> bool {
        if let Bson::String(text) = v {
            if self.restricts(Kind::String) {
                let len = text.chars().count() as i64;
                if self.pattern.as_ref().is_some_and(|p| !p.value.is_match(text))
                    || self.max_length.as_ref().is_some_and(|m| len > m.value)
                    || self.min_length.as_ref().is_some_and(|m| len < m.value)
                {
                    return false;
                }
            }
        }
        if let Some(n) = Num::from_bson(v) {
            if self.restricts(Kind::Number) {
                if self.multiple_of.as_ref().is_some_and(|m| !is_multiple(n, m.value)) {
                    return false;
                }
                if self.maximum.as_ref().is_some_and(|m| !within(v, &m.value.0, m.value.1, Ordering::Less)) {
                    return false;
                }
                if self.minimum.as_ref().is_some_and(|m| !within(v, &m.value.0, m.value.1, Ordering::Greater)) {
                    return false;
                }
            }
        }
        true
    }

    pub(crate) fn array_keywords_hold(&self, v: &Bson) -> bool {
        let Bson::Array(items) = v else { return true };
        if !self.restricts(Kind::Array) {
            return true;
        }
        let len = items.len() as i64;
        if self.min_items.as_ref().is_some_and(|m| len < m.value) || self.max_items.as_ref().is_some_and(|m| len > m.value) {
            return false;
        }
        if self.unique_items.as_ref().is_some_and(|u| u.value) && first_duplicate(items).is_some() {
            return false;
        }
        self.first_item_failure(items).is_none() && self.first_additional_item_failure(items).is_none()
    }

    /// The index of the first element `items` refuses.
    pub(crate) fn first_item_failure(&self, items: &[Bson]) -> Option<usize> {
        match &self.items.as_ref()?.value {
            Items::All(schema) => items.iter().position(|e| !schema.matches_value(e)),
            Items::Each(schemas) => items.iter().zip(schemas).position(|(e, s)| !s.matches_value(e)),
        }
    }

    /// Where `additionalItems` starts applying: only after an `items` array.
    pub(crate) fn additional_items_start(&self) -> Option<usize> {
        match &self.items.as_ref()?.value {
            Items::Each(schemas) => Some(schemas.len()),
            Items::All(_) => None,
        }
    }

    /// The index of the first element `additionalItems` refuses.
    pub(crate) fn first_additional_item_failure(&self, items: &[Bson]) -> Option<usize> {
        let start = self.additional_items_start()?;
        let additional = &self.additional_items.as_ref()?.value;
        (start..items.len()).find(|&i| match additional {
            Additional::Allowed(allowed) => !allowed,
            Additional::Schema(s) => !s.matches_value(&items[i]),
        })
    }

    pub(crate) fn object_keywords_hold(&self, d: &Document) -> bool {
        for (name, schema) in &self.properties {
            if let Some(v) = d.get(name) {
                if !schema.matches_value(v) {
                    return false;
                }
            }
        }
        if self.required.as_ref().is_some_and(|r| r.value.iter().any(|name| !d.contains_key(name))) {
            return false;
        }
        let n = d.len() as i64;
        if self.min_properties.as_ref().is_some_and(|m| n < m.value) || self.max_properties.as_ref().is_some_and(|m| n > m.value) {
            return false;
        }
        for (name, value) in d {
            for p in &self.pattern_properties {
                if p.regex.is_match(name) && !p.schema.matches_value(value) {
                    return false;
                }
            }
        }
        if let Some(additional) = &self.additional_properties {
            for (name, value) in d {
                if self.is_additional(name) {
                    let ok = match &additional.value {
                        Additional::Allowed(allowed) => *allowed,
                        Additional::Schema(s) => s.matches_value(value),
                    };
                    if !ok {
                        return false;
                    }
                }
            }
        }
        for (name, dependency) in &self.dependencies {
            if d.contains_key(name) && !dependency_holds(dependency, d) {
                return false;
            }
        }
        true
    }

    /// A field neither `properties` nor `patternProperties` covers.
    pub(crate) fn is_additional(&self, name: &str) -> bool {
        !self.properties.iter().any(|(p, _)| p == name) && !self.pattern_properties.iter().any(|p| p.regex.is_match(name))
    }
}

pub(crate) fn dependency_holds(dependency: &Dependency, d: &Document) -> bool {
    match dependency {
        Dependency::Properties(names) => names.iter().all(|n| d.contains_key(n)),
        Dependency::Schema(s) => s.matches_value(&Bson::Document(d.clone())),
    }
}

/// The kinds of value restriction keywords are about.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    String,
    Number,
    Array,
    Object,
}

impl Kind {
    fn has_code(self, code: i32) -> bool {
        match self {
            Kind::String => code == 2,
            Kind::Number => matches!(code, 1 | 16 | 18 | 19),
            Kind::Array => code == 4,
            Kind::Object => code == 3,
        }
    }
}

/// `v` compared with a `maximum` (`want` Less) or `minimum` (Greater) bound.
pub(crate) fn within(v: &Bson, bound: &Bson, exclusive: bool, want: Ordering) -> bool {
    if type_rank(v) != type_rank(bound) {
        return false;
    }
    let o = cmp_bson(v, bound);
    o == want || (!exclusive && o == Ordering::Equal)
}

pub(crate) fn is_multiple(n: Num, divisor: Num) -> bool {
    if n.is_nan() || !n.to_f64().is_finite() {
        return false;
    }
    num::rem(n, divisor).is_some_and(|r| r.is_zero())
}

fn bound(d: &Document, keyword: &str, exclusive: &str) -> Result<Option<Spec<(Bson, bool)>>> {
    let flag = match d.get(exclusive) {
        None => None,
        Some(Bson::Boolean(b)) => Some(*b),
        Some(_) => return Err(keyword_error(14, "TypeMismatch", exclusive, "must be a boolean")),
    };
    let Some(v) = d.get(keyword) else {
        if flag.is_some() {
            return Err(failed_to_parse(format!("$jsonSchema keyword '{keyword}' must be a present if {exclusive} is present")));
        }
        return Ok(None);
    };
    if Num::from_bson(v).is_none() {
        return Err(keyword_error(14, "TypeMismatch", keyword, "must be a number"));
    }
    let exclusive_flag = flag.unwrap_or(false);
    let mut spec = single(keyword, v);
    if exclusive_flag {
        spec.insert(exclusive, true);
    }
    Ok(Some(Spec { value: (v.clone(), exclusive_flag), spec }))
}

/// The first element equal to an earlier one (as `uniqueItems` compares).
pub(crate) fn first_duplicate(items: &[Bson]) -> Option<&Bson> {
    items.iter().enumerate().find(|(i, a)| items[..*i].iter().any(|b| unordered_eq(a, b))).map(|(_, v)| v)
}

/// Equality where embedded documents compare regardless of field order, as
/// `enum` and `uniqueItems` compare (numbers equal across types).
pub(crate) fn unordered_eq(a: &Bson, b: &Bson) -> bool {
    match (a, b) {
        (Bson::Document(x), Bson::Document(y)) => unordered_doc_eq(x, y),
        (Bson::Array(x), Bson::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| unordered_eq(p, q)),
        _ => type_rank(a) == type_rank(b) && cmp_bson(a, b) == Ordering::Equal,
    }
}

fn unordered_doc_eq(x: &Document, y: &Document) -> bool {
    x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| unordered_eq(v, w)))
}

/// A `pattern`/`patternProperties` regular expression. Schemas test
/// patterns on every validated write, so they run on the linear-time
/// engine only; one that needs back-references or look-around is refused
/// when the schema is parsed rather than risk a match that cannot finish.
fn linear_pattern(keyword: &str, pattern: &str) -> Result<Regex> {
    match regex_util::compile(pattern, "")? {
        regex_util::Regex::Linear(r) => Ok(r),
        regex_util::Regex::Backtracking(..) => Err(EngineError::bad_value(format!(
            "$jsonSchema keyword '{keyword}': the pattern '{pattern}' uses back-references or look-around, which schemas do not support here"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn schema(spec: Document) -> JsonSchema {
        JsonSchema::parse(&Bson::Document(spec)).unwrap()
    }

    fn error(spec: Document) -> (i32, String) {
        let e = JsonSchema::parse(&Bson::Document(spec)).unwrap_err();
        (e.code, e.message)
    }

    #[test]
    fn types_and_required() {
        let s = schema(doc! {"bsonType": "object", "required": ["name"], "properties": {
            "name": {"bsonType": "string", "maxLength": 5},
            "age": {"bsonType": ["int", "long"], "minimum": 0},
            "score": {"type": "number", "maximum": 10, "exclusiveMaximum": true},
        }});
        assert!(s.matches(&doc! {"name": "ann"}));
        assert!(s.matches(&doc! {"name": "ann", "age": 3, "score": 9.5}));
        assert!(!s.matches(&doc! {"age": 3}), "required");
        assert!(!s.matches(&doc! {"name": "annabel"}), "maxLength");
        assert!(!s.matches(&doc! {"name": 5}), "bsonType");
        assert!(!s.matches(&doc! {"name": "ann", "age": 3.0}), "a double is no int");
        assert!(!s.matches(&doc! {"name": "ann", "age": -1}), "minimum");
        assert!(!s.matches(&doc! {"name": "ann", "score": 10}), "exclusiveMaximum");
        assert!(!s.matches(&doc! {"name": "ann", "age": null}), "null is no int");
    }

    #[test]
    fn restrictions_ignore_other_kinds() {
        let s = schema(doc! {"properties": {"a": {"maxLength": 2, "minimum": 5, "minItems": 2, "required": ["x"]}}});
        assert!(s.matches(&doc! {"a": true}));
        assert!(s.matches(&doc! {"a": 7}));
        assert!(!s.matches(&doc! {"a": 3}));
        assert!(!s.matches(&doc! {"a": "abc"}));
        assert!(!s.matches(&doc! {"a": [1]}));
        assert!(!s.matches(&doc! {"a": {"y": 1}}));
        assert!(s.matches(&doc! {"a": {"x": 1}}));
    }

    #[test]
    fn arrays() {
        let s = schema(doc! {"properties": {
            "tags": {"bsonType": "array", "items": {"bsonType": "string"}, "uniqueItems": true, "maxItems": 3},
            "pair": {"items": [{"bsonType": "int"}, {"bsonType": "string"}], "additionalItems": false},
        }});
        assert!(s.matches(&doc! {"tags": ["a", "b"], "pair": [1, "x"]}));
        assert!(!s.matches(&doc! {"tags": ["a", 1]}));
        assert!(!s.matches(&doc! {"tags": ["a", "a"]}));
        assert!(!s.matches(&doc! {"tags": ["a", "b", "c", "d"]}));
        assert!(!s.matches(&doc! {"pair": [1, "x", 3]}));
        assert!(s.matches(&doc! {"pair": [1]}));
        assert!(!s.matches(&doc! {"pair": ["x"]}));
        let u = schema(doc! {"properties": {"a": {"uniqueItems": true}}});
        assert!(!u.matches(&doc! {"a": [{"x": 1, "y": 2}, {"y": 2, "x": 1}]}), "documents compare unordered");
        assert!(!u.matches(&doc! {"a": [1, 1.0]}));
    }

    #[test]
    fn objects() {
        let s = schema(doc! {
            "properties": {"_id": {}, "a": {}},
            "patternProperties": {"^x_": {"bsonType": "int"}},
            "additionalProperties": false,
            "dependencies": {"a": ["b"]},
        });
        assert!(s.matches(&doc! {"_id": 1, "x_1": 2}));
        assert!(!s.matches(&doc! {"_id": 1, "x_1": "2"}));
        assert!(!s.matches(&doc! {"_id": 1, "c": 1}));
        assert!(!s.matches(&doc! {"_id": 1, "a": 1}), "a needs b, which is additional anyway");
        let d = schema(doc! {"dependencies": {"a": ["b"], "c": {"required": ["d"]}}, "minProperties": 1, "maxProperties": 3});
        assert!(d.matches(&doc! {"a": 1, "b": 1}));
        assert!(!d.matches(&doc! {"a": 1}));
        assert!(!d.matches(&doc! {"c": 1}));
        assert!(d.matches(&doc! {"c": 1, "d": 1}));
        assert!(!d.matches(&doc! {}));
        assert!(!d.matches(&doc! {"p": 1, "q": 2, "r": 3, "s": 4}));
    }

    #[test]
    fn logic_and_enum() {
        let s = schema(doc! {"properties": {
            "a": {"anyOf": [{"bsonType": "int"}, {"bsonType": "string"}]},
            "b": {"oneOf": [{"minimum": 0}, {"maximum": 10}]},
            "c": {"not": {"bsonType": "null"}},
            "d": {"enum": ["x", 1, {"k": 1, "l": 2}]},
            "e": {"allOf": [{"bsonType": "int"}, {"minimum": 3}]},
        }});
        assert!(s.matches(&doc! {"a": 1, "b": 20, "c": 1, "d": "x", "e": 4}));
        assert!(!s.matches(&doc! {"a": 1.5}));
        assert!(!s.matches(&doc! {"b": 5}), "both branches match");
        assert!(!s.matches(&doc! {"c": null}));
        assert!(s.matches(&doc! {"d": 1.0}));
        assert!(s.matches(&doc! {"d": {"l": 2, "k": 1}}));
        assert!(!s.matches(&doc! {"d": "y"}));
        assert!(!s.matches(&doc! {"e": 2}));
        let top = schema(doc! {"enum": [{"a": 1}, 5]});
        assert!(top.matches(&doc! {"a": 1}));
        assert!(!top.matches(&doc! {"a": 2}));
        assert!(!schema(doc! {"bsonType": "string"}).matches(&doc! {}), "a document is never a string");
        assert!(schema(doc! {"multipleOf": 2, "maxLength": 1}).matches(&doc! {"long": "text"}), "top level");
    }

    #[test]
    fn multiple_of() {
        let s = schema(doc! {"properties": {"n": {"multipleOf": 0.5}, "m": {"multipleOf": 3}}});
        assert!(s.matches(&doc! {"n": 2.5, "m": 9_i64}));
        assert!(!s.matches(&doc! {"n": 2.25}));
        assert!(!s.matches(&doc! {"m": 10}));
    }

    #[test]
    fn bad_schemas_get_mongods_errors() {
        assert_eq!(error(doc! {"format": "email"}), (9, "$jsonSchema keyword 'format' is not currently supported".into()));
        assert_eq!(error(doc! {"invalid": 1}), (9, "Unknown $jsonSchema keyword: invalid".into()));
        assert_eq!(error(doc! {"type": "integer"}).0, 9);
        assert_eq!(error(doc! {"type": "int"}), (2, "Unknown type name alias: int".into()));
        assert_eq!(error(doc! {"bsonType": []}).0, 9);
        assert_eq!(error(doc! {"type": "string", "bsonType": "string"}).0, 9);
        assert_eq!(error(doc! {"maxLength": -1}).0, 9);
        assert_eq!(error(doc! {"maxLength": "1"}).0, 14);
        assert_eq!(error(doc! {"multipleOf": 0}).0, 9);
        assert_eq!(error(doc! {"exclusiveMaximum": true}).0, 9);
        assert_eq!(error(doc! {"required": []}).0, 9);
        assert_eq!(error(doc! {"required": ["a", "a"]}).0, 9);
        assert_eq!(error(doc! {"enum": [1, 1.0]}).0, 9);
        assert_eq!(error(doc! {"allOf": []}).0, 2);
        assert_eq!(error(doc! {"properties": {"a": 1}}).0, 14);
        assert_eq!(error(doc! {"title": 1}).0, 14);
        assert_eq!(error(doc! {"encrypt": {}}).0, 115);
        assert_eq!(JsonSchema::parse(&Bson::Int32(1)).unwrap_err().code, 14);
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |levels: usize| {
            let mut spec = doc! {};
            for _ in 0..levels {
                spec = doc! {"not": spec};
            }
            spec
        };
        assert_eq!(error(nested(MAX_SCHEMA_DEPTH + 5)).0, 15);
        // The deepest accepted schema parses and matches within a test
        // thread's stack (the server's connection threads have 16 MiB).
        let deepest = schema(nested(MAX_SCHEMA_DEPTH));
        assert!(deepest.matches(&doc! {"a": 1}));
    }
}
