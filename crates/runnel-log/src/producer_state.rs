//! Idempotent-producer state of one partition: the sequence checks that let
//! a retried batch be acknowledged without being appended twice, and the
//! snapshots that keep that state across restarts.
//!
//! As in Apache Kafka, the state is a function of the log: replaying batch
//! headers rebuilds it. A snapshot records it at one offset (every segment
//! roll, and the log end at a clean shutdown), so start-up loads the newest
//! snapshot and replays only the batches after it, and a producer is
//! forgotten only when it has been silent for `producer.id.expiration.ms`,
//! never because other producers wrote a lot. Pure apart from the snapshot
//! file helpers.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};

use crate::batch::BatchHeader;

/// How many recent batches per producer are remembered for duplicate
/// detection; matches `max.in.flight.requests.per.connection` = 5.
pub const MAX_IN_FLIGHT: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchMeta {
    first_sequence: i32,
    last_sequence: i32,
    base_offset: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    /// Largest record timestamp of the producer's newest batch; expiry is
    /// measured from it, as in Kafka.
    last_timestamp: i64,
    recent: VecDeque<BatchMeta>,
    /// First offset of the producer's open transaction here, if any: the
    /// log is unstable from it until the transaction's marker.
    txn_first_offset: Option<i64>,
}

/// A transaction this partition saw aborted: a read_committed consumer
/// skips its producer's records from `first_offset` to the ABORT marker
/// at `last_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// What DescribeProducers reports of one producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerSummary {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Sequence of the newest record, -1 when none was numbered.
    pub last_sequence: i32,
    pub last_timestamp: i64,
    /// First offset of its open transaction here, -1 when none is open.
    pub txn_start_offset: i64,
}

/// The base sequence of batches the broker writes for a producer itself
/// (transactional offset commits): they carry no sequence to check.
pub const NO_SEQUENCE: i32 = -1;

/// Why a batch may not be appended.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SequenceError {
    #[error("producer {producer_id} sent sequence {sequence}, expected {expected}")]
    OutOfOrder { producer_id: i64, sequence: i32, expected: i32 },
    #[error("producer {producer_id} epoch {epoch} is older than {current_epoch}")]
    Fenced { producer_id: i64, epoch: i16, current_epoch: i16 },
    #[error("a retried batch arrived together with new ones")]
    DuplicateWithNew,
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceVerdict {
    /// New data in order: append it.
    Append,
    /// Already in the log at `base_offset`: acknowledge, do not append.
    Duplicate { base_offset: i64 },
}

