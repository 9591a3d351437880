//! The processor graph a program builds with [`StreamsBuilder`], and what
//! flows through it.
//!
//! Records travel through the graph type-erased (`Arc<dyn Any>`), so one
//! graph can hold nodes of many key and value types; the DSL's generics
//! (in [`crate::kstream`], [`crate::aggregate`] and [`crate::table`])
//! guarantee that every node receives the types it was built for. Nodes
//! and stores are named as Kafka Streams names them
//! (`KSTREAM-SOURCE-0000000000`, ...), so topologies describe alike and
//! internal topics are named alike.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use crate::java_order::{hash_order, TreeSet};
use crate::kstream::KStream;
use crate::serde::{Serde, SerdeError};
use crate::store::{MakeStore, StoreChange, Stores};

/// A key or value in flight, type-erased; cheap to hand to several children.
pub(crate) type Value = Arc<dyn Any + Send + Sync>;

/// A record in flight between nodes. A value of `None` is a tombstone: a
/// table's deletion, or a null value read from a topic.
#[derive(Clone)]
pub(crate) struct Item {
    pub key: Value,
    pub value: Option<Value>,
    pub timestamp: i64,
}

/// An update to a table, as a table's nodes forward it (Kafka Streams'
/// `Change`): the new value (`None` deletes) and, when a node downstream
/// needs it, the value it replaces.
pub(crate) struct Change {
    pub new: Option<Value>,
    pub old: Option<Value>,
}

/// What a node may do while processing one record.
pub(crate) struct NodeContext<'a> {
    /// Records the node forwards to its children, in order.
    pub forwarded: &'a mut Vec<Item>,
    /// The task's stores, and the changes made to them, in order.
    pub stores: &'a mut Stores,
    /// The global tables' stores, shared by every task.
    pub globals: &'a Stores,
    pub changes: &'a mut Vec<StoreChange>,
    /// Records dropped for arriving after their window closed.
    pub dropped_late: &'a mut u64,
    /// The input record being processed (none in a punctuation).
    pub record: crate::processor::RecordContext<'a>,
}

/// One running processor node.
pub(crate) trait Node: Send {
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>);

    /// The punctuations the node asks for (Processor API nodes).
    fn punctuations(&self) -> Vec<crate::processor::Punctuation> {
        Vec::new()
    }

    /// Called when punctuation `which` is due.
    fn punctuate(&mut self, _which: usize, _timestamp: i64, _ctx: &mut NodeContext<'_>) {}
}

/// A serde shared by the nodes that need it.
pub(crate) type SharedSerde<T> = Arc<dyn Serde<Value = T>>;

pub(crate) type Decode = Arc<dyn Fn(Option<&[u8]>, Option<&[u8]>) -> Result<(Value, Option<Value>), SerdeError> + Send + Sync>;
pub(crate) type Encode = Arc<dyn Fn(&Item) -> (Option<Vec<u8>>, Option<Vec<u8>>) + Send + Sync>;
pub(crate) type MakeNode = Arc<dyn Fn() -> Box<dyn Node> + Send + Sync>;

/// A state store of the topology: its name, for window stores how long a
/// window is kept (its changelog is then compacted and deleted by time, as
/// Kafka Streams configures it), and how a task makes one.
#[derive(Clone)]
pub(crate) struct StoreDef {
    /// Shared with every change the store emits, which carries it to the
    /// changelog without a copy per record.
    pub name: Arc<str>,
    pub window_retention_ms: Option<i64>,
    pub make: MakeStore,
    /// Whether the store is a global table's: one copy for all tasks, fed
    /// from its topic rather than from a changelog.
    pub global: bool,
}

/// Works out a record's event time from its key, its value and the
/// timestamp it was written with (Kafka Streams' `TimestampExtractor`); a
/// negative result skips the record.
pub(crate) type ExtractTimestamp = Arc<dyn Fn(&Value, Option<&Value>, i64) -> i64 + Send + Sync>;

/// Applies one record of a global table's topic to its store.
pub(crate) type ApplyGlobal = Arc<dyn Fn(&mut Stores, Option<&[u8]>, Option<&[u8]>, i64) -> Result<(), SerdeError> + Send + Sync>;

