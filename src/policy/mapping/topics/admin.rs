//! Topic and cluster administration. A KRaft broker forwards most of these to the controller, so the
//! reference is ControllerApis where it decides (CreateTopics, DeleteTopics, CreatePartitions,
//! AlterConfigs, IncrementalAlterConfigs, ElectLeaders, Alter/ListPartitionReassignments) and
//! KafkaApis / ConfigHelper otherwise (DescribeConfigs, DescribeLogDirs, AlterReplicaLogDirs).
//!
//! Duplicate entries the gateway answers itself get Kafka's 42 instead of an authorization error
//! (Kafka checks duplicates first); allowed duplicates are forwarded and answered 42 upstream.

use std::collections::HashSet;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse as AlterResult;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResult;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse, AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse,
    ApiKey, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, DescribeLogDirsResponse, ElectLeadersRequest, ElectLeadersResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    ListPartitionReassignmentsResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::{
    cluster_allowed, code, duplicates, encode_request_with_header, message, resolve, respond,
    topic_allowed, Key, Keyed, Merge, Slot, Splice,
};
use crate::policy::mapping::{Authorize, Plan, TopicIds};
use crate::policy::{Operation, ResourceType};
use crate::protocol::codec::ProtocolError;

fn msg(s: &'static str) -> Option<StrBytes> {
    Some(StrBytes::from_static_str(s))
}

fn wrap(m: Merge) -> super::super::Merge {
    super::super::Merge::Topics(m)
}

// ---------------------------------------------------------------------------------------------
// CreateTopics

impl Keyed for CreatableTopicResult {
    fn keys(&self, _version: i16) -> [Option<Key>; 2] {
        [Some(Key::Name(self.name.0.clone())), None]
    }
}

/// CreateTopics v5 returns the created topic's configs.
const FIRST_CREATE_CONFIGS_VERSION: i16 = 5;

/// ControllerApis.createTopics: CREATE on the cluster, or CREATE on the topic, else 29 ("Authorization
/// failed."). From v5 a created topic's configs are only returned with DESCRIBE_CONFIGS on it; without,
/// `topic_config_error_code` is 29 and the configs, partition count and replication factor are left
/// out. `validate_only` is forwarded as sent.
pub(super) fn create_topics(
    version: i16,
    header: &RequestHeader,
    req: &CreateTopicsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let cluster_create = cluster_allowed(authz, Operation::Create);
    let allowed = |n: &str| {
        (cluster_create && !authz.reserved(ResourceType::Topic, n))
            || topic_allowed(authz, Operation::Create, n)
    };
    let strip = |n: &str| {
        version >= FIRST_CREATE_CONFIGS_VERSION
            && !topic_allowed(authz, Operation::DescribeConfigs, n)
    };
    if req
        .topics
        .iter()
        .all(|t| allowed(&t.name) && !strip(&t.name))
    {
        return Ok(Plan::Forward);
    }

    let dups = duplicates(req.topics.iter().map(|t| &**t.name));
    let mut answered_dups = HashSet::new();
    let mut slots = Splice::new(ApiKey::CreateTopics, version);
    let mut strip_configs = Vec::new();
    for t in &req.topics {
        if allowed(&t.name) {
            if strip(&t.name) {
                strip_configs.push(t.name.0.clone());
            }
            slots.push(Slot::Upstream(Key::Name(t.name.0.clone())))?;
        } else if dups.contains(&**t.name) {
            if answered_dups.insert(&**t.name) {
                slots.push(Slot::Local(
                    CreatableTopicResult::default()
                        .with_name(t.name.clone())
                        .with_error_code(code::INVALID_REQUEST)
                        .with_error_message(msg(message::DUPLICATE_TOPIC_NAME)),
                ))?;
            }
        } else {
            slots.push(Slot::Local(
                CreatableTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(code::TOPIC_AUTHORIZATION_FAILED)
                    .with_error_message(msg(message::CREATE_DENIED)),
            ))?;
        }
    }
    let locals = slots.local_count();
    if locals == slots.entries() {
        return slots.respond(header, &CreateTopicsResponse::default(), |r, v| {
            r.topics = v
        });
    }
    let merge = wrap(Merge::CreateTopics {
        splice: slots,
        strip_configs,
    });
    if locals == 0 {
        return Ok(Plan::ForwardThenMerge(merge));
    }
    let mut forwarded = req.clone();
    forwarded.topics.retain(|t| allowed(&t.name));
    Ok(Plan::ForwardPartial {
        request: encode_request_with_header(ApiKey::CreateTopics, version, header, &forwarded)?,
        merge,
    })
}

