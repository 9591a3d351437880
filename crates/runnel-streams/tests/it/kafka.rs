//! The course's count against a real broker (runnel, in process): the
//! counts are right, and a restarted application restores its state from
//! the changelog and carries on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use runnel_broker::{BrokerConfig, BrokerState, ListenerConfig};
use runnel_streams::serde::{I64Serde, JsonSerde, StringSerde, TimeWindowedSerde};
use runnel_streams::{KafkaStreams, StreamsBuilder, StreamsConfig, TimeWindows, Topology};
use serde_json::{Map, Value};

use crate::rides;

/// A runnel broker on an ephemeral port, stopped with its runtime.
pub struct Broker {
    pub bootstrap: String,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// Starts runnel's Schema Registry against this broker; returns its URL.
    pub fn start_registry(&self) -> String {
        let bootstrap = self.bootstrap.clone();
        self.runtime.block_on(async move {
            let registry = runnel_registry::Registry::open(&bootstrap).await.unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, runnel_registry::router(Arc::new(registry))).await });
            url
        })
    }
}

pub fn start_broker() -> Broker {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig {
        data_dir: dir.path().to_path_buf(),
        listeners: vec![ListenerConfig { name: "PLAINTEXT".into(), listen: "127.0.0.1:0".parse().unwrap(), advertise: None }],
        ..BrokerConfig::default()
    };
    let listeners = runtime.block_on(runnel_broker::bind(&config.listeners)).unwrap();
    let bootstrap = format!("127.0.0.1:{}", listeners[0].1.local_addr.port());
    let state = Arc::new(BrokerState::open(config).unwrap());
    runtime.spawn(runnel_broker::run(state, listeners, std::future::pending()));
    Broker { bootstrap, runtime, _dir: dir }
}

pub fn client(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config
}

pub fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create().unwrap();
    let topics: Vec<NewTopic> = topics.iter().map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1))).collect();
    for created in futures::executor::block_on(admin.create_topics(&topics, &AdminOptions::new())).unwrap() {
        created.unwrap();
    }
}

/// Sends one record, keyed as the Java client keys them, and waits for it.
fn sender(bootstrap: &str) -> impl Fn(&str, &str, &str) {
    let producer: ThreadedProducer<DefaultProducerContext> = client(bootstrap).set("partitioner", "murmur2_random").create().unwrap();
    move |topic, key, value| {
        producer.send(BaseRecord::to(topic).key(key).payload(value)).map_err(|(e, _)| e).unwrap();
        producer.flush(Duration::from_secs(10)).unwrap();
    }
}

/// The first `count` values written to `topic`, sorted.
fn read_values(bootstrap: &str, topic: &str, count: usize) -> Vec<String> {
    let consumer: BaseConsumer =
        client(bootstrap).set("group.id", format!("{topic}-check")).set("auto.offset.reset", "earliest").set("enable.auto.commit", "false").create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while values.len() < count {
        assert!(Instant::now() < deadline, "{topic} had only {values:?}");
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            values.push(String::from_utf8(message.payload().unwrap().to_vec()).unwrap());
        }
    }
    values.sort();
    values
}

fn count_per_location() -> Topology {
    let builder = StreamsBuilder::new();
    builder.stream("rides", StringSerde, JsonSerde::<Map<String, Value>>::default()).group_by_key().count().to_stream().to(
        "rides-pulocation-count",
        StringSerde,
        I64Serde,
    );
    builder.build()
}

/// The newest count of each key in the output topic.
fn counts(bootstrap: &str) -> BTreeMap<String, i64> {
    latest_longs(bootstrap, "rides-pulocation-count", 2).into_iter().map(|(key, count)| (String::from_utf8(key).unwrap(), count)).collect()
}

/// The newest value, a Long, of each key (as bytes) of `topic`, reading
/// committed records only.
fn latest_longs(bootstrap: &str, topic: &str, partitions: i32) -> BTreeMap<Vec<u8>, i64> {
    all_longs(bootstrap, topic, partitions).into_iter().filter_map(|(key, values)| Some((key, *values.last()?))).collect()
}

