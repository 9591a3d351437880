//! A partition's log: an ordered set of segments, the offsets that bound
//! it, and the group-commit flusher that makes appends durable.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};

use crate::batch::{self, BatchHeader};
use crate::error::LogError;
use crate::segment::{self, find_batch, OpenMode, Segment};
use crate::sync::Flusher;

/// Per-partition settings, derived from topic configs by the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll to a new segment once the active one would exceed this size.
    pub segment_bytes: u64,
    /// Roll to a new segment once the active one is this old.
    pub segment_ms: i64,
    /// Delete segments whose newest record is older than this; -1 keeps all.
    pub retention_ms: i64,
    /// Delete the oldest segments while the log exceeds this size; -1 keeps all.
    pub retention_bytes: i64,
    /// Bytes of batches between two offset index entries.
    pub index_interval_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            index_interval_bytes: 4096,
        }
    }
}

/// Where appended batches landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_start_offset: i64,
}

/// Whole batches read from the log, ready to put on the wire.
#[derive(Debug, Clone)]
pub struct ReadChunk {
    pub bytes: Bytes,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// Offsets that bound a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// The durable, append-only log of one partition.
///
/// Appends are serialised by an internal mutex held only for the write
/// system call; reads copy out what they need under the lock and do their
/// I/O after dropping it.
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    inner: Mutex<Inner>,
    flusher: Flusher,
}

#[derive(Debug)]
struct Inner {
    config: LogConfig,
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
}

const LOG_START_FILE: &str = "log-start-offset";

/// How much of the newest data is read to rebuild producer state. A
/// producer silent for longer than this much traffic is treated as new,
/// which only matters if it retries a batch from before a restart.
pub const PRODUCER_STATE_SCAN_BYTES: u64 = 16 << 20;

impl Inner {
    fn active(&self) -> &Segment {
        self.segments.values().next_back().expect("a log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments.values_mut().next_back().expect("a log always has an active segment")
    }

    fn next_offset(&self) -> i64 {
        self.active().next_offset
    }

    fn bounds(&self) -> Bounds {
        Bounds { log_start_offset: self.log_start_offset, log_end_offset: self.next_offset() }
    }

    fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size).sum()
    }
}

impl PartitionLog {
    /// Opens or creates the log in `dir`. With [`OpenMode::Recover`] the
    /// newest segment is checksummed and a torn tail truncated.
    pub fn open(dir: &Path, config: LogConfig, mode: OpenMode, now_ms: i64) -> Result<PartitionLog, LogError> {
        std::fs::create_dir_all(dir)?;
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name.strip_suffix(".log") {
                if let Ok(base) = stem.parse::<i64>() {
                    bases.push(base);
                }
            }
        }
        bases.sort_unstable();
        let mut segments = BTreeMap::new();
        let last = bases.last().copied();
        for base in bases {
            let segment_mode = if Some(base) == last { mode } else { OpenMode::Trusted };
            let segment = Segment::open(dir, base, segment_mode, config.index_interval_bytes, now_ms)?;
            segments.insert(base, segment);
        }
        if segments.is_empty() {
            segments.insert(0, Segment::create(dir, 0, now_ms)?);
        }
        let first_base = *segments.keys().next().expect("non-empty");
        let persisted_start = std::fs::read_to_string(dir.join(LOG_START_FILE)).ok().and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(0);
        let mut inner = Inner { config, segments, log_start_offset: first_base.max(persisted_start) };
        inner.log_start_offset = inner.log_start_offset.min(inner.next_offset());
        let synced = inner.next_offset();
        Ok(PartitionLog { dir: dir.to_path_buf(), inner: Mutex::new(inner), flusher: Flusher::new(synced) })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn set_config(&self, config: LogConfig) {
        self.lock().config = config;
    }

    pub fn bounds(&self) -> Bounds {
        self.lock().bounds()
    }

    pub fn size_bytes(&self) -> u64 {
        self.lock().size_bytes()
    }

    /// Appends validated batches (`payload` holds them back to back, in the
    /// order of `headers`), assigning consecutive offsets in place.
    pub fn append(&self, payload: &mut [u8], headers: &mut [BatchHeader], log_append_time: Option<i64>, now_ms: i64) -> Result<Appended, LogError> {
        let mut inner = self.lock();
        let base_offset = inner.next_offset();
        let mut next = base_offset;
        let mut pos = 0;
        for header in headers.iter_mut() {
            let bytes = &mut payload[pos..pos + header.size];
            batch::assign_offset(bytes, next, 0);
            if let Some(now) = log_append_time {
                batch::set_log_append_time(bytes, now);
                header.max_timestamp = now;
            }
            header.base_offset = next;
            next = header.last_offset() + 1;
            pos += header.size;
        }
        let index_interval = inner.config.index_interval_bytes;
        let active = inner.active();
        let too_big = active.size > 0 && active.size + payload.len() as u64 > inner.config.segment_bytes;
        let too_old = active.size > 0 && now_ms - active.created_ms >= inner.config.segment_ms;
        if too_big || too_old {
            Self::roll(&self.dir, &mut inner, now_ms)?;
        }
        inner.active_mut().append(payload, headers, index_interval)?;
        Ok(Appended { base_offset, last_offset: next - 1, log_start_offset: inner.log_start_offset })
    }

