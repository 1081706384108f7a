//! Tests of the group, offset and transaction mappings. Test names carry the number of the item
//! of SECURITY-SCENARIOS.md they check (`scenario_18_...`).

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as CgAssignment, DescribedGroup as CgDescribedGroup, Member,
    TopicPartitions as CgTopicPartitions,
};
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as HbAssignment, TopicPartitions as HbTopicPartitions,
};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, TopicResponse as ProducersTopic,
};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedTxn;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

use super::super::{Authorize, Merge as MappingMerge, Plan, TopicIds};
use crate::policy::mapping::plan;
use crate::policy::model::CLUSTER_NAME;
use crate::policy::{Operation, ResourceType};
use crate::protocol::api::gateway_range;
use crate::protocol::codec::{
    decode_body, decode_request, encode_response, response_header, split_response,
};
use crate::protocol::frame::LEN_PREFIX;

use Operation::{ClusterAction, Delete, Describe, IdempotentWrite, Read, Write};
use ResourceType::{Cluster, Group, Topic, TransactionalId as Txn};

const CORRELATION: i32 = 7;

/// One fetched partition: topic, partition, committed offset, error code.
type FetchedRow<'a> = (&'a str, i32, i64, i16);
/// Builds a request body for a version.
type MakeRequest = Box<dyn Fn(i16) -> RequestKind>;

// ---- fakes ----

/// ALLOW rules as (operation, type, literal name), with Kafka's implication (READ, WRITE, DELETE,
/// ALTER imply DESCRIBE), and the answers of `allowed_any`.
#[derive(Default)]
struct Acl {
    rules: HashSet<(Operation, ResourceType, String)>,
    any: HashSet<(Operation, ResourceType)>,
}

impl Acl {
    fn new() -> Self {
        Acl::default()
    }
    fn allow(mut self, op: Operation, rtype: ResourceType, name: &str) -> Self {
        self.rules.insert((op, rtype, name.to_owned()));
        self
    }
    fn allow_any(mut self, op: Operation, rtype: ResourceType) -> Self {
        self.any.insert((op, rtype));
        self
    }
}

impl Authorize for Acl {
    fn allowed(&self, op: Operation, rtype: ResourceType, name: &str) -> bool {
        let has = |op: Operation| self.rules.contains(&(op, rtype, name.to_owned()));
        has(op) || op.implied_by().iter().any(|&implying| has(implying))
    }
    fn allowed_any(&self, op: Operation, rtype: ResourceType) -> bool {
        self.any.contains(&(op, rtype))
    }
}

#[derive(Default)]
struct Ids(HashMap<Uuid, String>);

impl TopicIds for Ids {
    fn name_of(&self, id: Uuid) -> Option<String> {
        self.0.get(&id).cloned()
    }
    fn id_of(&self, name: &str) -> Option<Uuid> {
        self.0
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(id, _)| *id)
    }
}

// ---- helpers ----

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}
fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}
fn tname(v: &str) -> TopicName {
    TopicName(s(v))
}
fn txid(v: &str) -> TransactionalId {
    TransactionalId(s(v))
}

fn header(api: ApiKey, version: i16) -> RequestHeader {
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(CORRELATION)
        .with_client_id(Some(StrBytes::from_static_str("client-1")))
}

fn plan_for(api: ApiKey, version: i16, body: RequestKind, acl: &Acl) -> Plan {
    plan(
        api,
        version,
        &header(api, version),
        &body,
        acl,
        &Ids::default(),
    )
    .expect("plan")
    .expect("a groups API")
}

fn kind(plan: &Plan) -> &'static str {
    match plan {
        Plan::Forward => "Forward",
        Plan::ForwardThenMerge(_) => "ForwardThenMerge",
        Plan::ForwardPartial { .. } => "ForwardPartial",
        Plan::Respond(_) => "Respond",
        Plan::Close(_) => "Close",
    }
}

/// The local answer of a `Respond` plan, decoded at the request's version.
fn local<T: Decodable>(plan: Plan, api: ApiKey, version: i16) -> T {
    let Plan::Respond(frame) = plan else {
        panic!("expected Respond, got {}", kind(&plan));
    };
    let payload = frame.slice(LEN_PREFIX..);
    let len = i32::from_be_bytes(frame[..LEN_PREFIX].try_into().expect("4 bytes"));
    assert_eq!(len as usize, payload.len(), "length prefix");
    let (h, body) = split_response(api, version, payload).expect("response header");
    assert_eq!(h.correlation_id, CORRELATION);
    let mut body = body;
    let decoded = T::decode(&mut body, version).expect("response body");
    assert!(body.is_empty(), "trailing bytes in the local answer");
    decoded
}

/// The re-encoded request and the merge of a `ForwardPartial` plan.
fn partial(plan: Plan, api: ApiKey, version: i16) -> (RequestKind, MappingMerge) {
    let Plan::ForwardPartial { request, merge } = plan else {
        panic!("expected ForwardPartial, got {}", kind(&plan));
    };
    let decoded =
        decode_request(api, version, request.slice(LEN_PREFIX..)).expect("forwarded request");
    assert_eq!(
        decoded.header.correlation_id, CORRELATION,
        "client's correlation id kept"
    );
    assert_eq!(
        decoded.header.client_id.as_deref(),
        Some("client-1"),
        "client id kept"
    );
    (decoded.body, merge)
}

fn then_merge(plan: Plan) -> MappingMerge {
    match plan {
        Plan::ForwardThenMerge(merge) => merge,
        other => panic!("expected ForwardThenMerge, got {}", kind(&other)),
    }
}

/// Runs `merge` over an upstream answer `upstream` and decodes the result.
fn merged<U: Encodable, T: Decodable>(
    merge: MappingMerge,
    api: ApiKey,
    version: i16,
    upstream: &U,
    acl: &Acl,
    ids: &Ids,
) -> T {
    let frame =
        encode_response(api, version, &response_header(CORRELATION), upstream).expect("upstream");
    let out = merge
        .apply(frame.slice(LEN_PREFIX..), acl, ids)
        .expect("merge");
    let (h, body) = split_response(api, version, out.slice(LEN_PREFIX..)).expect("merged header");
    assert_eq!(h.correlation_id, CORRELATION);
    decode_body(api, version, body).expect("merged body")
}

fn names<'a>(items: impl IntoIterator<Item = &'a StrBytes>) -> Vec<&'a str> {
    items.into_iter().map(|n| n.as_str()).collect()
}

// ---- OffsetCommit ----

fn commit_request(group: &str, topics: &[(&str, &[i32])]) -> OffsetCommitRequest {
    let topics = topics.iter().map(|(name, parts)| {
        let partitions = parts.iter().map(|&p| {
            OffsetCommitRequestPartition::default()
                .with_partition_index(p)
                .with_committed_offset(100)
        });
        OffsetCommitRequestTopic::default()
            .with_name(tname(name))
            .with_partitions(partitions.collect())
    });
    OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_member_id(s("m-1"))
        .with_topics(topics.collect())
}

fn commit_errors(resp: &OffsetCommitResponse) -> Vec<(&str, i32, i16)> {
    resp.topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.as_str(), p.partition_index, p.error_code))
        })
        .collect()
}

#[test]
fn scenario_19_offset_commit_without_group_read_is_30_on_every_partition() {
    let acl = Acl::new()
        .allow(Read, Topic, "t1")
        .allow(Read, Topic, "t2")
        .allow(Describe, Group, "g");
    for version in [2, 8] {
        let req = commit_request("g", &[("t1", &[0, 1]), ("t2", &[0])]);
        let plan = plan_for(
            ApiKey::OffsetCommit,
            version,
            RequestKind::OffsetCommit(req),
            &acl,
        );
        let resp: OffsetCommitResponse = local(plan, ApiKey::OffsetCommit, version);
        assert_eq!(
            commit_errors(&resp),
            vec![("t1", 0, 30), ("t1", 1, 30), ("t2", 0, 30)],
            "v{version}"
        );
    }
}

#[test]
fn scenario_18_offset_commit_without_topic_read_is_29_and_the_rest_is_forwarded() {
    // WRITE on t2 implies DESCRIBE but not READ.
    let acl = Acl::new()
        .allow(Read, Group, "g")
        .allow(Read, Topic, "t1")
        .allow(Write, Topic, "t2");
    for version in [2, 8] {
        let req = commit_request("g", &[("t2", &[0]), ("t1", &[0, 1]), ("t3", &[5])]);
        let plan = plan_for(
            ApiKey::OffsetCommit,
            version,
            RequestKind::OffsetCommit(req),
            &acl,
        );
        let (fwd, merge) = partial(plan, ApiKey::OffsetCommit, version);
        let RequestKind::OffsetCommit(fwd) = fwd else {
            panic!("{fwd:?}")
        };
        assert_eq!(fwd.group_id.as_str(), "g");
        assert_eq!(fwd.member_id.as_str(), "m-1");
        assert_eq!(names(fwd.topics.iter().map(|t| &t.name.0)), vec!["t1"]);
        assert_eq!(fwd.topics[0].partitions.len(), 2);

        let upstream =
            OffsetCommitResponse::default().with_topics(vec![OffsetCommitResponseTopic::default()
                .with_name(tname("t1"))
                .with_partitions(vec![
                    OffsetCommitResponsePartition::default().with_partition_index(0),
                    OffsetCommitResponsePartition::default().with_partition_index(1),
                ])]);
        let resp: OffsetCommitResponse = merged(
            merge,
            ApiKey::OffsetCommit,
            version,
            &upstream,
            &acl,
            &Ids::default(),
        );
        assert_eq!(
            commit_errors(&resp),
            vec![("t2", 0, 29), ("t1", 0, 0), ("t1", 1, 0), ("t3", 5, 29)],
            "v{version}: client order kept"
        );
    }
}

#[test]
fn scenario_18_offset_commit_with_every_topic_denied_is_answered_locally() {
    let acl = Acl::new().allow(Read, Group, "g");
    let req = commit_request("g", &[("t1", &[0])]);
    let plan = plan_for(
        ApiKey::OffsetCommit,
        8,
        RequestKind::OffsetCommit(req),
        &acl,
    );
    let resp: OffsetCommitResponse = local(plan, ApiKey::OffsetCommit, 8);
    assert_eq!(commit_errors(&resp), vec![("t1", 0, 29)]);
}

#[test]
fn offset_commit_fully_allowed_is_forwarded_untouched() {
    let acl = Acl::new().allow(Read, Group, "g").allow(Read, Topic, "t1");
    let req = commit_request("g", &[("t1", &[0])]);
    let plan = plan_for(
        ApiKey::OffsetCommit,
        8,
        RequestKind::OffsetCommit(req),
        &acl,
    );
    assert!(matches!(plan, Plan::Forward));
}

// ---- OffsetFetch ----

fn fetch_request(group: &str, topics: Option<&[(&str, &[i32])]>) -> OffsetFetchRequest {
    let topics = topics.map(|ts| {
        ts.iter()
            .map(|(name, parts)| {
                OffsetFetchRequestTopic::default()
                    .with_name(tname(name))
                    .with_partition_indexes(parts.to_vec())
            })
            .collect()
    });
    OffsetFetchRequest::default()
        .with_group_id(gid(group))
        .with_topics(topics)
}

fn fetch_group(group: &str, topics: Option<&[(&str, &[i32])]>) -> OffsetFetchRequestGroup {
    let topics = topics.map(|ts| {
        ts.iter()
            .map(|(name, parts)| {
                OffsetFetchRequestTopics::default()
                    .with_name(tname(name))
                    .with_partition_indexes(parts.to_vec())
            })
            .collect()
    });
    OffsetFetchRequestGroup::default()
        .with_group_id(gid(group))
        .with_topics(topics)
}

fn fetched(resp: &OffsetFetchResponse) -> Vec<FetchedRow<'_>> {
    resp.topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.as_str(),
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                )
            })
        })
        .collect()
}

fn fetched_group(group: &OffsetFetchResponseGroup) -> Vec<FetchedRow<'_>> {
    group
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.as_str(),
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                )
            })
        })
        .collect()
}

fn upstream_fetch_topic(name: &str, offsets: &[(i32, i64)]) -> OffsetFetchResponseTopic {
    OffsetFetchResponseTopic::default()
        .with_name(tname(name))
        .with_partitions(
            offsets
                .iter()
                .map(|&(p, o)| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(p)
                        .with_committed_offset(o)
                })
                .collect(),
        )
}

