//! [`KTable`], a changelog stream of updates to a table, with what Kafka
//! Streams does to tables: sources, filters and value mappings, table–table
//! joins (inner, left, outer), stream–table joins, and regrouping with an
//! adder and a subtractor.
//!
//! A table's nodes forward changes: each key's new value and, when a
//! node downstream asks for it, the value it replaces. A table is
//! materialized — kept in a store logged to a changelog — only where
//! something needs to look its values up (a join) or to know old values
//! (a regrouping), as in Kafka Streams; a table derived without a store
//! (a filter, a value mapping) is looked up through its parent.

use std::cell::RefCell;
use std::hash::Hash;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::aggregate::Adder;
use crate::kstream::KStream;
use crate::serde::{Serde, SerdeError, Windowed};
use crate::store::{KeyValueStore, Stores, SuppressBuffer};
use crate::topology::{decoder, typed, Change, Data, Decode, Encode, Graph, Item, MakeNode, Node, NodeContext, NodeKind, SharedSerde, StreamsBuilder, Value};

/// Looks up a key's current value in a table, and the timestamp of its
/// last update.
pub(crate) type Getter<K, V> = Arc<dyn Fn(&Stores, &K) -> Option<(V, i64)> + Send + Sync>;

/// A getter and the stores it reads.
pub(crate) type Lookup<K, V> = (Getter<K, V>, Vec<usize>);

/// How the rest of a topology sees a table: what it takes to look its
/// values up, and to have it forward old values.
pub(crate) struct TableView<K, V> {
    /// Materializes the table, or its stored ancestors, and returns how to
    /// look a key up and the stores a node needs for that.
    pub getter: Box<dyn Fn() -> Lookup<K, V>>,
    /// Makes the table's node forward old values with each change, and
    /// says whether it now does. Without `force`, a table that would have
    /// to be materialized for it declines (Kafka Streams'
    /// `enableSendingOldValues(forceMaterialization)`).
    pub send_old_values: Box<dyn Fn(bool) -> bool>,
}

/// A changelog stream of updates to a table, as Kafka Streams' `KTable`.
pub struct KTable<K, V> {
    pub(crate) graph: Rc<RefCell<Graph>>,
    pub(crate) node: usize,
    pub(crate) key_serde: Option<SharedSerde<K>>,
    pub(crate) value_serde: Option<SharedSerde<V>>,
    view: Rc<TableView<K, V>>,
    /// For a windowed aggregation's table, how long after a window ends its
    /// result may still change: the grace period (for sessions, plus the
    /// inactivity gap).
    pub(crate) window_grace_ms: Option<i64>,
}

impl<K: Data + Hash + Eq, V: Data> KTable<K, V> {
    /// A table kept in a key-value store by its own node (an aggregation).
    pub(crate) fn stored(
        graph: &Rc<RefCell<Graph>>,
        node: usize,
        key_serde: Option<SharedSerde<K>>,
        value_serde: Option<SharedSerde<V>>,
        store: usize,
        send_old: Arc<AtomicBool>,
    ) -> KTable<K, V> {
        let getter: Getter<K, V> = Arc::new(move |stores, key| stores.get::<KeyValueStore<K, V>>(store).get(key));
        let view = TableView {
            getter: Box::new(move || (getter.clone(), vec![store])),
            send_old_values: Box::new(move |_| {
                send_old.store(true, Ordering::Relaxed);
                true
            }),
        };
        KTable { graph: graph.clone(), node, key_serde, value_serde, view: Rc::new(view), window_grace_ms: None }
    }
}

impl<K: Data + Hash + Eq, V: Data> KTable<Windowed<K>, V> {
    /// A table of windowed aggregates, kept in a window store (time
    /// windows) or a session store; `key_serde` writes its windowed keys.
    pub(crate) fn windowed(
        graph: &Rc<RefCell<Graph>>,
        node: usize,
        getter: Getter<Windowed<K>, V>,
        store: usize,
        serdes: (SharedSerde<Windowed<K>>, SharedSerde<V>),
        grace_ms: i64,
        send_old: Arc<AtomicBool>,
    ) -> KTable<Windowed<K>, V> {
        let view = TableView {
            getter: Box::new(move || (getter.clone(), vec![store])),
            send_old_values: Box::new(move |_| {
                send_old.store(true, Ordering::Relaxed);
                true
            }),
        };
        KTable { graph: graph.clone(), node, key_serde: Some(serdes.0), value_serde: Some(serdes.1), view: Rc::new(view), window_grace_ms: Some(grace_ms) }
    }
}

impl StreamsBuilder {
    /// A table of the records of `topic`: each key's latest value, a null
    /// value deleting the key (Kafka Streams' `table()`). Its store is
    /// `<topic>-STATE-STORE-<n>`, kept only if something needs it.
    pub fn table<KS: Serde, VS: Serde>(&self, topic: &str, key_serde: KS, value_serde: VS) -> KTable<KS::Value, VS::Value>
    where
        KS::Value: Data + Hash + Eq,
        VS::Value: Data,
    {
        let (key_serde, value_serde): (SharedSerde<KS::Value>, SharedSerde<VS::Value>) = (Arc::new(key_serde), Arc::new(value_serde));
        let mut graph = self.graph.borrow_mut();
        let store_name = graph.next_name(&format!("{topic}-STATE-STORE-"));
        let source_name = graph.next_name("KSTREAM-SOURCE-");
        let source = graph.add(
            source_name,
            NodeKind::Source { topics: vec![topic.to_string()], decode: decoder(key_serde.clone(), value_serde.clone()), timestamps: None },
            &[],
        );
        drop(graph);
        materializing_table(&self.graph, source, "KTABLE-SOURCE-", store_name, key_serde, value_serde)
    }
}

