//! DescribeConfigs for topics (with sources: topic, broker set at runtime
//! for this broker or cluster-wide, static broker, default) and for the
//! broker itself ("" lists the cluster-wide runtime values alone, as
//! Apache Kafka does).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use std::collections::BTreeMap;

use super::incremental_alter_configs::broker_scope;
use super::{check_config_topic_name, str_bytes};
use crate::broker_config::{DynamicConfig, Scope, GROUP_SETTINGS};
use crate::request::RequestContext;
use crate::topic_config::{self, BrokerDefaults, ConfigSource, ConfigType, TOPIC_CONFIGS};

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

struct Entry {
    name: String,
    value: String,
    source: ConfigSource,
    config_type: ConfigType,
    doc: &'static str,
    /// Lower-precedence values, most specific first.
    synonyms: Vec<(String, String, ConfigSource)>,
}

pub fn handle(ctx: &RequestContext<'_>, request: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let results = request.resources.into_iter().map(|resource| describe(ctx, resource, request.include_synonyms, request.include_documentation)).collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn describe(ctx: &RequestContext<'_>, resource: DescribeConfigsResource, synonyms: bool, docs: bool) -> DescribeConfigsResult {
    let version = ctx.api_version;
    let synonyms = synonyms && version >= 1;
    let docs = docs && version >= 3;
    let result = DescribeConfigsResult::default().with_resource_type(resource.resource_type).with_resource_name(resource.resource_name.clone());
    let entries = match resource.resource_type {
        RESOURCE_TOPIC => {
            let name = resource.resource_name.as_str();
            if let Err(e) = check_config_topic_name(name) {
                return result.with_error_code(e.code()).with_error_message(e.message.map(str_bytes));
            }
            match ctx.state.topic(name) {
                Some(topic) => topic_entries(&topic.overrides(), &ctx.state.topic_defaults()),
                None => {
                    return result
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        .with_error_message(Some(str_bytes(format!("topic `{name}` does not exist"))))
                }
            }
        }
        RESOURCE_BROKER => match broker_scope(ctx, resource.resource_name.as_str()) {
            Err(e) => return result.with_error_code(e.code()).with_error_message(e.message.map(str_bytes)),
            Ok(Scope::Broker) => broker_entries(ctx),
            Ok(Scope::Cluster) => cluster_entries(ctx),
        },
        other => {
            return result
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(str_bytes(format!("resource type {other} is not supported"))))
        }
    };
    // No keys, or an empty list of keys, asks for every config.
    let wanted = resource.configuration_keys.filter(|keys| !keys.is_empty()).map(|keys| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>());
    let configs = entries
        .into_iter()
        .filter(|e| wanted.as_ref().is_none_or(|w| w.contains(&e.name)))
        .map(|e| {
            let mut out = DescribeConfigsResourceResult::default().with_name(str_bytes(e.name)).with_value(Some(str_bytes(e.value)));
            out = match version {
                0 => out.with_is_default(e.source == ConfigSource::Default),
                1 | 2 => out.with_config_source(e.source as i8),
                _ => out.with_config_source(e.source as i8).with_config_type(e.config_type as i8),
            };
            if synonyms {
                out = out.with_synonyms(
                    e.synonyms
                        .into_iter()
                        .map(|(name, value, source)| {
                            DescribeConfigsSynonym::default().with_name(str_bytes(name)).with_value(Some(str_bytes(value))).with_source(source as i8)
                        })
                        .collect(),
                );
            }
            out.with_documentation(docs.then(|| str_bytes(e.doc)))
        })
        .collect();
    result.with_configs(configs)
}

fn topic_entries(topic: &BTreeMap<String, String>, broker: &BrokerDefaults) -> Vec<Entry> {
    TOPIC_CONFIGS
        .iter()
        .filter(|def| def.listed() || topic.contains_key(def.name))
        .map(|def| {
            let (value, source) = topic_config::resolve(def, topic, broker);
            Entry {
                name: def.name.to_string(),
                value: value.to_string(),
                source,
                config_type: def.config_type,
                doc: def.doc,
                synonyms: topic_config::synonyms(def, topic, broker),
            }
        })
        .collect()
}

