//! The foreign-key table–table join (Kafka Streams' KIP-213): each row of
//! the left table joins the right table's row whose key the left row's
//! value names.
//!
//! As in Kafka Streams it works across partitions in three steps, through
//! two internal topics. A left row's change *subscribes* its key to its
//! foreign key (and unsubscribes it from the old one), through a topic
//! partitioned by foreign key; beside the right table, the subscription is
//! kept in a store and *answered* with the right row; a change to a right
//! row answers every key subscribed to it. Answers go back, through a
//! topic partitioned by the left key, to be *resolved* against the left
//! row as it is now: an answer carries a hash of the left value it was
//! asked for, and one that no longer matches is stale and dropped. The
//! instructions a subscription carries, and which changes emit a result
//! or a tombstone, are Kafka Streams' own.

use std::collections::BTreeMap;
use std::hash::Hash;
use std::rc::Rc;
use std::sync::Arc;

use crate::serde::{Serde, SerdeError};
use crate::store::KeyValueStore;
use crate::table::{Getter, KTable, TableView};
use crate::topology::{typed, Change, Data, Decode, Encode, Graph, Item, MakeNode, Node, NodeContext, NodeKind, SharedSerde, Value};

/// What a subscription asks of the right side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Instruction {
    /// Unsubscribe, and answer with no row (the left row is gone).
    DeleteKeyAndPropagate = 0,
    /// Unsubscribe, no answer (the left row moved to another key).
    DeleteKeyNoPropagate = 1,
    /// Answer with the row, or with none if there is none.
    PropagateNullIfNoValue = 2,
    /// Answer only if there is a row.
    PropagateOnlyIfValue = 3,
}

impl Instruction {
    fn from_byte(byte: u8) -> Option<Instruction> {
        [Instruction::DeleteKeyAndPropagate, Instruction::DeleteKeyNoPropagate, Instruction::PropagateNullIfNoValue, Instruction::PropagateOnlyIfValue]
            .into_iter()
            .find(|i| *i as u8 == byte)
    }
}

/// A left key's subscription to a foreign key.
#[derive(Clone)]
struct Subscription<K> {
    key: K,
    /// The hash of the left value that asked (`None`: it was deleted).
    hash: Option<u64>,
    instruction: Instruction,
}

/// The right side's answer to a left key.
#[derive(Clone)]
struct Response<VO> {
    hash: Option<u64>,
    row: Option<VO>,
}

/// The keys subscribed to one foreign key, by their bytes (the order in
/// which Kafka Streams' prefix scan finds them), with their hashes.
type Subscribers<K> = BTreeMap<Vec<u8>, (K, Option<u64>)>;

/// A 64-bit FNV-1a hash of a left value's bytes: stable across processes
/// and versions, as a hash that travels through a topic must be.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

fn put_hash(out: &mut Vec<u8>, hash: Option<u64>) {
    match hash {
        Some(hash) => {
            out.push(1);
            out.extend_from_slice(&hash.to_be_bytes());
        }
        None => out.push(0),
    }
}

fn take_hash(bytes: &[u8]) -> Result<(Option<u64>, &[u8]), SerdeError> {
    let short = SerdeError::Length { expected: "a hash", got: bytes.len() };
    match bytes.split_first() {
        Some((0, rest)) => Ok((None, rest)),
        Some((_, rest)) => {
            let (hash, rest) = rest.split_first_chunk::<8>().ok_or(short)?;
            Ok((Some(u64::from_be_bytes(*hash)), rest))
        }
        None => Err(short),
    }
}

/// The subscription store's value layout: each subscriber's key length (4
/// bytes), key and hash.
struct SubscribersSerde<K>(SharedSerde<K>);