/// A global table: the topic it is read from, whole, and how a record of
/// it updates the store.
#[derive(Clone)]
pub(crate) struct GlobalDef {
    pub topic: String,
    pub store: usize,
    pub apply: ApplyGlobal,
    /// The names of its source and processor, as Kafka Streams describes
    /// a global store.
    pub source: String,
    pub processor: String,
    /// How many nodes the graph had when the table was added: Kafka
    /// Streams numbers sub-topologies, global ones included, in the order
    /// their first nodes were added.
    pub nodes_before: usize,
}

pub(crate) enum NodeKind {
    /// A source: its topics, how records are decoded, and, if the
    /// program gave one, how each record's timestamp is worked out.
    Source {
        topics: Vec<String>,
        decode: Decode,
        timestamps: Option<ExtractTimestamp>,
    },
    Processor {
        make: MakeNode,
        stores: Vec<usize>,
    },
    Sink {
        /// Shared with every record the sink emits.
        topic: Arc<str>,
        encode: Encode,
    },
}

pub(crate) struct NodeDef {
    pub name: String,
    pub kind: NodeKind,
    pub children: Vec<usize>,
}

/// A built topology: the processor graph, ready to run (in the
/// [`crate::TopologyTestDriver`], or against a broker).
pub struct Topology {
    pub(crate) nodes: Vec<NodeDef>,
    /// Every state store; a store's id is its index.
    pub(crate) stores: Vec<StoreDef>,
    /// Repartition topics, without the application id's prefix.
    pub(crate) internal_topics: Vec<String>,
    pub(crate) globals: Vec<GlobalDef>,
}

impl Topology {
    /// A fresh copy of every store (each task holds one; the global
    /// tables' are used from the one copy the application holds).
    pub(crate) fn new_stores(&self) -> Stores {
        Stores(self.stores.iter().map(|s| (s.make)()).collect())
    }

    /// The global table reading `topic`, if any.
    pub(crate) fn global(&self, topic: &str) -> Option<&GlobalDef> {
        self.globals.iter().find(|g| g.topic == topic)
    }

    /// The graph as text, in the shape of Kafka Streams'
    /// `Topology#describe()`: the sub-topologies — the parts connected by
    /// parent and child or by a shared store, which repartition topics
    /// separate — each with its sources, processors and sinks, their
    /// topics, stores and neighbours; then the global stores.
    pub fn describe(&self) -> String {
        let mut out = String::from("Topologies:\n ");
        let names = |ids: &[usize]| ids.iter().map(|id| self.nodes[*id].name.as_str()).collect::<Vec<_>>();
        let groups = self.sub_topologies();
        // Global stores take their place among the sub-topologies by when
        // they were added.
        let mut order: Vec<(usize, Result<&Vec<usize>, &GlobalDef>)> = groups.iter().map(|members| (members[0], Ok(members))).collect();
        order.extend(self.globals.iter().map(|global| (global.nodes_before, Err(global))));
        order.sort_by_key(|(first, group)| (*first, group.is_ok()));
        for (number, (_, group)) in order.into_iter().enumerate() {
            let members = match group {
                Ok(members) => members,
                Err(global) => {
                    let _ = writeln!(
                        out,
                        "  Sub-topology: {number} for global store (will not generate tasks)\n    Source: {} (topics: [{}])\n      --> {}\n    Processor: {} (stores: [{}])\n      --> none\n      <-- {}",
                        global.source, global.topic, global.processor, global.processor, self.stores[global.store].name, global.source
                    );
                    continue;
                }
            };
            let _ = writeln!(out, "  Sub-topology: {number}");
            let layout = self.java_layout(members);
            // The nodes are listed largest sub-tree first, then by name.
            let mut members = members.clone();
            members.sort_by(|a, b| layout.sizes[b].cmp(&layout.sizes[a]).then_with(|| self.nodes[*a].name.cmp(&self.nodes[*b].name)));
            for id in members {
                let node = &self.nodes[id];
                let children = names(&layout.successors.get(&id).map(TreeSet::items).unwrap_or_default());
                let parents = names(&layout.predecessors.get(&id).map(TreeSet::items).unwrap_or_default());
                let _ = match &node.kind {
                    NodeKind::Source { topics, .. } => {
                        writeln!(out, "    Source: {} (topics: [{}])\n      --> {}", node.name, topics.join(", "), or_none(&children))
                    }
                    NodeKind::Processor { stores, .. } => {
                        let stores: Vec<&str> = stores.iter().map(|s| &*self.stores[*s].name).collect();
                        let stores: Vec<&str> = hash_order(&stores).into_iter().map(|i| stores[i]).collect();
                        writeln!(
                            out,
                            "    Processor: {} (stores: [{}])\n      --> {}\n      <-- {}",
                            node.name,
                            stores.join(", "),
                            or_none(&children),
                            parents.join(", ")
                        )
                    }
                    NodeKind::Sink { topic, .. } => writeln!(out, "    Sink: {} (topic: {})\n      <-- {}", node.name, topic, parents.join(", ")),
                };
            }
            out.push('\n');
        }
        out
    }

