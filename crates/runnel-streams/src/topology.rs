//! The processor graph a program builds with [`StreamsBuilder`], and the
//! typed DSL over it ([`KStream`], [`KGroupedStream`], [`KTable`]).
//!
//! Records travel through the graph type-erased (`Arc<dyn Any>`), so one
//! graph can hold nodes of many key and value types; the DSL's generics
//! guarantee that every node receives the types it was built for. Nodes
//! are named as Kafka Streams names them (`KSTREAM-SOURCE-0000000000`,
//! ...), so topologies describe alike and internal topics are named alike.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write;
use std::hash::Hash;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use crate::serde::{Serde, SerdeError, Windowed};
use crate::window::TimeWindows;

/// A key or value in flight, type-erased; cheap to hand to several children.
pub(crate) type Value = Arc<dyn Any + Send + Sync>;

/// A record in flight between nodes.
#[derive(Clone)]
pub(crate) struct Item {
    pub key: Value,
    pub value: Value,
    pub timestamp: i64,
}

/// A change to a node's state store, for its changelog topic: the key and
/// value as Kafka Streams lays them out in that store's changelog.
pub(crate) struct StoreChange {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
}

/// What a node may do while processing one record.
pub(crate) struct NodeContext<'a> {
    /// Records the node forwards to its children, in order.
    pub forwarded: &'a mut Vec<Item>,
    /// Changes to the node's store, in order.
    pub changes: &'a mut Vec<StoreChange>,
    /// Records dropped for arriving after their window closed.
    pub dropped_late: &'a mut u64,
}

/// One running processor node.
pub(crate) trait Node: Send {
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>);

    /// Rebuilds the node's store from one changelog record (stateful
    /// nodes; the rest have nothing to restore).
    fn restore(&mut self, _key: &[u8], _value: Option<&[u8]>) {}
}

/// A store's changelog value: the update's timestamp (8 bytes, big-endian)
/// then the value, as Kafka Streams' timestamped stores write it.
fn with_timestamp(timestamp: i64, value: Option<Vec<u8>>) -> Option<Vec<u8>> {
    value.map(|v| [&timestamp.to_be_bytes()[..], &v].concat())
}

fn split_timestamp(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let (timestamp, value) = bytes.split_first_chunk::<8>()?;
    Some((i64::from_be_bytes(*timestamp), value))
}

/// A serde shared by the nodes that need it.
pub(crate) type SharedSerde<T> = Arc<dyn Serde<Value = T>>;

pub(crate) type Decode = Arc<dyn Fn(Option<&[u8]>, Option<&[u8]>) -> Result<(Value, Value), SerdeError> + Send + Sync>;
pub(crate) type Encode = Arc<dyn Fn(&Item) -> (Option<Vec<u8>>, Option<Vec<u8>>) + Send + Sync>;
pub(crate) type MakeNode = Arc<dyn Fn() -> Box<dyn Node> + Send + Sync>;

/// A node's state store: its name, and for window stores how long a
/// window is kept (its changelog is then compacted and deleted by time,
/// as Kafka Streams configures it).
#[derive(Debug, Clone)]
pub(crate) struct StoreDef {
    pub name: String,
    pub window_retention_ms: Option<i64>,
}

pub(crate) enum NodeKind {
    Source { topics: Vec<String>, decode: Decode },
    Processor { make: MakeNode, stores: Vec<StoreDef> },
    Sink { topic: String, encode: Encode },
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
    /// Repartition topics, without the application id's prefix.
    pub(crate) internal_topics: Vec<String>,
}

impl Topology {
    /// The graph as text, in the shape of Kafka Streams'
    /// `Topology#describe()`: each source, processor and sink with the
    /// topics, stores and children it has.
    pub fn describe(&self) -> String {
        let mut out = String::from("Topologies:\n   Sub-topology: 0\n");
        let parents = |child: usize| -> Vec<&str> { self.nodes.iter().filter(|n| n.children.contains(&child)).map(|n| n.name.as_str()).collect() };
        for (id, node) in self.nodes.iter().enumerate() {
            let children: Vec<&str> = node.children.iter().map(|c| self.nodes[*c].name.as_str()).collect();
            let _ = match &node.kind {
                NodeKind::Source { topics, .. } => {
                    writeln!(out, "    Source: {} (topics: [{}])\n      --> {}", node.name, topics.join(", "), or_none(&children))
                }
                NodeKind::Processor { stores, .. } => writeln!(
                    out,
                    "    Processor: {} (stores: [{}])\n      --> {}\n      <-- {}",
                    node.name,
                    stores.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
                    or_none(&children),
                    parents(id).join(", ")
                ),
                NodeKind::Sink { topic, .. } => writeln!(out, "    Sink: {} (topic: {})\n      <-- {}", node.name, topic, parents(id).join(", ")),
            };
        }
        out
    }

