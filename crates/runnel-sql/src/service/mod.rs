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
pub mod print;
pub mod pull;
pub mod push;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rdkafka::ClientConfig;
use runnel_streams::{KafkaStreams, StreamsBuilder, StreamsConfig, StreamsError};
use serde_json::Value;

use crate::ast::{Explained, Listing, Parsed, SourceKind, Statement};
use crate::catalog::Properties;
use crate::engine::{substitute, Engine, Outcome};
use crate::error::SqlError;
use crate::parser::parse;
use crate::row::Row;

pub use http::router;

use cluster::Cluster;
use commands::{Command, CommandTopic, Replayed};
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
    /// The Schema Registry of AVRO, PROTOBUF and JSON_SR keys and values
    /// (ksqlDB's `ksql.schema.registry.url`); `None` refuses those formats.
    pub registry_url: Option<String>,
}

impl SqlConfig {
    /// The service `default_` against `bootstrap_servers`.
    pub fn new(bootstrap_servers: &str) -> SqlConfig {
        SqlConfig { bootstrap_servers: bootstrap_servers.to_string(), service_id: "default_".to_string(), state_dir: None, registry_url: None }
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
    /// The offset after the last command applied.
    applied: i64,
}

/// A running SQL service.
pub struct SqlService {
    config: SqlConfig,
    cluster: Cluster,
    commands: CommandTopic,
    state: Mutex<State>,
    push: push::PushQueries,
    /// Applies what other servers of the service write to the command
    /// topic.
    follower: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Tells the follower to stop.
    stopping: Arc<AtomicBool>,
}

/// Where a catalog change comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A request to this server: written to the command topic, then
    /// acted on.
    Live,
    /// The command topic, replayed at start-up (queries start after).
    Replay,
    /// The command topic, written by another server of the service.
    Follow,
}

/// The topic of a `CREATE STREAM|TABLE`.
#[derive(Default)]
struct SourceTopic {
    /// A topic to create, with its partition count.
    create: Option<(String, i32)>,
    /// The topic's partition count, existing or to be.
    partitions: Option<i32>,
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

/// Kafka client settings a request may pass to its queries' clients
/// (as `ksql.streams.<name>`, or plain), with the same meaning in Kafka's
/// Java clients and librdkafka.
const CLIENT_PROPERTIES: [&str; 8] = [
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "linger.ms",
    "compression.type",
];

/// A request property, by its name with or without ksqlDB's prefixes.
fn property<'a>(properties: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    [name.to_string(), format!("ksql.streams.{name}"), format!("ksql.{name}")].iter().find_map(|key| properties.get(key)).map(String::as_str)
}

impl SqlService {
    /// Connects to the cluster, replays the command topic and starts the
    /// persistent queries it leaves running.
    pub fn open(config: SqlConfig) -> Result<Arc<SqlService>, ServiceError> {
        let client = config.client();
        let cluster = Cluster::connect(&client)?;
        let (commands, Replayed { commands: replayed, end }) = CommandTopic::open(&client, &config.service_id)?;
        let topic = CommandTopic::name(&config.service_id);
        let stopping = Arc::new(AtomicBool::new(false));
        let engine = match &config.registry_url {
            Some(url) => Engine::with_registry(Arc::new(runnel_streams::registry::RegistryClient::new(url))),
            None => Engine::new(),
        };
        let state = State { engine, running: HashMap::new(), query_properties: HashMap::new(), statuses: BTreeMap::new(), applied: end };
        let service = Arc::new(SqlService {
            config,
            cluster,
            commands,
            state: Mutex::new(state),
            push: push::PushQueries::default(),
            follower: Mutex::new(None),
            stopping: stopping.clone(),
        });
        let count = replayed.len();
        {
            let mut state = service.lock();
            for (offset, command) in replayed {
                service.apply_command(&mut state, offset, &command, Mode::Replay);
            }
            let queries: Vec<String> = state.engine.queries().iter().map(|q| q.id.clone()).collect();
            for id in queries {
                if let Err(error) = service.start_query(&mut state, &id) {
                    tracing::error!(query = id, %error, "cannot restart a persistent query");
                }
            }
        }
        tracing::info!(commands = count, "SQL command topic replayed");
        let follower = {
            let service = Arc::downgrade(&service);
            std::thread::Builder::new()
                .name("sql-command-follower".into())
                .spawn(move || {
                    let result = commands::follow(&client, &topic, end, &stopping, |offset, command| {
                        if let Some(service) = service.upgrade() {
                            let mut state = service.lock();
                            if offset >= state.applied {
                                service.apply_command(&mut state, offset, &command, Mode::Follow);
                            }
                        }
                    });
                    if let Err(error) = result {
                        tracing::error!(%error, "the SQL command follower stopped");
                    }
                })
                .map_err(|e| ServiceError::Kafka(format!("cannot start the command follower: {e}")))?
        };
        *service.follower.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(follower);
        Ok(service)
    }

