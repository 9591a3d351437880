//! Session windows and suppression on the test driver. (Agreement with
//! Kafka Streams on the course's rides is `tests/compat/test_streams_oracle.py`.)

use runnel_streams::serde::{I64Serde, Nullable, SessionWindowedSerde, StringSerde, TimeWindowedSerde};
use runnel_streams::{SessionWindows, StreamsBuilder, Suppressed, TimeWindows, TopologyTestDriver};

fn pipe_all(driver: &mut TopologyTestDriver, records: &[(&str, i64)]) {
    let input = driver.input_topic("rides", StringSerde, StringSerde);
    for (key, ts) in records {
        driver.pipe(&input, &key.to_string(), &"ride".to_string(), *ts);
    }
}

#[test]
fn a_record_bridging_two_sessions_merges_them_and_deletes_the_old_ones() {
    let builder = StreamsBuilder::new();
    let windows = SessionWindows::of_inactivity_gap_and_grace(1_000, 1_000);
    builder.stream("rides", StringSerde, StringSerde).group_by_key().windowed_by_sessions(windows).count().to_stream().to(
        "sessions",
        SessionWindowedSerde(StringSerde),
        I64Serde,
    );
    let mut driver = TopologyTestDriver::new(builder.build());
    pipe_all(&mut driver, &[("a", 0), ("a", 1_800), ("a", 900)]);
    let output = driver.output_topic("sessions", SessionWindowedSerde(StringSerde), Nullable(I64Serde));
    let seen: Vec<((i64, i64), Option<i64>, i64)> =
        driver.read(&output).unwrap().into_iter().map(|r| ((r.key.window.start, r.key.window.end), r.value, r.timestamp)).collect();
    assert_eq!(seen, [((0, 0), Some(1), 0), ((1_800, 1_800), Some(1), 1_800), ((0, 0), None, 0), ((1_800, 1_800), None, 1_800), ((0, 1_800), Some(3), 1_800)]);
}

#[test]
fn suppression_emits_each_window_once_after_it_closes() {
    let builder = StreamsBuilder::new();
    builder
        .stream("rides", StringSerde, StringSerde)
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(10_000, 5_000))
        .count()
        .suppress(Suppressed::until_window_closes())
        .to_stream()
        .to("final", TimeWindowedSerde::new(StringSerde, 10_000), I64Serde);
    let mut driver = TopologyTestDriver::new(builder.build());
    let output = driver.output_topic("final", TimeWindowedSerde::new(StringSerde, 10_000), I64Serde);
    pipe_all(&mut driver, &[("a", 1_000), ("a", 2_000), ("b", 3_000), ("a", 14_000)]);
    assert!(driver.read(&output).unwrap().is_empty(), "no window has closed yet");
    pipe_all(&mut driver, &[("c", 15_000)]);
    let finals: Vec<(String, i64, i64)> = driver.read(&output).unwrap().into_iter().map(|r| (r.key.key, r.key.window.start, r.value)).collect();
    assert_eq!(finals, [("a".to_string(), 0, 2), ("b".to_string(), 0, 1)]);
}

#[test]
fn a_restarted_stream_join_still_meets_records_from_before_the_restart() {
    use runnel_streams::{JoinWindows, StreamJoined, Topology};
    fn topology() -> Topology {
        let builder = StreamsBuilder::new();
        let left = builder.stream("left", StringSerde, StringSerde);
        let right = builder.stream("right", StringSerde, StringSerde);
        left.join(
            &right,
            |a, b| format!("{a}+{b}"),
            JoinWindows::of_time_difference_and_grace(10_000, 0),
            StreamJoined::with(StringSerde, StringSerde, StringSerde),
        )
        .to("joined", StringSerde, StringSerde);
        builder.build()
    }
    let mut driver = TopologyTestDriver::new(topology());
    let left = driver.input_topic("left", StringSerde, StringSerde);
    driver.pipe(&left, &"k".to_string(), &"a".to_string(), 1_000);
    // The window stores come back from their changelogs.
    let mut driver = driver.restarted(topology());
    let right = driver.input_topic("right", StringSerde, StringSerde);
    driver.pipe(&right, &"k".to_string(), &"b".to_string(), 2_000);
    let joined = driver.output_topic("joined", StringSerde, StringSerde);
    let values: Vec<String> = driver.read(&joined).unwrap().into_iter().map(|r| r.value).collect();
    assert_eq!(values, ["a+b"]);
}

