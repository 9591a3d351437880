//! The course's first Kafka Streams program: rides (JSON, keyed by their
//! drop-off location id) counted per key, written as String keys and Long
//! values to `rides-pulocation-count`.
//!
//! ```sh
//! runnel produce rides --csv ../shared/data/rides.csv --key DOLocationID
//! cargo run -p runnel-streams --example count_rides -- --bootstrap-server localhost:9092
//! ```

use runnel_streams::serde::{I64Serde, JsonSerde, StringSerde};
use runnel_streams::{KafkaStreams, StreamsBuilder, StreamsConfig};

mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap = common::bootstrap_server();
    let builder = StreamsBuilder::new();
    builder.stream("rides", StringSerde, JsonSerde::<serde_json::Value>::default()).group_by_key().count().to_stream().to(
        "rides-pulocation-count",
        StringSerde,
        I64Serde,
    );
    let topology = builder.build();
    println!("{}", topology.describe());
    let app = KafkaStreams::start(topology, StreamsConfig::new("kafka_tutorial.kstream.count.plocation.v1", &bootstrap))?;
    common::wait_for_ctrl_c();
    app.close()?;
    Ok(())
}
