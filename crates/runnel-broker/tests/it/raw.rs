//! Raw-socket scenarios: framing and version negotiation details, bad
//! input of every kind, and a sweep of each API across its versions.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use runnel_log::batch::testing;

use runnel_testkit::RawClient;

use crate::support::TestBroker;

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn produce_request(name: &str, records: Vec<u8>, acks: i16) -> ProduceRequest {
    ProduceRequest::default().with_acks(acks).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
        .with_name(topic(name))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(records)))])])
}

fn produce_error(response: &ProduceResponse) -> i16 {
    response.responses[0].partition_responses[0].error_code
}

async fn assert_broker_still_serves(addr: &str) {
    let mut client = RawClient::connect(addr).await;
    let response = client.call(&ApiVersionsRequest::default(), 0).await;
    assert_eq!(response.error_code, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn api_versions_v3_uses_a_v0_header_and_advertises_produce_from_v0() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap).await;
    let request =
        ApiVersionsRequest::default().with_client_software_name(StrBytes::from_static_str("raw")).with_client_software_version(StrBytes::from_static_str("1"));
    let frame = client.encode(&request, 3);
    client.send_raw(&frame).await;
    let body = client.read_frame().await.unwrap();
    // v0 header: the correlation id and nothing else (no tagged-field byte).
    assert_eq!(i32::from_be_bytes(body[0..4].try_into().unwrap()), client.correlation_id());
    assert_eq!(i16::from_be_bytes(body[4..6].try_into().unwrap()), 0, "error code follows the correlation id directly");
    let mut rest = body.slice(4..);
    let response = ApiVersionsResponse::decode(&mut rest, 3).unwrap();
    let produce = response.api_keys.iter().find(|k| k.api_key == ApiKey::Produce as i16).unwrap();
    assert_eq!((produce.min_version, produce.max_version), (0, 9));
    assert!(response.supported_features.is_empty() && response.finalized_features_epoch == -1);
    // The last byte is the top-level tagged field count: none written.
    assert_eq!(*body.last().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_api_versions_version_gets_a_v0_error_listing_what_is_supported() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap).await;
    let mut frame = BytesMut::new();
    let mut body = BytesMut::new();
    body.put_i16(ApiKey::ApiVersions as i16);
    body.put_i16(42);
    body.put_i32(7);
    body.put_i16(-1);
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    client.send_raw(&frame).await;
    let mut response = client.read_frame().await.unwrap();
    assert_eq!(response.get_i32(), 7);
    let decoded = ApiVersionsResponse::decode(&mut response, 0).unwrap();
    assert_eq!(decoded.error_code, ResponseError::UnsupportedVersion.code());
    assert!(decoded.api_keys.iter().any(|k| k.api_key == ApiKey::Fetch as i16));
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_frames_close_only_their_own_connection() {
    let broker = TestBroker::start_with(|c| c.socket_request_max_bytes = 1024 * 1024).await;
    let addr = broker.bootstrap.clone();
    let mut bystander = RawClient::connect(&addr).await;
    let bad_inputs: Vec<(&str, Vec<u8>)> = vec![
        ("oversized frame", (200 * 1024 * 1024i32).to_be_bytes().to_vec()),
        ("negative size", (-5i32).to_be_bytes().to_vec()),
        ("header too short", [&3i32.to_be_bytes()[..], &[0, 3, 0]].concat()),
        ("unknown api key", [&8i32.to_be_bytes()[..], &999i16.to_be_bytes(), &0i16.to_be_bytes(), &1i32.to_be_bytes()].concat()),
        ("unsupported metadata version", [&8i32.to_be_bytes()[..], &3i16.to_be_bytes(), &99i16.to_be_bytes(), &1i32.to_be_bytes()].concat()),
        ("garbage body", [&20i32.to_be_bytes()[..], &0i16.to_be_bytes(), &9i16.to_be_bytes(), &1i32.to_be_bytes(), &[0xff; 12]].concat()),
    ];
    for (what, bytes) in bad_inputs {
        let mut client = RawClient::connect(&addr).await;
        client.send_raw(&bytes).await;
        assert!(client.read_frame().await.is_none(), "{what}: broker should close the connection");
    }
    // Truncated: promise 100 bytes, send 10, hang up.
    let mut client = RawClient::connect(&addr).await;
    client.send_raw(&[&100i32.to_be_bytes()[..], &[0u8; 10]].concat()).await;
    drop(client);
    let response = bystander.call(&MetadataRequest::default().with_topics(None), 12).await;
    assert_eq!(response.brokers.len(), 1);
    assert_broker_still_serves(&addr).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_batches_get_the_right_error_codes_and_are_not_stored() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap).await;
    crate::support::create_topic(&broker.bootstrap, "strict", 1, &[("max.message.bytes", "2000")]).await;

    let mut bad_crc = testing::batch(1, &[b"hello"]);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 1;
    let mut old_magic = testing::batch(1, &[b"hello"]);
    old_magic[16] = 1;
    let too_big = testing::batch(1, &[&[0u8; 4000]]);
    let mut truncated = testing::batch(1, &[b"hello"]);
    truncated.truncate(truncated.len() - 3);

    let cases = [
        ("strict", bad_crc, 1, ResponseError::CorruptMessage),
        ("strict", old_magic, 1, ResponseError::InvalidRecord),
        ("strict", too_big, 1, ResponseError::MessageTooLarge),
        ("strict", truncated, 1, ResponseError::CorruptMessage),
        ("bad/name", testing::batch(1, &[b"x"]), 1, ResponseError::UnknownTopicOrPartition),
        ("strict", testing::batch(1, &[b"x"]), 5, ResponseError::InvalidRequiredAcks),
    ];
    for (name, records, acks, expected) in cases {
        let response = client.call(&produce_request(name, records, acks), 9).await;
        assert_eq!(produce_error(&response), expected.code(), "{expected:?}");
    }
    crate::support::create_topic(&broker.bootstrap, "guarded", 1, &[("min.insync.replicas", "2")]).await;
    let guarded = client.call(&produce_request("guarded", testing::batch(1, &[b"x"]), -1), 9).await;
    assert_eq!(produce_error(&guarded), ResponseError::NotEnoughReplicas.code(), "acks=all needs 2 replicas, and there is one");
    let relaxed = client.call(&produce_request("guarded", testing::batch(1, &[b"x"]), 1), 9).await;
    assert_eq!(produce_error(&relaxed), 0, "acks=1 does not wait for replicas");
    let ok = client.call(&produce_request("strict", testing::batch(1, &[b"fine"]), 1), 9).await;
    assert_eq!(produce_error(&ok), 0);
    assert_eq!(ok.responses[0].partition_responses[0].base_offset, 0, "rejected batches took no offsets");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_topic_creations_get_the_right_error_codes() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap).await;
    let create = |name: &str, partitions: i32, replication: i16| {
        CreateTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![CreatableTopic::default().with_name(topic(name)).with_num_partitions(partitions).with_replication_factor(replication)])
    };
    let cases = [
        (create("neg", -7, 1), ResponseError::InvalidPartitions),
        (create("zero", 0, 1), ResponseError::InvalidPartitions),
        (create("in valid", 1, 1), ResponseError::InvalidTopicException),
        (create("rf", 1, 2), ResponseError::InvalidReplicationFactor),
    ];
    for (request, expected) in cases {
        let response = client.call(&request, 7).await;
        assert_eq!(response.topics[0].error_code, expected.code(), "{expected:?}");
        assert!(response.topics[0].error_message.is_some());
    }
    let dry = client.call(&create("dry", 3, 1).with_validate_only(true), 7).await;
    assert_eq!(dry.topics[0].error_code, 0);
    assert!(broker.state.topic("dry").is_none(), "validate_only creates nothing");
    let ok = client.call(&create("real", 3, 1), 7).await;
    assert_eq!(ok.topics[0].num_partitions, 3);
    let again = client.call(&create("real", 3, 1), 7).await;
    assert_eq!(again.topics[0].error_code, ResponseError::TopicAlreadyExists.code());
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_sequences_dedupe_retries_and_reject_gaps() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap).await;
    let init = client.call(&InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60000), 4).await;
    assert_eq!(init.error_code, 0);
    let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
    let batch = |seq: i32, values: &[&[u8]]| testing::batch_with_producer(1, values, pid, epoch, seq);
    crate::support::create_topic(&broker.bootstrap, "seq", 1, &[]).await;

    let first = client.call(&produce_request("seq", batch(0, &[b"a", b"b"]), -1), 9).await;
    assert_eq!(produce_error(&first), 0, "{:?}", first.responses[0].partition_responses[0].error_message);
    let retry = client.call(&produce_request("seq", batch(0, &[b"a", b"b"]), -1), 9).await;
    assert_eq!(produce_error(&retry), 0);
    assert_eq!(retry.responses[0].partition_responses[0].base_offset, 0, "a retry is acknowledged at its original offset");
    let gap = client.call(&produce_request("seq", batch(5, &[b"c"]), -1), 9).await;
    assert_eq!(produce_error(&gap), ResponseError::OutOfOrderSequenceNumber.code());
    let next = client.call(&produce_request("seq", batch(2, &[b"c"]), -1), 9).await;
    assert_eq!(next.responses[0].partition_responses[0].base_offset, 2);
    assert_eq!(broker.state.topic("seq").unwrap().partition(0).unwrap().log.bounds().log_end_offset, 3);
}

