//! ListGroups, with the state filter of v4+.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use runnel_coordinator::GroupState;

use super::str_bytes;
use crate::request::RequestContext;

fn parse_state(name: &str) -> Option<GroupState> {
    [GroupState::Empty, GroupState::PreparingRebalance, GroupState::CompletingRebalance, GroupState::Stable, GroupState::Dead]
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(name))
}

pub fn handle(ctx: &RequestContext<'_>, request: ListGroupsRequest) -> ListGroupsResponse {
    let version = ctx.api_version;
    let wanted: Vec<String> = if version >= 4 { request.states_filter.iter().map(|s| s.to_string()).collect() } else { Vec::new() };
    let states: Vec<GroupState> = wanted.iter().filter_map(|s| parse_state(s)).collect();
    if !wanted.is_empty() && states.is_empty() {
        return ListGroupsResponse::default();
    }
    let groups = ctx
        .state
        .groups
        .with(|c, _| c.list(&states))
        .into_iter()
        .map(|g| {
            let listed = ListedGroup::default().with_group_id(GroupId(str_bytes(g.group_id))).with_protocol_type(str_bytes(g.protocol_type));
            if version >= 4 {
                listed.with_group_state(str_bytes(g.state.as_str()))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
