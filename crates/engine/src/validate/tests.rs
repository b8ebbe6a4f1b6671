//! The `errInfo` shapes, checked against the expectations of mongod's own
//! `doc_validation_error_test.cpp` and `jstests/core/doc_validation`.
use super::Validator;
use bson::{doc, Bson, Document, Regex};

fn details(validator: Document, document: Document) -> Document {
    let v = Validator::parse(&validator).unwrap();
    assert!(!v.matches(&document).unwrap_or(false), "the document must fail {validator}");
    let info = v.error_info(&document);
    info.get_document("details").cloned().unwrap_or_else(|_| panic!("no details in {info}"))
}

fn regex(pattern: &str) -> Bson {
    Bson::RegularExpression(Regex { pattern: pattern.to_string().try_into().unwrap(), options: String::new().try_into().unwrap() })
}

#[test]
fn comparison_leaves() {
    assert_eq!(
        details(doc! {"a": {"$eq": 2}}, doc! {"_id": 1, "a": 1}),
        doc! {"operatorName": "$eq", "specifiedAs": {"a": {"$eq": 2}}, "reason": "comparison failed", "consideredValue": 1}
    );
    assert_eq!(
        details(doc! {"a": 2}, doc! {"a": [3, 4, 5]}),
        doc! {"operatorName": "$eq", "specifiedAs": {"a": 2}, "reason": "comparison failed", "consideredValues": [3, 4, 5]}
    );
    assert_eq!(
        details(doc! {"a.b": {"$eq": 0}}, doc! {"a": [{"b": [1, 2]}, {"b": [3, 4]}]}),
        doc! {"operatorName": "$eq", "specifiedAs": {"a.b": {"$eq": 0}}, "reason": "comparison failed", "consideredValues": [1, 2, 3, 4]}
    );
    assert_eq!(
        details(doc! {"a": {"$lt": 0}}, doc! {"b": 1}),
        doc! {"operatorName": "$lt", "specifiedAs": {"a": {"$lt": 0}}, "reason": "field was missing"}
    );
    assert_eq!(
        details(doc! {"a": {"$ne": 2}}, doc! {"a": 2}),
        doc! {"operatorName": "$ne", "specifiedAs": {"a": {"$ne": 2}}, "reason": "comparison succeeded", "consideredValue": 2}
    );
    assert_eq!(
        details(doc! {"a": {"$nin": [1, 2, 3]}}, doc! {"a": 3}),
        doc! {"operatorName": "$nin", "specifiedAs": {"a": {"$nin": [1, 2, 3]}}, "reason": "matching value found in array", "consideredValue": 3}
    );
    assert_eq!(
        details(doc! {"a": {"$gte": 3}}, doc! {"a": []}),
        doc! {"operatorName": "$gte", "specifiedAs": {"a": {"$gte": 3}}, "reason": "comparison failed", "consideredValues": []}
    );
}

#[test]
fn considered_values_are_truncated() {
    let values: Vec<i32> = (0..1000).collect();
    let d = details(doc! {"a": {"$lt": 0}}, doc! {"a": values});
    assert_eq!(d.get_array("consideredValues").unwrap().len(), super::MAX_CONSIDERED_VALUES);
    assert_eq!(d.get_bool("consideredValuesTruncated").ok(), Some(true));
}

