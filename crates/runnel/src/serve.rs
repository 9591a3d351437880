//! `runnel serve`: layer the configuration (defaults, TOML file,
//! `RUNNEL_*` environment, flags), start the broker, stop cleanly on
//! Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use runnel_broker::{BrokerConfig, BrokerState, FsyncPolicy, ListenerConfig};
use serde::Deserialize;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML config file; flags and RUNNEL_* variables override it.
    #[arg(long, env = "RUNNEL_CONFIG")]
    config: Option<PathBuf>,
    /// Where topics and their logs are stored [default: ./runnel-data].
    #[arg(long, env = "RUNNEL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the default Kafka listener [default: 127.0.0.1:9092].
    #[arg(long, env = "RUNNEL_KAFKA_LISTEN")]
    kafka_listen: Option<std::net::SocketAddr>,
    /// Address clients are told to use for the default listener
    /// [default: the bound address].
    #[arg(long, env = "RUNNEL_KAFKA_ADVERTISE")]
    kafka_advertise: Option<String>,
    /// Extra named listener, NAME=HOST:PORT[@ADVERTISED_HOST:PORT];
    /// repeatable (e.g. DOCKER=0.0.0.0:29092@broker:29092).
    #[arg(long = "listener", env = "RUNNEL_LISTENERS", value_delimiter = ',')]
    listeners: Vec<String>,
    /// Partitions of auto-created topics (num.partitions).
    #[arg(long, env = "RUNNEL_NUM_PARTITIONS")]
    num_partitions: Option<i32>,
    /// Create topics when clients first use them (auto.create.topics.enable).
    #[arg(long, env = "RUNNEL_AUTO_CREATE_TOPICS")]
    auto_create_topics: Option<bool>,
    /// When writes are fsynced: `always` answers acks=all only after fsync.
    #[arg(long, env = "RUNNEL_FSYNC", value_enum)]
    fsync: Option<FsyncArg>,
    /// Period of the background fsync with `--fsync interval`.
    #[arg(long, env = "RUNNEL_FSYNC_INTERVAL_MS")]
    fsync_interval_ms: Option<u64>,
    /// How often retention deletes old segments.
    #[arg(long, env = "RUNNEL_RETENTION_CHECK_INTERVAL_MS")]
    retention_check_interval_ms: Option<u64>,
    /// Pause between rounds of the log cleaner, which compacts topics with
    /// `cleanup.policy=compact` (log.cleaner.backoff.ms).
    #[arg(long, env = "RUNNEL_LOG_CLEANER_BACKOFF_MS")]
    log_cleaner_backoff_ms: Option<u64>,
    /// Disk bytes per second the log cleaner may read and write
    /// (log.cleaner.io.max.bytes.per.second) [default: 67108864].
    #[arg(long, env = "RUNNEL_LOG_CLEANER_IO_MAX_BYTES_PER_SECOND")]
    log_cleaner_io_max_bytes_per_second: Option<u64>,
    /// Largest request accepted (socket.request.max.bytes).
    #[arg(long, env = "RUNNEL_SOCKET_REQUEST_MAX_BYTES")]
    socket_request_max_bytes: Option<usize>,
    /// Bytes that requests in flight may hold across all connections
    /// (queued.max.request.bytes) [default: 536870912].
    #[arg(long, env = "RUNNEL_QUEUED_MAX_REQUEST_BYTES")]
    queued_max_request_bytes: Option<usize>,
    /// Close connections idle this long (connections.max.idle.ms) [default: 600000].
    #[arg(long, env = "RUNNEL_CONNECTIONS_MAX_IDLE_MS")]
    connections_max_idle_ms: Option<u64>,
    /// Close a connection whose request stops arriving mid-frame this long [default: 30000].
    #[arg(long, env = "RUNNEL_REQUEST_STALL_TIMEOUT_MS")]
    request_stall_timeout_ms: Option<u64>,
    /// Forget idempotent producers silent this long (producer.id.expiration.ms) [default: 86400000].
    #[arg(long, env = "RUNNEL_PRODUCER_ID_EXPIRATION_MS")]
    producer_id_expiration_ms: Option<i64>,
    /// How long the first rebalance of an empty group waits for more
    /// members (group.initial.rebalance.delay.ms) [default: 0]. 0 starts a
    /// lone consumer at once; Apache Kafka's 3000 lets consumers started
    /// together land in one generation, where with 0 the first gets every
    /// partition and then gives some up (an extra revocation with
    /// cooperative-sticky). Also changeable at runtime.
    #[arg(long, env = "RUNNEL_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    group_initial_rebalance_delay_ms: Option<i32>,
    /// Smallest session timeout a consumer may ask for (group.min.session.timeout.ms).
    #[arg(long, env = "RUNNEL_GROUP_MIN_SESSION_TIMEOUT_MS")]
    group_min_session_timeout_ms: Option<i32>,
    /// Committed offsets of groups empty this long expire (offsets.retention.minutes).
    #[arg(long, env = "RUNNEL_OFFSETS_RETENTION_MINUTES")]
    offsets_retention_minutes: Option<i64>,
    /// Longest transaction timeout a producer may ask for (transaction.max.timeout.ms) [default: 900000].
    #[arg(long, env = "RUNNEL_TRANSACTION_MAX_TIMEOUT_MS")]
    transaction_max_timeout_ms: Option<i32>,
    /// Forget transactional ids unused this long (transactional.id.expiration.ms) [default: 604800000].
    #[arg(long, env = "RUNNEL_TRANSACTIONAL_ID_EXPIRATION_MS")]
    transactional_id_expiration_ms: Option<i64>,
    /// How often transactions open past their timeout are aborted
    /// (transaction.abort.timed.out.transaction.cleanup.interval.ms) [default: 10000].
    #[arg(long, env = "RUNNEL_TRANSACTION_TIMEOUT_CHECK_INTERVAL_MS")]
    transaction_timeout_check_interval_ms: Option<u64>,
    /// Address of the Schema Registry's REST API [default: 127.0.0.1:8081].
    #[arg(long, env = "RUNNEL_REGISTRY_LISTEN")]
    registry_listen: Option<std::net::SocketAddr>,
    /// Do not start the Schema Registry.
    #[arg(long, env = "RUNNEL_NO_REGISTRY")]
    no_registry: bool,
    /// Address of the SQL service's REST API (ksqlDB's) [default: 127.0.0.1:8088].
    #[arg(long, env = "RUNNEL_SQL_LISTEN")]
    sql_listen: Option<std::net::SocketAddr>,
    /// Do not start the SQL service.
    #[arg(long, env = "RUNNEL_NO_SQL")]
    no_sql: bool,
    /// Address of the Prometheus metrics endpoint, `GET /metrics`
    /// [default: 127.0.0.1:9644].
    #[arg(long, env = "RUNNEL_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Do not serve metrics.
    #[arg(long, env = "RUNNEL_NO_METRICS")]
    no_metrics: bool,
    /// Broker-wide default for a topic config, KEY=VALUE; repeatable.
    #[arg(long = "topic-default", env = "RUNNEL_TOPIC_DEFAULTS", value_delimiter = ',')]
    topic_defaults: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FsyncArg {
    Always,
    Interval,
    Never,
}

