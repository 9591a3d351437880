//! The course's first Kafka Streams program: rides (JSON, keyed by their
//! drop-off location id) counted per key, written as String keys and Long
//! values to `rides-pulocation-count`.
//!
//! ```sh
//! runnel produce rides --csv ../shared/data/rides.csv --key DOLocationID
//! cargo run -p runnel-streams --example count_rides -- --bootstrap-server localhost:9092 [--exactly-once]
//! ```

mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::run(common::count_rides(), "kafka_tutorial.kstream.count.plocation.v1")
}
