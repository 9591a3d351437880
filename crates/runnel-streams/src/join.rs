//! Stream–stream joins within a time window, and the repartitioning a join
//! needs when a side's key has changed since its source.
//!
//! As in Kafka Streams, each side keeps its records in a window store for
//! the join window's reach plus grace; a record joins every record of the
//! other side's store with the same key within the window, the result
//! carrying the later of the two timestamps. A record already out of its
//! side's retention is not kept (and counted as dropped), but still joins
//! what the other side holds, as in Kafka Streams. In left and outer
//! joins, a record that finds no partner waits until its window closes and
//! is then joined with `None`, unless a partner arrived in the meantime.

use std::hash::Hash;
use std::sync::Arc;

use crate::kstream::{KStream, Tombstones};
use crate::serde::Serde;
use crate::store::{JoinSide as Side, JoinWindowStore, OuterJoinBuffer};
use crate::topology::{item, typed, Data, Item, MakeNode, Node, NodeContext, NodeKind, SharedSerde};
use crate::window::JoinWindows;

/// The serdes a join needs: for the key, and for each side's values (to
/// repartition a side whose key changed).
pub struct StreamJoined<KS, VS, VS2> {
    /// The key's serde.
    pub key: KS,
    /// This stream's value serde.
    pub value: VS,
    /// The other stream's value serde.
    pub other_value: VS2,
}

impl<KS, VS, VS2> StreamJoined<KS, VS, VS2> {
    /// The serdes of a join (Kafka Streams' `StreamJoined.with`).
    pub fn with(key: KS, value: VS, other_value: VS2) -> Self {
        StreamJoined { key, value, other_value }
    }
}

/// Which sides of a stream–stream join emit a record that found no
/// partner.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outer {
    None,
    Left,
    Both,
}

