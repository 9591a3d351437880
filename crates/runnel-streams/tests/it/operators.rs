//! Each stateless operator, and a topology's description.

use runnel_streams::serde::{I64Serde, StringSerde};
use runnel_streams::{StreamsBuilder, TopologyTestDriver};

fn values(driver: &mut TopologyTestDriver, topic: &str) -> Vec<(String, String)> {
    let output = driver.output_topic(topic, StringSerde, StringSerde);
    driver.read(&output).unwrap().into_iter().map(|r| (r.key, r.value)).collect()
}

#[test]
fn stateless_operators_transform_filter_split_and_merge() {
    let builder = StreamsBuilder::new();
    let rides = builder.stream("in", StringSerde, StringSerde);
    let long = rides.filter(|_, v| v.len() > 3);
    long.map_values(|v| v.to_uppercase()).to("upper", StringSerde, StringSerde);
    rides.filter_not(|_, v| v.len() > 3).select_key(|_, v| format!("short-{v}")).to("short", StringSerde, StringSerde);
    rides.flat_map_values(|v| v.split(' ').map(str::to_string).collect::<Vec<_>>()).to("words", StringSerde, StringSerde);
    rides.map(|k, v| (v.clone(), k.clone())).merge(&rides).to("merged", StringSerde, StringSerde);
    let mut driver = TopologyTestDriver::new(builder.build());
    let input = driver.input_topic("in", StringSerde, StringSerde);
    driver.pipe(&input, &"k1".to_string(), &"a taxi".to_string(), 1);
    driver.pipe(&input, &"k2".to_string(), &"cab".to_string(), 2);
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(values(&mut driver, "upper"), [pair("k1", "A TAXI")]);
    assert_eq!(values(&mut driver, "short"), [pair("short-cab", "cab")]);
    assert_eq!(values(&mut driver, "words"), [pair("k1", "a"), pair("k1", "taxi"), pair("k2", "cab")]);
    assert_eq!(values(&mut driver, "merged"), [pair("a taxi", "k1"), pair("k1", "a taxi"), pair("cab", "k2"), pair("k2", "cab")]);
}

#[test]
fn owned_mapping_moves_a_value_held_once_and_copies_a_shared_one() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    /// A value that counts its copies.
    struct Counted(String, Arc<AtomicUsize>);
    impl Clone for Counted {
        fn clone(&self) -> Counted {
            self.1.fetch_add(1, Ordering::Relaxed);
            Counted(self.0.clone(), self.1.clone())
        }
    }
    // Runs "cab" through an owned mapping, with a second reader of the
    // same values or not; returns the copies made.
    let copies_made = |second_reader: bool| {
        let copies = Arc::new(AtomicUsize::new(0));
        let builder = StreamsBuilder::new();
        let counted = {
            let copies = copies.clone();
            builder.stream("in", StringSerde, StringSerde).map_values(move |v| Counted(v.clone(), copies.clone()))
        };
        counted.filter(|_, v| !v.0.is_empty()).map_values_owned(|v: Counted| v.0 + "!").to("alone", StringSerde, StringSerde);
        if second_reader {
            counted.map_values(|v| v.0.to_uppercase()).to("shared", StringSerde, StringSerde);
        }
        let mut driver = TopologyTestDriver::new(builder.build());
        let input = driver.input_topic("in", StringSerde, StringSerde);
        driver.pipe(&input, &"k".to_string(), &"cab".to_string(), 1);
        assert_eq!(values(&mut driver, "alone"), [("k".to_string(), "cab!".to_string())]);
        if second_reader {
            assert_eq!(values(&mut driver, "shared"), [("k".to_string(), "CAB".to_string())]);
        }
        copies.load(Ordering::Relaxed)
    };
    assert_eq!(copies_made(false), 0, "one reader: the value is moved through the filter into the mapping");
    assert_eq!(copies_made(true), 1, "two readers: the first one's value is copied");
}

