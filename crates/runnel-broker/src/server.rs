//! Listeners and connections. Each accepted socket gets a task that reads
//! frames, answers them in order and writes responses; a bad frame closes
//! that one connection and nothing else.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::config::{split_host_port, FsyncPolicy, ListenerConfig};
use crate::frame::{FrameError, FrameLimits, FrameReader, MemoryBudget};
use crate::log_limit::LogLimiter;
use crate::request::{handle_frame, Pending};
use crate::resources;
use crate::state::BrokerState;

/// A bound listener and the address it advertises.
#[derive(Debug, Clone)]
pub struct Listener {
    pub name: String,
    pub local_addr: SocketAddr,
    pub advertised_host: String,
    pub advertised_port: i32,
}

/// Binds every configured listener. Port 0 binds an ephemeral port, and the
/// advertised address follows the bound one unless set explicitly.
pub async fn bind(configs: &[ListenerConfig]) -> std::io::Result<Vec<(TcpListener, Listener)>> {
    let mut bound = Vec::new();
    for config in configs {
        let socket = TcpListener::bind(config.listen)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {} for listener {}: {e}", config.listen, config.name)))?;
        let local_addr = socket.local_addr()?;
        let (advertised_host, advertised_port) = match &config.advertise {
            Some(addr) => split_host_port(addr).map_err(std::io::Error::other)?,
            None => {
                let host = if local_addr.ip().is_unspecified() { "localhost".to_string() } else { local_addr.ip().to_string() };
                (host, local_addr.port())
            }
        };
        bound.push((socket, Listener { name: config.name.clone(), local_addr, advertised_host, advertised_port: advertised_port as i32 }));
    }
    Ok(bound)
}

/// Serves bound listeners until `shutdown` resolves, with the background
/// tasks (retention, interval fsync). Flushes the logs on the way out.
pub async fn run(state: Arc<BrokerState>, listeners: Vec<(TcpListener, Listener)>, shutdown: impl Future<Output = ()>) {
    let mut tasks = JoinSet::new();
    let budget = MemoryBudget::new(state.config.queued_max_request_bytes.max(state.config.socket_request_max_bytes));
    for (socket, listener) in listeners {
        tasks.spawn(accept_loop(state.clone(), socket, Arc::new(listener), budget.clone()));
    }
    tasks.spawn(retention_loop(state.clone()));
    tasks.spawn(cleaner_loop(state.clone()));
    tasks.spawn(group_tick_loop(state.clone()));
    tasks.spawn(transaction_loop(state.clone()));
    tasks.spawn(log_maintenance_loop(state.clone()));
    if state.config.fsync == FsyncPolicy::Interval {
        tasks.spawn(fsync_loop(state.clone()));
    }
    shutdown.await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    state.shutdown();
    tracing::info!("broker stopped");
}

/// After this many connections, once three quarters of them have closed,
/// the allocator is asked to give the memory they used back to the system.
const TRIM_AFTER_PEAK: usize = 1000;

/// How long accepting pauses after a failure; doubles while failures
/// continue (out of file descriptors, say), up to a second.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

async fn accept_loop(state: Arc<BrokerState>, socket: TcpListener, listener: Arc<Listener>, budget: MemoryBudget) {
    let mut connections = JoinSet::new();
    let failures = LogLimiter::new(Duration::from_secs(10));
    let mut backoff = ACCEPT_BACKOFF.0;
    let mut peak = 0usize;
    loop {
        tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff = ACCEPT_BACKOFF.0;
                    connections.spawn(serve_connection(state.clone(), listener.clone(), stream, peer, budget.clone()));
                }
                Err(e) => {
                    if let Some(suppressed) = failures.allow(std::time::Instant::now()) {
                        tracing::warn!(listener = %listener.name, error = %e, suppressed, connections = connections.len(), "accept failed; backing off");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {
                peak = peak.max(connections.len() + 1);
                if peak >= TRIM_AFTER_PEAK && connections.len() < peak / 4 {
                    peak = connections.len();
                    tokio::task::spawn_blocking(resources::release_free_memory);
                }
            }
        }
    }
}

/// Responses a connection may have waiting for durability at once; as
/// with `max.in.flight.requests.per.connection`, later requests are still
/// read and appended in order while earlier ones wait for their fsync.
const MAX_PENDING_RESPONSES: usize = 16;

