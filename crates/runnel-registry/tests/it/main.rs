//! Data-driven compatibility cases: each file under `tests/cases` lists
//! old schemas (oldest first), a new schema, a level, and the expected
//! verdict and (part of the) message.

use std::path::Path;

use runnel_registry::compat::{check_avro, check_json, check_protobuf, Compatibility};
use runnel_registry::schema::{Parsed, SchemaType};
use serde_json::Value;

struct Case {
    name: String,
    level: Compatibility,
    compatible: bool,
    message: Option<String>,
    old: Vec<Value>,
    new: Value,
}

fn cases(file: &str) -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases").join(file);
    let all: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    all.into_iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            level: c["level"].as_str().unwrap().parse().unwrap(),
            compatible: c["compatible"].as_bool().unwrap(),
            message: c.get("message").and_then(Value::as_str).map(str::to_string),
            old: c["old"].as_array().unwrap().clone(),
            new: c["new"].clone(),
        })
        .collect()
}

#[track_caller]
fn verify(case: &Case, messages: Vec<String>) {
    assert_eq!(messages.is_empty(), case.compatible, "{}: {messages:?}", case.name);
    if let Some(expected) = &case.message {
        assert!(messages.iter().any(|m| m.contains(expected)), "{}: expected {expected:?} in {messages:?}", case.name);
    }
}

#[test]
fn avro_cases() {
    let all = cases("avro.json");
    assert!(all.len() >= 20);
    for case in &all {
        let parse = |v: &Value| apache_avro::Schema::parse_str(&v.to_string()).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let old: Vec<(i32, apache_avro::Schema)> = case.old.iter().enumerate().map(|(i, s)| (i as i32 + 1, parse(s))).collect();
        verify(case, check_avro(&parse(&case.new), &old, case.level));
    }
}

#[test]
fn json_schema_cases() {
    for case in &cases("json.json") {
        let old: Vec<(i32, Value)> = case.old.iter().cloned().enumerate().map(|(i, s)| (i as i32 + 1, s)).collect();
        verify(case, check_json(&case.new, &old, case.level));
    }
}

#[test]
fn protobuf_cases() {
    let all = cases("protobuf.json");
    for case in &all {
        let parse = |v: &Value| match Parsed::parse(SchemaType::Protobuf, v.as_str().unwrap(), &[]) {
            Ok(Parsed::Protobuf(file)) => *file,
            other => panic!("{}: {other:?}", case.name),
        };
        let old: Vec<(i32, prost_types::FileDescriptorProto)> = case.old.iter().enumerate().map(|(i, s)| (i as i32 + 1, parse(s))).collect();
        verify(case, check_protobuf(&parse(&case.new), &old, case.level));
    }
}

#[test]
fn schemas_that_do_not_parse_are_invalid() {
    let cases: &[(SchemaType, &str)] = &[
        (SchemaType::Avro, r#"{"type": "recordz"}"#),
        (SchemaType::Avro, r#"{"type": "record", "name": "R"}"#),
        (SchemaType::Avro, "not json"),
        (SchemaType::Json, "[1, 2]"),
        (SchemaType::Json, "{broken"),
        (SchemaType::Protobuf, "message { int32 = ; }"),
        (SchemaType::Protobuf, "syntax = \"proto3\"; message Ride { int32 a = 0; }"),
    ];
    for (schema_type, text) in cases {
        assert!(Parsed::parse(*schema_type, text, &[]).is_err(), "{schema_type} {text} should be refused");
    }
}
