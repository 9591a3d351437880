//! A partition's log: an ordered set of segments, the offsets that bound
//! it, and the group-commit flusher that makes appends durable.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};

use crate::batch::{self, BatchHeader};
use crate::cleaner::{self, Cleaned, CompactionConfig, MarkerTracker, OffsetMap};
use crate::error::LogError;
use crate::producer_state::{self, AbortedTxn, ProducerStates};
use crate::segment::{self, scan_headers, ActiveRecovery, Segment};
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
    /// Bytes of batches between two offset index entries
    /// (`index.interval.bytes`).
    pub index_interval_bytes: u64,
    /// Roll once the active segment's offset or time index would grow past
    /// this many bytes (`segment.index.bytes`; 8-byte offset entries,
    /// 12-byte time entries).
    pub segment_index_bytes: u64,
    /// Up to this much is taken off `segment_ms` for each segment
    /// (`segment.jitter.ms`), so partitions created together do not all
    /// roll at once. The share is a hash of the partition and the
    /// segment's base offset, fixed for the segment's life.
    pub segment_jitter_ms: i64,
    /// Fsync once this many messages are not yet durable
    /// (`flush.messages`); `i64::MAX` leaves it to the broker's policy.
    pub flush_messages: i64,
    /// Fsync once this long has passed since the last fsync (`flush.ms`);
    /// `i64::MAX` leaves it to the broker's policy.
    pub flush_ms: i64,
    /// A segment that retention, DeleteRecords or the cleaner removes is
    /// renamed `*.deleted` and its files removed this much later
    /// (`file.delete.delay.ms`); 0 removes them at once.
    pub file_delete_delay_ms: i64,
    /// Reserve `segment_bytes` of disk for each new segment up front
    /// (`preallocate`), without changing its visible size.
    pub preallocate: bool,
    /// Forget an idempotent producer whose newest batch is this old
    /// (`producer.id.expiration.ms`).
    pub producer_id_expiration_ms: i64,
    /// Set for compacted partitions (`cleanup.policy` with `compact`).
    pub compaction: Option<CompactionConfig>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
            segment_jitter_ms: 0,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            file_delete_delay_ms: 60_000,
            preallocate: false,
            producer_id_expiration_ms: 24 * 3600 * 1000,
            compaction: None,
        }
    }
}

/// Where appended batches landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Set when `flush.messages` calls for an fsync covering this append
    /// before it is acknowledged, whatever `acks` asked.
    pub flush_due: bool,
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_start_offset: i64,
    /// The request retried a batch already in the log: nothing was written
    /// and `base_offset` is where the original landed.
    pub duplicate: bool,
}

/// How a partition's log is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// After a clean shutdown that recorded this clean point: everything
    /// up to it is trusted without being read again.
    Clean(CleanPoint),
    /// After a crash, or for a log without a clean point: the active
    /// segment is checksummed batch by batch and a torn tail truncated.
    Recover,
}

/// Where a log ended when it was closed cleanly: its active segment and
/// that segment's size. Segments before it were fsynced when the log rolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanPoint {
    pub active_base: i64,
    pub active_size: u64,
}

/// A damaged batch found in a segment, kept so operators can see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    pub segment: PathBuf,
    pub position: u64,
    pub reason: String,
    /// Reads that have hit damage in this log since it was opened.
    pub reads: u64,
}

/// Whole batches read from the log, ready to put on the wire.
#[derive(Debug, Clone)]
pub struct ReadChunk {
    pub bytes: Bytes,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub last_stable_offset: i64,
}

/// Offsets that bound a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    /// The last stable offset: below it every transaction is decided; a
    /// read_committed consumer reads no further.
    pub last_stable_offset: i64,
}

/// The durable, append-only log of one partition.
///
/// Appends are serialised by an internal mutex held only for the write
/// system call; reads copy out what they need under the lock and do their
/// I/O after dropping it.
///
/// The log also owns the partition's idempotent-producer state, so the
/// sequence check and the append happen under one lock, and the state is
/// snapshotted at every roll and on close.
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    inner: Mutex<Inner>,
    flusher: Flusher,
    corruption: Mutex<Option<Corruption>>,
}

#[derive(Debug)]
struct Inner {
    config: LogConfig,
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    producers: ProducerStates,
    /// The log end offset at which a snapshot of `producers` was last
    /// written or loaded, so a close with nothing new writes none.
    snapshot_at: Option<i64>,
    /// Offsets below this were covered by a compaction pass; what follows
    /// is the dirty section.
    cleaned_to: i64,
    /// When the oldest tombstone a pass kept may go (`i64::MAX`: none kept).
    tombstones_due_ms: i64,
    /// Transactions aborted in this partition, by marker offset; kept
    /// durable in `ABORTED_FILE`.
    aborted: Vec<AbortedTxn>,
    /// Files of removed segments, renamed `*.deleted`, and when each may
    /// go (`file.delete.delay.ms`).
    doomed: Vec<(i64, PathBuf)>,
}

const LOG_START_FILE: &str = "log-start-offset";
const CLEANER_CHECKPOINT_FILE: &str = "cleaner-checkpoint";
/// Aborted transactions: 24-byte entries (producer id, first offset, last
/// offset), each fsynced before its ABORT marker is acknowledged.
const ABORTED_FILE: &str = "aborted-transactions";
/// The extension of a removed segment's files waiting for
/// `file.delete.delay.ms`; any left at open are removed.
pub(crate) const DELETED_EXTENSION: &str = "deleted";
/// A segment being rewritten by the cleaner; deleted at open.
const CLEANED_SUFFIX: &str = ".log.cleaned";
/// A rewritten segment, durable and ready to replace the original; the
/// swap is completed at open.
const SWAP_SUFFIX: &str = ".log.swap";

/// What a compaction pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CleanStats {
    pub segments_rewritten: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Where the pass's dirty section ended: the next pass starts there.
    pub cleaned_to: i64,
}

