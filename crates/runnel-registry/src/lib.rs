//! runnel-registry: a Schema Registry with Confluent's REST API.
//!
//! The registry is a Kafka client: its state is a pure state machine
//! (`registry`) rebuilt from the `_schemas` topic at startup, and every
//! change is written there before it is applied. It therefore runs
//! against runnel's broker or any other Kafka cluster.

pub mod compat;
mod error;
mod http;
mod records;
pub mod registry;
pub mod schema;
mod store;

use std::sync::RwLock;

pub use error::RegistryError;
pub use http::router;
pub use store::SCHEMAS_TOPIC;

use registry::{Event, RegistryState};
use store::KafkaStore;

/// A running registry: state plus the topic that makes it durable.
pub struct Registry {
    state: RwLock<RegistryState>,
    store: KafkaStore,
    /// Serialises writers so each computes ids and versions from the
    /// state its predecessor left.
    writer: tokio::sync::Mutex<()>,
}

impl Registry {
    /// Connects to the cluster at `bootstrap` and replays `_schemas`.
    pub async fn open(bootstrap: &str) -> Result<Registry, RegistryError> {
        let (store, events) = KafkaStore::open(bootstrap).await?;
        let mut state = RegistryState::default();
        let count = events.len();
        for event in events {
            state.apply(event);
        }
        tracing::info!(records = count, "schema registry state replayed");
        Ok(Registry { state: RwLock::new(state), store, writer: tokio::sync::Mutex::new(()) })
    }

    /// A snapshot of the state for reads.
    pub fn read<R>(&self, f: impl FnOnce(&RegistryState) -> R) -> R {
        f(&self.state.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs a command: `decide` inspects the state and returns events and
    /// an answer; the events are stored, then applied.
    pub async fn write<R>(&self, decide: impl FnOnce(&RegistryState) -> Result<(Vec<Event>, R), RegistryError>) -> Result<R, RegistryError> {
        let _writer = self.writer.lock().await;
        let (events, answer) = self.read(decide)?;
        self.store.append(&events).await?;
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        for event in events {
            state.apply(event);
        }
        Ok(answer)
    }
}
