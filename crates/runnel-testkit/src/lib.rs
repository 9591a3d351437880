//! Test helpers shared by runnel's integration-test binaries: a raw Kafka
//! protocol client, for requests no client library sends as they are
//! (every version of every API, malformed frames), and the Apache Kafka
//! peer that the conformance tests compare runnel with.

mod peer;
mod raw;

pub use peer::kafka_peer;
pub use raw::RawClient;
