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

mod batches;
mod cluster;
mod configs;
mod groups;
mod membership;
mod records;
mod topics;
mod transactions;

/// Guards the shared Apache Kafka's broker configs: every scenario holds it
/// shared, and one that changes broker configs at runtime holds it alone,
/// so no other scenario sees topic defaults it did not set.
static PEER_BROKER_CONFIGS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Connections to both brokers, and runnel's process.
struct Pair {
    runnel: RawClient,
    kafka: RawClient,
    _serve: Serve,
    _dir: tempfile::TempDir,
    /// Prefix that keeps this scenario's names apart on the shared Kafka.
    prefix: String,
    _peer_configs: PeerConfigsGuard,
}

/// A scenario's hold on [`PEER_BROKER_CONFIGS`], released when it ends.
struct PeerConfigsGuard {
    _shared: Option<tokio::sync::RwLockReadGuard<'static, ()>>,
    _exclusive: Option<tokio::sync::RwLockWriteGuard<'static, ()>>,
}

impl Pair {
    async fn start(scenario: &str) -> Pair {
        let guard = PeerConfigsGuard { _shared: Some(PEER_BROKER_CONFIGS.read().await), _exclusive: None };
        Self::start_with(scenario, guard).await
    }

    /// Like [`Pair::start`], for a scenario that changes the peer's broker
    /// configs: it runs while no other scenario does.
    async fn start_changing_broker_configs(scenario: &str) -> Pair {
        let guard = PeerConfigsGuard { _shared: None, _exclusive: Some(PEER_BROKER_CONFIGS.write().await) };
        Self::start_with(scenario, guard).await
    }

    async fn start_with(scenario: &str, peer_configs: PeerConfigsGuard) -> Pair {
        static RUN: AtomicU32 = AtomicU32::new(0);
        let dir = tempfile::tempdir().unwrap();
        let serve = Serve::start(dir.path(), &["--no-registry", "--no-metrics"], &[]);
        let runnel = RawClient::connect(&serve.bootstrap()).await;
        let kafka = RawClient::connect(&kafka_peer()).await;
        let prefix = format!("{scenario}-{}-{}", std::process::id(), RUN.fetch_add(1, Ordering::Relaxed));
        Pair { runnel, kafka, _serve: serve, _dir: dir, prefix, _peer_configs: peer_configs }
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
        self.compare_versions(versions, make, normalise, 1).await
    }

    /// Like [`Pair::compare_at`], for requests that change nothing (reads):
    /// a version whose answers differ is asked again once, after a pause,
    /// before the difference counts. The Apache Kafka peer is shared by
    /// every scenario and, on a busy 2-core machine, has been seen to answer
    /// a read transiently; a real difference persists.
    async fn compare_reads<R: Request>(
        &mut self,
        versions: RangeInclusive<i16>,
        make: impl Fn(&Pair, i16) -> R,
        normalise: impl Fn(&mut R::Response, i16),
    ) -> Vec<R::Response>
    where
        R::Response: PartialEq + std::fmt::Debug,
    {
        self.compare_versions(versions, make, normalise, 2).await
    }

