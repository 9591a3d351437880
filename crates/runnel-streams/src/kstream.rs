//! [`KStream`], a record stream, and its stateless operations.
//!
//! A stream may carry tombstones (null values: a table's deletions, or
//! null values read from a topic). Operations that keep the key pass them
//! on without calling your function; those that make a new key cannot, so
//! they drop them; sinks write them as null values; aggregations and joins
//! skip them, as Kafka Streams' do.

use std::cell::RefCell;
use std::hash::Hash;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use crate::aggregate::KGroupedStream;
use crate::serde::Serde;
use crate::topology::{
    encoder, item, owned, pass_through, repartition_through, typed, Data, FnNode, Graph, Grouped, Item, MakeNode, NodeKind, SharedSerde, Value,
};

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

/// What a stateless operation does with a tombstone.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tombstones {
    /// Forward it unchanged (the key is unchanged too).
    Forward,
    /// Drop it (the operation makes a new key from the value).
    Drop,
}

impl<K: Data, V: Data> KStream<K, V> {
    pub(crate) fn with_node<K2, V2>(&self, node: usize, key_serde: Option<SharedSerde<K2>>) -> KStream<K2, V2> {
        KStream { graph: self.graph.clone(), node, key_serde, _types: PhantomData }
    }

    /// Adds a stateless node that runs `step` on each record.
    pub(crate) fn then<K2, V2>(
        &self,
        prefix: &str,
        key_serde: Option<SharedSerde<K2>>,
        tombstones: Tombstones,
        step: impl Fn(&Item, &K, &V, &mut Vec<Item>) + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let step = Arc::new(step);
        let make: MakeNode = Arc::new(move || {
            let step = step.clone();
            Box::new(FnNode(move |item: Item, out: &mut Vec<Item>| match &item.value {
                Some(value) => step(&item, typed::<K>(&item.key), typed::<V>(value), out),
                None if tombstones == Tombstones::Forward => out.push(item),
                None => {}
            }))
        });
        let node = self.graph.borrow_mut().add_processor(prefix, make, Vec::new(), &[self.node]);
        self.with_node(node, key_serde)
    }

