//! Topic configs: the names runnel understands, their defaults, validation
//! and how an effective value and its DescribeConfigs source are resolved.
//! Pure: no I/O.

use std::collections::BTreeMap;

use runnel_log::LogConfig;

/// Where an effective config value came from, as DescribeConfigs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigSource {
    Topic = 1,
    StaticBroker = 4,
    Default = 5,
}

/// DescribeConfigs' `config_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    List = 7,
}

/// One supported topic config.
#[derive(Debug)]
pub struct ConfigDef {
    pub name: &'static str,
    /// The broker-level name of the same setting (`log.retention.ms`).
    pub broker_name: &'static str,
    pub default: &'static str,
    pub config_type: ConfigType,
    pub doc: &'static str,
    validate: fn(&str) -> Result<(), String>,
}

/// Every topic config runnel accepts. Anything else is INVALID_CONFIG.
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    ConfigDef {
        name: "cleanup.policy",
        broker_name: "log.cleanup.policy",
        default: "delete",
        config_type: ConfigType::List,
        doc: "delete and/or compact old segments",
        validate: validate_cleanup_policy,
    },
    ConfigDef {
        name: "max.message.bytes",
        broker_name: "message.max.bytes",
        default: "1048588",
        config_type: ConfigType::Int,
        doc: "largest record batch accepted",
        validate: |v| int_at_least(v, 0),
    },
    ConfigDef {
        name: "message.timestamp.type",
        broker_name: "log.message.timestamp.type",
        default: "CreateTime",
        config_type: ConfigType::String,
        doc: "CreateTime keeps the producer's timestamp, LogAppendTime stamps the broker's",
        validate: validate_timestamp_type,
    },
    ConfigDef {
        name: "min.insync.replicas",
        broker_name: "min.insync.replicas",
        default: "1",
        config_type: ConfigType::Int,
        doc: "replicas that must acknowledge an acks=all write",
        validate: |v| int_at_least(v, 1),
    },
    ConfigDef {
        name: "retention.bytes",
        broker_name: "log.retention.bytes",
        default: "-1",
        config_type: ConfigType::Long,
        doc: "size above which old segments are deleted; -1 for none",
        validate: |v| long_at_least(v, -1),
    },
    ConfigDef {
        name: "retention.ms",
        broker_name: "log.retention.ms",
        default: "604800000",
        config_type: ConfigType::Long,
        doc: "age after which old segments are deleted; -1 for never",
        validate: |v| long_at_least(v, -1),
    },
    ConfigDef {
        name: "segment.bytes",
        broker_name: "log.segment.bytes",
        default: "1073741824",
        config_type: ConfigType::Int,
        doc: "size at which a new segment is started",
        validate: |v| int_at_least(v, 14),
    },
    ConfigDef {
        name: "segment.ms",
        broker_name: "log.roll.ms",
        default: "604800000",
        config_type: ConfigType::Long,
        doc: "age at which a new segment is started",
        validate: |v| long_at_least(v, 1),
    },
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
}

pub fn find(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks a topic-level override.
pub fn validate(name: &str, value: Option<&str>) -> Result<(), ConfigError> {
    let def = find(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
    let value = value.ok_or_else(|| ConfigError::Missing(name.to_string()))?;
    (def.validate)(value).map_err(|reason| ConfigError::Invalid { name: name.to_string(), value: value.to_string(), reason })
}

/// The effective value of `def` and where it came from.
pub fn resolve<'a>(def: &'a ConfigDef, topic: &'a BTreeMap<String, String>, broker: &'a BTreeMap<String, String>) -> (&'a str, ConfigSource) {
    if let Some(v) = topic.get(def.name) {
        (v, ConfigSource::Topic)
    } else if let Some(v) = broker.get(def.name) {
        (v, ConfigSource::StaticBroker)
    } else {
        (def.default, ConfigSource::Default)
    }
}

/// Topic configs turned into the values the broker and the log act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSettings {
    pub log: LogConfig,
    pub max_message_bytes: usize,
    pub log_append_time: bool,
    /// Replicas an `acks=all` write needs; this broker is the only one.
    pub min_insync_replicas: i64,
}

impl TopicSettings {
    /// Resolves every config; values were validated when stored.
    pub fn resolve(topic: &BTreeMap<String, String>, broker: &BTreeMap<String, String>) -> TopicSettings {
        let get = |name: &str| resolve(find(name).expect("known config"), topic, broker).0.to_string();
        let long = |name: &str| get(name).parse::<i64>().unwrap_or_default();
        TopicSettings {
            log: LogConfig {
                segment_bytes: long("segment.bytes") as u64,
                segment_ms: long("segment.ms"),
                retention_ms: long("retention.ms"),
                retention_bytes: long("retention.bytes"),
                ..LogConfig::default()
            },
            max_message_bytes: long("max.message.bytes") as usize,
            log_append_time: get("message.timestamp.type") == "LogAppendTime",
            min_insync_replicas: long("min.insync.replicas"),
        }
    }
}

fn int_at_least(value: &str, min: i64) -> Result<(), String> {
    let v: i32 = value.trim().parse().map_err(|_| "not a 32-bit integer".to_string())?;
    if (v as i64) < min {
        return Err(format!("must be at least {min}"));
    }
    Ok(())
}

fn long_at_least(value: &str, min: i64) -> Result<(), String> {
    let v: i64 = value.trim().parse().map_err(|_| "not a 64-bit integer".to_string())?;
    if v < min {
        return Err(format!("must be at least {min}"));
    }
    Ok(())
}

fn validate_cleanup_policy(value: &str) -> Result<(), String> {
    let ok = value.split(',').map(str::trim).all(|p| p == "delete" || p == "compact");
    if ok && !value.trim().is_empty() {
        Ok(())
    } else {
        Err("must be a list of `delete` and `compact`".to_string())
    }
}

fn validate_timestamp_type(value: &str) -> Result<(), String> {
    match value {
        "CreateTime" | "LogAppendTime" => Ok(()),
        _ => Err("must be CreateTime or LogAppendTime".to_string()),
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
            ("segment.bytes", Some("13"), false),
            ("segment.bytes", Some("1048576"), true),
            ("segment.ms", Some("0"), false),
            ("cleanup.policy", Some("compact,delete"), true),
            ("cleanup.policy", Some("shred"), false),
            ("message.timestamp.type", Some("LogAppendTime"), true),
            ("message.timestamp.type", Some("Now"), false),
            ("min.insync.replicas", Some("0"), false),
            ("max.message.bytes", Some("2000000"), true),
            ("retention.ms", None, false),
            ("flux.capacitor", Some("1"), false),
        ];
        for (name, value, ok) in cases {
            assert_eq!(validate(name, *value).is_ok(), *ok, "{name}={value:?}");
        }
        assert_eq!(validate("flux.capacitor", Some("1")), Err(ConfigError::Unknown("flux.capacitor".into())));
    }

    #[test]
    fn sources_prefer_topic_then_broker_then_default() {
        let def = find("retention.ms").unwrap();
        let mut topic = BTreeMap::new();
        let mut broker = BTreeMap::new();
        assert_eq!(resolve(def, &topic, &broker), ("604800000", ConfigSource::Default));
        broker.insert("retention.ms".to_string(), "1000".to_string());
        assert_eq!(resolve(def, &topic, &broker), ("1000", ConfigSource::StaticBroker));
        topic.insert("retention.ms".to_string(), "5".to_string());
        assert_eq!(resolve(def, &topic, &broker), ("5", ConfigSource::Topic));
        assert_eq!(TopicSettings::resolve(&topic, &broker).log.retention_ms, 5);
    }
}
