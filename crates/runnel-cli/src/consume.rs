//! `runnel consume`: print records, as a group member or from chosen
//! positions.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::{json, Value};

use crate::registry_client::RegistryClient;
use crate::{CliError, ClientArgs, TIMEOUT};

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    client: ClientArgs,
    topic: String,
    /// Consume as a member of this group, committing offsets.
    #[arg(long)]
    group: Option<String>,
    /// Start at the oldest record (a group without commits starts there too).
    #[arg(long, conflicts_with_all = ["offset", "from_time"])]
    from_beginning: bool,
    /// Start at this offset; negative counts back from the end.
    #[arg(long, allow_hyphen_values = true, conflicts_with = "from_time")]
    offset: Option<i64>,
    /// Start at this time: RFC 3339, or relative like -10m or -2h.
    #[arg(long, allow_hyphen_values = true)]
    from_time: Option<String>,
    /// Only this partition.
    #[arg(long)]
    partition: Option<i32>,
    /// Stop after N records.
    #[arg(long)]
    count: Option<u64>,
    /// Keep waiting for new records (the default on a terminal).
    #[arg(long, conflicts_with = "no_follow")]
    follow: bool,
    /// Stop at the end of the topic (the default when piped).
    #[arg(long)]
    no_follow: bool,
    /// How values are shown: raw text, JSON (pretty on a terminal), or Avro
    /// or Protobuf decoded through the schema registry.
    #[arg(long, value_enum, default_value_t = ValueFormat::Raw)]
    format: ValueFormat,
    #[command(flatten)]
    registry: crate::registry_client::RegistryArgs,
    /// Template with {key} {value} {topic} {partition} {offset} {timestamp} {headers}.
    /// (`--output jsonl` instead prints one JSON object per record, with its metadata.)
    #[arg(long)]
    print: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ValueFormat {
    Raw,
    Json,
    Avro,
    Protobuf,
}

/// Parses an RFC 3339 time or a relative one (`-10m`) into epoch millis.
fn parse_start_time(text: &str) -> Result<i64, CliError> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    if let Some(ago) = text.strip_prefix('-') {
        let span = humantime::parse_duration(ago).map_err(|e| CliError::Usage(format!("--from-time {text}: {e}")))?;
        return Ok(now - span.as_millis() as i64);
    }
    crate::produce::parse_timestamp(text)
        .ok_or_else(|| CliError::Usage(format!("--from-time {text}: use RFC 3339 (2020-07-01T00:30:00Z) or a relative time (-10m)")))
}

/// Consumes until the count, the end (without --follow) or Ctrl-C.
/// Records go straight to stdout; the returned text is the summary.
pub fn run(args: ConsumeArgs) -> Result<String, CliError> {
    if args.print.is_some() && args.client.wants_json() {
        return Err(CliError::Usage("--print and --output json/jsonl are alternatives; pick one".into()));
    }
    let follow = args.follow || (!args.no_follow && std::io::stdout().is_terminal());
    let mut config = args.client.config()?;
    config.set("enable.partition.eof", "true").set("auto.offset.reset", if args.from_beginning { "earliest" } else { "latest" });
    // Offsets are committed by hand, for exactly the records printed.
    config.set("group.id", args.group.as_deref().unwrap_or("runnel-consume")).set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config.create()?;
    let metadata = consumer.fetch_metadata(Some(&args.topic), TIMEOUT).map_err(|e| CliError::Unreachable(args.client.bootstrap_server.clone(), e))?;
    let topic = metadata
        .topics()
        .first()
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .ok_or_else(|| CliError::Refused(format!("topic {} does not exist", args.topic)))?;
    let partitions: Vec<i32> = topic.partitions().iter().map(|p| p.id()).filter(|p| args.partition.is_none_or(|only| only == *p)).collect();
    if partitions.is_empty() {
        return Err(CliError::Refused(format!("topic {} has no partition {}", args.topic, args.partition.unwrap_or(-1))));
    }
    let start = match (&args.from_time, args.offset, args.from_beginning) {
        (Some(time), _, _) => Some(Offset::Offset(parse_start_time(time)?)),
        (None, Some(n), _) if n < 0 => Some(Offset::OffsetTail(-n)),
        (None, Some(n), _) => Some(Offset::Offset(n)),
        (None, None, true) => Some(Offset::Beginning),
        (None, None, false) if args.group.is_none() => Some(if follow { Offset::End } else { Offset::Beginning }),
        _ => None,
    };
    if args.group.is_some() && start.is_none() && args.partition.is_none() {
        consumer.subscribe(&[&args.topic])?;
    } else {
        let mut assignment = TopicPartitionList::new();
        for &p in &partitions {
            assignment.add_partition_offset(&args.topic, p, start.unwrap_or(Offset::Stored))?;
        }
        if let Some(Offset::Offset(ts)) = start.filter(|_| args.from_time.is_some()) {
            let mut times = TopicPartitionList::new();
            for &p in &partitions {
                times.add_partition_offset(&args.topic, p, Offset::Offset(ts))?;
            }
            assignment = consumer.offsets_for_times(times, TIMEOUT)?;
        }
        consumer.assign(&assignment)?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    let mut stdout = std::io::stdout().lock();
    let mut registry: Option<RegistryClient> = None;
    let pretty = std::io::stdout().is_terminal();
    let mut printed = 0u64;
    let mut at_end = std::collections::BTreeSet::new();
    let mut next_offsets: std::collections::BTreeMap<i32, i64> = std::collections::BTreeMap::new();
    let mut last_commit = std::time::Instant::now();
    let commit = |next: &std::collections::BTreeMap<i32, i64>| -> Result<(), CliError> {
        if args.group.is_none() || next.is_empty() {
            return Ok(());
        }
        let mut offsets = TopicPartitionList::new();
        for (&p, &o) in next {
            offsets.add_partition_offset(&args.topic, p, Offset::Offset(o))?;
        }
        consumer.commit(&offsets, CommitMode::Sync)?;
        Ok(())
    };
    while !stop.load(Ordering::SeqCst) && args.count.is_none_or(|n| printed < n) {
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
                if !follow && at_end.len() >= partitions.len() {
                    break;
                }
            }
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(message)) => {
                at_end.remove(&message.partition());
                let text = render(&args, &mut registry, &message, pretty)?;
                if writeln!(stdout, "{text}").is_err() {
                    // A closed pipe (`| head`) ends the run quietly.
                    break;
                }
                printed += 1;
                next_offsets.insert(message.partition(), message.offset() + 1);
            }
        }
        if last_commit.elapsed() > Duration::from_secs(5) {
            commit(&next_offsets)?;
            last_commit = std::time::Instant::now();
        }
    }
    let _ = stdout.flush();
    // The count, the end of the topic or Ctrl-C ended the run: commit
    // exactly what was printed.
    commit(&next_offsets)?;
    Ok(if std::io::stderr().is_terminal() { format!("{printed} records\n") } else { String::new() })
}

