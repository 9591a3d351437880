//! The engine: statements change the catalog and start persistent
//! queries, as ksqlDB's engine does. It holds no connection to Kafka: the
//! service runs its queries' topologies with `KafkaStreams`, and tests run
//! them on runnel-streams' test driver.

use std::collections::BTreeMap;
use std::sync::Arc;

use runnel_streams::{StreamsBuilder, Topology};

use crate::ast::{Parsed, SourceKind, Statement};
use crate::catalog::{Catalog, Column, Properties, SourceDef};
use crate::error::SqlError;
use crate::parser::parse;
use crate::planner::{plan, Plan, SinkSpec};
use crate::row::ProcessingLog;
use crate::schema::SchemaRegistry;

/// A query that runs until it is terminated, writing into a stream or
/// table of the catalog.
#[derive(Clone)]
pub struct PersistentQuery {
    /// Its id, as ksqlDB forms them: `CSAS_<SINK>_<n>`, `CTAS_<SINK>_<n>`
    /// or `INSERTQUERY_<n>`.
    pub id: String,
    /// The statement that started it.
    pub statement: String,
    /// The stream or table it writes into.
    pub sink_name: String,
    /// Its plan.
    pub plan: Plan,
    /// Where it writes.
    pub sink: SinkSpec,
}

/// A record `INSERT INTO ... VALUES` writes.
#[derive(Debug, Clone, PartialEq)]
pub struct ValuesRecord {
    /// The topic.
    pub topic: String,
    /// The key's bytes.
    pub key: Option<Vec<u8>>,
    /// The value's bytes.
    pub value: Option<Vec<u8>>,
    /// The timestamp.
    pub timestamp: i64,
}

/// What a statement did.
pub enum Outcome {
    /// A stream or table was created (or replaced).
    Created {
        /// Its name.
        name: String,
        /// Stream or table.
        kind: SourceKind,
    },
    /// A persistent query started, creating its sink if it was new.
    Started {
        /// The query's id.
        query: String,
    },
    /// A stream or table was dropped.
    Dropped {
        /// Its name.
        name: String,
    },
    /// Queries were terminated.
    Terminated {
        /// Their ids.
        queries: Vec<String>,
    },
    /// A push query to run for the caller, with its plan.
    Transient(Box<Plan>),
    /// A property or variable was set or unset.
    Set,
    /// A statement the engine does not run itself (listings,
    /// descriptions, `PRINT`, `INSERT ... VALUES`): the service answers it.
    Other(Statement),
}

/// The catalog, the persistent queries, and session properties.
/// Cloned to try a statement before it is committed to.
#[derive(Default, Clone)]
pub struct Engine {
    catalog: Catalog,
    queries: Vec<PersistentQuery>,
    next_query: usize,
    log: Arc<ProcessingLog>,
    /// `SET` properties.
    pub properties: BTreeMap<String, String>,
    /// `DEFINE`d variables.
    pub variables: BTreeMap<String, String>,
    /// Where AVRO, PROTOBUF and JSON_SR schemas are found and registered.
    registry: Option<Arc<dyn SchemaRegistry>>,
}

impl Engine {
    /// An engine with an empty catalog.
    pub fn new() -> Engine {
        Engine::default()
    }