pub(super) fn merge_create_topics(
    splice: Splice<CreatableTopicResult>,
    strip_configs: &[StrBytes],
    payload: bytes::Bytes,
) -> Result<bytes::Bytes, ProtocolError> {
    let strip: HashSet<&StrBytes> = strip_configs.iter().collect();
    splice.merge(
        payload,
        |r: &mut CreateTopicsResponse| {
            for t in r.topics.iter_mut() {
                // ReplicationControlManager: only a created topic carries configs.
                if t.error_code == 0 && strip.contains(&t.name.0) {
                    let defaults = CreatableTopicResult::default();
                    t.topic_config_error_code = code::TOPIC_AUTHORIZATION_FAILED;
                    t.num_partitions = defaults.num_partitions;
                    t.replication_factor = defaults.replication_factor;
                    t.configs = defaults.configs;
                }
            }
            std::mem::take(&mut r.topics)
        },
        |r, v| r.topics = v,
    )
}

// ---------------------------------------------------------------------------------------------
// DeleteTopics

impl Keyed for DeletableTopicResult {
    fn keys(&self, _version: i16) -> [Option<Key>; 2] {
        [
            self.name.as_ref().map(|n| Key::Name(n.0.clone())),
            (!self.topic_id.is_nil()).then_some(Key::Id(self.topic_id)),
        ]
    }
}

/// DeleteTopics v5 has error messages; v6 names topics by name or id.
const FIRST_DELETE_MESSAGE_VERSION: i16 = 5;
const FIRST_DELETE_BY_ID_VERSION: i16 = 6;

/// One DeleteTopics entry, by name or by id.
#[derive(Clone)]
enum Target {
    Name(TopicName),
    Id(Uuid),
    /// Both or neither given: answered here as Kafka answers it (42, per entry), never forwarded:
    /// with both, the name could be allowed and the id another topic's.
    Malformed {
        name: Option<TopicName>,
        id: Uuid,
    },
}

