//! runnel-log: the storage engine behind every partition.
//!
//! A partition is a directory of segments. Each segment is a file of Kafka
//! v2 record batches stored exactly as produced (with the broker-assigned
//! base offset written in), plus a sparse offset index and a time index.
//! Batches are validated by header and checksum, never decoded record by
//! record. See ARCHITECTURE.md for the format and the invariants.

pub mod batch;
pub mod cleaner;
mod error;
pub mod index;
mod log;
pub mod producer_state;
pub mod records;
mod segment;
mod sync;

pub use error::{BatchError, LogError, RecordsError};
pub use log::{segment_file_name, Appended, Bounds, CleanPoint, CleanStats, Corruption, IoPacer, LogConfig, OpenMode, PartitionLog, ReadChunk};
pub use producer_state::SequenceError;