/// Producer state of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStates {
    /// Judges one batch against what this partition has seen of its
    /// producer.
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceVerdict, SequenceError> {
        if !header.has_producer_id() || header.base_sequence == NO_SEQUENCE {
            return Ok(SequenceVerdict::Append);
        }
        let Some(entry) = self.producers.get(&header.producer_id) else {
            // No state: a new producer, or one that expired. Either way
            // there is nothing to compare against.
            return Ok(SequenceVerdict::Append);
        };
        let out_of_order = |expected| SequenceError::OutOfOrder { producer_id: header.producer_id, sequence: header.base_sequence, expected };
        if header.producer_epoch < entry.epoch {
            return Err(SequenceError::Fenced { producer_id: header.producer_id, epoch: header.producer_epoch, current_epoch: entry.epoch });
        }
        if header.producer_epoch > entry.epoch {
            return if header.base_sequence == 0 { Ok(SequenceVerdict::Append) } else { Err(out_of_order(0)) };
        }
        if let Some(dup) = entry.recent.iter().find(|b| b.first_sequence == header.base_sequence && b.last_sequence == header.last_sequence()) {
            return Ok(SequenceVerdict::Duplicate { base_offset: dup.base_offset });
        }
        let expected = entry.recent.back().map_or(0, |b| b.last_sequence.wrapping_add(1) & i32::MAX);
        if header.base_sequence == expected {
            Ok(SequenceVerdict::Append)
        } else {
            Err(out_of_order(expected))
        }
    }

    /// Judges the batches of one produce request together: either all are
    /// new, or the request is a retry of a single batch already in the log
    /// (`Some(base offset)`).
    pub fn check_all(&self, headers: &[BatchHeader]) -> Result<Option<i64>, SequenceError> {
        for header in headers {
            match self.check(header)? {
                SequenceVerdict::Append => {}
                SequenceVerdict::Duplicate { base_offset } if headers.len() == 1 => return Ok(Some(base_offset)),
                SequenceVerdict::Duplicate { .. } => return Err(SequenceError::DuplicateWithNew),
            }
        }
        Ok(None)
    }

    /// Records a batch that is in the log at `header.base_offset`. Control
    /// batches (transaction markers) go through [`ProducerStates::record_marker`].
    pub fn record(&mut self, header: &BatchHeader) {
        if !header.has_producer_id() || header.is_control() {
            return;
        }
        let entry = self.producers.entry(header.producer_id).or_default();
        if header.is_transactional() && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(header.base_offset);
        }
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.recent.clear();
        }
        entry.last_timestamp = entry.last_timestamp.max(header.max_timestamp);
        if header.base_sequence == NO_SEQUENCE {
            return;
        }
        if entry.recent.len() == MAX_IN_FLIGHT {
            entry.recent.pop_front();
        }
        entry.recent.push_back(BatchMeta { first_sequence: header.base_sequence, last_sequence: header.last_sequence(), base_offset: header.base_offset });
    }

    /// Records a transaction marker of `producer_id` at `offset`: its open
    /// transaction here ends. Returns the transaction if the marker
    /// aborted one.
    pub fn record_marker(&mut self, producer_id: i64, epoch: i16, offset: i64, commit: bool) -> Option<AbortedTxn> {
        let entry = self.producers.entry(producer_id).or_default();
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.recent.clear();
        }
        let first_offset = entry.txn_first_offset.take()?;
        (!commit).then_some(AbortedTxn { producer_id, first_offset, last_offset: offset })
    }

    /// Where the log stops being stable: the first offset of the oldest
    /// open transaction, if any (the last stable offset, LSO).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producers.values().filter_map(|e| e.txn_first_offset).min()
    }

    /// Forgets producers whose newest batch is `expiration_ms` or more
    /// older than `now_ms` (`producer.id.expiration.ms`), except those
    /// with a transaction still open. Returns how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, entry| entry.txn_first_offset.is_some() || now_ms - entry.last_timestamp < expiration_ms);
        before - self.producers.len()
    }

    /// Every producer this partition remembers, by id, for
    /// DescribeProducers.
    pub fn summaries(&self) -> Vec<ProducerSummary> {
        let mut summaries: Vec<ProducerSummary> = self
            .producers
            .iter()
            .map(|(&producer_id, entry)| ProducerSummary {
                producer_id,
                producer_epoch: entry.epoch,
                last_sequence: entry.recent.back().map_or(-1, |b| b.last_sequence),
                last_timestamp: entry.last_timestamp,
                txn_start_offset: entry.txn_first_offset.unwrap_or(-1),
            })
            .collect();
        summaries.sort_unstable_by_key(|s| s.producer_id);
        summaries
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Encodes the state as a snapshot file's bytes (format v2):
    ///
    /// ```text
    /// magic "RNPS" | version u16 | crc32c u32 of the rest | count u32
    /// count x (producer id i64 | epoch i16 | last timestamp i64 |
    ///          open transaction's first offset i64, -1 if none |
    ///          batches u8 | batches x (first seq i32 | last seq i32 | base offset i64))
    /// ```
    ///
    /// Version 1, written before transactions, lacks the transaction field
    /// and still decodes.
    ///
    /// Big-endian, producers sorted by id so equal states encode equally.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(4 + self.producers.len() * 40);
        body.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let entry = &self.producers[&id];
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&entry.epoch.to_be_bytes());
            body.extend_from_slice(&entry.last_timestamp.to_be_bytes());
            body.extend_from_slice(&entry.txn_first_offset.unwrap_or(-1).to_be_bytes());
            body.push(entry.recent.len() as u8);
            for batch in &entry.recent {
                body.extend_from_slice(&batch.first_sequence.to_be_bytes());
                body.extend_from_slice(&batch.last_sequence.to_be_bytes());
                body.extend_from_slice(&batch.base_offset.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(10 + body.len());
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a snapshot; `None` when it is torn, corrupt or of an unknown
    /// version, in which case an older snapshot is used instead.
    pub fn decode_snapshot(bytes: &[u8]) -> Option<ProducerStates> {
        let rest = bytes.strip_prefix(SNAPSHOT_MAGIC.as_slice())?;
        let mut reader = Reader(rest);
        let version = reader.u16()?;
        if version != 1 && version != SNAPSHOT_VERSION {
            return None;
        }
        let crc = reader.u32()?;
        if crc32c::crc32c(reader.0) != crc {
            return None;
        }
        let count = reader.u32()?;
        let mut producers = HashMap::with_capacity((count as usize).min(reader.0.len() / 19));
        for _ in 0..count {
            let id = reader.i64()?;
            let epoch = reader.u16()? as i16;
            let last_timestamp = reader.i64()?;
            let txn_first_offset = if version >= 2 { Some(reader.i64()?).filter(|o| *o >= 0) } else { None };
            let batches = reader.u8()? as usize;
            if batches > MAX_IN_FLIGHT {
                return None;
            }
            let mut recent = VecDeque::with_capacity(batches);
            for _ in 0..batches {
                recent.push_back(BatchMeta { first_sequence: reader.u32()? as i32, last_sequence: reader.u32()? as i32, base_offset: reader.i64()? });
            }
            producers.insert(id, ProducerEntry { epoch, last_timestamp, recent, txn_first_offset });
        }
        reader.0.is_empty().then_some(ProducerStates { producers })
    }
}

const SNAPSHOT_MAGIC: &[u8; 4] = b"RNPS";
const SNAPSHOT_VERSION: u16 = 2;
const SNAPSHOT_SUFFIX: &str = ".snapshot";

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
}

