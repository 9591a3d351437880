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
    /// Partitions with leader, replicas, ISR and offsets; non-default
    /// configs; damage the broker found in a partition's log.
    Describe {
        topic: String,
        /// Runnel's metrics endpoint, read for damaged logs (skipped if it
        /// does not answer, as with other Kafka clusters).
        #[arg(long, env = "RUNNEL_METRICS_URL", default_value = "http://localhost:9644/metrics")]
        metrics_url: String,
    },
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
        TopicCommand::Describe { topic, metrics_url } => describe(&client, &topic, &metrics_url),
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
    #[serde(skip_serializing_if = "Option::is_none")]
    damage: Option<Damage>,
}

/// A damaged batch the broker met in a partition's log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
struct Damage {
    segment: String,
    position: u64,
    reason: String,
    failed_reads: u64,
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

fn describe(client: &ClientArgs, topic: &str, metrics_url: &str) -> Result<String, CliError> {
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
            damage: None,
        });
    }
    let mut damage = damage_from_metrics(metrics_url, topic);
    for partition in &mut partitions {
        partition.damage = damage.remove(&partition.partition);
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
    for p in &description.partitions {
        if let Some(d) = &p.damage {
            out += &format!(
                "\npartition {} has a damaged batch in {} at byte {} ({}); {} reads failed\n",
                p.partition, d.segment, d.position, d.reason, d.failed_reads
            );
        }
    }
    if !description.configs.is_empty() {
        out += "\n";
        let rows: Vec<Vec<String>> = description.configs.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect();
        out += &table(&["CONFIG", "VALUE"], &rows);
    }
    Ok(out)
}

/// Damaged partitions of `topic`, as runnel's metrics endpoint reports
/// them. Empty when the endpoint does not answer.
fn damage_from_metrics(url: &str, topic: &str) -> BTreeMap<i32, Damage> {
    let agent = ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(2)).build();
    let Ok(response) = agent.get(url).call() else { return BTreeMap::new() };
    let Ok(text) = response.into_string() else { return BTreeMap::new() };
    parse_damage(&text, topic)
}

fn parse_damage(metrics: &str, topic: &str) -> BTreeMap<i32, Damage> {
    let mut found: BTreeMap<i32, Damage> = BTreeMap::new();
    for line in metrics.lines() {
        let Some((name, rest)) = line.split_once('{') else { continue };
        let Some((labels, value)) = rest.rsplit_once("} ") else { continue };
        let labels = parse_labels(labels);
        if labels.get("topic").map(String::as_str) != Some(topic) {
            continue;
        }
        let Some(partition) = labels.get("partition").and_then(|p| p.parse().ok()) else { continue };
        match name {
            "runnel_partition_damage_info" => {
                let entry = found.entry(partition).or_default();
                entry.segment = labels.get("segment").cloned().unwrap_or_default();
                entry.position = labels.get("position").and_then(|p| p.parse().ok()).unwrap_or_default();
                entry.reason = labels.get("reason").cloned().unwrap_or_default();
            }
            "runnel_partition_damaged_batch_reads_total" => found.entry(partition).or_default().failed_reads = value.trim().parse().unwrap_or_default(),
            _ => {}
        }
    }
    found
}

/// Parses `a="x",b="y\"z"` label pairs of the Prometheus text format.
fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() || chars.next() != Some('"') {
            return labels;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(name.trim_start_matches(',').to_string(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_is_read_from_runnel_metrics() {
        let metrics = r#"# TYPE runnel_partition_damaged_batch_reads_total counter
runnel_partition_damaged_batch_reads_total{topic="rides",partition="2"} 3
runnel_partition_damaged_batch_reads_total{topic="other",partition="0"} 1
runnel_partition_damage_info{topic="rides",partition="2",segment="/d/rides-2/00000000000000000000.log",position="4031",reason="bad \"length\""} 1
"#;
        let damage = parse_damage(metrics, "rides");
        assert_eq!(damage.len(), 1);
        assert_eq!(
            damage[&2],
            Damage { segment: "/d/rides-2/00000000000000000000.log".into(), position: 4031, reason: "bad \"length\"".into(), failed_reads: 3 }
        );
        assert!(parse_damage("garbage{\nno labels\n", "rides").is_empty());
    }
}
