//! ksqlDB's REST API: paths, request and response shapes, content types
//! and error objects. Statements run on blocking threads (they wait on
//! the cluster); push queries stream their rows as they come, over
//! HTTP/1.1 chunked encoding or HTTP/2.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::entities::{self, codes};
use super::print::Printing;
use super::push::{Answer, PushQuery};
use super::{Refusal, SqlService};
use crate::functions::write_json;
use crate::row::Row;
use crate::types::SqlType;

const KSQL_V1: &str = "application/vnd.ksql.v1+json";
const DELIMITED: &str = "application/vnd.ksqlapi.delimited.v1";
const JSON: &str = "application/json";

type Shared = State<Arc<SqlService>>;

/// The service's routes.
pub fn router(service: Arc<SqlService>) -> Router {
    Router::new()
        .route("/ksql", post(ksql))
        .route("/query", post(query))
        .route("/query-stream", post(query_stream))
        .route("/inserts-stream", post(inserts_stream))
        .route("/close-query", post(close_query))
        .route("/info", get(info))
        .route("/healthcheck", get(healthcheck))
        .route("/status", get(statuses))
        .route("/status/{*command}", get(status))
        .fallback(|| async { error_response(&Refusal::new(codes::NOT_FOUND, "HTTP 404 Not Found", None), KSQL_V1) })
        .with_state(service)
}

/// The content type to answer in: JSON if the client asks for it, else
/// ksqlDB's versioned type.
fn answer_type(headers: &HeaderMap) -> &'static str {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if accept.contains(JSON) && !accept.contains(KSQL_V1) {
        JSON
    } else {
        KSQL_V1
    }
}

fn json_response(status: StatusCode, body: &Value, content_type: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body.to_string()).into_response()
}

fn error_response(refusal: &Refusal, content_type: &'static str) -> Response {
    if refusal.code >= 50000 {
        tracing::error!(message = refusal.message, "SQL service error");
    }
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &refusal.body(), content_type)
}

fn bad_request(message: impl Into<String>) -> Refusal {
    Refusal::new(codes::BAD_REQUEST, message, None)
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("the request body is not valid: {e}")))
}

/// Property values as strings, whatever JSON type the client sent.
fn string_properties(properties: BTreeMap<String, Value>) -> BTreeMap<String, String> {
    properties
        .into_iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (name, text)
        })
        .collect()
}

/// A `/ksql` or `/query` request.
#[derive(Deserialize)]
struct KsqlRequest {
    ksql: String,
    #[serde(default, rename = "streamsProperties")]
    streams_properties: BTreeMap<String, Value>,
}

async fn ksql(State(service): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = answer_type(&headers);
    let request: KsqlRequest = match parse_body(&body) {
        Ok(request) => request,
        Err(refusal) => return error_response(&refusal, content_type),
    };
    let properties = string_properties(request.streams_properties);
    let answer = tokio::task::spawn_blocking(move || service.execute(&request.ksql, &properties)).await;
    match answer {
        Ok(Ok(entities)) => json_response(StatusCode::OK, &Value::Array(entities), content_type),
        Ok(Err(refusal)) => error_response(&refusal, content_type),
        Err(e) => error_response(&Refusal::new(codes::SERVER_ERROR, e.to_string(), None), content_type),
    }
}

/// How a push query's response is framed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `/query`: a JSON array of a header, `row` objects and a final
    /// message.
    Legacy,
    /// `/query-stream`, one JSON document per line: the header, then each
    /// row as an array.
    Delimited,
    /// `/query-stream` asked for JSON: the same as one array.
    Array,
}

fn row_json(row: &Row) -> String {
    let mut out = String::from("[");
    for (i, value) in row.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json(value, &mut out);
    }
    out.push(']');
    out
}