/// Every value, a Long, of each key (as bytes) of `topic` in order,
/// reading committed records only.
pub fn all_longs(bootstrap: &str, topic: &str, partitions: i32) -> BTreeMap<Vec<u8>, Vec<i64>> {
    let consumer: BaseConsumer = client(bootstrap).set("group.id", "check").set("isolation.level", "read_committed").create().unwrap();
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for partition in 0..partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)).unwrap();
        if high > low {
            assignment.add_partition_offset(topic, partition, Offset::Offset(low)).unwrap();
            ends.insert(partition, high);
        }
    }
    let mut all: BTreeMap<Vec<u8>, Vec<i64>> = BTreeMap::new();
    if ends.is_empty() {
        return all;
    }
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    // Done when each position passes its end: under exactly-once the
    // last offsets are transaction markers, never delivered.
    while !ends.is_empty() && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            all.entry(message.key().unwrap().to_vec()).or_default().push(i64::from_be_bytes(message.payload().unwrap().try_into().unwrap()));
        }
        let positions = consumer.position().unwrap();
        ends.retain(|partition, end| positions.find_partition(topic, *partition).and_then(|p| p.offset().to_raw()).is_none_or(|at| at < *end));
    }
    all
}

fn await_counts(bootstrap: &str, expected: &BTreeMap<String, i64>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = counts(bootstrap);
        if &seen == expected {
            return;
        }
        assert!(Instant::now() < deadline, "counts never matched: {} keys seen, {} expected", seen.len(), expected.len());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_course_count_runs_against_a_broker_and_resumes_from_its_changelog() {
    course_count_resumes(StreamsConfig::new("kafka_tutorial.kstream.count.plocation.v1", ""));
}

#[test]
fn the_course_count_runs_exactly_once_and_resumes_from_its_changelog() {
    course_count_resumes(StreamsConfig::new("kafka_tutorial.kstream.count.plocation.eos", "").exactly_once());
}

#[test]
fn the_course_count_resumes_from_a_local_checkpoint_and_the_changelog_tail() {
    let state = tempfile::tempdir().unwrap();
    let metrics = course_count_resumes(StreamsConfig::new("kafka_tutorial.kstream.count.plocation.checkpointed", "").with_state_dir(state.path()));
    // The restart read no changelog record: the first run's counts were
    // all in the checkpoint, which the store reads in place.
    assert_eq!(metrics.restored_records, 0, "{metrics:?}");
}

#[test]
fn a_count_larger_than_its_cache_reads_the_rest_from_disk() {
    let state = tempfile::tempdir().unwrap();
    // Four keys in memory per store, for well over a hundred locations:
    // nearly every update reads its count from the file and the cache is
    // trimmed at every commit.
    let config = StreamsConfig::new("kafka_tutorial.kstream.count.plocation.small-cache", "").with_state_dir(state.path()).with_store_cache_entries(4);
    let metrics = course_count_resumes(config);
    assert_eq!(metrics.restored_records, 0, "{metrics:?}");
}

#[test]
fn a_windowed_checkpoint_keeps_only_the_windows_still_in_retention() {
    let broker = start_broker();
    create_topics(&broker.bootstrap, &[("ticks", 1), ("tick-counts", 1)]);
    let topology = || {
        let builder = StreamsBuilder::new();
        builder.stream("ticks", StringSerde, StringSerde).group_by_key().windowed_by(TimeWindows::of_size_and_grace(1_000, 0)).count().to_stream().to(
            "tick-counts",
            TimeWindowedSerde::new(StringSerde, 1_000),
            I64Serde,
        );
        builder.build()
    };
    let state = tempfile::tempdir().unwrap();
    let config = StreamsConfig { commit_interval_ms: 100, ..StreamsConfig::new("ticks-windowed", &broker.bootstrap).with_state_dir(state.path()) };
    // 300 one-second windows of 5 keys, each counted twice.
    let producer: ThreadedProducer<DefaultProducerContext> = client(&broker.bootstrap).create().unwrap();
    // Recent timestamps, so the broker's time retention keeps them.
    let start = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 - 600) * 1_000;
    let send = |from: i64, to: i64| {
        for second in from..to {
            for (key, offset) in (0..5).flat_map(|key| [(key, 100), (key, 600)]) {
                let key = format!("k{key}");
                let record = BaseRecord::to("ticks").key(&key).payload("t").timestamp(start + second * 1_000 + offset);
                producer.send(record).map_err(|(e, _)| e).unwrap();
            }
        }
        producer.flush(Duration::from_secs(10)).unwrap();
    };
    send(0, 300);
    let app = KafkaStreams::start(topology(), config.clone()).unwrap();
    await_records(&app, 3_000);
    app.close().unwrap();

    // The restart loads from its checkpoint only the windows the stream
    // time has not expired (retention is the window's size here), not the
    // 1,500 it ever made; the changelog tail is empty.
    send(300, 301);
    let app = KafkaStreams::start(topology(), config).unwrap();
    await_records(&app, 10);
    let metrics = app.metrics();
    app.close().unwrap();
    assert!(metrics.checkpoint_records <= 10, "{metrics:?}");
    assert_eq!(metrics.restored_records, 0, "{metrics:?}");
    let counts = all_longs(&broker.bootstrap, "tick-counts", 1);
    assert_eq!(counts.len(), 301 * 5);
    assert!(counts.values().all(|updates| updates == &[1, 2]), "every window counted 1 then 2");
}

