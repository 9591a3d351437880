//! Protobuf values in Confluent's wire format: magic byte 0, a 4-byte
//! schema id, the message indexes (which message of the schema file), then
//! the protobuf-encoded message. Messages are built from JSON and shown as
//! JSON through `prost-reflect`, with schemas compiled by `protox`.

use std::collections::HashMap;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use runnel_streams::registry::{message_indexes, put_message_indexes, split_wire, take_message_indexes, wire};
use serde_json::Value;

const MAIN_FILE: &str = "schema.proto";

/// Schema sources by import name.
struct Sources(HashMap<String, String>);

impl FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.get(name) {
            Some(source) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// A compiled schema file and one of its messages.
pub struct ProtoSchema {
    message: MessageDescriptor,
    /// Path of indexes from the file's top-level messages to `message`.
    indexes: Vec<i64>,
}

/// Compiles `source` (with `references`: import name → source).
fn compile(source: &str, references: &[(String, String)]) -> Result<DescriptorPool, String> {
    let mut sources: HashMap<String, String> = references.iter().cloned().collect();
    sources.insert(MAIN_FILE.to_string(), source.to_string());
    let mut resolver = ChainFileResolver::new();
    resolver.add(Sources(sources));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.open_file(MAIN_FILE).map_err(|e| e.to_string())?;
    Ok(compiler.descriptor_pool())
}

/// The message at `indexes` (a path from the file's top-level messages).
fn message_at(pool: &DescriptorPool, indexes: &[i64]) -> Result<MessageDescriptor, String> {
    let file = pool.get_file_by_name(MAIN_FILE).ok_or("the schema file did not compile")?;
    let mut candidates: Vec<MessageDescriptor> = file.messages().collect();
    let mut message = None;
    for index in indexes {
        let found =
            usize::try_from(*index).ok().and_then(|i| candidates.get(i).cloned()).ok_or_else(|| format!("the schema has no message at index {index}"))?;
        candidates = found.child_messages().collect();
        message = Some(found);
    }
    message.ok_or_else(|| "no message index".to_string())
}

impl ProtoSchema {
    /// The schema's `message` (or its first message).
    pub fn new(source: &str, references: &[(String, String)], message: Option<&str>) -> Result<ProtoSchema, String> {
        let pool = compile(source, references)?;
        let indexes = message_indexes(source, message).map_err(|e| e.to_string())?;
        Ok(ProtoSchema { message: message_at(&pool, &indexes)?, indexes })
    }

    /// Encodes a JSON value as this message, in the wire format.
    pub fn encode(&self, id: i32, value: &Value) -> Result<Vec<u8>, String> {
        let message = DynamicMessage::deserialize(self.message.clone(), value).map_err(|e| format!("does not match the schema: {e}"))?;
        let mut out = wire(id, &[]);
        put_message_indexes(&mut out, &self.indexes);
        message.encode(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }
}

/// Splits a wire-format value into schema id, message indexes and body.
pub fn split(bytes: &[u8]) -> Result<(i32, Vec<i64>, &[u8]), String> {
    let (id, body) = split_wire(bytes).map_err(|e| format!("value is not in the schema registry's wire format: {e}"))?;
    let (indexes, message) = take_message_indexes(body).map_err(|e| e.to_string())?;
    Ok((id, indexes, message))
}

/// Decodes a message body with `source`'s message at `indexes` into JSON.
pub fn decode(source: &str, references: &[(String, String)], indexes: &[i64], body: &[u8]) -> Result<Value, String> {
    let message = message_at(&compile(source, references)?, indexes)?;
    let decoded = DynamicMessage::decode(message, body).map_err(|e| format!("cannot decode: {e}"))?;
    serde_json::to_value(&decoded).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "syntax = \"proto3\"; package taxi; message Ride { int32 vendor_id = 1; float total = 2; message Stop { int32 zone = 1; } } message Zone { string name = 1; }";

    #[test]
    fn first_and_nested_messages_round_trip() {
        let ride = ProtoSchema::new(SCHEMA, &[], None).unwrap();
        let bytes = ride.encode(3, &serde_json::json!({"vendorId": 2, "total": 9.5})).unwrap();
        assert_eq!(&bytes[..6], &[0, 0, 0, 0, 3, 0], "the first message is index [0], written as one 0 byte");
        let (id, indexes, body) = split(&bytes).unwrap();
        assert_eq!((id, indexes.clone()), (3, vec![0]));
        assert_eq!(decode(SCHEMA, &[], &indexes, body).unwrap(), serde_json::json!({"vendorId": 2, "total": 9.5}));

        let stop = ProtoSchema::new(SCHEMA, &[], Some("Stop")).unwrap();
        let bytes = stop.encode(3, &serde_json::json!({"zone": 7})).unwrap();
        let (_, indexes, body) = split(&bytes).unwrap();
        assert_eq!(indexes, vec![0, 0]);
        assert_eq!(decode(SCHEMA, &[], &indexes, body).unwrap()["zone"], 7);
        assert!(ride.encode(3, &serde_json::json!({"vendorId": "two"})).is_err());
        assert!(ProtoSchema::new(SCHEMA, &[], Some("Missing")).is_err());
        assert!(split(&[0, 0, 0, 0, 3]).is_err());
    }
}
