//! The Apache Kafka broker the test command starts beside runnel
//! (`scripts/kafka-peer`), shared by every test that compares with it.

/// Bootstrap address of the Apache Kafka peer, from `RUNNEL_KAFKA_BOOTSTRAP`.
///
/// `scripts/test` starts one single-node KRaft broker for the whole suite
/// and exports its address; run `scripts/kafka-peer start DIR` and export
/// `RUNNEL_KAFKA_BOOTSTRAP=$(cat DIR/bootstrap)` to run these tests alone.
pub fn kafka_peer() -> String {
    std::env::var("RUNNEL_KAFKA_BOOTSTRAP").unwrap_or_else(|_| {
        panic!(
            "these tests compare runnel with Apache Kafka: run them with scripts/test, or start a peer with \
             `scripts/kafka-peer start DIR` and set RUNNEL_KAFKA_BOOTSTRAP=$(cat DIR/bootstrap)"
        )
    })
}
