//! A task: one instance of every node of a topology, with its own stores,
//! processing the records of one input partition (of each source topic)
//! to completion. The test driver runs one task; the Kafka runtime one
//! per partition.

use std::sync::Arc;

use crate::processor::{PunctuationType, Punctuations, ReadHeaders, RecordContext, RecordMetadata};
use crate::serde::SerdeError;
use crate::store::{StoreChange, Stores};
use crate::topology::{Item, Node, NodeContext, NodeKind, Topology};

/// What processing one record produced, in order.
pub(crate) enum Emitted {
    /// A sink wrote a record to `topic` (a dead letter carries headers
    /// saying what went wrong).
    Record { topic: Arc<str>, key: Option<Vec<u8>>, value: Option<Vec<u8>>, timestamp: i64, headers: Vec<(String, Vec<u8>)> },
    /// A store changed: to be written to its changelog.
    Change { store: Arc<str>, change: StoreChange },
}

/// What a task runs in: its topology, the global tables' stores that
/// every task shares, and what to do with undecodable records.
pub(crate) struct Scope<'a> {
    pub topology: &'a Topology,
    pub globals: &'a Stores,
    pub on_undecodable: &'a OnUndecodable,
}

/// One input record, with where it was read.
pub(crate) struct Input<'a> {
    pub topic: &'a str,
    pub partition: i32,
    /// Its offset (the test driver counts them per topic from 0).
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub timestamp: i64,
    pub headers: Option<&'a dyn ReadHeaders>,
}

/// What happens to an input record that cannot be deserialized (Kafka
/// Streams' `deserialization.exception.handler`, and KIP-1034's dead-letter
/// queue).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OnUndecodable {
    /// Log it, count it, go on (Kafka Streams' default is to fail; a
    /// stream of real data usually holds a bad record or two, so
    /// runnel-streams goes on).
    #[default]
    LogAndContinue,
    /// Stop the application with an error.
    LogAndFail,
    /// Write it, as it was, to this topic, with headers saying why, and go on.
    DeadLetter(String),
}

/// An input record that could not be deserialized.
#[derive(Debug, thiserror::Error)]
#[error("record {topic}-{partition}@{offset} cannot be deserialized: {error}")]
pub struct Undecodable {
    /// The topic the record was read from.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset (the test driver counts them per topic from 0).
    pub offset: i64,
    /// Why it could not be read.
    pub error: SerdeError,
}

impl Undecodable {
    /// The record for the dead-letter topic: the input's key, value and
    /// timestamp, with KIP-1034's headers.
    fn dead_letter(&self, topic: &str, input: &Input<'_>) -> Emitted {
        let headers = vec![
            ("__streams.errors.exception".to_string(), b"org.apache.kafka.common.errors.SerializationException".to_vec()),
            ("__streams.errors.message".to_string(), self.error.to_string().into_bytes()),
            ("__streams.errors.topic".to_string(), self.topic.clone().into_bytes()),
            ("__streams.errors.partition".to_string(), self.partition.to_string().into_bytes()),
            ("__streams.errors.offset".to_string(), self.offset.to_string().into_bytes()),
        ];
        Emitted::Record { topic: topic.into(), key: input.key.map(<[u8]>::to_vec), value: input.value.map(<[u8]>::to_vec), timestamp: input.timestamp, headers }
    }
}

pub(crate) struct Task {
    nodes: Vec<Option<Box<dyn Node>>>,
    pub stores: Stores,
    punctuations: Punctuations,
    /// The largest timestamp of the records the task has processed.
    stream_time: Option<i64>,
    pub dropped_late: u64,
    pub skipped: u64,
}

impl Task {
    /// A task with fresh nodes and empty stores; wall-clock punctuations
    /// are first due an interval after `wall_clock`.
    pub fn new(topology: &Topology, wall_clock: i64) -> Task {
        let nodes: Vec<Option<Box<dyn Node>>> = topology
            .nodes
            .iter()
            .map(|n| match &n.kind {
                NodeKind::Processor { make, .. } => Some(make()),
                _ => None,
            })
            .collect();
        let stores = topology.new_stores();
        let punctuations = Punctuations::new(&nodes, wall_clock);
        Task { nodes, stores, punctuations, stream_time: None, dropped_late: 0, skipped: 0 }
    }

