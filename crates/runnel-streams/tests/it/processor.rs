//! The Processor API: stores connected by name, logged and restored, and
//! punctuation on wall-clock time advanced by hand.

use runnel_streams::processor::{Processor, ProcessorContext, Punctuation, StoreBuilder};
use runnel_streams::serde::{I64Serde, StringSerde};
use runnel_streams::{StreamsBuilder, Topology, TopologyTestDriver};

/// Sums ride fares per key; every minute of wall-clock time, forwards the
/// sums and clears them.
struct FareTotals;

impl Processor<String, i64, String, i64> for FareTotals {
    fn process(&mut self, key: &String, fare: &i64, ctx: &mut ProcessorContext<'_, String, i64>) {
        let mut totals = ctx.key_value_store::<String, i64>("totals");
        let total = totals.get(key).unwrap_or(0) + fare;
        totals.put(key.clone(), total);
    }

    fn punctuations(&self) -> Vec<Punctuation> {
        vec![Punctuation::wall_clock_time(60_000)]
    }

    fn punctuate(&mut self, _: usize, _: i64, ctx: &mut ProcessorContext<'_, String, i64>) {
        let mut totals = ctx.key_value_store::<String, i64>("totals");
        let mut all = totals.all();
        all.sort();
        for (key, _) in &all {
            totals.delete(key);
        }
        for (key, total) in all {
            ctx.forward(key, total);
        }
    }
}

fn topology() -> Topology {
    let builder = StreamsBuilder::new();
    builder.add_state_store(StoreBuilder::key_value("totals", StringSerde, I64Serde));
    builder.stream("fares", StringSerde, I64Serde).process(|| FareTotals, &["totals"]).to("totals", StringSerde, I64Serde);
    builder.build()
}

#[test]
fn wall_clock_punctuation_runs_when_the_driver_s_clock_passes_it() {
    let mut driver = TopologyTestDriver::new(topology());
    let fares = driver.input_topic("fares", StringSerde, I64Serde);
    let totals = driver.output_topic("totals", StringSerde, I64Serde);
    driver.pipe(&fares, &"132".to_string(), &12, 1);
    driver.pipe(&fares, &"132".to_string(), &30, 2);
    driver.pipe(&fares, &"48".to_string(), &7, 3);
    driver.advance_wall_clock(59_999);
    assert!(driver.read(&totals).unwrap().is_empty(), "a minute has not passed");
    driver.advance_wall_clock(1);
    let out: Vec<(String, i64)> = driver.read(&totals).unwrap().into_iter().map(|r| (r.key, r.value)).collect();
    assert_eq!(out, [("132".to_string(), 42), ("48".to_string(), 7)]);
    assert_eq!(driver.key_value_store::<String, i64>("totals").map(|s| s.len()), Some(0), "the punctuation cleared the store");
}

#[test]
fn a_processor_s_store_is_restored_from_its_changelog() {
    let mut driver = TopologyTestDriver::new(topology());
    let fares = driver.input_topic("fares", StringSerde, I64Serde);
    driver.pipe(&fares, &"132".to_string(), &12, 1);
    let mut driver = driver.restarted(topology());
    let fares = driver.input_topic("fares", StringSerde, I64Serde);
    driver.pipe(&fares, &"132".to_string(), &30, 2);
    driver.advance_wall_clock(60_000);
    let totals = driver.output_topic("totals", StringSerde, I64Serde);
    let out: Vec<(String, i64)> = driver.read(&totals).unwrap().into_iter().map(|r| (r.key, r.value)).collect();
    assert_eq!(out, [("132".to_string(), 42)]);
}