    /// Applies a command from the command topic; a command that fails is
    /// skipped with a warning, as it failed wherever it ran.
    fn apply_command(&self, state: &mut State, offset: i64, command: &Command, mode: Mode) {
        let parsed = match parse(&command.statement) {
            Ok(mut parsed) if parsed.len() == 1 => parsed.remove(0),
            _ => {
                tracing::warn!(offset, "skipping a command that does not parse");
                return;
            }
        };
        if let Err(error) = self.change(state, &parsed, &command.properties, offset, mode) {
            tracing::warn!(offset, %error, "a command from the command topic failed");
        }
        state.applied = state.applied.max(offset + 1);
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
        // What the statement needs from the cluster is read before the
        // catalog is locked, so a slow cluster holds up no other request.
        let topics = match &parsed.statement {
            Statement::Show { what: Listing::Topics, .. } => self.cluster.topics(false)?,
            _ => Vec::new(),
        };
        let described: Vec<String> = match &parsed.statement {
            Statement::Describe { name, .. } => vec![self.lock().engine.catalog().get(name).map_err(ServiceError::from)?.topic.clone()],
            Statement::DescribeAll { kind, .. } => self.lock().engine.catalog().all().filter(|s| s.kind == *kind).map(|s| s.topic.clone()).collect(),
            _ => Vec::new(),
        };
        let mut partitions = HashMap::new();
        for topic in described {
            let count = self.cluster.partitions(&topic)?;
            partitions.insert(topic, count);
        }
        let partitions_of = |topic: &str| partitions.get(topic).copied().flatten();
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
                Listing::Topics => entities::topics_list(text, &topics),
                Listing::Properties => entities::properties_list(text, &default_properties(), properties),
                Listing::Variables => entities::variables_list(text, variables),
                Listing::Functions => entities::functions_list(text),
                Listing::Types => serde_json::json!({"@type": "type_list", "statementText": text, "types": {}, "warnings": []}),
            })),
            Statement::Describe { name, extended } => {
                let source = state.engine.catalog().get(name).map_err(ServiceError::from)?;
                let description = entities::source_description(source, state.engine.queries(), partitions_of(&source.topic), *extended);
                Ok(Some(serde_json::json!({"@type": "sourceDescription", "statementText": text, "sourceDescription": description, "warnings": []})))
            }
            Statement::DescribeAll { kind, extended } => {
                let descriptions: Vec<Value> = state
                    .engine
                    .catalog()
                    .all()
                    .filter(|s| s.kind == *kind)
                    .map(|source| entities::source_description(source, state.engine.queries(), partitions_of(&source.topic), *extended))
                    .collect();
                Ok(Some(serde_json::json!({"@type": "source_descriptions", "statementText": text, "sourceDescriptions": descriptions, "warnings": []})))
            }
            Statement::DescribeFunction { name } => entities::function_description(text, name)
                .map(Some)
                .ok_or_else(|| Refusal::new(codes::BAD_STATEMENT, format!("Can't find any functions with the name '{name}'"), Some(text))),
            Statement::Explain(explained) => self.explain(&state, text, explained).map(Some),
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

    /// `EXPLAIN query-id`, or `EXPLAIN` of a statement planned but not
    /// run.
    fn explain(&self, state: &State, text: &str, explained: &Explained) -> Result<Value, Refusal> {
        let refuse = |message: String| Refusal::new(codes::BAD_STATEMENT, message, Some(text));
        let (id, statement, plan, sink, sinks) = match explained {
            Explained::Query(id) => {
                let query = state
                    .engine
                    .queries()
                    .iter()
                    .find(|q| q.id.eq_ignore_ascii_case(id))
                    .ok_or_else(|| refuse(format!("Query with id:{id} does not exist")))?;
                (Some(query.id.clone()), query.statement.clone(), query.plan.clone(), Some(query.sink.clone()), vec![query.sink_name.clone()])
            }
            Explained::Statement(statement) => {
                let query = match statement {
                    Statement::Select(query) => query,
                    Statement::CreateAs { query, .. } | Statement::InsertInto { query, .. } => query,
                    _ => return Err(refuse("Only queries and statements that start them can be explained.".into())),
                };
                let plan = crate::planner::plan(state.engine.catalog(), query, !matches!(statement, Statement::Select(_)), state.engine.processing_log())
                    .map_err(|e| refuse(e.to_string()))?;
                let sinks = match statement {
                    Statement::CreateAs { name, .. } | Statement::InsertInto { target: name, .. } => vec![name.clone()],
                    _ => Vec::new(),
                };
                let body = text.trim();
                let statement_text = body.get(..7).filter(|w| w.eq_ignore_ascii_case("explain")).map_or(body, |_| body[7..].trim());
                (None, statement_text.to_string(), plan, None, sinks)
            }
        };
        let builder = StreamsBuilder::new();
        match &sink {
            Some(sink) => plan.build(&builder, sink),
            None => plan.build_push(&builder, Arc::new(|_| {})),
        }
        // A push query's columns are its selected items; a persistent
        // query's, its sink's key and value columns.
        let mut columns = if sinks.is_empty() { Vec::new() } else { plan.output.key.clone() };
        columns.extend(plan.output.value.iter().cloned());
        Ok(entities::query_description(text, id.as_deref(), &statement, &plan.source_names(), &sinks, &columns, &builder.build().describe()))
    }

    /// Runs a statement that changes the catalog.
    ///
    /// Live, it is checked against the cluster and tried on a copy of the
    /// engine; only then is it written to the command topic, whose offset
    /// numbers its queries, and applied and acted on (topics created or
    /// deleted, queries started or stopped). Replayed at start-up or
    /// followed from another server, it is applied at its offset; a
    /// followed one also starts and stops queries.
    fn change(&self, state: &mut State, parsed: &Parsed, properties: &BTreeMap<String, String>, offset: i64, mode: Mode) -> Result<Change, ServiceError> {
        let SourceTopic { create: create_topic, partitions } = self.source_topic(parsed, mode)?;
        let dropped_topic = match &parsed.statement {
            Statement::Drop { name, delete_topic: true, .. } => state.engine.catalog().get(name).ok().map(|s| s.topic.clone()),
            _ => None,
        };
        let offset = match mode {
            Mode::Live => {
                let mut sandbox = state.engine.clone();
                let outcome = sandbox.execute_statement(parsed)?;
                let command = Command { statement: parsed.text.clone(), properties: properties.clone() };
                self.commands.append(&self.command_id(&sandbox, parsed, &outcome), &command)?
            }
            Mode::Replay | Mode::Follow => offset,
        };
        state.applied = state.applied.max(offset + 1);
        state.engine.number_queries_from(usize::try_from(offset).unwrap_or_default());
        let outcome = state.engine.execute_statement(parsed)?;
        let change = self.describe_change(state, parsed, &outcome, offset);
        if let (Outcome::Created { name, .. }, Some(partitions)) = (&outcome, partitions) {
            state.engine.set_partitions(name, partitions);
        }
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
                }
                if mode != Mode::Replay {
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
                        if mode == Mode::Live {
                            self.cluster.delete_internal_topics(&self.application_id(&query))?;
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(change)
    }

    /// For `CREATE STREAM|TABLE`: the topic to create (when live, a missing
    /// topic with `PARTITIONS`) and the partition count of an existing
    /// one. Live, a missing topic without `PARTITIONS`, or one whose count
    /// differs from `PARTITIONS`, is refused as ksqlDB refuses it;
    /// replayed, the statement stands whatever became of its topic.
    fn source_topic(&self, parsed: &Parsed, mode: Mode) -> Result<SourceTopic, ServiceError> {
        let Statement::CreateSource { kind, properties: with, .. } = &parsed.statement else { return Ok(SourceTopic::default()) };
        let with = Properties::new(with)?;
        let topic = with.string("KAFKA_TOPIC")?.ok_or_else(|| SqlError::invalid("Missing required property \"KAFKA_TOPIC\" which has no default value."))?;
        let wanted = with.integer("PARTITIONS")?;
        let actual = self.cluster.partitions(&topic)?;
        if mode != Mode::Live {
            return Ok(SourceTopic { create: None, partitions: actual });
        }
        match (actual, wanted) {
            (Some(actual), Some(wanted)) if actual as i64 != wanted => Err(SqlError::invalid(format!(
                "A Kafka topic with the name '{topic}' already exists, with different partition/replica configuration than required. KSQL expects {wanted} partitions (topic has {actual})."
            ))
            .into()),
            (Some(actual), _) => Ok(SourceTopic { create: None, partitions: Some(actual) }),
            (None, Some(wanted)) => {
                let partitions = i32::try_from(wanted).unwrap_or(1).max(1);
                Ok(SourceTopic { create: Some((topic, partitions)), partitions: Some(partitions) })
            }
            (None, None) => Err(SqlError::invalid(format!(
                "Topic '{topic}' does not exist. If you want to create a new topic for the {} please re-run the statement providing the required 'PARTITIONS' configuration in the WITH clause (and optionally 'REPLICAS').",
                if *kind == SourceKind::Table { "table" } else { "stream" }
            ))
            .into()),
        }
    }

    /// The command id ksqlDB gives a statement, from what it did to
    /// `engine`.
    fn command_id(&self, engine: &Engine, parsed: &Parsed, outcome: &Outcome) -> String {
        let kind_of = |name: &str| if engine.catalog().get(name).is_ok_and(|s| s.kind == SourceKind::Table) { "table" } else { "stream" };
        match outcome {
            Outcome::Created { name, kind } => entities::command_id(if *kind == SourceKind::Table { "table" } else { "stream" }, name, "create"),
            Outcome::Started { query } => {
                let sink = engine.queries().iter().find(|q| &q.id == query).map(|q| q.sink_name.clone()).unwrap_or_default();
                entities::command_id(kind_of(&sink), &sink, if query.starts_with("INSERTQUERY") { "insert" } else { "create" })
            }
            Outcome::Dropped { name } => {
                let entity = if matches!(parsed.statement, Statement::Drop { kind: SourceKind::Table, .. }) { "table" } else { "stream" };
                entities::command_id(entity, name, "drop")
            }
            Outcome::Terminated { queries } => format!("terminate/{}/execute", queries.first().map_or("ALL", String::as_str)),
            _ => String::new(),
        }
    }

    /// What a change answers: its command id, message and query.
    fn describe_change(&self, state: &State, parsed: &Parsed, outcome: &Outcome, offset: i64) -> Change {
        let (message, query_id) = match outcome {
            Outcome::Created { kind: SourceKind::Stream, .. } => ("Stream created".to_string(), None),
            Outcome::Created { kind: SourceKind::Table, .. } => ("Table created".to_string(), None),
            Outcome::Started { query } => (format!("Created query with ID {query}"), Some(query.clone())),
            Outcome::Dropped { name } => (format!("Source `{name}` was dropped."), None),
            _ => ("Query terminated.".to_string(), None),
        };
        Change { command_id: self.command_id(&state.engine, parsed, outcome), message, query_id, sequence: offset }
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
        if property(properties, "processing.guarantee").is_some_and(|g| g.starts_with("exactly_once")) {
            config = config.exactly_once();
        }
        config.commit_interval_ms = property(properties, "commit.interval.ms").and_then(|v| v.parse().ok()).unwrap_or(config.commit_interval_ms.min(2_000));
        let reset = property(properties, "auto.offset.reset").unwrap_or("latest");
        config.client_properties.push(("auto.offset.reset".to_string(), reset.to_string()));
        for name in CLIENT_PROPERTIES {
            if let Some(value) = property(properties, name) {
                config.client_properties.push((name.to_string(), value.to_string()));
            }
        }
        if let Some(dir) = &self.config.state_dir {
            config = config.with_state_dir(dir.join(application_id));
        }
        config
    }

    /// Writes one row of `/inserts-stream` (a JSON object of column
    /// values, matched by name without regard to case) to `target`.
    pub fn insert_row(&self, target: &str, row: &Value) -> Result<(), String> {
        use crate::format::json_to_value;
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
        let key_bytes = if key.iter().all(crate::value::Value::is_null) { None } else { source.key_row_format(log.clone()).try_write(&key)? };
        let value_bytes = source.value_row_format(log).try_write(&value)?;
        let timestamp = lookup("ROWTIME").and_then(Value::as_i64).unwrap_or_else(now_ms);
        let topic = source.topic.clone();
        drop(state);
        self.cluster.produce(&topic, key_bytes.as_deref(), value_bytes.as_deref(), timestamp).map_err(|e| e.to_string())
    }

    /// Stops every persistent query (their state stays in Kafka, so they
    /// resume on the next start).
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        if let Some(follower) = self.follower.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            let _ = follower.join();
        }
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
