//! InitProducerId for idempotent producers: a fresh id, or (KIP-360) the
//! same id with a bumped epoch.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::error::KafkaError;
use crate::request::RequestContext;

pub fn handle(ctx: &RequestContext<'_>, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    if request.transactional_id.is_some() {
        tracing::warn!("transactional producers are not supported yet");
        return response.with_error_code(ResponseError::InvalidRequest.code());
    }
    let existing = request.producer_id.0;
    if existing >= 0 && request.producer_epoch >= 0 && request.producer_epoch < i16::MAX - 1 {
        return response.with_producer_id(ProducerId(existing)).with_producer_epoch(request.producer_epoch + 1);
    }
    match ctx.state.allocate_producer_id() {
        Ok(id) => response.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => response.with_error_code(KafkaError::from(&e).code()),
    }
}