/// What a compaction pass works on.
struct CleaningPlan {
    config: CompactionConfig,
    /// Sealed segments old enough to clean, and wholly below the last
    /// stable offset, oldest first.
    cleanable: Vec<SealedRef>,
    /// Where the dirty section starts.
    checkpoint: i64,
    /// The partition's aborted transactions, whose records are dropped.
    aborted: Vec<AbortedTxn>,
}

/// What rewriting one segment did.
struct Rewritten {
    /// The new size, if anything changed.
    size: Option<u64>,
    /// Tombstones still in the segment.
    tombstones: usize,
}

/// A sealed segment as the cleaner sees it, read without the log's lock.
struct SealedRef {
    base_offset: i64,
    next_offset: i64,
    size: u64,
    max_timestamp: i64,
    file: std::sync::Arc<std::fs::File>,
    path: std::sync::Arc<Path>,
}

/// Makes a directory's entries (new, renamed or deleted files) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

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
        let end = self.next_offset();
        Bounds {
            log_start_offset: self.log_start_offset,
            log_end_offset: end,
            last_stable_offset: self.producers.first_unstable_offset().map_or(end, |o| o.min(end)),
        }
    }

    fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size).sum()
    }

    /// Whether `incoming` more bytes call for a new segment first: the
    /// active one would outgrow `segment.bytes` or its indexes
    /// `segment.index.bytes`, or it is older than `segment.ms` less its
    /// jitter. An empty segment never rolls.
    fn roll_due(&self, dir: &Path, incoming: usize, now_ms: i64) -> bool {
        let active = self.active();
        if active.size == 0 {
            return false;
        }
        let config = &self.config;
        let jitter = roll_jitter(dir, active.base_offset, config.segment_jitter_ms);
        active.size + incoming as u64 > config.segment_bytes
            || now_ms - active.created_ms >= config.segment_ms.saturating_sub(jitter)
            || active.indexes_full(config.segment_index_bytes)
    }

    /// A new, empty segment at `base_offset`, with its disk reserved when
    /// the topic preallocates.
    fn new_segment(&self, dir: &Path, base_offset: i64, now_ms: i64) -> Result<Segment, LogError> {
        let reserve = self.config.preallocate.then_some(self.config.segment_bytes);
        Ok(Segment::create(dir, base_offset, now_ms, reserve)?)
    }
}

/// This segment's share of `segment.jitter.ms`: a hash of the partition's
/// directory and the base offset, so it is spread across partitions and
/// stays the same across restarts.
fn roll_jitter(dir: &Path, base_offset: i64, jitter_ms: i64) -> i64 {
    if jitter_ms <= 0 {
        return 0;
    }
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (dir, base_offset).hash(&mut hasher);
    (hasher.finish() % jitter_ms as u64) as i64
}

impl PartitionLog {
    /// Opens or creates the log in `dir`: sealed segments as they are,
    /// the active one as `mode` says, then producer state from the newest
    /// snapshot plus the batches after it.
    pub fn open(dir: &Path, config: LogConfig, mode: OpenMode, now_ms: i64) -> Result<PartitionLog, LogError> {
        std::fs::create_dir_all(dir)?;
        finish_interrupted_cleaning(dir)?;
        remove_deleted_files(dir)?;
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
        for (i, &base) in bases.iter().enumerate() {
            let segment = match bases.get(i + 1) {
                Some(&next_base) => Segment::open_sealed(dir, base, next_base, config.index_interval_bytes, now_ms)?,
                None => {
                    let recovery = match mode {
                        OpenMode::Clean(point) if point.active_base == base => ActiveRecovery::Clean { size: point.active_size },
                        OpenMode::Clean(point) => {
                            tracing::warn!(dir = %dir.display(), clean_base = point.active_base, active_base = base, "clean point names another segment; recovering");
                            ActiveRecovery::Crash
                        }
                        OpenMode::Recover => ActiveRecovery::Crash,
                    };
                    Segment::open_active(dir, base, recovery, config.index_interval_bytes, now_ms)?
                }
            };
            segments.insert(base, segment);
        }
        if segments.is_empty() {
            segments.insert(0, Segment::create(dir, 0, now_ms, config.preallocate.then_some(config.segment_bytes))?);
        }
        let first_base = *segments.keys().next().expect("non-empty");
        let persisted_start = std::fs::read_to_string(dir.join(LOG_START_FILE)).ok().and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(0);
        let (cleaned_to, tombstones_due_ms) = read_cleaner_checkpoint(dir);
        let mut inner = Inner {
            config,
            segments,
            log_start_offset: first_base.max(persisted_start),
            producers: ProducerStates::default(),
            snapshot_at: None,
            cleaned_to,
            tombstones_due_ms,
            aborted: Vec::new(),
            doomed: Vec::new(),
        };
        inner.log_start_offset = inner.log_start_offset.min(inner.next_offset());
        let (producers, snapshot_at, replayed_aborts) = load_producer_states(dir, &inner)?;
        inner.producers = producers;
        inner.aborted = load_aborted(dir, inner.log_start_offset, inner.next_offset(), replayed_aborts)?;
        let end = inner.next_offset();
        let nothing_to_snapshot = end == first_base && inner.producers.is_empty();
        inner.snapshot_at = (snapshot_at == Some(end) || nothing_to_snapshot).then_some(end);
        let expiration = inner.config.producer_id_expiration_ms;
        inner.producers.expire(now_ms, expiration);
        let synced = inner.next_offset();
        Ok(PartitionLog { dir: dir.to_path_buf(), inner: Mutex::new(inner), flusher: Flusher::new(synced), corruption: Mutex::new(None) })
    }