/// This broker's configs: every topic default under its broker name, the
/// group settings, and the settings fixed at start-up.
fn broker_entries(ctx: &RequestContext<'_>) -> Vec<Entry> {
    let config = &ctx.state.config;
    let defaults = ctx.state.topic_defaults();
    let dynamic = ctx.state.dynamic_configs();
    let no_topic = BTreeMap::new();
    let mut entries: Vec<Entry> = TOPIC_CONFIGS
        .iter()
        .filter(|def| def.listed() && def.broker_name() != def.name)
        .map(|def| {
            let (value, source) = defaults.values(def.name).next().map_or((def.default.to_string(), ConfigSource::Default), |(v, s)| (v.clone(), s));
            Entry {
                name: def.broker_name().to_string(),
                value,
                source,
                config_type: def.config_type,
                doc: def.doc,
                synonyms: topic_config::synonyms(def, &no_topic, &defaults),
            }
        })
        .collect();
    let statics = [
        i64::from(config.group_initial_rebalance_delay_ms),
        i64::from(config.group_min_session_timeout_ms),
        i64::from(config.group_max_session_timeout_ms),
        config.offsets_retention_minutes,
    ];
    for (name, static_value) in GROUP_SETTINGS.into_iter().zip(statics) {
        let mut synonyms: Vec<(String, String, ConfigSource)> =
            [(Scope::Broker, ConfigSource::DynamicBroker), (Scope::Cluster, ConfigSource::DynamicDefaultBroker)]
                .into_iter()
                .filter_map(|(scope, source)| dynamic.layer(scope).get(name).map(|v| (name.to_string(), v.clone(), source)))
                .collect();
        synonyms.push((name.to_string(), static_value.to_string(), ConfigSource::StaticBroker));
        let (value, source) = (synonyms[0].1.clone(), synonyms[0].2);
        entries.push(Entry {
            name: name.to_string(),
            value,
            source,
            config_type: ConfigType::Int,
            doc: "a group coordinator setting; changes at runtime",
            synonyms,
        });
    }
    let fixed = [
        ("auto.create.topics.enable", config.auto_create_topics.to_string(), ConfigType::Boolean, "create topics on first use"),
        ("num.partitions", config.num_partitions.to_string(), ConfigType::Int, "partitions of auto-created topics"),
        ("socket.request.max.bytes", config.socket_request_max_bytes.to_string(), ConfigType::Int, "largest request accepted"),
        ("node.id", ctx.state.node_id.to_string(), ConfigType::Int, "this broker's id"),
        ("log.dirs", config.data_dir.display().to_string(), ConfigType::String, "where partition logs live"),
    ];
    for (name, value, config_type, doc) in fixed {
        entries.push(Entry {
            name: name.to_string(),
            value: value.clone(),
            source: ConfigSource::StaticBroker,
            config_type,
            doc,
            synonyms: vec![(name.to_string(), value, ConfigSource::StaticBroker)],
        });
    }
    entries
}

/// The cluster-wide values set at runtime (resource name "").
fn cluster_entries(ctx: &RequestContext<'_>) -> Vec<Entry> {
    ctx.state
        .dynamic_configs()
        .cluster
        .into_iter()
        .map(|(name, value)| {
            let (config_type, doc) = match DynamicConfig::find(&name) {
                Some(DynamicConfig::TopicDefault(def)) => (def.config_type, def.doc),
                _ => (ConfigType::Int, "a group coordinator setting; changes at runtime"),
            };
            let synonyms = vec![(name.clone(), value.clone(), ConfigSource::DynamicDefaultBroker)];
            Entry { name, value, source: ConfigSource::DynamicDefaultBroker, config_type, doc, synonyms }
        })
        .collect()
}
