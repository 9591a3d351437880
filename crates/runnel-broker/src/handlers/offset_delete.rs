//! OffsetDelete: drop a group's offsets for topics it no longer consumes.

use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_protocol::ResponseError;
use runnel_coordinator::OffsetKey;

use crate::error::{group_code, KafkaError};
use crate::groups::OFFSETS_TOPIC;
use crate::request::RequestContext;

pub async fn handle(ctx: &RequestContext<'_>, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group_id = request.group_id.0.to_string();
    // Partitions that do not exist are answered before the group is asked,
    // as Apache Kafka does.
    let exists = |topic: &str, partition: i32| ctx.state.topic(topic).is_some_and(|t| usize::try_from(partition).is_ok_and(|p| p < t.partition_count()));
    let wanted: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), p.partition_index)))
        .filter(|(topic, partition)| exists(topic, *partition))
        .collect();
    let verdicts = match ctx.state.groups.with(|c, _| c.delete_offsets(&group_id, &wanted)) {
        Err(e) => return OffsetDeleteResponse::default().with_error_code(group_code(Some(e))),
        Ok(verdicts) => verdicts,
    };
    let tombstones = wanted
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| v.is_ok())
        .map(|((topic, partition), _)| (OffsetKey { group: group_id.clone(), topic: topic.clone(), partition: *partition }.encode(), None))
        .collect();
    if let Err(e) = ctx.state.append_internal(OFFSETS_TOPIC, tombstones).await {
        return OffsetDeleteResponse::default().with_error_code(KafkaError::from(&e).code());
    }
    let mut verdicts = verdicts.into_iter();
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = if exists(&t.name.0, p.partition_index) {
                        group_code(verdicts.next().and_then(|v| v.err()))
                    } else {
                        ResponseError::UnknownTopicOrPartition.code()
                    };
                    OffsetDeleteResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code)
                })
                .collect();
            OffsetDeleteResponseTopic::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