impl<K: Data + Hash + Eq, V: Data> KStream<K, V> {
    /// The stream read as a table: each key's latest value, a tombstone
    /// deleting the key (Kafka Streams' `toTable()`).
    pub fn to_table<KS: Serde<Value = K>, VS: Serde<Value = V>>(&self, key_serde: KS, value_serde: VS) -> KTable<K, V> {
        let (key_serde, value_serde): (SharedSerde<K>, SharedSerde<V>) = (Arc::new(key_serde), Arc::new(value_serde));
        let (name, store_name) = {
            let mut graph = self.graph.borrow_mut();
            (graph.next_name("KSTREAM-TOTABLE-"), graph.next_name("KSTREAM-TOTABLE-STATE-STORE-"))
        };
        let input = self.repartitioned(key_serde.clone(), value_serde.clone(), &name);
        table_node(&self.graph, input.node, name, store_name, key_serde, value_serde)
    }
}

/// Adds a table source node (prefix and next number as its name).
fn materializing_table<K: Data + Hash + Eq, V: Data>(
    graph: &Rc<RefCell<Graph>>,
    parent: usize,
    prefix: &str,
    store_name: String,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
) -> KTable<K, V> {
    let name = graph.borrow_mut().next_name(prefix);
    table_node(graph, parent, name, store_name, key_serde, value_serde)
}

/// A node that turns records into table updates, with a store made only
/// when the table is first looked up or asked for old values.
fn table_node<K: Data + Hash + Eq, V: Data>(
    graph: &Rc<RefCell<Graph>>,
    parent: usize,
    name: String,
    store_name: String,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
) -> KTable<K, V> {
    let store: Arc<OnceLock<usize>> = Arc::new(OnceLock::new());
    let send_old = Arc::new(AtomicBool::new(false));
    let make: MakeNode = {
        let (store, send_old) = (store.clone(), send_old.clone());
        Arc::new(move || Box::new(TableSourceNode::<K, V> { store: store.get().copied(), send_old: send_old.load(Ordering::Relaxed), _types: PhantomData }))
    };
    let node = graph.borrow_mut().add(name, NodeKind::Processor { make, stores: Vec::new() }, &[parent]);
    let materialize = {
        let (graph, store, key_serde, value_serde) = (graph.clone(), store.clone(), key_serde.clone(), value_serde.clone());
        move || -> usize {
            *store.get_or_init(|| {
                let mut graph = graph.borrow_mut();
                let id = graph.add_store(store_name.clone(), None, |id| KeyValueStore::maker(id, key_serde.clone(), value_serde.clone()));
                graph.attach_store(node, id);
                id
            })
        }
    };
    let materialize = Rc::new(materialize);
    let view = TableView {
        getter: Box::new({
            let materialize = materialize.clone();
            move || {
                let store = materialize();
                let getter: Getter<K, V> = Arc::new(move |stores, key| stores.get::<KeyValueStore<K, V>>(store).get(key));
                (getter, vec![store])
            }
        }),
        send_old_values: Box::new(move |force| {
            if !force && store.get().is_none() {
                return false;
            }
            materialize();
            send_old.store(true, Ordering::Relaxed);
            true
        }),
    };
    KTable { graph: graph.clone(), node, key_serde: Some(key_serde), value_serde: Some(value_serde), view: Rc::new(view), window_grace_ms: None }
}

/// Kafka Streams' `KTableSource`: records become updates, kept in the
/// store when the table is materialized. Every update is forwarded, even
/// one that leaves the value as it was, as Kafka Streams does since it
/// dropped emit-on-change for sources (it could lose updates on restart).
struct TableSourceNode<K, V> {
    store: Option<usize>,
    send_old: bool,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: Data + Hash + Eq, V: Data> Node for TableSourceNode<K, V> {
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>) {
        let Some(store) = self.store else {
            ctx.forwarded.push(Item { value: Some(Arc::new(Change { new: item.value.clone(), old: None })), ..item });
            return;
        };
        let key = typed::<K>(&item.key);
        let new = item.value.as_ref().map(|v| typed::<V>(v).clone());
        let table = ctx.stores.get_mut::<KeyValueStore<K, V>>(store);
        let old = table.put(key.clone(), new, item.timestamp, ctx.changes);
        let old = old.filter(|_| self.send_old).map(|(v, _)| Arc::new(v) as Value);
        ctx.forwarded.push(Item { value: Some(Arc::new(Change { new: item.value.clone(), old })), ..item });
    }
}

/// A node over a table's changes, built from a closure.
struct ChangeNode<F>(F);

impl<F: FnMut(Item, &Change, &mut NodeContext<'_>) + Send> Node for ChangeNode<F> {
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>) {
        let Some(change) = item.value.clone() else { return };
        (self.0)(item, typed::<Change>(&change), ctx);
    }
}

fn change_item(item: &Item, new: Option<Value>, old: Option<Value>, timestamp: i64) -> Item {
    Item { key: item.key.clone(), value: Some(Arc::new(Change { new, old })), timestamp }
}

