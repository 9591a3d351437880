//! The course's programs: rides counted per location, and per location in
//! 10-second windows.

use std::collections::BTreeMap;

use runnel_streams::serde::{I64Serde, JsonSerde, StringSerde, TimeWindowedSerde, Windowed};
use runnel_streams::{StreamsBuilder, TimeWindows, TopologyTestDriver};
use serde_json::{Map, Value};

use crate::rides;

type Ride = Map<String, Value>;

fn field(ride: &Ride, name: &str) -> String {
    ride[name].as_str().unwrap().to_string()
}

#[test]
fn rides_are_counted_per_drop_off_location() {
    let builder = StreamsBuilder::new();
    builder.stream("rides", StringSerde, JsonSerde::<Ride>::default()).group_by_key().count().to_stream().to("rides-pulocation-count", StringSerde, I64Serde);
    let mut driver = TopologyTestDriver::new(builder.build());
    let input = driver.input_topic("rides", StringSerde, JsonSerde::<Ride>::default());
    let output = driver.output_topic("rides-pulocation-count", StringSerde, I64Serde);
    let rides = rides();
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for (i, ride) in rides.iter().enumerate() {
        let key = field(ride, "DOLocationID");
        *expected.entry(key.clone()).or_default() += 1;
        driver.pipe(&input, &key, ride, 1_600_000_000_000 + i as i64);
    }
    let updates = driver.read(&output).unwrap();
    assert_eq!(updates.len(), rides.len(), "one update per ride");
    let last: BTreeMap<String, i64> = updates.iter().map(|r| (r.key.clone(), r.value)).collect();
    assert_eq!(last, expected);
    assert!(updates.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
}

#[test]
fn rides_are_counted_in_ten_second_windows_and_late_ones_dropped() {
    let windows = TimeWindows::of_size_and_grace(10_000, 5_000);
    let builder = StreamsBuilder::new();
    builder.stream("rides", StringSerde, JsonSerde::<Ride>::default()).group_by_key().windowed_by(windows).count().to_stream().to(
        "rides-pulocation-window-count",
        TimeWindowedSerde::new(StringSerde, 10_000),
        I64Serde,
    );
    let mut driver = TopologyTestDriver::new(builder.build());
    let input = driver.input_topic("rides", StringSerde, JsonSerde::<Ride>::default());
    let output = driver.output_topic("rides-pulocation-window-count", TimeWindowedSerde::new(StringSerde, 10_000), I64Serde);
    let ride = &rides()[0];
    let key = "132".to_string();
    for timestamp in [1_000, 4_000, 12_000, 21_000] {
        driver.pipe(&input, &key, ride, timestamp);
    }
    // Stream time is 21 s: the [0, 10 s) window closed at 15 s.
    driver.pipe(&input, &key, ride, 9_000);
    driver.pipe(&input, &key, ride, 19_000);
    let seen: Vec<(i64, i64, i64)> = driver.read(&output).unwrap().into_iter().map(|r| (r.key.window.start, r.value, r.timestamp)).collect();
    assert_eq!(seen, [(0, 1, 1_000), (0, 2, 4_000), (10_000, 1, 12_000), (20_000, 1, 21_000), (10_000, 2, 19_000)]);
    assert_eq!(driver.dropped_late_records(), 1);
    let _: Option<Windowed<String>> = None;
}

#[test]
fn a_restarted_application_resumes_its_counts_from_the_changelog() {
    let topology = || {
        let builder = StreamsBuilder::new();
        builder.stream("rides", StringSerde, StringSerde).group_by_key().count().to_stream().to("counts", StringSerde, I64Serde);
        builder.build()
    };
    let mut driver = TopologyTestDriver::new(topology());
    let input = driver.input_topic("rides", StringSerde, StringSerde);
    for i in 0..3 {
        driver.pipe(&input, &"132".to_string(), &format!("ride {i}"), i);
    }
    let mut driver = driver.restarted(topology());
    driver.pipe(&input, &"132".to_string(), &"ride 3".to_string(), 3);
    let output = driver.output_topic("counts", StringSerde, I64Serde);
    let counts: Vec<i64> = driver.read(&output).unwrap().into_iter().map(|r| r.value).collect();
    assert_eq!(counts, [4]);
}

#[test]
fn a_restarted_windowed_count_resumes_its_open_windows() {
    let topology = || {
        let builder = StreamsBuilder::new();
        builder.stream("rides", StringSerde, StringSerde).group_by_key().windowed_by(TimeWindows::of_size_and_grace(10_000, 5_000)).count().to_stream().to(
            "counts",
            TimeWindowedSerde::new(StringSerde, 10_000),
            I64Serde,
        );
        builder.build()
    };
    let mut driver = TopologyTestDriver::new(topology());
    let input = driver.input_topic("rides", StringSerde, StringSerde);
    for timestamp in [1_000, 2_000, 21_000] {
        driver.pipe(&input, &"132".to_string(), &"ride".to_string(), timestamp);
    }
    let mut driver = driver.restarted(topology());
    // The [20 s, 30 s) window goes on from 1; the [0, 10 s) one stays closed.
    driver.pipe(&input, &"132".to_string(), &"ride".to_string(), 22_000);
    driver.pipe(&input, &"132".to_string(), &"ride".to_string(), 3_000);
    let output = driver.output_topic("counts", TimeWindowedSerde::new(StringSerde, 10_000), I64Serde);
    let seen: Vec<(i64, i64)> = driver.read(&output).unwrap().into_iter().map(|r| (r.key.window.start, r.value)).collect();
    assert_eq!(seen, [(20_000, 2)]);
    assert_eq!(driver.dropped_late_records(), 1, "stream time came back with the store");
}
