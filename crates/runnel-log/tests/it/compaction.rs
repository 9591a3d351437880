//! Log compaction: what a consumer reads after cleaning, tombstones,
//! crashes in the middle of a pass, and reads during one.

use std::collections::HashMap;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use runnel_log::batch::{validate, validate_stored};
use runnel_log::cleaner::CompactionConfig;
use runnel_log::records;
use runnel_log::{LogConfig, OpenMode, PartitionLog};

use super::NOW;

fn compacted(delete_retention_ms: i64) -> LogConfig {
    LogConfig {
        segment_bytes: 64 * 1024,
        compaction: Some(CompactionConfig { min_dirty_ratio_ppm: 0, delete_retention_ms, ..CompactionConfig::default() }),
        ..LogConfig::default()
    }
}

/// Appends one batch of `(key, value)` records (a `None` value is a
/// tombstone) in `compression`.
fn append_keyed(log: &PartitionLog, records: &[(String, Option<String>)], compression: Compression) {
    append_keyed_as(log, records, compression, None);
}

/// Like [`append_keyed`], inside the open transaction of `(producer id,
/// epoch, first sequence)` when one is given.
fn append_keyed_as(log: &PartitionLog, records: &[(String, Option<String>)], compression: Compression, transaction: Option<(i64, i16, i32)>) {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: transaction.is_some(),
            control: false,
            partition_leader_epoch: 0,
            producer_id: transaction.map_or(-1, |t| t.0),
            producer_epoch: transaction.map_or(-1, |t| t.1),
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: transaction.map_or(i as i32 - 1, |t| t.2 + i as i32),
            timestamp: NOW,
            key: Some(Bytes::from(key.clone())),
            value: value.clone().map(Bytes::from),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression }).unwrap();
    let mut headers = vec![validate(&buf).unwrap()];
    log.append(&mut buf, &mut headers, None, NOW).unwrap();
}

/// Every batch from the start, whole and intact, in offset order.
fn batches(log: &PartitionLog) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut offset = log.bounds().log_start_offset;
    loop {
        let chunk = log.read(offset, 1 << 20, true).unwrap();
        if chunk.bytes.is_empty() {
            return out;
        }
        let mut bytes = chunk.bytes.clone();
        while !bytes.is_empty() {
            let size = 12 + i32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
            let batch = bytes.split_to(size);
            let header = validate_stored(&batch).expect("every batch read is whole and intact");
            offset = header.last_offset() + 1;
            out.push(batch);
        }
    }
}

/// Every record from the start: `(offset, key, value)`.
fn read_all(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
    let text = |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
    batches(log)
        .into_iter()
        .flat_map(|batch| records::decode(batch).unwrap().records)
        .map(|record| (record.offset, text(record.key).unwrap(), text(record.value)))
        .collect()
}

/// What a consumer reading the whole log ends up believing.
fn final_state(records: &[(i64, String, Option<String>)]) -> HashMap<String, Option<String>> {
    records.iter().map(|(_, k, v)| (k.clone(), v.clone())).collect()
}

/// Cleans until a pass finds nothing to do; returns where the last one
/// ended.
fn clean_until_done(log: &PartitionLog, now: i64) -> i64 {
    let mut cleaned_to = 0;
    let mut passes = 0;
    while let Some(stats) = log.clean(now).unwrap() {
        cleaned_to = stats.cleaned_to;
        passes += 1;
        assert!(passes < 100, "cleaning converges");
    }
    assert!(passes > 0, "there was something to clean");
    cleaned_to
}

/// 200,000 updates over 2,000 keys in mixed codecs; every tenth key is
/// deleted at the end.
fn updates(log: &PartitionLog) {
    let mut written = 0;
    for round in 0..2_000 {
        let batch: Vec<(String, Option<String>)> =
            (0..100).map(|i| (format!("key-{}", (round * 100 + i) % 2_000), Some(format!("value-{round}-{i}")))).collect();
        let compression = [Compression::None, Compression::Gzip, Compression::Zstd, Compression::Lz4][round % 4];
        append_keyed(log, &batch, compression);
        written += batch.len();
    }
    assert_eq!(written, 200_000);
    let deletes: Vec<(String, Option<String>)> = (0..2_000).step_by(10).map(|k| (format!("key-{k}"), None)).collect();
    append_keyed(log, &deletes, Compression::None);
    // Later writes to other keys seal the segment with the deletes.
    for round in 0..40 {
        let filler: Vec<(String, Option<String>)> = (0..100).map(|i| (format!("other-{}", round * 100 + i), Some("y".repeat(40)))).collect();
        append_keyed(log, &filler, Compression::None);
    }
}