/// ControllerApis.deleteTopics: DELETE on the cluster allows everything; otherwise DELETE on the
/// topic, and by name DESCRIBE too. By name, without DESCRIBE: 29; with DESCRIBE but without
/// DELETE: 29, or 3 when the topic does not exist (Kafka checks DESCRIBE, then existence, then
/// DELETE; the gateway asked the cluster about names it had not seen before this plan, see
/// [`super::super::topic_names_named`]).
/// By id: an id unknown to the cluster gets 100; a denied one echoes the id, with the name only
/// if the session may DESCRIBE the topic.
pub(super) fn delete_topics(
    version: i16,
    header: &RequestHeader,
    req: &DeleteTopicsRequest,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Plan, ProtocolError> {
    let targets: Vec<Target> = if version >= FIRST_DELETE_BY_ID_VERSION {
        req.topics
            .iter()
            .map(|t| match (&t.name, t.topic_id.is_nil()) {
                (Some(n), true) => Target::Name(n.clone()),
                (None, false) => Target::Id(t.topic_id),
                _ => Target::Malformed {
                    name: t.name.clone(),
                    id: t.topic_id,
                },
            })
            .collect()
    } else {
        req.topic_names.iter().cloned().map(Target::Name).collect()
    };
    // DELETE on the cluster reaches every topic but a reserved one; asked only when a topic's own
    // check fails.
    let cluster_delete = std::cell::OnceCell::new();
    let by_cluster = |n: &str| {
        !authz.reserved(ResourceType::Topic, n)
            && *cluster_delete.get_or_init(|| cluster_allowed(authz, Operation::Delete))
    };
    let may_delete = |n: &str| topic_allowed(authz, Operation::Delete, n) || by_cluster(n);
    // By name Kafka also needs DESCRIBE (it answers 29 first for a topic it may not describe):
    // DELETE implies DESCRIBE, but a DENY on DESCRIBE still refuses the deletion.
    let may_delete_name = |n: &str| {
        (topic_allowed(authz, Operation::Delete, n) && topic_allowed(authz, Operation::Describe, n))
            || by_cluster(n)
    };
    // None: forward; Some(name if known): denied. An id the gateway cannot resolve is never
    // forwarded (it could name any topic): UNKNOWN_TOPIC_ID.
    let denied = |t: &Target| -> Option<Option<String>> {
        match t {
            Target::Name(n) => (!may_delete_name(n)).then(|| Some(n.to_string())),
            Target::Id(id) => match resolve(ids, *id) {
                None => Some(None),
                Some(n) => (!may_delete(&n)).then_some(Some(n)),
            },
            Target::Malformed { .. } => Some(None),
        }
    };
    if targets.iter().all(|t| denied(t).is_none()) {
        return Ok(Plan::Forward);
    }

    let message_for = |m: &'static str| {
        (version >= FIRST_DELETE_MESSAGE_VERSION).then(|| StrBytes::from_static_str(m))
    };
    let dup_names = duplicates(targets.iter().filter_map(|t| match t {
        Target::Name(n) => Some(&***n),
        _ => None,
    }));
    let mut seen_ids = HashSet::new();
    let dup_ids: HashSet<Uuid> = targets
        .iter()
        .filter_map(|t| match t {
            Target::Id(id) if !seen_ids.insert(*id) => Some(*id),
            _ => None,
        })
        .collect();
    let mut answered_names = HashSet::new();
    let mut answered_ids = HashSet::new();
    let mut slots = Splice::new(ApiKey::DeleteTopics, version);
    let mut keep = Vec::with_capacity(targets.len());
    for t in &targets {
        let verdict = denied(t);
        keep.push(verdict.is_none());
        let entry = match (t, verdict) {
            (Target::Name(n), None) => Slot::Upstream(Key::Name(n.0.clone())),
            (Target::Id(id), None) => Slot::Upstream(Key::Id(*id)),
            (Target::Malformed { name, id }, _) => Slot::Local(
                DeletableTopicResult::default()
                    .with_name(name.clone())
                    .with_topic_id(*id)
                    .with_error_code(code::INVALID_REQUEST)
                    .with_error_message(message_for(if name.is_some() {
                        message::NAME_AND_ID
                    } else {
                        message::NEITHER_NAME_NOR_ID
                    })),
            ),
            (Target::Name(n), Some(_)) if dup_names.contains(&***n) => {
                if !answered_names.insert(n.0.clone()) {
                    continue;
                }
                Slot::Local(
                    DeletableTopicResult::default()
                        .with_name(Some(n.clone()))
                        .with_error_code(code::INVALID_REQUEST)
                        .with_error_message(message_for(message::DUPLICATE_TOPIC_NAME)),
                )
            }
            (Target::Id(id), Some(_)) if dup_ids.contains(id) => {
                if !answered_ids.insert(*id) {
                    continue;
                }
                Slot::Local(
                    DeletableTopicResult::default()
                        .with_name(None)
                        .with_topic_id(*id)
                        .with_error_code(code::INVALID_REQUEST)
                        .with_error_message(message_for(message::DUPLICATE_TOPIC_ID)),
                )
            }
            (Target::Name(n), Some(_))
                if ids.id_of(n).is_none() && topic_allowed(authz, Operation::Describe, n) =>
            {
                Slot::Local(
                    DeletableTopicResult::default()
                        .with_name(Some(n.clone()))
                        .with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION)
                        .with_error_message(message_for(message::UNKNOWN_TOPIC_OR_PARTITION)),
                )
            }
            (Target::Name(n), Some(_)) => Slot::Local(
                DeletableTopicResult::default()
                    .with_name(Some(n.clone()))
                    .with_error_code(code::TOPIC_AUTHORIZATION_FAILED)
                    .with_error_message(message_for(message::TOPIC_AUTHORIZATION_FAILED)),
            ),
            (Target::Id(id), Some(None)) => Slot::Local(
                DeletableTopicResult::default()
                    .with_name(None)
                    .with_topic_id(*id)
                    .with_error_code(code::UNKNOWN_TOPIC_ID)
                    .with_error_message(message_for(message::UNKNOWN_TOPIC_ID)),
            ),
            (Target::Id(id), Some(Some(name))) => {
                let describable = topic_allowed(authz, Operation::Describe, &name);
                Slot::Local(
                    DeletableTopicResult::default()
                        .with_name(describable.then(|| TopicName(StrBytes::from_string(name))))
                        .with_topic_id(*id)
                        .with_error_code(code::TOPIC_AUTHORIZATION_FAILED)
                        .with_error_message(message_for(message::TOPIC_AUTHORIZATION_FAILED)),
                )
            }
        };
        slots.push(entry)?;
    }
    if keep.iter().all(|k| !k) {
        return slots.respond(header, &DeleteTopicsResponse::default(), |r, v| {
            r.responses = v
        });
    }
    let mut forwarded = req.clone();
    if version >= FIRST_DELETE_BY_ID_VERSION {
        let mut k = keep.iter();
        forwarded.topics.retain(|_| *k.next().unwrap_or(&true));
    } else {
        let mut k = keep.iter();
        forwarded.topic_names.retain(|_| *k.next().unwrap_or(&true));
    }
    Ok(Plan::ForwardPartial {
        request: encode_request_with_header(ApiKey::DeleteTopics, version, header, &forwarded)?,
        merge: wrap(Merge::DeleteTopics(slots)),
    })
}

