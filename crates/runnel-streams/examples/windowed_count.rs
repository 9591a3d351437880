//! The course's windowed count: rides counted per key in 10-second
//! tumbling windows with 5 seconds of grace, written with Kafka Streams'
//! time-windowed key layout and Long values to
//! `rides-pulocation-window-count`.
//!
//! ```sh
//! runnel produce rides --csv ../shared/data/rides.csv --key DOLocationID
//! cargo run -p runnel-streams --example windowed_count -- --bootstrap-server localhost:9092 [--exactly-once]
//! ```

use runnel_streams::KafkaStreams;

mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctrl_c = common::ctrl_c();
    let topology = common::windowed_count();
    println!("{}", topology.describe());
    let app = KafkaStreams::start(topology, common::streams_config("kafka_tutorial.kstream.count.plocation.windowed.v1"))?;
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
