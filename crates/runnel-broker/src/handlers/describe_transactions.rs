//! DescribeTransactions: what the coordinator knows of each transactional
//! id (`kafka-transactions.sh describe`).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId};

use super::{str_bytes, topic_name};
use crate::request::RequestContext;

pub fn handle(ctx: &RequestContext<'_>, request: DescribeTransactionsRequest) -> DescribeTransactionsResponse {
    let states = request
        .transactional_ids
        .into_iter()
        .map(|id| {
            let found = ctx.state.txns.with(|c, _| c.get(&id.0).cloned());
            let state = TransactionState::default().with_transactional_id(id);
            let Some(metadata) = found else {
                return state.with_error_code(ResponseError::TransactionalIdNotFound.code());
            };
            let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for (topic, partition) in &metadata.partitions {
                topics.entry(topic.clone()).or_default().push(*partition);
            }
            state
                .with_transaction_state(str_bytes(metadata.state.as_str()))
                .with_transaction_timeout_ms(metadata.timeout_ms)
                .with_transaction_start_time_ms(metadata.start_ms)
                .with_producer_id(ProducerId(metadata.producer_id))
                .with_producer_epoch(metadata.producer_epoch)
                .with_topics(
                    topics.into_iter().map(|(topic, partitions)| TopicData::default().with_topic(topic_name(topic)).with_partitions(partitions)).collect(),
                )
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
