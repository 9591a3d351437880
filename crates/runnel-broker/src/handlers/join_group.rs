//! JoinGroup: waits in the coordinator until the rebalance completes.

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use runnel_coordinator::JoinRequest;

use super::{non_empty, str_bytes};
use crate::error::group_code;
use crate::request::RequestContext;

pub async fn handle(ctx: &RequestContext<'_>, request: JoinGroupRequest) -> JoinGroupResponse {
    let version = ctx.api_version;
    let join = JoinRequest {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        group_instance_id: non_empty(request.group_instance_id.as_ref()),
        client_id: ctx.client_id.clone(),
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout; Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 { request.rebalance_timeout_ms } else { request.session_timeout_ms },
        protocol_type: request.protocol_type.to_string(),
        protocols: request.protocols.into_iter().map(|p| (p.name.to_string(), p.metadata)).collect(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    let response = ctx.state.groups.join(join).await;
    let members = response
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(str_bytes(m.member_id))
                .with_group_instance_id(if version >= 5 { m.group_instance_id.map(str_bytes) } else { None })
                .with_metadata(m.metadata)
        })
        .collect();
    let protocol_name = match (version >= 7, response.protocol_name) {
        (true, name) => name.map(str_bytes),
        (false, name) => Some(str_bytes(name.unwrap_or_default())),
    };
    JoinGroupResponse::default()
        .with_error_code(group_code(response.error))
        .with_generation_id(response.generation_id)
        .with_protocol_type(if version >= 7 { response.protocol_type.map(str_bytes) } else { None })
        .with_protocol_name(protocol_name)
        .with_leader(str_bytes(response.leader))
        .with_skip_assignment(version >= 9 && response.skip_assignment)
        .with_member_id(str_bytes(response.member_id))
        .with_members(members)
}