impl<K: Data + Hash + Eq, V: Data> KTable<K, V> {
    /// The table's updates as a stream; a deletion is a tombstone.
    pub fn to_stream(&self) -> KStream<K, V> {
        let make: MakeNode = Arc::new(|| {
            Box::new(ChangeNode(|item: Item, change: &Change, ctx: &mut NodeContext<'_>| ctx.forwarded.push(Item { value: change.new.clone(), ..item })))
        });
        let node = self.graph.borrow_mut().add_processor("KTABLE-TOSTREAM-", make, Vec::new(), &[self.node]);
        KStream { graph: self.graph.clone(), node, key_serde: None, _types: PhantomData }
    }

    /// The rows for which `predicate` holds; a row that stops meeting it
    /// is deleted (a tombstone downstream), as in Kafka Streams.
    pub fn filter(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KTable<K, V> {
        self.derive("KTABLE-FILTER-", self.value_serde.clone(), true, move |k, v| predicate(k, v).then(|| v.clone()))
    }

    /// The rows for which `predicate` does not hold.
    pub fn filter_not(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KTable<K, V> {
        self.filter(move |k, v| !predicate(k, v))
    }

    /// A new value for each row, same key.
    pub fn map_values<V2: Data>(&self, f: impl Fn(&V) -> V2 + Send + Sync + 'static) -> KTable<K, V2> {
        self.derive("KTABLE-MAPVALUES-", None, false, move |_, v| Some(f(v)))
    }

    /// A new value for each row from its key and value, same key (Kafka
    /// Streams' `mapValues` with a `ValueMapperWithKey`).
    pub fn map_values_with_key<V2: Data>(&self, f: impl Fn(&K, &V) -> V2 + Send + Sync + 'static) -> KTable<K, V2> {
        self.derive("KTABLE-MAPVALUES-", None, false, move |k, v| Some(f(k, v)))
    }

    /// A new value for each row from its key and value, with the new
    /// values' serde (Kafka Streams' `mapValues` with `Materialized.with`),
    /// for what needs to write the new values: a foreign-key join.
    pub fn map_values_with_serde<V2: Data, VS: Serde<Value = V2>>(&self, f: impl Fn(&K, &V) -> V2 + Send + Sync + 'static, value_serde: VS) -> KTable<K, V2> {
        self.derive("KTABLE-MAPVALUES-", Some(Arc::new(value_serde)), false, move |k, v| Some(f(k, v)))
    }

    /// A table computed row by row from this one, without a store of its
    /// own: looked up through this table, and forwarding old values by
    /// asking this table for them. `skip_empty` drops a change whose new
    /// and old results are both absent once old values are sent (Kafka
    /// Streams' `KTableFilter`).
    fn derive<V2: Data>(
        &self,
        prefix: &str,
        value_serde: Option<SharedSerde<V2>>,
        skip_empty: bool,
        f: impl Fn(&K, &V) -> Option<V2> + Send + Sync + 'static,
    ) -> KTable<K, V2> {
        let f = Arc::new(f);
        // A filter of a table that is materialized anyway asks for old
        // values, so it forwards no tombstone for a row that was not in
        // it (as Kafka Streams' filter does since KAFKA-10077).
        let send_old = Arc::new(AtomicBool::new(skip_empty && (self.view.send_old_values)(false)));
        let make: MakeNode = {
            let (f, send_old) = (f.clone(), send_old.clone());
            Arc::new(move || {
                let (f, send_old) = (f.clone(), send_old.load(Ordering::Relaxed));
                Box::new(ChangeNode(move |item: Item, change: &Change, ctx: &mut NodeContext<'_>| {
                    let key = typed::<K>(&item.key);
                    let apply = |value: &Option<Value>| value.as_ref().and_then(|v| f(key, typed::<V>(v))).map(|v| Arc::new(v) as Value);
                    let new = apply(&change.new);
                    let old = if send_old { apply(&change.old) } else { None };
                    if send_old && skip_empty && new.is_none() && old.is_none() {
                        return;
                    }
                    ctx.forwarded.push(change_item(&item, new, old, item.timestamp));
                }))
            })
        };
        let node = self.graph.borrow_mut().add_processor(prefix, make, Vec::new(), &[self.node]);
        let parent = self.view.clone();
        let view = TableView {
            getter: Box::new({
                let (parent, f) = (parent.clone(), f.clone());
                move || {
                    let (get, stores) = (parent.getter)();
                    let f = f.clone();
                    let getter: Getter<K, V2> = Arc::new(move |s, k| get(s, k).and_then(|(v, ts)| f(k, &v).map(|v2| (v2, ts))));
                    (getter, stores)
                }
            }),
            send_old_values: Box::new(move |force| {
                let sent = (parent.send_old_values)(force);
                if sent {
                    send_old.store(true, Ordering::Relaxed);
                }
                sent
            }),
        };
        KTable { graph: self.graph.clone(), node, key_serde: self.key_serde.clone(), value_serde, view: Rc::new(view), window_grace_ms: self.window_grace_ms }
    }

    /// How nodes look this table up (materializing it if need be), and
    /// the stores they must be given for that.
    pub(crate) fn lookup(&self) -> Lookup<K, V> {
        (self.view.getter)()
    }

    /// How the rest of the topology sees this table.
    pub(crate) fn view(&self) -> &Rc<TableView<K, V>> {
        &self.view
    }

    /// A table over `node` with the given view.
    pub(crate) fn from_parts(
        graph: &Rc<RefCell<Graph>>,
        node: usize,
        key_serde: Option<SharedSerde<K>>,
        value_serde: Option<SharedSerde<V>>,
        view: Rc<TableView<K, V>>,
    ) -> KTable<K, V> {
        KTable { graph: graph.clone(), node, key_serde, value_serde, view, window_grace_ms: None }
    }
}

/// Which rows of two joined tables make a result (Kafka Streams'
/// `join`, `leftJoin` and `outerJoin` of tables).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum JoinKind {
    Inner,
    Left,
    Outer,
}

/// How one side of a table–table join reacts to its table's changes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SideRule {
    /// Results need both rows (inner join, either side).
    Both,
    /// This side's rows make results alone (the left side of a left join).
    ThisAlone,
    /// Results need the other side's row, and are made even when this
    /// side's row is deleted (the right side of a left join).
    OtherNeeded,
    /// Either side's row makes a result (outer join).
    Either,
}

/// A full-outer joiner, `None` for an absent row: each join kind calls it
/// only with the rows its rule allows.
type OuterJoiner<A, B, R> = Arc<dyn Fn(Option<&A>, Option<&B>) -> R + Send + Sync>;

impl<K: Data + Hash + Eq, V: Data> KTable<K, V> {
    /// Joins the rows of two tables with equal keys (inner join): a table
    /// updated whenever either side changes.
    pub fn join<V2: Data, R: Data>(&self, other: &KTable<K, V2>, joiner: impl Fn(&V, &V2) -> R + Send + Sync + 'static) -> KTable<K, R> {
        let joiner: OuterJoiner<V, V2, R> = Arc::new(move |a, b| joiner(a.expect("an inner join has both rows"), b.expect("an inner join has both rows")));
        self.join_tables(other, JoinKind::Inner, joiner)
    }

