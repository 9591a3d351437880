//! Fetch: whole batches straight from the segments, with long polling on
//! `max_wait_ms`/`min_bytes` and the `max_bytes` limits.
//!
//! Fetch sessions are not kept: every response has session id 0, so
//! clients send full fetch requests, which the protocol allows; an
//! incremental fetch (epoch above 0) names a session this broker does not
//! have, and is refused as Apache Kafka refuses an unknown session.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId};
use runnel_log::{LogError, ReadChunk};
use tokio::time::Instant;

use super::check_current_leader_epoch;
use crate::error::KafkaError;
use crate::request::RequestContext;
use crate::state::{Partition, Topic};

/// Longest wait honoured, whatever the client asks for.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

enum Resolved {
    Found(Arc<Topic>),
    Missing(ResponseError),
}

pub async fn handle(ctx: &RequestContext<'_>, request: FetchRequest) -> FetchResponse {
    let version = ctx.api_version;
    if request.session_epoch > 0 {
        return FetchResponse::default().with_error_code(ResponseError::FetchSessionIdNotFound.code()).with_session_id(0);
    }
    let uses_topic_ids = version >= 13;
    let topics: Vec<Resolved> = request
        .topics
        .iter()
        .map(|t| {
            let topic = if uses_topic_ids { ctx.state.topic_by_id(t.topic_id) } else { ctx.state.topic(&t.topic.0) };
            match topic {
                Some(topic) => Resolved::Found(topic),
                None if uses_topic_ids => Resolved::Missing(ResponseError::UnknownTopicId),
                None => Resolved::Missing(ResponseError::UnknownTopicOrPartition),
            }
        })
        .collect();
    let max_wait = Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + max_wait;
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_bytes = if request.max_bytes <= 0 { usize::MAX } else { request.max_bytes as usize };
    loop {
        // Register for wake-ups before reading, so an append that lands
        // between the read and the wait is not missed.
        let appended = ctx.state.appended.notified();
        let (responses, total, any_error) = read_all(&request, &topics, max_bytes, version);
        let now = Instant::now();
        if total >= min_bytes.max(1) || any_error || now >= deadline {
            return FetchResponse::default().with_session_id(0).with_responses(responses);
        }
        let _ = tokio::time::timeout(deadline - now, appended).await;
    }
}

fn read_all(request: &FetchRequest, topics: &[Resolved], max_bytes: usize, version: i16) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut total = 0usize;
    let mut any_error = false;
    let mut responses = Vec::with_capacity(request.topics.len());
    // Apache Kafka answers a read_uncommitted fetch of a partition it
    // holds with no aborted-transaction list at all (null), and a
    // read_committed one with the list (perhaps empty); read_committed
    // also stops at the last stable offset.
    let read_committed = request.isolation_level != 0;
    let no_aborted = read_committed.then(Vec::new);
    for (fetch_topic, resolved) in request.topics.iter().zip(topics) {
        let partitions = fetch_topic
            .partitions
            .iter()
            .map(|p| {
                let data = PartitionData::default().with_partition_index(p.partition).with_preferred_read_replica(BrokerId(-1));
                // Fields a version lacks must stay at their defaults.
                let lso = |offset: i64| if version >= 4 { offset } else { -1 };
                let log_start = |offset: i64| if version >= 5 { offset } else { -1 };
                let partition = match resolved {
                    Resolved::Found(topic) => topic.partition(p.partition).ok_or(ResponseError::UnknownTopicOrPartition),
                    Resolved::Missing(code) => Err(*code),
                };
                let partition = match partition {
                    Ok(partition) => partition,
                    Err(code) => {
                        any_error = true;
                        return data.with_error_code(code.code()).with_high_watermark(-1).with_last_stable_offset(-1).with_log_start_offset(-1);
                    }
                };
                if let Err(code) = check_current_leader_epoch(p.current_leader_epoch) {
                    // As Apache Kafka: a fenced read also has no
                    // aborted-transaction list (null, not empty).
                    any_error = true;
                    return data
                        .with_error_code(code.code())
                        .with_aborted_transactions(None)
                        .with_high_watermark(-1)
                        .with_last_stable_offset(-1)
                        .with_log_start_offset(-1);
                }
                let budget = (p.partition_max_bytes.max(0) as usize).min(max_bytes.saturating_sub(total));
                match read_partition(&partition, p.fetch_offset, budget, total == 0, read_committed) {
                    Ok((chunk, aborted)) => {
                        total += chunk.bytes.len();
                        data.with_aborted_transactions(aborted)
                            .with_high_watermark(chunk.log_end_offset)
                            .with_last_stable_offset(lso(chunk.last_stable_offset))
                            .with_log_start_offset(log_start(chunk.log_start_offset))
                            .with_records(Some(chunk.bytes))
                    }
                    Err(e) => {
                        any_error = true;
                        // As Apache Kafka: an error carries no offsets.
                        partition.report(&e);
                        data.with_aborted_transactions(no_aborted.clone())
                            .with_error_code(KafkaError::from(&e).code())
                            .with_high_watermark(-1)
                            .with_last_stable_offset(-1)
                            .with_log_start_offset(-1)
                    }
                }
            })
            .collect();
        responses.push(FetchableTopicResponse::default().with_topic(fetch_topic.topic.clone()).with_topic_id(fetch_topic.topic_id).with_partitions(partitions));
    }
    (responses, total, any_error)
}

/// Reads a partition; for read_committed, only up to its last stable
/// offset, with the aborted transactions in what was read.
fn read_partition(
    partition: &Partition,
    offset: i64,
    budget: usize,
    first: bool,
    read_committed: bool,
) -> Result<(ReadChunk, Option<Vec<AbortedTransaction>>), LogError> {
    if !read_committed {
        return Ok((partition.log.read(offset, budget, first)?, None));
    }
    let (chunk, aborted) = partition.log.read_stable(offset, budget, first)?;
    let aborted =
        aborted.into_iter().map(|a| AbortedTransaction::default().with_producer_id(ProducerId(a.producer_id)).with_first_offset(a.first_offset)).collect();
    Ok((chunk, Some(aborted)))
}
