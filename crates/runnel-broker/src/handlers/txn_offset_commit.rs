//! TxnOffsetCommit: a transactional producer commits a consumer group's
//! offsets inside its transaction. They are stored in `__consumer_offsets`
//! as part of the transaction and take effect only when its COMMIT marker
//! is written (exactly-once consume-transform-produce).

use kafka_protocol::messages::txn_offset_commit_response::{TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::add_offsets_to_txn::OFFSETS_PARTITION;
use super::non_empty;
use super::offset_commit::{commit_results, partition_commits, store};
use crate::error::{group_code, txn_error};
use crate::groups::OFFSETS_TOPIC;
use crate::request::RequestContext;

/// From this version a fenced producer is told PRODUCER_FENCED.
const FENCED_FROM_VERSION: i16 = 3;

pub async fn handle(ctx: &RequestContext<'_>, request: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    let transactional_id = request.transactional_id.0.to_string();
    let (producer_id, epoch) = (request.producer_id.0, request.producer_epoch);
    let offsets_partition = (OFFSETS_TOPIC.to_string(), OFFSETS_PARTITION);
    let instance = non_empty(request.group_instance_id.as_ref());
    let member_id = request.member_id.to_string();
    // The transaction must hold the offsets partition (AddOffsetsToTxn),
    // and the producer must still be a member of the group it commits for.
    let refused = ctx
        .state
        .txns
        .with(|c, _| c.verify_partition(&transactional_id, producer_id, epoch, &offsets_partition))
        .err()
        .map(|e| txn_error(e, ctx.api_version, FENCED_FROM_VERSION).code())
        .or_else(|| {
            let valid = ctx.state.groups.with(|c, now| c.validate_commit(now, &group_id, request.generation_id, &member_id, instance.as_deref()));
            valid.err().map(|e| group_code(Some(e)))
        });
    let commits = partition_commits!(request.topics, ctx.api_version, 2);
    let (codes, stored) = store(ctx, &group_id, refused, commits, Some((producer_id, epoch))).await;
    if !stored.is_empty() {
        ctx.state.groups.with(|c, _| c.stage_txn_offsets(producer_id, &group_id, stored));
    }
    let topics = commit_results!(TxnOffsetCommitResponseTopic, TxnOffsetCommitResponsePartition, request.topics, codes);
    TxnOffsetCommitResponse::default().with_topics(topics)
}
