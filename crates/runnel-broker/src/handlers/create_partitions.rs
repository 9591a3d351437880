//! CreatePartitions: grow a topic.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::str_bytes;
use crate::error::KafkaError;
use crate::request::RequestContext;

pub fn handle(ctx: &RequestContext<'_>, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let results = request
        .topics
        .into_iter()
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
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
