//! Schema formats: parsing, validation and the canonical form used to
//! recognise a schema registered before.

use std::fmt;
use std::str::FromStr;

use apache_avro::Schema as AvroSchema;
use serde_json::Value;

use crate::error::RegistryError;

/// The formats the registry accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaType {
    Avro,
    Json,
    Protobuf,
}

impl FromStr for SchemaType {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, RegistryError> {
        match s.to_ascii_uppercase().as_str() {
            "AVRO" | "" => Ok(SchemaType::Avro),
            "JSON" => Ok(SchemaType::Json),
            "PROTOBUF" => Ok(SchemaType::Protobuf),
            other => Err(RegistryError::InvalidSchema(format!("unknown schema type {other}; use AVRO, JSON or PROTOBUF"))),
        }
    }
}

impl fmt::Display for SchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        })
    }
}

/// A parsed schema.
#[derive(Debug, Clone)]
pub enum Parsed {
    Avro(AvroSchema),
    Json(Value),
    Protobuf(Box<prost_types::FileDescriptorProto>),
}

impl Parsed {
    /// Parses `text`; `references` are the texts of schemas it names.
    pub fn parse(schema_type: SchemaType, text: &str, references: &[String]) -> Result<Parsed, RegistryError> {
        match schema_type {
            SchemaType::Avro => {
                let parsed = if references.is_empty() {
                    AvroSchema::parse_str(text)
                } else {
                    let refs: Vec<&str> = references.iter().map(String::as_str).collect();
                    AvroSchema::parse_str_with_list(text, &refs).map(|(schema, _)| schema)
                };
                parsed.map(Parsed::Avro).map_err(|e| RegistryError::InvalidSchema(e.to_string()))
            }
            SchemaType::Json => {
                let value: Value = serde_json::from_str(text).map_err(|e| RegistryError::InvalidSchema(format!("not JSON: {e}")))?;
                if !(value.is_object() || value.is_boolean()) {
                    return Err(RegistryError::InvalidSchema("a JSON Schema is an object or a boolean".into()));
                }
                Ok(Parsed::Json(value))
            }
            SchemaType::Protobuf => {
                // Imports name other subjects' schemas; they are parsed (so
                // must be valid) but types are matched by name only.
                for (i, reference) in references.iter().enumerate() {
                    protox_parse::parse(&format!("reference{i}.proto"), reference).map_err(|e| RegistryError::InvalidSchema(format!("reference: {e}")))?;
                }
                let mut file = protox_parse::parse("schema.proto", text).map_err(|e| RegistryError::InvalidSchema(e.to_string()))?;
                // Source positions differ with whitespace; the canonical
                // form must not.
                file.source_code_info = None;
                Ok(Parsed::Protobuf(Box::new(file)))
            }
        }
    }

    /// The form two registrations are compared by: Avro's Parsing Canonical
    /// Form, or JSON with sorted keys and no whitespace.
    pub fn canonical(&self) -> String {
        match self {
            Parsed::Avro(schema) => schema.canonical_form(),
            Parsed::Json(value) => value.to_string(),
            Parsed::Protobuf(file) => format!("{file:?}"),
        }
    }
}
