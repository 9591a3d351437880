//! The offset-commit workload: `consumers` consumer groups, each
//! committing an offset for every partition of the topic over and over,
//! for the group coordinator's write path and, after a restart, the
//! replay of `__consumer_offsets`.

use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::{ensure_topic, Amount, BenchError, BenchOptions, BenchReport};

/// Commits asynchronously in runs of this many, then waits for them.
const PIPELINE: u64 = 100;

/// Commits `records` offsets in all (one per partition per commit),
/// spread evenly over the groups.
pub fn commits(options: &BenchOptions) -> Result<BenchReport, BenchError> {
    ensure_topic(options)?;
    let Amount::Records(records) = options.amount else {
        return Err(BenchError::Setup("the commit workload takes --records".into()));
    };
    let groups = options.consumers as u64;
    let per_group = records.div_ceil(groups * options.partitions as u64);
    let started = Instant::now();
    let threads: Vec<_> = (0..groups)
        .map(|group| {
            let options = options.clone();
            std::thread::spawn(move || commit_as_group(&options, group, per_group))
        })
        .collect();
    let mut committed = 0;
    for thread in threads {
        committed += thread.join().map_err(|_| BenchError::Setup("committing thread panicked".into()))??;
    }
    Ok(BenchReport::throughput("commit", committed, 0, started.elapsed(), 0))
}

fn commit_as_group(options: &BenchOptions, group: u64, commits: u64) -> Result<u64, BenchError> {
    let consumer: BaseConsumer = options.client().set("group.id", format!("runnel-bench-{group}")).set("enable.auto.commit", "false").create()?;
    for n in 1..=commits {
        let mut offsets = TopicPartitionList::new();
        for partition in 0..options.partitions {
            offsets.add_partition_offset(&options.topic, partition, Offset::Offset(n as i64))?;
        }
        let mode = if n % PIPELINE == 0 || n == commits { CommitMode::Sync } else { CommitMode::Async };
        consumer.commit(&offsets, mode)?;
        let _ = consumer.poll(std::time::Duration::ZERO);
    }
    Ok(commits * options.partitions as u64)
}