fn upstream_fetch_topics(name: &str, offsets: &[(i32, i64)]) -> OffsetFetchResponseTopics {
    OffsetFetchResponseTopics::default()
        .with_name(tname(name))
        .with_partitions(
            offsets
                .iter()
                .map(|&(p, o)| {
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(p)
                        .with_committed_offset(o)
                })
                .collect(),
        )
}

#[test]
fn scenario_22_offset_fetch_without_group_describe_v1_errs_every_partition() {
    let acl = Acl::new().allow(Describe, Topic, "t1");
    let req = fetch_request("g", Some(&[("t1", &[0, 1])]));
    let plan = plan_for(ApiKey::OffsetFetch, 1, RequestKind::OffsetFetch(req), &acl);
    let resp: OffsetFetchResponse = local(plan, ApiKey::OffsetFetch, 1);
    assert_eq!(fetched(&resp), vec![("t1", 0, -1, 30), ("t1", 1, -1, 30)]);
    assert_eq!(resp.topics[0].partitions[0].metadata.as_deref(), Some(""));
}

#[test]
fn scenario_22_offset_fetch_without_group_describe_v7_is_a_top_level_30() {
    let acl = Acl::new().allow(Describe, Topic, "t1");
    for topics in [Some(&[("t1", &[0][..])][..]), None] {
        let req = fetch_request("g", topics);
        let plan = plan_for(ApiKey::OffsetFetch, 7, RequestKind::OffsetFetch(req), &acl);
        let resp: OffsetFetchResponse = local(plan, ApiKey::OffsetFetch, 7);
        assert_eq!(resp.error_code, 30);
        assert!(resp.topics.is_empty());
    }
}

#[test]
fn scenario_20_offset_fetch_named_partitions_without_topic_describe_is_29_offset_minus_1() {
    let acl = Acl::new().allow(Describe, Group, "g");
    for version in [1, 7] {
        let req = fetch_request("g", Some(&[("t1", &[0, 3])]));
        let plan = plan_for(
            ApiKey::OffsetFetch,
            version,
            RequestKind::OffsetFetch(req),
            &acl,
        );
        let resp: OffsetFetchResponse = local(plan, ApiKey::OffsetFetch, version);
        assert_eq!(
            fetched(&resp),
            vec![("t1", 0, -1, 29), ("t1", 3, -1, 29)],
            "v{version}"
        );
        assert_eq!(resp.error_code, 0);
    }
}

#[test]
fn scenario_20_offset_fetch_v7_partial_forwards_allowed_topics_and_merges_29() {
    let acl = Acl::new()
        .allow(Describe, Group, "g")
        .allow(Describe, Topic, "t1");
    let req = fetch_request("g", Some(&[("t2", &[0]), ("t1", &[0])]));
    let plan = plan_for(ApiKey::OffsetFetch, 7, RequestKind::OffsetFetch(req), &acl);
    let (fwd, merge) = partial(plan, ApiKey::OffsetFetch, 7);
    let RequestKind::OffsetFetch(fwd) = fwd else {
        panic!()
    };
    let topics = fwd.topics.expect("named topics");
    assert_eq!(names(topics.iter().map(|t| &t.name.0)), vec!["t1"]);

    let upstream =
        OffsetFetchResponse::default().with_topics(vec![upstream_fetch_topic("t1", &[(0, 42)])]);
    let resp: OffsetFetchResponse = merged(
        merge,
        ApiKey::OffsetFetch,
        7,
        &upstream,
        &acl,
        &Ids::default(),
    );
    assert_eq!(fetched(&resp), vec![("t2", 0, -1, 29), ("t1", 0, 42, 0)]);
}

#[test]
fn offset_fetch_v7_group_error_upstream_drops_the_topic_errors_as_kafka_does() {
    let acl = Acl::new()
        .allow(Describe, Group, "g")
        .allow(Describe, Topic, "t1");
    let req = fetch_request("g", Some(&[("t2", &[0]), ("t1", &[0])]));
    let plan = plan_for(ApiKey::OffsetFetch, 7, RequestKind::OffsetFetch(req), &acl);
    let (_, merge) = partial(plan, ApiKey::OffsetFetch, 7);
    let upstream = OffsetFetchResponse::default().with_error_code(16); // NOT_COORDINATOR
    let resp: OffsetFetchResponse = merged(
        merge,
        ApiKey::OffsetFetch,
        7,
        &upstream,
        &acl,
        &Ids::default(),
    );
    assert_eq!(resp.error_code, 16);
    assert!(resp.topics.is_empty());
}

#[test]
fn scenario_21_offset_fetch_all_partitions_filters_undescribable_topics_v7() {
    let acl = Acl::new()
        .allow(Describe, Group, "g")
        .allow(Read, Topic, "t1");
    let req = fetch_request("g", None);
    let plan = plan_for(ApiKey::OffsetFetch, 7, RequestKind::OffsetFetch(req), &acl);
    let merge = then_merge(plan);
    let upstream = OffsetFetchResponse::default().with_topics(vec![
        upstream_fetch_topic("secret", &[(0, 9)]),
        upstream_fetch_topic("t1", &[(0, 5)]),
    ]);
    let resp: OffsetFetchResponse = merged(
        merge,
        ApiKey::OffsetFetch,
        7,
        &upstream,
        &acl,
        &Ids::default(),
    );
    assert_eq!(fetched(&resp), vec![("t1", 0, 5, 0)]);
    assert_eq!(resp.error_code, 0);
}

#[test]
fn offset_fetch_of_an_empty_topic_list_never_shows_more_than_the_session_may_see() {
    // Kafka reads [] as no topics; a broker reading it as every topic must not widen the answer.
    let acl = Acl::new()
        .allow(Describe, Group, "g")
        .allow(Read, Topic, "t1");
    let req = fetch_request("g", Some(&[]));
    let plan = plan_for(ApiKey::OffsetFetch, 7, RequestKind::OffsetFetch(req), &acl);
    let merge = then_merge(plan);
    let upstream = OffsetFetchResponse::default().with_topics(vec![
        upstream_fetch_topic("secret", &[(0, 9)]),
        upstream_fetch_topic("t1", &[(0, 5)]),
    ]);
    let resp: OffsetFetchResponse = merged(
        merge,
        ApiKey::OffsetFetch,
        7,
        &upstream,
        &acl,
        &Ids::default(),
    );
    assert_eq!(
        fetched(&resp),
        vec![("t1", 0, 5, 0)],
        "no undescribable topic"
    );
    // The same inside a v8 group.
    let req = OffsetFetchRequest::default().with_groups(vec![fetch_group("g", Some(&[]))]);
    let plan = plan_for(ApiKey::OffsetFetch, 8, RequestKind::OffsetFetch(req), &acl);
    assert!(
        !matches!(plan, Plan::Forward),
        "an empty list went through unfiltered"
    );
}

#[test]
fn scenarios_20_21_22_offset_fetch_v8_batches_groups() {
    let acl = Acl::new()
        .allow(Describe, Group, "g1")
        .allow(Describe, Group, "g3")
        .allow(Describe, Group, "g4")
        .allow(Describe, Topic, "t1");
    let req = OffsetFetchRequest::default().with_groups(vec![
        fetch_group("g1", Some(&[("t1", &[0]), ("t2", &[1])])), // partial
        fetch_group("g2", Some(&[("t1", &[0])])),               // group denied
        fetch_group("g3", None),                                // all topics, filtered
        fetch_group("g4", Some(&[("t2", &[0])])),               // every topic denied
    ]);
    let plan = plan_for(ApiKey::OffsetFetch, 8, RequestKind::OffsetFetch(req), &acl);
    let (fwd, merge) = partial(plan, ApiKey::OffsetFetch, 8);
    let RequestKind::OffsetFetch(fwd) = fwd else {
        panic!()
    };
    assert_eq!(
        names(fwd.groups.iter().map(|g| &g.group_id.0)),
        vec!["g1", "g3"]
    );
    let g1_topics = fwd.groups[0].topics.as_ref().expect("named");
    assert_eq!(names(g1_topics.iter().map(|t| &t.name.0)), vec!["t1"]);
    assert!(
        fwd.groups[1].topics.is_none(),
        "all-topics group forwarded as such"
    );

    // Upstream answers in another order; matching is by group id.
    let upstream = OffsetFetchResponse::default().with_groups(vec![
        OffsetFetchResponseGroup::default()
            .with_group_id(gid("g3"))
            .with_topics(vec![
                upstream_fetch_topics("t1", &[(0, 7)]),
                upstream_fetch_topics("hidden", &[(0, 8)]),
            ]),
        OffsetFetchResponseGroup::default()
            .with_group_id(gid("g1"))
            .with_topics(vec![upstream_fetch_topics("t1", &[(0, 3)])]),
    ]);
    let resp: OffsetFetchResponse = merged(
        merge,
        ApiKey::OffsetFetch,
        8,
        &upstream,
        &acl,
        &Ids::default(),
    );
    let groups: Vec<(&str, i16, Vec<FetchedRow>)> = resp
        .groups
        .iter()
        .map(|g| (g.group_id.as_str(), g.error_code, fetched_group(g)))
        .collect();
    assert_eq!(
        groups,
        vec![
            ("g1", 0, vec![("t1", 0, 3, 0), ("t2", 1, -1, 29)]),
            ("g2", 30, vec![]),
            ("g3", 0, vec![("t1", 0, 7, 0)]),
            ("g4", 0, vec![("t2", 0, -1, 29)]),
        ]
    );
}

#[test]
fn offset_fetch_v8_every_group_denied_is_answered_locally_and_all_allowed_forwards() {
    let acl = Acl::new().allow(Describe, Topic, "t1");
    let req = OffsetFetchRequest::default().with_groups(vec![fetch_group("g1", None)]);
    let plan = plan_for(
        ApiKey::OffsetFetch,
        9,
        RequestKind::OffsetFetch(req.clone()),
        &acl,
    );
    let resp: OffsetFetchResponse = local(plan, ApiKey::OffsetFetch, 9);
    assert_eq!(resp.groups.len(), 1);
    assert_eq!(
        (resp.groups[0].group_id.as_str(), resp.groups[0].error_code),
        ("g1", 30)
    );

    let acl = acl.allow(Describe, Group, "g1");
    let named =
        OffsetFetchRequest::default().with_groups(vec![fetch_group("g1", Some(&[("t1", &[0])]))]);
    let plan = plan_for(
        ApiKey::OffsetFetch,
        8,
        RequestKind::OffsetFetch(named),
        &acl,
    );
    assert!(matches!(plan, Plan::Forward));
    let plan = plan_for(ApiKey::OffsetFetch, 8, RequestKind::OffsetFetch(req), &acl);
    assert_eq!(
        kind(&plan),
        "ForwardThenMerge",
        "all-topics group is filtered"
    );
}

// ---- OffsetDelete ----

fn delete_request(group: &str, topics: &[(&str, &[i32])]) -> OffsetDeleteRequest {
    let topics = topics.iter().map(|(name, parts)| {
        OffsetDeleteRequestTopic::default()
            .with_name(tname(name))
            .with_partitions(
                parts
                    .iter()
                    .map(|&p| OffsetDeleteRequestPartition::default().with_partition_index(p))
                    .collect(),
            )
    });
    OffsetDeleteRequest::default()
        .with_group_id(gid(group))
        .with_topics(topics.collect())
}

fn deleted(resp: &OffsetDeleteResponse) -> Vec<(&str, i32, i16)> {
    resp.topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.as_str(), p.partition_index, p.error_code))
        })
        .collect()
}

