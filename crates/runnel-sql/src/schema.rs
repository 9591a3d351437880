//! Keys and values whose schemas live in a Schema Registry: ksqlDB's
//! AVRO, PROTOBUF and JSON_SR formats, in Confluent's wire format.
//!
//! A source declared without columns takes them from its subject's latest
//! schema ([`columns_of`]), named in upper case as ksqlDB names them. A
//! query's sink registers a schema made from its columns
//! ([`schema_for`]), shaped as ksqlDB shapes them (every column nullable).
//! Each record is read with the schema its id names and matched to the
//! columns by field name, so records written by older or newer schemas of
//! a subject read alike.
//!
//! The registry is reached through [`SchemaRegistry`]: the service talks
//! to one over its REST API, tests and the test driver use a
//! [`MemoryRegistry`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value as Proto};
use runnel_streams::registry::{compile_protobuf, protobuf_message, put_message_indexes, split_wire, take_message_indexes, wire, RegistryClient};
use runnel_streams::serde::SerdeError;
use serde_json::{json, Value as Json};

pub use runnel_streams::registry::RegisteredSchema;

use crate::error::SqlError;
use crate::format::Format;
use crate::types::SqlType;
use crate::value::{Decimal, Value};

/// Where schemas are looked up and registered.
pub trait SchemaRegistry: Send + Sync {
    /// The latest schema of `subject`, if it has one.
    fn latest(&self, subject: &str) -> Result<Option<RegisteredSchema>, String>;
    /// Schema `id`.
    fn schema(&self, id: i32) -> Result<RegisteredSchema, String>;
    /// Registers a schema (`schema_type` `AVRO`, `PROTOBUF` or `JSON`)
    /// under `subject`; returns its id.
    fn register(&self, subject: &str, schema_type: &str, schema: &str) -> Result<i32, String>;
}

impl SchemaRegistry for RegistryClient {
    fn latest(&self, subject: &str) -> Result<Option<RegisteredSchema>, String> {
        RegistryClient::latest(self, subject).map_err(|e| e.to_string())
    }

    fn schema(&self, id: i32) -> Result<RegisteredSchema, String> {
        RegistryClient::schema(self, id).map_err(|e| e.to_string())
    }

    fn register(&self, subject: &str, schema_type: &str, schema: &str) -> Result<i32, String> {
        RegistryClient::register(self, subject, schema_type, schema).map_err(|e| e.to_string())
    }
}

/// A registry in memory, for the test driver: ids count from 1, and a
/// schema registered again keeps its id. It checks no compatibility.
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    /// (subject, schema), in registration order.
    versions: Mutex<Vec<(String, RegisteredSchema)>>,
}

impl MemoryRegistry {
    /// An empty registry, shared.
    pub fn shared() -> Arc<MemoryRegistry> {
        Arc::new(MemoryRegistry::default())
    }

    fn versions(&self) -> std::sync::MutexGuard<'_, Vec<(String, RegisteredSchema)>> {
        self.versions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SchemaRegistry for MemoryRegistry {
    fn latest(&self, subject: &str) -> Result<Option<RegisteredSchema>, String> {
        Ok(self.versions().iter().rev().find(|(s, _)| s == subject).map(|(_, schema)| schema.clone()))
    }

    fn schema(&self, id: i32) -> Result<RegisteredSchema, String> {
        self.versions().iter().find(|(_, s)| s.id == id).map(|(_, s)| s.clone()).ok_or_else(|| format!("Schema {id} not found"))
    }

    fn register(&self, subject: &str, schema_type: &str, schema: &str) -> Result<i32, String> {
        let mut versions = self.versions();
        let existing = versions.iter().find(|(_, s)| s.schema == schema && s.schema_type == schema_type).map(|(_, s)| s.id);
        let id = existing.unwrap_or_else(|| versions.iter().map(|(_, s)| s.id).max().unwrap_or(0) + 1);
        if !versions.iter().any(|(s, r)| s == subject && r.id == id) {
            versions.push((subject.to_string(), RegisteredSchema { id, schema_type: schema_type.to_string(), schema: schema.to_string() }));
        }
        Ok(id)
    }
}

/// A schema compiled for reading and writing.
enum Compiled {
    Avro {
        schema: Box<Schema>,
        /// Named types, for `Ref`s to them.
        names: HashMap<Name, Schema>,
    },
    Protobuf(DescriptorPool),
    Json,
}

impl Compiled {
    fn new(registered: &RegisteredSchema) -> Result<Compiled, String> {
        match registered.schema_type.as_str() {
            "AVRO" => {
                let schema = Schema::parse_str(&registered.schema).map_err(|e| format!("schema {} is not Avro: {e}", registered.id))?;
                let names = ResolvedSchema::try_from(&schema)
                    .map_err(|e| format!("schema {}: {e}", registered.id))?
                    .get_names()
                    .iter()
                    .map(|(name, schema)| (name.clone(), (*schema).clone()))
                    .collect();
                Ok(Compiled::Avro { schema: Box::new(schema), names })
            }
            "PROTOBUF" => Ok(Compiled::Protobuf(compile_protobuf(&registered.schema, &[]).map_err(|e| e.to_string())?)),
            "JSON" => Ok(Compiled::Json),
            other => Err(format!("schema {} has the unknown type {other}", registered.id)),
        }
    }

    /// A named type, or the schema itself.
    fn resolve<'s>(&'s self, schema: &'s Schema) -> &'s Schema {
        match (self, schema) {
            (Compiled::Avro { names, .. }, Schema::Ref { name }) => names.get(name).unwrap_or(schema),
            _ => schema,
        }
    }
}

/// The schema a source's keys or values are written with, and the
/// registry their readers find writers' schemas in.
pub struct BoundSchema {
    /// The subject (`<topic>-value` or `<topic>-key`).
    pub subject: String,
    registry: Arc<dyn SchemaRegistry>,
    /// The schema rows are written with: its id and compiled form (none
    /// for a read-only source whose subject has no schema yet).
    writer: Option<(i32, Arc<Compiled>)>,
    /// Writers' schemas met while reading, by id.
    readers: Mutex<HashMap<i32, Arc<Compiled>>>,
}

impl std::fmt::Debug for BoundSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundSchema").field("subject", &self.subject).field("id", &self.id()).finish()
    }
}

impl PartialEq for BoundSchema {
    fn eq(&self, other: &BoundSchema) -> bool {
        self.subject == other.subject && self.id() == other.id()
    }
}

impl BoundSchema {
    /// Writes with `registered` (if any), reading through `registry`.
    pub fn new(subject: String, registry: Arc<dyn SchemaRegistry>, registered: Option<&RegisteredSchema>) -> Result<BoundSchema, String> {
        let writer = registered.map(|r| Ok::<_, String>((r.id, Arc::new(Compiled::new(r)?)))).transpose()?;
        Ok(BoundSchema { subject, registry, writer, readers: Mutex::new(HashMap::new()) })
    }

    /// The id rows are written with.
    pub fn id(&self) -> Option<i32> {
        self.writer.as_ref().map(|(id, _)| *id)
    }

