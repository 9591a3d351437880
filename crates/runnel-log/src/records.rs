//! Records decoded and encoded, for the few places that need more than a
//! batch header: the log cleaner, ListOffsets by timestamp, naming the
//! records a produce refuses, and rewriting batches into a topic's
//! `compression.type`. kafka-protocol does the encoding; this module adds
//! xerial-framed snappy and per-topic compression levels.
//!
//! The produce and fetch paths otherwise move batches as bytes.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, RecordSet};

use crate::error::RecordsError;

/// The codec a topic stores its batches with (`compression.type` and the
/// codec's level setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicCodec {
    /// `producer`: batches are kept as the producer compressed them.
    Producer,
    Uncompressed,
    Gzip {
        level: i32,
    },
    Snappy,
    Lz4 {
        level: i32,
    },
    Zstd {
        level: i32,
    },
}

impl TopicCodec {
    /// The codec a batch must be rewritten into, if it is not already in it.
    pub fn rewrite_from(self, batch_codec: i16) -> Option<Compression> {
        let target = match self {
            TopicCodec::Producer => return None,
            TopicCodec::Uncompressed => Compression::None,
            TopicCodec::Gzip { .. } => Compression::Gzip,
            TopicCodec::Snappy => Compression::Snappy,
            TopicCodec::Lz4 { .. } => Compression::Lz4,
            TopicCodec::Zstd { .. } => Compression::Zstd,
        };
        (target as i16 != batch_codec).then_some(target)
    }
}

/// Decodes one batch, whatever its codec (snappy in xerial's framing too,
/// as the Java client and kafka-python write it).
pub fn decode(mut batch: Bytes) -> Result<RecordSet, RecordsError> {
    RecordBatchDecoder::decode_with_custom_compression(&mut batch, Some(decompress)).map_err(|e| RecordsError::Undecodable(e.to_string()))
}

/// Rewrites one batch into `codec`, keeping its records, offsets,
/// timestamps and producer identity, as Apache Kafka does for a topic
/// whose `compression.type` differs from the producer's.
pub fn recompress(batch: &[u8], codec: TopicCodec) -> Result<Vec<u8>, RecordsError> {
    let set = decode(Bytes::copy_from_slice(batch))?;
    encode(&set.records, codec)
}

/// Encodes records as one v2 batch in `codec` (`Producer` means
/// uncompressed here).
pub fn encode(records: &[Record], codec: TopicCodec) -> Result<Vec<u8>, RecordsError> {
    let compression = match codec {
        TopicCodec::Producer | TopicCodec::Uncompressed => Compression::None,
        TopicCodec::Gzip { .. } => Compression::Gzip,
        TopicCodec::Snappy => Compression::Snappy,
        TopicCodec::Lz4 { .. } => Compression::Lz4,
        TopicCodec::Zstd { .. } => Compression::Zstd,
    };
    let mut out = BytesMut::new();
    let compress = |records: &mut BytesMut, out: &mut BytesMut, _: Compression| compress(records, out, codec);
    RecordBatchEncoder::encode_with_custom_compression(&mut out, records, &RecordEncodeOptions { version: 2, compression }, Some(compress))
        .map_err(|e| RecordsError::Unencodable(e.to_string()))?;
    Ok(out.to_vec())
}

/// Compresses encoded records at the topic's level (kafka-protocol's own
/// compressors have fixed levels).
fn compress(records: &mut BytesMut, out: &mut BytesMut, codec: TopicCodec) -> anyhow::Result<()> {
    use bytes::BufMut;
    use std::io::Write;
    match codec {
        TopicCodec::Producer | TopicCodec::Uncompressed => out.extend_from_slice(records),
        TopicCodec::Gzip { level } => {
            // -1 is the codec's default level.
            let level = if level < 0 { flate2::Compression::default() } else { flate2::Compression::new(level as u32) };
            let mut encoder = flate2::write::GzEncoder::new(out.writer(), level);
            encoder.write_all(records)?;
            encoder.finish()?;
        }
        TopicCodec::Snappy => {
            use kafka_protocol::compression::{Compressor, Snappy};
            Snappy::compress(out, |buf: &mut BytesMut| {
                buf.extend_from_slice(records);
                Ok(())
            })?
        }
        TopicCodec::Lz4 { level } => {
            let mut encoder = lz4::EncoderBuilder::new().block_mode(lz4::BlockMode::Independent).level(level as u32).build(out.writer())?;
            encoder.write_all(records)?;
            let (_, finished) = encoder.finish();
            finished?;
        }
        TopicCodec::Zstd { level } => zstd::stream::copy_encode(records.as_ref(), out.writer(), level)?,
    }
    Ok(())
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

    fn rides(count: usize) -> Vec<u8> {
        let records: Vec<kafka_protocol::records::Record> = (0..count as i64)
            .map(|i| kafka_protocol::records::Record {
                transactional: false,
                control: false,
                partition_leader_epoch: 0,
                producer_id: 7,
                producer_epoch: 1,
                timestamp_type: kafka_protocol::records::TimestampType::Creation,
                offset: 100 + i,
                sequence: 40 + i as i32,
                timestamp: 1_700_000_000_000 + i,
                key: Some(Bytes::from(format!("zone-{}", i % 5))),
                value: (i % 7 != 3).then(|| Bytes::from(format!("ride {i}: pickup 132, dropoff 236, fare 52.0"))),
                headers: Default::default(),
            })
            .collect();
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(&mut out, &records, &RecordEncodeOptions { version: 2, compression: Compression::None }).unwrap();
        out.to_vec()
    }

    #[test]
    fn recompression_keeps_records_offsets_timestamps_and_producer() {
        let original = rides(50);
        let before = decode(Bytes::from(original.clone())).unwrap();
        for codec in [
            TopicCodec::Gzip { level: -1 },
            TopicCodec::Gzip { level: 9 },
            TopicCodec::Snappy,
            TopicCodec::Lz4 { level: 9 },
            TopicCodec::Zstd { level: 3 },
            TopicCodec::Zstd { level: -5 },
        ] {
            let rewritten = recompress(&original, codec).unwrap();
            let header = crate::batch::validate(&rewritten).unwrap();
            assert_eq!(codec.rewrite_from(header.compression()), None, "{codec:?} is now the batch's codec");
            assert_eq!((header.producer_id, header.producer_epoch, header.base_sequence), (7, 1, 40));
            let after = decode(Bytes::from(rewritten.clone())).unwrap();
            assert_eq!(after.records, before.records, "{codec:?}");
            let back = recompress(&rewritten, TopicCodec::Uncompressed).unwrap();
            assert_eq!(decode(Bytes::from(back)).unwrap().records, before.records);
        }
    }

    #[test]
    fn a_batch_already_in_the_topic_codec_is_left_alone() {
        assert_eq!(TopicCodec::Producer.rewrite_from(1), None);
        assert_eq!(TopicCodec::Uncompressed.rewrite_from(0), None);
        assert_eq!(TopicCodec::Uncompressed.rewrite_from(4), Some(Compression::None));
        assert_eq!(TopicCodec::Zstd { level: 3 }.rewrite_from(0), Some(Compression::Zstd));
    }
}
