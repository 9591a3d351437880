//! Differential conformance with Apache Kafka: each scenario sends the same
//! requests, at every version both brokers serve, to runnel and to the
//! Apache Kafka peer (`scripts/kafka-peer`, started once by the test
//! command), and compares the decoded responses field by field.
//!
//! Only what legitimately differs is normalised away, each in one place
//! below with its reason: cluster and node identity, addresses, throttle
//! times, generated topic ids and member ids, timestamps the brokers
//! choose, error messages (the codes are compared; the wording is each
//! broker's own), and the order of per-topic and per-partition results
//! (clients match them by name and index; Apache Kafka lists failed
//! partitions first, runnel keeps the request's order).

use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Request, StrBytes};
use runnel_log::batch::testing;
use runnel_testkit::{kafka_peer, RawClient};

use crate::support::Serve;

/// Connections to both brokers, and runnel's process.
struct Pair {
    runnel: RawClient,
    kafka: RawClient,
    _serve: Serve,
    _dir: tempfile::TempDir,
    /// Prefix that keeps this scenario's names apart on the shared Kafka.
    prefix: String,
}

impl Pair {
    async fn start(scenario: &str) -> Pair {
        static RUN: AtomicU32 = AtomicU32::new(0);
        let dir = tempfile::tempdir().unwrap();
        let serve = Serve::start(dir.path(), &["--no-registry", "--no-metrics"], &[]);
        let runnel = RawClient::connect(&serve.bootstrap()).await;
        let kafka = RawClient::connect(&kafka_peer()).await;
        let prefix = format!("{scenario}-{}-{}", std::process::id(), RUN.fetch_add(1, Ordering::Relaxed));
        Pair { runnel, kafka, _serve: serve, _dir: dir, prefix }
    }

    fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.prefix)
    }

    /// The versions of `R` both brokers serve.
    async fn versions<R: Request>(&mut self) -> RangeInclusive<i16> {
        let runnel = api_range(&mut self.runnel, R::KEY).await;
        let kafka = api_range(&mut self.kafka, R::KEY).await;
        let (min, max) = (runnel.0.max(kafka.0), runnel.1.min(kafka.1));
        assert!(min <= max, "no version of API {} is served by both: runnel {runnel:?}, Kafka {kafka:?}", R::KEY);
        min..=max
    }

    /// Sends `make(version)` to both brokers at every common version and
    /// fails with every difference, after `normalise` has removed what
    /// legitimately differs.
    async fn compare<R: Request>(&mut self, make: impl Fn(&Pair, i16) -> R, normalise: impl Fn(&mut R::Response, i16)) -> Vec<R::Response>
    where
        R::Response: PartialEq + std::fmt::Debug,
    {
        let versions = self.versions::<R>().await;
        self.compare_at(versions, make, normalise).await
    }

    async fn compare_at<R: Request>(
        &mut self,
        versions: RangeInclusive<i16>,
        make: impl Fn(&Pair, i16) -> R,
        normalise: impl Fn(&mut R::Response, i16),
    ) -> Vec<R::Response>
    where
        R::Response: PartialEq + std::fmt::Debug,
    {
        let mut differences = Vec::new();
        let mut answers = Vec::new();
        for version in versions {
            let request = make(self, version);
            let mut runnel = self.runnel.call(&request, version).await;
            let mut kafka = self.kafka.call(&request, version).await;
            normalise(&mut runnel, version);
            normalise(&mut kafka, version);
            if runnel != kafka {
                differences.push(format!("API {} v{version}: {}", R::KEY, first_difference(&format!("{runnel:?}"), &format!("{kafka:?}"))));
            }
            answers.push(runnel);
        }
        assert!(differences.is_empty(), "runnel differs from Apache Kafka:\n{}", differences.join("\n"));
        answers
    }

    /// Runs the same script against each broker and compares what each
    /// observed, line by line: for exchanges whose requests depend on
    /// earlier answers (producer ids, member ids).
    async fn compare_scripts(&mut self, script: impl AsyncFn(&mut RawClient, &str) -> Vec<String>) {
        let runnel = script(&mut self.runnel, &self.prefix).await;
        let kafka = script(&mut self.kafka, &self.prefix).await;
        let differences: Vec<String> = runnel
            .iter()
            .zip(&kafka)
            .filter(|(r, k)| r != k)
            .map(|(r, k)| format!("\n  runnel: {r}\n  kafka:  {k}"))
            .chain((runnel.len() != kafka.len()).then(|| format!("\n  runnel saw {} steps, kafka {}", runnel.len(), kafka.len())))
            .collect();
        assert!(differences.is_empty(), "runnel differs from Apache Kafka:{}", differences.concat());
    }

    /// Sends the same request to both without comparing (set-up steps).
    async fn both<R: Request>(&mut self, request: &R, version: i16) -> (R::Response, R::Response) {
        (self.runnel.call(request, version).await, self.kafka.call(request, version).await)
    }
}

/// Error wording is each broker's own; only its presence on success (none,
/// as in Apache Kafka) is compared.
fn forget_error_message(code: i16, message: &mut Option<StrBytes>) {
    if code != 0 {
        *message = None;
    }
}

/// Where two Debug renderings first part, with some context: responses
/// can run to kilobytes, the difference is usually one field.
fn first_difference(runnel: &str, kafka: &str) -> String {
    let at = runnel.bytes().zip(kafka.bytes()).position(|(a, b)| a != b).unwrap_or(runnel.len().min(kafka.len()));
    let window = |s: &str| {
        let start = s.floor_char_boundary(at.saturating_sub(160));
        let end = s.ceil_char_boundary((at + 120).min(s.len()));
        s[start..end].to_string()
    };
    format!("\n  runnel: …{}…\n  kafka:  …{}…", window(runnel), window(kafka))
}

async fn api_range(client: &mut RawClient, key: i16) -> (i16, i16) {
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("runnel-conformance"))
        .with_client_software_version(StrBytes::from_static_str("1.0"));
    let response = client.call(&request, 3).await;
    let api = response.api_keys.iter().find(|k| k.api_key == key).unwrap_or_else(|| panic!("API {key} is not advertised"));
    (api.min_version, api.max_version)
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn group_id(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_string()))
}

fn new_topic(name: &str, partitions: i32, replication: i16, configs: &[(&str, &str)]) -> CreatableTopic {
    CreatableTopic::default().with_name(topic_name(name)).with_num_partitions(partitions).with_replication_factor(replication).with_configs(
        configs
            .iter()
            .map(|(k, v)| {
                CreatableTopicConfig::default().with_name(StrBytes::from_string(k.to_string())).with_value(Some(StrBytes::from_string(v.to_string())))
            })
            .collect(),
    )
}

fn create_topics(topics: Vec<CreatableTopic>, validate_only: bool) -> CreateTopicsRequest {
    CreateTopicsRequest::default().with_topics(topics).with_timeout_ms(10_000).with_validate_only(validate_only)
}

/// What differs between any two brokers in a CreateTopics answer: the
/// generated topic id, the error wording, and (a difference listed in the
/// README until every topic config is served) the configs it echoes.
fn normalise_create(response: &mut CreateTopicsResponse, _: i16) {
    response.throttle_time_ms = 0;
    for topic in &mut response.topics {
        topic.topic_id = Default::default();
        forget_error_message(topic.error_code, &mut topic.error_message);
        topic.configs = None;
    }
}

/// Creates topics on both brokers (set-up), checking both succeeded, and
/// waits until Apache Kafka has a leader for every partition (it answers
/// CreateTopics before that; runnel's partitions are ready at once).
async fn create_on_both(pair: &mut Pair, topics: &[(&str, i32)]) {
    create_topics_on_both(pair, topics.iter().map(|(name, partitions)| new_topic(name, *partitions, 1, &[])).collect()).await;
}

