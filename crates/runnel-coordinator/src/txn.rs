//! The transaction coordinator as a pure state machine, after Apache
//! Kafka's (transaction protocol version 1, as Kafka 3.7 serves it).
//!
//! Every change of a transactional id's metadata is first *proposed*: the
//! caller makes the proposed [`TxnMetadata`] durable (in
//! `__transaction_state`) and then [`TxnCoordinator::complete`]s it, or
//! drops it if the write failed. While a change is pending, other requests
//! for that id are answered CONCURRENT_TRANSACTIONS, which clients retry.
//!
//! Ending a transaction takes two durable steps with the markers between:
//! EndTxn proposes `PrepareCommit`/`PrepareAbort` (answered once durable);
//! the caller then writes a COMMIT or ABORT marker to every partition of
//! the transaction and calls [`TxnCoordinator::markers_written`], which
//! proposes `CompleteCommit`/`CompleteAbort`. After a restart, replayed
//! metadata in a prepare state names the markers still to write.

use std::collections::{BTreeSet, HashMap};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::offsets::{get_string, put_string};
use crate::Millis;

/// Where a transactional id's current transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    /// No transaction yet, or the producer was just (re)initialised.
    Empty,
    /// Partitions have been added; records may be written.
    Ongoing,
    /// Commit decided and durable; markers are being written.
    PrepareCommit,
    /// Abort decided and durable; markers are being written.
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    /// The producer's epoch was bumped to fence it; an abort follows.
    PrepareEpochFence,
    /// The id expired and is being forgotten.
    Dead,
}

impl TxnState {
    /// The name DescribeTransactions and ListTransactions report.
    pub fn as_str(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
            TxnState::Dead => "Dead",
        }
    }

    /// Kafka's numeric id of the state in `__transaction_state` records.
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    /// Every state, in the order of their ids.
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    pub fn from_id(id: i8) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.id() == id)
    }
}

/// A partition taking part in a transaction.
pub type TxnPartition = (String, i32);

/// What the coordinator knows of one transactional id; also what is made
/// durable for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub producer_id: i64,
    /// The producer id before the last rotation (-1 if none), so a retried
    /// InitProducerId that lost its answer is recognised.
    pub last_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump (-1 if none), for the same reason.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<TxnPartition>,
    /// When the current (or last) transaction began; -1 before the first.
    pub start_ms: Millis,
    pub last_update_ms: Millis,
}

const LOG_KEY_VERSION: i16 = 0;
const LOG_VALUE_VERSION: i16 = 0;

impl TxnMetadata {
    /// The `__transaction_state` key of a transactional id, in Apache
    /// Kafka's schema (key v0), so tools that read the topic understand it.
    pub fn encode_key(transactional_id: &str) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i16(LOG_KEY_VERSION);
        put_string(&mut buf, transactional_id);
        buf.freeze()
    }

    pub fn decode_key(mut buf: Bytes) -> Option<String> {
        (buf.remaining() >= 2 && buf.get_i16() == LOG_KEY_VERSION).then(|| get_string(&mut buf)).flatten()
    }

    /// The record value, in Apache Kafka's schema (value v0). The previous
    /// producer id and epoch are not part of it: after a restart a lost
    /// answer is retried as a new initialisation.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i16(LOG_VALUE_VERSION);
        buf.put_i64(self.producer_id);
        buf.put_i16(self.producer_epoch);
        buf.put_i32(self.timeout_ms);
        buf.put_i8(self.state.id());
        let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
        for (topic, partition) in &self.partitions {
            match topics.last_mut() {
                Some((last, partitions)) if *last == topic.as_str() => partitions.push(*partition),
                _ => topics.push((topic, vec![*partition])),
            }
        }
        buf.put_i32(topics.len() as i32);
        for (topic, partitions) in topics {
            put_string(&mut buf, topic);
            buf.put_i32(partitions.len() as i32);
            for partition in partitions {
                buf.put_i32(partition);
            }
        }
        buf.put_i64(self.last_update_ms);
        buf.put_i64(self.start_ms);
        buf.freeze()
    }

    /// Decodes a record value; `None` for an unknown version or damage.
    pub fn decode(mut buf: Bytes) -> Option<TxnMetadata> {
        let need = |buf: &Bytes, n: usize| (buf.remaining() >= n).then_some(());
        need(&buf, 17)?;
        if buf.get_i16() != LOG_VALUE_VERSION {
            return None;
        }
        let producer_id = buf.get_i64();
        let producer_epoch = buf.get_i16();
        let timeout_ms = buf.get_i32();
        let state = TxnState::from_id(buf.get_i8())?;
        need(&buf, 4)?;
        let topics = buf.get_i32();
        let mut partitions = BTreeSet::new();
        for _ in 0..topics.max(0) {
            let topic = get_string(&mut buf)?;
            need(&buf, 4)?;
            let count = buf.get_i32();
            for _ in 0..count.max(0) {
                need(&buf, 4)?;
                partitions.insert((topic.clone(), buf.get_i32()));
            }
        }
        need(&buf, 16)?;
        let last_update_ms = buf.get_i64();
        let start_ms = buf.get_i64();
        Some(TxnMetadata {
            producer_id,
            last_producer_id: -1,
            producer_epoch,
            last_producer_epoch: -1,
            timeout_ms,
            state,
            partitions,
            start_ms,
            last_update_ms,
        })
    }
}

