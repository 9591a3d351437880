//! `runnel topic`: create, list, describe, alter, add-partitions, delete.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;

use crate::output::table;
use crate::{CliError, ClientArgs, TIMEOUT};

#[derive(Debug, Args)]
pub struct TopicArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, Subcommand)]
enum TopicCommand {
    /// Create a topic.
    Create {
        topic: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        #[arg(long, default_value_t = 1)]
        replication_factor: i32,
        /// Topic config, KEY=VALUE; repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Succeed quietly if the topic exists.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// List topics (internal ones only with --internal).
    List {
        #[arg(long)]
        internal: bool,
    },
    /// Partitions with leader, replicas, ISR and offsets; non-default configs.
    Describe { topic: String },
    /// Set topic configs, KEY=VALUE; other overrides are kept.
    Alter {
        topic: String,
        #[arg(long = "config", value_name = "KEY=VALUE", required = true)]
        configs: Vec<String>,
    },
    /// Grow a topic to N partitions.
    AddPartitions { topic: String, count: usize },
    /// Delete a topic and its data.
    Delete { topic: String },
}

fn parse_configs(specs: &[String]) -> Result<Vec<(String, String)>, CliError> {
    specs
        .iter()
        .map(|s| s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| CliError::Usage(format!("--config {s}: expected KEY=VALUE"))))
        .collect()
}

pub(crate) fn admin(client: &ClientArgs) -> Result<AdminClient<DefaultClientContext>, CliError> {
    let probe: BaseConsumer = client.config()?.create()?;
    probe.fetch_metadata(None, TIMEOUT).map_err(|e| CliError::Unreachable(client.bootstrap_server.clone(), e))?;
    Ok(client.config()?.create()?)
}

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(TIMEOUT))
}

/// Runs a topic command and returns what to print.
pub fn run(args: TopicArgs) -> Result<String, CliError> {
    let client = args.client;
    match args.command {
        TopicCommand::Create { topic, partitions, replication_factor, configs, if_not_exists } => {
            let configs = parse_configs(&configs)?;
            let admin = admin(&client)?;
            let mut new = NewTopic::new(&topic, partitions, TopicReplication::Fixed(replication_factor));
            for (k, v) in &configs {
                new = new.set(k, v);
            }
            match futures::executor::block_on(admin.create_topics([&new], &options()))?.remove(0) {
                Ok(_) => Ok(format!("created topic {topic} with {partitions} partition(s)\n")),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) if if_not_exists => Ok(format!("topic {topic} already exists\n")),
                Err((_, code)) => Err(CliError::Refused(format!("could not create topic {topic}: {code}"))),
            }
        }
        TopicCommand::List { internal } => list(&client, internal),
        TopicCommand::Describe { topic } => describe(&client, &topic),
        TopicCommand::Alter { topic, configs } => alter(&client, &topic, &parse_configs(&configs)?),
        TopicCommand::AddPartitions { topic, count } => {
            let admin = admin(&client)?;
            match futures::executor::block_on(admin.create_partitions([&NewPartitions::new(&topic, count)], &options()))?.remove(0) {
                Ok(_) => Ok(format!("topic {topic} now has {count} partitions\n")),
                Err((_, code)) => Err(CliError::Refused(format!("could not grow topic {topic} to {count} partitions: {code}"))),
            }
        }
        TopicCommand::Delete { topic } => {
            let admin = admin(&client)?;
            match futures::executor::block_on(admin.delete_topics(&[&topic], &options()))?.remove(0) {
                Ok(_) => Ok(format!("deleted topic {topic}\n")),
                Err((_, code)) => Err(CliError::Refused(format!("could not delete topic {topic}: {code}"))),
            }
        }
    }
}

#[derive(Serialize)]
struct TopicSummary {
    topic: String,
    partitions: usize,
}