    /// Creates the log of a new partition in `dir`, which must not exist:
    /// one directory and one empty segment, nothing to read.
    pub fn create(dir: &Path, config: LogConfig, now_ms: i64) -> Result<PartitionLog, LogError> {
        std::fs::create_dir(dir)?;
        let segments = BTreeMap::from([(0, Segment::create(dir, 0, now_ms, config.preallocate.then_some(config.segment_bytes))?)]);
        let inner = Inner {
            config,
            segments,
            log_start_offset: 0,
            producers: ProducerStates::default(),
            snapshot_at: Some(0),
            cleaned_to: 0,
            tombstones_due_ms: i64::MAX,
            aborted: Vec::new(),
            doomed: Vec::new(),
        };
        Ok(PartitionLog { dir: dir.to_path_buf(), inner: Mutex::new(inner), flusher: Flusher::new(0), corruption: Mutex::new(None) })
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
    ///
    /// Idempotent producers' sequences are checked first: a retry of a
    /// batch already in the log is acknowledged at its original offset
    /// without writing, and a gap or a fenced epoch is refused.
    pub fn append(&self, payload: &mut [u8], headers: &mut [BatchHeader], log_append_time: Option<i64>, now_ms: i64) -> Result<Appended, LogError> {
        let mut inner = self.lock();
        if let Some(original) = inner.producers.check_all(headers)? {
            let last_offset = original + headers.first().map_or(0, |h| h.last_offset_delta as i64);
            return Ok(Appended { base_offset: original, last_offset, log_start_offset: inner.log_start_offset, duplicate: true, flush_due: false });
        }
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
        if inner.roll_due(&self.dir, payload.len(), now_ms) {
            Self::roll(&self.dir, &mut inner, now_ms)?;
        }
        inner.active_mut().append(payload, headers, index_interval)?;
        for header in headers.iter() {
            inner.producers.record(header);
        }
        let flush_due = next - self.flusher.synced() >= inner.config.flush_messages;
        Ok(Appended { base_offset, last_offset: next - 1, log_start_offset: inner.log_start_offset, duplicate: false, flush_due })
    }

    /// Appends a transaction marker for `producer_id`: its open transaction
    /// in this partition ends, committed or aborted. An abort is recorded
    /// (durably) in the aborted-transaction list first. Returns the
    /// marker's offset; the caller makes it durable with
    /// [`PartitionLog::flush_to`] before reporting the marker written.
    pub fn append_marker(&self, producer_id: i64, producer_epoch: i16, commit: bool, coordinator_epoch: i32, now_ms: i64) -> Result<i64, LogError> {
        let mut inner = self.lock();
        let mut bytes = batch::control_batch(producer_id, producer_epoch, commit, coordinator_epoch, now_ms);
        let offset = inner.next_offset();
        batch::assign_offset(&mut bytes, offset, 0);
        let header = batch::validate(&bytes)?;
        let index_interval = inner.config.index_interval_bytes;
        if inner.roll_due(&self.dir, bytes.len(), now_ms) {
            Self::roll(&self.dir, &mut inner, now_ms)?;
        }
        inner.active_mut().append(&bytes, &[header], index_interval)?;
        // A crash before the entry is durable is repaired at start-up,
        // when replaying the marker finds it missing.
        if let Some(aborted) = inner.producers.record_marker(producer_id, producer_epoch, offset, commit) {
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join(ABORTED_FILE))?;
            std::io::Write::write_all(&mut file, &encode_aborted(&aborted))?;
            file.sync_data()?;
            inner.aborted.push(aborted);
        }
        Ok(offset)
    }

    /// Like [`PartitionLog::read`], for a read_committed consumer: nothing
    /// at or past the last stable offset, and the aborted transactions in
    /// what was read, which the consumer skips.
    pub fn read_stable(&self, offset: i64, max_bytes: usize, min_one_batch: bool) -> Result<(ReadChunk, Vec<AbortedTxn>), LogError> {
        let mut chunk = self.read(offset, max_bytes, min_one_batch)?;
        let stable = chunk.last_stable_offset;
        let (mut pos, mut end) = (0, offset);
        while let Ok(header) = BatchHeader::parse(&chunk.bytes[pos..]) {
            if header.base_offset >= stable {
                break;
            }
            pos += header.size;
            end = header.last_offset() + 1;
        }
        chunk.bytes.truncate(pos);
        let aborted = self.aborted_transactions(offset, end);
        Ok((chunk, aborted))
    }

    /// Aborted transactions a read_committed consumer must skip when it
    /// reads `[from, to)`: those whose records or marker lie in the range.
    pub fn aborted_transactions(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let inner = self.lock();
        let start = inner.aborted.partition_point(|a| a.last_offset < from);
        inner.aborted[start..].iter().filter(|a| a.first_offset < to).copied().collect()
    }

    /// Seals the active segment (durably), snapshots producer state at the
    /// log end and starts a new segment there.
    fn roll(dir: &Path, inner: &mut Inner, now_ms: i64) -> Result<(), LogError> {
        inner.active_mut().sync()?;
        let next = inner.next_offset();
        std::fs::write(producer_state::snapshot_path(dir, next), inner.producers.encode_snapshot())?;
        let segment = inner.new_segment(dir, next, now_ms)?;
        inner.segments.insert(next, segment);
        sync_dir(dir)?;
        for offset in producer_state::snapshot_offsets(dir)? {
            if offset < next && !inner.segments.contains_key(&offset) {
                remove_if_present(&producer_state::snapshot_path(dir, offset))?;
            }
        }
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

    /// Offsets below this are known to be on stable storage.
    pub fn durable_offset(&self) -> i64 {
        self.flusher.synced()
    }

    /// Synchronously makes the whole log durable, indexes included.
    pub fn sync(&self) -> Result<(), LogError> {
        let mut inner = self.lock();
        inner.active_mut().sync()?;
        self.flusher.synced_to(inner.next_offset());
        Ok(())
    }

    /// Upkeep that time calls for, run every second or so by the broker:
    /// an fsync when `flush.ms` has passed since the last one with data
    /// not yet durable, and the removal of deleted segments' files whose
    /// `file.delete.delay.ms` is up.
    pub async fn maintain(&self, now_ms: i64) -> Result<(), LogError> {
        let (flush_to, doomed) = {
            let mut inner = self.lock();
            let end = inner.next_offset();
            let flush_ms = inner.config.flush_ms;
            let flush = (flush_ms != i64::MAX && self.flusher.synced() < end && self.flusher.since_last_sync_ms() >= flush_ms).then_some(end);
            let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut inner.doomed).into_iter().partition(|(at, _)| *at <= now_ms);
            inner.doomed = waiting;
            (flush, due)
        };
        for (_, path) in doomed {
            remove_if_present(&path)?;
        }
        if let Some(end) = flush_to {
            self.flush_to(end).await?;
        }
        Ok(())
    }