    /// Every state store, with the node that owns it.
    pub(crate) fn stores(&self) -> Vec<StoreDef> {
        self.nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Processor { stores, .. } => Some(stores.clone()),
                _ => None,
            })
            .flatten()
            .collect()
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

fn or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

pub(crate) struct Graph {
    nodes: Vec<NodeDef>,
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
}

/// Builds a topology with the DSL, as Kafka Streams' `StreamsBuilder`.
pub struct StreamsBuilder {
    graph: Rc<RefCell<Graph>>,
}

impl Default for StreamsBuilder {
    fn default() -> Self {
        StreamsBuilder::new()
    }
}

/// Values a stream may carry: cloned when a record fans out or is stored.
pub trait Data: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> Data for T {}

pub(crate) fn typed<T: 'static>(value: &Value) -> &T {
    value.downcast_ref::<T>().expect("the DSL's types guarantee each node gets the types it was built for")
}

impl StreamsBuilder {
    pub fn new() -> StreamsBuilder {
        StreamsBuilder { graph: Rc::new(RefCell::new(Graph { nodes: Vec::new(), counter: 0, internal_topics: Vec::new() })) }
    }

    /// A stream of the records of `topic`, read with the given serdes.
    pub fn stream<KS: Serde + Clone, VS: Serde>(&self, topic: &str, key_serde: KS, value_serde: VS) -> KStream<KS::Value, VS::Value>
    where
        KS::Value: Data,
        VS::Value: Data,
    {
        let key_serde_for_stores = key_serde.clone();
        let decode: Decode = Arc::new(move |key, value| {
            let key: Value = Arc::new(key_serde.deserialize(key)?);
            let value: Value = Arc::new(value_serde.deserialize(value)?);
            Ok((key, value))
        });
        let mut graph = self.graph.borrow_mut();
        let name = graph.next_name("KSTREAM-SOURCE-");
        let node = graph.add(name, NodeKind::Source { topics: vec![topic.to_string()], decode }, &[]);
        KStream { graph: self.graph.clone(), node, key_serde: Some(Arc::new(key_serde_for_stores)), _types: PhantomData }
    }

    /// The topology built so far.
    pub fn build(self) -> Topology {
        let graph = Rc::try_unwrap(self.graph).map(RefCell::into_inner).unwrap_or_else(|shared| {
            let mut graph = shared.borrow_mut();
            Graph { nodes: std::mem::take(&mut graph.nodes), counter: graph.counter, internal_topics: std::mem::take(&mut graph.internal_topics) }
        });
        Topology { nodes: graph.nodes, internal_topics: graph.internal_topics }
    }
}

/// A stateless node built from a closure over each record.
pub(crate) struct FnNode<F>(pub F);

impl<F: FnMut(Item, &mut Vec<Item>) + Send> Node for FnNode<F> {
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>) {
        (self.0)(item, ctx.forwarded);
    }
}

/// A record stream, as Kafka Streams' `KStream<K, V>`.
pub struct KStream<K, V> {
    pub(crate) graph: Rc<RefCell<Graph>>,
    pub(crate) node: usize,
    /// The key serde, while the key is still the source's; `None` once an
    /// operation may have changed the key, so a join or grouping after it
    /// repartitions.
    pub(crate) key_serde: Option<SharedSerde<K>>,
    pub(crate) _types: PhantomData<fn() -> (K, V)>,
}

impl<K: Data, V: Data> KStream<K, V> {
    pub(crate) fn then<K2, V2>(
        &self,
        prefix: &str,
        key_serde: Option<SharedSerde<K2>>,
        step: impl Fn(&K, &V, i64, &mut Vec<Item>) + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let step = Arc::new(step);
        let make: MakeNode = Arc::new(move || {
            let step = step.clone();
            Box::new(FnNode(move |item: Item, out: &mut Vec<Item>| step(typed::<K>(&item.key), typed::<V>(&item.value), item.timestamp, out)))
        });
        let mut graph = self.graph.borrow_mut();
        let name = graph.next_name(prefix);
        let node = graph.add(name, NodeKind::Processor { make, stores: Vec::new() }, &[self.node]);
        KStream { graph: self.graph.clone(), node, key_serde, _types: PhantomData }
    }