// ---------------------------------------------------------------------------------------------
// CreatePartitions

impl Keyed for CreatePartitionsTopicResult {
    fn keys(&self, _version: i16) -> [Option<Key>; 2] {
        [Some(Key::Name(self.name.0.clone())), None]
    }
}

/// ControllerApis.createPartitions: ALTER on the topic, else 29 (no message).
pub(super) fn create_partitions(
    version: i16,
    header: &RequestHeader,
    req: &CreatePartitionsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let allowed = |n: &str| topic_allowed(authz, Operation::Alter, n);
    if req.topics.iter().all(|t| allowed(&t.name)) {
        return Ok(Plan::Forward);
    }
    let dups = duplicates(req.topics.iter().map(|t| &**t.name));
    let mut answered = HashSet::new();
    let mut slots = Splice::new(ApiKey::CreatePartitions, version);
    for t in &req.topics {
        if allowed(&t.name) {
            slots.push(Slot::Upstream(Key::Name(t.name.0.clone())))?;
        } else if dups.contains(&**t.name) {
            if answered.insert(&**t.name) {
                slots.push(Slot::Local(
                    CreatePartitionsTopicResult::default()
                        .with_name(t.name.clone())
                        .with_error_code(code::INVALID_REQUEST)
                        .with_error_message(msg(message::DUPLICATE_TOPIC_NAME)),
                ))?;
            }
        } else {
            slots.push(Slot::Local(
                CreatePartitionsTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(code::TOPIC_AUTHORIZATION_FAILED)
                    .with_error_message(None),
            ))?;
        }
    }
    if slots.local_count() == slots.entries() {
        return slots.respond(header, &CreatePartitionsResponse::default(), |r, v| {
            r.results = v
        });
    }
    let mut forwarded = req.clone();
    forwarded.topics.retain(|t| allowed(&t.name));
    Ok(Plan::ForwardPartial {
        request: encode_request_with_header(ApiKey::CreatePartitions, version, header, &forwarded)?,
        merge: wrap(Merge::CreatePartitions(slots)),
    })
}

// ---------------------------------------------------------------------------------------------
// Configs

/// `ConfigResource.Type` ids.
mod config_type {
    pub const TOPIC: i8 = 2;
    pub const BROKER: i8 = 4;
    pub const BROKER_LOGGER: i8 = 8;
    pub const CLIENT_METRICS: i8 = 16;
    pub const GROUP: i8 = 32;
}

/// The check a config resource needs, as ConfigHelper / ControllerApis.authorizeAlterResource:
/// `Ok(None)` allowed, `Ok(Some((code, message)))` denied, `Err(())` an unknown resource type.
fn config_check(
    authz: &dyn Authorize,
    op: Operation,
    rtype: i8,
    name: &str,
) -> Result<Option<(i16, &'static str)>, ()> {
    let (allowed, code, message) = match rtype {
        config_type::TOPIC => (
            topic_allowed(authz, op, name),
            code::TOPIC_AUTHORIZATION_FAILED,
            message::TOPIC_AUTHORIZATION_FAILED,
        ),
        config_type::BROKER | config_type::BROKER_LOGGER | config_type::CLIENT_METRICS => (
            cluster_allowed(authz, op),
            code::CLUSTER_AUTHORIZATION_FAILED,
            message::CLUSTER_AUTHORIZATION_FAILED,
        ),
        config_type::GROUP => (
            authz.allowed(op, ResourceType::Group, name),
            code::GROUP_AUTHORIZATION_FAILED,
            message::GROUP_AUTHORIZATION_FAILED,
        ),
        _ => return Err(()),
    };
    Ok((!allowed).then_some((code, message)))
}

