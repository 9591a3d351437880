//! Runs a topology on the test driver over records read from a file, and
//! prints every output record, so the same input can be run through Java
//! Kafka Streams' `TopologyTestDriver` (`tests/compat/java/StreamsOracle.java`)
//! and the outputs compared byte for byte (`tests/compat/test_streams_oracle.py`).
//! The programs are the course's three, plus one per group of operators.
//!
//! With `--describe` in place of the input, it prints the topology's
//! description instead.
//!
//! Input lines: `topic<TAB>key<TAB>timestamp<TAB>value`, where a value of
//! `\N` is a null. Output lines: `topic<TAB>key hex<TAB>value hex<TAB>timestamp`,
//! in the order written.
//!
//! ```sh
//! cargo run -p runnel-streams --example oracle -- count input.tsv
//! ```

use runnel_streams::serde::{BytesSerde, I64Serde, Nullable, SessionWindowedSerde, StringSerde, TimeWindowedSerde};
use runnel_streams::{
    Grouped, JoinWindows, Joined, SessionWindows, SlidingWindows, StreamJoined, StreamsBuilder, Suppressed, TimeWindows, Topology, TopologyTestDriver,
};

mod common;

/// A string field of a JSON object, as the Java oracle's regex reads it.
fn field(json: &str, name: &str) -> String {
    let pattern = format!("\"{name}\":\"");
    json.find(&pattern).map_or(String::new(), |at| json[at + pattern.len()..].split('"').next().unwrap_or_default().to_string())
}

fn zone(json: Option<&String>) -> String {
    json.map_or("-".to_string(), |z| field(z, "zone"))
}

/// Rides joined with the zone table: left, inner, and after re-keying by
/// pickup location.
fn enrich() -> Topology {
    let builder = StreamsBuilder::new();
    let zones = builder.table("zones", StringSerde, StringSerde);
    let rides = builder.stream("rides", StringSerde, StringSerde);
    rides.left_join_table(&zones, |ride, z| format!("{}@{}", field(ride, "VendorID"), zone(z)), Joined::with(StringSerde, StringSerde)).to(
        "rides-enriched",
        StringSerde,
        StringSerde,
    );
    rides.join_table(&zones, |ride, z| format!("{}@{}", field(ride, "VendorID"), zone(Some(z))), Joined::with(StringSerde, StringSerde)).to(
        "rides-zoned",
        StringSerde,
        StringSerde,
    );
    rides
        .select_key(|_, ride| field(ride, "PULocationID"))
        .join_table(&zones, |ride, z| format!("{}@{}", field(ride, "tpep_pickup_datetime"), zone(Some(z))), Joined::with(StringSerde, StringSerde))
        .to("pickups-zoned", StringSerde, StringSerde);
    builder.build()
}

/// The zone table joined with the notes table: inner, left and outer.
fn tables() -> Topology {
    let builder = StreamsBuilder::new();
    let zones = builder.table("zones", StringSerde, StringSerde);
    let notes = builder.table("zone_notes", StringSerde, StringSerde);
    zones.join(&notes, |z, n| format!("{}|{n}", zone(Some(z)))).to_stream().to("zone-notes-inner", StringSerde, StringSerde);
    zones.left_join(&notes, |z, n| format!("{}|{}", zone(Some(z)), n.map_or("-", |n| n))).to_stream().to("zone-notes-left", StringSerde, StringSerde);
    zones.outer_join(&notes, |z, n| format!("{}|{}", zone(z), n.map_or("-", |n| n))).to_stream().to("zone-notes-outer", StringSerde, StringSerde);
    builder.build()
}

/// Zones regrouped and counted per borough, a filtered and a mapped
/// table, and the largest fare per key.
fn boroughs() -> Topology {
    let builder = StreamsBuilder::new();
    let zones = builder.table("zones", StringSerde, StringSerde);
    zones.group_by(|_, z| (field(z, "borough"), zone(Some(z))), Grouped::with(StringSerde, StringSerde)).count().to_stream().to(
        "zones-per-borough",
        StringSerde,
        I64Serde,
    );
    zones.filter(|_, z| field(z, "borough") == "Manhattan").to_stream().to("manhattan-zones", StringSerde, StringSerde);
    zones.map_values(|z| zone(Some(z))).to_stream().to("zone-names", StringSerde, StringSerde);
    let fare = |ride: &String| field(ride, "fare_amount").parse::<f64>().unwrap_or(0.0);
    builder
        .stream("rides", StringSerde, StringSerde)
        .group_by_key()
        .reduce(move |max, ride| if fare(ride) > fare(max) { ride.clone() } else { max.clone() }, StringSerde)
        .to_stream()
        .map_values(|ride| field(ride, "fare_amount"))
        .to("max-fare", StringSerde, StringSerde);
    builder.build()
}

