//! Transactions in the log: the last stable offset, markers, the aborted
//! list a read_committed consumer needs, and all of it across restarts.

use runnel_log::batch::{testing, validate};
use runnel_log::producer_state::AbortedTxn;
use runnel_log::{LogConfig, OpenMode, PartitionLog};

use super::NOW;

fn append_txn(log: &PartitionLog, producer_id: i64, sequence: i32, values: &[&[u8]]) -> i64 {
    let mut bytes = testing::transactional_batch(NOW, values, producer_id, 0, sequence);
    let mut headers = vec![validate(&bytes).unwrap()];
    log.append(&mut bytes, &mut headers, None, NOW).unwrap().base_offset
}

fn append_plain(log: &PartitionLog, values: &[&[u8]]) -> i64 {
    let mut bytes = testing::batch(NOW, values);
    let mut headers = vec![validate(&bytes).unwrap()];
    log.append(&mut bytes, &mut headers, None, NOW).unwrap().base_offset
}

fn aborted(producer_id: i64, first_offset: i64, last_offset: i64) -> AbortedTxn {
    AbortedTxn { producer_id, first_offset, last_offset }
}

/// Offsets of the batches a read_committed consumer gets from `offset`.
fn stable_batches(log: &PartitionLog, offset: i64) -> Vec<i64> {
    let (chunk, _) = log.read_stable(offset, 1 << 20, true).unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < chunk.bytes.len() {
        let header = runnel_log::batch::BatchHeader::parse(&chunk.bytes[pos..]).unwrap();
        out.push(header.base_offset);
        pos += header.size;
    }
    out
}

#[test]
fn open_transactions_hold_the_last_stable_offset_and_aborts_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default(), OpenMode::Recover, NOW).unwrap();
    assert_eq!(append_txn(&log, 7, 0, &[b"a", b"b"]), 0);
    assert_eq!(append_plain(&log, &[b"plain"]), 2);
    assert_eq!(append_txn(&log, 9, 0, &[b"c"]), 3);
    assert_eq!(append_txn(&log, 7, 2, &[b"d"]), 4);
    let bounds = log.bounds();
    assert_eq!((bounds.last_stable_offset, bounds.log_end_offset), (0, 5));
    assert_eq!(stable_batches(&log, 0), Vec::<i64>::new(), "nothing is stable yet");

    assert_eq!(log.append_marker(7, 0, false, 0, NOW).unwrap(), 5);
    assert_eq!(log.bounds().last_stable_offset, 3, "producer 9's transaction is still open");
    assert_eq!(stable_batches(&log, 0), vec![0, 2]);
    assert_eq!(log.aborted_transactions(0, 3), vec![aborted(7, 0, 5)]);
    assert_eq!(log.read_stable(0, 1 << 20, true).unwrap().1, vec![aborted(7, 0, 5)], "a read_committed read names the abort it holds");

    assert_eq!(log.append_marker(9, 0, true, 0, NOW).unwrap(), 6);
    assert_eq!(log.bounds().last_stable_offset, 7);
    assert_eq!(stable_batches(&log, 0), vec![0, 2, 3, 4, 5, 6]);
    assert_eq!(log.aborted_transactions(0, 7), vec![aborted(7, 0, 5)], "commits are not listed");
    assert_eq!(log.aborted_transactions(6, 7), vec![], "a range after the abort needs nothing");
    assert_eq!(log.aborted_transactions(5, 7), vec![aborted(7, 0, 5)], "a range holding the marker does");
}

#[test]
fn transaction_state_survives_clean_restarts_and_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default(), OpenMode::Recover, NOW).unwrap();
    append_txn(&log, 7, 0, &[b"a"]);
    log.append_marker(7, 0, false, 0, NOW).unwrap();
    append_txn(&log, 8, 0, &[b"open"]);
    let point = log.close().unwrap();
    drop(log);

    // A clean restart: the open transaction still holds the LSO.
    let log = PartitionLog::open(dir.path(), LogConfig::default(), OpenMode::Clean(point), NOW).unwrap();
    assert_eq!(log.bounds().last_stable_offset, 2);
    assert_eq!(log.aborted_transactions(0, 3), vec![aborted(7, 0, 1)]);
    log.append_marker(8, 0, false, 0, NOW).unwrap();
    log.sync().unwrap();
    drop(log);

    // A crash after the last marker reached the log but before its entry
    // reached the aborted list: replaying the marker restores the entry.
    let list = dir.path().join("aborted-transactions");
    let entries = std::fs::read(&list).unwrap();
    assert_eq!(entries.len(), 48);
    std::fs::write(&list, &entries[..24]).unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default(), OpenMode::Recover, NOW).unwrap();
    assert_eq!(log.bounds().last_stable_offset, 4);
    assert_eq!(log.aborted_transactions(0, 4), vec![aborted(7, 0, 1), aborted(8, 2, 3)]);
}
