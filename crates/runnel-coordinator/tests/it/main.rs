//! The group coordinator driven directly with simulated time: every
//! rebalance edge case without a socket or a sleep.

use bytes::Bytes;
use runnel_coordinator::*;

mod txn;

const SESSION: i32 = 10_000;
const REBALANCE: i32 = 30_000;

/// A coordinator plus a clock and reply-id counter for scenarios.
struct Scenario {
    coordinator: GroupCoordinator,
    now: Millis,
    next_reply: u64,
}

impl Scenario {
    fn new() -> Scenario {
        Self::with(CoordinatorConfig::default())
    }

    fn with(config: CoordinatorConfig) -> Scenario {
        Scenario { coordinator: GroupCoordinator::new(config), now: 1_000_000, next_reply: 0 }
    }

    fn reply(&mut self) -> ReplyId {
        self.next_reply += 1;
        ReplyId(self.next_reply)
    }

    fn advance(&mut self, ms: i64) -> (Vec<Effect>, Vec<OffsetKey>) {
        self.now += ms;
        self.coordinator.tick(self.now)
    }

    fn join_request(member_id: &str, protocols: &[&str]) -> JoinRequest {
        JoinRequest {
            group_id: "g".into(),
            member_id: member_id.into(),
            group_instance_id: None,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: SESSION,
            rebalance_timeout_ms: REBALANCE,
            protocol_type: "consumer".into(),
            protocols: protocols.iter().map(|p| (p.to_string(), Bytes::from(format!("meta-{p}")))).collect(),
            require_known_member_id: true,
            supports_skip_assignment: true,
        }
    }

    /// Sends a join; returns the reply id and any effects.
    fn join(&mut self, request: JoinRequest) -> (ReplyId, Vec<Effect>) {
        let reply = self.reply();
        let effects = self.coordinator.join(self.now, request, reply);
        (reply, effects)
    }

    /// A brand-new member's two-step join (KIP-394); returns its member id
    /// and the reply id of the second join.
    fn new_member(&mut self, protocols: &[&str]) -> (String, ReplyId, Vec<Effect>) {
        let (reply, effects) = self.join(Self::join_request("", protocols));
        let response = join_response(&effects, reply);
        assert_eq!(response.error, Some(GroupError::MemberIdRequired));
        let member_id = response.member_id.clone();
        let (reply, effects) = self.join(Self::join_request(&member_id, protocols));
        (member_id, reply, effects)
    }

    fn sync(&mut self, member_id: &str, generation: i32, assignments: &[(&str, &str)]) -> (ReplyId, Vec<Effect>) {
        let reply = self.reply();
        let request = SyncRequest {
            group_id: "g".into(),
            generation_id: generation,
            member_id: member_id.into(),
            group_instance_id: None,
            protocol_type: Some("consumer".into()),
            protocol_name: None,
            assignments: assignments.iter().map(|(m, a)| (m.to_string(), Bytes::from(a.to_string()))).collect(),
        };
        let effects = self.coordinator.sync(self.now, request, reply);
        (reply, effects)
    }

    fn heartbeat(&mut self, member_id: &str, generation: i32) -> Result<(), GroupError> {
        let request = HeartbeatRequest { group_id: "g".into(), generation_id: generation, member_id: member_id.into(), group_instance_id: None };
        self.coordinator.heartbeat(self.now, &request)
    }

    fn state(&self) -> GroupState {
        self.coordinator.describe("g").state
    }

    /// Brings up a stable group of members with one protocol; returns
    /// their ids (leader first) and the generation.
    fn stable_group(&mut self, size: usize) -> (Vec<String>, i32) {
        let mut ids = Vec::new();
        let mut waiting = Vec::new();
        for _ in 0..size {
            let (id, reply, _) = self.new_member(&["range"]);
            ids.push(id);
            waiting.push(reply);
        }
        // Everyone rejoins so the last rebalance includes all of them.
        let mut effects = Vec::new();
        let mut replies = Vec::new();
        for id in &ids {
            let (reply, e) = self.join(Self::join_request(id, &["range"]));
            replies.push(reply);
            effects.extend(e);
        }
        let response = join_response(&effects, *replies.last().unwrap());
        let generation = response.generation_id;
        let leader = response.leader.clone();
        let assignments: Vec<(String, String)> = ids.iter().map(|id| (id.clone(), format!("assignment-for-{id}"))).collect();
        for id in ids.iter().filter(|id| **id != leader) {
            self.sync(id, generation, &[]);
        }
        let refs: Vec<(&str, &str)> = assignments.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        self.sync(&leader, generation, &refs);
        assert_eq!(self.state(), GroupState::Stable);
        ids.sort_by_key(|id| *id != leader);
        (ids, generation)
    }
}