/// A full-outer joiner over both sides' values (`None`: no partner).
type StreamJoiner<V, V2, VR> = Arc<dyn Fn(Option<&V>, Option<&V2>) -> VR + Send + Sync>;

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
        let joiner: StreamJoiner<V, V2, VR> = Arc::new(move |a, b| joiner(a.expect("an inner join has both sides"), b.expect("an inner join has both sides")));
        self.join_streams(other, Outer::None, joiner, windows, serdes)
    }

    /// Joins each record with the other stream's records of the same key
    /// within `windows`; a record of this stream that finds none is joined
    /// with `None` once its window has closed (stream time past its
    /// timestamp plus the window's reach and grace), as Kafka Streams does
    /// since it stopped emitting such results early.
    pub fn left_join<V2: Data, VR: Data, KS, VS, VS2>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&V, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        serdes: StreamJoined<KS, VS, VS2>,
    ) -> KStream<K, VR>
    where
        KS: Serde<Value = K>,
        VS: Serde<Value = V>,
        VS2: Serde<Value = V2>,
    {
        let joiner: StreamJoiner<V, V2, VR> = Arc::new(move |a, b| joiner(a.expect("a left join has the left side"), b));
        self.join_streams(other, Outer::Left, joiner, windows, serdes)
    }

    /// Joins the records of both streams within `windows`; a record of
    /// either side that finds no partner is joined with `None` once its
    /// window has closed.
    pub fn outer_join<V2: Data, VR: Data, KS, VS, VS2>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(Option<&V>, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        serdes: StreamJoined<KS, VS, VS2>,
    ) -> KStream<K, VR>
    where
        KS: Serde<Value = K>,
        VS: Serde<Value = V>,
        VS2: Serde<Value = V2>,
    {
        self.join_streams(other, Outer::Both, Arc::new(joiner), windows, serdes)
    }

    fn join_streams<V2: Data, VR: Data, KS, VS, VS2>(
        &self,
        other: &KStream<K, V2>,
        outer: Outer,
        joiner: StreamJoiner<V, V2, VR>,
        windows: JoinWindows,
        serdes: StreamJoined<KS, VS, VS2>,
    ) -> KStream<K, VR>
    where
        KS: Serde<Value = K>,
        VS: Serde<Value = V>,
        VS2: Serde<Value = V2>,
    {
        let key_serde: SharedSerde<K> = Arc::new(serdes.key);
        let (value_serde, other_value_serde): (SharedSerde<V>, SharedSerde<V2>) = (Arc::new(serdes.value), Arc::new(serdes.other_value));
        let (this_name, other_name) = {
            let graph = self.graph.borrow();
            (graph.node_name(self.node), graph.node_name(other.node))
        };
        let left = self.repartitioned(key_serde.clone(), value_serde.clone(), &this_name);
        let right = other.repartitioned(key_serde.clone(), other_value_serde.clone(), &other_name);
        let left = left.then::<K, V>("KSTREAM-WINDOWED-", left.key_serde.clone(), Tombstones::Drop, |record, _, _, out| out.push(record.clone()));
        let right = right.then::<K, V2>("KSTREAM-WINDOWED-", right.key_serde.clone(), Tombstones::Drop, |record, _, _, out| out.push(record.clone()));
        // Named as Kafka Streams names the sides of each kind of join.
        let this_prefix = if outer == Outer::Both { "KSTREAM-OUTERTHIS-" } else { "KSTREAM-JOINTHIS-" };
        let other_prefix = if outer == Outer::None { "KSTREAM-JOINOTHER-" } else { "KSTREAM-OUTEROTHER-" };
        let this = left.then::<K, Arc<Side<V, V2>>>(this_prefix, None, Tombstones::Drop, |record, _, v, out| {
            out.push(record.with_value(Arc::new(Side::<V, V2>::Left(v.clone()))))
        });
        let that = right.then::<K, Arc<Side<V, V2>>>(other_prefix, None, Tombstones::Drop, |record, _, v, out| {
            out.push(record.with_value(Arc::new(Side::<V, V2>::Right(v.clone()))))
        });
        // Each side's window store, logged to a changelog named after the
        // side's node, as Kafka Streams names them.
        let mut graph = self.graph.borrow_mut();
        let retention = windows.retention_ms();
        let (this_store, other_store) = (format!("{}-store", graph.node_name(this.node)), format!("{}-store", graph.node_name(that.node)));
        let left_store = graph.add_store(this_store, Some(retention), |id| JoinWindowStore::maker(id, retention, key_serde.clone(), value_serde.clone()));
        let right_store =
            graph.add_store(other_store, Some(retention), |id| JoinWindowStore::maker(id, retention, key_serde.clone(), other_value_serde.clone()));
        // Left and outer joins keep unmatched records in a store shared by
        // both sides, numbered after this side's join node.
        let buffer = (outer != Outer::None).then(|| {
            let this_name = graph.node_name(this.node);
            let number = this_name.rsplit('-').next().unwrap_or_default();
            graph.add_store(format!("KSTREAM-OUTERSHARED-{number}-store"), None, |id| {
                OuterJoinBuffer::maker(id, key_serde.clone(), value_serde.clone(), other_value_serde.clone())
            })
        });
        let make: MakeNode = {
            let key_serde = key_serde.clone();
            Arc::new(move || {
                Box::new(JoinNode::<K, V, V2, VR> {
                    windows,
                    outer,
                    left: left_store,
                    right: right_store,
                    buffer,
                    stream_time: i64::MIN,
                    key_serde: key_serde.clone(),
                    joiner: joiner.clone(),
                })
            })
        };
        // Described as Kafka Streams describes them: each side's windowing
        // node owns its store, and each side's join node reads the other's.
        graph.attach_store(left.node, left_store);
        graph.attach_store(right.node, right_store);
        graph.attach_store(this.node, right_store);
        graph.attach_store(that.node, left_store);
        if let Some(buffer) = buffer {
            graph.attach_store(this.node, buffer);
            graph.attach_store(that.node, buffer);
        }
        let name = graph.next_name("KSTREAM-MERGE-");
        let node = graph.add(name, NodeKind::Processor { make, stores: Vec::new() }, &[this.node, that.node]);
        drop(graph);
        self.with_node(node, Some(key_serde))
    }
}

/// Both sides' window stores, joined as records arrive, and the records
/// still waiting to be emitted without a partner.
struct JoinNode<K, V, V2, VR> {
    windows: JoinWindows,
    outer: Outer,
    /// The ids of each side's window store.
    left: usize,
    right: usize,
    /// The id of the store where unmatched records wait (left and outer
    /// joins).
    buffer: Option<usize>,
    /// The largest timestamp either side has seen.
    stream_time: i64,
    key_serde: SharedSerde<K>,
    joiner: StreamJoiner<V, V2, VR>,
}