    /// Schema `id`, fetched once.
    fn reader(&self, id: i32) -> Result<Arc<Compiled>, SerdeError> {
        if let Some((writer_id, compiled)) = &self.writer {
            if *writer_id == id {
                return Ok(compiled.clone());
            }
        }
        let mut readers = self.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(compiled) = readers.get(&id) {
            return Ok(compiled.clone());
        }
        let registered = self.registry.schema(id).map_err(SerdeError::Schema)?;
        let compiled = Arc::new(Compiled::new(&registered).map_err(SerdeError::Schema)?);
        readers.insert(id, compiled.clone());
        Ok(compiled)
    }

    fn writer(&self) -> Result<(i32, &Compiled), String> {
        self.writer.as_ref().map(|(id, c)| (*id, c.as_ref())).ok_or_else(|| format!("the subject {} has no schema to write with", self.subject))
    }

    /// A value's columns, each read or the reason it could not be; fails
    /// if the bytes cannot be read at all. `single` reads a lone column
    /// from an unwrapped value.
    pub fn read(&self, bytes: &[u8], columns: &[(String, SqlType)], single: bool) -> Result<Vec<Result<Value, String>>, SerdeError> {
        let (id, body) = split_wire(bytes)?;
        let compiled = self.reader(id)?;
        match &*compiled {
            Compiled::Avro { schema, .. } => {
                let mut body = body;
                let avro =
                    apache_avro::from_avro_datum(schema, &mut body, None).map_err(|e| SerdeError::Schema(format!("cannot read with schema {id}: {e}")))?;
                let avro = match avro {
                    Avro::Union(_, inner) => *inner,
                    other => other,
                };
                Ok(match avro {
                    Avro::Record(fields) if !single => columns
                        .iter()
                        .map(|(name, ty)| fields.iter().find(|(f, _)| f.eq_ignore_ascii_case(name)).map_or(Ok(Value::Null), |(_, v)| from_avro(v, ty)))
                        .collect(),
                    other if columns.len() == 1 => vec![from_avro(&other, &columns[0].1)],
                    other => return Err(SerdeError::Schema(format!("expected an Avro record, got {other:?}"))),
                })
            }
            Compiled::Protobuf(pool) => {
                let (indexes, body) = take_message_indexes(body)?;
                read_protobuf(&protobuf_message(pool, &indexes)?, body, columns)
            }
            Compiled::Json => Err(SerdeError::Schema(format!("schema {id} is a JSON Schema, not a schema of this format"))),
        }
    }

    /// A row's bytes in the wire format. `single` writes a lone column
    /// unwrapped. JSON_SR rows are JSON after the header: `json` writes it.
    pub fn write(&self, row: &[Value], columns: &[(String, SqlType)], single: bool, json: impl FnOnce(&mut Vec<u8>)) -> Result<Vec<u8>, String> {
        let (id, compiled) = self.writer()?;
        match compiled {
            Compiled::Avro { schema, .. } => {
                let value = if single && row.len() == 1 {
                    to_avro(&row[0], schema, compiled)?
                } else {
                    let Schema::Record(record) = schema.as_ref() else { return Err(format!("schema {id} is not an Avro record")) };
                    let fields = record
                        .fields
                        .iter()
                        .map(|field| {
                            let column = columns.iter().position(|(name, _)| name.eq_ignore_ascii_case(&field.name));
                            let value = match column {
                                Some(i) => to_avro(&row[i], &field.schema, compiled).map_err(|e| format!("column {}: {e}", columns[i].0))?,
                                None => match &field.default {
                                    Some(default) => {
                                        Avro::from(default.clone()).resolve(&field.schema).map_err(|e| format!("field {}: default: {e}", field.name))?
                                    }
                                    None => to_avro(&Value::Null, &field.schema, compiled).map_err(|_| format!("no column for the field {}", field.name))?,
                                },
                            };
                            Ok((field.name.clone(), value))
                        })
                        .collect::<Result<Vec<_>, String>>()?;
                    Avro::Record(fields)
                };
                let body = apache_avro::to_avro_datum(schema, value).map_err(|e| e.to_string())?;
                Ok(wire(id, &body))
            }
            Compiled::Protobuf(pool) => {
                let mut out = wire(id, &[]);
                put_message_indexes(&mut out, &[0]);
                write_protobuf(&protobuf_message(pool, &[0]).map_err(|e| e.to_string())?, row, columns, &mut out)?;
                Ok(out)
            }
            Compiled::Json => {
                let mut out = wire(id, &[]);
                json(&mut out);
                Ok(out)
            }
        }
    }
}

/// A Protobuf message's fields read into the columns of the same names.
fn read_protobuf(descriptor: &MessageDescriptor, body: &[u8], columns: &[(String, SqlType)]) -> Result<Vec<Result<Value, String>>, SerdeError> {
    let message = DynamicMessage::decode(descriptor.clone(), body).map_err(|e| SerdeError::Schema(format!("not a {} message: {e}", descriptor.name())))?;
    Ok(columns
        .iter()
        .map(|(name, ty)| match descriptor.fields().find(|f| f.name().eq_ignore_ascii_case(name)) {
            Some(field) if field.kind().as_message().is_some() && !field.is_list() && !field.is_map() && !message.has_field(&field) => Ok(Value::Null),
            Some(field) => from_proto(&message.get_field(&field), &field.kind(), ty),
            None => Ok(Value::Null),
        })
        .collect())
}

/// Appends a row's columns as a message of `descriptor`.
fn write_protobuf(descriptor: &MessageDescriptor, row: &[Value], columns: &[(String, SqlType)], out: &mut Vec<u8>) -> Result<(), String> {
    let message = to_proto_message(columns.iter().map(|(name, _)| name.as_str()).zip(row), descriptor)?;
    message.encode(out).map_err(|e| e.to_string())
}

/// Rows as Protobuf messages without a registry (ksqlDB's
/// `PROTOBUF_NOSR`): the message is the one ksqlDB would register for the
/// columns, its fields numbered in the columns' order, and the bytes are
/// the message alone, with no schema id.
#[derive(Debug, Clone)]
pub struct LocalProtobuf(MessageDescriptor);

impl LocalProtobuf {
    /// The message of `columns`; fails for types Protobuf cannot carry.
    pub fn new(columns: &[(String, SqlType)]) -> Result<LocalProtobuf, SqlError> {
        let pool = compile_protobuf(&proto_schema(columns)?, &[]).map_err(|e| SqlError::invalid(e.to_string()))?;
        Ok(LocalProtobuf(protobuf_message(&pool, &[0]).map_err(|e| SqlError::invalid(e.to_string()))?))
    }

    /// A message's columns, each read or the reason it could not be.
    pub fn read(&self, bytes: &[u8], columns: &[(String, SqlType)]) -> Result<Vec<Result<Value, String>>, SerdeError> {
        read_protobuf(&self.0, bytes, columns)
    }

    /// A row's message.
    pub fn write(&self, row: &[Value], columns: &[(String, SqlType)]) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        write_protobuf(&self.0, row, columns, &mut out)?;
        Ok(out)
    }
}

fn mismatch(found: impl std::fmt::Debug, ty: &SqlType) -> String {
    format!("cannot read {found:?} as {ty}")
}

