//! Runs a topology against Kafka — runnel, or any Kafka cluster — as
//! Kafka Streams' `KafkaStreams` does, through librdkafka.
//!
//! Instances with the same `application_id` form one consumer group and
//! share the input partitions; each partition is a task with its own
//! state. Every store change is written to the store's changelog topic
//! (`<application_id>-<store>-changelog`, created as Kafka Streams creates
//! it), and a task that starts — after a restart, or on another instance
//! after a rebalance — first rebuilds its stores from their changelogs.
//! Processing is at-least-once (outputs and changelog writes are flushed
//! before the input offsets are committed, every `commit_interval_ms`) or
//! exactly-once (all three in one transaction per commit).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::processor::PunctuationType;
use crate::store::{KeyValueStore, Stores, WindowStore};
use crate::task::{Emitted, Input, OnUndecodable, Scope, Task, Undecodable};
use crate::topology::Data;
use crate::topology::{NodeKind, StoreDef, Topology};
use crate::window::Window;

/// Why an application could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    /// The Kafka client failed.
    #[error("Kafka client error: {0}")]
    Kafka(#[from] KafkaError),
    /// The application could not be set up (topics, threads, restoration).
    #[error("{0}")]
    Setup(String),
    /// An input record could not be deserialized, and the handler says to
    /// stop.
    #[error(transparent)]
    Undecodable(#[from] Undecodable),
    /// A local state checkpoint could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A record the application sent (output or changelog) was not
    /// delivered, so the input that produced it is not committed.
    #[error("sending to {topic}-{partition} failed: {error}")]
    Send {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The producer's error.
        error: KafkaError,
    },
    /// A key-value store could not read its file in the state directory.
    #[error("reading state store `{store}` from its file: {message}")]
    StoreRead {
        /// The store.
        store: String,
        /// What went wrong.
        message: String,
    },
}

/// How an application runs (Kafka Streams' `StreamsConfig`).
#[derive(Debug, Clone)]
pub struct StreamsConfig {
    /// The consumer group and the prefix of internal topics.
    pub application_id: String,
    /// The Kafka cluster to connect to, `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// How often input offsets are committed (Kafka Streams' default for
    /// at-least-once is 30 s).
    pub commit_interval_ms: u64,
    /// Extra librdkafka properties for every client.
    pub client_properties: Vec<(String, String)>,
    /// At least once (the default) or exactly once.
    pub processing_guarantee: ProcessingGuarantee,
    /// What happens to input records that cannot be deserialized.
    pub on_undecodable: OnUndecodable,
    /// Where tasks keep local checkpoints of their stores, so a restart
    /// reads only the changelogs' tails; `None` keeps state in memory
    /// only, restored from the whole changelogs.
    pub state_dir: Option<PathBuf>,
    /// With a state directory, how many keys each key-value store keeps
    /// in memory; the rest are read from its file, so a store can outgrow
    /// memory. Keys changed since the last commit stay in memory too, and
    /// once they reach twice this bound the task commits early.
    pub store_cache_entries: usize,
}

/// What a failure may cost (Kafka Streams' `processing.guarantee`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingGuarantee {
    /// Outputs and state changes are flushed before input offsets are
    /// committed: after a crash, records since the last commit are
    /// processed again.
    AtLeastOnce,
    /// Outputs, state changes and input offsets are committed in one
    /// Kafka transaction: after a crash, what was not committed is
    /// aborted and redone, so `read_committed` readers see each result
    /// once.
    ExactlyOnceV2,
}

impl StreamsConfig {
    /// At-least-once, committing every 30 s, state in memory: Kafka Streams'
    /// defaults.
    pub fn new(application_id: &str, bootstrap_servers: &str) -> StreamsConfig {
        StreamsConfig {
            application_id: application_id.to_string(),
            bootstrap_servers: bootstrap_servers.to_string(),
            commit_interval_ms: 30_000,
            client_properties: Vec::new(),
            processing_guarantee: ProcessingGuarantee::AtLeastOnce,
            on_undecodable: OnUndecodable::default(),
            state_dir: None,
            store_cache_entries: 100_000,
        }
    }

    /// The same, keeping local checkpoints of the stores under `state_dir`
    /// (Kafka Streams' `state.dir`).
    pub fn with_state_dir(self, state_dir: impl Into<PathBuf>) -> StreamsConfig {
        StreamsConfig { state_dir: Some(state_dir.into()), ..self }
    }

    /// The same, keeping at most `entries` keys of each key-value store in
    /// memory (with a state directory; see
    /// [`StreamsConfig::store_cache_entries`]).
    pub fn with_store_cache_entries(self, entries: usize) -> StreamsConfig {
        StreamsConfig { store_cache_entries: entries.max(1), ..self }
    }

    /// The same, exactly once, committing every 100 ms (Kafka Streams'
    /// defaults for `exactly_once_v2`).
    pub fn exactly_once(self) -> StreamsConfig {
        StreamsConfig { processing_guarantee: ProcessingGuarantee::ExactlyOnceV2, commit_interval_ms: 100, ..self }
    }

    fn client(&self) -> ClientConfig {
        self.client_with(&[])
    }

    /// A consumer's configuration. librdkafka stops fetching for a
    /// partition once `queued.min.messages` records wait in its queue, and
    /// then looks again only after `fetch.queue.backoff.ms` (a second by
    /// default): a thread that processes records faster than that sits
    /// idle. A small queue looked at every millisecond keeps it fed, at
    /// little memory (`bench/run.sh --streams`: 4.5× the throughput, a
    /// third of the memory of a queue of 100,000). The application's own
    /// properties still win.
    fn consumer(&self) -> ClientConfig {
        self.client_with(&[("fetch.queue.backoff.ms", "1"), ("queued.min.messages", "10000")])
    }