impl Keyed for DescribeConfigsResult {
    fn keys(&self, _version: i16) -> [Option<Key>; 2] {
        [
            Some(Key::Resource(
                self.resource_type,
                self.resource_name.clone(),
            )),
            None,
        ]
    }
}

/// ConfigHelper.handleDescribeConfigsRequest: DESCRIBE_CONFIGS on the topic (29), the cluster for
/// broker, broker-logger and client-metrics resources (31), the group (30); the error's message,
/// no configs. An unknown resource type fails the whole request: 42 on every resource.
pub(super) fn describe_configs(
    version: i16,
    header: &RequestHeader,
    req: &DescribeConfigsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let check =
        |r: &kafka_protocol::messages::describe_configs_request::DescribeConfigsResource| {
            config_check(
                authz,
                Operation::DescribeConfigs,
                r.resource_type,
                &r.resource_name,
            )
        };
    if req.resources.iter().all(|r| check(r) == Ok(None)) {
        return Ok(Plan::Forward);
    }
    let result =
        |r: &kafka_protocol::messages::describe_configs_request::DescribeConfigsResource,
         code: i16,
         text: &'static str| {
            DescribeConfigsResult::default()
                .with_error_code(code)
                .with_error_message(msg(text))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
                .with_configs(Vec::new())
        };
    if req.resources.iter().any(|r| check(r).is_err()) {
        let results = req
            .resources
            .iter()
            .map(|r| result(r, code::INVALID_REQUEST, message::INVALID_REQUEST))
            .collect();
        let resp = DescribeConfigsResponse::default().with_results(results);
        return respond(ApiKey::DescribeConfigs, version, header, &resp);
    }
    let mut slots = Splice::new(ApiKey::DescribeConfigs, version);
    for r in &req.resources {
        slots.push(match check(r) {
            Ok(Some((code, text))) => Slot::Local(result(r, code, text)),
            _ => Slot::Upstream(Key::Resource(r.resource_type, r.resource_name.clone())),
        })?;
    }
    if slots.local_count() == slots.entries() {
        return slots.respond(header, &DescribeConfigsResponse::default(), |r, v| {
            r.results = v
        });
    }
    let mut forwarded = req.clone();
    forwarded.resources.retain(|r| check(r) == Ok(None));
    Ok(Plan::ForwardPartial {
        request: encode_request_with_header(ApiKey::DescribeConfigs, version, header, &forwarded)?,
        merge: wrap(Merge::DescribeConfigs(slots)),
    })
}

impl Keyed for AlterResult {
    fn keys(&self, _version: i16) -> [Option<Key>; 2] {
        [
            Some(Key::Resource(
                self.resource_type,
                self.resource_name.clone(),
            )),
            None,
        ]
    }
}

impl Keyed for IncrementalResult {
    fn keys(&self, _version: i16) -> [Option<Key>; 2] {
        [
            Some(Key::Resource(
                self.resource_type,
                self.resource_name.clone(),
            )),
            None,
        ]
    }
}

/// The local answer for one AlterConfigs / IncrementalAlterConfigs resource, if the gateway gives
/// one: a denied resource (29 / 31 / 30 with the error's message), an unknown type (35, "Unknown
/// resource type N.", never forwarded), a denied duplicate (42).
fn alter_verdict(
    authz: &dyn Authorize,
    rtype: i8,
    name: &StrBytes,
    dups: &HashSet<(i8, &str)>,
) -> Option<(i16, StrBytes)> {
    match config_check(authz, Operation::AlterConfigs, rtype, name) {
        Ok(None) => None,
        Err(()) => Some((
            code::UNSUPPORTED_VERSION,
            StrBytes::from_string(format!("Unknown resource type {rtype}.")),
        )),
        Ok(Some(_)) if dups.contains(&(rtype, &**name)) => Some((
            code::INVALID_REQUEST,
            StrBytes::from_static_str(message::DUPLICATE_RESOURCE),
        )),
        Ok(Some((code, text))) => Some((code, StrBytes::from_static_str(text))),
    }
}

/// The entries of an AlterConfigs-like request, and which of them are forwarded.
type AlterSlots<T> = (Splice<T>, Vec<bool>);

