//! DescribeCluster: this broker, as seen through the client's listener.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{str_bytes, AUTHORIZED_OPERATIONS_OMITTED};
use crate::request::RequestContext;

pub fn handle(ctx: &RequestContext<'_>, _request: DescribeClusterRequest) -> DescribeClusterResponse {
    let node = BrokerId(ctx.state.node_id);
    let broker = DescribeClusterBroker::default()
        .with_broker_id(node)
        .with_host(str_bytes(ctx.listener.advertised_host.clone()))
        .with_port(ctx.listener.advertised_port);
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(ctx.state.cluster_id.clone()))
        .with_controller_id(node)
        .with_endpoint_type(1)
        .with_brokers(vec![broker])
        .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}
