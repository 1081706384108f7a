//! Topic and cluster administration. A KRaft broker forwards most of these to the controller, so the
//! reference is ControllerApis where it decides (CreateTopics, DeleteTopics, CreatePartitions,
//! AlterConfigs, IncrementalAlterConfigs) and KafkaApis / ConfigHelper otherwise (DescribeConfigs,
//! DescribeLogDirs, ListConfigResources).
//!
//! Duplicate entries the gateway answers itself get Kafka's 42 instead of an authorization error
//! (Kafka checks duplicates first); allowed duplicates are forwarded and answered 42 upstream
//! ([`Repeats`]).

use std::collections::HashSet;

use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse as AlterResult;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource as IncrementalResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResult;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, CreatePartitionsRequest,
    CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse, DescribeLogDirsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ListConfigResourcesResponse,
    RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::{cluster_allowed, code, message, resolve, topic_allowed, Decoded};
use crate::policy::mapping::list_api::{
    self, answer_with, by_name, list_api, single, Key, Repeats, RequestList, Splicing, Then,
    Verdict,
};
use crate::policy::mapping::{Authorize, Plan, TopicIds};
use crate::policy::safeguards::{self, Change, ConfigChange, ConfigOp};
use crate::policy::{Operation, ResourceType};
use crate::protocol::codec::ProtocolError;

fn msg(s: &'static str) -> Option<StrBytes> {
    Some(StrBytes::from_static_str(s))
}

fn resource_keys(rtype: i8, name: &StrBytes) -> [Option<Key>; 2] {
    [Some(Key::Resource(rtype, name.clone())), None]
}

list_api!(CreateTopicsList: CreateTopics,
    CreateTopicsResponse[topics] => CreatableTopicResult, |_, a| by_name(&a.name);
    CreateTopicsRequest[topics] => CreatableTopic, |_, t| Key::Name(t.name.0.clone()));
list_api!(DeleteTopicNames: DeleteTopics,
    DeleteTopicsResponse[responses] => DeletableTopicResult, |_, a| deleted_keys(a);
    DeleteTopicsRequest[topic_names] => TopicName, |_, t| Key::Name(t.0.clone()));
list_api!(DeleteTopicStates: DeleteTopics,
    DeleteTopicsResponse[responses] => DeletableTopicResult, |_, a| deleted_keys(a);
    DeleteTopicsRequest[topics] => DeleteTopicState, |_, t| target(t).key().unwrap_or(Key::Id(t.topic_id)));
list_api!(CreatePartitionsList: CreatePartitions,
    CreatePartitionsResponse[results] => CreatePartitionsTopicResult, |_, a| by_name(&a.name);
    CreatePartitionsRequest[topics] => CreatePartitionsTopic, |_, t| Key::Name(t.name.0.clone()));
list_api!(DescribeConfigsList: DescribeConfigs,
    DescribeConfigsResponse[results] => DescribeConfigsResult, |_, a| resource_keys(a.resource_type, &a.resource_name);
    DescribeConfigsRequest[resources] => DescribeConfigsResource, |_, r| Key::Resource(r.resource_type, r.resource_name.clone()));
list_api!(AlterConfigsList: AlterConfigs,
    AlterConfigsResponse[responses] => AlterResult, |_, a| resource_keys(a.resource_type, &a.resource_name);
    AlterConfigsRequest[resources] => AlterConfigsResource, |_, r| Key::Resource(r.resource_type, r.resource_name.clone()));
list_api!(IncrementalList: IncrementalAlterConfigs,
    IncrementalAlterConfigsResponse[responses] => IncrementalResult, |_, a| resource_keys(a.resource_type, &a.resource_name);
    IncrementalAlterConfigsRequest[resources] => IncrementalResource, |_, r| Key::Resource(r.resource_type, r.resource_name.clone()));

// ---------------------------------------------------------------------------------------------
// CreateTopics and CreatePartitions

/// CreateTopics v5 returns the created topic's configs.
const FIRST_CREATE_CONFIGS_VERSION: i16 = 5;

