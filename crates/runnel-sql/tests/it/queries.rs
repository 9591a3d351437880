//! Runs `cases/queries.txt`, in the spirit of ksqlDB's query-validation
//! tests: each case's statements run on the engine, its input records go
//! through the queries on runnel-streams' test driver, and the records
//! written to each output topic must be the expected ones — or the
//! statements must fail with the expected error.
//!
//! A case:
//!
//! ```text
//! === name
//! statements...;
//! --- input
//! topic timestamp key value      (`-` for a null key or value; a value may
//!                                 end with ` ## k=v; k=v; k` headers, `k`
//!                                 alone having a null value)
//! --- output
//! TOPIC timestamp key value      (windowed keys print as key@start or key@start-end)
//! --- error
//! the message of the statement that fails
//! ```
//!
//! A case may have a `--- schemas` section of `subject TYPE schema` lines,
//! registered before its statements run. Values of AVRO, PROTOBUF
//! and JSON_SR sources are given, and their sinks' values shown, as JSON
//! of their columns: they go through the registry formats on the way.
//!
//! A push query (`SELECT ... EMIT CHANGES`) writes to the topic `select`,
//! its key as JSON and its value holding every selected column. Records of
//! `INSERT INTO ... VALUES` statements are written before the input.

use runnel_sql::ast::Statement;
use runnel_sql::catalog::{KeyWindow, SourceDef};
use runnel_sql::engine::{Engine, Outcome};
use runnel_sql::format::{json_to_value, Format, KeySerde, RowFormat};
use runnel_sql::planner::SinkSpec;
use runnel_sql::row::ProcessingLog;
use runnel_sql::schema::{MemoryRegistry, SchemaRegistry};
use runnel_sql::value::Value;
use runnel_streams::serde::{BytesSerde, Nullable, Serde};
use runnel_streams::{StreamsBuilder, TopologyTestDriver};

struct Case {
    name: String,
    line: usize,
    statements: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    error: Option<String>,
    schemas: Vec<String>,
}

fn cases(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    let mut section = "";
    for (number, line) in text.lines().enumerate() {
        if let Some(name) = line.strip_prefix("=== ") {
            cases.push(Case {
                name: name.to_string(),
                line: number + 1,
                statements: String::new(),
                inputs: Vec::new(),
                outputs: Vec::new(),
                error: None,
                schemas: Vec::new(),
            });
            section = "statements";
            continue;
        }
        if let Some(next) = line.strip_prefix("--- ") {
            section = match next.trim() {
                "input" => "input",
                "output" => "output",
                "error" => "error",
                "schemas" => "schemas",
                other => panic!("line {}: unknown section {other}", number + 1),
            };
            continue;
        }
        let Some(case) = cases.last_mut() else { continue };
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match section {
            "statements" => {
                case.statements.push_str(line);
                case.statements.push('\n');
            }
            "input" => case.inputs.push(line.to_string()),
            "output" => case.outputs.push(line.to_string()),
            "schemas" => case.schemas.push(line.to_string()),
            _ => case.error = Some(case.error.take().map_or(line.to_string(), |e| format!("{e}\n{line}"))),
        }
    }
    cases
}

/// Whether a source's keys are one column, written as text in cases
/// (KAFKA keys, and registry formats' keys).
fn bare_key(source: &SourceDef) -> bool {
    (source.key_format == Format::Kafka || source.key_format.uses_registry()) && source.key.len() == 1
}

/// The bytes of a key written as text, for the source reading `topic`.
fn key_bytes(source: Option<&SourceDef>, token: &str) -> Option<Vec<u8>> {
    if token == "-" {
        return None;
    }
    match source {
        Some(source) if bare_key(source) => {
            let value = runnel_sql::eval::cast(Value::String(token.to_string()), &source.key[0].sql_type).expect("a key of the column's type");
            source.key_row_format(ProcessingLog::shared()).write(&[value])
        }
        _ => Some(token.as_bytes().to_vec()),
    }
}

