//! InitProducerId. An idempotent producer gets a fresh id, or (KIP-360)
//! the same id with a bumped epoch. A transactional producer gets its
//! transactional id's producer with a bumped epoch, which fences any
//! older instance; a transaction that instance left open is aborted first.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use runnel_coordinator::txn::InitOutcome;

use crate::error::{txn_error, KafkaError};
use crate::request::RequestContext;
use crate::txns;

/// From this version a fenced producer is told PRODUCER_FENCED.
const FENCED_FROM_VERSION: i16 = 4;

pub async fn handle(ctx: &RequestContext<'_>, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    let existing = request.producer_id.0;
    // As Apache Kafka: no transactional id means an idempotent producer,
    // and an empty one is an invalid request.
    let Some(transactional_id) = request.transactional_id.as_ref().map(|id| id.0.to_string()) else {
        if existing >= 0 && request.producer_epoch >= 0 && request.producer_epoch < i16::MAX - 1 {
            return response.with_producer_id(ProducerId(existing)).with_producer_epoch(request.producer_epoch + 1);
        }
        return match ctx.state.allocate_producer_id() {
            Ok(id) => response.with_producer_id(ProducerId(id)).with_producer_epoch(0),
            Err(e) => response.with_error_code(KafkaError::from(&e).code()),
        };
    };
    let expected = (existing >= 0).then_some((existing, request.producer_epoch));
    // The first attempt may find an open transaction to abort; once it is
    // aborted the second succeeds, sparing the client a retry.
    for _ in 0..2 {
        let mut allocation_failed = None;
        let outcome = ctx.state.txns.with(|c, now| {
            c.init_producer_id(now, &transactional_id, request.transaction_timeout_ms, expected, || {
                ctx.state.allocate_producer_id().unwrap_or_else(|e| {
                    allocation_failed = Some(e);
                    -1
                })
            })
        });
        if let Some(e) = allocation_failed {
            ctx.state.txns.with(|c, _| c.complete(&transactional_id, false));
            return response.with_error_code(KafkaError::from(&e).code());
        }
        match outcome {
            Err(e) => return response.with_error_code(txn_error(e, ctx.api_version, FENCED_FROM_VERSION).code()),
            Ok(InitOutcome::Persist(proposal)) => {
                let granted = proposal.metadata.as_ref().map(|m| (m.producer_id, m.producer_epoch));
                return match (txns::persist(ctx.state, proposal).await, granted) {
                    (Ok(()), Some((id, epoch))) => response.with_producer_id(ProducerId(id)).with_producer_epoch(epoch),
                    (Err(e), _) => response.with_error_code(KafkaError::from(&e).code()),
                    (Ok(()), None) => response.with_error_code(ResponseError::UnknownServerError.code()),
                };
            }
            Ok(InitOutcome::FenceAndAbort(proposal)) => {
                tracing::info!(%transactional_id, "a new producer instance fenced the old one; aborting its open transaction");
                if let Err(e) = txns::persist(ctx.state, proposal).await {
                    return response.with_error_code(KafkaError::from(&e).code());
                }
                if txns::finish(ctx.state, &transactional_id).await.is_err() {
                    break;
                }
            }
        }
    }
    response.with_error_code(ResponseError::ConcurrentTransactions.code())
}