#[test]
fn a_consumer_sees_the_newest_value_of_each_key_and_deleted_keys_vanish() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), compacted(60_000), OpenMode::Recover, NOW).unwrap();
    updates(&log);
    let before = read_all(&log);
    let size_before = log.size_bytes();
    assert_eq!(before.len(), 200_000 + 200 + 4_000);

    let cleaned_to = clean_until_done(&log, NOW + 1);
    let after = read_all(&log);
    assert_eq!(final_state(&after), final_state(&before), "cleaning changes nothing a consumer ends up with");
    assert!(after.windows(2).all(|w| w[0].0 < w[1].0), "offsets stay in order, with gaps");
    let mut seen = HashMap::new();
    for (offset, key, _) in after.iter().filter(|(offset, _, _)| *offset < cleaned_to) {
        assert!(seen.insert(key.clone(), *offset).is_none(), "{key} twice in the cleaned part of the log");
    }
    let cleaned = after.iter().filter(|(offset, _, _)| *offset < cleaned_to).count();
    assert!(cleaned <= 2_000 + 4_000, "{cleaned} records left in the cleaned part: at most one per key");
    assert!(after.len() < 6_000 + 2_000, "{} records left in all, the active segment's included", after.len());
    assert!(after.iter().any(|(_, _, v)| v.is_none()), "tombstones are kept until delete.retention.ms");
    assert!(log.size_bytes() * 8 < size_before, "{} of {size_before} bytes left", log.size_bytes());

    // Until delete.retention.ms has passed there is nothing to do; then a
    // pass drops the tombstones it kept, with no new writes needed.
    assert_eq!(log.clean(NOW + 30_000).unwrap(), None);
    let later = NOW + 60_001;
    assert!(log.clean(later).unwrap().is_some_and(|stats| stats.segments_rewritten > 0));
    let after_retention = read_all(&log);
    assert_eq!(after_retention.iter().filter(|(_, _, v)| v.is_none()).count(), 0, "deleted keys vanish");
    assert_eq!(log.clean(later).unwrap(), None, "and then nothing is due");
    let mut live = final_state(&before);
    live.retain(|_, v| v.is_some());
    let mut remaining = final_state(&after_retention);
    remaining.retain(|_, v| v.is_some());
    assert_eq!(remaining, live);

    // And the cleaned log opens again as it was.
    log.close().unwrap();
    drop(log);
    let reopened = PartitionLog::open(dir.path(), compacted(60_000), OpenMode::Recover, later).unwrap();
    assert_eq!(read_all(&reopened), after_retention);
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_crash_at_any_step_of_a_pass_leaves_a_log_that_opens_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), compacted(60_000), OpenMode::Recover, NOW).unwrap();
    updates(&log);
    let expected = final_state(&read_all(&log));
    log.close().unwrap();
    drop(log);

    // Cleaned copies of the segments, made in a twin directory.
    let twin = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), twin.path());
    let cleaned = PartitionLog::open(twin.path(), compacted(60_000), OpenMode::Recover, NOW).unwrap();
    clean_until_done(&cleaned, NOW + 1);
    cleaned.close().unwrap();
    let first_segment = runnel_log::segment_file_name(0);

    // Killed while writing: a partial `.cleaned` file is discarded.
    let crashed = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), crashed.path());
    std::fs::write(crashed.path().join(format!("{first_segment}.cleaned")), b"half a segment").unwrap();
    let log = PartitionLog::open(crashed.path(), compacted(60_000), OpenMode::Recover, NOW).unwrap();
    assert_eq!(final_state(&read_all(&log)), expected);
    assert!(!crashed.path().join(format!("{first_segment}.cleaned")).exists());
    drop(log);

    // Killed between making the rewrite durable and swapping it in: the
    // swap is completed at open, with the index rebuilt for it.
    let crashed = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), crashed.path());
    std::fs::copy(twin.path().join(&first_segment), crashed.path().join(format!("{first_segment}.swap"))).unwrap();
    let log = PartitionLog::open(crashed.path(), compacted(60_000), OpenMode::Recover, NOW).unwrap();
    let records = read_all(&log);
    assert_eq!(final_state(&records), expected);
    assert!(records.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(std::fs::read(crashed.path().join(&first_segment)).unwrap(), std::fs::read(twin.path().join(&first_segment)).unwrap());
    // The swapped-in segment is cleaned further like any other.
    clean_until_done(&log, NOW + 1);
    assert_eq!(final_state(&read_all(&log)), expected);
}