fn text(bytes: Option<&[u8]>) -> Option<String> {
    bytes.map(|b| String::from_utf8_lossy(b).into_owned())
}

fn value_json(args: &ConsumeArgs, registry: &mut Option<RegistryClient>, value: Option<&[u8]>) -> Result<Value, CliError> {
    Ok(match (args.format, value) {
        (_, None) => Value::Null,
        (ValueFormat::Json, Some(v)) => {
            serde_json::from_slice(v).or_else(|_| json_schema_payload(v)).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(v).into_owned()))
        }
        (ValueFormat::Avro, Some(v)) => {
            let client = registry.get_or_insert_with(|| RegistryClient::new(&args.registry));
            crate::registry_client::decode_avro(client, v)?
        }
        (ValueFormat::Protobuf, Some(v)) => {
            let client = registry.get_or_insert_with(|| RegistryClient::new(&args.registry));
            crate::registry_client::decode_protobuf(client, v)?
        }
        (ValueFormat::Raw, Some(v)) => Value::String(String::from_utf8_lossy(v).into_owned()),
    })
}

/// A value written by a JSON Schema serializer: Confluent's magic byte 0
/// and schema id, then plain JSON.
fn json_schema_payload(bytes: &[u8]) -> Result<Value, ()> {
    match bytes {
        [0, _, _, _, _, json @ ..] => serde_json::from_slice(json).map_err(|_| ()),
        _ => Err(()),
    }
}

fn headers_json(message: &BorrowedMessage<'_>) -> Value {
    let mut map = serde_json::Map::new();
    if let Some(headers) = message.headers() {
        for header in headers.iter() {
            map.insert(header.key.to_string(), header.value.map_or(Value::Null, |v| Value::String(String::from_utf8_lossy(v).into_owned())));
        }
    }
    Value::Object(map)
}

fn render(args: &ConsumeArgs, registry: &mut Option<RegistryClient>, message: &BorrowedMessage<'_>, pretty: bool) -> Result<String, CliError> {
    let timestamp = message.timestamp().to_millis().unwrap_or(-1);
    if args.client.wants_json() {
        return Ok(json!({
            "topic": message.topic(),
            "partition": message.partition(),
            "offset": message.offset(),
            "timestamp": timestamp,
            "key": text(message.key()),
            "value": value_json(args, registry, message.payload())?,
            "headers": headers_json(message),
        })
        .to_string());
    }
    let value = match args.format {
        ValueFormat::Json | ValueFormat::Avro | ValueFormat::Protobuf => {
            let v = value_json(args, registry, message.payload())?;
            if pretty {
                serde_json::to_string_pretty(&v).unwrap_or_default()
            } else {
                v.to_string()
            }
        }
        ValueFormat::Raw => text(message.payload()).unwrap_or_default(),
    };
    Ok(match &args.print {
        None => value,
        Some(template) => template
            .replace("{key}", &text(message.key()).unwrap_or_default())
            .replace("{value}", &value)
            .replace("{topic}", message.topic())
            .replace("{partition}", &message.partition().to_string())
            .replace("{offset}", &message.offset().to_string())
            .replace("{timestamp}", &timestamp.to_string())
            .replace("{headers}", &headers_json(message).to_string())
            .replace("\\t", "\t"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_schema_wire_format_is_unwrapped() {
        assert_eq!(json_schema_payload(b"\x00\x00\x00\x00\x07{\"a\":1}"), Ok(json!({"a": 1})));
        assert_eq!(json_schema_payload(b"{\"a\":1}"), Err(()));
    }

    #[test]
    fn relative_and_absolute_start_times() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        let ten_minutes_ago = parse_start_time("-10m").unwrap();
        assert!((now - ten_minutes_ago - 600_000).abs() < 5_000);
        assert_eq!(parse_start_time("2020-07-01T00:00:00Z").unwrap(), 1_593_561_600_000);
        assert!(parse_start_time("soon").is_err());
    }
}
