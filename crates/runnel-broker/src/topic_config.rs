//! Topic configs: every name Apache Kafka defines for a topic, with its
//! type, default, validation and broker-level synonyms, and how an
//! effective value and its DescribeConfigs source are resolved. Pure: no
//! I/O.

use std::collections::BTreeMap;

use runnel_log::cleaner::CompactionConfig;
use runnel_log::LogConfig;

use runnel_log::records::TopicCodec;

/// Where an effective config value came from, as DescribeConfigs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigSource {
    Topic = 1,
    DynamicBroker = 2,
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
}

/// The broker-level values topic configs fall back to, keyed by topic
/// config name, in Apache Kafka's order of precedence: set for this broker
/// at runtime, set cluster-wide at runtime, then static (the config file
/// and flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerDefaults {
    pub dynamic_broker: BTreeMap<String, String>,
    pub dynamic_cluster: BTreeMap<String, String>,
    pub static_broker: BTreeMap<String, String>,
}

impl BrokerDefaults {
    /// Only static values, as a broker starts before any runtime change.
    pub fn from_static(static_broker: BTreeMap<String, String>) -> BrokerDefaults {
        BrokerDefaults { static_broker, ..BrokerDefaults::default() }
    }

    /// Every layer that holds a value for topic config `name`, most
    /// specific first.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a String, ConfigSource)> + 'a {
        [
            (&self.dynamic_broker, ConfigSource::DynamicBroker),
            (&self.dynamic_cluster, ConfigSource::DynamicDefaultBroker),
            (&self.static_broker, ConfigSource::StaticBroker),
        ]
        .into_iter()
        .filter_map(move |(layer, source)| layer.get(name).map(|v| (v, source)))
    }
}

/// DescribeConfigs' `config_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// What a value must be, beyond parsing as its type.
#[derive(Debug, Clone, Copy)]
enum Rule {
    Any,
    AtLeast(i64),
    Between(i64, i64),
    /// A ratio: a double in `0.0..=1.0`.
    Fraction,
    /// One of these strings (for a list: every item, and at least one).
    OneOf(&'static [&'static str]),
    /// `-1` (the codec's default) or `1..=9`.
    GzipLevel,
    /// `*`, or `partition:broker` pairs.
    ThrottledReplicas,
    /// Only `false`: the setting enables a feature a single local broker
    /// does not have.
    FalseOnly(&'static str),
}

/// One topic config.
#[derive(Debug)]
pub struct ConfigDef {
    pub name: &'static str,
    pub default: &'static str,
    pub config_type: ConfigType,
    /// Broker settings that supply the value when the topic sets none,
    /// the primary one first, each with its own default if it has one.
    pub synonyms: &'static [(&'static str, Option<&'static str>)],
    pub doc: &'static str,
    /// Accepted (3.x clients still send it) but not listed unless set.
    pub deprecated: bool,
    /// Accepted but never listed: a knob for tests, as in Apache Kafka.
    pub internal: bool,
    rule: Rule,
}

impl ConfigDef {
    /// The broker-level name of this setting (`log.retention.ms`).
    pub fn broker_name(&self) -> &'static str {
        self.synonyms.first().map_or(self.name, |(name, _)| name)
    }

    /// Whether DescribeConfigs lists this config for a topic that does not set it.
    pub fn listed(&self) -> bool {
        !self.deprecated && !self.internal
    }
}

const fn def(
    name: &'static str,
    config_type: ConfigType,
    default: &'static str,
    rule: Rule,
    synonyms: &'static [(&'static str, Option<&'static str>)],
    doc: &'static str,
) -> ConfigDef {
    ConfigDef { name, default, config_type, synonyms, doc, deprecated: false, internal: false, rule }
}

const fn deprecated(name: &'static str, config_type: ConfigType, default: &'static str, rule: Rule, doc: &'static str) -> ConfigDef {
    ConfigDef { name, default, config_type, synonyms: &[], doc, deprecated: true, internal: false, rule }
}

const MAX_LONG: &str = "9223372036854775807";
const CODECS: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

