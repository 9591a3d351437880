//! `runnel bench streams`: runnel-streams topologies — stateless, a
//! windowed count, a stream–table join — over input this module writes
//! once and every run reads, so Java Kafka Streams
//! (`tests/compat/java/StreamsBench.java`) can read the very same records
//! as the peer.
//!
//! A run is timed from its first record to its last, so the group's
//! start-up is left out, and reports the process's CPU seconds over that
//! time and its resident memory at the end.

use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use runnel_streams::serde::{BytesSerde, I64Serde, JsonSerde, Nullable, StringSerde, TimeWindowedSerde};
use runnel_streams::{Joined, KafkaStreams, StreamsBuilder, StreamsConfig, TimeWindows, Topology, TopologyTestDriver};
use serde::{Deserialize, Serialize};

use crate::{ensure_topic, Amount, BenchError, BenchOptions};

/// The stream every topology reads, and the table the join looks up.
pub const INPUT: &str = "bench-streams-input";
pub const TABLE: &str = "bench-streams-table";

/// How many keys the input has, and rows the table.
const KEYS: u64 = 1_000;

/// Which topology to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamsTopology {
    /// filter, then map_values, on 200-byte JSON values.
    Stateless,
    /// A count per key in 10-second tumbling windows.
    Windowed,
    /// Each record joined with the table row of its key.
    Join,
}

impl StreamsTopology {
    pub fn name(self) -> &'static str {
        match self {
            StreamsTopology::Stateless => "stateless",
            StreamsTopology::Windowed => "windowed",
            StreamsTopology::Join => "join",
        }
    }

    /// The topic the topology writes to, as `written`.
    fn output(self, written: Written) -> String {
        match written {
            Written::Strings => format!("bench-streams-out-{}", self.name()),
            Written::Serde => format!("bench-serde-out-{}", self.name()),
            Written::Sql => format!("BENCH_SQL_{}", self.name().to_uppercase()),
        }
    }

    fn build(self, written: Written) -> Result<Topology, BenchError> {
        Ok(match written {
            Written::Strings => self.build_on_strings(),
            Written::Serde => self.build_with_serde(),
            Written::Sql => self.build_in_sql()?,
        })
    }

    /// The same work written in SQL, as runnel-sql's engine plans it onto
    /// runnel-streams: the input's JSON values read into columns, the
    /// filter and projection, the windowed count or the join, and JSON
    /// written out.
    fn build_in_sql(self) -> Result<Topology, BenchError> {
        let query = match self {
            StreamsTopology::Stateless => "CREATE STREAM bench_sql_stateless AS SELECT k, id, fare, zone FROM bench_input WHERE even EMIT CHANGES;",
            StreamsTopology::Windowed => {
                "CREATE TABLE bench_sql_windowed AS SELECT k, COUNT(*) AS n FROM bench_input \
                 WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 5 SECONDS) GROUP BY k EMIT CHANGES;"
            }
            StreamsTopology::Join => {
                "CREATE STREAM bench_sql_join AS SELECT i.k AS k, i.id AS id, t.name AS name \
                 FROM bench_input i JOIN bench_table t ON i.k = t.k EMIT CHANGES;"
            }
        };
        let mut engine = runnel_sql::engine::Engine::new();
        let sources = format!(
            "CREATE STREAM bench_input (k VARCHAR KEY, id BIGINT, even BOOLEAN, fare DOUBLE, zone VARCHAR, pad VARCHAR) \
             WITH (KAFKA_TOPIC='{INPUT}', VALUE_FORMAT='JSON');\n\
             CREATE TABLE bench_table (k VARCHAR PRIMARY KEY, name VARCHAR) WITH (KAFKA_TOPIC='{TABLE}', VALUE_FORMAT='KAFKA');"
        );
        engine.execute(&format!("{sources}\n{query}")).map_err(|e| BenchError::Setup(e.to_string()))?;
        Ok(engine.topology())
    }

    /// The SQL's hand-written twin: values read from JSON into structs
    /// with serde, and the results written as the same JSON objects.
    fn build_with_serde(self) -> Topology {
        let builder = StreamsBuilder::new();
        let input = builder.stream(INPUT, StringSerde, JsonSerde::<Ride>::default());
        match self {
            StreamsTopology::Stateless => input
                .filter(|_, ride| ride.even)
                .map_values(|ride| Projected { id: ride.id, fare: ride.fare, zone: ride.zone.clone() })
                .to("bench-serde-out-stateless", StringSerde, JsonSerde::default()),
            StreamsTopology::Windowed => {
                input.group_by_key().windowed_by(TimeWindows::of_size_and_grace(10_000, 5_000)).count().to_stream().map_values(|n| Counted { n: *n }).to(
                    "bench-serde-out-windowed",
                    TimeWindowedSerde::new(StringSerde, 10_000),
                    JsonSerde::default(),
                )
            }
            StreamsTopology::Join => {
                let table = builder.table(TABLE, StringSerde, StringSerde);
                input.join_table(&table, |ride, name| Named { id: ride.id, name: name.clone() }, Joined::with(StringSerde, JsonSerde::default())).to(
                    "bench-serde-out-join",
                    StringSerde,
                    JsonSerde::default(),
                )
            }
        }
        builder.build()
    }

    /// The same topology as `StreamsBench.java` builds.
    fn build_on_strings(self) -> Topology {
        let builder = StreamsBuilder::new();
        let input = builder.stream(INPUT, StringSerde, StringSerde);
        match self {
            StreamsTopology::Stateless => input.filter(|_, v| v.contains("\"even\":true")).map_values(|v| format!("{}:{}", v.len(), &v[..24.min(v.len())])).to(
                "bench-streams-out-stateless",
                StringSerde,
                StringSerde,
            ),
            StreamsTopology::Windowed => input.group_by_key().windowed_by(TimeWindows::of_size_and_grace(10_000, 5_000)).count().to_stream().to(
                "bench-streams-out-windowed",
                TimeWindowedSerde::new(StringSerde, 10_000),
                I64Serde,
            ),
            StreamsTopology::Join => {
                let table = builder.table(TABLE, StringSerde, StringSerde);
                input.join_table(&table, |v, t| format!("{}:{t}", v.len()), Joined::with(StringSerde, StringSerde)).to(
                    "bench-streams-out-join",
                    StringSerde,
                    StringSerde,
                )
            }
        }
        builder.build()
    }
}