/// An Avro value as a value of `ty`.
fn from_avro(avro: &Avro, ty: &SqlType) -> Result<Value, String> {
    let avro = match avro {
        Avro::Union(_, inner) => inner.as_ref(),
        other => other,
    };
    Ok(match (ty, avro) {
        (_, Avro::Null) => Value::Null,
        (SqlType::Boolean, Avro::Boolean(b)) => Value::Boolean(*b),
        (SqlType::Int, Avro::Int(i)) => Value::Int(*i),
        (SqlType::Int, Avro::Long(i)) => Value::Int(i32::try_from(*i).map_err(|_| mismatch(avro, ty))?),
        (SqlType::Bigint, Avro::Int(i)) => Value::Bigint(i64::from(*i)),
        (SqlType::Bigint, Avro::Long(i) | Avro::TimestampMillis(i) | Avro::LocalTimestampMillis(i)) => Value::Bigint(*i),
        (SqlType::Double, Avro::Float(f)) => Value::Double(f64::from(*f)),
        (SqlType::Double, Avro::Double(f)) => Value::Double(*f),
        (SqlType::Double, Avro::Int(i)) => Value::Double(f64::from(*i)),
        (SqlType::Double, Avro::Long(i)) => Value::Double(*i as f64),
        (SqlType::Decimal { scale, .. }, Avro::Decimal(d)) => {
            let bytes = Vec::<u8>::try_from(d).map_err(|e| e.to_string())?;
            Value::Decimal(Decimal { unscaled: unscaled_from_bytes(&bytes).ok_or_else(|| mismatch(avro, ty))?, scale: *scale })
        }
        (SqlType::String, Avro::String(s) | Avro::Enum(_, s)) => Value::String(s.clone()),
        (SqlType::String, Avro::Uuid(u)) => Value::String(u.to_string()),
        (SqlType::String, Avro::Int(i)) => Value::String(i.to_string()),
        (SqlType::String, Avro::Long(i)) => Value::String(i.to_string()),
        (SqlType::String, Avro::Boolean(b)) => Value::String(b.to_string()),
        (SqlType::Bytes, Avro::Bytes(b) | Avro::Fixed(_, b)) => Value::Bytes(b.clone()),
        (SqlType::Date, Avro::Date(d) | Avro::Int(d)) => Value::Date(*d),
        (SqlType::Time, Avro::TimeMillis(t) | Avro::Int(t)) => Value::Time(i64::from(*t)),
        (SqlType::Time, Avro::TimeMicros(t)) => Value::Time(t / 1000),
        (SqlType::Timestamp, Avro::TimestampMillis(t) | Avro::LocalTimestampMillis(t) | Avro::Long(t)) => Value::Timestamp(*t),
        (SqlType::Timestamp, Avro::TimestampMicros(t) | Avro::LocalTimestampMicros(t)) => Value::Timestamp(t / 1000),
        (SqlType::Array(item), Avro::Array(items)) => Value::Array(items.iter().map(|v| from_avro(v, item)).collect::<Result<_, _>>()?),
        (SqlType::Map(key, value), Avro::Map(entries)) => {
            let mut entries: Vec<(&String, &Avro)> = entries.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| Ok((crate::eval::cast(Value::String(k.clone()), key).map_err(|e| e.to_string())?, from_avro(v, value)?)))
                    .collect::<Result<_, String>>()?,
            )
        }
        (SqlType::Struct(fields), Avro::Record(values)) => Value::Struct(
            fields
                .iter()
                .map(|(name, ty)| {
                    let found = values.iter().find(|(f, _)| f.eq_ignore_ascii_case(name));
                    Ok((name.clone(), found.map_or(Ok(Value::Null), |(_, v)| from_avro(v, ty))?))
                })
                .collect::<Result<_, String>>()?,
        ),
        _ => return Err(mismatch(avro, ty)),
    })
}

/// Big-endian two's-complement bytes (Avro's decimals) as an integer.
fn unscaled_from_bytes(bytes: &[u8]) -> Option<i128> {
    if bytes.len() > 16 {
        return None;
    }
    let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) { 0xff } else { 0 };
    let mut full = [fill; 16];
    full[16 - bytes.len()..].copy_from_slice(bytes);
    Some(i128::from_be_bytes(full))
}

/// The fewest big-endian two's-complement bytes of an integer.
fn unscaled_to_bytes(unscaled: i128) -> Vec<u8> {
    let bytes = unscaled.to_be_bytes();
    let mut start = 0;
    while start < 15 && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0) || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0)) {
        start += 1;
    }
    bytes[start..].to_vec()
}

/// A value written as `schema` wants it: NULL only where the schema is
/// nullable, a union's first branch that takes the value.
fn to_avro(value: &Value, schema: &Schema, compiled: &Compiled) -> Result<Avro, String> {
    let schema = compiled.resolve(schema);
    if let Schema::Union(union) = schema {
        let variants = union.variants();
        if value.is_null() {
            return variants
                .iter()
                .position(|v| matches!(v, Schema::Null))
                .map(|i| Avro::Union(i as u32, Box::new(Avro::Null)))
                .ok_or_else(|| "NULL where the schema allows no null".to_string());
        }
        let mut last_error = String::from("no branch of the union");
        for (i, variant) in variants.iter().enumerate().filter(|(_, v)| !matches!(v, Schema::Null)) {
            match to_avro(value, variant, compiled) {
                Ok(avro) => return Ok(Avro::Union(i as u32, Box::new(avro))),
                Err(e) => last_error = e,
            }
        }
        return Err(last_error);
    }
    let wrong = || format!("cannot write {value} as Avro {schema:?}");
    Ok(match (schema, value) {
        (Schema::Null, Value::Null) => Avro::Null,
        (_, Value::Null) => return Err("NULL where the schema allows no null".to_string()),
        (Schema::Boolean, Value::Boolean(b)) => Avro::Boolean(*b),
        (Schema::Int, Value::Int(i)) => Avro::Int(*i),
        (Schema::Int, Value::Bigint(i)) => Avro::Int(i32::try_from(*i).map_err(|_| wrong())?),
        (Schema::Long, Value::Int(i)) => Avro::Long(i64::from(*i)),
        (Schema::Long, Value::Bigint(i) | Value::Timestamp(i)) => Avro::Long(*i),
        (Schema::Float, v) => Avro::Float(v.as_f64().ok_or_else(wrong)? as f32),
        (Schema::Double, v) => Avro::Double(v.as_f64().ok_or_else(wrong)?),
        (Schema::Decimal(decimal), Value::Decimal(d)) => {
            let d = d.rescale(decimal.scale as u8).ok_or_else(wrong)?;
            Avro::Decimal(apache_avro::Decimal::from(unscaled_to_bytes(d.unscaled)))
        }
        (Schema::Decimal(decimal), Value::Int(_) | Value::Bigint(_)) => {
            let d = Decimal { unscaled: i128::from(value.as_i64().ok_or_else(wrong)?), scale: 0 }.rescale(decimal.scale as u8).ok_or_else(wrong)?;
            Avro::Decimal(apache_avro::Decimal::from(unscaled_to_bytes(d.unscaled)))
        }
        (Schema::String, Value::String(s)) => Avro::String(s.clone()),
        (Schema::String, v) if !matches!(v, Value::Array(_) | Value::Map(_) | Value::Struct(_) | Value::Bytes(_)) => Avro::String(v.to_string()),
        (Schema::Uuid, Value::String(s)) => Avro::Uuid(s.parse().map_err(|_| wrong())?),
        (Schema::Enum(e), Value::String(s)) => {
            let index = e.symbols.iter().position(|symbol| symbol == s).ok_or_else(|| format!("'{s}' is not a symbol of the enum {}", e.name.name))?;
            Avro::Enum(index as u32, s.clone())
        }
        (Schema::Bytes, Value::Bytes(b)) => Avro::Bytes(b.clone()),
        (Schema::Fixed(f), Value::Bytes(b)) if b.len() == f.size => Avro::Fixed(f.size, b.clone()),
        (Schema::Date, Value::Date(d)) => Avro::Date(*d),
        (Schema::TimeMillis, Value::Time(t)) => Avro::TimeMillis(i32::try_from(*t).map_err(|_| wrong())?),
        (Schema::TimeMicros, Value::Time(t)) => Avro::TimeMicros(t * 1000),
        (Schema::TimestampMillis, Value::Timestamp(t) | Value::Bigint(t)) => Avro::TimestampMillis(*t),
        (Schema::TimestampMicros, Value::Timestamp(t) | Value::Bigint(t)) => Avro::TimestampMicros(t * 1000),
        (Schema::LocalTimestampMillis, Value::Timestamp(t)) => Avro::LocalTimestampMillis(*t),
        (Schema::Array(array), Value::Array(items)) => Avro::Array(items.iter().map(|v| to_avro(v, &array.items, compiled)).collect::<Result<_, _>>()?),
        (Schema::Map(map), Value::Map(entries)) => Avro::Map(
            entries
                .iter()
                .map(|(k, v)| Ok((k.as_str().map_or_else(|| k.to_string(), str::to_string), to_avro(v, &map.types, compiled)?)))
                .collect::<Result<_, String>>()?,
        ),
        (Schema::Record(record), Value::Struct(values)) => Avro::Record(
            record
                .fields
                .iter()
                .map(|field| {
                    let value = values.iter().find(|(name, _)| name.eq_ignore_ascii_case(&field.name)).map_or(&Value::Null, |(_, v)| v);
                    Ok((field.name.clone(), to_avro(value, &field.schema, compiled).map_err(|e| format!("field {}: {e}", field.name))?))
                })
                .collect::<Result<_, String>>()?,
        ),
        _ => return Err(wrong()),
    })
}

