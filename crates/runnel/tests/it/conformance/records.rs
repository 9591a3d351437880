//! Records: produce, fetch, offsets by time, deleting records, leader
//! epochs, idempotent sequences.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn produce_offsets_and_errors() {
    let mut pair = Pair::start("produce").await;
    let name = pair.name("t");
    create_on_both(&mut pair, &[(&name, 2)]).await;
    let t = pair.name("t");
    // Apache Kafka 4 still advertises Produce v0-v2 but closes the
    // connection on them (KIP-896); runnel answers them (magic 2 only).
    let versions = pair.versions::<ProduceRequest>().await;
    let answers = pair
        .compare_at(
            (*versions.start()).max(3)..=*versions.end(),
            move |_, v| {
                let mut request = produce(&t, 0, testing::batch(t0() + v as i64, &[b"a", b"b", b"c"]), -1);
                request.topic_data[0]
                    .partition_data
                    .push(PartitionProduceData::default().with_index(7).with_records(Some(Bytes::from(testing::batch(1, &[b"x"])))));
                request
            },
            normalise_produce,
        )
        .await;
    assert_eq!(answers.last().unwrap().responses[0].partition_responses[0].error_code, 0, "the scenario appends");
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_returns_the_same_bytes_and_errors() {
    let mut pair = Pair::start("fetch").await;
    let name = pair.name("t");
    create_on_both(&mut pair, &[(&name, 1)]).await;
    let t = pair.name("t");
    for i in 0..3 {
        produce_on_both(&mut pair, &produce(&t, 0, testing::batch(t0() + i, &[b"one", b"two"]), -1)).await;
    }
    let versions = pair.versions::<FetchRequest>().await;
    // From v13 topics are named by id, which each broker generates.
    let versions = *versions.start()..=(*versions.end()).min(12);
    let t = pair.name("t");
    // Records from the middle of the log (bytes compared as they are), an
    // unknown partition, an offset past the end, and the log end itself.
    for offsets in [vec![(0, 2), (5, 0)], vec![(0, 100)], vec![(0, 6)]] {
        let t = t.clone();
        pair.compare_at(
            versions.clone(),
            move |_, _| {
                let partitions = offsets
                    .iter()
                    .map(|&(index, offset)| FetchPartition::default().with_partition(index).with_fetch_offset(offset).with_partition_max_bytes(1 << 20));
                FetchRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_max_wait_ms(0)
                    .with_min_bytes(0)
                    .with_max_bytes(1 << 20)
                    .with_topics(vec![FetchTopic::default().with_topic(topic_name(&t)).with_partitions(partitions.collect())])
            },
            |response: &mut FetchResponse, _| {
                response.throttle_time_ms = 0;
                response.session_id = 0;
                for topic in &mut response.responses {
                    topic.partitions.sort_by_key(|p| p.partition_index);
                }
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn list_offsets_earliest_latest_by_time_and_max_timestamp() {
    let mut pair = Pair::start("listoffsets").await;
    let name = pair.name("t");
    create_on_both(&mut pair, &[(&name, 1)]).await;
    let t = pair.name("t");
    for (i, ts) in [t0(), t0() + 5_000, t0() + 2_000].iter().enumerate() {
        produce_on_both(&mut pair, &produce(&t, 0, testing::batch(*ts, &[format!("r{i}").as_bytes()]), -1)).await;
    }
    for timestamp in [-2i64, -1, t0() + 1_000, t0() + 5_000, t0() + 100_000_000, -3] {
        let versions = pair.versions::<ListOffsetsRequest>().await;
        // Max-timestamp (-3) needs v7 (KIP-734).
        let versions = if timestamp == -3 { (*versions.start()).max(7)..=*versions.end() } else { versions };
        let t = t.clone();
        pair.compare_at(
            versions,
            move |_, _| {
                ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
                    .with_name(topic_name(&t))
                    .with_partitions(vec![
                        ListOffsetsPartition::default().with_partition_index(0).with_timestamp(timestamp).with_max_num_offsets(1),
                        ListOffsetsPartition::default().with_partition_index(3).with_timestamp(timestamp).with_max_num_offsets(1),
                    ])])
            },
            normalise_list_offsets,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_records_advances_the_start_and_refuses_out_of_range() {
    let mut pair = Pair::start("deleterecords").await;
    let versions = pair.versions::<DeleteRecordsRequest>().await;
    for v in versions {
        let t = pair.name(&format!("t-v{v}"));
        create_on_both(&mut pair, &[(&t, 1)]).await;
        produce_on_both(&mut pair, &produce(&t, 0, testing::batch(1, &[b"a", b"b", b"c", b"d"]), -1)).await;
    }
    pair.compare(
        |p, v| {
            let t = p.name(&format!("t-v{v}"));
            DeleteRecordsRequest::default().with_timeout_ms(10_000).with_topics(vec![DeleteRecordsTopic::default().with_name(topic_name(&t)).with_partitions(
                vec![
                    DeleteRecordsPartition::default().with_partition_index(0).with_offset(2),
                    DeleteRecordsPartition::default().with_partition_index(1).with_offset(0),
                ],
            )])
        },
        normalise_delete_records,
    )
    .await;
    pair.compare(
        |p, v| {
            let t = p.name(&format!("t-v{v}"));
            DeleteRecordsRequest::default().with_timeout_ms(10_000).with_topics(vec![DeleteRecordsTopic::default()
                .with_name(topic_name(&t))
                .with_partitions(vec![DeleteRecordsPartition::default().with_partition_index(0).with_offset(99)])])
        },
        normalise_delete_records,
    )
    .await;
}

fn normalise_delete_records(response: &mut DeleteRecordsResponse, _: i16) {
    response.throttle_time_ms = 0;
    response.topics.sort_by(|a, b| a.name.cmp(&b.name));
    for topic in &mut response.topics {
        topic.partitions.sort_by_key(|p| p.partition_index);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_refusals_bad_acks_corrupt_batches_and_oversized_batches() {
    let mut pair = Pair::start("producebad").await;
    let small = pair.name("small");
    create_topics_on_both(&mut pair, vec![new_topic(&small, 1, 1, &[("max.message.bytes", "200")])]).await;
    let versions = pair.versions::<ProduceRequest>().await;
    let versions = (*versions.start()).max(3)..=*versions.end();
    let mut corrupt = testing::batch(1, &[b"tampered"]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let cases: Vec<(Vec<u8>, i16)> = vec![(testing::batch(1, &[b"a"]), 2), (corrupt, -1), (testing::batch(1, &[&[7u8; 500]]), -1)];
    for (records, acks) in cases {
        let small = small.clone();
        pair.compare_at(versions.clone(), move |_, _| produce(&small, 0, records.clone(), acks), normalise_produce).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_to_a_topic_that_does_not_exist() {
    let mut pair = Pair::start("producemissing").await;
    let versions = pair.versions::<ProduceRequest>().await;
    pair.compare_at(
        (*versions.start()).max(3)..=*versions.end(),
        |p, v| produce(&p.name(&format!("absent-v{v}")), 0, testing::batch(1, &[b"a"]), 1),
        normalise_produce,
    )
    .await;
    pair.compare_at((*versions.start()).max(3)..=*versions.end(), |_, _| produce("bad/name", 0, testing::batch(1, &[b"a"]), 1), normalise_produce).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_producer_sequences_duplicates_and_gaps() {
    let mut pair = Pair::start("idempotent").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 2)]).await;
    pair.compare_scripts(async |client, prefix| {
        let t = format!("{prefix}-t");
        let init = init_idempotent_producer(client).await;
        let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
        let mut seen = vec![format!("init: error {} epoch {epoch}", init.error_code)];
        let steps: [(&str, i32, i32, usize); 6] =
            [("first", 0, 0, 2), ("retry", 0, 0, 2), ("next", 0, 2, 1), ("gap", 0, 7, 1), ("other partition", 1, 0, 1), ("overlapping", 0, 1, 2)];
        for (what, partition, sequence, records) in steps {
            let values: Vec<&[u8]> = (0..records).map(|_| b"v".as_slice()).collect();
            let response = client.call(&produce(&t, partition, testing::batch_with_producer(1, &values, pid, epoch, sequence), -1), 9).await;
            let answer = &response.responses[0].partition_responses[0];
            seen.push(format!("{what}: error {} base offset {}", answer.error_code, answer.base_offset));
        }
        seen
    })
    .await;
}

/// A topic with three batches of two records each (offsets 0..6) on both.
pub(super) async fn topic_with_records(pair: &mut Pair, suffix: &str, configs: &[(&str, &str)]) -> String {
    let t = pair.name(suffix);
    create_topics_on_both(pair, vec![new_topic(&t, 1, 1, configs)]).await;
    for i in 0..3 {
        produce_on_both(pair, &produce(&t, 0, testing::batch(t0() + i * 1000, &[b"one", b"two"]), -1)).await;
    }
    t
}

pub(super) fn fetch_one(topic: &str, offset: i64, partition_max_bytes: i32) -> FetchRequest {
    FetchRequest::default().with_replica_id(BrokerId(-1)).with_max_wait_ms(0).with_min_bytes(0).with_max_bytes(1 << 20).with_topics(vec![FetchTopic::default()
        .with_topic(topic_name(topic))
        .with_partitions(vec![FetchPartition::default().with_fetch_offset(offset).with_partition_max_bytes(partition_max_bytes)])])
}

async fn compare_fetch(pair: &mut Pair, topic: &str, offset: i64, partition_max_bytes: i32, from_version: i16) {
    let versions = pair.versions::<FetchRequest>().await;
    let topic = topic.to_string();
    pair.compare_at(
        (*versions.start()).max(from_version)..=(*versions.end()).min(12),
        move |_, _| fetch_one(&topic, offset, partition_max_bytes),
        normalise_fetch,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_smaller_than_a_batch_still_returns_the_whole_first_batch() {
    let mut pair = Pair::start("fetchsmall").await;
    let t = topic_with_records(&mut pair, "t", &[]).await;
    // KIP-74: from v3 the first batch is returned even if larger than asked.
    compare_fetch(&mut pair, &t, 1, 10, 3).await;
    compare_fetch(&mut pair, &t, 3, 10, 3).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_and_list_offsets_after_records_are_deleted() {
    use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
    let mut pair = Pair::start("afterdelete").await;
    let t = topic_with_records(&mut pair, "t", &[]).await;
    let delete = DeleteRecordsRequest::default().with_timeout_ms(10_000).with_topics(vec![DeleteRecordsTopic::default()
        .with_name(topic_name(&t))
        .with_partitions(vec![DeleteRecordsPartition::default().with_partition_index(0).with_offset(3)])]);
    let (runnel, kafka) = pair.both(&delete, 2).await;
    assert_eq!(runnel, kafka);
    compare_fetch(&mut pair, &t, 0, 1 << 20, 4).await;
    compare_fetch(&mut pair, &t, 3, 1 << 20, 4).await;
    for timestamp in [-2i64, -1, 0] {
        let t = t.clone();
        pair.compare(move |_, _| list_offsets(&t, timestamp), normalise_list_offsets).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn list_offsets_of_an_empty_topic() {
    let mut pair = Pair::start("emptyoffsets").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    for timestamp in [-2i64, -1, 0, -3] {
        let versions = pair.versions::<ListOffsetsRequest>().await;
        let versions = if timestamp == -3 { (*versions.start()).max(7)..=*versions.end() } else { versions };
        let t = t.clone();
        pair.compare_at(versions, move |_, _| list_offsets(&t, timestamp), normalise_list_offsets).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn log_append_time_topics_stamp_the_broker_clock() {
    let mut pair = Pair::start("appendtime").await;
    let t = pair.name("t");
    create_topics_on_both(&mut pair, vec![new_topic(&t, 1, 1, &[("message.timestamp.type", "LogAppendTime")])]).await;
    let versions = pair.versions::<ProduceRequest>().await;
    let t2 = t.clone();
    pair.compare_at(
        (*versions.start()).max(3)..=*versions.end(),
        move |_, _| produce(&t2, 0, testing::batch(5, &[b"x"]), -1),
        |response: &mut ProduceResponse, version| {
            normalise_produce(response, version);
            // The broker's clock differs; that it stamped one does not.
            for topic in &mut response.responses {
                for partition in &mut topic.partition_responses {
                    partition.log_append_time_ms = partition.log_append_time_ms.signum();
                }
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn read_committed_fetch_of_a_log_without_transactions() {
    let mut pair = Pair::start("readcommitted").await;
    let t = topic_with_records(&mut pair, "t", &[]).await;
    let versions = pair.versions::<FetchRequest>().await;
    pair.compare_at((*versions.start()).max(4)..=(*versions.end()).min(12), move |_, _| fetch_one(&t, 0, 1 << 20).with_isolation_level(1), normalise_fetch)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn offset_for_leader_epoch_of_a_single_epoch_log() {
    use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
    let mut pair = Pair::start("leaderepoch").await;
    let t = topic_with_records(&mut pair, "t", &[]).await;
    let versions = pair.versions::<OffsetForLeaderEpochRequest>().await;
    pair.compare_at(
        (*versions.start()).max(2)..=*versions.end(),
        move |_, v| {
            let partition = |index: i32, epoch: i32| {
                let p = OffsetForLeaderPartition::default().with_partition(index).with_leader_epoch(epoch);
                if v >= 2 {
                    p.with_current_leader_epoch(-1)
                } else {
                    p
                }
            };
            let request = OffsetForLeaderEpochRequest::default().with_topics(vec![OffsetForLeaderTopic::default()
                .with_topic(topic_name(&t))
                .with_partitions(vec![partition(0, 0), partition(0, 7), partition(4, 0)])]);
            if v >= 3 {
                request.with_replica_id(BrokerId(-1))
            } else {
                request
            }
        },
        |response: &mut OffsetForLeaderEpochResponse, _| {
            response.throttle_time_ms = 0;
            for topic in &mut response.topics {
                topic.partitions.sort_by_key(|p| (p.partition, p.leader_epoch));
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_bad_topic_among_good_ones_and_two_batches_in_one_produce() {
    let mut pair = Pair::start("mixed").await;
    pair.compare(
        |p, v| {
            create_topics(
                vec![
                    new_topic(&p.name(&format!("a-v{v}")), 1, 1, &[]),
                    new_topic(&p.name(&format!("b-v{v}")), 0, 1, &[]),
                    new_topic(&p.name(&format!("c-v{v}")), 2, 1, &[]),
                ],
                false,
            )
        },
        normalise_create,
    )
    .await;
    let t = pair.name("two");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    let versions = pair.versions::<ProduceRequest>().await;
    pair.compare_at(
        (*versions.start()).max(3)..=*versions.end(),
        move |_, _| {
            let mut records = testing::batch(1, &[b"a", b"b"]);
            records.extend(testing::batch(2, &[b"c"]));
            produce(&t, 0, records, -1)
        },
        normalise_produce,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_records_to_the_high_watermark_and_odd_list_offsets_timestamps() {
    use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
    let mut pair = Pair::start("hwm").await;
    let t = topic_with_records(&mut pair, "t", &[]).await;
    let t2 = t.clone();
    pair.compare_at(
        0..=0,
        move |_, _| {
            DeleteRecordsRequest::default().with_timeout_ms(10_000).with_topics(vec![DeleteRecordsTopic::default()
                .with_name(topic_name(&t2))
                .with_partitions(vec![DeleteRecordsPartition::default().with_offset(-1)])])
        },
        normalise_delete_records,
    )
    .await;
    // -5 and below are Kafka's newer special timestamps (tiered storage);
    // a timestamp no version gives a meaning is compared instead.
    for timestamp in [-2i64, -100] {
        let t = t.clone();
        let versions = pair.versions::<ListOffsetsRequest>().await;
        pair.compare_at((*versions.start()).max(1)..=*versions.end(), move |_, _| list_offsets(&t, timestamp), normalise_list_offsets).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_to_the_internal_offsets_topic_is_refused() {
    let mut pair = Pair::start("internal").await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    let versions = pair.versions::<ProduceRequest>().await;
    pair.compare_at((*versions.start()).max(3)..=*versions.end(), |_, _| produce("__consumer_offsets", 0, testing::batch(1, &[b"x"]), 1), normalise_produce)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_records_of_unknown_topics_and_partitions_and_below_the_start() {
    let mut pair = Pair::start("deleterecordsedges").await;
    let t = topic_with_records(&mut pair, "t", &[]).await;
    let request = |topic: &str, partitions: &[(i32, i64)]| {
        DeleteRecordsTopic::default().with_name(topic_name(topic)).with_partitions(
            partitions.iter().map(|&(index, offset)| DeleteRecordsPartition::default().with_partition_index(index).with_offset(offset)).collect(),
        )
    };
    let first = DeleteRecordsRequest::default().with_timeout_ms(10_000).with_topics(vec![request(&t, &[(0, 4)])]);
    let (runnel, kafka) = pair.both(&first, 2).await;
    assert_eq!((runnel.topics[0].partitions[0].error_code, kafka.topics[0].partitions[0].error_code), (0, 0), "set-up: deleting records");
    let absent = pair.name("absent");
    pair.compare(
        move |_, _| DeleteRecordsRequest::default().with_timeout_ms(10_000).with_topics(vec![request(&t, &[(0, 2), (3, 0)]), request(&absent, &[(0, 0)])]),
        normalise_delete_records,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fetch_at_the_log_end_waits_and_returns_nothing() {
    let mut pair = Pair::start("fetchwait").await;
    let t = topic_with_records(&mut pair, "t", &[]).await;
    let versions = pair.versions::<FetchRequest>().await;
    let request = fetch_one(&t, 6, 1 << 20).with_min_bytes(1).with_max_wait_ms(100);
    for (broker, client) in [("runnel", &mut pair.runnel), ("Apache Kafka", &mut pair.kafka)] {
        let started = std::time::Instant::now();
        client.call(&request, 12).await;
        assert!(started.elapsed() >= std::time::Duration::from_millis(90), "{broker} answered before max_wait_ms with nothing to return");
    }
    pair.compare_at((*versions.start()).max(4)..=(*versions.end()).min(12), move |_, _| request.clone(), normalise_fetch).await;
}
