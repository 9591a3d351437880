//! The Processor API: your own node, record by record, with state stores
//! and punctuation, as Kafka Streams' `Processor` and `process()`.
//!
//! A processor sees each record of its stream, may read and write the key-
//! value stores it was connected to (logged to their changelogs like any
//! store), forwards any number of records downstream, and may ask to be
//! called back — punctuated — as stream time or wall-clock time passes.
//!
//! ```
//! use runnel_streams::processor::{Processor, ProcessorContext, Punctuation, StoreBuilder};
//! use runnel_streams::serde::{I64Serde, StringSerde};
//! use runnel_streams::{StreamsBuilder, TopologyTestDriver};
//!
//! /// Counts records per key, and every 10 s of stream time forwards each count.
//! struct Counter;
//!
//! impl Processor<String, String, String, i64> for Counter {
//!     fn process(&mut self, key: &String, _: &String, ctx: &mut ProcessorContext<'_, String, i64>) {
//!         let mut counts = ctx.key_value_store::<String, i64>("counts");
//!         let next = counts.get(key).map_or(1, |n| n + 1);
//!         counts.put(key.clone(), next);
//!     }
//!     fn punctuations(&self) -> Vec<Punctuation> {
//!         vec![Punctuation::stream_time(10_000)]
//!     }
//!     fn punctuate(&mut self, _: usize, _: i64, ctx: &mut ProcessorContext<'_, String, i64>) {
//!         let counts: Vec<(String, i64)> = ctx.key_value_store::<String, i64>("counts").all();
//!         for (key, count) in counts {
//!             ctx.forward(key, count);
//!         }
//!     }
//! }
//!
//! let builder = StreamsBuilder::new();
//! builder.add_state_store(StoreBuilder::key_value("counts", StringSerde, I64Serde));
//! builder.stream("rides", StringSerde, StringSerde).process(|| Counter, &["counts"]).to("counts", StringSerde, I64Serde);
//! let mut driver = TopologyTestDriver::new(builder.build());
//! let rides = driver.input_topic("rides", StringSerde, StringSerde);
//! driver.pipe(&rides, &"a".to_string(), &"ride".to_string(), 0);
//! driver.pipe(&rides, &"a".to_string(), &"ride".to_string(), 10_000);
//! let counts = driver.output_topic("counts", StringSerde, I64Serde);
//! let out: Vec<i64> = driver.read(&counts).unwrap().into_iter().map(|r| r.value).collect();
//! assert_eq!(out, [1, 2]);
//! ```

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::kstream::KStream;
use crate::serde::Serde;
use crate::store::{KeyValueStore, StoreChange};
use crate::topology::{item, typed, Data, Graph, Item, MakeNode, Node, NodeContext, SharedSerde, StreamsBuilder};

/// A callback a processor asks for, every `interval_ms` of stream time
/// (the largest record timestamp its task has seen) or of wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Punctuation {
    /// How often it is due, in milliseconds of its clock.
    pub interval_ms: i64,
    /// Which clock it follows.
    pub kind: PunctuationType,
}

/// Which clock a punctuation follows (Kafka Streams' `PunctuationType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PunctuationType {
    /// The largest record timestamp the task has seen.
    StreamTime,
    /// The system clock (in the test driver, its hand-advanced clock).
    WallClockTime,
}

impl Punctuation {
    /// Every `interval_ms` of stream time.
    pub fn stream_time(interval_ms: i64) -> Punctuation {
        Punctuation { interval_ms: interval_ms.max(1), kind: PunctuationType::StreamTime }
    }

    /// Every `interval_ms` of wall-clock time.
    pub fn wall_clock_time(interval_ms: i64) -> Punctuation {
        Punctuation { interval_ms: interval_ms.max(1), kind: PunctuationType::WallClockTime }
    }
}

