//! ListOffsets: earliest, latest, max timestamp (KIP-734) and the first
//! offset at or after a timestamp.
//!
//! Finding a timestamp needs the records of one batch, so this handler (not
//! the produce or fetch path) decodes that single batch.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::{check_current_leader_epoch, repeated, LEADER_EPOCH};
use crate::error::KafkaError;
use crate::request::RequestContext;
use crate::state::Partition;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

pub fn handle(ctx: &RequestContext<'_>, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let read_committed = request.isolation_level == 1;
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = ctx.state.topic(&t.name.0);
            let twice = repeated(t.partitions.iter().map(|p| p.partition_index));
            let refused = twice.iter().map(|&index| {
                ListOffsetsPartitionResponse::default()
                    .with_partition_index(index)
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_timestamp(-1)
                    .with_offset(-1)
                    .with_leader_epoch(-1)
            });
            let partitions = t
                .partitions
                .iter()
                .filter(|p| !twice.contains(&p.partition_index))
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                    let Some(partition) = topic.as_ref().and_then(|t| t.partition(p.partition_index)) else {
                        return response.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    if let Err(error) = check_current_leader_epoch(p.current_leader_epoch) {
                        return response.with_error_code(error.code());
                    }
                    match lookup(&partition, p.timestamp, read_committed) {
                        Ok((timestamp, offset)) => match ctx.api_version {
                            0 => response.with_old_style_offsets(if offset >= 0 { vec![offset] } else { vec![] }),
                            1..=3 => response.with_timestamp(timestamp).with_offset(offset),
                            // As Apache Kafka: no record found has no epoch.
                            _ => response.with_timestamp(timestamp).with_offset(offset).with_leader_epoch(if offset >= 0 { LEADER_EPOCH } else { -1 }),
                        },
                        Err(e) => response.with_error_code(e.code()),
                    }
                })
                .chain(refused)
                .collect();
            ListOffsetsTopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// Returns `(timestamp, offset)`; `(-1, -1)` when no record qualifies.
/// A read_committed client's latest offset is the last stable one.
fn lookup(partition: &Partition, target: i64, read_committed: bool) -> Result<(i64, i64), KafkaError> {
    let bounds = partition.log.bounds();
    let log_err = |e: runnel_log::LogError| KafkaError::from(&e);
    match target {
        LATEST if read_committed => Ok((-1, bounds.last_stable_offset)),
        LATEST => Ok((-1, bounds.log_end_offset)),
        EARLIEST | EARLIEST_LOCAL => Ok((-1, bounds.log_start_offset)),
        MAX_TIMESTAMP => match partition.log.batch_with_max_timestamp().map_err(log_err)? {
            None => Ok((-1, -1)),
            Some(batch) => {
                let records = decode(batch)?;
                let best = records.iter().filter(|(_, o)| *o >= bounds.log_start_offset).max_by_key(|(ts, o)| (*ts, -*o));
                Ok(best.copied().unwrap_or((-1, -1)))
            }
        },
        t if t >= 0 => match partition.log.batch_for_timestamp(t).map_err(log_err)? {
            None => Ok((-1, -1)),
            Some(batch) => {
                let records = decode(batch)?;
                let hit = records.iter().find(|(ts, o)| *ts >= t && *o >= bounds.log_start_offset);
                Ok(hit.copied().unwrap_or((-1, -1)))
            }
        },
        // As Apache Kafka: a special timestamp it does not know is one
        // this version of the API does not support.
        other => Err(KafkaError::new(ResponseError::UnsupportedVersion, format!("unknown special timestamp {other}"))),
    }
}

/// `(timestamp, offset)` of every record in one batch.
fn decode(batch: Bytes) -> Result<Vec<(i64, i64)>, KafkaError> {
    Ok(runnel_log::records::decode(batch).map_err(|e| KafkaError::from(&e))?.records.iter().map(|r| (r.timestamp, r.offset)).collect())
}
