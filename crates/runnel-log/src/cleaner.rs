//! Log compaction's pure core: the map of each key's newest offset, and
//! the rewriting of one batch so that only records still wanted remain.
//! [`crate::PartitionLog::clean`] does the I/O around them.
//!
//! As Apache Kafka's cleaner: a pass maps the keys of the dirty section
//! (written since the last pass) to their newest offsets, then rewrites
//! every sealed segment up to the end of that section, keeping a record
//! only if no newer record of its key was mapped. Offsets are preserved,
//! so the log gains gaps; tombstones (null values) are kept long enough
//! for consumers to see them, then dropped.
//!
//! Transactions, as Apache Kafka's cleaner treats them: nothing at or past
//! the last stable offset is cleaned; records of aborted transactions are
//! neither mapped nor kept; and a COMMIT or ABORT marker goes, like a
//! tombstone, once no record of its transaction remains and it has
//! outlived `delete.retention.ms`.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use bytes::Bytes;
use kafka_protocol::records::Record;

use crate::batch::BatchHeader;
use crate::error::RecordsError;
use crate::producer_state::AbortedTxn;
use crate::records::{self, TopicCodec};

/// How a compacted partition is cleaned (the topic's compaction configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionConfig {
    /// `min.cleanable.dirty.ratio`, in parts per million: the dirty share
    /// of the cleanable log that triggers a pass.
    pub min_dirty_ratio_ppm: u32,
    /// `min.compaction.lag.ms`: records younger than this stay as written.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty record this old forces a pass,
    /// whatever the ratio.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long a tombstone outlives its first pass.
    pub delete_retention_ms: i64,
    /// Keys one pass can map; bounds the cleaner's memory.
    pub max_keys_per_pass: usize,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig {
            min_dirty_ratio_ppm: 500_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 24 * 3600 * 1000,
            max_keys_per_pass: DEFAULT_MAX_KEYS,
        }
    }
}

/// About 64 MiB of map at the digest-and-offset entries below.
const DEFAULT_MAX_KEYS: usize = 1 << 21;

/// A key's digest: 128 bits, so distinct keys practically never collide
/// (Apache Kafka's cleaner keeps a 128-bit MD5 of each key the same way).
pub type KeyDigest = [u8; 16];

pub fn key_digest(key: &[u8]) -> KeyDigest {
    let half = |salt: u8| {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut hasher);
        key.hash(&mut hasher);
        hasher.finish().to_be_bytes()
    };
    let mut digest = [0u8; 16];
    digest[..8].copy_from_slice(&half(0x5a));
    digest[8..].copy_from_slice(&half(0xa5));
    digest
}

/// Each mapped key's newest offset, up to a fixed number of keys.
#[derive(Debug)]
pub struct OffsetMap {
    offsets: HashMap<KeyDigest, i64>,
    capacity: usize,
}

impl OffsetMap {
    pub fn new(capacity: usize) -> OffsetMap {
        OffsetMap { offsets: HashMap::new(), capacity: capacity.max(1) }
    }

    /// Records `offset` as `key`'s newest; false (and nothing recorded)
    /// when the map is full and the key is new.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let digest = key_digest(key);
        if self.offsets.len() >= self.capacity && !self.offsets.contains_key(&digest) {
            return false;
        }
        let newest = self.offsets.entry(digest).or_insert(offset);
        *newest = (*newest).max(offset);
        true
    }

    /// Whether a record of `key` at `offset` is superseded by a newer one.
    pub fn superseded(&self, key: &[u8], offset: i64) -> bool {
        self.offsets.get(&key_digest(key)).is_some_and(|&newest| newest > offset)
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }
}

/// Adds every keyed record of a batch to `map`. Returns false, having
/// added nothing, when the batch's keys do not all fit.
pub fn map_batch(map: &mut OffsetMap, bytes: &[u8], header: &BatchHeader) -> Result<bool, RecordsError> {
    if header.is_control() {
        return Ok(true);
    }
    let set = records::decode(Bytes::copy_from_slice(bytes))?;
    let new_keys = set.records.iter().filter_map(|r| r.key.as_ref()).filter(|k| !map.offsets.contains_key(&key_digest(k))).count();
    if map.len() + new_keys > map.capacity {
        return Ok(false);
    }
    for record in &set.records {
        if let Some(key) = &record.key {
            map.put(key, record.offset);
        }
    }
    Ok(true)
}

