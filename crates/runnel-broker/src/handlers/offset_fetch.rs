//! OffsetFetch: one group (v0–7) or several (v8+); partitions without a
//! commit answer offset -1. With `require_stable` (v7+, sent by
//! read_committed consumers), a partition whose offset an open transaction
//! is committing answers UNSTABLE_OFFSET_COMMIT, and the client retries.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use runnel_coordinator::CommittedOffset;

use super::{str_bytes, topic_name};
use crate::error::group_code;
use crate::request::RequestContext;

/// A partition's answer: its committed offset, if any, or an error code.
type Found = Result<Option<CommittedOffset>, i16>;

/// `(topic, [(partition, found)])` for the requested partitions, or for
/// everything committed when `topics` is `None`.
type Fetched = Vec<(TopicName, Vec<(i32, Found)>)>;

fn fetch(ctx: &RequestContext<'_>, group_id: &str, topics: Option<Vec<(TopicName, Vec<i32>)>>, require_stable: bool) -> Result<Fetched, i16> {
    ctx.state.groups.with(|c, _| c.validate_group_id(group_id)).map_err(|e| group_code(Some(e)))?;
    let committed: BTreeMap<(String, i32), CommittedOffset> = ctx.state.groups.with(|c, _| c.committed(group_id)).into_iter().collect();
    let unstable = |topic: &str, partition: i32| require_stable && ctx.state.groups.with(|c, _| c.has_pending_txn_offset(group_id, topic, partition));
    Ok(match topics {
        Some(topics) => topics
            .into_iter()
            .map(|(name, partitions)| {
                let found = partitions
                    .into_iter()
                    .map(|p| {
                        let found = if unstable(&name.0, p) {
                            Err(ResponseError::UnstableOffsetCommit.code())
                        } else {
                            Ok(committed.get(&(name.0.to_string(), p)).cloned())
                        };
                        (p, found)
                    })
                    .collect();
                (name, found)
            })
            .collect(),
        None => {
            let mut by_topic: BTreeMap<String, Vec<(i32, Found)>> = BTreeMap::new();
            for ((topic, partition), value) in committed {
                let found = if unstable(&topic, partition) { Err(ResponseError::UnstableOffsetCommit.code()) } else { Ok(Some(value)) };
                by_topic.entry(topic).or_default().push((partition, found));
            }
            by_topic.into_iter().map(|(t, ps)| (topic_name(t), ps)).collect()
        }
    })
}

/// The v0–7 and v8+ layouts have distinct partition types with the same
/// fields; this fills either.
macro_rules! partition_result {
    ($ty:ty, $partition:expr, $found:expr, $version:expr) => {{
        let found: Found = $found;
        let error_code = found.as_ref().err().copied().unwrap_or(0);
        let committed = found.unwrap_or(None);
        <$ty>::default()
            .with_error_code(error_code)
            .with_partition_index($partition)
            .with_committed_offset(committed.as_ref().map_or(-1, |c| c.offset))
            .with_committed_leader_epoch(if $version >= 5 { committed.as_ref().map_or(-1, |c| c.leader_epoch) } else { -1 })
            .with_metadata(Some(str_bytes(committed.map(|c| c.metadata).unwrap_or_default())))
    }};
}

pub fn handle(ctx: &RequestContext<'_>, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let version = ctx.api_version;
    if version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|g| {
                let topics = g.topics.map(|ts| ts.into_iter().map(|t| (t.name, t.partition_indexes)).collect());
                let response = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                match fetch(ctx, &g.group_id.0, topics, request.require_stable) {
                    Err(code) => response.with_error_code(code),
                    Ok(found) => response.with_topics(
                        found
                            .into_iter()
                            .map(|(name, partitions)| {
                                let partitions = partitions.into_iter().map(|(p, c)| partition_result!(OffsetFetchResponsePartitions, p, c, version)).collect();
                                OffsetFetchResponseTopics::default().with_name(name).with_partitions(partitions)
                            })
                            .collect(),
                    ),
                }
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let group_id: GroupId = request.group_id;
    let topics = request.topics.map(|ts| ts.into_iter().map(|t| (t.name, t.partition_indexes)).collect());
    match fetch(ctx, &group_id.0, topics, version >= 7 && request.require_stable) {
        Err(code) if version >= 2 => OffsetFetchResponse::default().with_error_code(code),
        Err(_) => OffsetFetchResponse::default(),
        Ok(found) => OffsetFetchResponse::default().with_topics(
            found
                .into_iter()
                .map(|(name, partitions)| {
                    let partitions = partitions.into_iter().map(|(p, c)| partition_result!(OffsetFetchResponsePartition, p, c, version)).collect();
                    OffsetFetchResponseTopic::default().with_name(name).with_partitions(partitions)
                })
                .collect(),
        ),
    }
}
