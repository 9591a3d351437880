//! Tables: sources materialized only when looked up, deletions as
//! tombstones, joins with streams and tables, and regrouping that
//! subtracts the row a change replaces. (Byte-for-byte agreement with Kafka
//! Streams on larger inputs is `tests/compat/test_streams_oracle.py`.)

use runnel_streams::serde::{I64Serde, Nullable, StringSerde};
use runnel_streams::{Grouped, Joined, StreamsBuilder, TopologyTestDriver};

fn text(s: &str) -> String {
    s.to_string()
}

/// Every record written to `topic`, values `None` for tombstones.
fn changes(driver: &mut TopologyTestDriver, topic: &str) -> Vec<(String, Option<String>)> {
    let output = driver.output_topic(topic, StringSerde, Nullable(StringSerde));
    driver.read(&output).unwrap().into_iter().map(|r| (r.key, r.value)).collect()
}

#[test]
fn a_table_source_is_materialized_only_when_something_looks_it_up() {
    let builder = StreamsBuilder::new();
    builder.table("zones", StringSerde, StringSerde).to_stream().to("out", StringSerde, StringSerde);
    let described = builder.build().describe();
    assert!(described.contains("Source: KSTREAM-SOURCE-0000000001 (topics: [zones])"), "{described}");
    assert!(described.contains("Processor: KTABLE-SOURCE-0000000002 (stores: [])"), "{described}");

    let builder = StreamsBuilder::new();
    let zones = builder.table("zones", StringSerde, StringSerde);
    builder.stream("rides", StringSerde, StringSerde).join_table(&zones, |ride, zone| format!("{ride} in {zone}"), Joined::with(StringSerde, StringSerde));
    let described = builder.build().describe();
    assert!(described.contains("Processor: KTABLE-SOURCE-0000000002 (stores: [zones-STATE-STORE-0000000000])"), "{described}");
    assert!(described.contains("Processor: KSTREAM-JOIN-0000000004 (stores: [zones-STATE-STORE-0000000000])"), "{described}");
}

#[test]
fn stream_records_join_the_table_row_of_their_time_and_deletions_are_tombstones() {
    let builder = StreamsBuilder::new();
    let zones = builder.table("zones", StringSerde, StringSerde);
    let rides = builder.stream("rides", StringSerde, StringSerde);
    rides.left_join_table(&zones, |ride, zone| format!("{ride}@{}", zone.map_or("?", |z| z)), Joined::with(StringSerde, StringSerde)).to(
        "enriched",
        StringSerde,
        StringSerde,
    );
    zones.to_stream().to("zone-changes", StringSerde, StringSerde);
    let mut driver = TopologyTestDriver::new(builder.build());
    let (zone_input, ride_input) = (driver.input_topic("zones", StringSerde, Nullable(StringSerde)), driver.input_topic("rides", StringSerde, StringSerde));
    driver.pipe(&ride_input, &text("1"), &text("r1"), 1);
    driver.pipe(&zone_input, &text("1"), &Some(text("Newark")), 2);
    driver.pipe(&ride_input, &text("1"), &text("r2"), 3);
    driver.pipe(&zone_input, &text("1"), &None, 4);
    driver.pipe(&ride_input, &text("1"), &text("r3"), 5);
    assert_eq!(changes(&mut driver, "enriched"), [(text("1"), Some(text("r1@?"))), (text("1"), Some(text("r2@Newark"))), (text("1"), Some(text("r3@?")))]);
    assert_eq!(changes(&mut driver, "zone-changes"), [(text("1"), Some(text("Newark"))), (text("1"), None)]);
    let store = driver.key_value_store::<String, String>("zones-STATE-STORE-0000000000").expect("the joined table is materialized");
    assert!(store.is_empty(), "the deletion removed the row");
}

#[test]
fn tables_join_on_either_side_s_changes() {
    let builder = StreamsBuilder::new();
    let zones = builder.table("zones", StringSerde, StringSerde);
    let notes = builder.table("notes", StringSerde, StringSerde);
    zones.join(&notes, |z, n| format!("{z}+{n}")).to_stream().to("inner", StringSerde, StringSerde);
    zones.outer_join(&notes, |z, n| format!("{}+{}", z.map_or("-", |z| z), n.map_or("-", |n| n))).to_stream().to("outer", StringSerde, StringSerde);
    let mut driver = TopologyTestDriver::new(builder.build());
    let (zone_input, note_input) =
        (driver.input_topic("zones", StringSerde, Nullable(StringSerde)), driver.input_topic("notes", StringSerde, Nullable(StringSerde)));
    driver.pipe(&zone_input, &text("1"), &Some(text("Newark")), 1);
    driver.pipe(&note_input, &text("1"), &Some(text("airport")), 2);
    driver.pipe(&zone_input, &text("1"), &None, 3);
    assert_eq!(changes(&mut driver, "inner"), [(text("1"), Some(text("Newark+airport"))), (text("1"), None)]);
    assert_eq!(
        changes(&mut driver, "outer"),
        [(text("1"), Some(text("Newark+-"))), (text("1"), Some(text("Newark+airport"))), (text("1"), Some(text("-+airport")))]
    );
}

#[test]
fn a_regrouped_table_subtracts_the_row_a_change_replaces() {
    let builder = StreamsBuilder::new();
    builder
        .table("zones", StringSerde, StringSerde)
        .group_by(|_, borough| (borough.clone(), borough.clone()), Grouped::with(StringSerde, StringSerde))
        .count()
        .to_stream()
        .to("per-borough", StringSerde, I64Serde);
    let mut driver = TopologyTestDriver::new(builder.build());
    let input = driver.input_topic("zones", StringSerde, Nullable(StringSerde));
    driver.pipe(&input, &text("1"), &Some(text("Queens")), 1);
    driver.pipe(&input, &text("2"), &Some(text("Queens")), 2);
    driver.pipe(&input, &text("2"), &Some(text("Bronx")), 3);
    driver.pipe(&input, &text("1"), &None, 4);
    let output = driver.output_topic("per-borough", StringSerde, I64Serde);
    let counts: Vec<(String, i64)> = driver.read(&output).unwrap().into_iter().map(|r| (r.key, r.value)).collect();
    let expected = [("Queens", 1), ("Queens", 2), ("Queens", 1), ("Bronx", 1), ("Queens", 0)];
    assert_eq!(counts, expected.map(|(k, n)| (text(k), n)));
}