impl<K: Data + Hash + Eq, V: Data, V2: Data, VR: Data> JoinNode<K, V, V2, VR> {
    /// Emits, in order, the waiting records whose windows have closed
    /// (Kafka Streams' `emitNonJoinedOuterRecords`, with no throttle).
    fn emit_closed(&mut self, buffer: usize, ctx: &mut NodeContext<'_>) {
        // A waiting record's window closes its reach into the other
        // side's future, plus grace, after its timestamp.
        let (after, before, grace) = (self.windows.after_ms, self.windows.before_ms, self.windows.grace_ms);
        let closes_after = |left_side: bool| (if left_side { after } else { before }) + grace;
        let closed = ctx.stores.get_mut::<OuterJoinBuffer<K, V, V2>>(buffer).take_closed(self.stream_time, closes_after, ctx.changes);
        for ((timestamp, _, _), (key, records)) in closed {
            for record in records {
                let value = match &record {
                    Side::Left(v) => (self.joiner)(Some(v), None),
                    Side::Right(v2) => (self.joiner)(None, Some(v2)),
                };
                ctx.forwarded.push(item(key.clone(), value, timestamp));
            }
        }
    }
}

impl<K, V, V2, VR> Node for JoinNode<K, V, V2, VR>
where
    K: Data + Hash + Eq,
    V: Data,
    V2: Data,
    VR: Data,
{
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>) {
        let Some(value) = &item.value else { return };
        let key = typed::<K>(&item.key);
        let side = typed::<Arc<Side<V, V2>>>(value);
        let t = item.timestamp;
        self.stream_time = self.stream_time.max(t);
        let (before, after) = (self.windows.before_ms, self.windows.after_ms);
        let is_left = matches!(side.as_ref(), Side::Left(_));
        let kept = match side.as_ref() {
            Side::Left(v) => ctx.stores.get_mut::<JoinWindowStore<K, V>>(self.left).put(key.clone(), t, v.clone(), ctx.changes),
            Side::Right(v2) => ctx.stores.get_mut::<JoinWindowStore<K, V2>>(self.right).put(key.clone(), t, v2.clone(), ctx.changes),
        };
        if !kept {
            *ctx.dropped_late += 1;
        }
        if let (Some(buffer), true) = (self.buffer, t == self.stream_time) {
            self.emit_closed(buffer, ctx);
        }
        let key_bytes = || self.key_serde.serialize(key).unwrap_or_default();
        let (reach_to, matched) = match side.as_ref() {
            Side::Left(v) => {
                let partners = ctx.stores.get::<JoinWindowStore<K, V2>>(self.right).fetch(key, (t - before).max(0), (t + after).max(0));
                let results: Vec<(i64, VR)> = partners.iter().map(|&(t2, v2)| (t2, (self.joiner)(Some(v), Some(v2)))).collect();
                ((t + after).max(0), results)
            }
            Side::Right(v2) => {
                let partners = ctx.stores.get::<JoinWindowStore<K, V>>(self.left).fetch(key, (t - after).max(0), (t + before).max(0));
                let results: Vec<(i64, VR)> = partners.iter().map(|&(t1, v)| (t1, (self.joiner)(Some(v), Some(v2)))).collect();
                ((t + before).max(0), results)
            }
        };
        let this_outer = match self.outer {
            Outer::None => false,
            Outer::Left => is_left,
            Outer::Both => true,
        };
        if matched.is_empty() {
            if this_outer {
                if reach_to < self.stream_time {
                    let value = match side.as_ref() {
                        Side::Left(v) => (self.joiner)(Some(v), None),
                        Side::Right(v2) => (self.joiner)(None, Some(v2)),
                    };
                    ctx.forwarded.push(item_of(key, value, t));
                } else {
                    let waiting = match side.as_ref() {
                        Side::Left(v) => Side::Left(v.clone()),
                        Side::Right(v2) => Side::Right(v2.clone()),
                    };
                    if let Some(buffer) = self.buffer {
                        ctx.stores.get_mut::<OuterJoinBuffer<K, V, V2>>(buffer).push(key, key_bytes(), t, waiting, ctx.changes);
                    }
                }
            }
            return;
        }
        for (partner_time, value) in matched {
            if let Some(buffer) = self.buffer {
                // The partner no longer waits to be emitted alone.
                ctx.stores.get_mut::<OuterJoinBuffer<K, V, V2>>(buffer).matched((partner_time, !is_left, key_bytes()), t, ctx.changes);
            }
            ctx.forwarded.push(item_of(key, value, t.max(partner_time)));
        }
    }
}

fn item_of<K: Data, VR: Data>(key: &K, value: VR, timestamp: i64) -> Item {
    item(key.clone(), value, timestamp)
}
