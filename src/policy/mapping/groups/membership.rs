//! FindCoordinator, the group membership protocols (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! ConsumerGroupHeartbeat) and the group admin APIs (DescribeGroups, ConsumerGroupDescribe,
//! ListGroups, DeleteGroups).

use bytes::Bytes;
use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup as CgDescribedGroup;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{
    ApiKey, BrokerId, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, DeleteGroupsResponse, DescribeGroupsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsResponse,
    RequestHeader, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::code::{
    CLUSTER_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED, INCONSISTENT_GROUP_PROTOCOL,
    INVALID_REQUEST, TOPIC_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
};
use super::{
    by_name, forward_partial, group_authorized_operations, mask, message, read_response, respond,
    split, then_merge, ByName, Denied, Merge,
};
use crate::policy::mapping::{Authorize, Plan, TopicIds};
use crate::policy::model::CLUSTER_NAME;
use crate::policy::{Operation, ResourceType};
use crate::protocol::codec::{encode_response, ProtocolError};
use crate::protocol::names::{NameListWire, NamedAnswer};

// ---- FindCoordinator ----

/// Kafka's `CoordinatorType`.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;
const KEY_TYPE_SHARE: i8 = 2;

/// KafkaApis.getCoordinator: GROUP keys need DESCRIBE on the group (30), TRANSACTION keys DESCRIBE
/// on the transactional id (53). Denied keys get node -1, host "", port -1. SHARE keys are
/// broker-to-broker: INVALID_REQUEST before v6, CLUSTER_ACTION on the cluster from v6 (31 for the
/// whole request). An unknown key type is INVALID_REQUEST, as Kafka's `CoordinatorType.forId` fails.
pub(super) fn find_coordinator(
    version: i16,
    header: &RequestHeader,
    req: &FindCoordinatorRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let (rtype, error) = match req.key_type {
        KEY_TYPE_GROUP => (ResourceType::Group, GROUP_AUTHORIZATION_FAILED),
        KEY_TYPE_TRANSACTION => (
            ResourceType::TransactionalId,
            TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        ),
        KEY_TYPE_SHARE if version >= 6 => {
            if authz.allowed(
                Operation::ClusterAction,
                ResourceType::Cluster,
                CLUSTER_NAME,
            ) {
                return Ok(Plan::Forward);
            }
            return coordinator_request_error(version, header, req, CLUSTER_AUTHORIZATION_FAILED);
        }
        _ => return coordinator_request_error(version, header, req, INVALID_REQUEST),
    };
    let key_ok = |key: &StrBytes| authz.allowed(Operation::Describe, rtype, key);
    if version < 4 {
        if key_ok(&req.key) {
            return Ok(Plan::Forward);
        }
        return respond(
            API_FIND_COORDINATOR,
            version,
            header,
            &single_coordinator_error(error),
        );
    }
    let Some(flags) = mask(&req.coordinator_keys, key_ok) else {
        return Ok(Plan::Forward);
    };
    let (allowed, denied) = split(
        API_FIND_COORDINATOR,
        version,
        &req.coordinator_keys,
        &flags,
        |key| no_coordinator(key).with_error_code(error),
    )?;
    if allowed.is_empty() {
        return denied.respond(header, &FindCoordinatorResponse::default(), |r, v| {
            r.coordinators = v
        });
    }
    let mut forwarded = req.clone();
    forwarded.coordinator_keys = allowed;
    let merge = Merge::FindCoordinator { version, denied };
    forward_partial(API_FIND_COORDINATOR, version, header, &forwarded, merge)
}

const API_FIND_COORDINATOR: ApiKey = ApiKey::FindCoordinator;

/// `FindCoordinatorResponse.prepareOldResponse(error, Node.noNode())` (v0-3).
fn single_coordinator_error(error: i16) -> FindCoordinatorResponse {
    FindCoordinatorResponse::default()
        .with_error_code(error)
        .with_error_message(Some(StrBytes::from_static_str(error_message(error))))
        .with_node_id(BrokerId(-1))
        .with_host(StrBytes::new())
        .with_port(-1)
}

fn no_coordinator(key: &StrBytes) -> Coordinator {
    Coordinator::default()
        .with_key(key.clone())
        .with_node_id(BrokerId(-1))
        .with_host(StrBytes::new())
        .with_port(-1)
}

/// An error for the whole request (`FindCoordinatorRequest.getErrorResponse`): v4+ repeats it, with
/// its message, for every key.
fn coordinator_request_error(
    version: i16,
    header: &RequestHeader,
    req: &FindCoordinatorRequest,
    error: i16,
) -> Result<Plan, ProtocolError> {
    if version < 4 {
        return respond(
            API_FIND_COORDINATOR,
            version,
            header,
            &single_coordinator_error(error),
        );
    }
    let coordinators = req.coordinator_keys.iter().map(|key| {
        no_coordinator(key)
            .with_error_code(error)
            .with_error_message(Some(StrBytes::from_static_str(error_message(error))))
    });
    let resp = FindCoordinatorResponse::default().with_coordinators(coordinators.collect());
    respond(API_FIND_COORDINATOR, version, header, &resp)
}

fn error_message(error: i16) -> &'static str {
    match error {
        GROUP_AUTHORIZATION_FAILED => message::GROUP_AUTHORIZATION_FAILED,
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED => message::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        CLUSTER_AUTHORIZATION_FAILED => message::CLUSTER_AUTHORIZATION_FAILED,
        _ => message::INVALID_REQUEST,
    }
}