    /// Seals the active segment (durably) and starts a new one at the log end.
    fn roll(dir: &Path, inner: &mut Inner, now_ms: i64) -> Result<(), LogError> {
        inner.active().sync()?;
        let next = inner.next_offset();
        inner.segments.insert(next, Segment::create(dir, next, now_ms)?);
        Ok(())
    }

    /// Resolves once everything up to `end_offset` (exclusive) is on stable
    /// storage. Concurrent callers share fsyncs (group commit).
    pub async fn flush_to(&self, end_offset: i64) -> Result<(), LogError> {
        self.flusher
            .flush_to(end_offset, || {
                let inner = self.lock();
                (inner.active().file.clone(), inner.next_offset())
            })
            .await
            .map_err(LogError::Io)
    }

    /// Synchronously makes the whole log durable, indexes included.
    pub fn sync(&self) -> Result<(), LogError> {
        let inner = self.lock();
        inner.active().sync()?;
        Ok(())
    }

    /// Reads whole batches starting with the one holding `offset`, up to
    /// `max_bytes`. With `min_one_batch`, returns the first batch even if it
    /// alone exceeds `max_bytes`, so a consumer can always make progress.
    pub fn read(&self, offset: i64, max_bytes: usize, min_one_batch: bool) -> Result<ReadChunk, LogError> {
        let (file, start, end, bounds) = {
            let inner = self.lock();
            let bounds = inner.bounds();
            if offset < bounds.log_start_offset || offset > bounds.log_end_offset {
                return Err(LogError::OffsetOutOfRange { offset, log_start: bounds.log_start_offset, log_end: bounds.log_end_offset });
            }
            let found = inner
                .segments
                .range(..=offset)
                .next_back()
                .filter(|(_, s)| offset < s.next_offset)
                .or_else(|| inner.segments.range(offset..).find(|(_, s)| s.size > 0));
            match found {
                Some((_, segment)) if offset < bounds.log_end_offset => (segment.file.clone(), segment.scan_start(offset), segment.size, bounds),
                _ => return Ok(ReadChunk { bytes: Bytes::new(), log_start_offset: bounds.log_start_offset, log_end_offset: bounds.log_end_offset }),
            }
        };
        let Some((pos, first)) = find_batch(&file, start, end, |h| h.last_offset() >= offset)? else {
            return Ok(ReadChunk { bytes: Bytes::new(), log_start_offset: bounds.log_start_offset, log_end_offset: bounds.log_end_offset });
        };
        let available = (end - pos) as usize;
        let mut want = available.min(max_bytes);
        if want < first.size {
            if !min_one_batch {
                return Ok(ReadChunk { bytes: Bytes::new(), log_start_offset: bounds.log_start_offset, log_end_offset: bounds.log_end_offset });
            }
            want = first.size;
        }
        let mut buf = BytesMut::zeroed(want);
        file.read_exact_at(&mut buf, pos)?;
        let whole = whole_batches_len(&buf);
        buf.truncate(whole);
        Ok(ReadChunk { bytes: buf.freeze(), log_start_offset: bounds.log_start_offset, log_end_offset: bounds.log_end_offset })
    }

    /// The first batch holding a record with a timestamp at or after
    /// `timestamp`. The caller finds the exact record inside it.
    pub fn batch_for_timestamp(&self, timestamp: i64) -> Result<Option<Bytes>, LogError> {
        let candidates: Vec<_> = {
            let inner = self.lock();
            inner
                .segments
                .values()
                .filter(|s| s.max_timestamp >= timestamp && s.next_offset > inner.log_start_offset)
                .map(|s| (s.file.clone(), s.time_scan_start(timestamp), s.size))
                .collect()
        };
        let log_start = self.bounds().log_start_offset;
        for (file, start, end) in candidates {
            let found = find_batch(&file, start, end, |h| h.max_timestamp >= timestamp && h.last_offset() >= log_start)?;
            if let Some((pos, header)) = found {
                let mut buf = BytesMut::zeroed(header.size);
                file.read_exact_at(&mut buf, pos)?;
                return Ok(Some(buf.freeze()));
            }
        }
        Ok(None)
    }

