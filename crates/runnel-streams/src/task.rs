//! A task: one instance of every node of a topology, with its own stores,
//! processing the records of one input partition (of each source topic)
//! to completion. The test driver runs one task; the Kafka runtime one
//! per partition.

use crate::processor::{PunctuationType, Punctuations};
use crate::store::{StoreChange, Stores};
use crate::topology::{Item, Node, NodeContext, NodeKind, Topology};

/// What processing one record produced, in order.
pub(crate) enum Emitted {
    /// A sink wrote a record to `topic`.
    Record { topic: String, key: Option<Vec<u8>>, value: Option<Vec<u8>>, timestamp: i64 },
    /// A store changed: to be written to its changelog.
    Change { store: String, change: StoreChange },
}

/// What a task runs in: its topology, and the global tables' stores that
/// every task shares.
pub(crate) struct Scope<'a> {
    pub topology: &'a Topology,
    pub globals: &'a Stores,
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

    /// Processes one record of `topic` through every source that reads it.
    /// A record that cannot be deserialized is skipped and counted, as
    /// Kafka Streams' log-and-continue handler does.
    pub fn process(&mut self, scope: &Scope<'_>, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>, timestamp: i64, emitted: &mut Vec<Emitted>) {
        let topology = scope.topology;
        for (source, node) in topology.nodes.iter().enumerate() {
            let NodeKind::Source { topics, decode } = &node.kind else { continue };
            if !topics.iter().any(|t| t == topic) {
                continue;
            }
            match decode(key, value) {
                Ok((key, value)) => {
                    let item = Item { key, value, timestamp };
                    for &child in &topology.nodes[source].children {
                        self.run(scope, child, item.clone(), emitted);
                    }
                }
                Err(_) => self.skipped += 1,
            }
        }
        let stream_time = self.stream_time.map_or(timestamp, |t| t.max(timestamp));
        self.stream_time = Some(stream_time);
        self.punctuate(scope, PunctuationType::StreamTime, stream_time, emitted);
    }

    /// Runs the punctuations of `kind` due at `now`.
    pub fn punctuate(&mut self, scope: &Scope<'_>, kind: PunctuationType, now: i64, emitted: &mut Vec<Emitted>) {
        for (node, which) in self.punctuations.due(kind, now) {
            self.run_node(scope, node, emitted, |processor, ctx| processor.punctuate(which, now, ctx));
        }
    }

    /// Processes `item` at `node` and, depth first, everything it forwards.
    fn run(&mut self, scope: &Scope<'_>, node: usize, item: Item, emitted: &mut Vec<Emitted>) {
        let def = &scope.topology.nodes[node];
        match &def.kind {
            NodeKind::Sink { topic, encode } => {
                let (key, value) = encode(&item);
                emitted.push(Emitted::Record { topic: topic.clone(), key, value, timestamp: item.timestamp });
            }
            NodeKind::Source { .. } => {}
            NodeKind::Processor { .. } => self.run_node(scope, node, emitted, |processor, ctx| processor.process(item, ctx)),
        }
    }

    /// Runs `f` on processor `node` and, depth first, what it forwards.
    fn run_node(&mut self, scope: &Scope<'_>, node: usize, emitted: &mut Vec<Emitted>, f: impl FnOnce(&mut dyn Node, &mut NodeContext<'_>)) {
        let topology = scope.topology;
        let Some(mut processor) = self.nodes[node].take() else { return };
        let (mut forwarded, mut changes) = (Vec::new(), Vec::new());
        let mut ctx = NodeContext {
            forwarded: &mut forwarded,
            stores: &mut self.stores,
            globals: scope.globals,
            changes: &mut changes,
            dropped_late: &mut self.dropped_late,
        };
        f(processor.as_mut(), &mut ctx);
        self.nodes[node] = Some(processor);
        emitted.extend(changes.into_iter().map(|change| Emitted::Change { store: topology.stores[change.store].name.clone(), change }));
        for out in forwarded {
            for &child in &topology.nodes[node].children {
                self.run(scope, child, out.clone(), emitted);
            }
        }
    }

    /// Rebuilds `store` from one record of its changelog.
    pub fn restore(&mut self, topology: &Topology, store: &str, key: &[u8], value: Option<&[u8]>) {
        if let Some(id) = topology.stores.iter().position(|s| s.name == store) {
            self.stores.0[id].restore(key, value);
        }
    }
}
