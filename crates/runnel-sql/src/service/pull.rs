//! Pull queries: `SELECT ... FROM table [WHERE ...]` without `EMIT
//! CHANGES` answers with the table's rows as they are now, then ends.
//!
//! The rows come from the table's topic, read from its start to its end
//! when the query arrives: each key's latest record, tombstones deleting
//! (windowed tables keyed by key and window). Reading the topic is what
//! any Kafka client can do, so this works against any cluster and for any
//! table a persistent query writes or a `CREATE TABLE` declares; its cost
//! is the topic's size, kept small for plain tables by compaction.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::entities::codes;
use super::{Refusal, SqlService};
use crate::ast::{Query, Relation, SelectItem, SourceKind};
use crate::catalog::{KeyWindow, SourceDef};
use crate::eval::{compile, Eval, Scope};
use crate::format::RowFormat;
use crate::row::Row;
use crate::types::SqlType;
use crate::value::Value;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A pull query's answer: its columns and rows.
pub struct PullResult {
    /// Its id (`pull_<n>`).
    pub id: String,
    /// Its columns, in order.
    pub columns: Vec<(String, SqlType)>,
    /// Its rows.
    pub rows: Vec<Row>,
}

/// The table's columns as a pull query sees them: key columns, the window
/// bounds of a windowed table, then value columns.
fn table_columns(source: &SourceDef) -> Vec<(String, SqlType)> {
    let mut columns = source.key_columns();
    if source.window.is_some() {
        columns.push(("WINDOWSTART".to_string(), SqlType::Bigint));
        columns.push(("WINDOWEND".to_string(), SqlType::Bigint));
    }
    columns.extend(source.value_columns());
    columns
}

impl SqlService {
    /// Answers a pull query over `query`'s table.
    pub fn pull(&self, text: &str, query: &Query) -> Result<PullResult, Refusal> {
        let refuse = |message: String| Refusal::new(codes::BAD_STATEMENT, message, Some(text.trim()));
        let Relation::Source { name, .. } = &query.from else {
            return Err(refuse("Pull queries don't support JOIN clauses.".into()));
        };
        if !query.group_by.is_empty() || query.window.is_some() || query.having.is_some() || !query.partition_by.is_empty() {
            return Err(refuse("Pull queries don't support GROUP BY, WINDOW, HAVING or PARTITION BY clauses.".into()));
        }
        let source = self.lock().engine.catalog().get(name).map_err(|e| refuse(e.to_string()))?.clone();
        if source.kind != SourceKind::Table {
            return Err(refuse(format!("Pull queries are not supported on streams: `{}` is a stream. Add EMIT CHANGES for a push query.", source.name)));
        }
        let columns = table_columns(&source);
        let scope = Scope::of(&columns.iter().map(|(n, t)| (n.as_str(), t.clone())).collect::<Vec<_>>());
        let filter = query.filter.as_ref().map(|f| compile(f, &scope)).transpose().map_err(|e| refuse(e.to_string()))?;
        if filter.as_ref().is_some_and(|f| f.sql_type != SqlType::Boolean) {
            return Err(refuse("Type error in WHERE expression: should evaluate to boolean".into()));
        }
        let mut items: Vec<(crate::ast::Expr, Option<String>)> = Vec::new();
        for item in &query.items {
            match item {
                SelectItem::All | SelectItem::AllOf(_) => {
                    items.extend(columns.iter().map(|(name, _)| (crate::ast::Expr::Column { source: None, name: name.clone() }, Some(name.clone()))));
                }
                SelectItem::Expr { expr, alias } => items.push((expr.clone(), alias.clone())),
            }
        }
        let names = crate::planner::item_names(&items, &scope);
        let mut selected = Vec::new();
        for ((expr, _), name) in items.iter().zip(names) {
            let compiled = compile(expr, &scope).map_err(|e| refuse(e.to_string()))?;
            let sql_type = compiled.sql_type.clone();
            selected.push((name, compiled, sql_type));
        }
        let table = self.read_table(&source).map_err(|e| Refusal::new(codes::SERVER_ERROR, e, Some(text.trim())))?;
        let mut ctx = Eval::default();
        let mut rows = Vec::new();
        for row in table {
            if filter.as_ref().is_some_and(|f| !f.eval(&row, &mut ctx).is_true()) {
                continue;
            }
            rows.push(selected.iter().map(|(_, compiled, _)| compiled.eval(&row, &mut ctx)).collect());
            if query.limit.is_some_and(|limit| rows.len() as u64 >= limit) {
                break;
            }
        }
        let number = self.push.next_id();
        Ok(PullResult { id: format!("pull_{number}"), columns: selected.into_iter().map(|(name, _, sql_type)| (name, sql_type)).collect(), rows })
    }