/// Why a transactional request was refused; the broker maps each to its
/// Kafka error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    #[error("the transaction timeout is not positive or exceeds transaction.max.timeout.ms")]
    InvalidTransactionTimeout,
    #[error("another operation on this transactional id is in progress; retry")]
    ConcurrentTransactions,
    #[error("a newer producer with the same transactional id has fenced this one")]
    ProducerFenced,
    #[error("the producer id does not belong to this transactional id")]
    InvalidProducerIdMapping,
    #[error("the transaction is not in a state that allows this request")]
    InvalidTxnState,
    #[error("the transactional id is empty")]
    InvalidRequest,
}

/// Limits the coordinator enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`: the longest timeout a producer may ask.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: an id idle this long is forgotten.
    pub id_expiration_ms: i64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig { max_timeout_ms: 900_000, id_expiration_ms: 7 * 24 * 3600 * 1000 }
    }
}

/// A change to make durable before it takes effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub transactional_id: String,
    /// `None` forgets the id (a tombstone).
    pub metadata: Option<TxnMetadata>,
}

/// What an InitProducerId for a transactional id needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitOutcome {
    /// Make this durable, complete it, and answer with its producer id
    /// and epoch.
    Persist(Proposal),
    /// A transaction was open: the old producer is fenced and its
    /// transaction aborted (make durable, then write ABORT markers); the
    /// client is told CONCURRENT_TRANSACTIONS and retries.
    FenceAndAbort(Proposal),
}

/// What an EndTxn needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndOutcome {
    /// Make this prepare state durable, complete it, answer success, then
    /// write the markers it names.
    Prepare(Proposal),
    /// A retry of an EndTxn that already completed: answer success.
    AlreadyDone,
}

/// Markers to write: every partition of a decided transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Markers {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub partitions: BTreeSet<TxnPartition>,
}

/// Epochs stop short of `i16::MAX`: at the last one the producer gets a
/// new id instead (KIP-360).
const LAST_EPOCH: i16 = i16::MAX - 1;

#[derive(Debug, Default)]
pub struct TxnCoordinator {
    config: TxnConfig,
    txns: HashMap<String, Entry>,
}

#[derive(Debug)]
struct Entry {
    metadata: TxnMetadata,
    pending: Option<Option<TxnMetadata>>,
}

impl TxnCoordinator {
    pub fn new(config: TxnConfig) -> TxnCoordinator {
        TxnCoordinator { config, txns: HashMap::new() }
    }

    /// Current metadata of an id (pending changes not applied).
    pub fn get(&self, transactional_id: &str) -> Option<&TxnMetadata> {
        self.txns.get(transactional_id).map(|e| &e.metadata)
    }

    /// Every id with its metadata, for ListTransactions.
    pub fn all(&self) -> impl Iterator<Item = (&str, &TxnMetadata)> {
        self.txns.iter().map(|(id, e)| (id.as_str(), &e.metadata))
    }

    /// Replays one `__transaction_state` record at start-up (`None` is a
    /// tombstone).
    pub fn load(&mut self, transactional_id: &str, metadata: Option<TxnMetadata>) {
        match metadata {
            Some(metadata) => {
                self.txns.insert(transactional_id.to_string(), Entry { metadata, pending: None });
            }
            None => {
                self.txns.remove(transactional_id);
            }
        }
    }

    /// Markers that replayed metadata still owes: transactions decided
    /// before a restart whose markers may not all have been written.
    pub fn unfinished_markers(&self) -> Vec<Markers> {
        self.txns.iter().filter_map(|(id, e)| markers_for(id, &e.metadata)).collect()
    }

    /// Applies a proposal once it is durable, or drops it if `durable` is
    /// false (the write failed; the old state stands).
    pub fn complete(&mut self, transactional_id: &str, durable: bool) {
        let Some(entry) = self.txns.get_mut(transactional_id) else { return };
        let Some(next) = entry.pending.take() else { return };
        if !durable {
            if entry.metadata.producer_epoch < 0 && entry.metadata.state == TxnState::Empty {
                // A brand-new id whose first write failed never existed.
                self.txns.remove(transactional_id);
            }
            return;
        }
        match next {
            Some(metadata) => entry.metadata = metadata,
            None => {
                self.txns.remove(transactional_id);
            }
        }
    }

