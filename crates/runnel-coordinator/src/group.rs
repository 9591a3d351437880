//! Group membership and rebalancing: Apache Kafka's classic protocol.

use std::collections::{BTreeMap, HashMap};

use bytes::{Buf, Bytes};

use crate::offsets::{CommittedOffset, OffsetKey};
use crate::{CoordinatorConfig, Effect, GroupError, Millis, ReplyId};

/// A group's place in the rebalance cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members; may still hold committed offsets.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Assignment distributed.
    Stable,
    /// Unknown or deleted.
    Dead,
}

impl GroupState {
    /// The name Kafka uses in DescribeGroups and ListGroups.
    pub fn as_str(&self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A JoinGroup call.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub group_id: String,
    /// Empty on a member's first join.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// Assignor names with their opaque metadata, in preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a first join is answered MEMBER_ID_REQUIRED (KIP-394).
    pub require_known_member_id: bool,
    /// JoinGroup v9+: a rejoining static leader may be told to keep the
    /// current assignment instead of computing a new one.
    pub supports_skip_assignment: bool,
}

/// One member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// The answer to a JoinGroup call.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinResponse {
    pub error: Option<GroupError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub skip_assignment: bool,
    pub member_id: String,
    /// Every member with its metadata, for the leader; empty for followers.
    pub members: Vec<JoinedMember>,
}

impl JoinResponse {
    /// A refusal: no generation, no leader, no members.
    pub fn error(error: GroupError, member_id: String) -> JoinResponse {
        JoinResponse {
            error: Some(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id,
            members: Vec::new(),
        }
    }
}

/// A SyncGroup call; only the leader sends assignments.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

/// The answer to a SyncGroup call: this member's opaque assignment.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncResponse {
    pub error: Option<GroupError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    /// A refusal with an empty assignment.
    pub fn error(error: GroupError) -> SyncResponse {
        SyncResponse { error: Some(error), protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

/// A Heartbeat call.
#[derive(Debug, Clone)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// One member named in a LeaveGroup call.
#[derive(Debug, Clone)]
pub struct LeaveMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// A member as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol_name: String,
    pub members: Vec<MemberDescription>,
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: GroupState,
}

#[derive(Debug)]
struct Member {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    awaiting_join: Option<ReplyId>,
    awaiting_sync: Option<ReplyId>,
    last_heartbeat: Millis,
    join_order: u64,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(name, _)| name == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

#[derive(Debug)]
struct Group {
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the time by which
    /// they must join.
    pending: HashMap<String, Millis>,
    /// `group.instance.id` → current member id.
    instances: HashMap<String, String>,
    rebalance_deadline: Millis,
    initial_delay_until: Option<Millis>,
    sync_deadline: Millis,
    offsets: BTreeMap<(String, i32), CommittedOffset>,
    empty_since: Millis,
}

impl Group {
    fn new(now: Millis) -> Group {
        Group {
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            instances: HashMap::new(),
            rebalance_deadline: 0,
            initial_delay_until: None,
            sync_deadline: 0,
            offsets: BTreeMap::new(),
            empty_since: now,
        }
    }

    /// Protocols every member supports.
    fn candidate_protocols(&self) -> Vec<String> {
        let mut members = self.members.values();
        let Some(first) = members.next() else { return Vec::new() };
        let mut candidates: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for member in members {
            candidates.retain(|c| member.protocols.iter().any(|(n, _)| n == c));
        }
        candidates
    }

    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        let candidates = self.candidate_protocols();
        self.protocol_type.as_deref() == Some(protocol_type) && protocols.iter().any(|(n, _)| candidates.contains(n))
    }

    /// The assignor most members prefer among those all support.
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|c| (c.clone(), 0)).collect();
        for member in self.members.values() {
            if let Some((name, _)) = member.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                if let Some(entry) = votes.iter_mut().find(|(c, _)| c == name) {
                    entry.1 += 1;
                }
            }
        }
        let best = votes.iter().map(|(_, v)| *v).max()?;
        votes.into_iter().find(|(_, v)| *v == best).map(|(c, _)| c)
    }

    fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    fn current_join_response(&self, member_id: &str, include_members: bool) -> JoinResponse {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if include_members {
            let mut members: Vec<&Member> = self.members.values().collect();
            members.sort_by_key(|m| m.join_order);
            members
                .into_iter()
                .map(|m| JoinedMember { member_id: m.id.clone(), group_instance_id: m.instance_id.clone(), metadata: m.metadata_for(&protocol) })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            error: None,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_string(),
            members,
        }
    }

    /// Checks that `member_id` still owns `instance_id`, if one is given.
    fn check_instance(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), GroupError> {
        match instance_id.and_then(|i| self.instances.get(i)) {
            Some(owner) if owner != member_id => Err(GroupError::FencedInstanceId),
            _ => Ok(()),
        }
    }
}

