//! Sparse indexes of one segment, kept in memory and appended to files
//! beside it so a clean restart need not rescan the segment.
//!
//! Both follow Kafka's on-disk layout: the offset index maps a relative
//! offset to a byte position (8 bytes an entry); the time index maps a
//! timestamp to a relative offset (12 bytes an entry). Indexes are hints:
//! recovery rebuilds any index that fails its sanity check.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

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

/// Appends entries to an index file and keeps them in memory for lookups.
#[derive(Debug)]
pub struct IndexFile<E> {
    file: File,
    entries: Vec<E>,
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
    /// Opens an index and loads its entries. A file whose length is not a
    /// whole number of entries is reported as `None`, to be rebuilt.
    pub fn load(path: &Path) -> io::Result<Option<Self>> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if bytes.len() % E::SIZE != 0 {
            return Ok(None);
        }
        let entries = bytes.chunks_exact(E::SIZE).map(E::decode).collect();
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Some(IndexFile { file, entries }))
    }

    /// Writes a fresh index holding `entries`, replacing any file there.
    pub fn create(path: &Path, entries: Vec<E>) -> io::Result<Self> {
        let mut bytes = Vec::with_capacity(entries.len() * E::SIZE);
        for entry in &entries {
            entry.encode(&mut bytes);
        }
        let mut file = OpenOptions::new().create(true).write(true).truncate(true).open(path)?;
        file.write_all(&bytes)?;
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(IndexFile { file, entries })
    }

    pub fn append(&mut self, entry: E) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(E::SIZE);
        entry.encode(&mut bytes);
        self.file.write_all(&bytes)?;
        self.entries.push(entry);
        Ok(())
    }

    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
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
