//! Keys and values on the wire, in ksqlDB's formats: JSON, KAFKA (one
//! primitive in Kafka's serializer encoding), DELIMITED, NONE, and AVRO,
//! PROTOBUF and JSON_SR through a Schema Registry (see [`crate::schema`]).
//!
//! Reading follows ksqlDB's deserializers: JSON fields match columns
//! case-insensitively, a JSON number read into a `VARCHAR` becomes its
//! text, numbers written as text are read as numbers, and a field that
//! does not fit its column becomes NULL and is reported to the processing
//! log while the row carries on. Bytes that cannot be read at all make
//! the record undecodable.

use std::sync::Arc;

use runnel_streams::registry::split_wire;
use runnel_streams::serde::{Serde, SerdeError};
use serde_json::Value as Json;

use crate::error::SqlError;
use crate::functions::{base64_encode, write_json, write_json_string};
use crate::row::{Key, ProcessingLog, Row};
use crate::schema::{BoundSchema, LocalProtobuf};
use crate::time;
use crate::types::SqlType;
use crate::value::{Decimal, Value};

/// A wire format of keys or values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON object of the columns (or, for a key of one column, its
    /// JSON value).
    Json,
    /// One column in the Kafka serializers' encoding (`INT` 4 bytes,
    /// `BIGINT` and `DOUBLE` 8, big-endian; `STRING` UTF-8; `BYTES` raw).
    Kafka,
    /// Comma-separated columns.
    Delimited,
    /// No key.
    None,
    /// Avro, its schema in a Schema Registry.
    Avro,
    /// Protobuf, its schema in a Schema Registry.
    Protobuf,
    /// JSON, its JSON Schema in a Schema Registry.
    JsonSr,
    /// Protobuf without a registry: the message ksqlDB would register for
    /// the columns, without a schema id.
    ProtobufNoSr,
}

impl Format {
    /// The format named in a `WITH` clause.
    pub fn parse(name: &str) -> Result<Format, SqlError> {
        match name.to_uppercase().as_str() {
            "JSON" => Ok(Format::Json),
            "KAFKA" => Ok(Format::Kafka),
            "DELIMITED" => Ok(Format::Delimited),
            "NONE" => Ok(Format::None),
            "AVRO" => Ok(Format::Avro),
            "PROTOBUF" => Ok(Format::Protobuf),
            "JSON_SR" => Ok(Format::JsonSr),
            "PROTOBUF_NOSR" => Ok(Format::ProtobufNoSr),
            _ => Err(SqlError::invalid(format!("Unknown format: {name}"))),
        }
    }

    /// The name ksqlDB gives it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Kafka => "KAFKA",
            Format::Delimited => "DELIMITED",
            Format::None => "NONE",
            Format::Avro => "AVRO",
            Format::Protobuf => "PROTOBUF",
            Format::JsonSr => "JSON_SR",
            Format::ProtobufNoSr => "PROTOBUF_NOSR",
        }
    }

    /// Whether its schemas live in a Schema Registry.
    pub fn uses_registry(self) -> bool {
        self.schema_type().is_some()
    }

    /// The registry's name for the type of its schemas.
    pub fn schema_type(self) -> Option<&'static str> {
        match self {
            Format::Avro => Some("AVRO"),
            Format::Protobuf => Some("PROTOBUF"),
            Format::JsonSr => Some("JSON"),
            _ => None,
        }
    }

    /// Whether the format can carry these columns.
    pub fn check(self, columns: &[(String, SqlType)], what: &str) -> Result<(), SqlError> {
        match self {
            Format::Kafka if columns.len() > 1 => Err(SqlError::invalid(format!("The KAFKA format supports only one {what} column; use JSON or DELIMITED."))),
            Format::Kafka => match columns.first().map(|(_, t)| t) {
                None | Some(SqlType::Int | SqlType::Bigint | SqlType::Double | SqlType::String | SqlType::Bytes) => Ok(()),
                Some(other) => Err(SqlError::invalid(format!("The KAFKA format does not support the type {other}."))),
            },
            Format::Delimited => match columns.iter().find(|(_, t)| matches!(t, SqlType::Array(_) | SqlType::Map(..) | SqlType::Struct(_))) {
                Some((name, t)) => Err(SqlError::invalid(format!("The DELIMITED format does not support the type {t} of {name}."))),
                None => Ok(()),
            },
            Format::None if !columns.is_empty() => Err(SqlError::invalid(format!("The NONE format cannot have {what} columns."))),
            Format::ProtobufNoSr => LocalProtobuf::new(columns).map(|_| ()),
            _ => Ok(()),
        }
    }
}