impl<K: Data> Serde for SubscribersSerde<K> {
    type Value = Subscribers<K>;
    fn serialize(&self, subscribers: &Subscribers<K>) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for (key_bytes, (_, hash)) in subscribers {
            out.extend_from_slice(&(key_bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(key_bytes);
            put_hash(&mut out, *hash);
        }
        Some(out)
    }
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<Subscribers<K>, SerdeError> {
        let mut rest = bytes.ok_or(SerdeError::Null)?;
        let mut subscribers = BTreeMap::new();
        while !rest.is_empty() {
            let short = SerdeError::Length { expected: "a subscriber", got: rest.len() };
            let (length, tail) = rest.split_first_chunk::<4>().ok_or(short.clone())?;
            let length = u32::from_be_bytes(*length) as usize;
            let key_bytes = tail.get(..length).ok_or(short)?;
            let (hash, tail) = take_hash(&tail[length..])?;
            subscribers.insert(key_bytes.to_vec(), (self.0.deserialize(Some(key_bytes))?, hash));
            rest = tail;
        }
        Ok(subscribers)
    }
}

/// A node built from a closure.
struct FnNodeCtx<F>(F);

impl<F: FnMut(Item, &mut NodeContext<'_>) + Send> Node for FnNodeCtx<F> {
    fn process(&mut self, item: Item, ctx: &mut NodeContext<'_>) {
        (self.0)(item, ctx);
    }
}

/// Writes `parents`' records to the internal topic `topic` and reads them
/// back; returns the reading source.
fn through(graph: &mut Graph, parents: &[usize], topic: String, encode: Encode, decode: Decode) -> usize {
    let sink = graph.next_name("KTABLE-SINK-");
    graph.add(sink, NodeKind::Sink { topic: topic.as_str().into(), encode }, parents);
    let source = graph.next_name("KTABLE-SOURCE-");
    let source = graph.add(source, NodeKind::Source { topics: vec![topic.clone()], decode, timestamps: None }, &[]);
    graph.add_internal_topic(topic);
    source
}

impl<K: Data + Hash + Eq, V: Data> KTable<K, V> {
    /// Joins each row with the other table's row whose key `foreign_key`
    /// takes from the row's value (inner join: rows without a match have
    /// no result, and a row that loses its match is deleted).
    ///
    /// # Panics
    /// If either table lacks the serdes the join's topics need (tables
    /// read from topics, made with `to_table` or by aggregations have
    /// them).
    pub fn join_on_foreign_key<FK: Data + Hash + Eq, VO: Data, R: Data>(
        &self,
        other: &KTable<FK, VO>,
        foreign_key: impl Fn(&V) -> FK + Send + Sync + 'static,
        joiner: impl Fn(&V, &VO) -> R + Send + Sync + 'static,
    ) -> KTable<K, R> {
        self.foreign_key_join(other, false, Arc::new(foreign_key), Arc::new(move |v, o| o.map(|o| joiner(v, o))))
    }

    /// Joins each row with the other table's row its value names, if there
    /// is one (left join: every row has a result).
    ///
    /// # Panics
    /// As [`KTable::join_on_foreign_key`].
    pub fn left_join_on_foreign_key<FK: Data + Hash + Eq, VO: Data, R: Data>(
        &self,
        other: &KTable<FK, VO>,
        foreign_key: impl Fn(&V) -> FK + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VO>) -> R + Send + Sync + 'static,
    ) -> KTable<K, R> {
        self.foreign_key_join(other, true, Arc::new(foreign_key), Arc::new(move |v, o| Some(joiner(v, o))))
    }

