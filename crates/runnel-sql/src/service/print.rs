//! `PRINT topic [FROM BEGINNING] [INTERVAL n] [LIMIT n]`: a topic's
//! records as text lines, as ksqlDB prints them: the formats it guessed,
//! then `rowtime: ..., key: ..., value: ..., partition: n` per record.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::entities::codes;
use super::{Refusal, SqlService};

/// How many lines wait for a slow client.
const LINE_BUFFER: usize = 1_024;

/// A running `PRINT`. Stop it once its response ends.
pub struct Printing {
    /// Its lines, each ending with a newline.
    pub lines: mpsc::Receiver<String>,
    stop: Arc<AtomicBool>,
    reader: JoinHandle<()>,
}

impl Printing {
    /// Stops the reader and waits for it.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.lines);
        let _ = self.reader.join();
    }
}

/// How `PRINT` shows a key or value: text if it is UTF-8, else hex; and
/// the format it guesses from the first one.
fn shown(bytes: Option<&[u8]>) -> (String, &'static str) {
    match bytes {
        None => ("<null>".to_string(), "¯\\_(ツ)_/¯"),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) if serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v.is_object()) => (text.to_string(), "JSON"),
            Ok(text) => (text.to_string(), "KAFKA_STRING"),
            Err(_) => (bytes.iter().map(|b| format!("{b:02x}")).collect(), "HEX"),
        },
    }
}

impl SqlService {
    /// Starts printing `topic`.
    pub fn print(&self, text: &str, topic: &str, from_beginning: bool, interval: Option<u64>, limit: Option<u64>) -> Result<Printing, Refusal> {
        let refuse = |message: String| Refusal::new(codes::BAD_STATEMENT, message, Some(text.trim()));
        let missing =
            || refuse(format!("Could not find topic '{topic}', or the KSQL user does not have permissions to list the topic. Topic names are case-sensitive."));
        // An unquoted name comes upper-cased: a topic that differs only in
        // case is the one meant, as long as it is the only one.
        let topic = match self.cluster.partitions(topic).map_err(|e| refuse(e.to_string()))? {
            Some(_) => topic.to_string(),
            None => {
                let topics = self.cluster.topics(true).map_err(|e| refuse(e.to_string()))?;
                let mut alike = topics.into_iter().filter(|t| t.name.eq_ignore_ascii_case(topic));
                match (alike.next(), alike.next()) {
                    (Some(only), None) => only.name,
                    _ => return Err(missing()),
                }
            }
        };
        let topic = topic.as_str();
        let partitions = self.cluster.partitions(topic).map_err(|e| refuse(e.to_string()))?.ok_or_else(missing)?;
        let consumer: BaseConsumer = self
            .config
            .client()
            .set("group.id", format!("_confluent-ksql-{}print", self.config.service_id))
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| refuse(e.to_string()))?;
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            assignment
                .add_partition_offset(topic, partition, if from_beginning { Offset::Beginning } else { Offset::End })
                .map_err(|e| refuse(e.to_string()))?;
        }
        consumer.assign(&assignment).map_err(|e| refuse(e.to_string()))?;
        let (sender, lines) = mpsc::channel(LINE_BUFFER);
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let stop = stop.clone();
            let every = interval.unwrap_or(1).max(1);
            std::thread::Builder::new()
                .name("sql-print".into())
                .spawn(move || {
                    let (mut seen, mut printed) = (0u64, 0u64);
                    while !stop.load(Ordering::Relaxed) && limit.is_none_or(|limit| printed < limit) {
                        let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else { continue };
                        seen += 1;
                        if (seen - 1) % every != 0 {
                            continue;
                        }
                        let (key, key_format) = shown(message.key());
                        let (value, value_format) = shown(message.payload());
                        let mut line = String::new();
                        if printed == 0 {
                            line.push_str(&format!("Key format: {key_format}\nValue format: {value_format}\n"));
                        }
                        let rowtime = message.timestamp().to_millis().map_or("N/A".to_string(), |ms| {
                            crate::time::format_with_pattern(ms, "yyyy/MM/dd HH:mm:ss.SSS").map(|t| format!("{t} Z")).unwrap_or_default()
                        });
                        line.push_str(&format!("rowtime: {rowtime}, key: {key}, value: {value}, partition: {}\n", message.partition()));
                        if sender.blocking_send(line).is_err() {
                            break;
                        }
                        printed += 1;
                    }
                })
                .map_err(|e| refuse(e.to_string()))?
        };
        Ok(Printing { lines, stop, reader })
    }
}
