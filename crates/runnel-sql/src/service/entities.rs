//! The JSON entities of ksqlDB's REST API, built from the catalog and the
//! queries: what `/ksql` answers for each statement, and the error
//! objects. Pure functions, tested without a server.

use serde_json::{json, Value};

use crate::ast::SourceKind;
use crate::catalog::{Catalog, KeyWindow, SourceDef};
use crate::engine::PersistentQuery;
use crate::error::SqlError;
use crate::types::SqlType;

use super::cluster::TopicInfo;

/// ksqlDB's error codes.
pub mod codes {
    /// A request that is not well formed.
    pub const BAD_REQUEST: u32 = 40000;
    /// A statement that cannot run.
    pub const BAD_STATEMENT: u32 = 40001;
    /// A query sent to `/ksql`, which belongs on `/query`.
    pub const QUERY_ENDPOINT: u32 = 40002;
    /// An unknown path, query or command.
    pub const NOT_FOUND: u32 = 40400;
    /// A failure of the server or the cluster.
    pub const SERVER_ERROR: u32 = 50000;
}

fn kind_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Stream => "STREAM",
        SourceKind::Table => "TABLE",
    }
}

/// A type as ksqlDB's entities spell it: its name, and the fields of a
/// struct or the member type of an array or map.
pub fn schema(sql_type: &SqlType) -> Value {
    let (name, fields, member) = match sql_type {
        SqlType::Boolean => ("BOOLEAN", Value::Null, Value::Null),
        SqlType::Int => ("INTEGER", Value::Null, Value::Null),
        SqlType::Bigint => ("BIGINT", Value::Null, Value::Null),
        SqlType::Double => ("DOUBLE", Value::Null, Value::Null),
        SqlType::Decimal { precision, scale } => {
            return json!({"type": "DECIMAL", "fields": null, "memberSchema": null, "parameters": {"precision": precision, "scale": scale}});
        }
        SqlType::String => ("STRING", Value::Null, Value::Null),
        SqlType::Bytes => ("BYTES", Value::Null, Value::Null),
        SqlType::Date => ("DATE", Value::Null, Value::Null),
        SqlType::Time => ("TIME", Value::Null, Value::Null),
        SqlType::Timestamp => ("TIMESTAMP", Value::Null, Value::Null),
        SqlType::Array(member) => ("ARRAY", Value::Null, schema(member)),
        SqlType::Map(_, member) => ("MAP", Value::Null, schema(member)),
        SqlType::Struct(fields) => ("STRUCT", fields.iter().map(|(name, t)| json!({"name": name, "schema": schema(t)})).collect(), Value::Null),
    };
    json!({"type": name, "fields": fields, "memberSchema": member})
}

/// What a statement that changed the catalog answers.
pub fn current_status(statement: &str, command_id: &str, message: &str, query_id: Option<&str>, sequence: i64) -> Value {
    json!({
        "@type": "currentStatus",
        "statementText": statement,
        "commandId": command_id,
        "commandStatus": {"status": "SUCCESS", "message": message, "queryId": query_id},
        "commandSequenceNumber": sequence,
        "warnings": [],
    })
}

/// The command id ksqlDB gives a statement: what it acts on, its name,
/// and the action.
pub fn command_id(entity: &str, name: &str, action: &str) -> String {
    format!("{entity}/`{name}`/{action}")
}

fn listed(source: &SourceDef) -> Value {
    json!({
        "type": kind_name(source.kind),
        "name": source.name,
        "topic": source.topic,
        "keyFormat": source.key_format.name(),
        "valueFormat": source.value_format.name(),
        "isWindowed": source.window.is_some(),
    })
}

/// `SHOW STREAMS` or `SHOW TABLES`.
pub fn sources_list(statement: &str, catalog: &Catalog, kind: SourceKind) -> Value {
    let sources: Vec<Value> = catalog.all().filter(|s| s.kind == kind).map(listed).collect();
    match kind {
        SourceKind::Stream => json!({"@type": "streams", "statementText": statement, "streams": sources, "warnings": []}),
        SourceKind::Table => json!({"@type": "tables", "statementText": statement, "tables": sources, "warnings": []}),
    }
}

fn query_entry(query: &PersistentQuery, topic: &str) -> Value {
    json!({
        "queryString": query.statement,
        "sinks": [query.sink_name],
        "sinkKafkaTopics": [topic],
        "id": query.id,
        "statusCount": {"RUNNING": 1},
        "queryType": "PERSISTENT",
        "state": "RUNNING",
    })
}

