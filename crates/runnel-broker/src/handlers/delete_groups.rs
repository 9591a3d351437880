//! DeleteGroups: empty groups only; their offsets are tombstoned.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::error::{group_code, KafkaError};
use crate::groups::OFFSETS_TOPIC;
use crate::request::RequestContext;

pub async fn handle(ctx: &RequestContext<'_>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        let result = DeletableGroupResult::default().with_group_id(group_id.clone());
        match ctx.state.groups.with(|c, _| c.delete_group(&group_id.0)) {
            Err(e) => results.push(result.with_error_code(group_code(Some(e)))),
            Ok(keys) => {
                let tombstones = keys.iter().map(|k| (k.encode(), None)).collect();
                let code = match ctx.state.append_internal(OFFSETS_TOPIC, tombstones).await {
                    Ok(()) => 0,
                    Err(e) => KafkaError::from(&e).code(),
                };
                results.push(result.with_error_code(code));
            }
        }
    }
    DeleteGroupsResponse::default().with_results(results)
}