/// Every API answers every advertised version with a response that
/// decodes at that version.
#[tokio::test(flavor = "multi_thread")]
async fn every_api_answers_every_supported_version() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap).await;
    crate::support::create_topic(&broker.bootstrap, "sweep", 1, &[]).await;
    let topic_id = broker.state.topic("sweep").unwrap().id;
    for v in 0..=3 {
        client.call(&ApiVersionsRequest::default(), v).await;
    }
    for v in 0..=12 {
        let wanted = MetadataRequestTopic::default().with_name(Some(topic("sweep")));
        let response = client.call(&MetadataRequest::default().with_topics(Some(vec![wanted])), v).await;
        assert_eq!(response.topics[0].partitions.len(), 1, "metadata v{v}");
    }
    for v in 0..=9 {
        let response = client.call(&produce_request("sweep", testing::batch(1_000 + v as i64, &[b"sweep"]), 1), v).await;
        assert_eq!(produce_error(&response), 0, "produce v{v}");
        assert_eq!(response.responses[0].partition_responses[0].base_offset, v as i64);
    }
    for v in 0..=15 {
        let partition = FetchPartition::default().with_partition(0).with_fetch_offset(3).with_partition_max_bytes(1 << 20);
        let fetch_topic = if v >= 13 { FetchTopic::default().with_topic_id(topic_id) } else { FetchTopic::default().with_topic(topic("sweep")) };
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![fetch_topic.with_partitions(vec![partition])]);
        let response = client.call(&request, v).await;
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.error_code, 0, "fetch v{v}");
        assert_eq!(data.high_watermark, 10);
        let records = data.records.clone().unwrap();
        assert_eq!(
            runnel_log::batch::validate(&records[..records.len().min(runnel_log::batch::BatchHeader::parse(&records).unwrap().size)]).unwrap().base_offset,
            3
        );
    }
    for v in 0..=8 {
        let partition = ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1).with_max_num_offsets(1);
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default().with_name(topic("sweep")).with_partitions(vec![partition])]);
        let response = client.call(&request, v).await;
        let p = &response.topics[0].partitions[0];
        let offset = if v == 0 { p.old_style_offsets[0] } else { p.offset };
        assert_eq!(offset, 10, "list offsets v{v}");
    }
    for v in 0..=7 {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(1000)
            .with_validate_only(v >= 1)
            .with_topics(vec![CreatableTopic::default().with_name(topic(&format!("made-v{v}"))).with_num_partitions(1).with_replication_factor(1)]);
        assert_eq!(client.call(&request, v).await.topics[0].error_code, 0, "create topics v{v}");
    }
    for v in 0..=4 {
        let resource = describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("sweep"))
            .with_configuration_keys(None);
        let response = client.call(&DescribeConfigsRequest::default().with_resources(vec![resource]).with_include_synonyms(v >= 1), v).await;
        assert!(response.results[0].configs.iter().any(|c| c.name.as_str() == "retention.ms"), "describe configs v{v}: {response:?}");
    }
    for v in 0..=1 {
        let response = client.call(&DescribeClusterRequest::default(), v).await;
        assert_eq!(response.brokers.len(), 1);
    }
    for v in 0..=4 {
        let request = OffsetForLeaderEpochRequest::default().with_replica_id(BrokerId(-2)).with_topics(vec![
            offset_for_leader_epoch_request::OffsetForLeaderTopic::default().with_topic(topic("sweep")).with_partitions(vec![
                offset_for_leader_epoch_request::OffsetForLeaderPartition::default().with_partition(0).with_leader_epoch(0).with_current_leader_epoch(-1),
            ]),
        ]);
        let response = client.call(&request, v).await;
        assert_eq!(response.topics[0].partitions[0].end_offset, 10, "offset for leader epoch v{v}");
    }
    for v in 0..=4 {
        let response = client.call(&InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(1000), v).await;
        assert!(response.producer_id.0 >= 0, "init producer id v{v}");
    }
    for v in 0..=2 {
        let request = DeleteRecordsRequest::default().with_timeout_ms(1000).with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
            .with_name(topic("sweep"))
            .with_partitions(vec![delete_records_request::DeleteRecordsPartition::default().with_partition_index(0).with_offset(v as i64)])]);
        assert_eq!(client.call(&request, v).await.topics[0].partitions[0].low_watermark, v as i64, "delete records v{v}");
    }
    for v in 0..=3 {
        let request = CreatePartitionsRequest::default()
            .with_timeout_ms(1000)
            .with_topics(vec![create_partitions_request::CreatePartitionsTopic::default().with_name(topic("sweep")).with_count(2 + v as i32)]);
        assert_eq!(client.call(&request, v).await.results[0].error_code, 0, "create partitions v{v}");
    }
    for v in 0..=2 {
        let request = AlterConfigsRequest::default().with_resources(vec![alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("sweep"))
            .with_configs(vec![alter_configs_request::AlterableConfig::default()
                .with_name(StrBytes::from_static_str("retention.ms"))
                .with_value(Some(StrBytes::from_static_str("1000")))])]);
        assert_eq!(client.call(&request, v).await.responses[0].error_code, 0, "alter configs v{v}");
    }
    for v in 0..=1 {
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("sweep"))
            .with_configs(vec![incremental_alter_configs_request::AlterableConfig::default()
                .with_name(StrBytes::from_static_str("cleanup.policy"))
                .with_config_operation(2)
                .with_value(Some(StrBytes::from_static_str("compact")))])]);
        assert_eq!(client.call(&request, v).await.responses[0].error_code, 0, "incremental alter configs v{v}");
    }
    let unknown = AlterConfigsRequest::default().with_resources(vec![alter_configs_request::AlterConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_static_str("sweep"))
        .with_configs(vec![alter_configs_request::AlterableConfig::default()
            .with_name(StrBytes::from_static_str("no.such.config"))
            .with_value(Some(StrBytes::from_static_str("1")))])]);
    assert_eq!(client.call(&unknown, 2).await.responses[0].error_code, ResponseError::InvalidConfig.code());
    assert_eq!(broker.state.topic("sweep").unwrap().overrides().get("cleanup.policy").map(String::as_str), Some("delete,compact"));
    for v in 0..=6 {
        let name = format!("made-v{}", v.min(0));
        let request = if v >= 6 {
            DeleteTopicsRequest::default()
                .with_timeout_ms(1000)
                .with_topics(vec![delete_topics_request::DeleteTopicState::default().with_name(Some(topic(&name)))])
        } else {
            DeleteTopicsRequest::default().with_timeout_ms(1000).with_topic_names(vec![topic(&name)])
        };
        let response = client.call(&request, v).await;
        let expected = if v == 0 { 0 } else { ResponseError::UnknownTopicOrPartition.code() };
        assert_eq!(response.responses[0].error_code, expected, "delete topics v{v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn acks_zero_gets_no_response_but_is_stored() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap).await;
    crate::support::create_topic(&broker.bootstrap, "fire-and-forget", 1, &[]).await;
    let frame = client.encode(&produce_request("fire-and-forget", testing::batch(1, &[b"a"]), 0), 9);
    client.send_raw(&frame).await;
    // The next answer on this connection belongs to the next request.
    let response = client.call(&ApiVersionsRequest::default(), 2).await;
    assert_eq!(response.error_code, 0);
    assert_eq!(broker.state.topic("fire-and-forget").unwrap().partition(0).unwrap().log.bounds().log_end_offset, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn list_offsets_max_timestamp_and_fetch_byte_limits() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap).await;
    crate::support::create_topic(&broker.bootstrap, "limits", 1, &[]).await;
    for ts in [5_000i64, 9_000, 7_000] {
        let big = vec![b'x'; 3000];
        client.call(&produce_request("limits", testing::batch(ts, &[&big]), 1), 9).await;
    }
    let partition = ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-3);
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default().with_name(topic("limits")).with_partitions(vec![partition])]);
    let p = client.call(&request, 8).await.topics[0].partitions[0].clone();
    assert_eq!((p.offset, p.timestamp), (1, 9_000), "max timestamp is at offset 1");

    let fetch = |partition_max: i32, max_bytes: i32| {
        FetchRequest::default().with_replica_id(BrokerId(-1)).with_max_wait_ms(0).with_max_bytes(max_bytes).with_topics(vec![FetchTopic::default()
            .with_topic(topic("limits"))
            .with_partitions(vec![FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(partition_max)])])
    };
    let batches = |response: FetchResponse| {
        let records = response.responses[0].partitions[0].records.clone().unwrap_or_default();
        let mut count = 0;
        let mut pos = 0;
        while pos < records.len() {
            pos += runnel_log::batch::BatchHeader::parse(&records[pos..]).unwrap().size;
            count += 1;
        }
        assert_eq!(pos, records.len(), "only whole batches are returned");
        count
    };
    assert_eq!(batches(client.call(&fetch(1 << 20, 1 << 20), 12).await), 3);
    assert_eq!(batches(client.call(&fetch(7000, 1 << 20), 12).await), 2, "partition_max_bytes limits");
    assert_eq!(batches(client.call(&fetch(1 << 20, 7000), 12).await), 2, "max_bytes limits");
    assert_eq!(batches(client.call(&fetch(10, 10), 12).await), 1, "one oversized batch still comes back");
}

