//! CreateTopics, with `validate_only` and configs.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::{repeated, str_bytes};
use crate::error::KafkaError;
use crate::request::RequestContext;
use crate::topic_config::{self, TOPIC_CONFIGS};

pub fn handle(ctx: &RequestContext<'_>, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let twice = repeated(request.topics.iter().map(|t| t.name.clone()));
    let refused = twice.iter().map(|name| {
        CreatableTopicResult::default()
            .with_name(name.clone())
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(str_bytes(format!("topic `{}` is named more than once in this request", name.as_str()))).filter(|_| ctx.api_version >= 1))
    });
    let created: Vec<CreatableTopicResult> =
        request.topics.into_iter().filter(|topic| !twice.contains(&topic.name)).map(|topic| create(ctx, topic, request.validate_only)).collect();
    CreateTopicsResponse::default().with_topics(created.into_iter().chain(refused).collect())
}

fn create(ctx: &RequestContext<'_>, topic: CreatableTopic, validate_only: bool) -> CreatableTopicResult {
    let name = topic.name.0.to_string();
    let version = ctx.api_version;
    // Success carries no message (null, as Apache Kafka sends, not "").
    let result = CreatableTopicResult::default().with_name(topic.name.clone()).with_error_message(None);
    let fail = |error: KafkaError| result.clone().with_error_code(error.code()).with_error_message(error.message.filter(|_| version >= 1).map(str_bytes));
    let mut configs = BTreeMap::new();
    for config in &topic.configs {
        let Some(value) = &config.value else {
            return fail(KafkaError::new(ResponseError::InvalidConfig, format!("config `{}` has a null value", config.name.as_str())));
        };
        configs.insert(config.name.to_string(), value.to_string());
    }
    let (mut partitions, mut replication_factor) = (topic.num_partitions, topic.replication_factor);
    if !topic.assignments.is_empty() {
        if partitions != -1 || replication_factor != -1 {
            return fail(KafkaError::new(ResponseError::InvalidRequest, "give either replica assignments or partitions and replication factor, not both"));
        }
        let node = ctx.state.node_id;
        if topic.assignments.iter().any(|a| a.broker_ids.iter().any(|b| b.0 != node) || a.broker_ids.len() != 1) {
            return fail(KafkaError::new(ResponseError::InvalidReplicaAssignment, format!("every partition must be assigned to broker {node} alone")));
        }
        partitions = topic.assignments.len() as i32;
        replication_factor = 1;
    }
    let outcome = if validate_only {
        ctx.state.check_new_topic(&name, partitions, replication_factor, &configs).map(|_| None)
    } else {
        ctx.state.create_topic(&name, partitions, replication_factor, configs.clone()).map(Some)
    };
    match outcome {
        Err(e) => fail(KafkaError::from(&e)),
        Ok(created) => {
            let partitions = if partitions == -1 { ctx.state.config.num_partitions } else { partitions };
            let broker = &ctx.state.topic_defaults();
            let described = TOPIC_CONFIGS
                .iter()
                .filter(|def| def.listed() || configs.contains_key(def.name))
                .map(|def| {
                    let (value, source) = topic_config::resolve(def, &configs, broker);
                    CreatableTopicConfigs::default().with_name(str_bytes(def.name)).with_value(Some(str_bytes(value))).with_config_source(source as i8)
                })
                .collect();
            if version < 5 {
                return result;
            }
            let result = result.with_num_partitions(partitions).with_replication_factor(1).with_configs(Some(described));
            match created {
                Some(topic) if version >= 7 => result.with_topic_id(topic.id),
                _ => result,
            }
        }
    }
}
