//! FindCoordinator, the group membership protocols (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! ConsumerGroupHeartbeat) and the group admin APIs (DescribeGroups, ConsumerGroupDescribe,
//! ListGroups, DeleteGroups).

use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup as CgDescribedGroup;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::share_group_describe_response::DescribedGroup as ShareDescribedGroup;
use kafka_protocol::messages::{
    ApiKey, BrokerId, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, DeleteGroupsResponse, DescribeGroupsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsResponse,
    RequestHeader, ShareGroupDescribeResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::code::{
    CLUSTER_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED, INCONSISTENT_GROUP_PROTOCOL,
    INVALID_REQUEST, TOPIC_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
};
use super::{cluster_allowed, group_allowed, group_authorized_operations, message, topic_allowed};
use crate::policy::mapping::list_api::{
    self, by_name, list_api, rewrite, single, Answer, Decoded, Key, ResponseList, Splicing, Then,
    Verdict,
};
use crate::policy::mapping::{Authorize, Plan, TopicIds};
use crate::policy::{Operation, ResourceType};
use crate::protocol::codec::ProtocolError;
use crate::protocol::names::{NameListWire, NamedAnswer};

list_api!(Coordinators: FindCoordinator,
    FindCoordinatorResponse[coordinators] => Coordinator, |_, a| by_name(&a.key);
    FindCoordinatorRequest[coordinator_keys] => StrBytes, |_, k| Key::Name(k.clone()));
list_api!(DescribedGroups: DescribeGroups,
    DescribeGroupsResponse[groups] => DescribedGroup, |_, a| by_name(&a.group_id));
list_api!(CgDescribedGroups: ConsumerGroupDescribe,
    ConsumerGroupDescribeResponse[groups] => CgDescribedGroup, |_, a| by_name(&a.group_id));
list_api!(ShareDescribedGroups: ShareGroupDescribe,
    ShareGroupDescribeResponse[groups] => ShareDescribedGroup, |_, a| by_name(&a.group_id));
list_api!(DeletedGroups: DeleteGroups,
    DeleteGroupsResponse[results] => DeletableGroupResult, |_, a| by_name(&a.group_id));

// ---- FindCoordinator ----

/// Kafka's `CoordinatorType`.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;
const KEY_TYPE_SHARE: i8 = 2;

/// KafkaApis.getCoordinator: GROUP keys need DESCRIBE on the group (30), TRANSACTION keys DESCRIBE
/// on the transactional id (53). Denied keys get node -1, host "", port -1. SHARE keys are
/// broker-to-broker: INVALID_REQUEST before v6, CLUSTER_ACTION on the cluster from v6 (31 for the
/// whole request, with its message on every key). An unknown key type is INVALID_REQUEST, as
/// Kafka's `CoordinatorType.forId` fails.
pub(in crate::policy::mapping) fn find_coordinator(
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
            let allowed = cluster_allowed(authz, Operation::ClusterAction);
            (
                ResourceType::Cluster,
                if allowed {
                    0
                } else {
                    CLUSTER_AUTHORIZATION_FAILED
                },
            )
        }
        _ => (ResourceType::Cluster, INVALID_REQUEST),
    };
    // An error for the whole request (`FindCoordinatorRequest.getErrorResponse`).
    let whole = (rtype == ResourceType::Cluster && error != 0).then_some(error);
    let key_ok = |key: &StrBytes| {
        rtype == ResourceType::Cluster || authz.allowed(Operation::Describe, rtype, key)
    };
    if version < 4 {
        return single(
            ApiKey::FindCoordinator,
            version,
            header,
            whole.is_none() && key_ok(&req.key),
            || {
                FindCoordinatorResponse::default()
                    .with_error_code(error)
                    .with_error_message(Some(StrBytes::from_static_str(error_message(error))))
                    .with_node_id(BrokerId(-1))
                    .with_host(StrBytes::new())
                    .with_port(-1)
            },
        );
    }
    let answer =
        list_api::answer_with(ApiKey::FindCoordinator, version, |key: &&StrBytes, code| {
            Coordinator::default()
                .with_key((*key).clone())
                .with_node_id(BrokerId(-1))
                .with_host(StrBytes::new())
                .with_port(-1)
                .with_error_code(code)
                .with_error_message(whole.map(|e| StrBytes::from_static_str(error_message(e))))
        });
    list_api::plan_each(
        Decoded::<Coordinators>::new(version, header, req),
        whole,
        (key_ok, error),
        &answer,
        Then::default(),
    )
}

