//! Rows and keys as queries pass them through runnel-streams, and the
//! processing log that records what could not be read or computed.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::value::Value;

/// A row's columns, in its schema's order.
pub type Row = Vec<Value>;

/// A record key: the values of the key columns. Keys group and join, so
/// they hash and compare by value (doubles by their bits).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Key(pub Vec<Value>);

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for value in &self.0 {
            hash_value(value, state);
        }
    }
}

fn hash_value<H: Hasher>(value: &Value, state: &mut H) {
    std::mem::discriminant(value).hash(state);
    match value {
        Value::Null => {}
        Value::Boolean(b) => b.hash(state),
        Value::Int(i) => i.hash(state),
        Value::Bigint(i) | Value::Time(i) | Value::Timestamp(i) => i.hash(state),
        Value::Double(d) => d.to_bits().hash(state),
        Value::Decimal(d) => d.hash(state),
        Value::String(s) => s.hash(state),
        Value::Bytes(b) => b.hash(state),
        Value::Date(d) => d.hash(state),
        Value::Array(items) => items.iter().for_each(|v| hash_value(v, state)),
        Value::Map(entries) => entries.iter().for_each(|(k, v)| {
            hash_value(k, state);
            hash_value(v, state);
        }),
        Value::Struct(fields) => fields.iter().for_each(|(name, v)| {
            name.hash(state);
            hash_value(v, state);
        }),
    }
}

/// How many processing-log messages are kept.
const LOG_CAPACITY: usize = 1_000;

/// Records that could not be read, and expressions that failed, as
/// ksqlDB's processing log records them: the query carries on.
#[derive(Debug, Default)]
pub struct ProcessingLog {
    count: AtomicU64,
    recent: Mutex<VecDeque<String>>,
}

impl ProcessingLog {
    /// A log shared by the parts of a query.
    pub fn shared() -> Arc<ProcessingLog> {
        Arc::new(ProcessingLog::default())
    }

    /// Records one problem.
    pub fn record(&self, message: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%message, "processing log");
        let mut recent = self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if recent.len() == LOG_CAPACITY {
            recent.pop_front();
        }
        recent.push_back(message);
    }

    /// How many problems were recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The most recent problems, oldest first.
    pub fn recent(&self) -> Vec<String> {
        self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn keys_hash_and_compare_by_value() {
        let keys: HashSet<Key> =
            [Key(vec![Value::String("132".into())]), Key(vec![Value::String("132".into())]), Key(vec![Value::Double(1.5)]), Key(vec![])].into_iter().collect();
        assert_eq!(keys.len(), 3);
    }

    #[test]
    fn the_log_keeps_a_bounded_tail() {
        let log = ProcessingLog::default();
        for i in 0..(LOG_CAPACITY + 5) {
            log.record(format!("problem {i}"));
        }
        assert_eq!(log.count(), LOG_CAPACITY as u64 + 5);
        assert_eq!(log.recent().len(), LOG_CAPACITY);
        assert_eq!(log.recent()[0], "problem 5");
    }
}
