//! OffsetCommit, OffsetFetch, OffsetDelete and TxnOffsetCommit: a group check first (the whole
//! request fails with 30, or 53 for a transactional id), then a topic check per topic.
//!
//! A request whose every named topic is denied is answered by the gateway and never forwarded with
//! an empty topic list: Kafka reads an empty list as "no topics", but an older or non-Kafka
//! upstream could read it as "all", which would leak or delete other topics' offsets.

use bytes::Bytes;
use kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_request::OffsetDeleteRequestTopic;
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
use kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequestTopic;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse, RequestHeader, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::code::{
    GROUP_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
};
use super::{
    deny_all, forward_partial, interleave, mask, read_response, respond, split, then_merge, Denied,
    ForwardedGroup, Merge,
};
use crate::policy::mapping::{Authorize, Plan};
use crate::policy::{Operation, ResourceType};
use crate::protocol::codec::{encode_response, ProtocolError};
use std::collections::HashMap;

/// Kafka's `OffsetFetchResponse.INVALID_OFFSET`.
const INVALID_OFFSET: i64 = -1;
/// Kafka's `RecordBatch.NO_PARTITION_LEADER_EPOCH`.
const NO_LEADER_EPOCH: i32 = -1;

fn topic_allowed(authz: &dyn Authorize, op: Operation, name: &str) -> bool {
    authz.allowed(op, ResourceType::Topic, name)
}

// ---- OffsetCommit ----

/// KafkaApis.handleOffsetCommitRequest: READ on the group, else 30 on every partition; READ on each
/// topic, else 29 on its partitions.
pub(super) fn offset_commit(
    version: i16,
    header: &RequestHeader,
    req: &OffsetCommitRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::OffsetCommit;
    let put = |r: &mut OffsetCommitResponse, v| r.topics = v;
    if !authz.allowed(Operation::Read, ResourceType::Group, &req.group_id) {
        let denied = deny_all(API, version, &req.topics, |t| {
            commit_error(t, GROUP_AUTHORIZATION_FAILED)
        })?;
        return denied.respond(header, &OffsetCommitResponse::default(), put);
    }
    let Some(flags) = mask(&req.topics, |t| {
        topic_allowed(authz, Operation::Read, &t.name)
    }) else {
        return Ok(Plan::Forward);
    };
    let (allowed, denied) = split(API, version, &req.topics, &flags, |t| {
        commit_error(t, TOPIC_AUTHORIZATION_FAILED)
    })?;
    if allowed.is_empty() {
        return denied.respond(header, &OffsetCommitResponse::default(), put);
    }
    let mut forwarded = req.clone();
    forwarded.topics = allowed;
    forward_partial(
        API,
        version,
        header,
        &forwarded,
        Merge::OffsetCommit { version, denied },
    )
}

fn commit_error(topic: &OffsetCommitRequestTopic, error: i16) -> OffsetCommitResponseTopic {
    let partitions = topic.partitions.iter().map(|p| {
        OffsetCommitResponsePartition::default()
            .with_partition_index(p.partition_index)
            .with_error_code(error)
    });
    OffsetCommitResponseTopic::default()
        .with_name(topic.name.clone())
        .with_topic_id(topic.topic_id)
        .with_partitions(partitions.collect())
}

pub(super) fn merge_offset_commit(
    version: i16,
    denied: Denied<OffsetCommitResponseTopic>,
    payload: Bytes,
) -> Result<Bytes, ProtocolError> {
    const API: ApiKey = ApiKey::OffsetCommit;
    let (header, mut resp): (_, OffsetCommitResponse) = read_response(API, version, payload)?;
    let upstream = std::mem::take(&mut resp.topics);
    denied.merge(&header, &resp, |r, v| r.topics = v, &upstream)
}

// ---- OffsetFetch ----

