//! A Kafka protocol client over one TCP connection that sends exactly the
//! request and version it is given.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One connection to a broker.
pub struct RawClient {
    stream: TcpStream,
    correlation_id: i32,
}

impl RawClient {
    pub async fn connect(addr: &str) -> RawClient {
        RawClient { stream: TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connect to {addr}: {e}")), correlation_id: 0 }
    }

    /// The address this client is connected to, to open another connection.
    pub fn peer_addr(&self) -> String {
        self.stream.peer_addr().expect("connected").to_string()
    }

    /// The correlation id of the last request encoded.
    pub fn correlation_id(&self) -> i32 {
        self.correlation_id
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads one response frame; `None` if the broker closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let read = async {
            let size = self.stream.read_i32().await.ok()?;
            let mut body = vec![0u8; size as usize];
            self.stream.read_exact(&mut body).await.ok()?;
            Some(Bytes::from(body))
        };
        tokio::time::timeout(Duration::from_secs(30), read).await.expect("broker answered or closed in time")
    }

    /// Frames `request` at `version` with the next correlation id.
    pub fn encode<R: Request>(&mut self, request: &R, version: i16) -> Bytes {
        self.correlation_id += 1;
        let key = ApiKey::try_from(R::KEY).unwrap();
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("raw-test")));
        let mut body = BytesMut::new();
        header.encode(&mut body, key.request_header_version(version)).unwrap();
        request.encode(&mut body, version).unwrap();
        let mut frame = BytesMut::new();
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        frame.freeze()
    }

    /// Sends `request` and decodes its response; `None` if the broker
    /// closed the connection instead of answering.
    pub async fn try_call<R: Request>(&mut self, request: &R, version: i16) -> Option<R::Response> {
        let frame = self.encode(request, version);
        self.send_raw(&frame).await;
        let mut response = self.read_frame().await?;
        let key = ApiKey::try_from(R::KEY).unwrap();
        let header_version = if key == ApiKey::ApiVersions { 0 } else { key.response_header_version(version) };
        let header = ResponseHeader::decode(&mut response, header_version).unwrap();
        assert_eq!(header.correlation_id, self.correlation_id);
        let decoded = R::Response::decode(&mut response, version).unwrap_or_else(|e| panic!("{key:?} v{version} response does not decode: {e}"));
        assert_eq!(response.remaining(), 0, "{key:?} v{version} response has trailing bytes");
        Some(decoded)
    }

    /// Like [`RawClient::try_call`], failing the test if the broker closes
    /// the connection.
    pub async fn call<R: Request>(&mut self, request: &R, version: i16) -> R::Response {
        match self.try_call(request, version).await {
            Some(response) => response,
            None => panic!("broker closed the connection on {:?} v{version}", ApiKey::try_from(R::KEY)),
        }
    }
}