async fn create_topics_on_both(pair: &mut Pair, topics: Vec<CreatableTopic>) {
    let request = create_topics(topics, false);
    let (runnel, kafka) = pair.both(&request, 5).await;
    for topic in runnel.topics.iter().chain(&kafka.topics) {
        assert_eq!(topic.error_code, 0, "set-up: creating {:?}", topic.name);
    }
    let metadata = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(request.topics.iter().map(|t| MetadataRequestTopic::default().with_name(Some(t.name.clone()))).collect()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let response = pair.kafka.call(&metadata, 12).await;
        let ready = response
            .topics
            .iter()
            .all(|t| t.error_code == 0 && !t.partitions.is_empty() && t.partitions.iter().all(|p| p.error_code == 0 && p.leader_id.0 >= 0));
        // Metadata can name a leader before that broker serves the
        // partition; ListOffsets answers only once it does.
        let offsets = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(
            response
                .topics
                .iter()
                .map(|t| {
                    ListOffsetsTopic::default().with_name(t.name.clone().unwrap_or_default()).with_partitions(
                        t.partitions.iter().map(|p| ListOffsetsPartition::default().with_partition_index(p.partition_index).with_timestamp(-1)).collect(),
                    )
                })
                .collect(),
        );
        if ready && pair.kafka.call(&offsets, 5).await.topics.iter().flat_map(|t| &t.partitions).all(|p| p.error_code == 0) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "Apache Kafka never elected leaders for {:?}", request.topics);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Waits until Apache Kafka's group coordinator serves `group` (a fresh
/// cluster answers NOT_COORDINATOR until `__consumer_offsets` is loaded).
async fn await_coordinator(pair: &mut Pair, group: &str) {
    let request = FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_string()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let found = pair.kafka.call(&request, 3).await;
        if found.error_code == 0 {
            let probe = OffsetFetchRequest::default().with_group_id(group_id(group)).with_topics(None);
            if pair.kafka.call(&probe, 7).await.error_code == 0 {
                return;
            }
        }
        assert!(std::time::Instant::now() < deadline, "Apache Kafka's group coordinator never became ready");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Produces the same batch to both brokers (set-up); both must accept it
/// at the same offset.
async fn produce_on_both(pair: &mut Pair, request: &ProduceRequest) {
    let (runnel, kafka) = pair.both(request, 9).await;
    let (runnel, kafka) = (&runnel.responses[0].partition_responses[0], &kafka.responses[0].partition_responses[0]);
    assert_eq!((runnel.error_code, kafka.error_code), (0, 0), "set-up: produce");
    assert_eq!(runnel.base_offset, kafka.base_offset, "set-up: produce");
}

fn produce(topic: &str, partition: i32, records: Vec<u8>, acks: i16) -> ProduceRequest {
    ProduceRequest::default().with_acks(acks).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
        .with_name(topic_name(topic))
        .with_partition_data(vec![PartitionProduceData::default().with_index(partition).with_records(Some(Bytes::from(records)))])])
}

fn normalise_produce(response: &mut ProduceResponse, _: i16) {
    response.throttle_time_ms = 0;
    response.responses.sort_by(|a, b| a.name.cmp(&b.name));
    for topic in &mut response.responses {
        topic.partition_responses.sort_by_key(|p| p.index);
        for partition in &mut topic.partition_responses {
            forget_error_message(partition.error_code, &mut partition.error_message);
        }
    }
}