    /// A sub-topology's neighbour lists and sub-tree sizes as Kafka
    /// Streams' builder makes them: it visits the nodes in the order of a
    /// `HashMap` keyed by name (filled sources first, then the rest, in
    /// the order they were added) and connects each to its parents in
    /// turn, each connection adding the node's size so far to its parent
    /// and the parent's ancestors. Neighbours go into ordered sets that
    /// compare sizes as they are at that moment, so the printed order
    /// depends on that visit; the final sizes count paths.
    fn java_layout(&self, members: &[usize]) -> JavaLayout {
        let (sources, others): (Vec<usize>, Vec<usize>) = members.iter().partition(|id| matches!(self.nodes[**id].kind, NodeKind::Source { .. }));
        let filled: Vec<usize> = sources.into_iter().chain(others).collect();
        let filled_names: Vec<&str> = filled.iter().map(|id| self.nodes[*id].name.as_str()).collect();
        let mut layout = JavaLayout { sizes: members.iter().map(|id| (*id, 1)).collect(), predecessors: HashMap::new(), successors: HashMap::new() };
        for index in hash_order(&filled_names) {
            let node = filled[index];
            let parents: Vec<usize> = members.iter().copied().filter(|p| self.nodes[*p].children.contains(&node)).collect();
            for parent in parents {
                let compare = |a: usize, b: usize| layout.sizes[&b].cmp(&layout.sizes[&a]).then_with(|| self.nodes[a].name.cmp(&self.nodes[b].name));
                let mut predecessors = layout.predecessors.remove(&node).unwrap_or_default();
                predecessors.insert(parent, compare);
                let mut successors = layout.successors.remove(&parent).unwrap_or_default();
                successors.insert(node, compare);
                layout.predecessors.insert(node, predecessors);
                layout.successors.insert(parent, successors);
                let delta = layout.sizes[&node];
                layout.grow(parent, delta);
            }
        }
        layout
    }

    /// The nodes of each sub-topology, in the order they were added; the
    /// sub-topologies in the order of their first node.
    fn sub_topologies(&self) -> Vec<Vec<usize>> {
        // Union-find over parent-child edges and shared stores.
        let mut root: Vec<usize> = (0..self.nodes.len()).collect();
        fn find(root: &mut [usize], mut node: usize) -> usize {
            while root[node] != node {
                root[node] = root[root[node]];
                node = root[node];
            }
            node
        }
        let union = |root: &mut Vec<usize>, a: usize, b: usize| {
            let (a, b) = (find(root, a), find(root, b));
            root[a.max(b)] = a.min(b);
        };
        let mut store_owner: HashMap<usize, usize> = HashMap::new();
        for (id, node) in self.nodes.iter().enumerate() {
            for &child in &node.children {
                union(&mut root, id, child);
            }
            if let NodeKind::Processor { stores, .. } = &node.kind {
                for store in stores {
                    match store_owner.get(store) {
                        Some(&owner) => union(&mut root, owner, id),
                        None => {
                            store_owner.insert(*store, id);
                        }
                    }
                }
            }
        }
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for id in 0..self.nodes.len() {
            let group = find(&mut root, id);
            match groups.iter_mut().find(|(g, _)| *g == group) {
                Some((_, members)) => members.push(id),
                None => groups.push((group, vec![id])),
            }
        }
        groups.into_iter().map(|(_, members)| members).collect()
    }