/// Waits until `app` has processed `count` records.
fn await_records(app: &KafkaStreams, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.metrics().processed_records < count {
        assert!(Instant::now() < deadline, "{:?}", app.metrics());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Counts half the rides, restarts, counts the rest; returns the second
/// run's metrics.
fn course_count_resumes(config: StreamsConfig) -> runnel_streams::StreamsMetrics {
    let broker = start_broker();
    create_topics(&broker.bootstrap, &[("rides", 2), ("rides-pulocation-count", 2)]);
    let producer: ThreadedProducer<DefaultProducerContext> = client(&broker.bootstrap).set("partitioner", "murmur2_random").create().unwrap();
    let rides = rides();
    let (first, second) = rides.split_at(rides.len() / 2);
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    let mut send = |batch: &[Map<String, Value>]| {
        for ride in batch {
            let key = ride["DOLocationID"].as_str().unwrap().to_string();
            *expected.entry(key.clone()).or_default() += 1;
            let value = serde_json::to_vec(ride).unwrap();
            producer.send(BaseRecord::to("rides").key(&key).payload(&value)).map_err(|(e, _)| e).unwrap();
        }
        producer.flush(Duration::from_secs(10)).unwrap();
        expected.clone()
    };
    let config = StreamsConfig { commit_interval_ms: 100, bootstrap_servers: broker.bootstrap.clone(), ..config };

    let after_first = send(first);
    let app = KafkaStreams::start(count_per_location(), config.clone()).unwrap();
    await_counts(&broker.bootstrap, &after_first);
    app.close().unwrap();

    // A new instance restores the counts from the changelog and goes on.
    let after_both = send(second);
    let app = KafkaStreams::start(count_per_location(), config).unwrap();
    await_counts(&broker.bootstrap, &after_both);
    // Interactive queries read the same counts from the running stores.
    let store = app.key_value_store::<String, i64>("KSTREAM-AGGREGATE-STATE-STORE-0000000001").expect("the count's store");
    let (key, count) = after_both.iter().next().unwrap();
    assert_eq!(store.get(key), Some(*count));
    assert_eq!(store.approximate_num_entries(), after_both.len());
    assert!(app.key_value_store::<String, i64>("no-such-store").is_none());
    let metrics = app.metrics();
    app.close().unwrap();
    metrics
}

#[test]
fn a_join_after_a_key_change_repartitions_through_the_broker() {
    use runnel_streams::{JoinWindows, StreamJoined};
    let broker = start_broker();
    create_topics(&broker.bootstrap, &[("trips", 2), ("pickups", 2)]);
    let builder = StreamsBuilder::new();
    let trips = builder.stream("trips", StringSerde, StringSerde);
    // Pickups arrive keyed by vendor; the location is in the value.
    let pickups = builder.stream("pickups", StringSerde, StringSerde).select_key(|_, location| location.clone());
    trips
        .join(
            &pickups,
            |trip, location| format!("{trip}@{location}"),
            JoinWindows::of_time_difference_and_grace(60_000, 0),
            StreamJoined::with(StringSerde, StringSerde, StringSerde),
        )
        .to("joined", StringSerde, StringSerde);
    let app = KafkaStreams::start(builder.build(), StreamsConfig { commit_interval_ms: 100, ..StreamsConfig::new("join-app", &broker.bootstrap) }).unwrap();
    let producer: ThreadedProducer<DefaultProducerContext> = client(&broker.bootstrap).set("partitioner", "murmur2_random").create().unwrap();
    let now = 1_700_000_000_000i64;
    for location in ["132", "148", "43", "7"] {
        producer.send(BaseRecord::to("trips").key(location).payload(&format!("trip-{location}")).timestamp(now)).map_err(|(e, _)| e).unwrap();
        producer.send(BaseRecord::to("pickups").key("vendor-2").payload(location).timestamp(now + 1_000)).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(read_values(&broker.bootstrap, "joined", 4), ["trip-132@132", "trip-148@148", "trip-43@43", "trip-7@7"]);
    app.close().unwrap();
    let consumer: BaseConsumer = client(&broker.bootstrap).create().unwrap();
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    assert!(metadata.topics().iter().any(|t| t.name().starts_with("join-app-KSTREAM-KEY-SELECT-") && t.name().ends_with("-repartition")));
}

#[test]
fn a_global_table_is_read_whole_by_every_task_and_followed() {
    let broker = start_broker();
    // The table's topic needs no co-partitioning with the stream's.
    create_topics(&broker.bootstrap, &[("zones", 3), ("trips", 2), ("trip-zones", 1)]);
    let send = sender(&broker.bootstrap);
    for (id, zone) in [("1", "Newark Airport"), ("4", "Alphabet City"), ("132", "JFK Airport")] {
        send("zones", id, zone);
    }
    let builder = StreamsBuilder::new();
    let zones = builder.global_table("zones", StringSerde, StringSerde);
    // Trips are keyed by vendor; the pickup location is the value.
    builder.stream("trips", StringSerde, StringSerde).join_global(&zones, |_, location| location.clone(), |location, zone| format!("{location}:{zone}")).to(
        "trip-zones",
        StringSerde,
        StringSerde,
    );
    let app = KafkaStreams::start(builder.build(), StreamsConfig { commit_interval_ms: 100, ..StreamsConfig::new("global-app", &broker.bootstrap) }).unwrap();
    for (vendor, location) in [("1", "132"), ("2", "4"), ("2", "1"), ("1", "999")] {
        send("trips", vendor, location);
    }
    assert_eq!(read_values(&broker.bootstrap, "trip-zones", 3), ["132:JFK Airport", "1:Newark Airport", "4:Alphabet City"]);
    send("zones", "999", "Somewhere New");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        send("trips", "3", "999");
        let consumer: BaseConsumer = client(&broker.bootstrap).create().unwrap();
        let (_, written) = consumer.fetch_watermarks("trip-zones", 0, Duration::from_secs(10)).unwrap();
        if written >= 4 {
            break;
        }
        assert!(Instant::now() < deadline, "the table never learned of zone 999");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(read_values(&broker.bootstrap, "trip-zones", 4).contains(&"999:Somewhere New".to_string()));
    app.close().unwrap();
}

#[test]
fn a_foreign_key_join_subscribes_and_answers_across_partitions() {
    let broker = start_broker();
    create_topics(&broker.bootstrap, &[("zones", 2), ("trips", 2), ("trip-zones", 1)]);
    let send = sender(&broker.bootstrap);
    for (id, zone) in [("1", "Newark Airport"), ("4", "Alphabet City"), ("132", "JFK Airport")] {
        send("zones", id, zone);
    }
    let builder = StreamsBuilder::new();
    let zones = builder.table("zones", StringSerde, StringSerde);
    // A trip's value is the zone it starts in.
    builder
        .table("trips", StringSerde, StringSerde)
        .join_on_foreign_key(&zones, |zone_id| zone_id.clone(), |zone_id, zone| format!("{zone_id}:{zone}"))
        .to_stream()
        .to("trip-zones", StringSerde, StringSerde);
    let app = KafkaStreams::start(builder.build(), StreamsConfig { commit_interval_ms: 100, ..StreamsConfig::new("fk-app", &broker.bootstrap) }).unwrap();
    for (trip, zone_id) in [("a", "132"), ("b", "4"), ("c", "1"), ("d", "999")] {
        send("trips", trip, zone_id);
    }
    assert_eq!(read_values(&broker.bootstrap, "trip-zones", 3), ["132:JFK Airport", "1:Newark Airport", "4:Alphabet City"]);
    // A change to a zone reaches every trip subscribed to it.
    send("zones", "132", "John F. Kennedy Airport");
    assert!(read_values(&broker.bootstrap, "trip-zones", 4).contains(&"132:John F. Kennedy Airport".to_string()));
    app.close().unwrap();
}

#[test]
fn avro_values_go_through_the_schema_registry_in_confluent_s_wire_format() {
    use runnel_streams::registry::AvroSerde;
    use runnel_streams::serde::Serde;
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Ride {
        vendor_id: i32,
        total_amount: f32,
    }
    const RIDE: &str = r#"{"type": "record", "name": "RideRecord", "namespace": "com.datatalksclub.taxi",
        "fields": [{"name": "vendor_id", "type": "int"}, {"name": "total_amount", "type": "float"}]}"#;
    let broker = start_broker();
    let registry = broker.start_registry();
    create_topics(&broker.bootstrap, &[("rides_avro", 1), ("big_rides_avro", 1)]);
    let input = AvroSerde::<Ride>::register(&registry, "rides_avro-value", RIDE).unwrap();
    let producer: ThreadedProducer<DefaultProducerContext> = client(&broker.bootstrap).create().unwrap();
    for (vendor_id, total_amount) in [(1, 9.3), (2, 31.5), (1, 52.0)] {
        let value = input.serialize(&Ride { vendor_id, total_amount }).unwrap();
        producer.send(BaseRecord::to("rides_avro").key("k").payload(&value)).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    // The wire format: magic byte 0, then the registered schema's id.
    let bytes = input.serialize(&Ride { vendor_id: 1, total_amount: 1.0 }).unwrap();
    assert_eq!(bytes[..5], [&[0u8][..], &input.schema_id().to_be_bytes()].concat()[..]);

    let builder = StreamsBuilder::new();
    builder
        .stream("rides_avro", StringSerde, AvroSerde::<Ride>::register(&registry, "rides_avro-value", RIDE).unwrap())
        .filter(|_, ride| ride.total_amount > 30.0)
        .to("big_rides_avro", StringSerde, AvroSerde::<Ride>::register(&registry, "big_rides_avro-value", RIDE).unwrap());
    let app = KafkaStreams::start(builder.build(), StreamsConfig { commit_interval_ms: 100, ..StreamsConfig::new("avro-app", &broker.bootstrap) }).unwrap();
    let consumer: BaseConsumer = client(&broker.bootstrap).set("group.id", "avro-check").set("auto.offset.reset", "earliest").create().unwrap();
    consumer.subscribe(&["big_rides_avro"]).unwrap();
    let reader = AvroSerde::<Ride>::register(&registry, "big_rides_avro-value", RIDE).unwrap();
    let mut rides = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while rides.len() < 2 {
        assert!(Instant::now() < deadline, "read only {rides:?}");
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            rides.push(reader.deserialize(message.payload()).unwrap());
        }
    }
    assert_eq!(rides, [Ride { vendor_id: 2, total_amount: 31.5 }, Ride { vendor_id: 1, total_amount: 52.0 }]);
    assert!(reader.deserialize(Some(b"not avro")).is_err());
    app.close().unwrap();

    // JSON Schema: the same header, then JSON.
    use runnel_streams::registry::JsonSchemaSerde;
    const RIDE_JSON: &str = r#"{"type": "object", "properties": {"vendor_id": {"type": "integer"}, "total_amount": {"type": "number"}}}"#;
    let json = JsonSchemaSerde::<Ride>::register(&registry, "rides_json-value", RIDE_JSON).unwrap();
    let bytes = json.serialize(&Ride { vendor_id: 2, total_amount: 31.5 }).unwrap();
    assert_eq!(bytes[..5], [&[0u8][..], &json.schema_id().to_be_bytes()].concat()[..]);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&bytes[5..]).unwrap(), serde_json::json!({"vendor_id": 2, "total_amount": 31.5}));
    assert_eq!(json.deserialize(Some(&bytes)).unwrap(), Ride { vendor_id: 2, total_amount: 31.5 });
}

