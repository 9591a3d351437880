//! Consumer groups: the coordinator, membership, committed offsets.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn groups_unknown_to_the_coordinator() {
    let mut pair = Pair::start("groups").await;
    let group = pair.name("nobody");
    await_coordinator(&mut pair, &group).await;
    pair.compare(
        |p, v| {
            if v >= 5 {
                DescribeGroupsRequest::default().with_groups(vec![group_id(&p.name("nobody"))]).with_include_authorized_operations(false)
            } else {
                DescribeGroupsRequest::default().with_groups(vec![group_id(&p.name("nobody"))])
            }
        },
        |response: &mut DescribeGroupsResponse, _| response.throttle_time_ms = 0,
    )
    .await;
    pair.compare(
        |p, _| HeartbeatRequest::default().with_group_id(group_id(&p.name("nobody"))).with_generation_id(1).with_member_id(StrBytes::from_static_str("m")),
        |response: &mut HeartbeatResponse, _| response.throttle_time_ms = 0,
    )
    .await;
    let versions = pair.versions::<OffsetFetchRequest>().await;
    // v8+ batches groups; the single-group form is compared here.
    let versions = *versions.start()..=(*versions.end()).min(7);
    pair.compare_at(
        versions,
        |p, _| {
            OffsetFetchRequest::default()
                .with_group_id(group_id(&p.name("nobody")))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default().with_name(topic_name(&p.name("t"))).with_partition_indexes(vec![0, 1])]))
        },
        |response: &mut OffsetFetchResponse, _| response.throttle_time_ms = 0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn offsets_committed_outside_a_group_generation_and_fetched_back() {
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    let mut pair = Pair::start("commit").await;
    let group = pair.name("g-v0");
    await_coordinator(&mut pair, &group).await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 2)]).await;
    let versions = pair.versions::<OffsetCommitRequest>().await;
    pair.compare_at(
        versions.clone(),
        |p, v| {
            let partition = |index: i32, offset: i64| {
                OffsetCommitRequestPartition::default()
                    .with_partition_index(index)
                    .with_committed_offset(offset)
                    .with_committed_metadata(Some(StrBytes::from_static_str("meta")))
            };
            OffsetCommitRequest::default()
                .with_group_id(group_id(&p.name(&format!("g-v{v}"))))
                .with_generation_id_or_member_epoch(-1)
                .with_retention_time_ms(-1)
                .with_topics(vec![
                    OffsetCommitRequestTopic::default().with_name(topic_name(&p.name("t"))).with_partitions(vec![
                        partition(0, 5),
                        partition(1, 7),
                        partition(9, 1),
                    ]),
                    OffsetCommitRequestTopic::default().with_name(topic_name(&p.name("absent"))).with_partitions(vec![partition(0, 1)]),
                ])
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
    let fetch_versions = pair.versions::<OffsetFetchRequest>().await;
    let fetch_versions = (*fetch_versions.start()).max(*versions.start())..=(*fetch_versions.end()).min(7);
    pair.compare_at(
        fetch_versions,
        |p, v| {
            OffsetFetchRequest::default()
                .with_group_id(group_id(&p.name(&format!("g-v{v}"))))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default().with_name(topic_name(&p.name("t"))).with_partition_indexes(vec![0, 1, 5])]))
        },
        |response: &mut OffsetFetchResponse, _| {
            response.throttle_time_ms = 0;
            for topic in &mut response.topics {
                topic.partitions.sort_by_key(|p| p.partition_index);
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn join_group_asks_new_members_for_an_id_and_refuses_bad_requests() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    let mut pair = Pair::start("join").await;
    let group = pair.name("g-v0");
    await_coordinator(&mut pair, &group).await;
    let join = |p: &Pair, v: i16, session_timeout_ms: i32, protocol_type: &'static str| {
        let mut request = JoinGroupRequest::default()
            .with_group_id(group_id(&p.name(&format!("g-v{v}"))))
            .with_session_timeout_ms(session_timeout_ms)
            .with_member_id(StrBytes::default())
            .with_protocol_type(StrBytes::from_static_str(protocol_type))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(Bytes::from_static(b"\0\x01"))]);
        if v >= 1 {
            request = request.with_rebalance_timeout_ms(10_000);
        }
        request
    };
    // From v4 a member without an id is given one and asked to rejoin.
    let versions = pair.versions::<JoinGroupRequest>().await;
    pair.compare_at(
        (*versions.start()).max(4)..=*versions.end(),
        move |p, v| join(p, v, 10_000, "consumer"),
        |response: &mut JoinGroupResponse, _| {
            response.throttle_time_ms = 0;
            response.member_id = StrBytes::default();
        },
    )
    .await;
    // Session timeouts outside the broker's bounds are refused.
    pair.compare(move |p, v| join(p, v, 1, "consumer"), |response: &mut JoinGroupResponse, _| response.throttle_time_ms = 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_member_joins_syncs_heartbeats_commits_and_leaves() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    let mut pair = Pair::start("lifecycle").await;
    let (t, group) = (pair.name("t"), pair.name("g"));
    create_on_both(&mut pair, &[(&t, 1)]).await;
    await_coordinator(&mut pair, &group).await;
    pair.compare_scripts(async |client, prefix| {
        let (t, group) = (format!("{prefix}-t"), group_id(&format!("{prefix}-g")));
        let mut seen = Vec::new();
        let join = |member: &str| {
            JoinGroupRequest::default()
                .with_group_id(group.clone())
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_member_id(StrBytes::from_string(member.to_string()))
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(Bytes::from_static(b"\0\x01"))])
        };
        let first = client.call(&join(""), 5).await;
        seen.push(format!("join without id: error {} gets an id: {}", first.error_code, !first.member_id.is_empty()));
        let member = first.member_id.to_string();
        let joined = client.call(&join(&member), 5).await;
        seen.push(format!(
            "join: error {} generation {} protocol {:?} leader is me: {} members {}",
            joined.error_code,
            joined.generation_id,
            joined.protocol_name,
            joined.leader == joined.member_id,
            joined.members.len()
        ));
        let generation = joined.generation_id;
        let sync = SyncGroupRequest::default()
            .with_group_id(group.clone())
            .with_generation_id(generation)
            .with_member_id(StrBytes::from_string(member.clone()))
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(StrBytes::from_string(member.clone()))
                .with_assignment(Bytes::from_static(b"plan"))]);
        let synced = client.call(&sync, 3).await;
        seen.push(format!("sync: error {} assignment {:?}", synced.error_code, synced.assignment));
        for (what, generation, member_id) in
            [("heartbeat", generation, member.as_str()), ("stale generation", generation + 5, member.as_str()), ("unknown member", generation, "nobody")]
        {
            let beat = HeartbeatRequest::default()
                .with_group_id(group.clone())
                .with_generation_id(generation)
                .with_member_id(StrBytes::from_string(member_id.to_string()));
            seen.push(format!("{what}: error {}", client.call(&beat, 3).await.error_code));
        }
        for (what, generation) in [("commit", generation), ("commit stale generation", generation + 5)] {
            let commit = OffsetCommitRequest::default()
                .with_group_id(group.clone())
                .with_generation_id_or_member_epoch(generation)
                .with_member_id(StrBytes::from_string(member.clone()))
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(topic_name(&t))
                    .with_partitions(vec![OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(3)])]);
            let committed = client.call(&commit, 7).await;
            seen.push(format!("{what}: error {}", committed.topics[0].partitions[0].error_code));
        }
        let describe = || DescribeGroupsRequest::default().with_groups(vec![group.clone()]);
        let described = client.call(&describe(), 4).await;
        let g = &described.groups[0];
        seen.push(format!(
            "describe: error {} state {} type {} protocol {} members {}",
            g.error_code,
            g.group_state,
            g.protocol_type,
            g.protocol_data,
            g.members.len()
        ));
        let delete_busy = client.call(&DeleteGroupsRequest::default().with_groups_names(vec![group.clone()]), 2).await;
        seen.push(format!("delete while in use: error {}", delete_busy.results[0].error_code));
        let leave = LeaveGroupRequest::default()
            .with_group_id(group.clone())
            .with_members(vec![MemberIdentity::default().with_member_id(StrBytes::from_string(member.clone()))]);
        let left = client.call(&leave, 3).await;
        seen.push(format!("leave: error {} member error {}", left.error_code, left.members[0].error_code));
        let described = client.call(&describe(), 4).await;
        seen.push(format!("describe after leaving: state {} members {}", described.groups[0].group_state, described.groups[0].members.len()));
        for what in ["delete", "delete again"] {
            let deleted = client.call(&DeleteGroupsRequest::default().with_groups_names(vec![group.clone()]), 2).await;
            seen.push(format!("{what}: error {}", deleted.results[0].error_code));
        }
        seen
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn find_coordinator_for_groups() {
    let mut pair = Pair::start("findcoordinator").await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    let versions = pair.versions::<FindCoordinatorRequest>().await;
    pair.compare_at(
        versions,
        |p, v| {
            let request = FindCoordinatorRequest::default().with_key_type(0);
            if v >= 4 {
                request.with_coordinator_keys(vec![StrBytes::from_string(p.name("g")), StrBytes::from_string(p.name("h"))])
            } else {
                request.with_key(StrBytes::from_string(p.name("g")))
            }
        },
        |response: &mut FindCoordinatorResponse, _| {
            response.throttle_time_ms = 0;
            forget_error_message(response.error_code, &mut response.error_message);
            (response.node_id, response.host, response.port) = (BrokerId(0), StrBytes::default(), 0);
            for coordinator in &mut response.coordinators {
                (coordinator.node_id, coordinator.host, coordinator.port) = (BrokerId(0), StrBytes::default(), 0);
                forget_error_message(coordinator.error_code, &mut coordinator.error_message);
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_offsets_listed_deleted_and_groups_removed() {
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
    let mut pair = Pair::start("offsetdelete").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 2)]).await;
    let groups = [pair.name("g1"), pair.name("g2")];
    await_coordinator(&mut pair, &groups[0]).await;
    for group in &groups {
        let commit = OffsetCommitRequest::default().with_group_id(group_id(group)).with_generation_id_or_member_epoch(-1).with_topics(vec![
            OffsetCommitRequestTopic::default().with_name(topic_name(&t)).with_partitions(vec![
                OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(4),
                OffsetCommitRequestPartition::default().with_partition_index(1).with_committed_offset(9),
            ]),
        ]);
        let (runnel, kafka) = pair.both(&commit, 7).await;
        assert_eq!(runnel, kafka);
    }
    // Listing: Apache Kafka is shared by every test, so only this test's
    // groups are compared.
    pair.compare(
        |_, v| if v >= 4 { ListGroupsRequest::default().with_states_filter(vec![StrBytes::from_static_str("Empty")]) } else { ListGroupsRequest::default() },
        {
            let prefix = pair.prefix.clone();
            move |response: &mut ListGroupsResponse, _| {
                response.throttle_time_ms = 0;
                response.groups.retain(|g| g.group_id.starts_with(prefix.as_str()));
                response.groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
            }
        },
    )
    .await;
    pair.compare(
        |p, _| {
            OffsetDeleteRequest::default().with_group_id(group_id(&p.name("g1"))).with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(topic_name(&p.name("t")))
                .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(0)])])
        },
        |response: &mut OffsetDeleteResponse, _| response.throttle_time_ms = 0,
    )
    .await;
    let fetch_versions = pair.versions::<OffsetFetchRequest>().await;
    pair.compare_at(
        (*fetch_versions.start()).max(2)..=(*fetch_versions.end()).min(7),
        |p, _| OffsetFetchRequest::default().with_group_id(group_id(&p.name("g1"))).with_topics(None),
        |response: &mut OffsetFetchResponse, _| {
            response.throttle_time_ms = 0;
            for topic in &mut response.topics {
                topic.partitions.sort_by_key(|p| p.partition_index);
            }
        },
    )
    .await;
    pair.compare(
        |p, _| OffsetDeleteRequest::default().with_group_id(group_id(&p.name("nobody"))).with_topics(vec![]),
        |response: &mut OffsetDeleteResponse, _| response.throttle_time_ms = 0,
    )
    .await;
    let versions = pair.versions::<DeleteGroupsRequest>().await;
    pair.compare_at(
        versions,
        |p, v| {
            let group = if v == 0 { p.name("g2") } else { p.name("nobody") };
            DeleteGroupsRequest::default().with_groups_names(vec![group_id(&group)])
        },
        |response: &mut DeleteGroupsResponse, _| response.throttle_time_ms = 0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_group_and_leave_group_refuse_strangers() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    let mut pair = Pair::start("strangers").await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    pair.compare_scripts(async |client, prefix| {
        let group = group_id(&format!("{prefix}-g"));
        let mut seen = Vec::new();
        let join = |member: &str, protocol_type: &'static str| {
            JoinGroupRequest::default()
                .with_group_id(group.clone())
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_member_id(StrBytes::from_string(member.to_string()))
                .with_protocol_type(StrBytes::from_static_str(protocol_type))
                .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(StrBytes::from_static_str("range")).with_metadata(Bytes::from_static(b"m"))])
        };
        let first = client.call(&join("", "consumer"), 5).await;
        let member = first.member_id.to_string();
        let joined = client.call(&join(&member, "consumer"), 5).await;
        seen.push(format!("join: error {} generation {}", joined.error_code, joined.generation_id));
        let other_type = client.call(&join("", "connect"), 5).await;
        seen.push(format!("join with another protocol type: error {}", other_type.error_code));
        for (what, generation, member_id) in
            [("sync stale generation", joined.generation_id + 1, member.as_str()), ("sync unknown member", joined.generation_id, "nobody")]
        {
            let sync = SyncGroupRequest::default()
                .with_group_id(group.clone())
                .with_generation_id(generation)
                .with_member_id(StrBytes::from_string(member_id.to_string()));
            seen.push(format!("{what}: error {}", client.call(&sync, 3).await.error_code));
        }
        let leave = LeaveGroupRequest::default().with_group_id(group.clone()).with_members(vec![
            MemberIdentity::default().with_member_id(StrBytes::from_static_str("nobody")),
            MemberIdentity::default().with_member_id(StrBytes::from_string(member.clone())),
        ]);
        let left = client.call(&leave, 3).await;
        seen.push(format!("leave: error {} members {:?}", left.error_code, left.members.iter().map(|m| m.error_code).collect::<Vec<_>>()));
        let unknown_group = LeaveGroupRequest::default()
            .with_group_id(group_id(&format!("{prefix}-nobody")))
            .with_members(vec![MemberIdentity::default().with_member_id(StrBytes::from_static_str("x"))]);
        let left = client.call(&unknown_group, 3).await;
        seen.push(format!("leave unknown group: error {} members {:?}", left.error_code, left.members.iter().map(|m| m.error_code).collect::<Vec<_>>()));
        seen
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_group_requests_metadata_too_large_and_empty_group_id() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    let mut pair = Pair::start("badgroup").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    let versions = pair.versions::<OffsetCommitRequest>().await;
    pair.compare_at(
        versions,
        |p, v| {
            OffsetCommitRequest::default().with_group_id(group_id(&p.name(&format!("g-v{v}")))).with_generation_id_or_member_epoch(-1).with_topics(vec![
                OffsetCommitRequestTopic::default().with_name(topic_name(&p.name("t"))).with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_committed_offset(1)
                    .with_committed_metadata(Some(StrBytes::from_string("m".repeat(5000))))]),
            ])
        },
        |response: &mut OffsetCommitResponse, _| response.throttle_time_ms = 0,
    )
    .await;
    pair.compare(
        |_, v| {
            let request = JoinGroupRequest::default()
                .with_group_id(group_id(""))
                .with_session_timeout_ms(10_000)
                .with_member_id(StrBytes::default())
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(Bytes::from_static(b"m"))]);
            if v >= 1 {
                request.with_rebalance_timeout_ms(10_000)
            } else {
                request
            }
        },
        |response: &mut JoinGroupResponse, _| response.throttle_time_ms = 0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn offsets_of_several_groups_fetched_in_one_request_and_groups_described_together() {
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics};
    let mut pair = Pair::start("multigroup").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 2)]).await;
    let committed = pair.name("committed");
    await_coordinator(&mut pair, &committed).await;
    let commit = OffsetCommitRequest::default().with_group_id(group_id(&committed)).with_generation_id_or_member_epoch(-1).with_topics(vec![
        OffsetCommitRequestTopic::default()
            .with_name(topic_name(&t))
            .with_partitions(vec![OffsetCommitRequestPartition::default().with_partition_index(1).with_committed_offset(11)]),
    ]);
    let (runnel, kafka) = pair.both(&commit, 7).await;
    assert_eq!(runnel, kafka);
    let versions = pair.versions::<OffsetFetchRequest>().await;
    pair.compare_at(
        (*versions.start()).max(8)..=*versions.end(),
        |p, _| {
            let group = |name: &str, topics| OffsetFetchRequestGroup::default().with_group_id(group_id(&p.name(name))).with_topics(topics);
            OffsetFetchRequest::default().with_groups(vec![
                group("committed", Some(vec![OffsetFetchRequestTopics::default().with_name(topic_name(&p.name("t"))).with_partition_indexes(vec![0, 1])])),
                group("committed", None),
                group("never", None),
            ])
        },
        |response: &mut OffsetFetchResponse, _| {
            response.throttle_time_ms = 0;
            for group in &mut response.groups {
                for topic in &mut group.topics {
                    topic.partitions.sort_by_key(|p| p.partition_index);
                }
            }
        },
    )
    .await;
    pair.compare(
        |p, _| DescribeGroupsRequest::default().with_groups(vec![group_id(&p.name("committed")), group_id(&p.name("never"))]),
        |response: &mut DescribeGroupsResponse, _| {
            response.throttle_time_ms = 0;
            response.groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn group_requests_without_a_group_id_or_protocols() {
    let mut pair = Pair::start("nogroup").await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    pair.compare(
        |_, _| HeartbeatRequest::default().with_group_id(group_id("")).with_generation_id(1).with_member_id(StrBytes::from_static_str("m")),
        |response: &mut HeartbeatResponse, _| response.throttle_time_ms = 0,
    )
    .await;
    pair.compare(
        |p, v| {
            let request = JoinGroupRequest::default()
                .with_group_id(group_id(&p.name(&format!("g-v{v}"))))
                .with_session_timeout_ms(10_000)
                .with_member_id(StrBytes::default())
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![]);
            if v >= 1 {
                request.with_rebalance_timeout_ms(10_000)
            } else {
                request
            }
        },
        |response: &mut JoinGroupResponse, _| {
            response.throttle_time_ms = 0;
            response.member_id = StrBytes::default();
        },
    )
    .await;
    let versions = pair.versions::<LeaveGroupRequest>().await;
    pair.compare_at(
        *versions.start()..=2,
        |p, _| LeaveGroupRequest::default().with_group_id(group_id(&p.name("g"))).with_member_id(StrBytes::from_static_str("nobody")),
        |response: &mut LeaveGroupResponse, _| response.throttle_time_ms = 0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leaving_and_committing_without_a_group_id() {
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    let mut pair = Pair::start("emptyid").await;
    let t = pair.name("t");
    create_on_both(&mut pair, &[(&t, 1)]).await;
    let group = pair.name("g");
    await_coordinator(&mut pair, &group).await;
    pair.compare(
        |_, v| {
            let request = LeaveGroupRequest::default().with_group_id(group_id(""));
            if v >= 3 {
                request.with_members(vec![MemberIdentity::default().with_member_id(StrBytes::from_static_str("m"))])
            } else {
                request.with_member_id(StrBytes::from_static_str("m"))
            }
        },
        |response: &mut LeaveGroupResponse, _| response.throttle_time_ms = 0,
    )
    .await;
    pair.compare(
        move |_, _| {
            OffsetCommitRequest::default().with_group_id(group_id("")).with_generation_id_or_member_epoch(-1).with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(topic_name(&t))
                    .with_partitions(vec![OffsetCommitRequestPartition::default().with_committed_offset(1)]),
            ])
        },
        |response: &mut OffsetCommitResponse, _| response.throttle_time_ms = 0,
    )
    .await;
}
