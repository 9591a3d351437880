//! The I/O shell around the pure group coordinator: a clock, waiting
//! JoinGroup/SyncGroup callers, and durable offsets in `__consumer_offsets`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use runnel_coordinator::{
    CoordinatorConfig, Effect, GroupCoordinator, GroupError, JoinRequest, JoinResponse, Millis, OffsetKey, ReplyId, SyncRequest, SyncResponse,
};
use tokio::sync::oneshot;

use crate::broker_config::DynamicConfigs;
use crate::config::BrokerConfig;

/// The internal topic holding committed offsets (compacted, one partition).
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

enum Waiter {
    Join(oneshot::Sender<JoinResponse>),
    Sync(oneshot::Sender<SyncResponse>),
}

/// The group settings in force: the broker's static ones, overridden by
/// any set at runtime.
pub fn coordinator_config(config: &BrokerConfig, dynamic: &DynamicConfigs) -> CoordinatorConfig {
    let setting = |name: &str, fallback: i64| dynamic.group_setting(name).map_or(fallback, |(value, _)| value);
    CoordinatorConfig {
        min_session_timeout_ms: setting("group.min.session.timeout.ms", config.group_min_session_timeout_ms.into()) as i32,
        max_session_timeout_ms: setting("group.max.session.timeout.ms", config.group_max_session_timeout_ms.into()) as i32,
        initial_rebalance_delay_ms: setting("group.initial.rebalance.delay.ms", config.group_initial_rebalance_delay_ms.into()) as i32,
        offsets_retention_ms: setting("offsets.retention.minutes", config.offsets_retention_minutes).saturating_mul(60_000),
        ..CoordinatorConfig::default()
    }
}

/// Shared access to the coordinator for the group handlers.
pub struct Groups {
    coordinator: Mutex<GroupCoordinator>,
    waiters: Mutex<HashMap<ReplyId, Waiter>>,
    next_reply: AtomicU64,
    clock: Instant,
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Groups").finish_non_exhaustive()
    }
}

impl Groups {
    pub fn new(config: &BrokerConfig, dynamic: &DynamicConfigs) -> Groups {
        let coordinator = GroupCoordinator::new(coordinator_config(config, dynamic));
        Groups { coordinator: Mutex::new(coordinator), waiters: Mutex::new(HashMap::new()), next_reply: AtomicU64::new(1), clock: Instant::now() }
    }

    /// Applies changed group settings (dynamic broker configs).
    pub fn reconfigure(&self, config: &BrokerConfig, dynamic: &DynamicConfigs) {
        self.lock().reconfigure(coordinator_config(config, dynamic));
    }

    /// Monotonic milliseconds: session timers must not jump with the wall clock.
    pub fn now(&self) -> Millis {
        self.clock.elapsed().as_millis() as Millis
    }

    fn lock(&self) -> MutexGuard<'_, GroupCoordinator> {
        self.coordinator.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the coordinator; for calls that answer at once.
    ///
    /// Members whose session ended by now are removed first, so every
    /// request sees deadlines met to the millisecond.
    pub fn with<R>(&self, f: impl FnOnce(&mut GroupCoordinator, Millis) -> R) -> R {
        let now = self.now();
        let mut coordinator = self.lock();
        let effects = coordinator.expire_members(now);
        let result = f(&mut coordinator, now);
        drop(coordinator);
        self.deliver(effects);
        result
    }

    fn reply_id(&self) -> ReplyId {
        ReplyId(self.next_reply.fetch_add(1, Ordering::Relaxed))
    }

    fn waiters(&self) -> MutexGuard<'_, HashMap<ReplyId, Waiter>> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// JoinGroup: resolves when the rebalance completes (or at once).
    pub async fn join(&self, request: JoinRequest) -> JoinResponse {
        let (tx, rx) = oneshot::channel();
        let reply = self.reply_id();
        self.waiters().insert(reply, Waiter::Join(tx));
        let member_id = request.member_id.clone();
        let effects = self.with(|c, now| c.join(now, request, reply));
        self.deliver(effects);
        rx.await.unwrap_or_else(|_| JoinResponse::error(GroupError::RebalanceInProgress, member_id))
    }

    /// SyncGroup: followers resolve when the leader's assignment arrives.
    pub async fn sync(&self, request: SyncRequest) -> SyncResponse {
        let (tx, rx) = oneshot::channel();
        let reply = self.reply_id();
        self.waiters().insert(reply, Waiter::Sync(tx));
        let effects = self.with(|c, now| c.sync(now, request, reply));
        self.deliver(effects);
        rx.await.unwrap_or_else(|_| SyncResponse::error(GroupError::RebalanceInProgress))
    }

    /// Routes ready answers to their waiting callers.
    pub fn deliver(&self, effects: Vec<Effect>) {
        if effects.is_empty() {
            return;
        }
        let mut waiters = self.waiters();
        for effect in effects {
            match effect {
                Effect::Join(reply, response) => {
                    if let Some(Waiter::Join(tx)) = waiters.remove(&reply) {
                        let _ = tx.send(response);
                    }
                }
                Effect::Sync(reply, response) => {
                    if let Some(Waiter::Sync(tx)) = waiters.remove(&reply) {
                        let _ = tx.send(response);
                    }
                }
            }
        }
    }

    /// Advances the coordinator's clock; returns offsets that expired.
    pub fn tick(&self) -> Vec<OffsetKey> {
        let (effects, expired) = self.with(|c, now| c.tick(now));
        self.deliver(effects);
        expired
    }
}
