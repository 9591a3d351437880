//! Broker state: cluster identity, the topic registry and its durable
//! metadata, and each partition's log and producer state.
//!
//! Handlers take locks here only to copy out `Arc`s; no lock is held
//! across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use runnel_log::{CleanPoint, IoPacer, LogError, OpenMode, PartitionLog};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use runnel_coordinator::txn::TxnMetadata;
use runnel_coordinator::{CommittedOffset, OffsetKey};

use crate::broker_config::{BrokerConfigError, DynamicConfig, DynamicConfigs, Scope};
use crate::config::{BrokerConfig, FsyncPolicy};
use crate::groups::{Groups, OFFSETS_TOPIC};
use crate::log_limit::LogLimiter;
use crate::resources;
use crate::topic_config::{self, BrokerDefaults, ConfigError, TopicSettings};
use crate::txns::{Transactions, TXN_TOPIC};

/// Milliseconds since the Unix epoch, the unit of every Kafka timestamp.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Errors from topic administration.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("invalid topic name `{0}`: use 1-249 of [a-zA-Z0-9._-], not `.` or `..`")]
    InvalidName(String),
    #[error("topic `{0}` already exists")]
    AlreadyExists(String),
    #[error("topic `{name}` collides with existing topic `{existing}` ('.' and '_' are alike in metric names)")]
    Collides { name: String, existing: String },
    #[error("topic `{0}` does not exist")]
    UnknownTopic(String),
    #[error("topic `{0}` is internal to the broker; it cannot be deleted or grown")]
    Internal(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("replication factor {0} is not possible on a single broker; use 1 or -1")]
    InvalidReplicationFactor(i16),
    #[error("{partitions} new partitions need {partitions} open files, but only {free} of the limit of {limit} are free; raise `ulimit -n`")]
    TooManyOpenFiles { partitions: u64, free: u64, limit: u64 },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("metadata I/O failed: {0}")]
    Io(#[from] io::Error),
}

/// The topics the broker alone writes: clients may read them but never
/// produce to, delete or grow them.
pub const INTERNAL_TOPICS: [&str; 2] = [OFFSETS_TOPIC, TXN_TOPIC];

pub fn is_internal_topic(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

/// Checks a topic name against Kafka's rules.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    let legal = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if legal {
        Ok(())
    } else {
        Err(TopicError::InvalidName(name.to_string()))
    }
}

/// One partition: its log (which also holds its idempotent-producer
/// state) and the limiter for its storage error log lines.
#[derive(Debug)]
pub struct Partition {
    pub index: i32,
    /// `topic-index`, as the partition's directory is named.
    pub name: String,
    pub log: PartitionLog,
    storage_errors: std::sync::atomic::AtomicU64,
    storage_error_log: LogLimiter,
}

/// How often one partition may log the same kind of storage trouble.
const STORAGE_ERROR_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

impl Partition {
    /// Logs a storage error (I/O failure or a damaged batch) with the
    /// partition and the OS error, at most once per ten seconds per
    /// partition; other log errors are the client's and are not logged.
    pub fn report(&self, error: &LogError) {
        if !matches!(error, LogError::Io(_) | LogError::Corrupt { .. }) {
            return;
        }
        self.storage_errors.fetch_add(1, Ordering::Relaxed);
        if let Some(suppressed) = self.storage_error_log.allow(std::time::Instant::now()) {
            tracing::error!(partition = %self.name, error = %error, suppressed, "storage error");
        }
    }

    /// Storage errors this partition has met since the broker started.
    pub fn storage_error_count(&self) -> u64 {
        self.storage_errors.load(Ordering::Relaxed)
    }
}

/// A topic and its partitions.
#[derive(Debug)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    overrides: RwLock<BTreeMap<String, String>>,
    settings: RwLock<TopicSettings>,
    partitions: RwLock<Vec<Arc<Partition>>>,
}