/// Who wrote a benchmarked topology, and how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Written {
    /// By hand, matching strings rather than reading JSON, as
    /// `StreamsBench.java` does: the Java peer's twin.
    #[default]
    Strings,
    /// By hand, reading JSON into structs with serde and writing JSON: the
    /// twin of the SQL.
    Serde,
    /// In SQL, planned by runnel-sql.
    Sql,
}

impl Written {
    fn name(self) -> &'static str {
        match self {
            Written::Strings => "streams",
            Written::Serde => "serde",
            Written::Sql => "sql",
        }
    }
}

/// An input value's fields that the queries use (serde skips the rest).
#[derive(Clone, Deserialize, Serialize)]
struct Ride {
    id: i64,
    even: bool,
    fare: f64,
    zone: String,
}

/// The stateless query's output, named as SQL names its columns.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
struct Projected {
    id: i64,
    fare: f64,
    zone: String,
}

/// The windowed count's output.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
struct Counted {
    n: i64,
}

/// The join's output.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
struct Named {
    id: i64,
    name: String,
}

/// The outcome of a streams run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamsReport {
    pub workload: String,
    pub records: u64,
    pub seconds: f64,
    pub records_per_sec: f64,
    pub cpu_seconds: f64,
    pub rss_mb: f64,
}

impl StreamsReport {
    /// A human-readable table.
    pub fn table(&self) -> String {
        let rows = [
            ("workload", self.workload.clone()),
            ("records", self.records.to_string()),
            ("seconds", format!("{:.2}", self.seconds)),
            ("records/s", format!("{:.0}", self.records_per_sec)),
            ("CPU s", format!("{:.2}", self.cpu_seconds)),
            ("RSS MB", format!("{:.1}", self.rss_mb)),
        ];
        rows.iter().map(|(k, v)| format!("{k:<10} {v:>14}\n")).collect()
    }
}

/// How a benchmarked topology runs.
#[derive(Debug, Clone, Default)]
pub struct StreamsRun<'a> {
    /// Exactly once (transactions) instead of at least once.
    pub exactly_once: bool,
    /// Where the stores keep local checkpoints, if anywhere.
    pub state_dir: Option<&'a Path>,
    /// Who wrote the topology, and how.
    pub written: Written,
}

