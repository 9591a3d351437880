//! The test driver: runs a topology in memory, deterministically, with no
//! broker, as Kafka Streams' `TopologyTestDriver`. Records piped into an
//! input topic are serialized with the topic's serdes, processed to
//! completion (through any topic the topology both writes and reads), and
//! what sinks write is kept per topic until read. Store changes are kept
//! as their changelogs would hold them, so a test can restart the
//! application and see its state restored.

use std::collections::{HashMap, VecDeque};

use std::hash::Hash;

use crate::processor::PunctuationType;
use crate::serde::{Serde, SerdeError};
use crate::store::{KeyValueStore, Stores, WindowStore};
use crate::task::{Emitted, Input, OnUndecodable, Scope, Task};
use crate::topology::{Data, Topology};

/// A record as a test reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord<K, V> {
    /// The record's key.
    pub key: K,
    /// The record's value.
    pub value: V,
    /// The record's timestamp, in milliseconds.
    pub timestamp: i64,
    /// Headers, which runnel-streams writes on dead letters only.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// A record of an output topic, decoded with its serdes.
pub type TopicRecord<KS, VS> = TestRecord<<KS as Serde>::Value, <VS as Serde>::Value>;

/// An input topic with the serdes records are written in.
pub struct InputTopic<KS, VS> {
    name: String,
    key_serde: KS,
    value_serde: VS,
}

/// An output topic with the serdes records are read with.
pub struct OutputTopic<KS, VS> {
    name: String,
    key_serde: KS,
    value_serde: VS,
}

/// A key and value (`None` deletes) as a store's changelog holds them.
type ChangelogRecord = (Vec<u8>, Option<Vec<u8>>);

/// Bytes a sink wrote.
struct Written {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: i64,
    headers: Vec<(String, Vec<u8>)>,
}

/// Runs a [`Topology`] as one task, in memory.
pub struct TopologyTestDriver {
    topology: Topology,
    task: Task,
    written: HashMap<String, VecDeque<Written>>,
    /// What each store's changelog would hold, in order.
    changelogs: HashMap<String, Vec<ChangelogRecord>>,
    /// The driver's wall clock, in milliseconds: 0 until advanced.
    wall_clock: i64,
    /// The global tables' stores.
    globals: Stores,
    on_undecodable: OnUndecodable,
    /// The next offset of each input topic's one partition.
    offsets: HashMap<String, i64>,
}

/// A record's headers: a key may repeat, a value may be null.
type Headers = Vec<(String, Option<Vec<u8>>)>;

/// A record on its way into the topology.
type Pending = VecDeque<(String, Option<Vec<u8>>, Option<Vec<u8>>, i64, Headers)>;

impl TopologyTestDriver {
    /// A driver running `topology` as one task, its wall clock at 0.
    pub fn new(topology: Topology) -> TopologyTestDriver {
        let task = Task::new(&topology, 0);
        let globals = topology.new_stores();
        TopologyTestDriver {
            topology,
            task,
            written: HashMap::new(),
            changelogs: HashMap::new(),
            wall_clock: 0,
            globals,
            on_undecodable: OnUndecodable::default(),
            offsets: HashMap::new(),
        }
    }

    /// The same driver, handling undecodable input records with `handler`
    /// (by default they are logged, counted and skipped).
    pub fn on_undecodable(self, handler: OnUndecodable) -> TopologyTestDriver {
        TopologyTestDriver { on_undecodable: handler, ..self }
    }

    /// An input topic to pipe records into, written with these serdes.
    pub fn input_topic<KS: Serde, VS: Serde>(&self, name: &str, key_serde: KS, value_serde: VS) -> InputTopic<KS, VS> {
        InputTopic { name: name.to_string(), key_serde, value_serde }
    }

    /// An output topic to read records from, read with these serdes.
    pub fn output_topic<KS: Serde, VS: Serde>(&self, name: &str, key_serde: KS, value_serde: VS) -> OutputTopic<KS, VS> {
        OutputTopic { name: name.to_string(), key_serde, value_serde }
    }

    /// Writes one record to an input topic and processes it completely.
    pub fn pipe<KS: Serde, VS: Serde>(&mut self, topic: &InputTopic<KS, VS>, key: &KS::Value, value: &VS::Value, timestamp: i64) {
        let key = topic.key_serde.serialize(key);
        let value = topic.value_serde.serialize(value);
        self.pipe_bytes(&topic.name, key, value, timestamp);
    }

    /// Writes one record, as bytes, to a topic and processes it
    /// completely, including through topics the topology both writes and
    /// reads.
    ///
    /// # Panics
    /// If the record cannot be deserialized and the driver was told to
    /// fail on such records ([`OnUndecodable::LogAndFail`]), as Kafka
    /// Streams' test driver throws.
    pub fn pipe_bytes(&mut self, topic: &str, key: Option<Vec<u8>>, value: Option<Vec<u8>>, timestamp: i64) {
        self.pipe_bytes_with_headers(topic, key, value, Vec::new(), timestamp);
    }

    /// [`TopologyTestDriver::pipe_bytes`], for a record with headers.
    pub fn pipe_bytes_with_headers(&mut self, topic: &str, key: Option<Vec<u8>>, value: Option<Vec<u8>>, headers: Headers, timestamp: i64) {
        self.drain(VecDeque::from([(topic.to_string(), key, value, timestamp, headers)]));
    }

