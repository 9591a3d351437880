//! The Kafka v2 record batch header: validation and the few in-place edits
//! the broker makes (offset assignment, LogAppendTime).
//!
//! This module never looks past the 61-byte header except to checksum it:
//! individual records are opaque bytes on the produce and fetch paths.

use crate::error::BatchError;

/// Size of the fixed v2 batch header, up to and including the record count.
pub const HEADER_LEN: usize = 61;
/// Bytes before `batchLength`'s coverage starts: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;

const BASE_OFFSET: usize = 0;
const BATCH_LENGTH: usize = 8;
const LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const BASE_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
const RECORDS_COUNT: usize = 57;

const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
const COMPRESSION_MASK: i16 = 0x07;
/// The zstd codec's id in a batch's attributes.
pub const ZSTD: i16 = 4;

/// The decoded fixed header of one record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Total size of the batch on disk and on the wire, header included.
    pub size: usize,
    pub magic: i8,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Reads a header from the front of `buf` without checking the CRC.
    ///
    /// Needs only [`HEADER_LEN`] bytes, so readers can walk a segment by
    /// headers alone.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Truncated);
        }
        let batch_length = i32_at(buf, BATCH_LENGTH);
        let magic = buf[MAGIC] as i8;
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        if batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchError::BadLength(batch_length));
        }
        Ok(BatchHeader {
            base_offset: i64_at(buf, BASE_OFFSET),
            size: LOG_OVERHEAD + batch_length as usize,
            magic,
            attributes: i16_at(buf, ATTRIBUTES),
            last_offset_delta: i32_at(buf, LAST_OFFSET_DELTA),
            base_timestamp: i64_at(buf, BASE_TIMESTAMP),
            max_timestamp: i64_at(buf, MAX_TIMESTAMP),
            producer_id: i64_at(buf, PRODUCER_ID),
            producer_epoch: i16_at(buf, PRODUCER_EPOCH),
            base_sequence: i32_at(buf, BASE_SEQUENCE),
            records_count: i32_at(buf, RECORDS_COUNT),
        })
    }

    /// The offset of the last record in this batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    /// The sequence number of the last record, wrapping as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        self.base_sequence.wrapping_add(self.last_offset_delta) & i32::MAX
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// The codec of the records (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & COMPRESSION_MASK
    }

    /// True when the producer asked for idempotent delivery.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
}

/// Validates a whole batch as received from a producer: magic, lengths,
/// record count and CRC-32C. Returns its header.
pub fn validate(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = validate_stored(buf)?;
    if header.records_count <= 0 || header.last_offset_delta < 0 || header.records_count as i64 != header.last_offset_delta as i64 + 1 {
        return Err(BatchError::BadRecordCount { count: header.records_count, last_offset_delta: header.last_offset_delta });
    }
    Ok(header)
}

/// Validates a batch as the log stores it: magic, lengths and CRC-32C.
/// Unlike a producer's, a compacted batch may hold fewer records than its
/// offsets span.
pub fn validate_stored(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(buf)?;
    if header.size != buf.len() {
        return Err(BatchError::BadLength(i32_at(buf, BATCH_LENGTH)));
    }
    let stored = u32::from_be_bytes(buf[CRC..CRC + 4].try_into().expect("4 bytes"));
    if crc32c::crc32c(&buf[ATTRIBUTES..]) != stored {
        return Err(BatchError::CrcMismatch);
    }
    Ok(header)
}

/// Splits a produce payload, which may hold several batches, into whole
/// batches. Fails on a trailing partial batch.
pub fn split(buf: &[u8]) -> Result<Vec<std::ops::Range<usize>>, BatchError> {
    let mut ranges = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        if rest.len() < HEADER_LEN {
            return Err(BatchError::Truncated);
        }
        let header = BatchHeader::parse(rest)?;
        if header.size > rest.len() {
            return Err(BatchError::Truncated);
        }
        ranges.push(pos..pos + header.size);
        pos += header.size;
    }
    if ranges.is_empty() {
        return Err(BatchError::Truncated);
    }
    Ok(ranges)
}