/// KafkaApis.handleOffsetFetchRequest: DESCRIBE on each group, else 30 (v1: on every partition,
/// v2-7: top-level error and no topics, v8+: the group's error); DESCRIBE on each named topic,
/// else 29 with committed offset -1. All topics (null) → the answer keeps the DESCRIBE-able topics.
pub(super) fn offset_fetch(
    version: i16,
    header: &RequestHeader,
    req: &OffsetFetchRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::OffsetFetch;
    if version >= 8 {
        return offset_fetch_groups(version, header, req, authz);
    }
    if !authz.allowed(Operation::Describe, ResourceType::Group, &req.group_id) {
        let mut resp = OffsetFetchResponse::default();
        if version >= 2 {
            resp.error_code = GROUP_AUTHORIZATION_FAILED;
            return respond(API, version, header, &resp);
        }
        let topics = req.topics.as_deref().unwrap_or_default();
        let denied = deny_all(API, version, topics, |t| {
            fetch_error(t, GROUP_AUTHORIZATION_FAILED)
        })?;
        return denied.respond(header, &resp, |r: &mut OffsetFetchResponse, v| r.topics = v);
    }
    // All topics (null), and an empty list too: Kafka reads [] as none, but a broker that reads it
    // as all (tansu does, for Metadata) must not widen the answer past what the session may see.
    let topics = match &req.topics {
        Some(t) if !t.is_empty() => t,
        _ => {
            let merge = Merge::OffsetFetch {
                version,
                denied: Denied::new(API, version),
                filter_all: true,
            };
            return Ok(then_merge(merge));
        }
    };
    let Some(flags) = mask(topics, |t| {
        topic_allowed(authz, Operation::Describe, &t.name)
    }) else {
        return Ok(Plan::Forward);
    };
    let (allowed, denied) = split(API, version, topics, &flags, |t| {
        fetch_error(t, TOPIC_AUTHORIZATION_FAILED)
    })?;
    if allowed.is_empty() {
        return denied.respond(header, &OffsetFetchResponse::default(), |r, v| r.topics = v);
    }
    let mut forwarded = req.clone();
    forwarded.topics = Some(allowed);
    let merge = Merge::OffsetFetch {
        version,
        denied,
        filter_all: false,
    };
    forward_partial(API, version, header, &forwarded, merge)
}

fn fetch_error(topic: &OffsetFetchRequestTopic, error: i16) -> OffsetFetchResponseTopic {
    let partitions = topic.partition_indexes.iter().map(|&index| {
        OffsetFetchResponsePartition::default()
            .with_partition_index(index)
            .with_committed_offset(INVALID_OFFSET)
            .with_committed_leader_epoch(NO_LEADER_EPOCH)
            .with_metadata(Some(StrBytes::new()))
            .with_error_code(error)
    });
    OffsetFetchResponseTopic::default()
        .with_name(topic.name.clone())
        .with_partitions(partitions.collect())
}

pub(super) fn merge_offset_fetch(
    version: i16,
    denied: Denied<OffsetFetchResponseTopic>,
    filter_all: bool,
    payload: Bytes,
    authz: &dyn Authorize,
) -> Result<Bytes, ProtocolError> {
    const API: ApiKey = ApiKey::OffsetFetch;
    let (header, mut resp): (_, OffsetFetchResponse) = read_response(API, version, payload)?;
    if filter_all {
        resp.topics
            .retain(|t| topic_allowed(authz, Operation::Describe, &t.name));
    }
    // Kafka adds its topic errors only when the coordinator answered without a group error.
    if resp.error_code != 0 || denied.is_empty() {
        return encode_response(API, version, &header, &resp);
    }
    let upstream = std::mem::take(&mut resp.topics);
    denied.merge(&header, &resp, |r, v| r.topics = v, &upstream)
}

/// OffsetFetch v8+: each group is checked and answered on its own.
fn offset_fetch_groups(
    version: i16,
    header: &RequestHeader,
    req: &OffsetFetchRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::OffsetFetch;
    let group_ok = |g: &OffsetFetchRequestGroup| {
        authz.allowed(Operation::Describe, ResourceType::Group, &g.group_id)
    };
    let topic_ok =
        |t: &OffsetFetchRequestTopics| topic_allowed(authz, Operation::Describe, &t.name);
    let untouched = req.groups.iter().all(|g| {
        group_ok(g)
            && g.topics
                .as_ref()
                .is_some_and(|topics| !topics.is_empty() && topics.iter().all(topic_ok))
    });
    if untouched {
        return Ok(Plan::Forward);
    }

    let mut local = Denied::new(API, version);
    let mut forwarded = Vec::new();
    let mut forwarded_groups = Vec::new();
    let mut reduced = false;
    for (place, group) in req.groups.iter().enumerate() {
        if !group_ok(group) {
            let answer = OffsetFetchResponseGroup::default()
                .with_group_id(group.group_id.clone())
                .with_error_code(GROUP_AUTHORIZATION_FAILED);
            local.push(place, &answer)?;
            reduced = true;
            continue;
        }
        // All topics (null) or an empty list (see `offset_fetch`): filtered to what may be seen.
        let Some(topics) = group.topics.as_ref().filter(|t| !t.is_empty()) else {
            forwarded.push(ForwardedGroup {
                group_id: group.group_id.clone(),
                denied: Denied::new(API, version),
                filter_all: true,
            });
            forwarded_groups.push(group.clone());
            continue;
        };
        let Some(flags) = mask(topics, topic_ok) else {
            forwarded.push(ForwardedGroup {
                group_id: group.group_id.clone(),
                denied: Denied::new(API, version),
                filter_all: false,
            });
            forwarded_groups.push(group.clone());
            continue;
        };
        reduced = true;
        let (allowed, denied) = split(API, version, topics, &flags, |t| {
            fetch_group_error(t, TOPIC_AUTHORIZATION_FAILED)
        })?;
        if allowed.is_empty() {
            let answer = OffsetFetchResponseGroup::default()
                .with_group_id(group.group_id.clone())
                .with_topics(denied.into_values()?.into_iter().map(|(_, t)| t).collect());
            local.push(place, &answer)?;
            continue;
        }
        forwarded.push(ForwardedGroup {
            group_id: group.group_id.clone(),
            denied,
            filter_all: false,
        });
        let mut group = group.clone();
        group.topics = Some(allowed);
        forwarded_groups.push(group);
    }

    if forwarded_groups.is_empty() {
        return local.respond(header, &OffsetFetchResponse::default(), |r, v| r.groups = v);
    }
    let merge = Merge::OffsetFetchGroups {
        version,
        local,
        forwarded,
    };
    if !reduced {
        // Only "all topics" groups: the request goes as it is, the answer is filtered.
        return Ok(then_merge(merge));
    }
    let mut request = req.clone();
    request.groups = forwarded_groups;
    forward_partial(API, version, header, &request, merge)
}

