//! The streams and tables the SQL service knows: their topics, columns,
//! keys and formats, checked as ksqlDB checks them when they are created.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::ast::{ColumnDef, ColumnRole, Literal, SourceKind};
use crate::error::SqlError;
use crate::format::{Format, RowFormat};
use crate::row::ProcessingLog;
use crate::schema::{columns_of, schema_for, BoundSchema, RegisteredSchema, SchemaRegistry};
use crate::types::SqlType;

/// Columns every row has without being declared.
pub const PSEUDO_COLUMNS: [&str; 3] = ["ROWTIME", "ROWPARTITION", "ROWOFFSET"];
/// Columns of windowed rows.
pub const WINDOW_COLUMNS: [&str; 2] = ["WINDOWSTART", "WINDOWEND"];

/// A column of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type.
    pub sql_type: SqlType,
}

/// A column filled from its record's headers rather than its value.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderColumn {
    /// The column.
    pub column: Column,
    /// `None` for a `HEADERS` column (every header, as an array of
    /// `KEY`/`VALUE` structs); `Some(key)` for `HEADER('key')` (the last
    /// header with that key, as `BYTES`).
    pub key: Option<String>,
}

/// The type a `HEADERS` column must have.
pub fn headers_type() -> SqlType {
    SqlType::Array(Box::new(SqlType::Struct(vec![("KEY".into(), SqlType::String), ("VALUE".into(), SqlType::Bytes)])))
}

/// How a windowed source's keys carry their window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyWindow {
    /// Tumbling or hopping windows of this size: the key, then the
    /// window's start (Kafka Streams' time-windowed layout).
    Time {
        /// The windows' size.
        size_ms: i64,
    },
    /// Session windows: the key, then the session's end and start.
    Session,
}

/// A stream or table.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDef {
    /// Its name (upper case unless quoted).
    pub name: String,
    /// Stream or table.
    pub kind: SourceKind,
    /// The topic holding its records.
    pub topic: String,
    /// Key columns, in order.
    pub key: Vec<Column>,
    /// Value columns, in order.
    pub value: Vec<Column>,
    /// Columns from the records' headers, in order (after the value
    /// columns in a query's rows).
    pub headers: Vec<HeaderColumn>,
    /// The keys' format.
    pub key_format: Format,
    /// The values' format.
    pub value_format: Format,
    /// The value column whose contents are the records' event time (and,
    /// for a string column, the pattern to read it with).
    pub timestamp: Option<(String, Option<String>)>,
    /// How many partitions its topic should have, when it is created.
    pub partitions: Option<i32>,
    /// Whether keys carry windows (a windowed aggregation's table).
    pub window: Option<KeyWindow>,
    /// A `CREATE SOURCE` stream or table, which queries only read.
    pub read_only: bool,
    /// The registry schema of keys in AVRO, PROTOBUF or JSON_SR.
    pub key_schema: Option<Arc<BoundSchema>>,
    /// The registry schema of values in AVRO, PROTOBUF or JSON_SR.
    pub value_schema: Option<Arc<BoundSchema>>,
}

/// Where a source's schemas are bound: the registry, and whether the
/// source is written to (so a schema is registered for columns the
/// subject has none for yet).
struct Binding<'r> {
    registry: Option<&'r Arc<dyn SchemaRegistry>>,
    writes: bool,
}

