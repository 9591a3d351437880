//! The command topic: every statement that changed the catalog, in order,
//! as ksqlDB keeps them in `_confluent-ksql-<service id>_command_topic`.
//! A server replays it at start-up, so streams, tables and persistent
//! queries outlive restarts and appear on every server of the service.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::executor::block_on;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use super::ServiceError;

const TIMEOUT: Duration = Duration::from_secs(10);

/// One statement that changed the catalog, with the properties it ran
/// under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// The statement's text.
    pub statement: String,
    /// The request's `streamsProperties` (such as `auto.offset.reset`).
    #[serde(default)]
    pub properties: std::collections::BTreeMap<String, String>,
}

/// What the command topic held at start-up.
pub struct Replayed {
    /// Every command, oldest first, with its offset (its sequence number).
    pub commands: Vec<(i64, Command)>,
    /// The offset after them, where following the topic starts.
    pub end: i64,
}

/// The command topic of one service, created with its first command.
pub struct CommandTopic {
    topic: String,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    created: AtomicBool,
}

impl CommandTopic {
    /// The topic's name for `service_id`, as ksqlDB names it.
    pub fn name(service_id: &str) -> String {
        format!("_confluent-ksql-{service_id}_command_topic")
    }

    /// The topic and what it holds (nothing if it does not exist yet).
    pub fn open(client: &ClientConfig, service_id: &str) -> Result<(CommandTopic, Replayed), ServiceError> {
        let topic = CommandTopic::name(service_id);
        let probe: BaseConsumer = client.create()?;
        let metadata = probe.fetch_metadata(Some(&topic), TIMEOUT)?;
        let exists = metadata.topics().first().is_some_and(|t| t.error().is_none() && !t.partitions().is_empty());
        let (commands, end) = if exists { replay(client, &topic)? } else { (Vec::new(), 0) };
        let producer: FutureProducer = client.clone().set("acks", "all").set("enable.idempotence", "true").set("linger.ms", "0").create()?;
        Ok((CommandTopic { topic, producer, admin: client.create()?, created: AtomicBool::new(exists) }, Replayed { commands, end }))
    }

    /// Creates the topic, one partition kept forever, unless it exists.
    fn create(&self) -> Result<(), ServiceError> {
        if self.created.load(Ordering::Relaxed) {
            return Ok(());
        }
        let new = NewTopic::new(&self.topic, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "delete").set("retention.ms", "-1");
        match block_on(self.admin.create_topics([&new], &AdminOptions::new().operation_timeout(Some(TIMEOUT))))?.remove(0) {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(ServiceError::Kafka(format!("cannot create the command topic {}: {code}", self.topic))),
        }
        self.created.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Appends a command and waits until it is acknowledged; returns its
    /// sequence number.
    pub fn append(&self, key: &str, command: &Command) -> Result<i64, ServiceError> {
        self.create()?;
        let value = serde_json::to_vec(command).expect("a command is JSON");
        let record = FutureRecord::to(&self.topic).partition(0).key(key).payload(&value);
        let failed = |e: String| ServiceError::Kafka(format!("writing the command topic: {e}"));
        let delivery = self.producer.send_result(record).map_err(|(e, _)| failed(e.to_string()))?;
        match block_on(delivery) {
            Ok(Ok(delivery)) => Ok(delivery.offset),
            Ok(Err((e, _))) => Err(failed(e.to_string())),
            Err(_) => Err(failed("the producer stopped".into())),
        }
    }
}

/// Every command in the topic, read up to its end when called, and that
/// end.
fn replay(client: &ClientConfig, topic: &str) -> Result<(Vec<(i64, Command)>, i64), ServiceError> {
    let consumer: BaseConsumer = client.clone().set("group.id", format!("{topic}-replay")).set("enable.auto.commit", "false").create()?;
    let (low, high) = consumer.fetch_watermarks(topic, 0, TIMEOUT)?;
    let mut commands = Vec::new();
    if high <= low {
        return Ok((commands, high));
    }
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Offset(low))?;
    consumer.assign(&assignment)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut next = low;
    while next < high {
        if std::time::Instant::now() > deadline {
            return Err(ServiceError::Kafka(format!("replaying {topic} stalled at offset {next} of {high}")));
        }
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message?;
            next = message.offset() + 1;
            if let Some(command) = decode(&message) {
                commands.push((message.offset(), command));
            }
        }
    }
    Ok((commands, high))
}

/// A command record's command; `None` (and a warning) if it is not one.
pub fn decode<M: Message>(message: &M) -> Option<Command> {
    match message.payload().map(serde_json::from_slice::<Command>) {
        Some(Ok(command)) => Some(command),
        _ => {
            tracing::warn!(offset = message.offset(), "skipping an unreadable command");
            None
        }
    }
}

/// Follows the topic from `from`, handing each command after it to
/// `apply` with its offset, until `stop` is set. The topic may not exist
/// yet: it is picked up once another server creates it.
pub fn follow(client: &ClientConfig, topic: &str, from: i64, stop: &AtomicBool, mut apply: impl FnMut(i64, Command)) -> Result<(), ServiceError> {
    let consumer: BaseConsumer = client
        .clone()
        .set("group.id", format!("{topic}-follower"))
        .set("enable.auto.commit", "false")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, if from > 0 { Offset::Offset(from) } else { Offset::Beginning })?;
    consumer.assign(&assignment)?;
    while !stop.load(Ordering::Relaxed) {
        // Errors (the topic is missing until the first command) pass.
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            if let Some(command) = decode(&message) {
                apply(message.offset(), command);
            }
        }
    }
    Ok(())
}