    /// Joins every row of this table with the other's row of the same key,
    /// if there is one (left join).
    pub fn left_join<V2: Data, R: Data>(&self, other: &KTable<K, V2>, joiner: impl Fn(&V, Option<&V2>) -> R + Send + Sync + 'static) -> KTable<K, R> {
        let joiner: OuterJoiner<V, V2, R> = Arc::new(move |a, b| joiner(a.expect("a left join has the left row"), b));
        self.join_tables(other, JoinKind::Left, joiner)
    }

    /// Joins the rows of both tables, with `None` for a side that has no
    /// row of that key (outer join).
    pub fn outer_join<V2: Data, R: Data>(&self, other: &KTable<K, V2>, joiner: impl Fn(Option<&V>, Option<&V2>) -> R + Send + Sync + 'static) -> KTable<K, R> {
        self.join_tables(other, JoinKind::Outer, Arc::new(joiner))
    }

    fn join_tables<V2: Data, R: Data>(&self, other: &KTable<K, V2>, kind: JoinKind, joiner: OuterJoiner<V, V2, R>) -> KTable<K, R> {
        // Kafka Streams names both sides of every kind of table join so.
        let (this_prefix, other_prefix) = ("KTABLE-JOINTHIS-", "KTABLE-JOINOTHER-");
        let (this_rule, other_rule) = match kind {
            JoinKind::Inner => (SideRule::Both, SideRule::Both),
            JoinKind::Left => (SideRule::ThisAlone, SideRule::OtherNeeded),
            JoinKind::Outer => (SideRule::Either, SideRule::Either),
        };
        let merge_name = self.graph.borrow_mut().next_name("KTABLE-MERGE-");
        // Old values are forwarded by the sides whose deletions can change
        // a result on their own, as Kafka Streams enables them.
        if kind != JoinKind::Inner {
            (self.view.send_old_values)(true);
        }
        if kind == JoinKind::Outer {
            (other.view.send_old_values)(true);
        }
        let (other_getter, other_stores) = other.lookup();
        let (this_getter, this_stores) = self.lookup();
        let send_old = Arc::new(AtomicBool::new(false));
        let this_side = {
            let joiner = joiner.clone();
            side_node::<K, V, V2, R>(this_rule, other_getter.clone(), Arc::new(move |a, b| joiner(a, b)), send_old.clone())
        };
        let other_side = {
            let joiner = joiner.clone();
            side_node::<K, V2, V, R>(other_rule, this_getter.clone(), Arc::new(move |b, a| joiner(a, b)), send_old.clone())
        };
        let mut graph = self.graph.borrow_mut();
        let this_node = graph.add_processor(this_prefix, this_side, other_stores.clone(), &[self.node]);
        let other_node = graph.add_processor(other_prefix, other_side, this_stores.clone(), &[other.node]);
        let merge = graph.add(merge_name, NodeKind::Processor { make: crate::topology::pass_through(), stores: Vec::new() }, &[this_node, other_node]);
        drop(graph);
        let (this_view, other_view) = (self.view.clone(), other.view.clone());
        let view = TableView {
            getter: Box::new(move || {
                let joiner = joiner.clone();
                let (this_getter, other_getter) = (this_getter.clone(), other_getter.clone());
                let getter: Getter<K, R> = Arc::new(move |stores, key| {
                    let (a, b) = (this_getter(stores, key), other_getter(stores, key));
                    let timestamp = a.as_ref().map_or(-1, |(_, t)| *t).max(b.as_ref().map_or(-1, |(_, t)| *t));
                    let present = match kind {
                        JoinKind::Inner => a.is_some() && b.is_some(),
                        JoinKind::Left => a.is_some(),
                        JoinKind::Outer => a.is_some() || b.is_some(),
                    };
                    present.then(|| (joiner(a.as_ref().map(|(v, _)| v), b.as_ref().map(|(v, _)| v)), timestamp))
                });
                (getter, [this_stores.clone(), other_stores.clone()].concat())
            }),
            send_old_values: Box::new(move |_| {
                (this_view.send_old_values)(true);
                (other_view.send_old_values)(true);
                send_old.store(true, Ordering::Relaxed);
                true
            }),
        };
        KTable { graph: self.graph.clone(), node: merge, key_serde: self.key_serde.clone(), value_serde: None, view: Rc::new(view), window_grace_ms: None }
    }
}

/// One side of a table–table join: on each change to its table, looks the
/// key up in the other table and forwards the joined change, as Kafka
/// Streams' `KTableKTable{Inner,Left,Right,Outer}Join` processors do. The
/// result carries the later of the two rows' timestamps.
fn side_node<K: Data + Hash + Eq, A: Data, B: Data, R: Data>(
    rule: SideRule,
    other: Getter<K, B>,
    joiner: OuterJoiner<A, B, R>,
    send_old: Arc<AtomicBool>,
) -> MakeNode {
    Arc::new(move || {
        let (other, joiner, send_old) = (other.clone(), joiner.clone(), send_old.load(Ordering::Relaxed));
        Box::new(ChangeNode(move |item: Item, change: &Change, ctx: &mut NodeContext<'_>| {
            let key = typed::<K>(&item.key);
            let partner = other(ctx.stores, key);
            let (new, old) = (change.new.as_ref().map(|v| typed::<A>(v)), change.old.as_ref().map(|v| typed::<A>(v)));
            let timestamp = match &partner {
                Some((_, ts)) => item.timestamp.max(*ts),
                None if matches!(rule, SideRule::Both | SideRule::OtherNeeded) => return,
                None if new.is_none() && old.is_none() => return,
                None => item.timestamp,
            };
            let b = partner.as_ref().map(|(b, _)| b);
            let result = |row: Option<&A>| -> Option<Value> {
                let made = match rule {
                    SideRule::Both | SideRule::ThisAlone => row.is_some(),
                    SideRule::OtherNeeded => true,
                    SideRule::Either => row.is_some() || b.is_some(),
                };
                made.then(|| Arc::new(joiner(row, b)) as Value)
            };
            let new_result = result(new);
            let old_result = if send_old { result(old) } else { None };
            ctx.forwarded.push(change_item(&item, new_result, old_result, timestamp));
        }))
    })
}