fn error_message(error: i16) -> &'static str {
    match error {
        GROUP_AUTHORIZATION_FAILED => message::GROUP_AUTHORIZATION_FAILED,
        TRANSACTIONAL_ID_AUTHORIZATION_FAILED => message::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        CLUSTER_AUTHORIZATION_FAILED => message::CLUSTER_AUTHORIZATION_FAILED,
        _ => message::INVALID_REQUEST,
    }
}

// ---- classic group protocol ----

/// READ on the group, else `JoinGroupRequest.getErrorResponse`: 30, generation -1, member id and
/// leader "" (UNKNOWN_MEMBER_ID; Kafka does not echo the client's member id), protocol name null
/// from v7 ("" before), no members.
pub(in crate::policy::mapping) fn join_group(
    version: i16,
    header: &RequestHeader,
    req: &JoinGroupRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let allowed = group_allowed(authz, Operation::Read, &req.group_id);
    single(ApiKey::JoinGroup, version, header, allowed, || {
        JoinGroupResponse::default()
            .with_error_code(GROUP_AUTHORIZATION_FAILED)
            .with_generation_id(-1)
            .with_leader(StrBytes::new())
            .with_member_id(StrBytes::new())
            .with_protocol_name((version < 7).then(StrBytes::new))
    })
}

/// From v5 both protocol type and name are required: Kafka answers 23 before authorizing. Then
/// READ on the group, else 30 with an empty assignment.
pub(in crate::policy::mapping) fn sync_group(
    version: i16,
    header: &RequestHeader,
    req: &SyncGroupRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let error = if version >= 5 && (req.protocol_type.is_none() || req.protocol_name.is_none()) {
        INCONSISTENT_GROUP_PROTOCOL
    } else if group_allowed(authz, Operation::Read, &req.group_id) {
        0
    } else {
        GROUP_AUTHORIZATION_FAILED
    };
    single(ApiKey::SyncGroup, version, header, error == 0, || {
        SyncGroupResponse::default().with_error_code(error)
    })
}

/// Heartbeat and LeaveGroup: READ on the group, else 30 (LeaveGroupRequest.getErrorResponse: the
/// top-level error only; v3+ batches carry no per-member entries in that answer).
pub(in crate::policy::mapping) fn group_read<R: Encodable + Default>(
    (api, version, header): (ApiKey, i16, &RequestHeader),
    group: &str,
    authz: &dyn Authorize,
    with_error: fn(R, i16) -> R,
) -> Result<Plan, ProtocolError> {
    let allowed = group_allowed(authz, Operation::Read, group);
    single(api, version, header, allowed, || {
        with_error(R::default(), GROUP_AUTHORIZATION_FAILED)
    })
}

pub(in crate::policy::mapping) fn heartbeat(
    version: i16,
    header: &RequestHeader,
    req: &HeartbeatRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let at = (ApiKey::Heartbeat, version, header);
    group_read(at, &req.group_id, authz, HeartbeatResponse::with_error_code)
}

pub(in crate::policy::mapping) fn leave_group(
    version: i16,
    header: &RequestHeader,
    req: &LeaveGroupRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let at = (ApiKey::LeaveGroup, version, header);
    group_read(
        at,
        &req.group_id,
        authz,
        LeaveGroupResponse::with_error_code,
    )
}

