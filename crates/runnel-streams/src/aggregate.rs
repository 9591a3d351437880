//! Grouped streams and their aggregations — `count`, `reduce` and
//! `aggregate`, over all time or in time windows — each keeping its state
//! in a store logged to a changelog, and emitting a table.
//!
//! As in Kafka Streams, records with a null value are skipped, each update
//! carries the larger of the record's timestamp and the previous update's,
//! and a record whose windows have all closed is dropped and counted.

use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::kstream::KStream;
use crate::serde::{I64Serde, Serde, Windowed};
use crate::store::{KeyValueStore, WindowStore};
use crate::table::KTable;
use crate::topology::{repartition_through, typed, Change, Data, Graph, Item, MakeNode, Node, NodeContext, SharedSerde, Value};
use crate::window::TimeWindows;

/// A stream grouped by key, as Kafka Streams' `KGroupedStream`.
pub struct KGroupedStream<K, V> {
    pub(crate) stream: KStream<K, V>,
    pub(crate) key_serde: SharedSerde<K>,
    /// Set when the key changed since the source: the value serde the
    /// records are repartitioned with before they are aggregated.
    pub(crate) repartition: Option<SharedSerde<V>>,
}

/// How an aggregation folds a record into a key's aggregate: from the
/// previous aggregate (`None` for a new key), the new one and the "old"
/// value forwarded with it (for an `aggregate`, the initial value when
/// the key is new, as Kafka Streams forwards it).
type Fold<K, V, A> = Arc<dyn Fn(&K, &V, Option<&A>) -> (A, Option<A>) + Send + Sync>;

fn aggregate_fold<K, V, A: Data>(init: impl Fn() -> A + Send + Sync + 'static, add: impl Fn(&K, &V, A) -> A + Send + Sync + 'static) -> Fold<K, V, A> {
    Arc::new(move |k, v, previous| {
        let old = previous.cloned().unwrap_or_else(&init);
        (add(k, v, old.clone()), Some(old))
    })
}

fn reduce_fold<K, V: Data>(reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static) -> Fold<K, V, V> {
    Arc::new(move |_, v, previous| match previous {
        Some(aggregate) => (reducer(aggregate, v), Some(aggregate.clone())),
        None => (v.clone(), None),
    })
}

impl<K: Data + Hash + Eq, V: Data> KGroupedStream<K, V> {
    /// How many records each key has had: a table updated, and emitted,
    /// on every record.
    pub fn count(&self) -> KTable<K, i64> {
        self.aggregate(|| 0i64, |_, _, count| count + 1, I64Serde)
    }

    /// Folds each key's records into an aggregate, starting from `init`;
    /// `aggregate_serde` writes it to the store's changelog.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        add: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        aggregate_serde: impl Serde<Value = A>,
    ) -> KTable<K, A> {
        self.fold("KSTREAM-AGGREGATE-", aggregate_fold(init, add), Arc::new(aggregate_serde))
    }

    /// Combines each key's records with `reducer` (the first record of a
    /// key is its first aggregate); `value_serde` writes the aggregate to
    /// the store's changelog.
    pub fn reduce(&self, reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static, value_serde: impl Serde<Value = V>) -> KTable<K, V> {
        self.fold("KSTREAM-REDUCE-", reduce_fold(reducer), Arc::new(value_serde))
    }

    fn fold<A: Data>(&self, prefix: &str, fold: Fold<K, V, A>, aggregate_serde: SharedSerde<A>) -> KTable<K, A> {
        let key_serde = self.key_serde.clone();
        let mut graph = self.stream.graph.borrow_mut();
        let store_name = graph.next_name(&format!("{prefix}STATE-STORE-"));
        let store = graph.add_store(store_name.clone(), None, |id| KeyValueStore::maker(id, key_serde.clone(), aggregate_serde.clone()));
        let input = self.input(&mut graph, &store_name);
        let send_old = Arc::new(AtomicBool::new(false));
        let make: MakeNode = {
            let send_old = send_old.clone();
            Arc::new(move || Box::new(AggregateNode::<K, V, A> { store, fold: fold.clone(), send_old: send_old.load(Ordering::Relaxed) }))
        };
        let node = graph.add_processor(prefix, make, vec![store], &[input]);
        drop(graph);
        KTable::stored(&self.stream.graph, node, Some(self.key_serde.clone()), Some(aggregate_serde), store, send_old)
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
            stream: self.stream.with_node(self.stream.node, Some(self.key_serde.clone())),
            key_serde: self.key_serde.clone(),
            repartition: self.repartition.clone(),
        };
        TimeWindowedKStream { grouped, windows }
    }
}