/// Reads and writes rows of `columns` in a format; used for keys (as
/// [`KeySerde`]) and values (as [`RowSerde`]).
#[derive(Clone)]
pub struct RowFormat {
    format: Format,
    columns: Arc<Vec<(String, SqlType)>>,
    /// Whether a single-column key is written as the bare value (keys)
    /// rather than an object (values).
    unwrap_single: bool,
    log: Arc<ProcessingLog>,
    topic: Arc<str>,
    /// The columns a query reads, when it reads only some: the others are
    /// left NULL unread (JSON fields skipped without being decoded), and
    /// what they hold is not checked.
    read: Option<Arc<Vec<bool>>>,
    /// Each column's name as a JSON object key with its colon, written
    /// once rather than per record.
    json_keys: Arc<Vec<String>>,
    /// The registry schema of AVRO, PROTOBUF and JSON_SR rows.
    schema: Option<Arc<BoundSchema>>,
    /// The message of PROTOBUF_NOSR rows (`None` for other formats, or
    /// columns Protobuf cannot carry, which statements refuse first).
    local_protobuf: Option<Arc<LocalProtobuf>>,
}

/// The message of PROTOBUF_NOSR rows of `columns`.
fn local_protobuf(format: Format, columns: &[(String, SqlType)]) -> Option<Arc<LocalProtobuf>> {
    (format == Format::ProtobufNoSr).then(|| LocalProtobuf::new(columns).ok().map(Arc::new)).flatten()
}

/// `"NAME":` for each column.
fn json_keys(columns: &[(String, SqlType)]) -> Arc<Vec<String>> {
    Arc::new(
        columns
            .iter()
            .map(|(name, _)| {
                let mut key = String::new();
                write_json_string(name, &mut key);
                key.push(':');
                key
            })
            .collect(),
    )
}

impl RowFormat {
    /// The format of a key of `columns` on `topic`.
    pub fn key(format: Format, columns: Vec<(String, SqlType)>, topic: &str, log: Arc<ProcessingLog>) -> RowFormat {
        RowFormat::new(format, columns, topic, log, true)
    }

    /// The format of a value of `columns` on `topic`.
    pub fn value(format: Format, columns: Vec<(String, SqlType)>, topic: &str, log: Arc<ProcessingLog>) -> RowFormat {
        RowFormat::new(format, columns, topic, log, false)
    }

    fn new(format: Format, columns: Vec<(String, SqlType)>, topic: &str, log: Arc<ProcessingLog>, unwrap_single: bool) -> RowFormat {
        RowFormat {
            format,
            json_keys: json_keys(&columns),
            local_protobuf: local_protobuf(format, &columns),
            columns: Arc::new(columns),
            unwrap_single,
            log,
            topic: topic.into(),
            read: None,
            schema: None,
        }
    }

    /// The same format, reading only the columns marked in `read` (one
    /// flag per column) when it can skip the others cheaply.
    pub fn reading_only(self, read: Vec<bool>) -> RowFormat {
        let all = read.len() == self.columns.len() && read.iter().all(|r| *r);
        RowFormat { read: (!all).then(|| Arc::new(read)), ..self }
    }

