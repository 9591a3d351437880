//! `runnel group`: list, describe (with lag), reset offsets and delete
//! consumer groups.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};
use clap::{ArgGroup, Args, Subcommand};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::output::table;
use crate::{CliError, ClientArgs, TIMEOUT};

#[derive(Debug, Args)]
pub struct GroupArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// List consumer groups with their state and member count.
    List,
    /// Show a group's members, committed offsets, log-end offsets and lag.
    Describe { group: String },
    /// Move a group's committed offsets; the group must have no members.
    ResetOffsets(ResetArgs),
    /// Delete a group and its committed offsets; it must have no members.
    Delete { group: String },
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_datetime", "to_offset", "shift_by"])))]
struct ResetArgs {
    group: String,
    /// Topic whose partitions to reset; repeatable.
    #[arg(long, required = true)]
    topic: Vec<String>,
    #[arg(long)]
    to_earliest: bool,
    #[arg(long)]
    to_latest: bool,
    /// RFC 3339 time, e.g. 2020-07-01T00:30:00Z: the first offset at or after it.
    #[arg(long)]
    to_datetime: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    to_offset: Option<i64>,
    /// Move each committed offset by N (negative moves back).
    #[arg(long, allow_hyphen_values = true)]
    shift_by: Option<i64>,
    /// Show the new offsets without committing them.
    #[arg(long)]
    dry_run: bool,
}

/// Runs a group command and returns what to print.
pub fn run(args: GroupArgs) -> Result<String, CliError> {
    let client = args.client;
    match args.command {
        GroupCommand::List => list(&client),
        GroupCommand::Describe { group } => describe(&client, &group),
        GroupCommand::ResetOffsets(reset) => reset_offsets(&client, &reset),
        GroupCommand::Delete { group } => delete(&client, &group),
    }
}

fn consumer(client: &ClientArgs, group: &str) -> Result<BaseConsumer, CliError> {
    let consumer: BaseConsumer = client.config()?.set("group.id", group).set("enable.auto.commit", "false").create()?;
    consumer.fetch_metadata(None, TIMEOUT).map_err(|e| CliError::Unreachable(client.bootstrap_server.clone(), e))?;
    Ok(consumer)
}

#[derive(Serialize)]
struct GroupSummary {
    group: String,
    state: String,
    protocol_type: String,
    protocol: String,
    members: usize,
}

fn list(client: &ClientArgs) -> Result<String, CliError> {
    let consumer = consumer(client, "runnel-cli")?;
    let groups = consumer.fetch_group_list(None, TIMEOUT)?;
    let mut summaries: Vec<GroupSummary> = groups
        .groups()
        .iter()
        .map(|g| GroupSummary {
            group: g.name().to_string(),
            state: g.state().to_string(),
            protocol_type: g.protocol_type().to_string(),
            protocol: g.protocol().to_string(),
            members: g.members().len(),
        })
        .collect();
    summaries.sort_by(|a, b| a.group.cmp(&b.group));
    if client.wants_json() {
        return Ok(serde_json::to_string_pretty(&summaries).expect("serialisable") + "\n");
    }
    let rows = summaries.iter().map(|s| vec![s.group.clone(), s.state.clone(), s.members.to_string(), s.protocol.clone()]).collect::<Vec<_>>();
    Ok(table(&["GROUP", "STATE", "MEMBERS", "PROTOCOL"], &rows))
}

#[derive(Serialize)]
struct MemberRow {
    member_id: String,
    client_id: String,
    host: String,
    assignment: Vec<(String, i32)>,
}

#[derive(Serialize)]
struct PartitionRow {
    topic: String,
    partition: i32,
    committed: Option<i64>,
    log_end: i64,
    lag: Option<i64>,
    member_id: Option<String>,
}

#[derive(Serialize)]
struct Description {
    group: String,
    state: String,
    protocol: String,
    members: Vec<MemberRow>,
    partitions: Vec<PartitionRow>,
}

