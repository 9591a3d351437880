//! The course's three stream-processing programs, shared by the runnable
//! examples and by `oracle`, which runs them beside Java Kafka Streams.

#![allow(dead_code)]

use runnel_streams::serde::{I64Serde, JsonSerde, StringSerde, TimeWindowedSerde};
use runnel_streams::{Grouped, JoinWindows, StreamJoined, StreamsBuilder, StreamsConfig, TimeWindows, Topology};
use serde_json::{Map, Value};

/// A ride as the course's producer writes it: the CSV's columns as JSON.
pub type Ride = Map<String, Value>;

/// Rides (keyed by drop-off location) counted per key.
pub fn count_rides() -> Topology {
    let builder = StreamsBuilder::new();
    builder.stream("rides", StringSerde, JsonSerde::<Ride>::default()).group_by_key().count().to_stream().to("rides-pulocation-count", StringSerde, I64Serde);
    builder.build()
}

/// Rides regrouped by their pickup location and counted: a grouping on a
/// new key, so the records are repartitioned first.
pub fn count_by_pickup_location() -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream("rides", StringSerde, JsonSerde::<Ride>::default())
        .group_by(|_, ride| text(ride, "PULocationID"), Grouped::with(StringSerde, JsonSerde::<Ride>::default()))
        .count()
        .to_stream()
        .to("rides-pickup-count", StringSerde, I64Serde);
    builder.build()
}

/// Rides counted per key in 10-second tumbling windows with 5 seconds of
/// grace.
pub fn windowed_count() -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream("rides", StringSerde, JsonSerde::<Ride>::default())
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(10_000, 5_000))
        .count()
        .to_stream()
        .to("rides-pulocation-window-count", TimeWindowedSerde::new(StringSerde, 10_000), I64Serde);
    builder.build()
}

/// Rides joined with pickup-location events (re-keyed on their
/// `PULocationID`) within 20 minutes, with 5 minutes of grace, kept when
/// the drop-off and the pickup are at most 10 minutes apart.
pub fn join_rides_with_pickups() -> Topology {
    let builder = StreamsBuilder::new();
    let rides = builder.stream("rides", StringSerde, JsonSerde::<Ride>::default());
    let pickups = builder.stream("rides_location", StringSerde, JsonSerde::<Ride>::default()).select_key(|_, pickup| text(pickup, "PULocationID"));
    rides
        .join(
            &pickups,
            |ride, pickup| {
                let (dropoff, pickup_time) = (text(ride, "tpep_dropoff_datetime"), text(pickup, "tpep_pickup_datetime"));
                // Pairs too far apart come out empty, and are filtered out.
                if (epoch_ms(&dropoff) - epoch_ms(&pickup_time)).abs() > 10 * 60_000 {
                    return String::new();
                }
                format!(
                    r#"{{"VendorID":"{}","PULocationID":"{}","pickupTime":"{pickup_time}","lastDropoffTime":"{dropoff}"}}"#,
                    text(ride, "VendorID"),
                    text(pickup, "PULocationID")
                )
            },
            JoinWindows::of_time_difference_and_grace(20 * 60_000, 5 * 60_000),
            StreamJoined::with(StringSerde, JsonSerde::<Ride>::default(), JsonSerde::<Ride>::default()),
        )
        .filter(|_, info| !info.is_empty())
        .to("vendor_info", StringSerde, StringSerde);
    builder.build()
}

/// A field of a JSON object as text (numbers as written).
pub fn text(object: &Ride, name: &str) -> String {
    match object.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Milliseconds since the epoch of a `YYYY-MM-DD HH:MM:SS` time, in UTC.
pub fn epoch_ms(datetime: &str) -> i64 {
    let field = |range: std::ops::Range<usize>| datetime.get(range).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    let (y, m, d) = (field(0..4), field(5..7), field(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    ((days * 24 + field(11..13)) * 60 + field(14..16)) * 60_000 + field(17..19) * 1000
}

/// The value after `flag` on the command line, if given.
fn flag(flag: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned()
}

/// `--bootstrap-server HOST:PORT`, by default `localhost:9092`.
pub fn bootstrap_server() -> String {
    flag("--bootstrap-server").unwrap_or_else(|| "localhost:9092".to_string())
}

/// The application's configuration from the command line:
/// `--bootstrap-server`, `--application-id` (default `default_id`),
/// `--exactly-once`, `--state-dir DIR` for local checkpoints, and
/// `--property key=value` (repeatable) for the Kafka clients.
pub fn streams_config(default_id: &str) -> StreamsConfig {
    let args: Vec<String> = std::env::args().collect();
    let mut config = StreamsConfig::new(&flag("--application-id").unwrap_or_else(|| default_id.to_string()), &bootstrap_server());
    if args.iter().any(|a| a == "--exactly-once") {
        config = config.exactly_once();
    }
    if let Some(dir) = flag("--state-dir") {
        config = config.with_state_dir(dir);
    }
    for pair in args.windows(2).filter(|w| w[0] == "--property") {
        if let Some((key, value)) = pair[1].split_once('=') {
            config.client_properties.push((key.to_string(), value.to_string()));
        }
    }
    config
}

/// Runs `topology` as application `application_id` (configured from the
/// command line) until Ctrl-C; prints its description, `started`, and on
/// the way out what it did.
pub fn run(topology: Topology, application_id: &str) -> Result<(), Box<dyn std::error::Error>> {
    let ctrl_c = ctrl_c();
    println!("{}", topology.describe());
    let app = runnel_streams::KafkaStreams::start(topology, streams_config(application_id))?;
    println!("started");
    let _ = ctrl_c.recv();
    let metrics = app.metrics();
    println!(
        "processed={} restored={} from_checkpoint={} restore_ms={}",
        metrics.processed_records, metrics.restored_records, metrics.checkpoint_records, metrics.restore_ms
    );
    app.close()?;
    Ok(())
}

/// Ctrl-C, caught from now on; `recv()` blocks until it is pressed.
pub fn ctrl_c() -> std::sync::mpsc::Receiver<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let _ = ctrlc::set_handler(move || {
        let _ = tx.send(());
    });
    rx
}