/// A Protobuf field's value as a value of `ty`.
fn from_proto(proto: &Proto, kind: &Kind, ty: &SqlType) -> Result<Value, String> {
    Ok(match (ty, proto) {
        (SqlType::Boolean, Proto::Bool(b)) => Value::Boolean(*b),
        (SqlType::Int, Proto::I32(i)) => Value::Int(*i),
        (SqlType::Bigint, Proto::I32(i)) => Value::Bigint(i64::from(*i)),
        (SqlType::Bigint, Proto::I64(i)) => Value::Bigint(*i),
        (SqlType::Bigint, Proto::U32(i)) => Value::Bigint(i64::from(*i)),
        (SqlType::Bigint, Proto::U64(i)) => Value::Bigint(i64::try_from(*i).map_err(|_| mismatch(proto, ty))?),
        (SqlType::Double, Proto::F32(f)) => Value::Double(f64::from(*f)),
        (SqlType::Double, Proto::F64(f)) => Value::Double(*f),
        (SqlType::String, Proto::String(s)) => Value::String(s.clone()),
        (SqlType::String, Proto::EnumNumber(n)) => match kind.as_enum().and_then(|e| e.get_value(*n)) {
            Some(symbol) => Value::String(symbol.name().to_string()),
            None => Value::String(n.to_string()),
        },
        (SqlType::Bytes, Proto::Bytes(b)) => Value::Bytes(b.to_vec()),
        (SqlType::Timestamp, Proto::Message(m)) => {
            let seconds = m.get_field_by_name("seconds").and_then(|v| v.as_i64()).unwrap_or(0);
            let nanos = m.get_field_by_name("nanos").and_then(|v| v.as_i32()).unwrap_or(0);
            Value::Timestamp(seconds * 1000 + i64::from(nanos) / 1_000_000)
        }
        (SqlType::Array(item), Proto::List(items)) => Value::Array(items.iter().map(|v| from_proto(v, kind, item)).collect::<Result<_, _>>()?),
        (SqlType::Map(key, value), Proto::Map(entries)) => {
            let value_kind = kind.as_message().map(|entry| entry.map_entry_value_field().kind()).ok_or_else(|| mismatch(proto, ty))?;
            let mut entries: Vec<(Value, Value)> = entries
                .iter()
                .map(|(k, v)| {
                    let k = match k {
                        MapKey::Bool(b) => Value::Boolean(*b),
                        MapKey::I32(i) => Value::Int(*i),
                        MapKey::I64(i) => Value::Bigint(*i),
                        MapKey::U32(i) => Value::Bigint(i64::from(*i)),
                        MapKey::U64(i) => Value::Bigint(*i as i64),
                        MapKey::String(s) => Value::String(s.clone()),
                    };
                    Ok((crate::eval::cast(k, key).map_err(|e| e.to_string())?, from_proto(v, &value_kind, value)?))
                })
                .collect::<Result<_, String>>()?;
            entries.sort_by(|a, b| a.0.compare(&b.0).unwrap_or(std::cmp::Ordering::Equal));
            Value::Map(entries)
        }
        (SqlType::Struct(fields), Proto::Message(message)) => Value::Struct(
            fields
                .iter()
                .map(|(name, ty)| {
                    let value = match message.descriptor().fields().find(|f| f.name().eq_ignore_ascii_case(name)) {
                        Some(f) if f.kind().as_message().is_some() && !f.is_list() && !f.is_map() && !message.has_field(&f) => Value::Null,
                        Some(f) => from_proto(&message.get_field(&f), &f.kind(), ty)?,
                        None => Value::Null,
                    };
                    Ok((name.clone(), value))
                })
                .collect::<Result<_, String>>()?,
        ),
        _ => return Err(mismatch(proto, ty)),
    })
}

/// A message of `descriptor` with the row's columns in the fields of the
/// same names; NULL columns leave their fields unset.
fn to_proto_message<'v>(fields: impl Iterator<Item = (&'v str, &'v Value)>, descriptor: &MessageDescriptor) -> Result<DynamicMessage, String> {
    let mut message = DynamicMessage::new(descriptor.clone());
    for (name, value) in fields {
        if value.is_null() {
            continue;
        }
        let field = descriptor.fields().find(|f| f.name().eq_ignore_ascii_case(name)).ok_or_else(|| format!("the message has no field {name}"))?;
        let proto = to_proto_field(value, &field).map_err(|e| format!("column {name}: {e}"))?;
        message.set_field(&field, proto);
    }
    Ok(message)
}

fn to_proto_field(value: &Value, field: &FieldDescriptor) -> Result<Proto, String> {
    if field.is_map() {
        let entry = field.kind();
        let entry = entry.as_message().ok_or("a map field without an entry type")?;
        let (key_kind, value_kind) = (entry.map_entry_key_field().kind(), entry.map_entry_value_field().kind());
        let Value::Map(entries) = value else { return Err(format!("cannot write {value} as a map")) };
        let mut map = HashMap::new();
        for (k, v) in entries {
            let key = match to_proto(k, &key_kind)? {
                Proto::String(s) => MapKey::String(s),
                Proto::I32(i) => MapKey::I32(i),
                Proto::I64(i) => MapKey::I64(i),
                Proto::U32(i) => MapKey::U32(i),
                Proto::U64(i) => MapKey::U64(i),
                Proto::Bool(b) => MapKey::Bool(b),
                other => return Err(format!("cannot use {other:?} as a map key")),
            };
            if !v.is_null() {
                map.insert(key, to_proto(v, &value_kind)?);
            }
        }
        return Ok(Proto::Map(map));
    }
    if field.is_list() {
        let Value::Array(items) = value else { return Err(format!("cannot write {value} as a repeated field")) };
        return Ok(Proto::List(items.iter().filter(|v| !v.is_null()).map(|v| to_proto(v, &field.kind())).collect::<Result<_, _>>()?));
    }
    to_proto(value, &field.kind())
}

