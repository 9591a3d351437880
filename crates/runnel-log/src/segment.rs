//! One segment: a file of record batches starting at `base_offset`, with
//! its offset and time indexes.
//!
//! Sealed segments (every one but the newest) were fsynced when the log
//! rolled past them, so they are trusted as they are: opening one reads
//! only its indexes, and a damaged batch inside is reported when a reader
//! reaches it, never truncated away. Only the active segment is checked at
//! start-up, up to its clean point or, after a crash, batch by batch.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::{self, BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use crate::error::LogError;
use crate::index::{IndexFile, OffsetEntry, TimeEntry};

#[derive(Debug)]
pub(crate) struct Segment {
    pub base_offset: i64,
    pub file: Arc<File>,
    /// Bytes of whole batches in the file.
    pub size: u64,
    /// One past the last offset stored here.
    pub next_offset: i64,
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: i64,
    /// Wall-clock time the segment was opened for writing, for `segment.ms`.
    pub created_ms: i64,
    pub log_path: Arc<Path>,
    offset_index: IndexFile<OffsetEntry>,
    time_index: IndexFile<TimeEntry>,
    bytes_since_index: u64,
    /// Batches were written since the last [`Segment::sync`].
    dirty: bool,
}

/// How far the active segment can be trusted when it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActiveRecovery {
    /// A clean shutdown recorded that the file held exactly `size` bytes of
    /// whole batches: those are trusted, anything after is cut off.
    Clean { size: u64 },
    /// After a crash: checksum every batch and truncate at the first torn,
    /// corrupt or out-of-order one.
    Crash,
}

pub(crate) fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

fn paths(dir: &Path, base_offset: i64) -> (PathBuf, PathBuf, PathBuf) {
    let stem = file_stem(base_offset);
    (dir.join(format!("{stem}.log")), dir.join(format!("{stem}.index")), dir.join(format!("{stem}.timeindex")))
}

fn modified_ms(file: &File, default: i64) -> i64 {
    file.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(default, |d| d.as_millis() as i64)
}

impl Segment {
    /// A new, empty segment; `reserve` bytes of disk are allocated for it
    /// up front (`preallocate`) where the filesystem supports it.
    pub fn create(dir: &Path, base_offset: i64, now_ms: i64, reserve: Option<u64>) -> io::Result<Segment> {
        let (log_path, _, _) = paths(dir, base_offset);
        let file = OpenOptions::new().create(true).read(true).write(true).truncate(true).open(&log_path)?;
        if let Some(bytes) = reserve {
            preallocate(&file, bytes);
        }
        Ok(Self::unindexed(dir, base_offset, file, now_ms))
    }

    /// Whether either index is too full for another entry under
    /// `segment.index.bytes` (8-byte offset and 12-byte time entries).
    pub fn indexes_full(&self, max_bytes: u64) -> bool {
        (self.offset_index.entries().len() as u64 + 1) * 8 > max_bytes || (self.time_index.entries().len() as u64 + 1) * 12 > max_bytes
    }

    /// A segment over `file` that knows nothing of its contents yet: no
    /// batches, empty indexes (replacing any files when persisted).
    fn unindexed(dir: &Path, base_offset: i64, file: File, created_ms: i64) -> Segment {
        let (log_path, index_path, time_path) = paths(dir, base_offset);
        Segment {
            base_offset,
            file: Arc::new(file),
            size: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            created_ms,
            log_path: log_path.into(),
            offset_index: IndexFile::rebuilt(&index_path, Vec::new()),
            time_index: IndexFile::rebuilt(&time_path, Vec::new()),
            bytes_since_index: 0,
            dirty: false,
        }
    }

    /// Takes indexes loaded from their files, and the newest timestamp the
    /// time index knows.
    fn adopt_indexes(&mut self, offset_index: IndexFile<OffsetEntry>, time_index: IndexFile<TimeEntry>) {
        self.offset_index = offset_index;
        self.time_index = time_index;
        if let Some(last) = self.time_index.entries().last() {
            self.max_timestamp = last.timestamp;
            self.offset_of_max_timestamp = self.base_offset + last.relative_offset as i64;
        }
    }

