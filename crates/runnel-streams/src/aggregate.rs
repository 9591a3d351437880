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
use crate::topology::{repartition_through, typed, Change, Data, Graph, Item, MakeNode, Node, NodeContext, NodeKind, SharedSerde, Value};
use crate::window::{SessionWindows, SlidingWindows, TimeWindows, Window};

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
        // Kafka Streams names the aggregation before its repartition nodes.
        let name = graph.next_name(prefix);
        let input = self.input(&mut graph, &store_name);
        let send_old = Arc::new(AtomicBool::new(false));
        let make: MakeNode = {
            let send_old = send_old.clone();
            Arc::new(move || Box::new(AggregateNode::<K, V, A> { store, fold: fold.clone(), send_old: send_old.load(Ordering::Relaxed) }))
        };
        let node = graph.add(name, NodeKind::Processor { make, stores: vec![store] }, &[input]);
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

    /// A windowed aggregation kept in a window store: windows of `size`
    /// ms, kept `retention` ms, final `grace` ms after they end (the
    /// `shape`); `make` builds the node, given its store and its
    /// send-old-values flag. The node is named before the repartition
    /// nodes, as Kafka Streams names them.
    fn window_store_fold<A: Data>(
        &self,
        prefix: &str,
        shape: (i64, i64, i64),
        aggregate_serde: SharedSerde<A>,
        make: impl FnOnce(usize, Arc<AtomicBool>) -> MakeNode,
    ) -> KTable<Windowed<K>, A> {
        let (size, retention, grace) = shape;
        let key_serde = self.key_serde.clone();
        let mut graph = self.stream.graph.borrow_mut();
        let store_name = graph.next_name(&format!("{prefix}STATE-STORE-"));
        let store =
            graph.add_store(store_name.clone(), Some(retention), |id| WindowStore::maker(id, size, retention, key_serde.clone(), aggregate_serde.clone()));
        let name = graph.next_name(prefix);
        let input = self.input(&mut graph, &store_name);
        let send_old = Arc::new(AtomicBool::new(false));
        let node = graph.add(name, NodeKind::Processor { make: make(store, send_old.clone()), stores: vec![store] }, &[input]);
        drop(graph);
        let getter: Getter<Windowed<K>, A> = Arc::new(move |stores, key| stores.get::<WindowStore<K, A>>(store).get(key).cloned());
        let windowed_key: SharedSerde<Windowed<K>> = Arc::new(TimeWindowedSerde::new(self.key_serde.clone(), size));
        KTable::windowed(&self.stream.graph, node, getter, store, (windowed_key, aggregate_serde), grace, send_old)
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

    /// Groups into sliding windows, for windowed aggregations.
    pub fn windowed_by_sliding(&self, windows: SlidingWindows) -> SlidingWindowedKStream<K, V> {
        let grouped = KGroupedStream {
            stream: self.stream.with_node(self.stream.node, Some(self.key_serde.clone())),
            key_serde: self.key_serde.clone(),
            repartition: self.repartition.clone(),
        };
        SlidingWindowedKStream { grouped, windows }
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
        let previous = store.load(key);
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
        let retention = windows.size_ms + windows.grace_ms;
        self.grouped.window_store_fold(prefix, (windows.size_ms, retention, windows.grace_ms), aggregate_serde, move |store, send_old| {
            Arc::new(move || Box::new(WindowAggregateNode::<K, V, A> { windows, store, fold: fold.clone(), send_old: send_old.load(Ordering::Relaxed) }))
        })
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
        let name = graph.next_name(prefix);
        let input = self.grouped.input(&mut graph, &store_name);
        let send_old = Arc::new(AtomicBool::new(false));
        let make: MakeNode = {
            let send_old = send_old.clone();
            Arc::new(move || {
                Box::new(SessionAggregateNode::<K, V, A> { windows, store, fold: fold.clone(), send_old: send_old.load(Ordering::Relaxed), stream_time: None })
            })
        };
        let node = graph.add(name, NodeKind::Processor { make, stores: vec![store] }, &[input]);
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
    /// The largest timestamp seen (after a restart, at first the store's
    /// stream time).
    stream_time: Option<i64>,
}

impl<K: Data + Hash + Eq, V: Data, A: Data> Node for SessionAggregateNode<K, V, A> {
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>) {
        let Some(value) = &item.value else { return };
        let (key, value, ts) = (typed::<K>(&item.key), typed::<V>(value), item.timestamp);
        let sessions = ctx.stores.get_mut::<SessionStore<K, A>>(self.store);
        let stream_time = self.stream_time.unwrap_or(sessions.observed).max(ts);
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

/// A grouped stream in sliding windows, as Kafka Streams'
/// `TimeWindowedKStream` over `SlidingWindows`.
pub struct SlidingWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SlidingWindows,
}

impl<K: Data + Hash + Eq, V: Data> SlidingWindowedKStream<K, V> {
    /// How many records each key has in each sliding window.
    pub fn count(&self) -> KTable<Windowed<K>, i64> {
        self.aggregate(|| 0i64, |_, _, count| count + 1, I64Serde)
    }

    /// Folds each key's records in each sliding window into an aggregate.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        add: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        aggregate_serde: impl Serde<Value = A>,
    ) -> KTable<Windowed<K>, A> {
        self.fold("KSTREAM-AGGREGATE-", aggregate_fold(init, add), Arc::new(aggregate_serde))
    }

    /// Combines each key's records in each sliding window with `reducer`.
    pub fn reduce(&self, reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static, value_serde: impl Serde<Value = V>) -> KTable<Windowed<K>, V> {
        self.fold("KSTREAM-REDUCE-", reduce_fold(reducer), Arc::new(value_serde))
    }

    fn fold<A: Data>(&self, prefix: &str, fold: Fold<K, V, A>, aggregate_serde: SharedSerde<A>) -> KTable<Windowed<K>, A> {
        let windows = self.windows;
        let shape = (windows.time_difference_ms, windows.retention_ms(), windows.grace_ms);
        self.grouped.window_store_fold(prefix, shape, aggregate_serde, move |store, send_old| {
            Arc::new(move || Box::new(SlidingAggregateNode::<K, V, A> { windows, store, fold: fold.clone(), send_old: send_old.load(Ordering::Relaxed) }))
        })
    }
}

