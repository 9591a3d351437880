//! The course's first Kafka Streams program: rides (JSON, keyed by their
//! drop-off location id) counted per key, written as String keys and Long
//! values to `rides-pulocation-count`.
//!
//! ```sh
//! runnel produce rides --csv ../shared/data/rides.csv --key DOLocationID
//! cargo run -p runnel-streams --example count_rides -- --bootstrap-server localhost:9092 [--exactly-once]
//! ```

use runnel_streams::KafkaStreams;

mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctrl_c = common::ctrl_c();
    let topology = common::count_rides();
    println!("{}", topology.describe());
    let app = KafkaStreams::start(topology, common::streams_config("kafka_tutorial.kstream.count.plocation.v1"))?;
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