#[test]
fn protobuf_values_go_through_the_schema_registry_in_confluent_s_wire_format() {
    use runnel_streams::registry::ProtobufSerde;
    use runnel_streams::serde::Serde;
    /// The schema's second message, so values carry message indexes [1].
    #[derive(Clone, PartialEq, prost::Message)]
    struct Stop {
        #[prost(int32, tag = "1")]
        zone: i32,
        #[prost(string, tag = "2")]
        name: String,
    }
    const SCHEMA: &str = "syntax = \"proto3\"; package taxi; message Ride { int32 vendor_id = 1; } message Stop { int32 zone = 1; string name = 2; }";
    let broker = start_broker();
    let registry = broker.start_registry();
    create_topics(&broker.bootstrap, &[("stops", 1), ("airport_stops", 1)]);
    let serde = || ProtobufSerde::<Stop>::register(&registry, "stops-value", SCHEMA, Some("Stop")).unwrap();
    let input = serde();
    let producer: ThreadedProducer<DefaultProducerContext> = client(&broker.bootstrap).create().unwrap();
    for (zone, name) in [(132, "JFK Airport"), (48, "Clinton East"), (138, "LaGuardia Airport")] {
        let value = input.serialize(&Stop { zone, name: name.to_string() }).unwrap();
        producer.send(BaseRecord::to("stops").key("k").payload(&value)).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    let builder = StreamsBuilder::new();
    builder.stream("stops", StringSerde, serde()).filter(|_, stop| stop.name.ends_with("Airport")).to("airport_stops", StringSerde, serde());
    let app = KafkaStreams::start(builder.build(), StreamsConfig { commit_interval_ms: 100, ..StreamsConfig::new("protobuf-app", &broker.bootstrap) }).unwrap();
    let consumer: BaseConsumer = client(&broker.bootstrap).set("group.id", "protobuf-check").set("auto.offset.reset", "earliest").create().unwrap();
    consumer.subscribe(&["airport_stops"]).unwrap();
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while values.len() < 2 {
        assert!(Instant::now() < deadline, "read only {} values", values.len());
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            values.push(message.payload().unwrap().to_vec());
        }
    }
    app.close().unwrap();

    // Each value: magic byte 0, the schema's id, message indexes [1]
    // (count 1, index 1, as zigzag varints), then the message — read here
    // with the schema the registry holds for that id, by a decoder that
    // knows nothing of the Rust type.
    let id = input.schema_id();
    let answer: serde_json::Value = ureq::get(&format!("{registry}/schemas/ids/{id}")).call().unwrap().into_json().unwrap();
    assert_eq!(answer["schemaType"], "PROTOBUF");
    let file = protox_parse::parse("stop.proto", answer["schema"].as_str().unwrap()).unwrap();
    let pool = prost_reflect::DescriptorPool::from_file_descriptor_set(prost_types::FileDescriptorSet { file: vec![file] }).unwrap();
    let descriptor = pool.get_message_by_name("taxi.Stop").unwrap();
    let decoded: Vec<serde_json::Value> = values
        .iter()
        .map(|value| {
            assert_eq!(value[..7], [&[0u8][..], &id.to_be_bytes(), &[2, 2]].concat()[..]);
            serde_json::to_value(prost_reflect::DynamicMessage::decode(descriptor.clone(), &value[7..]).unwrap()).unwrap()
        })
        .collect();
    assert_eq!(decoded, [serde_json::json!({"zone": 132, "name": "JFK Airport"}), serde_json::json!({"zone": 138, "name": "LaGuardia Airport"})]);
    assert_eq!(input.deserialize(Some(&values[1])).unwrap(), Stop { zone: 138, name: "LaGuardia Airport".to_string() });
    assert!(input.deserialize(Some(&[0, 0, 0, 0, 1])).is_err(), "no message indexes");
}
