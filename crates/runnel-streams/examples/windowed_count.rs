//! The course's windowed count: rides counted per key in 10-second
//! tumbling windows with 5 seconds of grace, written with Kafka Streams'
//! time-windowed key layout and Long values to
//! `rides-pulocation-window-count`.
//!
//! ```sh
//! runnel produce rides --csv ../shared/data/rides.csv --key DOLocationID
//! cargo run -p runnel-streams --example windowed_count -- --bootstrap-server localhost:9092 [--exactly-once]
//! ```

mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::run(common::windowed_count(), "kafka_tutorial.kstream.count.plocation.windowed.v1")
}