/// Whether a batch holds records of a transaction that was aborted
/// (`aborted` sorted by the aborts' marker offsets, as the log keeps it).
pub fn in_aborted_transaction(aborted: &[AbortedTxn], header: &BatchHeader) -> bool {
    if !header.is_transactional() || header.is_control() {
        return false;
    }
    let from = aborted.partition_point(|a| a.last_offset < header.base_offset);
    aborted[from..].iter().any(|a| a.producer_id == header.producer_id && a.first_offset <= header.base_offset)
}

/// Follows, batch by batch in offset order, whether each producer's
/// current transaction still has records in the cleaned log, to tell
/// when its marker has nothing left to decide.
#[derive(Debug, Default)]
pub struct MarkerTracker {
    records_kept: HashMap<i64, bool>,
}

impl MarkerTracker {
    /// A transactional batch of `producer_id` stays in the log.
    pub fn kept(&mut self, producer_id: i64) {
        self.records_kept.insert(producer_id, true);
    }

    /// A marker of `producer_id` ends its transaction; true when no record
    /// of that transaction remains, so the marker may go.
    pub fn marker_is_empty(&mut self, producer_id: i64) -> bool {
        !self.records_kept.remove(&producer_id).unwrap_or(false)
    }
}

/// What cleaning left of a batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Cleaned {
    /// Every record stays: the batch is kept byte for byte.
    Unchanged,
    /// Some records stay, in a new batch with the same codec, offsets,
    /// timestamps and producer identity.
    Rewritten(Vec<u8>),
    /// No record stays.
    Empty,
}