    #[allow(clippy::type_complexity)]
    fn foreign_key_join<FK: Data + Hash + Eq, VO: Data, R: Data>(
        &self,
        other: &KTable<FK, VO>,
        left_join: bool,
        extract: Arc<dyn Fn(&V) -> FK + Send + Sync>,
        joiner: Arc<dyn Fn(&V, Option<&VO>) -> Option<R> + Send + Sync>,
    ) -> KTable<K, R> {
        let key_serde = self.key_serde.clone().expect("a foreign-key join needs the left table's key serde");
        let value_serde = self.value_serde.clone().expect("a foreign-key join needs the left table's value serde");
        let fk_serde = other.key_serde.clone().expect("a foreign-key join needs the right table's key serde");
        let row_serde = other.value_serde.clone().expect("a foreign-key join needs the right table's value serde");
        // The left side sends old values, to unsubscribe from old keys.
        (self.view().send_old_values)(true);
        let (left_getter, left_stores) = self.lookup();
        let (right_getter, right_stores) = other.lookup();
        let hash_of = {
            let value_serde = value_serde.clone();
            Arc::new(move |v: &V| value_serde.serialize(v).map(|bytes| fnv1a(&bytes)))
        };

        let mut graph = self.graph.borrow_mut();
        // Nodes, store and topics are named and numbered as Kafka Streams'
        // are, so the internal topics get the same names.
        // 1. Subscribe: each left change to the foreign keys it leaves and joins.
        let registration = format!("{}-topic", graph.next_name("KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-"));
        let send: MakeNode = {
            let (extract, fk_serde, hash_of) = (extract.clone(), fk_serde.clone(), hash_of.clone());
            Arc::new(move || {
                let (extract, fk_serde, hash_of) = (extract.clone(), fk_serde.clone(), hash_of.clone());
                Box::new(FnNodeCtx(move |item: Item, ctx: &mut NodeContext<'_>| {
                    let Some(change) = &item.value else { return };
                    let change = typed::<Change>(change);
                    let key = typed::<K>(&item.key);
                    let (new, old) = (change.new.as_ref().map(typed::<V>), change.old.as_ref().map(typed::<V>));
                    let hash = new.and_then(|v| hash_of(v));
                    let mut subscribe = |fk: Option<FK>, instruction: Instruction| {
                        let subscription = Subscription { key: key.clone(), hash, instruction };
                        ctx.forwarded.push(Item { key: Arc::new(fk), value: Some(Arc::new(subscription)), timestamp: item.timestamp });
                    };
                    let (old_fk, new_fk) = (old.map(|v| extract(v)), new.map(|v| extract(v)));
                    let moved = |a: &FK, b: &FK| fk_serde.serialize(a) != fk_serde.serialize(b);
                    if left_join {
                        if old.is_none() && new.is_none() {
                            return;
                        }
                        if let Some(old_fk) = &old_fk {
                            if new_fk.as_ref().is_none_or(|n| moved(n, old_fk)) {
                                subscribe(Some(old_fk.clone()), Instruction::DeleteKeyNoPropagate);
                            }
                        }
                        subscribe(new_fk, Instruction::PropagateNullIfNoValue);
                    } else {
                        match (new_fk, old_fk) {
                            (Some(new_fk), Some(old_fk)) if moved(&new_fk, &old_fk) => {
                                subscribe(Some(old_fk), Instruction::DeleteKeyNoPropagate);
                                subscribe(Some(new_fk), Instruction::PropagateNullIfNoValue);
                            }
                            (Some(new_fk), _) => subscribe(Some(new_fk), Instruction::PropagateOnlyIfValue),
                            (None, Some(old_fk)) => subscribe(Some(old_fk), Instruction::DeleteKeyAndPropagate),
                            (None, None) => {}
                        }
                    }
                }))
            })
        };
        let send = graph.add_processor("KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-", send, Vec::new(), &[self.node]);
        let encode: Encode = {
            let (fk_serde, key_serde) = (fk_serde.clone(), key_serde.clone());
            Arc::new(move |item: &Item| {
                let fk = typed::<Option<FK>>(&item.key).as_ref().and_then(|fk| fk_serde.serialize(fk));
                let subscription = item.value.as_ref().map(typed::<Subscription<K>>);
                let value = subscription.map(|s| {
                    let mut out = vec![s.instruction as u8];
                    put_hash(&mut out, s.hash);
                    out.extend(key_serde.serialize(&s.key).unwrap_or_default());
                    out
                });
                (fk, value)
            })
        };
        let decode: Decode = {
            let (fk_serde, key_serde) = (fk_serde.clone(), key_serde.clone());
            Arc::new(move |key, value| {
                let fk: Option<FK> = key.map(|bytes| fk_serde.deserialize(Some(bytes))).transpose()?;
                let bytes = value.ok_or(SerdeError::Null)?;
                let (&instruction, rest) = bytes.split_first().ok_or(SerdeError::Length { expected: "a subscription", got: 0 })?;
                let instruction = Instruction::from_byte(instruction).ok_or(SerdeError::Length { expected: "an instruction", got: bytes.len() })?;
                let (hash, rest) = take_hash(rest)?;
                let subscription = Subscription { key: key_serde.deserialize(Some(rest))?, hash, instruction };
                Ok((Arc::new(fk) as Value, Some(Arc::new(subscription) as Value)))
            })
        };
        let registrations = through(&mut graph, &[send], registration, encode, decode);