fn to_proto(value: &Value, kind: &Kind) -> Result<Proto, String> {
    let wrong = || format!("cannot write {value} as Protobuf {kind:?}");
    Ok(match kind {
        Kind::Bool => Proto::Bool(matches!(value, Value::Boolean(true))),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Proto::I32(value.as_i64().and_then(|i| i32::try_from(i).ok()).ok_or_else(wrong)?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Proto::I64(value.as_i64().ok_or_else(wrong)?),
        Kind::Uint32 | Kind::Fixed32 => Proto::U32(value.as_i64().and_then(|i| u32::try_from(i).ok()).ok_or_else(wrong)?),
        Kind::Uint64 | Kind::Fixed64 => Proto::U64(value.as_i64().and_then(|i| u64::try_from(i).ok()).ok_or_else(wrong)?),
        Kind::Float => Proto::F32(value.as_f64().ok_or_else(wrong)? as f32),
        Kind::Double => Proto::F64(value.as_f64().ok_or_else(wrong)?),
        Kind::String => Proto::String(value.as_str().map_or_else(|| value.to_string(), str::to_string)),
        Kind::Bytes => match value {
            Value::Bytes(b) => Proto::Bytes(bytes::Bytes::from(b.clone())),
            _ => return Err(wrong()),
        },
        Kind::Enum(e) => {
            let symbol = value.as_str().ok_or_else(wrong)?;
            Proto::EnumNumber(e.get_value_by_name(symbol).ok_or_else(|| format!("'{symbol}' is not a value of the enum {}", e.name()))?.number())
        }
        Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {
            let Value::Timestamp(ms) = value else { return Err(wrong()) };
            let mut timestamp = DynamicMessage::new(m.clone());
            timestamp.set_field_by_name("seconds", Proto::I64(ms.div_euclid(1000)));
            timestamp.set_field_by_name("nanos", Proto::I32((ms.rem_euclid(1000) * 1_000_000) as i32));
            Proto::Message(timestamp)
        }
        Kind::Message(m) => {
            let Value::Struct(fields) = value else { return Err(wrong()) };
            Proto::Message(to_proto_message(fields.iter().map(|(name, v)| (name.as_str(), v)), m)?)
        }
    })
}

/// The columns a registered schema describes: a record's (message's,
/// object's) fields in upper case, or — for a key whose schema is a
/// single value — one column named `single_name`.
pub fn columns_of(registered: &RegisteredSchema, single_name: Option<&str>) -> Result<Vec<(String, SqlType)>, SqlError> {
    let refused = |message: String| SqlError::invalid(format!("The schema {} cannot be used: {message}", registered.id));
    let compiled = Compiled::new(registered).map_err(refused)?;
    match &compiled {
        Compiled::Avro { schema, .. } => match compiled.resolve(schema) {
            Schema::Record(record) => {
                record.fields.iter().map(|f| Ok((f.name.to_uppercase(), avro_type(&f.schema, &compiled, 0).map_err(&refused)?))).collect()
            }
            other => match single_name {
                Some(name) => Ok(vec![(name.to_string(), avro_type(other, &compiled, 0).map_err(refused)?)]),
                None => Err(refused("it is not a record".into())),
            },
        },
        Compiled::Protobuf(pool) => {
            let message = protobuf_message(pool, &[0]).map_err(|e| refused(e.to_string()))?;
            message.fields().map(|f| Ok((f.name().to_uppercase(), proto_type(&f, 0).map_err(&refused)?))).collect()
        }
        Compiled::Json => {
            let schema: Json = serde_json::from_str(&registered.schema).map_err(|e| refused(e.to_string()))?;
            match json_properties(&schema) {
                Some(properties) => properties.into_iter().map(|(name, node)| Ok((name.to_uppercase(), json_type(node, 0).map_err(&refused)?))).collect(),
                None => match single_name {
                    Some(name) => Ok(vec![(name.to_string(), json_type(&schema, 0).map_err(refused)?)]),
                    None => Err(refused("it is not an object".into())),
                },
            }
        }
    }
}

/// How deep nested types may go; deeper (or recursive) schemas are
/// refused rather than followed.
const MAX_DEPTH: usize = 32;

fn avro_type(schema: &Schema, compiled: &Compiled, depth: usize) -> Result<SqlType, String> {
    if depth > MAX_DEPTH {
        return Err("its types nest too deep (or refer to themselves)".into());
    }
    Ok(match compiled.resolve(schema) {
        Schema::Boolean => SqlType::Boolean,
        Schema::Int => SqlType::Int,
        Schema::Long => SqlType::Bigint,
        Schema::Float | Schema::Double => SqlType::Double,
        Schema::Bytes | Schema::Fixed(_) => SqlType::Bytes,
        Schema::String | Schema::Uuid | Schema::Enum(_) => SqlType::String,
        Schema::Decimal(d) => SqlType::Decimal { precision: d.precision.min(38) as u8, scale: d.scale.min(38) as u8 },
        Schema::Date => SqlType::Date,
        Schema::TimeMillis | Schema::TimeMicros => SqlType::Time,
        Schema::TimestampMillis | Schema::TimestampMicros | Schema::LocalTimestampMillis | Schema::LocalTimestampMicros => SqlType::Timestamp,
        Schema::Array(a) => SqlType::Array(Box::new(avro_type(&a.items, compiled, depth + 1)?)),
        Schema::Map(m) => SqlType::Map(Box::new(SqlType::String), Box::new(avro_type(&m.types, compiled, depth + 1)?)),
        Schema::Record(r) => {
            SqlType::Struct(r.fields.iter().map(|f| Ok((f.name.to_uppercase(), avro_type(&f.schema, compiled, depth + 1)?))).collect::<Result<_, String>>()?)
        }
        Schema::Union(u) => match u.variants().iter().filter(|v| !matches!(v, Schema::Null)).collect::<Vec<_>>()[..] {
            [one] => avro_type(one, compiled, depth + 1)?,
            _ => return Err("unions of several types are not supported".into()),
        },
        other => return Err(format!("the Avro type {other:?} is not supported")),
    })
}

fn proto_type(field: &FieldDescriptor, depth: usize) -> Result<SqlType, String> {
    if field.is_map() {
        let entry = field.kind();
        let entry = entry.as_message().ok_or("a map field without an entry type")?;
        return Ok(SqlType::Map(
            Box::new(proto_kind(&entry.map_entry_key_field().kind(), depth)?),
            Box::new(proto_type(&entry.map_entry_value_field(), depth + 1)?),
        ));
    }
    let item = proto_kind(&field.kind(), depth)?;
    Ok(if field.is_list() { SqlType::Array(Box::new(item)) } else { item })
}

fn proto_kind(kind: &Kind, depth: usize) -> Result<SqlType, String> {
    if depth > MAX_DEPTH {
        return Err("its messages nest too deep (or refer to themselves)".into());
    }
    Ok(match kind {
        Kind::Bool => SqlType::Boolean,
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => SqlType::Int,
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint32 | Kind::Fixed32 | Kind::Uint64 | Kind::Fixed64 => SqlType::Bigint,
        Kind::Float | Kind::Double => SqlType::Double,
        Kind::String | Kind::Enum(_) => SqlType::String,
        Kind::Bytes => SqlType::Bytes,
        Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => SqlType::Timestamp,
        Kind::Message(m) => SqlType::Struct(m.fields().map(|f| Ok((f.name().to_uppercase(), proto_type(&f, depth + 1)?))).collect::<Result<_, String>>()?),
    })
}

/// An object schema's properties, in their `connect.index` order (then
/// by name, as a JSON object holds them).
fn json_properties(schema: &Json) -> Option<Vec<(&String, &Json)>> {
    let properties = schema.get("properties")?.as_object()?;
    let mut properties: Vec<(&String, &Json)> = properties.iter().collect();
    properties.sort_by_key(|(_, node)| node.get("connect.index").and_then(Json::as_i64).unwrap_or(i64::MAX));
    Some(properties)
}

fn json_type(node: &Json, depth: usize) -> Result<SqlType, String> {
    if depth > MAX_DEPTH {
        return Err("its types nest too deep".into());
    }
    for choice in ["oneOf", "anyOf"] {
        if let Some(options) = node.get(choice).and_then(Json::as_array) {
            return match options.iter().filter(|o| o.get("type").and_then(Json::as_str) != Some("null")).collect::<Vec<_>>()[..] {
                [one] => json_type(one, depth + 1),
                _ => Err(format!("a {choice} of several types is not supported")),
            };
        }
    }
    let kind = match node.get("type") {
        Some(Json::String(kind)) => kind.as_str(),
        Some(Json::Array(kinds)) => match kinds.iter().filter_map(Json::as_str).filter(|k| *k != "null").collect::<Vec<_>>()[..] {
            [one] => one,
            _ => return Err("a type of several kinds is not supported".into()),
        },
        _ => return Err(format!("no type in {node}")),
    };
    let title = node.get("title").and_then(Json::as_str).unwrap_or_default();
    let connect_type = node.get("connect.type").and_then(Json::as_str).unwrap_or_default();
    Ok(match (kind, title, connect_type) {
        ("boolean", ..) => SqlType::Boolean,
        ("integer", "org.apache.kafka.connect.data.Date", _) => SqlType::Date,
        ("integer", "org.apache.kafka.connect.data.Time", _) => SqlType::Time,
        ("integer", "org.apache.kafka.connect.data.Timestamp", _) => SqlType::Timestamp,
        ("integer", _, "int8" | "int16" | "int32") => SqlType::Int,
        ("integer", ..) => SqlType::Bigint,
        ("number", "org.apache.kafka.connect.data.Decimal", _) => {
            let parameter = |name: &str| {
                node.get("connect.parameters")
                    .and_then(|p| p.get(name))
                    .and_then(|v| v.as_str().and_then(|s| s.parse().ok()).or(v.as_u64()))
                    .map(|v| v.min(38) as u8)
            };
            SqlType::Decimal { precision: parameter("connect.decimal.precision").unwrap_or(38), scale: parameter("scale").unwrap_or(0) }
        }
        ("number", ..) => SqlType::Double,
        ("string", _, "bytes") => SqlType::Bytes,
        ("string", ..) => SqlType::String,
        ("array", ..) => SqlType::Array(Box::new(json_type(node.get("items").ok_or("an array without items")?, depth + 1)?)),
        ("object", ..) => match (json_properties(node), node.get("additionalProperties")) {
            (Some(properties), _) => SqlType::Struct(
                properties.into_iter().map(|(name, node)| Ok((name.to_uppercase(), json_type(node, depth + 1)?))).collect::<Result<_, String>>()?,
            ),
            (None, Some(values)) if values.is_object() => SqlType::Map(Box::new(SqlType::String), Box::new(json_type(values, depth + 1)?)),
            _ => return Err("an object without properties".into()),
        },
        (other, ..) => return Err(format!("the JSON type {other} is not supported")),
    })
}

/// The schema ksqlDB would register for rows of `columns` in `format`:
/// its type (`AVRO`, `PROTOBUF`, `JSON`) and text. `single` makes the
/// schema of a lone column's value rather than of a record of columns.
pub fn schema_for(format: Format, columns: &[(String, SqlType)], single: bool) -> Result<(&'static str, String), SqlError> {
    let single = single && columns.len() == 1 && format != Format::Protobuf;
    let kind = format.schema_type().ok_or_else(|| SqlError::invalid(format!("The {} format has no schema in the registry.", format.name())))?;
    match format {
        Format::Avro => {
            let mut schema =
                if single { avro_schema(&columns[0].1, "KsqlDataSourceSchema", false)? } else { avro_record("KsqlDataSourceSchema", columns, true)? };
            if let Some(object) = schema.as_object_mut() {
                if object.get("type") == Some(&json!("record")) {
                    object.insert("namespace".into(), json!("io.confluent.ksql.avro_schemas"));
                }
            }
            Ok((kind, schema.to_string()))
        }
        Format::JsonSr => {
            let schema = if single { json_schema(&columns[0].1) } else { json_object(columns) };
            Ok((kind, schema.to_string()))
        }
        _ => Ok((kind, proto_schema(columns)?)),
    }
}

fn avro_record(name: &str, columns: &[(String, SqlType)], nullable: bool) -> Result<Json, SqlError> {
    let fields = columns
        .iter()
        .map(|(column, ty)| {
            let ty = avro_schema(ty, &format!("{name}_{column}"), nullable)?;
            Ok(if nullable { json!({ "name": column, "type": ty, "default": null }) } else { json!({ "name": column, "type": ty }) })
        })
        .collect::<Result<Vec<_>, SqlError>>()?;
    Ok(json!({ "type": "record", "name": name, "fields": fields }))
}

/// `ty` as Avro, in a union with null when `nullable`; records are named
/// after `name`.
fn avro_schema(ty: &SqlType, name: &str, nullable: bool) -> Result<Json, SqlError> {
    let schema = match ty {
        SqlType::Boolean => json!("boolean"),
        SqlType::Int => json!("int"),
        SqlType::Bigint => json!("long"),
        SqlType::Double => json!("double"),
        SqlType::String => json!("string"),
        SqlType::Bytes => json!("bytes"),
        SqlType::Decimal { precision, scale } => json!({ "type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale }),
        SqlType::Date => json!({ "type": "int", "logicalType": "date" }),
        SqlType::Time => json!({ "type": "int", "logicalType": "time-millis" }),
        SqlType::Timestamp => json!({ "type": "long", "logicalType": "timestamp-millis" }),
        SqlType::Array(item) => json!({ "type": "array", "items": avro_schema(item, name, true)? }),
        SqlType::Map(key, value) if **key == SqlType::String => json!({ "type": "map", "values": avro_schema(value, name, true)? }),
        SqlType::Map(key, _) => return Err(SqlError::invalid(format!("The AVRO format supports only maps with STRING keys, not {key}."))),
        SqlType::Struct(fields) => avro_record(name, fields, true)?,
    };
    Ok(if nullable { json!(["null", schema]) } else { schema })
}

fn json_object(columns: &[(String, SqlType)]) -> Json {
    let properties: serde_json::Map<String, Json> = columns
        .iter()
        .enumerate()
        .map(|(i, (name, ty))| (name.clone(), json!({ "connect.index": i, "oneOf": [{ "type": "null" }, json_schema(ty)] })))
        .collect();
    json!({ "type": "object", "properties": properties })
}

/// `ty` as JSON Schema, with Kafka Connect's hints for the types JSON
/// cannot tell apart, as ksqlDB writes them.
fn json_schema(ty: &SqlType) -> Json {
    match ty {
        SqlType::Boolean => json!({ "type": "boolean" }),
        SqlType::Int => json!({ "type": "integer", "connect.type": "int32" }),
        SqlType::Bigint => json!({ "type": "integer", "connect.type": "int64" }),
        SqlType::Double => json!({ "type": "number", "connect.type": "float64" }),
        SqlType::Decimal { precision, scale } => json!({
            "type": "number",
            "title": "org.apache.kafka.connect.data.Decimal",
            "connect.type": "bytes",
            "connect.parameters": { "scale": scale.to_string(), "connect.decimal.precision": precision.to_string() },
        }),
        SqlType::String => json!({ "type": "string" }),
        SqlType::Bytes => json!({ "type": "string", "connect.type": "bytes" }),
        SqlType::Date => json!({ "type": "integer", "title": "org.apache.kafka.connect.data.Date", "connect.type": "int32" }),
        SqlType::Time => json!({ "type": "integer", "title": "org.apache.kafka.connect.data.Time", "connect.type": "int32" }),
        SqlType::Timestamp => json!({ "type": "integer", "title": "org.apache.kafka.connect.data.Timestamp", "connect.type": "int64" }),
        SqlType::Array(item) => json!({ "type": "array", "items": { "oneOf": [{ "type": "null" }, json_schema(item)] } }),
        SqlType::Map(_, value) => json!({ "type": "object", "additionalProperties": { "oneOf": [{ "type": "null" }, json_schema(value)] } }),
        SqlType::Struct(fields) => json_object(fields),
    }
}

/// A proto3 file whose first message holds the columns; structs become
/// further messages, `ConnectDefault1`, `ConnectDefault2`... as ksqlDB
/// names them.
fn proto_schema(columns: &[(String, SqlType)]) -> Result<String, SqlError> {
    let mut messages: Vec<String> = Vec::new();
    let mut uses_timestamp = false;
    proto_message(columns, &mut messages, &mut uses_timestamp)?;
    let import = if uses_timestamp { "import \"google/protobuf/timestamp.proto\";\n\n" } else { "" };
    Ok(format!("syntax = \"proto3\";\n\n{import}{}", messages.join("\n")))
}

/// Adds the message of `columns` (and those of its structs) to
/// `messages`; returns its name.
fn proto_message(columns: &[(String, SqlType)], messages: &mut Vec<String>, uses_timestamp: &mut bool) -> Result<String, SqlError> {
    let slot = messages.len();
    let name = format!("ConnectDefault{}", slot + 1);
    messages.push(String::new());
    let mut body = format!("message {name} {{\n");
    for (number, (column, ty)) in columns.iter().enumerate() {
        let field = match ty {
            SqlType::Array(item) => format!("repeated {}", proto_scalar(item, messages, uses_timestamp)?),
            SqlType::Map(key, value) => {
                let key = match **key {
                    SqlType::String => "string",
                    SqlType::Int => "int32",
                    SqlType::Bigint => "int64",
                    SqlType::Boolean => "bool",
                    ref other => return Err(SqlError::invalid(format!("The PROTOBUF format does not support maps with {other} keys."))),
                };
                format!("map<{key}, {}>", proto_scalar(value, messages, uses_timestamp)?)
            }
            other => proto_scalar(other, messages, uses_timestamp)?,
        };
        body.push_str(&format!("  {field} {column} = {};\n", number + 1));
    }
    body.push_str("}\n");
    messages[slot] = body;
    Ok(name)
}

fn proto_scalar(ty: &SqlType, messages: &mut Vec<String>, uses_timestamp: &mut bool) -> Result<String, SqlError> {
    Ok(match ty {
        SqlType::Boolean => "bool".into(),
        SqlType::Int => "int32".into(),
        SqlType::Bigint => "int64".into(),
        SqlType::Double => "double".into(),
        SqlType::String => "string".into(),
        SqlType::Bytes => "bytes".into(),
        SqlType::Timestamp => {
            *uses_timestamp = true;
            "google.protobuf.Timestamp".into()
        }
        SqlType::Struct(fields) => proto_message(fields, messages, uses_timestamp)?,
        other => return Err(SqlError::invalid(format!("The PROTOBUF format does not support {other} here yet; use AVRO or JSON_SR."))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(format: Format, columns: &[(String, SqlType)], single: bool) -> (Arc<MemoryRegistry>, BoundSchema) {
        let registry = MemoryRegistry::shared();
        let (kind, text) = schema_for(format, columns, single).unwrap();
        let id = registry.register("t-value", kind, &text).unwrap();
        let registered = registry.schema(id).unwrap();
        (registry.clone(), BoundSchema::new("t-value".into(), registry, Some(&registered)).unwrap())
    }

    fn ride_columns() -> Vec<(String, SqlType)> {
        vec![
            ("VENDORID".into(), SqlType::Int),
            ("FARE".into(), SqlType::Decimal { precision: 10, scale: 2 }),
            ("PICKUP".into(), SqlType::Timestamp),
            ("ZONE".into(), SqlType::Struct(vec![("ID".into(), SqlType::Bigint), ("NAME".into(), SqlType::String)])),
            ("TAGS".into(), SqlType::Array(Box::new(SqlType::String))),
            ("EXTRAS".into(), SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::Double))),
        ]
    }

    fn ride() -> Vec<Value> {
        vec![
            Value::Int(2),
            Value::Decimal(Decimal { unscaled: -1250, scale: 2 }),
            Value::Timestamp(1_700_000_000_123),
            Value::Struct(vec![("ID".into(), Value::Bigint(132)), ("NAME".into(), Value::String("JFK Airport".into()))]),
            Value::Array(vec![Value::String("airport".into())]),
            Value::Map(vec![(Value::String("tip".into()), Value::Double(3.5)), (Value::String("toll".into()), Value::Double(6.94))]),
        ]
    }

    #[test]
    fn avro_rows_round_trip_through_the_schema_ksqldb_would_register() {
        let columns = ride_columns();
        let (registry, schema) = bound(Format::Avro, &columns, false);
        let text = registry.schema(1).unwrap().schema;
        assert!(text.contains("\"name\":\"KsqlDataSourceSchema\"") && text.contains("io.confluent.ksql.avro_schemas"), "{text}");
        assert_eq!(columns_of(&registry.schema(1).unwrap(), None).unwrap(), columns, "the schema describes the columns it was made from");
        let bytes = schema.write(&ride(), &columns, false, |_| unreachable!()).unwrap();
        assert_eq!(&bytes[..5], &[0, 0, 0, 0, 1]);
        let read: Vec<Value> = schema.read(&bytes, &columns, false).unwrap().into_iter().map(Result::unwrap).collect();
        assert_eq!(read, ride());
        let nulls = vec![Value::Null; columns.len()];
        let bytes = schema.write(&nulls, &columns, false, |_| unreachable!()).unwrap();
        assert!(schema.read(&bytes, &columns, false).unwrap().into_iter().all(|v| v == Ok(Value::Null)));
    }

    #[test]
    fn avro_reads_follow_field_names_across_schema_versions() {
        let registry = MemoryRegistry::shared();
        let old = r#"{"type":"record","name":"Ride","fields":[{"name":"vendorId","type":"int"},{"name":"payment","type":{"type":"enum","name":"Payment","symbols":["CARD","CASH"]}}]}"#;
        let new = r#"{"type":"record","name":"Ride","fields":[{"name":"payment","type":{"type":"enum","name":"Payment","symbols":["CARD","CASH"]}},{"name":"vendorId","type":"int"},{"name":"tip","type":["null","double"],"default":null}]}"#;
        let old_id = registry.register("rides-value", "AVRO", old).unwrap();
        let new_id = registry.register("rides-value", "AVRO", new).unwrap();
        let latest = registry.latest("rides-value").unwrap().unwrap();
        let columns = columns_of(&latest, None).unwrap();
        assert_eq!(columns, [("PAYMENT".to_string(), SqlType::String), ("VENDORID".into(), SqlType::Int), ("TIP".into(), SqlType::Double)]);
        let old_schema = Schema::parse_str(old).unwrap();
        let body =
            apache_avro::to_avro_datum(&old_schema, Avro::Record(vec![("vendorId".into(), Avro::Int(2)), ("payment".into(), Avro::Enum(1, "CASH".into()))]))
                .unwrap();
        let schema = BoundSchema::new("rides-value".into(), registry.clone(), Some(&latest)).unwrap();
        let read = schema.read(&wire(old_id, &body), &columns, false).unwrap();
        assert_eq!(read, [Ok(Value::String("CASH".into())), Ok(Value::Int(2)), Ok(Value::Null)]);
        let written = schema.write(&[Value::String("CARD".into()), Value::Int(1), Value::Double(2.5)], &columns, false, |_| unreachable!()).unwrap();
        assert_eq!(split_wire(&written).unwrap().0, new_id);
        let refused = schema.write(&[Value::String("CHEQUE".into()), Value::Int(1), Value::Null], &columns, false, |_| unreachable!());
        assert!(refused.unwrap_err().contains("CHEQUE"), "an enum takes only its symbols");
        assert!(
            schema.write(&[Value::String("CARD".into()), Value::Null, Value::Null], &columns, false, |_| unreachable!()).is_err(),
            "vendorId is not nullable"
        );
        assert!(schema.read(&wire(99, &body), &columns, false).is_err(), "an unknown schema id");
        assert!(schema.read(b"\x01abc", &columns, false).is_err(), "no magic byte");
    }

    #[test]
    fn single_key_columns_are_unwrapped_except_in_protobuf() {
        let key = vec![("ROWKEY".to_string(), SqlType::String)];
        assert_eq!(schema_for(Format::Avro, &key, true).unwrap().1, "\"string\"");
        assert_eq!(schema_for(Format::JsonSr, &key, true).unwrap().1, r#"{"type":"string"}"#);
        assert!(schema_for(Format::Protobuf, &key, true).unwrap().1.contains("string ROWKEY = 1;"));
        let (registry, schema) = bound(Format::Avro, &key, true);
        let bytes = schema.write(&[Value::String("132".into())], &key, true, |_| unreachable!()).unwrap();
        assert_eq!(&bytes[5..], b"\x06132", "an Avro string: zigzag length 3, then the bytes");
        assert_eq!(schema.read(&bytes, &key, true).unwrap(), [Ok(Value::String("132".into()))]);
        assert_eq!(columns_of(&registry.schema(1).unwrap(), Some("ROWKEY")).unwrap(), key);
    }

    #[test]
    fn protobuf_rows_round_trip() {
        let columns: Vec<(String, SqlType)> = ride_columns().into_iter().filter(|(_, ty)| !matches!(ty, SqlType::Decimal { .. })).collect::<Vec<_>>();
        let row: Vec<Value> = ride().into_iter().filter(|v| !matches!(v, Value::Decimal(_))).collect();
        let (registry, schema) = bound(Format::Protobuf, &columns, false);
        let text = registry.schema(1).unwrap().schema;
        assert!(text.contains("message ConnectDefault1") && text.contains("ConnectDefault2 ZONE = 3;"), "{text}");
        assert_eq!(columns_of(&registry.schema(1).unwrap(), None).unwrap(), columns);
        let bytes = schema.write(&row, &columns, false, |_| unreachable!()).unwrap();
        assert_eq!(&bytes[..6], &[0, 0, 0, 0, 1, 0], "the wire header and message index [0]");
        let read: Vec<Value> = schema.read(&bytes, &columns, false).unwrap().into_iter().map(Result::unwrap).collect();
        assert_eq!(read, row);
        assert!(schema_for(Format::Protobuf, &[("D".into(), SqlType::Decimal { precision: 4, scale: 2 })], false).is_err());

        let local = LocalProtobuf::new(&columns).unwrap();
        let bytes = local.write(&row, &columns).unwrap();
        assert_eq!(bytes[0], 0x08, "no header: field 1 (VENDORID), a varint, comes first");
        let read: Vec<Value> = local.read(&bytes, &columns).unwrap().into_iter().map(Result::unwrap).collect();
        assert_eq!(read, row);
        assert!(LocalProtobuf::new(&[("D".into(), SqlType::Date)]).is_err());
    }

    #[test]
    fn json_schemas_describe_columns_with_connect_s_hints() {
        let columns = ride_columns();
        let (registry, schema) = bound(Format::JsonSr, &columns, false);
        assert_eq!(columns_of(&registry.schema(1).unwrap(), None).unwrap(), columns);
        let bytes = schema.write(&ride(), &columns, false, |out| out.extend_from_slice(b"{}")).unwrap();
        assert_eq!(bytes, [0, 0, 0, 0, 1, b'{', b'}']);
        let hand_written = RegisteredSchema {
            id: 7,
            schema_type: "JSON".into(),
            schema: r#"{"type":"object","properties":{"fare":{"type":"number"},"id":{"type":["null","integer"]},"tags":{"type":"array","items":{"type":"string"}}}}"#.into(),
        };
        assert_eq!(
            columns_of(&hand_written, None).unwrap(),
            [("FARE".to_string(), SqlType::Double), ("ID".into(), SqlType::Bigint), ("TAGS".into(), SqlType::Array(Box::new(SqlType::String)))]
        );
    }

    #[test]
    fn decimals_keep_their_sign_in_the_fewest_bytes() {
        for unscaled in [0i128, 1, -1, 127, 128, -128, -129, 1250, -1250, i64::MAX as i128, i128::MIN, i128::MAX] {
            let bytes = unscaled_to_bytes(unscaled);
            assert_eq!(unscaled_from_bytes(&bytes), Some(unscaled), "{unscaled} as {bytes:?}");
        }
        assert_eq!(unscaled_to_bytes(128), [0, 128]);
        assert_eq!(unscaled_to_bytes(-1), [0xff]);
        assert_eq!(unscaled_from_bytes(&[0; 17]), None);
    }
}
