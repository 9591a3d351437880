//! OffsetForLeaderEpoch: a single broker has only ever had leader epoch 0,
//! which ends at the log end offset.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::{check_current_leader_epoch, LEADER_EPOCH};
use crate::request::RequestContext;

pub fn handle(ctx: &RequestContext<'_>, request: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = ctx.state.topic(&t.topic.0);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let result = EpochEndOffset::default().with_partition(p.partition).with_end_offset(-1);
                    let Some(partition) = topic.as_ref().and_then(|t| t.partition(p.partition)) else {
                        return result.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    if let Err(error) = check_current_leader_epoch(p.current_leader_epoch) {
                        return result.with_error_code(error.code());
                    }
                    if p.leader_epoch != LEADER_EPOCH {
                        return result;
                    }
                    let end = partition.log.bounds().log_end_offset;
                    if ctx.api_version >= 1 {
                        result.with_leader_epoch(LEADER_EPOCH).with_end_offset(end)
                    } else {
                        result.with_end_offset(end)
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(t.topic).with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
