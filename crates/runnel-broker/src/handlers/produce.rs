//! Produce: validate batches by header and checksum, check idempotent
//! sequences, append as bytes, and answer per `acks`.
//!
//! Records are never decoded here: a batch is checked (magic, lengths,
//! count, CRC-32C), stamped with its base offset and written as is.

use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use runnel_log::batch;
use runnel_log::BatchError;

use super::str_bytes;
use crate::config::FsyncPolicy;
use crate::error::KafkaError;
use crate::groups::OFFSETS_TOPIC;
use crate::request::RequestContext;
use crate::state::{now_ms, Partition, Topic, TopicError};

/// Appended batches whose response may still wait for an fsync.
pub struct Produced {
    response: ProduceResponse,
    /// `(partition, end offset, topic slot, partition slot)` to make durable.
    flushes: Vec<(Arc<Partition>, i64, usize, usize)>,
    version: i16,
}

impl Produced {
    /// Waits until the appended data is durable (for `acks=all`), and
    /// turns an fsync failure into an error for that partition.
    pub async fn durable(mut self) -> ProduceResponse {
        for (partition, end, topic_slot, partition_slot) in self.flushes {
            if let Err(e) = partition.log.flush_to(end).await {
                partition.report(&e);
                let error = KafkaError::from(&e);
                let slot = &mut self.response.responses[topic_slot].partition_responses[partition_slot];
                slot.error_code = error.code();
                slot.error_message = error.message.filter(|_| self.version >= 8).map(str_bytes);
                slot.base_offset = -1;
            }
        }
        self.response
    }
}

/// Appends a produce request's batches, in request order, without waiting
/// for durability; `None` for `acks=0`, which gets no response. The caller
/// awaits [`Produced::durable`] before answering, so a connection can read
/// its next request while this one's fsync is in flight.
pub fn handle(ctx: &RequestContext<'_>, request: ProduceRequest) -> Option<Produced> {
    let acks = request.acks;
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut pending_flushes = Vec::new();
    for topic_data in request.topic_data {
        let name = topic_data.name.0.to_string();
        // As Apache Kafka: only Metadata creates topics on first use; a
        // produce to a topic that does not exist is refused.
        let topic = ctx.state.topic(&name).ok_or_else(|| TopicError::UnknownTopic(name.clone()));
        // The broker alone writes its internal topics, as in Apache Kafka.
        let internal = name == OFFSETS_TOPIC;
        let mut partition_responses = Vec::with_capacity(topic_data.partition_data.len());
        for data in topic_data.partition_data {
            let index = data.index;
            let outcome = match (&topic, acks) {
                (_, a) if !(-1..=1).contains(&a) => Err(KafkaError::new(ResponseError::InvalidRequiredAcks, format!("acks must be -1, 0 or 1, got {a}"))),
                _ if internal => Err(KafkaError::new(ResponseError::InvalidTopicException, format!("cannot append to internal topic `{name}`"))),
                (Err(e), _) => Err(KafkaError::from(e)),
                (Ok(topic), -1) if topic.settings().min_insync_replicas > 1 => Err(KafkaError::new(
                    ResponseError::NotEnoughReplicas,
                    format!("topic `{name}` requires min.insync.replicas={} but this broker is its only replica", topic.settings().min_insync_replicas),
                )),
                (Ok(topic), _) => match topic.partition(index) {
                    None => Err(KafkaError::new(ResponseError::UnknownTopicOrPartition, format!("topic `{name}` has no partition {index}"))),
                    Some(partition) => append(ctx, topic, &partition, data),
                },
            };
            let response = PartitionProduceResponse::default().with_index(index);
            let version = ctx.api_version;
            partition_responses.push(match outcome {
                Ok(done) => {
                    if let Some(end) = done.flush_to {
                        if let Ok(topic) = &topic {
                            if let Some(partition) = topic.partition(index) {
                                pending_flushes.push((partition, end, partition_responses.len(), responses.len()));
                            }
                        }
                    }
                    response
                        .with_base_offset(done.base_offset)
                        .with_log_append_time_ms(if version >= 2 { done.log_append_time } else { -1 })
                        .with_log_start_offset(if version >= 5 { done.log_start_offset } else { -1 })
                }
                Err(error) => {
                    if error.code != ResponseError::UnknownTopicOrPartition {
                        tracing::debug!(topic = %name, partition = index, error = ?error, "produce rejected");
                    }
                    response
                        .with_error_code(error.code())
                        .with_error_message(error.message.filter(|_| version >= 8).map(str_bytes))
                        .with_base_offset(-1)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(-1)
                }
            });
        }
        responses.push(TopicProduceResponse::default().with_name(topic_data.name).with_partition_responses(partition_responses));
    }
    ctx.state.appended.notify_waiters();
    if acks == 0 {
        return None;
    }
    let flushes = if acks == -1 {
        pending_flushes.into_iter().map(|(partition, end, partition_slot, topic_slot)| (partition, end, topic_slot, partition_slot)).collect()
    } else {
        Vec::new()
    };
    Some(Produced { response: ProduceResponse::default().with_responses(responses), flushes, version: ctx.api_version })
}

