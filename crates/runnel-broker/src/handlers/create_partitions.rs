//! CreatePartitions: grow a topic.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use kafka_protocol::error::ResponseError;

use super::{repeated, str_bytes};
use crate::error::KafkaError;
use crate::request::RequestContext;

pub fn handle(ctx: &RequestContext<'_>, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let twice = repeated(request.topics.iter().map(|t| t.name.clone()));
    let refused: Vec<CreatePartitionsTopicResult> = twice
        .iter()
        .map(|name| {
            CreatePartitionsTopicResult::default()
                .with_name(name.clone())
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(str_bytes(format!("topic `{}` is named more than once in this request", name.as_str()))))
        })
        .collect();
    let results = request
        .topics
        .into_iter()
        .filter(|t| !twice.contains(&t.name))
        .map(|t| {
            let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            match ctx.state.create_partitions(&t.name.0, t.count, request.validate_only) {
                Ok(()) => result,
                Err(e) => {
                    let error = KafkaError::from(&e);
                    result.with_error_code(error.code()).with_error_message(error.message.map(str_bytes))
                }
            }
        })
        .chain(refused)
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