    /// Keeps the records for which `predicate` holds. A kept record is
    /// passed on as it came, so a value it alone held stays unshared.
    pub fn filter(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KStream<K, V> {
        let predicate = Arc::new(predicate);
        let make: MakeNode = Arc::new(move || {
            let predicate = predicate.clone();
            Box::new(FnNode(move |item: Item, out: &mut Vec<Item>| {
                let keep = item.value.as_ref().is_none_or(|value| predicate(typed::<K>(&item.key), typed::<V>(value)));
                if keep {
                    out.push(item);
                }
            }))
        });
        let node = self.graph.borrow_mut().add_processor("KSTREAM-FILTER-", make, Vec::new(), &[self.node]);
        self.with_node(node, self.key_serde.clone())
    }

    /// Drops the records for which `predicate` holds.
    pub fn filter_not(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KStream<K, V> {
        self.filter(move |k, v| !predicate(k, v))
    }

    /// A new value for each record, same key.
    pub fn map_values<V2: Data>(&self, f: impl Fn(&V) -> V2 + Send + Sync + 'static) -> KStream<K, V2> {
        self.then("KSTREAM-MAPVALUES-", self.key_serde.clone(), Tombstones::Forward, move |record, _, v, out| out.push(record.with_value(f(v))))
    }

    /// A new value for each record, made from the value itself: a value
    /// no other node holds is moved into `f` rather than copied (a
    /// Rust-only variant of `mapValues`, for values costly to copy).
    pub fn map_values_owned<V2: Data>(&self, f: impl Fn(V) -> V2 + Send + Sync + 'static) -> KStream<K, V2> {
        let f = Arc::new(f);
        let make: MakeNode = Arc::new(move || {
            let f = f.clone();
            Box::new(FnNode(move |item: Item, out: &mut Vec<Item>| {
                let Item { key, value, timestamp } = item;
                let value = value.map(|value| -> Value { Arc::new(f(owned::<V>(value))) });
                out.push(Item { key, value, timestamp });
            }))
        });
        let node = self.graph.borrow_mut().add_processor("KSTREAM-MAPVALUES-", make, Vec::new(), &[self.node]);
        self.with_node(node, self.key_serde.clone())
    }

    /// A new value for each record from its key and value, same key
    /// (Kafka Streams' `mapValues` with a `ValueMapperWithKey`).
    pub fn map_values_with_key<V2: Data>(&self, f: impl Fn(&K, &V) -> V2 + Send + Sync + 'static) -> KStream<K, V2> {
        self.then("KSTREAM-MAPVALUES-", self.key_serde.clone(), Tombstones::Forward, move |record, k, v, out| out.push(record.with_value(f(k, v))))
    }

    /// A new key and value for each record. A grouping or join after it
    /// repartitions by the new key.
    pub fn map<K2: Data, V2: Data>(&self, f: impl Fn(&K, &V) -> (K2, V2) + Send + Sync + 'static) -> KStream<K2, V2> {
        self.then("KSTREAM-MAP-", None, Tombstones::Drop, move |record, k, v, out| {
            let (k2, v2) = f(k, v);
            out.push(item(k2, v2, record.timestamp));
        })
    }

    /// A new key for each record, same value.
    pub fn select_key<K2: Data>(&self, f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static) -> KStream<K2, V> {
        self.then("KSTREAM-KEY-SELECT-", None, Tombstones::Drop, move |record, k, v, out| out.push(record.with_key(f(k, v))))
    }

    /// Zero or more records for each record.
    pub fn flat_map<K2: Data, V2: Data, I: IntoIterator<Item = (K2, V2)>>(&self, f: impl Fn(&K, &V) -> I + Send + Sync + 'static) -> KStream<K2, V2> {
        self.then("KSTREAM-FLATMAP-", None, Tombstones::Drop, move |record, k, v, out| {
            out.extend(f(k, v).into_iter().map(|(k2, v2)| item(k2, v2, record.timestamp)))
        })
    }

    /// Zero or more values for each record, same key.
    pub fn flat_map_values<V2: Data, I: IntoIterator<Item = V2>>(&self, f: impl Fn(&V) -> I + Send + Sync + 'static) -> KStream<K, V2> {
        self.then("KSTREAM-FLATMAPVALUES-", self.key_serde.clone(), Tombstones::Forward, move |record, _, v, out| {
            out.extend(f(v).into_iter().map(|v2| record.with_value(v2)))
        })
    }

    /// Looks at each record and passes it on unchanged.
    pub fn peek(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) -> KStream<K, V> {
        self.then("KSTREAM-PEEK-", self.key_serde.clone(), Tombstones::Forward, move |record, k, v, out| {
            f(k, v);
            out.push(record.clone());
        })
    }

    /// Looks at each record; the stream ends here.
    pub fn foreach(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) {
        let _: KStream<K, V> = self.then("KSTREAM-FOREACH-", None, Tombstones::Drop, move |_, k, v, _| f(k, v));
    }

    /// The records of both streams.
    pub fn merge(&self, other: &KStream<K, V>) -> KStream<K, V> {
        let node = self.graph.borrow_mut().add_processor("KSTREAM-MERGE-", pass_through(), Vec::new(), &[self.node, other.node]);
        let key_serde = self.key_serde.clone().filter(|_| other.key_serde.is_some());
        self.with_node(node, key_serde)
    }

    /// Splits the stream into branches (Kafka Streams' `split()`): each
    /// record goes to the first branch whose predicate it meets.
    pub fn split(&self) -> BranchedKStream<K, V> {
        let node = self.graph.borrow_mut().add_processor("KSTREAM-BRANCH-", pass_through(), Vec::new(), &[self.node]);
        BranchedKStream { stream: self.with_node(node, self.key_serde.clone()), predicates: Vec::new(), branches: Vec::new() }
    }

    /// Writes the stream to `topic` with the given serdes; tombstones are
    /// written as null values.
    pub fn to<KS: Serde<Value = K>, VS: Serde<Value = V>>(&self, topic: &str, key_serde: KS, value_serde: VS) {
        let encode = encoder(Arc::new(key_serde), Arc::new(value_serde));
        let mut graph = self.graph.borrow_mut();
        let name = graph.next_name("KSTREAM-SINK-");
        graph.add(name, NodeKind::Sink { topic: topic.into(), encode }, &[self.node]);
    }

    /// The same records, written to and read back from the internal topic
    /// `<application.id>-<node>-repartition`, so each reaches the task of
    /// its key's partition (Kafka Streams' `repartition()`).
    pub fn repartition<KS: Serde<Value = K>, VS: Serde<Value = V>>(&self, key_serde: KS, value_serde: VS) -> KStream<K, V> {
        let key_serde: SharedSerde<K> = Arc::new(key_serde);
        let mut graph = self.graph.borrow_mut();
        let name = graph.next_name("KSTREAM-REPARTITION-");
        let node = repartition_through(&mut graph, self.node, format!("{name}-repartition"), key_serde.clone(), Arc::new(value_serde));
        self.with_node(node, Some(key_serde))
    }

    /// This stream, or, if its key changed since its source, the same
    /// records read back from a repartition topic named after `node`
    /// (written with these serdes, partitioned by the new key): what a
    /// join or grouping needs so that equal keys meet in one task.
    pub(crate) fn repartitioned(&self, key_serde: SharedSerde<K>, value_serde: SharedSerde<V>, topic_prefix: &str) -> KStream<K, V> {
        if self.key_serde.is_some() {
            return self.with_node(self.node, self.key_serde.clone());
        }
        let mut graph = self.graph.borrow_mut();
        let node = repartition_through(&mut graph, self.node, format!("{topic_prefix}-repartition"), key_serde.clone(), value_serde);
        self.with_node(node, Some(key_serde))
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
        KGroupedStream { stream: self.with_node(self.node, Some(key_serde.clone())), key_serde, repartition: None }
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
        KGroupedStream { stream: self.with_node(self.node, Some(key_serde.clone())), key_serde, repartition }
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
}

/// A branch's test of a record.
type Predicate<K, V> = Arc<dyn Fn(&K, &V) -> bool + Send + Sync>;

/// A stream being split into branches; see [`KStream::split`].
pub struct BranchedKStream<K, V> {
    stream: KStream<K, V>,
    predicates: Vec<Predicate<K, V>>,
    branches: Vec<KStream<K, V>>,
}

impl<K: Data, V: Data> BranchedKStream<K, V> {
    /// Adds a branch for the records that meet `predicate` and no earlier
    /// branch's predicate.
    pub fn branch(mut self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        self.predicates.push(Arc::new(predicate));
        let branch = self.branch_node(Some(self.predicates.len() - 1));
        self.branches.push(branch);
        self
    }

    /// Adds a branch as [`BranchedKStream::branch`] does and hands it to
    /// `consumer` at once, as Kafka Streams' `Branched.withConsumer` does:
    /// what the consumer builds is numbered before later branches, and the
    /// branch is not among those returned at the end.
    pub fn branch_with(mut self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static, consumer: impl FnOnce(KStream<K, V>)) -> Self {
        self.predicates.push(Arc::new(predicate));
        consumer(self.branch_node(Some(self.predicates.len() - 1)));
        self
    }

    /// Hands the branch for the records no predicate took to `consumer`,
    /// and returns the other branches not handed to a consumer.
    pub fn default_branch_with(self, consumer: impl FnOnce(KStream<K, V>)) -> Vec<KStream<K, V>> {
        consumer(self.branch_node(None));
        self.branches
    }

    /// The branches, in the order added, plus one for the records no
    /// predicate took.
    pub fn default_branch(mut self) -> Vec<KStream<K, V>> {
        let branch = self.branch_node(None);
        self.branches.push(branch);
        self.branches
    }

    /// The branches, in the order added; records no predicate took are
    /// dropped.
    pub fn no_default_branch(self) -> Vec<KStream<K, V>> {
        self.branches
    }

    /// A branch taking the records whose first met predicate is `index`
    /// (`None`: none met; tombstones, which no predicate can judge, go
    /// there too). Named as Kafka Streams names branches: the split's name
    /// and the branch's number from 1, or 0 for the default branch.
    fn branch_node(&self, index: Option<usize>) -> KStream<K, V> {
        let predicates = self.predicates.clone();
        let takes = move |k: &K, v: &V| predicates.iter().position(|p| p(k, v)) == index;
        let make: MakeNode = Arc::new(move || {
            let takes = takes.clone();
            Box::new(FnNode(move |item: Item, out: &mut Vec<Item>| {
                let taken = match &item.value {
                    Some(v) => takes(typed::<K>(&item.key), typed::<V>(v)),
                    None => index.is_none(),
                };
                if taken {
                    out.push(item)
                }
            }))
        });
        let mut graph = self.stream.graph.borrow_mut();
        let name = format!("{}{}", graph.node_name(self.stream.node), index.map_or(0, |i| i + 1));
        // Kafka Streams registers the branch's name, which takes a number.
        let _ = graph.next_name("KSTREAM-BRANCH-");
        let node = graph.add(name, NodeKind::Processor { make, stores: Vec::new() }, &[self.stream.node]);
        self.stream.with_node(node, self.stream.key_serde.clone())
    }
}
