//! `runnel topic|produce|consume|cluster` driven as a user would, with
//! what they did checked by a second, independent client (librdkafka).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::Value;

use crate::support::{client, Serve};

/// Runs `runnel ARGS` against `bootstrap` with `stdin`; returns (exit code, stdout, stderr).
fn runnel(bootstrap: &str, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(args)
        .env("RUNNEL_BROKERS", bootstrap)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap())
}

#[track_caller]
fn ok(result: (i32, String, String)) -> String {
    assert_eq!(result.0, 0, "runnel failed: {}", result.2);
    result.1
}

#[track_caller]
fn fails(result: (i32, String, String), code: i32, message: &str) {
    assert_eq!(result.0, code, "expected exit {code}: {}", result.2);
    assert!(result.2.contains(message), "stderr should mention {message:?}: {}", result.2);
}

fn rides_csv() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/rides.csv")
}

/// A record as librdkafka read it: key, value, timestamp, headers.
type Seen = (Option<String>, String, i64, Vec<(String, String)>);

/// Every record of a partition, read by librdkafka.
fn read_all(bootstrap: &str, topic: &str, partition: i32) -> Vec<Seen> {
    let consumer: BaseConsumer = client(bootstrap, &[("group.id", "cli-check")]).create().unwrap();
    let (_, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)).unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Beginning).unwrap();
    consumer.assign(&assignment).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while (out.len() as i64) < high {
        assert!(std::time::Instant::now() < deadline);
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            let headers = m
                .headers()
                .map(|h| h.iter().map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())).collect())
                .unwrap_or_default();
            out.push((
                m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                m.timestamp().to_millis().unwrap(),
                headers,
            ));
        }
    }
    out
}

#[test]
fn topic_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[], &[]);
    let b = serve.bootstrap();
    ok(runnel(&b, &["topic", "create", "life", "--partitions", "2", "--config", "retention.ms=3600000"], ""));
    fails(runnel(&b, &["topic", "create", "life"], ""), 1, "could not create topic life");
    ok(runnel(&b, &["topic", "create", "life", "--if-not-exists"], ""));
    fails(runnel(&b, &["topic", "create", "bad", "--config", "retention.ms=soon"], ""), 1, "could not create topic bad");
    let listed = ok(runnel(&b, &["topic", "list"], ""));
    assert!(listed.contains("life") && !listed.contains("__consumer_offsets"), "{listed}");
    assert!(ok(runnel(&b, &["topic", "list", "--internal"], "")).contains("__consumer_offsets"));

    ok(runnel(&b, &["topic", "alter", "life", "--config", "segment.ms=60000"], ""));
    fails(runnel(&b, &["topic", "alter", "life", "--config", "made.up=1"], ""), 1, "refused made.up=1");
    ok(runnel(&b, &["topic", "add-partitions", "life", "4"], ""));
    let described: Value = serde_json::from_str(&ok(runnel(&b, &["topic", "describe", "life", "--json"], ""))).unwrap();
    assert_eq!(described["partitions"].as_array().unwrap().len(), 4);
    assert_eq!(described["configs"]["retention.ms"], "3600000", "alter keeps the other overrides");
    assert_eq!(described["configs"]["segment.ms"], "60000");
    assert_eq!(described["partitions"][0]["leader"], 1);

    ok(runnel(&b, &["topic", "delete", "life"], ""));
    fails(runnel(&b, &["topic", "describe", "life"], ""), 1, "topic life does not exist");
}

#[test]
fn produce_the_course_csv_as_json_rides() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[], &[]);
    let b = serve.bootstrap();
    let csv = rides_csv();
    let csv = csv.to_str().unwrap();
    let (_, _, stderr) = runnel(&b, &["produce", "rides_json", "--csv", csv, "--key", "PULocationID", "--time-column", "tpep_pickup_datetime"], "");
    assert!(stderr.contains("produced 266 records to rides_json"), "{stderr}");
    let records = read_all(&b, "rides_json", 0);
    assert_eq!(records.len(), 266);
    let (key, value, timestamp, _) = &records[0];
    assert_eq!(key.as_deref(), Some("238"));
    let ride: Value = serde_json::from_str(value).unwrap();
    assert_eq!(ride["VendorID"], 1);
    assert_eq!(ride["trip_distance"], 1.5);
    assert_eq!(ride["store_and_fwd_flag"], "N");
    assert_eq!(ride["tpep_pickup_datetime"], "2020-07-01 00:25:32");
    assert_eq!(*timestamp, 1_593_563_132_000, "the time column is the record timestamp");

    ok(runnel(&b, &["produce", "limited", "--csv", csv, "--limit", "10"], ""));
    assert_eq!(read_all(&b, "limited", 0).len(), 10);
}