fn fetch_group_error(topic: &OffsetFetchRequestTopics, error: i16) -> OffsetFetchResponseTopics {
    let partitions = topic.partition_indexes.iter().map(|&index| {
        OffsetFetchResponsePartitions::default()
            .with_partition_index(index)
            .with_committed_offset(INVALID_OFFSET)
            .with_committed_leader_epoch(NO_LEADER_EPOCH)
            .with_metadata(Some(StrBytes::new()))
            .with_error_code(error)
    });
    OffsetFetchResponseTopics::default()
        .with_name(topic.name.clone())
        .with_topic_id(topic.topic_id)
        .with_partitions(partitions.collect())
}

pub(super) fn merge_offset_fetch_groups(
    version: i16,
    local: Denied<OffsetFetchResponseGroup>,
    forwarded: Vec<ForwardedGroup>,
    payload: Bytes,
    authz: &dyn Authorize,
) -> Result<Bytes, ProtocolError> {
    const API: ApiKey = ApiKey::OffsetFetch;
    let (header, mut resp): (_, OffsetFetchResponse) = read_response(API, version, payload)?;
    // Matched by id, not position (through an index: one scan per group was quadratic); a group
    // the upstream answered but nobody asked for is dropped rather than passed on.
    let mut upstream: Vec<Option<OffsetFetchResponseGroup>> = std::mem::take(&mut resp.groups)
        .into_iter()
        .map(Some)
        .collect();
    let mut by_id: HashMap<StrBytes, Vec<usize>> = HashMap::new();
    for (i, g) in upstream.iter().enumerate().rev() {
        if let Some(g) = g {
            by_id.entry(g.group_id.0.clone()).or_default().push(i);
        }
    }
    let mut groups = Vec::with_capacity(forwarded.len());
    for slot in forwarded {
        let found = by_id.get_mut(&slot.group_id.0).and_then(Vec::pop);
        let Some(mut group) = found.and_then(|at| upstream[at].take()) else {
            continue;
        };
        if slot.filter_all {
            group
                .topics
                .retain(|t| topic_allowed(authz, Operation::Describe, &t.name));
        }
        if group.error_code == 0 && !slot.denied.is_empty() {
            group.topics = interleave(
                std::mem::take(&mut group.topics),
                slot.denied.into_values()?,
            );
        }
        groups.push(group);
    }
    drop(upstream);
    local.merge(&header, &resp, |r, v| r.groups = v, &groups)
}

// ---- OffsetDelete ----

/// KafkaApis.handleOffsetDeleteRequest: DELETE on the group, else a top-level 30 and no topics;
/// READ on each topic, else 29 on its partitions. (Kafka checks no group READ here.) The group
/// coordinator is asked even when no topic is left, as Kafka does.
pub(super) fn offset_delete(
    version: i16,
    header: &RequestHeader,
    req: &OffsetDeleteRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::OffsetDelete;
    if !authz.allowed(Operation::Delete, ResourceType::Group, &req.group_id) {
        let resp = OffsetDeleteResponse::default().with_error_code(GROUP_AUTHORIZATION_FAILED);
        return respond(API, version, header, &resp);
    }
    let Some(flags) = mask(&req.topics, |t| {
        topic_allowed(authz, Operation::Read, &t.name)
    }) else {
        return Ok(Plan::Forward);
    };
    let (allowed, denied) = split(API, version, &req.topics, &flags, |t| {
        delete_error(t, TOPIC_AUTHORIZATION_FAILED)
    })?;
    // Forwarded even when every topic is denied (with none): Kafka always asks the group
    // coordinator, whose group-level error (GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, ...) replaces the
    // topic errors in the answer.
    let mut forwarded = req.clone();
    forwarded.topics = allowed;
    forward_partial(
        API,
        version,
        header,
        &forwarded,
        Merge::OffsetDelete { denied },
    )
}

