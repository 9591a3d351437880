//! Errors of the storage engine. The broker maps them to Kafka error codes
//! in one place (`runnel_broker::error`).

use std::io;
use std::path::PathBuf;

use crate::producer_state::SequenceError;

/// Why a record batch was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("record batch is truncated")]
    Truncated,
    #[error("record batch length {0} does not match its bytes")]
    BadLength(i32),
    #[error("record format v{0} is not supported; only v2 (magic 2) is")]
    UnsupportedMagic(i8),
    #[error("record batch CRC-32C does not match its contents")]
    CrcMismatch,
    #[error("record count {count} does not match last offset delta {last_offset_delta}")]
    BadRecordCount { count: i32, last_offset_delta: i32 },
    #[error("control batches may only be written by transaction markers")]
    UnexpectedControlBatch,
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge { size: usize, max: usize },
}

/// Why records could not be decoded or encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordsError {
    #[error("undecodable record batch: {0}")]
    Undecodable(String),
    #[error("could not encode records: {0}")]
    Unencodable(String),
}

/// Errors from a partition log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("offset {offset} is outside the log range [{log_start}, {log_end}]")]
    OffsetOutOfRange { offset: i64, log_start: i64, log_end: i64 },
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    #[error(transparent)]
    Records(#[from] RecordsError),
    #[error("damaged batch in {} at byte {position}: {reason}", segment.display())]
    Corrupt { segment: PathBuf, position: u64, reason: String },
    #[error("log I/O failed: {0}")]
    Io(#[from] io::Error),
}
