//! runnel-cli: the `runnel` subcommands that act as Kafka clients: topic,
//! produce, consume, group and cluster; and the clients of runnel's HTTP
//! services: schema and the SQL shell.
//!
//! They use librdkafka (the `rdkafka` crate), never broker internals, so
//! they work unchanged against runnel, Apache Kafka or Redpanda.

pub mod cluster;
pub mod consume;
pub mod group;
mod output;
pub mod produce;
pub mod protobuf;
pub mod registry_client;
pub mod schema;
pub mod sql;
pub mod topic;

use std::time::Duration;

use clap::Args;
use rdkafka::ClientConfig;

/// Connection options every client command takes.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Kafka bootstrap address.
    #[arg(long, short = 'b', env = "RUNNEL_BROKERS", default_value = "localhost:9092", global = true)]
    pub bootstrap_server: String,
    /// Extra librdkafka client property, KEY=VALUE; repeatable.
    #[arg(short = 'X', value_name = "KEY=VALUE", global = true)]
    pub properties: Vec<String>,
    /// Output format: human-readable tables (the default) or JSON for
    /// scripts; `consume` also takes jsonl, one object per record.
    #[arg(long, value_enum, global = true)]
    pub output: Option<OutputFormat>,
    /// Short for `--output json`.
    #[arg(long, global = true)]
    pub json: bool,
}

/// What `--output` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Jsonl,
}

impl ClientArgs {
    /// True when the user asked for machine-readable output.
    pub(crate) fn wants_json(&self) -> bool {
        self.json || matches!(self.output, Some(OutputFormat::Json | OutputFormat::Jsonl))
    }
}

/// Why a command failed; the binary prints it and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("broker {0} unreachable: is `runnel serve` running? ({1})")]
    Unreachable(String, rdkafka::error::KafkaError),
    #[error("{0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Refused(String),
}

/// Timeout for metadata and admin calls.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

impl ClientArgs {
    pub(crate) fn config(&self) -> Result<ClientConfig, CliError> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_server).set("log_level", "3");
        for property in &self.properties {
            let (k, v) = property.split_once('=').ok_or_else(|| CliError::Usage(format!("-X {property}: expected KEY=VALUE")))?;
            config.set(k, v);
        }
        Ok(config)
    }
}
