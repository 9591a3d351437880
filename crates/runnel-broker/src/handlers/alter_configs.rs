//! AlterConfigs: replace a topic's overrides, or a layer of runtime broker
//! configs, wholesale (the legacy API; IncrementalAlterConfigs patches
//! them).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};

use super::check_config_topic_name;
use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::incremental_alter_configs::broker_scope;
use super::str_bytes;
use crate::error::KafkaError;
use crate::request::RequestContext;

pub fn handle(ctx: &RequestContext<'_>, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let responses = request
        .resources
        .into_iter()
        .map(|resource| {
            let response =
                AlterConfigsResourceResponse::default().with_resource_type(resource.resource_type).with_resource_name(resource.resource_name.clone());
            let changes: Vec<(String, Option<String>)> =
                resource.configs.iter().map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string()))).collect();
            let outcome = match resource.resource_type {
                RESOURCE_TOPIC => {
                    if let Err(e) = check_config_topic_name(resource.resource_name.as_str()) {
                        Err(e)
                    } else if let Some((name, _)) = changes.iter().find(|(_, v)| v.is_none()) {
                        Err(KafkaError::new(ResponseError::InvalidConfig, format!("config `{name}` has a null value")))
                    } else {
                        ctx.state.alter_topic_configs(resource.resource_name.as_str(), &changes, false, request.validate_only).map_err(|e| KafkaError::from(&e))
                    }
                }
                RESOURCE_BROKER => broker_scope(ctx, resource.resource_name.as_str()).and_then(|scope| {
                    let changes: Vec<(String, Option<String>)> = changes.into_iter().filter(|(_, value)| value.is_some()).collect();
                    ctx.state.alter_broker_configs(scope, &changes, false, request.validate_only).map_err(|e| KafkaError::from(&e))
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
    AlterConfigsResponse::default().with_responses(responses)
}