#[test]
fn logical_operators() {
    assert_eq!(
        details(doc! {"a": {"$gt": 0, "$lt": 10}}, doc! {"a": 11}),
        doc! {"operatorName": "$and", "clausesNotSatisfied": [{"index": 1, "details": {
            "operatorName": "$lt", "specifiedAs": {"a": {"$lt": 10}}, "reason": "comparison failed", "consideredValue": 11}}]}
    );
    assert_eq!(
        details(doc! {"$and": [{"$and": [{"a": 1}]}, {"$and": [{"b": 1}]}]}, doc! {"a": 1, "b": 2}),
        doc! {"operatorName": "$and", "clausesNotSatisfied": [{"index": 1, "details": {
            "operatorName": "$and", "clausesNotSatisfied": [{"index": 0, "details": {
                "operatorName": "$eq", "specifiedAs": {"b": 1}, "reason": "comparison failed", "consideredValue": 2}}]}}]}
    );
    assert_eq!(
        details(doc! {"$nor": [{"a": {"$gt": 10}}, {"b": {"$lt": 10}}]}, doc! {"a": 9, "b": 9}),
        doc! {"operatorName": "$nor", "clausesSatisfied": [{"index": 1, "details": {
            "operatorName": "$lt", "specifiedAs": {"b": {"$lt": 10}}, "reason": "comparison succeeded", "consideredValue": 9}}]}
    );
    assert_eq!(
        details(doc! {"a": {"$not": {"$lt": 20, "$gt": 5}}}, doc! {"a": 10}),
        doc! {"operatorName": "$not", "details": {"operatorName": "$and", "clausesSatisfied": [
            {"index": 0, "details": {"operatorName": "$lt", "specifiedAs": {"a": {"$lt": 20}}, "reason": "comparison succeeded", "consideredValue": 10}},
            {"index": 1, "details": {"operatorName": "$gt", "specifiedAs": {"a": {"$gt": 5}}, "reason": "comparison succeeded", "consideredValue": 10}},
        ]}}
    );
    assert_eq!(
        details(
            doc! {"$and": [{"$or": [{"price": {"$lt": 20}}]}, {"$nor": [{"qty": {"$gt": 30}}, {"qty": {"$not": {"$lt": 20}}}]}]},
            doc! {"price": 10, "qty": 25}
        ),
        doc! {"operatorName": "$and", "clausesNotSatisfied": [{"index": 1, "details": {
            "operatorName": "$nor", "clausesSatisfied": [{"index": 1, "details": {
                "operatorName": "$not", "details": {
                    "operatorName": "$lt", "specifiedAs": {"qty": {"$lt": 20}}, "reason": "comparison failed", "consideredValue": 25}}}]}}]}
    );
}

#[test]
fn other_leaves() {
    assert_eq!(
        details(doc! {"a": {"$exists": false}}, doc! {"a": 1}),
        doc! {"operatorName": "$exists", "specifiedAs": {"a": {"$exists": false}}, "reason": "path does exist"}
    );
    assert_eq!(
        details(doc! {"a": {"$type": "int"}}, doc! {"a": "one"}),
        doc! {"operatorName": "$type", "specifiedAs": {"a": {"$type": "int"}}, "reason": "type did not match", "consideredValue": "one", "consideredType": "string"}
    );
    assert_eq!(
        details(doc! {"a": {"$mod": [2, 1]}}, doc! {"a": "two"}),
        doc! {"operatorName": "$mod", "specifiedAs": {"a": {"$mod": [2, 1]}}, "reason": "type did not match", "consideredType": "string",
              "expectedTypes": ["decimal", "double", "int", "long"], "consideredValue": "two"}
    );
    assert_eq!(
        details(doc! {"a": regex("^S")}, doc! {"a": "so sorry"}),
        doc! {"operatorName": "$regex", "specifiedAs": {"a": regex("^S")}, "reason": "regular expression did not match", "consideredValue": "so sorry"}
    );
    assert_eq!(
        details(doc! {"a": {"$size": 2}}, doc! {"a": 3}),
        doc! {"operatorName": "$size", "specifiedAs": {"a": {"$size": 2}}, "reason": "type did not match", "consideredType": "int", "expectedType": "array", "consideredValue": 3}
    );
    assert_eq!(
        details(doc! {"a": {"$all": [1, 2, 3]}}, doc! {"a": [1, 2, 4]}),
        doc! {"operatorName": "$all", "specifiedAs": {"a": {"$all": [1, 2, 3]}}, "reason": "array did not contain all specified values", "consideredValue": [1, 2, 4]}
    );
    assert_eq!(
        details(doc! {"a": {"$elemMatch": {"$gt": 0, "$lt": 10}}}, doc! {"a": [10, 11, 12]}),
        doc! {"operatorName": "$elemMatch", "specifiedAs": {"a": {"$elemMatch": {"$gt": 0, "$lt": 10}}}, "reason": "array did not satisfy the child predicate", "consideredValue": [10, 11, 12]}
    );
}

#[test]
fn expr() {
    assert_eq!(
        details(doc! {"$expr": {"$eq": ["$a", "$b"]}}, doc! {"a": 1, "b": 2}),
        doc! {"operatorName": "$expr", "specifiedAs": {"$expr": {"$eq": ["$a", "$b"]}}, "reason": "expression did not match", "expressionResult": false}
    );
    let d = details(doc! {"$expr": {"$divide": [10, 0]}}, doc! {});
    assert_eq!(d.get_str("reason").ok(), Some("failed to evaluate aggregation expression"));
    let cause = d.get_document("details").unwrap();
    assert!(cause.get_i32("code").is_ok() && cause.get_str("codeName").is_ok());
    assert!(cause.get_str("errmsg").unwrap().contains("divide by zero"));
}