    fn client_with(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (key, value) in defaults.iter().copied().chain(self.client_properties.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            config.set(key, value);
        }
        config
    }

    /// A client property the application set.
    fn property(&self, name: &str) -> Option<&str> {
        self.client_properties.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    fn changelog(&self, store: &str) -> String {
        format!("{}-{store}-changelog", self.application_id)
    }

    /// An internal topic's name on the cluster.
    fn internal(&self, topic: &str) -> String {
        format!("{}-{topic}", self.application_id)
    }
}

/// A running application: one stream thread until [`KafkaStreams::close`].
pub struct KafkaStreams {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), StreamsError>>>,
    metrics: Arc<Metrics>,
    worker: Arc<Mutex<Worker>>,
}

/// A key-value store of a running application, read across its tasks on
/// this instance (each task holds the keys of its partition). Reads take
/// the stream thread's lock, between two records.
pub struct ReadOnlyKeyValueStore<K, V> {
    worker: Arc<Mutex<Worker>>,
    store: usize,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: Data + Hash + Eq, V: Data> ReadOnlyKeyValueStore<K, V> {
    /// A key's value, if a task of this instance has it.
    pub fn get(&self, key: &K) -> Option<V> {
        let worker = lock(&self.worker);
        worker.tasks.values().find_map(|task| task.stores.find::<KeyValueStore<K, V>>(self.store)?.get(key).map(|(v, _)| v))
    }

    /// Every entry this instance holds, in no particular order.
    pub fn all(&self) -> Vec<(K, V)> {
        let worker = lock(&self.worker);
        worker
            .tasks
            .values()
            .filter_map(|task| task.stores.find::<KeyValueStore<K, V>>(self.store))
            .flat_map(|s| s.all().into_iter().map(|(k, v, _)| (k, v)))
            .collect()
    }

    /// How many entries this instance holds.
    pub fn approximate_num_entries(&self) -> usize {
        let worker = lock(&self.worker);
        worker.tasks.values().filter_map(|task| task.stores.find::<KeyValueStore<K, V>>(self.store)).map(KeyValueStore::len).sum()
    }
}

/// A window store of a running application, read across its tasks on
/// this instance.
pub struct ReadOnlyWindowStore<K, V> {
    worker: Arc<Mutex<Worker>>,
    store: usize,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: Data + Hash + Eq, V: Data> ReadOnlyWindowStore<K, V> {
    /// A key's windows starting from `from` to `to` (inclusive), oldest
    /// first.
    pub fn fetch(&self, key: &K, from: i64, to: i64) -> Vec<(Window, V)> {
        let worker = lock(&self.worker);
        worker
            .tasks
            .values()
            .filter_map(|task| task.stores.find::<WindowStore<K, V>>(self.store))
            .flat_map(|s| s.fetch(key, from, to).into_iter().map(|(w, v, _)| (w, v.clone())))
            .collect()
    }
}

/// Counters the stream thread keeps, read with [`KafkaStreams::metrics`].
#[derive(Debug, Default)]
struct Metrics {
    processed: AtomicU64,
    restored: AtomicU64,
    loaded: AtomicU64,
    restore_ms: AtomicU64,
}

/// What an application has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamsMetrics {
    /// Input records processed.
    pub processed_records: u64,
    /// Changelog records read to restore stores.
    pub restored_records: u64,
    /// Records loaded from local checkpoints into memory (key-value stores
    /// read theirs in place instead).
    pub checkpoint_records: u64,
    /// Time spent restoring stores, in milliseconds.
    pub restore_ms: u64,
}

impl KafkaStreams {
    /// Creates the changelog topics the topology needs and starts
    /// processing on a thread of its own.
    pub fn start(topology: Topology, config: StreamsConfig) -> Result<KafkaStreams, StreamsError> {
        let partitions = source_partitions(&topology, &config)?;
        create_internal_topics(&topology, &config, partitions)?;
        let stop = Arc::new(AtomicBool::new(false));
        let metrics = Arc::new(Metrics::default());
        // The thread sets itself up (and reads the global tables) before
        // `start` returns, so a setup error is returned here.
        let (ready, setup) = std::sync::mpsc::sync_channel(1);
        let thread = {
            let (stop, metrics) = (stop.clone(), metrics.clone());
            std::thread::Builder::new()
                .name(format!("{}-StreamThread-1", config.application_id))
                .spawn(move || match StreamThread::new(topology, config, metrics) {
                    Ok(thread) => {
                        let _ = ready.send(Ok(thread.worker.clone()));
                        thread.run(&stop)
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        Ok(())
                    }
                })
                .map_err(|e| StreamsError::Setup(e.to_string()))?
        };
        let worker = setup.recv().map_err(|_| StreamsError::Setup("the stream thread stopped while starting".into()))??;
        Ok(KafkaStreams { stop, thread: Some(thread), metrics, worker })
    }

    /// A read-only view of the key-value store `name` (an aggregation's,
    /// a materialized table's, or a processor's) over this instance's
    /// tasks: Kafka Streams' interactive queries. `None` if the topology
    /// has no such store.
    pub fn key_value_store<K: Data + Hash + Eq, V: Data>(&self, name: &str) -> Option<ReadOnlyKeyValueStore<K, V>> {
        let store = lock(&self.worker).topology.stores.iter().position(|s| *s.name == *name)?;
        Some(ReadOnlyKeyValueStore { worker: self.worker.clone(), store, _types: PhantomData })
    }