    /// Processes one record through every source that reads its topic.
    /// A record that cannot be deserialized goes to the scope's handler:
    /// skipped and counted, sent to a dead-letter topic, or an error.
    pub fn process(&mut self, scope: &Scope<'_>, input: &Input<'_>, emitted: &mut Vec<Emitted>) -> Result<(), Undecodable> {
        let topology = scope.topology;
        let mut timestamp = input.timestamp;
        for (source, node) in topology.nodes.iter().enumerate() {
            let NodeKind::Source { topics, decode, timestamps } = &node.kind else { continue };
            if !topics.iter().any(|t| t == input.topic) {
                continue;
            }
            match decode(input.key, input.value) {
                Ok((key, value)) => {
                    if let Some(extract) = timestamps {
                        timestamp = extract(&key, value.as_ref(), input.timestamp);
                        if timestamp < 0 {
                            tracing::warn!(
                                topic = input.topic,
                                partition = input.partition,
                                offset = input.offset,
                                timestamp,
                                "skipping a record whose extracted timestamp is negative"
                            );
                            self.skipped += 1;
                            continue;
                        }
                    }
                    let item = Item { key, value, timestamp };
                    let record = RecordContext { metadata: Some(RecordMetadata { partition: input.partition, offset: input.offset }), headers: input.headers };
                    self.run_children(scope, source, item, emitted, record);
                }
                Err(error) => {
                    let undecodable = Undecodable { topic: input.topic.to_string(), partition: input.partition, offset: input.offset, error };
                    match scope.on_undecodable {
                        OnUndecodable::LogAndContinue => {}
                        OnUndecodable::LogAndFail => return Err(undecodable),
                        OnUndecodable::DeadLetter(topic) => emitted.push(undecodable.dead_letter(topic, input)),
                    }
                    tracing::warn!(topic = input.topic, partition = input.partition, offset = input.offset, error = %undecodable.error, "skipping a record that cannot be deserialized");
                    self.skipped += 1;
                }
            }
        }
        let stream_time = self.stream_time.map_or(timestamp, |t| t.max(timestamp));
        self.stream_time = Some(stream_time);
        self.punctuate(scope, PunctuationType::StreamTime, stream_time, emitted);
        Ok(())
    }

    /// Runs the punctuations of `kind` due at `now`.
    pub fn punctuate(&mut self, scope: &Scope<'_>, kind: PunctuationType, now: i64, emitted: &mut Vec<Emitted>) {
        for (node, which) in self.punctuations.due(kind, now) {
            self.run_node(scope, node, emitted, RecordContext::default(), |processor, ctx| processor.punctuate(which, now, ctx));
        }
    }

    /// Processes `item` at each child of `node`, in turn. The last child
    /// gets the item itself, so a value no other node holds reaches it
    /// unshared and can be moved rather than copied.
    fn run_children(&mut self, scope: &Scope<'_>, node: usize, item: Item, emitted: &mut Vec<Emitted>, record: RecordContext<'_>) {
        let Some((&last, rest)) = scope.topology.nodes[node].children.split_last() else { return };
        for &child in rest {
            self.run(scope, child, item.clone(), emitted, record);
        }
        self.run(scope, last, item, emitted, record);
    }

    /// Processes `item` at `node` and, depth first, everything it forwards.
    fn run(&mut self, scope: &Scope<'_>, node: usize, item: Item, emitted: &mut Vec<Emitted>, record: RecordContext<'_>) {
        let def = &scope.topology.nodes[node];
        match &def.kind {
            NodeKind::Sink { topic, encode } => {
                let (key, value) = encode(&item);
                emitted.push(Emitted::Record { topic: topic.clone(), key, value, timestamp: item.timestamp, headers: Vec::new() });
            }
            NodeKind::Source { .. } => {}
            NodeKind::Processor { .. } => self.run_node(scope, node, emitted, record, |processor, ctx| processor.process(item, ctx)),
        }
    }

    /// Runs `f` on processor `node` and, depth first, what it forwards.
    fn run_node(
        &mut self,
        scope: &Scope<'_>,
        node: usize,
        emitted: &mut Vec<Emitted>,
        record: RecordContext<'_>,
        f: impl FnOnce(&mut dyn Node, &mut NodeContext<'_>),
    ) {
        let topology = scope.topology;
        let Some(mut processor) = self.nodes[node].take() else { return };
        let (mut forwarded, mut changes) = (Vec::new(), Vec::new());
        let mut ctx = NodeContext {
            forwarded: &mut forwarded,
            stores: &mut self.stores,
            globals: scope.globals,
            changes: &mut changes,
            dropped_late: &mut self.dropped_late,
            record,
        };
        f(processor.as_mut(), &mut ctx);
        self.nodes[node] = Some(processor);
        emitted.extend(changes.into_iter().map(|change| Emitted::Change { store: topology.stores[change.store].name.clone(), change }));
        for out in forwarded {
            self.run_children(scope, node, out, emitted, record);
        }
    }

    /// The largest timestamp of the records the task has processed (or,
    /// after a restore, its committed stream time).
    pub fn stream_time(&self) -> Option<i64> {
        self.stream_time
    }

    /// Resumes a restored task at the stream time committed with its input
    /// positions, capping its stores' (see [`crate::store::StateStore::resume`]).
    pub fn resume(&mut self, stream_time: i64) {
        self.stream_time = Some(stream_time);
        self.stores.resume(stream_time);
    }

    /// Rebuilds `store` from one record of its changelog.
    pub fn restore(&mut self, topology: &Topology, store: &str, key: &[u8], value: Option<&[u8]>) {
        if let Some(id) = topology.stores.iter().position(|s| *s.name == *store) {
            self.stores.0[id].restore(key, value);
        }
    }
}