#[test]
fn error_info_names_the_document() {
    let v = Validator::parse(&doc! {"a": 1}).unwrap();
    let info = v.error_info(&doc! {"_id": 10, "a": 2});
    assert_eq!(info.get_i32("failingDocumentId").ok(), Some(10));
}

#[test]
fn json_schema_students() {
    let validator = doc! {"$jsonSchema": {
        "bsonType": "object",
        "required": ["name", "year", "major", "address"],
        "properties": {
            "name": {"bsonType": "string", "description": "must be a string and is required"},
            "year": {"bsonType": "int", "minimum": 2017, "maximum": 3017},
            "major": {"enum": ["Math", "English", "Computer Science", "History", null], "description": "can only be one of the enum values and is required"},
            "gpa": {"bsonType": ["double"]},
            "address": {"bsonType": "object", "required": ["city"], "properties": {
                "street": {"bsonType": "string", "description": "must be a string if the field exists"},
                "city": {"bsonType": "string"},
            }},
        },
    }};
    let document = doc! {"year": 2020, "major": "Software Engineering", "gpa": 5.0, "address": {"city": "NYC", "street": 5}};
    assert_eq!(
        details(validator, document),
        doc! {"operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [
            {"operatorName": "properties", "propertiesNotSatisfied": [
                {"propertyName": "major", "description": "can only be one of the enum values and is required", "details": [{
                    "operatorName": "enum", "specifiedAs": {"enum": ["Math", "English", "Computer Science", "History", null]},
                    "reason": "value was not found in enum", "consideredValue": "Software Engineering"}]},
                {"propertyName": "address", "details": [{"operatorName": "properties", "propertiesNotSatisfied": [
                    {"propertyName": "street", "description": "must be a string if the field exists", "details": [{
                        "operatorName": "bsonType", "specifiedAs": {"bsonType": "string"}, "reason": "type did not match",
                        "consideredValue": 5, "consideredType": "int"}]}]}]},
            ]},
            {"operatorName": "required", "specifiedAs": {"required": ["name", "year", "major", "address"]}, "missingProperties": ["name"]},
        ]}
    );
}

#[test]
fn json_schema_arrays_and_keywords() {
    assert_eq!(
        details(
            doc! {"$jsonSchema": {"properties": {"values": {"bsonType": "array", "items": {"bsonType": "string", "enum": ["one", "two"]}, "minItems": 1, "uniqueItems": true}}}},
            doc! {"values": ["two", "two"]}
        ),
        doc! {"operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{"operatorName": "properties", "propertiesNotSatisfied": [
            {"propertyName": "values", "details": [{"operatorName": "uniqueItems", "specifiedAs": {"uniqueItems": true},
                "reason": "found a duplicate item", "consideredValue": ["two", "two"], "duplicatedValue": "two"}]}]}]}
    );
    assert_eq!(
        details(doc! {"$jsonSchema": {"properties": {"scripts": {"items": {"type": "string"}}}}}, doc! {"scripts": [1.0, 2.0]}),
        doc! {"operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{"operatorName": "properties", "propertiesNotSatisfied": [
            {"propertyName": "scripts", "details": [{"operatorName": "items", "reason": "At least one item did not match the sub-schema", "itemIndex": 0,
                "details": [{"operatorName": "type", "specifiedAs": {"type": "string"}, "reason": "type did not match", "consideredValue": 1.0, "consideredType": "double"}]}]}]}]}
    );
    assert_eq!(
        details(doc! {"$jsonSchema": {"properties": {"name": {"maxLength": 3}, "n": {"minimum": 5, "exclusiveMinimum": true}}}}, doc! {"name": "abcd", "n": 5}),
        doc! {"operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{"operatorName": "properties", "propertiesNotSatisfied": [
            {"propertyName": "name", "details": [{"operatorName": "maxLength", "specifiedAs": {"maxLength": 3}, "reason": "specified string length was not satisfied", "consideredValue": "abcd"}]},
            {"propertyName": "n", "details": [{"operatorName": "minimum", "specifiedAs": {"minimum": 5, "exclusiveMinimum": true}, "reason": "comparison failed", "consideredValue": 5}]},
        ]}]}
    );
    assert_eq!(
        details(doc! {"$jsonSchema": {"properties": {"_id": {}}, "additionalProperties": false}}, doc! {"_id": 1, "x": 2}),
        doc! {"operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{"operatorName": "additionalProperties",
            "specifiedAs": {"additionalProperties": false}, "additionalProperties": ["x"]}]}
    );
    assert_eq!(
        details(doc! {"$jsonSchema": {"dependencies": {"a": ["b", "c"]}}}, doc! {"a": 1, "c": 1}),
        doc! {"operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{"operatorName": "dependencies",
            "failingDependencies": [{"conditionalProperty": "a", "missingProperties": ["b"]}]}]}
    );
    assert_eq!(
        details(doc! {"$jsonSchema": {"properties": {"a": {"oneOf": [{"minimum": 0}, {"maximum": 10}]}}}}, doc! {"a": 5}),
        doc! {"operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [{"operatorName": "properties", "propertiesNotSatisfied": [
            {"propertyName": "a", "details": [{"operatorName": "oneOf", "reason": "more than one subschema matched", "matchingSchemaIndexes": [0, 1]}]}]}]}
    );
    assert_eq!(
        details(doc! {"$jsonSchema": {"bsonType": "array"}}, doc! {"a": 1}),
        doc! {"operatorName": "$jsonSchema", "specifiedAs": {"$jsonSchema": {"bsonType": "array"}}, "reason": "expression always evaluates to false"}
    );
}

