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
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Arc, OnceLock};

use crate::checkpoint::StoreFile;
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

    /// Puts the store's records in `file` (a checkpoint's records of this
    /// store, as of its last save) instead of memory, caching `capacity`
    /// keys; returns whether the store does so. Stores that keep only
    /// their retention's worth of state (windows, sessions, join sides,
    /// buffers) stay in memory.
    fn attach(&mut self, _file: StoreFile, _capacity: usize) -> bool {
        false
    }

    /// Whether the store holds so many keys in memory that the task should
    /// commit, so the checkpoint takes them and the cache can shrink.
    fn over_capacity(&self) -> bool {
        false
    }

    /// Shrinks the cache to its capacity once the checkpoint holds every
    /// change: called after each save.
    fn trim(&mut self) {}

    /// A failed read of the file behind the store.
    fn failure(&self) -> Option<String> {
        None
    }

    /// Caps the stream time the store expires and closes by at the task's
    /// stream time as of its committed input positions, after a restore.
    /// Under at-least-once the changelog runs ahead of those positions, and
    /// the records processed again from them must find the windows they
    /// found the first time, not see them expired or closed.
    fn resume(&mut self, _stream_time: i64) {}

    /// Has the store note the changelog keys of the records it drops by
    /// retention (with a state directory), so the checkpoint drops them
    /// too. Their changelogs are cleaned by time and carry no tombstones
    /// for them; without this a checkpoint would keep every window ever
    /// made, and a restart would load them all.
    fn track_expiry(&mut self) {}

    /// Moves the changelog keys noted since the last call into `out`.
    fn take_expired(&mut self, _out: &mut Vec<Vec<u8>>) {}

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

    /// The store `id` if it is of type `S` (for reads from outside the
    /// DSL, which may ask for the wrong type).
    pub fn find<S: StateStore>(&self, id: usize) -> Option<&S> {
        self.0.get(id)?.as_any().downcast_ref::<S>()
    }

    /// The store `id`, to change.
    pub fn get_mut<S: StateStore>(&mut self, id: usize) -> &mut S {
        self.0[id].as_any_mut().downcast_mut::<S>().expect("the DSL gives each node the stores it was built for")
    }

    /// Whether any store's cache has outgrown its bound.
    pub fn over_capacity(&self) -> bool {
        self.0.iter().any(|store| store.over_capacity())
    }

    /// Caps every store's stream time after a restore (see
    /// [`StateStore::resume`]).
    pub fn resume(&mut self, stream_time: i64) {
        self.0.iter_mut().for_each(|store| store.resume(stream_time));
    }

    /// Has every store note what it drops by retention (see
    /// [`StateStore::track_expiry`]).
    pub fn track_expiry(&mut self) {
        self.0.iter_mut().for_each(|store| store.track_expiry());
    }

    /// Shrinks every cache after a checkpoint save.
    pub fn trim(&mut self) {
        self.0.iter_mut().for_each(|store| store.trim());
    }

    /// The first failed read of a store's file: the store's id and the
    /// error.
    pub fn failure(&self) -> Option<(usize, String)> {
        self.0.iter().enumerate().find_map(|(id, store)| store.failure().map(|message| (id, message)))
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

/// The changelog keys of records a time-bounded store dropped by
/// retention, noted only once the store has a checkpoint to clean (see
/// [`StateStore::track_expiry`]).
#[derive(Default)]
struct Expired {
    tracking: bool,
    keys: Vec<Vec<u8>>,
}

impl Expired {
    /// Notes a dropped record's changelog key, made by `key` only when
    /// tracking: the serialization is not paid without a checkpoint.
    fn note(&mut self, key: impl FnOnce() -> Option<Vec<u8>>) {
        if self.tracking {
            self.keys.extend(key());
        }
    }

    fn take(&mut self, out: &mut Vec<Vec<u8>>) {
        out.append(&mut self.keys);
    }
}

/// A window store's changelog key: the key, the window's start and a
/// sequence number (always 0).
fn window_changelog_key(key: &[u8], start: i64) -> Vec<u8> {
    [key, &start.to_be_bytes(), &0i32.to_be_bytes()].concat()
}

/// A session store's changelog key: the key, the session's end, then its
/// start.
fn session_changelog_key(key: &[u8], window: Window) -> Vec<u8> {
    [key, &window.end.to_be_bytes(), &window.start.to_be_bytes()].concat()
}

/// A timestamped key-value store (Kafka Streams'
/// `TimestampedKeyValueStore`): each key's latest value and the timestamp
/// of its update.
///
/// In memory by default. With a state directory the task's checkpoint
/// file is its persistent home: memory then holds a cache of at most
/// `capacity` keys plus the keys changed since the last commit (which the
/// checkpoint does not have yet), and a key not in the cache is read from
/// the file. That is how a store grows past memory, as a RocksDB store
/// does in Kafka Streams.
pub struct KeyValueStore<K, V> {
    id: usize,
    /// Whether changes go to the changelog (a store that only serves
    /// lookups for one task run, such as a join's buffer, is not logged).
    logged: bool,
    /// Each key's entry; with a file behind the store, `None` marks a key
    /// deleted since the last commit, or known to be absent.
    entries: HashMap<K, Option<(V, i64)>>,
    disk: Option<Disk>,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
}

/// The file behind a key-value store, and how many keys to keep cached.
struct Disk {
    file: StoreFile,
    capacity: usize,
    /// The first read that failed; the runtime stops on it.
    failure: OnceLock<String>,
}

impl<K: Data + Hash + Eq, V: Data> KeyValueStore<K, V> {
    pub(crate) fn maker(id: usize, key_serde: SharedSerde<K>, value_serde: SharedSerde<V>) -> MakeStore {
        Arc::new(move || {
            Box::new(KeyValueStore { id, logged: true, entries: HashMap::new(), disk: None, key_serde: key_serde.clone(), value_serde: value_serde.clone() })
        })
    }

    /// A key's value and the timestamp of its last update.
    pub fn get(&self, key: &K) -> Option<(V, i64)> {
        match self.entries.get(key) {
            Some(entry) => entry.clone(),
            None => self.read(key),
        }
    }

    /// A key's entry from the file behind the store.
    fn read(&self, key: &K) -> Option<(V, i64)> {
        let disk = self.disk.as_ref()?;
        let key_bytes = self.key_serde.serialize(key)?;
        match disk.file.get(&key_bytes) {
            Ok(bytes) => self.decode(&bytes?),
            Err(e) => {
                let _ = disk.failure.set(e);
                None
            }
        }
    }

    fn decode(&self, bytes: &[u8]) -> Option<(V, i64)> {
        let (timestamp, value) = split_timestamp(bytes)?;
        Some((self.value_serde.deserialize(Some(value)).ok()?, timestamp))
    }

    /// A key's value and timestamp, cached for the update that follows.
    pub(crate) fn load(&mut self, key: &K) -> Option<&(V, i64)> {
        if self.disk.is_some() && !self.entries.contains_key(key) {
            let found = self.read(key);
            self.entries.insert(key.clone(), found);
        }
        self.entries.get(key)?.as_ref()
    }

    /// Every entry, in no particular order.
    pub fn all(&self) -> Vec<(K, V, i64)> {
        let mut all: Vec<(K, V, i64)> = self.entries.iter().filter_map(|(k, e)| e.as_ref().map(|(v, ts)| (k.clone(), v.clone(), *ts))).collect();
        if let Some(disk) = &self.disk {
            match disk.file.scan() {
                Ok(records) => {
                    for (key, value) in records {
                        let Ok(key) = self.key_serde.deserialize(Some(&key)) else { continue };
                        if self.entries.contains_key(&key) {
                            continue;
                        }
                        if let Some((value, timestamp)) = self.decode(&value) {
                            all.push((key, value, timestamp));
                        }
                    }
                }
                Err(e) => {
                    let _ = disk.failure.set(e);
                }
            }
        }
        all
    }

    /// How many keys the store holds.
    pub fn len(&self) -> usize {
        match self.disk {
            Some(_) => self.all().len(),
            None => self.entries.len(),
        }
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many keys are in memory.
    pub fn cached(&self) -> usize {
        self.entries.len()
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
        self.set(key, value.map(|v| (v, timestamp)))
    }

    fn set(&mut self, key: K, entry: Option<(V, i64)>) -> Option<(V, i64)> {
        if self.disk.is_some() {
            self.load(&key);
            return self.entries.insert(key, entry).flatten();
        }
        match entry {
            Some(entry) => self.entries.insert(key, Some(entry)).flatten(),
            None => self.entries.remove(&key).flatten(),
        }
    }
}

impl<K: Data + Hash + Eq, V: Data> StateStore for KeyValueStore<K, V> {
    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) {
        let Ok(key) = self.key_serde.deserialize(Some(key)) else { return };
        match value.map(|bytes| self.decode(bytes)) {
            Some(Some(entry)) => {
                self.set(key, Some(entry));
            }
            Some(None) => {}
            None => {
                self.set(key, None);
            }
        }
    }

    fn attach(&mut self, file: StoreFile, capacity: usize) -> bool {
        if !self.logged {
            return false;
        }
        self.disk = Some(Disk { file, capacity, failure: OnceLock::new() });
        true
    }

    fn over_capacity(&self) -> bool {
        self.disk.as_ref().is_some_and(|disk| self.entries.len() > disk.capacity.saturating_mul(2))
    }

    fn trim(&mut self) {
        let Some(disk) = &self.disk else { return };
        self.entries.retain(|_, entry| entry.is_some());
        if self.entries.len() > disk.capacity {
            let excess = self.entries.len() - disk.capacity / 2;
            let evicted: Vec<K> = self.entries.keys().take(excess).cloned().collect();
            for key in evicted {
                self.entries.remove(&key);
            }
        }
    }

    fn failure(&self) -> Option<String> {
        self.disk.as_ref()?.failure.get().cloned()
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
    /// stream time, which survives a restart with the store (capped at the
    /// committed stream time; see [`StateStore::resume`]).
    pub(crate) observed: i64,
    /// `observed` when expired windows were last dropped.
    purged_at: i64,
    expired: Expired,
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
                expired: Expired::default(),
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
            let (expired, key_serde) = (&mut self.expired, &self.key_serde);
            self.entries.retain(|w, _| {
                let keep = w.window.start > oldest;
                if !keep {
                    expired.note(|| Some(window_changelog_key(&key_serde.serialize(&w.key)?, w.window.start)));
                }
                keep
            });
            self.purged_at = self.observed;
        }
    }

    /// Sets (or deletes) a key's value in a window, logging the change.
    pub(crate) fn put(&mut self, key: Windowed<K>, value: Option<V>, timestamp: i64, changes: &mut Vec<StoreChange>) {
        if let Some(key_bytes) = self.key_serde.serialize(&key.key) {
            let value = value.as_ref().and_then(|v| self.value_serde.serialize(v));
            changes.push(StoreChange {
                store: self.id,
                key: window_changelog_key(&key_bytes, key.window.start),
                value: with_timestamp(timestamp, value),
                timestamp,
            });
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

    fn resume(&mut self, stream_time: i64) {
        self.observed = self.observed.min(stream_time);
    }

    fn track_expiry(&mut self) {
        self.expired.tracking = true;
    }

    fn take_expired(&mut self, out: &mut Vec<Vec<u8>>) {
        self.expired.take(out);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A session store (Kafka Streams' `SessionStore`): each key's sessions,
/// by start time, with their end and aggregate. Its changelog key is the
/// key, the session's end and its start (8 bytes each, big-endian); its
/// values are not timestamped.
pub struct SessionStore<K, V> {
    id: usize,
    retention_ms: i64,
    sessions: HashMap<K, BTreeMap<i64, (i64, V)>>,
    /// The latest session end put or restored: the aggregation's stream
    /// time (capped after a restore; see [`StateStore::resume`]).
    pub(crate) observed: i64,
    /// `observed` when expired sessions were last dropped.
    purged_at: i64,
    expired: Expired,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
}

impl<K: Data + Hash + Eq, V: Data> SessionStore<K, V> {
    pub(crate) fn maker(id: usize, retention_ms: i64, key_serde: SharedSerde<K>, value_serde: SharedSerde<V>) -> MakeStore {
        Arc::new(move || {
            Box::new(SessionStore {
                id,
                retention_ms,
                sessions: HashMap::new(),
                observed: i64::MIN,
                purged_at: i64::MIN,
                expired: Expired::default(),
                key_serde: key_serde.clone(),
                value_serde: value_serde.clone(),
            })
        })
    }

    /// A key's sessions that end at or after `earliest_end` and start at
    /// or before `latest_start`, oldest first; sessions past the store's
    /// retention (ended `retention_ms` or more before the latest end) are
    /// gone, as in Kafka Streams' session stores.
    pub fn find(&self, key: &K, earliest_end: i64, latest_start: i64) -> Vec<(Window, V)> {
        let Some(sessions) = self.sessions.get(key) else { return Vec::new() };
        let earliest_end = earliest_end.max(self.observed.saturating_sub(self.retention_ms).saturating_add(1));
        sessions
            .range(..=latest_start)
            .filter(|(_, (end, _))| *end >= earliest_end)
            .map(|(start, (end, v))| (Window { start: *start, end: *end }, v.clone()))
            .collect()
    }

    /// A session's aggregate.
    pub fn get(&self, key: &Windowed<K>) -> Option<&V> {
        self.sessions.get(&key.key)?.get(&key.window.start).filter(|(end, _)| *end == key.window.end).map(|(_, v)| v)
    }

    /// Sets (or deletes) a session's aggregate, logging the change.
    pub(crate) fn put(&mut self, key: &Windowed<K>, value: Option<V>, timestamp: i64, changes: &mut Vec<StoreChange>) {
        if let Some(key_bytes) = self.key_serde.serialize(&key.key) {
            let value_bytes = value.as_ref().and_then(|v| self.value_serde.serialize(v));
            changes.push(StoreChange { store: self.id, key: session_changelog_key(&key_bytes, key.window), value: value_bytes, timestamp });
        }
        self.apply(key, value);
        self.purge();
    }

    fn apply(&mut self, key: &Windowed<K>, value: Option<V>) {
        match value {
            Some(value) => {
                self.observed = self.observed.max(key.window.end);
                self.sessions.entry(key.key.clone()).or_default().insert(key.window.start, (key.window.end, value));
            }
            None => {
                if let Some(sessions) = self.sessions.get_mut(&key.key) {
                    sessions.remove(&key.window.start);
                    if sessions.is_empty() {
                        self.sessions.remove(&key.key);
                    }
                }
            }
        }
    }

    /// Forgets, once per retention, the sessions past it. Only puts purge:
    /// a restore keeps every session until the stream time is resumed.
    fn purge(&mut self) {
        if self.observed >= self.purged_at.saturating_add(self.retention_ms) {
            let oldest = self.observed.saturating_sub(self.retention_ms);
            let (expired, key_serde) = (&mut self.expired, &self.key_serde);
            self.sessions.retain(|key, sessions| {
                sessions.retain(|start, (end, _)| {
                    let keep = *end > oldest;
                    if !keep {
                        expired.note(|| Some(session_changelog_key(&key_serde.serialize(key)?, Window { start: *start, end: *end })));
                    }
                    keep
                });
                !sessions.is_empty()
            });
            self.purged_at = self.observed;
        }
    }
}

impl<K: Data + Hash + Eq, V: Data> StateStore for SessionStore<K, V> {
    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) {
        let Some(split) = key.len().checked_sub(16) else { return };
        let end = i64::from_be_bytes(key[split..split + 8].try_into().expect("8 bytes"));
        let start = i64::from_be_bytes(key[split + 8..].try_into().expect("8 bytes"));
        let Ok(inner) = self.key_serde.deserialize(Some(&key[..split])) else { return };
        let windowed = Windowed { key: inner, window: Window { start, end } };
        let value = value.and_then(|bytes| self.value_serde.deserialize(Some(bytes)).ok());
        self.apply(&windowed, value);
    }

    fn resume(&mut self, stream_time: i64) {
        self.observed = self.observed.min(stream_time);
    }

    fn track_expiry(&mut self) {
        self.expired.tracking = true;
    }

    fn take_expired(&mut self, out: &mut Vec<Vec<u8>>) {
        self.expired.take(out);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A suppression buffer (Kafka Streams' time-ordered buffer): the latest
/// update of each windowed key not yet emitted, in the order it is due —
/// by window end, then by the key's bytes. Its changelog holds each
/// buffered update (a flag byte, 1 for a value and 0 for a deletion, the
/// update's timestamp in 8 bytes big-endian, then the value) and a
/// tombstone once it is emitted.
pub struct SuppressBuffer<K, V> {
    id: usize,
    due: BTreeMap<(i64, Vec<u8>), Released<K, V>>,
    /// Where each buffered key sits in `due`.
    index: HashMap<Vec<u8>, i64>,
    /// The largest timestamp that reached the buffer.
    pub(crate) observed: i64,
    key_serde: SharedSerde<Windowed<K>>,
    value_serde: SharedSerde<V>,
}

/// An update the buffer releases: key, value (`None`: a deletion) and the
/// update's timestamp.
pub(crate) type Released<K, V> = (Windowed<K>, Option<V>, i64);

impl<K: Data + Hash + Eq, V: Data> SuppressBuffer<K, V> {
    pub(crate) fn maker(id: usize, key_serde: SharedSerde<Windowed<K>>, value_serde: SharedSerde<V>) -> MakeStore {
        Arc::new(move || {
            Box::new(SuppressBuffer {
                id,
                due: BTreeMap::new(),
                index: HashMap::new(),
                observed: i64::MIN,
                key_serde: key_serde.clone(),
                value_serde: value_serde.clone(),
            })
        })
    }

    /// Keeps `value` as the key's pending update, replacing any before it.
    pub(crate) fn put(&mut self, key: Windowed<K>, value: Option<V>, timestamp: i64, changes: &mut Vec<StoreChange>) {
        self.observed = self.observed.max(timestamp);
        let Some(key_bytes) = self.key_serde.serialize(&key) else { return };
        let mut logged = vec![u8::from(value.is_some())];
        logged.extend_from_slice(&timestamp.to_be_bytes());
        logged.extend(value.as_ref().and_then(|v| self.value_serde.serialize(v)).unwrap_or_default());
        changes.push(StoreChange { store: self.id, key: key_bytes.clone(), value: Some(logged), timestamp });
        self.insert(key_bytes, key, value, timestamp);
    }

    fn insert(&mut self, key_bytes: Vec<u8>, key: Windowed<K>, value: Option<V>, timestamp: i64) {
        let due = key.window.end;
        if let Some(previous) = self.index.insert(key_bytes.clone(), due) {
            self.due.remove(&(previous, key_bytes.clone()));
        }
        self.due.insert((due, key_bytes), (key, value, timestamp));
    }

    /// Removes and returns, in order, every update whose window ended at
    /// or before `closed_by`, logging their removal.
    pub(crate) fn release(&mut self, closed_by: i64, changes: &mut Vec<StoreChange>) -> Vec<Released<K, V>> {
        let mut released = Vec::new();
        while let Some(entry) = self.due.first_entry() {
            if entry.key().0 > closed_by {
                break;
            }
            let ((_, key_bytes), update) = entry.remove_entry();
            self.index.remove(&key_bytes);
            changes.push(StoreChange { store: self.id, key: key_bytes, value: None, timestamp: update.2 });
            released.push(update);
        }
        released
    }
}

impl<K: Data + Hash + Eq, V: Data> StateStore for SuppressBuffer<K, V> {
    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) {
        let Ok(windowed) = self.key_serde.deserialize(Some(key)) else { return };
        match value {
            Some([flag, rest @ ..]) if rest.len() >= 8 => {
                let timestamp = i64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
                let update = if *flag == 1 { self.value_serde.deserialize(Some(&rest[8..])).ok() } else { None };
                self.observed = self.observed.max(timestamp);
                self.insert(key.to_vec(), windowed, update, timestamp);
            }
            _ => {
                if let Some(due) = self.index.remove(key) {
                    self.due.remove(&(due, key.to_vec()));
                }
            }
        }
    }

    fn resume(&mut self, stream_time: i64) {
        self.observed = self.observed.min(stream_time);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// One side of a stream–stream join (Kafka Streams' window store with
/// duplicates retained): each key's records, kept while their timestamp is
/// within the retention (the join window's reach plus grace) of the newest
/// timestamp seen. Its changelog key is the key, the record's timestamp
/// and a sequence number, its value the record's value; records that fall
/// out of retention leave no tombstone (the changelog is deleted by time).
pub struct JoinWindowStore<K, V> {
    id: usize,
    retention_ms: i64,
    /// Each key's records: timestamp, value and changelog sequence number.
    records: HashMap<K, Vec<(i64, V, u32)>>,
    /// The newest timestamp put or restored.
    observed: i64,
    /// Tells apart records of one key and timestamp in the changelog; goes
    /// on from the highest restored, so a restart reuses no key that a
    /// checkpoint still holds.
    sequence: u32,
    expired: Expired,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
}

impl<K: Data + Hash + Eq, V: Data> JoinWindowStore<K, V> {
    pub(crate) fn maker(id: usize, retention_ms: i64, key_serde: SharedSerde<K>, value_serde: SharedSerde<V>) -> MakeStore {
        Arc::new(move || {
            Box::new(JoinWindowStore {
                id,
                retention_ms,
                records: HashMap::new(),
                observed: i64::MIN,
                sequence: 0,
                expired: Expired::default(),
                key_serde: key_serde.clone(),
                value_serde: value_serde.clone(),
            })
        })
    }

    /// Keeps a record, logging it, unless it is already out of retention;
    /// then it is dropped (and still joins what the other side holds).
    pub(crate) fn put(&mut self, key: K, timestamp: i64, value: V, changes: &mut Vec<StoreChange>) -> bool {
        self.observed = self.observed.max(timestamp);
        if timestamp <= self.observed.saturating_sub(self.retention_ms) {
            return false;
        }
        self.sequence = self.sequence.wrapping_add(1);
        if let Some(key_bytes) = self.key_serde.serialize(&key) {
            changes.push(StoreChange {
                store: self.id,
                key: join_changelog_key(&key_bytes, timestamp, self.sequence),
                value: self.value_serde.serialize(&value),
                timestamp,
            });
        }
        self.records.entry(key).or_default().push((timestamp, value, self.sequence));
        if self.records.len() > 1 && timestamp == self.observed {
            let oldest = self.observed.saturating_sub(self.retention_ms);
            let (expired, key_serde) = (&mut self.expired, &self.key_serde);
            self.records.retain(|key, kept| {
                kept.retain(|(t, _, sequence)| {
                    let keep = *t > oldest;
                    if !keep {
                        expired.note(|| Some(join_changelog_key(&key_serde.serialize(key)?, *t, *sequence)));
                    }
                    keep
                });
                !kept.is_empty()
            });
        }
        true
    }

    /// A key's records from `from` to `to` (inclusive) still in retention,
    /// oldest first; records with equal timestamps in the order put.
    pub fn fetch(&self, key: &K, from: i64, to: i64) -> Vec<(i64, &V)> {
        let from = from.max(self.observed.saturating_sub(self.retention_ms).saturating_add(1));
        let mut found: Vec<(i64, &V)> =
            self.records.get(key).map(|r| r.iter().filter(|(t, _, _)| from <= *t && *t <= to).map(|(t, v, _)| (*t, v)).collect()).unwrap_or_default();
        found.sort_by_key(|(t, _)| *t);
        found
    }
}

/// A join-window store's changelog key: the key, the record's timestamp
/// and its sequence number.
fn join_changelog_key(key: &[u8], timestamp: i64, sequence: u32) -> Vec<u8> {
    [key, &timestamp.to_be_bytes(), &sequence.to_be_bytes()].concat()
}

impl<K: Data + Hash + Eq, V: Data> StateStore for JoinWindowStore<K, V> {
    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) {
        let Some(split) = key.len().checked_sub(12) else { return };
        let timestamp = i64::from_be_bytes(key[split..split + 8].try_into().expect("8 bytes"));
        let sequence = u32::from_be_bytes(key[split + 8..].try_into().expect("4 bytes"));
        let (Ok(inner), Some(Ok(value))) = (self.key_serde.deserialize(Some(&key[..split])), value.map(|v| self.value_serde.deserialize(Some(v)))) else {
            return;
        };
        // Kept whatever its age: only puts purge, once the stream time is
        // resumed (see `StateStore::resume`); fetches skip what expired.
        self.observed = self.observed.max(timestamp);
        self.sequence = self.sequence.max(sequence);
        self.records.entry(inner).or_default().push((timestamp, value, sequence));
    }

    fn resume(&mut self, stream_time: i64) {
        self.observed = self.observed.min(stream_time);
    }

    fn track_expiry(&mut self) {
        self.expired.tracking = true;
    }

    fn take_expired(&mut self, out: &mut Vec<Vec<u8>>) {
        self.expired.take(out);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A record of one side of a stream–stream join.
pub(crate) enum JoinSide<V, V2> {
    Left(V),
    Right(V2),
}

/// Where a left or outer stream–stream join keeps records that found no
/// partner until their window closes (Kafka Streams' shared outer-join
/// store, `KSTREAM-OUTERSHARED-<n>-store`): by timestamp, then side (right
/// before left), then key bytes, with every record of that timestamp,
/// side and key in arrival order. Its changelog key is the timestamp (8
/// bytes, big-endian), a side byte (1 for left) and the key; its value
/// the whole list, as Kafka's list serde writes it (a strategy byte of 1,
/// the count, then each entry's length and bytes: a side byte and the
/// value); a tombstone once the list is emitted or matched.
pub struct OuterJoinBuffer<K, V, V2> {
    id: usize,
    waiting: BTreeMap<WaitingAt, (K, Vec<JoinSide<V, V2>>)>,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
    other_value_serde: SharedSerde<V2>,
}

/// Where records wait in an [`OuterJoinBuffer`]: their timestamp, whether
/// they are the left side's, and their key's bytes.
pub(crate) type WaitingAt = (i64, bool, Vec<u8>);

/// Records of one timestamp, side and key taken from the buffer.
pub(crate) type Waiting<K, V, V2> = (WaitingAt, (K, Vec<JoinSide<V, V2>>));

impl<K: Data + Hash + Eq, V: Data, V2: Data> OuterJoinBuffer<K, V, V2> {
    pub(crate) fn maker(id: usize, key_serde: SharedSerde<K>, value_serde: SharedSerde<V>, other_value_serde: SharedSerde<V2>) -> MakeStore {
        Arc::new(move || {
            Box::new(OuterJoinBuffer {
                id,
                waiting: BTreeMap::new(),
                key_serde: key_serde.clone(),
                value_serde: value_serde.clone(),
                other_value_serde: other_value_serde.clone(),
            })
        })
    }

    fn changelog_key((timestamp, left, key): &WaitingAt) -> Vec<u8> {
        [&timestamp.to_be_bytes()[..], &[u8::from(*left)], key].concat()
    }

    fn log(&self, position: &WaitingAt, timestamp: i64, changes: &mut Vec<StoreChange>) {
        let value = self.waiting.get(position).map(|(_, records)| {
            let entries: Vec<Vec<u8>> = records
                .iter()
                .filter_map(|record| match record {
                    JoinSide::Left(v) => Some([&[1u8][..], &self.value_serde.serialize(v)?].concat()),
                    JoinSide::Right(v2) => Some([&[0u8][..], &self.other_value_serde.serialize(v2)?].concat()),
                })
                .collect();
            let mut list = vec![1u8];
            list.extend_from_slice(&(entries.len() as i32).to_be_bytes());
            for entry in entries {
                list.extend_from_slice(&(entry.len() as i32).to_be_bytes());
                list.extend(entry);
            }
            list
        });
        changes.push(StoreChange { store: self.id, key: Self::changelog_key(position), value, timestamp });
    }

    /// Adds a record to wait for a partner, logging its list.
    pub(crate) fn push(&mut self, key: &K, key_bytes: Vec<u8>, timestamp: i64, record: JoinSide<V, V2>, changes: &mut Vec<StoreChange>) {
        let position = (timestamp, matches!(record, JoinSide::Left(_)), key_bytes);
        self.waiting.entry(position.clone()).or_insert_with(|| (key.clone(), Vec::new())).1.push(record);
        self.log(&position, timestamp, changes);
    }

    /// Forgets the records waiting at `position`: a partner arrived.
    pub(crate) fn matched(&mut self, position: WaitingAt, timestamp: i64, changes: &mut Vec<StoreChange>) {
        if self.waiting.remove(&position).is_some() {
            self.log(&position, timestamp, changes);
        }
    }

    /// Takes out, in order, the records whose windows have closed by
    /// `stream_time`: a record closes `closes_after(left)` after its
    /// timestamp. The scan stops once both sides have met an open record,
    /// as Kafka Streams' `emitNonJoinedOuterRecords` does.
    pub(crate) fn take_closed(&mut self, stream_time: i64, closes_after: impl Fn(bool) -> i64, changes: &mut Vec<StoreChange>) -> Vec<Waiting<K, V, V2>> {
        let (mut left_open, mut right_open) = (false, false);
        let mut closed = Vec::new();
        for (timestamp, left, key_bytes) in self.waiting.keys() {
            if left_open && right_open {
                break;
            }
            if timestamp + closes_after(*left) >= stream_time {
                if *left {
                    left_open = true;
                } else {
                    right_open = true;
                }
                continue;
            }
            closed.push((*timestamp, *left, key_bytes.clone()));
        }
        closed
            .into_iter()
            .filter_map(|position| {
                let records = self.waiting.remove(&position)?;
                self.log(&position, position.0, changes);
                Some((position, records))
            })
            .collect()
    }

    /// Parses a changelog list value into records.
    fn parse(&self, bytes: &[u8]) -> Option<Vec<JoinSide<V, V2>>> {
        let (_, rest) = bytes.split_first()?;
        let (count, mut rest) = rest.split_first_chunk::<4>()?;
        let mut records = Vec::new();
        for _ in 0..i32::from_be_bytes(*count).max(0) {
            let (length, tail) = rest.split_first_chunk::<4>()?;
            let length = usize::try_from(i32::from_be_bytes(*length)).ok()?;
            let (entry, tail) = (tail.get(..length)?, tail.get(length..)?);
            rest = tail;
            let (side, value) = entry.split_first()?;
            records.push(if *side == 1 {
                JoinSide::Left(self.value_serde.deserialize(Some(value)).ok()?)
            } else {
                JoinSide::Right(self.other_value_serde.deserialize(Some(value)).ok()?)
            });
        }
        Some(records)
    }
}

impl<K: Data + Hash + Eq, V: Data, V2: Data> StateStore for OuterJoinBuffer<K, V, V2> {
    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) {
        let Some((timestamp, rest)) = key.split_first_chunk::<8>() else { return };
        let Some((side, key_bytes)) = rest.split_first() else { return };
        let position = (i64::from_be_bytes(*timestamp), *side == 1, key_bytes.to_vec());
        match value.and_then(|bytes| self.parse(bytes)) {
            Some(records) => {
                let Ok(key) = self.key_serde.deserialize(Some(key_bytes)) else { return };
                self.waiting.insert(position, (key, records));
            }
            None => {
                self.waiting.remove(&position);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::serde::{I64Serde, StringSerde};

    /// A logged count store with its file in a checkpoint, caching
    /// `capacity` keys.
    fn on_disk(dir: &std::path::Path, capacity: usize) -> (KeyValueStore<String, i64>, Checkpoint) {
        let checkpoint = Checkpoint::open(dir, "app", 0).unwrap();
        let mut store = KeyValueStore::<String, i64>::maker(0, Arc::new(StringSerde), Arc::new(I64Serde))();
        assert!(store.attach(checkpoint.store_file("counts"), capacity));
        let store = *(store as Box<dyn Any>).downcast::<KeyValueStore<String, i64>>().unwrap();
        (store, checkpoint)
    }

    /// Puts `value` for `key` and notes the change for the checkpoint, as
    /// the runtime does with what a task emits.
    fn put(store: &mut KeyValueStore<String, i64>, checkpoint: &mut Checkpoint, key: &str, value: Option<i64>, timestamp: i64) {
        let mut changes = Vec::new();
        store.put(key.to_string(), value, timestamp, &mut changes);
        for change in changes {
            checkpoint.record("counts", &change.key, change.value.as_deref());
        }
    }

    #[test]
    fn a_store_larger_than_its_cache_keeps_the_rest_in_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, mut checkpoint) = on_disk(dir.path(), 10);
        for i in 0..1_000 {
            put(&mut store, &mut checkpoint, &format!("k{i}"), Some(i), i);
        }
        // Nothing is saved yet, so nothing may leave memory.
        assert_eq!(store.cached(), 1_000);
        assert!(store.over_capacity());
        checkpoint.save(&[]).unwrap();
        store.trim();
        assert!(store.cached() <= 10, "{} keys cached", store.cached());
        assert!(!store.over_capacity());
        for i in (0..1_000).step_by(7) {
            assert_eq!(store.get(&format!("k{i}")), Some((i, i)));
        }
        assert_eq!(store.get(&"missing".to_string()), None);
        assert_eq!(store.len(), 1_000);

        // An update reads the old value from the file; a deletion hides
        // the file's value until the next save removes it there too.
        assert_eq!(store.load(&"k500".to_string()), Some(&(500, 500)));
        put(&mut store, &mut checkpoint, "k500", Some(501), 2_000);
        put(&mut store, &mut checkpoint, "k7", None, 2_001);
        assert_eq!(store.get(&"k7".to_string()), None);
        assert_eq!(store.len(), 999);
        checkpoint.save(&[]).unwrap();
        store.trim();
        assert_eq!(store.get(&"k7".to_string()), None);
        assert_eq!(store.get(&"k500".to_string()), Some((501, 2_000)));
        let all: BTreeMap<String, i64> = store.all().into_iter().map(|(k, v, _)| (k, v)).collect();
        assert_eq!(all.len(), 999);
        assert_eq!(all["k999"], 999);
    }

    #[test]
    fn restored_changes_mask_the_file_until_they_are_saved() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, mut checkpoint) = on_disk(dir.path(), 2);
        put(&mut store, &mut checkpoint, "a", Some(1), 1);
        put(&mut store, &mut checkpoint, "b", Some(2), 2);
        checkpoint.save(&[]).unwrap();
        drop((store, checkpoint));
        // A restart reads a changelog tail that deletes `a`: the file
        // still has it, the store must not.
        let (mut store, _checkpoint) = on_disk(dir.path(), 2);
        store.restore(b"a", None);
        assert_eq!(store.get(&"a".to_string()), None);
        assert_eq!(store.get(&"b".to_string()), Some((2, 2)));
        assert_eq!(store.len(), 1);
    }

    /// Restores `changes` into a fresh store made by `make`.
    fn restored<S: StateStore>(make: MakeStore, changes: &[StoreChange]) -> S {
        let mut store = make();
        for change in changes {
            store.restore(&change.key, change.value.as_deref());
        }
        *(store as Box<dyn Any>).downcast::<S>().unwrap()
    }

    /// The keys a store noted as dropped by retention.
    fn expired(store: &mut dyn StateStore) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        store.take_expired(&mut keys);
        keys.sort();
        keys
    }

    #[test]
    fn time_bounded_stores_name_what_they_drop_so_the_checkpoint_drops_it_too() {
        let window = |start| Windowed { key: "132".to_string(), window: Window { start, end: start + 10_000 } };
        for tracked in [false, true] {
            let make = WindowStore::<String, i64>::maker(0, 10_000, 15_000, Arc::new(StringSerde), Arc::new(I64Serde));
            let mut store = *(make() as Box<dyn Any>).downcast::<WindowStore<String, i64>>().unwrap();
            if tracked {
                store.track_expiry();
            }
            let mut changes = Vec::new();
            for start in [0, 10_000, 30_000] {
                store.observe(start);
                store.put(window(start), Some(1), start, &mut changes);
            }
            store.observe(40_000);
            let dropped = if tracked { vec![changes[0].key.clone(), changes[1].key.clone()] } else { Vec::new() };
            assert_eq!(expired(&mut store), dropped, "tracked: {tracked}");
            assert_eq!(store.get(&window(30_000)).map(|(count, _)| *count), Some(1));
        }

        let make = SessionStore::<String, i64>::maker(0, 5_000, Arc::new(StringSerde), Arc::new(I64Serde));
        let mut store = *(make() as Box<dyn Any>).downcast::<SessionStore<String, i64>>().unwrap();
        store.track_expiry();
        let mut changes = Vec::new();
        store.put(&Windowed { key: "132".to_string(), window: Window { start: 1_000, end: 2_000 } }, Some(2), 2_000, &mut changes);
        store.put(&Windowed { key: "7".to_string(), window: Window { start: 9_000, end: 9_000 } }, Some(1), 9_000, &mut changes);
        assert_eq!(expired(&mut store), [changes[0].key.clone()]);

        let make = JoinWindowStore::<String, i64>::maker(0, 5_000, Arc::new(StringSerde), Arc::new(I64Serde));
        let mut store = *(make() as Box<dyn Any>).downcast::<JoinWindowStore<String, i64>>().unwrap();
        store.track_expiry();
        let mut changes = Vec::new();
        store.put("132".to_string(), 1_000, 7, &mut changes);
        store.put("7".to_string(), 9_000, 8, &mut changes);
        assert_eq!(expired(&mut store), [changes[0].key.clone()]);
        // A restored store numbers on from the highest sequence it read, so
        // its new records never reuse a key the checkpoint still holds.
        let mut restored: JoinWindowStore<String, i64> = restored(make, &changes);
        let mut more = Vec::new();
        restored.put("7".to_string(), 9_000, 9, &mut more);
        assert!(changes.iter().all(|change| change.key != more[0].key));
    }

    #[test]
    fn a_store_restored_ahead_of_the_committed_stream_time_keeps_what_reprocessing_needs() {
        // Windows of 10 s kept 15 s; the changelog ran to 100 s but the
        // input was committed at 20 s, so the records from there on are
        // processed again and must find the [20 s, 30 s) window.
        let make = WindowStore::<String, i64>::maker(0, 10_000, 15_000, Arc::new(StringSerde), Arc::new(I64Serde));
        let window = |start| Windowed { key: "132".to_string(), window: Window { start, end: start + 10_000 } };
        let mut original = *(make() as Box<dyn Any>).downcast::<WindowStore<String, i64>>().unwrap();
        let mut changes = Vec::new();
        original.put(window(20_000), Some(1), 20_000, &mut changes);
        original.put(window(100_000), Some(1), 100_000, &mut changes);
        let mut store: WindowStore<String, i64> = restored(make, &changes);
        assert_eq!(store.observed, 100_000);
        store.resume(20_500);
        store.observe(20_500);
        assert_eq!(store.get(&window(20_000)).map(|(count, _)| *count), Some(1));
        store.observe(100_000);
        assert_eq!(store.get(&window(20_000)), None, "expired once the stream time gets there again");

        // Sessions and join sides alike.
        let make = SessionStore::<String, i64>::maker(0, 5_000, Arc::new(StringSerde), Arc::new(I64Serde));
        let session = |start, end| Windowed { key: "132".to_string(), window: Window { start, end } };
        let mut original = *(make() as Box<dyn Any>).downcast::<SessionStore<String, i64>>().unwrap();
        let mut changes = Vec::new();
        original.put(&session(20_000, 21_000), Some(2), 21_000, &mut changes);
        original.put(&session(100_000, 100_000), Some(1), 100_000, &mut changes);
        let mut store: SessionStore<String, i64> = restored(make, &changes);
        store.resume(21_000);
        assert_eq!(store.find(&"132".to_string(), 20_000, 22_000).len(), 1);

        let make = JoinWindowStore::<String, i64>::maker(0, 5_000, Arc::new(StringSerde), Arc::new(I64Serde));
        let mut original = *(make() as Box<dyn Any>).downcast::<JoinWindowStore<String, i64>>().unwrap();
        let mut changes = Vec::new();
        original.put("132".to_string(), 20_000, 7, &mut changes);
        original.put("132".to_string(), 100_000, 8, &mut changes);
        let mut store: JoinWindowStore<String, i64> = restored(make, &changes);
        store.resume(20_000);
        assert_eq!(store.fetch(&"132".to_string(), 19_000, 21_000), [(20_000, &7)]);
    }
}