// ---- KIP-848 consumer groups ----

/// KafkaApis.handleConsumerGroupHeartbeat: READ on the group (30), then DESCRIBE on every
/// subscribed topic name when the heartbeat carries them (29 otherwise). Forwarded with a merge
/// that drops undescribable topics from the assignment: a subscription regex is resolved by the
/// upstream's coordinator with the gateway's rights, where Kafka resolves it with the member's.
pub(in crate::policy::mapping) fn consumer_group_heartbeat(
    version: i16,
    header: &RequestHeader,
    req: &ConsumerGroupHeartbeatRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::ConsumerGroupHeartbeat;
    let subscribed = req.subscribed_topic_names.as_deref();
    let Some(error) = heartbeat_error(authz, &req.group_id, true, subscribed) else {
        // Keeps the assigned topics the member may DESCRIBE. An id the gateway cannot name even
        // after asking the cluster (the session does, see `Merge::upstream_topic_ids`) is dropped:
        // it is never passed to a client unauthorized.
        let adjust =
            |r: &mut ConsumerGroupHeartbeatResponse, authz: &dyn Authorize, ids: &dyn TopicIds| {
                if let Some(assignment) = &mut r.assignment {
                    assignment.topic_partitions.retain(|tp| {
                        ids.name_of(tp.topic_id)
                            .is_some_and(|name| topic_allowed(authz, Operation::Describe, &name))
                    });
                }
            };
        return Ok(rewrite(API, version, adjust, Some(assignment_ids)));
    };
    single(API, version, header, false, || {
        ConsumerGroupHeartbeatResponse::default().with_error_code(error)
    })
}

/// The checks of a KIP-848 or KIP-932 heartbeat, in Kafka's order: READ on the group (30), a
/// valid member id (42), DESCRIBE on every subscribed topic (29); `None` when all pass.
pub(super) fn heartbeat_error(
    authz: &dyn Authorize,
    group: &str,
    member_ok: bool,
    subscribed: Option<&[kafka_protocol::messages::TopicName]>,
) -> Option<i16> {
    if !group_allowed(authz, Operation::Read, group) {
        Some(GROUP_AUTHORIZATION_FAILED)
    } else if !member_ok {
        Some(INVALID_REQUEST)
    } else if subscribed
        .into_iter()
        .flatten()
        .any(|name| !topic_allowed(authz, Operation::Describe, name))
    {
        Some(TOPIC_AUTHORIZATION_FAILED)
    } else {
        None
    }
}

/// The topic ids of the assignment in a ConsumerGroupHeartbeat response.
fn assignment_ids(r: &ConsumerGroupHeartbeatResponse) -> Vec<uuid::Uuid> {
    r.assignment
        .iter()
        .flat_map(|a| a.topic_partitions.iter().map(|tp| tp.topic_id))
        .collect()
}

// ---- group admin ----

/// An answer entry for one group, as the gateway writes it for a denied group.
trait GroupEntry: Encodable + Default + Clone {
    fn denied(group_id: GroupId) -> Self;
}

macro_rules! group_entry {
    ($($t:ty),*) => {$(
        impl GroupEntry for $t {
            fn denied(group_id: GroupId) -> Self {
                Self::default().with_group_id(group_id).with_error_code(GROUP_AUTHORIZATION_FAILED)
            }
        }
    )*};
}
group_entry!(
    DescribedGroup,
    CgDescribedGroup,
    ShareDescribedGroup,
    DeletableGroupResult
);