#[test]
fn json_schema_beside_expr() {
    let validator = doc! {"$and": [
        {"$expr": {"$gte": ["$price", 0]}},
        {"$jsonSchema": {"required": ["price"]}},
    ]};
    assert_eq!(
        details(validator, doc! {"_id": 1}),
        doc! {"operatorName": "$and", "clausesNotSatisfied": [
            {"index": 0, "details": {"operatorName": "$expr", "specifiedAs": {"$expr": {"$gte": ["$price", 0]}}, "reason": "expression did not match", "expressionResult": false}},
            {"index": 1, "details": {"operatorName": "$jsonSchema", "schemaRulesNotSatisfied": [
                {"operatorName": "required", "specifiedAs": {"required": ["price"]}, "missingProperties": ["price"]}]}},
        ]}
    );
}

#[test]
fn validator_restrictions() {
    let code = |v: Document| Validator::parse(&v).unwrap_err().code;
    assert_eq!(code(doc! {"$where": "this.a == this.b"}), 2);
    assert_eq!(code(doc! {"$text": {"$search": "bob"}}), 2);
    assert_eq!(code(doc! {"$or": [{"loc": {"$near": [0, 0]}}]}), 5626500);
    assert_eq!(code(doc! {"a": {"$elemMatch": {"loc": {"$nearSphere": [0, 0]}}}}), 5626500);
    assert_eq!(code(doc! {"$expr": {"$eq": ["$a", "$$unbound"]}}), 17276);
    assert_eq!(code(doc! {"$jsonSchema": {"invalid": 1}}), 9);
    assert_eq!(code(doc! {"a": {"$foo": 1}}), 2);
    assert!(Validator::parse(&doc! {"a": {"$foo": 1}}).unwrap_err().message.starts_with("Parsing of collection validator failed"));
    assert!(Validator::parse(&doc! {"$expr": {"$let": {"vars": {"x": 1}, "in": {"$map": {"input": "$a", "in": {"$add": ["$$x", "$$this", "$$NOW"]}}}}}}).is_ok());
    assert_eq!(code(doc! {"$expr": {"$let": {"vars": {"x": "$$y"}, "in": 1}}}), 17276);
    assert!(Validator::parse(&doc! {"$expr": {"$literal": "$$notAVariable"}}).is_ok());
}

#[test]
fn too_deep_an_error_is_cut_short() {
    let mut validator = doc! {"a": 0};
    for i in 1..80 {
        validator = doc! {"$or": [validator, {"a": i}]};
    }
    let v = Validator::parse(&validator).unwrap();
    let info = v.error_info(&doc! {"b": 1});
    assert_eq!(info, doc! {"reason": "generated error was too deeply nested", "truncated": true});
}
