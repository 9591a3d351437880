//! The transaction APIs, scripted against both brokers: a transaction from
//! InitProducerId to its markers with every description along the way,
//! offsets committed inside transactions, fencing by epoch, and the
//! requests a coordinator refuses.
//!
//! Producer ids are each broker's own and are reported relative to the
//! one InitProducerId granted; start times only as present or absent.
//! Apache Kafka writes markers after answering EndTxn, so steps that
//! follow one retry while it answers CONCURRENT_TRANSACTIONS or still
//! describes the transaction as preparing, as clients do.

use std::time::{Duration, Instant};

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::txn_offset_commit_request::{TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic};
use runnel_testkit::RawClient;

use super::records::fetch_one;
use super::*;

/// Errors a client retries: the coordinator is getting ready, or a
/// transaction's markers are still being written (CONCURRENT_TRANSACTIONS,
/// UNSTABLE_OFFSET_COMMIT).
const RETRIED: [i16; 5] = [14, 15, 16, 51, 88];

fn txn_id(name: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(name.to_string()))
}

/// Waits until the broker's transaction coordinator answers for `id`
/// (Apache Kafka creates `__transaction_state` on first use).
async fn await_txn_coordinator(client: &mut RawClient, id: &str) {
    let request = FindCoordinatorRequest::default().with_key_type(1).with_key(StrBytes::from_string(id.to_string()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.call(&request, 3).await.error_code != 0 {
        assert!(Instant::now() < deadline, "no transaction coordinator");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `request` until its error (read by `error`) is not one a client
/// retries.
async fn retrying<R: Request>(client: &mut RawClient, request: &R, version: i16, error: impl Fn(&R::Response) -> i16) -> R::Response {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = client.call(request, version).await;
        let code = error(&response);
        if !RETRIED.contains(&code) || Instant::now() > deadline {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn init(id: &str, timeout_ms: i32) -> InitProducerIdRequest {
    InitProducerIdRequest::default().with_transactional_id(Some(txn_id(id))).with_transaction_timeout_ms(timeout_ms)
}

fn add_partitions(id: &str, pid: i64, epoch: i16, topics: &[(&str, &[i32])]) -> AddPartitionsToTxnRequest {
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txn_id(id))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(
            topics.iter().map(|(t, ps)| AddPartitionsToTxnTopic::default().with_name(topic_name(t)).with_partitions(ps.to_vec())).collect(),
        )
}

fn added(response: &AddPartitionsToTxnResponse) -> String {
    let mut results: Vec<String> = response
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition.iter().map(move |p| format!("{}/{}={}", t.name.0.rsplit('-').next().unwrap(), p.partition_index, p.partition_error_code))
        })
        .collect();
    results.sort();
    results.join(" ")
}

fn end_txn(id: &str, pid: i64, epoch: i16, commit: bool) -> EndTxnRequest {
    EndTxnRequest::default().with_transactional_id(txn_id(id)).with_producer_id(ProducerId(pid)).with_producer_epoch(epoch).with_committed(commit)
}

fn transactional_produce(topic: &str, partition: i32, id: Option<&str>, pid: i64, epoch: i16, sequence: i32) -> ProduceRequest {
    produce(topic, partition, testing::transactional_batch(t0(), &[b"in", b"txn"], pid, epoch, sequence), -1).with_transactional_id(id.map(txn_id))
}

fn produced(response: &ProduceResponse) -> String {
    let answer = &response.responses[0].partition_responses[0];
    format!("error {} base offset {}", answer.error_code, answer.base_offset)
}

/// A transaction's description once it is no longer preparing.
async fn describe_settled(client: &mut RawClient, id: &str, pid: i64) -> String {
    let request = DescribeTransactionsRequest::default().with_transactional_ids(vec![txn_id(id)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = client.call(&request, 0).await;
        let state = &response.transaction_states[0];
        if !state.transaction_state.starts_with("Prepare") || Instant::now() > deadline {
            // Apache Kafka lists a transaction's partitions in hash order.
            let topics: Vec<String> = state
                .topics
                .iter()
                .map(|t| {
                    let mut partitions = t.partitions.clone();
                    partitions.sort_unstable();
                    format!("{}{partitions:?}", t.topic.0.rsplit('-').next().unwrap())
                })
                .collect();
            return format!(
                "error {} state {} timeout {} started {} producer +{} epoch {} topics {topics:?}",
                state.error_code,
                state.transaction_state.as_str(),
                state.transaction_timeout_ms,
                state.transaction_start_time_ms >= 0,
                state.producer_id.0 - pid,
                state.producer_epoch,
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn read_committed(topic: &str, partition: i32) -> FetchRequest {
    let mut request = fetch_one(topic, 0, 1 << 20).with_isolation_level(1);
    request.topics[0].partitions[0].partition = partition;
    request
}

fn fetched(response: &FetchResponse) -> String {
    let p = &response.responses[0].partitions[0];
    let aborted: Vec<(i64, i64)> = p.aborted_transactions.iter().flatten().map(|a| (a.producer_id.0, a.first_offset)).collect();
    format!(
        "error {} high watermark {} last stable {} bytes {} aborted {}",
        p.error_code,
        p.high_watermark,
        p.last_stable_offset,
        p.records.as_ref().is_some_and(|r| !r.is_empty()),
        aborted.len()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_from_init_to_its_markers_with_every_description() {
    let mut pair = Pair::start("txnlife").await;
    let (t, u) = (pair.name("t"), pair.name("u"));
    create_on_both(&mut pair, &[(&t, 2), (&u, 1)]).await;
    pair.compare_scripts(async |client, prefix| {
        let (t, u, id) = (format!("{prefix}-t"), format!("{prefix}-u"), format!("{prefix}-tx"));
        let missing = format!("{prefix}-missing");
        await_txn_coordinator(client, &id).await;
        let granted = retrying(client, &init(&id, 60_000), 4, |r| r.error_code).await;
        let (pid, epoch) = (granted.producer_id.0, granted.producer_epoch);
        let mut seen = vec![format!("init: error {} epoch {epoch}", granted.error_code)];
        let with_missing = client.call(&add_partitions(&id, pid, epoch, &[(&t, &[0]), (&missing, &[0])]), 3).await;
        seen.push(format!("add with an unknown topic: {}", added(&with_missing)));
        let both = retrying(client, &add_partitions(&id, pid, epoch, &[(&t, &[0, 1])]), 3, |r| {
            r.results_by_topic_v3_and_below.iter().flat_map(|t| &t.results_by_partition).map(|p| p.partition_error_code).max().unwrap_or(0)
        })
        .await;
        seen.push(format!("add: {}", added(&both)));
        seen.push(format!("produce into the transaction: {}", produced(&client.call(&transactional_produce(&t, 0, Some(&id), pid, epoch, 0), 9).await)));
        let plain = client.call(&produce(&t, 0, testing::batch(t0(), &[b"plain"]), -1), 9).await;
        seen.push(format!("plain produce after it: {}", produced(&plain)));
        seen.push(format!("read_committed while open: {}", fetched(&client.call(&read_committed(&t, 0), 12).await)));
        let latest = client.call(&list_offsets(&t, -1).with_isolation_level(1), 5).await;
        seen.push(format!("read_committed latest offset: {}", latest.topics[0].partitions[0].offset));
        seen.push(format!("described while open: {}", describe_settled(client, &id, pid).await));

        let listed = client
            .call(
                &ListTransactionsRequest::default()
                    .with_state_filters(vec![StrBytes::from_static_str("Ongoing"), StrBytes::from_static_str("Bogus")])
                    .with_producer_id_filters(vec![ProducerId(pid)])
                    .with_duration_filter(-1),
                1,
            )
            .await;
        let ours: Vec<String> = listed
            .transaction_states
            .iter()
            .map(|s| format!("{} +{} {}", s.transactional_id.0.as_str() == id, s.producer_id.0 - pid, s.transaction_state.as_str()))
            .collect();
        seen.push(format!("listed: error {} unknown filters {:?} {ours:?}", listed.error_code, listed.unknown_state_filters));
        let long_running =
            client.call(&ListTransactionsRequest::default().with_producer_id_filters(vec![ProducerId(pid)]).with_duration_filter(3_600_000), 1).await;
        seen.push(format!("listed as running for an hour: {}", long_running.transaction_states.len()));

        let producers = client
            .call(
                &DescribeProducersRequest::default().with_topics(vec![TopicRequest::default().with_name(topic_name(&t)).with_partition_indexes(vec![0, 1, 7])]),
                0,
            )
            .await;
        for p in &producers.topics[0].partitions {
            let states: Vec<String> = p
                .active_producers
                .iter()
                .filter(|s| s.producer_id.0 == pid)
                .map(|s| format!("epoch {} last sequence {} txn start {}", s.producer_epoch, s.last_sequence, s.current_txn_start_offset))
                .collect();
            seen.push(format!("producers of partition {}: error {} {states:?}", p.partition_index, p.error_code));
        }

        let ended = retrying(client, &end_txn(&id, pid, epoch, true), 3, |r| r.error_code).await;
        seen.push(format!("commit: error {}", ended.error_code));
        seen.push(format!("described after: {}", describe_settled(client, &id, pid).await));
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut after = client.call(&read_committed(&t, 0), 12).await;
        while after.responses[0].partitions[0].last_stable_offset < 3 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            after = client.call(&read_committed(&t, 0), 12).await;
        }
        seen.push(format!("read_committed after the commit: {}", fetched(&after)));
        seen.push(format!("commit again: error {}", retrying(client, &end_txn(&id, pid, epoch, true), 3, |r| r.error_code).await.error_code));
        seen.push(format!("abort after commit: error {}", client.call(&end_txn(&id, pid, epoch, false), 3).await.error_code));
        seen.push(format!("produce after the commit: {}", produced(&client.call(&transactional_produce(&u, 0, Some(&id), pid, epoch, 0), 9).await)));
        seen
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn offsets_committed_in_transactions_fencing_and_aborts() {
    let mut pair = Pair::start("txnoffsets").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    pair.compare_scripts(async |client, prefix| {
        let (t, id, group) = (format!("{prefix}-t"), format!("{prefix}-tx"), format!("{prefix}-g"));
        await_txn_coordinator(client, &id).await;
        let first = retrying(client, &init(&id, 60_000), 4, |r| r.error_code).await;
        let (pid, old_epoch) = (first.producer_id.0, first.producer_epoch);
        let again = retrying(client, &init(&id, 60_000), 4, |r| r.error_code).await;
        let epoch = again.producer_epoch;
        let mut seen = vec![format!("re-init: error {} producer +{} epoch {}", again.error_code, again.producer_id.0 - pid, epoch - old_epoch)];
        for version in [1, 3] {
            let stale = client.call(&add_partitions(&id, pid, old_epoch, &[(&t, &[0])]), version).await;
            seen.push(format!("add with the fenced epoch at v{version}: {}", added(&stale)));
        }
        let commit = |offset: i64| {
            TxnOffsetCommitRequest::default()
                .with_transactional_id(txn_id(&id))
                .with_group_id(group_id(&group))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_generation_id(-1)
                .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                    .with_name(topic_name(&t))
                    .with_partitions(vec![TxnOffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(offset)])])
        };
        let fetch_offset = OffsetFetchRequest::default()
            .with_group_id(group_id(&group))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default().with_name(topic_name(&t)).with_partition_indexes(vec![0])]))
            .with_require_stable(true);
        let offset_seen = |r: &OffsetFetchResponse| {
            let p = &r.topics[0].partitions[0];
            format!("error {} partition error {} offset {}", r.error_code, p.error_code, p.committed_offset)
        };
        for commit_it in [false, true] {
            let offset = if commit_it { 20 } else { 10 };
            let add_offsets = AddOffsetsToTxnRequest::default()
                .with_transactional_id(txn_id(&id))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_group_id(group_id(&group));
            seen.push(format!("add offsets: error {}", retrying(client, &add_offsets, 3, |r| r.error_code).await.error_code));
            let stored = client.call(&commit(offset), 3).await;
            seen.push(format!("txn offset commit {offset}: error {}", stored.topics[0].partitions[0].error_code));
            seen.push(format!("offset fetch (stable) while open: {}", offset_seen(&client.call(&fetch_offset, 7).await)));
            let ended = retrying(client, &end_txn(&id, pid, epoch, commit_it), 3, |r| r.error_code).await;
            seen.push(format!("end (commit={commit_it}): error {}", ended.error_code));
            let settled = retrying(client, &fetch_offset, 7, |r| r.topics[0].partitions[0].error_code.max(r.error_code)).await;
            seen.push(format!("offset fetch after: {}", offset_seen(&settled)));
        }
        // Apache Kafka answers CONCURRENT_TRANSACTIONS while the commit
        // just ended completes its markers; clients retry it.
        let unadded = retrying(client, &commit(30), 3, |r| r.topics[0].partitions[0].error_code).await;
        seen.push(format!("txn offset commit outside a transaction: error {}", unadded.topics[0].partitions[0].error_code));
        seen
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn transactional_requests_a_coordinator_refuses() {
    let mut pair = Pair::start("txnrefused").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    pair.compare_scripts(async |client, prefix| {
        let (t, id, unknown) = (format!("{prefix}-t"), format!("{prefix}-tx"), format!("{prefix}-unknown"));
        await_txn_coordinator(client, &id).await;
        let mut seen = Vec::new();
        for (what, timeout) in [("zero", 0), ("above the maximum", 900_001)] {
            seen.push(format!("init with a timeout {what}: error {}", retrying(client, &init(&id, timeout), 4, |r| r.error_code).await.error_code));
        }
        seen.push(format!("init with an empty id: error {}", retrying(client, &init("", 60_000), 4, |r| r.error_code).await.error_code));
        seen.push(format!("add to an unknown id: {}", added(&client.call(&add_partitions(&unknown, 12345, 0, &[(&t, &[0])]), 3).await)));
        seen.push(format!("end an unknown id: error {}", client.call(&end_txn(&unknown, 12345, 0, true), 3).await.error_code));
        let add_offsets =
            AddOffsetsToTxnRequest::default().with_transactional_id(txn_id(&unknown)).with_producer_id(ProducerId(12345)).with_group_id(group_id("g"));
        seen.push(format!("add offsets for an unknown id: error {}", client.call(&add_offsets, 3).await.error_code));
        let described = client.call(&DescribeTransactionsRequest::default().with_transactional_ids(vec![txn_id(&unknown)]), 0).await;
        let state = &described.transaction_states[0];
        seen.push(format!("describe an unknown id: error {} producer {} epoch {}", state.error_code, state.producer_id.0, state.producer_epoch));

        let granted = retrying(client, &init(&id, 60_000), 4, |r| r.error_code).await;
        let (pid, epoch) = (granted.producer_id.0, granted.producer_epoch);
        seen.push(format!("end with nothing open: error {}", client.call(&end_txn(&id, pid, epoch, true), 3).await.error_code));
        seen.push(format!("end with another producer id: error {}", client.call(&end_txn(&id, pid + 1, epoch, true), 3).await.error_code));
        seen
    })
    .await;
}
