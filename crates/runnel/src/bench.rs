//! `runnel bench`: throughput and latency from a neutral client
//! (librdkafka), against runnel or any Kafka-compatible broker.

use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};
use runnel_bench::{Amount, BenchOptions, BenchReport, StreamsReport, StreamsTopology, Written};

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
    /// Run a runnel-streams topology over 200-byte JSON records, written
    /// once to bench-streams-input (and a 1,000-row table for the join).
    Streams(StreamsArgs),
    /// Run the same work written in SQL, after its hand-written twin
    /// (serde structs, `bench streams --serde`), and report both.
    Sql(SqlArgs),
}

#[derive(Debug, Args)]
struct StreamsArgs {
    #[command(flatten)]
    topology: TopologyArgs,
    /// Read the JSON values into structs with serde and write JSON, as the
    /// SQL does, instead of matching strings as the Java peer does.
    #[arg(long)]
    serde: bool,
}

#[derive(Debug, Args)]
struct SqlArgs {
    #[command(flatten)]
    topology: TopologyArgs,
    /// Run both on the test driver, in this process, with no broker: the
    /// processing alone, without the client's and the network's noise.
    #[arg(long)]
    driver: bool,
}

#[derive(Debug, Clone, Args)]
struct TopologyArgs {
    #[arg(long, env = "RUNNEL_BROKERS", default_value = "localhost:9092")]
    bootstrap_server: String,
    /// stateless (filter, then map_values), windowed (a count per key in
    /// 10-second windows) or join (a stream–table join).
    #[arg(long, value_enum, default_value = "stateless")]
    topology: Topology,
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Partitions of the input topics, when they are created.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Process exactly once (transactions) instead of at least once.
    #[arg(long)]
    exactly_once: bool,
    /// Keep local checkpoints of the stores in this directory.
    #[arg(long)]
    state_dir: Option<std::path::PathBuf>,
    /// Extra librdkafka property, KEY=VALUE; repeatable.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    properties: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Topology {
    Stateless,
    Windowed,
    Join,
}

fn streams_topology(topology: Topology) -> StreamsTopology {
    match topology {
        Topology::Stateless => StreamsTopology::Stateless,
        Topology::Windowed => StreamsTopology::Windowed,
        Topology::Join => StreamsTopology::Join,
    }
}

impl Topology {
    fn name(self) -> &'static str {
        match self {
            Topology::Stateless => "stateless",
            Topology::Windowed => "windowed",
            Topology::Join => "join",
        }
    }
}

/// `-X KEY=VALUE` properties as pairs.
fn properties(raw: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    raw.iter().map(|p| p.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| anyhow::anyhow!("-X {p}: expected KEY=VALUE"))).collect()
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
        let client_properties = properties(&self.properties)?;
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
    match &args.workload {
        Workload::Streams(streams) => return run_streams(&streams.topology, if streams.serde { Written::Serde } else { Written::Strings }),
        Workload::Sql(sql) => return run_sql(sql),
        _ => {}
    }
    let (common, report): (&CommonArgs, BenchReport) = match &args.workload {
        Workload::Produce(c) => (c, runnel_bench::produce(&c.options()?)?),
        Workload::Consume(c) => (c, runnel_bench::consume(&c.options()?)?),
        Workload::E2e(c) => (c, runnel_bench::e2e(&c.options()?)?),
        Workload::Commit(c) => (c, runnel_bench::commits(&c.options()?)?),
        Workload::Streams(_) | Workload::Sql(_) => unreachable!("handled above"),
    };
    if common.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

fn run_streams(args: &TopologyArgs, written: Written) -> anyhow::Result<()> {
    let report = streams_report(args, written)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// The SQL's run beside its hand-written twin's, which runs first in a
/// process of its own so that each reports its own memory.
fn run_sql(sql_args: &SqlArgs) -> anyhow::Result<()> {
    let args = &sql_args.topology;
    let (hand_written, sql) = if sql_args.driver {
        let topology = streams_topology(args.topology);
        (runnel_bench::streams_on_driver(topology, Written::Serde, args.records)?, runnel_bench::streams_on_driver(topology, Written::Sql, args.records)?)
    } else {
        (
            hand_written_in_a_child(args)?,
            streams_report(&TopologyArgs { state_dir: args.state_dir.as_ref().map(|dir| dir.join("sql")), ..args.clone() }, Written::Sql)?,
        )
    };
    let share = sql.records_per_sec / hand_written.records_per_sec.max(1e-9);
    if args.json {
        let mut fields = serde_json::to_value(&sql)?;
        fields["hand_written_records_per_sec"] = hand_written.records_per_sec.into();
        fields["hand_written_cpu_seconds"] = hand_written.cpu_seconds.into();
        fields["hand_written_rss_mb"] = hand_written.rss_mb.into();
        fields["share"] = share.into();
        println!("{fields}");
    } else {
        println!("SQL\n{}\nhand-written (serde)\n{}\nSQL's share of the hand-written throughput: {:.0}%", sql.table(), hand_written.table(), share * 100.0);
    }
    Ok(())
}

/// The hand-written twin's run, in a process of its own.
fn hand_written_in_a_child(args: &TopologyArgs) -> anyhow::Result<StreamsReport> {
    let mut twin = std::process::Command::new(std::env::current_exe()?);
    twin.args(["bench", "streams", "--serde", "--json", "--topology", args.topology.name()]).args([
        "--bootstrap-server",
        &args.bootstrap_server,
        "--records",
        &args.records.to_string(),
        "--partitions",
        &args.partitions.to_string(),
    ]);
    if args.exactly_once {
        twin.arg("--exactly-once");
    }
    if let Some(dir) = &args.state_dir {
        twin.arg("--state-dir").arg(dir.join("serde"));
    }
    for property in &args.properties {
        twin.args(["-X", property]);
    }
    let output = twin.output()?;
    if !output.status.success() {
        bail!("the hand-written run failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

fn streams_report(args: &TopologyArgs, written: Written) -> anyhow::Result<StreamsReport> {
    if args.partitions < 1 {
        bail!("--partitions must be at least 1");
    }
    let options = BenchOptions {
        bootstrap: args.bootstrap_server.clone(),
        topic: runnel_bench::STREAMS_INPUT.to_string(),
        record_size: 200,
        amount: Amount::Records(args.records),
        acks: "all".to_string(),
        partitions: args.partitions,
        producers: 1,
        consumers: 1,
        compression: "none".to_string(),
        linger_ms: 5,
        batch_size: 1_048_576,
        keyed: true,
        rate: None,
        transaction_ms: None,
        client_properties: properties(&args.properties)?,
    };
    let topology = streams_topology(args.topology);
    let run = runnel_bench::StreamsRun { exactly_once: args.exactly_once, state_dir: args.state_dir.as_deref(), written };
    Ok(runnel_bench::streams(&options, topology, &run)?)
}
