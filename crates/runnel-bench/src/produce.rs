//! The produce workload: `producers` threads, each with its own librdkafka
//! producer, sending fixed-size records as fast as allowed, optionally in
//! transactions committed at a fixed interval.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::{ensure_topic, payload, Amount, BenchError, BenchOptions, BenchReport};

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

struct CountingContext(Arc<Counters>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                self.0.delivered.fetch_add(1, Ordering::Relaxed);
                self.0.bytes.fetch_add(message.payload_len() as u64, Ordering::Relaxed);
            }
            Err(_) => {
                self.0.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Runs the produce workload and reports acknowledged throughput.
pub fn produce(options: &BenchOptions) -> Result<BenchReport, BenchError> {
    ensure_topic(options)?;
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let per_producer = match options.amount {
        Amount::Records(n) => Some(n.div_ceil(options.producers as u64)),
        Amount::Duration(_) => None,
    };
    let deadline = match options.amount {
        Amount::Duration(d) => Some(started + d),
        Amount::Records(_) => None,
    };
    let threads: Vec<_> = (0..options.producers)
        .map(|id| {
            let options = options.clone();
            let counters = counters.clone();
            std::thread::spawn(move || run_producer(&options, id, per_producer, deadline, counters))
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| BenchError::Setup("producer thread panicked".into()))??;
    }
    let elapsed = started.elapsed();
    Ok(BenchReport::throughput(
        "produce",
        counters.delivered.load(Ordering::Relaxed),
        counters.bytes.load(Ordering::Relaxed),
        elapsed,
        counters.errors.load(Ordering::Relaxed),
    ))
}

fn run_producer(options: &BenchOptions, id: usize, records: Option<u64>, deadline: Option<Instant>, counters: Arc<Counters>) -> Result<(), BenchError> {
    let mut config = options.producer_config();
    if options.transaction_ms.is_some() {
        config.set("transactional.id", format!("runnel-bench-{}-{id}", options.topic));
    }
    let producer: ThreadedProducer<CountingContext> = config.create_with_context(CountingContext(counters))?;
    let transaction_every = options.transaction_ms.map(Duration::from_millis);
    let mut transaction_started = Instant::now();
    if transaction_every.is_some() {
        producer.init_transactions(TRANSACTION_TIMEOUT)?;
        producer.begin_transaction()?;
    }
    let value = payload(options.record_size, 0);
    let rate_per_producer = options.rate.map(|r| r / options.producers as f64);
    let started = Instant::now();
    let mut sent = 0u64;
    loop {
        if records.is_some_and(|n| sent >= n) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if transaction_every.is_some_and(|every| transaction_started.elapsed() >= every) {
            producer.commit_transaction(TRANSACTION_TIMEOUT)?;
            producer.begin_transaction()?;
            transaction_started = Instant::now();
        }
        if let Some(rate) = rate_per_producer {
            let due = started + Duration::from_secs_f64(sent as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let key = format!("{id}-{}", sent % 1024);
        let mut record = BaseRecord::<str, [u8]>::to(&options.topic).payload(&value);
        if options.keyed {
            record = record.key(&key);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        sent += 1;
    }
    if transaction_every.is_some() {
        producer.commit_transaction(TRANSACTION_TIMEOUT)?;
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(())
}

/// How long transactional calls may take before the run fails.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