use ConfigType::{Boolean, Double, Int, List, Long, String as Str};
use Rule::*;

/// Every topic config, in name order: Apache Kafka 4.x's set, plus the
/// deprecated names 3.x clients still send and Kafka's internal segment
/// size for tests.
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    def("cleanup.policy", List, "delete", OneOf(&["compact", "delete"]), &[("log.cleanup.policy", Some("delete"))],
        "What happens to old segments: `delete` removes them by retention, `compact` keeps the newest record per key; both may be given, or neither to keep everything."),
    def("compression.gzip.level", Int, "-1", GzipLevel, &[("compression.gzip.level", Some("-1"))],
        "Level used when compression.type is gzip."),
    def("compression.lz4.level", Int, "9", Between(1, 17), &[("compression.lz4.level", Some("9"))],
        "Level used when compression.type is lz4."),
    def("compression.type", Str, "producer", OneOf(CODECS), &[("compression.type", Some("producer"))],
        "Codec batches are stored with: `producer` keeps each batch as sent, `uncompressed` or a codec name rewrites it."),
    def("compression.zstd.level", Int, "3", Between(-131072, 22), &[("compression.zstd.level", Some("3"))],
        "Level used when compression.type is zstd."),
    def("delete.retention.ms", Long, "86400000", AtLeast(0), &[("log.cleaner.delete.retention.ms", Some("86400000"))],
        "How long a compacted topic keeps tombstones, so consumers that read to the end see deletions."),
    def("errors.deadletterqueue.group.enable", Boolean, "false", Any, &[],
        "Whether groups may use this topic as a dead-letter queue."),
    def("file.delete.delay.ms", Long, "60000", AtLeast(0), &[("log.segment.delete.delay.ms", Some("60000"))],
        "Delay before a deleted segment's files are removed."),
    def("flush.messages", Long, MAX_LONG, AtLeast(1), &[("log.flush.interval.messages", Some(MAX_LONG))],
        "Records appended between forced fsyncs of the log."),
    def("flush.ms", Long, MAX_LONG, AtLeast(0), &[("log.flush.interval.ms", None), ("log.flush.scheduler.interval.ms", Some(MAX_LONG))],
        "Longest time appended records wait for an fsync."),
    def("follower.replication.throttled.replicas", List, "", ThrottledReplicas, &[],
        "Replicas whose follower-side replication is throttled; one broker has none to throttle."),
    def("index.interval.bytes", Int, "4096", AtLeast(0), &[("log.index.interval.bytes", Some("4096"))],
        "Bytes of log between offset index entries."),
    ConfigDef { internal: true, ..def("internal.segment.bytes", Int, "1073741824", AtLeast(14), &[], "Segment size without segment.bytes' lower bound, for tests.") },
    def("leader.replication.throttled.replicas", List, "", ThrottledReplicas, &[],
        "Replicas whose leader-side replication is throttled; one broker has none to throttle."),
    def("local.retention.bytes", Long, "-2", AtLeast(-2), &[("log.local.retention.bytes", Some("-2"))],
        "Local size kept when tiered storage is on; -2 means retention.bytes."),
    def("local.retention.ms", Long, "-2", AtLeast(-2), &[("log.local.retention.ms", Some("-2"))],
        "Local age kept when tiered storage is on; -2 means retention.ms."),
    def("max.compaction.lag.ms", Long, MAX_LONG, AtLeast(1), &[("log.cleaner.max.compaction.lag.ms", Some(MAX_LONG))],
        "Longest a record may stay uncompacted."),
    def("max.decompressed.message.bytes", Int, "2147483639", Between(1, 2147483639), &[("max.decompressed.message.bytes", Some("2147483639"))],
        "Largest size a compressed batch may expand to when the broker decompresses it."),
    def("max.message.bytes", Int, "1048588", AtLeast(0), &[("message.max.bytes", Some("1048588"))],
        "Largest record batch accepted, after compression."),
    deprecated("message.downconversion.enable", Boolean, "true", Any,
        "Accepted for 3.x clients; runnel serves only the current record format."),
    deprecated("message.format.version", Str, "3.0-IV1", Any,
        "Accepted for 3.x clients; runnel writes only the current record format."),
    def("message.timestamp.after.max.ms", Long, "3600000", AtLeast(0), &[("log.message.timestamp.after.max.ms", Some("3600000"))],
        "How far ahead of the broker's clock a CreateTime timestamp may be."),
    def("message.timestamp.before.max.ms", Long, MAX_LONG, AtLeast(0), &[("log.message.timestamp.before.max.ms", Some(MAX_LONG))],
        "How far behind the broker's clock a CreateTime timestamp may be."),
    deprecated("message.timestamp.difference.max.ms", Long, MAX_LONG, AtLeast(0),
        "The older single bound on timestamps, used when the before/after bounds are not set."),
    def("message.timestamp.type", Str, "CreateTime", OneOf(&["CreateTime", "LogAppendTime"]), &[("log.message.timestamp.type", Some("CreateTime"))],
        "`CreateTime` keeps the producer's timestamp, `LogAppendTime` stamps the broker's clock."),
    def("min.cleanable.dirty.ratio", Double, "0.5", Fraction, &[("log.cleaner.min.cleanable.ratio", Some("0.5"))],
        "Share of a compacted log that must be uncompacted before the cleaner runs."),
    def("min.compaction.lag.ms", Long, "0", AtLeast(0), &[("log.cleaner.min.compaction.lag.ms", Some("0"))],
        "Shortest time a record stays uncompacted."),
    def("min.insync.replicas", Int, "1", AtLeast(1), &[("min.insync.replicas", Some("1"))],
        "Replicas that must have an acks=all write; a single broker is always one."),
    def("preallocate", Boolean, "false", Any, &[("log.preallocate", Some("false"))],
        "Whether segment files are allocated at full size when created."),
    def("remote.copy.lag.bytes", Long, "-1", AtLeast(-1), &[("log.remote.copy.lag.bytes", Some("-1"))],
        "Bytes of log that may wait before being copied to tiered storage."),
    def("remote.copy.lag.ms", Long, "0", AtLeast(-1), &[("log.remote.copy.lag.ms", Some("0"))],
        "Time a segment may wait before being copied to tiered storage."),
    def("remote.log.copy.disable", Boolean, "false", Any, &[],
        "Stops copying to tiered storage while keeping what was copied."),
    def("remote.log.delete.on.disable", Boolean, "false", Any, &[],
        "Whether disabling tiered storage deletes the remote copy."),
    def("remote.storage.enable", Boolean, "false", FalseOnly("tiered storage is not enabled on this broker"), &[],
        "Tiered storage for this topic; runnel keeps every segment locally."),
    def("retention.bytes", Long, "-1", Any, &[("log.retention.bytes", Some("-1"))],
        "Size of a partition above which old segments are deleted; -1 for no limit."),
    def("retention.ms", Long, "604800000", AtLeast(-1), &[("log.retention.ms", None), ("log.retention.minutes", None), ("log.retention.hours", Some("168"))],
        "Age after which old segments are deleted; -1 for no limit."),
    def("segment.bytes", Int, "1073741824", AtLeast(1 << 20), &[("log.segment.bytes", Some("1073741824"))],
        "Size at which a partition starts a new segment."),
    def("segment.index.bytes", Int, "10485760", AtLeast(4), &[("log.index.size.max.bytes", Some("10485760"))],
        "Largest size of a segment's offset and time indexes."),
    def("segment.jitter.ms", Long, "0", AtLeast(0), &[("log.roll.jitter.ms", None), ("log.roll.jitter.hours", Some("0"))],
        "Random amount taken off segment.ms, so segments of many partitions do not roll at once."),
    def("segment.ms", Long, "604800000", AtLeast(1), &[("log.roll.ms", None), ("log.roll.hours", Some("168"))],
        "Age at which a partition starts a new segment."),
    def("unclean.leader.election.enable", Boolean, "false", Any, &[("unclean.leader.election.enable", Some("false"))],
        "Whether an out-of-sync replica may become leader; a single broker has no other replica."),
];