#[test]
fn an_outer_join_restarted_still_emits_the_records_that_waited_for_a_partner() {
    use runnel_streams::{JoinWindows, StreamJoined, Topology};
    fn topology() -> Topology {
        let builder = StreamsBuilder::new();
        let left = builder.stream("left", StringSerde, StringSerde);
        let right = builder.stream("right", StringSerde, StringSerde);
        left.outer_join(
            &right,
            |a, b| format!("{}+{}", a.map_or("-", String::as_str), b.map_or("-", String::as_str)),
            JoinWindows::of_time_difference_and_grace(10_000, 0),
            StreamJoined::with(StringSerde, StringSerde, StringSerde),
        )
        .to("joined", StringSerde, StringSerde);
        builder.build()
    }
    let mut driver = TopologyTestDriver::new(topology());
    let (left, right) = (driver.input_topic("left", StringSerde, StringSerde), driver.input_topic("right", StringSerde, StringSerde));
    driver.pipe(&left, &"k".to_string(), &"a".to_string(), 1_000);
    driver.pipe(&left, &"k".to_string(), &"a2".to_string(), 1_000);
    driver.pipe(&right, &"m".to_string(), &"x".to_string(), 2_000);
    driver.pipe(&left, &"m".to_string(), &"y".to_string(), 3_000);
    let joined = driver.output_topic("joined", StringSerde, StringSerde);
    let values = |driver: &mut TopologyTestDriver| driver.read(&joined).unwrap().into_iter().map(|r| (r.key, r.value, r.timestamp)).collect::<Vec<_>>();
    assert_eq!(values(&mut driver), [("m".to_string(), "y+x".to_string(), 3_000)]);
    // `a` and `a2` wait in the shared outer-join store, which comes back
    // from its changelog; `x` found a partner and no longer waits.
    let mut driver = driver.restarted(topology());
    driver.pipe(&right, &"z".to_string(), &"late".to_string(), 20_000);
    assert_eq!(
        values(&mut driver),
        [("k".to_string(), "a+-".to_string(), 1_000), ("k".to_string(), "a2+-".to_string(), 1_000)],
        "the waiting records are emitted once their window closes, and only they"
    );
}

#[test]
fn a_timestamp_extractor_sets_event_time_from_the_value() {
    // Rides written "now" but carrying their pickup time: the windows and
    // the output timestamps follow the pickup time; a ride without one is
    // skipped, as a record with an invalid timestamp is in Kafka Streams.
    let builder = StreamsBuilder::new();
    builder
        .stream_with_timestamps("rides", StringSerde, StringSerde, |_, ride, _written| ride.strip_prefix("pickup=").and_then(|t| t.parse().ok()).unwrap_or(-1))
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(10_000, 0))
        .count()
        .to_stream()
        .to("counts", TimeWindowedSerde::new(StringSerde, 10_000), I64Serde);
    let mut driver = TopologyTestDriver::new(builder.build());
    let input = driver.input_topic("rides", StringSerde, StringSerde);
    let written = 1_700_000_000_000;
    for ride in ["pickup=1000", "pickup=12000", "no time", "pickup=3000"] {
        driver.pipe(&input, &"132".to_string(), &ride.to_string(), written);
    }
    let output = driver.output_topic("counts", TimeWindowedSerde::new(StringSerde, 10_000), I64Serde);
    let seen: Vec<(i64, i64, i64)> = driver.read(&output).unwrap().into_iter().map(|r| (r.key.window.start, r.value, r.timestamp)).collect();
    // 3000 is late: stream time reached 12000, past 0's window end + grace.
    assert_eq!(seen, [(0, 1, 1_000), (10_000, 1, 12_000)]);
    assert_eq!(driver.skipped_records(), 1);
    assert_eq!(driver.dropped_late_records(), 1);
}