/// What a CreateTopics entry asks for, as Kafka's CreateTopicPolicy sees it: with replica
/// assignments, their count and (smallest) number of replicas; -1 is the broker's default.
fn create_change(t: &CreatableTopic) -> Change<'_> {
    let given = |n: i64| (n >= 0).then_some(n);
    let (partitions, replication_factor) = if t.assignments.is_empty() {
        (
            given(t.num_partitions.into()),
            given(t.replication_factor.into()),
        )
    } else {
        let replicas = t.assignments.iter().map(|a| a.broker_ids.len()).min();
        (
            i64::try_from(t.assignments.len()).ok(),
            replicas.and_then(|n| i64::try_from(n).ok()),
        )
    };
    Change::CreateTopic {
        name: &t.name,
        partitions,
        replication_factor,
        configs: t
            .configs
            .iter()
            .map(|c| ConfigChange::set(&c.name, c.value.as_deref()))
            .collect(),
    }
}

/// The answer for an element a safeguard refuses: its message (asked again: the mapping keeps no
/// per-entry state between deciding and answering).
fn violation(authz: &dyn Authorize, change: &Change<'_>) -> Option<StrBytes> {
    authz.safeguard(change).map(StrBytes::from_string)
}

/// ControllerApis.createTopics: CREATE on the cluster, or CREATE on the topic, else 29 ("Authorization
/// failed."). A topic the ACLs allow but a safeguard refuses is answered 44 with the safeguard's
/// message, as ReplicationControlManager answers for its CreateTopicPolicy. From v5 a created topic's configs are only returned with DESCRIBE_CONFIGS on it; without,
/// `topic_config_error_code` is 29 and the configs, partition count and replication factor are left
/// out. `validate_only` is forwarded as sent.
pub(in crate::policy::mapping) fn create_topics(
    version: i16,
    header: &RequestHeader,
    req: &CreateTopicsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    // Kafka asks CREATE on the cluster first (the audit trail records the checks in its order).
    let cluster_create = cluster_allowed(authz, Operation::Create);
    let allowed = |n: &str| {
        (cluster_create && !authz.reserved(ResourceType::Topic, n))
            || topic_allowed(authz, Operation::Create, n)
    };
    let strip: HashSet<StrBytes> = req
        .topics
        .iter()
        .filter(|t| {
            version >= FIRST_CREATE_CONFIGS_VERSION
                && allowed(&t.name)
                && !topic_allowed(authz, Operation::DescribeConfigs, &t.name)
        })
        .map(|t| t.name.0.clone())
        .collect();
    let mut then = Then::default();
    if !strip.is_empty() {
        then = then.adjust(move |r: &mut CreateTopicsResponse, _, _| {
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
            Ok(Splicing::Answers)
        });
    }
    let answer = answer_with(
        ApiKey::CreateTopics,
        version,
        |t: &&CreatableTopic, code| {
            CreatableTopicResult::default()
                .with_name(t.name.clone())
                .with_error_code(code)
                .with_error_message(match code {
                    code::INVALID_REQUEST => msg(message::DUPLICATE_TOPIC_NAME),
                    code::POLICY_VIOLATION => violation(authz, &create_change(t)),
                    _ => msg(message::CREATE_DENIED),
                })
        },
    );
    by_topic_name::<CreateTopicsList>(
        Decoded::new(version, header, req),
        |t| &t.name,
        |t| match allowed(&t.name) {
            false => Some(code::TOPIC_AUTHORIZATION_FAILED),
            true => authz
                .safeguard(&create_change(t))
                .map(|_| code::POLICY_VIOLATION),
        },
        &answer,
        then,
    )
}

/// ControllerApis.createPartitions: ALTER on the topic, else 29 (no message). Kafka has no policy
/// hook for new partitions; a `partitions` safeguard refuses a count outside its range with 44 and
/// its message all the same.
pub(in crate::policy::mapping) fn create_partitions(
    version: i16,
    header: &RequestHeader,
    req: &CreatePartitionsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let answer = answer_with(
        ApiKey::CreatePartitions,
        version,
        |t: &&CreatePartitionsTopic, code| {
            CreatePartitionsTopicResult::default()
                .with_name(t.name.clone())
                .with_error_code(code)
                .with_error_message(match code {
                    code::INVALID_REQUEST => msg(message::DUPLICATE_TOPIC_NAME),
                    code::POLICY_VIOLATION => violation(authz, &partitions_change(t)),
                    _ => None,
                })
        },
    );
    by_topic_name::<CreatePartitionsList>(
        Decoded::new(version, header, req),
        |t| &t.name,
        |t| match topic_allowed(authz, Operation::Alter, &t.name) {
            false => Some(code::TOPIC_AUTHORIZATION_FAILED),
            true => authz
                .safeguard(&partitions_change(t))
                .map(|_| code::POLICY_VIOLATION),
        },
        &answer,
        Then::default(),
    )
}

