//! OffsetCommit: checked by the coordinator, made durable in
//! `__consumer_offsets`, then applied.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use runnel_coordinator::{CommittedOffset, OffsetKey};

use super::non_empty;
use crate::error::{group_code, KafkaError};
use crate::groups::OFFSETS_TOPIC;
use crate::request::RequestContext;
use crate::state::now_ms;

pub async fn handle(ctx: &RequestContext<'_>, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    let instance = non_empty(request.group_instance_id.as_ref());
    let member_id = request.member_id.to_string();
    let generation = if ctx.api_version >= 1 { request.generation_id_or_member_epoch } else { -1 };
    let group_error = ctx.state.groups.with(|c, now| c.validate_commit(now, &group_id, generation, &member_id, instance.as_deref())).err();
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
                let code = if let Some(e) = group_error {
                    group_code(Some(e))
                } else if known.as_ref().and_then(|t| t.partition(p.partition_index)).is_none() {
                    ResponseError::UnknownTopicOrPartition.code()
                } else {
                    let metadata = p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default();
                    match ctx.state.groups.with(|c, _| c.validate_metadata(&metadata)) {
                        Err(e) => group_code(Some(e)),
                        Ok(()) => {
                            let leader_epoch = if ctx.api_version >= 6 { p.committed_leader_epoch } else { -1 };
                            accepted.push((
                                (name.clone(), p.partition_index),
                                CommittedOffset { offset: p.committed_offset, leader_epoch, metadata, commit_timestamp: now },
                            ));
                            0
                        }
                    }
                };
                OffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code)
            })
            .collect();
        topics.push(OffsetCommitResponseTopic::default().with_name(topic.name.clone()).with_partitions(partitions));
    }
    if !accepted.is_empty() {
        let records = accepted
            .iter()
            .map(|((topic, partition), value)| {
                (OffsetKey { group: group_id.clone(), topic: topic.clone(), partition: *partition }.encode(), Some(value.encode()))
            })
            .collect();
        if let Err(e) = ctx.state.append_internal(OFFSETS_TOPIC, records).await {
            let code = KafkaError::from(&e).code();
            tracing::error!(group = %group_id, error = %e, "could not store committed offsets");
            for topic in &mut topics {
                for partition in &mut topic.partitions {
                    if partition.error_code == 0 {
                        partition.error_code = code;
                    }
                }
            }
            return OffsetCommitResponse::default().with_topics(topics);
        }
        ctx.state.groups.with(|c, now| c.apply_offsets(now, &group_id, accepted));
    }
    OffsetCommitResponse::default().with_topics(topics)
}
