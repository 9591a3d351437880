//! `runnel group` driven as a user would, checked against what a second,
//! independent client (librdkafka) sees.

use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::support::{client, Serve};

/// Runs `runnel group ARGS -b BOOTSTRAP`; returns (exit code, stdout, stderr).
fn runnel_group(bootstrap: &str, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_runnel")).arg("group").args(args).args(["-b", bootstrap]).output().unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap())
}

#[track_caller]
fn ok(result: (i32, String, String)) -> String {
    assert_eq!(result.0, 0, "runnel group failed: {}", result.2);
    result.1
}

fn committed(bootstrap: &str, group: &str) -> i64 {
    let consumer: BaseConsumer = client(bootstrap, &[("group.id", group)]).create().unwrap();
    let mut query = TopicPartitionList::new();
    query.add_partition("cli-t", 0);
    match consumer.committed_offsets(query, Duration::from_secs(10)).unwrap().elements()[0].offset() {
        Offset::Offset(n) => n,
        other => panic!("no committed offset: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn list_describe_reset_and_delete_a_group() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[], &[]);
    let bootstrap = serve.bootstrap();
    let producer: FutureProducer = client(&bootstrap, &[]).create().unwrap();
    let base = 1_700_000_000_000i64;
    for i in 0..10 {
        producer.send(FutureRecord::<(), _>::to("cli-t").payload("x").timestamp(base + i * 1000), Duration::from_secs(10)).await.unwrap();
    }
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client(&b, &[("group.id", "cli-g")]).create().unwrap();
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset("cli-t", 0, Offset::Offset(7)).unwrap();
        consumer.commit(&offsets, CommitMode::Sync).unwrap();

        let listed = ok(runnel_group(&b, &["list"]));
        assert!(listed.lines().any(|l| l.starts_with("cli-g") && l.contains("Empty")), "{listed}");
        let described = ok(runnel_group(&b, &["describe", "cli-g", "--json"]));
        assert!(described.contains("\"committed\": 7") && described.contains("\"log_end\": 10") && described.contains("\"lag\": 3"), "{described}");

        let dry = ok(runnel_group(&b, &["reset-offsets", "cli-g", "--topic", "cli-t", "--to-earliest", "--dry-run"]));
        assert!(dry.contains("dry run"), "{dry}");
        assert_eq!(committed(&b, "cli-g"), 7, "a dry run commits nothing");
        let cases: [(&[&str], i64); 4] =
            [(&["--shift-by", "-2"], 5), (&["--to-offset", "3"], 3), (&["--to-datetime", "2023-11-14T22:13:25Z"], 5), (&["--to-latest"], 10)];
        for (how, expected) in cases {
            let mut args = vec!["reset-offsets", "cli-g", "--topic", "cli-t"];
            args.extend_from_slice(how);
            ok(runnel_group(&b, &args));
            assert_eq!(committed(&b, "cli-g"), expected, "{how:?}");
        }

        let (code, _, stderr) = runnel_group(&b, &["reset-offsets", "cli-g", "--topic", "missing-topic", "--to-earliest"]);
        assert_eq!(code, 1);
        assert!(stderr.contains("topic missing-topic does not exist"), "{stderr}");

        let member: BaseConsumer = client(&b, &[("group.id", "cli-g"), ("session.timeout.ms", "6000")]).create().unwrap();
        member.subscribe(&["cli-t"]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while member.assignment().unwrap().count() == 0 {
            assert!(Instant::now() < deadline, "the member never got an assignment");
            member.poll(Duration::from_millis(100));
        }
        let described = ok(runnel_group(&b, &["describe", "cli-g"]));
        assert!(described.contains("state Stable") && described.contains("members 1"), "{described}");
        let (code, _, stderr) = runnel_group(&b, &["reset-offsets", "cli-g", "--topic", "cli-t", "--to-earliest"]);
        assert_eq!(code, 1, "an active group cannot be reset");
        assert!(stderr.contains("active member"), "{stderr}");
        let (code, _, _) = runnel_group(&b, &["delete", "cli-g"]);
        assert_eq!(code, 1, "an active group cannot be deleted");
        member.unsubscribe();
        drop(member);

        let deadline = Instant::now() + Duration::from_secs(30);
        while runnel_group(&b, &["delete", "cli-g"]).0 != 0 {
            assert!(Instant::now() < deadline, "the group never became deletable");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!ok(runnel_group(&b, &["list"])).contains("cli-g"));
    })
    .await
    .unwrap();
}

#[test]
fn an_unreachable_broker_is_reported_with_exit_code_3() {
    let (code, _, stderr) = runnel_group("127.0.0.1:1", &["list", "-X", "socket.connection.setup.timeout.ms=1000"]);
    assert_eq!(code, 3);
    assert!(stderr.contains("unreachable") && stderr.contains("runnel serve"), "{stderr}");
}
