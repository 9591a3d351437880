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

/// Milliseconds since the epoch of a `YYYY-MM-DD HH:MM:SS` time (UTC).
fn epoch_ms(datetime: &str) -> i64 {
    let n = |range: std::ops::Range<usize>| datetime[range].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    ((days * 24 + n(11..13)) * 60 + n(14..16)) * 60_000 + n(17..19) * 1000
}

#[test]
fn rides_join_pickups_at_their_drop_off_location_within_ten_minutes() {
    use runnel_streams::{JoinWindows, StreamJoined};
    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
    struct Pickup {
        #[serde(rename = "PULocationID")]
        pu_location_id: String,
        tpep_pickup_datetime: String,
    }
    let builder = StreamsBuilder::new();
    let rides_stream = builder.stream("rides", StringSerde, JsonSerde::<Ride>::default());
    let pickups = builder.stream("rides_location", StringSerde, JsonSerde::<Pickup>::default()).select_key(|_, p| p.pu_location_id.clone());
    rides_stream
        .join(
            &pickups,
            |ride: &Ride, pickup: &Pickup| {
                let apart = (epoch_ms(&field(ride, "tpep_dropoff_datetime")) - epoch_ms(&pickup.tpep_pickup_datetime)).abs();
                (apart <= 10 * 60_000).then(|| {
                    serde_json::json!({
                        "VendorID": field(ride, "VendorID"),
                        "PULocationID": pickup.pu_location_id,
                        "pickupTime": pickup.tpep_pickup_datetime,
                        "lastDropoffTime": field(ride, "tpep_dropoff_datetime"),
                    })
                })
            },
            JoinWindows::of_time_difference_and_grace(20 * 60_000, 5 * 60_000),
            StreamJoined::with(StringSerde, JsonSerde::<Ride>::default(), JsonSerde::<Pickup>::default()),
        )
        .filter(|_, info| info.is_some())
        .map_values(|info| info.clone().expect("filtered"))
        .to("vendor_info", StringSerde, JsonSerde::<Value>::default());
    let topology = builder.build();
    assert!(topology.describe().contains("-repartition"), "the re-keyed pickups go through a repartition topic");
    let mut driver = TopologyTestDriver::new(topology);
    let ride_topic = driver.input_topic("rides", StringSerde, JsonSerde::<Ride>::default());
    let pickup_topic = driver.input_topic("rides_location", StringSerde, JsonSerde::<Pickup>::default());
    let output = driver.output_topic("vendor_info", StringSerde, JsonSerde::<Value>::default());
    // Each ride's drop-off location sees a pickup 5 or 15 minutes later.
    let mut rides: Vec<Ride> = rides().into_iter().take(60).collect();
    rides.sort_by_key(|r| epoch_ms(&field(r, "tpep_dropoff_datetime")));
    let mut events: Vec<(i64, Result<Ride, Pickup>)> = Vec::new();
    for (i, ride) in rides.iter().enumerate() {
        let dropoff = epoch_ms(&field(ride, "tpep_dropoff_datetime"));
        events.push((dropoff, Ok(ride.clone())));
        let later = dropoff + if i % 2 == 0 { 5 } else { 15 } * 60_000;
        // The rides are all on one day, early enough not to run into the next.
        let rest = (later / 1000).rem_euclid(86_400);
        let date = &field(ride, "tpep_dropoff_datetime")[..10];
        let time = format!("{date} {:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
        events.push((later, Err(Pickup { pu_location_id: field(ride, "DOLocationID"), tpep_pickup_datetime: time })));
    }
    events.sort_by_key(|(t, _)| *t);
    let mut expected = Vec::new();
    for (t, event) in &events {
        match event {
            Ok(ride) => driver.pipe(&ride_topic, &field(ride, "DOLocationID"), ride, *t),
            Err(pickup) => {
                driver.pipe(&pickup_topic, &"vendor".to_string(), pickup, *t);
                // Every ride at this location within ten minutes either way.
                for ride in &rides {
                    let dropoff = epoch_ms(&field(ride, "tpep_dropoff_datetime"));
                    if field(ride, "DOLocationID") == pickup.pu_location_id && (*t - dropoff).abs() <= 10 * 60_000 {
                        let pair =
                            (field(ride, "VendorID"), pickup.pu_location_id.clone(), pickup.tpep_pickup_datetime.clone(), field(ride, "tpep_dropoff_datetime"));
                        expected.push(pair);
                    }
                }
            }
        }
    }
    let mut joined: Vec<(String, String, String, String)> = driver
        .read(&output)
        .unwrap()
        .into_iter()
        .map(|r| {
            let s = |name: &str| r.value[name].as_str().unwrap().to_string();
            (s("VendorID"), s("PULocationID"), s("pickupTime"), s("lastDropoffTime"))
        })
        .collect();
    joined.sort();
    expected.sort();
    assert!(!expected.is_empty());
    assert_eq!(joined, expected);
}
