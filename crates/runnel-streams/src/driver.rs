//! The test driver: runs a topology in memory, deterministically, with no
//! broker, as Kafka Streams' `TopologyTestDriver`. Records piped into an
//! input topic are serialized with the topic's serdes, processed to
//! completion (through any topic the topology both writes and reads), and
//! what sinks write is kept per topic until read.

use std::collections::{HashMap, VecDeque};

use crate::serde::{Serde, SerdeError};
use crate::topology::{Item, Node, NodeContext, NodeKind, Topology};

/// A record as a test reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord<K, V> {
    pub key: K,
    pub value: V,
    pub timestamp: i64,
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

/// Bytes a sink wrote.
struct Written {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: i64,
}

/// Runs a [`Topology`] as one task, in memory.
pub struct TopologyTestDriver {
    topology: Topology,
    nodes: Vec<Option<Box<dyn Node>>>,
    written: HashMap<String, VecDeque<Written>>,
    dropped_late: u64,
    skipped: u64,
}

impl TopologyTestDriver {
    pub fn new(topology: Topology) -> TopologyTestDriver {
        let nodes = topology
            .nodes
            .iter()
            .map(|n| match &n.kind {
                NodeKind::Processor { make, .. } => Some(make()),
                _ => None,
            })
            .collect();
        TopologyTestDriver { topology, nodes, written: HashMap::new(), dropped_late: 0, skipped: 0 }
    }

    pub fn input_topic<KS: Serde, VS: Serde>(&self, name: &str, key_serde: KS, value_serde: VS) -> InputTopic<KS, VS> {
        InputTopic { name: name.to_string(), key_serde, value_serde }
    }

    pub fn output_topic<KS: Serde, VS: Serde>(&self, name: &str, key_serde: KS, value_serde: VS) -> OutputTopic<KS, VS> {
        OutputTopic { name: name.to_string(), key_serde, value_serde }
    }

    /// Writes one record to an input topic and processes it completely.
    pub fn pipe<KS: Serde, VS: Serde>(&mut self, topic: &InputTopic<KS, VS>, key: &KS::Value, value: &VS::Value, timestamp: i64) {
        let key = topic.key_serde.serialize(key);
        let value = topic.value_serde.serialize(value);
        self.pipe_bytes(&topic.name, key, value, timestamp);
    }

    /// Writes one record, as bytes, to a topic and processes it completely.
    pub fn pipe_bytes(&mut self, topic: &str, key: Option<Vec<u8>>, value: Option<Vec<u8>>, timestamp: i64) {
        let mut pending = VecDeque::from([(topic.to_string(), Written { key, value, timestamp })]);
        while let Some((topic, record)) = pending.pop_front() {
            let sources: Vec<usize> = self
                .topology
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| matches!(&n.kind, NodeKind::Source { topics, .. } if topics.contains(&topic)))
                .map(|(id, _)| id)
                .collect();
            for source in sources {
                let NodeKind::Source { decode, .. } = &self.topology.nodes[source].kind else { continue };
                match decode(record.key.as_deref(), record.value.as_deref()) {
                    Ok((key, value)) => {
                        let item = Item { key, value, timestamp: record.timestamp };
                        for child in self.topology.nodes[source].children.clone() {
                            self.run(child, item.clone(), &mut pending);
                        }
                    }
                    // As Kafka Streams' default handler for bad input:
                    // log and continue (LogAndContinueExceptionHandler).
                    Err(_) => self.skipped += 1,
                }
            }
        }
    }

    /// Processes `item` at `node` and, depth first, everything it forwards.
    /// Records for topics the topology also reads are queued in `pending`.
    fn run(&mut self, node: usize, item: Item, pending: &mut VecDeque<(String, Written)>) {
        if let NodeKind::Sink { topic, encode } = &self.topology.nodes[node].kind {
            let (key, value) = encode(&item);
            let record = Written { key, value, timestamp: item.timestamp };
            if self.topology.source_topics().contains(topic) {
                pending.push_back((topic.clone(), Written { key: record.key.clone(), value: record.value.clone(), timestamp: record.timestamp }));
            }
            self.written.entry(topic.clone()).or_default().push_back(record);
            return;
        }
        let Some(mut processor) = self.nodes[node].take() else { return };
        let mut forwarded = Vec::new();
        let mut ctx = NodeContext { forwarded: &mut forwarded, dropped_late: &mut self.dropped_late };
        processor.process(item, &mut ctx);
        self.nodes[node] = Some(processor);
        let children = self.topology.nodes[node].children.clone();
        for out in forwarded {
            for &child in &children {
                self.run(child, out.clone(), pending);
            }
        }
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
                })
            })
            .collect()
    }

    /// Records window aggregations dropped for arriving after their
    /// windows closed (Kafka Streams' `dropped-records` metric).
    pub fn dropped_late_records(&self) -> u64 {
        self.dropped_late
    }

    /// Input records that could not be deserialized and were skipped.
    pub fn skipped_records(&self) -> u64 {
        self.skipped
    }
}