    /// The same format, with the registry schema rows are written with
    /// and read through (for AVRO, PROTOBUF and JSON_SR).
    pub fn with_schema(self, schema: Option<Arc<BoundSchema>>) -> RowFormat {
        RowFormat { schema, ..self }
    }

    /// Whether a lone column is written bare rather than in a record;
    /// Protobuf has no bare values.
    fn single(&self) -> bool {
        self.unwrap_single && self.columns.len() == 1 && !matches!(self.format, Format::Protobuf | Format::ProtobufNoSr)
    }

    fn problem(&self, column: &str, message: impl std::fmt::Display) {
        self.log.record(format!("topic {}: column {column}: {message}", self.topic));
    }

    /// Bytes of a row; a row its registry schema cannot hold is reported
    /// to the processing log and written as nothing.
    pub fn write(&self, row: &[Value]) -> Option<Vec<u8>> {
        self.try_write(row).unwrap_or_else(|e| {
            self.problem("*", format!("cannot write the row: {e}"));
            None
        })
    }

    /// Bytes of a row, or why its registry schema cannot hold it.
    pub fn try_write(&self, row: &[Value]) -> Result<Option<Vec<u8>>, String> {
        Ok(match self.format {
            Format::None => None,
            Format::Kafka => match row.first() {
                None | Some(Value::Null) => None,
                Some(Value::Int(i)) => Some(i.to_be_bytes().to_vec()),
                Some(Value::Bigint(i)) => Some(i.to_be_bytes().to_vec()),
                Some(Value::Double(d)) => Some(d.to_be_bytes().to_vec()),
                Some(Value::Bytes(b)) => Some(b.clone()),
                Some(other) => Some(other.to_string().into_bytes()),
            },
            Format::Delimited => {
                let fields: Vec<String> = row.iter().map(delimited_field).collect();
                Some(fields.join(",").into_bytes())
            }
            Format::Json => {
                let mut out = String::with_capacity(16 * (self.columns.len() + 1));
                self.write_json_text(row, &mut out);
                Some(out.into_bytes())
            }
            Format::Avro | Format::Protobuf | Format::JsonSr => {
                let schema = self.schema.as_ref().ok_or_else(|| format!("topic {}: no schema to write with", self.topic))?;
                let written = schema.write(row, &self.columns, self.single(), |out| {
                    let mut text = String::with_capacity(16 * (self.columns.len() + 1));
                    self.write_json_text(row, &mut text);
                    out.extend_from_slice(text.as_bytes());
                });
                Some(written?)
            }
            Format::ProtobufNoSr => {
                let message = self.local_protobuf.as_ref().ok_or_else(|| format!("topic {}: these columns have no Protobuf message", self.topic))?;
                Some(message.write(row, &self.columns)?)
            }
        })
    }

