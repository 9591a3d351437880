//! The course's windowed count: rides counted per key in 10-second
//! tumbling windows with 5 seconds of grace, written with Kafka Streams'
//! time-windowed key layout and Long values to
//! `rides-pulocation-window-count`.
//!
//! ```sh
//! runnel produce rides --csv ../shared/data/rides.csv --key DOLocationID
//! cargo run -p runnel-streams --example windowed_count -- --bootstrap-server localhost:9092
//! ```

use runnel_streams::serde::{I64Serde, JsonSerde, StringSerde, TimeWindowedSerde};
use runnel_streams::{KafkaStreams, StreamsBuilder, StreamsConfig, TimeWindows};

mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap = common::bootstrap_server();
    let builder = StreamsBuilder::new();
    builder
        .stream("rides", StringSerde, JsonSerde::<serde_json::Value>::default())
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(10_000, 5_000))
        .count()
        .to_stream()
        .to("rides-pulocation-window-count", TimeWindowedSerde::new(StringSerde, 10_000), I64Serde);
    let topology = builder.build();
    println!("{}", topology.describe());
    let app = KafkaStreams::start(topology, StreamsConfig::new("kafka_tutorial.kstream.count.plocation.windowed.v1", &bootstrap))?;
    common::wait_for_ctrl_c();
    app.close()?;
    Ok(())
}