    /// A read-only view of the window store `name` over this instance's
    /// tasks.
    pub fn window_store<K: Data + Hash + Eq, V: Data>(&self, name: &str) -> Option<ReadOnlyWindowStore<K, V>> {
        let store = lock(&self.worker).topology.stores.iter().position(|s| *s.name == *name)?;
        Some(ReadOnlyWindowStore { worker: self.worker.clone(), store, _types: PhantomData })
    }

    /// What the application has done so far.
    pub fn metrics(&self) -> StreamsMetrics {
        StreamsMetrics {
            processed_records: self.metrics.processed.load(Ordering::Relaxed),
            restored_records: self.metrics.restored.load(Ordering::Relaxed),
            checkpoint_records: self.metrics.loaded.load(Ordering::Relaxed),
            restore_ms: self.metrics.restore_ms.load(Ordering::Relaxed),
        }
    }

    /// Commits what was processed and stops.
    pub fn close(mut self) -> Result<(), StreamsError> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(StreamsError::Setup("the stream thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for KafkaStreams {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(30);

/// Partitions of the input topics, which must agree (co-partitioning).
fn source_partitions(topology: &Topology, config: &StreamsConfig) -> Result<i32, StreamsError> {
    let consumer: BaseConsumer = config.client().create()?;
    let mut counts = BTreeMap::new();
    for topic in topology.source_topics().into_iter().filter(|t| !topology.internal_topics.contains(t)) {
        let metadata = consumer.fetch_metadata(Some(&topic), TIMEOUT)?;
        let count = metadata.topics().first().map_or(0, |t| t.partitions().len()) as i32;
        if count == 0 {
            return Err(StreamsError::Setup(format!("source topic `{topic}` does not exist")));
        }
        counts.insert(topic, count);
    }
    let mut distinct: Vec<i32> = counts.values().copied().collect();
    distinct.dedup();
    match distinct.as_slice() {
        [count] => Ok(*count),
        _ => Err(StreamsError::Setup(format!("source topics are not co-partitioned: {counts:?}"))),
    }
}

/// Creates the internal topics: each store's changelog with as many
/// partitions as the inputs, compacted (and, for window stores, also
/// deleted after the windows' retention plus a day), and each repartition
/// topic, as Kafka Streams does.
fn create_internal_topics(topology: &Topology, config: &StreamsConfig, partitions: i32) -> Result<(), StreamsError> {
    let stores = topology.stores();
    if stores.is_empty() && topology.internal_topics.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = config.client().create()?;
    let repartition: Vec<String> = topology.internal_topics.iter().map(|t| config.internal(t)).collect();
    let names: Vec<String> = stores.iter().map(|s| config.changelog(&s.name)).collect();
    let retention: Vec<String> = stores.iter().map(|s| s.window_retention_ms.map_or(String::new(), |ms| (ms + 86_400_000).to_string())).collect();
    let topics: Vec<NewTopic> = stores
        .iter()
        .zip(&names)
        .zip(&retention)
        .map(|((store, name), retention): ((&StoreDef, &String), &String)| {
            let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(-1));
            match store.window_retention_ms {
                Some(_) => topic.set("cleanup.policy", "compact,delete").set("retention.ms", retention),
                None => topic.set("cleanup.policy", "compact"),
            }
        })
        .chain(repartition.iter().map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(-1)).set("cleanup.policy", "delete")))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = futures::executor::block_on(admin.create_topics(&topics, &options))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(StreamsError::Setup(format!("could not create changelog `{topic}`: {code}"))),
        }
    }
    Ok(())
}

/// A topology's topic as named on the cluster: internal topics carry the
/// application id.
fn on_cluster(topology: &Topology, config: &StreamsConfig, topic: &str) -> String {
    if topology.internal_topics.iter().any(|t| t == topic) {
        config.internal(topic)
    } else {
        topic.to_string()
    }
}

/// How often wall-clock punctuations are checked.
const WALL_CLOCK_TICK: Duration = Duration::from_millis(10);

/// Milliseconds since the epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The consumer's context: it commits and suspends a worker's tasks when
/// their partitions are revoked, and starts (restoring their stores) or
/// resumes tasks when partitions are assigned — inside the rebalance, so
/// no partition changes hands with work uncommitted.
struct StreamsContext {
    worker: Arc<Mutex<Worker>>,
}

type StreamsConsumer = BaseConsumer<StreamsContext>;

impl ClientContext for StreamsContext {}

impl ConsumerContext for StreamsContext {
    fn pre_rebalance(&self, consumer: &StreamsConsumer, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(revoked) = rebalance {
            let mut worker = lock(&self.worker);
            if let Err(e) = worker.commit(consumer) {
                worker.failure.get_or_insert(e);
            }
            worker.suspend(&partitions_of(revoked));
        }
    }

    fn post_rebalance(&self, consumer: &StreamsConsumer, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(assigned) = rebalance {
            let mut worker = lock(&self.worker);
            if let Err(e) = worker.assign(consumer, assigned) {
                worker.failure.get_or_insert(e);
            }
        }
    }
}

