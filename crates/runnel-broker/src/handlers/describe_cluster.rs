//! DescribeCluster: this broker, as seen through the client's listener.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{operations, str_bytes, AUTHORIZED_OPERATIONS_OMITTED};
use crate::request::RequestContext;

/// `endpoint_type` of brokers; 2 asks for controllers (KIP-919), which a
/// client reaches through a controller's own listener, not a broker's.
const BROKER_ENDPOINTS: i8 = 1;

/// MISMATCHED_ENDPOINT_TYPE (KIP-919), newer than kafka-protocol's table.
const MISMATCHED_ENDPOINT_TYPE: ResponseError = ResponseError::Unknown(114);

pub fn handle(ctx: &RequestContext<'_>, request: DescribeClusterRequest) -> DescribeClusterResponse {
    let node = BrokerId(ctx.state.node_id);
    if request.endpoint_type != BROKER_ENDPOINTS {
        return DescribeClusterResponse::default()
            .with_error_code(MISMATCHED_ENDPOINT_TYPE.code())
            .with_error_message(Some(str_bytes(format!("this is a broker listener; endpoint type {} is not served here", request.endpoint_type))))
            .with_endpoint_type(BROKER_ENDPOINTS)
            .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
    }
    let broker = DescribeClusterBroker::default()
        .with_broker_id(node)
        .with_host(str_bytes(ctx.listener.advertised_host.clone()))
        .with_port(ctx.listener.advertised_port);
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(ctx.state.cluster_id.clone()))
        .with_controller_id(node)
        .with_endpoint_type(BROKER_ENDPOINTS)
        .with_brokers(vec![broker])
        .with_cluster_authorized_operations(operations::if_requested(request.include_cluster_authorized_operations, operations::CLUSTER))
}