/// Assigns the batch its place in the log. Neither field is covered by the
/// CRC, so this is two small writes.
pub fn assign_offset(buf: &mut [u8], base_offset: i64, leader_epoch: i32) {
    buf[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
    buf[LEADER_EPOCH..LEADER_EPOCH + 4].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Stamps a batch with the broker's clock for topics with
/// `message.timestamp.type=LogAppendTime`. The CRC must be recomputed, which
/// is a checksum over bytes, not a decode.
pub fn set_log_append_time(buf: &mut [u8], now_ms: i64) {
    let attributes = i16_at(buf, ATTRIBUTES) | TIMESTAMP_TYPE_BIT;
    buf[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    buf[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&buf[ATTRIBUTES..]);
    buf[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

fn i16_at(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(buf[at..at + 2].try_into().expect("2 bytes"))
}

fn i32_at(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn i64_at(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

/// A transaction marker: the control batch a coordinator writes to every
/// partition of a transaction it commits or aborts, as Apache Kafka lays
/// it out (one record; key: version 0 and type, 0 abort or 1 commit;
/// value: version 0 and the coordinator's epoch).
pub fn control_batch(producer_id: i64, producer_epoch: i16, commit: bool, coordinator_epoch: i32, timestamp: i64) -> Vec<u8> {
    let key = [0u8, 0, 0, commit as u8];
    let mut value = vec![0u8, 0];
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    assemble(&[(Some(&key), Some(&value))], TRANSACTIONAL_BIT | CONTROL_BIT, timestamp, producer_id, producer_epoch, -1)
}

/// Whether a control batch is a COMMIT (true) or ABORT (false) marker;
/// `None` if it is not a well-formed marker.
pub fn marker_commits(buf: &[u8]) -> Option<bool> {
    let header = BatchHeader::parse(buf).ok()?;
    if !header.is_control() || buf.len() < header.size {
        return None;
    }
    let mut rest = &buf[HEADER_LEN..header.size];
    let _length = read_varint(&mut rest)?;
    let (_attributes, tail) = rest.split_first()?;
    rest = tail;
    let _timestamp_delta = read_varint(&mut rest)?;
    let _offset_delta = read_varint(&mut rest)?;
    if read_varint(&mut rest)? != 4 {
        return None;
    }
    let key = rest.get(..4)?;
    match i16::from_be_bytes([key[2], key[3]]) {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// A record's key and value (`None` is null).
type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// Builds a v2 batch at base offset 0 from `(key, value)` records.
fn assemble(records: &[KeyValue], attributes: i16, base_timestamp: i64, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (delta, (key, value)) in records.iter().enumerate() {
        let mut body = vec![0u8]; // record attributes
        put_varint(&mut body, 0); // timestamp delta
        put_varint(&mut body, delta as i64); // offset delta
        for field in [key, value] {
            match field {
                Some(bytes) => {
                    put_varint(&mut body, bytes.len() as i64);
                    body.extend_from_slice(bytes);
                }
                None => put_varint(&mut body, -1),
            }
        }
        put_varint(&mut body, 0); // no headers
        put_varint(&mut bytes, body.len() as i64);
        bytes.extend_from_slice(&body);
    }
    let mut buf = vec![0u8; HEADER_LEN];
    buf.extend_from_slice(&bytes);
    let len = buf.len();
    buf[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&((len - LOG_OVERHEAD) as i32).to_be_bytes());
    buf[MAGIC] = 2;
    buf[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    let last_delta = records.len() as i32 - 1;
    buf[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4].copy_from_slice(&last_delta.to_be_bytes());
    buf[BASE_TIMESTAMP..BASE_TIMESTAMP + 8].copy_from_slice(&base_timestamp.to_be_bytes());
    buf[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&base_timestamp.to_be_bytes());
    buf[PRODUCER_ID..PRODUCER_ID + 8].copy_from_slice(&producer_id.to_be_bytes());
    buf[PRODUCER_EPOCH..PRODUCER_EPOCH + 2].copy_from_slice(&producer_epoch.to_be_bytes());
    buf[BASE_SEQUENCE..BASE_SEQUENCE + 4].copy_from_slice(&base_sequence.to_be_bytes());
    buf[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&(records.len() as i32).to_be_bytes());
    let crc = crc32c::crc32c(&buf[ATTRIBUTES..]);
    buf[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    buf
}

fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        if zigzag < 0x80 {
            out.push(zigzag as u8);
            return;
        }
        out.push((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
}

fn read_varint(buf: &mut &[u8]) -> Option<i64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first()?;
        *buf = rest;
        value |= ((byte & 0x7f) as u64) << shift;
        if byte < 0x80 {
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

/// Builds valid batches for tests across the workspace; records inside are
/// minimal but well-formed.
pub mod testing {
    use super::*;

    /// A v2 batch of `count` uncompressed records with the given values.
    pub fn batch(base_timestamp: i64, values: &[&[u8]]) -> Vec<u8> {
        batch_with_producer(base_timestamp, values, -1, -1, -1)
    }

    /// Like [`batch`], stamped with an idempotent producer's identity.
    pub fn batch_with_producer(base_timestamp: i64, values: &[&[u8]], producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Vec<u8> {
        let records: Vec<KeyValue> = values.iter().map(|v| (None, Some(*v))).collect();
        assemble(&records, 0, base_timestamp, producer_id, producer_epoch, base_sequence)
    }

    /// Like [`batch_with_producer`], inside the producer's transaction.
    pub fn transactional_batch(base_timestamp: i64, values: &[&[u8]], producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Vec<u8> {
        let records: Vec<KeyValue> = values.iter().map(|v| (None, Some(*v))).collect();
        assemble(&records, TRANSACTIONAL_BIT, base_timestamp, producer_id, producer_epoch, base_sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_batch_round_trips_header() {
        let buf = testing::batch(1_000, &[b"a", b"bb", b"ccc"]);
        let header = validate(&buf).unwrap();
        assert_eq!(header.records_count, 3);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(header.size, buf.len());
    }

    #[test]
    fn flipped_payload_bit_fails_crc() {
        let mut buf = testing::batch(1_000, &[b"hello"]);
        let last = buf.len() - 2;
        buf[last] ^= 1;
        assert_eq!(validate(&buf), Err(BatchError::CrcMismatch));
    }

    #[test]
    fn markers_are_control_batches_kafka_clients_can_read() {
        for commit in [true, false] {
            let marker = control_batch(42, 3, commit, 7, 1_700_000_000_000);
            let header = validate(&marker).expect("a well-formed batch");
            assert!(header.is_control() && header.is_transactional());
            assert_eq!((header.producer_id, header.producer_epoch, header.base_sequence), (42, 3, -1));
            assert_eq!(marker_commits(&marker), Some(commit));
            let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes::Bytes::from(marker)).unwrap();
            assert!(set.records[0].control);
            assert_eq!(set.records[0].key.as_deref(), Some(&[0u8, 0, 0, commit as u8][..]));
        }
        assert_eq!(marker_commits(&testing::batch(1, &[b"data"])), None);
        let marker = control_batch(1, 0, true, 0, 0);
        for cut in 0..marker.len() {
            assert_eq!(marker_commits(&marker[..cut]), None, "a torn marker is not read as one");
        }
    }

    #[test]
    fn old_magic_is_rejected() {
        let mut buf = testing::batch(1_000, &[b"hello"]);
        buf[MAGIC] = 1;
        assert_eq!(validate(&buf), Err(BatchError::UnsupportedMagic(1)));
    }

    #[test]
    fn offset_assignment_keeps_crc_valid() {
        let mut buf = testing::batch(1_000, &[b"x"]);
        assign_offset(&mut buf, 42, 0);
        assert_eq!(validate(&buf).unwrap().base_offset, 42);
        set_log_append_time(&mut buf, 7);
        assert_eq!(validate(&buf).unwrap().max_timestamp, 7);
    }

    #[test]
    fn split_finds_each_batch_and_rejects_partial_tail() {
        let mut buf = testing::batch(1, &[b"a"]);
        buf.extend(testing::batch(2, &[b"b", b"c"]));
        assert_eq!(split(&buf).unwrap().len(), 2);
        buf.truncate(buf.len() - 1);
        assert_eq!(split(&buf), Err(BatchError::Truncated));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = validate(&bytes);
            let _ = split(&bytes);
        }
    }
}