#[test]
fn malformed_input_is_reported_with_its_line_and_never_half_done_silently() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[], &[]);
    let b = serve.bootstrap();
    let csv = dir.path().join("broken.csv");
    std::fs::write(&csv, "a,b\n1,2\n3\n5,6\n").unwrap();
    let csv = csv.to_str().unwrap();
    fails(runnel(&b, &["produce", "stop", "--csv", csv], ""), 1, "line 3");
    let (code, _, stderr) = runnel(&b, &["produce", "skip", "--csv", csv, "--on-error", "skip"], "");
    assert_eq!(code, 0);
    assert!(stderr.contains("skipped") && stderr.contains("line 3") && stderr.contains("produced 2 records"), "{stderr}");
    fails(runnel(&b, &["produce", "json", "--format", "json"], "{\"ok\": 1}\n{broken\n"), 1, "line 2: invalid JSON");
    fails(runnel(&b, &["produce", "x", "--csv", "/no/such/file.csv"], ""), 1, "cannot read /no/such/file.csv");
    fails(runnel("127.0.0.1:1", &["produce", "x", "-X", "socket.connection.setup.timeout.ms=1000"], "a\n"), 3, "unreachable");
}

#[test]
fn produce_without_auto_create_needs_create() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &["--auto-create-topics", "false"], &[]);
    let b = serve.bootstrap();
    fails(runnel(&b, &["produce", "fresh"], "a\n"), 1, "topic fresh does not exist (use --create or enable auto-create)");
    ok(runnel(&b, &["produce", "fresh", "--create"], "a\n"));
    assert_eq!(read_all(&b, "fresh", 0).len(), 1);
}

#[test]
fn stdin_lines_with_keys_and_headers_round_trip_through_consume() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[], &[]);
    let b = serve.bootstrap();
    ok(runnel(&b, &["produce", "lines", "--parse-key", "--key-separator", ":", "--header", "source=cli"], "k1:{\"n\":1}\nk2:{\"n\":2}\nk3:{\"n\":3}\n"));
    let records = read_all(&b, "lines", 0);
    assert_eq!(records.iter().map(|r| r.0.clone().unwrap()).collect::<Vec<_>>(), ["k1", "k2", "k3"]);
    assert_eq!(records[0].3, vec![("source".to_string(), "cli".to_string())]);

    assert_eq!(ok(runnel(&b, &["consume", "lines", "--no-follow", "--print", "{key}@{offset}"], "")), "k1@0\nk2@1\nk3@2\n");
    assert_eq!(ok(runnel(&b, &["consume", "lines", "--offset", "1", "--count", "1", "--print", "{value}"], "")), "{\"n\":2}\n");
    assert_eq!(ok(runnel(&b, &["consume", "lines", "--offset", "-1", "--no-follow", "--print", "{key}"], "")), "k3\n");
    let jsonl = ok(runnel(&b, &["consume", "lines", "--no-follow", "--output", "jsonl", "--format", "json"], ""));
    let first: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!((first["key"].as_str(), first["value"]["n"].as_i64(), first["headers"]["source"].as_str()), (Some("k1"), Some(1), Some("cli")));

    // A group consumer commits exactly what it printed, and resumes there.
    assert_eq!(ok(runnel(&b, &["consume", "lines", "--group", "readers", "--from-beginning", "--count", "2", "--print", "{key}"], "")), "k1\nk2\n");
    assert_eq!(ok(runnel(&b, &["consume", "lines", "--group", "readers", "--no-follow", "--print", "{key}"], "")), "k3\n");
    fails(runnel(&b, &["consume", "nowhere", "--no-follow"], ""), 1, "topic nowhere does not exist");
}

