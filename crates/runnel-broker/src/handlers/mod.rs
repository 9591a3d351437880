//! One file per Kafka API. Each handler turns a decoded request into a
//! decoded response using `BrokerState`; none touches the socket.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_producers;
pub mod describe_transactions;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;
pub mod txn_offset_commit;

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub(crate) fn topic_name(s: impl Into<String>) -> TopicName {
    TopicName(str_bytes(s))
}

/// Every partition's leader epoch: a single broker has led each partition
/// since it was created, in epoch 0.
pub(crate) const LEADER_EPOCH: i32 = 0;

/// Checks a request's `current_leader_epoch` as a partition leader does:
/// -1 skips the check, a newer epoch than the leader's is unknown to it,
/// and an older one comes from a fenced client.
pub(crate) fn check_current_leader_epoch(current: i32) -> Result<(), kafka_protocol::error::ResponseError> {
    use kafka_protocol::error::ResponseError;
    match current {
        -1 | LEADER_EPOCH => Ok(()),
        newer if newer > LEADER_EPOCH => Err(ResponseError::UnknownLeaderEpoch),
        _ => Err(ResponseError::FencedLeaderEpoch),
    }
}

/// The keys that occur more than once. As Apache Kafka does, admin
/// requests answer such a key once, with INVALID_REQUEST, and act on the
/// rest.
pub(crate) fn repeated<K: Ord + Clone>(keys: impl IntoIterator<Item = K>) -> std::collections::BTreeSet<K> {
    let mut seen = std::collections::BTreeSet::new();
    keys.into_iter().filter(|key| !seen.insert(key.clone())).collect()
}

/// Sentinel for "authorized operations not requested".
pub(crate) const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// Bit sets of Kafka's ACL operations (bit n for operation code n). With
/// no authorizer, as Apache Kafka does, a client may do everything a
/// resource type supports.
pub(crate) mod operations {
    const READ: i32 = 1 << 3;
    const WRITE: i32 = 1 << 4;
    const CREATE: i32 = 1 << 5;
    const DELETE: i32 = 1 << 6;
    const ALTER: i32 = 1 << 7;
    const DESCRIBE: i32 = 1 << 8;
    const CLUSTER_ACTION: i32 = 1 << 9;
    const DESCRIBE_CONFIGS: i32 = 1 << 10;
    const ALTER_CONFIGS: i32 = 1 << 11;
    const IDEMPOTENT_WRITE: i32 = 1 << 12;

    pub const TOPIC: i32 = READ | WRITE | CREATE | DELETE | ALTER | DESCRIBE | DESCRIBE_CONFIGS | ALTER_CONFIGS;
    pub const CLUSTER: i32 = CREATE | ALTER | DESCRIBE | CLUSTER_ACTION | DESCRIBE_CONFIGS | ALTER_CONFIGS | IDEMPOTENT_WRITE;
    pub const GROUP: i32 = READ | DELETE | DESCRIBE | DESCRIBE_CONFIGS | ALTER_CONFIGS;

    /// `all` when the client asked for its authorized operations.
    pub fn if_requested(requested: bool, all: i32) -> i32 {
        if requested {
            all
        } else {
            super::AUTHORIZED_OPERATIONS_OMITTED
        }
    }
}

/// A topic named by a config resource: an invalid name is an invalid
/// request, as Apache Kafka answers, before any lookup.
pub(crate) fn check_config_topic_name(name: &str) -> Result<(), crate::error::KafkaError> {
    crate::state::validate_topic_name(name)
        .map_err(|_| crate::error::KafkaError::new(kafka_protocol::error::ResponseError::InvalidRequest, format!("`{name}` is not a valid topic name")))
}

/// `None` for an absent or empty string, as Kafka treats optional ids.
pub(crate) fn non_empty(s: Option<&kafka_protocol::protocol::StrBytes>) -> Option<String> {
    s.map(|s| s.to_string()).filter(|s| !s.is_empty())
}