    /// Keeps the records for which `predicate` holds.
    pub fn filter(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KStream<K, V> {
        self.then("KSTREAM-FILTER-", self.key_serde.clone(), move |k, v, ts, out| {
            if predicate(k, v) {
                out.push(item(k.clone(), v.clone(), ts));
            }
        })
    }

    /// Drops the records for which `predicate` holds.
    pub fn filter_not(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KStream<K, V> {
        self.then("KSTREAM-FILTER-", self.key_serde.clone(), move |k, v, ts, out| {
            if !predicate(k, v) {
                out.push(item(k.clone(), v.clone(), ts));
            }
        })
    }

    /// A new value for each record, same key.
    pub fn map_values<V2: Data>(&self, f: impl Fn(&V) -> V2 + Send + Sync + 'static) -> KStream<K, V2> {
        self.then("KSTREAM-MAPVALUES-", self.key_serde.clone(), move |k, v, ts, out| out.push(item(k.clone(), f(v), ts)))
    }

    /// A new key and value for each record. A grouping or join after it
    /// repartitions by the new key.
    pub fn map<K2: Data, V2: Data>(&self, f: impl Fn(&K, &V) -> (K2, V2) + Send + Sync + 'static) -> KStream<K2, V2> {
        self.then("KSTREAM-MAP-", None, move |k, v, ts, out| {
            let (k2, v2) = f(k, v);
            out.push(item(k2, v2, ts));
        })
    }

    /// A new key for each record, same value.
    pub fn select_key<K2: Data>(&self, f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static) -> KStream<K2, V> {
        self.then("KSTREAM-KEY-SELECT-", None, move |k, v, ts, out| out.push(item(f(k, v), v.clone(), ts)))
    }

    /// Zero or more records for each record.
    pub fn flat_map<K2: Data, V2: Data, I: IntoIterator<Item = (K2, V2)>>(&self, f: impl Fn(&K, &V) -> I + Send + Sync + 'static) -> KStream<K2, V2> {
        self.then("KSTREAM-FLATMAP-", None, move |k, v, ts, out| out.extend(f(k, v).into_iter().map(|(k2, v2)| item(k2, v2, ts))))
    }

    /// Zero or more values for each record, same key.
    pub fn flat_map_values<V2: Data, I: IntoIterator<Item = V2>>(&self, f: impl Fn(&V) -> I + Send + Sync + 'static) -> KStream<K, V2> {
        self.then("KSTREAM-FLATMAPVALUES-", self.key_serde.clone(), move |k, v, ts, out| out.extend(f(v).into_iter().map(|v2| item(k.clone(), v2, ts))))
    }

    /// Looks at each record and passes it on unchanged.
    pub fn peek(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) -> KStream<K, V> {
        self.then("KSTREAM-PEEK-", self.key_serde.clone(), move |k, v, ts, out| {
            f(k, v);
            out.push(item(k.clone(), v.clone(), ts));
        })
    }

    /// Looks at each record; the stream ends here.
    pub fn foreach(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) {
        let _: KStream<K, V> = self.then("KSTREAM-FOREACH-", None, move |k, v, _, _| f(k, v));
    }

    /// The records of both streams.
    pub fn merge(&self, other: &KStream<K, V>) -> KStream<K, V> {
        let make: MakeNode = Arc::new(|| Box::new(FnNode(|item: Item, out: &mut Vec<Item>| out.push(item))));
        let mut graph = self.graph.borrow_mut();
        let name = graph.next_name("KSTREAM-MERGE-");
        let node = graph.add(name, NodeKind::Processor { make, stores: Vec::new() }, &[self.node, other.node]);
        let key_serde = self.key_serde.clone().filter(|_| other.key_serde.is_some());
        KStream { graph: self.graph.clone(), node, key_serde, _types: PhantomData }
    }

    /// Writes the stream to `topic` with the given serdes.
    pub fn to<KS: Serde<Value = K>, VS: Serde<Value = V>>(&self, topic: &str, key_serde: KS, value_serde: VS) {
        let encode: Encode = Arc::new(move |item: &Item| (key_serde.serialize(typed::<K>(&item.key)), value_serde.serialize(typed::<V>(&item.value))));
        let mut graph = self.graph.borrow_mut();
        let name = graph.next_name("KSTREAM-SINK-");
        graph.add(name, NodeKind::Sink { topic: topic.to_string(), encode }, &[self.node]);
    }

    /// Groups records by their key, for aggregations; the key's serde is
    /// the source's (after an operation that changed the key, use
    /// [`KStream::group_by_key_with`]).
    ///
    /// # Panics
    /// When the key has changed since the source, as Kafka Streams refuses
    /// a topology without the serdes its stores need.
    pub fn group_by_key(&self) -> KGroupedStream<K, V>
    where
        K: Hash + Eq,
    {
        let key_serde = self.key_serde.clone().expect("the key changed since the source: use group_by_key_with(Grouped::with(key_serde, value_serde))");
        KGroupedStream { stream: self.clone_with(Some(key_serde.clone())), key_serde, repartition: None }
    }

    /// Groups records by their key with the given serdes (for state
    /// stores and their changelogs). If the key changed since the source,
    /// the aggregation first repartitions the records by their new key,
    /// through `<application.id>-<store>-repartition`, as Kafka Streams
    /// does.
    pub fn group_by_key_with<KS: Serde<Value = K>, VS: Serde<Value = V>>(&self, grouped: Grouped<KS, VS>) -> KGroupedStream<K, V>
    where
        K: Hash + Eq,
    {
        let key_serde: SharedSerde<K> = Arc::new(grouped.key);
        let repartition = self.key_serde.is_none().then(|| Arc::new(grouped.value) as SharedSerde<V>);
        KGroupedStream { stream: self.clone_with(Some(key_serde.clone())), key_serde, repartition }
    }

    /// Groups records by a new key that `selector` picks, repartitioning
    /// them by it (Kafka Streams' `groupBy`).
    pub fn group_by<K2: Data + Hash + Eq, KS: Serde<Value = K2>, VS: Serde<Value = V>>(
        &self,
        selector: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
        grouped: Grouped<KS, VS>,
    ) -> KGroupedStream<K2, V> {
        self.select_key(selector).group_by_key_with(grouped)
    }

    fn clone_with(&self, key_serde: Option<SharedSerde<K>>) -> KStream<K, V> {
        KStream { graph: self.graph.clone(), node: self.node, key_serde, _types: PhantomData }
    }
}

pub(crate) fn item<K: Data, V: Data>(key: K, value: V, timestamp: i64) -> Item {
    Item { key: Arc::new(key), value: Arc::new(value), timestamp }
}

/// A stream grouped by key, as Kafka Streams' `KGroupedStream`.
pub struct KGroupedStream<K, V> {
    stream: KStream<K, V>,
    key_serde: SharedSerde<K>,
    /// Set when the key changed since the source: the value serde the
    /// records are repartitioned with before they are aggregated.
    repartition: Option<SharedSerde<V>>,
}

/// The serdes a grouping needs to repartition and to store its state
/// (Kafka Streams' `Grouped`).
pub struct Grouped<KS, VS> {
    pub key: KS,
    pub value: VS,
}

impl<KS, VS> Grouped<KS, VS> {
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
    let encode: Encode = {
        let (key_serde, value_serde) = (key_serde.clone(), value_serde.clone());
        Arc::new(move |item: &Item| (key_serde.serialize(typed::<K>(&item.key)), value_serde.serialize(typed::<V>(&item.value))))
    };
    let decode: Decode = Arc::new(move |key, value| {
        let key: Value = Arc::new(key_serde.deserialize(key)?);
        let value: Value = Arc::new(value_serde.deserialize(value)?);
        Ok((key, value))
    });
    // Named after the topic, as Kafka Streams names its repartition nodes.
    let keep: MakeNode = Arc::new(|| Box::new(FnNode(|item: Item, out: &mut Vec<Item>| out.push(item))));
    let filter = graph.add(format!("{topic}-filter"), NodeKind::Processor { make: keep, stores: Vec::new() }, &[node]);
    graph.add(format!("{topic}-sink"), NodeKind::Sink { topic: topic.clone(), encode }, &[filter]);
    let source = graph.add(format!("{topic}-source"), NodeKind::Source { topics: vec![topic.clone()], decode }, &[]);
    graph.add_internal_topic(topic);
    source
}

impl<K: Data + Hash + Eq, V: Data> KGroupedStream<K, V> {
    /// How many records each key has had: a table updated, and emitted,
    /// on every record. Each update carries the larger of the record's
    /// timestamp and the previous update's, as in Kafka Streams.
    pub fn count(&self) -> KTable<K, i64> {
        self.aggregate(|| 0i64, |_, _, count| count + 1, crate::serde::I64Serde)
    }

    /// Folds each key's records into an aggregate, starting from `init`;
    /// `aggregate_serde` writes it to the store's changelog.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        add: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        aggregate_serde: impl Serde<Value = A>,
    ) -> KTable<K, A> {
        let functions = Arc::new((init, add));
        let key_serde = self.key_serde.clone();
        let aggregate_serde: SharedSerde<A> = Arc::new(aggregate_serde);
        let mut graph = self.stream.graph.borrow_mut();
        let store = graph.next_name("KSTREAM-AGGREGATE-STATE-STORE-");
        let input = self.input(&mut graph, &store);
        let make: MakeNode = Arc::new(move || {
            let functions = functions.clone();
            Box::new(AggregateNode::<K, A, _> {
                table: HashMap::new(),
                key_serde: key_serde.clone(),
                aggregate_serde: aggregate_serde.clone(),
                step: move |k: &K, v: &Value, agg: Option<A>| (functions.1)(k, typed::<V>(v), agg.unwrap_or_else(&functions.0)),
            })
        });
        let name = graph.next_name("KSTREAM-AGGREGATE-");
        let stores = vec![StoreDef { name: store, window_retention_ms: None }];
        let node = graph.add(name, NodeKind::Processor { make, stores }, &[input]);
        KTable { graph: self.stream.graph.clone(), node, _types: PhantomData }
    }

    /// The node an aggregation with `store` reads: the grouped stream, or
    /// the repartition topic `<store>-repartition` it goes through first.
    fn input(&self, graph: &mut Graph, store: &str) -> usize {
        match &self.repartition {
            Some(value_serde) => repartition_through(graph, self.stream.node, format!("{store}-repartition"), self.key_serde.clone(), value_serde.clone()),
            None => self.stream.node,
        }
    }

    /// Groups into time windows, for windowed aggregations.
    pub fn windowed_by(&self, windows: TimeWindows) -> TimeWindowedKStream<K, V> {
        let grouped = KGroupedStream {
            stream: self.stream.clone_with(Some(self.key_serde.clone())),
            key_serde: self.key_serde.clone(),
            repartition: self.repartition.clone(),
        };
        TimeWindowedKStream { grouped, windows }
    }
}

/// Each key's aggregate and the timestamp of its last update: a
/// timestamped key-value store, logged as Kafka Streams logs one.
struct AggregateNode<K, A, F> {
    table: HashMap<K, (A, i64)>,
    key_serde: SharedSerde<K>,
    aggregate_serde: SharedSerde<A>,
    step: F,
}

impl<K: Data + Hash + Eq, A: Data, F: Fn(&K, &Value, Option<A>) -> A + Send> Node for AggregateNode<K, A, F> {
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>) {
        let key = typed::<K>(&item.key).clone();
        let previous = self.table.remove(&key);
        let timestamp = previous.as_ref().map_or(item.timestamp, |(_, ts)| (*ts).max(item.timestamp));
        let next = (self.step)(&key, &item.value, previous.map(|(agg, _)| agg));
        if let Some(key_bytes) = self.key_serde.serialize(&key) {
            ctx.changes.push(StoreChange { key: key_bytes, value: with_timestamp(timestamp, self.aggregate_serde.serialize(&next)), timestamp });
        }
        ctx.forwarded.push(Item { key: item.key.clone(), value: Arc::new(next.clone()), timestamp });
        self.table.insert(key, (next, timestamp));
    }

    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) {
        let Ok(key) = self.key_serde.deserialize(Some(key)) else { return };
        match value.and_then(split_timestamp) {
            Some((timestamp, bytes)) => {
                if let Ok(aggregate) = self.aggregate_serde.deserialize(Some(bytes)) {
                    self.table.insert(key, (aggregate, timestamp));
                }
            }
            None => {
                self.table.remove(&key);
            }
        }
    }
}