fn list(client: &ClientArgs, internal: bool) -> Result<String, CliError> {
    let consumer: BaseConsumer = client.config()?.create()?;
    let metadata = consumer.fetch_metadata(None, TIMEOUT).map_err(|e| CliError::Unreachable(client.bootstrap_server.clone(), e))?;
    let mut topics: Vec<TopicSummary> = metadata
        .topics()
        .iter()
        .filter(|t| internal || !t.name().starts_with("__"))
        .map(|t| TopicSummary { topic: t.name().to_string(), partitions: t.partitions().len() })
        .collect();
    topics.sort_by(|a, b| a.topic.cmp(&b.topic));
    if client.wants_json() {
        return Ok(serde_json::to_string_pretty(&topics).expect("serialisable") + "\n");
    }
    let rows: Vec<Vec<String>> = topics.iter().map(|t| vec![t.topic.clone(), t.partitions.to_string()]).collect();
    Ok(table(&["TOPIC", "PARTITIONS"], &rows))
}

#[derive(Serialize)]
struct PartitionInfo {
    partition: i32,
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    log_start_offset: i64,
    log_end_offset: i64,
}

#[derive(Serialize)]
struct TopicDescription {
    topic: String,
    partitions: Vec<PartitionInfo>,
    /// Configs that differ from the defaults.
    configs: BTreeMap<String, String>,
}

/// Topic configs set on the topic itself (not defaults).
fn overrides(admin: &AdminClient<DefaultClientContext>, topic: &str) -> Result<BTreeMap<String, String>, CliError> {
    let resource = futures::executor::block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], &options()))?
        .remove(0)
        .map_err(|code| CliError::Refused(format!("could not read configs of topic {topic}: {code}")))?;
    Ok(resource.entries.into_iter().filter(|e| e.source == ConfigSource::DynamicTopic).filter_map(|e| e.value.map(|v| (e.name, v))).collect())
}

fn describe(client: &ClientArgs, topic: &str) -> Result<String, CliError> {
    let admin = admin(client)?;
    let consumer: BaseConsumer = client.config()?.create()?;
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
    let found = metadata.topics().first().filter(|t| t.error().is_none()).ok_or_else(|| CliError::Refused(format!("topic {topic} does not exist")))?;
    let mut partitions = Vec::new();
    for p in found.partitions() {
        let (low, high) = consumer.fetch_watermarks(topic, p.id(), TIMEOUT)?;
        partitions.push(PartitionInfo {
            partition: p.id(),
            leader: p.leader(),
            replicas: p.replicas().to_vec(),
            isr: p.isr().to_vec(),
            log_start_offset: low,
            log_end_offset: high,
        });
    }
    let description = TopicDescription { topic: topic.to_string(), partitions, configs: overrides(&admin, topic)? };
    if client.wants_json() {
        return Ok(serde_json::to_string_pretty(&description).expect("serialisable") + "\n");
    }
    let join = |ids: &[i32]| ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
    let rows: Vec<Vec<String>> = description
        .partitions
        .iter()
        .map(|p| {
            vec![p.partition.to_string(), p.leader.to_string(), join(&p.replicas), join(&p.isr), p.log_start_offset.to_string(), p.log_end_offset.to_string()]
        })
        .collect();
    let mut out = format!("topic {}  partitions {}\n\n", description.topic, description.partitions.len());
    out += &table(&["PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START", "LOG-END"], &rows);
    if !description.configs.is_empty() {
        out += "\n";
        let rows: Vec<Vec<String>> = description.configs.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect();
        out += &table(&["CONFIG", "VALUE"], &rows);
    }
    Ok(out)
}

/// AlterConfigs replaces a topic's overrides wholesale, so the current ones
/// are merged in first; the result is read back because librdkafka does
/// not report per-resource errors of AlterConfigs.
fn alter(client: &ClientArgs, topic: &str, changes: &[(String, String)]) -> Result<String, CliError> {
    let admin = admin(client)?;
    let mut configs = overrides(&admin, topic)?;
    configs.extend(changes.iter().cloned());
    let mut request = AlterConfig::new(ResourceSpecifier::Topic(topic));
    for (k, v) in &configs {
        request = request.set(k, v);
    }
    futures::executor::block_on(admin.alter_configs([&request], &options()))?
        .remove(0)
        .map_err(|(_, code)| CliError::Refused(format!("could not alter topic {topic}: {code}")))?;
    let now = overrides(&admin, topic)?;
    for (k, v) in changes {
        if now.get(k) != Some(v) {
            return Err(CliError::Refused(format!("the broker refused {k}={v} for topic {topic} (unknown config or invalid value)")));
        }
    }
    Ok(format!("altered topic {topic}\n"))
}
