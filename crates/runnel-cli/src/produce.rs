//! `runnel produce`: lines from stdin, or a CSV file as JSON objects.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use serde_json::{Map, Number, Value};

use crate::{CliError, ClientArgs, TIMEOUT};

#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    client: ClientArgs,
    topic: String,
    /// Split each stdin line into key and value at --key-separator.
    #[arg(long)]
    parse_key: bool,
    #[arg(long, default_value = "\t")]
    key_separator: String,
    /// Header on every record, KEY=VALUE; repeatable.
    #[arg(long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// Send everything to this partition instead of partitioning by key.
    #[arg(long)]
    partition: Option<i32>,
    /// 0, 1, or all (-1).
    #[arg(long, default_value = "all", allow_hyphen_values = true)]
    acks: String,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    /// raw bytes; json (each line must parse; with --schema-file or
    /// --subject, validated against a registry JSON Schema and sent in
    /// Confluent's wire format); avro (JSON lines or CSV rows encoded with
    /// a registry schema, in Confluent's wire format).
    #[arg(long, value_enum, default_value_t = Format::Raw)]
    format: Format,
    /// With --format avro or json: a schema file to register (under --subject).
    #[arg(long, value_name = "FILE")]
    schema_file: Option<PathBuf>,
    /// With --format avro, json or protobuf: the registry subject [default: TOPIC-value].
    #[arg(long)]
    subject: Option<String>,
    /// With --format protobuf: the message to send [default: the file's first].
    #[arg(long)]
    message: Option<String>,
    #[command(flatten)]
    registry: crate::registry_client::RegistryArgs,
    /// Most records per second.
    #[arg(long)]
    rate: Option<f64>,
    /// Produce each row of this CSV file as a JSON object.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// CSV column whose value becomes the record key.
    #[arg(long, value_name = "COLUMN", requires = "csv")]
    key: Option<String>,
    /// CSV column whose timestamp becomes the record timestamp.
    #[arg(long, value_name = "COLUMN", requires = "csv")]
    time_column: Option<String>,
    /// Stop after N records.
    #[arg(long)]
    limit: Option<u64>,
    /// Replay CSV rows in event-time order at X times real speed (needs --time-column).
    #[arg(long, value_name = "X", requires = "time_column")]
    replay_speed: Option<f64>,
    /// What to do with a malformed CSV row or invalid JSON line.
    #[arg(long, value_enum, default_value_t = OnError::Stop)]
    on_error: OnError,
    /// Create the topic (with broker defaults) if it does not exist.
    #[arg(long)]
    create: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Raw,
    Json,
    Avro,
    Protobuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnError {
    /// Report the bad input with its line number and carry on.
    Skip,
    /// Report it and stop with a non-zero exit.
    Stop,
}

/// One record ready to send.
struct Outgoing {
    key: Option<String>,
    value: Vec<u8>,
    timestamp: Option<i64>,
}

/// How values are encoded with a registry schema.
enum SchemaEncoder {
    Avro { schema: apache_avro::Schema, id: i32 },
    JsonSchema { validator: jsonschema::Validator, id: i32 },
    Protobuf { schema: crate::protobuf::ProtoSchema, id: i32 },
}