/// A grouped stream in time windows, as Kafka Streams'
/// `TimeWindowedKStream`.
pub struct TimeWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: TimeWindows,
}

impl<K: Data + Hash + Eq, V: Data> TimeWindowedKStream<K, V> {
    /// How many records each key has in each window, emitted on every
    /// update. A record whose windows have all closed (stream time past
    /// their end plus grace) is dropped and counted as late.
    pub fn count(&self) -> KTable<Windowed<K>, i64> {
        let windows = self.windows;
        let mut graph = self.grouped.stream.graph.borrow_mut();
        let store = graph.next_name("KSTREAM-AGGREGATE-STATE-STORE-");
        let input = self.grouped.input(&mut graph, &store);
        let key_serde = self.grouped.key_serde.clone();
        let make: MakeNode = Arc::new(move || {
            Box::new(WindowCountNode::<K> { windows, key_serde: key_serde.clone(), table: HashMap::new(), stream_time: i64::MIN, purged_at: i64::MIN })
        });
        let name = graph.next_name("KSTREAM-AGGREGATE-");
        let stores = vec![StoreDef { name: store, window_retention_ms: Some(windows.size_ms + windows.grace_ms) }];
        let node = graph.add(name, NodeKind::Processor { make, stores }, &[input]);
        KTable { graph: self.grouped.stream.graph.clone(), node, _types: PhantomData }
    }
}

