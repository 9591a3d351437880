//! End-to-end latency: produce at a fixed rate, consume, and measure from
//! each record's *scheduled* send time to its receipt, so a stalled
//! broker cannot hide behind a stalled producer (no coordinated omission).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::{ensure_topic, payload, Amount, BenchError, BenchOptions, BenchReport};

/// Runs the latency workload; `options.rate` is required.
pub fn e2e(options: &BenchOptions) -> Result<BenchReport, BenchError> {
    let rate = options.rate.ok_or_else(|| BenchError::Setup("e2e needs --rate (records per second)".into()))?;
    ensure_topic(options)?;
    let total = match options.amount {
        Amount::Records(n) => n,
        Amount::Duration(d) => (d.as_secs_f64() * rate) as u64,
    };
    let epoch = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let consumer: BaseConsumer =
        options.client().set("group.id", "runnel-bench-e2e").set("enable.auto.commit", "false").set("fetch.wait.max.ms", "100").create()?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..options.partitions {
        let (_, high) = consumer.fetch_watermarks(&options.topic, p, Duration::from_secs(10))?;
        assignment.add_partition_offset(&options.topic, p, Offset::Offset(high))?;
    }
    consumer.assign(&assignment)?;
    let reader_done = done.clone();
    let reader = std::thread::spawn(move || -> Result<Histogram<u64>, BenchError> {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| BenchError::Setup(e.to_string()))?;
        let mut received = 0;
        let deadline_after_done = Duration::from_secs(10);
        let mut done_at = None;
        while received < total {
            if reader_done.load(Ordering::Relaxed) {
                let at = *done_at.get_or_insert_with(Instant::now);
                if at.elapsed() > deadline_after_done {
                    break;
                }
            }
            if let Some(message) = consumer.poll(Duration::from_millis(50)) {
                let message = message?;
                let Some(value) = message.payload() else { continue };
                let scheduled_us = u64::from_be_bytes(value[..8].try_into().expect("8-byte stamp"));
                let now_us = epoch.elapsed().as_micros() as u64;
                histogram.saturating_record(now_us.saturating_sub(scheduled_us).max(1));
                received += 1;
            }
        }
        std::thread::spawn(move || drop(consumer));
        Ok(histogram)
    });

    let producer: ThreadedProducer<DefaultProducerContext> = options.producer_config().create()?;
    let started = Instant::now();
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let scheduled_us = due.duration_since(epoch).as_micros() as u64;
        let value = payload(options.record_size, scheduled_us);
        let mut record = BaseRecord::<(), [u8]>::to(&options.topic).payload(&value).partition((i % options.partitions as u64) as i32);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30))?;
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let histogram = reader.join().map_err(|_| BenchError::Setup("consumer thread panicked".into()))??;
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let received = histogram.len();
    let mut report = BenchReport::throughput("e2e", received, received * options.record_size as u64, elapsed, total - received);
    report.p50_ms = Some(ms(0.5));
    report.p99_ms = Some(ms(0.99));
    report.p999_ms = Some(ms(0.999));
    report.max_ms = Some(histogram.max() as f64 / 1000.0);
    Ok(report)
}
