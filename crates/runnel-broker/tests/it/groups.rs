//! Consumer groups with librdkafka, and the group APIs' error codes and
//! versions over raw sockets.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::support::*;

fn group_consumer(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut config =
        client_config(bootstrap, &[("group.id", group), ("auto.offset.reset", "earliest"), ("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "500")]);
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().unwrap()
}

fn assigned(consumer: &BaseConsumer) -> BTreeSet<i32> {
    consumer.assignment().unwrap().elements().iter().map(|e| e.partition()).collect()
}

/// Polls every consumer until `done` holds for their assignments, recording
/// consumed (partition, offset) pairs.
fn poll_until(
    consumers: &[&BaseConsumer],
    seen: &mut BTreeMap<i32, BTreeSet<i64>>,
    what: &str,
    done: impl Fn(&[BTreeSet<i32>], &BTreeMap<i32, BTreeSet<i64>>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        for consumer in consumers {
            while let Some(message) = consumer.poll(Duration::from_millis(20)) {
                let message = message.unwrap();
                seen.entry(message.partition()).or_default().insert(message.offset());
            }
        }
        let assignments: Vec<BTreeSet<i32>> = consumers.iter().map(|c| assigned(c)).collect();
        if done(&assignments, seen) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {assignments:?}");
    }
}

fn partitions_owned_once(assignments: &[BTreeSet<i32>], count: i32) -> bool {
    let total: usize = assignments.iter().map(|a| a.len()).sum();
    let union: BTreeSet<i32> = assignments.iter().flatten().copied().collect();
    total == count as usize && union == (0..count).collect() && assignments.iter().all(|a| !a.is_empty())
}

fn consumed_all(seen: &BTreeMap<i32, BTreeSet<i64>>, per_partition: i64, partitions: i32) -> bool {
    (0..partitions).all(|p| seen.get(&p).is_some_and(|s| s.len() as i64 == per_partition && *s.iter().next_back().unwrap() == per_partition - 1))
}

#[tokio::test(flavor = "multi_thread")]
async fn three_consumers_share_six_partitions_and_take_over_from_a_leaver() {
    let broker = TestBroker::start().await;
    create_topic(&broker.bootstrap, "shared", 6, &[]).await;
    let producer = producer(&broker.bootstrap, &[]);
    for p in 0..6 {
        for i in 0..20 {
            producer.send(FutureRecord::<(), _>::to("shared").partition(p).payload(&format!("{p}-{i}")), Duration::from_secs(10)).await.unwrap();
        }
    }
    let bootstrap = broker.bootstrap.clone();
    blocking(move || {
        let consumers: Vec<BaseConsumer> = (0..3).map(|_| group_consumer(&bootstrap, "sharing", &[])).collect();
        for c in &consumers {
            c.subscribe(&["shared"]).unwrap();
        }
        let refs: Vec<&BaseConsumer> = consumers.iter().collect();
        let mut seen = BTreeMap::new();
        poll_until(&refs, &mut seen, "a three-way split", |a, s| partitions_owned_once(a, 6) && consumed_all(s, 20, 6));
        let mut consumers = consumers;
        let leaver = consumers.pop().unwrap();
        leaver.unsubscribe();
        drop(leaver);
        let refs: Vec<&BaseConsumer> = consumers.iter().collect();
        poll_until(&refs, &mut seen, "the two survivors to cover all partitions", |a, _| partitions_owned_once(a, 6));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_offsets_are_resumed_by_the_next_consumer() {
    let broker = TestBroker::start().await;
    let producer = producer(&broker.bootstrap, &[]);
    for i in 0..10 {
        producer.send(FutureRecord::<(), _>::to("resume").payload(&format!("{i}")), Duration::from_secs(10)).await.unwrap();
    }
    let bootstrap = broker.bootstrap.clone();
    blocking(move || {
        let first = group_consumer(&bootstrap, "resumers", &[("enable.auto.commit", "false")]);
        first.subscribe(&["resume"]).unwrap();
        let mut read = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        while read < 4 {
            assert!(Instant::now() < deadline);
            if let Some(m) = first.poll(Duration::from_millis(100)) {
                m.unwrap();
                read += 1;
            }
        }
        let mut commit = TopicPartitionList::new();
        commit.add_partition_offset("resume", 0, Offset::Offset(4)).unwrap();
        first.commit(&commit, CommitMode::Sync).unwrap();
        drop(first);
        let second = group_consumer(&bootstrap, "resumers", &[]);
        second.subscribe(&["resume"]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "second consumer got nothing");
            if let Some(m) = second.poll(Duration::from_millis(100)) {
                assert_eq!(m.unwrap().offset(), 4, "the second consumer resumes at the committed offset");
                break;
            }
        }
        let committed = second.committed(Duration::from_secs(10)).unwrap();
        assert_eq!(committed.elements()[0].offset(), Offset::Offset(4));
    })
    .await;
}
