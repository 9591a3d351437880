//! Listeners and connections. Each accepted socket gets a task that reads
//! frames, answers them in order and writes responses; a bad frame closes
//! that one connection and nothing else.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::config::{split_host_port, FsyncPolicy, ListenerConfig};
use crate::frame::{read_frame, FrameError};
use crate::request::{handle_frame, Pending};
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
    for (socket, listener) in listeners {
        tasks.spawn(accept_loop(state.clone(), socket, Arc::new(listener)));
    }
    tasks.spawn(retention_loop(state.clone()));
    tasks.spawn(group_tick_loop(state.clone()));
    if state.config.fsync == FsyncPolicy::Interval {
        tasks.spawn(fsync_loop(state.clone()));
    }
    shutdown.await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    state.shutdown();
    tracing::info!("broker stopped");
}

async fn accept_loop(state: Arc<BrokerState>, socket: TcpListener, listener: Arc<Listener>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(state.clone(), listener.clone(), stream, peer));
                }
                Err(e) => {
                    tracing::warn!(listener = %listener.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Responses a connection may have waiting for durability at once; as
/// with `max.in.flight.requests.per.connection`, later requests are still
/// read and appended in order while earlier ones wait for their fsync.
const MAX_PENDING_RESPONSES: usize = 16;

async fn serve_connection(state: Arc<BrokerState>, listener: Arc<Listener>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let (pending_tx, pending_rx) = tokio::sync::mpsc::channel::<Pending>(MAX_PENDING_RESPONSES);
    let writer = tokio::spawn(write_responses(BufWriter::with_capacity(64 * 1024, writer), pending_rx, peer));
    let max = state.config.socket_request_max_bytes;
    loop {
        let frame = match read_frame(&mut reader, max).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(FrameError::Io(e)) => {
                tracing::debug!(%peer, error = %e, "connection error");
                break;
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
        };
        match handle_frame(&state, &listener, peer, frame).await {
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

/// Writes responses in request order, flushing when none is ready.
async fn write_responses(mut writer: BufWriter<OwnedWriteHalf>, mut pending: tokio::sync::mpsc::Receiver<Pending>, peer: SocketAddr) {
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
        if pending.is_empty() && writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.flush().await;
}

async fn retention_loop(state: Arc<BrokerState>) {
    let period = Duration::from_millis(state.config.retention_check_interval_ms.max(10));
    loop {
        tokio::time::sleep(period).await;
        let state = state.clone();
        let _ = tokio::task::spawn_blocking(move || state.enforce_retention()).await;
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

async fn fsync_loop(state: Arc<BrokerState>) {
    let period = Duration::from_millis(state.config.fsync_interval_ms.max(1));
    loop {
        tokio::time::sleep(period).await;
        let state = state.clone();
        let _ = tokio::task::spawn_blocking(move || state.sync_all()).await;
    }
}