    /// The batch holding the record with the largest timestamp (KIP-734).
    pub fn batch_with_max_timestamp(&self) -> Result<Option<Bytes>, LogError> {
        let target = {
            let inner = self.lock();
            inner
                .segments
                .values()
                .filter(|s| s.next_offset > inner.log_start_offset && s.max_timestamp >= 0)
                .max_by_key(|s| s.max_timestamp)
                .map(|s| (s.file.clone(), s.scan_start(s.offset_of_max_timestamp), s.size, s.offset_of_max_timestamp))
        };
        let Some((file, start, end, offset)) = target else { return Ok(None) };
        let Some((pos, header)) = find_batch(&file, start, end, |h| h.base_offset >= offset)? else { return Ok(None) };
        let mut buf = BytesMut::zeroed(header.size);
        file.read_exact_at(&mut buf, pos)?;
        Ok(Some(buf.freeze()))
    }

    /// Headers of the newest batches (the last [`PRODUCER_STATE_SCAN_BYTES`]
    /// of the active segment), oldest first: enough for the broker to
    /// rebuild idempotent-producer state after a restart without reading
    /// whole segments.
    pub fn recent_batch_headers(&self) -> Result<Vec<BatchHeader>, LogError> {
        let (file, start, end) = {
            let inner = self.lock();
            let active = inner.active();
            (active.file.clone(), active.batch_start_at_or_before(active.size.saturating_sub(PRODUCER_STATE_SCAN_BYTES)), active.size)
        };
        let mut headers = Vec::new();
        find_batch(&file, start, end, |h| {
            headers.push(*h);
            false
        })?;
        Ok(headers)
    }

    /// Advances the log start offset to `offset` (DeleteRecords), deleting
    /// segments that fall wholly below it. Returns the new log start.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        let mut inner = self.lock();
        let bounds = inner.bounds();
        if offset < 0 || offset > bounds.log_end_offset {
            return Err(LogError::OffsetOutOfRange { offset, log_start: bounds.log_start_offset, log_end: bounds.log_end_offset });
        }
        if offset > inner.log_start_offset {
            inner.log_start_offset = offset;
            let tmp = self.dir.join(format!("{LOG_START_FILE}.tmp"));
            std::fs::write(&tmp, offset.to_string())?;
            std::fs::rename(&tmp, self.dir.join(LOG_START_FILE))?;
            Self::delete_segments_below_start(&mut inner)?;
        }
        Ok(inner.log_start_offset)
    }

    fn delete_segments_below_start(inner: &mut Inner) -> Result<(), LogError> {
        loop {
            let mut bases = inner.segments.keys();
            let (Some(&first), Some(&second)) = (bases.next(), bases.next()) else { return Ok(()) };
            if second > inner.log_start_offset {
                return Ok(());
            }
            let segment = inner.segments.remove(&first).expect("key exists");
            segment.delete_files()?;
        }
    }

    /// Applies `retention.ms` and `retention.bytes`: deletes whole segments
    /// from the front and advances the log start offset. Returns how many
    /// segments were deleted.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize, LogError> {
        let mut inner = self.lock();
        let mut deleted = 0;
        loop {
            let config = inner.config.clone();
            let total = inner.size_bytes() as i64;
            let oldest = inner.segments.values().next().expect("non-empty");
            if oldest.size == 0 {
                break;
            }
            let expired = config.retention_ms >= 0 && oldest.max_timestamp >= 0 && now_ms - oldest.max_timestamp > config.retention_ms;
            let oversized = config.retention_bytes >= 0 && total - oldest.size as i64 >= config.retention_bytes;
            if !(expired || oversized) {
                break;
            }
            if inner.segments.len() == 1 {
                if !expired {
                    break;
                }
                Self::roll(&self.dir, &mut inner, now_ms)?;
            }
            let base = *inner.segments.keys().next().expect("non-empty");
            let segment = inner.segments.remove(&base).expect("key exists");
            segment.delete_files()?;
            let first = *inner.segments.keys().next().expect("active segment remains");
            inner.log_start_offset = inner.log_start_offset.max(first);
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Removes the partition's directory; the log must not be used after.
    pub fn delete(&self) -> Result<(), LogError> {
        std::fs::remove_dir_all(&self.dir)?;
        Ok(())
    }
}

/// Length of the prefix of `buf` made of whole batches.
fn whole_batches_len(buf: &[u8]) -> usize {
    let mut pos = 0;
    while let Ok(header) = BatchHeader::parse(&buf[pos..]) {
        if pos + header.size > buf.len() {
            break;
        }
        pos += header.size;
    }
    pos
}

/// Name of a segment file for `base_offset`, for tools and tests.
pub fn segment_file_name(base_offset: i64) -> String {
    format!("{}.log", segment::file_stem(base_offset))
}
