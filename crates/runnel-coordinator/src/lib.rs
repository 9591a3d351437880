//! runnel-coordinator: the classic consumer group protocol and the
//! transaction coordinator, as pure state machines.
//!
//! Requests go in with the current time; responses and effects come out.
//! There is no I/O, no clock and no async here: JoinGroup and SyncGroup
//! calls that must wait are answered later, as [`Effect`]s returned from
//! another call or from [`GroupCoordinator::tick`], addressed by the
//! [`ReplyId`] the caller chose. The broker owns sockets, timers and the
//! `__consumer_offsets` topic; tests drive this crate with simulated time.

mod error;
mod group;
mod offsets;
pub mod txn;

pub use error::GroupError;
pub use group::{
    GroupCoordinator, GroupDescription, GroupListing, GroupState, HeartbeatRequest, JoinRequest, JoinResponse, JoinedMember, LeaveMember, MemberDescription,
    SyncRequest, SyncResponse,
};
pub use offsets::{CommittedOffset, OffsetKey};

/// Milliseconds on whatever clock the caller uses; only differences matter.
pub type Millis = i64;

/// Names a waiting JoinGroup or SyncGroup call so its answer can be routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyId(pub u64);

/// An answer that became ready, to be delivered to a waiting caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Join(ReplyId, JoinResponse),
    Sync(ReplyId, SyncResponse),
}

/// Limits and timings of the group protocol.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// `group.min.session.timeout.ms`
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an
    /// empty group waits for more members. 0 suits local use.
    pub initial_rebalance_delay_ms: i32,
    /// `offsets.retention.minutes`, in milliseconds: committed offsets of a
    /// group that stays empty this long expire.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`: an empty group without
    /// offsets is forgotten (becomes Dead) after staying empty this long,
    /// as Apache Kafka forgets it at its next retention check.
    pub offsets_retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes`
    pub max_offset_metadata_bytes: usize,
    /// Longest accepted group id.
    pub max_group_id_len: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 0,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            max_offset_metadata_bytes: 4096,
            max_group_id_len: 255,
        }
    }
}
