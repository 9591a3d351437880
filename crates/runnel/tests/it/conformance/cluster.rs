//! The cluster and admin requests at their edges: unknown APIs and
//! versions, auto-creation, authorized operations, duplicate names in one
//! request, unknown resource types.

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::protocol::Decodable;

use super::*;

/// A request frame with header v2 (a flexible version's) and an empty
/// body: enough for a broker to see which API and version it names.
fn bare_frame(api_key: i16, version: i16, correlation_id: i32) -> Bytes {
    let mut body = BytesMut::new();
    body.put_i16(api_key);
    body.put_i16(version);
    body.put_i32(correlation_id);
    body.put_i16(4);
    body.put_slice(b"test");
    body.put_u8(0); // no tagged fields
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    frame.freeze()
}

#[tokio::test(flavor = "multi_thread")]
async fn api_versions_at_a_version_the_broker_does_not_know() {
    let mut pair = Pair::start("apiversionsfuture").await;
    pair.compare_scripts(async |client, _| {
        client.send_raw(&bare_frame(18, 99, 7)).await;
        let mut frame = client.read_frame().await.expect("an answer, not a closed connection");
        let correlation_id = frame.get_i32();
        // The answer is in v0's format, whatever the version asked.
        let response = ApiVersionsResponse::decode(&mut frame, 0).unwrap();
        let api_versions = response.api_keys.iter().find(|k| k.api_key == 18).map(|k| k.min_version);
        vec![format!("correlation id {correlation_id} error {} lists ApiVersions from v{api_versions:?}", response.error_code)]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_for_unknown_apis_or_versions_close_the_connection() {
    let mut pair = Pair::start("unknownapis").await;
    pair.compare_scripts(async |client, _| {
        let mut seen = Vec::new();
        for (api_key, version) in [(3, 99), (1, 99), (9999, 0), (-5, 0)] {
            client.send_raw(&bare_frame(api_key, version, 1)).await;
            let answered = client.read_frame().await.is_some();
            seen.push(format!("API {api_key} v{version}: answered {answered}"));
            if !answered {
                *client = RawClient::connect(&client.peer_addr()).await;
            }
        }
        seen
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_auto_creates_topics_only_when_asked_and_only_valid_names() {
    let mut pair = Pair::start("autocreate").await;
    let versions = pair.versions::<MetadataRequest>().await;
    let ask = |names: Vec<String>, allow: bool| {
        MetadataRequest::default()
            .with_allow_auto_topic_creation(allow)
            .with_topics(Some(names.into_iter().map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(&n)))).collect()))
    };
    // Invalid names are refused, and a request that does not allow it
    // creates nothing.
    pair.compare_at(
        (*versions.start()).max(4)..=*versions.end(),
        move |p, _| ask(vec!["bad name!".to_string(), "__consumer_offsets-not".to_string(), p.name("not-allowed")], false),
        normalise_metadata,
    )
    .await;
    // A topic created on first use has `num.partitions` partitions. Apache
    // Kafka answers the creating request with an error a client retries
    // (UNKNOWN_TOPIC_OR_PARTITION while the controller creates it) and
    // runnel with the topic itself; both answer the same once it exists.
    let created = pair.name("created");
    let (runnel, kafka) = pair.both(&ask(vec![created.clone()], true), 12).await;
    assert_eq!(runnel.topics[0].error_code, 0, "set-up: runnel creates on first use");
    assert!([0, 3, 5].contains(&kafka.topics[0].error_code), "set-up: Apache Kafka creates on first use: {kafka:?}");
    await_served(&mut pair, vec![topic_name(&created)]).await;
    pair.compare_at((*versions.start()).max(4)..=*versions.end(), move |_, _| ask(vec![created.clone()], false), normalise_metadata).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_and_describe_cluster_with_authorized_operations_requested() {
    let mut pair = Pair::start("authorizedops").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    let versions = pair.versions::<MetadataRequest>().await;
    pair.compare_at(
        (*versions.start()).max(8)..=*versions.end(),
        move |_, v| {
            let request = MetadataRequest::default()
                .with_allow_auto_topic_creation(false)
                .with_include_topic_authorized_operations(true)
                .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name(&t)))]));
            if v <= 10 {
                request.with_include_cluster_authorized_operations(true)
            } else {
                request
            }
        },
        normalise_metadata,
    )
    .await;
    pair.compare(
        |_, _| DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
        |response: &mut DescribeClusterResponse, _| {
            response.throttle_time_ms = 0;
            response.cluster_id = StrBytes::default();
            response.controller_id = BrokerId(0);
            response.brokers.clear();
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_cluster_asked_for_controllers() {
    let mut pair = Pair::start("clustercontrollers").await;
    let versions = pair.versions::<DescribeClusterRequest>().await;
    pair.compare_at(
        (*versions.start()).max(1)..=*versions.end(),
        |_, _| DescribeClusterRequest::default().with_endpoint_type(2),
        |response: &mut DescribeClusterResponse, _| {
            response.throttle_time_ms = 0;
            forget_error_message(response.error_code, &mut response.error_message);
            response.cluster_id = StrBytes::default();
            response.controller_id = BrokerId(0);
            response.brokers.clear();
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_topics_naming_a_topic_twice_in_one_request() {
    let mut pair = Pair::start("createtwice").await;
    pair.compare(
        |p, v| {
            create_topics(
                vec![
                    new_topic(&p.name(&format!("twice-v{v}")), 1, 1, &[]),
                    new_topic(&p.name(&format!("once-v{v}")), 1, 1, &[]),
                    new_topic(&p.name(&format!("twice-v{v}")), 2, 1, &[]),
                ],
                false,
            )
        },
        normalise_create,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_partitions_validate_only_twice_named_and_unchanged() {
    let mut pair = Pair::start("partitionsedge").await;
    let (a, b) = (pair.name("a"), pair.name("b"));
    create_on_both(&mut pair, &[(&a, 1), (&b, 1)]).await;
    let grow = |name: &str, count: i32| CreatePartitionsTopic::default().with_name(topic_name(name)).with_count(count).with_assignments(None);
    let normalise = |response: &mut CreatePartitionsResponse, _: i16| {
        response.throttle_time_ms = 0;
        response.results.sort_by(|x, y| x.name.cmp(&y.name));
        for result in &mut response.results {
            forget_error_message(result.error_code, &mut result.error_message);
        }
    };
    pair.compare(
        move |_, _| CreatePartitionsRequest::default().with_timeout_ms(10_000).with_validate_only(true).with_topics(vec![grow(&a, 4), grow(&b, 1)]),
        normalise,
    )
    .await;
    let b2 = pair.name("b");
    pair.compare(move |_, _| CreatePartitionsRequest::default().with_timeout_ms(10_000).with_topics(vec![grow(&b2, 3), grow(&b2, 5)]), normalise).await;
    // Validation created nothing: both still have one partition.
    let a = pair.name("a");
    let versions = pair.versions::<MetadataRequest>().await;
    pair.compare_at(
        (*versions.start()).max(4)..=*versions.end(),
        move |_, _| {
            MetadataRequest::default()
                .with_allow_auto_topic_creation(false)
                .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name(&a)))]))
        },
        normalise_metadata,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_topics_naming_a_topic_twice_or_by_name_and_id() {
    let mut pair = Pair::start("deletetwice").await;
    let versions = pair.versions::<DeleteTopicsRequest>().await;
    for v in versions.clone() {
        let t = pair.name(&format!("t-v{v}"));
        create_on_both(&mut pair, &[(&t, 1)]).await;
    }
    let normalise = |response: &mut DeleteTopicsResponse, _: i16| {
        response.throttle_time_ms = 0;
        for r in &mut response.responses {
            r.topic_id = Default::default();
            forget_error_message(r.error_code, &mut r.error_message);
        }
        response.responses.sort_by(|x, y| x.name.cmp(&y.name));
    };
    pair.compare_at(
        versions.clone(),
        |p, v| {
            let t = p.name(&format!("t-v{v}"));
            if v >= 6 {
                DeleteTopicsRequest::default()
                    .with_timeout_ms(10_000)
                    .with_topics(vec![DeleteTopicState::default().with_name(Some(topic_name(&t))), DeleteTopicState::default().with_name(Some(topic_name(&t)))])
            } else {
                DeleteTopicsRequest::default().with_timeout_ms(10_000).with_topic_names(vec![topic_name(&t), topic_name(&t)])
            }
        },
        normalise,
    )
    .await;
    // Named by both a name and an id, from v6.
    pair.compare_at(
        (*versions.start()).max(6)..=*versions.end(),
        |p, _| {
            DeleteTopicsRequest::default()
                .with_timeout_ms(10_000)
                .with_topics(vec![DeleteTopicState::default().with_name(Some(topic_name(&p.name("t-v6")))).with_topic_id(uuid::Uuid::from_u128(42))])
        },
        normalise,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn configs_of_unknown_resource_types_and_brokers() {
    use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
    let mut pair = Pair::start("resourcetypes").await;
    let describe = |resource_type: i8, name: &str| {
        DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configuration_keys(None)
    };
    pair.compare(
        move |_, _| {
            DescribeConfigsRequest::default().with_resources(vec![
                describe(99, "x"),
                describe(4, "12345"),
                describe(4, "not-a-number"),
                describe(2, ""),
                describe(2, "bad name!"),
            ])
        },
        |response: &mut DescribeConfigsResponse, _| {
            response.throttle_time_ms = 0;
            for result in &mut response.results {
                forget_error_message(result.error_code, &mut result.error_message);
            }
        },
    )
    .await;
    pair.compare(
        |_, _| {
            AlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default().with_resource_type(99).with_resource_name(StrBytes::from_static_str("x")),
                AlterConfigsResource::default().with_resource_type(2).with_resource_name(StrBytes::from_static_str("")),
            ])
        },
        normalise_alter_configs,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_offsets_naming_a_partition_twice() {
    let mut pair = Pair::start("listtwice").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 2)]).await;
    pair.compare(
        move |_, _| {
            let mut request = list_offsets(&t, -1);
            let partitions = &mut request.topics[0].partitions;
            partitions.push(partitions[0].clone());
            partitions.push(partitions[0].clone().with_partition_index(1));
            request
        },
        normalise_list_offsets,
    )
    .await;
}