/// Cleans one batch against `map`. `drop_tombstones` says whether this
/// batch's tombstones have outlived `delete.retention.ms`. Also returns
/// how many tombstones stay, so the log knows when to look again.
pub fn clean_batch(map: &OffsetMap, bytes: &[u8], header: &BatchHeader, drop_tombstones: bool) -> Result<(Cleaned, usize), RecordsError> {
    if header.is_control() {
        return Ok((Cleaned::Unchanged, 0));
    }
    let set = records::decode(Bytes::copy_from_slice(bytes))?;
    let total = set.records.len();
    let mut kept: Vec<Record> = set
        .records
        .into_iter()
        .filter(|r| match &r.key {
            None => true,
            Some(key) => {
                let expired_tombstone = drop_tombstones && r.value.is_none();
                !map.superseded(key, r.offset) && !expired_tombstone
            }
        })
        .collect();
    let tombstones = kept.iter().filter(|r| r.key.is_some() && r.value.is_none()).count();
    if kept.len() == total {
        return Ok((Cleaned::Unchanged, tombstones));
    }
    let Some(first) = kept.first().map(|r| r.offset) else { return Ok((Cleaned::Empty, 0)) };
    if header.base_sequence < 0 {
        // No producer sequence: keep it so, one batch for all that stays.
        for record in &mut kept {
            record.sequence = (record.offset - first) as i32 - 1;
        }
    }
    let codec = match header.compression() {
        1 => TopicCodec::Gzip { level: -1 },
        2 => TopicCodec::Snappy,
        3 => TopicCodec::Lz4 { level: 9 },
        4 => TopicCodec::Zstd { level: 3 },
        _ => TopicCodec::Uncompressed,
    };
    Ok((Cleaned::Rewritten(records::encode(&kept, codec)?), tombstones))
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::{Compression, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    use super::*;
    use crate::batch;

    fn batch_of(records: &[(i64, Option<&str>, Option<&str>)], compression: Compression, producer: Option<(i64, i32)>) -> Vec<u8> {
        let records: Vec<Record> = records
            .iter()
            .map(|&(offset, key, value)| Record {
                transactional: false,
                control: false,
                partition_leader_epoch: 0,
                producer_id: producer.map_or(-1, |p| p.0),
                producer_epoch: if producer.is_some() { 0 } else { -1 },
                timestamp_type: TimestampType::Creation,
                offset,
                sequence: producer.map_or(offset as i32 - records[0].0 as i32 - 1, |p| p.1 + (offset - records[0].0) as i32),
                timestamp: 1_700_000_000_000 + offset,
                key: key.map(|k| Bytes::from(k.to_string())),
                value: value.map(|v| Bytes::from(v.to_string())),
                headers: Default::default(),
            })
            .collect();
        let mut out = bytes::BytesMut::new();
        RecordBatchEncoder::encode(&mut out, &records, &RecordEncodeOptions { version: 2, compression }).unwrap();
        out.to_vec()
    }

    fn offsets_and_values(bytes: &[u8]) -> Vec<(i64, Option<Bytes>)> {
        records::decode(Bytes::copy_from_slice(bytes)).unwrap().records.into_iter().map(|r| (r.offset, r.value)).collect()
    }

    #[test]
    fn only_the_newest_record_of_each_key_survives_with_its_offset() {
        let mut map = OffsetMap::new(100);
        let old =
            batch_of(&[(0, Some("a"), Some("1")), (1, Some("b"), Some("1")), (2, Some("a"), Some("2")), (3, None, Some("keyless"))], Compression::None, None);
        let newer = batch_of(&[(4, Some("b"), Some("2"))], Compression::None, None);
        for bytes in [&old, &newer] {
            assert!(map_batch(&mut map, bytes, &batch::validate(bytes).unwrap()).unwrap());
        }
        let (Cleaned::Rewritten(cleaned), _) = clean_batch(&map, &old, &batch::validate(&old).unwrap(), false).unwrap() else { panic!("rewritten") };
        let header = batch::validate(&cleaned).expect("a valid batch");
        assert_eq!((header.base_offset, header.base_sequence, header.producer_id), (2, -1, -1));
        assert_eq!(offsets_and_values(&cleaned), vec![(2, Some(Bytes::from("2"))), (3, Some(Bytes::from("keyless")))]);
        assert_eq!(clean_batch(&map, &newer, &batch::validate(&newer).unwrap(), false).unwrap(), (Cleaned::Unchanged, 0));
    }

    #[test]
    fn compressed_and_idempotent_batches_keep_their_codec_and_producer() {
        let mut map = OffsetMap::new(100);
        let bytes = batch_of(&[(10, Some("k"), Some("old")), (11, Some("j"), Some("x")), (12, Some("k"), Some("new"))], Compression::Zstd, Some((42, 7)));
        let header = batch::validate(&bytes).unwrap();
        map_batch(&mut map, &bytes, &header).unwrap();
        let (Cleaned::Rewritten(cleaned), _) = clean_batch(&map, &bytes, &header, false).unwrap() else { panic!("rewritten") };
        let cleaned_header = batch::validate(&cleaned).unwrap();
        assert_eq!(cleaned_header.compression(), header.compression());
        assert_eq!((cleaned_header.producer_id, cleaned_header.producer_epoch, cleaned_header.base_sequence), (42, 0, 8));
        assert_eq!(offsets_and_values(&cleaned), vec![(11, Some(Bytes::from("x"))), (12, Some(Bytes::from("new")))]);
    }

    #[test]
    fn tombstones_stay_until_their_time_then_go() {
        let mut map = OffsetMap::new(100);
        let bytes = batch_of(&[(0, Some("gone"), None), (1, Some("kept"), Some("v"))], Compression::Gzip, None);
        let header = batch::validate(&bytes).unwrap();
        map_batch(&mut map, &bytes, &header).unwrap();
        assert_eq!(clean_batch(&map, &bytes, &header, false).unwrap(), (Cleaned::Unchanged, 1));
        let (Cleaned::Rewritten(cleaned), 0) = clean_batch(&map, &bytes, &header, true).unwrap() else { panic!("rewritten") };
        assert_eq!(offsets_and_values(&cleaned), vec![(1, Some(Bytes::from("v")))]);
        let only_tombstone = batch_of(&[(5, Some("gone"), None)], Compression::None, None);
        assert_eq!(clean_batch(&map, &only_tombstone, &batch::validate(&only_tombstone).unwrap(), true).unwrap(), (Cleaned::Empty, 0));
    }

    #[test]
    fn a_full_map_refuses_a_batch_whole() {
        let mut map = OffsetMap::new(2);
        let first = batch_of(&[(0, Some("a"), Some("1")), (1, Some("b"), Some("1"))], Compression::None, None);
        let second = batch_of(&[(2, Some("a"), Some("2")), (3, Some("c"), Some("1"))], Compression::None, None);
        assert!(map_batch(&mut map, &first, &batch::validate(&first).unwrap()).unwrap());
        assert!(!map_batch(&mut map, &second, &batch::validate(&second).unwrap()).unwrap());
        assert!(!map.superseded(b"a", 0), "the refused batch added nothing");
        assert!(map.put(b"a", 2), "a known key still fits");
        assert!(map.superseded(b"a", 0));
    }
}