/// A written key as text: its columns (a KAFKA-format key's value, or the
/// JSON), with its window.
fn key_text(source: Option<&SourceDef>, bytes: Option<&[u8]>) -> String {
    let Some(bytes) = bytes else { return "-".into() };
    let (inner, window) = match source.and_then(|s| s.window) {
        Some(KeyWindow::Time { .. }) if bytes.len() >= 8 => {
            let (inner, start) = bytes.split_at(bytes.len() - 8);
            (inner, format!("@{}", i64::from_be_bytes(start.try_into().unwrap())))
        }
        Some(KeyWindow::Session) if bytes.len() >= 16 => {
            let (inner, bounds) = bytes.split_at(bytes.len() - 16);
            let (end, start) = bounds.split_at(8);
            (inner, format!("@{}-{}", i64::from_be_bytes(start.try_into().unwrap()), i64::from_be_bytes(end.try_into().unwrap())))
        }
        _ => (bytes, String::new()),
    };
    let shown = match source {
        Some(source) if bare_key(source) => {
            KeySerde(source.key_row_format(ProcessingLog::shared())).deserialize(Some(inner)).map(|k| k.0[0].to_string()).unwrap_or_else(|e| format!("<{e}>"))
        }
        _ => String::from_utf8_lossy(inner).into_owned(),
    };
    format!("{shown}{window}")
}

/// Whether values in `format` are given and shown as JSON of their
/// columns: the registry formats and PROTOBUF_NOSR.
fn written_as_rows(format: Format) -> bool {
    format.uses_registry() || format == Format::ProtobufNoSr
}

/// A value given as JSON, in the source's registry format.
fn value_bytes(source: Option<&SourceDef>, value: &str) -> Option<Vec<u8>> {
    if value == "-" {
        return None;
    }
    match source {
        Some(source) if written_as_rows(source.value_format) => {
            let json: serde_json::Value = serde_json::from_str(value).expect("a JSON value");
            let row: Vec<Value> =
                source.value.iter().map(|c| json.get(&c.name).map_or(Value::Null, |v| json_to_value(v, &c.sql_type).expect("a column value"))).collect();
            Some(source.value_row_format(ProcessingLog::shared()).try_write(&row).expect("a row the schema holds").expect("a value"))
        }
        _ => Some(value.as_bytes().to_vec()),
    }
}

/// A written value as text: registry formats' rows as JSON.
fn value_text(source: Option<&SourceDef>, bytes: Option<&[u8]>) -> String {
    let Some(bytes) = bytes else { return "-".into() };
    match source {
        Some(source) if written_as_rows(source.value_format) => match source.value_row_format(ProcessingLog::shared()).read(Some(bytes)) {
            Ok(row) => {
                let json = RowFormat::value(Format::Json, source.value_columns(), &source.topic, ProcessingLog::shared());
                String::from_utf8(json.write(&row.expect("a row")).expect("JSON")).expect("UTF-8")
            }
            Err(e) => format!("<{e}>"),
        },
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn run(case: &Case) -> Result<Vec<String>, String> {
    let registry = MemoryRegistry::shared();
    for line in &case.schemas {
        let mut parts = line.splitn(3, ' ');
        let (subject, kind, schema) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().expect("subject TYPE schema"));
        registry.register(subject, kind, schema).expect("a schema");
    }
    let mut engine = Engine::with_registry(registry);
    let outcomes = engine.execute(&case.statements).map_err(|e| e.to_string())?;
    let builder = StreamsBuilder::new();
    for query in engine.queries() {
        query.plan.build(&builder, &query.sink);
    }
    let mut select_schema = None;
    let mut inserted = Vec::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Transient(plan) => {
                let sink = SinkSpec { topic: "select".into(), key_format: Format::Json, value_format: Format::Json, key_schema: None, value_schema: None };
                plan.build(&builder, &sink);
                select_schema = Some(plan.output.clone());
            }
            Outcome::Other(Statement::InsertValues { target, columns, values }) => {
                inserted.push(engine.values_record(&target, &columns, &values, 0).map_err(|e| e.to_string())?);
            }
            _ => {}
        }
    }
    let mut driver = TopologyTestDriver::new(builder.build());
    for record in inserted {
        driver.pipe_bytes(&record.topic, record.key, record.value, record.timestamp);
    }
    let by_topic = |topic: &str| engine.catalog().all().find(|s| s.topic == topic).cloned();
    for input in &case.inputs {
        let mut parts = input.splitn(4, ' ');
        let (topic, timestamp, key, rest) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap_or("-"));
        let (value, headers) = rest.split_once(" ## ").unwrap_or((rest, ""));
        let headers = headers
            .split(';')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| match h.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(value.as_bytes().to_vec())),
                None => (h.to_string(), None),
            })
            .collect();
        let source = by_topic(topic);
        let (key, value) = (key_bytes(source.as_ref(), key), value_bytes(source.as_ref(), value));
        driver.pipe_bytes_with_headers(topic, key, value, headers, timestamp.parse().expect("a timestamp"));
    }
    let mut topics: Vec<String> = Vec::new();
    for line in &case.outputs {
        let topic = line.split(' ').next().unwrap().to_string();
        if !topics.contains(&topic) {
            topics.push(topic);
        }
    }
    for query in engine.queries() {
        if !topics.contains(&query.sink.topic) {
            topics.push(query.sink.topic.clone());
        }
    }
    if select_schema.is_some() && !topics.contains(&"select".to_string()) {
        topics.push("select".into());
    }
    let mut written = Vec::new();
    for topic in topics {
        let source = by_topic(&topic).or_else(|| {
            select_schema.as_ref().filter(|_| topic == "select").map(|schema| SourceDef {
                name: "SELECT".into(),
                kind: schema.kind,
                topic: "select".into(),
                key: Vec::new(),
                value: Vec::new(),
                headers: Vec::new(),
                key_format: Format::Json,
                value_format: Format::Json,
                timestamp: None,
                partitions: None,
                window: schema.window,
                read_only: true,
                key_schema: None,
                value_schema: None,
            })
        });
        let output = driver.output_topic(&topic, Nullable(BytesSerde), Nullable(BytesSerde));
        for record in driver.read(&output).map_err(|e| e.to_string())? {
            let value = value_text(source.as_ref(), record.value.as_deref());
            written.push(format!("{topic} {} {} {value}", record.timestamp, key_text(source.as_ref(), record.key.as_deref())));
        }
    }
    Ok(written)
}

