//! Windows, as Kafka Streams defines them: which windows a timestamp falls
//! in, and when a window closes. Pure; the window aggregation operators
//! use these.

/// A half-open time interval `[start, end)` in milliseconds (session
/// windows are closed: `[start, end]`, as in Kafka Streams).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// The first millisecond in the window.
    pub start: i64,
    /// The millisecond the window ends at (excluded for time windows,
    /// included for session and sliding windows).
    pub end: i64,
}

/// Tumbling (advance = size) or hopping (advance < size) time windows,
/// aligned to the epoch, with a grace period for late records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    /// How long each window is.
    pub size_ms: i64,
    /// How far apart windows start (the size, for tumbling windows).
    pub advance_ms: i64,
    /// How long after a window ends it still takes late records.
    pub grace_ms: i64,
}

impl TimeWindows {
    /// Tumbling windows of `size_ms` that accept records up to `grace_ms`
    /// after they end (Kafka Streams' `ofSizeAndGrace`).
    pub fn of_size_and_grace(size_ms: i64, grace_ms: i64) -> TimeWindows {
        TimeWindows { size_ms: size_ms.max(1), advance_ms: size_ms.max(1), grace_ms: grace_ms.max(0) }
    }

    /// Tumbling windows with no grace: a record is late as soon as stream
    /// time passes its window's end.
    pub fn of_size_without_grace(size_ms: i64) -> TimeWindows {
        TimeWindows::of_size_and_grace(size_ms, 0)
    }

    /// Hopping windows: a new window starts every `advance_ms`.
    pub fn advance_by(self, advance_ms: i64) -> TimeWindows {
        TimeWindows { advance_ms: advance_ms.clamp(1, self.size_ms), ..self }
    }

    /// Every window containing `timestamp`, oldest first.
    pub fn windows_for(&self, timestamp: i64) -> Vec<Window> {
        let first = (timestamp - self.size_ms + self.advance_ms).max(0);
        let mut start = first - first.rem_euclid(self.advance_ms);
        let mut windows = Vec::new();
        while start <= timestamp {
            windows.push(Window { start, end: start + self.size_ms });
            start += self.advance_ms;
        }
        windows
    }

    /// Whether a window still takes records at `stream_time` (the largest
    /// timestamp seen): it closes once stream time reaches its end plus
    /// the grace period.
    pub fn is_open(&self, window: &Window, stream_time: i64) -> bool {
        window.end > stream_time - self.grace_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_windows_hold_each_timestamp_once() {
        let windows = TimeWindows::of_size_and_grace(10_000, 5_000);
        assert_eq!(windows.windows_for(0), [Window { start: 0, end: 10_000 }]);
        assert_eq!(windows.windows_for(9_999), [Window { start: 0, end: 10_000 }]);
        assert_eq!(windows.windows_for(10_000), [Window { start: 10_000, end: 20_000 }]);
    }

    #[test]
    fn hopping_windows_overlap() {
        let windows = TimeWindows::of_size_without_grace(10_000).advance_by(5_000);
        assert_eq!(windows.windows_for(12_000), [Window { start: 5_000, end: 15_000 }, Window { start: 10_000, end: 20_000 }]);
        assert_eq!(windows.windows_for(3_000), [Window { start: 0, end: 10_000 }], "no window starts before the epoch");
    }

    #[test]
    fn a_window_closes_at_its_end_plus_grace() {
        let windows = TimeWindows::of_size_and_grace(10_000, 5_000);
        let window = Window { start: 0, end: 10_000 };
        assert!(windows.is_open(&window, 14_999));
        assert!(!windows.is_open(&window, 15_000));
    }
}

/// How far apart in time two records of a stream–stream join may be, with
/// a grace period for late records (Kafka Streams' `JoinWindows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindows {
    /// How much earlier than a left record a right record may be.
    pub before_ms: i64,
    /// How much later than a left record a right record may be.
    pub after_ms: i64,
    /// How long after the window a late record is still joined.
    pub grace_ms: i64,
}

impl JoinWindows {
    /// Records join when at most `difference_ms` apart either way
    /// (Kafka Streams' `ofTimeDifferenceAndGrace`).
    pub fn of_time_difference_and_grace(difference_ms: i64, grace_ms: i64) -> JoinWindows {
        JoinWindows { before_ms: difference_ms.max(0), after_ms: difference_ms.max(0), grace_ms: grace_ms.max(0) }
    }

    /// Whether a right record at `right` falls in the window of a left
    /// record at `left`.
    pub fn contains(&self, left: i64, right: i64) -> bool {
        left - self.before_ms <= right && right <= left + self.after_ms
    }

    /// How long a record must be kept to meet every partner it may still
    /// have, grace included.
    pub fn retention_ms(&self) -> i64 {
        self.before_ms + self.after_ms + self.grace_ms
    }
}

/// Session windows: a key's records belong to one session while each is
/// within `gap_ms` of the next; a session closes once stream time passes
/// its end plus the grace period (Kafka Streams' `SessionWindows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    /// How long a key may be quiet before its session ends.
    pub gap_ms: i64,
    /// How long after a session ends it still takes late records.
    pub grace_ms: i64,
}

impl SessionWindows {
    /// Sessions that end after `gap_ms` of inactivity, accepting records
    /// up to `grace_ms` late (Kafka Streams' `ofInactivityGapAndGrace`).
    pub fn of_inactivity_gap_and_grace(gap_ms: i64, grace_ms: i64) -> SessionWindows {
        SessionWindows { gap_ms: gap_ms.max(1), grace_ms: grace_ms.max(0) }
    }

    /// Sessions with no grace period.
    pub fn of_inactivity_gap_without_grace(gap_ms: i64) -> SessionWindows {
        SessionWindows::of_inactivity_gap_and_grace(gap_ms, 0)
    }

    /// How long a session store keeps a session after it ends.
    pub fn retention_ms(&self) -> i64 {
        self.gap_ms + self.grace_ms
    }
}

/// Sliding windows: for each record, the windows of `time_difference_ms`
/// that end at it and that start just after it, so each window holds a
/// distinct set of records (Kafka Streams' `SlidingWindows`). Windows are
/// closed intervals `[start, start + time_difference_ms]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindows {
    /// The width of each window, and how far apart its records may be.
    pub time_difference_ms: i64,
    /// How long after a window ends it still takes late records.
    pub grace_ms: i64,
}

impl SlidingWindows {
    /// Kafka Streams' `ofTimeDifferenceAndGrace`.
    pub fn of_time_difference_and_grace(time_difference_ms: i64, grace_ms: i64) -> SlidingWindows {
        SlidingWindows { time_difference_ms: time_difference_ms.max(1), grace_ms: grace_ms.max(0) }
    }

    /// How long a window store keeps a window, as Kafka Streams sizes it.
    pub fn retention_ms(&self) -> i64 {
        2 * self.time_difference_ms + self.grace_ms
    }
}

#[cfg(test)]
mod join_tests {
    use super::*;

    #[test]
    fn a_join_window_reaches_both_ways() {
        let windows = JoinWindows::of_time_difference_and_grace(1_200_000, 300_000);
        assert!(windows.contains(2_000_000, 800_000));
        assert!(windows.contains(2_000_000, 3_200_000));
        assert!(!windows.contains(2_000_000, 3_200_001));
        assert_eq!(windows.retention_ms(), 2_700_000);
    }
}