#[test]
fn scenario_25_offset_delete_with_group_delete_and_read_but_no_topic_read_is_29() {
    let acl = Acl::new()
        .allow(Delete, Group, "g")
        .allow(Read, Group, "g")
        .allow(Describe, Topic, "t1");
    let req = delete_request("g", &[("t1", &[0, 1])]);
    let plan = plan_for(
        ApiKey::OffsetDelete,
        0,
        RequestKind::OffsetDelete(req),
        &acl,
    );
    // The group coordinator is still asked (with no topics): its group-level answer decides.
    let (fwd, merge) = partial(plan, ApiKey::OffsetDelete, 0);
    let RequestKind::OffsetDelete(fwd) = fwd else {
        panic!()
    };
    assert!(fwd.topics.is_empty(), "no denied topic reaches the broker");
    let resp: OffsetDeleteResponse = merged(
        merge,
        ApiKey::OffsetDelete,
        0,
        &OffsetDeleteResponse::default(),
        &acl,
        &Ids::default(),
    );
    assert_eq!(resp.error_code, 0);
    assert_eq!(deleted(&resp), vec![("t1", 0, 29), ("t1", 1, 29)]);
    // A group the coordinator does not know: Kafka's answer is its error alone.
    let plan = plan_for(
        ApiKey::OffsetDelete,
        0,
        RequestKind::OffsetDelete(delete_request("g", &[("t1", &[0, 1])])),
        &acl,
    );
    let (_, merge) = partial(plan, ApiKey::OffsetDelete, 0);
    let resp: OffsetDeleteResponse = merged(
        merge,
        ApiKey::OffsetDelete,
        0,
        &OffsetDeleteResponse::default().with_error_code(69),
        &acl,
        &Ids::default(),
    );
    assert_eq!((resp.error_code, resp.topics.len()), (69, 0));
}

#[test]
fn offset_delete_needs_group_delete_not_read() {
    let acl = Acl::new().allow(Read, Group, "g").allow(Read, Topic, "t1");
    let req = delete_request("g", &[("t1", &[0])]);
    let plan = plan_for(
        ApiKey::OffsetDelete,
        0,
        RequestKind::OffsetDelete(req.clone()),
        &acl,
    );
    let resp: OffsetDeleteResponse = local(plan, ApiKey::OffsetDelete, 0);
    assert_eq!(resp.error_code, 30);
    assert!(resp.topics.is_empty());

    // Kafka checks only DELETE on the group.
    let acl = Acl::new()
        .allow(Delete, Group, "g")
        .allow(Read, Topic, "t1");
    let plan = plan_for(
        ApiKey::OffsetDelete,
        0,
        RequestKind::OffsetDelete(req),
        &acl,
    );
    assert!(matches!(plan, Plan::Forward));
}

#[test]
fn scenario_25_offset_delete_partial_merges_29_unless_the_upstream_fails_the_group() {
    let acl = Acl::new()
        .allow(Delete, Group, "g")
        .allow(Read, Topic, "t1");
    let req = delete_request("g", &[("t1", &[0]), ("t2", &[4])]);
    let plan = plan_for(
        ApiKey::OffsetDelete,
        0,
        RequestKind::OffsetDelete(req.clone()),
        &acl,
    );
    let (fwd, merge) = partial(plan, ApiKey::OffsetDelete, 0);
    let RequestKind::OffsetDelete(fwd) = fwd else {
        panic!()
    };
    assert_eq!(names(fwd.topics.iter().map(|t| &t.name.0)), vec!["t1"]);
    let upstream =
        OffsetDeleteResponse::default().with_topics(vec![OffsetDeleteResponseTopic::default()
            .with_name(tname("t1"))
            .with_partitions(vec![
                OffsetDeleteResponsePartition::default().with_partition_index(0)
            ])]);
    let resp: OffsetDeleteResponse = merged(
        merge,
        ApiKey::OffsetDelete,
        0,
        &upstream,
        &acl,
        &Ids::default(),
    );
    assert_eq!(deleted(&resp), vec![("t1", 0, 0), ("t2", 4, 29)]);

    let plan = plan_for(
        ApiKey::OffsetDelete,
        0,
        RequestKind::OffsetDelete(req),
        &acl,
    );
    let (_, merge) = partial(plan, ApiKey::OffsetDelete, 0);
    let upstream = OffsetDeleteResponse::default().with_error_code(69); // GROUP_ID_NOT_FOUND
    let resp: OffsetDeleteResponse = merged(
        merge,
        ApiKey::OffsetDelete,
        0,
        &upstream,
        &acl,
        &Ids::default(),
    );
    assert_eq!((resp.error_code, resp.topics.len()), (69, 0));
}

// ---- FindCoordinator ----

#[test]
fn scenario_22_find_coordinator_group_v3_without_describe_is_30_and_no_node() {
    let acl = Acl::new().allow(Describe, Txn, "g");
    for version in [0, 3] {
        let req = FindCoordinatorRequest::default()
            .with_key(s("g"))
            .with_key_type(0);
        let plan = plan_for(
            ApiKey::FindCoordinator,
            version,
            RequestKind::FindCoordinator(req),
            &acl,
        );
        let resp: FindCoordinatorResponse = local(plan, ApiKey::FindCoordinator, version);
        assert_eq!(resp.error_code, 30);
        assert_eq!(
            (resp.node_id.0, resp.host.as_str(), resp.port),
            (-1, "", -1)
        );
        if version >= 1 {
            assert_eq!(
                resp.error_message.as_deref(),
                Some("Group authorization failed.")
            );
        }
    }
    let acl = Acl::new().allow(Read, Group, "g");
    let req = FindCoordinatorRequest::default().with_key(s("g"));
    let plan = plan_for(
        ApiKey::FindCoordinator,
        3,
        RequestKind::FindCoordinator(req),
        &acl,
    );
    assert!(matches!(plan, Plan::Forward), "READ implies DESCRIBE");
}

#[test]
fn scenario_5_find_coordinator_transaction_without_describe_is_53() {
    let acl = Acl::new().allow(Describe, Group, "tx");
    let req = FindCoordinatorRequest::default()
        .with_key(s("tx"))
        .with_key_type(1);
    let plan = plan_for(
        ApiKey::FindCoordinator,
        3,
        RequestKind::FindCoordinator(req),
        &acl,
    );
    let resp: FindCoordinatorResponse = local(plan, ApiKey::FindCoordinator, 3);
    assert_eq!(resp.error_code, 53);
    assert_eq!(
        resp.error_message.as_deref(),
        Some("Transactional Id authorization failed.")
    );

    let req = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_coordinator_keys(vec![s("tx"), s("tx2")]);
    let plan = plan_for(
        ApiKey::FindCoordinator,
        4,
        RequestKind::FindCoordinator(req),
        &acl,
    );
    let resp: FindCoordinatorResponse = local(plan, ApiKey::FindCoordinator, 4);
    let got: Vec<(&str, i16, i32, &str, i32)> = resp
        .coordinators
        .iter()
        .map(|c| {
            (
                c.key.as_str(),
                c.error_code,
                c.node_id.0,
                c.host.as_str(),
                c.port,
            )
        })
        .collect();
    assert_eq!(got, vec![("tx", 53, -1, "", -1), ("tx2", 53, -1, "", -1)]);
}

#[test]
fn scenario_22_find_coordinator_v4_batch_forwards_allowed_keys_and_merges_errors() {
    let acl = Acl::new().allow(Describe, Group, "g2");
    let req = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![s("g1"), s("g2"), s("g3")]);
    let plan = plan_for(
        ApiKey::FindCoordinator,
        4,
        RequestKind::FindCoordinator(req),
        &acl,
    );
    let (fwd, merge) = partial(plan, ApiKey::FindCoordinator, 4);
    let RequestKind::FindCoordinator(fwd) = fwd else {
        panic!()
    };
    assert_eq!(names(&fwd.coordinator_keys), vec!["g2"]);
    assert_eq!(fwd.key_type, 0);

    let upstream =
        FindCoordinatorResponse::default().with_coordinators(vec![Coordinator::default()
            .with_key(s("g2"))
            .with_node_id(BrokerId(3))
            .with_host(s("broker-3"))
            .with_port(9092)]);
    let resp: FindCoordinatorResponse = merged(
        merge,
        ApiKey::FindCoordinator,
        4,
        &upstream,
        &acl,
        &Ids::default(),
    );
    let got: Vec<(&str, i16, i32, &str, i32)> = resp
        .coordinators
        .iter()
        .map(|c| {
            (
                c.key.as_str(),
                c.error_code,
                c.node_id.0,
                c.host.as_str(),
                c.port,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("g1", 30, -1, "", -1),
            ("g2", 0, 3, "broker-3", 9092),
            ("g3", 30, -1, "", -1)
        ]
    );
}

#[test]
fn find_coordinator_share_and_unknown_key_types() {
    let acl = Acl::new();
    let req = FindCoordinatorRequest::default()
        .with_key_type(2)
        .with_coordinator_keys(vec![s("k")]);
    let plan = plan_for(
        ApiKey::FindCoordinator,
        4,
        RequestKind::FindCoordinator(req.clone()),
        &acl,
    );
    let resp: FindCoordinatorResponse = local(plan, ApiKey::FindCoordinator, 4);
    assert_eq!(
        resp.coordinators[0].error_code, 42,
        "SHARE before v6 is INVALID_REQUEST"
    );
    let plan = plan_for(
        ApiKey::FindCoordinator,
        6,
        RequestKind::FindCoordinator(req.clone()),
        &acl,
    );
    let resp: FindCoordinatorResponse = local(plan, ApiKey::FindCoordinator, 6);
    assert_eq!(
        resp.coordinators[0].error_code, 31,
        "SHARE needs CLUSTER_ACTION"
    );
    let acl = Acl::new().allow(ClusterAction, Cluster, CLUSTER_NAME);
    let plan = plan_for(
        ApiKey::FindCoordinator,
        6,
        RequestKind::FindCoordinator(req),
        &acl,
    );
    assert!(matches!(plan, Plan::Forward));
    let req = FindCoordinatorRequest::default()
        .with_key_type(9)
        .with_key(s("k"));
    let plan = plan_for(
        ApiKey::FindCoordinator,
        2,
        RequestKind::FindCoordinator(req),
        &acl,
    );
    let resp: FindCoordinatorResponse = local(plan, ApiKey::FindCoordinator, 2);
    assert_eq!(resp.error_code, 42);
}

// ---- classic group membership ----

#[test]
fn scenario_22_join_group_without_group_read_is_30_as_kafka_builds_it() {
    let acl = Acl::new().allow(Describe, Group, "g");
    for version in [0, 6, 7, 9] {
        let req = JoinGroupRequest::default()
            .with_group_id(gid("g"))
            .with_member_id(s("member-9"))
            .with_protocol_type(s("consumer"));
        let plan = plan_for(
            ApiKey::JoinGroup,
            version,
            RequestKind::JoinGroup(req),
            &acl,
        );
        let resp: JoinGroupResponse = local(plan, ApiKey::JoinGroup, version);
        assert_eq!(resp.error_code, 30, "v{version}");
        assert_eq!(resp.generation_id, -1);
        assert_eq!(resp.member_id.as_str(), "", "UNKNOWN_MEMBER_ID, not echoed");
        assert_eq!(resp.leader.as_str(), "");
        assert!(resp.members.is_empty());
        let expected_protocol = if version >= 7 { None } else { Some("") };
        assert_eq!(
            resp.protocol_name.as_deref(),
            expected_protocol,
            "v{version}"
        );
        assert_eq!(resp.protocol_type, None);
    }
    let acl = Acl::new().allow(Read, Group, "g");
    let req = JoinGroupRequest::default().with_group_id(gid("g"));
    assert!(matches!(
        plan_for(ApiKey::JoinGroup, 9, RequestKind::JoinGroup(req), &acl),
        Plan::Forward
    ));
}

#[test]
fn scenario_22_sync_group_and_heartbeat_without_group_read_are_30() {
    let acl = Acl::new().allow(Describe, Group, "g");
    for version in [0, 3, 5] {
        let req = SyncGroupRequest::default()
            .with_group_id(gid("g"))
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(Some(s("range")));
        let plan = plan_for(
            ApiKey::SyncGroup,
            version,
            RequestKind::SyncGroup(req),
            &acl,
        );
        let resp: SyncGroupResponse = local(plan, ApiKey::SyncGroup, version);
        assert_eq!(resp.error_code, 30);
        assert!(resp.assignment.is_empty());
    }
    for version in [0, 4] {
        let req = HeartbeatRequest::default().with_group_id(gid("g"));
        let plan = plan_for(
            ApiKey::Heartbeat,
            version,
            RequestKind::Heartbeat(req),
            &acl,
        );
        let resp: HeartbeatResponse = local(plan, ApiKey::Heartbeat, version);
        assert_eq!(resp.error_code, 30);
    }
    let acl = Acl::new().allow(Read, Group, "g");
    let req = HeartbeatRequest::default().with_group_id(gid("g"));
    assert!(matches!(
        plan_for(ApiKey::Heartbeat, 4, RequestKind::Heartbeat(req), &acl),
        Plan::Forward
    ));
}