async fn serve_connection(state: Arc<BrokerState>, listener: Arc<Listener>, stream: TcpStream, peer: SocketAddr, budget: MemoryBudget) {
    let _ = stream.set_nodelay(true);
    let (socket, writer) = stream.into_split();
    let (pending_tx, pending_rx) = tokio::sync::mpsc::channel::<Pending>(MAX_PENDING_RESPONSES);
    let writer = tokio::spawn(write_responses(writer, pending_rx, peer));
    let limits = FrameLimits {
        max_size: state.config.socket_request_max_bytes,
        idle: Duration::from_millis(state.config.connections_max_idle_ms.max(1)),
        stall: Duration::from_millis(state.config.request_stall_timeout_ms.max(1)),
    };
    let mut frames = FrameReader::default();
    loop {
        let frame = match frames.next(&socket, &limits, &budget).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e @ (FrameError::Io(_) | FrameError::Idle(_))) => {
                tracing::debug!(%peer, error = %e, "closing connection");
                break;
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
        };
        // The frame (and its share of the memory budget) is released once
        // handled; a produce's records have been appended by then.
        // Boxed, so the connection's task is only as large as its idle
        // state; the handler's (much larger) future exists while it runs.
        let handled = Box::pin(handle_frame(&state, &listener, peer, frame.body.clone())).await;
        drop(frame);
        match handled {
            Ok(Some(pending)) => {
                if pending_tx.send(pending).await.is_err() {
                    break;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
        }
    }
    // Answer what was already accepted, then close.
    drop(pending_tx);
    let _ = writer.await;
}

/// Writes responses in request order. Each response is one whole frame
/// already, so it goes straight to the socket: no buffer sits idle per
/// connection.
async fn write_responses(mut writer: OwnedWriteHalf, mut pending: tokio::sync::mpsc::Receiver<Pending>, peer: SocketAddr) {
    while let Some(next) = pending.recv().await {
        let bytes = match next.await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                return;
            }
        };
        if writer.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

async fn retention_loop(state: Arc<BrokerState>) {
    let period = Duration::from_millis(state.config.retention_check_interval_ms.max(10));
    loop {
        tokio::time::sleep(period).await;
        let state = state.clone();
        let _ = tokio::task::spawn_blocking(move || state.enforce_retention()).await;
    }
}

/// The log cleaner: compacts partitions of compacted topics, one at a
/// time on one blocking thread, so produce and fetch keep the others.
async fn cleaner_loop(state: Arc<BrokerState>) {
    let period = Duration::from_millis(state.config.log_cleaner_backoff_ms.max(10));
    loop {
        tokio::time::sleep(period).await;
        let state = state.clone();
        let _ = tokio::task::spawn_blocking(move || state.clean_logs()).await;
    }
}

/// Drives group timers (session expiry, rebalance deadlines, offset
/// retention) and tombstones offsets that expired.
async fn group_tick_loop(state: Arc<BrokerState>) {
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let expired = state.groups.tick();
        if !expired.is_empty() {
            let tombstones = expired.iter().map(|key| (key.encode(), None)).collect();
            if let Err(e) = state.append_internal(crate::groups::OFFSETS_TOPIC, tombstones).await {
                tracing::warn!(error = %e, "could not tombstone expired offsets");
            }
        }
    }
}

/// Finishes transactions decided before a restart, then aborts those open
/// past their timeout, every `transaction_timeout_check_interval_ms`.
async fn transaction_loop(state: Arc<BrokerState>) {
    let interval = Duration::from_millis(state.config.transaction_timeout_check_interval_ms);
    loop {
        crate::txns::tick(&state).await;
        tokio::time::sleep(interval).await;
    }
}

/// Every second: fsyncs for topics with `flush.ms`, and removal of deleted
/// segments whose `file.delete.delay.ms` is up.
async fn log_maintenance_loop(state: Arc<BrokerState>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        state.maintain_logs().await;
    }
}

async fn fsync_loop(state: Arc<BrokerState>) {
    let period = Duration::from_millis(state.config.fsync_interval_ms.max(1));
    loop {
        tokio::time::sleep(period).await;
        let state = state.clone();
        let _ = tokio::task::spawn_blocking(move || state.sync_all()).await;
    }
}
