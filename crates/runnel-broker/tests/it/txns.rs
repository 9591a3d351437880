//! Transactions with librdkafka's transactional producer: visibility under
//! each isolation level, fencing, transactional offset commits, timeouts,
//! and a commit decided just before a restart.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use runnel_broker::txns;
use runnel_coordinator::txn::{EndOutcome, TxnState};

use crate::support::{blocking, client_config, create_topic, payload, TestBroker};

const TIMEOUT: Duration = Duration::from_secs(10);

type TxnProducer = ThreadedProducer<DefaultProducerContext>;

fn transactional_producer(bootstrap: &str, transactional_id: &str, extra: &[(&str, &str)]) -> TxnProducer {
    let producer: TxnProducer = client_config(bootstrap, &[&[("transactional.id", transactional_id)], extra].concat()).create().unwrap();
    producer.init_transactions(TIMEOUT).unwrap();
    producer
}

/// Sends values to partition 0 and waits until the broker has them.
fn send(producer: &TxnProducer, topic: &str, values: &[&str]) {
    for value in values {
        producer.send(BaseRecord::<str, str>::to(topic).partition(0).key(*value).payload(*value)).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(TIMEOUT).unwrap();
}

fn consumer(bootstrap: &str, isolation: &str, group: &str) -> BaseConsumer {
    client_config(bootstrap, &[("group.id", group), ("isolation.level", isolation), ("enable.auto.commit", "false")]).create().unwrap()
}

/// Every value of partition 0 a consumer at `isolation` reads up to the
/// partition's end as that consumer sees it (the last stable offset for
/// read_committed).
fn read_to_end(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    let consumer = consumer(bootstrap, isolation, "txn-reader");
    let (start, end) = consumer.fetch_watermarks(topic, 0, TIMEOUT).unwrap();
    if end <= start {
        return Vec::new();
    }
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let mut values = Vec::new();
    loop {
        let position = consumer.position().unwrap().find_partition(topic, 0).and_then(|p| p.offset().to_raw()).unwrap_or(-1);
        if position >= end {
            return values;
        }
        assert!(Instant::now() < deadline, "{isolation} consumer stopped at {position} of {end} with {values:?}");
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            values.push(payload(&message.unwrap().detach()));
        }
    }
}