fn partitions_change(t: &CreatePartitionsTopic) -> Change<'_> {
    Change::CreatePartitions {
        name: &t.name,
        count: t.count.into(),
    }
}

/// A list of topic names, each forwarded or, when `refused` gives a code (29, 44), answered with
/// it (a repeated refused name once, 42).
fn by_topic_name<'a, L: RequestList>(
    source: Decoded<'a, L>,
    name: impl Fn(&L::Entry) -> &TopicName,
    refused: impl Fn(&L::Entry) -> Option<i16>,
    answer: &impl list_api::Answer<&'a L::Entry>,
    then: Then<L>,
) -> Result<Plan, ProtocolError> {
    let entries = L::entries(source.request);
    let mut repeats = None;
    let check = |t: &&'a L::Entry| {
        let Some(code) = refused(t) else {
            return Verdict::Forward;
        };
        repeats
            .get_or_insert_with(|| Repeats::new(entries.iter().map(|t| &***name(t))))
            .denied(&***name(t), code)
    };
    list_api::plan(source.header, source, check, answer, then)
}

// ---------------------------------------------------------------------------------------------
// DeleteTopics

fn deleted_keys(a: &DeletableTopicResult) -> [Option<Key>; 2] {
    [
        a.name.as_ref().map(|n| Key::Name(n.0.clone())),
        (!a.topic_id.is_nil()).then_some(Key::Id(a.topic_id)),
    ]
}

/// DeleteTopics v5 has error messages; v6 names topics by name or id.
const FIRST_DELETE_MESSAGE_VERSION: i16 = 5;
const FIRST_DELETE_BY_ID_VERSION: i16 = 6;

/// One DeleteTopics entry, by name or by id.
enum Target<'a> {
    Name(&'a TopicName),
    Id(Uuid),
    /// Both or neither given: answered here as Kafka answers it (42, per entry), never forwarded:
    /// with both, the name could be allowed and the id another topic's.
    Malformed {
        name: Option<&'a TopicName>,
        id: Uuid,
    },
}

impl Target<'_> {
    fn key(&self) -> Option<Key> {
        match self {
            Target::Name(n) => Some(Key::Name(n.0.clone())),
            Target::Id(id) => Some(Key::Id(*id)),
            Target::Malformed { .. } => None,
        }
    }
}

fn target(t: &DeleteTopicState) -> Target<'_> {
    match (&t.name, t.topic_id.is_nil()) {
        (Some(n), true) => Target::Name(n),
        (None, false) => Target::Id(t.topic_id),
        (name, _) => Target::Malformed {
            name: name.as_ref(),
            id: t.topic_id,
        },
    }
}