impl SchemaEncoder {
    /// Registers `--schema-file` (or takes the subject's latest schema).
    fn new(args: &ProduceArgs) -> Result<SchemaEncoder, CliError> {
        let client = crate::registry_client::RegistryClient::new(&args.registry);
        let subject = args.subject.clone().unwrap_or_else(|| format!("{}-value", args.topic));
        let schema_type = match args.format {
            Format::Avro => "AVRO",
            Format::Protobuf => "PROTOBUF",
            _ => "JSON",
        };
        let (id, text) = match &args.schema_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| CliError::Refused(format!("cannot read {}: {e}", path.display())))?;
                (client.register(&subject, &text, schema_type)?, text)
            }
            None => client.latest(&subject)?,
        };
        if args.format == Format::Avro {
            let schema = apache_avro::Schema::parse_str(&text).map_err(|e| CliError::Refused(format!("the schema of {subject} is not Avro: {e}")))?;
            return Ok(SchemaEncoder::Avro { schema, id });
        }
        if args.format == Format::Protobuf {
            let mut client = client;
            let (source, references) = client.source(id)?;
            let schema = crate::protobuf::ProtoSchema::new(&source, &references, args.message.as_deref())
                .map_err(|e| CliError::Refused(format!("the schema of {subject}: {e}")))?;
            return Ok(SchemaEncoder::Protobuf { schema, id });
        }
        let schema: Value = serde_json::from_str(&text).map_err(|e| CliError::Refused(format!("the schema of {subject} is not JSON: {e}")))?;
        let validator = jsonschema::validator_for(&schema).map_err(|e| CliError::Refused(format!("the schema of {subject} is not a JSON Schema: {e}")))?;
        Ok(SchemaEncoder::JsonSchema { validator, id })
    }

    fn encode(&self, value: &Value) -> Result<Vec<u8>, String> {
        match self {
            SchemaEncoder::Avro { schema, id } => crate::registry_client::encode_avro(schema, *id, value),
            SchemaEncoder::Protobuf { schema, id } => schema.encode(*id, value),
            SchemaEncoder::JsonSchema { validator, id } => {
                if let Some(error) = validator.iter_errors(value).next() {
                    return Err(format!("does not match the schema: {error}"));
                }
                let mut out = vec![0];
                out.extend_from_slice(&id.to_be_bytes());
                out.extend_from_slice(value.to_string().as_bytes());
                Ok(out)
            }
        }
    }
}

#[derive(Default)]
struct Tally {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

struct TallyContext(Arc<Tally>);

impl ClientContext for TallyContext {}

impl ProducerContext for TallyContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.0.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                self.0.first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// Produces and returns the summary line.
pub fn run(args: ProduceArgs) -> Result<String, CliError> {
    ensure_topic(&args)?;
    let headers: Vec<(String, String)> = args
        .headers
        .iter()
        .map(|h| h.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| CliError::Usage(format!("--header {h}: expected KEY=VALUE"))))
        .collect::<Result<_, _>>()?;
    let tally = Arc::new(Tally::default());
    let producer: ThreadedProducer<TallyContext> = args
        .client
        .config()?
        .set("acks", &args.acks)
        .set("compression.type", &args.compression)
        .set("linger.ms", "5")
        .create_with_context(TallyContext(tally.clone()))?;
    let uses_registry =
        matches!(args.format, Format::Avro | Format::Protobuf) || (args.format == Format::Json && (args.schema_file.is_some() || args.subject.is_some()));
    let encoder = if uses_registry { Some(SchemaEncoder::new(&args)?) } else { None };
    let mut sender = Sender { args: &args, producer: &producer, headers: &headers, sent: 0, started: Instant::now(), encoder };
    let outcome = match &args.csv {
        Some(path) => produce_csv(&args, path, &mut sender),
        None => produce_lines(&args, &mut sender),
    };
    producer.flush(Duration::from_secs(60))?;
    outcome?;
    let failed = tally.failed.load(Ordering::Relaxed);
    let delivered = tally.delivered.load(Ordering::Relaxed);
    if failed > 0 {
        let first = tally.first_error.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default();
        return Err(CliError::Refused(format!("{failed} of {} records were not delivered to {} (first error: {first})", failed + delivered, args.topic)));
    }
    Ok(format!("produced {delivered} records to {}\n", args.topic))
}

/// Checks the topic exists, creating it on request or letting the
/// broker's auto-creation do so.
fn ensure_topic(args: &ProduceArgs) -> Result<(), CliError> {
    let consumer: BaseConsumer = args.client.config()?.set("allow.auto.create.topics", "true").create()?;
    let exists = |c: &BaseConsumer| -> Result<bool, CliError> {
        let metadata = c.fetch_metadata(Some(&args.topic), TIMEOUT).map_err(|e| CliError::Unreachable(args.client.bootstrap_server.clone(), e))?;
        Ok(metadata.topics().first().is_some_and(|t| t.error().is_none() && !t.partitions().is_empty()))
    };
    if exists(&consumer)? {
        return Ok(());
    }
    if args.create {
        let admin = crate::topic::admin(&args.client)?;
        let topic = rdkafka::admin::NewTopic::new(&args.topic, -1, rdkafka::admin::TopicReplication::Fixed(-1));
        let options = rdkafka::admin::AdminOptions::new().operation_timeout(Some(TIMEOUT));
        if let Err((_, code)) = futures::executor::block_on(admin.create_topics([&topic], &options))?.remove(0) {
            if code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists {
                return Err(CliError::Refused(format!("could not create topic {}: {code}", args.topic)));
            }
        }
        return Ok(());
    }
    Err(CliError::Refused(format!("topic {} does not exist (use --create or enable auto-create)", args.topic)))
}