/// Your own node: called with each record, and back for the punctuations
/// it asks for.
pub trait Processor<K, V, KO, VO>: Send + 'static {
    /// Handles one record (tombstones are not passed).
    fn process(&mut self, key: &K, value: &V, ctx: &mut ProcessorContext<'_, KO, VO>);

    /// Processes a record whose value no other node holds, so it can be
    /// moved rather than copied; by default, as [`Processor::process`].
    fn process_owned(&mut self, key: &K, value: V, ctx: &mut ProcessorContext<'_, KO, VO>) {
        self.process(key, &value, ctx);
    }

    /// The punctuations to schedule; [`Processor::punctuate`] is called
    /// with the index of the one that is due.
    fn punctuations(&self) -> Vec<Punctuation> {
        Vec::new()
    }

    /// Called when punctuation `which` is due, at `timestamp` (stream time
    /// or wall-clock time, by its kind).
    fn punctuate(&mut self, _which: usize, _timestamp: i64, _ctx: &mut ProcessorContext<'_, KO, VO>) {}
}

/// Where the input record being processed was read (Kafka Streams'
/// `RecordMetadata`): after a repartition, the repartition topic's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Its partition.
    pub partition: i32,
    /// Its offset (the test driver counts them per topic from 0).
    pub offset: i64,
}

/// A record's headers, read only when a processor asks for them.
pub(crate) trait ReadHeaders {
    /// The headers, in order: a key may repeat, a value may be null.
    fn read(&self) -> Vec<(String, Option<Vec<u8>>)>;
}

impl<H: rdkafka::message::Headers> ReadHeaders for H {
    fn read(&self) -> Vec<(String, Option<Vec<u8>>)> {
        self.iter().map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec))).collect()
    }
}

/// The input record being processed: where it was read, and its headers
/// (neither in a punctuation).
#[derive(Clone, Copy, Default)]
pub(crate) struct RecordContext<'r> {
    pub metadata: Option<RecordMetadata>,
    pub headers: Option<&'r dyn ReadHeaders>,
}

/// What a processor may do: forward records, and use its stores.
pub struct ProcessorContext<'a, KO, VO> {
    node: &'a mut NodeContext<'a>,
    stores: &'a [(String, usize)],
    timestamp: i64,
    _types: PhantomData<fn(KO, VO)>,
}

impl<'a, KO: Data, VO: Data> ProcessorContext<'a, KO, VO> {
    /// The timestamp of the record being processed (or of the
    /// punctuation); forwarded records carry it.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Where the record being processed was read; `None` in a
    /// punctuation.
    pub fn record_metadata(&self) -> Option<RecordMetadata> {
        self.node.record.metadata
    }

    /// The headers of the record being processed (Kafka Streams'
    /// `headers()`), in order: a key may repeat, a value may be null.
    /// Empty in a punctuation.
    pub fn headers(&self) -> Vec<(String, Option<Vec<u8>>)> {
        self.node.record.headers.map(ReadHeaders::read).unwrap_or_default()
    }

    /// Sends a record downstream with the current timestamp.
    pub fn forward(&mut self, key: KO, value: VO) {
        self.node.forwarded.push(item(key, value, self.timestamp));
    }

    /// Sends a record downstream with its own timestamp.
    pub fn forward_at(&mut self, key: KO, value: VO, timestamp: i64) {
        self.node.forwarded.push(item(key, value, timestamp));
    }

    /// The key-value store `name`, which the processor was connected to.
    ///
    /// # Panics
    /// If the processor was not connected to a store of that name and
    /// types: a mistake in the program, as in Kafka Streams.
    pub fn key_value_store<K: Data + Hash + Eq, V: Data>(&mut self, name: &str) -> KeyValueStoreMut<'_, K, V> {
        let id = self.stores.iter().find(|(n, _)| n == name).map(|(_, id)| *id).unwrap_or_else(|| panic!("the processor is not connected to store `{name}`"));
        KeyValueStoreMut { store: self.node.stores.get_mut::<KeyValueStore<K, V>>(id), changes: self.node.changes, timestamp: self.timestamp }
    }
}

/// A key-value store as a processor changes it: every change is logged.
pub struct KeyValueStoreMut<'a, K, V> {
    store: &'a mut KeyValueStore<K, V>,
    changes: &'a mut Vec<StoreChange>,
    timestamp: i64,
}

