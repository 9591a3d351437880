//! `runnel serve` configuration and restarts.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::support::{client, Serve};

/// The broker address a Metadata request on `addr` returns. Raw protocol,
/// because a real client would go on to dial the advertised address.
fn metadata_broker(addr: &str) -> (String, i32) {
    use bytes::{Buf, BufMut, BytesMut};
    use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, Encodable};
    use std::io::{Read, Write};

    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let mut body = BytesMut::new();
    RequestHeader::default().with_request_api_key(ApiKey::Metadata as i16).with_request_api_version(1).with_correlation_id(1).encode(&mut body, 1).unwrap();
    MetadataRequest::default().with_topics(Some(vec![])).encode(&mut body, 1).unwrap();
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    stream.write_all(&frame).unwrap();
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).unwrap();
    let mut response = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut response).unwrap();
    let mut response = bytes::Bytes::from(response);
    ResponseHeader::decode(&mut response, 0).unwrap();
    let metadata = MetadataResponse::decode(&mut response, 1).unwrap();
    assert_eq!(response.remaining(), 0);
    let broker = &metadata.brokers[0];
    (broker.host.to_string(), broker.port)
}

#[test]
fn each_listener_advertises_its_own_address() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &["--listener", "DOCKER=127.0.0.1:0@broker:29092"], &[]);
    assert_eq!(serve.listeners.len(), 2);
    let default = &serve.listeners[0];
    let docker = serve.listeners.iter().find(|(name, _)| name == "DOCKER").unwrap();
    let (host, port) = metadata_broker(&default.1);
    assert_eq!(format!("{host}:{port}"), default.1, "default listener advertises its bound address");
    let (host, port) = metadata_broker(&docker.1);
    assert_eq!((host.as_str(), port), ("broker", 29092), "metadata follows the listener the client used");
}

#[test]
fn flags_override_environment_which_overrides_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("runnel.toml");
    std::fs::write(&file, "[broker]\nnum_partitions = 2\nauto_create_topics = true\n").unwrap();
    let data = dir.path().join("data");
    let config = file.to_str().unwrap();
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], usize);
    let cases: [Case; 3] = [
        (&["--config", config], &[], 2),
        (&["--config", config], &[("RUNNEL_NUM_PARTITIONS", "3")], 3),
        (&["--config", config, "--num-partitions", "4"], &[("RUNNEL_NUM_PARTITIONS", "3")], 4),
    ];
    for (i, (args, env, expected)) in cases.into_iter().enumerate() {
        let serve = Serve::start(&data, args, env);
        let consumer: BaseConsumer = client(&serve.bootstrap(), &[("allow.auto.create.topics", "true")]).create().unwrap();
        let topic = format!("layered-{i}");
        let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10)).unwrap();
        assert_eq!(metadata.topics()[0].partitions().len(), expected, "case {i}");
    }
}

#[test]
fn bad_configuration_is_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [&[&str]; 3] = [&["--topic-default", "retention.ms=soon"], &["--num-partitions", "0"], &["--listener", "no-address-here"]];
    for args in cases {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_runnel"))
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--kafka-listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(!output.stderr.is_empty(), "{args:?} should explain itself");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_topics_configs_and_data_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = Serve::start(dir.path(), &[], &[]);
    let admin: AdminClient<DefaultClientContext> = client(&first.bootstrap(), &[]).create().unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let topic = NewTopic::new("kept", 3, TopicReplication::Fixed(1)).set("retention.ms", "86400000");
    admin.create_topics([&topic], &options).await.unwrap();
    let producer: BaseProducer = client(&first.bootstrap(), &[("acks", "all")]).create().unwrap();
    for i in 0..30 {
        producer.send(BaseRecord::<(), _>::to("kept").partition(i % 3).payload("durable")).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    let cluster_id = first.log().into_iter().find(|l| l.contains("ready")).unwrap();
    first.stop();

    let second = Serve::start(dir.path(), &[], &[]);
    let ready = second.log().into_iter().find(|l| l.contains("ready")).unwrap();
    assert_eq!(field_of(&ready, "cluster_id"), field_of(&cluster_id, "cluster_id"), "cluster id persists");
    assert_eq!(field_of(&ready, "node_id"), "1", "node id persists");
    let admin: AdminClient<DefaultClientContext> = client(&second.bootstrap(), &[]).create().unwrap();
    let configs = admin.describe_configs([&ResourceSpecifier::Topic("kept")], &options).await.unwrap().remove(0).unwrap();
    assert_eq!(configs.get("retention.ms").unwrap().value.as_deref(), Some("86400000"));
    let consumer: BaseConsumer = client(&second.bootstrap(), &[]).create().unwrap();
    for partition in 0..3 {
        let (low, high) = consumer.fetch_watermarks("kept", partition, Duration::from_secs(10)).unwrap();
        assert_eq!((low, high), (0, 10));
    }
}

fn field_of(line: &str, key: &str) -> String {
    let start = line.find(&format!("{key}=")).unwrap() + key.len() + 1;
    line[start..].split_whitespace().next().unwrap().to_string()
}

/// The body of `GET path` on an HTTP/1.1 server.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()
}

#[test]
fn serve_starts_the_sql_service_as_a_client_of_its_broker() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[], &[]);
    let info: serde_json::Value = serde_json::from_str(&http_get(serve.sql.as_ref().unwrap(), "/info")).unwrap();
    let cluster_id = serve.log().iter().find(|l| l.contains("runnel ready")).map(|l| field_of(l, "cluster_id")).unwrap();
    assert_eq!(info["KsqlServerInfo"]["kafkaClusterId"], cluster_id.as_str());
    assert_eq!(info["KsqlServerInfo"]["ksqlServiceId"], "default_");
    // No statement ran, so the command topic is not made yet.
    let topics = std::process::Command::new(env!("CARGO_BIN_EXE_runnel")).args(["topic", "list", "-b", &serve.bootstrap()]).output().unwrap();
    let listed = String::from_utf8_lossy(&topics.stdout);
    assert!(topics.status.success() && listed.contains("_schemas"), "{listed}{}", String::from_utf8_lossy(&topics.stderr));
    assert!(!listed.contains("command_topic"), "{listed}");
}