/// The serdes a stream–table join needs to repartition a stream whose key
/// changed (Kafka Streams' `Joined`).
pub struct Joined<KS, VS> {
    /// The key's serde.
    pub key: KS,
    /// The stream's value serde.
    pub value: VS,
}

impl<KS, VS> Joined<KS, VS> {
    /// The serdes of a stream–table join (Kafka Streams' `Joined.with`).
    pub fn with(key: KS, value: VS) -> Self {
        Joined { key, value }
    }
}

impl<K: Data + Hash + Eq, V: Data> KStream<K, V> {
    /// Joins each record with the table's row of the same key at the time
    /// the record is processed (inner join: records without a row are
    /// dropped). The result has the record's timestamp.
    pub fn join_table<VT: Data, R: Data, KS: Serde<Value = K>, VS: Serde<Value = V>>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, &VT) -> R + Send + Sync + 'static,
        joined: Joined<KS, VS>,
    ) -> KStream<K, R> {
        self.join_with_table("KSTREAM-JOIN-", table, move |v, row| row.map(|t| joiner(v, t)), joined)
    }

    /// Joins each record with the table's row of the same key, if there is
    /// one (left join).
    pub fn left_join_table<VT: Data, R: Data, KS: Serde<Value = K>, VS: Serde<Value = V>>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, Option<&VT>) -> R + Send + Sync + 'static,
        joined: Joined<KS, VS>,
    ) -> KStream<K, R> {
        self.join_with_table("KSTREAM-LEFTJOIN-", table, move |v, row| Some(joiner(v, row)), joined)
    }

    fn join_with_table<VT: Data, R: Data, KS: Serde<Value = K>, VS: Serde<Value = V>>(
        &self,
        prefix: &str,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, Option<&VT>) -> Option<R> + Send + Sync + 'static,
        joined: Joined<KS, VS>,
    ) -> KStream<K, R> {
        let base = self.graph.borrow().node_name(self.node);
        // The repartition's nodes are numbered before the join's, as in
        // Kafka Streams.
        let input = self.repartitioned(Arc::new(joined.key), Arc::new(joined.value), &base);
        let name = self.graph.borrow_mut().next_name(prefix);
        let (getter, stores) = table.lookup();
        let joiner = Arc::new(joiner);
        let make: MakeNode = Arc::new(move || {
            let (getter, joiner) = (getter.clone(), joiner.clone());
            Box::new(StreamTableJoinNode(move |item: Item, ctx: &mut NodeContext<'_>| {
                let Some(value) = &item.value else { return };
                let row = getter(ctx.stores, typed::<K>(&item.key));
                if let Some(result) = joiner(typed::<V>(value), row.as_ref().map(|(t, _)| t)) {
                    ctx.forwarded.push(Item { value: Some(Arc::new(result)), ..item });
                }
            }))
        });
        let node = self.graph.borrow_mut().add(name, NodeKind::Processor { make, stores }, &[input.node]);
        self.with_node(node, input.key_serde.clone())
    }
}

struct StreamTableJoinNode<F>(F);

impl<F: FnMut(Item, &mut NodeContext<'_>) + Send> Node for StreamTableJoinNode<F> {
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>) {
        (self.0)(item, ctx);
    }
}

