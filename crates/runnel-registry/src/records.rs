//! Events as `_schemas` records, in Confluent Schema Registry's key and
//! value JSON, so the topic is readable by Confluent's tools and the other
//! way round.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::compat::Compatibility;
use crate::registry::{Event, Mode, Reference};
use crate::schema::SchemaType;

#[derive(Serialize, Deserialize)]
struct SchemaValue {
    subject: String,
    version: i32,
    id: i32,
    schema: String,
    #[serde(rename = "schemaType", default, skip_serializing_if = "Option::is_none")]
    schema_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    references: Vec<Reference>,
    #[serde(default)]
    deleted: bool,
}

/// The record key and (for all but tombstones) value of an event.
pub fn encode(event: &Event) -> (String, Option<String>) {
    match event {
        Event::Schema { subject, version, id, schema, schema_type, references, deleted } => {
            let key = json!({"keytype": "SCHEMA", "subject": subject, "version": version, "magic": 1});
            let value = SchemaValue {
                subject: subject.clone(),
                version: *version,
                id: *id,
                schema: schema.clone(),
                schema_type: (*schema_type != SchemaType::Avro).then(|| schema_type.to_string()),
                references: references.clone(),
                deleted: *deleted,
            };
            (key.to_string(), Some(serde_json::to_string(&value).expect("serialisable")))
        }
        Event::SchemaGone { subject, version } => (json!({"keytype": "SCHEMA", "subject": subject, "version": version, "magic": 1}).to_string(), None),
        Event::Config { subject, level } => {
            (json!({"keytype": "CONFIG", "subject": subject, "magic": 0}).to_string(), level.map(|l| json!({"compatibilityLevel": l.to_string()}).to_string()))
        }
        Event::Mode { subject, mode } => {
            (json!({"keytype": "MODE", "subject": subject, "magic": 0}).to_string(), mode.map(|m| json!({"mode": m.as_str()}).to_string()))
        }
    }
}

/// Decodes a record back into an event; `None` for kinds this registry
/// does not use (such as NOOP) or damaged records.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<Event> {
    let key: Value = serde_json::from_slice(key).ok()?;
    let subject = key.get("subject").and_then(Value::as_str).map(str::to_string);
    match key.get("keytype")?.as_str()? {
        "SCHEMA" => {
            let subject = subject?;
            let version = key.get("version")?.as_i64()? as i32;
            match value {
                None => Some(Event::SchemaGone { subject, version }),
                Some(bytes) => {
                    let v: SchemaValue = serde_json::from_slice(bytes).ok()?;
                    let schema_type = v.schema_type.as_deref().unwrap_or("AVRO").parse().ok()?;
                    Some(Event::Schema {
                        subject: v.subject,
                        version: v.version,
                        id: v.id,
                        schema: v.schema,
                        schema_type,
                        references: v.references,
                        deleted: v.deleted,
                    })
                }
            }
        }
        "CONFIG" => {
            let level = match value {
                None => None,
                Some(bytes) => Some(serde_json::from_slice::<Value>(bytes).ok()?.get("compatibilityLevel")?.as_str()?.parse::<Compatibility>().ok()?),
            };
            Some(Event::Config { subject, level })
        }
        "MODE" => {
            let mode = match value {
                None => None,
                Some(bytes) => Some(serde_json::from_slice::<Value>(bytes).ok()?.get("mode")?.as_str()?.parse::<Mode>().ok()?),
            };
            Some(Event::Mode { subject, mode })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_records() {
        let events = [
            Event::Schema {
                subject: "s".into(),
                version: 2,
                id: 7,
                schema: "\"int\"".into(),
                schema_type: SchemaType::Avro,
                references: vec![],
                deleted: false,
            },
            Event::Schema {
                subject: "j".into(),
                version: 1,
                id: 8,
                schema: "{}".into(),
                schema_type: SchemaType::Json,
                references: vec![Reference { name: "a".into(), subject: "b".into(), version: 1 }],
                deleted: true,
            },
            Event::SchemaGone { subject: "s".into(), version: 2 },
            Event::Config { subject: None, level: Some(Compatibility::FullTransitive) },
            Event::Config { subject: Some("s".into()), level: None },
            Event::Mode { subject: Some("s".into()), mode: Some(Mode::ReadOnly) },
        ];
        for event in events {
            let (key, value) = encode(&event);
            assert_eq!(decode(key.as_bytes(), value.as_deref().map(str::as_bytes)), Some(event));
        }
        assert_eq!(decode(b"{\"keytype\":\"NOOP\"}", None), None);
        assert_eq!(decode(b"not json", None), None);
    }
}
