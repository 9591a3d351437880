//! Metadata: brokers (as seen through the client's listener), topics and
//! partition leadership; auto-creates requested topics.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};

use super::{operations, str_bytes, topic_name, AUTHORIZED_OPERATIONS_OMITTED};
use crate::error::KafkaError;
use crate::request::RequestContext;
use crate::state::{validate_topic_name, Topic, TopicError};

pub fn handle(ctx: &RequestContext<'_>, request: MetadataRequest) -> MetadataResponse {
    let state = ctx.state;
    let node = BrokerId(state.node_id);
    let broker =
        MetadataResponseBroker::default().with_node_id(node).with_host(str_bytes(ctx.listener.advertised_host.clone())).with_port(ctx.listener.advertised_port);
    // v0 has no null: an empty list means every topic.
    let requested = match request.topics {
        Some(topics) if !(ctx.api_version == 0 && topics.is_empty()) => Some(topics),
        _ => None,
    };
    let allow_auto_create = ctx.api_version < 4 || request.allow_auto_topic_creation;
    let topic_operations = operations::if_requested(ctx.api_version >= 8 && request.include_topic_authorized_operations, operations::TOPIC);
    let cluster_operations =
        operations::if_requested((8..=10).contains(&ctx.api_version) && request.include_cluster_authorized_operations, operations::CLUSTER);
    let topics = match requested {
        None => state.topics().iter().map(|t| describe(t, node, ctx.api_version, topic_operations)).collect(),
        Some(requested) => requested
            .into_iter()
            .map(|wanted| match (wanted.name, wanted.topic_id) {
                (Some(name), _) => {
                    let name = name.0.to_string();
                    // As Apache Kafka: an invalid name is refused as such,
                    // whether or not the request may create topics.
                    let found = validate_topic_name(&name).and_then(|()| {
                        if allow_auto_create {
                            state.get_or_auto_create(&name)
                        } else {
                            state.topic(&name).ok_or(TopicError::UnknownTopic(name.clone()))
                        }
                    });
                    match found {
                        Ok(topic) => describe(&topic, node, ctx.api_version, topic_operations),
                        Err(e) => MetadataResponseTopic::default()
                            .with_name(Some(topic_name(name)))
                            .with_error_code(KafkaError::from(&e).code())
                            .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED),
                    }
                }
                (None, id) => match state.topic_by_id(id) {
                    Some(topic) => describe(&topic, node, ctx.api_version, topic_operations),
                    None => MetadataResponseTopic::default()
                        .with_topic_id(id)
                        .with_error_code(ResponseError::UnknownTopicId.code())
                        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED),
                },
            })
            .collect(),
    };
    MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_cluster_id((ctx.api_version >= 2).then(|| str_bytes(state.cluster_id.clone())))
        .with_controller_id(if ctx.api_version >= 1 { node } else { BrokerId(-1) })
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_operations)
}

fn describe(topic: &Topic, node: BrokerId, version: i16, authorized_operations: i32) -> MetadataResponseTopic {
    let partitions = topic
        .partitions()
        .iter()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p.index)
                .with_leader_id(node)
                .with_leader_epoch(if version >= 7 { 0 } else { -1 })
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(topic.name.clone())))
        .with_topic_id(if version >= 10 { topic.id } else { uuid::Uuid::nil() })
        .with_is_internal(version >= 1 && topic.is_internal())
        .with_partitions(partitions)
        .with_topic_authorized_operations(authorized_operations)
}
