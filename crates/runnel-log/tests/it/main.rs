//! Storage engine scenarios: appends across segments, recovery from torn
//! and corrupt tails, index rebuilds, retention, timestamps.

use std::io::Write;
use std::path::Path;

use runnel_log::batch::{testing, validate, BatchHeader};
use runnel_log::{Appended, LogConfig, LogError, OpenMode, PartitionLog, SequenceError};

mod compaction;
mod segments;
mod transactions;

const NOW: i64 = 1_700_000_000_000;

fn small_segments() -> LogConfig {
    LogConfig { segment_bytes: 1024, index_interval_bytes: 128, ..LogConfig::default() }
}

fn open(dir: &Path, config: LogConfig, mode: OpenMode) -> PartitionLog {
    PartitionLog::open(dir, config, mode, NOW).expect("open log")
}

/// Appends one batch of `values` with the given timestamp; returns its base offset.
fn append(log: &PartitionLog, timestamp: i64, values: &[&[u8]]) -> i64 {
    let mut bytes = testing::batch(timestamp, values);
    let mut headers = vec![validate(&bytes).unwrap()];
    log.append(&mut bytes, &mut headers, None, NOW).unwrap().base_offset
}

/// Every batch header readable from `offset` to the end.
fn read_headers(log: &PartitionLog, mut offset: i64) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    loop {
        let chunk = log.read(offset, 1 << 20, true).unwrap();
        if chunk.bytes.is_empty() {
            return out;
        }
        let mut pos = 0;
        while pos < chunk.bytes.len() {
            let header = validate(&chunk.bytes[pos..pos + BatchHeader::parse(&chunk.bytes[pos..]).unwrap().size]).unwrap();
            pos += header.size;
            offset = header.last_offset() + 1;
            out.push(header);
        }
    }
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".log")).collect();
    names.sort();
    names
}

#[test]
fn offsets_are_consecutive_across_segment_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_segments(), OpenMode::Recover);
    let value = [7u8; 100];
    let mut expected = 0;
    for i in 0..40 {
        assert_eq!(append(&log, NOW + i, &[&value, &value]), expected);
        expected += 2;
    }
    assert!(segment_files(dir.path()).len() > 5, "small segments should roll");
    let headers = read_headers(&log, 0);
    assert_eq!(headers.len(), 40);
    assert!(headers.windows(2).all(|w| w[1].base_offset == w[0].last_offset() + 1));
    // Reading from the middle of a batch returns the batch that holds it.
    let chunk = log.read(31, 1 << 20, true).unwrap();
    assert_eq!(BatchHeader::parse(&chunk.bytes).unwrap().base_offset, 30);
    assert_eq!(log.bounds().log_end_offset, 80);
}

#[test]
fn read_respects_max_bytes_but_returns_one_oversized_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default(), OpenMode::Recover);
    let big = [1u8; 500];
    append(&log, NOW, &[&big]);
    append(&log, NOW, &[&big]);
    let one = log.read(0, 100, true).unwrap();
    assert_eq!(validate(&one.bytes).unwrap().base_offset, 0);
    assert!(log.read(0, 100, false).unwrap().bytes.is_empty());
    let both = log.read(0, 10_000, true).unwrap();
    assert_eq!(both.bytes.len(), 2 * one.bytes.len());
    assert!(log.read(2, 100, true).unwrap().bytes.is_empty(), "log end reads nothing");
    assert!(log.read(3, 100, true).is_err(), "past the end is out of range");
}

#[test]
fn garbage_appended_to_the_tail_is_truncated_on_recovery() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), LogConfig::default(), OpenMode::Recover);
        for i in 0..10 {
            append(&log, NOW + i, &[b"record"]);
        }
    }
    let segment = dir.path().join(runnel_log::segment_file_name(0));
    let good_len = std::fs::metadata(&segment).unwrap().len();
    std::fs::OpenOptions::new().append(true).open(&segment).unwrap().write_all(&[0xAB; 333]).unwrap();
    let log = open(dir.path(), LogConfig::default(), OpenMode::Recover);
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), good_len);
    assert_eq!(log.bounds().log_end_offset, 10);
    assert_eq!(append(&log, NOW, &[b"after"]), 10);
    assert_eq!(read_headers(&log, 0).len(), 11);
}

#[test]
fn a_corrupt_last_batch_is_dropped_and_earlier_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), LogConfig::default(), OpenMode::Recover);
        for i in 0..3 {
            append(&log, NOW + i, &[b"record"]);
        }
    }
    let segment = dir.path().join(runnel_log::segment_file_name(0));
    let mut bytes = std::fs::read(&segment).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0xFF;
    std::fs::write(&segment, &bytes).unwrap();
    let log = open(dir.path(), LogConfig::default(), OpenMode::Recover);
    assert_eq!(log.bounds().log_end_offset, 2);
}

#[test]
fn a_torn_half_written_batch_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), LogConfig::default(), OpenMode::Recover);
        append(&log, NOW, &[b"whole"]);
    }
    let segment = dir.path().join(runnel_log::segment_file_name(0));
    let half = testing::batch(NOW, &[b"half-written batch"]);
    std::fs::OpenOptions::new().append(true).open(&segment).unwrap().write_all(&half[..half.len() / 2]).unwrap();
    let log = open(dir.path(), LogConfig::default(), OpenMode::Recover);
    assert_eq!(log.bounds().log_end_offset, 1);
}