    /// Opens a sealed segment, whose offsets end where the next segment's
    /// begin. Its bytes are not read unless an index must be rebuilt.
    pub fn open_sealed(dir: &Path, base_offset: i64, next_offset: i64, index_interval: u64, now_ms: i64) -> io::Result<Segment> {
        let (log_path, index_path, time_path) = paths(dir, base_offset);
        let file = OpenOptions::new().read(true).open(&log_path)?;
        let size = file.metadata()?.len();
        let created_ms = modified_ms(&file, now_ms);
        let mut segment = Self::unindexed(dir, base_offset, file, created_ms);
        match load_indexes(&index_path, &time_path, size)? {
            Some((offset_index, time_index)) => segment.adopt_indexes(offset_index, time_index),
            // A damaged batch is reported by the rebuild and kept.
            None => {
                let _ = segment.rebuild_indexes(size, index_interval);
            }
        }
        segment.size = size;
        segment.next_offset = next_offset;
        Ok(segment)
    }

    /// Opens the newest segment, the one appends go to.
    pub fn open_active(dir: &Path, base_offset: i64, recovery: ActiveRecovery, index_interval: u64, now_ms: i64) -> io::Result<Segment> {
        let (log_path, index_path, time_path) = paths(dir, base_offset);
        let file = OpenOptions::new().read(true).write(true).open(&log_path)?;
        let file_len = file.metadata()?.len();
        let created_ms = modified_ms(&file, now_ms);
        let ActiveRecovery::Clean { size } = recovery else {
            return Self::recover(file, dir, base_offset, index_interval, created_ms);
        };
        if file_len < size {
            tracing::error!(segment = %log_path.display(), file_len, clean_size = size, "segment is shorter than at the clean shutdown; recovering it batch by batch");
            return Self::recover(file, dir, base_offset, index_interval, created_ms);
        }
        if file_len > size {
            tracing::warn!(segment = %log_path.display(), discarded = file_len - size, "discarding bytes written after the clean shutdown");
            file.set_len(size)?;
            file.sync_all()?;
        }
        let mut segment = Self::unindexed(dir, base_offset, file, created_ms);
        match load_indexes(&index_path, &time_path, size)? {
            Some((offset_index, time_index)) => {
                segment.adopt_indexes(offset_index, time_index);
                let from = segment.offset_index.entries().last().map_or(0, |e| e.position as u64);
                let scanned = scan_headers(&segment.file, &segment.log_path, from, size, |_, header| {
                    segment.bytes_since_index += header.size as u64;
                    note_batch(&mut segment.next_offset, &mut segment.max_timestamp, &mut segment.offset_of_max_timestamp, header);
                    false
                });
                if let Err(e) = scanned {
                    tracing::error!(error = %e, "active segment is damaged before its clean point; recovering it batch by batch");
                    let file = OpenOptions::new().read(true).write(true).open(&segment.log_path)?;
                    return Self::recover(file, dir, base_offset, index_interval, created_ms);
                }
            }
            None => {
                if let Err(e) = segment.rebuild_indexes(size, index_interval) {
                    tracing::error!(error = %e, "active segment is damaged before its clean point; recovering it batch by batch");
                    let file = OpenOptions::new().read(true).write(true).open(&segment.log_path)?;
                    return Self::recover(file, dir, base_offset, index_interval, created_ms);
                }
            }
        }
        segment.size = size;
        Ok(segment)
    }

