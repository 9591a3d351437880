//! Runs one of the course's programs on the test driver over records read
//! from a file, and prints every output record, so the same input can be
//! run through Java Kafka Streams' `TopologyTestDriver` and the outputs
//! compared byte for byte (`tests/compat/test_streams_oracle.py`).
//!
//! Input lines: `topic<TAB>key<TAB>timestamp<TAB>value`. Output lines:
//! `topic<TAB>key hex<TAB>value hex<TAB>timestamp`, in the order written.
//!
//! ```sh
//! cargo run -p runnel-streams --example oracle -- count input.tsv
//! ```

use runnel_streams::serde::{BytesSerde, Nullable};
use runnel_streams::TopologyTestDriver;

mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (program, input) = match args.as_slice() {
        [_, program, input] => (program.as_str(), input.as_str()),
        _ => return Err("usage: oracle count|regroup|windowed|join INPUT.tsv".into()),
    };
    let (topology, outputs): (_, &[&str]) = match program {
        "count" => (common::count_rides(), &["rides-pulocation-count"]),
        "regroup" => (common::count_by_pickup_location(), &["rides-pickup-count"]),
        "windowed" => (common::windowed_count(), &["rides-pulocation-window-count"]),
        "join" => (common::join_rides_with_pickups(), &["vendor_info"]),
        other => return Err(format!("unknown program `{other}`").into()),
    };
    let mut driver = TopologyTestDriver::new(topology);
    let hex = |bytes: &Option<Vec<u8>>| bytes.as_ref().map_or("null".to_string(), |b| b.iter().map(|x| format!("{x:02x}")).collect());
    for line in std::fs::read_to_string(input)?.lines() {
        let fields: Vec<&str> = line.splitn(4, '\t').collect();
        let [topic, key, timestamp, value] = fields[..] else { return Err(format!("bad input line `{line}`").into()) };
        driver.pipe_bytes(topic, Some(key.as_bytes().to_vec()), Some(value.as_bytes().to_vec()), timestamp.parse()?);
        for output in outputs {
            let topic = driver.output_topic(output, Nullable(BytesSerde), Nullable(BytesSerde));
            for record in driver.read(&topic)? {
                println!("{output}\t{}\t{}\t{}", hex(&record.key), hex(&record.value), record.timestamp);
            }
        }
    }
    Ok(())
}