impl Framing {
    fn content_type(self) -> &'static str {
        match self {
            Framing::Delimited => DELIMITED,
            Framing::Legacy | Framing::Array => JSON,
        }
    }

    fn header(self, id: &str, columns: &[(String, SqlType)]) -> String {
        match self {
            Framing::Legacy => {
                let schema = entities::header_schema(columns);
                format!("[{}", json!({"header": {"queryId": id, "schema": schema}}))
            }
            Framing::Delimited | Framing::Array => {
                let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
                let types: Vec<String> = columns.iter().map(|(_, t)| t.to_string()).collect();
                let header = json!({"queryId": id, "columnNames": names, "columnTypes": types});
                if self == Framing::Array {
                    format!("[{header}")
                } else {
                    format!("{header}\n")
                }
            }
        }
    }

    fn row(self, row: &Row) -> String {
        match self {
            Framing::Legacy => format!(",\n{{\"row\":{{\"columns\":{}}}}}", row_json(row)),
            Framing::Delimited => format!("{}\n", row_json(row)),
            Framing::Array => format!(",\n{}", row_json(row)),
        }
    }

    fn end(self, limit_reached: bool) -> String {
        match self {
            Framing::Legacy if limit_reached => ",\n{\"finalMessage\":\"Limit Reached\"}]\n".to_string(),
            Framing::Legacy | Framing::Array => "]\n".to_string(),
            Framing::Delimited => String::new(),
        }
    }
}

/// A response body fed by a channel.
struct Chunks(mpsc::Receiver<Bytes>);

impl futures::Stream for Chunks {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(Ok))
    }
}

/// Streams a push query's rows until its limit, `/close-query` or the
/// client leaving, then stops the query.
fn stream_push(service: Arc<SqlService>, mut query: PushQuery, framing: Framing) -> Response {
    let (out, body) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let mut sent = 0u64;
        let mut limit_reached = false;
        if out.send(Bytes::from(framing.header(&query.id, &query.columns))).await.is_ok() {
            loop {
                if query.limit.is_some_and(|limit| sent >= limit) {
                    limit_reached = true;
                    break;
                }
                tokio::select! {
                    row = query.rows.recv() => match row {
                        Some(row) => {
                            if out.send(Bytes::from(framing.row(&row))).await.is_err() {
                                break;
                            }
                            sent += 1;
                        }
                        None => break,
                    },
                    _ = query.closed.notified() => break,
                    _ = out.closed() => break,
                }
            }
            let end = framing.end(limit_reached);
            if !end.is_empty() {
                let _ = out.send(Bytes::from(end)).await;
            }
        }
        drop(out);
        let _ = tokio::task::spawn_blocking(move || service.end_push(query)).await;
    });
    ([(header::CONTENT_TYPE, framing.content_type())], Body::from_stream(Chunks(body))).into_response()
}

/// Streams `PRINT`'s lines until its limit or the client leaving.
fn stream_print(mut printing: Printing) -> Response {
    let (out, body) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                line = printing.lines.recv() => match line {
                    Some(line) => {
                        if out.send(Bytes::from(line)).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                _ = out.closed() => break,
            }
        }
        drop(out);
        let _ = tokio::task::spawn_blocking(move || printing.stop()).await;
    });
    ([(header::CONTENT_TYPE, "text/plain")], Body::from_stream(Chunks(body))).into_response()
}

async fn start_push(service: Arc<SqlService>, sql: String, properties: BTreeMap<String, String>, framing: Framing, error_type: &'static str) -> Response {
    let starter = service.clone();
    match tokio::task::spawn_blocking(move || starter.query(&sql, &properties)).await {
        Ok(Ok(Answer::Push(query))) => stream_push(service, query, framing),
        Ok(Ok(Answer::Print(printing))) => stream_print(printing),
        Ok(Ok(Answer::Pull(result))) => {
            let mut body = framing.header(&result.id, &result.columns);
            for row in &result.rows {
                body.push_str(&framing.row(row));
            }
            body.push_str(&framing.end(false));
            ([(header::CONTENT_TYPE, framing.content_type())], body).into_response()
        }
        Ok(Err(refusal)) => error_response(&refusal, error_type),
        Err(e) => error_response(&Refusal::new(codes::SERVER_ERROR, e.to_string(), None), error_type),
    }
}

async fn query(State(service): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = answer_type(&headers);
    match parse_body::<KsqlRequest>(&body) {
        Ok(request) => start_push(service, request.ksql, string_properties(request.streams_properties), Framing::Legacy, content_type).await,
        Err(refusal) => error_response(&refusal, content_type),
    }
}

/// A `/query-stream` request.
#[derive(Deserialize)]
struct QueryStreamRequest {
    sql: String,
    #[serde(default)]
    properties: BTreeMap<String, Value>,
}