/// `SHOW QUERIES`.
pub fn queries_list(statement: &str, queries: &[PersistentQuery]) -> Value {
    let listed: Vec<Value> = queries.iter().map(|q| query_entry(q, &q.sink.topic)).collect();
    json!({"@type": "queries", "statementText": statement, "queries": listed, "warnings": []})
}

/// `SHOW TOPICS`.
pub fn topics_list(statement: &str, topics: &[TopicInfo]) -> Value {
    let listed: Vec<Value> = topics.iter().map(|t| json!({"name": t.name, "replicaInfo": t.replicas})).collect();
    json!({"@type": "kafka_topics", "statementText": statement, "topics": listed, "warnings": []})
}

/// `SHOW PROPERTIES`: the properties set for the request, over the
/// service's defaults.
pub fn properties_list(statement: &str, defaults: &[(&str, String)], overridden: &std::collections::BTreeMap<String, String>) -> Value {
    let mut properties: Vec<Value> = defaults
        .iter()
        .filter(|(name, _)| !overridden.contains_key(*name))
        .map(|(name, value)| json!({"name": name, "scope": "KSQL", "value": value}))
        .collect();
    properties.extend(overridden.iter().map(|(name, value)| json!({"name": name, "scope": "KSQL", "value": value})));
    json!({
        "@type": "properties",
        "statementText": statement,
        "properties": properties,
        "overwrittenProperties": overridden.keys().collect::<Vec<_>>(),
        "defaultProperties": defaults.iter().map(|(name, _)| name).filter(|name| !overridden.contains_key(**name)).collect::<Vec<_>>(),
        "warnings": [],
    })
}

/// `SHOW VARIABLES`.
pub fn variables_list(statement: &str, variables: &std::collections::BTreeMap<String, String>) -> Value {
    let listed: Vec<Value> = variables.iter().map(|(name, value)| json!({"name": name, "value": value})).collect();
    json!({"@type": "variables", "statementText": statement, "variables": listed, "warnings": []})
}

/// `DESCRIBE name`: the source's columns (keys first, then `ROWTIME`-less
/// values), formats, topic and the queries reading and writing it.
pub fn source_description(source: &SourceDef, queries: &[PersistentQuery], partitions: Option<i32>, extended: bool) -> Value {
    let mut fields: Vec<Value> = source.key.iter().map(|c| json!({"name": c.name, "schema": schema(&c.sql_type), "type": "KEY"})).collect();
    fields.extend(source.value.iter().map(|c| json!({"name": c.name, "schema": schema(&c.sql_type)})));
    fields.extend(source.headers.iter().map(|h| match &h.key {
        None => json!({"name": h.column.name, "schema": schema(&h.column.sql_type), "type": "HEADER"}),
        Some(key) => json!({"name": h.column.name, "schema": schema(&h.column.sql_type), "type": "HEADER", "headerKey": key}),
    }));
    let reading: Vec<Value> = queries.iter().filter(|q| q.plan.source_names().contains(&source.name)).map(|q| query_entry(q, &q.sink.topic)).collect();
    let writing: Vec<Value> = queries.iter().filter(|q| q.sink_name == source.name).map(|q| query_entry(q, &q.sink.topic)).collect();
    json!({
        "name": source.name,
        "windowType": source.window.map(|w| match w {
            KeyWindow::Time { .. } => "TUMBLING",
            KeyWindow::Session => "SESSION",
        }),
        "readQueries": reading,
        "writeQueries": writing,
        "fields": fields,
        "type": kind_name(source.kind),
        "timestamp": source.timestamp.as_ref().map(|(column, _)| column.clone()).unwrap_or_default(),
        "statistics": "",
        "errorStats": "",
        "extended": extended,
        "keyFormat": source.key_format.name(),
        "valueFormat": source.value_format.name(),
        "topic": source.topic,
        "partitions": partitions.unwrap_or(0),
        "replication": if partitions.is_some() { 1 } else { 0 },
        "statement": "",
        "queryOffsetSummaries": [],
        "sourceConstraints": [],
        "clusterStatistics": [],
        "clusterErrorStats": [],
    })
}

/// `SHOW FUNCTIONS`: every scalar and aggregate function, by name.
pub fn functions_list(statement: &str) -> Value {
    let mut functions: Vec<Value> =
        crate::functions::all_scalars().iter().map(|f| json!({"name": f.name, "category": f.category.label(), "type": "SCALAR"})).collect();
    functions.extend(crate::functions::AGGREGATES.iter().map(|(name, _)| json!({"name": name, "category": "AGGREGATE", "type": "AGGREGATE"})));
    functions.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    json!({"@type": "function_names", "statementText": statement, "functions": functions, "warnings": []})
}