    fn write_json_text(&self, row: &[Value], out: &mut String) {
        if self.unwrap_single && self.columns.len() == 1 {
            write_json(&row[0], out);
        } else {
            out.push('{');
            for (i, (key, value)) in self.json_keys.iter().zip(row).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(key);
                write_json(value, out);
            }
            out.push('}');
        }
    }

    /// A row from bytes. `None` bytes give `None` (a tombstone, or no key).
    pub fn read(&self, bytes: Option<&[u8]>) -> Result<Option<Row>, SerdeError> {
        let Some(bytes) = bytes else { return Ok(None) };
        match self.format {
            Format::None => Ok(Some(Vec::new())),
            Format::Kafka => {
                let Some((name, ty)) = self.columns.first() else { return Ok(Some(Vec::new())) };
                let value = match ty {
                    SqlType::Int => Value::Int(i32::from_be_bytes(bytes.try_into().map_err(|_| SerdeError::Length { expected: "4", got: bytes.len() })?)),
                    SqlType::Bigint => Value::Bigint(i64::from_be_bytes(bytes.try_into().map_err(|_| SerdeError::Length { expected: "8", got: bytes.len() })?)),
                    SqlType::Double => Value::Double(f64::from_be_bytes(bytes.try_into().map_err(|_| SerdeError::Length { expected: "8", got: bytes.len() })?)),
                    SqlType::Bytes => Value::Bytes(bytes.to_vec()),
                    _ => Value::String(String::from_utf8(bytes.to_vec()).map_err(|e| SerdeError::Utf8(format!("{name}: {e}")))?),
                };
                Ok(Some(vec![value]))
            }
            Format::Delimited => {
                let text = std::str::from_utf8(bytes).map_err(|e| SerdeError::Utf8(e.to_string()))?;
                let fields = split_delimited(text);
                if fields.len() != self.columns.len() {
                    return Err(SerdeError::Json(format!("expected {} delimited fields, got {}", self.columns.len(), fields.len())));
                }
                Ok(Some(self.columns.iter().zip(fields).map(|((name, ty), field)| self.read_text(name, ty, field)).collect()))
            }
            Format::Json => self.read_json_bytes(bytes).map(Some),
            Format::JsonSr => self.read_json_bytes(split_wire(bytes)?.1).map(Some),
            Format::Avro | Format::Protobuf | Format::ProtobufNoSr => {
                let columns = match (&self.local_protobuf, &self.schema) {
                    (Some(message), _) => message.read(bytes, &self.columns)?,
                    (None, Some(schema)) => schema.read(bytes, &self.columns, self.single())?,
                    (None, None) => return Err(SerdeError::Schema(format!("topic {}: no schema to read with", self.topic))),
                };
                Ok(Some(
                    self.columns
                        .iter()
                        .zip(columns)
                        .map(|((name, _), column)| {
                            column.unwrap_or_else(|e| {
                                self.problem(name, e);
                                Value::Null
                            })
                        })
                        .collect(),
                ))
            }
        }
    }

    /// A row from JSON.
    fn read_json_bytes(&self, bytes: &[u8]) -> Result<Row, SerdeError> {
        if !(self.unwrap_single && self.columns.len() == 1) {
            // The fast path: an object's fields read straight into
            // the columns, with no tree of the whole value; other
            // values take the path below, which explains them.
            if let Ok(fields) = read_object(bytes, &self.columns, self.read.as_deref().map(Vec::as_slice)) {
                return Ok(self
                    .columns
                    .iter()
                    .zip(fields)
                    .map(|((name, _), field)| match field {
                        Some(Ok(value)) => value,
                        Some(Err(message)) => {
                            self.problem(name, message);
                            Value::Null
                        }
                        None => Value::Null,
                    })
                    .collect());
            }
        }
        let json: Json = serde_json::from_slice(bytes).map_err(|e| SerdeError::Json(e.to_string()))?;
        if self.unwrap_single && self.columns.len() == 1 {
            let (name, ty) = &self.columns[0];
            return Ok(vec![self.read_json(name, ty, &json)]);
        }
        let Json::Object(fields) = &json else {
            return Err(SerdeError::Json(format!("expected a JSON object, got {json}")));
        };
        Ok(self
            .columns
            .iter()
            .map(|(name, ty)| {
                let field = fields.get(name).or_else(|| fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v));
                field.map_or(Value::Null, |f| self.read_json(name, ty, f))
            })
            .collect())
    }

    fn read_text(&self, column: &str, ty: &SqlType, text: String) -> Value {
        if text.is_empty() && *ty != SqlType::String {
            return Value::Null;
        }
        match crate::eval::cast(Value::String(text.clone()), ty) {
            Ok(value) => value,
            Err(e) => {
                self.problem(column, e);
                Value::Null
            }
        }
    }

    /// A JSON value read into `ty`, or NULL (logged) if it does not fit.
    fn read_json(&self, column: &str, ty: &SqlType, json: &Json) -> Value {
        match json_to_value(json, ty) {
            Ok(value) => value,
            Err(message) => {
                self.problem(column, message);
                Value::Null
            }
        }
    }
}