    /// InitProducerId with a transactional id. `new_producer_id` allocates
    /// a producer id when one is needed. `expected` is the producer's
    /// current id and epoch when it re-initialises after an error
    /// (InitProducerId v3+, KIP-360).
    pub fn init_producer_id(
        &mut self,
        now: Millis,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        mut new_producer_id: impl FnMut() -> i64,
    ) -> Result<InitOutcome, TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest);
        }
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(TxnError::InvalidTransactionTimeout);
        }
        let entry = self.txns.entry(transactional_id.to_string()).or_insert_with(|| Entry {
            metadata: TxnMetadata {
                producer_id: new_producer_id(),
                last_producer_id: -1,
                producer_epoch: -1,
                last_producer_epoch: -1,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                start_ms: -1,
                last_update_ms: now,
            },
            pending: None,
        });
        if entry.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        let current = &entry.metadata;
        if let Some((expected_id, expected_epoch)) = expected {
            // As Kafka: the expected producer must be this id's current
            // one, or the one before a rotation whose answer was lost.
            let known =
                current.producer_epoch < 0 || expected_id == current.producer_id || (expected_id == current.last_producer_id && expected_epoch >= LAST_EPOCH);
            if !known {
                return Err(TxnError::ProducerFenced);
            }
        }
        match current.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => Err(TxnError::ConcurrentTransactions),
            TxnState::Ongoing => {
                // The old producer's transaction is aborted and its epoch
                // fenced; the new one retries once the abort is done.
                let mut next = current.clone();
                next.last_producer_epoch = current.producer_epoch;
                next.producer_epoch = bump(current.producer_epoch);
                next.state = TxnState::PrepareAbort;
                next.last_update_ms = now;
                entry.pending = Some(Some(next.clone()));
                Ok(InitOutcome::FenceAndAbort(Proposal { transactional_id: transactional_id.to_string(), metadata: Some(next) }))
            }
            TxnState::Dead => Err(TxnError::ConcurrentTransactions),
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let mut next = current.clone();
                let exhausted = current.producer_epoch >= LAST_EPOCH;
                if exhausted && expected.is_none_or(|(_, epoch)| epoch == current.producer_epoch) {
                    next.last_producer_id = current.producer_id;
                    next.last_producer_epoch = current.producer_epoch;
                    next.producer_id = new_producer_id();
                    next.producer_epoch = 0;
                } else {
                    match expected {
                        None => {
                            next.producer_epoch = bump(current.producer_epoch);
                            next.last_producer_epoch = -1;
                        }
                        Some((_, epoch)) if current.producer_epoch < 0 || epoch == current.producer_epoch => {
                            next.producer_epoch = bump(current.producer_epoch);
                            next.last_producer_epoch = current.producer_epoch;
                        }
                        // The answer to the last bump was lost: the same again.
                        Some((_, epoch)) if epoch == current.last_producer_epoch => {}
                        Some(_) => return Err(TxnError::ProducerFenced),
                    }
                }
                next.timeout_ms = timeout_ms;
                next.state = TxnState::Empty;
                next.partitions.clear();
                next.start_ms = -1;
                next.last_update_ms = now;
                entry.pending = Some(Some(next.clone()));
                Ok(InitOutcome::Persist(Proposal { transactional_id: transactional_id.to_string(), metadata: Some(next) }))
            }
        }
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's offsets
    /// partition). `None` when nothing new needs to be durable.
    pub fn add_partitions(
        &mut self,
        now: Millis,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TxnPartition],
    ) -> Result<Option<Proposal>, TxnError> {
        let entry = self.checked(transactional_id, producer_id, producer_epoch)?;
        let current = &entry.metadata;
        match current.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => return Err(TxnError::ConcurrentTransactions),
            TxnState::Dead => return Err(TxnError::InvalidTxnState),
            _ => {}
        }
        if current.state == TxnState::Ongoing && partitions.iter().all(|p| current.partitions.contains(p)) {
            return Ok(None);
        }
        let mut next = current.clone();
        if current.state != TxnState::Ongoing {
            next.start_ms = now;
            next.partitions.clear();
        }
        next.partitions.extend(partitions.iter().cloned());
        next.state = TxnState::Ongoing;
        next.last_update_ms = now;
        entry.pending = Some(Some(next.clone()));
        Ok(Some(Proposal { transactional_id: transactional_id.to_string(), metadata: Some(next) }))
    }

    /// Checks that a produce to `partition` by this producer belongs to its
    /// ongoing transaction (the partition must have been added first).
    pub fn verify_partition(&self, transactional_id: &str, producer_id: i64, producer_epoch: i16, partition: &TxnPartition) -> Result<(), TxnError> {
        let metadata = self.get(transactional_id).ok_or(TxnError::InvalidProducerIdMapping)?;
        if metadata.producer_id != producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if metadata.producer_epoch != producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        if metadata.state != TxnState::Ongoing || !metadata.partitions.contains(partition) {
            return Err(TxnError::InvalidTxnState);
        }
        Ok(())
    }

    /// EndTxn: commit or abort the ongoing transaction.
    pub fn end_transaction(
        &mut self,
        now: Millis,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<EndOutcome, TxnError> {
        let entry = self.checked(transactional_id, producer_id, producer_epoch)?;
        let current = &entry.metadata;
        match (current.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut next = current.clone();
                next.state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
                next.last_update_ms = now;
                entry.pending = Some(Some(next.clone()));
                Ok(EndOutcome::Prepare(Proposal { transactional_id: transactional_id.to_string(), metadata: Some(next) }))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(EndOutcome::AlreadyDone),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => Err(TxnError::ConcurrentTransactions),
            (TxnState::PrepareEpochFence, _) => Err(TxnError::ConcurrentTransactions),
            _ => Err(TxnError::InvalidTxnState),
        }
    }

    /// The markers a durable prepare state calls for.
    pub fn markers(&self, transactional_id: &str) -> Option<Markers> {
        self.get(transactional_id).and_then(|m| markers_for(transactional_id, m))
    }

    /// Every marker of a decided transaction is written: propose the
    /// complete state.
    pub fn markers_written(&mut self, now: Millis, transactional_id: &str) -> Option<Proposal> {
        let entry = self.txns.get_mut(transactional_id)?;
        if entry.pending.is_some() {
            return None;
        }
        let mut next = entry.metadata.clone();
        next.state = match next.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return None,
        };
        // As Apache Kafka: a finished transaction keeps its start time.
        next.partitions.clear();
        next.last_update_ms = now;
        entry.pending = Some(Some(next.clone()));
        Some(Proposal { transactional_id: transactional_id.to_string(), metadata: Some(next) })
    }

    /// Transactions open longer than their timeout are aborted, their
    /// producers fenced by an epoch bump, as Apache Kafka does; ids idle
    /// longer than `transactional.id.expiration.ms` are forgotten.
    pub fn tick(&mut self, now: Millis) -> Vec<Proposal> {
        let mut proposals = Vec::new();
        for (id, entry) in &mut self.txns {
            if entry.pending.is_some() {
                continue;
            }
            let current = &entry.metadata;
            let next = match current.state {
                TxnState::Ongoing if now.saturating_sub(current.start_ms) > current.timeout_ms as i64 => {
                    let mut next = current.clone();
                    next.last_producer_epoch = current.producer_epoch;
                    next.producer_epoch = bump(current.producer_epoch);
                    next.state = TxnState::PrepareAbort;
                    next.last_update_ms = now;
                    Some(next)
                }
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                    if now.saturating_sub(current.last_update_ms) > self.config.id_expiration_ms =>
                {
                    None
                }
                _ => continue,
            };
            entry.pending = Some(next.clone());
            proposals.push(Proposal { transactional_id: id.clone(), metadata: next });
        }
        proposals
    }

    /// The entry for a request naming a producer, after the checks every
    /// such request shares.
    fn checked(&mut self, transactional_id: &str, producer_id: i64, producer_epoch: i16) -> Result<&mut Entry, TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest);
        }
        let entry = self.txns.get_mut(transactional_id).ok_or(TxnError::InvalidProducerIdMapping)?;
        if entry.metadata.producer_id != producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if entry.metadata.producer_epoch != producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        if entry.pending.is_some() {
            return Err(TxnError::ConcurrentTransactions);
        }
        Ok(entry)
    }
}

fn bump(epoch: i16) -> i16 {
    if epoch < 0 {
        0
    } else {
        epoch.saturating_add(1)
    }
}

fn markers_for(transactional_id: &str, metadata: &TxnMetadata) -> Option<Markers> {
    let commit = match metadata.state {
        TxnState::PrepareCommit => true,
        TxnState::PrepareAbort => false,
        _ => return None,
    };
    Some(Markers {
        transactional_id: transactional_id.to_string(),
        producer_id: metadata.producer_id,
        producer_epoch: metadata.producer_epoch,
        commit,
        partitions: metadata.partitions.clone(),
    })
}
