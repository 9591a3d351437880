//! Compatibility levels and the Avro checker. Pure: schemas in, verdicts
//! and messages out.
//!
//! Reading rules are Avro's schema resolution, as implemented by the
//! `apache-avro` crate: BACKWARD means the new schema can read data
//! written with the old one; FORWARD, the other way round; FULL, both.

use std::fmt;
use std::str::FromStr;

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;

/// A subject's (or the registry's) compatibility level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compatibility {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Compatibility {
    /// Whether every earlier version is checked, or only the latest.
    pub fn transitive(self) -> bool {
        matches!(self, Compatibility::BackwardTransitive | Compatibility::ForwardTransitive | Compatibility::FullTransitive)
    }

    fn backward(self) -> bool {
        matches!(self, Compatibility::Backward | Compatibility::BackwardTransitive | Compatibility::Full | Compatibility::FullTransitive)
    }

    fn forward(self) -> bool {
        matches!(self, Compatibility::Forward | Compatibility::ForwardTransitive | Compatibility::Full | Compatibility::FullTransitive)
    }
}

impl FromStr for Compatibility {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "NONE" => Compatibility::None,
            "BACKWARD" => Compatibility::Backward,
            "BACKWARD_TRANSITIVE" => Compatibility::BackwardTransitive,
            "FORWARD" => Compatibility::Forward,
            "FORWARD_TRANSITIVE" => Compatibility::ForwardTransitive,
            "FULL" => Compatibility::Full,
            "FULL_TRANSITIVE" => Compatibility::FullTransitive,
            _ => return Err(()),
        })
    }
}

impl fmt::Display for Compatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compatibility::None => "NONE",
            Compatibility::Backward => "BACKWARD",
            Compatibility::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Compatibility::Forward => "FORWARD",
            Compatibility::ForwardTransitive => "FORWARD_TRANSITIVE",
            Compatibility::Full => "FULL",
            Compatibility::FullTransitive => "FULL_TRANSITIVE",
        })
    }
}

/// Runs a format's reader check against the earlier versions (oldest
/// first) that `level` selects: the latest, or all when transitive.
/// `problems(reader, writer)` lists why data written with `writer` cannot
/// be read with `reader`. Returns one message per incompatibility.
fn check_levels<S>(new: &S, earlier: &[(i32, S)], level: Compatibility, problems: impl Fn(&S, &S) -> Vec<String>) -> Vec<String> {
    if level == Compatibility::None {
        return Vec::new();
    }
    let against: &[(i32, S)] = if level.transitive() { earlier } else { earlier.last().map_or(&[], std::slice::from_ref) };
    let mut messages = Vec::new();
    for (version, old) in against {
        if level.backward() {
            messages.extend(problems(new, old).into_iter().map(|p| format!("BACKWARD: version {version}: {p}")));
        }
        if level.forward() {
            messages.extend(problems(old, new).into_iter().map(|p| format!("FORWARD: version {version}: {p}")));
        }
    }
    messages
}

/// Checks an Avro schema against earlier versions at `level`.
pub fn check_avro(new: &Schema, earlier: &[(i32, Schema)], level: Compatibility) -> Vec<String> {
    check_levels(new, earlier, level, |reader, writer| match SchemaCompatibility::can_read(writer, reader) {
        Ok(()) => Vec::new(),
        Err(e) => vec![e.to_string()],
    })
}

/// Checks a JSON Schema the same way: BACKWARD means data valid under the
/// old schema stays valid under the new one. Covers the common cases:
/// properties added or removed, `required`, open or closed content models
/// and type changes of a property.
pub fn check_json(new: &serde_json::Value, earlier: &[(i32, serde_json::Value)], level: Compatibility) -> Vec<String> {
    check_levels(new, earlier, level, json_reader_problems)
}

