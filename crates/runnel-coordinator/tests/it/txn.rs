//! The transaction coordinator driven directly: producer fencing, the
//! two-step commit, timeouts, expiry and retries, with no log and no clock.

use runnel_coordinator::txn::*;

const ID: &str = "rides-enricher";

/// A coordinator whose proposals are always made durable at once, with a
/// producer id allocator and a clock.
struct Txns {
    coordinator: TxnCoordinator,
    now: i64,
    next_producer_id: i64,
}

impl Txns {
    fn new() -> Txns {
        Txns { coordinator: TxnCoordinator::new(TxnConfig::default()), now: 1_000_000, next_producer_id: 1000 }
    }

    fn init(&mut self, expected: Option<(i64, i16)>) -> Result<InitOutcome, TxnError> {
        let next = &mut self.next_producer_id;
        self.coordinator.init_producer_id(self.now, ID, 60_000, expected, || {
            *next += 1;
            *next
        })
    }

    /// A producer (re)initialising: returns its id and epoch.
    fn init_durably(&mut self, expected: Option<(i64, i16)>) -> (i64, i16) {
        let Ok(InitOutcome::Persist(proposal)) = self.init(expected) else { panic!("expected a persisted init") };
        self.coordinator.complete(ID, true);
        let metadata = proposal.metadata.unwrap();
        (metadata.producer_id, metadata.producer_epoch)
    }

    fn add(&mut self, producer: (i64, i16), partitions: &[(&str, i32)]) -> Result<Option<Proposal>, TxnError> {
        let partitions: Vec<TxnPartition> = partitions.iter().map(|(t, p)| (t.to_string(), *p)).collect();
        let added = self.coordinator.add_partitions(self.now, ID, producer.0, producer.1, &partitions)?;
        if added.is_some() {
            self.coordinator.complete(ID, true);
        }
        Ok(added)
    }

    /// EndTxn, then the markers, as the broker drives them; returns the
    /// markers written.
    fn end(&mut self, producer: (i64, i16), commit: bool) -> Result<Option<Markers>, TxnError> {
        match self.coordinator.end_transaction(self.now, ID, producer.0, producer.1, commit)? {
            EndOutcome::AlreadyDone => Ok(None),
            EndOutcome::Prepare(_) => {
                self.coordinator.complete(ID, true);
                let markers = self.coordinator.markers(ID).expect("a prepared transaction names its markers");
                self.coordinator.markers_written(self.now, ID).expect("completion is proposed");
                self.coordinator.complete(ID, true);
                Ok(Some(markers))
            }
        }
    }

    fn state(&self) -> TxnState {
        self.coordinator.get(ID).unwrap().state
    }
}

#[test]
fn a_transaction_commits_in_two_durable_steps_with_markers_between() {
    let mut t = Txns::new();
    let producer = t.init_durably(None);
    assert_eq!(producer, (1001, 0));
    assert_eq!(t.state(), TxnState::Empty);
    assert!(t.add(producer, &[("rides", 0), ("rides", 1)]).unwrap().is_some());
    assert_eq!(t.add(producer, &[("rides", 1)]).unwrap(), None, "nothing new to make durable");
    assert!(t.add(producer, &[("__consumer_offsets", 0)]).unwrap().is_some());
    assert_eq!(t.state(), TxnState::Ongoing);

    let Ok(EndOutcome::Prepare(proposal)) = t.coordinator.end_transaction(t.now, ID, producer.0, producer.1, true) else { panic!("prepare") };
    assert_eq!(proposal.metadata.as_ref().unwrap().state, TxnState::PrepareCommit);
    assert_eq!(t.add(producer, &[("rides", 2)]), Err(TxnError::ConcurrentTransactions), "not while the decision is being written");
    t.coordinator.complete(ID, true);
    let markers = t.coordinator.markers(ID).unwrap();
    assert!(markers.commit);
    assert_eq!(markers.partitions.len(), 3);
    assert_eq!(t.add(producer, &[("rides", 2)]), Err(TxnError::ConcurrentTransactions), "not while markers are written");
    t.coordinator.markers_written(t.now, ID).unwrap();
    t.coordinator.complete(ID, true);
    assert_eq!(t.state(), TxnState::CompleteCommit);
    assert!(t.coordinator.get(ID).unwrap().partitions.is_empty());

    assert_eq!(t.end(producer, true).unwrap(), None, "a retried commit succeeds");
    assert_eq!(t.end(producer, false), Err(TxnError::InvalidTxnState), "an abort after a commit does not");
    // The next transaction starts afresh.
    t.add(producer, &[("rides", 5)]).unwrap();
    let markers = t.end(producer, false).unwrap().unwrap();
    assert!(!markers.commit);
    assert_eq!(markers.partitions.into_iter().collect::<Vec<_>>(), vec![("rides".to_string(), 5)]);
    assert_eq!(t.state(), TxnState::CompleteAbort);
}