#[test]
fn reads_during_cleaning_always_see_whole_valid_batches_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(PartitionLog::open(dir.path(), compacted(60_000), OpenMode::Recover, NOW).unwrap());
    updates(&log);
    let expected = final_state(&read_all(&log));
    let cleaning = {
        let log = log.clone();
        std::thread::spawn(move || clean_until_done(&log, NOW + 1))
    };
    let mut reads = 0;
    while !cleaning.is_finished() || reads == 0 {
        let records = read_all(&log);
        assert!(records.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(final_state(&records), expected);
        reads += 1;
    }
    cleaning.join().unwrap();
}

/// Every batch from the start as `(offset, what)`: `key=value` records, or
/// `COMMIT`/`ABORT` for markers.
fn read_batches(log: &PartitionLog) -> Vec<(i64, String)> {
    let text = |b: Option<Bytes>| b.map_or("-".to_string(), |b| String::from_utf8(b.to_vec()).unwrap());
    let mut out = Vec::new();
    for batch in batches(log) {
        let header = validate_stored(&batch).unwrap();
        match runnel_log::batch::marker_commits(&batch) {
            Some(commit) => out.push((header.base_offset, if commit { "COMMIT" } else { "ABORT" }.to_string())),
            None => out.extend(records::decode(batch).unwrap().records.into_iter().map(|r| (r.offset, format!("{}={}", text(r.key), text(r.value))))),
        }
    }
    out
}

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, Option<String>)> {
    pairs.iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))).collect()
}

#[test]
fn aborted_records_go_and_markers_follow_their_transactions_data() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 200, ..compacted(1000) };
    let log = PartitionLog::create(&dir.path().join("p"), config, NOW).unwrap();
    // An aborted transaction, a committed one, and plain writes; a
    // transaction still open at the end.
    append_keyed_as(&log, &kv(&[("a", "aborted"), ("b", "aborted")]), Compression::None, Some((7, 0, 0)));
    log.append_marker(7, 0, false, 0, NOW).unwrap();
    append_keyed(&log, &kv(&[("a", "plain")]), Compression::None);
    append_keyed_as(&log, &kv(&[("c", "committed")]), Compression::None, Some((7, 0, 2)));
    log.append_marker(7, 0, true, 0, NOW).unwrap();
    append_keyed(&log, &kv(&[("b", "plain")]), Compression::None);
    append_keyed_as(&log, &kv(&[("b", "open")]), Compression::Gzip, Some((8, 0, 0)));
    append_keyed(&log, &kv(&[("z", "seals the segments before it")]), Compression::None);
    let stable = log.bounds().last_stable_offset;
    assert_eq!(stable, 7, "the open transaction starts at offset 7");

    clean_until_done(&log, NOW);
    let first_pass = read_batches(&log);
    assert_eq!(
        first_pass,
        [
            (2, "ABORT".to_string()),
            (3, "a=plain".to_string()),
            (4, "c=committed".to_string()),
            (5, "COMMIT".to_string()),
            (6, "b=plain".to_string()),
            (7, "b=open".to_string()),
            (8, "z=seals the segments before it".to_string()),
        ][..],
        "aborted records go; the ABORT marker stays until delete.retention.ms has passed",
    );
    // An hour on, the abort marker goes; the commit marker stays with its
    // record, and nothing past the last stable offset was touched.
    let later = NOW + 3_600_000;
    while log.clean(later).unwrap().is_some() {}
    let later_pass = read_batches(&log);
    assert!(!later_pass.iter().any(|(_, what)| what == "ABORT"), "{later_pass:?}");
    assert!(later_pass.contains(&(5, "COMMIT".to_string())) && later_pass.contains(&(7, "b=open".to_string())), "{later_pass:?}");
}

#[test]
fn a_paced_pass_moves_no_more_bytes_per_second_than_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::create(&dir.path().join("p"), compacted(1000), NOW).unwrap();
    for round in 0..40 {
        let batch: Vec<(String, Option<String>)> = (0..20).map(|i| (format!("key-{i}"), Some(format!("{round}-{}", "v".repeat(1000))))).collect();
        append_keyed(&log, &batch, Compression::None);
    }
    let sealed = log.size_bytes().saturating_sub(64 * 1024);
    let rate = 4 * 1024 * 1024;
    let started = std::time::Instant::now();
    let stats = log.clean_paced(NOW, &runnel_log::IoPacer::new(rate)).unwrap().expect("a pass ran");
    let elapsed = started.elapsed().as_secs_f64();
    // The pass reads every sealed segment at least once.
    let least = sealed as f64 / rate as f64;
    assert!(stats.segments_rewritten > 0);
    assert!(elapsed >= least * 0.9, "read {sealed} bytes in {elapsed:.3} s, faster than {rate} bytes/s");
}
