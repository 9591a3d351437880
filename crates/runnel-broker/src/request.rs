//! From a frame to a response: header parsing, version negotiation and
//! dispatch to the one handler per API in `handlers/`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::handlers;
use crate::server::Listener;
use crate::state::BrokerState;

/// The APIs runnel serves and their version ranges (Apache Kafka 3.7's;
/// ListTransactions v1, from 3.8, filters by duration).
/// ApiVersions advertises exactly this table.
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 9),
    (ApiKey::Fetch, 0, 15),
    (ApiKey::ListOffsets, 0, 8),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 0, 7),
    (ApiKey::DeleteTopics, 0, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::OffsetForLeaderEpoch, 0, 4),
    (ApiKey::DescribeConfigs, 0, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 0, 9),
    (ApiKey::OffsetFetch, 0, 9),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::AddPartitionsToTxn, 0, 4),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
];

/// The version range runnel serves for `api_key`, if any.
pub fn supported_range(api_key: i16) -> Option<(ApiKey, i16, i16)> {
    SUPPORTED_APIS.iter().copied().find(|(key, _, _)| *key as i16 == api_key)
}

/// What a handler knows about the request it serves.
pub struct RequestContext<'a> {
    pub state: &'a Arc<BrokerState>,
    pub listener: &'a Listener,
    pub api_version: i16,
    pub client_id: String,
    pub peer: SocketAddr,
}

/// Why a request could not be answered; the connection is closed, as
/// Apache Kafka does for requests it cannot parse.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("request of {0} bytes is too short for a header")]
    TooShort(usize),
    #[error("unsupported API key {api_key} version {api_version}")]
    Unsupported { api_key: i16, api_version: i16 },
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed { api: ApiKey, version: i16, reason: String },
    #[error("could not encode response: {0}")]
    Encode(String),
}

/// A response frame that may still be waiting (a produce waiting for its
/// fsync). Connections await these in request order.
pub type Pending = Pin<Box<dyn Future<Output = Result<Bytes, RequestError>> + Send>>;

/// A request's outcome: the response to write, or nothing for `acks=0`
/// produces.
pub type Reply = Option<Pending>;

fn ready(bytes: Result<Bytes, RequestError>) -> Pending {
    Box::pin(std::future::ready(bytes))
}