/// A column read from a JSON field, or why the field does not fit it.
type ColumnRead = Result<Value, String>;

/// Reads a JSON object's fields into `columns`' places, each straight into
/// its column's type: a field named as a column exactly wins over one that
/// differs in case; fields that are no column, or a column not marked in
/// `read`, are skipped unread. Fails on anything but one object.
fn read_object(bytes: &[u8], columns: &[(String, SqlType)], read: Option<&[bool]>) -> Result<Vec<Option<ColumnRead>>, serde_json::Error> {
    use serde::de::{Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

    struct Fields<'c>(&'c [(String, SqlType)], Option<&'c [bool]>);

    impl<'de> DeserializeSeed<'de> for Fields<'_> {
        type Value = Vec<Option<ColumnRead>>;

        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Fields<'_> {
        type Value = Vec<Option<ColumnRead>>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut fields: Vec<Option<ColumnRead>> = vec![None; self.0.len()];
            let mut exact = vec![false; self.0.len()];
            while let Some(matched) = map.next_key_seed(Column(self.0))? {
                let found = match matched {
                    Some((i, _)) if self.1.is_some_and(|read| !read.get(i).copied().unwrap_or(true)) => None,
                    Some((i, false)) if fields[i].is_some() => None,
                    other => other,
                };
                match found {
                    Some((i, is_exact)) if is_exact || !exact[i] => {
                        fields[i] = Some(map.next_value_seed(Typed(&self.0[i].1))?);
                        exact[i] = is_exact;
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(fields)
        }
    }

    /// A field's name matched to a column, without copying it: the
    /// column's place and whether the name matched exactly.
    struct Column<'c>(&'c [(String, SqlType)]);

    impl<'de> DeserializeSeed<'de> for Column<'_> {
        type Value = Option<(usize, bool)>;

        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_str(self)
        }
    }

    impl<'de> Visitor<'de> for Column<'_> {
        type Value = Option<(usize, bool)>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a field name")
        }

        fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
            // One pass: an exact match wins wherever it is, else the first
            // column equal but for case. Names differing in more than case
            // are told apart by the case-blind comparison alone, which
            // stops at the first byte that differs.
            let mut loose = None;
            for (i, (name, _)) in self.0.iter().enumerate() {
                if name.len() != key.len() || !name.eq_ignore_ascii_case(key) {
                    continue;
                }
                if name == key {
                    return Ok(Some((i, true)));
                }
                if loose.is_none() {
                    loose = Some(i);
                }
            }
            Ok(loose.map(|i| (i, false)))
        }
    }

    /// A field read as a column of this type: the common cases (text
    /// into `STRING`, numbers into number columns, booleans, null)
    /// directly, the rest through [`json_to_value`], so both read alike.
    struct Typed<'t>(&'t SqlType);

    impl<'de> DeserializeSeed<'de> for Typed<'_> {
        type Value = ColumnRead;

        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            match self.0 {
                SqlType::Array(_) | SqlType::Map(..) | SqlType::Struct(_) => {
                    let json = Json::deserialize(deserializer)?;
                    Ok(json_to_value(&json, self.0))
                }
                _ => deserializer.deserialize_any(self),
            }
        }
    }

    impl<'de> Visitor<'de> for Typed<'_> {
        type Value = ColumnRead;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a value of type {}", self.0)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Ok(Value::Null))
        }

        fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
            Ok(match self.0 {
                SqlType::Boolean => Ok(Value::Boolean(b)),
                ty => json_to_value(&Json::Bool(b), ty),
            })
        }

        fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<Self::Value, E> {
            Ok(match self.0 {
                SqlType::Bigint => Ok(Value::Bigint(i)),
                SqlType::Int if i32::try_from(i).is_ok() => Ok(Value::Int(i as i32)),
                SqlType::Double => Ok(Value::Double(i as f64)),
                ty => json_to_value(&Json::from(i), ty),
            })
        }

        fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<Self::Value, E> {
            match i64::try_from(u) {
                Ok(i) => self.visit_i64(i),
                Err(_) => Ok(json_to_value(&Json::from(u), self.0)),
            }
        }

        fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Self::Value, E> {
            Ok(match self.0 {
                SqlType::Double => Ok(Value::Double(f)),
                ty => json_to_value(&Json::from(f), ty),
            })
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Ok(match self.0 {
                SqlType::String => Ok(Value::String(text.to_string())),
                ty => json_to_value(&Json::String(text.to_string()), ty),
            })
        }

        fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Self::Value, E> {
            Ok(match self.0 {
                SqlType::String => Ok(Value::String(text)),
                ty => json_to_value(&Json::String(text), ty),
            })
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            let json = Json::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
            Ok(json_to_value(&json, self.0))
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let json = Json::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
            Ok(json_to_value(&json, self.0))
        }
    }

    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let fields = Fields(columns, read).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(fields)
}

