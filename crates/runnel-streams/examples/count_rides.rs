//! The course's first Kafka Streams program: rides (JSON, keyed by their
//! drop-off location id) counted per key, written as String keys and Long
//! values to `rides-pulocation-count`.
//!
//! ```sh
//! runnel produce rides --csv ../shared/data/rides.csv --key DOLocationID
//! cargo run -p runnel-streams --example count_rides -- --bootstrap-server localhost:9092
//! ```

use runnel_streams::{KafkaStreams, StreamsConfig};

mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let topology = common::count_rides();
    println!("{}", topology.describe());
    let app = KafkaStreams::start(topology, StreamsConfig::new("kafka_tutorial.kstream.count.plocation.v1", &common::bootstrap_server()))?;
    common::wait_for_ctrl_c();
    app.close()?;
    Ok(())
}