/// Parses one frame, runs its handler and encodes the response frame.
pub async fn handle_frame(state: &Arc<BrokerState>, listener: &Listener, peer: SocketAddr, mut frame: Bytes) -> Result<Reply, RequestError> {
    if frame.len() < 8 {
        return Err(RequestError::TooShort(frame.len()));
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Some((key, min, max)) = supported_range(api_key) else {
        return Err(RequestError::Unsupported { api_key, api_version });
    };
    if api_version < min || api_version > max {
        if key == ApiKey::ApiVersions {
            // KIP-511: answer in v0 so any client can read the error and
            // the versions we do support.
            let response = handlers::api_versions::unsupported_version_response();
            return Ok(Some(ready(encode_response(ResponseKind::ApiVersions(response), correlation_id, 0, 0))));
        }
        return Err(RequestError::Unsupported { api_key, api_version });
    }
    let malformed = |reason: String| RequestError::Malformed { api: key, version: api_version, reason };
    let header_version = key.request_header_version(api_version);
    let header = RequestHeader::decode(&mut frame, header_version).map_err(|e| malformed(e.to_string()))?;
    let request = RequestKind::decode(key, &mut frame, api_version).map_err(|e| malformed(e.to_string()))?;
    if frame.has_remaining() {
        tracing::debug!(api = ?key, version = api_version, trailing = frame.remaining(), "ignoring trailing request bytes");
    }
    let client_id = header.client_id.map(|c| c.to_string()).unwrap_or_default();
    let ctx = RequestContext { state, listener, api_version, client_id, peer };
    let response_header_version = if key == ApiKey::ApiVersions { 0 } else { key.response_header_version(api_version) };
    if let RequestKind::Produce(produce) = request {
        let Some(produced) = handlers::produce::handle(&ctx, produce) else { return Ok(None) };
        return Ok(Some(Box::pin(async move {
            let response = produced.durable().await;
            encode_response(ResponseKind::Produce(response), correlation_id, api_version, response_header_version)
        })));
    }
    let Some(response) = dispatch(&ctx, request).await else { return Ok(None) };
    Ok(Some(ready(encode_response(response, correlation_id, api_version, response_header_version))))
}

async fn dispatch(ctx: &RequestContext<'_>, request: RequestKind) -> Option<ResponseKind> {
    use handlers::*;
    Some(match request {
        RequestKind::ApiVersions(r) => ResponseKind::ApiVersions(api_versions::handle(ctx, r)),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::handle(ctx, r)),
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::handle(ctx, r).await),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(list_offsets::handle(ctx, r)),
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(create_topics::handle(ctx, r)),
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(delete_topics::handle(ctx, r)),
        RequestKind::DeleteRecords(r) => ResponseKind::DeleteRecords(delete_records::handle(ctx, r)),
        RequestKind::InitProducerId(r) => ResponseKind::InitProducerId(init_producer_id::handle(ctx, r).await),
        RequestKind::OffsetForLeaderEpoch(r) => ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(ctx, r)),
        RequestKind::DescribeConfigs(r) => ResponseKind::DescribeConfigs(describe_configs::handle(ctx, r)),
        RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(alter_configs::handle(ctx, r)),
        RequestKind::CreatePartitions(r) => ResponseKind::CreatePartitions(create_partitions::handle(ctx, r)),
        RequestKind::IncrementalAlterConfigs(r) => ResponseKind::IncrementalAlterConfigs(incremental_alter_configs::handle(ctx, r)),
        RequestKind::DescribeCluster(r) => ResponseKind::DescribeCluster(describe_cluster::handle(ctx, r)),
        RequestKind::FindCoordinator(r) => ResponseKind::FindCoordinator(find_coordinator::handle(ctx, r)),
        RequestKind::JoinGroup(r) => ResponseKind::JoinGroup(join_group::handle(ctx, r).await),
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(sync_group::handle(ctx, r).await),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(heartbeat::handle(ctx, r)),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(leave_group::handle(ctx, r)),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(offset_commit::handle(ctx, r).await),
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(offset_fetch::handle(ctx, r)),
        RequestKind::DescribeGroups(r) => ResponseKind::DescribeGroups(describe_groups::handle(ctx, r)),
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(list_groups::handle(ctx, r)),
        RequestKind::DeleteGroups(r) => ResponseKind::DeleteGroups(delete_groups::handle(ctx, r).await),
        RequestKind::OffsetDelete(r) => ResponseKind::OffsetDelete(offset_delete::handle(ctx, r).await),
        RequestKind::AddPartitionsToTxn(r) => ResponseKind::AddPartitionsToTxn(add_partitions_to_txn::handle(ctx, r).await),
        RequestKind::AddOffsetsToTxn(r) => ResponseKind::AddOffsetsToTxn(add_offsets_to_txn::handle(ctx, r).await),
        RequestKind::EndTxn(r) => ResponseKind::EndTxn(end_txn::handle(ctx, r).await),
        RequestKind::TxnOffsetCommit(r) => ResponseKind::TxnOffsetCommit(txn_offset_commit::handle(ctx, r).await),
        RequestKind::DescribeProducers(r) => ResponseKind::DescribeProducers(describe_producers::handle(ctx, r)),
        RequestKind::DescribeTransactions(r) => ResponseKind::DescribeTransactions(describe_transactions::handle(ctx, r)),
        RequestKind::ListTransactions(r) => ResponseKind::ListTransactions(list_transactions::handle(ctx, r)),
        other => {
            // Unreachable while SUPPORTED_APIS and this match agree; answer
            // by closing rather than panicking if they ever do not.
            tracing::error!(request = ?std::mem::discriminant(&other), "request passed version check but has no handler");
            return None;
        }
    })
}

/// Roughly how large a response will be. Sizing the buffer up front saves
/// regrowing (and recopying) it for fetches that carry megabytes.
fn size_hint(response: &ResponseKind) -> usize {
    const OVERHEAD: usize = 256;
    match response {
        ResponseKind::Fetch(fetch) => {
            let partitions = fetch.responses.iter().flat_map(|t| &t.partitions);
            partitions.map(|p| OVERHEAD + p.records.as_ref().map_or(0, |r| r.len())).sum::<usize>() + OVERHEAD
        }
        _ => OVERHEAD,
    }
}

fn encode_response(response: ResponseKind, correlation_id: i32, version: i16, header_version: i16) -> Result<Bytes, RequestError> {
    let mut buf = BytesMut::with_capacity(size_hint(&response));
    buf.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header.encode(&mut buf, header_version).map_err(|e| RequestError::Encode(e.to_string()))?;
    response.encode(&mut buf, version).map_err(|e| RequestError::Encode(e.to_string()))?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}