/// The TOML file's shape: one table per service.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    broker: BrokerConfig,
}

impl ServeArgs {
    /// Defaults, then the file, then environment and flags (clap has
    /// already merged those two, flags winning).
    /// Where the registry listens, unless it is turned off.
    fn registry_address(&self) -> Option<std::net::SocketAddr> {
        (!self.no_registry).then(|| self.registry_listen.unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 8081))))
    }

    /// Where the SQL service listens, unless it is turned off.
    fn sql_address(&self) -> Option<std::net::SocketAddr> {
        (!self.no_sql).then(|| self.sql_listen.unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 8088))))
    }

    /// Where metrics are served, unless they are turned off.
    fn metrics_address(&self) -> Option<std::net::SocketAddr> {
        (!self.no_metrics).then(|| self.metrics_listen.unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 9644))))
    }

    fn into_config(self) -> anyhow::Result<BrokerConfig> {
        let mut config = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text).with_context(|| format!("parsing config file {}", path.display()))?.broker
            }
            None => BrokerConfig::default(),
        };
        if let Some(dir) = self.data_dir {
            config.data_dir = dir;
        }
        if self.kafka_listen.is_some() || self.kafka_advertise.is_some() {
            let default = config.listeners.first().cloned().unwrap_or_else(|| BrokerConfig::default().listeners.remove(0));
            let listener = ListenerConfig {
                name: default.name,
                listen: self.kafka_listen.unwrap_or(default.listen),
                advertise: self.kafka_advertise.or(default.advertise),
            };
            if config.listeners.is_empty() {
                config.listeners.push(listener);
            } else {
                config.listeners[0] = listener;
            }
        }
        for spec in &self.listeners {
            let listener = ListenerConfig::parse(spec).map_err(anyhow::Error::msg)?;
            config.listeners.retain(|l| l.name != listener.name);
            config.listeners.push(listener);
        }
        if let Some(n) = self.num_partitions {
            config.num_partitions = n;
        }
        if let Some(on) = self.auto_create_topics {
            config.auto_create_topics = on;
        }
        if let Some(fsync) = self.fsync {
            config.fsync = match fsync {
                FsyncArg::Always => FsyncPolicy::Always,
                FsyncArg::Interval => FsyncPolicy::Interval,
                FsyncArg::Never => FsyncPolicy::Never,
            };
        }
        if let Some(ms) = self.fsync_interval_ms {
            config.fsync_interval_ms = ms;
        }
        if let Some(ms) = self.retention_check_interval_ms {
            config.retention_check_interval_ms = ms;
        }
        if let Some(ms) = self.log_cleaner_backoff_ms {
            config.log_cleaner_backoff_ms = ms;
        }
        if let Some(rate) = self.log_cleaner_io_max_bytes_per_second {
            config.log_cleaner_io_max_bytes_per_second = rate;
        }
        if let Some(bytes) = self.socket_request_max_bytes {
            config.socket_request_max_bytes = bytes;
        }
        if let Some(bytes) = self.queued_max_request_bytes {
            config.queued_max_request_bytes = bytes;
        }
        if let Some(ms) = self.connections_max_idle_ms {
            config.connections_max_idle_ms = ms;
        }
        if let Some(ms) = self.request_stall_timeout_ms {
            config.request_stall_timeout_ms = ms;
        }
        if let Some(ms) = self.producer_id_expiration_ms {
            config.producer_id_expiration_ms = ms;
        }
        if let Some(ms) = self.group_initial_rebalance_delay_ms {
            config.group_initial_rebalance_delay_ms = ms;
        }
        if let Some(ms) = self.group_min_session_timeout_ms {
            config.group_min_session_timeout_ms = ms;
        }
        if let Some(minutes) = self.offsets_retention_minutes {
            config.offsets_retention_minutes = minutes;
        }
        if let Some(ms) = self.transaction_max_timeout_ms {
            config.transaction_max_timeout_ms = ms;
        }
        if let Some(ms) = self.transactional_id_expiration_ms {
            config.transactional_id_expiration_ms = ms;
        }
        if let Some(ms) = self.transaction_timeout_check_interval_ms {
            config.transaction_timeout_check_interval_ms = ms;
        }
        for spec in &self.topic_defaults {
            let (key, value) = spec.split_once('=').with_context(|| format!("--topic-default `{spec}` must be KEY=VALUE"))?;
            config.topic_defaults.insert(key.to_string(), value.to_string());
        }
        validate(&config)?;
        Ok(config)
    }
}