async fn query_stream(State(service): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let framing = if accept.contains(JSON) { Framing::Array } else { Framing::Delimited };
    match parse_body::<QueryStreamRequest>(&body) {
        Ok(request) => start_push(service, request.sql, string_properties(request.properties), framing, JSON).await,
        Err(refusal) => error_response(&refusal, JSON),
    }
}

#[derive(Deserialize)]
struct CloseQuery {
    #[serde(rename = "queryId")]
    query_id: String,
}

async fn close_query(State(service): Shared, body: Bytes) -> Response {
    match parse_body::<CloseQuery>(&body) {
        Ok(request) if service.close_push(&request.query_id) => StatusCode::OK.into_response(),
        Ok(request) => error_response(&Refusal::new(codes::BAD_REQUEST, format!("No query with id {}", request.query_id), None), JSON),
        Err(refusal) => error_response(&refusal, JSON),
    }
}

/// `/inserts-stream`: the first line names the target stream, each line
/// after it is a row as a JSON object; each row's acknowledgement is a
/// line `{"status":"ok","seq":n}`, or an error object with its `seq`.
async fn inserts_stream(State(service): Shared, body: Bytes) -> Response {
    let answer = tokio::task::spawn_blocking(move || {
        let mut lines = body.split(|b| *b == b'\n').filter(|line| !line.iter().all(u8::is_ascii_whitespace));
        let Some(first) = lines.next() else { return Err(bad_request("the request names no target")) };
        #[derive(Deserialize)]
        struct Target {
            target: String,
        }
        let target: Target = parse_body(first)?;
        let mut acks = String::new();
        for (seq, line) in lines.enumerate() {
            let ack = match serde_json::from_slice::<Value>(line).map_err(|e| e.to_string()).and_then(|row| service.insert_row(&target.target, &row)) {
                Ok(()) => json!({"status": "ok", "seq": seq}),
                Err(message) => json!({"status": "error", "seq": seq, "error_code": codes::BAD_STATEMENT, "message": message}),
            };
            acks.push_str(&ack.to_string());
            acks.push('\n');
        }
        Ok(acks)
    })
    .await;
    match answer {
        Ok(Ok(acks)) => ([(header::CONTENT_TYPE, DELIMITED)], acks).into_response(),
        Ok(Err(refusal)) => error_response(&refusal, JSON),
        Err(e) => error_response(&Refusal::new(codes::SERVER_ERROR, e.to_string(), None), JSON),
    }
}

async fn info(State(service): Shared, headers: HeaderMap) -> Response {
    let content_type = answer_type(&headers);
    let cluster_id = tokio::task::spawn_blocking({
        let service = service.clone();
        move || service.kafka_cluster_id()
    })
    .await
    .ok()
    .flatten();
    let body = json!({"KsqlServerInfo": {
        "version": env!("CARGO_PKG_VERSION"),
        "kafkaClusterId": cluster_id,
        "ksqlServiceId": service.service_id(),
        "serverStatus": "RUNNING",
    }});
    json_response(StatusCode::OK, &body, content_type)
}

async fn healthcheck(State(service): Shared, headers: HeaderMap) -> Response {
    let content_type = answer_type(&headers);
    let kafka = tokio::task::spawn_blocking(move || service.kafka_cluster_id().is_some()).await.unwrap_or(false);
    let body = json!({
        "isHealthy": kafka,
        "details": {"metastore": {"isHealthy": true}, "kafka": {"isHealthy": kafka}, "commandRunner": {"isHealthy": true}},
        "serverState": "READY",
    });
    let status = if kafka { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json_response(status, &body, content_type)
}

async fn statuses(State(service): Shared, headers: HeaderMap) -> Response {
    let statuses: BTreeMap<String, Value> = service.command_statuses().into_iter().map(|(id, status)| (id, status["status"].clone())).collect();
    json_response(StatusCode::OK, &json!({"commandStatuses": statuses}), answer_type(&headers))
}

async fn status(State(service): Shared, headers: HeaderMap, Path(command): Path<String>) -> Response {
    let content_type = answer_type(&headers);
    match service.command_status(&command) {
        Some(status) => json_response(StatusCode::OK, &status, content_type),
        None => error_response(&Refusal::new(codes::NOT_FOUND, format!("Command not found: {command}"), None), content_type),
    }
}
