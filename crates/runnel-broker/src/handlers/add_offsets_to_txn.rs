//! AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the
//! transaction, so the offsets TxnOffsetCommit stores are decided by the
//! transaction's marker.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use crate::error::{txn_error, KafkaError};
use crate::groups::OFFSETS_TOPIC;
use crate::request::RequestContext;
use crate::txns;

/// From this version a fenced producer is told PRODUCER_FENCED.
const FENCED_FROM_VERSION: i16 = 2;

/// Every group's offsets live in the one partition of `__consumer_offsets`.
pub(crate) const OFFSETS_PARTITION: i32 = 0;

pub async fn handle(ctx: &RequestContext<'_>, request: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    let transactional_id = request.transactional_id.0.to_string();
    let partition = [(OFFSETS_TOPIC.to_string(), OFFSETS_PARTITION)];
    let added = ctx.state.txns.with(|c, now| c.add_partitions(now, &transactional_id, request.producer_id.0, request.producer_epoch, &partition));
    let code = match added {
        Ok(None) => 0,
        Ok(Some(proposal)) => txns::persist(ctx.state, proposal).await.err().map_or(0, |e| KafkaError::from(&e).code()),
        Err(e) => txn_error(e, ctx.api_version, FENCED_FROM_VERSION).code(),
    };
    AddOffsetsToTxnResponse::default().with_error_code(code)
}