impl<K: Data + Hash + Eq, V: Data> KTable<K, V> {
    /// Regroups the table's rows by a new key (and value) that `selector`
    /// picks, for aggregations that add each new row and subtract the row
    /// it replaced (Kafka Streams' `KTable#groupBy`). The rows are
    /// repartitioned by their new key.
    pub fn group_by<K2: Data + Hash + Eq, V2: Data, KS: Serde<Value = K2>, VS: Serde<Value = V2>>(
        &self,
        selector: impl Fn(&K, &V) -> (K2, V2) + Send + Sync + 'static,
        grouped: crate::topology::Grouped<KS, VS>,
    ) -> KGroupedTable<K2, V2> {
        (self.view.send_old_values)(true);
        let selector = Arc::new(selector);
        let make: MakeNode = Arc::new(move || {
            let selector = selector.clone();
            Box::new(ChangeNode(move |item: Item, change: &Change, ctx: &mut NodeContext<'_>| {
                let key = typed::<K>(&item.key);
                let pair = |value: &Option<Value>| value.as_ref().map(|v| selector(key, typed::<V>(v)));
                let (new, old) = (pair(&change.new), pair(&change.old));
                // The old row is subtracted before the new one is added;
                // one change carries both when the key stays the same.
                match (new, old) {
                    (Some((new_key, new_value)), Some((old_key, old_value))) if new_key == old_key => {
                        ctx.forwarded.push(regrouped(new_key, Some(new_value), Some(old_value), item.timestamp))
                    }
                    (new, old) => {
                        if let Some((old_key, old_value)) = old {
                            ctx.forwarded.push(regrouped(old_key, None, Some(old_value), item.timestamp));
                        }
                        if let Some((new_key, new_value)) = new {
                            ctx.forwarded.push(regrouped(new_key, Some(new_value), None, item.timestamp));
                        }
                    }
                }
            }))
        });
        let node = self.graph.borrow_mut().add_processor("KTABLE-SELECT-", make, Vec::new(), &[self.node]);
        KGroupedTable { graph: self.graph.clone(), node, key_serde: Arc::new(grouped.key), value_serde: Arc::new(grouped.value) }
    }
}

fn regrouped<K2: Data, V2: Data>(key: K2, new: Option<V2>, old: Option<V2>, timestamp: i64) -> Item {
    let value = Change { new: new.map(|v| Arc::new(v) as Value), old: old.map(|v| Arc::new(v) as Value) };
    Item { key: Arc::new(key), value: Some(Arc::new(value)), timestamp }
}

/// A table regrouped by a new key, as Kafka Streams' `KGroupedTable`.
pub struct KGroupedTable<K, V> {
    graph: Rc<RefCell<Graph>>,
    node: usize,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
}

/// How a regrouped table's aggregation applies a change: subtracting the
/// old row, then adding the new one.
struct TableFold<K, V, A> {
    init: Option<Arc<dyn Fn() -> A + Send + Sync>>,
    /// Adds a row to the aggregate (`None`: the key has none yet).
    add: Adder<K, V, A>,
    subtract: Subtractor<K, V, A>,
}

type Subtractor<K, V, A> = Arc<dyn Fn(&K, &V, A) -> A + Send + Sync>;

impl<K, V, A> Clone for TableFold<K, V, A> {
    fn clone(&self) -> Self {
        TableFold { init: self.init.clone(), add: self.add.clone(), subtract: self.subtract.clone() }
    }
}

impl<K: Data + Hash + Eq, V: Data> KGroupedTable<K, V> {
    /// How many rows each new key has.
    pub fn count(&self) -> KTable<K, i64> {
        self.aggregate(|| 0i64, |_, _, n| n + 1, |_, _, n| n - 1, crate::serde::I64Serde)
    }

    /// Folds each new key's rows into an aggregate: `add` for a row that
    /// arrives, `subtract` for one that leaves or is replaced.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        add: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        subtract: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        aggregate_serde: impl Serde<Value = A>,
    ) -> KTable<K, A> {
        let init = Arc::new(init);
        let fold = TableFold {
            init: Some(init.clone()),
            add: Arc::new(move |k, v, agg: Option<A>| add(k, v, agg.unwrap_or_else(|| init()))),
            subtract: Arc::new(subtract),
        };
        self.fold("KTABLE-AGGREGATE-", fold, Arc::new(aggregate_serde))
    }

    /// Combines each new key's rows: `add` when a row arrives (the first
    /// row is the first aggregate), `subtract` when one leaves.
    pub fn reduce(
        &self,
        add: impl Fn(&V, &V) -> V + Send + Sync + 'static,
        subtract: impl Fn(&V, &V) -> V + Send + Sync + 'static,
        value_serde: impl Serde<Value = V>,
    ) -> KTable<K, V> {
        let fold = TableFold {
            init: None,
            add: Arc::new(move |_, v, agg: Option<V>| match agg {
                Some(agg) => add(&agg, v),
                None => v.clone(),
            }),
            subtract: Arc::new(move |_, v, agg: V| subtract(&agg, v)),
        };
        self.fold("KTABLE-REDUCE-", fold, Arc::new(value_serde))
    }

    fn fold<A: Data>(&self, prefix: &str, fold: TableFold<K, V, A>, aggregate_serde: SharedSerde<A>) -> KTable<K, A> {
        let key_serde = self.key_serde.clone();
        let mut graph = self.graph.borrow_mut();
        let store_name = graph.next_name(&format!("{prefix}STATE-STORE-"));
        let store = graph.add_store(store_name.clone(), None, |id| KeyValueStore::maker(id, key_serde.clone(), aggregate_serde.clone()));
        // Kafka Streams names a regrouping's sink and source with the
        // counter, and its topic after the store.
        let topic = format!("{store_name}-repartition");
        let sink_name = graph.next_name("KSTREAM-SINK-");
        let source_name = graph.next_name("KSTREAM-SOURCE-");
        let (encode, decode) = change_codec(self.key_serde.clone(), self.value_serde.clone());
        graph.add(sink_name, NodeKind::Sink { topic: topic.as_str().into(), encode }, &[self.node]);
        let source = graph.add(source_name, NodeKind::Source { topics: vec![topic.clone()], decode, timestamps: None }, &[]);
        graph.add_internal_topic(topic);
        let send_old = Arc::new(AtomicBool::new(false));
        let make: MakeNode = {
            let send_old = send_old.clone();
            Arc::new(move || Box::new(TableAggregateNode::<K, V, A> { store, fold: fold.clone(), send_old: send_old.load(Ordering::Relaxed) }))
        };
        let node = graph.add_processor(prefix, make, vec![store], &[source]);
        drop(graph);
        KTable::stored(&self.graph, node, Some(self.key_serde.clone()), Some(aggregate_serde), store, send_old)
    }
}