        // 2. Answer, beside the right table: keep the subscription, send the row.
        let store_name = graph.next_name("KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-");
        let subscribers_serde: SharedSerde<Subscribers<K>> = Arc::new(SubscribersSerde(key_serde.clone()));
        let store = graph.add_store(store_name, None, |id| KeyValueStore::maker(id, fk_serde.clone(), subscribers_serde.clone()));
        // Keep the subscription...
        let keep: MakeNode = {
            let key_serde = key_serde.clone();
            Arc::new(move || {
                let key_serde = key_serde.clone();
                Box::new(FnNodeCtx(move |item: Item, ctx: &mut NodeContext<'_>| {
                    let Some(subscription) = &item.value else { return };
                    let subscription = typed::<Subscription<K>>(subscription);
                    if let Some(fk) = typed::<Option<FK>>(&item.key) {
                        let subscribers = ctx.stores.get_mut::<KeyValueStore<FK, Subscribers<K>>>(store);
                        let mut current = subscribers.load(fk).map(|(s, _)| s.clone()).unwrap_or_default();
                        let key_bytes = key_serde.serialize(&subscription.key).unwrap_or_default();
                        if matches!(subscription.instruction, Instruction::DeleteKeyAndPropagate | Instruction::DeleteKeyNoPropagate) {
                            current.remove(&key_bytes);
                        } else {
                            current.insert(key_bytes, (subscription.key.clone(), subscription.hash));
                        }
                        let value = (!current.is_empty()).then_some(current);
                        subscribers.put(fk.clone(), value, item.timestamp, ctx.changes);
                    }
                    ctx.forwarded.push(item);
                }))
            })
        };
        let keep = graph.add_processor("KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-", keep, vec![store], &[registrations]);
        // ...then answer it with the right row.
        let answer: MakeNode = {
            let right_getter = right_getter.clone();
            Arc::new(move || {
                let right_getter = right_getter.clone();
                Box::new(FnNodeCtx(move |item: Item, ctx: &mut NodeContext<'_>| {
                    let Some(subscription) = &item.value else { return };
                    let subscription = typed::<Subscription<K>>(subscription);
                    let Some(fk) = typed::<Option<FK>>(&item.key) else {
                        if subscription.instruction == Instruction::PropagateNullIfNoValue {
                            respond::<K, VO>(ctx, &subscription.key, subscription.hash, None, item.timestamp);
                        }
                        return;
                    };
                    let row = right_getter(ctx.stores, fk);
                    let timestamp = row.as_ref().map_or(item.timestamp, |(_, ts)| item.timestamp.max(*ts));
                    let row = row.map(|(r, _)| r);
                    match subscription.instruction {
                        Instruction::DeleteKeyAndPropagate => respond::<K, VO>(ctx, &subscription.key, subscription.hash, None, timestamp),
                        Instruction::PropagateNullIfNoValue => respond(ctx, &subscription.key, subscription.hash, row, timestamp),
                        Instruction::PropagateOnlyIfValue if row.is_some() => respond(ctx, &subscription.key, subscription.hash, row, timestamp),
                        _ => {}
                    }
                }))
            })
        };
        let answer = graph.add_processor("KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-", answer, right_stores.clone(), &[keep]);
        // A change to a right row answers every key subscribed to it.
        let foreign: MakeNode = Arc::new(move || {
            Box::new(FnNodeCtx(move |item: Item, ctx: &mut NodeContext<'_>| {
                let Some(change) = &item.value else { return };
                let change = typed::<Change>(change);
                let fk = typed::<FK>(&item.key);
                let Some((subscribers, _)) = ctx.stores.get::<KeyValueStore<FK, Subscribers<K>>>(store).get(fk) else { return };
                let row = change.new.as_ref().map(|r| typed::<VO>(r).clone());
                for (key, hash) in subscribers.into_values() {
                    respond(ctx, &key, hash, row.clone(), item.timestamp);
                }
            }))
        });
        let foreign = graph.add_processor("KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR-", foreign, vec![store], &[other.node]);

        // 3. Resolve, beside the left table: drop stale answers, join the rest.
        let response = format!("{}-topic", graph.next_name("KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-"));
        let encode: Encode = {
            let (key_serde, row_serde) = (key_serde.clone(), row_serde.clone());
            Arc::new(move |item: &Item| {
                let answer = item.value.as_ref().map(typed::<Response<VO>>);
                let value = answer.map(|a| {
                    let mut out = Vec::new();
                    put_hash(&mut out, a.hash);
                    match a.row.as_ref().and_then(|r| row_serde.serialize(r)) {
                        Some(bytes) => {
                            out.push(1);
                            out.extend(bytes);
                        }
                        None => out.push(0),
                    }
                    out
                });
                (key_serde.serialize(typed::<K>(&item.key)), value)
            })
        };
        let decode: Decode = {
            let (key_serde, row_serde) = (key_serde.clone(), row_serde.clone());
            Arc::new(move |key, value| {
                let key = key_serde.deserialize(key)?;
                let (hash, rest) = take_hash(value.ok_or(SerdeError::Null)?)?;
                let row = match rest.split_first() {
                    Some((1, bytes)) => Some(row_serde.deserialize(Some(bytes))?),
                    _ => None,
                };
                Ok((Arc::new(key) as Value, Some(Arc::new(Response { hash, row }) as Value)))
            })
        };
        let responses = through(&mut graph, &[answer, foreign], response, encode, decode);
        let resolve: MakeNode = {
            let (left_getter, joiner, hash_of) = (left_getter.clone(), joiner.clone(), hash_of.clone());
            Arc::new(move || {
                let (left_getter, joiner, hash_of) = (left_getter.clone(), joiner.clone(), hash_of.clone());
                Box::new(FnNodeCtx(move |item: Item, ctx: &mut NodeContext<'_>| {
                    let Some(answer) = &item.value else { return };
                    let answer = typed::<Response<VO>>(answer);
                    let current = left_getter(ctx.stores, typed::<K>(&item.key)).map(|(v, _)| v);
                    if current.as_ref().and_then(|v| hash_of(v)) != answer.hash {
                        return;
                    }
                    let result = match &current {
                        Some(v) if answer.row.is_some() || left_join => joiner(v, answer.row.as_ref()),
                        _ => None,
                    };
                    let change = Change { new: result.map(|r| Arc::new(r) as Value), old: None };
                    ctx.forwarded.push(Item { key: item.key.clone(), value: Some(Arc::new(change)), timestamp: item.timestamp });
                }))
            })
        };
        let resolve = graph.add_processor("KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR-", resolve, left_stores.clone(), &[responses]);
        let output = graph.add_processor("KTABLE-FK-JOIN-OUTPUT-", crate::topology::pass_through(), Vec::new(), &[resolve]);
        // Kafka Streams names the result's store here, used or not.
        graph.next_name("KTABLE-FK-JOIN-OUTPUT-STATE-STORE-");
        drop(graph);

        // Looked up, the result is the join of the rows as they are now.
        let getter: Getter<K, R> = {
            let (left_getter, right_getter, extract, joiner) = (left_getter, right_getter, extract, joiner);
            Arc::new(move |stores, key| {
                let (v, left_ts) = left_getter(stores, key)?;
                let row = right_getter(stores, &extract(&v));
                let timestamp = row.as_ref().map_or(left_ts, |(_, ts)| left_ts.max(*ts));
                if row.is_none() && !left_join {
                    return None;
                }
                joiner(&v, row.as_ref().map(|(r, _)| r)).map(|r| (r, timestamp))
            })
        };
        let stores = [left_stores, right_stores].concat();
        let view = TableView { getter: Box::new(move || (getter.clone(), stores.clone())), send_old_values: Box::new(|_| false) };
        KTable::from_parts(&self.graph, output, Some(key_serde), None, Rc::new(view))
    }
}