/// Why a config was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown topic config `{0}`")]
    Unknown(String),
    #[error("invalid value `{value}` for `{name}`: {reason}")]
    Invalid { name: String, value: String, reason: String },
    #[error("`{0}` needs a value")]
    Missing(String),
    #[error("{0}")]
    Conflict(String),
}

pub fn find(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks a topic-level override.
pub fn validate(name: &str, value: Option<&str>) -> Result<(), ConfigError> {
    let def = find(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
    let value = value.ok_or_else(|| ConfigError::Missing(name.to_string()))?;
    check(def, value).map_err(|reason| ConfigError::Invalid { name: name.to_string(), value: value.to_string(), reason })
}

/// A valid value as it is stored and described: without the whitespace
/// that parsing ignores, around the value and around list items, as Apache
/// Kafka stores it (CreateTopics still echoes the value as sent).
pub fn canonical(name: &str, value: &str) -> String {
    match find(name) {
        Some(def) if def.config_type == List => value.split(',').map(str::trim).collect::<Vec<_>>().join(","),
        _ => value.trim().to_string(),
    }
}

/// Checks what only a whole set of overrides can get wrong, after each
/// value passed [`validate`].
pub fn validate_together(topic: &BTreeMap<String, String>, broker: &BrokerDefaults) -> Result<(), ConfigError> {
    let long = |name: &str| resolve(find(name).expect("known config"), topic, broker).0.trim().parse::<i64>().unwrap_or_default();
    let (min_lag, max_lag) = (long("min.compaction.lag.ms"), long("max.compaction.lag.ms"));
    if min_lag > max_lag {
        return Err(ConfigError::Conflict(format!("min.compaction.lag.ms ({min_lag}) must not be larger than max.compaction.lag.ms ({max_lag})")));
    }
    Ok(())
}

fn check(def: &ConfigDef, value: &str) -> Result<(), String> {
    let trimmed = value.trim();
    let number = match def.config_type {
        Int => Some(trimmed.parse::<i32>().map_err(|_| "not a 32-bit integer".to_string())? as i64),
        Long => Some(trimmed.parse::<i64>().map_err(|_| "not a 64-bit integer".to_string())?),
        Boolean => {
            let flag = match trimmed.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return Err("must be true or false".to_string()),
            };
            if let (FalseOnly(reason), true) = (def.rule, flag) {
                return Err(reason.to_string());
            }
            None
        }
        Double => {
            let ratio: f64 = trimmed.parse().map_err(|_| "not a number".to_string())?;
            if matches!(def.rule, Fraction) && !(0.0..=1.0).contains(&ratio) {
                return Err("must be between 0 and 1".to_string());
            }
            None
        }
        Str => {
            if let OneOf(allowed) = def.rule {
                if !allowed.contains(&trimmed) {
                    return Err(format!("must be one of {}", allowed.join(", ")));
                }
            }
            None
        }
        List => {
            let items: Vec<&str> = if trimmed.is_empty() { Vec::new() } else { trimmed.split(',').map(str::trim).collect() };
            match def.rule {
                OneOf(allowed) if items.iter().any(|i| !allowed.contains(i)) => {
                    return Err(format!("must be a list of {}", allowed.join(", ")));
                }
                ThrottledReplicas if !valid_throttled_replicas(&items) => {
                    return Err("must be `*` or a list of partition:broker pairs".to_string());
                }
                _ => {}
            }
            None
        }
    };
    match (number, def.rule) {
        (Some(n), AtLeast(min)) if n < min => Err(format!("must be at least {min}")),
        (Some(n), Between(min, max)) if n < min || n > max => Err(format!("must be between {min} and {max}")),
        (Some(n), GzipLevel) if n != -1 && !(1..=9).contains(&n) => Err("must be -1 or between 1 and 9".to_string()),
        _ => Ok(()),
    }
}

fn valid_throttled_replicas(items: &[&str]) -> bool {
    if items == ["*"] {
        return true;
    }
    items
        .iter()
        .all(|item| item.split_once(':').is_some_and(|(partition, broker)| partition.trim().parse::<u32>().is_ok() && broker.trim().parse::<u32>().is_ok()))
}

/// The effective value of `def` and where it came from.
pub fn resolve<'a>(def: &'a ConfigDef, topic: &'a BTreeMap<String, String>, broker: &'a BrokerDefaults) -> (&'a str, ConfigSource) {
    if let Some(v) = topic.get(def.name) {
        (v, ConfigSource::Topic)
    } else if let Some((v, source)) = broker.values(def.name).next() {
        (v, source)
    } else {
        (def.default, ConfigSource::Default)
    }
}

