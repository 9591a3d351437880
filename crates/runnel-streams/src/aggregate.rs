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
use crate::serde::{I64Serde, Serde, SessionWindowedSerde, TimeWindowedSerde, Windowed};
use crate::store::{KeyValueStore, SessionStore, WindowStore};
use crate::table::{Getter, KTable};
use crate::topology::{repartition_through, typed, Change, Data, Graph, Item, MakeNode, Node, NodeContext, SharedSerde, Value};
use crate::window::{SessionWindows, TimeWindows, Window};

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

    /// Groups into sessions, for session-windowed aggregations.
    pub fn windowed_by_sessions(&self, windows: SessionWindows) -> SessionWindowedKStream<K, V> {
        let grouped = KGroupedStream {
            stream: self.stream.with_node(self.stream.node, Some(self.key_serde.clone())),
            key_serde: self.key_serde.clone(),
            repartition: self.repartition.clone(),
        };
        SessionWindowedKStream { grouped, windows }
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
        let getter: Getter<Windowed<K>, A> = Arc::new(move |stores, key| stores.get::<WindowStore<K, A>>(store).get(key).cloned());
        let windowed_key: SharedSerde<Windowed<K>> = Arc::new(TimeWindowedSerde::new(self.grouped.key_serde.clone(), windows.size_ms));
        KTable::windowed(&self.grouped.stream.graph, node, getter, store, (windowed_key, aggregate_serde), windows.grace_ms, send_old)
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

/// A grouped stream in session windows, as Kafka Streams'
/// `SessionWindowedKStream`.
pub struct SessionWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SessionWindows,
}

/// How a session aggregation folds: the initial aggregate (`None` for a
/// reduce), adding a record, and merging a session into another.
struct SessionFold<K, V, A> {
    init: Arc<dyn Fn() -> Option<A> + Send + Sync>,
    add: Adder<K, V, A>,
    merge: SessionMerger<K, A>,
}

/// Merges a session's aggregate into the one built so far.
type SessionMerger<K, A> = Arc<dyn Fn(&K, Option<A>, A) -> A + Send + Sync>;

/// Adds a record to an aggregate (`None`: there is none yet).
pub(crate) type Adder<K, V, A> = Arc<dyn Fn(&K, &V, Option<A>) -> A + Send + Sync>;

impl<K, V, A> Clone for SessionFold<K, V, A> {
    fn clone(&self) -> Self {
        SessionFold { init: self.init.clone(), add: self.add.clone(), merge: self.merge.clone() }
    }
}

impl<K: Data + Hash + Eq, V: Data> SessionWindowedKStream<K, V> {
    /// How many records each key has in each session. A record that
    /// bridges sessions merges them: the merged-away sessions are deleted
    /// (tombstones downstream) and the merged one emitted.
    pub fn count(&self) -> KTable<Windowed<K>, i64> {
        self.aggregate(|| 0i64, |_, _, n| n + 1, |_, a, b| a + b, I64Serde)
    }

