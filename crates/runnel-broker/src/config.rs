//! Typed broker configuration. The binary layers defaults, a TOML file,
//! `RUNNEL_*` environment variables and flags into one of these.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// When appended data is forced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsyncPolicy {
    /// `acks=all` produces are answered only after an fsync covering them
    /// (shared between concurrent producers).
    Always,
    /// A background task fsyncs every `fsync_interval_ms`; nothing waits.
    Interval,
    /// Leave flushing to the operating system.
    Never,
}

/// One named listener: where it binds and what address it hands to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerConfig {
    pub name: String,
    pub listen: SocketAddr,
    /// `host:port` returned in Metadata to clients connected through this
    /// listener. Defaults to the bound address.
    #[serde(default)]
    pub advertise: Option<String>,
}

impl ListenerConfig {
    /// Parses `NAME=HOST:PORT[@ADVERTISED_HOST:PORT]`.
    pub fn parse(spec: &str) -> Result<ListenerConfig, String> {
        let (name, rest) = spec.split_once('=').ok_or_else(|| format!("listener `{spec}` must look like NAME=HOST:PORT[@ADVERTISED_HOST:PORT]"))?;
        let (listen, advertise) = match rest.split_once('@') {
            Some((listen, advertise)) => (listen, Some(advertise.to_string())),
            None => (rest, None),
        };
        let listen = listen.parse().map_err(|e| format!("listener `{name}`: bad address `{listen}`: {e}"))?;
        if let Some(advertise) = &advertise {
            split_host_port(advertise)?;
        }
        Ok(ListenerConfig { name: name.to_string(), listen, advertise })
    }
}

/// Splits `host:port`, accepting bracketed IPv6 hosts.
pub fn split_host_port(addr: &str) -> Result<(String, u16), String> {
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| format!("`{addr}` must be HOST:PORT"))?;
    let port = port.parse().map_err(|_| format!("`{addr}`: bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("`{addr}`: empty host"));
    }
    Ok((host.to_string(), port))
}

/// Everything the broker needs to start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    pub data_dir: PathBuf,
    pub listeners: Vec<ListenerConfig>,
    pub auto_create_topics: bool,
    /// Partitions of auto-created topics (`num.partitions`).
    pub num_partitions: i32,
    /// Largest request frame accepted (`socket.request.max.bytes`).
    pub socket_request_max_bytes: usize,
    /// Bytes that requests being read or handled may hold across all
    /// connections (`queued.max.request.bytes`); connections wait to read
    /// their next request while it is spent.
    pub queued_max_request_bytes: usize,
    /// Close connections that send no request for this long
    /// (`connections.max.idle.ms`).
    pub connections_max_idle_ms: u64,
    /// Close a connection whose request stops arriving mid-frame for this
    /// long, returning the memory it reserved.
    pub request_stall_timeout_ms: u64,
    /// Forget an idempotent producer silent for this long
    /// (`producer.id.expiration.ms`).
    pub producer_id_expiration_ms: i64,
    pub fsync: FsyncPolicy,
    pub fsync_interval_ms: u64,
    /// How often retention runs (`log.retention.check.interval.ms`).
    pub retention_check_interval_ms: u64,
    /// Pause between log cleaner rounds (`log.cleaner.backoff.ms`).
    pub log_cleaner_backoff_ms: u64,
    /// The cleaner's disk traffic, read and written, in bytes per second
    /// (`log.cleaner.io.max.bytes.per.second`), so compaction never takes
    /// the disk from produce and fetch.
    pub log_cleaner_io_max_bytes_per_second: u64,
    /// Broker-wide defaults for topic configs, keyed by topic config name
    /// (`retention.ms = "3600000"`); reported with source STATIC_BROKER_CONFIG.
    pub topic_defaults: BTreeMap<String, String>,
    /// `group.initial.rebalance.delay.ms`; 0 suits local use.
    pub group_initial_rebalance_delay_ms: i32,
    /// `group.min.session.timeout.ms`
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`
    pub group_max_session_timeout_ms: i32,
    /// `offsets.retention.minutes`: committed offsets of groups that stay
    /// empty this long expire.
    pub offsets_retention_minutes: i64,
    /// `transaction.max.timeout.ms`: the longest transaction timeout a
    /// producer may ask for.
    pub transaction_max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: a transactional id unused this
    /// long is forgotten.
    pub transactional_id_expiration_ms: i64,
    /// How often transactions open past their timeout are aborted
    /// (`transaction.abort.timed.out.transaction.cleanup.interval.ms`).
    pub transaction_timeout_check_interval_ms: u64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            data_dir: PathBuf::from("runnel-data"),
            listeners: vec![ListenerConfig { name: "PLAINTEXT".to_string(), listen: SocketAddr::from(([127, 0, 0, 1], 9092)), advertise: None }],
            auto_create_topics: true,
            num_partitions: 1,
            socket_request_max_bytes: 100 * 1024 * 1024,
            queued_max_request_bytes: 512 * 1024 * 1024,
            connections_max_idle_ms: 600_000,
            request_stall_timeout_ms: 30_000,
            producer_id_expiration_ms: 86_400_000,
            fsync: FsyncPolicy::Always,
            fsync_interval_ms: 1000,
            retention_check_interval_ms: 300_000,
            log_cleaner_backoff_ms: 15_000,
            log_cleaner_io_max_bytes_per_second: 64 * 1024 * 1024,
            topic_defaults: BTreeMap::new(),
            group_initial_rebalance_delay_ms: 0,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            offsets_retention_minutes: 7 * 24 * 60,
            transaction_max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 7 * 24 * 3600 * 1000,
            transaction_timeout_check_interval_ms: 10_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_spec_with_advertised_address() {
        let l = ListenerConfig::parse("DOCKER=0.0.0.0:29092@broker:29092").unwrap();
        assert_eq!(l.name, "DOCKER");
        assert_eq!(l.listen.port(), 29092);
        assert_eq!(l.advertise.as_deref(), Some("broker:29092"));
        assert!(ListenerConfig::parse("nope").is_err());
        assert!(ListenerConfig::parse("A=1.2.3.4:1@host").is_err());
    }
}
