//! runnel-bench: produce, consume, end-to-end latency, offset-commit and
//! stream-processing workloads.
//!
//! The load comes from librdkafka (the `rdkafka` crate), not from runnel's
//! own protocol code, so the client is neutral and the same numbers can be
//! taken against any Kafka-compatible broker.

mod commits;
mod consume;
mod e2e;
mod produce;
mod streams;

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientConfig;
use serde::Serialize;

pub use commits::commits;
pub use consume::consume;
pub use e2e::e2e;
pub use produce::produce;
pub use streams::{streams, streams_on_driver, StreamsReport, StreamsRun, StreamsTopology, Written, INPUT as STREAMS_INPUT};

/// How much work a run does: a record count or a wall-clock duration.
#[derive(Debug, Clone, Copy)]
pub enum Amount {
    Records(u64),
    Duration(Duration),
}

/// Settings shared by every workload.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub bootstrap: String,
    pub topic: String,
    pub record_size: usize,
    pub amount: Amount,
    pub acks: String,
    pub partitions: i32,
    pub producers: usize,
    pub consumers: usize,
    pub compression: String,
    pub linger_ms: u64,
    pub batch_size: usize,
    pub keyed: bool,
    /// Records per second across all producers; `None` is as fast as possible.
    pub rate: Option<f64>,
    /// Produce in transactions committed this often; `None` produces
    /// outside transactions.
    pub transaction_ms: Option<u64>,
    /// Extra librdkafka properties for every client.
    pub client_properties: Vec<(String, String)>,
}

/// The outcome of a run, printed as a table or as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub workload: &'static str,
    pub records: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub records_per_sec: f64,
    pub mb_per_sec: f64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p999_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<f64>,
}

impl BenchReport {
    fn throughput(workload: &'static str, records: u64, bytes: u64, elapsed: Duration, errors: u64) -> BenchReport {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        BenchReport {
            workload,
            records,
            bytes,
            seconds,
            records_per_sec: records as f64 / seconds,
            mb_per_sec: bytes as f64 / seconds / 1_000_000.0,
            errors,
            p50_ms: None,
            p99_ms: None,
            p999_ms: None,
            max_ms: None,
        }
    }

    /// A human-readable table.
    pub fn table(&self) -> String {
        let mut rows = vec![
            ("workload", self.workload.to_string()),
            ("records", self.records.to_string()),
            ("seconds", format!("{:.2}", self.seconds)),
            ("records/s", format!("{:.0}", self.records_per_sec)),
            ("MB/s", format!("{:.1}", self.mb_per_sec)),
            ("errors", self.errors.to_string()),
        ];
        for (name, value) in [("p50 ms", self.p50_ms), ("p99 ms", self.p99_ms), ("p99.9 ms", self.p999_ms), ("max ms", self.max_ms)] {
            if let Some(v) = value {
                rows.push((name, format!("{v:.2}")));
            }
        }
        rows.iter().map(|(k, v)| format!("{k:<10} {v:>14}\n")).collect()
    }
}

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("kafka client error: {0}")]
    Kafka(#[from] KafkaError),
    #[error("{0}")]
    Setup(String),
}

impl BenchOptions {
    pub(crate) fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        for (k, v) in &self.client_properties {
            config.set(k, v);
        }
        config
    }

    pub(crate) fn producer_config(&self) -> ClientConfig {
        let mut config = self.client();
        config
            .set("acks", &self.acks)
            .set("compression.type", &self.compression)
            .set("linger.ms", self.linger_ms.to_string())
            .set("batch.size", self.batch_size.to_string())
            .set("queue.buffering.max.kbytes", "1048576")
            .set("queue.buffering.max.messages", "1000000");
        for (k, v) in &self.client_properties {
            config.set(k, v);
        }
        config
    }
}

/// Creates the topic with the requested partitions unless it exists.
pub(crate) fn ensure_topic(options: &BenchOptions) -> Result<(), BenchError> {
    let admin: AdminClient<DefaultClientContext> = options.client().create()?;
    let topic = NewTopic::new(&options.topic, options.partitions, TopicReplication::Fixed(1));
    let admin_options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = futures::executor::block_on(admin.create_topics([&topic], &admin_options))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(BenchError::Setup(format!("cannot create topic {topic}: {code}"))),
        }
    }
    Ok(())
}

/// A record payload of `size` bytes; its first bytes carry `stamp`.
pub(crate) fn payload(size: usize, stamp: u64) -> Vec<u8> {
    let mut value = vec![b'r'; size.max(8)];
    value[..8].copy_from_slice(&stamp.to_be_bytes());
    value.truncate(size.max(8));
    value
}