impl Binding<'_> {
    /// Registers the schema of `columns` in `format` under `subject` and
    /// binds to it; `single` makes a lone key column's bare schema.
    fn register(&self, format: Format, subject: String, columns: &[(String, SqlType)], single: bool) -> Result<Arc<BoundSchema>, SqlError> {
        let registry = self.registry(format)?;
        let (kind, text) = schema_for(format, columns, single)?;
        let id = registry.register(&subject, kind, &text).map_err(|e| SqlError::invalid(format!("Could not register schema for subject {subject}: {e}")))?;
        let registered = RegisteredSchema { id, schema_type: kind.to_string(), schema: text };
        BoundSchema::new(subject, registry.clone(), Some(&registered)).map(Arc::new).map_err(SqlError::invalid)
    }

    fn registry(&self, format: Format) -> Result<&Arc<dyn SchemaRegistry>, SqlError> {
        self.registry.ok_or_else(|| {
            SqlError::invalid(format!("The {} format needs a schema registry: set ksql.schema.registry.url (runnel sql-server --registry URL).", format.name()))
        })
    }

    /// The schema of `subject` for `columns` in `format`: the one
    /// `schema_id` names, else the subject's latest; columns left empty
    /// are taken from it. A new subject gets a schema made from the
    /// columns, if the source is written to. `single_name` names a key's
    /// lone column when its schema is a bare value.
    fn bind(
        &self,
        format: Format,
        subject: String,
        schema_id: Option<i64>,
        columns: &mut Vec<Column>,
        single_name: Option<&str>,
    ) -> Result<Arc<BoundSchema>, SqlError> {
        let registry = self.registry(format)?;
        let failed = |e: String| SqlError::invalid(format!("Schema registry: {e}"));
        let registered = match schema_id {
            Some(id) => {
                let id = i32::try_from(id).map_err(|_| SqlError::invalid(format!("No schema has the id {id}.")))?;
                Some(registry.schema(id).map_err(failed)?)
            }
            None => registry.latest(&subject).map_err(failed)?,
        };
        if let Some(found) = registered.as_ref().filter(|r| Some(r.schema_type.as_str()) != format.schema_type()) {
            return Err(SqlError::invalid(format!(
                "The schema {} of subject {subject} is {}, which the {} format cannot read.",
                found.id,
                found.schema_type,
                format.name()
            )));
        }
        let registered = match registered {
            Some(registered) => {
                if columns.is_empty() {
                    *columns = columns_of(&registered, single_name)?.into_iter().map(|(name, sql_type)| Column { name, sql_type }).collect();
                }
                Some(registered)
            }
            None if columns.is_empty() => {
                let what = if single_name.is_some() { "keys" } else { "values" };
                let topic = subject.rsplit_once('-').map_or(subject.as_str(), |(topic, _)| topic);
                return Err(SqlError::invalid(format!(
                    "Schema for message {what} on topic '{topic}' does not exist in the Schema Registry.\nSubject: {subject}"
                )));
            }
            None if self.writes => {
                let pairs: Vec<(String, SqlType)> = columns.iter().map(|c| (c.name.clone(), c.sql_type.clone())).collect();
                return self.register(format, subject, &pairs, single_name.is_some());
            }
            None => None,
        };
        BoundSchema::new(subject, registry.clone(), registered.as_ref()).map(Arc::new).map_err(SqlError::invalid)
    }
}

impl SourceDef {
    /// Key columns as (name, type) pairs.
    pub fn key_columns(&self) -> Vec<(String, SqlType)> {
        self.key.iter().map(|c| (c.name.clone(), c.sql_type.clone())).collect()
    }

    /// Value columns as (name, type) pairs.
    pub fn value_columns(&self) -> Vec<(String, SqlType)> {
        self.value.iter().map(|c| (c.name.clone(), c.sql_type.clone())).collect()
    }

    /// How its keys are read and written.
    pub fn key_row_format(&self, log: Arc<ProcessingLog>) -> RowFormat {
        RowFormat::key(self.key_format, self.key_columns(), &self.topic, log).with_schema(self.key_schema.clone())
    }

    /// How its values are read and written.
    pub fn value_row_format(&self, log: Arc<ProcessingLog>) -> RowFormat {
        RowFormat::value(self.value_format, self.value_columns(), &self.topic, log).with_schema(self.value_schema.clone())
    }

    /// Registers the schemas a query writing into this new sink writes
    /// with, made from its columns, for AVRO, PROTOBUF and JSON_SR.
    pub fn register_sink_schemas(&mut self, registry: Option<&Arc<dyn SchemaRegistry>>) -> Result<(), SqlError> {
        let binding = Binding { registry, writes: true };
        if self.value_format.uses_registry() {
            self.value_schema = Some(binding.register(self.value_format, format!("{}-value", self.topic), &self.value_columns(), false)?);
        }
        if self.key_format.uses_registry() && !self.key.is_empty() {
            self.key_schema = Some(binding.register(self.key_format, format!("{}-key", self.topic), &self.key_columns(), true)?);
        }
        Ok(())
    }