    /// Every state store a processor uses (a table nothing needed to
    /// materialize has none).
    pub(crate) fn stores(&self) -> Vec<StoreDef> {
        let mut used: Vec<usize> = self
            .nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Processor { stores, .. } => Some(stores.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        used.sort_unstable();
        used.dedup();
        used.into_iter().map(|id| self.stores[id].clone()).filter(|s| !s.global).collect()
    }

    /// Whether a source reads `topic`.
    pub(crate) fn reads(&self, topic: &str) -> bool {
        self.nodes.iter().any(|n| matches!(&n.kind, NodeKind::Source { topics, .. } if topics.iter().any(|t| t == topic)))
    }

    /// Every topic a source reads.
    pub fn source_topics(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Source { topics, .. } => Some(topics.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

/// What [`Topology::java_layout`] works out for one sub-topology.
struct JavaLayout {
    /// Each node's sub-tree size as Kafka Streams counts it.
    sizes: HashMap<usize, usize>,
    predecessors: HashMap<usize, TreeSet>,
    successors: HashMap<usize, TreeSet>,
}

impl JavaLayout {
    /// Adds `delta` to `node`'s size and to every ancestor's connected so
    /// far (once per path, as Kafka Streams' `updateSize` recurses).
    fn grow(&mut self, node: usize, delta: usize) {
        *self.sizes.entry(node).or_insert(1) += delta;
        for parent in self.predecessors.get(&node).map(TreeSet::items).unwrap_or_default() {
            self.grow(parent, delta);
        }
    }
}

fn or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

pub(crate) struct Graph {
    nodes: Vec<NodeDef>,
    stores: Vec<StoreDef>,
    pub(crate) globals: Vec<GlobalDef>,
    /// Kafka Streams' name counter: every node and store takes the next.
    counter: usize,
    /// Topics the topology writes and reads itself (repartitioning),
    /// named without the application id that prefixes them at runtime.
    internal_topics: Vec<String>,
}

impl Graph {
    pub(crate) fn next_name(&mut self, prefix: &str) -> String {
        let name = format!("{prefix}{:010}", self.counter);
        self.counter += 1;
        name
    }

    /// How many nodes the graph has.
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn node_name(&self, node: usize) -> String {
        self.nodes[node].name.clone()
    }

    pub(crate) fn add_internal_topic(&mut self, topic: String) {
        self.internal_topics.push(topic);
    }

    pub(crate) fn add(&mut self, name: String, kind: NodeKind, parents: &[usize]) -> usize {
        let id = self.nodes.len();
        self.nodes.push(NodeDef { name, kind, children: Vec::new() });
        for &parent in parents {
            self.nodes[parent].children.push(id);
        }
        id
    }

    /// Adds a processor node from a closure that makes its instances.
    pub(crate) fn add_processor(&mut self, prefix: &str, make: MakeNode, stores: Vec<usize>, parents: &[usize]) -> usize {
        let name = self.next_name(prefix);
        self.add(name, NodeKind::Processor { make, stores }, parents)
    }

    /// Registers a store; `make` gets the store's id.
    pub(crate) fn add_store(&mut self, name: String, window_retention_ms: Option<i64>, make: impl FnOnce(usize) -> MakeStore) -> usize {
        let id = self.stores.len();
        self.stores.push(StoreDef { name: name.into(), window_retention_ms, make: make(id), global: false });
        id
    }

    /// Marks store `id` as a global table's.
    pub(crate) fn make_global(&mut self, id: usize) {
        self.stores[id].global = true;
    }

    /// The id of the store named `name`.
    pub(crate) fn store_id(&self, name: &str) -> Option<usize> {
        self.stores.iter().position(|s| *s.name == *name)
    }

    /// Gives `node` access to `store` (when a table is materialized after
    /// the node that fills it was added).
    pub(crate) fn attach_store(&mut self, node: usize, store: usize) {
        if let NodeKind::Processor { stores, .. } = &mut self.nodes[node].kind {
            if !stores.contains(&store) {
                stores.push(store);
            }
        }
    }
}

/// Builds a topology with the DSL, as Kafka Streams' `StreamsBuilder`.
pub struct StreamsBuilder {
    pub(crate) graph: Rc<RefCell<Graph>>,
}

impl Default for StreamsBuilder {
    fn default() -> Self {
        StreamsBuilder::new()
    }
}

/// Values a stream may carry: cloned when a record fans out or is stored.
pub trait Data: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> Data for T {}

/// The value itself if no one else holds it, else a copy of it.
pub(crate) fn owned<T: Data>(value: Value) -> T {
    let value = value.downcast::<T>().unwrap_or_else(|_| panic!("a value of the wrong type reached a node: the DSL's types guarantee it cannot"));
    Arc::try_unwrap(value).unwrap_or_else(|shared| (*shared).clone())
}

pub(crate) fn typed<T: 'static>(value: &Value) -> &T {
    value.downcast_ref::<T>().expect("the DSL's types guarantee each node gets the types it was built for")
}

/// A decoder for a source: the key must deserialize; a null value is a
/// tombstone.
pub(crate) fn decoder<K: Data, V: Data>(key_serde: SharedSerde<K>, value_serde: SharedSerde<V>) -> Decode {
    Arc::new(move |key, value| {
        let key: Value = Arc::new(key_serde.deserialize(key)?);
        let value = match value {
            Some(bytes) => Some(Arc::new(value_serde.deserialize(Some(bytes))?) as Value),
            None => None,
        };
        Ok((key, value))
    })
}

/// An encoder for a sink: a tombstone is written as a null value.
pub(crate) fn encoder<K: Data, V: Data>(key_serde: SharedSerde<K>, value_serde: SharedSerde<V>) -> Encode {
    Arc::new(move |item: &Item| (key_serde.serialize(typed::<K>(&item.key)), item.value.as_ref().and_then(|v| value_serde.serialize(typed::<V>(v)))))
}

impl StreamsBuilder {
    /// An empty builder.
    pub fn new() -> StreamsBuilder {
        StreamsBuilder {
            graph: Rc::new(RefCell::new(Graph { nodes: Vec::new(), stores: Vec::new(), globals: Vec::new(), counter: 0, internal_topics: Vec::new() })),
        }
    }

    /// A stream of the records of `topic`, read with the given serdes. A
    /// record whose key the key serde refuses (a null key, unless the
    /// serde is [`crate::serde::Nullable`]) is skipped and counted.
    pub fn stream<KS: Serde, VS: Serde>(&self, topic: &str, key_serde: KS, value_serde: VS) -> KStream<KS::Value, VS::Value>
    where
        KS::Value: Data,
        VS::Value: Data,
    {
        let key_serde: SharedSerde<KS::Value> = Arc::new(key_serde);
        let decode = decoder(key_serde.clone(), Arc::new(value_serde));
        let mut graph = self.graph.borrow_mut();
        let name = graph.next_name("KSTREAM-SOURCE-");
        let node = graph.add(name, NodeKind::Source { topics: vec![topic.to_string()], decode, timestamps: None }, &[]);
        KStream { graph: self.graph.clone(), node, key_serde: Some(key_serde), _types: PhantomData }
    }

    /// A stream of the records of `topic` whose event time `extractor`
    /// works out from each record's key, value and written timestamp
    /// (Kafka Streams' `Consumed.withTimestampExtractor`): windows, joins
    /// and stream time then follow it. A negative result skips the record,
    /// as Kafka Streams skips records with invalid timestamps.
    pub fn stream_with_timestamps<KS: Serde, VS: Serde>(
        &self,
        topic: &str,
        key_serde: KS,
        value_serde: VS,
        extractor: impl Fn(&KS::Value, &VS::Value, i64) -> i64 + Send + Sync + 'static,
    ) -> KStream<KS::Value, VS::Value>
    where
        KS::Value: Data,
        VS::Value: Data,
    {
        let stream = self.stream(topic, key_serde, value_serde);
        let extract: ExtractTimestamp = Arc::new(move |key: &Value, value: Option<&Value>, written: i64| match value {
            Some(value) => extractor(typed::<KS::Value>(key), typed::<VS::Value>(value), written),
            None => written,
        });
        if let NodeKind::Source { timestamps, .. } = &mut self.graph.borrow_mut().nodes[stream.node].kind {
            *timestamps = Some(extract);
        }
        stream
    }

    /// The topology built so far.
    pub fn build(self) -> Topology {
        let graph = Rc::try_unwrap(self.graph).map(RefCell::into_inner).unwrap_or_else(|shared| {
            let mut graph = shared.borrow_mut();
            Graph {
                nodes: std::mem::take(&mut graph.nodes),
                stores: std::mem::take(&mut graph.stores),
                globals: std::mem::take(&mut graph.globals),
                counter: graph.counter,
                internal_topics: std::mem::take(&mut graph.internal_topics),
            }
        });
        Topology { nodes: graph.nodes, stores: graph.stores, internal_topics: graph.internal_topics, globals: graph.globals }
    }
}

/// A stateless node built from a closure over each record.
pub(crate) struct FnNode<F>(pub F);

impl<F: FnMut(Item, &mut Vec<Item>) + Send> Node for FnNode<F> {
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>) {
        (self.0)(item, ctx.forwarded);
    }
}

/// A node that forwards every record unchanged.
pub(crate) fn pass_through() -> MakeNode {
    Arc::new(|| Box::new(FnNode(|item: Item, out: &mut Vec<Item>| out.push(item))))
}

pub(crate) fn item<K: Data, V: Data>(key: K, value: V, timestamp: i64) -> Item {
    Item { key: Arc::new(key), value: Some(Arc::new(value)), timestamp }
}

impl Item {
    /// The same record with another value: the key is shared, not copied.
    pub(crate) fn with_value<V: Data>(&self, value: V) -> Item {
        Item { key: self.key.clone(), value: Some(Arc::new(value)), timestamp: self.timestamp }
    }

    /// The same record under another key: the value is shared, not copied.
    pub(crate) fn with_key<K: Data>(&self, key: K) -> Item {
        Item { key: Arc::new(key), value: self.value.clone(), timestamp: self.timestamp }
    }
}

/// The serdes a grouping needs to repartition and to store its state
/// (Kafka Streams' `Grouped`).
pub struct Grouped<KS, VS> {
    /// The key's serde.
    pub key: KS,
    /// The value's serde.
    pub value: VS,
}

impl<KS, VS> Grouped<KS, VS> {
    /// The serdes of a grouping (Kafka Streams' `Grouped.with`).
    pub fn with(key: KS, value: VS) -> Self {
        Grouped { key, value }
    }
}

/// Writes `node`'s records to the internal topic `topic` and reads them
/// back, so they reach the task of their (new) key's partition; returns
/// the reading source.
pub(crate) fn repartition_through<K: Data, V: Data>(
    graph: &mut Graph,
    node: usize,
    topic: String,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
) -> usize {
    // A stream repartitioned twice (joined twice, say) goes through its
    // topic once, as in Kafka Streams, which still takes the three node
    // numbers, so later nodes (and their stores' changelogs) are named
    // alike.
    if let Some(source) = graph.nodes.iter().position(|n| matches!(&n.kind, NodeKind::Source { topics, .. } if topics == std::slice::from_ref(&topic))) {
        for prefix in ["KSTREAM-SINK-", "KSTREAM-FILTER-", "KSTREAM-SOURCE-"] {
            graph.next_name(prefix);
        }
        return source;
    }
    let encode = encoder(key_serde.clone(), value_serde.clone());
    let decode = decoder(key_serde, value_serde);
    // Numbered as Kafka Streams numbers its repartition nodes: the sink,
    // the filter that drops null keys before it, the source.
    let (sink, filter, source) = (graph.next_name("KSTREAM-SINK-"), graph.next_name("KSTREAM-FILTER-"), graph.next_name("KSTREAM-SOURCE-"));
    let filter = graph.add(filter, NodeKind::Processor { make: pass_through(), stores: Vec::new() }, &[node]);
    graph.add(sink, NodeKind::Sink { topic: topic.as_str().into(), encode }, &[filter]);
    let source = graph.add(source, NodeKind::Source { topics: vec![topic.clone()], decode, timestamps: None }, &[]);
    graph.add_internal_topic(topic);
    source
}
