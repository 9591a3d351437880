//! runnel-broker: the Kafka wire-protocol broker.
//!
//! Layering, outermost first: `server` (listeners, one task per
//! connection) → `frame` (length-prefixed frames) → `request` (header,
//! version negotiation, dispatch) → `handlers` (one file per Kafka API) →
//! `state` (topics, partitions, producer state) → `runnel_log` (storage).
//! Errors become Kafka error codes only in `error`.

pub mod broker_config;
pub mod config;
pub mod error;
pub mod frame;
pub mod groups;
pub mod handlers;
pub mod log_limit;
pub mod metrics;
pub mod request;
pub mod resources;
pub mod server;
pub mod state;
pub mod topic_config;
pub mod txns;

pub use config::{BrokerConfig, FsyncPolicy, ListenerConfig};
pub use server::{bind, run, Listener};
pub use state::BrokerState;