struct Sender<'a> {
    args: &'a ProduceArgs,
    producer: &'a ThreadedProducer<TallyContext>,
    headers: &'a [(String, String)],
    sent: u64,
    started: Instant,
    /// Set when values go through the schema registry.
    encoder: Option<SchemaEncoder>,
}

impl Sender<'_> {
    fn done(&self) -> bool {
        self.args.limit.is_some_and(|n| self.sent >= n)
    }

    fn send(&mut self, record: &Outgoing) -> Result<(), CliError> {
        if let Some(rate) = self.args.rate {
            let due = self.started + Duration::from_secs_f64(self.sent as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let mut headers = OwnedHeaders::new();
        for (k, v) in self.headers {
            headers = headers.insert(Header { key: k, value: Some(v.as_bytes()) });
        }
        let mut base = BaseRecord::<str, [u8]>::to(&self.args.topic).payload(&record.value).headers(headers);
        if let Some(key) = &record.key {
            base = base.key(key);
        }
        if let Some(partition) = self.args.partition {
            base = base.partition(partition);
        }
        if let Some(ts) = record.timestamp {
            base = base.timestamp(ts);
        }
        loop {
            match self.producer.send(base) {
                Ok(()) => break,
                Err((rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), returned)) => {
                    base = returned;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        self.sent += 1;
        Ok(())
    }
}

fn bad_input(args: &ProduceArgs, message: String) -> Result<(), CliError> {
    match args.on_error {
        OnError::Skip => {
            eprintln!("skipped: {message}");
            Ok(())
        }
        OnError::Stop => Err(CliError::Refused(format!("{message} (use --on-error skip to carry on)"))),
    }
}

fn produce_lines(args: &ProduceArgs, sender: &mut Sender<'_>) -> Result<(), CliError> {
    let stdin = std::io::stdin();
    for (number, line) in stdin.lock().lines().enumerate() {
        if sender.done() {
            break;
        }
        let line = line.map_err(|e| CliError::Refused(format!("reading stdin: {e}")))?;
        let (key, value) = match (args.parse_key, line.split_once(args.key_separator.as_str())) {
            (true, Some((k, v))) => (Some(k.to_string()), v.to_string()),
            (true, None) => {
                bad_input(args, format!("line {}: no key separator {:?}", number + 1, args.key_separator))?;
                continue;
            }
            (false, _) => (None, line),
        };
        let value = match args.format {
            Format::Raw => value.into_bytes(),
            Format::Json | Format::Avro | Format::Protobuf => match serde_json::from_str::<Value>(&value) {
                Err(e) => {
                    bad_input(args, format!("line {}: invalid JSON: {e}", number + 1))?;
                    continue;
                }
                Ok(json) => match &sender.encoder {
                    None => value.into_bytes(),
                    Some(encoder) => match encoder.encode(&json) {
                        Ok(bytes) => bytes,
                        Err(e) => {
                            bad_input(args, format!("line {}: {e}", number + 1))?;
                            continue;
                        }
                    },
                },
            },
        };
        sender.send(&Outgoing { key, value, timestamp: None })?;
    }
    Ok(())
}

/// A CSV field as JSON: integers and decimals become numbers, empty fields
/// null, everything else (timestamps included) stays a string.
fn sniff(field: &str) -> Value {
    if field.is_empty() {
        return Value::Null;
    }
    if let Ok(i) = field.parse::<i64>() {
        return Value::Number(i.into());
    }
    if field.contains(['.', 'e', 'E']) && field.bytes().any(|b| b.is_ascii_digit()) {
        if let Some(n) = field.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(field.to_string())
}

/// Milliseconds since the epoch of `YYYY-MM-DD HH:MM:SS[.fff]` (UTC) or
/// RFC 3339.
pub(crate) fn parse_timestamp(text: &str) -> Option<i64> {
    let normalised = text.trim().replacen(' ', "T", 1);
    let time = humantime::parse_rfc3339_weak(&normalised).ok()?;
    Some(time.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64)
}

fn produce_csv(args: &ProduceArgs, path: &PathBuf, sender: &mut Sender<'_>) -> Result<(), CliError> {
    let mut reader =
        csv::ReaderBuilder::new().flexible(false).from_path(path).map_err(|e| CliError::Refused(format!("cannot read {}: {e}", path.display())))?;
    let columns: Vec<String> =
        reader.headers().map_err(|e| CliError::Refused(format!("{}: bad header row: {e}", path.display())))?.iter().map(str::to_string).collect();
    let column_index = |name: &Option<String>, flag: &str| -> Result<Option<usize>, CliError> {
        match name {
            None => Ok(None),
            Some(n) => columns
                .iter()
                .position(|c| c == n)
                .map(Some)
                .ok_or_else(|| CliError::Usage(format!("{flag} {n}: no such column; columns are {}", columns.join(", ")))),
        }
    };
    let key_column = column_index(&args.key, "--key")?;
    let time_column = column_index(&args.time_column, "--time-column")?;
    let mut rows: Vec<Outgoing> = Vec::new();
    let total = std::fs::read_to_string(path).map(|t| t.lines().count().saturating_sub(1) as u64).unwrap_or(0);
    let progress = progress_bar(args.limit.map_or(total, |l| l.min(total)));
    for record in reader.records() {
        if args.replay_speed.is_none() && sender.done() {
            break;
        }
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                bad_input(args, format!("{} line {line}: {e}", path.display()))?;
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let object: Map<String, Value> = columns.iter().zip(record.iter()).map(|(c, f)| (c.clone(), sniff(f))).collect();
        let timestamp = match time_column {
            None => None,
            Some(i) => match parse_timestamp(&record[i]) {
                Some(ts) => Some(ts),
                None => {
                    bad_input(args, format!("{} line {line}: {:?} in {} is not a timestamp", path.display(), &record[i], columns[i]))?;
                    continue;
                }
            },
        };
        let object = Value::Object(object);
        let value = match &sender.encoder {
            None => object.to_string().into_bytes(),
            Some(encoder) => match encoder.encode(&object) {
                Ok(bytes) => bytes,
                Err(e) => {
                    bad_input(args, format!("{} line {line}: {e}", path.display()))?;
                    continue;
                }
            },
        };
        let outgoing = Outgoing { key: key_column.map(|i| record[i].to_string()), value, timestamp };
        if args.replay_speed.is_some() {
            rows.push(outgoing);
        } else {
            sender.send(&outgoing)?;
            progress.inc(1);
        }
    }
    if let Some(speed) = args.replay_speed {
        rows.sort_by_key(|r| r.timestamp);
        if let Some(limit) = args.limit {
            rows.truncate(limit as usize);
        }
        let first = rows.first().and_then(|r| r.timestamp).unwrap_or(0);
        let started = Instant::now();
        for row in &rows {
            let offset_ms = (row.timestamp.unwrap_or(first) - first).max(0) as f64 / speed.max(f64::MIN_POSITIVE);
            if let Some(wait) = (started + Duration::from_secs_f64(offset_ms / 1000.0)).checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            sender.send(row)?;
            progress.inc(1);
        }
    }
    progress.finish_and_clear();
    Ok(())
}

/// A progress bar with rate and ETA on a terminal; hidden otherwise.
fn progress_bar(total: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {per_sec}  eta {eta}") {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_typed_by_sniffing() {
        assert_eq!(sniff("238"), Value::from(238));
        assert_eq!(sniff("1.50"), Value::from(1.5));
        assert_eq!(sniff(""), Value::Null);
        assert_eq!(sniff("N"), Value::from("N"));
        assert_eq!(sniff("2020-07-01 00:25:32"), Value::from("2020-07-01 00:25:32"));
        assert_eq!(sniff("e"), Value::from("e"));
    }

    #[test]
    fn course_timestamps_parse_as_utc() {
        assert_eq!(parse_timestamp("2020-07-01 00:25:32"), Some(1_593_563_132_000));
        assert_eq!(parse_timestamp("2020-07-01T00:25:32Z"), Some(1_593_563_132_000));
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