struct Appended {
    base_offset: i64,
    log_append_time: i64,
    log_start_offset: i64,
    /// Set when the caller must fsync up to this offset before answering.
    flush_to: Option<i64>,
}

fn append(ctx: &RequestContext<'_>, topic: &Topic, partition: &Partition, data: PartitionProduceData) -> Result<Appended, KafkaError> {
    let records = data.records.ok_or_else(|| KafkaError::new(ResponseError::CorruptMessage, "produce request carries no records"))?;
    let settings = topic.settings();
    let ranges = batch::split(&records).map_err(|e| KafkaError::from(&e))?;
    if ctx.api_version >= 3 && ranges.len() != 1 {
        // As Apache Kafka: from v3 a partition's records are one batch.
        return Err(KafkaError::new(ResponseError::InvalidRecord, "produce requests from v3 must carry exactly one record batch per partition"));
    }
    let mut headers = Vec::with_capacity(ranges.len());
    for range in &ranges {
        let bytes = &records[range.clone()];
        if bytes.len() > settings.max_message_bytes {
            return Err(KafkaError::from(&BatchError::TooLarge { size: bytes.len(), max: settings.max_message_bytes }));
        }
        let header = batch::validate(bytes).map_err(|e| KafkaError::from(&e))?;
        if header.is_control() {
            return Err(KafkaError::from(&BatchError::UnexpectedControlBatch));
        }
        if header.compression() == batch::ZSTD && ctx.api_version < 7 {
            // As Apache Kafka: clients may send zstd only from v7 (KIP-110).
            return Err(KafkaError::new(ResponseError::UnsupportedCompressionType, "zstd batches need Produce v7 or later"));
        }
        if header.is_transactional() {
            return Err(KafkaError::new(ResponseError::InvalidRecord, "transactional produce is not supported yet"));
        }
        headers.push(header);
    }
    let now = now_ms();
    let log_append_time = settings.log_append_time.then_some(now);
    let mut payload = BytesMut::from(&records[..]);
    let appended = partition.log.append(&mut payload, &mut headers, log_append_time, now).map_err(|e| {
        partition.report(&e);
        KafkaError::from(&e)
    })?;
    let fsync_always = ctx.state.config.fsync == FsyncPolicy::Always;
    if appended.duplicate {
        // The original may still be waiting for its fsync: a retry is
        // acknowledged no sooner than the first attempt would have been.
        let bounds = partition.log.bounds();
        return Ok(Appended {
            base_offset: appended.base_offset,
            log_append_time: -1,
            log_start_offset: bounds.log_start_offset,
            flush_to: fsync_always.then_some(bounds.log_end_offset),
        });
    }
    Ok(Appended {
        base_offset: appended.base_offset,
        log_append_time: log_append_time.unwrap_or(-1),
        log_start_offset: appended.log_start_offset,
        flush_to: fsync_always.then_some(appended.last_offset + 1),
    })
}
