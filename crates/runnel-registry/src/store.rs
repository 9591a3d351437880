//! The `_schemas` topic: where every registry event is written, and what
//! is replayed at startup. Speaks only the Kafka protocol (librdkafka), so
//! the registry runs against any Kafka-compatible cluster.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::error::RegistryError;
use crate::records;
use crate::registry::Event;

/// The topic Confluent's registry uses, one compacted partition.
pub const SCHEMAS_TOPIC: &str = "_schemas";
const TIMEOUT: Duration = Duration::from_secs(10);

/// Writes events to `_schemas`.
pub struct KafkaStore {
    producer: FutureProducer,
}

fn store_error(e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Store(e.to_string())
}

impl KafkaStore {
    /// Connects, creates `_schemas` if needed and returns every event in it.
    pub async fn open(bootstrap: &str) -> Result<(KafkaStore, Vec<Event>), RegistryError> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", bootstrap);
        let admin: AdminClient<DefaultClientContext> = config.create().map_err(store_error)?;
        let topic = NewTopic::new(SCHEMAS_TOPIC, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact");
        let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
        match admin.create_topics([&topic], &options).await.map_err(store_error)?.remove(0) {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(store_error(format!("cannot create {SCHEMAS_TOPIC}: {code}"))),
        }
        let consumer_config = {
            let mut c = config.clone();
            c.set("group.id", "runnel-registry").set("enable.auto.commit", "false");
            c
        };
        let events = tokio::task::spawn_blocking(move || replay(consumer_config)).await.map_err(store_error)??;
        let producer: FutureProducer = config.set("acks", "all").set("linger.ms", "0").create().map_err(store_error)?;
        Ok((KafkaStore { producer }, events))
    }

    /// Appends events in order and waits until they are acknowledged.
    pub async fn append(&self, events: &[Event]) -> Result<(), RegistryError> {
        for event in events {
            let (key, value) = records::encode(event);
            let mut record = FutureRecord::<String, String>::to(SCHEMAS_TOPIC).partition(0).key(&key);
            if let Some(value) = &value {
                record = record.payload(value);
            }
            self.producer.send(record, TIMEOUT).await.map_err(|(e, _)| store_error(e))?;
        }
        Ok(())
    }
}

fn replay(config: ClientConfig) -> Result<Vec<Event>, RegistryError> {
    let consumer: BaseConsumer = config.create().map_err(store_error)?;
    let (low, high) = consumer.fetch_watermarks(SCHEMAS_TOPIC, 0, TIMEOUT).map_err(store_error)?;
    let mut events = Vec::new();
    if high <= low {
        return Ok(events);
    }
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(SCHEMAS_TOPIC, 0, Offset::Offset(low)).map_err(store_error)?;
    consumer.assign(&assignment).map_err(store_error)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut next = low;
    while next < high {
        if std::time::Instant::now() > deadline {
            return Err(store_error(format!("replaying {SCHEMAS_TOPIC} stalled at offset {next} of {high}")));
        }
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.map_err(store_error)?;
            next = message.offset() + 1;
            if let Some(event) = message.key().and_then(|k| records::decode(k, message.payload())) {
                events.push(event);
            }
        }
    }
    Ok(events)
}