/// Rides split by payment type.
fn split() -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream("rides", StringSerde, StringSerde)
        .split()
        .branch_with(|_, ride| field(ride, "payment_type") == "1", |card| card.to("card", StringSerde, StringSerde))
        .branch_with(|_, ride| field(ride, "payment_type") == "2", |cash| cash.to("cash", StringSerde, StringSerde))
        .default_branch_with(|other| other.map_values(|ride| field(ride, "payment_type")).to("other", StringSerde, StringSerde));
    builder.build()
}

const SESSIONS: SessionWindows = SessionWindows { gap_ms: 30 * 60_000, grace_ms: 10 * 60_000 };

/// Rides per key in sessions of 30 minutes' inactivity, counted and
/// reduced to the largest fare.
fn sessions() -> Topology {
    let builder = StreamsBuilder::new();
    let rides = builder.stream("rides", StringSerde, StringSerde).group_by_key();
    rides.windowed_by_sessions(SESSIONS).count().to_stream().to("ride-sessions", SessionWindowedSerde(StringSerde), I64Serde);
    let fare = |ride: &String| field(ride, "fare_amount").parse::<f64>().unwrap_or(0.0);
    rides
        .windowed_by_sessions(SESSIONS)
        .reduce(move |max, ride| if fare(ride) > fare(max) { ride.clone() } else { max.clone() }, StringSerde)
        .to_stream()
        .map_values(|ride| field(ride, "fare_amount"))
        .to("session-max-fare", SessionWindowedSerde(StringSerde), StringSerde);
    builder.build()
}

/// Final results only: 10-second window counts and session counts,
/// suppressed until their windows close.
fn finals() -> Topology {
    let builder = StreamsBuilder::new();
    let rides = builder.stream("rides", StringSerde, StringSerde).group_by_key();
    rides.windowed_by(TimeWindows::of_size_and_grace(10_000, 5_000)).count().suppress(Suppressed::until_window_closes()).to_stream().to(
        "final-window-counts",
        TimeWindowedSerde::new(StringSerde, 10_000),
        I64Serde,
    );
    rides.windowed_by_sessions(SESSIONS).count().suppress(Suppressed::until_window_closes()).to_stream().to(
        "final-session-counts",
        SessionWindowedSerde(StringSerde),
        I64Serde,
    );
    builder.build()
}

/// Rides left- and outer-joined with pickups at their drop-off location
/// within 10 minutes, with 2 minutes of grace.
fn outer_joins() -> Topology {
    let builder = StreamsBuilder::new();
    let rides = builder.stream("rides", StringSerde, StringSerde);
    let pickups = builder.stream("rides_location", StringSerde, StringSerde).select_key(|_, pickup| field(pickup, "PULocationID"));
    let windows = JoinWindows::of_time_difference_and_grace(10 * 60_000, 2 * 60_000);
    let pickup_time = |pickup: Option<&String>| pickup.map_or("-".to_string(), |p| field(p, "tpep_pickup_datetime"));
    rides
        .left_join(
            &pickups,
            move |ride, pickup| format!("{}|{}", field(ride, "VendorID"), pickup_time(pickup)),
            windows,
            StreamJoined::with(StringSerde, StringSerde, StringSerde),
        )
        .to("rides-left-pickups", StringSerde, StringSerde);
    rides
        .outer_join(
            &pickups,
            move |ride, pickup| format!("{}|{}", ride.map_or("-".to_string(), |r| field(r, "VendorID")), pickup_time(pickup)),
            windows,
            StreamJoined::with(StringSerde, StringSerde, StringSerde),
        )
        .to("rides-outer-pickups", StringSerde, StringSerde);
    builder.build()
}

/// Rides joined with the zone of their pickup location, from a global
/// table: left and inner.
fn global() -> Topology {
    let builder = StreamsBuilder::new();
    let zones = builder.global_table("zones", StringSerde, StringSerde);
    let rides = builder.stream("rides", StringSerde, StringSerde);
    rides.left_join_global(&zones, |_, ride| field(ride, "PULocationID"), |ride, z| format!("{}@{}", field(ride, "VendorID"), zone(z))).to(
        "rides-pickup-zone",
        StringSerde,
        StringSerde,
    );
    rides.join_global(&zones, |_, ride| field(ride, "PULocationID"), |ride, z| format!("{}@{}", field(ride, "VendorID"), zone(Some(z)))).to(
        "rides-pickup-zoned",
        StringSerde,
        StringSerde,
    );
    builder.build()
}

