//! State stores: the tables a task's stateful nodes keep, each logged to
//! its changelog topic in the byte layout Kafka Streams gives that kind of
//! store, and rebuilt from it.
//!
//! Stores belong to the task, not to a node, so one node can read another
//! node's store: a join looks up the table it joins with, as Kafka
//! Streams' value getters do. Each store has an id, its index in the
//! topology's store list, so a lookup on the hot path is an index, not a
//! name.

use std::any::Any;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use crate::serde::Windowed;
use crate::topology::{Data, SharedSerde};
use crate::window::Window;

/// A change to a store, for its changelog topic: the key and value as
/// Kafka Streams lays them out in that store's changelog.
pub(crate) struct StoreChange {
    pub store: usize,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
}

/// A store as the task holds it: typed behind `Any`, restorable from
/// changelog bytes.
pub(crate) trait StateStore: Any + Send {
    /// Applies one changelog record.
    fn restore(&mut self, key: &[u8], value: Option<&[u8]>);
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// Makes a fresh, empty store for a task.
pub(crate) type MakeStore = Arc<dyn Fn() -> Box<dyn StateStore> + Send + Sync>;

/// A task's stores, by id.
pub(crate) struct Stores(pub Vec<Box<dyn StateStore>>);

impl Stores {
    /// The store `id` as the type its builder made it.
    ///
    /// # Panics
    /// If the store is of another type: the DSL builds each node with the
    /// ids and types of the stores it uses, so this is a bug, not input.
    pub fn get<S: StateStore>(&self, id: usize) -> &S {
        self.0[id].as_any().downcast_ref::<S>().expect("the DSL gives each node the stores it was built for")
    }

    /// The store `id`, to change.
    pub fn get_mut<S: StateStore>(&mut self, id: usize) -> &mut S {
        self.0[id].as_any_mut().downcast_mut::<S>().expect("the DSL gives each node the stores it was built for")
    }
}

/// A changelog value of a timestamped store: the update's timestamp
/// (8 bytes, big-endian), then the value.
fn with_timestamp(timestamp: i64, value: Option<Vec<u8>>) -> Option<Vec<u8>> {
    value.map(|v| [&timestamp.to_be_bytes()[..], &v].concat())
}

fn split_timestamp(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let (timestamp, value) = bytes.split_first_chunk::<8>()?;
    Some((i64::from_be_bytes(*timestamp), value))
}

/// A timestamped key-value store (Kafka Streams'
/// `TimestampedKeyValueStore`): each key's latest value and the timestamp
/// of its update, kept in memory.
pub struct KeyValueStore<K, V> {
    id: usize,
    /// Whether changes go to the changelog (a store that only serves
    /// lookups for one task run, such as a join's buffer, is not logged).
    logged: bool,
    entries: HashMap<K, (V, i64)>,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
}

impl<K: Data + Hash + Eq, V: Data> KeyValueStore<K, V> {
    pub(crate) fn maker(id: usize, key_serde: SharedSerde<K>, value_serde: SharedSerde<V>) -> MakeStore {
        Arc::new(move || Box::new(KeyValueStore { id, logged: true, entries: HashMap::new(), key_serde: key_serde.clone(), value_serde: value_serde.clone() }))
    }

