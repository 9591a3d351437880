//! Consumer groups with several members: rebalances, static members,
//! protocols that disagree, listing by state, expiry, old versions.

use bytes::BufMut;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;

use super::*;

const JOIN_VERSION: i16 = 7;

/// A consumer-protocol JoinGroup offering `protocols`.
fn join(group: &GroupId, member: &str, instance: Option<&str>, protocols: &[&'static str]) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(group.clone())
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_group_instance_id(instance.map(|i| StrBytes::from_string(i.to_string())))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(
            protocols
                .iter()
                .map(|name| JoinGroupRequestProtocol::default().with_name(StrBytes::from_static_str(name)).with_metadata(Bytes::from_static(b"subscription")))
                .collect(),
        )
}

fn sync(group: &GroupId, generation: i32, member: &str, assignments: &[(&str, &'static [u8])]) -> SyncGroupRequest {
    SyncGroupRequest::default()
        .with_group_id(group.clone())
        .with_generation_id(generation)
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
        .with_protocol_name(Some(StrBytes::from_static_str("range")))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| SyncGroupRequestAssignment::default().with_member_id(StrBytes::from_string(m.to_string())).with_assignment(Bytes::from_static(a)))
                .collect(),
        )
}

fn heartbeat(group: &GroupId, generation: i32, member: &str, instance: Option<&str>) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(group.clone())
        .with_generation_id(generation)
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_group_instance_id(instance.map(|i| StrBytes::from_string(i.to_string())))
}

