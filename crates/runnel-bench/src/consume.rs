//! The consume workload: read a pre-filled topic from the beginning.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::{Amount, BenchError, BenchOptions, BenchReport};

/// Reads every partition from the beginning with `consumers` consumers
/// (partitions dealt round-robin) until the records or time run out.
pub fn consume(options: &BenchOptions) -> Result<BenchReport, BenchError> {
    let probe: BaseConsumer = options.client().set("group.id", "runnel-bench").create()?;
    let metadata = probe.fetch_metadata(Some(&options.topic), Duration::from_secs(10))?;
    let partitions: Vec<i32> = metadata.topics().first().map(|t| t.partitions().iter().map(|p| p.id()).collect()).unwrap_or_default();
    if partitions.is_empty() {
        return Err(BenchError::Setup(format!("topic {} has no partitions; produce to it first", options.topic)));
    }
    let available: i64 =
        partitions.iter().map(|&p| probe.fetch_watermarks(&options.topic, p, Duration::from_secs(10)).map(|(lo, hi)| hi - lo)).sum::<Result<i64, _>>()?;
    let target = match options.amount {
        Amount::Records(n) => n.min(available as u64),
        Amount::Duration(_) => available as u64,
    };
    let deadline = match options.amount {
        Amount::Duration(d) => Some(Instant::now() + d),
        Amount::Records(_) => None,
    };
    let consumers = options.consumers.clamp(1, partitions.len());
    let started = Instant::now();
    let threads: Vec<_> = (0..consumers)
        .map(|i| {
            let mine: Vec<i32> = partitions.iter().copied().skip(i).step_by(consumers).collect();
            let options = options.clone();
            let share = target / consumers as u64 + u64::from((i as u64) < target % consumers as u64);
            std::thread::spawn(move || read(&options, &mine, share, deadline))
        })
        .collect();
    let mut records = 0;
    let mut bytes = 0;
    let mut elapsed = Duration::ZERO;
    for thread in threads {
        let (r, b, e) = thread.join().map_err(|_| BenchError::Setup("consumer thread panicked".into()))??;
        records += r;
        bytes += b;
        elapsed = elapsed.max(e);
    }
    let _ = started;
    Ok(BenchReport::throughput("consume", records, bytes, elapsed, 0))
}

fn read(options: &BenchOptions, partitions: &[i32], target: u64, deadline: Option<Instant>) -> Result<(u64, u64, Duration), BenchError> {
    let consumer: BaseConsumer = options
        .client()
        .set("group.id", "runnel-bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for &p in partitions {
        assignment.add_partition_offset(&options.topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let started = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    while records < target && deadline.is_none_or(|d| Instant::now() < d) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                records += 1;
                bytes += message.payload_len() as u64;
            }
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
    }
    let elapsed = started.elapsed();
    // Closing a consumer can take a while; it is not part of the measurement.
    std::thread::spawn(move || drop(consumer));
    Ok((records, bytes, elapsed))
}
