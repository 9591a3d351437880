//! The course's stream-processing programs on the test driver, fed with
//! the course's rides, the DSL's operators one by one, tables, and the
//! runtime against a broker.

mod course;
mod crash;
mod kafka;
mod operators;
mod processor;
mod tables;
mod windows;

use std::path::PathBuf;

/// The course's taxi rides (`rides.csv`), as (column → value) maps.
pub fn rides() -> Vec<serde_json::Map<String, serde_json::Value>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/rides.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    lines
        .map(|line| header.iter().zip(line.split(',')).map(|(name, value)| (name.to_string(), serde_json::Value::String(value.to_string()))).collect())
        .collect()
}