    /// Makes the log durable and records where it ends, with a producer
    /// state snapshot there, so the next open trusts it without reading
    /// it. The log may still be used afterwards.
    ///
    /// A log untouched since it was opened costs no write and no fsync,
    /// so closing thousands of idle partitions is quick.
    pub fn close(&self) -> Result<CleanPoint, LogError> {
        let mut inner = self.lock();
        for segment in inner.segments.values_mut() {
            segment.persist_indexes(true)?;
        }
        inner.active_mut().sync()?;
        let end = inner.next_offset();
        if inner.snapshot_at != Some(end) {
            std::fs::write(producer_state::snapshot_path(&self.dir, end), inner.producers.encode_snapshot())?;
            sync_dir(&self.dir)?;
            inner.snapshot_at = Some(end);
        }
        let active = inner.active();
        Ok(CleanPoint { active_base: active.base_offset, active_size: active.size })
    }

    /// Forgets idempotent producers silent for longer than
    /// `producer.id.expiration.ms`; returns how many.
    pub fn expire_producers(&self, now_ms: i64) -> usize {
        let mut inner = self.lock();
        let expiration = inner.config.producer_id_expiration_ms;
        inner.producers.expire(now_ms, expiration)
    }

    /// The producers this partition remembers, for DescribeProducers.
    pub fn producers(&self) -> Vec<crate::producer_state::ProducerSummary> {
        self.lock().producers.summaries()
    }

    /// How many idempotent producers this partition remembers.
    pub fn producer_count(&self) -> usize {
        self.lock().producers.len()
    }