/// Writes the input (if the topics hold less), runs `topology` over
/// `records` input records, and reports. `options.partitions` sets the
/// input's partitions when it is created.
pub fn streams(options: &BenchOptions, topology: StreamsTopology, run: &StreamsRun<'_>) -> Result<StreamsReport, BenchError> {
    let Amount::Records(records) = options.amount else {
        return Err(BenchError::Setup("bench streams takes --records, not --duration".into()));
    };
    let (built, written_in) = (topology.build(run.written)?, run.written.name());
    write_input(options, records)?;
    let mut config = StreamsConfig::new(&format!("bench-runnel-{written_in}-{}-{}", topology.name(), std::process::id()), &options.bootstrap);
    config.client_properties = options.client_properties.clone();
    if run.exactly_once {
        config = config.exactly_once();
    }
    if let Some(dir) = run.state_dir {
        config = config.with_state_dir(dir);
    }
    // The join also reads the table's rows.
    let target = records + if topology == StreamsTopology::Join { KEYS } else { 0 };
    let app = KafkaStreams::start(built, config).map_err(|e| BenchError::Setup(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while app.metrics().processed_records == 0 {
        if Instant::now() > deadline {
            return Err(BenchError::Setup("the application never processed a record".into()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let (started, cpu_started) = (Instant::now(), cpu_seconds());
    while app.metrics().processed_records < target {
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!("processed {} of {target} records", app.metrics().processed_records)));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let cpu = cpu_seconds() - cpu_started;
    let rss_mb = rss_mb();
    app.close().map_err(|e| BenchError::Setup(e.to_string()))?;
    Ok(StreamsReport {
        workload: format!("{written_in}-{}", topology.name()),
        records,
        seconds,
        records_per_sec: records as f64 / seconds,
        cpu_seconds: cpu,
        rss_mb,
    })
}

/// Runs `topology` as `written` over `records` input records on the test
/// driver, in this thread: the processing alone, with no broker, client
/// or network, so what the way it was written costs shows without their
/// noise. The input is as [`streams`] writes it.
pub fn streams_on_driver(topology: StreamsTopology, written: Written, records: u64) -> Result<StreamsReport, BenchError> {
    let mut driver = TopologyTestDriver::new(topology.build(written)?);
    let output = driver.output_topic(&topology.output(written), Nullable(BytesSerde), Nullable(BytesSerde));
    let key = |i: u64| Some(format!("k{}", i % KEYS).into_bytes());
    for i in 0..KEYS {
        driver.pipe_bytes(TABLE, key(i), Some(format!("zone-{i}").into_bytes()), 0);
    }
    // Values made ahead, so the timing is of the processing only.
    let values: Vec<Vec<u8>> = (0..DRIVER_VALUES).map(|i| value(i).into_bytes()).collect();
    let (started, cpu_started) = (Instant::now(), cpu_seconds());
    for i in 0..records {
        driver.pipe_bytes(INPUT, key(i), Some(values[(i % DRIVER_VALUES) as usize].clone()), i as i64 * 10);
        if i % 4_096 == 0 {
            driver.read(&output).map_err(|e| BenchError::Setup(e.to_string()))?;
        }
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    Ok(StreamsReport {
        workload: format!("{}-{}-driver", written.name(), topology.name()),
        records,
        seconds,
        records_per_sec: records as f64 / seconds,
        cpu_seconds: cpu_seconds() - cpu_started,
        rss_mb: rss_mb(),
    })
}

/// How many distinct input values a driver run cycles through.
const DRIVER_VALUES: u64 = 10_000;

/// A 200-byte JSON ride-like value.
fn value(i: u64) -> String {
    let mut value = format!(r#"{{"id":{i},"even":{},"fare":{}.{:02},"zone":"{}","pad":""#, i.is_multiple_of(2), 5 + i % 60, i % 100, i % KEYS);
    let pad = 200usize.saturating_sub(value.len() + 2);
    value.extend(std::iter::repeat_n('x', pad));
    value.push_str("\"}");
    value
}

/// Tops the input topic up to `records` records (keys `k0`..`k999`,
/// timestamps 10 ms apart ending now) and the table up to one row per key.
fn write_input(options: &BenchOptions, records: u64) -> Result<(), BenchError> {
    for topic in [INPUT, TABLE] {
        ensure_topic(&BenchOptions { topic: topic.to_string(), ..options.clone() })?;
    }
    let producer: ThreadedProducer<_> = options.producer_config().create()?;
    let consumer: BaseConsumer = options.client().create()?;
    let count = |topic: &str| -> Result<u64, BenchError> {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len()) as i32;
        let mut total = 0;
        for partition in 0..partitions {
            let (low, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
            total += (high - low).max(0) as u64;
        }
        Ok(total)
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let first = now - records as i64 * 10;
    let send = |topic: &str, i: u64, value: &str, timestamp: i64| -> Result<(), BenchError> {
        let key = format!("k{}", i % KEYS);
        let mut record = BaseRecord::to(topic).key(&key).payload(value).timestamp(timestamp);
        loop {
            match producer.send(record) {
                Ok(()) => return Ok(()),
                Err((rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    };
    for i in count(TABLE)?..KEYS {
        send(TABLE, i, &format!("zone-{i}"), first)?;
    }
    for i in count(INPUT)?..records {
        send(INPUT, i, &value(i), first + i as i64 * 10)?;
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(())
}

/// This process's CPU time (user and system), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// This process's resident memory, in megabytes.
fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