#[test]
fn undecodable_input_is_skipped_and_counted() {
    let builder = StreamsBuilder::new();
    builder.stream("in", StringSerde, I64Serde).to("out", StringSerde, I64Serde);
    let mut driver = TopologyTestDriver::new(builder.build());
    driver.pipe_bytes("in", Some(b"k".to_vec()), Some(vec![1, 2, 3]), 1);
    assert_eq!(driver.skipped_records(), 1);
    let output = driver.output_topic("out", StringSerde, I64Serde);
    assert!(driver.read(&output).unwrap().is_empty());
}

#[test]
fn undecodable_input_goes_to_a_dead_letter_topic_with_headers_saying_why() {
    use runnel_streams::serde::{BytesSerde, Nullable};
    use runnel_streams::OnUndecodable;
    let builder = StreamsBuilder::new();
    builder.stream("in", StringSerde, I64Serde).to("out", StringSerde, I64Serde);
    let mut driver = TopologyTestDriver::new(builder.build()).on_undecodable(OnUndecodable::DeadLetter("in-dlq".into()));
    driver.pipe_bytes("in", Some(b"k".to_vec()), Some(vec![1, 2, 3]), 7);
    let dead = driver.read(&driver.output_topic("in-dlq", Nullable(BytesSerde), Nullable(BytesSerde))).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].key.as_deref(), dead[0].value.as_deref(), dead[0].timestamp), (Some(&b"k"[..]), Some(&[1u8, 2, 3][..]), 7));
    let header = |name: &str| dead[0].headers.iter().find(|(n, _)| n == name).map(|(_, v)| String::from_utf8_lossy(v).to_string());
    assert_eq!(header("__streams.errors.topic").as_deref(), Some("in"));
    assert!(header("__streams.errors.message").is_some_and(|m| m.contains("expected 8")), "{:?}", dead[0].headers);
}

#[test]
#[should_panic(expected = "cannot be deserialized")]
fn undecodable_input_stops_a_driver_told_to_fail() {
    use runnel_streams::OnUndecodable;
    let builder = StreamsBuilder::new();
    builder.stream("in", StringSerde, I64Serde).to("out", StringSerde, I64Serde);
    let mut driver = TopologyTestDriver::new(builder.build()).on_undecodable(OnUndecodable::LogAndFail);
    driver.pipe_bytes("in", Some(b"k".to_vec()), Some(vec![1, 2, 3]), 7);
}

#[test]
fn topologies_describe_themselves_with_kafka_streams_names() {
    let builder = StreamsBuilder::new();
    builder.stream("rides", StringSerde, StringSerde).group_by_key().count().to_stream().to("counts", StringSerde, I64Serde);
    let described = builder.build().describe();
    assert!(described.contains("Source: KSTREAM-SOURCE-0000000000 (topics: [rides])"), "{described}");
    assert!(described.contains("Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])"), "{described}");
    assert!(described.contains("Sink: KSTREAM-SINK-0000000004 (topic: counts)"), "{described}");
}

#[test]
fn grouping_by_a_new_key_repartitions_as_kafka_streams_names_it() {
    use runnel_streams::Grouped;
    let builder = StreamsBuilder::new();
    builder
        .stream("rides", StringSerde, StringSerde)
        .group_by(|_, ride| ride.split(',').next().unwrap_or_default().to_string(), Grouped::with(StringSerde, StringSerde))
        .count()
        .to_stream()
        .to("per-pickup", StringSerde, I64Serde);
    let topology = builder.build();
    let described = topology.describe();
    assert!(described.contains("Sink: KSTREAM-SINK-0000000004 (topic: KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition)"), "{described}");
    let mut driver = TopologyTestDriver::new(topology);
    let input = driver.input_topic("rides", StringSerde, StringSerde);
    for (dropoff, ride) in [("7", "132,a"), ("8", "132,b"), ("7", "48,c")] {
        driver.pipe(&input, &dropoff.to_string(), &ride.to_string(), 1);
    }
    let output = driver.output_topic("per-pickup", StringSerde, I64Serde);
    let counts: Vec<(String, i64)> = driver.read(&output).unwrap().into_iter().map(|r| (r.key, r.value)).collect();
    assert_eq!(counts, [("132".to_string(), 1), ("132".to_string(), 2), ("48".to_string(), 1)]);
}