fn lock(worker: &Mutex<Worker>) -> std::sync::MutexGuard<'_, Worker> {
    // A panic while processing ends the thread; the state it left is not
    // used again, so a poisoned lock is simply taken.
    worker.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The distinct partition numbers of a list: each is one task (the
/// topology's input topics are co-partitioned).
fn partitions_of(list: &TopicPartitionList) -> Vec<i32> {
    let mut partitions: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
    partitions.sort_unstable();
    partitions.dedup();
    partitions
}

struct StreamThread {
    consumer: StreamsConsumer,
    /// Reads the global tables' topics, every partition, from the start.
    global: Option<BaseConsumer>,
    worker: Arc<Mutex<Worker>>,
    commit_every: Duration,
}

/// Everything the consumer's rebalance callbacks share with the thread.
struct Worker {
    topology: Topology,
    config: StreamsConfig,
    producer: ThreadedProducer<DeliveryTracker>,
    tasks: HashMap<i32, Task>,
    /// Tasks of revoked partitions, resumed if the same rebalance assigns
    /// them back.
    suspended: HashMap<i32, Task>,
    /// Next offset to commit, per input topic (as named on the cluster)
    /// and partition.
    positions: BTreeMap<String, BTreeMap<i32, i64>>,
    /// Whether records were sent since the last commit.
    dirty: bool,
    /// Topic names worked out once: the topology's name of each topic as
    /// named on the cluster, the reverse, and each store's changelog.
    logical: HashMap<String, String>,
    on_cluster: HashMap<String, String>,
    changelogs: HashMap<String, String>,
    /// The global tables' stores, which every task reads.
    globals: Stores,
    /// An error met in a rebalance callback, for the thread to return.
    failure: Option<StreamsError>,
    metrics: Arc<Metrics>,
    /// Each task's local checkpoint, with a state directory.
    checkpoints: HashMap<i32, Checkpoint>,
    /// A store's cache outgrew its bound: commit now, not at the interval.
    commit_soon: bool,
    /// What the record being processed emitted (kept to reuse its memory).
    emitted: Vec<Emitted>,
}

impl StreamThread {
    fn new(topology: Topology, config: StreamsConfig, metrics: Arc<Metrics>) -> Result<StreamThread, StreamsError> {
        let mut topics = topology.source_topics();
        topics.extend(topology.nodes.iter().filter_map(|n| match &n.kind {
            NodeKind::Sink { topic, .. } => Some(topic.to_string()),
            _ => None,
        }));
        let on_cluster: HashMap<String, String> = topics.iter().map(|t| (t.clone(), on_cluster(&topology, &config, t))).collect();
        let logical = on_cluster.iter().map(|(logical, cluster)| (cluster.clone(), logical.clone())).collect();
        let changelogs = topology.stores().into_iter().map(|s| (s.name.to_string(), config.changelog(&s.name))).collect();
        let subscribed: Vec<String> = topology.source_topics().iter().map(|t| on_cluster[t].clone()).collect();
        let producer = producer(&config)?;
        let globals = topology.new_stores();
        let global = global_consumer(&topology, &config)?;
        let commit_every = Duration::from_millis(config.commit_interval_ms.max(1));
        let mut worker = Worker {
            topology,
            config,
            producer,
            tasks: HashMap::new(),
            suspended: HashMap::new(),
            positions: BTreeMap::new(),
            dirty: false,
            logical,
            on_cluster,
            changelogs,
            globals,
            failure: None,
            metrics,
            checkpoints: HashMap::new(),
            commit_soon: false,
            emitted: Vec::new(),
        };
        if let Some(global) = &global {
            worker.bootstrap_globals(global)?;
        }
        let config = worker.config.clone();
        let worker = Arc::new(Mutex::new(worker));
        let consumer: StreamsConsumer = config
            .consumer()
            .set("group.id", &config.application_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", config.property("auto.offset.reset").unwrap_or("earliest"))
            .set("isolation.level", "read_committed")
            .create_with_context(StreamsContext { worker: worker.clone() })?;
        consumer.subscribe(&subscribed.iter().map(String::as_str).collect::<Vec<_>>())?;
        Ok(StreamThread { consumer, global, worker, commit_every })
    }

    fn run(self, stop: &AtomicBool) -> Result<(), StreamsError> {
        let (mut last_commit, mut last_punctuation) = (Instant::now(), Instant::now());
        // The clock is read once per TIMER_STRIDE records while records
        // flow (and on every idle poll): reading it per record cost 3% of
        // the stateless benchmark.
        let mut since_timers = 0u32;
        while !stop.load(Ordering::SeqCst) {
            let polled = self.consumer.poll(Duration::from_millis(100));
            let mut worker = lock(&self.worker);
            if let Some(failure) = worker.failure.take() {
                return Err(failure);
            }
            let idle = match polled {
                Some(Ok(message)) => {
                    worker.process(&message)?;
                    false
                }
                Some(Err(e)) => return Err(e.into()),
                None => true,
            };
            if let Some(global) = &self.global {
                worker.follow_globals(global)?;
            }
            since_timers += 1;
            if !idle && since_timers < TIMER_STRIDE && !worker.commit_soon {
                continue;
            }
            since_timers = 0;
            if last_punctuation.elapsed() >= WALL_CLOCK_TICK {
                worker.punctuate_wall_clock()?;
                last_punctuation = Instant::now();
            }
            if last_commit.elapsed() >= self.commit_every || worker.commit_soon {
                worker.commit(&self.consumer)?;
                last_commit = Instant::now();
            }
        }
        lock(&self.worker).commit(&self.consumer)
    }
}

/// The thread's producer: idempotent, acks=all, and keys partitioned with
/// murmur2 as the Java client does, as Kafka Streams' producer; under
/// exactly-once also transactional, with an id of its own, its first
/// transaction begun.
fn producer(config: &StreamsConfig) -> Result<ThreadedProducer<DeliveryTracker>, StreamsError> {
    let mut client = config.client();
    client.set("enable.idempotence", "true").set("acks", "all").set("partitioner", "murmur2_random").set("linger.ms", "5");
    if config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2 {
        let id = format!("{}-{}-StreamThread-1", config.application_id, uuid::Uuid::new_v4());
        client.set("transactional.id", id).set("transaction.timeout.ms", "10000");
    }
    let producer: ThreadedProducer<DeliveryTracker> = client.create_with_context(DeliveryTracker::default())?;
    if config.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2 {
        producer.init_transactions(TIMEOUT)?;
        producer.begin_transaction()?;
    }
    Ok(producer)
}

/// A consumer assigned every partition of the global tables' topics, from
/// the start (none if there are no global tables).
fn global_consumer(topology: &Topology, config: &StreamsConfig) -> Result<Option<BaseConsumer>, StreamsError> {
    if topology.globals.is_empty() {
        return Ok(None);
    }
    let consumer: BaseConsumer = config.consumer().set("group.id", format!("{}-global", config.application_id)).set("enable.auto.commit", "false").create()?;
    let mut assignment = TopicPartitionList::new();
    for global in &topology.globals {
        let metadata = consumer.fetch_metadata(Some(&global.topic), TIMEOUT)?;
        let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len()) as i32;
        if partitions == 0 {
            return Err(StreamsError::Setup(format!("global table topic `{}` does not exist", global.topic)));
        }
        for partition in 0..partitions {
            assignment.add_partition_offset(&global.topic, partition, Offset::Beginning)?;
        }
    }
    consumer.assign(&assignment)?;
    Ok(Some(consumer))
}

/// How many records are processed between two looks at the clock for
/// commits and wall-clock punctuation.
const TIMER_STRIDE: u32 = 64;

/// How many global-table records are applied between two input records
/// at most, so the tables keep up without starving the tasks.
const GLOBAL_BATCH: usize = 1_000;

impl Worker {
    /// Reads the global tables' topics up to their ends before any task
    /// runs, as Kafka Streams bootstraps its global stores.
    fn bootstrap_globals(&mut self, global: &BaseConsumer) -> Result<(), StreamsError> {
        let assignment = global.assignment()?;
        let mut remaining: HashMap<(String, i32), i64> = HashMap::new();
        for element in assignment.elements() {
            let (low, high) = global.fetch_watermarks(element.topic(), element.partition(), TIMEOUT)?;
            if high > low {
                remaining.insert((element.topic().to_string(), element.partition()), high);
            }
        }
        let deadline = Instant::now() + TIMEOUT;
        while !remaining.is_empty() {
            if Instant::now() > deadline {
                return Err(StreamsError::Setup(format!("reading the global tables stalled with {} partitions unread", remaining.len())));
            }
            let Some(message) = global.poll(Duration::from_millis(100)) else { continue };
            let message = message?;
            self.apply_global(&message);
            let position = (message.topic().to_string(), message.partition());
            if remaining.get(&position).is_some_and(|high| message.offset() + 1 >= *high) {
                remaining.remove(&position);
            }
        }
        Ok(())
    }

    /// Applies what arrived on the global tables' topics since last time.
    fn follow_globals(&mut self, global: &BaseConsumer) -> Result<(), StreamsError> {
        for _ in 0..GLOBAL_BATCH {
            match global.poll(Duration::ZERO) {
                Some(message) => self.apply_global(&message?),
                None => break,
            }
        }
        Ok(())
    }

    fn apply_global<M: Message>(&mut self, message: &M) {
        if let Some(global) = self.topology.global(message.topic()) {
            let timestamp = message.timestamp().to_millis().unwrap_or(0);
            // An undecodable record leaves the table as it was, as a
            // skipped input record leaves a task's state.
            let _ = (global.apply)(&mut self.globals, message.key(), message.payload(), timestamp);
        }
    }

    /// Runs one record through its partition's task and sends what it
    /// produced.
    fn process<M: Message>(&mut self, message: &M) -> Result<(), StreamsError> {
        let (topic, partition) = (message.topic(), message.partition());
        let Some(task) = self.tasks.get_mut(&partition) else { return Ok(()) };
        let logical = self.logical.get(topic).map_or(topic, String::as_str);
        let timestamp = message.timestamp().to_millis().unwrap_or(0);
        let mut emitted = std::mem::take(&mut self.emitted);
        let scope = Scope { topology: &self.topology, globals: &self.globals, on_undecodable: &self.config.on_undecodable };
        let headers = message.headers().map(|h| h as &dyn crate::processor::ReadHeaders);
        let input = Input { topic: logical, partition, offset: message.offset(), key: message.key(), value: message.payload(), timestamp, headers };
        task.process(&scope, &input, &mut emitted)?;
        if let Some((store, message)) = task.stores.failure() {
            return Err(StreamsError::StoreRead { store: self.topology.stores[store].name.to_string(), message });
        }
        self.commit_soon |= task.stores.over_capacity();
        for out in emitted.drain(..) {
            self.emit(partition, out)?;
        }
        self.emitted = emitted;
        self.metrics.processed.fetch_add(1, Ordering::Relaxed);
        match self.positions.get_mut(topic) {
            Some(partitions) => {
                partitions.insert(partition, message.offset() + 1);
            }
            None => {
                self.positions.insert(topic.to_string(), BTreeMap::from([(partition, message.offset() + 1)]));
            }
        }
        Ok(())
    }

    /// Sends what task `partition` emitted, noting store changes for its
    /// checkpoint.
    fn emit(&mut self, partition: i32, out: Emitted) -> Result<(), StreamsError> {
        if let (Emitted::Change { store, change }, Some(checkpoint)) = (&out, self.checkpoints.get_mut(&partition)) {
            checkpoint.record(store, &change.key, change.value.as_deref());
            self.commit_soon |= checkpoint.is_full();
        }
        send(&self.producer, &self.on_cluster, &self.changelogs, partition, out)?;
        self.dirty = true;
        Ok(())
    }

    /// Runs every task's wall-clock punctuations that are due.
    fn punctuate_wall_clock(&mut self) -> Result<(), StreamsError> {
        let now = now_ms();
        let mut emitted = Vec::new();
        for (partition, task) in &mut self.tasks {
            let scope = Scope { topology: &self.topology, globals: &self.globals, on_undecodable: &self.config.on_undecodable };
            task.punctuate(&scope, PunctuationType::WallClockTime, now, &mut emitted);
            for out in emitted.drain(..) {
                if let (Emitted::Change { store, change }, Some(checkpoint)) = (&out, self.checkpoints.get_mut(partition)) {
                    checkpoint.record(store, &change.key, change.value.as_deref());
                    self.commit_soon |= checkpoint.is_full();
                }
                send(&self.producer, &self.on_cluster, &self.changelogs, *partition, out)?;
                self.dirty = true;
            }
        }
        Ok(())
    }

    /// Makes what was processed durable together with the input positions
    /// that produced it. At least once: outputs and changelog writes are
    /// flushed, then the positions committed. Exactly once: the positions
    /// join the open transaction, which commits, and the next begins.
    fn commit(&mut self, consumer: &StreamsConsumer) -> Result<(), StreamsError> {
        if !self.dirty && self.positions.values().all(BTreeMap::is_empty) {
            return Ok(());
        }
        let mut offsets = TopicPartitionList::new();
        for (topic, partitions) in &self.positions {
            for (partition, offset) in partitions {
                let mut element = offsets.add_partition(topic, *partition);
                element.set_offset(Offset::Offset(*offset))?;
                if let Some(stream_time) = self.tasks.get(partition).and_then(Task::stream_time) {
                    element.set_metadata(encode_partition_time(stream_time));
                }
            }
        }
        match self.config.processing_guarantee {
            ProcessingGuarantee::AtLeastOnce => {
                self.producer.flush(TIMEOUT)?;
                // What failed to send is lost unless its input is processed
                // again: the offsets stay uncommitted and the thread stops.
                if let Some(failure) = self.producer.context().take_failure() {
                    return Err(failure);
                }
                if offsets.count() > 0 {
                    consumer.commit(&offsets, CommitMode::Sync)?;
                }
            }
            ProcessingGuarantee::ExactlyOnceV2 => {
                if offsets.count() > 0 {
                    let group = consumer.group_metadata().ok_or_else(|| StreamsError::Setup("the consumer has no group metadata".into()))?;
                    self.producer.send_offsets_to_transaction(&offsets, &group, TIMEOUT)?;
                }
                self.producer.commit_transaction(TIMEOUT)?;
                self.producer.begin_transaction()?;
            }
        }
        self.positions.values_mut().for_each(BTreeMap::clear);
        self.dirty = false;
        self.commit_soon = false;
        self.save_checkpoints()
    }

    /// Saves each task's changes since the last commit to its checkpoint,
    /// with the changelog offsets now covered: the changes are durable in
    /// Kafka, so the checkpoint never holds what a crash would undo.
    fn save_checkpoints(&mut self) -> Result<(), StreamsError> {
        let delivered = lock_delivered(self.producer.context());
        let mut expired = Vec::new();
        for (partition, checkpoint) in &mut self.checkpoints {
            if let Some(task) = self.tasks.get_mut(partition) {
                for (store, spec) in task.stores.0.iter_mut().zip(&self.topology.stores) {
                    store.take_expired(&mut expired);
                    for key in expired.drain(..) {
                        checkpoint.record(&spec.name, &key, None);
                    }
                }
            }
            let offsets: Vec<(String, i64)> = self
                .changelogs
                .values()
                .filter_map(|changelog| delivered.get(&(changelog.clone(), *partition)).map(|last| (changelog.clone(), last + 1)))
                .collect();
            checkpoint.save(&offsets)?;
            if let Some(task) = self.tasks.get_mut(partition) {
                task.stores.trim();
            }
        }
        Ok(())
    }

    /// Sets aside the tasks of revoked partitions (after their work was
    /// committed).
    fn suspend(&mut self, revoked: &[i32]) {
        for partition in revoked {
            if let Some(task) = self.tasks.remove(partition) {
                self.suspended.insert(*partition, task);
            }
            for partitions in self.positions.values_mut() {
                partitions.remove(partition);
            }
        }
    }

    /// Gives each assigned partition a task: the one suspended in this
    /// rebalance if there is one, else one restored from the changelogs
    /// and resumed at the stream time committed with its input positions.
    /// Tasks suspended and not assigned back are dropped.
    fn assign(&mut self, consumer: &StreamsConsumer, assigned: &TopicPartitionList) -> Result<(), StreamsError> {
        let mut committed_times = None;
        for partition in partitions_of(assigned) {
            if self.tasks.contains_key(&partition) {
                continue;
            }
            let task = match self.suspended.remove(&partition) {
                Some(task) => task,
                None => {
                    let mut task = self.restore(partition)?;
                    let times = match &committed_times {
                        Some(times) => times,
                        None => committed_times.insert(committed_stream_times(&consumer.committed_offsets(assigned.clone(), TIMEOUT)?)),
                    };
                    if let Some(stream_time) = times.get(&partition) {
                        task.resume(*stream_time);
                    }
                    task
                }
            };
            self.tasks.insert(partition, task);
        }
        self.suspended.clear();
        let tasks = &self.tasks;
        self.checkpoints.retain(|partition, _| tasks.contains_key(partition));
        Ok(())
    }

    /// Opens task `partition`'s checkpoint (with a state directory):
    /// key-value stores read their records in place, other stores load
    /// theirs. Returns the changelog offsets to read on from. A checkpoint
    /// that does not fit its changelogs (past their end, or before their
    /// start) is wiped and the changelogs read whole.
    fn load_checkpoint(&mut self, partition: i32, task: &mut Task) -> Result<HashMap<String, i64>, StreamsError> {
        let Some(state_dir) = &self.config.state_dir else { return Ok(HashMap::new()) };
        let mut checkpoint = Checkpoint::open(state_dir, &self.config.application_id, partition)?;
        let mut offsets = checkpoint.offsets()?;
        let probe: BaseConsumer = self.config.consumer().create()?;
        let mut fits = true;
        for (changelog, offset) in &offsets {
            let (low, high) = probe.fetch_watermarks(changelog, partition, TIMEOUT)?;
            fits &= low <= *offset && *offset <= high;
        }
        if !fits {
            checkpoint.wipe()?;
            offsets.clear();
        }
        for (id, store) in self.topology.stores.iter().enumerate() {
            if store.global || task.stores.0[id].attach(checkpoint.store_file(&store.name), self.config.store_cache_entries) {
                continue;
            }
            let records = checkpoint.records(&store.name)?;
            for (key, value) in &records {
                task.stores.0[id].restore(key, Some(value));
            }
            self.metrics.loaded.fetch_add(records.len() as u64, Ordering::Relaxed);
        }
        task.stores.track_expiry();
        self.checkpoints.insert(partition, checkpoint);
        Ok(offsets)
    }

    /// A task for `partition` whose stores hold what their changelogs say
    /// (their committed records only), read on from its checkpoint if it
    /// has one.
    fn restore(&mut self, partition: i32) -> Result<Task, StreamsError> {
        let started = Instant::now();
        let mut task = Task::new(&self.topology, now_ms());
        let from = self.load_checkpoint(partition, &mut task)?;
        let mut caught_up = Vec::new();
        for store in self.topology.stores() {
            let changelog = self.config.changelog(&store.name);
            // Offsets this producer delivered before are not this task's
            // end any more; the checkpoint takes the end read here.
            lock_delivered(self.producer.context()).remove(&(changelog.clone(), partition));
            let reader: BaseConsumer = self
                .config
                .consumer()
                .set("group.id", format!("{}-restore", self.config.application_id))
                .set("enable.auto.commit", "false")
                .set("isolation.level", "read_committed")
                .create()?;
            let (low, high) = reader.fetch_watermarks(&changelog, partition, TIMEOUT)?;
            let start = from.get(&changelog).copied().unwrap_or(low).max(low);
            if high <= start {
                continue;
            }
            let mut assignment = TopicPartitionList::new();
            assignment.add_partition_offset(&changelog, partition, Offset::Offset(start))?;
            reader.assign(&assignment)?;
            let deadline = Instant::now() + TIMEOUT;
            // Done when the position passes the end: transaction markers
            // and aborted records are never delivered, but are passed.
            while position(&reader, &changelog, partition)? < high {
                if Instant::now() > deadline {
                    return Err(StreamsError::Setup(format!("restoring {changelog}-{partition} stalled before offset {high}")));
                }
                if let Some(message) = reader.poll(Duration::from_millis(100)) {
                    let message = message?;
                    let key = message.key().unwrap_or_default();
                    task.restore(&self.topology, &store.name, key, message.payload());
                    if let Some(checkpoint) = self.checkpoints.get_mut(&partition) {
                        checkpoint.record(&store.name, key, message.payload());
                        // Saving without offsets keeps the old ones: a
                        // crash then reads this tail again, which rewrites
                        // each key to the same newest value.
                        if task.stores.over_capacity() || checkpoint.is_full() {
                            checkpoint.save(&[])?;
                            task.stores.trim();
                        }
                    }
                    self.metrics.restored.fetch_add(1, Ordering::Relaxed);
                }
            }
            caught_up.push((changelog, high));
        }
        // The tail just read joins the checkpoint, so the next restart
        // starts where this one ended.
        if let Some(checkpoint) = self.checkpoints.get_mut(&partition) {
            checkpoint.save(&caught_up)?;
            task.stores.trim();
        }
        if let Some((store, message)) = task.stores.failure() {
            return Err(StreamsError::StoreRead { store: self.topology.stores[store].name.to_string(), message });
        }
        self.metrics.restore_ms.fetch_add(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        Ok(task)
    }
}

/// The commit metadata that carries a task's stream time with its input
/// positions: Kafka Streams' partition-time encoding (version 1: a version
/// byte, then the time in 8 bytes big-endian, in base64), so either
/// library resumes from the other's commits.
fn encode_partition_time(stream_time: i64) -> String {
    use base64::Engine;
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&stream_time.to_be_bytes());
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The stream time in commit metadata written by [`encode_partition_time`]
/// or by Kafka Streams (versions 1 and 2, which appends what this library
/// does not use); `None` for other metadata.
fn decode_partition_time(metadata: &str) -> Option<i64> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(metadata).ok()?;
    match bytes.as_slice() {
        [1 | 2, time @ ..] if time.len() >= 8 => Some(i64::from_be_bytes(time[..8].try_into().expect("8 bytes"))),
        _ => None,
    }
}

/// Each task's committed stream time: the largest of its input
/// partitions'. A partition with no committed offset has processed
/// nothing, so its time is the earliest there is: a changelog that ran
/// ahead before the first commit must not make its records late.
fn committed_stream_times(committed: &TopicPartitionList) -> HashMap<i32, i64> {
    let mut times: HashMap<i32, i64> = HashMap::new();
    for element in committed.elements() {
        let time = match element.offset() {
            Offset::Offset(_) => decode_partition_time(element.metadata()),
            _ => Some(i64::MIN),
        };
        if let Some(time) = time {
            let entry = times.entry(element.partition()).or_insert(time);
            *entry = (*entry).max(time);
        }
    }
    times
}

/// A consumer's position in one partition (its next offset to read).
fn position(consumer: &BaseConsumer, topic: &str, partition: i32) -> Result<i64, StreamsError> {
    let positions = consumer.position()?;
    Ok(positions.find_partition(topic, partition).and_then(|p| p.offset().to_raw()).unwrap_or(-1))
}

/// The producer's context: the offset of the last record delivered to
/// each partition, which tells a checkpoint how far the changelogs go, and
/// the first delivery that failed, which stops the next commit.
#[derive(Default)]
struct DeliveryTracker {
    last: Mutex<HashMap<(String, i32), i64>>,
    failed: Mutex<Option<StreamsError>>,
}

impl DeliveryTracker {
    /// The first failed delivery since the last call, if any.
    fn take_failure(&self) -> Option<StreamsError> {
        self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                let mut last = lock_delivered(self);
                let entry = last.entry((message.topic().to_string(), message.partition())).or_insert(message.offset());
                *entry = (*entry).max(message.offset());
            }
            Err((error, message)) => {
                let failure = StreamsError::Send { topic: message.topic().to_string(), partition: message.partition(), error: error.clone() };
                self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(failure);
            }
        }
    }
}