/// Sends a JoinGroup, retrying while the coordinator is not available, as
/// clients do: a busy Apache Kafka can answer NOT_COORDINATOR or
/// COORDINATOR_NOT_AVAILABLE when its group log append is slow.
async fn join_retrying(client: &mut RawClient, request: &JoinGroupRequest, version: i16) -> JoinGroupResponse {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let response = client.call(request, version).await;
        if ![14, 15, 16].contains(&response.error_code) || std::time::Instant::now() > deadline {
            return response;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Joins as a new dynamic member (asking for an id first, as v4+
/// requires) and returns the member id and the join's answer.
async fn join_new(client: &mut RawClient, group: &GroupId, protocols: &[&'static str]) -> (String, JoinGroupResponse) {
    let first = join_retrying(client, &join(group, "", None, protocols), JOIN_VERSION).await;
    let member = first.member_id.to_string();
    (member.clone(), join_retrying(client, &join(group, &member, None, protocols), JOIN_VERSION).await)
}

fn describe_join(what: &str, response: &JoinGroupResponse) -> String {
    format!(
        "{what}: error {} generation {} protocol {:?} leader is me {} members {}",
        response.error_code,
        response.generation_id,
        response.protocol_name,
        response.leader == response.member_id,
        response.members.len()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_member_rebalances_the_group_and_a_leaving_one_again() {
    let mut pair = Pair::start("rebalance").await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    pair.compare_scripts(async |client, prefix| {
        let group = group_id(&format!("{prefix}-g"));
        let mut seen = Vec::new();
        let (first, joined) = join_new(client, &group, &["range"]).await;
        seen.push(describe_join("first joins", &joined));
        let synced = client.call(&sync(&group, joined.generation_id, &first, &[(&first, b"all partitions")]), 5).await;
        seen.push(format!("first syncs: error {} assignment {:?}", synced.error_code, synced.assignment));

        let mut other = RawClient::connect(&client.peer_addr()).await;
        let asked = other.call(&join(&group, "", None, &["range"]), JOIN_VERSION).await;
        seen.push(format!("second asks for an id: error {}", asked.error_code));
        let second = asked.member_id.to_string();
        let pending = {
            let (group, second) = (group.clone(), second.clone());
            tokio::spawn(async move {
                let joined = other.call(&join(&group, &second, None, &["range"]), JOIN_VERSION).await;
                (other, joined)
            })
        };
        // The first member learns of the rebalance from its heartbeat.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let beat = loop {
            let beat = client.call(&heartbeat(&group, joined.generation_id, &first, None), 4).await;
            if beat.error_code != 0 || std::time::Instant::now() > deadline {
                break beat;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        seen.push(format!("first's heartbeat during the rebalance: error {}", beat.error_code));
        let rejoined = client.call(&join(&group, &first, None, &["range"]), JOIN_VERSION).await;
        seen.push(describe_join("first rejoins", &rejoined));
        let (mut other, second_joined) = pending.await.unwrap();
        seen.push(describe_join("second's join completes", &second_joined));
        let generation = rejoined.generation_id;
        let leader_synced = client.call(&sync(&group, generation, &first, &[(&first, b"p0"), (&second, b"p1")]), 5).await;
        let follower_synced = other.call(&sync(&group, generation, &second, &[]), 5).await;
        seen.push(format!(
            "syncs: leader {} {:?}, follower {} {:?}",
            leader_synced.error_code, leader_synced.assignment, follower_synced.error_code, follower_synced.assignment
        ));

        let leave = LeaveGroupRequest::default()
            .with_group_id(group.clone())
            .with_members(vec![MemberIdentity::default().with_member_id(StrBytes::from_string(first.clone()))]);
        seen.push(format!("first leaves: error {}", client.call(&leave, 3).await.error_code));
        let beat = other.call(&heartbeat(&group, generation, &second, None), 4).await;
        seen.push(format!("second's heartbeat after that: error {}", beat.error_code));
        let alone = other.call(&join(&group, &second, None, &["range"]), JOIN_VERSION).await;
        seen.push(describe_join("second rejoins alone", &alone));
        seen
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_member_rejoining_fences_its_old_incarnation() {
    let mut pair = Pair::start("staticmember").await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    pair.compare_scripts(async |client, prefix| {
        let group = group_id(&format!("{prefix}-g"));
        let mut seen = Vec::new();
        let joined = join_retrying(client, &join(&group, "", Some("instance-1"), &["range"]), JOIN_VERSION).await;
        seen.push(describe_join("static member joins without asking for an id", &joined));
        let old = joined.member_id.to_string();
        let synced = client.call(&sync(&group, joined.generation_id, &old, &[(&old, b"p0")]), 5).await;
        seen.push(format!("syncs: error {} {:?}", synced.error_code, synced.assignment));

        let mut restarted = RawClient::connect(&client.peer_addr()).await;
        let rejoined = restarted.call(&join(&group, "", Some("instance-1"), &["range"]), JOIN_VERSION).await;
        let new = rejoined.member_id.to_string();
        let leader = match rejoined.leader.as_str() {
            l if l == old => "the old id",
            l if l == new => "the new id",
            _ => "another id",
        };
        seen.push(format!(
            "{} new id {} leader named {leader} skip assignment {}",
            describe_join("the same instance rejoins", &rejoined),
            new != old,
            rejoined.skip_assignment
        ));
        let old_beat = client.call(&heartbeat(&group, joined.generation_id, &old, Some("instance-1")), 4).await;
        seen.push(format!("old incarnation's heartbeat: error {}", old_beat.error_code));
        let new_beat = restarted.call(&heartbeat(&group, rejoined.generation_id, &new, Some("instance-1")), 4).await;
        seen.push(format!("new incarnation's heartbeat: error {}", new_beat.error_code));
        // From v9 the rejoining leader is told so, with the members, and
        // to keep the current assignment (KIP-814).
        let mut restarted = RawClient::connect(&client.peer_addr()).await;
        let again = restarted.call(&join(&group, "", Some("instance-1"), &["range"]), 9).await;
        let newest = again.member_id.to_string();
        seen.push(format!("{} skip assignment {}", describe_join("v9: the same instance rejoins again", &again), again.skip_assignment));
        let synced = restarted.call(&sync(&group, again.generation_id, &newest, &[]), 5).await;
        seen.push(format!("it syncs without assignments: error {} {:?}", synced.error_code, synced.assignment));

        let leave = LeaveGroupRequest::default().with_group_id(group.clone()).with_members(vec![
            MemberIdentity::default().with_member_id(StrBytes::default()).with_group_instance_id(Some(StrBytes::from_static_str("instance-1"))),
            MemberIdentity::default().with_member_id(StrBytes::default()).with_group_instance_id(Some(StrBytes::from_static_str("instance-2"))),
        ]);
        let left = restarted.call(&leave, 4).await;
        seen.push(format!("leave by instance id: error {} members {:?}", left.error_code, left.members.iter().map(|m| m.error_code).collect::<Vec<_>>()));
        let described = restarted.call(&DescribeGroupsRequest::default().with_groups(vec![group.clone()]), 5).await;
        seen.push(format!("afterwards: state {} members {}", described.groups[0].group_state, described.groups[0].members.len()));
        seen
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn joins_and_syncs_that_disagree_with_the_group_protocol() {
    let mut pair = Pair::start("protocols").await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    pair.compare_scripts(async |client, prefix| {
        let group = group_id(&format!("{prefix}-g"));
        let mut seen = Vec::new();
        let (member, joined) = join_new(client, &group, &["range", "cooperative-sticky"]).await;
        seen.push(describe_join("joins offering two protocols", &joined));
        let mut other = RawClient::connect(&client.peer_addr()).await;
        let refused = other.call(&join(&group, "", None, &["roundrobin"]), JOIN_VERSION).await;
        seen.push(format!("a member with no protocol in common: error {}", refused.error_code));
        for (what, protocol_type, protocol_name) in
            [("wrong protocol type", "connect", "range"), ("wrong protocol name", "consumer", "roundrobin"), ("both right", "consumer", "range")]
        {
            let request = sync(&group, joined.generation_id, &member, &[(&member, b"p0")])
                .with_protocol_type(Some(StrBytes::from_static_str(protocol_type)))
                .with_protocol_name(Some(StrBytes::from_static_str(protocol_name)));
            seen.push(format!("sync with {what}: error {}", client.call(&request, 5).await.error_code));
        }
        seen
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn groups_listed_by_state() {
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    let mut pair = Pair::start("liststates").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    let group = pair.name("stable");
    await_coordinator(&mut pair, &group).await;
    pair.compare_scripts(async |client, prefix| {
        let (stable, empty, left) = (group_id(&format!("{prefix}-stable")), group_id(&format!("{prefix}-empty")), group_id(&format!("{prefix}-left")));
        let (member, joined) = join_new(client, &stable, &["range"]).await;
        client.call(&sync(&stable, joined.generation_id, &member, &[(&member, b"p0")]), 5).await;
        // A group whose only member left keeps its protocol type.
        let (gone, joined) = join_new(client, &left, &["range"]).await;
        client.call(&sync(&left, joined.generation_id, &gone, &[(&gone, b"p0")]), 5).await;
        let leave =
            LeaveGroupRequest::default().with_group_id(left.clone()).with_members(vec![MemberIdentity::default().with_member_id(StrBytes::from_string(gone))]);
        client.call(&leave, 3).await;
        let commit = OffsetCommitRequest::default().with_group_id(empty.clone()).with_generation_id_or_member_epoch(-1).with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(topic_name(&format!("{prefix}-t")))
                .with_partitions(vec![OffsetCommitRequestPartition::default().with_committed_offset(1)]),
        ]);
        client.call(&commit, 7).await;
        let mut seen = Vec::new();
        let ours = |response: &ListGroupsResponse| {
            let mut groups: Vec<String> = response
                .groups
                .iter()
                .filter(|g| g.group_id.0.starts_with(prefix))
                .map(|g| format!("{}:{}:{}", g.group_id.0.as_str(), g.protocol_type.as_str(), g.group_state.as_str()))
                .collect();
            groups.sort();
            format!("error {} groups {groups:?}", response.error_code)
        };
        for version in 0..=3 {
            seen.push(format!("v{version}: {}", ours(&client.call(&ListGroupsRequest::default(), version).await)));
        }
        let mut described = client.call(&DescribeGroupsRequest::default().with_groups(vec![left.clone(), empty.clone()]), 5).await;
        described.groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        for g in &described.groups {
            seen.push(format!("described {}: state {} type {:?} protocol {:?}", g.group_id.as_str(), g.group_state, g.protocol_type, g.protocol_data));
        }
        for states in [vec![], vec!["Stable"], vec!["Empty"], vec!["PreparingRebalance", "CompletingRebalance"], vec!["stable"]] {
            let request = ListGroupsRequest::default().with_states_filter(states.iter().map(|s| StrBytes::from_static_str(s)).collect());
            seen.push(format!("v4 states {states:?}: {}", ours(&client.call(&request, 4).await)));
        }
        seen
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn offsets_committed_and_fetched_for_unknown_topics_and_partitions() {
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    let mut pair = Pair::start("offsetsunknown").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    let targets = |p: &Pair| [(p.name("t"), vec![0, 9]), (p.name("absent"), vec![0])];
    let versions = pair.versions::<OffsetCommitRequest>().await;
    pair.compare_at(
        versions,
        move |p, _| {
            OffsetCommitRequest::default().with_group_id(group_id(&p.name("g"))).with_generation_id_or_member_epoch(-1).with_topics(
                targets(p)
                    .into_iter()
                    .map(|(topic, partitions)| {
                        OffsetCommitRequestTopic::default().with_name(topic_name(&topic)).with_partitions(
                            partitions.into_iter().map(|p| OffsetCommitRequestPartition::default().with_partition_index(p).with_committed_offset(5)).collect(),
                        )
                    })
                    .collect(),
            )
        },
        |response: &mut OffsetCommitResponse, _| {
            response.throttle_time_ms = 0;
            response.topics.sort_by(|a, b| a.name.cmp(&b.name));
            for topic in &mut response.topics {
                topic.partitions.sort_by_key(|p| p.partition_index);
            }
        },
    )
    .await;
    let versions = pair.versions::<OffsetFetchRequest>().await;
    pair.compare_at(
        (*versions.start()).max(1)..=(*versions.end()).min(7),
        move |p, v| {
            let request = OffsetFetchRequest::default().with_group_id(group_id(&p.name("g"))).with_topics(Some(
                targets(p)
                    .into_iter()
                    .map(|(topic, partitions)| OffsetFetchRequestTopic::default().with_name(topic_name(&topic)).with_partition_indexes(partitions))
                    .collect(),
            ));
            if v >= 7 {
                request.with_require_stable(true)
            } else {
                request
            }
        },
        |response: &mut OffsetFetchResponse, _| {
            response.throttle_time_ms = 0;
            response.topics.sort_by(|a, b| a.name.cmp(&b.name));
            for topic in &mut response.topics {
                topic.partitions.sort_by_key(|p| p.partition_index);
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stable_group_described_with_members_and_authorized_operations() {
    let mut pair = Pair::start("describestable").await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    pair.compare_scripts(async |client, prefix| {
        let group = group_id(&format!("{prefix}-g"));
        let joined = join_retrying(client, &join(&group, "", Some("instance-a"), &["range"]), JOIN_VERSION).await;
        let member = joined.member_id.to_string();
        client.call(&sync(&group, joined.generation_id, &member, &[(&member, b"assigned")]), 5).await;
        let mut seen = Vec::new();
        for version in 0..=5 {
            let request = DescribeGroupsRequest::default().with_groups(vec![group.clone()]).with_include_authorized_operations(version >= 3);
            let described = client.call(&request, version).await;
            let g = &described.groups[0];
            let members: Vec<String> = g
                .members
                .iter()
                .map(|m| {
                    format!(
                        "mine {} instance {:?} client {} host {} metadata {:?} assignment {:?}",
                        m.member_id.as_str() == member,
                        m.group_instance_id,
                        m.client_id.as_str(),
                        m.client_host.as_str(),
                        m.member_metadata,
                        m.member_assignment
                    )
                })
                .collect();
            seen.push(format!(
                "v{version}: error {} state {} type {} protocol {} operations {} members {members:?}",
                g.error_code, g.group_state, g.protocol_type, g.protocol_data, g.authorized_operations
            ));
        }
        seen
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_that_stops_heartbeating_is_removed_after_its_session_timeout() {
    let mut pair = Pair::start("sessionexpiry").await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    pair.compare_scripts(async |client, prefix| {
        let group = group_id(&format!("{prefix}-g"));
        // 6 s: the shortest session Apache Kafka allows by default.
        let short = |member: &str| join(&group, member, None, &["range"]).with_session_timeout_ms(6_000);
        let asked = join_retrying(client, &short(""), JOIN_VERSION).await;
        let member = asked.member_id.to_string();
        let joined = join_retrying(client, &short(&member), JOIN_VERSION).await;
        client.call(&sync(&group, joined.generation_id, &member, &[(&member, b"p0")]), 5).await;
        let mut seen = vec![describe_join("joins with a 6 s session", &joined)];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let state = loop {
            let described = client.call(&DescribeGroupsRequest::default().with_groups(vec![group.clone()]), 5).await;
            let state = described.groups[0].group_state.to_string();
            if state == "Empty" || std::time::Instant::now() > deadline {
                break state;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        };
        seen.push(format!("without heartbeats the group becomes {state}"));
        let late = client.call(&heartbeat(&group, joined.generation_id, &member, None), 4).await;
        seen.push(format!("a late heartbeat: error {}", late.error_code));
        seen
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_joins_with_the_oldest_join_group_versions() {
    let mut pair = Pair::start("oldjoin").await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    // The versions both serve from before member ids were required (v4,
    // KIP-394).
    let versions = pair.versions::<JoinGroupRequest>().await;
    let old = *versions.start()..=3;
    pair.compare_scripts(async |client, prefix| {
        let mut seen = Vec::new();
        for version in old.clone() {
            let group = group_id(&format!("{prefix}-g-v{version}"));
            let mut request = join(&group, "", None, &["range"]).with_group_instance_id(None);
            if version == 0 {
                request.rebalance_timeout_ms = -1;
            }
            let joined = join_retrying(client, &request, version).await;
            seen.push(describe_join(&format!("v{version} join without an id"), &joined));
        }
        seen
    })
    .await;
}

/// A consumer protocol subscription (v0) to `topics`.
fn subscription_to(topics: &[&str]) -> Bytes {
    let mut metadata = bytes::BytesMut::new();
    metadata.put_i16(0);
    metadata.put_i32(topics.len() as i32);
    for topic in topics {
        metadata.put_i16(topic.len() as i16);
        metadata.put_slice(topic.as_bytes());
    }
    metadata.put_i32(-1);
    metadata.freeze()
}

#[tokio::test(flavor = "multi_thread")]
async fn offsets_deleted_while_a_member_subscribes_to_some_of_their_topics() {
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
    let mut pair = Pair::start("offsetdeletesubscribed").await;
    let (subscribed, other) = (pair.name("subscribed"), pair.name("other"));
    create_on_both(&mut pair, &[(&subscribed, 2), (&other, 2)]).await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    pair.compare_scripts(async |client, prefix| {
        let group = group_id(&format!("{prefix}-g"));
        let (subscribed, other) = (format!("{prefix}-subscribed"), format!("{prefix}-other"));
        let metadata = subscription_to(&[&subscribed]);
        let protocol = JoinGroupRequestProtocol::default().with_name(StrBytes::from_static_str("range")).with_metadata(metadata);
        let asked = join_retrying(client, &join(&group, "", None, &[]).with_protocols(vec![protocol.clone()]), JOIN_VERSION).await;
        let member = asked.member_id.to_string();
        let joined = join_retrying(client, &join(&group, &member, None, &[]).with_protocols(vec![protocol]), JOIN_VERSION).await;
        client.call(&sync(&group, joined.generation_id, &member, &[(&member, b"")]), 5).await;
        let commit = OffsetCommitRequest::default()
            .with_group_id(group.clone())
            .with_generation_id_or_member_epoch(joined.generation_id)
            .with_member_id(StrBytes::from_string(member.clone()))
            .with_topics(
                [&subscribed, &other]
                    .iter()
                    .map(|topic| {
                        OffsetCommitRequestTopic::default().with_name(topic_name(topic)).with_partitions(vec![
                            OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(3),
                            OffsetCommitRequestPartition::default().with_partition_index(1).with_committed_offset(5),
                        ])
                    })
                    .collect(),
            );
        let committed = client.call(&commit, 7).await;
        let mut seen =
            vec![format!("commit: {:?}", committed.topics.iter().map(|t| t.partitions.iter().map(|p| p.error_code).collect::<Vec<_>>()).collect::<Vec<_>>())];
        let delete = OffsetDeleteRequest::default().with_group_id(group.clone()).with_topics(vec![
            OffsetDeleteRequestTopic::default()
                .with_name(topic_name(&subscribed))
                .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(0)]),
            OffsetDeleteRequestTopic::default().with_name(topic_name(&other)).with_partitions(vec![
                OffsetDeleteRequestPartition::default().with_partition_index(0),
                OffsetDeleteRequestPartition::default().with_partition_index(7),
            ]),
            OffsetDeleteRequestTopic::default()
                .with_name(topic_name(&format!("{prefix}-missing")))
                .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(0)]),
        ]);
        let deleted = client.call(&delete, 0).await;
        // Apache Kafka's order of topics and partitions is its own hashing.
        let mut verdicts: Vec<(String, i32, i16)> = deleted
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.name.as_str().trim_start_matches(prefix).to_string(), p.partition_index, p.error_code)))
            .collect();
        verdicts.sort();
        seen.push(format!("delete: error {} {verdicts:?}", deleted.error_code));
        let fetched = client.call(&OffsetFetchRequest::default().with_group_id(group.clone()).with_topics(None), 7).await;
        let mut left: Vec<(String, i32, i64)> = fetched
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.name.as_str().trim_start_matches(prefix).to_string(), p.partition_index, p.committed_offset)))
            .collect();
        left.sort();
        seen.push(format!("left: {left:?}"));
        seen
    })
    .await;
}
