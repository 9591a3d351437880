//! librdkafka (the `rdkafka` crate) against the broker.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rdkafka::admin::{AlterConfig, NewPartitions, ResourceSpecifier};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset, Timestamp, TopicPartitionList};

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn round_trip_keeps_keys_values_headers_and_timestamps() {
    let broker = TestBroker::start().await;
    let producer = producer(&broker.bootstrap, &[("acks", "all")]);
    let timestamp = 1_700_000_123_456;
    for i in 0..10 {
        let headers = OwnedHeaders::new().insert(Header { key: "trace", value: Some(format!("t{i}").as_bytes()) });
        let key = format!("k{i}");
        let value = format!("value {i}");
        let delivery = producer
            .send(FutureRecord::to("round-trip").key(&key).payload(&value).headers(headers).timestamp(timestamp + i), Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!((delivery.partition, delivery.offset), (0, i));
    }
    let bootstrap = broker.bootstrap.clone();
    let messages = blocking(move || consume(&bootstrap, "round-trip", 0, 0, 10)).await;
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(m.offset(), i as i64);
        assert_eq!(m.key(), Some(format!("k{i}").as_bytes()));
        assert_eq!(payload(m), format!("value {i}"));
        assert_eq!(m.timestamp(), Timestamp::CreateTime(timestamp + i as i64));
        let header = m.headers().unwrap().get(0);
        assert_eq!((header.key, header.value), ("trace", Some(format!("t{i}").as_bytes())));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_compression_codec_round_trips() {
    let broker = TestBroker::start().await;
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        let producer = producer(&broker.bootstrap, &[("compression.type", codec), ("linger.ms", "20")]);
        let sends: Vec<_> = (0..200)
            .map(|i| {
                let value = format!("{codec} record {i} {}", "x".repeat(i % 50));
                let producer = producer.clone();
                let topic = topic.clone();
                tokio::spawn(async move { producer.send(FutureRecord::<(), _>::to(&topic).payload(&value), Duration::from_secs(10)).await.unwrap() })
            })
            .collect();
        for send in sends {
            send.await.unwrap();
        }
        let bootstrap = broker.bootstrap.clone();
        let t = topic.clone();
        let messages = blocking(move || consume(&bootstrap, &t, 0, 0, 200)).await;
        let offsets: Vec<i64> = messages.iter().map(|m| m.offset()).collect();
        assert_eq!(offsets, (0..200).collect::<Vec<_>>(), "{codec}");
        assert!(payload(&messages[7]).starts_with(&format!("{codec} record")));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keyed_records_stick_to_one_partition_and_spread_across_many() {
    let broker = TestBroker::start().await;
    create_topic(&broker.bootstrap, "keyed", 6, &[]).await;
    let producer = producer(&broker.bootstrap, &[]);
    let mut by_key: HashMap<String, HashSet<i32>> = HashMap::new();
    for i in 0..120 {
        let key = format!("zone-{}", i % 24);
        let delivery = producer.send(FutureRecord::to("keyed").key(&key).payload("ride"), Duration::from_secs(10)).await.unwrap();
        by_key.entry(key).or_default().insert(delivery.partition);
    }
    assert!(by_key.values().all(|p| p.len() == 1), "a key always maps to one partition");
    let used: HashSet<i32> = by_key.values().flatten().copied().collect();
    assert!(used.len() >= 4, "24 keys should spread over most of 6 partitions, used {used:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn topics_are_auto_created_with_num_partitions() {
    let broker = TestBroker::start_with(|c| c.num_partitions = 3).await;
    let producer = producer(&broker.bootstrap, &[]);
    producer.send(FutureRecord::<(), _>::to("auto-made").payload("x"), Duration::from_secs(10)).await.unwrap();
    let topic = broker.state.topic("auto-made").expect("auto-created");
    assert_eq!(topic.partition_count(), 3);

    let strict = TestBroker::start_with(|c| c.auto_create_topics = false).await;
    let producer = crate::support::producer(&strict.bootstrap, &[("message.timeout.ms", "1500")]);
    let result = producer.send(FutureRecord::<(), _>::to("never-made").payload("x"), Duration::from_secs(5)).await;
    assert!(result.is_err(), "produce to an unknown topic must fail without auto-create");
    assert!(strict.state.topic("never-made").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn topic_admin_create_describe_alter_grow_delete_records_and_delete() {
    let broker = TestBroker::start().await;
    let admin = admin(&broker.bootstrap);
    let options = admin_options();
    create_topic(&broker.bootstrap, "admin-t", 2, &[("retention.ms", "60000"), ("cleanup.policy", "delete")]).await;

    let described = admin.describe_configs([&ResourceSpecifier::Topic("admin-t")], &options).await.unwrap();
    let resource = described.into_iter().next().unwrap().unwrap();
    let retention = resource.get("retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("60000"));
    assert_eq!(retention.source, rdkafka::admin::ConfigSource::DynamicTopic);
    let segment = resource.get("segment.bytes").unwrap();
    assert_eq!(segment.source, rdkafka::admin::ConfigSource::Default);

    let alter = AlterConfig::new(ResourceSpecifier::Topic("admin-t")).set("retention.ms", "120000");
    admin.alter_configs([&alter], &options).await.unwrap().into_iter().for_each(|r| {
        r.unwrap();
    });
    assert_eq!(broker.state.topic("admin-t").unwrap().settings().log.retention_ms, 120_000);

    let bad = AlterConfig::new(ResourceSpecifier::Topic("admin-t")).set("no.such.config", "1");
    // rdkafka drops per-resource errors of AlterConfigs (the raw tests check
    // the code); here we check that nothing was applied.
    admin.alter_configs([&bad], &options).await.unwrap();
    let overrides = broker.state.topic("admin-t").unwrap().overrides();
    assert_eq!(overrides.get("retention.ms").map(String::as_str), Some("120000"));
    assert!(!overrides.contains_key("no.such.config"));

    admin.create_partitions([&NewPartitions::new("admin-t", 5)], &options).await.unwrap().into_iter().for_each(|r| {
        r.unwrap();
    });
    assert_eq!(broker.state.topic("admin-t").unwrap().partition_count(), 5);

    let producer = producer(&broker.bootstrap, &[]);
    for _ in 0..10 {
        producer.send(FutureRecord::<(), _>::to("admin-t").partition(0).payload("x"), Duration::from_secs(10)).await.unwrap();
    }
    let mut before = TopicPartitionList::new();
    before.add_partition_offset("admin-t", 0, Offset::Offset(6)).unwrap();
    admin.delete_records(&before, &options).await.unwrap();
    assert_eq!(broker.state.topic("admin-t").unwrap().partition(0).unwrap().log.bounds().log_start_offset, 6);

    admin.delete_topics(&["admin-t"], &options).await.unwrap().into_iter().for_each(|r| {
        r.unwrap();
    });
    assert!(broker.state.topic("admin-t").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_topic_creations_get_errors() {
    let broker = TestBroker::start().await;
    let admin = admin(&broker.bootstrap);
    use rdkafka::admin::{NewTopic, TopicReplication};
    let cases = [
        NewTopic::new("bad name!", 1, TopicReplication::Fixed(1)),
        NewTopic::new("ok-name", 1, TopicReplication::Fixed(3)),
        NewTopic::new("cfg", 1, TopicReplication::Fixed(1)).set("retention.ms", "soon"),
        NewTopic::new("cfg2", 1, TopicReplication::Fixed(1)).set("made.up", "1"),
    ];
    for topic in &cases {
        let result = admin.create_topics([topic], &admin_options()).await.unwrap().remove(0);
        assert!(result.is_err(), "{} should be refused", topic.name);
    }
    assert!(broker.state.topics().iter().all(|t| t.is_internal()), "no user topic was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn list_offsets_by_timestamp_finds_the_first_record_at_or_after() {
    let broker = TestBroker::start().await;
    let producer = producer(&broker.bootstrap, &[("linger.ms", "0")]);
    let base = 1_700_000_000_000i64;
    for i in 0..20 {
        producer.send(FutureRecord::<(), _>::to("times").payload("x").timestamp(base + i * 1000), Duration::from_secs(10)).await.unwrap();
    }
    let bootstrap = broker.bootstrap.clone();
    let found = blocking(move || {
        let consumer: BaseConsumer = client_config(&bootstrap, &[("group.id", "times")]).create().unwrap();
        let mut query = TopicPartitionList::new();
        query.add_partition_offset("times", 0, Offset::Offset(base + 7_500)).unwrap();
        let at = consumer.offsets_for_times(query, Duration::from_secs(10)).unwrap();
        let mut late = TopicPartitionList::new();
        late.add_partition_offset("times", 0, Offset::Offset(base + 999_999)).unwrap();
        let after = consumer.offsets_for_times(late, Duration::from_secs(10)).unwrap();
        let (low, high) = consumer.fetch_watermarks("times", 0, Duration::from_secs(10)).unwrap();
        (at.elements()[0].offset(), after.elements()[0].offset(), low, high)
    })
    .await;
    assert_eq!(found.0, Offset::Offset(8));
    assert_eq!(found.1, Offset::End);
    assert_eq!((found.2, found.3), (0, 20));
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_producer_writes_each_record_once() {
    let broker = TestBroker::start().await;
    let producer = producer(&broker.bootstrap, &[("enable.idempotence", "true"), ("linger.ms", "2")]);
    let mut sends = Vec::new();
    for i in 0..500 {
        let producer = producer.clone();
        sends.push(tokio::spawn(
            async move { producer.send(FutureRecord::<(), _>::to("idem").payload(&format!("{i}")), Duration::from_secs(10)).await.unwrap() },
        ));
    }
    for send in sends {
        send.await.unwrap();
    }
    let bootstrap = broker.bootstrap.clone();
    let messages = blocking(move || consume(&bootstrap, "idem", 0, 0, 500)).await;
    let values: HashSet<String> = messages.iter().map(payload).collect();
    assert_eq!(values.len(), 500);
    assert_eq!(broker.state.topic("idem").unwrap().partition(0).unwrap().log.bounds().log_end_offset, 500);
}

#[tokio::test(flavor = "multi_thread")]
async fn long_poll_returns_as_soon_as_data_arrives() {
    let broker = TestBroker::start().await;
    create_topic(&broker.bootstrap, "poll", 1, &[]).await;
    let bootstrap = broker.bootstrap.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client_config(&bootstrap, &[("group.id", "poll"), ("fetch.wait.max.ms", "5000")]).create().unwrap();
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset("poll", 0, Offset::Beginning).unwrap();
        consumer.assign(&assignment).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                return (std::time::Instant::now(), payload(&m.detach()));
            }
            assert!(std::time::Instant::now() < deadline, "message never arrived");
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent_at = std::time::Instant::now();
    producer(&broker.bootstrap, &[]).send(FutureRecord::<(), _>::to("poll").payload("wake"), Duration::from_secs(10)).await.unwrap();
    let (received_at, value) = reader.await.unwrap();
    assert_eq!(value, "wake");
    assert!(received_at.duration_since(sent_at) < Duration::from_millis(1500), "a waiting fetch must wake on new data");
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_deletes_expired_segments_in_the_background() {
    let broker = TestBroker::start_with(|c| c.retention_check_interval_ms = 50).await;
    create_topic(&broker.bootstrap, "short-lived", 1, &[("retention.ms", "1000"), ("internal.segment.bytes", "1024")]).await;
    let producer = producer(&broker.bootstrap, &[("linger.ms", "0")]);
    let old = rdkafka::util::millis_to_epoch(std::time::SystemTime::now()) - 60_000;
    for _ in 0..20 {
        producer.send(FutureRecord::<(), _>::to("short-lived").payload(&[7u8; 200][..]).timestamp(old), Duration::from_secs(10)).await.unwrap();
    }
    let partition = broker.state.topic("short-lived").unwrap().partition(0).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while partition.log.bounds().log_start_offset < 20 {
        assert!(std::time::Instant::now() < deadline, "retention never ran: {:?}", partition.log.bounds());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(partition.log.bounds().log_end_offset, 20);
}

/// Reads a partition from the beginning to its end: `(offset, key, value)`.
fn read_from_start(bootstrap: &str, topic: &str) -> Vec<(i64, Vec<u8>, Option<Vec<u8>>)> {
    let consumer: BaseConsumer = client_config(bootstrap, &[("group.id", "compaction-check"), ("enable.auto.commit", "false")]).create().unwrap();
    let (_, end) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)).unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&assignment).unwrap();
    let mut out = Vec::new();
    while out.last().is_none_or(|(offset, _, _)| offset + 1 < end) {
        let message = consumer.poll(Duration::from_secs(10)).expect("a record before the end").unwrap();
        out.push((message.offset(), message.key().unwrap().to_vec(), message.payload().map(<[u8]>::to_vec)));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cleaner_compacts_a_topic_in_the_background_and_consumers_see_the_newest_values() {
    let broker = TestBroker::start_with(|c| c.log_cleaner_backoff_ms = 50).await;
    let configs = [("cleanup.policy", "compact"), ("internal.segment.bytes", "8192"), ("min.cleanable.dirty.ratio", "0.01")];
    create_topic(&broker.bootstrap, "zones", 1, &configs).await;
    let producer = producer(&broker.bootstrap, &[("linger.ms", "5"), ("compression.type", "lz4"), ("batch.size", "4096")]);
    let mut newest = HashMap::new();
    let mut pending = Vec::new();
    for i in 0..5_000u32 {
        let (key, value) = (format!("zone-{}", i % 265), format!("rides-{i}"));
        pending.push(producer.send_result(FutureRecord::to("zones").key(&key).payload(&value)).unwrap());
        newest.insert(key.into_bytes(), Some(value.into_bytes()));
    }
    for zone in (0..265).step_by(5) {
        let key = format!("zone-{zone}");
        pending.push(producer.send_result(FutureRecord::<_, ()>::to("zones").key(&key)).unwrap());
        newest.insert(key.into_bytes(), None);
    }
    for delivery in pending.drain(..) {
        delivery.await.unwrap().unwrap();
    }
    // Later writes to other keys seal the segments holding the zones.
    for i in 0..2_000u32 {
        pending.push(producer.send_result(FutureRecord::to("zones").key(&format!("filler-{i}")).payload("x")).unwrap());
    }
    for delivery in pending {
        delivery.await.unwrap().unwrap();
    }
    // Keyless records are refused by a compacted topic.
    let keyless = producer.send(FutureRecord::<(), _>::to("zones").payload("no key"), Duration::from_secs(10)).await;
    assert!(matches!(keyless, Err((rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::InvalidRecord), _))), "{keyless:?}");

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let records = loop {
        let records = read_from_start(&broker.bootstrap, "zones");
        let zone_records = records.iter().filter(|(_, key, _)| key.starts_with(b"zone-")).count();
        if zone_records <= 265 {
            break records;
        }
        assert!(std::time::Instant::now() < deadline, "the cleaner never compacted: {zone_records} zone records left");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let state: HashMap<Vec<u8>, Option<Vec<u8>>> =
        records.iter().filter(|(_, key, _)| key.starts_with(b"zone-")).map(|(_, k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(state, newest, "each zone's newest value, and its tombstone if deleted");
    assert!(records.windows(2).all(|w| w[0].0 < w[1].0));
}

#[tokio::test(flavor = "multi_thread")]
async fn flush_messages_and_flush_ms_make_records_durable_whatever_the_broker_policy() {
    let broker = TestBroker::start_with(|c| c.fsync = runnel_broker::FsyncPolicy::Never).await;
    create_topic(&broker.bootstrap, "flush-each", 1, &[("flush.messages", "1")]).await;
    create_topic(&broker.bootstrap, "flush-timed", 1, &[("flush.ms", "100")]).await;
    create_topic(&broker.bootstrap, "flush-default", 1, &[]).await;
    let producer = producer(&broker.bootstrap, &[("acks", "1")]);
    for topic in ["flush-each", "flush-timed", "flush-default"] {
        producer.send(FutureRecord::<(), _>::to(topic).payload("ride"), Duration::from_secs(10)).await.unwrap();
    }
    let durable = |topic: &str| broker.state.topic(topic).unwrap().partition(0).unwrap().log.durable_offset();
    assert_eq!(durable("flush-each"), 1, "flush.messages=1 fsyncs before the acks=1 answer");
    assert_eq!(durable("flush-default"), 0, "with --fsync never and no flush config, nothing is forced");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while durable("flush-timed") < 1 {
        assert!(std::time::Instant::now() < deadline, "flush.ms=100 never made the record durable");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_configs_changed_at_runtime_apply_at_once_and_survive_a_restart() {
    let broker = TestBroker::start().await;
    create_topic(&broker.bootstrap, "runtime-defaults", 1, &[]).await;
    create_topic(&broker.bootstrap, "runtime-override", 1, &[("retention.ms", "60000")]).await;
    let admin = admin(&broker.bootstrap);
    let options = admin_options();
    let alter = AlterConfig::new(ResourceSpecifier::Broker(1)).set("log.retention.ms", "3600000").set("group.initial.rebalance.delay.ms", "3000");
    for result in admin.alter_configs([&alter], &options).await.unwrap() {
        result.unwrap();
    }
    let retention = |broker: &TestBroker, topic: &str| broker.state.topic(topic).unwrap().settings().log.retention_ms;
    assert_eq!(retention(&broker, "runtime-defaults"), 3_600_000, "topics without an override follow the new default");
    assert_eq!(retention(&broker, "runtime-override"), 60_000, "a topic's own value still wins");
    assert_eq!(broker.state.groups.with(|c, _| c.config().initial_rebalance_delay_ms), 3000);
    let described = admin.describe_configs([&ResourceSpecifier::Topic("runtime-defaults")], &options).await.unwrap();
    let resource = described.into_iter().next().unwrap().unwrap();
    let entry = resource.get("retention.ms").unwrap();
    assert_eq!(entry.value.as_deref(), Some("3600000"));
    assert_eq!(entry.source, rdkafka::admin::ConfigSource::DynamicBroker);

    let refused = AlterConfig::new(ResourceSpecifier::Broker(1)).set("node.id", "7");
    admin.alter_configs([&refused], &options).await.unwrap();
    assert_eq!(broker.state.node_id, 1, "static configs do not change at runtime");

    let broker = broker.restart().await;
    assert_eq!(retention(&broker, "runtime-defaults"), 3_600_000, "runtime configs are durable");
    assert_eq!(broker.state.groups.with(|c, _| c.config().initial_rebalance_delay_ms), 3000);
}