/// A request that is one list of group names ([`NameListWire`]): each name allowed `op`, or
/// answered 30, once per distinct name when `once` (Kafka de-duplicates DeleteGroups). Read in
/// place: no struct per name; a denied group's answer is encoded once ([`NamedAnswer`], the name
/// `compact` from the flexible versions on) with each name written in.
fn by_group_name<L: ResponseList>(
    (header, wire, authz): (&RequestHeader, &NameListWire, &dyn Authorize),
    (op, once, compact): (Operation, bool, bool),
    then: Then<L>,
) -> Result<Plan, ProtocolError>
where
    L::Answer: GroupEntry,
{
    let (api, version) = (wire.api(), wire.version());
    let answer = NamedAnswer::new(
        api,
        version,
        &L::Answer::denied(GroupId::default()),
        compact,
        |g, name| *g = L::Answer::denied(GroupId(StrBytes::from_static_str(name))),
    )?;
    let allowed = |g: &str| group_allowed(authz, op, g);
    use hashbrown::hash_table::{Entry, HashTable};
    use std::hash::{BuildHasher, RandomState};
    // A table of name offsets, not of names: 5 bytes a bucket (issue 11 item 5).
    let hasher = RandomState::new();
    let mut seen: HashTable<u32> = HashTable::new();
    let name_at = |at: &u32| wire.name_at(*at).unwrap_or_default();
    let check = |&(at, name): &(u32, &str)| {
        if allowed(name) {
            return Verdict::Forward;
        }
        if !once {
            return Verdict::Answer(GROUP_AUTHORIZATION_FAILED);
        }
        let hash = hasher.hash_one(name);
        match seen.entry(
            hash,
            |o| name_at(o) == name,
            |o| hasher.hash_one(name_at(o)),
        ) {
            Entry::Occupied(_) => Verdict::Repeat,
            Entry::Vacant(slot) => {
                slot.insert(at);
                Verdict::Answer(GROUP_AUTHORIZATION_FAILED)
            }
        }
    };
    let named = Named(&answer, api, version);
    list_api::plan(header, wire, check, &named, then)
}

/// A [`NamedAnswer`] as the answer for a group name, at an API and version.
struct Named<'a>(&'a NamedAnswer, ApiKey, i16);

