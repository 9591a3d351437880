//! Protobuf values in Confluent's wire format: magic byte 0, a 4-byte
//! schema id, the message indexes (which message of the schema file), then
//! the protobuf-encoded message. Messages are built from JSON and shown as
//! JSON through `prost-reflect`, with schemas compiled by `protox`.

use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use runnel_streams::registry::{compile_protobuf, message_indexes, protobuf_message, put_message_indexes, split_wire, take_message_indexes, wire};
use serde_json::Value;

/// A compiled schema file and one of its messages.
pub struct ProtoSchema {
    message: MessageDescriptor,
    /// Path of indexes from the file's top-level messages to `message`.
    indexes: Vec<i64>,
}

/// The message at `indexes` of `source` compiled with `references`.
fn compiled_message(source: &str, references: &[(String, String)], indexes: &[i64]) -> Result<MessageDescriptor, String> {
    let pool = compile_protobuf(source, references).map_err(|e| e.to_string())?;
    protobuf_message(&pool, indexes).map_err(|e| e.to_string())
}

impl ProtoSchema {
    /// The schema's `message` (or its first message).
    pub fn new(source: &str, references: &[(String, String)], message: Option<&str>) -> Result<ProtoSchema, String> {
        let indexes = message_indexes(source, message).map_err(|e| e.to_string())?;
        Ok(ProtoSchema { message: compiled_message(source, references, &indexes)?, indexes })
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
    let message = compiled_message(source, references, indexes)?;
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