#[tokio::test(flavor = "multi_thread")]
async fn long_poll_waits_for_min_bytes_until_max_wait() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap).await;
    crate::support::create_topic(&broker.bootstrap, "wait", 1, &[]).await;
    client.call(&produce_request("wait", testing::batch(1, &[b"seed"]), 1), 9).await;
    let request = FetchRequest::default().with_replica_id(BrokerId(-1)).with_max_wait_ms(300).with_min_bytes(1).with_max_bytes(1 << 20).with_topics(vec![
        FetchTopic::default()
            .with_topic(topic("wait"))
            .with_partitions(vec![FetchPartition::default().with_partition(0).with_fetch_offset(1).with_partition_max_bytes(1 << 20)]),
    ]);
    let started = std::time::Instant::now();
    let response = client.call(&request, 12).await;
    assert!(started.elapsed() >= Duration::from_millis(290), "an empty fetch waits for max_wait_ms");
    assert!(response.responses[0].partitions[0].records.as_ref().is_none_or(|r| r.is_empty()));
}

fn join_request(group: &str, member_id: &str, session_timeout_ms: i32) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_session_timeout_ms(session_timeout_ms)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(StrBytes::from_string(member_id.to_string()))
        .with_group_instance_id(None)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(Bytes::from_static(b"\x00\x00\x00\x00\x00\x01\x00\x02gs\x00\x00\x00\x00"))])
}