#[track_caller]
fn join_response(effects: &[Effect], reply: ReplyId) -> JoinResponse {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Join(r, response) if *r == reply => Some(response.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no join response for {reply:?} in {effects:?}"))
}

#[track_caller]
fn sync_response(effects: &[Effect], reply: ReplyId) -> SyncResponse {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Sync(r, response) if *r == reply => Some(response.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no sync response for {reply:?} in {effects:?}"))
}

#[test]
fn first_join_needs_a_member_id_then_a_lone_member_leads() {
    let mut s = Scenario::new();
    let (member, reply, effects) = s.new_member(&["range"]);
    let response = join_response(&effects, reply);
    assert_eq!(response.error, None);
    assert_eq!((response.generation_id, response.leader.as_str()), (1, member.as_str()));
    assert_eq!(response.protocol_name.as_deref(), Some("range"));
    assert_eq!(response.members.len(), 1, "the leader sees every member");
    assert_eq!(response.members[0].metadata, Bytes::from("meta-range"));
    let (reply, effects) = s.sync(&member, 1, &[(&member, "\u{0}\u{1}opaque")]);
    assert_eq!(sync_response(&effects, reply).assignment, Bytes::from("\u{0}\u{1}opaque"), "assignments pass through byte for byte");
    assert_eq!(s.state(), GroupState::Stable);
}

#[test]
fn old_clients_join_without_member_id_round_trip() {
    let mut s = Scenario::new();
    let mut request = Scenario::join_request("", &["range"]);
    request.require_known_member_id = false;
    let (reply, effects) = s.join(request);
    let response = join_response(&effects, reply);
    assert_eq!(response.error, None);
    assert!(!response.member_id.is_empty());
}

#[test]
fn a_new_member_triggers_a_rebalance_that_waits_for_everyone() {
    let mut s = Scenario::new();
    let (ids, generation) = s.stable_group(1);
    let leader = &ids[0];
    let (newcomer, newcomer_reply, effects) = s.new_member(&["range"]);
    assert!(effects.is_empty(), "the newcomer waits for the leader to rejoin");
    assert_eq!(s.state(), GroupState::PreparingRebalance);
    assert_eq!(s.heartbeat(leader, generation), Err(GroupError::RebalanceInProgress));
    let (leader_reply, effects) = s.join(Scenario::join_request(leader, &["range"]));
    let leader_response = join_response(&effects, leader_reply);
    let follower_response = join_response(&effects, newcomer_reply);
    assert_eq!(leader_response.generation_id, generation + 1);
    assert_eq!(leader_response.members.len(), 2);
    assert!(follower_response.members.is_empty(), "followers do not see member metadata");
    assert_eq!(follower_response.leader, *leader);

    let (follower_sync, effects) = s.sync(&newcomer, generation + 1, &[]);
    assert!(effects.is_empty(), "followers wait for the leader's assignment");
    let (leader_sync, effects) = s.sync(leader, generation + 1, &[(leader, "p0,p1,p2"), (&newcomer, "p3,p4,p5")]);
    assert_eq!(sync_response(&effects, follower_sync).assignment, Bytes::from("p3,p4,p5"));
    assert_eq!(sync_response(&effects, leader_sync).assignment, Bytes::from("p0,p1,p2"));
    assert_eq!(s.heartbeat(&newcomer, generation + 1), Ok(()));
}

#[test]
fn the_protocol_all_members_support_and_most_prefer_is_chosen() {
    let mut s = Scenario::new();
    let (a, _, _) = s.new_member(&["range", "roundrobin"]);
    let (b, b_reply, _) = s.new_member(&["roundrobin", "range"]);
    let (c, c_reply, _) = s.new_member(&["roundrobin", "range", "sticky"]);
    let (a_reply, effects) = s.join(Scenario::join_request(&a, &["range", "roundrobin"]));
    let _ = (b, c, b_reply);
    let response = join_response(&effects, c_reply);
    assert_eq!(response.protocol_name.as_deref(), Some("roundrobin"));
    assert_eq!(join_response(&effects, a_reply).protocol_name.as_deref(), Some("roundrobin"));
}

#[test]
fn members_with_no_common_protocol_or_another_type_are_refused() {
    let mut s = Scenario::new();
    s.stable_group(1);
    let (reply, effects) = s.join(Scenario::join_request("", &["cooperative-sticky"]));
    assert_eq!(join_response(&effects, reply).error, Some(GroupError::InconsistentGroupProtocol));
    let mut other_type = Scenario::join_request("", &["range"]);
    other_type.protocol_type = "connect".into();
    let (reply, effects) = s.join(other_type);
    assert_eq!(join_response(&effects, reply).error, Some(GroupError::InconsistentGroupProtocol));
    assert_eq!(s.state(), GroupState::Stable, "refusals do not disturb the group");
}

#[test]
fn bad_group_ids_and_session_timeouts_are_refused() {
    let mut s = Scenario::new();
    let mut empty = Scenario::join_request("", &["range"]);
    empty.group_id = String::new();
    let (reply, effects) = s.join(empty);
    assert_eq!(join_response(&effects, reply).error, Some(GroupError::InvalidGroupId));
    let mut long = Scenario::join_request("", &["range"]);
    long.group_id = "g".repeat(300);
    let (reply, effects) = s.join(long);
    assert_eq!(join_response(&effects, reply).error, Some(GroupError::InvalidGroupId));
    let mut short = Scenario::join_request("", &["range"]);
    short.session_timeout_ms = 10;
    let (reply, effects) = s.join(short);
    assert_eq!(join_response(&effects, reply).error, Some(GroupError::InvalidSessionTimeout));
    let (reply, effects) = s.join(Scenario::join_request("made-up-member", &["range"]));
    assert_eq!(join_response(&effects, reply).error, Some(GroupError::UnknownMemberId));
}

#[test]
fn a_member_that_stops_heartbeating_is_expired_after_the_session_timeout() {
    let mut s = Scenario::new();
    let (ids, generation) = s.stable_group(2);
    let (survivor, silent) = (&ids[0], &ids[1]);
    for _ in 0..2 {
        s.advance(4_000);
        assert_eq!(s.heartbeat(survivor, generation), Ok(()));
    }
    s.advance(4_000);
    assert_eq!(s.state(), GroupState::PreparingRebalance, "the silent member expired after 10s");
    assert_eq!(s.heartbeat(survivor, generation), Err(GroupError::RebalanceInProgress));
    assert_eq!(s.heartbeat(silent, generation), Err(GroupError::UnknownMemberId));
    let (reply, effects) = s.join(Scenario::join_request(survivor, &["range"]));
    let response = join_response(&effects, reply);
    assert_eq!((response.generation_id, response.members.len()), (generation + 1, 1));
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_timeout() {
    let mut s = Scenario::new();
    let (ids, generation) = s.stable_group(2);
    let (_, newcomer_reply, _) = s.new_member(&["range"]);
    let (leader_reply, _) = s.join(Scenario::join_request(&ids[0], &["range"]));
    // ids[1] keeps heartbeating but never rejoins.
    for _ in 0..7 {
        s.advance(4_000);
        let _ = s.heartbeat(&ids[1], generation);
    }
    let (effects, _) = s.advance(3_000);
    let response = join_response(&effects, leader_reply);
    assert_eq!(response.members.len(), 2, "the laggard was removed");
    assert_eq!(join_response(&effects, newcomer_reply).generation_id, generation + 1);
    assert_eq!(s.heartbeat(&ids[1], generation), Err(GroupError::UnknownMemberId));
}

#[test]
fn stale_generations_are_illegal() {
    let mut s = Scenario::new();
    let (ids, generation) = s.stable_group(1);
    assert_eq!(s.heartbeat(&ids[0], generation - 1), Err(GroupError::IllegalGeneration));
    let (reply, effects) = s.sync(&ids[0], generation + 5, &[]);
    assert_eq!(sync_response(&effects, reply).error, Some(GroupError::IllegalGeneration));
    assert_eq!(s.coordinator.validate_commit(s.now, "g", generation - 1, &ids[0], None), Err(GroupError::IllegalGeneration));
    assert_eq!(s.coordinator.validate_commit(s.now, "g", generation, &ids[0], None), Ok(()));
}

#[test]
fn a_static_member_rejoins_without_a_rebalance_and_fences_its_old_self() {
    let mut s = Scenario::new();
    let mut first = Scenario::join_request("", &["range"]);
    first.group_instance_id = Some("instance-1".into());
    let (reply, effects) = s.join(first.clone());
    let member = join_response(&effects, reply).member_id;
    assert!(member.starts_with("instance-1-"), "static members skip MEMBER_ID_REQUIRED");
    let (_, effects) = s.sync(&member, 1, &[(&member, "mine")]);
    assert_eq!(effects.len(), 1);
    let (_, follower_reply, _) = s.new_member(&["range"]);
    let mut leader_rejoin = Scenario::join_request(&member, &["range"]);
    leader_rejoin.group_instance_id = Some("instance-1".into());
    let (_, effects) = s.join(leader_rejoin);
    let follower = join_response(&effects, follower_reply).member_id;
    s.sync(&follower, 2, &[]);
    let (_, _) = s.sync(&member, 2, &[(&member, "mine"), (&follower, "theirs")]);
    assert_eq!(s.state(), GroupState::Stable);

    // The follower process restarts as a static member would; here the
    // leader restarts: same instance id, no member id.
    let (reply, effects) = s.join(first);
    let response = join_response(&effects, reply);
    assert_eq!(response.error, None);
    assert_eq!(response.generation_id, 2, "no new generation");
    assert!(response.skip_assignment, "the rejoining leader keeps the current assignment");
    assert_eq!(s.state(), GroupState::Stable);
    let new_id = response.member_id;
    assert_ne!(new_id, member);
    let old = HeartbeatRequest { group_id: "g".into(), generation_id: 2, member_id: member.clone(), group_instance_id: Some("instance-1".into()) };
    assert_eq!(s.coordinator.heartbeat(s.now, &old), Err(GroupError::FencedInstanceId));
    let (reply, effects) = s.sync(&new_id, 2, &[]);
    assert_eq!(sync_response(&effects, reply).assignment, Bytes::from("mine"), "the assignment comes back");
    assert_eq!(s.heartbeat(&follower, 2), Ok(()), "the other member saw no rebalance");
}

#[test]
fn leaving_triggers_a_rebalance_and_the_last_member_empties_the_group() {
    let mut s = Scenario::new();
    let (ids, generation) = s.stable_group(2);
    let (results, _) = s.coordinator.leave(s.now, "g", &[LeaveMember { member_id: ids[1].clone(), group_instance_id: None }]);
    assert_eq!(results, vec![Ok(())]);
    assert_eq!(s.state(), GroupState::PreparingRebalance);
    let (reply, effects) = s.join(Scenario::join_request(&ids[0], &["range"]));
    assert_eq!(join_response(&effects, reply).generation_id, generation + 1);
    let (results, _) = s.coordinator.leave(
        s.now,
        "g",
        &[LeaveMember { member_id: ids[0].clone(), group_instance_id: None }, LeaveMember { member_id: "ghost".into(), group_instance_id: None }],
    );
    assert_eq!(results, vec![Ok(()), Err(GroupError::UnknownMemberId)]);
    assert_eq!(s.state(), GroupState::Empty);
    s.advance(1);
    assert_eq!(s.state(), GroupState::Empty, "an empty group is kept until the next retention check, as in Apache Kafka");
    s.advance(CoordinatorConfig::default().offsets_retention_check_interval_ms);
    assert_eq!(s.state(), GroupState::Dead, "an empty group without offsets is then forgotten");
}

#[test]
fn the_initial_rebalance_delay_gathers_early_joiners() {
    let mut s = Scenario::with(CoordinatorConfig { initial_rebalance_delay_ms: 3_000, ..CoordinatorConfig::default() });
    let (_, a_reply, effects) = s.new_member(&["range"]);
    assert!(effects.is_empty(), "the first join waits for the delay");
    s.advance(1_000);
    let (_, b_reply, effects) = s.new_member(&["range"]);
    assert!(effects.is_empty());
    let (effects, _) = s.advance(2_000);
    assert_eq!(join_response(&effects, a_reply).members.len(), 2);
    assert_eq!(join_response(&effects, b_reply).generation_id, 1);
}

#[test]
fn commits_follow_the_generation_rules() {
    let mut s = Scenario::new();
    assert_eq!(s.coordinator.validate_commit(s.now, "standalone", -1, "", None), Ok(()), "commits from outside group management");
    assert_eq!(s.coordinator.validate_commit(s.now, "unknown", 3, "m", None), Err(GroupError::IllegalGeneration));
    assert_eq!(s.coordinator.validate_commit(s.now, "", -1, "", None), Ok(()), "an empty group id commits, as in Apache Kafka");
    assert_eq!(s.coordinator.validate_commit(s.now, &"g".repeat(300), -1, "", None), Err(GroupError::InvalidGroupId));
    let (ids, generation) = s.stable_group(1);
    assert_eq!(s.coordinator.validate_commit(s.now, "g", -1, "", None), Err(GroupError::UnknownMemberId), "active groups need a member");
    let (_, _, _) = s.new_member(&["range"]);
    assert_eq!(s.coordinator.validate_commit(s.now, "g", generation, &ids[0], None), Ok(()), "allowed while preparing a rebalance");
    assert_eq!(s.coordinator.validate_metadata(&"m".repeat(5000)), Err(GroupError::OffsetMetadataTooLarge));
}

#[test]
fn offsets_of_an_empty_group_expire_after_retention() {
    let mut s = Scenario::with(CoordinatorConfig { offsets_retention_ms: 60_000, ..CoordinatorConfig::default() });
    let offset = CommittedOffset { offset: 5, leader_epoch: -1, metadata: String::new(), commit_timestamp: s.now };
    s.coordinator.apply_offsets(s.now, "idle", vec![(("t".into(), 0), offset.clone())]);
    s.stable_group(1);
    s.coordinator.apply_offsets(s.now, "g", vec![(("t".into(), 0), offset)]);
    let (_, expired) = s.advance(30_000);
    assert!(expired.is_empty());
    let (_, expired) = s.advance(31_000);
    assert_eq!(expired, vec![OffsetKey { group: "idle".into(), topic: "t".into(), partition: 0 }]);
    assert_eq!(s.coordinator.committed("g").len(), 1, "g emptied only when its member expired, at the 30s tick");
    let (_, expired) = s.advance(30_000);
    assert_eq!(expired.len(), 1);
}

#[test]
fn deleting_groups_and_offsets() {
    let mut s = Scenario::new();
    let offset = CommittedOffset { offset: 1, leader_epoch: -1, metadata: "x".into(), commit_timestamp: 0 };
    s.coordinator.apply_offsets(s.now, "old", vec![(("a".into(), 0), offset.clone()), (("b".into(), 1), offset.clone())]);
    assert_eq!(s.coordinator.delete_group("nope"), Err(GroupError::GroupIdNotFound));
    s.stable_group(1);
    assert_eq!(s.coordinator.delete_group("g"), Err(GroupError::NonEmptyGroup));
    assert_eq!(s.coordinator.delete_offsets("old", &[("a".into(), 0)]).unwrap(), vec![Ok(())]);
    assert_eq!(s.coordinator.committed("old").len(), 1);
    assert_eq!(s.coordinator.delete_group("old").unwrap().len(), 1);
    assert_eq!(s.coordinator.describe("old").state, GroupState::Dead);
}

#[test]
fn listing_filters_by_state() {
    let mut s = Scenario::new();
    s.stable_group(1);
    s.coordinator.apply_offsets(
        s.now,
        "idle",
        vec![(("t".into(), 0), CommittedOffset { offset: 1, leader_epoch: -1, metadata: String::new(), commit_timestamp: 0 })],
    );
    assert_eq!(s.coordinator.list(&[]).len(), 2);
    let stable = s.coordinator.list(&[GroupState::Stable]);
    assert_eq!((stable.len(), stable[0].group_id.as_str(), stable[0].protocol_type.as_str()), (1, "g", "consumer"));
    let described = s.coordinator.describe("g");
    assert_eq!(described.members.len(), 1);
    assert_eq!(described.protocol_name, "range");
}

#[test]
fn a_silent_member_expires_exactly_at_its_session_timeout() {
    let mut s = Scenario::new();
    s.stable_group(1);
    s.now += SESSION as i64 - 1;
    assert!(s.coordinator.expire_members(s.now).is_empty());
    assert_eq!(s.state(), GroupState::Stable, "a millisecond before its deadline the member is still there");
    assert_eq!(s.coordinator.delete_group("g"), Err(GroupError::NonEmptyGroup));
    s.now += 1;
    s.coordinator.expire_members(s.now);
    assert_eq!(s.state(), GroupState::Empty, "at the deadline it is gone, with no tick needed");
    assert_eq!(s.coordinator.delete_group("g").map(|offsets| offsets.len()), Ok(0), "so the group can be deleted right away");
}
