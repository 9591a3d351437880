//! ListOffsets: earliest, latest, max timestamp (KIP-734) and the first
//! offset at or after a timestamp.
//!
//! Finding a timestamp needs the records of one batch, so this handler (not
//! the produce or fetch path) decodes that single batch.

use bytes::{Buf, Bytes};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use super::{check_current_leader_epoch, repeated, LEADER_EPOCH};
use crate::error::KafkaError;
use crate::request::RequestContext;
use crate::state::Partition;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

pub fn handle(ctx: &RequestContext<'_>, request: ListOffsetsRequest) -> ListOffsetsResponse {
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
                    match lookup(&partition, p.timestamp) {
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
fn lookup(partition: &Partition, target: i64) -> Result<(i64, i64), KafkaError> {
    let bounds = partition.log.bounds();
    let log_err = |e: runnel_log::LogError| KafkaError::from(&e);
    match target {
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
fn decode(mut batch: Bytes) -> Result<Vec<(i64, i64)>, KafkaError> {
    let set = RecordBatchDecoder::decode_with_custom_compression(&mut batch, Some(decompress))
        .map_err(|e| KafkaError::new(ResponseError::CorruptMessage, e.to_string()))?;
    Ok(set.records.iter().map(|r| (r.timestamp, r.offset)).collect())
}

/// Decompresses a batch's records. kafka-protocol reads only raw snappy,
/// but the Java client and kafka-python write snappy in xerial's framing,
/// so that case is handled here. (The `anyhow` result is the signature
/// kafka-protocol's decoder requires.)
fn decompress(buf: &mut Bytes, compression: Compression) -> anyhow::Result<Bytes> {
    use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};
    let take = |b: &mut Bytes| Ok(b.split_off(0));
    match compression {
        Compression::None => take(buf),
        Compression::Snappy if buf.starts_with(XERIAL_MAGIC) => unframe_xerial(buf),
        Compression::Snappy => Snappy::decompress(buf, take),
        Compression::Gzip => Gzip::decompress(buf, take),
        Compression::Lz4 => Lz4::decompress(buf, take),
        Compression::Zstd => Zstd::decompress(buf, take),
    }
}

const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;

/// xerial framing: a 16-byte header, then `[length: i32][raw snappy block]`*.
fn unframe_xerial(buf: &mut Bytes) -> anyhow::Result<Bytes> {
    let mut input = buf.split_off(0);
    anyhow::ensure!(input.len() >= XERIAL_HEADER_LEN, "xerial snappy header is truncated");
    input.advance(XERIAL_HEADER_LEN);
    let mut out = Vec::new();
    let mut decoder = snap::raw::Decoder::new();
    while input.has_remaining() {
        anyhow::ensure!(input.remaining() >= 4, "xerial snappy block length is truncated");
        let len = input.get_i32();
        anyhow::ensure!(len >= 0 && len as usize <= input.remaining(), "xerial snappy block length {len} is out of range");
        let block = input.split_to(len as usize);
        out.extend_from_slice(&decoder.decompress_vec(&block)?);
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xerial(blocks: &[&[u8]]) -> Vec<u8> {
        let mut out = XERIAL_MAGIC.to_vec();
        out.extend_from_slice(&1i32.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
        for block in blocks {
            let compressed = snap::raw::Encoder::new().compress_vec(block).unwrap();
            out.extend_from_slice(&(compressed.len() as i32).to_be_bytes());
            out.extend_from_slice(&compressed);
        }
        out
    }

    #[test]
    fn xerial_framed_snappy_is_unframed_block_by_block() {
        let mut framed = Bytes::from(xerial(&[b"hello ", b"world"]));
        assert_eq!(decompress(&mut framed, Compression::Snappy).unwrap(), Bytes::from_static(b"hello world"));
    }

    #[test]
    fn damaged_xerial_frames_are_errors_not_panics() {
        let whole = xerial(&[b"some records"]);
        for cut in 0..whole.len() {
            let mut truncated = Bytes::from(whole[..cut].to_vec());
            let _ = decompress(&mut truncated, Compression::Snappy);
        }
        let mut bad_length = Bytes::from([&whole[..16], &i32::MAX.to_be_bytes()[..]].concat());
        assert!(decompress(&mut bad_length, Compression::Snappy).is_err());
    }
}
