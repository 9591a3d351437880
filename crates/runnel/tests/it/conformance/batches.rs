//! Records, continued: codecs and old message formats, fetch sessions and
//! limits, leader epochs, acks=0, producer epochs.

use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

use super::records::{fetch_one, topic_with_records};
use super::*;

/// Records with keys, null values and headers, encoded by kafka-protocol
/// in message format `version` (0, 1 or 2) with `compression`.
fn encoded(version: i8, compression: Compression, timestamp: i64) -> Vec<u8> {
    encoded_at(version, compression, &[timestamp, timestamp + 1, timestamp + 2])
}

/// Like [`encoded`], one record per timestamp.
fn encoded_at(version: i8, compression: Compression, timestamps: &[i64]) -> Vec<u8> {
    encoded_with(version, compression, timestamps, &[])
}

/// Like [`encoded_at`], with no key on the records at `keyless`.
fn encoded_with(version: i8, compression: Compression, timestamps: &[i64], keyless: &[usize]) -> Vec<u8> {
    let records: Vec<Record> = (0..timestamps.len() as i64)
        .map(|i| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            // kafka-protocol starts a new batch where offset - sequence
            // changes; this keeps one batch with base sequence -1.
            sequence: i as i32 - 1,
            timestamp: timestamps[i as usize],
            key: (!keyless.contains(&(i as usize))).then(|| Bytes::from(format!("key-{i}"))),
            value: (i != 1).then(|| Bytes::from(format!("ride {i} from zone 132 to zone 236"))),
            headers: if version == 2 {
                IndexMap::from([(StrBytes::from_static_str("source"), Some(Bytes::from_static(b"rides.csv")))])
            } else {
                IndexMap::new()
            },
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version, compression }).unwrap();
    buf.to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn compressed_batches_are_stored_and_fetched_as_sent() {
    let mut pair = Pair::start("codecs").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    let versions = pair.versions::<ProduceRequest>().await;
    // zstd needs Produce v7 (KIP-110): earlier versions are refused it.
    for compression in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let t = t.clone();
        let answers = pair
            .compare_at(
                (*versions.start()).max(3)..=*versions.end(),
                move |_, v| produce(&t, 0, encoded(2, compression, t0() + v as i64), -1),
                normalise_produce,
            )
            .await;
        assert_eq!(answers.last().unwrap().responses[0].partition_responses[0].error_code, 0, "{compression:?} batches are appended");
    }
    // Fetch before v10 cannot carry zstd batches.
    let versions = pair.versions::<FetchRequest>().await;
    pair.compare_at((*versions.start()).max(4)..=(*versions.end()).min(12), move |_, _| fetch_one(&t, 0, 1 << 20), normalise_fetch).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn old_message_formats_are_refused() {
    let mut pair = Pair::start("oldformats").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    let versions = pair.versions::<ProduceRequest>().await;
    for (format, compression) in [(0, Compression::None), (1, Compression::None), (1, Compression::Gzip)] {
        let t = t.clone();
        pair.compare_at((*versions.start()).max(3)..=*versions.end(), move |_, _| produce(&t, 0, encoded(format, compression, t0()), -1), normalise_produce)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_sessions_unknown_to_the_broker_are_refused() {
    let mut pair = Pair::start("fetchsessions").await;
    let t = topic_with_records(&mut pair, "t", &[]).await;
    let versions = pair.versions::<FetchRequest>().await;
    // Sessionless (-1), unknown session (id 0 or 12345 at epoch 1), and
    // closing an unknown session (epoch -1). Opening one (epoch 0) is
    // compared too, bar the id: runnel keeps no sessions and answers 0,
    // which the protocol allows; clients then send full fetches.
    for (session_id, epoch) in [(0, -1), (0, 1), (12345, 1), (12345, -1), (0, 0)] {
        let t = t.clone();
        pair.compare_reads(
            (*versions.start()).max(7)..=(*versions.end()).min(12),
            move |_, _| fetch_one(&t, 2, 1 << 20).with_session_id(session_id).with_session_epoch(epoch),
            normalise_fetch,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fetch_limited_to_one_byte_returns_one_batch_from_the_first_partition_only() {
    let mut pair = Pair::start("fetchlimit").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 2)]).await;
    for partition in [0, 1] {
        for i in 0..2 {
            produce_on_both(&mut pair, &produce(&t, partition, testing::batch(t0() + i, &[b"one", b"two"]), -1)).await;
        }
    }
    let versions = pair.versions::<FetchRequest>().await;
    pair.compare_at(
        (*versions.start()).max(3)..=(*versions.end()).min(12),
        move |_, _| {
            let partitions = [1, 0].map(|index| FetchPartition::default().with_partition(index).with_fetch_offset(0).with_partition_max_bytes(1 << 20));
            FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(0)
                .with_min_bytes(0)
                .with_max_bytes(1)
                .with_topics(vec![FetchTopic::default().with_topic(topic_name(&t)).with_partitions(partitions.to_vec())])
        },
        normalise_fetch,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_naming_the_current_leader_epoch_are_fenced_when_it_is_unknown() {
    use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
    let mut pair = Pair::start("currentepoch").await;
    let t = topic_with_records(&mut pair, "t", &[]).await;
    for current in [-1, 0, 1, 5] {
        let versions = pair.versions::<FetchRequest>().await;
        let topic = t.clone();
        pair.compare_at(
            (*versions.start()).max(9)..=(*versions.end()).min(12),
            move |_, _| {
                let mut request = fetch_one(&topic, 0, 1 << 20);
                request.topics[0].partitions[0].current_leader_epoch = current;
                request
            },
            normalise_fetch,
        )
        .await;
        let versions = pair.versions::<ListOffsetsRequest>().await;
        let topic = t.clone();
        pair.compare_at(
            (*versions.start()).max(4)..=*versions.end(),
            move |_, _| {
                let mut request = list_offsets(&topic, -1);
                request.topics[0].partitions[0].current_leader_epoch = current;
                request
            },
            normalise_list_offsets,
        )
        .await;
        let versions = pair.versions::<OffsetForLeaderEpochRequest>().await;
        let topic = t.clone();
        pair.compare_at(
            (*versions.start()).max(3)..=*versions.end(),
            move |_, _| {
                OffsetForLeaderEpochRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![OffsetForLeaderTopic::default()
                    .with_topic(topic_name(&topic))
                    .with_partitions(vec![OffsetForLeaderPartition::default().with_leader_epoch(0).with_current_leader_epoch(current)])])
            },
            |response: &mut OffsetForLeaderEpochResponse, _| response.throttle_time_ms = 0,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_with_acks_zero_gets_no_answer_but_appends() {
    let mut pair = Pair::start("acks0").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    pair.compare_scripts(async |client, prefix| {
        let t = format!("{prefix}-t");
        let mut seen = Vec::new();
        for version in 3..=9 {
            let request = client.encode(&produce(&t, 0, testing::batch(t0(), &[b"fire", b"forget"]), 0), version);
            client.send_raw(&request).await;
        }
        // The next answer on the connection is this request's: acks=0
        // produces were answered with nothing.
        let latest = client.call(&list_offsets(&t, -1), 5).await;
        let answer = &latest.topics[0].partitions[0];
        seen.push(format!("latest offset after seven acks=0 produces: error {} offset {}", answer.error_code, answer.offset));
        seen
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_producer_epochs_bumped_stale_and_unknown() {
    let mut pair = Pair::start("producerepochs").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    pair.compare_scripts(async |client, prefix| {
        let t = format!("{prefix}-t");
        let init = init_idempotent_producer(client).await;
        let pid = init.producer_id.0;
        let mut seen = vec![format!("init: error {} epoch {}", init.error_code, init.producer_epoch)];
        let steps: [(&str, i64, i16, i32); 7] = [
            ("first", pid, 0, 0),
            ("next epoch from sequence 0", pid, 1, 0),
            ("stale epoch", pid, 0, 1),
            ("next epoch with a gap", pid, 2, 4),
            ("current epoch continues", pid, 1, 1),
            ("another producer id from sequence 0", pid + 1000, 0, 0),
            ("another producer id mid-sequence", pid + 2000, 0, 9),
        ];
        for (what, producer, epoch, sequence) in steps {
            let response = client.call(&produce(&t, 0, testing::batch_with_producer(1, &[b"v"], producer, epoch, sequence), -1), 9).await;
            let answer = &response.responses[0].partition_responses[0];
            seen.push(format!("{what}: error {} base offset {}", answer.error_code, answer.base_offset));
        }
        seen
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_offsets_earliest_local_and_read_committed() {
    let mut pair = Pair::start("listoffsetslocal").await;
    let t = topic_with_records(&mut pair, "t", &[]).await;
    let versions = pair.versions::<ListOffsetsRequest>().await;
    let topic = t.clone();
    // -4 is the earliest offset kept locally (KIP-1005), from v8.
    pair.compare_at((*versions.start()).max(8)..=*versions.end(), move |_, _| list_offsets(&topic, -4), normalise_list_offsets).await;
    for timestamp in [-1, -2] {
        let topic = t.clone();
        pair.compare_at(
            (*versions.start()).max(2)..=*versions.end(),
            move |_, _| list_offsets(&topic, timestamp).with_isolation_level(1),
            normalise_list_offsets,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn records_with_timestamps_out_of_the_allowed_range_are_refused_one_by_one() {
    let mut pair = Pair::start("timestamps").await;
    let (open, strict, appended) = (pair.name("open"), pair.name("strict"), pair.name("appendtime"));
    create_topics_on_both(
        &mut pair,
        vec![
            new_topic(&open, 1, 1, &[]),
            new_topic(&strict, 1, 1, &[("message.timestamp.before.max.ms", "60000"), ("message.timestamp.after.max.ms", "60000")]),
            new_topic(&appended, 1, 1, &[("message.timestamp.type", "LogAppendTime")]),
        ],
    )
    .await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let hour = 3_600_000;
    // Apache Kafka 4 allows an hour ahead by default and any time behind;
    // the strict topic a minute either way; LogAppendTime ignores them.
    let cases: Vec<(String, Vec<i64>)> = vec![
        (open.clone(), vec![now, now + 2 * hour, now - 100 * hour]),
        (open.clone(), vec![now + 3 * hour]),
        (strict.clone(), vec![now - hour, now, now + hour]),
        (strict.clone(), vec![-1]),
        (appended.clone(), vec![now + 5 * hour]),
    ];
    let versions = pair.versions::<ProduceRequest>().await;
    for (topic, timestamps) in cases {
        pair.compare_at(
            (*versions.start()).max(3)..=*versions.end(),
            move |_, _| produce(&topic, 0, encoded_at(2, Compression::None, &timestamps), -1),
            |response: &mut ProduceResponse, version| {
                normalise_produce(response, version);
                for partition in response.responses.iter_mut().flat_map(|t| t.partition_responses.iter_mut()) {
                    partition.log_append_time_ms = partition.log_append_time_ms.min(0);
                    for record in &mut partition.record_errors {
                        record.batch_index_error_message = None;
                    }
                }
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_topic_codec_rewrites_batches_sent_in_another() {
    let mut pair = Pair::start("topiccodec").await;
    let codecs = ["gzip", "snappy", "lz4", "zstd", "uncompressed", "producer"];
    let topics: Vec<String> = codecs.iter().map(|c| pair.name(c)).collect();
    create_topics_on_both(&mut pair, codecs.iter().zip(&topics).map(|(codec, t)| new_topic(t, 1, 1, &[("compression.type", codec)])).collect()).await;
    for topic in &topics {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            produce_on_both(&mut pair, &produce(topic, 0, encoded(2, compression, t0()), -1)).await;
        }
    }
    // Each broker compresses with its own library, so the stored bytes
    // differ; the codec each batch is stored in and its records must not.
    for topic in topics {
        let (runnel, kafka) = pair.both(&fetch_one(&topic, 0, 1 << 20), 12).await;
        let stored = |response: &FetchResponse| {
            let mut bytes = response.responses[0].partitions[0].records.clone().unwrap_or_default();
            let mut batches = Vec::new();
            while bytes.len() >= 61 {
                let codec = i16::from_be_bytes([bytes[21], bytes[22]]) & 7;
                let size = 12 + i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
                let set = runnel_log::records::decode(bytes.split_to(size)).expect("a batch");
                let records: Vec<_> = set.records.iter().map(|r| (r.offset, r.timestamp, r.key.clone(), r.value.clone(), r.headers.clone())).collect();
                batches.push(format!("codec {codec}: {records:?}"));
            }
            batches
        };
        assert_eq!(stored(&runnel), stored(&kafka), "topic {topic}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn compacted_topics_refuse_records_without_a_key() {
    let mut pair = Pair::start("keyless").await;
    let policies = ["compact", "compact,delete", "delete"];
    let topics: Vec<String> = ["compact", "both", "delete"].iter().map(|t| pair.name(t)).collect();
    create_topics_on_both(&mut pair, policies.iter().zip(&topics).map(|(policy, t)| new_topic(t, 1, 1, &[("cleanup.policy", policy)])).collect()).await;
    let versions = pair.versions::<ProduceRequest>().await;
    for topic in topics {
        for (keyless, compression) in [(vec![], Compression::None), (vec![1], Compression::None), (vec![0, 2], Compression::Gzip)] {
            let topic = topic.clone();
            pair.compare_at(
                (*versions.start()).max(3)..=*versions.end(),
                move |_, _| produce(&topic, 0, encoded_with(2, compression, &[t0(); 3], &keyless), -1),
                |response: &mut ProduceResponse, version| {
                    normalise_produce(response, version);
                    for partition in response.responses.iter_mut().flat_map(|t| t.partition_responses.iter_mut()) {
                        for record in &mut partition.record_errors {
                            record.batch_index_error_message = None;
                        }
                    }
                },
            )
            .await;
        }
    }
}