/// Joins `group` as its only member; returns (member id, generation).
async fn join_alone(client: &mut RawClient, group: &str, version: i16) -> (String, i32) {
    let mut response = client.call(&join_request(group, "", 10_000), version).await;
    if version >= 4 {
        assert_eq!(response.error_code, ResponseError::MemberIdRequired.code(), "join v{version}");
        response = client.call(&join_request(group, response.member_id.as_str(), 10_000), version).await;
    }
    assert_eq!(response.error_code, 0, "join v{version}");
    assert_eq!(response.leader, response.member_id);
    assert_eq!(response.members.len(), 1);
    (response.member_id.to_string(), response.generation_id)
}

fn commit_request(group: &str, generation: i32, member: &str, topic_name: &str, offset: i64, metadata: &str) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_group_instance_id(None)
        .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default().with_name(topic(topic_name)).with_partitions(vec![
            offset_commit_request::OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(StrBytes::from_string(metadata.to_string()))),
        ])])
}

fn commit_error(response: &OffsetCommitResponse) -> i16 {
    response.topics[0].partitions[0].error_code
}

#[tokio::test(flavor = "multi_thread")]
async fn group_apis_answer_every_supported_version() {
    let broker = TestBroker::start().await;
    crate::support::create_topic(&broker.bootstrap, "gs", 1, &[]).await;
    let mut client = RawClient::connect(&broker.bootstrap).await;
    for v in 0..=4 {
        let request = if v >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![StrBytes::from_static_str("g")])
        } else {
            FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"))
        };
        let response = client.call(&request, v).await;
        let port = if v >= 4 { response.coordinators[0].port } else { response.port };
        assert_eq!(port.to_string(), broker.bootstrap.rsplit(':').next().unwrap(), "find coordinator v{v}");
    }
    for v in 0..=9i16 {
        let group = format!("sweep-{v}");
        let group_id = GroupId(StrBytes::from_string(group.clone()));
        let (member, generation) = join_alone(&mut client, &group, v).await;
        let member_bytes = StrBytes::from_string(member.clone());
        let sync = SyncGroupRequest::default()
            .with_group_id(group_id.clone())
            .with_generation_id(generation)
            .with_member_id(member_bytes.clone())
            .with_group_instance_id(None)
            .with_assignments(vec![sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(member_bytes.clone())
                .with_assignment(Bytes::from_static(b"\x00\x01opaque\xff"))]);
        let synced = client.call(&sync, v.min(5)).await;
        assert_eq!((synced.error_code, synced.assignment.as_ref()), (0, &b"\x00\x01opaque\xff"[..]), "sync v{}", v.min(5));
        let heartbeat = HeartbeatRequest::default()
            .with_group_id(group_id.clone())
            .with_generation_id(generation)
            .with_member_id(member_bytes.clone())
            .with_group_instance_id(None);
        assert_eq!(client.call(&heartbeat, v.min(4)).await.error_code, 0, "heartbeat v{}", v.min(4));
        // v0 carries no generation or member: a commit from outside group
        // management, which an active group refuses, so it goes to a group
        // of its own.
        let commit_group = if v == 0 { format!("{group}-standalone") } else { group.clone() };
        let commit = commit_request(&commit_group, generation, &member, "gs", 3 + v as i64, "meta");
        assert_eq!(commit_error(&client.call(&commit, v).await), 0, "offset commit v{v}");
        let group_id_for_fetch = GroupId(StrBytes::from_string(commit_group));
        let committed = if v >= 8 {
            let request = OffsetFetchRequest::default().with_groups(vec![offset_fetch_request::OffsetFetchRequestGroup::default()
                .with_group_id(group_id_for_fetch.clone())
                .with_topics(Some(vec![offset_fetch_request::OffsetFetchRequestTopics::default().with_name(topic("gs")).with_partition_indexes(vec![0])]))]);
            client.call(&request, v).await.groups[0].topics[0].partitions[0].committed_offset
        } else {
            let request = OffsetFetchRequest::default()
                .with_group_id(group_id_for_fetch.clone())
                .with_topics(Some(vec![offset_fetch_request::OffsetFetchRequestTopic::default().with_name(topic("gs")).with_partition_indexes(vec![0])]));
            client.call(&request, v).await.topics[0].partitions[0].committed_offset
        };
        assert_eq!(committed, 3 + v as i64, "offset fetch v{v}");
        let described = client.call(&DescribeGroupsRequest::default().with_groups(vec![group_id.clone()]), v.min(5)).await;
        assert_eq!(described.groups[0].group_state.as_str(), "Stable", "describe groups v{}", v.min(5));
        assert_eq!(described.groups[0].members[0].member_assignment.as_ref(), b"\x00\x01opaque\xff");
        let listed = client.call(&ListGroupsRequest::default(), v.min(4)).await;
        assert!(listed.groups.iter().any(|g| g.group_id == group_id), "list groups v{}", v.min(4));
        let leave = if v.min(5) >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(group_id.clone())
                .with_members(vec![leave_group_request::MemberIdentity::default().with_member_id(member_bytes.clone())])
        } else {
            LeaveGroupRequest::default().with_group_id(group_id.clone()).with_member_id(member_bytes.clone())
        };
        assert_eq!(client.call(&leave, v.min(5)).await.error_code, 0, "leave group v{}", v.min(5));
        let deleted = client.call(&DeleteGroupsRequest::default().with_groups_names(vec![group_id.clone()]), v.min(2)).await;
        assert_eq!(deleted.results[0].error_code, 0, "delete groups v{}", v.min(2));
    }
    let commit = commit_request("standalone", -1, "", "gs", 9, "");
    assert_eq!(commit_error(&client.call(&commit, 8).await), 0);
    let request = OffsetDeleteRequest::default().with_group_id(GroupId(StrBytes::from_static_str("standalone"))).with_topics(vec![
        offset_delete_request::OffsetDeleteRequestTopic::default()
            .with_name(topic("gs"))
            .with_partitions(vec![offset_delete_request::OffsetDeleteRequestPartition::default().with_partition_index(0)]),
    ]);
    let response = client.call(&request, 0).await;
    assert_eq!((response.error_code, response.topics[0].partitions[0].error_code), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_group_requests_get_error_codes_and_leave_state_intact() {
    let broker = TestBroker::start().await;
    crate::support::create_topic(&broker.bootstrap, "gt", 1, &[]).await;
    let mut client = RawClient::connect(&broker.bootstrap).await;
    let (member, generation) = join_alone(&mut client, "solid", 9).await;
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("solid")))
        .with_generation_id(generation)
        .with_member_id(StrBytes::from_string(member.clone()))
        .with_group_instance_id(None);
    client.call(&sync, 5).await;
    assert_eq!(commit_error(&client.call(&commit_request("solid", generation, &member, "gt", 5, "ok"), 8).await), 0);

    for (group, expected) in [("", ResponseError::InvalidGroupId), (&"g".repeat(300)[..], ResponseError::InvalidGroupId)] {
        let response = client.call(&join_request(group, "", 10_000), 9).await;
        assert_eq!(response.error_code, expected.code());
    }
    assert_eq!(client.call(&join_request("short", "", 1), 9).await.error_code, ResponseError::InvalidSessionTimeout.code());
    let cases = [
        (commit_request("solid", generation, &member, "no-such-topic", 1, ""), ResponseError::UnknownTopicOrPartition),
        (commit_request("solid", generation - 1, &member, "gt", 1, ""), ResponseError::IllegalGeneration),
        (commit_request("solid", generation, &member, "gt", 1, &"m".repeat(5000)), ResponseError::OffsetMetadataTooLarge),
        (commit_request("solid", generation, "stranger", "gt", 1, ""), ResponseError::UnknownMemberId),
        (commit_request(&"g".repeat(300), -1, "", "gt", 1, ""), ResponseError::InvalidGroupId),
    ];
    for (request, expected) in cases {
        assert_eq!(commit_error(&client.call(&request, 8).await), expected.code(), "{expected:?}");
    }
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("solid")))
        .with_generation_id(generation)
        .with_member_id(StrBytes::from_static_str("stranger"));
    assert_eq!(client.call(&heartbeat, 4).await.error_code, ResponseError::UnknownMemberId.code());
    let delete = |name: &'static str| DeleteGroupsRequest::default().with_groups_names(vec![GroupId(StrBytes::from_static_str(name))]);
    assert_eq!(client.call(&delete("solid"), 2).await.results[0].error_code, ResponseError::NonEmptyGroup.code());
    assert_eq!(client.call(&delete("ghost"), 2).await.results[0].error_code, ResponseError::GroupIdNotFound.code());

    let described = broker.state.groups.with(|c, _| c.describe("solid"));
    assert_eq!((described.state.as_str(), described.members.len()), ("Stable", 1), "bad requests did not disturb the group");
    let committed = broker.state.groups.with(|c, _| c.committed("solid"));
    assert_eq!(committed.len(), 1);
    assert_eq!(committed[0].1.offset, 5, "rejected commits changed nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_offsets_topic_can_be_neither_deleted_nor_grown_and_committed_offsets_survive() {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap).await;
    crate::support::create_topic(&broker.bootstrap, "rides", 1, &[]).await;
    let commit =
        OffsetCommitRequest::default().with_group_id(GroupId(StrBytes::from_static_str("g"))).with_generation_id_or_member_epoch(-1).with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(topic("rides"))
                .with_partitions(vec![OffsetCommitRequestPartition::default().with_committed_offset(42)]),
        ]);
    assert_eq!(client.call(&commit, 8).await.topics[0].partitions[0].error_code, 0);

    let delete = DeleteTopicsRequest::default().with_timeout_ms(1000).with_topic_names(vec![topic("__consumer_offsets")]);
    let deleted = client.call(&delete, 5).await;
    assert_eq!(deleted.responses[0].error_code, ResponseError::InvalidRequest.code());
    assert!(deleted.responses[0].error_message.as_ref().is_some_and(|m| m.contains("internal")), "{deleted:?}");
    let grow = CreatePartitionsRequest::default()
        .with_timeout_ms(1000)
        .with_topics(vec![CreatePartitionsTopic::default().with_name(topic("__consumer_offsets")).with_count(50).with_assignments(None)]);
    assert_eq!(client.call(&grow, 3).await.results[0].error_code, ResponseError::InvalidRequest.code());

    // Offsets are still there, and commits still work.
    let fetch = OffsetFetchRequest::default().with_group_id(GroupId(StrBytes::from_static_str("g"))).with_topics(None);
    assert_eq!(client.call(&fetch, 7).await.topics[0].partitions[0].committed_offset, 42);
    assert_eq!(client.call(&commit, 8).await.topics[0].partitions[0].error_code, 0);
}