impl<K: Data + Hash + Eq, V: Data> KeyValueStoreMut<'_, K, V> {
    /// A key's value.
    pub fn get(&self, key: &K) -> Option<V> {
        self.store.get(key).map(|(v, _)| v)
    }

    /// Sets a key's value, stamped with the current timestamp.
    pub fn put(&mut self, key: K, value: V) {
        self.store.put(key, Some(value), self.timestamp, self.changes);
    }

    /// Deletes a key, logging the deletion; returns its value.
    pub fn delete(&mut self, key: &K) -> Option<V> {
        self.store.put(key.clone(), None, self.timestamp, self.changes).map(|(v, _)| v)
    }

    /// Every entry, copied out, in no particular order.
    pub fn all(&self) -> Vec<(K, V)> {
        self.store.all().into_iter().map(|(k, v, _)| (k, v)).collect()
    }
}

/// A store a program adds for its processors (Kafka Streams'
/// `StoreBuilder`).
pub struct StoreBuilder<K, V> {
    name: String,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
}

impl<K: Data + Hash + Eq, V: Data> StoreBuilder<K, V> {
    /// A key-value store, logged to `<application.id>-<name>-changelog`.
    pub fn key_value(name: &str, key_serde: impl Serde<Value = K>, value_serde: impl Serde<Value = V>) -> StoreBuilder<K, V> {
        StoreBuilder { name: name.to_string(), key_serde: Arc::new(key_serde), value_serde: Arc::new(value_serde) }
    }
}

impl StreamsBuilder {
    /// Adds a store that processors can be connected to by name.
    pub fn add_state_store<K: Data + Hash + Eq, V: Data>(&self, store: StoreBuilder<K, V>) {
        let (key_serde, value_serde) = (store.key_serde, store.value_serde);
        self.graph.borrow_mut().add_store(store.name, None, |id| KeyValueStore::maker(id, key_serde, value_serde));
    }
}

/// A processor as a node of the graph.
struct ProcessorNode<P, K, V, KO, VO> {
    processor: P,
    stores: Vec<(String, usize)>,
    _types: PhantomData<fn(K, V, KO, VO)>,
}

impl<P, K, V, KO, VO> Node for ProcessorNode<P, K, V, KO, VO>
where
    P: Processor<K, V, KO, VO>,
    K: Data,
    V: Data,
    KO: Data,
    VO: Data,
{
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>) {
        let Item { key, value, timestamp } = item;
        let Some(value) = value else { return };
        let key = typed::<K>(&key);
        match value.downcast::<V>().map(Arc::try_unwrap) {
            Ok(Ok(value)) => with_context(ctx, &self.stores, timestamp, |pctx| self.processor.process_owned(key, value, pctx)),
            Ok(Err(shared)) => with_context(ctx, &self.stores, timestamp, |pctx| self.processor.process(key, &shared, pctx)),
            Err(_) => unreachable!("the DSL's types guarantee each node gets the types it was built for"),
        }
    }

    fn punctuations(&self) -> Vec<Punctuation> {
        self.processor.punctuations()
    }

    fn punctuate(&mut self, which: usize, timestamp: i64, ctx: &mut NodeContext<'_>) {
        with_context(ctx, &self.stores, timestamp, |pctx| self.processor.punctuate(which, timestamp, pctx));
    }
}

/// Runs `f` with a processor's view of the node context.
fn with_context<KO: Data, VO: Data>(ctx: &mut NodeContext<'_>, stores: &[(String, usize)], timestamp: i64, f: impl FnOnce(&mut ProcessorContext<'_, KO, VO>)) {
    let mut node = NodeContext {
        forwarded: &mut *ctx.forwarded,
        stores: &mut *ctx.stores,
        globals: ctx.globals,
        changes: &mut *ctx.changes,
        dropped_late: &mut *ctx.dropped_late,
        record: ctx.record,
    };
    let mut pctx = ProcessorContext { node: &mut node, stores, timestamp, _types: PhantomData };
    f(&mut pctx);
}

impl<K: Data, V: Data> KStream<K, V> {
    /// Runs a processor of your own on every record (Kafka Streams'
    /// `process()`): `supplier` makes one per task; `stores` names the
    /// stores (added with [`StreamsBuilder::add_state_store`]) it may use.
    ///
    /// # Panics
    /// If a named store was not added.
    pub fn process<KO: Data, VO: Data, P: Processor<K, V, KO, VO>>(
        &self,
        supplier: impl Fn() -> P + Send + Sync + 'static,
        stores: &[&str],
    ) -> KStream<KO, VO> {
        let mut graph = self.graph.borrow_mut();
        let connected = connect(&graph, stores);
        let ids = connected.iter().map(|(_, id)| *id).collect();
        let make: MakeNode = Arc::new(move || {
            Box::new(ProcessorNode::<P, K, V, KO, VO> { processor: supplier(), stores: connected.clone(), _types: PhantomData }) as Box<dyn Node>
        });
        let node = graph.add_processor("KSTREAM-PROCESSOR-", make, ids, &[self.node]);
        drop(graph);
        self.with_node(node, None)
    }