/// An offset a transaction committed: group, partition and value.
type StagedOffset = (String, (String, i32), CommittedOffset);

/// Every group this broker coordinates, and their committed offsets.
#[derive(Debug)]
pub struct GroupCoordinator {
    config: CoordinatorConfig,
    groups: HashMap<String, Group>,
    join_counter: u64,
    /// Offsets committed inside open transactions, by producer id: they
    /// take effect when the transaction's COMMIT marker is written to
    /// `__consumer_offsets`, and vanish on ABORT.
    txn_offsets: HashMap<i64, Vec<StagedOffset>>,
}

impl GroupCoordinator {
    pub fn new(config: CoordinatorConfig) -> GroupCoordinator {
        GroupCoordinator { config, groups: HashMap::new(), join_counter: 0, txn_offsets: HashMap::new() }
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// Takes new limits and timings (dynamic broker configs); they apply
    /// from the next request on.
    pub fn reconfigure(&mut self, config: CoordinatorConfig) {
        self.config = config;
    }

    /// Checks a group id against the broker's rules.
    pub fn validate_group_id(&self, group_id: &str) -> Result<(), GroupError> {
        if group_id.is_empty() || group_id.len() > self.config.max_group_id_len {
            Err(GroupError::InvalidGroupId)
        } else {
            Ok(())
        }
    }

    /// Handles JoinGroup. The answer comes back as an effect for `reply`,
    /// now or once the rebalance completes.
    pub fn join(&mut self, now: Millis, request: JoinRequest, reply: ReplyId) -> Vec<Effect> {
        let mut effects = Vec::new();
        let fail = |error: GroupError, member_id: String| vec![Effect::Join(reply, JoinResponse::error(error, member_id))];
        if let Err(e) = self.validate_group_id(&request.group_id) {
            return fail(e, request.member_id);
        }
        if request.session_timeout_ms < self.config.min_session_timeout_ms || request.session_timeout_ms > self.config.max_session_timeout_ms {
            return fail(GroupError::InvalidSessionTimeout, request.member_id);
        }
        if !self.groups.contains_key(&request.group_id) {
            if !request.member_id.is_empty() {
                return fail(GroupError::UnknownMemberId, request.member_id);
            }
            self.groups.insert(request.group_id.clone(), Group::new(now));
        }
        let group = self.groups.get(&request.group_id).expect("inserted above");
        if !group.supports(&request.protocol_type, &request.protocols) {
            return fail(GroupError::InconsistentGroupProtocol, request.member_id);
        }
        self.join_counter += 1;
        let order = self.join_counter;
        let config = self.config.clone();
        let group = self.groups.get_mut(&request.group_id).expect("exists");
        if request.member_id.is_empty() {
            join_new_member(group, &config, now, request, reply, order, &mut effects);
        } else {
            join_known_member(group, &config, now, request, reply, order, &mut effects);
        }
        effects
    }

    /// Handles SyncGroup; followers wait (as an effect) for the leader.
    pub fn sync(&mut self, now: Millis, request: SyncRequest, reply: ReplyId) -> Vec<Effect> {
        let fail = |error: GroupError| vec![Effect::Sync(reply, SyncResponse::error(error))];
        if let Err(e) = self.validate_group_id(&request.group_id) {
            return fail(e);
        }
        let Some(group) = self.groups.get_mut(&request.group_id) else { return fail(GroupError::UnknownMemberId) };
        if let Err(e) = group.check_instance(&request.member_id, request.group_instance_id.as_deref()) {
            return fail(e);
        }
        if !group.members.contains_key(&request.member_id) {
            return fail(GroupError::UnknownMemberId);
        }
        if request.generation_id != group.generation {
            return fail(GroupError::IllegalGeneration);
        }
        let type_mismatch = request.protocol_type.as_ref().is_some_and(|t| Some(t) != group.protocol_type.as_ref());
        let name_mismatch = request.protocol_name.as_ref().is_some_and(|n| Some(n) != group.protocol_name.as_ref());
        if type_mismatch || name_mismatch {
            return fail(GroupError::InconsistentGroupProtocol);
        }
        let ok = |group: &Group, assignment: Bytes| SyncResponse {
            error: None,
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol_name.clone(),
            assignment,
        };
        match group.state {
            GroupState::PreparingRebalance => fail(GroupError::RebalanceInProgress),
            GroupState::Stable => {
                let member = group.members.get_mut(&request.member_id).expect("checked");
                member.last_heartbeat = now;
                let assignment = member.assignment.clone();
                vec![Effect::Sync(reply, ok(group, assignment))]
            }
            GroupState::CompletingRebalance => {
                let member = group.members.get_mut(&request.member_id).expect("checked");
                member.last_heartbeat = now;
                member.awaiting_sync = Some(reply);
                if !group.is_leader(&request.member_id) {
                    return Vec::new();
                }
                let assignments: HashMap<String, Bytes> = request.assignments.into_iter().collect();
                for member in group.members.values_mut() {
                    member.assignment = assignments.get(&member.id).cloned().unwrap_or_default();
                }
                group.state = GroupState::Stable;
                let mut effects = Vec::new();
                for member in group.members.values_mut() {
                    if let Some(waiting) = member.awaiting_sync.take() {
                        member.last_heartbeat = now;
                        effects.push(Effect::Sync(
                            waiting,
                            SyncResponse {
                                error: None,
                                protocol_type: group.protocol_type.clone(),
                                protocol_name: group.protocol_name.clone(),
                                assignment: member.assignment.clone(),
                            },
                        ));
                    }
                }
                effects
            }
            GroupState::Empty | GroupState::Dead => fail(GroupError::UnknownMemberId),
        }
    }

    /// Handles Heartbeat.
    pub fn heartbeat(&mut self, now: Millis, request: &HeartbeatRequest) -> Result<(), GroupError> {
        self.validate_group_id(&request.group_id)?;
        let group = self.groups.get_mut(&request.group_id).ok_or(GroupError::UnknownMemberId)?;
        group.check_instance(&request.member_id, request.group_instance_id.as_deref())?;
        if group.state == GroupState::Empty || group.state == GroupState::Dead {
            return Err(GroupError::UnknownMemberId);
        }
        let member = group.members.get_mut(&request.member_id).ok_or(GroupError::UnknownMemberId)?;
        if request.generation_id != group.generation {
            return Err(GroupError::IllegalGeneration);
        }
        member.last_heartbeat = now;
        match group.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Handles LeaveGroup: one result per named member, plus answers for
    /// joins that the departure let complete.
    pub fn leave(&mut self, now: Millis, group_id: &str, leaving: &[LeaveMember]) -> (Vec<Result<(), GroupError>>, Vec<Effect>) {
        let mut effects = Vec::new();
        let Some(group) = self.groups.get_mut(group_id) else {
            return (leaving.iter().map(|_| Err(GroupError::UnknownMemberId)).collect(), effects);
        };
        let mut removed_any = false;
        let results = leaving
            .iter()
            .map(|leave| {
                let member_id = if leave.member_id.is_empty() {
                    leave.group_instance_id.as_ref().and_then(|i| group.instances.get(i)).cloned().unwrap_or_default()
                } else {
                    leave.member_id.clone()
                };
                group.check_instance(&member_id, leave.group_instance_id.as_deref())?;
                if group.pending.remove(&member_id).is_some() {
                    return Ok(());
                }
                if !group.members.contains_key(&member_id) {
                    return Err(GroupError::UnknownMemberId);
                }
                remove_member(group, &member_id, &mut effects);
                removed_any = true;
                Ok(())
            })
            .collect();
        if removed_any {
            let config = self.config.clone();
            rebalance_after_departure(group, &config, now, &mut effects);
        }
        (results, effects)
    }

    /// Advances time: expires members that stopped heartbeating, completes
    /// rebalances whose deadlines passed, and expires committed offsets of
    /// groups that stayed empty. Returns answers that became ready and the
    /// offsets that expired (to be tombstoned).
    pub fn tick(&mut self, now: Millis) -> (Vec<Effect>, Vec<OffsetKey>) {
        let effects = self.expire_members(now);
        let mut expired = Vec::new();
        let config = self.config.clone();
        for (group_id, group) in self.groups.iter_mut() {
            if group.state == GroupState::Empty && !group.offsets.is_empty() && now - group.empty_since > config.offsets_retention_ms {
                for ((topic, partition), _) in std::mem::take(&mut group.offsets) {
                    expired.push(OffsetKey { group: group_id.clone(), topic, partition });
                }
            }
        }
        let forget_after = config.offsets_retention_check_interval_ms;
        self.groups.retain(|_, g| !(g.state == GroupState::Empty && g.offsets.is_empty() && g.pending.is_empty() && now - g.empty_since >= forget_after));
        (effects, expired)
    }

    /// Removes members whose session ended and completes rebalances whose
    /// deadlines passed, as of `now`. The broker runs it before every group
    /// request as well as on its tick, so a deadline is met when it falls,
    /// as Apache Kafka's timers meet it, not up to a tick later.
    pub fn expire_members(&mut self, now: Millis) -> Vec<Effect> {
        let mut effects = Vec::new();
        let config = self.config.clone();
        for group in self.groups.values_mut() {
            group.pending.retain(|_, deadline| *deadline > now);
            let sync_overdue = group.state == GroupState::CompletingRebalance && now >= group.sync_deadline;
            let dead: Vec<String> = group
                .members
                .values()
                .filter(|m| {
                    let waiting = m.awaiting_join.is_some() || (m.awaiting_sync.is_some() && !sync_overdue);
                    let silent = now - m.last_heartbeat >= m.session_timeout_ms as i64;
                    (!waiting && silent) || (sync_overdue && m.awaiting_sync.is_none())
                })
                .map(|m| m.id.clone())
                .collect();
            if !dead.is_empty() {
                for id in &dead {
                    remove_member(group, id, &mut effects);
                }
                rebalance_after_departure(group, &config, now, &mut effects);
            }
            maybe_complete_join(group, &config, now, &mut effects);
        }
        effects
    }

    /// Checks that an OffsetCommit may be applied. `generation_id < 0` with
    /// an empty or unknown group is a commit from outside group management.
    /// As Apache Kafka, an empty group id is accepted here (commits from
    /// clients without a group); only its length is checked.
    pub fn validate_commit(&mut self, now: Millis, group_id: &str, generation_id: i32, member_id: &str, instance_id: Option<&str>) -> Result<(), GroupError> {
        if group_id.len() > self.config.max_group_id_len {
            return Err(GroupError::InvalidGroupId);
        }
        let Some(group) = self.groups.get_mut(group_id) else {
            return if generation_id < 0 { Ok(()) } else { Err(GroupError::IllegalGeneration) };
        };
        if generation_id < 0 && group.state == GroupState::Empty {
            return Ok(());
        }
        group.check_instance(member_id, instance_id)?;
        if group.pending.contains_key(member_id) {
            return Err(GroupError::RebalanceInProgress);
        }
        let member = group.members.get_mut(member_id).ok_or(GroupError::UnknownMemberId)?;
        if generation_id != group.generation {
            return Err(GroupError::IllegalGeneration);
        }
        member.last_heartbeat = now;
        match group.state {
            GroupState::CompletingRebalance => Err(GroupError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Checks one commit's metadata string against `offset.metadata.max.bytes`.
    pub fn validate_metadata(&self, metadata: &str) -> Result<(), GroupError> {
        if metadata.len() > self.config.max_offset_metadata_bytes {
            Err(GroupError::OffsetMetadataTooLarge)
        } else {
            Ok(())
        }
    }

    /// Records offsets that are durably stored. Creates the group if needed.
    pub fn apply_offsets(&mut self, now: Millis, group_id: &str, offsets: Vec<((String, i32), CommittedOffset)>) {
        let group = self.groups.entry(group_id.to_string()).or_insert_with(|| Group::new(now));
        group.offsets.extend(offsets);
    }

    /// Holds offsets a TxnOffsetCommit stored for `producer_id`'s open
    /// transaction until its marker decides them.
    pub fn stage_txn_offsets(&mut self, producer_id: i64, group_id: &str, offsets: Vec<((String, i32), CommittedOffset)>) {
        let staged = self.txn_offsets.entry(producer_id).or_default();
        staged.extend(offsets.into_iter().map(|(partition, offset)| (group_id.to_string(), partition, offset)));
    }

    /// `producer_id`'s transaction ended: its staged offsets become the
    /// committed ones on commit and are dropped on abort.
    pub fn complete_txn_offsets(&mut self, now: Millis, producer_id: i64, commit: bool) {
        let Some(staged) = self.txn_offsets.remove(&producer_id) else { return };
        if commit {
            for (group_id, partition, offset) in staged {
                self.apply_offsets(now, &group_id, vec![(partition, offset)]);
            }
        }
    }

    /// Whether an open transaction holds an offset for this partition of
    /// the group: OffsetFetch with `require_stable` answers
    /// UNSTABLE_OFFSET_COMMIT until it ends, as Apache Kafka does (KIP-447).
    pub fn has_pending_txn_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.txn_offsets.values().flatten().any(|(g, (t, p), _)| g == group_id && t == topic && *p == partition)
    }

    /// Replays one `__consumer_offsets` record at startup; `None` is a
    /// tombstone.
    pub fn load_offset(&mut self, now: Millis, key: OffsetKey, value: Option<CommittedOffset>) {
        match value {
            Some(value) => self.apply_offsets(now, &key.group, vec![((key.topic, key.partition), value)]),
            None => {
                if let Some(group) = self.groups.get_mut(&key.group) {
                    group.offsets.remove(&(key.topic, key.partition));
                    if group.state == GroupState::Empty && group.offsets.is_empty() {
                        self.groups.remove(&key.group);
                    }
                }
            }
        }
    }

    /// Committed offsets of a group, sorted by topic and partition.
    pub fn committed(&self, group_id: &str) -> Vec<((String, i32), CommittedOffset)> {
        self.groups.get(group_id).map(|g| g.offsets.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
    }

    pub fn describe(&self, group_id: &str) -> GroupDescription {
        let Some(group) = self.groups.get(group_id) else {
            return GroupDescription {
                group_id: group_id.to_string(),
                state: GroupState::Dead,
                protocol_type: String::new(),
                protocol_name: String::new(),
                members: Vec::new(),
            };
        };
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let mut members: Vec<&Member> = group.members.values().collect();
        members.sort_by_key(|m| m.join_order);
        GroupDescription {
            group_id: group_id.to_string(),
            state: group.state,
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol_name: if group.state == GroupState::Stable { protocol.clone() } else { String::new() },
            members: members
                .into_iter()
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata_for(&protocol),
                    assignment: if group.state == GroupState::Stable { m.assignment.clone() } else { Bytes::new() },
                })
                .collect(),
        }
    }

    /// Groups, optionally only those in the given states.
    pub fn list(&self, states: &[GroupState]) -> Vec<GroupListing> {
        let mut out: Vec<GroupListing> = self
            .groups
            .iter()
            .filter(|(_, g)| states.is_empty() || states.contains(&g.state))
            .map(|(id, g)| GroupListing { group_id: id.clone(), protocol_type: g.protocol_type.clone().unwrap_or_default(), state: g.state })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// Deletes an empty group; returns its offsets, to be tombstoned.
    pub fn delete_group(&mut self, group_id: &str) -> Result<Vec<OffsetKey>, GroupError> {
        self.validate_group_id(group_id)?;
        let group = self.groups.get(group_id).ok_or(GroupError::GroupIdNotFound)?;
        if !group.members.is_empty() || !group.pending.is_empty() {
            return Err(GroupError::NonEmptyGroup);
        }
        let group = self.groups.remove(group_id).expect("exists");
        Ok(group.offsets.into_keys().map(|(topic, partition)| OffsetKey { group: group_id.to_string(), topic, partition }).collect())
    }

    /// OffsetDelete: drops committed offsets of topics the group is not
    /// subscribed to.
    pub fn delete_offsets(&mut self, group_id: &str, partitions: &[(String, i32)]) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        self.validate_group_id(group_id)?;
        let group = self.groups.get_mut(group_id).ok_or(GroupError::GroupIdNotFound)?;
        let subscribed = |topic: &str| -> bool {
            group.protocol_type.as_deref() == Some("consumer")
                && group.members.values().any(|m| {
                    let protocol = group.protocol_name.clone().unwrap_or_default();
                    consumer_subscription(&m.metadata_for(&protocol)).iter().any(|t| t == topic)
                })
        };
        let verdicts: Vec<Result<(), GroupError>> =
            partitions.iter().map(|(topic, _)| if subscribed(topic) { Err(GroupError::GroupSubscribedToTopic) } else { Ok(()) }).collect();
        for ((topic, partition), verdict) in partitions.iter().zip(&verdicts) {
            if verdict.is_ok() {
                group.offsets.remove(&(topic.clone(), *partition));
            }
        }
        Ok(verdicts)
    }
}

/// Topics in a consumer protocol subscription (any version: the topic list
/// comes first).
fn consumer_subscription(metadata: &Bytes) -> Vec<String> {
    let mut buf = metadata.clone();
    let mut topics = Vec::new();
    if buf.remaining() < 6 {
        return topics;
    }
    buf.get_i16();
    let count = buf.get_i32();
    for _ in 0..count.max(0) {
        if buf.remaining() < 2 {
            break;
        }
        let len = buf.get_i16();
        if len < 0 || buf.remaining() < len as usize {
            break;
        }
        topics.push(String::from_utf8_lossy(&buf.split_to(len as usize)).into_owned());
    }
    topics
}

fn new_member_id(prefix: &str) -> String {
    let prefix = if prefix.is_empty() { "member" } else { prefix };
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

fn join_new_member(group: &mut Group, config: &CoordinatorConfig, now: Millis, request: JoinRequest, reply: ReplyId, order: u64, effects: &mut Vec<Effect>) {
    if let Some(instance) = request.group_instance_id.clone() {
        let new_id = new_member_id(&instance);
        if let Some(old_id) = group.instances.get(&instance).cloned() {
            rejoin_static_member(group, config, now, request, reply, old_id, new_id, effects);
        } else {
            group.instances.insert(instance, new_id.clone());
            add_member_and_rebalance(group, config, now, request, new_id, reply, order, effects);
        }
        return;
    }
    let new_id = new_member_id(&request.client_id);
    if request.require_known_member_id {
        group.pending.insert(new_id.clone(), now + request.session_timeout_ms as i64);
        effects.push(Effect::Join(reply, JoinResponse::error(GroupError::MemberIdRequired, new_id)));
        return;
    }
    add_member_and_rebalance(group, config, now, request, new_id, reply, order, effects);
}

/// A static member came back with a new member id: fence the old one and,
/// unless its protocols would change the group's, hand back the current
/// generation without a rebalance (KIP-345). With JoinGroup v9+ a leader
/// gets the member list and is told to skip computing an assignment;
/// before v9 it is told the old leader id, so it computes none.
#[allow(clippy::too_many_arguments)]
fn rejoin_static_member(
    group: &mut Group,
    config: &CoordinatorConfig,
    now: Millis,
    request: JoinRequest,
    reply: ReplyId,
    old_id: String,
    new_id: String,
    effects: &mut Vec<Effect>,
) {
    let instance = request.group_instance_id.clone().expect("static member");
    let Some(mut member) = group.members.remove(&old_id) else {
        group.instances.insert(instance, new_id.clone());
        let order = u64::MAX / 2;
        add_member_and_rebalance(group, config, now, request, new_id, reply, order, effects);
        return;
    };
    if let Some(waiting) = member.awaiting_join.take() {
        effects.push(Effect::Join(waiting, JoinResponse::error(GroupError::FencedInstanceId, old_id.clone())));
    }
    if let Some(waiting) = member.awaiting_sync.take() {
        effects.push(Effect::Sync(waiting, SyncResponse::error(GroupError::FencedInstanceId)));
    }
    let was_leader = group.is_leader(&old_id);
    let leader_before = group.leader.clone().unwrap_or_default();
    member.id = new_id.clone();
    member.last_heartbeat = now;
    member.session_timeout_ms = request.session_timeout_ms;
    member.rebalance_timeout_ms = request.rebalance_timeout_ms;
    member.client_id = request.client_id.clone();
    member.client_host = request.client_host.clone();
    member.protocols = request.protocols;
    member.protocol_type = request.protocol_type;
    group.members.insert(new_id.clone(), member);
    group.instances.insert(instance, new_id.clone());
    if was_leader {
        group.leader = Some(new_id.clone());
    }
    // As in Apache Kafka, a static rejoin only rebalances when it would
    // change the group's protocol; its metadata may differ (owned
    // partitions, for instance) without forcing everyone to rejoin.
    let protocol_unchanged = group.select_protocol() == group.protocol_name;
    match group.state {
        GroupState::Stable if protocol_unchanged && request.supports_skip_assignment => {
            let mut response = group.current_join_response(&new_id, was_leader);
            response.skip_assignment = was_leader;
            effects.push(Effect::Join(reply, response));
        }
        GroupState::Stable if protocol_unchanged => {
            // As Apache Kafka: before v9 the answer names the leader as it
            // was, so a rejoining static leader does not take itself for
            // the leader and compute an assignment a stable group would
            // never hand out.
            let mut response = group.current_join_response(&new_id, false);
            response.leader = leader_before;
            effects.push(Effect::Join(reply, response));
        }
        _ => {
            let member = group.members.get_mut(&new_id).expect("inserted");
            member.awaiting_join = Some(reply);
            if group.state != GroupState::PreparingRebalance {
                prepare_rebalance(group, now, effects);
            }
            maybe_complete_join(group, config, now, effects);
        }
    }
}

fn join_known_member(group: &mut Group, config: &CoordinatorConfig, now: Millis, request: JoinRequest, reply: ReplyId, order: u64, effects: &mut Vec<Effect>) {
    let member_id = request.member_id.clone();
    if let Err(e) = group.check_instance(&member_id, request.group_instance_id.as_deref()) {
        effects.push(Effect::Join(reply, JoinResponse::error(e, member_id)));
        return;
    }
    if group.pending.remove(&member_id).is_some() {
        add_member_and_rebalance(group, config, now, request, member_id, reply, order, effects);
        return;
    }
    let Some(member) = group.members.get_mut(&member_id) else {
        effects.push(Effect::Join(reply, JoinResponse::error(GroupError::UnknownMemberId, member_id)));
        return;
    };
    member.last_heartbeat = now;
    let unchanged = member.protocols == request.protocols;
    match group.state {
        GroupState::PreparingRebalance => {
            let member = group.members.get_mut(&member_id).expect("checked");
            member.protocols = request.protocols;
            member.session_timeout_ms = request.session_timeout_ms;
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
            if let Some(previous) = member.awaiting_join.replace(reply) {
                effects.push(Effect::Join(previous, JoinResponse::error(GroupError::RebalanceInProgress, member_id.clone())));
            }
            maybe_complete_join(group, config, now, effects);
        }
        GroupState::CompletingRebalance if unchanged => {
            let is_leader = group.is_leader(&member_id);
            effects.push(Effect::Join(reply, group.current_join_response(&member_id, is_leader)));
        }
        GroupState::Stable if unchanged && !group.is_leader(&member_id) => {
            effects.push(Effect::Join(reply, group.current_join_response(&member_id, false)));
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            let member = group.members.get_mut(&member_id).expect("checked");
            member.protocols = request.protocols;
            member.awaiting_join = Some(reply);
            prepare_rebalance(group, now, effects);
            maybe_complete_join(group, config, now, effects);
        }
        GroupState::Empty | GroupState::Dead => {
            effects.push(Effect::Join(reply, JoinResponse::error(GroupError::UnknownMemberId, member_id)));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn add_member_and_rebalance(
    group: &mut Group,
    config: &CoordinatorConfig,
    now: Millis,
    request: JoinRequest,
    member_id: String,
    reply: ReplyId,
    order: u64,
    effects: &mut Vec<Effect>,
) {
    if group.members.is_empty() {
        group.protocol_type = Some(request.protocol_type.clone());
    }
    group.members.insert(
        member_id.clone(),
        Member {
            id: member_id.clone(),
            instance_id: request.group_instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            protocol_type: request.protocol_type,
            protocols: request.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(reply),
            awaiting_sync: None,
            last_heartbeat: now,
            join_order: order,
        },
    );
    if group.leader.is_none() {
        group.leader = Some(member_id);
    }
    match group.state {
        GroupState::Empty => {
            prepare_rebalance(group, now, effects);
            if config.initial_rebalance_delay_ms > 0 {
                group.initial_delay_until = Some(now + config.initial_rebalance_delay_ms as i64);
            }
        }
        GroupState::Stable | GroupState::CompletingRebalance => prepare_rebalance(group, now, effects),
        GroupState::PreparingRebalance | GroupState::Dead => {}
    }
    maybe_complete_join(group, config, now, effects);
}

/// Starts a rebalance: members must rejoin before the deadline. Members
/// waiting in SyncGroup are told to rejoin.
fn prepare_rebalance(group: &mut Group, now: Millis, effects: &mut Vec<Effect>) {
    for member in group.members.values_mut() {
        if let Some(waiting) = member.awaiting_sync.take() {
            effects.push(Effect::Sync(waiting, SyncResponse::error(GroupError::RebalanceInProgress)));
        }
        member.assignment = Bytes::new();
    }
    let timeout = group.members.values().map(|m| m.rebalance_timeout_ms).max().unwrap_or(0).max(0);
    group.rebalance_deadline = now + timeout as i64;
    group.state = GroupState::PreparingRebalance;
}

fn maybe_complete_join(group: &mut Group, config: &CoordinatorConfig, now: Millis, effects: &mut Vec<Effect>) {
    if group.state != GroupState::PreparingRebalance {
        return;
    }
    let all_joined = group.members.values().all(|m| m.awaiting_join.is_some()) && group.pending.is_empty();
    let delayed = group.initial_delay_until.is_some_and(|until| now < until && now < group.rebalance_deadline);
    if (!all_joined || delayed) && now < group.rebalance_deadline {
        return;
    }
    let laggards: Vec<String> = group.members.values().filter(|m| m.awaiting_join.is_none()).map(|m| m.id.clone()).collect();
    for id in laggards {
        remove_member(group, &id, effects);
    }
    group.pending.clear();
    group.initial_delay_until = None;
    group.generation += 1;
    if group.members.is_empty() {
        // As Apache Kafka: an empty group keeps its protocol type, so
        // listings still show a consumer group as one; a member of any
        // type may join it again.
        group.state = GroupState::Empty;
        group.protocol_name = None;
        group.leader = None;
        group.empty_since = now;
        return;
    }
    group.protocol_name = group.select_protocol();
    if !group.leader.as_ref().is_some_and(|l| group.members.contains_key(l)) {
        group.leader = group.members.values().min_by_key(|m| m.join_order).map(|m| m.id.clone());
    }
    group.state = GroupState::CompletingRebalance;
    group.sync_deadline = now + group.members.values().map(|m| m.rebalance_timeout_ms as i64).max().unwrap_or(0);
    let ids: Vec<String> = group.members.keys().cloned().collect();
    for id in ids {
        let is_leader = group.is_leader(&id);
        let response = group.current_join_response(&id, is_leader);
        let member = group.members.get_mut(&id).expect("listed");
        member.last_heartbeat = now;
        if let Some(waiting) = member.awaiting_join.take() {
            effects.push(Effect::Join(waiting, response));
        }
    }
    let _ = config;
}

/// Drops a member, answering any call it has waiting.
fn remove_member(group: &mut Group, member_id: &str, effects: &mut Vec<Effect>) {
    if let Some(mut member) = group.members.remove(member_id) {
        if let Some(waiting) = member.awaiting_join.take() {
            effects.push(Effect::Join(waiting, JoinResponse::error(GroupError::UnknownMemberId, member_id.to_string())));
        }
        if let Some(waiting) = member.awaiting_sync.take() {
            effects.push(Effect::Sync(waiting, SyncResponse::error(GroupError::UnknownMemberId)));
        }
        if let Some(instance) = &member.instance_id {
            if group.instances.get(instance).map(String::as_str) == Some(member_id) {
                group.instances.remove(instance);
            }
        }
    }
    if group.leader.as_deref() == Some(member_id) {
        group.leader = None;
    }
}

fn rebalance_after_departure(group: &mut Group, config: &CoordinatorConfig, now: Millis, effects: &mut Vec<Effect>) {
    match group.state {
        GroupState::Stable | GroupState::CompletingRebalance => prepare_rebalance(group, now, effects),
        GroupState::PreparingRebalance => {}
        GroupState::Empty | GroupState::Dead => return,
    }
    maybe_complete_join(group, config, now, effects);
}