/// A regrouped table's aggregate per key (Kafka Streams' `KTableAggregate`
/// and `KTableReduce`): the old row is subtracted, the new one added; an
/// aggregate with nothing left is deleted.
struct TableAggregateNode<K, V, A> {
    store: usize,
    fold: TableFold<K, V, A>,
    send_old: bool,
}

impl<K: Data + Hash + Eq, V: Data, A: Data> Node for TableAggregateNode<K, V, A> {
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>) {
        let Some(change) = &item.value else { return };
        let change = typed::<Change>(change);
        let key = typed::<K>(&item.key);
        let store = ctx.stores.get_mut::<KeyValueStore<K, A>>(self.store);
        let previous = store.load(key).cloned();
        let mut timestamp = item.timestamp;
        let mut aggregate = previous.as_ref().map(|(a, _)| a.clone());
        if let (Some(old), Some((agg, ts))) = (&change.old, &previous) {
            aggregate = Some((self.fold.subtract)(key, typed::<V>(old), agg.clone()));
            timestamp = timestamp.max(*ts);
        }
        if let Some(new) = &change.new {
            let start = aggregate.or_else(|| self.fold.init.as_ref().map(|init| init()));
            aggregate = Some((self.fold.add)(key, typed::<V>(new), start));
            if let Some((_, ts)) = &previous {
                timestamp = timestamp.max(*ts);
            }
        }
        store.put(key.clone(), aggregate.clone(), timestamp, ctx.changes);
        let old = previous.filter(|_| self.send_old).map(|(a, _)| Arc::new(a) as Value);
        let new = aggregate.map(|a| Arc::new(a) as Value);
        ctx.forwarded.push(change_item(&item, new, old, timestamp));
    }
}

/// How a regrouping writes changes to its repartition topic and reads
/// them back: a flag byte (1: has a new value, 2: has an old value), the
/// new value's length (4 bytes, big-endian) and bytes, then the old
/// value's bytes. The topic is the application's own; Java programs do
/// not read it.
fn change_codec<K: Data, V: Data>(key_serde: SharedSerde<K>, value_serde: SharedSerde<V>) -> (Encode, Decode) {
    let encode: Encode = {
        let (key_serde, value_serde) = (key_serde.clone(), value_serde.clone());
        Arc::new(move |item: &Item| {
            let change = item.value.as_ref().map(typed::<Change>);
            let bytes = |v: &Option<Value>| v.as_ref().and_then(|v| value_serde.serialize(typed::<V>(v)));
            let (new, old) = change.map_or((None, None), |c| (bytes(&c.new), bytes(&c.old)));
            let flags = u8::from(new.is_some()) | (u8::from(old.is_some()) << 1);
            let new = new.unwrap_or_default();
            let value = [&[flags][..], &(new.len() as u32).to_be_bytes(), &new, &old.unwrap_or_default()].concat();
            (key_serde.serialize(typed::<K>(&item.key)), Some(value))
        })
    };
    let decode: Decode = Arc::new(move |key, value| {
        let key: Value = Arc::new(key_serde.deserialize(key)?);
        let bytes = value.ok_or(SerdeError::Null)?;
        let short = || SerdeError::Length { expected: "at least 5", got: bytes.len() };
        let (&flags, rest) = bytes.split_first().ok_or_else(short)?;
        let (length, rest) = rest.split_first_chunk::<4>().ok_or_else(short)?;
        let length = u32::from_be_bytes(*length) as usize;
        let (new, old) = (rest.get(..length).ok_or_else(short)?, rest.get(length..).ok_or_else(short)?);
        let new = if flags & 1 != 0 { Some(Arc::new(value_serde.deserialize(Some(new))?) as Value) } else { None };
        let old = if flags & 2 != 0 { Some(Arc::new(value_serde.deserialize(Some(old))?) as Value) } else { None };
        Ok((key, Some(Arc::new(Change { new, old }) as Value)))
    });
    (encode, decode)
}

/// When a suppressed table emits (Kafka Streams' `Suppressed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed {
    /// Each window's final result, once, when the window closes (stream
    /// time past its end plus the grace period); nothing before.
    UntilWindowCloses,
}

impl Suppressed {
    /// Kafka Streams' `Suppressed.untilWindowCloses(unbounded())`.
    pub fn until_window_closes() -> Suppressed {
        Suppressed::UntilWindowCloses
    }
}

impl<K: Data + Hash + Eq, V: Data> KTable<Windowed<K>, V> {
    /// Holds back a windowed aggregation's updates and emits each
    /// window's final result once it closes, in the order windows end
    /// (then by key bytes), as Kafka Streams' `suppress` does. The buffer
    /// is a store with a changelog, so a restarted application still
    /// emits what it held back.
    ///
    /// # Panics
    /// If the table is not a windowed aggregation's (Kafka Streams refuses
    /// such a topology too).
    pub fn suppress(&self, suppressed: Suppressed) -> KTable<Windowed<K>, V> {
        let Suppressed::UntilWindowCloses = suppressed;
        let grace = self.window_grace_ms.expect("suppress(until_window_closes) needs the table of a windowed aggregation");
        let key_serde = self.key_serde.clone().expect("a windowed aggregation's table has a key serde");
        let value_serde = self.value_serde.clone().expect("a windowed aggregation's table has a value serde");
        let mut graph = self.graph.borrow_mut();
        let name = graph.next_name("KTABLE-SUPPRESS-");
        let store_name = graph.next_name("KTABLE-SUPPRESS-STATE-STORE-");
        let store = graph.add_store(store_name, None, |id| SuppressBuffer::maker(id, key_serde.clone(), value_serde.clone()));
        let make: MakeNode = Arc::new(move || {
            Box::new(ChangeNode(move |item: Item, change: &Change, ctx: &mut NodeContext<'_>| {
                let buffer = ctx.stores.get_mut::<SuppressBuffer<K, V>>(store);
                let update = change.new.as_ref().map(|v| typed::<V>(v).clone());
                buffer.put(typed::<Windowed<K>>(&item.key).clone(), update, item.timestamp, ctx.changes);
                let closed_by = buffer.observed.saturating_sub(grace);
                // A final deletion has nothing to say downstream.
                for (key, value, timestamp) in buffer.release(closed_by, ctx.changes) {
                    if let Some(value) = value {
                        ctx.forwarded.push(Item { key: Arc::new(key), value: Some(Arc::new(Change { new: Some(Arc::new(value)), old: None })), timestamp });
                    }
                }
            }))
        });
        let node = graph.add(name, NodeKind::Processor { make, stores: vec![store] }, &[self.node]);
        drop(graph);
        KTable {
            graph: self.graph.clone(),
            node,
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            view: self.view.clone(),
            window_grace_ms: self.window_grace_ms,
        }
    }
}

