//! Produce: validate batches by header and checksum, check idempotent
//! sequences, append as bytes, and answer per `acks`.
//!
//! Records are never decoded here: a batch is checked (magic, lengths,
//! count, CRC-32C, timestamps by its header), stamped with its base offset
//! and written as is. Three exceptions decode records, as Apache Kafka
//! does: a topic whose `compression.type` names a codec rewrites batches
//! sent in another one, a compacted topic checks that every record has a
//! key, and a batch refused for its timestamps is decoded to name the
//! records at fault.

use std::sync::Arc;

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use runnel_coordinator::txn::TxnError;
use runnel_log::batch;
use runnel_log::records::{self, TopicCodec};
use runnel_log::BatchError;

use super::str_bytes;
use crate::config::FsyncPolicy;
use crate::error::KafkaError;
use crate::request::RequestContext;
use crate::state::{is_internal_topic, now_ms, Partition, Topic, TopicError};

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
    let transactional_id = super::non_empty(request.transactional_id.as_ref().map(|id| &id.0));
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut pending_flushes = Vec::new();
    for topic_data in request.topic_data {
        let name = topic_data.name.0.to_string();
        // As Apache Kafka: only Metadata creates topics on first use; a
        // produce to a topic that does not exist is refused.
        let topic = ctx.state.topic(&name).ok_or_else(|| TopicError::UnknownTopic(name.clone()));
        // The broker alone writes its internal topics, as in Apache Kafka.
        let internal = is_internal_topic(&name);
        let mut partition_responses = Vec::with_capacity(topic_data.partition_data.len());
        for data in topic_data.partition_data {
            let index = data.index;
            let outcome: Result<Appended, Refused> = match (&topic, acks) {
                (_, a) if !(-1..=1).contains(&a) => {
                    Err(KafkaError::new(ResponseError::InvalidRequiredAcks, format!("acks must be -1, 0 or 1, got {a}")).into())
                }
                _ if internal => Err(KafkaError::new(ResponseError::InvalidTopicException, format!("cannot append to internal topic `{name}`")).into()),
                (Err(e), _) => Err(KafkaError::from(e).into()),
                (Ok(topic), -1) if topic.settings().min_insync_replicas > 1 => Err(KafkaError::new(
                    ResponseError::NotEnoughReplicas,
                    format!("topic `{name}` requires min.insync.replicas={} but this broker is its only replica", topic.settings().min_insync_replicas),
                )
                .into()),
                (Ok(topic), _) => match topic.partition(index) {
                    None => Err(KafkaError::new(ResponseError::UnknownTopicOrPartition, format!("topic `{name}` has no partition {index}")).into()),
                    Some(partition) => append(ctx, topic, &partition, transactional_id.as_deref(), data),
                },
            };
            let response = PartitionProduceResponse::default().with_index(index);
            let version = ctx.api_version;
            partition_responses.push(match outcome {
                Ok(done) => {
                    if let Some(end) = done.flush_to {
                        if let Some(partition) = topic.as_ref().ok().and_then(|t| t.partition(index)) {
                            pending_flushes.push((partition, end, partition_responses.len(), responses.len(), done.forced));
                        }
                    }
                    response
                        .with_base_offset(done.base_offset)
                        .with_log_append_time_ms(if version >= 2 { done.log_append_time } else { -1 })
                        .with_log_start_offset(if version >= 5 { done.log_start_offset } else { -1 })
                }
                Err(Refused { error, records, log_start_offset }) => {
                    if error.code != ResponseError::UnknownTopicOrPartition {
                        tracing::debug!(topic = %name, partition = index, error = ?error, "produce rejected");
                    }
                    response
                        .with_error_code(error.code())
                        .with_error_message(error.message.filter(|_| version >= 8).map(str_bytes))
                        .with_record_errors(if version >= 8 { records } else { Vec::new() })
                        .with_base_offset(-1)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(if version >= 5 { log_start_offset } else { -1 })
                }
            });
        }
        responses.push(TopicProduceResponse::default().with_name(topic_data.name).with_partition_responses(partition_responses));
    }
    ctx.state.appended.notify_waiters();
    // acks=all waits for every fsync due; other acks only for those a
    // topic's flush.messages forces, and acks=0 (no answer) not at all.
    let flushes: Vec<_> = pending_flushes
        .into_iter()
        .filter(|(.., forced)| acks == -1 || *forced)
        .map(|(partition, end, partition_slot, topic_slot, _)| (partition, end, topic_slot, partition_slot))
        .collect();
    if acks == 0 {
        for (partition, end, ..) in flushes {
            tokio::spawn(async move {
                if let Err(e) = partition.log.flush_to(end).await {
                    partition.report(&e);
                }
            });
        }
        return None;
    }
    Some(Produced { response: ProduceResponse::default().with_responses(responses), flushes, version: ctx.api_version })
}

