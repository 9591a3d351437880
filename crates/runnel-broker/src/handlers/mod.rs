//! One file per Kafka API. Each handler turns a decoded request into a
//! decoded response using `BrokerState`; none touches the socket.

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
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;

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

/// Sentinel for "authorized operations not requested".
pub(crate) const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// `None` for an absent or empty string, as Kafka treats optional ids.
pub(crate) fn non_empty(s: Option<&kafka_protocol::protocol::StrBytes>) -> Option<String> {
    s.map(|s| s.to_string()).filter(|s| !s.is_empty())
}