#[test]
fn a_new_producer_with_the_same_id_fences_the_old_one() {
    let mut t = Txns::new();
    let zombie = t.init_durably(None);
    let successor = t.init_durably(None);
    assert_eq!(successor, (zombie.0, zombie.1 + 1), "same producer id, next epoch");
    assert_eq!(t.add(zombie, &[("rides", 0)]), Err(TxnError::ProducerFenced));
    assert_eq!(t.coordinator.verify_partition(ID, zombie.0, zombie.1, &("rides".into(), 0)), Err(TxnError::ProducerFenced));
    assert_eq!(t.coordinator.add_partitions(t.now, ID, 9999, 0, &[("rides".into(), 0)]), Err(TxnError::InvalidProducerIdMapping));
    assert_eq!(t.coordinator.add_partitions(t.now, "nobody", 1, 0, &[("rides".into(), 0)]), Err(TxnError::InvalidProducerIdMapping));
    t.add(successor, &[("rides", 0)]).unwrap();
    assert_eq!(t.coordinator.verify_partition(ID, successor.0, successor.1, &("rides".into(), 0)), Ok(()));
    assert_eq!(t.coordinator.verify_partition(ID, successor.0, successor.1, &("rides".into(), 1)), Err(TxnError::InvalidTxnState), "not added");
}

#[test]
fn initialising_while_a_transaction_is_open_aborts_it_first() {
    let mut t = Txns::new();
    let old = t.init_durably(None);
    t.add(old, &[("rides", 0)]).unwrap();
    let Ok(InitOutcome::FenceAndAbort(proposal)) = t.init(None) else { panic!("fence and abort") };
    let fenced = proposal.metadata.unwrap();
    assert_eq!((fenced.state, fenced.producer_epoch), (TxnState::PrepareAbort, old.1 + 1));
    assert_eq!(t.init(None), Err(TxnError::ConcurrentTransactions), "the new producer retries until the abort is done");
    t.coordinator.complete(ID, true);
    assert_eq!(t.init(None), Err(TxnError::ConcurrentTransactions));
    let markers = t.coordinator.markers(ID).unwrap();
    assert_eq!((markers.commit, markers.producer_epoch), (false, old.1 + 1), "markers carry the fencing epoch");
    t.coordinator.markers_written(t.now, ID).unwrap();
    t.coordinator.complete(ID, true);
    let new = t.init_durably(None);
    assert_eq!(new.1, old.1 + 2);
    assert_eq!(t.end(old, true), Err(TxnError::ProducerFenced));
}

#[test]
fn an_open_transaction_times_out_and_its_producer_is_fenced() {
    let mut t = Txns::new();
    let producer = t.init_durably(None);
    t.add(producer, &[("rides", 0)]).unwrap();
    t.now += 60_000;
    assert!(t.coordinator.tick(t.now).is_empty(), "not before the timeout");
    t.now += 1;
    let proposals = t.coordinator.tick(t.now);
    assert_eq!(proposals.len(), 1);
    assert_eq!(proposals[0].metadata.as_ref().unwrap().state, TxnState::PrepareAbort);
    t.coordinator.complete(ID, true);
    assert!(!t.coordinator.markers(ID).unwrap().commit);
    t.coordinator.markers_written(t.now, ID).unwrap();
    t.coordinator.complete(ID, true);
    assert_eq!(t.end(producer, true), Err(TxnError::ProducerFenced), "the timed-out producer learns it was fenced");
}

#[test]
fn an_idle_transactional_id_expires() {
    let mut t = Txns::new();
    t.init_durably(None);
    t.now += TxnConfig::default().id_expiration_ms;
    assert!(t.coordinator.tick(t.now).is_empty());
    t.now += 1;
    let proposals = t.coordinator.tick(t.now);
    assert_eq!(proposals, vec![Proposal { transactional_id: ID.to_string(), metadata: None }]);
    t.coordinator.complete(ID, true);
    assert!(t.coordinator.get(ID).is_none());
}