fn validate(config: &BrokerConfig) -> anyhow::Result<()> {
    if config.listeners.is_empty() {
        bail!("at least one listener is required");
    }
    if config.num_partitions < 1 {
        bail!("num_partitions must be at least 1, got {}", config.num_partitions);
    }
    for (key, value) in &config.topic_defaults {
        runnel_broker::topic_config::validate(key, Some(value)).with_context(|| "invalid topic default")?;
    }
    if config.group_initial_rebalance_delay_ms < 0 || config.group_min_session_timeout_ms < 1 || config.offsets_retention_minutes < 1 {
        bail!("group timings must be positive");
    }
    if config.log_cleaner_io_max_bytes_per_second == 0 {
        bail!("log_cleaner_io_max_bytes_per_second must be positive");
    }
    if config.transaction_max_timeout_ms < 1 || config.transactional_id_expiration_ms < 1 || config.transaction_timeout_check_interval_ms == 0 {
        bail!("transaction timings must be positive");
    }
    if config.queued_max_request_bytes < config.socket_request_max_bytes {
        bail!(
            "queued_max_request_bytes ({}) must be at least socket_request_max_bytes ({}), or the largest request could never be read",
            config.queued_max_request_bytes,
            config.socket_request_max_bytes
        );
    }
    if config.connections_max_idle_ms == 0 || config.request_stall_timeout_ms == 0 || config.producer_id_expiration_ms < 1 {
        bail!("connection timeouts and producer_id_expiration_ms must be positive");
    }
    if config.group_min_session_timeout_ms > config.group_max_session_timeout_ms {
        bail!("group_min_session_timeout_ms exceeds group_max_session_timeout_ms");
    }
    let mut names: Vec<_> = config.listeners.iter().map(|l| &l.name).collect();
    names.sort();
    names.dedup();
    if names.len() != config.listeners.len() {
        bail!("listener names must be unique");
    }
    Ok(())
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging();
    let registry_address = args.registry_address();
    let metrics_address = args.metrics_address();
    let sql_address = args.sql_address();
    let config = args.into_config()?;
    match runnel_broker::resources::raise_open_file_limit() {
        Ok(limit) => tracing::info!(limit, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "could not read the open file limit"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let started = std::time::Instant::now();
        let data_dir = config.data_dir.clone();
        let listeners = runnel_broker::bind(&config.listeners).await?;
        let state =
            tokio::task::spawn_blocking(move || BrokerState::open(config)).await?.with_context(|| format!("opening data directory {}", data_dir.display()))?;
        let state = Arc::new(state);
        for (_, l) in &listeners {
            tracing::info!(listener = %l.name, bind = %l.local_addr, advertised = %format!("{}:{}", l.advertised_host, l.advertised_port), "listening");
        }
        // The registry is a Kafka client of this broker, through its first listener.
        let first = listeners[0].1.local_addr;
        let bootstrap = if first.ip().is_unspecified() { format!("127.0.0.1:{}", first.port()) } else { first.to_string() };
        let (stop_broker, broker_stopped) = tokio::sync::oneshot::channel::<()>();
        let broker = tokio::spawn(runnel_broker::run(state.clone(), listeners, async move {
            let _ = broker_stopped.await;
        }));
        let (registry, registry_url) = match registry_address {
            Some(address) => {
                let (task, url) = start_registry(address, &bootstrap).await?;
                (Some(task), Some(url))
            }
            None => (None, None),
        };
        let metrics = match metrics_address {
            Some(address) => Some(start_metrics(address, state.clone()).await?),
            None => None,
        };
        let sql = match sql_address {
            Some(address) => {
                let mut sql_config = runnel_sql::service::SqlConfig::new(&bootstrap);
                sql_config.state_dir = Some(data_dir.join("sql"));
                sql_config.registry_url = registry_url;
                Some(start_sql(address, sql_config).await?)
            }
            None => None,
        };
        tracing::info!(
            cluster_id = %state.cluster_id,
            node_id = state.node_id,
            data_dir = %data_dir.display(),
            topics = state.topics().len(),
            startup_ms = started.elapsed().as_millis() as u64,
            "runnel ready"
        );
        shutdown_signal().await;
        // Persistent queries commit their work while the broker still runs.
        if let Some(sql) = sql {
            sql.stop().await;
        }
        for service in registry.into_iter().chain(metrics) {
            service.abort();
        }
        let _ = stop_broker.send(());
        broker.await?;
        Ok(())
    })
}