/// Shared by AlterConfigs and IncrementalAlterConfigs (same shapes, different types): the slots,
/// and which resources are forwarded; `None` when everything is forwarded.
fn alter_slots<T>(
    api: ApiKey,
    version: i16,
    resources: &[(i8, &StrBytes)],
    authz: &dyn Authorize,
    build: impl Fn(i8, &StrBytes, i16, StrBytes) -> T,
) -> Result<Option<AlterSlots<T>>, ProtocolError>
where
    T: Keyed + kafka_protocol::protocol::Encodable + kafka_protocol::protocol::Decodable + Default,
{
    let none = HashSet::new();
    if resources
        .iter()
        .all(|(t, n)| alter_verdict(authz, *t, n, &none).is_none())
    {
        return Ok(None);
    }
    let mut seen = HashSet::new();
    let dups: HashSet<(i8, &str)> = resources
        .iter()
        .filter(|(t, n)| !seen.insert((*t, &***n)))
        .map(|(t, n)| (*t, &***n))
        .collect();
    let mut keep = Vec::with_capacity(resources.len());
    let mut slots = Splice::new(api, version);
    for (t, n) in resources {
        slots.push(match alter_verdict(authz, *t, n, &dups) {
            None => {
                keep.push(true);
                Slot::Upstream(Key::Resource(*t, (*n).clone()))
            }
            Some((code, text)) => {
                keep.push(false);
                Slot::Local(build(*t, n, code, text))
            }
        })?;
    }
    Ok(Some((slots, keep)))
}

/// ControllerApis.handleLegacyAlterConfigs / authorizeAlterResource: ALTER_CONFIGS on the topic
/// (29), the cluster for broker, broker-logger and client-metrics resources (31), the group (30).
pub(super) fn alter_configs(
    version: i16,
    header: &RequestHeader,
    req: &AlterConfigsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::AlterConfigs;
    let resources: Vec<(i8, &StrBytes)> = req
        .resources
        .iter()
        .map(|r| (r.resource_type, &r.resource_name))
        .collect();
    let Some((slots, keep)) = alter_slots(API, version, &resources, authz, |t, n, code, text| {
        AlterResult::default()
            .with_resource_type(t)
            .with_resource_name(n.clone())
            .with_error_code(code)
            .with_error_message(Some(text))
    })?
    else {
        return Ok(Plan::Forward);
    };
    if keep.iter().all(|k| !k) {
        return slots.respond(header, &AlterConfigsResponse::default(), |r, v| {
            r.responses = v
        });
    }
    let mut forwarded = req.clone();
    let mut k = keep.iter();
    forwarded.resources.retain(|_| *k.next().unwrap_or(&true));
    Ok(Plan::ForwardPartial {
        request: encode_request_with_header(ApiKey::AlterConfigs, version, header, &forwarded)?,
        merge: wrap(Merge::AlterConfigs(slots)),
    })
}

/// As [`alter_configs`]; broker-logger resources need ALTER_CONFIGS on the cluster
/// (ConfigAdminManager.preprocess, 31).
pub(super) fn incremental_alter_configs(
    version: i16,
    header: &RequestHeader,
    req: &IncrementalAlterConfigsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::IncrementalAlterConfigs;
    let resources: Vec<(i8, &StrBytes)> = req
        .resources
        .iter()
        .map(|r| (r.resource_type, &r.resource_name))
        .collect();
    let Some((slots, keep)) = alter_slots(API, version, &resources, authz, |t, n, code, text| {
        IncrementalResult::default()
            .with_resource_type(t)
            .with_resource_name(n.clone())
            .with_error_code(code)
            .with_error_message(Some(text))
    })?
    else {
        return Ok(Plan::Forward);
    };
    if keep.iter().all(|k| !k) {
        return slots.respond(
            header,
            &IncrementalAlterConfigsResponse::default(),
            |r, v| r.responses = v,
        );
    }
    let mut forwarded = req.clone();
    let mut k = keep.iter();
    forwarded.resources.retain(|_| *k.next().unwrap_or(&true));
    Ok(Plan::ForwardPartial {
        request: encode_request_with_header(
            ApiKey::IncrementalAlterConfigs,
            version,
            header,
            &forwarded,
        )?,
        merge: wrap(Merge::IncrementalAlterConfigs(slots)),
    })
}

// ---------------------------------------------------------------------------------------------
// Cluster-wide APIs: all or nothing.

/// DescribeLogDirs v3 has a top-level error code; v1-2 answer a denial with empty results.
const FIRST_LOG_DIRS_ERROR_VERSION: i16 = 3;