/// The offset a read_committed consumer may read up to: the last stable
/// offset.
fn last_stable_offset(bootstrap: &str, topic: &str) -> i64 {
    consumer(bootstrap, "read_committed", "txn-lso").fetch_watermarks(topic, 0, TIMEOUT).unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_consumers_see_committed_transactions_only() {
    let broker = TestBroker::start().await;
    create_topic(&broker.bootstrap, "txn-visibility", 1, &[]).await;
    let bootstrap = broker.bootstrap.clone();
    let (committed, uncommitted) = blocking(move || {
        let producer = transactional_producer(&bootstrap, "visibility", &[]);
        for (values, commit) in [(&["c1", "c2", "c3"][..], true), (&["a1", "a2"][..], false), (&["c4"][..], true)] {
            producer.begin_transaction().unwrap();
            send(&producer, "txn-visibility", values);
            if commit {
                producer.commit_transaction(TIMEOUT).unwrap();
            } else {
                producer.abort_transaction(TIMEOUT).unwrap();
            }
        }
        (read_to_end(&bootstrap, "txn-visibility", "read_committed"), read_to_end(&bootstrap, "txn-visibility", "read_uncommitted"))
    })
    .await;
    assert_eq!(committed, ["c1", "c2", "c3", "c4"]);
    assert_eq!(uncommitted, ["c1", "c2", "c3", "a1", "a2", "c4"]);
    // Three data batches and three markers: the log end is past all six records.
    let log = broker.state.topic("txn-visibility").unwrap().partition(0).unwrap();
    assert_eq!(log.log.bounds().log_end_offset, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_holds_back_read_committed_consumers_until_it_commits() {
    let broker = TestBroker::start().await;
    create_topic(&broker.bootstrap, "txn-lso", 1, &[]).await;
    let bootstrap = broker.bootstrap.clone();
    blocking(move || {
        let producer = transactional_producer(&bootstrap, "lso", &[]);
        producer.begin_transaction().unwrap();
        send(&producer, "txn-lso", &["t1", "t2"]);
        let plain: TxnProducer = client_config(&bootstrap, &[]).create().unwrap();
        plain.send(BaseRecord::<str, str>::to("txn-lso").partition(0).payload("after")).map_err(|(e, _)| e).unwrap();
        plain.flush(TIMEOUT).unwrap();
        assert_eq!(last_stable_offset(&bootstrap, "txn-lso"), 0, "the open transaction starts at offset 0");
        assert_eq!(read_to_end(&bootstrap, "txn-lso", "read_committed"), Vec::<String>::new());
        producer.commit_transaction(TIMEOUT).unwrap();
        assert_eq!(last_stable_offset(&bootstrap, "txn-lso"), 4, "records, the other producer's record and the marker");
        assert_eq!(read_to_end(&bootstrap, "txn-lso", "read_committed"), ["t1", "t2", "after"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_instance_with_the_same_transactional_id_fences_the_old_one() {
    let broker = TestBroker::start().await;
    create_topic(&broker.bootstrap, "txn-zombie", 1, &[]).await;
    let bootstrap = broker.bootstrap.clone();
    let (zombie_error, committed) = blocking(move || {
        let zombie = transactional_producer(&bootstrap, "zombie", &[]);
        zombie.begin_transaction().unwrap();
        send(&zombie, "txn-zombie", &["zombie"]);
        let successor = transactional_producer(&bootstrap, "zombie", &[]);
        let zombie_error = zombie.commit_transaction(TIMEOUT).unwrap_err();
        successor.begin_transaction().unwrap();
        send(&successor, "txn-zombie", &["successor"]);
        successor.commit_transaction(TIMEOUT).unwrap();
        (zombie_error, read_to_end(&bootstrap, "txn-zombie", "read_committed"))
    })
    .await;
    match &zombie_error {
        KafkaError::Transaction(e) => assert!(e.is_fatal(), "fencing is fatal for the zombie: {e}"),
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(committed, ["successor"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_sent_to_a_transaction_count_only_when_it_commits() {
    let broker = TestBroker::start().await;
    create_topic(&broker.bootstrap, "txn-input", 1, &[]).await;
    create_topic(&broker.bootstrap, "txn-output", 1, &[]).await;
    let bootstrap = broker.bootstrap.clone();
    let committed = blocking(move || {
        let producer = transactional_producer(&bootstrap, "processor", &[]);
        let group = consumer(&bootstrap, "read_committed", "txn-processors");
        let metadata = group.group_metadata().unwrap();
        let committed_offset = || {
            let mut partitions = TopicPartitionList::new();
            partitions.add_partition("txn-input", 0);
            group.committed_offsets(partitions, TIMEOUT).unwrap().find_partition("txn-input", 0).unwrap().offset()
        };
        let offsets = |offset| {
            let mut partitions = TopicPartitionList::new();
            partitions.add_partition_offset("txn-input", 0, Offset::Offset(offset)).unwrap();
            partitions
        };
        producer.begin_transaction().unwrap();
        send(&producer, "txn-output", &["out-1"]);
        producer.send_offsets_to_transaction(&offsets(5), &metadata, TIMEOUT).unwrap();
        producer.abort_transaction(TIMEOUT).unwrap();
        let after_abort = committed_offset();
        producer.begin_transaction().unwrap();
        send(&producer, "txn-output", &["out-2"]);
        producer.send_offsets_to_transaction(&offsets(7), &metadata, TIMEOUT).unwrap();
        producer.commit_transaction(TIMEOUT).unwrap();
        (after_abort, committed_offset(), read_to_end(&bootstrap, "txn-output", "read_committed"))
    })
    .await;
    assert_eq!(committed, (Offset::Invalid, Offset::Offset(7), vec!["out-2".to_string()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_left_open_past_its_timeout_is_aborted() {
    let broker = TestBroker::start_with(|c| c.transaction_timeout_check_interval_ms = 50).await;
    create_topic(&broker.bootstrap, "txn-timeout", 1, &[]).await;
    let bootstrap = broker.bootstrap.clone();
    let outcome = blocking(move || {
        let producer = transactional_producer(
            &bootstrap,
            "forgetful",
            &[("transaction.timeout.ms", "1000"), ("socket.timeout.ms", "1000"), ("message.timeout.ms", "1000")],
        );
        producer.begin_transaction().unwrap();
        send(&producer, "txn-timeout", &["never"]);
        let deadline = Instant::now() + TIMEOUT;
        while last_stable_offset(&bootstrap, "txn-timeout") < 2 {
            assert!(Instant::now() < deadline, "the transaction was not aborted");
            std::thread::sleep(Duration::from_millis(50));
        }
        (producer.commit_transaction(TIMEOUT).is_err(), read_to_end(&bootstrap, "txn-timeout", "read_committed"))
    })
    .await;
    assert_eq!(outcome, (true, Vec::new()), "the commit fails and nothing is visible");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_decided_before_a_restart_is_completed_after_it() {
    // The coordinator's timer runs at start-up and then not for a while:
    // only a restart finishes what was decided.
    let broker = TestBroker::start_with(|c| c.transaction_timeout_check_interval_ms = 600_000).await;
    create_topic(&broker.bootstrap, "txn-restart", 1, &[]).await;
    let bootstrap = broker.bootstrap.clone();
    // The producer stays open; the broker decides its transaction.
    let _producer = blocking(move || {
        let producer = transactional_producer(&bootstrap, "restarted", &[]);
        producer.begin_transaction().unwrap();
        send(&producer, "txn-restart", &["decided"]);
        producer
    })
    .await;
    let metadata = broker.state.txns.with(|c, _| c.get("restarted").cloned()).unwrap();
    let (producer_id, epoch) = (metadata.producer_id, metadata.producer_epoch);
    // The commit decision becomes durable, but the broker stops before
    // writing its markers.
    let decided = broker.state.txns.with(|c, now| c.end_transaction(now, "restarted", producer_id, epoch, true)).unwrap();
    let EndOutcome::Prepare(proposal) = decided else { panic!("expected a prepare step") };
    txns::persist(&broker.state, proposal).await.unwrap();
    assert_eq!(last_stable_offset_async(&broker.bootstrap, "txn-restart").await, 0);
    let broker = broker.restart().await;
    let bootstrap = broker.bootstrap.clone();
    let values = blocking(move || {
        let deadline = Instant::now() + TIMEOUT;
        while last_stable_offset(&bootstrap, "txn-restart") < 2 {
            assert!(Instant::now() < deadline, "the decided commit was not completed after the restart");
            std::thread::sleep(Duration::from_millis(50));
        }
        read_to_end(&bootstrap, "txn-restart", "read_committed")
    })
    .await;
    assert_eq!(values, ["decided"]);
    let state = broker.state.txns.with(|c, _| c.get("restarted").map(|m| m.state));
    assert_eq!(state, Some(TxnState::CompleteCommit));
}

async fn last_stable_offset_async(bootstrap: &str, topic: &str) -> i64 {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    blocking(move || last_stable_offset(&bootstrap, &topic)).await
}