    /// The damage readers last ran into, if any.
    pub fn corruption(&self) -> Option<Corruption> {
        self.corruption.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Remembers damage a reader hit, for [`PartitionLog::corruption`].
    fn note<T>(&self, result: Result<T, LogError>) -> Result<T, LogError> {
        if let Err(LogError::Corrupt { segment, position, reason }) = &result {
            let mut slot = self.corruption.lock().unwrap_or_else(|p| p.into_inner());
            let reads = slot.as_ref().map_or(0, |c| c.reads) + 1;
            *slot = Some(Corruption { segment: segment.clone(), position: *position, reason: reason.clone(), reads });
        }
        result
    }

    /// Reads whole batches starting with the one holding `offset`, up to
    /// `max_bytes`. With `min_one_batch`, returns the first batch even if it
    /// alone exceeds `max_bytes`, so a consumer can always make progress.
    pub fn read(&self, offset: i64, max_bytes: usize, min_one_batch: bool) -> Result<ReadChunk, LogError> {
        let result = self.read_unnoted(offset, max_bytes, min_one_batch);
        self.note(result)
    }

    fn read_unnoted(&self, offset: i64, max_bytes: usize, min_one_batch: bool) -> Result<ReadChunk, LogError> {
        let (candidates, bounds) = {
            let inner = self.lock();
            let bounds = inner.bounds();
            if offset < bounds.log_start_offset || offset > bounds.log_end_offset {
                return Err(LogError::OffsetOutOfRange { offset, log_start: bounds.log_start_offset, log_end: bounds.log_end_offset });
            }
            // The segment holding `offset`, then the next one with
            // batches: compaction may have left no batch at or after
            // `offset` in the first, never in the second.
            if offset >= bounds.log_end_offset {
                return Ok(ReadChunk {
                    bytes: Bytes::new(),
                    log_start_offset: bounds.log_start_offset,
                    log_end_offset: bounds.log_end_offset,
                    last_stable_offset: bounds.last_stable_offset,
                });
            }
            let holding = inner.segments.range(..=offset).next_back().filter(|(_, s)| offset < s.next_offset && s.size > 0);
            // Only a sealed segment can end before the log does.
            let active_base = inner.active().base_offset;
            let next = holding.is_none_or(|(&base, _)| base < active_base).then(|| inner.segments.range(offset + 1..).find(|(_, s)| s.size > 0)).flatten();
            let candidate = |(_, s): (&i64, &Segment)| (s.file.clone(), s.log_path.clone(), s.scan_start(offset), s.size);
            ([holding.map(candidate), next.map(candidate)], bounds)
        };
        let empty = || ReadChunk {
            bytes: Bytes::new(),
            log_start_offset: bounds.log_start_offset,
            log_end_offset: bounds.log_end_offset,
            last_stable_offset: bounds.last_stable_offset,
        };
        let mut found = None;
        for (file, path, start, end) in candidates.into_iter().flatten() {
            if let Some((pos, first)) = scan_headers(&file, &path, start, end, |_, h| h.last_offset() >= offset)? {
                found = Some((file, end, pos, first));
                break;
            }
        }
        let Some((file, end, pos, first)) = found else { return Ok(empty()) };
        let available = (end - pos) as usize;
        let mut want = available.min(max_bytes);
        if want < first.size {
            if !min_one_batch {
                return Ok(empty());
            }
            want = first.size;
        }
        let mut buf = BytesMut::zeroed(want);
        file.read_exact_at(&mut buf, pos)?;
        let whole = whole_batches_len(&buf);
        buf.truncate(whole);
        Ok(ReadChunk {
            bytes: buf.freeze(),
            log_start_offset: bounds.log_start_offset,
            log_end_offset: bounds.log_end_offset,
            last_stable_offset: bounds.last_stable_offset,
        })
    }

    /// The first batch holding a record with a timestamp at or after
    /// `timestamp`. The caller finds the exact record inside it.
    pub fn batch_for_timestamp(&self, timestamp: i64) -> Result<Option<Bytes>, LogError> {
        let result = self.batch_for_timestamp_unnoted(timestamp);
        self.note(result)
    }

    fn batch_for_timestamp_unnoted(&self, timestamp: i64) -> Result<Option<Bytes>, LogError> {
        let candidates: Vec<_> = {
            let inner = self.lock();
            inner
                .segments
                .values()
                .filter(|s| s.max_timestamp >= timestamp && s.next_offset > inner.log_start_offset)
                .map(|s| (s.file.clone(), s.log_path.clone(), s.time_scan_start(timestamp), s.size))
                .collect()
        };
        let log_start = self.bounds().log_start_offset;
        for (file, path, start, end) in candidates {
            let found = scan_headers(&file, &path, start, end, |_, h| h.max_timestamp >= timestamp && h.last_offset() >= log_start)?;
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
        let result = self.batch_with_max_timestamp_unnoted();
        self.note(result)
    }

    fn batch_with_max_timestamp_unnoted(&self) -> Result<Option<Bytes>, LogError> {
        let target = {
            let inner = self.lock();
            inner
                .segments
                .values()
                .filter(|s| s.next_offset > inner.log_start_offset && s.max_timestamp >= 0)
                .max_by_key(|s| s.max_timestamp)
                .map(|s| (s.file.clone(), s.log_path.clone(), s.scan_start(s.offset_of_max_timestamp), s.size, s.offset_of_max_timestamp))
        };
        let Some((file, path, start, end, offset)) = target else { return Ok(None) };
        let Some((pos, header)) = scan_headers(&file, &path, start, end, |_, h| h.base_offset >= offset)? else { return Ok(None) };
        let mut buf = BytesMut::zeroed(header.size);
        file.read_exact_at(&mut buf, pos)?;
        Ok(Some(buf.freeze()))
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
            sync_dir(&self.dir)?;
            Self::delete_segments_below_start(&self.dir, &mut inner)?;
        }
        Ok(inner.log_start_offset)
    }

    fn delete_segments_below_start(dir: &Path, inner: &mut Inner) -> Result<(), LogError> {
        loop {
            let mut bases = inner.segments.keys();
            let (Some(&first), Some(&second)) = (bases.next(), bases.next()) else { return Ok(()) };
            if second > inner.log_start_offset {
                return Ok(());
            }
            let segment = inner.segments.remove(&first).expect("key exists");
            let delay = inner.config.file_delete_delay_ms;
            delete_segment(dir, &segment, delay, &mut inner.doomed)?;
            let start = inner.log_start_offset;
            inner.aborted.retain(|a| a.last_offset >= start);
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
            // An empty oldest segment is the active one, or a sealed one
            // compaction emptied (kept to hold the log start): that one
            // goes as soon as retention is on.
            let emptied = oldest.size == 0 && inner.segments.len() > 1;
            if oldest.size == 0 && !emptied {
                break;
            }
            let expired = config.retention_ms >= 0 && (emptied || oldest.max_timestamp >= 0 && now_ms - oldest.max_timestamp > config.retention_ms);
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
            let delay = inner.config.file_delete_delay_ms;
            delete_segment(&self.dir, &segment, delay, &mut inner.doomed)?;
            let first = *inner.segments.keys().next().expect("active segment remains");
            inner.log_start_offset = inner.log_start_offset.max(first);
            let start = inner.log_start_offset;
            inner.aborted.retain(|a| a.last_offset >= start);
            deleted += 1;
        }
        Ok(deleted)
    }

    /// One compaction pass (see [`crate::cleaner`]), if the log is
    /// compacted and its dirty section is large or old enough, or kept
    /// tombstones have outlived `delete.retention.ms`. Segments are
    /// rewritten beside the originals without the log's lock, then swapped
    /// in under it; readers holding an original keep reading it. A crash
    /// at any step leaves either the original or the rewritten segment in
    /// place (see `finish_interrupted_cleaning`).
    pub fn clean(&self, now_ms: i64) -> Result<Option<CleanStats>, LogError> {
        self.clean_paced(now_ms, &IoPacer::unlimited())
    }

    /// [`PartitionLog::clean`], reading and writing no faster than `pacer`
    /// allows, so that cleaning leaves the disk to produce and fetch.
    pub fn clean_paced(&self, now_ms: i64, pacer: &IoPacer) -> Result<Option<CleanStats>, LogError> {
        let Some(plan) = self.plan_cleaning(now_ms) else { return Ok(None) };
        let checkpoint = plan.checkpoint;
        let mut map = OffsetMap::new(plan.config.max_keys_per_pass);
        let mut map_end = checkpoint;
        for segment in plan.cleanable.iter().filter(|s| s.next_offset > checkpoint) {
            let mut full = false;
            for_each_batch(segment, pacer, |header, bytes| {
                if header.last_offset() < checkpoint || full || cleaner::in_aborted_transaction(&plan.aborted, header) {
                    return Ok(());
                }
                if cleaner::map_batch(&mut map, bytes, header)? {
                    map_end = header.last_offset() + 1;
                } else {
                    full = true;
                }
                Ok(())
            })?;
            if full {
                break;
            }
            map_end = segment.next_offset;
        }
        let mut stats = CleanStats { cleaned_to: map_end, ..CleanStats::default() };
        let retention = plan.config.delete_retention_ms;
        let mut tombstones_due = i64::MAX;
        let mut markers = MarkerTracker::default();
        for segment in plan.cleanable.iter().filter(|s| s.base_offset < map_end) {
            // A tombstone (or an empty transaction's marker) goes once a
            // pass has already kept it and its segment's newest record is
            // older than delete.retention.ms.
            let drop_tombstones = segment.next_offset <= checkpoint && segment.max_timestamp < now_ms.saturating_sub(retention);
            let rewritten = self.rewrite_segment(&map, &plan.aborted, &mut markers, segment, drop_tombstones, pacer)?;
            if let Some(after) = rewritten.size {
                stats.segments_rewritten += 1;
                stats.bytes_before += segment.size;
                stats.bytes_after += after;
            }
            if rewritten.tombstones > 0 {
                tombstones_due = tombstones_due.min(segment.max_timestamp.saturating_add(retention).saturating_add(1));
            }
        }
        let mut inner = self.lock();
        inner.cleaned_to = map_end;
        inner.tombstones_due_ms = tombstones_due;
        let tmp = self.dir.join(format!("{CLEANER_CHECKPOINT_FILE}.tmp"));
        std::fs::write(&tmp, format!("{map_end} {tombstones_due}"))?;
        std::fs::rename(&tmp, self.dir.join(CLEANER_CHECKPOINT_FILE))?;
        Ok(Some(stats))
    }

    /// What a pass would clean, if one is due.
    fn plan_cleaning(&self, now_ms: i64) -> Option<CleaningPlan> {
        let inner = self.lock();
        let config = inner.config.compaction?;
        let active_base = inner.active().base_offset;
        let horizon = now_ms.saturating_sub(config.min_compaction_lag_ms);
        let stable = inner.producers.first_unstable_offset().unwrap_or(i64::MAX);
        let cleanable: Vec<SealedRef> = inner
            .segments
            .values()
            .filter(|s| s.base_offset < active_base)
            .take_while(|s| s.max_timestamp <= horizon && s.next_offset <= stable)
            .map(|s| SealedRef {
                base_offset: s.base_offset,
                next_offset: s.next_offset,
                size: s.size,
                max_timestamp: s.max_timestamp,
                file: s.file.clone(),
                path: s.log_path.clone(),
            })
            .collect();
        let checkpoint = inner.cleaned_to.max(inner.log_start_offset);
        let total: u64 = cleanable.iter().map(|s| s.size).sum();
        let dirty: Vec<&SealedRef> = cleanable.iter().filter(|s| s.next_offset > checkpoint).collect();
        let dirty_bytes: u64 = dirty.iter().map(|s| s.size).sum();
        let ratio_ppm = dirty_bytes.saturating_mul(1_000_000) / total.max(1);
        let overdue = dirty.first().is_some_and(|s| s.max_timestamp >= 0 && now_ms.saturating_sub(s.max_timestamp) > config.max_compaction_lag_ms);
        let dirty_enough = dirty_bytes > 0 && (ratio_ppm >= config.min_dirty_ratio_ppm as u64 || overdue);
        let tombstones_due = inner.tombstones_due_ms <= now_ms && total > 0;
        let aborted = inner.aborted.clone();
        (dirty_enough || tombstones_due).then_some(CleaningPlan { config, cleanable, checkpoint, aborted })
    }

    /// Writes the cleaned copy of `segment` and swaps it in, unless
    /// nothing in it changed.
    fn rewrite_segment(
        &self,
        map: &OffsetMap,
        aborted: &[AbortedTxn],
        markers: &mut MarkerTracker,
        segment: &SealedRef,
        drop_tombstones: bool,
        pacer: &IoPacer,
    ) -> Result<Rewritten, LogError> {
        use std::io::Write;
        let stem = segment::file_stem(segment.base_offset);
        let cleaned_path = self.dir.join(format!("{stem}{CLEANED_SUFFIX}"));
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&cleaned_path)?);
        let mut changed = false;
        let mut written = 0u64;
        let mut tombstones = 0;
        for_each_batch(segment, pacer, |header, bytes| {
            let (cleaned, kept_tombstones) = if cleaner::in_aborted_transaction(aborted, header) {
                (Cleaned::Empty, 0)
            } else if header.is_control() {
                match (markers.marker_is_empty(header.producer_id), drop_tombstones) {
                    (true, true) => (Cleaned::Empty, 0),
                    (true, false) => (Cleaned::Unchanged, 1),
                    (false, _) => (Cleaned::Unchanged, 0),
                }
            } else {
                cleaner::clean_batch(map, bytes, header, drop_tombstones)?
            };
            if header.is_transactional() && !header.is_control() && !matches!(cleaned, Cleaned::Empty) {
                markers.kept(header.producer_id);
            }
            tombstones += kept_tombstones;
            match cleaned {
                Cleaned::Unchanged => {
                    pacer.pace(bytes.len() as u64);
                    out.write_all(bytes)?;
                    written += bytes.len() as u64;
                }
                Cleaned::Rewritten(rewritten) => {
                    changed = true;
                    pacer.pace(rewritten.len() as u64);
                    out.write_all(&rewritten)?;
                    written += rewritten.len() as u64;
                }
                Cleaned::Empty => changed = true,
            }
            Ok(())
        })?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        let unchanged = Rewritten { size: None, tombstones };
        if !changed {
            drop(file);
            remove_if_present(&cleaned_path)?;
            return Ok(unchanged);
        }
        file.sync_all()?;
        drop(file);
        let swap_path = self.dir.join(format!("{stem}{SWAP_SUFFIX}"));
        std::fs::rename(&cleaned_path, &swap_path)?;
        sync_dir(&self.dir)?;
        let mut inner = self.lock();
        let active_base = inner.active().base_offset;
        let still_there = inner.segments.get(&segment.base_offset).is_some_and(|s| s.size == segment.size && s.base_offset < active_base);
        if !still_there {
            // Retention or DeleteRecords took the segment meanwhile.
            remove_if_present(&swap_path)?;
            return Ok(unchanged);
        }
        let first = *inner.segments.keys().next().expect("non-empty");
        if written == 0 && segment.base_offset != first {
            // Nothing left: the segment goes; reads skip the gap.
            let removed = inner.segments.remove(&segment.base_offset).expect("checked above");
            let delay = inner.config.file_delete_delay_ms;
            delete_segment(&self.dir, &removed, delay, &mut inner.doomed)?;
            remove_if_present(&swap_path)?;
        } else {
            segment::remove_index_files(&self.dir, segment.base_offset)?;
            std::fs::rename(&swap_path, &*segment.path)?;
            let index_interval = inner.config.index_interval_bytes;
            let reopened = Segment::open_sealed(&self.dir, segment.base_offset, segment.next_offset, index_interval, segment.max_timestamp)?;
            inner.segments.insert(segment.base_offset, reopened);
        }
        sync_dir(&self.dir)?;
        Ok(Rewritten { size: Some(written), tombstones })
    }

    /// Removes the partition's directory; the log must not be used after.
    pub fn delete(&self) -> Result<(), LogError> {
        std::fs::remove_dir_all(&self.dir)?;
        Ok(())
    }
}

