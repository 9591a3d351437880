//! `kill -9` of one of two instances of the course's windowed count, in
//! the middle of the input: with exactly-once the final counts are exact;
//! with at-least-once none is lost (some may be counted twice). The
//! instances are real processes (the `windowed_count` example) against a
//! runnel broker, each keeping local checkpoints; the restarted instance
//! starts from the killed one's checkpoints and reports how long it spent
//! restoring its stores.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use runnel_streams::serde::{Serde, StringSerde, TimeWindowedSerde, Windowed};
use runnel_streams::{TimeWindows, Window};

use crate::kafka::{all_longs, client, create_topics, start_broker};
use crate::rides;

const OUTPUT: &str = "rides-pulocation-window-count";
const PARTITIONS: i32 = 4;

/// The example binary, built beside this test by `cargo test`.
fn example() -> std::path::PathBuf {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    deps.parent().unwrap().join("examples").join("windowed_count")
}

/// A running instance of the example; killed if the test fails.
struct Instance {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Instance {
    /// Starts an instance, keeping its checkpoints in `state_dir`, and
    /// waits until it says it has started.
    fn start(bootstrap: &str, application_id: &str, exactly_once: bool, state_dir: &std::path::Path) -> Instance {
        let mut command = Command::new(example());
        command.args(["--bootstrap-server", bootstrap, "--application-id", application_id]);
        command.arg("--state-dir").arg(state_dir);
        // Quick failure detection, so the survivor takes over within seconds.
        command.args(["--property", "session.timeout.ms=6000", "--property", "heartbeat.interval.ms=500"]);
        if exactly_once {
            command.arg("--exactly-once");
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("the windowed_count example is built by cargo test");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while line.trim() != "started" {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "the instance exited before starting");
        }
        Instance { child, stdout }
    }

