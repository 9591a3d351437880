//! Confluent Schema Registry's REST API over the registry state.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::compat::Compatibility;
use crate::error::RegistryError;
use crate::registry::{Event, Imported, Mode, Reference, Registration, SubjectVersion};
use crate::schema::SchemaType;
use crate::Registry;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

type Shared = State<Arc<Registry>>;
type Params = Query<HashMap<String, String>>;
type Answer = Result<Response, RegistryError>;

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %self, "schema registry error");
        }
        (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], json!({"error_code": self.code(), "message": self.to_string()}).to_string()).into_response()
    }
}

fn reply(value: Value) -> Answer {
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], value.to_string()).into_response())
}

fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params.get(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The body of register, lookup and compatibility calls. Fields current
/// clients send but this registry does not use (`metadata`, `ruleSet`)
/// are accepted and ignored.
#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
    #[serde(rename = "schemaType", default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Reference>,
    /// IMPORT mode only: the id (and version) to keep.
    #[serde(default)]
    id: Option<i32>,
    #[serde(default)]
    version: Option<i32>,
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, RegistryError> {
    serde_json::from_slice(body).map_err(|e| RegistryError::BadRequest(e.to_string()))
}

fn schema_body(body: &Bytes) -> Result<(SchemaType, String, Vec<Reference>), RegistryError> {
    let body: SchemaBody = parse_body(body)?;
    let schema_type = body.schema_type.as_deref().unwrap_or("AVRO").parse()?;
    Ok((schema_type, body.schema, body.references))
}

fn version_json(found: &SubjectVersion) -> Value {
    let mut value = json!({"subject": found.subject, "version": found.version, "id": found.id, "schema": found.schema.schema});
    if found.schema.schema_type != SchemaType::Avro {
        value["schemaType"] = json!(found.schema.schema_type.to_string());
    }
    if !found.schema.references.is_empty() {
        value["references"] = json!(found.schema.references);
    }
    value
}

/// Every route of the API.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/", get(|| async { reply(json!({})) }))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route("/subjects/{subject}/versions", get(list_versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(get_version).delete(delete_version))
        .route("/subjects/{subject}/versions/{version}/schema", get(get_version_schema))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/versions", get(schema_versions))
        .route("/schemas/types", get(|| async { reply(json!(["JSON", "PROTOBUF", "AVRO"])) }))
        .route("/compatibility/subjects/{subject}/versions/{version}", post(check_version))
        .route("/compatibility/subjects/{subject}/versions", post(check_all))
        .route("/config", get(get_global_config).put(put_global_config).delete(delete_global_config))
        .route("/config/{subject}", get(get_config).put(put_config).delete(delete_config))
        .route("/mode", get(get_global_mode).put(put_global_mode))
        .route("/mode/{subject}", get(get_mode).put(put_mode))
        .with_state(registry)
}

async fn list_subjects(State(r): Shared, Query(p): Params) -> Answer {
    reply(json!(r.read(|s| s.subjects(flag(&p, "deleted")))))
}

async fn list_versions(State(r): Shared, Path(subject): Path<String>, Query(p): Params) -> Answer {
    reply(json!(r.read(|s| s.versions(&subject, flag(&p, "deleted")))?))
}

async fn get_version(State(r): Shared, Path((subject, version)): Path<(String, String)>, Query(p): Params) -> Answer {
    reply(version_json(&r.read(|s| s.get_version(&subject, &version, flag(&p, "deleted")))?))
}

async fn get_version_schema(State(r): Shared, Path((subject, version)): Path<(String, String)>) -> Answer {
    let found = r.read(|s| s.get_version(&subject, &version, false))?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], found.schema.schema).into_response())
}

async fn register(State(r): Shared, Path(subject): Path<String>, body: Bytes) -> Answer {
    let (schema_type, text, references) = schema_body(&body)?;
    let parsed: SchemaBody = parse_body(&body)?;
    let imported = parsed.id.map(|id| Imported { id, version: parsed.version });
    let id = r
        .write(|s| match s.register(&subject, schema_type, &text, references, imported)? {
            Registration::Existing(id) => Ok((Vec::new(), id)),
            Registration::New(event) => {
                let id = match &event {
                    Event::Schema { id, .. } => *id,
                    _ => unreachable!("registration creates a schema event"),
                };
                Ok((vec![event], id))
            }
        })
        .await?;
    reply(json!({"id": id}))
}

async fn lookup(State(r): Shared, Path(subject): Path<String>, body: Bytes) -> Answer {
    let (schema_type, text, references) = schema_body(&body)?;
    reply(version_json(&r.read(|s| s.lookup(&subject, schema_type, &text, &references))?))
}

async fn delete_version(State(r): Shared, Path((subject, version)): Path<(String, String)>, Query(p): Params) -> Answer {
    let permanent = flag(&p, "permanent");
    let number = r
        .write(|s| {
            let (number, event) = s.delete_version(&subject, &version, permanent)?;
            Ok((vec![event], number))
        })
        .await?;
    reply(json!(number))
}

async fn delete_subject(State(r): Shared, Path(subject): Path<String>, Query(p): Params) -> Answer {
    let permanent = flag(&p, "permanent");
    let numbers = r
        .write(|s| {
            let (numbers, events) = s.delete_subject(&subject, permanent)?;
            Ok((events, numbers))
        })
        .await?;
    reply(json!(numbers))
}

