//! The I/O shell around the pure transaction coordinator: metadata made
//! durable in `__transaction_state` before it takes effect, COMMIT and
//! ABORT markers written to every partition of a decided transaction, and
//! the timer that aborts transactions left open.
//!
//! A transaction is finished by one task at a time (the `finishing` set):
//! a marker written twice could otherwise land after the producer's next
//! transaction began and abort it.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use runnel_coordinator::txn::{Markers, Proposal, TxnConfig, TxnCoordinator, TxnMetadata};

use crate::config::{BrokerConfig, FsyncPolicy};
use crate::groups::OFFSETS_TOPIC;
use crate::state::{now_ms, BrokerState, TopicError};

/// The internal topic holding every transactional id's metadata
/// (compacted, one partition).
pub const TXN_TOPIC: &str = "__transaction_state";

/// The coordinator epoch written into markers: one broker has always
/// coordinated every transaction.
const COORDINATOR_EPOCH: i32 = 0;

/// Shared access to the transaction coordinator for the handlers.
pub struct Transactions {
    coordinator: Mutex<TxnCoordinator>,
    /// Ids whose markers a task is writing now.
    finishing: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Transactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transactions").finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Transactions {
    pub fn new(config: &BrokerConfig) -> Transactions {
        let config = TxnConfig { max_timeout_ms: config.transaction_max_timeout_ms, id_expiration_ms: config.transactional_id_expiration_ms };
        Transactions { coordinator: Mutex::new(TxnCoordinator::new(config)), finishing: Mutex::new(HashSet::new()) }
    }

    /// Runs `f` on the coordinator with the wall-clock time: transaction
    /// start and update times are stored and outlive restarts.
    pub fn with<R>(&self, f: impl FnOnce(&mut TxnCoordinator, i64) -> R) -> R {
        f(&mut lock(&self.coordinator), now_ms())
    }

    /// Claims the markers of a decided transaction for the calling task;
    /// `None` when it is not decided or another task is writing them.
    fn claim_markers(&self, transactional_id: &str) -> Option<Markers> {
        let coordinator = lock(&self.coordinator);
        let markers = coordinator.markers(transactional_id)?;
        lock(&self.finishing).insert(transactional_id.to_string()).then_some(markers)
    }

    fn release(&self, transactional_id: &str) {
        lock(&self.finishing).remove(transactional_id);
    }
}

/// Makes a proposed change durable in `__transaction_state`, then applies
/// it; if the write fails the old state stands and the error is returned.
pub async fn persist(state: &BrokerState, proposal: Proposal) -> Result<(), TopicError> {
    let key = TxnMetadata::encode_key(&proposal.transactional_id);
    let value = proposal.metadata.as_ref().map(TxnMetadata::encode);
    let written = state.append_internal(TXN_TOPIC, vec![(key, value)]).await;
    if let Err(e) = &written {
        tracing::error!(transactional_id = %proposal.transactional_id, error = %e, "could not store transaction state");
    }
    state.txns.with(|c, _| c.complete(&proposal.transactional_id, written.is_ok()));
    written
}

/// Writes the markers of a decided transaction to all its partitions and
/// records it complete. Does nothing if the transaction is not decided or
/// is being finished by another task.
pub async fn finish(state: &BrokerState, transactional_id: &str) -> Result<(), TopicError> {
    let Some(markers) = state.txns.claim_markers(transactional_id) else { return Ok(()) };
    let result = async {
        write_markers(state, &markers).await?;
        match state.txns.with(|c, now| c.markers_written(now, transactional_id)) {
            Some(proposal) => persist(state, proposal).await,
            None => Ok(()),
        }
    }
    .await;
    state.txns.release(transactional_id);
    if let Err(e) = &result {
        tracing::warn!(%transactional_id, error = %e, "could not finish transaction; retrying later");
    }
    result
}

/// Appends a marker to every partition of the transaction and waits until
/// they are durable. A partition whose topic was deleted needs none.
/// Markers on `__consumer_offsets` also decide the offsets the transaction
/// committed.
async fn write_markers(state: &BrokerState, markers: &Markers) -> Result<(), TopicError> {
    let mut written = Vec::with_capacity(markers.partitions.len());
    for (topic, index) in &markers.partitions {
        let Some(partition) = state.topic(topic).and_then(|t| t.partition(*index)) else { continue };
        let offset = partition
            .log
            .append_marker(markers.producer_id, markers.producer_epoch, markers.commit, COORDINATOR_EPOCH, now_ms())
            .inspect_err(|e| partition.report(e))?;
        written.push((partition, offset, topic == OFFSETS_TOPIC));
    }
    for (partition, offset, offsets_topic) in written {
        if state.config.fsync != FsyncPolicy::Never {
            partition.log.flush_to(offset + 1).await.inspect_err(|e| partition.report(e))?;
        }
        if offsets_topic {
            state.groups.with(|c, now| c.complete_txn_offsets(now, markers.producer_id, markers.commit));
        }
    }
    // read_committed fetches waiting at the last stable offset may go on.
    state.appended.notify_waiters();
    Ok(())
}

/// One round of the coordinator's timer: aborts transactions open past
/// their timeout (fencing their producers), forgets expired ids, and
/// finishes decided transactions whose markers are not all written (after
/// a restart, or a failed write).
pub async fn tick(state: &BrokerState) {
    let proposals = state.txns.with(|c, now| c.tick(now));
    for proposal in proposals {
        let id = proposal.transactional_id.clone();
        let aborting = proposal.metadata.is_some();
        if persist(state, proposal).await.is_ok() && aborting {
            tracing::info!(transactional_id = %id, "aborted a transaction open past its timeout");
        }
    }
    let unfinished = state.txns.with(|c, _| c.unfinished_markers());
    for markers in unfinished {
        let _ = finish(state, &markers.transactional_id).await;
    }
}
