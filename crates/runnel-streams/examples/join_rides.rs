//! The course's join: rides from `rides` with pickup-location events from
//! `rides_location` (re-keyed on `PULocationID`), within 20 minutes and 5
//! minutes of grace, kept when drop-off and pickup are at most 10 minutes
//! apart, written as JSON to `vendor_info`.
//!
//! ```sh
//! runnel produce rides --csv ../shared/data/rides.csv --key DOLocationID
//! cargo run -p runnel-streams --example join_rides -- --bootstrap-server localhost:9092 [--exactly-once]
//! ```

use runnel_streams::KafkaStreams;

mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctrl_c = common::ctrl_c();
    let topology = common::join_rides_with_pickups();
    println!("{}", topology.describe());
    let app = KafkaStreams::start(topology, common::streams_config("kafka_tutorial.kstream.joined.rides.pickuplocation.v1"))?;
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