/// Replays `_schemas`, binds the REST API and serves it in the
/// background; returns the task and the URL it answers on.
async fn start_registry(address: std::net::SocketAddr, bootstrap: &str) -> anyhow::Result<(tokio::task::JoinHandle<()>, String)> {
    let registry = runnel_registry::Registry::open(bootstrap).await.context("starting the schema registry")?;
    let listener = tokio::net::TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address} for the schema registry"))?;
    let bound = listener.local_addr()?;
    tracing::info!(bind = %bound, "schema registry listening");
    let host = if bound.ip().is_unspecified() { std::net::IpAddr::from([127, 0, 0, 1]) } else { bound.ip() };
    let url = format!("http://{}", std::net::SocketAddr::new(host, bound.port()));
    let app = runnel_registry::router(Arc::new(registry));
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "schema registry stopped");
        }
    });
    Ok((task, url))
}

/// The SQL service, serving in the background.
struct SqlServer {
    service: Arc<runnel_sql::service::SqlService>,
    server: tokio::task::JoinHandle<()>,
}

impl SqlServer {
    /// Stops serving, then stops the queries.
    async fn stop(self) {
        self.server.abort();
        let service = self.service;
        let _ = tokio::task::spawn_blocking(move || service.shutdown()).await;
    }
}

/// Replays the SQL command topic, restarts its queries, binds the REST
/// API and serves it in the background.
async fn start_sql(address: std::net::SocketAddr, config: runnel_sql::service::SqlConfig) -> anyhow::Result<SqlServer> {
    let service = tokio::task::spawn_blocking(move || runnel_sql::service::SqlService::open(config)).await?.context("starting the SQL service")?;
    let listener = tokio::net::TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address} for the SQL service"))?;
    tracing::info!(bind = %listener.local_addr()?, "SQL service listening");
    let app = runnel_sql::service::router(service.clone());
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "SQL service stopped");
        }
    });
    Ok(SqlServer { service, server })
}