#[test]
fn sync_group_v5_without_protocol_is_23_before_authorization() {
    let acl = Acl::new();
    let req = SyncGroupRequest::default()
        .with_group_id(gid("g"))
        .with_protocol_type(Some(s("consumer")));
    let plan = plan_for(ApiKey::SyncGroup, 5, RequestKind::SyncGroup(req), &acl);
    let resp: SyncGroupResponse = local(plan, ApiKey::SyncGroup, 5);
    assert_eq!(resp.error_code, 23);
}

#[test]
fn scenario_22_leave_group_v2_and_v3_without_group_read_is_a_top_level_30() {
    let acl = Acl::new().allow(Describe, Group, "g");
    let v2 = LeaveGroupRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(s("m1"));
    let plan = plan_for(ApiKey::LeaveGroup, 2, RequestKind::LeaveGroup(v2), &acl);
    let resp: LeaveGroupResponse = local(plan, ApiKey::LeaveGroup, 2);
    assert_eq!(resp.error_code, 30);

    let v3 = LeaveGroupRequest::default()
        .with_group_id(gid("g"))
        .with_members(vec![
            MemberIdentity::default().with_member_id(s("m1")),
            MemberIdentity::default().with_member_id(s("m2")),
        ]);
    let plan = plan_for(ApiKey::LeaveGroup, 3, RequestKind::LeaveGroup(v3), &acl);
    let resp: LeaveGroupResponse = local(plan, ApiKey::LeaveGroup, 3);
    assert_eq!(resp.error_code, 30);
    assert!(
        resp.members.is_empty(),
        "LeaveGroupRequest.getErrorResponse has no member entries"
    );
}

// ---- ConsumerGroupHeartbeat / ConsumerGroupDescribe ----

#[test]
fn scenario_22_consumer_group_heartbeat_without_group_read_is_30() {
    let acl = Acl::new()
        .allow(Describe, Group, "g")
        .allow(Describe, Topic, "t1");
    let req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_subscribed_topic_names(Some(vec![tname("t1")]));
    let plan = plan_for(
        ApiKey::ConsumerGroupHeartbeat,
        0,
        RequestKind::ConsumerGroupHeartbeat(req),
        &acl,
    );
    let resp: ConsumerGroupHeartbeatResponse = local(plan, ApiKey::ConsumerGroupHeartbeat, 0);
    assert_eq!(resp.error_code, 30);
    assert_eq!(resp.member_id, None);
}

#[test]
fn consumer_group_heartbeat_with_an_undescribable_subscribed_topic_is_29() {
    let acl = Acl::new()
        .allow(Read, Group, "g")
        .allow(Describe, Topic, "t1");
    let req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_subscribed_topic_names(Some(vec![tname("t1"), tname("t2")]));
    let plan = plan_for(
        ApiKey::ConsumerGroupHeartbeat,
        1,
        RequestKind::ConsumerGroupHeartbeat(req),
        &acl,
    );
    let resp: ConsumerGroupHeartbeatResponse = local(plan, ApiKey::ConsumerGroupHeartbeat, 1);
    assert_eq!(resp.error_code, 29);
}

#[test]
fn consumer_group_heartbeat_assignment_drops_topics_the_session_may_not_describe() {
    let acl = Acl::new().allow(Read, Group, "g").allow(Read, Topic, "t1");
    let (t1, hidden, fresh) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
    let ids = Ids(HashMap::from([
        (t1, "t1".to_owned()),
        (hidden, "hidden".to_owned()),
    ]));
    let req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_subscribed_topic_regex(Some(s(".*")));
    let plan = plan_for(
        ApiKey::ConsumerGroupHeartbeat,
        1,
        RequestKind::ConsumerGroupHeartbeat(req),
        &acl,
    );
    let merge = then_merge(plan);
    let upstream = ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(s("m")))
        .with_member_epoch(5)
        .with_assignment(Some(HbAssignment::default().with_topic_partitions(vec![
            HbTopicPartitions::default().with_topic_id(hidden).with_partitions(vec![0]),
            HbTopicPartitions::default().with_topic_id(t1).with_partitions(vec![0, 1]),
            HbTopicPartitions::default().with_topic_id(fresh).with_partitions(vec![0]),
        ])));
    let resp: ConsumerGroupHeartbeatResponse = merged(
        merge,
        ApiKey::ConsumerGroupHeartbeat,
        1,
        &upstream,
        &acl,
        &ids,
    );
    let kept: Vec<Uuid> = resp
        .assignment
        .expect("assignment")
        .topic_partitions
        .iter()
        .map(|tp| tp.topic_id)
        .collect();
    // (`fresh` is unknown to the gateway even after the session asked the cluster: dropped, never
    // passed to the client unauthorized.)
    assert_eq!(
        kept,
        vec![t1],
        "only assigned topics the member may describe"
    );
    assert_eq!(resp.member_epoch, 5);
    // The session learns which ids to resolve before merging.
    let plan = plan_for(
        ApiKey::ConsumerGroupHeartbeat,
        1,
        RequestKind::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatRequest::default().with_group_id(gid("g")),
        ),
        &acl,
    );
    let frame = encode_response(
        ApiKey::ConsumerGroupHeartbeat,
        1,
        &response_header(CORRELATION),
        &upstream,
    )
    .expect("upstream");
    assert_eq!(
        then_merge(plan).upstream_topic_ids(&frame.slice(LEN_PREFIX..)),
        vec![hidden, t1, fresh]
    );
}

fn cg_member(topic: &str) -> Member {
    Member::default().with_member_id(s("m")).with_assignment(
        CgAssignment::default().with_topic_partitions(vec![CgTopicPartitions::default()
            .with_topic_name(tname(topic))
            .with_partitions(vec![0])]),
    )
}

#[test]
fn consumer_group_describe_denies_per_group_and_hides_groups_with_undescribable_topics() {
    let acl = Acl::new()
        .allow(Describe, Group, "g1")
        .allow(Read, Group, "g3")
        .allow(Describe, Topic, "t1");
    let req = ConsumerGroupDescribeRequest::default()
        .with_group_ids(vec![gid("g1"), gid("g2"), gid("g3")])
        .with_include_authorized_operations(true);
    let plan = plan_for(
        ApiKey::ConsumerGroupDescribe,
        0,
        RequestKind::ConsumerGroupDescribe(req),
        &acl,
    );
    let (fwd, merge) = partial(plan, ApiKey::ConsumerGroupDescribe, 0);
    let RequestKind::ConsumerGroupDescribe(fwd) = fwd else {
        panic!()
    };
    assert_eq!(names(fwd.group_ids.iter().map(|g| &g.0)), vec!["g1", "g3"]);

    let upstream = ConsumerGroupDescribeResponse::default().with_groups(vec![
        CgDescribedGroup::default()
            .with_group_id(gid("g1"))
            .with_group_state(s("Stable"))
            .with_members(vec![cg_member("t1")])
            .with_authorized_operations(-1),
        CgDescribedGroup::default()
            .with_group_id(gid("g3"))
            .with_group_state(s("Stable"))
            .with_members(vec![cg_member("secret")]),
    ]);
    let resp: ConsumerGroupDescribeResponse = merged(
        merge,
        ApiKey::ConsumerGroupDescribe,
        0,
        &upstream,
        &acl,
        &Ids::default(),
    );
    let got: Vec<(&str, i16, usize)> = resp
        .groups
        .iter()
        .map(|g| (g.group_id.as_str(), g.error_code, g.members.len()))
        .collect();
    assert_eq!(got, vec![("g1", 0, 1), ("g2", 30, 0), ("g3", 29, 0)]);
    assert_eq!(
        resp.groups[0].authorized_operations,
        1 << 8,
        "DESCRIBE only, recomputed"
    );
    assert_eq!(
        resp.groups[2].error_message.as_deref(),
        Some("The group has described topic(s) that the client is not authorized to describe.")
    );
}

// ---- DescribeGroups / ListGroups / DeleteGroups ----

#[test]
fn describe_groups_denied_group_is_30_with_its_id_and_operations_are_recomputed() {
    let acl = Acl::new().allow(Read, Group, "g1");
    let req = DescribeGroupsRequest::default()
        .with_groups(vec![gid("g0"), gid("g1")])
        .with_include_authorized_operations(true);
    let plan = plan_for(
        ApiKey::DescribeGroups,
        5,
        RequestKind::DescribeGroups(req),
        &acl,
    );
    let (fwd, merge) = partial(plan, ApiKey::DescribeGroups, 5);
    let RequestKind::DescribeGroups(fwd) = fwd else {
        panic!()
    };
    assert_eq!(names(fwd.groups.iter().map(|g| &g.0)), vec!["g1"]);
    assert!(fwd.include_authorized_operations);

    let upstream = DescribeGroupsResponse::default().with_groups(vec![DescribedGroup::default()
        .with_group_id(gid("g1"))
        .with_group_state(s("Stable"))
        .with_authorized_operations(0b1_1100_1000)]);
    let resp: DescribeGroupsResponse = merged(
        merge,
        ApiKey::DescribeGroups,
        5,
        &upstream,
        &acl,
        &Ids::default(),
    );
    let denied = &resp.groups[0];
    assert_eq!(
        (
            denied.group_id.as_str(),
            denied.error_code,
            denied.group_state.as_str(),
            denied.members.len()
        ),
        ("g0", 30, "", 0)
    );
    assert_eq!(denied.authorized_operations, i32::MIN);
    let ok = &resp.groups[1];
    assert_eq!(
        (ok.group_id.as_str(), ok.group_state.as_str()),
        ("g1", "Stable")
    );
    assert_eq!(
        ok.authorized_operations,
        (1 << 3) | (1 << 8),
        "READ and DESCRIBE"
    );
}

#[test]
fn describe_groups_all_allowed_forwards_unless_operations_are_asked_for() {
    let acl = Acl::new().allow(Describe, Group, "g1");
    let req = DescribeGroupsRequest::default().with_groups(vec![gid("g1")]);
    let plan = plan_for(
        ApiKey::DescribeGroups,
        2,
        RequestKind::DescribeGroups(req.clone()),
        &acl,
    );
    assert!(matches!(plan, Plan::Forward));
    let req = req.with_include_authorized_operations(true);
    let plan = plan_for(
        ApiKey::DescribeGroups,
        3,
        RequestKind::DescribeGroups(req),
        &acl,
    );
    assert_eq!(kind(&plan), "ForwardThenMerge");
}

#[test]
fn scenario_23_list_groups_without_cluster_describe_keeps_describable_groups() {
    let acl = Acl::new()
        .allow(Describe, Group, "mine")
        .allow(Delete, Group, "also-mine");
    let plan = plan_for(
        ApiKey::ListGroups,
        4,
        RequestKind::ListGroups(ListGroupsRequest::default()),
        &acl,
    );
    let merge = then_merge(plan);
    let upstream = ListGroupsResponse::default().with_groups(vec![
        ListedGroup::default().with_group_id(gid("other")),
        ListedGroup::default().with_group_id(gid("mine")),
        ListedGroup::default().with_group_id(gid("also-mine")),
    ]);
    let resp: ListGroupsResponse = merged(
        merge,
        ApiKey::ListGroups,
        4,
        &upstream,
        &acl,
        &Ids::default(),
    );
    assert_eq!(resp.error_code, 0);
    assert_eq!(
        names(resp.groups.iter().map(|g| &g.group_id.0)),
        vec!["mine", "also-mine"]
    );

    let acl = Acl::new().allow(Describe, Cluster, CLUSTER_NAME);
    let plan = plan_for(
        ApiKey::ListGroups,
        4,
        RequestKind::ListGroups(ListGroupsRequest::default()),
        &acl,
    );
    assert!(matches!(plan, Plan::Forward));
}