/// A window's aggregate and the largest record timestamp in it; `None`
/// is a new window, starting from the initial aggregate.
type Slot<A> = Option<(A, i64)>;

/// Each key's aggregate in each sliding window, in a window store (Kafka
/// Streams' `KStreamSlidingWindowAggregate`). A record updates the windows
/// it falls in, and creates its own left window (ending at it) and right
/// window (starting just after it) when they hold records; the windows
/// of records before 0 + the time difference share one window from 0.
struct SlidingAggregateNode<K, V, A> {
    windows: SlidingWindows,
    store: usize,
    fold: Fold<K, V, A>,
    send_old: bool,
}

/// One record's work in a sliding aggregation.
struct SlidingStep<'a, 'c, K, V, A> {
    node: &'a SlidingAggregateNode<K, V, A>,
    ctx: &'a mut NodeContext<'c>,
    key: &'a K,
    value: &'a V,
    timestamp: i64,
    close: i64,
}

impl<K: Data + Hash + Eq, V: Data, A: Data> SlidingStep<'_, '_, K, V, A> {
    fn store(&mut self) -> &mut WindowStore<K, A> {
        self.ctx.stores.get_mut::<WindowStore<K, A>>(self.node.store)
    }

    fn window(&self, start: i64) -> Window {
        Window { start, end: start + self.node.windows.time_difference_ms }
    }

    /// This key's windows starting from `from` to `to`, oldest first.
    fn fetch(&mut self, from: i64, to: i64) -> Vec<(Window, A, i64)> {
        let key = self.key.clone();
        self.store().fetch(&key, from, to).into_iter().map(|(w, a, ts)| (w, a.clone(), ts)).collect()
    }

    /// Adds the record to a window (unless the window has closed) and
    /// forwards the new aggregate.
    fn update(&mut self, window: Window, slot: Slot<A>) {
        if window.end <= self.close {
            *self.ctx.dropped_late += 1;
            return;
        }
        let timestamp = slot.as_ref().map_or(self.timestamp, |(_, ts)| self.timestamp.max(*ts));
        let (next, old) = (self.node.fold)(self.key, self.value, slot.as_ref().map(|(a, _)| a));
        self.put(window, next, old.filter(|_| self.node.send_old), timestamp);
    }

    fn put(&mut self, window: Window, aggregate: A, old: Option<A>, timestamp: i64) {
        let windowed = Windowed { key: self.key.clone(), window };
        let changes = &mut *self.ctx.changes;
        self.ctx.stores.get_mut::<WindowStore<K, A>>(self.node.store).put(windowed.clone(), Some(aggregate.clone()), timestamp, changes);
        let change = Change { new: Some(Arc::new(aggregate)), old: old.map(|o| Arc::new(o) as Value) };
        self.ctx.forwarded.push(Item { key: Arc::new(windowed), value: Some(Arc::new(change)), timestamp });
    }