    /// Folds each key's records in each session; `merge` combines two
    /// sessions' aggregates when a record bridges them.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        add: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        merge: impl Fn(&K, A, A) -> A + Send + Sync + 'static,
        aggregate_serde: impl Serde<Value = A>,
    ) -> KTable<Windowed<K>, A> {
        let init = Arc::new(init);
        let fold = SessionFold {
            init: Arc::new({
                let init = init.clone();
                move || Some(init())
            }),
            add: Arc::new(move |k, v, agg: Option<A>| add(k, v, agg.unwrap_or_else(|| init()))),
            merge: Arc::new(move |k, agg: Option<A>, other| match agg {
                Some(agg) => merge(k, agg, other),
                None => other,
            }),
        };
        self.fold("KSTREAM-AGGREGATE-", fold, Arc::new(aggregate_serde))
    }

    /// Combines each key's records in each session with `reducer`.
    pub fn reduce(&self, reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static, value_serde: impl Serde<Value = V>) -> KTable<Windowed<K>, V> {
        let reducer = Arc::new(reducer);
        let fold = SessionFold {
            init: Arc::new(|| None),
            add: Arc::new({
                let reducer = reducer.clone();
                move |_, v: &V, agg: Option<V>| agg.map_or_else(|| v.clone(), |agg| reducer(&agg, v))
            }),
            merge: Arc::new(move |_, agg: Option<V>, other| agg.map_or_else(|| other.clone(), |agg| reducer(&agg, &other))),
        };
        self.fold("KSTREAM-REDUCE-", fold, Arc::new(value_serde))
    }

    fn fold<A: Data>(&self, prefix: &str, fold: SessionFold<K, V, A>, aggregate_serde: SharedSerde<A>) -> KTable<Windowed<K>, A> {
        let windows = self.windows;
        let key_serde = self.grouped.key_serde.clone();
        let mut graph = self.grouped.stream.graph.borrow_mut();
        let store_name = graph.next_name(&format!("{prefix}STATE-STORE-"));
        let retention = windows.retention_ms();
        let store = graph.add_store(store_name.clone(), Some(retention), |id| SessionStore::maker(id, retention, key_serde.clone(), aggregate_serde.clone()));
        let input = self.grouped.input(&mut graph, &store_name);
        let send_old = Arc::new(AtomicBool::new(false));
        let make: MakeNode = {
            let send_old = send_old.clone();
            Arc::new(move || {
                Box::new(SessionAggregateNode::<K, V, A> { windows, store, fold: fold.clone(), send_old: send_old.load(Ordering::Relaxed), stream_time: None })
            })
        };
        let node = graph.add_processor(prefix, make, vec![store], &[input]);
        drop(graph);
        let getter: Getter<Windowed<K>, A> = Arc::new(move |stores, key| {
            let sessions = stores.get::<SessionStore<K, A>>(store);
            sessions.get(key).map(|agg| (agg.clone(), key.window.end))
        });
        let windowed_key: SharedSerde<Windowed<K>> = Arc::new(SessionWindowedSerde(self.grouped.key_serde.clone()));
        // A session's result can change until a gap plus the grace period
        // after its end.
        let settled_after = windows.gap_ms + windows.grace_ms;
        KTable::windowed(&self.grouped.stream.graph, node, getter, store, (windowed_key, aggregate_serde), settled_after, send_old)
    }
}

/// Each key's sessions, in a session store (Kafka Streams'
/// `KStreamSessionWindowAggregate`). Updates carry their session's end as
/// timestamp.
struct SessionAggregateNode<K, V, A> {
    windows: SessionWindows,
    store: usize,
    fold: SessionFold<K, V, A>,
    send_old: bool,
    /// The largest timestamp seen (after a restart, at first the latest
    /// session end the store holds).
    stream_time: Option<i64>,
}

impl<K: Data + Hash + Eq, V: Data, A: Data> Node for SessionAggregateNode<K, V, A> {
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>) {
        let Some(value) = &item.value else { return };
        let (key, value, ts) = (typed::<K>(&item.key), typed::<V>(value), item.timestamp);
        let sessions = ctx.stores.get_mut::<SessionStore<K, A>>(self.store);
        let stream_time = self.stream_time.unwrap_or_else(|| sessions.find(key, i64::MIN, i64::MAX).last().map_or(i64::MIN, |(w, _)| w.end)).max(ts);
        self.stream_time = Some(stream_time);
        // A session can still grow by a gap past its end, so it closes a
        // gap plus the grace period after its end, as in Kafka Streams.
        let close = stream_time.saturating_sub(self.windows.grace_ms).saturating_sub(self.windows.gap_ms);
        let found = sessions.find(key, ts.saturating_sub(self.windows.gap_ms), ts.saturating_add(self.windows.gap_ms));
        let new_window = Window { start: ts, end: ts };
        let (mut merged, mut aggregate) = (new_window, (self.fold.init)());
        for (window, session) in &found {
            aggregate = Some((self.fold.merge)(key, aggregate, session.clone()));
            merged = Window { start: merged.start.min(window.start), end: merged.end.max(window.end) };
        }
        if merged.end < close {
            *ctx.dropped_late += 1;
            return;
        }
        if merged != new_window {
            for (window, session) in found {
                let windowed = Windowed { key: key.clone(), window };
                sessions.put(&windowed, None, window.end, ctx.changes);
                let old = self.send_old.then(|| Arc::new(session) as Value);
                ctx.forwarded.push(Item { key: Arc::new(windowed), value: Some(Arc::new(Change { new: None, old })), timestamp: window.end });
            }
        }
        let aggregate = (self.fold.add)(key, value, aggregate);
        let windowed = Windowed { key: key.clone(), window: merged };
        sessions.put(&windowed, Some(aggregate.clone()), merged.end, ctx.changes);
        ctx.forwarded.push(Item {
            key: Arc::new(windowed),
            value: Some(Arc::new(Change { new: Some(Arc::new(aggregate)), old: None })),
            timestamp: merged.end,
        });
    }
}