#[test]
fn delete_groups_denied_groups_are_30_once_each() {
    let acl = Acl::new().allow(Delete, Group, "g2");
    let req = DeleteGroupsRequest::default().with_groups_names(vec![
        gid("g1"),
        gid("g2"),
        gid("g1"),
        gid("g3"),
    ]);
    let plan = plan_for(
        ApiKey::DeleteGroups,
        2,
        RequestKind::DeleteGroups(req),
        &acl,
    );
    let (fwd, merge) = partial(plan, ApiKey::DeleteGroups, 2);
    let RequestKind::DeleteGroups(fwd) = fwd else {
        panic!()
    };
    assert_eq!(names(fwd.groups_names.iter().map(|g| &g.0)), vec!["g2"]);
    let upstream = DeleteGroupsResponse::default().with_results(vec![
        DeletableGroupResult::default().with_group_id(gid("g2")),
    ]);
    let resp: DeleteGroupsResponse = merged(
        merge,
        ApiKey::DeleteGroups,
        2,
        &upstream,
        &acl,
        &Ids::default(),
    );
    let got: Vec<(&str, i16)> = resp
        .results
        .iter()
        .map(|r| (r.group_id.as_str(), r.error_code))
        .collect();
    assert_eq!(got, vec![("g1", 30), ("g2", 0), ("g3", 30)]);

    // READ (implies DESCRIBE) is not DELETE.
    let acl = Acl::new().allow(Read, Group, "g1");
    let req = DeleteGroupsRequest::default().with_groups_names(vec![gid("g1")]);
    let plan = plan_for(
        ApiKey::DeleteGroups,
        0,
        RequestKind::DeleteGroups(req),
        &acl,
    );
    let resp: DeleteGroupsResponse = local(plan, ApiKey::DeleteGroups, 0);
    assert_eq!(
        (
            resp.results[0].group_id.as_str(),
            resp.results[0].error_code
        ),
        ("g1", 30)
    );
}

// ---- InitProducerId ----

/// An idempotent producer's request: no transactional id (null on the wire).
fn idempotent() -> InitProducerIdRequest {
    InitProducerIdRequest::default().with_transactional_id(None)
}

#[test]
fn scenario_3_idempotent_init_producer_id_with_only_topic_read_is_31() {
    let acl = Acl::new().allow(Read, Topic, "t");
    for version in [0, 4] {
        let plan = plan_for(
            ApiKey::InitProducerId,
            version,
            RequestKind::InitProducerId(idempotent()),
            &acl,
        );
        let resp: InitProducerIdResponse = local(plan, ApiKey::InitProducerId, version);
        assert_eq!(
            (resp.error_code, resp.producer_id.0, resp.producer_epoch),
            (31, -1, -1)
        );
    }
}

#[test]
fn scenario_3_idempotent_init_producer_id_with_write_on_any_topic_or_idempotent_write() {
    let kip679 = Acl::new().allow_any(Write, Topic);
    let plan = plan_for(
        ApiKey::InitProducerId,
        4,
        RequestKind::InitProducerId(idempotent()),
        &kip679,
    );
    assert!(matches!(plan, Plan::Forward), "KIP-679");
    let cluster = Acl::new().allow(IdempotentWrite, Cluster, CLUSTER_NAME);
    let plan = plan_for(
        ApiKey::InitProducerId,
        4,
        RequestKind::InitProducerId(idempotent()),
        &cluster,
    );
    assert!(matches!(plan, Plan::Forward));
}

#[test]
fn scenario_4_idempotent_init_producer_id_uses_authorize_by_resource_type_verdict() {
    // WRITE on literal "T" and prefix "t" with a wildcard DENY: the engine's allowed_any says no
    // (deny dominates), and a literal WRITE rule must not be enough on its own.
    let acl = Acl::new().allow(Write, Topic, "T");
    let plan = plan_for(
        ApiKey::InitProducerId,
        5,
        RequestKind::InitProducerId(idempotent()),
        &acl,
    );
    let resp: InitProducerIdResponse = local(plan, ApiKey::InitProducerId, 5);
    assert_eq!(resp.error_code, 31);
}

#[test]
fn scenario_5_transactional_init_producer_id_with_describe_but_no_write_is_53() {
    let acl = Acl::new()
        .allow(Describe, Txn, "tx")
        .allow_any(Write, Topic);
    let req = InitProducerIdRequest::default().with_transactional_id(Some(txid("tx")));
    let plan = plan_for(
        ApiKey::InitProducerId,
        3,
        RequestKind::InitProducerId(req.clone()),
        &acl,
    );
    let resp: InitProducerIdResponse = local(plan, ApiKey::InitProducerId, 3);
    assert_eq!(
        (resp.error_code, resp.producer_id.0, resp.producer_epoch),
        (53, -1, -1)
    );

    let acl = Acl::new().allow(Write, Txn, "tx");
    let plan = plan_for(
        ApiKey::InitProducerId,
        3,
        RequestKind::InitProducerId(req),
        &acl,
    );
    assert!(matches!(plan, Plan::Forward));
}

// ---- AddPartitionsToTxn ----

fn add_partitions(txn: &str, topics: &[(&str, &[i32])]) -> AddPartitionsToTxnRequest {
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txid(txn))
        .with_v3_and_below_topics(
            topics
                .iter()
                .map(|(n, p)| {
                    AddPartitionsToTxnTopic::default()
                        .with_name(tname(n))
                        .with_partitions(p.to_vec())
                })
                .collect(),
        )
}

fn txn_results(resp: &AddPartitionsToTxnResponse) -> Vec<(&str, i32, i16)> {
    resp.results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| (t.name.as_str(), p.partition_index, p.partition_error_code))
        })
        .collect()
}

#[test]
fn add_partitions_to_txn_v3_without_txn_write_is_53_everywhere() {
    let acl = Acl::new()
        .allow(Describe, Txn, "tx")
        .allow(Write, Topic, "t1");
    let req = add_partitions("tx", &[("t1", &[0, 1])]);
    let plan = plan_for(
        ApiKey::AddPartitionsToTxn,
        3,
        RequestKind::AddPartitionsToTxn(req),
        &acl,
    );
    let resp: AddPartitionsToTxnResponse = local(plan, ApiKey::AddPartitionsToTxn, 3);
    assert_eq!(txn_results(&resp), vec![("t1", 0, 53), ("t1", 1, 53)]);
}

#[test]
fn add_partitions_to_txn_v3_one_denied_topic_fails_all_with_29_and_55() {
    let acl = Acl::new()
        .allow(Write, Txn, "tx")
        .allow(Write, Topic, "t1")
        .allow(Write, Topic, "__consumer_offsets");
    // An allowed topic that exists gets 55; one that does not, 3, as KafkaApis checks the
    // metadata cache after authorization (found by the differential test against Kafka 4.4,
    // seed 1796584439296049617).
    let exists = Ids(HashMap::from([(Uuid::from_u128(1), "t1".to_string())]));
    for (ids, t1) in [(exists, 55), (Ids::default(), 3)] {
        let req = add_partitions(
            "tx",
            &[("t1", &[0]), ("t2", &[0, 1]), ("__consumer_offsets", &[3])],
        );
        let api = ApiKey::AddPartitionsToTxn;
        let body = RequestKind::AddPartitionsToTxn(req);
        let plan = plan(api, 3, &header(api, 3), &body, &acl, &ids)
            .expect("plan")
            .expect("a groups API");
        let resp: AddPartitionsToTxnResponse = local(plan, ApiKey::AddPartitionsToTxn, 3);
        assert_eq!(
            txn_results(&resp),
            vec![
                ("t1", 0, t1),
                ("t2", 0, 29),
                ("t2", 1, 29),
                ("__consumer_offsets", 3, 29)
            ],
            "internal topics are never authorized"
        );
    }

    let req = add_partitions("tx", &[("t1", &[0])]);
    let plan = plan_for(
        ApiKey::AddPartitionsToTxn,
        3,
        RequestKind::AddPartitionsToTxn(req),
        &acl,
    );
    assert!(matches!(plan, Plan::Forward));
}

#[test]
fn add_partitions_to_txn_v4_batches_need_cluster_action() {
    let acl = Acl::new().allow(Write, Txn, "tx");
    let req = AddPartitionsToTxnRequest::default();
    let plan = plan_for(
        ApiKey::AddPartitionsToTxn,
        4,
        RequestKind::AddPartitionsToTxn(req.clone()),
        &acl,
    );
    let resp: AddPartitionsToTxnResponse = local(plan, ApiKey::AddPartitionsToTxn, 4);
    assert_eq!(resp.error_code, 31);
    let acl = Acl::new().allow(ClusterAction, Cluster, CLUSTER_NAME);
    let plan = plan_for(
        ApiKey::AddPartitionsToTxn,
        5,
        RequestKind::AddPartitionsToTxn(req),
        &acl,
    );
    assert!(matches!(plan, Plan::Forward));
}

// ---- AddOffsetsToTxn / TxnOffsetCommit / EndTxn ----

#[test]
fn scenario_24_add_offsets_to_txn_with_txn_write_and_only_group_describe_is_30() {
    let acl = Acl::new()
        .allow(Write, Txn, "tx")
        .allow(Describe, Group, "g");
    let req = AddOffsetsToTxnRequest::default()
        .with_transactional_id(txid("tx"))
        .with_group_id(gid("g"));
    let plan = plan_for(
        ApiKey::AddOffsetsToTxn,
        3,
        RequestKind::AddOffsetsToTxn(req.clone()),
        &acl,
    );
    let resp: AddOffsetsToTxnResponse = local(plan, ApiKey::AddOffsetsToTxn, 3);
    assert_eq!(resp.error_code, 30);

    let acl = Acl::new().allow(Read, Group, "g");
    let plan = plan_for(
        ApiKey::AddOffsetsToTxn,
        0,
        RequestKind::AddOffsetsToTxn(req.clone()),
        &acl,
    );
    let resp: AddOffsetsToTxnResponse = local(plan, ApiKey::AddOffsetsToTxn, 0);
    assert_eq!(resp.error_code, 53, "transactional id first");

    let acl = Acl::new().allow(Write, Txn, "tx").allow(Read, Group, "g");
    let plan = plan_for(
        ApiKey::AddOffsetsToTxn,
        4,
        RequestKind::AddOffsetsToTxn(req),
        &acl,
    );
    assert!(matches!(plan, Plan::Forward));
}