fn normalise_metadata(response: &mut MetadataResponse, _: i16) {
    response.throttle_time_ms = 0;
    response.brokers.clear();
    response.cluster_id = None;
    response.controller_id = BrokerId(0);
    for topic in &mut response.topics {
        topic.topic_id = Default::default();
        for partition in &mut topic.partitions {
            partition.leader_id = BrokerId(0);
            partition.replica_nodes.clear();
            partition.isr_nodes.clear();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn create_topics_valid_invalid_and_duplicate() {
    let mut pair = Pair::start("create").await;
    pair.compare(
        |p, v| {
            create_topics(
                vec![
                    new_topic(&p.name(&format!("ok-v{v}")), 3, 1, &[("retention.ms", "3600000"), ("cleanup.policy", "delete")]),
                    new_topic(&p.name(&format!("default-partitions-v{v}")), -1, -1, &[]),
                    new_topic("bad name!", 1, 1, &[]),
                    new_topic(".", 1, 1, &[]),
                    new_topic(&"x".repeat(250), 1, 1, &[]),
                    new_topic(&p.name(&format!("zero-v{v}")), 0, 1, &[]),
                    new_topic(&p.name(&format!("negative-v{v}")), -2, 1, &[]),
                    new_topic(&p.name(&format!("rf3-v{v}")), 1, 3, &[]),
                    new_topic(&p.name(&format!("rf0-v{v}")), 1, 0, &[]),
                    new_topic(&p.name(&format!("badconfig-v{v}")), 1, 1, &[("retention.ms", "soon")]),
                    new_topic(&p.name(&format!("unknownconfig-v{v}")), 1, 1, &[("no.such.config", "1")]),
                ],
                false,
            )
        },
        normalise_create,
    )
    .await;
    // The same creations again: now they exist.
    pair.compare(|p, v| create_topics(vec![new_topic(&p.name(&format!("ok-v{v}")), 3, 1, &[])], false), normalise_create).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_topics_validate_only_creates_nothing() {
    let mut pair = Pair::start("validate").await;
    let versions = pair.versions::<CreateTopicsRequest>().await;
    let versions = (*versions.start()).max(1)..=*versions.end();
    pair.compare_at(versions, |p, v| create_topics(vec![new_topic(&p.name(&format!("v{v}")), 2, 1, &[])], true), normalise_create).await;
    let versions = pair.versions::<MetadataRequest>().await;
    pair.compare_at(
        (*versions.start()).max(4)..=*versions.end(),
        |p, _| {
            MetadataRequest::default()
                .with_allow_auto_topic_creation(false)
                .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name(&p.name("v1"))))]))
        },
        normalise_metadata,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_for_unknown_and_existing_topics() {
    let mut pair = Pair::start("metadata").await;
    let name = pair.name("three");
    create_on_both(&mut pair, &[(&name, 3)]).await;
    let versions = pair.versions::<MetadataRequest>().await;
    // v0-v3 always auto-create; from v4 the request says so.
    let versions = (*versions.start()).max(4)..=*versions.end();
    pair.compare_at(
        versions,
        |p, _| {
            MetadataRequest::default().with_allow_auto_topic_creation(false).with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name(&p.name("three")))),
                MetadataRequestTopic::default().with_name(Some(topic_name(&p.name("missing")))),
            ]))
        },
        normalise_metadata,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_topics_existing_and_unknown() {
    let mut pair = Pair::start("delete").await;
    let versions = pair.versions::<DeleteTopicsRequest>().await;
    for v in versions {
        let name = pair.name(&format!("gone-v{v}"));
        create_on_both(&mut pair, &[(&name, 1)]).await;
    }
    pair.compare(
        |p, v| {
            let names = [p.name(&format!("gone-v{v}")), p.name("never-existed")];
            if v >= 6 {
                DeleteTopicsRequest::default()
                    .with_timeout_ms(10_000)
                    .with_topics(names.iter().map(|n| DeleteTopicState::default().with_name(Some(topic_name(n)))).collect())
            } else {
                DeleteTopicsRequest::default().with_timeout_ms(10_000).with_topic_names(names.iter().map(|n| topic_name(n)).collect())
            }
        },
        |response: &mut DeleteTopicsResponse, _| {
            response.throttle_time_ms = 0;
            response.responses.sort_by(|a, b| a.name.cmp(&b.name));
            for topic in &mut response.responses {
                topic.topic_id = Default::default();
                forget_error_message(topic.error_code, &mut topic.error_message);
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_offsets_and_errors() {
    let mut pair = Pair::start("produce").await;
    let name = pair.name("t");
    create_on_both(&mut pair, &[(&name, 2)]).await;
    let t = pair.name("t");
    // Apache Kafka 4 still advertises Produce v0-v2 but closes the
    // connection on them (KIP-896); runnel answers them (magic 2 only).
    let versions = pair.versions::<ProduceRequest>().await;
    let answers = pair
        .compare_at(
            (*versions.start()).max(3)..=*versions.end(),
            move |_, v| {
                let mut request = produce(&t, 0, testing::batch(1_700_000_000_000 + v as i64, &[b"a", b"b", b"c"]), -1);
                request.topic_data[0]
                    .partition_data
                    .push(PartitionProduceData::default().with_index(7).with_records(Some(Bytes::from(testing::batch(1, &[b"x"])))));
                request
            },
            normalise_produce,
        )
        .await;
    assert_eq!(answers.last().unwrap().responses[0].partition_responses[0].error_code, 0, "the scenario appends");
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_returns_the_same_bytes_and_errors() {
    let mut pair = Pair::start("fetch").await;
    let name = pair.name("t");
    create_on_both(&mut pair, &[(&name, 1)]).await;
    let t = pair.name("t");
    for i in 0..3 {
        produce_on_both(&mut pair, &produce(&t, 0, testing::batch(1_700_000_000_000 + i, &[b"one", b"two"]), -1)).await;
    }
    let versions = pair.versions::<FetchRequest>().await;
    // From v13 topics are named by id, which each broker generates.
    let versions = *versions.start()..=(*versions.end()).min(12);
    let t = pair.name("t");
    // Records from the middle of the log (bytes compared as they are), an
    // unknown partition, an offset past the end, and the log end itself.
    for offsets in [vec![(0, 2), (5, 0)], vec![(0, 100)], vec![(0, 6)]] {
        let t = t.clone();
        pair.compare_at(
            versions.clone(),
            move |_, _| {
                let partitions = offsets
                    .iter()
                    .map(|&(index, offset)| FetchPartition::default().with_partition(index).with_fetch_offset(offset).with_partition_max_bytes(1 << 20));
                FetchRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_max_wait_ms(0)
                    .with_min_bytes(0)
                    .with_max_bytes(1 << 20)
                    .with_topics(vec![FetchTopic::default().with_topic(topic_name(&t)).with_partitions(partitions.collect())])
            },
            |response: &mut FetchResponse, _| {
                response.throttle_time_ms = 0;
                response.session_id = 0;
                for topic in &mut response.responses {
                    topic.partitions.sort_by_key(|p| p.partition_index);
                }
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn list_offsets_earliest_latest_by_time_and_max_timestamp() {
    let mut pair = Pair::start("listoffsets").await;
    let name = pair.name("t");
    create_on_both(&mut pair, &[(&name, 1)]).await;
    let t = pair.name("t");
    for (i, ts) in [1_700_000_000_000i64, 1_700_000_005_000, 1_700_000_002_000].iter().enumerate() {
        produce_on_both(&mut pair, &produce(&t, 0, testing::batch(*ts, &[format!("r{i}").as_bytes()]), -1)).await;
    }
    for timestamp in [-2i64, -1, 1_700_000_001_000, 1_700_000_005_000, 1_800_000_000_000, -3] {
        let versions = pair.versions::<ListOffsetsRequest>().await;
        // Max-timestamp (-3) needs v7 (KIP-734).
        let versions = if timestamp == -3 { (*versions.start()).max(7)..=*versions.end() } else { versions };
        let t = t.clone();
        pair.compare_at(
            versions,
            move |_, _| {
                ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
                    .with_name(topic_name(&t))
                    .with_partitions(vec![
                        ListOffsetsPartition::default().with_partition_index(0).with_timestamp(timestamp).with_max_num_offsets(1),
                        ListOffsetsPartition::default().with_partition_index(3).with_timestamp(timestamp).with_max_num_offsets(1),
                    ])])
            },
            |response: &mut ListOffsetsResponse, _| {
                response.throttle_time_ms = 0;
                for topic in &mut response.topics {
                    topic.partitions.sort_by_key(|p| p.partition_index);
                }
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_records_advances_the_start_and_refuses_out_of_range() {
    let mut pair = Pair::start("deleterecords").await;
    let versions = pair.versions::<DeleteRecordsRequest>().await;
    for v in versions {
        let t = pair.name(&format!("t-v{v}"));
        create_on_both(&mut pair, &[(&t, 1)]).await;
        produce_on_both(&mut pair, &produce(&t, 0, testing::batch(1, &[b"a", b"b", b"c", b"d"]), -1)).await;
    }
    pair.compare(
        |p, v| {
            let t = p.name(&format!("t-v{v}"));
            DeleteRecordsRequest::default().with_timeout_ms(10_000).with_topics(vec![DeleteRecordsTopic::default().with_name(topic_name(&t)).with_partitions(
                vec![
                    DeleteRecordsPartition::default().with_partition_index(0).with_offset(2),
                    DeleteRecordsPartition::default().with_partition_index(1).with_offset(0),
                ],
            )])
        },
        normalise_delete_records,
    )
    .await;
    pair.compare(
        |p, v| {
            let t = p.name(&format!("t-v{v}"));
            DeleteRecordsRequest::default().with_timeout_ms(10_000).with_topics(vec![DeleteRecordsTopic::default()
                .with_name(topic_name(&t))
                .with_partitions(vec![DeleteRecordsPartition::default().with_partition_index(0).with_offset(99)])])
        },
        normalise_delete_records,
    )
    .await;
}

fn normalise_delete_records(response: &mut DeleteRecordsResponse, _: i16) {
    response.throttle_time_ms = 0;
    for topic in &mut response.topics {
        topic.partitions.sort_by_key(|p| p.partition_index);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn groups_unknown_to_the_coordinator() {
    let mut pair = Pair::start("groups").await;
    let group = pair.name("nobody");
    await_coordinator(&mut pair, &group).await;
    pair.compare(
        |p, v| {
            if v >= 5 {
                DescribeGroupsRequest::default().with_groups(vec![group_id(&p.name("nobody"))]).with_include_authorized_operations(false)
            } else {
                DescribeGroupsRequest::default().with_groups(vec![group_id(&p.name("nobody"))])
            }
        },
        |response: &mut DescribeGroupsResponse, _| response.throttle_time_ms = 0,
    )
    .await;
    pair.compare(
        |p, _| HeartbeatRequest::default().with_group_id(group_id(&p.name("nobody"))).with_generation_id(1).with_member_id(StrBytes::from_static_str("m")),
        |response: &mut HeartbeatResponse, _| response.throttle_time_ms = 0,
    )
    .await;
    let versions = pair.versions::<OffsetFetchRequest>().await;
    // v8+ batches groups; the single-group form is compared here.
    let versions = *versions.start()..=(*versions.end()).min(7);
    pair.compare_at(
        versions,
        |p, _| {
            OffsetFetchRequest::default()
                .with_group_id(group_id(&p.name("nobody")))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default().with_name(topic_name(&p.name("t"))).with_partition_indexes(vec![0, 1])]))
        },
        |response: &mut OffsetFetchResponse, _| response.throttle_time_ms = 0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_refusals_bad_acks_corrupt_batches_and_oversized_batches() {
    let mut pair = Pair::start("producebad").await;
    let small = pair.name("small");
    create_topics_on_both(&mut pair, vec![new_topic(&small, 1, 1, &[("max.message.bytes", "200")])]).await;
    let versions = pair.versions::<ProduceRequest>().await;
    let versions = (*versions.start()).max(3)..=*versions.end();
    let mut corrupt = testing::batch(1, &[b"tampered"]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let cases: Vec<(Vec<u8>, i16)> = vec![(testing::batch(1, &[b"a"]), 2), (corrupt, -1), (testing::batch(1, &[&[7u8; 500]]), -1)];
    for (records, acks) in cases {
        let small = small.clone();
        pair.compare_at(versions.clone(), move |_, _| produce(&small, 0, records.clone(), acks), normalise_produce).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_to_a_topic_that_does_not_exist() {
    let mut pair = Pair::start("producemissing").await;
    let versions = pair.versions::<ProduceRequest>().await;
    pair.compare_at(
        (*versions.start()).max(3)..=*versions.end(),
        |p, v| produce(&p.name(&format!("absent-v{v}")), 0, testing::batch(1, &[b"a"]), 1),
        normalise_produce,
    )
    .await;
    pair.compare_at((*versions.start()).max(3)..=*versions.end(), |_, _| produce("bad/name", 0, testing::batch(1, &[b"a"]), 1), normalise_produce).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_partitions_grow_shrink_and_unknown() {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    let mut pair = Pair::start("partitions").await;
    let versions = pair.versions::<CreatePartitionsRequest>().await;
    for v in versions {
        let name = pair.name(&format!("grow-v{v}"));
        create_on_both(&mut pair, &[(&name, 2)]).await;
    }
    for (count, validate_only) in [(4, true), (4, false), (3, false), (4, false)] {
        pair.compare(
            move |p, v| {
                CreatePartitionsRequest::default().with_timeout_ms(10_000).with_validate_only(validate_only).with_topics(vec![
                    CreatePartitionsTopic::default().with_name(topic_name(&p.name(&format!("grow-v{v}")))).with_count(count).with_assignments(None),
                    CreatePartitionsTopic::default().with_name(topic_name(&p.name("absent"))).with_count(count).with_assignments(None),
                ])
            },
            |response: &mut CreatePartitionsResponse, _| {
                response.throttle_time_ms = 0;
                response.results.sort_by(|a, b| a.name.cmp(&b.name));
                for result in &mut response.results {
                    forget_error_message(result.error_code, &mut result.error_message);
                }
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn offsets_committed_outside_a_group_generation_and_fetched_back() {
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    let mut pair = Pair::start("commit").await;
    let group = pair.name("g-v0");
    await_coordinator(&mut pair, &group).await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 2)]).await;
    let versions = pair.versions::<OffsetCommitRequest>().await;
    pair.compare_at(
        versions.clone(),
        |p, v| {
            let partition = |index: i32, offset: i64| {
                OffsetCommitRequestPartition::default()
                    .with_partition_index(index)
                    .with_committed_offset(offset)
                    .with_committed_metadata(Some(StrBytes::from_static_str("meta")))
            };
            OffsetCommitRequest::default()
                .with_group_id(group_id(&p.name(&format!("g-v{v}"))))
                .with_generation_id_or_member_epoch(-1)
                .with_retention_time_ms(-1)
                .with_topics(vec![
                    OffsetCommitRequestTopic::default().with_name(topic_name(&p.name("t"))).with_partitions(vec![
                        partition(0, 5),
                        partition(1, 7),
                        partition(9, 1),
                    ]),
                    OffsetCommitRequestTopic::default().with_name(topic_name(&p.name("absent"))).with_partitions(vec![partition(0, 1)]),
                ])
        },
        |response: &mut OffsetCommitResponse, _| {
            response.throttle_time_ms = 0;
            response.topics.sort_by(|a, b| a.name.cmp(&b.name));
            for topic in &mut response.topics {
                topic.partitions.sort_by_key(|p| p.partition_index);
            }
        },
    )
    .await;
    let fetch_versions = pair.versions::<OffsetFetchRequest>().await;
    let fetch_versions = (*fetch_versions.start()).max(*versions.start())..=(*fetch_versions.end()).min(7);
    pair.compare_at(
        fetch_versions,
        |p, v| {
            OffsetFetchRequest::default()
                .with_group_id(group_id(&p.name(&format!("g-v{v}"))))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default().with_name(topic_name(&p.name("t"))).with_partition_indexes(vec![0, 1, 5])]))
        },
        |response: &mut OffsetFetchResponse, _| {
            response.throttle_time_ms = 0;
            for topic in &mut response.topics {
                topic.partitions.sort_by_key(|p| p.partition_index);
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn join_group_asks_new_members_for_an_id_and_refuses_bad_requests() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    let mut pair = Pair::start("join").await;
    let group = pair.name("g-v0");
    await_coordinator(&mut pair, &group).await;
    let join = |p: &Pair, v: i16, session_timeout_ms: i32, protocol_type: &'static str| {
        let mut request = JoinGroupRequest::default()
            .with_group_id(group_id(&p.name(&format!("g-v{v}"))))
            .with_session_timeout_ms(session_timeout_ms)
            .with_member_id(StrBytes::default())
            .with_protocol_type(StrBytes::from_static_str(protocol_type))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(Bytes::from_static(b"\0\x01"))]);
        if v >= 1 {
            request = request.with_rebalance_timeout_ms(10_000);
        }
        request
    };
    // From v4 a member without an id is given one and asked to rejoin.
    let versions = pair.versions::<JoinGroupRequest>().await;
    pair.compare_at(
        (*versions.start()).max(4)..=*versions.end(),
        move |p, v| join(p, v, 10_000, "consumer"),
        |response: &mut JoinGroupResponse, _| {
            response.throttle_time_ms = 0;
            response.member_id = StrBytes::default();
        },
    )
    .await;
    // Session timeouts outside the broker's bounds are refused.
    pair.compare(move |p, v| join(p, v, 1, "consumer"), |response: &mut JoinGroupResponse, _| response.throttle_time_ms = 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_versions_refuses_an_invalid_client_software_name() {
    let mut pair = Pair::start("apiversions").await;
    pair.compare_at(
        3..=3,
        |_, _| {
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("-bad name-"))
                .with_client_software_version(StrBytes::from_static_str("1"))
        },
        |response: &mut ApiVersionsResponse, _| {
            // Each broker lists its own APIs; compare the verdict.
            response.api_keys.clear();
            response.throttle_time_ms = 0;
            response.supported_features.clear();
            response.finalized_features.clear();
            response.finalized_features_epoch = -1;
            response.zk_migration_ready = false;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_producer_sequences_duplicates_and_gaps() {
    let mut pair = Pair::start("idempotent").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 2)]).await;
    pair.compare_scripts(async |client, prefix| {
        let t = format!("{prefix}-t");
        // A fresh Apache Kafka answers COORDINATOR_LOAD_IN_PROGRESS until its
        // producer id manager is ready; clients retry, and so does this.
        let init = loop {
            let init = client.call(&InitProducerIdRequest::default().with_transaction_timeout_ms(60_000), 4).await;
            if init.error_code != 14 {
                break init;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
        let mut seen = vec![format!("init: error {} epoch {epoch}", init.error_code)];
        let steps: [(&str, i32, i32, usize); 6] =
            [("first", 0, 0, 2), ("retry", 0, 0, 2), ("next", 0, 2, 1), ("gap", 0, 7, 1), ("other partition", 1, 0, 1), ("overlapping", 0, 1, 2)];
        for (what, partition, sequence, records) in steps {
            let values: Vec<&[u8]> = (0..records).map(|_| b"v".as_slice()).collect();
            let response = client.call(&produce(&t, partition, testing::batch_with_producer(1, &values, pid, epoch, sequence), -1), 9).await;
            let answer = &response.responses[0].partition_responses[0];
            seen.push(format!("{what}: error {} base offset {}", answer.error_code, answer.base_offset));
        }
        seen
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_member_joins_syncs_heartbeats_commits_and_leaves() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    let mut pair = Pair::start("lifecycle").await;
    let (t, group) = (pair.name("t"), pair.name("g"));
    create_on_both(&mut pair, &[(&t, 1)]).await;
    await_coordinator(&mut pair, &group).await;
    pair.compare_scripts(async |client, prefix| {
        let (t, group) = (format!("{prefix}-t"), group_id(&format!("{prefix}-g")));
        let mut seen = Vec::new();
        let join = |member: &str| {
            JoinGroupRequest::default()
                .with_group_id(group.clone())
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_member_id(StrBytes::from_string(member.to_string()))
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(Bytes::from_static(b"\0\x01"))])
        };
        let first = client.call(&join(""), 5).await;
        seen.push(format!("join without id: error {} gets an id: {}", first.error_code, !first.member_id.is_empty()));
        let member = first.member_id.to_string();
        let joined = client.call(&join(&member), 5).await;
        seen.push(format!(
            "join: error {} generation {} protocol {:?} leader is me: {} members {}",
            joined.error_code,
            joined.generation_id,
            joined.protocol_name,
            joined.leader == joined.member_id,
            joined.members.len()
        ));
        let generation = joined.generation_id;
        let sync = SyncGroupRequest::default()
            .with_group_id(group.clone())
            .with_generation_id(generation)
            .with_member_id(StrBytes::from_string(member.clone()))
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(StrBytes::from_string(member.clone()))
                .with_assignment(Bytes::from_static(b"plan"))]);
        let synced = client.call(&sync, 3).await;
        seen.push(format!("sync: error {} assignment {:?}", synced.error_code, synced.assignment));
        for (what, generation, member_id) in
            [("heartbeat", generation, member.as_str()), ("stale generation", generation + 5, member.as_str()), ("unknown member", generation, "nobody")]
        {
            let beat = HeartbeatRequest::default()
                .with_group_id(group.clone())
                .with_generation_id(generation)
                .with_member_id(StrBytes::from_string(member_id.to_string()));
            seen.push(format!("{what}: error {}", client.call(&beat, 3).await.error_code));
        }
        for (what, generation) in [("commit", generation), ("commit stale generation", generation + 5)] {
            let commit = OffsetCommitRequest::default()
                .with_group_id(group.clone())
                .with_generation_id_or_member_epoch(generation)
                .with_member_id(StrBytes::from_string(member.clone()))
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(topic_name(&t))
                    .with_partitions(vec![OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(3)])]);
            let committed = client.call(&commit, 7).await;
            seen.push(format!("{what}: error {}", committed.topics[0].partitions[0].error_code));
        }
        let describe = || DescribeGroupsRequest::default().with_groups(vec![group.clone()]);
        let described = client.call(&describe(), 4).await;
        let g = &described.groups[0];
        seen.push(format!(
            "describe: error {} state {} type {} protocol {} members {}",
            g.error_code,
            g.group_state,
            g.protocol_type,
            g.protocol_data,
            g.members.len()
        ));
        let delete_busy = client.call(&DeleteGroupsRequest::default().with_groups_names(vec![group.clone()]), 2).await;
        seen.push(format!("delete while in use: error {}", delete_busy.results[0].error_code));
        let leave = LeaveGroupRequest::default()
            .with_group_id(group.clone())
            .with_members(vec![MemberIdentity::default().with_member_id(StrBytes::from_string(member.clone()))]);
        let left = client.call(&leave, 3).await;
        seen.push(format!("leave: error {} member error {}", left.error_code, left.members[0].error_code));
        let described = client.call(&describe(), 4).await;
        seen.push(format!("describe after leaving: state {} members {}", described.groups[0].group_state, described.groups[0].members.len()));
        for what in ["delete", "delete again"] {
            let deleted = client.call(&DeleteGroupsRequest::default().with_groups_names(vec![group.clone()]), 2).await;
            seen.push(format!("{what}: error {}", deleted.results[0].error_code));
        }
        seen
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn topic_configs_altered_whole_and_incrementally() {
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::messages::incremental_alter_configs_request as incremental;
    let mut pair = Pair::start("alterconfigs").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    let cases: [(&str, &str); 4] = [("retention.ms", "60000"), ("retention.ms", "soon"), ("no.such.config", "1"), ("cleanup.policy", "delete,compact")];
    for (name, value) in cases {
        for target in [t.clone(), pair.name("absent")] {
            let target2 = target.clone();
            pair.compare(
                move |_, _| {
                    AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(StrBytes::from_string(target.clone()))
                        .with_configs(vec![AlterableConfig::default()
                            .with_name(StrBytes::from_static_str(name))
                            .with_value(Some(StrBytes::from_static_str(value)))])])
                },
                |response: &mut AlterConfigsResponse, _| {
                    response.throttle_time_ms = 0;
                    for r in &mut response.responses {
                        forget_error_message(r.error_code, &mut r.error_message);
                    }
                },
            )
            .await;
            pair.compare(
                move |_, _| {
                    IncrementalAlterConfigsRequest::default().with_resources(vec![incremental::AlterConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(StrBytes::from_string(target2.clone()))
                        .with_configs(vec![incremental::AlterableConfig::default()
                            .with_name(StrBytes::from_static_str(name))
                            .with_config_operation(0)
                            .with_value(Some(StrBytes::from_static_str(value)))])])
                },
                |response: &mut IncrementalAlterConfigsResponse, _| {
                    response.throttle_time_ms = 0;
                    for r in &mut response.responses {
                        forget_error_message(r.error_code, &mut r.error_message);
                    }
                },
            )
            .await;
        }
    }
}

/// A topic with three batches of two records each (offsets 0..6) on both.
async fn topic_with_records(pair: &mut Pair, suffix: &str, configs: &[(&str, &str)]) -> String {
    let t = pair.name(suffix);
    create_topics_on_both(pair, vec![new_topic(&t, 1, 1, configs)]).await;
    for i in 0..3 {
        produce_on_both(pair, &produce(&t, 0, testing::batch(1_700_000_000_000 + i * 1000, &[b"one", b"two"]), -1)).await;
    }
    t
}

fn fetch_one(topic: &str, offset: i64, partition_max_bytes: i32) -> FetchRequest {
    FetchRequest::default().with_replica_id(BrokerId(-1)).with_max_wait_ms(0).with_min_bytes(0).with_max_bytes(1 << 20).with_topics(vec![FetchTopic::default()
        .with_topic(topic_name(topic))
        .with_partitions(vec![FetchPartition::default().with_fetch_offset(offset).with_partition_max_bytes(partition_max_bytes)])])
}

fn normalise_fetch(response: &mut FetchResponse, _: i16) {
    response.throttle_time_ms = 0;
    response.session_id = 0;
    for topic in &mut response.responses {
        topic.partitions.sort_by_key(|p| p.partition_index);
    }
}

async fn compare_fetch(pair: &mut Pair, topic: &str, offset: i64, partition_max_bytes: i32, from_version: i16) {
    let versions = pair.versions::<FetchRequest>().await;
    let topic = topic.to_string();
    pair.compare_at(
        (*versions.start()).max(from_version)..=(*versions.end()).min(12),
        move |_, _| fetch_one(&topic, offset, partition_max_bytes),
        normalise_fetch,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_smaller_than_a_batch_still_returns_the_whole_first_batch() {
    let mut pair = Pair::start("fetchsmall").await;
    let t = topic_with_records(&mut pair, "t", &[]).await;
    // KIP-74: from v3 the first batch is returned even if larger than asked.
    compare_fetch(&mut pair, &t, 1, 10, 3).await;
    compare_fetch(&mut pair, &t, 3, 10, 3).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_and_list_offsets_after_records_are_deleted() {
    use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
    let mut pair = Pair::start("afterdelete").await;
    let t = topic_with_records(&mut pair, "t", &[]).await;
    let delete = DeleteRecordsRequest::default().with_timeout_ms(10_000).with_topics(vec![DeleteRecordsTopic::default()
        .with_name(topic_name(&t))
        .with_partitions(vec![DeleteRecordsPartition::default().with_partition_index(0).with_offset(3)])]);
    let (runnel, kafka) = pair.both(&delete, 2).await;
    assert_eq!(runnel, kafka);
    compare_fetch(&mut pair, &t, 0, 1 << 20, 4).await;
    compare_fetch(&mut pair, &t, 3, 1 << 20, 4).await;
    for timestamp in [-2i64, -1, 0] {
        let t = t.clone();
        pair.compare(
            move |_, _| {
                ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
                    .with_name(topic_name(&t))
                    .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(timestamp).with_max_num_offsets(1)])])
            },
            |response: &mut ListOffsetsResponse, _| response.throttle_time_ms = 0,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn list_offsets_of_an_empty_topic() {
    let mut pair = Pair::start("emptyoffsets").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    for timestamp in [-2i64, -1, 0, -3] {
        let versions = pair.versions::<ListOffsetsRequest>().await;
        let versions = if timestamp == -3 { (*versions.start()).max(7)..=*versions.end() } else { versions };
        let t = t.clone();
        pair.compare_at(
            versions,
            move |_, _| {
                ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
                    .with_name(topic_name(&t))
                    .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(timestamp).with_max_num_offsets(1)])])
            },
            |response: &mut ListOffsetsResponse, _| response.throttle_time_ms = 0,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn log_append_time_topics_stamp_the_broker_clock() {
    let mut pair = Pair::start("appendtime").await;
    let t = pair.name("t");
    create_topics_on_both(&mut pair, vec![new_topic(&t, 1, 1, &[("message.timestamp.type", "LogAppendTime")])]).await;
    let versions = pair.versions::<ProduceRequest>().await;
    let t2 = t.clone();
    pair.compare_at(
        (*versions.start()).max(3)..=*versions.end(),
        move |_, _| produce(&t2, 0, testing::batch(5, &[b"x"]), -1),
        |response: &mut ProduceResponse, version| {
            normalise_produce(response, version);
            // The broker's clock differs; that it stamped one does not.
            for topic in &mut response.responses {
                for partition in &mut topic.partition_responses {
                    partition.log_append_time_ms = partition.log_append_time_ms.signum();
                }
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_at_the_oldest_versions_for_an_existing_topic() {
    let mut pair = Pair::start("metadataold").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 2)]).await;
    let versions = pair.versions::<MetadataRequest>().await;
    pair.compare_at(
        *versions.start()..=3,
        move |_, _| MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name(&t)))])),
        normalise_metadata,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn find_coordinator_for_groups() {
    let mut pair = Pair::start("findcoordinator").await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    let versions = pair.versions::<FindCoordinatorRequest>().await;
    pair.compare_at(
        versions,
        |p, v| {
            let request = FindCoordinatorRequest::default().with_key_type(0);
            if v >= 4 {
                request.with_coordinator_keys(vec![StrBytes::from_string(p.name("g")), StrBytes::from_string(p.name("h"))])
            } else {
                request.with_key(StrBytes::from_string(p.name("g")))
            }
        },
        |response: &mut FindCoordinatorResponse, _| {
            response.throttle_time_ms = 0;
            forget_error_message(response.error_code, &mut response.error_message);
            (response.node_id, response.host, response.port) = (BrokerId(0), StrBytes::default(), 0);
            for coordinator in &mut response.coordinators {
                (coordinator.node_id, coordinator.host, coordinator.port) = (BrokerId(0), StrBytes::default(), 0);
                forget_error_message(coordinator.error_code, &mut coordinator.error_message);
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_offsets_listed_deleted_and_groups_removed() {
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
    let mut pair = Pair::start("offsetdelete").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 2)]).await;
    let groups = [pair.name("g1"), pair.name("g2")];
    await_coordinator(&mut pair, &groups[0]).await;
    for group in &groups {
        let commit = OffsetCommitRequest::default().with_group_id(group_id(group)).with_generation_id_or_member_epoch(-1).with_topics(vec![
            OffsetCommitRequestTopic::default().with_name(topic_name(&t)).with_partitions(vec![
                OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(4),
                OffsetCommitRequestPartition::default().with_partition_index(1).with_committed_offset(9),
            ]),
        ]);
        let (runnel, kafka) = pair.both(&commit, 7).await;
        assert_eq!(runnel, kafka);
    }
    // Listing: Apache Kafka is shared by every test, so only this test's
    // groups are compared.
    pair.compare(
        |_, v| if v >= 4 { ListGroupsRequest::default().with_states_filter(vec![StrBytes::from_static_str("Empty")]) } else { ListGroupsRequest::default() },
        {
            let prefix = pair.prefix.clone();
            move |response: &mut ListGroupsResponse, _| {
                response.throttle_time_ms = 0;
                response.groups.retain(|g| g.group_id.starts_with(prefix.as_str()));
                response.groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
            }
        },
    )
    .await;
    pair.compare(
        |p, _| {
            OffsetDeleteRequest::default().with_group_id(group_id(&p.name("g1"))).with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(topic_name(&p.name("t")))
                .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(0)])])
        },
        |response: &mut OffsetDeleteResponse, _| response.throttle_time_ms = 0,
    )
    .await;
    let fetch_versions = pair.versions::<OffsetFetchRequest>().await;
    pair.compare_at(
        (*fetch_versions.start()).max(2)..=(*fetch_versions.end()).min(7),
        |p, _| OffsetFetchRequest::default().with_group_id(group_id(&p.name("g1"))).with_topics(None),
        |response: &mut OffsetFetchResponse, _| {
            response.throttle_time_ms = 0;
            for topic in &mut response.topics {
                topic.partitions.sort_by_key(|p| p.partition_index);
            }
        },
    )
    .await;
    pair.compare(
        |p, _| OffsetDeleteRequest::default().with_group_id(group_id(&p.name("nobody"))).with_topics(vec![]),
        |response: &mut OffsetDeleteResponse, _| response.throttle_time_ms = 0,
    )
    .await;
    let versions = pair.versions::<DeleteGroupsRequest>().await;
    pair.compare_at(
        versions,
        |p, v| {
            let group = if v == 0 { p.name("g2") } else { p.name("nobody") };
            DeleteGroupsRequest::default().with_groups_names(vec![group_id(&group)])
        },
        |response: &mut DeleteGroupsResponse, _| response.throttle_time_ms = 0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_group_and_leave_group_refuse_strangers() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    let mut pair = Pair::start("strangers").await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    pair.compare_scripts(async |client, prefix| {
        let group = group_id(&format!("{prefix}-g"));
        let mut seen = Vec::new();
        let join = |member: &str, protocol_type: &'static str| {
            JoinGroupRequest::default()
                .with_group_id(group.clone())
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_member_id(StrBytes::from_string(member.to_string()))
                .with_protocol_type(StrBytes::from_static_str(protocol_type))
                .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(StrBytes::from_static_str("range")).with_metadata(Bytes::from_static(b"m"))])
        };
        let first = client.call(&join("", "consumer"), 5).await;
        let member = first.member_id.to_string();
        let joined = client.call(&join(&member, "consumer"), 5).await;
        seen.push(format!("join: error {} generation {}", joined.error_code, joined.generation_id));
        let other_type = client.call(&join("", "connect"), 5).await;
        seen.push(format!("join with another protocol type: error {}", other_type.error_code));
        for (what, generation, member_id) in
            [("sync stale generation", joined.generation_id + 1, member.as_str()), ("sync unknown member", joined.generation_id, "nobody")]
        {
            let sync = SyncGroupRequest::default()
                .with_group_id(group.clone())
                .with_generation_id(generation)
                .with_member_id(StrBytes::from_string(member_id.to_string()));
            seen.push(format!("{what}: error {}", client.call(&sync, 3).await.error_code));
        }
        let leave = LeaveGroupRequest::default().with_group_id(group.clone()).with_members(vec![
            MemberIdentity::default().with_member_id(StrBytes::from_static_str("nobody")),
            MemberIdentity::default().with_member_id(StrBytes::from_string(member.clone())),
        ]);
        let left = client.call(&leave, 3).await;
        seen.push(format!("leave: error {} members {:?}", left.error_code, left.members.iter().map(|m| m.error_code).collect::<Vec<_>>()));
        let unknown_group = LeaveGroupRequest::default()
            .with_group_id(group_id(&format!("{prefix}-nobody")))
            .with_members(vec![MemberIdentity::default().with_member_id(StrBytes::from_static_str("x"))]);
        let left = client.call(&unknown_group, 3).await;
        seen.push(format!("leave unknown group: error {} members {:?}", left.error_code, left.members.iter().map(|m| m.error_code).collect::<Vec<_>>()));
        seen
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn topics_named_by_an_unknown_id() {
    let mut pair = Pair::start("topicids").await;
    let unknown = uuid::Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0001);
    let versions = pair.versions::<DeleteTopicsRequest>().await;
    pair.compare_at(
        (*versions.start()).max(6)..=*versions.end(),
        move |_, _| {
            DeleteTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![DeleteTopicState::default().with_name(None).with_topic_id(unknown)])
        },
        |response: &mut DeleteTopicsResponse, _| {
            response.throttle_time_ms = 0;
            for topic in &mut response.responses {
                forget_error_message(topic.error_code, &mut topic.error_message);
            }
        },
    )
    .await;
    let versions = pair.versions::<FetchRequest>().await;
    pair.compare_at(
        (*versions.start()).max(13)..=*versions.end(),
        move |_, _| {
            FetchRequest::default().with_replica_id(BrokerId(-1)).with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![FetchTopic::default()
                .with_topic_id(unknown)
                .with_partitions(vec![FetchPartition::default().with_partition_max_bytes(1 << 20)])])
        },
        normalise_fetch,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn read_committed_fetch_of_a_log_without_transactions() {
    let mut pair = Pair::start("readcommitted").await;
    let t = topic_with_records(&mut pair, "t", &[]).await;
    let versions = pair.versions::<FetchRequest>().await;
    pair.compare_at((*versions.start()).max(4)..=(*versions.end()).min(12), move |_, _| fetch_one(&t, 0, 1 << 20).with_isolation_level(1), normalise_fetch)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn offset_for_leader_epoch_of_a_single_epoch_log() {
    use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
    let mut pair = Pair::start("leaderepoch").await;
    let t = topic_with_records(&mut pair, "t", &[]).await;
    let versions = pair.versions::<OffsetForLeaderEpochRequest>().await;
    pair.compare_at(
        (*versions.start()).max(2)..=*versions.end(),
        move |_, v| {
            let partition = |index: i32, epoch: i32| {
                let p = OffsetForLeaderPartition::default().with_partition(index).with_leader_epoch(epoch);
                if v >= 2 {
                    p.with_current_leader_epoch(-1)
                } else {
                    p
                }
            };
            let request = OffsetForLeaderEpochRequest::default().with_topics(vec![OffsetForLeaderTopic::default()
                .with_topic(topic_name(&t))
                .with_partitions(vec![partition(0, 0), partition(0, 7), partition(4, 0)])]);
            if v >= 3 {
                request.with_replica_id(BrokerId(-1))
            } else {
                request
            }
        },
        |response: &mut OffsetForLeaderEpochResponse, _| {
            response.throttle_time_ms = 0;
            for topic in &mut response.topics {
                topic.partitions.sort_by_key(|p| (p.partition, p.leader_epoch));
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_cluster_answers_for_brokers() {
    let mut pair = Pair::start("cluster").await;
    pair.compare(
        |_, _| DescribeClusterRequest::default(),
        |response: &mut DescribeClusterResponse, _| {
            response.throttle_time_ms = 0;
            response.cluster_id = StrBytes::default();
            response.controller_id = BrokerId(0);
            for broker in &mut response.brokers {
                (broker.broker_id, broker.host, broker.port) = (BrokerId(0), StrBytes::default(), 0);
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_group_requests_metadata_too_large_and_empty_group_id() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    let mut pair = Pair::start("badgroup").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    let versions = pair.versions::<OffsetCommitRequest>().await;
    pair.compare_at(
        versions,
        |p, v| {
            OffsetCommitRequest::default().with_group_id(group_id(&p.name(&format!("g-v{v}")))).with_generation_id_or_member_epoch(-1).with_topics(vec![
                OffsetCommitRequestTopic::default().with_name(topic_name(&p.name("t"))).with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_committed_offset(1)
                    .with_committed_metadata(Some(StrBytes::from_string("m".repeat(5000))))]),
            ])
        },
        |response: &mut OffsetCommitResponse, _| response.throttle_time_ms = 0,
    )
    .await;
    pair.compare(
        |_, v| {
            let request = JoinGroupRequest::default()
                .with_group_id(group_id(""))
                .with_session_timeout_ms(10_000)
                .with_member_id(StrBytes::default())
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(Bytes::from_static(b"m"))]);
            if v >= 1 {
                request.with_rebalance_timeout_ms(10_000)
            } else {
                request
            }
        },
        |response: &mut JoinGroupResponse, _| response.throttle_time_ms = 0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_bad_topic_among_good_ones_and_two_batches_in_one_produce() {
    let mut pair = Pair::start("mixed").await;
    pair.compare(
        |p, v| {
            create_topics(
                vec![
                    new_topic(&p.name(&format!("a-v{v}")), 1, 1, &[]),
                    new_topic(&p.name(&format!("b-v{v}")), 0, 1, &[]),
                    new_topic(&p.name(&format!("c-v{v}")), 2, 1, &[]),
                ],
                false,
            )
        },
        normalise_create,
    )
    .await;
    let t = pair.name("two");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    let versions = pair.versions::<ProduceRequest>().await;
    pair.compare_at(
        (*versions.start()).max(3)..=*versions.end(),
        move |_, _| {
            let mut records = testing::batch(1, &[b"a", b"b"]);
            records.extend(testing::batch(2, &[b"c"]));
            produce(&t, 0, records, -1)
        },
        normalise_produce,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_topics_with_replica_assignments_and_colliding_names() {
    use kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment;
    let mut pair = Pair::start("assign").await;
    pair.compare(
        |p, v| {
            let assigned = |suffix: &str, brokers: &[i32]| {
                new_topic(&p.name(&format!("{suffix}-v{v}")), -1, -1, &[]).with_assignments(vec![CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(brokers.iter().map(|b| BrokerId(*b)).collect())])
            };
            create_topics(vec![assigned("on-broker", &[1]), assigned("on-missing-broker", &[7]), assigned("on-no-broker", &[])], false)
        },
        normalise_create,
    )
    .await;
    // Kafka refuses names that collide with an existing one once `.` and
    // `_` are treated alike (their metric names would clash).
    let dotted = pair.name("a.b");
    create_on_both(&mut pair, &[(&dotted, 1)]).await;
    pair.compare(|p, _| create_topics(vec![new_topic(&p.name("a_b"), 1, 1, &[])], false), normalise_create).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_records_to_the_high_watermark_and_odd_list_offsets_timestamps() {
    use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
    let mut pair = Pair::start("hwm").await;
    let t = topic_with_records(&mut pair, "t", &[]).await;
    let t2 = t.clone();
    pair.compare_at(
        0..=0,
        move |_, _| {
            DeleteRecordsRequest::default().with_timeout_ms(10_000).with_topics(vec![DeleteRecordsTopic::default()
                .with_name(topic_name(&t2))
                .with_partitions(vec![DeleteRecordsPartition::default().with_offset(-1)])])
        },
        normalise_delete_records,
    )
    .await;
    // -5 and below are Kafka's newer special timestamps (tiered storage);
    // a timestamp no version gives a meaning is compared instead.
    for timestamp in [-2i64, -100] {
        let t = t.clone();
        let versions = pair.versions::<ListOffsetsRequest>().await;
        pair.compare_at(
            (*versions.start()).max(1)..=*versions.end(),
            move |_, _| {
                ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
                    .with_name(topic_name(&t))
                    .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(timestamp)])])
            },
            |response: &mut ListOffsetsResponse, _| response.throttle_time_ms = 0,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_to_the_internal_offsets_topic_is_refused() {
    let mut pair = Pair::start("internal").await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    let versions = pair.versions::<ProduceRequest>().await;
    pair.compare_at((*versions.start()).max(3)..=*versions.end(), |_, _| produce("__consumer_offsets", 0, testing::batch(1, &[b"x"]), 1), normalise_produce)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn offsets_of_several_groups_fetched_in_one_request_and_groups_described_together() {
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics};
    let mut pair = Pair::start("multigroup").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 2)]).await;
    let committed = pair.name("committed");
    await_coordinator(&mut pair, &committed).await;
    let commit = OffsetCommitRequest::default().with_group_id(group_id(&committed)).with_generation_id_or_member_epoch(-1).with_topics(vec![
        OffsetCommitRequestTopic::default()
            .with_name(topic_name(&t))
            .with_partitions(vec![OffsetCommitRequestPartition::default().with_partition_index(1).with_committed_offset(11)]),
    ]);
    let (runnel, kafka) = pair.both(&commit, 7).await;
    assert_eq!(runnel, kafka);
    let versions = pair.versions::<OffsetFetchRequest>().await;
    pair.compare_at(
        (*versions.start()).max(8)..=*versions.end(),
        |p, _| {
            let group = |name: &str, topics| OffsetFetchRequestGroup::default().with_group_id(group_id(&p.name(name))).with_topics(topics);
            OffsetFetchRequest::default().with_groups(vec![
                group("committed", Some(vec![OffsetFetchRequestTopics::default().with_name(topic_name(&p.name("t"))).with_partition_indexes(vec![0, 1])])),
                group("committed", None),
                group("never", None),
            ])
        },
        |response: &mut OffsetFetchResponse, _| {
            response.throttle_time_ms = 0;
            for group in &mut response.groups {
                for topic in &mut group.topics {
                    topic.partitions.sort_by_key(|p| p.partition_index);
                }
            }
        },
    )
    .await;
    pair.compare(
        |p, _| DescribeGroupsRequest::default().with_groups(vec![group_id(&p.name("committed")), group_id(&p.name("never"))]),
        |response: &mut DescribeGroupsResponse, _| {
            response.throttle_time_ms = 0;
            response.groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn incremental_config_operations_and_validate_only() {
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let mut pair = Pair::start("incremental").await;
    let versions = pair.versions::<IncrementalAlterConfigsRequest>().await;
    for v in versions {
        let name = pair.name(&format!("t-v{v}"));
        create_topics_on_both(&mut pair, vec![new_topic(&name, 1, 1, &[("retention.ms", "600000"), ("cleanup.policy", "delete")])]).await;
    }
    // SET, DELETE, APPEND, SUBTRACT; then a validate-only change.
    let operations: [(&str, i8, &str, bool); 6] = [
        ("retention.ms", 0, "1000", false),
        ("retention.ms", 1, "", false),
        ("cleanup.policy", 2, "compact", false),
        ("cleanup.policy", 3, "delete", false),
        ("retention.ms", 0, "nope", true),
        ("segment.ms", 0, "3600000", true),
    ];
    for (name, operation, value, validate_only) in operations {
        pair.compare(
            move |p, v| {
                IncrementalAlterConfigsRequest::default().with_validate_only(validate_only).with_resources(vec![AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_string(p.name(&format!("t-v{v}"))))
                    .with_configs(vec![AlterableConfig::default()
                        .with_name(StrBytes::from_static_str(name))
                        .with_config_operation(operation)
                        .with_value((operation != 1).then(|| StrBytes::from_static_str(value)))])])
            },
            |response: &mut IncrementalAlterConfigsResponse, _| {
                response.throttle_time_ms = 0;
                for r in &mut response.responses {
                    forget_error_message(r.error_code, &mut r.error_message);
                }
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_for_no_topics_at_all() {
    let mut pair = Pair::start("notopics").await;
    let versions = pair.versions::<MetadataRequest>().await;
    pair.compare_at((*versions.start()).max(1)..=*versions.end(), |_, _| MetadataRequest::default().with_topics(Some(vec![])), normalise_metadata).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_topic_is_gone_and_its_name_free_again() {
    let mut pair = Pair::start("recreate").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 2)]).await;
    produce_on_both(&mut pair, &produce(&t, 0, testing::batch(1, &[b"before"]), -1)).await;
    let delete = DeleteTopicsRequest::default().with_timeout_ms(10_000).with_topic_names(vec![topic_name(&t)]);
    let (runnel, kafka) = pair.both(&delete, 5).await;
    assert_eq!((runnel.responses[0].error_code, kafka.responses[0].error_code), (0, 0));
    // Kafka's brokers learn of a deletion from the controller a moment
    // later; clients retry until their metadata agrees.
    let gone = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name(&t)))]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while pair.kafka.call(&gone, 12).await.topics[0].error_code == 0 {
        assert!(std::time::Instant::now() < deadline, "Apache Kafka never forgot the deleted topic");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let t2 = t.clone();
    let metadata_versions = pair.versions::<MetadataRequest>().await;
    pair.compare_at(
        (*metadata_versions.start()).max(4)..=*metadata_versions.end(),
        move |_, _| {
            MetadataRequest::default()
                .with_allow_auto_topic_creation(false)
                .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name(&t2)))]))
        },
        normalise_metadata,
    )
    .await;
    // Kafka removes a deleted topic's data asynchronously; recreating the
    // name may take a moment, as clients see.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let recreate = create_topics(vec![new_topic(&t, 1, 1, &[])], false);
        let (runnel, kafka) = pair.both(&recreate, 5).await;
        assert_eq!(runnel.topics[0].error_code, 0, "runnel frees the name at once");
        if kafka.topics[0].error_code == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "Apache Kafka never freed the name");
        let undo = DeleteTopicsRequest::default().with_timeout_ms(10_000).with_topic_names(vec![topic_name(&t)]);
        pair.runnel.call(&undo, 5).await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let t3 = t.clone();
    let offsets_versions = pair.versions::<ListOffsetsRequest>().await;
    pair.compare_at(
        (*offsets_versions.start()).max(4)..=*offsets_versions.end(),
        move |_, _| {
            ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(&t3))
                .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(-1)])])
        },
        |response: &mut ListOffsetsResponse, _| response.throttle_time_ms = 0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_internal_offsets_topic_cannot_be_grown_or_deleted() {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    let mut pair = Pair::start("internaladmin").await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    pair.compare(
        |_, _| {
            CreatePartitionsRequest::default()
                .with_timeout_ms(10_000)
                .with_topics(vec![CreatePartitionsTopic::default().with_name(topic_name("__consumer_offsets")).with_count(100).with_assignments(None)])
        },
        |response: &mut CreatePartitionsResponse, _| {
            response.throttle_time_ms = 0;
            for result in &mut response.results {
                forget_error_message(result.error_code, &mut result.error_message);
            }
        },
    )
    .await;
    pair.compare_at(
        1..=5,
        |_, _| DeleteTopicsRequest::default().with_timeout_ms(10_000).with_topic_names(vec![topic_name("__consumer_offsets")]),
        |response: &mut DeleteTopicsResponse, _| {
            response.throttle_time_ms = 0;
            for topic in &mut response.responses {
                forget_error_message(topic.error_code, &mut topic.error_message);
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn group_requests_without_a_group_id_or_protocols() {
    let mut pair = Pair::start("nogroup").await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    pair.compare(
        |_, _| HeartbeatRequest::default().with_group_id(group_id("")).with_generation_id(1).with_member_id(StrBytes::from_static_str("m")),
        |response: &mut HeartbeatResponse, _| response.throttle_time_ms = 0,
    )
    .await;
    pair.compare(
        |p, v| {
            let request = JoinGroupRequest::default()
                .with_group_id(group_id(&p.name(&format!("g-v{v}"))))
                .with_session_timeout_ms(10_000)
                .with_member_id(StrBytes::default())
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![]);
            if v >= 1 {
                request.with_rebalance_timeout_ms(10_000)
            } else {
                request
            }
        },
        |response: &mut JoinGroupResponse, _| {
            response.throttle_time_ms = 0;
            response.member_id = StrBytes::default();
        },
    )
    .await;
    let versions = pair.versions::<LeaveGroupRequest>().await;
    pair.compare_at(
        *versions.start()..=2,
        |p, _| LeaveGroupRequest::default().with_group_id(group_id(&p.name("g"))).with_member_id(StrBytes::from_static_str("nobody")),
        |response: &mut LeaveGroupResponse, _| response.throttle_time_ms = 0,
    )
    .await;
}