/// A table read whole, from every partition of its topic, by every task
/// (Kafka Streams' `GlobalKTable`): streams join it on any key they can
/// derive from their records, with no repartitioning. Its store is kept
/// from the topic itself, which is its changelog.
pub struct GlobalKTable<K, V> {
    store: usize,
    _types: PhantomData<fn() -> (K, V)>,
}

impl StreamsBuilder {
    /// A global table of the records of `topic`: each key's latest value,
    /// a null value deleting it. Its store is `<topic>-STATE-STORE-<n>`.
    pub fn global_table<KS: Serde, VS: Serde>(&self, topic: &str, key_serde: KS, value_serde: VS) -> GlobalKTable<KS::Value, VS::Value>
    where
        KS::Value: Data + Hash + Eq,
        VS::Value: Data,
    {
        let (key_serde, value_serde): (SharedSerde<KS::Value>, SharedSerde<VS::Value>) = (Arc::new(key_serde), Arc::new(value_serde));
        let mut graph = self.graph.borrow_mut();
        let store_name = graph.next_name(&format!("{topic}-STATE-STORE-"));
        let store = graph.add_store(store_name, None, |id| KeyValueStore::maker(id, key_serde.clone(), value_serde.clone()));
        graph.make_global(store);
        // Named as Kafka Streams names a global table's source and processor.
        let (source, processor) = (graph.next_name("KSTREAM-SOURCE-"), graph.next_name("KTABLE-SOURCE-"));
        let nodes_before = graph.node_count();
        let apply: crate::topology::ApplyGlobal = Arc::new(move |stores, key, value, timestamp| {
            let key = key_serde.deserialize(key)?;
            let value = value.map(|bytes| value_serde.deserialize(Some(bytes))).transpose()?;
            stores.get_mut::<KeyValueStore<KS::Value, VS::Value>>(store).put(key, value, timestamp, &mut Vec::new());
            Ok(())
        });
        graph.globals.push(crate::topology::GlobalDef { topic: topic.to_string(), store, apply, source, processor, nodes_before });
        GlobalKTable { store, _types: PhantomData }
    }
}

impl<K: Data + Hash + Eq, V: Data> KStream<K, V> {
    /// Joins each record with the global table's row whose key
    /// `key_mapper` derives from the record (inner join: records without
    /// a row are dropped); the result keeps the record's key and
    /// timestamp.
    pub fn join_global<GK: Data + Hash + Eq, GV: Data, R: Data>(
        &self,
        table: &GlobalKTable<GK, GV>,
        key_mapper: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        joiner: impl Fn(&V, &GV) -> R + Send + Sync + 'static,
    ) -> KStream<K, R> {
        // Kafka Streams names inner and left global-table joins alike.
        self.join_with_global("KSTREAM-LEFTJOIN-", table, key_mapper, move |v, row| row.map(|g| joiner(v, g)))
    }

    /// Joins each record with the global table's row whose key
    /// `key_mapper` derives, if there is one (left join).
    pub fn left_join_global<GK: Data + Hash + Eq, GV: Data, R: Data>(
        &self,
        table: &GlobalKTable<GK, GV>,
        key_mapper: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&GV>) -> R + Send + Sync + 'static,
    ) -> KStream<K, R> {
        self.join_with_global("KSTREAM-LEFTJOIN-", table, key_mapper, move |v, row| Some(joiner(v, row)))
    }

    fn join_with_global<GK: Data + Hash + Eq, GV: Data, R: Data>(
        &self,
        prefix: &str,
        table: &GlobalKTable<GK, GV>,
        key_mapper: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&GV>) -> Option<R> + Send + Sync + 'static,
    ) -> KStream<K, R> {
        let store = table.store;
        let functions = Arc::new((key_mapper, joiner));
        let make: MakeNode = Arc::new(move || {
            let functions = functions.clone();
            Box::new(StreamTableJoinNode(move |item: Item, ctx: &mut NodeContext<'_>| {
                let Some(value) = &item.value else { return };
                let (key, value) = (typed::<K>(&item.key), typed::<V>(value));
                let global_key = (functions.0)(key, value);
                let row = ctx.globals.get::<KeyValueStore<GK, GV>>(store).get(&global_key);
                if let Some(result) = (functions.1)(value, row.as_ref().map(|(g, _)| g)) {
                    ctx.forwarded.push(Item { value: Some(Arc::new(result)), ..item });
                }
            }))
        });
        let node = self.graph.borrow_mut().add_processor(prefix, make, Vec::new(), &[self.node]);
        self.with_node(node, self.key_serde.clone())
    }
}
