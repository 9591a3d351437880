//! What the service asks of the Kafka cluster besides running queries:
//! topic metadata, creating and deleting topics, and writing the records
//! of `INSERT ... VALUES`. Only the Kafka protocol, so the service runs
//! against runnel or any Kafka cluster. Calls block (statements run on
//! blocking threads); librdkafka's own threads complete the futures.

use std::time::Duration;

use futures::executor::block_on;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use super::ServiceError;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A client of the cluster for metadata, admin and inserts.
pub struct Cluster {
    admin: AdminClient<DefaultClientContext>,
    metadata: BaseConsumer,
    producer: FutureProducer,
}

/// A topic as `SHOW TOPICS` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicInfo {
    /// Its name.
    pub name: String,
    /// Each partition's replica count.
    pub replicas: Vec<usize>,
}

impl Cluster {
    /// Clients of the cluster `client` points at.
    pub fn connect(client: &ClientConfig) -> Result<Cluster, ServiceError> {
        Ok(Cluster {
            admin: client.create()?,
            metadata: client.create()?,
            producer: client.clone().set("acks", "all").set("linger.ms", "0").set("partitioner", "murmur2_random").create()?,
        })
    }

    /// The cluster's id, as `/info` reports it.
    pub fn cluster_id(&self) -> Option<String> {
        self.metadata.client().fetch_cluster_id(TIMEOUT)
    }

    /// How many partitions `topic` has; `None` if it does not exist.
    pub fn partitions(&self, topic: &str) -> Result<Option<i32>, ServiceError> {
        let metadata = self.metadata.fetch_metadata(Some(topic), TIMEOUT)?;
        Ok(metadata.topics().first().filter(|t| t.error().is_none() && !t.partitions().is_empty()).map(|t| t.partitions().len() as i32))
    }

    /// The cluster's topics, without internal ones unless `all`.
    pub fn topics(&self, all: bool) -> Result<Vec<TopicInfo>, ServiceError> {
        let metadata = self.metadata.fetch_metadata(None, TIMEOUT)?;
        let mut topics: Vec<TopicInfo> = metadata
            .topics()
            .iter()
            .filter(|t| all || !(t.name().starts_with('_') || t.name().starts_with("_confluent")))
            .map(|t| TopicInfo { name: t.name().to_string(), replicas: t.partitions().iter().map(|p| p.replicas().len()).collect() })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Creates `topic` unless it exists.
    pub fn create_topic(&self, topic: &str, partitions: i32, configs: &[(&str, &str)]) -> Result<(), ServiceError> {
        let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        for (name, value) in configs {
            new = new.set(name, value);
        }
        match block_on(self.admin.create_topics([&new], &AdminOptions::new().operation_timeout(Some(TIMEOUT))))?.remove(0) {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => Ok(()),
            Err((_, code)) => Err(ServiceError::Kafka(format!("cannot create topic {topic}: {code}"))),
        }
    }

    /// Deletes topics, ignoring those already gone.
    pub fn delete_topics(&self, topics: &[String]) -> Result<(), ServiceError> {
        if topics.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        for result in block_on(self.admin.delete_topics(&names, &AdminOptions::new().operation_timeout(Some(TIMEOUT))))? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((topic, code)) => return Err(ServiceError::Kafka(format!("cannot delete topic {topic}: {code}"))),
            }
        }
        Ok(())
    }

    /// Deletes the internal topics of a stopped streams application.
    pub fn delete_internal_topics(&self, application_id: &str) -> Result<(), ServiceError> {
        let prefix = format!("{application_id}-");
        let internal: Vec<String> = self.topics(true)?.into_iter().map(|t| t.name).filter(|name| name.starts_with(&prefix)).collect();
        self.delete_topics(&internal)
    }

    /// Deletes a consumer group, if it exists.
    pub fn delete_group(&self, group: &str) -> Result<(), ServiceError> {
        for result in block_on(self.admin.delete_groups(&[group], &AdminOptions::new().operation_timeout(Some(TIMEOUT))))? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::GroupIdNotFound)) => {}
                Err((group, code)) => return Err(ServiceError::Kafka(format!("cannot delete group {group}: {code}"))),
            }
        }
        Ok(())
    }

    /// Writes one record and waits until it is acknowledged.
    pub fn produce(&self, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>, timestamp: i64) -> Result<(), ServiceError> {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).timestamp(timestamp);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(value) = value {
            record = record.payload(value);
        }
        let delivery = self.producer.send_result(record).map_err(|(e, _)| ServiceError::Kafka(format!("writing to {topic}: {e}")))?;
        match block_on(delivery) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(ServiceError::Kafka(format!("writing to {topic}: {e}"))),
            Err(_) => Err(ServiceError::Kafka(format!("writing to {topic}: the producer stopped"))),
        }
    }
}
