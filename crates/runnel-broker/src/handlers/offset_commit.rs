//! OffsetCommit: checked by the coordinator, made durable in
//! `__consumer_offsets`, then applied. [`store`] is shared with
//! TxnOffsetCommit, which stores the same records inside a transaction.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use runnel_coordinator::{CommittedOffset, OffsetKey};

use super::non_empty;
use crate::error::{group_code, KafkaError};
use crate::groups::OFFSETS_TOPIC;
use crate::request::RequestContext;
use crate::state::now_ms;

/// One partition's offset as a commit request carries it.
pub(crate) struct PartitionCommit {
    pub index: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

/// The `(topic, partitions)` of a commit request's topics. OffsetCommit and
/// TxnOffsetCommit have distinct types with the same fields; the leader
/// epoch counts from `$epoch_from`.
macro_rules! partition_commits {
    ($topics:expr, $version:expr, $epoch_from:expr) => {
        $topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| $crate::handlers::offset_commit::PartitionCommit {
                        index: p.partition_index,
                        offset: p.committed_offset,
                        leader_epoch: if $version >= $epoch_from { p.committed_leader_epoch } else { -1 },
                        metadata: p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default(),
                    })
                    .collect();
                (t.name.0.to_string(), partitions)
            })
            .collect()
    };
}
pub(crate) use partition_commits;

/// A commit response's topics from the request's and each partition's
/// error code, for either API's response types.
macro_rules! commit_results {
    ($topic_ty:ty, $partition_ty:ty, $topics:expr, $codes:expr) => {
        $topics
            .into_iter()
            .zip($codes)
            .map(|(t, codes)| {
                let partitions = t
                    .partitions
                    .iter()
                    .zip(codes)
                    .map(|(p, code)| <$partition_ty>::default().with_partition_index(p.partition_index).with_error_code(code))
                    .collect();
                <$topic_ty>::default().with_name(t.name).with_partitions(partitions)
            })
            .collect()
    };
}
pub(crate) use commit_results;

/// Judges and stores a commit's offsets. `refused` (a group or transaction
/// error) applies to every partition; otherwise unknown partitions and
/// oversized metadata are refused one by one. The rest are appended to
/// `__consumer_offsets`, inside the transaction `(producer id, epoch)` if
/// one is given. Returns each partition's error code, in request order,
/// and the offsets that were stored.
pub(crate) async fn store(
    ctx: &RequestContext<'_>,
    group_id: &str,
    refused: Option<i16>,
    topics: Vec<(String, Vec<PartitionCommit>)>,
    transaction: Option<(i64, i16)>,
) -> (Vec<Vec<i16>>, Vec<((String, i32), CommittedOffset)>) {
    let now = now_ms();
    let mut accepted = Vec::new();
    let mut codes: Vec<Vec<i16>> = topics
        .into_iter()
        .map(|(name, partitions)| {
            let known = ctx.state.topic(&name);
            partitions
                .into_iter()
                .map(|p| {
                    if let Some(code) = refused {
                        return code;
                    }
                    if known.as_ref().and_then(|t| t.partition(p.index)).is_none() {
                        return ResponseError::UnknownTopicOrPartition.code();
                    }
                    if let Err(e) = ctx.state.groups.with(|c, _| c.validate_metadata(&p.metadata)) {
                        return group_code(Some(e));
                    }
                    let value = CommittedOffset { offset: p.offset, leader_epoch: p.leader_epoch, metadata: p.metadata, commit_timestamp: now };
                    accepted.push(((name.clone(), p.index), value));
                    0
                })
                .collect()
        })
        .collect();
    if accepted.is_empty() {
        return (codes, accepted);
    }
    let records = accepted
        .iter()
        .map(|((topic, partition), value)| {
            (OffsetKey { group: group_id.to_string(), topic: topic.clone(), partition: *partition }.encode(), Some(value.encode()))
        })
        .collect();
    if let Err(e) = ctx.state.append_internal_as(OFFSETS_TOPIC, records, transaction).await {
        let code = KafkaError::from(&e).code();
        tracing::error!(group = %group_id, error = %e, "could not store committed offsets");
        for stored in codes.iter_mut().flatten().filter(|c| **c == 0) {
            *stored = code;
        }
        return (codes, Vec::new());
    }
    (codes, accepted)
}

pub async fn handle(ctx: &RequestContext<'_>, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    let instance = non_empty(request.group_instance_id.as_ref());
    let member_id = request.member_id.to_string();
    let generation = if ctx.api_version >= 1 { request.generation_id_or_member_epoch } else { -1 };
    let refused =
        ctx.state.groups.with(|c, now| c.validate_commit(now, &group_id, generation, &member_id, instance.as_deref())).err().map(|e| group_code(Some(e)));
    let commits = partition_commits!(request.topics, ctx.api_version, 6);
    let (codes, stored) = store(ctx, &group_id, refused, commits, None).await;
    if !stored.is_empty() {
        ctx.state.groups.with(|c, now| c.apply_offsets(now, &group_id, stored));
    }
    let topics = commit_results!(OffsetCommitResponseTopic, OffsetCommitResponsePartition, request.topics, codes);
    OffsetCommitResponse::default().with_topics(topics)
}