/// KafkaApis.handleDescribeLogDirsRequest: DESCRIBE on the cluster, else no results and (v3+) 31.
pub(super) fn describe_log_dirs(
    version: i16,
    header: &RequestHeader,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    if cluster_allowed(authz, Operation::Describe) {
        return Ok(Plan::Forward);
    }
    let mut resp = DescribeLogDirsResponse::default().with_results(Vec::new());
    if version >= FIRST_LOG_DIRS_ERROR_VERSION {
        resp.error_code = code::CLUSTER_AUTHORIZATION_FAILED;
    }
    respond(ApiKey::DescribeLogDirs, version, header, &resp)
}

/// ControllerApis.handleElectLeaders: ALTER on the cluster, else ElectLeadersRequest.
/// getErrorResponse: top-level 31 (v1+) and 31 with the message on every named partition (none
/// when the request names no partitions: "all").
pub(super) fn elect_leaders(
    version: i16,
    header: &RequestHeader,
    req: &ElectLeadersRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    if cluster_allowed(authz, Operation::Alter) {
        return Ok(Plan::Forward);
    }
    let results = req
        .topic_partitions
        .iter()
        .flatten()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    PartitionResult::default()
                        .with_partition_id(*p)
                        .with_error_code(code::CLUSTER_AUTHORIZATION_FAILED)
                        .with_error_message(msg(message::CLUSTER_AUTHORIZATION_FAILED))
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(t.topic.clone())
                .with_partition_result(partitions)
        })
        .collect();
    let mut resp = ElectLeadersResponse::default().with_replica_election_results(results);
    if version >= 1 {
        resp.error_code = code::CLUSTER_AUTHORIZATION_FAILED;
    }
    respond(ApiKey::ElectLeaders, version, header, &resp)
}

/// KafkaApis.handleAlterReplicaLogDirsRequest: ALTER on the cluster, else 31 on every partition of
/// every directory's topics (one result per directory entry, as getErrorResponse flattens them).
pub(super) fn alter_replica_log_dirs(
    version: i16,
    header: &RequestHeader,
    req: &AlterReplicaLogDirsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    if cluster_allowed(authz, Operation::Alter) {
        return Ok(Plan::Forward);
    }
    let results = req
        .dirs
        .iter()
        .flat_map(|d| d.topics.iter())
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    AlterReplicaLogDirPartitionResult::default()
                        .with_partition_index(*p)
                        .with_error_code(code::CLUSTER_AUTHORIZATION_FAILED)
                })
                .collect();
            AlterReplicaLogDirTopicResult::default()
                .with_topic_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    let resp = AlterReplicaLogDirsResponse::default().with_results(results);
    respond(ApiKey::AlterReplicaLogDirs, version, header, &resp)
}

/// ControllerApis.handleAlterPartitionReassignments: ALTER on the cluster, else top-level 31 with
/// the message and 31 with the message on every named partition.
pub(super) fn alter_partition_reassignments(
    version: i16,
    header: &RequestHeader,
    req: &AlterPartitionReassignmentsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    if cluster_allowed(authz, Operation::Alter) {
        return Ok(Plan::Forward);
    }
    let responses = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code::CLUSTER_AUTHORIZATION_FAILED)
                        .with_error_message(msg(message::CLUSTER_AUTHORIZATION_FAILED))
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    let resp = AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(req.allow_replication_factor_change)
        .with_error_code(code::CLUSTER_AUTHORIZATION_FAILED)
        .with_error_message(msg(message::CLUSTER_AUTHORIZATION_FAILED))
        .with_responses(responses);
    respond(ApiKey::AlterPartitionReassignments, version, header, &resp)
}

/// ControllerApis.handleListPartitionReassignments: DESCRIBE on the cluster, else top-level 31 with
/// the message and no topics.
pub(super) fn list_partition_reassignments(
    version: i16,
    header: &RequestHeader,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    if cluster_allowed(authz, Operation::Describe) {
        return Ok(Plan::Forward);
    }
    let resp = ListPartitionReassignmentsResponse::default()
        .with_error_code(code::CLUSTER_AUTHORIZATION_FAILED)
        .with_error_message(msg(message::CLUSTER_AUTHORIZATION_FAILED))
        .with_topics(Vec::new());
    respond(ApiKey::ListPartitionReassignments, version, header, &resp)
}