/// `DESCRIBE FUNCTION name`; `None` if there is no such function.
pub fn function_description(statement: &str, name: &str) -> Option<Value> {
    let name = name.to_uppercase();
    let (kind, description) = match crate::functions::scalar(&name) {
        Some(scalar) => ("SCALAR", scalar.description),
        None => ("AGGREGATE", crate::functions::AGGREGATES.iter().find(|(n, _)| *n == name)?.1),
    };
    Some(json!({
        "@type": "describe_function",
        "statementText": statement,
        "name": name,
        "description": description,
        "author": "runnel",
        "version": env!("CARGO_PKG_VERSION"),
        "path": "internal",
        "functions": [],
        "type": kind,
        "warnings": [],
    }))
}

/// `EXPLAIN`: a query's sources, sink, columns and topology (the Kafka
/// Streams description of what runs).
pub fn query_description(
    statement: &str,
    id: Option<&str>,
    query: &str,
    sources: &[String],
    sinks: &[String],
    columns: &[(String, SqlType)],
    topology: &str,
) -> Value {
    let fields: Vec<Value> = columns.iter().map(|(name, t)| json!({"name": name, "schema": schema(t)})).collect();
    json!({
        "@type": "queryDescription",
        "statementText": statement,
        "queryDescription": {
            "id": id,
            "statementText": query,
            "windowType": null,
            "fields": fields,
            "sources": sources,
            "sinks": sinks,
            "topology": topology,
            "executionPlan": "",
            "overriddenProperties": {},
            "ksqlHostQueryStatus": {},
            "queryType": if id.is_some() { "PERSISTENT" } else { "PUSH" },
            "queryErrors": [],
            "tasksMetadata": [],
            "state": if id.is_some() { "RUNNING" } else { "" },
        },
        "warnings": [],
    })
}

/// An error object: its `@type`, code, message, and the statement and
/// the entities before it for a statement error.
pub fn error(code: u32, message: &str, statement: Option<&str>, entities: &[Value]) -> Value {
    match statement {
        Some(statement) => {
            json!({"@type": "statement_error", "error_code": code, "message": message, "statementText": statement, "entities": entities})
        }
        None => json!({"@type": "generic_error", "error_code": code, "message": message}),
    }
}

/// The code ksqlDB answers a refused statement with.
pub fn code_of(error: &SqlError) -> u32 {
    match error {
        SqlError::Parse { .. } | SqlError::Invalid(_) | SqlError::NotFound(_) | SqlError::Exists(_) => codes::BAD_STATEMENT,
    }
}

/// A push query's schema as `/query`'s header gives it:
/// "`NAME` TYPE, ...".
pub fn header_schema(columns: &[(String, SqlType)]) -> String {
    columns.iter().map(|(name, sql_type)| format!("`{name}` {sql_type}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_spelled_as_ksqldb_spells_them() {
        assert_eq!(schema(&SqlType::Int), json!({"type": "INTEGER", "fields": null, "memberSchema": null}));
        assert_eq!(schema(&SqlType::Array(Box::new(SqlType::String)))["memberSchema"]["type"], "STRING");
        let nested = SqlType::Struct(vec![("CITY".into(), SqlType::String), ("ZIP".into(), SqlType::Int)]);
        assert_eq!(schema(&nested)["fields"][1], json!({"name": "ZIP", "schema": {"type": "INTEGER", "fields": null, "memberSchema": null}}));
        assert_eq!(schema(&SqlType::Decimal { precision: 4, scale: 2 })["parameters"], json!({"precision": 4, "scale": 2}));
    }

    #[test]
    fn statement_errors_carry_the_statement_and_what_ran_before() {
        let before = [current_status("CREATE STREAM A ...;", "stream/`A`/create", "Stream created", None, 0)];
        let body = error(codes::BAD_STATEMENT, "line 1:8: ...", Some("SELEC 1;"), &before);
        assert_eq!(body["@type"], "statement_error");
        assert_eq!(body["error_code"], 40001);
        assert_eq!(body["entities"][0]["commandStatus"]["status"], "SUCCESS");
        assert_eq!(error(codes::NOT_FOUND, "no such query", None, &[])["@type"], "generic_error");
    }

    #[test]
    fn headers_name_each_column_and_type() {
        assert_eq!(header_schema(&[("VENDORID".into(), SqlType::Int), ("KSQL_COL_0".into(), SqlType::Bigint)]), "`VENDORID` INTEGER, `KSQL_COL_0` BIGINT");
    }
}