    /// Every row of a table: each key's latest record in its topic, up to
    /// the topic's end now, ordered by key bytes.
    fn read_table(&self, source: &SourceDef) -> Result<Vec<Row>, String> {
        let log = self.lock().engine.processing_log();
        let keys = source.key_row_format(log.clone());
        let values = source.value_row_format(log);
        let consumer: BaseConsumer = self
            .config
            .client()
            .set("group.id", format!("_confluent-ksql-{}pull", self.config.service_id))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .map_err(|e| e.to_string())?;
        let partitions = self.cluster.partitions(&source.topic).map_err(|e| e.to_string())?.unwrap_or(0);
        let mut assignment = TopicPartitionList::new();
        let mut ends = HashMap::new();
        for partition in 0..partitions {
            let (low, high) = consumer.fetch_watermarks(&source.topic, partition, TIMEOUT).map_err(|e| e.to_string())?;
            if high > low {
                assignment.add_partition_offset(&source.topic, partition, Offset::Offset(low)).map_err(|e| e.to_string())?;
                ends.insert(partition, high);
            }
        }
        let mut latest: HashMap<Vec<u8>, Row> = HashMap::new();
        if ends.is_empty() {
            return Ok(Vec::new());
        }
        consumer.assign(&assignment).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ends.is_empty() {
            if Instant::now() > deadline {
                return Err(format!("reading the topic {} stalled", source.topic));
            }
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                let message = message.map_err(|e| e.to_string())?;
                let key_bytes = message.key().unwrap_or_default().to_vec();
                match message.payload() {
                    None => {
                        latest.remove(&key_bytes);
                    }
                    Some(payload) => {
                        if let Some(row) = table_row(source, &keys, &values, &key_bytes, payload) {
                            latest.insert(key_bytes, row);
                        }
                    }
                }
            }
            let positions = consumer.position().map_err(|e| e.to_string())?;
            ends.retain(|partition, end| positions.find_partition(&source.topic, *partition).and_then(|p| p.offset().to_raw()).is_none_or(|at| at < *end));
        }
        let mut rows: Vec<(Vec<u8>, Row)> = latest.into_iter().collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(rows.into_iter().map(|(_, row)| row).collect())
    }
}

/// One record of a table's topic as a row: key columns, the window of a
/// windowed key (Kafka Streams' layouts: the start after the key, or the
/// end then the start for sessions), value columns. `None` if it cannot
/// be read (it went to the processing log).
fn table_row(source: &SourceDef, keys: &RowFormat, values: &RowFormat, key_bytes: &[u8], payload: &[u8]) -> Option<Row> {
    let (inner, window) = match source.window {
        None => (key_bytes, None),
        Some(KeyWindow::Time { size_ms }) => {
            let split = key_bytes.len().checked_sub(8)?;
            let start = i64::from_be_bytes(key_bytes[split..].try_into().ok()?);
            (&key_bytes[..split], Some((start, start + size_ms)))
        }
        Some(KeyWindow::Session) => {
            let split = key_bytes.len().checked_sub(16)?;
            let end = i64::from_be_bytes(key_bytes[split..split + 8].try_into().ok()?);
            let start = i64::from_be_bytes(key_bytes[split + 8..].try_into().ok()?);
            (&key_bytes[..split], Some((start, end)))
        }
    };
    let mut row = if source.key.is_empty() { Vec::new() } else { keys.read(Some(inner)).ok()?? };
    if let Some((start, end)) = window {
        row.push(Value::Bigint(start));
        row.push(Value::Bigint(end));
    }
    row.extend(values.read(Some(payload)).ok()??);
    Some(row)
}
