//! The per-topic configs that shape segments and their upkeep: index size
//! and roll jitter, `flush.messages` and `flush.ms`, the deletion delay,
//! and preallocation.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use runnel_log::{LogConfig, OpenMode, PartitionLog};

use super::{append, open, segment_files, NOW};

#[test]
fn a_full_index_rolls_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    // An index entry for every batch, and room for four offset entries.
    let config = LogConfig { index_interval_bytes: 1, segment_index_bytes: 32, ..LogConfig::default() };
    let log = open(dir.path(), config, OpenMode::Recover);
    for _ in 0..12 {
        append(&log, NOW, &[b"ride"]);
    }
    // Every batch has the same timestamp, so the time index holds one
    // entry; the offset index fills after four batches.
    assert_eq!(segment_files(dir.path()), ["00000000000000000000.log", "00000000000000000004.log", "00000000000000000008.log"]);
}

#[test]
fn roll_jitter_brings_some_rolls_forward_and_none_back() {
    let roots = tempfile::tempdir().unwrap();
    let rolled = |jitter_ms: i64| {
        (0..20)
            .filter(|i| {
                let config = LogConfig { segment_ms: 1000, segment_jitter_ms: jitter_ms, ..LogConfig::default() };
                let log = PartitionLog::create(&roots.path().join(format!("j{jitter_ms}-{i}")), config, NOW).unwrap();
                append(&log, NOW, &[b"first"]);
                let mut bytes = runnel_log::batch::testing::batch(NOW, &[b"later"]);
                let mut headers = vec![runnel_log::batch::validate(&bytes).unwrap()];
                log.append(&mut bytes, &mut headers, None, NOW + 999).unwrap();
                segment_files(log.dir()).len() > 1
            })
            .count()
    };
    assert_eq!(rolled(0), 0, "without jitter nothing rolls before segment.ms");
    assert!(rolled(1000) >= 15, "with jitter as long as segment.ms, most partitions roll early");
}

#[test]
fn flush_messages_asks_for_an_fsync_every_n_messages() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::create(&dir.path().join("p"), LogConfig { flush_messages: 3, ..LogConfig::default() }, NOW).unwrap();
    let due: Vec<bool> = (0..4)
        .map(|_| {
            let mut bytes = runnel_log::batch::testing::batch(NOW, &[b"r"]);
            let mut headers = vec![runnel_log::batch::validate(&bytes).unwrap()];
            log.append(&mut bytes, &mut headers, None, NOW).unwrap().flush_due
        })
        .collect();
    assert_eq!(due, [false, false, true, true], "due from the third unflushed message until an fsync");
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(log.flush_to(4)).unwrap();
    assert_eq!(log.durable_offset(), 4);
}

#[test]
fn flush_ms_fsyncs_data_left_unflushed_that_long() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::create(&dir.path().join("p"), LogConfig { flush_ms: 50, ..LogConfig::default() }, NOW).unwrap();
    append(&log, NOW, &[b"r"]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while log.durable_offset() < 1 {
        assert!(Instant::now() < deadline, "flush.ms never made the record durable");
        runtime.block_on(log.maintain(NOW)).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn deleted_segments_linger_for_the_delay_and_not_past_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 200, retention_ms: 1000, file_delete_delay_ms: 60_000, ..LogConfig::default() };
    let log = open(dir.path(), config.clone(), OpenMode::Recover);
    for _ in 0..6 {
        append(&log, NOW, &[&[1u8; 100]]);
    }
    let deleted = log.enforce_retention(NOW + 10_000).unwrap();
    assert!(deleted > 0);
    let lingering =
        |dir: &std::path::Path| std::fs::read_dir(dir).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "deleted")).count();
    assert!(lingering(dir.path()) >= deleted, "removed segments wait as *.deleted");
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(log.maintain(NOW)).unwrap();
    assert!(lingering(dir.path()) > 0, "not before the delay");
    drop(log);
    let reopened = open(dir.path(), config, OpenMode::Recover);
    assert_eq!(lingering(dir.path()), 0, "a restart removes what was waiting");
    drop(reopened);
}

#[test]
fn preallocated_segments_reserve_disk_but_show_only_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 4 << 20, preallocate: true, ..LogConfig::default() };
    let log = PartitionLog::create(&dir.path().join("p"), config, NOW).unwrap();
    append(&log, NOW, &[b"ride"]);
    let segment = log.dir().join(&segment_files(log.dir())[0]);
    let metadata = std::fs::metadata(&segment).unwrap();
    assert!(metadata.len() < 200, "the visible size is what was written");
    assert!(metadata.blocks() * 512 >= 4 << 20, "the disk is reserved: {} blocks", metadata.blocks());
    drop(log);
    let reopened = open(&dir.path().join("p"), LogConfig { preallocate: true, ..LogConfig::default() }, OpenMode::Recover);
    assert_eq!(reopened.bounds().log_end_offset, 1, "recovery reads only the written batch");
}
