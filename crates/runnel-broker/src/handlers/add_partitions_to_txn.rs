//! AddPartitionsToTxn: partitions join the producer's open transaction
//! (made durable before the answer), so their markers are written when it
//! ends. v4 carries several transactions and may only verify.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction};
use kafka_protocol::messages::add_partitions_to_txn_response::{AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use runnel_coordinator::txn::TxnPartition;

use crate::error::{txn_error, KafkaError};
use crate::request::RequestContext;
use crate::txns;

/// From this version a fenced producer is told PRODUCER_FENCED.
const FENCED_FROM_VERSION: i16 = 2;

pub async fn handle(ctx: &RequestContext<'_>, request: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse {
    if ctx.api_version < 4 {
        let transaction = AddPartitionsToTxnTransaction::default()
            .with_transactional_id(request.v3_and_below_transactional_id)
            .with_producer_id(request.v3_and_below_producer_id)
            .with_producer_epoch(request.v3_and_below_producer_epoch)
            .with_topics(request.v3_and_below_topics);
        let result = add(ctx, transaction).await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(result.topic_results);
    }
    let mut results = Vec::with_capacity(request.transactions.len());
    for transaction in request.transactions {
        results.push(add(ctx, transaction).await);
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

async fn add(ctx: &RequestContext<'_>, transaction: AddPartitionsToTxnTransaction) -> AddPartitionsToTxnResult {
    let transactional_id = transaction.transactional_id.0.to_string();
    let producer_id = transaction.producer_id.0;
    let epoch = transaction.producer_epoch;
    let partitions: Vec<TxnPartition> = transaction.topics.iter().flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p))).collect();
    let unknown = |(topic, index): &TxnPartition| ctx.state.topic(topic).and_then(|t| t.partition(*index)).is_none();
    let outcome: Result<(), ResponseError> = if partitions.iter().any(unknown) {
        // As Apache Kafka: the unknown partitions are named, the rest not
        // attempted.
        let codes = |p: &TxnPartition| if unknown(p) { ResponseError::UnknownTopicOrPartition } else { ResponseError::OperationNotAttempted }.code();
        return result(transaction, codes);
    } else if transaction.verify_only {
        partitions
            .iter()
            .try_for_each(|p| ctx.state.txns.with(|c, _| c.verify_partition(&transactional_id, producer_id, epoch, p)))
            .map_err(|e| txn_error(e, ctx.api_version, FENCED_FROM_VERSION))
    } else {
        match ctx.state.txns.with(|c, now| c.add_partitions(now, &transactional_id, producer_id, epoch, &partitions)) {
            Ok(None) => Ok(()),
            Ok(Some(proposal)) => txns::persist(ctx.state, proposal).await.map_err(|e| KafkaError::from(&e).code),
            Err(e) => Err(txn_error(e, ctx.api_version, FENCED_FROM_VERSION)),
        }
    };
    let code = outcome.err().map_or(0, |e| e.code());
    result(transaction, |_| code)
}

fn result(transaction: AddPartitionsToTxnTransaction, code: impl Fn(&TxnPartition) -> i16) -> AddPartitionsToTxnResult {
    let topic_results = transaction
        .topics
        .into_iter()
        .map(|AddPartitionsToTxnTopic { name, partitions, .. }| {
            let results = partitions
                .into_iter()
                .map(|p| {
                    let error = code(&(name.0.to_string(), p));
                    AddPartitionsToTxnPartitionResult::default().with_partition_index(p).with_partition_error_code(error)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default().with_name(name).with_results_by_partition(results)
        })
        .collect();
    AddPartitionsToTxnResult::default().with_transactional_id(transaction.transactional_id).with_topic_results(topic_results)
}