    /// Runs a processor of your own that changes values only (Kafka
    /// Streams' `processValues()`): whatever key it forwards under, records
    /// keep the key they came with, so a grouping or join after it needs
    /// no repartitioning.
    ///
    /// # Panics
    /// If a named store was not added.
    pub fn process_values<VO: Data, P: Processor<K, V, K, VO>>(&self, supplier: impl Fn() -> P + Send + Sync + 'static, stores: &[&str]) -> KStream<K, VO> {
        let mut graph = self.graph.borrow_mut();
        let connected = connect(&graph, stores);
        let ids = connected.iter().map(|(_, id)| *id).collect();
        let make: MakeNode = Arc::new(move || {
            Box::new(FixedKeyNode(ProcessorNode::<P, K, V, K, VO> { processor: supplier(), stores: connected.clone(), _types: PhantomData })) as Box<dyn Node>
        });
        let node = graph.add_processor("KSTREAM-PROCESSVALUES-", make, ids, &[self.node]);
        drop(graph);
        self.with_node(node, self.key_serde.clone())
    }
}

/// The stores named for a processor, with their ids.
fn connect(graph: &Graph, stores: &[&str]) -> Vec<(String, usize)> {
    stores.iter().map(|name| (name.to_string(), graph.store_id(name).unwrap_or_else(|| panic!("no store `{name}` was added with add_state_store")))).collect()
}

/// A processor whose records keep their input's key.
struct FixedKeyNode<N>(N);

impl<N: Node> Node for FixedKeyNode<N> {
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>) {
        let (key, before) = (item.key.clone(), ctx.forwarded.len());
        self.0.process(item, ctx);
        for out in &mut ctx.forwarded[before..] {
            out.key = key.clone();
        }
    }

    fn punctuations(&self) -> Vec<Punctuation> {
        self.0.punctuations()
    }

    fn punctuate(&mut self, which: usize, timestamp: i64, ctx: &mut NodeContext<'_>) {
        self.0.punctuate(which, timestamp, ctx);
    }
}

/// Stream time and wall-clock punctuations of one task, due in order.
pub(crate) struct Punctuations {
    /// (node, which, schedule, next due time; `None` until the clock is
    /// first known).
    scheduled: Vec<(usize, usize, Punctuation, Option<i64>)>,
}

impl Punctuations {
    /// The punctuations the nodes ask for: stream-time ones first due with
    /// the first record, wall-clock ones an interval after `wall_clock`.
    pub fn new(nodes: &[Option<Box<dyn Node>>], wall_clock: i64) -> Punctuations {
        let scheduled = nodes
            .iter()
            .enumerate()
            .filter_map(|(id, node)| node.as_ref().map(|n| (id, n.punctuations())))
            .flat_map(|(id, schedules)| {
                schedules.into_iter().enumerate().map(move |(which, p)| {
                    let first = (p.kind == PunctuationType::WallClockTime).then(|| wall_clock + p.interval_ms);
                    (id, which, p, first)
                })
            })
            .collect();
        Punctuations { scheduled }
    }

    /// The punctuations of `kind` due at `now`, each once however many
    /// intervals passed, as Kafka Streams fires them; each is next due an
    /// interval after `now`. The first is due as soon as the clock is
    /// known.
    pub fn due(&mut self, kind: PunctuationType, now: i64) -> Vec<(usize, usize)> {
        let mut due = Vec::new();
        for (node, which, punctuation, next) in &mut self.scheduled {
            if punctuation.kind != kind {
                continue;
            }
            if next.is_none_or(|at| now >= at) {
                due.push((*node, *which));
                let from = next.unwrap_or(now);
                let missed = (now - from) / punctuation.interval_ms;
                *next = Some(from + (missed + 1) * punctuation.interval_ms);
            }
        }
        due
    }
}
