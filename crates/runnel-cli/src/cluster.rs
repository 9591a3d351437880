//! `runnel cluster info`: brokers, controller, cluster id and the API
//! versions the broker serves.
//!
//! librdkafka exposes neither the controller nor the API versions, so this
//! one command speaks the protocol itself, through the `kafka-protocol`
//! codecs: a DescribeCluster and an ApiVersions request.

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use clap::{Args, Subcommand};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, DescribeClusterRequest, DescribeClusterResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use serde::Serialize;

use crate::output::table;
use crate::{CliError, ClientArgs, TIMEOUT};

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Brokers, controller, cluster id and supported API versions.
    Info,
}

#[derive(Serialize)]
struct Info {
    cluster_id: String,
    controller: i32,
    brokers: Vec<(i32, String)>,
    apis: Vec<(String, i16, i16)>,
}

fn call<R: Request>(stream: &mut TcpStream, request: &R, version: i16) -> Result<R::Response, String> {
    let key = ApiKey::try_from(R::KEY).map_err(|_| "unknown api key".to_string())?;
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("runnel-cli")))
        .encode(&mut body, key.request_header_version(version))
        .map_err(|e| e.to_string())?;
    request.encode(&mut body, version).map_err(|e| e.to_string())?;
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    stream.write_all(&frame).map_err(|e| e.to_string())?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).map_err(|e| e.to_string())?;
    let mut response = vec![0u8; i32::from_be_bytes(size).max(0) as usize];
    stream.read_exact(&mut response).map_err(|e| e.to_string())?;
    let mut response = Bytes::from(response);
    let header_version = if key == ApiKey::ApiVersions { 0 } else { key.response_header_version(version) };
    ResponseHeader::decode(&mut response, header_version).map_err(|e| e.to_string())?;
    let decoded = R::Response::decode(&mut response, version).map_err(|e| e.to_string())?;
    if response.has_remaining() {
        return Err("trailing bytes in response".into());
    }
    Ok(decoded)
}

pub fn run(args: ClusterArgs) -> Result<String, CliError> {
    let ClusterCommand::Info = args.command;
    let address = args.client.bootstrap_server.split(',').next().unwrap_or_default().to_string();
    let unreachable = |e: String| CliError::Refused(format!("broker {address} unreachable: is `runnel serve` running? ({e})"));
    let mut stream = TcpStream::connect(&address).map_err(|e| unreachable(e.to_string()))?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| unreachable(e.to_string()))?;
    let versions: ApiVersionsResponse = call(&mut stream, &ApiVersionsRequest::default(), 0).map_err(unreachable)?;
    let cluster: DescribeClusterResponse =
        call(&mut stream, &DescribeClusterRequest::default(), 0).map_err(|e| CliError::Refused(format!("DescribeCluster failed: {e}")))?;
    let info = Info {
        cluster_id: cluster.cluster_id.to_string(),
        controller: cluster.controller_id.0,
        brokers: cluster.brokers.iter().map(|b| (b.broker_id.0, format!("{}:{}", b.host.as_str(), b.port))).collect(),
        apis: versions
            .api_keys
            .iter()
            .map(|k| (ApiKey::try_from(k.api_key).map_or_else(|_| format!("key {}", k.api_key), |a| format!("{a:?}")), k.min_version, k.max_version))
            .collect(),
    };
    if args.client.wants_json() {
        return Ok(serde_json::to_string_pretty(&info).expect("serialisable") + "\n");
    }
    let mut out = format!("cluster id {}\ncontroller {}\n\n", info.cluster_id, info.controller);
    out += &table(&["BROKER", "ADDRESS"], &info.brokers.iter().map(|(id, addr)| vec![id.to_string(), addr.clone()]).collect::<Vec<_>>());
    out += "\n";
    out += &table(&["API", "MIN", "MAX"], &info.apis.iter().map(|(name, min, max)| vec![name.clone(), min.to_string(), max.to_string()]).collect::<Vec<_>>());
    Ok(out)
}