#[test]
fn a_closed_pipe_ends_consume_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[], &[]);
    let b = serve.bootstrap();
    let many: String = (0..5000).map(|i| format!("line {i}\n")).collect();
    ok(runnel(&b, &["produce", "long"], &many));
    let mut child = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(["consume", "long", "--no-follow"])
        .env("RUNNEL_BROKERS", &b)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "exit {:?}", output.status);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn cluster_info_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[], &[]);
    let b = serve.bootstrap();
    let info: Value = serde_json::from_str(&ok(runnel(&b, &["cluster", "info", "--json"], ""))).unwrap();
    assert_eq!(info["cluster_id"].as_str().unwrap().len(), 22);
    assert_eq!(info["controller"], 1);
    assert!(info["apis"].as_array().unwrap().iter().any(|a| a[0] == "Produce" && a[1] == 0));
    assert!(ok(runnel(&b, &["version"], "")).starts_with("runnel "));
    assert!(ok(runnel(&b, &["completions", "bash"], "")).contains("runnel"));
}

#[test]
fn consume_from_a_time_returns_exactly_the_later_records() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[], &[]);
    let b = serve.bootstrap();
    let csv = dir.path().join("timed.csv");
    std::fs::write(&csv, "id,at\n1,2020-07-01 00:00:00\n2,2020-07-01 00:10:00\n3,2020-07-01 00:20:00\n4,2020-07-01 00:30:00\n5,2020-07-01 00:40:00\n").unwrap();
    ok(runnel(&b, &["produce", "timed", "--csv", csv.to_str().unwrap(), "--time-column", "at"], ""));
    let later = ok(runnel(&b, &["consume", "timed", "--from-time", "2020-07-01T00:25:00Z", "--no-follow", "--format", "json", "--output", "jsonl"], ""));
    let ids: Vec<i64> = later.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["value"]["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [4, 5]);
    assert_eq!(ok(runnel(&b, &["consume", "timed", "--from-time", "-1h", "--no-follow"], "")), "", "nothing is from the last hour");
    assert_eq!(ok(runnel(&b, &["consume", "timed", "--from-beginning", "--count", "2", "--print", "{offset}"], "")), "0\n1\n");
}

