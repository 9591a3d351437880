//! `runnel bench`: throughput and latency from a neutral client
//! (librdkafka), against runnel or any Kafka-compatible broker.

use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};
use runnel_bench::{Amount, BenchOptions, BenchReport};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Debug, Subcommand)]
enum Workload {
    /// Produce fixed-size records as fast as allowed (or at --rate).
    Produce(CommonArgs),
    /// Consume a pre-filled topic from the beginning.
    Consume(CommonArgs),
    /// Produce at a fixed --rate and consume; report send-to-receive latency.
    E2e(CommonArgs),
    /// Commit offsets for every partition from --consumers groups, --records in all.
    Commit(CommonArgs),
}

#[derive(Debug, Args)]
struct CommonArgs {
    #[arg(long, env = "RUNNEL_BROKERS", default_value = "localhost:9092")]
    bootstrap_server: String,
    #[arg(long, default_value = "runnel-bench")]
    topic: String,
    #[arg(long, default_value_t = 1024)]
    record_size: usize,
    /// Number of records (default 1,000,000 unless --duration is given).
    #[arg(long, conflicts_with = "duration")]
    records: Option<u64>,
    /// Run for this many seconds instead of a record count.
    #[arg(long)]
    duration: Option<f64>,
    /// 0, 1, or -1/all.
    #[arg(long, default_value = "1", allow_hyphen_values = true)]
    acks: String,
    /// Partitions of the topic, created if missing.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    #[arg(long, default_value_t = 1)]
    producers: usize,
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    #[arg(long, default_value = "none")]
    compression: String,
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    #[arg(long, default_value_t = 1_048_576)]
    batch_size: usize,
    /// Give every record a key (spreads records by key hash).
    #[arg(long)]
    keyed: bool,
    /// Records per second across all producers.
    #[arg(long)]
    rate: Option<f64>,
    /// Produce in transactions, committing every this many milliseconds
    /// (each producer gets its own transactional id).
    #[arg(long)]
    transaction_ms: Option<u64>,
    /// Extra librdkafka property, KEY=VALUE; repeatable.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    properties: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

impl CommonArgs {
    fn options(&self) -> anyhow::Result<BenchOptions> {
        let amount = match (self.records, self.duration) {
            (_, Some(secs)) if secs > 0.0 => Amount::Duration(Duration::from_secs_f64(secs)),
            (_, Some(secs)) => bail!("--duration must be positive, got {secs}"),
            (Some(n), None) => Amount::Records(n),
            (None, None) => Amount::Records(1_000_000),
        };
        if self.transaction_ms == Some(0) {
            bail!("--transaction-ms must be positive");
        }
        if self.partitions < 1 || self.producers < 1 || self.consumers < 1 {
            bail!("--partitions, --producers and --consumers must be at least 1");
        }
        let client_properties = self
            .properties
            .iter()
            .map(|p| p.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| anyhow::anyhow!("-X {p}: expected KEY=VALUE")))
            .collect::<anyhow::Result<_>>()?;
        Ok(BenchOptions {
            bootstrap: self.bootstrap_server.clone(),
            topic: self.topic.clone(),
            record_size: self.record_size,
            amount,
            acks: self.acks.clone(),
            partitions: self.partitions,
            producers: self.producers,
            consumers: self.consumers,
            compression: self.compression.clone(),
            linger_ms: self.linger_ms,
            batch_size: self.batch_size,
            keyed: self.keyed,
            rate: self.rate,
            transaction_ms: self.transaction_ms,
            client_properties,
        })
    }
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let (common, report): (&CommonArgs, BenchReport) = match &args.workload {
        Workload::Produce(c) => (c, runnel_bench::produce(&c.options()?)?),
        Workload::Consume(c) => (c, runnel_bench::consume(&c.options()?)?),
        Workload::E2e(c) => (c, runnel_bench::e2e(&c.options()?)?),
        Workload::Commit(c) => (c, runnel_bench::commits(&c.options()?)?),
    };
    if common.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}
