//! DeleteTopics, by name or (v6+) by topic id.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};

use super::{repeated, str_bytes, topic_name};
use crate::error::KafkaError;
use crate::request::RequestContext;

pub fn handle(ctx: &RequestContext<'_>, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let mut targets: Vec<(Option<String>, uuid::Uuid)> = request.topic_names.iter().map(|n| (Some(n.0.to_string()), uuid::Uuid::nil())).collect();
    targets.extend(request.topics.iter().map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)));
    let twice = repeated(targets.iter().cloned());
    let refused: Vec<DeletableTopicResult> = twice
        .iter()
        .map(|(name, id)| {
            DeletableTopicResult::default()
                .with_name(name.clone().map(topic_name))
                .with_topic_id(*id)
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(str_bytes("the topic is named more than once in this request")).filter(|_| ctx.api_version >= 5))
        })
        .collect();
    let responses = targets
        .into_iter()
        .filter(|target| !twice.contains(target))
        .map(|(name, id)| {
            let version = ctx.api_version;
            let result = DeletableTopicResult::default().with_topic_id(id);
            if name.is_some() && !id.is_nil() {
                return result
                    .with_name(name.map(topic_name))
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes("a topic is named by its name or its id, not both")));
            }
            let name = name.or_else(|| ctx.state.topic_by_id(id).map(|t| t.name.clone()));
            let Some(name) = name else {
                // No name is known for an unknown id: null, as Kafka answers.
                return result.with_name(None).with_error_code(ResponseError::UnknownTopicId.code());
            };
            let result = result.with_name(Some(topic_name(name.clone())));
            match ctx.state.delete_topic(&name) {
                Ok(topic) if version >= 6 => result.with_topic_id(topic.id),
                Ok(_) => result,
                Err(e) => {
                    let error = KafkaError::from(&e);
                    result.with_error_code(error.code()).with_error_message(error.message.filter(|_| version >= 5).map(str_bytes))
                }
            }
        })
        .chain(refused)
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