fn txn_commit(topics: &[(&str, &[i32])]) -> TxnOffsetCommitRequest {
    TxnOffsetCommitRequest::default()
        .with_transactional_id(txid("tx"))
        .with_group_id(gid("g"))
        .with_topics(
            topics
                .iter()
                .map(|(n, parts)| {
                    TxnOffsetCommitRequestTopic::default()
                        .with_name(tname(n))
                        .with_partitions(
                            parts
                                .iter()
                                .map(|&p| {
                                    TxnOffsetCommitRequestPartition::default()
                                        .with_partition_index(p)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

fn txn_commit_errors(resp: &TxnOffsetCommitResponse) -> Vec<(&str, i32, i16)> {
    resp.topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.as_str(), p.partition_index, p.error_code))
        })
        .collect()
}

#[test]
fn scenario_24_txn_offset_commit_with_txn_write_and_only_group_describe_is_30_everywhere() {
    let acl = Acl::new()
        .allow(Write, Txn, "tx")
        .allow(Describe, Group, "g")
        .allow(Read, Topic, "t1");
    let req = txn_commit(&[("t1", &[0, 1])]);
    let plan = plan_for(
        ApiKey::TxnOffsetCommit,
        3,
        RequestKind::TxnOffsetCommit(req.clone()),
        &acl,
    );
    let resp: TxnOffsetCommitResponse = local(plan, ApiKey::TxnOffsetCommit, 3);
    assert_eq!(txn_commit_errors(&resp), vec![("t1", 0, 30), ("t1", 1, 30)]);

    let acl = Acl::new().allow(Read, Group, "g").allow(Read, Topic, "t1");
    let plan = plan_for(
        ApiKey::TxnOffsetCommit,
        0,
        RequestKind::TxnOffsetCommit(req),
        &acl,
    );
    let resp: TxnOffsetCommitResponse = local(plan, ApiKey::TxnOffsetCommit, 0);
    assert_eq!(txn_commit_errors(&resp), vec![("t1", 0, 53), ("t1", 1, 53)]);
}

#[test]
fn scenario_24_txn_offset_commit_topic_without_read_is_29_and_the_rest_forwarded() {
    let acl = Acl::new()
        .allow(Write, Txn, "tx")
        .allow(Read, Group, "g")
        .allow(Read, Topic, "t1");
    let req = txn_commit(&[("t1", &[0]), ("t2", &[1])]);
    let plan = plan_for(
        ApiKey::TxnOffsetCommit,
        3,
        RequestKind::TxnOffsetCommit(req),
        &acl,
    );
    let (fwd, merge) = partial(plan, ApiKey::TxnOffsetCommit, 3);
    let RequestKind::TxnOffsetCommit(fwd) = fwd else {
        panic!()
    };
    assert_eq!(names(fwd.topics.iter().map(|t| &t.name.0)), vec!["t1"]);
    assert_eq!(fwd.transactional_id.as_str(), "tx");
    let upstream = TxnOffsetCommitResponse::default().with_topics(vec![
        TxnOffsetCommitResponseTopic::default()
            .with_name(tname("t1"))
            .with_partitions(vec![
                TxnOffsetCommitResponsePartition::default().with_partition_index(0)
            ]),
    ]);
    let resp: TxnOffsetCommitResponse = merged(
        merge,
        ApiKey::TxnOffsetCommit,
        3,
        &upstream,
        &acl,
        &Ids::default(),
    );
    assert_eq!(txn_commit_errors(&resp), vec![("t1", 0, 0), ("t2", 1, 29)]);
}

#[test]
fn end_txn_without_txn_write_is_53() {
    let acl = Acl::new().allow(Describe, Txn, "tx");
    let req = EndTxnRequest::default().with_transactional_id(txid("tx"));
    for version in [0, 4] {
        let plan = plan_for(
            ApiKey::EndTxn,
            version,
            RequestKind::EndTxn(req.clone()),
            &acl,
        );
        let resp: EndTxnResponse = local(plan, ApiKey::EndTxn, version);
        assert_eq!(resp.error_code, 53);
    }
}

// ---- transaction admin ----

#[test]
fn describe_producers_denied_topics_are_29_per_partition() {
    let acl = Acl::new()
        .allow(Read, Topic, "t1")
        .allow(Describe, Topic, "t2");
    let req = DescribeProducersRequest::default().with_topics(vec![
        TopicRequest::default()
            .with_name(tname("t2"))
            .with_partition_indexes(vec![0, 1]),
        TopicRequest::default()
            .with_name(tname("t1"))
            .with_partition_indexes(vec![0]),
    ]);
    let plan = plan_for(
        ApiKey::DescribeProducers,
        0,
        RequestKind::DescribeProducers(req),
        &acl,
    );
    let (fwd, merge) = partial(plan, ApiKey::DescribeProducers, 0);
    let RequestKind::DescribeProducers(fwd) = fwd else {
        panic!()
    };
    assert_eq!(names(fwd.topics.iter().map(|t| &t.name.0)), vec!["t1"]);
    let upstream =
        DescribeProducersResponse::default().with_topics(vec![ProducersTopic::default()
            .with_name(tname("t1"))
            .with_partitions(vec![PartitionResponse::default().with_partition_index(0)])]);
    let resp: DescribeProducersResponse = merged(
        merge,
        ApiKey::DescribeProducers,
        0,
        &upstream,
        &acl,
        &Ids::default(),
    );
    let got: Vec<(&str, i32, i16, Option<&str>)> = resp
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.as_str(),
                    p.partition_index,
                    p.error_code,
                    p.error_message.as_deref(),
                )
            })
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("t2", 0, 29, Some("Topic authorization failed.")),
            ("t2", 1, 29, Some("Topic authorization failed.")),
            ("t1", 0, 0, None),
        ]
    );
}

#[test]
fn describe_transactions_denies_per_id_and_filters_topics() {
    let acl = Acl::new()
        .allow(Describe, Txn, "tx1")
        .allow(Describe, Topic, "t1");
    let req = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![txid("tx0"), txid("tx1")]);
    let plan = plan_for(
        ApiKey::DescribeTransactions,
        0,
        RequestKind::DescribeTransactions(req),
        &acl,
    );
    let (fwd, merge) = partial(plan, ApiKey::DescribeTransactions, 0);
    let RequestKind::DescribeTransactions(fwd) = fwd else {
        panic!()
    };
    assert_eq!(
        names(fwd.transactional_ids.iter().map(|t| &t.0)),
        vec!["tx1"]
    );
    let upstream = DescribeTransactionsResponse::default().with_transaction_states(vec![
        TransactionState::default()
            .with_transactional_id(txid("tx1"))
            .with_transaction_state(s("Ongoing"))
            .with_topics(vec![
                TopicData::default()
                    .with_topic(tname("t1"))
                    .with_partitions(vec![0]),
                TopicData::default()
                    .with_topic(tname("secret"))
                    .with_partitions(vec![0]),
            ]),
    ]);
    let resp: DescribeTransactionsResponse = merged(
        merge,
        ApiKey::DescribeTransactions,
        0,
        &upstream,
        &acl,
        &Ids::default(),
    );
    let got: Vec<(&str, i16, Vec<&str>)> = resp
        .transaction_states
        .iter()
        .map(|t| {
            (
                t.transactional_id.as_str(),
                t.error_code,
                names(t.topics.iter().map(|d| &d.topic.0)),
            )
        })
        .collect();
    assert_eq!(got, vec![("tx0", 53, vec![]), ("tx1", 0, vec!["t1"])]);

    // Every id allowed: still merged, for the topic filter.
    let req = DescribeTransactionsRequest::default().with_transactional_ids(vec![txid("tx1")]);
    let plan = plan_for(
        ApiKey::DescribeTransactions,
        0,
        RequestKind::DescribeTransactions(req),
        &acl,
    );
    assert_eq!(kind(&plan), "ForwardThenMerge");
}

#[test]
fn list_transactions_keeps_describable_ids() {
    let acl = Acl::new().allow(Write, Txn, "mine");
    let plan = plan_for(
        ApiKey::ListTransactions,
        1,
        RequestKind::ListTransactions(ListTransactionsRequest::default()),
        &acl,
    );
    let merge = then_merge(plan);
    let upstream = ListTransactionsResponse::default().with_transaction_states(vec![
        ListedTxn::default().with_transactional_id(txid("theirs")),
        ListedTxn::default().with_transactional_id(txid("mine")),
    ]);
    let resp: ListTransactionsResponse = merged(
        merge,
        ApiKey::ListTransactions,
        1,
        &upstream,
        &acl,
        &Ids::default(),
    );
    assert_eq!(
        names(
            resp.transaction_states
                .iter()
                .map(|t| &t.transactional_id.0)
        ),
        vec!["mine"]
    );
}

