//! Topic configs: validation of every config Apache Kafka defines, and
//! DescribeConfigs' values, sources, synonyms and types.

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;

use super::*;

/// Values that probe each type's parsing and each rule's bounds.
const PROBES: &[&str] = &[
    "",
    " ",
    "abc",
    "-131073",
    "-131072",
    "-3",
    "-2",
    "-1",
    "0",
    "1",
    " 7 ",
    "9",
    "10",
    "13",
    "14",
    "17",
    "18",
    "22",
    "23",
    "1048575",
    "1048576",
    "2147483647",
    "2147483648",
    "9223372036854775807",
    "true",
    "TRUE",
    "false",
    "0.5",
    "1.0",
    "1.5",
    "delete",
    "compact",
    "compact, delete",
    "compact,shred",
    "gzip",
    "producer",
    "uncompressed",
    "brotli",
    "*",
    "0:1",
    "0:1,1:1",
    "0",
    "CreateTime",
    "LogAppendTime",
];

/// CreateTopics (validate only) with one topic per (config, probe value),
/// compared on both brokers: the same values must be refused, and the
/// configs echoed for the accepted ones must match. Differences are
/// reported by config and value.
async fn compare_validation(scenario: &str, configs: &[&str]) {
    let mut pair = Pair::start(scenario).await;
    let cases: Vec<(&str, &str)> = configs.iter().flat_map(|config| PROBES.iter().map(move |value| (*config, *value))).collect();
    let request = create_topics(
        cases.iter().enumerate().map(|(i, (config, value))| new_topic(&pair.name(&format!("c{i:04}")), 1, 1, &[(config, value)])).collect(),
        true,
    );
    let versions = pair.versions::<CreateTopicsRequest>().await;
    let mut differences = Vec::new();
    for version in (*versions.start()).max(1)..=*versions.end() {
        let (mut runnel, mut kafka) = pair.both(&request, version).await;
        normalise_create(&mut runnel, version);
        normalise_create(&mut kafka, version);
        for ((config, value), (r, k)) in cases.iter().zip(runnel.topics.iter().zip(&kafka.topics)) {
            if r != k {
                let detail = if r.error_code == k.error_code { first_difference(&format!("{r:?}"), &format!("{k:?}")) } else { String::new() };
                differences.push(format!("v{version} {config}={value:?}: runnel {} kafka {}{detail}", r.error_code, k.error_code));
            }
        }
    }
    assert!(differences.is_empty(), "runnel differs from Apache Kafka:\n{}", differences.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_and_segment_configs_are_validated_alike() {
    compare_validation(
        "cfgretention",
        &[
            "retention.ms",
            "retention.bytes",
            "segment.bytes",
            "segment.ms",
            "segment.jitter.ms",
            "segment.index.bytes",
            "index.interval.bytes",
            "file.delete.delay.ms",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn compression_configs_are_validated_alike() {
    compare_validation("cfgcompression", &["compression.type", "compression.gzip.level", "compression.lz4.level", "compression.zstd.level"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn message_size_and_timestamp_configs_are_validated_alike() {
    compare_validation(
        "cfgmessages",
        &["max.message.bytes", "max.decompressed.message.bytes", "message.timestamp.type", "message.timestamp.before.max.ms", "message.timestamp.after.max.ms"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn compaction_configs_are_validated_alike() {
    compare_validation(
        "cfgcompaction",
        &["cleanup.policy", "min.cleanable.dirty.ratio", "min.compaction.lag.ms", "max.compaction.lag.ms", "delete.retention.ms"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn flush_replication_and_flag_configs_are_validated_alike() {
    compare_validation(
        "cfgflags",
        &[
            "flush.messages",
            "flush.ms",
            "min.insync.replicas",
            "preallocate",
            "unclean.leader.election.enable",
            "errors.deadletterqueue.group.enable",
            "leader.replication.throttled.replicas",
            "follower.replication.throttled.replicas",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tiered_storage_configs_are_validated_alike() {
    compare_validation(
        "cfgremote",
        &[
            "remote.storage.enable",
            "remote.log.copy.disable",
            "remote.log.delete.on.disable",
            "remote.copy.lag.bytes",
            "remote.copy.lag.ms",
            "local.retention.bytes",
            "local.retention.ms",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn configs_that_contradict_each_other_are_refused() {
    let mut pair = Pair::start("cfgconflict").await;
    let versions = pair.versions::<CreateTopicsRequest>().await;
    pair.compare_at(
        (*versions.start()).max(1)..=*versions.end(),
        |p, _| {
            create_topics(
                vec![
                    new_topic(&p.name("lags"), 1, 1, &[("min.compaction.lag.ms", "10000"), ("max.compaction.lag.ms", "5000")]),
                    new_topic(&p.name("lagsok"), 1, 1, &[("min.compaction.lag.ms", "5000"), ("max.compaction.lag.ms", "5000")]),
                    new_topic(&p.name("tiny"), 1, 1, &[("internal.segment.bytes", "1024")]),
                ],
                true,
            )
        },
        normalise_create,
    )
    .await;
}

/// DescribeConfigs of one topic at `version`, asking for synonyms and
/// documentation where the version has them.
fn describe_topic(topic: &str, keys: Option<&[&str]>, version: i16) -> DescribeConfigsRequest {
    DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(topic.to_string()))
            .with_configuration_keys(keys.map(|keys| keys.iter().map(|k| StrBytes::from_string(k.to_string())).collect()))])
        .with_include_synonyms(version >= 1)
        .with_include_documentation(version >= 3)
}

/// Order (Apache Kafka lists configs in hash order), documentation (each
/// broker's own wording; only its presence is compared), and Apache
/// Kafka's KRaft bootstrap, which records `min.insync.replicas` as a
/// cluster-wide dynamic default.
fn normalise_describe_configs(response: &mut DescribeConfigsResponse, version: i16) {
    response.throttle_time_ms = 0;
    for result in &mut response.results {
        forget_error_message(result.error_code, &mut result.error_message);
        if result.error_code == 0 && result.error_message.as_ref().is_some_and(|m| m.is_empty()) {
            result.error_message = None;
        }
        result.configs.sort_by(|a, b| a.name.cmp(&b.name));
        for config in &mut result.configs {
            if let Some(doc) = &mut config.documentation {
                *doc = StrBytes::from_static_str("…");
            }
            forget_cluster_default_min_insync(config.name.as_str(), &mut config.config_source);
            if version == 0 && config.name.as_str() == "min.insync.replicas" {
                config.is_default = true;
            }
            config.synonyms.retain(|s| s.source != DYNAMIC_DEFAULT_BROKER_CONFIG);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_configs_of_a_new_topic_lists_every_default() {
    let mut pair = Pair::start("describedefaults").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    pair.compare(move |_, v| describe_topic(&t, None, v), normalise_describe_configs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_configs_reports_overrides_with_their_sources_and_synonyms() {
    let mut pair = Pair::start("describeoverrides").await;
    let t = pair.name("t");
    let overrides = [
        ("retention.ms", "3600000"),
        ("cleanup.policy", "compact , delete"),
        ("compression.type", "zstd"),
        ("follower.replication.throttled.replicas", "0:1, 1:1"),
        ("segment.bytes", "2097152"),
        ("min.insync.replicas", "1"),
        ("preallocate", "true"),
        ("min.cleanable.dirty.ratio", "0.25"),
        ("segment.ms", " 60000 "),
    ];
    create_topics_on_both(&mut pair, vec![new_topic(&t, 1, 1, &overrides)]).await;
    pair.compare(move |_, v| describe_topic(&t, None, v), normalise_describe_configs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_configs_of_chosen_keys_unknown_keys_and_unknown_topics() {
    let mut pair = Pair::start("describekeys").await;
    let t = pair.name("t");
    create_topics_on_both(&mut pair, vec![new_topic(&t, 1, 1, &[("retention.ms", "1000")])]).await;
    let absent = pair.name("absent");
    pair.compare(
        move |_, v| {
            let mut request = describe_topic(&t, Some(&["retention.ms", "segment.bytes", "no.such.config", "message.format.version"]), v);
            request.resources.extend(describe_topic(&absent, None, v).resources);
            request.resources.extend(describe_topic(&t, Some(&[]), v).resources);
            request
        },
        normalise_describe_configs,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_configs_without_synonyms_or_documentation() {
    let mut pair = Pair::start("describeplain").await;
    let t = pair.name("t");
    create_topics_on_both(&mut pair, vec![new_topic(&t, 1, 1, &[("retention.bytes", "1000000"), ("flush.messages", "1")])]).await;
    pair.compare(move |_, v| describe_topic(&t, None, v).with_include_synonyms(false).with_include_documentation(false), normalise_describe_configs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn describe_configs_after_configs_are_altered_and_deleted() {
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let mut pair = Pair::start("describealtered").await;
    let t = pair.name("t");
    create_topics_on_both(&mut pair, vec![new_topic(&t, 1, 1, &[("retention.ms", "1000"), ("cleanup.policy", "compact")])]).await;
    let change = |name: &'static str, operation: i8, value: Option<&'static str>| {
        AlterableConfig::default().with_name(StrBytes::from_static_str(name)).with_config_operation(operation).with_value(value.map(StrBytes::from_static_str))
    };
    let alter = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_string(t.clone()))
        .with_configs(vec![
            change("retention.ms", 1, None),
            change("cleanup.policy", 2, Some("delete")),
            change("max.message.bytes", 0, Some("2000000")),
            change("leader.replication.throttled.replicas", 2, Some("0:1")),
        ])]);
    let (runnel, kafka) = pair.both(&alter, 1).await;
    assert_eq!(runnel, kafka, "set-up: altering configs");
    pair.compare(move |_, v| describe_topic(&t, None, v), normalise_describe_configs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_configs_changed_at_runtime_cluster_wide_and_for_one_broker() {
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let mut pair = Pair::start_changing_broker_configs("brokerconfigs").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    pair.compare_scripts(async |client, prefix| {
        // The broker-wide default of file.delete.delay.ms: harmless to
        // change on a shared broker.
        const KEY: &str = "log.segment.delete.delay.ms";
        let t = format!("{prefix}-t");
        let alter = |broker: &str, ops: &[(&str, i8, &str)], validate_only: bool| {
            let configs = ops
                .iter()
                .map(|(name, op, value)| {
                    AlterableConfig::default()
                        .with_name(StrBytes::from_string(name.to_string()))
                        .with_config_operation(*op)
                        .with_value(Some(StrBytes::from_string(value.to_string())))
                })
                .collect();
            IncrementalAlterConfigsRequest::default()
                .with_resources(vec![AlterConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(StrBytes::from_string(broker.to_string()))
                    .with_configs(configs)])
                .with_validate_only(validate_only)
        };
        let describe = |resource_type: i8, name: &str, key: &str| {
            DescribeConfigsRequest::default()
                .with_resources(vec![DescribeConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(StrBytes::from_string(name.to_string()))
                    .with_configuration_keys(Some(vec![StrBytes::from_string(key.to_string())]))])
                .with_include_synonyms(true)
        };
        let shown = |response: DescribeConfigsResponse| -> String {
            let result = &response.results[0];
            let configs: Vec<String> = result
                .configs
                .iter()
                .map(|c| {
                    let synonyms: Vec<String> =
                        c.synonyms.iter().map(|s| format!("{}={}@{}", s.name.as_str(), s.value.as_deref().unwrap_or("null"), s.source)).collect();
                    format!("{}={}@{} {synonyms:?}", c.name.as_str(), c.value.as_deref().unwrap_or("null"), c.config_source)
                })
                .collect();
            format!("error {} {configs:?}", result.error_code)
        };
        let altered = |response: IncrementalAlterConfigsResponse| format!("error {}", response.responses[0].error_code);
        // Apache Kafka applies a change once its metadata log delivers it,
        // a moment after answering: poll until the expected value shows.
        async fn settled(client: &mut RawClient, request: &DescribeConfigsRequest, shown: impl Fn(DescribeConfigsResponse) -> String, expect: &str) -> String {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let now = shown(client.call(request, 4).await);
                if now.contains(expect) || std::time::Instant::now() > deadline {
                    return now;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        let mut seen = Vec::new();
        for broker in ["", "1"] {
            client.call(&alter(broker, &[(KEY, 1, "")], false), 1).await;
        }
        settled(client, &describe(2, &t, "file.delete.delay.ms"), shown, "60000@5").await;
        seen.push(format!("validate only: {}", altered(client.call(&alter("", &[(KEY, 0, "61000")], true), 1).await)));
        seen.push(format!("topic before: {}", shown(client.call(&describe(2, &t, "file.delete.delay.ms"), 4).await)));
        seen.push(format!("cluster-wide: {}", altered(client.call(&alter("", &[(KEY, 0, "61000")], false), 1).await)));
        seen.push(format!("cluster described: {}", settled(client, &describe(4, "", KEY), shown, "=61000@3 [").await));
        seen.push(format!("topic after: {}", settled(client, &describe(2, &t, "file.delete.delay.ms"), shown, "=61000@3 [").await));
        seen.push(format!("this broker: {}", altered(client.call(&alter("1", &[(KEY, 0, "62000")], false), 1).await)));
        seen.push(format!("broker described: {}", settled(client, &describe(4, "1", KEY), shown, "=62000@2 [").await));
        seen.push(format!("topic after both: {}", settled(client, &describe(2, &t, "file.delete.delay.ms"), shown, "=62000@2 [").await));
        seen.push(format!("a bad value: {}", altered(client.call(&alter("1", &[(KEY, 0, "soon")], false), 1).await)));
        seen.push(format!("another broker: {}", altered(client.call(&alter("7", &[(KEY, 0, "63000")], false), 1).await)));
        for broker in ["1", ""] {
            seen.push(format!("delete for '{broker}': {}", altered(client.call(&alter(broker, &[(KEY, 1, "")], false), 1).await)));
        }
        seen.push(format!("topic at the end: {}", settled(client, &describe(2, &t, "file.delete.delay.ms"), shown, "60000@5\"]").await));
        seen
    })
    .await;
}