    /// The record's right window, holding what `right` holds (records
    /// after it), not the record itself.
    fn create_right_window(&mut self, right: Slot<A>) {
        if let Some((aggregate, timestamp)) = right.filter(|(_, ts)| *ts > self.timestamp) {
            let window = self.window(self.timestamp + 1);
            self.put(window, aggregate, None, timestamp);
        }
    }

    fn process(&mut self) {
        let (ts, diff) = (self.timestamp, self.node.windows.time_difference_ms);
        let (mut left, mut right): (Slot<A>, Slot<A>) = (None, None);
        let (mut left_created, mut right_created) = (false, false);
        let mut previous: Option<i64> = None;
        let mut starts = std::collections::HashSet::new();
        // Newest window first, as Kafka Streams walks them.
        for (window, aggregate, max_ts) in self.fetch((ts - 2 * diff).max(0), ts + 1).into_iter().rev() {
            starts.insert(window.start);
            let end = window.start + diff;
            if window.start == ts + 1 {
                right_created = true;
            } else if end > ts {
                if right.is_none() {
                    right = Some((aggregate.clone(), max_ts));
                }
                self.update(window, Some((aggregate, max_ts)));
            } else if end == ts {
                left_created = true;
                self.update(window, Some((aggregate, max_ts)));
                if max_ts < ts {
                    previous = Some(max_ts);
                } else {
                    return;
                }
            } else {
                left = Some((aggregate, max_ts));
                previous = Some(max_ts);
                break;
            }
        }
        if let Some(previous) = previous {
            let start = previous + 1;
            if !starts.contains(&start) && start + diff >= ts {
                self.update(self.window(start), None);
            }
        }
        if !left_created {
            let slot = if previous.is_some_and(|p| ts - diff <= p) { left.map(|(a, _)| (a, ts)) } else { None };
            self.update(self.window(ts - diff), slot);
        }
        if !right_created {
            self.create_right_window(right);
        }
    }

    /// A record before the time difference: its windows would start
    /// before 0, so it goes in the shared window from 0.
    fn process_early(&mut self) {
        let ts = self.timestamp;
        let (mut combined, mut right): (Option<(Window, A, i64)>, Slot<A>) = (None, None);
        let mut right_created = false;
        let mut previous = None;
        let mut starts = std::collections::HashSet::new();
        for (window, aggregate, max_ts) in self.fetch(0, ts + 1) {
            starts.insert(window.start);
            if window.start == 0 {
                if max_ts < ts {
                    previous = Some(max_ts);
                }
                combined = Some((window, aggregate, max_ts));
            } else if window.start <= ts {
                right = Some((aggregate.clone(), max_ts));
                self.update(window, Some((aggregate, max_ts)));
            } else if window.start == ts + 1 {
                right_created = true;
            }
        }
        if right.is_none() {
            right = combined.as_ref().filter(|(_, _, max_ts)| *max_ts > ts).map(|(_, a, max_ts)| (a.clone(), *max_ts));
        }
        if !right_created {
            self.create_right_window(right);
        }
        if let Some(previous) = previous {
            if !starts.contains(&(previous + 1)) {
                self.update(self.window(previous + 1), None);
            }
        }
        match combined {
            Some((window, aggregate, max_ts)) => self.update(window, Some((aggregate, max_ts))),
            None => self.update(self.window(0), None),
        }
    }
}

impl<K: Data + Hash + Eq, V: Data, A: Data> Node for SlidingAggregateNode<K, V, A> {
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>) {
        let Some(value) = &item.value else { return };
        let (key, value, timestamp) = (typed::<K>(&item.key), typed::<V>(value), item.timestamp);
        let store = ctx.stores.get_mut::<WindowStore<K, A>>(self.store);
        store.observe(timestamp);
        let close = store.observed.saturating_sub(self.windows.grace_ms);
        if timestamp + 1 + self.windows.time_difference_ms <= close {
            *ctx.dropped_late += 1;
            return;
        }
        let mut step = SlidingStep { node: self, ctx, key, value, timestamp, close };
        if timestamp < self.windows.time_difference_ms {
            step.process_early();
        } else {
            step.process();
        }
    }
}