pub(super) fn merge_find_coordinator(
    version: i16,
    denied: Denied<Coordinator>,
    payload: Bytes,
) -> Result<Bytes, ProtocolError> {
    let (header, mut resp): (_, FindCoordinatorResponse) =
        read_response(API_FIND_COORDINATOR, version, payload)?;
    let upstream = std::mem::take(&mut resp.coordinators);
    denied.merge(&header, &resp, |r, v| r.coordinators = v, &upstream)
}

// ---- classic group protocol ----

fn group_read(authz: &dyn Authorize, group: &str) -> bool {
    authz.allowed(Operation::Read, ResourceType::Group, group)
}

/// READ on the group, else `JoinGroupRequest.getErrorResponse`: 30, generation -1, member id and
/// leader "" (UNKNOWN_MEMBER_ID; Kafka does not echo the client's member id), protocol name null
/// from v7 ("" before), no members.
pub(super) fn join_group(
    version: i16,
    header: &RequestHeader,
    req: &JoinGroupRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    if group_read(authz, &req.group_id) {
        return Ok(Plan::Forward);
    }
    let mut resp = JoinGroupResponse::default()
        .with_error_code(GROUP_AUTHORIZATION_FAILED)
        .with_generation_id(-1)
        .with_leader(StrBytes::new())
        .with_member_id(StrBytes::new());
    resp.protocol_name = (version < 7).then(StrBytes::new);
    respond(ApiKey::JoinGroup, version, header, &resp)
}

/// From v5 both protocol type and name are required: Kafka answers 23 before authorizing. Then
/// READ on the group, else 30 with an empty assignment.
pub(super) fn sync_group(
    version: i16,
    header: &RequestHeader,
    req: &SyncGroupRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let error = if version >= 5 && (req.protocol_type.is_none() || req.protocol_name.is_none()) {
        INCONSISTENT_GROUP_PROTOCOL
    } else if group_read(authz, &req.group_id) {
        return Ok(Plan::Forward);
    } else {
        GROUP_AUTHORIZATION_FAILED
    };
    let resp = SyncGroupResponse::default().with_error_code(error);
    respond(ApiKey::SyncGroup, version, header, &resp)
}

/// READ on the group, else 30.
pub(super) fn heartbeat(
    version: i16,
    header: &RequestHeader,
    req: &HeartbeatRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    if group_read(authz, &req.group_id) {
        return Ok(Plan::Forward);
    }
    let resp = HeartbeatResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED);
    respond(ApiKey::Heartbeat, version, header, &resp)
}

/// READ on the group, else `LeaveGroupRequest.getErrorResponse`: the top-level 30 only; v3+
/// batches carry no per-member entries in that answer.
pub(super) fn leave_group(
    version: i16,
    header: &RequestHeader,
    req: &LeaveGroupRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    if group_read(authz, &req.group_id) {
        return Ok(Plan::Forward);
    }
    let resp = LeaveGroupResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED);
    respond(ApiKey::LeaveGroup, version, header, &resp)
}

// ---- KIP-848 consumer groups ----

/// KafkaApis.handleConsumerGroupHeartbeat: READ on the group (30), then DESCRIBE on every
/// subscribed topic name when the heartbeat carries them (29 otherwise). Forwarded with a merge
/// that drops undescribable topics from the assignment: a subscription regex is resolved by the
/// upstream's coordinator with the gateway's rights, where Kafka resolves it with the member's.
pub(super) fn consumer_group_heartbeat(
    version: i16,
    header: &RequestHeader,
    req: &ConsumerGroupHeartbeatRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::ConsumerGroupHeartbeat;
    if !group_read(authz, &req.group_id) {
        let resp =
            ConsumerGroupHeartbeatResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED);
        return respond(API, version, header, &resp);
    }
    let names = req.subscribed_topic_names.iter().flatten();
    if names
        .into_iter()
        .any(|name| !authz.allowed(Operation::Describe, ResourceType::Topic, name))
    {
        let resp =
            ConsumerGroupHeartbeatResponse::default().with_error_code(TOPIC_AUTHORIZATION_FAILED);
        return respond(API, version, header, &resp);
    }
    Ok(then_merge(Merge::ConsumerGroupHeartbeat { version }))
}

