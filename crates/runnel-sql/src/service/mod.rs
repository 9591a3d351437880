//! The SQL service: ksqlDB's REST API over the [`Engine`], against any
//! Kafka cluster.
//!
//! Statements that change the catalog are checked by the engine, written
//! to the [command topic](commands), then acted on: topics created or
//! deleted, persistent queries started or stopped. Each persistent query
//! is a `KafkaStreams` application (`_confluent-ksql-<service id>query_<id>`),
//! so servers sharing a service id share its partitions through the
//! consumer group. At start-up a server replays the command topic and
//! starts the queries still running. Push queries run as transient
//! applications whose rows stream to the client ([`push`]); pull queries
//! read a table's rows as they are now ([`pull`]).

pub mod cluster;
pub mod commands;
pub mod entities;
mod http;
pub mod pull;
pub mod push;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use rdkafka::ClientConfig;
use runnel_streams::{KafkaStreams, StreamsBuilder, StreamsConfig, StreamsError};
use serde_json::Value;

use crate::ast::{Listing, Parsed, SourceKind, Statement};
use crate::catalog::Properties;
use crate::engine::{substitute, Engine, Outcome};
use crate::error::SqlError;
use crate::parser::parse;
use crate::row::Row;

pub use http::router;

use cluster::Cluster;
use commands::{Command, CommandTopic};
use entities::codes;

/// Why the service could not do something.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The Kafka cluster failed or refused.
    #[error("{0}")]
    Kafka(String),
    /// A statement was refused.
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// A query's streams application could not start.
    #[error(transparent)]
    Streams(#[from] StreamsError),
}

impl From<rdkafka::error::KafkaError> for ServiceError {
    fn from(error: rdkafka::error::KafkaError) -> ServiceError {
        ServiceError::Kafka(error.to_string())
    }
}

/// How the service runs.
#[derive(Debug, Clone)]
pub struct SqlConfig {
    /// The Kafka cluster, `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// Servers with the same id form one service: one command topic, and
    /// one consumer group per persistent query (ksqlDB's
    /// `ksql.service.id`, `default_` by default).
    pub service_id: String,
    /// Where persistent queries keep local checkpoints of their state;
    /// `None` keeps state in memory, restored from changelogs.
    pub state_dir: Option<PathBuf>,
}

impl SqlConfig {
    /// The service `default_` against `bootstrap_servers`.
    pub fn new(bootstrap_servers: &str) -> SqlConfig {
        SqlConfig { bootstrap_servers: bootstrap_servers.to_string(), service_id: "default_".to_string(), state_dir: None }
    }

    fn client(&self) -> ClientConfig {
        let mut client = ClientConfig::new();
        client.set("bootstrap.servers", &self.bootstrap_servers);
        client
    }
}

/// A refused request: ksqlDB's error code and message, the statement at
/// fault, and what the statements before it in the request answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// ksqlDB's error code.
    pub code: u32,
    /// What went wrong.
    pub message: String,
    /// The statement at fault.
    pub statement: Option<String>,
    /// The entities of the statements that ran before it.
    pub entities: Vec<Value>,
}

impl Refusal {
    fn new(code: u32, message: impl Into<String>, statement: Option<&str>) -> Refusal {
        Refusal { code, message: message.into(), statement: statement.map(str::to_string), entities: Vec::new() }
    }

    /// The HTTP status the code maps to.
    pub fn status(&self) -> u16 {
        (self.code / 100) as u16
    }

    /// The JSON error object.
    pub fn body(&self) -> Value {
        entities::error(self.code, &self.message, self.statement.as_deref(), &self.entities)
    }
}

impl From<ServiceError> for Refusal {
    fn from(error: ServiceError) -> Refusal {
        match error {
            ServiceError::Sql(e) => Refusal::new(entities::code_of(&e), e.to_string(), None),
            other => Refusal::new(codes::SERVER_ERROR, other.to_string(), None),
        }
    }
}

/// The catalog and what runs for it.
struct State {
    engine: Engine,
    /// Each persistent query's application, by query id.
    running: HashMap<String, KafkaStreams>,
    /// The properties each persistent query was started with.
    query_properties: HashMap<String, BTreeMap<String, String>>,
    /// Each command's status, by command id, for `/status`.
    statuses: BTreeMap<String, Value>,
}

/// A running SQL service.
pub struct SqlService {
    config: SqlConfig,
    cluster: Cluster,
    commands: CommandTopic,
    state: Mutex<State>,
    push: push::PushQueries,
}

