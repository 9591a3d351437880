//! Topics and the cluster: creation, deletion, partitions, configs,
//! metadata, API versions.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn create_topics_valid_invalid_and_duplicate() {
    let mut pair = Pair::start("create").await;
    pair.compare(
        |p, v| {
            create_topics(
                vec![
                    new_topic(&p.name(&format!("ok-v{v}")), 3, 1, &[("retention.ms", "3600000"), ("cleanup.policy", "delete")]),
                    new_topic(&p.name(&format!("default-partitions-v{v}")), -1, -1, &[]),
                    new_topic("bad name!", 1, 1, &[]),
                    new_topic(".", 1, 1, &[]),
                    new_topic(&"x".repeat(250), 1, 1, &[]),
                    new_topic(&p.name(&format!("zero-v{v}")), 0, 1, &[]),
                    new_topic(&p.name(&format!("negative-v{v}")), -2, 1, &[]),
                    new_topic(&p.name(&format!("rf3-v{v}")), 1, 3, &[]),
                    new_topic(&p.name(&format!("rf0-v{v}")), 1, 0, &[]),
                    new_topic(&p.name(&format!("badconfig-v{v}")), 1, 1, &[("retention.ms", "soon")]),
                    new_topic(&p.name(&format!("unknownconfig-v{v}")), 1, 1, &[("no.such.config", "1")]),
                ],
                false,
            )
        },
        normalise_create,
    )
    .await;
    // The same creations again: now they exist.
    pair.compare(|p, v| create_topics(vec![new_topic(&p.name(&format!("ok-v{v}")), 3, 1, &[])], false), normalise_create).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_topics_validate_only_creates_nothing() {
    let mut pair = Pair::start("validate").await;
    let versions = pair.versions::<CreateTopicsRequest>().await;
    let versions = (*versions.start()).max(1)..=*versions.end();
    pair.compare_at(versions, |p, v| create_topics(vec![new_topic(&p.name(&format!("v{v}")), 2, 1, &[])], true), normalise_create).await;
    let versions = pair.versions::<MetadataRequest>().await;
    pair.compare_at(
        (*versions.start()).max(4)..=*versions.end(),
        |p, _| {
            MetadataRequest::default()
                .with_allow_auto_topic_creation(false)
                .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name(&p.name("v1"))))]))
        },
        normalise_metadata,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_for_unknown_and_existing_topics() {
    let mut pair = Pair::start("metadata").await;
    let name = pair.name("three");
    create_on_both(&mut pair, &[(&name, 3)]).await;
    let versions = pair.versions::<MetadataRequest>().await;
    // v0-v3 always auto-create; from v4 the request says so.
    let versions = (*versions.start()).max(4)..=*versions.end();
    pair.compare_at(
        versions,
        |p, _| {
            MetadataRequest::default().with_allow_auto_topic_creation(false).with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name(&p.name("three")))),
                MetadataRequestTopic::default().with_name(Some(topic_name(&p.name("missing")))),
            ]))
        },
        normalise_metadata,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_topics_existing_and_unknown() {
    let mut pair = Pair::start("delete").await;
    let versions = pair.versions::<DeleteTopicsRequest>().await;
    for v in versions {
        let name = pair.name(&format!("gone-v{v}"));
        create_on_both(&mut pair, &[(&name, 1)]).await;
    }
    pair.compare(
        |p, v| {
            let names = [p.name(&format!("gone-v{v}")), p.name("never-existed")];
            if v >= 6 {
                DeleteTopicsRequest::default()
                    .with_timeout_ms(10_000)
                    .with_topics(names.iter().map(|n| DeleteTopicState::default().with_name(Some(topic_name(n)))).collect())
            } else {
                DeleteTopicsRequest::default().with_timeout_ms(10_000).with_topic_names(names.iter().map(|n| topic_name(n)).collect())
            }
        },
        |response: &mut DeleteTopicsResponse, _| {
            response.throttle_time_ms = 0;
            response.responses.sort_by(|a, b| a.name.cmp(&b.name));
            for topic in &mut response.responses {
                topic.topic_id = Default::default();
                forget_error_message(topic.error_code, &mut topic.error_message);
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_partitions_grow_shrink_and_unknown() {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    let mut pair = Pair::start("partitions").await;
    let versions = pair.versions::<CreatePartitionsRequest>().await;
    for v in versions {
        let name = pair.name(&format!("grow-v{v}"));
        create_on_both(&mut pair, &[(&name, 2)]).await;
    }
    for (count, validate_only) in [(4, true), (4, false), (3, false), (4, false)] {
        pair.compare(
            move |p, v| {
                CreatePartitionsRequest::default().with_timeout_ms(10_000).with_validate_only(validate_only).with_topics(vec![
                    CreatePartitionsTopic::default().with_name(topic_name(&p.name(&format!("grow-v{v}")))).with_count(count).with_assignments(None),
                    CreatePartitionsTopic::default().with_name(topic_name(&p.name("absent"))).with_count(count).with_assignments(None),
                ])
            },
            |response: &mut CreatePartitionsResponse, _| {
                response.throttle_time_ms = 0;
                response.results.sort_by(|a, b| a.name.cmp(&b.name));
                for result in &mut response.results {
                    forget_error_message(result.error_code, &mut result.error_message);
                }
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn api_versions_refuses_an_invalid_client_software_name() {
    let mut pair = Pair::start("apiversions").await;
    pair.compare_at(
        3..=3,
        |_, _| {
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("-bad name-"))
                .with_client_software_version(StrBytes::from_static_str("1"))
        },
        |response: &mut ApiVersionsResponse, _| {
            // Each broker lists its own APIs; compare the verdict.
            response.api_keys.clear();
            response.throttle_time_ms = 0;
            response.supported_features.clear();
            response.finalized_features.clear();
            response.finalized_features_epoch = -1;
            response.zk_migration_ready = false;
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn topic_configs_altered_whole_and_incrementally() {
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::messages::incremental_alter_configs_request as incremental;
    let mut pair = Pair::start("alterconfigs").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    let cases: [(&str, &str); 4] = [("retention.ms", "60000"), ("retention.ms", "soon"), ("no.such.config", "1"), ("cleanup.policy", "delete,compact")];
    for (name, value) in cases {
        for target in [t.clone(), pair.name("absent")] {
            let target2 = target.clone();
            pair.compare(
                move |_, _| {
                    AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(StrBytes::from_string(target.clone()))
                        .with_configs(vec![AlterableConfig::default()
                            .with_name(StrBytes::from_static_str(name))
                            .with_value(Some(StrBytes::from_static_str(value)))])])
                },
                normalise_alter_configs,
            )
            .await;
            pair.compare(
                move |_, _| {
                    IncrementalAlterConfigsRequest::default().with_resources(vec![incremental::AlterConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(StrBytes::from_string(target2.clone()))
                        .with_configs(vec![incremental::AlterableConfig::default()
                            .with_name(StrBytes::from_static_str(name))
                            .with_config_operation(0)
                            .with_value(Some(StrBytes::from_static_str(value)))])])
                },
                normalise_incremental_alter_configs,
            )
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_at_the_oldest_versions_for_an_existing_topic() {
    let mut pair = Pair::start("metadataold").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 2)]).await;
    let versions = pair.versions::<MetadataRequest>().await;
    pair.compare_at(
        *versions.start()..=3,
        move |_, _| MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name(&t)))])),
        normalise_metadata,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn topics_named_by_an_unknown_id() {
    let mut pair = Pair::start("topicids").await;
    let unknown = uuid::Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0001);
    let versions = pair.versions::<DeleteTopicsRequest>().await;
    pair.compare_at(
        (*versions.start()).max(6)..=*versions.end(),
        move |_, _| {
            DeleteTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![DeleteTopicState::default().with_name(None).with_topic_id(unknown)])
        },
        |response: &mut DeleteTopicsResponse, _| {
            response.throttle_time_ms = 0;
            for topic in &mut response.responses {
                forget_error_message(topic.error_code, &mut topic.error_message);
            }
        },
    )
    .await;
    let versions = pair.versions::<FetchRequest>().await;
    pair.compare_at(
        (*versions.start()).max(13)..=*versions.end(),
        move |_, _| {
            FetchRequest::default().with_replica_id(BrokerId(-1)).with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![FetchTopic::default()
                .with_topic_id(unknown)
                .with_partitions(vec![FetchPartition::default().with_partition_max_bytes(1 << 20)])])
        },
        normalise_fetch,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_cluster_answers_for_brokers() {
    let mut pair = Pair::start("cluster").await;
    pair.compare(
        |_, _| DescribeClusterRequest::default(),
        |response: &mut DescribeClusterResponse, _| {
            response.throttle_time_ms = 0;
            response.cluster_id = StrBytes::default();
            response.controller_id = BrokerId(0);
            for broker in &mut response.brokers {
                (broker.broker_id, broker.host, broker.port) = (BrokerId(0), StrBytes::default(), 0);
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_topics_with_replica_assignments_and_colliding_names() {
    use kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment;
    let mut pair = Pair::start("assign").await;
    pair.compare(
        |p, v| {
            let assigned = |suffix: &str, brokers: &[i32]| {
                new_topic(&p.name(&format!("{suffix}-v{v}")), -1, -1, &[]).with_assignments(vec![CreatableReplicaAssignment::default()
                    .with_partition_index(0)
                    .with_broker_ids(brokers.iter().map(|b| BrokerId(*b)).collect())])
            };
            create_topics(vec![assigned("on-broker", &[1]), assigned("on-missing-broker", &[7]), assigned("on-no-broker", &[])], false)
        },
        normalise_create,
    )
    .await;
    // Kafka refuses names that collide with an existing one once `.` and
    // `_` are treated alike (their metric names would clash).
    let dotted = pair.name("a.b");
    create_on_both(&mut pair, &[(&dotted, 1)]).await;
    pair.compare(|p, _| create_topics(vec![new_topic(&p.name("a_b"), 1, 1, &[])], false), normalise_create).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn incremental_config_operations_and_validate_only() {
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let mut pair = Pair::start("incremental").await;
    let versions = pair.versions::<IncrementalAlterConfigsRequest>().await;
    for v in versions {
        let name = pair.name(&format!("t-v{v}"));
        create_topics_on_both(&mut pair, vec![new_topic(&name, 1, 1, &[("retention.ms", "600000"), ("cleanup.policy", "delete")])]).await;
    }
    // SET, DELETE, APPEND, SUBTRACT; then a validate-only change.
    let operations: [(&str, i8, &str, bool); 6] = [
        ("retention.ms", 0, "1000", false),
        ("retention.ms", 1, "", false),
        ("cleanup.policy", 2, "compact", false),
        ("cleanup.policy", 3, "delete", false),
        ("retention.ms", 0, "nope", true),
        ("segment.ms", 0, "3600000", true),
    ];
    for (name, operation, value, validate_only) in operations {
        pair.compare(
            move |p, v| {
                IncrementalAlterConfigsRequest::default().with_validate_only(validate_only).with_resources(vec![AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_string(p.name(&format!("t-v{v}"))))
                    .with_configs(vec![AlterableConfig::default()
                        .with_name(StrBytes::from_static_str(name))
                        .with_config_operation(operation)
                        .with_value((operation != 1).then(|| StrBytes::from_static_str(value)))])])
            },
            normalise_incremental_alter_configs,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_for_no_topics_at_all() {
    let mut pair = Pair::start("notopics").await;
    let versions = pair.versions::<MetadataRequest>().await;
    pair.compare_at((*versions.start()).max(1)..=*versions.end(), |_, _| MetadataRequest::default().with_topics(Some(vec![])), normalise_metadata).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_topic_is_gone_and_its_name_free_again() {
    let mut pair = Pair::start("recreate").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 2)]).await;
    produce_on_both(&mut pair, &produce(&t, 0, testing::batch(1, &[b"before"]), -1)).await;
    let delete = DeleteTopicsRequest::default().with_timeout_ms(10_000).with_topic_names(vec![topic_name(&t)]);
    let (runnel, kafka) = pair.both(&delete, 5).await;
    assert_eq!((runnel.responses[0].error_code, kafka.responses[0].error_code), (0, 0));
    // Kafka's brokers learn of a deletion from the controller a moment
    // later; clients retry until their metadata agrees.
    let gone = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name(&t)))]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while pair.kafka.call(&gone, 12).await.topics[0].error_code == 0 {
        assert!(std::time::Instant::now() < deadline, "Apache Kafka never forgot the deleted topic");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let t2 = t.clone();
    let metadata_versions = pair.versions::<MetadataRequest>().await;
    pair.compare_at(
        (*metadata_versions.start()).max(4)..=*metadata_versions.end(),
        move |_, _| {
            MetadataRequest::default()
                .with_allow_auto_topic_creation(false)
                .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name(&t2)))]))
        },
        normalise_metadata,
    )
    .await;
    // Kafka removes a deleted topic's data asynchronously; recreating the
    // name may take a moment, as clients see.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let recreate = create_topics(vec![new_topic(&t, 1, 1, &[])], false);
        let (runnel, kafka) = pair.both(&recreate, 5).await;
        assert_eq!(runnel.topics[0].error_code, 0, "runnel frees the name at once");
        if kafka.topics[0].error_code == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "Apache Kafka never freed the name");
        let undo = DeleteTopicsRequest::default().with_timeout_ms(10_000).with_topic_names(vec![topic_name(&t)]);
        pair.runnel.call(&undo, 5).await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    await_served(&mut pair, vec![topic_name(&t)]).await;
    let t3 = t.clone();
    let offsets_versions = pair.versions::<ListOffsetsRequest>().await;
    pair.compare_at(
        (*offsets_versions.start()).max(4)..=*offsets_versions.end(),
        move |_, _| {
            ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(&t3))
                .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(-1)])])
        },
        normalise_list_offsets,
    )
    .await;
}