/// Why a partition's batch was refused, with the records to blame when
/// the fault is theirs (Produce v8+ reports them one by one; Apache Kafka
/// then also reports the log start offset).
struct Refused {
    error: KafkaError,
    records: Vec<BatchIndexAndErrorMessage>,
    log_start_offset: i64,
}

impl From<KafkaError> for Refused {
    fn from(error: KafkaError) -> Self {
        Refused { error, records: Vec::new(), log_start_offset: -1 }
    }
}

struct Appended {
    base_offset: i64,
    log_append_time: i64,
    log_start_offset: i64,
    /// Set when the caller must fsync up to this offset before answering.
    flush_to: Option<i64>,
    /// The topic's `flush.messages` calls for that fsync whatever `acks`
    /// asked.
    forced: bool,
}

fn append(
    ctx: &RequestContext<'_>,
    topic: &Topic,
    partition: &Partition,
    transactional_id: Option<&str>,
    data: PartitionProduceData,
) -> Result<Appended, Refused> {
    let records = data.records.ok_or_else(|| KafkaError::new(ResponseError::CorruptMessage, "produce request carries no records"))?;
    let settings = topic.settings();
    let ranges = batch::split(&records).map_err(|e| KafkaError::from(&e))?;
    if ctx.api_version >= 3 && ranges.len() != 1 {
        // As Apache Kafka: from v3 a partition's records are one batch.
        return Err(KafkaError::new(ResponseError::InvalidRecord, "produce requests from v3 must carry exactly one record batch per partition").into());
    }
    let mut headers = Vec::with_capacity(ranges.len());
    for range in &ranges {
        let bytes = &records[range.clone()];
        if bytes.len() > settings.max_message_bytes {
            return Err(KafkaError::from(&BatchError::TooLarge { size: bytes.len(), max: settings.max_message_bytes }).into());
        }
        let header = batch::validate(bytes).map_err(|e| KafkaError::from(&e))?;
        if header.is_control() {
            return Err(KafkaError::from(&BatchError::UnexpectedControlBatch).into());
        }
        if header.compression() == batch::ZSTD && ctx.api_version < 7 {
            // As Apache Kafka: clients may send zstd only from v7 (KIP-110).
            return Err(KafkaError::new(ResponseError::UnsupportedCompressionType, "zstd batches need Produce v7 or later").into());
        }
        if header.is_transactional() {
            check_in_transaction(ctx, transactional_id, &header, &topic.name, partition.index)?;
        }
        headers.push(header);
    }
    let now = now_ms();
    if settings.log.compaction.is_some() {
        for range in &ranges {
            refuse_keyless_records(&records[range.clone()])
                .map_err(|refused| Refused { log_start_offset: partition.log.bounds().log_start_offset, ..refused })?;
        }
    }
    if !settings.log_append_time {
        for (range, header) in ranges.iter().zip(&headers) {
            check_timestamps(&records[range.clone()], header, now, settings.timestamp_before_max_ms, settings.timestamp_after_max_ms)
                .map_err(|refused| Refused { log_start_offset: partition.log.bounds().log_start_offset, ..refused })?;
        }
    }
    let log_append_time = settings.log_append_time.then_some(now);
    let mut payload = if headers.iter().any(|h| settings.codec.rewrite_from(h.compression()).is_some()) {
        rewrite_into_topic_codec(&records, &ranges, &mut headers, settings.codec)?
    } else {
        BytesMut::from(&records[..])
    };
    let appended = partition.log.append(&mut payload, &mut headers, log_append_time, now).map_err(|e| {
        partition.report(&e);
        Refused::from(KafkaError::from(&e))
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
            forced: false,
        });
    }
    Ok(Appended {
        base_offset: appended.base_offset,
        log_append_time: log_append_time.unwrap_or(-1),
        log_start_offset: appended.log_start_offset,
        flush_to: (fsync_always || appended.flush_due).then_some(appended.last_offset + 1),
        forced: appended.flush_due,
    })
}