/// Whether a catalog change is new (written to the command topic, its
/// queries started at once) or replayed at start-up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Live,
    Replay,
}

/// What a catalog change did, for its entity.
struct Change {
    command_id: String,
    message: String,
    query_id: Option<String>,
    /// Its offset in the command topic.
    sequence: i64,
}

/// The properties ksqlDB reports and queries run with unless a request
/// sets them.
fn default_properties() -> Vec<(&'static str, String)> {
    vec![("auto.offset.reset", "latest".to_string()), ("ksql.streams.commit.interval.ms", "2000".to_string())]
}

/// A request property, by its name with or without ksqlDB's prefixes.
fn property<'a>(properties: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    [name.to_string(), format!("ksql.streams.{name}"), format!("ksql.{name}")].iter().find_map(|key| properties.get(key)).map(String::as_str)
}

impl SqlService {
    /// Connects to the cluster, replays the command topic and starts the
    /// persistent queries it leaves running.
    pub fn open(config: SqlConfig) -> Result<SqlService, ServiceError> {
        let client = config.client();
        let cluster = Cluster::connect(&client)?;
        let (commands, replayed) = CommandTopic::open(&client, &config.service_id)?;
        let state = State { engine: Engine::new(), running: HashMap::new(), query_properties: HashMap::new(), statuses: BTreeMap::new() };
        let service = SqlService { config, cluster, commands, state: Mutex::new(state), push: push::PushQueries::default() };
        let count = replayed.len();
        {
            let mut state = service.lock();
            for (sequence, command) in replayed {
                let parsed = match parse(&command.statement) {
                    Ok(mut parsed) if parsed.len() == 1 => parsed.remove(0),
                    _ => {
                        tracing::warn!(sequence, "skipping a command that does not parse");
                        continue;
                    }
                };
                if let Err(error) = service.change(&mut state, &parsed, &command.properties, sequence, Mode::Replay) {
                    tracing::warn!(sequence, %error, "a replayed command failed");
                }
            }
            let queries: Vec<String> = state.engine.queries().iter().map(|q| q.id.clone()).collect();
            for id in queries {
                if let Err(error) = service.start_query(&mut state, &id) {
                    tracing::error!(query = id, %error, "cannot restart a persistent query");
                }
            }
        }
        tracing::info!(commands = count, "SQL command topic replayed");
        Ok(service)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The service id.
    pub fn service_id(&self) -> &str {
        &self.config.service_id
    }

    /// The Kafka cluster's id.
    pub fn kafka_cluster_id(&self) -> Option<String> {
        self.cluster.cluster_id()
    }

    /// A command's status, for `/status/{commandId}`.
    pub fn command_status(&self, command_id: &str) -> Option<Value> {
        self.lock().statuses.get(command_id).cloned()
    }

    /// Every command's status.
    pub fn command_statuses(&self) -> BTreeMap<String, Value> {
        self.lock().statuses.clone()
    }

    /// Runs the statements of a `/ksql` request in order, with its
    /// properties; `SET`, `UNSET`, `DEFINE` and `UNDEFINE` apply to the
    /// statements after them. Returns each statement's entity, or the
    /// first refusal with the entities before it.
    pub fn execute(&self, text: &str, properties: &BTreeMap<String, String>) -> Result<Vec<Value>, Refusal> {
        let statements = parse(text).map_err(|e| Refusal::new(codes::BAD_STATEMENT, e.to_string(), Some(text.trim())))?;
        let (mut properties, mut variables) = (properties.clone(), BTreeMap::new());
        let mut answered = Vec::new();
        for raw in statements {
            let refuse =
                |code: u32, message: String, answered: &[Value]| Refusal { code, message, statement: Some(raw.text.clone()), entities: answered.to_vec() };
            let text = substitute(&raw.text, &variables);
            let parsed = match parse(&text) {
                Ok(mut parsed) if parsed.len() == 1 => parsed.remove(0),
                Ok(_) => return Err(refuse(codes::BAD_STATEMENT, "a variable's value ended the statement early".into(), &answered)),
                Err(e) => return Err(refuse(codes::BAD_STATEMENT, e.to_string(), &answered)),
            };
            match &parsed.statement {
                Statement::Set { property, value } => {
                    properties.insert(property.clone(), value.clone());
                }
                Statement::Unset { property } => {
                    properties.remove(property);
                }
                Statement::Define { name, value } => {
                    variables.insert(name.clone(), value.clone());
                }
                Statement::Undefine { name } => {
                    variables.remove(name);
                }
                _ => match self.statement(&parsed, &properties, &variables) {
                    Ok(Some(entity)) => answered.push(entity),
                    Ok(None) => {}
                    Err(refusal) => return Err(refuse(refusal.code, refusal.message, &answered)),
                },
            }
        }
        Ok(answered)
    }

    /// One statement of a `/ksql` request.
    fn statement(&self, parsed: &Parsed, properties: &BTreeMap<String, String>, variables: &BTreeMap<String, String>) -> Result<Option<Value>, Refusal> {
        let text = parsed.text.as_str();
        let mut state = self.lock();
        match &parsed.statement {
            Statement::Select(_) | Statement::Print { .. } => Err(Refusal::new(
                codes::QUERY_ENDPOINT,
                "The following statement types should be issued to the websocket endpoint '/query':\n\t* PRINT\n\t* SELECT",
                Some(text),
            )),
            Statement::Show { what, .. } => Ok(Some(match what {
                Listing::Streams => entities::sources_list(text, state.engine.catalog(), SourceKind::Stream),
                Listing::Tables => entities::sources_list(text, state.engine.catalog(), SourceKind::Table),
                Listing::Queries => entities::queries_list(text, state.engine.queries()),
                Listing::Topics => entities::topics_list(text, &self.cluster.topics(false)?),
                Listing::Properties => entities::properties_list(text, &default_properties(), properties),
                Listing::Variables => entities::variables_list(text, variables),
                Listing::Functions | Listing::Types => {
                    return Err(Refusal::new(codes::BAD_STATEMENT, "SHOW FUNCTIONS and SHOW TYPES are not supported yet.", Some(text)));
                }
            })),
            Statement::Describe { name, extended } => {
                let source = state.engine.catalog().get(name).map_err(ServiceError::from)?;
                let partitions = self.cluster.partitions(&source.topic)?;
                let description = entities::source_description(source, state.engine.queries(), partitions, *extended);
                Ok(Some(serde_json::json!({"@type": "sourceDescription", "statementText": text, "sourceDescription": description, "warnings": []})))
            }
            Statement::DescribeAll { kind, extended } => {
                let mut descriptions = Vec::new();
                for source in state.engine.catalog().all().filter(|s| s.kind == *kind) {
                    let partitions = self.cluster.partitions(&source.topic)?;
                    descriptions.push(entities::source_description(source, state.engine.queries(), partitions, *extended));
                }
                Ok(Some(serde_json::json!({"@type": "source_descriptions", "statementText": text, "sourceDescriptions": descriptions, "warnings": []})))
            }
            Statement::DescribeFunction { .. } | Statement::Explain(_) => {
                Err(Refusal::new(codes::BAD_STATEMENT, "DESCRIBE FUNCTION and EXPLAIN are not supported yet.", Some(text)))
            }
            Statement::InsertValues { target, columns, values } => {
                let record = state.engine.values_record(target, columns, values, now_ms()).map_err(ServiceError::from)?;
                drop(state);
                self.cluster.produce(&record.topic, record.key.as_deref(), record.value.as_deref(), record.timestamp)?;
                Ok(None)
            }
            _ => {
                let change = self.change(&mut state, parsed, properties, 0, Mode::Live).map_err(|e| {
                    let mut refusal = Refusal::from(e);
                    refusal.statement = Some(text.to_string());
                    refusal
                })?;
                Ok(Some(entities::current_status(text, &change.command_id, &change.message, change.query_id.as_deref(), change.sequence)))
            }
        }
    }

    /// Runs a statement that changes the catalog: checks it against the
    /// cluster, applies it to the engine, writes it to the command topic
    /// (when live), then acts on it.
    fn change(&self, state: &mut State, parsed: &Parsed, properties: &BTreeMap<String, String>, sequence: i64, mode: Mode) -> Result<Change, ServiceError> {
        // A stream or table over an existing topic takes its partition
        // count; over a missing one, PARTITIONS says to create it.
        let mut create_topic = None;
        let mut existing_partitions = None;
        if let Statement::CreateSource { properties: with, .. } = &parsed.statement {
            let with = Properties::new(with)?;
            let topic =
                with.string("KAFKA_TOPIC")?.ok_or_else(|| SqlError::invalid("Missing required property \"KAFKA_TOPIC\" which has no default value."))?;
            let wanted = with.integer("PARTITIONS")?;
            match (self.cluster.partitions(&topic)?, wanted) {
                (Some(actual), Some(wanted)) if actual as i64 != wanted && mode == Mode::Live => {
                    return Err(SqlError::invalid(format!(
                        "A Kafka topic with the name '{topic}' already exists, with different partition/replica configuration than required. KSQL expects {wanted} partitions (topic has {actual})."
                    ))
                    .into());
                }
                (Some(actual), _) => existing_partitions = Some(actual),
                (None, Some(wanted)) => create_topic = Some((topic, i32::try_from(wanted).unwrap_or(1).max(1))),
                (None, None) => {
                    return Err(SqlError::invalid(format!(
                        "Topic '{topic}' does not exist. If you want to create a new topic for the {} please re-run the statement providing the required 'PARTITIONS' configuration in the WITH clause (and optionally 'REPLICAS').",
                        if matches!(parsed.statement, Statement::CreateSource { kind: SourceKind::Table, .. }) { "table" } else { "stream" }
                    ))
                    .into());
                }
            }
        }
        let dropped_topic = match &parsed.statement {
            Statement::Drop { name, delete_topic: true, .. } => state.engine.catalog().get(name).ok().map(|s| s.topic.clone()),
            _ => None,
        };
        let outcome = state.engine.execute_statement(parsed)?;
        let change = match &outcome {
            Outcome::Created { name, kind } => {
                if let Some(partitions) = existing_partitions.or(create_topic.as_ref().map(|(_, p)| *p)) {
                    state.engine.set_partitions(name, partitions);
                }
                let (entity, message) = match kind {
                    SourceKind::Stream => ("stream", "Stream created"),
                    SourceKind::Table => ("table", "Table created"),
                };
                Change { command_id: entities::command_id(entity, name, "create"), message: message.to_string(), query_id: None, sequence: 0 }
            }
            Outcome::Started { query } => {
                let sink = state.engine.queries().iter().find(|q| &q.id == query).map(|q| q.sink_name.clone()).unwrap_or_default();
                let action = if query.starts_with("INSERTQUERY") { "insert" } else { "create" };
                let entity = if state.engine.catalog().get(&sink).is_ok_and(|s| s.kind == SourceKind::Table) { "table" } else { "stream" };
                Change {
                    command_id: entities::command_id(entity, &sink, action),
                    message: format!("Created query with ID {query}"),
                    query_id: Some(query.clone()),
                    sequence: 0,
                }
            }
            Outcome::Dropped { name } => {
                let entity = if matches!(parsed.statement, Statement::Drop { kind: SourceKind::Table, .. }) { "table" } else { "stream" };
                Change { command_id: entities::command_id(entity, name, "drop"), message: format!("Source `{name}` was dropped."), query_id: None, sequence: 0 }
            }
            Outcome::Terminated { queries } => Change {
                command_id: format!("terminate/{}/execute", queries.first().map_or("ALL", String::as_str)),
                message: "Query terminated.".to_string(),
                query_id: None,
                sequence: 0,
            },
            _ => return Err(SqlError::invalid("not a statement that changes the catalog").into()),
        };
        let mut change = change;
        change.sequence = match mode {
            Mode::Live => self.commands.append(&change.command_id, &Command { statement: parsed.text.clone(), properties: properties.clone() })?,
            Mode::Replay => sequence,
        };
        let status = serde_json::json!({"status": "SUCCESS", "message": change.message, "queryId": change.query_id});
        state.statuses.insert(change.command_id.clone(), status);
        match outcome {
            Outcome::Created { .. } => {
                if let (Some((topic, partitions)), Mode::Live) = (&create_topic, mode) {
                    self.cluster.create_topic(topic, *partitions, &[])?;
                }
            }
            Outcome::Started { query } => {
                state.query_properties.insert(query.clone(), properties.clone());
                if mode == Mode::Live {
                    self.create_sink_topic(state, &query)?;
                    self.start_query(state, &query)?;
                }
            }
            Outcome::Dropped { .. } => {
                if let (Some(topic), Mode::Live) = (dropped_topic, mode) {
                    self.cluster.delete_topics(&[topic])?;
                }
            }
            Outcome::Terminated { queries } => {
                for query in queries {
                    state.query_properties.remove(&query);
                    if let Some(streams) = state.running.remove(&query) {
                        streams.close()?;
                        self.cluster.delete_internal_topics(&self.application_id(&query))?;
                    }
                }
            }
            _ => {}
        }
        Ok(change)
    }

    /// Creates the topic a new persistent query writes to, as ksqlDB
    /// does: the partitions its statement asked for, or its source's.
    fn create_sink_topic(&self, state: &State, query: &str) -> Result<(), ServiceError> {
        let Some(query) = state.engine.queries().iter().find(|q| q.id == query) else { return Ok(()) };
        let sink = state.engine.catalog().get(&query.sink_name)?;
        let source = state.engine.catalog().get(&query.plan.source_names()[0])?;
        let partitions = match sink.partitions.or(source.partitions) {
            Some(partitions) => partitions,
            None => self.cluster.partitions(&source.topic)?.unwrap_or(1),
        };
        let compact = sink.kind == SourceKind::Table && sink.window.is_none();
        self.cluster.create_topic(&sink.topic, partitions, if compact { &[("cleanup.policy", "compact")] } else { &[] })
    }

    /// The streams application id of a persistent query, as ksqlDB forms
    /// it.
    fn application_id(&self, query: &str) -> String {
        format!("_confluent-ksql-{}query_{query}", self.config.service_id)
    }

    /// Starts a persistent query's streams application.
    fn start_query(&self, state: &mut State, id: &str) -> Result<(), ServiceError> {
        let Some(query) = state.engine.queries().iter().find(|q| q.id == id) else { return Ok(()) };
        let builder = StreamsBuilder::new();
        query.plan.build(&builder, &query.sink);
        let properties = state.query_properties.get(id).cloned().unwrap_or_default();
        let config = self.streams_config(&self.application_id(id), &properties);
        let streams = KafkaStreams::start(builder.build(), config)?;
        state.running.insert(id.to_string(), streams);
        Ok(())
    }

    /// How a query's streams application runs: ksqlDB's defaults
    /// (`latest` offsets, a commit every 2 s) under the request's
    /// properties.
    fn streams_config(&self, application_id: &str, properties: &BTreeMap<String, String>) -> StreamsConfig {
        let mut config = StreamsConfig::new(application_id, &self.config.bootstrap_servers);
        config.commit_interval_ms = property(properties, "commit.interval.ms").and_then(|v| v.parse().ok()).unwrap_or(2_000);
        let reset = property(properties, "auto.offset.reset").unwrap_or("latest");
        config.client_properties.push(("auto.offset.reset".to_string(), reset.to_string()));
        if let Some(dir) = &self.config.state_dir {
            config = config.with_state_dir(dir.join(application_id));
        }
        config
    }

    /// Writes one row of `/inserts-stream` (a JSON object of column
    /// values, matched by name without regard to case) to `target`.
    pub fn insert_row(&self, target: &str, row: &Value) -> Result<(), String> {
        use crate::format::{json_to_value, RowFormat};
        let Value::Object(fields) = row else { return Err("a row is a JSON object".to_string()) };
        let state = self.lock();
        let catalog = state.engine.catalog();
        let source = catalog.get(target).or_else(|_| catalog.get(&target.to_uppercase())).map_err(|e| e.to_string())?;
        if source.read_only {
            return Err(format!("Cannot insert values into read-only source: {target}"));
        }
        let lookup = |name: &str| fields.iter().find(|(field, _)| field.eq_ignore_ascii_case(name)).map(|(_, v)| v);
        let read = |columns: &[crate::catalog::Column]| -> Result<Row, String> {
            columns
                .iter()
                .map(|c| lookup(&c.name).map_or(Ok(crate::value::Value::Null), |json| json_to_value(json, &c.sql_type).map_err(|e| format!("{}: {e}", c.name))))
                .collect()
        };
        let (key, value) = (read(&source.key)?, read(&source.value)?);
        let log = state.engine.processing_log();
        let key_bytes = if key.iter().all(crate::value::Value::is_null) {
            None
        } else {
            RowFormat::key(source.key_format, source.key_columns(), &source.topic, log.clone()).write(&key)
        };
        let value_bytes = RowFormat::value(source.value_format, source.value_columns(), &source.topic, log).write(&value);
        let timestamp = lookup("ROWTIME").and_then(Value::as_i64).unwrap_or_else(now_ms);
        let topic = source.topic.clone();
        drop(state);
        self.cluster.produce(&topic, key_bytes.as_deref(), value_bytes.as_deref(), timestamp).map_err(|e| e.to_string())
    }

    /// Stops every persistent query (their state stays in Kafka, so they
    /// resume on the next start).
    pub fn shutdown(&self) {
        let running: Vec<(String, KafkaStreams)> = self.lock().running.drain().collect();
        for (id, streams) in running {
            if let Err(error) = streams.close() {
                tracing::warn!(query = id, %error, "a persistent query stopped with an error");
            }
        }
        self.push.close_all();
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