/// The lower-precedence values of `def`, as DescribeConfigs lists them:
/// the topic's own override, the broker's setting, then the defaults of
/// the broker-level synonyms, starting from the primary one (as Apache
/// Kafka does, a config whose primary broker setting has no value lists
/// no broker synonyms at all).
pub fn synonyms(def: &ConfigDef, topic: &BTreeMap<String, String>, broker: &BrokerDefaults) -> Vec<(String, String, ConfigSource)> {
    let mut out: Vec<(String, String, ConfigSource)> =
        topic.get(def.name).map(|v| (def.name.to_string(), v.clone(), ConfigSource::Topic)).into_iter().collect();
    let mut from_broker: Vec<(String, String, ConfigSource)> =
        broker.values(def.name).map(|(v, source)| (def.broker_name().to_string(), v.clone(), source)).collect();
    from_broker.extend(def.synonyms.iter().filter_map(|(name, default)| default.map(|d| (name.to_string(), d.to_string(), ConfigSource::Default))));
    out.extend(from_broker.into_iter().skip_while(|(name, _, _)| name != def.broker_name()));
    out
}

/// Topic configs turned into the values the broker and the log act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSettings {
    pub log: LogConfig,
    pub max_message_bytes: usize,
    pub log_append_time: bool,
    /// Replicas an `acks=all` write needs; this broker is the only one.
    pub min_insync_replicas: i64,
    /// How far behind and ahead of the broker's clock a CreateTime
    /// timestamp may be (`message.timestamp.before.max.ms`, `.after.max.ms`).
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    /// What batches are stored as (`compression.type` and its level).
    pub codec: TopicCodec,
}