#[test]
fn missing_or_damaged_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let clean = {
        let log = open(dir.path(), small_segments(), OpenMode::Recover);
        for i in 0..30 {
            append(&log, NOW + i, &[&[3u8; 90]]);
        }
        log.close().unwrap()
    };
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("index") => std::fs::write(&path, [1, 2, 3]).unwrap(),
            Some("timeindex") => std::fs::remove_file(&path).unwrap(),
            _ => {}
        }
    }
    let log = open(dir.path(), small_segments(), OpenMode::Clean(clean));
    assert_eq!(log.bounds().log_end_offset, 30);
    assert_eq!(read_headers(&log, 17).first().unwrap().base_offset, 17);
    assert!(log.batch_for_timestamp(NOW + 20).unwrap().is_some());
}

#[test]
fn retention_by_size_and_time_deletes_whole_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_bytes: 2048, ..small_segments() };
    let log = open(dir.path(), config.clone(), OpenMode::Recover);
    for i in 0..40 {
        append(&log, NOW + i, &[&[5u8; 200]]);
    }
    let before = segment_files(dir.path()).len();
    assert!(log.enforce_retention(NOW).unwrap() > 0);
    assert!(segment_files(dir.path()).len() < before);
    assert!(log.size_bytes() <= 2048 + 1024);
    let start = log.bounds().log_start_offset;
    assert!(start > 0);
    assert!(log.read(0, 100, true).is_err(), "deleted offsets are out of range");
    assert_eq!(read_headers(&log, start).first().unwrap().base_offset, start);

    log.set_config(LogConfig { retention_ms: 1000, retention_bytes: -1, ..config });
    log.enforce_retention(NOW + 1_000_000).unwrap();
    let bounds = log.bounds();
    assert_eq!(bounds.log_start_offset, bounds.log_end_offset, "everything expired");
    assert_eq!(append(&log, NOW, &[b"new"]), 40);
}

#[test]
fn delete_records_advances_log_start_durably() {
    let dir = tempfile::tempdir().unwrap();
    let clean = {
        let log = open(dir.path(), small_segments(), OpenMode::Recover);
        for i in 0..20 {
            append(&log, NOW + i, &[&[9u8; 100]]);
        }
        assert_eq!(log.delete_records_before(13).unwrap(), 13);
        assert!(log.delete_records_before(21).is_err());
        log.close().unwrap()
    };
    let log = open(dir.path(), small_segments(), OpenMode::Clean(clean));
    assert_eq!(log.bounds().log_start_offset, 13);
    assert_eq!(read_headers(&log, 13).len(), 7);
}

#[test]
fn timestamp_lookup_finds_first_batch_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_segments(), OpenMode::Recover);
    for i in 0..30 {
        append(&log, NOW + i * 10, &[&[1u8; 60]]);
    }
    let batch = log.batch_for_timestamp(NOW + 95).unwrap().unwrap();
    assert_eq!(validate(&batch).unwrap().base_offset, 10);
    assert!(log.batch_for_timestamp(NOW + 1000).unwrap().is_none());
    let max = log.batch_with_max_timestamp().unwrap().unwrap();
    assert_eq!(validate(&max).unwrap().base_offset, 29);
}

#[tokio::test]
async fn concurrent_flushes_share_fsyncs_and_all_complete() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(open(dir.path(), LogConfig::default(), OpenMode::Recover));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let offset = append(&log, NOW, &[b"durable"]);
            log.flush_to(offset + 1).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(log.bounds().log_end_offset, 16);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    #[test]
    fn reopened_log_reads_back_what_was_written(sizes in proptest::collection::vec(1usize..300, 1..40), trusted: bool) {
        let dir = tempfile::tempdir().unwrap();
        let (written, clean) = {
            let log = open(dir.path(), small_segments(), OpenMode::Recover);
            let written: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, size)| {
                let value = vec![i as u8; *size];
                append(&log, NOW + i as i64, &[&value]);
                value
            }).collect();
            (written, log.close().unwrap())
        };
        let mode = if trusted { OpenMode::Clean(clean) } else { OpenMode::Recover };
        let log = open(dir.path(), small_segments(), mode);
        proptest::prop_assert_eq!(log.bounds().log_end_offset, written.len() as i64);
        let headers = read_headers(&log, 0);
        proptest::prop_assert_eq!(headers.len(), written.len());
    }
}

/// Appends an idempotent producer's batch; returns where it landed.
fn append_idempotent(log: &PartitionLog, producer_id: i64, sequence: i32, values: &[&[u8]]) -> Appended {
    let mut bytes = testing::batch_with_producer(NOW, values, producer_id, 0, sequence);
    let mut headers = vec![validate(&bytes).unwrap()];
    log.append(&mut bytes, &mut headers, None, NOW).unwrap()
}

