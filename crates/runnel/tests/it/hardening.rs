//! The broker under pressure: crash loops with idempotent producers,
//! hostile clients, a full disk, damaged segments and many partitions.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::support::{client, read_partition, Serve};

/// A port free right now, for a broker that must keep its address across
/// restarts so that producers reconnect to it.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_loops_with_small_segments_and_idempotent_producers_duplicate_nothing() {
    const ITERATIONS: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let args = ["--kafka-listen", listen.as_str(), "--topic-default", "internal.segment.bytes=2048"];
    let mut serve = Serve::start(dir.path(), &args, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    let mut writers = Vec::new();
    for writer in 0..3 {
        // One producer (and producer id) per writer, as three applications.
        let producer: FutureProducer = client(
            &listen,
            &[("acks", "all"), ("enable.idempotence", "true"), ("linger.ms", "2"), ("message.timeout.ms", "120000"), ("reconnect.backoff.max.ms", "200")],
        )
        .create()
        .unwrap();
        let (stop, acked) = (stop.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            let mut sends = std::collections::VecDeque::new();
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let value = format!("p{writer}-{i}");
                let producer = producer.clone();
                sends.push_back(tokio::spawn(async move {
                    let delivery = producer.send(FutureRecord::<(), _>::to("crashloop").partition(0).payload(&value), Duration::from_secs(120)).await;
                    (value, delivery.map(|d| d.offset).map_err(|(e, _)| e.to_string()))
                }));
                if sends.len() >= 200 {
                    let (value, result) = sends.pop_front().expect("non-empty").await.unwrap();
                    acked.lock().unwrap().insert(value, result.expect("an idempotent producer with a long timeout delivers everything"));
                }
            }
            for send in sends {
                let (value, result) = send.await.unwrap();
                acked.lock().unwrap().insert(value, result.expect("an idempotent producer with a long timeout delivers everything"));
            }
        }));
    }
    for iteration in 0..ITERATIONS {
        let target = (iteration + 1) * 1500;
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked.lock().unwrap().len() < target {
            assert!(Instant::now() < deadline, "iteration {iteration}: producers made no progress");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        serve.kill_9();
        serve = Serve::start(dir.path(), &args, &[]);
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let bootstrap = serve.bootstrap();
    let records = tokio::task::spawn_blocking(move || read_partition(&bootstrap, "crashloop")).await.unwrap();
    let segments =
        std::fs::read_dir(dir.path().join("crashloop-0")).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "log")).count();
    assert!(segments > 5, "small segments rolled often ({segments})");
    let mut copies: HashMap<&str, Vec<i64>> = HashMap::new();
    for (offset, value) in &records {
        copies.entry(value).or_default().push(*offset);
    }
    let duplicated: Vec<_> = copies.iter().filter(|(_, offsets)| offsets.len() > 1).collect();
    assert!(duplicated.is_empty(), "{} values were written more than once, e.g. {:?}", duplicated.len(), duplicated.first());
    for (value, offset) in &acked {
        assert_eq!(copies.get(value.as_str()), Some(&vec![*offset]), "acknowledged {value} is present once, at its acknowledged offset");
    }
}