    /// `kill -9`.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Stops the instance with Ctrl-C and returns what it reported.
    fn stop(mut self) -> String {
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let mut report = String::new();
        let _ = self.stdout.read_to_string(&mut report);
        let _ = self.child.wait();
        report.lines().last().unwrap_or_default().to_string()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Rides as the course's producer writes them, the whole file `copies`
/// times, one every 50 ms of event time, in order.
fn input(copies: usize) -> Vec<(String, Vec<u8>, i64)> {
    let rides = rides();
    (0..copies * rides.len())
        .map(|i| {
            let ride = &rides[i % rides.len()];
            (ride["DOLocationID"].as_str().unwrap().to_string(), serde_json::to_vec(ride).unwrap(), 1_600_000_000_000 + i as i64 * 50)
        })
        .collect()
}

/// Each window's true count, keyed as the output topic keys it.
fn expected(records: &[(String, Vec<u8>, i64)]) -> BTreeMap<Vec<u8>, i64> {
    let windows = TimeWindows::of_size_and_grace(10_000, 5_000);
    let serde = TimeWindowedSerde::new(StringSerde, 10_000);
    let mut counts = BTreeMap::new();
    for (key, _, timestamp) in records {
        for window in windows.windows_for(*timestamp) {
            let windowed = Windowed { key: key.clone(), window: Window { start: window.start, end: window.end } };
            *counts.entry(serde.serialize(&windowed).unwrap()).or_insert(0) += 1;
        }
    }
    counts
}

fn produce(producer: &ThreadedProducer<DefaultProducerContext>, records: &[(String, Vec<u8>, i64)]) {
    for (key, value, timestamp) in records {
        producer.send(BaseRecord::to("rides").key(key).payload(value).timestamp(*timestamp)).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Waits until the output holds a count for every window and `done`
/// accepts them.
fn await_counts(bootstrap: &str, expected: &BTreeMap<Vec<u8>, i64>, done: impl Fn(&BTreeMap<Vec<u8>, i64>) -> bool) -> BTreeMap<Vec<u8>, i64> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let updates = all_longs(bootstrap, OUTPUT, PARTITIONS);
        let seen: BTreeMap<Vec<u8>, i64> = updates.iter().filter_map(|(key, counts)| Some((key.clone(), *counts.last()?))).collect();
        if seen.len() == expected.len() && done(&seen) {
            return seen;
        }
        if Instant::now() > deadline {
            // Counts short of what was sent first: those are losses, shown
            // with every update the window had.
            let mut wrong: Vec<(&Vec<u8>, &i64)> = expected.iter().filter(|(key, count)| seen.get(*key) != Some(count)).collect();
            wrong.sort_by_key(|(key, count)| seen.get(*key).is_some_and(|n| n >= count));
            let sample: Vec<String> = wrong
                .into_iter()
                .take(8)
                .map(|(key, count)| {
                    let start = i64::from_be_bytes(key[key.len() - 8..].try_into().unwrap());
                    format!("{}@{start}: {:?} for {count}", String::from_utf8_lossy(&key[..key.len() - 8]), updates.get(key))
                })
                .collect();
            panic!("{} of {} windows counted; {} counts differ, such as {sample:?}", seen.len(), expected.len(), differing(&seen, expected));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn differing(seen: &BTreeMap<Vec<u8>, i64>, expected: &BTreeMap<Vec<u8>, i64>) -> usize {
    expected.iter().filter(|(key, count)| seen.get(*key) != Some(count)).count()
}

/// Runs the scenario and returns the broker, still running, and what the
/// restarted instance reported.
fn kill_one_of_two(
    application_id: &str,
    exactly_once: bool,
    done: impl Fn(&BTreeMap<Vec<u8>, i64>, &BTreeMap<Vec<u8>, i64>) -> bool,
) -> (crate::kafka::Broker, String) {
    let broker = start_broker();
    create_topics(&broker.bootstrap, &[("rides", PARTITIONS), (OUTPUT, PARTITIONS)]);
    let producer: ThreadedProducer<DefaultProducerContext> = client(&broker.bootstrap).set("partitioner", "murmur2_random").create().unwrap();
    let records = input(24);
    let (first, second) = records.split_at(records.len() / 2);
    let (first_state, second_state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first_instance = Instance::start(&broker.bootstrap, application_id, exactly_once, first_state.path());
    let second_instance = Instance::start(&broker.bootstrap, application_id, exactly_once, second_state.path());
    produce(&producer, first);
    // Wait until both are at work, then kill one without warning.
    let consumer: BaseConsumer = client(&broker.bootstrap).create().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (0..PARTITIONS).map(|p| consumer.fetch_watermarks(OUTPUT, p, Duration::from_secs(10)).unwrap().1).sum::<i64>() < 500 {
        assert!(Instant::now() < deadline, "the instances never produced output");
        std::thread::sleep(Duration::from_millis(50));
    }
    second_instance.kill();
    // The restarted instance finds the killed one's checkpoints.
    let restarted = Instance::start(&broker.bootstrap, application_id, exactly_once, second_state.path());
    produce(&producer, second);
    let expected = expected(&records);
    await_counts(&broker.bootstrap, &expected, |seen| done(seen, &expected));
    first_instance.stop();
    let report = restarted.stop();
    (broker, report)
}

#[test]
fn exactly_once_counts_are_exact_after_a_kill_9() {
    let (broker, report) = kill_one_of_two("crash-eos", true, |seen, expected| seen == expected);
    let bootstrap = broker.bootstrap.clone();
    eprintln!("restarted instance: {report}");
    assert!(report.starts_with("processed="), "the restarted instance reported {report:?}");
    // Each update of each window was committed once: 1, 2, ... n.
    for (window, counts) in all_longs(&bootstrap, OUTPUT, PARTITIONS) {
        let once: Vec<i64> = (1..=counts.len() as i64).collect();
        assert_eq!(counts, once, "the updates of window {:?}", String::from_utf8_lossy(&window));
    }
}

#[test]
fn at_least_once_loses_nothing_after_a_kill_9() {
    let (_, report) = kill_one_of_two("crash-alos", false, |seen, expected| expected.iter().all(|(key, count)| seen.get(key).is_some_and(|n| n >= count)));
    eprintln!("restarted instance: {report}");
    assert!(report.starts_with("processed="), "the restarted instance reported {report:?}");
}
