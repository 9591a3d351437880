//! Crash safety: `kill -9` during `acks=all` produces loses nothing that
//! was acknowledged, a damaged segment tail is repaired on start, and
//! transactions survive a crash whole or not at all.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, FutureProducer, FutureRecord, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::support::{client, read_partition, Serve};

/// Every value in `topic`/0, read from the beginning to the high watermark.
fn read_all(bootstrap: &str, topic: &str) -> Vec<String> {
    read_partition(bootstrap, topic).into_iter().map(|(_, value)| value).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_acks_all_produces_keeps_every_acknowledged_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[], &[]);
    let bootstrap = serve.bootstrap();
    let producer: FutureProducer =
        client(&bootstrap, &[("acks", "all"), ("enable.idempotence", "true"), ("linger.ms", "1"), ("message.timeout.ms", "3000")]).create().unwrap();
    let acked: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    let mut writers = Vec::new();
    for writer in 0..4 {
        let producer = producer.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let value = format!("w{writer}-{i}");
                match producer.send(FutureRecord::<(), _>::to("crash").partition(0).payload(&value), Duration::from_secs(3)).await {
                    Ok(delivery) => {
                        acked.lock().unwrap().insert(value, delivery.offset);
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 2000 {
        assert!(Instant::now() < deadline, "producers made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    serve.kill_9();
    for writer in writers {
        writer.await.unwrap();
    }
    drop(producer);
    let acked = acked.lock().unwrap().clone();

    let restarted = Serve::start(dir.path(), &[], &[]);
    let bootstrap = restarted.bootstrap();
    let values = tokio::task::spawn_blocking(move || read_all(&bootstrap, "crash")).await.unwrap();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for value in &values {
        *seen.entry(value).or_default() += 1;
    }
    for (value, offset) in &acked {
        assert_eq!(seen.get(value.as_str()), Some(&1), "acknowledged {value} at offset {offset} must be present exactly once");
        assert_eq!(values[*offset as usize], *value, "acknowledged {value} kept its offset");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_on_a_segment_tail_is_truncated_at_startup() {
    for clean_stop in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let serve = Serve::start(dir.path(), &[], &[]);
        let producer: FutureProducer = client(&serve.bootstrap(), &[("acks", "all")]).create().unwrap();
        for i in 0..50 {
            producer.send(FutureRecord::<(), _>::to("torn").payload(&format!("r{i}")), Duration::from_secs(10)).await.unwrap();
        }
        drop(producer);
        if clean_stop {
            serve.stop();
        } else {
            serve.kill_9();
        }
        let segment = dir.path().join("torn-0").join("00000000000000000000.log");
        std::fs::OpenOptions::new().append(true).open(&segment).unwrap().write_all(&[0x5a; 1000]).unwrap();

        let restarted = Serve::start(dir.path(), &[], &[]);
        let bootstrap = restarted.bootstrap();
        let values = tokio::task::spawn_blocking(move || read_all(&bootstrap, "torn")).await.unwrap();
        assert_eq!(values, (0..50).map(|i| format!("r{i}")).collect::<Vec<_>>(), "clean_stop={clean_stop}");
        let producer: FutureProducer = client(&restarted.bootstrap(), &[]).create().unwrap();
        let delivery = producer.send(FutureRecord::<(), _>::to("torn").payload("after"), Duration::from_secs(10)).await.unwrap();
        assert_eq!(delivery.offset, 50, "appends continue after the repaired tail");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_offsets_survive_kill_9_and_consumers_resume() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[], &[]);
    let producer: FutureProducer = client(&serve.bootstrap(), &[]).create().unwrap();
    for i in 0..10 {
        producer.send(FutureRecord::<(), _>::to("resumable").payload(&format!("r{i}")), Duration::from_secs(10)).await.unwrap();
    }
    drop(producer);
    let bootstrap = serve.bootstrap();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client(&bootstrap, &[("group.id", "survivors"), ("enable.auto.commit", "false")]).create().unwrap();
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset("resumable", 0, Offset::Offset(6)).unwrap();
        consumer.commit(&offsets, rdkafka::consumer::CommitMode::Sync).unwrap();
    })
    .await
    .unwrap();
    serve.kill_9();

    let restarted = Serve::start(dir.path(), &[], &[]);
    let bootstrap = restarted.bootstrap();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client(&bootstrap, &[("group.id", "survivors"), ("auto.offset.reset", "earliest")]).create().unwrap();
        consumer.subscribe(&["resumable"]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "the group never resumed");
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                let message = message.unwrap();
                assert_eq!(message.offset(), 6, "the group resumes at its committed offset after a crash");
                break;
            }
        }
    })
    .await
    .unwrap();
}

/// Every value a read_committed consumer reads from `topic`/0, up to the
/// last stable offset.
fn read_committed(bootstrap: &str, topic: &str) -> Vec<String> {
    let consumer: BaseConsumer =
        client(bootstrap, &[("group.id", "read-committed"), ("isolation.level", "read_committed"), ("enable.auto.commit", "false")]).create().unwrap();
    let (low, stable) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)).unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Offset(low)).unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut values = Vec::new();
    while consumer.position().unwrap().find_partition(topic, 0).and_then(|p| p.offset().to_raw()).unwrap_or(low) < stable {
        assert!(Instant::now() < deadline, "read_committed consumer stopped short of {stable}");
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            values.push(String::from_utf8(message.unwrap().payload().unwrap().to_vec()).unwrap());
        }
    }
    values
}