#[test]
fn half_sent_huge_frames_cannot_exhaust_memory() {
    const BUDGET: u64 = 16 << 20;
    const CONNECTIONS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let budget = BUDGET.to_string();
    let serve =
        Serve::start(dir.path(), &["--queued-max-request-bytes", &budget, "--socket-request-max-bytes", &budget, "--request-stall-timeout-ms", "3000"], &[]);
    let start_rss = serve.rss_bytes();
    let addr = serve.bootstrap();
    // 20 connections each declare a 10 MiB request and send half of it:
    // 100 MiB held if the broker buffered them all, which loopback
    // delivers well within the deadline when nothing pushes back.
    let declared: usize = 10 << 20;
    let chunk = vec![0u8; 256 << 10];
    let mut sockets = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut socket = TcpStream::connect(&addr).unwrap();
        socket.set_write_timeout(Some(Duration::from_millis(20))).unwrap();
        socket.write_all(&(declared as i32).to_be_bytes()).unwrap();
        sockets.push(socket);
    }
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut sent = vec![0usize; sockets.len()];
    while Instant::now() < deadline && sent.iter().any(|s| *s < declared / 2) {
        for (socket, sent) in sockets.iter_mut().zip(sent.iter_mut()) {
            if *sent < declared / 2 {
                if let Ok(n) = socket.write(&chunk) {
                    *sent += n;
                }
            }
        }
        peak = peak.max(serve.rss_bytes());
    }
    std::thread::sleep(Duration::from_millis(300));
    peak = peak.max(serve.rss_bytes());
    let total_sent: usize = sent.iter().sum();
    eprintln!("sent {} MiB; broker RSS {} MiB at start, {} MiB at peak", total_sent >> 20, start_rss >> 20, peak >> 20);
    assert!(peak < start_rss + BUDGET + (24 << 20), "RSS peaked at {} MiB with {} MiB sent (start {} MiB)", peak >> 20, total_sent >> 20, start_rss >> 20);
    // Stalled frames are dropped after the stall timeout and their
    // memory is returned: a normal client is then served.
    drop(sockets);
    let producer: rdkafka::producer::BaseProducer = client(&addr, &[]).create().unwrap();
    producer.send(rdkafka::producer::BaseRecord::<(), _>::to("after-attack").payload("ok")).unwrap();
    assert_eq!(rdkafka::producer::Producer::flush(&producer, Duration::from_secs(15)).map_err(|e| e.to_string()), Ok(()));
}

#[test]
fn idle_connections_and_stalled_requests_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &["--connections-max-idle-ms", "500", "--request-stall-timeout-ms", "500"], &[]);
    let started = Instant::now();
    let mut idle = TcpStream::connect(serve.bootstrap()).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(idle.read(&mut [0u8; 1]).unwrap(), 0, "the broker closed the idle connection");
    assert!(started.elapsed() >= Duration::from_millis(450), "not before connections.max.idle.ms");
    let mut stalled = TcpStream::connect(serve.bootstrap()).unwrap();
    stalled.write_all(&[0, 0, 1, 0, 0, 18]).unwrap();
    stalled.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(stalled.read(&mut [0u8; 1]).unwrap(), 0, "the broker closed the stalled request");
    serve.wait_for_log("request stopped arriving mid-frame", Duration::from_secs(5));
}

/// Mounts a tmpfs of `size` at `dir` (the test runs as root, or with
/// passwordless sudo, as the test command does).
struct Tmpfs<'a>(&'a Path);

impl<'a> Tmpfs<'a> {
    fn mount(dir: &'a Path, size: &str) -> Tmpfs<'a> {
        let mut command = if running_as_root() { std::process::Command::new("mount") } else { sudo("mount") };
        let status = command.args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir).status().unwrap();
        assert!(status.success(), "mounting a tmpfs needs root or passwordless sudo");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let mut command = if running_as_root() { std::process::Command::new("umount") } else { sudo("umount") };
        let _ = command.arg("-l").arg(self.0).status();
    }
}

fn sudo(program: &str) -> std::process::Command {
    let mut command = std::process::Command::new("sudo");
    command.args(["-n", program]);
    command
}

