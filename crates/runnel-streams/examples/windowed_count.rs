//! The course's windowed count: rides counted per key in 10-second
//! tumbling windows with 5 seconds of grace, written with Kafka Streams'
//! time-windowed key layout and Long values to
//! `rides-pulocation-window-count`.
//!
//! ```sh
//! runnel produce rides --csv ../shared/data/rides.csv --key DOLocationID
//! cargo run -p runnel-streams --example windowed_count -- --bootstrap-server localhost:9092
//! ```

use runnel_streams::{KafkaStreams, StreamsConfig};

mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let topology = common::windowed_count();
    println!("{}", topology.describe());
    let app = KafkaStreams::start(topology, StreamsConfig::new("kafka_tutorial.kstream.count.plocation.windowed.v1", &common::bootstrap_server()))?;
    common::wait_for_ctrl_c();
    app.close()?;
    Ok(())
}