/// Serves `GET /metrics` in Prometheus' text format in the background.
async fn start_metrics(address: std::net::SocketAddr, state: Arc<BrokerState>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address} for metrics"))?;
    tracing::info!(bind = %listener.local_addr()?, "metrics listening");
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let state = state.clone();
            async move {
                let text = tokio::task::spawn_blocking(move || runnel_broker::metrics::render(&state)).await.unwrap_or_default();
                ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
            }
        }),
    );
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    }))
}

/// `runnel registry`: the Schema Registry alone, against any Kafka cluster.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// Kafka bootstrap address.
    #[arg(long, short = 'b', env = "RUNNEL_BROKERS", default_value = "localhost:9092")]
    bootstrap_server: String,
    /// Address of the REST API.
    #[arg(long, env = "RUNNEL_REGISTRY_LISTEN", default_value = "127.0.0.1:8081")]
    listen: std::net::SocketAddr,
}

pub fn run_registry(args: RegistryArgs) -> anyhow::Result<()> {
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let (registry, _) = start_registry(args.listen, &args.bootstrap_server).await?;
        tracing::info!("schema registry ready");
        shutdown_signal().await;
        registry.abort();
        Ok(())
    })
}

/// `runnel sql-server`: the SQL service alone, against any Kafka cluster.
#[derive(Debug, clap::Args)]
pub struct SqlServerArgs {
    /// Kafka bootstrap address.
    #[arg(long, short = 'b', env = "RUNNEL_BROKERS", default_value = "localhost:9092")]
    bootstrap_server: String,
    /// Address of the REST API.
    #[arg(long, env = "RUNNEL_SQL_LISTEN", default_value = "127.0.0.1:8088")]
    listen: std::net::SocketAddr,
    /// Servers with the same id share one command topic and the work of
    /// its persistent queries (ksqlDB's ksql.service.id).
    #[arg(long, env = "RUNNEL_SQL_SERVICE_ID", default_value = "default_")]
    service_id: String,
    /// Where persistent queries keep local checkpoints of their state
    /// [default: state in memory, restored from changelog topics].
    #[arg(long, env = "RUNNEL_SQL_STATE_DIR")]
    state_dir: Option<std::path::PathBuf>,
    /// Schema Registry URL, for AVRO, PROTOBUF and JSON_SR keys and
    /// values (ksqlDB's ksql.schema.registry.url).
    #[arg(long, env = "RUNNEL_SCHEMA_REGISTRY")]
    registry: Option<String>,
}

pub fn run_sql_server(args: SqlServerArgs) -> anyhow::Result<()> {
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let mut config = runnel_sql::service::SqlConfig::new(&args.bootstrap_server);
        config.service_id = args.service_id;
        config.state_dir = args.state_dir;
        config.registry_url = args.registry;
        let sql = start_sql(args.listen, config).await?;
        tracing::info!("SQL service ready");
        shutdown_signal().await;
        sql.stop().await;
        Ok(())
    })
}

/// Logs to stderr at the level `RUNNEL_LOG` sets (`info` by default).
fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RUNNEL_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