/// Path of the snapshot of the state as of `offset` (every batch below it
/// applied).
pub(crate) fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{}{SNAPSHOT_SUFFIX}", crate::segment::file_stem(offset)))
}

/// Offsets of the snapshot files in `dir`, ascending.
pub(crate) fn snapshot_offsets(dir: &Path) -> io::Result<Vec<i64>> {
    let mut offsets = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(offset) = name.to_str().and_then(|n| n.strip_suffix(SNAPSHOT_SUFFIX)).and_then(|s| s.parse().ok()) {
            offsets.push(offset);
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{testing, validate};

    fn header(producer_id: i64, epoch: i16, seq: i32, records: usize, base_offset: i64) -> BatchHeader {
        let values: Vec<&[u8]> = (0..records).map(|_| b"v".as_slice()).collect();
        let mut h = validate(&testing::batch_with_producer(1_000, &values, producer_id, epoch, seq)).unwrap();
        h.base_offset = base_offset;
        h
    }

    fn out_of_order(producer_id: i64, sequence: i32, expected: i32) -> Result<SequenceVerdict, SequenceError> {
        Err(SequenceError::OutOfOrder { producer_id, sequence, expected })
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut states = ProducerStates::default();
        let first = header(7, 0, 0, 3, 0);
        assert_eq!(states.check(&first), Ok(SequenceVerdict::Append));
        states.record(&first);
        let second = header(7, 0, 3, 2, 3);
        assert_eq!(states.check(&second), Ok(SequenceVerdict::Append));
        states.record(&second);
        assert_eq!(states.check(&header(7, 0, 0, 3, -1)), Ok(SequenceVerdict::Duplicate { base_offset: 0 }));
        assert_eq!(states.check(&header(7, 0, 3, 2, -1)), Ok(SequenceVerdict::Duplicate { base_offset: 3 }));
        assert_eq!(states.check_all(&[header(7, 0, 3, 2, -1), header(7, 0, 5, 1, -1)]), Err(SequenceError::DuplicateWithNew));
    }

    #[test]
    fn gaps_are_out_of_order_and_old_epochs_fenced() {
        let mut states = ProducerStates::default();
        states.record(&header(7, 1, 0, 1, 0));
        assert_eq!(states.check(&header(7, 1, 5, 1, -1)), out_of_order(7, 5, 1));
        assert_eq!(states.check(&header(7, 0, 1, 1, -1)), Err(SequenceError::Fenced { producer_id: 7, epoch: 0, current_epoch: 1 }));
        assert_eq!(states.check(&header(7, 2, 0, 1, -1)), Ok(SequenceVerdict::Append));
        assert_eq!(states.check(&header(7, 2, 4, 1, -1)), out_of_order(7, 4, 0));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut states = ProducerStates::default();
        for i in 0..6 {
            states.record(&header(1, 0, i, 1, i as i64));
        }
        assert_eq!(states.check(&header(1, 0, 0, 1, -1)), out_of_order(1, 0, 6));
        assert_eq!(states.check(&header(1, 0, 1, 1, -1)), Ok(SequenceVerdict::Duplicate { base_offset: 1 }));
    }

    #[test]
    fn non_idempotent_batches_always_append() {
        let states = ProducerStates::default();
        assert_eq!(states.check(&header(-1, -1, -1, 1, 0)), Ok(SequenceVerdict::Append));
    }

    #[test]
    fn producers_expire_by_the_age_of_their_newest_batch_only() {
        let mut states = ProducerStates::default();
        states.record(&header(1, 0, 0, 1, 0));
        let mut late = header(2, 0, 0, 1, 1);
        late.max_timestamp = 5_000;
        states.record(&late);
        assert_eq!(states.expire(6_000, 4_500), 1);
        assert_eq!(states.check(&header(2, 0, 0, 1, -1)), Ok(SequenceVerdict::Duplicate { base_offset: 1 }));
        assert_eq!(states.check(&header(1, 0, 5, 1, -1)), Ok(SequenceVerdict::Append), "an expired producer starts afresh");
    }

    #[test]
    fn snapshots_round_trip_and_reject_damage() {
        let mut states = ProducerStates::default();
        for i in 0..7 {
            states.record(&header(3, 2, i * 2, 2, i as i64 * 2));
        }
        states.record(&header(9, 0, 0, 1, 20));
        let bytes = states.encode_snapshot();
        assert_eq!(ProducerStates::decode_snapshot(&bytes), Some(states.clone()));
        assert_eq!(ProducerStates::decode_snapshot(&ProducerStates::default().encode_snapshot()), Some(ProducerStates::default()));
        for cut in 0..bytes.len() {
            assert_eq!(ProducerStates::decode_snapshot(&bytes[..cut]), None, "torn at {cut}");
        }
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(ProducerStates::decode_snapshot(&flipped), None);
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = ProducerStates::decode_snapshot(&bytes);
            let mut framed = b"RNPS\x00\x01".to_vec();
            framed.extend_from_slice(&crc32c::crc32c(&bytes).to_be_bytes());
            framed.extend_from_slice(&bytes);
            let _ = ProducerStates::decode_snapshot(&framed);
        }
    }

    #[test]
    fn open_transactions_survive_a_snapshot_and_version_1_snapshots_still_load() {
        let mut states = ProducerStates::default();
        let mut txn = validate(&testing::transactional_batch(1_000, &[b"v"], 9, 0, 0)).unwrap();
        txn.base_offset = 40;
        states.record(&txn);
        assert_eq!(states.first_unstable_offset(), Some(40));
        let loaded = ProducerStates::decode_snapshot(&states.encode_snapshot()).unwrap();
        assert_eq!(loaded.first_unstable_offset(), Some(40));
        assert_eq!(states.clone().record_marker(9, 0, 41, false), Some(AbortedTxn { producer_id: 9, first_offset: 40, last_offset: 41 }));
        assert_eq!(states.record_marker(9, 0, 41, true), None, "a commit ends it without an abort entry");
        assert_eq!(states.first_unstable_offset(), None);

        // Version 1: one producer, id 5, epoch 2, no transaction field.
        let mut body = 1u32.to_be_bytes().to_vec();
        body.extend_from_slice(&5i64.to_be_bytes());
        body.extend_from_slice(&2i16.to_be_bytes());
        body.extend_from_slice(&1_000i64.to_be_bytes());
        body.push(0);
        let mut v1 = SNAPSHOT_MAGIC.to_vec();
        v1.extend_from_slice(&1u16.to_be_bytes());
        v1.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        v1.extend_from_slice(&body);
        let loaded = ProducerStates::decode_snapshot(&v1).expect("a version 1 snapshot loads");
        assert_eq!((loaded.len(), loaded.first_unstable_offset()), (1, None));
    }
}