/// Commits transactions of ten records (and the group offset `n + 1` for
/// transaction `n`) until the broker goes away, counting the acknowledged
/// ones in `acknowledged`. With the broker gone, librdkafka's
/// `send_offsets_to_transaction` may wait for its coordinator forever, so
/// the caller does not wait for this to return.
fn commit_transactions_until_failure(bootstrap: &str, first: usize, acknowledged: &AtomicUsize) {
    let producer: ThreadedProducer<DefaultProducerContext> =
        client(bootstrap, &[("transactional.id", "crash-txn"), ("message.timeout.ms", "3000"), ("transaction.timeout.ms", "10000")]).create().unwrap();
    producer.init_transactions(Duration::from_secs(10)).unwrap();
    let group: BaseConsumer = client(bootstrap, &[("group.id", "crash-txn-group")]).create().unwrap();
    let metadata = group.group_metadata().unwrap();
    let timeout = Duration::from_secs(3);
    for n in first.. {
        let attempt = (|| {
            producer.begin_transaction()?;
            for i in 0..10 {
                producer.send(BaseRecord::<(), str>::to("crash-txn").partition(0).payload(&format!("t{n}-{i}"))).map_err(|(e, _)| e)?;
            }
            let mut offsets = TopicPartitionList::new();
            offsets.add_partition_offset("crash-txn-input", 0, Offset::Offset(n as i64 + 1))?;
            producer.send_offsets_to_transaction(&offsets, &metadata, timeout)?;
            producer.commit_transaction(timeout)
        })();
        if attempt.is_err() {
            return;
        }
        acknowledged.store(n + 1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_any_point_of_transactions_leaves_whole_transactions_and_their_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut pace = 0x5eed_u64;
    let mut acknowledged_total = 0;
    for round in 0..3 {
        let serve = Serve::start(dir.path(), &[], &[]);
        if round == 0 {
            let admin: AdminClient<DefaultClientContext> = client(&serve.bootstrap(), &[]).create().unwrap();
            let topics = ["crash-txn", "crash-txn-input"].map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(1)));
            for created in admin.create_topics(&topics, &AdminOptions::new()).await.unwrap() {
                created.unwrap();
            }
        }
        let acknowledged = Arc::new(AtomicUsize::new(acknowledged_total));
        {
            let (bootstrap, acknowledged) = (serve.bootstrap(), acknowledged.clone());
            // Not joined (see commit_transactions_until_failure).
            std::thread::spawn(move || commit_transactions_until_failure(&bootstrap, acknowledged_total, &acknowledged));
        }
        // A pseudo-random number of commits, then the crash lands wherever
        // the producer happens to be in its next transaction.
        pace = pace.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let target = acknowledged_total + 5 + (pace >> 60) as usize;
        let deadline = Instant::now() + Duration::from_secs(60);
        while acknowledged.load(Ordering::SeqCst) < target {
            assert!(Instant::now() < deadline, "transactions made no progress");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        serve.kill_9();
        // Acknowledged before the broker died; a commit the broker made
        // whose answer was lost may show up as one more below.
        acknowledged_total = acknowledged.load(Ordering::SeqCst);

        let restarted = Serve::start(dir.path(), &[], &[]);
        let bootstrap = restarted.bootstrap();
        let (values, committed_offset) = tokio::task::spawn_blocking(move || {
            // A new instance aborts whatever the crash left undecided.
            let producer: ThreadedProducer<DefaultProducerContext> = client(&bootstrap, &[("transactional.id", "crash-txn")]).create().unwrap();
            producer.init_transactions(Duration::from_secs(30)).unwrap();
            let group: BaseConsumer = client(&bootstrap, &[("group.id", "crash-txn-group")]).create().unwrap();
            let mut partitions = TopicPartitionList::new();
            partitions.add_partition("crash-txn-input", 0);
            let offset = group.committed_offsets(partitions, Duration::from_secs(10)).unwrap().find_partition("crash-txn-input", 0).unwrap().offset();
            (read_committed(&bootstrap, "crash-txn"), offset.to_raw().unwrap_or(0) as usize)
        })
        .await
        .unwrap();
        // Whole transactions, in order, each once: every acknowledged one,
        // and perhaps the one whose commit was decided as the broker died.
        let transactions = values.len() / 10;
        assert_eq!(values.len() % 10, 0, "round {round}: a transaction is visible in part");
        let expected: Vec<String> = (0..transactions).flat_map(|n| (0..10).map(move |i| format!("t{n}-{i}"))).collect();
        assert_eq!(values, expected, "round {round}");
        assert!(
            transactions == acknowledged_total || transactions == acknowledged_total + 1,
            "round {round}: {transactions} visible, {acknowledged_total} acknowledged"
        );
        assert_eq!(committed_offset, transactions, "round {round}: the group's offset moved with the transactions");
        acknowledged_total = transactions;
        restarted.stop();
    }
}
