//! EndTxn: the commit or abort decision is made durable, then markers are
//! written to every partition of the transaction before the answer, so a
//! producer that saw its commit succeed can read its own records at once.
//! If writing markers fails, the decision stands and the coordinator's
//! timer finishes them.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};
use runnel_coordinator::txn::EndOutcome;

use crate::error::{txn_error, KafkaError};
use crate::request::RequestContext;
use crate::txns;

/// From this version a fenced producer is told PRODUCER_FENCED.
const FENCED_FROM_VERSION: i16 = 2;

pub async fn handle(ctx: &RequestContext<'_>, request: EndTxnRequest) -> EndTxnResponse {
    let transactional_id = request.transactional_id.0.to_string();
    let outcome = ctx.state.txns.with(|c, now| c.end_transaction(now, &transactional_id, request.producer_id.0, request.producer_epoch, request.committed));
    let code = match outcome {
        Ok(EndOutcome::AlreadyDone) => 0,
        Ok(EndOutcome::Prepare(proposal)) => match txns::persist(ctx.state, proposal).await {
            Ok(()) => {
                let _ = txns::finish(ctx.state, &transactional_id).await;
                0
            }
            Err(e) => KafkaError::from(&e).code(),
        },
        Err(e) => txn_error(e, ctx.api_version, FENCED_FROM_VERSION).code(),
    };
    EndTxnResponse::default().with_error_code(code)
}
