//! The course's join: rides from `rides` with pickup-location events from
//! `rides_location` (re-keyed on `PULocationID`), within 20 minutes and 5
//! minutes of grace, kept when drop-off and pickup are at most 10 minutes
//! apart, written as JSON to `vendor_info`.
//!
//! ```sh
//! runnel produce rides --csv ../shared/data/rides.csv --key DOLocationID
//! cargo run -p runnel-streams --example join_rides -- --bootstrap-server localhost:9092 [--exactly-once]
//! ```

mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::run(common::join_rides_with_pickups(), "kafka_tutorial.kstream.joined.rides.pickuplocation.v1")
}
