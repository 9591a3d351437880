//! Values through a Confluent-compatible Schema Registry (runnel's, on
//! port 8081, or Confluent's), in Confluent's wire format: magic byte 0,
//! the schema's id (4 bytes, big-endian), then the value — Avro-encoded
//! ([`AvroSerde`]), JSON ([`JsonSchemaSerde`]), or the message indexes and
//! a Protobuf message ([`ProtobufSerde`]). Topics written this way are
//! read by confluent-kafka's and the Java clients' deserializers, and the
//! reverse. The wire format's pieces are public functions for other
//! readers and writers of it.

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
    call_allowing_missing(base, method, path, body)?.ok_or_else(|| registry_error(format!("schema registry answered 404 to {path}")))
}

/// [`call`], with a 404 answer (no such subject, version or id) as `None`.
fn call_allowing_missing(base: &str, method: &str, path: &str, body: Option<Value>) -> Result<Option<Value>, SerdeError> {
    let url = format!("{base}{path}");
    let request = ureq::request(method, &url).set("Content-Type", "application/vnd.schemaregistry.v1+json");
    let result = match body {
        Some(body) => request.send_json(body),
        None => request.call(),
    };
    match result {
        Ok(response) => response.into_json().map(Some).map_err(|e| registry_error(format!("bad answer from {url}: {e}"))),
        Err(ureq::Error::Status(404, _)) => Ok(None),
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

/// A schema as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSchema {
    /// Its id, the one values in the wire format carry.
    pub id: i32,
    /// `AVRO`, `PROTOBUF` or `JSON`.
    pub schema_type: String,
    /// The schema's text.
    pub schema: String,
}

impl RegisteredSchema {
    fn from_answer(id: i32, answer: &Value) -> RegisteredSchema {
        RegisteredSchema {
            id,
            schema_type: answer["schemaType"].as_str().unwrap_or("AVRO").to_string(),
            schema: answer["schema"].as_str().unwrap_or_default().to_string(),
        }
    }
}

/// A Schema Registry's REST API, for programs that look schemas up by
/// subject or id and register their own (the serdes above register
/// theirs when they are made).
#[derive(Debug, Clone)]
pub struct RegistryClient {
    base: String,
}

impl RegistryClient {
    /// The registry at `url` (`http://localhost:8081`).
    pub fn new(url: &str) -> RegistryClient {
        RegistryClient { base: url.trim_end_matches('/').to_string() }
    }

    /// Registers `schema` of `schema_type` under `subject`; returns its id
    /// (the existing one if the subject already has this schema).
    pub fn register(&self, subject: &str, schema_type: &str, schema: &str) -> Result<i32, SerdeError> {
        register(&self.base, subject, schema, schema_type)
    }

    /// The latest schema of `subject`, if the subject exists.
    pub fn latest(&self, subject: &str) -> Result<Option<RegisteredSchema>, SerdeError> {
        let answer = call_allowing_missing(&self.base, "GET", &format!("/subjects/{subject}/versions/latest"), None)?;
        Ok(answer.map(|answer| RegisteredSchema::from_answer(answer["id"].as_i64().unwrap_or(-1) as i32, &answer)))
    }

    /// Schema `id`.
    pub fn schema(&self, id: i32) -> Result<RegisteredSchema, SerdeError> {
        let answer = call(&self.base, "GET", &format!("/schemas/ids/{id}"), None)?;
        Ok(RegisteredSchema::from_answer(id, &answer))
    }
}

/// The schema id and body of a value in Confluent's wire format.
pub fn split_wire(bytes: &[u8]) -> Result<(i32, &[u8]), SerdeError> {
    let (header, body) =
        bytes.split_at_checked(5).filter(|(h, _)| h[0] == 0).ok_or(SerdeError::Length { expected: "magic byte 0 and a schema id", got: bytes.len() })?;
    Ok((i32::from_be_bytes(header[1..5].try_into().expect("4 bytes")), body))
}

/// `body` after magic byte 0 and schema `id`.
pub fn wire(id: i32, body: &[u8]) -> Vec<u8> {
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
        let (id, mut body) = split_wire(bytes.ok_or(SerdeError::Null)?)?;
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

/// Appends the message indexes of Confluent's Protobuf wire format: the
/// path from the schema file's top-level messages to the message, as a
/// count and the indexes in zigzag varints, with the first message (`[0]`)
/// written as a single 0.
pub fn put_message_indexes(out: &mut Vec<u8>, indexes: &[i64]) {
    let zigzag = |value: i64| ((value << 1) ^ (value >> 63)) as u64;
    if indexes == [0] {
        out.push(0);
        return;
    }
    prost::encoding::encode_varint(zigzag(indexes.len() as i64), out);
    for index in indexes {
        prost::encoding::encode_varint(zigzag(*index), out);
    }
}

/// Reads the message indexes at the front of a Protobuf value's body (see
/// [`put_message_indexes`]); returns them and the message's bytes.
pub fn take_message_indexes(mut body: &[u8]) -> Result<(Vec<i64>, &[u8]), SerdeError> {
    let truncated = || SerdeError::Length { expected: "message indexes", got: 0 };
    let next = |body: &mut &[u8]| {
        let value = prost::encoding::decode_varint(body).map_err(|_| truncated())?;
        Ok::<i64, SerdeError>(((value >> 1) as i64) ^ -((value & 1) as i64))
    };
    let count = next(&mut body)?;
    if count == 0 {
        return Ok((vec![0], body));
    }
    if !(1..=64).contains(&count) {
        return Err(SerdeError::Length { expected: "1 to 64 message indexes", got: count.max(0) as usize });
    }
    let indexes = (0..count).map(|_| next(&mut body)).collect::<Result<Vec<_>, _>>()?;
    Ok((indexes, body))
}

/// The message indexes of `message` in the Protobuf schema file `source`:
/// `message` is a name, a dotted path from a top-level message, or a full
/// name with the package; `None` is the file's first message.
pub fn message_indexes(source: &str, message: Option<&str>) -> Result<Vec<i64>, SerdeError> {
    let file = protox_parse::parse(PROTO_FILE, source).map_err(|e| registry_error(format!("not a Protobuf schema: {e}")))?;
    let Some(wanted) = message else {
        return if file.message_type.is_empty() { Err(registry_error("the schema defines no message")) } else { Ok(vec![0]) };
    };
    fn search(messages: &[prost_types::DescriptorProto], prefix: &str, wanted: &str, path: &mut Vec<i64>) -> bool {
        for (i, message) in messages.iter().enumerate() {
            let name = message.name();
            let full = if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") };
            path.push(i as i64);
            if name == wanted || full == wanted || search(&message.nested_type, &full, wanted, path) {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut path = Vec::new();
    let wanted = file.package.as_deref().and_then(|package| wanted.strip_prefix(package)?.strip_prefix('.')).unwrap_or(wanted);
    if search(&file.message_type, "", wanted, &mut path) {
        Ok(path)
    } else {
        Err(registry_error(format!("the schema has no message {wanted}")))
    }
}

/// The name a schema's main file compiles under.
const PROTO_FILE: &str = "schema.proto";

/// Schema sources by import name.
struct ProtoSources(HashMap<String, String>);

impl protox::file::FileResolver for ProtoSources {
    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        match self.0.get(name) {
            Some(source) => protox::file::File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// Compiles a Protobuf schema file, with `references` (import name →
/// source) and Google's well-known types, into descriptors that read and
/// write messages without generated code.
pub fn compile_protobuf(source: &str, references: &[(String, String)]) -> Result<prost_reflect::DescriptorPool, SerdeError> {
    let mut sources: HashMap<String, String> = references.iter().cloned().collect();
    sources.insert(PROTO_FILE.to_string(), source.to_string());
    let mut resolver = protox::file::ChainFileResolver::new();
    resolver.add(ProtoSources(sources));
    resolver.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.open_file(PROTO_FILE).map_err(|e| registry_error(format!("not a Protobuf schema: {e}")))?;
    Ok(compiler.descriptor_pool())
}

/// The message at `indexes` (a path from the top-level messages) of a
/// schema compiled by [`compile_protobuf`].
pub fn protobuf_message(pool: &prost_reflect::DescriptorPool, indexes: &[i64]) -> Result<prost_reflect::MessageDescriptor, SerdeError> {
    let file = pool.get_file_by_name(PROTO_FILE).ok_or_else(|| registry_error("the schema file did not compile"))?;
    let mut candidates: Vec<prost_reflect::MessageDescriptor> = file.messages().collect();
    let mut message = None;
    for index in indexes {
        let found = usize::try_from(*index)
            .ok()
            .and_then(|i| candidates.get(i).cloned())
            .ok_or_else(|| registry_error(format!("the schema has no message at index {index}")))?;
        candidates = found.child_messages().collect();
        message = Some(found);
    }
    message.ok_or_else(|| registry_error("no message index"))
}

/// A serde for a Protobuf message type `M` (a `prost` message, generated
/// from the schema by `prost-build` or derived by hand), its schema file
/// registered in a Schema Registry (Confluent's
/// `KafkaProtobufSerializer` format).
pub struct ProtobufSerde<M> {
    id: i32,
    indexes: Vec<i64>,
    _type: PhantomData<fn() -> M>,
}

impl<M> ProtobufSerde<M> {
    /// Registers `schema` (a `.proto` file's text) under `subject` in the
    /// registry at `registry_url` and returns a serde writing values as
    /// its message `message` (see [`message_indexes`]; `None`: the first).
    pub fn register(registry_url: &str, subject: &str, schema: &str, message: Option<&str>) -> Result<ProtobufSerde<M>, SerdeError> {
        let indexes = message_indexes(schema, message)?;
        let id = register(registry_url.trim_end_matches('/'), subject, schema, "PROTOBUF")?;
        Ok(ProtobufSerde { id, indexes, _type: PhantomData })
    }

    /// The id the registry gave the schema.
    pub fn schema_id(&self) -> i32 {
        self.id
    }
}

impl<M: prost::Message + Default + 'static> Serde for ProtobufSerde<M> {
    type Value = M;

    fn serialize(&self, value: &M) -> Option<Vec<u8>> {
        let mut out = wire(self.id, &[]);
        put_message_indexes(&mut out, &self.indexes);
        value.encode(&mut out).ok()?;
        Some(out)
    }

    /// Reads a message written with any registered schema: Protobuf
    /// matches fields by number, so older and newer writers' messages
    /// read as far as their fields agree.
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<M, SerdeError> {
        let (_, body) = split_wire(bytes.ok_or(SerdeError::Null)?)?;
        let (_, message) = take_message_indexes(body)?;
        M::decode(message).map_err(|e| registry_error(format!("not a {} message: {e}", std::any::type_name::<M>())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str =
        "syntax = \"proto3\"; package taxi; message Ride { int32 vendor_id = 1; message Stop { int32 zone = 1; } } message Zone { string name = 1; }";

    #[test]
    fn messages_are_found_by_name_path_or_full_name() {
        assert_eq!(message_indexes(SCHEMA, None).unwrap(), [0]);
        assert_eq!(message_indexes(SCHEMA, Some("Zone")).unwrap(), [1]);
        assert_eq!(message_indexes(SCHEMA, Some("Stop")).unwrap(), [0, 0]);
        assert_eq!(message_indexes(SCHEMA, Some("Ride.Stop")).unwrap(), [0, 0]);
        assert_eq!(message_indexes(SCHEMA, Some("taxi.Ride.Stop")).unwrap(), [0, 0]);
        assert!(message_indexes(SCHEMA, Some("Missing")).is_err());
        assert!(message_indexes("message {", None).is_err());
    }

    #[test]
    fn message_indexes_are_written_as_confluent_s_serializer_writes_them() {
        let written = |indexes: &[i64]| {
            let mut out = Vec::new();
            put_message_indexes(&mut out, indexes);
            out
        };
        assert_eq!(written(&[0]), [0]);
        assert_eq!(written(&[1]), [2, 2]);
        assert_eq!(written(&[1, 0]), [4, 2, 0]);
        for indexes in [vec![0], vec![1], vec![0, 0], vec![3, 70, 2]] {
            let mut bytes = written(&indexes);
            bytes.extend_from_slice(b"rest");
            assert_eq!(take_message_indexes(&bytes).unwrap(), (indexes, &b"rest"[..]));
        }
        assert!(take_message_indexes(&[]).is_err());
        assert!(take_message_indexes(&[4, 2]).is_err(), "two indexes announced, one written");
        assert!(take_message_indexes(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
