//! TxnOffsetCommit: a transactional producer commits a consumer group's
//! offsets inside its transaction. They are stored in `__consumer_offsets`
//! as part of the transaction and take effect only when its COMMIT marker
//! is written (exactly-once consume-transform-produce).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use runnel_coordinator::{CommittedOffset, OffsetKey};

use super::add_offsets_to_txn::OFFSETS_PARTITION;
use super::non_empty;
use crate::error::{group_code, txn_error, KafkaError};
use crate::groups::OFFSETS_TOPIC;
use crate::request::RequestContext;
use crate::state::now_ms;

/// From this version a fenced producer is told PRODUCER_FENCED.
const FENCED_FROM_VERSION: i16 = 3;

pub async fn handle(ctx: &RequestContext<'_>, request: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    let transactional_id = request.transactional_id.0.to_string();
    let (producer_id, epoch) = (request.producer_id.0, request.producer_epoch);
    let offsets_partition = (OFFSETS_TOPIC.to_string(), OFFSETS_PARTITION);
    let txn_error_code = ctx
        .state
        .txns
        .with(|c, _| c.verify_partition(&transactional_id, producer_id, epoch, &offsets_partition))
        .err()
        .map(|e| txn_error(e, ctx.api_version, FENCED_FROM_VERSION).code());
    let instance = non_empty(request.group_instance_id.as_ref());
    let member_id = request.member_id.to_string();
    let group_error = match txn_error_code {
        Some(code) => Some(code),
        None => ctx
            .state
            .groups
            .with(|c, now| c.validate_commit(now, &group_id, request.generation_id, &member_id, instance.as_deref()))
            .err()
            .map(|e| group_code(Some(e))),
    };
    let now = now_ms();
    let mut accepted = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let known = ctx.state.topic(&name);
        let partitions = topic
            .partitions
            .iter()
            .map(|p| {
                let metadata = p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default();
                let code = if let Some(code) = group_error {
                    code
                } else if known.as_ref().and_then(|t| t.partition(p.partition_index)).is_none() {
                    ResponseError::UnknownTopicOrPartition.code()
                } else if let Err(e) = ctx.state.groups.with(|c, _| c.validate_metadata(&metadata)) {
                    group_code(Some(e))
                } else {
                    let leader_epoch = if ctx.api_version >= 2 { p.committed_leader_epoch } else { -1 };
                    let value = CommittedOffset { offset: p.committed_offset, leader_epoch, metadata, commit_timestamp: now };
                    accepted.push(((name.clone(), p.partition_index), value));
                    0
                };
                TxnOffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code)
            })
            .collect();
        topics.push(TxnOffsetCommitResponseTopic::default().with_name(topic.name.clone()).with_partitions(partitions));
    }
    if accepted.is_empty() {
        return TxnOffsetCommitResponse::default().with_topics(topics);
    }
    let records = accepted
        .iter()
        .map(|((topic, partition), value)| (OffsetKey { group: group_id.clone(), topic: topic.clone(), partition: *partition }.encode(), Some(value.encode())))
        .collect();
    if let Err(e) = ctx.state.append_internal_as(OFFSETS_TOPIC, records, Some((producer_id, epoch))).await {
        let code = KafkaError::from(&e).code();
        tracing::error!(group = %group_id, error = %e, "could not store transactional offsets");
        for partition in topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
            if partition.error_code == 0 {
                partition.error_code = code;
            }
        }
        return TxnOffsetCommitResponse::default().with_topics(topics);
    }
    ctx.state.groups.with(|c, _| c.stage_txn_offsets(producer_id, &group_id, accepted));
    TxnOffsetCommitResponse::default().with_topics(topics)
}