impl<'a> Answer<(u32, &'a str)> for Named<'_> {
    fn write(
        &self,
        out: &mut bytes::BytesMut,
        &(_, name): &(u32, &'a str),
        _: i16,
    ) -> Result<(), ProtocolError> {
        self.0.write(out, name).map_err(|e| ProtocolError::Encode {
            api: self.1,
            version: self.2,
            message: e.to_string(),
        })
    }

    fn size(&self, &(_, name): &(u32, &'a str), _: i16) -> usize {
        self.0.size(name)
    }
}

/// KafkaApis.handleConsumerGroupDescribe: DESCRIBE per group (30); always merged, as Kafka replaces
/// a group whose assignments name a topic the client may not DESCRIBE by a 29 without members.
pub(in crate::policy::mapping) fn consumer_group_describe(
    header: &RequestHeader,
    wire: &NameListWire,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    assigned_group_describe::<CgDescribedGroups>(header, wire, authz)
}

/// KafkaApis.handleShareGroupDescribe: as ConsumerGroupDescribe (share members have no target
/// assignment).
pub(in crate::policy::mapping) fn share_group_describe(
    header: &RequestHeader,
    wire: &NameListWire,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    assigned_group_describe::<ShareDescribedGroups>(header, wire, authz)
}

/// A described group of the KIP-848 and KIP-932 protocols, whose members' assignments name topics.
trait AssignedGroup: GroupEntry {
    fn assigned_topics(&self) -> impl Iterator<Item = &str>;
    /// Kafka's answer for a group naming a topic the client may not DESCRIBE.
    fn hidden(group_id: GroupId) -> Self;
    fn group_id(&mut self) -> &mut GroupId;
    /// The error code, and where the authorized operations go.
    fn result(&mut self) -> (i16, &mut i32);
}

macro_rules! assigned_group {
    ($t:ty, |$m:ident| $assignments:expr) => {
        impl AssignedGroup for $t {
            fn assigned_topics(&self) -> impl Iterator<Item = &str> {
                self.members
                    .iter()
                    .flat_map(|$m| $assignments)
                    .flat_map(|a| &a.topic_partitions)
                    .map(|tp| tp.topic_name.as_str())
            }
            fn hidden(group_id: GroupId) -> Self {
                Self::default()
                    .with_group_id(group_id)
                    .with_error_code(TOPIC_AUTHORIZATION_FAILED)
                    .with_error_message(Some(StrBytes::from_static_str(UNDESCRIBABLE_TOPICS)))
            }
            fn group_id(&mut self) -> &mut GroupId {
                &mut self.group_id
            }
            fn result(&mut self) -> (i16, &mut i32) {
                (self.error_code, &mut self.authorized_operations)
            }
        }
    };
}
assigned_group!(CgDescribedGroup, |m| [&m.assignment, &m.target_assignment]);
assigned_group!(ShareDescribedGroup, |m| [&m.assignment]);

fn assigned_group_describe<L: ResponseList>(
    header: &RequestHeader,
    wire: &NameListWire,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError>
where
    L::Answer: AssignedGroup,
{
    let recompute = wire.include_authorized_operations();
    // The gateway's own answers (30, no members) need none of this: only the upstream's groups.
    let then = Then::<L>::default().adjust(move |r, authz, _| {
        for group in L::answers(r) {
            let hidden = group
                .assigned_topics()
                .any(|topic| !topic_allowed(authz, Operation::Describe, topic));
            if hidden {
                *group = L::Answer::hidden(std::mem::take(group.group_id()));
            } else if recompute {
                let name = group.group_id().clone();
                if let (0, ops) = group.result() {
                    *ops = group_authorized_operations(authz, &name);
                }
            }
        }
        Ok(Splicing::Answers)
    });
    by_group_name(
        (header, wire, authz),
        (Operation::Describe, false, true),
        then,
    )
}

const UNDESCRIBABLE_TOPICS: &str =
    "The group has described topic(s) that the client is not authorized to describe.";

/// KafkaApis.handleDescribeGroupsRequest: DESCRIBE per group, else `groupError(group, 30)` (state,
/// protocol type and data "", no members, authorized operations omitted). When the client asks for
/// authorized operations (v3+) they are recomputed for this session: the upstream computed them for
/// the gateway.
pub(in crate::policy::mapping) fn describe_groups(
    header: &RequestHeader,
    wire: &NameListWire,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let version = wire.version();
    let mut then = Then::<DescribedGroups>::default();
    if version >= 3 && wire.include_authorized_operations() {
        then = then.adjust(|r, authz, _| {
            for group in r.groups.iter_mut().filter(|g| g.error_code == 0) {
                group.authorized_operations = group_authorized_operations(authz, &group.group_id);
            }
            Ok(Splicing::Answers)
        });
    }
    let shape = (Operation::Describe, false, version >= 5);
    by_group_name((header, wire, authz), shape, then)
}

/// KafkaApis.handleDeleteGroupsRequest: DELETE per group, else 30 for it (once per distinct name,
/// as Kafka de-duplicates the list).
pub(in crate::policy::mapping) fn delete_groups(
    header: &RequestHeader,
    wire: &NameListWire,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let shape = (Operation::Delete, true, wire.version() >= 2);
    by_group_name::<DeletedGroups>((header, wire, authz), shape, Then::default())
}

/// KafkaApis.handleListGroupsRequest: with DESCRIBE on the cluster every group is listed; otherwise
/// only the groups the session may DESCRIBE, without an error.
pub(in crate::policy::mapping) fn list_groups(version: i16, authz: &dyn Authorize) -> Plan {
    if cluster_allowed(authz, Operation::Describe) {
        return Plan::Forward;
    }
    rewrite(
        ApiKey::ListGroups,
        version,
        |r: &mut ListGroupsResponse, authz, _| {
            r.groups
                .retain(|g| group_allowed(authz, Operation::Describe, &g.group_id))
        },
        None,
    )
}