#[test]
fn requests_are_checked_before_anything_changes() {
    let mut t = Txns::new();
    for timeout in [0, -1, 900_001] {
        assert_eq!(t.coordinator.init_producer_id(t.now, ID, timeout, None, || 1), Err(TxnError::InvalidTransactionTimeout));
    }
    assert_eq!(t.coordinator.init_producer_id(t.now, "", 1000, None, || 1), Err(TxnError::InvalidRequest));
    assert!(t.coordinator.get(ID).is_none());
}

#[test]
fn a_failed_write_leaves_the_state_as_it_was() {
    let mut t = Txns::new();
    assert!(matches!(t.init(None), Ok(InitOutcome::Persist(_))));
    t.coordinator.complete(ID, false);
    assert!(t.coordinator.get(ID).is_none(), "a new id whose first write failed never existed");
    let producer = t.init_durably(None);
    t.coordinator.add_partitions(t.now, ID, producer.0, producer.1, &[("rides".into(), 0)]).unwrap();
    t.coordinator.complete(ID, false);
    assert_eq!(t.state(), TxnState::Empty);
}

#[test]
fn a_lost_answer_is_retried_without_a_second_bump() {
    let mut t = Txns::new();
    let first = t.init_durably(None);
    let bumped = t.init_durably(Some(first));
    assert_eq!(bumped, (first.0, first.1 + 1));
    // The producer never saw `bumped` and asks again with what it had.
    assert_eq!(t.init_durably(Some(first)), bumped);
    assert_eq!(t.init(Some((first.0, 42))), Err(TxnError::ProducerFenced), "an epoch it never had");
    assert_eq!(t.init(Some((77, 0))), Err(TxnError::ProducerFenced), "a producer id that is not this id's");
}

#[test]
fn an_exhausted_epoch_moves_the_producer_to_a_new_id() {
    let mut t = Txns::new();
    let producer = t.init_durably(None);
    let mut metadata = t.coordinator.get(ID).unwrap().clone();
    metadata.producer_epoch = i16::MAX - 1;
    t.coordinator.load(ID, Some(metadata));
    let exhausted = (producer.0, i16::MAX - 1);
    let rotated = t.init_durably(Some(exhausted));
    assert_ne!(rotated.0, producer.0);
    assert_eq!(rotated.1, 0);
    assert_eq!(t.init_durably(Some(exhausted)), rotated, "a retry after the rotation gets the same new id");
}

#[test]
fn decided_transactions_replayed_after_a_restart_name_their_markers() {
    let mut t = Txns::new();
    let producer = t.init_durably(None);
    t.add(producer, &[("rides", 0), ("zones", 3)]).unwrap();
    t.coordinator.end_transaction(t.now, ID, producer.0, producer.1, true).unwrap();
    t.coordinator.complete(ID, true);
    let durable = t.coordinator.get(ID).unwrap().clone();

    let mut restarted = TxnCoordinator::new(TxnConfig::default());
    restarted.load(ID, Some(durable));
    restarted.load("forgotten", None);
    let owed = restarted.unfinished_markers();
    assert_eq!(owed.len(), 1);
    assert!(owed[0].commit);
    assert_eq!(owed[0].partitions.len(), 2);
    assert_eq!(TxnState::from_id(TxnState::PrepareCommit.id()), Some(TxnState::PrepareCommit));
}

#[test]
fn metadata_round_trips_through_kafkas_transaction_log_schema() {
    let mut t = Txns::new();
    let producer = t.init_durably(None);
    t.add(producer, &[("rides", 0), ("rides", 3), ("zones", 1)]).unwrap();
    let metadata = t.coordinator.get(ID).unwrap().clone();
    let key = TxnMetadata::encode_key(ID);
    assert_eq!(&key[..4], &[0, 0, 0, ID.len() as u8], "key v0: version, then the id as a string");
    assert_eq!(TxnMetadata::decode_key(key).as_deref(), Some(ID));
    let decoded = TxnMetadata::decode(metadata.encode()).unwrap();
    assert_eq!(decoded, TxnMetadata { last_producer_id: -1, last_producer_epoch: -1, ..metadata.clone() });
    let encoded = metadata.encode();
    for cut in 0..encoded.len() {
        assert_eq!(TxnMetadata::decode(encoded.slice(..cut)), None, "a torn value is refused, not misread");
    }
}