    /// Sends `make(version)` to both at each version, up to `attempts`
    /// times while the answers differ, and fails with every difference
    /// that remains.
    async fn compare_versions<R: Request>(
        &mut self,
        versions: RangeInclusive<i16>,
        make: impl Fn(&Pair, i16) -> R,
        normalise: impl Fn(&mut R::Response, i16),
        attempts: u32,
    ) -> Vec<R::Response>
    where
        R::Response: PartialEq + std::fmt::Debug,
    {
        let mut differences = Vec::new();
        let mut answers = Vec::new();
        for version in versions {
            let request = make(self, version);
            for attempt in 1..=attempts {
                let mut runnel = self.runnel.call(&request, version).await;
                let mut kafka = self.kafka.call(&request, version).await;
                normalise(&mut runnel, version);
                normalise(&mut kafka, version);
                if runnel == kafka {
                    answers.push(runnel);
                    break;
                }
                if attempt == attempts {
                    differences.push(format!("API {} v{version}: {}", R::KEY, first_difference(&format!("{runnel:?}"), &format!("{kafka:?}"))));
                    answers.push(runnel);
                } else {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
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
        if std::env::var_os("CONFORMANCE_FULL_RESPONSES").is_some() {
            eprintln!("runnel saw:\n  {}\nkafka saw:\n  {}", runnel.join("\n  "), kafka.join("\n  "));
        }
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
/// can run to kilobytes, the difference is usually one field. Set
/// `CONFORMANCE_FULL_RESPONSES` to see both whole.
fn first_difference(runnel: &str, kafka: &str) -> String {
    if std::env::var_os("CONFORMANCE_FULL_RESPONSES").is_some() {
        return format!("\n  runnel: {runnel}\n  kafka:  {kafka}");
    }
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

/// The timestamp the scenarios' records start at: the start of this run's
/// hour. A fixed date in the past would let either broker's time retention
/// delete the records mid-scenario, each at a moment of its own.
fn t0() -> i64 {
    static T0: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *T0.get_or_init(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_millis() as i64;
        now - now % 3_600_000
    })
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
/// generated topic id, the error wording, the order of topics and of the
/// configs echoed (Apache Kafka's is a hash order), and Apache Kafka's
/// KRaft bootstrap default for `min.insync.replicas`.
fn normalise_create(response: &mut CreateTopicsResponse, _: i16) {
    response.throttle_time_ms = 0;
    response.topics.sort_by(|a, b| a.name.cmp(&b.name));
    for topic in &mut response.topics {
        topic.topic_id = Default::default();
        forget_error_message(topic.error_code, &mut topic.error_message);
        for config in topic.configs.iter_mut().flatten() {
            forget_cluster_default_min_insync(config.name.as_str(), &mut config.config_source);
        }
        if let Some(configs) = &mut topic.configs {
            configs.sort_by(|a, b| a.name.cmp(&b.name));
        }
    }
}

const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;

/// Apache Kafka's KRaft bootstrap records `min.insync.replicas` as a
/// cluster-wide dynamic default; runnel has no dynamic broker configs and
/// reports the same value as a default.
fn forget_cluster_default_min_insync(name: &str, source: &mut i8) {
    if name == "min.insync.replicas" && *source == DYNAMIC_DEFAULT_BROKER_CONFIG {
        *source = 5;
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
    await_served(pair, request.topics.iter().map(|t| t.name.clone()).collect()).await;
}

/// Waits until Apache Kafka serves every partition of `topics`: it answers
/// CreateTopics before that, and its metadata can name a leader before
/// that broker serves the partition; ListOffsets answers only once it does.
async fn await_served(pair: &mut Pair, topics: Vec<TopicName>) {
    let metadata = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(topics.iter().map(|t| MetadataRequestTopic::default().with_name(Some(t.clone()))).collect()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let response = pair.kafka.call(&metadata, 12).await;
        let ready = response
            .topics
            .iter()
            .all(|t| t.error_code == 0 && !t.partitions.is_empty() && t.partitions.iter().all(|p| p.error_code == 0 && p.leader_id.0 >= 0));
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
        assert!(std::time::Instant::now() < deadline, "Apache Kafka never served {topics:?}");
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

/// InitProducerId for an idempotent producer. A fresh Apache Kafka answers
/// COORDINATOR_LOAD_IN_PROGRESS until its producer id manager is ready;
/// clients retry, and so does this.
async fn init_idempotent_producer(client: &mut RawClient) -> InitProducerIdResponse {
    loop {
        let init = client.call(&InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000), 4).await;
        if init.error_code != 14 {
            return init;
        }
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
    response.topics.sort_by(|a, b| a.name.cmp(&b.name));
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

fn normalise_fetch(response: &mut FetchResponse, _: i16) {
    response.throttle_time_ms = 0;
    response.session_id = 0;
    for topic in &mut response.responses {
        topic.partitions.sort_by_key(|p| p.partition_index);
    }
}

/// ListOffsets for partition 0 of `topic` at `timestamp` (or a special
/// value: -1 latest, -2 earliest, -3 max-timestamp).
fn list_offsets(topic: &str, timestamp: i64) -> ListOffsetsRequest {
    ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
        .with_name(topic_name(topic))
        .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(timestamp).with_max_num_offsets(1)])])
}

fn normalise_list_offsets(response: &mut ListOffsetsResponse, _: i16) {
    response.throttle_time_ms = 0;
    for topic in &mut response.topics {
        topic.partitions.sort_by_key(|p| p.partition_index);
    }
}

fn normalise_alter_configs(response: &mut AlterConfigsResponse, _: i16) {
    response.throttle_time_ms = 0;
    for r in &mut response.responses {
        forget_error_message(r.error_code, &mut r.error_message);
    }
}

fn normalise_incremental_alter_configs(response: &mut IncrementalAlterConfigsResponse, _: i16) {
    response.throttle_time_ms = 0;
    for r in &mut response.responses {
        forget_error_message(r.error_code, &mut r.error_message);
    }
}