/// Partitions in a consumer-protocol assignment (all versions share this
/// prefix: version, then topics with their partitions).
fn decode_assignment(bytes: &[u8]) -> Vec<(String, i32)> {
    let mut buf = Bytes::copy_from_slice(bytes);
    let mut out = Vec::new();
    if buf.remaining() < 6 {
        return out;
    }
    buf.get_i16();
    let topics = buf.get_i32();
    for _ in 0..topics.max(0) {
        if buf.remaining() < 2 {
            break;
        }
        let len = buf.get_i16().max(0) as usize;
        if buf.remaining() < len + 4 {
            break;
        }
        let topic = String::from_utf8_lossy(&buf.split_to(len)).into_owned();
        let count = buf.get_i32();
        for _ in 0..count.max(0) {
            if buf.remaining() < 4 {
                break;
            }
            out.push((topic.clone(), buf.get_i32()));
        }
    }
    out
}

fn describe(client: &ClientArgs, group: &str) -> Result<String, CliError> {
    let consumer = consumer(client, group)?;
    let groups = consumer.fetch_group_list(Some(group), TIMEOUT)?;
    let info = groups.groups().first().ok_or_else(|| CliError::Refused(format!("group {group} does not exist")))?;
    let members: Vec<MemberRow> = info
        .members()
        .iter()
        .map(|m| MemberRow {
            member_id: m.id().to_string(),
            client_id: m.client_id().to_string(),
            host: m.client_host().to_string(),
            assignment: m.assignment().map(decode_assignment).unwrap_or_default(),
        })
        .collect();
    let owner: BTreeMap<(String, i32), String> = members.iter().flat_map(|m| m.assignment.iter().map(move |tp| (tp.clone(), m.member_id.clone()))).collect();
    let metadata = consumer.fetch_metadata(None, TIMEOUT)?;
    let mut query = TopicPartitionList::new();
    for topic in metadata.topics().iter().filter(|t| !t.name().starts_with("__")) {
        for partition in topic.partitions() {
            query.add_partition(topic.name(), partition.id());
        }
    }
    let committed = consumer.committed_offsets(query, TIMEOUT)?;
    let mut partitions = Vec::new();
    for element in committed.elements() {
        let key = (element.topic().to_string(), element.partition());
        let offset = match element.offset() {
            Offset::Offset(n) => Some(n),
            _ => None,
        };
        if offset.is_none() && !owner.contains_key(&key) {
            continue;
        }
        let (_, log_end) = consumer.fetch_watermarks(&key.0, key.1, TIMEOUT)?;
        partitions.push(PartitionRow {
            topic: key.0.clone(),
            partition: key.1,
            committed: offset,
            log_end,
            lag: offset.map(|o| (log_end - o).max(0)),
            member_id: owner.get(&key).cloned(),
        });
    }
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let description = Description { group: group.to_string(), state: info.state().to_string(), protocol: info.protocol().to_string(), members, partitions };
    if client.wants_json() {
        return Ok(serde_json::to_string_pretty(&description).expect("serialisable") + "\n");
    }
    let mut out =
        format!("group {}  state {}  protocol {}  members {}\n\n", description.group, description.state, description.protocol, description.members.len());
    let dash = || "-".to_string();
    let rows: Vec<Vec<String>> = description
        .partitions
        .iter()
        .map(|p| {
            let member = p.member_id.as_ref().and_then(|id| description.members.iter().find(|m| &m.member_id == id));
            vec![
                p.topic.clone(),
                p.partition.to_string(),
                p.committed.map_or_else(dash, |o| o.to_string()),
                p.log_end.to_string(),
                p.lag.map_or_else(dash, |l| l.to_string()),
                member.map_or_else(dash, |m| m.member_id.clone()),
                member.map_or_else(dash, |m| m.client_id.clone()),
                member.map_or_else(dash, |m| m.host.clone()),
            ]
        })
        .collect();
    out += &table(&["TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "MEMBER", "CLIENT-ID", "HOST"], &rows);
    Ok(out)
}

#[derive(Serialize)]
struct ResetRow {
    topic: String,
    partition: i32,
    current: Option<i64>,
    new: i64,
}

fn reset_offsets(client: &ClientArgs, reset: &ResetArgs) -> Result<String, CliError> {
    let consumer = consumer(client, &reset.group)?;
    if let Some(info) = consumer.fetch_group_list(Some(&reset.group), TIMEOUT)?.groups().first() {
        if !info.members().is_empty() {
            return Err(CliError::Refused(format!(
                "group {} has {} active member(s) (state {}); stop its consumers before resetting offsets",
                reset.group,
                info.members().len(),
                info.state()
            )));
        }
    }
    let timestamp = match &reset.to_datetime {
        Some(text) => {
            let time = humantime::parse_rfc3339_weak(text)
                .map_err(|e| CliError::Usage(format!("--to-datetime {text}: {e}; use RFC 3339, e.g. 2020-07-01T00:30:00Z")))?;
            Some(time.duration_since(std::time::UNIX_EPOCH).map_err(|_| CliError::Usage("--to-datetime is before 1970".into()))?.as_millis() as i64)
        }
        None => None,
    };
    let metadata = consumer.fetch_metadata(None, TIMEOUT)?;
    let mut query = TopicPartitionList::new();
    for name in &reset.topic {
        let topic = metadata
            .topics()
            .iter()
            .find(|t| t.name() == name && t.error().is_none())
            .ok_or_else(|| CliError::Refused(format!("topic {name} does not exist")))?;
        for partition in topic.partitions() {
            query.add_partition(name, partition.id());
        }
    }
    let committed = consumer.committed_offsets(query.clone(), TIMEOUT)?;
    let by_time = match timestamp {
        Some(ts) => {
            let mut times = TopicPartitionList::new();
            for e in query.elements() {
                times.add_partition_offset(e.topic(), e.partition(), Offset::Offset(ts))?;
            }
            Some(consumer.offsets_for_times(times, TIMEOUT)?)
        }
        None => None,
    };
    let mut rows = Vec::new();
    let mut commit = TopicPartitionList::new();
    for element in committed.elements() {
        let (topic, partition) = (element.topic(), element.partition());
        let (low, high) = consumer.fetch_watermarks(topic, partition, TIMEOUT)?;
        let current = match element.offset() {
            Offset::Offset(n) => Some(n),
            _ => None,
        };
        let new = if reset.to_earliest {
            low
        } else if reset.to_latest {
            high
        } else if let Some(n) = reset.to_offset {
            n
        } else if let Some(shift) = reset.shift_by {
            current.unwrap_or(low) + shift
        } else {
            let found = by_time.as_ref().and_then(|t| t.find_partition(topic, partition)).map(|e| e.offset());
            match found {
                Some(Offset::Offset(n)) => n,
                _ => high,
            }
        }
        .clamp(low, high);
        commit.add_partition_offset(topic, partition, Offset::Offset(new))?;
        rows.push(ResetRow { topic: topic.to_string(), partition, current, new });
    }
    if !reset.dry_run {
        consumer.commit(&commit, CommitMode::Sync)?;
    }
    if client.wants_json() {
        return Ok(serde_json::to_string_pretty(&rows).expect("serialisable") + "\n");
    }
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| vec![r.topic.clone(), r.partition.to_string(), r.current.map_or_else(|| "-".to_string(), |c| c.to_string()), r.new.to_string()])
        .collect();
    let note = if reset.dry_run { "dry run: nothing was committed\n" } else { "" };
    Ok(table(&["TOPIC", "PARTITION", "CURRENT", "NEW"], &table_rows) + note)
}

fn delete(client: &ClientArgs, group: &str) -> Result<String, CliError> {
    consumer(client, "runnel-cli")?;
    let admin: AdminClient<DefaultClientContext> = client.config()?.create()?;
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = futures::executor::block_on(admin.delete_groups(&[group], &options))?;
    for result in results {
        if let Err((name, code)) = result {
            return Err(CliError::Refused(format!("could not delete group {name}: {code}")));
        }
    }
    Ok(format!("deleted group {group}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_assignments_decode_and_damaged_ones_do_not_panic() {
        let mut bytes = vec![0, 1, 0, 0, 0, 1, 0, 5];
        bytes.extend_from_slice(b"rides");
        bytes.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(decode_assignment(&bytes), vec![("rides".to_string(), 3), ("rides".to_string(), 4)]);
        for cut in 0..bytes.len() {
            decode_assignment(&bytes[..cut]);
        }
    }
}
