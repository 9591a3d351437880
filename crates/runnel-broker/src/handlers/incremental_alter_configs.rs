//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on a topic's
//! overrides, or on the broker configs that change at runtime.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::check_config_topic_name;
use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::str_bytes;
use crate::broker_config::{DynamicConfig, Scope};
use crate::error::KafkaError;
use crate::request::RequestContext;
use crate::topic_config::{self, ConfigType};

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

pub fn handle(ctx: &RequestContext<'_>, request: IncrementalAlterConfigsRequest) -> IncrementalAlterConfigsResponse {
    let responses = request
        .resources
        .into_iter()
        .map(|resource| {
            let response =
                AlterConfigsResourceResponse::default().with_resource_type(resource.resource_type).with_resource_name(resource.resource_name.clone());
            let outcome = match resource.resource_type {
                RESOURCE_TOPIC => check_config_topic_name(resource.resource_name.as_str())
                    .and_then(|()| changes(ctx, resource.resource_name.as_str(), &resource.configs))
                    .and_then(|changes| {
                        ctx.state.alter_topic_configs(resource.resource_name.as_str(), &changes, true, request.validate_only).map_err(|e| KafkaError::from(&e))
                    }),
                RESOURCE_BROKER => broker_scope(ctx, resource.resource_name.as_str()).and_then(|scope| {
                    let dynamic = ctx.state.dynamic_configs();
                    let current = |name: &str| match DynamicConfig::find(name) {
                        Some(DynamicConfig::TopicDefault(def)) => {
                            let value = dynamic.layer(scope).get(name).cloned().unwrap_or_else(|| def.default.to_string());
                            Some((value, def.config_type))
                        }
                        _ => None,
                    };
                    let changes = operations(&resource.configs, current)?;
                    ctx.state.alter_broker_configs(scope, &changes, true, request.validate_only).map_err(|e| KafkaError::from(&e))
                }),
                other => Err(KafkaError::new(ResponseError::InvalidRequest, format!("resource type {other} is not supported"))),
            };
            match outcome {
                // As Apache Kafka: success carries no message (null, not "").
                Ok(()) => response.with_error_message(None),
                Err(error) => response.with_error_code(error.code()).with_error_message(error.message.map(str_bytes)),
            }
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// Turns a topic's operations into set/delete changes against its
/// current values.
fn changes(
    ctx: &RequestContext<'_>,
    topic: &str,
    configs: &[kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
) -> Result<Vec<(String, Option<String>)>, KafkaError> {
    let overrides = ctx.state.topic(topic).map(|t| t.overrides()).unwrap_or_default();
    let defaults = ctx.state.topic_defaults();
    let current = |name: &str| topic_config::find(name).map(|def| (topic_config::resolve(def, &overrides, &defaults).0.to_string(), def.config_type));
    operations(configs, current)
}

/// The layer of broker configs a resource name addresses: "" is the
/// cluster-wide default, this broker's node id is this broker.
pub(crate) fn broker_scope(ctx: &RequestContext<'_>, name: &str) -> Result<Scope, KafkaError> {
    match name {
        "" => Ok(Scope::Cluster),
        id if id == ctx.state.node_id.to_string() => Ok(Scope::Broker),
        other => Err(KafkaError::new(ResponseError::InvalidRequest, format!("unknown broker `{other}`; this broker is {}", ctx.state.node_id))),
    }
}

/// Turns operations into set/delete changes; `current` gives a config's
/// value and type, for APPEND and SUBTRACT on lists.
fn operations(
    configs: &[kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
    current: impl Fn(&str) -> Option<(String, ConfigType)>,
) -> Result<Vec<(String, Option<String>)>, KafkaError> {
    configs
        .iter()
        .map(|c| {
            let name = c.name.to_string();
            let value = c.value.as_ref().map(|v| v.to_string());
            match c.config_operation {
                SET => Ok((name, Some(value.unwrap_or_default()))),
                DELETE => Ok((name, None)),
                APPEND | SUBTRACT => {
                    let (existing, config_type) =
                        current(&name).ok_or_else(|| KafkaError::new(ResponseError::InvalidConfig, format!("unknown config `{name}`")))?;
                    if config_type != ConfigType::List {
                        return Err(KafkaError::new(ResponseError::InvalidConfig, format!("`{name}` is not a list; use SET")));
                    }
                    let mut items: Vec<String> = existing.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
                    for item in value.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        if c.config_operation == APPEND {
                            if !items.iter().any(|i| i == item) {
                                items.push(item.to_string());
                            }
                        } else {
                            items.retain(|i| i != item);
                        }
                    }
                    Ok((name, Some(items.join(","))))
                }
                other => Err(KafkaError::new(ResponseError::InvalidRequest, format!("unknown config operation {other}"))),
            }
        })
        .collect()
}