/// Each key's count in each window: a timestamped window store, logged as
/// Kafka Streams logs one (key, window start and a sequence number of 0
/// as the changelog key).
struct WindowCountNode<K> {
    windows: TimeWindows,
    key_serde: SharedSerde<K>,
    table: HashMap<Windowed<K>, (i64, i64)>,
    /// The largest timestamp this operator has seen.
    stream_time: i64,
    /// Stream time when closed windows were last forgotten.
    purged_at: i64,
}

impl<K: Data + Hash + Eq> Node for WindowCountNode<K> {
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>) {
        self.stream_time = self.stream_time.max(item.timestamp);
        let key = typed::<K>(&item.key);
        let mut late = true;
        for window in self.windows.windows_for(item.timestamp) {
            if !self.windows.is_open(&window, self.stream_time) {
                continue;
            }
            late = false;
            let windowed = Windowed { key: key.clone(), window };
            let (count, timestamp) = self.table.get(&windowed).map_or((1, item.timestamp), |(c, ts)| (c + 1, (*ts).max(item.timestamp)));
            if let Some(key_bytes) = self.key_serde.serialize(key) {
                let store_key = [&key_bytes[..], &window.start.to_be_bytes(), &0i32.to_be_bytes()].concat();
                ctx.changes.push(StoreChange { key: store_key, value: with_timestamp(timestamp, Some(count.to_be_bytes().to_vec())), timestamp });
            }
            self.table.insert(windowed.clone(), (count, timestamp));
            ctx.forwarded.push(Item { key: Arc::new(windowed), value: Arc::new(count), timestamp });
        }
        if late {
            *ctx.dropped_late += 1;
        }
        // Windows closed for good are forgotten (Kafka Streams' retention
        // of size plus grace), at most once per window advance.
        if self.stream_time >= self.purged_at.saturating_add(self.windows.advance_ms) {
            let (windows, stream_time) = (self.windows, self.stream_time);
            self.table.retain(|w, _| windows.is_open(&w.window, stream_time));
            self.purged_at = stream_time;
        }
    }

    fn restore(&mut self, key: &[u8], value: Option<&[u8]>) {
        let Some(split) = key.len().checked_sub(12) else { return };
        let start = i64::from_be_bytes(key[split..split + 8].try_into().expect("8 bytes"));
        let Ok(inner) = self.key_serde.deserialize(Some(&key[..split])) else { return };
        let windowed = Windowed { key: inner, window: crate::window::Window { start, end: start + self.windows.size_ms } };
        match value.and_then(split_timestamp).and_then(|(ts, bytes)| Some((ts, i64::from_be_bytes(bytes.try_into().ok()?)))) {
            Some((timestamp, count)) => {
                self.stream_time = self.stream_time.max(timestamp);
                self.table.insert(windowed, (count, timestamp));
            }
            None => {
                self.table.remove(&windowed);
            }
        }
    }
}

/// A changelog stream of updates to a table, as Kafka Streams' `KTable`.
pub struct KTable<K, V> {
    graph: Rc<RefCell<Graph>>,
    node: usize,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: Data, V: Data> KTable<K, V> {
    /// The table's updates as a stream.
    pub fn to_stream(&self) -> KStream<K, V> {
        let make: MakeNode = Arc::new(|| Box::new(FnNode(|item: Item, out: &mut Vec<Item>| out.push(item))));
        let mut graph = self.graph.borrow_mut();
        let name = graph.next_name("KTABLE-TOSTREAM-");
        let node = graph.add(name, NodeKind::Processor { make, stores: Vec::new() }, &[self.node]);
        KStream { graph: self.graph.clone(), node, key_serde: None, _types: PhantomData }
    }
}
