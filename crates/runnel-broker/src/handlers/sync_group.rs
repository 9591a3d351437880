//! SyncGroup: the leader's assignments out to every member, byte for byte.

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use runnel_coordinator::SyncRequest;

use super::{non_empty, str_bytes};
use crate::error::group_code;
use crate::request::RequestContext;

pub async fn handle(ctx: &RequestContext<'_>, request: SyncGroupRequest) -> SyncGroupResponse {
    let version = ctx.api_version;
    let sync = SyncRequest {
        group_id: request.group_id.0.to_string(),
        generation_id: request.generation_id,
        member_id: request.member_id.to_string(),
        group_instance_id: non_empty(request.group_instance_id.as_ref()),
        protocol_type: request.protocol_type.map(|p| p.to_string()),
        protocol_name: request.protocol_name.map(|p| p.to_string()),
        assignments: request.assignments.into_iter().map(|a| (a.member_id.to_string(), a.assignment)).collect(),
    };
    let response = ctx.state.groups.sync(sync).await;
    let response_v5 = version >= 5;
    SyncGroupResponse::default()
        .with_error_code(group_code(response.error))
        .with_protocol_type(response.protocol_type.filter(|_| response_v5).map(str_bytes))
        .with_protocol_name(response.protocol_name.filter(|_| response_v5).map(str_bytes))
        .with_assignment(response.assignment)
}