fn running_as_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Fills the filesystem at `dir` until writes fail; returns the filler.
fn fill_disk(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    while file.write_all(&block[..512]).is_ok() {}
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_is_logged_survives_a_restart_and_loses_nothing() {
    let mount = tempfile::tempdir().unwrap();
    let _tmpfs = Tmpfs::mount(mount.path(), "24m");
    let data = mount.path().join("data");
    let serve = Serve::start(&data, &[], &[]);
    let producer: FutureProducer = client(&serve.bootstrap(), &[("acks", "all"), ("message.timeout.ms", "3000")]).create().unwrap();
    for i in 0..20 {
        producer.send(FutureRecord::<(), _>::to("full").payload(&format!("before-{i}")), Duration::from_secs(5)).await.unwrap();
    }
    let filler = fill_disk(mount.path());
    let refused = producer.send(FutureRecord::<(), _>::to("full").payload(&"x".repeat(100_000)), Duration::from_secs(5)).await;
    assert!(refused.is_err(), "a produce to a full disk is refused");
    let line = serve.wait_for_log("storage error", Duration::from_secs(5));
    assert!(line.contains("full-0") && line.contains("No space left on device"), "{line}");

    // A topic that cannot be created on the full disk leaves nothing behind.
    let admin: AdminClient<DefaultClientContext> = client(&serve.bootstrap(), &[]).create().unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let created = admin.create_topics([&NewTopic::new("nospace", 50, TopicReplication::Fixed(1))], &options).await.unwrap().remove(0);
    assert!(created.is_err(), "creating a topic on a full disk fails");
    let leftovers: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .chain(std::fs::read_dir(data.join("topics")).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("nospace"))
        .collect();
    assert!(leftovers.is_empty(), "a failed creation is rolled back: {leftovers:?}");
    drop(producer);

    serve.kill_9();
    let restarted = Serve::start(&data, &[], &[]);
    std::fs::remove_file(filler).unwrap();
    let producer: FutureProducer = client(&restarted.bootstrap(), &[("acks", "all")]).create().unwrap();
    let delivery = producer.send(FutureRecord::<(), _>::to("full").payload("after"), Duration::from_secs(10)).await.unwrap();
    assert_eq!(delivery.offset, 20, "appends continue after the acknowledged records");
    let bootstrap = restarted.bootstrap();
    let records = tokio::task::spawn_blocking(move || read_partition(&bootstrap, "full")).await.unwrap();
    let expected: Vec<String> = (0..20).map(|i| format!("before-{i}")).chain(["after".to_string()]).collect();
    assert_eq!(records.into_iter().map(|(_, v)| v).collect::<Vec<_>>(), expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_sealed_segment_is_logged_and_reported_to_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &["--topic-default", "internal.segment.bytes=4096"], &[]);
    let producer: FutureProducer = client(&serve.bootstrap(), &[("acks", "all"), ("linger.ms", "0")]).create().unwrap();
    for i in 0..100 {
        producer.send(FutureRecord::<(), _>::to("damaged").payload(&format!("{i:0>100}")), Duration::from_secs(5)).await.unwrap();
    }
    drop(producer);
    serve.stop();
    let partition = dir.path().join("damaged-0");
    let mut segments: Vec<_> =
        std::fs::read_dir(&partition).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "log")).collect();
    segments.sort();
    assert!(segments.len() > 2);
    let sealed = &segments[0];
    let mut bytes = std::fs::read(sealed).unwrap();
    let first_batch = 12 + i32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
    bytes[first_batch + 8..first_batch + 12].copy_from_slice(&0x7fff_0000i32.to_be_bytes());
    std::fs::write(sealed, &bytes).unwrap();

    let restarted = Serve::start(dir.path(), &[], &[]);
    assert_eq!(std::fs::metadata(sealed).unwrap().len(), bytes.len() as u64, "the sealed segment is kept whole");
    let bootstrap = restarted.bootstrap();
    let error = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client(&bootstrap, &[("group.id", "damage"), ("enable.auto.commit", "false")]).create().unwrap();
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset("damaged", 0, Offset::Beginning).unwrap();
        consumer.assign(&assignment).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "the consumer was never told about the damage");
            if let Some(Err(e)) = consumer.poll(Duration::from_millis(100)) {
                return e;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::InvalidMessage), "{error}");
    let line = restarted.wait_for_log("storage error", Duration::from_secs(5));
    assert!(line.contains("damaged-0") && line.contains(&format!("at byte {first_batch}")) && line.contains("00000000000000000000.log"), "{line}");

    // Operators see it in the metrics and in `runnel topic describe`.
    let metrics_url = format!("http://{}/metrics", restarted.metrics.as_ref().unwrap());
    let describe = std::process::Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(["topic", "describe", "damaged", "-b", &restarted.bootstrap(), "--metrics-url", &metrics_url])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&describe.stdout);
    assert!(describe.status.success(), "{out}{}", String::from_utf8_lossy(&describe.stderr));
    assert!(out.contains(&format!("partition 0 has a damaged batch in {} at byte {first_batch}", sealed.display())), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_partitions_are_created_in_seconds_and_served() {
    // The build's own scratch space: /tmp may sit on a crowded part of the
    // filesystem where each new directory costs a disk read.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let serve = Serve::start(dir.path(), &[], &[]);
    let admin: AdminClient<DefaultClientContext> = client(&serve.bootstrap(), &[]).create().unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(60))).request_timeout(Some(Duration::from_secs(60)));
    let started = Instant::now();
    admin.create_topics([&NewTopic::new("wide", 10_000, TopicReplication::Fixed(1))], &options).await.unwrap().remove(0).unwrap();
    let took = started.elapsed();
    eprintln!("created 10000 partitions in {took:?}");
    // Under 2 s with a release build; the bound leaves room for a debug
    // build on a busy machine.
    assert!(took < Duration::from_secs(10), "creating 10,000 partitions took {took:?}");
    let producer: FutureProducer = client(&serve.bootstrap(), &[("acks", "all")]).create().unwrap();
    for partition in [0, 4_999, 9_999] {
        let delivery = producer.send(FutureRecord::<(), _>::to("wide").partition(partition).payload("x"), Duration::from_secs(20)).await.unwrap();
        assert_eq!((delivery.partition, delivery.offset), (partition, 0));
    }
    drop(producer);
    serve.stop();
    let started = Instant::now();
    let restarted = Serve::start(dir.path(), &[], &[]);
    eprintln!("restarted with 10000 partitions in {:?}", started.elapsed());
    let producer: FutureProducer = client(&restarted.bootstrap(), &[("acks", "all")]).create().unwrap();
    let delivery = producer.send(FutureRecord::<(), _>::to("wide").partition(9_999).payload("y"), Duration::from_secs(20)).await.unwrap();
    assert_eq!(delivery.offset, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_creation_beyond_the_open_file_limit_is_refused_and_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start_limited(dir.path(), &[], &[], Some(1024));
    serve.wait_for_log("open file limit limit=1024", Duration::from_secs(1));
    let admin: AdminClient<DefaultClientContext> = client(&serve.bootstrap(), &[]).create().unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let refused = admin.create_topics([&NewTopic::new("too-wide", 2_000, TopicReplication::Fixed(1))], &options).await.unwrap().remove(0);
    let (_, code) = refused.expect_err("2,000 partitions cannot fit in 1,024 files");
    assert_eq!(code, RDKafkaErrorCode::InvalidPartitions);
    let orphans = std::fs::read_dir(dir.path()).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("too-wide")).count();
    assert_eq!(orphans, 0);
    admin.create_topics([&NewTopic::new("fits", 500, TopicReplication::Fixed(1))], &options).await.unwrap().remove(0).unwrap();

    // Exhaust the descriptors with connections: accepting fails, and the
    // broker says so once, not once per attempt.
    let exhausting = Instant::now();
    let mut sockets = Vec::new();
    for _ in 0..600 {
        match TcpStream::connect(serve.bootstrap()) {
            Ok(socket) => sockets.push(socket),
            Err(_) => break,
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let failures = serve.log().iter().filter(|l| l.contains("accept failed")).count();
    // Once per ten-second interval while accepting fails (on a busy
    // machine the connections above can take a while).
    let intervals = 1 + exhausting.elapsed().as_secs() as usize / 10;
    assert!((1..=intervals + 1).contains(&failures), "accept failures are logged at most once per interval, saw {failures} in {intervals} intervals");
    drop(sockets);
    let producer: FutureProducer = client(&serve.bootstrap(), &[]).create().unwrap();
    producer.send(FutureRecord::<(), _>::to("fits").partition(499).payload("served"), Duration::from_secs(20)).await.unwrap();
}