fn lock_delivered(tracker: &DeliveryTracker) -> std::sync::MutexGuard<'_, HashMap<(String, i32), i64>> {
    tracker.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sends a record a task emitted: a sink's to its topic (partitioned by
/// key), a store change to its changelog's partition of the task.
fn send(
    producer: &ThreadedProducer<DeliveryTracker>,
    on_cluster: &HashMap<String, String>,
    changelogs: &HashMap<String, String>,
    partition: i32,
    out: Emitted,
) -> Result<(), StreamsError> {
    let (topic, key, value, timestamp, partition) = match &out {
        Emitted::Record { topic, key, value, timestamp, .. } => {
            (on_cluster.get(&**topic).map_or(&**topic, String::as_str), key.as_deref(), value.as_deref(), *timestamp, None)
        }
        Emitted::Change { store, change } => {
            (changelogs.get(&**store).map_or(&**store, String::as_str), Some(&change.key[..]), change.value.as_deref(), change.timestamp, Some(partition))
        }
    };
    let mut record = BaseRecord::<[u8], [u8]>::to(topic).timestamp(timestamp);
    if let Some(key) = key {
        record = record.key(key);
    }
    if let Some(value) = value {
        record = record.payload(value);
    }
    if let Some(partition) = partition {
        record = record.partition(partition);
    }
    if let Emitted::Record { headers, .. } = &out {
        if !headers.is_empty() {
            let mut owned = OwnedHeaders::new_with_capacity(headers.len());
            for (name, value) in headers {
                owned = owned.insert(Header { key: name, value: Some(value) });
            }
            record = record.headers(owned);
        }
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                record = returned;
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_time_round_trips_through_commit_metadata() {
        for time in [0, 1_600_000_000_000, -1, i64::MAX] {
            assert_eq!(decode_partition_time(&encode_partition_time(time)), Some(time));
        }
        // What Kafka Streams writes: version 2, the time, then processor
        // metadata (here an empty map).
        let mut kafka_streams = vec![2u8];
        kafka_streams.extend_from_slice(&100i64.to_be_bytes());
        kafka_streams.extend_from_slice(&0i32.to_be_bytes());
        use base64::Engine;
        assert_eq!(decode_partition_time(&base64::engine::general_purpose::STANDARD.encode(kafka_streams)), Some(100));
        assert_eq!(decode_partition_time(""), None);
        assert_eq!(decode_partition_time("not base64!"), None);
        assert_eq!(decode_partition_time("AQ=="), None);
    }

    #[test]
    fn a_task_resumes_at_the_latest_time_of_its_partitions() {
        let mut committed = TopicPartitionList::new();
        for (topic, partition, time) in [("a", 0, 5), ("b", 0, 9), ("a", 1, 7)] {
            let mut element = committed.add_partition(topic, partition);
            element.set_offset(Offset::Offset(100)).unwrap();
            element.set_metadata(encode_partition_time(time));
        }
        let mut foreign = committed.add_partition("c", 2);
        foreign.set_offset(Offset::Offset(100)).unwrap();
        foreign.set_metadata("written by another program");
        // Never committed: nothing was processed yet.
        committed.add_partition("a", 3);
        assert_eq!(committed_stream_times(&committed), HashMap::from([(0, 9), (1, 7), (3, i64::MIN)]));
    }
}