#[test]
fn a_retry_is_recognised_after_a_restart_whatever_segment_holds_the_original() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes: 300, ..LogConfig::default() };
        let point = {
            let log = open(dir.path(), config.clone(), OpenMode::Recover);
            assert_eq!(append_idempotent(&log, 1, 0, &[b"a", b"b", b"c"]).base_offset, 0);
            for i in 0..8 {
                append_idempotent(&log, 2, i, &[&[0u8; 100]]);
            }
            assert!(segment_files(dir.path()).len() > 2, "the other producer rolled the log");
            log.close().unwrap()
        };
        let mode = if clean { OpenMode::Clean(point) } else { OpenMode::Recover };
        let log = open(dir.path(), config, mode);
        let retry = append_idempotent(&log, 1, 0, &[b"a", b"b", b"c"]);
        assert_eq!((retry.base_offset, retry.duplicate), (0, true), "clean={clean}");
        assert_eq!(log.bounds().log_end_offset, 11, "nothing was appended twice");
        let next = append_idempotent(&log, 1, 3, &[b"d"]);
        assert_eq!((next.base_offset, next.duplicate), (11, false));
        let stale = log.append(
            &mut testing::batch_with_producer(NOW, &[b"x"], 1, 0, 9),
            &mut [validate(&testing::batch_with_producer(NOW, &[b"x"], 1, 0, 9)).unwrap()],
            None,
            NOW,
        );
        assert!(matches!(stale, Err(LogError::Sequence(SequenceError::OutOfOrder { expected: 4, .. }))), "{stale:?}");
    }
}

#[test]
fn producer_state_survives_much_traffic_from_others_in_one_segment() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), LogConfig::default(), OpenMode::Recover);
        append_idempotent(&log, 1, 0, &[b"first"]);
        let big = vec![7u8; 1 << 20];
        for i in 0..17 {
            append_idempotent(&log, 2, i, &[&big]);
        }
    }
    let log = open(dir.path(), LogConfig::default(), OpenMode::Recover);
    assert_eq!(append_idempotent(&log, 1, 0, &[b"first"]).base_offset, 0);
    assert_eq!(log.bounds().log_end_offset, 18);
}

#[test]
fn silent_producers_expire_by_producer_id_expiration_ms() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { producer_id_expiration_ms: 60_000, ..LogConfig::default() };
    let point = {
        let log = open(dir.path(), config.clone(), OpenMode::Recover);
        append_idempotent(&log, 1, 0, &[b"v"]);
        assert_eq!(log.expire_producers(NOW + 59_999), 0);
        log.close().unwrap()
    };
    let log = PartitionLog::open(dir.path(), config, OpenMode::Clean(point), NOW + 60_000).unwrap();
    assert_eq!(log.producer_count(), 0);
}

#[test]
fn a_damaged_sealed_segment_is_kept_and_reported_not_truncated() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let point = {
            let log = open(dir.path(), small_segments(), OpenMode::Recover);
            for i in 0..30 {
                append(&log, NOW + i, &[&[5u8; 90]]);
            }
            log.close().unwrap()
        };
        let first = dir.path().join(segment_files(dir.path())[0].clone());
        let len_before = std::fs::metadata(&first).unwrap().len();
        let mut bytes = std::fs::read(&first).unwrap();
        let second_batch = BatchHeader::parse(&bytes).unwrap().size;
        bytes[second_batch + 8..second_batch + 12].copy_from_slice(&0x7fff_0000i32.to_be_bytes());
        std::fs::write(&first, &bytes).unwrap();

        let mode = if clean { OpenMode::Clean(point) } else { OpenMode::Recover };
        let log = open(dir.path(), small_segments(), mode);
        assert_eq!(std::fs::metadata(&first).unwrap().len(), len_before, "clean={clean}: a sealed segment is never truncated");
        assert_eq!(log.bounds().log_end_offset, 30);
        let before = log.read(0, 1 << 20, true).unwrap();
        assert_eq!(before.bytes.len(), second_batch, "the batch before the damage is served");
        match log.read(1, 1 << 20, true) {
            Err(LogError::Corrupt { segment, position, .. }) => {
                assert_eq!(segment, first);
                assert_eq!(position, second_batch as u64);
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        let report = log.corruption().expect("corruption is kept for operators");
        assert_eq!((report.position, report.reads), (second_batch as u64, 1));
        let later = read_headers(&log, 20);
        assert_eq!(later.first().map(|h| h.base_offset), Some(20), "segments after the damage are served");
    }
}

#[test]
fn bytes_after_the_clean_point_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let point = {
        let log = open(dir.path(), LogConfig::default(), OpenMode::Recover);
        for i in 0..5 {
            append(&log, NOW + i, &[b"kept"]);
        }
        log.close().unwrap()
    };
    let segment = dir.path().join(runnel_log::segment_file_name(0));
    let extra = testing::batch(NOW, &[b"never acknowledged"]);
    std::fs::OpenOptions::new().append(true).open(&segment).unwrap().write_all(&extra).unwrap();
    let log = open(dir.path(), LogConfig::default(), OpenMode::Clean(point));
    assert_eq!(log.bounds().log_end_offset, 5);
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), point.active_size);
}