async fn schema_by_id(State(r): Shared, Path(id): Path<i32>) -> Answer {
    let schema = r.read(|s| s.schema_by_id(id))?;
    let mut value = json!({"schema": schema.schema});
    if schema.schema_type != SchemaType::Avro {
        value["schemaType"] = json!(schema.schema_type.to_string());
    }
    if !schema.references.is_empty() {
        value["references"] = json!(schema.references);
    }
    reply(value)
}

async fn schema_versions(State(r): Shared, Path(id): Path<i32>) -> Answer {
    r.read(|s| s.schema_by_id(id))?;
    let usages: Vec<Value> = r.read(|s| s.usages(id)).into_iter().map(|(subject, version)| json!({"subject": subject, "version": version})).collect();
    reply(json!(usages))
}

async fn check(r: &Registry, subject: &str, version: Option<&str>, params: &HashMap<String, String>, body: &Bytes) -> Answer {
    let (schema_type, text, references) = schema_body(body)?;
    let problems = r.read(|s| {
        let against = match version {
            Some(v) => {
                s.versions(subject, false)?;
                Some(s.resolve_version(subject, v, false)?)
            }
            None => None,
        };
        s.compatibility(subject, schema_type, &text, &references, against)
    })?;
    let mut value = json!({"is_compatible": problems.is_empty()});
    if flag(params, "verbose") {
        value["messages"] = json!(problems);
    }
    reply(value)
}

async fn check_version(State(r): Shared, Path((subject, version)): Path<(String, String)>, Query(p): Params, body: Bytes) -> Answer {
    check(&r, &subject, Some(&version), &p, &body).await
}

async fn check_all(State(r): Shared, Path(subject): Path<String>, Query(p): Params, body: Bytes) -> Answer {
    check(&r, &subject, None, &p, &body).await
}

#[derive(Deserialize)]
struct ConfigBody {
    compatibility: String,
}

fn parse_level(body: &Bytes) -> Result<Compatibility, RegistryError> {
    let body: ConfigBody = parse_body(body)?;
    body.compatibility.parse().map_err(|_| RegistryError::InvalidCompatibilityLevel)
}

async fn get_global_config(State(r): Shared) -> Answer {
    reply(json!({"compatibilityLevel": r.read(|s| s.level(None)).to_string()}))
}

async fn put_global_config(State(r): Shared, body: Bytes) -> Answer {
    let level = parse_level(&body)?;
    r.write(|_| Ok((vec![Event::Config { subject: None, level: Some(level) }], ()))).await?;
    reply(json!({"compatibility": level.to_string()}))
}

async fn delete_global_config(State(r): Shared) -> Answer {
    let previous = r.read(|s| s.level(None));
    r.write(|_| Ok((vec![Event::Config { subject: None, level: None }], ()))).await?;
    reply(json!({"compatibilityLevel": previous.to_string()}))
}

async fn get_config(State(r): Shared, Path(subject): Path<String>, Query(p): Params) -> Answer {
    let level = r.read(|s| match s.subject_level(&subject) {
        Some(level) => Ok(level),
        None if flag(&p, "defaultToGlobal") => Ok(s.level(None)),
        None => Err(RegistryError::SubjectLevelNotConfigured(subject.clone())),
    })?;
    reply(json!({"compatibilityLevel": level.to_string()}))
}

async fn put_config(State(r): Shared, Path(subject): Path<String>, body: Bytes) -> Answer {
    let level = parse_level(&body)?;
    r.write(|_| Ok((vec![Event::Config { subject: Some(subject.clone()), level: Some(level) }], ()))).await?;
    reply(json!({"compatibility": level.to_string()}))
}

async fn delete_config(State(r): Shared, Path(subject): Path<String>) -> Answer {
    let previous = r.read(|s| s.subject_level(&subject)).ok_or_else(|| RegistryError::SubjectNotFound(subject.clone()))?;
    r.write(|_| Ok((vec![Event::Config { subject: Some(subject.clone()), level: None }], ()))).await?;
    reply(json!({"compatibilityLevel": previous.to_string()}))
}

#[derive(Deserialize)]
struct ModeBody {
    mode: String,
}

async fn get_global_mode(State(r): Shared) -> Answer {
    reply(json!({"mode": r.read(|s| s.mode(None)).as_str()}))
}

async fn put_global_mode(State(r): Shared, body: Bytes) -> Answer {
    let mode: Mode = parse_body::<ModeBody>(&body)?.mode.parse()?;
    r.write(|_| Ok((vec![Event::Mode { subject: None, mode: Some(mode) }], ()))).await?;
    reply(json!({"mode": mode.as_str()}))
}

async fn get_mode(State(r): Shared, Path(subject): Path<String>, Query(p): Params) -> Answer {
    let mode = r.read(|s| match s.subject_mode(&subject) {
        Some(mode) => Ok(mode),
        None if flag(&p, "defaultToGlobal") => Ok(s.mode(None)),
        None => Err(RegistryError::SubjectNotFound(subject.clone())),
    })?;
    reply(json!({"mode": mode.as_str()}))
}

async fn put_mode(State(r): Shared, Path(subject): Path<String>, body: Bytes) -> Answer {
    let mode: Mode = parse_body::<ModeBody>(&body)?.mode.parse()?;
    r.write(|_| Ok((vec![Event::Mode { subject: Some(subject.clone()), mode: Some(mode) }], ()))).await?;
    reply(json!({"mode": mode.as_str()}))
}