    /// The source a `CREATE STREAM|TABLE` statement declares. Columns it
    /// leaves out of AVRO, PROTOBUF and JSON_SR keys or values come from
    /// the topic's subjects in `registry`.
    pub fn declared(
        kind: SourceKind,
        name: &str,
        columns: &[ColumnDef],
        properties: &[(String, Literal)],
        read_only: bool,
        registry: Option<&Arc<dyn SchemaRegistry>>,
    ) -> Result<SourceDef, SqlError> {
        let mut seen: Vec<&str> = Vec::new();
        let (mut key, mut value, mut headers) = (Vec::new(), Vec::new(), Vec::new());
        for column in columns {
            if seen.contains(&column.name.as_str()) {
                return Err(SqlError::invalid(format!("Duplicate column names: {}", column.name)));
            }
            seen.push(&column.name);
            if PSEUDO_COLUMNS.contains(&column.name.as_str()) || WINDOW_COLUMNS.contains(&column.name.as_str()) {
                return Err(SqlError::invalid(format!("'{}' is a reserved column name. You cannot use it as a name for a column.", column.name)));
            }
            let entry = Column { name: column.name.clone(), sql_type: column.sql_type.clone() };
            match (&column.role, kind) {
                (ColumnRole::Key, SourceKind::Stream) | (ColumnRole::PrimaryKey, SourceKind::Table) => key.push(entry),
                (ColumnRole::Key, SourceKind::Table) => {
                    return Err(SqlError::invalid(format!("Column `{}` is a 'KEY' column: please use 'PRIMARY KEY' for tables.", column.name)))
                }
                (ColumnRole::PrimaryKey, SourceKind::Stream) => {
                    return Err(SqlError::invalid(format!("Column `{}` is a 'PRIMARY KEY' column: please use 'KEY' for streams.", column.name)))
                }
                (ColumnRole::Value, _) => value.push(entry),
                (ColumnRole::Headers | ColumnRole::Header(_), SourceKind::Table) => {
                    return Err(SqlError::invalid(format!("Header columns (`{}`) are available on streams only.", column.name)));
                }
                (ColumnRole::Headers, _) => {
                    if entry.sql_type != headers_type() {
                        return Err(SqlError::invalid(format!("Invalid type for HEADERS column: expected {}, got {}", headers_type(), entry.sql_type)));
                    }
                    if headers.iter().any(|h: &HeaderColumn| h.key.is_none()) {
                        return Err(SqlError::invalid("Schema already contains a HEADERS column."));
                    }
                    headers.push(HeaderColumn { column: entry, key: None });
                }
                (ColumnRole::Header(header), _) => {
                    if entry.sql_type != SqlType::Bytes {
                        return Err(SqlError::invalid(format!("Invalid type for HEADER('{header}') column: expected BYTES, got {}", entry.sql_type)));
                    }
                    headers.push(HeaderColumn { column: entry, key: Some(header.clone()) });
                }
            }
        }
        let properties = Properties::new(properties)?;
        let topic =
            properties.string("KAFKA_TOPIC")?.ok_or_else(|| SqlError::invalid("Missing required property \"KAFKA_TOPIC\" which has no default value."))?;
        let mut source = SourceDef {
            name: name.to_string(),
            kind,
            topic,
            key,
            value,
            headers,
            key_format: Format::Kafka,
            value_format: Format::Json,
            timestamp: None,
            partitions: None,
            window: None,
            read_only,
            key_schema: None,
            value_schema: None,
        };
        properties.apply(&mut source, true)?;
        let binding = Binding { registry, writes: !read_only };
        if source.value_format.uses_registry() {
            let subject = format!("{}-value", source.topic);
            source.value_schema = Some(binding.bind(source.value_format, subject, properties.integer("VALUE_SCHEMA_ID")?, &mut source.value, None)?);
        }
        if source.key_format.uses_registry() {
            let subject = format!("{}-key", source.topic);
            source.key_schema = Some(binding.bind(source.key_format, subject, properties.integer("KEY_SCHEMA_ID")?, &mut source.key, Some("ROWKEY"))?);
        }
        if kind == SourceKind::Table && source.key.is_empty() {
            return Err(SqlError::invalid("Tables require a PRIMARY KEY. Please define the PRIMARY KEY."));
        }
        if source.key.is_empty() && source.value.is_empty() && source.headers.is_empty() {
            return Err(SqlError::invalid("The statement does not define any columns."));
        }
        source.check()?;
        Ok(source)
    }

    /// Checks formats against columns, and the timestamp column.
    pub fn check(&self) -> Result<(), SqlError> {
        self.key_format.check(&self.key_columns(), "key")?;
        self.value_format.check(&self.value_columns(), "value")?;
        if self.key_format == Format::None && !self.key.is_empty() {
            return Err(SqlError::invalid("The NONE key format cannot have key columns."));
        }
        if let Some((column, format)) = &self.timestamp {
            let found = self
                .key
                .iter()
                .chain(&self.value)
                .find(|c| &c.name == column)
                .ok_or_else(|| SqlError::invalid(format!("The TIMESTAMP column set in the WITH clause does not exist in the schema: '{column}'")))?;
            match (&found.sql_type, format) {
                (SqlType::Bigint | SqlType::Timestamp, None) | (SqlType::String, Some(_)) => {}
                (SqlType::String, None) => return Err(SqlError::invalid(format!("A TIMESTAMP column of type STRING needs a TIMESTAMP_FORMAT: '{column}'"))),
                (other, _) => {
                    return Err(SqlError::invalid(format!(
                        "The TIMESTAMP column must be BIGINT, TIMESTAMP, or STRING with a TIMESTAMP_FORMAT; '{column}' is {other}"
                    )))
                }
            }
        }
        Ok(())
    }
}

