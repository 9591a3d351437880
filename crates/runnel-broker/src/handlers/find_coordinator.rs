//! FindCoordinator: this broker coordinates every group and every
//! transactional id.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::request::RequestContext;

const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

pub fn handle(ctx: &RequestContext<'_>, request: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let node = BrokerId(ctx.state.node_id);
    let host = str_bytes(ctx.listener.advertised_host.clone());
    let port = ctx.listener.advertised_port;
    // As Apache Kafka: an unknown key type is an invalid request.
    let error = if request.key_type != GROUP_KEY && request.key_type != TRANSACTION_KEY { Some(ResponseError::InvalidRequest) } else { None };
    if ctx.api_version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| match error {
                Some(e) => Coordinator::default().with_key(key).with_node_id(BrokerId(-1)).with_port(-1).with_error_code(e.code()),
                None => Coordinator::default().with_key(key).with_node_id(node).with_host(host.clone()).with_port(port),
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    match error {
        Some(e) => FindCoordinatorResponse::default().with_error_code(e.code()).with_node_id(BrokerId(-1)).with_port(-1),
        // Apache Kafka names the absent error "NONE" in v1-v3 answers.
        None => {
            FindCoordinatorResponse::default().with_node_id(node).with_host(host).with_port(port).with_error_message(Some(StrBytes::from_static_str("NONE")))
        }
    }
}