#[test]
fn avro_through_the_registry_and_schema_commands() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[], &[]);
    let b = serve.bootstrap();
    let registry = format!("http://{}", serve.registry.clone().expect("the registry runs"));
    let schema = dir.path().join("ride.avsc");
    std::fs::write(
        &schema,
        r#"{"type":"record","name":"RideRecord","namespace":"com.datatalksclub.taxi","fields":[{"name":"VendorID","type":"int"},{"name":"passenger_count","type":"int"},{"name":"trip_distance","type":"float"},{"name":"payment_type","type":"int"},{"name":"total_amount","type":"float"}]}"#,
    )
    .unwrap();
    let with_registry = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(["--schema-registry".to_string(), registry.clone()]);
        all
    };
    let run = |args: Vec<String>, stdin: &str| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        runnel(&b, &refs, stdin)
    };
    let csv = rides_csv();
    let (code, _, stderr) = run(
        with_registry(&[
            "produce",
            "rides_avro",
            "--csv",
            csv.to_str().unwrap(),
            "--format",
            "avro",
            "--schema-file",
            schema.to_str().unwrap(),
            "--limit",
            "5",
        ]),
        "",
    );
    assert_eq!(code, 0, "{stderr}");
    let records = read_all(&b, "rides_avro", 0);
    assert_eq!(records.len(), 5);
    let (_, _, stderr) = run(with_registry(&["consume", "rides_avro", "--format", "avro", "--no-follow", "--output", "jsonl"]), "");
    assert!(stderr.is_empty(), "{stderr}");
    let out = ok(run(with_registry(&["consume", "rides_avro", "--format", "avro", "--count", "1", "--print", "{value}"]), ""));
    let first: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((first["VendorID"].as_i64(), first["payment_type"].as_i64()), (Some(1), Some(2)));

    let listed = ok(run(with_registry(&["schema", "list"]), ""));
    assert!(listed.lines().any(|l| l.starts_with("rides_avro-value") && l.contains("AVRO")), "{listed}");
    assert!(ok(run(with_registry(&["schema", "get", "rides_avro-value"]), "")).contains("RideRecord"));
    assert_eq!(ok(run(with_registry(&["schema", "config", "rides_avro-value"]), "")), "BACKWARD\n");
    assert!(ok(run(with_registry(&["schema", "check", "rides_avro-value", "--file", schema.to_str().unwrap()]), "")).contains("is compatible"));
    let changed = dir.path().join("changed.avsc");
    std::fs::write(
        &changed,
        std::fs::read_to_string(&schema).unwrap().replace(r#"{"name":"VendorID","type":"int"}"#, r#"{"name":"VendorID","type":"string"}"#),
    )
    .unwrap();
    fails(run(with_registry(&["schema", "check", "rides_avro-value", "--file", changed.to_str().unwrap()]), ""), 1, "not compatible");
    fails(run(with_registry(&["schema", "register", "rides_avro-value", "--file", changed.to_str().unwrap()]), ""), 1, "error 409");
    ok(run(with_registry(&["schema", "config", "rides_avro-value", "--level", "none"]), ""));
    assert!(ok(run(with_registry(&["schema", "register", "rides_avro-value", "--file", changed.to_str().unwrap()]), "")).contains("with id 2"));

    fails(
        run(with_registry(&["produce", "rides_avro", "--format", "avro", "--subject", "rides_avro-value"]), "{\"VendorID\": 3}\n"),
        1,
        "line 1: does not match the schema",
    );

    // JSON Schema: validated, registered and sent in the wire format.
    let json_schema = dir.path().join("ride.schema.json");
    std::fs::write(&json_schema, r#"{"type":"object","properties":{"vendor_id":{"type":"integer"}},"required":["vendor_id"]}"#).unwrap();
    let json_args =
        |extra: &[&str]| with_registry(&[&["produce", "rides_js", "--format", "json", "--schema-file", json_schema.to_str().unwrap()][..], extra].concat());
    ok(run(json_args(&[]), "{\"vendor_id\": 7}\n"));
    fails(run(json_args(&[]), "{\"vendor_id\": \"seven\"}\n"), 1, "line 1: does not match the schema");
    let raw = read_all(&b, "rides_js", 0);
    assert_eq!(raw.len(), 1, "the invalid record was not sent");
    assert_eq!(ok(run(with_registry(&["consume", "rides_js", "--format", "json", "--no-follow"]), "")), "{\"vendor_id\":7}\n");
    assert!(ok(run(with_registry(&["schema", "get", "rides_js-value", "--json"]), "")).contains("\"schemaType\": \"JSON\""));

    // Protobuf: registered, encoded with message indexes, decoded back.
    let proto = dir.path().join("ride.proto");
    std::fs::write(
        &proto,
        "syntax = \"proto3\";\npackage taxi;\nmessage Ride {\n  int32 vendor_id = 1;\n  float total_amount = 2;\n  message Stop { int32 zone = 1; }\n}\n",
    )
    .unwrap();
    let proto_args =
        |extra: &[&str]| with_registry(&[&["produce", "rides_proto", "--format", "protobuf", "--schema-file", proto.to_str().unwrap()][..], extra].concat());
    ok(run(proto_args(&[]), "{\"vendor_id\": 2, \"total_amount\": 9.5}\n"));
    ok(run(proto_args(&["--message", "Stop"]), "{\"zone\": 238}\n"));
    fails(run(proto_args(&[]), "{\"vendor_id\": \"two\"}\n"), 1, "does not match the schema");
    let decoded = ok(run(with_registry(&["consume", "rides_proto", "--format", "protobuf", "--no-follow"]), ""));
    let lines: Vec<Value> = decoded.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, vec![serde_json::json!({"vendorId": 2, "totalAmount": 9.5}), serde_json::json!({"zone": 238})]);
    fails(run(with_registry(&["consume", "lines-plain", "--format", "avro", "--no-follow"]), ""), 1, "does not exist");
}