    /// Moves the wall clock forward by `ms`, running the wall-clock
    /// punctuations that become due.
    pub fn advance_wall_clock(&mut self, ms: i64) {
        self.wall_clock += ms.max(0);
        let mut emitted = Vec::new();
        let scope = Scope { topology: &self.topology, globals: &self.globals, on_undecodable: &self.on_undecodable };
        self.task.punctuate(&scope, PunctuationType::WallClockTime, self.wall_clock, &mut emitted);
        let mut pending = VecDeque::new();
        self.collect(emitted, &mut pending);
        self.drain(pending);
    }

    /// Processes records until none is left, including those the
    /// topology writes to topics it reads.
    fn drain(&mut self, mut pending: Pending) {
        while let Some((topic, key, value, timestamp, headers)) = pending.pop_front() {
            if let Some(global) = self.topology.global(&topic) {
                if (global.apply)(&mut self.globals, key.as_deref(), value.as_deref(), timestamp).is_err() {
                    self.task.skipped += 1;
                }
                continue;
            }
            let mut emitted = Vec::new();
            let scope = Scope { topology: &self.topology, globals: &self.globals, on_undecodable: &self.on_undecodable };
            let offset = self.offsets.entry(topic.clone()).or_insert(0);
            *offset += 1;
            let headers = headers.iter().fold(rdkafka::message::OwnedHeaders::new_with_capacity(headers.len()), |all, (name, value)| {
                all.insert(rdkafka::message::Header { key: name, value: value.as_deref() })
            });
            let input =
                Input { topic: &topic, partition: 0, offset: *offset - 1, key: key.as_deref(), value: value.as_deref(), timestamp, headers: Some(&headers) };
            if let Err(undecodable) = self.task.process(&scope, &input, &mut emitted) {
                panic!("{undecodable}");
            }
            self.collect(emitted, &mut pending);
        }
    }

    /// Keeps what sinks wrote and stores changed; records for topics the
    /// topology reads become `pending`.
    fn collect(&mut self, emitted: Vec<Emitted>, pending: &mut Pending) {
        for out in emitted {
            match out {
                Emitted::Record { topic, key, value, timestamp, headers } => {
                    if self.topology.reads(&topic) {
                        let read_back = headers.iter().map(|(name, value)| (name.clone(), Some(value.clone()))).collect();
                        pending.push_back((topic.to_string(), key.clone(), value.clone(), timestamp, read_back));
                    }
                    self.written.entry(topic.to_string()).or_default().push_back(Written { key, value, timestamp, headers });
                }
                Emitted::Change { store, change } => self.changelogs.entry(store.to_string()).or_default().push((change.key, change.value)),
            }
        }
    }

    /// A new driver for the same topology whose stores are rebuilt from
    /// this one's changelogs, as a restarted application restores them.
    pub fn restarted(self, topology: Topology) -> TopologyTestDriver {
        let mut task = Task::new(&topology, self.wall_clock);
        for (store, changes) in &self.changelogs {
            for (key, value) in changes {
                task.restore(&topology, store, key, value.as_deref());
            }
        }
        // The global tables are read again from their topics; the driver
        // keeps what it had read.
        TopologyTestDriver { topology, task, written: HashMap::new(), changelogs: self.changelogs, ..self }
    }

    /// Every record written to `topic` since the last read, decoded.
    pub fn read<KS: Serde, VS: Serde>(&mut self, topic: &OutputTopic<KS, VS>) -> Result<Vec<TopicRecord<KS, VS>>, SerdeError> {
        let written = self.written.remove(&topic.name).unwrap_or_default();
        written
            .into_iter()
            .map(|w| {
                Ok(TestRecord {
                    key: topic.key_serde.deserialize(w.key.as_deref())?,
                    value: topic.value_serde.deserialize(w.value.as_deref())?,
                    timestamp: w.timestamp,
                    headers: w.headers,
                })
            })
            .collect()
    }

    /// The key-value store `name` (an aggregation's, or a materialized
    /// table's), to inspect; `None` if there is no such store of these
    /// types.
    pub fn key_value_store<K: Data + Hash + Eq, V: Data>(&self, name: &str) -> Option<&KeyValueStore<K, V>> {
        let id = self.topology.stores.iter().position(|s| *s.name == *name)?;
        self.task.stores.0[id].as_any().downcast_ref()
    }

    /// The store of the global table `name`, to inspect.
    pub fn global_store<K: Data + Hash + Eq, V: Data>(&self, name: &str) -> Option<&KeyValueStore<K, V>> {
        let id = self.topology.stores.iter().position(|s| *s.name == *name && s.global)?;
        self.globals.0[id].as_any().downcast_ref()
    }

    /// The window store `name` (a windowed aggregation's), to inspect.
    pub fn window_store<K: Data + Hash + Eq, V: Data>(&self, name: &str) -> Option<&WindowStore<K, V>> {
        let id = self.topology.stores.iter().position(|s| *s.name == *name)?;
        self.task.stores.0[id].as_any().downcast_ref()
    }

    /// Records window aggregations dropped for arriving after their
    /// windows closed (Kafka Streams' `dropped-records` metric).
    pub fn dropped_late_records(&self) -> u64 {
        self.task.dropped_late
    }

    /// Input records that could not be deserialized and were skipped.
    pub fn skipped_records(&self) -> u64 {
        self.task.skipped
    }
}