impl TopicSettings {
    /// Resolves every config; values were validated when stored.
    pub fn resolve(topic: &BTreeMap<String, String>, broker: &BrokerDefaults) -> TopicSettings {
        let get = |name: &str| resolve(find(name).expect("known config"), topic, broker).0.trim().to_string();
        let long = |name: &str| get(name).parse::<i64>().unwrap_or_default();
        let segment_bytes = match topic.get("internal.segment.bytes").or_else(|| broker.values("internal.segment.bytes").next().map(|(v, _)| v)) {
            Some(bytes) => bytes.trim().parse().unwrap_or_default(),
            None => long("segment.bytes"),
        };
        // The deprecated single bound stands in for both when a topic sets
        // it and neither of the newer ones.
        let difference = topic
            .get("message.timestamp.difference.max.ms")
            .filter(|_| !topic.contains_key("message.timestamp.before.max.ms") && !topic.contains_key("message.timestamp.after.max.ms"));
        let bound = |name: &str| difference.and_then(|d| d.trim().parse().ok()).unwrap_or_else(|| long(name));
        // Retention deletes segments only under the `delete` policy;
        // the cleaner compacts under `compact`.
        let policy = get("cleanup.policy");
        let deletes = policy.split(',').any(|p| p.trim() == "delete");
        let compacts = policy.split(',').any(|p| p.trim() == "compact");
        let ratio: f64 = get("min.cleanable.dirty.ratio").parse().unwrap_or(0.5);
        let compaction = compacts.then(|| CompactionConfig {
            min_dirty_ratio_ppm: (ratio * 1_000_000.0) as u32,
            min_compaction_lag_ms: long("min.compaction.lag.ms"),
            max_compaction_lag_ms: long("max.compaction.lag.ms"),
            delete_retention_ms: long("delete.retention.ms"),
            ..CompactionConfig::default()
        });
        TopicSettings {
            log: LogConfig {
                segment_bytes: segment_bytes as u64,
                segment_ms: long("segment.ms"),
                retention_ms: if deletes { long("retention.ms") } else { -1 },
                retention_bytes: if deletes { long("retention.bytes") } else { -1 },
                index_interval_bytes: long("index.interval.bytes") as u64,
                segment_index_bytes: long("segment.index.bytes") as u64,
                segment_jitter_ms: long("segment.jitter.ms"),
                flush_messages: long("flush.messages"),
                flush_ms: long("flush.ms"),
                file_delete_delay_ms: long("file.delete.delay.ms"),
                preallocate: get("preallocate").eq_ignore_ascii_case("true"),
                compaction,
                ..LogConfig::default()
            },
            max_message_bytes: long("max.message.bytes") as usize,
            log_append_time: get("message.timestamp.type") == "LogAppendTime",
            min_insync_replicas: long("min.insync.replicas"),
            timestamp_before_max_ms: bound("message.timestamp.before.max.ms"),
            timestamp_after_max_ms: bound("message.timestamp.after.max.ms"),
            codec: match get("compression.type").as_str() {
                "uncompressed" => TopicCodec::Uncompressed,
                "gzip" => TopicCodec::Gzip { level: long("compression.gzip.level") as i32 },
                "snappy" => TopicCodec::Snappy,
                "lz4" => TopicCodec::Lz4 { level: long("compression.lz4.level") as i32 },
                "zstd" => TopicCodec::Zstd { level: long("compression.zstd.level") as i32 },
                _ => TopicCodec::Producer,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_table() {
        let cases: &[(&str, Option<&str>, bool)] = &[
            ("retention.ms", Some("-1"), true),
            ("retention.ms", Some("-2"), false),
            ("retention.ms", Some("soon"), false),
            ("retention.ms", Some(" 5 "), true),
            ("segment.bytes", Some("1048575"), false),
            ("segment.bytes", Some("1048576"), true),
            ("internal.segment.bytes", Some("1024"), true),
            ("internal.segment.bytes", Some("13"), false),
            ("segment.ms", Some("0"), false),
            ("cleanup.policy", Some("compact, delete"), true),
            ("cleanup.policy", Some("shred"), false),
            ("cleanup.policy", Some(""), true),
            ("message.timestamp.type", Some("LogAppendTime"), true),
            ("message.timestamp.type", Some("Now"), false),
            ("min.insync.replicas", Some("0"), false),
            ("max.message.bytes", Some("2000000"), true),
            ("compression.type", Some("zstd"), true),
            ("compression.type", Some("brotli"), false),
            ("compression.gzip.level", Some("-1"), true),
            ("compression.gzip.level", Some("0"), false),
            ("compression.zstd.level", Some("-131072"), true),
            ("compression.lz4.level", Some("18"), false),
            ("min.cleanable.dirty.ratio", Some("0.9"), true),
            ("min.cleanable.dirty.ratio", Some("1.5"), false),
            ("preallocate", Some("TRUE"), true),
            ("preallocate", Some("yes"), false),
            ("remote.storage.enable", Some("false"), true),
            ("remote.storage.enable", Some("true"), false),
            ("leader.replication.throttled.replicas", Some("*"), true),
            ("leader.replication.throttled.replicas", Some("0:1, 1:1"), true),
            ("leader.replication.throttled.replicas", Some("0"), false),
            ("leader.replication.throttled.replicas", Some(""), true),
            ("message.format.version", Some("2.8"), true),
            ("retention.ms", None, false),
            ("flux.capacitor", Some("1"), false),
        ];
        for (name, value, ok) in cases {
            assert_eq!(validate(name, *value).is_ok(), *ok, "{name}={value:?}");
        }
        assert_eq!(validate("flux.capacitor", Some("1")), Err(ConfigError::Unknown("flux.capacitor".into())));
    }

    #[test]
    fn values_are_stored_without_ignored_whitespace() {
        assert_eq!(canonical("cleanup.policy", " compact , delete "), "compact,delete");
        assert_eq!(canonical("retention.ms", " 5 "), "5");
    }

    #[test]
    fn compaction_lags_are_checked_together() {
        let topic: BTreeMap<String, String> =
            [("min.compaction.lag.ms", "10"), ("max.compaction.lag.ms", "5")].map(|(k, v)| (k.to_string(), v.to_string())).into();
        assert!(matches!(validate_together(&topic, &BrokerDefaults::default()), Err(ConfigError::Conflict(_))));
        assert_eq!(validate_together(&BTreeMap::new(), &BrokerDefaults::default()), Ok(()));
    }

    #[test]
    fn the_table_is_in_name_order_and_defaults_are_valid() {
        assert!(TOPIC_CONFIGS.windows(2).all(|w| w[0].name < w[1].name));
        for def in TOPIC_CONFIGS {
            assert_eq!(check(def, def.default), Ok(()), "{}", def.name);
        }
    }

    #[test]
    fn sources_prefer_topic_then_broker_then_default() {
        let def = find("retention.ms").unwrap();
        let mut topic = BTreeMap::new();
        let mut broker = BrokerDefaults::default();
        assert_eq!(resolve(def, &topic, &broker), ("604800000", ConfigSource::Default));
        broker.static_broker.insert("retention.ms".to_string(), "1000".to_string());
        assert_eq!(resolve(def, &topic, &broker), ("1000", ConfigSource::StaticBroker));
        broker.dynamic_cluster.insert("retention.ms".to_string(), "2000".to_string());
        assert_eq!(resolve(def, &topic, &broker), ("2000", ConfigSource::DynamicDefaultBroker));
        broker.dynamic_broker.insert("retention.ms".to_string(), "3000".to_string());
        assert_eq!(resolve(def, &topic, &broker), ("3000", ConfigSource::DynamicBroker));
        topic.insert("retention.ms".to_string(), "5".to_string());
        assert_eq!(resolve(def, &topic, &broker), ("5", ConfigSource::Topic));
        assert_eq!(TopicSettings::resolve(&topic, &broker).log.retention_ms, 5);
    }

    #[test]
    fn the_deprecated_timestamp_bound_stands_in_for_both() {
        let none = BrokerDefaults::default();
        let defaults = TopicSettings::resolve(&BTreeMap::new(), &none);
        assert_eq!((defaults.timestamp_before_max_ms, defaults.timestamp_after_max_ms), (i64::MAX, 3_600_000));
        let old: BTreeMap<String, String> = [("message.timestamp.difference.max.ms".to_string(), "5000".to_string())].into();
        let settings = TopicSettings::resolve(&old, &none);
        assert_eq!((settings.timestamp_before_max_ms, settings.timestamp_after_max_ms), (5000, 5000));
        let mut both = old.clone();
        both.insert("message.timestamp.after.max.ms".to_string(), "7".to_string());
        let settings = TopicSettings::resolve(&both, &none);
        assert_eq!((settings.timestamp_before_max_ms, settings.timestamp_after_max_ms), (i64::MAX, 7));
    }

    #[test]
    fn synonyms_start_from_the_primary_broker_setting() {
        let none = BTreeMap::new();
        let no_broker = BrokerDefaults::default();
        assert_eq!(synonyms(find("retention.ms").unwrap(), &none, &no_broker), vec![]);
        let broker = BrokerDefaults::from_static([("retention.ms".to_string(), "1000".to_string())].into());
        assert_eq!(
            synonyms(find("retention.ms").unwrap(), &none, &broker),
            vec![
                ("log.retention.ms".to_string(), "1000".to_string(), ConfigSource::StaticBroker),
                ("log.retention.hours".to_string(), "168".to_string(), ConfigSource::Default)
            ]
        );
        assert_eq!(
            synonyms(find("segment.bytes").unwrap(), &none, &no_broker),
            vec![("log.segment.bytes".to_string(), "1073741824".to_string(), ConfigSource::Default)]
        );
    }
}