impl Topic {
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        read(&self.partitions).clone()
    }

    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        usize::try_from(index).ok().and_then(|i| read(&self.partitions).get(i).cloned())
    }

    pub fn partition_count(&self) -> usize {
        read(&self.partitions).len()
    }

    pub fn overrides(&self) -> BTreeMap<String, String> {
        read(&self.overrides).clone()
    }

    pub fn settings(&self) -> TopicSettings {
        read(&self.settings).clone()
    }

    /// Internal topics are hidden from `topic list` unless asked for.
    pub fn is_internal(&self) -> bool {
        self.name.starts_with("__")
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct TopicRecord {
    id: Uuid,
    partitions: i32,
    configs: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct MetaRecord {
    cluster_id: String,
    node_id: i32,
    /// Producer ids below this may have been handed out already.
    producer_id_reserved: i64,
}

const PRODUCER_ID_BLOCK: i64 = 1000;
const CLEAN_SHUTDOWN: &str = ".clean-shutdown";

/// Everything the handlers share.
#[derive(Debug)]
pub struct BrokerState {
    pub config: BrokerConfig,
    pub cluster_id: String,
    pub node_id: i32,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// Serialises topic creation, deletion and alteration.
    admin: Mutex<()>,
    next_producer_id: AtomicI64,
    producer_id_reserved: AtomicI64,
    /// Woken on every append, so long-polling fetches return promptly.
    pub appended: Notify,
    /// The consumer group coordinator.
    pub groups: Groups,
    /// The transaction coordinator.
    pub txns: Transactions,
    /// Paces the log cleaner's disk traffic across all partitions.
    cleaner_pacer: IoPacer,
    /// Broker configs set at runtime.
    dynamic: Mutex<DynamicConfigs>,
    /// What topic configs fall back to: runtime values over static ones.
    defaults: RwLock<BrokerDefaults>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

fn lock<T>(lock: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync dir.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let file = std::fs::File::create(&tmp)?;
        io::Write::write_all(&mut &file, bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl BrokerState {
    /// Loads (or initialises) the data directory: cluster identity, topics
    /// and their logs. After an unclean shutdown each partition's newest
    /// segment is checksummed and a torn tail truncated.
    pub fn open(config: BrokerConfig) -> Result<BrokerState, TopicError> {
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(data_dir.join("topics"))?;
        // meta.json is written only when it is new: a start-up must not
        // need free disk space. Producer ids are reserved on first use.
        let meta_path = data_dir.join("meta.json");
        let meta = match std::fs::read(&meta_path) {
            Ok(bytes) => serde_json::from_slice::<MetaRecord>(&bytes).map_err(io::Error::other)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let meta = MetaRecord { cluster_id: cluster_id_from(Uuid::new_v4()), node_id: 1, producer_id_reserved: 0 };
                write_atomically(&meta_path, &serde_json::to_vec_pretty(&meta).map_err(io::Error::other)?)?;
                meta
            }
            Err(e) => return Err(e.into()),
        };

        let marker = data_dir.join(CLEAN_SHUTDOWN);
        let clean_points = read_clean_points(&marker);
        let _ = std::fs::remove_file(&marker);

        let dynamic = DynamicConfigs::load(&data_dir)?;
        let groups = Groups::new(&config, &dynamic);
        let state = BrokerState {
            defaults: RwLock::new(dynamic.topic_defaults(&config.topic_defaults)),
            dynamic: Mutex::new(dynamic),
            groups,
            txns: Transactions::new(&config),
            cleaner_pacer: IoPacer::new(config.log_cleaner_io_max_bytes_per_second),
            config,
            cluster_id: meta.cluster_id,
            node_id: meta.node_id,
            topics: RwLock::new(HashMap::new()),
            admin: Mutex::new(()),
            next_producer_id: AtomicI64::new(meta.producer_id_reserved),
            producer_id_reserved: AtomicI64::new(meta.producer_id_reserved),
            appended: Notify::new(),
        };
        let now = now_ms();
        let mut topics = HashMap::new();
        for entry in std::fs::read_dir(data_dir.join("topics"))? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".json")) else { continue };
            let record: TopicRecord = serde_json::from_slice(&std::fs::read(&path)?).map_err(io::Error::other)?;
            let topic = state.open_topic(name, record, Some(&clean_points), now)?;
            topics.insert(name.to_string(), Arc::new(topic));
        }
        *write(&state.topics) = topics;
        for internal in INTERNAL_TOPICS {
            if state.topic(internal).is_none() {
                // Compacted, in 100 MiB segments, as Apache Kafka's
                // (offsets.topic.segment.bytes, transaction.state.log.segment.bytes):
                // the cleaner never touches the active segment, so smaller
                // ones keep replay short.
                let configs = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string()), ("segment.bytes".to_string(), "104857600".to_string())]);
                state.create_topic(internal, 1, 1, configs)?;
            }
        }
        state.replay_offsets()?;
        state.replay_transactions()?;
        Ok(state)
    }

    /// Calls `f` with the records of every batch of partition 0 of an
    /// internal topic, in log order, skipping batches that do not decode.
    fn replay_internal(&self, topic: &str, mut f: impl FnMut(Vec<Record>)) -> Result<usize, TopicError> {
        let partition = self.topic(topic).and_then(|t| t.partition(0)).ok_or_else(|| TopicError::UnknownTopic(topic.to_string()))?;
        let bounds = partition.log.bounds();
        let mut offset = bounds.log_start_offset;
        let mut replayed = 0usize;
        while offset < bounds.log_end_offset {
            let chunk = partition.log.read(offset, 1 << 20, true)?;
            if chunk.bytes.is_empty() {
                break;
            }
            let mut pos = 0;
            while pos < chunk.bytes.len() {
                let header = runnel_log::batch::BatchHeader::parse(&chunk.bytes[pos..]).map_err(LogError::Batch)?;
                let mut batch = chunk.bytes.slice(pos..pos + header.size);
                pos += header.size;
                offset = header.last_offset() + 1;
                let Ok(set) = RecordBatchDecoder::decode(&mut batch) else {
                    tracing::warn!(offset = header.base_offset, "skipping undecodable batch in {topic}");
                    continue;
                };
                replayed += set.records.len();
                f(set.records);
            }
        }
        Ok(replayed)
    }

    /// Rebuilds committed offsets from `__consumer_offsets`. Offsets a
    /// transaction committed count once its COMMIT marker follows.
    fn replay_offsets(&self) -> Result<(), TopicError> {
        let started = std::time::Instant::now();
        let replayed = self.replay_internal(OFFSETS_TOPIC, |records| {
            self.groups.with(|c, now| {
                for record in records {
                    if record.control {
                        let commit = record.key.as_ref().is_some_and(|k| k.len() >= 4 && k[3] == 1);
                        c.complete_txn_offsets(now, record.producer_id, commit);
                        continue;
                    }
                    let Some(key) = record.key.and_then(OffsetKey::decode) else { continue };
                    match record.value.and_then(CommittedOffset::decode) {
                        Some(value) if record.transactional => c.stage_txn_offsets(record.producer_id, &key.group, vec![((key.topic, key.partition), value)]),
                        value => c.load_offset(now, key, value),
                    }
                }
            })
        })?;
        if replayed > 0 {
            tracing::info!(records = replayed, elapsed_ms = started.elapsed().as_millis() as u64, "replayed committed offsets");
        }
        Ok(())
    }

    /// Rebuilds every transactional id's metadata from `__transaction_state`.
    fn replay_transactions(&self) -> Result<(), TopicError> {
        let replayed = self.replay_internal(TXN_TOPIC, |records| {
            self.txns.with(|c, _| {
                for record in records {
                    if let Some(id) = record.key.and_then(TxnMetadata::decode_key) {
                        c.load(&id, record.value.and_then(TxnMetadata::decode));
                    }
                }
            })
        })?;
        if replayed > 0 {
            tracing::info!(records = replayed, "replayed transaction state");
        }
        Ok(())
    }

    /// Appends key/value records (`None` is a tombstone) to partition 0 of
    /// an internal topic and waits until they are durable.
    pub async fn append_internal(&self, topic: &str, records: Vec<(Bytes, Option<Bytes>)>) -> Result<(), TopicError> {
        self.append_internal_as(topic, records, None).await
    }

    /// Like [`BrokerState::append_internal`], as part of a producer's open
    /// transaction (`(producer id, epoch)`): the records count once the
    /// transaction's COMMIT marker follows them.
    pub async fn append_internal_as(&self, topic: &str, records: Vec<(Bytes, Option<Bytes>)>, transaction: Option<(i64, i16)>) -> Result<(), TopicError> {
        if records.is_empty() {
            return Ok(());
        }
        let partition = self.topic(topic).and_then(|t| t.partition(0)).ok_or_else(|| TopicError::UnknownTopic(topic.to_string()))?;
        let now = now_ms();
        let records: Vec<Record> = records
            .into_iter()
            .enumerate()
            .map(|(i, (key, value))| Record {
                transactional: transaction.is_some(),
                control: false,
                partition_leader_epoch: 0,
                producer_id: transaction.map_or(-1, |(id, _)| id),
                producer_epoch: transaction.map_or(-1, |(_, epoch)| epoch),
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: -1,
                timestamp: now,
                key: Some(key),
                value,
                headers: Default::default(),
            })
            .collect();
        let mut encoded = BytesMut::new();
        RecordBatchEncoder::encode(&mut encoded, &records, &RecordEncodeOptions { version: 2, compression: Compression::None })
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut headers = runnel_log::batch::split(&encoded)
            .and_then(|ranges| ranges.into_iter().map(|r| runnel_log::batch::validate(&encoded[r])).collect::<Result<Vec<_>, _>>())
            .map_err(LogError::Batch)?;
        let appended = partition.log.append(&mut encoded, &mut headers, None, now)?;
        if self.config.fsync != FsyncPolicy::Never {
            partition.log.flush_to(appended.last_offset + 1).await?;
        }
        Ok(())
    }

    fn partition_dir(&self, topic: &str, index: i32) -> PathBuf {
        self.config.data_dir.join(format!("{topic}-{index}"))
    }

    /// Opens a partition's log; `None` for the mode creates a new one.
    fn open_partition(&self, topic: &str, index: i32, settings: &TopicSettings, mode: Option<OpenMode>, now: i64) -> Result<Partition, TopicError> {
        let dir = self.partition_dir(topic, index);
        let log = match mode {
            Some(mode) => PartitionLog::open(&dir, self.log_config(settings), mode, now)?,
            None => PartitionLog::create(&dir, self.log_config(settings), now)?,
        };
        Ok(Partition {
            index,
            name: format!("{topic}-{index}"),
            log,
            storage_errors: Default::default(),
            storage_error_log: LogLimiter::new(STORAGE_ERROR_LOG_INTERVAL),
        })
    }

    fn log_config(&self, settings: &TopicSettings) -> runnel_log::LogConfig {
        runnel_log::LogConfig { producer_id_expiration_ms: self.config.producer_id_expiration_ms, ..settings.log.clone() }
    }

    /// Opens a topic's partitions (`clean_points` saying how far each can
    /// be trusted), or creates them when `clean_points` is `None`.
    fn open_topic(&self, name: &str, record: TopicRecord, clean_points: Option<&HashMap<String, CleanPoint>>, now: i64) -> Result<Topic, TopicError> {
        let settings = TopicSettings::resolve(&record.configs, &self.topic_defaults());
        let partitions = (0..record.partitions)
            .map(|i| {
                let mode = clean_points.map(|points| points.get(&format!("{name}-{i}")).map_or(OpenMode::Recover, |point| OpenMode::Clean(*point)));
                self.open_partition(name, i, &settings, mode, now).map(Arc::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Topic {
            name: name.to_string(),
            id: record.id,
            overrides: RwLock::new(record.configs),
            settings: RwLock::new(settings),
            partitions: RwLock::new(partitions),
        })
    }

    fn persist_topic(&self, topic: &Topic) -> Result<(), TopicError> {
        let record = TopicRecord { id: topic.id, partitions: topic.partition_count() as i32, configs: topic.overrides() };
        let path = self.config.data_dir.join("topics").join(format!("{}.json", topic.name));
        write_atomically(&path, &serde_json::to_vec_pretty(&record).map_err(io::Error::other)?)?;
        Ok(())
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        read(&self.topics).get(name).cloned()
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        read(&self.topics).values().find(|t| t.id == id).cloned()
    }

    /// All topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut all: Vec<_> = read(&self.topics).values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Validates a topic creation request without performing it.
    pub fn check_new_topic(&self, name: &str, partitions: i32, replication_factor: i16, configs: &BTreeMap<String, String>) -> Result<(), TopicError> {
        validate_topic_name(name)?;
        if self.topic(name).is_some() {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        // As Apache Kafka: names equal but for '.' and '_' are refused.
        let unified = |n: &str| n.replace('.', "_");
        if let Some(existing) = read(&self.topics).keys().find(|existing| unified(existing) == unified(name)) {
            return Err(TopicError::Collides { name: name.to_string(), existing: existing.clone() });
        }
        if partitions == 0 || partitions < -1 {
            return Err(TopicError::InvalidPartitions(format!("number of partitions must be positive, got {partitions}")));
        }
        if partitions > 100_000 {
            return Err(TopicError::InvalidPartitions(format!("{partitions} partitions is more than this broker allows (100000)")));
        }
        if replication_factor != -1 && replication_factor != 1 {
            return Err(TopicError::InvalidReplicationFactor(replication_factor));
        }
        for (key, value) in configs {
            topic_config::validate(key, Some(value))?;
        }
        topic_config::validate_together(configs, &self.topic_defaults())?;
        Ok(())
    }

    /// Creates a topic durably. `partitions == -1` means `num.partitions`.
    pub fn create_topic(&self, name: &str, partitions: i32, replication_factor: i16, configs: BTreeMap<String, String>) -> Result<Arc<Topic>, TopicError> {
        let _admin = lock(&self.admin);
        self.check_new_topic(name, partitions, replication_factor, &configs)?;
        let partitions = if partitions == -1 { self.config.num_partitions.max(1) } else { partitions };
        self.check_open_files(partitions as u64)?;
        // Directories a crash left behind belong to no topic: start afresh.
        self.remove_topic_files(name, 0..partitions);
        let configs = configs
            .into_iter()
            .map(|(key, value)| {
                let value = topic_config::canonical(&key, &value);
                (key, value)
            })
            .collect();
        let record = TopicRecord { id: Uuid::new_v4(), partitions, configs };
        let created = self.open_topic(name, record, None, now_ms()).map(Arc::new).and_then(|topic| {
            self.persist_topic(&topic)?;
            self.sync_new_directories()?;
            Ok(topic)
        });
        let topic = match created {
            Ok(topic) => topic,
            Err(e) => {
                tracing::error!(topic = name, partitions, error = %e, "topic creation failed; rolling it back");
                self.remove_topic_files(name, 0..partitions);
                return Err(e);
            }
        };
        write(&self.topics).insert(name.to_string(), topic.clone());
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Refuses to open `partitions` more logs when their files would not
    /// fit under the open-file limit.
    fn check_open_files(&self, partitions: u64) -> Result<(), TopicError> {
        let limit = resources::open_file_limit();
        let free = limit.saturating_sub(resources::open_files()).saturating_sub(resources::descriptor_headroom(limit));
        if partitions > free {
            return Err(TopicError::TooManyOpenFiles { partitions, free, limit });
        }
        Ok(())
    }

    /// Makes newly created partition directories and files durable (one
    /// `syncfs` rather than an fsync per directory).
    fn sync_new_directories(&self) -> Result<(), TopicError> {
        if self.config.fsync != FsyncPolicy::Never {
            resources::sync_filesystem(&self.config.data_dir)?;
        }
        Ok(())
    }

    /// Removes what a failed creation left: partition directories in
    /// `partitions` and the topic's metadata file and its temporary.
    fn remove_topic_files(&self, name: &str, partitions: std::ops::Range<i32>) {
        self.remove_partition_dirs(name, partitions);
        let path = self.config.data_dir.join("topics").join(format!("{name}.json"));
        for path in [path.with_extension("tmp"), path] {
            let _ = std::fs::remove_file(path);
        }
    }

    fn remove_partition_dirs(&self, name: &str, partitions: std::ops::Range<i32>) {
        for index in partitions {
            let dir = self.partition_dir(name, index);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not remove partition directory");
                }
            }
        }
    }

    /// Returns the topic, creating it if auto-creation is on.
    pub fn get_or_auto_create(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        if let Some(topic) = self.topic(name) {
            return Ok(topic);
        }
        if !self.config.auto_create_topics {
            return Err(TopicError::UnknownTopic(name.to_string()));
        }
        match self.create_topic(name, -1, -1, BTreeMap::new()) {
            Err(TopicError::AlreadyExists(_)) => self.topic(name).ok_or_else(|| TopicError::UnknownTopic(name.to_string())),
            other => other,
        }
    }

    pub fn delete_topic(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        let _admin = lock(&self.admin);
        // Apache Kafka lets an admin delete (or grow) `__consumer_offsets`,
        // losing every group's offsets; runnel keeps them, and the
        // transaction state likewise.
        if is_internal_topic(name) {
            return Err(TopicError::Internal(name.to_string()));
        }
        let topic = write(&self.topics).remove(name).ok_or_else(|| TopicError::UnknownTopic(name.to_string()))?;
        std::fs::remove_file(self.config.data_dir.join("topics").join(format!("{name}.json")))?;
        for partition in topic.partitions() {
            partition.log.delete()?;
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
    }

    /// Grows a topic to `count` partitions.
    pub fn create_partitions(&self, name: &str, count: i32, validate_only: bool) -> Result<(), TopicError> {
        let _admin = lock(&self.admin);
        if is_internal_topic(name) {
            return Err(TopicError::Internal(name.to_string()));
        }
        let topic = self.topic(name).ok_or_else(|| TopicError::UnknownTopic(name.to_string()))?;
        let current = topic.partition_count() as i32;
        if count <= current {
            return Err(TopicError::InvalidPartitions(format!("topic `{name}` has {current} partitions; the new count must be larger, got {count}")));
        }
        if count > 100_000 {
            return Err(TopicError::InvalidPartitions(format!("{count} partitions is more than this broker allows (100000)")));
        }
        if validate_only {
            return Ok(());
        }
        self.check_open_files((count - current) as u64)?;
        self.remove_partition_dirs(name, current..count);
        let settings = topic.settings();
        let now = now_ms();
        let added = (current..count).map(|i| self.open_partition(name, i, &settings, None, now).map(Arc::new)).collect::<Result<Vec<_>, _>>();
        let added = match added.and_then(|added| self.sync_new_directories().map(|()| added)) {
            Ok(added) => added,
            Err(e) => {
                self.remove_partition_dirs(name, current..count);
                return Err(e);
            }
        };
        write(&topic.partitions).extend(added);
        if let Err(e) = self.persist_topic(&topic) {
            write(&topic.partitions).truncate(current as usize);
            self.remove_partition_dirs(name, current..count);
            return Err(e);
        }
        Ok(())
    }

    /// Replaces (`incremental == false`) or patches a topic's overrides.
    /// `changes` maps a name to `Some(value)` to set or `None` to delete.
    pub fn alter_topic_configs(&self, name: &str, changes: &[(String, Option<String>)], incremental: bool, validate_only: bool) -> Result<(), TopicError> {
        let _admin = lock(&self.admin);
        // As Apache Kafka: the configs are judged before the topic is
        // looked up, so a bad value is INVALID_CONFIG even for a topic
        // that does not exist.
        for (key, value) in changes {
            match value {
                Some(value) => topic_config::validate(key, Some(value))?,
                None if topic_config::find(key).is_none() => return Err(ConfigError::Unknown(key.clone()).into()),
                None => {}
            }
        }
        let topic = self.topic(name).ok_or_else(|| TopicError::UnknownTopic(name.to_string()))?;
        let mut overrides = if incremental { topic.overrides() } else { BTreeMap::new() };
        for (key, value) in changes {
            match value {
                Some(value) => overrides.insert(key.clone(), topic_config::canonical(key, value)),
                None => overrides.remove(key),
            };
        }
        topic_config::validate_together(&overrides, &self.topic_defaults())?;
        if validate_only {
            return Ok(());
        }
        let settings = TopicSettings::resolve(&overrides, &self.topic_defaults());
        for partition in topic.partitions() {
            partition.log.set_config(self.log_config(&settings));
        }
        *write(&topic.overrides) = overrides;
        *write(&topic.settings) = settings;
        self.persist_topic(&topic)?;
        Ok(())
    }

    /// What topic configs fall back to when a topic does not set them.
    pub fn topic_defaults(&self) -> BrokerDefaults {
        read(&self.defaults).clone()
    }

    /// Broker configs set at runtime, cluster-wide and for this broker.
    pub fn dynamic_configs(&self) -> DynamicConfigs {
        lock(&self.dynamic).clone()
    }

    /// Sets (`Some`) or removes (`None`) broker configs at runtime, in one
    /// layer; `incremental == false` replaces the layer wholesale
    /// (AlterConfigs). Every name must be a dynamic config and every value
    /// valid, or nothing changes. Applied at once to every topic that does
    /// not override the config, and to the group coordinator.
    pub fn alter_broker_configs(
        &self,
        scope: Scope,
        changes: &[(String, Option<String>)],
        incremental: bool,
        validate_only: bool,
    ) -> Result<(), BrokerConfigError> {
        let _admin = lock(&self.admin);
        let fixed: Vec<String> = changes.iter().filter(|(name, _)| DynamicConfig::find(name).is_none()).map(|(name, _)| name.clone()).collect();
        if !fixed.is_empty() {
            return Err(BrokerConfigError::NotDynamic(fixed));
        }
        for (name, value) in changes {
            if let (Some(value), Some(config)) = (value, DynamicConfig::find(name)) {
                config.validate(value).map_err(|reason| BrokerConfigError::Invalid { name: name.clone(), reason })?;
            }
        }
        let mut dynamic = self.dynamic_configs();
        let layer = dynamic.layer_mut(scope);
        if !incremental {
            layer.clear();
        }
        for (name, value) in changes {
            match value {
                Some(value) => layer.insert(name.clone(), value.trim().to_string()),
                None => layer.remove(name),
            };
        }
        if validate_only {
            return Ok(());
        }
        dynamic.save(&self.config.data_dir)?;
        let defaults = dynamic.topic_defaults(&self.config.topic_defaults);
        for topic in self.topics() {
            let settings = TopicSettings::resolve(&topic.overrides(), &defaults);
            for partition in topic.partitions() {
                partition.log.set_config(self.log_config(&settings));
            }
            *write(&topic.settings) = settings;
        }
        *write(&self.defaults) = defaults;
        self.groups.reconfigure(&self.config, &dynamic);
        *lock(&self.dynamic) = dynamic;
        tracing::info!(?scope, changes = changes.len(), "broker configs changed");
        Ok(())
    }

    /// Hands out a fresh producer id, reserving ids on disk in blocks so
    /// none is reused after a restart.
    pub fn allocate_producer_id(&self) -> Result<i64, TopicError> {
        let id = self.next_producer_id.fetch_add(1, Ordering::SeqCst);
        let _admin = lock(&self.admin);
        if id >= self.producer_id_reserved.load(Ordering::SeqCst) {
            let reserved = id + PRODUCER_ID_BLOCK;
            let meta = MetaRecord { cluster_id: self.cluster_id.clone(), node_id: self.node_id, producer_id_reserved: reserved };
            write_atomically(&self.config.data_dir.join("meta.json"), &serde_json::to_vec_pretty(&meta).map_err(io::Error::other)?)?;
            self.producer_id_reserved.store(reserved, Ordering::SeqCst);
        }
        Ok(id)
    }

    /// Applies retention to every partition and forgets idempotent
    /// producers silent for longer than `producer.id.expiration.ms`.
    pub fn enforce_retention(&self) {
        let now = now_ms();
        for topic in self.topics() {
            for partition in topic.partitions() {
                match partition.log.enforce_retention(now) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(partition = %partition.name, segments = n, "retention deleted segments"),
                    Err(e) => partition.report(&e),
                }
                let expired = partition.log.expire_producers(now);
                if expired > 0 {
                    tracing::debug!(partition = %partition.name, expired, "expired idle producers");
                }
            }
        }
    }

    /// Runs a compaction pass on every compacted partition that is due.
    pub fn clean_logs(&self) {
        let now = now_ms();
        for topic in self.topics() {
            for partition in topic.partitions() {
                match partition.log.clean_paced(now, &self.cleaner_pacer) {
                    Ok(None) => {}
                    Ok(Some(stats)) => tracing::info!(
                        partition = %partition.name,
                        segments = stats.segments_rewritten,
                        bytes_before = stats.bytes_before,
                        bytes_after = stats.bytes_after,
                        "compacted"
                    ),
                    Err(e) => partition.report(&e),
                }
            }
        }
    }

    /// Time-driven upkeep of every log (see [`PartitionLog::maintain`]).
    pub async fn maintain_logs(&self) {
        let now = now_ms();
        for topic in self.topics() {
            for partition in topic.partitions() {
                if let Err(e) = partition.log.maintain(now).await {
                    partition.report(&e);
                }
            }
        }
    }

    /// Fsyncs every partition (interval fsync policy, shutdown).
    pub fn sync_all(&self) {
        for topic in self.topics() {
            for partition in topic.partitions() {
                if let Err(e) = partition.log.sync() {
                    partition.report(&e);
                }
            }
        }
    }

    /// Closes every log and leaves a marker with each one's clean point,
    /// so the next start trusts them without reading them. A log that
    /// fails to close is left out and recovered at the next start.
    pub fn shutdown(&self) {
        let mut marker = String::new();
        for topic in self.topics() {
            for partition in topic.partitions() {
                match partition.log.close() {
                    Ok(point) => marker.push_str(&format!("{} {} {}\n", partition.name, point.active_base, point.active_size)),
                    Err(e) => tracing::warn!(partition = %partition.name, error = %e, "could not close log cleanly; it will be recovered at start-up"),
                }
            }
        }
        if let Err(e) = write_atomically(&self.config.data_dir.join(CLEAN_SHUTDOWN), marker.as_bytes()) {
            tracing::warn!(error = %e, "could not write clean-shutdown marker; every log will be recovered at start-up");
        }
    }
}

/// Reads the clean points a clean shutdown recorded: one line per
/// partition, `<topic>-<partition> <active segment base> <its size>`.
/// A missing or unreadable marker means every log is recovered.
fn read_clean_points(marker: &Path) -> HashMap<String, CleanPoint> {
    let Ok(text) = std::fs::read_to_string(marker) else { return HashMap::new() };
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let (name, base, size) = (fields.next()?, fields.next()?.parse().ok()?, fields.next()?.parse().ok()?);
            Some((name.to_string(), CleanPoint { active_base: base, active_size: size }))
        })
        .collect()
}

/// Kafka cluster ids are 22-character URL-safe base64 of a UUID.
fn cluster_id_from(uuid: Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid.as_bytes();
    let mut out = String::with_capacity(22);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_name_rules() {
        for ok in ["rides_json", "a.b-c_1", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "has space", "slash/y", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cluster_id_is_22_chars() {
        assert_eq!(cluster_id_from(Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(cluster_id_from(Uuid::new_v4()).len(), 22);
    }
}