/// Rides per key in sliding windows of 10 minutes with 2 minutes of
/// grace: every update, and final results.
fn sliding() -> Topology {
    let builder = StreamsBuilder::new();
    let counts = builder
        .stream("rides", StringSerde, StringSerde)
        .group_by_key()
        .windowed_by_sliding(SlidingWindows::of_time_difference_and_grace(600_000, 120_000))
        .count();
    counts.to_stream().to("sliding-counts", TimeWindowedSerde::new(StringSerde, 600_000), I64Serde);
    counts.suppress(Suppressed::until_window_closes()).to_stream().to("sliding-finals", TimeWindowedSerde::new(StringSerde, 600_000), I64Serde);
    builder.build()
}

/// Trips joined with the zone their value names (a foreign key): inner
/// and left.
fn foreign_key() -> Topology {
    let builder = StreamsBuilder::new();
    let zones = builder.table("zones", StringSerde, StringSerde);
    let trips = builder.table("trips", StringSerde, StringSerde);
    trips.join_on_foreign_key(&zones, |trip| field(trip, "PULocationID"), |trip, z| format!("{}@{}", field(trip, "VendorID"), zone(Some(z)))).to_stream().to(
        "trip-zones-inner",
        StringSerde,
        StringSerde,
    );
    trips.left_join_on_foreign_key(&zones, |trip| field(trip, "PULocationID"), |trip, z| format!("{}@{}", field(trip, "VendorID"), zone(z))).to_stream().to(
        "trip-zones-left",
        StringSerde,
        StringSerde,
    );
    builder.build()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (program, input) = match args.as_slice() {
        [_, program, input] => (program.as_str(), input.as_str()),
        _ => return Err("usage: oracle count|regroup|windowed|join|enrich|tables|boroughs|split|sessions|finals|outer|global|sliding|fk INPUT.tsv".into()),
    };
    let (topology, outputs): (_, &[&str]) = match program {
        "count" => (common::count_rides(), &["rides-pulocation-count"]),
        "regroup" => (common::count_by_pickup_location(), &["rides-pickup-count"]),
        "windowed" => (common::windowed_count(), &["rides-pulocation-window-count"]),
        "join" => (common::join_rides_with_pickups(), &["vendor_info"]),
        "enrich" => (enrich(), &["rides-enriched", "rides-zoned", "pickups-zoned"]),
        "tables" => (tables(), &["zone-notes-inner", "zone-notes-left", "zone-notes-outer"]),
        "boroughs" => (boroughs(), &["zones-per-borough", "manhattan-zones", "zone-names", "max-fare"]),
        "split" => (split(), &["card", "cash", "other"]),
        "sessions" => (sessions(), &["ride-sessions", "session-max-fare"]),
        "sliding" => (sliding(), &["sliding-counts", "sliding-finals"]),
        "fk" => (foreign_key(), &["trip-zones-inner", "trip-zones-left"]),
        "global" => (global(), &["rides-pickup-zone", "rides-pickup-zoned"]),
        "outer" => (outer_joins(), &["rides-left-pickups", "rides-outer-pickups"]),
        "finals" => (finals(), &["final-window-counts", "final-session-counts"]),
        other => return Err(format!("unknown program `{other}`").into()),
    };
    if input == "--describe" {
        print!("{}", topology.describe());
        return Ok(());
    }
    let mut driver = TopologyTestDriver::new(topology);
    let hex = |bytes: &Option<Vec<u8>>| bytes.as_ref().map_or("null".to_string(), |b| b.iter().map(|x| format!("{x:02x}")).collect());
    for line in std::fs::read_to_string(input)?.lines() {
        let fields: Vec<&str> = line.splitn(4, '\t').collect();
        let [topic, key, timestamp, value] = fields[..] else { return Err(format!("bad input line `{line}`").into()) };
        let value = (value != "\\N").then(|| value.as_bytes().to_vec());
        driver.pipe_bytes(topic, Some(key.as_bytes().to_vec()), value, timestamp.parse()?);
        for output in outputs {
            let topic = driver.output_topic(output, Nullable(BytesSerde), Nullable(BytesSerde));
            for record in driver.read(&topic)? {
                println!("{output}\t{}\t{}\t{}", hex(&record.key), hex(&record.value), record.timestamp);
            }
        }
    }
    Ok(())
}