/// Calls `visit` with every batch of a sealed segment, read in order in
/// large chunks. Reads are positional: the file's cursor is shared.
/// Visits every batch of a sealed segment in order, reading it no faster
/// than `pacer` allows.
fn for_each_batch(segment: &SealedRef, pacer: &IoPacer, mut visit: impl FnMut(&BatchHeader, &[u8]) -> Result<(), LogError>) -> Result<(), LogError> {
    let mut chunk = Chunk { bytes: Vec::new(), start: 0 };
    let mut pos = 0u64;
    while pos < segment.size {
        chunk.cover(segment, pos, batch::HEADER_LEN)?;
        let header = BatchHeader::parse(chunk.at(pos)).map_err(|e| corrupt(segment, pos, e.to_string()))?;
        if pos + header.size as u64 > segment.size {
            return Err(corrupt(segment, pos, format!("batch of {} bytes overruns the segment", header.size)));
        }
        chunk.cover(segment, pos, header.size)?;
        pacer.pace(header.size as u64);
        visit(&header, &chunk.at(pos)[..header.size])?;
        pos += header.size as u64;
    }
    Ok(())
}

fn corrupt(segment: &SealedRef, position: u64, reason: String) -> LogError {
    LogError::Corrupt { segment: segment.path.to_path_buf(), position, reason }
}