/// Why data valid under `writer` might be invalid under `reader`.
fn json_reader_problems(reader: &serde_json::Value, writer: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    let props = |s: &Value| s.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    let required = |s: &Value| -> Vec<String> {
        s.get("required").and_then(Value::as_array).map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default()
    };
    let closed = |s: &Value| s.get("additionalProperties") == Some(&Value::Bool(false));
    let type_of = |s: &Value| s.get("type").cloned();
    let mut problems = Vec::new();
    if let (Some(r), Some(w)) = (type_of(reader), type_of(writer)) {
        let widening = r == "number" && w == "integer";
        if r != w && !widening {
            problems.push(format!("TYPE_CHANGED: type {w} became {r}"));
        }
    }
    let (reader_props, writer_props) = (props(reader), props(writer));
    for name in writer_props.keys() {
        if !reader_props.contains_key(name) && closed(reader) {
            problems.push(format!("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL: {name}"));
        }
    }
    let writer_required = required(writer);
    for name in required(reader) {
        if !writer_required.contains(&name) {
            problems.push(format!("REQUIRED_PROPERTY_ADDED: {name} is required by the reader but optional or absent for the writer"));
        }
    }
    for (name, reader_prop) in &reader_props {
        if let Some(writer_prop) = writer_props.get(name) {
            problems.extend(json_reader_problems(reader_prop, writer_prop).into_iter().map(|p| format!("{name}: {p}")));
        }
    }
    problems
}

/// Checks a Protobuf schema: data written with the writer's messages must
/// parse with the reader's. Fields are matched by number; removing one is
/// fine (readers skip unknown fields), changing its wire type or label is
/// not, and neither is removing a message or adding a proto2 `required`
/// field.
pub fn check_protobuf(new: &prost_types::FileDescriptorProto, earlier: &[(i32, prost_types::FileDescriptorProto)], level: Compatibility) -> Vec<String> {
    check_levels(new, earlier, level, protobuf_reader_problems)
}

fn flatten_messages<'a>(prefix: &str, messages: &'a [prost_types::DescriptorProto], out: &mut Vec<(String, &'a prost_types::DescriptorProto)>) {
    for message in messages {
        let name = format!("{prefix}.{}", message.name());
        flatten_messages(&name, &message.nested_type, out);
        out.push((name, message));
    }
}

/// The wire encoding a field type uses; types sharing one can be read as
/// each other.
fn wire_kind(field: &prost_types::FieldDescriptorProto) -> String {
    use prost_types::field_descriptor_proto::Type;
    match field.r#type() {
        Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 | Type::Bool | Type::Enum => "varint".into(),
        Type::Sint32 | Type::Sint64 => "zigzag".into(),
        Type::Fixed32 | Type::Sfixed32 | Type::Float => "fixed32".into(),
        Type::Fixed64 | Type::Sfixed64 | Type::Double => "fixed64".into(),
        Type::String | Type::Bytes => "bytes".into(),
        Type::Message | Type::Group => format!("message {}", field.type_name().trim_start_matches('.').rsplit('.').next().unwrap_or_default()),
    }
}

fn protobuf_reader_problems(reader: &prost_types::FileDescriptorProto, writer: &prost_types::FileDescriptorProto) -> Vec<String> {
    use prost_types::field_descriptor_proto::Label;
    let (mut readers, mut writers) = (Vec::new(), Vec::new());
    flatten_messages(reader.package(), &reader.message_type, &mut readers);
    flatten_messages(writer.package(), &writer.message_type, &mut writers);
    let mut problems = Vec::new();
    for (name, written) in &writers {
        let Some((_, read)) = readers.iter().find(|(n, _)| n == name) else {
            problems.push(format!("MESSAGE_REMOVED: {}", name.trim_start_matches('.')));
            continue;
        };
        for field in &read.field {
            match written.field.iter().find(|f| f.number() == field.number()) {
                Some(old) => {
                    if wire_kind(old) != wire_kind(field) {
                        problems.push(format!(
                            "FIELD_KIND_CHANGED: field {} ({}) of {} changed from {} to {}",
                            field.name(),
                            field.number(),
                            name.trim_start_matches('.'),
                            wire_kind(old),
                            wire_kind(field)
                        ));
                    }
                    if (old.label() == Label::Repeated) != (field.label() == Label::Repeated) {
                        problems.push(format!("FIELD_LABEL_CHANGED: field {} ({}) of {}", field.name(), field.number(), name.trim_start_matches('.')));
                    }
                }
                None if field.label() == Label::Required => {
                    problems.push(format!("REQUIRED_FIELD_ADDED: field {} ({}) of {}", field.name(), field.number(), name.trim_start_matches('.')));
                }
                None => {}
            }
        }
    }
    problems
}
