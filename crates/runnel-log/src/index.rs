//! Sparse indexes of one segment, kept in memory and written to files
//! beside it so a clean restart need not rescan the segment.
//!
//! Both follow Kafka's on-disk layout: the offset index maps a relative
//! offset to a byte position (8 bytes an entry); the time index maps a
//! timestamp to a relative offset (12 bytes an entry). Indexes are hints:
//! recovery rebuilds any index that fails its sanity check.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// One offset index entry: the batch whose base offset is `base_offset +
/// relative_offset` starts at byte `position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// One time index entry: records at or after `relative_offset` include one
/// with a timestamp of at least `timestamp`, and none before it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

/// A sparse index: entries in memory for lookups, written to its file
/// only when the segment is made durable (a roll, an interval fsync, a
/// clean shutdown). Holding no file descriptor, a partition costs one open
/// file (its active segment), whatever its number of segments.
#[derive(Debug)]
pub struct IndexFile<E> {
    path: PathBuf,
    entries: Vec<E>,
    /// Entries already in the file; the rest are appended by `persist`.
    persisted: usize,
    /// The file no longer matches `entries[..persisted]` and must be
    /// rewritten whole (a rebuilt index).
    rewrite: bool,
}

/// Fixed-width encoding of an index entry.
pub trait Entry: Copy {
    const SIZE: usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(buf: &[u8]) -> Self;
}

impl Entry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn decode(buf: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_be_bytes(buf[0..4].try_into().expect("4 bytes")),
            position: u32::from_be_bytes(buf[4..8].try_into().expect("4 bytes")),
        }
    }
}

impl Entry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(buf: &[u8]) -> Self {
        TimeEntry {
            timestamp: i64::from_be_bytes(buf[0..8].try_into().expect("8 bytes")),
            relative_offset: u32::from_be_bytes(buf[8..12].try_into().expect("4 bytes")),
        }
    }
}

impl<E: Entry> IndexFile<E> {
    /// Loads an index file. A missing file, or one whose length is not a
    /// whole number of entries, is reported as `None`, to be rebuilt.
    pub fn load(path: &Path) -> io::Result<Option<Self>> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if bytes.len() % E::SIZE != 0 {
            return Ok(None);
        }
        let entries: Vec<E> = bytes.chunks_exact(E::SIZE).map(E::decode).collect();
        Ok(Some(IndexFile { path: path.to_path_buf(), persisted: entries.len(), entries, rewrite: false }))
    }

    /// An index holding `entries`, replacing whatever file is at `path`
    /// when it is next persisted.
    pub fn rebuilt(path: &Path, entries: Vec<E>) -> Self {
        IndexFile { path: path.to_path_buf(), entries, persisted: 0, rewrite: true }
    }

    pub fn push(&mut self, entry: E) {
        self.entries.push(entry);
    }

    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    /// Writes the entries not yet in the file (or the whole index, if it
    /// was rebuilt), then fsyncs it when `sync` is set.
    pub fn persist(&mut self, sync: bool) -> io::Result<()> {
        if !self.rewrite && self.persisted == self.entries.len() {
            return Ok(());
        }
        if self.entries.is_empty() {
            // An empty index needs no file: a missing one is rebuilt from
            // an empty segment for free.
            match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            self.rewrite = false;
            return Ok(());
        }
        let from = if self.rewrite { 0 } else { self.persisted };
        let mut bytes = Vec::with_capacity((self.entries.len() - from) * E::SIZE);
        for entry in &self.entries[from..] {
            entry.encode(&mut bytes);
        }
        let mut options = OpenOptions::new();
        if self.rewrite {
            options.write(true).create(true).truncate(true);
        } else {
            options.append(true).create(true);
        }
        let mut file = options.open(&self.path)?;
        file.write_all(&bytes)?;
        if sync {
            file.sync_data()?;
        }
        self.persisted = self.entries.len();
        self.rewrite = false;
        Ok(())
    }
}

impl IndexFile<OffsetEntry> {
    /// The last entry at or before `relative_offset`: where a scan for that
    /// offset should start.
    pub fn floor(&self, relative_offset: u32) -> Option<OffsetEntry> {
        let idx = self.entries.partition_point(|e| e.relative_offset <= relative_offset);
        idx.checked_sub(1).map(|i| self.entries[i])
    }
}

impl IndexFile<TimeEntry> {
    /// The last entry whose timestamp is below `timestamp`: records before
    /// its offset cannot match, so a search may start there.
    pub fn floor_below(&self, timestamp: i64) -> Option<TimeEntry> {
        let idx = self.entries.partition_point(|e| e.timestamp < timestamp);
        idx.checked_sub(1).map(|i| self.entries[i])
    }
}
