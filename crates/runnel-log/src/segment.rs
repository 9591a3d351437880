//! One segment: a file of record batches starting at `base_offset`, with
//! its offset and time indexes.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::{self, BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use crate::index::{IndexFile, OffsetEntry, TimeEntry};

/// How much to trust a segment's file when opening it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Written before a clean shutdown: load the indexes and read only the
    /// headers after the last index entry.
    Trusted,
    /// Possibly torn by a crash: checksum every batch, truncate at the first
    /// bad one and rebuild the indexes.
    Recover,
}

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
    log_path: PathBuf,
    offset_index: IndexFile<OffsetEntry>,
    time_index: IndexFile<TimeEntry>,
    bytes_since_index: u64,
}

pub(crate) fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

fn paths(dir: &Path, base_offset: i64) -> (PathBuf, PathBuf, PathBuf) {
    let stem = file_stem(base_offset);
    (dir.join(format!("{stem}.log")), dir.join(format!("{stem}.index")), dir.join(format!("{stem}.timeindex")))
}

impl Segment {
    pub fn create(dir: &Path, base_offset: i64, now_ms: i64) -> io::Result<Segment> {
        let (log_path, index_path, time_path) = paths(dir, base_offset);
        let file = OpenOptions::new().create(true).read(true).write(true).truncate(true).open(&log_path)?;
        Ok(Segment {
            base_offset,
            file: Arc::new(file),
            size: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            created_ms: now_ms,
            log_path,
            offset_index: IndexFile::create(&index_path, Vec::new())?,
            time_index: IndexFile::create(&time_path, Vec::new())?,
            bytes_since_index: 0,
        })
    }

    pub fn open(dir: &Path, base_offset: i64, mode: OpenMode, index_interval: u64, now_ms: i64) -> io::Result<Segment> {
        let (log_path, index_path, time_path) = paths(dir, base_offset);
        let file = OpenOptions::new().read(true).write(true).open(&log_path)?;
        let file_len = file.metadata()?.len();
        let created_ms =
            file.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(now_ms, |d| d.as_millis() as i64);
        if mode == OpenMode::Trusted {
            let offset_index = IndexFile::<OffsetEntry>::load(&index_path)?;
            let time_index = IndexFile::<TimeEntry>::load(&time_path)?;
            if let (Some(offset_index), Some(time_index)) = (offset_index, time_index) {
                let sane = offset_index.entries().last().is_none_or(|e| (e.position as u64) < file_len)
                    && offset_index.entries().windows(2).all(|w| w[0].relative_offset < w[1].relative_offset);
                if sane {
                    let mut segment = Segment {
                        base_offset,
                        file: Arc::new(file),
                        size: 0,
                        next_offset: base_offset,
                        max_timestamp: -1,
                        offset_of_max_timestamp: -1,
                        created_ms,
                        log_path,
                        offset_index,
                        time_index,
                        bytes_since_index: 0,
                    };
                    if let Some(last) = segment.time_index.entries().last() {
                        segment.max_timestamp = last.timestamp;
                        segment.offset_of_max_timestamp = base_offset + last.relative_offset as i64;
                    }
                    if segment.scan_tail(file_len).is_ok() {
                        return Ok(segment);
                    }
                    let file = OpenOptions::new().read(true).write(true).open(&segment.log_path)?;
                    return Self::recover(file, dir, base_offset, index_interval, created_ms);
                }
            }
        }
        Self::recover(file, dir, base_offset, index_interval, created_ms)
    }

    /// Walks batch headers from the last offset index entry to the end of
    /// the file, trusting their contents.
    fn scan_tail(&mut self, file_len: u64) -> io::Result<()> {
        let mut pos = self.offset_index.entries().last().map_or(0, |e| e.position as u64);
        let mut header_buf = [0u8; HEADER_LEN];
        while pos < file_len {
            if pos + HEADER_LEN as u64 > file_len {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "partial header"));
            }
            self.file.read_exact_at(&mut header_buf, pos)?;
            let header = BatchHeader::parse(&header_buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if pos + header.size as u64 > file_len {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "partial batch"));
            }
            self.note_batch(&header);
            pos += header.size as u64;
        }
        self.size = pos;
        Ok(())
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
            let Ok(header) = batch::validate(&buf) else { break };
            if header.base_offset < next_offset {
                break;
            }
            let relative_offset = (header.base_offset - base_offset) as u32;
            if offset_entries.is_empty() || bytes_since_index >= index_interval {
                offset_entries.push(OffsetEntry { relative_offset, position: pos as u32 });
                bytes_since_index = 0;
            }
            if header.max_timestamp > max_timestamp {
                max_timestamp = header.max_timestamp;
                offset_of_max_timestamp = header.base_offset;
                time_entries.push(TimeEntry { timestamp: max_timestamp, relative_offset });
            }
            bytes_since_index += header.size as u64;
            next_offset = header.last_offset() + 1;
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
            log_path,
            offset_index: IndexFile::create(&index_path, offset_entries)?,
            time_index: IndexFile::create(&time_path, time_entries)?,
            bytes_since_index,
        })
    }

    fn note_batch(&mut self, header: &BatchHeader) {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.base_offset;
        }
        self.next_offset = header.last_offset() + 1;
    }

    /// Appends whole, offset-assigned batches with one write.
    pub fn append(&mut self, bytes: &[u8], headers: &[BatchHeader], index_interval: u64) -> io::Result<()> {
        self.file.write_all_at(bytes, self.size)?;
        let mut pos = self.size;
        for header in headers {
            let relative_offset = (header.base_offset - self.base_offset) as u32;
            if self.offset_index.entries().is_empty() || self.bytes_since_index >= index_interval {
                self.offset_index.append(OffsetEntry { relative_offset, position: pos as u32 })?;
                self.bytes_since_index = 0;
            }
            if header.max_timestamp > self.max_timestamp {
                self.time_index.append(TimeEntry { timestamp: header.max_timestamp, relative_offset })?;
            }
            self.note_batch(header);
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

    /// The last indexed batch boundary at or before byte `position`.
    pub fn batch_start_at_or_before(&self, position: u64) -> u64 {
        let entries = self.offset_index.entries();
        let idx = entries.partition_point(|e| e.position as u64 <= position);
        idx.checked_sub(1).map_or(0, |i| entries[i].position as u64)
    }

    /// Where to start looking for the first record with a timestamp of at
    /// least `timestamp`.
    pub fn time_scan_start(&self, timestamp: i64) -> u64 {
        match self.time_index.floor_below(timestamp) {
            Some(entry) => self.scan_start(self.base_offset + entry.relative_offset as i64),
            None => 0,
        }
    }

    /// Makes everything written so far durable, indexes included.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()?;
        self.offset_index.sync()?;
        self.time_index.sync()
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

/// Finds the first batch at or after `pos` that satisfies `matches`,
/// reading only headers. Stops at `end`.
pub(crate) fn find_batch(file: &File, mut pos: u64, end: u64, mut matches: impl FnMut(&BatchHeader) -> bool) -> io::Result<Option<(u64, BatchHeader)>> {
    let mut header_buf = [0u8; HEADER_LEN];
    while pos + HEADER_LEN as u64 <= end {
        file.read_exact_at(&mut header_buf, pos)?;
        let header = BatchHeader::parse(&header_buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if matches(&header) {
            return Ok(Some((pos, header)));
        }
        pos += header.size as u64;
    }
    Ok(None)
}
