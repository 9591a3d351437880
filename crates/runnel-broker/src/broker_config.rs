//! Broker configs that change at runtime, as Apache Kafka's dynamic broker
//! configs: IncrementalAlterConfigs and AlterConfigs on the BROKER
//! resource set them cluster-wide (resource name "") or for this broker
//! (its node id). They are made durable in `dynamic-configs.json` and take
//! effect at once: topic defaults for every topic that does not override
//! them, group settings for the next group request.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::topic_config::{self, BrokerDefaults, ConfigDef, TOPIC_CONFIGS};

/// The group coordinator's settings that may change at runtime.
pub const GROUP_SETTINGS: [&str; 4] =
    ["group.initial.rebalance.delay.ms", "group.min.session.timeout.ms", "group.max.session.timeout.ms", "offsets.retention.minutes"];

const FILE: &str = "dynamic-configs.json";

/// What a broker config name means when set at runtime.
#[derive(Debug, Clone, Copy)]
pub enum DynamicConfig {
    /// The broker-wide default of a topic config (`log.retention.ms` for
    /// `retention.ms`, `message.max.bytes` for `max.message.bytes`).
    TopicDefault(&'static ConfigDef),
    /// One of [`GROUP_SETTINGS`].
    Group(&'static str),
}

impl DynamicConfig {
    /// The dynamic config of that broker name, if it may change at runtime.
    pub fn find(name: &str) -> Option<DynamicConfig> {
        if let Some(def) = TOPIC_CONFIGS.iter().find(|def| def.listed() && def.broker_name() == name && def.broker_name() != def.name) {
            return Some(DynamicConfig::TopicDefault(def));
        }
        GROUP_SETTINGS.iter().find(|g| **g == name).map(|g| DynamicConfig::Group(g))
    }

    /// Checks a value as the config's own rules do.
    pub fn validate(self, value: &str) -> Result<(), String> {
        match self {
            DynamicConfig::TopicDefault(def) => topic_config::validate(def.name, Some(value)).map_err(|e| e.to_string()),
            DynamicConfig::Group(name) => match value.trim().parse::<i32>() {
                Ok(n) if n >= 0 && (n >= 1 || name == "group.initial.rebalance.delay.ms") => Ok(()),
                _ => Err(format!("`{name}` must be a positive 32-bit integer, got `{value}`")),
            },
        }
    }
}

/// Why a change to broker configs was refused.
#[derive(Debug, thiserror::Error)]
pub enum BrokerConfigError {
    #[error("these configs cannot change while the broker runs: {}; set them in runnel's config file or flags and restart", .0.join(", "))]
    NotDynamic(Vec<String>),
    #[error("invalid value for `{name}`: {reason}")]
    Invalid { name: String, reason: String },
    #[error("could not store dynamic configs: {0}")]
    Io(#[from] io::Error),
}

/// Which dynamic layer a change is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every broker of the cluster (resource name "").
    Cluster,
    /// This broker alone (its node id).
    Broker,
}

/// The runtime values of both layers, by broker config name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicConfigs {
    #[serde(default)]
    pub cluster: BTreeMap<String, String>,
    #[serde(default)]
    pub broker: BTreeMap<String, String>,
}

impl DynamicConfigs {
    /// Reads the durable values; none when the file does not exist.
    pub fn load(data_dir: &Path) -> io::Result<DynamicConfigs> {
        match std::fs::read(data_dir.join(FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(DynamicConfigs::default()),
            Err(e) => Err(e),
        }
    }

    /// Makes the values durable, replacing the file atomically.
    pub fn save(&self, data_dir: &Path) -> io::Result<()> {
        crate::state::write_atomically(&data_dir.join(FILE), &serde_json::to_vec_pretty(self).map_err(io::Error::other)?)
    }

    pub fn layer(&self, scope: Scope) -> &BTreeMap<String, String> {
        match scope {
            Scope::Cluster => &self.cluster,
            Scope::Broker => &self.broker,
        }
    }

    pub fn layer_mut(&mut self, scope: Scope) -> &mut BTreeMap<String, String> {
        match scope {
            Scope::Cluster => &mut self.cluster,
            Scope::Broker => &mut self.broker,
        }
    }

    /// The defaults topic configs fall back to: these runtime values over
    /// the static ones (keyed by topic config name).
    pub fn topic_defaults(&self, static_broker: &BTreeMap<String, String>) -> BrokerDefaults {
        let by_topic_name = |layer: &BTreeMap<String, String>| {
            layer
                .iter()
                .filter_map(|(name, value)| match DynamicConfig::find(name) {
                    Some(DynamicConfig::TopicDefault(def)) => Some((def.name.to_string(), value.clone())),
                    _ => None,
                })
                .collect()
        };
        BrokerDefaults { dynamic_broker: by_topic_name(&self.broker), dynamic_cluster: by_topic_name(&self.cluster), static_broker: static_broker.clone() }
    }

    /// The runtime value of a group setting, this broker's before the
    /// cluster's, with the layer it came from.
    pub fn group_setting(&self, name: &str) -> Option<(i64, Scope)> {
        [(&self.broker, Scope::Broker), (&self.cluster, Scope::Cluster)]
            .into_iter()
            .find_map(|(layer, scope)| layer.get(name).and_then(|v| v.trim().parse().ok()).map(|v| (v, scope)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_topic_defaults_and_group_settings_change_at_runtime() {
        assert!(matches!(DynamicConfig::find("log.retention.ms"), Some(DynamicConfig::TopicDefault(def)) if def.name == "retention.ms"));
        assert!(matches!(DynamicConfig::find("message.max.bytes"), Some(DynamicConfig::TopicDefault(def)) if def.name == "max.message.bytes"));
        assert!(matches!(DynamicConfig::find("group.initial.rebalance.delay.ms"), Some(DynamicConfig::Group(_))));
        for fixed in ["node.id", "log.dirs", "retention.ms", "listeners"] {
            assert!(DynamicConfig::find(fixed).is_none(), "{fixed}");
        }
        assert!(DynamicConfig::find("log.retention.ms").unwrap().validate("soon").is_err());
        assert!(DynamicConfig::find("group.min.session.timeout.ms").unwrap().validate("0").is_err());
    }

    #[test]
    fn broker_values_come_before_cluster_values() {
        let mut configs = DynamicConfigs::default();
        configs.cluster.insert("log.retention.ms".into(), "1000".into());
        configs.broker.insert("log.retention.ms".into(), "2000".into());
        configs.cluster.insert("group.initial.rebalance.delay.ms".into(), "3000".into());
        let defaults = configs.topic_defaults(&BTreeMap::new());
        assert_eq!(defaults.values("retention.ms").map(|(v, _)| v.as_str()).collect::<Vec<_>>(), ["2000", "1000"]);
        assert_eq!(configs.group_setting("group.initial.rebalance.delay.ms"), Some((3000, Scope::Cluster)));
    }
}
