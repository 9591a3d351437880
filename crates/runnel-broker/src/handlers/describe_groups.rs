//! DescribeGroups: state, protocol and members with their (opaque)
//! metadata and assignments. Unknown groups are reported as Dead.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::{operations, str_bytes, AUTHORIZED_OPERATIONS_OMITTED};
use crate::error::group_code;
use crate::request::RequestContext;

pub fn handle(ctx: &RequestContext<'_>, request: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let version = ctx.api_version;
    let authorized_operations = operations::if_requested(version >= 3 && request.include_authorized_operations, operations::GROUP);
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            let described = DescribedGroup::default().with_group_id(group_id.clone()).with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
            if let Err(e) = ctx.state.groups.with(|c, _| c.validate_group_id(&group_id.0)) {
                return described.with_error_code(group_code(Some(e)));
            }
            let group = ctx.state.groups.with(|c, _| c.describe(&group_id.0));
            let members = group
                .members
                .into_iter()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_group_instance_id(if version >= 4 { m.group_instance_id.map(str_bytes) } else { None })
                        .with_client_id(str_bytes(m.client_id))
                        .with_client_host(str_bytes(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment)
                })
                .collect();
            described
                .with_group_state(str_bytes(group.state.as_str()))
                .with_protocol_type(str_bytes(group.protocol_type))
                .with_protocol_data(str_bytes(group.protocol_name))
                .with_members(members)
                .with_authorized_operations(authorized_operations)
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