/// Each key's aggregate, in a timestamped key-value store.
struct AggregateNode<K, V, A> {
    store: usize,
    fold: Fold<K, V, A>,
    send_old: bool,
}

impl<K: Data + Hash + Eq, V: Data, A: Data> Node for AggregateNode<K, V, A> {
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>) {
        let Some(value) = &item.value else { return };
        let key = typed::<K>(&item.key);
        let store = ctx.stores.get_mut::<KeyValueStore<K, A>>(self.store);
        let previous = store.get(key);
        let timestamp = previous.map_or(item.timestamp, |(_, ts)| (*ts).max(item.timestamp));
        let (next, old) = (self.fold)(key, typed::<V>(value), previous.map(|(a, _)| a));
        store.put(key.clone(), Some(next.clone()), timestamp, ctx.changes);
        let old = old.filter(|_| self.send_old).map(|o| Arc::new(o) as Value);
        ctx.forwarded.push(Item { key: item.key, value: Some(Arc::new(Change { new: Some(Arc::new(next)), old })), timestamp });
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
    /// update.
    pub fn count(&self) -> KTable<Windowed<K>, i64> {
        self.aggregate(|| 0i64, |_, _, count| count + 1, I64Serde)
    }

    /// Folds each key's records in each window into an aggregate.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        add: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        aggregate_serde: impl Serde<Value = A>,
    ) -> KTable<Windowed<K>, A> {
        self.fold("KSTREAM-AGGREGATE-", aggregate_fold(init, add), Arc::new(aggregate_serde))
    }

    /// Combines each key's records in each window with `reducer`.
    pub fn reduce(&self, reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static, value_serde: impl Serde<Value = V>) -> KTable<Windowed<K>, V> {
        self.fold("KSTREAM-REDUCE-", reduce_fold(reducer), Arc::new(value_serde))
    }

    fn fold<A: Data>(&self, prefix: &str, fold: Fold<K, V, A>, aggregate_serde: SharedSerde<A>) -> KTable<Windowed<K>, A> {
        let windows = self.windows;
        let key_serde = self.grouped.key_serde.clone();
        let retention = windows.size_ms + windows.grace_ms;
        let mut graph = self.grouped.stream.graph.borrow_mut();
        let store_name = graph.next_name(&format!("{prefix}STATE-STORE-"));
        let store = graph.add_store(store_name.clone(), Some(retention), |id| {
            WindowStore::maker(id, windows.size_ms, retention, key_serde.clone(), aggregate_serde.clone())
        });
        let input = self.grouped.input(&mut graph, &store_name);
        let send_old = Arc::new(AtomicBool::new(false));
        let make: MakeNode = {
            let send_old = send_old.clone();
            Arc::new(move || Box::new(WindowAggregateNode::<K, V, A> { windows, store, fold: fold.clone(), send_old: send_old.load(Ordering::Relaxed) }))
        };
        let node = graph.add_processor(prefix, make, vec![store], &[input]);
        drop(graph);
        KTable::windowed(&self.grouped.stream.graph, node, store, send_old)
    }
}

/// Each key's aggregate in each window, in a timestamped window store.
struct WindowAggregateNode<K, V, A> {
    windows: TimeWindows,
    store: usize,
    fold: Fold<K, V, A>,
    send_old: bool,
}

impl<K: Data + Hash + Eq, V: Data, A: Data> Node for WindowAggregateNode<K, V, A> {
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>) {
        let Some(value) = &item.value else { return };
        let (key, value) = (typed::<K>(&item.key), typed::<V>(value));
        let store = ctx.stores.get_mut::<WindowStore<K, A>>(self.store);
        store.observe(item.timestamp);
        let stream_time = store.observed;
        let mut late = true;
        for window in self.windows.windows_for(item.timestamp) {
            if !self.windows.is_open(&window, stream_time) {
                continue;
            }
            late = false;
            let windowed = Windowed { key: key.clone(), window };
            let previous = store.get(&windowed);
            let timestamp = previous.map_or(item.timestamp, |(_, ts)| (*ts).max(item.timestamp));
            let (next, old) = (self.fold)(key, value, previous.map(|(a, _)| a));
            store.put(windowed.clone(), Some(next.clone()), timestamp, ctx.changes);
            let old = old.filter(|_| self.send_old).map(|o| Arc::new(o) as Value);
            ctx.forwarded.push(Item { key: Arc::new(windowed), value: Some(Arc::new(Change { new: Some(Arc::new(next)), old })), timestamp });
        }
        if late {
            *ctx.dropped_late += 1;
        }
    }
}