/// ControllerApis.deleteTopics: DELETE on the cluster allows everything; otherwise DELETE on the
/// topic, and by name DESCRIBE too. By name, without DESCRIBE: 29; with DESCRIBE but without
/// DELETE: 29, or 3 when the topic does not exist (Kafka checks DESCRIBE, then existence, then
/// DELETE; the gateway asked the cluster about names it had not seen before this plan, see
/// [`super::super::topic_names_named`]).
/// By id: an id unknown to the cluster gets 100; a denied one echoes the id, with the name only
/// if the session may DESCRIBE the topic.
pub(in crate::policy::mapping) fn delete_topics(
    version: i16,
    header: &RequestHeader,
    req: &DeleteTopicsRequest,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Plan, ProtocolError> {
    if version >= FIRST_DELETE_BY_ID_VERSION {
        let source = Decoded::<DeleteTopicStates>::new(version, header, req);
        delete::<DeleteTopicStates>(source, target, authz, ids)
    } else {
        let source = Decoded::<DeleteTopicNames>::new(version, header, req);
        delete::<DeleteTopicNames>(source, |t| Target::Name(t), authz, ids)
    }
}

fn delete<L>(
    source: Decoded<'_, L>,
    target: impl Fn(&L::Entry) -> Target<'_>,
    authz: &dyn Authorize,
    ids: &dyn TopicIds,
) -> Result<Plan, ProtocolError>
where
    L: RequestList<Response = DeleteTopicsResponse, Answer = DeletableTopicResult>,
{
    // DELETE on the cluster reaches every topic but a reserved one; asked only when a topic's own
    // check fails.
    let cluster_delete = std::cell::OnceCell::new();
    let by_cluster = |n: &str| {
        !authz.reserved(ResourceType::Topic, n)
            && *cluster_delete.get_or_init(|| cluster_allowed(authz, Operation::Delete))
    };
    let describable = |n: &str| topic_allowed(authz, Operation::Describe, n);
    // By name Kafka also needs DESCRIBE (it answers 29 first for a topic it may not describe):
    // DELETE implies DESCRIBE, but a DENY on DESCRIBE still refuses the deletion.
    let may_delete = |n: &str, by_name: bool| {
        (topic_allowed(authz, Operation::Delete, n) && (!by_name || describable(n)))
            || by_cluster(n)
    };
    let entries = L::entries(source.request);
    let mut repeats = None;
    let mut denied = |key: Key, code: i16| {
        repeats
            .get_or_insert_with(|| Repeats::new(entries.iter().filter_map(|t| target(t).key())))
            .denied(key, code)
    };
    // An id the gateway cannot resolve is never forwarded (it could name any topic): 100.
    let check = |t: &&L::Entry| match target(t) {
        Target::Malformed { .. } => Verdict::Answer(code::INVALID_REQUEST),
        Target::Name(n) if may_delete(n, true) => Verdict::Forward,
        Target::Name(n) if ids.id_of(n).is_none() && describable(n) => {
            denied(Key::Name(n.0.clone()), code::UNKNOWN_TOPIC_OR_PARTITION)
        }
        Target::Name(n) => denied(Key::Name(n.0.clone()), code::TOPIC_AUTHORIZATION_FAILED),
        Target::Id(id) => match resolve(ids, id) {
            None => denied(Key::Id(id), code::UNKNOWN_TOPIC_ID),
            Some(n) if may_delete(&n, false) => Verdict::Forward,
            Some(_) => denied(Key::Id(id), code::TOPIC_AUTHORIZATION_FAILED),
        },
    };
    let version = source.version;
    let answer = answer_with(ApiKey::DeleteTopics, version, |t: &&L::Entry, code| {
        let text = match (target(t), code) {
            (Target::Malformed { name: Some(_), .. }, _) => message::NAME_AND_ID,
            (Target::Malformed { name: None, .. }, _) => message::NEITHER_NAME_NOR_ID,
            (Target::Name(_), code::INVALID_REQUEST) => message::DUPLICATE_TOPIC_NAME,
            (Target::Id(_), code::INVALID_REQUEST) => message::DUPLICATE_TOPIC_ID,
            (_, code::UNKNOWN_TOPIC_OR_PARTITION) => message::UNKNOWN_TOPIC_OR_PARTITION,
            (_, code::UNKNOWN_TOPIC_ID) => message::UNKNOWN_TOPIC_ID,
            _ => message::TOPIC_AUTHORIZATION_FAILED,
        };
        let result = DeletableTopicResult::default()
            .with_error_code(code)
            .with_error_message(
                (version >= FIRST_DELETE_MESSAGE_VERSION).then(|| StrBytes::from_static_str(text)),
            );
        match target(t) {
            Target::Name(n) => result.with_name(Some(n.clone())),
            // A denied id is named only to a session that may DESCRIBE its topic.
            Target::Id(id) => result.with_topic_id(id).with_name(
                resolve(ids, id)
                    .filter(|n| code == code::TOPIC_AUTHORIZATION_FAILED && describable(n))
                    .map(|n| TopicName(StrBytes::from_string(n))),
            ),
            Target::Malformed { name, id } => result.with_name(name.cloned()).with_topic_id(id),
        }
    });
    list_api::plan::<L, _>(source.header, source, check, &answer, Then::default())
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
/// `Ok(None)` allowed, `Ok(Some(code))` denied, `Err(())` an unknown resource type.
fn config_check(
    authz: &dyn Authorize,
    op: Operation,
    rtype: i8,
    name: &str,
) -> Result<Option<i16>, ()> {
    let (allowed, code) = match rtype {
        config_type::TOPIC => (
            topic_allowed(authz, op, name),
            code::TOPIC_AUTHORIZATION_FAILED,
        ),
        config_type::BROKER | config_type::BROKER_LOGGER | config_type::CLIENT_METRICS => (
            cluster_allowed(authz, op),
            code::CLUSTER_AUTHORIZATION_FAILED,
        ),
        config_type::GROUP => (
            authz.allowed(op, ResourceType::Group, name),
            code::GROUP_AUTHORIZATION_FAILED,
        ),
        _ => return Err(()),
    };
    Ok((!allowed).then_some(code))
}

/// The message Kafka sends with a config resource's error.
fn config_message(code: i16, rtype: i8) -> StrBytes {
    StrBytes::from_static_str(match code {
        code::TOPIC_AUTHORIZATION_FAILED => message::TOPIC_AUTHORIZATION_FAILED,
        code::CLUSTER_AUTHORIZATION_FAILED => message::CLUSTER_AUTHORIZATION_FAILED,
        code::GROUP_AUTHORIZATION_FAILED => message::GROUP_AUTHORIZATION_FAILED,
        code::UNSUPPORTED_VERSION => {
            return StrBytes::from_string(format!("Unknown resource type {rtype}."))
        }
        _ => message::INVALID_REQUEST,
    })
}

/// ConfigHelper.handleDescribeConfigsRequest: DESCRIBE_CONFIGS on the topic (29), the cluster for
/// broker, broker-logger and client-metrics resources (31), the group (30); the error's message,
/// no configs. An unknown resource type fails the whole request: 42 on every resource.
pub(in crate::policy::mapping) fn describe_configs(
    version: i16,
    header: &RequestHeader,
    req: &DescribeConfigsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let op = Operation::DescribeConfigs;
    let check =
        |r: &DescribeConfigsResource| config_check(authz, op, r.resource_type, &r.resource_name);
    let unknown_type = req.resources.iter().any(|r| check(r).is_err());
    let answer = answer_with(
        ApiKey::DescribeConfigs,
        version,
        |r: &&DescribeConfigsResource, code| {
            DescribeConfigsResult::default()
                .with_error_code(code)
                .with_error_message(Some(config_message(code, r.resource_type)))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
                .with_configs(Vec::new())
        },
    );
    let (verdict, then) = match unknown_type {
        true => (
            Some(code::INVALID_REQUEST),
            Then::<DescribeConfigsList>::default().refused(),
        ),
        false => (None, Then::default()),
    };
    list_api::plan(
        header,
        Decoded::<DescribeConfigsList>::new(version, header, req),
        |r| match (verdict, check(r)) {
            (Some(code), _) | (None, Ok(Some(code))) => Verdict::Answer(code),
            (None, _) => Verdict::Forward,
        },
        &answer,
        then,
    )
}

/// ControllerApis.handleLegacyAlterConfigs / authorizeAlterResource: ALTER_CONFIGS on the topic
/// (29), the cluster for broker, broker-logger and client-metrics resources (31), the group (30).
pub(in crate::policy::mapping) fn alter_configs(
    version: i16,
    header: &RequestHeader,
    req: &AlterConfigsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    alter::<AlterConfigsList>(
        Decoded::new(version, header, req),
        |r| (r.resource_type, &r.resource_name),
        |r| {
            r.configs
                .iter()
                .map(|c| ConfigChange::set(&c.name, c.value.as_deref()))
                .collect()
        },
        |t, n, code, text| {
            AlterResult::default()
                .with_resource_type(t)
                .with_resource_name(n)
                .with_error_code(code)
                .with_error_message(Some(text))
        },
        authz,
    )
}

/// As [`alter_configs`]; broker-logger resources need ALTER_CONFIGS on the cluster
/// (ConfigAdminManager.preprocess, 31).
pub(in crate::policy::mapping) fn incremental_alter_configs(
    version: i16,
    header: &RequestHeader,
    req: &IncrementalAlterConfigsRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    alter::<IncrementalList>(
        Decoded::new(version, header, req),
        |r| (r.resource_type, &r.resource_name),
        |r| {
            r.configs
                .iter()
                .filter_map(|c| {
                    Some(ConfigChange {
                        name: &c.name,
                        op: ConfigOp::from_incremental(c.config_operation)?,
                        value: c.value.as_deref(),
                    })
                })
                .collect()
        },
        |t, n, code, text| {
            IncrementalResult::default()
                .with_resource_type(t)
                .with_resource_name(n)
                .with_error_code(code)
                .with_error_message(Some(text))
        },
        authz,
    )
}

/// An AlterConfigs-like request: a denied resource gets 29 / 31 / 30 with the error's message, an
/// unknown type 35 ("Unknown resource type N.", never forwarded), a denied duplicate 42. An allowed
/// topic or broker resource that a safeguard refuses gets 44 with its message, as Kafka answers
/// for its AlterConfigPolicy (group, broker-logger and client-metrics resources have no policy).
fn alter<'a, L: RequestList>(
    source: Decoded<'a, L>,
    resource: impl Fn(&L::Entry) -> (i8, &StrBytes),
    configs: impl Fn(&L::Entry) -> Vec<ConfigChange<'_>>,
    build: impl Fn(i8, StrBytes, i16, StrBytes) -> L::Answer,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let change = |r: &'a L::Entry| {
        let (rtype, name) = resource(r);
        let target = match rtype {
            config_type::TOPIC => safeguards::Target::Topic,
            config_type::BROKER => safeguards::Target::Broker,
            _ => return None,
        };
        Some(Change::AlterConfigs {
            target,
            name,
            configs: configs(r),
        })
    };
    let refusal = |r: &'a L::Entry| change(r).and_then(|c| violation(authz, &c));
    let entries = L::entries(source.request);
    let mut repeats = None;
    let check = |r: &&'a L::Entry| {
        let (rtype, name) = resource(r);
        match config_check(authz, Operation::AlterConfigs, rtype, name) {
            Ok(None) if refusal(r).is_some() => repeats
                .get_or_insert_with(|| Repeats::each(entries.iter().map(&resource)))
                .denied((rtype, name), code::POLICY_VIOLATION),
            Ok(None) => Verdict::Forward,
            Err(()) => Verdict::Answer(code::UNSUPPORTED_VERSION),
            Ok(Some(code)) => repeats
                .get_or_insert_with(|| Repeats::each(entries.iter().map(&resource)))
                .denied((rtype, name), code),
        }
    };
    let answer = answer_with(L::API, source.version, |r: &&L::Entry, code| {
        let (rtype, name) = resource(r);
        let text = match code {
            code::INVALID_REQUEST => StrBytes::from_static_str(message::DUPLICATE_RESOURCE),
            code::POLICY_VIOLATION => refusal(r).unwrap_or_default(),
            _ => config_message(code, rtype),
        };
        build(rtype, name.clone(), code, text)
    });
    list_api::plan::<L, _>(source.header, source, check, &answer, Then::default())
}