/// A `WITH` clause's properties, by upper-cased name.
pub struct Properties(BTreeMap<String, Literal>);

/// The properties a `WITH` clause may set.
const KNOWN: &[&str] = &[
    "KAFKA_TOPIC",
    "VALUE_FORMAT",
    "KEY_FORMAT",
    "FORMAT",
    "PARTITIONS",
    "REPLICAS",
    "TIMESTAMP",
    "TIMESTAMP_FORMAT",
    "VALUE_DELIMITER",
    "KEY_DELIMITER",
    "WRAP_SINGLE_VALUE",
    "RETENTION_MS",
    "WINDOW_TYPE",
    "WINDOW_SIZE",
    "KEY_SCHEMA_ID",
    "VALUE_SCHEMA_ID",
];

impl Properties {
    /// Checks the names and keeps the values.
    pub fn new(properties: &[(String, Literal)]) -> Result<Properties, SqlError> {
        let mut map = BTreeMap::new();
        for (name, value) in properties {
            if !KNOWN.contains(&name.as_str()) {
                return Err(SqlError::invalid(format!("Invalid config variable(s) in the WITH clause: {name}")));
            }
            map.insert(name.clone(), value.clone());
        }
        Ok(Properties(map))
    }

    /// A property's text.
    pub fn string(&self, name: &str) -> Result<Option<String>, SqlError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Literal::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(SqlError::invalid(format!("The property {name} takes a string, not {other}"))),
        }
    }

    /// A property's whole number.
    pub fn integer(&self, name: &str) -> Result<Option<i64>, SqlError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Literal::Integer(i)) => Ok(Some(*i)),
            Some(Literal::String(s)) => s.trim().parse().map(Some).map_err(|_| SqlError::invalid(format!("The property {name} takes a number, not '{s}'"))),
            Some(other) => Err(SqlError::invalid(format!("The property {name} takes a number, not {other}"))),
        }
    }

    /// Sets a source's formats, topic partitions and timestamp from the
    /// properties; `declared` sources may not name a window type.
    pub fn apply(&self, source: &mut SourceDef, declared: bool) -> Result<(), SqlError> {
        let format = self.string("FORMAT")?;
        if format.is_some() && (self.0.contains_key("VALUE_FORMAT") || self.0.contains_key("KEY_FORMAT")) {
            return Err(SqlError::invalid("Cannot supply both 'FORMAT' and 'KEY_FORMAT' or 'VALUE_FORMAT' properties."));
        }
        if let Some(both) = format {
            source.key_format = Format::parse(&both)?;
            source.value_format = source.key_format;
        }
        if let Some(value) = self.string("VALUE_FORMAT")? {
            source.value_format = Format::parse(&value)?;
        } else if declared && self.string("FORMAT")?.is_none() {
            return Err(SqlError::invalid("Missing required property \"VALUE_FORMAT\" which has no default value."));
        }
        if let Some(key) = self.string("KEY_FORMAT")? {
            source.key_format = Format::parse(&key)?;
        }
        if source.key.is_empty() && self.string("KEY_FORMAT")?.is_none() && self.string("FORMAT")?.is_none() {
            source.key_format = Format::Kafka;
        }
        if let Some(partitions) = self.integer("PARTITIONS")? {
            source.partitions =
                Some(i32::try_from(partitions).ok().filter(|p| *p > 0).ok_or_else(|| SqlError::invalid("PARTITIONS must be a positive number"))?);
        }
        if let Some(column) = self.string("TIMESTAMP")? {
            source.timestamp = Some((column.to_uppercase(), self.string("TIMESTAMP_FORMAT")?));
        } else if self.0.contains_key("TIMESTAMP_FORMAT") {
            return Err(SqlError::invalid("TIMESTAMP_FORMAT is only used with TIMESTAMP."));
        }
        if let Some(delimiter) = self.string("VALUE_DELIMITER")? {
            if delimiter != "," {
                return Err(SqlError::invalid("Only ',' is supported as VALUE_DELIMITER yet."));
            }
        }
        Ok(())
    }
}

