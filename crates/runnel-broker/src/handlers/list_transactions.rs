//! ListTransactions: transactional ids, filtered by state, producer id
//! and (v1) by how long their transaction has been running.

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId};
use runnel_coordinator::txn::TxnState;

use super::str_bytes;
use crate::request::RequestContext;

pub fn handle(ctx: &RequestContext<'_>, request: ListTransactionsRequest) -> ListTransactionsResponse {
    let (known, unknown): (Vec<_>, Vec<_>) = request.state_filters.into_iter().partition(|f| TxnState::ALL.iter().any(|s| s.as_str() == f.as_str()));
    let producer_ids: Vec<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    let min_duration = if ctx.api_version >= 1 { request.duration_filter } else { -1 };
    let mut listed: Vec<TransactionState> = ctx.state.txns.with(|c, now| {
        c.all()
            .filter(|(_, m)| known.is_empty() || known.iter().any(|f| f.as_str() == m.state.as_str()))
            .filter(|(_, m)| producer_ids.is_empty() || producer_ids.contains(&m.producer_id))
            .filter(|(_, m)| min_duration < 0 || (m.state == TxnState::Ongoing && now - m.start_ms > min_duration))
            .map(|(id, m)| {
                TransactionState::default()
                    .with_transactional_id(TransactionalId(str_bytes(id)))
                    .with_producer_id(ProducerId(m.producer_id))
                    .with_transaction_state(str_bytes(m.state.as_str()))
            })
            .collect()
    });
    listed.sort_by(|a, b| a.transactional_id.0.cmp(&b.transactional_id.0));
    ListTransactionsResponse::default().with_unknown_state_filters(unknown).with_transaction_states(listed)
}
