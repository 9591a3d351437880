//! Group commit: concurrent `acks=all` producers wait for one shared fsync
//! rather than each paying for their own.

use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

#[derive(Debug)]
pub(crate) struct Flusher {
    state: Mutex<FlushState>,
    done: Notify,
}

#[derive(Debug)]
struct FlushState {
    /// Every offset below this is on stable storage.
    synced: i64,
    in_flight: bool,
    /// When the last fsync finished (`flush.ms` counts from it).
    synced_at: Instant,
}

impl Flusher {
    pub fn new(synced: i64) -> Flusher {
        Flusher { state: Mutex::new(FlushState { synced, in_flight: false, synced_at: Instant::now() }), done: Notify::new() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FlushState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every offset below this is durable.
    pub fn synced(&self) -> i64 {
        self.state().synced
    }

    /// Milliseconds since the last fsync finished.
    pub fn since_last_sync_ms(&self) -> i64 {
        self.state().synced_at.elapsed().as_millis() as i64
    }

    /// Records an fsync made outside [`Flusher::flush_to`] (an interval or
    /// shutdown sync) covering offsets below `end`.
    pub fn synced_to(&self, end: i64) {
        let mut state = self.state();
        state.synced = state.synced.max(end);
        state.synced_at = Instant::now();
    }

    /// Waits until offsets below `target` are durable. If no fsync is in
    /// flight this caller runs one covering everything written so far (as
    /// reported by `snapshot`); otherwise it waits for the running one and
    /// re-checks.
    pub async fn flush_to(&self, target: i64, snapshot: impl Fn() -> (Arc<File>, i64)) -> io::Result<()> {
        loop {
            let notified = {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                if state.synced >= target {
                    return Ok(());
                }
                if !state.in_flight {
                    state.in_flight = true;
                    None
                } else {
                    let notified = self.done.notified();
                    Some(notified)
                }
            };
            match notified {
                Some(notified) => notified.await,
                None => {
                    let (file, end) = snapshot();
                    let result = tokio::task::spawn_blocking(move || file.sync_data()).await.unwrap_or_else(|e| Err(io::Error::other(e)));
                    {
                        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                        state.in_flight = false;
                        if result.is_ok() {
                            state.synced = state.synced.max(end);
                            state.synced_at = Instant::now();
                        }
                    }
                    self.done.notify_waiters();
                    result?;
                }
            }
        }
    }
}
