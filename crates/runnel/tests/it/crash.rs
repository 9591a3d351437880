//! Crash safety: `kill -9` during `acks=all` produces loses nothing that
//! was acknowledged, and a damaged segment tail is repaired on start.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
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