/// Bounds the cleaner's disk traffic to a rate in bytes per second
/// (`log.cleaner.io.max.bytes.per.second`), shared by every partition a
/// cleaner round visits: each byte read or written is paid for by
/// sleeping whenever the round runs ahead of the rate.
#[derive(Debug)]
pub struct IoPacer {
    bytes_per_second: f64,
    spent: Mutex<(std::time::Instant, f64)>,
}

impl IoPacer {
    pub fn new(bytes_per_second: u64) -> IoPacer {
        IoPacer { bytes_per_second: bytes_per_second.max(1) as f64, spent: Mutex::new((std::time::Instant::now(), 0.0)) }
    }

    pub fn unlimited() -> IoPacer {
        IoPacer { bytes_per_second: f64::INFINITY, spent: Mutex::new((std::time::Instant::now(), 0.0)) }
    }

    /// Accounts for `bytes` of I/O, sleeping until the rate allows it.
    pub fn pace(&self, bytes: u64) {
        if self.bytes_per_second.is_infinite() {
            return;
        }
        let wait = {
            let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
            spent.1 += bytes as f64;
            let due = spent.1 / self.bytes_per_second;
            let elapsed = spent.0.elapsed().as_secs_f64();
            if elapsed > 1.0 && due < elapsed {
                // Idle time is not saved up for a burst later.
                *spent = (std::time::Instant::now(), 0.0);
            }
            due - elapsed
        };
        if wait > 0.0 {
            std::thread::sleep(std::time::Duration::from_secs_f64(wait));
        }
    }
}

/// A window of a segment file held in memory.
struct Chunk {
    bytes: Vec<u8>,
    start: u64,
}

impl Chunk {
    const SIZE: usize = 1 << 20;

    /// Makes sure `len` bytes from `pos` are held, reading ahead a chunk.
    fn cover(&mut self, segment: &SealedRef, pos: u64, len: usize) -> Result<(), LogError> {
        if pos >= self.start && pos + len as u64 <= self.start + self.bytes.len() as u64 {
            return Ok(());
        }
        let want = len.max(Self::SIZE).min((segment.size - pos) as usize);
        self.bytes.resize(want, 0);
        segment.file.read_exact_at(&mut self.bytes, pos).map_err(|e| corrupt(segment, pos, e.to_string()))?;
        self.start = pos;
        Ok(())
    }

    fn at(&self, pos: u64) -> &[u8] {
        &self.bytes[(pos - self.start) as usize..]
    }
}

/// Where the last compaction pass ended and when its oldest kept
/// tombstone may go; a log never cleaned starts dirty from its beginning.
fn read_cleaner_checkpoint(dir: &Path) -> (i64, i64) {
    let text = std::fs::read_to_string(dir.join(CLEANER_CHECKPOINT_FILE)).unwrap_or_default();
    let mut fields = text.split_whitespace().map(|f| f.parse::<i64>().ok());
    let cleaned_to = fields.next().flatten().unwrap_or(0);
    let tombstones_due = fields.next().flatten().unwrap_or(i64::MAX);
    (cleaned_to, tombstones_due)
}