/// Every local answer must encode at every version the gateway accepts (kafka-protocol refuses
/// fields a version lacks), and every reduced request must encode at its version.
#[test]
fn denials_encode_at_every_supported_version() {
    let nothing = Acl::new();
    let topics_only = Acl::new()
        .allow(Read, Group, "g")
        .allow(Delete, Group, "g")
        .allow(Write, Txn, "tx")
        .allow(Read, Topic, "t1");
    static TWO_TOPICS: [(&str, &[i32]); 2] = [("t1", &[0]), ("t2", &[1])];
    let cases: Vec<(ApiKey, MakeRequest)> = vec![
        (
            ApiKey::OffsetCommit,
            Box::new(|_| RequestKind::OffsetCommit(commit_request("g", &TWO_TOPICS))),
        ),
        (
            ApiKey::OffsetFetch,
            Box::new(|v| {
                let mut r = fetch_request("g", Some(&TWO_TOPICS));
                if v >= 8 {
                    r = OffsetFetchRequest::default().with_groups(vec![
                        fetch_group("g", Some(&TWO_TOPICS)),
                        fetch_group("h", None),
                    ]);
                }
                RequestKind::OffsetFetch(r)
            }),
        ),
        (
            ApiKey::OffsetDelete,
            Box::new(|_| RequestKind::OffsetDelete(delete_request("g", &TWO_TOPICS))),
        ),
        (
            ApiKey::TxnOffsetCommit,
            Box::new(|_| RequestKind::TxnOffsetCommit(txn_commit(&TWO_TOPICS))),
        ),
        (
            ApiKey::FindCoordinator,
            Box::new(|v| {
                let r = FindCoordinatorRequest::default().with_key_type(if v >= 1 { 1 } else { 0 });
                RequestKind::FindCoordinator(if v >= 4 {
                    r.with_coordinator_keys(vec![s("tx"), s("g")])
                } else {
                    r.with_key(s("tx"))
                })
            }),
        ),
        (
            ApiKey::JoinGroup,
            Box::new(|_| {
                RequestKind::JoinGroup(JoinGroupRequest::default().with_group_id(gid("x")))
            }),
        ),
        (
            ApiKey::SyncGroup,
            Box::new(|_| {
                RequestKind::SyncGroup(
                    SyncGroupRequest::default()
                        .with_group_id(gid("x"))
                        .with_protocol_type(Some(s("c")))
                        .with_protocol_name(Some(s("r"))),
                )
            }),
        ),
        (
            ApiKey::Heartbeat,
            Box::new(|_| {
                RequestKind::Heartbeat(HeartbeatRequest::default().with_group_id(gid("x")))
            }),
        ),
        (
            ApiKey::LeaveGroup,
            Box::new(|_| {
                RequestKind::LeaveGroup(LeaveGroupRequest::default().with_group_id(gid("x")))
            }),
        ),
        (
            ApiKey::ConsumerGroupHeartbeat,
            Box::new(|_| {
                RequestKind::ConsumerGroupHeartbeat(
                    ConsumerGroupHeartbeatRequest::default().with_group_id(gid("x")),
                )
            }),
        ),
        (
            ApiKey::DescribeGroups,
            Box::new(|_| {
                RequestKind::DescribeGroups(
                    DescribeGroupsRequest::default().with_groups(vec![gid("x")]),
                )
            }),
        ),
        (
            ApiKey::ConsumerGroupDescribe,
            Box::new(|_| {
                RequestKind::ConsumerGroupDescribe(
                    ConsumerGroupDescribeRequest::default().with_group_ids(vec![gid("x")]),
                )
            }),
        ),
        (
            ApiKey::DeleteGroups,
            Box::new(|_| {
                RequestKind::DeleteGroups(
                    DeleteGroupsRequest::default().with_groups_names(vec![gid("x")]),
                )
            }),
        ),
        (
            ApiKey::InitProducerId,
            Box::new(|_| {
                RequestKind::InitProducerId(
                    InitProducerIdRequest::default().with_transactional_id(Some(txid("x"))),
                )
            }),
        ),
        (
            ApiKey::AddPartitionsToTxn,
            Box::new(|_| RequestKind::AddPartitionsToTxn(add_partitions("x", &TWO_TOPICS))),
        ),
        (
            ApiKey::AddOffsetsToTxn,
            Box::new(|_| {
                RequestKind::AddOffsetsToTxn(
                    AddOffsetsToTxnRequest::default().with_transactional_id(txid("x")),
                )
            }),
        ),
        (
            ApiKey::EndTxn,
            Box::new(|_| {
                RequestKind::EndTxn(EndTxnRequest::default().with_transactional_id(txid("x")))
            }),
        ),
        (
            ApiKey::DescribeProducers,
            Box::new(|_| {
                RequestKind::DescribeProducers(DescribeProducersRequest::default().with_topics(
                    vec![
                    TopicRequest::default().with_name(tname("t1")).with_partition_indexes(vec![0]),
                    TopicRequest::default().with_name(tname("t2")).with_partition_indexes(vec![0]),
                ],
                ))
            }),
        ),
        (
            ApiKey::DescribeTransactions,
            Box::new(|_| {
                RequestKind::DescribeTransactions(
                    DescribeTransactionsRequest::default()
                        .with_transactional_ids(vec![txid("x"), txid("tx")]),
                )
            }),
        ),
    ];
    for (api, make) in &cases {
        let (min, max) = gateway_range(*api).expect("supported API");
        for version in min..=max {
            for acl in [&nothing, &topics_only] {
                let body = make(version);
                let out = plan(
                    *api,
                    version,
                    &header(*api, version),
                    &body,
                    acl,
                    &Ids::default(),
                );
                let out = out.unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"));
                match out.expect("mapped") {
                    Plan::Respond(frame) => {
                        split_response(*api, version, frame.slice(LEN_PREFIX..))
                            .unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"));
                    }
                    Plan::ForwardPartial { request, .. } => {
                        decode_request(*api, version, request.slice(LEN_PREFIX..))
                            .unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The merged frame's length prefix matches its payload.
#[test]
fn merged_frames_carry_a_correct_length_prefix() {
    let acl = Acl::new().allow(Describe, Group, "mine");
    let plan = plan_for(
        ApiKey::ListGroups,
        5,
        RequestKind::ListGroups(ListGroupsRequest::default()),
        &acl,
    );
    let merge = then_merge(plan);
    let upstream = ListGroupsResponse::default()
        .with_groups(vec![ListedGroup::default().with_group_id(gid("mine"))]);
    let frame = encode_response(
        ApiKey::ListGroups,
        5,
        &response_header(CORRELATION),
        &upstream,
    )
    .expect("encode");
    let out: Bytes = merge
        .apply(frame.slice(LEN_PREFIX..), &acl, &Ids::default())
        .expect("merge");
    let len = i32::from_be_bytes(out[..LEN_PREFIX].try_into().expect("4 bytes"));
    assert_eq!(len as usize, out.len() - LEN_PREFIX);
    assert_eq!(out, frame, "nothing filtered: same bytes");
}

// ---- share groups (KIP-932) ----

mod share {
    use super::*;
    use crate::policy::mapping::groups::share::{
        share_acknowledge, share_fetch, Continuing, SHARE_SESSION_NOT_FOUND,
    };
    use kafka_protocol::messages::share_acknowledge_request::{
        AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch as AckBatch,
    };
    use kafka_protocol::messages::share_fetch_request::{
        AcknowledgementBatch, FetchPartition, FetchTopic, ForgottenTopic,
    };
    use kafka_protocol::messages::share_fetch_response::{
        PartitionData, ShareFetchableTopicResponse,
    };
    use kafka_protocol::messages::share_group_describe_response::{
        Assignment, DescribedGroup as ShareGroup, Member as ShareMember, TopicPartitions,
    };

    const A: Uuid = Uuid::from_u128(0xa);
    const B: Uuid = Uuid::from_u128(0xb);
    const UNKNOWN: Uuid = Uuid::from_u128(0xc);

    fn ids() -> Ids {
        Ids(HashMap::from([(A, "a".to_owned()), (B, "b".to_owned())]))
    }

    /// READ on group g and topic a only.
    fn acl() -> Acl {
        Acl::new().allow(Read, Group, "g").allow(Read, Topic, "a")
    }

    fn topic(id: Uuid, partitions: &[(i32, bool)]) -> FetchTopic {
        FetchTopic::default().with_topic_id(id).with_partitions(
            partitions
                .iter()
                .map(|&(p, acked)| {
                    let batches = if acked {
                        vec![AcknowledgementBatch::default()
                            .with_first_offset(0)
                            .with_last_offset(1)
                            .with_acknowledge_types(vec![1, 1])]
                    } else {
                        Vec::new()
                    };
                    FetchPartition::default()
                        .with_partition_index(p)
                        .with_acknowledgement_batches(batches)
                })
                .collect(),
        )
    }

    fn fetch(epoch: i32, topics: Vec<FetchTopic>) -> ShareFetchRequest {
        ShareFetchRequest::default()
            .with_group_id(Some(gid("g")))
            .with_member_id(Some(s("m")))
            .with_share_session_epoch(epoch)
            .with_topics(topics)
    }

    fn plan_fetch(
        req: &ShareFetchRequest,
        acl: &Acl,
        session: Continuing<'_>,
    ) -> crate::policy::mapping::groups::share::SharePlan {
        let h = header(ApiKey::ShareFetch, 1);
        share_fetch(1, &h, req, acl, &ids(), session).expect("plan")
    }

    /// (topic, partition, error, acknowledge error) of every partition, sorted.
    fn rows(r: &ShareFetchResponse) -> Vec<(Uuid, i32, i16, i16)> {
        let mut v: Vec<_> = r
            .responses
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    (
                        t.topic_id,
                        p.partition_index,
                        p.error_code,
                        p.acknowledge_error_code,
                    )
                })
            })
            .collect();
        v.sort();
        v
    }

    fn upstream_a() -> ShareFetchResponse {
        ShareFetchResponse::default().with_responses(vec![ShareFetchableTopicResponse::default()
            .with_topic_id(A)
            .with_partitions(vec![PartitionData::default()
                .with_partition_index(0)
                .with_records(Some(Bytes::new()))])])
    }

    #[test]
    fn share_group_heartbeat_needs_group_read_then_describe_on_subscribed_topics() {
        let h = |topics: &[&str]| {
            RequestKind::ShareGroupHeartbeat(
                ShareGroupHeartbeatRequest::default()
                    .with_group_id(gid("g"))
                    .with_member_id(s("m"))
                    .with_subscribed_topic_names(Some(topics.iter().map(|t| tname(t)).collect())),
            )
        };
        let api = ApiKey::ShareGroupHeartbeat;
        let r: ShareGroupHeartbeatResponse =
            local(plan_for(api, 1, h(&["a"]), &Acl::new()), api, 1);
        assert_eq!(r.error_code, 30);
        let r: ShareGroupHeartbeatResponse =
            local(plan_for(api, 1, h(&["a", "b"]), &acl()), api, 1);
        assert_eq!(r.error_code, 29);
        assert_eq!(kind(&plan_for(api, 1, h(&["a"]), &acl())), "Forward");
        // Kafka checks the member id before the topics.
        let mut no_member = h(&["b"]);
        if let RequestKind::ShareGroupHeartbeat(r) = &mut no_member {
            r.member_id = s("");
        }
        let r: ShareGroupHeartbeatResponse = local(plan_for(api, 1, no_member, &acl()), api, 1);
        assert_eq!(r.error_code, 42);
    }

    #[test]
    fn share_fetch_without_group_read_is_30_before_any_session_check() {
        let req = fetch(3, vec![topic(A, &[(0, false)])]);
        let p = plan_fetch(
            &req,
            &Acl::new().allow(Read, Topic, "a"),
            Continuing::Refused,
        );
        assert!(p.denied.is_none(), "the session is left as it was");
        let r: ShareFetchResponse = local(p.plan, ApiKey::ShareFetch, 1);
        assert_eq!((r.error_code, r.responses.len()), (30, 0));
        // Group allowed, session not this client's: 122, and the client opens a new one.
        let r: ShareFetchResponse = local(
            plan_fetch(&req, &acl(), Continuing::Refused).plan,
            ApiKey::ShareFetch,
            1,
        );
        assert_eq!(r.error_code, SHARE_SESSION_NOT_FOUND);
        // Opening a session (epoch 0) needs no registry entry.
        let open = fetch(0, vec![topic(A, &[(0, false)])]);
        assert_eq!(
            kind(&plan_fetch(&open, &acl(), Continuing::Refused).plan),
            "Forward"
        );
    }

    #[test]
    fn share_requests_naming_an_unknown_topic_id_are_unknown_server_error_as_in_kafka_4_4() {
        let req = fetch(
            0,
            vec![topic(A, &[(0, false)]), topic(UNKNOWN, &[(0, false)])],
        );
        let p = plan_fetch(&req, &acl(), Continuing::Allowed(&[]));
        assert!(p.denied.is_none());
        let r: ShareFetchResponse = local(p.plan, ApiKey::ShareFetch, 1);
        assert_eq!((r.error_code, r.responses.len()), (-1, 0));
        // The group check comes first.
        let r: ShareFetchResponse = local(
            plan_fetch(&req, &Acl::new(), Continuing::Allowed(&[])).plan,
            ApiKey::ShareFetch,
            1,
        );
        assert_eq!(r.error_code, 30);
    }

    #[test]
    fn share_fetch_opening_with_acknowledgements_is_invalid_request() {
        let req = fetch(0, vec![topic(B, &[(0, true)])]);
        let r: ShareFetchResponse = local(
            plan_fetch(&req, &acl(), Continuing::Allowed(&[])).plan,
            ApiKey::ShareFetch,
            1,
        );
        assert_eq!(r.error_code, 42);
    }

    #[test]
    fn share_fetch_forwards_the_readable_topics_and_answers_the_rest_per_partition() {
        let req = fetch(
            0,
            vec![topic(A, &[(0, false)]), topic(B, &[(0, false), (1, false)])],
        );
        let p = plan_fetch(&req, &acl(), Continuing::Allowed(&[]));
        assert_eq!(
            p.denied,
            Some(vec![(B, 0, 29), (B, 1, 29)]),
            "the session carries what was answered"
        );
        let (forwarded, merge) = partial(p.plan, ApiKey::ShareFetch, 1);
        let RequestKind::ShareFetch(forwarded) = forwarded else {
            panic!("a ShareFetch")
        };
        let sent: Vec<Uuid> = forwarded.topics.iter().map(|t| t.topic_id).collect();
        assert_eq!(sent, vec![A]);
        let r: ShareFetchResponse =
            merged(merge, ApiKey::ShareFetch, 1, &upstream_a(), &acl(), &ids());
        assert_eq!(rows(&r), vec![(A, 0, 0, 0), (B, 0, 29, 0), (B, 1, 29, 0)]);
        let denied = r.responses.iter().find(|t| t.topic_id == B).expect("b");
        assert_eq!(
            denied.partitions[0].records,
            Some(Bytes::new()),
            "empty records"
        );
    }

    #[test]
    fn share_fetch_answers_the_sessions_denied_partitions_on_every_fetch_until_forgotten() {
        let carried = [(B, 0, 29)];
        let req = fetch(2, vec![]);
        let p = plan_fetch(&req, &acl(), Continuing::Allowed(&carried));
        assert_eq!(p.denied, Some(carried.to_vec()));
        let merge = then_merge(p.plan);
        let r: ShareFetchResponse =
            merged(merge, ApiKey::ShareFetch, 1, &upstream_a(), &acl(), &ids());
        assert_eq!(rows(&r), vec![(A, 0, 0, 0), (B, 0, 29, 0)]);
        // An upstream error (the session's epoch) goes as it came: no partitions.
        let p = plan_fetch(&req, &acl(), Continuing::Allowed(&carried));
        let upstream = ShareFetchResponse::default().with_error_code(123);
        let r: ShareFetchResponse = merged(
            then_merge(p.plan),
            ApiKey::ShareFetch,
            1,
            &upstream,
            &acl(),
            &ids(),
        );
        assert_eq!((r.error_code, r.responses.len()), (123, 0));
        // Forgotten: no longer answered, no longer carried.
        let forget = req.with_forgotten_topics_data(vec![ForgottenTopic::default()
            .with_topic_id(B)
            .with_partitions(vec![0])]);
        let p = plan_fetch(&forget, &acl(), Continuing::Allowed(&carried));
        assert_eq!(p.denied, Some(vec![]));
        assert_eq!(kind(&p.plan), "Forward");
    }

    #[test]
    fn share_fetch_acknowledgements_of_a_denied_partition_get_its_error_or_42_when_invalid() {
        let mut req = fetch(
            5,
            vec![topic(A, &[(0, true)]), topic(B, &[(0, true), (1, true)])],
        );
        // Partition 1's batch claims two offsets with three types: invalid.
        req.topics[1].partitions[1].acknowledgement_batches[0].acknowledge_types = vec![1, 1, 1];
        let (_, merge) = partial(
            plan_fetch(&req, &acl(), Continuing::Allowed(&[])).plan,
            ApiKey::ShareFetch,
            1,
        );
        let r: ShareFetchResponse =
            merged(merge, ApiKey::ShareFetch, 1, &upstream_a(), &acl(), &ids());
        assert_eq!(rows(&r), vec![(A, 0, 0, 0), (B, 0, 29, 29), (B, 1, 29, 42)]);
        // Closing the session: nothing is fetched, only acknowledgements are answered.
        req.share_session_epoch = -1;
        req.topics[1].partitions[1].acknowledgement_batches.clear();
        let p = plan_fetch(&req, &acl(), Continuing::Allowed(&[(B, 7, 29)]));
        assert_eq!(p.denied, Some(vec![]));
        let (_, merge) = partial(p.plan, ApiKey::ShareFetch, 1);
        let r: ShareFetchResponse = merged(
            merge,
            ApiKey::ShareFetch,
            1,
            &ShareFetchResponse::default(),
            &acl(),
            &ids(),
        );
        assert_eq!(rows(&r), vec![(B, 0, 0, 29)]);
    }

    #[test]
    fn share_acknowledge_answers_denied_topics_per_partition() {
        let req = ShareAcknowledgeRequest::default()
            .with_group_id(Some(gid("g")))
            .with_member_id(Some(s("m")))
            .with_share_session_epoch(3)
            .with_topics(
                [A, B]
                    .iter()
                    .map(|&id| {
                        AcknowledgeTopic::default()
                            .with_topic_id(id)
                            .with_partitions(vec![AcknowledgePartition::default()
                                .with_partition_index(0)
                                .with_acknowledgement_batches(vec![AckBatch::default()
                                    .with_first_offset(3)
                                    .with_last_offset(3)
                                    .with_acknowledge_types(vec![2])])])
                    })
                    .collect(),
            );
        let api = ApiKey::ShareAcknowledge;
        let h = header(api, 1);
        let plan = |acl: &Acl, s| share_acknowledge(1, &h, &req, acl, &ids(), s).expect("plan");
        let r: ShareAcknowledgeResponse =
            local(plan(&Acl::new(), Continuing::Allowed(&[])), api, 1);
        assert_eq!(r.error_code, 30);
        let r: ShareAcknowledgeResponse = local(plan(&acl(), Continuing::Refused), api, 1);
        assert_eq!(r.error_code, SHARE_SESSION_NOT_FOUND);
        let both = acl().allow(Read, Topic, "b");
        assert_eq!(kind(&plan(&both, Continuing::Allowed(&[]))), "Forward");
        let (forwarded, merge) = partial(plan(&acl(), Continuing::Allowed(&[])), api, 1);
        let RequestKind::ShareAcknowledge(forwarded) = forwarded else {
            panic!("a ShareAcknowledge")
        };
        assert_eq!(forwarded.topics.len(), 1);
        let r: ShareAcknowledgeResponse = merged(
            merge,
            api,
            1,
            &ShareAcknowledgeResponse::default(),
            &acl(),
            &ids(),
        );
        let got: Vec<_> = r
            .responses
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, p.error_code)))
            .collect();
        assert_eq!(got, vec![(B, 29)]);
    }

    #[test]
    fn share_group_describe_is_30_per_denied_group_and_29_for_undescribable_assignments() {
        let api = ApiKey::ShareGroupDescribe;
        let req = RequestKind::ShareGroupDescribe(
            ShareGroupDescribeRequest::default()
                .with_group_ids(vec![gid("g"), gid("h")])
                .with_include_authorized_operations(true),
        );
        let acl = Acl::new()
            .allow(Describe, Group, "g")
            .allow(Describe, Topic, "a");
        let (_, merge) = partial(plan_for(api, 1, req, &acl), api, 1);
        let member = |topic: &str| {
            ShareMember::default().with_assignment(Assignment::default().with_topic_partitions(
                vec![TopicPartitions::default().with_topic_name(tname(topic))],
            ))
        };
        let upstream =
            ShareGroupDescribeResponse::default().with_groups(vec![ShareGroup::default()
                .with_group_id(gid("g"))
                .with_members(vec![member("a")])]);
        let r: ShareGroupDescribeResponse = merged(merge, api, 1, &upstream, &acl, &Ids::default());
        let got: Vec<_> = r
            .groups
            .iter()
            .map(|g| (g.group_id.as_str(), g.error_code))
            .collect();
        assert_eq!(got, vec![("g", 0), ("h", 30)]);
        assert_ne!(r.groups[0].authorized_operations, i32::MIN, "recomputed");
        // A member assigned a topic the client may not describe hides the group.
        let req = RequestKind::ShareGroupDescribe(
            ShareGroupDescribeRequest::default().with_group_ids(vec![gid("g")]),
        );
        let merge = then_merge(plan_for(api, 1, req, &acl));
        let upstream =
            ShareGroupDescribeResponse::default().with_groups(vec![ShareGroup::default()
                .with_group_id(gid("g"))
                .with_members(vec![member("a"), member("b")])]);
        let r: ShareGroupDescribeResponse = merged(merge, api, 1, &upstream, &acl, &Ids::default());
        assert_eq!((r.groups[0].error_code, r.groups[0].members.len()), (29, 0));
    }

    #[test]
    fn share_offset_admin_apis_check_the_group_then_each_topic() {
        use kafka_protocol::messages::alter_share_group_offsets_request as alter;
        use kafka_protocol::messages::delete_share_group_offsets_request as delete;
        use kafka_protocol::messages::delete_share_group_offsets_response as deleted;
        // DeleteShareGroupOffsets: DELETE on the group, READ on each topic.
        let api = ApiKey::DeleteShareGroupOffsets;
        let req = |topics: &[&str]| {
            RequestKind::DeleteShareGroupOffsets(
                DeleteShareGroupOffsetsRequest::default()
                    .with_group_id(gid("g"))
                    .with_topics(
                        topics
                            .iter()
                            .map(|t| {
                                delete::DeleteShareGroupOffsetsRequestTopic::default()
                                    .with_topic_name(tname(t))
                            })
                            .collect(),
                    ),
            )
        };
        let r: DeleteShareGroupOffsetsResponse =
            local(plan_for(api, 0, req(&["a"]), &acl()), api, 0);
        assert_eq!(r.error_code, 30, "READ on the group is not DELETE");
        let acl = acl().allow(Delete, Group, "g");
        let (forwarded, merge) = partial(plan_for(api, 0, req(&["a", "b"]), &acl), api, 0);
        let RequestKind::DeleteShareGroupOffsets(forwarded) = forwarded else {
            panic!("a DeleteShareGroupOffsets")
        };
        assert_eq!(forwarded.topics.len(), 1);
        let upstream = DeleteShareGroupOffsetsResponse::default().with_responses(vec![
            deleted::DeleteShareGroupOffsetsResponseTopic::default().with_topic_name(tname("a")),
        ]);
        let r: DeleteShareGroupOffsetsResponse = merged(merge, api, 0, &upstream, &acl, &ids());
        let got: Vec<_> = r
            .responses
            .iter()
            .map(|t| (t.topic_name.as_str(), t.error_code))
            .collect();
        assert_eq!(got, vec![("a", 0), ("b", 29)]);
        // Every topic denied: the coordinator is still asked; its group error wins.
        let (_, merge) = partial(plan_for(api, 0, req(&["b"]), &acl), api, 0);
        let upstream = DeleteShareGroupOffsetsResponse::default().with_error_code(69);
        let r: DeleteShareGroupOffsetsResponse = merged(merge, api, 0, &upstream, &acl, &ids());
        assert_eq!((r.error_code, r.responses.len()), (69, 0));

        // AlterShareGroupOffsets: READ on the group; a denied topic under its id.
        let api = ApiKey::AlterShareGroupOffsets;
        let req = RequestKind::AlterShareGroupOffsets(
            AlterShareGroupOffsetsRequest::default()
                .with_group_id(gid("g"))
                .with_topics(vec![alter::AlterShareGroupOffsetsRequestTopic::default()
                    .with_topic_name(tname("b"))
                    .with_partitions(vec![
                        alter::AlterShareGroupOffsetsRequestPartition::default()
                            .with_partition_index(3),
                    ])]),
        );
        let h = header(api, 0);
        let RequestKind::AlterShareGroupOffsets(body) = &req else {
            unreachable!()
        };
        let plan = crate::policy::mapping::groups::offsets::alter_share_group_offsets(
            0,
            &h,
            body,
            &acl,
            &ids(),
        )
        .expect("plan");
        let (_, merge) = partial(plan, api, 0);
        let r: AlterShareGroupOffsetsResponse = merged(
            merge,
            api,
            0,
            &AlterShareGroupOffsetsResponse::default(),
            &acl,
            &ids(),
        );
        assert_eq!(r.responses[0].topic_id, B);
        assert_eq!(r.responses[0].partitions[0].error_code, 29);
    }

    #[test]
    fn describe_share_group_offsets_filters_all_topics_and_appends_denied_named_ones() {
        use kafka_protocol::messages::describe_share_group_offsets_request as req_;
        use kafka_protocol::messages::describe_share_group_offsets_response as resp_;
        let api = ApiKey::DescribeShareGroupOffsets;
        let acl = Acl::new()
            .allow(Describe, Group, "g")
            .allow(Describe, Topic, "a");
        let group = |id: &str, topics: Option<&[&str]>| {
            req_::DescribeShareGroupOffsetsRequestGroup::default()
                .with_group_id(gid(id))
                .with_topics(topics.map(|ts| {
                    ts.iter()
                        .map(|t| {
                            req_::DescribeShareGroupOffsetsRequestTopic::default()
                                .with_topic_name(tname(t))
                                .with_partitions(vec![0])
                        })
                        .collect()
                }))
        };
        let req = RequestKind::DescribeShareGroupOffsets(
            DescribeShareGroupOffsetsRequest::default()
                .with_groups(vec![group("g", Some(&["a", "b"])), group("h", None)]),
        );
        let (forwarded, merge) = partial(plan_for(api, 0, req, &acl), api, 0);
        let RequestKind::DescribeShareGroupOffsets(forwarded) = forwarded else {
            panic!("a DescribeShareGroupOffsets")
        };
        assert_eq!(forwarded.groups.len(), 1);
        assert_eq!(forwarded.groups[0].topics.as_ref().map(Vec::len), Some(1));
        let topic = |t: &str| {
            resp_::DescribeShareGroupOffsetsResponseTopic::default()
                .with_topic_name(tname(t))
                .with_partitions(vec![
                    resp_::DescribeShareGroupOffsetsResponsePartition::default(),
                ])
        };
        let upstream = DescribeShareGroupOffsetsResponse::default().with_groups(vec![
            resp_::DescribeShareGroupOffsetsResponseGroup::default()
                .with_group_id(gid("g"))
                .with_topics(vec![topic("a")]),
        ]);
        let r: DescribeShareGroupOffsetsResponse =
            merged(merge, api, 0, &upstream, &acl, &Ids::default());
        let got: Vec<_> = r
            .groups
            .iter()
            .map(|g| {
                let topics: Vec<_> = g
                    .topics
                    .iter()
                    .map(|t| (t.topic_name.as_str(), t.partitions[0].error_code))
                    .collect();
                (g.group_id.as_str(), g.error_code, topics)
            })
            .collect();
        assert_eq!(
            got,
            vec![("g", 0, vec![("a", 0), ("b", 29)]), ("h", 30, vec![])]
        );
        // All topics: what the session may not describe is dropped.
        let req = RequestKind::DescribeShareGroupOffsets(
            DescribeShareGroupOffsetsRequest::default().with_groups(vec![group("g", None)]),
        );
        let merge = then_merge(plan_for(api, 0, req, &acl));
        let upstream = DescribeShareGroupOffsetsResponse::default().with_groups(vec![
            resp_::DescribeShareGroupOffsetsResponseGroup::default()
                .with_group_id(gid("g"))
                .with_topics(vec![topic("a"), topic("b")]),
        ]);
        let r: DescribeShareGroupOffsetsResponse =
            merged(merge, api, 0, &upstream, &acl, &Ids::default());
        assert_eq!(r.groups[0].topics.len(), 1);
    }

    #[test]
    fn a_share_session_carries_a_bounded_number_of_denied_partitions() {
        use crate::upstream::fetch_sessions::SHARE_DENIED_MAX;
        let many: Vec<(i32, bool)> = (0..SHARE_DENIED_MAX as i32 + 50)
            .map(|p| (p, false))
            .collect();
        let req = fetch(0, vec![topic(A, &[(0, false)]), topic(B, &many)]);
        let p = plan_fetch(&req, &acl(), Continuing::Allowed(&[]));
        assert_eq!(p.denied.map(|d| d.len()), Some(SHARE_DENIED_MAX));
        let (_, merge) = partial(p.plan, ApiKey::ShareFetch, 1);
        let r: ShareFetchResponse =
            merged(merge, ApiKey::ShareFetch, 1, &upstream_a(), &acl(), &ids());
        assert_eq!(
            rows(&r).len(),
            1 + many.len(),
            "each is still answered in its request"
        );
    }
}