/// A transactional batch must come from the transactional id's current
/// producer, into a partition its open transaction added, as Apache Kafka
/// verifies before appending (KIP-890): a late batch from a finished or
/// aborted transaction would otherwise leave the partition unstable.
fn check_in_transaction(ctx: &RequestContext<'_>, transactional_id: Option<&str>, header: &batch::BatchHeader, topic: &str, index: i32) -> Result<(), Refused> {
    let Some(transactional_id) = transactional_id else {
        return Err(KafkaError::new(ResponseError::InvalidTxnState, "transactional records need the producer's transactional id").into());
    };
    let partition = (topic.to_string(), index);
    ctx.state.txns.with(|c, _| c.verify_partition(transactional_id, header.producer_id, header.producer_epoch, &partition)).map_err(|e| {
        let code = match e {
            TxnError::ProducerFenced => ResponseError::InvalidProducerEpoch,
            TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
            _ => ResponseError::InvalidTxnState,
        };
        KafkaError::new(code, format!("{e} ({topic}-{index})")).into()
    })
}

/// Refuses a CreateTime batch with a timestamp further from the broker's
/// clock than the topic allows. The batch header's first and maximum
/// timestamps decide, so records are not decoded on the way in; they are
/// decoded only to name the offenders, as Apache Kafka reports them.
fn check_timestamps(bytes: &[u8], header: &batch::BatchHeader, now: i64, before_max_ms: i64, after_max_ms: i64) -> Result<(), Refused> {
    let earliest = now.saturating_sub(before_max_ms);
    let latest = now.saturating_add(after_max_ms);
    let out_of_range = |timestamp: i64| timestamp != NO_TIMESTAMP && (timestamp < earliest || timestamp > latest);
    if !out_of_range(header.base_timestamp) && !out_of_range(header.max_timestamp) {
        return Ok(());
    }
    let offenders = match records::decode(bytes::Bytes::copy_from_slice(bytes)) {
        Ok(set) => set
            .records
            .iter()
            .enumerate()
            .filter(|(_, record)| out_of_range(record.timestamp))
            .map(|(index, record)| {
                BatchIndexAndErrorMessage::default().with_batch_index(index as i32).with_batch_index_error_message(Some(str_bytes(format!(
                    "timestamp {} of the record at index {index} is out of range: it must be within [{earliest}, {latest}]",
                    record.timestamp
                ))))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    Err(Refused {
        error: KafkaError::new(ResponseError::InvalidTimestamp, "one or more records have a timestamp out of the range the topic allows"),
        records: offenders,
        log_start_offset: -1,
    })
}

/// Refuses records without a key on a compacted topic, which could never
/// be compacted away, as Apache Kafka does. Records must be decoded for
/// this, so compacted topics (internal state and changelogs, mostly) pay
/// a decode on produce that other topics do not.
fn refuse_keyless_records(bytes: &[u8]) -> Result<(), Refused> {
    let set = records::decode(bytes::Bytes::copy_from_slice(bytes)).map_err(|e| KafkaError::from(&e))?;
    let keyless: Vec<BatchIndexAndErrorMessage> = set
        .records
        .iter()
        .enumerate()
        .filter(|(_, record)| record.key.is_none())
        .map(|(index, _)| {
            BatchIndexAndErrorMessage::default()
                .with_batch_index(index as i32)
                .with_batch_index_error_message(Some(str_bytes("a compacted topic cannot take a record without a key")))
        })
        .collect();
    if keyless.is_empty() {
        return Ok(());
    }
    Err(Refused {
        error: KafkaError::new(ResponseError::InvalidRecord, "records without a key were sent to a compacted topic"),
        records: keyless,
        log_start_offset: -1,
    })
}

/// A record's "no timestamp" marker, which no bound applies to.
const NO_TIMESTAMP: i64 = -1;

/// Rewrites every batch not already in the topic's codec, as Apache Kafka
/// does when `compression.type` names one; `headers` follow the new bytes.
fn rewrite_into_topic_codec(
    records: &[u8],
    ranges: &[std::ops::Range<usize>],
    headers: &mut [batch::BatchHeader],
    topic_codec: TopicCodec,
) -> Result<BytesMut, Refused> {
    let mut payload = BytesMut::with_capacity(records.len());
    for (range, header) in ranges.iter().zip(headers.iter_mut()) {
        let bytes = &records[range.clone()];
        if topic_codec.rewrite_from(header.compression()).is_some() {
            let rewritten = records::recompress(bytes, topic_codec).map_err(|e| KafkaError::from(&e))?;
            *header = batch::validate(&rewritten).map_err(|e| KafkaError::from(&e))?;
            payload.extend_from_slice(&rewritten);
        } else {
            payload.extend_from_slice(bytes);
        }
    }
    Ok(payload)
}
