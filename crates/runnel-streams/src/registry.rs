//! Values through a Confluent-compatible Schema Registry (runnel's, on
//! port 8081, or Confluent's), in Confluent's wire format: magic byte 0,
//! the schema's id (4 bytes, big-endian), then the value — Avro-encoded
//! ([`AvroSerde`]) or JSON ([`JsonSchemaSerde`]). Topics written this way
//! are read by confluent-kafka's and the Java clients' deserializers, and
//! the reverse.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Mutex;

use apache_avro::Schema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::serde::{Serde, SerdeError};

/// A serde for `T` as Avro, its schema registered in a Schema Registry.
pub struct AvroSerde<T> {
    base: String,
    /// The schema values are written with, and read into.
    schema: Schema,
    id: i32,
    /// Writers' schemas met while reading, by id.
    writers: Mutex<HashMap<i32, Schema>>,
    _type: PhantomData<fn() -> T>,
}

fn registry_error(message: impl std::fmt::Display) -> SerdeError {
    SerdeError::Schema(message.to_string())
}

/// Calls the registry's REST API; its errors become their message.
fn call(base: &str, method: &str, path: &str, body: Option<Value>) -> Result<Value, SerdeError> {
    let url = format!("{base}{path}");
    let request = ureq::request(method, &url).set("Content-Type", "application/vnd.schemaregistry.v1+json");
    let result = match body {
        Some(body) => request.send_json(body),
        None => request.call(),
    };
    match result {
        Ok(response) => response.into_json().map_err(|e| registry_error(format!("bad answer from {url}: {e}"))),
        Err(ureq::Error::Status(code, response)) => {
            let body: Value = response.into_json().unwrap_or_default();
            Err(registry_error(format!("schema registry answered {code}: {}", body.get("message").and_then(Value::as_str).unwrap_or("no message"))))
        }
        Err(e) => Err(registry_error(format!("schema registry {base} unreachable: {e}"))),
    }
}

/// Registers `schema` of `schema_type` under `subject`; returns its id.
fn register(base: &str, subject: &str, schema: &str, schema_type: &str) -> Result<i32, SerdeError> {
    let answer = call(base, "POST", &format!("/subjects/{subject}/versions"), Some(json!({ "schema": schema, "schemaType": schema_type })))?;
    Ok(answer["id"].as_i64().ok_or_else(|| registry_error("the registry answered without an id"))? as i32)
}

/// The schema id and body of a value in Confluent's wire format.
fn split_wire(bytes: &[u8]) -> Result<(i32, &[u8]), SerdeError> {
    let (header, body) =
        bytes.split_at_checked(5).filter(|(h, _)| h[0] == 0).ok_or(SerdeError::Length { expected: "magic byte 0 and a schema id", got: bytes.len() })?;
    Ok((i32::from_be_bytes(header[1..5].try_into().expect("4 bytes")), body))
}

/// `body` after magic byte 0 and schema `id`.
fn wire(id: i32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(0);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(body);
    out
}

impl<T> AvroSerde<T> {
    /// Registers `schema` (Avro schema JSON) under `subject` in the
    /// registry at `registry_url` — Confluent names subjects
    /// `<topic>-value` and `<topic>-key` — and returns a serde writing
    /// with it. Fails if the schema is not Avro, the registry refuses it
    /// (an incompatible change, say), or the registry cannot be reached.
    pub fn register(registry_url: &str, subject: &str, schema: &str) -> Result<AvroSerde<T>, SerdeError> {
        let parsed = Schema::parse_str(schema).map_err(|e| registry_error(format!("not an Avro schema: {e}")))?;
        let base = registry_url.trim_end_matches('/').to_string();
        let id = register(&base, subject, schema, "AVRO")?;
        Ok(AvroSerde { base, schema: parsed, id, writers: Mutex::new(HashMap::new()), _type: PhantomData })
    }

    /// The id the registry gave the schema.
    pub fn schema_id(&self) -> i32 {
        self.id
    }

    /// Schema `id`, fetched from the registry once.
    fn writer(&self, id: i32) -> Result<Schema, SerdeError> {
        let mut writers = self.writers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(schema) = writers.get(&id) {
            return Ok(schema.clone());
        }
        let answer = call(&self.base, "GET", &format!("/schemas/ids/{id}"), None)?;
        let schema = Schema::parse_str(answer["schema"].as_str().unwrap_or_default()).map_err(|e| registry_error(format!("schema {id} is not Avro: {e}")))?;
        writers.insert(id, schema.clone());
        Ok(schema)
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Serde for AvroSerde<T> {
    type Value = T;

    /// # Panics
    /// If the value does not fit the schema: the type and the schema were
    /// written apart, and every value of the type would fail alike.
    fn serialize(&self, value: &T) -> Option<Vec<u8>> {
        let avro = apache_avro::to_value(value).and_then(|v| v.resolve(&self.schema));
        let body = avro.and_then(|v| apache_avro::to_avro_datum(&self.schema, v)).unwrap_or_else(|e| panic!("a value does not fit its Avro schema: {e}"));
        Some(wire(self.id, &body))
    }

    /// Reads a value written with any schema the registry knows, resolved
    /// into this serde's schema by Avro's rules.
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<T, SerdeError> {
        let bytes = bytes.ok_or(SerdeError::Null)?;
        let (header, mut body) =
            bytes.split_at_checked(5).filter(|(h, _)| h[0] == 0).ok_or(SerdeError::Length { expected: "magic byte 0 and a schema id", got: bytes.len() })?;
        let id = i32::from_be_bytes(header[1..5].try_into().expect("4 bytes"));
        let writer = self.writer(id)?;
        let value =
            apache_avro::from_avro_datum(&writer, &mut body, Some(&self.schema)).map_err(|e| registry_error(format!("cannot read with schema {id}: {e}")))?;
        apache_avro::from_value::<T>(&value).map_err(|e| registry_error(format!("schema {id}'s value does not fit the type: {e}")))
    }
}

/// A serde for `T` as JSON, described by a JSON Schema registered in a
/// Schema Registry (Confluent's `KafkaJsonSchemaSerializer` format). The
/// registry checks the schema's compatibility when it is registered; the
/// values themselves are plain JSON after the wire-format header.
pub struct JsonSchemaSerde<T> {
    id: i32,
    _type: PhantomData<fn() -> T>,
}

impl<T> JsonSchemaSerde<T> {
    /// Registers `schema` (a JSON Schema) under `subject` in the registry
    /// at `registry_url` and returns a serde writing with it.
    pub fn register(registry_url: &str, subject: &str, schema: &str) -> Result<JsonSchemaSerde<T>, SerdeError> {
        serde_json::from_str::<Value>(schema).map_err(|e| registry_error(format!("not a JSON Schema: {e}")))?;
        let id = register(registry_url.trim_end_matches('/'), subject, schema, "JSON")?;
        Ok(JsonSchemaSerde { id, _type: PhantomData })
    }

    /// The id the registry gave the schema.
    pub fn schema_id(&self) -> i32 {
        self.id
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Serde for JsonSchemaSerde<T> {
    type Value = T;

    fn serialize(&self, value: &T) -> Option<Vec<u8>> {
        serde_json::to_vec(value).ok().map(|body| wire(self.id, &body))
    }

    /// Reads a value written with any registered schema: the JSON must
    /// fit the type.
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<T, SerdeError> {
        let (_, body) = split_wire(bytes.ok_or(SerdeError::Null)?)?;
        serde_json::from_slice(body).map_err(|e| SerdeError::Json(e.to_string()))
    }
}