/// Sends an answer to `key`.
fn respond<K: Data, VO: Data>(ctx: &mut NodeContext<'_>, key: &K, hash: Option<u64>, row: Option<VO>, timestamp: i64) {
    ctx.forwarded.push(Item { key: Arc::new(key.clone()), value: Some(Arc::new(Response { hash, row })), timestamp });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::StringSerde;

    #[test]
    fn subscribers_round_trip_through_their_serde() {
        let serde = SubscribersSerde::<String>(Arc::new(StringSerde));
        let mut subscribers = Subscribers::new();
        subscribers.insert(b"a".to_vec(), ("a".to_string(), Some(7)));
        subscribers.insert(b"bb".to_vec(), ("bb".to_string(), None));
        let bytes = serde.serialize(&subscribers);
        let back = serde.deserialize(bytes.as_deref()).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[&b"a".to_vec()].1, Some(7));
        assert_eq!(back[&b"bb".to_vec()].1, None);
    }

    #[test]
    fn the_value_hash_is_fnv1a() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn instructions_round_trip_through_their_byte() {
        for instruction in
            [Instruction::DeleteKeyAndPropagate, Instruction::DeleteKeyNoPropagate, Instruction::PropagateNullIfNoValue, Instruction::PropagateOnlyIfValue]
        {
            assert_eq!(Instruction::from_byte(instruction as u8), Some(instruction));
        }
        assert_eq!(Instruction::from_byte(9), None);
    }
}
