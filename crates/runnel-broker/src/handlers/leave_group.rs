//! LeaveGroup, single (v0–2) or batched (v3+).

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use runnel_coordinator::LeaveMember;

use super::{non_empty, str_bytes};
use crate::error::group_code;
use crate::request::RequestContext;

pub fn handle(ctx: &RequestContext<'_>, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let group_id = request.group_id.0.to_string();
    let leaving: Vec<LeaveMember> = if ctx.api_version >= 3 {
        request.members.iter().map(|m| LeaveMember { member_id: m.member_id.to_string(), group_instance_id: non_empty(m.group_instance_id.as_ref()) }).collect()
    } else {
        vec![LeaveMember { member_id: request.member_id.to_string(), group_instance_id: None }]
    };
    if let Err(e) = ctx.state.groups.with(|c, _| c.validate_group_id(&group_id)) {
        return LeaveGroupResponse::default().with_error_code(group_code(Some(e)));
    }
    let (results, effects) = ctx.state.groups.with(|c, now| c.leave(now, &group_id, &leaving));
    ctx.state.groups.deliver(effects);
    if ctx.api_version < 3 {
        return LeaveGroupResponse::default().with_error_code(group_code(results[0].err()));
    }
    let members = leaving
        .into_iter()
        .zip(results)
        .map(|(m, result)| {
            MemberResponse::default()
                .with_member_id(str_bytes(m.member_id))
                .with_group_instance_id(m.group_instance_id.map(str_bytes))
                .with_error_code(group_code(result.err()))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
