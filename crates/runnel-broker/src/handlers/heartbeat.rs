//! Heartbeat: keeps a member alive and tells it when to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::non_empty;
use crate::error::group_code;
use crate::request::RequestContext;

pub fn handle(ctx: &RequestContext<'_>, request: HeartbeatRequest) -> HeartbeatResponse {
    let heartbeat = runnel_coordinator::HeartbeatRequest {
        group_id: request.group_id.0.to_string(),
        generation_id: request.generation_id,
        member_id: request.member_id.to_string(),
        group_instance_id: non_empty(request.group_instance_id.as_ref()),
    };
    let result = ctx.state.groups.with(|c, now| c.heartbeat(now, &heartbeat));
    HeartbeatResponse::default().with_error_code(group_code(result.err()))
}