/// The topic ids of the assignment in a ConsumerGroupHeartbeat response (none if it does not decode:
/// the merge then reports the error).
pub(in crate::policy::mapping) fn assignment_topic_ids(
    version: i16,
    payload: Bytes,
) -> Vec<uuid::Uuid> {
    read_response::<ConsumerGroupHeartbeatResponse>(
        ApiKey::ConsumerGroupHeartbeat,
        version,
        payload,
    )
    .ok()
    .and_then(|(_, r)| r.assignment)
    .map(|a| a.topic_partitions.iter().map(|tp| tp.topic_id).collect())
    .unwrap_or_default()
}

/// Keeps the assigned topics the member may DESCRIBE. An id the gateway cannot name even after
/// asking the cluster (the session does, see `Merge::upstream_topic_ids`) is dropped: it is never
/// passed to a client unauthorized.
pub(super) fn merge_consumer_group_heartbeat(
    version: i16,
    payload: Bytes,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Bytes, ProtocolError> {
    const API: ApiKey = ApiKey::ConsumerGroupHeartbeat;
    let (header, mut resp): (_, ConsumerGroupHeartbeatResponse) =
        read_response(API, version, payload)?;
    if let Some(assignment) = &mut resp.assignment {
        assignment.topic_partitions.retain(|tp| {
            ids.name_of(tp.topic_id)
                .is_some_and(|name| authz.allowed(Operation::Describe, ResourceType::Topic, &name))
        });
    }
    encode_response(API, version, &header, &resp)
}

/// KafkaApis.handleConsumerGroupDescribe: DESCRIBE per group (30); always merged, as Kafka replaces
/// a group whose assignments name a topic the client may not DESCRIBE by a 29 without members.
pub(super) fn consumer_group_describe(
    header: &RequestHeader,
    wire: &NameListWire,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::ConsumerGroupDescribe;
    let version = wire.version();
    let authorized_operations = wire.include_authorized_operations();
    let group_ok = |g: &str| authz.allowed(Operation::Describe, ResourceType::Group, g);
    let answer = NamedAnswer::new(
        API,
        version,
        &CgDescribedGroup::default().with_error_code(GROUP_AUTHORIZATION_FAILED),
        true,
        |g, name| g.group_id = GroupId(StrBytes::from_static_str(name)),
    )?;
    let body = ConsumerGroupDescribeResponse::default();
    match by_name(header, wire, group_ok, &answer, false, &body, |r, v| {
        r.groups = v
    })? {
        ByName::AllAllowed => Ok(then_merge(Merge::ConsumerGroupDescribe {
            version,
            denied: Denied::new(API, version),
            authorized_operations,
        })),
        ByName::Answered(plan) => Ok(plan),
        ByName::Partial { request, denied } => Ok(Plan::ForwardPartial {
            request,
            merge: super::super::Merge::Groups(Merge::ConsumerGroupDescribe {
                version,
                denied,
                authorized_operations,
            }),
        }),
    }
}

const UNDESCRIBABLE_TOPICS: &str =
    "The group has described topic(s) that the client is not authorized to describe.";

pub(super) fn merge_consumer_group_describe(
    version: i16,
    denied: Denied<CgDescribedGroup>,
    authorized_operations: bool,
    payload: Bytes,
    authz: &dyn Authorize,
) -> Result<Bytes, ProtocolError> {
    const API: ApiKey = ApiKey::ConsumerGroupDescribe;
    let (header, mut resp): (_, ConsumerGroupDescribeResponse) =
        read_response(API, version, payload)?;
    // The gateway's own answers (30, no members) need none of this: only the upstream's groups.
    let upstream: Vec<CgDescribedGroup> = std::mem::take(&mut resp.groups)
        .into_iter()
        .map(|mut group| {
            let hidden = group
                .members
                .iter()
                .flat_map(|m| [&m.assignment, &m.target_assignment])
                .flat_map(|a| &a.topic_partitions)
                .any(|tp| !authz.allowed(Operation::Describe, ResourceType::Topic, &tp.topic_name));
            if hidden {
                return CgDescribedGroup::default()
                    .with_group_id(group.group_id)
                    .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                    .with_error_message(Some(StrBytes::from_static_str(UNDESCRIBABLE_TOPICS)));
            }
            if authorized_operations && group.error_code == 0 {
                group.authorized_operations = group_authorized_operations(authz, &group.group_id);
            }
            group
        })
        .collect();
    denied.merge(&header, &resp, |r, v| r.groups = v, &upstream)
}

// ---- group admin ----

/// KafkaApis.handleDescribeGroupsRequest: DESCRIBE per group, else `groupError(group, 30)` (state,
/// protocol type and data "", no members, authorized operations omitted). When the client asks for
/// authorized operations (v3+) they are recomputed for this session: the upstream computed them for
/// the gateway.
pub(super) fn describe_groups(
    header: &RequestHeader,
    wire: &NameListWire,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::DescribeGroups;
    let version = wire.version();
    let authorized_operations = version >= 3 && wire.include_authorized_operations();
    let group_ok = |g: &str| authz.allowed(Operation::Describe, ResourceType::Group, g);
    let answer = NamedAnswer::new(
        API,
        version,
        &DescribedGroup::default().with_error_code(GROUP_AUTHORIZATION_FAILED),
        version >= 5,
        |g, name| g.group_id = GroupId(StrBytes::from_static_str(name)),
    )?;
    let body = DescribeGroupsResponse::default();
    match by_name(header, wire, group_ok, &answer, false, &body, |r, v| {
        r.groups = v
    })? {
        ByName::AllAllowed if !authorized_operations => Ok(Plan::Forward),
        ByName::AllAllowed => Ok(then_merge(Merge::DescribeGroups {
            version,
            denied: Denied::new(API, version),
            authorized_operations,
        })),
        ByName::Answered(plan) => Ok(plan),
        ByName::Partial { request, denied } => Ok(Plan::ForwardPartial {
            request,
            merge: super::super::Merge::Groups(Merge::DescribeGroups {
                version,
                denied,
                authorized_operations,
            }),
        }),
    }
}

pub(super) fn merge_describe_groups(
    version: i16,
    denied: Denied<DescribedGroup>,
    authorized_operations: bool,
    payload: Bytes,
    authz: &dyn Authorize,
) -> Result<Bytes, ProtocolError> {
    const API: ApiKey = ApiKey::DescribeGroups;
    let (header, mut resp): (_, DescribeGroupsResponse) = read_response(API, version, payload)?;
    let mut upstream = std::mem::take(&mut resp.groups);
    if authorized_operations {
        for group in upstream.iter_mut().filter(|g| g.error_code == 0) {
            group.authorized_operations = group_authorized_operations(authz, &group.group_id);
        }
    }
    denied.merge(&header, &resp, |r, v| r.groups = v, &upstream)
}

/// KafkaApis.handleListGroupsRequest: with DESCRIBE on the cluster every group is listed; otherwise
/// only the groups the session may DESCRIBE, without an error.
pub(super) fn list_groups(version: i16, authz: &dyn Authorize) -> Plan {
    if authz.allowed(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
        Plan::Forward
    } else {
        then_merge(Merge::ListGroups { version })
    }
}

pub(super) fn merge_list_groups(
    version: i16,
    payload: Bytes,
    authz: &dyn Authorize,
) -> Result<Bytes, ProtocolError> {
    const API: ApiKey = ApiKey::ListGroups;
    let (header, mut resp): (_, ListGroupsResponse) = read_response(API, version, payload)?;
    resp.groups
        .retain(|g| authz.allowed(Operation::Describe, ResourceType::Group, &g.group_id));
    encode_response(API, version, &header, &resp)
}

/// KafkaApis.handleDeleteGroupsRequest: DELETE per group, else 30 for it (once per distinct name,
/// as Kafka de-duplicates the list).
pub(super) fn delete_groups(
    header: &RequestHeader,
    wire: &NameListWire,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::DeleteGroups;
    let version = wire.version();
    let group_ok = |g: &str| authz.allowed(Operation::Delete, ResourceType::Group, g);
    let answer = NamedAnswer::new(
        API,
        version,
        &DeletableGroupResult::default().with_error_code(GROUP_AUTHORIZATION_FAILED),
        version >= 2,
        |g, name| g.group_id = GroupId(StrBytes::from_static_str(name)),
    )?;
    let body = DeleteGroupsResponse::default();
    match by_name(header, wire, group_ok, &answer, true, &body, |r, v| {
        r.results = v
    })? {
        ByName::AllAllowed => Ok(Plan::Forward),
        ByName::Answered(plan) => Ok(plan),
        ByName::Partial { request, denied } => Ok(Plan::ForwardPartial {
            request,
            merge: super::super::Merge::Groups(Merge::DeleteGroups { version, denied }),
        }),
    }
}

pub(super) fn merge_delete_groups(
    version: i16,
    denied: Denied<DeletableGroupResult>,
    payload: Bytes,
) -> Result<Bytes, ProtocolError> {
    const API: ApiKey = ApiKey::DeleteGroups;
    let (header, mut resp): (_, DeleteGroupsResponse) = read_response(API, version, payload)?;
    let upstream = std::mem::take(&mut resp.results);
    denied.merge(&header, &resp, |r, v| r.results = v, &upstream)
}