#[test]
fn every_query_case_writes_what_it_expects() {
    let all = cases(include_str!("cases/queries.txt"));
    let mut failures = Vec::new();
    for case in &all {
        match (run(case), &case.error) {
            (Ok(written), None) if written == case.outputs => {}
            (Err(error), Some(expected)) if &error == expected => {}
            (outcome, _) => failures.push(format!(
                "line {}: {}\n  expected: {}\n  got:      {}",
                case.line,
                case.name,
                case.error.clone().unwrap_or_else(|| case.outputs.join("\n            ")),
                match outcome {
                    Ok(written) => written.join("\n            "),
                    Err(error) => format!("error: {error}"),
                }
            )),
        }
    }
    assert!(all.len() >= 20, "only {} cases", all.len());
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), all.len(), failures.join("\n"));
}

#[test]
fn a_stream_joined_on_its_own_key_in_the_other_side_s_key_format_is_not_repartitioned() {
    let topology = |statements: &str| {
        let mut engine = Engine::new();
        engine.execute(statements).unwrap_or_else(|e| panic!("{statements}: {e}"));
        engine.topology().describe()
    };
    let sources = "CREATE STREAM pickups (zone INT KEY, vendor STRING, other INT) WITH (kafka_topic='pickups', value_format='JSON');
        CREATE STREAM dropoffs (zone INT KEY, fare DOUBLE) WITH (kafka_topic='dropoffs', value_format='JSON');
        CREATE TABLE zones (id INT PRIMARY KEY, name STRING) WITH (kafka_topic='zones', value_format='JSON');
        CREATE TABLE json_keyed (id INT PRIMARY KEY, name STRING) WITH (kafka_topic='json_keyed', key_format='JSON', value_format='JSON');";
    let in_place = [
        "CREATE STREAM a AS SELECT p.zone, z.name FROM pickups p JOIN zones z ON p.zone = z.id;",
        "CREATE STREAM a AS SELECT p.zone, d.fare FROM pickups p JOIN dropoffs d WITHIN 1 MINUTE ON p.zone = d.zone;",
    ];
    for query in in_place {
        let described = topology(&format!("{sources}\n{query}"));
        assert!(!described.contains("repartition"), "{query}\n{described}");
    }
    let repartitioned = [
        "CREATE STREAM a AS SELECT p.other, z.name FROM pickups p JOIN zones z ON p.other = z.id;",
        "CREATE STREAM a AS SELECT p.zone, z.name FROM pickups p JOIN json_keyed z ON p.zone = z.id;",
        "CREATE STREAM a AS SELECT p.other, d.fare FROM pickups p JOIN dropoffs d WITHIN 1 MINUTE ON p.other = d.zone;",
    ];
    for query in repartitioned {
        let described = topology(&format!("{sources}\n{query}"));
        assert!(described.contains("repartition"), "{query}\n{described}");
    }
}