fn delete_error(topic: &OffsetDeleteRequestTopic, error: i16) -> OffsetDeleteResponseTopic {
    let partitions = topic.partitions.iter().map(|p| {
        OffsetDeleteResponsePartition::default()
            .with_partition_index(p.partition_index)
            .with_error_code(error)
    });
    OffsetDeleteResponseTopic::default()
        .with_name(topic.name.clone())
        .with_partitions(partitions.collect())
}

pub(super) fn merge_offset_delete(
    denied: Denied<OffsetDeleteResponseTopic>,
    payload: Bytes,
) -> Result<Bytes, ProtocolError> {
    const API: ApiKey = ApiKey::OffsetDelete;
    const VERSION: i16 = 0;
    let (header, mut resp): (_, OffsetDeleteResponse) = read_response(API, VERSION, payload)?;
    // OffsetDeleteResponse.Builder.merge: a top-level error replaces the gateway's topic errors.
    if resp.error_code != 0 {
        return encode_response(API, VERSION, &header, &resp);
    }
    let upstream = std::mem::take(&mut resp.topics);
    denied.merge(&header, &resp, |r, v| r.topics = v, &upstream)
}

// ---- TxnOffsetCommit ----

/// KafkaApis.handleTxnOffsetCommitRequest: WRITE on the transactional id (53) then READ on the group
/// (30), each on every partition; READ on each topic, else 29 on its partitions.
pub(super) fn txn_offset_commit(
    version: i16,
    header: &RequestHeader,
    req: &TxnOffsetCommitRequest,
    authz: &dyn Authorize,
) -> Result<Plan, ProtocolError> {
    const API: ApiKey = ApiKey::TxnOffsetCommit;
    let whole = if !authz.allowed(
        Operation::Write,
        ResourceType::TransactionalId,
        &req.transactional_id,
    ) {
        Some(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    } else if !authz.allowed(Operation::Read, ResourceType::Group, &req.group_id) {
        Some(GROUP_AUTHORIZATION_FAILED)
    } else {
        None
    };
    let put = |r: &mut TxnOffsetCommitResponse, v| r.topics = v;
    if let Some(error) = whole {
        let denied = deny_all(API, version, &req.topics, |t| txn_commit_error(t, error))?;
        return denied.respond(header, &TxnOffsetCommitResponse::default(), put);
    }
    let Some(flags) = mask(&req.topics, |t| {
        topic_allowed(authz, Operation::Read, &t.name)
    }) else {
        return Ok(Plan::Forward);
    };
    let (allowed, denied) = split(API, version, &req.topics, &flags, |t| {
        txn_commit_error(t, TOPIC_AUTHORIZATION_FAILED)
    })?;
    if allowed.is_empty() {
        return denied.respond(header, &TxnOffsetCommitResponse::default(), put);
    }
    let mut forwarded = req.clone();
    forwarded.topics = allowed;
    forward_partial(
        API,
        version,
        header,
        &forwarded,
        Merge::TxnOffsetCommit { version, denied },
    )
}

fn txn_commit_error(
    topic: &TxnOffsetCommitRequestTopic,
    error: i16,
) -> TxnOffsetCommitResponseTopic {
    let partitions = topic.partitions.iter().map(|p| {
        TxnOffsetCommitResponsePartition::default()
            .with_partition_index(p.partition_index)
            .with_error_code(error)
    });
    TxnOffsetCommitResponseTopic::default()
        .with_name(topic.name.clone())
        .with_partitions(partitions.collect())
}

pub(super) fn merge_txn_offset_commit(
    version: i16,
    denied: Denied<TxnOffsetCommitResponseTopic>,
    payload: Bytes,
) -> Result<Bytes, ProtocolError> {
    const API: ApiKey = ApiKey::TxnOffsetCommit;
    let (header, mut resp): (_, TxnOffsetCommitResponse) = read_response(API, version, payload)?;
    let upstream = std::mem::take(&mut resp.topics);
    denied.merge(&header, &resp, |r, v| r.topics = v, &upstream)
}