    /// A key's value and the timestamp of its last update.
    pub fn get(&self, key: &K) -> Option<&(V, i64)> {
        self.entries.get(key)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V, i64)> {
        self.entries.iter().map(|(k, (v, ts))| (k, v, *ts))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets (or with `None`, deletes) a key's value, logging the change;
    /// returns the previous value.
    pub(crate) fn put(&mut self, key: K, value: Option<V>, timestamp: i64, changes: &mut Vec<StoreChange>) -> Option<(V, i64)> {
        if self.logged {
            if let Some(key_bytes) = self.key_serde.serialize(&key) {
                let value = value.as_ref().and_then(|v| self.value_serde.serialize(v));
                changes.push(StoreChange { store: self.id, key: key_bytes, value: with_timestamp(timestamp, value), timestamp });
            }
        }
        match value {
            Some(value) => self.entries.insert(key, (value, timestamp)),
            None => self.entries.remove(&key),
        }
    }
}

impl<K: Data + Hash + Eq, V: Data> StateStore for KeyValueStore<K, V> {
    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) {
        let Ok(key) = self.key_serde.deserialize(Some(key)) else { return };
        match value.and_then(split_timestamp) {
            Some((timestamp, bytes)) => {
                if let Ok(value) = self.value_serde.deserialize(Some(bytes)) {
                    self.entries.insert(key, (value, timestamp));
                }
            }
            None => {
                self.entries.remove(&key);
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A timestamped window store (Kafka Streams' `TimestampedWindowStore`):
/// each key's value in each window, kept while the window is within the
/// store's retention of the newest timestamp seen. Its changelog key is
/// the key, the window's start and a sequence number (always 0).
pub struct WindowStore<K, V> {
    id: usize,
    size_ms: i64,
    retention_ms: i64,
    entries: HashMap<Windowed<K>, (V, i64)>,
    /// The newest record timestamp put or restored: the aggregation's
    /// stream time, which survives a restart with the store.
    pub(crate) observed: i64,
    /// `observed` when expired windows were last dropped.
    purged_at: i64,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
}

impl<K: Data + Hash + Eq, V: Data> WindowStore<K, V> {
    pub(crate) fn maker(id: usize, size_ms: i64, retention_ms: i64, key_serde: SharedSerde<K>, value_serde: SharedSerde<V>) -> MakeStore {
        Arc::new(move || {
            Box::new(WindowStore {
                id,
                size_ms,
                retention_ms,
                entries: HashMap::new(),
                observed: i64::MIN,
                purged_at: i64::MIN,
                key_serde: key_serde.clone(),
                value_serde: value_serde.clone(),
            })
        })
    }

    /// A key's value in one window, and the timestamp of its last update.
    pub fn get(&self, key: &Windowed<K>) -> Option<&(V, i64)> {
        self.entries.get(key)
    }

    /// A key's windows starting from `from` to `to` (inclusive), oldest
    /// first.
    pub fn fetch(&self, key: &K, from: i64, to: i64) -> Vec<(Window, &V, i64)> {
        let mut found: Vec<(Window, &V, i64)> = self
            .entries
            .iter()
            .filter(|(w, _)| &w.key == key && from <= w.window.start && w.window.start <= to)
            .map(|(w, (v, ts))| (w.window, v, *ts))
            .collect();
        found.sort_by_key(|(w, _, _)| w.start);
        found
    }

    /// Records the newest timestamp seen and, once per window size,
    /// forgets windows past the retention.
    pub(crate) fn observe(&mut self, timestamp: i64) {
        self.observed = self.observed.max(timestamp);
        if self.observed >= self.purged_at.saturating_add(self.size_ms) {
            let oldest = self.observed.saturating_sub(self.retention_ms);
            self.entries.retain(|w, _| w.window.start > oldest);
            self.purged_at = self.observed;
        }
    }

    /// Sets (or deletes) a key's value in a window, logging the change.
    pub(crate) fn put(&mut self, key: Windowed<K>, value: Option<V>, timestamp: i64, changes: &mut Vec<StoreChange>) {
        if let Some(key_bytes) = self.key_serde.serialize(&key.key) {
            let store_key = [&key_bytes[..], &key.window.start.to_be_bytes(), &0i32.to_be_bytes()].concat();
            let value = value.as_ref().and_then(|v| self.value_serde.serialize(v));
            changes.push(StoreChange { store: self.id, key: store_key, value: with_timestamp(timestamp, value), timestamp });
        }
        match value {
            Some(value) => self.entries.insert(key, (value, timestamp)),
            None => self.entries.remove(&key),
        };
    }
}

impl<K: Data + Hash + Eq, V: Data> StateStore for WindowStore<K, V> {
    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) {
        let Some(split) = key.len().checked_sub(12) else { return };
        let start = i64::from_be_bytes(key[split..split + 8].try_into().expect("8 bytes"));
        let Ok(inner) = self.key_serde.deserialize(Some(&key[..split])) else { return };
        let windowed = Windowed { key: inner, window: Window { start, end: start + self.size_ms } };
        match value.and_then(split_timestamp) {
            Some((timestamp, bytes)) => {
                if let Ok(value) = self.value_serde.deserialize(Some(bytes)) {
                    self.observed = self.observed.max(timestamp);
                    self.entries.insert(windowed, (value, timestamp));
                }
            }
            None => {
                self.entries.remove(&windowed);
            }
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
