//! A small client for a Confluent-compatible Schema Registry, and
//! Confluent's wire format: magic byte 0, a 4-byte schema id, then the
//! Avro-encoded value.

use std::collections::HashMap;

use apache_avro::Schema;
use clap::Args;
use serde_json::{json, Value};

use crate::CliError;

/// Where the registry is.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Schema Registry URL.
    #[arg(long, env = "RUNNEL_SCHEMA_REGISTRY", default_value = "http://localhost:8081", global = true)]
    pub schema_registry: String,
}

/// Talks to the registry's REST API.
pub struct RegistryClient {
    base: String,
    schemas: HashMap<i32, Schema>,
    sources: HashMap<i32, (String, Vec<(String, String)>)>,
}

impl RegistryClient {
    pub fn new(args: &RegistryArgs) -> RegistryClient {
        RegistryClient { base: args.schema_registry.trim_end_matches('/').to_string(), schemas: HashMap::new(), sources: HashMap::new() }
    }

    /// Sends a request; Confluent errors become their message.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.base);
        let request = ureq::request(method, &url).set("Content-Type", "application/vnd.schemaregistry.v1+json");
        let result = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match result {
            Ok(response) => response.into_json().map_err(|e| CliError::Refused(format!("bad answer from {url}: {e}"))),
            Err(ureq::Error::Status(_, response)) => {
                let body: Value = response.into_json().unwrap_or_default();
                let message = body.get("message").and_then(Value::as_str).unwrap_or("no message");
                Err(CliError::Refused(format!("schema registry: {message} (error {})", body.get("error_code").unwrap_or(&Value::Null))))
            }
            Err(e) => Err(CliError::Refused(format!("schema registry {} unreachable: is `runnel serve` running? ({e})", self.base))),
        }
    }

    /// Registers `schema` under `subject`; returns its id.
    pub fn register(&self, subject: &str, schema: &str, schema_type: &str) -> Result<i32, CliError> {
        let answer = self.call("POST", &format!("/subjects/{subject}/versions"), Some(json!({"schema": schema, "schemaType": schema_type})))?;
        answer["id"].as_i64().map(|id| id as i32).ok_or_else(|| CliError::Refused("schema registry answered without an id".into()))
    }

    /// The latest schema of `subject` with its id.
    pub fn latest(&self, subject: &str) -> Result<(i32, String), CliError> {
        let answer = self.call("GET", &format!("/subjects/{subject}/versions/latest"), None)?;
        Ok((answer["id"].as_i64().unwrap_or(-1) as i32, answer["schema"].as_str().unwrap_or_default().to_string()))
    }

    /// The text of schema `id` and of the schemas it references (by import
    /// name), fetched once.
    pub fn source(&mut self, id: i32) -> Result<(String, Vec<(String, String)>), CliError> {
        if let Some(found) = self.sources.get(&id) {
            return Ok(found.clone());
        }
        let answer = self.call("GET", &format!("/schemas/ids/{id}"), None)?;
        let text = answer["schema"].as_str().unwrap_or_default().to_string();
        let mut references = Vec::new();
        for reference in answer["references"].as_array().cloned().unwrap_or_default() {
            let (name, subject, version) =
                (reference["name"].as_str().unwrap_or_default(), reference["subject"].as_str().unwrap_or_default(), &reference["version"]);
            let referenced = self.call("GET", &format!("/subjects/{subject}/versions/{version}"), None)?;
            references.push((name.to_string(), referenced["schema"].as_str().unwrap_or_default().to_string()));
        }
        self.sources.insert(id, (text.clone(), references.clone()));
        Ok((text, references))
    }

    /// The Avro schema with `id`, fetched once.
    pub fn schema(&mut self, id: i32) -> Result<&Schema, CliError> {
        if !self.schemas.contains_key(&id) {
            let answer = self.call("GET", &format!("/schemas/ids/{id}"), None)?;
            let text = answer["schema"].as_str().unwrap_or_default();
            let schema = Schema::parse_str(text).map_err(|e| CliError::Refused(format!("schema {id} is not Avro: {e}")))?;
            self.schemas.insert(id, schema);
        }
        Ok(&self.schemas[&id])
    }
}

/// Encodes a JSON value with `schema` in Confluent's wire format.
pub fn encode_avro(schema: &Schema, id: i32, value: &Value) -> Result<Vec<u8>, String> {
    let avro = apache_avro::types::Value::from(value.clone()).resolve(schema).map_err(|e| format!("does not match the schema: {e}"))?;
    let body = apache_avro::to_avro_datum(schema, avro).map_err(|e| format!("does not match the schema: {e}"))?;
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(0);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a Confluent wire-format Protobuf value into JSON.
pub fn decode_protobuf(client: &mut RegistryClient, bytes: &[u8]) -> Result<Value, CliError> {
    let (id, indexes, body) = crate::protobuf::split(bytes).map_err(CliError::Refused)?;
    let (source, references) = client.source(id)?;
    crate::protobuf::decode(&source, &references, &indexes, body).map_err(|e| CliError::Refused(format!("schema {id}: {e}")))
}

/// Decodes a Confluent wire-format Avro value into JSON.
pub fn decode_avro(client: &mut RegistryClient, bytes: &[u8]) -> Result<Value, CliError> {
    if bytes.len() < 5 || bytes[0] != 0 {
        return Err(CliError::Refused("value is not in the schema registry's wire format (magic byte 0 and a schema id)".into()));
    }
    let id = i32::from_be_bytes(bytes[1..5].try_into().expect("4 bytes"));
    let schema = client.schema(id)?;
    let mut body = &bytes[5..];
    let value = apache_avro::from_avro_datum(schema, &mut body, None).map_err(|e| CliError::Refused(format!("cannot decode with schema {id}: {e}")))?;
    Value::try_from(value).map_err(|e| CliError::Refused(format!("cannot show schema {id}'s value as JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_round_trips_and_mismatches_are_errors() {
        let schema = Schema::parse_str(r#"{"type":"record","name":"R","fields":[{"name":"vendor_id","type":"int"},{"name":"fare","type":"float"},{"name":"zone","type":["null","long"],"default":null}]}"#).unwrap();
        let value = json!({"vendor_id": 2, "fare": 8.5, "zone": null});
        let bytes = encode_avro(&schema, 7, &value).unwrap();
        assert_eq!(&bytes[..5], &[0, 0, 0, 0, 7]);
        let decoded = apache_avro::from_avro_datum(&schema, &mut &bytes[5..], None).unwrap();
        assert_eq!(Value::try_from(decoded).unwrap()["vendor_id"], 2);
        assert!(encode_avro(&schema, 7, &json!({"vendor_id": "two", "fare": 1.0, "zone": null})).is_err());
        assert!(encode_avro(&schema, 7, &json!({"fare": 1.0})).is_err());
    }
}