// ---------------------------------------------------------------------------------------------
// Cluster-wide APIs: all or nothing.

/// DescribeLogDirs v3 has a top-level error code; v1-2 answer a denial with empty results.
const FIRST_LOG_DIRS_ERROR_VERSION: i16 = 3;

/// KafkaApis.handleDescribeLogDirsRequest: DESCRIBE on the cluster, else no results and (v3+) 31.
pub(in crate::policy::mapping) fn describe_log_dirs(
    version: i16,
    header: &RequestHeader,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let allowed = cluster_allowed(authz, Operation::Describe);
    single(ApiKey::DescribeLogDirs, version, header, allowed, || {
        let mut resp = DescribeLogDirsResponse::default().with_results(Vec::new());
        if version >= FIRST_LOG_DIRS_ERROR_VERSION {
            resp.error_code = code::CLUSTER_AUTHORIZATION_FAILED;
        }
        resp
    })
}

/// KafkaApis.handleListConfigResources: DESCRIBE_CONFIGS on the cluster, else 31 (no message) and
/// no resources. Kafka then lists every config resource, every topic included, without a check
/// per name, and so does the upstream to the gateway.
pub(in crate::policy::mapping) fn list_config_resources(
    version: i16,
    header: &RequestHeader,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    let allowed = cluster_allowed(authz, Operation::DescribeConfigs);
    single(
        ApiKey::ListConfigResources,
        version,
        header,
        allowed,
        || {
            ListConfigResourcesResponse::default()
                .with_error_code(code::CLUSTER_AUTHORIZATION_FAILED)
        },
    )
}