/// Completes what a crash interrupted: a rewritten segment that reached
/// its swap file is complete and durable, so it replaces the original
/// (whose indexes are rebuilt); one still being written is discarded.
fn finish_interrupted_cleaning(dir: &Path) -> Result<(), LogError> {
    let mut touched = false;
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(CLEANED_SUFFIX) {
            remove_if_present(&dir.join(&*name))?;
            touched = true;
        } else if let Some(stem) = name.strip_suffix(SWAP_SUFFIX) {
            let Ok(base) = stem.parse::<i64>() else { continue };
            segment::remove_index_files(dir, base)?;
            std::fs::rename(dir.join(&*name), dir.join(segment_file_name(base)))?;
            tracing::info!(dir = %dir.display(), base, "completed a compaction swap interrupted by a crash");
            touched = true;
        }
    }
    if touched {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Deletes a segment's files and the producer snapshot taken where it
/// began; later segments have snapshots of their own.
/// Removes a segment from the log's files: at once, or (with
/// `file.delete.delay.ms`) renamed `*.deleted` and queued in `doomed` for
/// [`PartitionLog::maintain`] to remove once the delay is up.
fn delete_segment(dir: &Path, segment: &Segment, delay_ms: i64, doomed: &mut Vec<(i64, PathBuf)>) -> Result<(), LogError> {
    remove_if_present(&producer_state::snapshot_path(dir, segment.base_offset))?;
    if delay_ms <= 0 {
        segment.delete_files()?;
        return Ok(());
    }
    let due = wall_clock_ms().saturating_add(delay_ms);
    doomed.extend(segment.rename_deleted()?.into_iter().map(|path| (due, path)));
    Ok(())
}

/// Milliseconds since the Unix epoch, for deletion delays.
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Removes `*.deleted` files a previous run left waiting for their delay.
fn remove_deleted_files(dir: &Path) -> Result<(), LogError> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == DELETED_EXTENSION) {
            remove_if_present(&path)?;
        }
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Rebuilds producer state: the newest readable snapshot at or below the
/// log end, then the headers of every batch after it (from the start of
/// the log if there is no snapshot). Snapshots past the log end (left by
/// data a crash took back) and damaged ones are deleted.
///
/// Also returns the offset of the snapshot used, if any.
fn load_producer_states(dir: &Path, inner: &Inner) -> Result<(ProducerStates, Option<i64>, Vec<AbortedTxn>), LogError> {
    let log_end = inner.next_offset();
    let mut from = *inner.segments.keys().next().expect("non-empty");
    let mut producers = ProducerStates::default();
    let mut snapshot = None;
    for offset in producer_state::snapshot_offsets(dir)?.into_iter().rev() {
        let path = producer_state::snapshot_path(dir, offset);
        if offset > log_end {
            remove_if_present(&path)?;
            continue;
        }
        match std::fs::read(&path).ok().and_then(|bytes| ProducerStates::decode_snapshot(&bytes)) {
            Some(loaded) => {
                producers = loaded;
                from = offset;
                snapshot = Some(offset);
                break;
            }
            None => {
                tracing::warn!(snapshot = %path.display(), "ignoring unreadable producer state snapshot");
                remove_if_present(&path)?;
            }
        }
    }
    let mut aborted = Vec::new();
    for segment in inner.segments.values().filter(|s| s.next_offset > from) {
        let replayed = scan_headers(&segment.file, &segment.log_path, segment.scan_start(from), segment.size, |pos, header| {
            if header.base_offset < from {
                return false;
            }
            if !header.is_control() {
                producers.record(header);
                return false;
            }
            // A marker: read its one record to know how the transaction
            // ended.
            let mut marker = vec![0u8; header.size];
            match segment.file.read_exact_at(&mut marker, pos).ok().and_then(|()| batch::marker_commits(&marker)) {
                Some(commit) => aborted.extend(producers.record_marker(header.producer_id, header.producer_epoch, header.base_offset, commit)),
                None => tracing::warn!(offset = header.base_offset, "skipping an unreadable transaction marker"),
            }
            false
        });
        if let Err(e) = replayed {
            tracing::error!(error = %e, "producer state replay skipped the rest of a damaged segment");
        }
    }
    Ok((producers, snapshot, aborted))
}

/// The partition's aborted transactions: the durable list, less what lies
/// below the log start or past the log end (a marker a crash took back is
/// written again by its coordinator), plus any that replaying markers
/// found missing from it.
fn load_aborted(dir: &Path, log_start: i64, log_end: i64, replayed: Vec<AbortedTxn>) -> Result<Vec<AbortedTxn>, LogError> {
    let bytes = match std::fs::read(dir.join(ABORTED_FILE)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let field = |entry: &[u8], at: usize| i64::from_be_bytes(entry[at..at + 8].try_into().expect("8 bytes"));
    let mut aborted: Vec<AbortedTxn> = bytes
        .chunks_exact(ABORTED_ENTRY_LEN)
        .map(|e| AbortedTxn { producer_id: field(e, 0), first_offset: field(e, 8), last_offset: field(e, 16) })
        .filter(|a| a.last_offset >= log_start && a.last_offset < log_end)
        .collect();
    let missing: Vec<AbortedTxn> = replayed.into_iter().filter(|r| !aborted.contains(r)).collect();
    let changed = !missing.is_empty() || aborted.len() * ABORTED_ENTRY_LEN != bytes.len();
    aborted.extend(missing);
    aborted.sort_by_key(|a| (a.last_offset, a.producer_id));
    aborted.dedup();
    if changed {
        write_aborted(dir, &aborted)?;
    }
    Ok(aborted)
}

const ABORTED_ENTRY_LEN: usize = 24;

fn encode_aborted(entry: &AbortedTxn) -> [u8; ABORTED_ENTRY_LEN] {
    let mut out = [0u8; ABORTED_ENTRY_LEN];
    out[..8].copy_from_slice(&entry.producer_id.to_be_bytes());
    out[8..16].copy_from_slice(&entry.first_offset.to_be_bytes());
    out[16..].copy_from_slice(&entry.last_offset.to_be_bytes());
    out
}

/// Replaces the aborted-transaction file with `aborted`, atomically.
fn write_aborted(dir: &Path, aborted: &[AbortedTxn]) -> Result<(), LogError> {
    let tmp = dir.join(format!("{ABORTED_FILE}.tmp"));
    std::fs::write(&tmp, aborted.iter().flat_map(encode_aborted).collect::<Vec<u8>>())?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, dir.join(ABORTED_FILE))?;
    sync_dir(dir)?;
    Ok(())
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