/// A JSON value as a value of `ty`, with ksqlDB's coercions.
pub fn json_to_value(json: &Json, ty: &SqlType) -> Result<Value, String> {
    if json.is_null() {
        return Ok(Value::Null);
    }
    let mismatch = || format!("cannot read {json} as {ty}");
    Ok(match ty {
        SqlType::String => match json {
            Json::String(s) => Value::String(s.clone()),
            Json::Number(n) => Value::String(n.to_string()),
            Json::Bool(b) => Value::String(b.to_string()),
            other => Value::String(other.to_string()),
        },
        SqlType::Boolean => match json {
            Json::Bool(b) => Value::Boolean(*b),
            Json::String(s) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") => Value::Boolean(s.eq_ignore_ascii_case("true")),
            _ => return Err(mismatch()),
        },
        SqlType::Int => match json {
            Json::Number(n) => Value::Int(n.as_i64().and_then(|i| i32::try_from(i).ok()).ok_or_else(mismatch)?),
            Json::String(s) => Value::Int(s.trim().parse().map_err(|_| mismatch())?),
            _ => return Err(mismatch()),
        },
        SqlType::Bigint => match json {
            Json::Number(n) => Value::Bigint(n.as_i64().ok_or_else(mismatch)?),
            Json::String(s) => Value::Bigint(s.trim().parse().map_err(|_| mismatch())?),
            _ => return Err(mismatch()),
        },
        SqlType::Double => match json {
            Json::Number(n) => Value::Double(n.as_f64().ok_or_else(mismatch)?),
            Json::String(s) => Value::Double(s.trim().parse().map_err(|_| mismatch())?),
            _ => return Err(mismatch()),
        },
        SqlType::Decimal { .. } => {
            let text = match json {
                Json::Number(n) => n.to_string(),
                Json::String(s) => s.clone(),
                _ => return Err(mismatch()),
            };
            let d = Decimal::parse(&text).ok_or_else(mismatch)?;
            Value::Decimal(d).widen_to(ty).ok_or_else(mismatch)?
        }
        SqlType::Bytes => match json {
            Json::String(s) => Value::Bytes(crate::functions::base64_decode(s).ok_or_else(mismatch)?),
            _ => return Err(mismatch()),
        },
        SqlType::Timestamp => match json {
            Json::Number(n) => Value::Timestamp(n.as_i64().ok_or_else(mismatch)?),
            Json::String(s) => Value::Timestamp(time::parse_timestamp(s)?),
            _ => return Err(mismatch()),
        },
        SqlType::Date => match json {
            Json::Number(n) => Value::Date(n.as_i64().and_then(|i| i32::try_from(i).ok()).ok_or_else(mismatch)?),
            Json::String(s) => Value::Date(time::parse_date(s)?),
            _ => return Err(mismatch()),
        },
        SqlType::Time => match json {
            Json::Number(n) => Value::Time(n.as_i64().ok_or_else(mismatch)?),
            Json::String(s) => Value::Time(time::parse_time(s)?),
            _ => return Err(mismatch()),
        },
        SqlType::Array(item) => match json {
            Json::Array(items) => Value::Array(items.iter().map(|j| json_to_value(j, item)).collect::<Result<_, _>>()?),
            _ => return Err(mismatch()),
        },
        SqlType::Map(key, value) => match json {
            Json::Object(entries) => Value::Map(
                entries.iter().map(|(k, v)| Ok((json_to_value(&Json::String(k.clone()), key)?, json_to_value(v, value)?))).collect::<Result<_, String>>()?,
            ),
            _ => return Err(mismatch()),
        },
        SqlType::Struct(fields) => match json {
            Json::Object(entries) => Value::Struct(
                fields
                    .iter()
                    .map(|(name, ty)| {
                        let field = entries.get(name).or_else(|| entries.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v));
                        Ok((name.clone(), field.map_or(Ok(Value::Null), |f| json_to_value(f, ty))?))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            _ => return Err(mismatch()),
        },
    })
}

fn delimited_field(value: &Value) -> String {
    let text = match value {
        Value::Null => return String::new(),
        Value::Bytes(b) => base64_encode(b),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// Splits a comma-separated line, with `"` quoting.
fn split_delimited(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("starts with one field").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().expect("starts with one field").push(c),
        }
    }
    fields
}

/// The serde of a source's or sink's values, for runnel-streams.
#[derive(Clone)]
pub struct RowSerde(pub RowFormat);

impl Serde for RowSerde {
    type Value = Row;

    fn serialize(&self, row: &Row) -> Option<Vec<u8>> {
        self.0.write(row)
    }

    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<Row, SerdeError> {
        self.0.read(bytes)?.ok_or(SerdeError::Null)
    }
}

/// The serde of a source's or sink's keys, for runnel-streams; a missing
/// key reads as NULL key columns.
#[derive(Clone)]
pub struct KeySerde(pub RowFormat);

impl Serde for KeySerde {
    type Value = Key;

    fn serialize(&self, key: &Key) -> Option<Vec<u8>> {
        if key.0.iter().all(Value::is_null) {
            return None;
        }
        self.0.write(&key.0)
    }

    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<Key, SerdeError> {
        Ok(Key(self.0.read(bytes)?.unwrap_or_else(|| vec![Value::Null; self.0.columns.len()])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ride_format(format: Format) -> (RowFormat, Arc<ProcessingLog>) {
        let log = ProcessingLog::shared();
        let columns = vec![("VENDORID".into(), SqlType::String), ("FARE".into(), SqlType::Double), ("PAYMENT_TYPE".into(), SqlType::Int)];
        (RowFormat::value(format, columns, "rides", log.clone()), log)
    }

    #[test]
    fn json_values_follow_ksqldb_s_rules() {
        let (format, log) = ride_format(Format::Json);
        let row = format.read(Some(br#"{"VendorID": 2, "fare": "12.5", "payment_type": "card", "extra": 1}"#)).unwrap().unwrap();
        assert_eq!(row, [Value::String("2".into()), Value::Double(12.5), Value::Null]);
        assert_eq!(log.count(), 1, "the payment type did not fit an INT");
        assert_eq!(String::from_utf8(format.write(&row).unwrap()).unwrap(), r#"{"VENDORID":"2","FARE":12.5,"PAYMENT_TYPE":null}"#);
        assert!(format.read(Some(b"not json")).is_err());
        assert!(format.read(Some(b"[1]")).is_err());
        assert_eq!(format.read(None).unwrap(), None);
    }

    #[test]
    fn fields_read_straight_into_columns_as_json_values_would() {
        let literals = [
            "null",
            "true",
            "false",
            "0",
            "-7",
            "2147483648",
            "18446744073709551615",
            "12.5",
            "-0.0",
            "1e300",
            "\"\"",
            "\"42\"",
            "\"12.5\"",
            "\"true\"",
            "\"card\"",
            "\"2024-03-01\"",
            "\"2024-03-01T10:00:00\"",
            "\"10:30:00\"",
            "\"aGk=\"",
            "[1,2]",
            "{\"a\":1}",
        ];
        let types = [
            SqlType::Boolean,
            SqlType::Int,
            SqlType::Bigint,
            SqlType::Double,
            SqlType::Decimal { precision: 6, scale: 2 },
            SqlType::String,
            SqlType::Bytes,
            SqlType::Date,
            SqlType::Time,
            SqlType::Timestamp,
            SqlType::Array(Box::new(SqlType::Int)),
            SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::Int)),
        ];
        for ty in &types {
            let columns = vec![("A".to_string(), ty.clone())];
            for literal in literals {
                let fields = read_object(format!("{{\"a\": {literal}}}").as_bytes(), &columns, None).unwrap();
                let expected = json_to_value(&serde_json::from_str(literal).unwrap(), ty);
                assert_eq!(fields[0], Some(expected), "{literal} as {ty}");
            }
        }
    }

    #[test]
    fn columns_a_query_does_not_read_are_skipped_unchecked() {
        let (format, log) = ride_format(Format::Json);
        let format = format.reading_only(vec![true, true, false]);
        let row = format.read(Some(br#"{"VendorID": "2", "fare": 12.5, "payment_type": {"not": "an INT"}}"#)).unwrap().unwrap();
        assert_eq!(row, [Value::String("2".into()), Value::Double(12.5), Value::Null]);
        assert_eq!(log.count(), 0, "the unread payment type was not decoded");
        assert!(format.read(Some(b"{\"VendorID\": ")).is_err(), "a broken value is still refused");
    }

    #[test]
    fn kafka_and_delimited_formats() {
        let log = ProcessingLog::shared();
        let key = RowFormat::key(Format::Kafka, vec![("ID".into(), SqlType::Bigint)], "t", log.clone());
        assert_eq!(key.write(&[Value::Bigint(7)]).unwrap(), 7i64.to_be_bytes());
        assert_eq!(key.read(Some(&7i64.to_be_bytes())).unwrap().unwrap(), [Value::Bigint(7)]);
        assert!(key.read(Some(b"abc")).is_err());
        let (delimited, _) = ride_format(Format::Delimited);
        let row = delimited.read(Some(b"\"a,b\",1.5,")).unwrap().unwrap();
        assert_eq!(row, [Value::String("a,b".into()), Value::Double(1.5), Value::Null]);
        assert_eq!(delimited.write(&row).unwrap(), b"\"a,b\",1.5,");
        assert!(delimited.read(Some(b"only,two")).is_err());
    }

    #[test]
    fn single_column_json_keys_are_bare_values() {
        let key = RowFormat::key(Format::Json, vec![("ID".into(), SqlType::String)], "t", ProcessingLog::shared());
        assert_eq!(key.write(&[Value::String("132".into())]).unwrap(), b"\"132\"");
        assert_eq!(key.read(Some(b"132")).unwrap().unwrap(), [Value::String("132".into())]);
    }

    #[test]
    fn formats_refuse_columns_they_cannot_carry() {
        let two = vec![("A".to_string(), SqlType::Int), ("B".to_string(), SqlType::Int)];
        assert!(Format::Kafka.check(&two, "key").is_err());
        assert!(Format::Kafka.check(&[("A".into(), SqlType::Boolean)], "key").is_err());
        assert!(Format::Delimited.check(&[("A".into(), SqlType::Array(Box::new(SqlType::Int)))], "value").is_err());
        assert!(Format::parse("XML").is_err());
        assert_eq!(Format::parse("protobuf_nosr").unwrap(), Format::ProtobufNoSr);
        assert!(Format::ProtobufNoSr.check(&[("A".into(), SqlType::Time)], "value").is_err());
        assert_eq!(Format::parse("avro").unwrap(), Format::Avro);
        assert_eq!(Format::parse("json").unwrap(), Format::Json);
    }
}
