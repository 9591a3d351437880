//! Stream–stream joins within a time window, and the repartitioning a join
//! needs when a side's key has changed since its source.
//!
//! As in Kafka Streams, each side keeps its records in a window store for
//! the join window's reach plus grace; a record joins every record of the
//! other side's store with the same key within the window, the result
//! carrying the later of the two timestamps. A record already out of its
//! side's retention is not kept (and counted as dropped), but still joins
//! what the other side holds, as in Kafka Streams.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use crate::kstream::{KStream, Tombstones};
use crate::serde::Serde;
use crate::topology::{item, typed, Data, Item, MakeNode, Node, NodeContext, NodeKind};
use crate::window::JoinWindows;

/// The serdes a join needs: for the key, and for each side's values (to
/// repartition a side whose key changed).
pub struct StreamJoined<KS, VS, VS2> {
    pub key: KS,
    pub value: VS,
    pub other_value: VS2,
}

impl<KS, VS, VS2> StreamJoined<KS, VS, VS2> {
    pub fn with(key: KS, value: VS, other_value: VS2) -> Self {
        StreamJoined { key, value, other_value }
    }
}

/// A record of either side, on its way into the join.
enum Side<V, V2> {
    Left(V),
    Right(V2),
}

impl<K: Data + Hash + Eq, V: Data> KStream<K, V> {
    /// Joins each record with the other stream's records of the same key
    /// within `windows` (inner join): `joiner` makes each pair's value.
    /// A side whose key changed since its source is first repartitioned
    /// through `<application.id>-<node>-repartition`, so equal keys meet
    /// in the same task.
    pub fn join<V2: Data, VR: Data, KS, VS, VS2>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&V, &V2) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        serdes: StreamJoined<KS, VS, VS2>,
    ) -> KStream<K, VR>
    where
        KS: Serde<Value = K>,
        VS: Serde<Value = V>,
        VS2: Serde<Value = V2>,
    {
        let key_serde = Arc::new(serdes.key);
        let (this_name, other_name) = {
            let graph = self.graph.borrow();
            (graph.node_name(self.node), graph.node_name(other.node))
        };
        let left = self.repartitioned(key_serde.clone(), Arc::new(serdes.value), &this_name);
        let right = other.repartitioned(key_serde.clone(), Arc::new(serdes.other_value), &other_name);
        let left = left.then::<K, V>("KSTREAM-WINDOWED-", left.key_serde.clone(), Tombstones::Drop, |k, v, ts, out| out.push(item(k.clone(), v.clone(), ts)));
        let right =
            right.then::<K, V2>("KSTREAM-WINDOWED-", right.key_serde.clone(), Tombstones::Drop, |k, v, ts, out| out.push(item(k.clone(), v.clone(), ts)));
        let this = left.then::<K, Arc<Side<V, V2>>>("KSTREAM-JOINTHIS-", None, Tombstones::Drop, |k, v, ts, out| {
            out.push(item(k.clone(), Arc::new(Side::<V, V2>::Left(v.clone())), ts))
        });
        let that = right.then::<K, Arc<Side<V, V2>>>("KSTREAM-JOINOTHER-", None, Tombstones::Drop, |k, v, ts, out| {
            out.push(item(k.clone(), Arc::new(Side::<V, V2>::Right(v.clone())), ts))
        });
        let joiner = Arc::new(joiner);
        let make: MakeNode =
            Arc::new(move || Box::new(JoinNode::<K, V, V2, _> { windows, left: SideStore::new(), right: SideStore::new(), joiner: joiner.clone() }));
        let mut graph = self.graph.borrow_mut();
        let name = graph.next_name("KSTREAM-MERGE-");
        let node = graph.add(name, NodeKind::Processor { make, stores: Vec::new() }, &[this.node, that.node]);
        drop(graph);
        self.with_node(node, Some(key_serde as crate::topology::SharedSerde<K>))
    }
}

/// One side's records that may still meet a partner, by key: Kafka
/// Streams' in-memory window store with duplicates retained. It keeps a
/// record while its timestamp is within the retention (the join window's
/// reach plus grace) of the newest timestamp it has seen.
struct SideStore<K, V> {
    records: HashMap<K, Vec<(i64, V)>>,
    /// The newest timestamp put into this store.
    observed: i64,
}

impl<K: Hash + Eq, V> SideStore<K, V> {
    fn new() -> Self {
        SideStore { records: HashMap::new(), observed: i64::MIN }
    }

    /// Keeps a record, unless it is already out of retention; then it is
    /// dropped (and still joins what the other side holds).
    fn put(&mut self, key: K, timestamp: i64, value: V, retention: i64) -> bool {
        self.observed = self.observed.max(timestamp);
        if timestamp <= self.observed.saturating_sub(retention) {
            return false;
        }
        self.records.entry(key).or_default().push((timestamp, value));
        if self.records.len() > 1 && timestamp == self.observed {
            let oldest = self.observed.saturating_sub(retention);
            self.records.retain(|_, kept| {
                kept.retain(|(t, _)| *t > oldest);
                !kept.is_empty()
            });
        }
        true
    }

    /// A key's records from `from` to `to` (inclusive) still in retention,
    /// oldest first; records with equal timestamps in the order put.
    fn fetch(&self, key: &K, from: i64, to: i64, retention: i64) -> Vec<&(i64, V)> {
        let from = from.max(self.observed.saturating_sub(retention).saturating_add(1));
        let mut found: Vec<&(i64, V)> = self.records.get(key).map(|r| r.iter().filter(|(t, _)| from <= *t && *t <= to).collect()).unwrap_or_default();
        found.sort_by_key(|(t, _)| *t);
        found
    }
}

/// Both sides' window stores, joined as records arrive.
struct JoinNode<K, V, V2, F> {
    windows: JoinWindows,
    left: SideStore<K, V>,
    right: SideStore<K, V2>,
    joiner: F,
}

impl<K, V, V2, VR, F> Node for JoinNode<K, V, V2, Arc<F>>
where
    K: Data + Hash + Eq,
    V: Data,
    V2: Data,
    VR: Data,
    F: Fn(&V, &V2) -> VR + Send + Sync,
{
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>) {
        let key = typed::<K>(&item.key);
        let Some(value) = &item.value else { return };
        let side = typed::<Arc<Side<V, V2>>>(value);
        let t = item.timestamp;
        let retention = self.windows.retention_ms();
        let (before, after) = (self.windows.before_ms, self.windows.after_ms);
        match side.as_ref() {
            Side::Left(v) => {
                if !self.left.put(key.clone(), t, v.clone(), retention) {
                    *ctx.dropped_late += 1;
                }
                for (t2, v2) in self.right.fetch(key, (t - before).max(0), (t + after).max(0), retention) {
                    ctx.forwarded.push(item_of(key, (self.joiner)(v, v2), t.max(*t2)));
                }
            }
            Side::Right(v2) => {
                if !self.right.put(key.clone(), t, v2.clone(), retention) {
                    *ctx.dropped_late += 1;
                }
                for (t1, v) in self.left.fetch(key, (t - after).max(0), (t + before).max(0), retention) {
                    ctx.forwarded.push(item_of(key, (self.joiner)(v, v2), t.max(*t1)));
                }
            }
        }
    }
}

fn item_of<K: Data, VR: Data>(key: &K, value: VR, timestamp: i64) -> Item {
    item(key.clone(), value, timestamp)
}