    /// Rebuilds both indexes from batch headers up to `end`. A damaged
    /// batch ends the rebuild: the indexes then cover what precedes it and
    /// the damage is reported to whoever reads that far.
    fn rebuild_indexes(&mut self, end: u64, index_interval: u64) -> io::Result<()> {
        let (_, index_path, time_path) = paths(self.log_path.parent().expect("segment lives in a directory"), self.base_offset);
        let mut offset_entries = Vec::new();
        let mut time_entries = Vec::new();
        let mut bytes_since_index = 0u64;
        let mut max_timestamp = -1;
        let base_offset = self.base_offset;
        let scanned = scan_headers(&self.file, &self.log_path, 0, end, |pos, header| {
            let relative_offset = (header.base_offset - base_offset) as u32;
            if offset_entries.is_empty() || bytes_since_index >= index_interval {
                offset_entries.push(OffsetEntry { relative_offset, position: pos as u32 });
                bytes_since_index = 0;
            }
            if header.max_timestamp > max_timestamp {
                max_timestamp = header.max_timestamp;
                time_entries.push(TimeEntry { timestamp: max_timestamp, relative_offset });
            }
            bytes_since_index += header.size as u64;
            note_batch(&mut self.next_offset, &mut self.max_timestamp, &mut self.offset_of_max_timestamp, header);
            false
        });
        self.offset_index = IndexFile::rebuilt(&index_path, offset_entries);
        self.time_index = IndexFile::rebuilt(&time_path, time_entries);
        self.bytes_since_index = bytes_since_index;
        match scanned {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "index rebuild stopped at a damaged batch");
                Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
            }
        }
    }

    /// Rebuilds a segment by checksumming every batch; truncates the file at
    /// the first torn, corrupt or out-of-order batch.
    fn recover(file: File, dir: &Path, base_offset: i64, index_interval: u64, created_ms: i64) -> io::Result<Segment> {
        let (log_path, index_path, time_path) = paths(dir, base_offset);
        let file_len = file.metadata()?.len();
        let mut reader = BufReader::with_capacity(1 << 20, &file);
        let mut offset_entries = Vec::new();
        let mut time_entries: Vec<TimeEntry> = Vec::new();
        let mut buf = Vec::new();
        let mut pos = 0u64;
        let mut next_offset = base_offset;
        let mut max_timestamp = -1;
        let mut offset_of_max_timestamp = -1;
        let mut bytes_since_index = 0u64;
        loop {
            buf.resize(LOG_OVERHEAD, 0);
            if reader.read_exact(&mut buf).is_err() {
                break;
            }
            let batch_length = i32::from_be_bytes(buf[8..12].try_into().expect("4 bytes"));
            if batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 || pos + LOG_OVERHEAD as u64 + batch_length as u64 > file_len {
                break;
            }
            buf.resize(LOG_OVERHEAD + batch_length as usize, 0);
            if reader.read_exact(&mut buf[LOG_OVERHEAD..]).is_err() {
                break;
            }
            let Ok(header) = batch::validate_stored(&buf) else { break };
            if header.base_offset < next_offset {
                break;
            }
            let relative_offset = (header.base_offset - base_offset) as u32;
            if offset_entries.is_empty() || bytes_since_index >= index_interval {
                offset_entries.push(OffsetEntry { relative_offset, position: pos as u32 });
                bytes_since_index = 0;
            }
            if header.max_timestamp > max_timestamp {
                time_entries.push(TimeEntry { timestamp: header.max_timestamp, relative_offset });
            }
            note_batch(&mut next_offset, &mut max_timestamp, &mut offset_of_max_timestamp, &header);
            bytes_since_index += header.size as u64;
            pos += header.size as u64;
        }
        drop(reader);
        if pos < file_len {
            tracing::warn!(segment = %log_path.display(), valid_bytes = pos, file_len, "truncating torn or corrupt log tail");
            file.set_len(pos)?;
            file.sync_all()?;
        }
        Ok(Segment {
            base_offset,
            file: Arc::new(file),
            size: pos,
            next_offset,
            max_timestamp,
            offset_of_max_timestamp,
            created_ms,
            log_path: log_path.into(),
            offset_index: IndexFile::rebuilt(&index_path, offset_entries),
            time_index: IndexFile::rebuilt(&time_path, time_entries),
            bytes_since_index,
            dirty: false,
        })
    }

    /// Appends whole, offset-assigned batches with one write.
    pub fn append(&mut self, bytes: &[u8], headers: &[BatchHeader], index_interval: u64) -> io::Result<()> {
        self.dirty = true;
        self.file.write_all_at(bytes, self.size)?;
        let mut pos = self.size;
        for header in headers {
            let relative_offset = (header.base_offset - self.base_offset) as u32;
            if self.offset_index.entries().is_empty() || self.bytes_since_index >= index_interval {
                self.offset_index.push(OffsetEntry { relative_offset, position: pos as u32 });
                self.bytes_since_index = 0;
            }
            if header.max_timestamp > self.max_timestamp {
                self.time_index.push(TimeEntry { timestamp: header.max_timestamp, relative_offset });
            }
            note_batch(&mut self.next_offset, &mut self.max_timestamp, &mut self.offset_of_max_timestamp, header);
            self.bytes_since_index += header.size as u64;
            pos += header.size as u64;
        }
        self.size = pos;
        Ok(())
    }

    /// Where to start reading for `offset`: a batch boundary at or before it.
    pub fn scan_start(&self, offset: i64) -> u64 {
        let relative = (offset - self.base_offset).clamp(0, u32::MAX as i64) as u32;
        self.offset_index.floor(relative).map_or(0, |e| e.position as u64)
    }

    /// Where to start looking for the first record with a timestamp of at
    /// least `timestamp`.
    pub fn time_scan_start(&self, timestamp: i64) -> u64 {
        match self.time_index.floor_below(timestamp) {
            Some(entry) => self.scan_start(self.base_offset + entry.relative_offset as i64),
            None => 0,
        }
    }

    /// Makes the batches and both indexes durable; a segment untouched
    /// since its last sync costs nothing.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
        }
        self.persist_indexes(true)
    }

    /// Writes index entries not yet in their files, fsyncing them if `sync`.
    pub fn persist_indexes(&mut self, sync: bool) -> io::Result<()> {
        self.offset_index.persist(sync)?;
        self.time_index.persist(sync)
    }

    /// Renames the segment's files `<name>.deleted` (readers holding them
    /// open read on); returns the new paths of those that existed.
    pub fn rename_deleted(&self) -> io::Result<Vec<PathBuf>> {
        let dir = self.log_path.parent().expect("segment lives in a partition directory");
        let (log, index, time) = paths(dir, self.base_offset);
        let mut renamed = Vec::new();
        for path in [log, index, time] {
            let mut deleted = path.clone().into_os_string();
            deleted.push(".");
            deleted.push(crate::log::DELETED_EXTENSION);
            match std::fs::rename(&path, &deleted) {
                Ok(()) => renamed.push(PathBuf::from(deleted)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(renamed)
    }

    pub fn delete_files(&self) -> io::Result<()> {
        let dir = self.log_path.parent().expect("segment lives in a partition directory");
        let (log, index, time) = paths(dir, self.base_offset);
        for path in [log, index, time] {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Removes a segment's index files, which are rebuilt from the segment
/// when next needed (after the cleaner rewrote it).
pub(crate) fn remove_index_files(dir: &Path, base_offset: i64) -> io::Result<()> {
    let (_, index, time) = paths(dir, base_offset);
    for path in [index, time] {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

fn note_batch(next_offset: &mut i64, max_timestamp: &mut i64, offset_of_max_timestamp: &mut i64, header: &BatchHeader) {
    if header.max_timestamp > *max_timestamp {
        *max_timestamp = header.max_timestamp;
        *offset_of_max_timestamp = header.base_offset;
    }
    *next_offset = header.last_offset() + 1;
}

/// Loads both index files, or `None` if either is missing or does not fit
/// a segment of `size` bytes.
fn load_indexes(index_path: &Path, time_path: &Path, size: u64) -> io::Result<Option<(IndexFile<OffsetEntry>, IndexFile<TimeEntry>)>> {
    let (Some(offset_index), Some(time_index)) = (IndexFile::<OffsetEntry>::load(index_path)?, IndexFile::<TimeEntry>::load(time_path)?) else {
        return Ok(None);
    };
    let entries = offset_index.entries();
    let sane = entries.last().is_none_or(|e| (e.position as u64) < size) && entries.windows(2).all(|w| w[0].relative_offset < w[1].relative_offset);
    Ok(sane.then_some((offset_index, time_index)))
}

/// Bytes read at a time while walking batch headers: enough to hold the
/// headers of many small batches, little waste when batches are large.
const SCAN_CHUNK: usize = 64 * 1024;

/// Walks the batch headers of a segment file from `pos` to `end`, reading
/// it in chunks, and returns the first batch `visit` accepts. A header that
/// cannot be parsed, or a batch that overruns `end`, is corruption: reported
/// with the segment and byte position so an operator can find it.
pub(crate) fn scan_headers(
    file: &File,
    path: &Path,
    mut pos: u64,
    end: u64,
    mut visit: impl FnMut(u64, &BatchHeader) -> bool,
) -> Result<Option<(u64, BatchHeader)>, LogError> {
    let corrupt = |position: u64, reason: String| LogError::Corrupt { segment: path.to_path_buf(), position, reason };
    let mut buf = Vec::new();
    let mut buf_start = 0u64;
    while pos < end {
        if pos + HEADER_LEN as u64 > end {
            return Err(corrupt(pos, format!("{} bytes at the end are too few for a batch header", end - pos)));
        }
        let in_buf = pos >= buf_start && pos + HEADER_LEN as u64 <= buf_start + buf.len() as u64;
        if !in_buf {
            let len = (SCAN_CHUNK as u64).min(end - pos) as usize;
            buf.resize(len, 0);
            file.read_exact_at(&mut buf, pos)?;
            buf_start = pos;
        }
        let at = (pos - buf_start) as usize;
        let header = BatchHeader::parse(&buf[at..]).map_err(|e| corrupt(pos, e.to_string()))?;
        if pos + header.size as u64 > end {
            return Err(corrupt(pos, format!("batch of {} bytes overruns the segment's {end} bytes", header.size)));
        }
        if visit(pos, &header) {
            return Ok(Some((pos, header)));
        }
        pos += header.size as u64;
    }
    Ok(None)
}

/// Reserves disk for `bytes` without changing the file's size, so readers
/// and recovery see only what was written. Filesystems without
/// `fallocate` simply do without.
fn preallocate(file: &File, bytes: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for writing for the whole call.
    let result = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, bytes.min(i64::MAX as u64) as libc::off_t) };
    if result != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "could not preallocate a segment");
    }
}