    /// An engine whose AVRO, PROTOBUF and JSON_SR sources and sinks use
    /// the schemas in `registry`.
    pub fn with_registry(registry: Arc<dyn SchemaRegistry>) -> Engine {
        Engine { registry: Some(registry), ..Engine::default() }
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The running persistent queries.
    pub fn queries(&self) -> &[PersistentQuery] {
        &self.queries
    }

    /// The processing log every query reports to.
    pub fn processing_log(&self) -> Arc<ProcessingLog> {
        self.log.clone()
    }

    /// Runs a script of statements; stops at the first that fails, having
    /// kept what the ones before it did (each statement is all or
    /// nothing).
    pub fn execute(&mut self, text: &str) -> Result<Vec<Outcome>, SqlError> {
        let text = substitute(text, &self.variables);
        let mut outcomes = Vec::new();
        for parsed in parse(&text)? {
            outcomes.push(self.execute_statement(&parsed)?);
        }
        Ok(outcomes)
    }

    /// Numbers the next persistent queries from `next`: the service passes
    /// each statement's offset in its command topic, so every server of a
    /// service gives a query the same id (and its application the same
    /// consumer group).
    pub fn number_queries_from(&mut self, next: usize) {
        self.next_query = next;
    }

    /// Records how many partitions a source's topic has, found on the
    /// cluster: the default for the topics of queries reading it.
    pub fn set_partitions(&mut self, name: &str, partitions: i32) {
        if let Ok(source) = self.catalog.get(name) {
            let mut source = source.clone();
            source.partitions = Some(partitions);
            self.catalog.put(source);
        }
    }

    /// Whether `CREATE ... name` goes ahead: an error if the name is taken
    /// and neither `OR REPLACE` nor `IF NOT EXISTS` was said; `false` if
    /// it is taken and `IF NOT EXISTS` was.
    fn may_create(&self, kind: SourceKind, name: &str, or_replace: bool, if_not_exists: bool) -> Result<bool, SqlError> {
        let Ok(existing) = self.catalog.get(name) else { return Ok(true) };
        if if_not_exists {
            return Ok(false);
        }
        if !or_replace {
            return Err(SqlError::Exists(format!(
                "Cannot add {} '{name}': A {} with the same name already exists",
                kind.to_string().to_lowercase(),
                existing.kind.to_string().to_lowercase()
            )));
        }
        Ok(true)
    }

    /// Runs one parsed statement (all or nothing).
    pub fn execute_statement(&mut self, parsed: &Parsed) -> Result<Outcome, SqlError> {
        match &parsed.statement {
            Statement::CreateSource { kind, name, or_replace, if_not_exists, source, columns, properties } => {
                if !self.may_create(*kind, name, *or_replace, *if_not_exists)? {
                    return Ok(Outcome::Created { name: name.clone(), kind: *kind });
                }
                let declared = SourceDef::declared(*kind, name, columns, properties, *source, self.registry.as_ref())?;
                self.catalog.put(declared);
                Ok(Outcome::Created { name: name.clone(), kind: *kind })
            }
            Statement::CreateAs { kind, name, or_replace, if_not_exists, properties, query } => {
                if !self.may_create(*kind, name, *or_replace, *if_not_exists)? {
                    return Ok(Outcome::Created { name: name.clone(), kind: *kind });
                }
                let planned = plan(&self.catalog, query, true, self.log.clone())?;
                if planned.output.kind != *kind {
                    let (produced, statement) = match planned.output.kind {
                        SourceKind::Table => ("TABLE", "CREATE TABLE AS SELECT"),
                        SourceKind::Stream => ("STREAM", "CREATE STREAM AS SELECT"),
                    };
                    return Err(SqlError::invalid(format!(
                        "Invalid result type. Your SELECT query produces a {produced}. Please use {statement} statement instead."
                    )));
                }
                let from = self.catalog.get(&planned.source_names()[0])?.clone();
                let mut sink = SourceDef {
                    name: name.clone(),
                    kind: *kind,
                    topic: name.clone(),
                    key: planned.output.key.iter().map(|(name, sql_type)| Column { name: name.clone(), sql_type: sql_type.clone() }).collect(),
                    value: planned.output.value.iter().map(|(name, sql_type)| Column { name: name.clone(), sql_type: sql_type.clone() }).collect(),
                    key_format: from.key_format,
                    value_format: from.value_format,
                    timestamp: None,
                    partitions: from.partitions,
                    window: planned.output.window,
                    read_only: false,
                    headers: Vec::new(),
                    key_schema: None,
                    value_schema: None,
                };
                let with = Properties::new(properties)?;
                if let Some(topic) = with.string("KAFKA_TOPIC")? {
                    sink.topic = topic;
                }
                with.apply(&mut sink, false)?;
                if sink.key.len() > 1 && sink.key_format == crate::format::Format::Kafka {
                    sink.key_format = crate::format::Format::Json;
                }
                sink.check()?;
                sink.register_sink_schemas(self.registry.as_ref())?;
                let prefix = if *kind == SourceKind::Stream { "CSAS" } else { "CTAS" };
                let id = format!("{prefix}_{name}_{}", self.next_query);
                self.next_query += 1;
                let spec = SinkSpec::of(&sink);
                self.queries.retain(|q| q.sink_name != *name || q.id.starts_with("INSERTQUERY"));
                self.catalog.put(sink);
                self.queries.push(PersistentQuery { id: id.clone(), statement: parsed.text.clone(), sink_name: name.clone(), plan: planned, sink: spec });
                Ok(Outcome::Started { query: id })
            }
            Statement::InsertInto { target, query, .. } => {
                let sink = self.catalog.get(target)?.clone();
                let planned = plan(&self.catalog, query, true, self.log.clone())?;
                let columns = |c: &[Column]| c.iter().map(|c| (c.name.clone(), c.sql_type.clone())).collect::<Vec<_>>();
                if planned.output.key != columns(&sink.key) || planned.output.value != columns(&sink.value) || planned.output.kind != sink.kind {
                    return Err(SqlError::invalid(format!(
                        "Incompatible schema between results and sink. Result schema is {}, but sink schema is {}.",
                        describe_schema(&planned.output.key, &planned.output.value),
                        describe_schema(&columns(&sink.key), &columns(&sink.value))
                    )));
                }
                let id = format!("INSERTQUERY_{}", self.next_query);
                self.next_query += 1;
                let spec = SinkSpec::of(&sink);
                self.queries.push(PersistentQuery { id: id.clone(), statement: parsed.text.clone(), sink_name: target.clone(), plan: planned, sink: spec });
                Ok(Outcome::Started { query: id })
            }
            Statement::Drop { kind, name, if_exists, .. } => {
                let Ok(existing) = self.catalog.get(name) else {
                    return if *if_exists {
                        Ok(Outcome::Dropped { name: name.clone() })
                    } else {
                        Err(SqlError::NotFound(format!("{} {name} does not exist.", kind.to_string().to_lowercase())))
                    };
                };
                if existing.kind != *kind {
                    return Err(SqlError::invalid(format!("Incompatible data source type is {}, but statement was DROP {kind}", existing.kind)));
                }
                let writers: Vec<&str> = self.queries.iter().filter(|q| &q.sink_name == name).map(|q| q.id.as_str()).collect();
                let readers: Vec<&str> = self.queries.iter().filter(|q| q.plan.source_names().contains(name)).map(|q| q.id.as_str()).collect();
                if !readers.is_empty() || !writers.is_empty() {
                    return Err(SqlError::invalid(format!(
                        "Cannot drop {name}.\nThe following queries read from this source: [{}].\nThe following queries write into this source: [{}].\nYou need to terminate them before dropping {name}.",
                        readers.join(", "),
                        writers.join(", ")
                    )));
                }
                self.catalog.remove(name);
                Ok(Outcome::Dropped { name: name.clone() })
            }
            Statement::Terminate { query } => {
                let ended: Vec<String> = match query {
                    None => self.queries.drain(..).map(|q| q.id).collect(),
                    Some(id) => {
                        let position = self
                            .queries
                            .iter()
                            .position(|q| q.id.eq_ignore_ascii_case(id))
                            .ok_or_else(|| SqlError::NotFound(format!("Unknown queryId: {id}")))?;
                        vec![self.queries.remove(position).id]
                    }
                };
                Ok(Outcome::Terminated { queries: ended })
            }
            Statement::Select(query) => Ok(Outcome::Transient(Box::new(plan(&self.catalog, query, false, self.log.clone())?))),
            Statement::Set { property, value } => {
                self.properties.insert(property.clone(), value.clone());
                Ok(Outcome::Set)
            }
            Statement::Unset { property } => {
                self.properties.remove(property);
                Ok(Outcome::Set)
            }
            Statement::Define { name, value } => {
                self.variables.insert(name.clone(), value.clone());
                Ok(Outcome::Set)
            }
            Statement::Undefine { name } => {
                self.variables.remove(name);
                Ok(Outcome::Set)
            }
            other => Ok(Outcome::Other(other.clone())),
        }
    }

    /// The record `INSERT INTO target (columns) VALUES (values)` writes:
    /// its topic, key bytes, value bytes and timestamp (`ROWTIME` if given,
    /// else `now`). Columns not named are NULL; without a column list the
    /// values are the key columns then the value columns, in order.
    pub fn values_record(&self, target: &str, columns: &[String], values: &[crate::ast::Expr], now: i64) -> Result<ValuesRecord, SqlError> {
        use crate::eval::{cast, compile, Eval, Scope};
        use crate::value::Value;
        let sink = self.catalog.get(target)?;
        if sink.read_only {
            return Err(SqlError::invalid(format!("Cannot insert values into read-only source: {target}")));
        }
        let all: Vec<&Column> = sink.key.iter().chain(&sink.value).collect();
        let named: Vec<String> = if columns.is_empty() { all.iter().map(|c| c.name.clone()).collect() } else { columns.to_vec() };
        if named.len() != values.len() {
            return Err(SqlError::invalid(format!("Expected number columns and values to match: {}, {}", named.len(), values.len())));
        }
        let (mut key, mut value) = (vec![Value::Null; sink.key.len()], vec![Value::Null; sink.value.len()]);
        let mut timestamp = now;
        for (name, expr) in named.iter().zip(values) {
            let mut ctx = Eval::default();
            let evaluated = compile(expr, &Scope::default())?.eval(&[], &mut ctx);
            if let Some(error) = ctx.errors.pop() {
                return Err(SqlError::invalid(format!("Failed to insert values into '{target}': {error}")));
            }
            if name == "ROWTIME" {
                timestamp = evaluated.as_i64().ok_or_else(|| SqlError::invalid("ROWTIME takes a BIGINT"))?;
                continue;
            }
            if sink.headers.iter().any(|h| &h.column.name == name) {
                return Err(SqlError::invalid(format!("Cannot insert into HEADER columns: {name}")));
            }
            let (slot, column) = match (sink.key.iter().position(|c| &c.name == name), sink.value.iter().position(|c| &c.name == name)) {
                (Some(i), _) => (&mut key[i], &sink.key[i]),
                (None, Some(i)) => (&mut value[i], &sink.value[i]),
                _ => return Err(SqlError::invalid(format!("Column name {name} does not exist."))),
            };
            *slot = evaluated
                .clone()
                .widen_to(&column.sql_type)
                .or_else(|| cast(evaluated.clone(), &column.sql_type).ok())
                .ok_or_else(|| SqlError::invalid(format!("Expected type {} for field {name} but got {evaluated}", column.sql_type)))?;
        }
        let log = self.log.clone();
        let refused = |e: String| SqlError::invalid(format!("Failed to insert values into '{target}'. {e}"));
        let key = if key.iter().all(Value::is_null) { None } else { sink.key_row_format(log.clone()).try_write(&key).map_err(refused)? };
        let value = sink.value_row_format(log).try_write(&value).map_err(refused)?;
        Ok(ValuesRecord { topic: sink.topic.clone(), key, value, timestamp })
    }

    /// Every persistent query's nodes in one topology (as the test driver
    /// runs them together).
    pub fn topology(&self) -> Topology {
        let builder = StreamsBuilder::new();
        for query in &self.queries {
            query.plan.build(&builder, &query.sink);
        }
        builder.build()
    }
}

/// `text` with each `${name}` replaced by its `DEFINE`d value.
pub fn substitute(text: &str, variables: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (name, value) in variables {
        for spelling in [name.clone(), name.to_lowercase()] {
            out = out.replace(&format!("${{{spelling}}}"), value);
        }
    }
    out
}

fn describe_schema(key: &[(String, crate::types::SqlType)], value: &[(String, crate::types::SqlType)]) -> String {
    let keys = key.iter().map(|(n, t)| format!("`{n}` {t} KEY"));
    let values = value.iter().map(|(n, t)| format!("`{n}` {t}"));
    keys.chain(values).collect::<Vec<_>>().join(", ")
}