/// The streams and tables, by name.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    sources: BTreeMap<String, SourceDef>,
}

impl Catalog {
    /// The stream or table called `name`.
    pub fn get(&self, name: &str) -> Result<&SourceDef, SqlError> {
        self.sources.get(name).ok_or_else(|| SqlError::NotFound(format!("{name} does not exist.")))
    }

    /// Whether `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.sources.contains_key(name)
    }

    /// Adds or replaces a source.
    pub fn put(&mut self, source: SourceDef) {
        self.sources.insert(source.name.clone(), source);
    }

    /// Removes a source.
    pub fn remove(&mut self, name: &str) -> Option<SourceDef> {
        self.sources.remove(name)
    }

    /// Every source, by name.
    pub fn all(&self) -> impl Iterator<Item = &SourceDef> {
        self.sources.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::Statement;
    use crate::parser::parse;

    fn declare(text: &str) -> Result<SourceDef, SqlError> {
        match parse(text)?.remove(0).statement {
            Statement::CreateSource { kind, name, columns, properties, source, .. } => SourceDef::declared(kind, &name, &columns, &properties, source, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sources_are_declared_with_their_keys_formats_and_timestamps() {
        let rides = declare("CREATE STREAM rides (id STRING KEY, fare DOUBLE, pickup STRING) WITH (kafka_topic='rides', value_format='json', timestamp='pickup', timestamp_format='yyyy-MM-dd HH:mm:ss', partitions=3);").unwrap();
        assert_eq!(rides.key_columns(), [("ID".to_string(), SqlType::String)]);
        assert_eq!((rides.key_format, rides.value_format, rides.partitions), (Format::Kafka, Format::Json, Some(3)));
        assert_eq!(rides.timestamp, Some(("PICKUP".into(), Some("yyyy-MM-dd HH:mm:ss".into()))));
        let zones = declare("CREATE TABLE zones (id INT PRIMARY KEY, name STRING) WITH (kafka_topic='zones', format='delimited');").unwrap();
        assert_eq!((zones.key_format, zones.value_format), (Format::Delimited, Format::Delimited));
    }

    #[test]
    fn bad_declarations_are_refused_as_ksqldb_refuses_them() {
        let refused = |text: &str| declare(text).unwrap_err().to_string();
        assert_eq!(
            refused("CREATE TABLE t (a INT) WITH (kafka_topic='t', value_format='json');"),
            "Tables require a PRIMARY KEY. Please define the PRIMARY KEY."
        );
        assert_eq!(
            refused("CREATE TABLE t (a INT KEY) WITH (kafka_topic='t', value_format='json');"),
            "Column `A` is a 'KEY' column: please use 'PRIMARY KEY' for tables."
        );
        assert_eq!(
            refused("CREATE STREAM s (a INT PRIMARY KEY) WITH (kafka_topic='t', value_format='json');"),
            "Column `A` is a 'PRIMARY KEY' column: please use 'KEY' for streams."
        );
        assert_eq!(refused("CREATE STREAM s (a INT, a STRING) WITH (kafka_topic='t', value_format='json');"), "Duplicate column names: A");
        assert_eq!(
            refused("CREATE STREAM s (rowtime BIGINT) WITH (kafka_topic='t', value_format='json');"),
            "'ROWTIME' is a reserved column name. You cannot use it as a name for a column."
        );
        assert_eq!(refused("CREATE STREAM s (a INT) WITH (value_format='json');"), "Missing required property \"KAFKA_TOPIC\" which has no default value.");
        assert_eq!(refused("CREATE STREAM s (a INT) WITH (kafka_topic='t');"), "Missing required property \"VALUE_FORMAT\" which has no default value.");
        assert_eq!(
            refused("CREATE STREAM s (a INT) WITH (kafka_topic='t', value_format='json', colour='red');"),
            "Invalid config variable(s) in the WITH clause: COLOUR"
        );
        assert_eq!(
            refused("CREATE STREAM s (a INT) WITH (kafka_topic='t', value_format='json', timestamp='b');"),
            "The TIMESTAMP column set in the WITH clause does not exist in the schema: 'B'"
        );
        assert_eq!(
            refused("CREATE STREAM s (k STRING KEY, j STRING KEY, a INT) WITH (kafka_topic='t', value_format='json');"),
            "The KAFKA format supports only one key column; use JSON or DELIMITED."
        );
    }
}
